import { useState } from 'preact/hooks';
import { useApp } from '../ctx';
import type { RuntimeKind, RuntimeState } from '../contract';
import { fmtAgo, fmtBytes, INSTALL_HINT } from '../format';
import type { SocketState, WorkEntry } from '../store';
import { IsolationPanel } from './isolation';

export function HealthView() {
  const { state } = useApp();
  const h = state.health;
  if (!h) return <p class="muted">Loading health…</p>;
  const byRuntime = new Map<string, SocketState[]>();
  for (const s of state.sockets.values()) {
    const list = byRuntime.get(s.runtime) ?? [];
    list.push(s);
    byRuntime.set(s.runtime, list);
  }
  const runtimes = [...new Set([...h.runtime_order, ...byRuntime.keys()])] as RuntimeKind[];
  const missing = Object.entries(h.runtimes_missing ?? {});
  const sum = h.functions.summary;
  return (
    <div class="health">
      <div class="cards">
        {runtimes.map((rt) => {
          const socks = (byRuntime.get(rt) ?? []).sort((a, b) => a.index - b.index);
          const info = h.runtimes[rt];
          // In-process (lua) and per-function (rust, go) runtimes have no daemon sockets: their
          // health is the engine's word for them.
          const socketless = socks.length === 0 && info?.routing !== undefined && info.routing !== 'single' && info.routing !== 'round_robin';
          const live = socketless ? info?.health.up === true : socks.some((s) => s.up);
          const st: RuntimeState = state.runtimes.get(rt) === 'not_needed' ? 'not_needed' : live ? 'up' : 'down';
          const label = st === 'not_needed' ? 'not needed' : st;
          return (
            <section
              class={`panel runtime ${st === 'not_needed' ? 'idle' : ''}`}
              key={rt}
              data-testid="runtime-card"
              data-runtime={rt}
              data-up={String(st === 'up')}
              data-state={st}
            >
              <h3>
                <span class={`dot ${st === 'not_needed' ? 'idle' : st}`} /> <span class={`rt rt-${rt}`}>{rt}</span>{' '}
                <span class="muted" data-testid="runtime-state">
                  {label} · {info?.routing ?? '–'}
                  {socketless ? ` · ${info?.socket ?? ''}` : ` · ${socks.filter((s) => s.up).length}/${socks.length} sockets`}
                </span>
              </h3>
              {st === 'not_needed' && (
                <p class="muted small">No route of the project uses {rt}: its daemon starts when one does.</p>
              )}
              {socks.length > 0 && (
                <table class="grid">
                  <thead>
                    <tr>
                      <th>#</th>
                      <th>State</th>
                      <th>Reason</th>
                      <th>Last check</th>
                      <th>Restarts</th>
                      <th>PID</th>
                      <th class="num">CPU</th>
                      <th class="num">RSS</th>
                      <th>Socket</th>
                      <th />
                    </tr>
                  </thead>
                  <tbody>
                    {socks.map((s) => (
                      <SocketRow s={s} key={s.index} idle={st === 'not_needed'} />
                    ))}
                  </tbody>
                </table>
              )}
            </section>
          );
        })}
      </div>
      <WorkPanel work={[...state.work.values()].reverse()} />
      {missing.length > 0 && (
        <section class="panel warn">
          <h3>Runtimes not available</h3>
          <ul>
            {missing.map(([rt, why]) => (
              <li key={rt}>
                <span class={`rt rt-${rt}`}>{rt}</span> {why} — install: {INSTALL_HINT[rt] ?? rt}
              </li>
            ))}
          </ul>
        </section>
      )}
      <IsolationPanel />
      <section class="panel">
        <h3>Engine</h3>
        <dl class="facts">
          <dt>Functions</dt>
          <dd>
            {sum.total} ({sum.warm} warm, {sum.cold} cold)
          </dd>
          <dt>Routes</dt>
          <dd>
            {h.routing.mapped_routes} mapped, {h.routing.mapped_route_conflicts} conflicts, {h.routing.shadowed_routes}{' '}
            shadowed
          </dd>
          <dt>Hot reload</dt>
          <dd>
            {h.hot_reload.enabled ? 'on' : 'off'}
            {h.hot_reload.watchdog.backend ? ` (${h.hot_reload.watchdog.backend})` : ''} · last scan{' '}
            {fmtAgo(h.hot_reload.last_catalog_scan_at)}
            {h.hot_reload.last_error && <span class="bad"> · {h.hot_reload.last_error}</span>}
          </dd>
          <dt>Sockets</dt>
          <dd>
            <code>{h.socket_base_dir}</code>
          </dd>
          <dt>Defaults</dt>
          <dd>
            timeout {h.defaults.timeout_ms} ms · concurrency {h.defaults.max_concurrency} · body ≤{' '}
            {fmtBytes(h.defaults.max_body_bytes)}
          </dd>
          <dt>Phase</dt>
          <dd>{state.phase ?? 'serving'}</dd>
        </dl>
      </section>
    </div>
  );
}

/** `idle`: the runtime is not needed, so a socket without a daemon is expected, not down. */
function SocketRow({ s, idle }: { s: SocketState; idle: boolean }) {
  const { backend } = useApp();
  const [busy, setBusy] = useState(false);
  const st = s.up ? 'up' : idle ? 'idle' : 'down';
  // No daemon runs for an idle runtime (the engine reports pid 0): nothing to show or kill.
  const pid = idle || !s.pid ? undefined : s.pid;
  return (
    <tr data-testid="socket-row" data-runtime={s.runtime} data-index={s.index} data-up={String(s.up)}>
      <td>{s.index}</td>
      <td>
        <span class={`dot ${st}`} /> {s.up ? 'up' : idle ? 'not needed' : 'down'}
      </td>
      <td class={st === 'down' ? 'bad' : 'muted'}>{s.reason}</td>
      <td class="muted" title={new Date(s.ts * 1000).toISOString()}>
        {fmtAgo(s.ts)}
      </td>
      <td class="num">{s.restarts}</td>
      <td class="num">{pid ?? '–'}</td>
      <td class="num">{pid != null && s.cpu_percent != null ? `${s.cpu_percent.toFixed(1)} %` : '–'}</td>
      <td class="num">{fmtBytes(pid != null ? s.rss_bytes : undefined)}</td>
      <td>
        <code class="muted small">{s.uri}</code>
      </td>
      <td>
        {pid != null && (
          <button
            class="small danger"
            data-testid="kill-daemon"
            disabled={busy}
            title="SIGKILL this daemon; the supervisor restarts it"
            onClick={async () => {
              setBusy(true);
              try {
                await backend.killDaemon(s.runtime, s.index);
              } finally {
                setBusy(false);
              }
            }}
          >
            Kill
          </button>
        )}
      </td>
    </tr>
  );
}

/** Dependency installs and builds: running ones with their installer's output as it arrives. */
function WorkPanel({ work }: { work: WorkEntry[] }) {
  if (work.length === 0) return null;
  return (
    <section class="panel" data-testid="work-panel">
      <h3>Installs and builds</h3>
      <table class="grid">
        <thead>
          <tr>
            <th>Function</th>
            <th>Work</th>
            <th>State</th>
            <th class="num">Time</th>
            <th>Detail</th>
          </tr>
        </thead>
        <tbody>
          {work.map((w) => (
            <WorkRow w={w} key={`${w.kind}:${w.runtime}/${w.function}`} />
          ))}
        </tbody>
      </table>
    </section>
  );
}

function WorkRow({ w }: { w: WorkEntry }) {
  const [open, setOpen] = useState(false);
  const showLines = w.lines.length > 0 && (w.state !== 'ok' || open);
  return (
    <>
      <tr data-testid="work-row" data-kind={w.kind} data-function={w.function} data-state={w.state}>
        <td>
          <span class={`rt rt-${w.runtime}`}>{w.runtime}</span> {w.function}
        </td>
        <td>{w.kind === 'deps' ? 'dependencies' : 'build'}</td>
        <td class={w.state === 'failed' ? 'bad' : w.state === 'running' ? '' : 'muted'}>
          {w.state === 'running' ? (w.kind === 'deps' ? 'installing…' : 'building…') : w.state === 'ok' ? 'done' : 'failed'}
        </td>
        <td class="num">{w.ms != null ? `${(w.ms / 1000).toFixed(1)} s` : fmtAgo(w.started / 1000)}</td>
        <td class="muted small">
          {w.message && <span class="bad">{w.message} · </span>}
          {w.detail}
          {w.state === 'ok' && w.lines.length > 0 && (
            <button class="small" onClick={() => setOpen(!open)}>
              {open ? 'hide output' : 'output'}
            </button>
          )}
        </td>
      </tr>
      {showLines && (
        <tr>
          <td colSpan={5}>
            <pre class="work-lines" data-testid="work-lines">
              {w.lines.join('\n')}
            </pre>
          </td>
        </tr>
      )}
    </>
  );
}
