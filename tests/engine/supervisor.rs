//! Daemons under load, crash and engine death: failover with zero failed requests, restart
//! with a new pid, and no daemon outliving a SIGKILLed engine.

use crate::support::{alive, free_port, health_pids, request, socket_base, start, wait_for};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn killing_a_daemon_under_load_fails_no_request() {
    let e = start("demo", &[("FN_RUNTIME_DAEMONS", "python=3"), ("FN_RUNTIMES", "python")]).await;
    e.ready().await;
    let victim = e
        .engine
        .daemons()
        .iter()
        .find(|d| d.index == 2)
        .expect("daemon 2")
        .clone();
    let old_pid = victim.pid();
    assert!(old_pid > 0);

    const TOTAL: usize = 2000;
    const WORKERS: usize = 8;
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let addr = e.addr();
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            let (next, done) = (next.clone(), done.clone());
            tokio::spawn(async move {
                let mut failures = Vec::new();
                while next.fetch_add(1, Ordering::Relaxed) < TOTAL {
                    let r = request(addr, "GET", "/hello?name=load", &[], None).await;
                    if r.status != 200 || r.json()["message"] != "Hello, load!" {
                        failures.push(format!("{} {}", r.status, r.text()));
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
                failures
            })
        })
        .collect();
    let done_ref = done.clone();
    wait_for(Duration::from_secs(60), || {
        done_ref.load(Ordering::Relaxed) >= TOTAL / 3
    })
    .await;
    kill(Pid::from_raw(old_pid as i32), Signal::SIGKILL).expect("kill daemon");
    let at_kill = done.load(Ordering::Relaxed);
    assert!(at_kill < TOTAL * 2 / 3, "the kill must land mid-load (at {at_kill})");
    let mut failures = Vec::new();
    for w in workers {
        failures.extend(w.await.expect("worker"));
    }
    assert_eq!(done.load(Ordering::Relaxed), TOTAL);
    assert_eq!(failures, Vec::<String>::new(), "{} failed requests", failures.len());

    // Restarted: a new pid, its socket up again, restarts counted.
    wait_for(Duration::from_secs(5), || {
        let h = e.engine.health();
        let s = &h["runtimes"]["python"]["sockets"][1];
        victim.pid() != 0
            && victim.pid() != old_pid
            && s["up"] == true
            && s["restarts"].as_u64().is_some_and(|n| n >= 1)
            && s["pid"] == victim.pid()
    })
    .await;
    assert!(!alive(old_pid));
    assert!(alive(victim.pid()));
    assert_eq!(e.get("/hello").await.status, 200);
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn no_daemon_outlives_a_killed_engine() {
    let sockets = socket_base();
    let port = free_port();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_fastfn"))
        .args(["dev", "--port", &port.to_string()])
        .arg(crate::support::fixture("demo"))
        .env("FN_RUNTIMES", "node,python")
        .env("FN_RUNTIME_DAEMONS", "python=2,node=2")
        .env("FN_SOCKET_BASE_DIR", sockets.path())
        .env("FN_HEALTH_INTERVAL", "0.2")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn fastfn");
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    let until = tokio::time::Instant::now() + Duration::from_secs(20);
    let pids = loop {
        assert!(tokio::time::Instant::now() < until, "fastfn dev never became ready");
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            let h = request(addr, "GET", "/_fn/health", &[], None).await.json();
            let ready = ["node", "python"]
                .iter()
                .all(|rt| h["runtimes"][rt]["health"]["up"] == true);
            let pids = health_pids(&h);
            if ready && pids.len() == 4 {
                break pids;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(pids.iter().all(|p| alive(*p)), "{pids:?}");
    let engine_pid = child.id().expect("engine pid");
    kill(Pid::from_raw(engine_pid as i32), Signal::SIGKILL).expect("kill engine");
    let _ = child.wait().await;
    wait_for(Duration::from_secs(3), || pids.iter().all(|p| !alive(*p))).await;
}
