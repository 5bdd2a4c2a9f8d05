//! The edge proxy (a handler reply with `proxy`, `fn.config.json` `edge`): forwarded to a local
//! upstream (a real HTTP server on loopback, so the function enables `allow_private`), the
//! response size cap, the timeout, a refused private address, a refused control-plane path,
//! and a function without `edge`. `fixtures/edge_proxy` (see its README).

use crate::support::{copy_fixture, start, start_in, Resp, TestEngine};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A local upstream: `/echo` answers what it received (with a hop-by-hop header that must not
/// reach the client), `/big` 4096 bytes, `/made` 201, `/slow` after 3 s. Counts requests.
struct Upstream {
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn upstream() -> Upstream {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let counter = counter.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    counter.fetch_add(1, Ordering::SeqCst);
                    async move {
                        let (parts, body) = req.into_parts();
                        let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                        let path = parts.uri.path().to_string();
                        let mut resp = hyper::Response::new(Full::new(Bytes::new()));
                        match path.as_str() {
                            "/big" => *resp.body_mut() = Full::new(Bytes::from(vec![b'x'; 4096])),
                            "/made" => {
                                *resp.status_mut() = hyper::StatusCode::CREATED;
                                *resp.body_mut() = Full::new(Bytes::from_static(b"made"));
                            }
                            "/slow" => {
                                tokio::time::sleep(Duration::from_secs(3)).await;
                                *resp.body_mut() = Full::new(Bytes::from_static(b"late"));
                            }
                            _ => {
                                let header =
                                    |n: &str| parts.headers.get(n).and_then(|v| v.to_str().ok()).map(str::to_string);
                                let seen = json!({
                                    "method": parts.method.as_str(),
                                    "uri": parts.uri.to_string(),
                                    "x_edge": header("x-edge"),
                                    "host": header("host"),
                                    "body": String::from_utf8_lossy(&body),
                                });
                                *resp.body_mut() = Full::new(Bytes::from(seen.to_string()));
                                let h = resp.headers_mut();
                                h.insert("x-upstream", "yes".parse().unwrap());
                                h.insert("keep-alive", "timeout=5".parse().unwrap());
                                h.insert("content-type", "application/json".parse().unwrap());
                            }
                        }
                        Ok::<_, std::convert::Infallible>(resp)
                    }
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await;
            });
        }
    });
    Upstream { addr, hits, task }
}

async fn engine_in(dir: &std::path::Path) -> TestEngine {
    let e = start_in(dir, &[("FN_RUNTIMES", "python")]).await;
    e.ready().await;
    e
}

fn to(up: &Upstream, path: &str) -> String {
    let url = format!("http://{}{path}", up.addr);
    percent_encoding::utf8_percent_encode(&url, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn assert_502(r: &Resp, error: &str) {
    assert_eq!(r.status, 502, "{}", r.text());
    assert_eq!(r.json(), json!({ "error": error }));
    assert_eq!(r.header("content-type"), Some("application/json"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_proxy_reply_is_forwarded_to_a_local_upstream() {
    let up = upstream().await;
    let e = start("edge_proxy", &[("FN_RUNTIMES", "python")]).await;
    e.ready().await;
    let r = e
        .send(
            "POST",
            &format!("/open?to={}", to(&up, "/echo?q=1")),
            &[],
            Some(b"hello upstream"),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let seen: Value = r.json();
    assert_eq!(seen["method"], "POST", "the inbound method by default");
    assert_eq!(seen["uri"], "/echo?q=1");
    assert_eq!(seen["x_edge"], "1");
    assert_eq!(seen["host"], up.addr.to_string());
    assert_eq!(seen["body"], "hello upstream");
    assert_eq!(r.header("x-upstream"), Some("yes"));
    assert_eq!(r.header("keep-alive"), None, "hop-by-hop headers are dropped");
    // The upstream's status wins over the handler's fallback.
    let r = e.get(&format!("/open?to={}", to(&up, "/made"))).await;
    assert_eq!((r.status, r.text().as_str()), (201, "made"));

    // Over `max_response_bytes` (1024): refused, nothing of the body reaches the client.
    let r = e.get(&format!("/open?to={}", to(&up, "/big"))).await;
    assert_502(&r, "edge proxy failed: proxy request failed: response_too_large");
    // The directive's timeout bounds the exchange.
    let r = e.get(&format!("/open?to={}&timeout=300", to(&up, "/slow"))).await;
    assert_502(&r, "edge proxy failed: proxy request failed: timeout");
    // Never the control plane, even with private addresses allowed.
    let before = up.hits.load(Ordering::SeqCst);
    let r = e.get(&format!("/open?to={}", to(&up, "/_fn/health"))).await;
    assert_502(&r, "edge proxy failed: proxy denied: control-plane path not allowed");
    // Without `allow_private`, a loopback upstream is refused before any connection.
    let r = e.get(&format!("/closed?to={}", to(&up, "/echo"))).await;
    assert_502(&r, "edge proxy failed: proxy denied: private host not allowed");
    // A name is judged by the addresses it resolves to (`127.1` is no IP literal to Rust, but
    // resolves to 127.0.0.1).
    let r = e
        .get(&format!("/closed?to={}", to_name("127.1", up.addr.port(), "/echo")))
        .await;
    assert_502(&r, "edge proxy failed: proxy denied: private host not allowed");
    assert_eq!(up.hits.load(Ordering::SeqCst), before, "refused proxies never connect");
    // No `edge` block: proxying is off.
    let r = e.get(&format!("/off?to={}", to(&up, "/echo"))).await;
    assert_502(&r, "edge proxy disabled for this function");
    // `edge` is supported: no "not supported" warning for it.
    let health = e.engine.health();
    assert!(!health.to_string().contains("`edge`"), "{}", health["warnings"]);
    e.stop().await;
}

fn to_name(host: &str, port: u16, path: &str) -> String {
    let url = format!("http://{host}:{port}{path}");
    percent_encoding::utf8_percent_encode(&url, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_relative_path_goes_to_the_base_url() {
    let up = upstream().await;
    let dir = copy_fixture("edge_proxy");
    std::fs::write(
        dir.path().join("based/fn.config.json"),
        json!({"name": "based", "runtime": "python",
               "edge": {"base_url": format!("http://{}/", up.addr), "allow_private": true}})
        .to_string(),
    )
    .unwrap();
    let e = engine_in(dir.path()).await;
    let r = e.get("/based").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = r.json();
    assert_eq!(seen["method"], "PUT");
    assert_eq!(seen["uri"], "/echo?from=based");
    assert_eq!(seen["body"], "b");
    e.stop().await;
}
