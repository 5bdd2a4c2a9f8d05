//! Compatibility of the python, node and php daemons with FastFN's handler forms, through the
//! gateway (fixtures/compat): runaway handlers are reclaimed, ...

use crate::support::{health_pids, start, wait_for, TestEngine};
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
    let e = start("compat", &[("FN_RUNTIMES", &runtimes().join(","))]).await;
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
            let fields: Vec<&str> = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("").split_whitespace().collect();
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
        assert_eq!((r.status, r.text().as_str()), (504, r#"{"error":"runtime timeout"}"#), "{rt}");
        assert!(started.elapsed() < Duration::from_millis(1500), "{rt}: took {:?}", started.elapsed());
        // Within 2 s the daemons are back near idle (node's daemon is restarted by the engine).
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let busy = daemons_cpu_over(&e, Duration::from_millis(800)).await;
        assert!(busy < 0.15, "{rt}: daemons used {busy:.2} s of CPU in 0.8 s after the timeout");
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
