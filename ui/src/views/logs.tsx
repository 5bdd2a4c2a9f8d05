import { useEffect, useRef, useState } from 'preact/hooks';
import { useApp } from '../ctx';
import { fmtTime } from '../format';

export function LogsView() {
  const { state, store } = useApp();
  const [runtime, setRuntime] = useState('');
  const [fn, setFn] = useState('');
  const [stream, setStream] = useState('all');
  const [follow, setFollow] = useState(true);
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    store.logsWatched = true;
    store.refreshLogs();
    return () => {
      store.logsWatched = false;
    };
  }, []);
  const f = fn.trim().toLowerCase();
  const lines = state.logs.filter(
    (l) =>
      (!runtime || l.runtime === runtime) &&
      (stream === 'all' || l.stream === stream) &&
      (!f || (l.function ?? '').toLowerCase().includes(f) || l.line.toLowerCase().includes(f)),
  );
  useEffect(() => {
    if (follow && box.current) box.current.scrollTop = box.current.scrollHeight;
  });
  const runtimes = [...new Set([...(state.health?.runtime_order ?? []), ...state.logs.map((l) => l.runtime)])];
  return (
    <div class="logs">
      <div class="toolbar">
        <select value={runtime} onChange={(e) => setRuntime((e.target as HTMLSelectElement).value)} data-testid="log-runtime">
          <option value="">all runtimes</option>
          {runtimes.map((r) => (
            <option key={r}>{r}</option>
          ))}
        </select>
        <input
          type="search"
          placeholder="Function or text…"
          value={fn}
          onInput={(e) => setFn((e.target as HTMLInputElement).value)}
          data-testid="log-fn"
        />
        <select value={stream} onChange={(e) => setStream((e.target as HTMLSelectElement).value)} data-testid="log-stream">
          <option value="all">stdout + stderr</option>
          <option value="stdout">stdout</option>
          <option value="stderr">stderr</option>
        </select>
        <label>
          <input type="checkbox" checked={follow} onChange={(e) => setFollow((e.target as HTMLInputElement).checked)} /> follow
        </label>
        <button class="small" onClick={() => store.refreshLogs()}>
          Refresh
        </button>
        <span class="muted">
          {lines.length} of {state.logs.length} lines (last 2000 kept)
        </span>
      </div>
      <div class="logbox" ref={box} data-testid="log-lines">
        {lines.map((l) => (
          <div key={l.seq} class={`logline ${l.stream}`}>
            <span class="muted">{fmtTime(l.ts)}</span> <span class={`rt rt-${l.runtime}`}>{l.runtime}</span>
            {l.index != null && <span class="muted">#{l.index}</span>}
            {l.function && <span class="fn">{l.function}</span>}
            <span class="stream">{l.stream}</span> <span class="text">{l.line}</span>
          </div>
        ))}
        {lines.length === 0 && <div class="muted empty">No log lines yet.</div>}
      </div>
    </div>
  );
}
