//! The waterfall's finer stages: `connect` (the first call to a daemon opens a connection:
//! connect and protocol hello) and `handler` (the call's time inside its daemon, as python,
//! node and php report it), apart from `runtime`; `Server-Timing` names them.

use crate::support::start;

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
/// python does; the in-process Lua has no daemon to report it (0, its time is in `runtime`).
#[tokio::test(flavor = "multi_thread")]
async fn node_and_php_daemons_report_their_handler_time_lua_does_not() {
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
    assert_eq!(php.get("/out-lua").await.status, 200);
    let s = stages_of(&php, "/out-lua").await;
    assert_eq!(s["handler_us"], 0, "lua: {s}");
    assert!(s["runtime_us"].as_u64().is_some_and(|r| r > 0), "lua: {s}");
    php.stop().await;
}

/// The stages of the newest record of `path`.
async fn stages_of(e: &crate::support::TestEngine, path: &str) -> serde_json::Value {
    let list = e.get("/_fn/requests?limit=20").await.json();
    list["requests"]
        .as_array()
        .and_then(|a| a.iter().find(|r| r["path"] == path))
        .map(|r| r["stages"].clone())
        .unwrap_or_else(|| panic!("no record of {path}: {list}"))
}
