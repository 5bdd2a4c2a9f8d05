// All live state of the dashboard: a snapshot from `health`/`catalog`, then folded forward
// by engine events. Views re-render at most ~8 times a second whatever the event rate.
import { useEffect, useState } from 'preact/hooks';
import type { Backend } from './backend';
import type {
  Catalog,
  EngineError,
  EngineEvent,
  Health,
  KeepWarmView,
  LogLine,
  Phase,
  PoolStats,
  Project,
  RequestSummary,
  RuntimeKind,
  RuntimeState,
} from './contract';
import { runtimeState } from './contract';
import type { TestRun } from './bindings/TestRun';

export const MAX_REQUESTS = 500;
export const MAX_LOGS = 2000;
export const MAX_RELOADS = 200;
/** Queue chart: one sample a second, five minutes. */
export const QUEUE_WINDOW = 300;

export interface SocketState {
  runtime: RuntimeKind;
  index: number;
  uri: string;
  up: boolean;
  reason: string;
  /** Epoch seconds of the last check. */
  ts: number;
  pid?: number;
  restarts: number;
  cpu_percent?: number;
  rss_bytes?: number;
}

export interface PoolState {
  key: string;
  runtime?: RuntimeKind;
  name?: string;
  state?: string;
  enabled: boolean;
  max_workers?: number;
  max_queue?: number;
  stats: PoolStats;
  /** `keep_warm` of the function (health), kept current by its pings' request records. */
  keep_warm?: KeepWarmView;
}

export type LogEntry = LogLine & { index?: number; seq: number };

/** A dependency install or a compiled function's build, followed live from its events. */
export interface WorkEntry {
  kind: 'deps' | 'build';
  runtime: RuntimeKind;
  function: string;
  state: 'running' | 'ok' | 'failed';
  /** Installer and manifest (deps) or nothing (build). */
  detail: string;
  /** The installer's output lines as they arrive (the newest MAX_WORK_LINES). */
  lines: string[];
  /** Epoch ms when it started (or was first seen). */
  started: number;
  ms?: number;
  /** Error code and message of a failure. */
  message?: string;
}

export const MAX_WORK = 50;
export const MAX_WORK_LINES = 40;
export type ReloadEntry = Extract<EngineEvent, { type: 'reload' }> & { at: number };

export interface State {
  health: Health | null;
  catalog: Catalog | null;
  loadError: string | null;
  connected: boolean;
  phase: Phase | null;
  sockets: Map<string, SocketState>;
  /** Per runtime: `up`, `down` or `not_needed` (no route uses it, so no daemon runs). */
  runtimes: Map<RuntimeKind, RuntimeState>;
  pools: Map<string, PoolState>;
  /** Sample times (epoch seconds) and, per pool key, active+queued at each. */
  queueTimes: number[];
  queueSeries: Map<string, number[]>;
  requests: RequestSummary[]; // newest first (the detail is read when a request is opened)
  /** Requests the live batches left out (more than a batch holds at once). */
  requestsLeftOut: number;
  /** The last run of the saved tests (`tests_run` events). */
  tests: TestRun | null;
  logs: LogEntry[]; // oldest first
  reloads: ReloadEntry[]; // newest first
  /** Installs and builds, keyed `kind:runtime/function`, newest last. */
  work: Map<string, WorkEntry>;
  project: Project | null;
  projectKnown: boolean;
  recent: string[];
  engineError: EngineError | null;
}

export const sockKey = (rt: string, index: number) => `${rt}/${index}`;

/** Sockets of the runtimes the project needs: a `not_needed` runtime's idle sockets are not down. */
export function neededSockets(s: State): SocketState[] {
  return [...s.sockets.values()].filter((sk) => s.runtimes.get(sk.runtime) !== 'not_needed');
}

export class Store {
  state: State = {
    health: null,
    catalog: null,
    loadError: null,
    connected: false,
    phase: null,
    sockets: new Map(),
    runtimes: new Map(),
    pools: new Map(),
    queueTimes: [],
    queueSeries: new Map(),
    requests: [],
    requestsLeftOut: 0,
    tests: null,
    logs: [],
    reloads: [],
    work: new Map(),
    project: null,
    projectKnown: false,
    recent: [],
    engineError: null,
  };
  version = 0;
  private listeners = new Set<() => void>();
  private flushTimer: ReturnType<typeof setTimeout> | null = null;
  private resyncTimer: ReturnType<typeof setTimeout> | null = null;
  private logSeq = 0;
  /** Whether the Logs view is open (it then follows handler output too). */
  logsWatched = false;
  private stops: (() => void)[] = [];

  constructor(readonly backend: Backend) {}

  subscribe(fn: () => void) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Schedule a re-render of subscribers (coalesced). */
  changed(now = false) {
    this.version++;
    if (now) {
      if (this.flushTimer) clearTimeout(this.flushTimer);
      this.flushTimer = null;
      this.listeners.forEach((l) => l());
      return;
    }
    if (this.flushTimer) return;
    this.flushTimer = setTimeout(() => {
      this.flushTimer = null;
      this.listeners.forEach((l) => l());
    }, 120);
  }

  async start() {
    const b = this.backend;
    this.stops.push(b.onEngineError((e) => ((this.state.engineError = e), this.changed(true))));
    this.stops.push(
      b.onProjectChanged((p) => {
        this.state.project = p;
        this.state.projectKnown = true;
        this.state.engineError = null;
        this.resetProjectData();
        if (p) void this.resync(true);
        void this.loadRecent();
        this.changed(true);
      }),
    );
    this.stops.push(b.subscribe((e) => this.apply(e), (up) => this.onConnected(up)));
    const tick = setInterval(() => this.sampleQueues(), 1000);
    this.stops.push(() => clearInterval(tick));
    try {
      this.state.project = await b.currentProject();
    } catch (e) {
      this.state.project = null;
      if (b.kind === 'http') this.state.loadError = String(e);
    }
    this.state.projectKnown = true;
    void this.loadRecent();
    if (this.state.project) await this.resync(true);
    this.changed(true);
  }

  stop() {
    this.stops.forEach((s) => s());
  }

  private async loadRecent() {
    try {
      this.state.recent = await this.backend.recentProjects();
      this.changed();
    } catch {
      /* not available */
    }
  }

  private onConnected(up: boolean) {
    const was = this.state.connected;
    this.state.connected = up;
    // Events may have been missed while disconnected: take a fresh snapshot.
    if (up && !was && this.state.health) void this.resync(true);
    this.changed();
  }

  private resetProjectData() {
    const s = this.state;
    s.health = null;
    s.catalog = null;
    s.sockets = new Map();
    s.runtimes = new Map();
    s.pools = new Map();
    s.queueTimes = [];
    s.queueSeries = new Map();
    s.requests = [];
    s.requestsLeftOut = 0;
    s.logs = [];
    s.reloads = [];
  }

  /** A slow re-sync of the snapshot (after reloads and daemon restarts), coalesced. */
  scheduleResync(catalogToo: boolean) {
    if (this.resyncTimer) clearTimeout(this.resyncTimer);
    this.resyncTimer = setTimeout(() => {
      this.resyncTimer = null;
      void this.resync(catalogToo);
    }, 800);
  }

  async resync(catalogToo: boolean) {
    try {
      const [health, catalog] = await Promise.all([
        this.backend.health(),
        catalogToo || !this.state.catalog ? this.backend.catalog() : Promise.resolve(this.state.catalog),
      ]);
      this.state.loadError = null;
      this.applyHealth(health);
      this.state.catalog = catalog;
    } catch (e) {
      this.state.loadError = String(e instanceof Error ? e.message : e);
    }
    this.changed(true);
  }

  private applyHealth(h: Health) {
    const s = this.state;
    s.health = h;
    const sockets = new Map<string, SocketState>();
    const runtimes = new Map<RuntimeKind, RuntimeState>();
    for (const [rt, r] of Object.entries(h.runtimes)) {
      if (!r) continue;
      runtimes.set(rt as RuntimeKind, runtimeState(r.health));
      for (const sk of r.sockets) {
        const k = sockKey(rt, sk.index);
        const prev = s.sockets.get(k);
        sockets.set(k, {
          runtime: rt as RuntimeKind,
          index: sk.index,
          uri: sk.uri,
          up: sk.up,
          reason: sk.reason,
          ts: sk.ts,
          pid: sk.pid ?? prev?.pid,
          restarts: sk.restarts ?? prev?.restarts ?? 0,
          cpu_percent: sk.cpu_percent ?? prev?.cpu_percent,
          rss_bytes: sk.rss_bytes ?? prev?.rss_bytes,
        });
      }
    }
    s.sockets = sockets;
    s.runtimes = runtimes;
    const pools = new Map<string, PoolState>();
    for (const f of h.functions.states) {
      const wp = f.worker_pool;
      pools.set(f.key, {
        key: f.key,
        runtime: f.runtime,
        name: f.name,
        state: f.state,
        enabled: wp.enabled,
        max_workers: wp.max_workers,
        max_queue: wp.max_queue,
        keep_warm: f.keep_warm,
        stats: {
          active: wp.active,
          queued: wp.queued,
          overflow_drops: wp.queue_drops.overflow,
          timeout_drops: wp.queue_drops.timeout,
        },
      });
    }
    s.pools = pools;
  }

  private socket(rt: RuntimeKind, index: number): SocketState {
    const k = sockKey(rt, index);
    let sk = this.state.sockets.get(k);
    if (!sk) {
      sk = { runtime: rt, index, uri: '', up: false, reason: 'unknown', ts: Date.now() / 1000, restarts: 0 };
      this.state.sockets.set(k, sk);
    }
    return sk;
  }

  apply(e: EngineEvent) {
    const s = this.state;
    const now = Date.now() / 1000;
    // A function's own daemon (crash isolation) is not one of its runtime's sockets: its events
    // only refresh the snapshot, whose health lists it under the function.
    if (
      (e.type === 'daemon_started' || e.type === 'daemon_ready' || e.type === 'daemon_exited' || e.type === 'socket_health') &&
      s.health?.runtimes[e.runtime] &&
      !s.health.runtimes[e.runtime]!.sockets.some((sk) => sk.index === e.index)
    ) {
      this.scheduleResync(false);
      return;
    }
    switch (e.type) {
      case 'phase':
        s.phase = e.phase;
        break;
      case 'runtime_demand':
        // Daemons start when a route first needs the runtime and stop after the last one goes.
        if (!e.needed) s.runtimes.set(e.runtime, 'not_needed');
        else if (s.runtimes.get(e.runtime) === 'not_needed') s.runtimes.set(e.runtime, 'down');
        this.scheduleResync(false);
        break;
      case 'daemon_started':
        this.socket(e.runtime, e.index).pid = e.pid;
        break;
      case 'daemon_ready': {
        const sk = this.socket(e.runtime, e.index);
        sk.pid = e.pid;
        this.scheduleResync(false);
        break;
      }
      case 'daemon_exited': {
        const sk = this.socket(e.runtime, e.index);
        sk.up = false;
        sk.ts = now;
        sk.reason = `exited (${e.status})${e.restart_in_ms != null ? `, restart in ${e.restart_in_ms} ms` : ''}`;
        sk.restarts += 1;
        sk.cpu_percent = undefined;
        sk.rss_bytes = undefined;
        break;
      }
      case 'daemon_failed': {
        const sk = this.socket(e.runtime, e.index);
        sk.up = false;
        sk.ts = now;
        sk.reason = `${e.code}: ${e.message}`;
        break;
      }
      case 'socket_health': {
        const sk = this.socket(e.runtime, e.index);
        sk.up = e.up;
        sk.reason = e.reason;
        sk.ts = now;
        break;
      }
      case 'daemon_usage': {
        const sk = this.socket(e.runtime, e.index);
        sk.pid = e.pid;
        sk.cpu_percent = e.cpu_percent;
        sk.rss_bytes = e.rss_bytes;
        break;
      }
      case 'log':
        this.pushLogs([
          { ts: Date.now(), runtime: e.runtime, stream: e.stream, line: e.line, index: e.index, seq: 0 },
        ]);
        break;
      case 'reload':
        s.reloads.unshift({ ...e, at: Date.now() });
        if (s.reloads.length > MAX_RELOADS) s.reloads.length = MAX_RELOADS;
        this.scheduleResync(true);
        break;
      case 'pool': {
        let p = s.pools.get(e.key);
        if (!p) {
          p = { key: e.key, enabled: true, stats: e.stats };
          s.pools.set(e.key, p);
        }
        p.stats = e.stats;
        break;
      }
      case 'deps_installing':
        this.work('deps', e.runtime, e.function, `${e.installer} · ${e.manifest}`);
        break;
      case 'deps_progress': {
        const w = this.work('deps', e.runtime, e.function, e.manager, false);
        w.lines.push(e.line);
        if (w.lines.length > MAX_WORK_LINES) w.lines.splice(0, w.lines.length - MAX_WORK_LINES);
        break;
      }
      case 'deps_ready': {
        const w = this.work('deps', e.runtime, e.function, e.manifest, false);
        w.state = 'ok';
        w.ms = e.ms;
        break;
      }
      case 'deps_failed': {
        const w = this.work('deps', e.runtime, e.function, e.manifest, false);
        w.state = 'failed';
        w.ms = e.ms;
        w.message = `${e.code}${e.package ? ` (${e.package})` : ''}`;
        if (e.output && w.lines.length === 0) w.lines = e.output.split('\n').slice(-MAX_WORK_LINES);
        break;
      }
      case 'build_started':
        this.work('build', e.runtime, e.function, '');
        break;
      case 'build_finished': {
        const w = this.work('build', e.runtime, e.function, '', false);
        w.state = e.ok ? 'ok' : 'failed';
        w.ms = e.ms;
        if (!e.ok) w.message = e.message;
        break;
      }
      case 'tests_run': {
        const { type: _t, ...run } = e;
        s.tests = run;
        break;
      }
      case 'requests': {
        // A batch of the requests recorded since the last one, oldest first.
        for (const rec of e.requests) {
          s.requests.unshift(rec);
          const kw = rec.trigger === 'keep_warm' ? [...s.pools.values()].find((p) => p.name === rec.function)?.keep_warm : undefined;
          if (kw) {
            kw.last = rec.ts / 1000;
            kw.last_status = rec.status;
            if (rec.status < 500) {
              kw.warm_at = kw.last;
              kw.warm_state = 'warm';
            }
          }
        }
        if (s.requests.length > MAX_REQUESTS) s.requests.length = MAX_REQUESTS;
        s.requestsLeftOut += e.left_out;
        if (this.logsWatched) this.refreshLogs(1500);
        break;
      }
    }
    this.changed();
  }

  /** The entry of an install or build; `fresh` starts it over (a new run of the same work). */
  private work(kind: WorkEntry['kind'], runtime: RuntimeKind, fn: string, detail: string, fresh = true): WorkEntry {
    const key = `${kind}:${runtime}/${fn}`;
    const m = this.state.work;
    let w = m.get(key);
    if (!w || fresh) {
      w = { kind, runtime, function: fn, state: 'running', detail, lines: [], started: Date.now() };
      m.delete(key);
      m.set(key, w);
      if (m.size > MAX_WORK) m.delete(m.keys().next().value as string);
    } else if (!w.detail) {
      w.detail = detail;
    }
    return w;
  }

  /** Append live log lines, keeping the newest MAX_LOGS. */
  pushLogs(lines: LogEntry[]) {
    this.state.logs.push(...lines.map((l) => ({ ...l, seq: ++this.logSeq })));
    const extra = this.state.logs.length - MAX_LOGS;
    if (extra > 0) this.state.logs.splice(0, extra);
    this.changed();
  }

  /** Replace the buffer with the engine's history (`logs`), keeping live lines newer than it. */
  setLogHistory(lines: LogLine[]) {
    const last = lines.reduce((m, l) => Math.max(m, l.ts), 0);
    // Daemon lines (no `function`) also arrive live; handler output only through the history.
    const live = this.state.logs.filter((l) => l.ts > last && l.function === undefined);
    const hist = lines.map((l) => ({ ...l, seq: ++this.logSeq }));
    this.state.logs = [...hist, ...live].slice(-MAX_LOGS);
    this.changed();
  }

  private historyTimer: ReturnType<typeof setTimeout> | null = null;
  /** Handler output reaches the engine's log buffer but not the event stream: re-read it. */
  refreshLogs(delay = 0) {
    if (this.historyTimer) return;
    this.historyTimer = setTimeout(() => {
      this.backend
        .logs({ lines: MAX_LOGS, stream: 'all' })
        .then((lines) => this.setLogHistory(lines))
        .catch(() => {})
        .finally(() => (this.historyTimer = null));
    }, delay);
  }

  private sampleQueues() {
    const s = this.state;
    if (!s.pools.size) return;
    s.queueTimes.push(Date.now() / 1000);
    const n = s.queueTimes.length;
    for (const [key, p] of s.pools) {
      let series = s.queueSeries.get(key);
      if (!series) {
        series = new Array(n - 1).fill(0);
        s.queueSeries.set(key, series);
      }
      series.push(p.stats.active + p.stats.queued);
    }
    for (const [key, series] of s.queueSeries) if (!s.pools.has(key)) series.push(0);
    if (n > QUEUE_WINDOW) {
      s.queueTimes.shift();
      for (const series of s.queueSeries.values()) series.shift();
    }
    this.changed();
  }
}

/** Re-render the calling component whenever the store changes. */
export function useStore(store: Store): State {
  const [, setV] = useState(0);
  useEffect(() => store.subscribe(() => setV(store.version)), [store]);
  return store.state;
}
