//! The `fastfn` binary: version, init, doctor, and the start-up failures a user meets first.

use crate::support::{fixture, free_port, request, socket_base, spawn_engine};
use std::process::{Command, Stdio};
use std::time::Duration;

fn fastfn() -> Command {
    Command::new(env!("CARGO_BIN_EXE_fastfn"))
}

#[test]
fn version_prints_the_version() {
    for args in [&["version"][..], &["--version"], &["-V"]] {
        let out = fastfn().args(args).output().expect("run");
        assert!(out.status.success(), "{args:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("FastFN {}\n", env!("CARGO_PKG_VERSION")),
            "{args:?}"
        );
    }
}

fn files_in(dir: &std::path::Path) -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    files
}

/// `fastfn init` as the original: node by default, `requirements.txt` for python, and the
/// original's `fn.config.json` keys (limits for node and python). Updated for the
/// compatibility work: the default template was python and no limits were written.
#[test]
fn init_writes_the_originals_scaffold() {
    let cwd = tempfile::tempdir().expect("temp");
    let out = fastfn()
        .args(["init", "hello"])
        .current_dir(cwd.path())
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with(
            "Created function 'hello' in hello (runtime: node)\nFiles created:\n - fn.config.json\n - handler.js\n"
        ),
        "{stdout}"
    );
    let dir = cwd.path().join("hello");
    assert_eq!(files_in(&dir), vec!["fn.config.json", "handler.js"]);
    let text = std::fs::read_to_string(dir.join("fn.config.json")).expect("read");
    let keys: Vec<&str> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix('"').and_then(|l| l.split('"').next()))
        .collect();
    assert_eq!(
        keys,
        [
            "runtime",
            "name",
            "version",
            "entrypoint",
            "timeout_ms",
            "max_concurrency",
            "max_body_bytes"
        ],
        "key order: {text}"
    );
    let config: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert_eq!(
        config,
        serde_json::json!({"runtime": "node", "name": "hello", "version": "1.0.0", "entrypoint": "handler.js",
            "timeout_ms": 2500, "max_concurrency": 20, "max_body_bytes": 1048576})
    );
    let handler = std::fs::read_to_string(dir.join("handler.js")).expect("read");
    assert!(handler.contains("module.exports.handler"), "{handler}");
    // A second init with the same name refuses to overwrite.
    let again = fastfn()
        .args(["init", "hello", "-t", "node"])
        .current_dir(cwd.path())
        .output()
        .expect("run");
    assert!(!again.status.success());

    let out = fastfn()
        .args(["init", "py", "-t", "python"])
        .current_dir(cwd.path())
        .output()
        .expect("run");
    assert!(out.status.success());
    assert_eq!(
        files_in(&cwd.path().join("py")),
        vec!["fn.config.json", "handler.py", "requirements.txt"]
    );
    let out = fastfn()
        .args(["init", "ph", "-t", "php"])
        .current_dir(cwd.path())
        .output()
        .expect("run");
    assert!(out.status.success());
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cwd.path().join("ph/fn.config.json")).expect("read")).expect("json");
    assert_eq!(
        config,
        serde_json::json!({"runtime": "php", "name": "ph", "version": "1.0.0", "entrypoint": "handler.php"})
    );
}

/// The scaffolds run: each template's handler answers 200 JSON at `/<name>`.
#[tokio::test(flavor = "multi_thread")]
async fn init_scaffolds_are_served() {
    let root = tempfile::tempdir().expect("temp");
    for (name, t) in [("n", "node"), ("p", "python"), ("l", "lua")] {
        let out = fastfn()
            .args(["init", name, "-t", t])
            .current_dir(root.path())
            .output()
            .expect("run");
        assert!(out.status.success());
    }
    let e = crate::support::start_in(root.path(), &[("FN_RUNTIMES", "node,python,lua")]).await;
    // The original's node template greets without the name; all three echo the query.
    for (path, word, message) in [
        ("/n?name=Ann", "Ann", "Hello from FastFN Node!"),
        ("/p?name=Bo", "Bo", "Hello, Bo from FastFN Python!"),
        ("/l?name=Cy", "Cy", "Hello, Cy from FastFN Lua!"),
    ] {
        let r = e.get(path).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        assert_eq!(r.json()["message"], message, "{path}: {}", r.text());
        assert_eq!(r.json()["query"]["name"], word, "{path}: {}", r.text());
    }
    e.stop().await;
}

fn doctor_json(args: &[&str], cwd: &std::path::Path) -> (bool, serde_json::Value) {
    let out = fastfn()
        .args(args)
        .current_dir(cwd)
        .env("FN_RUNTIMES", "node,python")
        .env("FN_HOST_PORT", free_port().to_string())
        .output()
        .expect("run");
    let v =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    (out.status.success(), v)
}

/// `doctor --json` in the original's schema. Updated for the compatibility work (it was
/// `{ok, checks: [{name, status, detail}]}`).
#[test]
fn doctor_json_has_the_originals_schema() {
    let (ok, v) = doctor_json(
        &["doctor", "--json", fixture("demo").to_str().expect("utf-8")],
        &fixture("demo"),
    );
    assert!(ok, "{v}");
    assert_eq!(v["scope"], "general");
    let at = v["generated_at"].as_str().expect("generated_at");
    assert!(at.len() == 20 && at.ends_with('Z') && at.as_bytes()[10] == b'T', "{at}");
    let checks = v["checks"].as_array().expect("checks");
    let ids: Vec<&str> = checks.iter().filter_map(|c| c["id"].as_str()).collect();
    for id in [
        "runtime.node",
        "runtime.python",
        "system.platform",
        "project.config",
        "project.functions_dir",
        "project.discovery",
        "project.port",
    ] {
        assert!(ids.contains(&id), "{id} in {ids:?}");
    }
    let (mut ok_n, mut warn_n, mut fail_n) = (0, 0, 0);
    for c in checks {
        assert!(c["message"].as_str().is_some_and(|m| !m.is_empty()), "{c}");
        match c["status"].as_str() {
            Some("OK") => ok_n += 1,
            Some("WARN") => warn_n += 1,
            Some("FAIL") => fail_n += 1,
            other => panic!("status {other:?}"),
        }
    }
    assert_eq!(
        v["summary"],
        serde_json::json!({"ok": ok_n, "warn": warn_n, "fail": fail_n})
    );
    assert_eq!(fail_n, 0, "{v}");
    // `check` is the same command.
    let (_, again) = doctor_json(
        &["check", "--json", fixture("demo").to_str().expect("utf-8")],
        &fixture("demo"),
    );
    assert_eq!(again["scope"], "general");
}

#[test]
fn doctor_fix_writes_a_starter_fastfn_json() {
    let dir = tempfile::tempdir().expect("temp");
    std::fs::write(dir.path().join("hi.py"), "def handler(event):\n    return 'hi'\n").expect("write");
    let (_, before) = doctor_json(&["doctor", "--json"], dir.path());
    let config = |v: &serde_json::Value| {
        v["checks"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["id"] == "project.config").cloned())
            .expect("project.config")
    };
    assert_eq!(config(&before)["status"], "WARN");
    assert!(config(&before)["hint"].is_string());
    let (ok, fixed) = doctor_json(&["doctor", "--fix", "--json"], dir.path());
    assert!(ok, "{fixed}");
    assert_eq!(config(&fixed)["status"], "OK");
    assert!(fixed["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .any(|c| c["id"] == "project.config.fix"));
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("fastfn.json")).expect("fastfn.json")).expect("json");
    assert_eq!(written, serde_json::json!({"functions-dir": "."}));
    let (_, after) = doctor_json(&["check", "--json"], dir.path());
    assert_eq!(config(&after)["status"], "OK");
    assert!(config(&after)["message"]
        .as_str()
        .is_some_and(|m| m.starts_with("Config file valid")));
    // A broken fastfn.json fails the check, and doctor exits non-zero.
    std::fs::write(dir.path().join("fastfn.json"), "{nope").expect("write");
    let (ok, broken) = doctor_json(&["doctor", "--json"], dir.path());
    assert!(!ok);
    assert_eq!(config(&broken)["status"], "FAIL");
}

#[test]
fn docker_only_flags_are_refused_in_one_line() {
    for args in [
        &["dev", "--build"][..],
        &["dev", "--dry-run", "."],
        &["logs", "--docker"],
    ] {
        let out = fastfn().args(args).stdin(Stdio::null()).output().expect("run");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains("native-only"), "{stderr}");
    }
}

#[test]
fn a_taken_port_fails_fast_with_one_line() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let sockets = socket_base();
    let out = fastfn()
        .args(["dev", "--port", &port.to_string()])
        .arg(fixture("demo"))
        .env("FN_SOCKET_BASE_DIR", sockets.path())
        .env("FN_RUNTIMES", "node,python")
        .stdin(Stdio::null())
        .output()
        .expect("run");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].contains("already in use") && lines[0].contains(&port.to_string()),
        "{stderr}"
    );
    // No daemon was started: no socket folder was ever created.
    let created: Vec<_> = std::fs::read_dir(sockets.path()).expect("read").collect();
    assert!(created.is_empty(), "{created:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_interpreter_summary_says_how_to_fix() {
    let dir = fixture("badconfig");
    let e = spawn_engine(
        &["dev", dir.to_str().expect("utf-8")],
        &[
            ("FN_RUNTIMES", "node,python"),
            ("FN_PYTHON_BIN", "/nonexistent/python3"),
        ],
    )
    .await;
    let summary = &e.summary;
    let off = summary
        .iter()
        .find(|l| l.trim_start().starts_with("python: off"))
        .unwrap_or_else(|| panic!("{summary:#?}"));
    assert!(
        off.contains("/nonexistent/python3") && off.contains("FN_PYTHON_BIN"),
        "{off}"
    );
    let r = request(e.addr(), "GET", "/good", &[], None).await;
    assert_eq!((r.status, r.json()), (200, serde_json::json!({"good": "node"})));
    let h = request(e.addr(), "GET", "/_fn/health", &[], None).await.json();
    assert!(h["runtimes_missing"]["python"].is_string(), "{h}");
    e.stop().await;
}

/// `run` has hot reload on by default, as the original's `run`; `FN_HOT_RELOAD=0` turns it
/// off. Updated for the compatibility work (it was off by default).
#[tokio::test(flavor = "multi_thread")]
async fn run_hot_reloads_by_default() {
    let dir = fixture("compat");
    let dir = dir.to_str().expect("utf-8");
    for (envs, want) in [(&[][..], true), (&[("FN_HOT_RELOAD", "0")][..], false)] {
        let e = spawn_engine(&["run", dir], envs).await;
        let h = request(e.addr(), "GET", "/_fn/health", &[], None).await.json();
        assert_eq!(h["hot_reload"]["enabled"], want, "{envs:?}");
        e.stop().await;
    }
    let e = spawn_engine(&["run", "--hot-reload", dir], &[("FN_HOT_RELOAD", "0")]).await;
    let h = request(e.addr(), "GET", "/_fn/health", &[], None).await.json();
    assert_eq!(h["hot_reload"]["enabled"], true, "the flag wins");
    e.stop().await;
}

/// `--native` is accepted anywhere (this build is always native) and `--config` names the
/// project file.
#[tokio::test(flavor = "multi_thread")]
async fn native_and_config_flags() {
    let out = fastfn().args(["--native", "version"]).output().expect("run");
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("natively"), "{stderr}");

    let project = tempfile::tempdir().expect("temp");
    std::fs::create_dir(project.path().join("fns")).expect("mkdir");
    std::fs::write(
        project.path().join("fns/hi.py"),
        "def handler(event):\n    return {'hi': True}\n",
    )
    .expect("write");
    let cfg = project.path().join("other.json");
    std::fs::write(
        &cfg,
        r#"{"functions-dir": "fns", "public-base-url": "https://cfg.example.com"}"#,
    )
    .expect("write");
    let cfg = cfg.to_str().expect("utf-8");
    let e = spawn_engine(&["--config", cfg, "dev", "--native"], &[]).await;
    let r = request(e.addr(), "GET", "/hi", &[], None).await;
    assert_eq!((r.status, r.json()), (200, serde_json::json!({"hi": true})));
    let spec = request(e.addr(), "GET", "/openapi.json", &[], None).await.json();
    assert_eq!(spec["servers"][0]["url"], "https://cfg.example.com");
    e.stop().await;

    let out = fastfn()
        .args(["dev", "--config", "/nonexistent/fastfn.json"])
        .stdin(Stdio::null())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/fastfn.json"));
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_prints_and_follows_the_engines_logs() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let dir = fixture("compat");
    let e = spawn_engine(&["dev", dir.to_str().expect("utf-8")], &[]).await;
    let port = e.port.to_string();
    assert_eq!(request(e.addr(), "GET", "/hello?name=cli", &[], None).await.status, 200);
    let out = fastfn()
        .args(["logs", "--no-follow", "--file", "runtime", "--port", &port])
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("[python] [fn:hello.py@default stdout] hello printed cli"),
        "{stdout}"
    );
    let out = fastfn()
        .args(["logs", "--no-follow", "--port", &port, "--lines", "5"])
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    for header in ["==> error <==", "==> access <==", "==> runtime <=="] {
        assert!(stdout.contains(header), "{header}: {stdout}");
    }
    assert!(
        stdout.contains("\"GET /hello?name=cli HTTP/1.1\" status=200"),
        "{stdout}"
    );

    // Following: a request made afterwards shows up.
    let mut follower = tokio::process::Command::new(env!("CARGO_BIN_EXE_fastfn"))
        .args(["logs", "--file", "access", "--lines", "1", "--port", &port])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn");
    let mut lines = BufReader::new(follower.stdout.take().expect("stdout")).lines();
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        request(e.addr(), "GET", "/hello?name=later", &[], None).await.status,
        200
    );
    let seen = tokio::time::timeout(Duration::from_secs(10), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("/hello?name=later") {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(seen, Ok(true), "the follower printed the new request");
    let _ = follower.kill().await;

    // No engine: one clear error.
    let out = fastfn()
        .args(["logs", "--no-follow", "--port", &free_port().to_string()])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no FastFN engine answers"));
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn docs_prints_and_opens_the_swagger_url() {
    let dir = fixture("compat");
    let e = spawn_engine(&["dev", dir.to_str().expect("utf-8")], &[]).await;
    let tmp = tempfile::tempdir().expect("temp");
    let opened = tmp.path().join("opened");
    let browser = tmp.path().join("browser.sh");
    std::fs::write(&browser, format!("#!/bin/sh\necho \"$1\" > {}\n", opened.display())).expect("write");
    std::fs::set_permissions(&browser, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    let out = fastfn()
        .args(["docs", "--port", &e.port.to_string()])
        .env("BROWSER", &browser)
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let url = format!("http://127.0.0.1:{}/_fn/docs", e.port);
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("Opening {url}...\n"));
    crate::support::wait_for(Duration::from_secs(5), || opened.exists()).await;
    assert_eq!(std::fs::read_to_string(&opened).expect("opened").trim(), url);
    e.stop().await;
    let out = fastfn()
        .args(["docs", "--port", &free_port().to_string()])
        .env("BROWSER", &browser)
        .output()
        .expect("run");
    assert!(!out.status.success());
}

/// `/console` answers 200 with the dashboard (not a redirect), its asset URLs kept inside
/// `/console/` by a `<base>`.
#[tokio::test(flavor = "multi_thread")]
async fn console_root_answers_200() {
    let ui = tempfile::tempdir().expect("temp");
    let dist = ui.path().join("dist");
    std::fs::create_dir_all(dist.join("assets")).expect("mkdir");
    std::fs::write(
        dist.join("index.html"),
        "<!doctype html><html><head><script src=\"./assets/app.js\"></script></head><body></body></html>",
    )
    .expect("write");
    std::fs::write(dist.join("assets/app.js"), "console.log(1)").expect("write");
    let dist_s = dist.to_str().expect("utf-8");
    let dir = fixture("compat");
    let e = spawn_engine(
        &["dev", dir.to_str().expect("utf-8")],
        &[("FN_UI_ENABLED", "1"), ("FN_UI_DIR", dist_s)],
    )
    .await;
    let r = request(e.addr(), "GET", "/console", &[], None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.text()
            .contains("<head><base href=\"/console/\"><script src=\"./assets/app.js\">"),
        "{}",
        r.text()
    );
    let r = request(e.addr(), "GET", "/console/assets/app.js", &[], None).await;
    assert_eq!((r.status, r.text().as_str()), (200, "console.log(1)"));
    assert!(e.summary.iter().any(|l| l.contains("route(s)")));
    e.stop().await;
}

/// `doctor domains` runs as in the original's docs (format, DNS, expected target, HTTP side;
/// TLS is reported as not checked). Only loopback and invalid names here: no network.
#[test]
fn doctor_domains_checks_each_domain() {
    let out = fastfn()
        .args(["doctor", "domains", "--domain", "not_a_domain", "--json"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["scope"], "domains");
    assert_eq!(
        (
            &v["checks"][0]["domain"],
            &v["checks"][0]["id"],
            &v["checks"][0]["status"]
        ),
        (
            &serde_json::json!("not_a_domain"),
            &serde_json::json!("domain.format"),
            &serde_json::json!("FAIL")
        )
    );
    let out = fastfn()
        .args([
            "check",
            "domains",
            "--domain",
            "127.0.0.1",
            "--expected-target",
            "127.0.0.1",
            "--enforce-https=false",
            "--json",
        ])
        .output()
        .expect("run");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let status = |id: &str| {
        v["checks"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["id"] == id))
            .map(|c| c["status"].clone())
            .unwrap_or_default()
    };
    assert_eq!(status("dns.resolve"), "OK", "{v}");
    assert_eq!(status("dns.target"), "OK", "{v}");
    assert_eq!(status("tls.handshake"), "WARN", "{v}");
    assert!(
        status("http.redirect").is_string() && status("acme.challenge").is_string(),
        "{v}"
    );
    assert_eq!(out.status.success(), v["summary"]["fail"] == 0, "{v}");
    // No domains anywhere: one clear error.
    let empty = tempfile::tempdir().expect("temp");
    let out = fastfn()
        .args(["doctor", "domains"])
        .current_dir(empty.path())
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no domains configured"));
}
