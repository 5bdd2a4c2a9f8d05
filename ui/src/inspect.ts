// The request inspector's engine endpoints (`/_fn/requests*`, docs/inspector.md), reached
// through `Backend.sendRequest` so the browser and the desktop app share one path (the
// engine's admin guard applies: loopback, `Host`, `X-Fn-Request` on writes).
import type { Backend } from './backend';
import type { RequestDetail } from './bindings/RequestDetail';
import type { ReplayRequest } from './bindings/ReplayRequest';
import type { ReplayResult } from './bindings/ReplayResult';

import type { SaveTest } from './bindings/SaveTest';
import type { TestRun } from './bindings/TestRun';

export type { RequestDetail, ReplayRequest, ReplayResult, TestRun };

/** Store a captured request and assertions as `.fastfn/tests/<name>.json`. */
export function saveTest(backend: Backend, id: string, opts: SaveTest): Promise<{ file: string }> {
  return call(backend, 'POST', `/_fn/requests/${encodeURIComponent(id)}/save-test`, JSON.stringify(opts));
}

/** The last run of the saved tests, and the files. */
export function lastTests(backend: Backend): Promise<{ files: string[]; last: TestRun | null }> {
  return call(backend, 'GET', '/_fn/tests');
}

/** Run the saved tests now. */
export function runTests(backend: Backend): Promise<TestRun> {
  return call(backend, 'POST', '/_fn/tests/run');
}

async function call<T>(backend: Backend, method: string, path: string, body = ''): Promise<T> {
  const headers: [string, string][] = [['X-Fn-Request', '1']];
  if (body) headers.push(['Content-Type', 'application/json']);
  const r = await backend.sendRequest({ method, path, headers, body });
  if (r.status !== 200) {
    let msg = r.body;
    try {
      msg = (JSON.parse(r.body) as { error?: string }).error ?? r.body;
    } catch {
      /* not JSON */
    }
    throw new Error(`${path}: HTTP ${r.status} ${msg.slice(0, 200)}`);
  }
  return JSON.parse(r.body) as T;
}

/** One request with its captured headers and bodies (secrets masked). */
export function requestDetail(backend: Backend, id: string): Promise<RequestDetail> {
  return call(backend, 'GET', `/_fn/requests/${encodeURIComponent(id)}`);
}

/** Re-send a captured request with edits; the engine answers both records and their diff. */
export function replay(backend: Backend, req: ReplayRequest): Promise<ReplayResult> {
  return call(backend, 'POST', '/_fn/requests/replay', JSON.stringify(req));
}

/** HAR 1.2 of these requests (all when empty), as text. */
export async function har(backend: Backend, ids: string[] = []): Promise<string> {
  const q = ids.length ? `?id=${encodeURIComponent(ids.join(','))}` : '';
  const r = await backend.sendRequest({ method: 'GET', path: `/_fn/requests/har${q}`, headers: [], body: '' });
  if (r.status !== 200) throw new Error(`HAR export: HTTP ${r.status}`);
  return r.body;
}

/** Save `text` as a file download. */
export function download(name: string, text: string, type = 'application/json') {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
