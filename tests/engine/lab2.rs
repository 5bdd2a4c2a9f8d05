//! The lab's second part: a dependency install made to fail, and force cold per runtime
//! (its daemons restarted one socket at a time while load runs against them).
//!
//! `fixtures/lab2`: python functions `withdeps` (a `requirements.txt` with nothing to
//! download, so its install is real and offline), `broken` (a requirement pip refuses at
//! once: a real install failure to compare with) and `plain` (no dependencies).

use crate::lab::SERIAL;
use crate::support::{copy_fixture, start_in, wait_for, Resp, TestEngine};
use serde_json::{json, Value};
use std::time::Duration;

const WRITE: &[(&str, &str)] = &[("X-Fn-Request", "1"), ("Content-Type", "application/json")];

async fn post(e: &TestEngine, path: &str, body: Value) -> Resp {
    e.send("POST", path, WRITE, Some(body.to_string().as_bytes())).await
}

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

    let r = post(&e, "/_fn/lab/faults", json!({"kind": "deps_fail", "function": "withdeps"})).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["id"].as_u64().unwrap();
    assert_eq!(e.engine.health()["faults"][0]["spec"]["kind"], "deps_fail");
    // The install runs again and fails, as an install does: health, then the answer.
    install_state(&e, "withdeps", "failed").await;
    let status = install(&e, "withdeps");
    assert_eq!(status["state"], "failed", "{status}");
    assert!(status["error"].as_str().unwrap().starts_with("`pip install"), "{status}");
    assert!(status["error"].as_str().unwrap().contains("fault injected by the lab"), "{status}");
    let r = e.get("/withdeps").await;
    assert_eq!(r.status, real.status, "{}", r.text());
    let (body, real_body) = (r.json(), real.json());
    assert_eq!(body["error"], real_body["error"], "{body} vs {real_body}");
    assert_eq!(
        body.as_object().unwrap().keys().filter(|k| *k != "package").collect::<Vec<_>>(),
        real_body.as_object().unwrap().keys().filter(|k| *k != "package").collect::<Vec<_>>(),
    );
    assert!(body["output"].as_str().unwrap().contains("fault injected by the lab"), "{body}");
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
