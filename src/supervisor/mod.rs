//! The supervisor: starts the runtime daemons, waits until their sockets accept, restarts a
//! crashed daemon with [`backoff`], and stops every process group on shutdown.
//!
//! Invariants: each daemon runs in its own process group (so its children die with it); its
//! stdin is a pipe from the engine and our daemons exit on EOF, so none outlives an engine
//! killed with SIGKILL. Process I/O sits behind [`Launcher`]/[`DaemonChild`] so the restart
//! loop is tested with fake children and paused time.

pub mod backoff;

use crate::events::{EngineEvent, EventBus};
use crate::logs::{LogBook, LogLine};
use crate::process::{Signal, Tail};
use crate::runtime::{client, RuntimeKind, RuntimeSockets};
use backoff::Backoff;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How long a daemon may take to accept connections after it was spawned.
pub const READY_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a daemon gets between SIGTERM and SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(2);

/// Everything needed to start one daemon.
#[derive(Debug, Clone)]
pub struct DaemonSpec {
    pub runtime: RuntimeKind,
    /// 1-based socket index.
    pub index: usize,
    pub socket: PathBuf,
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub env: Vec<(String, String)>,
    /// Environment variables removed from the daemon's environment.
    pub env_remove: Vec<String>,
    pub cwd: PathBuf,
}

/// A running daemon process, as the restart loop sees it.
pub trait DaemonChild: Send {
    fn pid(&self) -> u32;
    /// Resolves once the daemon accepts connections, or with why it never will.
    fn ready(&mut self) -> impl std::future::Future<Output = Result<(), String>> + Send;
    /// Resolves when the process exits, with a readable status.
    fn wait(&mut self) -> impl std::future::Future<Output = String> + Send;
    /// Stop it (and its process group) for good.
    fn stop(&mut self) -> impl std::future::Future<Output = ()> + Send;
}

pub trait Launcher: Send + Sync + 'static {
    type Child: DaemonChild + 'static;
    fn launch(&self, spec: &DaemonSpec) -> std::io::Result<Self::Child>;
}

/// What the supervisor shares with the rest of the engine.
#[derive(Clone)]
pub struct SupervisorCtx {
    pub events: EventBus,
    pub logs: Arc<LogBook>,
}

/// Live facts about one daemon, for health and the dashboard.
#[derive(Debug)]
pub struct DaemonHandle {
    pub runtime: RuntimeKind,
    pub index: usize,
    pid: AtomicU32,
    restarts: AtomicU32,
    /// How it last ended (the status text) and when (epoch seconds); `None` before that.
    last_exit: Mutex<Option<(String, f64)>>,
    /// CPU use in hundredths of a percent of one core, sampled by [`crate::usage`].
    cpu_centi: AtomicU32,
    rss_bytes: std::sync::atomic::AtomicU64,
}

impl DaemonHandle {
    /// Last sampled CPU use (% of one core) and resident memory.
    pub fn usage(&self) -> (f32, u64) {
        (
            self.cpu_centi.load(Ordering::Relaxed) as f32 / 100.0,
            self.rss_bytes.load(Ordering::Relaxed),
        )
    }

    pub fn set_usage(&self, cpu_percent: f32, rss_bytes: u64) {
        self.cpu_centi
            .store((cpu_percent * 100.0).round() as u32, Ordering::Relaxed);
        self.rss_bytes.store(rss_bytes, Ordering::Relaxed);
    }

    /// SIGKILL the daemon's process group (tests and the dashboard's "kill" button): the
    /// supervisor sees it exit and restarts it with backoff.
    pub fn kill(&self) -> bool {
        crate::process::signal_group(self.pid(), Signal::SIGKILL)
    }

    /// 0 while not running.
    pub fn pid(&self) -> u32 {
        self.pid.load(Ordering::Relaxed)
    }

    pub fn restarts(&self) -> u32 {
        self.restarts.load(Ordering::Relaxed)
    }

    /// How the daemon last ended and when (epoch seconds), if it ever did.
    pub fn last_exit(&self) -> Option<(String, f64)> {
        self.last_exit.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn new(runtime: RuntimeKind, index: usize) -> DaemonHandle {
        DaemonHandle {
            runtime,
            index,
            pid: AtomicU32::new(0),
            restarts: AtomicU32::new(0),
            last_exit: Mutex::new(None),
            cpu_centi: AtomicU32::new(0),
            rss_bytes: std::sync::atomic::AtomicU64::new(0),
        }
    }
}

/// A daemon started for one function alone (see [`crate::isolation`]): kept alive with the
/// same restart loop as the shared ones until [`Dedicated::stop`].
pub struct Dedicated {
    pub handle: Arc<DaemonHandle>,
    shutdown: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Dedicated {
    /// Stop the daemon (and its process group) and wait until it is gone.
    pub async fn stop(&self) {
        let _ = self.shutdown.send(true);
        let task = self.task.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

/// Result of the first start of one daemon.
#[derive(Debug, Clone)]
pub struct StartReport {
    pub runtime: RuntimeKind,
    pub index: usize,
    pub result: Result<(), String>,
}

/// The daemons of the enabled runtimes. Every daemon has a [`DaemonHandle`] from the start
/// (pid 0 while not running), but a runtime's daemons run only between [`Supervisor::ensure`]
/// and [`Supervisor::retire`]: the engine starts a runtime when the route map first has a route
/// for it and stops it when the last one goes.
pub struct Supervisor<L: Launcher = ProcessLauncher> {
    launcher: Arc<L>,
    ctx: SupervisorCtx,
    specs: Vec<DaemonSpec>,
    sockets: Vec<Arc<RuntimeSockets>>,
    daemons: Vec<Arc<DaemonHandle>>,
    /// The runtimes whose keepers run, each with its own shutdown signal.
    running: Mutex<BTreeMap<RuntimeKind, Group>>,
}

/// The keepers of one runtime's daemons.
struct Group {
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl<L: Launcher> Supervisor<L> {
    /// Handles for every daemon of `specs`; nothing is started.
    pub fn new(
        launcher: Arc<L>,
        specs: Vec<DaemonSpec>,
        sockets: Vec<Arc<RuntimeSockets>>,
        ctx: SupervisorCtx,
    ) -> Self {
        let daemons = specs
            .iter()
            .map(|spec| Arc::new(DaemonHandle::new(spec.runtime, spec.index)))
            .collect();
        Supervisor {
            launcher,
            ctx,
            specs,
            sockets,
            daemons,
            running: Mutex::new(BTreeMap::new()),
        }
    }

    /// Start every daemon in parallel and wait until each is ready or has failed its first
    /// start. Failed daemons keep being retried with backoff in the background.
    pub async fn start(
        launcher: Arc<L>,
        specs: Vec<DaemonSpec>,
        sockets: Vec<Arc<RuntimeSockets>>,
        ctx: SupervisorCtx,
    ) -> (Supervisor<L>, Vec<StartReport>) {
        let runtimes: Vec<RuntimeKind> = specs.iter().map(|s| s.runtime).collect();
        let sup = Supervisor::new(launcher, specs, sockets, ctx);
        let reports = sup.ensure(&runtimes).await;
        (sup, reports)
    }

    pub fn daemons(&self) -> &[Arc<DaemonHandle>] {
        &self.daemons
    }

    /// The shared daemons of one runtime, in socket order.
    pub fn daemons_of(&self, runtime: RuntimeKind) -> Vec<Arc<DaemonHandle>> {
        self.daemons.iter().filter(|d| d.runtime == runtime).cloned().collect()
    }

    /// Whether `runtime`'s daemons are kept running.
    pub fn is_running(&self, runtime: RuntimeKind) -> bool {
        self.running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(&runtime)
    }

    /// Start the daemons of those `runtimes` that are not running yet, in parallel, and wait
    /// until each is ready or has failed its first start (it is then retried with backoff).
    /// Reports only the daemons it started.
    pub async fn ensure(&self, runtimes: &[RuntimeKind]) -> Vec<StartReport> {
        let mut firsts = Vec::new();
        {
            let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
            for &rt in runtimes {
                if running.contains_key(&rt) || !self.specs.iter().any(|s| s.runtime == rt) {
                    continue;
                }
                let (shutdown, _) = watch::channel(false);
                let mut tasks = Vec::new();
                for (spec, handle) in self.specs.iter().zip(&self.daemons).filter(|(s, _)| s.runtime == rt) {
                    let (first_tx, first_rx) = tokio::sync::oneshot::channel();
                    let keeper = Keeper {
                        launcher: self.launcher.clone(),
                        spec: spec.clone(),
                        handle: handle.clone(),
                        sockets: self.sockets.iter().find(|s| s.kind == rt).cloned(),
                        socket_i: spec.index - 1,
                        ctx: self.ctx.clone(),
                        shutdown: shutdown.subscribe(),
                    };
                    tasks.push(tokio::spawn(keeper.run(first_tx)));
                    firsts.push((rt, spec.index, first_rx));
                }
                running.insert(rt, Group { shutdown, tasks });
            }
        }
        let mut reports = Vec::new();
        for (runtime, index, rx) in firsts {
            let result = rx.await.unwrap_or_else(|_| Err("supervisor stopped".into()));
            reports.push(StartReport { runtime, index, result });
        }
        reports
    }

    /// Start a daemon of `runtime` for one function alone, on its own `socket` (health is
    /// kept in `sockets`, whose only socket it is). `index` numbers it after the shared
    /// daemons in events. `None` when the engine does not start that runtime's daemons (its
    /// sockets were given with `FN_RUNTIME_SOCKETS`).
    pub fn dedicated(
        &self,
        runtime: RuntimeKind,
        index: usize,
        socket: PathBuf,
        sockets: Arc<RuntimeSockets>,
    ) -> Option<Dedicated> {
        let base = self.specs.iter().find(|s| s.runtime == runtime)?;
        let mut spec = base.clone();
        spec.index = index;
        // The daemon program takes its socket as the last argument (docs/protocol.md).
        if let Some(last) = spec.args.last_mut() {
            *last = socket.clone().into_os_string();
        }
        spec.socket = socket;
        for (k, v) in &mut spec.env {
            if k == "FN_SOCKET_INDEX" {
                *v = index.to_string();
            }
        }
        let handle = Arc::new(DaemonHandle::new(runtime, index));
        let (shutdown, _) = watch::channel(false);
        let keeper = Keeper {
            launcher: self.launcher.clone(),
            spec,
            handle: handle.clone(),
            sockets: Some(sockets),
            socket_i: 0,
            ctx: self.ctx.clone(),
            shutdown: shutdown.subscribe(),
        };
        let (first, _) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(keeper.run(first));
        Some(Dedicated {
            handle,
            shutdown,
            task: Mutex::new(Some(task)),
        })
    }

    /// Stop `runtime`'s daemons (and their process groups) and wait until they are gone. Its
    /// sockets are marked down with `reason`.
    pub async fn retire(&self, runtime: RuntimeKind, reason: &str) {
        let group = self.running.lock().unwrap_or_else(|p| p.into_inner()).remove(&runtime);
        let Some(group) = group else {
            return;
        };
        let _ = group.shutdown.send(true);
        for task in group.tasks {
            let _ = task.await;
        }
        if let Some(sockets) = self.sockets.iter().find(|s| s.kind == runtime) {
            for i in 0..sockets.sockets.len() {
                sockets.observe(i, Err(reason), crate::clock::epoch_secs());
            }
        }
    }

    /// Stop every daemon and wait for their process groups to be gone.
    pub async fn stop(&self) {
        let runtimes: Vec<RuntimeKind> = self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .copied()
            .collect();
        for rt in runtimes {
            self.retire(rt, "stopped").await;
        }
    }
}

/// Keeps one daemon alive until shutdown.
struct Keeper<L: Launcher> {
    launcher: Arc<L>,
    spec: DaemonSpec,
    handle: Arc<DaemonHandle>,
    sockets: Option<Arc<RuntimeSockets>>,
    /// Its socket's position in `sockets`.
    socket_i: usize,
    ctx: SupervisorCtx,
    shutdown: watch::Receiver<bool>,
}

impl<L: Launcher> Keeper<L> {
    async fn run(mut self, first: tokio::sync::oneshot::Sender<Result<(), String>>) {
        let mut first = Some(first);
        let mut backoff = Backoff::default();
        let (runtime, index) = (self.spec.runtime, self.spec.index);
        loop {
            let started = Instant::now();
            let status = match self.launcher.launch(&self.spec) {
                Ok(mut child) => {
                    let pid = child.pid();
                    self.handle.pid.store(pid, Ordering::Relaxed);
                    self.ctx.events.emit(EngineEvent::DaemonStarted { runtime, index, pid });
                    let ready = tokio::select! {
                        r = child.ready() => r,
                        _ = self.shutdown.changed() => { child.stop().await; break; }
                    };
                    match &ready {
                        Ok(()) => {
                            let ms = started.elapsed().as_millis() as u64;
                            self.ctx.events.emit(EngineEvent::DaemonReady {
                                runtime,
                                index,
                                pid,
                                ms,
                            });
                            self.mark(true, "ok");
                        }
                        Err(e) => self.mark(false, e),
                    }
                    if let Some(tx) = first.take() {
                        let _ = tx.send(ready.clone());
                    }
                    let status = if ready.is_ok() {
                        tokio::select! {
                            s = child.wait() => s,
                            _ = self.shutdown.changed() => { child.stop().await; break; }
                        }
                    } else {
                        child.stop().await;
                        ready.err().unwrap_or_default()
                    };
                    self.handle.pid.store(0, Ordering::Relaxed);
                    self.mark(false, "daemon exited");
                    (pid, status)
                }
                Err(e) => {
                    let message = format!("cannot start {}: {e}", self.spec.program.display());
                    self.ctx.events.emit(EngineEvent::DaemonFailed {
                        runtime,
                        index,
                        code: "runtime.spawn_failed",
                        message: message.clone(),
                    });
                    if let Some(tx) = first.take() {
                        let _ = tx.send(Err(message.clone()));
                    }
                    (0, message)
                }
            };
            *self.handle.last_exit.lock().unwrap_or_else(|p| p.into_inner()) =
                Some((status.1.clone(), crate::clock::epoch_secs()));
            let delay = backoff.on_exit(started.elapsed());
            self.ctx.events.emit(EngineEvent::DaemonExited {
                runtime,
                index,
                pid: status.0,
                status: status.1,
                restart_in_ms: Some(delay.as_millis() as u64),
            });
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = self.shutdown.changed() => break,
            }
            self.handle.restarts.fetch_add(1, Ordering::Relaxed);
        }
        self.handle.pid.store(0, Ordering::Relaxed);
    }

    fn mark(&self, up: bool, reason: &str) {
        if let Some(sockets) = &self.sockets {
            let i = self.socket_i;
            let result = if up { Ok(()) } else { Err(reason) };
            if sockets.observe(i, result, crate::clock::epoch_secs()) {
                self.ctx.events.emit(EngineEvent::SocketHealth {
                    runtime: self.spec.runtime,
                    index: self.spec.index,
                    up,
                    reason: reason.to_string(),
                });
            }
        }
    }
}

/// Starts real processes.
pub struct ProcessLauncher {
    pub ctx: SupervisorCtx,
}

/// A real daemon process.
pub struct ProcessChild {
    child: tokio::process::Child,
    /// Held open for the daemon's whole life (taken out of `child` because tokio's `wait`
    /// closes it): the daemon exits when it reads EOF here.
    _stdin: Option<tokio::process::ChildStdin>,
    pid: u32,
    socket: PathBuf,
    /// The last stderr lines, for a crash report.
    stderr_tail: Arc<Tail>,
}

impl Launcher for ProcessLauncher {
    type Child = ProcessChild;

    fn launch(&self, spec: &DaemonSpec) -> std::io::Result<ProcessChild> {
        let mut child = crate::process::spawn(&crate::process::Spec {
            program: spec.program.as_os_str(),
            args: spec.args.clone(),
            cwd: &spec.cwd,
            env: spec.env.iter().map(|(k, v)| (k.into(), v.into())).collect(),
            env_remove: spec.env_remove.iter().map(OsString::from).collect(),
            stdin_pipe: true,
        })?;
        let pid = child.id().unwrap_or(0);
        let stdin = child.stdin.take();
        let stderr_tail = Arc::new(Tail::default());
        if let Some(out) = child.stdout.take() {
            tokio::spawn(pump(out, "stdout", spec.runtime, spec.index, self.ctx.clone(), None));
        }
        if let Some(err) = child.stderr.take() {
            tokio::spawn(pump(
                err,
                "stderr",
                spec.runtime,
                spec.index,
                self.ctx.clone(),
                Some(stderr_tail.clone()),
            ));
        }
        Ok(ProcessChild {
            child,
            _stdin: stdin,
            pid,
            socket: spec.socket.clone(),
            stderr_tail,
        })
    }
}

/// Forward a daemon's output, line by line, to the log book and the event bus.
async fn pump(
    stream: impl tokio::io::AsyncRead + Unpin,
    name: &'static str,
    runtime: RuntimeKind,
    index: usize,
    ctx: SupervisorCtx,
    tail: Option<Arc<Tail>>,
) {
    crate::process::forward_lines(stream, tail, |line| {
        tracing::debug!(target: "fastfn::daemon", %runtime, index, stream = name, "{line}");
        ctx.logs.push(LogLine {
            ts: crate::clock::epoch_millis(),
            runtime,
            function: None,
            stream: name,
            line: line.clone(),
        });
        ctx.events.emit(EngineEvent::Log {
            runtime,
            index,
            stream: name,
            line,
        });
    })
    .await;
}

impl ProcessChild {
    fn tail(&self) -> String {
        self.stderr_tail.last(5)
    }

    fn signal_group(&self, signal: Signal) {
        crate::process::signal_group(self.pid, signal);
    }
}

impl DaemonChild for ProcessChild {
    fn pid(&self) -> u32 {
        self.pid
    }

    async fn ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if client::probe(&self.socket).await.is_ok() {
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                // Give the stderr pump a moment to collect the daemon's last words.
                tokio::time::sleep(Duration::from_millis(50)).await;
                let tail = self.tail();
                return Err(if tail.is_empty() {
                    format!("exited during start-up ({status})")
                } else {
                    format!("exited during start-up ({status}): {tail}")
                });
            }
            if Instant::now() >= deadline {
                return Err(format!("not ready after {} s", READY_TIMEOUT.as_secs()));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn wait(&mut self) -> String {
        let status = self.child.wait().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        let tail = self.tail();
        // The daemon is gone; make sure nothing it forked lingers in its group.
        self.signal_group(Signal::SIGKILL);
        match status {
            Ok(s) if tail.is_empty() => s.to_string(),
            Ok(s) => format!("{s}: {tail}"),
            Err(e) => e.to_string(),
        }
    }

    async fn stop(&mut self) {
        self.signal_group(Signal::SIGTERM);
        if tokio::time::timeout(STOP_GRACE, self.child.wait()).await.is_err() {
            self.signal_group(Signal::SIGKILL);
            let _ = self.child.wait().await;
        }
        self.signal_group(Signal::SIGKILL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Children that become ready at once and exit `life` later, recording launch times.
    struct FakeLauncher {
        life: Duration,
        launches: Arc<Mutex<Vec<Instant>>>,
        pids: AtomicUsize,
    }

    struct FakeChild {
        pid: u32,
        life: Duration,
    }

    impl DaemonChild for FakeChild {
        fn pid(&self) -> u32 {
            self.pid
        }
        async fn ready(&mut self) -> Result<(), String> {
            Ok(())
        }
        async fn wait(&mut self) -> String {
            tokio::time::sleep(self.life).await;
            "exit status: 1".into()
        }
        async fn stop(&mut self) {}
    }

    impl Launcher for FakeLauncher {
        type Child = FakeChild;
        fn launch(&self, _spec: &DaemonSpec) -> std::io::Result<FakeChild> {
            self.launches.lock().unwrap().push(Instant::now());
            let pid = self.pids.fetch_add(1, Ordering::Relaxed) as u32 + 100;
            Ok(FakeChild { pid, life: self.life })
        }
    }

    fn spec() -> DaemonSpec {
        DaemonSpec {
            runtime: RuntimeKind::Python,
            index: 1,
            socket: "/nonexistent.sock".into(),
            program: "python3".into(),
            args: vec![],
            env: vec![],
            env_remove: vec![],
            cwd: ".".into(),
        }
    }

    fn ctx() -> SupervisorCtx {
        SupervisorCtx {
            events: EventBus::default(),
            logs: Arc::new(LogBook::default()),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn crashing_daemon_is_restarted_with_backoff() {
        let launches = Arc::new(Mutex::new(Vec::new()));
        let launcher = Arc::new(FakeLauncher {
            life: Duration::ZERO,
            launches: launches.clone(),
            pids: AtomicUsize::new(0),
        });
        let sockets = Arc::new(RuntimeSockets::new(
            RuntimeKind::Python,
            vec!["/nonexistent.sock".into()],
        ));
        let t0 = Instant::now();
        let (sup, reports) = Supervisor::start(launcher, vec![spec()], vec![sockets.clone()], ctx()).await;
        assert!(reports[0].result.is_ok());
        tokio::time::sleep(Duration::from_secs(30)).await;
        let gaps: Vec<u64> = {
            let l = launches.lock().unwrap();
            assert_eq!(l[0], t0);
            l.windows(2).map(|w| (w[1] - w[0]).as_millis() as u64).collect()
        };
        assert_eq!(&gaps[..6], &[500, 1000, 2000, 4000, 8000, 8000]);
        assert!(sup.daemons()[0].restarts() >= 6);
        sup.stop().await;
        let n = launches.lock().unwrap().len();
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert_eq!(launches.lock().unwrap().len(), n, "no restart after stop");
        assert_eq!(sup.daemons()[0].pid(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn stable_daemon_restarts_after_the_first_delay_again() {
        let launches = Arc::new(Mutex::new(Vec::new()));
        let launcher = Arc::new(FakeLauncher {
            life: Duration::from_secs(60),
            launches: launches.clone(),
            pids: AtomicUsize::new(0),
        });
        let sockets = Arc::new(RuntimeSockets::new(
            RuntimeKind::Python,
            vec!["/nonexistent.sock".into()],
        ));
        let (sup, _) = Supervisor::start(launcher, vec![spec()], vec![sockets.clone()], ctx()).await;
        assert_eq!(sockets.sockets[0].health().up, Some(true));
        tokio::time::sleep(Duration::from_secs(190)).await;
        let gaps: Vec<u64> = launches
            .lock()
            .unwrap()
            .windows(2)
            .map(|w| (w[1] - w[0]).as_millis() as u64)
            .collect();
        assert_eq!(gaps, [60_500, 60_500, 60_500]);
        sup.stop().await;
    }

    #[tokio::test(start_paused = true)]
    async fn runtimes_start_on_demand_and_retire() {
        let launches = Arc::new(Mutex::new(Vec::new()));
        let launcher = Arc::new(FakeLauncher {
            life: Duration::from_secs(3600),
            launches: launches.clone(),
            pids: AtomicUsize::new(0),
        });
        let sockets = Arc::new(RuntimeSockets::new(
            RuntimeKind::Python,
            vec!["/nonexistent.sock".into()],
        ));
        let sup = Supervisor::new(launcher, vec![spec()], vec![sockets.clone()], ctx());
        assert_eq!(sup.daemons().len(), 1, "a handle exists before any start");
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(launches.lock().unwrap().is_empty(), "nothing starts until asked");
        assert!(!sup.is_running(RuntimeKind::Python));
        // A runtime without specs (node here) is ignored.
        let reports = sup.ensure(&[RuntimeKind::Python, RuntimeKind::Node]).await;
        assert_eq!(reports.len(), 1);
        assert!(reports[0].result.is_ok());
        assert!(sup.is_running(RuntimeKind::Python) && !sup.is_running(RuntimeKind::Node));
        assert_eq!(sup.daemons()[0].pid(), 100);
        assert!(sup.ensure(&[RuntimeKind::Python]).await.is_empty(), "already running");
        assert_eq!(launches.lock().unwrap().len(), 1);

        sup.retire(RuntimeKind::Python, "not needed").await;
        assert!(!sup.is_running(RuntimeKind::Python));
        assert_eq!(sup.daemons()[0].pid(), 0);
        let h = sockets.sockets[0].health();
        assert_eq!((h.up, h.reason.as_str()), (Some(false), "not needed"));
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(launches.lock().unwrap().len(), 1, "a retired runtime is not restarted");

        assert_eq!(sup.ensure(&[RuntimeKind::Python]).await.len(), 1);
        assert_eq!(sup.daemons()[0].pid(), 101);
        sup.stop().await;
        assert!(!sup.is_running(RuntimeKind::Python));
    }
}
