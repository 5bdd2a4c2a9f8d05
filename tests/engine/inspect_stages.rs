//! The waterfall's finer stages: `connect` (the first call to a daemon opens a connection:
//! connect and protocol hello) and `handler` (the call's time inside its daemon, as python,
//! node and php report it), apart from `runtime`; `Server-Timing` names them.

use crate::support::{copy_fixture, request, start, start_in, wait_for, TestEngine};
use serde_json::Value;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn the_first_call_records_its_connect_stage_apart() {
    let e = start("inspect", &[("FN_RUNTIMES", "python"), ("FN_DEBUG_HEADERS", "1")]).await;
    e.ready().await;
    // No call has run: the health probes use connections of their own, so this one opens the
    // first call connection to the daemon it is sent to.
    let r = e.get("/slow").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let timing = r.header("server-timing").unwrap_or_default().to_string();
    assert!(timing.contains("connect;dur="), "{timing}");
    let list = e.get("/_fn/requests?limit=5").await.json();
    let rec = list["requests"]
        .as_array()
        .and_then(|a| a.iter().find(|r| r["path"] == "/slow"))
        .cloned()
        .unwrap_or_else(|| panic!("no record: {list}"));
    let s = &rec["stages"];
    let connect = s["connect_us"]
        .as_u64()
        .unwrap_or_else(|| panic!("no connect stage: {s}"));
    assert!(connect > 0, "a new connection took no time: {s}");
    // The handler's 60 ms are its own stage (the daemon reports them), not in `connect`.
    assert!(s["handler_us"].as_u64().unwrap() >= 60_000, "{s}");
    assert!(
        s["runtime_us"].as_u64().unwrap() < s["handler_us"].as_u64().unwrap(),
        "{s}"
    );
    assert!(timing.contains("handler;dur="), "{timing}");
    e.stop().await;
}

/// Each daemon runtime reports its handler time (`handler_us` in its reply): node and php as
/// python does (Lua measures its own: see below).
#[tokio::test(flavor = "multi_thread")]
async fn node_and_php_daemons_report_their_handler_time() {
    let node = start("inspect", &[("FN_RUNTIMES", "node")]).await;
    node.ready().await;
    assert_eq!(node.get("/hello-js").await.status, 200);
    let s = stages_of(&node, "/hello-js").await;
    assert!(s["handler_us"].as_u64().is_some_and(|h| h > 0), "node: {s}");
    node.stop().await;

    let php = start("inspect-rt", &[("FN_RUNTIMES", "php,lua")]).await;
    php.ready().await;
    assert_eq!(php.get("/out-php").await.status, 200);
    let s = stages_of(&php, "/out-php").await;
    assert!(s["handler_us"].as_u64().is_some_and(|h| h > 0), "php: {s}");
    php.stop().await;
}

/// Every stage of the waterfall, in µs (`fault_us` apart: no lab here).
pub(crate) const STAGES: [&str; 12] = [
    "route_us",
    "deps_us",
    "admission_us",
    "queue_us",
    "body_us",
    "connect_us",
    "build_us",
    "cold_us",
    "runtime_us",
    "handler_us",
    "reply_us",
    "respond_us",
];

/// The newest record of `path`, with its stages checked to add up to its total within 5 %
/// (the rest is hyper's own parsing and writing).
async fn record_adding_up(e: &TestEngine, path: &str) -> Value {
    let rec = newest(e, path).await;
    let s = &rec["stages"];
    let sum: u64 = STAGES
        .iter()
        .map(|k| s[k].as_u64().unwrap_or_else(|| panic!("{k} missing in {s}")))
        .sum();
    let total = rec["latency_us"].as_u64().unwrap();
    assert!(sum <= total, "{path}: stages {sum} µs over the total {total} µs: {s}");
    assert!(
        (total - sum) as f64 <= total as f64 * 0.05,
        "{path}: stages {sum} µs vs total {total} µs: {s}"
    );
    rec
}

/// A request that waited in its function's queue has the wait as `queue_us`, apart from the
/// admission check.
#[tokio::test(flavor = "multi_thread")]
async fn a_queued_request_shows_its_queue_wait() {
    let e = start("inspect-stages", &[("FN_RUNTIMES", "python")]).await;
    e.ready().await;
    let addr = e.addr();
    let hold = tokio::spawn(async move { request(addr, "GET", "/hold?s=0.6", &[], None).await });
    wait_for(Duration::from_secs(10), || {
        let h = e.engine.health();
        h["functions"]["states"]
            .as_array()
            .and_then(|s| s.iter().find(|st| st["key"] == "python/hold/handler.py@default"))
            .is_some_and(|st| st["worker_pool"]["active"] == 1)
    })
    .await;
    let r = e.get("/hold").await;
    assert_eq!(
        (r.status, r.header("x-fastfn-queued")),
        (200, Some("true")),
        "{}",
        r.text()
    );
    assert_eq!(hold.await.unwrap().status, 200);
    let rec = record_adding_up(&e, "/hold").await;
    assert_eq!(rec["queued"], true, "{rec}");
    let s = &rec["stages"];
    let queue = s["queue_us"].as_u64().unwrap();
    assert!(queue > 0, "{s}");
    assert!(
        s["admission_us"].as_u64().unwrap() < queue,
        "the check is apart from the wait: {s}"
    );
    // The one that held the slot did not queue.
    let list = e.get("/_fn/requests?limit=20").await.json();
    let first = list["requests"]
        .as_array()
        .and_then(|a| a.iter().find(|r| r["query"] == "s=0.6"))
        .cloned()
        .unwrap_or_else(|| panic!("{list}"));
    assert_eq!(
        (first["queued"].clone(), first["stages"]["queue_us"].clone()),
        (false.into(), 0.into())
    );
    e.stop().await;
}

/// Lua runs in-process: the engine measures the handler's own call (`handler_us`), and a
/// cold call's module load (`cold_us`) apart from it.
#[tokio::test(flavor = "multi_thread")]
async fn a_lua_call_shows_its_handler_time_and_a_cold_one_its_module_load() {
    // `spin.lua`: 20 ms of module load, 30 ms of call.
    let e = start("inspect-stages", &[("FN_RUNTIMES", "lua"), ("FN_DEBUG_HEADERS", "1")]).await;
    e.ready().await;
    let r = e.get("/spin").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let timing = r.header("server-timing").unwrap_or_default().to_string();
    assert!(timing.contains("cold;dur="), "{timing}");
    let rec = record_adding_up(&e, "/spin").await;
    let s = &rec["stages"];
    assert_eq!(rec["cold"], true, "{rec}");
    let cold = s["cold_us"].as_u64().unwrap();
    let handler = s["handler_us"].as_u64().unwrap();
    assert!(cold >= 20_000 && cold < handler, "the module load: {s}");
    assert!(handler >= 30_000, "{s}");
    assert!(s["runtime_us"].as_u64().unwrap() < 20_000, "neither is in runtime: {s}");
    // Warm: the state is reused (no load), the handler still measured.
    assert_eq!(e.get("/spin").await.status, 200);
    let s = record_adding_up(&e, "/spin").await["stages"].clone();
    assert_eq!(s["cold_us"], 0, "{s}");
    assert!(s["handler_us"].as_u64().unwrap() >= 30_000, "{s}");
    e.stop().await;
}

/// The first call after a Rust build carries the build as its own bar (`build_us`) and the
/// process start as `cold_us`; the next call has neither.
#[tokio::test(flavor = "multi_thread")]
async fn a_first_call_after_a_rust_build_shows_its_build_time() {
    // Builds write next to the handlers: use a copy.
    let dir = copy_fixture("inspect-rt");
    let e = start_in(dir.path(), &[("FN_RUNTIMES", "rust"), ("FN_DEBUG_HEADERS", "1")]).await;
    e.ready().await;
    let r = e.get("/out-rs").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let timing = r.header("server-timing").unwrap_or_default().to_string();
    assert!(timing.contains("build;dur="), "{timing}");
    let rec = record_adding_up(&e, "/out-rs").await;
    let s = &rec["stages"];
    let build = s["build_us"].as_u64().unwrap();
    // A cargo build takes far longer than a millisecond.
    assert!(build > 1_000, "{s}");
    assert!(s["cold_us"].as_u64().unwrap() > 0, "the process start: {s}");
    assert!(
        build > s["runtime_us"].as_u64().unwrap(),
        "the build is not in runtime: {s}"
    );
    assert_eq!(e.get("/out-rs").await.status, 200);
    // A warm call of a millisecond: its stages are checked, not their 5 % (hyper's share).
    let s = stages_of(&e, "/out-rs").await;
    assert_eq!(
        (s["build_us"].clone(), s["cold_us"].clone()),
        (0.into(), 0.into()),
        "{s}"
    );
    e.stop().await;
}

/// The stages of the newest record of `path`.
async fn stages_of(e: &TestEngine, path: &str) -> Value {
    newest(e, path).await["stages"].clone()
}

/// A daemon's cold call (python and node import the handler, php starts a worker and includes
/// the file) reports that load, which the waterfall shows as `cold` apart from `handler`; the
/// next call of the same function has none. (The 5 % sum is checked on the slower calls above:
/// on a call of a few hundred µs hyper's own share is more than that.)
#[tokio::test(flavor = "multi_thread")]
async fn a_daemons_cold_call_shows_its_load_apart_from_the_handler() {
    for (fixture, runtimes, path) in [
        ("inspect", "python", "/hello"),
        ("inspect", "node", "/hello-js"),
        ("inspect-rt", "php,lua", "/out-php"),
    ] {
        let e = start(fixture, &[("FN_RUNTIMES", runtimes)]).await;
        e.ready().await;
        assert_eq!(e.get(path).await.status, 200, "{runtimes}");
        let first = newest(&e, path).await;
        let s = &first["stages"];
        assert_eq!(first["cold"], true, "{runtimes}: {first}");
        let sum: u64 = STAGES.iter().map(|k| s[k].as_u64().unwrap_or(0)).sum();
        assert!(sum <= first["latency_us"].as_u64().unwrap(), "{runtimes}: {first}");
        assert!(s["cold_us"].as_u64().is_some_and(|c| c > 0), "{runtimes}: {s}");
        assert_eq!(e.get(path).await.status, 200, "{runtimes}");
        let second = newest(&e, path).await;
        assert_ne!(first["id"], second["id"]);
        assert_eq!(second["stages"]["cold_us"], 0, "{runtimes}: {second}");
        e.stop().await;
    }
}

/// The newest record of `path`.
async fn newest(e: &TestEngine, path: &str) -> Value {
    let list = e.get("/_fn/requests?limit=20").await.json();
    list["requests"]
        .as_array()
        .and_then(|a| a.iter().find(|r| r["path"] == path))
        .cloned()
        .unwrap_or_else(|| panic!("no record of {path}: {list}"))
}
