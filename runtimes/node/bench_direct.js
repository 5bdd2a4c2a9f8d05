'use strict';
// Direct frame benchmark of the Node daemon against a minimal frame server.
//
//   node bench_direct.js                      3 runs each of minimal server and daemon, medians
//   node bench_direct.js v2                   3 runs each of the daemon with v1 and v2 clients
//   node bench_direct.js client <sock> [seconds] [connections] [json]
//   node bench_direct.js client-v2 <sock> [seconds] [connections] [in-flight] [json]
//   node bench_direct.js minimal <sock>      the minimal frame server alone
//
// The client runs in its own process. v1: each of its connections loops connect → write one
// frame → read one reply frame → close, as the gateway's v1 path does. v2: each connection is
// persistent (hello first) and keeps `in-flight` calls going (a new call per reply), as the
// gateway's v2 pool does. The daemon runs `exports.handler = async () => ({status: 200, body:
// 'ok'})`; the minimal server speaks v1 only.

const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');
const { spawn } = require('child_process');

const REQUEST = JSON.stringify({
  fn: 'bench',
  entry: 'bench/handler.js',
  handler: 'handler',
  adapter: 'native',
  event: {
    id: 'req-1700000000000-1-000001', ts: 1700000000000, method: 'GET', path: '/bench', raw_path: '/bench',
    query: {}, params: {}, path_params: {}, headers: { host: 'localhost', 'user-agent': 'bench' },
    session: null, client: { ip: '127.0.0.1', ua: 'bench' },
    context: { request_id: 'req-1', runtime: 'node', function_name: 'bench', version: 'default', timeout_ms: 2500 },
  },
});

function encode(json) {
  const body = Buffer.from(json);
  const buf = Buffer.allocUnsafe(4 + body.length);
  buf.writeUInt32BE(body.length, 0);
  body.copy(buf, 4);
  return buf;
}

function minimal(sock) {
  const reply = encode(JSON.stringify({ status: 200, headers: {}, body: 'ok' }));
  try { fs.unlinkSync(sock); } catch {}
  net.createServer((s) => {
    let pending = null;
    s.on('data', (chunk) => {
      const buf = pending === null ? chunk : Buffer.concat([pending, chunk]);
      if (buf.length < 4 || buf.length < 4 + buf.readUInt32BE(0)) { pending = buf; return; }
      JSON.parse(buf.toString('utf8', 4, 4 + buf.readUInt32BE(0)));
      s.end(reply);
    });
    s.on('error', () => s.destroy());
  }).listen(sock);
  process.stdin.on('end', () => process.exit(0));
  process.stdin.resume();
}

function client(sock, seconds, conns, json) {
  const frame = encode(json);
  const deadline = Date.now() + seconds * 1000;
  let done = 0;
  let errors = 0;
  let active = conns;
  const start = Date.now();
  function loop() {
    if (Date.now() >= deadline) {
      if (--active === 0) {
        const secs = (Date.now() - start) / 1000;
        process.stdout.write(JSON.stringify({ rps: Math.round(done / secs), done, errors }) + '\n');
      }
      return;
    }
    const s = net.createConnection(sock);
    let pending = null;
    s.on('connect', () => s.write(frame));
    s.on('data', (chunk) => {
      pending = pending === null ? chunk : Buffer.concat([pending, chunk]);
    });
    s.on('close', () => {
      if (pending !== null && pending.length >= 4 && pending.length === 4 + pending.readUInt32BE(0) &&
          pending.toString('utf8', 4, 20) === '{"status":200,"h') done++;
      else errors++;
      loop();
    });
    s.on('error', () => {});
  }
  for (let i = 0; i < conns; i++) loop();
}

function clientV2(sock, seconds, conns, inflight, json) {
  const meta = Buffer.from(json);
  const calls = [];
  for (let id = 1; id <= inflight; id++) {
    const head = Buffer.alloc(13);
    head.writeUInt32BE(9 + meta.length, 0);
    head.writeUInt32BE(id, 4);
    head[8] = 1;
    head.writeUInt32BE(meta.length, 9);
    calls.push(Buffer.concat([head, meta]));
  }
  const deadline = Date.now() + seconds * 1000;
  const start = Date.now();
  let done = 0;
  let errors = 0;
  let active = conns;
  const finished = () => {
    if (--active > 0) return;
    const secs = (Date.now() - start) / 1000;
    process.stdout.write(JSON.stringify({ rps: Math.round(done / secs), done, errors }) + '\n');
  };
  for (let i = 0; i < conns; i++) {
    const s = net.createConnection(sock);
    let buf = Buffer.alloc(0);
    let hello = false;
    let pending = inflight;
    s.on('connect', () => s.write(encode('{"fastfn_hello":2}')));
    s.on('data', (chunk) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      if (!hello) {
        if (buf.length < 4 || buf.length < 4 + buf.readUInt32BE(0)) return;
        buf = buf.subarray(4 + buf.readUInt32BE(0));
        hello = true;
        s.write(Buffer.concat(calls));
      }
      const sending = Date.now() < deadline;
      const out = [];
      let off = 0;
      while (buf.length - off >= 13 && buf.length - off >= 4 + buf.readUInt32BE(off)) {
        const len = buf.readUInt32BE(off);
        const id = buf.readUInt32BE(off + 4);
        if (buf.toString('utf8', off + 13, off + 25) === '{"status":20') done++;
        else errors++;
        off += 4 + len;
        if (sending) out.push(calls[id - 1]);
        else pending--;
      }
      buf = buf.subarray(off);
      if (out.length > 0) s.write(out.length === 1 ? out[0] : Buffer.concat(out));
      if (pending === 0) {
        s.destroy();
        finished();
      }
    });
    s.on('error', () => { errors++; });
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitForSocket(sock) {
  for (let i = 0; i < 250; i++) {
    if (fs.existsSync(sock)) return;
    await sleep(20);
  }
  throw new Error(`no socket at ${sock}`);
}

function runClient(sock, seconds, v2 = false) {
  const args = v2 ? ['client-v2', sock, String(seconds), '4', '16', REQUEST] : ['client', sock, String(seconds), '16', REQUEST];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [__filename, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`client exited ${code}`))));
  });
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function all() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fastfn-bench-'));
  const root = path.join(dir, 'functions');
  fs.mkdirSync(path.join(root, 'bench'), { recursive: true });
  fs.writeFileSync(path.join(root, 'bench', 'handler.js'), "exports.handler = async () => ({ status: 200, body: 'ok' });\n");
  const seconds = Number(process.env.BENCH_SECONDS || 5);
  const servers = {
    minimal: (sock) => spawn(process.execPath, [__filename, 'minimal', sock], { stdio: ['pipe', 'inherit', 'inherit'] }),
    daemon: (sock) => spawn(process.execPath, [path.join(__dirname, 'daemon.js'), sock], {
      stdio: ['pipe', 'inherit', 'inherit'], env: { ...process.env, FN_FUNCTIONS_ROOT: root },
    }),
  };
  const results = { minimal: [], daemon: [] };
  for (let run = 0; run < 3; run++) {
    for (const name of Object.keys(servers)) {
      const sock = path.join(dir, `${name}-${run}.sock`);
      const child = servers[name](sock);
      const exited = new Promise((resolve) => child.on('exit', resolve));
      await waitForSocket(sock);
      const r = await runClient(sock, seconds);
      child.stdin.end();
      await exited;
      results[name].push(r.rps);
      process.stdout.write(`run ${run + 1} ${name}: ${r.rps} req/s (${r.done} ok, ${r.errors} errors)\n`);
    }
  }
  const m = median(results.minimal);
  const d = median(results.daemon);
  process.stdout.write(`median minimal ${m} req/s, daemon ${d} req/s, ratio ${(d / m).toFixed(2)}\n`);
  fs.rmSync(dir, { recursive: true, force: true });
}

/** The daemon alone: v1 clients (16 connections, one call each) vs v2 (4 connections × 16 in flight). */
async function v1v2() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fastfn-bench-'));
  const root = path.join(dir, 'functions');
  fs.mkdirSync(path.join(root, 'bench'), { recursive: true });
  fs.writeFileSync(path.join(root, 'bench', 'handler.js'), "exports.handler = async () => ({ status: 200, body: 'ok' });\n");
  const seconds = Number(process.env.BENCH_SECONDS || 5);
  const runs = Number(process.env.BENCH_RUNS || 3);
  const results = { v1: [], v2: [] };
  for (let run = 0; run < runs; run++) {
    for (const proto of ['v1', 'v2']) {
      const sock = path.join(dir, `daemon-${proto}-${run}.sock`);
      const child = spawn(process.execPath, [path.join(__dirname, 'daemon.js'), sock], {
        stdio: ['pipe', 'inherit', 'inherit'], env: { ...process.env, FN_FUNCTIONS_ROOT: root, FN_DAEMON_PROTOCOL: '2' },
      });
      const exited = new Promise((resolve) => child.on('exit', resolve));
      await waitForSocket(sock);
      await sleep(100);
      const r = await runClient(sock, seconds, proto === 'v2');
      child.stdin.end();
      await exited;
      results[proto].push(r.rps);
      process.stdout.write(`run ${run + 1} daemon ${proto}: ${r.rps} req/s (${r.done} ok, ${r.errors} errors)\n`);
    }
  }
  const a = median(results.v1);
  const b = median(results.v2);
  process.stdout.write(`median daemon v1 ${a} req/s (16 connections, one call each), v2 ${b} req/s (4 connections x 16 in flight), ratio ${(b / a).toFixed(2)}\n`);
  fs.rmSync(dir, { recursive: true, force: true });
}

const [mode, sock, seconds, conns, json] = process.argv.slice(2);
if (mode === 'minimal') minimal(sock);
else if (mode === 'client') client(sock, Number(seconds || 5), Number(conns || 16), json || REQUEST);
else if (mode === 'client-v2') {
  const [, , , , inflight, json2] = process.argv.slice(2);
  clientV2(sock, Number(seconds || 5), Number(conns || 4), Number(inflight || 16), json2 || REQUEST);
} else if (mode === 'v2') v1v2();
else all();
