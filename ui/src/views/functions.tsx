// Functions: create one from a template, edit its code, config and env, test it, delete it —
// through the engine's console API (`/_fn/function*`, docs/dashboard.md). Every write carries
// the tag of what was loaded (`If-Match`): a file changed on disk meanwhile answers 409 and
// the view shows both versions instead of overwriting. Writes need the engine's write switch
// (`FN_CONSOLE_WRITE_ENABLED=1`; the desktop app turns it on); without it the view is read-only.
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { Backend } from '../backend';
import type { EnvView } from '../bindings/EnvView';
import type { FileEntry } from '../bindings/FileEntry';
import type { FunctionSummary } from '../bindings/FunctionSummary';
import type { UiState } from '../bindings/UiState';
import { useApp } from '../ctx';
import { CodeEditor, type EditorHandle } from './editor';

interface Reply {
  status: number;
  body: any;
  ms: number;
}

/** One call to the console API, through the backend's request path (same origin in a
 * browser, the app's `send_request` in the desktop app): JSON in, status + JSON out. */
async function call(backend: Backend, method: string, path: string, body?: unknown, ifMatch?: string | null): Promise<Reply> {
  const headers: [string, string][] = [['X-Fn-Request', '1']];
  if (body !== undefined) headers.push(['Content-Type', 'application/json']);
  if (ifMatch) headers.push(['If-Match', ifMatch]);
  const r = await backend.sendRequest({ method, path, headers, body: body === undefined ? '' : JSON.stringify(body) });
  let parsed: any = null;
  try {
    parsed = r.body ? JSON.parse(r.body) : null;
  } catch {
    parsed = { error: r.body.slice(0, 300) };
  }
  return { status: r.status, body: parsed, ms: r.ms };
}

function fnQuery(f: { runtime: string; name: string; version?: string | null }, extra: Record<string, string> = {}) {
  const q = new URLSearchParams({ runtime: f.runtime, name: f.name, ...extra });
  if (f.version) q.set('version', f.version);
  return q.toString();
}

const errorOf = (r: Reply) => (r.body && typeof r.body.error === 'string' ? r.body.error : `HTTP ${r.status}`);

/** Entry file extension of a runtime's template. */
const EXT: Record<string, string> = { node: 'js', python: 'py', php: 'php', lua: 'lua', rust: 'rs' };
const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'];

/** The URL a file route path gets (`users/[id]` → `/users/:id`), as discovery maps it. */
export function urlOfFileRoute(path: string): string {
  const segs = path
    .split('/')
    .filter((s) => s && !['index', 'handler', 'main'].includes(s))
    .map((s) => s.replace(/^\[\[\.\.\.(.+)\]\]$/, ':$1*').replace(/^\[\.\.\.(.+)\]$/, ':$1*').replace(/^\[(.+)\]$/, ':$1'));
  return '/' + segs.join('/');
}

/** The function name (root-relative file) of a file route: method prefix on the file name. */
export function fileRouteName(path: string, method: string, runtime: string): string {
  const parts = path.replace(/^\/+|\/+$/g, '').split('/');
  const last = parts.pop() || 'index';
  const file = `${method ? method.toLowerCase() + '.' : ''}${last}.${EXT[runtime] ?? 'js'}`;
  return [...parts, file].join('/');
}

function NewFunction(props: { runtimes: string[]; onCreated(f: FunctionSummary, line: string): void; onClose(): void }) {
  const { backend } = useApp();
  const runtimes = props.runtimes.filter((r) => EXT[r]);
  const [runtime, setRuntime] = useState(runtimes[0] ?? 'node');
  const [shape, setShape] = useState<'folder' | 'file'>('folder');
  const [name, setName] = useState('');
  const [method, setMethod] = useState('');
  const [methods, setMethods] = useState<string[]>(['GET']);
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const fnName = shape === 'folder' ? name.trim() : fileRouteName(name.trim(), method, runtime);
  const url =
    shape === 'folder' ? `/${name.trim()}` : urlOfFileRoute(name.trim().replace(/^\/+/, ''));
  const create = async () => {
    setBusy(true);
    setError('');
    const started = performance.now();
    try {
      const body = shape === 'folder' ? { methods } : {};
      const r = await call(backend, 'POST', `/_fn/function?${fnQuery({ runtime, name: fnName })}`, body);
      if (r.status !== 201) return setError(errorOf(r));
      const ms = Math.round(performance.now() - started);
      props.onCreated(
        { runtime, name: fnName, version: null, function_dir: r.body.function_dir ?? '', file_path: r.body.file_path ?? '', explicit: shape === 'folder', routes: r.body.routes ?? [] },
        `Created ${(r.body.files ?? []).join(', ')} · served at ${(r.body.routes ?? []).map((x: any) => x.route).join(', ') || '(not published: see the reload errors)'} in ${ms} ms`,
      );
    } catch (e) {
      setError(String(e));
    } finally {
      setBusy(false);
    }
  };
  return (
    <div class="dialog" role="dialog" data-testid="fn-new-dialog">
      <h3>New function</h3>
      <label>
        Runtime{' '}
        <select value={runtime} onChange={(e) => setRuntime((e.target as HTMLSelectElement).value)} data-testid="fn-new-runtime">
          {runtimes.map((r) => (
            <option key={r} value={r}>
              {r}
            </option>
          ))}
        </select>
      </label>
      <label>
        Shape{' '}
        <select value={shape} onChange={(e) => setShape((e.target as HTMLSelectElement).value as 'folder' | 'file')} data-testid="fn-new-shape">
          <option value="folder">folder function (name/ with fn.config.json, like fastfn init)</option>
          <option value="file">file route (path → URL, [id] params)</option>
        </select>
      </label>
      <label>
        {shape === 'folder' ? 'Name' : 'Path'}{' '}
        <input
          value={name}
          placeholder={shape === 'folder' ? 'hello' : 'users/[id]'}
          onInput={(e) => setName((e.target as HTMLInputElement).value)}
          data-testid="fn-new-name"
        />
      </label>
      {shape === 'file' ? (
        <label>
          Method prefix{' '}
          <select value={method} onChange={(e) => setMethod((e.target as HTMLSelectElement).value)} data-testid="fn-new-method">
            <option value="">none (GET)</option>
            {METHODS.map((m) => (
              <option key={m} value={m}>
                {m}
              </option>
            ))}
          </select>
        </label>
      ) : (
        <span class="methods">
          Methods{' '}
          {METHODS.map((m) => (
            <label key={m} class="inline">
              <input
                type="checkbox"
                checked={methods.includes(m)}
                onChange={(e) =>
                  setMethods((e.target as HTMLInputElement).checked ? [...methods, m] : methods.filter((x) => x !== m))
                }
              />
              {m}
            </label>
          ))}
        </span>
      )}
      <p class="muted">
        File <code data-testid="fn-new-file">{shape === 'folder' ? `${fnName}/handler.${EXT[runtime]}` : fnName}</code> · URL{' '}
        <code>{url}</code> · template of <code>fastfn init -t {runtime}</code>
      </p>
      {error && (
        <p class="error" data-testid="fn-new-error">
          {error}
        </p>
      )}
      <div class="toolbar">
        <button disabled={busy || !name.trim()} onClick={create} data-testid="fn-new-create">
          Create
        </button>
        <button class="danger" onClick={props.onClose}>
          Cancel
        </button>
      </div>
    </div>
  );
}

interface Detail {
  runtime: string;
  name: string;
  version: string | null;
  function_dir: string;
  file_path: string;
  routes: { route: string; methods: string[] }[];
  fn_config: Record<string, any> | null;
  config_etag: string | null;
  fn_env: Record<string, EnvView>;
  env_etag: string | null;
  policy: Record<string, any>;
}

/** A 409: the file changed on disk since it was loaded. */
interface Conflict {
  path: string;
  current: { etag: string | null; content: string | null };
  yours: { content: string };
}

type Sub = 'code' | 'config' | 'env' | 'files' | 'test';

function Result(props: { line: string; bad?: boolean; onLine?: (n: number) => void }) {
  // "… line 12 …" / "file.js:12" in an error: clickable, jumps the editor there.
  const m = props.line.match(/(?:line |:)(\d+)/);
  return (
    <div class={`result ${props.bad ? 'bad' : 'ok'}`} data-testid="fn-result">
      {props.line}
      {props.bad && m && props.onLine && (
        <>
          {' '}
          <button class="link" data-testid="fn-result-line" onClick={() => props.onLine!(Number(m[1]))}>
            go to line {m[1]}
          </button>
        </>
      )}
    </div>
  );
}

function FunctionView(props: { fn: FunctionSummary; writable: boolean; initialLine?: string; onDeleted(): void }) {
  const { backend } = useApp();
  const f = props.fn;
  const [d, setD] = useState<Detail | null>(null);
  const [sub, setSub] = useState<Sub>('code');
  const [line, setLine] = useState<{ text: string; bad: boolean } | null>(props.initialLine ? { text: props.initialLine, bad: false } : null);
  const [files, setFiles] = useState<FileEntry[]>([]);
  const [path, setPath] = useState('');
  const [file, setFile] = useState<{ content: string; etag: string; key: string } | null>(null);
  const [text, setText] = useState('');
  const [conflict, setConflict] = useState<Conflict | null>(null);
  const editor = useRef<EditorHandle | null>(null);
  const key = `${f.runtime}/${f.name}@${f.version ?? ''}`;

  const loadDetail = async () => {
    const r = await call(backend, 'GET', `/_fn/function?${fnQuery(f, { include_code: '0' })}`);
    if (r.status === 200) setD(r.body);
    else setLine({ text: errorOf(r), bad: true });
    const fl = await call(backend, 'GET', `/_fn/function-files?${fnQuery(f)}`);
    if (fl.status === 200) setFiles(fl.body.files);
    return r.status === 200 ? (r.body as Detail) : null;
  };
  const loadFile = async (p: string) => {
    const r = await call(backend, 'GET', `/_fn/function-file-content?${fnQuery(f, { path: p })}`);
    if (r.status !== 200) return setLine({ text: errorOf(r), bad: true });
    setPath(p);
    setFile({ content: r.body.content ?? '', etag: r.body.etag, key: `${p}:${r.body.etag}:${Date.now()}` });
    setText(r.body.content ?? '');
    setConflict(null);
  };
  useEffect(() => {
    setD(null);
    setFile(null);
    void loadDetail().then((det) => {
      if (!det) return;
      const prefix = det.function_dir ? det.function_dir + '/' : '';
      void loadFile(det.file_path.startsWith(prefix) ? det.file_path.slice(prefix.length) : det.file_path);
    });
  }, [key]);

  /** After a save: call the function's first plain GET route and say what answered. */
  const probe = async (started: number, reloadMs: number) => {
    const route = d?.routes.find((r) => r.methods.includes('GET') && !/[:*]/.test(r.route));
    if (!route) return setLine({ text: `Saved · reloaded in ${reloadMs} ms`, bad: false });
    const r = await backend.sendRequest({ method: 'GET', path: route.route, headers: [], body: '' });
    const total = Math.round(performance.now() - started);
    if (r.status >= 500) {
      let msg = r.body;
      try {
        msg = JSON.parse(r.body).error ?? r.body;
      } catch {
        /* text */
      }
      setLine({ text: `Saved, but ${route.route} answers ${r.status}: ${String(msg).split('\n').slice(0, 3).join(' ')}`, bad: true });
    } else setLine({ text: `Saved · served by new code in ${total} ms (GET ${route.route} → ${r.status})`, bad: false });
  };

  const saveFile = async (force = false) => {
    if (!file || !props.writable) return;
    const started = performance.now();
    const r = await call(
      backend,
      'PUT',
      `/_fn/function-file-content?${fnQuery(f)}`,
      { path, content: text },
      force ? conflict?.current.etag ?? null : file.etag,
    );
    if (r.status === 409) {
      setConflict(r.body);
      return setLine({ text: `${path} changed on disk since it was loaded: nothing was written`, bad: true });
    }
    if (r.status !== 200) return setLine({ text: errorOf(r), bad: true });
    setConflict(null);
    // The saved text is the file now (same key: the editor keeps its cursor and history).
    setFile({ ...file, content: text, etag: r.body.etag });
    const errs = r.body.reload?.errors ?? [];
    if (errs.length) return setLine({ text: `Saved, but the reload reports: ${errs.map((e: any) => e.message).join('; ')}`, bad: true });
    const warnings: string[] = r.body.warnings ?? [];
    if (warnings.length) return setLine({ text: `Saved, with warnings: ${warnings.join('; ')}`, bad: true });
    // The runtime's own syntax check of the saved file (node --check, python compile, php -l).
    const syn = r.body.syntax;
    if (syn && !syn.ok)
      return setLine({ text: `Saved, but ${path} does not compile${syn.line ? ` (line ${syn.line})` : ''}: ${syn.message ?? ''}`, bad: true });
    await loadDetail();
    await probe(started, r.body.reload?.ms ?? 0);
  };

  // Confirmed in the page (a native confirm() is a dialog-plugin call in the app).
  const [confirming, setConfirming] = useState(false);
  const del = async () => {
    setConfirming(false);
    const r = await call(backend, 'DELETE', `/_fn/function?${fnQuery(f)}`);
    if (r.status !== 200) return setLine({ text: errorOf(r), bad: true });
    props.onDeleted();
  };

  if (!d) return <p class="muted">Loading {f.name}…</p>;
  return (
    <div class="fn-view" data-testid="fn-view">
      <div class="toolbar">
        <h2>
          <span class={`rt rt-${d.runtime}`}>{d.runtime}</span> <code data-testid="fn-name">{d.name}</code>
          {d.version && <span class="tag">@{d.version}</span>}
        </h2>
        <span class="muted">
          {d.routes.map((r) => (
            <span key={r.route} class="tag">
              {r.methods.join(',')} {r.route}
            </span>
          ))}
        </span>
        <span class="spacer" />
        {backend.kind === 'tauri' && (
          <button class="small" onClick={() => backend.openFile(d.file_path)} data-testid="fn-open-editor">
            Open in editor
          </button>
        )}
        <button class="small danger" disabled={!props.writable} onClick={() => setConfirming(true)} data-testid="fn-delete">
          Delete…
        </button>
      </div>
      {confirming && (
        <div class="banner bad" data-testid="fn-delete-confirm-bar">
          Delete <code>{f.name}</code> ({f.runtime})?{' '}
          {f.explicit ? (
            <>
              Its folder <code>{d.function_dir}/</code> and everything in it are removed.
            </>
          ) : (
            <>
              The file <code>{d.file_path}</code> is removed.
            </>
          )}{' '}
          <button class="small danger" onClick={del} data-testid="fn-delete-confirm">
            Delete
          </button>{' '}
          <button class="small" onClick={() => setConfirming(false)}>
            Cancel
          </button>
        </div>
      )}
      <nav class="subtabs">
        {(['code', 'config', 'env', 'files', 'test'] as Sub[]).map((s) => (
          <button key={s} class={`small ${s === sub ? '' : 'off'}`} onClick={() => setSub(s)} data-testid={`fn-sub-${s}`}>
            {s}
          </button>
        ))}
      </nav>
      {line && <Result line={line.text} bad={line.bad} onLine={(n) => (setSub('code'), editor.current?.gotoLine(n))} />}
      {sub === 'code' && file && (
        <div>
          <div class="toolbar">
            <select value={path} onChange={(e) => loadFile((e.target as HTMLSelectElement).value)} data-testid="fn-file">
              {files.map((x) => (
                <option key={x.path} value={x.path}>
                  {x.path}
                </option>
              ))}
            </select>
            <button disabled={!props.writable || text === file.content} onClick={() => saveFile()} data-testid="fn-save">
              Save (Ctrl+S)
            </button>
            <span class="muted" data-testid="fn-dirty">{text !== file.content ? 'unsaved changes' : 'saved'}</span>
          </div>
          {conflict && (
            <div class="banner warn" data-testid="fn-conflict">
              <strong>{conflict.path} changed on disk.</strong> Yours is kept in the editor.{' '}
              <button class="small" onClick={() => loadFile(path)} data-testid="fn-conflict-load">
                Load the disk version
              </button>{' '}
              <button class="small danger" onClick={() => saveFile(true)} data-testid="fn-conflict-overwrite">
                Overwrite with mine
              </button>
              <pre class="diff">{conflict.current.content}</pre>
            </div>
          )}
          <CodeEditor
            docKey={file.key}
            value={text}
            path={path}
            readOnly={!props.writable}
            onChange={setText}
            onSave={() => void saveFile()}
            handle={editor}
          />
        </div>
      )}
      {sub === 'config' && <ConfigForm d={d} writable={props.writable} fn={f} onSaved={async (l, bad) => (setLine({ text: l, bad }), await loadDetail())} />}
      {sub === 'env' && <EnvForm d={d} writable={props.writable} fn={f} onSaved={async (l, bad) => (setLine({ text: l, bad }), await loadDetail())} />}
      {sub === 'files' && (
        <table class="grid clickable" data-testid="fn-files">
          <thead>
            <tr>
              <th>File</th>
              <th>Type</th>
              <th class="num">Size</th>
            </tr>
          </thead>
          <tbody>
            {files.map((x) => (
              <tr key={x.path} onClick={() => (setSub('code'), void loadFile(x.path))}>
                <td>
                  <code>{x.path}</code>
                </td>
                <td>{x.type}</td>
                <td class="num">{x.size}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {sub === 'test' && <TestEvents fnKey={key} routes={d.routes} />}
    </div>
  );
}

function num(v: string): number | undefined {
  const n = Number(v);
  return v.trim() === '' || !Number.isFinite(n) ? undefined : n;
}

function ConfigForm(props: { d: Detail; fn: FunctionSummary; writable: boolean; onSaved(line: string, bad: boolean): void }) {
  const { backend } = useApp();
  const [cfg, setCfg] = useState<Record<string, any>>(props.d.fn_config ?? {});
  const [raw, setRaw] = useState(JSON.stringify(props.d.fn_config ?? {}, null, 2));
  const [rawError, setRawError] = useState('');
  const [rawKey, setRawKey] = useState(0);
  const update = (next: Record<string, any>) => {
    setCfg(next);
    setRaw(JSON.stringify(next, null, 2));
    setRawKey((k) => k + 1);
  };
  const setPath = (keys: string[], value: unknown) => {
    const next = structuredClone(cfg);
    let o = next;
    for (const k of keys.slice(0, -1)) o = o[k] = typeof o[k] === 'object' && o[k] ? o[k] : {};
    const last = keys[keys.length - 1];
    if (value === undefined) delete o[last];
    else o[last] = value;
    update(next);
  };
  const methods: string[] = Array.isArray(cfg.invoke?.methods) ? cfg.invoke.methods : typeof cfg.invoke?.methods === 'string' ? [cfg.invoke.methods] : [];
  const save = async () => {
    const r = await call(backend, 'PUT', `/_fn/function-config?${fnQuery(props.fn, { replace: '1' })}`, cfg, props.d.config_etag);
    if (r.status === 409) return props.onSaved('fn.config.json changed on disk since it was loaded: reload the view', true);
    if (r.status !== 200) return props.onSaved(`${errorOf(r)}${r.body?.field ? ` (field ${r.body.field})` : ''}`, true);
    // Keys this engine does not support are served without, and said so (never silently).
    const warnings: string[] = r.body.warnings ?? [];
    if (warnings.length) return props.onSaved(`Config saved, with warnings: ${warnings.join('; ')}`, true);
    props.onSaved(`Config saved · reloaded in ${r.body.reload?.ms ?? '?'} ms · timeout ${r.body.policy?.timeout_ms} ms`, false);
  };
  const field = (label: string, keys: string[], testid: string) => {
    let v: any = cfg;
    for (const k of keys) v = v?.[k];
    return (
      <label>
        {label}{' '}
        <input
          type="number"
          value={v ?? ''}
          placeholder={String(keys.reduce((o: any, k) => o?.[k], props.d.policy) ?? '')}
          disabled={!props.writable}
          onInput={(e) => setPath(keys, num((e.target as HTMLInputElement).value))}
          data-testid={testid}
        />
      </label>
    );
  };
  return (
    <div class="config-form" data-testid="fn-config">
      <div class="form-grid">
        {field('timeout_ms', ['timeout_ms'], 'fn-cfg-timeout')}
        {field('max_concurrency', ['max_concurrency'], 'fn-cfg-concurrency')}
        {field('max_body_bytes', ['max_body_bytes'], 'fn-cfg-body')}
        {field('worker_pool.max_workers', ['worker_pool', 'max_workers'], 'fn-cfg-workers')}
        {field('worker_pool.max_queue', ['worker_pool', 'max_queue'], 'fn-cfg-queue')}
        {field('schedule.every_seconds', ['schedule', 'every_seconds'], 'fn-cfg-schedule')}
        <label>
          <input
            type="checkbox"
            checked={!!cfg.include_debug_headers}
            disabled={!props.writable}
            onChange={(e) => setPath(['include_debug_headers'], (e.target as HTMLInputElement).checked || undefined)}
            data-testid="fn-cfg-debug"
          />{' '}
          include_debug_headers
        </label>
        <span>
          invoke.methods{' '}
          {METHODS.map((m) => (
            <label key={m} class="inline">
              <input
                type="checkbox"
                checked={methods.includes(m)}
                disabled={!props.writable}
                onChange={(e) => {
                  const on = (e.target as HTMLInputElement).checked;
                  const next = on ? [...methods, m] : methods.filter((x) => x !== m);
                  setPath(['invoke', 'methods'], next.length ? next : undefined);
                }}
                data-testid={`fn-cfg-method-${m}`}
              />
              {m}
            </label>
          ))}
        </span>
      </div>
      <h4>fn.config.json</h4>
      <CodeEditor
        docKey={`raw-${rawKey}`}
        value={raw}
        path="fn.config.json"
        readOnly={!props.writable}
        onChange={(t) => {
          try {
            const v = JSON.parse(t);
            if (typeof v !== 'object' || !v || Array.isArray(v)) throw new Error('must be a JSON object');
            setCfg(v);
            setRawError('');
          } catch (e) {
            setRawError(String(e));
          }
        }}
        onSave={() => void save()}
      />
      {rawError && <p class="error">{rawError}</p>}
      <button disabled={!props.writable || !!rawError} onClick={save} data-testid="fn-cfg-save">
        Save config
      </button>
    </div>
  );
}

function EnvForm(props: { d: Detail; fn: FunctionSummary; writable: boolean; onSaved(line: string, bad: boolean): void }) {
  const { backend } = useApp();
  const [rows, setRows] = useState(() => Object.entries(props.d.fn_env).map(([k, e]) => ({ k, v: e.value, secret: e.is_secret })));
  const set = (i: number, patch: Partial<(typeof rows)[number]>) => setRows(rows.map((r, j) => (j === i ? { ...r, ...patch } : r)));
  const save = async () => {
    const body: Record<string, { value: string; is_secret: boolean }> = {};
    for (const r of rows) if (r.k.trim()) body[r.k.trim()] = { value: r.v, is_secret: r.secret };
    const r = await call(backend, 'PUT', `/_fn/function-env?${fnQuery(props.fn, { replace: '1' })}`, body, props.d.env_etag);
    if (r.status === 409) return props.onSaved('fn.env.json changed on disk since it was loaded: reload the view', true);
    if (r.status !== 200) return props.onSaved(errorOf(r), true);
    props.onSaved(`Env saved · reloaded in ${r.body.reload?.ms ?? '?'} ms`, false);
  };
  return (
    <div data-testid="fn-env">
      <table class="grid">
        <thead>
          <tr>
            <th>Key</th>
            <th>Value</th>
            <th>Secret</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {rows.map((r, i) => (
            <tr key={i}>
              <td>
                <input value={r.k} disabled={!props.writable} onInput={(e) => set(i, { k: (e.target as HTMLInputElement).value })} data-testid={`fn-env-key-${i}`} />
              </td>
              <td>
                {r.secret ? (
                  <input
                    type="password"
                    value={r.v}
                    disabled={!props.writable}
                    onInput={(e) => set(i, { v: (e.target as HTMLInputElement).value })}
                    data-testid={`fn-env-value-${i}`}
                  />
                ) : (
                  <input
                    type="text"
                    value={r.v}
                    disabled={!props.writable}
                    onInput={(e) => set(i, { v: (e.target as HTMLInputElement).value })}
                    data-testid={`fn-env-value-${i}`}
                  />
                )}
              </td>
              <td>
                <input type="checkbox" checked={r.secret} disabled={!props.writable} onChange={(e) => set(i, { secret: (e.target as HTMLInputElement).checked })} />
              </td>
              <td>
                <button class="small danger" disabled={!props.writable} onClick={() => setRows(rows.filter((_, j) => j !== i))}>
                  remove
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <p class="muted">A secret's stored value is never sent to the page; leave it as shown to keep it.</p>
      <div class="toolbar">
        <button class="small" disabled={!props.writable} onClick={() => setRows([...rows, { k: '', v: '', secret: false }])} data-testid="fn-env-add">
          Add variable
        </button>
        <button disabled={!props.writable} onClick={save} data-testid="fn-env-save">
          Save env
        </button>
      </div>
    </div>
  );
}

/** A saved test request of one function (FastFN's console keeps them per function too). */
interface TestEvent {
  name: string;
  method: string;
  path: string;
  query: string;
  headers: string;
  body: string;
}

const storeKey = (fnKey: string) => `fastfn.test-events.${fnKey}`;

function TestEvents(props: { fnKey: string; routes: { route: string; methods: string[] }[] }) {
  const { backend } = useApp();
  const load = (): TestEvent[] => {
    try {
      return JSON.parse(localStorage.getItem(storeKey(props.fnKey)) ?? '[]');
    } catch {
      return [];
    }
  };
  const [events, setEvents] = useState<TestEvent[]>(load);
  const first = props.routes[0];
  const [ev, setEv] = useState<TestEvent>({
    name: 'default',
    method: first?.methods[0] ?? 'GET',
    path: (first?.route ?? '/').replace(/:(\w+)\*?/g, '$1'),
    query: '',
    headers: '',
    body: '',
  });
  const [reply, setReply] = useState<{ status: number; body: string; ms: number } | null>(null);
  const persist = (list: TestEvent[]) => {
    setEvents(list);
    localStorage.setItem(storeKey(props.fnKey), JSON.stringify(list));
  };
  const send = async (e: TestEvent) => {
    const headers = e.headers
      .split('\n')
      .map((l) => l.split(':'))
      .filter((p) => p.length > 1 && p[0].trim())
      .map((p) => [p[0].trim(), p.slice(1).join(':').trim()] as [string, string]);
    const path = e.query.trim() ? `${e.path}?${e.query.replace(/^\?/, '')}` : e.path;
    const r = await backend.sendRequest({ method: e.method, path, headers, body: e.body });
    setReply({ status: r.status, body: r.body, ms: r.ms });
  };
  const input = (k: keyof TestEvent, ph: string) => (
    <input value={ev[k]} placeholder={ph} onInput={(e) => setEv({ ...ev, [k]: (e.target as HTMLInputElement).value })} data-testid={`fn-test-${k}`} />
  );
  return (
    <div class="test-events" data-testid="fn-test">
      <div class="toolbar">
        {input('name', 'name')}
        <select value={ev.method} onChange={(e) => setEv({ ...ev, method: (e.target as HTMLSelectElement).value })}>
          {METHODS.map((m) => (
            <option key={m}>{m}</option>
          ))}
        </select>
        {input('path', '/path')}
        {input('query', 'a=1&b=2')}
      </div>
      <textarea rows={2} placeholder="Header: value (one a line)" value={ev.headers} onInput={(e) => setEv({ ...ev, headers: (e.target as HTMLTextAreaElement).value })} />
      <textarea rows={3} placeholder="body" value={ev.body} onInput={(e) => setEv({ ...ev, body: (e.target as HTMLTextAreaElement).value })} />
      <div class="toolbar">
        <button onClick={() => send(ev)} data-testid="fn-test-send">
          Send
        </button>
        <button class="small" onClick={() => persist([...events.filter((x) => x.name !== ev.name), ev])} data-testid="fn-test-save">
          Save event
        </button>
      </div>
      {events.length > 0 && (
        <ul class="saved-events" data-testid="fn-test-saved">
          {events.map((e) => (
            <li key={e.name}>
              <button class="link" onClick={() => setEv(e)}>
                {e.name}
              </button>{' '}
              <span class="muted">
                {e.method} {e.path}
              </span>{' '}
              <button class="small" onClick={() => (setEv(e), void send(e))}>
                re-send
              </button>{' '}
              <button class="small danger" onClick={() => persist(events.filter((x) => x.name !== e.name))}>
                ×
              </button>
            </li>
          ))}
        </ul>
      )}
      {reply && (
        <pre class="reply" data-testid="fn-test-reply">
          HTTP {reply.status} · {Math.round(reply.ms)} ms{'\n'}
          {reply.body}
        </pre>
      )}
    </div>
  );
}

function Login(props: { onDone(): void }) {
  const { backend } = useApp();
  const [user, setUser] = useState('');
  const [pass, setPass] = useState('');
  const [error, setError] = useState('');
  const submit = async (e: Event) => {
    e.preventDefault();
    const r = await call(backend, 'POST', '/_fn/login', { username: user, password: pass });
    if (r.status !== 200) return setError(errorOf(r));
    props.onDone();
  };
  return (
    <form class="login" onSubmit={submit} data-testid="fn-login">
      <strong>Sign in to change functions</strong>{' '}
      <input placeholder="user" value={user} onInput={(e) => setUser((e.target as HTMLInputElement).value)} data-testid="fn-login-user" />{' '}
      <input type="password" placeholder="password" value={pass} onInput={(e) => setPass((e.target as HTMLInputElement).value)} data-testid="fn-login-pass" />{' '}
      <button type="submit" data-testid="fn-login-submit">
        Sign in
      </button>{' '}
      {error && (
        <span class="error" data-testid="fn-login-error">
          {error}
        </span>
      )}
    </form>
  );
}

export function FunctionsView() {
  const { state, backend } = useApp();
  const [list, setList] = useState<FunctionSummary[] | null>(null);
  const [ui, setUi] = useState<UiState | null>(null);
  const [error, setError] = useState('');
  const [sel, setSel] = useState<FunctionSummary | null>(null);
  const [created, setCreated] = useState<string | undefined>();
  const [showNew, setShowNew] = useState(false);
  const [filter, setFilter] = useState('');
  const refresh = async () => {
    try {
      const [l, u] = await Promise.all([call(backend, 'GET', '/_fn/api/functions'), call(backend, 'GET', '/_fn/ui-state')]);
      if (l.status === 200) (setList(l.body), setError(''));
      else setError(errorOf(l));
      if (u.status === 200) setUi(u.body);
    } catch (e) {
      // The request itself failed (engine gone, timeout): say so rather than wait forever.
      setError(`Cannot list the functions: ${String(e)}`);
    }
  };
  // The list follows the route map: every reload the engine reports.
  useEffect(() => {
    void refresh();
  }, [state.catalog?.generated_at]);
  const writable = !!ui?.write_enabled && (!ui.login_enabled || !!ui.current_user);
  const shown = useMemo(() => {
    const q = filter.trim().toLowerCase();
    return (list ?? []).filter((fn) => !q || `${fn.name} ${fn.runtime} ${fn.routes.map((r) => r.route).join(' ')}`.toLowerCase().includes(q));
  }, [list, filter]);
  const selKey = sel && `${sel.runtime}/${sel.name}@${sel.version ?? ''}`;
  return (
    <div class="functions">
      {ui && !ui.write_enabled && (
        <div class="banner warn" data-testid="fn-readonly">
          Read-only: the engine refuses changes. Start it with <code>FN_CONSOLE_WRITE_ENABLED=1</code> to create and edit functions here.
        </div>
      )}
      {ui?.write_enabled && ui.login_enabled && !ui.current_user && <Login onDone={refresh} />}
      {error && <div class="banner bad">{error}</div>}
      <div class="fn-layout">
        <aside class="fn-list">
          <div class="toolbar">
            <button disabled={!writable} onClick={() => setShowNew(true)} data-testid="fn-new">
              New function
            </button>
            <input type="search" placeholder="Filter…" value={filter} onInput={(e) => setFilter((e.target as HTMLInputElement).value)} />
          </div>
          <ul data-testid="fn-list">
            {shown.map((fn) => {
              const k = `${fn.runtime}/${fn.name}@${fn.version ?? ''}`;
              return (
                <li key={k} class={k === selKey ? 'sel' : undefined}>
                  <button class="link" onClick={() => (setCreated(undefined), setSel(fn))} data-testid="fn-item" data-name={fn.name}>
                    <span class={`rt rt-${fn.runtime}`}>{fn.runtime}</span> {fn.name}
                    {fn.version && `@${fn.version}`}
                  </button>
                </li>
              );
            })}
          </ul>
        </aside>
        <section class="fn-main">
          {showNew && (
            <NewFunction
              runtimes={state.health?.runtime_order ?? ['node', 'python', 'php', 'lua']}
              onClose={() => setShowNew(false)}
              onCreated={(fn, line) => {
                setShowNew(false);
                setCreated(line);
                setSel(fn);
                void refresh();
              }}
            />
          )}
          {sel ? (
            <FunctionView
              key={selKey!}
              fn={sel}
              writable={writable}
              initialLine={created}
              onDeleted={() => {
                setSel(null);
                setCreated(undefined);
                void refresh();
              }}
            />
          ) : (
            !showNew && <p class="muted">Pick a function, or create one.</p>
          )}
        </section>
      </div>
    </div>
  );
}
