//! PHP, Rust and Go through the gateway, and the lambda/worker adapters: each runtime answers
//! the same contract as python and node (hello, params, shorthand, env, errors, state,
//! parallelism), over real HTTP.

use crate::support::{copy_fixture, start, start_in};
use serde_json::json;
use std::time::{Duration, Instant};

fn has(tool: &str) -> bool {
    which::which(tool).is_ok()
}

/// Under CI every toolchain must be there; elsewhere a missing one skips with a message.
fn require(tool: &str) -> bool {
    if has(tool) {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "`{tool}` is missing: CI must install it"
    );
    eprintln!("SKIPPED: `{tool}` is not on PATH");
    false
}

#[tokio::test(flavor = "multi_thread")]
async fn php_answers_like_the_other_runtimes() {
    if !require("php") {
        return;
    }
    let e = start("php", &[("FN_RUNTIMES", "php")]).await;
    e.ready().await;

    let r = e.get("/hello?name=Ada").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"message": "Hello, Ada!", "runtime": "php"}));
    assert_eq!(r.header("content-type"), Some("application/json"));

    let r = e.get("/items/7").await;
    assert_eq!(
        r.json(),
        json!({"id": "7", "method": "GET"}),
        "params as the 2nd argument"
    );

    let r = e.get("/settings").await;
    assert_eq!(r.json(), json!({"greeting": "hi from fn.env.json"}));

    let r = e.get("/page?who=Ada").await;
    assert_eq!(
        (r.status, r.text().as_str()),
        (201, "<p>hello from Ada</p>"),
        "mod_php style"
    );
    assert_eq!(r.header("x-from"), Some("page.php"));

    let r = e.get("/throws").await;
    assert_eq!(r.status, 500);
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("php handler failed on purpose"),
        "{}",
        r.text()
    );
    assert_eq!(e.get("/hello").await.status, 200, "other functions keep serving");
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn php_functions_are_isolated_and_keep_their_own_state() {
    if !require("php") {
        return;
    }
    let e = start("php", &[("FN_RUNTIMES", "php")]).await;
    e.ready().await;
    // Both files define `label()`, `handler()` and `$calls`: no redeclaration error, no sharing.
    let a1 = e.get("/counter-a").await.json();
    let b1 = e.get("/counter-b").await.json();
    let a2 = e.get("/counter-a").await.json();
    assert_eq!(a1, json!({"label": "a", "calls": 1}));
    assert_eq!(b1, json!({"label": "b", "calls": 1}));
    assert_eq!(a2, json!({"label": "a", "calls": 2}), "module state kept per function");
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn php_serves_concurrent_calls_in_parallel() {
    if !require("php") {
        return;
    }
    let e = start("php", &[("FN_RUNTIMES", "php")]).await;
    e.ready().await;
    // Warm the workers once, then 6 calls of a 200 ms handler at once.
    let warm: Vec<_> = (0..6).map(|_| e.get("/nap")).collect();
    join_all(warm).await;
    let started = Instant::now();
    let calls: Vec<_> = (0..6).map(|_| e.get("/nap")).collect();
    let replies = join_all(calls).await;
    let elapsed = started.elapsed();
    assert!(replies.iter().all(|r| r.status == 200));
    assert!(
        elapsed < Duration::from_millis(900),
        "6 × 200 ms took {elapsed:?}: not parallel"
    );
    e.stop().await;
}

/// Poll every future on this task until all are done (no extra dependency for a join).
async fn join_all<F: std::future::Future>(fs: Vec<F>) -> Vec<F::Output> {
    let mut pinned: Vec<_> = fs.into_iter().map(Box::pin).collect();
    let mut results: Vec<Option<F::Output>> = (0..pinned.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in pinned.iter_mut().enumerate() {
            if results[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => results[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    results.into_iter().map(|r| r.expect("ready")).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn rust_and_go_handlers_build_serve_and_report_compile_errors() {
    let mut runtimes = Vec::new();
    if require("cargo") {
        runtimes.push("rust");
    }
    if require("go") {
        runtimes.push("go");
    }
    for rt in runtimes {
        // Builds write `.rust-build`/`.go-build` next to the handlers: use a copy.
        let dir = copy_fixture("compiled");
        let e = start_in(dir.path(), &[("FN_RUNTIMES", rt)]).await;
        let r = e.get("/hello").await;
        assert_eq!(r.status, 200, "{rt}: {}", r.text());
        assert_eq!(r.json(), json!({"hello": "world", "method": "GET"}), "{rt}");
        let r = e.get("/params/x?y=1").await;
        assert_eq!(r.json()["params"], json!({"wildcard": "x"}), "{rt}: {}", r.text());
        let r = e.get("/broken").await;
        assert_eq!(r.status, 500, "{rt}");
        let body = r.json();
        assert_eq!(body["error"], format!("{rt} build failed"));
        let output = body["output"].as_str().unwrap_or_default();
        let marker = if rt == "rust" {
            "mismatched types"
        } else {
            "undefined: notDefined"
        };
        assert!(output.contains(marker), "{rt}: compiler message missing: {output}");
        assert!(
            output.contains(&format!("{rt}/broken/handler.")),
            "{rt}: path relative to the root: {output}"
        );
        let r = e.get("/panic").await;
        assert_eq!(r.status, 500, "{rt}");
        assert_eq!(e.get("/hello").await.status, 200, "{rt}: others keep serving");
        let h = e.engine.health();
        assert_eq!(h["runtimes"][rt]["health"]["up"], true, "{rt}");
        assert_eq!(h["runtimes"][rt]["routing"], "per_function");
        e.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn lambda_and_worker_adapters_through_the_gateway() {
    let e = start("adapters", &[]).await;
    e.ready().await;
    let r = e.get("/hello-lambda").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("set-cookie"), Some("seen=1; Path=/"));
    assert!(r.text().starts_with("hello /hello-lambda from "), "{}", r.text());

    for rt in ["py", "js"] {
        let r = e.get(&format!("/lambda/echo-{rt}?a=1&b=2")).await;
        let v = r.json();
        assert_eq!(v["event"]["version"], "2.0", "{rt}");
        assert_eq!(v["event"]["rawPath"], format!("/lambda/echo-{rt}"), "{rt}");
        assert_eq!(v["event"]["rawQueryString"], "a=1&b=2", "{rt}");
        assert_eq!(v["event"]["requestContext"]["http"]["method"], "GET", "{rt}");

        let r = e
            .send(
                "POST",
                &format!("/worker/echo-{rt}"),
                &[("content-type", "application/json")],
                Some(br#"{"x":1}"#),
            )
            .await;
        let v = r.json();
        assert_eq!(v["method"], "POST", "{rt}");
        assert_eq!(v["json"], json!({"x": 1}), "{rt}");
        assert!(
            v["url"].as_str().unwrap().ends_with(&format!("/worker/echo-{rt}")),
            "{rt}"
        );

        let r = e.get(&format!("/worker/shapes-{rt}?kind=cookies")).await;
        assert_eq!(r.status, 418, "{rt}");
        let cookies: Vec<_> = r
            .headers
            .iter()
            .filter(|(k, _)| k == "set-cookie")
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(cookies, ["a=1", "b=2"], "{rt}");
    }
    e.stop().await;
}

/// Poll `path` until it stops answering 503 `dependencies are being installed`; returns the
/// first other response. Every 503 on the way must carry `Retry-After: 2`.
async fn after_install(e: &crate::support::TestEngine, path: &str) -> crate::support::Resp {
    let until = Instant::now() + Duration::from_secs(180);
    loop {
        let r = e.get(path).await;
        let preparing = r.status == 503 && r.text().contains("dependencies are being installed");
        if !preparing {
            return r;
        }
        assert_eq!(r.header("retry-after"), Some("2"), "{path}");
        assert!(Instant::now() < until, "{path}: still installing after 180 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn dependencies_are_installed_per_function_and_never_shared() {
    if !require("npm") {
        return;
    }
    let dir = copy_fixture("deps");
    let e = start_in(dir.path(), &[("FN_RUNTIMES", "node,python,php")]).await;
    e.ready().await;
    // While pip/npm run, the function answers 503 + Retry-After: 2, then its real reply.
    let r = after_install(&e, "/py-requirements").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), json!({"six": "1.16.0", "from_deps": true}));
    assert!(dir.path().join("py-requirements/.deps/six.py").is_file());
    let r = after_install(&e, "/py-inline").await;
    assert_eq!(r.json()["from_deps"], true, "{}", r.text());
    let r = after_install(&e, "/node-pkg?n=42").await;
    assert_eq!(r.json(), json!({"n": "42", "isNumber": true}), "{}", r.text());
    // Functions without manifests never see another function's packages.
    assert_eq!(e.get("/py-nodeps").await.json(), json!({"from_deps": false}));
    assert_eq!(e.get("/node-nodeps").await.json(), json!({"found": false}));
    // composer.json → `composer install` → vendor/autoload.php required before the handler.
    if require("composer") && require("php") {
        let r = after_install(&e, "/php-composer").await;
        assert_eq!(
            r.json(),
            json!({"greeting": "hello php from composer's autoloader"}),
            "{}",
            r.text()
        );
    }
    // A package that does not exist: a clear failure, never a hang.
    let r = after_install(&e, "/py-missing").await;
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["error"], "dependency install failed");
    let health = e.engine.health();
    let failed = health["deps"]
        .as_array()
        .expect("deps in health")
        .iter()
        .find(|d| d["function"] == "py-missing")
        .cloned();
    let output = failed.map(|d| d.to_string()).unwrap_or_default();
    assert!(
        output.contains("No matching distribution"),
        "pip's output in health: {output}"
    );
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn lua_runs_in_process_sandboxed_and_bounded() {
    let e = start("lua", &[("FN_RUNTIMES", "lua")]).await;
    for (path, want) in [
        ("/forms/global", json!({"form": "global"})),
        (
            "/forms/returns-function",
            json!({"form": "function", "same": true, "method": "GET"}),
        ),
        ("/forms/returns-table", json!({"form": "table.handler"})),
    ] {
        let r = e.get(path).await;
        assert_eq!(r.json(), want, "{path}");
    }
    assert_eq!(
        e.get("/items/7").await.json(),
        json!({"id": "7", "same": true}),
        "route params"
    );
    let r = e.get("/shorthand?kind=object").await;
    assert_eq!(
        (r.status, r.json()),
        (200, json!({"hello": "world", "n": 3})),
        "table → JSON 200"
    );
    let r = e.get("/shorthand?kind=envelope").await;
    assert_eq!(
        (r.status, r.text().as_str(), r.header("x-kind")),
        (201, "made", Some("env"))
    );
    let r = e.get("/env").await;
    assert_eq!(
        r.json(),
        json!({"env": {"NUM": "3", "PLAIN": "one", "SECRET": "two"}, "version": "default"})
    );
    let r = e.get("/throws").await;
    assert_eq!((r.status, r.json()), (500, json!({"error": "throws.lua:2: boom"})));
    // Module state per function, never across functions.
    assert_eq!(e.get("/counter-a").await.json()["count"], 1);
    assert_eq!(e.get("/counter-a").await.json()["count"], 2);
    assert_eq!(e.get("/counter-b").await.json()["count"], 1);
    // Escapes fail as errors, not as reads.
    for probe in ["io_open", "os_execute", "require_os", "string_dump", "dofile"] {
        let r = e.get(&format!("/sandbox?probe={probe}")).await;
        assert_eq!(r.status, 500, "{probe}: {}", r.text());
        assert!(!r.text().contains("root:"), "{probe} read /etc/passwd");
    }
    // Concurrent calls run on separate Lua states at once: 6 calls of a 100 ms handler.
    let started = Instant::now();
    let replies = join_all((0..6).map(|_| e.get("/busy")).collect()).await;
    assert!(replies.iter().all(|r| r.status == 200));
    assert!(
        started.elapsed() < Duration::from_millis(450),
        "not parallel: {:?}",
        started.elapsed()
    );
    // An infinite loop cannot defeat the timeout, and the runtime keeps serving.
    let started = Instant::now();
    let r = e.get("/loop").await;
    assert_eq!((r.status, r.json()), (504, json!({"error": "runtime timeout"})));
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    assert_eq!(e.get("/forms/global").await.status, 200);
    let h = e.engine.health();
    assert_eq!(h["runtimes"]["lua"]["socket"], "inprocess:lua");
    assert_eq!(h["runtimes"]["lua"]["routing"], "in_process");
    assert_eq!(h["runtimes"]["lua"]["health"]["up"], true);
    e.stop().await;
}
