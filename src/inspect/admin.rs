//! `/_fn/requests*`: the request log for tools, tests and the dashboard (behind the admin
//! guard, which `admin::handle` applies before dispatching here):
//!
//! - `GET /_fn/requests?limit=N[&admin=1][&reveal=1]`: records, newest first;
//! - `GET /_fn/requests/<id>[?reveal=1]`: one record with its captured headers and bodies;
//! - `GET /_fn/requests/<id>/curl`: a curl command line (text);
//! - `GET /_fn/requests/har[?id=a,b]`: HAR 1.2 of those requests (default: the whole log);
//! - `POST /_fn/requests/replay`: `{"id", "method"?, "path"?, "query"?, "headers"?, "body"?}`
//!   re-sends a captured request with edits through the engine's own listener and answers the
//!   captured and new records with their diff;
//! - `POST /_fn/requests/<id>/save-test`: `{"name"?, "expect"?, "keep_secrets"?}` writes a
//!   saved test (`inspect::saved`).
//!
//! Secrets are masked unless `reveal=1`.

use super::diff::{diff, Answer, Diff};
use super::{Entry, Inspector};
use crate::engine::Shared;
use crate::events::RequestRecord;
use crate::rescue::{json_response, Body, Failure};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::http::request::Parts;
use hyper::{Method, Response, StatusCode};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// Largest replay request body the endpoint takes.
const REPLAY_BODY_MAX: usize = 16 * 1024 * 1024;
/// How long a replayed request may take.
const REPLAY_TIMEOUT: Duration = Duration::from_secs(60);

/// Captured headers and body of one side of a request.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
#[ts(export)]
pub struct CapturedPart {
    pub headers: Vec<(String, String)>,
    /// The body as text (lossy for bytes that are not UTF-8), secrets masked.
    pub body: String,
    /// Longer than `FN_INSPECT_BODY_BYTES`: cut.
    pub cut: bool,
}

/// `GET /_fn/requests/<id>`.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
#[ts(export)]
pub struct RequestDetail {
    pub record: RequestRecord,
    #[ts(optional)]
    pub request: Option<CapturedPart>,
    #[ts(optional)]
    pub response: Option<CapturedPart>,
    /// `curl …` for this request (secrets masked unless revealed).
    pub curl: String,
}

/// `POST /_fn/requests/replay`.
#[derive(Debug, Clone, Default, Deserialize, ts_rs::TS)]
#[ts(export)]
pub struct ReplayRequest {
    pub id: String,
    #[ts(optional)]
    pub method: Option<String>,
    /// A path, optionally with `?query`.
    #[ts(optional)]
    pub path: Option<String>,
    /// Replaces the query (without `?`).
    #[ts(optional)]
    pub query: Option<String>,
    /// Replaces every header (hop-by-hop headers are set by the engine).
    #[ts(optional)]
    pub headers: Option<Vec<(String, String)>>,
    #[ts(optional)]
    pub body: Option<String>,
}

#[derive(Debug, Clone, Serialize, ts_rs::TS)]
#[ts(export)]
pub struct ReplayResult {
    pub original: RequestDetail,
    pub replay: RequestDetail,
    pub diff: Diff,
    /// What could not be replayed as captured (e.g. a body that was not captured).
    pub notes: Vec<String>,
    /// Files hot reloads changed since the original was answered (root-relative): the code
    /// the replay ran that the original did not.
    pub files_changed: Vec<String>,
}

fn query_flag(parts: &Parts, key: &str) -> bool {
    query_param(parts, key).is_some_and(|v| v == "1" || v == "true")
}

fn query_param(parts: &Parts, key: &str) -> Option<String> {
    crate::invoke::event::parse_query(parts.uri.query().unwrap_or(""))
        .into_iter()
        .find(|(k, _)| k == key)
        .and_then(|(_, v)| match v {
            crate::invoke::event::QueryValueOut::One(s) => Some(s),
            _ => None,
        })
}

/// The base URL requests are exported with (the engine's own listener).
pub(crate) fn base_url(shared: &Shared) -> String {
    format!("http://{}", loopback(shared.addr))
}

/// The listener's address, with a wildcard IP replaced by loopback (for connecting to it).
fn loopback(addr: std::net::SocketAddr) -> std::net::SocketAddr {
    let mut a = addr;
    if a.ip().is_unspecified() {
        a.set_ip(if a.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    a
}

pub(crate) fn detail(shared: &Shared, e: &Entry, reveal: bool) -> RequestDetail {
    let served = shared.served();
    let part = |h: &[(String, String)], b: &Bytes, cut: bool| CapturedPart {
        headers: super::secrets::mask_headers(h, reveal),
        body: super::secrets::mask_body(&String::from_utf8_lossy(b), reveal),
        cut,
    };
    RequestDetail {
        record: e.record(
            Some((&served.discovery.routes, &shared.settings.functions_root)),
            reveal,
        ),
        request: e
            .captured
            .as_ref()
            .map(|c| part(&c.request_pairs(), &c.request_body, c.request_cut)),
        response: e
            .captured
            .as_ref()
            .map(|c| part(&c.response_pairs(), &c.response_body, c.response_cut)),
        curl: super::export::curl(e, &base_url(shared), reveal),
    }
}

pub(crate) async fn handle(shared: &Arc<Shared>, parts: &Parts, body: Incoming) -> Response<Body> {
    let ins: &Inspector = &shared.inspector;
    let rest = parts.uri.path().trim_start_matches("/_fn/requests");
    let reveal = query_flag(parts, "reveal");
    match (rest, &parts.method) {
        ("" | "/", &Method::GET) => {
            let limit = query_param(parts, "limit")
                .and_then(|l| l.parse().ok())
                .unwrap_or(100usize);
            let served = shared.served();
            let records = ins.records(
                limit,
                query_flag(parts, "admin"),
                Some((&served.discovery.routes, shared.settings.functions_root.as_path())),
                reveal,
            );
            json_response(
                StatusCode::OK,
                &serde_json::json!({
                    "requests": records,
                    "capacity": ins.settings.capacity,
                    "body_bytes": ins.settings.body_bytes,
                }),
            )
        }
        ("/replay", &Method::POST) => replay(shared, body).await.unwrap_or_else(|e| e),
        (rest, &Method::POST) if rest.ends_with("/save-test") => {
            let id = rest.trim_start_matches('/').trim_end_matches("/save-test");
            match Limited::new(body, 1024 * 1024).collect().await {
                Ok(raw) => super::saved::save(shared, id, &raw.to_bytes()).await,
                Err(_) => bad("request body too large or unreadable"),
            }
        }
        ("/har", &Method::GET) => {
            let ids: Option<Vec<String>> = query_param(parts, "id").map(|s| s.split(',').map(str::to_string).collect());
            let base = base_url(shared);
            let har = ins.with_entries(|it| {
                let chosen: Vec<&Entry> = it
                    .filter(|e| match &ids {
                        Some(ids) => ids.contains(&e.id()),
                        None => e.note.kind != super::Kind::Admin,
                    })
                    .collect();
                // HAR lists entries oldest first.
                let chosen: Vec<&Entry> = chosen.into_iter().rev().collect();
                super::export::har(&chosen, &base, reveal)
            });
            let mut resp = json_response(StatusCode::OK, &har);
            resp.headers_mut().insert(
                "content-disposition",
                HeaderValue::from_static("attachment; filename=\"fastfn.har\""),
            );
            resp
        }
        (rest, &Method::GET) => {
            let rest = rest.trim_start_matches('/');
            let (id, curl) = match rest.strip_suffix("/curl") {
                Some(id) => (id, true),
                None => (rest, false),
            };
            let base = base_url(shared);
            let found = ins.find(id, |e| {
                if curl {
                    Err(super::export::curl(e, &base, reveal))
                } else {
                    Ok(detail(shared, e, reveal))
                }
            });
            match found {
                None => Failure::NotFound.into_response(),
                Some(Ok(d)) => json_response(StatusCode::OK, &d),
                Some(Err(line)) => {
                    let mut resp = Response::new(Full::new(Bytes::from(line + "\n")));
                    resp.headers_mut()
                        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
                    resp
                }
            }
        }
        ("/replay", _) => Failure::MethodNotAllowed { allow: "POST".into() }.into_response(),
        _ => Failure::MethodNotAllowed { allow: "GET".into() }.into_response(),
    }
}

fn bad(message: &str) -> Response<Body> {
    json_response(StatusCode::BAD_REQUEST, &serde_json::json!({ "error": message }))
}

/// What a replay (or a saved test) sends.
pub(crate) struct Outgoing {
    pub method: Method,
    /// Path and query.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    pub notes: Vec<String>,
}

fn outgoing(e: &Entry, edit: &ReplayRequest) -> Result<Outgoing, String> {
    let mut notes = Vec::new();
    let method = match &edit.method {
        Some(m) => Method::from_bytes(m.trim().to_ascii_uppercase().as_bytes()).map_err(|_| "invalid method")?,
        None => e.method.clone(),
    };
    let (mut path, mut query) = (e.uri.path().to_string(), e.uri.query().map(str::to_string));
    if let Some(p) = &edit.path {
        let p = if p.starts_with('/') { p.clone() } else { format!("/{p}") };
        match p.split_once('?') {
            Some((a, q)) => {
                path = a.to_string();
                query = Some(q.to_string());
            }
            None => path = p,
        }
    }
    if let Some(q) = &edit.query {
        query = (!q.is_empty()).then(|| q.trim_start_matches('?').to_string());
    }
    let target = match query {
        Some(q) => format!("{path}?{q}"),
        None => path,
    };
    let captured = e.captured.as_deref();
    let headers = match (&edit.headers, captured) {
        (Some(h), _) => h.clone(),
        (None, Some(c)) => c.request_pairs(),
        (None, None) => {
            notes.push("the original's headers were not captured: sent without them".into());
            Vec::new()
        }
    };
    let body = match (&edit.body, captured) {
        (Some(b), _) => Bytes::from(b.clone()),
        (None, Some(c)) => {
            if c.request_cut {
                notes.push("the original's body was cut when captured: the cut body was sent".into());
            }
            c.request_body.clone()
        }
        (None, None) => {
            notes.push("the original's body was not captured: sent without one".into());
            Bytes::new()
        }
    };
    Ok(Outgoing {
        method,
        target,
        headers,
        body,
        notes,
    })
}

async fn replay(shared: &Arc<Shared>, body: Incoming) -> Result<Response<Body>, Response<Body>> {
    let raw = Limited::new(body, REPLAY_BODY_MAX)
        .collect()
        .await
        .map_err(|_| bad("request body too large or unreadable"))?
        .to_bytes();
    let edit: ReplayRequest = serde_json::from_slice(&raw).map_err(|e| bad(&format!("invalid replay request: {e}")))?;
    let ins = &shared.inspector;
    let host = shared.addr.to_string();
    let (out, original) = ins
        .find(&edit.id, |e| {
            outgoing(e, &edit).map(|o| {
                let host = e
                    .captured
                    .as_ref()
                    .and_then(|c| {
                        c.request_pairs()
                            .into_iter()
                            .find(|(k, _)| k.eq_ignore_ascii_case("host"))
                    })
                    .map(|(_, v)| v);
                (o, host)
            })
        })
        .ok_or_else(|| Failure::NotFound.into_response())?
        .map_err(|e| bad(&e))?;
    let host = edit
        .headers
        .as_ref()
        .and_then(|h| {
            h.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("host"))
                .map(|(_, v)| v.clone())
        })
        .or(original)
        .unwrap_or(host);
    let token = format!("{}-{}", ins.next_seq(), crate::clock::epoch_millis());
    send(shared, &out, &host, Some(&token)).await.map_err(|e| {
        json_response(
            StatusCode::BAD_GATEWAY,
            &serde_json::json!({"error": format!("replay failed: {e}")}),
        )
    })?;
    // The gateway records a request before its response is written: the replay is in the log.
    let result = ins.with_entries(|it| {
        let entries: Vec<&Entry> = it.collect();
        let new = entries
            .iter()
            .find(|e| e.note.replay.as_deref() == Some(token.as_str()))?;
        let old = entries.iter().find(|e| e.id() == edit.id)?;
        Some(ReplayResult {
            diff: {
                let (old_h, new_h) = (response_pairs(old), response_pairs(new));
                diff(&answer(old, &old_h), &answer(new, &new_h))
            },
            original: detail(shared, old, false),
            replay: detail(shared, new, false),
            notes: out.notes.clone(),
            files_changed: ins.files_changed_since(old.ts),
        })
    });
    match result {
        Some(r) => Ok(json_response(StatusCode::OK, &r)),
        None => Err(json_response(
            StatusCode::CONFLICT,
            &serde_json::json!({"error": "the original or the replay left the request log (FN_INSPECT_REQUESTS is too small)"}),
        )),
    }
}

fn response_pairs(e: &Entry) -> Vec<(String, String)> {
    e.captured.as_ref().map(|c| c.response_pairs()).unwrap_or_default()
}

fn answer<'a>(e: &'a Entry, headers: &'a [(String, String)]) -> Answer<'a> {
    Answer {
        status: e.status,
        headers,
        body: e.captured.as_ref().map(|c| &c.response_body[..]),
        stages: e.note.stages,
        latency_us: e.latency_us,
    }
}

/// An answer read back by [`send`].
pub(crate) struct Answered {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

/// Send the request to the engine's own listener (so it is served, recorded and explained
/// like any other) and wait for its answer. `token` marks a replay (`None`: an ordinary
/// request, e.g. a saved test).
pub(crate) async fn send(shared: &Shared, out: &Outgoing, host: &str, token: Option<&str>) -> Result<Answered, String> {
    let stream = tokio::net::TcpStream::connect(loopback(shared.addr))
        .await
        .map_err(|e| e.to_string())?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut req = hyper::Request::builder().method(out.method.clone()).uri(&out.target);
    for (k, v) in &out.headers {
        if !super::export::is_hop_header(k) {
            req = req.header(k.as_str(), v.as_str());
        }
    }
    req = req.header(hyper::header::HOST, host);
    if let Some(token) = token {
        req = req.header(super::REPLAY_HEADER, token);
    }
    let req = req.body(Full::new(out.body.clone())).map_err(|e| e.to_string())?;
    let result = tokio::time::timeout(REPLAY_TIMEOUT, async {
        let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let headers = super::header_pairs(resp.headers());
        // Read the whole answer: the record is complete once it was sent.
        let body = resp.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
        Ok::<Answered, String>(Answered { status, headers, body })
    })
    .await
    .map_err(|_| "no answer within 60 s".to_string())?;
    driver.abort();
    result
}
