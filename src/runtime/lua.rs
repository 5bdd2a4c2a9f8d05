//! The Lua runtime, in-process (contract §4.1, lua row), on a vendored Lua 5.4 through mlua.
//!
//! [`LuaRuntime::call`] takes the same request frame payload a daemon receives (`fn`,
//! `fn_source_dir`, `version`, `entry`, `handler`, `adapter`, `event`) and returns the reply
//! frame payload (`status`, `headers`, `body` | `is_base64` + `body_base64`, `stdout`, `stderr`).
//! Handler failures are ordinary replies (`{"error": "..."}`, `Content-Type: application/json`),
//! as with the daemons; only a timeout is an `Err` ([`LuaError::Timeout`], the gateway's 504).
//!
//! Lua 5.4 rather than LuaJIT: its count hook fires in every loop (LuaJIT's compiled traces skip
//! hooks) and its allocator takes mlua's memory limit.
//!
//! Choices, mirroring `runtimes/python/daemon.py` where they overlap:
//! - Handler file: request `entry` (root-relative `.lua` file) wins; else `fn` as a root-relative
//!   `.lua` file; else `fn_source_dir` (+ `version` sub-folder), else `fn` as a folder, with
//!   `handler.lua`, `main.lua`, `index.lua`. `..`, absolute paths and symlinks out of the root →
//!   404 `unknown function`.
//! - Callable: the function the file returns; else from the table it returns, the request
//!   `handler` name (default `handler`); else that global; else `main` (table, then global).
//!   Called as `handler(event, params)`; only its first return value is used.
//! - Returns: a table holding an envelope key (`status statusCode headers body is_base64
//!   isBase64Encoded body_base64 proxy`) is an envelope (a non-string `body` is JSON-encoded with
//!   `Content-Type: application/json`; a body that is not UTF-8 goes out as base64); another
//!   table, a number or a boolean → JSON 200, encoded as `cjson.encode` would (empty table →
//!   `{}`, positive integer keys → array with `null` holes, `/` → `\/`); a string →
//!   200 `text/html; charset=utf-8` when its first non-blank character is `<`, else
//!   `text/plain; charset=utf-8` (not UTF-8 → base64 `application/octet-stream`); nil → 200 empty.
//! - `event.env` = the request's `event.env` updated with the handler folder's `fn.env.json`
//!   (`{"K": "v"}` or `{"K": {"value": "v"}}`; `FN_ADMIN_*`, `FN_CONSOLE_*`, `FN_TRUSTED_*`
//!   dropped); invalid `fn.env.json` → 500. `event.version` = request `version` or `"default"`.
//!   JSON `null` becomes `nil` in `event` (so the key is absent); `cjson.decode` gives
//!   `cjson.null`.
//! - Errors: load failure → 500 `failed to load handler: <message>`; runtime error → 500 with the
//!   Lua message (`file.lua:3: boom`, chunk names are root-relative), traceback in `stderr`;
//!   memory limit → 500 `memory limit`; unknown function → 404; non-native adapter → 500.
//!
//! State: every handler file has its own Lua states (globals, `require` cache) and never shares
//! one with another file. States are pooled per file: a call takes an idle state (the most
//! recently used, so sequential calls see the same module state) or builds a new one, so
//! concurrent calls of one function run in parallel on separate states; at most
//! [`MAX_IDLE_STATES`] idle states are kept per file. A state whose handler file or required
//! modules changed (mtime + size) is dropped at checkout and the file loaded afresh. A state
//! that hit the timeout or the memory limit is dropped too (it may be half-way through an update).
//!
//! Sandbox (an allowlist of globals, rebuilt after mlua opens the libraries):
//! `assert error ipairs next pairs pcall select tonumber tostring type unpack xpcall rawequal
//! rawget rawset rawlen setmetatable getmetatable print load require collectgarbage _G
//! _VERSION`, `string` (without `dump`), `table`, `math`, `utf8`, `os` = `{getenv, time, date,
//! clock, difftime}`, and `cjson` = `json` = `cjson.safe` (module [`cjson`], lua-cjson's
//! behaviour). In particular:
//! - `require("cjson")` gives the raising module, `require("cjson.safe")` (and `"json"`) the
//!   one that answers `nil, message`. Other names load `<name>.lua`, else `<name>/init.lua`,
//!   from the handler's own folder only, never out of it after symlinks (`a.b` and `a/b` are
//!   `a/b`; parts of letters, digits, `_`, `-`, `[`, `]`); per-state cache.
//! - `os.getenv` answers from the call's `event.env` (request env + `fn.env.json`) first,
//!   then from the process environment, as the original's does.
//! - `load` compiles text only (`mode` is forced to `"t"`), into the sandbox globals by default.
//! - `collectgarbage` answers `"count"` only. `os.getenv` hides `FN_ADMIN_*`, `FN_CONSOLE_*`,
//!   `FN_TRUSTED_*`. `os.clock` is monotonic wall seconds: process CPU time would run N times
//!   fast with N busy threads and would show other functions' activity.
//! - `print` appends to the call's `stdout`. `setmetatable` refuses a `__gc` field: Lua runs
//!   finalizers with hooks off, so one could loop past the timeout.
//! - `pcall`/`xpcall` re-raise once the call is past its deadline, so a timeout cannot be caught.
//!
//! Limits: a count hook every [`HOOK_INSTRUCTIONS`] VM instructions checks the deadline; each
//! state has a [`MEMORY_LIMIT`]. A single long C call (a pathological `string.find` pattern)
//! does not run the hook: `call` still answers `Timeout` after the deadline plus
//! [`TIMEOUT_GRACE`], and the state is dropped when that call ends.

mod cjson;

use base64::Engine as _;
use mlua::chunk::ChunkMode;
use mlua::{Function, HookTriggers, Lua, LuaOptions, StdLib, Table, Value, VmState};
use serde_json::{Map, Value as Json};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

/// Memory limit of one Lua state.
pub const MEMORY_LIMIT: usize = 64 * 1024 * 1024;
/// Idle states kept per handler file.
pub const MAX_IDLE_STATES: usize = 4;
/// The deadline is checked every this many VM instructions.
pub const HOOK_INSTRUCTIONS: u32 = 1000;
/// How long past the deadline `call` waits for a call stuck in C before answering `Timeout`.
pub const TIMEOUT_GRACE: Duration = Duration::from_millis(100);
/// `stdout` captured per call at most.
const MAX_CAPTURE: usize = 1024 * 1024;
/// The gateway rejects larger reply frames.
const MAX_REPLY_BYTES: usize = 10 * 1024 * 1024;
const ENTRY_FILES: [&str; 3] = ["handler.lua", "main.lua", "index.lua"];
const ENV_FILE: &str = "fn.env.json";
const HIDDEN_ENV_PREFIXES: [&str; 3] = ["FN_ADMIN_", "FN_CONSOLE_", "FN_TRUSTED_"];
const ENVELOPE_KEYS: [&str; 8] = [
    "status",
    "statusCode",
    "headers",
    "body",
    "is_base64",
    "isBase64Encoded",
    "body_base64",
    "proxy",
];
/// Globals a handler sees (everything else mlua opened is removed).
const SAFE_GLOBALS: [&str; 31] = [
    "assert",
    "error",
    "ipairs",
    "next",
    "pairs",
    "pcall",
    "select",
    "tonumber",
    "tostring",
    "type",
    "unpack",
    "xpcall",
    "rawequal",
    "rawget",
    "rawset",
    "rawlen",
    "setmetatable",
    "getmetatable",
    "print",
    "load",
    "require",
    "collectgarbage",
    "string",
    "table",
    "math",
    "utf8",
    "os",
    "json",
    "cjson",
    "_G",
    "_VERSION",
];
const TIMEOUT_MESSAGE: &str = "runtime timeout";
const REG_MODULE: &str = "fastfn.module";
const REG_LOADED: &str = "fastfn.loaded";
const REG_CJSON: &str = "fastfn.cjson";
const REG_CJSON_SAFE: &str = "fastfn.cjson.safe";

/// Lua wrappers installed in every state; the arguments are the originals and our Rust helpers.
const PRELUDE: &str = r##"
local raw_pcall, raw_xpcall, raw_setmetatable, rawget, type, error, select, tostring, concat, check, emit,
  require_impl, collectgarbage_impl = ...
-- Refusals come back as (nil, message) and are raised at the caller's line.
local function raising(f)
  return function(...)
    local value, err = f(...)
    if err ~= nil then error(err, 2) end
    return value
  end
end
require = raising(require_impl)
collectgarbage = raising(collectgarbage_impl)
local function pass(...)
  check()
  return ...
end
pcall = function(...) return pass(raw_pcall(...)) end
xpcall = function(...) return pass(raw_xpcall(...)) end
setmetatable = function(t, mt)
  if type(mt) == "table" and rawget(mt, "__gc") ~= nil then
    error("setmetatable: __gc metamethods are not allowed", 2)
  end
  return raw_setmetatable(t, mt)
end
print = function(...)
  local n = select("#", ...)
  local parts = {}
  for i = 1, n do parts[i] = tostring((select(i, ...))) end
  emit(concat(parts, "\t"))
end
"##;

/// A reply and its times.
#[derive(Debug)]
pub struct LuaReply {
    pub bytes: Vec<u8>,
    /// The handler function's own call (µs).
    pub handler_us: u64,
    /// Loading the module into a fresh state (µs; 0 when an idle state was reused).
    pub load_us: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum LuaError {
    #[error("runtime timeout")]
    Timeout,
    /// The blocking task running the call panicked or was cancelled.
    #[error("lua worker failed: {0}")]
    Worker(String),
}

/// The in-process Lua runtime: the functions root and the per-file pools of Lua states.
pub struct LuaRuntime {
    inner: Arc<Inner>,
}

struct Inner {
    root: PathBuf,
    idle: Mutex<HashMap<PathBuf, Vec<State>>>,
}

impl LuaRuntime {
    pub fn new(functions_root: PathBuf) -> LuaRuntime {
        let root = std::fs::canonicalize(&functions_root).unwrap_or(functions_root);
        LuaRuntime {
            inner: Arc::new(Inner {
                root,
                idle: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Run one request frame payload (the same JSON bytes a daemon receives) and return the reply
    /// frame payload (JSON bytes). Handler errors are normal replies (500 JSON), like the daemons.
    pub async fn call(&self, payload: Vec<u8>, timeout: Duration) -> Result<Vec<u8>, LuaError> {
        self.call_timed(payload, timeout).await.map(|r| r.bytes)
    }

    /// [`LuaRuntime::call`], with where the time went on the worker (the request inspector's
    /// `handler` and `cold` stages).
    pub async fn call_timed(&self, payload: Vec<u8>, timeout: Duration) -> Result<LuaReply, LuaError> {
        let deadline = Instant::now() + timeout;
        let inner = self.inner.clone();
        let task = tokio::task::spawn_blocking(move || inner.run_timed(&payload, deadline));
        match tokio::time::timeout(timeout + TIMEOUT_GRACE, task).await {
            Err(_) => Err(LuaError::Timeout),
            Ok(Err(e)) => Err(LuaError::Worker(e.to_string())),
            Ok(Ok(result)) => result,
        }
    }

    /// Idle states kept for a handler file (absolute path, as resolved under the root).
    pub fn idle_states(&self, handler_file: &Path) -> usize {
        let idle = self.inner.idle.lock().unwrap_or_else(|p| p.into_inner());
        idle.get(handler_file).map_or(0, Vec::len)
    }
}

// ---------------------------------------------------------------- files

/// What identifies a version of a file: modification time and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sig {
    mtime: Option<SystemTime>,
    size: u64,
}

fn file_sig(path: &Path) -> Option<Sig> {
    let meta = std::fs::metadata(path).ok()?;
    meta.is_file().then(|| Sig {
        mtime: meta.modified().ok(),
        size: meta.len(),
    })
}

/// Absolute real path of root-relative `rel`, or None when it is unsafe or leaves the root.
fn inside(root: &Path, rel: &str) -> Option<PathBuf> {
    if rel.is_empty() || rel.contains('\0') {
        return None;
    }
    let rel = rel.replace('\\', "/");
    if rel.starts_with('/') || rel.split('/').any(|part| part == "..") {
        return None;
    }
    let full = std::fs::canonicalize(root.join(&rel)).ok()?;
    full.starts_with(root).then_some(full)
}

fn is_lua_file(p: &Path) -> bool {
    p.extension().is_some_and(|e| e.eq_ignore_ascii_case("lua")) && p.is_file()
}

fn entry_in(root: &Path, folder: &Path, version: Option<&str>) -> Option<PathBuf> {
    let mut folder = folder.to_path_buf();
    if let Some(v) = version.filter(|v| !v.is_empty() && *v != "default") {
        if v.contains(['/', '\\', '\0']) || v == "." || v == ".." {
            return None;
        }
        folder.push(v);
    }
    ENTRY_FILES.iter().find_map(|name| {
        let p = std::fs::canonicalize(folder.join(name)).ok()?;
        (p.starts_with(root) && p.is_file()).then_some(p)
    })
}

fn resolve(root: &Path, req: &Map<String, Json>) -> Option<PathBuf> {
    let text = |k: &str| req.get(k).and_then(Json::as_str).filter(|s| !s.is_empty());
    if let Some(entry) = text("entry") {
        return inside(root, entry).filter(|p| is_lua_file(p));
    }
    let version = text("version");
    let by_name = text("fn").and_then(|name| inside(root, name));
    if let Some(p) = by_name.as_ref().filter(|p| is_lua_file(p)) {
        return Some(p.clone());
    }
    if let Some(src) = text("fn_source_dir") {
        let dir = inside(root, src).filter(|d| d.is_dir())?;
        return entry_in(root, &dir, version);
    }
    by_name
        .filter(|p| p.is_dir())
        .and_then(|dir| entry_in(root, &dir, version))
}

fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root).unwrap_or(path).to_string_lossy().into_owned()
}

fn hidden_env(key: &str) -> bool {
    HIDDEN_ENV_PREFIXES.iter().any(|p| key.starts_with(p))
}

/// `fn.env.json` of the handler's folder as string values (None when there is none).
fn file_env(folder: &Path) -> Result<Option<Map<String, Json>>, String> {
    let path = folder.join(ENV_FILE);
    let raw = match std::fs::read(&path) {
        Ok(raw) => raw,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Ok(Some(Map::new()));
    }
    let Json::Object(obj) = serde_json::from_slice::<Json>(&raw).map_err(|e| e.to_string())? else {
        return Err("fn.env.json must hold an object".into());
    };
    let mut env = Map::new();
    for (k, v) in obj {
        if hidden_env(&k) {
            continue;
        }
        let v = match v {
            Json::Object(mut o) => o.remove("value").unwrap_or(Json::Null),
            v => v,
        };
        let s = match v {
            Json::Null => continue,
            Json::String(s) => s,
            Json::Bool(b) => b.to_string(),
            Json::Number(n) => n.to_string(),
            v => v.to_string(),
        };
        env.insert(k, Json::String(s));
    }
    Ok(Some(env))
}

// ---------------------------------------------------------------- replies

fn error_reply(status: u16, message: &str, stderr: Option<String>) -> Json {
    let mut reply = Map::new();
    reply.insert("status".into(), status.into());
    reply.insert(
        "headers".into(),
        serde_json::json!({"Content-Type": "application/json"}),
    );
    reply.insert(
        "body".into(),
        Json::String(serde_json::json!({ "error": message }).to_string()),
    );
    if let Some(s) = stderr.filter(|s| !s.is_empty()) {
        reply.insert("stderr".into(), Json::String(s));
    }
    Json::Object(reply)
}

fn encode_reply(reply: &Json) -> Vec<u8> {
    let raw = serde_json::to_vec(reply).unwrap_or_default();
    if raw.len() > MAX_REPLY_BYTES {
        return serde_json::to_vec(&error_reply(500, "response too large", None)).unwrap_or_default();
    }
    raw
}

fn has_header(headers: &Map<String, Json>, name: &str) -> bool {
    headers.keys().any(|k| k.eq_ignore_ascii_case(name))
}

fn text_type(s: &str) -> &'static str {
    if s.trim_start().starts_with('<') {
        "text/html; charset=utf-8"
    } else {
        "text/plain; charset=utf-8"
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn parse_status(v: &Value) -> Result<u16, String> {
    let n = match v {
        Value::Nil => return Ok(200),
        Value::Integer(i) => Some(*i),
        Value::Number(f) if f.fract() == 0.0 && f.abs() < 1e6 => Some(*f as i64),
        Value::String(s) => s.to_str().ok().and_then(|s| s.trim().parse::<i64>().ok()),
        _ => None,
    };
    match n {
        Some(n) if (100..=599).contains(&n) => Ok(n as u16),
        _ => Err(format!("handler returned an invalid status: {}", describe_value(v))),
    }
}

fn describe_value(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{:?}", s.to_string_lossy()),
        Value::Integer(i) => i.to_string(),
        Value::Number(f) => f.to_string(),
        Value::Boolean(b) => b.to_string(),
        v => v.type_name().to_string(),
    }
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.to_string_lossy()),
        Value::Integer(i) => Some(i.to_string()),
        Value::Number(f) => Some(f.to_string()),
        Value::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

fn clean_headers(v: Value) -> Result<Map<String, Json>, String> {
    let t = match v {
        Value::Nil => return Ok(Map::new()),
        Value::Table(t) => t,
        _ => return Err("handler returned invalid headers (not a table)".into()),
    };
    let mut out = Map::new();
    let bad = || "handler returned invalid headers".to_string();
    for pair in t.pairs::<Value, Value>() {
        let (k, v) = pair.map_err(|e| e.to_string())?;
        let name = scalar_text(&k).ok_or_else(bad)?;
        let value = match &v {
            Value::Table(list) => {
                let mut items = Vec::new();
                for item in list.sequence_values::<Value>() {
                    items.push(Json::String(
                        scalar_text(&item.map_err(|e| e.to_string())?).ok_or_else(bad)?,
                    ));
                }
                Json::Array(items)
            }
            v => Json::String(scalar_text(v).ok_or_else(bad)?),
        };
        out.insert(name, value);
    }
    Ok(out)
}

/// Put a string, table or scalar `body` into `reply` (envelope rules).
fn put_body(
    lua: &Lua,
    reply: &mut Map<String, Json>,
    headers: &mut Map<String, Json>,
    body: Value,
    text_default: bool,
) -> Result<(), String> {
    match body {
        Value::Nil => {
            reply.insert("body".into(), Json::String(String::new()));
        }
        Value::String(s) => match s.to_str() {
            Ok(text) => {
                if text_default && !has_header(headers, "content-type") {
                    headers.insert("Content-Type".into(), Json::String(text_type(&text).into()));
                }
                reply.insert("body".into(), Json::String(text.to_string()));
            }
            Err(_) => {
                if !has_header(headers, "content-type") {
                    headers.insert("Content-Type".into(), "application/octet-stream".into());
                }
                reply.insert("is_base64".into(), Json::Bool(true));
                reply.insert("body_base64".into(), Json::String(b64(&s.as_bytes())));
            }
        },
        other => {
            let json = cjson::encode(lua, &cjson::Config::default(), &other)?;
            if !has_header(headers, "content-type") {
                headers.insert("Content-Type".into(), "application/json".into());
            }
            let text = String::from_utf8(json).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
            reply.insert("body".into(), Json::String(text));
        }
    }
    Ok(())
}

fn is_envelope(t: &Table) -> bool {
    ENVELOPE_KEYS
        .iter()
        .any(|k| !matches!(t.raw_get::<Value>(*k), Ok(Value::Nil) | Err(_)))
}

fn envelope(lua: &Lua, t: &Table) -> Result<Map<String, Json>, String> {
    let get = |k: &str| t.raw_get::<Value>(k).map_err(|e| e.to_string());
    let mut status = get("status")?;
    if status.is_nil() {
        status = get("statusCode")?;
    }
    let mut reply = Map::new();
    reply.insert("status".into(), parse_status(&status)?.into());
    let mut headers = clean_headers(get("headers")?)?;
    let b64_body = get("body_base64")?;
    let flagged = [get("is_base64")?, get("isBase64Encoded")?]
        .iter()
        .any(|v| !matches!(v, Value::Nil | Value::Boolean(false)));
    if !b64_body.is_nil() || flagged {
        let data = if b64_body.is_nil() { get("body")? } else { b64_body };
        let text = match data {
            Value::Nil => String::new(),
            Value::String(s) => s.to_string_lossy(),
            _ => return Err("handler returned a base64 body that is not a string".into()),
        };
        reply.insert("is_base64".into(), Json::Bool(true));
        reply.insert("body_base64".into(), Json::String(text));
    } else {
        put_body(lua, &mut reply, &mut headers, get("body")?, false)?;
    }
    let proxy = get("proxy")?;
    if !proxy.is_nil() {
        reply.insert("proxy".into(), to_json(lua, &proxy)?);
    }
    reply.insert("headers".into(), Json::Object(headers));
    Ok(reply)
}

/// Map a handler's return value to a reply (contract §4.1, lua row).
fn to_reply(lua: &Lua, v: Value) -> Result<Map<String, Json>, String> {
    match v {
        Value::Table(t) if is_envelope(&t) => envelope(lua, &t),
        v => {
            let mut reply = Map::new();
            reply.insert("status".into(), 200.into());
            let mut headers = Map::new();
            put_body(lua, &mut reply, &mut headers, v, true)?;
            reply.insert("headers".into(), Json::Object(headers));
            Ok(reply)
        }
    }
}

// ---------------------------------------------------------------- JSON <-> Lua

/// Lua value → JSON, by the rules of `cjson.encode` (so `proxy` and bodies agree with what a
/// handler's own `cjson.encode` would give).
fn to_json(lua: &Lua, v: &Value) -> Result<Json, String> {
    let raw = cjson::encode(lua, &cjson::Config::default(), v)?;
    let text = String::from_utf8_lossy(&raw);
    serde_json::from_str(&text).map_err(|e| format!("cannot encode: {e}"))
}

/// JSON → Lua value (`null` → nil).
fn to_lua(lua: &Lua, v: &Json) -> mlua::Result<Value> {
    Ok(match v {
        Json::Null => Value::Nil,
        Json::Bool(b) => Value::Boolean(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Value::Integer(i),
            None => Value::Number(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => Value::String(lua.create_string(s)?),
        Json::Array(items) => {
            let t = lua.create_table_with_capacity(items.len(), 0)?;
            for (i, item) in items.iter().enumerate() {
                t.raw_set(i + 1, to_lua(lua, item)?)?;
            }
            Value::Table(t)
        }
        Json::Object(map) => {
            let t = lua.create_table_with_capacity(0, map.len())?;
            for (k, item) in map {
                t.raw_set(k.as_str(), to_lua(lua, item)?)?;
            }
            Value::Table(t)
        }
    })
}

// ---------------------------------------------------------------- states

/// Per-state limits: the current call's deadline, and whether it passed.
#[derive(Default)]
struct Limits {
    deadline: Mutex<Option<Instant>>,
    expired: AtomicBool,
}

impl Limits {
    fn set_deadline(&self, d: Option<Instant>) {
        *self.deadline.lock().unwrap_or_else(|p| p.into_inner()) = d;
    }

    /// Raise once the deadline passed (and ever after, so `pcall` cannot swallow it).
    fn check(&self) -> mlua::Result<()> {
        if self.expired.load(Ordering::Relaxed) {
            return Err(mlua::Error::RuntimeError(TIMEOUT_MESSAGE.into()));
        }
        let deadline = *self.deadline.lock().unwrap_or_else(|p| p.into_inner());
        if deadline.is_some_and(|d| Instant::now() >= d) {
            self.expired.store(true, Ordering::Relaxed);
            return Err(mlua::Error::RuntimeError(TIMEOUT_MESSAGE.into()));
        }
        Ok(())
    }

    fn expired(&self) -> bool {
        self.expired.load(Ordering::Relaxed)
    }
}

#[derive(Default)]
struct Capture {
    text: String,
    truncated: bool,
}

impl Capture {
    fn line(&mut self, s: &str) {
        if self.truncated {
            return;
        }
        if self.text.len() + s.len() + 1 > MAX_CAPTURE {
            let mut room = MAX_CAPTURE.saturating_sub(self.text.len());
            while !s.is_char_boundary(room.min(s.len())) {
                room -= 1;
            }
            self.text.push_str(&s[..room.min(s.len())]);
            self.text.push_str("\n[stdout truncated]\n");
            self.truncated = true;
            return;
        }
        self.text.push_str(s);
        self.text.push('\n');
    }
}

type Deps = Arc<Mutex<Vec<(PathBuf, Sig)>>>;
/// The running call's merged env (`event.env`), read by `os.getenv`; empty between calls.
type CallEnv = Arc<Mutex<Map<String, Json>>>;

/// One Lua state of one handler file, with its module loaded.
struct State {
    lua: Lua,
    limits: Arc<Limits>,
    capture: Arc<Mutex<Capture>>,
    /// The handler file and the modules it required, with the signatures they were loaded at.
    deps: Deps,
    call_env: CallEnv,
}

impl State {
    fn fresh(&self) -> bool {
        let deps = self.deps.lock().unwrap_or_else(|p| p.into_inner());
        deps.iter().all(|(path, sig)| file_sig(path).as_ref() == Some(sig))
    }

    fn take_stdout(&self) -> String {
        std::mem::take(&mut *self.capture.lock().unwrap_or_else(|p| p.into_inner())).text
    }
}

fn monotonic_secs() -> f64 {
    static BASE: OnceLock<Instant> = OnceLock::new();
    BASE.get_or_init(Instant::now).elapsed().as_secs_f64()
}

/// A module name as a path relative to the function's folder (`a.b` and `a/b` → `a/b`), or
/// None when it could leave the folder or holds other characters (the original's rule: parts
/// of letters, digits, `_`, `-`, `[`, `]`).
fn module_path(name: &str) -> Option<String> {
    let name = name.trim();
    if name.is_empty() || name.len() > 256 || name.starts_with('/') {
        return None;
    }
    let rel = name.replace('.', "/");
    let ok = rel.split('/').all(|part| {
        !part.is_empty()
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '[' | ']'))
    });
    ok.then_some(rel)
}

/// A failure while building a state: a load error reply, or the deadline.
enum BuildError {
    Timeout,
    Reply(Json),
}

fn internal(e: mlua::Error) -> BuildError {
    BuildError::Reply(error_reply(500, &format!("lua runtime: {e}"), None))
}

/// Build the sandbox into a fresh state (see the module docs for what it holds).
fn sandbox(
    lua: &Lua,
    root: &Path,
    folder: &Path,
    limits: &Arc<Limits>,
    capture: &Arc<Mutex<Capture>>,
    deps: &Deps,
    call_env: &CallEnv,
) -> mlua::Result<()> {
    let g = lua.globals();

    let string: Table = g.get("string")?;
    string.raw_set("dump", Value::Nil)?;
    let table: Table = g.get("table")?;
    g.raw_set("unpack", table.get::<Value>("unpack")?)?;

    let os: Table = g.get("os")?;
    let safe_os = lua.create_table()?;
    safe_os.raw_set("time", os.get::<Value>("time")?)?;
    safe_os.raw_set("date", os.get::<Value>("date")?)?;
    safe_os.raw_set("clock", lua.create_function(|_, ()| Ok(monotonic_secs()))?)?;
    safe_os.raw_set("difftime", os.get::<Value>("difftime")?)?;
    // The call's `event.env` (request env + `fn.env.json`) first, then the process, as the
    // original's `os.getenv` does.
    let env = call_env.clone();
    safe_os.raw_set(
        "getenv",
        lua.create_function(move |_, name: String| {
            if hidden_env(&name) {
                return Ok(None);
            }
            let from_call = env
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&name)
                .and_then(Json::as_str)
                .map(str::to_string);
            Ok(from_call.or_else(|| std::env::var(&name).ok()))
        })?,
    )?;
    g.raw_set("os", safe_os)?;

    // `require("cjson")` raises like lua-cjson; the globals `cjson` and `json` are
    // `cjson.safe`, as the original's sandbox gives them.
    let cjson_raising = cjson::module(lua, false)?;
    let cjson_safe = cjson::module(lua, true)?;
    g.raw_set("cjson", cjson_safe.clone())?;
    g.raw_set("json", cjson_safe.clone())?;
    lua.set_named_registry_value(REG_CJSON, cjson_raising)?;
    lua.set_named_registry_value(REG_CJSON_SAFE, cjson_safe)?;

    let collectgarbage = lua.create_function(|lua, opt: Option<String>| {
        Ok(match opt.as_deref() {
            Some("count") => (Some(lua.used_memory() as f64 / 1024.0), None),
            other => (
                None,
                Some(format!(
                    "collectgarbage: only \"count\" is allowed (got {})",
                    other.unwrap_or("no option")
                )),
            ),
        })
    })?;

    g.raw_set(
        "load",
        lua.create_function(
            |lua, (chunk, name, _mode, env): (Value, Option<String>, Value, Option<Table>)| {
                let fail = |msg: String| Ok((Value::Nil, Some(msg)));
                let Value::String(code) = chunk else {
                    return fail("load: only string chunks are allowed".into());
                };
                let name = format!("={}", name.as_deref().unwrap_or("load").trim_start_matches(['=', '@']));
                let env = match env {
                    Some(env) => env,
                    None => lua.globals(),
                };
                let bytes = code.as_bytes().to_vec();
                match lua
                    .load(bytes)
                    .set_mode(ChunkMode::Text)
                    .set_name(name)
                    .set_environment(env)
                    .into_function()
                {
                    Ok(f) => Ok((Value::Function(f), None)),
                    Err(mlua::Error::SyntaxError { message, .. }) => fail(message),
                    Err(e) => fail(e.to_string()),
                }
            },
        )?,
    )?;

    lua.set_named_registry_value(REG_LOADED, lua.create_table()?)?;
    let folder = std::fs::canonicalize(folder).unwrap_or_else(|_| folder.to_path_buf());
    let (root, deps) = (root.to_path_buf(), deps.clone());
    let require = lua.create_function(move |lua, name: String| {
        let refuse = |msg: String| Ok((Value::Nil, Some(msg)));
        match name.as_str() {
            "cjson" => return Ok((lua.named_registry_value::<Value>(REG_CJSON)?, None)),
            "cjson.safe" | "json" => return Ok((lua.named_registry_value::<Value>(REG_CJSON_SAFE)?, None)),
            _ => {}
        }
        let Some(rel) = module_path(&name) else {
            return refuse(format!(
                "require: module '{name}' refused (only modules in the function's folder: names of \
                 letters, digits, '_', '-', '[', ']', parts separated by '.' or '/')"
            ));
        };
        let loaded: Table = lua.named_registry_value(REG_LOADED)?;
        match loaded.raw_get::<Value>(rel.as_str())? {
            Value::Nil => {}
            Value::Boolean(false) => return refuse(format!("require: loop while loading module '{name}'")),
            v => return Ok((v, None)),
        }
        let not_found = format!("module '{name}' not found (only modules in the function's folder can be required)");
        // `<folder>/<rel>.lua`, else `<folder>/<rel>/init.lua`; after symlinks, still inside
        // the function's folder.
        let found = [format!("{rel}.lua"), format!("{rel}/init.lua")]
            .iter()
            .filter_map(|candidate| std::fs::canonicalize(folder.join(candidate)).ok())
            .find(|p| p.starts_with(&folder) && p.is_file())
            .and_then(|p| Some((file_sig(&p)?, std::fs::read(&p).ok()?, p)));
        let Some((sig, code, path)) = found else {
            return refuse(not_found);
        };
        let f = lua
            .load(code)
            .set_mode(ChunkMode::Text)
            .set_name(format!("@{}", relative(&root, &path)))
            .set_environment(lua.globals())
            .into_function()?;
        deps.lock().unwrap_or_else(|p| p.into_inner()).push((path, sig));
        loaded.raw_set(rel.as_str(), false)?;
        let result = f.call::<Value>(name.as_str());
        let value = match result {
            Ok(Value::Nil) => Value::Boolean(true),
            Ok(v) => v,
            Err(e) => {
                loaded.raw_set(rel.as_str(), Value::Nil)?;
                return Err(e);
            }
        };
        loaded.raw_set(rel.as_str(), value.clone())?;
        Ok((value, None))
    })?;

    let check = {
        let limits = limits.clone();
        lua.create_function(move |_, ()| limits.check())?
    };
    let emit = {
        let capture = capture.clone();
        lua.create_function(move |_, s: mlua::LuaString| {
            capture
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .line(&s.to_string_lossy());
            Ok(())
        })?
    };
    let prelude = lua
        .load(PRELUDE)
        .set_name("=fastfn.prelude")
        .set_mode(ChunkMode::Text)
        .into_function()?;
    prelude.call::<()>((
        g.get::<Value>("pcall")?,
        g.get::<Value>("xpcall")?,
        g.get::<Value>("setmetatable")?,
        g.get::<Value>("rawget")?,
        g.get::<Value>("type")?,
        g.get::<Value>("error")?,
        g.get::<Value>("select")?,
        g.get::<Value>("tostring")?,
        table.get::<Value>("concat")?,
        check,
        emit,
        require,
        collectgarbage,
    ))?;

    // Drop everything not on the allowlist (dofile, loadfile, warn, coroutine, ...).
    let mut extra = Vec::new();
    for pair in g.pairs::<Value, Value>() {
        let (k, _) = pair?;
        let keep = matches!(&k, Value::String(s) if SAFE_GLOBALS.iter().any(|n| s.as_bytes().as_ref() == n.as_bytes()));
        if !keep {
            extra.push(k);
        }
    }
    for k in extra {
        g.raw_set(k, Value::Nil)?;
    }
    Ok(())
}

/// Split mlua's error into the client message and the full text (with traceback) for `stderr`.
fn describe_error(e: &mlua::Error) -> (String, String) {
    let full = e.to_string();
    let message = match e {
        mlua::Error::CallbackError { cause, .. } => return (describe_error(cause).0, full),
        mlua::Error::WithContext { cause, .. } => return (describe_error(cause).0, full),
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        mlua::Error::MemoryError(_) => "memory limit".to_string(),
        mlua::Error::RuntimeError(s) => s.split("\nstack traceback:").next().unwrap_or(s).to_string(),
        other => other.to_string(),
    };
    (message, full)
}

fn is_memory_error(e: &mlua::Error) -> bool {
    match e {
        mlua::Error::MemoryError(_) => true,
        mlua::Error::CallbackError { cause, .. } | mlua::Error::WithContext { cause, .. } => is_memory_error(cause),
        _ => false,
    }
}

impl Inner {
    fn build(&self, path: &Path, sig: Sig, deadline: Instant) -> Result<State, BuildError> {
        let libs = StdLib::STRING | StdLib::TABLE | StdLib::MATH | StdLib::UTF8 | StdLib::OS;
        let lua = Lua::new_with(libs, LuaOptions::default()).map_err(internal)?;
        lua.set_memory_limit(MEMORY_LIMIT).map_err(internal)?;
        let limits = Arc::new(Limits::default());
        let capture = Arc::new(Mutex::new(Capture::default()));
        let deps: Deps = Arc::new(Mutex::new(vec![(path.to_path_buf(), sig)]));
        let folder = path.parent().unwrap_or(&self.root);
        let call_env = CallEnv::default();
        sandbox(&lua, &self.root, folder, &limits, &capture, &deps, &call_env).map_err(internal)?;
        let hook_limits = limits.clone();
        lua.set_hook(
            HookTriggers::new().every_nth_instruction(HOOK_INSTRUCTIONS),
            move |_, _| hook_limits.check().map(|()| VmState::Continue),
        )
        .map_err(internal)?;
        let state = State {
            lua,
            limits,
            capture,
            deps,
            call_env,
        };

        let code = std::fs::read(path)
            .map_err(|e| BuildError::Reply(error_reply(500, &format!("failed to load handler: {e}"), None)))?;
        let chunk_name = format!("@{}", relative(&self.root, path));
        let loaded = state
            .lua
            .load(code)
            .set_mode(ChunkMode::Text)
            .set_name(chunk_name)
            .into_function()
            .and_then(|f| {
                state.limits.set_deadline(Some(deadline));
                let r = f.call::<Value>(());
                state.limits.set_deadline(None);
                r
            })
            .and_then(|module| state.lua.set_named_registry_value(REG_MODULE, module));
        if let Err(e) = loaded {
            if state.limits.expired() {
                return Err(BuildError::Timeout);
            }
            let (message, full) = describe_error(&e);
            let mut reply = error_reply(500, &format!("failed to load handler: {message}"), Some(full));
            let stdout = state.take_stdout();
            if !stdout.is_empty() {
                reply["stdout"] = Json::String(stdout);
            }
            return Err(BuildError::Reply(reply));
        }
        Ok(state)
    }

    fn checkout(&self, path: &Path) -> Option<State> {
        let state = {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            idle.get_mut(path).and_then(Vec::pop)?
        };
        if state.fresh() {
            return Some(state);
        }
        // Every idle state of this file is at least as old: drop them all.
        let stale = self.idle.lock().unwrap_or_else(|p| p.into_inner()).remove(path);
        drop(stale);
        None
    }

    fn checkin(&self, path: PathBuf, state: State) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let pool = idle.entry(path).or_default();
        if pool.len() < MAX_IDLE_STATES {
            pool.push(state);
        }
    }

    fn forget(&self, path: &Path) {
        let gone = self.idle.lock().unwrap_or_else(|p| p.into_inner()).remove(path);
        drop(gone);
    }

    #[cfg(test)]
    fn run(&self, payload: &[u8], deadline: Instant) -> Result<Vec<u8>, LuaError> {
        self.run_timed(payload, deadline).map(|r| r.bytes)
    }

    fn run_timed(&self, payload: &[u8], deadline: Instant) -> Result<LuaReply, LuaError> {
        let (mut handler_us, mut load_us) = (0, 0);
        let reply = self.dispatch(payload, deadline, &mut handler_us, &mut load_us)?;
        Ok(LuaReply {
            bytes: encode_reply(&reply),
            handler_us,
            load_us,
        })
    }

    fn dispatch(
        &self,
        payload: &[u8],
        deadline: Instant,
        handler_us: &mut u64,
        load_us: &mut u64,
    ) -> Result<Json, LuaError> {
        let Ok(Json::Object(mut req)) = serde_json::from_slice::<Json>(payload) else {
            return Ok(error_reply(400, "invalid json request", None));
        };
        if let Some(adapter) = req.get("adapter").and_then(Json::as_str) {
            if !adapter.is_empty() && adapter != "native" {
                return Ok(error_reply(500, &format!("adapter not supported yet: {adapter}"), None));
            }
        }
        let mut event = match req.remove("event") {
            None | Some(Json::Null) => Map::new(),
            Some(Json::Object(e)) => e,
            Some(_) => return Ok(error_reply(400, "invalid json request", None)),
        };
        let Some(path) = resolve(&self.root, &req) else {
            return Ok(error_reply(404, "unknown function", None));
        };
        let Some(sig) = file_sig(&path) else {
            self.forget(&path);
            return Ok(error_reply(404, "unknown function", None));
        };
        let folder = path.parent().unwrap_or(&self.root).to_path_buf();

        let file_env = match file_env(&folder) {
            Ok(env) => env,
            Err(e) => return Ok(error_reply(500, &format!("invalid fn.env.json: {e}"), None)),
        };
        let mut env = match event.remove("env") {
            Some(Json::Object(env)) => env.into_iter().filter(|(k, _)| !hidden_env(k)).collect(),
            _ => Map::new(),
        };
        env.extend(file_env.unwrap_or_default());
        event.insert("env".into(), Json::Object(env));
        let version = req.get("version").and_then(Json::as_str).filter(|v| !v.is_empty());
        event.insert("version".into(), Json::String(version.unwrap_or("default").into()));
        let name = req
            .get("handler")
            .and_then(Json::as_str)
            .filter(|h| !h.is_empty())
            .unwrap_or("handler");

        let state = match self.checkout(&path) {
            Some(state) => state,
            None => {
                // A fresh state: the module is loaded (the call's cold part).
                let loading = Instant::now();
                let built = self.build(&path, sig, deadline);
                *load_us = loading.elapsed().as_micros() as u64;
                match built {
                    Ok(state) => state,
                    Err(BuildError::Timeout) => return Err(LuaError::Timeout),
                    Err(BuildError::Reply(reply)) => return Ok(reply),
                }
            }
        };
        state.take_stdout(); // output of the module's top level is not any call's

        *state.call_env.lock().unwrap_or_else(|p| p.into_inner()) = env_of(&event);
        state.limits.set_deadline(Some(deadline));
        let calling = Instant::now();
        let outcome = invoke(&state.lua, name, &Json::Object(event));
        *handler_us = calling.elapsed().as_micros() as u64;
        state.limits.set_deadline(None);
        state.call_env.lock().unwrap_or_else(|p| p.into_inner()).clear();
        if state.limits.expired() {
            return Err(LuaError::Timeout);
        }
        let stdout = state.take_stdout();
        let (mut reply, healthy) = match outcome {
            Ok(Ok(reply)) => (Json::Object(reply), true),
            Ok(Err(message)) => (error_reply(500, &message, None), true),
            Err(e) => {
                let memory = is_memory_error(&e);
                let (message, full) = describe_error(&e);
                (error_reply(500, &message, Some(full)), !memory)
            }
        };
        if !stdout.is_empty() {
            reply["stdout"] = Json::String(stdout);
        }
        // A state nearly at its memory limit would fail the next call: rebuild it instead.
        if healthy && state.lua.used_memory() < MEMORY_LIMIT / 4 * 3 {
            self.checkin(path, state);
        }
        Ok(reply)
    }
}

fn env_of(event: &Map<String, Json>) -> Map<String, Json> {
    match event.get("env") {
        Some(Json::Object(env)) => env.clone(),
        _ => Map::new(),
    }
}

/// Find the callable and call it. Outer error: the call failed; inner error: bad return value.
fn invoke(lua: &Lua, name: &str, event: &Json) -> mlua::Result<Result<Map<String, Json>, String>> {
    let Some(f) = find_handler(lua, name)? else {
        return Ok(Err(format!("handler '{name}' not found")));
    };
    let event = to_lua(lua, event)?;
    let params = match &event {
        Value::Table(t) => match t.raw_get::<Value>("params")? {
            Value::Table(p) => p,
            _ => lua.create_table()?,
        },
        _ => lua.create_table()?,
    };
    let result: Value = f.call((event, params))?;
    Ok(to_reply(lua, result))
}

fn find_handler(lua: &Lua, name: &str) -> mlua::Result<Option<Function>> {
    let module: Value = lua.named_registry_value(REG_MODULE)?;
    if let Value::Function(f) = module {
        return Ok(Some(f));
    }
    let g = lua.globals();
    let table = match module {
        Value::Table(t) => Some(t),
        _ => None,
    };
    for key in [name, "main"] {
        if let Some(t) = &table {
            if let Value::Function(f) = t.raw_get::<Value>(key)? {
                return Ok(Some(f));
            }
        }
        if let Value::Function(f) = g.raw_get::<Value>(key)? {
            return Ok(Some(f));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SECOND: Duration = Duration::from_secs(5);

    fn fixtures() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/lua")
    }

    fn frame(entry: &str, handler: &str, event: Json) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "fn": entry, "entry": entry, "handler": handler, "adapter": "native", "event": event
        }))
        .unwrap()
    }

    async fn call_with(rt: &LuaRuntime, entry: &str, handler: &str, event: Json) -> Json {
        let raw = rt.call(frame(entry, handler, event), SECOND).await.unwrap();
        serde_json::from_slice(&raw).unwrap()
    }

    async fn call(rt: &LuaRuntime, entry: &str, event: Json) -> Json {
        call_with(rt, entry, "handler", event).await
    }

    fn body(reply: &Json) -> Json {
        serde_json::from_str(reply["body"].as_str().unwrap()).unwrap()
    }

    fn error_of(reply: &Json) -> String {
        body(reply)["error"].as_str().unwrap().to_string()
    }

    #[tokio::test]
    async fn three_handler_forms_get_event_and_params() {
        let rt = LuaRuntime::new(fixtures());
        let event = json!({"method": "GET", "params": {"id": "42"}});
        let r = call(&rt, "forms/returns_function.lua", event.clone()).await;
        assert_eq!(r["status"], 200);
        assert_eq!(r["headers"], json!({"Content-Type": "application/json"}));
        assert_eq!(
            body(&r),
            json!({"form": "function", "id": "42", "same": true, "method": "GET"})
        );
        let r = call(&rt, "forms/returns_table.lua", event.clone()).await;
        assert_eq!(body(&r), json!({"form": "table.handler", "id": "42"}));
        let r = call(&rt, "forms/returns_main.lua", event.clone()).await;
        assert_eq!(body(&r), json!({"form": "table.main", "id": "42"}));
        let r = call(&rt, "forms/global.lua", event.clone()).await;
        assert_eq!(body(&r), json!({"form": "global", "id": "42"}));
        let r = call_with(&rt, "forms/global.lua", "other", event.clone()).await;
        assert_eq!(body(&r), json!({"form": "global.other"}));
        // No params in the event: the 2nd argument is still a table.
        let r = call(&rt, "forms/returns_table.lua", json!({})).await;
        assert_eq!(body(&r), json!({"form": "table.handler"}));
        let r = call(&rt, "no_handler.lua", json!({})).await;
        assert_eq!(r["status"], 500);
        assert_eq!(error_of(&r), "handler 'handler' not found");
    }

    #[tokio::test]
    async fn shorthand_returns_and_envelope_aliases() {
        let rt = LuaRuntime::new(fixtures());
        let mut got = HashMap::new();
        for kind in [
            "object",
            "empty",
            "array",
            "text",
            "html",
            "none",
            "number",
            "binary",
            "envelope",
            "status_code",
            "body_table",
            "base64",
            "body_base64",
            "bad_status",
            "fn_body",
            "typed",
        ] {
            got.insert(kind, call(&rt, "shorthand.lua", json!({"query": {"kind": kind}})).await);
        }
        let json_ct = json!({"Content-Type": "application/json"});
        assert_eq!(
            got["object"],
            json!({"status": 200, "headers": json_ct, "body": r#"{"hello":"world","n":3}"#})
        );
        assert_eq!(got["empty"], json!({"status": 200, "headers": json_ct, "body": "{}"}));
        assert_eq!(
            got["array"],
            json!({"status": 200, "headers": json_ct, "body": r#"[1,"two",true]"#})
        );
        assert_eq!(
            got["text"],
            json!({"status": 200, "headers": {"Content-Type": "text/plain; charset=utf-8"}, "body": "plain words"})
        );
        assert_eq!(
            got["html"],
            json!({"status": 200, "headers": {"Content-Type": "text/html; charset=utf-8"}, "body": "  <h1>hi</h1>"})
        );
        assert_eq!(got["none"], json!({"status": 200, "headers": {}, "body": ""}));
        assert_eq!(got["number"], json!({"status": 200, "headers": json_ct, "body": "42"}));
        assert_eq!(
            got["binary"],
            json!({"status": 200, "headers": {"Content-Type": "application/octet-stream"},
                   "is_base64": true, "body_base64": "/wAB"})
        );
        assert_eq!(
            got["envelope"],
            json!({"status": 201, "headers": {"X-Kind": "env", "Set-Cookie": ["a=1", "b=2"]}, "body": "made"})
        );
        assert_eq!(
            got["status_code"],
            json!({"status": 202, "headers": json_ct, "body": r#"{"ok":true}"#})
        );
        assert_eq!(
            got["body_table"],
            json!({"status": 200, "headers": json_ct, "body": r#"{"list":[1,2]}"#})
        );
        assert_eq!(
            got["base64"],
            json!({"status": 200, "headers": {"Content-Type": "image/png"}, "is_base64": true, "body_base64": "AAEC"})
        );
        assert_eq!(
            got["body_base64"],
            json!({"status": 200, "headers": {}, "is_base64": true, "body_base64": "/w=="})
        );
        assert_eq!(got["bad_status"]["status"], 500);
        assert_eq!(error_of(&got["bad_status"]), "handler returned an invalid status: 42");
        assert_eq!(got["fn_body"]["status"], 500);
        assert_eq!(
            error_of(&got["fn_body"]),
            "Cannot serialise function: type not supported"
        );
        assert_eq!(
            got["typed"],
            json!({"status": 200, "headers": {"content-type": "text/csv"}, "body": "[1]"})
        );
        // Every reply is one the gateway accepts.
        for (kind, reply) in &got {
            let raw = serde_json::to_vec(reply).unwrap();
            assert!(crate::invoke::reply::parse(&raw).is_ok(), "{kind}");
        }
    }

    #[tokio::test]
    async fn print_is_captured_per_call() {
        let rt = LuaRuntime::new(fixtures());
        let r = call(&rt, "print.lua", json!({"query": {"who": "first"}})).await;
        assert_eq!(r["body"], "ok");
        assert_eq!(r["stdout"], "hello\t1\tnil\ttrue\nfirst\n");
        let r = call(&rt, "print.lua", json!({"query": {"who": "second"}})).await;
        assert_eq!(r["stdout"], "hello\t1\tnil\ttrue\nsecond\n");
        let r = call(&rt, "forms/returns_table.lua", json!({})).await;
        assert!(r.get("stdout").is_none());
    }

    #[tokio::test]
    async fn env_comes_from_fn_env_json() {
        let rt = LuaRuntime::new(fixtures());
        let event = json!({"env": {"FROM_GATEWAY": "g", "PLAIN": "overridden", "FN_ADMIN_K": "x"}});
        let r = call(&rt, "env/handler.lua", event).await;
        assert_eq!(
            body(&r),
            json!({"env": {"FROM_GATEWAY": "g", "PLAIN": "one", "SECRET": "two", "NUM": "3"}, "version": "default"})
        );
        let mut req: Json = serde_json::from_slice(&frame("env/handler.lua", "handler", json!({}))).unwrap();
        req["version"] = json!("v2");
        let raw = rt.call(serde_json::to_vec(&req).unwrap(), SECOND).await.unwrap();
        let r: Json = serde_json::from_slice(&raw).unwrap();
        assert_eq!(body(&r)["version"], "v2");
        assert_eq!(body(&r)["env"]["PLAIN"], "one");
    }

    #[tokio::test]
    async fn module_state_is_kept_per_function() {
        let rt = LuaRuntime::new(fixtures());
        for n in 1..=3 {
            let r = call(&rt, "counter_a.lua", json!({})).await;
            assert_eq!(body(&r), json!({"count": n, "loads": 1}));
        }
        // Same code in another file: its own state, its own counter and globals.
        let r = call(&rt, "counter_b.lua", json!({})).await;
        assert_eq!(body(&r), json!({"count": 1, "loads": 1}));
        let r = call(&rt, "counter_a.lua", json!({})).await;
        assert_eq!(body(&r), json!({"count": 4, "loads": 1}));
        let path = fixtures().canonicalize().unwrap().join("counter_a.lua");
        assert_eq!(rt.idle_states(&path), 1);
    }

    #[tokio::test]
    async fn local_modules_and_json() {
        let rt = LuaRuntime::new(fixtures());
        let r = call(&rt, "mods/handler.lua", json!({})).await;
        assert_eq!(
            body(&r),
            json!({"shout": "HI!", "same": true, "encoded": r#"{"a":[1,2]}"#, "decoded": 3})
        );
    }

    #[tokio::test]
    async fn cjson_helper_modules_and_getenv() {
        let rt = LuaRuntime::new(fixtures());
        let r = call(&rt, "cjson_mods/handler.lua", json!({"query": {"name": "ana"}})).await;
        assert_eq!(
            body(&r),
            json!({
                "greeting": "howdy, ana",
                "tool": "deep tool",
                "same_module": true,
                "shape": "folder module (init.lua)",
                "raised": "Expected object key string but found invalid token at character 2",
                "safe_nil": true,
                "safe_err": "Expected object key string but found invalid token at character 2",
                "null_kept": true,
                "global_is_safe": true,
                "from_env": "howdy",
                "difftime": 6,
            })
        );
    }

    #[test]
    fn module_names_stay_inside_the_folder() {
        assert_eq!(module_path("_helper").as_deref(), Some("_helper"));
        assert_eq!(module_path("lib.deep.tool").as_deref(), Some("lib/deep/tool"));
        assert_eq!(module_path("lib/[id]/x-y").as_deref(), Some("lib/[id]/x-y"));
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a..b",
            "a//b",
            "a/",
            ".a",
            "a\\b",
            "a b",
            "a\0",
            "ü",
        ] {
            assert_eq!(module_path(bad), None, "{bad:?}");
        }
    }

    #[tokio::test]
    async fn changed_file_runs_new_code() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("h.lua");
        std::fs::write(
            &file,
            "local n = 0\nreturn function() n = n + 1 return {v = 1, n = n} end\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("_dep.lua"), "return 'a'").unwrap();
        std::fs::write(
            dir.path().join("m.lua"),
            "local d = require('_dep') return function() return d end",
        )
        .unwrap();
        let rt = LuaRuntime::new(dir.path().to_path_buf());
        assert_eq!(body(&call(&rt, "h.lua", json!({})).await), json!({"v": 1, "n": 1}));
        assert_eq!(body(&call(&rt, "h.lua", json!({})).await), json!({"v": 1, "n": 2}));
        // A different size: the change is seen even within one mtime tick.
        std::fs::write(
            &file,
            "local n = 0\nreturn function() n = n + 1 return {v = 22, n = n} end\n",
        )
        .unwrap();
        assert_eq!(body(&call(&rt, "h.lua", json!({})).await), json!({"v": 22, "n": 1}));
        // A changed required module reloads the function too.
        assert_eq!(call(&rt, "m.lua", json!({})).await["body"], "a");
        std::fs::write(dir.path().join("_dep.lua"), "return 'bb'").unwrap();
        assert_eq!(call(&rt, "m.lua", json!({})).await["body"], "bb");
        // A removed file is an unknown function.
        std::fs::remove_file(&file).unwrap();
        let r = call(&rt, "h.lua", json!({})).await;
        assert_eq!(r["status"], 404);
        assert_eq!(error_of(&r), "unknown function");
    }

    #[tokio::test]
    async fn sandbox_holds_only_the_allowlist() {
        let rt = LuaRuntime::new(fixtures());
        let r = call(&rt, "sandbox/handler.lua", json!({"query": {"probe": "inventory"}})).await;
        let mut globals: Vec<&str> = SAFE_GLOBALS.to_vec();
        globals.sort_unstable();
        assert_eq!(
            body(&r),
            json!({
                "globals": globals,
                "os": ["clock", "date", "difftime", "getenv", "time"],
                "string_dump": "absent",
                "gc_count": "number",
                "path": "string",
                "hidden": true,
                "time": "integer",
                "year": 4,
                "unpack": 3,
                "utf8": "Hi",
                "loaded": 2,
                "loaded_env": 7,
                "meta_ok": "A",
            })
        );
        assert!(hidden_env("FN_ADMIN_TOKEN") && hidden_env("FN_CONSOLE_X") && hidden_env("FN_TRUSTED_Y"));
        assert!(!hidden_env("FN_OTHER"));
    }

    #[tokio::test]
    async fn sandbox_escapes_are_refused() {
        let rt = LuaRuntime::new(fixtures());
        let cases = [
            ("io_open", "attempt to index a nil value (global 'io')"),
            ("os_execute", "attempt to call a nil value (field 'execute')"),
            ("os_remove", "attempt to call a nil value (field 'remove')"),
            ("os_rename", "attempt to call a nil value (field 'rename')"),
            ("os_exit", "attempt to call a nil value (field 'exit')"),
            ("os_tmpname", "attempt to call a nil value (field 'tmpname')"),
            ("require_os", "module 'os' not found"),
            ("require_io", "module 'io' not found"),
            ("require_socket", "module 'socket' not found"),
            ("require_dotted", "module 'socket.core' not found"),
            ("require_traversal", "module '../print' refused"),
            ("require_slash", "module '/etc/passwd' refused"),
            ("string_dump", "attempt to call a nil value (field 'dump')"),
            ("load_binary", "attempt to load a binary chunk"),
            ("load_env", "attempt to index a nil value"),
            ("dofile", "attempt to call a nil value (global 'dofile')"),
            ("loadfile", "attempt to call a nil value (global 'loadfile')"),
            ("loadstring", "attempt to call a nil value (global 'loadstring')"),
            ("debug_getinfo", "attempt to index a nil value (global 'debug')"),
            ("package_loadlib", "attempt to index a nil value (global 'package')"),
            ("string_meta_dump", "attempt to call a nil value (field 'dump')"),
            ("string_meta_io", "attempt to index a nil value (field 'io')"),
            ("global_io", "attempt to index a nil value (field 'io')"),
            ("rawget_io", "attempt to index a nil value"),
            ("gc_collect", "collectgarbage: only \"count\" is allowed"),
            ("gc_metamethod", "__gc metamethods are not allowed"),
            ("coroutine", "attempt to index a nil value (global 'coroutine')"),
            ("warn", "attempt to call a nil value (global 'warn')"),
        ];
        for (probe, want) in cases {
            let r = call(&rt, "sandbox/handler.lua", json!({"query": {"probe": probe}})).await;
            assert_eq!(r["status"], 500, "{probe}: {r}");
            let err = error_of(&r);
            assert!(err.starts_with("sandbox/handler.lua:"), "{probe}: {err}");
            assert!(err.contains(want), "{probe}: {err}");
        }
    }

    #[tokio::test]
    async fn errors_are_500_replies() {
        let rt = LuaRuntime::new(fixtures());
        let r = call(&rt, "throws.lua", json!({})).await;
        assert_eq!(r["status"], 500);
        assert_eq!(r["headers"], json!({"Content-Type": "application/json"}));
        assert_eq!(error_of(&r), "throws.lua:2: boom");
        assert!(r["stderr"].as_str().unwrap().contains("stack traceback"), "{r}");
        assert_eq!(r["stdout"], "before\n");
        let r = call(&rt, "syntax.lua", json!({})).await;
        assert_eq!(r["status"], 500);
        let err = error_of(&r);
        assert!(err.starts_with("failed to load handler: syntax.lua:2:"), "{err}");
        assert!(err.contains("near <eof>"), "{err}");
        let raw = rt.call(b"not json".to_vec(), SECOND).await.unwrap();
        let r: Json = serde_json::from_slice(&raw).unwrap();
        assert_eq!(
            (r["status"].clone(), error_of(&r)),
            (json!(400), "invalid json request".into())
        );
        let mut req: Json = serde_json::from_slice(&frame("print.lua", "handler", json!({}))).unwrap();
        req["adapter"] = json!("aws-lambda");
        let raw = rt.call(serde_json::to_vec(&req).unwrap(), SECOND).await.unwrap();
        let r: Json = serde_json::from_slice(&raw).unwrap();
        assert_eq!(error_of(&r), "adapter not supported yet: aws-lambda");
    }

    #[tokio::test]
    async fn unknown_and_traversal_are_404() {
        let rt = LuaRuntime::new(fixtures().join("forms"));
        for entry in [
            "missing.lua",
            "../print.lua",
            "forms/../../print.lua",
            "/etc/passwd",
            "../shorthand.lua",
            "",
            "returns_function.py",
        ] {
            let r = call(&rt, entry, json!({})).await;
            assert_eq!(r["status"], 404, "{entry}");
            assert_eq!(error_of(&r), "unknown function", "{entry}");
        }
        // Folder functions: fn_source_dir or fn as a folder, handler.lua first.
        let rt = LuaRuntime::new(fixtures());
        let raw = rt
            .call(serde_json::to_vec(&json!({"fn": "env", "event": {}})).unwrap(), SECOND)
            .await
            .unwrap();
        let r: Json = serde_json::from_slice(&raw).unwrap();
        assert_eq!(body(&r)["version"], "default");
        let raw = rt
            .call(
                serde_json::to_vec(&json!({"fn": "x", "fn_source_dir": "mods", "event": {}})).unwrap(),
                SECOND,
            )
            .await
            .unwrap();
        let r: Json = serde_json::from_slice(&raw).unwrap();
        assert_eq!(body(&r)["shout"], "HI!");
    }

    #[test]
    fn infinite_loop_times_out_and_others_still_work() {
        // Our own tokio runtime, shut down without waiting: dropping one waits for blocking tasks
        // forever, so a broken hook would hang this test instead of failing it.
        let tokio_rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let rt = LuaRuntime::new(fixtures());
        let (timed, after) = tokio_rt.block_on(async {
            let mut timed = Vec::new();
            for entry in ["loop.lua", "pcall_loop.lua"] {
                let t0 = Instant::now();
                let r = rt
                    .call(frame(entry, "handler", json!({})), Duration::from_millis(200))
                    .await;
                timed.push((entry, r, t0.elapsed()));
            }
            let after = rt.call(
                frame("forms/returns_function.lua", "handler", json!({"params": {"id": "7"}})),
                SECOND,
            );
            (timed, after.await)
        });
        tokio_rt.shutdown_timeout(Duration::from_millis(10));
        for (entry, r, took) in timed {
            assert!(matches!(r, Err(LuaError::Timeout)), "{entry}: {r:?}");
            assert!(took >= Duration::from_millis(200), "{entry}: {took:?}");
            assert!(took < Duration::from_millis(350), "{entry}: {took:?}");
        }
        let after: Json = serde_json::from_slice(&after.unwrap()).unwrap();
        assert_eq!(body(&after)["id"], "7");
        // The hook itself ends the loop (not only the async grace timer): the blocking call returns.
        for entry in ["loop.lua", "pcall_loop.lua"] {
            let (tx, rx) = std::sync::mpsc::channel();
            let inner = rt.inner.clone();
            let t0 = Instant::now();
            std::thread::spawn(move || {
                let _ = tx.send(inner.run(&frame(entry, "handler", json!({})), t0 + Duration::from_millis(200)));
            });
            let r = rx
                .recv_timeout(Duration::from_secs(2))
                .expect("the hook did not stop the loop");
            assert!(matches!(r, Err(LuaError::Timeout)), "{entry}: {r:?}");
            assert!(t0.elapsed() < Duration::from_millis(300), "{entry}: {:?}", t0.elapsed());
        }
        let path = fixtures().canonicalize().unwrap().join("loop.lua");
        assert_eq!(rt.idle_states(&path), 0, "a timed-out state is not reused");
    }

    #[tokio::test]
    async fn memory_bomb_is_an_error_reply() {
        let rt = LuaRuntime::new(fixtures());
        let r = call(&rt, "bomb.lua", json!({})).await;
        assert_eq!(r["status"], 500);
        assert_eq!(error_of(&r), "memory limit");
        let path = fixtures().canonicalize().unwrap().join("bomb.lua");
        assert_eq!(rt.idle_states(&path), 0, "a state that hit the limit is dropped");
        let r = call(&rt, "counter_a.lua", json!({})).await;
        assert_eq!(r["status"], 200);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn calls_run_in_parallel() {
        let rt = Arc::new(LuaRuntime::new(fixtures()));
        // Warm one state per function so the timing is about the calls, not about loading.
        call(&rt, "busy.lua", json!({})).await;
        call(&rt, "busy2.lua", json!({})).await;
        let t0 = Instant::now();
        let mut tasks = Vec::new();
        for i in 0..8 {
            let rt = rt.clone();
            let entry = if i % 2 == 0 { "busy.lua" } else { "busy2.lua" };
            tasks.push(tokio::spawn(async move { call(&rt, entry, json!({})).await }));
        }
        for t in tasks {
            let r = t.await.unwrap();
            assert!(body(&r)["waited"].as_f64().unwrap() >= 0.1);
        }
        let took = t0.elapsed();
        // Serialised, 8 calls of 100 ms take 800 ms; in parallel about 100 ms.
        assert!(took < Duration::from_millis(500), "{took:?}");
        let path = fixtures().canonicalize().unwrap().join("busy.lua");
        let idle = rt.idle_states(&path);
        assert!((2..=MAX_IDLE_STATES).contains(&idle), "{idle} idle states");
    }

    #[test]
    fn json_tables_map_to_arrays_and_objects() {
        // Replies and `proxy` follow `cjson.encode`: empty table → {}, holes → null.
        let lua = Lua::new();
        let v: Value = lua
            .load(r#"return { {}, {1, 2}, {a = 1}, {[1] = "x", [3] = "y"}, 1.5, "s" }"#)
            .eval()
            .unwrap();
        assert_eq!(
            to_json(&lua, &v).unwrap(),
            json!([{}, [1, 2], {"a": 1}, ["x", null, "y"], 1.5, "s"])
        );
        let cyclic: Value = lua.load("local t = {} t.t = t return t").eval().unwrap();
        assert!(to_json(&lua, &cyclic).unwrap_err().contains("excessive nesting"));
        // The event: JSON null becomes nil (the key is absent, array holes stay holes).
        let back = to_lua(&lua, &json!({"a": [1, null, "x"], "b": null})).unwrap();
        assert_eq!(to_json(&lua, &back).unwrap(), json!({"a": [1, null, "x"]}));
    }
}
