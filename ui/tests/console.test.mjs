// Browser test of the dashboard at /console, against the real engine serving fixtures/demo.
// Needs `cargo build --bin fastfn` (repo root) and `npm run build` (ui/) first; `npm test`
// runs `tsc --noEmit` (which checks src/contract.ts against the captured samples) then this.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { liveJson } from './live.mjs';

const UI = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const ROOT = resolve(UI, '..');
const BIN = process.env.FASTFN_BIN ?? join(ROOT, 'target/debug/fastfn');
const DIST = join(UI, 'dist');
const SCREENSHOT = join(ROOT, 'docs/screenshots/console.png');
const FUNCTIONS_SHOT = join(ROOT, 'docs/screenshots/console-functions.png');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

function freePort() {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.on('error', fail);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => ok(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Objects in the samples keyed by data (routes, runtimes…), not by schema. */
const DATA_MAPS = new Set(['mapped_routes', 'mapped_route_conflicts', 'conflict_claimants', 'runtimes', 'params']);
/** Keys present only in some states of the engine (see the `?` in src/contract.ts). */
const SOMETIMES = new Set(['runtimes_missing', 'config_errors', 'warnings', 'deps', 'last_error', 'warm_at', 'last_scan_at', 'function']);

/** Every key of `sample` (recursively) that `live` lacks, as paths. */
function missingKeys(sample, live, path = '$') {
  const out = [];
  if (Array.isArray(sample)) {
    if (sample.length && Array.isArray(live) && live.length) out.push(...missingKeys(sample[0], live[0], `${path}[0]`));
    return out;
  }
  if (sample === null || typeof sample !== 'object') return out;
  if (live === null || typeof live !== 'object') return [`${path} (not an object)`];
  const isDataMap = DATA_MAPS.has(path.split('.').pop());
  for (const [k, v] of Object.entries(sample)) {
    if (!(k in live)) {
      if (!isDataMap && !SOMETIMES.has(k)) out.push(`${path}.${k}`);
      continue;
    }
    out.push(...missingKeys(v, live[k], `${path}.${k}`));
  }
  return out;
}

/** The typed constants of src/contract.samples.ts, as plain JSON. */
function loadSamples() {
  const text = readFileSync(join(UI, 'src/contract.samples.ts'), 'utf8');
  const samples = {};
  for (const m of text.matchAll(/export const (\w+): \w+ = ([\s\S]*?);\n(?=\nexport|$)/g)) samples[m[1]] = JSON.parse(m[2]);
  return samples;
}

/** `fastfn dev DIR` with the console on a free port; resolves once every runtime the project
 * needs is up (a runtime no route uses is `not_needed` and starts no daemon). */
async function startEngine(dir, sockDir, extraEnv = {}) {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  mkdirSync(sockDir, { recursive: true });
  const engine = spawn(BIN, ['dev', dir, '--port', String(port)], {
    cwd: ROOT,
    // Jobs are written beside the sockets, never into the (read-only) project.
    env: {
      ...process.env,
      FN_UI_ENABLED: '1',
      FN_UI_DIR: DIST,
      FN_SOCKET_BASE_DIR: sockDir,
      FN_JOBS_DIR: join(sockDir, 'jobs'),
      NO_COLOR: '1',
      ...extraEnv,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  const add = (d) => (log = (log + d).slice(-20000));
  engine.stdout.on('data', add);
  engine.stderr.on('data', add);
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (engine.exitCode !== null) throw new Error(`engine exited (${engine.exitCode}):\n${log}`);
    try {
      const h = await (await fetch(`${base}/_fn/health`)).json();
      const states = h.runtime_order.map((rt) => h.runtimes[rt]?.health?.state);
      if (states.length && states.every((st) => st === 'up' || st === 'not_needed')) break;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) throw new Error(`engine not ready in 60 s:\n${log}`);
    await sleep(200);
  }
  return { engine, base };
}

async function stopEngine(engine) {
  if (!engine || engine.exitCode !== null) return;
  engine.kill('SIGTERM');
  const gone = new Promise((r) => engine.once('exit', r));
  if ((await Promise.race([gone.then(() => true), sleep(5000).then(() => false)])) === false) {
    engine.kill('SIGKILL');
    await gone;
  }
}

describe('console in a browser', () => {
  let engine;
  let base;
  let ctx;
  let page;
  let tmp;

  before(async () => {
    if (!existsSync(BIN)) throw new Error(`engine binary ${BIN} is missing: run \`cargo build --bin fastfn\` in ${ROOT} first`);
    if (!existsSync(join(DIST, 'index.html'))) throw new Error(`${DIST}/index.html is missing: run \`npm run build\` in ${UI} first`);
    if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install chromium (or set CHROMIUM)`);
    tmp = mkdtempSync(join(tmpdir(), 'fastfn-ui-test-'));
    ({ engine, base } = await startEngine(join(ROOT, 'fixtures/demo'), join(tmp, 'sock')));
    ctx = await chromium.launchPersistentContext(join(tmp, 'profile'), {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
      viewport: { width: 1400, height: 900 },
      colorScheme: 'light',
    });
    page = ctx.pages()[0] ?? (await ctx.newPage());
    page.on('pageerror', (e) => console.error('page error:', e.message));
    await page.goto(`${base}/console/`);
    await page.locator('[data-testid=connection]', { hasText: 'live' }).waitFor();
  });

  after(async () => {
    await ctx?.close().catch(() => {});
    await stopEngine(engine);
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  test('live JSON has every key of the typed samples', async () => {
    const samples = loadSamples();
    const live = await liveJson(base);
    assert.deepEqual(Object.keys(samples).sort(), Object.keys(live).sort(), 'one sample per live answer');
    for (const [name, json] of Object.entries(live)) {
      assert.deepEqual(missingKeys(samples[name], json), [], `${name}: keys missing from the live JSON`);
    }
    assert.ok(samples.logsSample.entries.length > 0, 'the logs sample has entries to compare');
    assert.ok(live.logsSample.entries.length > 0, 'the runtime log answers entries');
    assert.deepEqual(Object.keys(live.requestEventSample.requests[0].stages).sort(), [
      'admission_us',
      'body_us',
      'build_us',
      'cold_us',
      'connect_us',
      'deps_us',
      'fault_us',
      'handler_us',
      'queue_us',
      'reply_us',
      'respond_us',
      'route_us',
      'runtime_us',
    ]);
  });

  test('route table lists the same patterns as the catalog', async () => {
    const catalog = await (await fetch(`${base}/_fn/catalog`)).json();
    const want = Object.keys(catalog.mapped_routes).sort();
    assert.ok(want.length > 5, 'the demo has routes');
    await page.locator('[data-testid=tab-routes]').click();
    await page.locator('[data-testid=route-row]').first().waitFor();
    const got = await page.$$eval('[data-testid=route-row]', (rows) => rows.map((r) => r.getAttribute('data-pattern')));
    assert.deepEqual([...new Set(got)].sort(), want);
  });

  test('the Routes badge and the table count the same routes as the engine', async () => {
    const health = await (await fetch(`${base}/_fn/health`)).json();
    const catalog = await (await fetch(`${base}/_fn/catalog`)).json();
    const routes = Object.keys(catalog.mapped_routes).length;
    assert.equal(health.routing.mapped_routes, routes);
    const rows = Object.values(catalog.mapped_routes).flat().length;
    assert.ok(rows > routes, 'the demo has a route served by two functions (more rows than routes)');
    await page.locator('[data-testid=tab-routes]').click();
    await page.locator('[data-testid=route-filter]').fill('');
    const badge = await page.locator('[data-testid=tab-routes] .count').innerText();
    const count = await page.locator('[data-testid=route-count]').innerText();
    assert.equal(badge, String(routes));
    assert.match(count, new RegExp(`^${routes} of ${routes} routes`));
  });

  test('resolver explains POST /users/42 as a 404 with a why', async () => {
    await page.locator('[data-testid=tab-routes]').click();
    await page.locator('[data-testid=resolve-method]').selectOption('POST');
    await page.locator('[data-testid=resolve-url]').fill('/users/42');
    await page.locator('[data-testid=resolve-button]').click();
    const result = page.locator('[data-testid=resolve-result][data-status="404"]');
    await result.waitFor();
    const text = await result.innerText();
    assert.match(text, /404/);
    assert.match(text, /Why:\s*\S+/);
    assert.match(text, /\/users\/:id/, 'the why names the route that answers GET');
  });

  test('health tab shows python and node sockets up', async () => {
    await page.locator('[data-testid=tab-health]').click();
    for (const rt of ['python', 'node']) {
      await page.locator(`[data-testid=socket-row][data-runtime=${rt}][data-up=true]`).first().waitFor();
      assert.ok(await page.locator(`[data-testid=socket-row][data-runtime=${rt}] [data-testid=kill-daemon]`).count());
    }
  });

  test('a request sent from the panel shows in the log with its X-Fn headers', async () => {
    await page.locator('[data-testid=tab-requests]').click();
    await page.locator('[data-testid=send-method]').selectOption('GET');
    await page.locator('[data-testid=send-path]').fill('/debug/whoami');
    const rows = page.locator('[data-testid=request-row][data-path="/debug/whoami"]');
    const before = await rows.count(); // the live-JSON test called it too
    await page.locator('[data-testid=send-button]').click();
    await page.locator('[data-testid=send-result][data-status="200"]').waitFor();
    // This send's own row: the newest, once the log has one more.
    await page.waitForFunction(
      (n) => document.querySelectorAll('[data-testid=request-row][data-path="/debug/whoami"]').length > n,
      before,
    );
    const row = rows.first();
    assert.equal(await row.getAttribute('data-status'), '200');
    await row.click();
    const sentId = (await page.locator('[data-testid=send-result]').innerText()).match(/x-fn-request-id:\s*(\S+)/i)?.[1];
    assert.ok(sentId, 'the send result shows its request id');
    assert.match(await page.locator('[data-testid=request-detail] h3').innerText(), new RegExp(sentId), 'the detail is the sent request');
    const headers = page.locator('[data-testid=request-headers] li');
    await headers.first().waitFor();
    const names = (await headers.allInnerTexts()).map((t) => t.split(':')[0].trim().toLowerCase());
    assert.ok(names.includes('x-fn-request-id'), `headers: ${names.join(', ')}`);
    const firstOther = names.findIndex((n) => !n.startsWith('x-fn-'));
    const lastFn = names.findLastIndex((n) => n.startsWith('x-fn-'));
    assert.ok(firstOther === -1 || lastFn < firstOther, 'X-Fn-* headers come first');
    // Where the time went: the seven stages, in order, on one bar no wider than the latency.
    const segs = await page.$$eval('[data-testid=request-stages] [data-stage]', (els) =>
      els.map((e) => ({ stage: e.getAttribute('data-stage'), us: Number(e.getAttribute('data-us')), width: parseFloat(e.style.width) })),
    );
    assert.deepEqual(segs.map((s) => s.stage), ['route', 'deps', 'admission', 'body', 'connect', 'runtime', 'handler', 'reply', 'respond']);
    assert.ok(segs.find((s) => s.stage === 'runtime').us > 0, `the handler took time: ${JSON.stringify(segs)}`);
    const width = segs.reduce((n, s) => n + s.width, 0);
    assert.ok(width > 0 && width <= 100.001, `stages cover ${width}% of the bar`);
    mkdirSync(dirname(SCREENSHOT), { recursive: true });
    await page.screenshot({ path: SCREENSHOT });
  });

  test('the Schedules view shows next and last runs, errors and retries, and runs a schedule now', async () => {
    const dir = join(tmp, 'scheduled');
    for (const name of ['weekly', 'flaky', 'warm']) cpSync(join(ROOT, 'fixtures/schedules', name), join(dir, name), { recursive: true });
    // A retry 4 s after the failure: long enough to be seen between two polls of the view.
    writeFileSync(
      join(dir, 'flaky/fn.config.json'),
      JSON.stringify({ schedule: { enabled: true, every_seconds: 604800, retry: { max_attempts: 3, base_delay_seconds: 4, jitter: 0 } } }),
    );
    const other = await startEngine(dir, join(tmp, 'sock-sched'));
    const p3 = await ctx.newPage();
    try {
      await p3.goto(`${other.base}/console/#schedules`);
      const weekly = p3.locator('[data-testid=schedule-row][data-key*=weekly]');
      await weekly.waitFor();
      const snap = await (await fetch(`${other.base}/_fn/schedules`)).json();
      const next = snap.schedules.find((s) => s.key.includes('weekly')).state.next;
      const local = await p3.evaluate((n) => new Date(n * 1000).toLocaleString(), next);
      assert.equal(await weekly.locator('[data-testid=schedule-next]').innerText(), local, 'next run, local time');
      assert.equal(await weekly.locator('[data-testid=schedule-spec]').innerText(), 'every 604800 s GET');
      assert.equal(await weekly.locator('[data-testid=schedule-status]').innerText(), '–', 'never ran');
      await weekly.locator('[data-testid=schedule-run]').click();
      await weekly.locator('[data-testid=schedule-run-result][data-status="200"]').waitFor();
      await p3.waitForFunction(() => document.querySelector('[data-testid=schedule-row][data-key*=weekly] [data-testid=schedule-status]')?.textContent === '200');
      assert.match(await weekly.locator('[data-testid=schedule-last]').innerText(), /just now|s ago/);
      // A failing run: its error, and the retry that is due.
      const flaky = p3.locator('[data-testid=schedule-row][data-key*=flaky]');
      await flaky.locator('[data-testid=schedule-run]').click();
      await flaky.locator('[data-testid=schedule-run-result][data-status="500"]').waitFor();
      await p3.waitForFunction(() =>
        /^retrying 2\/3 in 4\.00s/.test(document.querySelector('[data-testid=schedule-row][data-key*=flaky] [data-testid=schedule-error]')?.textContent ?? ''),
      );
      assert.match(await flaky.locator('[data-testid=schedule-retry]').innerText(), /attempt 2/);
      await p3.waitForFunction(() => document.querySelector('[data-testid=schedule-row][data-key*=flaky] [data-testid=schedule-status]')?.textContent === '200', null, { timeout: 10_000 });
      // Keep-warm: warm, and its pings are marked in the request log.
      await p3.locator('[data-testid=keep-warm-row][data-key*=warm] [data-testid=keep-warm-state]', { hasText: 'warm' }).waitFor();
      mkdirSync(dirname(SCREENSHOT), { recursive: true });
      await p3.screenshot({ path: join(dirname(SCREENSHOT), 'console-schedules.png') });
      await p3.locator('[data-testid=tab-requests]').click();
      await p3.locator('[data-testid=request-row][data-path="/warm"] [data-testid=request-trigger]', { hasText: 'keep-warm' }).first().waitFor();
      await p3.locator('[data-testid=requests-show-scheduled]').uncheck();
      assert.equal(await p3.locator('[data-testid=request-trigger]').count(), 0, 'scheduled calls can be hidden');
    } finally {
      await p3.close();
      await stopEngine(other.engine);
    }
  });

  test('the Jobs view runs a function as a job and shows its result', async () => {
    await page.locator('[data-testid=tab-jobs]').click();
    await page.locator('[data-testid=job-function]').waitFor();
    const option = await page.$$eval('[data-testid=job-function] option', (opts) =>
      opts.find((o) => /^python · hello\.py$/.test(o.textContent.trim()))?.value,
    );
    assert.ok(option, 'hello.py is offered as a job target');
    await page.locator('[data-testid=job-function]').selectOption(option);
    await page.locator('[data-testid=job-method]').selectOption('GET');
    await page.locator('[data-testid=job-submit]').click();
    // Queued, then run by the engine's worker; the list follows without a reload.
    const row = page.locator('[data-testid=job-row][data-status=done]').first();
    await row.waitFor({ timeout: 15_000 });
    const id = await row.getAttribute('data-id');
    const job = await (await fetch(`${base}/_fn/jobs/${id}`)).json();
    assert.equal(job.status, 'done');
    assert.equal(job.name, 'hello.py');
    assert.equal(Number(await page.locator('[data-testid=job-counts] [data-status=done]').getAttribute('data-count')) >= 1, true);
    await row.locator('[data-testid=job-show-result]').click();
    await page.locator('[data-testid=job-result][data-status="200"]').waitFor();
    const body = await page.locator('[data-testid=job-result-body]').innerText();
    assert.deepEqual(JSON.parse(body), { message: 'Hello, world!', runtime: 'python' });
    // A job submitted through the API shows up too.
    const other = await (
      await fetch(`${base}/_fn/jobs`, {
        method: 'POST',
        headers: { 'X-Fn-Request': '1', 'Content-Type': 'application/json' },
        body: JSON.stringify({ name: 'hello.py', query: { name: 'API' } }),
      })
    ).json();
    await page.locator(`[data-testid=job-row][data-id="${other.id}"]`).waitFor();
    await page.screenshot({ path: join(ROOT, 'docs/screenshots/console-jobs.png') });
  });

  test('the Env view shows fn.env.json with secret values masked', async () => {
    await page.locator('[data-testid=tab-env]').click();
    const row = page.locator('[data-testid=env-function][data-name="settings/handler.py"] [data-testid=env-row][data-key=API_KEY]');
    await row.waitFor();
    assert.equal(await row.getAttribute('data-secret'), 'true');
    assert.match(await row.locator('[data-testid=env-value]').innerText(), /secret/);
    const plain = page.locator('[data-testid=env-function][data-name="settings/handler.py"] [data-testid=env-row][data-key=GREETING]');
    assert.equal(await plain.locator('[data-testid=env-value]').innerText(), 'hi from fn.env.json');
    assert.ok(!(await page.content()).includes('not-a-real-secret'), 'the secret value is nowhere in the page');
    const env = await (await fetch(`${base}/_fn/env`)).text();
    assert.ok(!env.includes('not-a-real-secret'), '/_fn/env never sends it');
  });

  test('a 404 appears in the log with its reason and why', async () => {
    await page.locator('[data-testid=tab-requests]').click();
    const resp = await fetch(`${base}/helo`);
    assert.equal(resp.status, 404);
    const row = page.locator('[data-testid=request-row][data-path="/helo"]').first();
    await row.waitFor();
    assert.equal(await row.getAttribute('data-reason'), 'no_route');
    await row.click();
    // The nearest routes are worked out when the detail is read.
    const whyLine = page.locator('[data-testid=request-detail] [data-testid=request-why]', { hasText: 'nearest:' });
    await whyLine.waitFor();
    assert.match(await whyLine.innerText(), /no route matches \/helo; nearest: \/hello/);
    assert.equal(await page.locator('[data-testid=request-detail] [data-testid=request-reason]').getAttribute('data-reason'), 'no_route');
  });

  test('edit + replay shows a diff', async () => {
    await page.locator('[data-testid=tab-requests]').click();
    const resp = await fetch(`${base}/hello?name=ada`);
    assert.equal(resp.status, 200);
    // The HTTP call, not a job run of the same function (the Jobs test's jobs may still run).
    const row = page.locator('[data-testid=request-row][data-path="/hello"][data-trigger=http]').first();
    await row.waitFor();
    await row.click();
    const panel = page.locator('[data-testid=request-detail] [data-testid=replay-panel]');
    await panel.waitFor();
    await panel.locator('[data-testid=replay-path]').fill('/hello?name=bob');
    await panel.locator('[data-testid=replay-button]').click();
    const diff = panel.locator('[data-testid=replay-diff]');
    await diff.waitFor();
    assert.equal(await diff.getAttribute('data-same'), 'false');
    const change = diff.locator('[data-testid=diff-body] li[data-path="$.message"]');
    assert.match(await change.innerText(), /Hello, ada!.*→.*Hello, bob!/s);
    const stages = await diff.locator('[data-testid=diff-stages] tbody tr').count();
    assert.equal(stages, 12, 'each stage before and after (queue, connect, build, cold and handler included)');
    // The replay is in the log too, as a request of its own.
    await page.locator('[data-testid=request-row][data-path="/hello"][data-trigger=http]').nth(1).waitFor();
    await diff.scrollIntoViewIfNeeded();
    mkdirSync(dirname(SCREENSHOT), { recursive: true });
    await page.screenshot({ path: SCREENSHOT.replace('console.png', 'inspector.png') });
  });

  test('save as test, change the handler, the test goes red in the strip', async () => {
    const dir = join(tmp, 'saved-tests');
    mkdirSync(dir);
    copyFileSync(join(ROOT, 'fixtures/demo/hello.py'), join(dir, 'hello.py'));
    const other = await startEngine(dir, join(tmp, 'sock3'));
    const p2 = await ctx.newPage();
    try {
      await p2.goto(`${other.base}/console/#requests`);
      await p2.locator('[data-testid=connection]', { hasText: 'live' }).waitFor();
      assert.equal((await fetch(`${other.base}/hello?name=ada`)).status, 200);
      const row = p2.locator('[data-testid=request-row][data-path="/hello"]').first();
      await row.waitFor();
      await row.click();
      await p2.locator('[data-testid=request-detail] [data-testid=save-test]').click();
      assert.match(await p2.locator('[data-testid=saved-test]').innerText(), /\.fastfn\/tests\/get-hello-answers-200\.json/);
      const saved = JSON.parse(readFileSync(join(dir, '.fastfn/tests/get-hello-answers-200.json'), 'utf8'));
      assert.equal(saved.expect.json['$.message'], 'Hello, ada!');
      // New code: the reload re-runs the saved tests and the strip turns red.
      writeFileSync(join(dir, 'hello.py'), 'def handler(event):\n    return {"message": "changed", "runtime": "python"}\n');
      const chip = p2.locator('[data-testid=test-strip] [data-testid=test-chip][data-file="get-hello-answers-200.json"]');
      await p2.locator('[data-testid=test-strip] [data-testid=test-chip][data-ok=false]').waitFor({ timeout: 20_000 });
      assert.equal(await chip.getAttribute('data-ok'), 'false');
      assert.match(await chip.getAttribute('title'), /\$\.message: "changed", expected "Hello, ada!"/);
      await p2.screenshot({ path: join(ROOT, 'docs/screenshots/inspector-tests.png') });
    } finally {
      await p2.close();
      await stopEngine(other.engine);
    }
  });

  test('Export for Kubernetes writes the served project, then refuses a non-empty folder', async () => {
    const out = join(tmp, 'k8s-export');
    await page.locator('[data-testid=tab-export]').click();
    await page.locator('[data-testid=export-out]').fill(out);
    await page.locator('[data-testid=export-name]').fill('demo-app');
    await page.locator('[data-testid=export-run]').click();
    const done = page.locator('[data-testid=export-done]');
    await done.waitFor();
    const text = await done.innerText();
    for (const f of ['Containerfile', 'deployment.yaml', 'kustomization.yaml']) {
      assert.ok(text.includes(f), `${f} listed: ${text}`);
      assert.ok(existsSync(join(out, f)), `${f} written`);
    }
    assert.match(text, /podman build -t demo-app:latest/);
    await page.locator('[data-testid=export-run]').click();
    await page.locator('[data-testid=export-error]', { hasText: 'not empty' }).waitFor();
  });

  // After the inspector's tests: the Lab's burst of /hello requests fills the request log.
  test('the Lab view sets a fault (banner on), runs load with a live chart, and clears it', async () => {
    await page.locator('[data-testid=tab-lab]').click();
    await page.locator('[data-testid=lab-function] option', { hasText: /^hello\.py$/ }).waitFor({ state: 'attached' });
    await page.locator('[data-testid=lab-function]').selectOption('hello.py');
    await page.locator('[data-testid=lab-fail]').click(); // 10 % with 503 by default
    const banner = page.locator('[data-testid=fault-banner]');
    await banner.waitFor();
    assert.match(await banner.innerText(), /10 % of hello\.py fail with 503/);
    const health = await (await fetch(`${base}/_fn/health`)).json();
    assert.equal(health.faults?.length, 1, 'health lists the fault');
    await page.locator('[data-testid=lab-path]').fill('/hello');
    await page.locator('[data-testid=lab-n]').fill('400');
    await page.locator('[data-testid=lab-c]').fill('8');
    await page.locator('[data-testid=lab-start]').click();
    const summary = page.locator('[data-testid=lab-summary]', { hasText: 'done' });
    await summary.waitFor({ timeout: 30_000 });
    const text = await summary.innerText();
    assert.match(text, /400 requests/);
    assert.match(text, /200: 360, 503: 40/);
    await page.locator('[data-testid=lab-chart] canvas').first().waitFor();
    // What the engine saw of hello.py during the run, and the run saved in the project.
    await page.locator('[data-testid=lab-admission-chart] canvas').first().waitFor();
    await page.locator('[data-testid=lab-saved] li', { hasText: '/hello c=8' }).first().waitFor();
    await page.locator('[data-testid=lab-live-admission] canvas').first().waitFor();
    await page.screenshot({ path: join(ROOT, 'docs/screenshots/console-lab.png') });
    await page.locator('[data-testid=lab-clear-all]').click();
    await banner.waitFor({ state: 'detached' });
    const after = await (await fetch(`${base}/_fn/health`)).json();
    assert.equal(after.faults, undefined, 'cleared');
  });

  test('a runtime no route uses shows as not needed, not down', async () => {
    const dir = join(tmp, 'python-only');
    mkdirSync(dir);
    copyFileSync(join(ROOT, 'fixtures/demo/hello.py'), join(dir, 'hello.py'));
    const other = await startEngine(dir, join(tmp, 'sock2'));
    const p2 = await ctx.newPage();
    try {
      const h = await (await fetch(`${other.base}/_fn/health`)).json();
      const idle = h.runtime_order.filter((rt) => h.runtimes[rt]?.health.state === 'not_needed');
      assert.ok(idle.includes('node'), `node is not needed by a python-only project: ${JSON.stringify(h.runtimes)}`);
      await p2.goto(`${other.base}/console/#health`);
      await p2.locator('[data-testid=runtime-card][data-runtime=python][data-state=up]').waitFor();
      for (const rt of idle) {
        const card = p2.locator(`[data-testid=runtime-card][data-runtime=${rt}]`);
        assert.equal(await card.getAttribute('data-state'), 'not_needed', rt);
        assert.match(await card.locator('[data-testid=runtime-state]').innerText(), /^not needed/);
        assert.equal(await card.locator('.dot.down').count(), 0, `${rt} has no red dot`);
        assert.equal(await card.locator('[data-testid=kill-daemon]').count(), 0, `${rt} has no daemon to kill`);
      }
      assert.equal(await p2.locator('[data-testid=tab-health] .count.bad').count(), 0, 'no "down" badge');
      assert.equal(await p2.locator('[data-testid=state-all-down]').count(), 0);
    } finally {
      await p2.close();
      await stopEngine(other.engine);
    }
  });
  test("a dependency install shows in Health with its installer's output", async () => {
    const dir = join(tmp, 'deps-project');
    mkdirSync(dir);
    copyFileSync(join(ROOT, 'fixtures/demo/hello.py'), join(dir, 'hello.py'));
    const other = await startEngine(dir, join(tmp, 'sock-deps'));
    const p2 = await ctx.newPage();
    try {
      await p2.goto(`${other.base}/console/#health`);
      await p2.locator('[data-testid=connection]', { hasText: 'live' }).waitFor();
      // Added while the page watches: the reload starts the install, and pip refuses a path
      // that does not exist at once, offline.
      mkdirSync(join(dir, 'needs'));
      writeFileSync(join(dir, 'needs', 'requirements.txt'), './no-such-package-dir\n');
      writeFileSync(join(dir, 'needs', 'handler.py'), 'def handler(event):\n    return {"ok": True}\n');
      const row = p2.locator('[data-testid=work-row][data-kind=deps][data-function=needs]');
      await row.waitFor({ timeout: 30000 });
      await p2.locator('[data-testid=work-row][data-function=needs][data-state=failed]').waitFor({ timeout: 60000 });
      const lines = await p2.locator('[data-testid=work-lines]').first().innerText();
      assert.match(lines, /no-such-package-dir/, `the installer's own words are shown: ${lines}`);
    } finally {
      await p2.close();
      await stopEngine(other.engine);
    }
  });


  test('functions: create from a template, edit config and code, see the new answer, delete', async () => {
    const dir = join(tmp, 'manage');
    cpSync(join(ROOT, 'fixtures/manage'), dir, { recursive: true });
    const other = await startEngine(dir, join(tmp, 'sock3'), { FN_CONSOLE_WRITE_ENABLED: '1' });
    const p = await ctx.newPage();
    p.on('pageerror', (e) => console.error('page error:', e.message));
    try {
      await p.goto(`${other.base}/console/#functions`);
      await p.locator('[data-testid=fn-item][data-name=hello]').waitFor();
      assert.equal(await p.locator('[data-testid=fn-readonly]').count(), 0, 'write mode is on');
      // New function: node, folder, "made", from the `fastfn init` template.
      await p.locator('[data-testid=fn-new]').click();
      await p.locator('[data-testid=fn-new-runtime]').selectOption('node');
      await p.locator('[data-testid=fn-new-shape]').selectOption('folder');
      await p.locator('[data-testid=fn-new-name]').fill('made');
      mkdirSync(dirname(FUNCTIONS_SHOT), { recursive: true });
      await p.screenshot({ path: FUNCTIONS_SHOT.replace('.png', '-new.png') });
      await p.locator('[data-testid=fn-new-create]').click();
      await p.locator('[data-testid=fn-name]', { hasText: 'made' }).waitFor();
      assert.match(await p.locator('[data-testid=fn-result]').innerText(), /served at \/made/);
      let r = await fetch(`${other.base}/made?name=Ana`);
      assert.equal(r.status, 200);
      // The template as the original writes it: a fixed greeting, the query echoed.
      assert.match(await r.text(), /"message":"Hello from FastFN Node!".*"query":\{"name":"Ana"\}/);
      // Config from the form: timeout_ms, saved, reloaded, on disk.
      await p.locator('[data-testid=fn-sub-config]').click();
      await p.locator('[data-testid=fn-cfg-timeout]').fill('1234');
      await p.locator('[data-testid=fn-cfg-save]').click();
      await p.locator('[data-testid=fn-result]', { hasText: 'Config saved' }).waitFor();
      await p.screenshot({ path: FUNCTIONS_SHOT.replace('.png', '-config.png') });
      const cfg = JSON.parse(readFileSync(join(dir, 'made/fn.config.json'), 'utf8'));
      assert.equal(cfg.timeout_ms, 1234);
      assert.equal(cfg.runtime, 'node', 'the rest of the config is kept');
      // Code: select all, type new code, Ctrl+S: the result line reports the new answer.
      await p.locator('[data-testid=fn-sub-code]').click();
      await p.locator('[data-testid=code-editor] .cm-content').click();
      await p.keyboard.press('Control+A');
      await p.keyboard.type('exports.handler = async () => ({ made: 2 });');
      await p.keyboard.press('Control+S');
      await p.locator('[data-testid=fn-result]', { hasText: 'served by new code' }).waitFor();
      r = await fetch(`${other.base}/made`);
      assert.deepEqual(await r.json(), { made: 2 });
      // A syntax error: the result line shows the error and links to its line.
      await p.locator('[data-testid=code-editor] .cm-content').click();
      await p.keyboard.press('Control+A');
      await p.keyboard.type('exports.handler = async () => {\n  return ({ made: 3 ;\n};');
      await p.keyboard.press('Control+S');
      const bad = p.locator('[data-testid=fn-result].bad');
      await bad.waitFor();
      assert.match(await bad.innerText(), /does not compile \(line 2\): SyntaxError/);
      await p.locator('[data-testid=fn-result-line]').click();
      // (The editor indents typed newlines itself.)
      assert.match(await p.locator('[data-testid=code-editor] .cm-activeLine').innerText(), /^\s*return \(\{ made: 3 ;$/, 'the cursor is on line 2');
      // Fixed again.
      await p.locator('[data-testid=code-editor] .cm-content').click();
      await p.keyboard.press('Control+A');
      await p.keyboard.type('exports.handler = async () => ({ made: 2 });');
      await p.keyboard.press('Control+S');
      await p.locator('[data-testid=fn-result]', { hasText: 'served by new code' }).waitFor();
      // A saved test event, re-sent.
      await p.locator('[data-testid=fn-sub-test]').click();
      await p.locator('[data-testid=fn-test-name]').fill('ping');
      await p.locator('[data-testid=fn-test-save]').click();
      await p.locator('[data-testid=fn-test-send]').click();
      await p.locator('[data-testid=fn-test-reply]', { hasText: 'HTTP 200' }).waitFor();
      assert.match(await p.locator('[data-testid=fn-test-saved]').innerText(), /ping/);
      await p.locator('[data-testid=fn-sub-code]').click();
      assert.match(await p.locator('[data-testid=code-editor] .cm-content').innerText(), /made: 2/, 'the editor shows the saved code');
      assert.equal(await p.locator('[data-testid=fn-dirty]').innerText(), 'saved');
      mkdirSync(dirname(FUNCTIONS_SHOT), { recursive: true });
      await p.screenshot({ path: FUNCTIONS_SHOT });
      // Delete, confirmed.
      await p.locator('[data-testid=fn-delete]').click();
      assert.match(await p.locator('[data-testid=fn-delete-confirm-bar]').innerText(), /made\/ and everything in it/);
      assert.ok(existsSync(join(dir, 'made')), 'nothing removed before the confirmation');
      await p.locator('[data-testid=fn-delete-confirm]').click();
      await p.locator('[data-testid=fn-view]').waitFor({ state: 'detached' });
      assert.equal((await fetch(`${other.base}/made`)).status, 404);
      assert.ok(!existsSync(join(dir, 'made')), 'the folder is gone');
    } finally {
      await p.close();
      await stopEngine(other.engine);
    }
  });

  test('health shows the sandbox of every function and names a crashing one', async () => {
    const dir = join(tmp, 'isolation');
    for (const f of ['py', 'py-open', 'crash', 'healthy']) cpSync(join(ROOT, 'fixtures/sandbox', f), join(dir, f), { recursive: true });
    const other = await startEngine(dir, join(tmp, 'sock4'));
    const p3 = await ctx.newPage();
    const row = (key) => p3.locator(`[data-testid=isolation-row][data-key="${key}"]`);
    try {
      // The first call takes the shared python daemon down and isolates its function; later
      // calls end its own daemon.
      const deadline = Date.now() + 20_000;
      for (;;) {
        await fetch(`${other.base}/crash`).catch(() => {});
        const h = await (await fetch(`${other.base}/_fn/health`)).json();
        const crash = h.functions.states.find((f) => f.name === 'crash');
        if (crash?.isolation?.state === 'crashing' && crash.isolation.last_exit) break;
        assert.ok(Date.now() < deadline, `crash never shown as crashing: ${JSON.stringify(crash)}`);
        await sleep(300);
      }
      // The shared daemon is back after that first crash: the healthy function answers again.
      for (;;) {
        if ((await fetch(`${other.base}/healthy`)).status === 200) break;
        assert.ok(Date.now() < deadline + 15_000, 'the shared python daemon never came back');
        await sleep(200);
      }
      await p3.goto(`${other.base}/console/#health`);
      await p3.locator('[data-testid=isolation-row][data-key="python/crash@default"][data-state=crashing]').waitFor();
      assert.match(await row('python/crash@default').innerText(), /crashing[\s\S]*exit status: 3/);
      assert.ok(await p3.locator('[data-testid=crashing-count]').count(), 'the panel counts the crashing function');
      assert.equal(await row('python/healthy@default').getAttribute('data-state'), 'shared');
      assert.equal(await row('python/py@default').getAttribute('data-strict'), 'true');
      assert.equal(await row('python/py-open@default').getAttribute('data-strict'), 'false');
      // A function's own daemon is not shown as a socket of the runtime.
      assert.equal(await p3.locator('[data-testid=socket-row][data-runtime=python]').count(), 1);
    } finally {
      await p3.close();
      await stopEngine(other.engine);
    }
  });

  test('functions: with write mode off the view is read-only and the engine refuses writes', async () => {
    const dir = join(tmp, 'manage-ro');
    cpSync(join(ROOT, 'fixtures/manage'), dir, { recursive: true });
    const other = await startEngine(dir, join(tmp, 'sock4'));
    const p = await ctx.newPage();
    try {
      await p.goto(`${other.base}/console/#functions`);
      await p.locator('[data-testid=fn-readonly]').waitFor();
      assert.ok(await p.locator('[data-testid=fn-new]').isDisabled());
      await p.locator('[data-testid=fn-item][data-name=hello]').click();
      await p.locator('[data-testid=fn-view]').waitFor();
      assert.ok(await p.locator('[data-testid=fn-delete]').isDisabled());
      const status = await p.evaluate(async () => {
        const r = await fetch('/_fn/function?runtime=node&name=made', { method: 'POST', headers: { 'X-Fn-Request': '1' }, body: '{}' });
        return [r.status, (await r.json()).error];
      });
      assert.deepEqual(status, [403, 'console write disabled']);
      assert.ok(!existsSync(join(dir, 'made')));
    } finally {
      await p.close();
      await stopEngine(other.engine);
    }
  });

  test('functions: with console login on, writes wait for a sign-in', async () => {
    const dir = join(tmp, 'manage-login');
    cpSync(join(ROOT, 'fixtures/manage'), dir, { recursive: true });
    // pbkdf2-sha256 of "pw" (salt 00112233, 100000 iterations), as FastFN's Python line makes it.
    const hash = 'pbkdf2-sha256:100000:00112233:e1edcd8c6b066aa5bfe5116800b37033342638d5dbb61f2c0baee865b9b4ef23';
    const other = await startEngine(dir, join(tmp, 'sock5'), {
      FN_CONSOLE_WRITE_ENABLED: '1',
      FN_CONSOLE_LOGIN_ENABLED: '1',
      FN_CONSOLE_LOGIN_USERNAME: 'admin',
      FN_CONSOLE_LOGIN_PASSWORD_HASH: hash,
    });
    const p = await ctx.newPage();
    try {
      await p.goto(`${other.base}/console/#functions`);
      await p.locator('[data-testid=fn-login]').waitFor();
      assert.ok(await p.locator('[data-testid=fn-new]').isDisabled(), 'no writes before signing in');
      await p.locator('[data-testid=fn-login-user]').fill('admin');
      await p.locator('[data-testid=fn-login-pass]').fill('wrong');
      await p.locator('[data-testid=fn-login-submit]').click();
      assert.equal(await p.locator('[data-testid=fn-login-error]').innerText(), 'invalid credentials');
      await p.locator('[data-testid=fn-login-pass]').fill('pw');
      await p.locator('[data-testid=fn-login-submit]').click();
      await p.locator('[data-testid=fn-login]').waitFor({ state: 'detached' });
      assert.ok(await p.locator('[data-testid=fn-new]').isEnabled(), 'signed in: writes allowed');
    } finally {
      await p.close();
      await stopEngine(other.engine);
    }
  });
});
