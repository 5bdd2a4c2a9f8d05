//! The HTTP edge and the data path under attack (the data-path issue): slow and silent
//! clients, header floods and 1xx replies from handlers, pipelining, case-sensitive methods,
//! frame limits with binary bodies, busy sockets, and daemons killed with calls in flight on a
//! shared connection. `fixtures/edge`: `ok.py`, `headers.py?n=`, `status.py?code=`,
//! `slow.py?ms=`, `upload/` (POST, 8 MiB body limit, answers the byte count and SHA-256).

use crate::support::{health_pids, send_raw, start, wait_for, TestEngine};
use serde_json::Value;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn edge(env: &[(&str, &str)]) -> TestEngine {
    let mut all = vec![("FN_RUNTIMES", "python")];
    all.extend_from_slice(env);
    let e = start("edge", &all).await;
    e.ready().await;
    e
}

/// Read until the server closes the connection; how long that took.
async fn closed_after(mut s: TcpStream, limit: Duration) -> Option<Duration> {
    let t = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(limit, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(t.elapsed()),
            Ok(Ok(_)) => continue,
            Err(_) => return None,
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_and_silent_clients_are_closed_while_others_are_served() {
    let e = edge(&[("FN_CLIENT_TIMEOUT_MS", "600")]).await;
    let addr = e.addr();
    // Half a request head, then nothing (slowloris); and connections that send nothing.
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /ok HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    let mut silent = Vec::new();
    for _ in 0..50 {
        silent.push(TcpStream::connect(addr).await.unwrap());
    }
    // A normal client is served meanwhile.
    let r = e.get("/ok").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let took = closed_after(slow, Duration::from_secs(5))
        .await
        .expect("a slow header must be closed by the timeout");
    assert!(took < Duration::from_millis(2500), "closed after {took:?}");
    for s in silent {
        closed_after(s, Duration::from_secs(5))
            .await
            .expect("a silent connection must be closed by the timeout");
    }
    assert_eq!(e.get("/ok").await.status, 200);
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_header_flood_from_a_handler_is_a_502_and_the_engine_keeps_serving() {
    let e = edge(&[]).await;
    let r = e.get("/headers?n=40000").await;
    assert_eq!(r.status, 502, "{}", r.text());
    assert_eq!(r.json()["error"], "invalid runtime response");
    let r = e.get("/headers?n=20").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-h19"), Some("v"));
    assert_eq!(e.get("/ok").await.status, 200);
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn informational_statuses_from_a_handler_are_502_and_pipelining_survives() {
    let e = edge(&[]).await;
    for code in ["100", "101", "199"] {
        let r = e.get(&format!("/status?code={code}")).await;
        assert_eq!(r.status, 502, "status {code}: {}", r.text());
    }
    // Two pipelined requests on one connection: both answered, in order.
    let raw =
        b"GET /status?code=101 HTTP/1.1\r\nHost: x\r\n\r\nGET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let mut s = TcpStream::connect(e.addr()).await.unwrap();
    s.write_all(raw).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
        .await
        .expect("both answers within 10 s")
        .unwrap();
    let text = String::from_utf8_lossy(&out);
    // A status line follows the previous body directly (no newline after a body).
    let statuses: Vec<&str> = text
        .match_indices("HTTP/1.1 ")
        .map(|(i, _)| &text[i + 9..i + 12])
        .collect();
    assert_eq!(statuses, ["502", "200"], "{text}");
    assert!(text.contains(r#"{"ok":true}"#), "{text}");
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn method_names_are_case_sensitive() {
    let e = edge(&[]).await;
    let r = send_raw(e.addr(), b"get /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.json()["error"], "invalid method");
    assert_eq!(e.get("/ok").await.status, 200);
    e.stop().await;
}

fn binary(len: usize) -> Vec<u8> {
    // Every byte value, so the body is not UTF-8 (the case that used to be sent twice).
    (0..len).map(|i| (i * 7 % 256) as u8).collect()
}

fn sha256_hex(data: &[u8]) -> String {
    let out = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(data)?;
            c.wait_with_output()
        })
        .expect("sha256sum");
    String::from_utf8_lossy(&out.stdout)[..64].to_string()
}

/// With the default 2 MiB frame limit: a 1.5 MiB binary upload fits (carried once, raw), a
/// 2.5 MiB one is refused with 413 by the gateway before anything is sent.
#[tokio::test(flavor = "multi_thread")]
async fn binary_uploads_are_carried_once_and_the_frame_limit_is_a_413() {
    let e = edge(&[]).await;
    let body = binary(1_572_864);
    let r = e
        .send(
            "POST",
            "/upload",
            &[("Content-Type", "application/octet-stream")],
            Some(&body),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v: Value = r.json();
    assert_eq!(v["bytes"], body.len());
    assert_eq!(v["sha256"], sha256_hex(&body));
    let r = e
        .send(
            "POST",
            "/upload",
            &[("Content-Type", "application/octet-stream")],
            Some(&binary(2_621_440)),
        )
        .await;
    assert_eq!(r.status, 413, "{}", r.text());
    assert_eq!(r.json()["error"], "payload too large");
    assert_eq!(e.get("/ok").await.status, 200);
    e.stop().await;
}

/// Calls in flight on a shared persistent connection when its daemon dies: each answers (an
/// error for the non-idempotent ones, a retry elsewhere for GETs), none hangs, and the
/// runtime serves again after the restart.
///
/// Calls go out in pairs of one method (POST, POST, GET, GET, …), a pair apart in time:
/// round robin over two sockets sends the two calls of a pair to different daemons, so each
/// daemon has POSTs and GETs in flight whatever the arrival order inside a pair (sent all at
/// once, every POST could land on the survivor: a rare false failure). The function timeout
/// is far above the test's own limit, so a loaded machine cannot turn a retried GET into a
/// 504 while a hang (a call that never answers) still fails the 8 s check.
#[tokio::test(flavor = "multi_thread")]
async fn a_daemon_killed_with_calls_in_flight_fails_only_those_calls() {
    let e = edge(&[
        ("FN_RUNTIME_DAEMONS", "python=2"),
        ("FN_RUNTIME_CONNECTIONS", "1"),
        ("FN_DEFAULT_TIMEOUT_MS", "20000"),
    ])
    .await;
    let addr = e.addr();
    let before = health_pids(&e.get("/_fn/health").await.json());
    assert_eq!(before.len(), 2);
    let t = Instant::now();
    let mut calls = Vec::new();
    for i in 0..12 {
        if i > 0 && i % 2 == 0 {
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
        let method = method_of(i);
        calls.push(tokio::spawn(async move {
            crate::support::request(addr, method, "/slow?ms=1500", &[], None)
                .await
                .status
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = e
        .send(
            "POST",
            "/_fn/daemons/kill?runtime=python&index=1",
            &[("X-Fn-Request", "1")],
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let mut statuses = Vec::new();
    for c in calls {
        statuses.push(c.await.unwrap());
    }
    assert!(t.elapsed() < Duration::from_secs(8), "nothing hangs: {:?}", t.elapsed());
    for (i, s) in statuses.iter().enumerate() {
        match method_of(i) {
            // A GET retried on the other daemon, or served by it in the first place.
            "GET" => assert_eq!(*s, 200, "GET #{i}: {statuses:?}"),
            _ => assert!(*s == 200 || *s == 502, "POST #{i}: {statuses:?}"),
        }
    }
    assert!(
        statuses.contains(&502),
        "some POSTs were on the killed daemon: {statuses:?}"
    );
    wait_for(Duration::from_secs(10), || {
        let h = e.engine.health();
        health_pids(&h).len() == 2 && health_pids(&h) != before
    })
    .await;
    for _ in 0..10 {
        assert_eq!(e.get("/ok").await.status, 200);
    }
    e.stop().await;
}

/// POST, POST, GET, GET, … (see above).
fn method_of(i: usize) -> &'static str {
    if i % 4 < 2 {
        "POST"
    } else {
        "GET"
    }
}

/// A v1 daemon (`fixtures/fake-daemons/busy-python`) with a listen backlog of 1 and a slow
/// serial accept loop: a burst of 20 (the pool's size) overflows its backlog (`EAGAIN` on
/// connect). Busy is not down: every request is served, none gets a 503, and health stays up.
#[tokio::test(flavor = "multi_thread")]
async fn a_full_backlog_is_busy_not_down() {
    let bin = crate::support::fixture("fake-daemons").join("busy-python");
    let e = edge(&[("FN_PYTHON_BIN", bin.to_str().unwrap()), ("FN_HEALTH_INTERVAL", "0.05")]).await;
    let addr = e.addr();
    for _ in 0..3 {
        let mut burst = Vec::new();
        for _ in 0..20 {
            burst.push(tokio::spawn(async move {
                crate::support::request(addr, "GET", "/ok", &[], None).await
            }));
        }
        let mut statuses = Vec::new();
        for b in burst {
            let r = b.await.unwrap();
            if r.status == 200 {
                assert_eq!(r.text(), "busy-ok");
            }
            statuses.push((r.status, r.text()));
        }
        assert!(statuses.iter().all(|(s, _)| *s == 200), "{statuses:?}");
    }
    let h = e.engine.health();
    assert_eq!(h["runtimes"]["python"]["health"]["up"], true, "{h}");
    e.stop().await;
}

/// A listener on a configured socket that is not a FastFN daemon (here: an HTTP-ish server
/// that answers garbage) is reported as foreign in health, and not trusted with calls.
#[tokio::test(flavor = "multi_thread")]
async fn a_foreign_listener_on_a_configured_socket_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("foreign.sock");
    let listener = tokio::net::UnixListener::bind(&sock).unwrap();
    let server = tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
            });
        }
    });
    let sockets = format!(r#"{{"python":["unix:{}"]}}"#, sock.display());
    let e = start("edge", &[("FN_RUNTIMES", "python"), ("FN_RUNTIME_SOCKETS", &sockets)]).await;
    wait_for(Duration::from_secs(5), || {
        e.engine.health()["runtimes"]["python"]["health"]["up"] == false
    })
    .await;
    let h = e.engine.health();
    let reason = h["runtimes"]["python"]["sockets"][0]["reason"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(reason.contains("foreign listener"), "{h}");
    let r = e.get("/ok").await;
    assert_eq!(r.status, 503, "{}", r.text());
    e.stop().await;
    server.abort();
}

/// Stopping the engine drains: a request in flight finishes on its live daemon (200), and
/// the listener stops taking new connections at once.
#[tokio::test(flavor = "multi_thread")]
async fn stop_drains_requests_in_flight() {
    let e = edge(&[]).await;
    let addr = e.addr();
    let in_flight = tokio::spawn(async move { crate::support::request(addr, "GET", "/slow?ms=800", &[], None).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let t = Instant::now();
    e.stop().await;
    let r = in_flight.await.unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        t.elapsed() >= Duration::from_millis(400),
        "stop waited for the call: {:?}",
        t.elapsed()
    );
    assert!(TcpStream::connect(addr).await.is_err(), "no new connections after stop");
}

/// Connect from another loopback address (127.0.0.2), as a second client would.
async fn connect_from(ip: &str, addr: std::net::SocketAddr) -> std::io::Result<TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(format!("{ip}:0").parse().unwrap())?;
    socket.connect(addr).await
}

/// One client holding many idle connections cannot lock another out: past half the cap, a
/// client keeps at most a quarter of it, and the others are still served.
#[tokio::test(flavor = "multi_thread")]
async fn one_client_cannot_take_every_connection() {
    let e = edge(&[("FN_MAX_CONNECTIONS", "40")]).await;
    let addr = e.addr();
    let mut held = Vec::new();
    for _ in 0..60 {
        if let Ok(s) = connect_from("127.0.0.2", addr).await {
            held.push(s);
        }
    }
    // Let the engine accept (and refuse) them.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = e.get("/ok").await;
    assert_eq!(r.status, 200, "{}", r.text());
    // The flood's surplus was closed at once.
    let mut closed = 0;
    for s in held.iter_mut() {
        let mut buf = [0u8; 1];
        if let Ok(Ok(0)) = tokio::time::timeout(Duration::from_millis(50), s.read(&mut buf)).await {
            closed += 1;
        }
    }
    assert!(closed >= 40, "only {closed} of 60 were refused");
    e.stop().await;
}

/// A client that comes straight back after each refusal is paced (the first refusal at once,
/// then 1 ms doubling per refusal in a row on its connection, at most 32 ms): ten pipelined
/// requests to a full pool all get 429, and the ten answers take at least
/// 1+2+4+8+16+32·4 ms = 159 ms. Status and body are unchanged.
#[tokio::test(flavor = "multi_thread")]
async fn refusals_in_a_row_are_paced() {
    let e = edge(&[]).await;
    let addr = e.addr();
    let busy = tokio::spawn(async move { crate::support::request(addr, "GET", "/single?ms=2000", &[], None).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut raw = Vec::new();
    for i in 0..10 {
        let close = if i == 9 { "Connection: close\r\n" } else { "" };
        raw.extend_from_slice(format!("GET /single HTTP/1.1\r\nHost: x\r\n{close}\r\n").as_bytes());
    }
    let t = Instant::now();
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(&raw).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    let took = t.elapsed();
    let text = String::from_utf8_lossy(&out);
    let statuses: Vec<&str> = text
        .match_indices("HTTP/1.1 ")
        .map(|(i, _)| &text[i + 9..i + 12])
        .collect();
    assert_eq!(statuses, ["429"; 10], "{text}");
    assert_eq!(text.matches(r#"{"error":"worker pool overflow"}"#).count(), 10);
    assert!(took >= Duration::from_millis(159), "paced: {took:?}");
    assert_eq!(busy.await.unwrap().status, 200);
    e.stop().await;
}
