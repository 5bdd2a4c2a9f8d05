//! Pure: the run state of one schedule and one keep-warm entry, the decisions taken on each
//! tick (is it due? which attempt?), what a finished run changes, and the persisted file
//! (`.fastfn/scheduler-state.json`, FastFN's format: `{version, saved_at, schedules: {key:
//! {next, last, last_status, last_error, retry_due, retry_attempt, warm_at}}, keep_warm: {…}}`).
//!
//! Invariants: at most one run of an entry at a time (`running`); `next` is reserved (moved
//! past `now`) when a first attempt starts, so a slow run never makes the next one fire twice;
//! a missed run (the engine was stopped when `next` passed) runs once at start, then `next`
//! follows from that moment, as FastFN does. Times are epoch seconds.

use super::spec::{next_run, RetryPolicy, Schedule, Zone};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Longest `last_error` kept (FastFN's bound).
pub const MAX_ERROR_LEN: usize = 2000;

/// One schedule's state; what `/_fn/schedules` shows as `state`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[ts(export, rename = "ScheduleRunState")]
pub struct RunState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub next: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub last: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub last_status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub last_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub retry_due: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub retry_attempt: Option<u32>,
    /// A run is in flight (not persisted).
    #[serde(skip)]
    pub running: bool,
}

/// What a tick decided for one schedule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Due {
    /// Run now, as attempt `n` (1 = a scheduled run, more = a retry).
    Run { attempt: u32 },
}

impl RunState {
    /// Decide whether to run at `now`, updating `next` (computed when unknown, reserved when
    /// a first attempt starts). `Err` is a schedule whose next run cannot be computed.
    pub fn tick(&mut self, schedule: &Schedule, zone: &Zone, now: f64) -> Result<Option<Due>, String> {
        if self.running {
            return Ok(None);
        }
        let Some(trigger) = schedule.trigger() else {
            return Ok(None);
        };
        if !schedule.retry.enabled {
            self.retry_due = None;
            self.retry_attempt = None;
        }
        if let Some(due) = self.retry_due {
            if now < due {
                return Ok(None);
            }
            let attempt = self
                .retry_attempt
                .unwrap_or(2)
                .clamp(2, schedule.retry.max_attempts.max(2));
            self.retry_due = None;
            self.retry_attempt = None;
            self.running = true;
            return Ok(Some(Due::Run { attempt }));
        }
        let next = match self.next {
            Some(n) => n,
            None => {
                let n = next_run(&trigger, zone, now)?;
                self.next = Some(n);
                n
            }
        };
        if now < next {
            return Ok(None);
        }
        // Reserve the following run before this one starts.
        self.next = Some(next_run(&trigger, zone, now)?);
        self.running = true;
        Ok(Some(Due::Run { attempt: 1 }))
    }

    /// Record a finished attempt. `status` 0 = no answer; `error` is empty for an ordinary
    /// answer. With retries left and a retryable status, `retry_due` is set `delay` seconds on.
    pub fn finish(&mut self, now: f64, attempt: u32, status: u16, error: &str, retry: &RetryPolicy, delay: f64) {
        self.running = false;
        self.last = Some(now);
        self.last_status = Some(status);
        self.last_error = Some(truncate(error));
        self.retry_due = None;
        self.retry_attempt = None;
        if retry.retries(attempt, status) {
            self.retry_due = Some(now + delay);
            self.retry_attempt = Some(attempt + 1);
            let why = if error.is_empty() {
                status.to_string()
            } else {
                error.to_string()
            };
            self.last_error = Some(truncate(&format!(
                "retrying {}/{} in {:.2}s: {why}",
                attempt + 1,
                retry.max_attempts,
                delay
            )));
        }
    }

    /// A schedule whose run time cannot be computed: shown as FastFN shows it.
    pub fn mark_invalid(&mut self, now: f64, why: &str) {
        if self.last_error.as_deref() != Some(why) {
            self.last = Some(now);
        }
        self.last_status = Some(500);
        self.last_error = Some(truncate(why));
        self.next = None;
        self.retry_due = None;
        self.retry_attempt = None;
    }
}

/// One keep-warm entry's state (`/_fn/schedules` `keep_warm[].state`, health `keep_warm`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[ts(export)]
pub struct KeepWarmState {
    /// Last successful call of the function (a ping, a scheduled run), epoch seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub warm_at: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub next: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub last: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub last_status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub last_error: Option<String>,
    #[serde(skip)]
    pub running: bool,
}

impl KeepWarmState {
    /// A ping is due when the function was never warm, has been idle past `idle_ttl`, or the
    /// ping period has passed (FastFN's rule). Marks the ping started and moves `next` on.
    pub fn tick(&mut self, kw: &super::spec::KeepWarm, now: f64) -> bool {
        if self.running {
            return false;
        }
        let next = *self.next.get_or_insert(now + kw.ping_every_seconds as f64);
        let due = match self.warm_at {
            None => true,
            Some(w) => now - w >= kw.idle_ttl_seconds as f64 || now >= next,
        };
        if due {
            self.next = Some(now + kw.ping_every_seconds as f64);
            self.running = true;
        }
        due
    }

    pub fn finish(&mut self, now: f64, status: u16, error: &str) {
        self.running = false;
        self.last = Some(now);
        self.last_status = Some(status);
        self.last_error = Some(truncate(error));
        if status != 0 && status < 500 {
            self.warm_at = Some(now);
        }
    }

    /// `warm` (used within `idle_ttl`), `stale` (longer ago) or `cold` (never).
    pub fn warm_state(&self, idle_ttl_seconds: u64, now: f64) -> &'static str {
        match self.warm_at {
            None => "cold",
            Some(w) if now - w > idle_ttl_seconds as f64 => "stale",
            Some(_) => "warm",
        }
    }
}

fn truncate(s: &str) -> String {
    if s.len() <= MAX_ERROR_LEN {
        return s.to_string();
    }
    let mut end = MAX_ERROR_LEN;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...<truncated>", &s[..end])
}

/// A persisted schedule: FastFN's fields plus `spec`, the timing fingerprint, so that a
/// schedule edited while the engine was stopped gets a fresh `next` (FastFN ignores the field).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PersistedSchedule {
    #[serde(flatten)]
    pub state: RunState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warm_at: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<String>,
}

/// `.fastfn/scheduler-state.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StateFile {
    #[serde(default = "one")]
    pub version: u32,
    #[serde(default)]
    pub saved_at: f64,
    #[serde(default)]
    pub schedules: BTreeMap<String, PersistedSchedule>,
    #[serde(default)]
    pub keep_warm: BTreeMap<String, KeepWarmState>,
}

fn one() -> u32 {
    1
}

impl StateFile {
    /// Parse a state file; a broken one is `Err` (the caller starts fresh and says so).
    pub fn parse(text: &str) -> Result<StateFile, String> {
        serde_json::from_str(text).map_err(|e| format!("invalid scheduler state json: {e}"))
    }

    /// Write atomically: a temporary file beside it, then a rename.
    pub fn write(&self, path: &std::path::Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = path.with_extension(format!("json.tmp.{}", std::process::id()));
        let text = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, path).inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::spec::KeepWarm;
    use super::*;
    use serde_json::json;

    fn every(n: u64, retry: serde_json::Value) -> Schedule {
        Schedule::parse(&json!({"enabled": true, "every_seconds": n, "retry": retry})).unwrap()
    }

    #[test]
    fn interval_runs_on_boundaries_and_never_overlaps() {
        let s = every(10, json!(false));
        let mut st = RunState::default();
        assert_eq!(st.tick(&s, &Zone::Utc, 101.0), Ok(None));
        assert_eq!(st.next, Some(110.0));
        assert_eq!(st.tick(&s, &Zone::Utc, 109.9), Ok(None));
        assert_eq!(st.tick(&s, &Zone::Utc, 110.0), Ok(Some(Due::Run { attempt: 1 })));
        assert_eq!(st.next, Some(120.0), "reserved before the run");
        // Still running at 125 (a slow run): no second run.
        assert_eq!(st.tick(&s, &Zone::Utc, 125.0), Ok(None));
        st.finish(126.0, 1, 200, "", &s.retry, 0.0);
        assert_eq!(
            (st.last, st.last_status, st.last_error.as_deref()),
            (Some(126.0), Some(200), Some(""))
        );
        // The run that was due during the slow one happens once, at once.
        assert_eq!(st.tick(&s, &Zone::Utc, 126.5), Ok(Some(Due::Run { attempt: 1 })));
        assert_eq!(st.next, Some(130.0));
    }

    /// The engine's loop in miniature, on tokio's paused clock: a tick every second, `now`
    /// read from that clock, each run taking `run_for` on its own task.
    async fn drive(every_secs: u64, run_for: f64, seconds: u32) -> Vec<f64> {
        use std::sync::{Arc, Mutex};
        use tokio::time::{interval, sleep, Duration, Instant};
        let s = Arc::new(every(every_secs, json!(false)));
        let state = Arc::new(Mutex::new(RunState::default()));
        let t0 = Instant::now();
        let now = move || 1_000.0 + t0.elapsed().as_secs_f64();
        let mut ticks = interval(Duration::from_secs(1));
        let mut starts = Vec::new();
        for _ in 0..=seconds {
            ticks.tick().await;
            let n = now();
            if let Ok(Some(Due::Run { attempt })) = state.lock().unwrap().tick(&s, &Zone::Utc, n) {
                starts.push(n);
                let (state, s) = (state.clone(), s.clone());
                tokio::spawn(async move {
                    sleep(Duration::from_secs_f64(run_for)).await;
                    state.lock().unwrap().finish(now(), attempt, 200, "", &s.retry, 0.0);
                });
            }
        }
        starts
    }

    #[tokio::test(start_paused = true)]
    async fn an_interval_schedule_runs_on_time() {
        assert_eq!(
            drive(5, 0.2, 30).await,
            [1005.0, 1010.0, 1015.0, 1020.0, 1025.0, 1030.0]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_run_delays_the_next_instead_of_overlapping() {
        // Runs of 6.5 s on a 5 s schedule: each next run starts at the first tick after the
        // previous one ended, never while it runs.
        assert_eq!(drive(5, 6.5, 30).await, [1005.0, 1012.0, 1019.0, 1026.0]);
    }

    #[test]
    fn a_missed_run_runs_once_at_start() {
        let s = every(60, json!(false));
        // Restored: `next` passed long ago (the engine was stopped for ten periods).
        let mut st = RunState {
            next: Some(600.0),
            ..RunState::default()
        };
        assert_eq!(st.tick(&s, &Zone::Utc, 1_230.0), Ok(Some(Due::Run { attempt: 1 })));
        assert_eq!(st.next, Some(1_260.0));
        st.finish(1_231.0, 1, 200, "", &s.retry, 0.0);
        assert_eq!(st.tick(&s, &Zone::Utc, 1_232.0), Ok(None));
    }

    #[test]
    fn retries_back_off_until_the_last_attempt() {
        let s = every(3600, json!({"max_attempts": 3, "base_delay_seconds": 1, "jitter": 0}));
        let mut st = RunState::default();
        st.tick(&s, &Zone::Utc, 0.0).unwrap();
        assert_eq!(st.tick(&s, &Zone::Utc, 3600.0), Ok(Some(Due::Run { attempt: 1 })));
        let delay = s.retry.delay(1, 0.5);
        st.finish(3600.0, 1, 503, "runtime down", &s.retry, delay);
        assert_eq!((st.retry_due, st.retry_attempt), (Some(3601.0), Some(2)));
        assert_eq!(st.last_error.as_deref(), Some("retrying 2/3 in 1.00s: runtime down"));
        assert_eq!(st.tick(&s, &Zone::Utc, 3600.5), Ok(None));
        assert_eq!(st.tick(&s, &Zone::Utc, 3601.0), Ok(Some(Due::Run { attempt: 2 })));
        assert_eq!(st.next, Some(7200.0), "a retry keeps the schedule");
        st.finish(3601.0, 2, 500, "", &s.retry, s.retry.delay(2, 0.5));
        assert_eq!(
            (st.retry_due, st.last_error.as_deref()),
            (Some(3603.0), Some("retrying 3/3 in 2.00s: 500"))
        );
        assert_eq!(st.tick(&s, &Zone::Utc, 3603.0), Ok(Some(Due::Run { attempt: 3 })));
        st.finish(3603.0, 3, 500, "", &s.retry, 4.0);
        assert_eq!(
            (st.retry_due, st.retry_attempt, st.last_status),
            (None, None, Some(500))
        );
        // A success clears a pending retry.
        let mut ok = RunState::default();
        ok.finish(1.0, 1, 200, "", &s.retry, 1.0);
        assert_eq!(ok.retry_due, None);
        // 4xx is not retried.
        ok.finish(1.0, 1, 404, "", &s.retry, 1.0);
        assert_eq!(ok.retry_due, None);
    }

    #[test]
    fn retries_pending_when_retry_is_switched_off_are_dropped() {
        let s = every(60, json!(false));
        let mut st = RunState {
            next: Some(120.0),
            retry_due: Some(50.0),
            retry_attempt: Some(2),
            ..RunState::default()
        };
        assert_eq!(st.tick(&s, &Zone::Utc, 60.0), Ok(None));
        assert_eq!((st.retry_due, st.retry_attempt), (None, None));
    }

    #[test]
    fn keep_warm_pings_when_cold_idle_or_due() {
        let kw = KeepWarm {
            enabled: true,
            min_warm: 1,
            ping_every_seconds: 10,
            idle_ttl_seconds: 30,
        };
        let mut st = KeepWarmState::default();
        assert!(st.tick(&kw, 0.0), "cold: ping at once");
        assert!(!st.tick(&kw, 1.0), "one ping at a time");
        st.finish(1.0, 200, "");
        assert_eq!(st.warm_state(30, 2.0), "warm");
        assert!(!st.tick(&kw, 5.0));
        assert!(st.tick(&kw, 10.0), "period passed");
        st.finish(10.0, 500, "boom");
        assert_eq!(st.warm_at, Some(1.0), "a failed ping does not warm");
        assert_eq!(st.warm_state(30, 40.0), "stale");
        assert_eq!(KeepWarmState::default().warm_state(30, 0.0), "cold");
    }

    #[test]
    fn state_file_round_trip_and_fastfn_shape() {
        let text = r#"{"version":1,"saved_at":5.5,"schedules":{"node/a@default":{"next":100,"last":90.5,
            "last_status":200,"last_error":"","retry_due":95,"retry_attempt":2,"warm_at":90.5}},
            "keep_warm":{"node/b@default":{"warm_at":1,"next":2,"last":1,"last_status":200,"last_error":""}}}"#;
        let f = StateFile::parse(text).unwrap();
        let a = &f.schedules["node/a@default"];
        assert_eq!(
            (a.state.next, a.state.retry_attempt, a.warm_at, a.spec.as_deref()),
            (Some(100.0), Some(2), Some(90.5), None)
        );
        assert_eq!(f.keep_warm["node/b@default"].warm_at, Some(1.0));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".fastfn/scheduler-state.json");
        f.write(&path).unwrap();
        let back = StateFile::parse(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(back, f);
        assert!(StateFile::parse("[").is_err());
        assert_eq!(truncate(&"é".repeat(1500)).len(), 2000 + "...<truncated>".len());
    }
}
