//! The request inspector: every request the gateway answers (function calls, static files,
//! admin calls and the gateway's own refusals) is recorded with a reason code and, for the
//! answers the engine produced itself, a one-line *why*; the log is read at `/_fn/requests`,
//! replayed with edits and diffed, and exported as curl or HAR (see `admin`).
//!
//! Cost model (docs/inspector.md): every request writes one [`Entry`] into a bounded ring
//! under one uncontended lock. An entry is small and built from parts the request already
//! holds (refcounted `Uri`, the route's `Arc<Target>`, the request id of a function call);
//! a *why* is formatted only for non-2xx engine answers, and the nearest routes of a `no_route`
//! are computed when the log is read, not when the 404 is sent. Headers and bodies are
//! captured only while capture is on: a dashboard is connected (live event receivers),
//! `FN_INSPECT_CAPTURE=always`, or the request is a replay.

pub mod admin;
pub mod diff;
pub mod export;
pub mod live;
pub mod logs;
pub mod saved;
pub mod secrets;
mod why;

pub use why::{
    admission_why, call_failure_why, handler_error_why, method_mismatch, private_file, refusal_why, shadowing,
    Admission,
};

use crate::events::{RequestRecord, Stages};
use crate::routing::Target;
use crate::runtime::RuntimeKind;
use bytes::Bytes;
use hyper::{HeaderMap, Method, Uri};
use serde::Serialize;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Requests kept by default (`FN_INSPECT_REQUESTS`).
pub const DEFAULT_CAPACITY: usize = 5000;
/// Captured body bytes kept per body by default (`FN_INSPECT_BODY_BYTES`).
pub const DEFAULT_BODY_BYTES: usize = 64 * 1024;
/// Handler stdout/stderr kept per request.
pub const OUTPUT_BYTES: usize = 16 * 1024;
/// Requests captured per [`CAPTURE_WINDOW_MS`] while a dashboard is open (`auto`): 1,000 a
/// second. The dashboard lists the newest 500 and a person opens a few; capturing every
/// request of a load test cost a share of the engine's throughput that grew with the rate.
pub const CAPTURE_BUDGET: u64 = 250;
pub const CAPTURE_WINDOW_MS: u64 = 250;
/// The request header that marks a replay (set by the engine's own replay client).
pub const REPLAY_HEADER: &str = "x-fn-replay";

/// When headers and bodies are captured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CaptureMode {
    /// While a dashboard listens to live events (the default).
    #[default]
    Auto,
    /// Always (`FN_INSPECT_CAPTURE=always`): tools and tests that replay without a dashboard.
    Always,
    /// Never, except replays (`FN_INSPECT_CAPTURE=off`).
    Off,
}

/// The inspector's settings, from the environment (`Settings::inspect`).
#[derive(Debug, Clone)]
pub struct InspectSettings {
    /// `FN_DEBUG_HEADERS=1`: debug headers (and `X-Fn-Reason`) on every answer of the project,
    /// also those no function gave.
    pub debug_headers: bool,
    /// `FN_INSPECT_REQUESTS`: how many requests the log keeps (0 turns the log off).
    pub capacity: usize,
    /// `FN_INSPECT_BODY_BYTES`: bytes kept of each captured body (longer ones are cut and
    /// marked).
    pub body_bytes: usize,
    /// `FN_INSPECT_CAPTURE`: `auto` (default), `always` or `off`.
    pub capture: CaptureMode,
}

impl Default for InspectSettings {
    fn default() -> Self {
        InspectSettings {
            debug_headers: false,
            capacity: DEFAULT_CAPACITY,
            body_bytes: DEFAULT_BODY_BYTES,
            capture: CaptureMode::Auto,
        }
    }
}

impl InspectSettings {
    /// Read `FN_DEBUG_HEADERS`, `FN_INSPECT_REQUESTS`, `FN_INSPECT_BODY_BYTES` and
    /// `FN_INSPECT_CAPTURE`; a value that does not parse is an error naming the variable.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<InspectSettings, (&'static str, String)> {
        let mut s = InspectSettings::default();
        if let Some(v) = env("FN_DEBUG_HEADERS") {
            s.debug_headers = match v.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => true,
                "0" | "false" | "no" | "off" | "" => false,
                _ => return Err(("FN_DEBUG_HEADERS", format!("expected 0 or 1, got `{v}`"))),
            };
        }
        let count = |name: &'static str, v: String| {
            v.trim()
                .parse::<usize>()
                .map_err(|_| (name, format!("expected a count, got `{v}`")))
        };
        if let Some(v) = env("FN_INSPECT_REQUESTS") {
            s.capacity = count("FN_INSPECT_REQUESTS", v)?;
        }
        if let Some(v) = env("FN_INSPECT_BODY_BYTES") {
            s.body_bytes = count("FN_INSPECT_BODY_BYTES", v)?;
        }
        if let Some(v) = env("FN_INSPECT_CAPTURE") {
            s.capture = match v.trim() {
                "" | "auto" => CaptureMode::Auto,
                "always" | "1" => CaptureMode::Always,
                "off" | "0" => CaptureMode::Off,
                _ => return Err(("FN_INSPECT_CAPTURE", format!("expected auto, always or off, got `{v}`"))),
            };
        }
        Ok(s)
    }
}

/// Why a request got its answer: a stable code the dashboard, `X-Fn-Reason` and tests use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, ts_rs::TS)]
#[ts(export, rename = "RequestReason")]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// A function answered (any status it chose below 500).
    #[default]
    Ok,
    /// A static file (or the SPA fallback) answered.
    Asset,
    /// `/_fn/*`, `/console` and the public aliases.
    Admin,
    /// `home.redirect` / `FN_HOME_REDIRECT`.
    Redirect,
    /// The built-in landing page at `/`.
    Landing,
    NoRoute,
    MethodMismatch,
    /// A 404 for a path that names a handler file that is private (`_x.py`, a module).
    PrivateFile,
    /// Served, but another runtime's file for the same URL is shadowed by this one (told when
    /// the log is read).
    Shadowed,
    HostNotAllowed,
    Ambiguous,
    BodyTooLarge,
    PoolFull,
    QueueTimeout,
    AllSocketsDown,
    RuntimeUnavailable,
    /// The handler failed (a 5xx from the handler or its runtime).
    HandlerError,
    /// The reply could not be used (not JSON, bad status, invalid base64…).
    BadReply,
    /// The exchange with the daemon broke after the request was sent.
    RuntimeError,
    Timeout,
    DepsInstalling,
    DepsFailed,
    BuildFailed,
    /// Refused at the edge: bad method token, invalid path, header line too long, bad body.
    InvalidRequest,
    Forbidden,
    /// A switched-off surface (`docs disabled`, …).
    Disabled,
    Internal,
}

impl Reason {
    pub fn code(self) -> &'static str {
        match self {
            Reason::Ok => "ok",
            Reason::Asset => "asset",
            Reason::Admin => "admin",
            Reason::Redirect => "redirect",
            Reason::Landing => "landing",
            Reason::NoRoute => "no_route",
            Reason::MethodMismatch => "method_mismatch",
            Reason::PrivateFile => "private_file",
            Reason::Shadowed => "shadowed",
            Reason::HostNotAllowed => "host_not_allowed",
            Reason::Ambiguous => "ambiguous",
            Reason::BodyTooLarge => "body_too_large",
            Reason::PoolFull => "pool_full",
            Reason::QueueTimeout => "queue_timeout",
            Reason::AllSocketsDown => "all_sockets_down",
            Reason::RuntimeUnavailable => "runtime_unavailable",
            Reason::HandlerError => "handler_error",
            Reason::BadReply => "bad_reply",
            Reason::RuntimeError => "runtime_error",
            Reason::Timeout => "timeout",
            Reason::DepsInstalling => "deps_installing",
            Reason::DepsFailed => "deps_failed",
            Reason::BuildFailed => "build_failed",
            Reason::InvalidRequest => "invalid_request",
            Reason::Forbidden => "forbidden",
            Reason::Disabled => "disabled",
            Reason::Internal => "internal",
        }
    }

    /// The reason of an engine failure, with a generic why (callers that know limits or
    /// states add them).
    pub fn of(failure: &crate::rescue::Failure) -> Reason {
        use crate::rescue::Failure as F;
        match failure {
            F::NotFound | F::UnknownFunction => Reason::NoRoute,
            F::MethodNotAllowed { .. } | F::InvokeMethodNotAllowed { .. } => Reason::MethodMismatch,
            F::Disabled(_) | F::ConsoleNotBuilt { .. } => Reason::Disabled,
            F::Ambiguous => Reason::Ambiguous,
            F::PayloadTooLarge => Reason::BodyTooLarge,
            F::HostNotAllowed => Reason::HostNotAllowed,
            F::BadRequest(_) => Reason::InvalidRequest,
            F::Forbidden(_) => Reason::Forbidden,
            F::Overflow { .. } => Reason::PoolFull,
            F::QueueTimeout { .. } => Reason::QueueTimeout,
            F::InvalidReply | F::InvalidBase64 => Reason::BadReply,
            F::RuntimeError(_) => Reason::RuntimeError,
            F::RuntimeDown => Reason::AllSocketsDown,
            F::RuntimeUnavailable => Reason::RuntimeUnavailable,
            F::Timeout => Reason::Timeout,
            F::DepsPreparing => Reason::DepsInstalling,
            F::DepsFailed { .. } | F::DepsUnresolved(_) => Reason::DepsFailed,
            F::BuildFailed { .. } => Reason::BuildFailed,
            F::Internal => Reason::Internal,
            F::EdgeProxy(_) => Reason::BadReply,
            F::Secret(_) | F::Job(_) => Reason::InvalidRequest,
            F::Unauthorized(_) => Reason::Forbidden,
        }
    }
}

/// What kind of answer a request got (the dashboard filters admin calls apart).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, ts_rs::TS)]
#[ts(export, rename = "RequestKind")]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Function,
    Asset,
    Admin,
    /// Answered by the gateway itself (refusals, redirects, the landing page).
    #[default]
    Gateway,
}

/// What the gateway learns about a request while it serves it: filled along the way, turned
/// into an [`Entry`] when the response is ready. Built on the stack; nothing in it allocates
/// unless the request is a function call (which already has these values) or capture is on.
#[derive(Debug, Default)]
pub struct Note {
    pub kind: Kind,
    /// `None`: decided from the kind and status when recorded.
    pub reason: Option<Reason>,
    pub why: Option<String>,
    pub target: Option<Arc<Target>>,
    pub request_id: Option<String>,
    /// 1-based socket that answered.
    pub socket_index: Option<usize>,
    pub cold: bool,
    pub queued: bool,
    pub stages: Stages,
    /// The function asked for debug headers (`include_debug_headers`).
    pub debug: bool,
    /// Capture headers and bodies of this request (decided when it arrived).
    pub capture: bool,
    pub request_body: Option<Bytes>,
    /// The request's headers, kept when the gateway is done with them (capture on).
    pub request_headers: Option<HeaderText>,
    /// The handler's output of this call.
    pub stdout: Option<String>,
    pub stderr: Option<String>,
    /// The replay token of a request the engine sent to itself.
    pub replay: Option<String>,
    /// When the request arrived (the start of the `route` stage).
    pub arrived: Option<tokio::time::Instant>,
    /// When the reply was parsed (the start of the `respond` stage).
    pub reply_done: Option<tokio::time::Instant>,
    /// The numbers of an admission refusal (worded when read).
    pub admission: Option<Admission>,
    /// What started a call that is not an HTTP request (`job`, `schedule`, `keep_warm`).
    pub trigger: Option<&'static str>,
    /// The lab faults this call met (`None` when no fault was set).
    pub fault: Option<String>,
    /// Engine log lines written while the request was served (empty: no allocation).
    pub logs: Vec<logs::LogLine>,
}

impl Note {
    /// Record a failure the engine answered with (generic why).
    pub fn failed(&mut self, failure: &crate::rescue::Failure) {
        let reason = Reason::of(failure);
        self.reason = Some(reason);
        if self.why.is_none() {
            self.why = generic_why(failure);
        }
    }
}

/// The reason and why of a call the engine made itself (a job, a schedule run), as the
/// gateway gives them for an HTTP call: the failure's, or `handler_error` for a 5xx reply;
/// `(None, None)` for an answer the handler chose below 500.
pub(crate) fn verdict(
    shared: &crate::engine::Shared,
    target: &Target,
    outcome: &crate::invoke::Outcome,
) -> (Option<Reason>, Option<String>) {
    match &outcome.result {
        Err(failure) => {
            let why = call_failure_why(shared, target, failure, &outcome.timings).or_else(|| generic_why(failure));
            (Some(Reason::of(failure)), why)
        }
        Ok(reply) if reply.status >= 500 => (
            Some(Reason::HandlerError),
            Some(handler_error_why(
                reply.status,
                &reply.body,
                reply.stderr.as_deref(),
                &shared.settings.functions_root,
            )),
        ),
        Ok(_) => (None, None),
    }
}

/// The why of a failure that needs no context (the gateway adds limits and states where it
/// has them).
fn generic_why(failure: &crate::rescue::Failure) -> Option<String> {
    use crate::rescue::Failure as F;
    Some(match failure {
        // Computed when read (nearest routes).
        F::NotFound => return None,
        F::UnknownFunction => "/_fn/invoke names no known function or version".into(),
        F::MethodNotAllowed { allow } => format!("the named target allows {allow} only (405 with Allow)"),
        F::InvokeMethodNotAllowed { allowed } => format!("the function allows {} only", allowed.join(", ")),
        F::Disabled(what) => format!("{what}: the surface is switched off by its FN_* setting"),
        F::Ambiguous => "several functions of one runtime claim this URL with the same priority".into(),
        F::PayloadTooLarge => "the body is larger than the function's max_body_bytes".into(),
        F::HostNotAllowed => "the Host is not in the route's allow_hosts (or not a loopback name for /_fn)".into(),
        F::BadRequest(what) => format!("refused at the edge: {what}"),
        F::Forbidden(what) => format!("refused by the admin guard: {what}"),
        F::Overflow { .. } => "the function's worker pool and its queue are full".into(),
        F::QueueTimeout { .. } => "waited in the function's queue past queue_timeout_ms".into(),
        F::InvalidReply => "the handler's reply is not a valid response (status, headers or body)".into(),
        F::InvalidBase64 => "the reply's body_base64 is not valid base64".into(),
        F::RuntimeError(e) => format!("the connection to the daemon broke during the call: {e}"),
        F::RuntimeDown => "every socket of the runtime is marked down".into(),
        F::RuntimeUnavailable => "no socket of the runtime could be reached".into(),
        F::Timeout => "no reply within the function's timeout_ms".into(),
        F::DepsPreparing => "the function's dependencies are being installed".into(),
        F::DepsFailed { package, .. } => match package {
            Some(p) => format!("the dependency install failed on {p}"),
            None => "the dependency install failed".into(),
        },
        F::DepsUnresolved(m) => m.clone(),
        F::BuildFailed { runtime, output } => {
            format!("{runtime} build failed: {}", output.lines().next().unwrap_or(""))
        }
        F::Internal => "an internal error of the engine".into(),
        F::ConsoleNotBuilt { hint } => format!("the dashboard is not built: {hint}"),
        F::EdgeProxy(e) => format!("the handler's proxy reply could not be carried out: {e}"),
        F::Secret(e) => format!("/_fn/secrets refused the request: {e}"),
        F::Job(e) => format!("/_fn/jobs refused the request: {e}"),
        F::Unauthorized(what) => format!("the console asks for a session: {what}"),
    })
}

/// Headers and bodies of a request, kept while capture is on.
///
/// Headers are kept as [`HeaderText`]: capture runs for every request while a dashboard is
/// open, reading runs when someone opens one.
#[derive(Debug, Clone, Default)]
pub struct Captured {
    pub request_headers: HeaderText,
    pub request_body: Bytes,
    /// The request body was longer than the cap (it is cut).
    pub request_cut: bool,
    pub response_headers: HeaderText,
    pub response_body: Bytes,
    pub response_cut: bool,
}

/// Headers as one buffer of `name:value\n` lines: one allocation and one copy per header
/// map. Not the `HeaderMap` itself: its values share hyper's read buffer, and keeping them
/// for thousands of requests kept those buffers alive (hyper then allocated fresh ones), and a
/// map is several allocations to make and to free. Names hold no `:` and values no newline
/// (the `http` crate refuses both), so the lines split back unambiguously.
#[derive(Debug, Clone, Default)]
pub struct HeaderText(Box<[u8]>);

impl HeaderText {
    pub fn of(h: &HeaderMap) -> HeaderText {
        let len = h.iter().map(|(k, v)| k.as_str().len() + v.len() + 2).sum();
        let mut buf = Vec::with_capacity(len);
        for (k, v) in h {
            buf.extend_from_slice(k.as_str().as_bytes());
            buf.push(b':');
            buf.extend_from_slice(v.as_bytes());
            buf.push(b'\n');
        }
        HeaderText(buf.into_boxed_slice())
    }

    /// (name, value) pairs, in order (values read as UTF-8, lossily).
    pub fn pairs(&self) -> Vec<(String, String)> {
        self.0
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .filter_map(|l| {
                let at = l.iter().position(|b| *b == b':')?;
                Some((
                    String::from_utf8_lossy(&l[..at]).into_owned(),
                    String::from_utf8_lossy(&l[at + 1..]).into_owned(),
                ))
            })
            .collect()
    }
}

impl Captured {
    pub fn request_pairs(&self) -> Vec<(String, String)> {
        self.request_headers.pairs()
    }

    pub fn response_pairs(&self) -> Vec<(String, String)> {
        self.response_headers.pairs()
    }
}

/// One request in the ring.
#[derive(Debug)]
pub struct Entry {
    pub seq: u64,
    pub ts: u64,
    pub method: Method,
    pub uri: Uri,
    pub status: u16,
    pub latency_us: u64,
    pub note: Note,
    pub captured: Option<Box<Captured>>,
}

impl Entry {
    /// `req-…` for function calls, `g-<seq>` for everything else.
    pub fn id(&self) -> String {
        match &self.note.request_id {
            Some(id) => id.clone(),
            None => format!("g-{}", self.seq),
        }
    }

    pub fn reason(&self) -> Reason {
        Entry::reason_of(&self.note)
    }

    /// The reason a note gives: its own, else what its kind says.
    pub fn reason_of(note: &Note) -> Reason {
        note.reason.unwrap_or(match note.kind {
            Kind::Admin => Reason::Admin,
            Kind::Asset => Reason::Asset,
            _ => Reason::Ok,
        })
    }

    /// The record as tools and the dashboard read it. With `ctx` (the route map now served
    /// and the functions root), what is worked out when read: a 404's method mismatch,
    /// private file or nearest routes, and the files a served route shadows. Secrets are
    /// masked unless `reveal`.
    pub fn record(&self, ctx: Option<(&crate::routing::RouteMap, &std::path::Path)>, reveal: bool) -> RequestRecord {
        let mut reason = self.reason();
        let why = match (&self.note.why, reason, ctx) {
            (Some(w), _, _) => Some(w.clone()),
            (None, Reason::NoRoute, Some((map, root))) => {
                // Decided now when nobody looked while it was answered (see `gateway`).
                let path = self.uri.path();
                if let Some(why) = method_mismatch(map, self.method.as_str(), path, None) {
                    reason = Reason::MethodMismatch;
                    Some(why)
                } else if let Some(why) = private_file(root, path) {
                    reason = Reason::PrivateFile;
                    Some(why)
                } else {
                    Some(no_route_why(map, path))
                }
            }
            (None, _, _) if self.note.admission.is_some() => match (&self.note.target, &self.note.admission) {
                (Some(t), Some(a)) => admission_why(reason, t, a),
                _ => None,
            },
            (None, Reason::Ok, Some((map, _))) if self.note.kind == Kind::Function => {
                let why = self.note.target.as_deref().and_then(|t| shadowing(map, t));
                if why.is_some() {
                    reason = Reason::Shadowed;
                }
                why
            }
            (None, Reason::NoRoute, None) => Some(format!("no route matches {}", self.uri.path())),
            _ => None,
        };
        let t = self.note.target.as_deref();
        let headers = self
            .captured
            .as_ref()
            .map(|c| secrets::mask_headers(&c.response_pairs(), reveal))
            .unwrap_or_default();
        RequestRecord {
            summary: self.summary_as(reason, why),
            headers,
            file: t.map(|t| t.entry.clone()),
            version: t.map(|t| t.version.clone().unwrap_or_else(|| "default".into())),
            stdout: self.note.stdout.clone(),
            stderr: self.note.stderr.clone(),
            logs: self.note.logs.clone(),
        }
    }
}

impl Entry {
    /// The live stream's view: no headers, output or log lines (read with the detail).
    pub fn summary(&self) -> crate::events::RequestSummary {
        let t = self.note.target.as_deref();
        let reason = self.reason();
        let why = match (&self.note.why, reason) {
            (Some(w), _) => Some(w.clone()),
            (None, Reason::NoRoute) => Some(format!("no route matches {}", self.uri.path())),
            (None, _) => match (t, &self.note.admission) {
                (Some(t), Some(a)) => admission_why(reason, t, a),
                _ => None,
            },
        };
        self.summary_as(reason, why)
    }

    /// The summary with its reason and why decided by the caller.
    fn summary_as(&self, reason: Reason, why: Option<String>) -> crate::events::RequestSummary {
        let t = self.note.target.as_deref();
        crate::events::RequestSummary {
            id: self.id(),
            seq: self.seq,
            ts: self.ts,
            method: self.method.to_string(),
            path: self.uri.path().to_string(),
            query: self.uri.query().map(str::to_string),
            status: self.status,
            reason,
            why,
            kind: self.note.kind,
            latency_us: self.latency_us,
            stages: self.note.stages,
            runtime: t.map(|t| t.runtime),
            function: t.map(|t| t.fn_name.clone()),
            socket_index: self.note.socket_index,
            queued: self.note.queued,
            cold: self.note.cold,
            trigger: self.note.trigger.map(str::to_string),
            fault: self.note.fault.clone(),
            captured: self.captured.is_some(),
            replay: self.note.replay.is_some(),
        }
    }
}

/// "no route matches /x; nearest: /a, /b" (up to three route patterns, by edit distance).
pub fn no_route_why(map: &crate::routing::RouteMap, path: &str) -> String {
    let near = nearest(map.routes().iter().map(|r| r.pattern.as_str()), path, 3);
    if near.is_empty() {
        format!("no route matches {path} (the project has no routes)")
    } else {
        format!("no route matches {path}; nearest: {}", near.join(", "))
    }
}

/// The `n` candidates closest to `path` (Levenshtein over bytes; ties keep map order).
pub fn nearest<'a>(candidates: impl Iterator<Item = &'a str>, path: &str, n: usize) -> Vec<String> {
    let mut scored: Vec<(usize, &str)> = Vec::new();
    for c in candidates {
        if scored.iter().any(|(_, s)| *s == c) {
            continue;
        }
        scored.push((levenshtein(c.as_bytes(), path.as_bytes()), c));
    }
    scored.sort_by_key(|(d, _)| *d);
    scored.into_iter().take(n).map(|(_, c)| c.to_string()).collect()
}

fn levenshtein(a: &[u8], b: &[u8]) -> usize {
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// The bounded log of requests, newest last.
#[derive(Debug)]
pub struct Inspector {
    pub settings: InspectSettings,
    ring: Mutex<Ring>,
    seq: AtomicU64,
    /// The last run of the saved tests (`GET /_fn/tests`).
    pub tests: Mutex<Option<saved::TestRun>>,
    /// The last successful reloads: when (epoch ms) and the files they changed, for a
    /// replay's "files changed since the original".
    reloads: Mutex<VecDeque<(u64, Vec<String>)>>,
    /// The capture budget: the current window (ms since `started` ÷ the window) and the
    /// captures made in it. Approximate under races (a few over the budget at a window's
    /// turn), which is all it needs to be.
    started: tokio::time::Instant,
    capture_window: AtomicU64,
    captured_in_window: AtomicU64,
}

/// The entries, and how many were ever pushed (the live stream's cursor: entries are pushed
/// when answered, not in `seq` order).
#[derive(Debug, Default)]
struct Ring {
    entries: VecDeque<Entry>,
    pushed: u64,
}

/// Reloads remembered for [`Inspector::files_changed_since`].
const RELOADS_KEPT: usize = 200;

impl Inspector {
    pub fn new(settings: InspectSettings) -> Inspector {
        Inspector {
            // Grows to its capacity as requests come (an idle engine keeps no 5,000 slots).
            ring: Mutex::new(Ring::default()),
            seq: AtomicU64::new(0),
            tests: Mutex::new(None),
            reloads: Mutex::new(VecDeque::new()),
            started: tokio::time::Instant::now(),
            capture_window: AtomicU64::new(0),
            captured_in_window: AtomicU64::new(0),
            settings,
        }
    }

    /// Whether to capture headers and bodies of a request arriving at `now`: always with
    /// `always` and for replays; with `auto` while a dashboard is open, within the budget.
    pub fn capturing(&self, dashboard_open: bool, headers: &HeaderMap, now: tokio::time::Instant) -> bool {
        match self.settings.capture {
            CaptureMode::Always => true,
            CaptureMode::Auto if dashboard_open => self.within_budget(now) || headers.contains_key(REPLAY_HEADER),
            _ => headers.contains_key(REPLAY_HEADER),
        }
    }

    fn within_budget(&self, now: tokio::time::Instant) -> bool {
        let window = now.saturating_duration_since(self.started).as_millis() as u64 / CAPTURE_WINDOW_MS;
        if self.capture_window.load(Ordering::Relaxed) != window {
            self.capture_window.store(window, Ordering::Relaxed);
            self.captured_in_window.store(0, Ordering::Relaxed);
        }
        // Spent: a read only (a write per request would bounce the line between cores).
        if self.captured_in_window.load(Ordering::Relaxed) >= CAPTURE_BUDGET {
            return false;
        }
        self.captured_in_window.fetch_add(1, Ordering::Relaxed) < CAPTURE_BUDGET
    }

    /// A successful reload changed these files (root-relative).
    pub fn reloaded(&self, at_ms: u64, files: Vec<String>) {
        let mut r = self.reloads.lock().unwrap_or_else(|p| p.into_inner());
        if r.len() == RELOADS_KEPT {
            r.pop_front();
        }
        r.push_back((at_ms, files));
    }

    /// The files reloads changed after `ts_ms`, sorted, once each.
    pub fn files_changed_since(&self, ts_ms: u64) -> Vec<String> {
        let r = self.reloads.lock().unwrap_or_else(|p| p.into_inner());
        let mut files: Vec<String> = r
            .iter()
            .filter(|(at, _)| *at >= ts_ms)
            .flat_map(|(_, f)| f.iter().cloned())
            .collect();
        files.sort();
        files.dedup();
        files
    }

    pub fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Keep an entry (dropping the oldest past capacity). The live stream reads it from here
    /// (see [`live`]): recording costs the same with a dashboard open as without.
    pub fn push(&self, entry: Entry) {
        if self.settings.capacity == 0 {
            return;
        }
        let old = {
            let mut ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
            let old = if ring.entries.len() >= self.settings.capacity {
                ring.entries.pop_front()
            } else {
                None
            };
            ring.entries.push_back(entry);
            ring.pushed += 1;
            old
        };
        // Freed outside the lock.
        drop(old);
    }

    /// How many entries were ever pushed (a cursor for [`Inspector::summaries_since`]).
    pub fn pushed(&self) -> u64 {
        self.ring.lock().unwrap_or_else(|p| p.into_inner()).pushed
    }

    /// Summaries of the entries pushed after `cursor`, oldest first, at most `max` (the
    /// newest); the number left out (older ones, or ones the ring already dropped); and the
    /// new cursor.
    pub fn summaries_since(&self, cursor: u64, max: usize) -> (Vec<crate::events::RequestSummary>, u64, u64) {
        let ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        let new = ring.pushed.saturating_sub(cursor);
        let take = (new.min(ring.entries.len() as u64) as usize).min(max);
        let skip = ring.entries.len() - take;
        let out: Vec<_> = ring.entries.iter().skip(skip).map(Entry::summary).collect();
        (out, new - take as u64, ring.pushed)
    }

    /// `GET /_fn/dashboard`, the original's figures computed from the request log: function
    /// calls of the last 24 h that the log still holds (`requests_24h`), those answered 5xx
    /// (`errors_24h`), their mean latency, and the calls per 4-hour slot of the UTC day
    /// (`invocations_chart`, the original's labels). The original answers placeholders.
    pub fn dashboard(&self, now_ms: u64) -> serde_json::Value {
        const DAY_MS: u64 = 24 * 3600 * 1000;
        let since = now_ms.saturating_sub(DAY_MS);
        let (mut calls, mut errors, mut latency_us, mut slots) = (0u64, 0u64, 0u64, [0u64; 6]);
        self.with_entries(|entries| {
            for e in entries.filter(|e| e.note.kind == Kind::Function && e.ts >= since) {
                calls += 1;
                errors += u64::from(e.status >= 500);
                latency_us += e.latency_us;
                slots[((e.ts % DAY_MS) / (4 * 3600 * 1000)) as usize] += 1;
            }
        });
        let avg_ms = if calls == 0 {
            0.0
        } else {
            latency_us as f64 / calls as f64 / 1000.0
        };
        serde_json::json!({
            "requests_24h": calls,
            "errors_24h": errors,
            "avg_latency_ms": (avg_ms * 100.0).round() / 100.0,
            "invocations_chart": {
                "labels": ["00:00", "04:00", "08:00", "12:00", "16:00", "20:00"],
                "data": slots,
            },
            "window": {"since_ms": since, "kept": self.settings.capacity},
        })
    }

    /// Run `f` over the entries, newest first.
    pub fn with_entries<R>(&self, f: impl FnOnce(&mut dyn Iterator<Item = &Entry>) -> R) -> R {
        let ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut ring.entries.iter().rev())
    }

    /// Records of the newest `limit` entries (admin calls only with `admin`).
    pub fn records(
        &self,
        limit: usize,
        admin: bool,
        ctx: Option<(&crate::routing::RouteMap, &std::path::Path)>,
        reveal: bool,
    ) -> Vec<RequestRecord> {
        self.with_entries(|it| {
            it.filter(|e| admin || e.note.kind != Kind::Admin)
                .take(limit)
                .map(|e| e.record(ctx, reveal))
                .collect()
        })
    }

    /// Apply `f` to the entry with this id (`req-…` or `g-<seq>`).
    pub fn find<R>(&self, id: &str, f: impl FnOnce(&Entry) -> R) -> Option<R> {
        self.with_entries(|it| {
            for e in it {
                let hit = match &e.note.request_id {
                    Some(r) => r == id,
                    None => id.strip_prefix("g-").and_then(|s| s.parse().ok()) == Some(e.seq),
                };
                if hit {
                    return Some(f(e));
                }
            }
            None
        })
    }
}

/// Cut a captured body to `cap` bytes; says whether it was cut.
pub fn cap_body(body: &Bytes, cap: usize) -> (Bytes, bool) {
    if body.len() > cap {
        (body.slice(..cap), true)
    } else {
        (body.clone(), false)
    }
}

/// Keep at most [`OUTPUT_BYTES`] of a handler's output (at a char boundary).
pub fn cap_output(mut text: String) -> String {
    if text.len() > OUTPUT_BYTES {
        let mut end = OUTPUT_BYTES;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push_str("\n… (cut)");
    }
    text
}

/// Headers as (name, value) text pairs.
pub fn header_pairs(h: &HeaderMap) -> Vec<(String, String)> {
    h.iter()
        .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect()
}

/// The runtime of a record, for filters.
pub fn runtime_of(e: &Entry) -> Option<RuntimeKind> {
    e.note.target.as_ref().map(|t| t.runtime)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: u64, kind: Kind) -> Entry {
        Entry {
            seq,
            ts: 0,
            method: Method::GET,
            uri: format!("/x{seq}?a=1").parse().unwrap(),
            status: 200,
            latency_us: 10,
            note: Note {
                kind,
                ..Note::default()
            },
            captured: None,
        }
    }

    #[test]
    fn the_ring_keeps_the_newest_and_filters_admin_calls() {
        let ins = Inspector::new(InspectSettings {
            capacity: 3,
            ..InspectSettings::default()
        });
        for i in 1..=5 {
            ins.push(entry(i, if i == 4 { Kind::Admin } else { Kind::Function }));
        }
        let paths: Vec<String> = ins
            .records(10, false, None, false)
            .into_iter()
            .map(|r| r.summary.path)
            .collect();
        assert_eq!(paths, vec!["/x5", "/x3"]);
        let all: Vec<u64> = ins
            .records(10, true, None, false)
            .into_iter()
            .map(|r| r.summary.seq)
            .collect();
        assert_eq!(all, vec![5, 4, 3]);
        assert_eq!(ins.records(1, true, None, false).len(), 1);
        assert_eq!(ins.find("g-4", |e| e.reason()), Some(Reason::Admin));
        assert_eq!(ins.find("g-1", |e| e.seq), None, "dropped");
        let off = Inspector::new(InspectSettings {
            capacity: 0,
            ..InspectSettings::default()
        });
        off.push(entry(1, Kind::Function));
        assert!(off.records(10, true, None, false).is_empty());
    }

    #[test]
    fn summaries_since_a_cursor_keep_the_newest_and_count_the_rest() {
        let ins = Inspector::new(InspectSettings {
            capacity: 4,
            ..InspectSettings::default()
        });
        assert_eq!(ins.pushed(), 0);
        for i in 1..=3 {
            ins.push(entry(i, Kind::Function));
        }
        let (s, left_out, cursor) = ins.summaries_since(0, 10);
        assert_eq!(
            (s.iter().map(|r| r.seq).collect::<Vec<_>>(), left_out, cursor),
            (vec![1, 2, 3], 0, 3)
        );
        assert_eq!(s[0].query.as_deref(), Some("a=1"));
        let (s, left_out, cursor) = ins.summaries_since(cursor, 10);
        assert_eq!((s.len(), left_out, cursor), (0, 0, 3), "nothing new");
        // Six more: the ring (4) dropped two of them, and a batch of 3 leaves one more out.
        for i in 4..=9 {
            ins.push(entry(i, Kind::Function));
        }
        let (s, left_out, cursor) = ins.summaries_since(cursor, 3);
        assert_eq!(
            (s.iter().map(|r| r.seq).collect::<Vec<_>>(), left_out, cursor),
            (vec![7, 8, 9], 3, 9)
        );
    }

    #[test]
    fn files_changed_since_a_moment() {
        let ins = Inspector::new(InspectSettings::default());
        ins.reloaded(10, vec!["a.py".into()]);
        ins.reloaded(20, vec!["b.js".into(), "a.py".into()]);
        assert_eq!(ins.files_changed_since(5), vec!["a.py", "b.js"]);
        assert_eq!(ins.files_changed_since(15), vec!["a.py", "b.js"]);
        assert_eq!(ins.files_changed_since(21), Vec::<String>::new());
    }

    #[test]
    fn nearest_routes_by_edit_distance() {
        let routes = ["/hello", "/users/:id", "/health-check", "/orders"];
        assert_eq!(nearest(routes.into_iter(), "/helo", 2), vec!["/hello", "/orders"]);
        assert_eq!(levenshtein(b"kitten", b"sitting"), 3);
        assert_eq!(levenshtein(b"", b"abc"), 3);
    }

    #[test]
    fn settings_read_the_environment_and_refuse_nonsense() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
        };
        let s = InspectSettings::from_env(&env(&[
            ("FN_DEBUG_HEADERS", "1"),
            ("FN_INSPECT_REQUESTS", "10"),
            ("FN_INSPECT_BODY_BYTES", "100"),
            ("FN_INSPECT_CAPTURE", "always"),
        ]))
        .unwrap();
        assert!(s.debug_headers);
        assert_eq!((s.capacity, s.body_bytes, s.capture), (10, 100, CaptureMode::Always));
        let d = InspectSettings::from_env(&env(&[])).unwrap();
        assert_eq!((d.capacity, d.body_bytes, d.capture), (5000, 65536, CaptureMode::Auto));
        assert_eq!(
            InspectSettings::from_env(&env(&[("FN_INSPECT_REQUESTS", "many")]))
                .unwrap_err()
                .0,
            "FN_INSPECT_REQUESTS"
        );
        assert_eq!(
            InspectSettings::from_env(&env(&[("FN_INSPECT_CAPTURE", "sometimes")]))
                .unwrap_err()
                .0,
            "FN_INSPECT_CAPTURE"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn capture_has_a_budget_per_window_while_a_dashboard_is_open() {
        let ins = Inspector::new(InspectSettings::default());
        let plain = HeaderMap::new();
        let mut replay = HeaderMap::new();
        replay.insert(REPLAY_HEADER, "t".parse().unwrap());
        let now = tokio::time::Instant::now();
        assert!(!ins.capturing(false, &plain, now), "no dashboard");
        assert!(ins.capturing(false, &replay, now), "a replay always");
        let taken = (0..CAPTURE_BUDGET * 2)
            .filter(|_| ins.capturing(true, &plain, now))
            .count();
        assert_eq!(taken as u64, CAPTURE_BUDGET);
        assert!(ins.capturing(true, &replay, now), "a replay past the budget");
        tokio::time::advance(std::time::Duration::from_millis(CAPTURE_WINDOW_MS)).await;
        assert!(ins.capturing(true, &plain, tokio::time::Instant::now()), "a new window");
        let always = Inspector::new(InspectSettings {
            capture: CaptureMode::Always,
            ..InspectSettings::default()
        });
        assert!((0..CAPTURE_BUDGET * 2).all(|_| always.capturing(false, &plain, now)));
    }

    #[test]
    fn header_text_gives_the_pairs_back_in_order() {
        let mut h = HeaderMap::new();
        h.append("host", "a:1".parse().unwrap());
        h.append("x-two", "1".parse().unwrap());
        h.append("x-two", "".parse().unwrap());
        h.append("x-bin", hyper::header::HeaderValue::from_bytes(b"caf\xe9").unwrap());
        let pairs = HeaderText::of(&h).pairs();
        let want = [("host", "a:1"), ("x-two", "1"), ("x-two", ""), ("x-bin", "caf\u{fffd}")];
        assert_eq!(
            pairs,
            want.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Vec<_>>()
        );
        assert!(HeaderText::of(&HeaderMap::new()).pairs().is_empty());
    }

    #[test]
    fn bodies_and_output_are_capped() {
        let (b, cut) = cap_body(&Bytes::from_static(b"abcdef"), 4);
        assert_eq!((&b[..], cut), (&b"abcd"[..], true));
        let (b, cut) = cap_body(&Bytes::from_static(b"ab"), 4);
        assert_eq!((&b[..], cut), (&b"ab"[..], false));
        let long = "é".repeat(OUTPUT_BYTES);
        let out = cap_output(long);
        assert!(out.len() <= OUTPUT_BYTES + 16 && out.ends_with("(cut)"));
    }

    #[test]
    fn every_failure_has_a_reason_and_a_why() {
        use crate::rescue::Failure as F;
        let mut n = Note::default();
        n.failed(&F::Overflow { status: 429 });
        assert_eq!(n.reason, Some(Reason::PoolFull));
        assert!(n.why.as_deref().unwrap().contains("pool"));
        let mut n = Note::default();
        n.failed(&F::NotFound);
        assert_eq!((n.reason, n.why), (Some(Reason::NoRoute), None));
        assert_eq!(Reason::of(&F::RuntimeDown).code(), "all_sockets_down");
        assert_eq!(
            serde_json::to_value(Reason::MethodMismatch).unwrap(),
            serde_json::json!("method_mismatch")
        );
    }
}
