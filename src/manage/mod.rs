//! Managing functions from the console (FastFN's CRUD API, `http-api.md` "CRUD and
//! configuration"): `/_fn/function` (detail, create, delete), `/_fn/function-config`,
//! `/_fn/function-env`, `/_fn/function-code`, `/_fn/function-files`,
//! `/_fn/function-file-content`, `/_fn/api/functions`, `/_fn/ui-state`, `/_fn/login`,
//! `/_fn/logout`.
//!
//! Invariants:
//! - Every call passes the admin guard (`admin::api_guard`: switches, local-only, `Host`,
//!   CSRF); every write also needs the write switch (`FN_CONSOLE_WRITE_ENABLED`, off by
//!   default, or the admin token) and, with login on, a session.
//! - A function is named by `runtime` + `name` (+ `version`) as the route map knows it, so a
//!   read or write reaches only a served function's folder; client paths inside it go through
//!   [`fsops::contained`] (relative, no `..`, no hidden segment, no symlink).
//! - Every write is validated before it touches the disk (`fn.config.json` with the engine's
//!   own parser, `fn.env.json` as an object of scalar values), written atomically, and refused
//!   with 409 and both versions when the file changed since the client read it (`If-Match`).
//! - Writes are serialised (one lock) and followed by a reload, whose outcome the answer carries.

pub mod fsops;
pub mod login;
pub mod syntax;

use crate::config::ConfigError;
use crate::engine::Shared;
use crate::rescue::{json_response, Body, Failure};
use crate::routing::Route;
use crate::runtime::RuntimeKind;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, SET_COOKIE};
use hyper::http::request::Parts;
use hyper::{Method, Response, StatusCode};
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use ts_rs::TS;

/// Largest request body of these endpoints (a 2 MiB file, JSON-escaped).
const MAX_BODY: usize = 6 * 1024 * 1024;
/// What a secret's value reads as (FastFN's mask); sent back unchanged, it keeps the value.
pub const HIDDEN: &str = "<hidden>";

/// The console's switches and login, from the environment.
#[derive(Debug, Clone, Default)]
pub struct ConsoleSettings {
    /// `FN_CONSOLE_WRITE_ENABLED` (default off): the console may change files.
    pub write_enabled: bool,
    pub login: login::LoginSettings,
    /// FastFN console variables that are set but not implemented here (warned at start).
    pub unsupported: Vec<&'static str>,
}

/// FastFN's per-request console rate limits: not implemented (only login attempts are limited).
const UNSUPPORTED_ENV: &[&str] = &[
    "FN_CONSOLE_RATE_LIMIT_MAX",
    "FN_CONSOLE_RATE_LIMIT_WINDOW_S",
    "FN_CONSOLE_WRITE_RATE_LIMIT_MAX",
];

impl ConsoleSettings {
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<ConsoleSettings, ConfigError> {
        let err = |(name, message): (String, String)| ConfigError {
            code: "config.invalid_env",
            file: PathBuf::from(format!("${name}")),
            field: None,
            message,
        };
        let write_enabled = match env("FN_CONSOLE_WRITE_ENABLED").map(|s| s.trim().to_ascii_lowercase()) {
            None => false,
            Some(s) => match s.as_str() {
                "1" | "true" | "yes" | "on" => true,
                "0" | "false" | "no" | "off" | "" => false,
                _ => {
                    return Err(err((
                        "FN_CONSOLE_WRITE_ENABLED".into(),
                        format!("expected 0 or 1, got `{s}`"),
                    )))
                }
            },
        };
        Ok(ConsoleSettings {
            write_enabled,
            login: login::LoginSettings::from_env(env).map_err(err)?,
            unsupported: UNSUPPORTED_ENV.iter().copied().filter(|k| env(k).is_some()).collect(),
        })
    }
}

/// Runtime state of the console: the `ui-state` write override, login attempts, the session
/// key, and the lock that serialises writes.
pub struct State {
    write_override: Mutex<Option<bool>>,
    attempts: Mutex<login::Attempts>,
    sessions: login::Sessions,
    write_lock: tokio::sync::Mutex<()>,
}

impl State {
    pub fn new(settings: &ConsoleSettings) -> State {
        for name in &settings.unsupported {
            tracing::warn!(
                "{name} is not supported by this build: console requests are not rate-limited (login attempts are)"
            );
        }
        if settings.login.enabled && !settings.login.configured() {
            tracing::warn!(
                "FN_CONSOLE_LOGIN_ENABLED=1 without FN_CONSOLE_LOGIN_USERNAME and a password: nobody can sign in"
            );
        }
        State {
            write_override: Mutex::new(None),
            attempts: Mutex::new(login::Attempts::default()),
            sessions: login::Sessions::new(settings.login.secret.as_deref()),
            write_lock: tokio::sync::Mutex::new(()),
        }
    }
}

/// Why a management call was refused. One map to HTTP: [`ManageError::into_response`].
#[derive(Debug, thiserror::Error)]
pub enum ManageError {
    #[error("invalid runtime")]
    InvalidRuntime,
    #[error("runtime not enabled")]
    RuntimeNotEnabled,
    #[error("invalid function")]
    InvalidName,
    #[error("invalid version")]
    InvalidVersion,
    #[error("invalid path `{0}`: a relative path inside the function's folder, without `..` or hidden segments")]
    InvalidPath(String),
    #[error("function not found")]
    NotFound,
    #[error("file not found")]
    FileNotFound,
    #[error("not a file")]
    NotAFile,
    #[error("file exceeds 2 MiB")]
    TooLarge,
    #[error("{0}")]
    BadRequest(&'static str),
    #[error("invalid fn.config.json: {}", .0.message)]
    InvalidConfig(ConfigError),
    #[error("invalid fn.env.json: {0}")]
    InvalidEnv(String),
    #[error("function already exists")]
    Exists,
    #[error("unsupported runtime for create (no template): pass `code`")]
    NoTemplate,
    #[error("the functions root itself cannot be deleted")]
    RootRefused,
    /// The file changed on disk since the client read it (its `If-Match` tag is stale).
    #[error("file changed on disk since it was loaded")]
    Conflict {
        path: String,
        current_etag: Option<String>,
        current: Option<String>,
        yours: String,
    },
    #[error("console write disabled")]
    WriteDisabled,
    #[error("login required")]
    LoginRequired,
    #[error("login disabled")]
    LoginDisabled,
    #[error("invalid credentials")]
    BadCredentials,
    #[error("too many login attempts, try again later")]
    TooManyAttempts,
    #[error("login is enabled but credentials are not configured")]
    LoginNotConfigured,
    #[error("method not allowed")]
    MethodNotAllowed(&'static str),
    #[error("file system error: {0}")]
    Io(String),
}

impl ManageError {
    pub fn status(&self) -> StatusCode {
        use ManageError::*;
        match self {
            NotFound | FileNotFound | LoginDisabled => StatusCode::NOT_FOUND,
            Conflict { .. } => StatusCode::CONFLICT,
            TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            WriteDisabled => StatusCode::FORBIDDEN,
            LoginRequired | BadCredentials => StatusCode::UNAUTHORIZED,
            TooManyAttempts => StatusCode::TOO_MANY_REQUESTS,
            MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            LoginNotConfigured | Io(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    pub fn into_response(self) -> Response<Body> {
        let mut body = json!({ "error": self.to_string() });
        match &self {
            ManageError::InvalidConfig(e) => {
                body["code"] = json!(e.code);
                if let Some(f) = &e.field {
                    body["field"] = json!(f);
                }
            }
            ManageError::Conflict {
                path,
                current_etag,
                current,
                yours,
            } => {
                body["path"] = json!(path);
                body["current"] = json!({ "etag": current_etag, "content": current });
                body["yours"] = json!({ "content": yours });
            }
            _ => {}
        }
        let mut resp = json_response(self.status(), &body);
        if let ManageError::MethodNotAllowed(allow) = self {
            resp.headers_mut()
                .insert(hyper::header::ALLOW, HeaderValue::from_static(allow));
        }
        resp
    }
}

/// Paths this module answers.
pub(crate) fn owns(path: &str) -> bool {
    matches!(
        path,
        "/_fn/function"
            | "/_fn/function-config"
            | "/_fn/function-env"
            | "/_fn/function-code"
            | "/_fn/function-files"
            | "/_fn/function-file-content"
            | "/_fn/api/functions"
            | "/_fn/ui-state"
            | "/_fn/login"
            | "/_fn/logout"
    )
}

fn now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The signed-in user of this request, if its session cookie is valid.
pub(crate) fn session_user(shared: &Shared, parts: &Parts) -> Option<String> {
    let login = &shared.settings.console.login;
    let header = parts.headers.get(hyper::header::COOKIE)?.to_str().ok()?;
    let token = login::cookie_token(header)?;
    shared.manage.sessions.check(token, login, now_s())
}

/// `FN_CONSOLE_LOGIN_API=1`: the admin API needs a session or the admin token (checked by
/// `admin::api_guard`; login and logout skip it).
pub(crate) fn login_gate(shared: &Shared, parts: &Parts, token_ok: bool) -> Option<Failure> {
    let login = &shared.settings.console.login;
    if !login.api || token_ok || matches!(parts.uri.path(), "/_fn/login" | "/_fn/logout") {
        return None;
    }
    session_user(shared, parts)
        .is_none()
        .then_some(Failure::Unauthorized("login required"))
}

fn write_enabled(shared: &Shared) -> bool {
    let over = *shared.manage.write_override.lock().unwrap_or_else(|e| e.into_inner());
    over.unwrap_or(shared.settings.console.write_enabled)
}

/// FastFN's `enforce_write`: the admin token, else the write switch and, with login on, a
/// session.
fn write_guard(shared: &Shared, parts: &Parts) -> Result<(), ManageError> {
    if crate::admin::has_admin_token(shared, parts) {
        return Ok(());
    }
    if !write_enabled(shared) {
        return Err(ManageError::WriteDisabled);
    }
    if shared.settings.console.login.enabled && session_user(shared, parts).is_none() {
        return Err(ManageError::LoginRequired);
    }
    Ok(())
}

pub(crate) async fn handle(shared: &Arc<Shared>, parts: Parts, body: Incoming, remote: SocketAddr) -> Response<Body> {
    let guard = if matches!(parts.uri.path(), "/_fn/login" | "/_fn/logout") {
        crate::admin::api_guard_without_login(shared, &parts, remote)
    } else {
        crate::admin::api_guard(shared, &parts, remote)
    };
    if let Some(refused) = guard {
        return refused.into_response();
    }
    dispatch(shared, &parts, body, remote)
        .await
        .unwrap_or_else(ManageError::into_response)
}

async fn read_json(body: Incoming) -> Result<Value, ManageError> {
    use http_body_util::BodyExt;
    let bytes = http_body_util::Limited::new(body, MAX_BODY)
        .collect()
        .await
        .map_err(|_| ManageError::TooLarge)?
        .to_bytes();
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Map::new()));
    }
    match serde_json::from_slice(&bytes) {
        Ok(v @ Value::Object(_)) => Ok(v),
        _ => Err(ManageError::BadRequest("invalid json body")),
    }
}

fn query_map(parts: &Parts) -> BTreeMap<String, String> {
    let q = parts.uri.query().unwrap_or("");
    q.split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            let dec = |s: &str| {
                percent_encoding::percent_decode_str(&s.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (dec(k), dec(v))
        })
        .collect()
}

fn if_match(parts: &Parts, body: &Value) -> Option<String> {
    parts
        .headers
        .get(hyper::header::IF_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| body.get("etag").and_then(Value::as_str).map(str::to_string))
        .filter(|s| !s.is_empty() && s != "*")
}

async fn dispatch(
    shared: &Arc<Shared>,
    parts: &Parts,
    body: Incoming,
    remote: SocketAddr,
) -> Result<Response<Body>, ManageError> {
    let path = parts.uri.path();
    let m = &parts.method;
    let get = matches!(*m, Method::GET | Method::HEAD);
    let q = query_map(parts);
    let ok = |v: Value| Ok(json_response(StatusCode::OK, &v));
    match path {
        "/_fn/api/functions" if get => ok(json!(list_functions(shared))),
        "/_fn/api/functions" => Err(ManageError::MethodNotAllowed("GET, HEAD")),
        "/_fn/ui-state" if get => ok(ui_state(shared, parts)),
        "/_fn/ui-state" if matches!(*m, Method::PUT | Method::POST | Method::PATCH | Method::DELETE) => {
            write_guard(shared, parts)?;
            let payload = if *m == Method::DELETE {
                None
            } else {
                Some(read_json(body).await?)
            };
            set_ui_state(shared, payload)?;
            ok(ui_state(shared, parts))
        }
        "/_fn/ui-state" => Err(ManageError::MethodNotAllowed("GET, PUT, POST, PATCH, DELETE")),
        "/_fn/login" if *m == Method::POST => login(shared, body, remote).await,
        "/_fn/logout" if *m == Method::POST => {
            let mut resp = json_response(StatusCode::OK, &json!({"ok": true}));
            resp.headers_mut().insert(
                SET_COOKIE,
                HeaderValue::from_static("fastfn_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
            );
            Ok(resp)
        }
        "/_fn/login" | "/_fn/logout" => Err(ManageError::MethodNotAllowed("POST")),
        "/_fn/function" => match *m {
            Method::GET | Method::HEAD => {
                let f = find(shared, &q)?;
                let code = q.get("include_code").map(String::as_str) != Some("0");
                ok(detail(shared, &f, code)?)
            }
            Method::POST => {
                write_guard(shared, parts)?;
                let payload = read_json(body).await?;
                create(shared, &q, payload).await
            }
            Method::DELETE => {
                write_guard(shared, parts)?;
                let f = find(shared, &q)?;
                delete(shared, &f).await
            }
            _ => Err(ManageError::MethodNotAllowed("GET, HEAD, POST, DELETE")),
        },
        "/_fn/function-config" | "/_fn/function-env" => {
            let f = find(shared, &q)?;
            let file = if path == "/_fn/function-config" {
                "fn.config.json"
            } else {
                "fn.env.json"
            };
            match *m {
                Method::GET | Method::HEAD => ok(detail(shared, &f, false)?),
                Method::PUT => {
                    write_guard(shared, parts)?;
                    let payload = read_json(body).await?;
                    let expect = if_match(parts, &Value::Null);
                    let replace = q.get("replace").is_some_and(|v| v == "1" || v == "true");
                    let _lock = shared.manage.write_lock.lock().await;
                    let abs = fsops::contained(&shared.settings.functions_root, &f.rel(file))?;
                    let old = fsops::read(&abs)?;
                    let (text, warnings) = if file == "fn.config.json" {
                        merged_config(old.as_deref(), payload, replace)?
                    } else {
                        (merged_env(old.as_deref(), payload, replace)?, Vec::new())
                    };
                    let reload = write_checked(shared, &f.rel(file), &abs, old, expect, text).await?;
                    let mut out = detail(shared, &refreshed(shared, f), false)?;
                    out["reload"] = reload;
                    out["warnings"] = json!(warnings);
                    ok(out)
                }
                _ => Err(ManageError::MethodNotAllowed("GET, HEAD, PUT")),
            }
        }
        "/_fn/function-code" => {
            if *m != Method::PUT {
                return Err(ManageError::MethodNotAllowed("PUT"));
            }
            write_guard(shared, parts)?;
            let f = find(shared, &q)?;
            let payload = read_json(body).await?;
            let Some(code) = payload.get("code").and_then(Value::as_str) else {
                return Err(ManageError::BadRequest("code must be a string"));
            };
            if code.len() > fsops::MAX_FILE_BYTES {
                return Err(ManageError::TooLarge);
            }
            let expect = if_match(parts, &payload);
            let _lock = shared.manage.write_lock.lock().await;
            let abs = fsops::contained(&shared.settings.functions_root, &f.entry)?;
            let old = fsops::read(&abs)?;
            let reload = write_checked(shared, &f.entry, &abs, old, expect, code.to_string()).await?;
            let checked = syntax::check(&abs, &f.entry, &|k| shared.settings.binary(k).to_string()).await;
            let mut out = detail(shared, &refreshed(shared, f), true)?;
            out["reload"] = reload;
            out["syntax"] = json!(checked);
            ok(out)
        }
        "/_fn/function-files" => {
            if !get {
                return Err(ManageError::MethodNotAllowed("GET, HEAD"));
            }
            let f = find(shared, &q)?;
            let dir = dir_abs(shared, &f)?;
            let entry = f.entry.strip_prefix(&f.dir_prefix()).unwrap_or(&f.entry).to_string();
            let versions = versions_of(shared, &f);
            ok(json!({
                "runtime": f.runtime.name(),
                "name": f.name,
                "version": f.version,
                "function_dir": f.dir,
                "files": fsops::list(&dir, &entry),
                "versions": versions,
            }))
        }
        "/_fn/function-file-content" => file_content(shared, parts, &q, body).await,
        _ => Err(ManageError::NotFound),
    }
}

/// A served function, as the route map knows it.
#[derive(Debug, Clone)]
struct Found {
    runtime: RuntimeKind,
    name: String,
    version: Option<String>,
    /// Its folder, root-relative (`""` = the root).
    dir: String,
    /// Its entry file, root-relative.
    entry: String,
    explicit: bool,
    /// `(pattern, methods)` of its routes.
    routes: Vec<(String, Vec<&'static str>)>,
    policy: Value,
}

impl Found {
    fn dir_prefix(&self) -> String {
        if self.dir.is_empty() {
            String::new()
        } else {
            format!("{}/", self.dir)
        }
    }
    fn rel(&self, file: &str) -> String {
        format!("{}{file}", self.dir_prefix())
    }
}

fn parent(rel: &str) -> String {
    rel.rsplit_once('/').map(|(d, _)| d.to_string()).unwrap_or_default()
}

/// A name that cannot leave the root: relative, `/`-separated, no `.`/`..`/empty segment.
fn check_name(name: &str) -> Result<(), ManageError> {
    let bad = name.is_empty()
        || name.len() > 512
        || name.starts_with('/')
        || name.contains(['\\', '\0'])
        || name.split('/').any(|s| s.is_empty() || s == "." || s == "..");
    if bad {
        Err(ManageError::InvalidName)
    } else {
        Ok(())
    }
}

fn check_version(v: &str) -> Result<(), ManageError> {
    let ok = !v.is_empty()
        && v != "."
        && v != ".."
        && v.len() <= 64
        && v.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(ManageError::InvalidVersion)
    }
}

/// `runtime`, `name` and `version` of the query, checked.
fn ident(q: &BTreeMap<String, String>) -> Result<(RuntimeKind, String, Option<String>), ManageError> {
    let runtime = q
        .get("runtime")
        .and_then(|r| RuntimeKind::parse(r))
        .ok_or(ManageError::InvalidRuntime)?;
    let name = q.get("name").cloned().unwrap_or_default();
    check_name(&name)?;
    let version = q.get("version").filter(|v| !v.is_empty() && *v != "default").cloned();
    if let Some(v) = &version {
        check_version(v)?;
    }
    Ok((runtime, name, version))
}

fn methods_of(route: &Route) -> Vec<&'static str> {
    route.methods.names().collect()
}

fn find(shared: &Shared, q: &BTreeMap<String, String>) -> Result<Found, ManageError> {
    let (runtime, name, version) = ident(q)?;
    lookup(shared, runtime, &name, version.as_deref()).ok_or(ManageError::NotFound)
}

fn lookup(shared: &Shared, runtime: RuntimeKind, name: &str, version: Option<&str>) -> Option<Found> {
    let served = shared.served();
    let mut found: Option<Found> = None;
    for r in served.discovery.routes.routes() {
        let t = &r.target;
        if t.runtime == runtime && t.fn_name == name && t.version.as_deref() == version {
            add_route(&mut found, r);
        }
    }
    found
}

/// Adds one route of a function to what is known of it (the first route fills the rest).
fn add_route(found: &mut Option<Found>, r: &Route) {
    let t = &r.target;
    let f = found.get_or_insert_with(|| Found {
        runtime: t.runtime,
        name: t.fn_name.clone(),
        version: t.version.clone(),
        // A version lives in its own folder; an explicit function's config sits in its
        // source folder even when its entry is deeper.
        dir: match (&t.version, &t.fn_source_dir) {
            (None, Some(d)) if t.explicit => d.trim_end_matches('/').to_string(),
            _ => parent(&t.entry),
        },
        entry: t.entry.clone(),
        explicit: t.explicit,
        routes: Vec::new(),
        policy: serde_json::to_value(&t.policy).unwrap_or(Value::Null),
    });
    f.routes.push((r.pattern.clone(), methods_of(r)));
}

/// The function as the map serves it after a write (its policy may have changed); the old
/// view when the write took it out of the map (the reload's errors say why).
fn refreshed(shared: &Shared, f: Found) -> Found {
    lookup(shared, f.runtime, &f.name, f.version.as_deref()).unwrap_or(f)
}

fn dir_abs(shared: &Shared, f: &Found) -> Result<PathBuf, ManageError> {
    if f.dir.is_empty() {
        Ok(shared.settings.functions_root.clone())
    } else {
        fsops::contained(&shared.settings.functions_root, &f.dir)
    }
}

fn versions_of(shared: &Shared, f: &Found) -> Vec<String> {
    let served = shared.served();
    let mut out: Vec<String> = served
        .discovery
        .routes
        .routes()
        .iter()
        .filter(|r| r.target.runtime == f.runtime && r.target.fn_name == f.name)
        .filter_map(|r| r.target.version.clone())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// One function of `/_fn/api/functions`.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct FunctionSummary {
    pub runtime: String,
    pub name: String,
    pub version: Option<String>,
    pub function_dir: String,
    pub file_path: String,
    pub explicit: bool,
    pub routes: Vec<FunctionRoute>,
}

#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct FunctionRoute {
    pub route: String,
    pub methods: Vec<String>,
}

/// Every function of the map, in one pass over its routes (large projects have thousands).
fn list_functions(shared: &Shared) -> Vec<FunctionSummary> {
    let served = shared.served();
    let mut by_fn: BTreeMap<(&str, &str, Option<&str>), Option<Found>> = BTreeMap::new();
    for r in served.discovery.routes.routes() {
        let t = &r.target;
        let key = (t.fn_name.as_str(), t.runtime.name(), t.version.as_deref());
        add_route(by_fn.entry(key).or_default(), r);
    }
    by_fn.values().flatten().map(summary).collect()
}

fn summary(f: &Found) -> FunctionSummary {
    FunctionSummary {
        runtime: f.runtime.name().to_string(),
        name: f.name.clone(),
        version: f.version.clone(),
        function_dir: f.dir.clone(),
        file_path: f.entry.clone(),
        explicit: f.explicit,
        routes: f
            .routes
            .iter()
            .map(|(p, m)| FunctionRoute {
                route: p.clone(),
                methods: m.iter().map(|s| s.to_string()).collect(),
            })
            .collect(),
    }
}

/// One `fn.env.json` entry as the console shows it: secrets masked.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct EnvView {
    pub value: String,
    pub is_secret: bool,
}

/// Stored entries of an `fn.env.json` text: `"K": "v"` or `"K": {"value", "is_secret"}`.
fn parse_env(text: &[u8]) -> Result<BTreeMap<String, (String, bool)>, ManageError> {
    let v: Value =
        serde_json::from_slice(text).map_err(|e| ManageError::InvalidEnv(format!("not valid JSON ({e})")))?;
    let Value::Object(map) = v else {
        return Err(ManageError::InvalidEnv("must be a JSON object".into()));
    };
    let mut out = BTreeMap::new();
    for (k, v) in map {
        let entry = match v {
            Value::Object(o) => match o.get("value").and_then(scalar) {
                Some(s) => (s, o.get("is_secret").and_then(Value::as_bool).unwrap_or(false)),
                None => continue,
            },
            other => match scalar(&other) {
                Some(s) => (s, false),
                None => continue,
            },
        };
        out.insert(k, entry);
    }
    Ok(out)
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The masked view: a secret's value reads as [`HIDDEN`]. (Kept local; the secrets work
/// (`is_secret`, `/_fn/secrets`) may bring a shared helper.)
pub fn mask_env(env: &BTreeMap<String, (String, bool)>) -> BTreeMap<String, EnvView> {
    env.iter()
        .map(|(k, (v, secret))| {
            (
                k.clone(),
                EnvView {
                    value: if *secret { HIDDEN.to_string() } else { v.clone() },
                    is_secret: *secret,
                },
            )
        })
        .collect()
}

/// A new `fn.env.json` text from the stored one and a payload: each key maps to a scalar,
/// `{value, is_secret}`, or `null` (delete). A secret sent back as [`HIDDEN`] keeps its value.
/// With `replace`, keys the payload does not name are removed.
fn merged_env(old: Option<&[u8]>, payload: Value, replace: bool) -> Result<String, ManageError> {
    let stored = match old {
        None => BTreeMap::new(),
        Some(bytes) => match parse_env(bytes) {
            Ok(m) => m,
            Err(e) if !replace => return Err(e),
            Err(_) => BTreeMap::new(),
        },
    };
    let Value::Object(updates) = payload else {
        return Err(ManageError::InvalidEnv("payload must be an object".into()));
    };
    let mut next = if replace { BTreeMap::new() } else { stored.clone() };
    for (k, v) in updates {
        if k.is_empty() || k.contains('\0') || k.contains('=') {
            return Err(ManageError::InvalidEnv(format!("invalid key `{k}`")));
        }
        let (value, secret) = match &v {
            Value::Null => {
                next.remove(&k);
                continue;
            }
            Value::Object(o) => {
                let value = match o.get("value") {
                    Some(Value::Null) | None => {
                        next.remove(&k);
                        continue;
                    }
                    Some(x) => {
                        scalar(x).ok_or_else(|| ManageError::InvalidEnv(format!("`{k}`: value must be a string")))?
                    }
                };
                let secret = match o.get("is_secret") {
                    None | Some(Value::Null) => stored.get(&k).map(|e| e.1).unwrap_or(false),
                    Some(Value::Bool(b)) => *b,
                    Some(_) => return Err(ManageError::InvalidEnv(format!("`{k}`: is_secret must be a boolean"))),
                };
                (value, secret)
            }
            other => (
                scalar(other).ok_or_else(|| {
                    ManageError::InvalidEnv(format!("`{k}`: values are strings or {{value, is_secret}}"))
                })?,
                stored.get(&k).map(|e| e.1).unwrap_or(false),
            ),
        };
        let value = if value == HIDDEN {
            match stored.get(&k) {
                Some((old, _)) => old.clone(),
                // A mask for a key that has no value: nothing to keep.
                None => continue,
            }
        } else {
            value
        };
        next.insert(k, (value, secret));
    }
    let mut out = Map::new();
    for (k, (v, secret)) in next {
        out.insert(
            k,
            if secret {
                json!({"value": v, "is_secret": true})
            } else {
                Value::String(v)
            },
        );
    }
    Ok(serde_json::to_string_pretty(&Value::Object(out)).unwrap_or_default() + "\n")
}

/// A new `fn.config.json` text, validated with the engine's own parser. The payload replaces
/// the file (`replace`) or is merged into it as FastFN does: top-level keys replace, `null`
/// deletes, top-level `methods`/`routes`/`route` go into `invoke` (where `invoke.*` wins).
/// Also answers the parser's warnings (keys this build does not support: served without).
fn merged_config(old: Option<&[u8]>, payload: Value, replace: bool) -> Result<(String, Vec<String>), ManageError> {
    let Value::Object(mut updates) = payload else {
        return Err(ManageError::BadRequest("payload must be an object"));
    };
    let mut cfg = match (replace, old) {
        (false, Some(bytes)) => match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(m)) => m,
            _ => {
                return Err(ManageError::BadRequest(
                    "the stored fn.config.json is not a JSON object: replace it whole (replace=1)",
                ))
            }
        },
        _ => Map::new(),
    };
    if !replace {
        let mut lifted = Map::new();
        for key in ["methods", "routes", "route"] {
            if let Some(v) = updates.remove(key) {
                lifted.insert(key.to_string(), v);
            }
        }
        if !lifted.is_empty() {
            let mut invoke = match cfg.remove("invoke") {
                Some(Value::Object(m)) => m,
                _ => Map::new(),
            };
            for (k, v) in lifted {
                invoke.insert(k, v);
            }
            if let Some(Value::Object(given)) = updates.remove("invoke") {
                for (k, v) in given {
                    invoke.insert(k, v);
                }
            }
            updates.insert("invoke".into(), Value::Object(invoke));
        }
    }
    for (k, v) in updates {
        if v.is_null() {
            cfg.remove(&k);
        } else {
            cfg.insert(k, v);
        }
    }
    let text = serde_json::to_string_pretty(&Value::Object(cfg)).unwrap_or_default() + "\n";
    let parsed = crate::config::function::parse_fn_config(&text, Path::new("fn.config.json"))
        .map_err(ManageError::InvalidConfig)?;
    Ok((text, parsed.warnings))
}

fn is_env_file(rel: &str) -> bool {
    rel.rsplit('/').next() == Some("fn.env.json")
}

/// An `fn.env.json` text with every secret's value replaced by [`HIDDEN`].
fn masked_env_text(bytes: &[u8]) -> Result<String, ManageError> {
    let mut out = Map::new();
    for (k, e) in mask_env(&parse_env(bytes)?) {
        out.insert(
            k,
            if e.is_secret {
                json!({"value": e.value, "is_secret": true})
            } else {
                Value::String(e.value)
            },
        );
    }
    Ok(serde_json::to_string_pretty(&Value::Object(out)).unwrap_or_default() + "\n")
}

/// Validates a whole file by its name (config and env have rules; other files are text);
/// answers the config parser's warnings.
fn validate_file(rel: &str, text: &str) -> Result<Vec<String>, ManageError> {
    match rel.rsplit('/').next().unwrap_or(rel) {
        "fn.config.json" => crate::config::function::parse_fn_config(text, Path::new("fn.config.json"))
            .map(|c| c.warnings)
            .map_err(ManageError::InvalidConfig),
        "fn.env.json" => parse_env(text.as_bytes()).map(|_| Vec::new()),
        _ => Ok(Vec::new()),
    }
}

/// Writes `text` over `abs` unless the client's tag is stale (409 with both versions), then
/// reloads. Call with the write lock held.
async fn write_checked(
    shared: &Arc<Shared>,
    rel: &str,
    abs: &Path,
    old: Option<Vec<u8>>,
    expect: Option<String>,
    text: String,
) -> Result<Value, ManageError> {
    if let Some(want) = expect {
        let current = old.as_deref().map(fsops::etag);
        if current.as_deref() != Some(want.as_str()) {
            return Err(ManageError::Conflict {
                path: rel.to_string(),
                current_etag: current,
                // Both versions go back to the page: an env file's secrets stay masked.
                current: old.map(|b| match is_env_file(rel) {
                    true => masked_env_text(&b).unwrap_or_default(),
                    false => String::from_utf8_lossy(&b).into_owned(),
                }),
                yours: text,
            });
        }
    }
    let path = abs.to_path_buf();
    tokio::task::spawn_blocking(move || fsops::write_atomic(&path, text.as_bytes()))
        .await
        .map_err(|_| ManageError::Io("write task failed".into()))??;
    Ok(reload(shared).await)
}

/// Rescans now (the watcher would too, later): the answer says what is served.
async fn reload(shared: &Arc<Shared>) -> Value {
    let started = Instant::now();
    let report = shared.reload().await;
    json!({
        "ok": report.ok,
        "ms": started.elapsed().as_millis() as u64,
        "routes": report.routes,
        "added": report.added,
        "removed": report.removed,
        "errors": report.errors,
        "warnings": report.warnings,
    })
}

fn detail(shared: &Shared, f: &Found, include_code: bool) -> Result<Value, ManageError> {
    let root = &shared.settings.functions_root;
    let read_rel =
        |file: &str| -> Result<Option<Vec<u8>>, ManageError> { fsops::read(&fsops::contained(root, &f.rel(file))?) };
    let config = read_rel("fn.config.json")?;
    let env = read_rel("fn.env.json")?;
    let fn_config = config
        .as_deref()
        .map(|b| serde_json::from_slice::<Value>(b).unwrap_or(Value::Null));
    let (fn_env, env_error) = match env.as_deref().map(parse_env) {
        None => (BTreeMap::new(), None),
        Some(Ok(m)) => (mask_env(&m), None),
        Some(Err(e)) => (BTreeMap::new(), Some(e.to_string())),
    };
    let mut out = json!({
        "runtime": f.runtime.name(),
        "name": f.name,
        "version": f.version,
        "function_dir": f.dir,
        "file_path": f.entry,
        "config_path": f.rel("fn.config.json"),
        "env_path": f.rel("fn.env.json"),
        "explicit": f.explicit,
        "routes": summary(f).routes,
        "policy": f.policy,
        "fn_config": fn_config,
        "config_etag": config.as_deref().map(fsops::etag),
        "fn_env": fn_env,
        "env_etag": env.as_deref().map(fsops::etag),
        "write_enabled": write_enabled(shared),
    });
    if let Some(e) = env_error {
        out["env_error"] = json!(e);
    }
    out["metadata"] = metadata(root, f, out["fn_config"].get("group"))?;
    if include_code {
        let code = fsops::read(&fsops::contained(root, &f.entry)?)?.unwrap_or_default();
        out["code_etag"] = json!(fsops::etag(&code));
        out["code"] = json!(String::from_utf8_lossy(&code));
        out["code_truncated"] = json!(false);
    }
    Ok(out)
}

/// FastFN's `metadata` of a function detail, the parts this build has: the handler's file
/// name, the console `group` of its `fn.config.json` (a string, else null), and
/// `dependency_resolution`, the function folder's `.fastfn-deps-state.json` as the last
/// inference and install wrote it (null before any), read from the folder of the entry file,
/// where installs happen.
fn metadata(root: &Path, f: &Found, group: Option<&Value>) -> Result<Value, ManageError> {
    // The folder is checked; the state file's own name is hidden, which `contained` refuses.
    let dir = match parent(&f.entry) {
        d if d.is_empty() => root.to_path_buf(),
        d => fsops::contained(root, &d)?,
    };
    let state = fsops::read(&dir.join(crate::deps::STATE_FILE))?
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .filter(Value::is_object);
    Ok(json!({
        "handler_file": f.entry.rsplit('/').next().unwrap_or(&f.entry),
        "group": group.filter(|g| g.is_string()),
        "dependency_resolution": state,
    }))
}

/// The console API's operations for the internal OpenAPI set (`openapi-include-internal`),
/// with the original's operation ids and query parameters.
pub(crate) fn openapi_paths(paths: &mut Map<String, Value>, op: &dyn Fn(&str, &str, Value) -> Value) {
    let q = |name: &str, required: bool, schema: Value| json!({"name": name, "in": "query", "required": required, "schema": schema});
    let ident = || {
        vec![
            q(
                "runtime",
                true,
                json!({"type": "string", "enum": ["python", "node", "php", "lua", "rust", "go"]}),
            ),
            q("name", true, json!({"type": "string"})),
            q("version", false, json!({"type": "string"})),
        ]
    };
    let params = |extra: Vec<Value>| json!({"parameters": ident().into_iter().chain(extra).collect::<Vec<_>>()});
    let object = json!({"type": "object", "additionalProperties": true});
    let body = |schema: &Value| json!({"required": true, "content": {"application/json": {"schema": schema}}});
    let with_body = |extra: Vec<Value>, schema: &Value| {
        let mut o = params(extra);
        o["requestBody"] = body(schema);
        o
    };
    let include_code = q(
        "include_code",
        false,
        json!({"type": "string", "enum": ["0", "1"], "default": "1"}),
    );
    let create = json!({"type": "object", "properties": {
        "methods": {"type": "array", "items": {"type": "string"}},
        "routes": {"type": "array", "items": {"type": "string"}},
        "summary": {"type": "string"}, "code": {"type": "string"}}});
    let mut create_op = params(vec![]);
    create_op["requestBody"] = json!({"required": false, "content": {"application/json": {"schema": create}}});
    paths.insert(
        "/_fn/function".into(),
        json!({"get": op("internal_function_get", "Get function detail", params(vec![include_code])),
               "post": op("internal_function_post", "Create function", create_op),
               "delete": op("internal_function_delete", "Delete function or function version", params(vec![]))}),
    );
    paths.insert(
        "/_fn/function-config".into(),
        json!({"get": op("internal_function_config_get", "Read function config and effective policy", params(vec![])),
               "put": op("internal_function_config_put", "Update function policy (limits, methods, debug headers)",
                         with_body(vec![], &object))}),
    );
    paths.insert(
        "/_fn/function-env".into(),
        json!({"get": op("internal_function_env_get", "Read function env file", params(vec![])),
               "put": op("internal_function_env_put", "Write function env file", with_body(vec![], &object))}),
    );
    let code = json!({"type": "object", "required": ["code"], "properties": {"code": {"type": "string"}}});
    paths.insert(
        "/_fn/function-code".into(),
        json!({"put": op("internal_function_code_put", "Write function code", with_body(vec![], &code))}),
    );
    let mut ui_put = json!({});
    ui_put["requestBody"] = body(&object);
    paths.insert(
        "/_fn/ui-state".into(),
        json!({"get": op("internal_ui_state_get", "Read console UI/API/write state", json!({})),
               "put": op("internal_ui_state_put", "Update console UI/API/write state (requires write permission)", ui_put)}),
    );
}

/// FastFN's rule: a name with a `/` or an extension is a file target (a root-relative file);
/// anything else is a folder function.
fn is_file_target(name: &str) -> bool {
    name.contains('/') || name.rsplit_once('.').is_some_and(|(_, ext)| !ext.is_empty())
}

async fn create(
    shared: &Arc<Shared>,
    q: &BTreeMap<String, String>,
    payload: Value,
) -> Result<Response<Body>, ManageError> {
    let (runtime, name, version) = ident(q)?;
    if version.is_some() {
        return Err(ManageError::BadRequest(
            "create the default version; versions are sub-folders",
        ));
    }
    if !shared.runtime_order.contains(&runtime) {
        return Err(ManageError::RuntimeNotEnabled);
    }
    let code = match payload.get("code") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.len() > fsops::MAX_FILE_BYTES => return Err(ManageError::TooLarge),
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(ManageError::BadRequest("code must be a string")),
    };
    let template = crate::cli::template_for(runtime.name());
    let root = shared.settings.functions_root.clone();
    let _lock = shared.manage.write_lock.lock().await;
    // (relative path, text) of every file to write; none may exist.
    let mut files: Vec<(String, String)> = Vec::new();
    if is_file_target(&name) {
        fsops::check_rel(&name)?;
        let base = name.rsplit('/').next().unwrap_or(&name);
        if RuntimeKind::from_file_name(base) != Some(runtime) || base.starts_with('_') {
            return Err(ManageError::BadRequest(
                "a file route's name ends with its runtime's extension and does not start with `_`",
            ));
        }
        let text = code
            .or_else(|| template.map(|(_, t)| t.to_string()))
            .ok_or(ManageError::NoTemplate)?;
        files.push((name.clone(), text));
    } else {
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err(ManageError::InvalidName);
        }
        let (entry, tpl) = template.ok_or(ManageError::NoTemplate)?;
        let text = code.unwrap_or_else(|| tpl.to_string());
        let mut invoke = Map::new();
        for key in ["methods", "routes"] {
            match payload.get(key) {
                None | Some(Value::Null) => {}
                Some(v) => {
                    invoke.insert(key.into(), v.clone());
                }
            }
        }
        let invoke = (!invoke.is_empty()).then_some(Value::Object(invoke));
        let config_text = crate::cli::init_config(runtime.name(), &name, entry, invoke);
        crate::config::function::parse_fn_config(&config_text, Path::new("fn.config.json"))
            .map_err(ManageError::InvalidConfig)?;
        files.push((format!("{name}/fn.config.json"), config_text));
        files.push((format!("{name}/{entry}"), text));
        if std::fs::symlink_metadata(root.join(&name)).is_ok() {
            return Err(ManageError::Exists);
        }
    }
    for (rel, _) in &files {
        if std::fs::symlink_metadata(fsops::contained(&root, rel)?).is_ok() {
            return Err(ManageError::Exists);
        }
    }
    for (rel, text) in &files {
        let abs = fsops::contained(&root, rel)?;
        let text = text.clone();
        tokio::task::spawn_blocking(move || fsops::write_atomic(&abs, text.as_bytes()))
            .await
            .map_err(|_| ManageError::Io("write task failed".into()))??;
    }
    let reload = reload(shared).await;
    let mut out = match lookup(shared, runtime, &name, None) {
        Some(f) => detail(shared, &f, true)?,
        // Written, but discovery did not publish it (its reload errors say why).
        None => json!({"runtime": runtime.name(), "name": name, "routes": [], "served": false}),
    };
    out["reload"] = reload;
    out["files"] = json!(files.iter().map(|(p, _)| p).collect::<Vec<_>>());
    Ok(json_response(StatusCode::CREATED, &out))
}

async fn delete(shared: &Arc<Shared>, f: &Found) -> Result<Response<Body>, ManageError> {
    let root = shared.settings.functions_root.clone();
    let _lock = shared.manage.write_lock.lock().await;
    // A folder function (or a version) owns its folder; a file route owns its file only.
    let (rel, whole_dir) = if f.explicit || f.version.is_some() {
        (f.dir.clone(), true)
    } else {
        (f.entry.clone(), false)
    };
    if rel.is_empty() {
        return Err(ManageError::RootRefused);
    }
    let abs = fsops::contained(&root, &rel)?;
    let removed = tokio::task::spawn_blocking(move || {
        if whole_dir {
            std::fs::remove_dir_all(&abs)
        } else {
            std::fs::remove_file(&abs)
        }
    })
    .await
    .map_err(|_| ManageError::Io("delete task failed".into()))?;
    match removed {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(ManageError::NotFound),
        Err(e) => return Err(ManageError::Io(e.to_string())),
    }
    let reload = reload(shared).await;
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "ok": true,
            "runtime": f.runtime.name(),
            "name": f.name,
            "version": f.version,
            "removed": rel,
            "reload": reload,
        }),
    ))
}

async fn file_content(
    shared: &Arc<Shared>,
    parts: &Parts,
    q: &BTreeMap<String, String>,
    body: Incoming,
) -> Result<Response<Body>, ManageError> {
    let f = find(shared, q)?;
    let dir = dir_abs(shared, &f)?;
    match parts.method {
        Method::GET | Method::HEAD => {
            let rel = q.get("path").ok_or(ManageError::BadRequest("path required"))?;
            let abs = fsops::contained(&dir, rel)?;
            let bytes = fsops::read(&abs)?.ok_or(ManageError::FileNotFound)?;
            let raw = std::str::from_utf8(&bytes).ok();
            // An env file reads as its masked view, like /_fn/function-env: secrets never
            // reach the page (the tag is still the file's, for conflict checks).
            let masked = match (is_env_file(rel), raw) {
                (true, Some(_)) => Some(masked_env_text(&bytes)?),
                _ => None,
            };
            let text = masked.as_deref().or(raw);
            Ok(json_response(
                StatusCode::OK,
                &json!({
                    "path": rel,
                    "content": text,
                    "binary": text.is_none(),
                    "size": bytes.len(),
                    "etag": fsops::etag(&bytes),
                }),
            ))
        }
        Method::PUT | Method::POST => {
            write_guard(shared, parts)?;
            let payload = read_json(body).await?;
            let Some(rel) = payload.get("path").and_then(Value::as_str).map(str::to_string) else {
                return Err(ManageError::BadRequest("path and content required in JSON body"));
            };
            let Some(content) = payload.get("content").and_then(Value::as_str).map(str::to_string) else {
                return Err(ManageError::BadRequest("path and content required in JSON body"));
            };
            if content.len() > fsops::MAX_FILE_BYTES {
                return Err(ManageError::TooLarge);
            }
            let abs = fsops::contained(&dir, &rel)?;
            let warnings = validate_file(&rel, &content)?;
            let expect = if_match(parts, &payload);
            let _lock = shared.manage.write_lock.lock().await;
            let old = fsops::read(&abs)?;
            // The masked text comes back with `<hidden>` for secrets: keep their stored values.
            let content = if is_env_file(&rel) {
                let v: Value = serde_json::from_str(&content).map_err(|e| ManageError::InvalidEnv(e.to_string()))?;
                merged_env(old.as_deref(), v, true)?
            } else {
                content
            };
            let root_rel = f.rel(&rel);
            let reload = write_checked(shared, &root_rel, &abs, old, expect, content).await?;
            let checked = syntax::check(&abs, &root_rel, &|k| shared.settings.binary(k).to_string()).await;
            let bytes = fsops::read(&abs)?.unwrap_or_default();
            Ok(json_response(
                StatusCode::OK,
                &json!({"ok": true, "path": rel, "size": bytes.len(), "etag": fsops::etag(&bytes), "reload": reload, "warnings": warnings, "syntax": checked}),
            ))
        }
        Method::DELETE => {
            write_guard(shared, parts)?;
            let rel = q.get("path").ok_or(ManageError::BadRequest("path required"))?;
            let abs = fsops::contained(&dir, rel)?;
            if f.rel(rel) == f.entry {
                return Err(ManageError::BadRequest(
                    "the entry file is the function: delete the function instead",
                ));
            }
            let _lock = shared.manage.write_lock.lock().await;
            match std::fs::symlink_metadata(&abs) {
                Ok(m) if m.is_file() => {}
                Ok(_) => return Err(ManageError::NotAFile),
                Err(_) => return Err(ManageError::FileNotFound),
            }
            std::fs::remove_file(&abs).map_err(|e| ManageError::Io(e.to_string()))?;
            let reload = reload(shared).await;
            Ok(json_response(
                StatusCode::OK,
                &json!({"ok": true, "path": rel, "reload": reload}),
            ))
        }
        _ => Err(ManageError::MethodNotAllowed("GET, HEAD, PUT, POST, DELETE")),
    }
}

/// `/_fn/ui-state` (FastFN's `state_snapshot`).
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct UiState {
    pub ui_enabled: bool,
    pub api_enabled: bool,
    pub admin_api_enabled: bool,
    pub write_enabled: bool,
    pub local_only: bool,
    pub login_enabled: bool,
    pub login_api_enabled: bool,
    pub public_explore: bool,
    pub current_user: Option<String>,
}

fn ui_state(shared: &Shared, parts: &Parts) -> Value {
    let s = &shared.settings;
    json!(UiState {
        ui_enabled: s.ui_enabled,
        api_enabled: s.console_api_enabled,
        admin_api_enabled: s.admin_api_enabled,
        write_enabled: write_enabled(shared),
        local_only: s.console_local_only,
        login_enabled: s.console.login.enabled,
        login_api_enabled: s.console.login.api,
        public_explore: false,
        current_user: session_user(shared, parts),
    })
}

/// FastFN lets `ui-state` writes flip every switch at runtime. Here only `write_enabled` can
/// be (the others decide who may reach the admin surface at all and stay as started); asking
/// to change one of them is refused by name rather than ignored. `None` (DELETE) clears.
fn set_ui_state(shared: &Shared, payload: Option<Value>) -> Result<(), ManageError> {
    let Some(Value::Object(map)) = payload else {
        *shared.manage.write_override.lock().unwrap_or_else(|e| e.into_inner()) = None;
        return Ok(());
    };
    let s = &shared.settings;
    let fixed = [
        ("ui_enabled", s.ui_enabled),
        ("api_enabled", s.console_api_enabled),
        ("local_only", s.console_local_only),
        ("login_enabled", s.console.login.enabled),
        ("login_api_enabled", s.console.login.api),
        ("public_explore", false),
    ];
    let mut write = None;
    for (k, v) in &map {
        let Some(b) = v.as_bool() else {
            return Err(ManageError::BadRequest("ui-state fields must be booleans"));
        };
        if k == "write_enabled" {
            write = Some(b);
        } else if let Some((_, current)) = fixed.iter().find(|(name, _)| name == k) {
            if *current != b {
                return Err(ManageError::BadRequest(
                    "only write_enabled can change at runtime; set the others with FN_* at start",
                ));
            }
        } else {
            return Err(ManageError::BadRequest("unknown ui-state field"));
        }
    }
    if let Some(b) = write {
        *shared.manage.write_override.lock().unwrap_or_else(|e| e.into_inner()) = Some(b);
    }
    Ok(())
}

async fn login(shared: &Shared, body: Incoming, remote: SocketAddr) -> Result<Response<Body>, ManageError> {
    let cfg = &shared.settings.console.login;
    if !cfg.enabled && !cfg.api {
        return Err(ManageError::LoginDisabled);
    }
    let ip = remote.ip().to_canonical();
    let now = Instant::now();
    let blocked = shared
        .manage
        .attempts
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .blocked(ip, cfg.max_attempts, cfg.window, now);
    if blocked {
        return Err(ManageError::TooManyAttempts);
    }
    let payload = read_json(body).await?;
    let (Some(user), Some(pass)) = (
        payload
            .get("username")
            .and_then(Value::as_str)
            .filter(|u| !u.is_empty()),
        payload.get("password").and_then(Value::as_str),
    ) else {
        return Err(ManageError::BadRequest("username and password are required"));
    };
    let (Some(want_user), Some(password)) = (&cfg.username, &cfg.password) else {
        return Err(ManageError::LoginNotConfigured);
    };
    // Both checks run whatever the first answers (no timing hint which one failed). PBKDF2
    // takes tens of milliseconds: off the async workers.
    let (given, password_c) = (pass.to_string(), password.clone());
    let pass_ok = tokio::task::spawn_blocking(move || password_c.verify(&given))
        .await
        .unwrap_or(false);
    let user_ok = login::ct_eq(user.as_bytes(), want_user.as_bytes());
    let mut attempts = shared.manage.attempts.lock().unwrap_or_else(|e| e.into_inner());
    if !(user_ok && pass_ok) {
        attempts.failed(ip, cfg.window, now);
        return Err(ManageError::BadCredentials);
    }
    attempts.succeeded(ip);
    drop(attempts);
    let token = shared.manage.sessions.issue(user, password, now_s(), cfg.ttl);
    let cookie = format!(
        "{}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
        login::COOKIE_NAME,
        cfg.ttl.as_secs()
    );
    let mut resp = json_response(StatusCode::OK, &json!({"ok": true, "user": user}));
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().insert(SET_COOKIE, v);
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_could_escape_are_refused() {
        for bad in ["", "/abs", "../x", "a/../b", "a/./b", "a//b", "a\\b", "x\0"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        for good in ["hello", "users/[id].js", "api/v1/users"] {
            assert!(check_name(good).is_ok(), "{good:?}");
        }
        assert!(check_version("v2").is_ok());
        assert!(check_version("..").is_err());
        assert!(check_version("a/b").is_err());
    }

    #[test]
    fn file_targets_follow_fastfns_rule() {
        assert!(is_file_target("users/[id].js"));
        assert!(is_file_target("get.items.py"));
        assert!(!is_file_target("hello"));
        assert!(!is_file_target("my-fn_2"));
    }

    #[test]
    fn env_merge_keeps_masked_secrets_and_deletes_nulls() {
        let old = br#"{"A":"1","S":{"value":"sec","is_secret":true},"D":"x"}"#;
        let text = merged_env(
            Some(old),
            json!({"A": "2", "S": {"value": HIDDEN, "is_secret": true}, "D": null, "N": 5}),
            false,
        )
        .unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v, json!({"A": "2", "N": "5", "S": {"value": "sec", "is_secret": true}}));
        // Replace drops keys the payload does not name, and still keeps a masked secret.
        let text = merged_env(Some(old), json!({"S": HIDDEN}), true).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v, json!({"S": {"value": "sec", "is_secret": true}}));
        assert!(merged_env(None, json!({"A": [1]}), false).is_err());
        assert!(merged_env(None, json!({"": "x"}), false).is_err());
        let masked = mask_env(&parse_env(old).unwrap());
        assert_eq!(masked["S"].value, HIDDEN);
        assert_eq!(masked["A"].value, "1");
    }

    #[test]
    fn config_merge_lifts_methods_and_validates_with_the_engine_parser() {
        let old = br#"{"timeout_ms": 100, "invoke": {"methods": ["GET"]}}"#;
        let (text, _) = merged_config(
            Some(old),
            json!({"methods": ["GET", "POST"], "timeout_ms": null}),
            false,
        )
        .unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v, json!({"invoke": {"methods": ["GET", "POST"]}}));
        let err = merged_config(Some(old), json!({"timeout_ms": "soon"}), false).unwrap_err();
        assert!(matches!(err, ManageError::InvalidConfig(_)), "{err:?}");
        let (text, warnings) = merged_config(Some(old), json!({"max_body_bytes": 10}), true).unwrap();
        assert!(warnings.is_empty());
        let (_, warnings) = merged_config(None, json!({"schedule": {"every_seconds": 5}}), true).unwrap();
        assert!(warnings[0].contains("schedule"), "{warnings:?}");
        assert_eq!(
            serde_json::from_str::<Value>(&text).unwrap(),
            json!({"max_body_bytes": 10})
        );
    }
}
