//! The gateway answering as the original FastFN (`fixtures/compat-gw`, see its README): debug
//! headers from `response.include_debug_headers`, path and header edges, version-only
//! folders, discovery edges.

use crate::support::*;

#[tokio::test(flavor = "multi_thread")]
async fn response_include_debug_headers_turns_debug_headers_on() {
    let e = start("compat-gw", &[]).await;
    for (path, on) in [("/traced", true), ("/either", true), ("/untraced", false)] {
        let r = e.get(path).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        assert_eq!(r.header("x-fn-runtime").is_some(), on, "{path}: {:?}", r.headers);
        assert_eq!(r.header("x-fn-request-id").is_some(), on, "{path}: {:?}", r.headers);
        if on {
            assert_eq!(r.header("x-fn-function"), Some(&path[1..]), "{path}");
        }
    }
    e.stop().await;
}

fn raw_get(target: &str, extra: &str) -> String {
    format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}Connection: close\r\n\r\n")
}

#[tokio::test(flavor = "multi_thread")]
async fn path_and_header_edges_answer_as_nginx_does() {
    let e = start("compat-gw", &[]).await;
    // Paths nginx refuses before any location, also under /_fn.
    for target in [
        "/../traced",
        "/%2e%2e/traced",
        "/%2E%2E/traced",
        "/traced/%00",
        "/traced%",
        "/tr%zzced",
        "/_fn/../health",
    ] {
        let r = send_raw(e.addr(), raw_get(target, "").as_bytes()).await;
        assert_eq!(r.status, 400, "{target}: {}", r.text());
        assert_eq!(r.text(), r#"{"error":"invalid path"}"#, "{target}");
    }
    // Not traversal: a double-encoded `..` is a plain (unknown) segment.
    let r = send_raw(e.addr(), raw_get("/%252e%252e/traced", "").as_bytes()).await;
    assert_eq!(r.status, 404, "{}", r.text());

    // One header line up to 8 KiB (CRLF included) is taken; one byte more is a 400.
    let fill = |n: usize| format!("X-Fill: {}\r\n", "v".repeat(n - "X-Fill: \r\n".len()));
    let r = send_raw(e.addr(), raw_get("/traced", &fill(8192)).as_bytes()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = send_raw(e.addr(), raw_get("/traced", &fill(8193)).as_bytes()).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.text(), r#"{"error":"request header too large"}"#);

    // Up to 200 header lines (hyper's default stops at 100); past that, 431.
    let many = |n: usize| (0..n).map(|i| format!("X-H{i}: {i}\r\n")).collect::<String>();
    // Host and Connection are two of the lines.
    let r = send_raw(e.addr(), raw_get("/traced", &many(198)).as_bytes()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = send_raw(e.addr(), raw_get("/traced", &many(199)).as_bytes()).await;
    assert_eq!(r.status, 431, "{}", r.text());
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_folder_of_versions_only_is_reachable_by_version() {
    let e = start("compat-gw", &[]).await;
    let file = |r: &Resp| r.json()["file"].as_str().unwrap_or_default().to_string();
    let r = e.get("/hello").await;
    assert_eq!(
        (r.status, file(&r)),
        (200, "python/hello/handler.py".into()),
        "{}",
        r.text()
    );
    for path in ["/hello@v2", "/hello/v2", "/hello@v2/x"] {
        let r = e.get(path).await;
        assert_eq!(
            (r.status, file(&r)),
            (200, "node/hello/v2/handler.js".into()),
            "{path}: {}",
            r.text()
        );
    }
    assert_eq!(e.get("/hello@v2").await.json()["version"], "v2");
    assert_eq!(e.get("/hello@v3").await.status, 404);
    // The named target answers a method mismatch with 405 and Allow.
    let r = e.send("POST", "/hello@v2", &[], None).await;
    assert_eq!((r.status, r.header("allow")), (405, Some("GET")));
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn namespace_route_files_and_sub_project_assets() {
    let e = start("compat-gw", &[]).await;
    let r = e.get("/node/multi-endpoints/alpha").await;
    assert_eq!(
        (r.status, r.json()["endpoint"].clone()),
        (200, "alpha".into()),
        "{}",
        r.text()
    );
    for path in [
        "/node/multi-endpoints/helper",
        "/multi-endpoints/alpha",
        "/shop/public/app",
    ] {
        let r = e.get(path).await;
        assert_eq!(r.status, 404, "{path}: {}", r.text());
        assert!(!r.text().contains("leaked"), "{path}");
    }
    let r = e.get("/shop/cart").await;
    assert_eq!(
        (r.status, r.json()["file"].clone()),
        (200, "shop/cart.py".into()),
        "{}",
        r.text()
    );
    let catalog = e.get("/_fn/catalog").await.text();
    assert!(!catalog.contains("shop/public"), "{catalog}");
    e.stop().await;
}

/// A handler documented by its own comments (the original's `@summary`, `@query`, `@body`,
/// `@content_type`) shows them in OpenAPI; `invoke.*` in fn.config.json wins where both say.
#[tokio::test(flavor = "multi_thread")]
async fn handler_comments_document_the_operation() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("intel")).unwrap();
    std::fs::write(
        root.join("intel/get.remote.js"),
        "// @summary IP intel\n// @query {\"ip\":\"8.8.8.8\"}\nexports.handler = async () => ({ ok: true });\n",
    )
    .unwrap();
    std::fs::create_dir_all(root.join("note")).unwrap();
    std::fs::write(
        root.join("note/post.py"),
        "# @summary from the comment\n# @body {\"text\": \"hi\"}\ndef handler(event):\n    return {}\n",
    )
    .unwrap();
    std::fs::write(
        root.join("note/fn.config.json"),
        r#"{"invoke": {"summary": "from config"}}"#,
    )
    .unwrap();
    let e = crate::support::start_in(root, &[("FN_RUNTIMES", "node,python")]).await;
    let doc = e.get("/openapi.json").await.json();
    let remote = &doc["paths"]["/intel/remote"]["get"];
    assert_eq!(remote["summary"], "GET IP intel", "{remote}");
    assert_eq!(remote["parameters"][0]["name"], "ip", "{remote}");
    assert_eq!(remote["parameters"][0]["example"], "8.8.8.8", "{remote}");
    let note = &doc["paths"]["/note"]["post"];
    assert_eq!(note["summary"], "POST from config", "{note}");
    assert_eq!(
        note["requestBody"]["content"]["application/json"]["examples"]["primary"]["value"],
        serde_json::json!({"text": "hi"}),
        "{note}"
    );
    e.stop().await;
}

/// `/_fn/dashboard` answers the original's shape with real figures from the request log.
#[tokio::test(flavor = "multi_thread")]
async fn dashboard_counts_the_calls_it_has_seen() {
    let e = start("demo", &[]).await;
    for _ in 0..3 {
        assert_eq!(e.get("/hello").await.status, 200);
    }
    assert_eq!(e.get("/nope-not-a-route").await.status, 404);
    let d = e.get("/_fn/dashboard").await.json();
    assert_eq!(d["requests_24h"], 3, "function calls only, not the 404: {d}");
    assert_eq!(d["errors_24h"], 0, "{d}");
    assert!(d["avg_latency_ms"].as_f64().is_some_and(|ms| ms > 0.0), "{d}");
    let data: u64 = d["invocations_chart"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(data, 3, "{d}");
    assert_eq!(d["invocations_chart"]["labels"].as_array().unwrap().len(), 6);
    let post = e.send("POST", "/_fn/dashboard", &[("x-fn-request", "1")], None).await;
    assert_eq!(post.status, 405);
    e.stop().await;
}

/// The catalog lists each function's default state as the original does (`default_state`):
/// the original's own test waits on it for keep-warm.
#[tokio::test(flavor = "multi_thread")]
async fn catalog_functions_carry_their_default_state() {
    let e = start("demo", &[]).await;
    assert_eq!(e.get("/hello").await.status, 200);
    let c = e.get("/_fn/catalog").await.json();
    let hello = c["runtimes"]["python"]["functions"]
        .as_array()
        .and_then(|l| l.iter().find(|f| f["name"] == "hello.py"))
        .cloned()
        .unwrap_or_else(|| panic!("hello.py in the catalog: {c}"));
    assert_eq!(hello["default_state"]["state"], "warm", "{hello}");
    assert_eq!(hello["default_state"]["key"], "python/hello.py@default", "{hello}");
    e.stop().await;
}
