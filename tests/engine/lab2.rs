//! The lab's second part: a dependency install made to fail, and force cold per runtime
//! (its daemons restarted one socket at a time while load runs against them).
//!
//! `fixtures/lab2`: python functions `withdeps` (a `requirements.txt` with nothing to
//! download, so its install is real and offline), `broken` (a requirement pip refuses at
//! once: a real install failure to compare with), `plain` (no dependencies) and `narrow` (two
//! workers, a queue of two, 50 ms a call: load fills it and it drops).

use crate::lab::{load, post, SERIAL, WRITE};
use crate::support::{copy_fixture, start, start_in, wait_for, TestEngine};
use serde_json::{json, Value};
use std::time::Duration;

/// The install of `function` as health lists it.
fn install(e: &TestEngine, function: &str) -> Value {
    let h = e.engine.health();
    h["deps"]
        .as_array()
        .and_then(|d| d.iter().find(|s| s["function"] == function).cloned())
        .unwrap_or(Value::Null)
}

async fn install_state(e: &TestEngine, function: &str, state: &str) {
    wait_for(Duration::from_secs(60), || install(e, function)["state"] == state).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_install_fault_fails_like_an_install_and_clears_into_a_retry() {
    let _serial = SERIAL.lock().await;
    let dir = copy_fixture("lab2");
    let e = start_in(dir.path(), &[("FN_RUNTIMES", "python")]).await;
    e.ready().await;
    install_state(&e, "withdeps", "ready").await;
    install_state(&e, "broken", "failed").await;
    assert_eq!(e.get("/withdeps").await.status, 200);
    // What a real failed install answers, to hold the injected one to.
    let real = e.get("/broken").await;
    assert_eq!(real.status, 503, "{}", real.text());

    // Only a function with something to install can have its install fail.
    let r = post(&e, "/_fn/lab/faults", json!({"kind": "deps_fail", "function": "plain"})).await;
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(r.json()["code"], "lab.no_install");

    let r = post(
        &e,
        "/_fn/lab/faults",
        json!({"kind": "deps_fail", "function": "withdeps"}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["id"].as_u64().unwrap();
    assert_eq!(e.engine.health()["faults"][0]["spec"]["kind"], "deps_fail");
    // The install runs again and fails, as an install does: health, then the answer.
    install_state(&e, "withdeps", "failed").await;
    let status = install(&e, "withdeps");
    assert_eq!(status["state"], "failed", "{status}");
    assert!(
        status["error"].as_str().unwrap().starts_with("`pip install"),
        "{status}"
    );
    assert!(
        status["error"].as_str().unwrap().contains("fault injected by the lab"),
        "{status}"
    );
    let r = e.get("/withdeps").await;
    assert_eq!(r.status, real.status, "{}", r.text());
    let (body, real_body) = (r.json(), real.json());
    assert_eq!(body["error"], real_body["error"], "{body} vs {real_body}");
    assert_eq!(
        body.as_object()
            .unwrap()
            .keys()
            .filter(|k| *k != "package")
            .collect::<Vec<_>>(),
        real_body
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| *k != "package")
            .collect::<Vec<_>>(),
    );
    assert!(
        body["output"].as_str().unwrap().contains("fault injected by the lab"),
        "{body}"
    );
    // Named as a fault on the answer, as every fault is; the real failure is not.
    assert_eq!(
        r.header("x-fastfn-fault"),
        Some("dependency install made to fail on function withdeps")
    );
    assert!(real.header("x-fastfn-fault").is_none());
    // Still failing a while later: the fault holds until cleared.
    assert_eq!(e.get("/withdeps").await.status, 503);

    // Cleared: the install waits for the next call, which installs for real and is answered.
    let r = e.send("DELETE", &format!("/_fn/lab/faults/{id}"), WRITE, None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(install(&e, "withdeps")["state"], "deferred");
    let r = e.get("/withdeps").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), "deps are installed");
    assert_eq!(install(&e, "withdeps")["state"], "ready");
    // The real failure was never touched by the fault.
    assert_eq!(install(&e, "broken")["state"], "failed");
    e.stop().await;
}

/// Force cold on a runtime while the lab's own load runs against it: its daemons are
/// restarted one at a time (new pids), not one call fails, and the next call is cold.
async fn force_cold_runtime_under_load(daemons: &str, sockets: usize) {
    let _serial = SERIAL.lock().await;
    let dir = copy_fixture("lab");
    let e = start_in(
        dir.path(),
        &[("FN_RUNTIMES", "python"), ("FN_RUNTIME_DAEMONS", daemons)],
    )
    .await;
    e.ready().await;
    assert_eq!(e.get("/hello").await.status, 200);
    assert_eq!(e.get("/hello").await.header("x-fastfn-function-state"), Some("warm"));
    let pids_before = crate::support::health_pids(&e.engine.health());
    assert_eq!(pids_before.len(), sockets, "{pids_before:?}");

    let r = post(
        &e,
        "/_fn/lab/load",
        json!({"path": "/hello", "duration_ms": 60000, "concurrency": 4}),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let id = r.json()["id"].as_u64().unwrap();
    // Load is flowing before the restart starts.
    let mut flowing = false;
    for _ in 0..400 {
        let live = e.get(&format!("/_fn/lab/load/{id}")).await.json();
        if live["summary"]["requests"].as_u64().unwrap_or(0) >= 20 {
            flowing = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(flowing, "the load run never got going");

    let before_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let addr = e.addr();
    let cold = tokio::spawn(async move {
        let body = json!({"runtime": "python"}).to_string();
        crate::support::request(addr, "POST", "/_fn/lab/cold", WRITE, Some(body.as_bytes())).await
    });
    // Calls made meanwhile say which socket they skipped, and why.
    let mut skipped = std::collections::BTreeSet::new();
    while !cold.is_finished() {
        let r = e.get("/hello").await;
        assert_eq!(r.status, 200, "{}", r.text());
        if let Some(f) = r.header("x-fastfn-fault") {
            skipped.insert(f.to_string());
        }
    }
    if sockets == 2 {
        assert!(
            skipped
                .iter()
                .any(|f| f.starts_with("skipped restarting python socket ")),
            "{skipped:?}"
        );
    }
    let r = cold.await.unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let answer = r.json();
    let restarted = answer["restarted"].as_array().cloned().unwrap_or_default();
    assert_eq!(restarted.len(), sockets, "{answer}");
    for (k, s) in restarted.iter().enumerate() {
        assert_eq!(s["socket"], k + 1, "{answer}");
        assert_ne!(s["old_pid"], s["new_pid"], "{answer}");
        assert_eq!(s["drain_timed_out"], false, "{answer}");
    }
    assert!(answer["cooled"].as_array().is_some_and(|c| !c.is_empty()), "{answer}");
    // A little more load on the new daemons, then stop and read the run.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(post(&e, "/_fn/lab/load/stop", json!({})).await.json()["stopped"], 1);
    let mut done = Value::Null;
    for _ in 0..400 {
        done = e.get(&format!("/_fn/lab/load/{id}")).await.json();
        if done["state"] != "running" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let s = &done["summary"];
    assert_ne!(done["state"], "running", "{done}");
    let requests = s["requests"].as_u64().unwrap();
    assert!(requests > 20, "load ran through the restart: {s}");
    assert_eq!(s["errors"], 0, "{s}");
    assert_eq!(
        s["statuses"]["200"].as_u64(),
        Some(requests),
        "not one call failed: {s}"
    );
    // New daemons, none of the old ones left, and no fault left behind.
    let pids_after = crate::support::health_pids(&e.engine.health());
    assert_eq!(pids_after.len(), sockets);
    assert!(
        pids_after.iter().all(|p| !pids_before.contains(p)),
        "{pids_before:?} {pids_after:?}"
    );
    assert!(e.engine.health().get("faults").is_none());
    // The first call after the restart (one of the load's) was cold, and measured.
    let key = answer["cooled"][0].as_str().unwrap().to_string();
    let lab = e.get("/_fn/lab").await.json();
    let colds = lab["cold_starts"][&key].as_array().cloned().unwrap_or_default();
    let after: Vec<&Value> = colds
        .iter()
        .filter(|c| c["ts"].as_u64().unwrap() >= before_ms)
        .collect();
    assert_eq!(after.len(), 1, "one cold start since the restart: {lab}");
    assert_eq!(after[0]["status"], 200, "{lab}");
    assert!(after[0]["runtime_us"].as_u64().unwrap() > 0, "{lab}");
    // Without load, the same: the next call says cold, the one after warm.
    let r = post(&e, "/_fn/lab/cold", json!({"runtime": "python"})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = e.get("/hello").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-fastfn-function-state"), Some("cold"));
    assert_eq!(e.get("/hello").await.header("x-fastfn-function-state"), Some("warm"));
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn force_cold_on_a_runtime_restarts_two_daemons_with_no_failed_call() {
    force_cold_runtime_under_load("python=2", 2).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn force_cold_on_a_runtime_with_one_daemon_makes_calls_wait_not_fail() {
    force_cold_runtime_under_load("python=1", 1).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn force_cold_names_a_function_or_a_runtime() {
    let _serial = SERIAL.lock().await;
    let e = start("lab", &[("FN_RUNTIMES", "python")]).await;
    e.ready().await;
    let r = post(&e, "/_fn/lab/cold", json!({"function": "hello", "runtime": "python"})).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.json()["code"], "lab.invalid_cold");
    let r = post(&e, "/_fn/lab/cold", json!({"runtime": "node"})).await;
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(r.json()["code"], "lab.runtime_not_running");
    // The restart's socket entry is the engine's own, not a fault to set by hand.
    let r = post(
        &e,
        "/_fn/lab/faults",
        json!({"kind": "restart", "runtime": "python", "socket": 1}),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    e.stop().await;
}

/// A run sees the target's admission against its limits (with drops by reason), the daemons'
/// CPU and memory, and is saved in the project; two saved runs compare with the config
/// difference; `fastfn bench` prints the same.
#[tokio::test(flavor = "multi_thread")]
async fn load_runs_show_admission_and_daemons_are_saved_and_compared() {
    let _serial = SERIAL.lock().await;
    let dir = copy_fixture("lab2");
    let e = start_in(dir.path(), &[("FN_RUNTIMES", "python")]).await;
    e.ready().await;
    // Longer than the engine's usage sampling interval (2 s), so the daemons are sampled.
    let first = load(&e, json!({"path": "/narrow", "duration_ms": 3000, "concurrency": 8})).await;
    let s = &first["summary"];
    assert_eq!(s["errors"], 0, "{s}");
    let refused = s["statuses"]["429"].as_u64().unwrap_or(0);
    assert!(refused > 0, "8 callers on 2 workers and a queue of 2 overflow: {s}");
    let points: Vec<&Value> = first["series"].as_array().unwrap().iter().collect();
    let admission: Vec<&Value> = points
        .iter()
        .filter_map(|p| p.get("admission"))
        .filter(|a| !a.is_null())
        .collect();
    assert!(!admission.is_empty(), "{first}");
    for a in &admission {
        assert_eq!(a["max_workers"], 2, "{a}");
        assert_eq!(a["max_queue"], 2, "{a}");
        assert!(a["active"].as_u64().unwrap() <= 2, "{a}");
        assert!(a["queued"].as_u64().unwrap() <= 2, "{a}");
    }
    assert!(
        admission.iter().any(|a| a["queued"].as_u64().unwrap() > 0),
        "the queue was seen filling"
    );
    // Drops by reason, point by point, add up to the 429s the run got (plus at most one per
    // caller: a timed run hangs up on the calls in flight at its end, unrecorded).
    let drops: u64 = admission.iter().map(|a| a["overflow_drops"].as_u64().unwrap()).sum();
    assert!(
        (refused..=refused + 8).contains(&drops),
        "{drops} drops, {refused} 429s: {first}"
    );
    assert!(admission.iter().all(|a| a["timeout_drops"] == 0), "{first}");
    let daemons: Vec<&Value> = points
        .iter()
        .flat_map(|p| p["daemons"].as_array().unwrap().iter())
        .collect();
    assert!(daemons.iter().any(|d| d["rss_bytes"].as_u64().unwrap() > 0), "{first}");
    assert!(daemons
        .iter()
        .all(|d| d["socket"] == 1 && d["pid"].as_u64().unwrap() > 0));
    assert_eq!(first["config"]["policy"]["worker_pool"]["max_workers"], 2, "{first}");
    assert_eq!(first["config"]["runtime_daemons"], 1);

    // Saved in the project, under the name the run gave.
    let file_a = first["file"].as_str().unwrap().to_string();
    assert!(dir.path().join(".fastfn/lab/runs").join(&file_a).is_file());

    // A wider pool, reloaded; a second run; the two compared.
    let config = dir.path().join("narrow/fn.config.json");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("\"max_workers\": 2", "\"max_workers\": 8");
    std::fs::write(&config, text).unwrap();
    let r = e.send("POST", "/_fn/reload", WRITE, None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let second = load(&e, json!({"path": "/narrow", "count": 40, "concurrency": 4})).await;
    assert_eq!(second["config"]["policy"]["worker_pool"]["max_workers"], 8, "{second}");
    let file_b = second["file"].as_str().unwrap().to_string();
    let list = e.get("/_fn/lab/runs").await.json();
    let files: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["file"].as_str().unwrap())
        .collect();
    assert_eq!(files, [file_a.as_str(), file_b.as_str()], "{list}");
    assert!(list[0].get("series").is_none(), "the list carries no series");
    let cmp = e.get(&format!("/_fn/lab/runs/compare?a={file_a}&b={file_b}")).await;
    assert_eq!(cmp.status, 200, "{}", cmp.text());
    let cmp = cmp.json();
    assert_eq!(
        cmp["config_diff"],
        json!([{"key": "policy.worker_pool.max_workers", "a": 2, "b": 8}]),
        "{}",
        cmp["config_diff"]
    );
    assert_eq!(cmp["a"]["summary"], first["summary"]);
    assert_eq!(
        e.get(&format!("/_fn/lab/runs/{file_b}")).await.json()["id"],
        second["id"]
    );
    assert_eq!(e.get("/_fn/lab/runs/..%2F..%2Fetc%2Fpasswd").await.status, 404);
    assert_eq!(e.get("/_fn/lab/runs/compare?a=1-1.json").await.status, 400);

    // `fastfn bench` prints the same summary, with admission and daemons.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_fastfn"))
        .args([
            "bench",
            "/narrow",
            "-c",
            "16",
            "-n",
            "200",
            "--port",
            &e.addr().port().to_string(),
        ])
        .output()
        .await
        .expect("run fastfn bench");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("  admission peak "), "{text}");
    assert!(text.contains("(max_workers 8)"), "{text}");
    assert!(text.contains("queue full"), "{text}");
    e.stop().await;
}
