//! The experimental compiled runtimes (rust, go): each handler file is wrapped into a generated
//! program (a frame server, see `compiled/rust_main.rs.in` and `compiled/go_main.go.in`), built
//! once, cached, and run as a persistent per-function process on its own Unix socket.
//!
//! Layout (contract §4.2), for a handler `<fn>/<stem>.rs|.go` (`<fn>/src/lib.rs` beside a
//! `<fn>/Cargo.toml` counts as the function `<fn>`):
//! - rust: `<fn>/.rust-build/<stem>/` is a generated crate: `Cargo.toml` with `serde_json`
//!   and the `[dependencies]` of the function's own `Cargo.toml` (relative `path`s made
//!   absolute; its `Cargo.lock` copied), and `src/main.rs` that `#[path]`-mods the user's file,
//!   so `mod helper;` and `#[path = "x.rs"] mod x;` resolve beside it. When the function is a
//!   cargo library package (its `Cargo.toml` has `[package]` and the entry is that package's
//!   library), the generated crate depends on the package by path instead and calls its
//!   `handler`, so `crate::` paths, features and build scripts work. Cargo's target dir is
//!   `<fn>/.rust-build/target` (shared by the handlers of that folder) unless
//!   [`Compiled::with_cargo_target_dir`] says otherwise.
//! - go: `<fn>/.go-build/<stem>/` holds `go.mod` (the function's own, made buildable by the
//!   local Go by [`sources::rewrite_go_mod`], plus its `go.sum`; else `module fastfnhandler`,
//!   `go 1.19`), the generated `main.go`, `fastfn_entry.go` (calls `handler` or `Handler`,
//!   whatever it returns) and `fastfn_dup_*.go`, `handler.go` (a copy of the user's file,
//!   package clause forced to `main`, a `//line` directive so compiler messages name the
//!   user's file) and `user_<name>.go` copies of its helper files ([`sources::go_helpers`]).
//!   `CGO_ENABLED=0`, `GOTOOLCHAIN=local`; `GOPROXY=off` unless the function has a `go.mod`;
//!   the machine's default `GOCACHE` (inside the build dir when there is no `HOME`).
//! - the built program is copied to `<build>/bin/fn-<signature>`; the process runs that copy, so
//!   a rebuild never touches a running binary.
//!
//! Handlers return any value: Go maps, structs (field names matched to the envelope keys
//! without regard to case or `_`), strings (text body) and `[]byte` (binary body); a Rust
//! `serde_json::Value` envelope. During a call its `event.env` is also the process env (as the
//! original sets it). Each call's stdout/stderr comes back in the reply
//! (`stdout`/`stderr`, so the gateway logs it per function): the wrappers run one call at a
//! time and point fds 1 and 2 at capture files during it. What a process prints outside calls
//! goes to the engine's log as `Log` events.
//!
//! Cache and rebuild rules:
//! - signature = FNV-1a 64 of (wrapper version, runtime, wrapper template, entry path, and the
//!   path and bytes of every input file: handler, helpers, manifests, see
//!   [`sources::sources`]). It is recomputed when one of their stats, or a folder's, changes
//!   (a `stat` each per call). `bin/fn-<signature>` present → no build, even after a restart
//!   of the engine.
//! - changed handler → the first call that notices builds (it waits for the build); concurrent
//!   calls keep being served by the old process while that build runs. Then the old process is
//!   stopped and the new one started on the same socket.
//! - failed build → the old process is stopped and every call answers
//!   [`CompiledError::Build`] with the compiler's message, without rebuilding, until the handler
//!   changes again (serving stale code would hide the error). Reverting to a previously built
//!   version reuses its binary if it is still there (only the latest binary is kept).
//! - one build at a time per function: concurrent first calls wait for the same build. A build
//!   runs in its own task, so a caller that gives up does not cancel it; it is bounded by the
//!   build timeout ([`BUILD_TIMEOUT`], or `FN_GO_BUILD_TIMEOUT_S` / `GO_BUILD_TIMEOUT_S` /
//!   `FN_RUST_BUILD_TIMEOUT_S` from the engine's environment).
//!
//! Processes: spawned in their own process group, stdin a pipe held by us (the wrappers exit on
//! EOF, so none outlives the engine), `kill_on_drop`; a dead process is restarted by the next
//! call (also when a connect fails: one retry after a restart). A call that times out stops
//! its process (it serves one call at a time, so a stuck handler would block the others).

mod sources;

use super::client::{self, ExchangeError};
use super::RuntimeKind;
use crate::events::{EngineEvent, EventBus};
use crate::process::{Signal, Tail};
use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tokio::io::AsyncReadExt;

/// Bumped whenever the generated code or build layout changes meaningfully (part of the
/// signature; the template text is hashed too).
pub const WRAPPER_VERSION: u32 = 2;
/// Default upper bound of one build (contract §3.1: rust/go `timeout_ms` is at least 180000);
/// `FN_GO_BUILD_TIMEOUT_S` / `FN_RUST_BUILD_TIMEOUT_S` change it ([`sources::build_timeout`]).
pub const BUILD_TIMEOUT: Duration = sources::DEFAULT_BUILD_TIMEOUT;
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
/// The call into the user's handler, whatever it returns (`__SYMBOL__`: `handler`/`Handler`).
const GO_ENTRY: &str = "// Generated by FastFN. Do not edit.\npackage main\n\n\
func fastfnCallUser(event map[string]interface{}) interface{} { return __SYMBOL__(event) }\n";
/// Moving fds 1 and 2 (output capture): `Dup3` on Linux (arm64 has no `Dup2`), `Dup2` elsewhere.
const GO_DUP_LINUX: &str = "// Generated by FastFN. Do not edit.\npackage main\n\nimport \"syscall\"\n\n\
func fastfnDupTo(from, to int) { syscall.Dup3(from, to, 0) }\n";
const GO_DUP_OTHER: &str = "// Generated by FastFN. Do not edit.\n//go:build !linux\n\npackage main\n\n\
import \"syscall\"\n\nfunc fastfnDupTo(from, to int) { syscall.Dup2(from, to) }\n";
/// Prefix of the copies of the user's Go files in the build folder (a leading `_`, as in
/// `_shared.go`, would make `go build` skip the file).
const GO_USER_PREFIX: &str = "user_";
const HIDDEN_ENV: [&str; 3] = ["FN_ADMIN_", "FN_CONSOLE_", "FN_TRUSTED_"];

/// A compiled function's reply, and the time its call spent getting the function ready.
#[derive(Debug)]
pub struct CompiledReply {
    pub bytes: Vec<u8>,
    /// Building the binary (the first call after a change), µs.
    pub build_us: u64,
    /// Starting its process (a cold call), µs.
    pub start_us: u64,
}

/// What getting a function ready took (zero when it was running).
#[derive(Debug, Default, Clone, Copy)]
struct Prepared {
    build_us: u64,
    start_us: u64,
}

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
    build_timeout: Duration,
    /// The local Go's (major, minor), asked once (`go env GOVERSION`).
    go_version: tokio::sync::OnceCell<Option<(u32, u32)>>,
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

type FileStamp = (SystemTime, u64, u64);

fn stamp(path: &Path) -> Option<FileStamp> {
    let meta = std::fs::metadata(path).ok()?;
    Some((
        meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
        meta.len(),
        std::os::unix::fs::MetadataExt::ino(&meta),
    ))
}

fn stamps(s: &sources::Sources) -> Vec<Option<FileStamp>> {
    s.dirs.iter().chain(&s.files).map(|p| stamp(p)).collect()
}

#[derive(Default)]
struct SlotState {
    /// The build's input files, their (mtime, size, inode) and the signature they gave, so
    /// unchanged files are not re-read (a `stat` each per call).
    sig_cache: Option<(sources::Sources, Vec<Option<FileStamp>>, String)>,
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

    fn signal_group(&self, signal: Signal) {
        crate::process::signal_group(self.pid, signal);
    }

    async fn stop(mut self) {
        self.signal_group(Signal::SIGTERM);
        if tokio::time::timeout(STOP_GRACE, self.child.wait()).await.is_err() {
            self.signal_group(Signal::SIGKILL);
            let _ = self.child.wait().await;
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.signal_group(Signal::SIGKILL);
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
                build_timeout: sources::build_timeout(kind, |k| std::env::var(k).ok()),
                go_version: tokio::sync::OnceCell::new(),
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
        self.call_timed(entry, payload, timeout).await.map(|r| r.bytes)
    }

    /// [`Compiled::call`], with the time the call spent building and starting the function
    /// (the request inspector's `build` and `cold` stages).
    pub async fn call_timed(
        &self,
        entry: &str,
        payload: &[u8],
        timeout: Duration,
    ) -> Result<CompiledReply, CompiledError> {
        let slot = self.inner.slot(entry)?;
        let mut prepared = Prepared::default();
        for attempt in 0..2 {
            let (socket, p) = self.inner.ensure(&slot).await?;
            prepared.build_us += p.build_us;
            prepared.start_us += p.start_us;
            let pid = lock(&slot.state).proc.as_ref().map(|p| p.pid);
            match tokio::time::timeout(timeout, client::exchange(&socket, payload, MAX_REPLY_BYTES)).await {
                Err(_) => {
                    // The process runs one call at a time: a call stuck past its timeout
                    // would hold every later one. Stop it (as the original kills a timed-out
                    // worker); the next call starts a fresh one from the cached binary.
                    let stuck = {
                        let mut state = lock(&slot.state);
                        match &state.proc {
                            Some(p) if Some(p.pid) == pid => state.proc.take(),
                            _ => None,
                        }
                    };
                    if let Some(p) = stuck {
                        // SIGKILL now: on SIGTERM the wrapper removes its socket, which could
                        // be the next process's by then. Reaped in the background.
                        p.signal_group(Signal::SIGKILL);
                        tokio::spawn(p.stop());
                    }
                    return Err(CompiledError::Timeout);
                }
                Ok(Ok(bytes)) => {
                    return Ok(CompiledReply {
                        bytes,
                        build_us: prepared.build_us,
                        start_us: prepared.start_us,
                    })
                }
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
        let mut fn_dir = file
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| self.root.clone());
        // A cargo layout (`<fn>/src/lib.rs` beside `<fn>/Cargo.toml`): the function is `<fn>`.
        if self.kind == RuntimeKind::Rust && fn_dir.ends_with("src") {
            if let Some(up) = fn_dir
                .parent()
                .filter(|up| up.join("Cargo.toml").is_file() && up.starts_with(&self.root))
            {
                fn_dir = up.to_path_buf();
            }
        }
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

    /// The build's current signature: a hash of the wrapper and of every input file (handler,
    /// helpers, manifests), re-read only when one of their stats (or a folder's) changed.
    fn signature(&self, slot: &Slot) -> Result<String, CompiledError> {
        let unknown = || unavailable(format!("unknown function: {}", slot.entry));
        if !slot.file.is_file() {
            return Err(unknown());
        }
        if let Some((srcs, old, sig)) = &lock(&slot.state).sig_cache {
            if stamps(srcs) == *old {
                return Ok(sig.clone());
            }
        }
        let srcs = sources::sources(self.kind, &self.root, &slot.fn_dir, &slot.file);
        let now = stamps(&srcs);
        let version = WRAPPER_VERSION.to_le_bytes();
        let mut contents = Vec::new();
        for f in &srcs.files {
            let rel = f.strip_prefix(&slot.fn_dir).unwrap_or(f);
            // A missing manifest hashes as empty: its appearance is a change.
            let bytes = std::fs::read(f).unwrap_or_default();
            contents.push((rel.as_os_str().as_encoded_bytes().to_vec(), bytes));
        }
        if std::fs::read(&slot.file).is_err() {
            return Err(unknown());
        }
        let mut parts: Vec<&[u8]> = vec![
            &version,
            self.kind.name().as_bytes(),
            self.template().as_bytes(),
            slot.entry.as_bytes(),
        ];
        for (rel, bytes) in &contents {
            parts.push(rel);
            parts.push(bytes);
        }
        let sig = format!("{:016x}", fnv64(&parts));
        lock(&slot.state).sig_cache = Some((srcs, now, sig.clone()));
        Ok(sig)
    }

    /// A socket with a live process running the current handler (or, while someone else
    /// rebuilds it, the previous one).
    async fn ensure(self: &Arc<Self>, slot: &Arc<Slot>) -> Result<(PathBuf, Prepared), CompiledError> {
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
                    return Ok((slot.socket.clone(), Prepared::default()));
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
    async fn prepare(&self, slot: &Slot) -> Result<(PathBuf, Prepared), CompiledError> {
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
                    return Ok((slot.socket.clone(), Prepared::default()));
                }
            }
        }
        let binary = slot.build_dir.join("bin").join(format!("fn-{sig}"));
        let mut prepared = Prepared::default();
        if !binary.is_file() {
            let building = Instant::now();
            let built = self.build(slot, &sig, &binary).await;
            prepared.build_us = building.elapsed().as_micros() as u64;
            if let Err(e) = built {
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
        let starting = Instant::now();
        let proc = self.start(slot, &sig, &binary).await?;
        prepared.start_us = starting.elapsed().as_micros() as u64;
        lock(&slot.state).proc = Some(proc);
        if self.stopped.load(Ordering::SeqCst) {
            // `stop` ran while we were starting: do not leave this one behind.
            let proc = lock(&slot.state).proc.take();
            if let Some(p) = proc {
                p.stop().await;
            }
            return Err(unavailable("compiled runtime stopped"));
        }
        Ok((slot.socket.clone(), prepared))
    }

    /// Generate the wrapper, run the toolchain (≤ the build timeout), and install the program
    /// as `binary`. Emits `BuildStarted`/`BuildFinished`.
    async fn build(&self, slot: &Slot, sig: &str, binary: &Path) -> Result<(), CompiledError> {
        let started = Instant::now();
        self.events.emit(EngineEvent::BuildStarted {
            runtime: self.kind,
            function: slot.entry.clone(),
        });
        let limit = self.build_timeout;
        let result = match tokio::time::timeout(limit, self.run_build(slot, sig, binary)).await {
            Ok(r) => r,
            Err(_) => Err(CompiledError::Build {
                runtime: self.kind,
                output: format!("build timed out after {} s", limit.as_secs_f64()),
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
        let user_manifest = std::fs::read_to_string(slot.fn_dir.join("Cargo.toml")).ok();
        let header = format!("# Generated by FastFN (wrapper v{WRAPPER_VERSION}, signature {sig}). Do not edit.");
        let lib_crate = user_manifest
            .as_deref()
            .and_then(|text| sources::rust_lib_crate(text, &slot.fn_dir, &slot.file));
        // src/main.rs sits at <fn>/.rust-build/<stem>/src/: the function folder is three levels
        // up. A plain handler file is `#[path]`-included, so its own `mod x;` resolve beside it.
        let in_fn = slot.file.strip_prefix(&slot.fn_dir).unwrap_or(Path::new("handler.rs"));
        let rel = format!("../../../{}", in_fn.display());
        let (manifest, user_module) = match &lib_crate {
            Some((package, lib)) => (
                sources::rust_crate_manifest(&crate_name, &header, package, &slot.fn_dir),
                format!("use {lib} as fastfn_user_handler;"),
            ),
            None => (
                sources::rust_manifest(&crate_name, &header, user_manifest.as_deref(), &slot.fn_dir),
                format!("#[path = \"{}\"]\nmod fastfn_user_handler;", rel.escape_default()),
            ),
        };
        let manifest = manifest.map_err(|output| CompiledError::Build {
            runtime: self.kind,
            output,
        })?;
        let main = RUST_TEMPLATE.replace("__USER_MODULE__", &user_module);
        write_if_changed(&slot.build_dir.join("Cargo.toml"), &manifest)?;
        // The function's lock pins its dependencies (cargo adds our crate to the copy).
        if let Ok(lock) = std::fs::read_to_string(slot.fn_dir.join("Cargo.lock")) {
            write_if_changed(&slot.build_dir.join("Cargo.lock"), &lock)?;
        }
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
            let root_rel = slot.fn_dir.strip_prefix(&self.root).unwrap_or(Path::new(""));
            let text = out
                .1
                .replace(&format!("src/{rel}"), &slot.entry)
                .replace("src/../../../", &format!("{}/", root_rel.display()))
                .replace(&format!("{}/", self.root.display()), "");
            return Err(CompiledError::Build {
                runtime: self.kind,
                output: trim_output(&text),
            });
        }
        Ok(target.join("debug").join(&crate_name))
    }

    /// The local Go's (major, minor), asked once.
    async fn go_version(&self, slot: &Slot) -> Option<(u32, u32)> {
        *self
            .go_version
            .get_or_init(|| async {
                let args: Vec<OsString> = vec!["env".into(), "GOVERSION".into()];
                match self.run_tool(slot, &args, &[]).await {
                    Ok((true, text)) => sources::parse_go_version(&text),
                    _ => None,
                }
            })
            .await
    }

    async fn build_go(&self, slot: &Slot, sig: &str, source: &str) -> Result<PathBuf, CompiledError> {
        let Some(symbol) = sources::go_symbol(source) else {
            return Err(CompiledError::Build {
                runtime: self.kind,
                output: format!(
                    "{}: no handler: expected func handler(event map[string]interface{{}}) … (or Handler)",
                    slot.entry
                ),
            });
        };
        std::fs::create_dir_all(&slot.build_dir).map_err(|e| unavailable(e.to_string()))?;
        let user_mod = std::fs::read_to_string(slot.fn_dir.join("go.mod")).ok();
        let go_mod = match &user_mod {
            Some(text) => {
                let local = self.go_version(slot).await;
                format!(
                    "// Generated by FastFN from the function's go.mod (wrapper v{WRAPPER_VERSION}, signature {sig}).\n{}",
                    sources::rewrite_go_mod(text, local, &slot.fn_dir)
                )
            }
            None => format!(
                "// Generated by FastFN (wrapper v{WRAPPER_VERSION}, signature {sig}).\nmodule fastfnhandler\n\ngo 1.19\n"
            ),
        };
        write_if_changed(&slot.build_dir.join("go.mod"), &go_mod)?;
        match std::fs::read_to_string(slot.fn_dir.join("go.sum")) {
            Ok(sum) if user_mod.is_some() => write_if_changed(&slot.build_dir.join("go.sum"), &sum)?,
            _ => {
                let _ = std::fs::remove_file(slot.build_dir.join("go.sum"));
            }
        }
        write_if_changed(&slot.build_dir.join("main.go"), GO_TEMPLATE)?;
        write_if_changed(
            &slot.build_dir.join("fastfn_entry.go"),
            &GO_ENTRY.replace("__SYMBOL__", symbol),
        )?;
        write_if_changed(&slot.build_dir.join("fastfn_dup_linux.go"), GO_DUP_LINUX)?;
        write_if_changed(&slot.build_dir.join("fastfn_dup_other.go"), GO_DUP_OTHER)?;
        write_if_changed(
            &slot.build_dir.join("handler.go"),
            &go_handler_source(source, &slot.entry),
        )?;
        // Helpers: copies under a prefix; copies of helpers that are gone are removed.
        let mut keep = Vec::new();
        for helper in sources::go_helpers(&self.root, &slot.file) {
            let name = helper.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            let copy = format!("{GO_USER_PREFIX}{name}");
            let text = std::fs::read_to_string(&helper)
                .map_err(|e| unavailable(format!("cannot read {}: {e}", helper.display())))?;
            let rel = helper.strip_prefix(&self.root).unwrap_or(&helper).display().to_string();
            write_if_changed(&slot.build_dir.join(&copy), &go_handler_source(&text, &rel))?;
            keep.push(copy);
        }
        for e in std::fs::read_dir(&slot.build_dir).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(GO_USER_PREFIX) && name.ends_with(".go") && !keep.contains(&name) {
                let _ = std::fs::remove_file(e.path());
            }
        }
        let out_dir = slot.build_dir.join("out");
        let out = out_dir.join("fn");
        let args: Vec<OsString> = vec!["build".into(), "-o".into(), out.as_os_str().into(), ".".into()];
        let mut env: Vec<(&str, OsString)> = vec![
            ("GO111MODULE", "on".into()),
            ("GOFLAGS", "-mod=mod".into()),
            ("GOTOOLCHAIN", "local".into()),
            ("CGO_ENABLED", "0".into()),
        ];
        // Without the function's own go.mod there is nothing to download; with it, the
        // machine's GOPROXY settings apply (its dependencies may need fetching).
        if user_mod.is_none() {
            env.push(("GOPROXY", "off".into()));
        }
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
        let mut vars: Vec<(OsString, OsString)> = vec![("CARGO_TERM_COLOR".into(), "never".into())];
        vars.extend(env.iter().map(|(k, v)| (OsString::from(k), v.clone())));
        let mut child = crate::process::spawn(&crate::process::Spec {
            program: self.toolchain.as_os_str(),
            args: args.to_vec(),
            cwd: &slot.build_dir,
            env: vars,
            env_remove: vec![],
            stdin_pipe: false,
        })
        .map_err(|e| {
            unavailable(format!(
                "{} toolchain unavailable ({}): {e}",
                self.kind,
                self.toolchain.display()
            ))
        })?;
        // Timed out or aborted (engine stop): kill the whole group (rustc, compile, link…),
        // not only the toolchain's own process.
        let _group = crate::process::GroupGuard(child.id().unwrap_or(0));
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
        let hidden = std::env::vars_os()
            .filter_map(|(key, _)| {
                let k = key.to_str()?;
                HIDDEN_ENV.iter().any(|p| k.starts_with(p)).then(|| key.clone())
            })
            .collect();
        let mut child = crate::process::spawn(&crate::process::Spec {
            program: binary.as_os_str(),
            args: vec![slot.socket.clone().into_os_string()],
            cwd: &slot.fn_dir,
            env: vec![
                ("FN_FUNCTIONS_ROOT".into(), self.root.clone().into_os_string()),
                ("FN_FUNCTION_DIR".into(), slot.fn_dir.clone().into_os_string()),
            ],
            env_remove: hidden,
            stdin_pipe: true,
        })
        .map_err(|e| unavailable(format!("cannot start {}: {e}", slot.entry)))?;
        let pid = child.id().unwrap_or(0);
        let stdin = child.stdin.take();
        let tail = Arc::new(Tail::default());
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
                let tail = tail.last(Tail::LINES);
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
    tail: Option<Arc<Tail>>,
) {
    crate::process::forward_lines(stream, tail, |line| {
        tracing::debug!(target: "fastfn::compiled", %runtime, %entry, stream = name, "{line}");
        events.emit(EngineEvent::Log {
            runtime,
            index: 0,
            stream: name,
            line: format!("{entry}: {line}"),
        });
    })
    .await;
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
