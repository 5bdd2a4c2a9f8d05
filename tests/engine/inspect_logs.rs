//! Engine log lines per request: the real `fastfn run` with JSON logs; a call that times out
//! makes the engine log a warning and an error-log line while serving it. Both are in the
//! request's record (and its detail), and the warning on stdout carries the request id. A
//! request that logs nothing has no `logs`.

use crate::support::{copy_fixture, free_port, request, socket_base};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

async fn admin_json(addr: SocketAddr, path: &str) -> Value {
    let r = request(addr, "GET", path, &[], None).await;
    assert_eq!(r.status, 200, "{path}: {}", r.text());
    r.json()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_requests_engine_log_lines_carry_its_id_and_show_in_its_detail() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let project = copy_fixture("inspect");
    let sockets = socket_base();
    let port = free_port();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_fastfn"))
        .args(["run", "--port", &port.to_string()])
        .arg(project.path())
        .env("FN_RUNTIMES", "python,node")
        .env("FN_LOG_FORMAT", "json")
        .env("FN_HOT_RELOAD", "0")
        .env("FN_ADMIN_API_ENABLED", "1")
        .env("FN_SCHEDULER_ENABLED", "0")
        .env("FN_SOCKET_BASE_DIR", sockets.path())
        .env_remove("FN_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn fastfn run");
    // Every stdout line, parsed, as it comes.
    let out: Arc<Mutex<Vec<Value>>> = Arc::default();
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let sink = out.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
            sink.lock().unwrap().push(v);
        }
    });
    let serving = || out.lock().unwrap().iter().any(|v| v["msg"] == "serving");
    crate::support::wait_for(Duration::from_secs(30), serving).await;
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();

    // A call that logs nothing (its first call also waits for the daemons to start).
    assert_eq!(request(addr, "GET", "/hello", &[], None).await.status, 200);
    // A call past its 300 ms timeout: the engine answers 504 and says so in its log.
    assert_eq!(request(addr, "GET", "/nap", &[], None).await.status, 504);

    let list = admin_json(addr, "/_fn/requests?limit=20").await;
    let find = |path: &str| {
        list["requests"]
            .as_array()
            .expect("requests")
            .iter()
            .find(|r| r["path"] == path)
            .cloned()
            .unwrap_or_else(|| panic!("no record of {path}: {list}"))
    };
    let hello = find("/hello");
    assert!(hello.get("logs").is_none(), "a request that logged nothing: {hello}");
    let nap = find("/nap");
    let id = nap["id"].as_str().expect("id").to_string();
    assert!(id.starts_with("req-"), "{nap}");
    let logs = nap["logs"].as_array().unwrap_or_else(|| panic!("no logs: {nap}"));
    assert!(
        logs.iter().any(|l| l["level"] == "warn"
            && l["source"] == "engine"
            && l["line"]
                .as_str()
                .is_some_and(|t| t.contains("nap/handler.py failed: timeout"))),
        "{logs:?}"
    );
    assert!(
        logs.iter().any(|l| l["level"] == "error"
            && l["source"] == "error_log"
            && l["line"].as_str().is_some_and(|t| t.contains("GET /nap answered 504"))),
        "{logs:?}"
    );
    // The request's detail shows the same lines.
    let detail = admin_json(addr, &format!("/_fn/requests/{id}")).await;
    assert_eq!(detail["record"]["logs"], nap["logs"], "{detail}");

    // On the engine's own output, the warning names the request.
    let tagged = || {
        out.lock().unwrap().iter().any(|v| {
            v["request_id"] == id.as_str()
                && v["level"] == "warn"
                && v["msg"]
                    .as_str()
                    .is_some_and(|m| m.contains("nap/handler.py failed: timeout"))
        })
    };
    crate::support::wait_for(Duration::from_secs(10), tagged).await;
    // Lines outside any request carry no id.
    assert!(
        out.lock()
            .unwrap()
            .iter()
            .filter(|v| v["msg"] == "serving")
            .all(|v| v.get("request_id").is_none()),
        "the serving line is no request's"
    );

    // A job's call: its lines are kept with the job's record and carry the job's id.
    let r = request(
        addr,
        "POST",
        "/_fn/jobs",
        &[("X-Fn-Request", "1"), ("Content-Type", "application/json")],
        Some(br#"{"name": "nap/handler.py"}"#),
    )
    .await;
    assert!(r.status < 300, "{}", r.text());
    let job_id = r.json()["id"].as_str().expect("job id").to_string();
    let mut job_record = None;
    for _ in 0..200 {
        let list = admin_json(addr, "/_fn/requests?limit=50").await;
        job_record = list["requests"]
            .as_array()
            .and_then(|a| a.iter().find(|r| r["id"] == job_id.as_str()))
            .cloned();
        if job_record.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let job_record = job_record.unwrap_or_else(|| panic!("no record of job {job_id}"));
    assert_eq!(job_record["trigger"], "job", "{job_record}");
    // Explained like an HTTP call's 504.
    assert_eq!(
        (&job_record["status"], &job_record["reason"]),
        (&json!(504), &json!("timeout")),
        "{job_record}"
    );
    assert!(
        job_record["why"]
            .as_str()
            .is_some_and(|w| w.contains("timeout_ms of 300 ms")),
        "{job_record}"
    );
    assert!(
        job_record["logs"].as_array().is_some_and(|l| l
            .iter()
            .any(|l| l["line"].as_str().is_some_and(|t| t.contains("failed: timeout")))),
        "{job_record}"
    );
    let job_tagged = || {
        out.lock().unwrap().iter().any(|v| {
            v["request_id"] == job_id.as_str() && v["msg"].as_str().is_some_and(|m| m.contains("failed: timeout"))
        })
    };
    crate::support::wait_for(Duration::from_secs(10), job_tagged).await;
    let _ = child.start_kill();
    let _ = child.wait().await;
}
