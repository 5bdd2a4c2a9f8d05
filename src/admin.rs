//! `/_fn/*`: health, catalog, reload, OpenAPI, docs, invoke and logs (contract §6), plus the
//! original's public aliases `/openapi.json` and `/system/metrics`, and `/console`.
//!
//! Guards, in the original's order (`console/guard.lua`): a switched-off surface answers 404
//! naming its switch (`FN_CONSOLE_API_ENABLED`, `FN_ADMIN_API_ENABLED`, `FN_DOCS_ENABLED`,
//! `FN_UI_ENABLED`); then, while `FN_CONSOLE_LOCAL_ONLY` is on (the default), loopback clients
//! without `X-Forwarded-For` only, whose `Host` is a loopback name or the configured host
//! (DNS rebinding: decided on `Host` and the peer address only, never `X-Forwarded-*`); then
//! `X-Fn-Request: 1` on anything but GET/HEAD/OPTIONS (CSRF). A matching `x-fn-admin-token`
//! satisfies both the local-only and the CSRF checks. `/_fn/health` (and `/system/metrics`) and
//! `/openapi.json` are open.

use crate::engine::Shared;
use crate::inspect::Reason;
use crate::logs::{LogFile, LogFilter};
use crate::rescue::Body;
use crate::rescue::{json_response, Failure};
use crate::routing::{Methods, Resolution, Route, RouteSource};
use crate::runtime::RuntimeKind;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use hyper::http::request::Parts;
use hyper::{Method, Response, StatusCode};
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

fn is_loopback_name(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
        || host.to_ascii_lowercase().ends_with(".localhost")
}

pub(crate) fn has_admin_token(shared: &Shared, parts: &Parts) -> bool {
    shared.settings.admin_token.as_deref().is_some_and(|want| {
        parts
            .headers
            .get("x-fn-admin-token")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|got| constant_time_eq(got.as_bytes(), want.as_bytes()))
    })
}

/// Local-only, `Host` and CSRF checks shared by the admin API and the console. `local_only` is
/// the 403 message (`console api local-only`, `console ui local-only`). `None` = allowed.
fn access_guard(shared: &Shared, parts: &Parts, remote: SocketAddr, local_only: &'static str) -> Option<Failure> {
    let settings = &shared.settings;
    let token_ok = has_admin_token(shared, parts);
    if settings.console_local_only && !token_ok {
        let forwarded = parts.headers.contains_key("x-forwarded-for");
        if !remote.ip().to_canonical().is_loopback() || forwarded {
            return Some(Failure::Forbidden(local_only));
        }
        // `Host` only: a rebound page is same-origin and may add any header, `X-Forwarded-Host`
        // included, but cannot change the `Host` its browser sends. With local-only off the
        // admin is open on purpose, under whatever name the clients use.
        if let Some(host) = crate::host::authority_host(parts) {
            if !is_loopback_name(host) && !host.eq_ignore_ascii_case(&settings.host) {
                return Some(Failure::HostNotAllowed);
            }
        }
    }
    if !token_ok
        && !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS)
        && parts.headers.get("x-fn-request").and_then(|v| v.to_str().ok()) != Some("1")
    {
        return Some(Failure::Forbidden("missing CSRF header"));
    }
    None
}

/// The admin API's guard: its two switches, [`access_guard`], then the console login when
/// `FN_CONSOLE_LOGIN_API=1` (`manage::login_gate`).
pub(crate) fn api_guard(shared: &Shared, parts: &Parts, remote: SocketAddr) -> Option<Failure> {
    api_guard_without_login(shared, parts, remote)
        .or_else(|| crate::manage::login_gate(shared, parts, has_admin_token(shared, parts)))
}

/// [`api_guard`] for `/_fn/login` and `/_fn/logout`, which must be reachable signed out.
pub(crate) fn api_guard_without_login(shared: &Shared, parts: &Parts, remote: SocketAddr) -> Option<Failure> {
    if !shared.settings.console_api_enabled {
        return Some(Failure::Disabled("console api disabled"));
    }
    if !shared.settings.admin_api_enabled {
        return Some(Failure::Disabled("admin api disabled"));
    }
    access_guard(shared, parts, remote, "console api local-only")
}

/// Paths outside `/_fn` that this module answers, as the original's nginx does: the public
/// OpenAPI document and the health alias.
pub(crate) fn is_public_alias(path: &str) -> bool {
    matches!(path, "/openapi.json" | "/system/metrics")
}

/// `/console/*`: the dashboard for a browser (`crate::console`), when `FN_UI_ENABLED=1`,
/// behind the local-only guard.
pub(crate) async fn console(shared: &Shared, parts: &Parts, remote: SocketAddr) -> Response<Body> {
    if !shared.settings.ui_enabled {
        return Failure::Disabled("console ui disabled").into_response();
    }
    if let Some(refused) = access_guard(shared, parts, remote, "console ui local-only") {
        return refused.into_response();
    }
    let Some(ui) = shared.console.as_ref() else {
        return Failure::NotFound.into_response();
    };
    let rest = parts.uri.path().strip_prefix("/console").unwrap_or("/");
    ui.serve(&parts.method, rest, &parts.headers).await
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn only_get(path: &str) -> Response<Body> {
    Failure::MethodNotAllowed {
        allow: if path == "/_fn/reload" {
            "GET, POST"
        } else {
            "GET, HEAD"
        }
        .into(),
    }
    .into_response()
}

pub(crate) async fn handle(shared: &Arc<Shared>, parts: Parts, body: Incoming, remote: SocketAddr) -> Response<Body> {
    let path = parts.uri.path();
    let settings = &shared.settings;
    let get = matches!(parts.method, Method::GET | Method::HEAD);
    if matches!(path, "/_fn/health" | "/system/metrics") {
        return if get {
            let h = health_snapshot(shared);
            // `?probe=1` (Kubernetes probes, docs/deploy.md): 503 while a needed runtime is down.
            let down = crate::k8s::wants_probe(parts.uri.query()) && h.runtimes.values().any(|r| !r.health.up);
            let status = if down {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::OK
            };
            json_response(status, &h)
        } else {
            only_get(path)
        };
    }
    // Docs follow `FN_DOCS_ENABLED` alone, as in the original. `/openapi.json` is public;
    // `/_fn/openapi.json` and `/_fn/docs` keep the local-only guard like the rest of `/_fn`.
    if matches!(path, "/openapi.json" | "/_fn/openapi.json" | "/_fn/docs") || path.starts_with("/_fn/docs/") {
        if !settings.docs_enabled {
            return Failure::Disabled("docs disabled").into_response();
        }
        if path != "/openapi.json" {
            if let Some(refused) = access_guard(shared, &parts, remote, "console api local-only") {
                return refused.into_response();
            }
        }
        if !get {
            return only_get(path);
        }
        return match path {
            "/openapi.json" | "/_fn/openapi.json" => json_response(StatusCode::OK, &openapi(shared, &parts)),
            "/_fn/docs" | "/_fn/docs/" => static_body(DOCS_PAGE.as_bytes(), "text/html; charset=utf-8", "no-cache"),
            "/_fn/docs/swagger-ui-bundle.js" => static_body(SWAGGER_JS, "text/javascript", SWAGGER_CACHE),
            "/_fn/docs/swagger-ui.css" => static_body(SWAGGER_CSS, "text/css; charset=utf-8", SWAGGER_CACHE),
            _ => Failure::NotFound.into_response(),
        };
    }
    let jobs = path == "/_fn/jobs" || path.starts_with("/_fn/jobs/");
    if jobs || matches!(path, "/_fn/secrets" | "/_fn/env") {
        if let Some(refused) = api_guard(shared, &parts, remote) {
            return refused.into_response();
        }
        return if jobs {
            crate::jobs::handle(shared, &parts, body).await
        } else {
            crate::secrets::handle(shared, &parts, body).await
        };
    }
    if crate::manage::owns(path) {
        return crate::manage::handle(shared, parts, body, remote).await;
    }
    if path == "/_fn/lab" || path.starts_with("/_fn/lab/") {
        if let Some(refused) = api_guard(shared, &parts, remote) {
            return refused.into_response();
        }
        return crate::lab::handle(shared, &parts, body).await;
    }
    let known = matches!(
        path,
        "/_fn/catalog"
            | "/_fn/reload"
            | "/_fn/logs"
            | "/_fn/invoke"
            | "/_fn/resolve"
            | "/_fn/daemons/kill"
            | "/_fn/packs"
            | "/_fn/schedules"
            | "/_fn/schedules/run"
            | "/_fn/export/k8s"
            | "/_fn/dashboard"
    ) || path == "/_fn/requests"
        || path.starts_with("/_fn/requests/")
        || path == "/_fn/tests"
        || path.starts_with("/_fn/tests/");
    if !known {
        return Failure::NotFound.into_response();
    }
    if let Some(refused) = api_guard(shared, &parts, remote) {
        return refused.into_response();
    }
    match (path, &parts.method) {
        ("/_fn/catalog", &Method::GET) => json_response(StatusCode::OK, &catalog_snapshot(shared)),
        ("/_fn/dashboard", &Method::GET) => json_response(
            StatusCode::OK,
            &shared.inspector.dashboard(crate::clock::epoch_millis()),
        ),
        ("/_fn/dashboard", _) => Failure::MethodNotAllowed { allow: "GET".into() }.into_response(),
        ("/_fn/packs", &Method::GET) => {
            // Reads the packs folder: off the async workers.
            let (deps, root) = (shared.deps.clone(), settings.functions_root.clone());
            let packs = tokio::task::spawn_blocking(move || deps.packs(&root))
                .await
                .unwrap_or_default();
            json_response(StatusCode::OK, &json!({ "packs": packs }))
        }
        ("/_fn/reload", &Method::GET | &Method::POST) => {
            let report = shared.reload().await;
            let served = shared.served();
            let mut body = json!({
                "ok": report.ok,
                "reloaded_at": served.generated_at,
                "functions_root": settings.functions_root,
                "runtime_order": shared.runtime_order,
                "catalog_generated_at": served.generated_at,
                "routes": report.routes,
                "added": report.added,
                "removed": report.removed,
            });
            if !report.errors.is_empty() {
                body["errors"] = json!(report.errors);
            }
            json_response(StatusCode::OK, &body)
        }
        ("/_fn/logs", &Method::GET) => {
            logs(shared, parts.uri.query().unwrap_or("")).unwrap_or_else(Failure::into_response)
        }
        ("/_fn/resolve", &Method::GET) => json_response(
            StatusCode::OK,
            &resolve_snapshot(shared, parts.uri.query().unwrap_or("")).await,
        ),
        ("/_fn/daemons/kill", &Method::POST) => kill_daemon(shared, parts.uri.query().unwrap_or("")),
        ("/_fn/invoke", &Method::POST) => invoke(shared, body, remote)
            .await
            .unwrap_or_else(Failure::into_response),
        ("/_fn/invoke", _) => Failure::MethodNotAllowed { allow: "POST".into() }.into_response(),
        ("/_fn/schedules", &Method::GET) => json_response(StatusCode::OK, &shared.scheduler.snapshot(shared)),
        ("/_fn/schedules/run", &Method::POST) => crate::scheduler::run_now_endpoint(shared, &parts).await,
        ("/_fn/schedules/run", _) => Failure::MethodNotAllowed { allow: "POST".into() }.into_response(),
        ("/_fn/export/k8s", &Method::POST) => crate::k8s::admin_export(settings, body).await,
        ("/_fn/export/k8s", _) => Failure::MethodNotAllowed { allow: "POST".into() }.into_response(),
        _ if path.starts_with("/_fn/requests") => crate::inspect::admin::handle(shared, &parts, body).await,
        _ if path.starts_with("/_fn/tests") => crate::inspect::saved::handle(shared, &parts).await,
        _ => only_get(path),
    }
}

/// Swagger UI's files change only with the binary.
const SWAGGER_CACHE: &str = "public, max-age=86400";
/// `swagger-ui-dist` (see `vendor/swagger-ui/README.md`), compiled in: no CDN, works offline.
const SWAGGER_JS: &[u8] = include_bytes!("../vendor/swagger-ui/swagger-ui-bundle.js");
const SWAGGER_CSS: &[u8] = include_bytes!("../vendor/swagger-ui/swagger-ui.css");

fn static_body(bytes: &'static [u8], content_type: &'static str, cache: &'static str) -> Response<Body> {
    let mut resp = Response::new(Full::new(Bytes::from_static(bytes)));
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    resp
}

/// Swagger UI over `/_fn/openapi.json`, from the files above.
const DOCS_PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>FastFN API · Swagger UI</title>
<link rel="stylesheet" href="/_fn/docs/swagger-ui.css">
<style>body{margin:0}.topbar{display:none}</style>
</head>
<body>
<div id="swagger-ui"></div>
<noscript>Swagger UI needs JavaScript; the document itself is at <a href="/_fn/openapi.json">/_fn/openapi.json</a>.</noscript>
<script src="/_fn/docs/swagger-ui-bundle.js"></script>
<script>
window.ui = SwaggerUIBundle({
  url: '/_fn/openapi.json',
  dom_id: '#swagger-ui',
  deepLinking: true,
  tryItOutEnabled: true,
  presets: [SwaggerUIBundle.presets.apis],
});
</script>
</body>
</html>
"#;

pub(crate) fn methods_list(m: Methods) -> Vec<&'static str> {
    Methods::ALL_NAMES
        .iter()
        .filter(|(_, bit)| m.0 & bit.0 != 0)
        .map(|(n, _)| *n)
        .collect()
}

fn source_name(s: RouteSource) -> &'static str {
    match s {
        RouteSource::File => "file",
        RouteSource::RoutesJson => "routes_json",
        RouteSource::Config => "config",
    }
}

/// `GET /_fn/events`: lifecycle and live engine events as server-sent events, one JSON object
/// per `data:` line (what the dashboard listens to in a browser).
pub(crate) fn events(shared: &Shared, parts: &Parts, remote: SocketAddr) -> Response<crate::rescue::ResponseBody> {
    use http_body_util::{BodyExt, Either, StreamBody};
    use hyper::body::Frame;
    use tokio_stream::wrappers::BroadcastStream;
    use tokio_stream::StreamExt;
    let refused = if parts.method != Method::GET {
        Some(Failure::MethodNotAllowed { allow: "GET".into() })
    } else {
        api_guard(shared, parts, remote)
    };
    if let Some(failure) = refused {
        return failure.into_response().map(Either::Left);
    }
    let lifecycle = BroadcastStream::new(shared.events.subscribe());
    let live = BroadcastStream::new(shared.events.subscribe_live());
    let hello = tokio_stream::once(Ok::<_, Infallible>(Frame::data(Bytes::from_static(b": connected\n\n"))));
    let frames = lifecycle.merge(live).map(|item| {
        let text = match item {
            Ok(event) => format!("data: {}\n\n", serde_json::to_string(&event).unwrap_or_default()),
            // A slow reader missed events: say so and go on.
            Err(tokio_stream::wrappers::errors::BroadcastStreamRecvError::Lagged(n)) => format!(": lagged {n}\n\n"),
        };
        Ok::<_, Infallible>(Frame::data(Bytes::from(text)))
    });
    let body = StreamBody::new(hello.chain(frames)).boxed();
    let mut resp = Response::new(Either::Right(body));
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert("cache-control", HeaderValue::from_static("no-cache"));
    resp
}

/// One route entry of `/_fn/catalog` `mapped_routes` (contract §6, plus `source`, `entry`,
/// `explicit`).
#[derive(Debug, Serialize, ts_rs::TS)]
#[ts(export)]
pub struct MappedRoute {
    pub runtime: RuntimeKind,
    pub fn_name: String,
    /// `default` for the default version.
    pub version: String,
    pub methods: Vec<&'static str>,
    pub source_rank: u8,
    pub source: &'static str,
    pub allow_hosts: Vec<String>,
    pub force_url: bool,
    pub entry: String,
    pub explicit: bool,
}

/// A function's policy in `/_fn/catalog` `runtimes.<rt>.functions[].policy`: its methods and
/// routes over all its routes, and its limits.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
#[ts(export)]
pub struct CatalogPolicy {
    pub methods: Vec<&'static str>,
    pub routes: Vec<String>,
    #[ts(type = "number")]
    pub timeout_ms: u64,
    #[ts(type = "number")]
    pub max_concurrency: i64,
    #[ts(type = "number")]
    pub max_body_bytes: u64,
    pub include_debug_headers: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[ts(as = "Option<Vec<String>>", optional)]
    pub allow_hosts: Vec<String>,
}

/// One function of a runtime, as the original's catalog lists it (`name`, `has_default`,
/// `versions`, `policy`, `versions_policy`), plus its entry file.
#[derive(Debug, Serialize, ts_rs::TS)]
#[ts(export)]
pub struct CatalogFunction {
    pub name: String,
    /// Whether the unversioned function exists (`/name`), not only `name@v`.
    pub has_default: bool,
    pub versions: Vec<String>,
    /// The default version's policy (the first version's when there is no default).
    pub policy: CatalogPolicy,
    pub versions_policy: BTreeMap<String, CatalogPolicy>,
    pub entry: String,
    /// The default version's state, as `/_fn/health` `functions.states` has it (the
    /// original's `default_state`: warm/cold, keep-warm, worker pool).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub default_state: Option<FunctionState>,
}

/// `/_fn/catalog`.
#[derive(Debug, Serialize, ts_rs::TS)]
#[ts(export)]
pub struct Catalog {
    pub generated_at: f64,
    #[ts(type = "string")]
    pub functions_root: std::path::PathBuf,
    pub defaults: crate::config::PolicyDefaults,
    pub runtime_order: Vec<RuntimeKind>,
    pub mapped_routes: BTreeMap<String, Vec<MappedRoute>>,
    pub mapped_route_conflicts: BTreeMap<String, bool>,
    /// Per conflicting route: `{runtime, fn_name, entry}` of each claimant.
    #[ts(type = "Record<string, Array<{ runtime: RuntimeKind, fn_name: string, entry: string }>>")]
    pub conflict_claimants: BTreeMap<String, Vec<Value>>,
    #[ts(
        type = "Array<{ route: string, winner: { runtime: RuntimeKind, fn_name: string }, loser: { runtime: RuntimeKind, fn_name: string }, reason: string }>"
    )]
    pub shadowed_routes: Vec<Value>,
    /// Per runtime: sockets and health as in `/_fn/health`, plus its functions.
    pub runtimes: BTreeMap<String, CatalogRuntime>,
    pub warnings: Vec<String>,
    #[ts(type = "Array<{ code: string, file: string, field: string | null, message: string }>")]
    pub errors: Vec<crate::config::ConfigError>,
}

/// [`catalog_snapshot`] as JSON (what the engine's API and the desktop app take).
pub(crate) fn catalog(shared: &Shared) -> Value {
    serde_json::to_value(catalog_snapshot(shared)).unwrap_or(Value::Null)
}

fn policy_of(route: &Route) -> CatalogPolicy {
    let p = &route.target.policy;
    CatalogPolicy {
        methods: Vec::new(),
        routes: Vec::new(),
        timeout_ms: p.timeout_ms,
        max_concurrency: p.max_concurrency,
        max_body_bytes: p.max_body_bytes,
        include_debug_headers: p.include_debug_headers,
        allow_hosts: p.allow_hosts.clone(),
    }
}

fn add_route(policy: &mut CatalogPolicy, route: &Route) {
    for m in methods_list(route.methods) {
        if !policy.methods.contains(&m) {
            policy.methods.push(m);
        }
    }
    if !policy.routes.contains(&route.pattern) {
        policy.routes.push(route.pattern.clone());
    }
}

/// Functions per runtime from the route map, by name (versions folded into one entry).
fn catalog_functions(routes: &[Route]) -> BTreeMap<RuntimeKind, Vec<CatalogFunction>> {
    let mut by_name: BTreeMap<(RuntimeKind, &str), CatalogFunction> = BTreeMap::new();
    for route in routes {
        let t = &route.target;
        let f = by_name
            .entry((t.runtime, t.fn_name.as_str()))
            .or_insert_with(|| CatalogFunction {
                name: t.fn_name.clone(),
                has_default: false,
                versions: Vec::new(),
                policy: policy_of(route),
                versions_policy: BTreeMap::new(),
                entry: t.entry.clone(),
                default_state: None,
            });
        match &t.version {
            None => {
                if !f.has_default {
                    // The default version's limits are the function's.
                    let (methods, routes) = (
                        std::mem::take(&mut f.policy.methods),
                        std::mem::take(&mut f.policy.routes),
                    );
                    f.policy = CatalogPolicy {
                        methods,
                        routes,
                        ..policy_of(route)
                    };
                    f.entry = t.entry.clone();
                    f.has_default = true;
                }
                add_route(&mut f.policy, route);
            }
            Some(v) => {
                if !f.versions.contains(v) {
                    f.versions.push(v.clone());
                }
                let vp = f.versions_policy.entry(v.clone()).or_insert_with(|| policy_of(route));
                add_route(vp, route);
                if !f.has_default {
                    add_route(&mut f.policy, route);
                }
            }
        }
    }
    let mut out: BTreeMap<RuntimeKind, Vec<CatalogFunction>> = BTreeMap::new();
    for ((rt, _), f) in by_name {
        out.entry(rt).or_default().push(f);
    }
    out
}

/// `/_fn/catalog` (contract §6): the route map, plus each runtime's `functions` (as the
/// original lists them), `shadowed_routes`, `warnings` and `errors`.
pub(crate) fn catalog_snapshot(shared: &Shared) -> Catalog {
    let served = shared.served();
    let map = &served.discovery.routes;
    let mut mapped: BTreeMap<String, Vec<MappedRoute>> = BTreeMap::new();
    for route in map.routes() {
        let t = &route.target;
        mapped.entry(route.pattern.clone()).or_default().push(MappedRoute {
            runtime: t.runtime,
            fn_name: t.fn_name.clone(),
            version: t.version.clone().unwrap_or_else(|| "default".into()),
            methods: methods_list(route.methods),
            source_rank: route.source as u8,
            source: source_name(route.source),
            allow_hosts: t.policy.allow_hosts.clone(),
            force_url: route.force_url,
            entry: t.entry.clone(),
            explicit: t.explicit,
        });
    }
    let conflict_claimants = map
        .conflicts()
        .iter()
        .map(|p| {
            let list = map
                .claimants(p)
                .iter()
                .map(|t| json!({"runtime": t.runtime, "fn_name": t.fn_name, "entry": t.entry}))
                .collect();
            (p.clone(), list)
        })
        .collect();
    let shadowed_routes = map
        .shadowed()
        .iter()
        .map(|s| json!({"route": s.pattern, "winner": {"runtime": s.winner.runtime, "fn_name": s.winner.fn_name}, "loser": {"runtime": s.loser.runtime, "fn_name": s.loser.fn_name}, "reason": s.reason}))
        .collect();
    let mut functions = catalog_functions(map.routes());
    let mut states: BTreeMap<String, FunctionState> = health_snapshot(shared)
        .functions
        .states
        .into_iter()
        .map(|s| (s.key.clone(), s))
        .collect();
    for (rt, list) in functions.iter_mut() {
        for f in list.iter_mut().filter(|f| f.has_default) {
            f.default_state = states.remove(&format!("{rt}/{}@default", f.name));
        }
    }
    let runtimes = runtime_statuses(shared)
        .into_iter()
        .map(|(name, status)| {
            let list = RuntimeKind::parse(&name)
                .and_then(|rt| functions.remove(&rt))
                .unwrap_or_default();
            (
                name,
                CatalogRuntime {
                    status,
                    functions: list,
                },
            )
        })
        .collect();
    Catalog {
        generated_at: served.generated_at,
        functions_root: shared.settings.functions_root.clone(),
        defaults: shared.settings.policy_defaults,
        runtime_order: shared.runtime_order.clone(),
        mapped_routes: mapped,
        mapped_route_conflicts: map.conflicts().iter().map(|p| (p.clone(), true)).collect(),
        conflict_claimants,
        shadowed_routes,
        runtimes,
        warnings: served.discovery.warnings.clone(),
        errors: served.discovery.errors.clone(),
    }
}

/// One socket of a daemon runtime, with its daemon's process figures when there is one.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
#[ts(export)]
pub struct SocketStatus {
    pub index: usize,
    pub uri: String,
    pub up: bool,
    pub ts: f64,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub pid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub restarts: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub cpu_percent: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional, type = "number")]
    pub rss_bytes: Option<u64>,
}

/// A runtime's health (contract §6.1): up when a socket is.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
#[ts(export)]
pub struct RuntimeHealth {
    pub up: bool,
    /// `up`, `down`, or `not_needed`: daemons run only for runtimes with routes, and a
    /// runtime the project does not use is not down.
    pub state: &'static str,
    pub ts: f64,
    pub reason: String,
    pub sockets: Vec<SocketStatus>,
}

/// One runtime in `/_fn/health` and `/_fn/catalog` `runtimes`.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
#[ts(export)]
pub struct RuntimeStatus {
    /// First socket (`unix:…`), `inprocess:lua`, or `compiled:<rt>`.
    pub socket: Option<String>,
    pub sockets: Vec<SocketStatus>,
    /// `single`, `round_robin`, `in_process` or `per_function`.
    pub routing: &'static str,
    #[ts(type = "number")]
    pub timeout_ms: u64,
    pub health: RuntimeHealth,
}

/// A runtime in `/_fn/catalog`: its status plus its functions.
#[derive(Debug, Serialize, ts_rs::TS)]
#[ts(export)]
pub struct CatalogRuntime {
    #[serde(flatten)]
    pub status: RuntimeStatus,
    pub functions: Vec<CatalogFunction>,
}

fn runtime_statuses(shared: &Shared) -> BTreeMap<String, RuntimeStatus> {
    let timeout_ms = shared.settings.policy_defaults.timeout_ms;
    let mut out = BTreeMap::new();
    for (rt, sockets) in &shared.runtimes {
        let list: Vec<SocketStatus> = sockets
            .sockets
            .iter()
            .map(|s| {
                let h = s.health();
                let daemon = shared.daemons().iter().find(|d| d.runtime == *rt && d.index == s.index);
                let usage = daemon.map(|d| d.usage());
                SocketStatus {
                    index: s.index,
                    uri: s.uri(),
                    up: h.up == Some(true),
                    ts: h.ts,
                    reason: h.reason,
                    pid: daemon.map(|d| d.pid()),
                    restarts: daemon.map(|d| d.restarts()),
                    cpu_percent: usage.map(|u| u.0),
                    rss_bytes: usage.map(|u| u.1),
                }
            })
            .collect();
        let ts = sockets.sockets.iter().map(|s| s.health().ts).fold(0.0, f64::max);
        let needed = shared.runtime_needed(*rt);
        let serving = sockets.up();
        let reason = if serving {
            "ok".to_string()
        } else {
            sockets.sockets.first().map(|s| s.health().reason).unwrap_or_default()
        };
        let state = match (needed, serving) {
            (false, _) => "not_needed",
            (true, true) => "up",
            (true, false) => "down",
        };
        // `up` answers "can this runtime serve?", the question the original's tools (and
        // readiness probes) ask: a runtime without routes starts its daemons with its first
        // route, as a compiled runtime starts a function's process on its first call.
        let up = serving || !needed;
        out.insert(
            rt.to_string(),
            RuntimeStatus {
                socket: sockets.sockets.first().map(|s| s.uri()),
                sockets: list.clone(),
                routing: sockets.routing(),
                timeout_ms,
                health: RuntimeHealth {
                    up,
                    state,
                    ts,
                    reason,
                    sockets: list,
                },
            },
        );
    }
    let now = crate::clock::epoch_secs();
    for rt in &shared.runtime_order {
        let (socket, routing) = match rt {
            RuntimeKind::Lua => ("inprocess:lua".to_string(), "in_process"),
            RuntimeKind::Rust | RuntimeKind::Go if shared.compiled.contains_key(rt) => {
                (format!("compiled:{rt}"), "per_function")
            }
            _ => continue,
        };
        // In-process and compiled runtimes are up while their toolchain is there; each
        // compiled function's process is started (and restarted) on demand.
        out.insert(
            rt.to_string(),
            RuntimeStatus {
                socket: Some(socket),
                sockets: Vec::new(),
                routing,
                timeout_ms,
                health: RuntimeHealth {
                    up: true,
                    state: "up",
                    ts: now,
                    reason: "ok".into(),
                    sockets: Vec::new(),
                },
            },
        );
    }
    out
}

/// Queue drops of one function's pool.
#[derive(Debug, Serialize, ts_rs::TS)]
#[ts(export)]
pub struct QueueDrops {
    #[ts(type = "number")]
    pub overflow: u64,
    #[ts(type = "number")]
    pub timeout: u64,
    #[ts(type = "number")]
    pub total: u64,
}

/// A function's worker pool: its policy and live counters.
#[derive(Debug, Serialize, ts_rs::TS)]
#[ts(export)]
pub struct WorkerPoolState {
    pub enabled: bool,
    #[ts(type = "number")]
    pub min_warm: u64,
    #[ts(type = "number")]
    pub max_workers: i64,
    #[ts(type = "number")]
    pub max_queue: u64,
    #[ts(type = "number")]
    pub idle_ttl_seconds: u64,
    #[ts(type = "number")]
    pub queue_timeout_ms: u64,
    #[ts(type = "number")]
    pub queue_poll_ms: u64,
    pub overflow_status: u16,
    #[ts(type = "number")]
    pub active: u64,
    #[ts(type = "number")]
    pub queued: u64,
    pub queue_drops: QueueDrops,
}

/// One function in `/_fn/health` `functions.states`.
#[derive(Debug, Serialize, ts_rs::TS)]
#[ts(export)]
pub struct FunctionState {
    pub runtime: RuntimeKind,
    pub name: String,
    pub key: String,
    /// `warm` or `cold`; `crashing` while it keeps ending its dedicated daemon
    /// (see `isolation`).
    pub state: &'static str,
    /// Its handler runs in the runtime's strict sandbox (`strict_fs`, docs/compat.md).
    pub strict_fs: bool,
    /// Set once the function took a shared daemon down and runs on a daemon of its own.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub isolation: Option<crate::isolation::IsolatedFunction>,
    pub worker_pool: WorkerPoolState,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub warm_at: Option<f64>,
    /// Keep-warm pings of this function (absent without `keep_warm`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub keep_warm: Option<crate::scheduler::KeepWarmView>,
}

/// Totals over `functions.states`.
#[derive(Debug, Default, Serialize, ts_rs::TS)]
#[ts(export)]
pub struct FunctionsSummary {
    #[ts(type = "number")]
    pub total: u64,
    #[ts(type = "number")]
    pub warm: u64,
    #[ts(type = "number")]
    pub stale: u64,
    #[ts(type = "number")]
    pub cold: u64,
    #[ts(type = "number")]
    pub keep_warm_enabled: u64,
    #[ts(type = "number")]
    pub pool_enabled: u64,
    #[ts(type = "number")]
    pub pool_active: u64,
    #[ts(type = "number")]
    pub pool_queued: u64,
    #[ts(type = "number")]
    pub pool_queue_drops: u64,
    #[ts(type = "number")]
    pub pool_queue_overflow_drops: u64,
    #[ts(type = "number")]
    pub pool_queue_timeout_drops: u64,
}

#[derive(Debug, Serialize, ts_rs::TS)]
#[ts(export)]
pub struct FunctionsHealth {
    pub summary: FunctionsSummary,
    pub states: Vec<FunctionState>,
}

#[derive(Debug, Serialize, ts_rs::TS)]
#[ts(export)]
pub struct HotReloadStatus {
    pub enabled: bool,
    pub last_catalog_scan_at: f64,
    #[ts(
        type = "{ enabled: boolean, active: boolean, backend: string, last_scan_at?: number } & Record<string, unknown>"
    )]
    pub watchdog: crate::watch::WatchStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub last_error: Option<String>,
}

#[derive(Debug, Serialize, ts_rs::TS)]
#[ts(export)]
pub struct RoutingCounts {
    pub mapped_routes: usize,
    pub mapped_route_conflicts: usize,
    pub shadowed_routes: usize,
}

/// `/_fn/health` (contract §6.1), plus `runtimes_missing`, `deps`, `config_errors` and
/// per-function pool state for every route.
#[derive(Debug, Serialize, ts_rs::TS)]
#[ts(export)]
pub struct Health {
    pub config_loaded_at: f64,
    pub defaults: crate::config::PolicyDefaults,
    #[ts(type = "string")]
    pub functions_root: std::path::PathBuf,
    #[ts(type = "string")]
    pub socket_base_dir: std::path::PathBuf,
    pub runtime_order: Vec<RuntimeKind>,
    pub hot_reload: HotReloadStatus,
    pub routing: RoutingCounts,
    pub functions: FunctionsHealth,
    pub runtimes: BTreeMap<String, RuntimeStatus>,
    /// Runtimes left out, with why (absent when none).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub runtimes_missing: Option<BTreeMap<String, String>>,
    /// Dependency installs (absent when none).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional, type = "Array<Record<string, unknown>>")]
    pub deps: Option<Vec<crate::deps::DepsStatus>>,
    /// Configuration errors of the last scan (absent when none).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(
        optional,
        type = "Array<{ code: string, file: string, field: string | null, message: string }>"
    )]
    pub config_errors: Option<Vec<crate::config::ConfigError>>,
    /// Discovery warnings of the last scan, e.g. an assets folder outside the root (absent
    /// when none).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub warnings: Option<Vec<String>>,
    /// Faults the lab has set (absent when none): nobody should forget one is on.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub faults: Option<Vec<crate::lab::faults::Fault>>,
}

/// [`health_snapshot`] as JSON (what the engine's API and the desktop app take).
pub(crate) fn health(shared: &Shared) -> Value {
    serde_json::to_value(health_snapshot(shared)).unwrap_or(Value::Null)
}

/// `/_fn/health` and `/system/metrics`.
pub(crate) fn health_snapshot(shared: &Shared) -> Health {
    let served = shared.served();
    let mut states = Vec::new();
    let mut summary = FunctionsSummary::default();
    let mut seen = std::collections::BTreeSet::new();
    let mut slots: Vec<_> = served
        .discovery
        .routes
        .routes()
        .iter()
        .filter_map(|r| served.slot(&r.target).map(|s| (s, r.target.clone())))
        .collect();
    slots.sort_by(|a, b| a.0.key.cmp(&b.0.key));
    let now = crate::clock::epoch_secs();
    for (slot, target) in slots {
        if !seen.insert(slot.key.clone()) {
            continue;
        }
        let wp = &target.policy.worker_pool;
        let stats = slot.pool.stats();
        let warm = slot.is_warm();
        summary.total += 1;
        if warm {
            summary.warm += 1;
        } else {
            summary.cold += 1;
        }
        summary.pool_enabled += wp.enabled as u64;
        summary.keep_warm_enabled += target.policy.keep_warm.is_some() as u64;
        summary.pool_active += stats.active;
        summary.pool_queued += stats.queued;
        summary.pool_queue_drops += stats.overflow_drops + stats.timeout_drops;
        summary.pool_queue_overflow_drops += stats.overflow_drops;
        summary.pool_queue_timeout_drops += stats.timeout_drops;
        let isolation = crate::isolation::describe(slot, now);
        let crashing = isolation
            .as_ref()
            .is_some_and(|i| i.state == crate::isolation::IsolationState::Crashing);
        states.push(FunctionState {
            runtime: slot.runtime,
            name: slot.name.clone(),
            key: slot.key.clone(),
            state: if crashing {
                "crashing"
            } else if warm {
                "warm"
            } else {
                "cold"
            },
            // Enforced by the python, node and php daemons only (docs/compat.md).
            strict_fs: target.policy.strict_fs
                && matches!(
                    target.runtime,
                    RuntimeKind::Python | RuntimeKind::Node | RuntimeKind::Php
                ),
            isolation,
            worker_pool: WorkerPoolState {
                enabled: wp.enabled,
                min_warm: wp.min_warm,
                max_workers: wp.max_workers,
                max_queue: wp.max_queue,
                idle_ttl_seconds: wp.idle_ttl_seconds,
                queue_timeout_ms: wp.queue_timeout_ms,
                queue_poll_ms: wp.queue_poll_ms,
                overflow_status: wp.overflow_status,
                active: stats.active,
                queued: stats.queued,
                queue_drops: QueueDrops {
                    overflow: stats.overflow_drops,
                    timeout: stats.timeout_drops,
                    total: stats.overflow_drops + stats.timeout_drops,
                },
            },
            warm_at: slot.warm_at_ms().map(|ms| ms as f64 / 1000.0),
            keep_warm: target
                .policy
                .keep_warm
                .map(|kw| shared.scheduler.keep_warm_of(&slot.key, &kw)),
        });
    }
    let routes = &served.discovery.routes;
    Health {
        config_loaded_at: shared.config_loaded_at,
        defaults: shared.settings.policy_defaults,
        functions_root: shared.settings.functions_root.clone(),
        socket_base_dir: shared.socket_dir.clone(),
        runtime_order: shared.runtime_order.clone(),
        hot_reload: HotReloadStatus {
            enabled: shared.settings.hot_reload,
            last_catalog_scan_at: served.generated_at,
            watchdog: shared.watch_status(),
            last_error: shared.last_reload_error(),
        },
        routing: RoutingCounts {
            mapped_routes: routes
                .routes()
                .iter()
                .map(|r| r.pattern.as_str())
                .collect::<std::collections::BTreeSet<_>>()
                .len(),
            mapped_route_conflicts: routes.conflicts().len(),
            shadowed_routes: routes.shadowed().len(),
        },
        functions: FunctionsHealth { summary, states },
        runtimes: runtime_statuses(shared),
        runtimes_missing: Some(
            shared
                .missing
                .iter()
                .map(|(rt, why)| (rt.to_string(), why.clone()))
                .collect(),
        )
        .filter(|m: &BTreeMap<String, String>| !m.is_empty()),
        deps: Some(shared.deps.status()).filter(|d| !d.is_empty()),
        config_errors: Some(served.discovery.errors.clone()).filter(|e| !e.is_empty()),
        warnings: Some(served.discovery.warnings.clone()).filter(|w| !w.is_empty()),
        faults: Some(shared.lab.faults()).filter(|f| !f.is_empty()),
    }
}

/// `servers[0].url`, in the original's order: `FN_PUBLIC_BASE_URL` > `public-base-url` >
/// `X-Forwarded-Proto`/`X-Forwarded-Host` (first of each list) > the request's `Host` > the
/// listening address. Only a URL in a document; nothing is decided on it.
fn server_url(shared: &Shared, parts: &Parts) -> String {
    if let Some(url) = &shared.settings.public_base_url {
        return url.clone();
    }
    let first = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let scheme = first("x-forwarded-proto").unwrap_or("http");
    match first("x-forwarded-host").or_else(|| first("host")) {
        Some(host) => format!("{scheme}://{host}"),
        None => format!("{scheme}://{}", shared.addr),
    }
}

fn error_response(description: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": {
        "type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}}}})
}

/// JSON Schema type of an example value.
fn schema_of(v: &Value) -> Value {
    match v {
        Value::Bool(_) => json!({"type": "boolean"}),
        Value::Number(n) if n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0) => {
            json!({"type": "integer"})
        }
        Value::Number(_) => json!({"type": "number"}),
        Value::Array(a) if !a.is_empty() => json!({"type": "array", "items": {}}),
        Value::Array(_) | Value::Object(_) => json!({"type": "object", "additionalProperties": true}),
        _ => json!({"type": "string"}),
    }
}

/// The request body of a POST/PUT/PATCH/DELETE operation: `invoke.body` (with
/// `invoke.content_type`, JSON by default) as the example, else a generic JSON body.
fn request_body(docs: &crate::config::InvokeDocs) -> Value {
    let Some(example) = &docs.body else {
        return json!({"required": false, "content": {"application/json": {
            "schema": {"oneOf": [{"type": "object", "additionalProperties": true}, {"type": "array", "items": {}},
                {"type": "string"}, {"type": "number"}, {"type": "boolean"}, {"type": "null"}]},
            "examples": {"object": {"value": {"name": "World"}}, "string": {"value": "raw-body"}}}}});
    };
    let content_type = docs.content_type.as_deref().unwrap_or("application/json");
    if content_type.to_ascii_lowercase().contains("application/json") {
        // A JSON example written as a string is shown parsed, as the original does.
        let parsed = match example {
            Value::String(s) => serde_json::from_str(s.trim()).unwrap_or_else(|_| example.clone()),
            other => other.clone(),
        };
        return json!({"required": false, "content": {"application/json": {
            "schema": schema_of(&parsed), "examples": {"primary": {"value": parsed}}}}});
    }
    let text = match example {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    json!({"required": false, "content": {content_type: {"schema": {"type": "string"}, "examples": {"primary": {"value": text}}}}})
}

/// A route pattern as an OpenAPI path and its path parameters: `:id` → `{id}`, `:slug*` →
/// `{slug}`, `*` → `{wildcard}` (`{wildcard2}`… when repeated).
fn openapi_path(pattern: &str) -> (String, Vec<Value>) {
    let mut params = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    let mut segs = Vec::new();
    for seg in pattern.split('/').filter(|s| !s.is_empty()) {
        let (name, catch_all) = if let Some(p) = seg.strip_prefix(':') {
            (p.trim_end_matches('*').to_string(), p.ends_with('*'))
        } else if seg == "*" {
            let mut name = "wildcard".to_string();
            let mut i = 2;
            while seen.contains(&name) {
                name = format!("wildcard{i}");
                i += 1;
            }
            (name, true)
        } else {
            segs.push(seg.to_string());
            continue;
        };
        segs.push(format!("{{{name}}}"));
        if !seen.contains(&name) {
            let mut p = json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}});
            if catch_all {
                p["description"] = json!("Catch-all path parameter; value may include '/' segments.");
            }
            params.push(p);
            seen.push(name);
        }
    }
    (format!("/{}", segs.join("/")), params)
}

/// One function operation, named and tagged as the original does: `operationId`
/// `<method>_<runtime>_<name>_<version>`, tag `functions`, summary `GET invoke <rt>/<name>`
/// or `GET <invoke.summary>`.
fn operation(route: &Route, docs: &crate::config::InvokeDocs, method: &str, path_params: &[Value]) -> Value {
    let t = &route.target;
    let upper = method.to_ascii_uppercase();
    let label = match &t.version {
        Some(v) => format!("{}/{}@{v}", t.runtime, t.fn_name),
        None => format!("{}/{}", t.runtime, t.fn_name),
    };
    let summary = match docs.summary.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => format!("{upper} {s}"),
        None => format!("{upper} invoke {label}"),
    };
    let id: String = format!(
        "{method}_{}_{}_{}",
        t.runtime,
        t.fn_name,
        t.version.as_deref().unwrap_or("default")
    )
    .chars()
    .map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' })
    .collect();
    let mut op = json!({
        "tags": ["functions"],
        "summary": summary,
        "operationId": id,
        "responses": {
            "200": {"description": "Function response payload", "content": {
                "application/json": {"schema": {"type": "object", "additionalProperties": true}},
                "text/plain": {"schema": {"type": "string"}}}},
            "404": error_response("Unknown function or version"),
            "405": error_response("Method not allowed"),
            "413": error_response("Payload too large"),
            "429": error_response("Concurrency limit exceeded"),
            "502": error_response("Invalid runtime response"),
            "503": error_response("Function runtime unavailable"),
            "504": error_response("Runtime timeout"),
        },
    });
    if matches!(method, "post" | "put" | "patch" | "delete") {
        op["requestBody"] = request_body(docs);
    }
    let mut params = path_params.to_vec();
    for (name, value) in docs.query.iter().flatten() {
        // Objects and arrays are examples of a JSON-encoded string parameter.
        let (schema, example) = match value {
            Value::Object(_) | Value::Array(_) => (json!({"type": "string"}), json!(value.to_string())),
            v => (schema_of(v), v.clone()),
        };
        if !params.iter().any(|p| p["in"] == "query" && p["name"] == name.as_str()) {
            params.push(json!({"name": name, "in": "query", "required": false, "schema": schema, "example": example}));
        }
    }
    if !params.is_empty() {
        op["parameters"] = Value::Array(params);
    }
    op
}

/// The engine's own endpoints, listed when `openapi-include-internal` /
/// `FN_OPENAPI_INCLUDE_INTERNAL` asks for them (the original's ids, for what we serve).
fn internal_paths() -> Map<String, Value> {
    let ok = |d: &str| json!({"description": d, "content": {"application/json": {"schema": {"type": "object", "additionalProperties": true}}}});
    let op = |id: &str, summary: &str, extra: Value| {
        let mut o = json!({"tags": ["internal"], "summary": summary, "operationId": id,
            "responses": {"200": ok(summary), "403": error_response("Forbidden")}});
        if let (Value::Object(o), Value::Object(extra)) = (&mut o, extra) {
            o.extend(extra);
        }
        o
    };
    let mut paths = Map::new();
    paths.insert(
        "/_fn/health".into(),
        json!({"get": op("internal_health_get", "Runtime health status", json!({}))}),
    );
    paths.insert(
        "/_fn/openapi.json".into(),
        json!({"get": op("internal_openapi_get", "OpenAPI schema document", json!({}))}),
    );
    paths.insert(
        "/_fn/docs".into(),
        json!({"get": op("internal_docs_get", "Swagger UI", json!({}))}),
    );
    paths.insert(
        "/_fn/reload".into(),
        json!({"get": op("internal_reload_get", "Reload runtime catalog", json!({})),
               "post": op("internal_reload_post", "Reload runtime catalog", json!({}))}),
    );
    paths.insert(
        "/_fn/catalog".into(),
        json!({"get": op("internal_catalog_get", "Catalog of discovered functions", json!({}))}),
    );
    let invoke_body = json!({"requestBody": {"required": true, "content": {"application/json": {
        "schema": {"type": "object", "required": ["name"], "properties": {
            "runtime": {"type": "string"}, "name": {"type": "string"}, "version": {"type": "string"},
            "method": {"type": "string", "enum": ["GET", "POST", "PUT", "PATCH", "DELETE"], "default": "GET"},
            "route": {"type": "string"}, "params": {"type": "object", "additionalProperties": true},
            "query": {"type": "object", "additionalProperties": true}, "body": {},
            "headers": {"type": "object", "additionalProperties": true},
            "context": {"type": "object", "additionalProperties": true}}},
        "examples": {"by_name": {"value": {"name": "hello", "method": "GET", "query": {"name": "World"}}}}}}}});
    paths.insert(
        "/_fn/invoke".into(),
        json!({"post": op("internal_invoke_post", "Invoke function through console API", invoke_body)}),
    );
    let logs_params = json!({"parameters": [
        {"name": "file", "in": "query", "schema": {"type": "string", "enum": ["error", "access", "runtime"], "default": "error"}},
        {"name": "format", "in": "query", "schema": {"type": "string", "enum": ["text", "json"], "default": "text"}},
        {"name": "lines", "in": "query", "schema": {"type": "integer", "default": 200, "maximum": 2000}},
        {"name": "runtime", "in": "query", "schema": {"type": "string"}},
        {"name": "fn", "in": "query", "schema": {"type": "string"}},
        {"name": "version", "in": "query", "schema": {"type": "string"}},
        {"name": "stream", "in": "query", "schema": {"type": "string", "enum": ["all", "stdout", "stderr"], "default": "all"}}]});
    paths.insert(
        "/_fn/logs".into(),
        json!({"get": op("internal_logs_get", "Read gateway and runtime logs", logs_params)}),
    );
    paths.insert(
        "/_fn/schedules".into(),
        json!({"get": op("internal_schedules_get", "Scheduler snapshot (enabled schedules + state)", json!({}))}),
    );
    let key = json!({"parameters": [{"name": "key", "in": "query", "required": true,
        "schema": {"type": "string"}, "example": "node/report@default"}]});
    paths.insert(
        "/_fn/schedules/run".into(),
        json!({"post": op("internal_schedules_run_post", "Run a schedule now", key)}),
    );
    crate::jobs::openapi_paths(&mut paths, &op);
    crate::manage::openapi_paths(&mut paths, &op);
    paths
}

/// OpenAPI 3.1 of the public routes, as the original's `core/openapi.lua` builds it.
/// The documentation comments at the top of a route's handler file (its first 8 KiB are
/// read when the document is asked for: nothing is kept, nothing is read on a reload).
fn handler_docs(root: &std::path::Path, route: &Route) -> crate::config::InvokeDocs {
    use std::io::Read as _;
    let mut head = Vec::new();
    let read = std::fs::File::open(root.join(&route.target.entry)).and_then(|f| f.take(8192).read_to_end(&mut head));
    match read {
        Ok(_) => crate::config::InvokeDocs::from_handler_comments(&String::from_utf8_lossy(&head)),
        Err(_) => crate::config::InvokeDocs::default(),
    }
}

pub(crate) fn openapi(shared: &Shared, parts: &Parts) -> Value {
    let served = shared.served();
    let include_internal = shared.settings.openapi_include_internal;
    let mut paths = if include_internal { internal_paths() } else { Map::new() };
    let mut routes: Vec<&Route> = served.discovery.routes.routes().iter().collect();
    routes.sort_by(|a, b| a.pattern.cmp(&b.pattern));
    // Paths of the internal set are never taken over by a function.
    let reserved: Vec<String> = paths.keys().cloned().collect();
    for route in routes {
        let (path, params) = openapi_path(&route.pattern);
        if reserved.contains(&path) {
            continue;
        }
        let item = paths.entry(path).or_insert_with(|| json!({}));
        // `invoke.*` in fn.config.json, else the handler's own `@summary`/`@query`/… comments.
        let docs = route
            .target
            .policy
            .docs
            .clone()
            .or(handler_docs(&shared.settings.functions_root, route));
        for m in methods_list(route.methods) {
            let lower = m.to_ascii_lowercase();
            if item.get(&lower).is_none() {
                item[lower.as_str()] = operation(route, &docs, &lower, &params);
            }
        }
    }
    let mut tags = vec![json!({"name": "functions", "description": "Invocable functions"})];
    if include_internal {
        tags.insert(
            0,
            json!({"name": "internal", "description": "Gateway internal endpoints"}),
        );
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "fastfn API", "version": env!("CARGO_PKG_VERSION"), "description": "OpenAPI spec generated from discovered functions"},
        "servers": [{"url": server_url(shared, parts)}],
        "paths": paths,
        "tags": tags,
    })
}

/// `GET /_fn/logs` (the original's `http/logs.lua`): `file=error|access|runtime` (default
/// `error`), `format=text|json` (default `text`), `lines` (1..2000, default 200), and the
/// `runtime`, `fn`, `version`, `stream` filters. JSON is `{file, lines, runtime, fn, version,
/// stream, data}` (`lines` = how many); we add `next` (pass it back as `since` to get only
/// newer lines, which `fastfn logs` does to follow) and, for the runtime log, `entries`: the
/// same lines as structured records for the dashboard.
fn logs(shared: &Shared, query: &str) -> Result<Response<Body>, Failure> {
    let get = |k: &str| query_value(query, k).filter(|v| !v.is_empty());
    let file_name = get("file").unwrap_or_else(|| "error".into());
    let file = LogFile::parse(&file_name).ok_or(Failure::BadRequest("invalid file"))?;
    let stream = get("stream").unwrap_or_else(|| "all".into());
    if !matches!(stream.as_str(), "all" | "stdout" | "stderr") {
        return Err(Failure::BadRequest("invalid stream"));
    }
    let runtime_name = get("runtime");
    let runtime = runtime_name.as_deref().map(RuntimeKind::parse);
    let function = get("fn");
    let version = get("version");
    let lines = get("lines")
        .and_then(|n| n.trim().parse::<i64>().ok())
        .unwrap_or(200)
        .clamp(1, crate::logs::CAPACITY as i64) as usize;
    let since = get("since").and_then(|n| n.parse().ok()).unwrap_or(0);
    let filter = LogFilter {
        runtime: runtime.flatten(),
        function: function.clone(),
        stream: Some(stream.clone()).filter(|s| s != "all"),
        lines,
    };
    // A runtime the engine does not know matches nothing (the original matches `[name]`).
    let unknown_runtime = matches!(runtime, Some(None));
    let tail = if unknown_runtime {
        crate::logs::TextTail {
            lines: Vec::new(),
            next: since,
        }
    } else {
        shared.logs.text_tail(file, &filter, version.as_deref(), since)
    };
    if get("format").as_deref() != Some("json") {
        let mut text = tail.lines.join("\n");
        text.push('\n');
        let mut resp = Response::new(Full::new(Bytes::from(text)));
        resp.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
        return Ok(resp);
    }
    let mut body = json!({
        "file": file.name(),
        "lines": tail.lines.len(),
        "runtime": runtime_name,
        "fn": function,
        "version": version,
        "stream": stream,
        "data": tail.lines,
        "next": tail.next,
    });
    if file == LogFile::Runtime && !unknown_runtime {
        body["entries"] = json!(shared.logs.tail_since(&filter, version.as_deref(), since));
    }
    Ok(json_response(StatusCode::OK, &body))
}

/// Largest `/_fn/invoke` request body (the original's 1 MB).
const INVOKE_MAX_BYTES: usize = 1024 * 1024;

#[derive(serde::Deserialize)]
struct InvokeRequest {
    runtime: Option<String>,
    /// Function name (`fn_name` in the catalog) or a URL path starting with `/`.
    #[serde(default)]
    name: Value,
    version: Option<String>,
    method: Option<String>,
    /// Route template to call the function at (one of its routes); default: its first route
    /// that takes the method.
    route: Option<String>,
    query: Option<Value>,
    body: Option<Value>,
    headers: Option<Map<String, Value>>,
    params: Option<Map<String, Value>>,
    /// Reaches the handler as `event.context.user`.
    context: Option<Value>,
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `/users/:id` with `{id: 42}` → `/users/42`; `:x*` and `*` (`wildcard`) take several
/// segments. `Err` lists the parameters that have no value.
pub(crate) fn fill_route(template: &str, params: &[(String, String)]) -> Result<String, Vec<String>> {
    let enc = |s: &str| percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string();
    let mut missing = Vec::new();
    let mut out = Vec::new();
    for seg in template.split('/').filter(|s| !s.is_empty()) {
        let (name, many) = match seg.strip_prefix(':') {
            Some(p) => (p.trim_end_matches('*'), p.ends_with('*')),
            None if seg == "*" => ("wildcard", true),
            None => {
                out.push(seg.to_string());
                continue;
            }
        };
        match params.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str()) {
            Some(v) if !v.is_empty() && many => out.push(
                v.split('/')
                    .filter(|s| !s.is_empty())
                    .map(enc)
                    .collect::<Vec<_>>()
                    .join("/"),
            ),
            Some(v) if !v.is_empty() => out.push(enc(v)),
            _ => missing.push(name.to_string()),
        }
    }
    if missing.is_empty() {
        Ok(format!("/{}", out.join("/")))
    } else {
        Err(missing)
    }
}

fn bad_request(body: Value) -> Response<Body> {
    json_response(StatusCode::BAD_REQUEST, &body)
}

/// `POST /_fn/invoke` (the original's `console/invoke_endpoint.lua`): call a function by name
/// (or by URL path) without going through its public route. The function's methods (405 with
/// `allowed_methods`) and `max_body_bytes` (413) apply; the answer names the concrete `route`
/// and its `route_template`.
async fn invoke(shared: &Arc<Shared>, body: Incoming, remote: SocketAddr) -> Result<Response<Body>, Failure> {
    use http_body_util::BodyExt;
    let bytes = http_body_util::Limited::new(body, INVOKE_MAX_BYTES)
        .collect()
        .await
        .map_err(|_| Failure::PayloadTooLarge)?
        .to_bytes();
    let req: InvokeRequest = serde_json::from_slice(&bytes).map_err(|_| Failure::BadRequest("invalid json body"))?;
    let Value::String(name) = &req.name else {
        return Err(Failure::BadRequest("name is required"));
    };
    let method_name = req.method.as_deref().unwrap_or("GET").to_ascii_uppercase();
    if !matches!(method_name.as_str(), "GET" | "POST" | "PUT" | "PATCH" | "DELETE") {
        return Err(Failure::BadRequest("unsupported method"));
    }
    let method: Method = method_name
        .parse()
        .map_err(|_| Failure::BadRequest("unsupported method"))?;
    let runtime = match req.runtime.as_deref().filter(|r| !r.is_empty()) {
        Some(r) => Some(RuntimeKind::parse(r).ok_or(Failure::UnknownFunction)?),
        None => None,
    };
    let context = match req.context {
        None | Some(Value::Null) => None,
        Some(c @ Value::Object(_)) => Some(c),
        Some(_) => return Err(Failure::BadRequest("context must be an object")),
    };
    let version = req.version.filter(|v| !v.is_empty() && v != "default");
    let served = shared.served();
    let map = &served.discovery.routes;
    let mut params: Vec<(String, String)> = Vec::new();
    for (k, v) in req.params.unwrap_or_default() {
        if k.is_empty() {
            return Err(Failure::BadRequest("params keys must be non-empty strings"));
        }
        if !v.is_null() {
            params.push((k, scalar(&v)));
        }
    }
    // The route the call goes to, its concrete path, and the function's methods.
    let (route, path): (&Route, String) = if name.starts_with('/') {
        match map.resolve(method.as_str(), name, None) {
            Resolution::Matched { route, params: found } => {
                params.extend(found);
                (route, name.split('?').next().unwrap_or(name).to_string())
            }
            Resolution::MethodNotAllowed { allow } => {
                return Err(Failure::InvokeMethodNotAllowed {
                    allowed: allow
                        .split(',')
                        .filter_map(|m| Methods::parse(m.trim()))
                        .flat_map(methods_list)
                        .collect(),
                })
            }
            Resolution::Ambiguous => return Err(Failure::Ambiguous),
            _ => return Err(Failure::UnknownFunction),
        }
    } else {
        // By name: the runtime given, else the first in the runtime order that has it.
        let order: Vec<RuntimeKind> = runtime.map(|r| vec![r]).unwrap_or_else(|| shared.runtime_order.clone());
        let candidates: Vec<&Route> = order
            .iter()
            .find_map(|rt| {
                let list: Vec<&Route> = map
                    .routes()
                    .iter()
                    .filter(|r| r.target.runtime == *rt && r.target.fn_name == *name && r.target.version == version)
                    .collect();
                (!list.is_empty()).then_some(list)
            })
            .ok_or(Failure::UnknownFunction)?;
        let allowed = candidates.iter().fold(Methods::default(), |acc, r| acc | r.methods);
        let wanted = Methods::parse(method.as_str()).unwrap_or_default();
        if allowed.0 & wanted.0 == 0 {
            return Err(Failure::InvokeMethodNotAllowed {
                allowed: methods_list(allowed),
            });
        }
        let route = match req.route.as_deref().filter(|r| !r.is_empty()) {
            Some(r) => {
                let r = if r.starts_with('/') {
                    r.to_string()
                } else {
                    format!("/{r}")
                };
                // Only one of the function's own routes: any other URL is another function's.
                candidates
                    .iter()
                    .copied()
                    .find(|c| c.pattern == r)
                    .ok_or(Failure::BadRequest("invalid route"))?
            }
            None => candidates
                .iter()
                .copied()
                .filter(|c| c.methods.0 & wanted.0 != 0)
                .min_by(|a, b| a.pattern.cmp(&b.pattern))
                .ok_or(Failure::UnknownFunction)?,
        };
        let path = match fill_route(&route.pattern, &params) {
            Ok(p) => p,
            Err(missing) => {
                return Ok(bad_request(json!({
                    "error": "missing required path params",
                    "route": route.pattern,
                    "missing_params": missing,
                })))
            }
        };
        (route, path)
    };
    let slot = served.slot(&route.target).ok_or(Failure::Internal)?;
    let mut headers = hyper::HeaderMap::new();
    for (k, v) in req.headers.unwrap_or_default() {
        if let (Ok(name), Ok(value)) = (
            hyper::header::HeaderName::from_bytes(k.to_ascii_lowercase().as_bytes()),
            HeaderValue::from_str(&scalar(&v)),
        ) {
            headers.append(name, value);
        }
    }
    let query = match req.query {
        None | Some(Value::Null) => None,
        Some(Value::String(q)) => Some(q.trim_start_matches('?').to_string()),
        Some(Value::Object(map)) => {
            let enc =
                |s: &str| percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string();
            Some(
                map.iter()
                    .map(|(k, v)| format!("{}={}", enc(k), enc(&scalar(v))))
                    .collect::<Vec<_>>()
                    .join("&"),
            )
        }
        Some(_) => return Err(Failure::BadRequest("query must be a string or an object")),
    };
    let body = match req.body {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => s.into_bytes(),
        Some(other) => other.to_string().into_bytes(),
    };
    if body.len() as u64 > route.target.policy.max_body_bytes {
        return Err(Failure::PayloadTooLarge);
    }
    let client_ip = remote.ip().to_canonical().to_string();
    let input = crate::invoke::CallInput {
        method: &method,
        path: &path,
        query: query.as_deref(),
        headers: &headers,
        body: &body,
        client_ip: &client_ip,
        params: &params,
        user: context.as_ref(),
        trigger: None,
    };
    let request_id = shared.next_request_id();
    let started = tokio::time::Instant::now();
    let outcome = crate::invoke::run(shared, &route.target, slot, &input, &request_id).await;
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    let reply = outcome.result?;
    let t = &route.target;
    shared
        .logs
        .push_call_output(t, reply.stdout.as_deref(), reply.stderr.as_deref());
    let mut reply_headers = Map::new();
    for (k, v) in &reply.headers {
        reply_headers.insert(
            k.to_string(),
            Value::String(String::from_utf8_lossy(v.as_bytes()).into_owned()),
        );
    }
    let mut out = json!({
        "status": reply.status,
        "latency_ms": (latency_ms * 1000.0).round() / 1000.0,
        "route": path,
        "route_template": route.pattern,
        "function": t.fn_name,
        "runtime": t.runtime,
        "version": t.version.as_deref().unwrap_or("default"),
        "headers": reply_headers,
    });
    match std::str::from_utf8(&reply.body) {
        Ok(text) => out["body"] = json!(text),
        Err(_) => {
            use base64::Engine as _;
            out["is_base64"] = json!(true);
            out["body_base64"] = json!(base64::engine::general_purpose::STANDARD.encode(&reply.body));
        }
    }
    if let Some(o) = reply.stdout.filter(|o| !o.is_empty()) {
        out["stdout"] = json!(o);
    }
    if let Some(e) = reply.stderr.filter(|e| !e.is_empty()) {
        out["stderr"] = json!(e);
    }
    Ok(json_response(StatusCode::OK, &out))
}

fn query_value(query: &str, key: &str) -> Option<String> {
    crate::invoke::event::parse_query(query)
        .into_iter()
        .find(|(k, _)| k == key)
        .and_then(|(_, v)| match v {
            crate::invoke::event::QueryValueOut::One(s) => Some(s),
            _ => None,
        })
}

/// One claimant of an ambiguous URL in [`Resolve`].
#[derive(Debug, Serialize, ts_rs::TS)]
#[ts(export)]
pub struct ResolveClaimant {
    pub route: String,
    pub runtime: RuntimeKind,
    pub file: String,
}

/// `/_fn/resolve`: which route and file would answer a request, and why — or why the answer
/// would be 404, 405, 409 or 421.
#[derive(Debug, Default, Serialize, ts_rs::TS)]
#[ts(export)]
pub struct Resolve {
    pub method: String,
    pub url: String,
    pub path: String,
    pub status: u16,
    pub why: String,
    /// The request log's reason code for this answer (`ok`, `no_route`, `method_mismatch`…).
    pub reason: crate::inspect::Reason,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub route: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub runtime: Option<RuntimeKind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub function: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub file: Option<String>,
    /// `file`, `routes_json`, `config`, `assets` or `landing`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub source: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub params: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub allow: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub claimants: Option<Vec<ResolveClaimant>>,
}

/// [`resolve_snapshot`] as JSON (what the engine's API and the desktop app take).
pub(crate) async fn resolve(shared: &Shared, query: &str) -> Value {
    serde_json::to_value(resolve_snapshot(shared, query).await).unwrap_or(Value::Null)
}

/// `GET /_fn/resolve?method=GET&url=/users/42[&host=…]`: which route and file would answer,
/// and why — or why the answer would be 404, 405, 409 or 421. Nothing is called.
pub(crate) async fn resolve_snapshot(shared: &Shared, query: &str) -> Resolve {
    let method = query_value(query, "method")
        .unwrap_or_else(|| "GET".into())
        .to_ascii_uppercase();
    let url = query_value(query, "url").unwrap_or_else(|| "/".into());
    let host = query_value(query, "host");
    let path = url.split(['?', '#']).next().unwrap_or("/").to_string();
    let served = shared.served();
    let map = &served.discovery.routes;
    let mut out = Resolve {
        method: method.clone(),
        url,
        path: path.clone(),
        ..Resolve::default()
    };
    if path == "/_fn" || path.starts_with("/_fn/") || path == "/console" || path.starts_with("/console/") {
        out.status = if path.starts_with("/_fn") { 200 } else { 404 };
        out.reason = if path.starts_with("/_fn") {
            Reason::Admin
        } else {
            Reason::NoRoute
        };
        out.why = "reserved prefix: answered by the engine itself, never by a function".into();
        return out;
    }
    // A plain file under the assets folder (no traversal: a path with `..` or a dotfile is
    // never a static file, and the assets module refuses it before looking).
    let static_file = match &served.discovery.assets {
        Some(a) if matches!(method.as_str(), "GET" | "HEAD") && !path.split('/').any(|s| s.starts_with('.')) => {
            let file = shared
                .settings
                .functions_root
                .join(&a.directory)
                .join(path.trim_start_matches('/'));
            let is_file = tokio::fs::metadata(&file).await.is_ok_and(|m| m.is_file());
            is_file.then(|| {
                (
                    format!("{}/{}", a.directory, path.trim_start_matches('/')),
                    a.run_worker_first,
                )
            })
        }
        _ => None,
    };
    if let Some((file, false)) = &static_file {
        out.status = 200;
        out.why = format!("{file} is a static file, and static files are served before functions");
        out.file = Some(file.clone());
        out.source = Some("assets");
        out.reason = Reason::Asset;
        return out;
    }
    match map.resolve(&method, &path, host.as_deref()) {
        Resolution::Matched { route, params } => {
            let t = &route.target;
            out.status = 200;
            out.why = format!(
                "{} {} matches {} ({} route), served by {} ({})",
                method,
                path,
                route.pattern,
                source_name(route.source),
                t.entry,
                t.runtime
            );
            out.route = Some(route.pattern.clone());
            out.runtime = Some(t.runtime);
            out.function = Some(t.fn_name.clone());
            out.file = Some(t.entry.clone());
            out.source = Some(source_name(route.source));
            out.params = Some(params.into_iter().collect());
        }
        Resolution::Ambiguous => {
            let claimants = map
                .conflicts()
                .iter()
                .filter(|p| crate::routing::pattern_matches(p, &path))
                .flat_map(|p| {
                    map.claimants(p).iter().map(move |t| ResolveClaimant {
                        route: p.clone(),
                        runtime: t.runtime,
                        file: t.entry.clone(),
                    })
                })
                .collect();
            out.status = 409;
            out.reason = Reason::Ambiguous;
            out.claimants = Some(claimants);
            out.why = "several functions of one runtime claim this URL with the same priority: rename or remove one (409 ambiguous function)".into();
        }
        Resolution::MethodNotAllowed { allow } if crate::routing::is_named_target(&path) => {
            out.status = 405;
            out.reason = Reason::MethodMismatch;
            out.why = format!("route exists, allows {allow}: the named target answers 405 with Allow for other methods (the function's invoke.methods)");
            out.allow = Some(allow);
        }
        Resolution::MethodNotAllowed { allow } => {
            let file = static_file.map(|(f, _)| f);
            out.status = if file.is_some() { 200 } else { 404 };
            out.reason = if file.is_some() {
                Reason::Asset
            } else {
                Reason::MethodMismatch
            };
            out.why = match &file {
                Some(f) => format!("route exists, allows {allow}, not {method}; {f} is served as a static file"),
                None => format!("route exists, allows {allow}, not {method}: a method mismatch answers 404 (405 with Allow only at /<name>@<version>)"),
            };
            if file.is_some() {
                out.source = Some("assets");
            }
            out.file = file;
            out.allow = Some(allow);
        }
        Resolution::HostNotAllowed => {
            out.status = 421;
            out.reason = Reason::HostNotAllowed;
            out.why = format!(
                "a route matches, but its allow_hosts do not include {}",
                host.as_deref().unwrap_or("(no host)")
            );
        }
        Resolution::NotFound if static_file.is_some() => {
            let file = static_file.map(|(f, _)| f).unwrap_or_default();
            out.status = 200;
            out.reason = Reason::Asset;
            out.source = Some("assets");
            out.why = format!("no function matches; {file} is served as a static file");
            out.file = Some(file);
        }
        Resolution::NotFound
            if path == "/" && matches!(method.as_str(), "GET" | "HEAD") && !map.routes().is_empty() =>
        {
            out.status = 200;
            out.source = Some("landing");
            out.reason = Reason::Landing;
            out.why = "no function answers /: the built-in landing page does (FN_HOME_FUNCTION, FN_HOME_REDIRECT or home in the root fn.config.json change it)".into();
        }
        Resolution::NotFound => {
            out.status = 404;
            out.reason = Reason::NoRoute;
            let other = Methods::ALL_NAMES
                .iter()
                .map(|(m, _)| *m)
                .filter(|m| *m != method)
                .find_map(|m| match map.resolve(m, &path, host.as_deref()) {
                    Resolution::Matched { route, .. } => Some((m, route.pattern.clone(), route.target.entry.clone())),
                    _ => None,
                });
            if other.is_some() {
                out.reason = Reason::MethodMismatch;
            }
            out.why = match other {
                Some((m, pattern, file)) => {
                    format!("{pattern} ({file}) answers {m}, not {method}: a method mismatch answers 404")
                }
                None => format!("no route matches {path}"),
            };
        }
    }
    out
}

/// `POST /_fn/daemons/kill?runtime=python&index=1`: SIGKILL one daemon (the supervisor restarts
/// it). For the dashboard and for failover tests.
fn kill_daemon(shared: &Shared, query: &str) -> Response<Body> {
    let runtime = query_value(query, "runtime").and_then(|r| RuntimeKind::parse(&r));
    let index: usize = query_value(query, "index").and_then(|i| i.parse().ok()).unwrap_or(1);
    let Some(daemon) = runtime.and_then(|rt| shared.daemons().iter().find(|d| d.runtime == rt && d.index == index))
    else {
        return Failure::NotFound.into_response();
    };
    let pid = daemon.pid();
    json_response(
        StatusCode::OK,
        &json!({"ok": daemon.kill(), "runtime": daemon.runtime, "index": index, "pid": pid}),
    )
}
