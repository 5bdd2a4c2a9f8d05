//! Async jobs: `POST /_fn/jobs` queues a call to a function, a worker runs it later through
//! the same invoke pipeline as the gateway (readiness, admission, timings, request records),
//! and `GET /_fn/jobs/<id>/result` answers what the handler replied. FastFN's
//! `core/jobs.lua`, `http/jobs.lua` and `http/job_item.lua` are the reference: the same JSON
//! shapes, statuses (`queued`, `running`, `done`, `failed`, `canceled`), error bodies and
//! `FN_JOBS_*` limits.
//!
//! Invariants:
//! - A job is on disk before it is acknowledged: `<id>.spec.json` (what to call, the
//!   original's file) and `<id>.meta.json` (its state; the original keeps it in shared memory
//!   only) under the jobs folder, written atomically (temp file + rename).
//! - A job survives an engine restart: at start the folder is read back, and a job that was
//!   `queued`, or `running` when the engine stopped (its result was never written), is queued
//!   again in creation order. A run that fails while the engine stops records nothing (the
//!   failure is the stop's, not the job's).
//! - At most `FN_JOBS_MAX_CONCURRENCY` jobs run at once; a job refused by its function's worker
//!   pool (full, queue timeout, dependencies installing) has not run: it goes back to the queue
//!   after `retry_delay_ms` without using an attempt.
//! - The book of recent jobs (what `GET /_fn/jobs` lists) keeps the newest [`KEEP_RECENT`];
//!   queued and running jobs are never dropped from it.

use crate::engine::Shared;
use crate::rescue::{json_response, Body, Failure};
use crate::routing::{Methods, Route};
use crate::runtime::RuntimeKind;
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::http::request::Parts;
use hyper::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// `FN_JOBS_POLL_INTERVAL` default (seconds): how often delayed retries are looked at. New
/// jobs do not wait for it: enqueueing wakes the worker.
const DEFAULT_POLL_INTERVAL_SECS: f64 = 1.0;
/// `FN_JOBS_MAX_CONCURRENCY` default.
const DEFAULT_MAX_CONCURRENCY: usize = 2;
/// `FN_JOBS_MAX_RESULT_BYTES` default: the stored result, JSON included.
const DEFAULT_MAX_RESULT_BYTES: usize = 256 * 1024;
const DEFAULT_MAX_ATTEMPTS: u32 = 1;
const DEFAULT_RETRY_DELAY_MS: u64 = 1000;
/// Jobs `GET /_fn/jobs` can list (the original's ring of 250 recent ids).
pub const KEEP_RECENT: usize = 250;
/// `GET /_fn/jobs?limit=`: default and bounds, as the original.
const LIST_DEFAULT: usize = 50;
const LIST_MAX: usize = 200;
/// Largest `POST /_fn/jobs` body read.
const ENQUEUE_MAX_BYTES: usize = 8 * 1024 * 1024;
/// Largest spec or result file read back (the original's 2 MiB).
const MAX_FILE_BYTES: u64 = 2 * 1024 * 1024;

/// Why a jobs request failed; [`JobError::status`] is its HTTP status (mapped once, in
/// [`crate::rescue`]). Messages are the original's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    #[error("jobs disabled")]
    Disabled,
    #[error("{0}")]
    Invalid(String),
    #[error("unknown function or version")]
    UnknownFunction,
    #[error("no mapped public route for target")]
    NoRoute,
    #[error("job not found")]
    NotFound,
    #[error("job is not queued")]
    NotQueued,
    #[error("failed to write job: {0}")]
    Storage(String),
}

impl JobError {
    pub fn status(&self) -> u16 {
        match self {
            JobError::Disabled | JobError::UnknownFunction | JobError::NoRoute | JobError::NotFound => 404,
            JobError::Invalid(_) => 400,
            JobError::NotQueued => 409,
            JobError::Storage(_) => 500,
        }
    }
}

/// The `FN_JOBS_*` switches. Values that are not positive numbers fall back to the default,
/// as the original reads them.
#[derive(Debug, Clone, PartialEq)]
pub struct JobSettings {
    /// `FN_JOBS_ENABLED` (default on).
    pub enabled: bool,
    /// `FN_JOBS_DIR`; default `<functions root>/.fastfn/jobs`.
    pub dir: Option<PathBuf>,
    /// `FN_JOBS_POLL_INTERVAL` (seconds).
    pub poll_interval: Duration,
    /// `FN_JOBS_MAX_CONCURRENCY`: jobs running at once.
    pub max_concurrency: usize,
    /// `FN_JOBS_MAX_RESULT_BYTES`: a stored result's size bound.
    pub max_result_bytes: usize,
}

impl Default for JobSettings {
    fn default() -> Self {
        JobSettings {
            enabled: true,
            dir: None,
            poll_interval: Duration::from_secs_f64(DEFAULT_POLL_INTERVAL_SECS),
            max_concurrency: DEFAULT_MAX_CONCURRENCY,
            max_result_bytes: DEFAULT_MAX_RESULT_BYTES,
        }
    }
}

impl JobSettings {
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> JobSettings {
        let d = JobSettings::default();
        let num = |name: &str| {
            env(name)
                .and_then(|v| v.trim().parse::<f64>().ok())
                .filter(|n| n.is_finite() && *n > 0.0)
        };
        let enabled = !env("FN_JOBS_ENABLED")
            .is_some_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "0" | "false" | "off" | "no"));
        JobSettings {
            enabled,
            dir: env("FN_JOBS_DIR").filter(|s| !s.trim().is_empty()).map(PathBuf::from),
            poll_interval: num("FN_JOBS_POLL_INTERVAL")
                .map(Duration::from_secs_f64)
                .unwrap_or(d.poll_interval),
            max_concurrency: num("FN_JOBS_MAX_CONCURRENCY")
                .map(|n| (n.floor() as usize).max(1))
                .unwrap_or(d.max_concurrency),
            max_result_bytes: num("FN_JOBS_MAX_RESULT_BYTES")
                .map(|n| (n.floor() as usize).max(1))
                .unwrap_or(d.max_result_bytes),
        }
    }
}

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[ts(export)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Queued,
    Running,
    Done,
    Failed,
    Canceled,
}

/// A job as `/_fn/jobs` shows it (the original's `meta`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[ts(export)]
pub struct Job {
    pub id: String,
    pub status: JobStatus,
    #[ts(type = "number")]
    pub created_at_ms: u64,
    #[ts(type = "number")]
    pub updated_at_ms: u64,
    pub runtime: RuntimeKind,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub version: Option<String>,
    pub method: String,
    /// The concrete path the handler sees as `event.path`.
    pub route: String,
    pub route_template: String,
    /// Runs started so far.
    pub attempt: u32,
    pub max_attempts: u32,
    #[ts(type = "number")]
    pub retry_delay_ms: u64,
    /// The stored result's status, once there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub result_status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub last_error: Option<String>,
    /// A retry waits until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional, type = "number")]
    pub next_run_at_ms: Option<u64>,
}

/// What to call (`<id>.spec.json`, the original's fields).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSpec {
    pub runtime: RuntimeKind,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    pub method: String,
    pub route: String,
    pub route_template: String,
    #[serde(default)]
    pub path_params: BTreeMap<String, String>,
    /// Query string without `?`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub body: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Value>,
}

/// What the handler replied (`<id>.result.json`, `GET /_fn/jobs/<id>/result`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[ts(export)]
pub struct JobResult {
    pub id: String,
    pub status: u16,
    pub headers: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub body: Option<String>,
    pub is_base64: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub body_base64: Option<String>,
    #[ts(type = "number")]
    pub latency_ms: u64,
    /// The body was cut to keep the result within `FN_JOBS_MAX_RESULT_BYTES`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    #[ts(optional, as = "Option<bool>")]
    pub truncated: bool,
}

impl JobResult {
    fn error(id: &str, status: u16, message: &str, latency_ms: u64) -> JobResult {
        JobResult {
            id: id.to_string(),
            status,
            headers: BTreeMap::from([("Content-Type".to_string(), "application/json".to_string())]),
            body: Some(json!({ "error": message }).to_string()),
            is_base64: false,
            body_base64: None,
            latency_ms,
            truncated: false,
        }
    }

    /// The stored bytes, within `max` when cutting the body can achieve it (the original cuts
    /// the encoded JSON, which leaves a file that no longer parses; this keeps it valid).
    fn encode(mut self, max: usize) -> Vec<u8> {
        let whole = serde_json::to_vec(&self).unwrap_or_default();
        if whole.len() <= max {
            return whole;
        }
        self.truncated = true;
        let over = whole.len() - max + 32;
        if let Some(b) = self.body.as_mut() {
            let mut keep = b.len().saturating_sub(over);
            while keep > 0 && !b.is_char_boundary(keep) {
                keep -= 1;
            }
            b.truncate(keep);
        }
        if let Some(b) = self.body_base64.as_mut() {
            // Whole 4-character groups: what is left still decodes.
            let keep = b.len().saturating_sub(over) / 4 * 4;
            b.truncate(keep);
        }
        serde_json::to_vec(&self).unwrap_or_default()
    }
}

/// The in-memory book: every known job, the recent order and the run queue.
#[derive(Debug, Default)]
struct Book {
    jobs: HashMap<String, Job>,
    /// Ids, oldest first (what `GET /_fn/jobs` lists, newest first).
    recent: VecDeque<String>,
    /// Queued ids, in the order they run.
    queue: VecDeque<String>,
    active: usize,
}

impl Book {
    fn add(&mut self, job: Job) {
        if job.status == JobStatus::Queued {
            self.queue.push_back(job.id.clone());
        }
        self.recent.push_back(job.id.clone());
        self.jobs.insert(job.id.clone(), job);
        // Forget the oldest finished jobs beyond the bound (their files stay on disk).
        let mut i = 0;
        while self.recent.len() > KEEP_RECENT && i < self.recent.len() {
            let id = &self.recent[i];
            let live = self
                .jobs
                .get(id)
                .is_some_and(|j| matches!(j.status, JobStatus::Queued | JobStatus::Running));
            if live {
                i += 1;
            } else if let Some(id) = self.recent.remove(i) {
                self.jobs.remove(&id);
            }
        }
    }

    /// The next job that may start now, marked running (attempt counted), or none when all
    /// slots are taken or nothing is due. Queued ids whose job left the queued state
    /// (canceled) are dropped on the way.
    fn next_due(&mut self, now_ms: u64, max_active: usize) -> Option<Job> {
        if self.active >= max_active {
            return None;
        }
        for _ in 0..self.queue.len() {
            let id = self.queue.pop_front()?;
            let Some(job) = self.jobs.get_mut(&id) else { continue };
            if job.status != JobStatus::Queued {
                continue;
            }
            if job.next_run_at_ms.is_some_and(|at| at > now_ms) {
                self.queue.push_back(id);
                continue;
            }
            job.status = JobStatus::Running;
            job.attempt += 1;
            job.next_run_at_ms = None;
            job.updated_at_ms = now_ms;
            self.active += 1;
            return Some(job.clone());
        }
        None
    }

    /// A run ended; returns the job as it now stands.
    fn finish(&mut self, id: &str, end: RunEnd, now_ms: u64) -> Option<Job> {
        self.active = self.active.saturating_sub(1);
        let job = self.jobs.get_mut(id)?;
        job.updated_at_ms = now_ms;
        let requeue = |job: &mut Job| {
            job.status = JobStatus::Queued;
            job.next_run_at_ms = Some(now_ms + job.retry_delay_ms);
        };
        match end {
            RunEnd::NotAdmitted(reason) => {
                // Nothing ran: the attempt is given back.
                job.attempt = job.attempt.saturating_sub(1);
                job.last_error = Some(reason);
                requeue(job);
            }
            RunEnd::Replied { status, error } if (200..500).contains(&status) => {
                let _ = error;
                job.status = JobStatus::Done;
                job.result_status = Some(status);
            }
            RunEnd::Replied { status, error } => {
                job.result_status = Some(status);
                job.last_error = Some(error.unwrap_or_else(|| format!("HTTP {status}")));
                if job.attempt < job.max_attempts {
                    requeue(job);
                } else {
                    job.status = JobStatus::Failed;
                }
            }
        }
        if job.status == JobStatus::Queued {
            self.queue.push_back(id.to_string());
        }
        self.jobs.get(id).cloned()
    }

    fn cancel(&mut self, id: &str, now_ms: u64) -> Result<Job, JobError> {
        let job = self.jobs.get_mut(id).ok_or(JobError::NotFound)?;
        if job.status != JobStatus::Queued {
            return Err(JobError::NotQueued);
        }
        job.status = JobStatus::Canceled;
        job.updated_at_ms = now_ms;
        Ok(job.clone())
    }

    fn list(&self, limit: usize) -> Vec<Job> {
        self.recent
            .iter()
            .rev()
            .filter_map(|id| self.jobs.get(id).cloned())
            .take(limit)
            .collect()
    }
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum RunEnd {
    /// Refused before the handler ran (pool full, queue timeout, dependencies installing).
    NotAdmitted(String),
    /// A result was stored with this status (`error`: the failure's message, if any).
    Replied { status: u16, error: Option<String> },
}

/// The jobs of one engine: settings, folder, book, and the worker's wake-up.
pub struct Jobs {
    settings: JobSettings,
    dir: PathBuf,
    book: Mutex<Book>,
    wake: Notify,
    seq: AtomicU64,
}

impl Jobs {
    /// Read the jobs folder back (see the module's invariants). A folder that cannot be read
    /// is an empty book: jobs are written there when they arrive.
    pub fn load(settings: JobSettings, functions_root: &Path) -> Jobs {
        let dir = settings
            .dir
            .clone()
            .unwrap_or_else(|| functions_root.join(".fastfn").join("jobs"));
        let mut found: Vec<Job> = Vec::new();
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for entry in entries.flatten() {
                let name = entry.file_name();
                let Some(name) = name.to_str() else { continue };
                if !name.ends_with(".meta.json") {
                    continue;
                }
                let Some(mut job) = read_json::<Job>(&entry.path()) else {
                    continue;
                };
                if job.status == JobStatus::Running {
                    // The engine stopped mid-run and no result was kept: run it again.
                    job.status = JobStatus::Queued;
                }
                found.push(job);
            }
        }
        found.sort_by(|a, b| (a.created_at_ms, &a.id).cmp(&(b.created_at_ms, &b.id)));
        let mut book = Book::default();
        for job in found {
            book.add(job);
        }
        Jobs {
            settings,
            dir,
            book: Mutex::new(book),
            wake: Notify::new(),
            seq: AtomicU64::new(0),
        }
    }

    pub fn enabled(&self) -> bool {
        self.settings.enabled
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn book(&self) -> std::sync::MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn list(&self, limit: usize) -> Vec<Job> {
        self.book().list(limit)
    }

    pub fn get(&self, id: &str) -> Option<Job> {
        self.book().jobs.get(id).cloned()
    }

    fn path(&self, id: &str, kind: &str) -> PathBuf {
        self.dir.join(format!("{id}.{kind}.json"))
    }

    fn new_id(&self) -> String {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let salt = (nanos ^ std::process::id().wrapping_mul(2_654_435_761)) % 1_000_000;
        format!("job-{}-{seq}-{salt:06}", crate::clock::epoch_millis())
    }

    async fn write(&self, id: &str, kind: &str, bytes: Vec<u8>) -> Result<(), JobError> {
        let path = self.path(id, kind);
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || write_atomic(&dir, &path, &bytes))
            .await
            .map_err(|e| JobError::Storage(e.to_string()))?
            .map_err(|e| JobError::Storage(e.kind().to_string()))
    }

    async fn save(&self, job: &Job) {
        if let Ok(bytes) = serde_json::to_vec(job) {
            if let Err(e) = self.write(&job.id, "meta", bytes).await {
                tracing::warn!(job = %job.id, "job state not saved: {e}");
            }
        }
    }

    /// Store a new job and wake the worker.
    async fn submit(&self, job: Job, spec: &JobSpec) -> Result<Job, JobError> {
        let spec_bytes = serde_json::to_vec(spec).map_err(|e| JobError::Storage(e.to_string()))?;
        self.write(&job.id, "spec", spec_bytes).await?;
        let meta = serde_json::to_vec(&job).map_err(|e| JobError::Storage(e.to_string()))?;
        self.write(&job.id, "meta", meta).await?;
        self.book().add(job.clone());
        self.wake.notify_one();
        Ok(job)
    }

    async fn cancel(&self, id: &str) -> Result<Job, JobError> {
        let job = self.book().cancel(id, crate::clock::epoch_millis())?;
        self.save(&job).await;
        Ok(job)
    }

    /// The stored result, if the job has one.
    pub async fn result(&self, id: &str) -> Option<Value> {
        let path = self.path(id, "result");
        tokio::task::spawn_blocking(move || read_json::<Value>(&path))
            .await
            .ok()
            .flatten()
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Option<T> {
    use std::io::Read;
    let file = std::fs::File::open(path).ok()?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES).read_to_end(&mut bytes).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Write `bytes` to `path` whole or not at all (a reader never sees half a file).
fn write_atomic(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// The worker: starts due jobs while slots are free, then sleeps until a job arrives or
/// finishes, the poll interval passes (delayed retries), or the engine stops.
pub(crate) async fn work(shared: Arc<Shared>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let jobs = shared.jobs.clone();
    loop {
        if *shutdown.borrow() {
            return;
        }
        let now = crate::clock::epoch_millis();
        loop {
            let next = jobs.book().next_due(now, jobs.settings.max_concurrency);
            let Some(job) = next else { break };
            jobs.save(&job).await;
            tokio::spawn(run_one(shared.clone(), job, shutdown.clone()));
        }
        tokio::select! {
            _ = jobs.wake.notified() => {}
            _ = tokio::time::sleep(jobs.settings.poll_interval) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// One run of a job: the call, its result file, the job's new state.
async fn run_one(shared: Arc<Shared>, job: Job, shutdown: tokio::sync::watch::Receiver<bool>) {
    let jobs = shared.jobs.clone();
    let started = tokio::time::Instant::now();
    let spec = {
        let path = jobs.path(&job.id, "spec");
        tokio::task::spawn_blocking(move || read_json::<JobSpec>(&path))
            .await
            .ok()
            .flatten()
    };
    let (result, end) = match spec {
        Some(spec) => call(&shared, &job, &spec).await,
        None => {
            let message = "job spec missing";
            (
                Some(JobResult::error(&job.id, 500, message, 0)),
                RunEnd::Replied {
                    status: 500,
                    error: Some(message.into()),
                },
            )
        }
    };
    let answered = matches!(end, RunEnd::Replied { status, .. } if status < 500);
    if *shutdown.borrow() && !answered {
        // The engine is stopping: its daemons are going away under this call, so a failure
        // says nothing about the job. Keep nothing; the job is `running` on disk and runs
        // again after a restart.
        return;
    }
    if let Some(mut result) = result {
        result.latency_ms = started.elapsed().as_millis() as u64;
        let bytes = result.encode(jobs.settings.max_result_bytes);
        if let Err(e) = jobs.write(&job.id, "result", bytes).await {
            tracing::warn!(job = %job.id, "job result not saved: {e}");
        }
    }
    let now = crate::clock::epoch_millis();
    let updated = jobs.book().finish(&job.id, end, now);
    if let Some(updated) = updated {
        jobs.save(&updated).await;
    }
    jobs.wake.notify_one();
}

/// The job's function route in the served map: the one named by the spec's template, else
/// (the template changed since) another of the same function that takes the method.
fn find_route<'a>(routes: &'a [Route], spec: &JobSpec) -> Option<&'a Route> {
    let wanted = Methods::parse(&spec.method).unwrap_or_default();
    let same = |r: &&Route| {
        r.target.runtime == spec.runtime && r.target.fn_name == spec.name && r.target.version == spec.version
    };
    routes
        .iter()
        .filter(same)
        .find(|r| r.pattern == spec.route_template)
        .or_else(|| routes.iter().filter(same).find(|r| r.methods.0 & wanted.0 != 0))
}

/// Call the job's function through the invoke pipeline; the result to store (none when the
/// call was not admitted) and how the run ended.
async fn call(shared: &Arc<Shared>, job: &Job, spec: &JobSpec) -> (Option<JobResult>, RunEnd) {
    let served = shared.served();
    let fail = |failure: Failure| {
        let status = failure.status().as_u16();
        let message = failure.to_string();
        (
            Some(JobResult::error(&job.id, status, &message, 0)),
            RunEnd::Replied {
                status,
                error: Some(message),
            },
        )
    };
    let Some(route) = find_route(served.discovery.routes.routes(), spec) else {
        return fail(Failure::UnknownFunction);
    };
    let wanted = Methods::parse(&spec.method).unwrap_or_default();
    if route.methods.0 & wanted.0 == 0 {
        return fail(Failure::MethodNotAllowed {
            allow: crate::admin::methods_list(route.methods).join(", "),
        });
    }
    let Some(slot) = served.slot(&route.target) else {
        return fail(Failure::Internal);
    };
    let Ok(method) = spec.method.parse::<Method>() else {
        return fail(Failure::BadRequest("unsupported method"));
    };
    let mut headers = hyper::HeaderMap::new();
    for (k, v) in &spec.headers {
        if let (Ok(name), Ok(value)) = (
            hyper::header::HeaderName::from_bytes(k.to_ascii_lowercase().as_bytes()),
            hyper::header::HeaderValue::from_str(v),
        ) {
            headers.append(name, value);
        }
    }
    if !headers.contains_key(hyper::header::USER_AGENT) {
        // The original's `client.ua` for jobs.
        headers.insert(
            hyper::header::USER_AGENT,
            hyper::header::HeaderValue::from_static("fastfn-jobs"),
        );
    }
    let params: Vec<(String, String)> = spec.path_params.clone().into_iter().collect();
    let input = crate::invoke::CallInput {
        method: &method,
        path: &spec.route,
        query: spec.query.as_deref(),
        headers: &headers,
        body: spec.body.as_bytes(),
        client_ip: "127.0.0.1",
        params: &params,
        user: spec.context.as_ref(),
        trigger: None,
    };
    let target = &route.target;
    let was_warm = slot.is_warm();
    let started = tokio::time::Instant::now();
    // The job id is the event's id, as in the original. The engine's lines written during
    // the call carry it and are kept with the job's record.
    let seq = shared.inspector.next_seq();
    let (outcome, logged) = crate::inspect::logs::scoped_as(
        seq,
        Some(job.id.clone()),
        crate::invoke::run(shared, target, slot, &input, &job.id),
    )
    .await;
    let latency = started.elapsed();
    let (reason, why) = crate::inspect::verdict(shared, target, &outcome);
    let (result, end) = match outcome.result {
        Err(failure) if failure.is_admission() => (None, RunEnd::NotAdmitted(failure.to_string())),
        Err(failure) => fail(failure),
        Ok(reply) => {
            if reply.status < 500 {
                slot.warm_up();
            }
            shared
                .logs
                .push_call_output(target, reply.stdout.as_deref(), reply.stderr.as_deref());
            let mut headers = BTreeMap::new();
            for (k, v) in &reply.headers {
                let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
                headers
                    .entry(k.to_string())
                    .and_modify(|old: &mut String| {
                        old.push_str(", ");
                        old.push_str(&v);
                    })
                    .or_insert(v);
            }
            let (body, body_base64) = match String::from_utf8(reply.body.to_vec()) {
                Ok(text) => (Some(text), None),
                Err(_) => {
                    use base64::Engine as _;
                    (
                        None,
                        Some(base64::engine::general_purpose::STANDARD.encode(&reply.body)),
                    )
                }
            };
            let status = reply.status;
            (
                Some(JobResult {
                    id: job.id.clone(),
                    status,
                    headers,
                    is_base64: body_base64.is_some(),
                    body,
                    body_base64,
                    latency_ms: 0,
                    truncated: false,
                }),
                RunEnd::Replied { status, error: None },
            )
        }
    };
    // Into the request log like any call (marked `trigger: job`), and to a watching dashboard.
    let status = match &end {
        RunEnd::Replied { status, .. } => *status,
        RunEnd::NotAdmitted(_) => 503,
    };
    let t = outcome.timings;
    let note = crate::inspect::Note {
        kind: crate::inspect::Kind::Function,
        target: Some(target.clone()),
        request_id: Some(job.id.clone()),
        socket_index: outcome.socket_index.map(|i| i + 1),
        queued: outcome.queued,
        cold: !was_warm,
        stages: t.stages(),
        trigger: Some("job"),
        fault: outcome.fault.clone(),
        logs: logged.lines,
        reason,
        why,
        ..Default::default()
    };
    let entry = crate::inspect::Entry {
        seq,
        ts: crate::clock::epoch_millis(),
        method: hyper::Method::from_bytes(spec.method.as_bytes()).unwrap_or(hyper::Method::GET),
        uri: spec.route.parse().unwrap_or_else(|_| hyper::Uri::from_static("/")),
        status,
        latency_us: latency.as_micros() as u64,
        note,
        captured: None,
    };
    shared.inspector.push(entry);
    (result, end)
}

// ---- HTTP: `/_fn/jobs` and `/_fn/jobs/<id>[/result]` (behind the admin guard) ----

/// The jobs endpoints in the internal part of the OpenAPI document (the original's summaries
/// and operation ids). `op(id, summary, extra)` builds one operation.
pub(crate) fn openapi_paths(paths: &mut Map<String, Value>, op: &dyn Fn(&str, &str, Value) -> Value) {
    let id_param =
        json!({"parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}]});
    let enqueue = json!({"requestBody": {"required": true, "content": {"application/json": {
        "schema": {"type": "object", "required": ["name"], "properties": {
            "runtime": {"type": "string"}, "name": {"type": "string"}, "version": {"type": "string"},
            "method": {"type": "string", "enum": ["GET", "POST", "PUT", "PATCH", "DELETE"], "default": "GET"},
            "route": {"type": "string"}, "params": {"type": "object", "additionalProperties": true},
            "query": {"type": "object", "additionalProperties": true}, "body": {},
            "headers": {"type": "object", "additionalProperties": true},
            "context": {"type": "object", "additionalProperties": true},
            "max_attempts": {"type": "integer", "minimum": 1}, "retry_delay_ms": {"type": "integer", "minimum": 0}}}}}}});
    paths.insert(
        "/_fn/jobs".into(),
        json!({"get": op("internal_jobs_get", "List recent async jobs", json!({})),
               "post": op("internal_jobs_post", "Enqueue async job (invoke a function later)", enqueue)}),
    );
    paths.insert(
        "/_fn/jobs/{id}".into(),
        json!({"get": op("internal_job_get", "Get job metadata", id_param.clone()),
               "delete": op("internal_job_delete", "Cancel queued job", id_param.clone())}),
    );
    paths.insert(
        "/_fn/jobs/{id}/result".into(),
        json!({"get": op("internal_job_result_get", "Get job result (if completed)", id_param)}),
    );
}

fn error_response(e: JobError) -> hyper::Response<Body> {
    Failure::Job(e).into_response()
}

/// `/_fn/jobs*`, after the admin guard.
pub(crate) async fn handle(shared: &Arc<Shared>, parts: &Parts, body: Incoming) -> hyper::Response<Body> {
    let path = parts.uri.path();
    let method = &parts.method;
    if path == "/_fn/jobs" || path == "/_fn/jobs/" {
        return match *method {
            Method::GET | Method::HEAD => {
                let limit = query_value(parts.uri.query().unwrap_or(""), "limit")
                    .and_then(|v| v.trim().parse::<i64>().ok())
                    .map(|n| n.clamp(1, LIST_MAX as i64) as usize)
                    .unwrap_or(LIST_DEFAULT);
                json_response(StatusCode::OK, &json!({ "jobs": shared.jobs.list(limit) }))
            }
            Method::POST => match enqueue(shared, body).await {
                Ok(job) => json_response(StatusCode::CREATED, &job),
                Err(response) => response,
            },
            _ => Failure::MethodNotAllowed {
                allow: "GET, POST".into(),
            }
            .into_response(),
        };
    }
    let rest = path.trim_start_matches("/_fn/jobs/");
    let (id, result) = match rest.strip_suffix("/result") {
        Some(id) => (id, true),
        None => (rest, false),
    };
    if !valid_id(id) {
        return Failure::NotFound.into_response();
    }
    if result {
        if !matches!(*method, Method::GET | Method::HEAD) {
            return Failure::MethodNotAllowed { allow: "GET".into() }.into_response();
        }
        if let Some(stored) = shared.jobs.result(id).await {
            return json_response(StatusCode::OK, &stored);
        }
        let Some(job) = shared.jobs.get(id) else {
            return error_response(JobError::NotFound);
        };
        return match job.status {
            JobStatus::Queued | JobStatus::Running => json_response(
                StatusCode::ACCEPTED,
                &json!({
                    "id": id,
                    "status": job.status,
                    "error": "result not ready",
                    "attempt": job.attempt,
                    "max_attempts": job.max_attempts,
                    "retry_delay_ms": job.retry_delay_ms,
                }),
            ),
            status => json_response(
                StatusCode::NOT_FOUND,
                &json!({ "error": "result not found", "status": status }),
            ),
        };
    }
    match *method {
        Method::GET | Method::HEAD => match shared.jobs.get(id) {
            Some(job) => json_response(StatusCode::OK, &job),
            None => error_response(JobError::NotFound),
        },
        Method::DELETE => match shared.jobs.cancel(id).await {
            Ok(job) => json_response(StatusCode::OK, &job),
            Err(e) => error_response(e),
        },
        _ => Failure::MethodNotAllowed {
            allow: "GET, DELETE".into(),
        }
        .into_response(),
    }
}

/// Job ids as the original's item route takes them.
fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id != "."
        && id != ".."
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn query_value(query: &str, key: &str) -> Option<String> {
    crate::invoke::event::parse_query(query)
        .into_iter()
        .find(|(k, _)| k == key)
        .and_then(|(_, v)| match v {
            crate::invoke::event::QueryValueOut::One(s) => Some(s),
            _ => None,
        })
}

fn invalid(message: impl Into<String>) -> JobError {
    JobError::Invalid(message.into())
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A `POST /_fn/jobs` payload, checked as the original checks it (`jobs.enqueue`), before
/// anything is looked up.
#[derive(Debug, Clone, PartialEq)]
struct Request {
    name: String,
    version: Option<String>,
    runtime: Option<RuntimeKind>,
    method: String,
    route: Option<String>,
    params: BTreeMap<String, String>,
    body: String,
    query: Option<String>,
    headers: BTreeMap<String, String>,
    context: Option<Value>,
    max_attempts: u32,
    retry_delay_ms: u64,
}

fn parse_request(payload: &Map<String, Value>) -> Result<Request, JobError> {
    let name = match payload.get("name") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => return Err(invalid("name is required")),
    };
    let name_ok = !name.starts_with('/')
        && !name.contains("..")
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._/-[]@".contains(&b));
    if !name_ok {
        return Err(invalid("invalid name"));
    }
    let version = match payload.get("version") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() || s == "default" => None,
        Some(Value::String(s)) if s.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b)) => {
            Some(s.clone())
        }
        Some(_) => return Err(invalid("invalid version")),
    };
    let runtime = match payload.get("runtime") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) if s.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-".contains(&b)) => {
            Some(RuntimeKind::parse(s).ok_or(JobError::UnknownFunction)?)
        }
        Some(_) => return Err(invalid("invalid runtime")),
    };
    let method = match payload.get("method") {
        None | Some(Value::Null) => "GET".to_string(),
        Some(v) => scalar(v).to_ascii_uppercase(),
    };
    if !matches!(method.as_str(), "GET" | "POST" | "PUT" | "PATCH" | "DELETE") {
        return Err(invalid("unsupported method"));
    }
    let route = match payload.get("route") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => Some(if s.starts_with('/') { s.clone() } else { format!("/{s}") }),
        Some(_) => return Err(invalid("route must be a string when provided")),
    };
    let mut params = BTreeMap::new();
    match payload.get("params") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (k, v) in map {
                if k.is_empty() {
                    return Err(invalid("params keys must be non-empty strings"));
                }
                if !v.is_null() {
                    params.insert(k.clone(), scalar(v));
                }
            }
        }
        Some(_) => return Err(invalid("params must be a JSON object")),
    }
    let body = match payload.get("body") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    let enc = |s: &str| percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string();
    let query = match payload.get("query") {
        None | Some(Value::Null) => None,
        Some(Value::String(q)) => Some(q.trim_start_matches('?').to_string()).filter(|q| !q.is_empty()),
        Some(Value::Object(map)) => Some(
            map.iter()
                .map(|(k, v)| format!("{}={}", enc(k), enc(&scalar(v))))
                .collect::<Vec<_>>()
                .join("&"),
        )
        .filter(|q| !q.is_empty()),
        // The original ignores a query that is not a table.
        Some(_) => None,
    };
    let headers = match payload.get("headers") {
        Some(Value::Object(map)) => map.iter().map(|(k, v)| (k.clone(), scalar(v))).collect(),
        _ => BTreeMap::new(),
    };
    let context = match payload.get("context") {
        None | Some(Value::Null) => None,
        Some(c @ Value::Object(_)) => Some(c.clone()),
        Some(_) => return Err(invalid("context must be an object")),
    };
    let max_attempts = payload
        .get("max_attempts")
        .and_then(Value::as_f64)
        .map(|n| n.clamp(1.0, u32::MAX as f64) as u32)
        .unwrap_or(DEFAULT_MAX_ATTEMPTS);
    let retry_delay_ms = match payload.get("retry_delay_ms").and_then(Value::as_f64) {
        Some(n) if n >= 0.0 => n.min(u64::MAX as f64) as u64,
        _ => DEFAULT_RETRY_DELAY_MS,
    };
    Ok(Request {
        name,
        version,
        runtime,
        method,
        route,
        params,
        body,
        query,
        headers,
        context,
        max_attempts,
        retry_delay_ms,
    })
}

/// `POST /_fn/jobs`: check, resolve the function and its route, store, queue. Errors are
/// whole responses (a 405 carries `Allow`).
async fn enqueue(shared: &Arc<Shared>, body: Incoming) -> Result<Job, hyper::Response<Body>> {
    let jobs = &shared.jobs;
    if !jobs.enabled() {
        return Err(error_response(JobError::Disabled));
    }
    let bytes: Bytes = http_body_util::Limited::new(body, ENQUEUE_MAX_BYTES)
        .collect()
        .await
        .map_err(|_| Failure::PayloadTooLarge.into_response())?
        .to_bytes();
    let payload: Value =
        serde_json::from_slice(&bytes).map_err(|_| Failure::BadRequest("invalid json body").into_response())?;
    let Value::Object(payload) = payload else {
        return Err(Failure::BadRequest("invalid json body").into_response());
    };
    let req = parse_request(&payload).map_err(error_response)?;
    let served = shared.served();
    let routes = served.discovery.routes.routes();
    // By name: the runtime given, else the first in the runtime order that has it.
    let order: Vec<RuntimeKind> = req
        .runtime
        .map(|r| vec![r])
        .unwrap_or_else(|| shared.runtime_order.clone());
    let candidates: Vec<&Route> = order
        .iter()
        .find_map(|rt| {
            let list: Vec<&Route> = routes
                .iter()
                .filter(|r| r.target.runtime == *rt && r.target.fn_name == req.name && r.target.version == req.version)
                .collect();
            (!list.is_empty()).then_some(list)
        })
        .ok_or_else(|| error_response(JobError::UnknownFunction))?;
    let allowed = candidates.iter().fold(Methods::default(), |acc, r| acc | r.methods);
    let wanted = Methods::parse(&req.method).unwrap_or_default();
    if allowed.0 & wanted.0 == 0 {
        return Err(Failure::MethodNotAllowed {
            allow: crate::admin::methods_list(allowed).join(", "),
        }
        .into_response());
    }
    let route = match &req.route {
        Some(r) => candidates
            .iter()
            .copied()
            .find(|c| &c.pattern == r)
            .ok_or_else(|| error_response(invalid("invalid route")))?,
        None => candidates
            .iter()
            .copied()
            .filter(|c| c.methods.0 & wanted.0 != 0)
            .min_by(|a, b| a.pattern.cmp(&b.pattern))
            .ok_or_else(|| error_response(JobError::NoRoute))?,
    };
    let params: Vec<(String, String)> = req.params.clone().into_iter().collect();
    let path = crate::admin::fill_route(&route.pattern, &params)
        .map_err(|missing| error_response(invalid(format!("missing required path params: {}", missing.join(", ")))))?;
    if req.body.len() as u64 > route.target.policy.max_body_bytes {
        return Err(Failure::PayloadTooLarge.into_response());
    }
    let t = &route.target;
    let now = crate::clock::epoch_millis();
    let job = Job {
        id: jobs.new_id(),
        status: JobStatus::Queued,
        created_at_ms: now,
        updated_at_ms: now,
        runtime: t.runtime,
        name: t.fn_name.clone(),
        version: t.version.clone(),
        method: req.method.clone(),
        route: path.clone(),
        route_template: route.pattern.clone(),
        attempt: 0,
        max_attempts: req.max_attempts,
        retry_delay_ms: req.retry_delay_ms,
        result_status: None,
        last_error: None,
        next_run_at_ms: None,
    };
    let spec = JobSpec {
        runtime: t.runtime,
        name: t.fn_name.clone(),
        version: t.version.clone(),
        method: req.method,
        route: path,
        route_template: route.pattern.clone(),
        path_params: req.params,
        query: req.query,
        headers: req.headers,
        body: req.body,
        context: req.context,
    };
    jobs.submit(job, &spec).await.map_err(error_response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: &str, created: u64) -> Job {
        Job {
            id: id.into(),
            status: JobStatus::Queued,
            created_at_ms: created,
            updated_at_ms: created,
            runtime: RuntimeKind::Python,
            name: "f".into(),
            version: None,
            method: "GET".into(),
            route: "/f".into(),
            route_template: "/f".into(),
            attempt: 0,
            max_attempts: 1,
            retry_delay_ms: 1000,
            result_status: None,
            last_error: None,
            next_run_at_ms: None,
        }
    }

    #[test]
    fn settings_follow_the_original() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
        };
        assert_eq!(JobSettings::from_env(&vars(&[])), JobSettings::default());
        let s = JobSettings::from_env(&vars(&[
            ("FN_JOBS_ENABLED", "off"),
            ("FN_JOBS_DIR", "/x/jobs"),
            ("FN_JOBS_POLL_INTERVAL", "0.5"),
            ("FN_JOBS_MAX_CONCURRENCY", "4"),
            ("FN_JOBS_MAX_RESULT_BYTES", "1000"),
        ]));
        assert!(!s.enabled);
        assert_eq!(s.dir.as_deref(), Some(Path::new("/x/jobs")));
        assert_eq!(s.poll_interval, Duration::from_millis(500));
        assert_eq!((s.max_concurrency, s.max_result_bytes), (4, 1000));
        // Zero, negative and garbage fall back to the defaults, as `env_num` does.
        let s = JobSettings::from_env(&vars(&[
            ("FN_JOBS_MAX_CONCURRENCY", "0"),
            ("FN_JOBS_POLL_INTERVAL", "-1"),
            ("FN_JOBS_MAX_RESULT_BYTES", "lots"),
        ]));
        assert_eq!(s, JobSettings::default());
    }

    #[test]
    fn the_queue_respects_slots_order_and_delays() {
        let mut book = Book::default();
        for (i, id) in ["a", "b", "c"].iter().enumerate() {
            book.add(job(id, i as u64));
        }
        let a = book.next_due(10, 2).unwrap();
        assert_eq!((a.id.as_str(), a.status, a.attempt), ("a", JobStatus::Running, 1));
        assert_eq!(book.next_due(10, 2).unwrap().id, "b");
        assert!(book.next_due(10, 2).is_none(), "two slots taken");
        // `a` fails with one attempt allowed: failed; `c` may start.
        let a = book
            .finish(
                "a",
                RunEnd::Replied {
                    status: 500,
                    error: None,
                },
                20,
            )
            .unwrap();
        assert_eq!(
            (a.status, a.result_status, a.last_error.as_deref()),
            (JobStatus::Failed, Some(500), Some("HTTP 500"))
        );
        assert_eq!(book.next_due(20, 2).unwrap().id, "c");
        let b = book
            .finish(
                "b",
                RunEnd::Replied {
                    status: 404,
                    error: None,
                },
                30,
            )
            .unwrap();
        assert_eq!(b.status, JobStatus::Done, "a 4xx is the handler's answer: done");
    }

    #[test]
    fn retries_wait_and_refusals_give_the_attempt_back() {
        let mut book = Book::default();
        let mut j = job("r", 0);
        j.max_attempts = 2;
        j.retry_delay_ms = 100;
        book.add(j);
        book.next_due(0, 1).unwrap();
        let r = book
            .finish("r", RunEnd::NotAdmitted("worker pool overflow".into()), 10)
            .unwrap();
        assert_eq!(
            (r.status, r.attempt, r.next_run_at_ms),
            (JobStatus::Queued, 0, Some(110))
        );
        assert!(book.next_due(109, 1).is_none(), "not before its delay");
        assert_eq!(book.next_due(110, 1).unwrap().attempt, 1);
        let r = book
            .finish(
                "r",
                RunEnd::Replied {
                    status: 504,
                    error: Some("runtime timeout".into()),
                },
                200,
            )
            .unwrap();
        assert_eq!((r.status, r.next_run_at_ms), (JobStatus::Queued, Some(300)));
        assert_eq!(book.next_due(300, 1).unwrap().attempt, 2);
        let r = book
            .finish(
                "r",
                RunEnd::Replied {
                    status: 502,
                    error: None,
                },
                400,
            )
            .unwrap();
        assert_eq!(r.status, JobStatus::Failed, "attempts used up");
    }

    #[test]
    fn only_queued_jobs_cancel_and_canceled_ones_never_run() {
        let mut book = Book::default();
        book.add(job("x", 0));
        book.add(job("y", 1));
        assert_eq!(book.cancel("x", 5).unwrap().status, JobStatus::Canceled);
        assert_eq!(book.cancel("x", 5).unwrap_err(), JobError::NotQueued);
        assert_eq!(book.cancel("nope", 5).unwrap_err(), JobError::NotFound);
        assert_eq!(book.next_due(6, 2).unwrap().id, "y");
        assert!(book.next_due(6, 2).is_none());
        assert_eq!(book.cancel("y", 7).unwrap_err(), JobError::NotQueued, "running");
    }

    #[test]
    fn the_book_keeps_recent_jobs_and_every_live_one() {
        let mut book = Book::default();
        book.add(job("live", 0));
        for i in 0..KEEP_RECENT + 10 {
            let mut j = job(&format!("j{i}"), i as u64 + 1);
            j.status = JobStatus::Done;
            book.add(j);
        }
        assert_eq!(book.recent.len(), KEEP_RECENT);
        assert!(book.jobs.contains_key("live"), "queued jobs are kept");
        assert!(!book.jobs.contains_key("j0"));
        let listed = book.list(3);
        let ids: Vec<&str> = listed.iter().map(|j| j.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                format!("j{}", KEEP_RECENT + 9),
                format!("j{}", KEEP_RECENT + 8),
                format!("j{}", KEEP_RECENT + 7)
            ]
        );
    }

    #[test]
    fn requests_are_checked_like_the_original() {
        let parse = |v: Value| parse_request(v.as_object().unwrap());
        let err = |v: Value| parse(v).unwrap_err().to_string();
        assert_eq!(err(json!({})), "name is required");
        assert_eq!(err(json!({"name": "../x"})), "invalid name");
        assert_eq!(err(json!({"name": "/x"})), "invalid name");
        assert_eq!(err(json!({"name": "a b"})), "invalid name");
        assert_eq!(err(json!({"name": "x", "version": "v 1"})), "invalid version");
        assert_eq!(err(json!({"name": "x", "method": "TRACE"})), "unsupported method");
        assert_eq!(err(json!({"name": "x", "params": [1]})), "params must be a JSON object");
        assert_eq!(
            err(json!({"name": "x", "route": 3})),
            "route must be a string when provided"
        );
        assert_eq!(err(json!({"name": "x", "context": "u"})), "context must be an object");
        assert_eq!(
            parse(json!({"name": "x", "runtime": "cobol"})).unwrap_err(),
            JobError::UnknownFunction
        );
        let r = parse(json!({
            "name": "hello", "method": "post", "version": "default", "body": {"a": 1},
            "query": {"q": "a b"}, "params": {"id": 7, "gone": null}, "max_attempts": 0, "retry_delay_ms": -5
        }))
        .unwrap();
        assert_eq!(
            (r.method.as_str(), r.version, r.body.as_str()),
            ("POST", None, r#"{"a":1}"#)
        );
        assert_eq!(r.query.as_deref(), Some("q=a%20b"));
        assert_eq!(r.params, BTreeMap::from([("id".to_string(), "7".to_string())]));
        assert_eq!((r.max_attempts, r.retry_delay_ms), (1, DEFAULT_RETRY_DELAY_MS));
    }

    #[test]
    fn results_stay_valid_json_within_the_bound() {
        let mut r = JobResult::error("job-1", 200, "x", 3);
        r.body = Some("é".repeat(1000));
        let bytes = r.clone().encode(300);
        assert!(bytes.len() <= 300, "{}", bytes.len());
        let back: JobResult = serde_json::from_slice(&bytes).unwrap();
        assert!(back.truncated);
        assert!(back.body.unwrap().starts_with('é'));
        let small = r.clone().encode(1 << 20);
        assert!(!serde_json::from_slice::<JobResult>(&small).unwrap().truncated);
    }

    #[test]
    fn ids_are_checked() {
        assert!(valid_id("job-1770905191295-1-148304"));
        for bad in ["", ".", "..", "a/b", "a b", "%2e"] {
            assert!(!valid_id(bad), "{bad}");
        }
    }

    #[tokio::test]
    async fn a_folder_is_read_back_with_running_jobs_queued_again() {
        let dir = tempfile::tempdir().unwrap();
        let settings = JobSettings {
            dir: Some(dir.path().join("jobs")),
            ..JobSettings::default()
        };
        let jobs = Jobs::load(settings.clone(), dir.path());
        let mut running = job("job-b", 2);
        running.status = JobStatus::Running;
        running.attempt = 1;
        let mut done = job("job-c", 3);
        done.status = JobStatus::Done;
        for j in [job("job-a", 1), running, done] {
            jobs.save(&j).await;
        }
        std::fs::write(dir.path().join("jobs/junk.meta.json"), "{not json").unwrap();
        let again = Jobs::load(settings, dir.path());
        let mut book = again.book();
        assert_eq!(book.queue, ["job-a", "job-b"]);
        assert_eq!(book.jobs["job-b"].status, JobStatus::Queued);
        assert_eq!(book.next_due(10, 5).unwrap().id, "job-a");
        assert_eq!(book.next_due(10, 5).unwrap().attempt, 2, "the cut run counted");
    }
}
