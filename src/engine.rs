//! The engine: settings → discovery → route map, daemons under the supervisor, health probes,
//! and the HTTP gateway, with one lifecycle (start, reload, stop) that the CLI and the desktop
//! app share.

use crate::config::project::Settings;
use crate::config::ConfigError;
use crate::discovery::{self, Discovery, DiscoveryOptions};
use crate::events::{EngineEvent, EventBus, Phase};
use crate::logs::LogBook;
use crate::pool::{Limits, Pool};
use crate::routing::Target;
use crate::runtime::compiled::Compiled;
use crate::runtime::{RuntimeKind, RuntimeSockets};
use crate::supervisor::{DaemonHandle, DaemonSpec, ProcessLauncher, StartReport, Supervisor, SupervisorCtx};
use arc_swap::ArcSwap;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// Why the engine could not start. Fatal, unlike runtime events.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("port {port} on {host} is already in use (choose another with --port or FN_HOST_PORT)")]
    PortInUse { host: String, port: u16 },
    #[error("cannot listen on {host}:{port}: {source}")]
    Bind {
        host: String,
        port: u16,
        source: std::io::Error,
    },
    #[error("cannot create the socket folder {}: {source}", path.display())]
    SocketDir { path: PathBuf, source: std::io::Error },
    #[error("{0}")]
    Config(#[from] ConfigError),
}

impl StartError {
    /// Stable code for the UI.
    pub fn code(&self) -> &'static str {
        match self {
            StartError::PortInUse { .. } => "gateway.port_in_use",
            StartError::Bind { .. } => "gateway.bind_failed",
            StartError::SocketDir { .. } => "runtime.socket_dir",
            StartError::Config(e) => e.code,
        }
    }
}

/// Live state of one function, kept across reloads (keyed by `<runtime>/<fn>@<version>`).
#[derive(Debug)]
pub struct FunctionSlot {
    pub key: String,
    pub runtime: RuntimeKind,
    pub name: String,
    pub pool: Arc<Pool>,
    warm: AtomicBool,
    warm_at_ms: AtomicU64,
}

impl FunctionSlot {
    pub fn is_warm(&self) -> bool {
        self.warm.load(Ordering::Relaxed)
    }

    /// Mark warm; true if this call is the one that warmed it.
    pub fn warm_up(&self) -> bool {
        let first = !self.warm.swap(true, Ordering::Relaxed);
        if first {
            self.warm_at_ms.store(crate::clock::epoch_millis(), Ordering::Relaxed);
        }
        first
    }

    pub fn warm_at_ms(&self) -> Option<u64> {
        Some(self.warm_at_ms.load(Ordering::Relaxed)).filter(|t| *t > 0)
    }
}

/// The route map being served, with each route's function slot.
pub struct Served {
    pub discovery: Discovery,
    /// The root `assets` mount, when configured and valid.
    pub assets: Option<crate::assets::Assets>,
    /// Keyed by the address of the route's `Arc<Target>`: stable while this `Served` lives,
    /// and a lookup without hashing strings on the request path.
    slots: HashMap<usize, Arc<FunctionSlot>>,
    pub generated_at: f64,
}

impl Served {
    pub fn slot(&self, target: &Arc<Target>) -> Option<&Arc<FunctionSlot>> {
        self.slots.get(&(Arc::as_ptr(target) as usize))
    }

    pub fn slots(&self) -> impl Iterator<Item = &Arc<FunctionSlot>> {
        self.slots.values()
    }
}

/// Outcome of one reload.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReloadReport {
    pub ok: bool,
    pub routes: usize,
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub ms: u64,
    /// Changed files that triggered it (empty for a manual reload).
    pub files: Vec<String>,
    pub errors: Vec<ConfigError>,
    pub warnings: Vec<String>,
}

pub struct Shared {
    pub settings: Settings,
    /// Lua functions, run in-process when lua is enabled.
    pub lua: Option<crate::runtime::lua::LuaRuntime>,
    /// Per-function dependency installs (pip, npm, composer).
    pub deps: Arc<crate::deps::Deps>,
    /// Rust and Go functions: built on first call, one process per function.
    pub compiled: BTreeMap<RuntimeKind, Arc<Compiled>>,
    /// The dashboard's built files, served at `/console` when `FN_UI_ENABLED=1`.
    pub console: Option<crate::assets::Assets>,
    served: ArcSwap<Served>,
    pub runtimes: BTreeMap<RuntimeKind, Arc<RuntimeSockets>>,
    /// Runtimes left out, with why (missing interpreter…).
    pub missing: BTreeMap<RuntimeKind, String>,
    /// Enabled and available runtimes, in order.
    pub runtime_order: Vec<RuntimeKind>,
    pub events: EventBus,
    pub logs: Arc<LogBook>,
    supervisor: Supervisor,
    slots: Mutex<HashMap<String, Arc<FunctionSlot>>>,
    pub socket_dir: PathBuf,
    pub addr: SocketAddr,
    pub pid: u32,
    pub config_loaded_at: f64,
    seq: AtomicU64,
    reload_lock: tokio::sync::Mutex<()>,
    last_reload_error: Mutex<Option<String>>,
    watch_status: Mutex<crate::watch::WatchStatus>,
    watcher: Mutex<Option<crate::watch::Watcher>>,
    shutdown: watch::Sender<bool>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

/// A running engine; cheap to clone.
#[derive(Clone)]
pub struct Engine(pub(crate) Arc<Shared>);

/// The daemon scripts, compiled into the binary so that an installed `fastfn` (or the desktop
/// app) needs nothing beside it. `FN_RUNTIMES_DIR` points at a folder of scripts instead.
const DAEMON_SCRIPTS: [(RuntimeKind, &str, &str); 3] = [
    (
        RuntimeKind::Python,
        "python/daemon.py",
        include_str!("../runtimes/python/daemon.py"),
    ),
    (
        RuntimeKind::Node,
        "node/daemon.js",
        include_str!("../runtimes/node/daemon.js"),
    ),
    (
        RuntimeKind::Php,
        "php/daemon.php",
        include_str!("../runtimes/php/daemon.php"),
    ),
];

fn daemon_script(rt: RuntimeKind) -> Option<&'static str> {
    DAEMON_SCRIPTS
        .iter()
        .find(|(k, _, _)| *k == rt)
        .map(|(_, file, _)| *file)
}

/// Where the daemon script of `rt` is on disk: in `FN_RUNTIMES_DIR`, or written out of the
/// binary into the (private) socket folder.
fn install_daemon_script(rt: RuntimeKind, socket_dir: &Path) -> std::io::Result<PathBuf> {
    let (_, file, text) = DAEMON_SCRIPTS
        .iter()
        .find(|(k, _, _)| *k == rt)
        .ok_or(std::io::ErrorKind::NotFound)?;
    if let Some(dir) = std::env::var_os("FN_RUNTIMES_DIR") {
        return Ok(PathBuf::from(dir).join(file));
    }
    let path = socket_dir.join("runtimes").join(file);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&path, text)?;
    Ok(path)
}

/// The interpreter or toolchain key (`runtime-binaries`) of a runtime.
pub fn binary_key(rt: RuntimeKind) -> &'static str {
    match rt {
        RuntimeKind::Python => "python",
        RuntimeKind::Node => "node",
        RuntimeKind::Php => "php",
        RuntimeKind::Rust => "cargo",
        RuntimeKind::Go => "go",
        RuntimeKind::Lua => "lua",
    }
}

/// Lua runs in-process (mlua, vendored Lua 5.4): always available.
pub const LUA_IN_BUILD: bool = true;

const SUN_PATH_MAX: usize = 103;

fn socket_dir_for(settings: &Settings, pid: u32) -> PathBuf {
    let dir = settings.socket_base_dir.join(format!("s-{pid}"));
    // Leave room for `fn-python-64.sock`.
    if dir.as_os_str().len() + 20 > SUN_PATH_MAX {
        PathBuf::from("/tmp/fastfn").join(format!("s-{pid}"))
    } else {
        dir
    }
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if dir.exists() {
        // A folder left by an earlier process with our pid: its sockets are stale.
        std::fs::remove_dir_all(dir)?;
    }
    if let Some(parent) = dir.parent() {
        std::fs::DirBuilder::new().recursive(true).mode(0o755).create(parent)?;
    }
    std::fs::DirBuilder::new().mode(0o700).create(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

impl Engine {
    /// Bind the port, discover routes, start the daemons and serve. Returns once every daemon
    /// is ready or has failed its first start (a failed daemon keeps being retried).
    pub async fn start(settings: Settings) -> Result<Engine, StartError> {
        let events = EventBus::default();
        events.emit(EngineEvent::Phase { phase: Phase::Starting });
        let (host, port) = (settings.host.clone(), settings.port);
        // Bind first: a taken port is the most common start failure and must come before
        // anything else is started.
        let listener = match tokio::net::TcpListener::bind((host.as_str(), port)).await {
            Ok(l) => l,
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => return Err(StartError::PortInUse { host, port }),
            Err(source) => return Err(StartError::Bind { host, port, source }),
        };
        let addr = listener.local_addr().map_err(|source| StartError::Bind {
            host: host.clone(),
            port,
            source,
        })?;

        let mut missing = BTreeMap::new();
        let mut runtime_order = Vec::new();
        let mut binaries = BTreeMap::new();
        for &rt in &settings.runtimes {
            if !rt.uses_daemons() {
                // In-process runtimes.
                match rt {
                    RuntimeKind::Lua if LUA_IN_BUILD => runtime_order.push(rt),
                    _ => {
                        missing.insert(rt, format!("the {rt} runtime is not available in this build yet"));
                    }
                }
                continue;
            }
            let bin = settings.binary(binary_key(rt));
            match which::which(bin) {
                Ok(path) => {
                    binaries.insert(rt, path);
                    runtime_order.push(rt);
                }
                Err(_) => {
                    let var = crate::config::project::BINARY_KEYS
                        .iter()
                        .find(|(k, _, _)| *k == binary_key(rt))
                        .map(|(_, v, _)| *v)
                        .unwrap_or("");
                    missing.insert(rt, format!("`{bin}` was not found on PATH: install {rt} or set {var}"));
                }
            }
        }

        let pid = std::process::id();
        let socket_dir = socket_dir_for(&settings, pid);
        create_private_dir(&socket_dir).map_err(|source| StartError::SocketDir {
            path: socket_dir.clone(),
            source,
        })?;

        let mut runtimes = BTreeMap::new();
        let mut specs = Vec::new();
        let env_remove: Vec<String> = std::env::vars_os()
            .filter_map(|(k, _)| k.into_string().ok())
            .filter(|k| k.starts_with("FN_ADMIN_") || k.starts_with("FN_CONSOLE_") || k.starts_with("FN_TRUSTED_"))
            .collect();
        for &rt in runtime_order.iter().filter(|rt| daemon_script(**rt).is_some()) {
            let n = settings.daemon_count(rt);
            let paths: Vec<PathBuf> = match settings.explicit_sockets.get(&rt) {
                Some(p) => p.clone(),
                None if n == 1 => vec![socket_dir.join(format!("fn-{rt}.sock"))],
                None => (1..=n).map(|i| socket_dir.join(format!("fn-{rt}-{i}.sock"))).collect(),
            };
            let script = install_daemon_script(rt, &socket_dir).map_err(|source| StartError::SocketDir {
                path: socket_dir.clone(),
                source,
            })?;
            for (i, socket) in paths.iter().enumerate() {
                specs.push(DaemonSpec {
                    runtime: rt,
                    index: i + 1,
                    socket: socket.clone(),
                    program: binaries[&rt].clone(),
                    args: vec![script.clone().into_os_string(), socket.clone().into_os_string()],
                    env: vec![
                        (
                            "FN_FUNCTIONS_ROOT".into(),
                            settings.functions_root.display().to_string(),
                        ),
                        ("FN_MAX_FRAME_BYTES".into(), settings.max_frame_bytes.to_string()),
                        ("FN_RUNTIME".into(), rt.to_string()),
                        ("FN_SOCKET_INDEX".into(), (i + 1).to_string()),
                    ],
                    env_remove: env_remove.clone(),
                    cwd: settings.functions_root.clone(),
                });
            }
            runtimes.insert(rt, Arc::new(RuntimeSockets::new(rt, paths)));
        }

        let logs = Arc::new(LogBook::for_settings(&settings));
        let ctx = SupervisorCtx {
            events: events.clone(),
            logs: logs.clone(),
        };
        let launcher = Arc::new(ProcessLauncher { ctx: ctx.clone() });
        let discovery_opts = discovery_options(&settings, &runtime_order);
        let root = settings.functions_root.clone();
        // Discovery reads the tree: off the async threads, and in parallel with daemon start.
        let max_asset_bytes = settings.max_asset_bytes;
        let discovering = tokio::task::spawn_blocking(move || scan(&root, &discovery_opts, max_asset_bytes));
        let (supervisor, reports) = Supervisor::start(launcher, specs, runtimes.values().cloned().collect(), ctx).await;
        let scanned = discovering.await.map_err(|e| ConfigError {
            code: "discovery.panic",
            file: settings.functions_root.clone(),
            field: None,
            message: e.to_string(),
        })?;
        log_start_reports(&reports);

        // Rust and Go: a cached build per function, started on first call.
        let compiled: BTreeMap<RuntimeKind, Arc<Compiled>> = runtime_order
            .iter()
            .filter(|rt| matches!(rt, RuntimeKind::Rust | RuntimeKind::Go))
            .map(|&rt| {
                let c = Compiled::new(
                    rt,
                    settings.functions_root.clone(),
                    binaries[&rt].clone(),
                    socket_dir.clone(),
                    events.clone(),
                );
                (rt, Arc::new(c))
            })
            .collect();

        let (shutdown, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            lua: runtime_order
                .contains(&RuntimeKind::Lua)
                .then(|| crate::runtime::lua::LuaRuntime::new(settings.functions_root.clone())),
            deps: crate::deps::Deps::new(
                settings.binary("python").to_string(),
                settings.binary("npm").to_string(),
                settings.binary("composer").to_string(),
                events.clone(),
            ),
            compiled,
            served: ArcSwap::from_pointee(Served {
                discovery: empty_discovery(),
                assets: None,
                slots: HashMap::new(),
                generated_at: 0.0,
            }),
            runtimes,
            missing,
            runtime_order,
            events: events.clone(),
            logs,
            supervisor,
            slots: Mutex::new(HashMap::new()),
            socket_dir,
            addr,
            pid,
            config_loaded_at: crate::clock::epoch_secs(),
            seq: AtomicU64::new(0),
            reload_lock: tokio::sync::Mutex::new(()),
            last_reload_error: Mutex::new(None),
            watch_status: Mutex::new(crate::watch::WatchStatus::off()),
            watcher: Mutex::new(None),
            console: console_assets(&settings),
            shutdown,
            tasks: Mutex::new(Vec::new()),
            settings,
        });
        let engine = Engine(shared);
        engine.prepare_deps(&scanned.0).await;
        let served = engine.build_served(scanned.0, scanned.1);
        engine.0.served.store(Arc::new(served));

        let probe = tokio::spawn(probe_loop(engine.0.clone()));
        let usage = tokio::spawn(crate::usage::sample_loop(engine.daemons().to_vec(), events.clone()));
        let serve = tokio::spawn(crate::gateway::serve(
            engine.0.clone(),
            listener,
            engine.0.shutdown.subscribe(),
        ));
        engine
            .0
            .tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend([probe, serve, usage]);
        if engine.0.settings.hot_reload {
            engine.start_watching();
        }
        events.emit(EngineEvent::Phase { phase: Phase::Serving });
        Ok(engine)
    }

    /// Check (and start) per-function dependency installs for every target of `discovery`.
    async fn prepare_deps(&self, discovery: &Discovery) {
        let targets: Vec<Arc<Target>> = discovery.routes.routes().iter().map(|r| r.target.clone()).collect();
        let deps = self.0.deps.clone();
        let root = self.0.settings.functions_root.clone();
        // Reads manifests and stamps: off the async threads.
        let _ = tokio::task::spawn_blocking(move || deps.prepare(&root, &targets)).await;
    }

    fn build_served(&self, discovery: Discovery, assets: Option<crate::assets::Assets>) -> Served {
        let mut known = self.0.slots.lock().unwrap_or_else(|p| p.into_inner());
        let mut slots = HashMap::new();
        for route in discovery.routes.routes() {
            let t = &route.target;
            let key = format!(
                "{}/{}@{}",
                t.runtime,
                t.fn_name,
                t.version.as_deref().unwrap_or("default")
            );
            let limits = Limits::from_policy(&t.policy.worker_pool);
            let slot = known
                .entry(key.clone())
                .or_insert_with(|| {
                    let events = self.0.events.clone();
                    let observed_key = key.clone();
                    Arc::new(FunctionSlot {
                        key: key.clone(),
                        runtime: t.runtime,
                        name: t.fn_name.clone(),
                        pool: Pool::with_observer(limits, move |stats| {
                            if events.has_live_receivers() {
                                events.emit(EngineEvent::Pool {
                                    key: observed_key.clone(),
                                    stats,
                                });
                            }
                        }),
                        warm: AtomicBool::new(false),
                        warm_at_ms: AtomicU64::new(0),
                    })
                })
                .clone();
            if slot.pool.limits() != limits {
                slot.pool.set_limits(limits);
            }
            slots.insert(Arc::as_ptr(t) as usize, slot);
        }
        Served {
            discovery,
            slots,
            generated_at: crate::clock::epoch_secs(),
            assets,
        }
    }

    fn start_watching(&self) {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Vec<PathBuf>>();
        let root = self.0.settings.functions_root.clone();
        let status = match crate::watch::start(&root, tx) {
            Ok(w) => {
                let status = crate::watch::WatchStatus {
                    enabled: true,
                    active: true,
                    backend: w.backend,
                    last_scan_at: None,
                    error: None,
                };
                *self.0.watcher.lock().unwrap_or_else(|p| p.into_inner()) = Some(w);
                status
            }
            Err(e) => {
                tracing::warn!("hot reload is off: cannot watch {}: {e}", root.display());
                crate::watch::WatchStatus {
                    enabled: true,
                    active: false,
                    backend: "none",
                    last_scan_at: None,
                    error: Some(e),
                }
            }
        };
        *self.0.watch_status.lock().unwrap_or_else(|p| p.into_inner()) = status;
        let engine = self.clone();
        let task = tokio::spawn(async move {
            while let Some(mut paths) = rx.recv().await {
                // Coalesce whatever else arrived meanwhile into the same reload.
                while let Ok(more) = rx.try_recv() {
                    paths.extend(more);
                }
                paths.sort();
                paths.dedup();
                let files = paths
                    .iter()
                    .map(|p| p.strip_prefix(&root).unwrap_or(p).display().to_string())
                    .collect();
                engine.reload_files(files).await;
            }
        });
        self.0.tasks.lock().unwrap_or_else(|p| p.into_inner()).push(task);
    }

    /// Rescan the functions root and swap the new route map in. A scan with config errors
    /// keeps the last good map serving (errors are reported) unless nothing was served yet.
    pub async fn reload(&self) -> ReloadReport {
        // A manual reload also retries failed dependency installs.
        self.0.deps.retry_failed();
        self.reload_files(Vec::new()).await
    }

    async fn reload_files(&self, files: Vec<String>) -> ReloadReport {
        let _one_at_a_time = self.0.reload_lock.lock().await;
        let started = tokio::time::Instant::now();
        self.0.events.emit(EngineEvent::Phase {
            phase: Phase::Reloading,
        });
        let opts = discovery_options(&self.0.settings, &self.0.runtime_order);
        let root = self.0.settings.functions_root.clone();
        let max_asset_bytes = self.0.settings.max_asset_bytes;
        let (discovery, assets) = tokio::task::spawn_blocking(move || scan(&root, &opts, max_asset_bytes))
            .await
            .unwrap_or_else(|_| (empty_discovery(), None));
        let old = self.0.served.load_full();
        let old_patterns: std::collections::BTreeSet<&str> = old
            .discovery
            .routes
            .routes()
            .iter()
            .map(|r| r.pattern.as_str())
            .collect();
        let new_patterns: std::collections::BTreeSet<&str> =
            discovery.routes.routes().iter().map(|r| r.pattern.as_str()).collect();
        let added: Vec<String> = new_patterns.difference(&old_patterns).map(|s| s.to_string()).collect();
        let removed: Vec<String> = old_patterns.difference(&new_patterns).map(|s| s.to_string()).collect();
        let errors = discovery.errors.clone();
        let warnings = discovery.warnings.clone();
        let keep_old = !errors.is_empty() && !old.discovery.routes.routes().is_empty();
        let routes = if keep_old {
            old.discovery.routes.routes().len()
        } else {
            discovery.routes.routes().len()
        };
        // A function with new or changed manifests is `Preparing` before the new map goes live.
        self.prepare_deps(if keep_old { &old.discovery } else { &discovery })
            .await;
        if !keep_old {
            let served = self.build_served(discovery, assets);
            self.0.served.store(Arc::new(served));
        }
        let error = (!errors.is_empty()).then(|| errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "));
        *self.0.last_reload_error.lock().unwrap_or_else(|p| p.into_inner()) = error.clone();
        let ms = started.elapsed().as_millis() as u64;
        let (added, removed) = if keep_old { (vec![], vec![]) } else { (added, removed) };
        self.0
            .watch_status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .last_scan_at = Some(crate::clock::epoch_secs());
        self.0.events.emit(EngineEvent::Reload {
            ok: errors.is_empty(),
            files: files.clone(),
            routes,
            added: added.clone(),
            removed: removed.clone(),
            ms,
            error,
        });
        self.0.events.emit(EngineEvent::Phase { phase: Phase::Serving });
        ReloadReport {
            ok: errors.is_empty(),
            routes,
            added,
            removed,
            ms,
            files,
            errors,
            warnings,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.0.addr
    }

    pub fn settings(&self) -> &Settings {
        &self.0.settings
    }

    pub fn served(&self) -> Arc<Served> {
        self.0.served.load_full()
    }

    pub fn events(&self) -> &EventBus {
        &self.0.events
    }

    pub fn logs(&self) -> &LogBook {
        &self.0.logs
    }

    pub fn runtime_order(&self) -> &[RuntimeKind] {
        &self.0.runtime_order
    }

    pub fn missing_runtimes(&self) -> &BTreeMap<RuntimeKind, String> {
        &self.0.missing
    }

    pub fn runtimes(&self) -> &BTreeMap<RuntimeKind, Arc<RuntimeSockets>> {
        &self.0.runtimes
    }

    pub fn daemons(&self) -> &[Arc<DaemonHandle>] {
        self.0.supervisor.daemons()
    }

    pub fn socket_dir(&self) -> &Path {
        &self.0.socket_dir
    }

    /// `/_fn/health` as JSON.
    pub fn health(&self) -> serde_json::Value {
        crate::admin::health(&self.0)
    }

    /// `/_fn/catalog` as JSON.
    pub fn catalog(&self) -> serde_json::Value {
        crate::admin::catalog(&self.0)
    }

    /// `/_fn/resolve` as JSON: which route would answer `method url`, and why.
    pub async fn resolve(&self, method: &str, url: &str) -> serde_json::Value {
        use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
        let query = format!(
            "method={}&url={}",
            utf8_percent_encode(method, NON_ALPHANUMERIC),
            utf8_percent_encode(url, NON_ALPHANUMERIC)
        );
        crate::admin::resolve(&self.0, &query).await
    }

    /// Stop serving, stop every daemon (and its process group), remove the socket folder.
    pub async fn stop(&self) {
        self.0.events.emit(EngineEvent::Phase { phase: Phase::Stopping });
        let _ = self.0.shutdown.send(true);
        drop(self.0.watcher.lock().unwrap_or_else(|p| p.into_inner()).take());
        self.0.supervisor.stop().await;
        for c in self.0.compiled.values() {
            c.stop().await;
        }
        let tasks: Vec<_> = std::mem::take(&mut *self.0.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        for t in tasks {
            t.abort();
            let _ = t.await;
        }
        let _ = std::fs::remove_dir_all(&self.0.socket_dir);
        self.0.events.emit(EngineEvent::Phase { phase: Phase::Stopped });
    }
}

impl Shared {
    pub fn served(&self) -> Arc<Served> {
        self.served.load_full()
    }

    pub(crate) fn next_request_id(&self) -> String {
        let n = self.seq.fetch_add(1, Ordering::Relaxed) % 1_000_000;
        format!("req-{}-{}-{:06}", crate::clock::epoch_millis(), self.pid, n)
    }

    pub(crate) fn last_reload_error(&self) -> Option<String> {
        self.last_reload_error.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(crate) fn watch_status(&self) -> crate::watch::WatchStatus {
        self.watch_status.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(crate) fn daemons(&self) -> &[Arc<DaemonHandle>] {
        self.supervisor.daemons()
    }

    pub(crate) async fn reload(self: &Arc<Self>) -> ReloadReport {
        Engine(self.clone()).reload().await
    }
}

/// `FN_UI_DIR` (a folder holding `index.html`), else `ui/dist` of the source tree.
fn console_assets(settings: &Settings) -> Option<crate::assets::Assets> {
    if !settings.ui_enabled {
        return None;
    }
    let dir = std::env::var_os("FN_UI_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("ui/dist"));
    let (parent, name) = (
        dir.parent()?.to_path_buf(),
        dir.file_name()?.to_string_lossy().into_owned(),
    );
    let cfg = crate::discovery::AssetsConfig {
        directory: name,
        spa: true,
        run_worker_first: false,
    };
    let assets = crate::assets::Assets::open(&parent, &cfg, settings.max_asset_bytes);
    if assets.is_none() {
        tracing::warn!(
            "FN_UI_ENABLED=1 but {} has no built dashboard (run `npm run build` in ui/)",
            dir.display()
        );
    }
    assets
}

/// Discovery plus the assets mount it names: blocking file-system work, run off the async
/// threads.
fn scan(root: &Path, opts: &DiscoveryOptions, max_asset_bytes: u64) -> (Discovery, Option<crate::assets::Assets>) {
    let discovery = discovery::discover(root, opts);
    let assets = discovery
        .assets
        .as_ref()
        .and_then(|cfg| crate::assets::Assets::open(root, cfg, max_asset_bytes));
    (discovery, assets)
}

fn empty_discovery() -> Discovery {
    Discovery {
        routes: crate::routing::RouteMap::default(),
        assets: None,
        warnings: Vec::new(),
        errors: Vec::new(),
        files_scanned: 0,
    }
}

fn discovery_options(settings: &Settings, runtimes: &[RuntimeKind]) -> DiscoveryOptions {
    DiscoveryOptions {
        runtimes: runtimes.to_vec(),
        force_url: settings.force_url,
        extra_ignore_dirs: settings.ignore_dirs.clone(),
        namespace_depth: settings.namespace_depth,
        policy_defaults: settings.policy_defaults,
    }
}

fn log_start_reports(reports: &[StartReport]) {
    for r in reports {
        if let Err(e) = &r.result {
            tracing::warn!("{} daemon {} failed to start: {e}", r.runtime, r.index);
        }
    }
}

/// Connect to every socket every `FN_HEALTH_INTERVAL`.
async fn probe_loop(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(shared.settings.health_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        for sockets in shared.runtimes.values() {
            for i in sockets.probe_all().await {
                let h = sockets.sockets[i].health();
                shared.events.emit(EngineEvent::SocketHealth {
                    runtime: sockets.kind,
                    index: i + 1,
                    up: h.up == Some(true),
                    reason: h.reason,
                });
            }
        }
    }
}
