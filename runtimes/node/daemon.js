'use strict';
// FastFN Node runtime daemon.
//
//   node daemon.js <socket-path>
//   env: FN_FUNCTIONS_ROOT (absolute root of the user's functions), FN_MAX_FRAME_BYTES (2 MiB)
//
// v1: per connection read one frame (4-byte big-endian length + UTF-8 JSON request), write one
// reply frame, end. v2: a connection whose first frame is `{"fastfn_hello": 2}` gets the hello
// answer and then carries multiplexed call/reply/cancel frames until closed ("Protocol v2").
// Contract: shared/contract/FASTFN.md §4; ours: docs/architecture.md, docs/protocol.md.
//
// Invariants:
// - Only files inside the functions root (after symlinks) are loaded as entries.
// - The entry files of one folder share one module graph: its own instance of every file they
//   require or import (builtins and native addons excepted), kept warm between calls and
//   dropped as a whole when any of its files (entry or helper) changes ("Module graphs"). ES
//   modules and TypeScript are compiled to CommonJS (esbuild) to live in these graphs.
// - Handler output is captured per call (at most 64 KiB per stream) and returned in the reply;
//   the daemon itself writes nothing per call. See "Output capture" for how AsyncLocalStorage is
//   kept off the hot path.
// - process.env shows the current call's env over the real one ("process.env during calls").
// - A handler blocking the event loop past every in-flight call's timeout ends the daemon, so
//   the engine restarts it ("Runaway calls").
// - Self-contained: Node built-ins only (esbuild, for ES modules and TypeScript, is found in the
//   function's node_modules or installed once into a cache), so the engine can embed this file.

const fs = require('fs');
const net = require('net');
const path = require('path');
const Module = require('module');
const { AsyncLocalStorage } = require('async_hooks');
const { isUtf8 } = require('buffer');

const DEFAULT_MAX_FRAME = 2 * 1024 * 1024;
const ENTRY_NAMES = ['handler.ts', 'handler.js', 'index.ts', 'index.js'];
const ENTRY_EXTS = new Set(['.js', '.cjs', '.mjs', '.ts']);
const ENVELOPE_KEYS = ['status', 'statusCode', 'headers', 'body', 'is_base64', 'isBase64Encoded', 'body_base64', 'proxy'];
const STAT_OPTS = { throwIfNoEntry: false };

// ---------------------------------------------------------------------------------------------
// Replies

function errorReply(status, message) {
  return { status, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ error: message }) };
}

/** Frames a reply object; the frame is built once for fixed replies. */
function frame(reply) {
  const json = JSON.stringify(reply);
  const len = Buffer.byteLength(json);
  const buf = Buffer.allocUnsafe(4 + len);
  buf.writeUInt32BE(len, 0);
  buf.write(json, 4, len, 'utf8');
  return buf;
}

const FRAME_BAD_LENGTH = frame(errorReply(400, 'invalid frame length'));
const FRAME_BAD_JSON = frame(errorReply(400, 'invalid json request'));
const FRAME_NOT_FOUND = frame(errorReply(404, 'unknown function'));

/** Sends a reply frame: ends a v1 connection, or (a V2Call) writes it as that call's reply. */
function send(socket, buf) {
  if (socket instanceof V2Call) socket.sendFrame(buf);
  else if (!socket.destroyed) socket.end(buf);
}

// ---------------------------------------------------------------------------------------------
// Output capture

// Output of a call's synchronous code goes to `syncCapture`. Output of its async continuations
// needs AsyncLocalStorage, whose hooks cost every promise and socket of the process ~8% of the
// daemon's throughput while enabled. So a function runs inside ALS only until it is known to be
// `quiet` (a call finished with no output from async continuations); quiet functions run plain,
// and ALS is disabled again once no ALS call has been in flight for 200 ms. Output from an async
// continuation outside ALS cannot be attributed: it may come from a plain call or from a task an
// earlier call left behind, of any function. It goes to the daemon's own stream (never into
// another call's reply), and every function with a plain call in flight leaves `quiet` mode, so
// a function that writes from async continuations loses at most that one write.

/** Capture of the call whose synchronous code is running right now. */
let syncCapture = null;
const als = new AsyncLocalStorage();
let alsInFlight = 0;
let alsDisableTimer = null;
/** Captures of async calls running outside ALS. */
const plainInFlight = new Set();

function asyncCapture() {
  if (alsInFlight > 0) {
    const cap = als.getStore();
    if (cap !== undefined) return cap;
  }
  for (const c of plainInFlight) c.fn.quiet = false;
  return undefined;
}

function alsDone() {
  if (--alsInFlight === 0 && alsDisableTimer === null) {
    alsDisableTimer = setTimeout(maybeDisableAls, 200);
    alsDisableTimer.unref();
  }
}

function maybeDisableAls() {
  alsDisableTimer = null;
  if (alsInFlight === 0) als.disable();
}

function chunkToString(chunk, encoding) {
  if (typeof chunk === 'string') return chunk;
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength).toString(typeof encoding === 'string' && Buffer.isEncoding(encoding) ? encoding : 'utf8');
  return String(chunk);
}

const MAX_OUTPUT = 64 * 1024;

/** A call's captured stream for its reply: bounded, with a marker saying what was left out. */
function bounded(cap, field) {
  let text = cap[field];
  let dropped = cap.dropped[field];
  if (text.length > MAX_OUTPUT) {
    dropped += Buffer.byteLength(text.slice(MAX_OUTPUT));
    text = text.slice(0, MAX_OUTPUT);
  }
  return dropped > 0 ? `${text}\u2026[truncated ${dropped} bytes]` : text;
}

function captureStream(stream, field) {
  const original = stream.write;
  stream.write = function write(chunk, encoding, cb) {
    let cap = syncCapture;
    if (cap === null) {
      cap = asyncCapture();
      if (cap === undefined) return original.apply(stream, arguments); // not attributable
      cap.asyncOutput = true;
    }
    if (cap.open) {
      // At most MAX_OUTPUT characters are kept per stream; the rest is only counted.
      if (cap[field].length < MAX_OUTPUT) cap[field] += chunkToString(chunk, encoding);
      else cap.dropped[field] += typeof chunk === 'string' ? Buffer.byteLength(chunk, encoding) : chunk.length;
    }
    const done = typeof encoding === 'function' ? encoding : cb;
    if (typeof done === 'function') process.nextTick(done, null);
    return true;
  };
}

// ---------------------------------------------------------------------------------------------
// Loading: one isolated module graph per function

let ROOT = '';
let ROOT_REAL = '';
const stripTypes = typeof Module.stripTypeScriptTypes === 'function' ? Module.stripTypeScriptTypes : null;

/** An error whose message is the whole story: replied as is, no stack. */
class PlainError extends Error {}

// ---------------------------------------------------------------------------------------------
// Module graphs
//
// All entry files of one folder share one graph (as FastFN's daemon shares a folder's modules):
// its own instance of every file they `require` or `import` (resolved from that folder, so a
// per-function `node_modules` works), so two handlers importing `./_shared.js` see the same
// state; builtins and native addons are shared by the whole daemon. The graph records every
// file it loaded from outside `node_modules` (mtime + size) and the watched folders they live
// in; when one of those folders changed, the files are compared, and any change drops the whole
// graph: every entry of the folder reloads with fresh helpers on its next call.
//
// ES modules (`export default { fetch }`, `export async function handler`) and TypeScript are
// compiled to CommonJS with esbuild so they live in these graphs too (Node's own ESM cache can
// never drop a module). TypeScript uses Node's built-in type stripping where it exists (Node ≥
// 22.13) and esbuild otherwise. esbuild comes from the function's `node_modules` (or an
// ancestor's up to the root), else from a cache folder the daemon fills once with `npm install
// esbuild` (FN_ESBUILD_CACHE, default ~/.cache/fastfn/esbuild); calls wait for that install.

class Graph {
  constructor() {
    this.modules = new Map(); // filename -> Module
    this.files = new Map(); // filename -> [mtimeMs, size] of our files (not node_modules)
    this.watched = new Map(); // Folder -> gen seen
  }

  note(filename) {
    if (filename.includes(`${path.sep}node_modules${path.sep}`)) return;
    const st = fs.statSync(filename, STAT_OPTS);
    this.files.set(filename, st === undefined ? [-1, -1] : [st.mtimeMs, st.size]);
    const folder = folderOf(path.dirname(filename));
    if (!this.watched.has(folder)) this.watched.set(folder, folder.watched ? folder.gen : -1);
  }

  /** True while no file of the graph changed (stats only after a watched folder changed). */
  fresh() {
    let changed = false;
    for (const [folder, gen] of this.watched) {
      if (gen === -1 || folder.gen !== gen || folders.get(folder.dir) !== folder) changed = true;
    }
    if (!changed) return true;
    for (const [file, [mtime, size]] of this.files) {
      const st = fs.statSync(file, STAT_OPTS);
      if (st === undefined ? mtime !== -1 : st.mtimeMs !== mtime || st.size !== size) return false;
    }
    for (const folder of this.watched.keys()) {
      const live = folders.get(folder.dir) === folder && folder.watched;
      this.watched.set(folder, live ? folder.gen : -1);
    }
    return true;
  }
}

/** `require` of every module of a function graph: relative/package files get instances of
 * this graph; builtins and native addons come from Node's shared loader. */
function graphRequire(id) {
  if (typeof id !== 'string' || id === '') return Module.prototype.require.call(this, id);
  // `node:` names are builtins or nothing: Node's own loader says which (`No such built-in
  // module: node:sqlite` on a Node without it), not a file search.
  if (Module.isBuiltin(id) || id.startsWith('node:')) return require(id);
  let filename;
  try {
    filename = Module._resolveFilename(id, this, false);
  } catch (e) {
    // TypeScript's ES module convention: `./helper.js` names the source `./helper.ts`.
    if (!id.startsWith('.') || !/\.m?js$/.test(id)) throw e;
    filename = Module._resolveFilename(id.replace(/\.(m?)js$/, '.$1ts'), this, false);
  }
  const graph = this.fnGraph;
  const cached = graph.modules.get(filename);
  if (cached !== undefined) return cached.exports;
  if (filename.endsWith('.node')) return Module.prototype.require.call(this, id);
  return loadInGraph(graph, filename, this).exports;
}

// `require('./helper')` finds `helper.ts` too (extensionless TypeScript imports).
if (!('.ts' in Module._extensions)) {
  Module._extensions['.ts'] = (m, filename) => m._compile(compileToCjs(filename, fs.readFileSync(filename, 'utf8')), filename);
}

const ESM_SYNTAX = /Cannot use import statement outside a module|Unexpected token 'export'|Cannot use 'import\.meta' outside a module/;
const ESM_HINT = /^\s*(import\s*[\w*{'"]|export\s)|\bimport\.meta\b/m;

/** Whether a .js source is an ES module: it mentions import/export statements (a cheap test)
 * and does not compile as a CommonJS function body. */
function isEsm(src, filename) {
  if (!ESM_HINT.test(src)) return false;
  try {
    new (require('vm').Script)(Module.wrap(src), { filename });
    return false;
  } catch (e) {
    return e instanceof SyntaxError && ESM_SYNTAX.test(e.message);
  }
}

function loadInGraph(graph, filename, parent) {
  const m = new Module(filename, parent);
  m.fnGraph = graph;
  m.require = graphRequire;
  m.filename = filename;
  m.paths = Module._nodeModulePaths(path.dirname(filename));
  graph.modules.set(filename, m);
  graph.note(filename);
  try {
    if (filename.endsWith('.ts') || filename.endsWith('.mts') || filename.endsWith('.mjs')) {
      m._compile(compileToCjs(filename, fs.readFileSync(filename, 'utf8')), filename);
    } else if (filename.endsWith('.js') && !filename.includes(`${path.sep}node_modules${path.sep}`)) {
      const src = fs.readFileSync(filename, 'utf8');
      // An ES module of ours is compiled to CommonJS so it joins the graph (see above); Node
      // itself would hand it to its ESM loader, whose cache never lets go.
      m._compile(isEsm(src, filename) ? compileToCjs(filename, src) : src, filename);
    } else {
      m.load(filename);
    }
    m.loaded = true;
  } catch (e) {
    graph.modules.delete(filename);
    throw e;
  }
  return m;
}

let esbuildLib = null; // the loaded esbuild module
let esbuildInstall = null; // promise of the cache install, while it runs
let esbuildFailed = null; // why the cache install failed (not retried)

/** Thrown while esbuild is being installed: the call waits for `promise` and runs again. */
class EsbuildPending extends Error {
  constructor(promise) {
    super('esbuild is being installed');
    this.promise = promise;
  }
}

function esbuildCache() {
  const env = process.env.FN_ESBUILD_CACHE;
  if (env) return env;
  const base = process.env.XDG_CACHE_HOME || path.join(require('os').homedir(), '.cache');
  return path.join(base, 'fastfn', 'esbuild');
}

function findEsbuild(fromDir) {
  for (const base of [fromDir, esbuildCache()]) {
    try {
      return Module.createRequire(path.join(base, '__fastfn__.js'))('esbuild');
    } catch {
      // next place
    }
  }
  return null;
}

function esbuildFor(filename) {
  if (esbuildLib !== null) return esbuildLib;
  esbuildLib = findEsbuild(path.dirname(filename));
  if (esbuildLib !== null) return esbuildLib;
  if (esbuildFailed !== null) throw new PlainError(esbuildFailed);
  if (esbuildInstall === null) {
    const dir = esbuildCache();
    // Installed beside the cache and renamed into place: daemons installing at once (several
    // node sockets) never see each other's half-written folder.
    const tmp = `${dir}.${process.pid}.tmp`;
    esbuildInstall = new Promise((resolve) => {
      fs.rmSync(tmp, { recursive: true, force: true });
      fs.mkdirSync(tmp, { recursive: true });
      const npm = process.env.FN_NPM_BIN || 'npm';
      const child = require('child_process').spawn(npm, ['install', '--prefix', tmp, '--no-audit', '--no-fund', '--loglevel=error', 'esbuild@0'], { stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      child.stderr.on('data', (d) => { err += d; });
      child.on('error', (e) => { err += String(e); });
      child.on('close', () => {
        esbuildInstall = null;
        try {
          fs.renameSync(tmp, dir); // fails when another daemon got there first: use theirs
        } catch {
          fs.rmSync(tmp, { recursive: true, force: true });
        }
        esbuildLib = findEsbuild(dir);
        if (esbuildLib === null) esbuildFailed = `ES module and TypeScript handlers need esbuild: add it to the function's package.json (installing it into ${dir} failed: ${err.trim().slice(-500) || 'npm not found'})`;
        resolve();
      });
    });
  }
  throw new EsbuildPending(esbuildInstall);
}

function compileToCjs(filename, src) {
  const ts = filename.endsWith('.ts') || filename.endsWith('.mts');
  if (ts && stripTypes !== null && !/^\s*(import|export)\b/m.test(src)) {
    try {
      return stripTypes(src); // a CommonJS TypeScript file on a Node that strips types
    } catch {
      // enums, namespaces, ...: esbuild below
    }
  }
  const esbuild = esbuildFor(filename);
  try {
    return esbuild.transformSync(src, {
      loader: ts ? 'ts' : 'js',
      format: 'cjs',
      platform: 'node',
      target: `node${process.versions.node.split('.')[0]}`,
      sourcefile: filename,
      define: { 'import.meta.url': '__fastfn_import_meta_url' },
      banner: 'var __fastfn_import_meta_url = require("url").pathToFileURL(__filename).href;',
      logLevel: 'silent',
    }).code;
  } catch (e) {
    const first = e && Array.isArray(e.errors) && e.errors[0];
    if (!first) throw e;
    const loc = first.location;
    const where = loc ? `${path.relative(ROOT, filename)}:${loc.line}:${loc.column + 1}` : path.relative(ROOT, filename);
    throw new PlainError(`handler failed to load: SyntaxError in ${where}: ${first.text}`);
  }
}

/** Inside the root (lexically): relative, no `..` segment, no NUL. */
function safeRelative(rel) {
  if (typeof rel !== 'string' || rel === '' || rel.includes('\0') || path.isAbsolute(rel) || rel.startsWith('\\')) return null;
  const parts = rel.split(/[\\/]+/);
  for (const p of parts) if (p === '..') return null;
  return path.join(ROOT, rel);
}

/** An existing regular entry file whose real path is inside the root, else null. */
function checkEntry(abs) {
  if (abs === null || !ENTRY_EXTS.has(path.extname(abs)) || abs.endsWith('.d.ts')) return null;
  let real;
  try {
    real = fs.realpathSync(abs);
  } catch {
    return null;
  }
  if (!real.startsWith(ROOT_REAL + path.sep)) return null;
  const st = fs.statSync(abs, STAT_OPTS);
  if (st === undefined || !st.isFile()) return null;
  return abs;
}

function firstEntryIn(dir) {
  if (dir === null) return null;
  for (const name of ENTRY_NAMES) {
    const found = checkEntry(path.join(dir, name));
    if (found !== null) return found;
  }
  return null;
}

/** Entry file of a request: `entry`, else `fn` as a file, else `fn_source_dir` (or `fn` as a
 * folder) plus the `version` subfolder with the entry name order. */
function resolveEntry(req) {
  if (req.entry !== undefined && req.entry !== null) return checkEntry(safeRelative(req.entry));
  const version = req.version;
  if (version !== undefined && version !== null && version !== '' && version !== 'default') {
    if (typeof version !== 'string' || !/^[A-Za-z0-9_.-]+$/.test(version) || version === '.' || version === '..') return null;
  }
  const sub = typeof version === 'string' && version !== '' && version !== 'default' ? version : '';
  if (typeof req.fn === 'string' && ENTRY_EXTS.has(path.extname(req.fn))) {
    const found = checkEntry(safeRelative(req.fn));
    if (found !== null) return found;
  }
  const dirRel = typeof req.fn_source_dir === 'string' && req.fn_source_dir !== '' ? req.fn_source_dir : req.fn;
  const dir = safeRelative(dirRel);
  return firstEntryIn(dir === null ? null : sub ? path.join(dir, sub) : dir);
}

// ---------------------------------------------------------------------------------------------
// Functions: records cached per request key, folders watched for changes

/**
 * A folder holding function entries. A watch on it bumps `gen` on any change inside, so a call
 * whose function saw the same `gen` last time needs no stat. This is exact for our protocol:
 * a change completed before the client connects queues its inotify event before the accept, and
 * the request bytes are read at least one event-loop turn after the accept, so the watch
 * callback has run by then. A v2 call arrives on an open connection: it starts in the check
 * phase after the poll phase that read it (startParsed), so a watch event queued before its
 * bytes were sent has been handled by then too. Without a watch (fs.watch failed, e.g. inotify limit) every call
 * stats. A folder that is removed or moved away is dropped (its watch would see nothing more)
 * and watched afresh on the next call. It also caches the folder's parsed `fn.env.json` (`env`, as of `envGen`/mtime/size).
 */
class Folder {
  constructor(dir) {
    this.dir = dir;
    this.gen = 0;
    this.watcher = null;
    this.envFile = path.join(dir, 'fn.env.json');
    this.envGen = -1;
    this.envMtime = -1;
    this.envSize = -1;
    this.env = null;
    this.graph = null; // the module graph of the entries in this folder
    try {
      const base = path.basename(dir);
      this.watcher = fs.watch(dir, { persistent: false }, (_type, name) => {
        this.gen++;
        // The folder itself went away (or an entry of the same name changed: re-watching is
        // harmless).
        if (name === null || name === base) this.drop();
      });
      this.watcher.on('error', () => this.drop());
    } catch {
      // No watch: stat per call.
    }
  }

  get watched() {
    return this.watcher !== null;
  }

  drop() {
    if (this.watcher !== null) this.watcher.close();
    this.watcher = null;
    this.gen++;
    if (folders.get(this.dir) === this) folders.delete(this.dir);
  }

  /** fn.env.json, parsed; re-read when its mtime or size changes. */
  envNow() {
    const gen = this.gen;
    if (this.watcher !== null && this.envGen === gen) return this.env;
    this.envGen = gen;
    const st = fs.statSync(this.envFile, STAT_OPTS);
    if (st === undefined) {
      this.envMtime = -1;
      this.env = null;
      return null;
    }
    if (st.mtimeMs === this.envMtime && st.size === this.envSize) return this.env;
    this.envMtime = st.mtimeMs;
    this.envSize = st.size;
    this.env = null;
    try {
      const raw = JSON.parse(fs.readFileSync(this.envFile, 'utf8'));
      if (raw !== null && typeof raw === 'object' && !Array.isArray(raw)) {
        const env = {};
        for (const k of Object.keys(raw)) {
          // Contract §3.2: these never reach handlers.
          if (HIDDEN_ENV.test(k)) continue;
          let v = raw[k];
          if (v !== null && typeof v === 'object' && !Array.isArray(v)) v = v.value;
          if (v === null || v === undefined || typeof v === 'object') continue;
          env[k] = String(v);
        }
        this.env = env;
      }
    } catch {
      // An unreadable or invalid fn.env.json contributes nothing (re-read when it changes).
    }
    return this.env;
  }
}

const HIDDEN_ENV = /^FN_(ADMIN|CONSOLE|TRUSTED)_/;

const folders = new Map(); // folder path -> Folder

function folderOf(dir) {
  let folder = folders.get(dir);
  if (folder === undefined) {
    folder = new Folder(dir);
    folders.set(dir, folder);
  }
  return folder;
}

/**
 * One function, keyed by its entry file.
 * file/dir: absolute paths; folder: the watched folder; seenGen: folder.gen when the entry was
 * last found unchanged (-1: stat next call; always for a symlinked entry, whose target the
 * watch does not see); mtime/size: the entry as last loaded; exports/loadError: result of the
 * last load; handlerName/handler: the callable last used.
 */
class Fn {
  constructor(file) {
    this.file = file;
    this.dir = path.dirname(file);
    this.folder = null;
    this.seenGen = -1;
    this.symlink = false;
    this.mtime = -1;
    this.size = -1;
    this.exports = undefined;
    this.loadError = null;
    this.handlerName = '';
    this.handler = null;
    this.quiet = false; // a call finished with no output from async continuations: no ALS
    this.graph = null; // the folder graph its exports come from
  }
}

const byKey = new Map(); // request key -> Fn
const byFile = new Map(); // entry file -> Fn

function requestKey(req) {
  if (req.entry !== undefined && req.entry !== null) return 'e' + req.entry;
  return 'f' + req.fn + '\0' + (req.fn_source_dir || '') + '\0' + (req.version || '');
}

/** The function of a request, its entry known unchanged since the last load, or null (404). */
function lookup(req) {
  const key = requestKey(req);
  let fn = byKey.get(key);
  if (fn !== undefined) {
    if (fn.folder.gen === fn.seenGen && (fn.graph === null || fn.graph.fresh())) return fn;
    if (folders.get(fn.dir) !== fn.folder) fn.folder = folderOf(fn.dir); // dropped: watch again
    const gen = fn.folder.gen;
    const st = fs.statSync(fn.file, STAT_OPTS);
    if (st !== undefined && st.mtimeMs === fn.mtime && st.size === fn.size) {
      if (fn.folder.watched && !fn.symlink) fn.seenGen = gen;
      // A helper of the folder's graph changed: the whole graph goes (see "Module graphs").
      const graph = fn.folder.graph;
      if (graph !== null && !graph.fresh()) fn.folder.graph = null;
      return fn;
    }
    byKey.delete(key); // changed or gone: resolve again (symlinks may have moved too)
  }
  const file = resolveEntry(req);
  if (file === null) return null;
  fn = byFile.get(file);
  if (fn === undefined) {
    fn = new Fn(file);
    byFile.set(file, fn);
  }
  fn.folder = folderOf(fn.dir);
  const gen = fn.folder.gen;
  const lst = fs.lstatSync(file, STAT_OPTS);
  const st = fs.statSync(file, STAT_OPTS);
  if (lst === undefined || st === undefined) return null;
  fn.symlink = lst.isSymbolicLink();
  fn.seenGen = fn.folder.watched && !fn.symlink ? gen : -1;
  if (st.mtimeMs !== fn.mtime || st.size !== fn.size) {
    if (fn.mtime !== -1 && fn.folder.graph === fn.graph) fn.folder.graph = null; // it holds the old entry
    fn.mtime = st.mtimeMs;
    fn.size = st.size;
    fn.graph = null;
    fn.exports = undefined;
    fn.loadError = null;
    fn.handler = null;
    fn.handlerName = '';
    fn.quiet = false;
  }
  byKey.set(key, fn);
  return fn;
}

/** Loads the module graph if needed (inside the call's capture), then finds the callable. */
function handlerOf(fn, name) {
  if (fn.graph !== fn.folder.graph) fresh(fn);
  if (fn.handler !== null && fn.handlerName === name) return fn.handler;
  const exp = exportsOf(fn);
  let h = exp !== null && exp !== undefined ? exp[name] : undefined;
  if (typeof h !== 'function' && typeof exp === 'function' && name === 'handler') h = exp;
  if (typeof h !== 'function' && exp !== null && exp !== undefined) {
    // `export default { handler }` (called as its method, as FastFN does) or a default function.
    const d = exp.default;
    if (d !== null && d !== undefined && typeof d[name] === 'function') h = d[name].bind(d);
    else if (typeof d === 'function' && name === 'handler') h = d;
  }
  if (typeof h !== 'function') throw new PlainError(`handler '${name}' is not exported`);
  fn.handlerName = name;
  fn.handler = h;
  fn.quiet = false;
  return h;
}

/** The v2 call being dispatched (synchronously), whose cold load `exportsOf` times. */
let loadingCall = null;

/** The entry's exports, loading its module graph if needed (inside the call's capture). */
function exportsOf(fn) {
  if (fn.graph !== fn.folder.graph) fresh(fn);
  if (fn.loadError !== null) throw fn.loadError;
  if (fn.exports === undefined) {
    const folder = fn.folder;
    if (folder.graph === null) folder.graph = new Graph();
    const graph = folder.graph;
    fn.graph = graph;
    const loading = process.hrtime.bigint();
    try {
      const cached = graph.modules.get(fn.file);
      fn.exports = (cached !== undefined ? cached : loadInGraph(graph, fn.file, null)).exports;
      if (loadingCall !== null) loadingCall.loadNs += process.hrtime.bigint() - loading;
    } catch (e) {
      if (e instanceof EsbuildPending) {
        fn.graph = null;
        graph.modules.clear(); // partly loaded: start again once esbuild is there
        if (folder.graph === graph) folder.graph = null;
        throw e;
      }
      fn.loadError = e instanceof PlainError ? e : new PlainError(`handler failed to load: ${describe(e)}`, { cause: e });
      throw fn.loadError;
    }
  }
  return fn.exports;
}

/** The folder's graph was dropped (a file changed): this entry loads again. */
function fresh(fn) {
  fn.graph = fn.folder.graph;
  fn.exports = undefined;
  fn.loadError = null;
  fn.handler = null;
  fn.handlerName = '';
  fn.quiet = false;
}

function describe(e) {
  if (e instanceof Error) return `${e.name}: ${e.message}`;
  return String(e);
}

// ---------------------------------------------------------------------------------------------
// Calls

/** Output of one call; `als`: the call runs inside ALS; `asyncOutput`: written from an async
 * continuation. */
class Capture {
  constructor(fn, als) {
    this.fn = fn;
    this.stdout = '';
    this.stderr = '';
    this.open = true;
    this.als = als;
    this.asyncOutput = false;
    this.untimed = false;
    this.env = null; // event.env: what process.env shows this call over the process's own
    this.sandbox = null; // the strict sandbox policy of a `strict_fs` call
    this.dropped = { stdout: 0, stderr: 0 }; // bytes past MAX_OUTPUT
  }
}

// ---------------------------------------------------------------------------------------------
// Runaway calls
//
// A handler that never yields (`while (true) {}`, an endless microtask chain) blocks the one
// event loop: no other call, cancel or timer runs again. A watchdog thread, started with the
// first call that has a timeout (event.context.timeout_ms), watches a heartbeat the loop writes
// every HEARTBEAT_MS. When the loop has missed its beats for 3 × RECLAIM_GRACE_MS and every call
// started so far is past its deadline + RECLAIM_GRACE_MS (the engine gave up on all of them, so
// nothing in flight is lost), it kills the process with SIGKILL and the engine restarts the
// daemon. (Stopping just the JavaScript through the inspector's Runtime.terminateExecution was
// tried: Node 20 aborts on its corrupted async-hook stack afterwards.) A call that yields to the
// loop while burning CPU is not stopped.

const HEARTBEAT_MS = 100;
const RECLAIM_GRACE_MS = 100;
let watchdog = null; // Float64Array [heartbeat, latest deadline, untimed] shared with the watchdog
let active = null; // Int32Array [timed calls in flight > 0]: the watchdog sleeps while it is 0
let heartbeat = null; // the heartbeat interval, running only while timed calls are in flight
let timedInFlight = 0;
let untimed = 0; // calls in flight without a timeout (direct clients): never reclaimed

// The watchdog thread blocks in Atomics.wait while no timed call is in flight, so an idle
// daemon wakes nobody (a desktop app should let the CPU sleep).
const WATCHDOG_SRC = `
const fs = require('fs');
const { workerData } = require('worker_threads');
const shared = new Float64Array(workerData.sab, 0, 3);
const active = new Int32Array(workerData.sab, 24, 2);
const grace = workerData.grace;
for (;;) {
  Atomics.wait(active, 0, 0); // until a timed call is in flight
  Atomics.wait(active, 1, 0, grace); // a pause: index 1 is never notified
  const now = Date.now();
  if (Atomics.load(active, 0) === 0 || now - shared[0] < 3 * grace || now < shared[1] + grace || shared[2] > 0) continue;
  try {
    fs.writeSync(2, 'fastfn node daemon: a handler blocked the event loop past its timeout; exiting (the engine restarts the daemon)\\n');
  } catch {}
  process.kill(process.pid, 'SIGKILL');
}
`;

function startWatchdog() {
  const { Worker } = require('worker_threads');
  const sab = new SharedArrayBuffer(32);
  watchdog = new Float64Array(sab, 0, 3);
  active = new Int32Array(sab, 24, 2);
  watchdog[2] = untimed;
  const w = new Worker(WATCHDOG_SRC, { eval: true, workerData: { sab, grace: RECLAIM_GRACE_MS }, stdout: true, stderr: true });
  w.on('error', () => {});
  w.unref();
}

/** Notes the deadline of a call that is starting (see "Runaway calls"); false when it has
 * none (counted in `untimed` until it finishes). */
function noteDeadline(event) {
  const ctx = event.context;
  const t = ctx !== null && typeof ctx === 'object' ? ctx.timeout_ms : undefined;
  if (typeof t !== 'number' || !(t > 0)) {
    untimed++;
    if (watchdog !== null) watchdog[2] = untimed;
    return false;
  }
  if (watchdog === null) startWatchdog();
  const now = Date.now();
  if (now + t > watchdog[1]) watchdog[1] = now + t;
  if (timedInFlight++ === 0) {
    watchdog[0] = now;
    heartbeat = setInterval(() => { watchdog[0] = Date.now(); }, HEARTBEAT_MS);
    heartbeat.unref();
    Atomics.store(active, 0, 1);
    Atomics.notify(active, 0);
  }
  return true;
}

/** A call noted by noteDeadline ended (its reply, or no reply at all). */
function callEnded(cap) {
  if (cap.untimed) {
    untimed--;
    if (watchdog !== null) watchdog[2] = untimed;
  } else if (--timedInFlight === 0) {
    clearInterval(heartbeat);
    Atomics.store(active, 0, 0);
  }
}

// ---------------------------------------------------------------------------------------------
// process.env during calls
//
// FastFN's runtime contract puts a function's env (gateway env + fn.env.json) in process.env
// while its handler runs. Mutating the one process.env would leak it into concurrent calls of
// other functions, so process.env becomes a view: the current call's env (the synchronous
// call's capture, else the ALS store of an async continuation) over the real environment.
// Writes go to the real environment.

const realEnv = process.env;
const hasOwn = Object.prototype.hasOwnProperty;

function callEnv() {
  const cap = syncCapture !== null ? syncCapture : alsInFlight > 0 ? als.getStore() : undefined;
  return cap !== undefined && cap !== null ? cap.env : null;
}

function installEnvView() {
  process.env = new Proxy(realEnv, {
    get(target, key, receiver) {
      if (typeof key === 'string') {
        const env = callEnv();
        if (env !== null && hasOwn.call(env, key)) return String(env[key]);
      }
      return Reflect.get(target, key, receiver);
    },
    has(target, key) {
      const env = typeof key === 'string' ? callEnv() : null;
      return (env !== null && hasOwn.call(env, key)) || Reflect.has(target, key);
    },
    ownKeys(target) {
      const env = callEnv();
      const keys = Reflect.ownKeys(target);
      if (env === null) return keys;
      const seen = new Set(keys);
      for (const k of Object.keys(env)) if (!seen.has(k)) keys.push(k);
      return keys;
    },
    getOwnPropertyDescriptor(target, key) {
      const env = typeof key === 'string' ? callEnv() : null;
      if (env !== null && hasOwn.call(env, key)) {
        return { value: String(env[key]), writable: true, enumerable: true, configurable: true };
      }
      return Reflect.getOwnPropertyDescriptor(target, key);
    },
  });
}


// ---------------------------------------------------------------------------------------------
// Strict sandbox (strict_fs)
//
// A call whose request has `"strict_fs": true` runs inside ALS with a policy on its capture. The
// path-taking functions of `fs`, `fs.promises` and every `child_process` spawner are wrapped
// once, on the first strict call: under a policy they refuse (EACCES) files outside the
// function folder, FN_STRICT_FS_ALLOW, /tmp and (read only) node_modules folders and system
// certificate/zoneinfo paths, any access to a protected platform file, and every spawn. The
// policy follows the call (its synchronous code, then ALS); other calls see none, and a daemon
// without strict calls never wraps anything. What stays open is in docs/compat.md.

const PROTECTED_FILES = new Set(['fn.config.json', 'fn.env.json', 'fn.test_events.json']);
const SYSTEM_READ = ['/etc/ssl/', '/etc/pki/', '/usr/share/zoneinfo/', '/dev/null/', '/dev/urandom/'];
// Which arguments are paths: r = read, w = write, o = open (flags in the next argument).
const FS_PATH_ARGS = {
  readFile: 'r', readFileSync: 'r', readdir: 'r', readdirSync: 'r', opendir: 'r', opendirSync: 'r',
  readlink: 'r', readlinkSync: 'r', createReadStream: 'r', watch: 'r', watchFile: 'r',
  open: 'o', openSync: 'o', openAsBlob: 'r',
  writeFile: 'w', writeFileSync: 'w', appendFile: 'w', appendFileSync: 'w', createWriteStream: 'w',
  mkdir: 'w', mkdirSync: 'w', mkdtemp: 'w', mkdtempSync: 'w', rm: 'w', rmSync: 'w', rmdir: 'w',
  rmdirSync: 'w', unlink: 'w', unlinkSync: 'w', truncate: 'w', truncateSync: 'w', chmod: 'w',
  chmodSync: 'w', chown: 'w', chownSync: 'w', utimes: 'w', utimesSync: 'w', lchown: 'w',
  lchownSync: 'w', lutimes: 'w', lutimesSync: 'w',
  rename: 'ww', renameSync: 'ww', copyFile: 'rw', copyFileSync: 'rw', cp: 'rw', cpSync: 'rw',
  symlink: 'ww', symlinkSync: 'ww', link: 'ww', linkSync: 'ww',
};
const SPAWNERS = ['spawn', 'spawnSync', 'exec', 'execSync', 'execFile', 'execFileSync', 'fork'];
let sandboxWrapped = false;
let allowRoots = null;

function callSandbox() {
  const cap = syncCapture !== null ? syncCapture : alsInFlight > 0 ? als.getStore() : undefined;
  return cap !== undefined && cap !== null ? cap.sandbox : null;
}

function rootOf(p) {
  return p.endsWith(path.sep) ? p : p + path.sep;
}

// dir -> policy: two realpath calls per call were a large share of a trivial call's time. A
// folder later swapped for a symlink keeps its old (real) prefix, which only narrows access.
const policies = new Map();

function sandboxPolicy(dir) {
  let policy = policies.get(dir);
  if (policy === undefined) {
    if (policies.size > 4096) policies.clear();
    policy = buildSandboxPolicy(dir);
    policies.set(dir, policy);
  }
  return policy;
}

function buildSandboxPolicy(dir) {
  if (allowRoots === null) {
    allowRoots = String(process.env.FN_STRICT_FS_ALLOW || '').split(/[,:]/).map((s) => s.trim())
      .filter((s) => path.isAbsolute(s)).map((s) => rootOf(realPath(s)));
  }
  wrapForSandbox();
  const own = rootOf(realPath(dir));
  const write = [own, '/tmp/', ...allowRoots];
  // Shared packs: linked into the node_modules of the functions that name them.
  const packs = rootOf(path.join(realPath(ROOT), '.fastfn', 'packs'));
  return { own, write, read: write.concat(SYSTEM_READ, [packs]) };
}

/** The real path of `p`, or of its nearest existing parent joined with the rest. */
function realPath(p) {
  try {
    return realpathSync(p);
  } catch {
    const parent = path.dirname(p);
    return parent === p ? p : path.join(realPath(parent), path.basename(p));
  }
}

function sandboxDenied(message) {
  const e = new Error(`strict sandbox: ${message}`);
  e.code = 'EACCES';
  return e;
}

function checkPath(policy, target, kind) {
  let p = target;
  if (p instanceof URL) p = p.protocol === 'file:' ? require('url').fileURLToPath(p) : null;
  else if (Buffer.isBuffer(p)) p = p.toString();
  if (typeof p !== 'string') return; // a file descriptor: checked when it was opened
  const abs = path.resolve(p);
  const real = realPath(abs);
  if (PROTECTED_FILES.has(path.basename(abs)) || PROTECTED_FILES.has(path.basename(real))) {
    throw sandboxDenied(`${p} is a protected platform file`);
  }
  const probe = rootOf(real);
  if (kind === 'r' && probe.includes(`${path.sep}node_modules${path.sep}`)) return;
  const roots = kind === 'w' ? policy.write : policy.read;
  if (!roots.some((r) => probe.startsWith(r))) throw sandboxDenied(`${p} is outside the function folder`);
}

function openKind(flags) {
  if (typeof flags === 'number') return flags & (fs.constants.O_WRONLY | fs.constants.O_RDWR | fs.constants.O_CREAT) ? 'w' : 'r';
  return typeof flags === 'string' && /[wa+]/.test(flags) ? 'w' : 'r';
}

let realpathSync = null;

function wrapForSandbox() {
  if (sandboxWrapped) return;
  sandboxWrapped = true;
  realpathSync = fs.realpathSync;
  const wrap = (obj, name, kinds) => {
    const orig = obj[name];
    if (typeof orig !== 'function') return;
    obj[name] = function sandboxed(...args) {
      const policy = callSandbox();
      if (policy !== null) {
        for (let i = 0; i < kinds.length; i++) {
          checkPath(policy, args[i], kinds[i] === 'o' ? openKind(args[i + 1]) : kinds[i]);
        }
      }
      return orig.apply(this, args);
    };
  };
  for (const [name, kinds] of Object.entries(FS_PATH_ARGS)) {
    wrap(fs, name, kinds);
    wrap(fs.promises, name, kinds);
  }
  const cp = require('child_process');
  for (const name of SPAWNERS) {
    const orig = cp[name];
    cp[name] = function spawner(...args) {
      if (callSandbox() !== null) throw sandboxDenied(`child_process.${name} is not allowed`);
      return orig.apply(this, args);
    };
  }
}

function callHandler(h, event, params) {
  return h.length > 1 ? h(event, params) : h(event);
}

function handleRequest(socket, req) {
  const fn = lookup(req);
  if (fn === null) return send(socket, FRAME_NOT_FOUND);
  const adapter = req.adapter;
  let kind = null; // native
  if (adapter !== undefined && adapter !== null && adapter !== 'native') {
    kind = typeof adapter === 'string' ? ADAPTERS.get(adapter) : undefined;
    if (kind === undefined) return send(socket, frame(errorReply(500, `unknown adapter: ${adapter} (want native, aws-lambda or cloudflare-worker)`)));
  }
  let event = req.event;
  if (event === null || typeof event !== 'object' || Array.isArray(event)) event = {};
  const env = fn.folder.envNow();
  event.env = env === null ? (event.env !== null && typeof event.env === 'object' ? event.env : {}) : Object.assign({}, event.env, env);
  event.version = typeof req.version === 'string' && req.version !== '' ? req.version : 'default';
  let params = event.params;
  if (params === null || typeof params !== 'object') params = event.path_params !== null && typeof event.path_params === 'object' ? event.path_params : {};
  const name = typeof req.handler === 'string' && req.handler !== '' ? req.handler : 'handler';

  // A call with env runs inside ALS, so process.env finds its env in async continuations too.
  const hasEnv = env !== null || (event.env !== null && typeof event.env === 'object' && Object.keys(event.env).length > 0);
  // A strict call runs inside ALS too, so its async continuations keep the sandbox.
  const strict = req.strict_fs === true;
  const cap = new Capture(fn, !fn.quiet || hasEnv || strict);
  if (hasEnv) cap.env = event.env;
  if (strict) cap.sandbox = sandboxPolicy(fn.dir);
  cap.untimed = !noteDeadline(event);
  if (cap.als) alsInFlight++; // until finish(), whatever happens
  let result;
  syncCapture = cap;
  try {
    if (kind === null) {
      const h = handlerOf(fn, name);
      result = cap.als ? als.run(cap, callHandler, h, event, params) : callHandler(h, event, params);
    } else {
      result = cap.als ? als.run(cap, callAdapter, kind, fn, name, event, params) : callAdapter(kind, fn, name, event, params);
    }
  } catch (e) {
    syncCapture = null;
    if (e instanceof EsbuildPending) {
      // The call runs again once esbuild is installed; this attempt leaves no trace.
      undo(cap);
      return e.promise.then(() => handleRequest(socket, req));
    }
    return finish(socket, cap, failure(e, cap));
  }
  syncCapture = null;
  if (result !== null && typeof result === 'object' && typeof result.then === 'function') {
    if (!cap.als) plainInFlight.add(cap);
    return settleAsync(socket, cap, result, kind === 'aws-lambda' ? lambdaReply : toReply);
  }
  let reply;
  try {
    reply = kind === 'aws-lambda' ? lambdaReply(result) : toReply(result);
  } catch (e) {
    reply = failure(e, cap);
  }
  if (typeof reply.then === 'function') return settleAsync(socket, cap, reply, toReply);
  finish(socket, cap, reply);
}

async function settleAsync(socket, cap, pending, convert) {
  let reply;
  try {
    const value = await pending;
    if (pending instanceof ReplyPromise) reply = value;
    else {
      reply = convert(value);
      if (reply instanceof ReplyPromise) reply = await reply;
    }
  } catch (e) {
    reply = failure(e, cap);
  }
  finish(socket, cap, reply);
}

/** Marks promises that already resolve to a reply (from a Response). */
class ReplyPromise extends Promise {}

function failure(e, cap) {
  if (e instanceof PlainError) {
    const stack = e.cause instanceof Error ? e.cause.stack : undefined;
    if (stack) cap.stderr += stack + '\n';
    return errorReply(500, e.message);
  }
  cap.stderr += (e instanceof Error && e.stack ? e.stack : String(e)) + '\n';
  return errorReply(500, e instanceof Error ? e.message || e.name : String(e));
}

/** Forgets a call's capture without replying (see EsbuildPending). */
function undo(cap) {
  cap.open = false;
  if (cap.als) alsDone();
  callEnded(cap);
}

function finish(socket, cap, reply) {
  cap.open = false;
  callEnded(cap);
  if (cap.als) {
    alsDone();
    if (!cap.asyncOutput) cap.fn.quiet = true;
  } else {
    plainInFlight.delete(cap);
  }
  if (cap.stdout !== '') reply.stdout = bounded(cap, 'stdout');
  if (cap.stderr !== '') reply.stderr = bounded(cap, 'stderr');
  if (socket instanceof V2Call) return socket.sendReply(reply);
  let buf;
  try {
    buf = frame(reply);
  } catch (e) {
    buf = frame(errorReply(500, `invalid handler response: ${describe(e)}`));
  }
  send(socket, buf);
}

// ---------------------------------------------------------------------------------------------
// Handler result -> reply

function looksLikeHtml(s) {
  return /^\s*<[!a-zA-Z]/.test(s);
}

function isBytes(v) {
  return v instanceof Uint8Array || v instanceof ArrayBuffer;
}

function toBase64(v) {
  if (v instanceof ArrayBuffer) return Buffer.from(v).toString('base64');
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');
}

function isResponse(v) {
  return (typeof Response === 'function' && v instanceof Response) ||
    (typeof v.arrayBuffer === 'function' && typeof v.status === 'number' && v.headers !== null && typeof v.headers === 'object' && typeof v.headers.forEach === 'function');
}

function isEnvelope(v) {
  for (let i = 0; i < ENVELOPE_KEYS.length; i++) if (ENVELOPE_KEYS[i] in v) return true;
  return false;
}

/** Reply for a handler's return value (a ReplyPromise for a Response). */
function toReply(v) {
  if (v === undefined || v === null) return { status: 200, headers: {}, body: '' };
  if (typeof v === 'string') {
    return { status: 200, headers: { 'Content-Type': looksLikeHtml(v) ? 'text/html; charset=utf-8' : 'text/plain; charset=utf-8' }, body: v };
  }
  if (typeof v !== 'object') {
    const json = JSON.stringify(v); // undefined for a function or symbol
    return json === undefined ? { status: 200, headers: {}, body: '' } : { status: 200, headers: { 'Content-Type': 'application/json' }, body: json };
  }
  if (isBytes(v)) return { status: 200, headers: { 'Content-Type': 'application/octet-stream' }, is_base64: true, body_base64: toBase64(v) };
  if (Array.isArray(v)) return { status: 200, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(v) };
  if (isResponse(v)) return ReplyPromise.resolve(fromResponse(v));
  if (!isEnvelope(v)) return { status: 200, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(v) };
  return fromEnvelope(v);
}

function statusOf(raw) {
  if (raw === undefined || raw === null) return 200;
  const n = typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : raw;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 100 || n > 599) {
    throw new PlainError(`invalid handler response: status must be an integer 100..599, got ${JSON.stringify(raw)}`);
  }
  return n;
}

function headersOf(raw) {
  const out = {};
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return out;
  for (const k of Object.keys(raw)) {
    const v = raw[k];
    if (v === undefined || v === null) continue;
    out[k] = Array.isArray(v) ? v.map(String) : String(v);
  }
  return out;
}

function hasHeader(headers, lower) {
  for (const k in headers) if (k.toLowerCase() === lower) return true;
  return false;
}

function fromEnvelope(v) {
  const status = statusOf(v.status !== undefined ? v.status : v.statusCode);
  const headers = headersOf(v.headers);
  const reply = { status, headers };
  if (v.proxy !== undefined && v.proxy !== null) reply.proxy = v.proxy;
  const body = v.body;
  if (typeof v.body_base64 === 'string') {
    reply.is_base64 = true;
    reply.body_base64 = v.body_base64;
  } else if (body === undefined || body === null) {
    reply.body = '';
  } else if (typeof body === 'string') {
    if (v.is_base64 === true || v.isBase64Encoded === true) {
      reply.is_base64 = true;
      reply.body_base64 = body;
    } else {
      reply.body = body;
    }
  } else if (isBytes(body)) {
    reply.is_base64 = true;
    reply.body_base64 = toBase64(body);
  } else if (typeof body === 'object') {
    if (isCsv(headers)) reply.body = toCsv(body);
    else {
      reply.body = JSON.stringify(body);
      if (!hasHeader(headers, 'content-type')) headers['Content-Type'] = 'application/json';
    }
  } else {
    reply.body = String(body);
  }
  return reply;
}

// An object or array body with `Content-Type: text/csv` becomes CSV text, as FastFN's node
// daemon does: rows of arrays as they are; rows of objects under a header line (the first
// row's keys); a lone object as header + one row; other values one per line. Cells holding
// `,`, `"`, CR or LF are quoted (`"` doubled); objects in cells are JSON; null/undefined empty.

function isCsv(headers) {
  for (const k of Object.keys(headers)) {
    if (k.toLowerCase() === 'content-type') {
      const v = headers[k];
      return String(Array.isArray(v) ? v[0] : v).toLowerCase().includes('text/csv');
    }
  }
  return false;
}

function csvCell(v) {
  const s = v === null || v === undefined ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function toCsv(v) {
  const row = (keys, o) => keys.map((k) => csvCell(o[k])).join(',');
  if (Array.isArray(v)) {
    if (v.length === 0) return '';
    if (Array.isArray(v[0])) return v.map((r) => (Array.isArray(r) ? r.map(csvCell).join(',') : csvCell(r))).join('\n');
    if (v.every((r) => r !== null && typeof r === 'object' && !Array.isArray(r))) {
      const keys = Object.keys(v[0]);
      return [keys.map(csvCell).join(','), ...v.map((r) => row(keys, r))].join('\n');
    }
    return v.map(csvCell).join('\n');
  }
  const keys = Object.keys(v);
  return keys.length === 0 ? '' : `${keys.map(csvCell).join(',')}\n${row(keys, v)}`;
}

const TEXT_TYPE = /^(text\/|application\/(json|javascript|xml|x-www-form-urlencoded)|[^;]*\+(json|xml))/i;

async function fromResponse(r) {
  const headers = {};
  r.headers.forEach((value, key) => {
    if (key !== 'set-cookie') headers[key] = value;
  });
  const cookies = typeof r.headers.getSetCookie === 'function' ? r.headers.getSetCookie() : [];
  if (cookies.length === 1) headers['set-cookie'] = cookies[0];
  else if (cookies.length > 1) headers['set-cookie'] = cookies;
  const bytes = Buffer.from(await r.arrayBuffer());
  const type = headers['content-type'];
  const reply = { status: statusOf(r.status), headers };
  if ((type === undefined || TEXT_TYPE.test(type)) && isUtf8(bytes)) reply.body = bytes.toString('utf8');
  else {
    reply.is_base64 = true;
    reply.body_base64 = bytes.toString('base64');
  }
  return reply;
}

// ---------------------------------------------------------------------------------------------
// Adapters (invoke.adapter): only reached when a request's `adapter` is not `native`. Mappings
// and choices: README.md, "Adapters".

const ADAPTERS = new Map([
  ['aws-lambda', 'aws-lambda'], ['lambda', 'aws-lambda'], ['apigw-v2', 'aws-lambda'], ['api-gateway-v2', 'aws-lambda'],
  ['cloudflare-worker', 'cloudflare-worker'], ['worker', 'cloudflare-worker'], ['workers', 'cloudflare-worker'],
]);
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

function objectOr(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? v : {};
}

function tsOf(event) {
  return Number.isInteger(event.ts) && event.ts > 0 ? event.ts : Date.now();
}

function two(n) {
  return n < 10 ? `0${n}` : String(n);
}

function callAdapter(kind, fn, name, event, params) {
  if (kind === 'aws-lambda') {
    const h = handlerOf(fn, name);
    const timeout = objectOr(event.context).timeout_ms;
    const deadline = tsOf(event) + (Number.isInteger(timeout) ? timeout : 2500);
    return callLambda(h, lambdaEvent(event), lambdaContext(event, deadline));
  }
  const fname = name === 'handler' ? 'fetch' : name;
  const exp = exportsOf(fn);
  const def = exp !== null && exp !== undefined ? exp.default : undefined;
  const self = def !== null && def !== undefined && typeof def[fname] === 'function' ? def : exp;
  if (self === null || self === undefined || typeof self[fname] !== 'function') {
    throw new PlainError(`worker module exports no ${fname}(request, env, ctx): use export default { ${fname} } or module.exports = { ${fname} }`);
  }
  return self[fname](workerRequest(event), event.env, workerContext(params));
}

/** API Gateway HTTP API (payload format 2.0) event from a FastFN event. */
function lambdaEvent(event) {
  const headers = {};
  const cookies = [];
  const rawHeaders = objectOr(event.headers);
  for (const k of Object.keys(rawHeaders)) {
    const name = k.toLowerCase();
    const values = Array.isArray(rawHeaders[k]) ? rawHeaders[k] : [rawHeaders[k]];
    if (name === 'cookie') {
      for (const v of values) for (const c of String(v).split(';')) if (c.trim() !== '') cookies.push(c.trim());
      continue;
    }
    headers[name] = values.map(String).join(',');
  }
  const path = typeof event.path === 'string' ? event.path : '/';
  const rawPath = typeof event.raw_path === 'string' ? event.raw_path : path;
  const q = rawPath.indexOf('?');
  const query = {};
  const rawQuery = objectOr(event.query);
  for (const k of Object.keys(rawQuery)) {
    const values = Array.isArray(rawQuery[k]) ? rawQuery[k] : [rawQuery[k]];
    query[k] = values.map((x) => (x === true ? '' : String(x))).join(',');
  }
  const params = objectOr(event.params);
  const client = objectOr(event.client);
  const context = objectOr(event.context);
  const ts = tsOf(event);
  const t = new Date(ts);
  const host = headers.host !== undefined ? headers.host : 'localhost';
  const method = typeof event.method === 'string' ? event.method : 'GET';
  const out = {
    version: '2.0',
    routeKey: '$default',
    rawPath: path,
    rawQueryString: q >= 0 ? rawPath.slice(q + 1) : '',
    headers,
    requestContext: {
      accountId: 'anonymous',
      apiId: 'fastfn',
      domainName: host,
      domainPrefix: host.split('.')[0],
      http: { method, path, protocol: 'HTTP/1.1', sourceIp: client.ip || '', userAgent: client.ua || headers['user-agent'] || '' },
      requestId: String(context.request_id || event.id || ''),
      routeKey: '$default',
      stage: '$default',
      time: `${two(t.getUTCDate())}/${MONTHS[t.getUTCMonth()]}/${t.getUTCFullYear()}:${two(t.getUTCHours())}:${two(t.getUTCMinutes())}:${two(t.getUTCSeconds())} +0000`,
      timeEpoch: ts,
    },
    isBase64Encoded: false,
  };
  if (cookies.length > 0) out.cookies = cookies;
  if (Object.keys(query).length > 0) out.queryStringParameters = query;
  if (Object.keys(params).length > 0) {
    out.pathParameters = {};
    for (const k of Object.keys(params)) out.pathParameters[k] = String(params[k]);
  }
  if (typeof event.body_base64 === 'string') {
    out.body = event.body_base64;
    out.isBase64Encoded = true;
  } else if (typeof event.body === 'string') {
    out.body = event.body;
  }
  return out;
}

/** The Lambda context object (Node names, as AWS passes them). */
function lambdaContext(event, deadline) {
  const c = objectOr(event.context);
  const name = String(c.function_name || '');
  return {
    awsRequestId: String(c.request_id || event.id || ''),
    functionName: name,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:local:000000000000:function:${name}`,
    memoryLimitInMB: '128',
    logGroupName: `/aws/lambda/${name}`,
    logStreamName: 'fastfn',
    callbackWaitsForEmptyEventLoop: true,
    env: event.env, // FastFN extra: fn.env.json (process.env is the daemon's, shared)
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
  };
}

/** `handler(event, context)`; with 3+ declared parameters also a callback, as Lambda does. */
function callLambda(h, event, context) {
  if (h.length < 3) return h(event, context);
  return new Promise((resolve, reject) => {
    const r = h(event, context, (err, res) => (err !== null && err !== undefined ? reject(err) : resolve(res)));
    if (r !== null && typeof r === 'object' && typeof r.then === 'function') r.then(resolve, reject);
  });
}

/** Lambda HTTP API v2 reply rules: an object with `statusCode` is a structured response, any
 * other plain object is JSON 200; other values follow the native shorthand rules. */
function lambdaReply(v) {
  if (v === null || typeof v !== 'object' || Array.isArray(v) || isBytes(v) || isResponse(v)) return toReply(v);
  if (!('statusCode' in v)) return { status: 200, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(v) };
  const headers = headersOf(v.multiValueHeaders);
  const single = headersOf(v.headers);
  for (const k of Object.keys(single)) {
    for (const old of Object.keys(headers)) if (old.toLowerCase() === k.toLowerCase()) delete headers[old];
    headers[k] = single[k];
  }
  const cookies = v.cookies;
  if (cookies !== undefined && cookies !== null) {
    if (!Array.isArray(cookies)) throw new PlainError('invalid handler response: cookies must be an array of strings');
    if (cookies.length > 0) {
      let key = 'Set-Cookie';
      const values = [];
      for (const k of Object.keys(headers)) {
        if (k.toLowerCase() !== 'set-cookie') continue;
        key = k;
        values.push(...(Array.isArray(headers[k]) ? headers[k] : [headers[k]]));
        delete headers[k];
      }
      headers[key] = values.concat(cookies.map(String));
    }
  }
  return fromEnvelope({ statusCode: v.statusCode, headers, body: v.body, isBase64Encoded: v.isBase64Encoded });
}

/** The WHATWG Request a worker's `fetch` gets: `http://<host><raw_path>`, method, headers,
 * body (the exact bytes: event.body_base64 when present; none for GET/HEAD). */
function workerRequest(event) {
  const headers = new Headers();
  const rawHeaders = objectOr(event.headers);
  for (const k of Object.keys(rawHeaders)) {
    const v = rawHeaders[k];
    const values = !Array.isArray(v) ? [v] : k.toLowerCase() === 'cookie' ? [v.join('; ')] : v;
    for (const x of values) {
      try {
        headers.append(k, String(x));
      } catch {
        // Not a valid WHATWG header name or value: left out.
      }
    }
  }
  const rawPath = typeof event.raw_path === 'string' ? event.raw_path : typeof event.path === 'string' ? event.path : '/';
  const method = typeof event.method === 'string' ? event.method : 'GET';
  let body = null;
  if (method !== 'GET' && method !== 'HEAD') {
    if (typeof event.body_base64 === 'string') body = Buffer.from(event.body_base64, 'base64');
    else if (typeof event.body === 'string') body = event.body;
  }
  let url;
  try {
    url = new URL(`http://${headers.get('host') || 'localhost'}${rawPath}`);
  } catch {
    url = new URL(rawPath.startsWith('/') ? rawPath : '/', 'http://localhost');
  }
  return new Request(url, { method, headers, body });
}

/** A worker's `ctx`: `waitUntil(promise)` lets it run on after the reply (a rejection is written
 * to the daemon's stderr, never to a reply), `passThroughOnException()` does nothing, and
 * `params` (FastFN extra) holds the route's path parameters. */
function workerContext(params) {
  return {
    waitUntil(promise) {
      Promise.resolve(promise).catch((e) => {
        process.stderr.write(`waitUntil: ${e instanceof Error && e.stack ? e.stack : String(e)}\n`);
      });
    },
    passThroughOnException() {},
    params,
  };
}

// ---------------------------------------------------------------------------------------------
// Frames

let MAX_FRAME = DEFAULT_MAX_FRAME;

/** Connection state lives on the socket: `fnChunks` (bytes so far, when the first chunk was not
 * a whole frame), `fnHave` (their length), `fnNeed` (length to wait for), `fnDone`. */
function onData(chunk) {
  const socket = this;
  if (socket.fnDone) return;
  let buf = chunk;
  if (socket.fnChunks !== null) {
    socket.fnChunks.push(chunk);
    socket.fnHave += chunk.length;
    if (socket.fnHave < socket.fnNeed) return;
    buf = Buffer.concat(socket.fnChunks, socket.fnHave);
    socket.fnChunks = null;
  }
  if (buf.length < 4) return waitFor(socket, buf, 4);
  const len = buf.readUInt32BE(0);
  if (len === 0 || len > MAX_FRAME) {
    socket.fnDone = true;
    return send(socket, FRAME_BAD_LENGTH);
  }
  if (buf.length < 4 + len) return waitFor(socket, buf, 4 + len);
  socket.fnDone = true;
  let req;
  try {
    req = JSON.parse(buf.toString('utf8', 4, 4 + len));
  } catch {
    return send(socket, FRAME_BAD_JSON);
  }
  if (req === null || typeof req !== 'object' || Array.isArray(req)) return send(socket, FRAME_BAD_JSON);
  if (req.fastfn_hello === 2) return upgrade(socket, buf.subarray(4 + len));
  try {
    handleRequest(socket, req);
  } catch (e) {
    // Only daemon bugs land here (e.g. fs errors while resolving); still one reply.
    send(socket, frame(errorReply(500, `runtime error: ${describe(e)}`)));
  }
}

function waitFor(socket, buf, need) {
  socket.fnChunks = [buf];
  socket.fnHave = buf.length;
  socket.fnNeed = need;
}

function onSocketError() {
  this.destroy();
}

function onConnection(socket) {
  socket.fnChunks = null;
  socket.fnHave = 0;
  socket.fnNeed = 0;
  socket.fnDone = false;
  socket.on('data', onData);
  socket.on('error', onSocketError);
}

// ---------------------------------------------------------------------------------------------
// Protocol v2 (docs/protocol.md): after a hello, a connection carries multiplexed frames
// `u32 len | u32 id | u8 kind | u32 meta_len | meta JSON | raw body` both ways. Every call runs
// as its own task (the event loop interleaves them, so a slow call never holds back a fast one)
// and its reply is written with one socket.write as soon as it is ready: writes are queued
// whole by the stream, so two replies' bytes never interleave.

const KIND_CALL = 1;
const KIND_REPLY = 2;
const KIND_CANCEL = 3;
const V2_HEADER = 13; // len + id + kind + meta_len

function replyFrameV2(id, meta, body) {
  const metaLen = Buffer.byteLength(meta);
  const bodyLen = body === null ? 0 : body.length;
  const buf = Buffer.allocUnsafe(V2_HEADER + metaLen + bodyLen);
  buf.writeUInt32BE(9 + metaLen + bodyLen, 0);
  buf.writeUInt32BE(id, 4);
  buf[8] = KIND_REPLY;
  buf.writeUInt32BE(metaLen, 9);
  buf.write(meta, V2_HEADER, metaLen, 'utf8');
  if (bodyLen > 0) body.copy(buf, V2_HEADER + metaLen);
  return buf;
}

const TOO_LARGE = JSON.stringify(errorReply(413, 'payload too large'));
const MAX_REPLY = 10 * 1024 * 1024; // the engine refuses larger reply frames (as v1)

/** One call of a v2 connection: the `socket` handleRequest() and finish() answer to. */
class V2Call {
  constructor(conn, id) {
    this.conn = conn;
    this.id = id;
    this.cancelled = false;
    this.started = 0n; // hrtime when the call started (0n: never started)
    this.loadNs = 0n; // time spent loading its handler's module graph (a cold call)
  }

  /** A reply object: a binary body goes raw in the frame's body instead of base64 in meta. */
  sendReply(reply) {
    // The call's time in this daemon, for the engine's waterfall (`handler` stage).
    if (this.started !== 0n) reply.handler_us = Number((process.hrtime.bigint() - this.started) / 1000n);
    // The part of it a cold call spent loading the handler (the engine's `cold` stage).
    if (this.loadNs !== 0n) reply.load_us = Number(this.loadNs / 1000n);
    let body = null;
    if (reply.is_base64 === true && typeof reply.body_base64 === 'string') {
      body = Buffer.from(reply.body_base64, 'base64');
      delete reply.is_base64;
      delete reply.body_base64;
    }
    let meta;
    try {
      meta = JSON.stringify(reply);
    } catch (e) {
      meta = JSON.stringify(errorReply(500, `invalid handler response: ${describe(e)}`));
      body = null;
    }
    const bodyLen = body === null ? 0 : body.length;
    if (meta.length + bodyLen > MAX_REPLY / 3 && Buffer.byteLength(meta) + bodyLen > MAX_REPLY) {
      meta = JSON.stringify(errorReply(500, 'response too large'));
      body = null;
    }
    this.write(replyFrameV2(this.id, meta, body));
  }

  /** A prebuilt v1 reply frame: its JSON is the meta as it stands. */
  sendFrame(v1frame) {
    this.write(replyFrameV2(this.id, v1frame.toString('utf8', 4), null));
  }

  write(buf) {
    const conn = this.conn;
    if (conn.calls.get(this.id) === this) conn.calls.delete(this.id);
    if (this.cancelled || conn.socket.destroyed) return; // nobody waits for it any more
    conn.socket.write(buf);
  }
}

/** Per v2 connection: unparsed bytes (`chunks`, `have`), what the parser waits for (`need`),
 * bytes of an over-limit call still to skip, calls in flight by id, calls parsed but not yet
 * started. */
class V2Conn {
  constructor(socket) {
    this.socket = socket;
    this.chunks = [];
    this.have = 0;
    this.need = 4;
    this.skip = 0;
    this.calls = new Map();
    this.parsed = [];
    this.scheduled = false;
  }

  onData(chunk) {
    if (this.skip > 0) {
      if (chunk.length <= this.skip) {
        this.skip -= chunk.length;
        return;
      }
      chunk = chunk.subarray(this.skip);
      this.skip = 0;
    }
    this.chunks.push(chunk);
    this.have += chunk.length;
    if (this.have < this.need) return;
    let buf = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, this.have);
    this.chunks = [];
    this.have = 0;
    let off = 0;
    while (true) {
      const left = buf.length - off;
      if (left < 4) {
        this.need = 4;
        break;
      }
      const len = buf.readUInt32BE(off);
      if (len < 9) return this.close(); // protocol error
      if (left < V2_HEADER) {
        this.need = V2_HEADER;
        break;
      }
      const id = buf.readUInt32BE(off + 4);
      const kind = buf[off + 8];
      const metaLen = buf.readUInt32BE(off + 9);
      if (metaLen > len - 9 || id === 0 || kind < KIND_CALL || kind > KIND_CANCEL || kind === KIND_REPLY) {
        return this.close(); // protocol error
      }
      if (len > MAX_FRAME) {
        // Over the limit: skip its bytes (not buffered) and answer 413 for that id.
        if (kind === KIND_CALL) this.socket.write(replyFrameV2(id, TOO_LARGE, null));
        const rest = len - 9;
        const here = Math.min(rest, left - V2_HEADER);
        off += V2_HEADER + here;
        if (here < rest) {
          this.skip = rest - here;
          this.need = 4;
          break;
        }
        continue;
      }
      if (left < 4 + len) {
        this.need = 4 + len;
        break;
      }
      const start = off + V2_HEADER;
      off += 4 + len;
      if (kind === KIND_CANCEL) {
        this.cancel(id);
        continue;
      }
      let req;
      try {
        req = metaLen === 0 ? null : JSON.parse(buf.toString('utf8', start, start + metaLen));
      } catch {
        req = null;
      }
      if (req === null || typeof req !== 'object' || Array.isArray(req)) return this.close();
      const call = new V2Call(this, id);
      this.calls.set(id, call);
      this.parsed.push(call, req, buf.subarray(start + metaLen, off));
    }
    if (off < buf.length) {
      const rest = buf.subarray(off);
      this.chunks.push(rest);
      this.have = rest.length;
    }
    if (this.parsed.length > 0 && !this.scheduled) {
      // Calls start on the next turn, after this poll phase: a function change made before the
      // call was sent has its watch event (same poll phase) seen by then, as for v1 (Folder).
      this.scheduled = true;
      setImmediate(startParsed, this);
    }
  }

  cancel(id) {
    // Best effort: a call not started yet is dropped; a started one just sends no reply.
    const call = this.calls.get(id);
    if (call === undefined) return;
    call.cancelled = true;
    this.calls.delete(id);
  }

  close() {
    this.chunks = [];
    this.parsed = [];
    this.socket.destroy();
  }
}

function startParsed(conn) {
  conn.scheduled = false;
  const p = conn.parsed;
  conn.parsed = [];
  for (let i = 0; i < p.length; i += 3) {
    const call = p[i];
    if (call.cancelled || conn.socket.destroyed) continue;
    const req = p[i + 1];
    const body = p[i + 2];
    if (body.length > 0) {
      // The body exactly as v1 gives it: text, plus base64 of the bytes when not UTF-8.
      let event = req.event;
      if (event === undefined || event === null) event = req.event = {};
      if (typeof event === 'object' && !Array.isArray(event)) {
        event.body = body.toString('utf8');
        if (isUtf8(body)) delete event.body_base64;
        else event.body_base64 = body.toString('base64');
      }
    }
    call.started = process.hrtime.bigint();
    loadingCall = call;
    try {
      handleRequest(call, req);
    } catch (e) {
      call.sendReply(errorReply(500, `runtime error: ${describe(e)}`));
    } finally {
      loadingCall = null;
    }
  }
}

const HELLO = JSON.stringify({ fastfn_hello: 2, runtime: 'node', pid: process.pid });

function onDataV2(chunk) {
  this.fnConn.onData(chunk);
}

/** A v1 frame `{"fastfn_hello": 2}` opened the connection: answer it, then speak v2. */
function upgrade(socket, rest) {
  socket.removeListener('data', onData);
  const conn = new V2Conn(socket);
  socket.fnConn = conn;
  socket.on('data', onDataV2);
  socket.on('close', () => {
    conn.calls.clear();
    conn.parsed = [];
  });
  socket.write(encodeV1(HELLO));
  if (rest.length > 0) conn.onData(rest);
}

function encodeV1(json) {
  const len = Buffer.byteLength(json);
  const buf = Buffer.allocUnsafe(4 + len);
  buf.writeUInt32BE(len, 0);
  buf.write(json, 4, len, 'utf8');
  return buf;
}

// ---------------------------------------------------------------------------------------------
// Start-up and shutdown

function fail(message) {
  process.stderr.write(`fastfn node daemon: ${message}\n`);
  process.exit(1);
}

/** Resolves true when something accepts connections on the socket path. */
function socketIsLive(socketPath) {
  return new Promise((resolve) => {
    const probe = net.createConnection(socketPath);
    const timer = setTimeout(() => { probe.destroy(); resolve(true); }, 1000);
    probe.on('connect', () => { clearTimeout(timer); probe.destroy(); resolve(true); });
    probe.on('error', () => { clearTimeout(timer); resolve(false); });
  });
}

async function main() {
  const socketPath = process.argv[2];
  if (!socketPath) fail('usage: node daemon.js <socket-path>');
  const rawMax = process.env.FN_MAX_FRAME_BYTES;
  if (rawMax !== undefined && rawMax !== '') {
    const n = Number(rawMax);
    if (!Number.isInteger(n) || n <= 0) fail(`FN_MAX_FRAME_BYTES must be a positive integer, got ${JSON.stringify(rawMax)}`);
    MAX_FRAME = n;
  }
  ROOT = path.resolve(process.env.FN_FUNCTIONS_ROOT || '.');
  try {
    ROOT_REAL = fs.realpathSync(ROOT);
  } catch (e) {
    fail(`functions root ${ROOT} is not readable: ${e.code || e.message}`);
  }

  const existing = fs.lstatSync(socketPath, STAT_OPTS);
  if (existing !== undefined) {
    if (!existing.isSocket()) fail(`${socketPath} exists and is not a socket`);
    if (await socketIsLive(socketPath)) fail(`a live daemon already answers on ${socketPath}`);
    try {
      fs.unlinkSync(socketPath);
    } catch (e) {
      if (e.code !== 'ENOENT') fail(`cannot remove stale socket ${socketPath}: ${e.code}`);
    }
  }

  // Exit at once when the engine goes away (stdin is a pipe from it).
  const stdinGone = () => shutdown(0);
  process.stdin.on('end', stdinGone);
  process.stdin.on('close', stdinGone);
  process.stdin.on('error', stdinGone);
  process.stdin.on('data', () => {});
  process.stdin.resume();
  process.on('SIGTERM', () => shutdown(0));
  process.on('SIGINT', () => shutdown(0));

  installEnvView();
  captureStream(process.stdout, 'stdout');
  captureStream(process.stderr, 'stderr');

  const server = net.createServer(onConnection);
  server.on('error', (e) => fail(`cannot listen on ${socketPath}: ${e.code || e.message}`));
  const umask = process.umask(0o177);
  server.listen({ path: socketPath, backlog: 1024 }, () => {
    process.umask(umask);
    try {
      fs.chmodSync(socketPath, 0o600);
    } catch {
      // umask already gave 0600
    }
    ownSocket = socketPath; // only ours once bound: never remove another daemon's socket
  });
}

let ownSocket = null;

function shutdown(code) {
  if (ownSocket !== null) {
    try {
      fs.unlinkSync(ownSocket);
    } catch {
      // already gone
    }
    ownSocket = null;
  }
  process.exit(code);
}

if (require.main === module) main();
