import { useEffect, useState } from 'preact/hooks';
import { useApp } from '../ctx';
import type { RequestSummary, SendResult, Stages } from '../contract';
import { fmtMs, fmtTime, statusClass } from '../format';
import {
  download,
  har,
  lastTests,
  replay,
  requestDetail,
  runTests,
  saveTest,
  type RequestDetail,
  type ReplayResult,
  type TestRun,
} from '../inspect';

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
  ['route_us', 'route', 'accept to route decision: router, home and static-file checks'],
  ['deps_us', 'deps', "waiting for the function's dependency install"],
  ['admission_us', 'admission', 'the admission check for a worker-pool slot'],
  ['queue_us', 'queue', "waiting in the function's queue for a slot (shown only when it queued)"],
  ['body_us', 'body', 'reading the request body'],
  ['fault_us', 'fault', 'latency injected by the lab (shown only when set)'],
  ['connect_us', 'connect', 'getting a connection to the daemon (opened and greeted when none was free)'],
  ['build_us', 'build', 'building the rust/go function before its call (shown only when it built)'],
  ['cold_us', 'cold', "the cold part of a cold call: loading the Lua module, starting a rust/go function's process"],
  ['runtime_us', 'runtime', "send, the runtime's dispatch, and the reply back (the handler too when its runtime does not report it)"],
  ['handler_us', 'handler', 'the call itself: inside its daemon as the daemon measured it (python, node, php), or the Lua function'],
  ['reply_us', 'reply', 'parsing and validating the reply'],
  ['respond_us', 'respond', 'building the response and recording it'],
];

/** Stages drawn only when they took time: most calls neither queue, build, start cold nor meet a fault. */
const SOMETIMES = new Set<keyof Stages>(['fault_us', 'queue_us', 'build_us', 'cold_us']);

/** The request's stages one after another on one bar, scaled to its whole latency (the rest is
 * the engine's own routing and writing the response). */
export function Waterfall({ r }: { r: Pick<RequestSummary, 'stages' | 'latency_us' | 'cold' | 'queued'> }) {
  const stages = STAGES.filter(([k]) => !SOMETIMES.has(k) || r.stages[k] > 0);
  const total = Math.max(r.latency_us, stages.reduce((n, [k]) => n + r.stages[k], 0), 1);
  let at = 0;
  return (
    <div class="waterfall" data-testid="request-stages">
      <div class="wf-bar">
        {stages.map(([k, name, what]) => {
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
        {stages.map(([k, name, what]) => (
          <li key={k} title={what}>
            <span class={`wf-key wf-${name}`} /> {name} <span class="muted">{fmtMs(r.stages[k] / 1000)}</span>
          </li>
        ))}
        <li class="muted">of {fmtMs(r.latency_us / 1000)}</li>
      </ul>
    </div>
  );
}

/** The reason badge: nothing for an ordinary answer. */
function ReasonBadge({ r }: { r: RequestSummary }) {
  if (r.reason === 'ok' || r.reason === 'asset' || r.reason === 'admin') return null;
  const bad = r.status >= 500;
  return (
    <span class={`tag reason ${bad ? 'bad' : 'warn'}`} data-testid="request-reason" data-reason={r.reason}>
      {r.reason}
    </span>
  );
}

/** `req.body` / headers as editable text. */
function headerText(h: [string, string][]): string {
  return h
    .filter(([k]) => !['host', 'content-length', 'connection', 'x-fn-replay'].includes(k.toLowerCase()))
    .map(([k, v]) => `${k}: ${v}`)
    .join('\n');
}

function fmtJson(v: unknown): string {
  return v === undefined ? '(absent)' : JSON.stringify(v);
}

/** The diff of a replay: status, headers, body (per JSON path) and each stage. */
function DiffView({ result }: { result: ReplayResult }) {
  const d = result.diff;
  return (
    <div class="diff" data-testid="replay-diff" data-same={String(d.same)}>
      <p>
        Replayed as <code>{result.replay.record.id}</code>:{' '}
        <span class={`status ${statusClass(result.replay.record.status)}`}>{result.replay.record.status}</span>{' '}
        {d.same ? <span class="good">same answer</span> : <span class="warn">the answer changed</span>}
      </p>
      {result.files_changed.length > 0 && (
        <p data-testid="diff-files">
          New code since the original: {result.files_changed.map((f) => <code key={f}>{f} </code>)}
        </p>
      )}
      {result.notes.map((n, i) => (
        <p key={i} class="muted">
          {n}
        </p>
      ))}
      {d.status && (
        <p data-testid="diff-status">
          status {d.status[0]} → {d.status[1]}
        </p>
      )}
      {d.headers.length > 0 && (
        <ul class="headers" data-testid="diff-headers">
          {d.headers.map((h) => (
            <li key={h.name}>
              <span class="hk">{h.name}</span>: <del>{h.before ?? '(absent)'}</del> → <ins>{h.after ?? '(absent)'}</ins>
            </li>
          ))}
        </ul>
      )}
      {d.body.kind === 'json' && (
        <ul class="headers" data-testid="diff-body">
          {d.body.changes.map((c) => (
            <li key={c.path} data-path={c.path}>
              <code>{c.path}</code>: <del>{fmtJson(c.before)}</del> → <ins>{fmtJson(c.after)}</ins>
            </li>
          ))}
        </ul>
      )}
      {d.body.kind === 'text' && (
        <div data-testid="diff-body">
          <pre class="body">
            <del>{d.body.before}</del>
          </pre>
          <pre class="body">
            <ins>{d.body.after}</ins>
          </pre>
        </div>
      )}
      {d.body.kind === 'not_captured' && <p class="muted">The captured answer has no body (capture was off).</p>}
      <table class="grid" data-testid="diff-stages">
        <thead>
          <tr>
            <th>Stage</th>
            <th class="num">Before</th>
            <th class="num">After</th>
          </tr>
        </thead>
        <tbody>
          {d.stages.map((s) => (
            <tr key={s.stage}>
              <td>{s.stage}</td>
              <td class="num">{fmtMs(s.before_us / 1000)}</td>
              <td class="num">{fmtMs(s.after_us / 1000)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** Edit a captured request and send it again; shows the diff against the captured answer. */
function ReplayPanel({ r, detail }: { r: RequestSummary; detail: RequestDetail | null }) {
  const { backend } = useApp();
  const [method, setMethod] = useState(r.method);
  const [path, setPath] = useState(r.query ? `${r.path}?${r.query}` : r.path);
  const [headers, setHeaders] = useState('');
  const [body, setBody] = useState('');
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<ReplayResult | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [saved, setSaved] = useState<string | null>(null);
  // A request of its own gets a panel of its own (`key={r.id}` below): the fields start from
  // it when the panel mounts. Resetting them in an effect instead raced the user: effects run
  // after paint, which a busy machine delays past a first edit, and the edit was undone.
  // Revealed values are never shown: the editor starts from the masked capture, and an
  // untouched header list or body is replayed from the engine's own (unmasked) copy. The
  // capture arrives after the panel opens: it fills only these two fields, never an edit of
  // the method or path made meanwhile.
  useEffect(() => {
    setHeaders(detail?.request ? headerText(detail.request.headers) : '');
    setBody(detail?.request?.body ?? '');
  }, [detail]);
  const send = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const original = detail?.request;
      const edit: Parameters<typeof replay>[1] = { id: r.id, method };
      edit.path = path.startsWith('/') ? path : `/${path}`;
      if (!original || headers !== headerText(original.headers)) edit.headers = parseHeaders(headers);
      if (!original || body !== original.body) edit.body = body;
      if (!edit.path.includes('?')) edit.query = '';
      setResult(await replay(backend, edit));
    } catch (err) {
      setResult(null);
      setError(String(err));
    } finally {
      setBusy(false);
    }
  };
  const save = async () => {
    setError(null);
    try {
      const name = `${r.method} ${r.path} answers ${r.status}`;
      setSaved((await saveTest(backend, r.id, { name, keep_secrets: false })).file);
      // Run it at once: the strip above the log shows the new test's first result (the run
      // arrives as a `tests_run` event).
      await runTests(backend);
    } catch (err) {
      setError(String(err));
    }
  };
  const copyCurl = async () => {
    if (detail) await navigator.clipboard?.writeText(detail.curl).catch(() => {});
  };
  return (
    <form
      class="replay"
      onSubmit={send}
      data-testid="replay-panel"
      data-detail={detail ? (detail.request ? 'captured' : 'not_captured') : 'loading'}
    >
      <h4>Replay</h4>
      {detail && !detail.request && (
        <p class="muted">Headers and body were not captured (no dashboard was open): the replay sends none unless you add them.</p>
      )}
      <div class="row">
        <select value={method} onChange={(e) => setMethod((e.target as HTMLSelectElement).value)} data-testid="replay-method">
          {['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'].map((m) => (
            <option key={m}>{m}</option>
          ))}
        </select>
        <input class="grow" value={path} onInput={(e) => setPath((e.target as HTMLInputElement).value)} data-testid="replay-path" />
        <button type="submit" disabled={busy} data-testid="replay-button">
          {busy ? 'Replaying…' : 'Replay'}
        </button>
      </div>
      <div class="row">
        <textarea rows={3} value={headers} onInput={(e) => setHeaders((e.target as HTMLTextAreaElement).value)} data-testid="replay-headers" />
        <textarea rows={3} value={body} onInput={(e) => setBody((e.target as HTMLTextAreaElement).value)} data-testid="replay-body" />
      </div>
      <div class="row">
        <button type="button" onClick={copyCurl} disabled={!detail} data-testid="copy-curl" title={detail?.curl}>
          Copy as curl
        </button>
        <button
          type="button"
          onClick={() => har(backend, [r.id]).then((t) => download(`${r.id}.har`, t)).catch((e) => setError(String(e)))}
          data-testid="export-har"
        >
          Export HAR
        </button>
        <button type="button" onClick={save} data-testid="save-test" title="Store this request and its answer's status, content type, top-level JSON values and latency as a test">
          Save as test
        </button>
        {saved && (
          <span class="muted" data-testid="saved-test">
            saved as <code>{saved}</code>
          </span>
        )}
      </div>
      {error && <div class="bad">{error}</div>}
      {result && <DiffView result={result} />}
    </form>
  );
}

function Detail({ r }: { r: RequestSummary }) {
  const { backend } = useApp();
  // The engine's own view of the request: captured headers and bodies, and the full why
  // (the nearest routes of a 404 are worked out when asked, not per request).
  const [detail, setDetail] = useState<RequestDetail | null>(null);
  useEffect(() => {
    let live = true;
    setDetail(null);
    requestDetail(backend, r.id)
      .then((d) => live && setDetail(d))
      .catch(() => {});
    return () => {
      live = false;
    };
  }, [r.id]);
  const why = detail?.record.why ?? r.why;
  // Output, log lines and headers are not in the live summary: they come with the detail.
  const full = detail?.record;
  return (
    <section class="panel detail" data-testid="request-detail">
      <h3>
        {r.method} <code>{r.path}</code> <span class={`status ${statusClass(r.status)}`}>{r.status}</span>
        <ReasonBadge r={r} />
        <span class="muted"> · {r.id}</span>
      </h3>
      {why && (
        <p class="why" data-testid="request-why">
          {why}
        </p>
      )}
      <p class="muted">
        {fmtTime(r.ts)} · {fmtMs(r.latency_us / 1000)} · {r.function ?? '–'} ({r.runtime ?? '–'}
        {r.socket_index != null ? ` socket ${r.socket_index}` : ''}) · {r.cold ? 'cold' : 'warm'}
        {r.queued ? ' · waited in queue' : ''}
      </p>
      <h4>Where the time went</h4>
      <Waterfall r={r} />
      {(full?.stdout || full?.stderr) && (
        <>
          <h4>Handler output</h4>
          <pre class="body" data-testid="request-output">
            {full.stdout}
            {full.stderr && <span class="bad">{full.stderr}</span>}
          </pre>
        </>
      )}
      {full?.logs && full.logs.length > 0 && (
        <>
          <h4>Engine log</h4>
          <pre class="body" data-testid="request-logs">
            {full.logs.map((l, i) => (
              <div key={i} class={`logline ${l.level === 'error' || l.level === 'warn' ? 'stderr' : ''}`}>
                <span class="stream">
                  {fmtTime(l.ts)} {l.level}
                  {l.source === 'error_log' ? ' error.log' : ''}
                </span>
                <span class="text">{l.line}</span>
              </div>
            ))}
          </pre>
        </>
      )}
      <h4>Response headers</h4>
      <Headers headers={full?.headers ?? []} testid="request-headers" />
      <ReplayPanel key={r.id} r={r} detail={detail} />
    </section>
  );
}

/** The saved tests' last run: one chip per test, green or red (re-run after every reload). */
function TestStrip() {
  const { state, backend } = useApp();
  const [initial, setInitial] = useState<TestRun | null>(null);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    lastTests(backend)
      .then((t) => setInitial(t.last))
      .catch(() => {});
  }, []);
  const run = state.tests ?? initial;
  if (!run) return null;
  return (
    <div class="test-strip" data-testid="test-strip" data-failed={run.failed} data-passed={run.passed}>
      <strong>Tests</strong>{' '}
      <span class={run.failed ? 'bad' : 'good'}>
        {run.passed} passed, {run.failed} failed
      </span>{' '}
      <span class="muted">({run.trigger})</span>
      {run.results.map((t) => (
        <span
          key={t.file}
          class={`tag ${t.ok ? 'good' : 'bad'}`}
          data-testid="test-chip"
          data-file={t.file}
          data-ok={String(t.ok)}
          title={t.ok ? `${t.name}: passed in ${t.latency_ms.toFixed(0)} ms` : `${t.name}: ${t.failures.join('; ')}`}
        >
          {t.ok ? '✓' : '✗'} {t.name}
        </span>
      ))}
      <button
        type="button"
        disabled={busy}
        onClick={() => {
          setBusy(true);
          runTests(backend)
            .then(setInitial)
            .catch(() => {})
            .finally(() => setBusy(false));
        }}
        data-testid="run-tests"
      >
        Run
      </button>
      {run.failed > 0 && (
        <ul class="test-failures" data-testid="test-failures">
          {run.results
            .filter((t) => !t.ok)
            .map((t) => (
              <li key={t.file} data-testid="test-failure" data-file={t.file}>
                <strong>{t.name}</strong> ({t.file}
                {t.status != null ? `, answered ${t.status}` : ''}):
                <ul>
                  {t.failures.map((f, i) => (
                    <li key={i} class="bad">
                      {f}
                    </li>
                  ))}
                </ul>
              </li>
            ))}
        </ul>
      )}
    </div>
  );
}

export function RequestsView() {
  const { state } = useApp();
  const [selected, setSelected] = useState<string | null>(null);
  const [filter, setFilter] = useState('');
  const [admin, setAdmin] = useState(false);
  const [ownCalls, setOwnCalls] = useState(true);
  const f = filter.trim().toLowerCase();
  // Admin calls (the dashboard's own among them) are a filter of their own; so are the calls
  // the engine makes itself (jobs, schedules, keep-warm pings).
  const shown = state.requests.filter((r) => (admin || r.kind !== 'admin') && (ownCalls || !r.trigger));
  const rows = f
    ? shown.filter((r) => `${r.method} ${r.path} ${r.status} ${r.runtime} ${r.function} ${r.reason} ${r.trigger ?? ''}`.toLowerCase().includes(f))
    : shown;
  const sel = selected ? state.requests.find((r) => r.id === selected) : undefined;
  return (
    <div class="requests">
      <TestStrip />
      <SendPanel />
      <div class="toolbar">
        <input
          type="search"
          placeholder="Filter (method, path, status, function, reason)…"
          value={filter}
          onInput={(e) => setFilter((e.target as HTMLInputElement).value)}
        />
        <label>
          <input type="checkbox" checked={admin} onChange={(e) => setAdmin((e.target as HTMLInputElement).checked)} data-testid="show-admin" />{' '}
          admin calls
        </label>
        <label title="calls the engine makes itself: jobs, schedules and keep-warm pings">
          <input
            type="checkbox"
            checked={ownCalls}
            data-testid="requests-show-scheduled"
            onChange={(e) => setOwnCalls((e.target as HTMLInputElement).checked)}
          />{' '}
          scheduled, keep-warm and job calls
        </label>
        <span class="muted">
          {shown.length} requests (newest first, last 500 kept
          {state.requestsLeftOut > 0 ? `; ${state.requestsLeftOut} more came too fast to list` : ''}) · click a row for why, its stages
          and replay
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
                  data-reason={r.reason}
                  data-trigger={r.trigger ?? 'http'}
                  data-query={r.query ?? ''}
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
                    <ReasonBadge r={r} />
                  </td>
                  <td class="num">{fmtMs(r.latency_us / 1000)}</td>
                  <td>{r.runtime && <span class={`rt rt-${r.runtime}`}>{r.runtime}</span>}</td>
                  <td class="num">{r.socket_index ?? '–'}</td>
                  <td>{r.queued ? <span class="tag warn">queued</span> : ''}</td>
                  <td>{r.kind !== 'function' ? '' : r.cold ? <span class="tag">cold</span> : <span class="muted">warm</span>}</td>
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
