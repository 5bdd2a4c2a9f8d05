//! Hot reload (contract §5.6, docs/compat.md "Hot reload"): file changes reach the route map
//! and the daemons within a second, a broken config keeps the last good map serving, and
//! reloads under load fail no request. Every test writes into its own copy of
//! `fixtures/reload` (`stable.py`, `hello.py`, `hello-js.js`, `doomed.py`, `before.py`).

use crate::support::{copy_fixture, request, start_in, Resp, TestEngine};
use fastfn::events::EngineEvent;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::broadcast;
use tokio::time::Instant;

/// How soon a change must be served.
const WITHIN: Duration = Duration::from_secs(1);

async fn python_engine(dir: &Path) -> TestEngine {
    start_in(dir, &[("FN_RUNTIMES", "python")]).await
}

/// Poll `path` every 10 ms until `done`; returns how long that took (gives up after 5 s, so a
/// slow reload is reported with its response rather than as a timeout).
async fn poll(e: &TestEngine, path: &str, done: impl Fn(&Resp) -> bool) -> Duration {
    let t = Instant::now();
    loop {
        let r = e.get(path).await;
        if done(&r) {
            return t.elapsed();
        }
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "{path}: still {} {} after 5 s",
            r.status,
            r.text()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn write(dir: &Path, rel: &str, text: &str) {
    let path = dir.join(rel);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::write(path, text).expect("write");
}

fn py_returning(text: &str) -> String {
    format!("def handler(event):\n    return {text:?}\n")
}

/// The next `Reload` event that satisfies `want` (other events are skipped).
async fn next_reload(
    rx: &mut broadcast::Receiver<EngineEvent>,
    want: impl Fn(bool, &[String]) -> bool,
) -> (bool, Vec<String>, Option<String>) {
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let left = until.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, rx.recv()).await {
            Err(_) => panic!("no matching Reload event within 5 s"),
            Ok(Err(broadcast::error::RecvError::Lagged(_))) => continue,
            Ok(Err(e)) => panic!("event bus: {e}"),
            Ok(Ok(EngineEvent::Reload { ok, files, error, .. })) if want(ok, &files) => return (ok, files, error),
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_file_is_served_within_a_second() {
    let dir = copy_fixture("reload");
    let e = python_engine(dir.path()).await;
    assert_eq!(e.get("/fresh").await.status, 404);
    write(dir.path(), "fresh.py", &py_returning("fresh"));
    let took = poll(&e, "/fresh", |r| r.status == 200).await;
    assert!(took < WITHIN, "served after {took:?}");
    assert_eq!(e.get("/fresh").await.text(), "fresh");
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_edited_handler_runs_new_code_within_a_second() {
    let dir = copy_fixture("reload");
    // Node too: both daemons must notice a changed handler file.
    let e = start_in(dir.path(), &[]).await;
    for (path, file, new) in [
        ("/hello", "hello.py", py_returning("v2 edited")),
        (
            "/hello-js",
            "hello-js.js",
            "exports.handler = async () => \"v2 edited\";\n".to_string(),
        ),
    ] {
        assert_eq!(e.get(path).await.text(), "v1", "{path}: warm on the old code first");
        write(dir.path(), file, &new);
        let took = poll(&e, path, |r| r.text() == "v2 edited").await;
        assert!(took < WITHIN, "{path}: new code after {took:?}");
        for _ in 0..5 {
            let r = e.get(path).await;
            assert_eq!((r.status, r.text().as_str()), (200, "v2 edited"), "{path}");
        }
    }
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deleted_function_answers_404_within_a_second() {
    let dir = copy_fixture("reload");
    let e = python_engine(dir.path()).await;
    assert_eq!(e.get("/doomed").await.status, 200);
    std::fs::remove_file(dir.path().join("doomed.py")).expect("rm");
    // Until the map is rebuilt the daemon itself answers 404 `unknown function`; wait for the
    // gateway's own 404 (the route is gone).
    let took = poll(&e, "/doomed", |r| {
        r.status == 404 && r.text() == r#"{"error":"not found"}"#
    })
    .await;
    assert!(took < WITHIN, "route removed after {took:?}");
    assert!(!e.engine.catalog()["mapped_routes"]
        .as_object()
        .expect("routes")
        .contains_key("/doomed"));
    assert_eq!(e.get("/stable").await.status, 200);
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_folder_with_a_function_is_served() {
    let dir = copy_fixture("reload");
    let e = python_engine(dir.path()).await;
    write(dir.path(), "newdir/inside.py", &py_returning("inside"));
    let took = poll(&e, "/newdir/inside", |r| r.status == 200).await;
    assert!(took < WITHIN, "served after {took:?}");
    assert_eq!(e.get("/newdir/inside").await.text(), "inside");
    // The new folder is watched too: a second file in it is picked up as well.
    write(dir.path(), "newdir/second.py", &py_returning("second"));
    let took = poll(&e, "/newdir/second", |r| r.status == 200).await;
    assert!(took < WITHIN, "second file served after {took:?}");
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_renamed_file_moves_its_route() {
    let dir = copy_fixture("reload");
    let e = python_engine(dir.path()).await;
    assert_eq!(e.get("/before").await.status, 200);
    std::fs::rename(dir.path().join("before.py"), dir.path().join("after.py")).expect("rename");
    let took = poll(&e, "/after", |r| r.status == 200).await;
    assert!(took < WITHIN, "new URL served after {took:?}");
    assert_eq!(e.get("/after").await.text(), "renamed");
    let took = poll(&e, "/before", |r| r.text() == r#"{"error":"not found"}"#).await;
    assert!(took < WITHIN, "old URL still served {took:?} later");
    e.stop().await;
}

/// An invalid `fn.config.json` takes only its own folder out (reported in the reload event and
/// health) while every other change keeps being published, as in FastFN; fixing it brings the
/// folder back.
#[tokio::test(flavor = "multi_thread")]
async fn an_invalid_folder_config_takes_only_that_folder_out() {
    let dir = copy_fixture("reload");
    let e = python_engine(dir.path()).await;
    let mut rx = e.engine.events().subscribe();
    write(dir.path(), "broken/hello.py", &py_returning("broken hello"));
    write(dir.path(), "broken/fn.config.json", "{\"timeout_ms\": ");
    write(dir.path(), "added.py", &py_returning("added"));
    let (ok, files, error) = next_reload(&mut rx, |_, files| files.iter().any(|f| f == "added.py")).await;
    let took = poll(&e, "/added", |r| r.status == 200).await;
    assert!(
        took < WITHIN,
        "a change beside a broken config is published: {took:?} {files:?}"
    );
    for path in ["/stable", "/hello", "/doomed"] {
        assert_eq!(e.get(path).await.status, 200, "{path}: the rest keeps serving");
    }
    assert_eq!(e.get("/broken/hello").await.status, 404, "the broken folder is out");
    let h = e.get("/_fn/health").await.json();
    let last = h["hot_reload"]["last_error"].as_str().unwrap_or_default().to_string();
    assert!(last.contains("broken/fn.config.json"), "health: {}", h["hot_reload"]);
    if !ok {
        let error = error.expect("a failed reload carries its error");
        assert!(error.contains("broken/fn.config.json"), "{error}");
    }

    write(dir.path(), "broken/fn.config.json", "{\"timeout_ms\": 1000}");
    let (ok, _, error) = next_reload(&mut rx, |ok, _| ok).await;
    assert!(ok && error.is_none(), "{error:?}");
    let took = poll(&e, "/broken/hello", |r| r.status == 200).await;
    assert!(took < WITHIN, "{took:?}");
    assert_eq!(e.get("/broken/hello").await.text(), "broken hello");
    let h = e.get("/_fn/health").await.json();
    assert!(
        h["hot_reload"].get("last_error").is_none(),
        "cleared: {}",
        h["hot_reload"]
    );
    e.stop().await;
}

/// A broken root `fn.config.json` shapes every route: the last good map keeps serving.
#[tokio::test(flavor = "multi_thread")]
async fn an_invalid_root_config_keeps_the_last_good_map() {
    let dir = copy_fixture("reload");
    let e = python_engine(dir.path()).await;
    let mut rx = e.engine.events().subscribe();
    write(dir.path(), "fn.config.json", "{\"assets\": ");
    let (ok, _, error) = next_reload(&mut rx, |_, files| files.iter().any(|f| f == "fn.config.json")).await;
    assert!(!ok, "a broken root config is no success");
    assert!(error.unwrap_or_default().contains("fn.config.json"));
    for path in ["/stable", "/hello", "/doomed"] {
        assert_eq!(e.get(path).await.status, 200, "{path}: the old map keeps serving");
    }
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn reloads_under_load_fail_no_request() {
    let dir = copy_fixture("reload");
    let e = python_engine(dir.path()).await;
    let addr = e.addr();
    // Count Reload events as they come (the request events of the load would otherwise push
    // them out of the bus).
    let mut rx = e.engine.events().subscribe();
    let reloads = Arc::new(AtomicUsize::new(0));
    let failed_reloads = Arc::new(AtomicUsize::new(0));
    let counter = {
        let (reloads, failed_reloads) = (reloads.clone(), failed_reloads.clone());
        tokio::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(EngineEvent::Reload { ok, .. }) => {
                        reloads.fetch_add(1, Ordering::SeqCst);
                        if !ok {
                            failed_reloads.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        })
    };
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let bad: Arc<Mutex<Vec<(u16, String)>>> = Arc::default();
    let deadline = Instant::now() + Duration::from_secs(30);
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (stop, sent, bad) = (stop.clone(), sent.clone(), bad.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                    let r = request(addr, "GET", "/stable", &[], None).await;
                    sent.fetch_add(1, Ordering::SeqCst);
                    if r.status != 200 {
                        bad.lock().expect("lock").push((r.status, r.text()));
                    }
                }
            })
        })
        .collect();
    for i in 0..20 {
        if i % 2 == 0 {
            write(dir.path(), &format!("gen/n{i}.py"), &py_returning(&format!("n{i}")));
        } else {
            write(dir.path(), "hello.py", &py_returning(&format!("edit {i}")));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Let the last change be picked up, then stop the load.
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.await.expect("client");
    }
    counter.abort();
    let bad = bad.lock().expect("lock").clone();
    let sent = sent.load(Ordering::SeqCst);
    assert!(
        bad.is_empty(),
        "{} of {sent} requests failed: {:?}",
        bad.len(),
        &bad[..bad.len().min(5)]
    );
    assert!(sent >= 40, "only {sent} requests were made");
    let reloads = reloads.load(Ordering::SeqCst);
    eprintln!("{sent} requests, {reloads} reloads");
    assert!(reloads >= 10, "only {reloads} reloads for 20 changes 100 ms apart");
    assert_eq!(failed_reloads.load(Ordering::SeqCst), 0);
    // Everything written was picked up.
    assert_eq!(e.get("/gen/n18").await.text(), "n18");
    assert_eq!(e.get("/hello").await.text(), "edit 19");
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn without_hot_reload_only_a_manual_reload_serves_new_files() {
    let dir = copy_fixture("reload");
    let e = start_in(dir.path(), &[("FN_RUNTIMES", "python"), ("FN_HOT_RELOAD", "0")]).await;
    let h = e.get("/_fn/health").await.json();
    assert_eq!(h["hot_reload"]["enabled"], false, "{}", h["hot_reload"]);
    write(dir.path(), "fresh.py", &py_returning("fresh"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(e.get("/fresh").await.status, 404, "no watcher, no reload");
    let r = e.send("POST", "/_fn/reload", &[("X-Fn-Request", "1")], None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    assert_eq!(body["ok"], true, "{body}");
    assert!(
        body["added"]
            .as_array()
            .is_some_and(|a| a.iter().any(|p| p == "/fresh")),
        "{body}"
    );
    let r = e.get("/fresh").await;
    assert_eq!((r.status, r.text().as_str()), (200, "fresh"));
    e.stop().await;
}

/// The pid of `rt`'s first daemon; 0 while it does not run.
fn daemon_pid(e: &TestEngine, rt: fastfn::runtime::RuntimeKind) -> u32 {
    e.engine
        .daemons()
        .iter()
        .filter(|d| d.runtime == rt)
        .map(|d| d.pid())
        .max()
        .unwrap_or(0)
}

/// Daemons run only for runtimes the routes use (docs/compat.md "Runtimes"): a python-only
/// project starts no node or php process; a `.js` file starts node and is served; deleting it
/// stops node again. Health says `not_needed`, not `down`.
#[tokio::test(flavor = "multi_thread")]
async fn runtimes_start_when_a_route_needs_them_and_stop_with_the_last() {
    use fastfn::runtime::RuntimeKind::{Node, Php, Python};
    let dir = tempfile::tempdir().expect("temp dir");
    write(dir.path(), "only.py", &py_returning("py"));
    let e = start_in(dir.path(), &[("FN_RUNTIMES", "python,node,php")]).await;
    let mut events = e.engine.events().subscribe();
    assert_eq!(e.get("/only").await.text(), "py");
    assert!(daemon_pid(&e, Python) > 0);
    assert_eq!(
        (daemon_pid(&e, Node), daemon_pid(&e, Php)),
        (0, 0),
        "node/php started for nothing"
    );
    let health = e.engine.health();
    for (rt, state) in [("python", "up"), ("node", "not_needed"), ("php", "not_needed")] {
        assert_eq!(
            health["runtimes"][rt]["health"]["state"], state,
            "{rt}: {}",
            health["runtimes"][rt]
        );
    }

    write(dir.path(), "hi.js", "exports.handler = async () => \"js\";\n");
    let took = poll(&e, "/hi", |r| r.status == 200 && r.text() == "js").await;
    assert!(took < WITHIN, "node route served after {took:?}");
    let node = daemon_pid(&e, Node);
    assert!(node > 0 && Path::new(&format!("/proc/{node}")).exists());
    assert_eq!(e.engine.health()["runtimes"]["node"]["health"]["state"], "up");
    assert_eq!(daemon_pid(&e, Php), 0);

    std::fs::remove_file(dir.path().join("hi.js")).expect("rm");
    poll(&e, "/hi", |r| r.status == 404).await;
    let t = Instant::now();
    while daemon_pid(&e, Node) != 0 || Path::new(&format!("/proc/{node}")).exists() {
        assert!(t.elapsed() < Duration::from_secs(5), "node daemon {node} still running");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(e.engine.health()["runtimes"]["node"]["health"]["state"], "not_needed");
    assert_eq!(e.get("/only").await.text(), "py", "python unaffected");
    let mut demand = Vec::new();
    while let Ok(ev) = events.try_recv() {
        if let EngineEvent::RuntimeDemand { runtime, needed } = ev {
            demand.push((runtime, needed));
        }
    }
    assert_eq!(demand, vec![(Node, true), (Node, false)]);
    e.stop().await;
}

/// `FN_HOT_RELOAD_WATCHDOG=0`: no file watcher; the tree is polled every
/// `FN_HOT_RELOAD_INTERVAL` seconds, as the original's interval reload does, and health says so.
#[tokio::test(flavor = "multi_thread")]
async fn with_the_watchdog_off_changes_are_found_by_interval_polling() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "first.py", &py_returning("one"));
    let e = start_in(
        dir.path(),
        &[
            ("FN_RUNTIMES", "python"),
            ("FN_HOT_RELOAD_WATCHDOG", "0"),
            ("FN_HOT_RELOAD_INTERVAL", "1"),
        ],
    )
    .await;
    let h = e.get("/_fn/health").await.json();
    assert_eq!(
        h["hot_reload"]["watchdog"]["backend"], "interval",
        "{}",
        h["hot_reload"]
    );
    write(dir.path(), "second.py", &py_returning("two"));
    // Within one polling period plus the rescan (poll gives up after 5 s).
    let took = poll(&e, "/second", |r| r.status == 200).await;
    assert!(took < Duration::from_secs(3), "found after {took:?}");
    e.stop().await;
}
