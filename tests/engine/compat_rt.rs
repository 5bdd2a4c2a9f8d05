//! Lua, Go and Rust handlers written the way the original FastFN's examples are
//! (`fixtures/compat-rt`, see its README), through the gateway: OpenResty's `cjson`, helper
//! modules, Go `Handler` returning `interface{}` or a struct, helper files, a function's own
//! `go.mod` and `Cargo.toml`, and per-call stdout/stderr of compiled handlers in `/_fn/logs`.
//! One engine per runtime, one build per compiled function.

use crate::support::{copy_fixture, start, start_in, Resp, TestEngine};
use serde_json::{json, Value};

/// Under CI every toolchain must be there; elsewhere a missing one skips with a message.
fn require(tool: &str) -> bool {
    if which::which(tool).is_ok() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "`{tool}` is missing: CI must install it"
    );
    eprintln!("SKIPPED: `{tool}` is not on PATH");
    false
}

async fn post(e: &TestEngine, path: &str, body: &str) -> Resp {
    e.send(
        "POST",
        path,
        &[("content-type", "application/json")],
        Some(body.as_bytes()),
    )
    .await
}

/// `(function, runtime, stream, line)` of the log book's last lines.
async fn log_book(e: &TestEngine) -> Vec<(String, String, String, String)> {
    let r = e.get("/_fn/logs?file=runtime&format=json&lines=200").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    r.json()["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|l| {
            (
                text(&l["function"]),
                text(&l["runtime"]),
                text(&l["stream"]),
                text(&l["line"]),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn lua_handlers_use_cjson_and_helper_modules() {
    let e = start("compat-rt", &[("FN_RUNTIMES", "lua")]).await;
    e.ready().await;

    let r = e.get("/luaflags").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    // cjson escapes `/` and the reply is the handler's own bytes.
    assert_eq!(
        r.text(),
        r#"{"flags":{"beta":false,"dark_mode":true},"page":"\/luaflags","runtime":"lua"}"#
    );

    let r = e.get("/luaproducts").await;
    assert_eq!(
        r.json(),
        json!({"count": 2, "items": [{"id": 1, "name": "Lamp", "price": 12.5}, {"id": 2, "name": "Desk", "price": 80}]})
    );
    let r = post(&e, "/luaproducts", r#"{"name":"Chair"}"#).await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.text(), r#"{"id":3,"name":"Chair","tags":[]}"#);
    assert_eq!(r.header("x-fn-stdout"), None, "no debug headers asked for");
    // `require("cjson").decode` raises, so the handler's pcall sees the error.
    let r = post(&e, "/luaproducts", "{not json").await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({"error": "body is not JSON", "detail": "Expected object key string but found invalid token at character 2"})
    );
    let r = post(&e, "/luaproducts", r#"{"name":""}"#).await;
    assert_eq!(r.status, 422);

    let r = e.get("/luajson").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({
            "again": r#"{"a":[1,null,{"b":"x\/y"}],"empty":{},"none":null,"pi":3.25}"#,
            "hole_is_null": true,
            "none_is_null": true,
            "empty_is_table": true,
            "names": ["ADA", "LIN"],
            "no_list": [],
        })
    );
    let r = post(&e, "/luajson?kind=bad", "[1,").await;
    assert_eq!(
        r.json(),
        json!({
            "got_nil": true,
            "safe_error": "Expected value but found T_END at character 4",
            "raised": "Expected value but found T_END at character 4",
        })
    );
    let r = post(
        &e,
        "/luajson?kind=echo",
        r#"{"n":null,"list":[1,2,null],"deep":{"e":{}},"s":"é"}"#,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), r#"{"deep":{"e":{}},"list":[1,2,null],"n":null,"s":"é"}"#);
    let lines = log_book(&e).await;
    assert!(
        lines
            .iter()
            .any(|(_, rt, stream, line)| rt == "lua" && stream == "stdout" && line == "creating Chair"),
        "{lines:?}"
    );
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn go_handler_forms_helpers_and_go_mod() {
    if !require("go") {
        return;
    }
    let dir = copy_fixture("compat-rt");
    let e = start_in(dir.path(), &[("FN_RUNTIMES", "go")]).await;

    // `Handler` returning a struct without JSON tags, a local module through go.mod's
    // relative `replace` (go.mod asks for Go 1.22.1 and a toolchain line), a helper file.
    let r = e.get("/goforms?kind=struct").await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({"greeting": "hello go from a local module", "loud": "HI!"})
    );
    let r = e.get("/goforms").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-form"), Some("map"));
    assert_eq!(r.json(), json!({"kind": "map", "method": "GET"}));
    let r = e.get("/goforms?kind=text").await;
    assert_eq!((r.status, r.text()), (200, "plain words from go".to_string()));
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    let r = e.get("/goforms?kind=html").await;
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    let r = e.get("/goforms?kind=bytes").await;
    assert_eq!((r.status, r.body.clone()), (200, vec![0xff, 0x00, 0x01]));

    // File routes sharing `_shared.go`; `get.go` returns a named struct type.
    let r = e.get("/goproducts").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({"count": 2, "items": [{"id": 1, "name": "Lamp", "price": 12.5}, {"id": 2, "name": "Desk", "price": 80}]})
    );
    let r = post(&e, "/goproducts", r#"{"name":"Chair"}"#).await;
    assert_eq!((r.status, r.json()), (201, json!({"id": 3, "name": "Chair"})));

    // What the handler printed, per call, in the log book under the function's name.
    let lines = log_book(&e).await;
    let mine: Vec<_> = lines
        .iter()
        .filter(|(_, rt, _, line)| rt == "go" && line.starts_with("goforms"))
        .collect();
    let out: Vec<_> = mine
        .iter()
        .filter(|(_, _, s, _)| s == "stdout")
        .map(|l| l.3.as_str())
        .collect();
    assert_eq!(
        out,
        [
            "goforms called with kind struct",
            "goforms called with kind ",
            "goforms called with kind text",
            "goforms called with kind html",
            "goforms called with kind bytes"
        ],
        "{lines:?}"
    );
    assert_eq!(mine.iter().filter(|(_, _, s, _)| s == "stderr").count(), 5, "{lines:?}");
    assert!(mine.iter().all(|(f, ..)| f.contains("goforms")), "{mine:?}");
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rust_helper_modules_and_cargo_dependencies() {
    if !require("cargo") {
        return;
    }
    let dir = copy_fixture("compat-rt");
    let e = start_in(dir.path(), &[("FN_RUNTIMES", "rust")]).await;
    let r = e.get("/rustmods?n=42").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({"count": "42 items", "greeting": "hello rust from a path crate"})
    );
    let r = e.get("/rustmods?n=7").await;
    assert_eq!(r.json()["count"], "7 items");
    let lines = log_book(&e).await;
    let mine: Vec<_> = lines
        .iter()
        .filter(|(_, rt, _, line)| rt == "rust" && line.starts_with("rustmods"))
        .map(|(f, _, s, l)| (f.as_str(), s.as_str(), l.as_str()))
        .collect();
    let out: Vec<_> = mine.iter().filter(|l| l.1 == "stdout").map(|l| l.2).collect();
    assert_eq!(
        out,
        ["rustmods called with n=42", "rustmods called with n=7"],
        "{lines:?}"
    );
    let err: Vec<_> = mine.iter().filter(|l| l.1 == "stderr").map(|l| l.2).collect();
    assert_eq!(err, ["rustmods stderr line", "rustmods stderr line"], "{lines:?}");
    e.stop().await;
}
