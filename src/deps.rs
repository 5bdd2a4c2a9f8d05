//! Dependencies per function (contract §4.2): a function folder's manifests are installed into
//! that folder, never shared with another function, and the function answers 503 with
//! `Retry-After: 2` while they are being prepared.
//!
//! | runtime | manifests read | installed into | installer |
//! |---|---|---|---|
//! | python | `requirements.txt`, `#@requirements a b` in the first 30 lines of each handler | `<fn>/.deps/` | `<python> -m pip install --target <fn>/.deps` |
//! | node | `package.json` (+ `package-lock.json` / `npm-shrinkwrap.json`) | `<fn>/node_modules/` | `npm ci` with a lock file, else `npm install` |
//! | php | `composer.json` (+ `composer.lock`) | `<fn>/vendor/` | `composer install` |
//!
//! Invariants kept here:
//! - The function folder is the folder of the target's `entry` file (for a file route, the folder
//!   the file is in; for an explicit function, its folder or its version subfolder). Every
//!   handler of one runtime in that folder shares that folder's install.
//! - An install is keyed by a signature of the manifests' contents, the inline requirements and
//!   the installer binary, stamped in `<out dir>/.fastfn-signature` when it succeeds; a folder
//!   whose stamp matches is ready without running anything (also after a restart).
//! - [`Deps::readiness`] is the hot path: one lock-free snapshot load and, only when some folder
//!   is not ready, one map lookup. No file I/O, no allocation for a ready function.
//! - Installs run in the background (`tokio::process`), at most [`Options::concurrency`] at a
//!   time, each within [`Options::timeout`] (then its whole process group is killed); stdin is
//!   closed, so an installer that asks a question fails instead of hanging.
//! - A failed install stays failed (with the installer's output) until its manifests change or
//!   [`Deps::retry_failed`] is called (a manual reload); a manifest changed while its install
//!   ran is installed again once that run ends.
//! - Nothing is installed outside the function folder except what the installers themselves
//!   cache per user (pip's and npm's download caches), as they do when run by hand.

pub mod infer;

use crate::events::{EngineEvent, EventBus};
use crate::routing::Target;
use crate::runtime::RuntimeKind;
use arc_swap::ArcSwap;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;

/// Name of the stamp file written into the install folder after a successful install.
pub const STAMP_FILE: &str = ".fastfn-signature";
/// Lines of a python handler searched for `#@requirements`.
pub const INLINE_LINES: usize = 30;
/// Installer output kept for a failure (its tail: that is where the errors are).
const MAX_OUTPUT_BYTES: usize = 8 * 1024;

/// Whether a function may be called now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    /// Its dependencies are being installed: answer 503 with `Retry-After: 2`.
    Preparing,
    /// The install failed; the installer's output, trimmed (a first line says what failed).
    Failed(String),
}

/// Which package manager a folder needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Installer {
    Pip,
    Npm,
    Composer,
}

impl Installer {
    pub fn for_runtime(rt: RuntimeKind) -> Option<Installer> {
        match rt {
            RuntimeKind::Python => Some(Installer::Pip),
            RuntimeKind::Node => Some(Installer::Npm),
            RuntimeKind::Php => Some(Installer::Composer),
            _ => None,
        }
    }

    pub fn runtime(self) -> RuntimeKind {
        match self {
            Installer::Pip => RuntimeKind::Python,
            Installer::Npm => RuntimeKind::Node,
            Installer::Composer => RuntimeKind::Php,
        }
    }

    /// The folder, inside the function folder, that the install fills.
    pub fn out_dir(self) -> &'static str {
        match self {
            Installer::Pip => ".deps",
            Installer::Npm => "node_modules",
            Installer::Composer => "vendor",
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    /// The manifest whose presence means "install something", and the lock files that pin it.
    fn files(self) -> (&'static str, &'static [&'static str]) {
        match self {
            Installer::Pip => ("requirements.txt", &[]),
            Installer::Npm => ("package.json", &["package-lock.json", "npm-shrinkwrap.json"]),
            Installer::Composer => ("composer.json", &["composer.lock"]),
        }
    }

    /// Environment variable that names this installer's binary.
    fn binary_var(self) -> &'static str {
        match self {
            Installer::Pip => "FN_PYTHON_BIN",
            Installer::Npm => "FN_NPM_BIN",
            Installer::Composer => "FN_COMPOSER_BIN",
        }
    }
}

/// `#@requirements a b` lines among the first [`INLINE_LINES`] lines of a python handler. Names
/// are split on blanks and commas; a requirement starts with a letter or digit (a name, or a
/// `git+https://…` URL): options and local paths (`-e .`) belong in `requirements.txt`.
pub fn inline_requirements(source: &str) -> Vec<String> {
    source
        .lines()
        .take(INLINE_LINES)
        .filter_map(|l| l.trim_start().strip_prefix("#@requirements"))
        .filter(|rest| rest.is_empty() || rest.starts_with(|c: char| c.is_whitespace()))
        .flat_map(|rest| rest.split(|c: char| c.is_whitespace() || c == ','))
        .filter(|r| r.starts_with(|c: char| c.is_ascii_alphanumeric()))
        .map(str::to_string)
        .collect()
}

/// What one folder asks one installer for, as read from disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub installer: Installer,
    /// The main manifest's contents, when the file exists (`requirements.txt` may be absent
    /// when a handler has `#@requirements`).
    pub primary: Option<Vec<u8>>,
    /// Lock files present, by name, with their contents.
    pub locks: Vec<(&'static str, Vec<u8>)>,
    /// Python only: `#@requirements` of the folder's handlers, sorted, without duplicates.
    pub inline: Vec<String>,
}

/// Signature of an install: `primary` covers what the user asks for (manifest, inline
/// requirements, installer binary), `full` also covers the lock files, which an installer may
/// write itself (`npm install` creates `package-lock.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signature {
    pub primary: u64,
    pub full: u64,
}

impl Signature {
    /// Text of the stamp file.
    pub fn stamp(&self) -> String {
        format!("fastfn-deps-v1 {:016x}\n", self.full)
    }
}

/// FNV-1a, 64 bits: stable across builds and platforms (std's hasher is not promised to be).
#[derive(Clone, Copy)]
struct Fnv(u64);

impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn bytes(mut self, data: &[u8]) -> Fnv {
        for b in (data.len() as u64).to_le_bytes().iter().chain(data) {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
        self
    }
}

impl Manifest {
    /// Read the manifests of `installer` in `folder`; `handlers` are the folder's python
    /// handler files (searched for `#@requirements`). `None` when there is nothing to install.
    pub fn read(folder: &Path, installer: Installer, handlers: &[PathBuf]) -> std::io::Result<Option<Manifest>> {
        let (main, lock_names) = installer.files();
        let primary = read_optional(&folder.join(main))?;
        let mut inline = Vec::new();
        if installer == Installer::Pip {
            for h in handlers {
                if let Some(text) = read_optional(h)? {
                    inline.extend(inline_requirements(&String::from_utf8_lossy(&text)));
                }
            }
            inline.sort();
            inline.dedup();
        }
        if primary.is_none() && inline.is_empty() {
            return Ok(None);
        }
        let mut locks = Vec::new();
        for name in lock_names {
            if let Some(text) = read_optional(&folder.join(name))? {
                locks.push((*name, text));
            }
        }
        Ok(Some(Manifest {
            installer,
            primary,
            locks,
            inline,
        }))
    }

    pub fn signature(&self, program: &str) -> Signature {
        let mut h = Fnv::new()
            .bytes(format!("{:?}", self.installer).as_bytes())
            .bytes(program.as_bytes())
            .bytes(self.primary.as_deref().unwrap_or(b"\0absent"));
        for r in &self.inline {
            h = h.bytes(r.as_bytes());
        }
        let primary = h.0;
        for (name, text) in &self.locks {
            h = h.bytes(name.as_bytes()).bytes(text);
        }
        Signature { primary, full: h.0 }
    }

    /// What is installed, for events: `requirements.txt`, `#@requirements`, `package.json`…
    pub fn label(&self) -> String {
        let (main, _) = self.installer.files();
        match (self.primary.is_some(), self.inline.is_empty()) {
            (true, true) => main.to_string(),
            (true, false) => format!("{main} + #@requirements"),
            (false, _) => "#@requirements".to_string(),
        }
    }

    /// Python: whether pip has anything to do (a requirements file of comments only, and no
    /// inline requirements, installs nothing).
    fn is_empty(&self) -> bool {
        self.installer == Installer::Pip
            && self.inline.is_empty()
            && self.primary.as_deref().is_none_or(|t| {
                String::from_utf8_lossy(t)
                    .lines()
                    .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
            })
    }

    /// Arguments after the program (`-m pip install …`, `ci …`, `install …`).
    fn args(&self, out: &Path) -> Vec<std::ffi::OsString> {
        let mut args: Vec<std::ffi::OsString> = Vec::new();
        match self.installer {
            Installer::Pip => {
                for a in ["-m", "pip", "install", "--target"] {
                    args.push(a.into());
                }
                args.push(out.into());
                for a in ["--disable-pip-version-check", "--no-input", "--quiet"] {
                    args.push(a.into());
                }
                if self.primary.is_some() {
                    args.push("-r".into());
                    args.push("requirements.txt".into());
                }
                args.extend(self.inline.iter().map(Into::into));
            }
            Installer::Npm => {
                args.push(if self.locks.is_empty() { "install" } else { "ci" }.into());
                args.push("--no-audit".into());
                args.push("--no-fund".into());
            }
            Installer::Composer => {
                for a in ["install", "--no-interaction", "--no-progress"] {
                    args.push(a.into());
                }
            }
        }
        args
    }

    /// The command line as shown in events (no absolute paths).
    fn command_line(&self) -> String {
        match self.installer {
            Installer::Pip => {
                let mut s = format!("pip install --target {}", Installer::Pip.out_dir());
                if self.primary.is_some() {
                    s.push_str(" -r requirements.txt");
                }
                for r in &self.inline {
                    s.push(' ');
                    s.push_str(r);
                }
                s
            }
            Installer::Npm if self.locks.is_empty() => "npm install --no-audit --no-fund".into(),
            Installer::Npm => "npm ci --no-audit --no-fund".into(),
            Installer::Composer => "composer install --no-interaction --no-progress".into(),
        }
    }
}

fn read_optional(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(t) => Ok(Some(t)),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// The function folder of a target: the folder of its entry file, root-relative (`""` for the
/// root itself).
pub fn function_folder(target: &Target) -> &str {
    target.entry.rsplit_once('/').map_or("", |(dir, _)| dir)
}

/// State of one (folder, installer) unit.
#[derive(Debug, Clone, PartialEq)]
enum State {
    Installing {
        sig: Signature,
    },
    Ready {
        sig: Signature,
    },
    /// `retry`: install again at the next `prepare` even if nothing changed.
    Failed {
        sig: Signature,
        output: String,
        retry: bool,
    },
}

/// What [`Deps::prepare`] does with one unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Leave it: installed, installing (a change is picked up when the run ends), or failed
    /// with the same manifests.
    Keep,
    /// Installed by an earlier run (the stamp on disk matches).
    MarkReady,
    Install,
}

/// Pure: the step for a unit in `state` whose manifests now have signature `sig`;
/// `stamped` tells whether the stamp on disk matches `sig`.
fn decide(state: Option<&State>, sig: Signature, stamped: bool) -> Step {
    match state {
        None if stamped => Step::MarkReady,
        None => Step::Install,
        Some(State::Installing { .. }) => Step::Keep,
        Some(State::Ready { sig: s }) if s.full == sig.full && stamped => Step::Keep,
        Some(State::Failed {
            sig: s, retry: false, ..
        }) if s.full == sig.full => Step::Keep,
        Some(_) => Step::Install,
    }
}

/// One (folder, installer) pair with something to install.
#[derive(Debug)]
struct Unit {
    /// Absolute function folder.
    dir: PathBuf,
    /// Python handler files of the folder (for `#@requirements`).
    handlers: Vec<PathBuf>,
    state: State,
}

type Key = (String, Installer);

/// Tuning of [`Deps`].
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// One install's time limit; then its process group is killed and it fails.
    pub timeout: Duration,
    /// Installs running at once.
    pub concurrency: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            timeout: Duration::from_secs(300),
            concurrency: 2,
        }
    }
}

/// Status of one folder's install, for `/_fn/health` and the dashboard.
#[derive(Debug, Clone, Serialize)]
pub struct DepsStatus {
    pub runtime: RuntimeKind,
    pub function: String,
    pub installer: Installer,
    /// `installing`, `ready` or `failed`.
    pub state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Per-function dependency installs. Cheap to share (`Arc`); all state is in memory and behind
/// short-lived locks that the request path never takes.
pub struct Deps {
    /// Binary per installer: python (run as `-m pip`), npm, composer.
    programs: [String; 3],
    events: EventBus,
    options: Options,
    slots: Arc<Semaphore>,
    /// Every unit known from the last `prepare`, plus installs still running.
    units: Mutex<HashMap<Key, Unit>>,
    /// What the hot path reads: folders with a unit that is not ready, per installer.
    not_ready: ArcSwap<HashMap<String, [Option<Readiness>; 3]>>,
}

impl std::fmt::Debug for Deps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deps")
            .field("programs", &self.programs)
            .finish_non_exhaustive()
    }
}

impl Deps {
    /// `python` is the interpreter the python daemons use (pip runs as `python -m pip`, so
    /// compiled packages match it); `npm` and `composer` are the installers' binaries.
    pub fn new(python: String, npm: String, composer: String, events: EventBus) -> Arc<Deps> {
        Deps::with_options(python, npm, composer, events, Options::default())
    }

    pub fn with_options(
        python: String,
        npm: String,
        composer: String,
        events: EventBus,
        options: Options,
    ) -> Arc<Deps> {
        Arc::new(Deps {
            programs: [python, npm, composer],
            events,
            options,
            slots: Arc::new(Semaphore::new(options.concurrency.max(1))),
            units: Mutex::new(HashMap::new()),
            not_ready: ArcSwap::from_pointee(HashMap::new()),
        })
    }

    fn program(&self, installer: Installer) -> &str {
        &self.programs[installer.index()]
    }

    /// Off the request path, at start and after every reload, with every target, *before* the
    /// new route map is swapped in: reads each function folder's manifests and stamp (small
    /// blocking reads), marks folders that need an install as preparing, and starts those
    /// installs in the background. Must be called within a tokio runtime.
    pub fn prepare(self: &Arc<Self>, root: &Path, targets: &[Arc<Target>]) {
        self.prepare_touched(root, targets, None)
    }

    /// [`Deps::prepare`] for a hot reload: only folders at, above the files of, or below a
    /// `touched` path (root-relative) are read again; the others keep their state (their
    /// manifests and handlers did not change). `None` reads every folder.
    pub fn prepare_touched(self: &Arc<Self>, root: &Path, targets: &[Arc<Target>], touched: Option<&[String]>) {
        let is_touched = |folder: &str| {
            touched.is_none_or(|paths| {
                paths.iter().any(|t| {
                    let parent = t.rsplit_once('/').map_or("", |(dir, _)| dir);
                    parent == folder
                        || t == folder
                        || folder.strip_prefix(t.as_str()).is_some_and(|r| r.starts_with('/'))
                })
            })
        };
        let mut untouched = std::collections::HashSet::new();
        let mut wanted: BTreeMap<Key, Vec<PathBuf>> = BTreeMap::new();
        for t in targets {
            let Some(installer) = Installer::for_runtime(t.runtime) else {
                continue;
            };
            let folder = function_folder(t);
            if !is_touched(folder) {
                untouched.insert((folder.to_string(), installer));
                continue;
            }
            let handlers = wanted.entry((folder.to_string(), installer)).or_default();
            if installer == Installer::Pip {
                let path = root.join(&t.entry);
                if !handlers.contains(&path) {
                    handlers.push(path);
                }
            }
        }
        let mut read = Vec::new();
        for ((folder, installer), handlers) in wanted {
            let dir = root.join(&folder);
            let manifest = match Manifest::read(&dir, installer, &handlers) {
                Ok(Some(m)) => m,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!("cannot read the manifests of {}: {e}", dir.display());
                    continue;
                }
            };
            let sig = manifest.signature(self.program(installer));
            let stamp = std::fs::read_to_string(dir.join(installer.out_dir()).join(STAMP_FILE)).unwrap_or_default();
            read.push(((folder, installer), dir, handlers, sig, stamp == sig.stamp()));
        }

        let mut start = Vec::new();
        {
            let mut units = self.units.lock().unwrap_or_else(|p| p.into_inner());
            let live: std::collections::HashSet<&Key> = read.iter().map(|(k, ..)| k).chain(untouched.iter()).collect();
            // Folders gone (or without manifests now) are forgotten; a running install keeps
            // its unit until it ends.
            units.retain(|k, u| live.contains(k) || matches!(u.state, State::Installing { .. }));
            for (key, dir, handlers, sig, stamped) in read {
                let step = decide(units.get(&key).map(|u| &u.state), sig, stamped);
                let unit = units.entry(key.clone()).or_insert_with(|| Unit {
                    dir: dir.clone(),
                    handlers: Vec::new(),
                    state: State::Ready { sig },
                });
                unit.handlers = handlers;
                match step {
                    Step::Keep => {}
                    Step::MarkReady => unit.state = State::Ready { sig },
                    Step::Install => {
                        unit.state = State::Installing { sig };
                        start.push(key);
                    }
                }
            }
            self.publish(&units);
        }
        for key in start {
            let deps = self.clone();
            tokio::spawn(async move { deps.run(key).await });
        }
    }

    /// Hot path: whether the function of `target` may be called. Memory only.
    pub fn readiness(&self, target: &Target) -> Readiness {
        let not_ready = self.not_ready.load();
        if not_ready.is_empty() {
            return Readiness::Ready;
        }
        let Some(installer) = Installer::for_runtime(target.runtime) else {
            return Readiness::Ready;
        };
        match not_ready.get(function_folder(target)) {
            Some(per) => per[installer.index()].clone().unwrap_or(Readiness::Ready),
            None => Readiness::Ready,
        }
    }

    /// Make the next [`Deps::prepare`] try failed installs again even though their manifests did
    /// not change (for a manual reload, after a network failure). They answer as failed until
    /// then.
    pub fn retry_failed(&self) {
        let mut units = self.units.lock().unwrap_or_else(|p| p.into_inner());
        for u in units.values_mut() {
            if let State::Failed { retry, .. } = &mut u.state {
                *retry = true;
            }
        }
    }

    /// Every known install, sorted by folder.
    pub fn status(&self) -> Vec<DepsStatus> {
        let units = self.units.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<DepsStatus> = units
            .iter()
            .map(|((folder, installer), u)| {
                let (state, error) = match &u.state {
                    State::Installing { .. } => ("installing", None),
                    State::Ready { .. } => ("ready", None),
                    State::Failed { output, .. } => ("failed", Some(output.clone())),
                };
                DepsStatus {
                    runtime: installer.runtime(),
                    function: display_folder(folder),
                    installer: *installer,
                    state,
                    error,
                }
            })
            .collect();
        out.sort_by(|a, b| (&a.function, a.installer).cmp(&(&b.function, b.installer)));
        out
    }

    /// Rebuild the hot path's snapshot; the caller holds the units lock.
    fn publish(&self, units: &HashMap<Key, Unit>) {
        let mut map: HashMap<String, [Option<Readiness>; 3]> = HashMap::new();
        for ((folder, installer), u) in units {
            let r = match &u.state {
                State::Ready { .. } => continue,
                State::Installing { .. } => Readiness::Preparing,
                State::Failed { output, .. } => Readiness::Failed(output.clone()),
            };
            map.entry(folder.clone()).or_default()[installer.index()] = Some(r);
        }
        self.not_ready.store(Arc::new(map));
    }

    /// Install one unit until its manifests stop changing under the install.
    async fn run(self: Arc<Self>, key: Key) {
        let (folder, installer) = (key.0.clone(), key.1);
        loop {
            let Some((dir, handlers, started_sig)) = self
                .with_unit(&key, |u| match u.state {
                    State::Installing { sig } => Some((u.dir.clone(), u.handlers.clone(), sig)),
                    _ => None,
                })
                .flatten()
            else {
                return;
            };
            let read_dir = dir.clone();
            let read_handlers = handlers.clone();
            let manifest =
                tokio::task::spawn_blocking(move || Manifest::read(&read_dir, installer, &read_handlers)).await;
            let manifest = match manifest {
                Ok(Ok(Some(m))) => m,
                Ok(Ok(None)) => return self.forget(&key),
                Ok(Err(e)) => {
                    let output = format!("cannot read the manifests: {e}");
                    return self.fail(&key, started_sig, "deps.io", 0, "", output);
                }
                Err(e) => return self.fail(&key, started_sig, "deps.io", 0, "", e.to_string()),
            };
            let sig = manifest.signature(self.program(installer));
            self.with_unit(&key, |u| u.state = State::Installing { sig });
            let label = manifest.label();
            self.events.emit(EngineEvent::DepsInstalling {
                runtime: installer.runtime(),
                function: display_folder(&folder),
                manifest: label.clone(),
                installer: manifest.command_line(),
            });
            let started = tokio::time::Instant::now();
            let result = {
                let _slot = self.slots.clone().acquire_owned().await;
                self.install(&dir, &manifest).await
            };
            let ms = started.elapsed().as_millis() as u64;

            // The folder may have changed while the installer ran (manifests, or handlers with
            // `#@requirements` added by a reload meanwhile): read it again.
            let handlers = self.with_unit(&key, |u| u.handlers.clone()).unwrap_or(handlers);
            let again_dir = dir.clone();
            let after = tokio::task::spawn_blocking(move || Manifest::read(&again_dir, installer, &handlers))
                .await
                .ok()
                .and_then(Result::ok)
                .flatten();
            let Some(after) = after else {
                return self.forget(&key);
            };
            let now = after.signature(self.program(installer));
            if now.primary != sig.primary {
                continue;
            }
            match result {
                Ok(()) => {
                    // Lock files the installer wrote are part of what was installed.
                    let stamp_dir = dir.join(installer.out_dir());
                    let written = tokio::task::spawn_blocking(move || {
                        std::fs::create_dir_all(&stamp_dir)?;
                        std::fs::write(stamp_dir.join(STAMP_FILE), now.stamp())
                    })
                    .await;
                    if let Ok(Err(e)) | Err(e) = written.map_err(std::io::Error::other) {
                        let output = format!("cannot write {}: {e}", STAMP_FILE);
                        return self.fail(&key, now, "deps.io", ms, &label, output);
                    }
                    self.with_unit(&key, |u| u.state = State::Ready { sig: now });
                    self.events.emit(EngineEvent::DepsReady {
                        runtime: installer.runtime(),
                        function: display_folder(&folder),
                        manifest: label,
                        ms,
                    });
                }
                Err((code, output)) => self.fail(&key, now, code, ms, &label, output),
            }
            return;
        }
    }

    /// Run the installer for `manifest` in `dir`.
    async fn install(&self, dir: &Path, manifest: &Manifest) -> Result<(), (&'static str, String)> {
        let installer = manifest.installer;
        let out = dir.join(installer.out_dir());
        if installer == Installer::Pip {
            // A fresh folder each time: pip --target does not remove what is no longer asked for.
            match tokio::fs::remove_dir_all(&out).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(("deps.io", format!("cannot clear {}: {e}", installer.out_dir()))),
            }
            if manifest.is_empty() {
                return tokio::fs::create_dir_all(&out)
                    .await
                    .map_err(|e| ("deps.io", format!("cannot create {}: {e}", installer.out_dir())));
            }
        }
        let program = self.program(installer);
        let tool = if installer == Installer::Pip { "pip" } else { program };
        let Ok(path) = which::which(program) else {
            let what = match installer {
                Installer::Pip => "install Python",
                Installer::Npm => "install Node.js (npm)",
                Installer::Composer => "install Composer",
            };
            let msg = format!("{program} not found: {what} or set {}", installer.binary_var());
            return Err(("deps.missing_installer", msg));
        };
        let mut cmd = tokio::process::Command::new(path);
        cmd.args(manifest.args(&out))
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env("PIP_NO_INPUT", "1")
            .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
            .env("PIP_ROOT_USER_ACTION", "ignore")
            .env("COMPOSER_NO_INTERACTION", "1")
            .env("npm_config_update_notifier", "false")
            .kill_on_drop(true)
            .process_group(0);
        let child = cmd
            .spawn()
            .map_err(|e| ("deps.missing_installer", format!("cannot start {tool}: {e}")))?;
        let pid = child.id();
        let command = manifest.command_line();
        match tokio::time::timeout(self.options.timeout, child.wait_with_output()).await {
            Ok(Ok(output)) if output.status.success() => Ok(()),
            Ok(Ok(output)) => Err((
                "deps.install_failed",
                failure_text(
                    &format!("`{command}` failed ({})", output.status),
                    &output.stdout,
                    &output.stderr,
                ),
            )),
            Ok(Err(e)) => Err(("deps.install_failed", format!("`{command}` failed: {e}"))),
            Err(_) => {
                // The child itself was killed when its future was dropped; its helpers too.
                if let Some(pid) = pid {
                    let _ = nix::sys::signal::killpg(
                        nix::unistd::Pid::from_raw(pid as i32),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
                let secs = self.options.timeout.as_secs_f64();
                Err(("deps.timeout", format!("`{command}` did not finish within {secs} s")))
            }
        }
    }

    fn with_unit<R>(&self, key: &Key, f: impl FnOnce(&mut Unit) -> R) -> Option<R> {
        let mut units = self.units.lock().unwrap_or_else(|p| p.into_inner());
        let r = units.get_mut(key).map(f);
        self.publish(&units);
        r
    }

    fn forget(&self, key: &Key) {
        let mut units = self.units.lock().unwrap_or_else(|p| p.into_inner());
        units.remove(key);
        self.publish(&units);
    }

    fn fail(&self, key: &Key, sig: Signature, code: &'static str, ms: u64, label: &str, output: String) {
        self.with_unit(key, |u| {
            u.state = State::Failed {
                sig,
                output: output.clone(),
                retry: false,
            }
        });
        self.events.emit(EngineEvent::DepsFailed {
            runtime: key.1.runtime(),
            function: display_folder(&key.0),
            manifest: label.to_string(),
            code,
            ms,
            output,
        });
    }
}

fn display_folder(folder: &str) -> String {
    if folder.is_empty() {
        ".".into()
    } else {
        folder.to_string()
    }
}

/// `headline`, then the installer's output (stdout, then stderr), trimmed to its last
/// [`MAX_OUTPUT_BYTES`].
fn failure_text(headline: &str, stdout: &[u8], stderr: &[u8]) -> String {
    let joined = [String::from_utf8_lossy(stdout), String::from_utf8_lossy(stderr)]
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("\n");
    let mut start = joined.len().saturating_sub(MAX_OUTPUT_BYTES);
    while !joined.is_char_boundary(start) {
        start += 1;
    }
    let tail = &joined[start..];
    if tail.is_empty() {
        headline.to_string()
    } else if start > 0 {
        format!("{headline}\n…\n{tail}")
    } else {
        format!("{headline}\n{tail}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::FnPolicy;
    use std::os::unix::fs::PermissionsExt;

    fn target(runtime: RuntimeKind, entry: &str) -> Arc<Target> {
        Arc::new(Target {
            runtime,
            fn_name: entry.to_string(),
            fn_source_dir: None,
            version: None,
            entry: entry.to_string(),
            policy: FnPolicy::default(),
            explicit: false,
        })
    }

    fn write(root: &Path, files: &[(&str, &str)]) {
        for (rel, text) in files {
            let p = root.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
    }

    /// A stand-in installer: a shell script, so state changes are tested without a network.
    fn script(dir: &Path, name: &str, body: &str) -> String {
        let p = dir.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p.display().to_string()
    }

    fn deps_with(python: &str, npm: &str, timeout: Duration) -> Arc<Deps> {
        let options = Options {
            timeout,
            concurrency: 2,
        };
        Deps::with_options(
            python.into(),
            npm.into(),
            "composer".into(),
            EventBus::default(),
            options,
        )
    }

    /// Wait (bounded) until `target` is no longer preparing.
    async fn settled(deps: &Deps, target: &Target, limit: Duration) -> Readiness {
        let end = tokio::time::Instant::now() + limit;
        loop {
            let r = deps.readiness(target);
            if r != Readiness::Preparing || tokio::time::Instant::now() > end {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn has_python_pip() -> bool {
        std::process::Command::new("python3")
            .args(["-m", "pip", "--version"])
            .output()
            .is_ok_and(|o| o.status.success())
    }

    #[test]
    fn inline_requirements_first_30_lines_names_only() {
        let mut src = String::from("#@requirements six==1.16.0 requests,  attrs\n  #@requirements  idna\n");
        src.push_str("#@requirementsx nope\n#@requirements --index-url=http://x -e . ok\n# @requirements no\n");
        src.push_str(&"pass\n".repeat(24));
        src.push_str("#@requirements line30\n#@requirements line31\n");
        assert_eq!(
            inline_requirements(&src),
            ["six==1.16.0", "requests", "attrs", "idna", "ok", "line30"]
        );
        assert!(inline_requirements("import six\n").is_empty());
    }

    #[test]
    fn manifests_that_count() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        write(
            r,
            &[
                ("py/requirements.txt", "six==1.16.0\n"),
                ("py/handler.py", "#@requirements attrs\ndef handler(e): pass\n"),
                ("py/other.py", "#@requirements attrs idna\n"),
                ("inline/handler.py", "#@requirements six\n"),
                ("plain/handler.py", "def handler(e): pass\n"),
                ("node/package.json", "{}"),
                ("locked/package.json", "{}"),
                ("locked/package-lock.json", "{}"),
                ("php/composer.json", "{}"),
                ("php/composer.lock", "{}"),
            ],
        );
        let hs = |dir: &str, names: &[&str]| names.iter().map(|n| r.join(dir).join(n)).collect::<Vec<_>>();
        let py = Manifest::read(&r.join("py"), Installer::Pip, &hs("py", &["handler.py", "other.py"]))
            .unwrap()
            .unwrap();
        assert_eq!(py.inline, ["attrs", "idna"]);
        assert_eq!(py.label(), "requirements.txt + #@requirements");
        assert_eq!(
            py.command_line(),
            "pip install --target .deps -r requirements.txt attrs idna"
        );
        let inline = Manifest::read(&r.join("inline"), Installer::Pip, &hs("inline", &["handler.py"]))
            .unwrap()
            .unwrap();
        assert_eq!(
            (inline.primary.is_none(), inline.label().as_str()),
            (true, "#@requirements")
        );
        assert!(!inline.command_line().contains("-r"));
        assert_eq!(
            Manifest::read(&r.join("plain"), Installer::Pip, &hs("plain", &["handler.py"])).unwrap(),
            None
        );
        // A python folder's package.json is not python's business, and the other way round.
        assert_eq!(Manifest::read(&r.join("node"), Installer::Pip, &[]).unwrap(), None);
        assert_eq!(Manifest::read(&r.join("py"), Installer::Npm, &[]).unwrap(), None);
        let node = Manifest::read(&r.join("node"), Installer::Npm, &[]).unwrap().unwrap();
        assert_eq!(node.command_line(), "npm install --no-audit --no-fund");
        let locked = Manifest::read(&r.join("locked"), Installer::Npm, &[]).unwrap().unwrap();
        assert_eq!(locked.command_line(), "npm ci --no-audit --no-fund");
        let php = Manifest::read(&r.join("php"), Installer::Composer, &[])
            .unwrap()
            .unwrap();
        assert_eq!(php.locks.len(), 1);
        assert_eq!(Manifest::read(&r.join("missing"), Installer::Npm, &[]).unwrap(), None);
        // Only comments: pip is not run.
        write(r, &[("empty/requirements.txt", "# nothing yet\n\n")]);
        assert!(Manifest::read(&r.join("empty"), Installer::Pip, &[])
            .unwrap()
            .unwrap()
            .is_empty());
        assert!(!py.is_empty());
    }

    #[test]
    fn signatures_follow_contents_inline_requirements_binary_and_locks() {
        let m = Manifest {
            installer: Installer::Npm,
            primary: Some(b"{\"dependencies\":{}}".to_vec()),
            locks: vec![],
            inline: vec![],
        };
        let base = m.signature("npm");
        assert_eq!(base, m.clone().signature("npm"), "stable");
        assert_eq!(base.stamp(), format!("fastfn-deps-v1 {:016x}\n", base.full));
        assert_ne!(base, m.signature("/opt/npm"));
        let mut changed = m.clone();
        changed.primary = Some(b"{\"dependencies\":{\"a\":\"1\"}}".to_vec());
        assert_ne!(base.primary, changed.signature("npm").primary);
        let mut locked = m.clone();
        locked.locks.push(("package-lock.json", b"{}".to_vec()));
        let l = locked.signature("npm");
        assert_eq!(
            l.primary, base.primary,
            "a lock the installer wrote is not a user change"
        );
        assert_ne!(l.full, base.full);
        let py = Manifest {
            installer: Installer::Pip,
            primary: None,
            locks: vec![],
            inline: vec!["six".into()],
        };
        let mut py2 = py.clone();
        py2.inline.push("attrs".into());
        assert_ne!(py.signature("python3"), py2.signature("python3"));
    }

    #[test]
    fn decisions() {
        let a = Signature { primary: 1, full: 1 };
        let b = Signature { primary: 2, full: 2 };
        assert_eq!(decide(None, a, true), Step::MarkReady);
        assert_eq!(decide(None, a, false), Step::Install);
        assert_eq!(decide(Some(&State::Installing { sig: a }), b, false), Step::Keep);
        assert_eq!(decide(Some(&State::Ready { sig: a }), a, true), Step::Keep);
        // The install folder was removed by hand: install again.
        assert_eq!(decide(Some(&State::Ready { sig: a }), a, false), Step::Install);
        assert_eq!(decide(Some(&State::Ready { sig: a }), b, false), Step::Install);
        let failed = State::Failed {
            sig: a,
            output: "x".into(),
            retry: false,
        };
        assert_eq!(
            decide(Some(&failed), a, false),
            Step::Keep,
            "retried only after a change"
        );
        assert_eq!(decide(Some(&failed), b, false), Step::Install);
        let retry = State::Failed {
            sig: a,
            output: "x".into(),
            retry: true,
        };
        assert_eq!(decide(Some(&retry), a, false), Step::Install);
    }

    #[test]
    fn function_folder_is_the_entry_folder() {
        assert_eq!(
            function_folder(&target(RuntimeKind::Python, "api/users/get.py")),
            "api/users"
        );
        assert_eq!(function_folder(&target(RuntimeKind::Python, "hello.py")), "");
        assert_eq!(
            function_folder(&target(RuntimeKind::Node, "shop/v2/handler.js")),
            "shop/v2"
        );
    }

    #[tokio::test]
    async fn preparing_then_ready_stamped_and_not_repeated() {
        let d = tempfile::tempdir().unwrap();
        let (root, bin) = (d.path().join("fns"), d.path().join("bin"));
        std::fs::create_dir_all(&bin).unwrap();
        // Called as `python -m pip install --target <out> …`: $5 is the install folder.
        let count = d.path().join("count");
        let python = script(
            &bin,
            "python",
            &format!(
                "sleep 0.2; echo run >> {}; mkdir -p \"$5\"; touch \"$5/fake.py\"",
                count.display()
            ),
        );
        write(
            &root,
            &[
                ("withdeps/requirements.txt", "fake\n"),
                ("withdeps/handler.py", ""),
                ("nodeps/handler.py", ""),
            ],
        );
        let (with, without) = (
            target(RuntimeKind::Python, "withdeps/handler.py"),
            target(RuntimeKind::Python, "nodeps/handler.py"),
        );
        let deps = deps_with(&python, "npm", Duration::from_secs(10));
        let mut events = deps.events.subscribe();
        deps.prepare(&root, &[with.clone(), without.clone()]);
        assert_eq!(deps.readiness(&with), Readiness::Preparing);
        assert_eq!(deps.readiness(&without), Readiness::Ready);
        assert_eq!(settled(&deps, &with, Duration::from_secs(10)).await, Readiness::Ready);
        assert!(root.join("withdeps/.deps/fake.py").exists());
        assert!(root.join("withdeps/.deps").join(STAMP_FILE).exists());
        assert!(!root.join("nodeps/.deps").exists());
        match events.recv().await.unwrap() {
            EngineEvent::DepsInstalling {
                runtime,
                function,
                manifest,
                ..
            } => assert_eq!(
                (runtime, function.as_str(), manifest.as_str()),
                (RuntimeKind::Python, "withdeps", "requirements.txt")
            ),
            other => panic!("{other:?}"),
        }
        assert!(matches!(events.recv().await.unwrap(), EngineEvent::DepsReady { .. }));
        let st = deps.status();
        assert_eq!((st.len(), st[0].state), (1, "ready"));

        // A reload with nothing changed, and a restart (new Deps, stamp on disk): no install.
        deps.prepare(&root, std::slice::from_ref(&with));
        assert_eq!(deps.readiness(&with), Readiness::Ready);
        let restarted = deps_with(&python, "npm", Duration::from_secs(10));
        restarted.prepare(&root, std::slice::from_ref(&with));
        assert_eq!(restarted.readiness(&with), Readiness::Ready);
        assert_eq!(std::fs::read_to_string(&count).unwrap().lines().count(), 1);

        // A changed manifest installs again.
        write(&root, &[("withdeps/requirements.txt", "fake\nother\n")]);
        deps.prepare(&root, std::slice::from_ref(&with));
        assert_eq!(deps.readiness(&with), Readiness::Preparing);
        assert_eq!(settled(&deps, &with, Duration::from_secs(10)).await, Readiness::Ready);
        assert_eq!(std::fs::read_to_string(&count).unwrap().lines().count(), 2);
    }

    #[tokio::test]
    async fn a_manifest_changed_during_the_install_is_installed_once_it_ends() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("fns");
        let count = d.path().join("count");
        let python = script(
            d.path(),
            "python",
            &format!("echo run >> {}; sleep 0.3; mkdir -p \"$5\"", count.display()),
        );
        write(&root, &[("f/requirements.txt", "one\n"), ("f/handler.py", "")]);
        let t = target(RuntimeKind::Python, "f/handler.py");
        let deps = deps_with(&python, "npm", Duration::from_secs(10));
        deps.prepare(&root, std::slice::from_ref(&t));
        tokio::time::sleep(Duration::from_millis(100)).await;
        // A handler with `#@requirements` is added while pip runs; the reload sees an install
        // running.
        write(&root, &[("f/other.py", "#@requirements two\n")]);
        deps.prepare(&root, &[t.clone(), target(RuntimeKind::Python, "f/other.py")]);
        assert_eq!(deps.readiness(&t), Readiness::Preparing);
        assert_eq!(settled(&deps, &t, Duration::from_secs(10)).await, Readiness::Ready);
        assert_eq!(std::fs::read_to_string(&count).unwrap().lines().count(), 2);
        let handlers = [root.join("f/handler.py"), root.join("f/other.py")];
        let now = Manifest::read(&root.join("f"), Installer::Pip, &handlers)
            .unwrap()
            .unwrap()
            .signature(&python);
        let stamp = std::fs::read_to_string(root.join("f/.deps").join(STAMP_FILE)).unwrap();
        assert_eq!(stamp, now.stamp());
    }

    /// A hot reload reads only the folders its paths touched: a changed manifest elsewhere
    /// waits for its own event (which always comes), untouched units keep their state.
    #[tokio::test]
    async fn a_hot_reload_reads_only_touched_folders() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("fns");
        let python = script(d.path(), "python", "echo \"failed: $*\" >&2; exit 3");
        write(
            &root,
            &[("f/handler.py", "#@requirements first-pkg\n"), ("g/handler.py", "")],
        );
        let (f, g) = (
            target(RuntimeKind::Python, "f/handler.py"),
            target(RuntimeKind::Python, "g/handler.py"),
        );
        let both = [f.clone(), g.clone()];
        let deps = deps_with(&python, "npm", Duration::from_secs(10));
        deps.prepare(&root, &both);
        let Readiness::Failed(first) = settled(&deps, &f, Duration::from_secs(10)).await else {
            panic!("not failed")
        };
        assert!(first.contains("first-pkg"), "{first}");
        write(&root, &[("f/handler.py", "#@requirements second-pkg\n")]);
        // Only g was touched: f keeps its unit and state (not forgotten, not re-read).
        deps.prepare_touched(&root, &both, Some(&["g/new.py".to_string()]));
        assert_eq!(deps.readiness(&f), Readiness::Failed(first.clone()));
        assert_eq!(deps.status().len(), 1);
        // Its own event re-reads it.
        deps.prepare_touched(&root, &both, Some(&["f/handler.py".to_string()]));
        let Readiness::Failed(second) = settled(&deps, &f, Duration::from_secs(10)).await else {
            panic!("not failed")
        };
        assert!(second.contains("second-pkg"), "{second}");
        // A removed folder (touched as a whole) drops its unit.
        deps.prepare_touched(&root, std::slice::from_ref(&g), Some(&["f".to_string()]));
        assert!(deps.status().is_empty(), "{:?}", deps.status());
    }

    #[tokio::test]
    async fn a_failed_install_keeps_its_output_until_the_manifest_changes() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("fns");
        let python = script(
            d.path(),
            "python",
            "echo collecting; echo 'ERROR: no such package' >&2; exit 3",
        );
        write(&root, &[("f/handler.py", "#@requirements nothing-here\n")]);
        let t = target(RuntimeKind::Python, "f/handler.py");
        let deps = deps_with(&python, "npm", Duration::from_secs(10));
        let mut events = deps.events.subscribe();
        deps.prepare(&root, std::slice::from_ref(&t));
        let Readiness::Failed(out) = settled(&deps, &t, Duration::from_secs(10)).await else {
            panic!("not failed")
        };
        assert!(
            out.starts_with("`pip install --target .deps nothing-here` failed (exit status: 3)"),
            "{out}"
        );
        assert!(out.contains("collecting\nERROR: no such package"), "{out}");
        assert!(!out.contains(d.path().to_str().unwrap()), "no absolute paths: {out}");
        let _installing = events.recv().await.unwrap();
        match events.recv().await.unwrap() {
            EngineEvent::DepsFailed { code, output, .. } => {
                assert_eq!((code, output.as_str()), ("deps.install_failed", out.as_str()))
            }
            other => panic!("{other:?}"),
        }
        // Not retried by a reload that changed nothing; retried when the manifest changes.
        deps.prepare(&root, std::slice::from_ref(&t));
        assert!(matches!(deps.readiness(&t), Readiness::Failed(_)));
        // Unless asked to (a manual reload).
        deps.retry_failed();
        assert!(
            matches!(deps.readiness(&t), Readiness::Failed(_)),
            "until the next prepare"
        );
        deps.prepare(&root, std::slice::from_ref(&t));
        assert_eq!(deps.readiness(&t), Readiness::Preparing);
        assert!(matches!(
            settled(&deps, &t, Duration::from_secs(10)).await,
            Readiness::Failed(_)
        ));
        write(&root, &[("f/handler.py", "#@requirements something-else\n")]);
        deps.prepare(&root, std::slice::from_ref(&t));
        assert_eq!(deps.readiness(&t), Readiness::Preparing);
        assert!(matches!(
            settled(&deps, &t, Duration::from_secs(10)).await,
            Readiness::Failed(_)
        ));
        // Requirements removed: nothing to install, the function answers again.
        write(&root, &[("f/handler.py", "def handler(e): pass\n")]);
        deps.prepare(&root, std::slice::from_ref(&t));
        assert_eq!(deps.readiness(&t), Readiness::Ready);
        assert!(deps.status().is_empty());
    }

    #[tokio::test]
    async fn a_hanging_installer_is_killed_at_the_timeout() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("fns");
        let pidfile = d.path().join("pid");
        // The installer's helper (a grandchild) must die with it.
        let python = script(
            d.path(),
            "python",
            &format!("sleep 30 & echo $! > {}; wait", pidfile.display()),
        );
        write(&root, &[("f/requirements.txt", "x\n")]);
        let t = target(RuntimeKind::Python, "f/handler.py");
        let deps = deps_with(&python, "npm", Duration::from_millis(500));
        let started = std::time::Instant::now();
        deps.prepare(&root, std::slice::from_ref(&t));
        let r = settled(&deps, &t, Duration::from_secs(10)).await;
        assert!(started.elapsed() < Duration::from_secs(5));
        let Readiness::Failed(out) = r else { panic!("{r:?}") };
        assert!(out.contains("did not finish within 0.5 s"), "{out}");
        let pid: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let alive = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
            && !std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z "));
        assert!(!alive, "the installer's process group was killed");
    }

    #[tokio::test]
    async fn a_missing_installer_fails_clearly() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), &[("n/package.json", "{}"), ("n/handler.js", "")]);
        let t = target(RuntimeKind::Node, "n/handler.js");
        let deps = deps_with("python3", "/nonexistent/npm", Duration::from_secs(10));
        deps.prepare(d.path(), std::slice::from_ref(&t));
        assert_eq!(
            settled(&deps, &t, Duration::from_secs(5)).await,
            Readiness::Failed("/nonexistent/npm not found: install Node.js (npm) or set FN_NPM_BIN".into())
        );
        // Other runtimes of the same folder are not affected.
        assert_eq!(deps.readiness(&target(RuntimeKind::Python, "n/x.py")), Readiness::Ready);
    }

    // Real installs: they need the tools and the package registries.

    #[tokio::test]
    async fn real_pip_install_into_the_function_folder() {
        if !has_python_pip() {
            eprintln!("skipped: python3 -m pip is not available");
            return;
        }
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            &[
                ("six_fn/requirements.txt", "six==1.16.0\n"),
                (
                    "six_fn/handler.py",
                    "import six\ndef handler(e):\n    return six.__version__\n",
                ),
                ("other/handler.py", "def handler(e):\n    return 'x'\n"),
            ],
        );
        let t = target(RuntimeKind::Python, "six_fn/handler.py");
        let deps = deps_with("python3", "npm", Duration::from_secs(120));
        let started = std::time::Instant::now();
        deps.prepare(d.path(), &[t.clone(), target(RuntimeKind::Python, "other/handler.py")]);
        assert_eq!(deps.readiness(&t), Readiness::Preparing);
        let r = settled(&deps, &t, Duration::from_secs(120)).await;
        eprintln!("pip install six: {:?} in {} ms", r, started.elapsed().as_millis());
        assert_eq!(r, Readiness::Ready);
        assert!(d.path().join("six_fn/.deps/six.py").exists());
        assert!(!d.path().join("other/.deps").exists());
    }

    #[tokio::test]
    async fn real_pip_install_of_a_package_that_does_not_exist_fails_in_bounded_time() {
        if !has_python_pip() {
            eprintln!("skipped: python3 -m pip is not available");
            return;
        }
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            &[("bad/requirements.txt", "this-package-does-not-exist-fastfn==0.0.1\n")],
        );
        let t = target(RuntimeKind::Python, "bad/handler.py");
        let deps = deps_with("python3", "npm", Duration::from_secs(120));
        let started = std::time::Instant::now();
        deps.prepare(d.path(), std::slice::from_ref(&t));
        let r = settled(&deps, &t, Duration::from_secs(120)).await;
        eprintln!("pip install (missing package): {} ms", started.elapsed().as_millis());
        let Readiness::Failed(out) = r else { panic!("{r:?}") };
        assert!(
            out.contains("No matching distribution found for this-package-does-not-exist-fastfn==0.0.1"),
            "{out}"
        );
    }

    #[tokio::test]
    async fn real_npm_install_into_the_function_folder() {
        if which::which("npm").is_err() {
            eprintln!("skipped: npm is not available");
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let pkg = r#"{"name":"isnum","version":"1.0.0","private":true,"dependencies":{"is-number":"7.0.0"}}"#;
        write(d.path(), &[("isnum/package.json", pkg), ("isnum/handler.js", "")]);
        let t = target(RuntimeKind::Node, "isnum/handler.js");
        let deps = deps_with("python3", "npm", Duration::from_secs(120));
        let started = std::time::Instant::now();
        deps.prepare(d.path(), std::slice::from_ref(&t));
        assert_eq!(deps.readiness(&t), Readiness::Preparing);
        let r = settled(&deps, &t, Duration::from_secs(120)).await;
        eprintln!("npm install is-number: {:?} in {} ms", r, started.elapsed().as_millis());
        assert_eq!(r, Readiness::Ready);
        assert!(d.path().join("isnum/node_modules/is-number/package.json").exists());
        // `npm install` wrote a lock file; the stamp covers it, so a reload installs nothing.
        assert!(d.path().join("isnum/package-lock.json").exists());
        let again = deps_with("python3", "npm", Duration::from_secs(120));
        again.prepare(d.path(), std::slice::from_ref(&t));
        assert_eq!(again.readiness(&t), Readiness::Ready);
    }
}

#[cfg(test)]
mod fixture_tests {
    use super::*;
    use crate::discovery::{discover, DiscoveryOptions};

    fn copy_dir(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                copy_dir(&e.path(), &to.join(e.file_name()));
            } else {
                std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
            }
        }
    }

    /// `fixtures/deps`, discovered as the engine does: the folders with manifests are
    /// preparing at once, the others are ready. Installers are stand-ins that never finish
    /// within the test (no network).
    #[tokio::test]
    async fn fixture_folders_with_manifests_are_preparing() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("deps");
        copy_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/deps"), &root);
        let opts = DiscoveryOptions {
            runtimes: vec![RuntimeKind::Node, RuntimeKind::Python],
            ..DiscoveryOptions::default()
        };
        let found = discover(&root, &opts);
        let targets: Vec<Arc<Target>> = found.routes.routes().iter().map(|r| r.target.clone()).collect();
        let sleeper = d.path().join("sleeper");
        std::fs::write(&sleeper, "#!/bin/sh\nexec sleep 5\n").unwrap();
        std::fs::set_permissions(&sleeper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let s = sleeper.display().to_string();
        let options = Options {
            timeout: Duration::from_secs(5),
            concurrency: 4,
        };
        let deps = Deps::with_options(s.clone(), s, "composer".into(), EventBus::default(), options);
        deps.prepare(&root, &targets);
        let mut states: Vec<(String, Readiness)> = found
            .routes
            .routes()
            .iter()
            .map(|r| (r.pattern.clone(), deps.readiness(&r.target)))
            .collect();
        states.sort_by(|a, b| a.0.cmp(&b.0));
        let preparing = |p: &str| (p.to_string(), Readiness::Preparing);
        let ready = |p: &str| (p.to_string(), Readiness::Ready);
        assert_eq!(
            states,
            [
                ready("/node-nodeps"),
                preparing("/node-pkg"),
                preparing("/py-inline"),
                preparing("/py-missing"),
                ready("/py-nodeps"),
                preparing("/py-requirements"),
            ]
        );
    }
}
