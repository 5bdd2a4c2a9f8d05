//! The strict sandbox (`strict_fs`, `FN_STRICT_FS`) in python, node and php, and crash
//! isolation: a function that keeps ending its daemon costs only its own calls
//! (fixtures/sandbox).

use crate::support::{copy_fixture, request, start_in, wait_for, TestEngine};
use serde_json::Value;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn has_php() -> bool {
    if which::which("php").is_ok() {
        return true;
    }
    assert!(std::env::var_os("CI").is_none(), "`php` is missing: CI must install it");
    eprintln!("SKIPPED php: `php` is not on PATH");
    false
}

async fn start_sandbox(dir: &std::path::Path, env: &[(&str, &str)]) -> TestEngine {
    let runtimes = if has_php() {
        "python,node,php,lua"
    } else {
        "python,node,lua"
    };
    let mut vars = vec![("FN_RUNTIMES", runtimes)];
    vars.extend_from_slice(env);
    let e = start_in(dir, &vars).await;
    e.ready().await;
    e
}

fn state_of<'a>(health: &'a Value, name: &str) -> &'a Value {
    health["functions"]["states"]
        .as_array()
        .and_then(|s| s.iter().find(|f| f["name"] == name))
        .unwrap_or_else(|| panic!("no function {name} in health: {health}"))
}

fn assert_blocked(reply: &Value, field: &str, who: &str) {
    let v = reply[field].as_str().unwrap_or_default();
    assert!(v.starts_with("blocked:"), "{who}: {field} must be blocked, got {reply}");
}

fn assert_allowed(reply: &Value, field: &str, who: &str) {
    let v = reply[field].as_str().unwrap_or_default();
    assert!(v.starts_with("allowed:"), "{who}: {field} must be allowed, got {reply}");
}

#[tokio::test(flavor = "multi_thread")]
async fn strict_sandbox_blocks_outside_reads_own_config_and_processes() {
    let dir = copy_fixture("sandbox");
    let e = start_sandbox(dir.path(), &[]).await;

    let py = e.get("/py").await;
    assert_eq!(py.status, 200, "{}", py.text());
    let py = py.json();
    for field in [
        "etc_passwd",
        "own_config",
        "own_env",
        "subprocess",
        "os_system",
        "listdir_etc",
    ] {
        assert_blocked(&py, field, "python");
    }
    assert_eq!(py["etc_passwd"], "blocked:PermissionError");
    assert_eq!(py["own_file"], "allowed:data of py");
    assert_eq!(py["own_write"], "allowed:written");
    // The interpreter's own files stay readable: a lazy stdlib import works.
    assert_eq!(py["lazy_stdlib"], "allowed:csv");
    // The daemon still reads fn.env.json for the handler.
    assert_eq!(py["env_seen"], "s3cret");
    // A module's top-level code (run at its first import) is sandboxed too.
    let top = e.get("/py-toplevel").await.json();
    assert_eq!(top["at_import"], "blocked:PermissionError", "{top}");

    let node = e.get("/node").await;
    assert_eq!(node.status, 200, "{}", node.text());
    let node = node.json();
    for field in [
        "etc_passwd",
        "own_config",
        "own_env",
        "subprocess",
        "spawn",
        "etc_passwd_async",
        "own_config_async",
    ] {
        assert_blocked(&node, field, "node");
    }
    assert_eq!(node["etc_passwd"], "blocked:EACCES");
    assert_eq!(node["own_file"], "allowed:data of node");
    assert_eq!(node["own_write"], "allowed:written");
    assert_eq!(node["env_seen"], "s3cret");

    if has_php() {
        let php = e.get("/php").await;
        assert_eq!(php.status, 200, "{}", php.text());
        let php = php.json();
        for field in ["etc_passwd", "own_config", "own_env", "subprocess", "proc_open"] {
            assert_blocked(&php, field, "php");
        }
        assert_eq!(php["own_file"], "allowed:data of php");
        assert_eq!(php["own_write"], "allowed:written");
        assert_eq!(php["env_seen"], "s3cret");
    }

    // Health says which functions run sandboxed.
    let h = e.engine.health();
    assert_eq!(state_of(&h, "py")["strict_fs"], true);
    assert_eq!(state_of(&h, "node")["strict_fs"], true);
    assert_eq!(state_of(&h, "py-open")["strict_fs"], false);
    // `strict_fs` is implemented now: no "not supported" warning for it, but one where a
    // runtime does not enforce it (lua), and health says that function is not sandboxed.
    let warnings = h["warnings"].to_string();
    assert!(!warnings.contains("not supported"), "{warnings}");
    assert!(
        warnings.contains("lua-strict/fn.config.json: `strict_fs` is not enforced for lua handlers"),
        "{warnings}"
    );
    assert_eq!(state_of(&h, "lua-strict")["strict_fs"], false);
    assert_eq!(e.get("/lua-strict").await.status, 200);
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn strict_fs_false_and_fn_strict_fs_0_turn_the_sandbox_off() {
    let dir = copy_fixture("sandbox");
    let e = start_sandbox(dir.path(), &[]).await;
    let open = e.get("/py-open").await.json();
    for field in [
        "etc_passwd",
        "own_config",
        "own_env",
        "subprocess",
        "os_system",
        "own_file",
    ] {
        assert_allowed(&open, field, "python strict_fs:false");
    }
    // Calls of strict and open functions interleave on one daemon: each keeps its own mode.
    assert_blocked(&e.get("/py").await.json(), "etc_passwd", "python after an open call");
    assert_allowed(
        &e.get("/py-open").await.json(),
        "etc_passwd",
        "python after a strict call",
    );
    e.stop().await;

    let dir = copy_fixture("sandbox");
    let e = start_sandbox(dir.path(), &[("FN_STRICT_FS", "0")]).await;
    let py = e.get("/py").await.json();
    assert_allowed(&py, "etc_passwd", "python with FN_STRICT_FS=0");
    assert_allowed(&py, "subprocess", "python with FN_STRICT_FS=0");
    assert_allowed(
        &e.get("/py-toplevel").await.json(),
        "at_import",
        "python import with FN_STRICT_FS=0",
    );
    let node = e.get("/node").await.json();
    assert_allowed(&node, "etc_passwd", "node with FN_STRICT_FS=0");
    assert_allowed(&node, "subprocess", "node with FN_STRICT_FS=0");
    if has_php() {
        let php = e.get("/php").await.json();
        assert_allowed(&php, "etc_passwd", "php with FN_STRICT_FS=0");
        assert_allowed(&php, "subprocess", "php with FN_STRICT_FS=0");
    }
    assert_eq!(state_of(&e.engine.health(), "py")["strict_fs"], false);
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn fn_strict_fs_allow_opens_a_folder() {
    let dir = copy_fixture("sandbox");
    // Not under /tmp, which strict handlers may always use (a checkout may itself be there).
    let outside = [env!("CARGO_TARGET_TMPDIR"), "/var/tmp"]
        .into_iter()
        .find(|d| !std::path::Path::new(d).starts_with("/tmp"))
        .expect("a folder outside /tmp");
    let extra = tempfile::tempdir_in(outside).expect("temp dir");
    let target = extra.path().join("shared.txt");
    std::fs::write(&target, "shared data").expect("write shared");
    let probe = dir.path().join("py").join("handler.py");
    let text = std::fs::read_to_string(&probe).expect("read handler").replace(
        "\"env_seen\"",
        &format!(
            "\"extra\": _try(lambda: open({:?}).read()),\n        \"env_seen\"",
            target.display().to_string()
        ),
    );
    std::fs::write(&probe, text).expect("write handler");

    let e = start_sandbox(dir.path(), &[]).await;
    assert_blocked(&e.get("/py").await.json(), "extra", "python without an allow list");
    e.stop().await;
    let allow = format!("/nonexistent/x,{}", extra.path().display());
    let e = start_sandbox(dir.path(), &[("FN_STRICT_FS_ALLOW", &allow)]).await;
    let py = e.get("/py").await.json();
    assert_eq!(py["extra"], "allowed:shared data", "{py}");
    assert_blocked(&py, "etc_passwd", "python with an allow list");
    e.stop().await;
}

/// Calls `crash_path` about 3 times a second until stopped; counts its calls.
fn crash_loop(addr: std::net::SocketAddr, crash_path: &'static str, stop: Arc<AtomicBool>, calls: Arc<AtomicUsize>) {
    tokio::spawn(async move {
        while !stop.load(Ordering::Relaxed) {
            let _ = request(addr, "GET", crash_path, &[], None).await;
            calls.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(330)).await;
        }
    });
}

/// One function of a runtime ends its daemon ~3×/s; another function of the same runtime
/// must keep answering at least 99 % of its calls, and health must name the crashing one.
async fn crash_loop_is_isolated(runtime: &str, crash: &str, healthy: &str) {
    let dir = copy_fixture("sandbox");
    let e = start_in(dir.path(), &[("FN_RUNTIMES", runtime)]).await;
    e.ready().await;
    let crash_path: &'static str = Box::leak(format!("/{crash}").into_boxed_str());
    let healthy_path = format!("/{healthy}");
    let addr = e.addr();

    // The first crash takes the shared daemon down once; its function is then isolated.
    let stop = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicUsize::new(0));
    crash_loop(addr, crash_path, stop.clone(), calls.clone());
    wait_for(Duration::from_secs(10), || {
        let h = e.engine.health();
        state_of(&h, crash)["isolation"].is_object()
    })
    .await;
    // Wait for the shared daemon to be back, restarted after that first crash (the one crash
    // isolation cannot spare: the calls in flight then, and the restart).
    wait_for(Duration::from_secs(15), || {
        let s = &e.engine.health()["runtimes"][runtime]["sockets"][0];
        s["restarts"] == 1 && s["up"] == true
    })
    .await;
    let shared_before = e.engine.health()["runtimes"][runtime]["sockets"][0].clone();

    let calls_before = calls.load(Ordering::Relaxed);
    let mut ok = 0;
    let mut failures = Vec::new();
    const POLLS: usize = 200;
    for _ in 0..POLLS {
        let r = request(addr, "GET", &healthy_path, &[], None).await;
        if r.status == 200 && r.json()["ok"] == true {
            ok += 1;
        } else {
            failures.push(format!("{} {}", r.status, r.text()));
        }
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    let crash_calls = calls.load(Ordering::Relaxed) - calls_before;
    stop.store(true, Ordering::Relaxed);
    assert!(
        crash_calls >= 6,
        "the crash loop must run during the polls ({crash_calls} calls)"
    );
    let h = e.engine.health();
    assert!(
        ok * 100 >= POLLS * 99,
        "{ok}/{POLLS} answered: {failures:?}\nbefore: {shared_before}\nhealth: {h}"
    );

    // The shared daemon was not touched by the later crashes: same pid, same restarts.
    let shared_after = &h["runtimes"][runtime]["sockets"][0];
    assert_eq!(shared_before["pid"], shared_after["pid"], "{h}");
    assert_eq!(shared_before["restarts"], shared_after["restarts"], "{h}");
    // Health names the crashing function, with its last exit and restarts.
    let f = state_of(&h, crash);
    assert_eq!(f["state"], "crashing", "{f}");
    let iso = &f["isolation"];
    assert_eq!(iso["state"], "crashing", "{iso}");
    assert!(iso["restarts"].as_u64().is_some_and(|n| n >= 1), "{iso}");
    assert!(
        iso["last_exit"].as_str().is_some_and(|s| s.contains('3')),
        "its daemon's exit status (3) is reported: {iso}"
    );
    assert!(iso["cause"].as_str().is_some_and(|s| s.contains("shared")), "{iso}");
    // The healthy function never left the shared daemon.
    let g = state_of(&h, healthy);
    assert!(g.get("isolation").is_none(), "{g}");
    assert_eq!(g["state"], "warm", "{g}");
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_python_crash_loop_costs_only_its_own_calls() {
    crash_loop_is_isolated("python", "crash", "healthy").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_crash_loop_costs_only_its_own_calls() {
    crash_loop_is_isolated("node", "node-crash", "node-healthy").await;
}
