import { useState } from 'preact/hooks';
import { useApp } from '../ctx';
import type { RequestRecord, SendResult, Stages } from '../contract';
import { fmtMs, fmtTime, statusClass } from '../format';

/** `X-Fn-*` first, then the rest, each group in order of arrival. */
export function sortHeaders(h: [string, string][]): [string, string][] {
  const fn = h.filter(([k]) => k.toLowerCase().startsWith('x-fn-'));
  return [...fn, ...h.filter(([k]) => !k.toLowerCase().startsWith('x-fn-'))];
}

function Headers({ headers, testid }: { headers: [string, string][]; testid?: string }) {
  return (
    <ul class="headers" data-testid={testid}>
      {sortHeaders(headers).map(([k, v], i) => (
        <li key={i} class={k.toLowerCase().startsWith('x-fn-') ? 'fn' : undefined}>
          <span class="hk">{k}</span>: <span class="hv">{v}</span>
        </li>
      ))}
    </ul>
  );
}

function parseHeaders(text: string): [string, string][] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && l.includes(':'))
    .map((l) => {
      const i = l.indexOf(':');
      return [l.slice(0, i).trim(), l.slice(i + 1).trim()] as [string, string];
    })
    .filter(([k]) => k);
}

function SendPanel() {
  const { backend } = useApp();
  const [method, setMethod] = useState('GET');
  const [path, setPath] = useState('/debug/whoami');
  const [headers, setHeaders] = useState('');
  const [body, setBody] = useState('');
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<SendResult | null>(null);
  const [error, setError] = useState<string | null>(null);
  const send = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      setResult(
        await backend.sendRequest({ method, path: path.startsWith('/') ? path : `/${path}`, headers: parseHeaders(headers), body }),
      );
    } catch (err) {
      setResult(null);
      setError(String(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="panel send" onSubmit={send}>
      <h3>Send a request</h3>
      <div class="row">
        <select value={method} onChange={(e) => setMethod((e.target as HTMLSelectElement).value)} data-testid="send-method">
          {['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'].map((m) => (
            <option key={m}>{m}</option>
          ))}
        </select>
        <input class="grow" value={path} onInput={(e) => setPath((e.target as HTMLInputElement).value)} data-testid="send-path" />
        <button type="submit" disabled={busy} data-testid="send-button">
          {busy ? 'Sending…' : 'Send'}
        </button>
      </div>
      <div class="row">
        <textarea
          rows={3}
          placeholder={'Headers, one per line\nContent-Type: application/json'}
          value={headers}
          onInput={(e) => setHeaders((e.target as HTMLTextAreaElement).value)}
          data-testid="send-headers"
        />
        <textarea
          rows={3}
          placeholder="Body"
          value={body}
          onInput={(e) => setBody((e.target as HTMLTextAreaElement).value)}
          data-testid="send-body"
        />
      </div>
      {(result || error) && (
        <div class="send-result" data-testid="send-result" data-status={result?.status}>
          {error && <div class="bad">{error}</div>}
          {result && (
            <>
              <div>
                <span class={`status ${statusClass(result.status)}`}>{result.status}</span> in {fmtMs(result.ms)}
              </div>
              <Headers headers={result.headers} />
              <pre class="body">{result.body || <span class="muted">(empty body)</span>}</pre>
            </>
          )}
        </div>
      )}
    </form>
  );
}

const STAGES: [keyof Stages, string, string][] = [
  ['deps_us', 'deps', "waiting for the function's dependency install"],
  ['admission_us', 'admission', 'waiting for a worker-pool slot, queue included'],
  ['body_us', 'body', 'reading the request body'],
  ['runtime_us', 'runtime', 'connect, the handler, and the reply back'],
  ['reply_us', 'reply', 'parsing and validating the reply'],
];

/** The request's stages one after another on one bar, scaled to its whole latency (the rest is
 * the engine's own routing and writing the response). */
export function Waterfall({ r }: { r: RequestRecord }) {
  const total = Math.max(r.latency_us, STAGES.reduce((n, [k]) => n + r.stages[k], 0), 1);
  let at = 0;
  return (
    <div class="waterfall" data-testid="request-stages">
      <div class="wf-bar">
        {STAGES.map(([k, name, what]) => {
          const left = (at / total) * 100;
          at += r.stages[k];
          return (
            <span
              key={k}
              class={`wf-seg wf-${name}`}
              data-stage={name}
              data-us={r.stages[k]}
              style={{ left: `${left}%`, width: `${(r.stages[k] / total) * 100}%` }}
              title={`${name}: ${fmtMs(r.stages[k] / 1000)} (${what})`}
            />
          );
        })}
      </div>
      <ul class="wf-legend">
        {STAGES.map(([k, name, what]) => (
          <li key={k} title={what}>
            <span class={`wf-key wf-${name}`} /> {name} <span class="muted">{fmtMs(r.stages[k] / 1000)}</span>
          </li>
        ))}
        <li class="muted">of {fmtMs(r.latency_us / 1000)}</li>
      </ul>
    </div>
  );
}

function Detail({ r }: { r: RequestRecord }) {
  return (
    <section class="panel detail" data-testid="request-detail">
      <h3>
        {r.method} <code>{r.path}</code> <span class={`status ${statusClass(r.status)}`}>{r.status}</span>
        <span class="muted"> · {r.id}</span>
      </h3>
      <p class="muted">
        {fmtTime(r.ts)} · {fmtMs(r.latency_us / 1000)} · {r.function ?? '–'} ({r.runtime ?? '–'}
        {r.socket_index != null ? ` socket ${r.socket_index}` : ''}) · {r.cold ? 'cold' : 'warm'}
        {r.queued ? ' · waited in queue' : ''}
      </p>
      <h4>Where the time went</h4>
      <Waterfall r={r} />
      <h4>Response headers</h4>
      <Headers headers={r.headers} testid="request-headers" />
    </section>
  );
}

export function RequestsView() {
  const { state } = useApp();
  const [selected, setSelected] = useState<string | null>(null);
  const [filter, setFilter] = useState('');
  const [ownCalls, setOwnCalls] = useState(true);
  const f = filter.trim().toLowerCase();
  const shown = ownCalls ? state.requests : state.requests.filter((r) => !r.trigger);
  const rows = f
    ? shown.filter((r) => `${r.method} ${r.path} ${r.status} ${r.runtime} ${r.function} ${r.trigger ?? ''}`.toLowerCase().includes(f))
    : shown;
  const sel = selected ? state.requests.find((r) => r.id === selected) : undefined;
  return (
    <div class="requests">
      <SendPanel />
      <div class="toolbar">
        <input
          type="search"
          placeholder="Filter (method, path, status, function)…"
          value={filter}
          onInput={(e) => setFilter((e.target as HTMLInputElement).value)}
        />
        <label title="calls the engine makes itself: schedules and keep-warm pings">
          <input
            type="checkbox"
            checked={ownCalls}
            data-testid="requests-show-scheduled"
            onChange={(e) => setOwnCalls((e.target as HTMLInputElement).checked)}
          />{' '}
          scheduled, keep-warm and job calls
        </label>
        <span class="muted">
          {state.requests.length} requests (newest first, last 500 kept) · click a row for its headers
        </span>
      </div>
      <div class="split">
        <div class="scroll">
          <table class="grid clickable">
            <thead>
              <tr>
                <th>Time</th>
                <th>Method</th>
                <th>Path</th>
                <th class="num">Status</th>
                <th class="num">Latency</th>
                <th>Runtime</th>
                <th class="num">Socket</th>
                <th>Queued</th>
                <th>Start</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((r) => (
                <tr
                  key={r.id}
                  data-testid="request-row"
                  data-path={r.path}
                  data-status={r.status}
                  class={r.id === selected ? 'selected' : undefined}
                  onClick={() => setSelected(r.id === selected ? null : r.id)}
                >
                  <td class="muted">{fmtTime(r.ts)}</td>
                  <td>
                    <span class={`method m-${r.method.toLowerCase()}`}>{r.method}</span>
                  </td>
                  <td>
                    <code>{r.path}</code>
                    {r.trigger && (
                      <span class="tag" data-testid="request-trigger" title="made by the engine, not a client">
                        {r.trigger === 'keep_warm' ? 'keep-warm' : r.trigger}
                      </span>
                    )}
                  </td>
                  <td class="num">
                    <span class={`status ${statusClass(r.status)}`}>{r.status}</span>
                  </td>
                  <td class="num">{fmtMs(r.latency_us / 1000)}</td>
                  <td>{r.runtime && <span class={`rt rt-${r.runtime}`}>{r.runtime}</span>}</td>
                  <td class="num">{r.socket_index ?? '–'}</td>
                  <td>{r.queued ? <span class="tag warn">queued</span> : ''}</td>
                  <td>{r.cold ? <span class="tag">cold</span> : <span class="muted">warm</span>}</td>
                </tr>
              ))}
              {rows.length === 0 && (
                <tr>
                  <td colSpan={9} class="muted empty">
                    No requests yet. Send one above, or call a route of the project.
                  </td>
                </tr>
              )}
            </tbody>
          </table>
        </div>
        {sel && <Detail r={sel} />}
      </div>
    </div>
  );
}
