import { useMemo, useState } from 'preact/hooks';
import { useApp } from '../ctx';
import type { MappedRoute, Resolve } from '../contract';
import { statusClass } from '../format';

const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'];

/** A file path: opens in the editor in the app; in a browser shows where it is. */
export function FileLink({ path }: { path: string }) {
  const { backend, state } = useApp();
  const [shown, setShown] = useState(false);
  const root = state.catalog?.functions_root ?? state.health?.functions_root ?? '';
  return (
    <span class="file">
      <button
        class="link"
        data-testid="file-link"
        title={backend.kind === 'tauri' ? 'Open in editor' : 'Show the full path'}
        onClick={async () => {
          const opened = await backend.openFile(path).catch(() => false);
          if (!opened) setShown((s) => !s);
        }}
      >
        {path}
      </button>
      {shown && <code class="fullpath">{`${root}/${path}`}</code>}
    </span>
  );
}

/** How many routes: URL patterns, as the engine counts them (`routing.mapped_routes`). A pattern
 * served by several functions (e.g. GET by one, POST by another) is one route in several rows. */
export function routeCount(patterns: string[]): number {
  return new Set(patterns).size;
}

export function RoutesView() {
  const { state } = useApp();
  const [filter, setFilter] = useState('');
  const cat = state.catalog;
  const rows = useMemo(() => {
    if (!cat) return [];
    const shadowed = new Set(cat.shadowed_routes.map((s) => s.route));
    const out: { pattern: string; e: MappedRoute; conflict: boolean; shadowed: boolean }[] = [];
    for (const [pattern, entries] of Object.entries(cat.mapped_routes)) {
      for (const e of entries ?? [])
        out.push({ pattern, e, conflict: !!cat.mapped_route_conflicts[pattern], shadowed: shadowed.has(pattern) });
    }
    out.sort((a, b) => (a.pattern < b.pattern ? -1 : a.pattern > b.pattern ? 1 : 0));
    return out;
  }, [cat]);
  if (!cat) return <p class="muted">Loading the route map…</p>;
  const f = filter.trim().toLowerCase();
  const shown = f
    ? rows.filter(({ pattern, e }) =>
        [pattern, e.runtime, e.fn_name, e.entry, e.source, e.methods.join(' ')].join(' ').toLowerCase().includes(f),
      )
    : rows;
  const conflicts = Object.keys(cat.mapped_route_conflicts);
  return (
    <div class="routes">
      <Resolver />
      <div class="toolbar">
        <input
          type="search"
          placeholder="Filter routes (pattern, runtime, function, file)…"
          value={filter}
          onInput={(e) => setFilter((e.target as HTMLInputElement).value)}
          data-testid="route-filter"
        />
        <span class="muted" data-testid="route-count">
          {routeCount(shown.map((r) => r.pattern))} of {routeCount(Object.keys(cat.mapped_routes))} routes · runtime order {cat.runtime_order.join(' → ')}
        </span>
      </div>
      <table class="grid">
        <thead>
          <tr>
            <th>Route</th>
            <th>Methods</th>
            <th>Runtime</th>
            <th>Function</th>
            <th>File</th>
            <th>Source</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {shown.map(({ pattern, e, conflict, shadowed }) => (
            <tr
              key={`${pattern} ${e.runtime} ${e.fn_name} ${e.version}`}
              data-testid="route-row"
              data-pattern={pattern}
              data-runtime={e.runtime}
              data-methods={e.methods.join(',')}
              class={conflict ? 'bad' : undefined}
            >
              <td>
                <code>{pattern}</code>
              </td>
              <td>
                {e.methods.map((m) => (
                  <span class={`method m-${m.toLowerCase()}`} key={m}>
                    {m}
                  </span>
                ))}
              </td>
              <td>
                <span class={`rt rt-${e.runtime}`}>{e.runtime}</span>
              </td>
              <td>
                {e.fn_name}
                {e.version !== 'default' && <span class="tag">@{e.version}</span>}
              </td>
              <td>
                <FileLink path={e.entry} />
              </td>
              <td>
                <span class="tag">{e.source}</span>
              </td>
              <td>
                {conflict && <span class="tag bad">conflict</span>}
                {shadowed && <span class="tag warn">shadows another</span>}
                {e.allow_hosts.length > 0 && <span class="tag">hosts: {e.allow_hosts.join(', ')}</span>}
                {e.force_url && <span class="tag">force_url</span>}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {conflicts.length > 0 && (
        <section class="panel bad" data-testid="route-conflicts">
          <h3>Conflicts (answer 409 until resolved)</h3>
          <ul>
            {conflicts.map((p) => (
              <li key={p}>
                <code>{p}</code> is claimed by{' '}
                {(cat.conflict_claimants[p] ?? []).map((c, i) => (
                  <span key={c.entry}>
                    {i > 0 && ' and '}
                    <FileLink path={c.entry} /> ({c.runtime})
                  </span>
                ))}
              </li>
            ))}
          </ul>
        </section>
      )}
      {cat.shadowed_routes.length > 0 && (
        <section class="panel warn" data-testid="route-shadowed">
          <h3>Shadowed routes</h3>
          <table class="grid">
            <thead>
              <tr>
                <th>Route</th>
                <th>Winner</th>
                <th>Loser</th>
                <th>Why</th>
              </tr>
            </thead>
            <tbody>
              {cat.shadowed_routes.map((s) => (
                <tr key={`${s.route} ${s.loser.fn_name}`}>
                  <td>
                    <code>{s.route}</code>
                  </td>
                  <td>
                    {s.winner.fn_name} <span class={`rt rt-${s.winner.runtime}`}>{s.winner.runtime}</span>
                  </td>
                  <td>
                    {s.loser.fn_name} <span class={`rt rt-${s.loser.runtime}`}>{s.loser.runtime}</span>
                  </td>
                  <td class="muted">{s.reason}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>
      )}
      {cat.warnings.length > 0 && (
        <section class="panel">
          <h3>Warnings</h3>
          <ul>
            {cat.warnings.map((w) => (
              <li key={w}>{w}</li>
            ))}
          </ul>
        </section>
      )}
    </div>
  );
}

function Resolver() {
  const { backend } = useApp();
  const [method, setMethod] = useState('GET');
  const [url, setUrl] = useState('/');
  const [result, setResult] = useState<Resolve | null>(null);
  const [error, setError] = useState<string | null>(null);
  const run = async (e?: Event) => {
    e?.preventDefault();
    setError(null);
    try {
      setResult(await backend.resolve(method, url.startsWith('/') ? url : `/${url}`));
    } catch (err) {
      setResult(null);
      setError(String(err));
    }
  };
  return (
    <form class="panel resolver" onSubmit={run}>
      <strong>Which function answers?</strong>
      <select value={method} onChange={(e) => setMethod((e.target as HTMLSelectElement).value)} data-testid="resolve-method">
        {METHODS.map((m) => (
          <option key={m}>{m}</option>
        ))}
      </select>
      <input
        class="grow"
        value={url}
        onInput={(e) => setUrl((e.target as HTMLInputElement).value)}
        placeholder="/users/42?x=1"
        data-testid="resolve-url"
      />
      <button type="submit" data-testid="resolve-button">
        Resolve
      </button>
      {(result || error) && (
        <div class="resolve-result" data-testid="resolve-result" data-status={result?.status}>
          {error && <span class="bad">{error}</span>}
          {result && (
            <>
              <div>
                <span class={`status ${statusClass(result.status)}`}>{result.status}</span>{' '}
                <code>
                  {result.method} {result.path}
                </code>
                {result.route && (
                  <>
                    {' '}
                    → <code>{result.route}</code>
                  </>
                )}
                {result.file && (
                  <>
                    {' '}
                    · <FileLink path={result.file} />
                  </>
                )}
                {result.runtime && <span class={`rt rt-${result.runtime}`}>{result.runtime}</span>}
                {result.source && <span class="tag">{result.source}</span>}
              </div>
              {result.params && Object.keys(result.params).length > 0 && (
                <div>
                  params:{' '}
                  {Object.entries(result.params).map(([k, v]) => (
                    <code key={k} class="kv">
                      {k}={v}
                    </code>
                  ))}
                </div>
              )}
              {result.allow && <div>allow: {result.allow}</div>}
              {result.claimants && (
                <ul>
                  {result.claimants.map((c) => (
                    <li key={c.file}>
                      {c.route}: <FileLink path={c.file} /> ({c.runtime})
                    </li>
                  ))}
                </ul>
              )}
              <div class="why">
                <strong>Why:</strong> {result.why}
              </div>
            </>
          )}
        </div>
      )}
    </form>
  );
}
