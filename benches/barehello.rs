//! The yardstick for the gateway's own cost: a bare hyper 1 HTTP/1.1 server on one port that
//! answers every request with a constant 404 JSON body, configured as the gateway's listener is
//! (multi-thread tokio, keep-alive, nodelay). `benches/gateway.sh` drives it and the engine's
//! `/nope` with the same wrk in the same run.
//!
//! With `BARE_HEADERS=1` it takes 200 request header lines as the gateway does (hyper then
//! keeps its header table on the heap), with `BARE_TIMER=1` it arms the header-read timeout
//! the gateway arms: both together are the floor of any server configured like the gateway.
//!
//! `cargo bench --bench barehello -- <port>` (runs until killed)

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;

fn main() {
    let port: u16 = std::env::args()
        .skip(1)
        .find(|a| a != "--bench")
        .and_then(|p| p.parse().ok())
        .unwrap_or(18090);
    // As many worker threads as the gateway takes (`FN_GATEWAY_THREADS`, else half the cores).
    let threads = std::env::var("FN_GATEWAY_THREADS")
        .ok()
        .and_then(|n| n.parse().ok())
        .filter(|n: &usize| *n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1)));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|_req| async {
                    let mut resp = Response::new(Full::new(Bytes::from_static(br#"{"error":"not found"}"#)));
                    *resp.status_mut() = StatusCode::NOT_FOUND;
                    resp.headers_mut().insert(
                        "content-type",
                        hyper::header::HeaderValue::from_static("application/json"),
                    );
                    Ok::<_, Infallible>(resp)
                });
                let mut http = hyper::server::conn::http1::Builder::new();
                http.keep_alive(true);
                if std::env::var_os("BARE_HEADERS").is_some() {
                    http.max_headers(fastfn::gateway::MAX_REQUEST_HEADERS);
                }
                if std::env::var_os("BARE_TIMER").is_some() {
                    http.timer(hyper_util::rt::TokioTimer::new())
                        .header_read_timeout(std::time::Duration::from_secs(60));
                }
                let _ = http.serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });
}
