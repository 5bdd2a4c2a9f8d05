//! The `fastfn` binary: version, init, doctor, and the start-up failures a user meets first.

use crate::support::{fixture, free_port, request, socket_base};
use std::process::{Command, Stdio};
use std::time::Duration;

fn fastfn() -> Command {
    Command::new(env!("CARGO_BIN_EXE_fastfn"))
}

#[test]
fn version_prints_the_version() {
    let out = fastfn().arg("version").output().expect("run");
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("FastFN {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn init_writes_a_config_and_a_handler() {
    let cwd = tempfile::tempdir().expect("temp");
    let out = fastfn()
        .args(["init", "hello", "-t", "node"])
        .current_dir(cwd.path())
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let dir = cwd.path().join("hello");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .expect("hello/")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files, vec!["fn.config.json", "handler.js"]);
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("fn.config.json")).expect("read")).expect("json");
    assert_eq!(
        config,
        serde_json::json!({"runtime": "node", "name": "hello", "version": "1.0.0", "entrypoint": "handler.js"})
    );
    let handler = std::fs::read_to_string(dir.join("handler.js")).expect("read");
    assert!(handler.contains("exports.handler"), "{handler}");
    // A second init with the same name refuses to overwrite.
    let again = fastfn()
        .args(["init", "hello", "-t", "node"])
        .current_dir(cwd.path())
        .output()
        .expect("run");
    assert!(!again.status.success());
}

#[test]
fn doctor_json_is_valid_json_with_ok() {
    let out = fastfn()
        .args(["doctor", "--json"])
        .arg(fixture("demo"))
        .env("FN_RUNTIMES", "node,python")
        .env("FN_HOST_PORT", free_port().to_string())
        .output()
        .expect("run");
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    assert!(v["ok"].is_boolean(), "{v}");
    assert!(v["checks"].as_array().is_some_and(|c| !c.is_empty()), "{v}");
    assert_eq!(v["ok"], true, "{v}");
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
    use tokio::io::{AsyncBufReadExt, BufReader};
    let sockets = socket_base();
    let port = free_port();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_fastfn"))
        .args(["dev", "--port", &port.to_string()])
        .arg(fixture("badconfig"))
        .env("FN_RUNTIMES", "node,python")
        .env("FN_PYTHON_BIN", "/nonexistent/python3")
        .env("FN_SOCKET_BASE_DIR", sockets.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut summary = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), async {
        while let Ok(Some(line)) = lines.next_line().await {
            let end = line.starts_with("Press Ctrl+C");
            summary.push(line);
            if end {
                break;
            }
        }
    })
    .await;
    assert!(read.is_ok(), "no summary: {summary:?}");
    let off = summary
        .iter()
        .find(|l| l.trim_start().starts_with("python: off"))
        .unwrap_or_else(|| panic!("{summary:#?}"));
    assert!(
        off.contains("/nonexistent/python3") && off.contains("FN_PYTHON_BIN"),
        "{off}"
    );
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    let r = request(addr, "GET", "/good", &[], None).await;
    assert_eq!((r.status, r.json()), (200, serde_json::json!({"good": "node"})));
    let h = request(addr, "GET", "/_fn/health", &[], None).await.json();
    assert!(h["runtimes_missing"]["python"].is_string(), "{h}");
    let pid = nix::unistd::Pid::from_raw(child.id().expect("pid") as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("term");
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("exits")
        .expect("status");
    assert!(status.success(), "{status}");
}
