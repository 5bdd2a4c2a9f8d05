//! The experimental compiled runtimes (rust, go): each handler file is wrapped into a generated
//! program (a frame server, see `compiled/rust_main.rs.in` and `compiled/go_main.go.in`), built
//! once, cached, and run as a persistent per-function process on its own Unix socket.
//!
//! Layout (contract §4.2), for a handler `<fn>/<stem>.rs|.go`:
//! - rust: `<fn>/.rust-build/<stem>/` is a generated crate (`Cargo.toml` with `serde_json`,
//!   `src/main.rs` that `#[path]`-mods the user's file); cargo's target dir is
//!   `<fn>/.rust-build/target` (shared by the handlers of that folder) unless
//!   [`Compiled::with_cargo_target_dir`] says otherwise.
//! - go: `<fn>/.go-build/<stem>/` holds `go.mod` (`module fastfnhandler`, `go 1.19`), the
//!   generated `main.go` and `handler.go` (a copy of the user's file, package clause forced to
//!   `main`, a `//line` directive so compiler messages name the user's file). Standard library
//!   only, `GOPROXY=off`, `CGO_ENABLED=0`; the machine's default `GOCACHE` (inside the build dir
//!   when there is no `HOME`).
//! - the built program is copied to `<build>/bin/fn-<signature>`; the process runs that copy, so
//!   a rebuild never touches a running binary.
//!
//! Cache and rebuild rules:
//! - signature = FNV-1a 64 of (wrapper version, runtime, wrapper template, handler bytes, path of
//!   the handler relative to the build dir). It is recomputed when the handler's mtime/size/inode
//!   changes (a `stat` per call). `bin/fn-<signature>` present → no build, even after a restart
//!   of the engine.
//! - changed handler → the first call that notices builds (it waits for the build); concurrent
//!   calls keep being served by the old process while that build runs. Then the old process is
//!   stopped and the new one started on the same socket.
//! - failed build → the old process is stopped and every call answers
//!   [`CompiledError::Build`] with the compiler's message, without rebuilding, until the handler
//!   changes again (serving stale code would hide the error). Reverting to a previously built
//!   version reuses its binary if it is still there (only the latest binary is kept).
//! - one build at a time per function: concurrent first calls wait for the same build. A build
//!   runs in its own task, so a caller that gives up does not cancel it; it is bounded by
//!   [`BUILD_TIMEOUT`].
//!
//! Processes: spawned in their own process group, stdin a pipe held by us (the wrappers exit on
//! EOF, so none outlives the engine), `kill_on_drop`; a dead process is restarted by the next
//! call (also when a connect fails: one retry after a restart).

use super::client::{self, ExchangeError};
use super::RuntimeKind;
use crate::events::{EngineEvent, EventBus};
use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

/// Bumped whenever the generated code or build layout changes meaningfully (part of the
/// signature; the template text is hashed too).
pub const WRAPPER_VERSION: u32 = 1;
/// Upper bound of one build (contract §3.1: rust/go `timeout_ms` is at least 180000).
pub const BUILD_TIMEOUT: Duration = Duration::from_secs(180);
/// How long a started function process may take to accept connections.
pub const READY_TIMEOUT: Duration = Duration::from_secs(15);
/// Between SIGTERM and SIGKILL when stopping a function process.
pub const STOP_GRACE: Duration = Duration::from_secs(2);
/// Largest compiler message kept in [`CompiledError::Build`] and events.
pub const MAX_BUILD_OUTPUT: usize = 8 * 1024;
/// Replies larger than this are refused (as for every daemon, contract §4).
pub const MAX_REPLY_BYTES: usize = 10 * 1024 * 1024;

const RUST_TEMPLATE: &str = include_str!("compiled/rust_main.rs.in");
const GO_TEMPLATE: &str = include_str!("compiled/go_main.go.in");
const HIDDEN_ENV: [&str; 3] = ["FN_ADMIN_", "FN_CONSOLE_", "FN_TRUSTED_"];
const STDERR_TAIL: usize = 20;

#[derive(Debug, thiserror::Error)]
pub enum CompiledError {
    /// The compiler refused the handler; `output` is its message (trimmed, ≤ 8 KiB).
    #[error("{runtime} build failed")]
    Build { runtime: RuntimeKind, output: String },
    #[error("runtime timeout")]
    Timeout,
    /// Unknown entry, toolchain missing, process would not start, engine stopping…
    #[error("{0}")]
    Unavailable(String),
    #[error("runtime error: {0}")]
    Exchange(String),
}

/// Builds, caches, starts and calls the per-function processes of one compiled runtime.
/// Cheap to share behind an `Arc`; dropping it kills every function process.
pub struct Compiled {
    inner: Arc<Inner>,
}

struct Inner {
    kind: RuntimeKind,
    root: PathBuf,
    toolchain: PathBuf,
    socket_dir: PathBuf,
    cargo_target_dir: Option<PathBuf>,
    events: EventBus,
    slots: Mutex<HashMap<String, Arc<Slot>>>,
    /// Build/start tasks in flight, aborted on stop (their toolchain is killed on drop).
    tasks: Mutex<Vec<tokio::task::AbortHandle>>,
    stopped: AtomicBool,
}

/// One handler file and its process.
struct Slot {
    /// Root-relative entry, `/`-separated.
    entry: String,
    file: PathBuf,
    fn_dir: PathBuf,
    build_dir: PathBuf,
    socket: PathBuf,
    /// Held while preparing (build + start): one build at a time.
    gate: Arc<tokio::sync::Mutex<()>>,
    state: Mutex<SlotState>,
}

#[derive(Default)]
struct SlotState {
    /// (mtime, size, inode) → signature, so an unchanged file is not re-read.
    sig_cache: Option<((SystemTime, u64, u64), String)>,
    proc: Option<Proc>,
    /// The last failed build: (signature, compiler output).
    failed: Option<(String, String)>,
}

struct Proc {
    sig: String,
    child: tokio::process::Child,
    /// Held open for the process's life: it exits when it reads EOF here.
    _stdin: Option<tokio::process::ChildStdin>,
    pid: u32,
}

impl Proc {
    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    fn signal_group(&self, signal: nix::sys::signal::Signal) {
        if self.pid != 0 {
            let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(self.pid as i32), signal);
        }
    }

    async fn stop(mut self) {
        self.signal_group(nix::sys::signal::Signal::SIGTERM);
        if tokio::time::timeout(STOP_GRACE, self.child.wait()).await.is_err() {
            self.signal_group(nix::sys::signal::Signal::SIGKILL);
            let _ = self.child.wait().await;
        }
    }
}

/// Kills a process group when dropped (a no-op once the group is gone).
struct GroupKill(u32);

impl Drop for GroupKill {
    fn drop(&mut self) {
        if self.0 != 0 {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(self.0 as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.signal_group(nix::sys::signal::Signal::SIGKILL);
        }
    }
}

impl Compiled {
    pub fn new(
        kind: RuntimeKind,
        functions_root: PathBuf,
        toolchain: PathBuf,
        socket_dir: PathBuf,
        events: EventBus,
    ) -> Compiled {
        debug_assert!(matches!(kind, RuntimeKind::Rust | RuntimeKind::Go));
        let root = std::fs::canonicalize(&functions_root).unwrap_or(functions_root);
        Compiled {
            inner: Arc::new(Inner {
                kind,
                root,
                toolchain,
                socket_dir,
                cargo_target_dir: None,
                events,
                slots: Mutex::new(HashMap::new()),
                tasks: Mutex::new(Vec::new()),
                stopped: AtomicBool::new(false),
            }),
        }
    }

    /// Rust only: one cargo target dir for every function (dependencies compiled once) instead
    /// of `<fn>/.rust-build/target`. Call before the first `call`.
    pub fn with_cargo_target_dir(mut self, dir: PathBuf) -> Compiled {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.cargo_target_dir = Some(dir);
        }
        self
    }

    pub fn kind(&self) -> RuntimeKind {
        self.inner.kind
    }

    /// The socket a function's process listens on: `<socket_dir>/fn-<rust|go>-<16 hex>.sock`,
    /// the hex being a hash of the root-relative entry. `None` for an invalid entry.
    pub fn socket_path(&self, entry: &str) -> Option<PathBuf> {
        let entry = normalize_entry(entry, self.inner.kind)?;
        Some(self.inner.socket_for(&entry))
    }

    /// Whether a build or start of this function is in progress right now (lets the gateway
    /// choose to answer 503 + `Retry-After` instead of waiting, contract §4.2).
    pub fn building(&self, entry: &str) -> bool {
        let Some(entry) = normalize_entry(entry, self.inner.kind) else {
            return false;
        };
        let slot = lock(&self.inner.slots).get(&entry).cloned();
        slot.is_some_and(|s| s.gate.try_lock().is_err())
    }

    /// PID of a function's running process, if any (tests, dashboard).
    pub fn pid(&self, entry: &str) -> Option<u32> {
        let entry = normalize_entry(entry, self.inner.kind)?;
        let slot = lock(&self.inner.slots).get(&entry).cloned()?;
        let mut state = lock(&slot.state);
        let proc = state.proc.as_mut()?;
        proc.alive().then_some(proc.pid)
    }

    /// `entry`: the handler file relative to the root (e.g. `hello/handler.rs`). Builds if
    /// needed (first call may take up to 180 s; concurrent first calls wait for ONE build),
    /// starts the function's process if not running (restarts it if it died), and exchanges
    /// one frame. `timeout` bounds the exchange only.
    pub async fn call(&self, entry: &str, payload: &[u8], timeout: Duration) -> Result<Vec<u8>, CompiledError> {
        let slot = self.inner.slot(entry)?;
        for attempt in 0..2 {
            let socket = self.inner.ensure(&slot).await?;
            match tokio::time::timeout(timeout, client::exchange(&socket, payload, MAX_REPLY_BYTES)).await {
                Err(_) => return Err(CompiledError::Timeout),
                Ok(Ok(reply)) => return Ok(reply),
                // Nothing was sent: the process died under us. Forget it, restart once.
                Ok(Err(ExchangeError::Connect(e))) if attempt == 0 => {
                    tracing::debug!(entry = %slot.entry, "connect failed ({e}), restarting");
                    let dead = lock(&slot.state).proc.take();
                    if let Some(p) = dead {
                        p.stop().await;
                    }
                }
                Ok(Err(e)) => return Err(CompiledError::Exchange(e.to_string())),
            }
        }
        Err(CompiledError::Unavailable(
            "function process does not accept connections".into(),
        ))
    }

    /// Kill every function process (engine shutdown) and remove their sockets. Later calls
    /// answer `Unavailable`.
    pub async fn stop(&self) {
        self.inner.stopped.store(true, Ordering::SeqCst);
        self.inner.abort_tasks();
        let slots: Vec<Arc<Slot>> = lock(&self.inner.slots).values().cloned().collect();
        for slot in slots {
            let proc = lock(&slot.state).proc.take();
            if let Some(p) = proc {
                p.stop().await;
            }
            let _ = std::fs::remove_file(&slot.socket);
        }
    }
}

impl Drop for Compiled {
    fn drop(&mut self) {
        self.inner.stopped.store(true, Ordering::SeqCst);
        self.inner.abort_tasks();
        for slot in lock(&self.inner.slots).values() {
            // Dropping a `Proc` kills its group (and tokio's kill_on_drop kills the child).
            drop(lock(&slot.state).proc.take());
            let _ = std::fs::remove_file(&slot.socket);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A root-relative entry of this runtime's extension, with no `..`, absolute or hidden parts.
fn normalize_entry(entry: &str, kind: RuntimeKind) -> Option<String> {
    let path = Path::new(entry.trim_start_matches("./"));
    let mut parts = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => {
                let p = p.to_str()?;
                if p.starts_with('.') {
                    return None;
                }
                parts.push(p);
            }
            Component::CurDir => {}
            _ => return None,
        }
    }
    let file = parts.last()?;
    if RuntimeKind::from_file_name(file) != Some(kind) {
        return None;
    }
    Some(parts.join("/"))
}

/// FNV-1a, 64 bits: a stable hash (std's `DefaultHasher` may change between releases).
fn fnv64(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.iter().chain(&[0xff]) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

fn unavailable(msg: impl Into<String>) -> CompiledError {
    CompiledError::Unavailable(msg.into())
}

impl Inner {
    fn abort_tasks(&self) {
        for task in lock(&self.tasks).drain(..) {
            task.abort();
        }
    }

    fn socket_for(&self, entry: &str) -> PathBuf {
        let hash = fnv64(&[entry.as_bytes()]);
        self.socket_dir
            .join(format!("fn-{}-{hash:016x}.sock", self.kind.name()))
    }

    fn build_folder(&self) -> &'static str {
        match self.kind {
            RuntimeKind::Go => ".go-build",
            _ => ".rust-build",
        }
    }

    fn slot(&self, entry: &str) -> Result<Arc<Slot>, CompiledError> {
        if self.stopped.load(Ordering::SeqCst) {
            return Err(unavailable("compiled runtime stopped"));
        }
        let unknown = || unavailable(format!("unknown function: {entry}"));
        let entry = normalize_entry(entry, self.kind).ok_or_else(unknown)?;
        if let Some(slot) = lock(&self.slots).get(&entry) {
            return Ok(slot.clone());
        }
        let file = self.root.join(&entry);
        // Symlinks out of the root are refused like `..`.
        let real = std::fs::canonicalize(&file).map_err(|_| unknown())?;
        if !real.starts_with(&self.root) || !real.is_file() {
            return Err(unknown());
        }
        let fn_dir = file
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| self.root.clone());
        let stem = Path::new(&entry)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("handler")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect::<String>();
        let slot = Arc::new(Slot {
            build_dir: fn_dir.join(self.build_folder()).join(stem),
            socket: self.socket_for(&entry),
            entry: entry.clone(),
            file,
            fn_dir,
            gate: Arc::new(tokio::sync::Mutex::new(())),
            state: Mutex::new(SlotState::default()),
        });
        Ok(lock(&self.slots).entry(entry).or_insert(slot).clone())
    }

    fn template(&self) -> &'static str {
        match self.kind {
            RuntimeKind::Go => GO_TEMPLATE,
            _ => RUST_TEMPLATE,
        }
    }

    /// The handler's current signature (re-read only when its stat changed).
    fn signature(&self, slot: &Slot) -> Result<String, CompiledError> {
        let unknown = || unavailable(format!("unknown function: {}", slot.entry));
        let meta = std::fs::metadata(&slot.file).map_err(|_| unknown())?;
        let key = (
            meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            meta.len(),
            std::os::unix::fs::MetadataExt::ino(&meta),
        );
        if let Some((k, sig)) = &lock(&slot.state).sig_cache {
            if *k == key {
                return Ok(sig.clone());
            }
        }
        let source = std::fs::read(&slot.file).map_err(|_| unknown())?;
        let version = WRAPPER_VERSION.to_le_bytes();
        let sig = format!(
            "{:016x}",
            fnv64(&[
                &version,
                self.kind.name().as_bytes(),
                self.template().as_bytes(),
                slot.entry.as_bytes(),
                &source,
            ])
        );
        lock(&slot.state).sig_cache = Some((key, sig.clone()));
        Ok(sig)
    }

    /// A socket with a live process running the current handler (or, while someone else
    /// rebuilds it, the previous one).
    async fn ensure(self: &Arc<Self>, slot: &Arc<Slot>) -> Result<PathBuf, CompiledError> {
        if self.stopped.load(Ordering::SeqCst) {
            return Err(unavailable("compiled runtime stopped"));
        }
        let sig = self.signature(slot)?;
        {
            let mut state = lock(&slot.state);
            if let Some((failed, output)) = &state.failed {
                if *failed == sig {
                    return Err(CompiledError::Build {
                        runtime: self.kind,
                        output: output.clone(),
                    });
                }
            }
            if let Some(proc) = state.proc.as_mut() {
                if proc.alive() && (proc.sig == sig || slot.gate.try_lock().is_err()) {
                    return Ok(slot.socket.clone());
                }
            }
        }
        // Build/start in a task of its own: a caller that gives up does not cancel it.
        let (inner, task_slot) = (self.clone(), slot.clone());
        let task = tokio::spawn(async move {
            let _gate = task_slot.gate.clone().lock_owned().await;
            inner.prepare(&task_slot).await
        });
        {
            let mut tasks = lock(&self.tasks);
            tasks.retain(|t| !t.is_finished());
            tasks.push(task.abort_handle());
        }
        task.await.map_err(|e| {
            if e.is_cancelled() {
                unavailable("compiled runtime stopped")
            } else {
                unavailable(format!("build task failed: {e}"))
            }
        })?
    }

    /// Under the gate: build if needed, then (re)start the process.
    async fn prepare(&self, slot: &Slot) -> Result<PathBuf, CompiledError> {
        let sig = self.signature(slot)?;
        {
            let mut state = lock(&slot.state);
            if let Some((failed, output)) = &state.failed {
                if *failed == sig {
                    return Err(CompiledError::Build {
                        runtime: self.kind,
                        output: output.clone(),
                    });
                }
            }
            if let Some(proc) = state.proc.as_mut() {
                if proc.sig == sig && proc.alive() {
                    return Ok(slot.socket.clone());
                }
            }
        }
        let binary = slot.build_dir.join("bin").join(format!("fn-{sig}"));
        if !binary.is_file() {
            if let Err(e) = self.build(slot, &sig, &binary).await {
                let old = {
                    let mut state = lock(&slot.state);
                    if let CompiledError::Build { output, .. } = &e {
                        state.failed = Some((sig.clone(), output.clone()));
                    }
                    state.proc.take()
                };
                if let Some(p) = old {
                    p.stop().await;
                }
                return Err(e);
            }
        }
        let old = {
            let mut state = lock(&slot.state);
            state.failed = None;
            state.proc.take()
        };
        if let Some(p) = old {
            p.stop().await;
        }
        if self.stopped.load(Ordering::SeqCst) {
            return Err(unavailable("compiled runtime stopped"));
        }
        let proc = self.start(slot, &sig, &binary).await?;
        lock(&slot.state).proc = Some(proc);
        if self.stopped.load(Ordering::SeqCst) {
            // `stop` ran while we were starting: do not leave this one behind.
            let proc = lock(&slot.state).proc.take();
            if let Some(p) = proc {
                p.stop().await;
            }
            return Err(unavailable("compiled runtime stopped"));
        }
        Ok(slot.socket.clone())
    }

    /// Generate the wrapper, run the toolchain (≤ [`BUILD_TIMEOUT`]), and install the program
    /// as `binary`. Emits `BuildStarted`/`BuildFinished`.
    async fn build(&self, slot: &Slot, sig: &str, binary: &Path) -> Result<(), CompiledError> {
        let started = Instant::now();
        self.events.emit(EngineEvent::BuildStarted {
            runtime: self.kind,
            function: slot.entry.clone(),
        });
        let result = match tokio::time::timeout(BUILD_TIMEOUT, self.run_build(slot, sig, binary)).await {
            Ok(r) => r,
            Err(_) => Err(CompiledError::Build {
                runtime: self.kind,
                output: format!("build timed out after {} s", BUILD_TIMEOUT.as_secs()),
            }),
        };
        let message = match &result {
            Ok(()) => String::new(),
            Err(CompiledError::Build { output, .. }) => output.clone(),
            Err(e) => e.to_string(),
        };
        self.events.emit(EngineEvent::BuildFinished {
            runtime: self.kind,
            function: slot.entry.clone(),
            ok: result.is_ok(),
            ms: started.elapsed().as_millis() as u64,
            message,
        });
        result
    }

    async fn run_build(&self, slot: &Slot, sig: &str, binary: &Path) -> Result<(), CompiledError> {
        let io = |what: &str, e: std::io::Error| unavailable(format!("cannot prepare the build ({what}): {e}"));
        std::fs::create_dir_all(slot.build_dir.join("bin")).map_err(|e| io("bin dir", e))?;
        let source = std::fs::read_to_string(&slot.file).map_err(|e| io("handler", e))?;
        let built = match self.kind {
            RuntimeKind::Go => self.build_go(slot, sig, &source).await?,
            _ => self.build_rust(slot, sig).await?,
        };
        // Install atomically, then drop the older binaries of this handler.
        let tmp = binary.with_extension("tmp");
        std::fs::copy(&built, &tmp).map_err(|e| io("install", e))?;
        std::fs::rename(&tmp, binary).map_err(|e| io("install", e))?;
        if built.starts_with(&slot.build_dir) && built.parent() == Some(&slot.build_dir.join("out")) {
            let _ = std::fs::remove_file(&built);
        }
        if let Ok(dir) = std::fs::read_dir(slot.build_dir.join("bin")) {
            for e in dir.flatten() {
                if e.path() != binary {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        Ok(())
    }

    async fn build_rust(&self, slot: &Slot, sig: &str) -> Result<PathBuf, CompiledError> {
        let crate_name = format!(
            "fastfn_fn_{:016x}",
            fnv64(&[slot.fn_dir.as_os_str().as_encoded_bytes(), slot.entry.as_bytes()])
        );
        let manifest = format!(
            "# Generated by FastFN (wrapper v{WRAPPER_VERSION}, signature {sig}). Do not edit.\n\
             [package]\nname = \"{crate_name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\npublish = false\n\n\
             [dependencies]\nserde_json = \"1\"\n\n\
             [profile.dev]\ndebug = false\n\n\
             [workspace]\n"
        );
        // src/main.rs sits at <fn>/.rust-build/<stem>/src/: the handler is three levels up.
        let file_name = slot.file.file_name().and_then(|n| n.to_str()).unwrap_or("handler.rs");
        let rel = format!("../../../{file_name}");
        let main = RUST_TEMPLATE.replace("__HANDLER_PATH__", &rel.escape_default().to_string());
        write_if_changed(&slot.build_dir.join("Cargo.toml"), &manifest)?;
        std::fs::create_dir_all(slot.build_dir.join("src")).map_err(|e| unavailable(e.to_string()))?;
        write_if_changed(&slot.build_dir.join("src/main.rs"), &main)?;
        let target = self
            .cargo_target_dir
            .clone()
            .unwrap_or_else(|| slot.fn_dir.join(".rust-build").join("target"));
        let mut args: Vec<OsString> = vec!["build".into(), "--offline".into()];
        let mut out = self
            .run_tool(slot, &args, &[("CARGO_TARGET_DIR", target.as_os_str().into())])
            .await?;
        if !out.0 && out.1.contains("offline") {
            // A dependency missing from the local registry cache: fetch it.
            args.remove(1);
            out = self
                .run_tool(slot, &args, &[("CARGO_TARGET_DIR", target.as_os_str().into())])
                .await?;
        }
        if !out.0 {
            let text = out.1.replace(&format!("src/{rel}"), &slot.entry);
            return Err(CompiledError::Build {
                runtime: self.kind,
                output: trim_output(&text),
            });
        }
        Ok(target.join("debug").join(&crate_name))
    }

    async fn build_go(&self, slot: &Slot, sig: &str, source: &str) -> Result<PathBuf, CompiledError> {
        write_if_changed(
            &slot.build_dir.join("go.mod"),
            &format!("// Generated by FastFN (wrapper v{WRAPPER_VERSION}, signature {sig}).\nmodule fastfnhandler\n\ngo 1.19\n"),
        )?;
        write_if_changed(&slot.build_dir.join("main.go"), GO_TEMPLATE)?;
        write_if_changed(
            &slot.build_dir.join("handler.go"),
            &go_handler_source(source, &slot.entry),
        )?;
        let out_dir = slot.build_dir.join("out");
        let out = out_dir.join("fn");
        let args: Vec<OsString> = vec!["build".into(), "-o".into(), out.as_os_str().into(), ".".into()];
        let mut env: Vec<(&str, OsString)> = vec![
            ("GO111MODULE", "on".into()),
            ("GOFLAGS", "-mod=mod".into()),
            ("GOPROXY", "off".into()),
            ("GOTOOLCHAIN", "local".into()),
            ("CGO_ENABLED", "0".into()),
        ];
        let no_home = std::env::var_os("HOME").is_none_or(|h| h.is_empty());
        if no_home && std::env::var_os("GOCACHE").is_none() {
            env.push(("GOCACHE", slot.build_dir.join("gocache").into_os_string()));
        }
        if no_home && std::env::var_os("GOPATH").is_none() {
            env.push(("GOPATH", slot.build_dir.join("gopath").into_os_string()));
        }
        let (ok, text) = self.run_tool(slot, &args, &env).await?;
        if !ok {
            return Err(CompiledError::Build {
                runtime: self.kind,
                output: trim_output(&text),
            });
        }
        Ok(out)
    }

    /// Run the toolchain in the build dir; (success, stdout + stderr).
    async fn run_tool(
        &self,
        slot: &Slot,
        args: &[OsString],
        env: &[(&str, OsString)],
    ) -> Result<(bool, String), CompiledError> {
        let mut cmd = tokio::process::Command::new(&self.toolchain);
        cmd.args(args)
            .current_dir(&slot.build_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env("CARGO_TERM_COLOR", "never")
            .process_group(0)
            .kill_on_drop(true);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().map_err(|e| {
            unavailable(format!(
                "{} toolchain unavailable ({}): {e}",
                self.kind,
                self.toolchain.display()
            ))
        })?;
        // Timed out or aborted (engine stop): kill the whole group (rustc, compile, link…),
        // not only the toolchain's own process.
        let _group = GroupKill(child.id().unwrap_or(0));
        let (mut so, mut se) = (child.stdout.take(), child.stderr.take());
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let read_out = async {
            if let Some(s) = so.as_mut() {
                let _ = s.read_to_end(&mut out).await;
            }
        };
        let read_err = async {
            if let Some(s) = se.as_mut() {
                let _ = s.read_to_end(&mut err).await;
            }
        };
        tokio::join!(read_out, read_err);
        let status = child.wait().await.map_err(|e| unavailable(e.to_string()))?;
        let mut text = String::from_utf8_lossy(&err).into_owned();
        text.push_str(&String::from_utf8_lossy(&out));
        Ok((status.success(), text))
    }

    async fn start(&self, slot: &Slot, sig: &str, binary: &Path) -> Result<Proc, CompiledError> {
        if let Some(dir) = slot.socket.parent() {
            std::fs::create_dir_all(dir).map_err(|e| unavailable(format!("socket dir: {e}")))?;
        }
        let _ = std::fs::remove_file(&slot.socket);
        let mut cmd = tokio::process::Command::new(binary);
        cmd.arg(&slot.socket)
            .current_dir(&slot.fn_dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env("FN_FUNCTIONS_ROOT", &self.root)
            .env("FN_FUNCTION_DIR", &slot.fn_dir)
            .process_group(0)
            .kill_on_drop(true);
        for (key, _) in std::env::vars_os() {
            if let Some(k) = key.to_str() {
                if HIDDEN_ENV.iter().any(|p| k.starts_with(p)) {
                    cmd.env_remove(k);
                }
            }
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| unavailable(format!("cannot start {}: {e}", slot.entry)))?;
        let pid = child.id().unwrap_or(0);
        let stdin = child.stdin.take();
        let tail = Arc::new(Mutex::new(Vec::<String>::new()));
        if let Some(out) = child.stdout.take() {
            tokio::spawn(pump(
                out,
                "stdout",
                self.kind,
                slot.entry.clone(),
                self.events.clone(),
                None,
            ));
        }
        if let Some(err) = child.stderr.take() {
            let t = Some(tail.clone());
            tokio::spawn(pump(
                err,
                "stderr",
                self.kind,
                slot.entry.clone(),
                self.events.clone(),
                t,
            ));
        }
        let mut proc = Proc {
            sig: sig.to_string(),
            child,
            _stdin: stdin,
            pid,
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if client::probe(&slot.socket).await.is_ok() {
                return Ok(proc);
            }
            if !proc.alive() {
                tokio::time::sleep(Duration::from_millis(50)).await;
                let tail = lock(&tail).join(" | ");
                return Err(unavailable(format!("{} exited during start-up: {tail}", slot.entry)));
            }
            if Instant::now() >= deadline {
                proc.stop().await;
                return Err(unavailable(format!(
                    "{} not ready after {} s",
                    slot.entry,
                    READY_TIMEOUT.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// Forward a function process's output to the event bus (`Log`, index 0, line prefixed with
/// the entry).
async fn pump(
    stream: impl tokio::io::AsyncRead + Unpin,
    name: &'static str,
    runtime: RuntimeKind,
    entry: String,
    events: EventBus,
    tail: Option<Arc<Mutex<Vec<String>>>>,
) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if let Some(tail) = &tail {
            let mut t = lock(tail);
            if t.len() == STDERR_TAIL {
                t.remove(0);
            }
            t.push(line.clone());
        }
        tracing::debug!(target: "fastfn::compiled", %runtime, %entry, stream = name, "{line}");
        events.emit(EngineEvent::Log {
            runtime,
            index: 0,
            stream: name,
            line: format!("{entry}: {line}"),
        });
    }
}

fn write_if_changed(path: &Path, content: &str) -> Result<(), CompiledError> {
    if std::fs::read_to_string(path).is_ok_and(|old| old == content) {
        return Ok(());
    }
    std::fs::write(path, content).map_err(|e| unavailable(format!("cannot write {}: {e}", path.display())))
}

/// The user's Go file for the build: package clause forced to `main`, and a `//line`
/// directive so compiler messages name the user's file.
fn go_handler_source(source: &str, entry: &str) -> String {
    let mut out = format!("//line {entry}:1\n");
    let mut replaced = false;
    for line in source.lines() {
        if !replaced && line.trim_start().starts_with("package ") {
            out.push_str("package main");
            replaced = true;
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

/// Keep the compiler's relevant lines: from the first error on, without progress lines;
/// at most [`MAX_BUILD_OUTPUT`] bytes.
fn trim_output(text: &str) -> String {
    const NOISE: [&str; 9] = [
        "Compiling ",
        "Blocking ",
        "Updating ",
        "Locking ",
        "Downloaded ",
        "Downloading ",
        "Finished ",
        "Adding ",
        "Checking ",
    ];
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !NOISE.iter().any(|n| l.trim_start().starts_with(n)))
        .collect();
    let first = lines
        .iter()
        .position(|l| {
            l.starts_with("error") || l.contains(": error") || l.contains("undefined:") || l.starts_with("# ")
        })
        .unwrap_or(0);
    let mut out = lines[first..].join("\n").trim().to_string();
    if out.len() > MAX_BUILD_OUTPUT {
        let mut cut = MAX_BUILD_OUTPUT - 20;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push_str("\n… (truncated)");
    }
    out
}

#[cfg(test)]
mod tests;
