//! The waterfall's `connect` stage: the first call to a daemon opens a connection (connect and
//! protocol hello) and records that time apart from the handler's; `Server-Timing` names it.

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
