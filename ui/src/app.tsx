import { useEffect, useState } from 'preact/hooks';
import { useApp } from './ctx';
import { INSTALL_HINT } from './format';
import { EnvView } from './views/env';
import { HealthView } from './views/health';
import { JobsView } from './views/jobs';
import { describeFault, LabView } from './views/lab';
import { LogsView } from './views/logs';
import { QueuesView } from './views/queues';
import { ExportView } from './views/export';
import { ReloadsView } from './views/reloads';
import { RequestsView } from './views/requests';
import { SchedulesView } from './views/schedules';
import { neededSockets } from './store';
import { routeCount, RoutesView } from './views/routes';

const TABS = [
  ['routes', 'Routes'],
  ['functions', 'Functions'],
  ['health', 'Health'],
  ['queues', 'Queues'],
  ['jobs', 'Jobs'],
  ['requests', 'Requests'],
  ['schedules', 'Schedules'],
  ['logs', 'Logs'],
  ['reloads', 'Reloads'],
  ['env', 'Env'],
  ['export', 'Export'],
  ['lab', 'Lab'],
] as const;
type Tab = (typeof TABS)[number][0];

function tabFromHash(): Tab {
  const h = location.hash.replace(/^#\/?/, '');
  return (TABS.find(([t]) => t === h)?.[0] ?? 'routes') as Tab;
}

/** The Functions tab's code: its editor (CodeMirror) is most of the dashboard's weight and the
 * other tabs need none of it, so it is not in the first load; it is fetched once the first
 * view has painted and the page is idle, so the tab opens at once when clicked. */
let functionsModule: Promise<typeof import('./views/functions')> | null = null;
const loadFunctions = () => (functionsModule ??= import('./views/functions'));
if (typeof window !== 'undefined') {
  const idle = (window as any).requestIdleCallback ?? ((f: () => void) => setTimeout(f, 1500));
  window.addEventListener('load', () => idle(() => void loadFunctions().catch(() => (functionsModule = null))));
}

function Functions() {
  const [View, setView] = useState<(() => preact.JSX.Element) | null>(null);
  const [error, setError] = useState('');
  useEffect(() => {
    loadFunctions().then(
      (m) => setView(() => m.FunctionsView),
      (e) => {
        functionsModule = null; // the next visit tries again
        setError(String(e));
      },
    );
  }, []);
  if (error) return <div class="banner bad">Cannot load the Functions view: {error}</div>;
  return View ? <View /> : <p class="muted">Loading…</p>;
}

function ProjectBar() {
  const { state, backend } = useApp();
  const [busy, setBusy] = useState(false);
  const p = state.project;
  const open = async (path?: string) => {
    setBusy(true);
    try {
      if (path) await backend.openProject(path);
      else await backend.pickProject();
    } catch (e) {
      alert(String(e));
    } finally {
      setBusy(false);
    }
  };
  const socks = neededSockets(state);
  const up = socks.filter((s) => s.up).length;
  return (
    <header class="bar">
      <strong class="brand">FastFN</strong>
      <span class="proj">
        <span class="muted">project</span>{' '}
        <code data-testid="project-path" title={p?.path}>
          {p?.path ?? '—'}
        </code>
      </span>
      <span class="proj">
        <span class="muted">serving at</span>{' '}
        {p?.url ? (
          <a data-testid="project-url" href={p.url} target="_blank" rel="noreferrer">
            {p.url}
          </a>
        ) : (
          <span data-testid="project-url">—</span>
        )}
      </span>
      <span class="spacer" />
      <span class={`conn ${state.connected ? 'up' : 'down'}`} title="live event stream" data-testid="connection">
        <span class={`dot ${state.connected ? 'up' : 'down'}`} /> {state.connected ? 'live' : 'reconnecting…'}
        {socks.length > 0 && (
          <span class="muted">
            {' '}
            · {up}/{socks.length} sockets up
          </span>
        )}
      </span>
      {backend.kind === 'tauri' && (
        <>
          {state.recent.length > 0 && (
            <select
              data-testid="recent-projects"
              value=""
              disabled={busy}
              onChange={(e) => {
                const v = (e.target as HTMLSelectElement).value;
                if (v) void open(v);
              }}
            >
              <option value="">Recent…</option>
              {state.recent.map((r) => (
                <option key={r} value={r}>
                  {r}
                </option>
              ))}
            </select>
          )}
          <button data-testid="open-project" disabled={busy} onClick={() => open()}>
            Open project…
          </button>
        </>
      )}
    </header>
  );
}

function NoProject() {
  const { state, backend } = useApp();
  const [over, setOver] = useState(false);
  useEffect(() => {
    // Tauri delivers dropped folders as paths through the webview, not the DOM.
    let un: (() => void) | undefined;
    let gone = false;
    import('@tauri-apps/api/webview')
      .then(({ getCurrentWebview }) =>
        getCurrentWebview().onDragDropEvent((e) => {
          const p = e.payload;
          if (p.type === 'over' || p.type === 'enter') setOver(true);
          else if (p.type === 'leave') setOver(false);
          else if (p.type === 'drop') {
            setOver(false);
            if (p.paths[0]) void backend.openProject(p.paths[0]);
          }
        }),
      )
      .then((f) => (gone ? f() : (un = f)))
      .catch(() => {});
    return () => {
      gone = true;
      un?.();
    };
  }, []);
  return (
    <div class={`empty-state ${over ? 'over' : ''}`} data-testid="state-no-project">
      <h1>No project open</h1>
      <p class="muted">A project is a folder of functions: each file becomes an HTTP route.</p>
      <button class="big" data-testid="open-project-big" onClick={() => backend.pickProject().catch((e) => alert(String(e)))}>
        Open a project folder…
      </button>
      <p class="muted">or drop a folder here</p>
      {state.recent.length > 0 && (
        <div class="recent">
          <h3>Recent projects</h3>
          <ul>
            {state.recent.map((r) => (
              <li key={r}>
                <button class="link" onClick={() => backend.openProject(r)}>
                  {r}
                </button>
              </li>
            ))}
          </ul>
        </div>
      )}
    </div>
  );
}

function States() {
  const { state } = useApp();
  const errors = [...(state.catalog?.errors ?? [])];
  // A failed reload keeps the previous routes; the engine reports why in health.
  const reloadError = state.health?.hot_reload.last_error;
  const ee = state.engineError;
  const missing = Object.entries(state.health?.runtimes_missing ?? {});
  const socks = neededSockets(state);
  const allDown = socks.length > 0 && socks.every((s) => !s.up);
  return (
    <>
      {state.loadError && (
        <div class="banner bad" data-testid="state-unreachable">
          Cannot reach the engine: {state.loadError}
        </div>
      )}
      {ee && !ee.code.startsWith('config.') && (
        <div class="banner bad" data-testid="state-engine-error">
          <strong>The engine could not start</strong> ({ee.code}): {ee.message}
        </div>
      )}
      {(errors.length > 0 || reloadError || ee?.code.startsWith('config.')) && (
        <div class="banner bad" data-testid="state-config-error">
          <strong>Configuration errors</strong> — the affected functions are not served until fixed:
          <ul>
            {ee?.code.startsWith('config.') && (
              <li>
                <code>{ee.code}</code> {ee.message}
              </li>
            )}
            {reloadError && (
              <li>
                last reload failed (the previous routes are still served): {reloadError}
              </li>
            )}
            {errors.map((e, i) => (
              <li key={i}>
                <code>{e.file}</code>
                {e.field && (
                  <>
                    {' '}
                    field <code>{e.field}</code>
                  </>
                )}
                : {e.message} <span class="muted">({e.code})</span>
              </li>
            ))}
          </ul>
        </div>
      )}
      {allDown && (
        <div class="banner bad" data-testid="state-all-down">
          <strong>Every runtime socket is down.</strong> Requests to functions fail until a daemon comes back; see the
          Health and Logs tabs.
        </div>
      )}
      {missing.length > 0 && (
        <div class="banner warn" data-testid="state-runtime-missing">
          <strong>Runtime{missing.length > 1 ? 's' : ''} not available:</strong>{' '}
          {missing.map(([rt, why], i) => (
            <span key={rt}>
              {i > 0 && '; '}
              <span class={`rt rt-${rt}`}>{rt}</span> {why} <span class="muted">(install: {INSTALL_HINT[rt] ?? rt})</span>
            </span>
          ))}
        </div>
      )}
    </>
  );
}

export function App() {
  const { state, backend } = useApp();
  const [tab, setTab] = useState<Tab>(tabFromHash());
  useEffect(() => {
    const on = () => setTab(tabFromHash());
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  if (backend.kind === 'tauri' && state.projectKnown && !state.project) {
    return (
      <div class="app">
        <ProjectBar />
        {state.engineError && (
          <div class="banner bad" data-testid={state.engineError.code.startsWith('config.') ? 'state-config-error' : 'state-engine-error'}>
            <strong>{state.engineError.code}</strong>: {state.engineError.message}
          </div>
        )}
        <NoProject />
      </div>
    );
  }
  const counts: Partial<Record<Tab, string>> = {
    routes: state.catalog ? String(routeCount(Object.keys(state.catalog.mapped_routes))) : undefined,
    requests: state.requests.length ? String(state.requests.length) : undefined,
    reloads: state.reloads.length ? String(state.reloads.length) : undefined,
  };
  const down = neededSockets(state).filter((s) => !s.up).length;
  return (
    <div class="app">
      <ProjectBar />
      <States />
      {(state.health?.faults?.length ?? 0) > 0 && (
        <div class="banner bad" data-testid="fault-banner">
          <strong>Lab faults on</strong>: {state.health!.faults!.map((f) => describeFault(f.spec)).join('; ')} · <a href="#lab">Lab</a>
        </div>
      )}
      <nav class="tabs" role="tablist">
        {TABS.map(([t, label]) => (
          <a
            key={t}
            href={`#${t}`}
            role="tab"
            aria-selected={t === tab}
            class={t === tab ? 'active' : undefined}
            data-testid={`tab-${t}`}
          >
            {label}
            {counts[t] && <span class="count">{counts[t]}</span>}
            {t === 'health' && down > 0 && <span class="count bad">{down} down</span>}
          </a>
        ))}
      </nav>
      <main>
        {tab === 'routes' && <RoutesView />}
        {tab === 'functions' && <Functions />}
        {tab === 'health' && <HealthView />}
        {tab === 'queues' && <QueuesView />}
        {tab === 'requests' && <RequestsView />}
        {tab === 'schedules' && <SchedulesView />}
        {tab === 'logs' && <LogsView />}
        {tab === 'reloads' && <ReloadsView />}
        {tab === 'jobs' && <JobsView />}
        {tab === 'env' && <EnvView />}
        {tab === 'export' && <ExportView />}
        {tab === 'lab' && <LabView />}
      </main>
    </div>
  );
}
