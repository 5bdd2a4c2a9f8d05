'use strict';
// Runaway calls (daemon.js "Runaway calls"): a handler blocking the event loop past the
// timeout of every call in flight ends the daemon (the engine restarts it), so its CPU is
// reclaimed; calls without a timeout, or while another call's deadline is ahead, are left.
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
const TICK = 100; // USER_HZ (clock ticks per second in /proc/<pid>/stat) on Linux

const FILES = {
  'spin.js': 'exports.handler = () => { while (true) {} };\n',
  'aspin.js': 'exports.handler = async () => { await null; for (;;) {} };\n',
  'ok.js': "exports.handler = () => 'ok';\n",
};

function frame(obj) {
  const body = Buffer.from(JSON.stringify(obj));
  const head = Buffer.alloc(4);
  head.writeUInt32BE(body.length);
  return Buffer.concat([head, body]);
}

function v2Frame(id, kind, meta) {
  const m = Buffer.from(meta === null ? '' : JSON.stringify(meta));
  const head = Buffer.alloc(13);
  head.writeUInt32BE(9 + m.length, 0);
  head.writeUInt32BE(id, 4);
  head[8] = kind;
  head.writeUInt32BE(m.length, 9);
  return Buffer.concat([head, m]);
}

/** v1 call; resolves the reply, or null when none came within `ms`. */
function call(sock, fn, timeoutMs, ms = 5000) {
  return new Promise((resolve) => {
    const s = net.createConnection(sock);
    const chunks = [];
    const t = setTimeout(() => { s.destroy(); resolve(null); }, ms);
    s.on('connect', () => s.write(frame({ fn, event: { context: { timeout_ms: timeoutMs } } })));
    s.on('data', (d) => chunks.push(d));
    s.on('error', () => {});
    s.on('close', () => {
      clearTimeout(t);
      const buf = Buffer.concat(chunks);
      resolve(buf.length > 4 ? JSON.parse(buf.toString('utf8', 4)) : null);
    });
  });
}

function cpuSeconds(pid) {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(')').pop().trim().split(/\s+/);
  return (Number(f[11]) + Number(f[12])) / TICK;
}

async function idleOver(pid, ms) {
  const before = cpuSeconds(pid);
  await sleep(ms);
  return cpuSeconds(pid) - before;
}

async function startDaemon(t) {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'fastfn-node-reclaim-'));
  for (const [rel, text] of Object.entries(FILES)) fs.writeFileSync(path.join(root, rel), text);
  const sock = path.join(root, 'd.sock');
  const child = spawn(process.execPath, [DAEMON, sock], { env: { ...process.env, FN_FUNCTIONS_ROOT: root }, stdio: ['pipe', 'ignore', 'ignore'] });
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve(signal || code)));
  t.after(() => { child.kill('SIGKILL'); fs.rmSync(root, { recursive: true, force: true }); });
  // The socket file appears at bind(), a moment before listen(): wait for a real answer.
  for (let i = 0; i < 200 && (!fs.existsSync(sock) || (await call(sock, 'ok.js', 300)) === null); i++) await sleep(25);
  return { sock, child, exited };
}

for (const [what, fn] of [['a sync handler', 'spin.js'], ['an async continuation', 'aspin.js']]) {
  test(`${what} blocking the loop past its timeout ends the daemon (the engine restarts it)`, { timeout: 20000 }, async (t) => {
    const d = await startDaemon(t);
    assert.equal((await call(d.sock, 'ok.js', 300)).body, 'ok');
    const t0 = Date.now();
    assert.equal(await call(d.sock, fn, 300, 500), null);
    const how = await Promise.race([d.exited, sleep(2500).then(() => 'still running')]);
    assert.equal(how, 'SIGKILL');
    assert.ok(Date.now() - t0 < 2000, `took ${Date.now() - t0} ms`);
  });
}

test('v2: a blocked call whose timeout has not passed for every call is left running', { timeout: 20000 }, async (t) => {
  const d = await startDaemon(t);
  const s = net.createConnection(d.sock);
  s.on('error', () => {});
  await new Promise((resolve) => s.on('connect', resolve));
  s.write(frame({ fastfn_hello: 2 }));
  s.write(v2Frame(1, 1, { fn: 'ok.js', event: { context: { timeout_ms: 3000 } } }));
  await sleep(100);
  s.write(v2Frame(2, 1, { fn: 'spin.js', event: { context: { timeout_ms: 300 } } }));
  await sleep(1000); // past spin's deadline, not past ok's (the latest one)
  assert.equal(d.child.exitCode, null);
  assert.equal(d.child.signalCode, null);
  const how = await Promise.race([d.exited, sleep(4000).then(() => 'still running')]);
  assert.equal(how, 'SIGKILL');
  s.destroy();
});

test('a call without a timeout is never stopped', { timeout: 20000 }, async (t) => {
  const d = await startDaemon(t);
  const s = net.createConnection(d.sock);
  s.on('error', () => {});
  s.on('connect', () => s.write(frame({ fn: 'spin.js', event: {} })));
  await sleep(800);
  assert.ok(await idleOver(d.child.pid, 1000) > 0.1, 'the handler was stopped');
  assert.equal(d.child.exitCode, null);
  s.destroy();
});
