'use strict';
// FastFN handler forms on a real Node daemon: ES modules and TypeScript (esbuild on Node 20),
// reload of the whole module graph after an edit (entry or private helper), module state
// shared by the handlers of one folder.
// Run: node --test runtimes/node/

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');
const { spawn } = require('child_process');

const DAEMON = path.join(__dirname, 'daemon.js');
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'fastfn-node-compat-'));
const sock = path.join(root, 'd.sock');
let child;

function write(rel, text) {
  const file = path.join(root, rel);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text);
}

function frame(obj) {
  const body = Buffer.from(JSON.stringify(obj));
  const head = Buffer.alloc(4);
  head.writeUInt32BE(body.length);
  return Buffer.concat([head, body]);
}

function call(entry, event = {}, extra = {}) {
  return new Promise((resolve, reject) => {
    const s = net.createConnection(sock);
    const chunks = [];
    s.on('connect', () => s.write(frame({ entry, ...extra, event: { method: 'GET', headers: {}, query: {}, ...event } })));
    s.on('data', (d) => chunks.push(d));
    s.on('error', reject);
    s.on('close', () => {
      const buf = Buffer.concat(chunks);
      if (buf.length < 4) return reject(new Error('no reply'));
      resolve(JSON.parse(buf.toString('utf8', 4)));
    });
  });
}

/** Rewrites a file so its change is seen (size or mtime differs) and the watch has fired. */
async function edit(rel, text) {
  await sleep(20);
  write(rel, text);
  await sleep(60);
}

test.before(async () => {
  write('esm/worker.js', 'let n = 0;\nexport default { fetch() { n++; return new Response("v1 " + n); } };\n');
  write('esm/named.js', 'export async function handler() { return { v: 1 }; }\n');
  write('esm/meta.mjs', 'export function handler() { return import.meta.url.startsWith("file://") ? "url" : "no"; }\n');
  write('helper/_util.js', 'module.exports = { word: "old" };\n');
  write('helper/handler.js', 'const u = require("./_util");\nexports.handler = () => u.word;\n');
  write('helper/esm.js', 'import { word } from "./_esm_util.js";\nexport const handler = () => word;\n');
  write('helper/_esm_util.js', 'export const word = "old";\n');
  write('shared/_shared.js', 'module.exports = { items: [] };\n');
  write('shared/put.js', 'const s = require("./_shared");\nexports.handler = (e) => { s.items.push(e.body); return s.items.length; };\n');
  write('shared/get.js', 'const s = require("./_shared");\nexports.handler = () => s.items;\n');
  write('ts/typed.ts', 'const n: number = "not a number" as any as number;\ninterface A { x: string }\nexport function handler(event: any): string { const a: A = { x: "ts" }; return a.x + " " + n; }\n');
  write('ts/typeerror.ts', 'export function handler(): number { return "a string, though the type says number"; }\n');
  write('ts/enum.ts', 'enum Color { Red = "red" }\nexport const handler = () => Color.Red;\n');
  write('ts/_util.ts', 'export const twice = (n: number): number => n * 2;\n');
  write('ts/imports.ts', 'import { twice } from "./_util";\nimport { twice as again } from "./_util.js";\nexport const handler = (): string => `${twice(2)} ${again(3)}`;\n');
  write('ts/broken.ts', 'export function handler() {\n  return {;\n}\n');
  write('env_a/fn.env.json', JSON.stringify({ GREETING: 'hello a', N: { value: 3 } }));
  write('env_a/handler.js', 'exports.handler = async (e) => { const before = process.env.GREETING; await new Promise((r) => setTimeout(r, Number(e.query.ms || 0))); return { before, after: process.env.GREETING, n: process.env.N, has: "GREETING" in process.env, listed: Object.keys(process.env).includes("GREETING"), path: typeof process.env.PATH }; };\n');
  write('env_b/fn.env.json', JSON.stringify({ GREETING: 'hello b' }));
  write('env_b/handler.js', 'exports.handler = async (e) => { await new Promise((r) => setTimeout(r, Number(e.query.ms || 0))); return { after: process.env.GREETING }; };\n');
  write('env_none/handler.js', 'exports.handler = () => ({ g: process.env.GREETING === undefined ? null : process.env.GREETING, has: "GREETING" in process.env, spread: { ...process.env }.GREETING === undefined });\n');
  write('csv/rows.js', 'exports.handler = () => ({ headers: { "Content-Type": "text/csv" }, body: [{ id: 1, name: "Ada, L." }, { id: 2, name: \'say "hi"\' }] });\n');
  write('csv/arrays.js', 'exports.handler = () => ({ status: 201, headers: { "content-type": "text/csv; charset=utf-8" }, body: [["a", "b"], [1, null]] });\n');
  write('csv/one.js', 'exports.handler = () => ({ headers: { "Content-Type": "text/csv" }, body: { x: 1, y: { z: 2 } } });\n');
  write('loud.js', 'exports.handler = () => { for (let i = 0; i < 20; i++) console.log("x".repeat(1048576)); process.stderr.write("e".repeat(100000)); return "ok"; };\n');
  child = spawn(process.execPath, [DAEMON, sock], { env: { ...process.env, FN_FUNCTIONS_ROOT: root }, stdio: ['pipe', 'inherit', 'inherit'] });
  for (let i = 0; i < 400; i++) {
    try {
      await call('helper/handler.js');
      return;
    } catch {
      await sleep(25);
    }
  }
});

test.after(() => {
  child.kill('SIGKILL');
  fs.rmSync(root, { recursive: true, force: true });
});

test('an ES module worker serves new code after an edit', { timeout: 120000 }, async () => {
  const worker = { adapter: 'cloudflare-worker' };
  assert.equal((await call('esm/worker.js', {}, worker)).body, 'v1 1');
  assert.equal((await call('esm/worker.js', {}, worker)).body, 'v1 2');
  await edit('esm/worker.js', 'export default { fetch() { return new Response("v2 edited"); } };\n');
  assert.equal((await call('esm/worker.js', {}, worker)).body, 'v2 edited');
  await edit('esm/worker.js', 'export default { handler() { return "native " + this.tag; }, tag: "ok" };\n');
  assert.equal((await call('esm/worker.js')).body, 'native ok');
});

test('an `export async function handler` module reloads too; import.meta.url works', { timeout: 120000 }, async () => {
  assert.equal((await call('esm/named.js')).body, '{"v":1}');
  await edit('esm/named.js', 'export async function handler() { return { v: 2 }; }\n');
  assert.equal((await call('esm/named.js')).body, '{"v":2}');
  assert.equal((await call('esm/meta.mjs')).body, 'url');
});

test('a changed private helper is picked up (CommonJS and ES modules)', { timeout: 120000 }, async () => {
  assert.equal((await call('helper/handler.js')).body, 'old');
  assert.equal((await call('helper/esm.js')).body, 'old');
  await edit('helper/_util.js', 'module.exports = { word: "new!" };\n');
  assert.equal((await call('helper/handler.js')).body, 'new!');
  await edit('helper/_esm_util.js', 'export const word = "new too";\n');
  assert.equal((await call('helper/esm.js')).body, 'new too');
});

test('handlers of one folder share their private helper module', async () => {
  assert.equal((await call('shared/put.js', { body: 'a' })).body, '1');
  assert.equal((await call('shared/put.js', { body: 'b' })).body, '2');
  assert.equal((await call('shared/get.js')).body, '["a","b"]');
});

test('TypeScript: type errors are not fatal; enums work; a syntax error names file and line', { timeout: 120000 }, async () => {
  assert.equal((await call('ts/typed.ts')).body, 'ts not a number');
  assert.equal((await call('ts/typeerror.ts')).body, 'a string, though the type says number');
  assert.equal((await call('ts/enum.ts')).body, 'red');
  assert.equal((await call('ts/imports.ts')).body, '4 6');
  const r = await call('ts/broken.ts');
  assert.equal(r.status, 500);
  assert.match(JSON.parse(r.body).error, /^handler failed to load: SyntaxError in ts\/broken\.ts:2:\d+: /);
});

test('fn.env.json is in process.env for its call only, also across awaits and concurrent calls', async () => {
  const [a, b, none] = await Promise.all([
    call('env_a/handler.js', { query: { ms: '150' } }),
    call('env_b/handler.js', { query: { ms: '50' } }),
    call('env_none/handler.js'),
  ]);
  assert.deepEqual(JSON.parse(a.body), { before: 'hello a', after: 'hello a', n: '3', has: true, listed: true, path: 'string' });
  assert.deepEqual(JSON.parse(b.body), { after: 'hello b' });
  assert.deepEqual(JSON.parse(none.body), { g: null, has: false, spread: true });
});

test('an object body with Content-Type text/csv becomes CSV text', async () => {
  const rows = await call('csv/rows.js');
  assert.deepEqual([rows.status, rows.headers, rows.body], [200, { 'Content-Type': 'text/csv' }, 'id,name\n1,"Ada, L."\n2,"say ""hi"""']);
  const arrays = await call('csv/arrays.js');
  assert.deepEqual([arrays.status, arrays.body], [201, 'a,b\n1,']);
  assert.equal((await call('csv/one.js')).body, 'x,y\n1,"{""z"":2}"');
});

test('a handler printing 20 MB keeps its reply; stdout/stderr are bounded', async () => {
  const r = await call('loud.js');
  assert.deepEqual([r.status, r.body], [200, 'ok']);
  assert.equal(r.stdout, `${'x'.repeat(65536)}\u2026[truncated ${20 * 1048577 - 65536} bytes]`);
  assert.equal(r.stderr, `${'e'.repeat(65536)}\u2026[truncated 34464 bytes]`);
});
