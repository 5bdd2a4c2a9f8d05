//! The dashboard's live stream of requests: batches of summaries a few times per second
//! (`requests` events), not one event per request; headers, output and log lines stay in the
//! request log and come with a request's detail.

use crate::support::start;
use fastfn::events::EngineEvent;
use std::collections::HashSet;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread")]
async fn requests_reach_listeners_in_batches_of_summaries() {
    let e = start("inspect-rt", &[("FN_RUNTIMES", "lua")]).await;
    e.ready().await;
    let mut live = e.engine.events().subscribe_live();
    let started = Instant::now();
    let mut calls = Vec::new();
    for i in 0..40 {
        let addr = e.addr();
        let path = if i % 2 == 0 {
            "/out-lua".to_string()
        } else {
            format!("/nope-{i}")
        };
        calls.push(tokio::spawn(async move {
            crate::support::request(addr, "GET", &path, &[], None).await
        }));
    }
    for c in calls {
        assert!(matches!(c.await.unwrap().status, 200 | 404));
    }
    let mut seen = Vec::new();
    let mut batches = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while seen
        .iter()
        .filter(|r: &&fastfn::events::RequestSummary| r.kind != fastfn::inspect::Kind::Admin)
        .count()
        < 40
    {
        let ev = tokio::time::timeout_at(deadline, live.recv())
            .await
            .unwrap_or_else(|_| panic!("only {} of 40 requests arrived", seen.len()))
            .expect("live channel");
        if let EngineEvent::Requests { requests, left_out } = ev {
            assert_eq!(left_out, 0, "40 requests fit one batch");
            assert!(!requests.is_empty(), "an empty batch is not sent");
            // The summary carries no headers, bodies, output or log lines.
            let json = serde_json::to_value(&requests[0]).unwrap();
            for heavy in ["headers", "stdout", "stderr", "logs"] {
                assert!(json.get(heavy).is_none(), "{heavy} in a summary: {json}");
            }
            batches += 1;
            seen.extend(requests);
        }
    }
    // At most one batch per interval (250 ms): not one event per request.
    let intervals = started.elapsed().as_millis() / 250 + 1;
    assert!(
        batches as u128 <= intervals,
        "{batches} batches in {:?}",
        started.elapsed()
    );
    let ids: HashSet<&str> = seen.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids.len(), seen.len(), "each request once");
    let lua: Vec<_> = seen.iter().filter(|r| r.path == "/out-lua").collect();
    assert_eq!(lua.len(), 20);
    assert!(
        lua.iter()
            .all(|r| r.status == 200 && r.runtime == Some(fastfn::runtime::RuntimeKind::Lua)),
        "{lua:?}"
    );
    let nope = seen.iter().find(|r| r.path == "/nope-1").expect("the 404");
    assert_eq!(
        (nope.status, nope.why.as_deref()),
        (404, Some("no route matches /nope-1"))
    );
    // The detail still has what the summary leaves out (the call's stdout).
    let id = &lua[0].id;
    let d = e.get(&format!("/_fn/requests/{id}")).await.json();
    assert!(
        d["record"]["stdout"]
            .as_str()
            .is_some_and(|s| s.contains("lua stdout line")),
        "{d}"
    );
    e.stop().await;
}

/// Through the real event stream (`GET /_fn/events`, server-sent events), as a browser reads
/// it: a request's summary arrives in a `requests` event.
#[tokio::test(flavor = "multi_thread")]
async fn the_event_stream_carries_request_batches() {
    let e = start("inspect-rt", &[("FN_RUNTIMES", "lua")]).await;
    e.ready().await;
    let mut sse = tokio::net::TcpStream::connect(e.addr()).await.unwrap();
    sse.write_all(b"GET /_fn/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let mut text = String::new();
    let mut buf = vec![0u8; 8192];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    // Wait for the stream to be open before the call, so the call is after the listener.
    while !text.contains(": connected") {
        let n = tokio::time::timeout_at(deadline, sse.read(&mut buf))
            .await
            .expect("the stream opens")
            .unwrap();
        assert!(n > 0, "stream closed: {text}");
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert_eq!(e.get("/out-lua?x=1").await.status, 200);
    let event = loop {
        if let Some(line) = text
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .find(|l| l.contains(r#""type":"requests""#) && l.contains("/out-lua"))
        {
            break serde_json::from_str::<serde_json::Value>(line).unwrap();
        }
        let n = tokio::time::timeout_at(deadline, sse.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("no requests event: {text}"))
            .unwrap();
        assert!(n > 0, "stream closed: {text}");
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
    };
    assert!(!text.contains(r#""type":"request","#), "no per-request events: {text}");
    let r = event["requests"]
        .as_array()
        .and_then(|a| a.iter().find(|r| r["path"] == "/out-lua"))
        .unwrap_or_else(|| panic!("{event}"));
    assert_eq!((r["status"].as_u64(), r["query"].as_str()), (Some(200), Some("x=1")));
    assert_eq!(r["reason"], "ok");
    assert!(r["stages"]["runtime_us"].as_u64().is_some(), "{r}");
    e.stop().await;
}

/// A method mismatch is told apart for the live list too (by the stream's task, not while
/// the 404 is answered): the row says `method_mismatch` before anyone opens it.
#[tokio::test(flavor = "multi_thread")]
async fn a_method_mismatch_is_told_in_the_batch() {
    let e = start("inspect", &[("FN_RUNTIMES", "python")]).await;
    e.ready().await;
    let mut live = e.engine.events().subscribe_live();
    let r = e.get("/echo").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.header("x-fn-reason"), None, "no debug headers");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let rec = loop {
        let ev = tokio::time::timeout_at(deadline, live.recv())
            .await
            .expect("a batch with /echo")
            .expect("live channel");
        if let EngineEvent::Requests { requests, .. } = ev {
            if let Some(r) = requests.into_iter().find(|r| r.path == "/echo") {
                break r;
            }
        }
    };
    assert_eq!(rec.reason, fastfn::inspect::Reason::MethodMismatch, "{rec:?}");
    assert!(rec.why.as_deref().is_some_and(|w| w.contains("allows POST")), "{rec:?}");
    e.stop().await;
}
