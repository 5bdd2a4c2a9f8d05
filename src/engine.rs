//! The engine: settings → discovery → route map, daemons under the supervisor, health probes,
//! and the HTTP gateway, with one lifecycle (start, reload, stop) that the CLI and the desktop
//! app share.

use crate::config::project::Settings;
use crate::config::ConfigError;
use crate::discovery::{self, Discovery, DiscoveryOptions, TreeCache};
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
    /// Its own daemon, once it took a shared one down ([`crate::isolation`]).
    pub isolation: crate::isolation::Isolation,
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

    /// Forget the warm-up (the lab's "force cold"): the next call is reported and measured
    /// as cold, and warms the slot again.
    pub fn cool(&self) {
        self.warm.store(false, Ordering::Relaxed);
        self.warm_at_ms.store(0, Ordering::Relaxed);
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
    /// By target address (foldhash: looked up on every call, rebuilt on every reload).
    slots: HashMap<usize, Arc<FunctionSlot>, foldhash::fast::RandomState>,
    /// What `/` does instead of the normal lookup (`FN_HOME_*`, else the root config's
    /// `home`), read when the map is built: an edit of the root config reloads it.
    pub home: Option<crate::landing::HomeAction>,
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

/// Why a rescan produced no route map at all (as opposed to a map with config errors).
#[derive(Debug, Clone, thiserror::Error)]
pub enum RescanError {
    /// A bug in discovery; the last good map keeps serving.
    #[error("discovery panicked: {0}")]
    Panicked(String),
}

impl RescanError {
    pub fn code(&self) -> &'static str {
        match self {
            RescanError::Panicked(_) => "discovery.panic",
        }
    }

    fn into_config_error(self, root: &Path) -> ConfigError {
        ConfigError {
            code: self.code(),
            file: root.to_path_buf(),
            field: None,
            message: self.to_string(),
        }
    }
}

/// Run the blocking part of a scan, turning a panic into a [`RescanError`] instead of
/// unwinding through the reload (which would leave nothing, or an empty map, to publish).
fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, RescanError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|payload| {
        let text = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_string());
        RescanError::Panicked(text)
    })
}

/// Whether a reload publishes its scan or keeps the map being served. A folder whose
/// `fn.config.json` is invalid is left out of the scan, and the rest is published (as FastFN
/// does: one broken function must not freeze every later change). A broken root config shapes
/// every route, so then the last good map keeps serving, unless nothing is served yet
/// (start-up publishes what is valid). A scan that failed outright is never published.
fn keep_old(scanned: Option<&Discovery>, root: &Path, serving_routes: usize) -> bool {
    match scanned {
        None => true,
        Some(d) => serving_routes > 0 && d.errors.iter().any(|e| is_root_config(&e.file, root)),
    }
}

/// A config file at the top of the functions root (or the project's `fastfn.json`).
fn is_root_config(file: &Path, root: &Path) -> bool {
    let rel = file.strip_prefix(root).unwrap_or(file);
    rel.parent().is_none_or(|p| p.as_os_str().is_empty()) || !file.starts_with(root) && file.is_absolute()
}

/// The scanner a reload runs: a full scan in production; tests substitute one that fails.
type Scanner = fn(&Path, &DiscoveryOptions, u64, &mut TreeCache) -> (Discovery, Option<crate::assets::Assets>);

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
    pub console: Option<crate::console::ConsoleUi>,
    /// The console's write switch override, login attempts and sessions, write lock.
    pub manage: crate::manage::State,
    served: ArcSwap<Served>,
    pub runtimes: BTreeMap<RuntimeKind, Arc<RuntimeSockets>>,
    /// Runtimes left out, with why (missing interpreter…).
    pub missing: BTreeMap<RuntimeKind, String>,
    /// Enabled and available runtimes, in order.
    pub runtime_order: Vec<RuntimeKind>,
    pub events: EventBus,
    pub logs: Arc<LogBook>,
    /// Schedules and keep-warm pings (`crate::scheduler`).
    pub scheduler: Arc<crate::scheduler::Scheduler>,
    /// Async jobs (`/_fn/jobs`), read back from their folder at start.
    pub jobs: Arc<crate::jobs::Jobs>,
    /// `event.secrets`, `/_fn/secrets` and output masking.
    pub secrets: crate::secrets::Secrets,
    /// Injected faults, forced cold starts and load runs (`/_fn/lab`).
    pub lab: crate::lab::Lab,
    /// The request log (`/_fn/requests`).
    pub inspector: crate::inspect::Inspector,
    supervisor: Supervisor,
    slots: Mutex<HashMap<String, Arc<FunctionSlot>>>,
    pub socket_dir: PathBuf,
    pub addr: SocketAddr,
    pub pid: u32,
    pub config_loaded_at: f64,
    seq: AtomicU64,
    /// What discovery has read, patched by the watcher's paths between reloads. Locked by
    /// whoever holds `reload_lock`.
    tree: Mutex<TreeCache>,
    reload_lock: tokio::sync::Mutex<()>,
    last_reload_error: Mutex<Option<String>>,
    watch_status: Mutex<crate::watch::WatchStatus>,
    watcher: Mutex<Option<crate::watch::Watcher>>,
    shutdown: watch::Sender<bool>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// The gateway's accept loop; it returns once its connections are drained.
    serving: Mutex<Option<tokio::task::JoinHandle<()>>>,
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

/// Whether a process with `pid` exists (signal 0; `EPERM` means it exists but is not ours).
fn pid_alive(pid: u32) -> bool {
    let Ok(raw) = i32::try_from(pid) else {
        return false;
    };
    raw > 0
        && !matches!(
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(raw), None),
            Err(nix::errno::Errno::ESRCH)
        )
}

/// Remove the `s-<pid>` socket folders under `base` left by engines that died without cleaning
/// up (SIGKILL). Careful by construction: only names of exactly our pattern, only real folders
/// (a symlink named `s-1` is left alone and never followed), never our own pid, and only when
/// `alive` says no process has that pid (a live one may be another engine). Returns what it
/// removed.
fn sweep_stale_socket_dirs(base: &Path, own_pid: u32, alive: impl Fn(u32) -> bool) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(base) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("s-"))
            .filter(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|digits| digits.parse::<u32>().ok())
        else {
            continue;
        };
        // `file_type` does not follow symlinks.
        let is_real_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if !is_real_dir || pid == own_pid || alive(pid) {
            continue;
        }
        // `remove_dir_all` does not follow symlinks inside the folder either.
        match std::fs::remove_dir_all(entry.path()) {
            Ok(()) => removed.push(entry.path()),
            Err(e) => tracing::debug!("cannot remove the stale socket folder {}: {e}", entry.path().display()),
        }
    }
    removed
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
        if let Some(base) = socket_dir.parent() {
            for dir in sweep_stale_socket_dirs(base, pid, pid_alive) {
                tracing::debug!("removed the socket folder of a dead engine: {}", dir.display());
            }
        }
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
                        // docs/protocol.md: the engine speaks v2 to the daemons it starts.
                        ("FN_DAEMON_PROTOCOL".into(), "2".into()),
                        ("FN_RUNTIME".into(), rt.to_string()),
                        ("FN_SOCKET_INDEX".into(), (i + 1).to_string()),
                        // Read by the daemons' strict sandbox (docs/compat.md).
                        (
                            "FN_STRICT_FS_ALLOW".into(),
                            settings.strict_fs_allow.clone().unwrap_or_default(),
                        ),
                    ],
                    env_remove: env_remove.clone(),
                    cwd: settings.functions_root.clone(),
                });
            }
            runtimes.insert(
                rt,
                Arc::new(RuntimeSockets::with_limits(
                    rt,
                    paths,
                    settings.runtime_connections,
                    settings.max_frame_bytes,
                )),
            );
        }

        let logs = Arc::new(LogBook::for_settings(&settings));
        let ctx = SupervisorCtx {
            events: events.clone(),
            logs: logs.clone(),
        };
        let launcher = Arc::new(ProcessLauncher { ctx: ctx.clone() });
        let discovery_opts = DiscoveryOptions::for_settings(&settings, &runtime_order);
        let supervisor = Supervisor::new(launcher, specs, runtimes.values().cloned().collect(), ctx);

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
            manage: crate::manage::State::new(&settings.console),
            lua: runtime_order
                .contains(&RuntimeKind::Lua)
                .then(|| crate::runtime::lua::LuaRuntime::new(settings.functions_root.clone())),
            deps: crate::deps::Deps::with_options(
                settings.binary("python").to_string(),
                settings.binary("npm").to_string(),
                settings.binary("composer").to_string(),
                events.clone(),
                crate::deps::Options {
                    toggles: settings.deps,
                    ..Default::default()
                },
            ),
            compiled,
            served: ArcSwap::from_pointee(Served {
                discovery: empty_discovery(),
                assets: None,
                slots: HashMap::default(),
                home: None,
                generated_at: 0.0,
            }),
            runtimes,
            missing,
            runtime_order,
            events: events.clone(),
            logs,
            scheduler: Arc::new(crate::scheduler::Scheduler::new(settings.scheduler.clone())),
            jobs: Arc::new(crate::jobs::Jobs::load(settings.jobs.clone(), &settings.functions_root)),
            secrets: crate::secrets::Secrets::default(),
            lab: crate::lab::Lab::default(),
            inspector: crate::inspect::Inspector::new(settings.inspect.clone()),
            supervisor,
            slots: Mutex::new(HashMap::new()),
            socket_dir,
            addr,
            pid,
            config_loaded_at: crate::clock::epoch_secs(),
            seq: AtomicU64::new(0),
            tree: Mutex::new(TreeCache::default()),
            reload_lock: tokio::sync::Mutex::new(()),
            last_reload_error: Mutex::new(None),
            watch_status: Mutex::new(crate::watch::WatchStatus::off()),
            watcher: Mutex::new(None),
            console: crate::console::ConsoleUi::open(&settings),
            shutdown,
            tasks: Mutex::new(Vec::new()),
            serving: Mutex::new(None),
            settings,
        });
        let engine = Engine(shared);
        // Held until the first map is published: a reload the watcher triggers meanwhile
        // waits, and so never publishes before (and is overwritten by) the start-up map.
        let first_publish = engine.0.reload_lock.lock().await;
        let scanned = match engine.first_scan(discovery_opts).await {
            Ok(scanned) => scanned,
            Err(e) => {
                drop(first_publish);
                engine.stop().await;
                return Err(e);
            }
        };
        for (rt, sockets) in &engine.0.runtimes {
            if !engine.0.supervisor.is_running(*rt) {
                for i in 0..sockets.sockets.len() {
                    sockets.observe(i, Err(NOT_NEEDED), crate::clock::epoch_secs());
                }
                events.emit(EngineEvent::RuntimeDemand {
                    runtime: *rt,
                    needed: false,
                });
            }
        }
        let served = engine.build_served(scanned.0, scanned.1, None);
        engine.0.served.store(Arc::new(served));
        drop(first_publish);
        // A runtime whose candidates all lost their URLs was started for nothing.
        engine.retire_unneeded().await;

        let probe = tokio::spawn(probe_loop(engine.0.clone()));
        let usage = tokio::spawn(crate::usage::sample_loop(engine.daemons().to_vec(), events.clone()));
        let serve = tokio::spawn(crate::gateway::serve(
            engine.0.clone(),
            listener,
            engine.0.shutdown.subscribe(),
        ));
        engine.0.scheduler.restore();
        let scheduling = crate::scheduler::spawn(&engine.0);
        engine.0.tasks.lock().unwrap_or_else(|p| p.into_inner()).extend(
            [
                probe,
                usage,
                crate::inspect::saved::spawn_reruns(engine.0.clone()),
                tokio::spawn(crate::inspect::live::run(engine.0.clone())),
            ]
            .into_iter()
            .chain(scheduling),
        );
        if engine.0.jobs.enabled() {
            let jobs = tokio::spawn(crate::jobs::work(engine.0.clone(), engine.0.shutdown.subscribe()));
            engine.0.tasks.lock().unwrap_or_else(|p| p.into_inner()).push(jobs);
        }
        *engine.0.serving.lock().unwrap_or_else(|p| p.into_inner()) = Some(serve);
        events.emit(EngineEvent::Phase { phase: Phase::Serving });
        Ok(engine)
    }

    /// The start-up scan, with everything that can overlap it: the watches are set up (a
    /// blocking walk) while the tree is read, each runtime's daemons start as soon as the scan
    /// finds its first route candidate (a Python daemon's start is as long as a cold scan of
    /// 10,000 files: in sequence they were most of a large project's launch), and dependency
    /// manifests are read once the routes are known. Returns when the map can go live: routes
    /// mapped, the daemons they need ready.
    async fn first_scan(
        &self,
        opts: DiscoveryOptions,
    ) -> Result<(Discovery, Option<crate::assets::Assets>), StartError> {
        let settings = &self.0.settings;
        let t0 = std::time::Instant::now();
        let watching = settings.hot_reload.then(|| {
            let engine = self.clone();
            tokio::task::spawn_blocking(move || engine.start_watching())
        });
        let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel();
        let root = settings.functions_root.clone();
        let max_asset_bytes = settings.max_asset_bytes;
        let discovering = tokio::task::spawn_blocking(move || {
            let mut tree = TreeCache::default();
            let on_runtime = |rt: RuntimeKind| {
                let _ = seen_tx.send(rt);
            };
            let (discovery, assets) = scan_observed(&root, &opts, max_asset_bytes, &mut tree, &on_runtime);
            (discovery, assets, tree)
        });
        // Daemons of the runtimes the scan finds, started as they are found.
        let early = async {
            use futures_util::stream::{FuturesUnordered, StreamExt};
            let mut starting = FuturesUnordered::new();
            let mut reports = Vec::new();
            loop {
                tokio::select! {
                    seen = seen_rx.recv() => match seen {
                        Some(rt) if self.0.runtimes.contains_key(&rt) && !self.0.supervisor.is_running(rt) => {
                            self.0.events.emit(EngineEvent::RuntimeDemand { runtime: rt, needed: true });
                            starting.push(async move { self.0.supervisor.ensure(&[rt]).await });
                        }
                        Some(_) => {}
                        None => break,
                    },
                    Some(r) = starting.next(), if !starting.is_empty() => reports.extend(r),
                }
            }
            while let Some(r) = starting.next().await {
                reports.extend(r);
            }
            tracing::debug!("start: daemons ready at {:?}", t0.elapsed());
            reports
        };
        let after_scan = async {
            let (discovery, assets, tree) = discovering.await.map_err(|e| ConfigError {
                code: "discovery.panic",
                file: settings.functions_root.clone(),
                field: None,
                message: e.to_string(),
            })?;
            *self.0.tree.lock().unwrap_or_else(|p| p.into_inner()) = tree;
            tracing::debug!("start: scan done at {:?}", t0.elapsed());
            self.prepare_deps(&discovery, None).await;
            tracing::debug!("start: dependency manifests read at {:?}", t0.elapsed());
            Ok::<_, StartError>((discovery, assets))
        };
        let (early_reports, scanned) = tokio::join!(early, after_scan);
        log_start_reports(&early_reports);
        let scanned = scanned?;
        // Anything the observer did not start (nothing, unless a runtime's daemons failed).
        log_start_reports(&self.apply_demand(&scanned.0).await);
        if let Some(watching) = watching {
            let _ = watching.await;
        }
        tracing::debug!("start: watches set at {:?}", t0.elapsed());
        Ok(scanned)
    }

    /// Start the daemons of runtimes `discovery` has routes for and that are not running yet
    /// (waiting until they are ready, so the map that needs them can go live). Stopping the
    /// ones it no longer needs is [`Engine::retire_unneeded`], after the map is swapped.
    async fn apply_demand(&self, discovery: &Discovery) -> Vec<StartReport> {
        let needed = needed_runtimes(discovery);
        let start: Vec<RuntimeKind> = self
            .0
            .runtimes
            .keys()
            .copied()
            .filter(|rt| needed.contains(rt) && !self.0.supervisor.is_running(*rt))
            .collect();
        for &runtime in &start {
            self.0.events.emit(EngineEvent::RuntimeDemand { runtime, needed: true });
        }
        self.0.supervisor.ensure(&start).await
    }

    /// Stop the daemons of runtimes the served map has no route for.
    async fn retire_unneeded(&self) {
        let needed = needed_runtimes(&self.0.served.load().discovery);
        for &runtime in self.0.runtimes.keys() {
            if !needed.contains(&runtime) && self.0.supervisor.is_running(runtime) {
                self.0.supervisor.retire(runtime, NOT_NEEDED).await;
                self.0
                    .events
                    .emit(EngineEvent::RuntimeDemand { runtime, needed: false });
            }
        }
    }

    /// Check (and start) per-function dependency installs for the targets of `discovery`
    /// (only in the folders of `touched` paths when given).
    async fn prepare_deps(&self, discovery: &Discovery, touched: Option<Vec<String>>) {
        let targets: Vec<Arc<Target>> = discovery.routes.routes().iter().map(|r| r.target.clone()).collect();
        let deps = self.0.deps.clone();
        let root = self.0.settings.functions_root.clone();
        // Reads manifests and stamps: off the async threads.
        let _ = tokio::task::spawn_blocking(move || deps.prepare_touched(&root, &targets, touched.as_deref())).await;
    }

    /// The served map for `discovery`, with each target's live slot. `previous` is the map
    /// being replaced: a target it already served (the same `Arc`, which a reload keeps for
    /// every untouched folder) takes its slot without building the key again.
    fn build_served(
        &self,
        discovery: Discovery,
        assets: Option<crate::assets::Assets>,
        previous: Option<&Served>,
    ) -> Served {
        let mut known = self.0.slots.lock().unwrap_or_else(|p| p.into_inner());
        let mut slots = HashMap::with_capacity_and_hasher(discovery.routes.routes().len(), Default::default());
        for route in discovery.routes.routes() {
            let t = &route.target;
            if let Some(slot) = previous.and_then(|p| p.slot(t)) {
                slots.insert(Arc::as_ptr(t) as usize, slot.clone());
                continue;
            }
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
                    Arc::new(FunctionSlot {
                        key: key.clone(),
                        runtime: t.runtime,
                        name: t.fn_name.clone(),
                        // Its changes reach the dashboard in batches (`inspect::live`).
                        pool: Pool::new(limits),
                        warm: AtomicBool::new(false),
                        warm_at_ms: AtomicU64::new(0),
                        isolation: Default::default(),
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
            home: crate::landing::home_action(&self.0.settings),
            generated_at: crate::clock::epoch_secs(),
            assets,
        }
    }

    /// Watch the functions root and run a reload for every batch of changes. Blocking (notify
    /// walks the tree to set up its watches); needs the tokio runtime context for its tasks.
    fn start_watching(&self) {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Vec<PathBuf>>();
        let root = self.0.settings.functions_root.clone();
        let status = match crate::watch::start(&root, self.0.settings.hot_reload_tuning, tx) {
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
                engine.reload_paths(paths).await;
            }
        });
        self.0.tasks.lock().unwrap_or_else(|p| p.into_inner()).push(task);
    }

    /// Rescan the functions root (everything read again) and swap the new route map in. A
    /// scan with config errors keeps the last good map serving (errors are reported) unless
    /// nothing was served yet.
    pub async fn reload(&self) -> ReloadReport {
        // A manual reload also retries failed dependency installs.
        self.0.deps.retry_failed();
        self.rescan(None, Vec::new(), scan).await
    }

    /// A reload for changed paths (absolute, from the watcher): only those are read again.
    async fn reload_paths(&self, paths: Vec<PathBuf>) -> ReloadReport {
        let root = &self.0.settings.functions_root;
        let files: Vec<String> = paths
            .iter()
            .map(|p| p.strip_prefix(root).unwrap_or(p).display().to_string())
            .collect();
        // A path outside the root (the watcher's "rescan everything" signal is the root
        // itself) means: forget the cache.
        let touched = paths
            .iter()
            .map(|p| p.strip_prefix(root).ok().map(|r| r.display().to_string()))
            .collect::<Option<Vec<String>>>()
            .filter(|t| t.iter().all(|r| !r.is_empty()));
        self.rescan(touched, files, scan).await
    }

    /// One reload: patch the tree cache with `touched` (or clear it when `None`), run
    /// `scanner` off the async threads with panics caught, and publish or keep the map.
    async fn rescan(&self, touched: Option<Vec<String>>, files: Vec<String>, scanner: Scanner) -> ReloadReport {
        let _one_at_a_time = self.0.reload_lock.lock().await;
        let started = tokio::time::Instant::now();
        self.0.events.emit(EngineEvent::Phase {
            phase: Phase::Reloading,
        });
        let opts = DiscoveryOptions::for_settings(&self.0.settings, &self.0.runtime_order);
        let root = self.0.settings.functions_root.clone();
        let max_asset_bytes = self.0.settings.max_asset_bytes;
        let mut tree = std::mem::take(&mut *self.0.tree.lock().unwrap_or_else(|p| p.into_inner()));
        let blocking_root = root.clone();
        let touched_folders = touched.clone();
        let joined = tokio::task::spawn_blocking(move || {
            let root = blocking_root;
            match &touched {
                None => tree.clear(),
                Some(paths) => paths.iter().for_each(|p| tree.touch(&root, p)),
            }
            let out = guarded(|| scanner(&root, &opts, max_asset_bytes, &mut tree));
            // A panic may have left the cache half-patched: read everything next time.
            let tree = if out.is_ok() { tree } else { TreeCache::default() };
            (out, tree)
        })
        .await;
        let scanned = match joined {
            Ok((out, tree)) => {
                *self.0.tree.lock().unwrap_or_else(|p| p.into_inner()) = tree;
                out
            }
            Err(e) => Err(RescanError::Panicked(e.to_string())),
        };
        let old = self.0.served.load_full();
        let keep = keep_old(
            scanned.as_ref().ok().map(|(d, _)| d),
            &root,
            old.discovery.routes.routes().len(),
        );
        let (errors, warnings) = match &scanned {
            Ok((d, _)) => (d.errors.clone(), d.warnings.clone()),
            Err(e) => {
                tracing::error!("reload failed, the last good route map keeps serving: {e}");
                (vec![e.clone().into_config_error(&root)], Vec::new())
            }
        };
        let (routes, added, removed) = match (&scanned, keep) {
            (Ok((discovery, _)), false) => {
                let (added, removed) = route_diff(&old.discovery, discovery);
                (discovery.routes.routes().len(), added, removed)
            }
            _ => (old.discovery.routes.routes().len(), vec![], vec![]),
        };
        // A function with new or changed manifests is `Preparing` before the new map goes live.
        match (scanned, keep) {
            (Ok((discovery, assets)), false) => {
                let ((), reports) = tokio::join!(
                    self.prepare_deps(&discovery, touched_folders),
                    self.apply_demand(&discovery)
                );
                log_start_reports(&reports);
                let served = self.build_served(discovery, assets, Some(&old));
                self.0.served.store(Arc::new(served));
                self.retire_unneeded().await;
            }
            _ => self.prepare_deps(&old.discovery, touched_folders).await,
        }
        let error = (!errors.is_empty()).then(|| errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "));
        *self.0.last_reload_error.lock().unwrap_or_else(|p| p.into_inner()) = error.clone();
        let ms = started.elapsed().as_millis() as u64;
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

    /// `/_fn/schedules`: schedules and keep-warm entries with their state.
    pub fn schedules(&self) -> crate::scheduler::SchedulesSnapshot {
        self.0.scheduler.snapshot(&self.0)
    }

    /// "Run now" of the schedule `key` (`POST /_fn/schedules/run`): its status and error.
    pub async fn run_schedule(&self, key: &str) -> Result<(u16, String), crate::scheduler::RunNowError> {
        self.0.scheduler.run_now(&self.0, key).await
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
        // Faults never outlive the engine; a running load stops before the gateway drains.
        self.0.lab.shutdown();
        let _ = self.0.shutdown.send(true);
        // No new scheduled calls; the state as it is now goes to disk.
        self.0.scheduler.stop();
        drop(self.0.watcher.lock().unwrap_or_else(|p| p.into_inner()).take());
        // Drain: requests in flight finish on live daemons before those are stopped.
        let serving = self.0.serving.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(serving) = serving {
            let _ = serving.await;
        }
        crate::isolation::stop_all(&self.0).await;
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

    pub(crate) fn supervisor(&self) -> &Supervisor {
        &self.supervisor
    }

    /// Every function slot the engine has made (also of functions no longer served).
    pub(crate) fn function_slots(&self) -> Vec<Arc<FunctionSlot>> {
        self.slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    pub(crate) fn next_request_id(&self) -> String {
        self.next_request_key().to_string()
    }

    /// The parts of the next request id (numbers: tagging a request's log lines with it
    /// costs no allocation).
    pub(crate) fn next_request_key(&self) -> crate::inspect::logs::RequestKey {
        let n = self.seq.fetch_add(1, Ordering::Relaxed) % 1_000_000;
        crate::inspect::logs::RequestKey {
            ms: crate::clock::epoch_millis(),
            pid: self.pid,
            n,
        }
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

    /// Whether `runtime`'s daemons run: false for an enabled runtime with no route.
    pub(crate) fn runtime_needed(&self, runtime: RuntimeKind) -> bool {
        self.supervisor.is_running(runtime)
    }

    pub(crate) async fn reload(self: &Arc<Self>) -> ReloadReport {
        Engine(self.clone()).reload().await
    }
}

/// Discovery plus the assets mount it names: blocking file-system work, run off the async
/// threads.
fn scan(
    root: &Path,
    opts: &DiscoveryOptions,
    max_asset_bytes: u64,
    tree: &mut TreeCache,
) -> (Discovery, Option<crate::assets::Assets>) {
    scan_observed(root, opts, max_asset_bytes, tree, &|_| {})
}

/// [`scan`], telling `on_runtime` each runtime as its first route candidate is found.
fn scan_observed(
    root: &Path,
    opts: &DiscoveryOptions,
    max_asset_bytes: u64,
    tree: &mut TreeCache,
    on_runtime: &dyn Fn(RuntimeKind),
) -> (Discovery, Option<crate::assets::Assets>) {
    let discovery = discovery::discover_observed(root, opts, tree, on_runtime);
    let assets = discovery
        .assets
        .as_ref()
        .and_then(|cfg| crate::assets::Assets::open(root, cfg, max_asset_bytes));
    (discovery, assets)
}

/// Patterns the new map adds and removes, sorted.
fn route_diff(old: &Discovery, new: &Discovery) -> (Vec<String>, Vec<String>) {
    // Borrowed patterns, merged in order: a reload of a large tree copies only what changed
    // and hashes nothing (the map lists its routes by pattern already; sorting a sorted list
    // is one pass).
    fn patterns(d: &Discovery) -> Vec<&str> {
        let mut v: Vec<&str> = d.routes.routes().iter().map(|r| r.pattern.as_str()).collect();
        v.sort_unstable();
        v.dedup();
        v
    }
    let (before, after) = (patterns(old), patterns(new));
    let (mut added, mut removed) = (Vec::new(), Vec::new());
    let (mut b, mut a) = (before.iter().peekable(), after.iter().peekable());
    loop {
        match (b.peek(), a.peek()) {
            (Some(x), Some(y)) if x == y => {
                b.next();
                a.next();
            }
            (Some(x), Some(y)) if x < y => removed.push(b.next().map(|s| s.to_string()).unwrap_or_default()),
            (_, Some(_)) => added.push(a.next().map(|s| s.to_string()).unwrap_or_default()),
            (Some(_), None) => removed.push(b.next().map(|s| s.to_string()).unwrap_or_default()),
            (None, None) => break,
        }
    }
    (added, removed)
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

/// Why a runtime's sockets are down while it has no route (health reason).
pub const NOT_NEEDED: &str = "not needed";

/// The daemon runtimes (python, node, php) that `discovery`'s routes use.
fn needed_runtimes(discovery: &Discovery) -> std::collections::BTreeSet<RuntimeKind> {
    discovery
        .routes
        .routes()
        .iter()
        .map(|r| r.target.runtime)
        .filter(|rt| rt.uses_daemons())
        .collect()
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
            // A runtime with no route has no daemon to probe ("not needed", not down).
            if !shared.supervisor.is_running(sockets.kind) {
                continue;
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::project::Overrides;

    #[test]
    fn route_diff_lists_added_and_removed_patterns_in_order() {
        let tree = |files: &[&str]| {
            let dir = tempfile::tempdir().unwrap();
            for f in files {
                let path = dir.path().join(f);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(path, "def handler(e): pass").unwrap();
            }
            let opts = DiscoveryOptions {
                runtimes: vec![RuntimeKind::Python],
                ..DiscoveryOptions::default()
            };
            discovery::discover(dir.path(), &opts)
        };
        let old = tree(&["a.py", "b.py", "c/d.py", "e.py", "get.x.py", "post.x.py"]);
        let new = tree(&["a0.py", "b.py", "c/d.py", "c/f.py", "get.x.py", "z.py"]);
        let (added, removed) = route_diff(&old, &new);
        assert_eq!(added, ["/a0", "/c/f", "/z"]);
        assert_eq!(removed, ["/a", "/e"]);
        assert_eq!(route_diff(&new, &new), (vec![], vec![]));
        assert_eq!(route_diff(&empty_discovery(), &new).0.len(), 6);
    }

    #[test]
    fn stale_socket_folders_of_dead_engines_are_swept() {
        let base = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("keep.txt"), "x").unwrap();
        let b = base.path();
        for name in ["s-100", "s-200", "s-300", "s-abc", "s-", "s-100x", "other"] {
            std::fs::create_dir(b.join(name)).unwrap();
            std::fs::write(b.join(name).join("fn-python.sock"), "").unwrap();
        }
        // A dead pid's folder holding a symlink out: the link goes, its target stays.
        std::os::unix::fs::symlink(outside.path(), b.join("s-100/link")).unwrap();
        // A symlink with our name pattern is never followed nor removed.
        std::os::unix::fs::symlink(outside.path(), b.join("s-400")).unwrap();
        std::fs::write(b.join("s-500"), "a file, not ours").unwrap();
        let alive = |pid: u32| pid == 200;
        let mut removed = sweep_stale_socket_dirs(b, 300, alive);
        removed.sort();
        assert_eq!(removed, vec![b.join("s-100")]);
        for kept in ["s-200", "s-300", "s-abc", "s-", "s-100x", "other", "s-400", "s-500"] {
            assert!(b.join(kept).symlink_metadata().is_ok(), "{kept} was removed");
        }
        assert!(outside.path().join("keep.txt").exists());
        assert!(sweep_stale_socket_dirs(&b.join("missing"), 1, alive).is_empty());
    }

    #[test]
    fn pid_liveness() {
        assert!(pid_alive(std::process::id()));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!pid_alive(pid), "a reaped child is dead");
        assert!(!pid_alive(0) && !pid_alive(u32::MAX));
    }

    #[test]
    fn a_failed_scan_is_never_published() {
        let panicked: Result<Discovery, _> = guarded(|| panic!("boom"));
        match &panicked {
            Err(RescanError::Panicked(m)) => assert_eq!(m, "boom"),
            Ok(_) => panic!("not caught"),
        }
        let root = Path::new("/p/fns");
        assert!(keep_old(None, root, 0) && keep_old(None, root, 3));
        let mut with_errors = empty_discovery();
        assert!(!keep_old(Some(&with_errors), root, 3));
        let error = |file: &str| ConfigError {
            code: "config.invalid_json",
            file: file.into(),
            field: None,
            message: "x".into(),
        };
        with_errors.errors.push(error("/p/fns/broken/fn.config.json"));
        assert!(
            !keep_old(Some(&with_errors), root, 3),
            "a broken folder is left out, the rest published"
        );
        with_errors.errors.push(error("/p/fns/fn.config.json"));
        assert!(
            keep_old(Some(&with_errors), root, 3),
            "a broken root config keeps the last map"
        );
        assert!(
            !keep_old(Some(&with_errors), root, 0),
            "start-up publishes what is valid"
        );
        with_errors.errors = vec![error("fn.config.json")];
        assert!(keep_old(Some(&with_errors), root, 3), "relative root config");
        with_errors.errors = vec![error("/p/fastfn.json")];
        assert!(keep_old(Some(&with_errors), root, 3), "the project file");
    }

    /// An engine with only lua (in-process: no daemons) on port 0.
    async fn lua_engine(root: &Path, base: &Path) -> Engine {
        let env: HashMap<&str, String> = HashMap::from([
            ("FN_RUNTIMES", "lua".to_string()),
            ("FN_SOCKET_BASE_DIR", base.display().to_string()),
            ("FN_HOT_RELOAD", "0".to_string()),
        ]);
        let settings = Settings::resolve(
            &Overrides {
                dir: Some(root.to_path_buf()),
                port: Some(0),
                ..Default::default()
            },
            &|k| env.get(k).cloned(),
            root,
        )
        .unwrap();
        Engine::start(settings).await.unwrap()
    }

    fn panicking_scanner(
        _: &Path,
        _: &DiscoveryOptions,
        _: u64,
        _: &mut TreeCache,
    ) -> (Discovery, Option<crate::assets::Assets>) {
        panic!("discovery bug")
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_panicking_rescan_keeps_the_last_good_map_and_reports_it() {
        let root = tempfile::tempdir().unwrap();
        let base = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("hello.lua"), "function handler(e) return 'hi' end").unwrap();
        // A folder left by a SIGKILLed engine: swept at start.
        let mut dead = std::process::Command::new("true").spawn().unwrap();
        let dead_pid = dead.id();
        dead.wait().unwrap();
        std::fs::create_dir_all(base.path().join(format!("s-{dead_pid}"))).unwrap();

        let engine = lua_engine(root.path(), base.path()).await;
        assert!(
            !base.path().join(format!("s-{dead_pid}")).exists(),
            "stale socket folder kept"
        );
        let before: Vec<String> = engine
            .served()
            .discovery
            .routes
            .routes()
            .iter()
            .map(|r| r.pattern.clone())
            .collect();
        assert_eq!(before, vec!["/hello"]);
        let mut events = engine.events().subscribe();

        let report = engine.rescan(None, Vec::new(), panicking_scanner).await;
        assert!(!report.ok);
        assert_eq!(report.routes, 1);
        assert_eq!(report.errors.len(), 1);
        assert_eq!(report.errors[0].code, "discovery.panic");
        assert!(
            report.errors[0].message.contains("discovery bug"),
            "{:?}",
            report.errors
        );
        let after: Vec<String> = engine
            .served()
            .discovery
            .routes
            .routes()
            .iter()
            .map(|r| r.pattern.clone())
            .collect();
        assert_eq!(after, before, "the last good map must keep serving");
        assert!(engine
            .0
            .last_reload_error()
            .is_some_and(|e| e.contains("discovery bug")));
        let reload_event = loop {
            match events.try_recv() {
                Ok(EngineEvent::Reload { ok, error, .. }) => break (ok, error),
                Ok(_) => continue,
                Err(e) => panic!("no Reload event: {e}"),
            }
        };
        assert!(
            !reload_event.0
                && reload_event
                    .1
                    .is_some_and(|e| e.contains("discovery.panic") || e.contains("discovery bug"))
        );

        // The next good scan publishes again (the cache was reset, not left half-patched).
        std::fs::write(root.path().join("more.lua"), "function handler(e) return 'm' end").unwrap();
        let report = engine.reload().await;
        assert!(report.ok, "{:?}", report.errors);
        assert_eq!(report.added, vec!["/more"]);
        engine.stop().await;
    }
}
