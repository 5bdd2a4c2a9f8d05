//! The load lab: the engine sends HTTP load to its own listener (loopback only), with a bound
//! on concurrency, a count or a duration, and an optional rate; the run can be stopped, and
//! its progress (a point every half second) and summary are read while it runs.
//!
//! Each of the `concurrency` workers keeps one keep-alive connection, as `wrk` does, so the
//! numbers compare with it. Latencies are kept whole (4 bytes a request, at most
//! `MAX_COUNT`), so the percentiles are exact, not estimated.

use hyper::Method;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

pub const MAX_CONCURRENCY: usize = 256;
pub const MAX_COUNT: u64 = 1_000_000;
pub const MAX_DURATION_MS: u64 = 300_000;
const DEFAULT_COUNT: u64 = 1000;
const TICK: Duration = Duration::from_millis(500);

/// What to send: a route of this project, how much, how wide, how fast.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[ts(export)]
pub struct LoadSpec {
    /// Path and query on this engine, e.g. `/hello?name=x`.
    pub path: String,
    #[serde(default)]
    #[ts(optional)]
    pub method: Option<String>,
    /// Requests in all (default 1000 when no duration is given).
    #[serde(default)]
    #[ts(optional, type = "number")]
    pub count: Option<u64>,
    /// Run for this long instead of a count.
    #[serde(default)]
    #[ts(optional, type = "number")]
    pub duration_ms: Option<u64>,
    /// Requests in flight at once (one connection each).
    pub concurrency: usize,
    /// Requests per second in all; none: as fast as answers come.
    #[serde(default)]
    #[ts(optional)]
    pub rate: Option<f64>,
    #[serde(default)]
    #[ts(optional)]
    pub body: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    #[error("path must start with / and name a route of this project, not /_fn or /console")]
    Path,
    #[error("concurrency must be between 1 and 256")]
    Concurrency,
    #[error("count must be between 1 and 1000000")]
    Count,
    #[error("duration_ms must be between 1 and 300000")]
    Duration,
    #[error("rate must be a positive number")]
    Rate,
    #[error("unknown method")]
    Method,
}

impl LoadSpec {
    pub fn validate(&self) -> Result<(), LoadError> {
        let p = self.path.as_str();
        let internal =
            |prefix: &str| p == prefix || p.starts_with(&format!("{prefix}/")) || p.starts_with(&format!("{prefix}?"));
        if !p.starts_with('/') || p.starts_with("//") || internal("/_fn") || internal("/console") {
            return Err(LoadError::Path);
        }
        if !(1..=MAX_CONCURRENCY).contains(&self.concurrency) {
            return Err(LoadError::Concurrency);
        }
        if self.count.is_some_and(|n| !(1..=MAX_COUNT).contains(&n)) {
            return Err(LoadError::Count);
        }
        if self.duration_ms.is_some_and(|d| !(1..=MAX_DURATION_MS).contains(&d)) {
            return Err(LoadError::Duration);
        }
        if self.rate.is_some_and(|r| !(r.is_finite() && r > 0.0)) {
            return Err(LoadError::Rate);
        }
        self.method()?;
        Ok(())
    }

    fn method(&self) -> Result<Method, LoadError> {
        match &self.method {
            None => Ok(Method::GET),
            Some(m) => Method::from_bytes(m.to_ascii_uppercase().as_bytes()).map_err(|_| LoadError::Method),
        }
    }
}

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ts_rs::TS, Deserialize)]
#[ts(export)]
#[serde(rename_all = "snake_case")]
pub enum LoadState {
    Running,
    Done,
    Stopped,
}

/// A run's numbers so far (or in all, once it ended).
#[derive(Debug, Clone, Default, PartialEq, Serialize, ts_rs::TS, Deserialize)]
#[ts(export)]
pub struct LoadSummary {
    #[ts(type = "number")]
    pub requests: u64,
    /// Requests that got no HTTP answer (connect or read failed).
    #[ts(type = "number")]
    pub errors: u64,
    #[ts(type = "number")]
    pub duration_ms: u64,
    pub rps: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Answers by status code.
    #[ts(type = "Record<string, number>")]
    pub statuses: BTreeMap<u16, u64>,
    /// Answers by the socket that served them (1-based, from `X-Fn-Runtime-Socket-Index`,
    /// which functions with debug headers send); empty otherwise.
    #[ts(type = "Record<string, number>")]
    pub sockets: BTreeMap<u16, u64>,
}

/// The target function's admission at one point: calls running and queued against its pool's
/// limits, and the calls its pool turned away since the point before, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, ts_rs::TS, Deserialize)]
#[ts(export)]
pub struct AdmissionPoint {
    #[ts(type = "number")]
    pub active: u64,
    #[ts(type = "number")]
    pub queued: u64,
    /// `None`: no worker limit.
    #[ts(type = "number | null")]
    pub max_workers: Option<u64>,
    #[ts(type = "number")]
    pub max_queue: u64,
    /// Refused at once, the queue being full (its overflow status, 429 by default).
    #[ts(type = "number")]
    pub overflow_drops: u64,
    /// Waited in the queue past its timeout.
    #[ts(type = "number")]
    pub timeout_drops: u64,
}

/// One daemon of the target's runtime at one point, as the engine last sampled it.
#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS, Deserialize)]
#[ts(export)]
pub struct DaemonPoint {
    /// 1-based socket index.
    pub socket: usize,
    pub pid: u32,
    /// Percent of one core.
    pub cpu_percent: f32,
    #[ts(type = "number")]
    pub rss_bytes: u64,
}

/// What the engine reads of the run's target at each point (cumulative drop counters; the
/// point keeps the difference). Built by the lab from the route map, off the request path.
pub type Probe = Box<dyn Fn() -> (Option<AdmissionPoint>, Vec<DaemonPoint>) + Send + Sync>;

/// What a run knows beside its spec: how to sample the target, the target's effective config
/// when the run started, and where to save the run when it ends.
#[derive(Default)]
pub struct Extras {
    pub probe: Option<Probe>,
    pub config: Option<serde_json::Value>,
    /// The project's run folder (`.fastfn/lab/runs`).
    pub save_dir: Option<std::path::PathBuf>,
}

/// One point of the live chart: the half second before `t_ms` (ms since the start).
#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS, Deserialize)]
#[ts(export)]
pub struct LoadPoint {
    #[ts(type = "number")]
    pub t_ms: u64,
    pub rps: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    /// Answers of 400 and above, and requests with no answer.
    #[ts(type = "number")]
    pub failed: u64,
    /// Answers by serving socket in this half second (see [`LoadSummary::sockets`]).
    #[ts(type = "Record<string, number>")]
    pub sockets: BTreeMap<u16, u64>,
    /// The target function's admission (absent when the path matches no function).
    #[serde(default)]
    pub admission: Option<AdmissionPoint>,
    /// CPU and memory of the target runtime's daemons.
    #[serde(default)]
    pub daemons: Vec<DaemonPoint>,
}

/// A run as the API shows it.
#[derive(Debug, Clone, Serialize, ts_rs::TS, Deserialize)]
#[ts(export)]
pub struct LoadRun {
    #[ts(type = "number")]
    pub id: u64,
    pub spec: LoadSpec,
    pub state: LoadState,
    #[ts(type = "number")]
    pub started_ms: u64,
    pub summary: LoadSummary,
    pub series: Vec<LoadPoint>,
    /// The target's effective config when the run started: its function, runtime, daemon
    /// count and resolved policy (what a comparison of two runs diffs).
    #[serde(default)]
    #[ts(type = "Record<string, unknown> | null")]
    pub config: Option<serde_json::Value>,
    /// The file it is saved as in `.fastfn/lab/runs/`, once saved (or to be, when it ends).
    #[serde(default)]
    pub file: Option<String>,
}

#[derive(Default)]
struct Progress {
    latencies_us: Vec<u32>,
    statuses: BTreeMap<u16, u64>,
    errors: u64,
    /// Latencies since the last point.
    window: Vec<u32>,
    window_failed: u64,
    sockets: BTreeMap<u16, u64>,
    window_sockets: BTreeMap<u16, u64>,
    series: Vec<LoadPoint>,
    /// The pool's drop counters at the last point.
    drops: (u64, u64),
    elapsed: Option<Duration>,
    state: Option<LoadState>,
}

/// A run in progress or ended.
pub struct Run {
    pub id: u64,
    spec: LoadSpec,
    started_ms: u64,
    started: Instant,
    stop: AtomicBool,
    tickets: AtomicU64,
    progress: Mutex<Progress>,
    ended: tokio::sync::Notify,
    extras: Extras,
}

impl Run {
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    pub fn is_running(&self) -> bool {
        self.lock().state.is_none()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Progress> {
        self.progress.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wait for the run to end.
    pub async fn finished(&self) {
        loop {
            let ended = self.ended.notified();
            if !self.is_running() {
                return;
            }
            ended.await;
        }
    }

    pub fn view(&self, with_series: bool) -> LoadRun {
        let p = self.lock();
        let elapsed = p.elapsed.unwrap_or_else(|| self.started.elapsed());
        let mut sorted = p.latencies_us.clone();
        sorted.sort_unstable();
        let requests = sorted.len() as u64 + p.errors;
        let secs = elapsed.as_secs_f64();
        LoadRun {
            id: self.id,
            spec: self.spec.clone(),
            state: p.state.unwrap_or(LoadState::Running),
            started_ms: self.started_ms,
            summary: LoadSummary {
                requests,
                errors: p.errors,
                duration_ms: elapsed.as_millis() as u64,
                rps: if secs > 0.0 { requests as f64 / secs } else { 0.0 },
                p50_ms: percentile_ms(&sorted, 50.0),
                p95_ms: percentile_ms(&sorted, 95.0),
                p99_ms: percentile_ms(&sorted, 99.0),
                max_ms: sorted.last().map_or(0.0, |us| f64::from(*us) / 1000.0),
                statuses: p.statuses.clone(),
                sockets: p.sockets.clone(),
            },
            series: if with_series { p.series.clone() } else { Vec::new() },
            config: self.extras.config.clone(),
            file: self.extras.save_dir.as_ref().map(|_| self.file_name()),
        }
    }

    /// `<started_ms>-<id>.json`: unique per project (ids restart with the engine), and sorted
    /// by time.
    fn file_name(&self) -> String {
        format!("{}-{}.json", self.started_ms, self.id)
    }

    /// Write the ended run into the project's run folder. Best effort: a read-only project
    /// still runs load, it just keeps no record (said in the log).
    fn save(&self) {
        let Some(dir) = &self.extras.save_dir else { return };
        let written = std::fs::create_dir_all(dir).and_then(|()| {
            let json = serde_json::to_vec_pretty(&self.view(true)).map_err(std::io::Error::other)?;
            std::fs::write(dir.join(self.file_name()), json)
        });
        if let Err(e) = written {
            tracing::warn!("cannot save load run {} in {}: {e}", self.id, dir.display());
        }
    }

    /// The next request's number, or none when the run is over.
    fn ticket(&self, count: Option<u64>, deadline: Option<Instant>) -> Option<u64> {
        if self.stop.load(Ordering::Relaxed) || deadline.is_some_and(|d| Instant::now() >= d) {
            return None;
        }
        let k = self.tickets.fetch_add(1, Ordering::Relaxed);
        match count {
            Some(n) if k >= n => None,
            _ => Some(k),
        }
    }

    fn record(&self, answer: Option<Answer>, took: Duration) {
        let us = took.as_micros().min(u128::from(u32::MAX)) as u32;
        let mut p = self.lock();
        match answer {
            Some(Answer { status, socket, .. }) => {
                if let Some(i) = socket {
                    *p.sockets.entry(i).or_default() += 1;
                    *p.window_sockets.entry(i).or_default() += 1;
                }
                *p.statuses.entry(status).or_default() += 1;
                if p.latencies_us.len() < MAX_COUNT as usize {
                    p.latencies_us.push(us);
                }
                p.window.push(us);
                if status >= 400 {
                    p.window_failed += 1;
                }
            }
            None => {
                p.errors += 1;
                p.window_failed += 1;
            }
        }
    }

    /// Mark the run over and wake whoever waits for it.
    fn end(&self) {
        {
            let mut p = self.lock();
            let elapsed = self.started.elapsed();
            let planned = self.spec.duration_ms.map(Duration::from_millis);
            p.elapsed = Some(planned.map_or(elapsed, |d| elapsed.min(d)));
            p.state = Some(if self.stop.load(Ordering::Relaxed) {
                LoadState::Stopped
            } else {
                LoadState::Done
            });
        }
        // Saved before anyone waiting is told: a caller that waited finds the file.
        self.save();
        self.ended.notify_waiters();
    }

    fn point(&self, since_last: Duration) {
        // Sampled outside the progress lock: the probe takes the pool's own lock.
        let (admission, daemons) = self.extras.probe.as_ref().map(|probe| probe()).unwrap_or_default();
        let mut p = self.lock();
        let admission = admission.map(|mut a| {
            let totals = (a.overflow_drops, a.timeout_drops);
            a.overflow_drops = totals.0.saturating_sub(p.drops.0);
            a.timeout_drops = totals.1.saturating_sub(p.drops.1);
            p.drops = totals;
            a
        });
        let mut window = std::mem::take(&mut p.window);
        window.sort_unstable();
        let failed = std::mem::take(&mut p.window_failed);
        let sockets = std::mem::take(&mut p.window_sockets);
        let secs = since_last.as_secs_f64().max(1e-3);
        let point = LoadPoint {
            t_ms: self.started.elapsed().as_millis() as u64,
            rps: window.len() as f64 / secs,
            p50_ms: percentile_ms(&window, 50.0),
            p95_ms: percentile_ms(&window, 95.0),
            p99_ms: percentile_ms(&window, 99.0),
            failed,
            sockets,
            admission,
            daemons,
        };
        p.series.push(point);
        // A 5-minute run at 2 points a second is 600 points; keep the chart bounded anyway.
        if p.series.len() > 2000 {
            p.series.remove(0);
        }
    }
}

impl LoadSummary {
    /// The summary as `fastfn bench` prints it (and the dashboard shows it).
    pub fn render(&self, spec: &LoadSpec) -> String {
        let statuses: Vec<String> = self.statuses.iter().map(|(s, n)| format!("{s}: {n}")).collect();
        format!(
            "{} {}  concurrency {}{}\n  requests  {} in {:.2} s ({} without an answer)\n  req/s     {:.1}\n  latency   p50 {:.2} ms  p95 {:.2} ms  p99 {:.2} ms  max {:.2} ms\n  statuses  {}\n",
            spec.method.as_deref().unwrap_or("GET"),
            spec.path,
            spec.concurrency,
            spec.rate.map(|r| format!("  rate {r}/s")).unwrap_or_default(),
            self.requests,
            self.duration_ms as f64 / 1000.0,
            self.errors,
            self.rps,
            self.p50_ms,
            self.p95_ms,
            self.p99_ms,
            self.max_ms,
            if statuses.is_empty() { "none".to_string() } else { statuses.join(", ") },
        )
    }
}

impl LoadRun {
    /// The whole summary, as `fastfn bench` prints it: [`LoadSummary::render`], then what the
    /// engine saw during the run (admission against the limits, drops by reason, each
    /// daemon's peak CPU and memory), when it saw any.
    pub fn render(&self) -> String {
        let mut out = self.summary.render(&self.spec);
        let admissions: Vec<&AdmissionPoint> = self.series.iter().filter_map(|p| p.admission.as_ref()).collect();
        if let Some(last) = admissions.last() {
            let peak_active = admissions.iter().map(|a| a.active).max().unwrap_or(0);
            let peak_queued = admissions.iter().map(|a| a.queued).max().unwrap_or(0);
            let overflow: u64 = admissions.iter().map(|a| a.overflow_drops).sum();
            let timeout: u64 = admissions.iter().map(|a| a.timeout_drops).sum();
            let workers = last.max_workers.map_or("unlimited".to_string(), |w| w.to_string());
            out.push_str(&format!(
                "  admission peak {peak_active} running (max_workers {workers}), {peak_queued} queued (max_queue {}); dropped {overflow} queue full, {timeout} queue timeout\n",
                last.max_queue
            ));
        }
        let mut peaks: BTreeMap<usize, (u32, f32, u64)> = BTreeMap::new();
        for d in self.series.iter().flat_map(|p| &p.daemons) {
            let e = peaks.entry(d.socket).or_insert((d.pid, 0.0, 0));
            e.0 = d.pid;
            e.1 = e.1.max(d.cpu_percent);
            e.2 = e.2.max(d.rss_bytes);
        }
        for (socket, (pid, cpu, rss)) in peaks {
            out.push_str(&format!(
                "  daemon    socket {socket} (pid {pid}) peak cpu {cpu:.0} %  rss {:.1} MB\n",
                rss as f64 / 1_048_576.0
            ));
        }
        out
    }
}

/// Nearest-rank percentile of sorted microseconds, in milliseconds.
pub fn percentile_ms(sorted_us: &[u32], pct: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let rank = ((pct / 100.0) * sorted_us.len() as f64).ceil() as usize;
    f64::from(sorted_us[rank.clamp(1, sorted_us.len()) - 1]) / 1000.0
}

/// Start a run against `addr` (the engine's own listener, reached on loopback).
pub fn start(id: u64, spec: LoadSpec, addr: SocketAddr, extras: Extras) -> Arc<Run> {
    let run = Arc::new(Run {
        id,
        spec,
        started_ms: crate::clock::epoch_millis(),
        started: Instant::now(),
        stop: AtomicBool::new(false),
        tickets: AtomicU64::new(0),
        progress: Mutex::new(Progress::default()),
        ended: tokio::sync::Notify::new(),
        extras,
    });
    // The drop counters start where the pool is now: the first point counts this run's only.
    if let Some((Some(a), _)) = run.extras.probe.as_ref().map(|probe| probe()) {
        run.lock().drops = (a.overflow_drops, a.timeout_drops);
    }
    let target = loopback(addr);
    let spec = &run.spec;
    let count = match (spec.count, spec.duration_ms) {
        (None, None) => Some(DEFAULT_COUNT),
        (c, _) => c,
    };
    let deadline = spec.duration_ms.map(|ms| run.started + Duration::from_millis(ms));
    let driver = run.clone();
    // The load runs on its own threads (two, as `wrk -t2`), not on the engine's runtime: a
    // client sharing the server's worker threads would measure itself as much as the server.
    let spawned = std::thread::Builder::new().name("fastfn-lab".into()).spawn(move || {
        match tokio::runtime::Builder::new_multi_thread()
            .worker_threads(LOAD_THREADS)
            .thread_name("fastfn-lab-load")
            .enable_all()
            .build()
        {
            Ok(rt) => rt.block_on(drive(driver, target, count, deadline)),
            Err(_) => driver.end(),
        }
    });
    if spawned.is_err() {
        run.end();
    }
    run
}

const LOAD_THREADS: usize = 2;

async fn drive(driver: Arc<Run>, target: SocketAddr, count: Option<u64>, deadline: Option<Instant>) {
    let workers: Vec<_> = (0..driver.spec.concurrency)
        .map(|_| tokio::spawn(worker(driver.clone(), target, count, deadline)))
        .collect();
    {
        let ticker = {
            let run = driver.clone();
            tokio::spawn(async move {
                let mut last = Instant::now();
                loop {
                    tokio::time::sleep(TICK).await;
                    run.point(last.elapsed());
                    last = Instant::now();
                }
            })
        };
        for w in workers {
            let _ = w.await;
        }
        ticker.abort();
        driver.point(TICK);
        driver.end();
    }
}

/// The engine's own address as a loopback one (a wildcard listener is reached on 127.0.0.1 or
/// ::1): the lab never sends load anywhere else.
fn loopback(addr: SocketAddr) -> SocketAddr {
    let ip = match addr.ip() {
        std::net::IpAddr::V4(_) => std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        std::net::IpAddr::V6(_) => std::net::IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
    };
    SocketAddr::new(ip, addr.port())
}

/// One keep-alive HTTP/1.1 connection with a hand-rolled exchange: the request's bytes are
/// built once per worker and the answer is parsed with `httparse`, as wrk does, so the
/// generator costs little beside the server it measures.
struct Conn {
    stream: tokio::net::TcpStream,
    buf: bytes::BytesMut,
}

async fn connect(addr: SocketAddr) -> Option<Conn> {
    let stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    let _ = stream.set_nodelay(true);
    Some(Conn {
        stream,
        buf: bytes::BytesMut::with_capacity(16 * 1024),
    })
}

/// What one exchange learnt: the status, the serving socket when the answer names it, and
/// whether the connection stays open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Answer {
    status: u16,
    socket: Option<u16>,
    keep: bool,
}

/// How the answer's body ends.
enum Framing {
    Length(usize),
    Chunked,
    Close,
}

impl Conn {
    async fn fill(&mut self) -> Option<()> {
        use tokio::io::AsyncReadExt;
        match self.stream.read_buf(&mut self.buf).await {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(()),
        }
    }

    /// Send `request`, read the whole answer; its status and whether the connection stays.
    async fn exchange(&mut self, request: &[u8], head_only: bool) -> Option<Answer> {
        use tokio::io::AsyncWriteExt;
        self.stream.write_all(request).await.ok()?;
        let (status, socket, head_len, framing, keep) = loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut resp = httparse::Response::new(&mut headers);
            match resp.parse(&self.buf) {
                Ok(httparse::Status::Complete(n)) => {
                    let status = resp.code?;
                    let mut framing = Framing::Close;
                    let mut keep = resp.version == Some(1);
                    let mut socket = None;
                    for h in resp.headers.iter() {
                        if h.name.eq_ignore_ascii_case("content-length") {
                            let len = std::str::from_utf8(h.value).ok()?.trim().parse().ok()?;
                            framing = Framing::Length(len);
                        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                            framing = Framing::Chunked;
                        } else if h.name.eq_ignore_ascii_case("connection") {
                            keep = !h.value.eq_ignore_ascii_case(b"close");
                        } else if h.name.eq_ignore_ascii_case("x-fn-runtime-socket-index") {
                            socket = std::str::from_utf8(h.value).ok().and_then(|v| v.trim().parse().ok());
                        }
                    }
                    if head_only || matches!(status, 204 | 304) || (100..200).contains(&status) {
                        framing = Framing::Length(0);
                    }
                    break (status, socket, n, framing, keep);
                }
                Ok(httparse::Status::Partial) => self.fill().await?,
                Err(_) => return None,
            }
        };
        let _ = self.buf.split_to(head_len);
        match framing {
            Framing::Length(len) => {
                while self.buf.len() < len {
                    self.fill().await?;
                }
                let _ = self.buf.split_to(len);
                Some(Answer { status, socket, keep })
            }
            Framing::Chunked => loop {
                match httparse::parse_chunk_size(&self.buf) {
                    Ok(httparse::Status::Complete((n, size))) => {
                        let size = usize::try_from(size).ok()?;
                        // The chunk, its CRLF (and, after the last, the final CRLF).
                        let whole = n + size + 2;
                        while self.buf.len() < whole {
                            self.fill().await?;
                        }
                        let _ = self.buf.split_to(whole);
                        if size == 0 {
                            return Some(Answer { status, socket, keep });
                        }
                    }
                    Ok(httparse::Status::Partial) => self.fill().await?,
                    Err(_) => return None,
                }
            },
            Framing::Close => {
                while self.fill().await.is_some() {}
                self.buf.clear();
                Some(Answer {
                    status,
                    socket,
                    keep: false,
                })
            }
        }
    }
}

/// The request's bytes, built once per worker.
fn request_bytes(spec: &LoadSpec, method: &Method, host: &str) -> Vec<u8> {
    let body = spec.body.as_deref().unwrap_or("");
    let mut out = format!(
        "{method} {} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: fastfn-lab\r\n",
        spec.path
    );
    if !body.is_empty() || !matches!(*method, Method::GET | Method::HEAD) {
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    out.push_str("\r\n");
    out.push_str(body);
    out.into_bytes()
}

async fn worker(run: Arc<Run>, addr: SocketAddr, count: Option<u64>, deadline: Option<Instant>) {
    let spec = &run.spec;
    let method = spec.method().unwrap_or(Method::GET);
    let request = request_bytes(spec, &method, &addr.to_string());
    let head_only = method == Method::HEAD;
    let mut conn: Option<Conn> = None;
    while let Some(k) = run.ticket(count, deadline) {
        if let Some(rate) = spec.rate {
            let at = run.started + Duration::from_secs_f64(k as f64 / rate);
            if deadline.is_some_and(|d| at >= d) {
                break;
            }
            tokio::time::sleep_until(at).await;
        }
        let started = Instant::now();
        if conn.is_none() {
            conn = connect(addr).await;
        }
        let Some(c) = conn.as_mut() else {
            run.record(None, started.elapsed());
            // Nothing listens (the engine is stopping): no point in spinning.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        // A timed run ends at its deadline, as wrk's does: a request still in flight then is
        // dropped, not counted (it would stretch the run and skew requests/s).
        let answer = match deadline {
            Some(d) => match tokio::time::timeout_at(d, c.exchange(&request, head_only)).await {
                Ok(answer) => answer,
                Err(_) => break,
            },
            None => c.exchange(&request, head_only).await,
        };
        if !answer.is_some_and(|a| a.keep) {
            conn = None;
        }
        run.record(answer, started.elapsed());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(path: &str) -> LoadSpec {
        LoadSpec {
            path: path.into(),
            method: None,
            count: Some(10),
            duration_ms: None,
            concurrency: 2,
            rate: None,
            body: None,
        }
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<u32> = (1..=100).map(|ms| ms * 1000).collect();
        assert_eq!(percentile_ms(&v, 50.0), 50.0);
        assert_eq!(percentile_ms(&v, 95.0), 95.0);
        assert_eq!(percentile_ms(&v, 99.0), 99.0);
        assert_eq!(percentile_ms(&[], 99.0), 0.0);
        assert_eq!(percentile_ms(&[7000], 1.0), 7.0);
    }

    #[test]
    fn specs_stay_in_bounds_and_off_the_admin_api() {
        assert_eq!(spec("/hello").validate(), Ok(()));
        assert_eq!(spec("/_fn/health").validate(), Err(LoadError::Path));
        assert_eq!(spec("/console").validate(), Err(LoadError::Path));
        assert_eq!(spec("http://example.com/").validate(), Err(LoadError::Path));
        assert_eq!(spec("//example.com/").validate(), Err(LoadError::Path));
        assert_eq!(spec("/_fnord").validate(), Ok(()));
        let wide = LoadSpec {
            concurrency: 257,
            ..spec("/x")
        };
        assert_eq!(wide.validate(), Err(LoadError::Concurrency));
        let fast = LoadSpec {
            rate: Some(0.0),
            ..spec("/x")
        };
        assert_eq!(fast.validate(), Err(LoadError::Rate));
    }

    /// The hand-rolled exchange reads length-framed and chunked answers whole, keeps the
    /// connection, and sees `Connection: close`.
    #[tokio::test]
    async fn exchange_reads_both_framings() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let answers: [&[u8]; 3] = [
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Fn-Runtime-Socket-Index: 2\r\n\r\nhello",
                b"HTTP/1.1 503 Busy\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
                b"HTTP/1.1 404 No\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            ];
            let mut buf = [0u8; 1024];
            for a in answers {
                let _ = s.read(&mut buf).await.unwrap();
                s.write_all(a).await.unwrap();
            }
        });
        let mut c = connect(addr).await.unwrap();
        let req = request_bytes(&spec("/x"), &Method::GET, &addr.to_string());
        assert!(req.starts_with(b"GET /x HTTP/1.1\r\nHost: 127.0.0.1:"));
        let answer = |status, socket, keep| Some(Answer { status, socket, keep });
        assert_eq!(c.exchange(&req, false).await, answer(200, Some(2), true));
        assert_eq!(c.exchange(&req, false).await, answer(503, None, true));
        assert_eq!(c.exchange(&req, false).await, answer(404, None, false));
        assert!(c.buf.is_empty());
    }

    #[test]
    fn loopback_only() {
        let wild: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        assert_eq!(loopback(wild), "127.0.0.1:8080".parse().unwrap());
        let lan: SocketAddr = "192.168.1.4:81".parse().unwrap();
        assert_eq!(loopback(lan), "127.0.0.1:81".parse().unwrap());
    }
}
