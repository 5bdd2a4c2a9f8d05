//! The invoke pipeline: one call to a function, however it arrived (an HTTP request through
//! the gateway, `/_fn/invoke`, later schedules and jobs): dependency readiness → admission →
//! event → backend → reply, each stage timed. Knows nothing of hyper's connections: the
//! gateway reads the request body between admission and the call, so a refused request costs
//! no body read.

mod backend;
pub mod event;
pub mod reply;

use crate::engine::{FunctionSlot, Shared};
use crate::rescue::Failure;
use crate::runtime::RuntimeKind;
use hyper::Method;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// What the runtime call produced, before it becomes a response.
pub(crate) struct Outcome {
    pub result: Result<reply::Reply, Failure>,
    /// 0-based socket that answered.
    pub socket_index: Option<usize>,
    pub queued: bool,
    pub timings: Timings,
    /// The lab faults this call met, in words (`None` when none was set).
    pub fault: Option<String>,
}

impl Outcome {
    pub(crate) fn refused(failure: Failure) -> Outcome {
        Outcome {
            result: Err(failure),
            socket_index: None,
            queued: false,
            timings: Timings::default(),
            fault: None,
        }
    }

    /// Record the time spent waiting for dependencies.
    pub(crate) fn after_deps(mut self, deps_us: u64) -> Outcome {
        self.timings.deps_us = deps_us;
        self
    }
}

/// Where a call's time went, stage by stage (microseconds, from the engine's own clock).
/// Shown as `Server-Timing` with debug headers and kept in the request record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timings {
    /// Waiting for the function's dependencies to finish installing (before admission).
    pub deps_us: u64,
    /// The admission check for a worker-pool slot (the queue apart).
    pub admission_us: u64,
    /// Waiting in the queue for a slot (0 when a slot was free).
    pub queue_us: u64,
    /// Reading the request body (after admission).
    pub body_us: u64,
    /// Getting a daemon connection: ~0 on one already open, the connect and hello otherwise.
    pub connect_us: u64,
    /// Building a compiled function before the call.
    pub build_us: u64,
    /// The cold part of a cold call (Lua module load, a compiled function's process start).
    pub cold_us: u64,
    /// Send, the daemon's dispatch, and the reply's bytes back (after `connect_us`; without
    /// `handler_us` when the daemon reports it).
    pub runtime_us: u64,
    /// The call's time inside the daemon, as the daemon reports it (0 when it does not).
    pub handler_us: u64,
    /// Parsing and validating the reply.
    pub reply_us: u64,
    /// Latency injected by the lab (function or socket faults).
    pub fault_us: u64,
}

impl Timings {
    /// The request log's stages of this call; `route_us` and `respond_us` are the gateway's
    /// (0 for jobs and schedules, which have neither).
    pub(crate) fn stages(&self) -> crate::events::Stages {
        crate::events::Stages {
            route_us: 0,
            deps_us: self.deps_us,
            admission_us: self.admission_us,
            queue_us: self.queue_us,
            body_us: self.body_us,
            connect_us: self.connect_us,
            build_us: self.build_us,
            cold_us: self.cold_us,
            runtime_us: self.runtime_us,
            handler_us: self.handler_us,
            reply_us: self.reply_us,
            respond_us: 0,
            fault_us: self.fault_us,
        }
    }

    pub(crate) fn server_timing(&self) -> String {
        let ms = |us: u64| us as f64 / 1000.0;
        let mut out = format!(
            "deps;dur={:.3}, admission;dur={:.3}, body;dur={:.3}, connect;dur={:.3}, runtime;dur={:.3}, handler;dur={:.3}, reply;dur={:.3}",
            ms(self.deps_us),
            ms(self.admission_us),
            ms(self.body_us),
            ms(self.connect_us),
            ms(self.runtime_us),
            ms(self.handler_us),
            ms(self.reply_us)
        );
        // Only when they happened: most calls neither queue, build nor start cold.
        for (name, us) in [
            ("queue", self.queue_us),
            ("build", self.build_us),
            ("cold", self.cold_us),
            ("fault", self.fault_us),
        ] {
            if us > 0 {
                out.push_str(&format!(", {name};dur={:.3}", ms(us)));
            }
        }
        out
    }
}

/// A slot's wait, split: the queue's part (the permit measured it) and the check's.
pub(crate) fn admission_split(waited: Instant, permit: &crate::pool::Permit) -> (u64, u64) {
    let total = micros_since(waited);
    let queue = permit.queue_us.min(total);
    (total - queue, queue)
}

pub(crate) fn micros_since(t: Instant) -> u64 {
    t.elapsed().as_micros() as u64
}

/// A call to a function, however it arrived (HTTP request or `/_fn/invoke`).
pub(crate) struct CallInput<'a> {
    pub method: &'a Method,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub headers: &'a hyper::HeaderMap,
    pub body: &'a [u8],
    pub client_ip: &'a str,
    pub params: &'a [(String, String)],
    /// `context.user` (from `/_fn/invoke`).
    pub user: Option<&'a serde_json::Value>,
    /// `context.trigger` (calls the scheduler makes).
    pub trigger: Option<&'a serde_json::Value>,
}

/// The function's dependencies, before admission (so a waiting request holds no worker
/// slot): ready at once (one snapshot load), or being installed, in which case the request
/// waits for the install, at most the function's `timeout_ms` (the bound FastFN's gateway puts
/// on the call that installs), then 503 + Retry-After; or failed. Returns the time waited.
pub(crate) async fn ready(shared: &Shared, target: &crate::routing::Target) -> (u64, Result<(), Failure>) {
    use crate::deps::Readiness;
    let mut readiness = shared.deps.readiness(target);
    if readiness == Readiness::Ready {
        return (0, Ok(()));
    }
    let started = Instant::now();
    if readiness == Readiness::Preparing {
        let bound = Duration::from_millis(target.policy.timeout_ms);
        readiness = shared.deps.wait(target, bound).await;
    }
    let result = match readiness {
        Readiness::Ready => Ok(()),
        Readiness::Preparing => Err(Failure::DepsPreparing),
        Readiness::Failed(output) => Err(Failure::DepsFailed {
            package: crate::deps::failed_package(&output),
            output: target.policy.include_debug_headers.then_some(output),
        }),
        Readiness::Unresolved(message) => Err(Failure::DepsUnresolved(message)),
    };
    (micros_since(started), result)
}

/// A call refused by its dependencies (before admission). An install the lab made fail says
/// so on the answer and its record, as every fault does (`X-Fastfn-Fault`, `fault`).
pub(crate) fn refused_by_deps(
    shared: &Shared,
    target: &crate::routing::Target,
    failure: Failure,
    deps_us: u64,
) -> Outcome {
    let lab = matches!(failure, Failure::DepsFailed { .. })
        .then(|| shared.lab.active())
        .flatten()
        .filter(|lab| {
            lab.list().iter().any(
                |f| matches!(&f.spec, crate::lab::faults::FaultSpec::DepsFail { function } if *function == target.fn_name),
            )
        });
    let mut outcome = Outcome::refused(failure).after_deps(deps_us);
    if lab.is_some() {
        outcome.fault = Some(format!(
            "dependency install made to fail on function {}",
            target.fn_name
        ));
    }
    outcome
}

pub(crate) async fn admit(slot: &FunctionSlot) -> Result<crate::pool::Permit, Failure> {
    slot.pool.acquire().await.map_err(|refusal| match refusal {
        crate::pool::Refusal::Overflow { status } => Failure::Overflow { status },
        crate::pool::Refusal::QueueTimeout { status } => Failure::QueueTimeout { status },
    })
}

/// Readiness, admission, then the call (for `/_fn/invoke`, whose body is already read).
pub(crate) async fn run(
    shared: &Arc<Shared>,
    target: &crate::routing::Target,
    slot: &FunctionSlot,
    input: &CallInput<'_>,
    request_id: &str,
) -> Outcome {
    let (deps_us, deps) = ready(shared, target).await;
    if let Err(failure) = deps {
        return refused_by_deps(shared, target, failure, deps_us);
    }
    let waited = Instant::now();
    let permit = match admit(slot).await {
        Ok(p) => p,
        Err(failure) => return Outcome::refused(failure).after_deps(deps_us),
    };
    // The wait for the slot only (the call's own time is in its later stages).
    let (admission_us, queue_us) = admission_split(waited, &permit);
    let mut outcome = run_admitted(shared, target, slot, input, request_id, permit).await;
    outcome.timings.admission_us = admission_us;
    outcome.timings.queue_us = queue_us;
    outcome.after_deps(deps_us)
}

/// The admitted call: event, backend, reply. The slot is freed as soon as the backend answers.
pub(crate) async fn run_admitted(
    shared: &Arc<Shared>,
    target: &crate::routing::Target,
    slot: &FunctionSlot,
    input: &CallInput<'_>,
    request_id: &str,
    permit: crate::pool::Permit,
) -> Outcome {
    let policy = &target.policy;
    let queued = permit.queued;
    // Only functions whose `fn.env.json` marks a key `is_secret` get (and pay for) a map.
    let secrets = shared.secrets.for_call(&shared.settings.functions_root, target);
    let parts = event::EventParts {
        request_id,
        ts: crate::clock::epoch_millis(),
        method: input.method.as_str(),
        path: input.path,
        query: input.query,
        headers: input.headers,
        body: None,
        client_ip: input.client_ip,
        params: input.params,
        target,
        debug: policy.include_debug_headers,
        worker_pid: shared.pid,
        user: input.user,
        trigger: input.trigger,
        secrets: secrets.as_ref(),
    };
    // The lab: one atomic load when no fault is set.
    let lab = shared.lab.active();
    let mut fault_us = 0;
    let mut notes: Vec<String> = Vec::new();
    if let Some(lab) = lab.as_deref() {
        if let Some(status) = lab.fail_now(&target.fn_name) {
            drop(permit);
            return Outcome {
                result: Ok(injected_failure(status)),
                socket_index: None,
                queued,
                timings: Timings::default(),
                fault: Some(format!("failure injected ({status}) on function {}", target.fn_name)),
            };
        }
        let seed = lab.seed();
        if let Some(d) = lab.function_delay(&target.fn_name, seed) {
            tokio::time::sleep(d).await;
            fault_us += d.as_micros() as u64;
            notes.push(format!("latency {} ms on function {}", d.as_millis(), target.fn_name));
        }
    }
    let started = Instant::now();
    // Daemons on v2 get the body apart, raw; the whole frame is built only for a backend
    // that takes it (Lua, Rust/Go, a v1 socket).
    let uses_sockets = target.runtime.uses_daemons() && !matches!(target.runtime, RuntimeKind::Rust | RuntimeKind::Go);
    let meta = if uses_sockets {
        event::request_payload(&parts)
    } else {
        Vec::new()
    };
    let whole = || {
        event::request_payload(&event::EventParts {
            body: (!input.body.is_empty()).then_some(input.body),
            ..parts
        })
    };
    let idempotent = matches!(
        *input.method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE
    );
    let call = backend::Call {
        meta: &meta,
        body: input.body,
        whole: &whole,
        timeout: Duration::from_millis(policy.timeout_ms),
        idempotent,
        lab: lab.as_deref(),
        lab_us: Default::default(),
        connect_us: Default::default(),
        build_us: Default::default(),
        cold_us: Default::default(),
        handler_us: Default::default(),
        lab_skipped: Default::default(),
    };
    let (frame, socket_index) = backend::call(shared, target, slot, &call).await;
    let socket_fault_us = call.lab_us.load(std::sync::atomic::Ordering::Relaxed);
    let connect_us = call.connect_us.load(std::sync::atomic::Ordering::Relaxed);
    let build_us = call.build_us.load(std::sync::atomic::Ordering::Relaxed);
    let cold_us = call.cold_us.load(std::sync::atomic::Ordering::Relaxed);
    let runtime_us = micros_since(started).saturating_sub(socket_fault_us + connect_us + build_us + cold_us);
    if lab.is_some() {
        fault_us += socket_fault_us;
        let socket = |i: usize| format!("{} socket {}", target.runtime, i + 1);
        if let Some(i) = call
            .lab_skipped
            .load(std::sync::atomic::Ordering::Relaxed)
            .checked_sub(1)
        {
            // A socket whose daemon the lab restarts (force cold on the runtime) is skipped too.
            let restarting = lab.as_deref().is_some_and(|l| {
                l.list().iter().any(|f| {
                    matches!(f.spec, crate::lab::faults::FaultSpec::Restart { runtime, socket }
                        if runtime == target.runtime && socket == i + 1)
                })
            });
            let why = if restarting { "restarting" } else { "paused" };
            notes.push(format!("skipped {why} {}", socket(i)));
        }
        if socket_fault_us > 0 {
            if let Some(i) = socket_index {
                notes.push(format!("latency {} ms on {}", socket_fault_us / 1000, socket(i)));
            }
        }
    }
    // Free the slot before the reply is parsed and the response built.
    drop(permit);
    let parsing = Instant::now();
    let mut result = frame.and_then(|f| reply::parse_frame(&f.meta, f.body));
    // The daemon's own measure of the call splits `runtime` into the handler and the rest
    // (transport, queueing in the daemon); ignored when it does not fit the engine's clock.
    // Lua measures its handler in-process (`call.handler_us`).
    let handler_us = match &result {
        Ok(r) => r
            .handler_us
            .or(Some(call.handler_us.load(std::sync::atomic::Ordering::Relaxed)))
            .filter(|h| *h <= runtime_us)
            .unwrap_or(0),
        Err(_) => 0,
    };
    let runtime_us = runtime_us - handler_us;
    // A daemon's cold call: the handler's load is its own bar (`cold`), taken out of `handler`.
    let (handler_us, cold_us) = match &result {
        Ok(r) => match r.load_us {
            Some(load) if load <= handler_us => (handler_us - load, cold_us + load),
            _ => (handler_us, cold_us),
        },
        Err(_) => (handler_us, cold_us),
    };
    if let Ok(r) = result.as_mut() {
        // Handler output feeds logs, debug headers, `/_fn/invoke` and job results.
        shared.secrets.mask(&mut r.stdout);
        shared.secrets.mask(&mut r.stderr);
    }
    // A `proxy` directive: the upstream's answer replaces the reply (its time counts as the
    // reply stage). One `Option` check for every other reply.
    if matches!(&result, Ok(r) if r.proxy.is_some()) {
        if let Ok(r) = result {
            result = crate::proxy::forward(r, policy, input.method)
                .await
                .map_err(Failure::EdgeProxy);
        }
    }
    let timings = Timings {
        connect_us,
        build_us,
        cold_us,
        runtime_us,
        handler_us,
        reply_us: micros_since(parsing),
        fault_us,
        ..Timings::default()
    };
    if let Err(failure) = &result {
        // The engine's own failure of this call (HTTP, job, schedule or `/_fn/invoke`): a line
        // of its log, kept with the request's record and tagged with its id.
        let why = crate::inspect::call_failure_why(shared, target, failure, &timings);
        tracing::warn!(
            "{} {} failed: {}: {}",
            target.runtime,
            target.fn_name,
            crate::inspect::Reason::of(failure).code(),
            why.unwrap_or_else(|| failure.to_string())
        );
    }
    Outcome {
        result,
        socket_index,
        queued,
        timings,
        fault: (!notes.is_empty()).then(|| notes.join("; ")),
    }
}

/// The answer of a call the lab chose to fail: the chosen status, a JSON body that says so.
fn injected_failure(status: u16) -> reply::Reply {
    reply::Reply {
        status,
        headers: vec![(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("application/json"),
        )],
        body: bytes::Bytes::from_static(br#"{"error":"failure injected by the lab"}"#),
        stdout: None,
        stderr: None,
        proxy: None,
        handler_us: None,
        load_us: None,
    }
}
