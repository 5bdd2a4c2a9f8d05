//! Hot-reload latency: time from a file written to the first response that shows it, over 20
//! runs each for (a) a new function file (route map rebuilt by the watcher) and (b) an edited
//! handler (new code on the next call). Prints p50/p95 in milliseconds.
//!
//! `cargo bench --bench reload`

use fastfn::config::project::{Overrides, Settings};
use fastfn::Engine;
use std::collections::HashMap;
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

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    std::fs::write(root.join("keep.py"), "def handler(e):\n    return 'ok'\n").unwrap();
    let base = tempfile::tempdir().unwrap();
    let env: HashMap<&str, String> = HashMap::from([
        ("FN_RUNTIMES", "python,node".to_string()),
        ("FN_SOCKET_BASE_DIR", base.path().display().to_string()),
    ]);
    let settings = Settings::resolve(
        &Overrides {
            dir: Some(root.clone()),
            port: Some(0),
            ..Default::default()
        },
        &|k| env.get(k).cloned(),
        &root,
    )
    .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        let engine = Engine::start(settings).await.unwrap();
        let addr = engine.addr();
        let (mut new_fn, mut edited) = (Vec::new(), Vec::new());
        for i in 0..20 {
            let name = format!("f{i}");
            std::fs::write(
                root.join(format!("{name}.py")),
                format!("def handler(e):\n    return 'v{i}'\n"),
            )
            .unwrap();
            new_fn.push(until(addr, &format!("/{name}"), &format!("v{i}")).await.as_secs_f64() * 1000.0);
            tokio::time::sleep(Duration::from_millis(100)).await;
            std::fs::write(
                root.join(format!("{name}.py")),
                format!("def handler(e):\n    return 'w{i}'\n"),
            )
            .unwrap();
            edited.push(until(addr, &format!("/{name}"), &format!("w{i}")).await.as_secs_f64() * 1000.0);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        println!(
            "new function:   p50 {:.1} ms  p95 {:.1} ms  (n=20)",
            pct(&mut new_fn, 0.5),
            pct(&mut new_fn, 0.95)
        );
        println!(
            "edited handler: p50 {:.1} ms  p95 {:.1} ms  (n=20)",
            pct(&mut edited, 0.5),
            pct(&mut edited, 0.95)
        );
        engine.stop().await;
    });
}
