//! The export as a pod runs it: `fastfn export k8s` of `fixtures/k8s-secrets`, `fastfn
//! prepare` on the exported project (the Containerfile's build step), then the real `fastfn
//! run` on it with the environment the Deployment gives (its env, the Secret as variables).
//! `event.secrets` holds what it holds locally; the drain follows `FN_DRAIN_TIMEOUT_MS`.

use crate::support::{fixture, free_port, request, socket_base, start};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TOKEN: &str = "k8s-secrets-fixture-token-4711";

/// Export the fixture and run the build step on the exported project; returns (out, project).
fn export_and_prepare() -> (tempfile::TempDir, PathBuf) {
    let out = tempfile::tempdir().expect("temp");
    let dir = out.path().join("k8s");
    let o = Command::new(env!("CARGO_BIN_EXE_fastfn"))
        .args(["export", "k8s"])
        .arg(fixture("k8s-secrets"))
        .arg("--out")
        .arg(&dir)
        .args(["--name", "pod"])
        .env_remove("FN_RUNTIMES")
        .output()
        .expect("fastfn export");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let project = dir.join("project");
    let p = Command::new(env!("CARGO_BIN_EXE_fastfn"))
        .arg("prepare")
        .arg(&project)
        .env("FN_RUNTIMES", "python")
        .output()
        .expect("fastfn prepare");
    assert!(p.status.success(), "{}", String::from_utf8_lossy(&p.stdout));
    (out, project)
}

/// Every file under `dir`, read as text where it is text.
fn texts(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("read dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(texts(&p));
        } else if let Ok(t) = std::fs::read_to_string(&p) {
            out.push((p, t));
        }
    }
    out
}

/// `fastfn run` on the exported project with the Deployment's environment (read from
/// `deployment.yaml`, so the test follows the manifest) plus `extra`.
fn run_as_pod(
    export: &Path,
    project: &Path,
    port: u16,
    sockets: &Path,
    extra: &[(&str, &str)],
) -> tokio::process::Child {
    let deployment = std::fs::read_to_string(export.join("deployment.yaml")).expect("deployment");
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_fastfn"));
    cmd.args(["run", "--port", &port.to_string()])
        .arg(project)
        .env("FN_RUNTIMES", "python")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    // `- name: "X"` followed by `value: "v"`: the emitter quotes every string.
    let lines: Vec<&str> = deployment.lines().map(str::trim).collect();
    for w in lines.windows(2) {
        let (Some(name), Some(value)) = (w[0].strip_prefix("- name: \""), w[1].strip_prefix("value: \"")) else {
            continue;
        };
        let (name, value) = (name.trim_end_matches('"'), value.trim_end_matches('"'));
        if name.starts_with("FN_") && name != "FN_SOCKET_BASE_DIR" {
            cmd.env(name, value);
        }
    }
    cmd.env("FN_SOCKET_BASE_DIR", sockets);
    for (k, v) in extra {
        cmd.env(k, v);
    }
    cmd.spawn().expect("spawn fastfn run")
}

/// GET `path` once the engine listens (it binds after discovery).
async fn get_when_up(addr: SocketAddr, path: &str) -> crate::support::Resp {
    let until = tokio::time::Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        assert!(
            tokio::time::Instant::now() < until,
            "the engine never listened on {addr}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    request(addr, "GET", path, &[], None).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pod_gets_the_same_event_secrets_as_a_local_run() {
    let local = start("k8s-secrets", &[("FN_RUNTIMES", "python")]).await;
    local.ready().await;
    let r = local.get("/whoami").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let want = r.json();
    assert_eq!(want["secrets"], json!({"API_TOKEN": TOKEN}), "{want}");
    local.stop().await;

    let (out, project) = export_and_prepare();
    let export = out.path().join("k8s");
    // The value never reaches the image nor the manifests; the key's name does.
    for (path, text) in texts(&export) {
        assert!(!text.contains(TOKEN), "{} carries the secret value", path.display());
    }
    let env: Value =
        serde_json::from_str(&std::fs::read_to_string(project.join("whoami/fn.env.json")).expect("env")).expect("json");
    assert_eq!(env["API_TOKEN"], json!({"is_secret": true}), "{env}");

    // The pod: the Deployment's env and the Secret's keys as variables (`envFrom`).
    let sockets = socket_base();
    let port = free_port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut pod = run_as_pod(&export, &project, port, sockets.path(), &[("API_TOKEN", TOKEN)]);
    let r = get_when_up(addr, "/whoami").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), want, "the pod's handler saw another event");
    let _ = pod.start_kill();
    let _ = pod.wait().await;

    // Without the Secret, the key is absent (not an empty value), and the engine says so.
    let port = free_port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut pod = run_as_pod(&export, &project, port, sockets.path(), &[]);
    let r = get_when_up(addr, "/whoami").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["secrets"], json!({}), "{}", r.text());
    let _ = pod.start_kill();
    let _ = pod.wait().await;
    let mut out = String::new();
    let _ = pod.stdout.take().expect("stdout").read_to_string(&mut out).await;
    assert!(
        out.lines().any(|l| l.contains("\"warn\"")
            && l.contains("secret API_TOKEN has no value and no environment variable API_TOKEN")),
        "{out}"
    );
}

/// `FN_DRAIN_TIMEOUT_MS` bounds the drain: a call longer than it is cut at SIGTERM + drain
/// (the default 10 s drain lets it finish: `k8s::sigterm_drains_the_request_in_flight`), and
/// the engine still exits 0. The export's Deployment sets it with its grace period.
#[tokio::test(flavor = "multi_thread")]
async fn the_drain_follows_its_setting() {
    let (out, project) = export_and_prepare();
    let export = out.path().join("k8s");
    let deployment = std::fs::read_to_string(export.join("deployment.yaml")).expect("deployment");
    assert!(
        deployment.contains("terminationGracePeriodSeconds: 25") && deployment.contains("\"10000\""),
        "{deployment}"
    );
    let sockets = socket_base();
    let port = free_port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut pod = run_as_pod(
        &export,
        &project,
        port,
        sockets.path(),
        &[("FN_DRAIN_TIMEOUT_MS", "300")],
    );
    assert_eq!(get_when_up(addr, "/whoami").await.status, 200);

    // A 3 s call in flight (raw, so a connection closed without an answer is seen as such).
    let mut conn = tokio::net::TcpStream::connect(addr).await.expect("connect");
    conn.write_all(format!("GET /nap HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .expect("send");
    // Let it reach the handler (the daemons are up: /whoami answered); the pod's admin API
    // is off, so there is no request log to watch. Well inside the 3 s nap either way.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pid = nix::unistd::Pid::from_raw(pod.id().expect("pid") as i32);
    let sent = std::time::Instant::now();
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("term");
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), conn.read_to_end(&mut answer)).await;
    let cut_after = sent.elapsed();
    let answer = String::from_utf8_lossy(&answer);
    // With the default drain the call would answer `{"nap": "done"}` ~2.5 s after SIGTERM;
    // cut, its connection closes without an answer.
    assert!(
        answer.is_empty(),
        "the call outlived a 300 ms drain ({cut_after:?}): {answer}"
    );
    println!("in-flight call cut {cut_after:?} after SIGTERM");
    let status = tokio::time::timeout(Duration::from_secs(20), pod.wait())
        .await
        .expect("exits")
        .expect("status");
    assert!(status.success(), "{status}");
}
