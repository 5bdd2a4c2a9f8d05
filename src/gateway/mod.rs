//! The HTTP gateway: one hyper service that matches a request against the route map, applies
//! the function's policy (body limit, admission), sends the event to a daemon socket chosen by
//! round robin (with one failover on connect errors), and maps the reply to a response with
//! the contract's headers. Infallible: every failure becomes a response via [`crate::rescue`].

pub mod router;

use crate::assets::AssetOutcome;
use crate::engine::{FunctionSlot, Served, Shared};
use crate::inspect::{Kind, Note, Reason};
use crate::invoke::{CallInput, Outcome};
use crate::rescue::Failure;
use crate::routing::Route;
use crate::runtime::RuntimeKind;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue, CONTENT_LENGTH, LOCATION};
use hyper::http::request::Parts;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use router::{Decision, RouteDecision};
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::time::Instant;

pub use crate::rescue::Body;

pub use crate::rescue::ResponseBody;

/// Open client connections, and the most the engine keeps at once (file descriptors are
/// shared with daemon connections, installs and assets: a flood of idle clients must not
/// starve them).
struct Connections {
    open: std::sync::atomic::AtomicUsize,
    max: usize,
    idle: tokio::sync::Notify,
    /// Open connections per client address: once half the cap is in use, one client may not
    /// hold more than a quarter of it (a flood from one address cannot lock others out).
    per_client: std::sync::Mutex<HashMap<std::net::IpAddr, usize>>,
}

impl Connections {
    /// Admit a new connection from `ip`, or refuse it (the cap, or this client's share).
    fn admit(&self, ip: std::net::IpAddr) -> bool {
        use std::sync::atomic::Ordering;
        let open = self.open.load(Ordering::Relaxed);
        if open >= self.max {
            return false;
        }
        let mut per = self.per_client.lock().unwrap_or_else(|p| p.into_inner());
        let mine = per.entry(ip).or_insert(0);
        if open >= self.max / 2 && *mine >= self.max / 4 {
            return false;
        }
        *mine += 1;
        self.open.fetch_add(1, Ordering::Relaxed);
        true
    }

    fn release(&self, ip: std::net::IpAddr) {
        use std::sync::atomic::Ordering;
        {
            let mut per = self.per_client.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(n) = per.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    per.remove(&ip);
                }
            }
        }
        if self.open.fetch_sub(1, Ordering::Relaxed) == 1 {
            self.idle.notify_waiters();
        }
    }
}

/// Request header lines a client may send (hyper answers 431 past it).
pub const MAX_REQUEST_HEADERS: usize = 200;

/// The most a request's future may take (bytes; checked in [`serve`] by every debug-build
/// test): 2,840 today, and a wrapper that keeps a copy of what it wraps doubles it.
const MAX_REQUEST_FUTURE: usize = 4 * 1024;

/// Accept connections until shutdown; each connection is served on its own task. A client
/// must send its request head within the client timeout (idle keep-alive connections
/// included); past the connection cap new connections are closed at once. On shutdown,
/// accepting stops, every connection finishes its current request and closes, and this
/// returns when all are closed (or after the drain timeout, `FN_DRAIN_TIMEOUT_MS`).
pub(crate) async fn serve(shared: Arc<Shared>, listener: TcpListener, mut shutdown: watch::Receiver<bool>) {
    use std::sync::atomic::Ordering;
    let conns = Arc::new(Connections {
        open: std::sync::atomic::AtomicUsize::new(0),
        max: connection_cap(shared.settings.max_connections),
        idle: tokio::sync::Notify::new(),
        per_client: std::sync::Mutex::new(HashMap::new()),
    });
    let drain = shared.settings.drain_timeout;
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(shared.settings.client_timeout)
        // nginx in front of the original takes as many header lines as fit 32 KiB; hyper's
        // default is 100 (on the stack). 200 moves the parser's table to the heap: measured
        // in docs/compat.md ("Request edges"). More than 200 → 431.
        .max_headers(MAX_REQUEST_HEADERS)
        .keep_alive(true);
    let http = Arc::new(http);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => break,
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
        let client = remote.ip().to_canonical();
        if !conns.admit(client) {
            drop(stream);
            continue;
        }
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        let http = http.clone();
        let conns = conns.clone();
        let mut stop = shutdown.clone();
        tokio::spawn(async move {
            // Admission refusals in a row on this connection (see `pace_refusal`).
            let streak = Arc::new(std::sync::atomic::AtomicU32::new(0));
            let service = hyper::service::service_fn(move |req| {
                let shared = shared.clone();
                let streak = streak.clone();
                let fut = async move {
                    let resp = inspected(&shared, req, remote).await;
                    pace_refusal(&resp, &streak).await;
                    Ok::<_, Infallible>(resp)
                };
                // Hyper moves this future at least once per request: it must stay small (a
                // by-value wrapper around the whole handler once made it 116 KB and memmove a
                // quarter of the gateway's CPU).
                debug_assert!(
                    std::mem::size_of_val(&fut) <= MAX_REQUEST_FUTURE,
                    "the per-request future grew to {} bytes: box the large branch",
                    std::mem::size_of_val(&fut)
                );
                fut
            });
            let conn = http.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = stop.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(drain, conn).await;
                }
            }
            conns.release(client);
        });
    }
    drop(listener);
    let drained = async {
        loop {
            let idle = conns.idle.notified();
            if conns.open.load(Ordering::Relaxed) == 0 {
                return;
            }
            idle.await;
        }
    };
    let _ = tokio::time::timeout(drain, drained).await;
}

/// Marks a response as an admission refusal (pool full, body too large, deps installing).
#[derive(Clone, Copy)]
struct AdmissionRefused;

/// A client that comes straight back after a refusal, again and again, is paced (see
/// [`refusal_pace`]). The status and body are unchanged.
async fn pace_refusal<B>(resp: &Response<B>, streak: &std::sync::atomic::AtomicU32) {
    use std::sync::atomic::Ordering;
    // One connection's requests are answered one after another: load + store cannot race.
    let refused = resp.extensions().get::<AdmissionRefused>().is_some();
    let (next, wait) = refusal_pace(streak.load(Ordering::Relaxed), refused);
    streak.store(next, Ordering::Relaxed);
    if let Some(wait) = wait {
        tokio::time::sleep(wait).await;
    }
}

/// A connection's refusal debt stops growing at 7, where its wait reaches 32 ms: after any run
/// of refusals, a client served again is back to a free first refusal within this many
/// admitted calls.
const MAX_REFUSAL_DEBT: u32 = 7;

/// Pacing of admission refusals on one connection. `streak` is the connection's refusal
/// debt: each refusal adds one, each admitted call takes one off. Each answer moves it (→ the
/// next streak, and how long this answer waits). A refusal with no debt is answered at once;
/// then the wait is 1 ms, doubling per refusal up to 32 ms ([`MAX_REFUSAL_DEBT`]). The debt is paid
/// off one admitted call at a time rather than cleared by one: a load tool hammering a full
/// pool wins a slot now and then, and clearing on each win (with an 8 ms cap) let its
/// connections take ~12,300 refusals a second at c=64 on a 20-slot python function (each
/// ~17 µs of the engine's CPU and some of wrk's, taken from the daemon that serves the 200s);
/// now ~6,000, and 200s/s +16 % (docs/benchmarks.md, session 7).
fn refusal_pace(streak: u32, refused: bool) -> (u32, Option<Duration>) {
    if !refused {
        return (streak.saturating_sub(1), None);
    }
    let n = streak.saturating_add(1).min(MAX_REFUSAL_DEBT);
    (n, (n >= 2).then(|| Duration::from_millis(1 << (n - 2))))
}

/// The connection cap: the file-descriptor limit (raised to the hard limit first: the default
/// soft 1024 is a shell's, not a server's) less a reserve for daemons, installs and assets.
fn connection_cap(configured: Option<usize>) -> usize {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let limit = match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => hard,
            Err(_) => soft,
        },
        Ok((soft, _)) => soft,
        Err(_) => 1024,
    };
    let fits = (limit.saturating_sub(256) as usize).max(16);
    configured.map_or(fits, |c| c.min(fits))
}

/// One request, recorded: the access log ([`crate::logs::served`]) and the request log
/// ([`crate::inspect`]). The [`Note`] is filled while the request is served; headers and
/// bodies are captured only while capture is on (see `inspect`).
async fn inspected(shared: &Arc<Shared>, req: Request<Incoming>, remote: SocketAddr) -> Response<ResponseBody> {
    let arrived = Instant::now();
    let dashboard = shared.events.has_live_receivers();
    let mut note = Note {
        arrived: Some(arrived),
        capture: shared.inspector.capturing(dashboard, req.headers(), arrived),
        ..Note::default()
    };
    let method = req.method().clone();
    let uri = crate::logs::detached(req.uri());
    if note.capture {
        note.replay = req
            .headers()
            .get(crate::inspect::REPLAY_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
    }
    // Numbered on arrival, so that a line logged while it is served names it (`g-<seq>`).
    let seq = shared.inspector.next_seq();
    // The wrappers (log scope, access log, panic guard) are plain futures, not `async fn`s:
    // each of those would keep the future it wraps beside its argument, and hyper moves this
    // one on every request (see MAX_REQUEST_FUTURE).
    let served = crate::logs::served(&shared.logs, (req, uri.clone(), arrived), remote, |req| {
        let (parts, body) = req.into_parts();
        guard_panics(handle_noted(shared, parts, body, remote, &mut note))
    });
    let (mut resp, logged) = crate::inspect::logs::scoped(seq, served).await;
    if resp.status() == StatusCode::INTERNAL_SERVER_ERROR && note.reason.is_none() && note.kind != Kind::Function {
        // A panic, or an admin endpoint's own failure.
        note.reason = Some(Reason::Internal);
    }
    if !logged.lines.is_empty() {
        // The record is found by the id its lines carry (a refusal on the cheap path kept
        // none of its own).
        if let (None, Some(key)) = (&note.request_id, logged.key) {
            note.request_id = Some(key.to_string());
        }
        note.logs = logged.lines;
    }
    let ins = &shared.inspector;
    if note.debug || ins.settings.debug_headers {
        let reason = crate::inspect::Entry::reason_of(&note);
        resp.headers_mut()
            .insert("x-fn-reason", HeaderValue::from_static(reason.code()));
    }
    // Boxed: only a captured request awaits its response body here (see MAX_REQUEST_FUTURE).
    let captured = if note.capture {
        let (r, captured) = Box::pin(capture(ins.settings.body_bytes, &mut note, resp)).await;
        resp = r;
        Some(captured)
    } else {
        None
    };
    finish(shared, (seq, method, uri, arrived), note, captured, resp)
}

/// The captured headers and bodies of a request, the response rebuilt around its body.
async fn capture(
    cap: usize,
    note: &mut Note,
    resp: Response<ResponseBody>,
) -> (Response<ResponseBody>, Box<crate::inspect::Captured>) {
    // Kept when the request was done with them (see `handle_noted`).
    let request_headers = note.request_headers.take().unwrap_or_default();
    let (request_body, request_cut) = note
        .request_body
        .take()
        .map(|b| crate::inspect::cap_body(&b, cap))
        .unwrap_or_default();
    let (head, body) = resp.into_parts();
    let (body, response_body) = match body {
        http_body_util::Either::Left(full) => {
            let Ok(collected) = full.collect().await;
            let bytes = collected.to_bytes();
            (http_body_util::Either::Left(Full::new(bytes.clone())), bytes)
        }
        // A stream (`/_fn/events`): nothing to keep.
        stream => (stream, bytes::Bytes::new()),
    };
    let (response_body, response_cut) = crate::inspect::cap_body(&response_body, cap);
    let response_headers = crate::inspect::HeaderText::of(&head.headers);
    let captured = Box::new(crate::inspect::Captured {
        request_headers,
        request_body,
        request_cut,
        response_headers,
        response_body,
        response_cut,
    });
    (Response::from_parts(head, body), captured)
}

/// Record a served request in the ring: its reason, the captured headers and bodies (capture
/// on), its stages and latency.
fn finish(
    shared: &Shared,
    (seq, method, uri, arrived): (u64, hyper::Method, hyper::Uri, Instant),
    mut note: Note,
    captured: Option<Box<crate::inspect::Captured>>,
    resp: Response<ResponseBody>,
) -> Response<ResponseBody> {
    let ins = &shared.inspector;
    let status = resp.status().as_u16();
    // One clock reading ends both the `respond` stage and the total, so the stages add up.
    let now = Instant::now();
    if let Some(done) = note.reply_done {
        note.stages.respond_us = now.saturating_duration_since(done).as_micros() as u64;
    }
    let entry = crate::inspect::Entry {
        seq,
        ts: crate::clock::epoch_millis(),
        method,
        uri,
        status,
        latency_us: now.saturating_duration_since(arrived).as_micros() as u64,
        note,
        captured,
    };
    ins.push(entry);
    resp
}

/// A panic anywhere in serving a request turned into a 500 that says so: the client gets an
/// answer and the connection keeps its framing, instead of a reset.
///
/// Not an `async fn` (see `crate::wrap`).
fn guard_panics(
    fut: impl std::future::Future<Output = Response<ResponseBody>>,
) -> impl std::future::Future<Output = Response<ResponseBody>> {
    use futures_util::FutureExt;
    crate::wrap::then_in_place(
        std::panic::AssertUnwindSafe(fut).catch_unwind(),
        |caught| match caught {
            Ok(resp) => resp,
            Err(panic) => {
                let why = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                tracing::error!("request handler panicked: {why}");
                crate::rescue::json_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &serde_json::json!({
                        "error": "internal error",
                        "reason": "the gateway failed while serving this request (a bug: see the engine log)"
                    }),
                )
                .map(http_body_util::Either::Left)
            }
        },
    )
}

pub async fn handle(shared: &Arc<Shared>, req: Request<Incoming>, remote: SocketAddr) -> Response<ResponseBody> {
    let (parts, body) = req.into_parts();
    handle_noted(shared, parts, body, remote, &mut Note::default()).await
}

/// [`handle`], saying in `note` what answered and why. Takes the request in parts: the
/// headers stay here, by reference below, for the capture.
async fn handle_noted(
    shared: &Arc<Shared>,
    mut parts: Parts,
    body: Incoming,
    remote: SocketAddr,
    note: &mut Note,
) -> Response<ResponseBody> {
    if parts.uri.path() == "/_fn/events" {
        note.kind = Kind::Admin;
        if note.capture {
            note.request_headers = Some(crate::inspect::HeaderText::of(&parts.headers));
        }
        return crate::admin::events(shared, &parts, remote);
    }
    let resp = handle_parts(shared, &mut parts, body, remote, note).await;
    if note.capture && note.request_headers.is_none() {
        // Kept once the request is done with them (a compact copy: see `HeaderText`).
        note.request_headers = Some(crate::inspect::HeaderText::of(&parts.headers));
    }
    resp.map(http_body_util::Either::Left)
}

/// A refusal, noted.
fn refuse(note: &mut Note, failure: Failure) -> Response<Body> {
    note.failed(&failure);
    failure.into_response()
}

async fn handle_parts(
    shared: &Arc<Shared>,
    parts: &mut hyper::http::request::Parts,
    body: Incoming,
    remote: SocketAddr,
    note: &mut Note,
) -> Response<Body> {
    let served = shared.served();
    // `/` may be answered by a home function or redirect (env, else the root config).
    let home = served.home.as_ref().filter(|_| parts.uri.path() == "/");
    // A home function answers `/` before a static `index.html`, as in the original.
    let assets_first = served.assets.as_ref().is_some_and(|a| !a.run_worker_first()) && home.is_none();
    let plan = match router::decide(&served.discovery.routes, home, assets_first, parts) {
        Decision::Admin => {
            note.kind = Kind::Admin;
            if note.capture {
                note.request_headers = Some(crate::inspect::HeaderText::of(&parts.headers));
            }
            // The admin API takes the request's parts (the caller gets an empty shell back).
            let parts = std::mem::replace(parts, Request::new(()).into_parts().0);
            // Boxed, as every path off the invoke path: an `async fn`'s state is the size of
            // its largest branch, and the admin API's (~100 KB) made every request's future
            // that big — moved by hyper on each request, it was a quarter of the gateway's CPU.
            return Box::pin(crate::admin::handle(shared, parts, body, remote)).await;
        }
        Decision::Console => {
            note.kind = Kind::Admin;
            return Box::pin(crate::admin::console(shared, parts, remote)).await;
        }
        Decision::Redirect(to) => {
            note.reason = Some(Reason::Redirect);
            return redirect(to);
        }
        Decision::Refuse(failure) => return refuse(note, failure),
        Decision::Serve(plan) => plan,
    };
    let path = parts.uri.path();
    // §2.6 step 1: a static file wins unless functions run first.
    if plan.assets_first {
        if let Some(assets) = served.assets.as_ref() {
            match Box::pin(assets.serve(&parts.method, path, &parts.headers, false)).await {
                AssetOutcome::Served(resp) => {
                    note.kind = Kind::Asset;
                    return resp;
                }
                AssetOutcome::Refused(failure) => return refuse(note, failure),
                AssetOutcome::NoMatch => {}
            }
        }
    }
    match plan.route {
        RouteDecision::Invoke { route, params } => {
            note.stages.route_us = note.arrived.map_or(0, crate::invoke::micros_since);
            // Boxed: the pipeline's future is the largest branch (see MAX_REQUEST_FUTURE).
            Box::pin(invoke(shared, &served, route, &params, parts, body, remote, note)).await
        }
        RouteDecision::Refuse(failure) => {
            note.why = crate::inspect::refusal_why(&failure, &served.discovery.routes, parts);
            refuse(note, failure)
        }
        // §2.6 step 6: assets again, with the SPA fallback.
        RouteDecision::Assets { allow } => {
            let resp = match &served.assets {
                Some(assets) => match Box::pin(assets.serve(&parts.method, path, &parts.headers, true)).await {
                    AssetOutcome::Served(resp) => {
                        note.kind = Kind::Asset;
                        return resp;
                    }
                    AssetOutcome::Refused(failure) => return refuse(note, failure),
                    AssetOutcome::NoMatch => crate::landing::not_found(&served, &parts.method, path),
                },
                None => crate::landing::not_found(&served, &parts.method, path),
            };
            note.reason = Some(match (resp.status(), allow) {
                (StatusCode::OK, _) => Reason::Landing,
                (_, Some(allow)) => {
                    note.why = Some(format!(
                        "a route matches {path} but allows {allow}, not {}: a method mismatch answers 404",
                        parts.method
                    ));
                    Reason::MethodMismatch
                }
                // Is it a method mismatch? Asked here only for `X-Fn-Reason` (debug headers):
                // it walks every method, and a 404 is the cheapest answer. Else it is asked
                // when the log is read, or by the live stream's task for its batch.
                (_, None) if shared.inspector.settings.debug_headers => {
                    let host = crate::host::request_host(parts);
                    match crate::inspect::method_mismatch(&served.discovery.routes, parts.method.as_str(), path, host) {
                        Some(why) => {
                            note.why = Some(why);
                            Reason::MethodMismatch
                        }
                        None => Reason::NoRoute,
                    }
                }
                (_, None) => Reason::NoRoute,
            });
            resp
        }
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

#[allow(clippy::too_many_arguments)]
async fn invoke(
    shared: &Arc<Shared>,
    served: &Served,
    route: &Route,
    params: &[(String, String)],
    parts: &Parts,
    body: Incoming,
    remote: SocketAddr,
    note: &mut Note,
) -> Response<Body> {
    let started = Instant::now();
    let target = &route.target;
    let policy = &target.policy;
    note.kind = Kind::Function;
    note.target = Some(target.clone());
    let Some(slot) = served.slot(target) else {
        return refuse(note, Failure::Internal);
    };
    let was_warm = slot.is_warm();
    note.cold = !was_warm;
    // Debug headers: the function's own, or the whole project's (`FN_DEBUG_HEADERS=1`).
    let debug = policy.include_debug_headers || shared.inspector.settings.debug_headers;
    note.debug = debug;
    let outcome = call(shared, route, slot, params, parts, body, remote, note).await;
    note.stages = crate::events::Stages {
        route_us: note.stages.route_us,
        ..outcome.timings.stages()
    };
    note.reply_done = Some(Instant::now());
    if let Err(failure) = &outcome.result {
        if failure.is_admission() {
            // The refusal path stays cheap under overload: the numbers of this moment, worded
            // when the log is read.
            note.reason = Some(Reason::of(failure));
            let s = slot.pool.stats();
            note.admission = Some(crate::inspect::Admission {
                active: s.active,
                queued: s.queued,
                declared: parts
                    .headers
                    .get(CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok()),
                waited_us: outcome.timings.admission_us + outcome.timings.queue_us + outcome.timings.deps_us,
            });
        } else {
            note.failed(failure);
            if let Some(why) = crate::inspect::call_failure_why(shared, target, failure, &outcome.timings) {
                note.why = Some(why);
            }
        }
    }
    // Refused before a slot was taken (body too large, deps, pool full): the cheapest path.
    // No request id, no event, no debug headers: nothing ran.
    let cheap = matches!(&outcome.result, Err(f) if f.is_admission()) && !debug && !shared.events.has_live_receivers();
    if cheap {
        if let Err(failure) = outcome.result {
            let mut resp = failure.into_response();
            resp.extensions_mut().insert(AdmissionRefused);
            return resp;
        }
    }
    let refused = matches!(&outcome.result, Err(f) if f.is_admission());
    // The id the handler saw (its event's `id`), else a new one for a refusal.
    let request_id = note
        .request_id
        .take()
        .or_else(|| crate::inspect::logs::current_key().map(|k| k.to_string()))
        .unwrap_or_else(|| shared.next_request_id());

    // Pool refusals are the gateway's own answer, not a runtime error: no warm-up headers.
    let runtime_error = match &outcome.result {
        Ok(reply) => reply.status >= 500,
        Err(failure) => failure.is_runtime(),
    };
    let mut resp = match outcome.result {
        Ok(mut reply) => {
            if reply.status >= 500 {
                note.reason = Some(Reason::HandlerError);
                note.why = Some(crate::inspect::handler_error_why(
                    reply.status,
                    &reply.body,
                    reply.stderr.as_deref(),
                    &shared.settings.functions_root,
                ));
            }
            let mut resp = Response::new(Full::new(reply.body));
            *resp.status_mut() = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::OK);
            let headers = resp.headers_mut();
            for (name, value) in reply.headers {
                headers.append(name, value);
            }
            // nginx's `default_type`: the original labels a reply that names no type
            // `text/plain` (a bodiless 204 or 304 gets none).
            if !headers.contains_key(hyper::header::CONTENT_TYPE) && !matches!(reply.status, 204 | 304) {
                headers.insert(hyper::header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            }
            if reply.stdout.is_some() || reply.stderr.is_some() {
                shared
                    .logs
                    .push_call_output(target, reply.stdout.as_deref(), reply.stderr.as_deref());
            }
            if debug {
                for (name, text) in [("x-fn-stdout", &reply.stdout), ("x-fn-stderr", &reply.stderr)] {
                    if let Some(v) = text.as_deref().and_then(debug_output_value) {
                        headers.insert(HeaderName::from_static(name), v);
                    }
                }
            }
            // The call's own output, for the request's detail (moved: no copy).
            note.stdout = reply
                .stdout
                .take()
                .filter(|s| !s.is_empty())
                .map(crate::inspect::cap_output);
            note.stderr = reply
                .stderr
                .take()
                .filter(|s| !s.is_empty())
                .map(crate::inspect::cap_output);
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
    let warmed = status < 500 && slot.warm_up();
    if warmed {
        headers.insert("x-fastfn-warmed", HeaderValue::from_static("true"));
    } else if status >= 500 && !was_warm && runtime_error {
        headers.insert("x-fastfn-warming", HeaderValue::from_static("true"));
        headers.insert("retry-after", HeaderValue::from_static("1"));
    }
    if outcome.queued {
        headers.insert("x-fastfn-queued", HeaderValue::from_static("true"));
    }
    if let Some(v) = outcome.fault.as_deref().and_then(|f| HeaderValue::from_str(f).ok()) {
        headers.insert("x-fastfn-fault", v);
    }
    let latency = started.elapsed();
    if warmed {
        // The call that warmed the slot (once per cold start, never per ordinary call): the
        // lab's cold-start history.
        shared.lab.cold_start(
            &slot.key,
            crate::lab::ColdStart {
                ts: crate::clock::epoch_millis(),
                latency_us: latency.as_micros() as u64,
                deps_us: outcome.timings.deps_us,
                // The lab's cold-start history keeps the whole call (handler included).
                runtime_us: outcome.timings.build_us
                    + outcome.timings.cold_us
                    + outcome.timings.runtime_us
                    + outcome.timings.handler_us,
                status,
            },
        );
    }
    if debug {
        let sockets = shared.runtimes.get(&target.runtime);
        let pairs: [(&'static str, Option<String>); 10] = [
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
            ("server-timing", Some(outcome.timings.server_timing())),
        ];
        for (name, value) in pairs {
            if let Some(v) = value.and_then(|v| HeaderValue::from_str(&v).ok()) {
                headers.insert(HeaderName::from_static(name), v);
            }
        }
    }
    if refused {
        resp.extensions_mut().insert(AdmissionRefused);
    }
    note.request_id = Some(request_id);
    note.socket_index = outcome.socket_index.map(|i| i + 1);
    note.queued = outcome.queued;
    note.fault = outcome.fault;
    resp
}

/// An HTTP request's call: every refusal that needs no body comes first (declared size,
/// dependencies, admission), so a refused request costs no body read; then the body is read
/// within the client timeout and the admitted call runs.
#[allow(clippy::too_many_arguments)]
async fn call(
    shared: &Arc<Shared>,
    route: &Route,
    slot: &FunctionSlot,
    params: &[(String, String)],
    parts: &Parts,
    body: Incoming,
    remote: SocketAddr,
    note: &mut Note,
) -> Outcome {
    let target = &route.target;
    let policy = &target.policy;
    // The call's id, known before anything can log: the engine's log lines name it from here
    // on, and a refusal answers with it.
    let key = shared.next_request_key();
    crate::inspect::logs::set_key(key);
    let max_body = policy.max_body_bytes;
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max_body) {
        return Outcome::refused(Failure::PayloadTooLarge);
    }
    let (deps_us, deps) = crate::invoke::ready(shared, target).await;
    if let Err(failure) = deps {
        return crate::invoke::refused_by_deps(shared, target, failure, deps_us);
    }
    let waited = Instant::now();
    let permit = match crate::invoke::admit(slot).await {
        Ok(p) => p,
        Err(failure) => {
            // A queue timeout waited in the queue: keep how long (the request log's why and
            // stages).
            let mut refused = Outcome::refused(failure).after_deps(deps_us);
            let waited_us = crate::invoke::micros_since(waited);
            match &refused.result {
                Err(Failure::QueueTimeout { .. }) => refused.timings.queue_us = waited_us,
                _ => refused.timings.admission_us = waited_us,
            }
            return refused;
        }
    };
    let (admission_us, queue_us) = crate::invoke::admission_split(waited, &permit);
    let reading = Instant::now();
    let limit = shared.settings.client_timeout;
    let body = match tokio::time::timeout(limit, Limited::new(body, max_body as usize).collect()).await {
        Ok(Ok(c)) => c.to_bytes(),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => return Outcome::refused(Failure::PayloadTooLarge),
        Ok(Err(_)) => return Outcome::refused(Failure::BadRequest("invalid request body")),
        Err(_) => return Outcome::refused(Failure::BadRequest("request body timeout")),
    };
    let body_us = crate::invoke::micros_since(reading);
    if note.capture {
        // Refcounted: the capture shares the bytes the call sends.
        note.request_body = Some(body.clone());
    }

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
        trigger: None,
    };
    let request_id = key.to_string();
    let mut outcome = crate::invoke::run_admitted(shared, target, slot, &input, &request_id, permit).await;
    note.request_id = Some(request_id);
    outcome.timings.admission_us = admission_us;
    outcome.timings.queue_us = queue_us;
    outcome.timings.body_us = body_us;
    outcome.after_deps(deps_us)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The waits of `refusals` refusals in a row from a given debt, and the debt after them.
    fn waits(mut streak: u32, refusals: usize) -> (Vec<u64>, u32) {
        let mut out = Vec::new();
        for _ in 0..refusals {
            let (next, wait) = refusal_pace(streak, true);
            out.push(wait.map_or(0, |w| w.as_millis() as u64));
            streak = next;
        }
        (out, streak)
    }

    #[test]
    fn refusals_in_a_row_wait_doubling_up_to_the_cap() {
        let (w, debt) = waits(0, 10);
        assert_eq!(w, [0, 1, 2, 4, 8, 16, 32, 32, 32, 32]);
        assert_eq!(debt, MAX_REFUSAL_DEBT, "the debt stops where the wait does");
        let longest = Some(Duration::from_millis(32));
        assert_eq!(refusal_pace(MAX_REFUSAL_DEBT, true), (MAX_REFUSAL_DEBT, longest));
        assert_eq!(refusal_pace(u32::MAX, true), (MAX_REFUSAL_DEBT, longest));
        // After a long run, as many admitted calls as the debt make refusals free again.
        let mut d = waits(0, 1000).1;
        for _ in 0..MAX_REFUSAL_DEBT {
            d = refusal_pace(d, false).0;
        }
        assert_eq!(waits(d, 1).0, [0]);
    }

    #[test]
    fn an_admitted_call_pays_off_one_refusal() {
        let (_, debt) = waits(0, 6);
        let (debt, wait) = refusal_pace(debt, false);
        assert_eq!((debt, wait), (5, None), "one win does not clear the debt");
        // The next refusal still waits: a hammering client stays paced between its wins.
        assert_eq!(waits(debt, 1).0, [16]);
        // A client served normally is back to a free first refusal.
        let mut d = 6;
        for _ in 0..6 {
            d = refusal_pace(d, false).0;
        }
        assert_eq!(d, 0);
        assert_eq!(refusal_pace(0, false), (0, None));
        assert_eq!(waits(d, 1).0, [0]);
    }

    #[tokio::test]
    async fn a_panic_while_serving_is_a_500_with_a_reason() {
        let resp = guard_panics(async { panic!("index out of bounds") }).await;
        assert_eq!(resp.status(), 500);
        let body = http_body_util::BodyExt::collect(resp.into_body())
            .await
            .unwrap()
            .to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"], "internal error");
        assert!(v["reason"].as_str().unwrap().contains("gateway failed"));
        let fine = guard_panics(async { Response::new(http_body_util::Either::Left(Body::default())) }).await;
        assert_eq!(fine.status(), 200);
    }

    #[test]
    fn debug_output_is_cut_and_cleaned() {
        assert_eq!(debug_output_value("a\nb\n").unwrap(), "a b");
        let long = "é".repeat(3000);
        let v = debug_output_value(&long).unwrap();
        assert!(v.len() <= 4096);
    }
}
