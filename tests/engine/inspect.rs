//! The request inspector (issue 12): every answer recorded with its reason and why, read at
//! `/_fn/requests`; `X-Fn-Reason` under `FN_DEBUG_HEADERS=1`; the waterfall's stages; the
//! handler's output per request; replay with edits and its diff (also after a reload); curl
//! and HAR exports; secrets masked.
//!
//! `fixtures/inspect`: `hello.py`/`hello-js.js` print a line to each stream; `post.echo.py`
//! answers the JSON body it got (POST only); `throws.py` raises; `slow.py` sleeps 60 ms;
//! `status.py?code=` answers that status; `nap/` sleeps past its 300 ms timeout; `tiny/` takes
//! 8 body bytes; `busy/` (one worker, no queue) and `queued/` (one worker, one queue place,
//! 100 ms) hold their slot `?s=` seconds; `only/` is for `api.example.com`; `/dup` is claimed
//! twice by node; `_secret.py` is a private module; `both.js` shadows `both.py`.

use crate::support::{copy_fixture, request, start, start_in, wait_for, Resp, TestEngine};
use serde_json::{json, Value};
use std::time::Duration;

const CSRF: (&str, &str) = ("X-Fn-Request", "1");

async fn records(e: &TestEngine, query: &str) -> Vec<Value> {
    let r = e.get(&format!("/_fn/requests?limit=200{query}")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["requests"].as_array().cloned().unwrap_or_default()
}

/// The newest record of `method path` (the request line's path, without query).
async fn record_of(e: &TestEngine, method: &str, path: &str) -> Value {
    records(e, "&admin=1")
        .await
        .into_iter()
        .find(|r| r["method"] == method && r["path"] == path)
        .unwrap_or_else(|| panic!("no record of {method} {path}"))
}

/// Send, then check status, `X-Fn-Reason` and the record's reason and why.
async fn expect(e: &TestEngine, resp: Resp, path: &str, status: u16, reason: &str, why: &[&str]) -> Value {
    assert_eq!(resp.status, status, "{path}: {}", resp.text());
    assert_eq!(resp.header("x-fn-reason"), Some(reason), "{path}: {:?}", resp.headers);
    let method = if path == "/tiny" { "POST" } else { "GET" };
    let rec = record_of(e, method, path).await;
    assert_eq!(rec["status"], status, "{rec}");
    assert_eq!(rec["reason"], reason, "{rec}");
    let text = rec["why"].as_str().unwrap_or_default();
    for w in why {
        assert!(text.contains(w), "{path}: why {text:?} lacks {w:?}");
    }
    rec
}

#[tokio::test(flavor = "multi_thread")]
async fn every_reason_code_comes_from_a_real_request_with_its_why() {
    let e = start("inspect", &[("FN_DEBUG_HEADERS", "1")]).await;
    e.ready().await;
    expect(
        &e,
        e.get("/helo").await,
        "/helo",
        404,
        "no_route",
        &["no route matches /helo", "nearest: /hello"],
    )
    .await;
    expect(
        &e,
        e.get("/echo").await,
        "/echo",
        404,
        "method_mismatch",
        &["allows POST", "not GET"],
    )
    .await;
    expect(
        &e,
        e.get("/dup").await,
        "/dup",
        409,
        "ambiguous",
        &["dup/index.js", "get.dup.js"],
    )
    .await;
    expect(
        &e,
        e.get("/only").await,
        "/only",
        421,
        "host_not_allowed",
        &["allow_hosts"],
    )
    .await;
    let big = e.send("POST", "/tiny", &[], Some(b"twenty bytes of body")).await;
    expect(
        &e,
        big,
        "/tiny",
        413,
        "body_too_large",
        &["Content-Length 20", "max_body_bytes of 8 bytes"],
    )
    .await;
    expect(
        &e,
        e.get("/throws").await,
        "/throws",
        500,
        "handler_error",
        &["ValueError: boom", "(at throws.py:3)"],
    )
    .await;
    expect(
        &e,
        e.get("/status?code=101").await,
        "/status",
        502,
        "bad_reply",
        &["status.py"],
    )
    .await;
    expect(
        &e,
        e.get("/nap").await,
        "/nap",
        504,
        "timeout",
        &["timeout_ms of 300 ms"],
    )
    .await;
    expect(
        &e,
        e.get("/a%zz").await,
        "/a%zz",
        400,
        "invalid_request",
        &["invalid path"],
    )
    .await;

    // Pool full: one call holds the only worker, the next is refused at once.
    let addr = e.addr();
    let holder = tokio::spawn(async move { request(addr, "GET", "/busy?s=1", &[], None).await });
    wait_for(Duration::from_secs(5), || {
        e.engine.health()["functions"]["states"].as_array().is_some_and(|s| {
            s.iter()
                .any(|st| st["key"].as_str().unwrap_or("").contains("busy") && st["worker_pool"]["active"] == 1)
        })
    })
    .await;
    expect(
        &e,
        e.get("/busy").await,
        "/busy",
        429,
        "pool_full",
        &["max_workers 1, max_queue 0", "1 running"],
    )
    .await;
    assert_eq!(holder.await.unwrap().status, 200);

    // Queue timeout: the second call waits 100 ms in the queue, then gives up.
    let holder = tokio::spawn(async move { request(addr, "GET", "/queued?s=1", &[], None).await });
    wait_for(Duration::from_secs(5), || {
        e.engine.health()["functions"]["states"].as_array().is_some_and(|s| {
            s.iter()
                .any(|st| st["key"].as_str().unwrap_or("").contains("queued") && st["worker_pool"]["active"] == 1)
        })
    })
    .await;
    let r = e.get("/queued").await;
    let status = r.status;
    let rec = expect(
        &e,
        r,
        "/queued",
        status,
        "queue_timeout",
        &["queue_timeout_ms 100", "1 running"],
    )
    .await;
    let waited: u64 = rec["why"].as_str().unwrap()["waited ".len()..]
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{rec}"));
    assert!(waited >= 100, "{rec}");
    // The wait was in the queue: its own stage, apart from the admission check.
    assert!(rec["stages"]["queue_us"].as_u64().unwrap() >= 100_000, "{rec}");
    assert_eq!(holder.await.unwrap().status, 200);

    // A success: reason ok, the record's id is the request id the client saw.
    let r = e.get("/hello").await;
    assert_eq!(r.header("x-fn-reason"), Some("ok"));
    let rec = record_of(&e, "GET", "/hello").await;
    assert_eq!(rec["reason"], "ok");
    assert_eq!(rec["kind"], "function");
    assert!(rec.get("why").is_none(), "{rec}");
    assert_eq!(Some(rec["id"].as_str().unwrap()), r.header("x-fn-request-id"));
    assert_eq!((&rec["runtime"], &rec["file"]), (&json!("python"), &json!("hello.py")));

    // Admin calls are recorded apart: only with `admin=1`.
    assert!(records(&e, "").await.iter().all(|r| r["kind"] != "admin"));
    let admin = records(&e, "&admin=1").await;
    assert!(admin
        .iter()
        .any(|r| r["path"] == "/_fn/requests" && r["reason"] == "admin"));
    // Newest first, and `limit` is honoured.
    let two = e.get("/_fn/requests?limit=2").await.json();
    assert_eq!(two["requests"].as_array().unwrap().len(), 2);
    assert_eq!(two["requests"][0]["path"], "/hello");
    assert_eq!(two["capacity"], 5000);
    // `/_fn/resolve` gives the same reason for a request not sent.
    for (url, reason) in [
        ("/echo", "method_mismatch"),
        ("/helo", "no_route"),
        ("/dup", "ambiguous"),
        ("/hello", "ok"),
    ] {
        let r = e.get(&format!("/_fn/resolve?method=GET&url={url}")).await.json();
        assert_eq!(r["reason"], reason, "{url}: {r}");
    }
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn all_sockets_down_names_each_socket() {
    // A socket in a folder that cannot exist: the daemon cannot listen, the socket is down.
    let sockets = r#"{"python":["unix:/proc/no-such-folder/py.sock"]}"#;
    let e = start(
        "inspect",
        &[
            ("FN_RUNTIMES", "python"),
            ("FN_RUNTIME_SOCKETS", sockets),
            ("FN_DEBUG_HEADERS", "1"),
        ],
    )
    .await;
    wait_for(Duration::from_secs(5), || {
        e.engine.health()["runtimes"]["python"]["health"]["up"] == false
    })
    .await;
    let r = e.get("/hello").await;
    let rec = expect(&e, r, "/hello", 503, "all_sockets_down", &["socket 1 down"]).await;
    assert_eq!(rec["runtime"], "python");
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn without_debug_headers_the_reason_is_in_the_log_only() {
    let e = start("inspect", &[]).await;
    let r = e.get("/nope").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.header("x-fn-reason"), None);
    let rec = record_of(&e, "GET", "/nope").await;
    assert_eq!(rec["reason"], "no_route");
    // Nothing captured without a dashboard (or FN_INSPECT_CAPTURE=always).
    assert_eq!(rec["captured"], false);
    // Nobody looked while it was answered: a method mismatch is told apart when read.
    assert_eq!(e.get("/echo").await.status, 404);
    let rec_echo = record_of(&e, "GET", "/echo").await;
    assert_eq!(rec_echo["reason"], "method_mismatch", "{rec_echo}");
    assert!(rec_echo["why"].as_str().unwrap().contains("allows POST"), "{rec_echo}");
    // A private module's path, and a URL two runtimes claim (node first here).
    assert_eq!(e.get("/_secret").await.status, 404);
    let private = record_of(&e, "GET", "/_secret").await;
    assert_eq!(private["reason"], "private_file", "{private}");
    assert!(
        private["why"]
            .as_str()
            .unwrap()
            .starts_with("_secret.py exists but is not a route"),
        "{private}"
    );
    let r = e.get("/both").await;
    assert_eq!((r.status, r.json()["from"].as_str()), (200, Some("node")));
    let both = record_of(&e, "GET", "/both").await;
    assert_eq!(both["reason"], "shadowed", "{both}");
    let why = both["why"].as_str().unwrap();
    assert!(
        why.contains("served by both.js (node)") && why.contains("both.py (python)") && why.contains("force-url"),
        "{why}"
    );
    // The admin guard: a replay without the CSRF header is refused.
    let id = rec["id"].as_str().unwrap().to_string();
    let body = json!({"id": id}).to_string();
    let r = e.send("POST", "/_fn/requests/replay", &[], Some(body.as_bytes())).await;
    assert_eq!(r.status, 403, "{}", r.text());
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_waterfall_adds_up_to_the_total() {
    let e = start("inspect", &[]).await;
    e.ready().await;
    // Warm first: the measured call is an ordinary one.
    assert_eq!(e.get("/slow").await.status, 200);
    assert_eq!(e.get("/slow").await.status, 200);
    let rec = record_of(&e, "GET", "/slow").await;
    let s = &rec["stages"];
    let sum: u64 = crate::inspect_stages::STAGES
        .iter()
        .map(|k| s[k].as_u64().unwrap_or_else(|| panic!("{k} missing in {s}")))
        .sum();
    let total = rec["latency_us"].as_u64().unwrap();
    // The 60 ms are the handler's, as the python daemon measured them.
    assert!(s["handler_us"].as_u64().unwrap() >= 60_000, "{s}");
    assert!(sum <= total, "stages {sum} µs over the total {total} µs");
    assert!(
        (total - sum) as f64 <= total as f64 * 0.05,
        "stages {sum} µs vs total {total} µs: {s}"
    );
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn each_request_keeps_its_handlers_output() {
    let e = start("inspect", &[]).await;
    e.ready().await;
    for (path, out, err) in [
        ("/hello", "hello stdout line", "hello stderr line"),
        ("/hello-js", "node stdout line", "node stderr line"),
    ] {
        assert_eq!(e.get(path).await.status, 200);
        let rec = record_of(&e, "GET", path).await;
        assert!(rec["stdout"].as_str().unwrap_or("").contains(out), "{rec}");
        assert!(rec["stderr"].as_str().unwrap_or("").contains(err), "{rec}");
    }
    // The stack of a failed call is its stderr.
    e.get("/throws").await;
    let rec = record_of(&e, "GET", "/throws").await;
    assert!(rec["stderr"].as_str().unwrap_or("").contains("ValueError"), "{rec}");
    e.stop().await;
}

async fn replay(e: &TestEngine, edit: Value) -> Value {
    let r = e
        .send(
            "POST",
            "/_fn/requests/replay",
            &[CSRF],
            Some(edit.to_string().as_bytes()),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

#[tokio::test(flavor = "multi_thread")]
async fn replay_with_an_edited_body_shows_a_json_diff_and_secrets_stay_masked() {
    let e = start("inspect", &[("FN_INSPECT_CAPTURE", "always")]).await;
    e.ready().await;
    let headers = [
        ("Authorization", "Bearer s3cret-token"),
        ("Content-Type", "application/json"),
    ];
    let r = e.send("POST", "/echo", &headers, Some(br#"{"a":1,"keep":"x"}"#)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let rec = record_of(&e, "POST", "/echo").await;
    let id = rec["id"].as_str().unwrap().to_string();

    // The detail masks the credential, in the request and in the answer's echo of it.
    let d = e.get(&format!("/_fn/requests/{id}")).await.json();
    let auth = |d: &Value| {
        d["request"]["headers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h[0] == "authorization")
            .map(|h| h[1].as_str().unwrap().to_string())
    };
    assert_eq!(auth(&d).as_deref(), Some("Bearer ••••••"), "{d}");
    assert_eq!(d["request"]["body"], r#"{"a":1,"keep":"x"}"#);
    assert!(!d["curl"].as_str().unwrap().contains("s3cret"), "{d}");
    let shown = e.get(&format!("/_fn/requests/{id}?reveal=1")).await.json();
    assert_eq!(auth(&shown).as_deref(), Some("Bearer s3cret-token"));

    // Same request again: same answer.
    let same = replay(&e, json!({"id": id})).await;
    assert_eq!(same["diff"]["same"], true, "{same}");
    assert_eq!(same["replay"]["record"]["replay"], true);

    // Edited body: the diff names the JSON path that changed; the credential was sent as is.
    let edited = replay(&e, json!({"id": id, "body": r#"{"a":2,"keep":"x"}"#})).await;
    let diff = &edited["diff"];
    assert_eq!(diff["same"], false, "{diff}");
    assert_eq!(diff["body"]["kind"], "json", "{diff}");
    assert_eq!(
        diff["body"]["changes"],
        json!([{"path": "$.got.a", "before": 1, "after": 2}]),
        "{diff}"
    );
    assert!(diff.get("status").is_none(), "{diff}");
    let stages: Vec<&str> = diff["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["stage"].as_str().unwrap())
        .collect();
    let waterfall: Vec<&str> = crate::inspect_stages::STAGES
        .iter()
        .map(|s| s.trim_end_matches("_us"))
        .collect();
    assert_eq!(stages, waterfall);

    // Edited method: the replay is a method mismatch, and the diff says the status changed.
    let get = replay(&e, json!({"id": id, "method": "GET"})).await;
    assert_eq!(get["diff"]["status"], json!([200, 404]), "{get}");
    assert_eq!(get["replay"]["record"]["reason"], "method_mismatch");

    // curl and HAR of the request, parsed back.
    let curl = e.get(&format!("/_fn/requests/{id}/curl")).await.text();
    assert!(curl.starts_with("curl -X POST 'http://127.0.0.1:"), "{curl}");
    assert!(
        curl.contains("/echo'") && curl.contains(r#"--data-binary '{"a":1,"keep":"x"}'"#),
        "{curl}"
    );
    let har: Value = serde_json::from_slice(&e.get("/_fn/requests/har").await.body).expect("HAR is JSON");
    assert_eq!(har["log"]["version"], "1.2");
    let entries = har["log"]["entries"].as_array().unwrap();
    let first = entries
        .iter()
        .find(|x| x["_fastfn"]["id"] == id.as_str())
        .expect("the request in the HAR");
    assert_eq!(first["request"]["method"], "POST");
    assert_eq!(first["request"]["postData"]["text"], r#"{"a":1,"keep":"x"}"#);
    assert_eq!(first["response"]["status"], 200);
    assert!(first["response"]["content"]["text"]
        .as_str()
        .unwrap()
        .contains("\"got\""));
    let har_auth = first["request"]["headers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["name"] == "authorization")
        .unwrap();
    assert_eq!(har_auth["value"], "Bearer ••••••");
    // Oldest first, replays included (admin calls not).
    assert!(entries.len() >= 4, "{}", entries.len());
    assert!(entries
        .iter()
        .all(|x| !x["request"]["url"].as_str().unwrap().contains("/_fn/")));
    let one: Value = serde_json::from_slice(&e.get(&format!("/_fn/requests/har?id={id}")).await.body).unwrap();
    assert_eq!(one["log"]["entries"].as_array().unwrap().len(), 1);
    assert_eq!(e.get("/_fn/requests/req-none").await.status, 404);
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn replay_after_a_reload_diffs_the_old_and_the_new_code() {
    let dir = copy_fixture("inspect");
    let e = start_in(dir.path(), &[("FN_INSPECT_CAPTURE", "always")]).await;
    e.ready().await;
    assert_eq!(e.get("/hello").await.status, 200);
    let id = record_of(&e, "GET", "/hello").await["id"].as_str().unwrap().to_string();
    std::fs::write(
        dir.path().join("hello.py"),
        "def handler(event):\n    return {\"hello\": \"new code\", \"n\": 1}\n",
    )
    .unwrap();
    let r = e.send("POST", "/_fn/reload", &[CSRF], None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    // The python daemon reloads a module when its mtime changes: retry until it answers anew.
    let mut out = Value::Null;
    for _ in 0..50 {
        out = replay(&e, json!({"id": id})).await;
        let watched = out["files_changed"]
            .as_array()
            .is_some_and(|f| f.contains(&json!("hello.py")));
        if out["diff"]["same"] == false && watched {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        out["diff"]["body"]["changes"],
        json!([{"path": "$.hello", "before": "world", "after": "new code"}]),
        "{out}"
    );
    // The watcher's reload named the file that changed.
    assert!(
        out["files_changed"].as_array().unwrap().contains(&json!("hello.py")),
        "{out}"
    );
    // The original, replayed before any reload, had changed nothing.
    assert_eq!(out["original"]["record"]["replay"], false);
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_saved_test_reruns_after_a_reload_and_goes_red_when_the_handler_changes() {
    let dir = copy_fixture("inspect");
    let e = start_in(dir.path(), &[("FN_INSPECT_CAPTURE", "always")]).await;
    e.ready().await;
    assert_eq!(e.get("/hello").await.status, 200);
    let id = record_of(&e, "GET", "/hello").await["id"].as_str().unwrap().to_string();
    let body = json!({"name": "hello says world"}).to_string();
    let r = e
        .send(
            "POST",
            &format!("/_fn/requests/{id}/save-test"),
            &[CSRF],
            Some(body.as_bytes()),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let saved = r.json();
    assert_eq!(saved["file"], ".fastfn/tests/hello-says-world.json");
    let on_disk: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join(".fastfn/tests/hello-says-world.json")).unwrap())
            .unwrap();
    assert_eq!(on_disk["request"], json!({"method": "GET", "path": "/hello"}));
    assert_eq!(on_disk["expect"]["status"], 200);
    assert_eq!(on_disk["expect"]["json"], json!({"$.hello": "world", "$.n": 1}));

    let run = e.send("POST", "/_fn/tests/run", &[CSRF], None).await.json();
    assert_eq!((&run["passed"], &run["failed"]), (&json!(1), &json!(0)), "{run}");

    std::fs::write(
        dir.path().join("hello.py"),
        "def handler(event):\n    return {\"hello\": \"changed\", \"n\": 1}\n",
    )
    .unwrap();
    assert_eq!(e.send("POST", "/_fn/reload", &[CSRF], None).await.status, 200);
    let mut last = Value::Null;
    let until = tokio::time::Instant::now() + Duration::from_secs(15);
    while tokio::time::Instant::now() < until {
        last = e.get("/_fn/tests").await.json()["last"].clone();
        if last["trigger"] == "reload" && last["failed"] == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(last["failed"], 1, "{last}");
    assert_eq!(
        last["results"][0]["failures"],
        json!([r#"$.hello: "changed", expected "world""#]),
        "{last}"
    );
    e.stop().await;
}

/// `fastfn test DIR` with the real binary: exit 0 when the saved tests pass, 1 with the
/// failed assertion printed when one fails.
#[test]
fn fastfn_test_passes_and_fails_for_ci() {
    let dir = copy_fixture("inspect");
    let tests = dir.path().join(".fastfn/tests");
    std::fs::create_dir_all(&tests).unwrap();
    std::fs::write(
        tests.join("hello.json"),
        r#"{"name": "hello", "request": {"path": "/hello"}, "expect": {"status": 200, "json": {"$.hello": "world"}}}"#,
    )
    .unwrap();
    let sockets = crate::support::socket_base();
    let run = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_fastfn"))
            .args(["test", &dir.path().display().to_string()])
            .env("FN_SOCKET_BASE_DIR", sockets.path())
            .env("FN_RUNTIMES", "python,node")
            .output()
            .expect("run fastfn test")
    };
    let ok = run();
    let out = String::from_utf8_lossy(&ok.stdout).into_owned();
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{out}{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(out.contains("PASS hello (hello.json"), "{out}");
    assert!(out.contains("1 passed, 0 failed"), "{out}");

    std::fs::write(
        tests.join("wrong.json"),
        r#"{"request": {"path": "/hello"}, "expect": {"json": {"$.hello": "nope"}}}"#,
    )
    .unwrap();
    let bad = run();
    let out = String::from_utf8_lossy(&bad.stdout).into_owned();
    assert_eq!(bad.status.code(), Some(1), "{out}");
    assert!(out.contains("FAIL wrong (wrong.json)"), "{out}");
    assert!(out.contains(r#"$.hello: "world", expected "nope""#), "{out}");
    assert!(out.contains("1 passed, 1 failed"), "{out}");
}

/// The handler's output of one call, in its record, for the other runtimes (php daemon,
/// in-process lua, built rust and go). `fixtures/inspect-rt`: `out-*` print one line to each
/// stream (lua: stdout only, `print`).
#[tokio::test(flavor = "multi_thread")]
async fn each_request_keeps_its_handlers_output_in_php_lua_rust_and_go() {
    // Builds write next to the handlers: use a copy.
    let dir = copy_fixture("inspect-rt");
    let e = start_in(dir.path(), &[("FN_RUNTIMES", "php,lua,rust,go")]).await;
    e.ready().await;
    for (path, out, err) in [
        ("/out-php", "php stdout line", Some("php stderr line")),
        ("/out-lua", "lua stdout line", None),
        ("/out-rs", "rust stdout line", Some("rust stderr line")),
        ("/out-go", "go stdout line", Some("go stderr line")),
    ] {
        let r = e.get(path).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        let rec = record_of(&e, "GET", path).await;
        assert!(rec["stdout"].as_str().unwrap_or("").contains(out), "{path}: {rec}");
        if let Some(err) = err {
            assert!(rec["stderr"].as_str().unwrap_or("").contains(err), "{path}: {rec}");
        }
    }
    e.stop().await;
}
