//! Hot-reload latency and start-up, on a small project (one function) and on a generated
//! project of 10,000 file routes (100 folders × 100 Python files):
//!
//! - launch → ready: `Engine::start` called → it returns (serving), and → the first `200` of an
//!   existing route;
//! - new function: a file written → the first response that shows it (route map patched);
//! - edited handler: a handler rewritten → the first response with its new text.
//!
//! Each scenario runs 3 times on a fresh engine (20 samples per run); printed per run (p50/p95)
//! and as the median of the runs. `cargo bench --bench reload` (`RELOAD_RUNS=5` for more runs).

use fastfn::config::project::{Overrides, Settings};
use fastfn::Engine;
use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn get(addr: std::net::SocketAddr, path: &str) -> String {
    let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else {
        return String::new();
    };
    let _ = s
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
        .await;
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out).into_owned()
}

async fn until(addr: std::net::SocketAddr, path: &str, want: &str) -> Duration {
    let t = Instant::now();
    loop {
        if get(addr, path).await.ends_with(want) {
            return t.elapsed();
        }
        assert!(t.elapsed() < Duration::from_secs(10), "{path} never answered {want}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn pct(v: &[f64], p: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn median(v: &[f64]) -> f64 {
    pct(v, 0.5)
}

fn handler(text: &str) -> String {
    format!("def handler(e):\n    return {text:?}\n")
}

/// `keep.py` only, or 100 folders `d00..d99` of 100 files `f00..f99` (`/dNN/fMM`).
fn project(root: &Path, routes: usize) {
    std::fs::write(root.join("keep.py"), handler("ok")).unwrap();
    let per = 100;
    for d in 0..routes / per {
        let dir = root.join(format!("d{d:02}"));
        std::fs::create_dir(&dir).unwrap();
        for f in 0..per {
            std::fs::write(dir.join(format!("f{f:02}.py")), handler("gen")).unwrap();
        }
    }
}

/// The real interpreter behind `python3`: a version manager's shim (pyenv's is a shell
/// script) can add a few hundred milliseconds to every daemon start, which is not the engine's.
fn python_bin() -> String {
    std::process::Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "python3".to_string())
}

fn settings(root: &Path, base: &Path) -> Settings {
    let env: HashMap<&str, String> = HashMap::from([
        ("FN_RUNTIMES", "python,node".to_string()),
        ("FN_SOCKET_BASE_DIR", base.display().to_string()),
        ("FN_HOT_RELOAD", "1".to_string()),
        ("FN_PYTHON_BIN", python_bin()),
    ]);
    Settings::resolve(
        &Overrides {
            dir: Some(root.to_path_buf()),
            port: Some(0),
            ..Default::default()
        },
        &|k| env.get(k).cloned(),
        root,
    )
    .unwrap()
}

struct Run {
    /// `Engine::start` returned: routes mapped, needed daemons ready, serving.
    ready_ms: f64,
    /// The first `200` of an existing route.
    launch_ms: f64,
    new_fn: Vec<f64>,
    edited: Vec<f64>,
}

async fn run(routes: usize) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    project(&root, routes);
    let base = tempfile::tempdir().unwrap();
    let s = settings(&root, base.path());
    let t = Instant::now();
    let engine = Engine::start(s).await.unwrap();
    let ready_ms = t.elapsed().as_secs_f64() * 1000.0;
    let addr = engine.addr();
    until(addr, "/keep", "ok").await;
    let launch_ms = t.elapsed().as_secs_f64() * 1000.0;
    let (mut new_fn, mut edited) = (Vec::new(), Vec::new());
    // New files go into a generated folder when there is one (its listing is patched).
    let folder = if routes >= 100 { "d42/" } else { "" };
    for i in 0..20 {
        let rel = format!("{folder}new{i}.py");
        let url = format!("/{folder}new{i}");
        std::fs::write(root.join(&rel), handler(&format!("v{i}"))).unwrap();
        new_fn.push(until(addr, &url, &format!("v{i}")).await.as_secs_f64() * 1000.0);
        tokio::time::sleep(Duration::from_millis(100)).await;
        std::fs::write(root.join(&rel), handler(&format!("w{i}"))).unwrap();
        edited.push(until(addr, &url, &format!("w{i}")).await.as_secs_f64() * 1000.0);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    engine.stop().await;
    Run {
        ready_ms,
        launch_ms,
        new_fn,
        edited,
    }
}

fn main() {
    let runs: usize = std::env::var("RELOAD_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let rt = tokio::runtime::Runtime::new().unwrap();
    for (label, routes) in [("small (1 route)", 0), ("generated (10,000 routes)", 10_000)] {
        let results: Vec<Run> = (0..runs).map(|_| rt.block_on(run(routes))).collect();
        println!("{label}:");
        for r in &results {
            println!(
                "  run: launch→ready {:.1} ms, →first 200 {:.1} ms | new function p50 {:.1} / p95 {:.1} ms | edited handler p50 {:.1} / p95 {:.1} ms",
                r.ready_ms,
                r.launch_ms,
                pct(&r.new_fn, 0.5),
                pct(&r.new_fn, 0.95),
                pct(&r.edited, 0.5),
                pct(&r.edited, 0.95)
            );
        }
        let m = |f: &dyn Fn(&Run) -> f64| median(&results.iter().map(f).collect::<Vec<_>>());
        println!(
            "  median of {runs}: launch→ready {:.1} ms, →first 200 {:.1} ms | new function p50 {:.1} / p95 {:.1} ms | edited handler p50 {:.1} / p95 {:.1} ms",
            m(&|r| r.ready_ms),
            m(&|r| r.launch_ms),
            m(&|r| pct(&r.new_fn, 0.5)),
            m(&|r| pct(&r.new_fn, 0.95)),
            m(&|r| pct(&r.edited, 0.5)),
            m(&|r| pct(&r.edited, 0.95)),
        );
    }
}
