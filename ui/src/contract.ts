// The engine's JSON, typed once: everything the engine answers is generated from its Rust types
// by ts-rs into `./bindings` (`cargo test` regenerates them; CI fails when they drift). Only
// the desktop app's own payloads, which the engine does not know, are written by hand below.
// `contract.samples.ts` holds JSON captured from `fixtures/demo` typed with these, so
// `tsc --noEmit` fails when a captured answer no longer fits its type.
export type { Catalog } from './bindings/Catalog';
export type { CatalogRuntime } from './bindings/CatalogRuntime';
export type { EngineEvent } from './bindings/EngineEvent';
export type { FunctionState } from './bindings/FunctionState';
export type { Fault } from './bindings/Fault';
export type { FaultSpec } from './bindings/FaultSpec';
export type { LabState } from './bindings/LabState';
export type { LoadRun } from './bindings/LoadRun';
export type { LoadSpec } from './bindings/LoadSpec';
export type { Health } from './bindings/Health';
export type { LogLine } from './bindings/LogLine';
export type { MappedRoute } from './bindings/MappedRoute';
export type { Phase } from './bindings/Phase';
export type { PoolStats } from './bindings/PoolStats';
export type { RequestRecord } from './bindings/RequestRecord';
export type { RequestSummary } from './bindings/RequestSummary';
export type { Resolve } from './bindings/Resolve';
export type { RuntimeHealth } from './bindings/RuntimeHealth';
export type { RuntimeKind } from './bindings/RuntimeKind';
export type { RuntimeStatus } from './bindings/RuntimeStatus';
export type { CallTrigger } from './bindings/CallTrigger';
export type { KeepWarmEntry } from './bindings/KeepWarmEntry';
export type { KeepWarmView } from './bindings/KeepWarmView';
export type { ScheduleEntry } from './bindings/ScheduleEntry';
export type { SchedulesSnapshot } from './bindings/SchedulesSnapshot';
export type { SocketStatus } from './bindings/SocketStatus';
export type { Stages } from './bindings/Stages';
export type { Job } from './bindings/Job';
export type { JobResult } from './bindings/JobResult';
export type { JobStatus } from './bindings/JobStatus';
export type { FunctionEnv } from './bindings/FunctionEnv';
export type { EnvEntry } from './bindings/EnvEntry';

import type { LogLine } from './bindings/LogLine';
import type { RuntimeHealth } from './bindings/RuntimeHealth';

/** `runtimes.<rt>.health.state` (typed `string` in Rust). */
export type RuntimeState = 'up' | 'down' | 'not_needed';

/** A runtime's state (`not_needed`: the project has no route for it, so no daemon runs). */
export function runtimeState(h: RuntimeHealth | undefined): RuntimeState {
  const s = h?.state;
  return s === 'up' || s === 'down' || s === 'not_needed' ? s : h?.up ? 'up' : 'down';
}

/** `GET /_fn/logs?file=runtime&format=json` (only the field the dashboard reads) and the
 * app's `logs` command. */
export interface RuntimeLogs {
  entries: LogLine[];
}

/** `POST /_fn/schedules/run?key=…` and the app's `run_schedule`. */
export interface RunNowResult {
  key: string;
  status: number;
  error: string;
  ok: boolean;
}

/** `send_request` in the app; a `fetch` in the browser. */
export interface SendResult {
  status: number;
  headers: [string, string][];
  body: string;
  ms: number;
}

/** `POST /_fn/jobs` (FastFN's fields; `name`, `runtime`, `version` pick the function). */
export interface JobSubmit {
  name: string;
  runtime?: string;
  version?: string;
  method?: string;
  body?: string;
  query?: Record<string, string>;
}

/** `GET /_fn/jobs/<id>/result` while the job has not finished (HTTP 202). */
export interface JobPending {
  id: string;
  status: string;
  error: string;
}

/** `current_project` / `project-changed` in the app (`url`, `port` null and `error` set when
 * the engine failed to start). */
export interface Project {
  path: string;
  url: string | null;
  port: number | null;
  error?: EngineError;
}

/** `engine-error` in the app. */
export interface EngineError {
  code: string;
  message: string;
}
