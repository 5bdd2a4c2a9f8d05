'use strict';
// The strict sandbox on a real Node daemon: a call with `"strict_fs": true` cannot read outside
// its function folder, its own platform files, or start a process, also after an await; a call
// without it (at the same time, of the same function) can.
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
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'fastfn-node-sandbox-'));
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

function call(entry, strict, query = {}) {
  return new Promise((resolve, reject) => {
    const s = net.createConnection(sock);
    const chunks = [];
    const req = { entry, event: { method: 'GET', headers: {}, query } };
    if (strict) req.strict_fs = true;
    s.on('connect', () => s.write(frame(req)));
    s.on('data', (d) => chunks.push(d));
    s.on('error', reject);
    s.on('close', () => {
      const buf = Buffer.concat(chunks);
      if (buf.length < 4) return reject(new Error('no reply'));
      resolve(JSON.parse(buf.toString('utf8', 4)));
    });
  });
}

const PROBE = `
const fs = require('fs');
const path = require('path');
const cp = require('child_process');
const attempt = (f) => { try { f(); return 'allowed'; } catch (e) { return e.code === 'EACCES' ? 'blocked' : 'error:' + e.message; } };
const probes = () => ({
  passwd: attempt(() => fs.readFileSync('/etc/passwd')),
  config: attempt(() => fs.readFileSync(path.join(__dirname, 'fn.config.json'))),
  env: attempt(() => fs.readFileSync(path.join(__dirname, 'fn.env.json'))),
  spawn: attempt(() => cp.execFileSync('true')),
  own: attempt(() => fs.readFileSync(path.join(__dirname, 'data.txt'))),
});
exports.handler = async (event) => {
  const sync = probes();
  await new Promise((r) => setTimeout(r, Number(event.query.ms || 1)));
  let later;
  try { await fs.promises.readFile('/etc/passwd'); later = 'allowed'; } catch (e) { later = e.code === 'EACCES' ? 'blocked' : e.message; }
  return { ...sync, later };
};
`;

const BLOCKED = { passwd: 'blocked', config: 'blocked', env: 'blocked', spawn: 'blocked', own: 'allowed', later: 'blocked' };
const ALLOWED = { passwd: 'allowed', config: 'allowed', env: 'allowed', spawn: 'allowed', own: 'allowed', later: 'allowed' };

test.before(async () => {
  write('fn/fn.config.json', '{"runtime": "node"}');
  write('fn/fn.env.json', '{"K": "v"}');
  write('fn/data.txt', 'mine\n');
  write('fn/handler.js', PROBE);
  child = spawn(process.execPath, [DAEMON, sock], { env: { ...process.env, FN_FUNCTIONS_ROOT: root }, stdio: ['pipe', 'inherit', 'inherit'] });
  for (let i = 0; i < 400; i++) {
    try {
      await call('fn/handler.js', false);
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

test('a strict call is confined, also after an await', async () => {
  const r = await call('fn/handler.js', true);
  assert.equal(r.status, 200, JSON.stringify(r));
  assert.deepEqual(JSON.parse(r.body), BLOCKED);
  assert.deepEqual(JSON.parse((await call('fn/handler.js', false)).body), ALLOWED);
});

test('concurrent strict and open calls keep their own mode', async () => {
  const calls = [];
  for (let i = 0; i < 12; i++) calls.push(call('fn/handler.js', i % 2 === 0, { ms: String(5 + (i % 3) * 10) }));
  const replies = await Promise.all(calls);
  replies.forEach((r, i) => assert.deepEqual(JSON.parse(r.body), i % 2 === 0 ? BLOCKED : ALLOWED, `call ${i}`));
});
