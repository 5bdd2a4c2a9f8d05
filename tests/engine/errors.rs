//! Bad input and failing handlers: each gets a clear error while everything else serves.

use crate::support::{fixture, start, TestEngine};
use serde_json::Value;

async fn assert_ok(e: &TestEngine, paths: &[&str]) {
    for p in paths {
        let r = e.get(p).await;
        assert_eq!(r.status, 200, "{p} should keep serving: {}", r.text());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn throwing_and_broken_handlers_answer_500() {
    let e = start("errors", &[]).await;
    let cases = [
        ("/throws-py", Some(r#"{"error":"ValueError: boom"}"#), "ValueError"),
        ("/throws-js", Some(r#"{"error":"boom"}"#), "boom"),
        ("/syntax-py", None, "SyntaxError"),
        ("/syntax-js", None, "SyntaxError"),
    ];
    for (path, exact, needle) in cases {
        let r = e.get(path).await;
        assert_eq!(r.status, 500, "{path}: {}", r.text());
        assert_eq!(r.header("content-type"), Some("application/json"), "{path}");
        let err = r.json()["error"].as_str().unwrap_or_default().to_string();
        assert!(err.contains(needle), "{path}: {err}");
        if let Some(exact) = exact {
            assert_eq!(r.text(), exact, "{path}");
        }
        // A runtime error while cold: warming headers (§5.3).
        assert_eq!(r.header("x-fastfn-function-state"), Some("cold"), "{path}");
        assert_eq!(r.header("x-fastfn-warming"), Some("true"), "{path}");
        assert_eq!(r.header("retry-after"), Some("1"), "{path}");
        assert_eq!(r.header("x-fastfn-warmed"), None, "{path}");
    }
    let r = e.get("/syntax-py").await;
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap_or_default()
            .starts_with("failed to load handler: SyntaxError"),
        "{}",
        r.text()
    );
    assert_ok(&e, &["/ok-py", "/ok-js"]).await;
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn body_limits_by_length_and_by_size() {
    let e = start("errors", &[]).await;
    let small = vec![b'a'; 1000];
    let big = vec![b'a'; 2000];
    let r = e.send("POST", "/big/upload", &[], Some(&small)).await;
    assert_eq!((r.status, r.text().as_str()), (200, r#"{"bytes":1000}"#));
    let r = e.send("POST", "/big/upload", &[], Some(&big)).await;
    assert_eq!((r.status, r.text().as_str()), (413, r#"{"error":"payload too large"}"#));
    // No Content-Length: a chunked body over the limit is cut by its actual size.
    let chunked = [("Transfer-Encoding", "chunked")];
    let r = e.send("POST", "/big/upload", &chunked, Some(&big)).await;
    assert_eq!((r.status, r.text().as_str()), (413, r#"{"error":"payload too large"}"#));
    let r = e.send("POST", "/big/upload", &chunked, Some(&small)).await;
    assert_eq!((r.status, r.text().as_str()), (200, r#"{"bytes":1000}"#));
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_handler_times_out_with_504() {
    let e = start("errors", &[]).await;
    let started = std::time::Instant::now();
    let r = e.get("/slow/nap").await;
    let took = started.elapsed();
    assert_eq!((r.status, r.text().as_str()), (504, r#"{"error":"runtime timeout"}"#));
    assert!(
        took < std::time::Duration::from_millis(1500),
        "took {took:?} (timeout_ms 300)"
    );
    assert_ok(&e, &["/ok-py"]).await;
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_21st_concurrent_call_gets_429() {
    let e = start("errors", &[]).await;
    e.ready().await;
    let addr = e.addr();
    let calls: Vec<_> = (0..21)
        .map(|_| tokio::spawn(crate::support::request(addr, "GET", "/sleepy?s=1.5", &[], None)))
        .collect();
    let mut statuses = Vec::new();
    let mut rejected = Vec::new();
    for c in calls {
        let r = c.await.expect("task");
        if r.status == 429 {
            rejected.push(r.text());
        }
        statuses.push(r.status);
    }
    statuses.sort();
    let mut want = vec![200u16; 20];
    want.push(429);
    assert_eq!(statuses, want);
    assert_eq!(rejected, vec![r#"{"error":"worker pool overflow"}"#.to_string()]);
    let health = e.get("/_fn/health").await.json();
    assert_eq!(health["functions"]["summary"]["pool_queue_overflow_drops"], 1);
    e.stop().await;
}

/// Engine whose "python" is a fake daemon from `fixtures/fake-daemons`.
async fn with_fake_python(fake: &str) -> TestEngine {
    let bin = fixture("fake-daemons").join(fake);
    start("errors", &[("FN_PYTHON_BIN", bin.to_str().expect("utf-8 path"))]).await
}

#[tokio::test(flavor = "multi_thread")]
async fn garbage_replies_answer_502() {
    for fake in ["garbage-python", "bad-status-python"] {
        let e = with_fake_python(fake).await;
        e.ready().await;
        let r = e.get("/ok-py").await;
        assert_eq!(r.status, 502, "{fake}");
        assert_eq!(r.text(), r#"{"error":"invalid runtime response"}"#, "{fake}");
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_ok(&e, &["/ok-js"]).await;
        e.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_fn_config_is_reported_and_the_rest_serves() {
    let e = start("badconfig", &[]).await;
    assert_eq!(e.get("/broken/hello").await.status, 404);
    assert_ok(&e, &["/good"]).await;
    let catalog = e.get("/_fn/catalog").await.json();
    let errors = catalog["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["code"], "config.invalid_json");
    let file = errors[0]["file"].as_str().expect("file");
    assert!(file.ends_with("broken/fn.config.json"), "{file}");
    assert!(!errors[0]["message"].as_str().unwrap_or_default().is_empty());
    let health = e.get("/_fn/health").await.json();
    assert_eq!(health["config_errors"], Value::Array(errors.clone()));
    let mapped = catalog["mapped_routes"].as_object().expect("mapped_routes");
    assert_eq!(mapped.keys().collect::<Vec<_>>(), vec!["/good"]);
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_python_leaves_node_serving() {
    let e = start("badconfig", &[("FN_PYTHON_BIN", "/nonexistent/python3")]).await;
    let health = e.get("/_fn/health").await.json();
    let why = health["runtimes_missing"]["python"]
        .as_str()
        .expect("runtimes_missing.python");
    assert!(
        why.contains("/nonexistent/python3") && why.contains("FN_PYTHON_BIN"),
        "{why}"
    );
    assert_eq!(health["runtime_order"], serde_json::json!(["node"]));
    assert!(health["runtimes"].get("python").is_none());
    // good.js serves (good.py's route is not registered: python is off).
    let r = e.get("/good").await;
    assert_eq!((r.status, r.json()), (200, serde_json::json!({"good": "node"})));
    assert!(e.engine.daemons().iter().all(|d| d.runtime.name() == "node"));
    e.stop().await;
}
