'use strict';
// Direct frame benchmark of the Node daemon against a minimal frame server.
//
//   node bench_direct.js                      3 runs each of minimal server and daemon, medians
//   node bench_direct.js client <sock> [seconds] [connections] [json]
//   node bench_direct.js minimal <sock>      the minimal frame server alone
//
// The client runs in its own process; each of its connections loops connect → write one frame
// → read one reply frame → close, as the gateway does. Both servers get the same client and a
// trivial request; the daemon runs `exports.handler = async () => ({status: 200, body: 'ok'})`.

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

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitForSocket(sock) {
  for (let i = 0; i < 250; i++) {
    if (fs.existsSync(sock)) return;
    await sleep(20);
  }
  throw new Error(`no socket at ${sock}`);
}

function runClient(sock, seconds) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [__filename, 'client', sock, String(seconds), '16', REQUEST], { stdio: ['ignore', 'pipe', 'inherit'] });
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

const [mode, sock, seconds, conns, json] = process.argv.slice(2);
if (mode === 'minimal') minimal(sock);
else if (mode === 'client') client(sock, Number(seconds || 5), Number(conns || 16), json || REQUEST);
else all();
