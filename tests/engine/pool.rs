//! Worker pools (contract §5.2, §3.1 `worker_pool`): admission, queueing, queue timeout,
//! hang-ups, isolation between functions, and what health and the event stream report.
//!
//! `fixtures/pool`: `slow-queue/`, `short-wait/` and `short-wait-503/` hold one `nap.py`
//! (sleeps `?s=`, default 0.9 s) behind `max_workers: 1, max_queue: 1`, with a queue timeout of
//! 5000, 200 and 200 ms (the last with `overflow_status: 503`); `other/quick.py` answers at once
//! from its own pool.

use crate::support::{request, start, wait_for, Resp, TestEngine};
use fastfn::events::EngineEvent;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio::time::Instant;

const SLOW: &str = "python/slow-queue/nap.py@default";
const SHORT: &str = "python/short-wait/nap.py@default";
const SHORT_503: &str = "python/short-wait-503/nap.py@default";

async fn pool_engine() -> TestEngine {
    start("pool", &[("FN_RUNTIMES", "python")]).await
}

/// A GET on its own task; yields the response and how long it took.
fn spawn_get(addr: SocketAddr, path: &'static str) -> JoinHandle<(Resp, Duration)> {
    tokio::spawn(async move {
        let t = Instant::now();
        let r = request(addr, "GET", path, &[], None).await;
        (r, t.elapsed())
    })
}

/// `functions.states[key].worker_pool` of a health document.
fn pool_of(health: &Value, key: &str) -> Value {
    health["functions"]["states"]
        .as_array()
        .and_then(|s| s.iter().find(|st| st["key"] == key))
        .unwrap_or_else(|| panic!("no state {key} in {}", health["functions"]))["worker_pool"]
        .clone()
}

fn live_pool(e: &TestEngine, key: &str) -> Value {
    pool_of(&e.engine.health(), key)
}

async fn wait_pool(e: &TestEngine, key: &str, active: u64, queued: u64) {
    wait_for(Duration::from_secs(5), || {
        let p = live_pool(e, key);
        p["active"] == active && p["queued"] == queued
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn third_concurrent_call_overflows() {
    let e = pool_engine().await;
    let calls: Vec<_> = (0..3).map(|_| spawn_get(e.addr(), "/slow-queue/nap")).collect();
    let mut done = Vec::new();
    for c in calls {
        done.push(c.await.expect("call task"));
    }
    let statuses: Vec<u16> = done.iter().map(|(r, _)| r.status).collect();
    let ok: Vec<&(Resp, Duration)> = done.iter().filter(|(r, _)| r.status == 200).collect();
    assert_eq!(ok.len(), 2, "{statuses:?}");
    let queued: Vec<Option<&str>> = ok.iter().map(|(r, _)| r.header("x-fastfn-queued")).collect();
    assert_eq!(
        queued.iter().filter(|q| **q == Some("true")).count(),
        1,
        "exactly one 200 waited: {queued:?}"
    );
    assert!(queued.iter().all(|q| q.is_none() || *q == Some("true")), "{queued:?}");
    let rejected: Vec<&(Resp, Duration)> = done.iter().filter(|(r, _)| r.status != 200).collect();
    assert_eq!(rejected.len(), 1, "{statuses:?}");
    let (r, took) = rejected[0];
    assert_eq!(
        (r.status, r.text().as_str()),
        (429, r#"{"error":"worker pool overflow"}"#)
    );
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(
        r.header("retry-after"),
        None,
        "no Retry-After on admission refusals (§5.2)"
    );
    assert!(
        *took < Duration::from_millis(600),
        "an overflow is refused at once, took {took:?}"
    );

    let h = e.get("/_fn/health").await.json();
    let p = pool_of(&h, SLOW);
    assert_eq!(
        p["queue_drops"],
        json!({"overflow": 1, "timeout": 0, "total": 1}),
        "{p}"
    );
    assert_eq!((p["active"].clone(), p["queued"].clone()), (json!(0), json!(0)), "{p}");
    assert_eq!((p["max_workers"].clone(), p["max_queue"].clone()), (json!(1), json!(1)));
    let summary = &h["functions"]["summary"];
    assert!(summary["pool_queue_overflow_drops"].as_u64() >= Some(1), "{summary}");
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn queue_timeout_is_counted_apart_from_overflow() {
    let e = pool_engine().await;
    let hold = spawn_get(e.addr(), "/short-wait/nap");
    wait_pool(&e, SHORT, 1, 0).await;
    let t = Instant::now();
    let r = e.get("/short-wait/nap").await;
    let took = t.elapsed();
    assert_eq!(
        (r.status, r.text().as_str()),
        (429, r#"{"error":"worker pool queue timeout"}"#)
    );
    assert_eq!(r.header("retry-after"), None);
    assert!(
        took >= Duration::from_millis(190) && took < Duration::from_millis(700),
        "refused after the 200 ms queue timeout, not {took:?}"
    );
    let (held, _) = hold.await.expect("hold");
    assert_eq!(held.status, 200);
    let h = e.get("/_fn/health").await.json();
    let p = pool_of(&h, SHORT);
    assert_eq!(
        p["queue_drops"],
        json!({"overflow": 0, "timeout": 1, "total": 1}),
        "{p}"
    );
    assert_eq!(p["queue_timeout_ms"], 200);
    assert!(h["functions"]["summary"]["pool_queue_timeout_drops"].as_u64() >= Some(1));
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn overflow_status_503_applies_to_both_refusals() {
    let e = pool_engine().await;
    // Warm first: a 5xx of a cold function also carries warming headers (see the ignored
    // test below); here only the pool's own answer is checked.
    assert_eq!(e.get("/short-wait-503/nap?s=0").await.status, 200);
    let hold = spawn_get(e.addr(), "/short-wait-503/nap");
    wait_pool(&e, SHORT_503, 1, 0).await;
    let waiting = spawn_get(e.addr(), "/short-wait-503/nap");
    wait_pool(&e, SHORT_503, 1, 1).await;
    let over = e.get("/short-wait-503/nap").await;
    assert_eq!(
        (over.status, over.text().as_str()),
        (503, r#"{"error":"worker pool overflow"}"#)
    );
    assert_eq!(over.header("retry-after"), None);
    let (timed_out, _) = waiting.await.expect("queued call");
    assert_eq!(
        (timed_out.status, timed_out.text().as_str()),
        (503, r#"{"error":"worker pool queue timeout"}"#)
    );
    assert_eq!(timed_out.header("retry-after"), None);
    assert_eq!(hold.await.expect("hold").0.status, 200);
    let p = live_pool(&e, SHORT_503);
    assert_eq!(p["overflow_status"], 503);
    assert_eq!(
        p["queue_drops"],
        json!({"overflow": 1, "timeout": 1, "total": 2}),
        "{p}"
    );
    e.stop().await;
}

/// §5.2: "No `Retry-After` on these." A pool refusal is not a runtime error (§5.3), yet a
/// function whose first call is still running is cold, and the gateway adds
/// `X-FastFN-Warming: true` + `Retry-After: 1` to every 5xx of a cold function.
#[tokio::test(flavor = "multi_thread")]
async fn pool_refusals_of_a_cold_function_carry_no_retry_after() {
    let e = pool_engine().await;
    let hold = spawn_get(e.addr(), "/short-wait-503/nap");
    wait_pool(&e, SHORT_503, 1, 0).await;
    let waiting = spawn_get(e.addr(), "/short-wait-503/nap");
    wait_pool(&e, SHORT_503, 1, 1).await;
    let over = e.get("/short-wait-503/nap").await;
    let (timed_out, _) = waiting.await.expect("queued call");
    assert_eq!(hold.await.expect("hold").0.status, 200);
    for r in [&over, &timed_out] {
        assert_eq!(r.status, 503, "{}", r.text());
        assert_eq!(r.header("retry-after"), None, "{}: {:?}", r.text(), r.headers);
        assert_eq!(r.header("x-fastfn-warming"), None, "{}: {:?}", r.text(), r.headers);
    }
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_hanging_up_in_the_queue_frees_its_place() {
    let e = pool_engine().await;
    let hold = spawn_get(e.addr(), "/slow-queue/nap?s=2");
    wait_pool(&e, SLOW, 1, 0).await;
    // Queue a second call on a raw keep-alive connection, then hang up.
    let mut raw = TcpStream::connect(e.addr()).await.expect("connect");
    raw.write_all(b"GET /slow-queue/nap?s=0 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .expect("write");
    wait_pool(&e, SLOW, 1, 1).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(raw);
    // Give the gateway a moment to see the hang-up (far less than the 2 s the first call holds).
    let until = Instant::now() + Duration::from_millis(500);
    while live_pool(&e, SLOW)["queued"] != 0 && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let r = e.get("/slow-queue/nap?s=0").await;
    assert_eq!(
        r.status,
        200,
        "the place was not freed: {} {}",
        r.text(),
        live_pool(&e, SLOW)
    );
    assert_eq!(
        r.header("x-fastfn-queued"),
        Some("true"),
        "it waited for the running call"
    );
    let (held, _) = hold.await.expect("hold");
    assert_eq!((held.status, held.header("x-fastfn-queued")), (200, None));
    let p = e.get("/_fn/health").await.json();
    let p = pool_of(&p, SLOW);
    assert_eq!((p["active"].clone(), p["queued"].clone()), (json!(0), json!(0)), "{p}");
    assert_eq!(p["queue_drops"]["total"], 0, "a hang-up is no drop: {p}");
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_saturated_function_does_not_delay_another() {
    let e = pool_engine().await;
    assert_eq!(e.get("/other/quick").await.status, 200, "warm the other function");
    let hold = spawn_get(e.addr(), "/slow-queue/nap?s=1.5");
    wait_pool(&e, SLOW, 1, 0).await;
    let waiting = spawn_get(e.addr(), "/slow-queue/nap?s=0");
    wait_pool(&e, SLOW, 1, 1).await;
    for i in 0..5 {
        let t = Instant::now();
        let r = e.get("/other/quick").await;
        let took = t.elapsed();
        assert_eq!(r.status, 200, "call {i}: {}", r.text());
        assert!(took < Duration::from_millis(100), "call {i} took {took:?}");
    }
    let p = live_pool(&e, SLOW);
    assert_eq!(
        (p["active"].clone(), p["queued"].clone()),
        (json!(1), json!(1)),
        "still saturated while the other function answered: {p}"
    );
    assert_eq!(hold.await.expect("hold").0.status, 200);
    let (queued, _) = waiting.await.expect("queued");
    assert_eq!((queued.status, queued.header("x-fastfn-queued")), (200, Some("true")));
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pool_events_show_the_saturation() {
    let e = pool_engine().await;
    // Pool changes travel on the live channel (with request batches), not the lifecycle one.
    let mut rx = e.engine.events().subscribe_live();
    let hold = spawn_get(e.addr(), "/slow-queue/nap?s=0.5");
    wait_pool(&e, SLOW, 1, 0).await;
    let waiting = spawn_get(e.addr(), "/slow-queue/nap?s=0");
    wait_pool(&e, SLOW, 1, 1).await;
    assert_eq!(hold.await.expect("hold").0.status, 200);
    assert_eq!(waiting.await.expect("queued").0.status, 200);
    // The numbers are sent a few times per second when they changed (`inspect::live`): wait
    // for the drained pool after the saturated one.
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let ev = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("no drained pool event: {seen:?}"))
            .expect("live channel");
        if let EngineEvent::Pool { key, stats } = ev {
            if key == SLOW {
                seen.push(stats);
                if (stats.active, stats.queued) == (0, 0) && seen.iter().any(|s| s.queued >= 1) {
                    break;
                }
            }
        }
    }
    assert!(seen.iter().any(|s| s.active >= 1), "{seen:?}");
    assert!(seen.iter().any(|s| s.active >= 1 && s.queued >= 1), "{seen:?}");
    e.stop().await;
}
