//! Shared test plumbing: a real engine on port 0 with its own socket folder, a tiny HTTP/1.1
//! client over `tokio::net::TcpStream`, and a guard that stops the engine.

use fastfn::config::project::{Overrides, Settings};
use fastfn::Engine;
use serde_json::Value;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// `fixtures/<name>` of this crate.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(name)
}

/// Copy `fixtures/<name>` into a fresh temp dir (for tests that write).
pub fn copy_fixture(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    copy_tree(&fixture(name), dir.path());
    dir
}

/// Copy the tree `from` into `to` (created).
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read fixture") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// A running engine; stopped by [`TestEngine::stop`] or, failing that, on drop.
pub struct TestEngine {
    pub engine: Engine,
    /// Socket base folder (short, under /tmp, unique per engine).
    _sockets: tempfile::TempDir,
    stopped: bool,
}

/// Env for a test engine: unique socket base, fast health probes, node and python only.
pub fn base_env(sockets: &Path) -> HashMap<String, String> {
    HashMap::from([
        ("FN_SOCKET_BASE_DIR".to_string(), sockets.display().to_string()),
        ("FN_HEALTH_INTERVAL".to_string(), "0.2".to_string()),
        ("FN_RUNTIMES".to_string(), "node,python".to_string()),
    ])
}

/// A short socket base folder (Unix socket paths are limited to ~103 bytes).
pub fn socket_base() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("ffs")
        .tempdir_in("/tmp")
        .expect("socket temp dir")
}

/// Start an engine on `dir` (port 0). `env` adds to / overrides [`base_env`].
pub async fn start_in(dir: &Path, env: &[(&str, &str)]) -> TestEngine {
    let sockets = socket_base();
    let mut vars = base_env(sockets.path());
    for (k, v) in env {
        vars.insert(k.to_string(), v.to_string());
    }
    let settings = Settings::resolve(
        &Overrides {
            dir: Some(dir.to_path_buf()),
            port: Some(0),
            ..Default::default()
        },
        &|k| vars.get(k).cloned(),
        dir,
    )
    .expect("settings");
    let engine = Engine::start(settings).await.expect("engine start");
    TestEngine {
        engine,
        _sockets: sockets,
        stopped: false,
    }
}

/// Start an engine on `fixtures/<name>` (read-only use).
pub async fn start(name: &str, env: &[(&str, &str)]) -> TestEngine {
    start_in(&fixture(name), env).await
}

impl TestEngine {
    pub fn addr(&self) -> SocketAddr {
        self.engine.addr()
    }

    pub async fn get(&self, path: &str) -> Resp {
        request(self.addr(), "GET", path, &[], None).await
    }

    pub async fn send(&self, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> Resp {
        request(self.addr(), method, path, headers, body).await
    }

    /// Wait until every runtime in `runtime_order` reports `health.up` (contract §6.1), or
    /// `not_needed` (no route uses it, so no daemon runs).
    pub async fn ready(&self) {
        wait_for(Duration::from_secs(10), || {
            let h = self.engine.health();
            let order = h["runtime_order"].as_array().cloned().unwrap_or_default();
            order.iter().all(|rt| {
                // A runtime with no route runs no daemon: nothing to wait for.
                let health = &h["runtimes"][rt.as_str().unwrap_or("")]["health"];
                health["up"] == true || health["state"] == "not_needed"
            })
        })
        .await;
    }

    pub async fn stop(mut self) {
        self.stopped = true;
        self.engine.stop().await;
    }
}

impl Drop for TestEngine {
    fn drop(&mut self) {
        if !self.stopped {
            // A failed test: still stop the daemons and remove the socket folder.
            let engine = self.engine.clone();
            tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(engine.stop()));
        }
    }
}

/// Poll `cond` every 50 ms until true; panics after `limit`.
pub async fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) {
    let until = tokio::time::Instant::now() + limit;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < until,
            "condition not met within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A parsed HTTP response.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    /// Names lower-case, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text()))
    }
}

/// One request on its own connection (`Connection: close`). `Host: <addr>` unless `headers`
/// has its own `Host`.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Resp {
    let mut head = format!("{method} {path} HTTP/1.1\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        head.push_str(&format!("Host: {addr}\r\n"));
    }
    head.push_str("Connection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let mut raw = Vec::new();
    match body {
        Some(b) if chunked => {
            head.push_str("\r\n");
            raw.extend_from_slice(head.as_bytes());
            for chunk in b.chunks(512) {
                raw.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                raw.extend_from_slice(chunk);
                raw.extend_from_slice(b"\r\n");
            }
            raw.extend_from_slice(b"0\r\n\r\n");
        }
        Some(b) => {
            if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-length")) {
                head.push_str(&format!("Content-Length: {}\r\n", b.len()));
            }
            head.push_str("\r\n");
            raw.extend_from_slice(head.as_bytes());
            raw.extend_from_slice(b);
        }
        None => {
            head.push_str("\r\n");
            raw.extend_from_slice(head.as_bytes());
        }
    }
    send_raw(addr, &raw).await
}

/// Write raw bytes, read the reply until the server closes.
pub async fn send_raw(addr: SocketAddr, raw: &[u8]) -> Resp {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    // The server may answer (and close) before it read the whole body (413): ignore that.
    let _ = stream.write_all(raw).await;
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut buf)).await;
    match read {
        Ok(Ok(_)) => {}
        Ok(Err(e)) if !buf.is_empty() => eprintln!("read ended with {e}"),
        Ok(Err(e)) => panic!("read failed: {e}"),
        Err(_) => panic!("no reply within 30 s"),
    }
    parse_response(&buf)
}

fn parse_response(buf: &[u8]) -> Resp {
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(buf)));
    let head = std::str::from_utf8(&buf[..end]).expect("ascii head");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("status line");
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = buf[end + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    if chunked {
        body = dechunk(&body);
    } else if let Some(n) = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
    {
        assert_eq!(body.len(), n, "body length differs from Content-Length");
    }
    Resp { status, headers, body }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n").expect("chunk size line");
        let size_text = std::str::from_utf8(&data[..line_end]).expect("chunk size");
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16).expect("hex chunk size");
        data = &data[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// Whether a process is still alive (a zombie waiting for its reaper counts as gone).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => false,
        Ok(stat) => {
            // `pid (comm) S …`: the state follows the last ')'.
            let state = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next())
                .unwrap_or("");
            state != "Z" && state != "X"
        }
    }
}

/// The daemon pids listed in a health document (`runtimes.<rt>.sockets[].pid`).
pub fn health_pids(health: &Value) -> Vec<u32> {
    let mut pids = Vec::new();
    if let Some(runtimes) = health["runtimes"].as_object() {
        for rt in runtimes.values() {
            for s in rt["sockets"].as_array().into_iter().flatten() {
                if let Some(pid) = s["pid"].as_u64().filter(|p| *p > 0) {
                    pids.push(pid as u32);
                }
            }
        }
    }
    pids
}

/// A `fastfn` engine process on a free port, ready (its summary printed); killed on drop.
pub struct Running {
    child: tokio::process::Child,
    pub port: u16,
    _sockets: tempfile::TempDir,
    /// Its stdout up to the "Press Ctrl+C" line.
    pub summary: Vec<String>,
}

pub async fn spawn_engine(args: &[&str], envs: &[(&str, &str)]) -> Running {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let sockets = socket_base();
    let port = free_port();
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_fastfn"));
    cmd.args(args)
        .args(["--port", &port.to_string()])
        .env("FN_RUNTIMES", "python")
        .env("FN_SOCKET_BASE_DIR", sockets.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn");
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
    Running {
        child,
        port,
        _sockets: sockets,
        summary,
    }
}

impl Running {
    pub fn addr(&self) -> std::net::SocketAddr {
        ([127, 0, 0, 1], self.port).into()
    }

    pub async fn stop(mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id().expect("pid") as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("term");
        let status = tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .expect("exits")
            .expect("status");
        assert!(status.success(), "{status}");
    }
}
