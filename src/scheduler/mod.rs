//! The scheduler: runs functions on their `schedule` (interval or cron, with retries) and
//! pings functions with `keep_warm`, through the same invoke pipeline as the gateway
//! (dependency readiness, admission, timings), so the pool and the warm state apply. Calls it
//! makes are marked in request records (`trigger: "schedule"` / `"keep_warm"`) and in the
//! event (`context.trigger`).
//!
//! - [`spec`] (pure): the config blocks, zones, next-run computation, retry backoff.
//! - [`state`] (pure): per-entry run state, tick decisions, the persisted file.
//! - here: the entries of the served map (re-read whenever a reload publishes a new map: a
//!   removed function's schedule stops, a changed one recomputes `next`), the tick loop
//!   (`FN_SCHEDULER_INTERVAL`), the calls, `/_fn/schedules`, "run now", and persistence
//!   (`FN_SCHEDULER_PERSIST_*`, `FN_SCHEDULER_STATE_PATH`).
//!
//! Nothing here is on the request path: the gateway never touches the scheduler.

pub mod spec;
pub mod state;

use crate::engine::{FunctionSlot, Served, Shared};
use crate::routing::{Methods, Target};
use crate::runtime::RuntimeKind;
use serde::Serialize;
use serde_json::{json, Value};
use spec::{KeepWarm, Schedule, Zone};
use state::{Due, KeepWarmState, PersistedSchedule, RunState, StateFile};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What marks a call the scheduler made, in request records and `context.trigger.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ts_rs::TS)]
#[ts(export)]
#[serde(rename_all = "snake_case")]
pub enum CallTrigger {
    Schedule,
    KeepWarm,
}

/// The `FN_SCHEDULER_*` switches.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// `FN_SCHEDULER_ENABLED` (default on).
    pub enabled: bool,
    /// `FN_SCHEDULER_INTERVAL`: seconds between ticks (default 1, at least 1).
    pub tick: Duration,
    /// `FN_SCHEDULER_PERSIST_ENABLED` (default on).
    pub persist: bool,
    /// `FN_SCHEDULER_PERSIST_INTERVAL`: seconds, clamped to 5..=3600 (default 15).
    pub persist_every: Duration,
    /// `FN_SCHEDULER_STATE_PATH`, else `<root>/.fastfn/scheduler-state.json`.
    pub state_path: PathBuf,
}

impl Options {
    pub fn from_lookup(functions_root: &std::path::Path, get: impl Fn(&str) -> Option<String>) -> Options {
        let flag = |k: &str| {
            !matches!(
                get(k).map(|v| v.trim().to_ascii_lowercase()).as_deref(),
                Some("0" | "false" | "no" | "off")
            )
        };
        let num = |k: &str| get(k).and_then(|v| v.trim().parse::<f64>().ok());
        Options {
            enabled: flag("FN_SCHEDULER_ENABLED"),
            tick: Duration::from_secs(num("FN_SCHEDULER_INTERVAL").unwrap_or(1.0).max(1.0) as u64),
            persist: flag("FN_SCHEDULER_PERSIST_ENABLED"),
            persist_every: Duration::from_secs(
                num("FN_SCHEDULER_PERSIST_INTERVAL").unwrap_or(15.0).clamp(5.0, 3600.0) as u64
            ),
            state_path: get("FN_SCHEDULER_STATE_PATH")
                .filter(|p| !p.trim().is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(|| functions_root.join(".fastfn").join("scheduler-state.json")),
        }
    }
}

/// Why "run now" was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RunNowError {
    #[error("no schedule with this key")]
    Unknown,
    #[error("a run of this schedule is in progress")]
    Running,
}

impl RunNowError {
    pub fn status(&self) -> u16 {
        match self {
            RunNowError::Unknown => 404,
            RunNowError::Running => 409,
        }
    }
}

/// One function the scheduler knows: its schedule and/or keep-warm, and their state.
struct Entry {
    runtime: RuntimeKind,
    name: String,
    version: Option<String>,
    target: Arc<Target>,
    slot: Arc<FunctionSlot>,
    /// The URL path the calls go to, and the methods the function takes.
    path: String,
    methods: Methods,
    schedule: Option<(Schedule, Zone)>,
    keep_warm: Option<KeepWarm>,
    run: RunState,
    warm: KeepWarmState,
}

#[derive(Default)]
struct Inner {
    /// The map the entries were built from (a new one means a reload happened).
    served: Option<Arc<Served>>,
    entries: BTreeMap<String, Entry>,
    /// Restored from disk, consumed by the first refresh.
    restored: StateFile,
    dirty: bool,
    stopped: bool,
}

pub struct Scheduler {
    pub options: Options,
    inner: Mutex<Inner>,
}

/// One call to make.
struct Job {
    key: String,
    trigger: CallTrigger,
    attempt: u32,
    target: Arc<Target>,
    slot: Arc<FunctionSlot>,
    path: String,
    methods: Methods,
    schedule: Option<Schedule>,
}

impl Scheduler {
    pub fn new(options: Options) -> Scheduler {
        Scheduler {
            options,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Read the state file (when persistence is on). A missing file is a fresh start; a broken
    /// one is logged and ignored.
    pub fn restore(&self) {
        if !self.options.persist {
            return;
        }
        let text = match std::fs::read_to_string(&self.options.state_path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(e) => {
                tracing::warn!("scheduler state not restored: {e}");
                return;
            }
        };
        match StateFile::parse(&text) {
            Ok(file) => self.lock().restored = file,
            Err(e) => tracing::warn!("scheduler state not restored: {e}"),
        }
    }

    /// Bring the entries in line with `served` (called on each tick; cheap when the map has
    /// not changed).
    fn refresh(inner: &mut Inner, served: &Arc<Served>) {
        if inner.served.as_ref().is_some_and(|s| Arc::ptr_eq(s, served)) {
            return;
        }
        // One entry per function key; its path: the shortest route without parameters.
        let mut found: BTreeMap<String, (Arc<Target>, Arc<FunctionSlot>, String, Methods)> = BTreeMap::new();
        for route in served.discovery.routes.routes() {
            let t = &route.target;
            if t.policy.schedule.as_ref().is_none_or(|s| !s.enabled) && t.policy.keep_warm.is_none() {
                continue;
            }
            let Some(slot) = served.slot(t) else { continue };
            let plain = !route.pattern.contains(':') && !route.pattern.contains('*');
            let e = found
                .entry(slot.key.clone())
                .or_insert_with(|| (t.clone(), slot.clone(), route.pattern.clone(), Methods::default()));
            e.3 = e.3 | route.methods;
            let current_plain = !e.2.contains(':') && !e.2.contains('*');
            if plain && (!current_plain || route.pattern.len() < e.2.len()) {
                e.2 = route.pattern.clone();
            }
        }
        let mut old = std::mem::take(&mut inner.entries);
        for (key, (target, slot, path, methods)) in found {
            let schedule = target.policy.schedule.clone().filter(|s| s.enabled).map(|s| {
                let zone = Zone::parse(s.timezone.as_deref()).unwrap_or(Zone::Local);
                (s, zone)
            });
            let keep_warm = target.policy.keep_warm;
            let mut entry = Entry {
                runtime: target.runtime,
                name: target.fn_name.clone(),
                version: target.version.clone(),
                target: target.clone(),
                slot,
                path: match path.replace("/*", "").replace('*', "") {
                    p if p.is_empty() => "/".to_string(),
                    p => p,
                },
                methods,
                schedule,
                keep_warm,
                run: RunState::default(),
                warm: KeepWarmState::default(),
            };
            let sig = entry.schedule.as_ref().map(|(s, _)| s.timing_signature());
            if let Some(prev) = old.remove(&key) {
                entry.run = prev.run;
                entry.warm = prev.warm;
                // A changed schedule computes its next run afresh.
                if prev.schedule.as_ref().map(|(s, _)| s.timing_signature()) != sig {
                    entry.run.next = None;
                    entry.run.retry_due = None;
                    entry.run.retry_attempt = None;
                }
            } else {
                if let Some(p) = inner.restored.schedules.remove(&key) {
                    entry.run = p.state;
                    entry.run.running = false;
                    if p.spec.is_some() && p.spec != sig {
                        entry.run.next = None;
                    }
                    entry.warm.warm_at = p.warm_at;
                }
                if let Some(w) = inner.restored.keep_warm.remove(&key) {
                    entry.warm = KeepWarmState { running: false, ..w };
                }
            }
            // Shown from the start, before the first tick.
            if let Some((s, zone)) = entry.schedule.as_ref().filter(|(s, _)| s.active()) {
                if entry.run.next.is_none() && entry.run.retry_due.is_none() {
                    if let Some(trigger) = s.trigger() {
                        entry.run.next = spec::next_run(&trigger, zone, crate::clock::epoch_secs()).ok();
                    }
                }
            }
            inner.entries.insert(key, entry);
        }
        // Restored state of functions the first map does not have is dropped (as FastFN
        // persists only what its snapshot lists): a deleted function's state does not linger.
        inner.restored = StateFile::default();
        // Removed functions leave the state file at its next write.
        inner.dirty |= !old.is_empty();
        inner.served = Some(served.clone());
    }

    /// One tick: refresh the entries, decide what is due, start those calls.
    pub fn tick(self: &Arc<Self>, shared: &Arc<Shared>, now: f64) {
        let jobs = {
            let mut inner = self.lock();
            if inner.stopped {
                return;
            }
            Self::refresh(&mut inner, &shared.served());
            let mut jobs = Vec::new();
            let mut changed = false;
            for (key, e) in inner.entries.iter_mut() {
                if let Some((s, zone)) = &e.schedule {
                    if let Some(why) = &s.invalid {
                        let before = e.run.clone();
                        e.run.mark_invalid(now, &format!("invalid schedule: {why}"));
                        changed |= before != e.run;
                    } else {
                        match e.run.tick(s, zone, now) {
                            Ok(Some(Due::Run { attempt })) => {
                                changed = true;
                                jobs.push(e.job(key, CallTrigger::Schedule, attempt));
                            }
                            Ok(None) => {}
                            Err(why) => {
                                e.run.mark_invalid(now, &format!("invalid schedule: {why}"));
                                changed = true;
                            }
                        }
                    }
                }
                if let Some(kw) = &e.keep_warm {
                    if e.warm.tick(kw, now) {
                        changed = true;
                        jobs.push(e.job(key, CallTrigger::KeepWarm, 1));
                    }
                }
            }
            inner.dirty |= changed;
            jobs
        };
        for job in jobs {
            let (this, shared) = (self.clone(), shared.clone());
            tokio::spawn(async move { this.run_job(&shared, job).await });
        }
    }

    /// "Run now" (`POST /_fn/schedules/run`): one run of a schedule, off its timetable (its
    /// `next` is kept), refused while a run is in flight. Waits for the call; returns its status
    /// and error.
    pub async fn run_now(self: &Arc<Self>, shared: &Arc<Shared>, key: &str) -> Result<(u16, String), RunNowError> {
        let job = {
            let mut inner = self.lock();
            Self::refresh(&mut inner, &shared.served());
            let e = inner
                .entries
                .get_mut(key)
                .filter(|e| e.schedule.is_some())
                .ok_or(RunNowError::Unknown)?;
            if e.run.running {
                return Err(RunNowError::Running);
            }
            e.run.running = true;
            e.job(key, CallTrigger::Schedule, 1)
        };
        Ok(self.run_job(shared, job).await)
    }

    async fn run_job(&self, shared: &Arc<Shared>, job: Job) -> (u16, String) {
        let (status, error) = call(shared, &job).await;
        let now = crate::clock::epoch_secs();
        let mut inner = self.lock();
        if let Some(e) = inner.entries.get_mut(&job.key) {
            match job.trigger {
                CallTrigger::Schedule => {
                    let retry = e
                        .schedule
                        .as_ref()
                        .map(|(s, _)| s.retry)
                        .unwrap_or(spec::RetryPolicy::OFF);
                    let delay = retry.delay(job.attempt, fastrand::f64());
                    e.run.finish(now, job.attempt, status, &error, &retry, delay);
                    // A scheduled call that answered warms the function too (as in FastFN).
                    if status != 0 && status < 500 {
                        e.warm.warm_at = Some(now);
                    }
                }
                CallTrigger::KeepWarm => e.warm.finish(now, status, &error),
            }
            inner.dirty = true;
        }
        (status, error)
    }

    /// `GET /_fn/schedules`.
    pub fn snapshot(&self, shared: &Shared) -> SchedulesSnapshot {
        let now = crate::clock::epoch_secs();
        let mut inner = self.lock();
        Self::refresh(&mut inner, &shared.served());
        let mut out = SchedulesSnapshot {
            ts: now,
            enabled: self.options.enabled,
            schedules: Vec::new(),
            keep_warm: Vec::new(),
        };
        for (key, e) in &inner.entries {
            if let Some((s, _)) = &e.schedule {
                out.schedules.push(ScheduleEntry {
                    runtime: e.runtime,
                    name: e.name.clone(),
                    version: e.version.clone(),
                    key: key.clone(),
                    route: e.path.clone(),
                    schedule: s.clone(),
                    running: e.run.running,
                    state: e.run.clone(),
                });
            }
            if let Some(kw) = &e.keep_warm {
                out.keep_warm.push(KeepWarmEntry {
                    runtime: e.runtime,
                    name: e.name.clone(),
                    version: e.version.clone(),
                    key: key.clone(),
                    keep_warm: *kw,
                    state: e.warm_view(kw, now),
                });
            }
        }
        out
    }

    /// Keep-warm of one function for `/_fn/health` (its state before the first tick is
    /// empty: `cold`).
    pub fn keep_warm_of(&self, key: &str, kw: &KeepWarm) -> KeepWarmView {
        let now = crate::clock::epoch_secs();
        let inner = self.lock();
        let state = inner.entries.get(key).map(|e| e.warm.clone()).unwrap_or_default();
        warm_view(kw, state, now)
    }

    /// The state to persist, if anything changed since the last write.
    fn take_dirty(&self) -> Option<StateFile> {
        let mut inner = self.lock();
        if !inner.dirty {
            return None;
        }
        inner.dirty = false;
        Some(Self::state_file(&inner))
    }

    fn state_file(inner: &Inner) -> StateFile {
        let mut file = StateFile {
            version: 1,
            saved_at: crate::clock::epoch_secs(),
            ..StateFile::default()
        };
        for (key, e) in &inner.entries {
            if let Some((s, _)) = &e.schedule {
                file.schedules.insert(
                    key.clone(),
                    PersistedSchedule {
                        state: RunState {
                            running: false,
                            ..e.run.clone()
                        },
                        warm_at: e.warm.warm_at,
                        spec: Some(s.timing_signature()),
                    },
                );
            }
            if e.keep_warm.is_some() {
                file.keep_warm.insert(
                    key.clone(),
                    KeepWarmState {
                        running: false,
                        ..e.warm.clone()
                    },
                );
            }
        }
        file
    }

    fn write(&self, file: &StateFile) {
        if let Err(e) = file.write(&self.options.state_path) {
            tracing::warn!(
                "cannot write the scheduler state to {}: {e}",
                self.options.state_path.display()
            );
        }
    }

    /// Stop starting calls and write the state (engine stop).
    pub fn stop(&self) {
        let file = {
            let mut inner = self.lock();
            inner.stopped = true;
            (self.options.persist && (inner.dirty || !inner.entries.is_empty())).then(|| Self::state_file(&inner))
        };
        if let Some(file) = file {
            self.write(&file);
        }
    }
}

impl Entry {
    fn job(&self, key: &str, trigger: CallTrigger, attempt: u32) -> Job {
        Job {
            key: key.to_string(),
            trigger,
            attempt,
            target: self.target.clone(),
            slot: self.slot.clone(),
            path: self.path.clone(),
            methods: self.methods,
            schedule: self.schedule.as_ref().map(|(s, _)| s.clone()),
        }
    }

    fn warm_view(&self, kw: &KeepWarm, now: f64) -> KeepWarmView {
        warm_view(kw, self.warm.clone(), now)
    }
}

fn warm_view(kw: &KeepWarm, state: KeepWarmState, now: f64) -> KeepWarmView {
    KeepWarmView {
        enabled: kw.enabled,
        ping_every_seconds: kw.ping_every_seconds,
        idle_ttl_seconds: kw.idle_ttl_seconds,
        warm_state: state.warm_state(kw.idle_ttl_seconds, now),
        state,
    }
}

/// `POST /_fn/schedules/run?key=<runtime>/<fn>@<version>` (behind the admin guard, CSRF
/// header included): run a schedule now and answer its outcome
/// (`{key, status, error, ok}`); 404 for an unknown key, 409 while it runs.
pub(crate) async fn run_now_endpoint(
    shared: &Arc<Shared>,
    parts: &hyper::http::request::Parts,
) -> hyper::Response<crate::rescue::Body> {
    let key = parts
        .uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == "key")
        .map(|(_, v)| percent_encoding::percent_decode_str(v).decode_utf8_lossy().into_owned())
        .unwrap_or_default();
    let (status, body) = match shared.scheduler.run_now(shared, &key).await {
        Ok((status, error)) => (
            200,
            json!({"key": key, "status": status, "error": error, "ok": status != 0 && status < 400}),
        ),
        Err(e) => (e.status(), json!({"error": e.to_string(), "key": key})),
    };
    crate::rescue::json_response(
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::OK),
        &body,
    )
}

/// The tick loop and the persistence loop, until the engine stops. `None` when
/// `FN_SCHEDULER_ENABLED=0`.
pub(crate) fn spawn(shared: &Arc<Shared>) -> Option<tokio::task::JoinHandle<()>> {
    let scheduler = shared.scheduler.clone();
    if !scheduler.options.enabled {
        return None;
    }
    let shared = shared.clone();
    Some(tokio::spawn(async move {
        let mut ticks = tokio::time::interval(scheduler.options.tick);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut saved = tokio::time::Instant::now();
        loop {
            ticks.tick().await;
            scheduler.tick(&shared, crate::clock::epoch_secs());
            if scheduler.options.persist && saved.elapsed() >= scheduler.options.persist_every {
                saved = tokio::time::Instant::now();
                if let Some(file) = scheduler.take_dirty() {
                    let s = scheduler.clone();
                    let _ = tokio::task::spawn_blocking(move || s.write(&file)).await;
                }
            }
        }
    }))
}

/// Make one call through the invoke pipeline; `(status, error)`, status 0 when nothing
/// answered. Records the handler's output and, for live listeners, a request record marked
/// with its trigger.
async fn call(shared: &Arc<Shared>, job: &Job) -> (u16, String) {
    let started = tokio::time::Instant::now();
    let t = &job.target;
    let (method_name, query, mut headers, body, user, trigger_ctx) = match (&job.schedule, job.trigger) {
        (Some(s), CallTrigger::Schedule) => {
            let mut ctx = json!({"type": "schedule", "attempt": job.attempt});
            if let Some(n) = s.every_seconds {
                ctx["every_seconds"] = json!(n);
            }
            if let Some(c) = &s.cron {
                ctx["cron"] = json!(c);
            }
            if let Some(tz) = s.timezone.as_deref().filter(|tz| !tz.eq_ignore_ascii_case("local")) {
                ctx["timezone"] = json!(tz);
            }
            if s.retry.enabled {
                ctx["max_attempts"] = json!(s.retry.max_attempts);
            }
            (
                s.method.clone(),
                encode_query(&s.query),
                headers_of(&s.headers),
                s.body.clone().unwrap_or_default(),
                s.context.clone().map(Value::Object),
                ctx,
            )
        }
        _ => {
            // FastFN's ping: GET when the function takes it, else its first method.
            let method = if job.methods.is_empty() || job.methods.contains(Methods::GET) {
                "GET"
            } else {
                Methods::ALL_NAMES
                    .iter()
                    .find(|(_, m)| job.methods.contains(*m))
                    .map(|(n, _)| *n)
                    .unwrap_or("GET")
            };
            let mut h = hyper::HeaderMap::new();
            h.insert("x-fastfn-trigger", hyper::header::HeaderValue::from_static("keep_warm"));
            (
                method.to_string(),
                Some("__fastfn_keep_warm=1".to_string()),
                h,
                String::new(),
                None,
                json!({"type": "keep_warm"}),
            )
        }
    };
    if !headers.contains_key(hyper::header::USER_AGENT) {
        headers.insert(
            hyper::header::USER_AGENT,
            hyper::header::HeaderValue::from_static("fastfn-scheduler"),
        );
    }
    let method: hyper::Method = method_name.parse().unwrap_or(hyper::Method::GET);
    let key = shared.next_request_key();
    let request_id = key.to_string();
    // The engine's lines written during the call carry its id and are kept with its record.
    let seq = shared.inspector.next_seq();
    let mut logs = Vec::new();
    let was_warm = job.slot.is_warm();
    let wanted = Methods::parse(&method_name).unwrap_or_default();
    // The record's reason and why, as the gateway gives them.
    let verdict: (Option<crate::inspect::Reason>, Option<String>);
    let (status, error, timings, socket_index, queued) = if !job.methods.is_empty() && !job.methods.contains(wanted) {
        verdict = (
            Some(crate::inspect::Reason::MethodMismatch),
            Some(format!(
                "the schedule's method {method_name} is not one the function takes"
            )),
        );
        (
            405,
            "method not allowed by function policy".to_string(),
            Default::default(),
            None,
            false,
        )
    } else if body.len() as u64 > t.policy.max_body_bytes {
        verdict = (
            Some(crate::inspect::Reason::BodyTooLarge),
            Some(format!(
                "the schedule's body ({} bytes) is larger than the function's max_body_bytes ({})",
                body.len(),
                t.policy.max_body_bytes
            )),
        );
        (413, "payload too large".to_string(), Default::default(), None, false)
    } else {
        let input = crate::invoke::CallInput {
            method: &method,
            path: &job.path,
            query: query.as_deref(),
            headers: &headers,
            body: body.as_bytes(),
            client_ip: "127.0.0.1",
            params: &[],
            user: user.as_ref(),
            trigger: Some(&trigger_ctx),
        };
        let (outcome, logged) = crate::inspect::logs::scoped(seq, async {
            crate::inspect::logs::set_key(key);
            crate::invoke::run(shared, t, &job.slot, &input, &request_id).await
        })
        .await;
        logs = logged.lines;
        verdict = crate::inspect::verdict(shared, t, &outcome);
        let (status, error) = match outcome.result {
            Ok(reply) => {
                shared
                    .logs
                    .push_call_output(t, reply.stdout.as_deref(), reply.stderr.as_deref());
                let error = if reply.status >= 400 {
                    error_excerpt(reply.status, &reply.body)
                } else {
                    String::new()
                };
                (reply.status, error)
            }
            Err(failure) => (failure.status().as_u16(), failure.to_string()),
        };
        (status, error, outcome.timings, outcome.socket_index, outcome.queued)
    };
    if status != 0 && status < 500 {
        job.slot.warm_up();
    }
    if status >= 400 {
        shared.logs.error(&format!(
            "fn {} non-2xx id={request_id} fn={} status={status} error={error}",
            trigger_name(job.trigger),
            job.slot.key
        ));
    }
    // Into the request log like any call, marked with its trigger (as jobs are).
    let note = crate::inspect::Note {
        kind: crate::inspect::Kind::Function,
        target: Some(t.clone()),
        request_id: Some(request_id),
        socket_index: socket_index.map(|i| i + 1),
        queued,
        cold: !was_warm,
        stages: timings.stages(),
        trigger: Some(trigger_name(job.trigger)),
        logs,
        reason: verdict.0,
        why: verdict.1,
        ..Default::default()
    };
    let uri = match query.as_deref() {
        Some(q) => format!("{}?{q}", job.path),
        None => job.path.clone(),
    };
    let entry = crate::inspect::Entry {
        seq,
        ts: crate::clock::epoch_millis(),
        method,
        uri: uri.parse().unwrap_or_else(|_| hyper::Uri::from_static("/")),
        status,
        latency_us: started.elapsed().as_micros() as u64,
        note,
        captured: None,
    };
    shared.inspector.push(entry);
    (status, error)
}

fn trigger_name(t: CallTrigger) -> &'static str {
    match t {
        CallTrigger::Schedule => "schedule",
        CallTrigger::KeepWarm => "keep_warm",
    }
}

/// `HTTP 500: <first 200 characters of the body>`: enough to see what failed.
fn error_excerpt(status: u16, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    let cut: String = text.chars().take(200).collect();
    if cut.is_empty() {
        format!("HTTP {status}")
    } else if cut.len() < text.len() {
        format!("HTTP {status}: {cut}…")
    } else {
        format!("HTTP {status}: {cut}")
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn encode_query(q: &serde_json::Map<String, Value>) -> Option<String> {
    if q.is_empty() {
        return None;
    }
    let enc = |s: &str| percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string();
    Some(
        q.iter()
            .map(|(k, v)| format!("{}={}", enc(k), enc(&scalar(v))))
            .collect::<Vec<_>>()
            .join("&"),
    )
}

fn headers_of(h: &serde_json::Map<String, Value>) -> hyper::HeaderMap {
    let mut out = hyper::HeaderMap::new();
    for (k, v) in h {
        if let (Ok(name), Ok(value)) = (
            hyper::header::HeaderName::from_bytes(k.to_ascii_lowercase().as_bytes()),
            hyper::header::HeaderValue::from_str(&scalar(v)),
        ) {
            out.append(name, value);
        }
    }
    out
}

/// `GET /_fn/schedules` (FastFN's shape, plus `enabled`, each entry's `route` and
/// `running`).
#[derive(Debug, Serialize, ts_rs::TS)]
#[ts(export)]
pub struct SchedulesSnapshot {
    pub ts: f64,
    /// `FN_SCHEDULER_ENABLED`: when off, nothing runs (the entries are still listed).
    pub enabled: bool,
    pub schedules: Vec<ScheduleEntry>,
    pub keep_warm: Vec<KeepWarmEntry>,
}

#[derive(Debug, Serialize, ts_rs::TS)]
#[ts(export)]
pub struct ScheduleEntry {
    pub runtime: RuntimeKind,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub version: Option<String>,
    pub key: String,
    /// The path the scheduled request is sent to.
    pub route: String,
    #[ts(
        type = "{ enabled: boolean, every_seconds?: number, cron?: string, timezone?: string, method: string, query: Record<string, unknown>, headers: Record<string, unknown>, body?: string, context?: Record<string, unknown>, retry: { enabled: boolean, max_attempts: number, base_delay_seconds: number, max_delay_seconds: number, jitter: number } }"
    )]
    pub schedule: Schedule,
    /// A run is in flight.
    pub running: bool,
    pub state: RunState,
}

#[derive(Debug, Serialize, ts_rs::TS)]
#[ts(export)]
pub struct KeepWarmEntry {
    pub runtime: RuntimeKind,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub version: Option<String>,
    pub key: String,
    pub keep_warm: KeepWarm,
    pub state: KeepWarmView,
}

/// A function's keep-warm as shown in `/_fn/schedules` and `/_fn/health`.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
#[ts(export)]
pub struct KeepWarmView {
    pub enabled: bool,
    #[ts(type = "number")]
    pub ping_every_seconds: u64,
    #[ts(type = "number")]
    pub idle_ttl_seconds: u64,
    /// `warm`, `stale` or `cold`.
    pub warm_state: &'static str,
    #[serde(flatten)]
    #[ts(flatten)]
    pub state: KeepWarmState,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_from_env() {
        let root = std::path::Path::new("/srv/fns");
        let d = Options::from_lookup(root, |_| None);
        assert_eq!(
            d,
            Options {
                enabled: true,
                tick: Duration::from_secs(1),
                persist: true,
                persist_every: Duration::from_secs(15),
                state_path: root.join(".fastfn/scheduler-state.json"),
            }
        );
        let vars: BTreeMap<&str, &str> = [
            ("FN_SCHEDULER_ENABLED", "off"),
            ("FN_SCHEDULER_INTERVAL", "0"),
            ("FN_SCHEDULER_PERSIST_ENABLED", "0"),
            ("FN_SCHEDULER_PERSIST_INTERVAL", "1"),
            ("FN_SCHEDULER_STATE_PATH", "/tmp/s.json"),
        ]
        .into();
        let o = Options::from_lookup(root, |k| vars.get(k).map(|v| v.to_string()));
        assert_eq!(
            (o.enabled, o.tick, o.persist, o.persist_every, o.state_path),
            (
                false,
                Duration::from_secs(1),
                false,
                Duration::from_secs(5),
                PathBuf::from("/tmp/s.json")
            )
        );
    }

    #[test]
    fn error_excerpts_are_short() {
        assert_eq!(error_excerpt(500, b""), "HTTP 500");
        assert_eq!(error_excerpt(503, b" down \n"), "HTTP 503: down");
        assert!(error_excerpt(500, "x".repeat(500).as_bytes()).ends_with('…'));
    }

    #[test]
    fn query_and_headers_from_config() {
        let q = serde_json::json!({"a b": "c&d", "n": 1});
        assert_eq!(encode_query(q.as_object().unwrap()).as_deref(), Some("a%20b=c%26d&n=1"));
        let h = serde_json::json!({"X-Token": "t", "bad header": "x"});
        let h = headers_of(h.as_object().unwrap());
        assert_eq!((h.len(), h["x-token"].to_str().unwrap()), (1, "t"));
    }
}
