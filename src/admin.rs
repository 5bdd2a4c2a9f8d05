//! `/_fn/*`: health, catalog, reload, OpenAPI, docs and logs (contract §6), behind the admin
//! guards: loopback clients only (or `x-fn-admin-token`), a loopback `Host` (DNS rebinding),
//! and `X-Fn-Request: 1` on anything but GET/HEAD/OPTIONS (CSRF). `/_fn/health` is always open.

use crate::engine::Shared;
use crate::logs::LogFilter;
use crate::rescue::Body;
use crate::rescue::{json_response, Failure};
use crate::routing::{Methods, Resolution, RouteSource};
use crate::runtime::RuntimeKind;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::http::request::Parts;
use hyper::{Method, Response, StatusCode};
use serde_json::{json, Map, Value};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

fn is_loopback_name(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
        || host.to_ascii_lowercase().ends_with(".localhost")
}

/// The admin guard, in contract order. `None` = allowed.
fn guard(shared: &Shared, parts: &Parts, remote: SocketAddr) -> Option<Failure> {
    let settings = &shared.settings;
    if !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS)
        && parts.headers.get("x-fn-request").and_then(|v| v.to_str().ok()) != Some("1")
    {
        return Some(Failure::Forbidden("missing CSRF header"));
    }
    let token_ok = settings.admin_token.as_deref().is_some_and(|want| {
        parts
            .headers
            .get("x-fn-admin-token")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|got| constant_time_eq(got.as_bytes(), want.as_bytes()))
    });
    if token_ok {
        return None;
    }
    let forwarded = parts.headers.contains_key("x-forwarded-for");
    if !remote.ip().to_canonical().is_loopback() || forwarded {
        return Some(Failure::Forbidden("admin endpoints answer loopback clients only"));
    }
    // `Host` only: a rebound page is same-origin and may add any header, `X-Forwarded-Host`
    // included, but cannot change the `Host` its browser sends.
    let host = crate::host::authority_host(parts);
    if let Some(host) = host {
        if !is_loopback_name(host) && !host.eq_ignore_ascii_case(&settings.host) {
            return Some(Failure::HostNotAllowed);
        }
    }
    None
}

/// `/console/*`: the dashboard (`ui/dist`) for a browser, when `FN_UI_ENABLED=1`, behind the
/// admin guard. Client-side routes fall back to `index.html`.
pub(crate) async fn console(shared: &Shared, parts: &Parts, remote: SocketAddr) -> Response<Body> {
    if !shared.settings.ui_enabled {
        return Failure::NotFound.into_response();
    }
    // The guard first: whether the dashboard is built is nobody else's business.
    if let Some(refused) = guard(shared, parts, remote) {
        return refused.into_response();
    }
    let Some(ui) = shared.console.as_ref() else {
        return Failure::NotFound.into_response();
    };
    let path = parts.uri.path();
    let rest = match path.strip_prefix("/console").unwrap_or("/") {
        "" => {
            // `/console` → `/console/` so relative asset URLs resolve inside the console.
            let mut resp = Response::new(Body::default());
            *resp.status_mut() = StatusCode::MOVED_PERMANENTLY;
            resp.headers_mut()
                .insert(hyper::header::LOCATION, HeaderValue::from_static("/console/"));
            return resp;
        }
        rest => rest,
    };
    match ui.serve(&parts.method, rest, &parts.headers, true).await {
        crate::assets::AssetOutcome::Served(resp) => resp,
        crate::assets::AssetOutcome::Refused(f) => f.into_response(),
        crate::assets::AssetOutcome::NoMatch => Failure::NotFound.into_response(),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub(crate) async fn handle(shared: &Arc<Shared>, parts: Parts, body: Incoming, remote: SocketAddr) -> Response<Body> {
    let path = parts.uri.path();
    let settings = &shared.settings;
    if path == "/_fn/health" {
        return match parts.method {
            Method::GET | Method::HEAD => json_response(StatusCode::OK, &health(shared)),
            _ => Failure::MethodNotAllowed {
                allow: "GET, HEAD".into(),
            }
            .into_response(),
        };
    }
    let is_docs = matches!(path, "/_fn/openapi.json" | "/_fn/docs");
    let known = matches!(
        path,
        "/_fn/catalog"
            | "/_fn/reload"
            | "/_fn/logs"
            | "/_fn/invoke"
            | "/_fn/resolve"
            | "/_fn/daemons/kill"
            | "/_fn/packs"
    ) || is_docs;
    if !known || !settings.admin_api_enabled || (is_docs && !settings.docs_enabled) {
        return Failure::NotFound.into_response();
    }
    if let Some(refused) = guard(shared, &parts, remote) {
        return refused.into_response();
    }
    match (path, &parts.method) {
        ("/_fn/catalog", &Method::GET) => json_response(StatusCode::OK, &catalog(shared)),
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
        ("/_fn/openapi.json", &Method::GET) => json_response(StatusCode::OK, &openapi(shared)),
        ("/_fn/docs", &Method::GET) => html(DOCS_PAGE),
        ("/_fn/logs", &Method::GET) => logs(shared, parts.uri.query().unwrap_or("")),
        ("/_fn/resolve", &Method::GET) => {
            json_response(StatusCode::OK, &resolve(shared, parts.uri.query().unwrap_or("")).await)
        }
        ("/_fn/daemons/kill", &Method::POST) => kill_daemon(shared, parts.uri.query().unwrap_or("")),
        ("/_fn/invoke", &Method::POST) => invoke(shared, body, remote)
            .await
            .unwrap_or_else(Failure::into_response),
        _ => Failure::MethodNotAllowed {
            allow: if path == "/_fn/reload" { "GET, POST" } else { "GET" }.into(),
        }
        .into_response(),
    }
}

fn html(page: &'static str) -> Response<Body> {
    let mut resp = Response::new(Full::new(Bytes::from_static(page.as_bytes())));
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    resp
}

const DOCS_PAGE: &str = r#"<!doctype html><html><head><meta charset="utf-8"><title>FastFN API</title>
<style>body{font:14px system-ui,sans-serif;margin:2rem;max-width:60rem}code{background:#f3f3f3;padding:0 .3em}
.op{border:1px solid #ddd;border-radius:6px;margin:.5rem 0;padding:.5rem 1rem}.m{font-weight:bold;display:inline-block;width:5em}</style>
</head><body><h1>FastFN API</h1><p>From <a href="/_fn/openapi.json">/_fn/openapi.json</a>.</p><div id="ops">Loading…</div>
<script>
fetch('/_fn/openapi.json').then(r=>r.json()).then(spec=>{const ops=document.getElementById('ops');ops.textContent='';
for(const [p,item] of Object.entries(spec.paths)){for(const [m,op] of Object.entries(item)){const d=document.createElement('div');d.className='op';
const s=document.createElement('span');s.className='m';s.textContent=m.toUpperCase();const c=document.createElement('code');c.textContent=p;
const t=document.createElement('div');t.textContent=op.summary||'';d.append(s,c,t);ops.append(d);}}});
</script></body></html>"#;

fn methods_list(m: Methods) -> Vec<&'static str> {
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

fn defaults_json() -> Value {
    use crate::config::defaults as d;
    json!({"timeout_ms": d::TIMEOUT_MS, "max_concurrency": d::MAX_CONCURRENCY, "max_body_bytes": d::MAX_BODY_BYTES})
}

/// `GET /_fn/events`: lifecycle and live engine events as server-sent events, one JSON object
/// per `data:` line (what the dashboard listens to in a browser).
pub(crate) fn events(shared: &Shared, parts: &Parts, remote: SocketAddr) -> Response<crate::rescue::ResponseBody> {
    use http_body_util::{BodyExt, Either, StreamBody};
    use hyper::body::Frame;
    use tokio_stream::wrappers::BroadcastStream;
    use tokio_stream::StreamExt;
    let refused = if !shared.settings.admin_api_enabled {
        Some(Failure::NotFound)
    } else if parts.method != Method::GET {
        Some(Failure::MethodNotAllowed { allow: "GET".into() })
    } else {
        guard(shared, parts, remote)
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

/// `/_fn/catalog` (contract §6) plus `shadowed`, `warnings` and `errors`.
pub(crate) fn catalog(shared: &Shared) -> Value {
    let served = shared.served();
    let map = &served.discovery.routes;
    let mut mapped = Map::new();
    for route in map.routes() {
        let t = &route.target;
        let entry = json!({
            "runtime": t.runtime,
            "fn_name": t.fn_name,
            "version": t.version.as_deref().unwrap_or("default"),
            "methods": methods_list(route.methods),
            "source_rank": route.source as u8,
            "source": source_name(route.source),
            "allow_hosts": t.policy.allow_hosts,
            "force_url": route.force_url,
            "entry": t.entry,
            "explicit": t.explicit,
        });
        match mapped
            .entry(route.pattern.clone())
            .or_insert_with(|| Value::Array(vec![]))
        {
            Value::Array(a) => a.push(entry),
            _ => unreachable!("entries are arrays"),
        }
    }
    let conflicts: Map<String, Value> = map.conflicts().iter().map(|p| (p.clone(), Value::Bool(true))).collect();
    let claimants: Map<String, Value> = map
        .conflicts()
        .iter()
        .map(|p| {
            let list = map
                .claimants(p)
                .iter()
                .map(|t| json!({"runtime": t.runtime, "fn_name": t.fn_name, "entry": t.entry}))
                .collect();
            (p.clone(), Value::Array(list))
        })
        .collect();
    let shadowed: Vec<Value> = map
        .shadowed()
        .iter()
        .map(|s| json!({"route": s.pattern, "winner": {"runtime": s.winner.runtime, "fn_name": s.winner.fn_name}, "loser": {"runtime": s.loser.runtime, "fn_name": s.loser.fn_name}, "reason": s.reason}))
        .collect();
    json!({
        "generated_at": served.generated_at,
        "functions_root": shared.settings.functions_root,
        "defaults": defaults_json(),
        "runtime_order": shared.runtime_order,
        "mapped_routes": mapped,
        "mapped_route_conflicts": conflicts,
        "conflict_claimants": claimants,
        "shadowed_routes": shadowed,
        "runtimes": runtimes_json(shared),
        "warnings": served.discovery.warnings,
        "errors": served.discovery.errors,
    })
}

fn runtimes_json(shared: &Shared) -> Value {
    let mut out = Map::new();
    for (rt, sockets) in &shared.runtimes {
        let list: Vec<Value> = sockets
            .sockets
            .iter()
            .map(|s| {
                let h = s.health();
                let mut v =
                    json!({"index": s.index, "uri": s.uri(), "up": h.up == Some(true), "ts": h.ts, "reason": h.reason});
                if let Some(d) = shared.daemons().iter().find(|d| d.runtime == *rt && d.index == s.index) {
                    let (cpu, rss) = d.usage();
                    v["pid"] = json!(d.pid());
                    v["restarts"] = json!(d.restarts());
                    v["cpu_percent"] = json!(cpu);
                    v["rss_bytes"] = json!(rss);
                }
                v
            })
            .collect();
        let ts = sockets.sockets.iter().map(|s| s.health().ts).fold(0.0, f64::max);
        let up = sockets.up();
        let reason = if up {
            "ok".to_string()
        } else {
            sockets.sockets.first().map(|s| s.health().reason).unwrap_or_default()
        };
        // Daemons run only for runtimes with routes: "not_needed" is not "down".
        let state = match (shared.runtime_needed(*rt), up) {
            (false, _) => "not_needed",
            (true, true) => "up",
            (true, false) => "down",
        };
        out.insert(
            rt.to_string(),
            json!({
                "socket": sockets.sockets.first().map(|s| s.uri()),
                "sockets": list,
                "routing": sockets.routing(),
                "timeout_ms": crate::config::defaults::TIMEOUT_MS,
                "health": {"up": up, "state": state, "ts": ts, "reason": reason, "sockets": list},
            }),
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
        let health = json!({"up": true, "ts": now, "reason": "ok", "sockets": []});
        out.insert(rt.to_string(), json!({"socket": socket, "sockets": [], "routing": routing, "timeout_ms": crate::config::defaults::TIMEOUT_MS, "health": health}));
    }
    Value::Object(out)
}

/// `/_fn/health` (contract §6.1), plus `runtimes_missing` and per-function pool state for
/// every route.
pub(crate) fn health(shared: &Shared) -> Value {
    let served = shared.served();
    let mut states = Vec::new();
    let mut summary = json!({"total": 0, "warm": 0, "stale": 0, "cold": 0, "keep_warm_enabled": 0, "pool_enabled": 0,
        "pool_active": 0, "pool_queued": 0, "pool_queue_drops": 0, "pool_queue_overflow_drops": 0, "pool_queue_timeout_drops": 0});
    let mut seen = std::collections::BTreeSet::new();
    let mut slots: Vec<_> = served
        .discovery
        .routes
        .routes()
        .iter()
        .filter_map(|r| served.slot(&r.target).map(|s| (s, r.target.clone())))
        .collect();
    slots.sort_by(|a, b| a.0.key.cmp(&b.0.key));
    let add = |summary: &mut Value, key: &str, n: u64| {
        summary[key] = json!(summary[key].as_u64().unwrap_or(0) + n);
    };
    for (slot, target) in slots {
        if !seen.insert(slot.key.clone()) {
            continue;
        }
        let wp = &target.policy.worker_pool;
        let stats = slot.pool.stats();
        let warm = slot.is_warm();
        add(&mut summary, "total", 1);
        add(&mut summary, if warm { "warm" } else { "cold" }, 1);
        add(&mut summary, "pool_enabled", wp.enabled as u64);
        add(&mut summary, "pool_active", stats.active);
        add(&mut summary, "pool_queued", stats.queued);
        add(
            &mut summary,
            "pool_queue_drops",
            stats.overflow_drops + stats.timeout_drops,
        );
        add(&mut summary, "pool_queue_overflow_drops", stats.overflow_drops);
        add(&mut summary, "pool_queue_timeout_drops", stats.timeout_drops);
        let mut state = json!({
            "runtime": slot.runtime,
            "name": slot.name,
            "key": slot.key,
            "state": if warm { "warm" } else { "cold" },
            "worker_pool": {
                "enabled": wp.enabled, "min_warm": wp.min_warm, "max_workers": wp.max_workers, "max_queue": wp.max_queue,
                "idle_ttl_seconds": wp.idle_ttl_seconds, "queue_timeout_ms": wp.queue_timeout_ms, "queue_poll_ms": wp.queue_poll_ms,
                "overflow_status": wp.overflow_status, "active": stats.active, "queued": stats.queued,
                "queue_drops": {"overflow": stats.overflow_drops, "timeout": stats.timeout_drops, "total": stats.overflow_drops + stats.timeout_drops},
            },
        });
        if let Some(ms) = slot.warm_at_ms() {
            state["warm_at"] = json!(ms as f64 / 1000.0);
        }
        states.push(state);
    }
    let missing: Map<String, Value> = shared
        .missing
        .iter()
        .map(|(rt, why)| (rt.to_string(), Value::String(why.clone())))
        .collect();
    let mut out = json!({
        "config_loaded_at": shared.config_loaded_at,
        "defaults": defaults_json(),
        "functions_root": shared.settings.functions_root,
        "socket_base_dir": shared.socket_dir,
        "runtime_order": shared.runtime_order,
        "hot_reload": {"enabled": shared.settings.hot_reload, "last_catalog_scan_at": served.generated_at, "watchdog": shared.watch_status()},
        "routing": {
            "mapped_routes": served.discovery.routes.routes().iter().map(|r| r.pattern.as_str()).collect::<std::collections::BTreeSet<_>>().len(),
            "mapped_route_conflicts": served.discovery.routes.conflicts().len(),
            "shadowed_routes": served.discovery.routes.shadowed().len(),
        },
        "functions": {"summary": summary, "states": states},
        "runtimes": runtimes_json(shared),
    });
    if !missing.is_empty() {
        out["runtimes_missing"] = Value::Object(missing);
    }
    let deps = shared.deps.status();
    if !deps.is_empty() {
        out["deps"] = json!(deps);
    }
    if let Some(e) = shared.last_reload_error() {
        out["hot_reload"]["last_error"] = json!(e);
    }
    if !served.discovery.errors.is_empty() {
        out["config_errors"] = json!(served.discovery.errors);
    }
    if !served.discovery.warnings.is_empty() {
        out["warnings"] = json!(served.discovery.warnings);
    }
    out
}

/// OpenAPI 3.1: `:id` → `{id}`, `:slug*` → `{slug}`, `*` → `{wildcard}`.
pub(crate) fn openapi(shared: &Shared) -> Value {
    let served = shared.served();
    let mut paths = Map::new();
    for route in served.discovery.routes.routes() {
        let mut params = Vec::new();
        let templ: Vec<String> = route
            .pattern
            .split('/')
            .map(|seg| {
                if let Some(name) = seg.strip_prefix(':') {
                    let name = name.trim_end_matches('*').to_string();
                    params.push(name.clone());
                    format!("{{{name}}}")
                } else if seg == "*" {
                    params.push("wildcard".into());
                    "{wildcard}".into()
                } else {
                    seg.to_string()
                }
            })
            .collect();
        let item = paths.entry(templ.join("/")).or_insert_with(|| json!({}));
        for m in methods_list(route.methods) {
            let t = &route.target;
            item[m.to_ascii_lowercase()] = json!({
                "operationId": format!("{}_{}", m.to_ascii_lowercase(), t.fn_name.replace(|c: char| !c.is_ascii_alphanumeric(), "_")),
                "summary": format!("{} {} ({})", m, route.pattern, t.runtime),
                "parameters": params.iter().map(|p| json!({"name": p, "in": "path", "required": true, "schema": {"type": "string"}})).collect::<Vec<_>>(),
                "responses": {"200": {"description": "Function response"}},
            });
        }
    }
    let mut servers = vec![json!({"url": format!("http://{}", shared.addr)})];
    if let Some(url) = &shared.settings.public_base_url {
        servers.insert(0, json!({"url": url}));
    }
    json!({"openapi": "3.1.0", "info": {"title": "FastFN functions", "version": env!("CARGO_PKG_VERSION")}, "servers": servers, "paths": paths})
}

fn logs(shared: &Shared, query: &str) -> Response<Body> {
    let q = crate::invoke::event::parse_query(query);
    let get = |k: &str| {
        q.iter().find(|(key, _)| key == k).and_then(|(_, v)| match v {
            crate::invoke::event::QueryValueOut::One(s) => Some(s.clone()),
            _ => None,
        })
    };
    let filter = LogFilter {
        runtime: get("runtime").and_then(|r| RuntimeKind::parse(&r)),
        function: get("fn"),
        stream: get("stream"),
        lines: get("lines").and_then(|n| n.parse().ok()).unwrap_or(200).min(2000),
    };
    let lines = shared.logs.tail(&filter);
    if get("format").as_deref() == Some("text") {
        let text: String = lines
            .iter()
            .map(|l| format!("[{}] {}: {}\n", l.runtime, l.stream, l.line))
            .collect();
        let mut resp = Response::new(Full::new(Bytes::from(text)));
        resp.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
        return resp;
    }
    json_response(StatusCode::OK, &json!({"lines": lines}))
}

/// Largest `/_fn/invoke` request body.
const INVOKE_MAX_BYTES: usize = 2 * 1024 * 1024;

#[derive(serde::Deserialize)]
struct InvokeRequest {
    runtime: Option<String>,
    /// Function name (`fn_name` in the catalog) or a URL path starting with `/`.
    name: String,
    version: Option<String>,
    method: Option<String>,
    query: Option<Value>,
    body: Option<Value>,
    headers: Option<Map<String, Value>>,
    params: Option<Map<String, Value>>,
    context: Option<Value>,
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `POST /_fn/invoke`: call a function by name without going through its public route.
async fn invoke(shared: &Arc<Shared>, body: Incoming, remote: SocketAddr) -> Result<Response<Body>, Failure> {
    use http_body_util::BodyExt;
    let bytes = http_body_util::Limited::new(body, INVOKE_MAX_BYTES)
        .collect()
        .await
        .map_err(|_| Failure::PayloadTooLarge)?
        .to_bytes();
    let req: InvokeRequest = serde_json::from_slice(&bytes)
        .map_err(|_| Failure::BadRequest("invalid invoke request: expected {\"name\": …}"))?;
    let method: Method = req
        .method
        .as_deref()
        .unwrap_or("GET")
        .to_ascii_uppercase()
        .parse()
        .map_err(|_| Failure::BadRequest("invalid method"))?;
    let runtime = match req.runtime.as_deref() {
        Some(r) => Some(RuntimeKind::parse(r).ok_or(Failure::BadRequest("unknown runtime"))?),
        None => None,
    };
    let version = req.version.filter(|v| v != "default");
    let served = shared.served();
    let mut params: Vec<(String, String)> = req
        .params
        .unwrap_or_default()
        .iter()
        .map(|(k, v)| (k.clone(), scalar(v)))
        .collect();
    let route = if req.name.starts_with('/') {
        match served.discovery.routes.resolve(method.as_str(), &req.name, None) {
            Resolution::Matched { route, params: found } => {
                params.extend(found);
                route
            }
            _ => return Err(Failure::NotFound),
        }
    } else {
        served
            .discovery
            .routes
            .routes()
            .iter()
            .find(|r| {
                r.target.fn_name == req.name
                    && runtime.is_none_or(|rt| r.target.runtime == rt)
                    && r.target.version == version
            })
            .ok_or(Failure::NotFound)?
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
    let user = req.context.as_ref().and_then(|c| c.get("user"));
    let client_ip = remote.ip().to_canonical().to_string();
    let input = crate::invoke::CallInput {
        method: &method,
        path: if req.name.starts_with('/') {
            &req.name
        } else {
            &route.pattern
        },
        query: query.as_deref(),
        headers: &headers,
        body: &body,
        client_ip: &client_ip,
        params: &params,
        user,
    };
    let request_id = shared.next_request_id();
    let started = tokio::time::Instant::now();
    let outcome = crate::invoke::run(shared, &route.target, slot, &input, &request_id).await;
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    let reply = outcome.result?;
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
        "route": route.pattern,
        "function": route.target.fn_name,
        "runtime": route.target.runtime,
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
    if let Some(o) = reply.stdout {
        out["stdout"] = json!(o);
    }
    if let Some(e) = reply.stderr {
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

/// `GET /_fn/resolve?method=GET&url=/users/42[&host=…]`: which route and file would answer,
/// and why — or why the answer would be 404, 405, 409 or 421. Nothing is called.
pub(crate) async fn resolve(shared: &Shared, query: &str) -> Value {
    let method = query_value(query, "method")
        .unwrap_or_else(|| "GET".into())
        .to_ascii_uppercase();
    let url = query_value(query, "url").unwrap_or_else(|| "/".into());
    let host = query_value(query, "host");
    let path = url.split(['?', '#']).next().unwrap_or("/").to_string();
    let served = shared.served();
    let map = &served.discovery.routes;
    let mut out = json!({"method": method, "url": url, "path": path});
    if path == "/_fn" || path.starts_with("/_fn/") || path == "/console" || path.starts_with("/console/") {
        out["status"] = json!(if path.starts_with("/_fn") { 200 } else { 404 });
        out["why"] = json!("reserved prefix: answered by the engine itself, never by a function");
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
        out["status"] = json!(200);
        out["file"] = json!(file);
        out["source"] = json!("assets");
        out["why"] = json!(format!(
            "{file} is a static file, and static files are served before functions"
        ));
        return out;
    }
    match map.resolve(&method, &path, host.as_deref()) {
        Resolution::Matched { route, params } => {
            let t = &route.target;
            out["status"] = json!(200);
            out["route"] = json!(route.pattern);
            out["runtime"] = json!(t.runtime);
            out["function"] = json!(t.fn_name);
            out["file"] = json!(t.entry);
            out["source"] = json!(source_name(route.source));
            out["params"] = Value::Object(params.into_iter().map(|(k, v)| (k, Value::String(v))).collect());
            let why = format!(
                "{} {} matches {} ({} route), served by {} ({})",
                method,
                path,
                route.pattern,
                source_name(route.source),
                t.entry,
                t.runtime
            );
            out["why"] = json!(why);
        }
        Resolution::Ambiguous => {
            let claimants: Vec<Value> = map
                .conflicts()
                .iter()
                .filter(|p| crate::routing::pattern_matches(p, &path))
                .flat_map(|p| {
                    map.claimants(p)
                        .iter()
                        .map(move |t| json!({"route": p, "runtime": t.runtime, "file": t.entry}))
                })
                .collect();
            out["status"] = json!(409);
            out["claimants"] = json!(claimants);
            out["why"] = json!("several functions of one runtime claim this URL with the same priority: rename or remove one (409 ambiguous function)");
        }
        Resolution::MethodNotAllowed { allow } => {
            out["status"] = json!(405);
            out["allow"] = json!(allow);
            out["why"] = json!(format!(
                "an explicit function answers this URL for {allow} only (its invoke.methods)"
            ));
        }
        Resolution::HostNotAllowed => {
            out["status"] = json!(421);
            out["why"] = json!(format!(
                "a route matches, but its allow_hosts do not include {}",
                host.as_deref().unwrap_or("(no host)")
            ));
        }
        Resolution::NotFound if static_file.is_some() => {
            let file = static_file.map(|(f, _)| f).unwrap_or_default();
            out["status"] = json!(200);
            out["source"] = json!("assets");
            out["why"] = json!(format!("no function matches; {file} is served as a static file"));
            out["file"] = json!(file);
        }
        Resolution::NotFound => {
            out["status"] = json!(404);
            let other = Methods::ALL_NAMES
                .iter()
                .map(|(m, _)| *m)
                .filter(|m| *m != method)
                .find_map(|m| match map.resolve(m, &path, host.as_deref()) {
                    Resolution::Matched { route, .. } => Some((m, route.pattern.clone(), route.target.entry.clone())),
                    _ => None,
                });
            out["why"] = json!(match other {
                Some((m, pattern, file)) => format!("{pattern} ({file}) answers {m}, not {method}: a file route answers 404 for other methods (only explicit functions answer 405)"),
                None => format!("no route matches {path}"),
            });
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
