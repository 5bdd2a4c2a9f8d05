'use strict';
// Tests of the Node daemon: a real daemon process on a temp Unix socket, spoken to in frames.
// Run: node --test runtimes/node/

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');
const { spawn } = require('child_process');

const DAEMON = path.join(__dirname, 'daemon.js');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fastfn-node-test-'));
const ROOT = path.join(tmp, 'functions');
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function write(rel, text) {
  const file = path.join(ROOT, rel);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text);
  return file;
}

function encode(obj) {
  const body = Buffer.from(typeof obj === 'string' ? obj : JSON.stringify(obj));
  const head = Buffer.alloc(4);
  head.writeUInt32BE(body.length);
  return Buffer.concat([head, body]);
}

/** Sends raw bytes (optionally in pieces), returns the decoded reply frame. */
function exchange(sock, pieces) {
  return new Promise((resolve, reject) => {
    const s = net.createConnection(sock);
    const chunks = [];
    s.on('connect', async () => {
      for (let i = 0; i < pieces.length; i++) {
        if (i > 0) await sleep(20);
        s.write(pieces[i]);
      }
    });
    s.on('data', (d) => chunks.push(d));
    s.on('error', reject);
    s.on('close', () => {
      const buf = Buffer.concat(chunks);
      if (buf.length < 4) return reject(new Error(`short reply (${buf.length} bytes)`));
      const len = buf.readUInt32BE(0);
      assert.equal(buf.length, 4 + len, 'reply frame length matches its bytes');
      resolve(JSON.parse(buf.toString('utf8', 4)));
    });
  });
}

const call = (sock, req) => exchange(sock, [encode(req)]);

function startDaemon(sock, env = {}) {
  const child = spawn(process.execPath, [DAEMON, sock], {
    env: { ...process.env, FN_FUNCTIONS_ROOT: ROOT, ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  child.out = '';
  child.err = '';
  child.stdout.on('data', (d) => { child.out += d; });
  child.stderr.on('data', (d) => { child.err += d; });
  child.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return child;
}

async function waitReady(sock, child) {
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) throw new Error(`daemon exited ${child.exitCode}: ${child.err}`);
    const ok = await new Promise((resolve) => {
      const s = net.createConnection(sock);
      s.on('connect', () => { s.destroy(); resolve(true); });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(25);
  }
  throw new Error('daemon did not become ready');
}

let daemon;
let SOCK;

test.before(async () => {
  fs.mkdirSync(ROOT, { recursive: true });
  write('hello/handler.js', "exports.handler = async (event) => ({ status: 200, headers: { 'X-Hello': 'yes' }, body: 'hello ' + (event.query && event.query.name) });\n");
  write('params/handler.js', 'exports.handler = async (event, params) => ({ id: params.id, same: params === event.params });\n');
  write('oneArg/handler.js', 'exports.handler = function (event) { return { args: arguments.length }; };\n');
  write('shorthand/handler.js', `
exports.handler = async (event) => {
  switch (event.query.kind) {
    case 'object': return { a: 1, nested: { b: [1, 2] } };
    case 'array': return [1, 'two'];
    case 'html': return '  <h1>hi</h1>';
    case 'text': return 'plain words';
    case 'undefined': return undefined;
    case 'null': return null;
    case 'number': return 42;
  }
};\n`);
  write('envelope/handler.js', `
exports.handler = (event) => {
  switch (event.query.kind) {
    case 'statusCode': return { statusCode: 201, headers: { 'X-A': 'b' }, body: 'made' };
    case 'objectBody': return { status: 202, body: { ok: true } };
    case 'objectBodyCt': return { status: 200, headers: { 'content-type': 'application/vnd.x+json' }, body: { ok: 1 } };
    case 'isBase64Encoded': return { statusCode: 200, isBase64Encoded: true, body: 'aGk=' };
    case 'is_base64': return { status: 200, is_base64: true, body: 'aGk=' };
    case 'body_base64': return { status: 203, body_base64: 'AAEC' };
    case 'bufferBody': return { status: 200, headers: { 'Content-Type': 'image/png' }, body: Buffer.from([0, 255]) };
    case 'badStatus': return { status: 'ok' };
    case 'proxy': return { proxy: { path: '/other' } };
    case 'noBody': return { status: 204 };
  }
};\n`);
  write('buffer/handler.js', 'exports.handler = () => Buffer.from([0, 1, 2, 250]);\n');
  write('response/handler.js', `
exports.handler = async (event) => {
  if (event.query.kind === 'binary') return new Response(new Uint8Array([0, 159, 146, 150]), { status: 200, headers: { 'content-type': 'image/png' } });
  const headers = new Headers({ 'content-type': 'application/json', 'x-r': '1' });
  headers.append('set-cookie', 'a=1');
  headers.append('set-cookie', 'b=2');
  return new Response(JSON.stringify({ r: true }), { status: 418, headers });
};\n`);
  write('withenv/handler.js', 'exports.handler = (event) => ({ env: event.env, version: event.version });\n');
  write('withenv/fn.env.json', JSON.stringify({ PLAIN: 'one', SECRET: { value: 'two', is_secret: true } }));
  write('counterA/handler.js', 'let n = 0; const shared = require("../lib/shared.js"); exports.handler = () => ({ n: ++n, shared: ++shared.count });\n');
  write('counterB/handler.js', 'let n = 0; const shared = require("../lib/shared.js"); exports.handler = () => ({ n: ++n, shared: ++shared.count });\n');
  write('lib/shared.js', 'exports.count = 0;\n');
  write('logs/handler.js', `
exports.handler = async (event) => {
  const id = event.query.id;
  console.log('start ' + id);
  await new Promise((r) => setTimeout(r, Number(event.query.wait)));
  process.stdout.write('end ' + id + '\\n');
  console.error('err ' + id);
  return 'ok ' + id;
};\n`);
  write('sometimes/handler.js', `
exports.handler = async (event) => {
  await new Promise((r) => setTimeout(r, Number(event.query.wait)));
  if (event.query.log) console.log('late ' + event.query.log);
  return 'done';
};\n`);
  write('echo/handler.js', 'exports.handler = (event) => ({ n: event.body.length, last: event.body.slice(-3) });\n');
  write('quiet/handler.js', 'exports.handler = () => "quiet";\n');
  write('throws/handler.js', 'exports.handler = async () => { throw new Error("boom here"); };\n');
  write('broken/handler.js', 'exports.handler = async () => { return 1 ;\n');
  write('slow/handler.js', 'exports.handler = async () => { await new Promise((r) => setTimeout(r, 300)); return { done: true }; };\n');
  write('named/handler.js', 'exports.main = () => "from main"; exports.handler = () => "from handler";\n');
  write('whole/handler.js', 'module.exports = (event) => "whole " + event.method;\n');
  write('typed/handler.ts', 'export const handler = (event: any): string => "typed";\n');
  write('versioned/handler.js', 'exports.handler = () => "default version";\n');
  write('versioned/v2/handler.js', 'exports.handler = () => "version two";\n');
  write('indexed/index.js', 'exports.handler = () => "from index";\n');
  write('files/page.js', 'exports.handler = () => "file route";\n');
  write('lam/echo.js', `
exports.handler = async (event, context) => ({
  event,
  context: { awsRequestId: context.awsRequestId, functionName: context.functionName, remaining: context.getRemainingTimeInMillis(), env: context.env, waits: context.callbackWaitsForEmptyEventLoop },
});\n`);
  write('lam/shapes.js', `
exports.handler = async (event) => {
  const kind = event.queryStringParameters.kind;
  switch (kind) {
    case 'full': return { statusCode: 201, headers: { 'X-A': 'b', 'Set-Cookie': 'z=0' }, multiValueHeaders: { 'X-M': ['1', '2'], 'x-a': ['lost'] }, cookies: ['a=1', 'b=2; Path=/'], body: 'made' };
    case 'b64': return { statusCode: 200, headers: { 'content-type': 'image/png' }, isBase64Encoded: true, body: 'AAEC' };
    case 'string': return 'hello';
    case 'nostatus': return { body: 'x', headers: { 'X-A': 'b' } };
    case 'strstatus': return { statusCode: '404' };
    case 'objbody': return { statusCode: 200, body: { ok: true } };
    case 'buffer': return Buffer.from([0, 1, 2]);
    case 'bad': return { statusCode: 99 };
  }
  throw new Error('nope ' + kind);
};\n`);
  write('lam/callback.js', `
exports.handler = (event, context, callback) => {
  if (event.rawPath === '/fail') return setTimeout(() => callback(new Error('cb failed')), 5);
  setTimeout(() => callback(null, { statusCode: 200, body: 'via callback' }), 5);
};\n`);
  write('wk/echo.js', `
module.exports = {
  async fetch(request, env, ctx) {
    const text = await request.clone().text();
    const bytes = Buffer.from(await request.clone().arrayBuffer());
    const data = { method: request.method, url: request.url, headers: Object.fromEntries(request.headers), text, body_b64: bytes.toString('base64'), env, params: ctx.params };
    if (request.headers.get('content-type') === 'application/json') data.json = await request.json();
    return Response.json(data, { status: 202, headers: { 'X-Echo': 'yes' } });
  },
};\n`);
  write('wk/shapes.js', `
exports.default = {
  prefix: 'worker ',
  async fetch(request, env, ctx) {
    const kind = new URL(request.url).searchParams.get('kind');
    switch (kind) {
      case 'cookies': {
        const h = new Headers([['Set-Cookie', 'a=1'], ['set-cookie', 'b=2'], ['X-Many', 'x'], ['x-many', 'y'], ['Content-Type', 'text/html']]);
        return new Response('<p>hi</p>', { status: 418, headers: h });
      }
      case 'binary': return new Response(new Uint8Array([0, 159, 146]), { headers: { 'content-type': 'image/png' } });
      case 'notutf8': return new Response(new Uint8Array([255, 254]));
      case 'text': return new Response('plain');
      case 'empty': return new Response(null, { status: 204 });
      case 'redirect': return Response.redirect('http://h/there', 301);
      case 'string': return 'not a Response';
    }
    throw new Error(this.prefix + kind);
  },
};\n`);
  write('wk/plain.js', 'exports.fetch = (request, env) => new Response(env.K);\n');
  write('wk/esm.js', 'export default { async fetch(request) { return new Response("esm " + request.method); } };\n');
  write('wk/nofetch.js', 'exports.handler = () => "native";\n');
  write('wk/later.js', `
const fs = require('fs');
exports.fetch = (request, env, ctx) => {
  ctx.waitUntil(new Promise((r) => setTimeout(r, 200)).then(() => fs.writeFileSync(env.MARK, 'done')));
  ctx.waitUntil(Promise.reject(new Error('ignored')));
  ctx.waitUntil('not a promise');
  ctx.passThroughOnException();
  return new Response('replied');
};\n`);
  fs.mkdirSync(path.join(tmp, 'outside'), { recursive: true });
  fs.writeFileSync(path.join(tmp, 'outside', 'handler.js'), 'exports.handler = () => "escaped";\n');
  fs.symlinkSync(path.join(tmp, 'outside'), path.join(ROOT, 'linkout'));

  SOCK = path.join(tmp, 'fn-node.sock');
  daemon = startDaemon(SOCK);
  await waitReady(SOCK, daemon);
});

test.after(async () => {
  if (daemon && daemon.exitCode === null) {
    daemon.stdin.end();
    await daemon.exited;
  }
  fs.rmSync(tmp, { recursive: true, force: true });
});

const ev = (query = {}, extra = {}) => ({ method: 'GET', path: '/x', query, params: {}, headers: {}, ...extra });

test('hello: status, headers and body from an envelope', async () => {
  const r = await call(SOCK, { fn: 'hello', event: ev({ name: 'ana' }) });
  assert.deepEqual(r, { status: 200, headers: { 'X-Hello': 'yes' }, body: 'hello ana' });
});

test('entry wins over fn; handler name and module.exports = fn', async () => {
  assert.equal((await call(SOCK, { fn: 'nope', entry: 'hello/handler.js', event: ev({ name: 'e' }) })).body, 'hello e');
  assert.equal((await call(SOCK, { entry: 'named/handler.js', handler: 'main', event: ev() })).body, 'from main');
  assert.equal((await call(SOCK, { entry: 'named/handler.js', event: ev() })).body, 'from handler');
  assert.equal((await call(SOCK, { entry: 'whole/handler.js', event: ev({}, { method: 'POST' }) })).body, 'whole POST');
  const missing = await call(SOCK, { entry: 'named/handler.js', handler: 'nothing', event: ev() });
  assert.equal(missing.status, 500);
  assert.deepEqual(JSON.parse(missing.body), { error: "handler 'nothing' is not exported" });
});

test('resolution: fn as a file, fn_source_dir + version, index.js', async () => {
  assert.equal((await call(SOCK, { fn: 'files/page.js', event: ev() })).body, 'file route');
  assert.equal((await call(SOCK, { fn: 'versioned', fn_source_dir: 'versioned', event: ev() })).body, 'default version');
  assert.equal((await call(SOCK, { fn: 'versioned', fn_source_dir: 'versioned', version: 'v2', event: ev() })).body, 'version two');
  assert.equal((await call(SOCK, { fn: 'indexed', event: ev() })).body, 'from index');
});

test('params are the 2nd argument only when the handler declares two', async () => {
  const r = await call(SOCK, { fn: 'params', event: ev({}, { params: { id: '7' } }) });
  assert.deepEqual(JSON.parse(r.body), { id: '7', same: true });
  const one = await call(SOCK, { fn: 'oneArg', event: ev({}, { params: { id: '7' } }) });
  assert.deepEqual(JSON.parse(one.body), { args: 1 });
});

test('shorthand returns', async () => {
  const json = { 'Content-Type': 'application/json' };
  const get = (kind) => call(SOCK, { fn: 'shorthand', event: ev({ kind }) });
  assert.deepEqual(await get('object'), { status: 200, headers: json, body: '{"a":1,"nested":{"b":[1,2]}}' });
  assert.deepEqual(await get('array'), { status: 200, headers: json, body: '[1,"two"]' });
  assert.deepEqual(await get('html'), { status: 200, headers: { 'Content-Type': 'text/html; charset=utf-8' }, body: '  <h1>hi</h1>' });
  assert.deepEqual(await get('text'), { status: 200, headers: { 'Content-Type': 'text/plain; charset=utf-8' }, body: 'plain words' });
  assert.deepEqual(await get('undefined'), { status: 200, headers: {}, body: '' });
  assert.deepEqual(await get('null'), { status: 200, headers: {}, body: '' });
  assert.deepEqual(await get('number'), { status: 200, headers: json, body: '42' });
});

test('envelope keys and aliases', async () => {
  const get = (kind) => call(SOCK, { fn: 'envelope', event: ev({ kind }) });
  assert.deepEqual(await get('statusCode'), { status: 201, headers: { 'X-A': 'b' }, body: 'made' });
  assert.deepEqual(await get('objectBody'), { status: 202, headers: { 'Content-Type': 'application/json' }, body: '{"ok":true}' });
  assert.deepEqual(await get('objectBodyCt'), { status: 200, headers: { 'content-type': 'application/vnd.x+json' }, body: '{"ok":1}' });
  assert.deepEqual(await get('isBase64Encoded'), { status: 200, headers: {}, is_base64: true, body_base64: 'aGk=' });
  assert.deepEqual(await get('is_base64'), { status: 200, headers: {}, is_base64: true, body_base64: 'aGk=' });
  assert.deepEqual(await get('body_base64'), { status: 203, headers: {}, is_base64: true, body_base64: 'AAEC' });
  assert.deepEqual(await get('bufferBody'), { status: 200, headers: { 'Content-Type': 'image/png' }, is_base64: true, body_base64: 'AP8=' });
  assert.deepEqual(await get('proxy'), { status: 200, headers: {}, proxy: { path: '/other' }, body: '' });
  assert.deepEqual(await get('noBody'), { status: 204, headers: {}, body: '' });
  const bad = await get('badStatus');
  assert.equal(bad.status, 500);
  assert.deepEqual(JSON.parse(bad.body), { error: 'invalid handler response: status must be an integer 100..599, got "ok"' });
});

test('Buffer return is a base64 reply', async () => {
  const r = await call(SOCK, { fn: 'buffer', event: ev() });
  assert.deepEqual(r, { status: 200, headers: { 'Content-Type': 'application/octet-stream' }, is_base64: true, body_base64: Buffer.from([0, 1, 2, 250]).toString('base64') });
});

test('a WHATWG Response: status, headers, cookies, text and binary bodies', async () => {
  const r = await call(SOCK, { fn: 'response', event: ev({ kind: 'text' }) });
  assert.deepEqual(r, { status: 418, headers: { 'content-type': 'application/json', 'x-r': '1', 'set-cookie': ['a=1', 'b=2'] }, body: '{"r":true}' });
  const b = await call(SOCK, { fn: 'response', event: ev({ kind: 'binary' }) });
  assert.deepEqual(b, { status: 200, headers: { 'content-type': 'image/png' }, is_base64: true, body_base64: Buffer.from([0, 159, 146, 150]).toString('base64') });
});

test('fn.env.json is merged into event.env (both forms) and follows changes; event.version is set', async () => {
  const r = await call(SOCK, { fn: 'withenv', event: ev() });
  assert.deepEqual(JSON.parse(r.body), { env: { PLAIN: 'one', SECRET: 'two' }, version: 'default' });
  write('withenv/fn.env.json', JSON.stringify({ PLAIN: 'changed!' }));
  const r2 = await call(SOCK, { fn: 'withenv', version: 'v9', entry: 'withenv/handler.js', event: ev() });
  assert.deepEqual(JSON.parse(r2.body), { env: { PLAIN: 'changed!' }, version: 'v9' });
});

test('module state is kept per function and never shared between functions', async () => {
  const a = async () => JSON.parse((await call(SOCK, { fn: 'counterA', event: ev() })).body);
  const b = async () => JSON.parse((await call(SOCK, { fn: 'counterB', event: ev() })).body);
  assert.deepEqual(await a(), { n: 1, shared: 1 });
  assert.deepEqual(await a(), { n: 2, shared: 2 });
  assert.deepEqual(await b(), { n: 1, shared: 1 }, 'B has its own module state and its own copy of lib/shared.js');
  assert.deepEqual(await a(), { n: 3, shared: 3 });
});

test('a changed handler file runs new code on the next call, with fresh module state', async () => {
  write('changing/handler.js', 'let n = 0; exports.handler = () => "v1 " + (++n);\n');
  assert.equal((await call(SOCK, { fn: 'changing', event: ev() })).body, 'v1 1');
  assert.equal((await call(SOCK, { fn: 'changing', event: ev() })).body, 'v1 2');
  write('changing/handler.js', 'let n = 0; exports.handler = () => "v2 changed " + (++n);\n');
  assert.equal((await call(SOCK, { fn: 'changing', event: ev() })).body, 'v2 changed 1');
});

test('a folder replaced by a new one is watched again', async () => {
  write('replaced/handler.js', 'exports.handler = () => "r1";\n');
  assert.equal((await call(SOCK, { fn: 'replaced', event: ev() })).body, 'r1');
  fs.rmSync(path.join(ROOT, 'replaced'), { recursive: true });
  write('replaced/handler.js', 'exports.handler = () => "r2";\n');
  assert.equal((await call(SOCK, { fn: 'replaced', event: ev() })).body, 'r2');
  write('replaced/handler.js', 'exports.handler = () => "r3";\n');
  assert.equal((await call(SOCK, { fn: 'replaced', event: ev() })).body, 'r3');
  fs.rmSync(path.join(ROOT, 'replaced'), { recursive: true });
  assert.equal((await call(SOCK, { fn: 'replaced', event: ev() })).status, 404);
});

test('stdout/stderr are captured per call and not mixed between concurrent calls', async () => {
  const [a, b] = await Promise.all([
    call(SOCK, { fn: 'logs', event: ev({ id: 'A', wait: '120' }) }),
    call(SOCK, { fn: 'logs', event: ev({ id: 'B', wait: '30' }) }),
  ]);
  assert.deepEqual(a, { status: 200, headers: { 'Content-Type': 'text/plain; charset=utf-8' }, body: 'ok A', stdout: 'start A\nend A\n', stderr: 'err A\n' });
  assert.deepEqual(b, { status: 200, headers: { 'Content-Type': 'text/plain; charset=utf-8' }, body: 'ok B', stdout: 'start B\nend B\n', stderr: 'err B\n' });
  const quiet = await call(SOCK, { fn: 'quiet', event: ev() });
  assert.equal('stdout' in quiet, false);
  assert.equal('stderr' in quiet, false);
  assert.equal(daemon.out, '', 'the daemon wrote nothing to its own stdout');
});

test('a quiet function that starts writing from async code loses that one write, then is captured', async () => {
  const call1 = await call(SOCK, { fn: 'sometimes', event: ev({ wait: '5' }) });
  assert.equal('stdout' in call1, false);
  const before = daemon.out;
  const unattributed = await call(SOCK, { fn: 'sometimes', event: ev({ wait: '5', log: 'X' }) });
  assert.equal('stdout' in unattributed, false, 'ran outside ALS: the write is not guessed into a reply');
  for (let i = 0; i < 50 && daemon.out.length === before.length; i++) await sleep(20); // pipe vs socket order
  assert.equal(daemon.out.slice(before.length), 'late X\n', 'it went to the daemon stream instead');
  const [a, b] = await Promise.all([
    call(SOCK, { fn: 'sometimes', event: ev({ wait: '80', log: 'A' }) }),
    call(SOCK, { fn: 'sometimes', event: ev({ wait: '20', log: 'B' }) }),
  ]);
  assert.equal(a.stdout, 'late A\n');
  assert.equal(b.stdout, 'late B\n');
});

test('a thrown error is a 500 with a JSON error body and the stack in stderr', async () => {
  const r = await call(SOCK, { fn: 'throws', event: ev() });
  assert.equal(r.status, 500);
  assert.deepEqual(r.headers, { 'Content-Type': 'application/json' });
  assert.deepEqual(JSON.parse(r.body), { error: 'boom here' });
  assert.match(r.stderr, /^Error: boom here\n\s+at /);
});

test('a syntax error is a 500 with a clear message; other functions keep working', async () => {
  const r = await call(SOCK, { fn: 'broken', event: ev() });
  assert.equal(r.status, 500);
  assert.deepEqual(JSON.parse(r.body), { error: 'handler failed to load: SyntaxError: Unexpected end of input' });
  assert.equal((await call(SOCK, { fn: 'hello', event: ev({ name: 'still' }) })).body, 'hello still');
  write('broken/handler.js', 'exports.handler = () => "fixed";\n');
  assert.equal((await call(SOCK, { fn: 'broken', event: ev() })).body, 'fixed');
});

test('TypeScript handler: runs (built-in type stripping, else esbuild)', { timeout: 120000 }, async () => {
  const r = await call(SOCK, { fn: 'typed', event: ev() });
  assert.equal(r.body, 'typed');
});

test('an unknown adapter answers 500; native and absent take the native path', async () => {
  for (const adapter of ['azure', 7]) {
    const r = await call(SOCK, { fn: 'hello', adapter, event: ev() });
    assert.deepEqual(r, { status: 500, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ error: `unknown adapter: ${adapter} (want native, aws-lambda or cloudflare-worker)` }) });
  }
  assert.equal((await call(SOCK, { fn: 'hello', adapter: 'native', event: ev({ name: 'n' }) })).body, 'hello n');
  assert.equal((await call(SOCK, { fn: 'hello', adapter: null, event: ev({ name: 'm' }) })).body, 'hello m');
});

const LAMBDA_EVENT = {
  id: 'req-1700000000123-42-000007', ts: 1700000000123, method: 'POST',
  path: '/items/7', raw_path: '/items/7?a=1&a=2&flag&q=hi%21',
  query: { a: ['1', '2'], flag: true, q: 'hi!' },
  params: { id: '7' }, path_params: { id: '7' },
  headers: { host: 'example.test:8080', 'x-many': ['a', 'b'], cookie: 'theme=dark; sid=abc', 'user-agent': 'curl/8', 'content-type': 'application/json' },
  body: '{"x":1}', session: null,
  client: { ip: '10.0.0.9', ua: 'curl/8' },
  context: { request_id: 'req-1700000000123-42-000007', function_name: 'lam/echo.js', timeout_ms: 2500 },
  env: { K: 'v' },
};
const lambdaEv = (extra = {}) => ({ ...structuredClone(LAMBDA_EVENT), ...extra });
const shapeEv = (kind) => lambdaEv({ query: { kind }, raw_path: `/shapes?kind=${kind}` });
const errorOf = (r) => {
  assert.deepEqual(r.headers, { 'Content-Type': 'application/json' });
  return [r.status, JSON.parse(r.body).error];
};

test('aws-lambda: the v2 event and the context', async () => {
  const r = await call(SOCK, { fn: 'lam/echo.js', adapter: 'aws-lambda', event: lambdaEv() });
  assert.deepEqual([r.status, r.headers], [200, { 'Content-Type': 'application/json' }]);
  const got = JSON.parse(r.body);
  assert.deepEqual(got.event, {
    version: '2.0',
    routeKey: '$default',
    rawPath: '/items/7',
    rawQueryString: 'a=1&a=2&flag&q=hi%21',
    cookies: ['theme=dark', 'sid=abc'],
    headers: { host: 'example.test:8080', 'x-many': 'a,b', 'user-agent': 'curl/8', 'content-type': 'application/json' },
    queryStringParameters: { a: '1,2', flag: '', q: 'hi!' },
    pathParameters: { id: '7' },
    requestContext: {
      accountId: 'anonymous', apiId: 'fastfn', domainName: 'example.test:8080', domainPrefix: 'example',
      http: { method: 'POST', path: '/items/7', protocol: 'HTTP/1.1', sourceIp: '10.0.0.9', userAgent: 'curl/8' },
      requestId: 'req-1700000000123-42-000007', routeKey: '$default', stage: '$default',
      time: '14/Nov/2023:22:13:20 +0000', timeEpoch: 1700000000123,
    },
    body: '{"x":1}',
    isBase64Encoded: false,
  });
  assert.deepEqual(got.context, { awsRequestId: 'req-1700000000123-42-000007', functionName: 'lam/echo.js', remaining: 0, env: { K: 'v' }, waits: true });
});

test('aws-lambda: remaining time, a minimal event, a binary body, aliases', async () => {
  const minimal = { ts: Date.now(), method: 'GET', path: '/p', raw_path: '/p', query: {}, params: {}, headers: {}, context: { request_id: 'r1', function_name: 'f', timeout_ms: 5000 } };
  const got = JSON.parse((await call(SOCK, { fn: 'lam/echo.js', adapter: 'lambda', event: minimal })).body);
  assert.ok(got.context.remaining > 4000 && got.context.remaining <= 5000, String(got.context.remaining));
  assert.deepEqual(Object.keys(got.event).sort(), ['headers', 'isBase64Encoded', 'rawPath', 'rawQueryString', 'requestContext', 'routeKey', 'version']);
  assert.deepEqual([got.event.rawQueryString, got.event.headers, got.event.requestContext.domainName], ['', {}, 'localhost']);
  const bin = lambdaEv({ body: '\ufffd\u0000', body_base64: Buffer.from([255, 0]).toString('base64') });
  for (const adapter of ['apigw-v2', 'api-gateway-v2']) {
    const e = JSON.parse((await call(SOCK, { fn: 'lam/echo.js', adapter, event: bin })).body).event;
    assert.deepEqual([e.body, e.isBase64Encoded], ['/wA=', true]);
  }
});

test('aws-lambda: reply mapping', async () => {
  const shape = (kind) => call(SOCK, { fn: 'lam/shapes.js', adapter: 'aws-lambda', event: shapeEv(kind) });
  assert.deepEqual(await shape('full'), { status: 201, headers: { 'X-M': ['1', '2'], 'X-A': 'b', 'Set-Cookie': ['z=0', 'a=1', 'b=2; Path=/'] }, body: 'made' });
  assert.deepEqual(await shape('b64'), { status: 200, headers: { 'content-type': 'image/png' }, is_base64: true, body_base64: 'AAEC' });
  assert.deepEqual(await shape('string'), { status: 200, headers: { 'Content-Type': 'text/plain; charset=utf-8' }, body: 'hello' });
  assert.deepEqual(await shape('nostatus'), { status: 200, headers: { 'Content-Type': 'application/json' }, body: '{"body":"x","headers":{"X-A":"b"}}' });
  assert.deepEqual(await shape('strstatus'), { status: 404, headers: {}, body: '' });
  assert.deepEqual(await shape('objbody'), { status: 200, headers: { 'Content-Type': 'application/json' }, body: '{"ok":true}' });
  assert.deepEqual(await shape('buffer'), { status: 200, headers: { 'Content-Type': 'application/octet-stream' }, is_base64: true, body_base64: 'AAEC' });
  assert.deepEqual(errorOf(await shape('bad')), [500, 'invalid handler response: status must be an integer 100..599, got 99']);
  const boom = await shape('boom');
  assert.deepEqual(errorOf(boom), [500, 'nope boom']);
  assert.match(boom.stderr, /Error: nope boom/);
});

test('aws-lambda: callback-style handlers', async () => {
  const ok = await call(SOCK, { fn: 'lam/callback.js', adapter: 'aws-lambda', event: lambdaEv() });
  assert.deepEqual(ok, { status: 200, headers: {}, body: 'via callback' });
  const failed = await call(SOCK, { fn: 'lam/callback.js', adapter: 'aws-lambda', event: lambdaEv({ path: '/fail', raw_path: '/fail' }) });
  assert.deepEqual(errorOf(failed), [500, 'cb failed']);
});

test('cloudflare-worker: the Request, env and ctx.params; Response.json', async () => {
  const r = await call(SOCK, { fn: 'wk/echo.js', adapter: 'cloudflare-worker', event: lambdaEv() });
  assert.deepEqual([r.status, r.headers], [202, { 'content-type': 'application/json', 'x-echo': 'yes' }]);
  assert.deepEqual(JSON.parse(r.body), {
    method: 'POST', url: 'http://example.test:8080/items/7?a=1&a=2&flag&q=hi%21',
    headers: { host: 'example.test:8080', 'x-many': 'a, b', cookie: 'theme=dark; sid=abc', 'user-agent': 'curl/8', 'content-type': 'application/json' },
    text: '{"x":1}', body_b64: Buffer.from('{"x":1}').toString('base64'), json: { x: 1 },
    env: { K: 'v' }, params: { id: '7' },
  });
});

test('cloudflare-worker: a binary request body, no body, no host; aliases', async () => {
  const bin = lambdaEv({ body: '\ufffd\u0000', body_base64: Buffer.from([255, 0]).toString('base64'), headers: { 'content-type': 'application/octet-stream' } });
  const got = JSON.parse((await call(SOCK, { fn: 'wk/echo.js', adapter: 'worker', event: bin })).body);
  assert.deepEqual([got.url, got.body_b64], ['http://localhost/items/7?a=1&a=2&flag&q=hi%21', '/wA=']);
  const bare = { method: 'GET', path: '/', raw_path: '/', headers: { host: 'h' } };
  const g = JSON.parse((await call(SOCK, { fn: 'wk/echo.js', adapter: 'workers', event: bare })).body);
  assert.deepEqual([g.method, g.url, g.text, g.body_b64, g.env, g.params], ['GET', 'http://h/', '', '', {}, {}]);
});

test('cloudflare-worker: reply mapping', async () => {
  const shape = (kind) => call(SOCK, { fn: 'wk/shapes.js', adapter: 'cloudflare-worker', event: shapeEv(kind) });
  assert.deepEqual(await shape('cookies'), { status: 418, headers: { 'set-cookie': ['a=1', 'b=2'], 'x-many': 'x, y', 'content-type': 'text/html' }, body: '<p>hi</p>' });
  assert.deepEqual(await shape('binary'), { status: 200, headers: { 'content-type': 'image/png' }, is_base64: true, body_base64: 'AJ+S' });
  assert.deepEqual(await shape('notutf8'), { status: 200, headers: {}, is_base64: true, body_base64: '//4=' });
  assert.deepEqual(await shape('text'), { status: 200, headers: { 'content-type': 'text/plain;charset=UTF-8' }, body: 'plain' });
  assert.deepEqual(await shape('empty'), { status: 204, headers: {}, body: '' });
  assert.deepEqual(await shape('redirect'), { status: 301, headers: { location: 'http://h/there' }, body: '' });
  assert.deepEqual(await shape('string'), { status: 200, headers: { 'Content-Type': 'text/plain; charset=utf-8' }, body: 'not a Response' });
  const boom = await shape('boom');
  assert.deepEqual(errorOf(boom), [500, 'worker boom']);
  assert.match(boom.stderr, /Error: worker boom/);
});

test('cloudflare-worker: exports.fetch, ESM default export, missing fetch', async () => {
  const ev2 = { method: 'PUT', path: '/', raw_path: '/', headers: {}, env: { K: 'two' } };
  assert.equal((await call(SOCK, { fn: 'wk/plain.js', adapter: 'worker', event: ev2 })).body, 'two');
  if (process.features.require_module) {
    assert.equal((await call(SOCK, { fn: 'wk/esm.js', adapter: 'worker', event: ev2 })).body, 'esm PUT');
  }
  assert.deepEqual(errorOf(await call(SOCK, { fn: 'wk/nofetch.js', adapter: 'worker', event: ev2 })), [500, 'worker module exports no fetch(request, env, ctx): use export default { fetch } or module.exports = { fetch }']);
  assert.equal((await call(SOCK, { fn: 'wk/nofetch.js', event: ev2 })).body, 'native');
  assert.deepEqual(errorOf(await call(SOCK, { fn: 'wk/plain.js', adapter: 'worker', handler: 'other', event: ev2 })), [500, 'worker module exports no other(request, env, ctx): use export default { other } or module.exports = { other }']);
});

test('cloudflare-worker: ctx.waitUntil runs on after the reply', async () => {
  const mark = path.join(tmp, 'later.mark');
  const r = await call(SOCK, { fn: 'wk/later.js', adapter: 'worker', event: { method: 'GET', path: '/', raw_path: '/', headers: {}, env: { MARK: mark } } });
  assert.deepEqual([r.status, r.body], [200, 'replied']);
  assert.equal(fs.existsSync(mark), false);
  for (let i = 0; i < 250 && !fs.existsSync(mark); i++) await sleep(20);
  assert.equal(fs.readFileSync(mark, 'utf8'), 'done');
  assert.equal(daemon.exitCode, null, 'a rejected waitUntil promise does not take the daemon down');
});

test('bad frame length answers 400', async () => {
  const expected = { status: 400, headers: { 'Content-Type': 'application/json' }, body: '{"error":"invalid frame length"}' };
  assert.deepEqual(await exchange(SOCK, [Buffer.from([0, 0, 0, 0])]), expected);
  const huge = Buffer.alloc(4);
  huge.writeUInt32BE(2 * 1024 * 1024 + 1);
  assert.deepEqual(await exchange(SOCK, [huge]), expected);
});

test('a frame split into several chunks is read whole', async () => {
  const buf = encode({ fn: 'hello', event: ev({ name: 'chunks' }) });
  const r = await exchange(SOCK, [buf.subarray(0, 2), buf.subarray(2, 9), buf.subarray(9)]);
  assert.equal(r.body, 'hello chunks');
});

test('a request near the frame limit, sent in many chunks, is served', async () => {
  const body = 'x'.repeat(2 * 1024 * 1024 - 200) + 'end';
  const buf = encode({ fn: 'echo', event: ev({}, { body }) });
  assert.ok(buf.length - 4 <= 2 * 1024 * 1024);
  const pieces = [];
  for (let i = 0; i < buf.length; i += 256 * 1024) pieces.push(buf.subarray(i, i + 256 * 1024));
  const r = await exchange(SOCK, pieces);
  assert.deepEqual(JSON.parse(r.body), { n: body.length, last: 'end' });
});

test('bad JSON answers 400', async () => {
  const expected = { status: 400, headers: { 'Content-Type': 'application/json' }, body: '{"error":"invalid json request"}' };
  assert.deepEqual(await call(SOCK, '{"fn": '), expected);
  assert.deepEqual(await call(SOCK, '[1,2]'), expected);
});

test('unknown function and traversal answer 404', async () => {
  const notFound = { status: 404, headers: { 'Content-Type': 'application/json' }, body: '{"error":"unknown function"}' };
  assert.deepEqual(await call(SOCK, { fn: 'nope', event: ev() }), notFound);
  assert.deepEqual(await call(SOCK, { entry: '../outside/handler.js', event: ev() }), notFound);
  assert.deepEqual(await call(SOCK, { entry: 'hello/../../outside/handler.js', event: ev() }), notFound);
  assert.deepEqual(await call(SOCK, { entry: path.join(tmp, 'outside', 'handler.js'), event: ev() }), notFound);
  assert.deepEqual(await call(SOCK, { entry: 'linkout/handler.js', event: ev() }), notFound, 'symlink out of the root');
  assert.deepEqual(await call(SOCK, { fn: 'linkout', event: ev() }), notFound);
  assert.deepEqual(await call(SOCK, { fn: '../outside', event: ev() }), notFound);
  assert.deepEqual(await call(SOCK, { entry: 'withenv/fn.env.json', event: ev() }), notFound, 'only handler files load');
});

test('10 concurrent calls awaiting a 300 ms timer finish together', async () => {
  const t0 = Date.now();
  const replies = await Promise.all(Array.from({ length: 10 }, () => call(SOCK, { fn: 'slow', event: ev() })));
  const took = Date.now() - t0;
  for (const r of replies) assert.equal(r.body, '{"done":true}');
  assert.ok(took >= 300 && took < 600, `took ${took} ms`);
});

test('socket is mode 0600', () => {
  assert.equal(fs.statSync(SOCK).mode & 0o777, 0o600);
});

test('stdin EOF: the daemon exits within 1 s and removes its socket', async () => {
  const sock = path.join(tmp, 'eof.sock');
  const child = startDaemon(sock);
  await waitReady(sock, child);
  const t0 = Date.now();
  child.stdin.end();
  const { code } = await child.exited;
  assert.ok(Date.now() - t0 < 1000, `exit took ${Date.now() - t0} ms`);
  assert.equal(code, 0);
  assert.equal(fs.existsSync(sock), false);
});

test('SIGTERM: clean exit', async () => {
  const sock = path.join(tmp, 'term.sock');
  const child = startDaemon(sock);
  await waitReady(sock, child);
  child.kill('SIGTERM');
  assert.deepEqual(await child.exited, { code: 0, signal: null });
  assert.equal(fs.existsSync(sock), false);
});

test('a stale socket is removed; a live one is refused', async () => {
  const sock = path.join(tmp, 'stale.sock');
  // A socket file whose owner died without removing it.
  const owner = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(sock)}, () => process.kill(process.pid, 'SIGKILL'))`]);
  await new Promise((resolve) => owner.on('exit', resolve));
  assert.equal(fs.lstatSync(sock).isSocket(), true);
  const child = startDaemon(sock);
  await waitReady(sock, child);
  assert.equal((await call(sock, { fn: 'hello', event: ev({ name: 's' }) })).body, 'hello s');

  const second = startDaemon(sock);
  const { code } = await second.exited;
  assert.equal(code, 1);
  assert.equal(second.err, `fastfn node daemon: a live daemon already answers on ${sock}\n`);
  assert.equal((await call(sock, { fn: 'hello', event: ev({ name: 'alive' }) })).body, 'hello alive', 'the first daemon still serves');
  child.stdin.end();
  await child.exited;
});
