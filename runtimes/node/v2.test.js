'use strict';
// Protocol v2 (docs/protocol.md) on a real Node daemon: hello, multiplexed calls on one
// connection, raw bodies, limits, protocol errors, cancel, stdin EOF.
// Run: node --test runtimes/node/

const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('crypto');
const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');
const { spawn } = require('child_process');

const DAEMON = path.join(__dirname, 'daemon.js');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fastfn-node-v2-'));
const ROOT = path.join(tmp, 'functions');
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function write(rel, text) {
  const file = path.join(ROOT, rel);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text);
}

function v1Frame(obj) {
  const body = Buffer.from(JSON.stringify(obj));
  const head = Buffer.alloc(4);
  head.writeUInt32BE(body.length);
  return Buffer.concat([head, body]);
}

/** A v2 frame; `meta` an object, a string (sent as is) or null (no meta). */
function v2Frame(id, kind, meta, body = Buffer.alloc(0)) {
  const m = Buffer.from(meta === null ? '' : typeof meta === 'string' ? meta : JSON.stringify(meta));
  const head = Buffer.alloc(13);
  head.writeUInt32BE(9 + m.length + body.length, 0);
  head.writeUInt32BE(id, 4);
  head[8] = kind;
  head.writeUInt32BE(m.length, 9);
  return Buffer.concat([head, m, body]);
}

/** One v1 exchange (connect, frame, reply, close). */
function v1Call(sock, req) {
  return new Promise((resolve, reject) => {
    const s = net.createConnection(sock);
    const chunks = [];
    s.on('connect', () => s.write(v1Frame(req)));
    s.on('data', (d) => chunks.push(d));
    s.on('error', reject);
    s.on('close', () => {
      const buf = Buffer.concat(chunks);
      resolve(JSON.parse(buf.toString('utf8', 4)));
    });
  });
}

/** A v2 client: hello on open, then calls by id; `order` lists reply ids as they arrive. */
class Client {
  static open(sock, extra = null) {
    return new Promise((resolve, reject) => {
      const c = new Client();
      c.s = net.createConnection(sock);
      c.s.on('error', reject);
      c.s.on('connect', () => c.s.write(extra === null ? v1Frame({ fastfn_hello: 2 }) : Buffer.concat([v1Frame({ fastfn_hello: 2 }), extra])));
      c.s.on('data', (d) => c.onData(d, resolve));
      c.s.on('close', () => { c.isClosed = true; c.closeWaiters.forEach((f) => f()); });
    });
  }

  constructor() {
    this.buf = Buffer.alloc(0);
    this.hello = null;
    this.waiting = new Map();
    this.order = [];
    this.replies = new Map();
    this.nextId = 1;
    this.isClosed = false;
    this.closeWaiters = [];
  }

  onData(d, opened) {
    this.buf = Buffer.concat([this.buf, d]);
    if (this.hello === null) {
      if (this.buf.length < 4 || this.buf.length < 4 + this.buf.readUInt32BE(0)) return;
      const n = this.buf.readUInt32BE(0);
      this.hello = JSON.parse(this.buf.toString('utf8', 4, 4 + n));
      this.buf = this.buf.subarray(4 + n);
      opened(this);
    }
    while (this.buf.length >= 4 && this.buf.length >= 4 + this.buf.readUInt32BE(0)) {
      const len = this.buf.readUInt32BE(0);
      const id = this.buf.readUInt32BE(4);
      assert.equal(this.buf[8], 2, 'a reply frame');
      const metaLen = this.buf.readUInt32BE(9);
      const reply = { id, meta: JSON.parse(this.buf.toString('utf8', 13, 13 + metaLen)), body: Buffer.from(this.buf.subarray(13 + metaLen, 4 + len)) };
      this.buf = this.buf.subarray(4 + len);
      this.order.push(id);
      this.replies.set(id, reply);
      const w = this.waiting.get(id);
      if (w) { this.waiting.delete(id); w(reply); }
    }
  }

  reply(id) {
    if (this.replies.has(id)) return Promise.resolve(this.replies.get(id));
    return new Promise((resolve) => this.waiting.set(id, resolve));
  }

  send(buf) { this.s.write(buf); }

  call(meta, body) {
    const id = this.nextId++;
    this.send(v2Frame(id, 1, meta, body));
    return this.reply(id);
  }

  closed() {
    return this.isClosed ? Promise.resolve() : new Promise((resolve) => this.closeWaiters.push(resolve));
  }

  end() { this.s.destroy(); }
}

function startDaemon(sock, env = {}) {
  const child = spawn(process.execPath, [DAEMON, sock], {
    env: { ...process.env, FN_FUNCTIONS_ROOT: ROOT, FN_DAEMON_PROTOCOL: '2', ...env },
    stdio: ['pipe', 'inherit', 'inherit'],
  });
  child.exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  return child;
}

async function waitReady(sock) {
  for (let i = 0; i < 200; i++) {
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

const ev = (query = {}, extra = {}) => ({ method: 'POST', path: '/x', raw_path: '/x', query, headers: {}, params: {}, ...extra });
const req = (fn, query, extra) => ({ fn, handler: 'handler', adapter: 'native', event: ev(query, extra) });

let daemon;
let SOCK;
let small;
let SMALL;

test.before(async () => {
  write('hello/handler.js', "exports.handler = (event) => 'hello ' + event.query.name;\n");
  write('wait/handler.js', "exports.handler = async (event) => { await new Promise((r) => setTimeout(r, Number(event.query.ms))); return { ms: event.query.ms }; };\n");
  write('echo/handler.js', "exports.handler = (event) => ({ id: event.query.i, text: event.body === undefined ? null : event.body, b64: event.body_base64 === undefined ? null : event.body_base64 });\n");
  write('digest/handler.js', `const crypto = require('crypto');
const h = (v) => v === undefined ? null : crypto.createHash('sha256').update(v).digest('hex');
exports.handler = (event) => ({ text: h(event.body), n: event.body.length, b64: h(event.body_base64) });\n`);
  write('bin/handler.js', 'exports.handler = () => Buffer.from([0, 1, 2, 250]);\n');
  SOCK = path.join(tmp, 'v2.sock');
  daemon = startDaemon(SOCK, { FN_MAX_FRAME_BYTES: String(8 * 1024 * 1024) });
  SMALL = path.join(tmp, 'small.sock');
  small = startDaemon(SMALL, { FN_MAX_FRAME_BYTES: String(64 * 1024) });
  await waitReady(SOCK);
  await waitReady(SMALL);
});

test.after(async () => {
  for (const d of [daemon, small]) {
    if (d.exitCode === null) {
      d.stdin.end();
      const t = setTimeout(() => d.kill('SIGKILL'), 3000); // never leave a broken daemon behind
      await d.exited;
      clearTimeout(t);
    }
  }
  fs.rmSync(tmp, { recursive: true, force: true });
});

test('v2: hello answer, then calls; v1 still served by the same daemon', { timeout: 15000 }, async () => {
  const c = await Client.open(SOCK);
  assert.deepEqual(c.hello, { fastfn_hello: 2, runtime: 'node', pid: daemon.pid });
  const r = await c.call(req('hello', { name: 'v2' }));
  assert.equal(r.meta.status, 200);
  assert.equal(r.meta.body, 'hello v2');
  const r2 = await c.call(req('hello', { name: 'again' }));
  assert.equal(r2.meta.body, 'hello again', 'the connection stays open for more calls');
  c.end();
  assert.equal((await v1Call(SOCK, req('hello', { name: 'v1' }))).body, 'hello v1');
});

test('v2: calls sent right behind the hello, and a call split into pieces', { timeout: 15000 }, async () => {
  const c = await Client.open(SOCK, v2Frame(7, 1, req('hello', { name: 'early' })));
  assert.equal((await c.reply(7)).meta.body, 'hello early');
  const f = v2Frame(8, 1, req('hello', { name: 'pieces' }));
  for (let i = 0; i < f.length; i += 5) {
    c.send(f.subarray(i, i + 5));
    await sleep(2);
  }
  assert.equal((await c.reply(8)).meta.body, 'hello pieces');
  c.end();
});

test('v2: a slow call does not hold back a fast one behind it on the same connection', { timeout: 15000 }, async () => {
  const c = await Client.open(SOCK);
  const slow = c.call(req('wait', { ms: '300' }));
  const fast = c.call(req('hello', { name: 'fast' }));
  const t0 = Date.now();
  assert.equal((await fast).meta.body, 'hello fast');
  assert.ok(Date.now() - t0 < 200, 'the fast reply does not wait for the slow one');
  assert.equal((await slow).meta.body, '{"ms":"300"}');
  assert.deepEqual(c.order, [2, 1]);
  c.end();
});

test('v2: 10 slow calls of one connection run together', { timeout: 15000 }, async () => {
  const c = await Client.open(SOCK);
  const t0 = Date.now();
  const replies = await Promise.all(Array.from({ length: 10 }, () => c.call(req('wait', { ms: '300' }))));
  for (const r of replies) assert.equal(r.meta.body, '{"ms":"300"}');
  assert.ok(Date.now() - t0 < 900, `took ${Date.now() - t0} ms`);
  c.end();
});

test('v2: 50 pipelined calls in one write are all answered with their ids', { timeout: 15000 }, async () => {
  const c = await Client.open(SOCK);
  const frames = [];
  for (let i = 1; i <= 50; i++) frames.push(v2Frame(i, 1, req(i % 2 ? 'hello' : 'wait', { name: `n${i}`, ms: String(i % 7) })));
  c.send(Buffer.concat(frames));
  for (let i = 1; i <= 50; i++) {
    const r = await c.reply(i);
    assert.equal(r.meta.body, i % 2 ? `hello n${i}` : `{"ms":"${i % 7}"}`, `reply ${i}`);
  }
  assert.equal(c.order.length, 50);
  c.end();
});

test('v2: a raw binary body reaches the handler as v1 gives it (text + body_base64)', { timeout: 15000 }, async () => {
  const c = await Client.open(SOCK);
  const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
  const v2 = await c.call(req('echo', { i: '1' }), bytes);
  const v1 = await v1Call(SOCK, req('echo', { i: '1' }, { body: bytes.toString('utf8'), body_base64: bytes.toString('base64') }));
  assert.equal(v2.meta.body, v1.body);
  assert.equal(JSON.parse(v2.meta.body).b64, bytes.toString('base64'));
  // UTF-8 text: no body_base64, as in v1; no body: no event.body.
  const text = await c.call(req('echo', { i: '2' }), Buffer.from('héllo'));
  assert.deepEqual(JSON.parse(text.meta.body), { id: '2', text: 'héllo', b64: null });
  const none = await c.call(req('echo', { i: '3' }));
  assert.deepEqual(JSON.parse(none.meta.body), { id: '3', text: null, b64: null });
  // 1.5 MB of random bytes.
  const big = crypto.randomBytes(1536 * 1024);
  const bigV2 = await c.call(req('digest'), big);
  const bigV1 = await v1Call(SOCK, req('digest', {}, { body: big.toString('utf8'), body_base64: big.toString('base64') }));
  assert.equal(bigV2.meta.status, 200);
  assert.equal(bigV2.meta.body, bigV1.body);
  assert.equal(JSON.parse(bigV2.meta.body).b64, crypto.createHash('sha256').update(big.toString('base64')).digest('hex'));
  c.end();
});

test('v2: a binary reply body is the raw frame body, not base64', { timeout: 15000 }, async () => {
  const c = await Client.open(SOCK);
  const r = await c.call(req('bin'));
  assert.equal(r.meta.status, 200);
  assert.equal(r.meta.headers['Content-Type'], 'application/octet-stream');
  assert.equal(r.meta.body_base64, undefined);
  assert.equal(r.meta.is_base64, undefined);
  assert.deepEqual([...r.body], [0, 1, 2, 250]);
  const text = await c.call(req('hello', { name: 't' }));
  assert.equal(text.body.length, 0, 'a text body stays in meta');
  c.end();
});

test('v2: a call over FN_MAX_FRAME_BYTES gets 413 for its id; the connection serves on', { timeout: 15000 }, async () => {
  const c = await Client.open(SMALL);
  const over = c.call(req('echo', { i: 'big' }), Buffer.alloc(1024 * 1024, 120)); // several reads
  const next = c.call(req('hello', { name: 'after' }));
  const r = await over;
  assert.equal(r.meta.status, 413);
  assert.equal(r.meta.body, '{"error":"payload too large"}');
  assert.equal((await next).meta.body, 'hello after');
  c.end();
});

test('v2: a malformed header or a non-object meta closes the connection', { timeout: 15000 }, async () => {
  const bad = [];
  const short = Buffer.alloc(12);
  short.writeUInt32BE(8, 0); // len < 9
  bad.push(['len < 9', short]);
  bad.push(['id 0', v2Frame(0, 1, req('hello', { name: 'x' }))]);
  bad.push(['unknown kind', v2Frame(1, 9, req('hello', { name: 'x' }))]);
  const big = v2Frame(1, 1, req('hello', { name: 'x' }));
  big.writeUInt32BE(big.length, 9); // meta_len > len - 9
  bad.push(['meta_len too big', big]);
  bad.push(['array meta', v2Frame(1, 1, '[1]')]);
  bad.push(['invalid JSON meta', v2Frame(1, 1, '{"fn":')]);
  for (const [what, frame] of bad) {
    const c = await Client.open(SOCK);
    c.send(frame);
    const t = setTimeout(() => assert.fail(`${what}: connection not closed`), 2000);
    await c.closed();
    clearTimeout(t);
    assert.equal(c.order.length, 0, what);
  }
  assert.equal((await v1Call(SOCK, req('hello', { name: 'alive' }))).body, 'hello alive');
});

test('v2: cancel of an unknown or finished id is harmless; cancel of a queued call drops it', { timeout: 15000 }, async () => {
  const c = await Client.open(SOCK);
  c.send(v2Frame(999, 3, null));
  assert.equal((await c.call(req('hello', { name: 'a' }))).meta.body, 'hello a');
  c.send(v2Frame(1, 3, null)); // finished
  c.send(Buffer.concat([v2Frame(50, 1, req('hello', { name: 'dropped' })), v2Frame(50, 3, null)]));
  assert.equal((await c.call(req('hello', { name: 'b' }))).meta.body, 'hello b');
  await sleep(50);
  assert.equal(c.replies.has(50), false, 'a call cancelled before it started gets no reply');
  c.end();
});

test('v2: stdin EOF exits at once with a v2 connection open', { timeout: 15000 }, async () => {
  const sock = path.join(tmp, 'eof.sock');
  const child = startDaemon(sock);
  await waitReady(sock);
  const c = await Client.open(sock);
  const slow = c.call(req('wait', { ms: '5000' }));
  slow.catch(() => {});
  await sleep(50);
  const t0 = Date.now();
  child.stdin.end();
  const t = setTimeout(() => child.kill('SIGKILL'), 3000);
  const code = await child.exited;
  clearTimeout(t);
  assert.equal(code, 0);
  assert.ok(Date.now() - t0 < 1000, `exit took ${Date.now() - t0} ms`);
  await c.closed();
});
