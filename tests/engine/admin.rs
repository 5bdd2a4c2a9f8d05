//! The admin surface (contract §6, docs/compat.md "Admin endpoints"): its guards (CSRF header,
//! loopback clients or a token, loopback `Host`), the switches that turn it off, and
//! `/_fn/invoke`, `/_fn/logs`, `/_fn/docs`. `fixtures/admin`: `hello.py`, `whoami.py` (returns
//! `event.context.user`), `chatty.py` (prints `?n=` lines) and `quiet.py` (prints one).

use crate::support::{start, Resp, TestEngine};
use serde_json::{json, Value};

async fn admin_engine(env: &[(&str, &str)]) -> TestEngine {
    let mut all = vec![("FN_RUNTIMES", "python")];
    all.extend_from_slice(env);
    start("admin", &all).await
}

const CSRF: (&str, &str) = ("X-Fn-Request", "1");

async fn invoke(e: &TestEngine, body: Value) -> Resp {
    e.send(
        "POST",
        "/_fn/invoke",
        &[CSRF, ("Content-Type", "application/json")],
        Some(body.to_string().as_bytes()),
    )
    .await
}

fn assert_error(r: &Resp, status: u16, error: &str, what: &str) {
    assert_eq!(r.status, status, "{what}: {}", r.text());
    assert_eq!(r.json(), json!({ "error": error }), "{what}");
    assert_eq!(r.header("content-type"), Some("application/json"), "{what}");
}

#[tokio::test(flavor = "multi_thread")]
async fn non_get_admin_requests_need_the_csrf_header() {
    let e = admin_engine(&[]).await;
    let invoke_body = json!({"name": "hello.py"}).to_string();
    for (path, body) in [("/_fn/reload", None), ("/_fn/invoke", Some(invoke_body.as_bytes()))] {
        let r = e.send("POST", path, &[], body).await;
        assert_error(&r, 403, "missing CSRF header", path);
        let r = e.send("POST", path, &[("X-Fn-Request", "0")], body).await;
        assert_error(&r, 403, "missing CSRF header", path);
        let r = e.send("POST", path, &[CSRF], body).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text());
    }
    let r = e.send("POST", "/_fn/reload", &[CSRF], None).await;
    assert_eq!(r.json()["ok"], true);
    // GET needs no header.
    for path in [
        "/_fn/reload",
        "/_fn/catalog",
        "/_fn/logs",
        "/_fn/openapi.json",
        "/_fn/docs",
    ] {
        assert_eq!(e.get(path).await.status, 200, "GET {path}");
    }
    e.stop().await;
}

/// The guard admits loopback clients only. A non-loopback client address cannot be made here
/// without network namespaces; a loopback client sending `X-Forwarded-For` (i.e. a request
/// relayed by a local proxy) goes through the same refusal branch, so it stands in for one.
#[tokio::test(flavor = "multi_thread")]
async fn admin_answers_loopback_clients_only_unless_the_token_matches() {
    let e = admin_engine(&[("FN_ADMIN_TOKEN", "s3cret")]).await;
    let xff = ("X-Forwarded-For", "1.2.3.4");
    assert_eq!(e.get("/_fn/catalog").await.status, 200, "a loopback client");
    let r = e.send("GET", "/_fn/catalog", &[xff], None).await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.json()["error"].is_string());
    let r = e.send("POST", "/_fn/reload", &[xff, CSRF], None).await;
    assert_eq!(r.status, 403, "{}", r.text());
    let r = e
        .send("GET", "/_fn/catalog", &[xff, ("x-fn-admin-token", "s3cret")], None)
        .await;
    assert_eq!(r.status, 200, "the right token: {}", r.text());
    assert!(r.json()["mapped_routes"]["/hello"].is_array());
    for wrong in ["s3cre", "s3cret2", "S3CRET", ""] {
        let r = e
            .send("GET", "/_fn/catalog", &[xff, ("x-fn-admin-token", wrong)], None)
            .await;
        assert_eq!(r.status, 403, "token {wrong:?}: {}", r.text());
    }
    // Health is always open; user routes are no admin endpoints.
    let r = e.send("GET", "/_fn/health", &[xff], None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(e.send("GET", "/hello", &[xff], None).await.status, 200);
    e.stop().await;

    // No token configured (an empty FN_ADMIN_TOKEN is none): no header value opens the door.
    let e = admin_engine(&[("FN_ADMIN_TOKEN", "")]).await;
    for token in ["", "s3cret"] {
        let r = e
            .send("GET", "/_fn/catalog", &[xff, ("x-fn-admin-token", token)], None)
            .await;
        assert_eq!(r.status, 403, "token {token:?} with none configured: {}", r.text());
    }
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_answers_loopback_host_names_only() {
    let e = admin_engine(&[]).await;
    let evil = ("Host", "evil.example.com");
    let r = e.send("GET", "/_fn/catalog", &[evil], None).await;
    assert_error(&r, 421, "host not allowed", "Host: evil.example.com");
    // The guard reads `Host` only: a forwarded host is neither trusted nor held against a
    // loopback `Host` (see `dns_rebinding_attack_is_refused` for the attack it once allowed).
    let r = e
        .send("GET", "/_fn/catalog", &[("X-Forwarded-Host", "evil.example.com")], None)
        .await;
    assert_eq!(r.status, 200, "X-Forwarded-Host is not consulted: {}", r.text());
    let r = e.send("POST", "/_fn/reload", &[evil, CSRF], None).await;
    assert_eq!(r.status, 421, "{}", r.text());
    for host in ["localhost:1234", "127.0.0.1", "[::1]:8080", "app.localhost"] {
        let r = e.send("GET", "/_fn/catalog", &[("Host", host)], None).await;
        assert_eq!(r.status, 200, "Host: {host}: {}", r.text());
    }
    // User routes and health do not care about the Host (no allow_hosts here).
    assert_eq!(e.send("GET", "/hello", &[evil], None).await.status, 200);
    assert_eq!(e.send("GET", "/_fn/health", &[evil], None).await.status, 200);
    e.stop().await;
}

/// The DNS-rebinding attack, replayed: a page on `evil.example` rebound to 127.0.0.1 is
/// same-origin with the engine, so it may send `X-Fn-Request: 1` and any `X-Forwarded-Host`;
/// only the `Host` its browser sets gives it away. Every admin surface must refuse it, and the
/// daemon it tried to kill must still be the same process.
#[tokio::test(flavor = "multi_thread")]
async fn dns_rebinding_attack_is_refused() {
    let e = admin_engine(&[("FN_UI_ENABLED", "1")]).await;
    let before = crate::support::health_pids(&e.get("/_fn/health").await.json());
    let attack = [
        ("Host", "evil.example:8080"),
        ("X-Forwarded-Host", "localhost"),
        ("Origin", "http://evil.example:8080"),
        CSRF,
    ];
    let invoke_body = json!({"name": "hello.py"}).to_string();
    let cases: [(&str, &str, Option<&[u8]>); 10] = [
        ("POST", "/_fn/daemons/kill?runtime=python&index=1", None),
        ("POST", "/_fn/invoke", Some(invoke_body.as_bytes())),
        ("GET", "/_fn/catalog", None),
        ("GET", "/_fn/logs", None),
        ("GET", "/_fn/resolve?path=/hello", None),
        ("POST", "/_fn/reload", None),
        ("GET", "/_fn/openapi.json", None),
        ("GET", "/_fn/events", None),
        ("GET", "/console/", None),
        ("GET", "/console/index.html", None),
    ];
    for (method, path, body) in cases {
        let r = e.send(method, path, &attack, body).await;
        assert_error(&r, 421, "host not allowed", &format!("{method} {path}"));
    }
    let after = crate::support::health_pids(&e.get("/_fn/health").await.json());
    assert!(!before.is_empty());
    assert_eq!(before, after, "no daemon was killed");
    // The same requests with the engine's own Host go through (the guard is not just closed).
    let r = e
        .send(
            "POST",
            "/_fn/invoke",
            &[("X-Forwarded-Host", "evil.example"), CSRF],
            Some(invoke_body.as_bytes()),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_api_can_be_turned_off() {
    let e = admin_engine(&[("FN_ADMIN_API_ENABLED", "0")]).await;
    let invoke_body = json!({"name": "hello.py"}).to_string();
    let cases: [(&str, &str, Option<&[u8]>); 4] = [
        ("GET", "/_fn/catalog", None),
        ("POST", "/_fn/reload", None),
        ("POST", "/_fn/invoke", Some(invoke_body.as_bytes())),
        ("GET", "/_fn/logs", None),
    ];
    for (method, path, body) in cases {
        let r = e.send(method, path, &[CSRF], body).await;
        assert_error(&r, 404, "admin api disabled", path);
    }
    // As in the original, the docs have their own switch (FN_DOCS_ENABLED).
    for path in ["/_fn/openapi.json", "/_fn/docs"] {
        assert_eq!(e.get(path).await.status, 200, "{path}");
    }
    assert_eq!(e.get("/hello").await.status, 200);
    assert_eq!(e.get("/_fn/health").await.status, 200);
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn docs_can_be_turned_off_alone() {
    let e = admin_engine(&[("FN_DOCS_ENABLED", "0")]).await;
    for path in ["/_fn/openapi.json", "/_fn/docs"] {
        assert_error(&e.get(path).await, 404, "docs disabled", path);
    }
    assert_eq!(e.get("/_fn/catalog").await.status, 200);
    assert_eq!(e.get("/hello").await.status, 200);
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn docs_page_uses_the_openapi_document() {
    let e = admin_engine(&[]).await;
    let r = e.get("/_fn/docs").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    let page = r.text();
    assert!(page.to_ascii_lowercase().starts_with("<!doctype html>"), "{page}");
    assert!(page.contains("/_fn/openapi.json"), "{page}");
    let spec = e.get("/_fn/openapi.json").await;
    assert_eq!(spec.status, 200);
    let spec = spec.json();
    assert_eq!(spec["openapi"], "3.1.0");
    assert!(spec["paths"]["/hello"]["get"].is_object(), "{}", spec["paths"]);
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn invoke_calls_a_function_by_name_or_path() {
    let e = admin_engine(&[]).await;
    let r = invoke(&e, json!({"name": "hello.py"})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let out = r.json();
    for key in ["status", "latency_ms", "route", "headers", "body"] {
        assert!(out.get(key).is_some(), "{key} missing: {out}");
    }
    assert_eq!(out["status"], 200);
    assert!(out["latency_ms"].as_f64().is_some_and(|ms| ms >= 0.0), "{out}");
    assert_eq!(out["route"], "/hello");
    assert_eq!(out["headers"]["content-type"], "application/json", "{out}");
    let body: Value = serde_json::from_str(out["body"].as_str().expect("body text")).expect("JSON body");
    assert_eq!(body, json!({"message": "Hello, world!"}));

    let r = invoke(&e, json!({"name": "/hello", "query": {"name": "x"}})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let out = r.json();
    assert_eq!(out["route"], "/hello");
    let body: Value = serde_json::from_str(out["body"].as_str().expect("body text")).expect("JSON body");
    assert_eq!(body, json!({"message": "Hello, x!"}));

    for name in ["nope.py", "/nope", "hello"] {
        let r = invoke(&e, json!({ "name": name })).await;
        assert_error(&r, 404, "unknown function or version", name);
    }

    // The whole `context` object is `event.context.user` (the original's invoke endpoint).
    let context = json!({"id": "u1", "roles": ["admin"]});
    let r = invoke(&e, json!({"name": "whoami.py", "context": context})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let body: Value = serde_json::from_str(r.json()["body"].as_str().expect("body")).expect("JSON body");
    assert_eq!(body, json!({ "user": context }), "context reaches event.context.user");
    // A plain HTTP call has no user.
    assert_eq!(e.get("/whoami").await.json(), json!({"user": null}));
    e.stop().await;
}

/// The structured runtime lines of `/_fn/logs?file=runtime&format=json` (`entries`).
fn log_lines(r: &Resp) -> Vec<Value> {
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["entries"].as_array().expect("entries").clone()
}

fn texts(lines: &[Value]) -> Vec<String> {
    lines
        .iter()
        .map(|l| l["line"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_return_what_handlers_printed() {
    let e = admin_engine(&[]).await;
    assert_eq!(e.get("/chatty?n=7").await.status, 200);
    assert_eq!(e.get("/quiet").await.status, 200);
    let lines = log_lines(
        &e.get("/_fn/logs?file=runtime&format=json&fn=chatty.py&stream=stdout&lines=5")
            .await,
    );
    assert_eq!(
        texts(&lines),
        [
            "chatty out 3",
            "chatty out 4",
            "chatty out 5",
            "chatty out 6",
            "chatty out 7"
        ],
        "the last 5 stdout lines of chatty.py, oldest first"
    );
    for l in &lines {
        assert_eq!(
            (&l["function"], &l["stream"], &l["runtime"]),
            (&json!("chatty.py"), &json!("stdout"), &json!("python")),
            "{l}"
        );
    }
    let lines = log_lines(
        &e.get("/_fn/logs?file=runtime&format=json&fn=chatty.py&stream=stderr")
            .await,
    );
    assert_eq!(texts(&lines), ["chatty err"]);
    let lines = log_lines(
        &e.get("/_fn/logs?file=runtime&format=json&fn=quiet.py&stream=stdout")
            .await,
    );
    assert_eq!(texts(&lines), ["quiet out"]);

    // `lines` is capped at 2000. The log book itself keeps the last 2000 lines, so this shows
    // the documented ceiling (no error, the newest 2000) rather than the cap on its own.
    assert_eq!(e.get("/chatty?n=2500").await.status, 200);
    for lines_param in ["2001", "100000"] {
        let lines = log_lines(
            &e.get(&format!(
                "/_fn/logs?file=runtime&format=json&fn=chatty.py&lines={lines_param}"
            ))
            .await,
        );
        let t = texts(&lines);
        assert_eq!(t.len(), 2000, "lines={lines_param}");
        assert_eq!(
            (t[0].as_str(), t[1998].as_str(), t[1999].as_str()),
            ("chatty out 502", "chatty out 2500", "chatty err")
        );
    }
    e.stop().await;
}

/// Loopback clients are admitted however they arrive: on a dual-stack listener (`FN_HOST=::`)
/// an IPv4 client on 127.0.0.1 shows up as `::ffff:127.0.0.1`, which is still loopback.
#[tokio::test(flavor = "multi_thread")]
async fn ipv4_loopback_clients_of_a_dual_stack_listener_are_admitted() {
    let e = admin_engine(&[("FN_HOST", "::")]).await;
    let v4 = std::net::SocketAddr::from(([127, 0, 0, 1], e.addr().port()));
    let v6 = std::net::SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, e.addr().port()));
    let r = crate::support::request(v6, "GET", "/_fn/catalog", &[], None).await;
    assert_eq!(r.status, 200, "over ::1: {}", r.text());
    let r = crate::support::request(v4, "GET", "/hello", &[], None).await;
    assert_eq!(r.status, 200, "the listener takes IPv4: {}", r.text());
    let r = crate::support::request(v4, "GET", "/_fn/catalog", &[], None).await;
    assert_eq!(r.status, 200, "over 127.0.0.1: {}", r.text());
    e.stop().await;
}
