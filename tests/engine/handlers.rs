//! Compatibility of the runtimes with FastFN, through the gateway: runaway handlers are
//! reclaimed (fixtures/handlers), and the conformance corpus (tests/conformance) answers the same
//! in every runtime.

use crate::support::{copy_tree, health_pids, request, start, start_in, wait_for, TestEngine};
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

fn has(tool: &str) -> bool {
    which::which(tool).is_ok()
}

/// The runtimes to test: all three, less a missing interpreter (CI must have them all).
fn runtimes() -> Vec<&'static str> {
    let mut out = vec!["python", "node"];
    if has("php") {
        out.push("php");
    } else {
        assert!(std::env::var_os("CI").is_none(), "`php` is missing: CI must install it");
        eprintln!("SKIPPED php: `php` is not on PATH");
    }
    out
}

async fn start_all() -> TestEngine {
    let e = start("handlers", &[("FN_RUNTIMES", &runtimes().join(","))]).await;
    e.ready().await;
    e
}

/// CPU seconds (user + system) used so far by `pid` and its live children.
fn cpu_seconds(pid: u32) -> f64 {
    let mut pids = vec![pid];
    if let Ok(children) = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")) {
        pids.extend(children.split_whitespace().filter_map(|p| p.parse::<u32>().ok()));
    }
    let mut ticks = 0u64;
    for p in pids {
        if let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) {
            let fields: Vec<&str> = stat
                .rsplit_once(')')
                .map(|(_, r)| r)
                .unwrap_or("")
                .split_whitespace()
                .collect();
            ticks += fields.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            ticks += fields.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        }
    }
    ticks as f64 / 100.0 // USER_HZ
}

/// CPU seconds the daemons of `e` (pids from /_fn/health, and their children) use over `d`.
async fn daemons_cpu_over(e: &TestEngine, d: Duration) -> f64 {
    let pids = health_pids(&e.engine.health());
    let before: f64 = pids.iter().map(|p| cpu_seconds(*p)).sum();
    tokio::time::sleep(d).await;
    let after: f64 = pids.iter().map(|p| cpu_seconds(*p)).sum();
    after - before
}

#[tokio::test(flavor = "multi_thread")]
async fn a_runaway_handler_times_out_and_its_cpu_is_reclaimed() {
    let e = start_all().await;
    for rt in runtimes() {
        let ext = match rt {
            "python" => "py",
            "node" => "js",
            _ => "php",
        };
        let started = Instant::now();
        let r = e.get(&format!("/runaway/spin-{ext}")).await;
        assert_eq!(
            (r.status, r.text().as_str()),
            (504, r#"{"error":"runtime timeout"}"#),
            "{rt}"
        );
        assert!(
            started.elapsed() < Duration::from_millis(1500),
            "{rt}: took {:?}",
            started.elapsed()
        );
        // Within 2 s the daemons are back near idle (node's daemon is restarted by the engine).
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let busy = daemons_cpu_over(&e, Duration::from_millis(800)).await;
        assert!(
            busy < 0.15,
            "{rt}: daemons used {busy:.2} s of CPU in 0.8 s after the timeout"
        );
        wait_for(Duration::from_secs(10), || {
            e.engine.health()["runtimes"][rt]["health"]["up"] == true
        })
        .await;
        let mut ok = e.get(&format!("/ok-{ext}")).await;
        for _ in 0..40 {
            if ok.status == 200 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            ok = e.get(&format!("/ok-{ext}")).await;
        }
        assert_eq!((ok.status, ok.text().as_str()), (200, "ok"), "{rt} serves on");
    }
    e.stop().await;
}

/// Every case of `tests/conformance/cases.json` against every runtime that has a handler for
/// it; all differences are collected and reported together.
#[tokio::test(flavor = "multi_thread")]
async fn conformance_corpus_is_the_same_in_every_runtime() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance");
    let spec: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("cases.json")).expect("cases.json"))
        .expect("cases.json is JSON");
    let mut rts: Vec<(String, String)> = Vec::new();
    for (rt, ext) in spec["runtimes"].as_object().expect("runtimes") {
        let tool = match rt.as_str() {
            "php" => "php",
            "go" => "go",
            "rust" => "cargo",
            _ => "",
        };
        if !tool.is_empty() && !has(tool) {
            assert!(
                std::env::var_os("CI").is_none(),
                "`{tool}` is missing: CI must install it"
            );
            eprintln!("SKIPPED {rt}: `{tool}` is not on PATH");
            continue;
        }
        rts.push((rt.clone(), ext.as_str().unwrap_or_default().to_string()));
    }
    let names: Vec<&str> = rts.iter().map(|(rt, _)| rt.as_str()).collect();
    // Rust and Go builds write next to their handlers: serve a copy.
    let root = tempfile::tempdir().expect("temp dir");
    copy_tree(&dir.join("functions"), root.path());
    let e = start_in(root.path(), &[("FN_RUNTIMES", &names.join(","))]).await;
    e.ready().await;
    let mut failures = Vec::new();
    let mut checked = 0;
    for case in spec["cases"].as_array().expect("cases") {
        let name = case["name"].as_str().expect("name");
        let req = &case["request"];
        let method = req["method"].as_str().unwrap_or("GET");
        let query = req["query"].as_str().map(|q| format!("?{q}")).unwrap_or_default();
        let body = req["body"].as_str().map(|b| b.as_bytes().to_vec());
        let want = &case["expect"];
        let file = case["file"]
            .as_str()
            .map(String::from)
            .unwrap_or(format!("{name}/{{ext}}.{{ext}}"));
        let url = case["path"]
            .as_str()
            .map(String::from)
            .unwrap_or(format!("/{name}/{{ext}}"));
        for (rt, ext) in &rts {
            if !dir.join("functions").join(file.replace("{ext}", ext)).exists() {
                continue;
            }
            checked += 1;
            let path = format!("{}{query}", url.replace("{ext}", ext));
            let r = request(e.addr(), method, &path, &[], body.as_deref()).await;
            for problem in differences(&r, want) {
                failures.push(format!("{name} [{rt}] {method} {path}: {problem}"));
            }
        }
    }
    e.stop().await;
    eprintln!("conformance: {checked} case×runtime pairs ({})", names.join(", "));
    assert!(checked >= 40, "only {checked} case×runtime pairs ran");
    assert!(
        failures.is_empty(),
        "{} differences:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// What in reply `r` does not match expectation `want` (see tests/conformance/README.md).
fn differences(r: &crate::support::Resp, want: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(status) = want["status"].as_u64() {
        if u64::from(r.status) != status {
            out.push(format!("status {} (want {status}); body {}", r.status, r.text()));
        }
    }
    if let Some(headers) = want["headers"].as_object() {
        for (name, value) in headers {
            let got = r.header(name);
            if got != value.as_str() {
                out.push(format!("header {name}: {got:?} (want {value})"));
            }
        }
    }
    if let Some(body) = want["body"].as_str() {
        if r.text() != body {
            out.push(format!("body {:?} (want {body:?})", r.text()));
        }
    }
    if !want["json"].is_null() {
        match serde_json::from_slice::<Value>(&r.body) {
            Ok(v) if v == want["json"] => {}
            _ => out.push(format!("body {} (want JSON {})", r.text(), want["json"])),
        }
    }
    if let Some(hex) = want["body_hex"].as_str() {
        let got: String = r.body.iter().map(|b| format!("{b:02x}")).collect();
        if got != hex {
            out.push(format!("body bytes {got} (want {hex})"));
        }
    }
    if let Some(cookies) = want["set_cookies"].as_array() {
        let got: Vec<&str> = r
            .headers
            .iter()
            .filter(|(n, _)| n == "set-cookie")
            .map(|(_, v)| v.as_str())
            .collect();
        let want: Vec<&str> = cookies.iter().filter_map(|c| c.as_str()).collect();
        if got != want {
            out.push(format!("set-cookie {got:?} (want {want:?})"));
        }
    }
    if let Some(part) = want["error_contains"].as_str() {
        let err = serde_json::from_slice::<Value>(&r.body)
            .ok()
            .and_then(|v| v["error"].as_str().map(String::from));
        if !err.as_deref().is_some_and(|e| e.contains(part)) {
            out.push(format!("error {:?} does not contain {part:?}", r.text()));
        }
    }
    for stream in ["stdout", "stderr"] {
        if let Some(part) = want[format!("{stream}_contains")].as_str() {
            let header = format!("x-fn-{stream}");
            if !r.header(&header).is_some_and(|v| v.contains(part)) {
                out.push(format!("{header} {:?} does not contain {part:?}", r.header(&header)));
            }
        }
    }
    out
}

/// FastFN's handler forms over real HTTP: TypeScript on any Node (esbuild), PHP script
/// variables, fn.env.json in the process environment API of each runtime (for that call only),
/// and edits of an entry's private helper (python module, node ES module) on the next call.
#[tokio::test(flavor = "multi_thread")]
async fn fastfn_handler_forms_through_the_gateway() {
    let dir = crate::support::copy_fixture("handlers");
    let e = start_in(dir.path(), &[("FN_RUNTIMES", &runtimes().join(","))]).await;
    e.ready().await;
    // The first TypeScript call may wait for the daemon's one-time esbuild install.
    let mut r = e.get("/ts/typed").await;
    for _ in 0..120 {
        if r.status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        r = e.get("/ts/typed").await;
    }
    assert_eq!((r.status, r.text().as_str()), (200, "ts seven"));
    let mut forms = vec![("/env/py", "hola"), ("/env/js", "hola"), ("/env-none", "unset")];
    if runtimes().contains(&"php") {
        forms.push(("/env/php", "hola"));
        let r = e.get("/script?name=Ada").await;
        assert_eq!(
            (r.status, r.text().as_str(), r.header("x-style")),
            (201, "made Ada", Some("script"))
        );
    }
    for (path, want) in forms {
        assert_eq!(e.get(path).await.text(), want, "{path}");
    }
    assert_eq!(e.get("/reload/py").await.text(), "py old");
    assert_eq!(e.get("/reload/js").await.text(), "js old");
    std::fs::write(dir.path().join("reload/_word.py"), "WORD = \"new\"\n").expect("edit");
    std::fs::write(dir.path().join("reload/_word.js"), "export const word = \"new!\";\n").expect("edit");
    let mut seen = (String::new(), String::new());
    for _ in 0..40 {
        seen = (e.get("/reload/py").await.text(), e.get("/reload/js").await.text());
        if seen == ("py new".to_string(), "js new!".to_string()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!((seen.0.as_str(), seen.1.as_str()), ("py new", "js new!"));
    e.stop().await;
}

/// A reply that names no type is `text/plain`, as nginx's `default_type` makes it in the
/// original; a bodiless 204 gets none; a type the handler names is kept.
#[tokio::test]
async fn a_reply_without_a_type_is_text_plain() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(
        root.join("plain.js"),
        "exports.handler = async () => ({ status: 200, body: 'hi' });\n",
    )
    .unwrap();
    std::fs::write(
        root.join("nothing.js"),
        "exports.handler = async () => ({ status: 204 });\n",
    )
    .unwrap();
    std::fs::write(
        root.join("typed.py"),
        "def handler(event):\n    return {'status': 201, 'headers': {'Content-Type': 'text/csv'}, 'body': 'a,b'}\n",
    )
    .unwrap();
    let e = start_in(root, &[("FN_RUNTIMES", "node,python")]).await;
    let r = e.get("/plain").await;
    assert_eq!(
        (r.status, r.header("content-type")),
        (200, Some("text/plain")),
        "{}",
        r.text()
    );
    let r = e.get("/nothing").await;
    assert_eq!((r.status, r.header("content-type")), (204, None));
    let r = e.get("/typed").await;
    assert_eq!((r.status, r.header("content-type")), (201, Some("text/csv")));
    e.stop().await;
}
