//! Schedules and keep-warm (`schedule`, `keep_warm` in `fn.config.json`): a real engine runs
//! Lua handlers on their schedules through the invoke pipeline, in real time.
//!
//! `fixtures/schedules` (see its README): `tick/` every second with a described request,
//! `cronzone/` a per-second cron at `+05:30`, `dailyny/` a weekday 09:00 cron in New York,
//! `flaky/` and `weekly/` weekly schedules run by "run now", `warm/` keep-warm pings.

use crate::support::{copy_fixture, start_in, wait_for, TestEngine};
use fastfn::events::EngineEvent;
use serde_json::Value;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Lua only; the state file goes to a temp dir unless a test says otherwise.
async fn engine(dir: &Path, extra: &[(&str, &str)]) -> TestEngine {
    let mut env = vec![("FN_RUNTIMES", "lua"), ("FN_SCHEDULER_PERSIST_ENABLED", "0")];
    env.extend_from_slice(extra);
    let e = start_in(dir, &env).await;
    e.ready().await;
    e
}

async fn snapshot(e: &TestEngine) -> Value {
    let r = e.get("/_fn/schedules").await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

/// The `schedules` (or `keep_warm`) entry whose key names `folder`.
fn entry(snap: &Value, list: &str, folder: &str) -> Value {
    snap[list]
        .as_array()
        .and_then(|l| l.iter().find(|s| s["key"].as_str().unwrap_or("").contains(folder)))
        .unwrap_or_else(|| panic!("no {list} entry for {folder} in {snap}"))
        .clone()
}

/// Request records of live events, kept as they arrive.
fn record_requests(e: &TestEngine) -> Arc<Mutex<Vec<fastfn::events::RequestSummary>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut rx = e.engine.events().subscribe_live();
    let out = seen.clone();
    tokio::spawn(async move {
        while let Ok(ev) = rx.recv().await {
            if let EngineEvent::Requests { requests, .. } = ev {
                out.lock().unwrap().extend(requests);
            }
        }
    });
    seen
}

fn runs_of(seen: &Mutex<Vec<fastfn::events::RequestSummary>>, path: &str, trigger: &str) -> Vec<(u64, u16)> {
    seen.lock()
        .unwrap()
        .iter()
        .filter(|r| r.path == path && r.trigger.as_deref() == Some(trigger))
        .map(|r| (r.ts, r.status))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_one_second_schedule_runs_every_second_with_its_request() {
    let dir = copy_fixture("schedules");
    let e = engine(dir.path(), &[]).await;
    let seen = record_requests(&e);
    wait_for(Duration::from_secs(8), || {
        runs_of(&seen, "/tick", "schedule").len() >= 3
    })
    .await;
    let runs = runs_of(&seen, "/tick", "schedule");
    // Each run answered 200: the handler checked method, query, header, body, context.user,
    // context.trigger and the client address.
    assert!(runs.iter().all(|(_, s)| *s == 200), "{runs:?}");
    // About a second apart (each tick may be late under load, the boundaries do not drift).
    for pair in runs.windows(2) {
        let gap = pair[1].0 - pair[0].0;
        assert!((200..=2_500).contains(&gap), "runs {gap} ms apart: {runs:?}");
    }
    let span = (runs[runs.len() - 1].0 - runs[0].0) as f64 / (runs.len() - 1) as f64;
    assert!(
        (700.0..=1_400.0).contains(&span),
        "{span} ms per run on average: {runs:?}"
    );
    let s = entry(&snapshot(&e).await, "schedules", "tick");
    assert_eq!(s["schedule"]["every_seconds"], 1);
    assert_eq!(s["route"], "/tick");
    assert_eq!(s["state"]["last_status"], 200, "{s}");
    assert_eq!(s["state"]["last_error"], "");
    let (next, last) = (
        s["state"]["next"].as_f64().unwrap(),
        s["state"]["last"].as_f64().unwrap(),
    );
    assert!(next > last - 1.0 && next.fract() == 0.0, "{s}");
    // User traffic is not marked.
    let user = e.send("POST", "/tick?q=1", &[("x-from", "sched")], Some(b"ping")).await;
    assert_eq!(user.status, 400, "no context.trigger on user calls: {}", user.text());
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cron_schedules_run_in_their_zone() {
    let dir = copy_fixture("schedules");
    let e = engine(dir.path(), &[]).await;
    let seen = record_requests(&e);
    wait_for(Duration::from_secs(6), || {
        runs_of(&seen, "/cronzone", "schedule").len() >= 2
    })
    .await;
    assert!(runs_of(&seen, "/cronzone", "schedule").iter().all(|(_, s)| *s == 200));
    // A weekday 09:00 in New York: `next` is that instant, computed here on its own.
    let s = entry(&snapshot(&e).await, "schedules", "dailyny");
    assert_eq!(s["schedule"]["timezone"], "America/New_York");
    let next = s["state"]["next"].as_f64().expect("next") as i64;
    let tz = jiff::tz::TimeZone::get("America/New_York").unwrap();
    let mut day = jiff::Timestamp::now().to_zoned(tz.clone()).date();
    let want = loop {
        let at = day.at(9, 0, 0, 0).to_zoned(tz.clone()).unwrap();
        let weekday = at.weekday().to_monday_one_offset();
        if weekday <= 5 && at.timestamp() > jiff::Timestamp::now() {
            break at.timestamp().as_second();
        }
        day = day.tomorrow().unwrap();
    };
    assert_eq!(next, want, "{s}");
    assert!(s["state"].get("last").is_none(), "never ran: {s}");
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_run_is_retried_with_backoff_and_run_now_is_guarded() {
    let dir = copy_fixture("schedules");
    let e = engine(dir.path(), &[]).await;
    let key = entry(&snapshot(&e).await, "schedules", "flaky")["key"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/_fn/schedules/run?key={key}");
    // A write: the CSRF header is required.
    assert_eq!(e.send("POST", &path, &[], None).await.status, 403);
    assert_eq!(e.get(&path).await.status, 405);
    let unknown = e
        .send(
            "POST",
            "/_fn/schedules/run?key=lua/nope@default",
            &[("x-fn-request", "1")],
            None,
        )
        .await;
    assert_eq!(unknown.status, 404);
    let seen = record_requests(&e);
    let r = e.send("POST", &path, &[("x-fn-request", "1")], None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        (r.json()["status"].clone(), r.json()["ok"].clone()),
        (500.into(), false.into())
    );
    let s = entry(&snapshot(&e).await, "schedules", "flaky");
    assert_eq!(s["state"]["retry_attempt"], 2, "{s}");
    assert!(s["state"]["retry_due"].as_f64().is_some(), "{s}");
    let err = s["state"]["last_error"].as_str().unwrap();
    assert!(
        err.starts_with("retrying 2/3 in 1.00s: HTTP 500: first attempt fails"),
        "{err}"
    );
    // The retry comes about a second later and succeeds; nothing is pending after it.
    let mut last = Value::Null;
    let until = tokio::time::Instant::now() + Duration::from_secs(6);
    while tokio::time::Instant::now() < until {
        last = entry(&snapshot(&e).await, "schedules", "flaky");
        if last["state"]["last_status"] == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(last["state"]["last_status"], 200, "{last}");
    assert!(last["state"].get("retry_due").is_none(), "{last}");
    // The dashboard's stream sends the requests in batches a few times per second.
    wait_for(Duration::from_secs(5), || {
        runs_of(&seen, "/flaky", "schedule").len() >= 2
    })
    .await;
    let runs = runs_of(&seen, "/flaky", "schedule");
    assert_eq!(runs.iter().map(|r| r.1).collect::<Vec<_>>(), [500, 200]);
    let gap = runs[1].0 - runs[0].0;
    assert!((900..=2_500).contains(&gap), "retry after {gap} ms");
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn state_survives_a_restart_and_a_missed_run_runs_once() {
    let dir = copy_fixture("schedules");
    let state = dir.path().join(".fastfn/scheduler-state.json");
    let persist = [("FN_SCHEDULER_PERSIST_ENABLED", "1")];
    let e = engine(dir.path(), &persist).await;
    let key = entry(&snapshot(&e).await, "schedules", "weekly")["key"]
        .as_str()
        .unwrap()
        .to_string();
    let r = e
        .send(
            "POST",
            &format!("/_fn/schedules/run?key={key}"),
            &[("x-fn-request", "1")],
            None,
        )
        .await;
    assert_eq!(r.json()["status"], 200);
    let before = entry(&snapshot(&e).await, "schedules", "weekly")["state"].clone();
    e.stop().await;
    let file: Value = serde_json::from_str(&std::fs::read_to_string(&state).expect("state file")).unwrap();
    assert_eq!(file["version"], 1);
    assert_eq!(file["schedules"][&key]["last_status"], 200, "{file}");

    // Restarted: the same state, before any run.
    let e = engine(dir.path(), &persist).await;
    let after = entry(&snapshot(&e).await, "schedules", "weekly")["state"].clone();
    assert_eq!(
        (&after["last"], &after["last_status"], &after["next"]),
        (&before["last"], &before["last_status"], &before["next"])
    );
    e.stop().await;

    // Stopped while a run was due: on start it runs once, and `next` moves on.
    let mut file: Value = serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    let now = fastfn::clock::epoch_secs();
    file["schedules"][&key]["next"] = (now - 3.0 * 604_800.0).into();
    file["schedules"][&key]["last"] = (now - 4.0 * 604_800.0).into();
    // State of a function that no longer exists.
    file["schedules"]["lua/gone/handler.lua@default"] = serde_json::json!({"next": now, "last_status": 200});
    std::fs::write(&state, file.to_string()).unwrap();
    let e = engine(dir.path(), &persist).await;
    let seen = record_requests(&e);
    wait_for(Duration::from_secs(5), || {
        runs_of(&seen, "/weekly", "schedule").len() == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(runs_of(&seen, "/weekly", "schedule").len(), 1, "one catch-up run");
    let s = entry(&snapshot(&e).await, "schedules", "weekly")["state"].clone();
    assert!(s["last"].as_f64().unwrap() >= now, "{s}");
    assert!(s["next"].as_f64().unwrap() > now, "{s}");
    e.stop().await;
    let file: Value = serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    assert!(
        file["schedules"].get("lua/gone/handler.lua@default").is_none(),
        "{file}"
    );
    assert_eq!(file["schedules"][&key]["last"], s["last"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn keep_warm_pings_are_marked_and_reported() {
    let dir = copy_fixture("schedules");
    let e = engine(dir.path(), &[]).await;
    let seen = record_requests(&e);
    wait_for(Duration::from_secs(6), || {
        runs_of(&seen, "/warm", "keep_warm").len() >= 2
    })
    .await;
    assert!(runs_of(&seen, "/warm", "keep_warm").iter().all(|(_, s)| *s == 200));
    // A user call of the same function is not marked.
    assert_eq!(e.get("/warm").await.text(), "hello");
    let unmarked = || {
        seen.lock()
            .unwrap()
            .iter()
            .filter(|r| r.path == "/warm" && r.trigger.is_none())
            .count()
    };
    wait_for(Duration::from_secs(2), || unmarked() == 1).await;
    let health = e.engine.health();
    assert_eq!(health["functions"]["summary"]["keep_warm_enabled"], 1);
    let states = health["functions"]["states"].as_array().unwrap();
    let warm = states
        .iter()
        .find(|s| s["key"].as_str().unwrap().contains("warm"))
        .unwrap();
    assert_eq!(warm["keep_warm"]["warm_state"], "warm", "{warm}");
    assert_eq!(warm["keep_warm"]["ping_every_seconds"], 1);
    assert_eq!(warm["keep_warm"]["last_status"], 200);
    let others_have_none = states.iter().filter(|s| s.get("keep_warm").is_some()).count();
    assert_eq!(others_have_none, 1);
    let kw = entry(&snapshot(&e).await, "keep_warm", "warm");
    assert_eq!(kw["state"]["warm_state"], "warm");
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reload_stops_removed_schedules_and_recomputes_changed_ones() {
    let dir = copy_fixture("schedules");
    let e = engine(dir.path(), &[]).await;
    assert!(entry(&snapshot(&e).await, "schedules", "weekly")["state"]["next"].is_f64());
    std::fs::write(
        dir.path().join("weekly/fn.config.json"),
        r#"{"schedule": {"enabled": true, "every_seconds": 7200}}"#,
    )
    .unwrap();
    std::fs::remove_dir_all(dir.path().join("tick")).unwrap();
    let report = e.engine.reload().await;
    assert!(report.ok, "{report:?}");
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let snap = snapshot(&e).await;
    let weekly = entry(&snap, "schedules", "weekly");
    let next = weekly["state"]["next"].as_f64().unwrap();
    assert_eq!(next % 7200.0, 0.0, "recomputed for the new period: {weekly}");
    assert!(next - fastfn::clock::epoch_secs() <= 7200.0);
    let keys: Vec<&str> = snap["schedules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["key"].as_str().unwrap())
        .collect();
    assert!(!keys.iter().any(|k| k.contains("tick")), "{keys:?}");
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_scheduler_can_be_switched_off() {
    let dir = copy_fixture("schedules");
    let e = engine(dir.path(), &[("FN_SCHEDULER_ENABLED", "0")]).await;
    let seen = record_requests(&e);
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert!(seen.lock().unwrap().is_empty(), "nothing runs");
    let snap = snapshot(&e).await;
    assert_eq!(snap["enabled"], false);
    assert!(!snap["schedules"].as_array().unwrap().is_empty());
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_schedules_api_is_behind_the_admin_guard() {
    let dir = copy_fixture("schedules");
    let e = engine(dir.path(), &[]).await;
    let run = "/_fn/schedules/run?key=lua/weekly/handler.lua@default";
    // A rebinding page: another Host (with the CSRF header it can add).
    let attack = [("Host", "evil.example:8080"), ("x-fn-request", "1")];
    for (method, path) in [("GET", "/_fn/schedules"), ("POST", run)] {
        let r = e.send(method, path, &attack, None).await;
        assert_eq!(r.status, 421, "{method} {path}: {}", r.text());
    }
    e.stop().await;
    let e = engine(dir.path(), &[("FN_ADMIN_API_ENABLED", "0")]).await;
    assert_eq!(e.get("/_fn/schedules").await.status, 404);
    assert_eq!(e.send("POST", run, &[("x-fn-request", "1")], None).await.status, 404);
    e.stop().await;
}
