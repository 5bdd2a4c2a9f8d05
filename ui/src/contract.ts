// Hand-written types of the JSON the engine really sends for `/_fn/health`, `/_fn/catalog`
// and `/_fn/resolve` (contract §6, §6.1, plus our engine's additions in src/admin.rs).
// `contract.samples.ts` holds JSON captured from `fixtures/demo` typed with these, so
// `tsc --noEmit` fails when they drift from real data.
import type { RuntimeKind } from './bindings/RuntimeKind';

export type { RuntimeKind };

export interface Defaults {
  timeout_ms: number;
  max_concurrency: number;
  max_body_bytes: number;
}

export interface SocketHealth {
  index: number;
  uri: string;
  up: boolean;
  ts: number;
  reason: string;
  /** Present for sockets served by a daemon the engine supervises. */
  pid?: number;
  restarts?: number;
  cpu_percent?: number;
  rss_bytes?: number;
}

export interface RuntimeHealth {
  socket: string | null;
  sockets: SocketHealth[];
  routing: string;
  timeout_ms: number;
  health: { up: boolean; ts: number; reason: string; sockets: SocketHealth[] };
}

export interface WorkerPool {
  enabled: boolean;
  min_warm: number;
  max_workers: number;
  max_queue: number;
  idle_ttl_seconds: number;
  queue_timeout_ms: number;
  queue_poll_ms: number;
  overflow_status: number;
  active: number;
  queued: number;
  queue_drops: { overflow: number; timeout: number; total: number };
}

export interface FunctionState {
  runtime: RuntimeKind;
  name: string;
  key: string;
  state: 'warm' | 'cold' | 'stale';
  warm_at?: number;
  worker_pool: WorkerPool;
}

export interface FunctionsSummary {
  total: number;
  warm: number;
  stale: number;
  cold: number;
  keep_warm_enabled: number;
  pool_enabled: number;
  pool_active: number;
  pool_queued: number;
  pool_queue_drops: number;
  pool_queue_overflow_drops: number;
  pool_queue_timeout_drops: number;
}

export interface WatchStatus {
  enabled: boolean;
  active: boolean;
  backend?: string;
  last_scan_at?: number | null;
  [extra: string]: unknown;
}

export interface ConfigError {
  code: string;
  file: string;
  field: string | null;
  message: string;
}

export interface Health {
  config_loaded_at: number;
  defaults: Defaults;
  functions_root: string;
  socket_base_dir: string;
  runtime_order: RuntimeKind[];
  hot_reload: {
    enabled: boolean;
    last_catalog_scan_at: number;
    watchdog: WatchStatus;
    last_error?: string;
  };
  routing: { mapped_routes: number; mapped_route_conflicts: number; shadowed_routes: number };
  functions: { summary: FunctionsSummary; states: FunctionState[] };
  runtimes: Partial<Record<RuntimeKind, RuntimeHealth>>;
  /** Runtime → why it is missing (e.g. "python3 not found on PATH"). */
  runtimes_missing?: Partial<Record<RuntimeKind, string>>;
  config_errors?: ConfigError[];
}

export type RouteSourceName = 'file' | 'routes_json' | 'config';

export interface RouteEntry {
  runtime: RuntimeKind;
  fn_name: string;
  version: string;
  methods: string[];
  source_rank: number;
  source: RouteSourceName;
  allow_hosts: string[];
  force_url: boolean;
  /** File that answers, relative to the functions root. */
  entry: string;
  explicit: boolean;
}

export interface Claimant {
  runtime: RuntimeKind;
  fn_name: string;
  entry: string;
}

export interface ShadowedRoute {
  route: string;
  winner: { runtime: RuntimeKind; fn_name: string };
  loser: { runtime: RuntimeKind; fn_name: string };
  reason: string;
}

export interface Catalog {
  generated_at: number;
  functions_root: string;
  defaults: Defaults;
  runtime_order: RuntimeKind[];
  mapped_routes: Record<string, RouteEntry[]>;
  mapped_route_conflicts: Record<string, boolean>;
  conflict_claimants: Record<string, Claimant[]>;
  shadowed_routes: ShadowedRoute[];
  runtimes: Partial<Record<RuntimeKind, RuntimeHealth>>;
  warnings: string[];
  errors: ConfigError[];
}

/** `/_fn/resolve?method=&url=` (command `resolve` in the app). */
export interface Resolve {
  method: string;
  url: string;
  path: string;
  status: number;
  why: string;
  route?: string;
  runtime?: RuntimeKind;
  function?: string;
  file?: string;
  source?: RouteSourceName | 'assets' | 'landing';
  params?: Record<string, string>;
  allow?: string;
  claimants?: { route: string; runtime: RuntimeKind; file: string }[];
}

/** `send_request` in the app; a `fetch` in the browser. */
export interface SendResult {
  status: number;
  headers: [string, string][];
  body: string;
  ms: number;
}

/** `current_project` / `project-changed` in the app. */
export interface Project {
  path: string;
  url: string;
  port: number;
}

/** `engine-error` in the app. */
export interface EngineError {
  code: string;
  message: string;
}
