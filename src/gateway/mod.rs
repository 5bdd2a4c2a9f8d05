//! The HTTP gateway: one hyper service that matches a request against the route map, applies
//! the function's policy (body limit, admission), sends the event to a daemon socket chosen by
//! round robin (with one failover on connect errors), and maps the reply to a response with
//! the contract's headers. Infallible: every failure becomes a response via [`crate::rescue`].

pub mod event;
pub mod reply;

use crate::assets::AssetOutcome;
use crate::engine::{FunctionSlot, Served, Shared};
use crate::events::{EngineEvent, RequestRecord};
use crate::logs::LogLine;
use crate::rescue::Failure;
use crate::routing::{Resolution, Route};
use crate::runtime::client::{self, ExchangeError};
use crate::runtime::compiled::CompiledError;
use crate::runtime::lua::LuaError;
use crate::runtime::{RuntimeKind, RuntimeSockets};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue, CONTENT_LENGTH, HOST, LOCATION};
use hyper::http::request::Parts;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::time::Instant;

pub type Body = Full<Bytes>;

/// What the service answers with: a whole body (every response but one), or a stream
/// (`/_fn/events`). `Either` keeps the common case unboxed.
pub type ResponseBody = http_body_util::Either<Full<Bytes>, http_body_util::combinators::BoxBody<Bytes, Infallible>>;

/// Accept connections until shutdown; each connection is served on its own task.
pub(crate) async fn serve(shared: Arc<Shared>, listener: TcpListener, mut shutdown: watch::Receiver<bool>) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => return,
        };
        let (stream, remote) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let shared = shared.clone();
                async move {
                    Ok::<_, Infallible>(
                        crate::logs::served(&shared.logs, req, remote, |req| handle(&shared, req, remote)).await,
                    )
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Host of the request without port, for a route's `allow_hosts` (contract §3): first
/// `X-Forwarded-Host`, else `Host`. Never for a security decision: any client can send
/// `X-Forwarded-Host` (see [`authority_host`]).
pub(crate) fn request_host(parts: &Parts) -> Option<&str> {
    let raw = parts
        .headers
        .get("x-forwarded-host")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .or_else(|| parts.headers.get(HOST).and_then(|v| v.to_str().ok()))
        .or_else(|| parts.uri.host())?
        .trim();
    Some(strip_port(raw))
}

/// Host of the request without port from `Host` (or the absolute-form URI) only: what a browser
/// sets from the URL and a page cannot change. The admin guard's DNS-rebinding check uses this.
pub(crate) fn authority_host(parts: &Parts) -> Option<&str> {
    let raw = parts
        .headers
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| parts.uri.host())?
        .trim();
    Some(strip_port(raw))
}

fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        // [::1]:8080
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

pub async fn handle(shared: &Arc<Shared>, req: Request<Incoming>, remote: SocketAddr) -> Response<ResponseBody> {
    if req.uri().path() == "/_fn/events" {
        let (parts, _) = req.into_parts();
        return crate::admin::events(shared, &parts, remote);
    }
    handle_whole(shared, req, remote)
        .await
        .map(http_body_util::Either::Left)
}

async fn handle_whole(shared: &Arc<Shared>, req: Request<Incoming>, remote: SocketAddr) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path();
    if path == "/_fn" || path.starts_with("/_fn/") || crate::admin::is_public_alias(path) {
        return crate::admin::handle(shared, parts, body, remote).await;
    }
    if path == "/console" || path.starts_with("/console/") {
        return crate::admin::console(shared, &parts, remote).await;
    }
    let home = if path == "/" {
        crate::landing::home_action(&shared.settings).await
    } else {
        None
    };
    let lookup = match &home {
        Some(crate::landing::HomeAction::Redirect(to)) => return redirect(to),
        Some(crate::landing::HomeAction::Function(to)) => to.as_str(),
        None => path,
    };
    let served = shared.served();
    // §2.6 step 1: a static file wins unless functions run first (or `/` has a home function).
    if let Some(assets) = served
        .assets
        .as_ref()
        .filter(|a| !a.run_worker_first() && home.is_none())
    {
        match assets.serve(&parts.method, path, &parts.headers, false).await {
            AssetOutcome::Served(resp) => return resp,
            AssetOutcome::Refused(failure) => return failure.into_response(),
            AssetOutcome::NoMatch => {}
        }
    }
    let method = parts.method.as_str();
    let resolution = served.discovery.routes.resolve(method, lookup, request_host(&parts));
    match resolution {
        Resolution::Matched { route, params } => invoke(shared, &served, route, &params, &parts, body, remote).await,
        Resolution::Ambiguous => Failure::Ambiguous.into_response(),
        Resolution::MethodNotAllowed { allow } => Failure::MethodNotAllowed { allow }.into_response(),
        Resolution::HostNotAllowed => Failure::HostNotAllowed.into_response(),
        // §2.6 step 6: assets again, with the SPA fallback.
        Resolution::NotFound => match &served.assets {
            Some(assets) => match assets.serve(&parts.method, path, &parts.headers, true).await {
                AssetOutcome::Served(resp) => resp,
                AssetOutcome::Refused(failure) => failure.into_response(),
                AssetOutcome::NoMatch => crate::landing::not_found(&served, &parts.method, path),
            },
            None => crate::landing::not_found(&served, &parts.method, path),
        },
    }
}

fn redirect(to: &str) -> Response<Body> {
    let mut resp = Response::new(Body::default());
    *resp.status_mut() = StatusCode::FOUND;
    if let Ok(v) = HeaderValue::from_str(to) {
        resp.headers_mut().insert(LOCATION, v);
    }
    resp
}

/// What the runtime call produced, before it becomes a response.
pub(crate) struct Outcome {
    pub result: Result<reply::Reply, Failure>,
    /// 0-based socket that answered.
    pub socket_index: Option<usize>,
    pub queued: bool,
}

async fn invoke(
    shared: &Arc<Shared>,
    served: &Served,
    route: &Route,
    params: &[(String, String)],
    parts: &Parts,
    body: Incoming,
    remote: SocketAddr,
) -> Response<Body> {
    let started = Instant::now();
    let target = &route.target;
    let policy = &target.policy;
    let Some(slot) = served.slot(target) else {
        return Failure::Internal.into_response();
    };
    let request_id = shared.next_request_id();
    let was_warm = slot.is_warm();
    let outcome = call(shared, route, slot, params, parts, body, remote, &request_id).await;

    // Pool refusals are the gateway's own answer, not a runtime error: no warm-up headers.
    let runtime_error = match &outcome.result {
        Ok(reply) => reply.status >= 500,
        Err(failure) => failure.is_runtime(),
    };
    let mut resp = match outcome.result {
        Ok(reply) => {
            let mut resp = Response::new(Full::new(reply.body));
            *resp.status_mut() = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::OK);
            let headers = resp.headers_mut();
            for (name, value) in reply.headers {
                headers.append(name, value);
            }
            if reply.stdout.is_some() || reply.stderr.is_some() {
                record_output(
                    shared,
                    target.runtime,
                    (&target.fn_name, target.version.as_deref()),
                    reply.stdout.as_deref(),
                    reply.stderr.as_deref(),
                );
            }
            if policy.include_debug_headers {
                for (name, text) in [("x-fn-stdout", &reply.stdout), ("x-fn-stderr", &reply.stderr)] {
                    if let Some(v) = text.as_deref().and_then(debug_output_value) {
                        headers.insert(HeaderName::from_static(name), v);
                    }
                }
            }
            resp
        }
        Err(failure) => failure.into_response(),
    };
    let status = resp.status().as_u16();
    let headers = resp.headers_mut();
    headers.insert(
        "x-fastfn-function-state",
        HeaderValue::from_static(if was_warm { "warm" } else { "cold" }),
    );
    if status < 500 {
        if slot.warm_up() {
            headers.insert("x-fastfn-warmed", HeaderValue::from_static("true"));
        }
    } else if !was_warm && runtime_error {
        headers.insert("x-fastfn-warming", HeaderValue::from_static("true"));
        headers.insert("retry-after", HeaderValue::from_static("1"));
    }
    if outcome.queued {
        headers.insert("x-fastfn-queued", HeaderValue::from_static("true"));
    }
    let latency = started.elapsed();
    if policy.include_debug_headers {
        let sockets = shared.runtimes.get(&target.runtime);
        let pairs: [(&'static str, Option<String>); 9] = [
            ("x-fn-request-id", Some(request_id.clone())),
            ("x-fn-runtime", Some(target.runtime.to_string())),
            ("x-fn-function", Some(target.fn_name.clone())),
            (
                "x-fn-version",
                Some(target.version.clone().unwrap_or_else(|| "default".into())),
            ),
            (
                "x-fn-latency-ms",
                Some(format!("{:.3}", latency.as_secs_f64() * 1000.0)),
            ),
            (
                "x-fn-worker-pool-max-workers",
                Some(policy.worker_pool.max_workers.to_string()),
            ),
            (
                "x-fn-worker-pool-max-queue",
                Some(policy.worker_pool.max_queue.to_string()),
            ),
            (
                "x-fn-runtime-routing",
                match target.runtime {
                    RuntimeKind::Lua => Some("in_process".to_string()),
                    RuntimeKind::Rust | RuntimeKind::Go => Some("per_function".to_string()),
                    _ => sockets.map(|s| s.routing().to_string()),
                },
            ),
            (
                "x-fn-runtime-socket-index",
                outcome.socket_index.map(|i| (i + 1).to_string()),
            ),
        ];
        for (name, value) in pairs {
            if let Some(v) = value.and_then(|v| HeaderValue::from_str(&v).ok()) {
                headers.insert(HeaderName::from_static(name), v);
            }
        }
    }
    if shared.events.has_live_receivers() {
        shared.events.emit(EngineEvent::Request(RequestRecord {
            id: request_id,
            ts: crate::clock::epoch_millis(),
            method: parts.method.to_string(),
            path: parts.uri.path().to_string(),
            status,
            latency_us: latency.as_micros() as u64,
            runtime: Some(target.runtime),
            function: Some(target.fn_name.clone()),
            socket_index: outcome.socket_index.map(|i| i + 1),
            queued: outcome.queued,
            cold: !was_warm,
            headers: resp
                .headers()
                .iter()
                .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
                .collect(),
        }));
    }
    resp
}

/// Body limit, admission, event, exchange and reply validation.
#[allow(clippy::too_many_arguments)]
async fn call(
    shared: &Arc<Shared>,
    route: &Route,
    slot: &FunctionSlot,
    params: &[(String, String)],
    parts: &Parts,
    body: Incoming,
    remote: SocketAddr,
    request_id: &str,
) -> Outcome {
    let fail = |f: Failure| Outcome {
        result: Err(f),
        socket_index: None,
        queued: false,
    };
    let target = &route.target;
    let policy = &target.policy;
    let max_body = policy.max_body_bytes;
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max_body) {
        return fail(Failure::PayloadTooLarge);
    }
    let body = match Limited::new(body, max_body as usize).collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => return fail(Failure::PayloadTooLarge),
        Err(_) => return fail(Failure::BadRequest("invalid request body")),
    };

    // `::ffff:127.0.0.1` on a dual-stack listener is 127.0.0.1.
    let client_ip = remote.ip().to_canonical().to_string();
    let input = CallInput {
        method: &parts.method,
        path: parts.uri.path(),
        query: parts.uri.query(),
        headers: &parts.headers,
        body: &body,
        client_ip: &client_ip,
        params,
        user: None,
    };
    run(shared, target, slot, &input, request_id).await
}

/// A call to a function, however it arrived (HTTP request or `/_fn/invoke`).
pub(crate) struct CallInput<'a> {
    pub method: &'a Method,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub headers: &'a hyper::HeaderMap,
    pub body: &'a [u8],
    pub client_ip: &'a str,
    pub params: &'a [(String, String)],
    /// `context.user` (from `/_fn/invoke`).
    pub user: Option<&'a serde_json::Value>,
}

/// Admission, event, exchange and reply validation.
pub(crate) async fn run(
    shared: &Arc<Shared>,
    target: &crate::routing::Target,
    slot: &FunctionSlot,
    input: &CallInput<'_>,
    request_id: &str,
) -> Outcome {
    let policy = &target.policy;
    match shared.deps.readiness(target) {
        crate::deps::Readiness::Ready => {}
        crate::deps::Readiness::Preparing => {
            return Outcome {
                result: Err(Failure::DepsPreparing),
                socket_index: None,
                queued: false,
            };
        }
        crate::deps::Readiness::Failed(output) => {
            let output = policy.include_debug_headers.then_some(output);
            return Outcome {
                result: Err(Failure::DepsFailed { output }),
                socket_index: None,
                queued: false,
            };
        }
    }
    let permit = match slot.pool.acquire().await {
        Ok(p) => p,
        Err(refusal) => {
            let failure = match refusal {
                crate::pool::Refusal::Overflow { status } => Failure::Overflow { status },
                crate::pool::Refusal::QueueTimeout { status } => Failure::QueueTimeout { status },
            };
            return Outcome {
                result: Err(failure),
                socket_index: None,
                queued: false,
            };
        }
    };
    let queued = permit.queued;
    let payload = event::request_payload(&event::EventParts {
        request_id,
        ts: crate::clock::epoch_millis(),
        method: input.method.as_str(),
        path: input.path,
        query: input.query,
        headers: input.headers,
        body: (!input.body.is_empty()).then_some(input.body),
        client_ip: input.client_ip,
        params: input.params,
        target,
        debug: policy.include_debug_headers,
        worker_pid: shared.pid,
        user: input.user,
    });
    let idempotent = matches!(
        *input.method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE
    );
    let timeout = Duration::from_millis(policy.timeout_ms);
    let exchanged = match target.runtime {
        RuntimeKind::Lua => match &shared.lua {
            Some(lua) => lua.call(payload, timeout).await.map(|r| (r, 0)).map_err(|e| {
                let failure = match e {
                    LuaError::Timeout => Failure::Timeout,
                    LuaError::Worker(msg) => Failure::RuntimeError(msg),
                };
                (failure, None)
            }),
            None => Err((Failure::RuntimeUnavailable, None)),
        },
        RuntimeKind::Rust | RuntimeKind::Go => match shared.compiled.get(&target.runtime) {
            Some(compiled) => compiled
                .call(&target.entry, &payload, timeout)
                .await
                .map(|r| (r, 0))
                .map_err(|e| {
                    let failure = match e {
                        CompiledError::Build { runtime, output } => Failure::BuildFailed {
                            runtime: runtime.name(),
                            output,
                        },
                        CompiledError::Timeout => Failure::Timeout,
                        CompiledError::Unavailable(_) => Failure::RuntimeUnavailable,
                        CompiledError::Exchange(msg) => Failure::RuntimeError(msg),
                    };
                    (failure, None)
                }),
            None => Err((Failure::RuntimeUnavailable, None)),
        },
        _ => match shared.runtimes.get(&target.runtime) {
            Some(sockets) => exchange(shared, sockets, &payload, timeout, idempotent).await,
            None => Err((Failure::RuntimeUnavailable, None)),
        },
    };
    // Free the slot before the reply is parsed and mapped.
    drop(permit);
    match exchanged {
        Ok((bytes, index)) => Outcome {
            result: reply::parse(&bytes),
            socket_index: Some(index),
            queued,
        },
        Err((failure, index)) => Outcome {
            result: Err(failure),
            socket_index: index,
            queued,
        },
    }
}

/// One exchange on a socket picked by round robin. A connect error marks that socket down and
/// retries once on another; so does a connection dropped before any reply for an idempotent
/// method (a daemon killed mid-call). Everything within `timeout`.
async fn exchange(
    shared: &Shared,
    sockets: &RuntimeSockets,
    payload: &[u8],
    timeout: Duration,
    idempotent: bool,
) -> Result<(Vec<u8>, usize), (Failure, Option<usize>)> {
    if sockets.balance.all_down() {
        return Err((Failure::RuntimeDown, None));
    }
    let max = crate::config::defaults::MAX_REPLY_FRAME;
    let attempt = async {
        let first = sockets.balance.pick(None).ok_or((Failure::RuntimeDown, None))?;
        let err = match client::exchange(&sockets.sockets[first].path, payload, max).await {
            Ok(r) => return Ok((r, first)),
            Err(e) => e,
        };
        let retry = match &err {
            ExchangeError::Connect(e) => {
                mark_down(shared, sockets, first, e);
                true
            }
            ExchangeError::Io(e) => idempotent && dropped_before_reply(e),
            ExchangeError::Frame(_) => false,
        };
        if !retry {
            return Err((exchange_failure(err), Some(first)));
        }
        let Some(second) = sockets.balance.pick(Some(first)) else {
            return Err((Failure::RuntimeUnavailable, Some(first)));
        };
        match client::exchange(&sockets.sockets[second].path, payload, max).await {
            Ok(r) => Ok((r, second)),
            Err(ExchangeError::Connect(e)) => {
                mark_down(shared, sockets, second, &e);
                Err((Failure::RuntimeUnavailable, Some(second)))
            }
            Err(e) => Err((exchange_failure(e), Some(second))),
        }
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(r) => r,
        Err(_) => Err((Failure::Timeout, None)),
    }
}

fn dropped_before_reply(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
    )
}

fn exchange_failure(e: ExchangeError) -> Failure {
    match e {
        ExchangeError::Connect(_) => Failure::RuntimeUnavailable,
        ExchangeError::Frame(_) => Failure::InvalidReply,
        ExchangeError::Io(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            Failure::RuntimeError("connection closed before a reply".into())
        }
        ExchangeError::Io(e) => Failure::RuntimeError(e.kind().to_string()),
    }
}

fn mark_down(shared: &Shared, sockets: &RuntimeSockets, i: usize, e: &std::io::Error) {
    let reason = crate::runtime::probe_reason(e);
    if sockets.observe(i, Err(&reason), crate::clock::epoch_secs()) {
        shared.events.emit(EngineEvent::SocketHealth {
            runtime: sockets.kind,
            index: i + 1,
            up: false,
            reason,
        });
    }
}

/// `X-Fn-Stdout`/`X-Fn-Stderr`: the first 4096 bytes, control characters shown as spaces.
fn debug_output_value(text: &str) -> Option<HeaderValue> {
    let limit = crate::config::defaults::DEBUG_OUTPUT_BYTES;
    let mut end = text.len().min(limit);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let cleaned: String = text[..end]
        .trim_end()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    HeaderValue::from_str(&cleaned)
        .ok()
        .or_else(|| HeaderValue::from_bytes(cleaned.as_bytes()).ok())
}

fn record_output(
    shared: &Shared,
    runtime: crate::runtime::RuntimeKind,
    (function, version): (&str, Option<&str>),
    stdout: Option<&str>,
    stderr: Option<&str>,
) {
    let ts = crate::clock::epoch_millis();
    for (stream, text) in [("stdout", stdout), ("stderr", stderr)] {
        for line in text.into_iter().flat_map(str::lines) {
            let line = LogLine {
                ts,
                runtime,
                function: Some(function.to_string()),
                stream,
                line: line.to_string(),
            };
            shared.logs.push_output(line, version);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_stripped_from_hosts() {
        assert_eq!(strip_port("example.com:8080"), "example.com");
        assert_eq!(strip_port("example.com"), "example.com");
        assert_eq!(strip_port("[::1]:8080"), "::1");
        assert_eq!(strip_port("127.0.0.1"), "127.0.0.1");
    }

    #[test]
    fn debug_output_is_cut_and_cleaned() {
        assert_eq!(debug_output_value("a\nb\n").unwrap(), "a b");
        let long = "é".repeat(3000);
        let v = debug_output_value(&long).unwrap();
        assert!(v.len() <= 4096);
    }
}
