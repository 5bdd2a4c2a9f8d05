//! Engine → window: every `EngineEvent` of both channels goes to the webview as `engine-event`;
//! socket health feeds the tray's aggregate; daemon crashes and failed reloads become
//! (rate-limited) OS notifications.

use crate::tray;
use fastfn::events::EngineEvent;
use fastfn::Engine;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tauri::{AppHandle, Emitter};
use tauri_plugin_notification::NotificationExt;
use tokio::sync::broadcast::{error::RecvError, Receiver};

/// At most one notification per this interval; the rest are dropped (the dashboard has them).
const NOTIFY_EVERY: Duration = Duration::from_secs(10);

/// Health of all the project's sockets, for the tray.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregate {
    Healthy,
    Degraded,
    Down,
}

impl Aggregate {
    pub fn label(self) -> &'static str {
        match self {
            Aggregate::Healthy => "healthy",
            Aggregate::Degraded => "degraded",
            Aggregate::Down => "down",
        }
    }
}

/// Up/down per socket (`runtime`, index).
#[derive(Debug, Default)]
pub struct Sockets(BTreeMap<(String, u64), bool>);

impl Sockets {
    /// Seed from a `/_fn/health` snapshot (`runtimes.<rt>.sockets[].{index, up}`), leaving out
    /// runtimes whose `health.state` is `not_needed`: no route uses them, so no daemon runs and
    /// their idle sockets are not down.
    pub fn from_health(health: &serde_json::Value) -> Self {
        let mut s = Sockets::default();
        if let Some(runtimes) = health.get("runtimes").and_then(|r| r.as_object()) {
            for (rt, v) in runtimes {
                if v.pointer("/health/state").and_then(|s| s.as_str()) == Some("not_needed") {
                    continue;
                }
                for sock in v.get("sockets").and_then(|s| s.as_array()).into_iter().flatten() {
                    let index = sock.get("index").and_then(|i| i.as_u64()).unwrap_or(1);
                    let up = sock.get("up").and_then(|u| u.as_bool()).unwrap_or(false);
                    s.0.insert((rt.clone(), index), up);
                }
            }
        }
        s
    }

    pub fn observe(&mut self, runtime: &str, index: u64, up: bool) {
        self.0.insert((runtime.to_string(), index), up);
    }

    /// The last route of `runtime` went: its daemons stop, and that is not an outage. (When a
    /// route needs it again, its sockets come back with their `socket_health` events.)
    pub fn not_needed(&mut self, runtime: &str) {
        self.0.retain(|(rt, _), _| rt != runtime);
    }

    pub fn aggregate(&self) -> Aggregate {
        let up = self.0.values().filter(|u| **u).count();
        match up {
            0 => Aggregate::Down,
            n if n == self.0.len() => Aggregate::Healthy,
            _ => Aggregate::Degraded,
        }
    }
}

/// What an event should tell the user outside the window, if anything.
pub fn notification_for(event: &EngineEvent) -> Option<(String, String)> {
    match event {
        EngineEvent::DaemonExited {
            runtime, index, status, ..
        } => Some((
            format!("{runtime} daemon {index} exited"),
            format!("{status}; the supervisor restarts it"),
        )),
        EngineEvent::Reload { ok: false, error, .. } => Some((
            "Reload failed".to_string(),
            error
                .clone()
                .unwrap_or_else(|| "the last good routes keep serving".into()),
        )),
        _ => None,
    }
}

/// Drops notifications that come sooner than [`NOTIFY_EVERY`] after the last one shown.
#[derive(Debug, Default)]
pub struct RateLimit {
    last: Option<Instant>,
}

impl RateLimit {
    pub fn allow(&mut self, now: Instant) -> bool {
        match self.last {
            Some(t) if now.duration_since(t) < NOTIFY_EVERY => false,
            _ => {
                self.last = Some(now);
                true
            }
        }
    }
}

/// Forward the engine's events until its channels close (the engine stopped) or the task is
/// aborted (project switch).
pub async fn forward(app: AppHandle, engine: Engine) {
    let lifecycle = engine.events().subscribe();
    let live = engine.events().subscribe_live();
    let mut sockets = Sockets::from_health(&engine.health());
    tray::show_health(&app, sockets.aggregate());
    let live_task = tokio::spawn(pump(app.clone(), live, |_: &EngineEvent| {}));
    let mut limit = RateLimit::default();
    let app2 = app.clone();
    pump(app, lifecycle, move |event: &EngineEvent| {
        let before = sockets.aggregate();
        match event {
            EngineEvent::SocketHealth { runtime, index, up, .. } => {
                sockets.observe(&runtime.to_string(), *index as u64, *up)
            }
            EngineEvent::RuntimeDemand { runtime, needed: false } => sockets.not_needed(&runtime.to_string()),
            _ => {}
        }
        if sockets.aggregate() != before {
            tray::show_health(&app2, sockets.aggregate());
        }
        if let Some((title, body)) = notification_for(event) {
            if limit.allow(Instant::now()) {
                notify(&app2, title, body);
            }
        }
    })
    .await;
    live_task.abort();
}

async fn pump(app: AppHandle, mut rx: Receiver<EngineEvent>, mut also: impl FnMut(&EngineEvent)) {
    loop {
        match rx.recv().await {
            Ok(event) => {
                also(&event);
                if let Err(e) = app.emit("engine-event", &event) {
                    tracing::debug!("cannot emit engine-event: {e}");
                }
            }
            // A slow window loses the oldest events; the dashboard re-reads snapshots.
            Err(RecvError::Lagged(n)) => tracing::debug!("dropped {n} engine events"),
            Err(RecvError::Closed) => return,
        }
    }
}

fn notify(app: &AppHandle, title: String, body: String) {
    let app = app.clone();
    // D-Bus may be slow or absent (no notification daemon): never on the event path.
    tauri::async_runtime::spawn_blocking(move || {
        if let Err(e) = app.notification().builder().title(&title).body(&body).show() {
            tracing::debug!("notification not shown: {e}");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use fastfn::runtime::RuntimeKind;
    use serde_json::json;

    #[test]
    fn aggregate_health() {
        let mut s = Sockets::from_health(&json!({"runtimes": {
            "python": {"sockets": [{"index": 1, "up": true}]},
            "node": {"sockets": [{"index": 1, "up": true}, {"index": 2, "up": true}]},
        }}));
        assert_eq!(s.aggregate(), Aggregate::Healthy);
        s.observe("node", 2, false);
        assert_eq!(s.aggregate(), Aggregate::Degraded);
        s.observe("node", 1, false);
        s.observe("python", 1, false);
        assert_eq!(s.aggregate(), Aggregate::Down);
        assert_eq!(Sockets::default().aggregate(), Aggregate::Down);
    }

    #[test]
    fn runtimes_not_needed_are_not_down() {
        let mut s = Sockets::from_health(&json!({"runtimes": {
            "python": {"sockets": [{"index": 1, "up": true}], "health": {"state": "up"}},
            "node": {"sockets": [{"index": 1, "up": false}], "health": {"state": "not_needed"}},
        }}));
        assert_eq!(s.aggregate(), Aggregate::Healthy);
        s.observe("php", 1, true);
        s.observe("php", 2, false);
        assert_eq!(s.aggregate(), Aggregate::Degraded);
        s.not_needed("php");
        assert_eq!(s.aggregate(), Aggregate::Healthy);
    }

    #[test]
    fn notifications_for_crashes_and_failed_reloads_only() {
        let crash = EngineEvent::DaemonExited {
            runtime: RuntimeKind::Python,
            index: 1,
            pid: 7,
            status: "signal 9".into(),
            restart_in_ms: Some(100),
        };
        assert!(notification_for(&crash).is_some());
        let ok = EngineEvent::Reload {
            ok: true,
            files: vec![],
            routes: 1,
            added: vec![],
            removed: vec![],
            ms: 1,
            error: None,
        };
        assert!(notification_for(&ok).is_none());
    }

    #[test]
    fn rate_limit() {
        let mut l = RateLimit::default();
        let t = Instant::now();
        assert!(l.allow(t));
        assert!(!l.allow(t + Duration::from_secs(1)));
        assert!(l.allow(t + NOTIFY_EVERY));
    }
}
