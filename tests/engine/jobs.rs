//! Async jobs (`/_fn/jobs`, FastFN's `core/jobs.lua`): submit, poll, fetch the result; retries
//! and failure; cancel; the admin guard; and a job that survives an engine restart.
//! `fixtures/jobs` (see its README), copied to a temp dir because jobs are written under
//! `<root>/.fastfn/jobs`.

use crate::support::{copy_fixture, start_in, Resp, TestEngine};
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

const CSRF: (&str, &str) = ("X-Fn-Request", "1");

async fn engine(dir: &Path, env: &[(&str, &str)]) -> TestEngine {
    let mut all = vec![("FN_RUNTIMES", "python")];
    all.extend_from_slice(env);
    let e = start_in(dir, &all).await;
    e.ready().await;
    e
}

async fn submit(e: &TestEngine, body: Value) -> Resp {
    e.send(
        "POST",
        "/_fn/jobs",
        &[CSRF, ("Content-Type", "application/json")],
        Some(body.to_string().as_bytes()),
    )
    .await
}

/// Poll `GET /_fn/jobs/<id>` until its status is `want`.
async fn wait_status(e: &TestEngine, id: &str, want: &str, limit: Duration) -> Value {
    let path = format!("/_fn/jobs/{id}");
    let mut last = Value::Null;
    let until = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < until {
        last = e.get(&path).await.json();
        if last["status"] == want {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("job {id} never reached {want}: {last}");
}

/// [`wait_status`], showing the stored result when the job ends otherwise.
async fn wait_status_or_result(e: &TestEngine, id: &str, want: &str, limit: Duration) -> Value {
    let path = format!("/_fn/jobs/{id}");
    let until = tokio::time::Instant::now() + limit;
    loop {
        let job = e.get(&path).await.json();
        if job["status"] == want {
            return job;
        }
        if job["status"] == "failed" || tokio::time::Instant::now() > until {
            let result = e.get(&format!("{path}/result")).await.text();
            panic!("job {id} never reached {want}: {job}; result: {result}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn assert_error(r: &Resp, status: u16, error: &str) {
    assert_eq!(r.status, status, "{}", r.text());
    assert_eq!(r.json()["error"], error, "{}", r.text());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_is_submitted_polled_and_its_result_fetched() {
    let dir = copy_fixture("jobs");
    let e = engine(dir.path(), &[]).await;

    // A write without the CSRF header is refused by the admin guard.
    let r = e.send("POST", "/_fn/jobs", &[], Some(br#"{"name":"report"}"#)).await;
    assert_error(&r, 403, "missing CSRF header");

    let mut live = e.engine.events().subscribe_live();
    let r = submit(
        &e,
        json!({"name": "report", "method": "post", "query": {"who": "Ada"}, "body": {"n": 1},
               "context": {"tenant": "t1"}}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let job = r.json();
    let id = job["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("job-"), "{id}");
    assert_eq!(job["status"], "queued");
    assert_eq!(job["runtime"], "python");
    assert_eq!(job["name"], "report");
    assert_eq!(job["method"], "POST");
    assert_eq!(job["route"], "/report");
    assert_eq!(job["attempt"], 0);
    assert_eq!(job["max_attempts"], 1);
    assert!(job.get("version").is_none(), "default version is left out: {job}");
    // The job is on disk before it is acknowledged.
    let jobs_dir = dir.path().join(".fastfn/jobs");
    assert!(jobs_dir.join(format!("{id}.spec.json")).is_file());

    let done = wait_status(&e, &id, "done", Duration::from_secs(10)).await;
    assert_eq!(done["attempt"], 1);
    assert_eq!(done["result_status"], 200);
    // The run went through the invoke pipeline: a request record marked as a job's.
    let record = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Ok(fastfn::events::EngineEvent::Requests { requests, .. }) = live.recv().await {
                if let Some(r) = requests.into_iter().find(|r| r.id == id) {
                    return r;
                }
            }
        }
    })
    .await
    .expect("a request record for the job");
    assert_eq!(record.trigger.as_deref(), Some("job"));
    assert_eq!(
        (record.method.as_str(), record.path.as_str(), record.status),
        ("POST", "/report", 200)
    );
    assert_eq!(record.function.as_deref(), Some("report"));
    assert!(record.stages.runtime_us > 0, "{:?}", record.stages);

    let r = e.get(&format!("/_fn/jobs/{id}/result")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let result = r.json();
    assert_eq!(result["id"], id.as_str());
    assert_eq!(result["status"], 200);
    assert_eq!(result["is_base64"], false);
    assert!(result["latency_ms"].is_u64());
    let body: Value = serde_json::from_str(result["body"].as_str().unwrap()).unwrap();
    assert_eq!(
        body,
        json!({"method": "POST", "path": "/report", "query": {"who": "Ada"}, "payload": "{\"n\":1}",
               "ua": "fastfn-jobs", "user": {"tenant": "t1"}, "id": id})
    );
    assert!(jobs_dir.join(format!("{id}.result.json")).is_file());

    // Listed, newest first.
    let second = submit(&e, json!({"name": "report"})).await.json();
    let list = e.get("/_fn/jobs").await.json();
    let ids: Vec<&str> = list["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [second["id"].as_str().unwrap(), id.as_str()]);
    assert_eq!(
        e.get("/_fn/jobs?limit=1").await.json()["jobs"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // A finished job cannot be canceled; unknown ids are 404s.
    let r = e.send("DELETE", &format!("/_fn/jobs/{id}"), &[CSRF], None).await;
    assert_error(&r, 409, "job is not queued");
    assert_error(&e.get("/_fn/jobs/job-0-0-000000").await, 404, "job not found");
    assert_error(&e.get("/_fn/jobs/job-0-0-000000/result").await, 404, "job not found");
    assert_error(&e.get("/_fn/jobs/a%20b").await, 404, "not found");
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_submissions_answer_as_fastfn_does() {
    let dir = copy_fixture("jobs");
    let e = engine(dir.path(), &[]).await;
    let r = e.send("POST", "/_fn/jobs", &[CSRF], Some(b"[1,2]")).await;
    assert_error(&r, 400, "invalid json body");
    assert_error(&submit(&e, json!({})).await, 400, "name is required");
    assert_error(
        &submit(&e, json!({"name": "nope"})).await,
        404,
        "unknown function or version",
    );
    assert_error(
        &submit(&e, json!({"name": "report", "version": "v9"})).await,
        404,
        "unknown function or version",
    );
    let r = submit(&e, json!({"name": "slow", "method": "DELETE"})).await;
    assert_error(&r, 405, "method not allowed");
    assert_eq!(r.header("allow"), Some("GET"));
    assert_error(
        &submit(&e, json!({"name": "report", "context": 5})).await,
        400,
        "context must be an object",
    );
    assert_error(
        &submit(&e, json!({"name": "report", "route": "/elsewhere"})).await,
        400,
        "invalid route",
    );
    let r = e.send("PUT", "/_fn/jobs", &[CSRF], None).await;
    assert_eq!(r.status, 405);
    // Nothing was queued by any of these.
    assert_eq!(e.get("/_fn/jobs").await.json(), json!({"jobs": []}));
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_job_is_retried_then_marked_failed() {
    let dir = copy_fixture("jobs");
    let e = engine(dir.path(), &[("FN_JOBS_POLL_INTERVAL", "0.05")]).await;
    let job = submit(&e, json!({"name": "broken", "max_attempts": 2, "retry_delay_ms": 100})).await;
    assert_eq!(job.status, 201, "{}", job.text());
    let id = job.json()["id"].as_str().unwrap().to_string();
    let failed = wait_status(&e, &id, "failed", Duration::from_secs(10)).await;
    assert_eq!(failed["attempt"], 2);
    assert_eq!(failed["result_status"], 500);
    assert_eq!(failed["last_error"], "HTTP 500");
    let result = e.get(&format!("/_fn/jobs/{id}/result")).await.json();
    assert_eq!(result["status"], 500);
    assert_eq!(result["body"], "broken on purpose");
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_queued_job_can_be_canceled_and_then_never_runs() {
    let dir = copy_fixture("jobs");
    let e = engine(dir.path(), &[("FN_JOBS_MAX_CONCURRENCY", "1")]).await;
    let slow = submit(&e, json!({"name": "slow", "query": {"ms": "2000"}}))
        .await
        .json();
    let slow_id = slow["id"].as_str().unwrap().to_string();
    wait_status(&e, &slow_id, "running", Duration::from_secs(10)).await;
    let queued = submit(&e, json!({"name": "report"})).await.json();
    let id = queued["id"].as_str().unwrap().to_string();
    // Behind the running one (one slot): not ready yet.
    let r = e.get(&format!("/_fn/jobs/{id}/result")).await;
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(r.json()["error"], "result not ready");
    assert_eq!(r.json()["status"], "queued");
    let r = e.send("DELETE", &format!("/_fn/jobs/{id}"), &[], None).await;
    assert_error(&r, 403, "missing CSRF header");
    let r = e.send("DELETE", &format!("/_fn/jobs/{id}"), &[CSRF], None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["status"], "canceled");
    wait_status(&e, &slow_id, "done", Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(e.get(&format!("/_fn/jobs/{id}")).await.json()["status"], "canceled");
    let r = e.get(&format!("/_fn/jobs/{id}/result")).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json(), json!({"error": "result not found", "status": "canceled"}));
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn jobs_survive_an_engine_restart() {
    let dir = copy_fixture("jobs");
    let env = [("FN_JOBS_MAX_CONCURRENCY", "1")];
    let e = engine(dir.path(), &env).await;
    // One slot: the slow job runs, the next one waits in the queue.
    let slow = submit(&e, json!({"name": "slow", "query": {"ms": "5000"}}))
        .await
        .json();
    let slow_id = slow["id"].as_str().unwrap().to_string();
    wait_status(&e, &slow_id, "running", Duration::from_secs(10)).await;
    let queued = submit(&e, json!({"name": "report", "query": {"who": "after"}}))
        .await
        .json();
    let queued_id = queued["id"].as_str().unwrap().to_string();
    assert_eq!(
        e.get(&format!("/_fn/jobs/{queued_id}")).await.json()["status"],
        "queued"
    );
    e.stop().await;
    // Stopped mid-run: no result was kept for the running job.
    let jobs_dir = dir.path().join(".fastfn/jobs");
    assert!(!jobs_dir.join(format!("{slow_id}.result.json")).exists());

    let e = engine(dir.path(), &[("FN_JOBS_MAX_CONCURRENCY", "2")]).await;
    // Both are known after the restart and both run: the queued one, and the one cut short.
    let listed = e.get("/_fn/jobs").await.json();
    assert_eq!(listed["jobs"].as_array().unwrap().len(), 2, "{listed}");
    let done = wait_status_or_result(&e, &queued_id, "done", Duration::from_secs(15)).await;
    assert_eq!(done["attempt"], 1);
    let result = e.get(&format!("/_fn/jobs/{queued_id}/result")).await.json();
    let body: Value = serde_json::from_str(result["body"].as_str().unwrap()).unwrap_or_else(|_| panic!("{result}"));
    assert_eq!(body["query"], json!({"who": "after"}));
    let slow = wait_status(&e, &slow_id, "done", Duration::from_secs(15)).await;
    assert_eq!(slow["attempt"], 2, "the interrupted run counted: {slow}");
    let result = e.get(&format!("/_fn/jobs/{slow_id}/result")).await.json();
    let body: Value = serde_json::from_str(result["body"].as_str().unwrap()).unwrap();
    assert_eq!(body, json!({"slept": 5000}));
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn jobs_can_be_switched_off() {
    let dir = copy_fixture("jobs");
    let e = engine(dir.path(), &[("FN_JOBS_ENABLED", "0")]).await;
    assert_error(&submit(&e, json!({"name": "report"})).await, 404, "jobs disabled");
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn jobs_are_in_the_internal_openapi() {
    let dir = copy_fixture("jobs");
    let e = engine(dir.path(), &[("FN_OPENAPI_INCLUDE_INTERNAL", "1")]).await;
    let spec = e.get("/_fn/openapi.json").await.json();
    for (path, method, id) in [
        ("/_fn/jobs", "get", "internal_jobs_get"),
        ("/_fn/jobs", "post", "internal_jobs_post"),
        ("/_fn/jobs/{id}", "get", "internal_job_get"),
        ("/_fn/jobs/{id}", "delete", "internal_job_delete"),
        ("/_fn/jobs/{id}/result", "get", "internal_job_result_get"),
    ] {
        assert_eq!(spec["paths"][path][method]["operationId"], id, "{path} {method}");
        assert_eq!(spec["paths"][path][method]["tags"], json!(["internal"]), "{path}");
    }
    e.stop().await;
}
