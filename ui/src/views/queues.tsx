import { useEffect, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { useApp } from '../ctx';
import { QUEUE_WINDOW, type State } from '../store';

const PALETTE = ['#2f7de1', '#e0533d', '#2aa876', '#b46ee0', '#e09a21', '#1aa3b8', '#d94f8f', '#7a8b2f', '#8a6d4f'];

function cssVar(name: string, fallback: string) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;
}

/** Series shown: the total plus every function that was busy in the window. */
function chartData(state: State): { keys: string[]; data: uPlot.AlignedData } {
  const keys = [...state.queueSeries.entries()].filter(([, s]) => s.some((v) => v > 0)).map(([k]) => k).sort();
  const n = state.queueTimes.length;
  const total = new Array(n).fill(0);
  for (const s of state.queueSeries.values()) for (let i = 0; i < n; i++) total[i] += s[i] ?? 0;
  return { keys, data: [state.queueTimes.slice(), total, ...keys.map((k) => state.queueSeries.get(k)!.slice())] };
}

function QueueChart() {
  const { state } = useApp();
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<{ u: uPlot; keys: string } | null>(null);
  const { keys, data } = chartData(state);
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const sig = keys.join('|');
    if (plot.current && plot.current.keys === sig) {
      plot.current.u.setData(data);
      return;
    }
    plot.current?.u.destroy();
    const fg = cssVar('--muted', '#888');
    const grid = cssVar('--line', '#ddd');
    const axis = { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid } };
    const u = new uPlot(
      {
        width: Math.max(300, el.clientWidth),
        height: 220,
        scales: { x: { time: true, range: (_u, _min, max) => {
              const m = max ?? Date.now() / 1000;
              return [m - QUEUE_WINDOW, m];
            } }, y: { range: (_u, _min, max) => [0, Math.max(2, max)] } },
        axes: [axis, { ...axis, label: 'active + queued' }],
        series: [
          {},
          { label: 'all functions', stroke: fg, width: 1.5, dash: [4, 3] },
          ...keys.map((k, i) => ({ label: k, stroke: PALETTE[i % PALETTE.length], width: 1.5 })),
        ],
        legend: { show: true },
        cursor: { drag: { x: false, y: false } },
      },
      data,
      el,
    );
    plot.current = { u, keys: sig };
  });
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const ro = new ResizeObserver(() => plot.current?.u.setSize({ width: Math.max(300, el.clientWidth), height: 220 }));
    ro.observe(el);
    return () => {
      ro.disconnect();
      plot.current?.u.destroy();
      plot.current = null;
    };
  }, []);
  return (
    <section class="panel">
      <h3>
        Queue depth, last 5 minutes <span class="muted">(sampled every second)</span>
      </h3>
      <div ref={box} class="chart" data-testid="queue-chart" />
    </section>
  );
}

function Bar({ value, max }: { value: number; max: number | undefined }) {
  const pct = max ? Math.min(100, (value / max) * 100) : value > 0 ? 100 : 0;
  return (
    <span class="bar" title={max != null ? `${value} of ${max}` : String(value)}>
      <span style={{ width: `${pct}%` }} class={pct >= 100 ? 'full' : undefined} />
    </span>
  );
}

export function QueuesView() {
  const { state } = useApp();
  const [busyOnly, setBusyOnly] = useState(false);
  let pools = [...state.pools.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  if (busyOnly)
    pools = pools.filter((p) => p.stats.active + p.stats.queued + p.stats.overflow_drops + p.stats.timeout_drops > 0);
  return (
    <div class="queues">
      <QueueChart />
      <div class="toolbar">
        <label>
          <input type="checkbox" checked={busyOnly} onChange={(e) => setBusyOnly((e.target as HTMLInputElement).checked)} />{' '}
          only functions with activity or drops
        </label>
      </div>
      <table class="grid">
        <thead>
          <tr>
            <th>Function</th>
            <th>State</th>
            <th class="num">Active</th>
            <th />
            <th class="num">Queued</th>
            <th />
            <th class="num">Overflow drops</th>
            <th class="num">Timeout drops</th>
          </tr>
        </thead>
        <tbody>
          {pools.map((p) => (
            <tr key={p.key} data-testid="queue-row" data-key={p.key}>
              <td>
                <code>{p.key}</code> {!p.enabled && <span class="tag">no pool</span>}
                {p.keep_warm && (
                  <span
                    class={`tag ${p.keep_warm.warm_state === 'warm' ? '' : 'warn'}`}
                    data-testid="queue-keep-warm"
                    title={`keep_warm: a ping every ${p.keep_warm.ping_every_seconds} s, idle TTL ${p.keep_warm.idle_ttl_seconds} s`}
                  >
                    keep-warm: {p.keep_warm.warm_state}
                  </span>
                )}
              </td>
              <td class="muted">{p.state ?? ''}</td>
              <td class="num">
                <span data-testid="queue-active">{p.stats.active}</span>
                <span class="muted">/{p.max_workers ?? '?'}</span>
              </td>
              <td>
                <Bar value={p.stats.active} max={p.max_workers} />
              </td>
              <td class="num">
                <span data-testid="queue-queued">{p.stats.queued}</span>
                <span class="muted">/{p.max_queue ?? '?'}</span>
              </td>
              <td>
                <Bar value={p.stats.queued} max={p.max_queue} />
              </td>
              <td class={`num ${p.stats.overflow_drops ? 'bad' : 'muted'}`}>{p.stats.overflow_drops}</td>
              <td class={`num ${p.stats.timeout_drops ? 'bad' : 'muted'}`}>{p.stats.timeout_drops}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
