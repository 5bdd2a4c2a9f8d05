//! `/_fn/*` (contract §6) and the per-request headers of §5.3.

use crate::support::{start, TestEngine};
use serde_json::{json, Value};

async fn three_each() -> TestEngine {
    let e = start("demo", &[("FN_RUNTIME_DAEMONS", "python=3,node=3")]).await;
    e.ready().await;
    e
}

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v.as_object().expect("object").keys().map(String::as_str).collect();
    k.sort();
    k
}

#[tokio::test(flavor = "multi_thread")]
async fn health_has_the_contract_shape() {
    let e = three_each().await;
    // Wait until every socket has been probed up.
    crate::support::wait_for(std::time::Duration::from_secs(10), || {
        let h = e.engine.health();
        ["python", "node"].iter().all(|rt| {
            h["runtimes"][rt]["sockets"]
                .as_array()
                .is_some_and(|s| s.iter().all(|x| x["up"] == true))
        })
    })
    .await;
    let r = e.get("/_fn/health").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let h = r.json();
    for key in [
        "config_loaded_at",
        "defaults",
        "functions_root",
        "socket_base_dir",
        "runtime_order",
        "hot_reload",
        "routing",
        "functions",
        "runtimes",
    ] {
        assert!(h.get(key).is_some(), "health.{key} missing: {}", keys(&h).join(","));
    }
    assert!(h["config_loaded_at"].as_f64().is_some());
    assert_eq!(
        h["defaults"],
        json!({"timeout_ms": 2500, "max_concurrency": 20, "max_body_bytes": 1048576})
    );
    let root = crate::support::fixture("demo").canonicalize().expect("root");
    assert_eq!(h["functions_root"], root.display().to_string());
    assert_eq!(h["socket_base_dir"], e.engine.socket_dir().display().to_string());
    assert_eq!(h["runtime_order"], json!(["node", "python"]));
    assert!(h["hot_reload"]["enabled"].is_boolean());
    assert!(h["hot_reload"]["last_catalog_scan_at"].as_f64().is_some());
    assert_eq!(h["routing"]["mapped_routes"], 26, "distinct patterns");
    assert_eq!(h["routing"]["mapped_route_conflicts"], 0);
    assert_eq!(h["routing"]["shadowed_routes"], 1);
    let summary = &h["functions"]["summary"];
    for key in [
        "total",
        "warm",
        "stale",
        "cold",
        "keep_warm_enabled",
        "pool_enabled",
        "pool_active",
        "pool_queued",
        "pool_queue_drops",
        "pool_queue_overflow_drops",
        "pool_queue_timeout_drops",
    ] {
        assert!(summary[key].as_u64().is_some(), "summary.{key}: {summary}");
    }
    let states = h["functions"]["states"].as_array().expect("states");
    assert_eq!(summary["total"].as_u64(), Some(states.len() as u64));
    let hello = states
        .iter()
        .find(|s| s["key"] == "python/hello.py@default")
        .expect("hello state");
    assert_eq!(
        (&hello["runtime"], &hello["name"], &hello["state"]),
        (&json!("python"), &json!("hello.py"), &json!("cold"))
    );
    for key in [
        "enabled",
        "min_warm",
        "max_workers",
        "max_queue",
        "idle_ttl_seconds",
        "queue_timeout_ms",
        "queue_poll_ms",
        "overflow_status",
        "active",
        "queued",
        "queue_drops",
    ] {
        assert!(hello["worker_pool"].get(key).is_some(), "worker_pool.{key}");
    }
    assert_eq!(
        hello["worker_pool"]["queue_drops"],
        json!({"overflow": 0, "timeout": 0, "total": 0})
    );
    for rt in ["python", "node"] {
        let r = &h["runtimes"][rt];
        assert_eq!(r["routing"], "round_robin", "{rt}");
        assert_eq!(r["timeout_ms"], 2500, "{rt}");
        let sockets = r["sockets"].as_array().expect("sockets");
        assert_eq!(sockets.len(), 3, "{rt}");
        let dir = e.engine.socket_dir().display().to_string();
        for (i, s) in sockets.iter().enumerate() {
            assert_eq!(s["index"], i + 1);
            assert_eq!(s["uri"], format!("unix:{dir}/fn-{rt}-{}.sock", i + 1));
            assert_eq!((&s["up"], &s["reason"]), (&json!(true), &json!("ok")), "{rt} {s}");
            assert!(s["ts"].as_f64().is_some());
            assert!(s["pid"].as_u64().is_some_and(|p| p > 0));
        }
        assert_eq!(r["socket"], sockets[0]["uri"]);
        assert_eq!(r["health"]["up"], true);
        assert_eq!(r["health"]["reason"], "ok");
        assert_eq!(r["health"]["sockets"].as_array().map(Vec::len), Some(3));
    }
    assert!(h.get("runtimes_missing").is_none());
    assert!(h.get("config_errors").is_none());
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn catalog_reload_and_csrf() {
    let e = start("demo", &[]).await;
    let c = e.get("/_fn/catalog").await.json();
    for key in [
        "generated_at",
        "functions_root",
        "defaults",
        "runtime_order",
        "mapped_routes",
        "mapped_route_conflicts",
        "runtimes",
    ] {
        assert!(c.get(key).is_some(), "catalog.{key}");
    }
    let counter = &c["mapped_routes"]["/counter"][0];
    assert_eq!(counter["runtime"], "node");
    assert_eq!(counter["fn_name"], "counter");
    assert_eq!(counter["version"], "default");
    assert_eq!(counter["methods"], json!(["GET", "POST"]));
    assert_eq!(counter["source_rank"], 3);
    assert_eq!(counter["force_url"], false);
    assert!(counter.get("allow_hosts").is_some());
    assert_eq!(c["mapped_routes"]["/counter@v2"][0]["version"], "v2");
    assert_eq!(c["mapped_routes"]["/legacy/ping"][0]["source_rank"], 2);
    assert_eq!(c["mapped_routes"]["/hello"][0]["source_rank"], 1);
    assert_eq!(c["mapped_route_conflicts"], json!({}));

    let r = e.send("POST", "/_fn/reload", &[], None).await;
    assert_eq!(
        (r.status, r.text().as_str()),
        (403, r#"{"error":"missing CSRF header"}"#)
    );
    let r = e.send("POST", "/_fn/reload", &[("X-Fn-Request", "1")], None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    assert_eq!(body["ok"], true);
    for key in ["reloaded_at", "functions_root", "runtime_order", "catalog_generated_at"] {
        assert!(body.get(key).is_some(), "reload.{key}");
    }
    assert_eq!(body["runtime_order"], json!(["node", "python"]));
    let r = e.get("/_fn/reload").await;
    assert_eq!((r.status, r.json()["ok"].clone()), (200, json!(true)));
    assert_eq!(e.send("GET", "/_fn/nope", &[], None).await.status, 404);
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn debug_headers_and_socket_rotation() {
    let e = three_each().await;
    let mut indices = Vec::new();
    for _ in 0..3 {
        let r = e.get("/debug/whoami").await;
        assert_eq!(r.status, 200, "{}", r.text());
        let id = r.header("x-fn-request-id").expect("request id");
        let parts: Vec<&str> = id.split('-').collect();
        assert_eq!(parts.len(), 4, "{id}");
        assert_eq!(parts[0], "req");
        assert!(
            parts[1].len() == 13 && parts[1].bytes().all(|b| b.is_ascii_digit()),
            "{id}"
        );
        assert_eq!(parts[2], std::process::id().to_string());
        assert!(
            parts[3].len() == 6 && parts[3].bytes().all(|b| b.is_ascii_digit()),
            "{id}"
        );
        assert_eq!(r.header("x-fn-runtime"), Some("node"));
        assert_eq!(r.header("x-fn-function"), Some("debug/whoami.js"));
        assert_eq!(r.header("x-fn-version"), Some("default"));
        assert_eq!(r.header("x-fn-runtime-routing"), Some("round_robin"));
        assert_eq!(r.header("x-fn-worker-pool-max-workers"), Some("20"));
        assert_eq!(r.header("x-fn-stdout"), Some("hello from the handler"));
        assert!(r.header("x-fn-latency-ms").is_some_and(|v| v.parse::<f64>().is_ok()));
        indices.push(
            r.header("x-fn-runtime-socket-index")
                .expect("socket index")
                .parse::<u32>()
                .expect("number"),
        );
    }
    let mut sorted = indices.clone();
    sorted.sort();
    assert_eq!(sorted, vec![1, 2, 3], "{indices:?}");
    for w in indices.windows(2) {
        assert_eq!(w[1], w[0] % 3 + 1, "round robin order: {indices:?}");
    }
    // Without include_debug_headers: none of them.
    let r = e.get("/time").await;
    assert!(
        r.headers.iter().all(|(k, _)| !k.starts_with("x-fn-")),
        "{:?}",
        r.headers
    );
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn function_state_is_cold_then_warm() {
    let e = start("demo", &[]).await;
    for path in ["/hello", "/time"] {
        let first = e.get(path).await;
        assert_eq!(first.status, 200);
        assert_eq!(first.header("x-fastfn-function-state"), Some("cold"), "{path}");
        assert_eq!(first.header("x-fastfn-warmed"), Some("true"), "{path}");
        for _ in 0..2 {
            let next = e.get(path).await;
            assert_eq!(next.header("x-fastfn-function-state"), Some("warm"), "{path}");
            assert_eq!(next.header("x-fastfn-warmed"), None, "{path}");
        }
    }
    let h = e.get("/_fn/health").await.json();
    let states = h["functions"]["states"].as_array().expect("states");
    let hello = states
        .iter()
        .find(|s| s["key"] == "python/hello.py@default")
        .expect("hello");
    assert_eq!(hello["state"], "warm");
    assert!(hello["warm_at"].as_f64().is_some());
    assert_eq!(h["functions"]["summary"]["warm"], 2);
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn reload_picks_up_a_new_file() {
    let dir = crate::support::copy_fixture("demo");
    let e = crate::support::start_in(dir.path(), &[("FN_HOT_RELOAD", "0")]).await;
    assert_eq!(e.get("/fresh").await.status, 404);
    std::fs::write(
        dir.path().join("fresh.py"),
        "def handler(event):\n    return {\"fresh\": True}\n",
    )
    .expect("write");
    let r = e.send("POST", "/_fn/reload", &[("X-Fn-Request", "1")], None).await;
    assert_eq!(r.json()["ok"], true, "{}", r.text());
    let r = e.get("/fresh").await;
    assert_eq!((r.status, r.json()), (200, json!({"fresh": true})));
    e.stop().await;
}

/// A FastFN feature this build does not have (here `worker_pool.min_warm`) is never ignored in
/// silence: the function is served and `/_fn/health` carries a warning that names the key and
/// the loss.
#[tokio::test(flavor = "multi_thread")]
async fn unsupported_fastfn_keys_are_warned_in_health() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("job")).unwrap();
    std::fs::write(
        dir.path().join("job/fn.config.json"),
        r#"{"worker_pool": {"min_warm": 2}}"#,
    )
    .unwrap();
    std::fs::write(dir.path().join("job/handler.py"), "def handler(e):\n    return 'ran'\n").unwrap();
    let e = crate::support::start_in(dir.path(), &[("FN_RUNTIMES", "python")]).await;
    assert_eq!(e.get("/job").await.text(), "ran");
    let h = e.get("/_fn/health").await.json();
    let warnings = h["warnings"].to_string();
    assert!(
        warnings.contains("`worker_pool.min_warm` is not supported by this build yet"),
        "{warnings}"
    );
    e.stop().await;
}
