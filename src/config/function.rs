//! `fn.config.json` and `fn.routes.json` of one folder (contract §3.1, §2.4): parsed into typed,
//! validated values. Every field is optional here; defaults are applied only when a policy is
//! resolved ([`PolicyOverlay::resolve`]), so overlays can be merged root-down field by field.

use super::{defaults, Adapter, ConfigError, FnPolicy, InvokeDocs, PolicyDefaults, WorkerPoolPolicy};
use crate::discovery::AssetsConfig;
use crate::routing::Methods;
use crate::runtime::RuntimeKind;
use serde_json::{Map, Value};
use std::path::Path;

pub const FN_CONFIG_FILE: &str = "fn.config.json";
pub const FN_ROUTES_FILE: &str = "fn.routes.json";

/// One folder's `fn.config.json`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FnConfig {
    pub runtime: Option<RuntimeKind>,
    pub name: Option<String>,
    pub entrypoint: Option<String>,
    /// `invoke.routes` / `invoke.route`, each starting with `/`.
    pub routes: Vec<String>,
    /// `invoke.methods`.
    pub methods: Option<Methods>,
    /// `home.route`.
    pub home_route: Option<String>,
    /// `assets` (only honoured at the root).
    pub assets: Option<AssetsConfig>,
    /// `zero_config.ignore_dirs` and aliases (only honoured at the root).
    pub ignore_dirs: Vec<String>,
    /// Fields that merge down the folder tree.
    pub overlay: PolicyOverlay,
    /// Problems that switch one feature off without invalidating the file (an `assets`
    /// folder outside the root), one readable line each, without the file name.
    pub warnings: Vec<String>,
}

impl FnConfig {
    /// Identity makes the folder an explicit function (contract §2.4).
    pub fn has_identity(&self) -> bool {
        self.runtime.is_some() || self.name.is_some() || self.entrypoint.is_some() || !self.routes.is_empty()
    }
}

/// The policy fields of a config, each `None` when the file does not set it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PolicyOverlay {
    pub timeout_ms: Option<u64>,
    pub max_concurrency: Option<i64>,
    pub max_body_bytes: Option<u64>,
    pub include_debug_headers: Option<bool>,
    pub handler: Option<String>,
    pub adapter: Option<Adapter>,
    pub allow_hosts: Option<Vec<String>>,
    pub force_url: Option<bool>,
    /// `strict_fs`: the handler's filesystem/subprocess sandbox (`None` = `FN_STRICT_FS`).
    pub strict_fs: Option<bool>,
    pub worker_pool: Option<WorkerPoolOverlay>,
    /// `invoke.summary/query/body/content_type`, each field inherited on its own.
    pub docs: InvokeDocs,
    /// `schedule`, inherited whole (the nearest block wins).
    pub schedule: Option<crate::scheduler::spec::Schedule>,
    /// `keep_warm`, inherited whole; `Some(None)` is a block that asks for nothing.
    pub keep_warm: Option<Option<crate::scheduler::spec::KeepWarm>>,
    /// `edge` (the nearest block wins whole).
    pub edge: Option<crate::proxy::EdgePolicy>,
}

/// `worker_pool.*` as written; the block being present is what enables the pool.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkerPoolOverlay {
    pub enabled: Option<bool>,
    pub max_workers: Option<i64>,
    pub max_queue: Option<u64>,
    pub queue_timeout_ms: Option<u64>,
    pub queue_poll_ms: Option<u64>,
    pub min_warm: Option<u64>,
    pub idle_ttl_seconds: Option<u64>,
    pub overflow_status: Option<u16>,
}

impl WorkerPoolOverlay {
    fn merge(&self, near: &WorkerPoolOverlay) -> WorkerPoolOverlay {
        WorkerPoolOverlay {
            enabled: near.enabled.or(self.enabled),
            max_workers: near.max_workers.or(self.max_workers),
            max_queue: near.max_queue.or(self.max_queue),
            queue_timeout_ms: near.queue_timeout_ms.or(self.queue_timeout_ms),
            queue_poll_ms: near.queue_poll_ms.or(self.queue_poll_ms),
            min_warm: near.min_warm.or(self.min_warm),
            idle_ttl_seconds: near.idle_ttl_seconds.or(self.idle_ttl_seconds),
            overflow_status: near.overflow_status.or(self.overflow_status),
        }
    }
}

impl PolicyOverlay {
    /// `self` is the farther (parent) overlay, `near` the nearer one; nearer fields win.
    pub fn merge(&self, near: &PolicyOverlay) -> PolicyOverlay {
        let worker_pool = match (&self.worker_pool, &near.worker_pool) {
            (Some(far), Some(near)) => Some(far.merge(near)),
            (far, near) => near.clone().or_else(|| far.clone()),
        };
        PolicyOverlay {
            timeout_ms: near.timeout_ms.or(self.timeout_ms),
            max_concurrency: near.max_concurrency.or(self.max_concurrency),
            max_body_bytes: near.max_body_bytes.or(self.max_body_bytes),
            include_debug_headers: near.include_debug_headers.or(self.include_debug_headers),
            handler: near.handler.clone().or_else(|| self.handler.clone()),
            adapter: near.adapter.or(self.adapter),
            allow_hosts: near.allow_hosts.clone().or_else(|| self.allow_hosts.clone()),
            force_url: near.force_url.or(self.force_url),
            strict_fs: near.strict_fs.or(self.strict_fs),
            worker_pool,
            edge: near.edge.clone().or_else(|| self.edge.clone()),
            docs: InvokeDocs {
                summary: near.docs.summary.clone().or_else(|| self.docs.summary.clone()),
                query: near.docs.query.clone().or_else(|| self.docs.query.clone()),
                body: near.docs.body.clone().or_else(|| self.docs.body.clone()),
                content_type: near
                    .docs
                    .content_type
                    .clone()
                    .or_else(|| self.docs.content_type.clone()),
            },
            schedule: near.schedule.clone().or_else(|| self.schedule.clone()),
            keep_warm: near.keep_warm.or(self.keep_warm),
        }
    }

    /// A `strict_fs: true` written for a runtime whose handlers run without the sandbox (only
    /// the python, node and php daemons enforce it): said as a warning, not ignored.
    pub fn sandbox_warning(&self, runtime: RuntimeKind) -> Option<String> {
        let enforced = matches!(runtime, RuntimeKind::Python | RuntimeKind::Node | RuntimeKind::Php);
        (self.strict_fs == Some(true) && !enforced).then(|| {
            format!("`strict_fs` is not enforced for {runtime} handlers (only python, node and php run sandboxed)")
        })
    }

    /// Apply the built-in defaults (see [`PolicyOverlay::resolve_with`]).
    pub fn resolve(&self, runtime: RuntimeKind) -> FnPolicy {
        self.resolve_with(runtime, &PolicyDefaults::default())
    }

    /// Apply the project's defaults to the fields this overlay leaves unset. rust/go get at
    /// least [`defaults::COMPILED_TIMEOUT_MS`] because their first call compiles the handler.
    pub fn resolve_with(&self, runtime: RuntimeKind, project: &PolicyDefaults) -> FnPolicy {
        let base = FnPolicy {
            timeout_ms: project.timeout_ms,
            max_concurrency: project.max_concurrency,
            max_body_bytes: project.max_body_bytes,
            ..FnPolicy::default()
        };
        let mut timeout_ms = self.timeout_ms.unwrap_or(base.timeout_ms);
        if matches!(runtime, RuntimeKind::Rust | RuntimeKind::Go) {
            timeout_ms = timeout_ms.max(defaults::COMPILED_TIMEOUT_MS);
        }
        let max_concurrency = self.max_concurrency.unwrap_or(base.max_concurrency);
        let pool_defaults = WorkerPoolPolicy::default();
        let worker_pool = match &self.worker_pool {
            None => WorkerPoolPolicy {
                max_workers: max_concurrency,
                ..pool_defaults
            },
            Some(wp) => WorkerPoolPolicy {
                enabled: wp.enabled.unwrap_or(true),
                max_workers: wp.max_workers.unwrap_or(max_concurrency),
                max_queue: wp.max_queue.unwrap_or(pool_defaults.max_queue),
                queue_timeout_ms: wp.queue_timeout_ms.unwrap_or(pool_defaults.queue_timeout_ms),
                queue_poll_ms: wp.queue_poll_ms.unwrap_or(pool_defaults.queue_poll_ms),
                min_warm: wp.min_warm.unwrap_or(pool_defaults.min_warm),
                idle_ttl_seconds: wp.idle_ttl_seconds.unwrap_or(pool_defaults.idle_ttl_seconds),
                overflow_status: wp.overflow_status.unwrap_or(pool_defaults.overflow_status),
            },
        };
        FnPolicy {
            timeout_ms,
            max_concurrency,
            max_body_bytes: self.max_body_bytes.unwrap_or(base.max_body_bytes),
            include_debug_headers: self.include_debug_headers.unwrap_or(false),
            worker_pool,
            handler: self.handler.clone().unwrap_or(base.handler),
            adapter: self.adapter.unwrap_or_default(),
            allow_hosts: self.allow_hosts.clone().unwrap_or_default(),
            strict_fs: self.strict_fs.unwrap_or(project.strict_fs),
            docs: self.docs.clone(),
            schedule: self.schedule.clone(),
            keep_warm: self.keep_warm.flatten(),
            edge: self.edge.clone(),
        }
    }
}

/// One `fn.routes.json` entry: `"GET,POST /path": "file.js"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutesJsonEntry {
    pub methods: Methods,
    pub path: String,
    /// File relative to the folder holding `fn.routes.json`.
    pub file: String,
}

/// Field reader that turns type problems into [`ConfigError`]s naming file and field.
struct Reader<'a> {
    file: &'a Path,
}

impl Reader<'_> {
    fn invalid(&self, field: &str, expected: &str, got: &Value) -> ConfigError {
        ConfigError {
            code: "config.invalid_field",
            file: self.file.to_path_buf(),
            field: Some(field.to_string()),
            message: format!("expected {expected}, got {got}"),
        }
    }

    fn string(&self, field: &str, v: &Value) -> Result<String, ConfigError> {
        match v {
            Value::String(s) if !s.trim().is_empty() => Ok(s.trim().to_string()),
            _ => Err(self.invalid(field, "a non-empty string", v)),
        }
    }

    fn bool(&self, field: &str, v: &Value) -> Result<bool, ConfigError> {
        match v {
            Value::Bool(b) => Ok(*b),
            // Hand-written configs and env-templated ones use these too.
            Value::String(s) if matches!(s.as_str(), "true" | "1") => Ok(true),
            Value::String(s) if matches!(s.as_str(), "false" | "0") => Ok(false),
            Value::Number(n) if n.as_i64() == Some(1) => Ok(true),
            Value::Number(n) if n.as_i64() == Some(0) => Ok(false),
            _ => Err(self.invalid(field, "true or false", v)),
        }
    }

    fn int(&self, field: &str, v: &Value) -> Result<i64, ConfigError> {
        let n = match v {
            Value::Number(n) => n
                .as_i64()
                .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        };
        n.ok_or_else(|| self.invalid(field, "an integer", v))
    }

    fn uint(&self, field: &str, v: &Value) -> Result<u64, ConfigError> {
        let n = self.int(field, v)?;
        u64::try_from(n).map_err(|_| self.invalid(field, "an integer >= 0", v))
    }

    fn positive(&self, field: &str, v: &Value) -> Result<u64, ConfigError> {
        match self.uint(field, v)? {
            0 => Err(self.invalid(field, "an integer > 0", v)),
            n => Ok(n),
        }
    }

    /// An array of strings, or one comma-separated string.
    fn list(&self, field: &str, v: &Value) -> Result<Vec<String>, ConfigError> {
        let items: Vec<String> = match v {
            Value::String(s) => s.split(',').map(str::to_string).collect(),
            Value::Array(a) => a
                .iter()
                .map(|x| match x {
                    Value::String(s) => Ok(s.clone()),
                    _ => Err(self.invalid(field, "an array of strings or a CSV string", v)),
                })
                .collect::<Result<_, _>>()?,
            _ => return Err(self.invalid(field, "an array of strings or a CSV string", v)),
        };
        Ok(items
            .into_iter()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect())
    }

    fn methods(&self, field: &str, v: &Value) -> Result<Option<Methods>, ConfigError> {
        let mut methods = Methods::default();
        for name in self.list(field, v)? {
            methods = methods
                | Methods::parse(&name)
                    .ok_or_else(|| self.invalid(field, "HTTP methods (GET, POST, PUT, PATCH, DELETE…)", v))?;
        }
        Ok((methods != Methods::default()).then_some(methods))
    }

    fn route(&self, field: &str, v: &Value) -> Result<String, ConfigError> {
        let s = self.string(field, v)?;
        let route = if s.starts_with('/') { s } else { format!("/{s}") };
        if route.split('/').any(|seg| seg == "..") {
            return Err(self.invalid(field, "a route without `..`", v));
        }
        Ok(route)
    }

    fn relative_path(&self, field: &str, v: &Value) -> Result<String, ConfigError> {
        let s = self.string(field, v)?;
        let s = s.trim_start_matches("./").trim_end_matches('/').to_string();
        if s.is_empty() || s.starts_with('/') || s.split('/').any(|seg| seg == "..") {
            return Err(self.invalid(field, "a relative path inside the folder", v));
        }
        Ok(s)
    }
}

fn parse_json(text: &str, file: &Path) -> Result<Value, ConfigError> {
    serde_json::from_str(text).map_err(|e| ConfigError {
        code: "config.invalid_json",
        file: file.to_path_buf(),
        field: None,
        message: format!("invalid JSON at line {}, column {}: {e}", e.line(), e.column()),
    })
}

fn object<'a>(v: &'a Value, file: &Path) -> Result<&'a Map<String, Value>, ConfigError> {
    v.as_object().ok_or_else(|| ConfigError {
        code: "config.invalid_field",
        file: file.to_path_buf(),
        field: None,
        message: format!("expected a JSON object, got {v}"),
    })
}

/// Looks up a dotted path (`invoke.methods`); `None` when any step is missing or not an object.
fn get<'a>(root: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let mut parts = path.split('.');
    let mut cur = root.get(parts.next()?)?;
    for part in parts {
        cur = cur.as_object()?.get(part)?;
    }
    Some(cur)
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn parse_adapter(s: &str) -> Option<Adapter> {
    match s.trim().to_ascii_lowercase().as_str() {
        "native" | "" => Some(Adapter::Native),
        "aws-lambda" | "lambda" | "apigw-v2" | "api-gateway-v2" => Some(Adapter::AwsLambda),
        "cloudflare-worker" | "worker" | "workers" => Some(Adapter::CloudflareWorker),
        _ => None,
    }
}

/// Parse the text of a `fn.config.json`. `file` is only used in error messages.
pub fn parse_fn_config(text: &str, file: &Path) -> Result<FnConfig, ConfigError> {
    let value = parse_json(text, file)?;
    let obj = object(&value, file)?;
    let r = Reader { file };
    let mut cfg = FnConfig::default();

    if let Some(v) = obj.get("runtime") {
        let s = r.string("runtime", v)?;
        cfg.runtime = Some(
            RuntimeKind::parse(&s).ok_or_else(|| r.invalid("runtime", "one of node, python, php, lua, rust, go", v))?,
        );
    }
    if let Some(v) = obj.get("name") {
        let name = r.string("name", v)?;
        let name = name.trim_matches('/').to_string();
        if name.is_empty() || name.split('/').any(|s| s.is_empty() || s == "..") {
            return Err(r.invalid("name", "a function name like `hello` or `api/users`", v));
        }
        cfg.name = Some(name);
    }
    if let Some(v) = obj.get("entrypoint") {
        cfg.entrypoint = Some(r.relative_path("entrypoint", v)?);
    }
    if let Some(v) = get(obj, "invoke.routes") {
        let field = "invoke.routes";
        let items = match v {
            Value::String(_) => vec![r.route(field, v)?],
            Value::Array(a) => a.iter().map(|x| r.route(field, x)).collect::<Result<_, _>>()?,
            _ => return Err(r.invalid(field, "an array of routes", v)),
        };
        cfg.routes = items;
    }
    if let Some(v) = get(obj, "invoke.route") {
        let route = r.route("invoke.route", v)?;
        if !cfg.routes.contains(&route) {
            cfg.routes.push(route);
        }
    }
    if let Some(v) = get(obj, "invoke.methods") {
        cfg.methods = r.methods("invoke.methods", v)?;
    }
    if let Some(v) = get(obj, "home.route") {
        cfg.home_route = Some(r.route("home.route", v)?);
    }
    if let Some(v) = obj.get("assets") {
        match parse_assets(&r, v) {
            Ok(assets) => cfg.assets = Some(assets),
            // A bad assets folder costs the assets, not the routes (docs/compat.md "Assets"):
            // failing the whole file would unpublish everything below it.
            Err(e) if e.field.as_deref() == Some("assets.directory") => cfg.warnings.push(format!(
                "`assets.directory` must be a folder inside the functions root ({}); assets are off",
                e.message
            )),
            Err(e) => return Err(e),
        }
    }
    for field in [
        "zero_config.ignore_dirs",
        "discovery.ignore_dirs",
        "routing.ignore_dirs",
        "zero_config_ignore_dirs",
    ] {
        if let Some(v) = get(obj, field) {
            cfg.ignore_dirs.extend(r.list(field, v)?);
        }
    }
    cfg.overlay = parse_overlay(&r, obj)?;
    if let Some(v) = obj.get("edge") {
        let (edge, warning) = parse_edge(&r, v)?;
        cfg.overlay.edge = edge;
        cfg.warnings.extend(warning);
    }
    // A schedule that cannot run (bad cron or zone) is said, not dropped in silence.
    if let Some(why) = cfg.overlay.schedule.as_ref().and_then(|s| s.invalid.as_ref()) {
        cfg.warnings.push(format!(
            "`schedule` cannot run: {why}; the function will not run on a schedule (the function is still served)"
        ));
    }
    // Pings keep the function's runtime warm; there are no per-function instances to count.
    if let Some(Some(kw)) = cfg.overlay.keep_warm.filter(|k| k.is_some_and(|k| k.min_warm > 1)) {
        cfg.warnings.push(format!(
            "`keep_warm.min_warm` {} is not supported: pings keep one instance warm (the function is still served)",
            kw.min_warm
        ));
    }
    // FastFN runs a schedule only with `enabled: true`; a block without the key is easy to
    // write by mistake.
    if get(obj, "schedule").is_some_and(|s| s.is_object() && s.get("enabled").is_none()) {
        cfg.warnings.push(
            "`schedule` has no `\"enabled\": true`: the function will not run on a schedule (the function is still served)"
                .to_string(),
        );
    }
    cfg.warnings.extend(unsupported(obj));
    Ok(cfg)
}

/// FastFN features this build does not have yet, and what the user loses. Each key present
/// gets a warning (CLI, `/_fn/health` `warnings`, the dashboard) instead of being ignored in
/// silence; the function is still served.
const UNSUPPORTED: [(&str, &str); 2] = [
    // No per-function workers here: both keys describe workers this build does not have
    // (`keep_warm` is the supported way to keep a function warm).
    (
        "worker_pool.min_warm",
        "no workers are kept warm ahead of calls (use `keep_warm` to ping the function)",
    ),
    (
        "worker_pool.idle_ttl_seconds",
        "there are no per-function workers to reap; runtime daemons stay up while routes use them",
    ),
];

fn unsupported(obj: &serde_json::Map<String, Value>) -> Vec<String> {
    UNSUPPORTED
        .iter()
        .filter(|(key, _)| {
            get(obj, key).is_some_and(|v| match v {
                Value::Null | Value::Bool(false) => false,
                // `min_warm: 0` and `{"enabled": false}` ask for nothing.
                Value::Number(n) => n.as_f64().is_some_and(|n| n != 0.0),
                Value::Object(o) => o.get("enabled") != Some(&Value::Bool(false)),
                _ => true,
            })
        })
        .map(|(key, loss)| format!("`{key}` is not supported by this build yet: {loss} (the function is still served)"))
        .collect()
}

fn parse_assets(r: &Reader<'_>, v: &Value) -> Result<AssetsConfig, ConfigError> {
    let Value::Object(obj) = v else {
        return Err(r.invalid("assets", "an object", v));
    };
    let directory = match obj.get("directory") {
        Some(d) => r.relative_path("assets.directory", d)?,
        None => return Err(r.invalid("assets.directory", "a relative folder", &Value::Null)),
    };
    let spa = match obj.get("not_found_handling") {
        None => false,
        Some(h) => match h.as_str() {
            Some("404") => false,
            Some("single-page-application" | "spa") => true,
            _ => {
                return Err(r.invalid(
                    "assets.not_found_handling",
                    "\"404\", \"single-page-application\" or \"spa\"",
                    h,
                ))
            }
        },
    };
    let run_worker_first = match obj.get("run_worker_first") {
        Some(b) => r.bool("assets.run_worker_first", b)?,
        None => false,
    };
    Ok(AssetsConfig {
        directory,
        spa,
        run_worker_first,
    })
}

/// `edge` (FastFN's `routes.lua` reading): `None` when the block sets nothing, which leaves
/// proxying off as in the original. An `https` base URL is kept but warned about: this build
/// has no TLS client, so those proxies answer 502 (docs/compat.md "Edge proxy").
fn parse_edge(r: &Reader<'_>, v: &Value) -> Result<(Option<crate::proxy::EdgePolicy>, Option<String>), ConfigError> {
    let obj = match v {
        Value::Null => return Ok((None, None)),
        Value::Object(o) => o,
        _ => return Err(r.invalid("edge", "an object", v)),
    };
    let mut edge = crate::proxy::EdgePolicy::default();
    let mut warning = None;
    match obj.get("base_url") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if s.trim().is_empty() => {}
        Some(b @ Value::String(s)) => {
            let url = s.trim().trim_end_matches('/').to_string();
            let lower = url.to_ascii_lowercase();
            if lower.starts_with("https://") {
                warning = Some(
                    "`edge.base_url` is https, which this build cannot reach yet: its proxies answer 502".to_string(),
                );
            } else if !lower.starts_with("http://") {
                return Err(r.invalid("edge.base_url", "an http:// or https:// URL", b));
            }
            edge.base_url = Some(url);
        }
        Some(b) => return Err(r.invalid("edge.base_url", "an http:// or https:// URL", b)),
    }
    if let Some(h) = obj.get("allow_hosts").filter(|h| !h.is_null()) {
        let mut hosts = r.list("edge.allow_hosts", h)?;
        hosts.retain(|h| h.len() <= 200);
        hosts.dedup();
        edge.allow_hosts = hosts;
    }
    if let Some(p) = obj.get("allow_private").filter(|p| !p.is_null()) {
        edge.allow_private = r.bool("edge.allow_private", p)?;
    }
    if let Some(m) = obj.get("max_response_bytes").filter(|m| !m.is_null()) {
        edge.max_response_bytes = Some(r.positive("edge.max_response_bytes", m)?);
    }
    let empty = edge == crate::proxy::EdgePolicy::default();
    Ok(((!empty).then_some(edge), warning))
}

fn parse_overlay(r: &Reader<'_>, obj: &Map<String, Value>) -> Result<PolicyOverlay, ConfigError> {
    let mut o = PolicyOverlay::default();
    if let Some(v) = obj.get("timeout_ms") {
        o.timeout_ms = Some(r.positive("timeout_ms", v)?);
    }
    if let Some(v) = obj.get("max_concurrency") {
        o.max_concurrency = Some(r.int("max_concurrency", v)?);
    }
    if let Some(v) = obj.get("max_body_bytes") {
        o.max_body_bytes = Some(r.positive("max_body_bytes", v)?);
    }
    // Either spelling set to true turns debug headers on, as the original reads them; both
    // absent leaves the inherited value, and an explicit false (with no true) turns them off.
    for field in ["include_debug_headers", "response.include_debug_headers"] {
        if let Some(v) = get(obj, field) {
            let on = r.bool(field, v)?;
            o.include_debug_headers = Some(on || o.include_debug_headers == Some(true));
        }
    }
    if let Some(v) = get(obj, "invoke.handler") {
        let h = r.string("invoke.handler", v)?;
        if !is_identifier(&h) {
            return Err(r.invalid("invoke.handler", "a name matching ^[a-zA-Z_][a-zA-Z0-9_]*$", v));
        }
        o.handler = Some(h);
    }
    if let Some(v) = get(obj, "invoke.adapter") {
        let s = r.string("invoke.adapter", v)?;
        o.adapter = Some(
            parse_adapter(&s)
                .ok_or_else(|| r.invalid("invoke.adapter", "native, aws-lambda or cloudflare-worker", v))?,
        );
    }
    if let Some(v) = get(obj, "invoke.allow_hosts") {
        let hosts = r.list("invoke.allow_hosts", v)?;
        o.allow_hosts = Some(hosts.into_iter().map(|h| h.to_ascii_lowercase()).collect());
    }
    // Later spellings are more specific (`invoke.*` over top level).
    for field in [
        "force-url",
        "force_url",
        "forceUrl",
        "invoke.force-url",
        "invoke.force_url",
        "invoke.forceUrl",
    ] {
        if let Some(v) = get(obj, field) {
            o.force_url = Some(r.bool(field, v)?);
        }
    }
    if let Some(v) = obj.get("strict_fs") {
        o.strict_fs = Some(r.bool("strict_fs", v)?);
    }
    if let Some(v) = obj.get("worker_pool") {
        o.worker_pool = Some(parse_worker_pool(r, v)?);
    }
    let field_error = |(field, message): (String, String)| ConfigError {
        code: "config.invalid_field",
        file: r.file.to_path_buf(),
        field: Some(field),
        message,
    };
    if let Some(v) = obj.get("schedule").filter(|v| !v.is_null()) {
        o.schedule = Some(crate::scheduler::spec::Schedule::parse(v).map_err(field_error)?);
    }
    if let Some(v) = obj.get("keep_warm") {
        o.keep_warm = Some(crate::scheduler::spec::KeepWarm::parse(v).map_err(field_error)?);
    }
    if let Some(v) = get(obj, "invoke.summary") {
        o.docs.summary = Some(r.string("invoke.summary", v)?);
    }
    match get(obj, "invoke.query") {
        None | Some(Value::Null) => {}
        Some(Value::Object(q)) => o.docs.query = Some(q.clone()),
        Some(v) => return Err(r.invalid("invoke.query", "an object of example query values", v)),
    }
    match get(obj, "invoke.body") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if s.is_empty() => {}
        Some(v) => o.docs.body = Some(v.clone()),
    }
    if let Some(v) = get(obj, "invoke.content_type") {
        o.docs.content_type = Some(r.string("invoke.content_type", v)?);
    }
    Ok(o)
}

fn parse_worker_pool(r: &Reader<'_>, v: &Value) -> Result<WorkerPoolOverlay, ConfigError> {
    let Value::Object(obj) = v else {
        return Err(r.invalid("worker_pool", "an object", v));
    };
    let mut wp = WorkerPoolOverlay::default();
    let f = |name: &str| obj.get(name).map(|v| (format!("worker_pool.{name}"), v));
    if let Some((field, v)) = f("enabled") {
        wp.enabled = Some(r.bool(&field, v)?);
    }
    if let Some((field, v)) = f("max_workers") {
        wp.max_workers = Some(r.int(&field, v)?);
    }
    if let Some((field, v)) = f("max_queue") {
        wp.max_queue = Some(r.uint(&field, v)?);
    }
    if let Some((field, v)) = f("queue_timeout_ms") {
        wp.queue_timeout_ms = Some(r.uint(&field, v)?);
    }
    if let Some((field, v)) = f("queue_poll_ms") {
        wp.queue_poll_ms = Some(r.int(&field, v)?.clamp(1, 200) as u64);
    }
    if let Some((field, v)) = f("min_warm") {
        wp.min_warm = Some(r.uint(&field, v)?);
    }
    if let Some((field, v)) = f("idle_ttl_seconds") {
        wp.idle_ttl_seconds = Some(r.uint(&field, v)?);
    }
    if let Some((field, v)) = f("overflow_status") {
        match r.int(&field, v)? {
            s @ (429 | 503) => wp.overflow_status = Some(s as u16),
            _ => return Err(r.invalid(&field, "429 or 503", v)),
        }
    }
    Ok(wp)
}

/// Parse the text of a `fn.routes.json`: `{"routes": {"GET,POST /path": "file.js"}}`.
pub fn parse_routes_json(text: &str, file: &Path) -> Result<Vec<RoutesJsonEntry>, ConfigError> {
    let value = parse_json(text, file)?;
    let obj = object(&value, file)?;
    let r = Reader { file };
    let Some(routes) = obj.get("routes") else {
        return Ok(Vec::new());
    };
    let Value::Object(routes) = routes else {
        return Err(r.invalid("routes", "an object of \"METHODS /path\": \"file\"", routes));
    };
    let mut out = Vec::new();
    for (key, target) in routes {
        let field = format!("routes.{key}");
        let (methods, path) = match key.trim().split_once(char::is_whitespace) {
            Some((m, p)) => {
                let m = r.methods(&field, &Value::String(m.to_string()))?;
                (m.unwrap_or(Methods::GET), p.trim())
            }
            None => (Methods::GET, key.trim()),
        };
        let path = r.route(&field, &Value::String(path.to_string()))?;
        let file = r.relative_path(&field, target)?;
        out.push(RoutesJsonEntry { methods, path, file });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsupported_features_are_warned_not_ignored() {
        let file = Path::new("/p/fns/job/fn.config.json");
        let cfg = parse_fn_config(
            r#"{"schedule": {"every_seconds": 2}, "keep_warm": {"enabled": true}, "strict_fs": true,
                "edge": {"base_url": "http://x"}, "worker_pool": {"max_workers": 2, "min_warm": 1}}"#,
            file,
        )
        .unwrap();
        // `schedule`, `keep_warm` (the schedule is only said to be off), `edge` (src/proxy.rs)
        // and `strict_fs` (the daemons' sandbox) are supported.
        assert_eq!(cfg.warnings.len(), 2, "{:?}", cfg.warnings);
        assert!(
            !cfg.warnings
                .iter()
                .any(|w| w.contains("edge") || w.contains("strict_fs")),
            "{:?}",
            cfg.warnings
        );
        let ttl = parse_fn_config(r#"{"worker_pool": {"idle_ttl_seconds": 600}}"#, file).unwrap();
        assert!(
            ttl.warnings[0].starts_with("`worker_pool.idle_ttl_seconds` is not supported"),
            "{:?}",
            ttl.warnings
        );
        assert!(
            cfg.warnings[0].starts_with("`schedule` has no `\"enabled\": true`"),
            "{:?}",
            cfg.warnings
        );
        assert!(
            cfg.warnings[1..].iter().all(|w| w.contains("is not supported")),
            "{:?}",
            cfg.warnings
        );
        assert!(
            !cfg.warnings.iter().any(|w| w.starts_with("`keep_warm`")),
            "{:?}",
            cfg.warnings
        );
        let quiet = parse_fn_config(
            r#"{"keep_warm": {"enabled": false}, "strict_fs": false, "worker_pool": {"min_warm": 0},
                "schedule": {"enabled": false, "every_seconds": 5}}"#,
            file,
        )
        .unwrap();
        assert!(quiet.warnings.is_empty(), "{:?}", quiet.warnings);
        let many = parse_fn_config(r#"{"keep_warm": {"enabled": true, "min_warm": 3}}"#, file).unwrap();
        assert_eq!(
            many.warnings,
            ["`keep_warm.min_warm` 3 is not supported: pings keep one instance warm (the function is still served)"]
        );
        let bad = parse_fn_config(r#"{"schedule": {"enabled": true, "cron": "61 * * * *"}}"#, file).unwrap();
        assert!(
            bad.warnings[0].starts_with("`schedule` cannot run: invalid cron"),
            "{:?}",
            bad.warnings
        );
    }

    #[test]
    fn strict_fs_is_parsed_inherited_and_warned_where_not_enforced() {
        let on = parse(r#"{"strict_fs": true}"#).unwrap().overlay;
        let off = parse(r#"{"strict_fs": false}"#).unwrap().overlay;
        assert_eq!(on.strict_fs, Some(true));
        assert_eq!(on.merge(&off).strict_fs, Some(false), "the nearer config wins");
        assert_eq!(on.merge(&PolicyOverlay::default()).strict_fs, Some(true), "inherited");
        let defaults = PolicyDefaults::default();
        assert!(
            PolicyOverlay::default()
                .resolve_with(RuntimeKind::Python, &defaults)
                .strict_fs
        );
        assert!(!off.resolve_with(RuntimeKind::Python, &defaults).strict_fs);
        let project_off = PolicyDefaults {
            strict_fs: false,
            ..defaults
        };
        assert!(
            !PolicyOverlay::default()
                .resolve_with(RuntimeKind::Node, &project_off)
                .strict_fs
        );
        assert!(on.resolve_with(RuntimeKind::Node, &project_off).strict_fs);
        assert!(on.sandbox_warning(RuntimeKind::Python).is_none());
        assert!(on
            .sandbox_warning(RuntimeKind::Rust)
            .is_some_and(|w| w.contains("rust")));
        assert!(off.sandbox_warning(RuntimeKind::Go).is_none());
        assert!(parse(r#"{"strict_fs": "maybe"}"#).is_err());
    }

    #[test]
    fn edge_blocks() {
        let cfg = parse(
            r#"{"edge": {"base_url": " http://api.local/ ", "allow_hosts": "a.com, b.com:81",
                         "allow_private": true, "max_response_bytes": 10}}"#,
        )
        .unwrap();
        let edge = cfg.overlay.resolve(RuntimeKind::Node).edge.unwrap();
        assert_eq!(edge.base_url.as_deref(), Some("http://api.local"));
        assert_eq!(edge.allow_hosts, ["a.com", "b.com:81"]);
        assert!(edge.allow_private);
        assert_eq!(edge.max_response_bytes, Some(10));
        assert!(cfg.warnings.is_empty());
        // Nothing set: proxying stays off, as in the original.
        assert_eq!(parse(r#"{"edge": {}}"#).unwrap().overlay.edge, None);
        assert_eq!(parse(r#"{"edge": null}"#).unwrap().overlay.edge, None);
        let https = parse(r#"{"edge": {"base_url": "https://api.example.com"}}"#).unwrap();
        assert!(https.warnings[0].contains("https"), "{:?}", https.warnings);
        for bad in [
            r#"{"edge": true}"#,
            r#"{"edge": {"base_url": "ftp://x"}}"#,
            r#"{"edge": {"allow_private": "maybe"}}"#,
            r#"{"edge": {"max_response_bytes": 0}}"#,
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        // The nearest block wins whole.
        let far = parse(r#"{"edge": {"allow_private": true}}"#).unwrap().overlay;
        let near = parse(r#"{"edge": {"max_response_bytes": 5}}"#).unwrap().overlay;
        let merged = far.merge(&near).resolve(RuntimeKind::Node).edge.unwrap();
        assert!(!merged.allow_private);
        assert_eq!(far.merge(&PolicyOverlay::default()).edge, far.edge);
    }

    fn parse(text: &str) -> Result<FnConfig, ConfigError> {
        parse_fn_config(text, Path::new("functions/api/fn.config.json"))
    }

    #[test]
    fn empty_object_is_a_plain_overlay_with_defaults() {
        let cfg = parse("{}").unwrap();
        assert!(!cfg.has_identity());
        assert_eq!(cfg.overlay.resolve(RuntimeKind::Node), FnPolicy::default());
    }

    #[test]
    fn identity_fields() {
        let cases: &[(&str, bool)] = &[
            (r#"{"runtime":"python"}"#, true),
            (r#"{"name":"hello"}"#, true),
            (r#"{"entrypoint":"app.py"}"#, true),
            (r#"{"invoke":{"routes":["/a"]}}"#, true),
            (r#"{"invoke":{"routes":[]}}"#, false),
            (r#"{"timeout_ms":10}"#, false),
        ];
        for (text, want) in cases {
            assert_eq!(parse(text).unwrap().has_identity(), *want, "{text}");
        }
    }

    #[test]
    fn invoke_fields() {
        let cfg = parse(
            r#"{"invoke":{"methods":["get","POST"],"routes":["/a/:id","b/*"],"route":"/c",
                "handler":"main_2","adapter":"apigw-v2","allow_hosts":"API.example.com, *.x.io"}}"#,
        )
        .unwrap();
        assert_eq!(cfg.methods, Some(Methods::GET | Methods::POST));
        assert_eq!(cfg.routes, vec!["/a/:id", "/b/*", "/c"]);
        assert_eq!(cfg.overlay.handler.as_deref(), Some("main_2"));
        assert_eq!(cfg.overlay.adapter, Some(Adapter::AwsLambda));
        assert_eq!(
            cfg.overlay.allow_hosts,
            Some(vec!["api.example.com".to_string(), "*.x.io".to_string()])
        );
        assert_eq!(
            parse(r#"{"invoke":{"methods":"put"}}"#).unwrap().methods,
            Some(Methods::PUT)
        );
    }

    #[test]
    fn adapter_aliases() {
        let cases = [
            ("native", Adapter::Native),
            ("aws-lambda", Adapter::AwsLambda),
            ("lambda", Adapter::AwsLambda),
            ("api-gateway-v2", Adapter::AwsLambda),
            ("cloudflare-worker", Adapter::CloudflareWorker),
            ("worker", Adapter::CloudflareWorker),
            ("workers", Adapter::CloudflareWorker),
        ];
        for (name, want) in cases {
            let cfg = parse(&format!(r#"{{"invoke":{{"adapter":"{name}"}}}}"#)).unwrap();
            assert_eq!(cfg.overlay.adapter, Some(want), "{name}");
        }
    }

    #[test]
    fn force_url_spellings() {
        for text in [
            r#"{"force-url":true}"#,
            r#"{"force_url":true}"#,
            r#"{"forceUrl":true}"#,
            r#"{"invoke":{"force-url":true}}"#,
            r#"{"invoke":{"force_url":true}}"#,
            r#"{"invoke":{"forceUrl":true}}"#,
        ] {
            assert_eq!(parse(text).unwrap().overlay.force_url, Some(true), "{text}");
        }
    }

    #[test]
    fn debug_headers_both_spellings() {
        let a = parse(r#"{"include_debug_headers":true}"#).unwrap();
        let b = parse(r#"{"response":{"include_debug_headers":true}}"#).unwrap();
        assert!(a.overlay.resolve(RuntimeKind::Node).include_debug_headers);
        assert!(b.overlay.resolve(RuntimeKind::Node).include_debug_headers);
        for (text, want) in [
            (
                r#"{"include_debug_headers":false,"response":{"include_debug_headers":true}}"#,
                Some(true),
            ),
            (
                r#"{"include_debug_headers":true,"response":{"include_debug_headers":false}}"#,
                Some(true),
            ),
            (r#"{"response":{"include_debug_headers":false}}"#, Some(false)),
            (r#"{"response":{}}"#, None),
        ] {
            assert_eq!(parse(text).unwrap().overlay.include_debug_headers, want, "{text}");
        }
    }

    #[test]
    fn worker_pool_defaults_and_clamps() {
        let cfg = parse(r#"{"max_concurrency":7,"worker_pool":{"queue_poll_ms":900}}"#).unwrap();
        let p = cfg.overlay.resolve(RuntimeKind::Python);
        assert_eq!(
            p.worker_pool,
            WorkerPoolPolicy {
                enabled: true,
                max_workers: 7,
                queue_poll_ms: 200,
                ..WorkerPoolPolicy::default()
            }
        );
        let p = parse(r#"{"worker_pool":{"queue_poll_ms":0,"enabled":false,"max_workers":2,"max_queue":3,"overflow_status":503}}"#)
            .unwrap()
            .overlay
            .resolve(RuntimeKind::Node);
        assert_eq!(
            (
                p.worker_pool.enabled,
                p.worker_pool.max_workers,
                p.worker_pool.max_queue
            ),
            (false, 2, 3)
        );
        assert_eq!((p.worker_pool.queue_poll_ms, p.worker_pool.overflow_status), (1, 503));
        // No block: disabled, but max_workers still follows max_concurrency.
        let p = parse(r#"{"max_concurrency":5}"#)
            .unwrap()
            .overlay
            .resolve(RuntimeKind::Node);
        assert_eq!((p.worker_pool.enabled, p.worker_pool.max_workers), (false, 5));
    }

    #[test]
    fn compiled_runtimes_get_a_longer_timeout() {
        let o = parse(r#"{"timeout_ms":3000}"#).unwrap().overlay;
        assert_eq!(o.resolve(RuntimeKind::Node).timeout_ms, 3000);
        assert_eq!(o.resolve(RuntimeKind::Rust).timeout_ms, 180_000);
        assert_eq!(o.resolve(RuntimeKind::Go).timeout_ms, 180_000);
    }

    #[test]
    fn invalid_fields_name_file_field_and_expectation() {
        let cases = [
            (
                r#"{"worker_pool":{"overflow_status":500}}"#,
                "functions/api/fn.config.json (field `worker_pool.overflow_status`): expected 429 or 503, got 500",
            ),
            (
                r#"{"invoke":{"handler":"1abc"}}"#,
                "functions/api/fn.config.json (field `invoke.handler`): expected a name matching ^[a-zA-Z_][a-zA-Z0-9_]*$, got \"1abc\"",
            ),
            (
                r#"{"timeout_ms":"soon"}"#,
                "functions/api/fn.config.json (field `timeout_ms`): expected an integer, got \"soon\"",
            ),
            (
                r#"{"invoke":{"adapter":"soap"}}"#,
                "functions/api/fn.config.json (field `invoke.adapter`): expected native, aws-lambda or cloudflare-worker, got \"soap\"",
            ),
            (
                r#"{"invoke":{"methods":["GET","FETCH"]}}"#,
                "functions/api/fn.config.json (field `invoke.methods`): expected HTTP methods (GET, POST, PUT, PATCH, DELETE…), got [\"GET\",\"FETCH\"]",
            ),
            (
                r#"{"runtime":"cobol"}"#,
                "functions/api/fn.config.json (field `runtime`): expected one of node, python, php, lua, rust, go, got \"cobol\"",
            ),
            (
                r#"{"invoke":{"routes":["/a/../b"]}}"#,
                "functions/api/fn.config.json (field `invoke.routes`): expected a route without `..`, got \"/a/../b\"",
            ),
            (
                r#"{"entrypoint":"../x.py"}"#,
                "functions/api/fn.config.json (field `entrypoint`): expected a relative path inside the folder, got \"../x.py\"",
            ),
            (
                r#"{"assets":{"directory":"public","not_found_handling":"redirect"}}"#,
                "functions/api/fn.config.json (field `assets.not_found_handling`): expected \"404\", \"single-page-application\" or \"spa\", got \"redirect\"",
            ),
        ];
        for (text, want) in cases {
            let err = parse(text).unwrap_err();
            assert_eq!(err.code, "config.invalid_field", "{text}");
            assert_eq!(err.to_string(), want);
        }
    }

    #[test]
    fn invalid_json_names_line_and_column() {
        let err = parse("{\n  \"timeout_ms\": 10,\n}").unwrap_err();
        assert_eq!(err.code, "config.invalid_json");
        assert!(
            err.message.starts_with("invalid JSON at line 3, column 1"),
            "{}",
            err.message
        );
        assert_eq!(parse("[]").unwrap_err().code, "config.invalid_field");
    }

    #[test]
    fn assets_and_ignore_dirs() {
        let cfg = parse(
            r#"{"assets":{"directory":"./public/","not_found_handling":"spa","run_worker_first":true},
                "zero_config":{"ignore_dirs":["a"]},"discovery":{"ignore_dirs":"b, c"},
                "routing":{"ignore_dirs":["d"]},"zero_config_ignore_dirs":"e"}"#,
        )
        .unwrap();
        assert_eq!(
            cfg.assets,
            Some(AssetsConfig {
                directory: "public".into(),
                spa: true,
                run_worker_first: true
            })
        );
        assert_eq!(cfg.ignore_dirs, vec!["a", "b", "c", "d", "e"]);
    }

    #[test]
    fn overlays_merge_nearest_wins_field_by_field() {
        let root =
            parse(r#"{"timeout_ms":100,"max_body_bytes":10,"worker_pool":{"max_queue":4,"overflow_status":503}}"#)
                .unwrap()
                .overlay;
        let near = parse(r#"{"timeout_ms":200,"worker_pool":{"max_queue":1}}"#)
            .unwrap()
            .overlay;
        let p = root.merge(&near).resolve(RuntimeKind::Node);
        assert_eq!((p.timeout_ms, p.max_body_bytes), (200, 10));
        assert_eq!((p.worker_pool.max_queue, p.worker_pool.overflow_status), (1, 503));
    }

    #[test]
    fn routes_json() {
        // serde_json keeps object keys sorted, so entries come in key order.
        let entries = parse_routes_json(
            r#"{"routes":{"GET,POST /path":"file.js","/x":"y.py","delete  z":"./d/z.php"}}"#,
            Path::new("fn.routes.json"),
        )
        .unwrap();
        assert_eq!(
            entries,
            vec![
                RoutesJsonEntry {
                    methods: Methods::GET,
                    path: "/x".into(),
                    file: "y.py".into()
                },
                RoutesJsonEntry {
                    methods: Methods::GET | Methods::POST,
                    path: "/path".into(),
                    file: "file.js".into()
                },
                RoutesJsonEntry {
                    methods: Methods::DELETE,
                    path: "/z".into(),
                    file: "d/z.php".into()
                },
            ]
        );
        let err = parse_routes_json(r#"{"routes":{"/x":"../y.py"}}"#, Path::new("fn.routes.json")).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("routes./x"));
    }
}
