// The one seam between the UI and an engine: `HttpBackend` in a browser at `/console`
// (same-origin `/_fn/*` and `EventSource('/_fn/events')`), `TauriBackend` inside the desktop
// app (commands and events of `src-tauri/`). Both carry the same data (docs/dashboard.md).
import { invoke } from '@tauri-apps/api/core';
import { listen, type UnlistenFn } from '@tauri-apps/api/event';
import type {
  Catalog,
  EngineError,
  EngineEvent,
  FunctionEnv,
  Health,
  Job,
  JobPending,
  JobResult,
  JobSubmit,
  LogLine,
  Project,
  Resolve,
  RuntimeKind,
  RunNowResult,
  RuntimeLogs,
  SchedulesSnapshot,
  SendResult,
} from './contract';
import type { K8sExport } from './bindings/K8sExport';

/** What "Export for Kubernetes" asks for (`fastfn export k8s`; docs/deploy.md). */
export interface K8sExportRequest {
  out: string;
  name?: string;
  image?: string;
  force?: boolean;
}

export interface LogQuery {
  runtime?: RuntimeKind;
  fn?: string;
  stream?: 'stdout' | 'stderr' | 'all';
  lines?: number;
}

export interface SendRequest {
  method: string;
  path: string;
  headers: [string, string][];
  body: string;
}

export interface Backend {
  readonly kind: 'http' | 'tauri';
  health(): Promise<Health>;
  catalog(): Promise<Catalog>;
  resolve(method: string, url: string): Promise<Resolve>;
  /** The runtime log's structured lines (daemon output and per-call handler output). */
  logs(q: LogQuery): Promise<LogLine[]>;
  sendRequest(req: SendRequest): Promise<SendResult>;
  killDaemon(runtime: RuntimeKind, index: number): Promise<unknown>;
  /** Schedules and keep-warm entries with their state (`/_fn/schedules`). */
  schedules(): Promise<SchedulesSnapshot>;
  /** One run of a schedule now; resolves with its outcome. */
  runSchedule(key: string): Promise<RunNowResult>;
  /** Async jobs (`/_fn/jobs`), newest first. */
  jobs(): Promise<Job[]>;
  submitJob(req: JobSubmit): Promise<Job>;
  cancelJob(id: string): Promise<Job>;
  jobResult(id: string): Promise<JobResult | JobPending>;
  /** The lab's admin calls (`/_fn/lab/...`): faults, force cold, load runs. */
  lab<T>(method: string, path: string, body?: unknown): Promise<T>;
  /** Every function's `fn.env.json`, secret values hidden (`/_fn/env`). */
  functionEnv(): Promise<FunctionEnv[]>;
  /** Live events; `onConnected(true)` each time the stream (re)connects. Returns unsubscribe. */
  subscribe(onEvent: (e: EngineEvent) => void, onConnected: (up: boolean) => void): () => void;
  /** The project being served (browser: the engine's own, derived from health). */
  currentProject(): Promise<Project | null>;
  pickProject(): Promise<Project | null>;
  openProject(path: string): Promise<Project | null>;
  recentProjects(): Promise<string[]>;
  /** Opens a file (relative to the functions root) in the editor; false when not possible. */
  openFile(path: string): Promise<boolean>;
  onProjectChanged(cb: (p: Project | null) => void): () => void;
  onEngineError(cb: (e: EngineError) => void): () => void;
  /** Writes the served project's Containerfile and manifests into `out` (absolute). */
  exportK8s(req: K8sExportRequest): Promise<K8sExport>;
}

async function getJson<T>(url: string, init?: RequestInit): Promise<T> {
  const resp = await fetch(url, { cache: 'no-store', ...init });
  if (!resp.ok) {
    const text = await resp.text().catch(() => '');
    throw new Error(`${url}: HTTP ${resp.status} ${text.slice(0, 200)}`);
  }
  return (await resp.json()) as T;
}

/** The admin API's JSON, over whatever carries HTTP to the engine; writes carry the CSRF header.
 * A non-2xx answer throws with the engine's `error`. */
type Send = (method: string, path: string, body?: unknown) => Promise<{ status: number; body: string }>;

async function adminJson<T>(send: Send, method: string, path: string, body?: unknown): Promise<T> {
  const r = await send(method, path, body);
  let json: unknown = null;
  try {
    json = JSON.parse(r.body);
  } catch {
    /* not JSON */
  }
  if (r.status < 200 || r.status > 299) {
    const err = (json as { error?: string } | null)?.error ?? r.body.slice(0, 200);
    throw new Error(`${method} ${path}: HTTP ${r.status} ${err}`);
  }
  return json as T;
}

/** Jobs and env through the admin API (the same for both backends). */
function adminApi(send: Send) {
  return {
    jobs: async () => (await adminJson<{ jobs: Job[] }>(send, 'GET', '/_fn/jobs?limit=200')).jobs,
    submitJob: (req: JobSubmit) => adminJson<Job>(send, 'POST', '/_fn/jobs', req),
    cancelJob: (id: string) => adminJson<Job>(send, 'DELETE', `/_fn/jobs/${encodeURIComponent(id)}`),
    jobResult: (id: string) => adminJson<JobResult | JobPending>(send, 'GET', `/_fn/jobs/${encodeURIComponent(id)}/result`),
    functionEnv: async () => (await adminJson<{ functions: FunctionEnv[] }>(send, 'GET', '/_fn/env')).functions,
    lab: <T,>(method: string, path: string, body?: unknown) => adminJson<T>(send, method, `/_fn/lab${path}`, body),
  };
}

function query(params: Record<string, string | number | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') q.set(k, String(v));
  return q.toString();
}

export class HttpBackend implements Backend {
  readonly kind = 'http' as const;
  constructor(private readonly base = '') {}

  private readonly admin = adminApi(async (method, path, body) => {
    const resp = await fetch(`${this.base}${path}`, {
      method,
      cache: 'no-store',
      headers: body === undefined ? { 'X-Fn-Request': '1' } : { 'X-Fn-Request': '1', 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: resp.status, body: await resp.text() };
  });
  jobs = () => this.admin.jobs();
  submitJob = (req: JobSubmit) => this.admin.submitJob(req);
  cancelJob = (id: string) => this.admin.cancelJob(id);
  jobResult = (id: string) => this.admin.jobResult(id);
  functionEnv = () => this.admin.functionEnv();
  lab = <T,>(method: string, path: string, body?: unknown) => this.admin.lab<T>(method, path, body);

  health() {
    return getJson<Health>(`${this.base}/_fn/health`);
  }
  catalog() {
    return getJson<Catalog>(`${this.base}/_fn/catalog`);
  }
  resolve(method: string, url: string) {
    return getJson<Resolve>(`${this.base}/_fn/resolve?${query({ method, url })}`);
  }
  async logs(q: LogQuery) {
    // The runtime log's structured lines are `entries` (`data` holds them as FastFN prints them).
    const r = await getJson<RuntimeLogs>(`${this.base}/_fn/logs?${query({ file: 'runtime', format: 'json', ...q })}`);
    return r.entries;
  }
  async sendRequest(req: SendRequest): Promise<SendResult> {
    const headers = new Headers();
    for (const [k, v] of req.headers) {
      try {
        headers.append(k, v);
      } catch {
        /* a header name the browser refuses: skip it */
      }
    }
    const hasBody = !['GET', 'HEAD'].includes(req.method.toUpperCase());
    const started = performance.now();
    const resp = await fetch(`${this.base}${req.path}`, {
      method: req.method,
      headers,
      body: hasBody && req.body !== '' ? req.body : undefined,
      cache: 'no-store',
      redirect: 'manual',
    });
    const body = await resp.text();
    const ms = performance.now() - started;
    return { status: resp.status, headers: [...resp.headers.entries()], body, ms };
  }
  killDaemon(runtime: RuntimeKind, index: number) {
    return getJson(`${this.base}/_fn/daemons/kill?${query({ runtime, index })}`, {
      method: 'POST',
      headers: { 'X-Fn-Request': '1' },
    });
  }
  schedules() {
    return getJson<SchedulesSnapshot>(`${this.base}/_fn/schedules`);
  }
  runSchedule(key: string) {
    return getJson<RunNowResult>(`${this.base}/_fn/schedules/run?${query({ key })}`, {
      method: 'POST',
      headers: { 'X-Fn-Request': '1' },
    });
  }
  async exportK8s(req: K8sExportRequest) {
    const resp = await fetch(`${this.base}/_fn/export/k8s`, {
      method: 'POST',
      headers: { 'X-Fn-Request': '1', 'Content-Type': 'application/json' },
      body: JSON.stringify(req),
      cache: 'no-store',
    });
    const body = await resp.json().catch(() => ({}));
    if (!resp.ok) throw new Error(body.message ?? `HTTP ${resp.status}`);
    return body as K8sExport;
  }
  subscribe(onEvent: (e: EngineEvent) => void, onConnected: (up: boolean) => void) {
    const es = new EventSource(`${this.base}/_fn/events`);
    es.onopen = () => onConnected(true);
    es.onerror = () => onConnected(false); // EventSource reconnects by itself
    es.onmessage = (m) => {
      try {
        onEvent(JSON.parse(m.data) as EngineEvent);
      } catch {
        /* not JSON: ignore */
      }
    };
    return () => es.close();
  }
  async currentProject(): Promise<Project | null> {
    const h = await this.health();
    const url = `${location.origin}/`;
    return { path: h.functions_root, url, port: Number(location.port || (location.protocol === 'https:' ? 443 : 80)) };
  }
  async pickProject() {
    return null;
  }
  async openProject() {
    return null;
  }
  async recentProjects() {
    return [];
  }
  async openFile() {
    return false;
  }
  onProjectChanged() {
    return () => {};
  }
  onEngineError() {
    return () => {};
  }
}

function later(p: Promise<UnlistenFn>): () => void {
  let done = false;
  let un: UnlistenFn | undefined;
  p.then((f) => (done ? f() : (un = f))).catch(() => {});
  return () => {
    done = true;
    un?.();
  };
}

export class TauriBackend implements Backend {
  readonly kind = 'tauri' as const;

  // The app reaches the admin API as the browser does: HTTP to its engine on loopback, through
  // the `send_request` command (no command per endpoint to keep in step).
  private readonly admin = adminApi(async (method, path, body) => {
    const headers: [string, string][] = [['X-Fn-Request', '1']];
    if (body !== undefined) headers.push(['Content-Type', 'application/json']);
    const r = await invoke<SendResult>('send_request', {
      method,
      path,
      headers,
      body: body === undefined ? '' : JSON.stringify(body),
    });
    return { status: r.status, body: r.body };
  });
  jobs = () => this.admin.jobs();
  submitJob = (req: JobSubmit) => this.admin.submitJob(req);
  cancelJob = (id: string) => this.admin.cancelJob(id);
  jobResult = (id: string) => this.admin.jobResult(id);
  functionEnv = () => this.admin.functionEnv();
  lab = <T,>(method: string, path: string, body?: unknown) => this.admin.lab<T>(method, path, body);

  health() {
    return invoke<Health>('health');
  }
  catalog() {
    return invoke<Catalog>('catalog');
  }
  resolve(method: string, url: string) {
    return invoke<Resolve>('resolve', { method, url });
  }
  async logs(q: LogQuery) {
    return (await invoke<RuntimeLogs>('logs', { ...q })).entries;
  }
  sendRequest(req: SendRequest) {
    return invoke<SendResult>('send_request', { ...req });
  }
  killDaemon(runtime: RuntimeKind, index: number) {
    return invoke('kill_daemon', { runtime, index });
  }
  schedules() {
    return invoke<SchedulesSnapshot>('schedules');
  }
  runSchedule(key: string) {
    return invoke<RunNowResult>('run_schedule', { key });
  }
  async exportK8s(req: K8sExportRequest) {
    try {
      return await invoke<K8sExport>('export_k8s', { ...req });
    } catch (e) {
      // Commands fail with `{code, message}`.
      const m = (e as { message?: string })?.message;
      throw new Error(m ?? String(e));
    }
  }
  subscribe(onEvent: (e: EngineEvent) => void, onConnected: (up: boolean) => void) {
    const un = later(listen<EngineEvent>('engine-event', (e) => onEvent(e.payload)));
    onConnected(true);
    return un;
  }
  currentProject() {
    return invoke<Project | null>('current_project');
  }
  pickProject() {
    return invoke<Project | null>('pick_project');
  }
  openProject(path: string) {
    return invoke<Project | null>('open_project', { path });
  }
  async recentProjects(): Promise<string[]> {
    const list = await invoke<(string | { path: string })[]>('recent_projects');
    return (list ?? []).map((p) => (typeof p === 'string' ? p : p.path));
  }
  async openFile(path: string) {
    await invoke('open_file', { path });
    return true;
  }
  onProjectChanged(cb: (p: Project | null) => void) {
    return later(listen<Project | null>('project-changed', (e) => cb(e.payload)));
  }
  onEngineError(cb: (e: EngineError) => void) {
    return later(listen<EngineError>('engine-error', (e) => cb(e.payload)));
  }
}

export function isTauri(): boolean {
  return typeof window !== 'undefined' && '__TAURI_INTERNALS__' in window;
}

export function makeBackend(): Backend {
  return isTauri() ? new TauriBackend() : new HttpBackend();
}
