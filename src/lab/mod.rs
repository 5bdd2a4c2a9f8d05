//! The lab: faults injected on purpose (paused sockets, latency, failure rates), forced cold
//! starts with their measured cost, and load the engine sends to itself. Everything here is
//! switched on through guarded admin calls under `/_fn/lab`, listed in `/_fn/health`
//! (`faults`), marked on the requests it touched (`x-fastfn-fault` and the request record's
//! `fault`), and gone with one call or when the engine stops. Only ended load runs are saved
//! (`.fastfn/lab/runs`, see [`saved`]).
//!
//! Cost when unused: the request path reads one `AtomicBool` (`Lab::active`); the snapshot
//! behind it is only loaded when a fault is set.

pub mod bench;
pub mod faults;
pub mod load;
pub mod restart;
pub mod saved;

use crate::engine::Shared;
use crate::rescue::{json_response, Body};
use arc_swap::ArcSwapOption;
use bytes::Bytes;
use faults::{Active, Fault, FaultSpec};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::http::request::Parts;
use hyper::{Method, Response, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Cold starts kept per function.
const COLD_HISTORY: usize = 10;
/// Load runs kept (latest last).
const RUNS_KEPT: usize = 10;
const MAX_BODY: usize = 64 * 1024;

/// One measured cold start: the whole call, and the stages the request record has.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
#[ts(export)]
pub struct ColdStart {
    #[ts(type = "number")]
    pub ts: u64,
    #[ts(type = "number")]
    pub latency_us: u64,
    /// Waiting for dependencies (an install in progress).
    #[ts(type = "number")]
    pub deps_us: u64,
    /// The runtime stage: connect, handler load and import, the handler itself.
    #[ts(type = "number")]
    pub runtime_us: u64,
    pub status: u16,
}

/// `GET /_fn/lab`.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
#[ts(export)]
pub struct LabState {
    pub faults: Vec<Fault>,
    /// Cold starts by function key (`runtime/name@version`), oldest first.
    pub cold_starts: BTreeMap<String, Vec<ColdStart>>,
    /// Load runs, oldest first; only the latest carries its series.
    pub runs: Vec<load::LoadRun>,
}

/// The lab's state, one per engine.
#[derive(Default)]
pub struct Lab {
    /// Whether any fault is set: the only thing the request path reads when none is.
    any: AtomicBool,
    faults: ArcSwapOption<Active>,
    /// Serialises fault updates (read-copy-publish).
    edit: Mutex<()>,
    next_id: AtomicU64,
    colds: Mutex<BTreeMap<String, VecDeque<ColdStart>>>,
    runs: Mutex<VecDeque<Arc<load::Run>>>,
    /// A runtime's daemons are being restarted (force cold on a runtime): one at a time.
    restarting: AtomicBool,
}

impl Lab {
    /// The active faults, if any (one atomic load when none).
    #[inline]
    pub fn active(&self) -> Option<Arc<Active>> {
        if !self.any.load(Ordering::Relaxed) {
            return None;
        }
        self.faults.load_full()
    }

    pub fn faults(&self) -> Vec<Fault> {
        self.faults.load_full().map(|a| a.list().to_vec()).unwrap_or_default()
    }

    fn publish(&self, list: Vec<Fault>) {
        let any = !list.is_empty();
        self.faults.store(any.then(|| Arc::new(Active::new(list))));
        self.any.store(any, Ordering::Relaxed);
    }

    pub fn set(&self, spec: FaultSpec) -> Fault {
        let _edit = self.edit.lock().unwrap_or_else(|p| p.into_inner());
        let fault = Fault {
            id: self.next_id.fetch_add(1, Ordering::Relaxed) + 1,
            since_ms: crate::clock::epoch_millis(),
            spec,
        };
        let list = match self.faults.load_full() {
            Some(active) => active.with(fault.clone()),
            None => vec![fault.clone()],
        };
        self.publish(list);
        fault
    }

    /// Clear one fault (by id) or all; returns how many went.
    pub fn clear(&self, id: Option<u64>) -> usize {
        let _edit = self.edit.lock().unwrap_or_else(|p| p.into_inner());
        let list = self.faults();
        let kept: Vec<Fault> = list
            .iter()
            .filter(|f| id.is_some_and(|id| f.id != id))
            .cloned()
            .collect();
        let gone = list.len() - kept.len();
        self.publish(kept);
        gone
    }

    /// Record a cold call of `key` (only cold calls reach here).
    pub fn cold_start(&self, key: &str, cold: ColdStart) {
        let mut colds = self.colds.lock().unwrap_or_else(|p| p.into_inner());
        let history = colds.entry(key.to_string()).or_default();
        if history.len() == COLD_HISTORY {
            history.pop_front();
        }
        history.push_back(cold);
    }

    fn runs(&self) -> std::sync::MutexGuard<'_, VecDeque<Arc<load::Run>>> {
        self.runs.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn state(&self) -> LabState {
        let runs = self.runs();
        let last = runs.len().saturating_sub(1);
        LabState {
            faults: self.faults(),
            cold_starts: self
                .colds
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .map(|(k, v)| (k.clone(), v.iter().cloned().collect()))
                .collect(),
            runs: runs.iter().enumerate().map(|(i, r)| r.view(i == last)).collect(),
        }
    }

    /// The engine is stopping: faults go, load stops.
    pub fn shutdown(&self) {
        self.clear(None);
        for run in self.runs().iter() {
            run.stop();
        }
    }
}

/// Why a lab call was refused. One map to HTTP: [`LabError::status`].
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("invalid JSON body: {0}")]
    Json(String),
    #[error(transparent)]
    Spec(#[from] faults::SpecError),
    #[error(transparent)]
    Load(#[from] load::LoadError),
    #[error("no function named `{0}` in the route map")]
    UnknownFunction(String),
    #[error("no {runtime} socket {socket} (the runtime has {count})")]
    UnknownSocket {
        runtime: String,
        socket: usize,
        count: usize,
    },
    #[error("function `{0}` has no dependencies to install (no requirements.txt, package.json or composer.json)")]
    NoInstall(String),
    #[error("{0} has no daemons of this engine running (no route uses it, or its sockets are external)")]
    NotRunning(crate::runtime::RuntimeKind),
    #[error("{runtime} socket {socket}: the restarted daemon did not accept calls in time")]
    NotBack {
        runtime: crate::runtime::RuntimeKind,
        socket: usize,
    },
    #[error("the lab's task failed: {0}")]
    Task(String),
    #[error("saved run unreadable: {0}")]
    Saved(String),
    #[error("give both runs to compare: ?a=FILE&b=FILE")]
    CompareArgs,
    #[error("give either `function` or `runtime`")]
    ColdTarget,
    #[error("a load run is already going; stop it first")]
    Busy,
    #[error("no such fault or run")]
    NotFound,
    #[error("method not allowed")]
    Method(&'static str),
    #[error("body too large")]
    TooLarge,
}

impl LabError {
    fn status(&self) -> StatusCode {
        match self {
            LabError::Json(_) | LabError::Spec(_) | LabError::Load(_) => StatusCode::BAD_REQUEST,
            LabError::NotBack { .. } => StatusCode::BAD_GATEWAY,
            LabError::ColdTarget | LabError::CompareArgs => StatusCode::BAD_REQUEST,
            LabError::Saved(_) => StatusCode::UNPROCESSABLE_ENTITY,
            LabError::Task(_) => StatusCode::INTERNAL_SERVER_ERROR,
            LabError::UnknownFunction(_)
            | LabError::UnknownSocket { .. }
            | LabError::NoInstall(_)
            | LabError::NotRunning(_) => StatusCode::UNPROCESSABLE_ENTITY,
            LabError::Busy => StatusCode::CONFLICT,
            LabError::NotFound => StatusCode::NOT_FOUND,
            LabError::Method(_) => StatusCode::METHOD_NOT_ALLOWED,
            LabError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            LabError::Json(_) => "lab.invalid_json",
            LabError::Spec(_) => "lab.invalid_fault",
            LabError::Load(_) => "lab.invalid_load",
            LabError::UnknownFunction(_) => "lab.unknown_function",
            LabError::UnknownSocket { .. } => "lab.unknown_socket",
            LabError::NoInstall(_) => "lab.no_install",
            LabError::NotRunning(_) => "lab.runtime_not_running",
            LabError::NotBack { .. } => "lab.daemon_not_back",
            LabError::ColdTarget => "lab.invalid_cold",
            LabError::Saved(_) => "lab.saved_unreadable",
            LabError::Task(_) => "lab.internal",
            LabError::CompareArgs => "lab.invalid_compare",
            LabError::Busy => "lab.busy",
            LabError::NotFound => "lab.not_found",
            LabError::Method(_) => "lab.method_not_allowed",
            LabError::TooLarge => "lab.body_too_large",
        }
    }

    fn into_response(self) -> Response<Body> {
        let mut resp = json_response(
            self.status(),
            &json!({ "error": self.to_string(), "code": self.code() }),
        );
        if let LabError::Method(allow) = self {
            resp.headers_mut()
                .insert(hyper::header::ALLOW, hyper::header::HeaderValue::from_static(allow));
        }
        resp
    }
}

/// `POST /_fn/lab/cold`: one function (its next call is cold) or a whole runtime (its
/// daemons restarted gracefully, then every function of it cold).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ColdRequest {
    #[serde(default)]
    function: Option<String>,
    #[serde(default)]
    runtime: Option<crate::runtime::RuntimeKind>,
}

/// `POST /_fn/lab/load`: a spec, and whether to answer only once the run ended.
#[derive(Deserialize)]
struct LoadRequest {
    #[serde(flatten)]
    spec: load::LoadSpec,
    #[serde(default)]
    wait: bool,
}

async fn read_json<T: serde::de::DeserializeOwned>(body: Incoming) -> Result<T, LabError> {
    let bytes: Bytes = http_body_util::Limited::new(body, MAX_BODY)
        .collect()
        .await
        .map_err(|_| LabError::TooLarge)?
        .to_bytes();
    serde_json::from_slice(&bytes).map_err(|e| LabError::Json(e.to_string()))
}

/// `/_fn/lab` and below, after the admin guard:
/// - `GET /_fn/lab`: faults, cold starts, load runs
/// - `POST /_fn/lab/faults` (a [`FaultSpec`]), `DELETE /_fn/lab/faults[/ID]`
/// - `POST /_fn/lab/cold` `{"function": NAME}`: the function's next call is cold;
///   `{"runtime": RT}`: its daemons restarted one socket at a time, then all its functions cold
/// - `POST /_fn/lab/load` (a [`load::LoadSpec`], `wait`), `GET /_fn/lab/load/ID`,
///   `POST /_fn/lab/load/stop`
/// - `GET /_fn/lab/runs` (saved runs), `GET /_fn/lab/runs/FILE`,
///   `GET /_fn/lab/runs/compare?a=FILE&b=FILE` (both, and their config difference)
pub(crate) async fn handle(shared: &Arc<Shared>, parts: &Parts, body: Incoming) -> Response<Body> {
    match route(shared, parts, body).await {
        Ok(resp) => resp,
        Err(e) => e.into_response(),
    }
}

async fn route(shared: &Arc<Shared>, parts: &Parts, body: Incoming) -> Result<Response<Body>, LabError> {
    let path = parts.uri.path().trim_end_matches('/');
    let lab = &shared.lab;
    let get = matches!(parts.method, Method::GET | Method::HEAD);
    match path {
        "/_fn/lab" if get => Ok(json_response(StatusCode::OK, &lab.state())),
        "/_fn/lab" => Err(LabError::Method("GET")),
        "/_fn/lab/faults" => match parts.method {
            Method::GET | Method::HEAD => Ok(json_response(StatusCode::OK, &lab.faults())),
            Method::POST => {
                let spec: FaultSpec = read_json(body).await?;
                spec.validate()?;
                check_target(shared, &spec)?;
                let fault = lab.set(spec);
                sync_installs(shared);
                Ok(json_response(StatusCode::CREATED, &fault))
            }
            Method::DELETE => {
                let cleared = lab.clear(None);
                sync_installs(shared);
                Ok(json_response(StatusCode::OK, &json!({ "cleared": cleared })))
            }
            _ => Err(LabError::Method("GET, POST, DELETE")),
        },
        "/_fn/lab/cold" if parts.method == Method::POST => {
            let req: ColdRequest = read_json(body).await?;
            match (req.function, req.runtime) {
                (Some(function), None) => {
                    let cooled = force_cold(shared, &function)?;
                    Ok(json_response(StatusCode::OK, &json!({ "cooled": cooled })))
                }
                (None, Some(runtime)) => {
                    // On a task of its own: a caller that hangs up must not stop a restart
                    // halfway (its socket would stay out of round robin).
                    let task = tokio::spawn({
                        let shared = shared.clone();
                        async move { restart::restart_runtime(&shared, runtime).await }
                    });
                    let restarted = task.await.map_err(|e| LabError::Task(e.to_string()))??;
                    let cooled = cool_runtime(shared, runtime);
                    Ok(json_response(
                        StatusCode::OK,
                        &json!({ "restarted": restarted, "cooled": cooled }),
                    ))
                }
                _ => Err(LabError::ColdTarget),
            }
        }
        "/_fn/lab/cold" => Err(LabError::Method("POST")),
        "/_fn/lab/load" if parts.method == Method::POST => {
            let req: LoadRequest = read_json(body).await?;
            req.spec.validate()?;
            let run = {
                let mut runs = lab.runs();
                if runs.iter().any(|r| r.is_running()) {
                    return Err(LabError::Busy);
                }
                let id = lab.next_id.fetch_add(1, Ordering::Relaxed) + 1;
                let extras = saved::extras(shared, &req.spec);
                let run = load::start(id, req.spec, shared.addr, extras);
                if runs.len() == RUNS_KEPT {
                    runs.pop_front();
                }
                runs.push_back(run.clone());
                run
            };
            if req.wait {
                run.finished().await;
                return Ok(json_response(StatusCode::OK, &run.view(true)));
            }
            Ok(json_response(StatusCode::ACCEPTED, &run.view(true)))
        }
        "/_fn/lab/load" if get => {
            let runs: Vec<_> = lab.runs().iter().map(|r| r.view(false)).collect();
            Ok(json_response(StatusCode::OK, &runs))
        }
        "/_fn/lab/load" => Err(LabError::Method("GET, POST")),
        "/_fn/lab/load/stop" if parts.method == Method::POST => {
            let mut stopped = 0;
            for run in lab.runs().iter().filter(|r| r.is_running()) {
                run.stop();
                stopped += 1;
            }
            Ok(json_response(StatusCode::OK, &json!({ "stopped": stopped })))
        }
        "/_fn/lab/load/stop" => Err(LabError::Method("POST")),
        "/_fn/lab/runs" if get => {
            let dir = saved::runs_dir(shared);
            let runs = tokio::task::spawn_blocking(move || saved::list(&dir))
                .await
                .unwrap_or_default();
            Ok(json_response(StatusCode::OK, &runs))
        }
        "/_fn/lab/runs/compare" if get => {
            let query = parts.uri.query().unwrap_or("");
            let arg = |name: &str| {
                query
                    .split('&')
                    .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
                    .map(str::to_string)
            };
            let (Some(a), Some(b)) = (arg("a"), arg("b")) else {
                return Err(LabError::CompareArgs);
            };
            let dir = saved::runs_dir(shared);
            let cmp = tokio::task::spawn_blocking(move || saved::compare(&dir, &a, &b))
                .await
                .map_err(|e| LabError::Task(e.to_string()))??;
            Ok(json_response(StatusCode::OK, &cmp))
        }
        "/_fn/lab/runs" | "/_fn/lab/runs/compare" => Err(LabError::Method("GET")),
        _ => {
            if let Some(id) = path.strip_prefix("/_fn/lab/faults/") {
                if parts.method != Method::DELETE {
                    return Err(LabError::Method("DELETE"));
                }
                let id = id.parse().map_err(|_| LabError::NotFound)?;
                let cleared = lab.clear(Some(id));
                sync_installs(shared);
                return match cleared {
                    0 => Err(LabError::NotFound),
                    n => Ok(json_response(StatusCode::OK, &json!({ "cleared": n }))),
                };
            }
            if let Some(name) = path.strip_prefix("/_fn/lab/runs/") {
                if !get {
                    return Err(LabError::Method("GET"));
                }
                let (dir, name) = (saved::runs_dir(shared), name.to_string());
                let run = tokio::task::spawn_blocking(move || saved::get(&dir, &name))
                    .await
                    .map_err(|e| LabError::Task(e.to_string()))??;
                return Ok(json_response(StatusCode::OK, &run));
            }
            if let Some(id) = path.strip_prefix("/_fn/lab/load/") {
                if !get {
                    return Err(LabError::Method("GET"));
                }
                let id: u64 = id.parse().map_err(|_| LabError::NotFound)?;
                let run = lab
                    .runs()
                    .iter()
                    .find(|r| r.id == id)
                    .cloned()
                    .ok_or(LabError::NotFound)?;
                return Ok(json_response(StatusCode::OK, &run.view(true)));
            }
            Err(LabError::NotFound)
        }
    }
}

/// The (folder, installer) units of the dependency installs of `function`'s targets.
fn install_units(shared: &Shared, function: &str) -> std::collections::HashSet<(String, crate::deps::Installer)> {
    let served = shared.served();
    served
        .discovery
        .routes
        .routes()
        .iter()
        .filter(|r| served.slot(&r.target).is_some_and(|s| s.name == function))
        .filter_map(|r| {
            let installer = crate::deps::Installer::for_runtime(r.target.runtime)?;
            Some((crate::deps::function_folder(&r.target).to_string(), installer))
        })
        .filter(|(folder, installer)| shared.deps.has_install(folder, *installer))
        .collect()
}

/// Hand the installer the units the `deps_fail` faults are on now (after every change of the
/// fault list; the installer starts or re-arms the installs that changed).
fn sync_installs(shared: &Shared) {
    let mut units = std::collections::HashSet::new();
    for f in shared.lab.faults() {
        if let FaultSpec::DepsFail { function } = &f.spec {
            units.extend(install_units(shared, function));
        }
    }
    shared.deps.sabotage(units);
}

/// A fault must name something that exists: a function of the route map, a socket of a
/// running runtime. A typo would otherwise be a fault that silently does nothing.
fn check_target(shared: &Shared, spec: &FaultSpec) -> Result<(), LabError> {
    if let Some(function) = spec.function() {
        let served = shared.served();
        if !served.slots().any(|s| s.name == function) {
            return Err(LabError::UnknownFunction(function.to_string()));
        }
    }
    if let FaultSpec::DepsFail { function } = spec {
        if install_units(shared, function).is_empty() {
            return Err(LabError::NoInstall(function.clone()));
        }
    }
    if let FaultSpec::Pause { runtime, socket } | FaultSpec::SocketLatency { runtime, socket, .. } = spec {
        let count = shared.runtimes.get(runtime).map_or(0, |s| s.sockets.len());
        if *socket > count {
            return Err(LabError::UnknownSocket {
                runtime: runtime.to_string(),
                socket: *socket,
                count,
            });
        }
    }
    Ok(())
}

/// Mark every slot of `runtime` cold (its daemons were just restarted). Returns the keys.
fn cool_runtime(shared: &Shared, runtime: crate::runtime::RuntimeKind) -> Vec<String> {
    let served = shared.served();
    let mut keys: Vec<String> = served
        .slots()
        .filter(|s| s.runtime == runtime)
        .map(|s| {
            s.cool();
            s.key.clone()
        })
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// Mark every slot of `function` cold: its next call reports `cold`, warms it again, and is
/// measured in the cold-start history. Returns the keys cooled.
fn force_cold(shared: &Shared, function: &str) -> Result<Vec<String>, LabError> {
    let served = shared.served();
    let mut keys: Vec<String> = served
        .slots()
        .filter(|s| s.name == function)
        .map(|s| {
            s.cool();
            s.key.clone()
        })
        .collect();
    if keys.is_empty() {
        return Err(LabError::UnknownFunction(function.to_string()));
    }
    keys.sort();
    keys.dedup();
    Ok(keys)
}
