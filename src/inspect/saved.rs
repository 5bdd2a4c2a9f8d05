//! Saved tests: a request and what its answer must be, stored in the project as
//! `.fastfn/tests/*.json` (format in docs/inspector.md), run against the engine's own
//! listener after every successful reload (the dashboard's pass/fail strip), on demand
//! (`POST /_fn/tests/run`) and by `fastfn test [DIR]` (CI).
//!
//! `GET /_fn/tests` answers the last run; `POST /_fn/requests/<id>/save-test` writes a test
//! from a captured request.

use super::admin::{send, Outgoing};
use crate::engine::Shared;
use crate::events::EngineEvent;
use crate::rescue::{json_response, Body, Failure};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where a project keeps its saved tests, relative to the project folder.
pub const TESTS_DIR: &str = ".fastfn/tests";

/// One saved test (a `.fastfn/tests/<name>.json` file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[ts(export)]
#[serde(deny_unknown_fields)]
pub struct SavedTest {
    /// Shown in reports; the file name when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub name: Option<String>,
    pub request: SavedRequest,
    #[serde(default)]
    pub expect: Expect,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[ts(export)]
#[serde(deny_unknown_fields)]
pub struct SavedRequest {
    #[serde(default = "get")]
    pub method: String,
    /// Path and query: `/users/42?full=1`.
    pub path: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[ts(as = "Option<Vec<(String, String)>>", optional)]
    pub headers: Vec<(String, String)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub body: Option<String>,
}

fn get() -> String {
    "GET".into()
}

/// What the answer must be; every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[ts(export)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub status: Option<u16>,
    /// Header name (any case) → exact value.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[ts(as = "Option<BTreeMap<String, String>>", optional)]
    pub headers: BTreeMap<String, String>,
    /// JSON path (`$.user.name`, `$.items[0]`) → the value it must hold.
    #[serde(default)]
    #[ts(type = "Record<string, unknown>")]
    pub json: BTreeMap<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional, type = "number")]
    pub max_latency_ms: Option<u64>,
}

/// One test's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
#[ts(export)]
pub struct TestResult {
    /// Relative to the tests folder.
    pub file: String,
    pub name: String,
    pub ok: bool,
    /// One line per assertion that failed (or why the test could not run).
    pub failures: Vec<String>,
    #[ts(optional)]
    pub status: Option<u16>,
    pub latency_ms: f64,
}

/// A run of every saved test.
#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
#[ts(export)]
pub struct TestRun {
    #[ts(type = "number")]
    pub ran_at: u64,
    /// `start`, `reload`, `manual` or `cli`.
    pub trigger: String,
    pub passed: usize,
    pub failed: usize,
    pub results: Vec<TestResult>,
}

/// The value at a JSON path: `$`, `.key`, `[index]` (keys without `.` or `[`).
pub fn json_path<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    let mut rest = path.strip_prefix('$')?;
    let mut cur = v;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            cur = cur.get(&r[..end])?;
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']')?;
            cur = cur.get(r[..end].trim().parse::<usize>().ok()?)?;
            rest = &r[end + 1..];
        } else {
            return None;
        }
    }
    Some(cur)
}

/// The assertions of `expect` that an answer fails (pure).
pub fn check(expect: &Expect, status: u16, headers: &[(String, String)], body: &[u8], latency_ms: f64) -> Vec<String> {
    let mut failures = Vec::new();
    if let Some(want) = expect.status {
        if want != status {
            failures.push(format!("status {status}, expected {want}"));
        }
    }
    for (name, want) in &expect.headers {
        match headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)) {
            Some((_, got)) if got == want => {}
            Some((_, got)) => failures.push(format!("header {name}: {got:?}, expected {want:?}")),
            None => failures.push(format!("header {name} is missing, expected {want:?}")),
        }
    }
    if !expect.json.is_empty() {
        match serde_json::from_slice::<Value>(body) {
            Ok(doc) => {
                for (path, want) in &expect.json {
                    match json_path(&doc, path) {
                        Some(got) if got == want => {}
                        Some(got) => failures.push(format!("{path}: {got}, expected {want}")),
                        None => failures.push(format!("{path} is missing, expected {want}")),
                    }
                }
            }
            Err(_) => failures.push("the body is not JSON (JSON paths expected)".into()),
        }
    }
    if let Some(max) = expect.max_latency_ms {
        if latency_ms > max as f64 {
            failures.push(format!("took {latency_ms:.1} ms, at most {max} ms expected"));
        }
    }
    failures
}

/// The tests folder of a project.
pub fn tests_dir(shared: &Shared) -> PathBuf {
    shared.settings.project_dir.join(TESTS_DIR)
}

/// `*.json` files of the folder, sorted (none when it does not exist).
pub fn test_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "json") && p.is_file())
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// Run one test file.
async fn run_one(shared: &Shared, dir: &Path, file: &Path) -> TestResult {
    let rel = file.strip_prefix(dir).unwrap_or(file).to_string_lossy().into_owned();
    let failed = |name: String, why: String| TestResult {
        file: rel.clone(),
        name,
        ok: false,
        failures: vec![why],
        status: None,
        latency_ms: 0.0,
    };
    let test: SavedTest = match tokio::fs::read(file)
        .await
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
    {
        Ok(t) => t,
        Err(e) => return failed(rel.clone(), format!("invalid test file: {e}")),
    };
    let name = test
        .name
        .clone()
        .unwrap_or_else(|| rel.trim_end_matches(".json").to_string());
    let Ok(method) = hyper::Method::from_bytes(test.request.method.to_ascii_uppercase().as_bytes()) else {
        return failed(name, format!("invalid method {:?}", test.request.method));
    };
    let target = if test.request.path.starts_with('/') {
        test.request.path.clone()
    } else {
        format!("/{}", test.request.path)
    };
    let out = Outgoing {
        method,
        target,
        headers: test.request.headers.clone(),
        body: Bytes::from(test.request.body.clone().unwrap_or_default()),
        notes: Vec::new(),
    };
    let host = test
        .request
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("host"))
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| shared.addr.to_string());
    let started = tokio::time::Instant::now();
    match send(shared, &out, &host, None).await {
        Ok(a) => {
            let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
            let failures = check(&test.expect, a.status, &a.headers, &a.body, latency_ms);
            TestResult {
                file: rel,
                name,
                ok: failures.is_empty(),
                failures,
                status: Some(a.status),
                latency_ms,
            }
        }
        Err(e) => failed(name, format!("request failed: {e}")),
    }
}

/// Run every saved test of the project, one after another (a test's latency is its own).
pub async fn run_all(shared: &Shared, trigger: &str) -> TestRun {
    let dir = tests_dir(shared);
    let mut results = Vec::new();
    for file in test_files(&dir) {
        results.push(run_one(shared, &dir, &file).await);
    }
    let failed = results.iter().filter(|r| !r.ok).count();
    TestRun {
        ran_at: crate::clock::epoch_millis(),
        trigger: trigger.to_string(),
        passed: results.len() - failed,
        failed,
        results,
    }
}

/// Run, keep the result for `GET /_fn/tests`, and tell the dashboard.
pub async fn run_and_publish(shared: &Shared, trigger: &str) -> TestRun {
    let run = run_all(shared, trigger).await;
    *shared.inspector.tests.lock().unwrap_or_else(|p| p.into_inner()) = Some(run.clone());
    shared.events.emit(EngineEvent::TestsRun(Box::new(run.clone())));
    run
}

/// Run the saved tests once the engine serves, then after every successful reload (when the
/// project has any); note each reload's files for replays. Stopped with the engine's other
/// tasks.
pub fn spawn_reruns(shared: Arc<Shared>) -> tokio::task::JoinHandle<()> {
    let mut events = shared.events.subscribe();
    tokio::spawn(async move {
        if !test_files(&tests_dir(&shared)).is_empty() {
            run_and_publish(&shared, "start").await;
        }
        loop {
            match events.recv().await {
                Ok(EngineEvent::Reload { ok: true, files, .. }) => {
                    shared.inspector.reloaded(crate::clock::epoch_millis(), files);
                    if !test_files(&tests_dir(&shared)).is_empty() {
                        run_and_publish(&shared, "reload").await;
                    }
                }
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    })
}

/// `GET /_fn/tests`, `POST /_fn/tests/run`.
pub(crate) async fn handle(shared: &Arc<Shared>, parts: &hyper::http::request::Parts) -> Response {
    match (parts.uri.path(), &parts.method) {
        ("/_fn/tests", &hyper::Method::GET) => {
            let last = shared.inspector.tests.lock().unwrap_or_else(|p| p.into_inner()).clone();
            let dir = tests_dir(shared);
            let files: Vec<String> = test_files(&dir)
                .iter()
                .map(|f| f.strip_prefix(&dir).unwrap_or(f).to_string_lossy().into_owned())
                .collect();
            json_response(
                hyper::StatusCode::OK,
                &serde_json::json!({ "dir": TESTS_DIR, "files": files, "last": last }),
            )
        }
        ("/_fn/tests/run", &hyper::Method::POST) => {
            json_response(hyper::StatusCode::OK, &run_and_publish(shared, "manual").await)
        }
        ("/_fn/tests/run", _) => Failure::MethodNotAllowed { allow: "POST".into() }.into_response(),
        ("/_fn/tests", _) => Failure::MethodNotAllowed { allow: "GET".into() }.into_response(),
        _ => Failure::NotFound.into_response(),
    }
}

type Response = hyper::Response<Body>;

/// `POST /_fn/requests/<id>/save-test` body.
#[derive(Debug, Default, Deserialize, ts_rs::TS)]
#[ts(export)]
pub struct SaveTest {
    #[ts(optional)]
    pub name: Option<String>,
    /// The assertions; default: the captured status, `content-type`, the top-level scalar
    /// values of a JSON answer, and 10 × the captured latency (at least 1 s).
    #[ts(optional)]
    pub expect: Option<Expect>,
    /// Keep secret headers (`Authorization`, cookies…) in the file; left out by default.
    #[serde(default)]
    pub keep_secrets: bool,
}

/// The default assertions for a captured answer.
pub fn default_expect(status: u16, headers: &[(String, String)], body: Option<&[u8]>, latency_us: u64) -> Expect {
    let mut e = Expect {
        status: Some(status),
        max_latency_ms: Some((latency_us / 100).max(1000)),
        ..Expect::default()
    };
    if let Some((_, ct)) = headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("content-type")) {
        e.headers.insert("content-type".into(), ct.clone());
    }
    if let Some(Value::Object(map)) = body.and_then(|b| serde_json::from_slice::<Value>(b).ok()) {
        for (k, v) in map {
            let plain = k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if plain && !v.is_object() && !v.is_array() && !super::secrets::is_secret_key(&k) {
                e.json.insert(format!("$.{k}"), v);
            }
        }
    }
    e
}

/// A file name from a test name: lower-case letters, digits and `-`.
pub fn slug(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    while s.contains("--") {
        s = s.replace("--", "-");
    }
    let s = s.trim_matches('-').to_string();
    if s.is_empty() {
        "request".into()
    } else {
        s
    }
}

/// Write a test for a captured request; answers the file (relative to the project) and test.
pub(crate) async fn save(shared: &Arc<Shared>, id: &str, raw: &[u8]) -> Response {
    let opts: SaveTest = if raw.iter().all(u8::is_ascii_whitespace) {
        SaveTest::default()
    } else {
        match serde_json::from_slice(raw) {
            Ok(o) => o,
            Err(e) => {
                return json_response(
                    hyper::StatusCode::BAD_REQUEST,
                    &serde_json::json!({ "error": format!("invalid save-test request: {e}") }),
                )
            }
        }
    };
    let built = shared.inspector.find(id, |e| {
        let target = e.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/").to_string();
        let name = opts
            .name
            .clone()
            .unwrap_or_else(|| format!("{} {} answers {}", e.method, e.uri.path(), e.status));
        let (headers, body) = match &e.captured {
            Some(c) => (
                c.request_pairs()
                    .into_iter()
                    .filter(|(k, _)| !super::export::is_hop_header(k))
                    .filter(|(k, _)| opts.keep_secrets || !super::secrets::is_secret_header(k))
                    .collect(),
                (!c.request_body.is_empty()).then(|| String::from_utf8_lossy(&c.request_body).into_owned()),
            ),
            None => (Vec::new(), None),
        };
        let response_headers = e.captured.as_ref().map(|c| c.response_pairs()).unwrap_or_default();
        let expect = opts.expect.clone().unwrap_or_else(|| {
            default_expect(
                e.status,
                &response_headers,
                e.captured.as_ref().map(|c| &c.response_body[..]),
                e.latency_us,
            )
        });
        SavedTest {
            name: Some(name),
            request: SavedRequest {
                method: e.method.to_string(),
                path: target,
                headers,
                body,
            },
            expect,
        }
    });
    let Some(test) = built else {
        return Failure::NotFound.into_response();
    };
    let dir = tests_dir(shared);
    let base = slug(test.name.as_deref().unwrap_or("request"));
    let text = serde_json::to_string_pretty(&test).unwrap_or_default() + "\n";
    let written = tokio::task::spawn_blocking(move || -> std::io::Result<PathBuf> {
        std::fs::create_dir_all(&dir)?;
        // Never over an existing test: `name-2.json`, `name-3.json`…
        for n in 1.. {
            let file = dir.join(if n == 1 {
                format!("{base}.json")
            } else {
                format!("{base}-{n}.json")
            });
            match std::fs::OpenOptions::new().write(true).create_new(true).open(&file) {
                Ok(mut f) => {
                    std::io::Write::write_all(&mut f, text.as_bytes())?;
                    return Ok(file);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        unreachable!("1.. has no end")
    })
    .await;
    match written {
        Ok(Ok(file)) => {
            let rel = file
                .strip_prefix(&shared.settings.project_dir)
                .unwrap_or(&file)
                .to_string_lossy()
                .into_owned();
            json_response(hyper::StatusCode::OK, &serde_json::json!({ "file": rel, "test": test }))
        }
        Ok(Err(e)) => json_response(
            hyper::StatusCode::INTERNAL_SERVER_ERROR,
            &serde_json::json!({ "error": format!("cannot write the test: {e}") }),
        ),
        Err(_) => Failure::Internal.into_response(),
    }
}

/// `fastfn test [DIR]`: start an engine on DIR (a free port, no hot reload), wait for its
/// runtimes, run the saved tests, print one line per test, stop. Exit 0 when all pass (or
/// there are none), 1 when one fails, 2 when the engine cannot start.
pub fn cli(dir: Option<PathBuf>, config: Option<PathBuf>) -> std::process::ExitCode {
    use std::process::ExitCode;
    let overrides = crate::config::project::Overrides {
        dir,
        port: Some(0),
        hot_reload: Some(false),
        config_file: config,
        ..Default::default()
    };
    let settings = match crate::config::project::Settings::from_env(&overrides) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let code = rt.block_on(async move {
        let dir = settings.project_dir.join(TESTS_DIR);
        if test_files(&dir).is_empty() {
            println!("no saved tests in {}", dir.display());
            return ExitCode::SUCCESS;
        }
        let engine = match crate::Engine::start(settings).await {
            Ok(e) => e,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        };
        wait_ready(&engine).await;
        let run = run_all(&engine.0, "cli").await;
        engine.stop().await;
        for r in &run.results {
            if r.ok {
                println!("PASS {} ({}, {:.0} ms)", r.name, r.file, r.latency_ms);
            } else {
                println!("FAIL {} ({})", r.name, r.file);
                for f in &r.failures {
                    println!("     {f}");
                }
            }
        }
        println!("{} passed, {} failed", run.passed, run.failed);
        if run.failed == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    });
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    code
}

/// Until every runtime the routes need is up (at most 60 s: then the tests say what fails).
async fn wait_ready(engine: &crate::Engine) {
    let until = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    while tokio::time::Instant::now() < until {
        let h = engine.health();
        let ready = h["runtime_order"].as_array().is_some_and(|order| {
            order.iter().all(|rt| {
                let health = &h["runtimes"][rt.as_str().unwrap_or("")]["health"];
                health["up"] == true || health["state"] == "not_needed"
            })
        });
        if ready {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_paths_reach_keys_and_indexes() {
        let v = json!({"a": {"b": [1, {"c": "x"}]}, "n": null});
        assert_eq!(json_path(&v, "$.a.b[1].c"), Some(&json!("x")));
        assert_eq!(json_path(&v, "$.a.b[0]"), Some(&json!(1)));
        assert_eq!(json_path(&v, "$.n"), Some(&Value::Null));
        assert_eq!(json_path(&v, "$"), Some(&v));
        assert_eq!(json_path(&v, "$.a.z"), None);
        assert_eq!(json_path(&v, "$.a.b[9]"), None);
        assert_eq!(json_path(&v, "a"), None);
    }

    #[test]
    fn each_assertion_fails_on_its_own() {
        let expect: Expect = serde_json::from_value(json!({
            "status": 200,
            "headers": {"Content-Type": "application/json"},
            "json": {"$.hello": "world", "$.n": 1},
            "max_latency_ms": 50
        }))
        .unwrap();
        let h = vec![("content-type".to_string(), "application/json".to_string())];
        assert!(check(&expect, 200, &h, br#"{"hello":"world","n":1}"#, 10.0).is_empty());
        let f = check(&expect, 500, &[], br#"{"hello":"there"}"#, 80.0);
        assert_eq!(
            f,
            vec![
                "status 500, expected 200",
                "header Content-Type is missing, expected \"application/json\"",
                "$.hello: \"there\", expected \"world\"",
                "$.n is missing, expected 1",
                "took 80.0 ms, at most 50 ms expected",
            ]
        );
        assert_eq!(
            check(&expect, 200, &h, b"hi", 1.0),
            vec!["the body is not JSON (JSON paths expected)"]
        );
    }

    #[test]
    fn the_file_format_is_strict_and_defaults_are_small() {
        let t: SavedTest = serde_json::from_str(r#"{"request": {"path": "/hello"}}"#).unwrap();
        assert_eq!(t.request.method, "GET");
        assert_eq!(t.expect, Expect::default());
        assert!(
            serde_json::from_str::<SavedTest>(r#"{"request": {"path": "/x"}, "expect": {"stauts": 200}}"#).is_err()
        );
        let e = default_expect(
            200,
            &[("Content-Type".into(), "application/json".into())],
            Some(br#"{"hello":"world","list":[1],"token":"t"}"#),
            2_000,
        );
        assert_eq!(e.status, Some(200));
        assert_eq!(e.max_latency_ms, Some(1000));
        assert_eq!(e.headers["content-type"], "application/json");
        assert_eq!(e.json.keys().collect::<Vec<_>>(), vec!["$.hello"]);
        assert_eq!(slug("GET /hello answers 200"), "get-hello-answers-200");
        assert_eq!(slug("///"), "request");
    }
}
