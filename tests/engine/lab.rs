//! The lab (`/_fn/lab`): faults on sockets and functions, force cold, and the engine's own
//! load generator, against real daemons over real sockets and HTTP.
//!
//! `fixtures/lab/hello`: one python function that answers at once, with debug headers on (so
//! each answer names its socket and carries `Server-Timing`).

use crate::support::{start_in, Resp, TestEngine};
use fastfn::events::EngineEvent;
use serde_json::{json, Value};
use std::time::Duration;
use tokio::time::Instant;

pub(crate) const WRITE: &[(&str, &str)] = &[("X-Fn-Request", "1"), ("Content-Type", "application/json")];

/// The lab's tests send bursts of load; one at a time, so the wrk comparison measures the
/// engine rather than its neighbours. (A tokio mutex: each test has its own runtime.)
pub(crate) static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The serial lock and the project's copy (load runs are saved in the project, so each test
/// runs on a copy of the fixture), held together for the test's length.
pub(crate) type Held = (tokio::sync::MutexGuard<'static, ()>, tempfile::TempDir);

async fn lab(daemons: &str) -> (Held, TestEngine) {
    let serial = SERIAL.lock().await;
    let dir = crate::support::copy_fixture("lab");
    let e = start_in(
        dir.path(),
        &[("FN_RUNTIMES", "python"), ("FN_RUNTIME_DAEMONS", daemons)],
    )
    .await;
    e.ready().await;
    ((serial, dir), e)
}

pub(crate) async fn post(e: &TestEngine, path: &str, body: Value) -> Resp {
    e.send("POST", path, WRITE, Some(body.to_string().as_bytes())).await
}

async fn set_fault(e: &TestEngine, spec: Value) -> Value {
    let r = post(e, "/_fn/lab/faults", spec).await;
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()
}

/// A load run through the lab, waited for.
pub(crate) async fn load(e: &TestEngine, spec: Value) -> Value {
    let mut spec = spec;
    spec["wait"] = json!(true);
    let r = post(e, "/_fn/lab/load", spec).await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

fn status_count(summary: &Value, status: &str) -> u64 {
    summary["statuses"][status].as_u64().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn writes_are_guarded_and_bad_faults_refused() {
    let (_serial, e) = lab("python=1").await;
    let spec = json!({"kind": "pause", "runtime": "python", "socket": 1});
    let r = e
        .send("POST", "/_fn/lab/faults", &[], Some(spec.to_string().as_bytes()))
        .await;
    assert_eq!(r.status, 403, "CSRF header required: {}", r.text());
    assert_eq!(
        e.send(
            "POST",
            "/_fn/lab/faults",
            &[("Host", "evil.example"), ("X-Fn-Request", "1")],
            Some(spec.to_string().as_bytes())
        )
        .await
        .status,
        421,
        "a foreign Host is refused"
    );
    let r = post(
        &e,
        "/_fn/lab/faults",
        json!({"kind": "function_fail", "function": "nope", "percent": 10, "status": 503}),
    )
    .await;
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(r.json()["code"], "lab.unknown_function");
    let r = post(
        &e,
        "/_fn/lab/faults",
        json!({"kind": "function_fail", "function": "hello", "percent": 120, "status": 503}),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.json()["code"], "lab.invalid_fault");
    let r = post(
        &e,
        "/_fn/lab/faults",
        json!({"kind": "pause", "runtime": "python", "socket": 3}),
    )
    .await;
    assert_eq!(r.status, 422, "{}", r.text());
    let r = post(&e, "/_fn/lab/load", json!({"path": "/_fn/health", "concurrency": 2})).await;
    assert_eq!(r.status, 400, "the admin API is not a load target: {}", r.text());
    // Nothing was set by the refused calls.
    assert!(e.engine.health().get("faults").is_none());
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_paused_socket_is_skipped_with_no_failed_request() {
    let (_serial, e) = lab("python=2").await;
    // Both sockets serve before the pause.
    let before = load(&e, json!({"path": "/hello", "count": 40, "concurrency": 4})).await;
    assert_eq!(status_count(&before["summary"], "200"), 40, "{before}");
    let shares = before["summary"]["sockets"].as_object().cloned().unwrap_or_default();
    assert_eq!(shares.len(), 2, "both sockets take a share: {before}");

    let fault = set_fault(&e, json!({"kind": "pause", "runtime": "python", "socket": 1})).await;
    assert_eq!(e.engine.health()["faults"][0]["spec"]["kind"], "pause");
    // A burst while paused: every request answered, none by socket 1.
    let run = load(&e, json!({"path": "/hello", "count": 400, "concurrency": 8})).await;
    let s = &run["summary"];
    assert_eq!(s["errors"], 0, "{s}");
    assert_eq!(status_count(s, "200"), 400, "{s}");
    // The run's per-socket share: all of it on socket 2.
    assert_eq!(s["sockets"], json!({"2": 400}), "{s}");
    let mut skipped = 0;
    for _ in 0..20 {
        let r = e.get("/hello").await;
        assert_eq!(r.status, 200);
        assert_eq!(
            r.header("x-fn-runtime-socket-index"),
            Some("2"),
            "paused socket 1 served"
        );
        if r.header("x-fastfn-fault") == Some("skipped paused python socket 1") {
            skipped += 1;
        }
    }
    assert!(skipped > 0, "round robin met the paused socket and said so");
    // The pause is not a crash: socket 1 stays healthy.
    assert_eq!(e.engine.health()["runtimes"]["python"]["health"]["up"], true);

    let r = e
        .send("DELETE", &format!("/_fn/lab/faults/{}", fault["id"]), WRITE, None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(e.engine.health().get("faults").is_none());
    let mut sockets = std::collections::BTreeSet::new();
    for _ in 0..6 {
        let r = e.get("/hello").await;
        sockets.insert(r.header("x-fn-runtime-socket-index").unwrap_or("").to_string());
        assert!(r.header("x-fastfn-fault").is_none());
    }
    assert_eq!(sockets.len(), 2, "both sockets serve again: {sockets:?}");
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn injected_latency_shows_in_the_waterfall() {
    let (_serial, e) = lab("python=1").await;
    let mut live = e.engine.events().subscribe_live();
    set_fault(
        &e,
        json!({"kind": "function_latency", "function": "hello", "fixed_ms": 150}),
    )
    .await;
    let t = Instant::now();
    let r = e.get("/hello").await;
    assert_eq!(r.status, 200);
    assert!(t.elapsed() >= Duration::from_millis(150));
    assert_eq!(r.header("x-fastfn-fault"), Some("latency 150 ms on function hello"));
    let timing = r.header("server-timing").unwrap_or("");
    assert!(timing.contains("fault;dur=150."), "{timing}");
    let record = loop {
        match tokio::time::timeout(Duration::from_secs(5), live.recv()).await {
            Ok(Ok(EngineEvent::Requests { requests, .. })) => match requests.into_iter().find(|r| r.path == "/hello") {
                Some(rec) => break rec,
                None => continue,
            },
            Ok(Ok(_)) => continue,
            other => panic!("no request record: {other:?}"),
        }
    };
    assert!(record.stages.fault_us >= 150_000, "{:?}", record.stages);
    assert!(
        record.stages.runtime_us < 150_000,
        "the runtime stage keeps its own time"
    );
    assert_eq!(record.fault.as_deref(), Some("latency 150 ms on function hello"));

    // Latency on a socket instead: counted apart from the runtime stage too.
    assert_eq!(e.send("DELETE", "/_fn/lab/faults", WRITE, None).await.status, 200);
    set_fault(
        &e,
        json!({"kind": "socket_latency", "runtime": "python", "socket": 1, "fixed_ms": 80, "jitter_ms": 20}),
    )
    .await;
    let r = e.get("/hello").await;
    let fault = r.header("x-fastfn-fault").unwrap_or("");
    assert!(
        fault.starts_with("latency ") && fault.ends_with(" ms on python socket 1"),
        "{fault}"
    );
    let ms: u64 = fault.split(' ').nth(1).unwrap().parse().unwrap();
    assert!((80..=100).contains(&ms), "{ms}");
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_failure_rate_holds_over_a_thousand_calls() {
    let (_serial, e) = lab("python=1").await;
    set_fault(
        &e,
        json!({"kind": "function_fail", "function": "hello", "percent": 30, "status": 503}),
    )
    .await;
    let run = load(&e, json!({"path": "/hello", "count": 1000, "concurrency": 8})).await;
    let s = &run["summary"];
    assert_eq!(s["requests"], 1000, "{s}");
    let failed = status_count(s, "503");
    assert!((250..=350).contains(&failed), "30 % ± 5 of 1000, got {failed}: {s}");
    assert_eq!(failed + status_count(s, "200"), 1000, "{s}");
    // One injected answer, seen whole.
    let r = loop {
        let r = e.get("/hello").await;
        if r.status == 503 {
            break r;
        }
    };
    assert_eq!(r.json()["error"], "failure injected by the lab");
    assert_eq!(
        r.header("x-fastfn-fault"),
        Some("failure injected (503) on function hello")
    );
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn faults_are_cleared_with_one_call_and_on_close() {
    let (_serial, e) = lab("python=2").await;
    set_fault(&e, json!({"kind": "pause", "runtime": "python", "socket": 2})).await;
    set_fault(
        &e,
        json!({"kind": "function_latency", "function": "hello", "fixed_ms": 5}),
    )
    .await;
    // Setting the same fault again updates it rather than stacking a second.
    set_fault(
        &e,
        json!({"kind": "function_latency", "function": "hello", "fixed_ms": 7}),
    )
    .await;
    assert_eq!(e.engine.health()["faults"].as_array().map(Vec::len), Some(2));
    let r = e.send("DELETE", "/_fn/lab/faults", WRITE, None).await;
    assert_eq!(r.json()["cleared"], 2);
    assert!(e.engine.health().get("faults").is_none());
    assert!(e.get("/hello").await.header("x-fastfn-fault").is_none());

    set_fault(
        &e,
        json!({"kind": "function_fail", "function": "hello", "percent": 100, "status": 500}),
    )
    .await;
    assert_eq!(e.get("/hello").await.status, 500);
    let engine = e.engine.clone();
    e.stop().await;
    assert!(
        engine.health().get("faults").is_none(),
        "closing the project clears faults"
    );
    // And the next engine on the same project starts clean.
    let again = start_in(&crate::support::fixture("lab"), &[("FN_RUNTIMES", "python")]).await;
    again.ready().await;
    assert_eq!(again.get("/hello").await.status, 200);
    assert!(again.engine.health().get("faults").is_none());
    again.stop().await;
}

fn function_state(e: &TestEngine) -> Value {
    let h = e.engine.health();
    h["functions"]["states"]
        .as_array()
        .and_then(|s| s.iter().find(|st| st["name"] == "hello").cloned())
        .unwrap_or_else(|| panic!("no hello in {h}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn force_cold_makes_the_next_call_cold_and_measures_it() {
    let (_serial, e) = lab("python=1").await;
    assert_eq!(e.get("/hello").await.header("x-fastfn-function-state"), Some("cold"));
    assert_eq!(e.get("/hello").await.header("x-fastfn-function-state"), Some("warm"));
    assert_eq!(function_state(&e)["state"], "warm");

    let r = post(&e, "/_fn/lab/cold", json!({"function": "hello"})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let key = function_state(&e)["key"].as_str().unwrap().to_string();
    assert_eq!(r.json()["cooled"], json!([key]));
    assert_eq!(function_state(&e)["state"], "cold");
    let r = e.get("/hello").await;
    assert_eq!(r.header("x-fastfn-function-state"), Some("cold"));
    assert_eq!(r.header("x-fastfn-warmed"), Some("true"));
    assert_eq!(e.get("/hello").await.header("x-fastfn-function-state"), Some("warm"));

    let state = e.get("/_fn/lab").await.json();
    let colds = state["cold_starts"][&key].as_array().cloned().unwrap_or_default();
    assert_eq!(colds.len(), 2, "the first call and the forced one: {state}");
    for c in &colds {
        assert_eq!(c["status"], 200);
        assert!(c["latency_us"].as_u64().unwrap() > 0);
        assert!(c["runtime_us"].as_u64().unwrap() <= c["latency_us"].as_u64().unwrap());
    }
    let r = post(&e, "/_fn/lab/cold", json!({"function": "missing"})).await;
    assert_eq!(r.status, 422);
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_load_run_is_live_and_stoppable() {
    let (_serial, e) = lab("python=1").await;
    let r = post(
        &e,
        "/_fn/lab/load",
        json!({"path": "/hello", "duration_ms": 20000, "concurrency": 4, "rate": 200}),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let id = r.json()["id"].as_u64().unwrap();
    // A second run while one goes is refused.
    let r2 = post(
        &e,
        "/_fn/lab/load",
        json!({"path": "/hello", "count": 10, "concurrency": 1}),
    )
    .await;
    assert_eq!(r2.status, 409, "{}", r2.text());
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let live = e.get(&format!("/_fn/lab/load/{id}")).await.json();
    assert_eq!(live["state"], "running");
    assert!(live["series"].as_array().unwrap().len() >= 2, "{live}");
    let rps = live["series"][1]["rps"].as_f64().unwrap();
    assert!((100.0..=300.0).contains(&rps), "rate 200/s, point says {rps}");
    let r = post(&e, "/_fn/lab/load/stop", json!({})).await;
    assert_eq!(r.json()["stopped"], 1);
    let t = Instant::now();
    let done = loop {
        let v = e.get(&format!("/_fn/lab/load/{id}")).await.json();
        if v["state"] != "running" || t.elapsed() > Duration::from_secs(5) {
            break v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(done["state"], "stopped", "{done}");
    let s = &done["summary"];
    assert!(s["duration_ms"].as_u64().unwrap() < 5000, "{s}");
    assert_eq!(s["errors"], 0);
    assert!(s["p50_ms"].as_f64().unwrap() <= s["p99_ms"].as_f64().unwrap());
    e.stop().await;
}

/// `fastfn bench ROUTE -c … -n …` against a running engine prints the lab's summary.
#[tokio::test(flavor = "multi_thread")]
async fn fastfn_bench_prints_the_summary() {
    let (_serial, e) = lab("python=1").await;
    let port = e.addr().port().to_string();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_fastfn"))
        .args(["bench", "/hello", "-c", "4", "-n", "300", "--port", &port])
        .output()
        .await
        .expect("run fastfn bench");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.starts_with("GET /hello  concurrency 4"), "{text}");
    assert!(text.contains("requests  300 in "), "{text}");
    assert!(text.contains("req/s"), "{text}");
    assert!(
        text.contains("p50 ") && text.contains("p95 ") && text.contains("p99 "),
        "{text}"
    );
    assert!(text.contains("statuses  200: 300"), "{text}");
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_fastfn"))
        .args(["bench", "/_fn/health", "--port", &port])
        .output()
        .expect("run");
    assert_eq!(bad.status.code(), Some(2));
    e.stop().await;
}

/// `wrk`'s requests/s, parsed from its report.
fn wrk_rps(report: &str) -> Option<f64> {
    report
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
}

/// The engine's own load and `wrk` on the same route in the same run: within 15 % of each
/// other, and the engine not the slower by more than that. Each tool runs three times,
/// alternately, and its best run counts (the machine is shared; one noisy second should not
/// decide).
#[tokio::test(flavor = "multi_thread")]
async fn the_load_lab_keeps_up_with_wrk() {
    if which::which("wrk").is_err() {
        eprintln!("skipped: wrk is not installed (apt-get install -y wrk)");
        return;
    }
    let (_serial, e) = lab("python=1").await;
    let url = format!("http://{}/hello", e.addr());
    // Warm both the function and the daemon's connections.
    load(&e, json!({"path": "/hello", "count": 400, "concurrency": 16})).await;
    let (mut ours, mut theirs) = (0.0f64, 0.0f64);
    for _ in 0..3 {
        let run = load(&e, json!({"path": "/hello", "duration_ms": 3000, "concurrency": 16})).await;
        let s = &run["summary"];
        assert_eq!(s["errors"], 0, "{s}");
        // On a busy shared machine a few calls may time out in the pool (504), for wrk too.
        assert!(
            status_count(s, "200") * 100 >= s["requests"].as_u64().unwrap() * 95,
            "{s}"
        );
        ours = ours.max(s["rps"].as_f64().unwrap());
        let out = tokio::process::Command::new("wrk")
            .args(["-t", "2", "-c", "16", "-d", "3s", &url])
            .output()
            .await
            .expect("run wrk");
        let report = String::from_utf8_lossy(&out.stdout).to_string();
        theirs = theirs.max(wrk_rps(&report).unwrap_or_else(|| panic!("no Requests/sec in {report}")));
    }
    eprintln!("load lab {ours:.0} req/s, wrk {theirs:.0} req/s");
    let gap = (ours - theirs).abs() / theirs;
    // The bound is 15 %: `cargo test --release` checks it. A debug build runs our
    // client unoptimised against wrk's -O2 C, on the same two cores as the engine; there the
    // lab measured 10-23 % below wrk on the shared CI machine, so the debug bound is 30 %
    // (it still catches a generator that became the bottleneck).
    let bound = if cfg!(debug_assertions) { 0.30 } else { 0.15 };
    assert!(
        gap <= bound,
        "lab {ours:.0} vs wrk {theirs:.0} req/s: {:.0} % apart (bound {:.0} %)",
        gap * 100.0,
        bound * 100.0
    );
    e.stop().await;
}

/// Clients that hang up mid-call (a timed run drops the requests in flight at its end, 16 at
/// a time) must not break the daemon connections for the calls that follow: every call of the
/// next run is answered. Before the mux wrote frames from a task of its own, a caller dropped
/// while flushing left the connection's outbox stuck (or half a frame on the wire), and a
/// dozen of the next 400 calls timed out (504) on one daemon.
#[tokio::test(flavor = "multi_thread")]
async fn hang_ups_in_flight_leave_the_daemon_connections_working() {
    let (_serial, e) = lab("python=1").await;
    for _ in 0..2 {
        let run = load(&e, json!({"path": "/hello", "duration_ms": 1500, "concurrency": 16})).await;
        assert_eq!(status_count(&run["summary"], "504"), 0, "{}", run["summary"]);
    }
    let run = load(&e, json!({"path": "/hello", "count": 400, "concurrency": 16})).await;
    let s = &run["summary"];
    assert_eq!(status_count(s, "200"), 400, "every call of the next run answered: {s}");
    e.stop().await;
}
