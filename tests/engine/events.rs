//! The `event` a handler receives (contract §4), seen by a python and a node echo handler,
//! and the shorthand returns of §4.1 as HTTP responses.

use crate::support::{start, TestEngine};
use serde_json::{json, Value};

async fn echo(e: &TestEngine, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> Value {
    let r = e.send(method, path, headers, body).await;
    assert_eq!(r.status, 200, "{method} {path}: {}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    r.json()["event"].clone()
}

fn assert_request_id(id: &str) {
    let parts: Vec<&str> = id.split('-').collect();
    assert_eq!(parts.len(), 4, "{id}");
    assert_eq!(parts[0], "req", "{id}");
    let ms: u64 = parts[1].parse().expect("ms");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64;
    assert!(now.abs_diff(ms) < 60_000, "{id}: not a current epoch ms");
    assert_eq!(parts[2], std::process::id().to_string(), "{id}: pid");
    assert!(
        parts[3].len() == 6 && parts[3].bytes().all(|b| b.is_ascii_digit()),
        "{id}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn python_and_node_see_the_same_event() {
    let e = start("echo", &[]).await;
    for (rt, dir, file) in [("python", "py", "py/items.[id].py"), ("node", "js", "js/items.[id].js")] {
        let path = format!("/{dir}/items/42?a=1&a=2&flag&x=hello%20world&plus=a+b");
        let ev = echo(
            &e,
            "GET",
            &path,
            &[
                ("X-Custom-Thing", "Value"),
                ("User-Agent", "fastfn-tests/1"),
                ("Cookie", "theme=dark; sid=abc123"),
            ],
            None,
        )
        .await;
        assert_eq!(ev["method"], "GET", "{rt}");
        assert_eq!(ev["path"], format!("/{dir}/items/42"), "{rt}");
        assert_eq!(ev["raw_path"], path, "{rt}");
        assert_eq!(
            ev["query"],
            json!({"a": ["1", "2"], "flag": true, "x": "hello world", "plus": "a b"}),
            "{rt}"
        );
        assert_eq!(ev["params"], json!({"id": "42"}), "{rt}");
        assert_eq!(ev["path_params"], json!({"id": "42"}), "{rt}");
        assert_eq!(ev["headers"]["x-custom-thing"], "Value", "{rt}");
        assert_eq!(ev["headers"]["user-agent"], "fastfn-tests/1", "{rt}");
        let names = ev["headers"]
            .as_object()
            .expect("headers")
            .keys()
            .cloned()
            .collect::<Vec<_>>();
        assert!(names.iter().all(|k| *k == k.to_ascii_lowercase()), "{rt}: {names:?}");
        assert!(ev.get("body").is_none(), "{rt}: a GET without body has no `body`: {ev}");
        assert_eq!(
            ev["session"],
            json!({"id": "abc123", "raw": "theme=dark; sid=abc123", "cookies": {"theme": "dark", "sid": "abc123"}}),
            "{rt}"
        );
        assert_eq!(ev["client"], json!({"ip": "127.0.0.1", "ua": "fastfn-tests/1"}), "{rt}");
        let id = ev["id"].as_str().expect("id");
        assert_request_id(id);
        assert!(ev["ts"].as_u64().is_some(), "{rt}");
        let ctx = &ev["context"];
        assert_eq!(ctx["request_id"], id, "{rt}");
        assert_eq!(ctx["runtime"], rt);
        assert_eq!(ctx["function_name"], file);
        assert_eq!(ctx["version"], "default");
        assert_eq!(ctx["timeout_ms"], 3000, "{rt}: from the folder's fn.config.json");
        assert_eq!(ctx["max_concurrency"], 20);
        assert_eq!(ctx["max_body_bytes"], 1_048_576);
        assert_eq!(ctx["worker_pool"]["max_workers"], 20, "{rt}: {ctx}");
        assert_eq!(ctx["gateway"], json!({"worker_pid": std::process::id()}));
        assert_eq!(ctx["debug"], json!({"enabled": false}));
        assert_eq!(ctx["user"], Value::Null);
        assert_eq!(ev["version"], "default", "{rt}");
        assert_eq!(ev["env"]["GREETING"], "hello", "{rt}: fn.env.json value");
        assert_eq!(ev["env"]["TOKEN"], "s3cret", "{rt}: fn.env.json {{value, is_secret}}");
    }
    e.stop().await;
}

/// Contract §3.2: `FN_ADMIN_*`, `FN_CONSOLE_*`, `FN_TRUSTED_*` never reach handlers, also
/// when they are written in `fn.env.json`.
async fn env_hides_admin_variables(dir: &str) {
    let e = start("echo", &[]).await;
    let ev = echo(&e, "GET", &format!("/{dir}/echo"), &[], None).await;
    assert_eq!(ev["env"], json!({"GREETING": "hello", "TOKEN": "s3cret"}), "{dir}");
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn python_env_hides_admin_variables() {
    env_hides_admin_variables("py").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn node_env_hides_admin_variables() {
    env_hides_admin_variables("js").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bodies_arrays_and_missing_cookies() {
    let e = start("echo", &[]).await;
    for dir in ["py", "js"] {
        let path = format!("/{dir}/echo");
        let ev = echo(
            &e,
            "POST",
            &path,
            &[("Content-Type", "text/plain")],
            Some(b"hello body"),
        )
        .await;
        assert_eq!(ev["body"], "hello body", "{dir}");
        assert_eq!(ev["method"], "POST");
        assert_eq!(ev["params"], json!({}), "{dir}: no params is {{}}");
        assert_eq!(ev["query"], json!({}), "{dir}");
        assert_eq!(ev["session"], Value::Null, "{dir}: no cookie, no session");
        assert_eq!(ev["raw_path"], path);
        // An empty body is no body.
        let ev = echo(&e, "POST", &path, &[], Some(b"")).await;
        assert!(ev.get("body").is_none(), "{dir}: {ev}");
        // Repeated headers arrive as an array.
        let ev = echo(&e, "GET", &path, &[("X-Multi", "one"), ("X-Multi", "two")], None).await;
        assert_eq!(ev["headers"]["x-multi"], json!(["one", "two"]), "{dir}");
    }
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn python_params_arrive_as_keyword_arguments() {
    let e = start("echo", &[]).await;
    let r = e.get("/py/kw/ada").await;
    assert_eq!((r.status, r.json()), (200, json!({"name": "ada"})));
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn shorthand_returns_become_responses() {
    let e = start("echo", &[]).await;
    let all_bytes: Vec<u8> = (0..=255).collect();
    // (path, status, content type, body)
    let cases: Vec<(&str, u16, &str, Vec<u8>)> = vec![
        (
            "/py/shapes?kind=dict",
            200,
            "application/json",
            br#"{"hello":"world"}"#.to_vec(),
        ),
        (
            "/py/shapes?kind=tuple",
            201,
            "text/plain; charset=utf-8",
            b"created".to_vec(),
        ),
        (
            "/py/shapes?kind=text",
            200,
            "text/plain; charset=utf-8",
            b"plain words".to_vec(),
        ),
        (
            "/py/shapes?kind=html",
            200,
            "text/html; charset=utf-8",
            b"<p>hi</p>".to_vec(),
        ),
        (
            "/py/shapes?kind=bytes",
            200,
            "application/octet-stream",
            all_bytes.clone(),
        ),
        (
            "/js/shapes?kind=object",
            200,
            "application/json",
            br#"{"hello":"world"}"#.to_vec(),
        ),
        ("/js/shapes?kind=array", 200, "application/json", b"[1,2,3]".to_vec()),
        (
            "/js/shapes?kind=text",
            200,
            "text/plain; charset=utf-8",
            b"plain words".to_vec(),
        ),
        (
            "/js/shapes?kind=html",
            200,
            "text/html; charset=utf-8",
            b"<p>hi</p>".to_vec(),
        ),
        (
            "/js/shapes?kind=bytes",
            200,
            "application/octet-stream",
            all_bytes.clone(),
        ),
        (
            "/js/shapes?kind=response",
            202,
            "text/plain;charset=UTF-8",
            b"from a Response".to_vec(),
        ),
    ];
    for (path, status, ctype, body) in cases {
        let r = e.get(path).await;
        assert_eq!(r.status, status, "{path}: {}", r.text());
        assert_eq!(r.header("content-type"), Some(ctype), "{path}");
        assert_eq!(r.body, body, "{path}");
    }
    assert_eq!(e.get("/py/shapes?kind=tuple").await.header("x-shape"), Some("tuple"));
    assert_eq!(
        e.get("/js/shapes?kind=response").await.header("x-shape"),
        Some("response")
    );
    // None / null → empty 200.
    for path in ["/py/shapes", "/js/shapes"] {
        let r = e.get(path).await;
        assert_eq!((r.status, r.body.len()), (200, 0), "{path}");
    }
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn demo_binary_and_html_replies() {
    let e = start("demo", &[]).await;
    let png = e.get("/pixel").await;
    assert_eq!(png.status, 200);
    assert_eq!(png.header("content-type"), Some("image/png"));
    assert_eq!(&png.body[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(png.body.len(), 70);
    let bytes = e.get("/bytes").await;
    assert_eq!(bytes.body, vec![0, 1, 2, 253, 254, 255]);
    let page = e.get("/page").await;
    assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"));
    assert!(page.text().starts_with("<!doctype html>"));
    let teapot = e.get("/teapot").await;
    assert_eq!((teapot.status, teapot.text().as_str()), (418, "I'm a teapot\n"));
    assert_eq!(teapot.header("x-brew"), Some("earl-grey"));
    let settings = e.get("/settings").await.json();
    assert_eq!(
        settings,
        json!({"greeting": "hi from fn.env.json", "has_api_key": true})
    );
    e.stop().await;
}
