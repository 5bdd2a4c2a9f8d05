import { useEffect, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import { useApp } from '../ctx';
import type { State } from '../store';

/** How often the live charts take a sample of the store (pool stats, requests, socket health
 * arrive there from the engine's events). */
const SAMPLE_MS = 500;
/** Samples kept: two minutes. */
const KEEP = 240;

interface Sample {
  t: number;
  active: number;
  queued: number;
  maxWorkers: number | null;
  maxQueue: number | null;
  /** Answers of this function since the sample before, by status class of interest. */
  s429: number;
  s503: number;
  s504: number;
  /** Requests per second per socket index (1-based) since the sample before. */
  perSocket: Map<number, number>;
  /** Socket index → up, when it changed since the sample before. */
  transitions: Map<number, boolean>;
}

const COLORS = ['#1aa3b8', '#b46ee0', '#7a8b2f', '#d94f8f', '#e0533d', '#2aa876'];

/** Pure: one sample of `key`'s function from the store's state. `since` is the epoch ms of
 * the sample before; `upBefore` the sockets' health then. */
export function sample(s: State, key: string, since: number, now: number, upBefore: Map<number, boolean>): Sample {
  const pool = s.pools.get(key);
  const name = pool?.name;
  const runtime = pool?.runtime;
  let s429 = 0;
  let s503 = 0;
  let s504 = 0;
  const counts = new Map<number, number>();
  for (const r of s.requests) {
    if (r.ts <= since) break; // newest first
    if (r.function !== name || r.runtime !== runtime) continue;
    if (r.status === 429) s429++;
    else if (r.status === 503) s503++;
    else if (r.status === 504) s504++;
    if (r.socket_index != null) counts.set(r.socket_index, (counts.get(r.socket_index) ?? 0) + 1);
  }
  const secs = Math.max(0.001, (now - since) / 1000);
  const perSocket = new Map<number, number>();
  const transitions = new Map<number, boolean>();
  for (const sk of s.sockets.values()) {
    if (sk.runtime !== runtime) continue;
    perSocket.set(sk.index, (counts.get(sk.index) ?? 0) / secs);
    const was = upBefore.get(sk.index);
    if (was !== undefined && was !== sk.up) transitions.set(sk.index, sk.up);
    upBefore.set(sk.index, sk.up);
  }
  return {
    t: now / 1000,
    active: pool?.stats.active ?? 0,
    queued: pool?.stats.queued ?? 0,
    maxWorkers: pool?.max_workers ?? null,
    maxQueue: pool?.max_queue ?? null,
    s429,
    s503,
    s504,
    perSocket,
    transitions,
  };
}

function Plot({ opts, data, testid }: { opts: uPlot.Options; data: uPlot.AlignedData; testid: string }) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    if (plot.current) plot.current.setData(data);
    else plot.current = new uPlot({ ...opts, width: Math.max(300, el.clientWidth) }, data, el);
  });
  useEffect(() => () => plot.current?.destroy(), []);
  return <div ref={box} data-testid={testid} />;
}

/** Live charts of one function: in-flight and queued calls with its limits as lines and its
 * 429/503/504 answers as markers; its runtime's per-socket request rate with each socket's
 * health transitions (down/up) on the same timeline. */
export function LiveCharts() {
  const { state, store } = useApp();
  const keys = [...state.pools.keys()].sort();
  const [key, setKey] = useState('');
  const target = key || keys[0] || '';
  const [samples, setSamples] = useState<Sample[]>([]);
  const upBefore = useRef(new Map<number, boolean>());
  useEffect(() => {
    setSamples([]);
    upBefore.current = new Map();
    let since = Date.now();
    const t = setInterval(() => {
      const now = Date.now();
      const next = sample(store.state, target, since, now, upBefore.current);
      since = now;
      setSamples((old) => [...old.slice(-(KEEP - 1)), next]);
    }, SAMPLE_MS);
    return () => clearInterval(t);
  }, [target]);
  const sockets = [...new Set(samples.flatMap((s) => [...s.perSocket.keys()]))].sort((a, b) => a - b);
  const mark = (n: number) => (n > 0 ? n : null);
  const t = samples.map((s) => s.t);
  const admission: uPlot.AlignedData = [
    t,
    samples.map((s) => s.active),
    samples.map((s) => s.queued),
    samples.map((s) => s.maxWorkers),
    samples.map((s) => s.maxQueue),
    samples.map((s) => mark(s.s429)),
    samples.map((s) => mark(s.s503)),
    samples.map((s) => mark(s.s504)),
  ];
  const traffic: uPlot.AlignedData = [
    t,
    ...sockets.map((i) => samples.map((s) => s.perSocket.get(i) ?? 0)),
    // A transition is a marker at 0 (down) or at the socket's rate (up).
    ...sockets.map((i) =>
      samples.map((s) => {
        const up = s.transitions.get(i);
        return up === undefined ? null : up ? (s.perSocket.get(i) ?? 0) : 0;
      }),
    ),
  ];
  const markers = (label: string, stroke: string, scale?: string): uPlot.Series => ({
    label,
    stroke,
    scale,
    points: { show: true, size: 8 },
    paths: () => null,
  });
  return (
    <section data-testid="lab-live">
      <h3>Live</h3>
      <select data-testid="lab-live-function" value={target} onChange={(e) => setKey((e.target as HTMLSelectElement).value)}>
        {keys.map((k) => (
          <option key={k} value={k}>
            {k}
          </option>
        ))}
      </select>
      <Plot
        key={`adm-${target}`}
        testid="lab-live-admission"
        data={admission}
        opts={{
          width: 300,
          height: 180,
          scales: { x: { time: true }, n: {} },
          axes: [{}, { label: 'calls' }, { scale: 'n', side: 1, label: 'answers', grid: { show: false } }],
          series: [
            {},
            { label: 'in flight', stroke: '#2f7de1', width: 2 },
            { label: 'queued', stroke: '#e09a21', width: 2 },
            { label: 'max_workers', stroke: '#2f7de1', dash: [6, 4] },
            { label: 'max_queue', stroke: '#e09a21', dash: [6, 4] },
            markers('429', '#b00', 'n'),
            markers('503', '#80a', 'n'),
            markers('504', '#555', 'n'),
          ],
        }}
      />
      <Plot
        key={`sock-${target}-${sockets.join(',')}`}
        testid="lab-live-sockets"
        data={traffic}
        opts={{
          width: 300,
          height: 160,
          scales: { x: { time: true } },
          axes: [{}, { label: 'req/s' }],
          series: [
            {},
            ...sockets.map((i, k) => ({ label: `socket ${i}`, stroke: COLORS[k % COLORS.length], width: 2 })),
            ...sockets.map((i, k) => markers(`socket ${i} up/down`, COLORS[k % COLORS.length])),
          ],
        }}
      />
    </section>
  );
}
