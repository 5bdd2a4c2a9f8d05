import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { useApp } from '../ctx';
import type { Fault, FaultSpec, LabState, LoadRun, LoadSpec } from '../contract';
import type { Comparison } from '../bindings/Comparison';
import type { SavedRun } from '../bindings/SavedRun';
import { LiveCharts } from './lab_live';

/** How often a running load is polled for its live points. */
const POLL_MS = 500;

/** A fault in a few words, as the banner and the list show it. */
export function describeFault(s: FaultSpec): string {
  switch (s.kind) {
    case 'pause':
      return `${s.runtime} socket ${s.socket} paused`;
    case 'socket_latency':
      return `+${s.fixed_ms} ms${s.jitter_ms ? ` (±${s.jitter_ms})` : ''} on ${s.runtime} socket ${s.socket}`;
    case 'function_latency':
      return `+${s.fixed_ms} ms${s.jitter_ms ? ` (±${s.jitter_ms})` : ''} on ${s.function}`;
    case 'function_fail':
      return `${s.percent} % of ${s.function} fail with ${s.status}`;
    case 'deps_fail':
      return `dependency install of ${s.function} fails`;
    case 'restart':
      return `${s.runtime} socket ${s.socket} restarting (force cold)`;
  }
}

function num(e: Event): number {
  return Number((e.target as HTMLInputElement).value);
}

function str(e: Event): string {
  return (e.target as HTMLInputElement | HTMLSelectElement).value;
}

function Faults({ faults, refresh }: { faults: Fault[]; refresh: () => void }) {
  const { state, backend, store } = useApp();
  const functions = useMemo(
    () => [...new Set((state.health?.functions.states ?? []).map((s) => s.name))].sort(),
    [state.health],
  );
  const sockets = useMemo(() => {
    const out: { runtime: string; index: number }[] = [];
    for (const [rt, st] of Object.entries(state.health?.runtimes ?? {}))
      (st?.sockets ?? []).forEach((_, i) => out.push({ runtime: rt, index: i + 1 }));
    return out;
  }, [state.health]);
  const [fn, setFn] = useState('');
  const [sock, setSock] = useState('');
  const [ms, setMs] = useState(200);
  const [jitter, setJitter] = useState(0);
  const [percent, setPercent] = useState(10);
  const [status, setStatus] = useState(503);
  const [error, setError] = useState<string | null>(null);
  const target = fn || functions[0] || '';
  const socket = sockets.find((s) => `${s.runtime}#${s.index}` === sock) ?? sockets[0];
  const act = async (method: string, path: string, body?: unknown) => {
    setError(null);
    try {
      await backend.lab(method, path, body);
    } catch (e) {
      setError(String(e instanceof Error ? e.message : e));
    }
    refresh();
    void store.resync(false);
  };
  const set = (spec: FaultSpec) => act('POST', '/faults', spec);
  return (
    <section data-testid="lab-faults">
      <h3>Faults</h3>
      <div class="toolbar">
        <select data-testid="lab-socket" value={socket ? `${socket.runtime}#${socket.index}` : ''} onChange={(e) => setSock(str(e))}>
          {sockets.map((s) => (
            <option key={`${s.runtime}#${s.index}`} value={`${s.runtime}#${s.index}`}>
              {s.runtime} socket {s.index}
            </option>
          ))}
        </select>
        <button
          data-testid="lab-pause"
          disabled={!socket}
          onClick={() => socket && set({ kind: 'pause', runtime: socket.runtime as never, socket: socket.index })}
        >
          Pause socket
        </button>
        <button
          data-testid="lab-cold-runtime"
          disabled={!socket}
          title="Restart this runtime's daemons one socket at a time (no failed call); every function of it is cold after"
          onClick={() => socket && act('POST', '/cold', { runtime: socket.runtime })}
        >
          Force cold {socket?.runtime ?? 'runtime'}
        </button>
        <button
          disabled={!socket}
          onClick={() =>
            socket && set({ kind: 'socket_latency', runtime: socket.runtime as never, socket: socket.index, fixed_ms: ms, jitter_ms: jitter })
          }
        >
          Add latency to socket
        </button>
      </div>
      <div class="toolbar">
        <select data-testid="lab-function" value={target} onChange={(e) => setFn(str(e))}>
          {functions.map((f) => (
            <option key={f} value={f}>
              {f}
            </option>
          ))}
        </select>
        <label>
          ms <input type="number" min={0} value={ms} onInput={(e) => setMs(num(e))} style="width:6em" />
        </label>
        <label>
          jitter <input type="number" min={0} value={jitter} onInput={(e) => setJitter(num(e))} style="width:5em" />
        </label>
        <button disabled={!target} onClick={() => set({ kind: 'function_latency', function: target, fixed_ms: ms, jitter_ms: jitter })}>
          Add latency
        </button>
        <label>
          % <input type="number" min={0} max={100} value={percent} onInput={(e) => setPercent(num(e))} style="width:4em" />
        </label>
        <label>
          status <input type="number" min={400} max={599} value={status} onInput={(e) => setStatus(num(e))} style="width:5em" />
        </label>
        <button data-testid="lab-fail" disabled={!target} onClick={() => set({ kind: 'function_fail', function: target, percent, status })}>
          Fail calls
        </button>
        <button data-testid="lab-deps-fail" disabled={!target} onClick={() => set({ kind: 'deps_fail', function: target })}>
          Fail its install
        </button>
        <button data-testid="lab-cold" disabled={!target} onClick={() => act('POST', '/cold', { function: target })}>
          Force cold
        </button>
      </div>
      {error && <div class="banner bad">{error}</div>}
      <ul data-testid="lab-fault-list">
        {faults.map((f) => (
          <li key={f.id}>
            {describeFault(f.spec)}{' '}
            <button onClick={() => act('DELETE', `/faults/${f.id}`)}>clear</button>
          </li>
        ))}
      </ul>
      {faults.length > 0 && (
        <button data-testid="lab-clear-all" onClick={() => act('DELETE', '/faults')}>
          Clear all faults
        </button>
      )}
    </section>
  );
}

const SOCKET_COLORS = ['#1aa3b8', '#b46ee0', '#7a8b2f', '#d94f8f'];

/** The live chart: req/s (and each socket's share of it, when the route names its socket),
 * p50/p95/p99 on a second axis, failed answers as points. Remounted when a socket appears. */
function LoadChart({ run, sockets }: { run: LoadRun; sockets: string[] }) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const s = run.series;
  const share = (p: (typeof s)[number], k: string) => {
    const all = Object.values(p.sockets).reduce((a, b) => a + (b ?? 0), 0);
    return all ? (p.rps * (p.sockets[k] ?? 0)) / all : 0;
  };
  const data: uPlot.AlignedData = [
    s.map((p) => p.t_ms / 1000),
    s.map((p) => p.rps),
    s.map((p) => p.p50_ms),
    s.map((p) => p.p95_ms),
    s.map((p) => p.p99_ms),
    s.map((p) => p.failed),
    ...sockets.map((k) => s.map((p) => share(p, k))),
  ];
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    if (plot.current) {
      plot.current.setData(data);
      return;
    }
    plot.current = new uPlot(
      {
        width: Math.max(300, el.clientWidth),
        height: 220,
        scales: { x: { time: false }, ms: {} },
        axes: [{ label: 's' }, { label: 'req/s' }, { scale: 'ms', side: 1, label: 'ms', grid: { show: false } }],
        series: [
          {},
          { label: 'req/s', stroke: '#2f7de1', width: 2 },
          { label: 'p50', stroke: '#2aa876', scale: 'ms' },
          { label: 'p95', stroke: '#e09a21', scale: 'ms' },
          { label: 'p99', stroke: '#e0533d', scale: 'ms' },
          { label: 'failed', stroke: '#b00', points: { show: true }, paths: () => null },
          ...sockets.map((k, i) => ({ label: `socket ${k} req/s`, stroke: SOCKET_COLORS[i % SOCKET_COLORS.length], dash: [4, 3] })),
        ],
      },
      data,
      el,
    );
  });
  useEffect(() => () => plot.current?.destroy(), []);
  return <div ref={box} data-testid="lab-chart" />;
}

/** Admission during a run: running and queued calls against the pool's limits (drawn as
 * lines), calls turned away (queue full, queue timeout) as markers. */
function AdmissionChart({ run }: { run: LoadRun }) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const pts = run.series.filter((p) => p.admission);
  const marker = (n: number) => (n > 0 ? n : null);
  const data: uPlot.AlignedData = [
    pts.map((p) => p.t_ms / 1000),
    pts.map((p) => p.admission!.active),
    pts.map((p) => p.admission!.queued),
    pts.map((p) => p.admission!.max_workers),
    pts.map((p) => p.admission!.max_queue),
    pts.map((p) => marker(p.admission!.overflow_drops)),
    pts.map((p) => marker(p.admission!.timeout_drops)),
  ];
  useEffect(() => {
    const el = box.current;
    if (!el || pts.length === 0) return;
    if (plot.current) {
      plot.current.setData(data);
      return;
    }
    plot.current = new uPlot(
      {
        width: Math.max(300, el.clientWidth),
        height: 180,
        scales: { x: { time: false }, drops: {} },
        axes: [{ label: 's' }, { label: 'calls' }, { scale: 'drops', side: 1, label: 'dropped', grid: { show: false } }],
        series: [
          {},
          { label: 'running', stroke: '#2f7de1', width: 2 },
          { label: 'queued', stroke: '#e09a21', width: 2 },
          { label: 'max_workers', stroke: '#2f7de1', dash: [6, 4] },
          { label: 'max_queue', stroke: '#e09a21', dash: [6, 4] },
          { label: 'queue full (429)', stroke: '#b00', scale: 'drops', points: { show: true, size: 7 }, paths: () => null },
          { label: 'queue timeout', stroke: '#80a', scale: 'drops', points: { show: true, size: 7 }, paths: () => null },
        ],
      },
      data,
      el,
    );
  });
  useEffect(() => () => plot.current?.destroy(), []);
  if (pts.length === 0) return null;
  const drops = pts.reduce((a, p) => a + p.admission!.overflow_drops + p.admission!.timeout_drops, 0);
  return (
    <div data-testid="lab-admission">
      <div>
        Admission · peak running {Math.max(...pts.map((p) => p.admission!.active))} · peak queued{' '}
        {Math.max(...pts.map((p) => p.admission!.queued))} · <span data-testid="lab-drops">{drops} dropped</span>
      </div>
      <div ref={box} data-testid="lab-admission-chart" />
    </div>
  );
}

/** Each daemon of the target's runtime: last and peak CPU and memory sampled during the run. */
function Daemons({ run }: { run: LoadRun }) {
  const peaks = new Map<number, { pid: number; cpu: number; peakCpu: number; rss: number; peakRss: number }>();
  for (const p of run.series)
    for (const d of p.daemons ?? []) {
      const e = peaks.get(d.socket) ?? { pid: d.pid, cpu: 0, peakCpu: 0, rss: 0, peakRss: 0 };
      peaks.set(d.socket, {
        pid: d.pid,
        cpu: d.cpu_percent,
        peakCpu: Math.max(e.peakCpu, d.cpu_percent),
        rss: d.rss_bytes,
        peakRss: Math.max(e.peakRss, d.rss_bytes),
      });
    }
  if (peaks.size === 0) return null;
  const mb = (b: number) => (b / 1048576).toFixed(1);
  return (
    <table data-testid="lab-daemons">
      <thead>
        <tr>
          <th>socket</th>
          <th>pid</th>
          <th>CPU % (peak)</th>
          <th>RSS MB (peak)</th>
        </tr>
      </thead>
      <tbody>
        {[...peaks.entries()].map(([socket, d]) => (
          <tr key={socket}>
            <td>{socket}</td>
            <td>{d.pid}</td>
            <td>
              {d.cpu.toFixed(0)} ({d.peakCpu.toFixed(0)})
            </td>
            <td>
              {mb(d.rss)} ({mb(d.peakRss)})
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** Runs saved in the project (`.fastfn/lab/runs`); pick two to see them side by side with the
 * difference of the config each ran against. */
function SavedRuns({ tick }: { tick: number }) {
  const { backend } = useApp();
  const [runs, setRuns] = useState<SavedRun[]>([]);
  const [picked, setPicked] = useState<string[]>([]);
  const [cmp, setCmp] = useState<Comparison | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    backend
      .lab<SavedRun[]>('GET', '/runs')
      .then(setRuns)
      .catch(() => {});
  }, [tick]);
  const toggle = (f: string) => setPicked((p) => (p.includes(f) ? p.filter((x) => x !== f) : [...p, f].slice(-2)));
  const compare = async () => {
    setError(null);
    try {
      setCmp(await backend.lab<Comparison>('GET', `/runs/compare?a=${encodeURIComponent(picked[0])}&b=${encodeURIComponent(picked[1])}`));
    } catch (e) {
      setError(String(e instanceof Error ? e.message : e));
    }
  };
  const line = (r: SavedRun | LoadRun) =>
    `${r.spec.path} c=${r.spec.concurrency} · ${r.summary.requests} req · ${r.summary.rps.toFixed(1)} req/s · p99 ${r.summary.p99_ms.toFixed(1)} ms`;
  return (
    <section data-testid="lab-saved">
      <h3>Saved runs</h3>
      <ul>
        {runs
          .slice()
          .reverse()
          .map((r) => (
            <li key={r.file}>
              <label>
                <input type="checkbox" checked={picked.includes(r.file)} onChange={() => toggle(r.file)} />{' '}
                {new Date(r.started_ms).toLocaleString()} · {line(r)}
              </label>
            </li>
          ))}
      </ul>
      <button data-testid="lab-compare" disabled={picked.length !== 2} onClick={compare}>
        Compare
      </button>
      {error && <span class="bad">{error}</span>}
      {cmp && (
        <div data-testid="lab-comparison" style="display:grid;grid-template-columns:1fr 1fr;gap:1em">
          {[cmp.a, cmp.b].map((r) => (
            <div key={r.id + r.started_ms}>
              <Summary run={r} />
              <AdmissionChart run={r} />
            </div>
          ))}
          <table data-testid="lab-config-diff" style="grid-column:1 / span 2">
            <thead>
              <tr>
                <th>config</th>
                <th>A</th>
                <th>B</th>
              </tr>
            </thead>
            <tbody>
              {cmp.config_diff.length === 0 && (
                <tr>
                  <td colSpan={3}>same config</td>
                </tr>
              )}
              {cmp.config_diff.map((c) => (
                <tr key={c.key}>
                  <td>{c.key}</td>
                  <td>{JSON.stringify(c.a)}</td>
                  <td>{JSON.stringify(c.b)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

function LoadForm({ onStarted }: { onStarted: () => void }) {
  const { state, backend } = useApp();
  const paths = useMemo(() => Object.keys(state.catalog?.mapped_routes ?? {}).filter((p) => !p.includes(':') && !p.includes('*')).sort(), [state.catalog]);
  const [path, setPath] = useState('');
  const [concurrency, setConcurrency] = useState(16);
  const [count, setCount] = useState(1000);
  const [seconds, setSeconds] = useState(0);
  const [rate, setRate] = useState(0);
  const [error, setError] = useState<string | null>(null);
  const start = async () => {
    setError(null);
    const spec: LoadSpec = {
      path: path || paths[0] || '/',
      concurrency,
      ...(seconds > 0 ? { duration_ms: seconds * 1000 } : { count }),
      ...(rate > 0 ? { rate } : {}),
    };
    try {
      await backend.lab('POST', '/load', spec);
      onStarted();
    } catch (e) {
      setError(String(e instanceof Error ? e.message : e));
    }
  };
  return (
    <div class="toolbar" data-testid="lab-load-form">
      <input list="lab-paths" data-testid="lab-path" placeholder={paths[0] ?? '/path'} value={path} onInput={(e) => setPath(str(e))} />
      <datalist id="lab-paths">
        {paths.map((p) => (
          <option key={p} value={p} />
        ))}
      </datalist>
      <label>
        c <input data-testid="lab-c" type="number" min={1} max={256} value={concurrency} onInput={(e) => setConcurrency(num(e))} style="width:4em" />
      </label>
      <label>
        n <input data-testid="lab-n" type="number" min={1} value={count} onInput={(e) => setCount(num(e))} style="width:6em" />
      </label>
      <label>
        or seconds <input data-testid="lab-seconds" type="number" min={0} value={seconds} onInput={(e) => setSeconds(num(e))} style="width:4em" />
      </label>
      <label>
        rate/s <input data-testid="lab-rate" type="number" min={0} value={rate} onInput={(e) => setRate(num(e))} style="width:5em" />
      </label>
      <button data-testid="lab-start" onClick={start}>
        Start load
      </button>
      <button data-testid="lab-stop" onClick={() => backend.lab('POST', '/load/stop', {}).then(onStarted)}>
        Stop
      </button>
      {error && <span class="bad">{error}</span>}
    </div>
  );
}

function Summary({ run }: { run: LoadRun }) {
  const s = run.summary;
  return (
    <div data-testid="lab-summary">
      <strong>{run.state}</strong> · {s.requests} requests in {(s.duration_ms / 1000).toFixed(2)} s · {s.rps.toFixed(1)} req/s · p50{' '}
      {s.p50_ms.toFixed(2)} ms · p95 {s.p95_ms.toFixed(2)} ms · p99 {s.p99_ms.toFixed(2)} ms · statuses{' '}
      {Object.entries(s.statuses)
        .map(([k, n]) => `${k}: ${n}`)
        .join(', ') || 'none'}
      {Object.keys(s.sockets).length > 0 && (
        <span data-testid="lab-sockets">
          {' '}
          · per socket{' '}
          {Object.entries(s.sockets)
            .map(([k, n]) => `#${k}: ${n}`)
            .join(', ')}
        </span>
      )}
      {s.errors > 0 && <span class="bad"> · {s.errors} without an answer</span>}
    </div>
  );
}

export function LabView() {
  const { backend } = useApp();
  const [lab, setLab] = useState<LabState | null>(null);
  const [tick, setTick] = useState(0);
  const refresh = () => setTick((t) => t + 1);
  useEffect(() => {
    let live = true;
    backend
      .lab<LabState>('GET', '')
      .then((s) => live && setLab(s))
      .catch(() => {});
    return () => {
      live = false;
    };
  }, [tick]);
  const last = lab?.runs[lab.runs.length - 1];
  useEffect(() => {
    if (last?.state !== 'running') return;
    const t = setTimeout(refresh, POLL_MS);
    return () => clearTimeout(t);
  }, [lab]);
  return (
    <div data-testid="view-lab">
      <Faults faults={lab?.faults ?? []} refresh={refresh} />
      <section>
        <h3>Load</h3>
        <LoadForm onStarted={refresh} />
        {last && <Summary run={last} />}
        {last && (
          <LoadChart
            key={`${last.id}|${Object.keys(last.summary.sockets).join(',')}`}
            run={last}
            sockets={Object.keys(last.summary.sockets).sort()}
          />
        )}
        {last && <AdmissionChart key={`adm-${last.id}`} run={last} />}
        {last && <Daemons run={last} />}
      </section>
      <LiveCharts />
      <SavedRuns tick={last?.state === 'running' ? -1 : tick} />
      <section>
        <h3>Cold starts</h3>
        <ul data-testid="lab-colds">
          {Object.entries(lab?.cold_starts ?? {}).map(([key, runs]) => (
            <li key={key}>
              {key}: {(runs ?? []).map((c) => `${(c.latency_us / 1000).toFixed(1)} ms`).join(', ')}
            </li>
          ))}
        </ul>
      </section>
    </div>
  );
}
