//! Dependencies per function (contract §4.2): a function folder's manifests are installed into
//! that folder, never shared with another function except through a shared pack it names. A
//! request that arrives while they are installed waits for the install ([`Deps::wait`], bounded
//! by the caller), then answers 503 with `Retry-After: 2` if it is still running. Manifests may
//! be written first by inference from the handlers' imports ([`infer`], FastFN's
//! `FN_AUTO_INFER_*`).
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
//!   cache per user (pip's and npm's download caches), as they do when run by hand, and shared
//!   packs (`<root>/.fastfn/packs/<runtime>/<pack>`, each a unit of its own, never deferred),
//!   whose top-level packages are linked into each naming function's install folder before the
//!   function turns ready; a function is ready when its own unit and every pack it names are.
//! - A waiting request holds no lock and no worker slot: it watches a counter bumped at every
//!   change of the hot path's snapshot.
//! - Inference and the files it writes (`requirements.txt`, `package.json`,
//!   `requirements.lock.txt`, `.fastfn-deps-state.json`) are written only when their content
//!   changes or an install ends, so the reload those writes trigger settles at once.

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
/// FastFN's per-function record of the last inference and install, in the function folder.
pub const STATE_FILE: &str = ".fastfn-deps-state.json";
/// What pip installed, pinned (`pip freeze --path .deps`), in the function folder.
pub const PY_LOCK_FILE: &str = "requirements.lock.txt";
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
    /// Inference found imports it cannot map to a package (`FN_AUTO_INFER_STRICT`): FastFN's
    /// `… dependency inference failed: unresolved imports …` message. Answers 500.
    Unresolved(String),
}

/// Which package manager a folder needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, ts_rs::TS)]
#[ts(export)]
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
        let sources = read_handlers(installer, handlers)?;
        Self::read_with(folder, installer, &sources)
    }

    /// [`Manifest::read`] with the handlers' texts already read ([`read_handlers`]).
    fn read_with(
        folder: &Path,
        installer: Installer,
        sources: &[Option<Vec<u8>>],
    ) -> std::io::Result<Option<Manifest>> {
        let (main, lock_names) = installer.files();
        let primary = read_optional(&folder.join(main))?;
        let mut inline = Vec::new();
        if installer == Installer::Pip {
            for text in sources.iter().flatten() {
                inline.extend(inline_requirements(&String::from_utf8_lossy(text)));
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
                // Not `--quiet`: its lines (`Collecting six`, …) are the progress shown.
                for a in ["--disable-pip-version-check", "--no-input", "--progress-bar", "off"] {
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

/// The texts of a folder's handlers, each read once for both inference and `#@requirements`
/// (a start of 10,000 Python files read each twice). Only pip reads handlers for a manifest.
fn read_handlers(installer: Installer, handlers: &[PathBuf]) -> std::io::Result<Vec<Option<Vec<u8>>>> {
    if installer == Installer::Composer {
        return Ok(Vec::new());
    }
    handlers.iter().map(|h| read_optional(h)).collect()
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
    /// `FN_PREINSTALL_*_DEPS_ON_START=0`: installed when its first request arrives.
    Deferred {
        sig: Signature,
    },
    /// Inference stopped at imports it cannot name (the message); nothing is installed until
    /// the handler or the manifest changes.
    Unresolved {
        message: String,
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
        Some(State::Deferred { sig: s }) if s.full == sig.full => Step::Keep,
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
    /// Handler files of the folder (python: for `#@requirements`; both: for inference).
    handlers: Vec<PathBuf>,
    state: State,
    /// What inference found at the last read (for `.fastfn-deps-state.json`).
    inference: Option<Inference>,
}

impl Unit {
    fn new(dir: PathBuf) -> Unit {
        Unit {
            dir,
            handlers: Vec::new(),
            state: State::Ready {
                sig: Signature { primary: 0, full: 0 },
            },
            inference: None,
        }
    }
}

/// What inference did for a unit.
#[derive(Debug, Clone, Default)]
struct Inference {
    found: infer::Inferred,
    /// The manifest was created by inference (not by the user).
    generated: bool,
}

/// What `prepare` read for one unit.
enum Found {
    Manifest {
        sig: Signature,
        stamped: bool,
        inference: Option<Inference>,
    },
    /// Strict inference failed: the message, and what inference found (for the state file).
    Unresolved(String, Inference),
}

/// `.fastfn-deps-state.json` in the function folder, as FastFN writes it after an install
/// (or a failed inference). Paths are relative to the function folder (FastFN writes absolute
/// ones). Best effort: a folder that cannot be written keeps working.
fn write_state_file(
    dir: &Path,
    installer: Installer,
    inference: Option<&Inference>,
    error: Option<&str>,
    status: &str,
) {
    let (main, locks) = installer.files();
    let lock = match installer {
        Installer::Pip => Some(PY_LOCK_FILE),
        _ => locks.iter().copied().find(|l| dir.join(l).is_file()),
    };
    let found = inference.map(|i| &i.found);
    let list = |f: fn(&infer::Inferred) -> &Vec<String>| found.map(f).cloned().unwrap_or_default();
    let inferred = found.is_some_and(|f| !f.resolved.is_empty() || !f.unresolved.is_empty());
    let state = serde_json::json!({
        "runtime": installer.runtime(),
        "mode": if inferred { "inferred" } else { "manifest" },
        "manifest_path": main,
        "manifest_generated": inference.is_some_and(|i| i.generated),
        "infer_backend": "native",
        "inferred_imports": list(|f| &f.imports),
        "resolved_packages": list(|f| &f.resolved),
        "unresolved_imports": list(|f| &f.unresolved),
        "last_install_status": status,
        "last_error": error,
        "lockfile_path": lock,
        "updated_at": iso8601(crate::clock::epoch_millis() / 1000),
    });
    let text = serde_json::to_string_pretty(&state).unwrap_or_default() + "\n";
    if let Err(e) = std::fs::write(dir.join(STATE_FILE), text) {
        tracing::warn!("cannot write {} in {}: {e}", STATE_FILE, dir.display());
    }
}

/// `2026-12-01T11:30:00Z` from epoch seconds (proleptic Gregorian, UTC).
fn iso8601(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The package an installer's failure output names, if any: pip's `No matching distribution
/// found for x`, npm's `404 … 'x@1' is not in this registry`, composer's `requires x, it could
/// not be found`.
pub fn failed_package(output: &str) -> Option<String> {
    let clean = |s: &str| {
        s.trim()
            .trim_matches(|c: char| matches!(c, '\'' | '"' | '`' | '.' | ','))
            .to_string()
    };
    for line in output.lines().rev() {
        if let Some(rest) = line.split_once("No matching distribution found for ").map(|(_, r)| r) {
            return Some(clean(rest));
        }
        if let Some((_, rest)) = line.split_once("Could not find a version that satisfies the requirement ") {
            return Some(clean(rest.split(" (").next().unwrap_or(rest)));
        }
        if line.contains("is not in this registry") || line.contains("is not in the npm registry") {
            if let Some(name) = line.split('\'').nth(1) {
                return Some(clean(name));
            }
        }
        if let Some((_, rest)) = line.split_once(" requires ") {
            if line.contains("could not be found") {
                return Some(clean(rest.split([',', ' ']).next().unwrap_or(rest)));
            }
        }
    }
    None
}

/// The line of an installer's failure output that says what went wrong, for a one-line report:
/// the first error line that is not boilerplate (npm's `code`/`errno`/`syscall` lines, its
/// "complete log" pointer and network advice), else the last non-empty line.
pub fn failure_reason(output: &str) -> &str {
    const BOILERPLATE: [&str; 7] = [
        "npm error code ",
        "npm error errno ",
        "npm error syscall ",
        "A complete log of this run",
        "This is a problem related to network",
        "In most cases you are behind a proxy",
        "If you are behind a proxy",
    ];
    let lines = || output.lines().map(str::trim).filter(|l| !l.is_empty());
    lines()
        .filter(|l| {
            let lower = l.to_ascii_lowercase();
            // A bare "npm error network" line is a blank line of npm's advice block.
            lower.contains("error") && lower != "npm error network"
        })
        .find(|l| !BOILERPLATE.iter().any(|b| l.contains(b)))
        .or_else(|| lines().next_back())
        .unwrap_or("")
}

type Key = (String, Installer);

/// Below this many folders per thread, reading them on one thread is as fast.
const MIN_FOLDERS_PER_THREAD: usize = 8;

/// Tuning of [`Deps`].
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// One install's time limit; then its process group is killed and it fails.
    pub timeout: Duration,
    /// Installs running at once.
    pub concurrency: usize,
    pub toggles: Toggles,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            timeout: Duration::from_secs(300),
            concurrency: 2,
            toggles: Toggles::default(),
        }
    }
}

/// FastFN's dependency switches, by their environment variables (each on unless set to `0`,
/// `false`, `off` or `no`, as the original reads them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Toggles {
    /// `FN_AUTO_REQUIREMENTS`: run pip for python functions.
    pub pip: bool,
    /// `FN_AUTO_NODE_DEPS`: run npm for node functions.
    pub npm: bool,
    /// `FN_AUTO_PHP_DEPS`: run composer for php functions.
    pub composer: bool,
    /// `FN_AUTO_INFER_PY_DEPS`: add a python handler's imports to `requirements.txt`.
    pub infer_python: bool,
    /// `FN_AUTO_INFER_NODE_DEPS`: add a node handler's imports to `package.json`.
    pub infer_node: bool,
    /// `FN_AUTO_INFER_WRITE_MANIFEST`: inference may write the manifest (else it only reports).
    pub write_manifest: bool,
    /// `FN_AUTO_INFER_STRICT`: an import that cannot be mapped to a package fails the function.
    pub strict: bool,
    /// `FN_PREINSTALL_PY_DEPS_ON_START`: install python packages when the engine starts or
    /// reloads (else at the function's first request).
    pub preinstall_python: bool,
    /// `FN_PREINSTALL_NODE_DEPS_ON_START`: the same for node (and php, which the original
    /// installs at first request only; here it follows node's switch).
    pub preinstall_node: bool,
    /// `FN_PREINSTALL_NODE_DEPS_CONCURRENCY`: installs at once, when set.
    pub concurrency: Option<usize>,
}

impl Default for Toggles {
    fn default() -> Self {
        Toggles {
            pip: true,
            npm: true,
            composer: true,
            infer_python: true,
            infer_node: true,
            write_manifest: true,
            strict: true,
            preinstall_python: true,
            preinstall_node: true,
            concurrency: None,
        }
    }
}

impl Toggles {
    /// Read from an environment (the engine's settings source).
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Toggles {
        let on = |name: &str| {
            env(name).is_none_or(|v| !matches!(v.trim().to_ascii_lowercase().as_str(), "0" | "false" | "off" | "no"))
        };
        Toggles {
            pip: on("FN_AUTO_REQUIREMENTS"),
            npm: on("FN_AUTO_NODE_DEPS"),
            composer: on("FN_AUTO_PHP_DEPS"),
            infer_python: on("FN_AUTO_INFER_PY_DEPS"),
            infer_node: on("FN_AUTO_INFER_NODE_DEPS"),
            write_manifest: on("FN_AUTO_INFER_WRITE_MANIFEST"),
            strict: on("FN_AUTO_INFER_STRICT"),
            preinstall_python: on("FN_PREINSTALL_PY_DEPS_ON_START"),
            preinstall_node: on("FN_PREINSTALL_NODE_DEPS_ON_START"),
            concurrency: env("FN_PREINSTALL_NODE_DEPS_CONCURRENCY")
                .and_then(|v| v.trim().parse().ok())
                .filter(|n| *n > 0),
        }
    }

    /// Whether `installer` runs at all.
    pub fn installs(&self, installer: Installer) -> bool {
        match installer {
            Installer::Pip => self.pip,
            Installer::Npm => self.npm,
            Installer::Composer => self.composer,
        }
    }

    fn preinstalls(&self, installer: Installer) -> bool {
        match installer {
            Installer::Pip => self.preinstall_python,
            Installer::Npm | Installer::Composer => self.preinstall_node,
        }
    }
}

/// One shared pack, for `GET /_fn/packs`.
#[derive(Debug, Clone, Serialize)]
pub struct PackStatus {
    pub runtime: RuntimeKind,
    pub name: String,
    /// Root-relative folder (`.fastfn/packs/python/<name>`).
    pub path: String,
    /// The manifest a pack of this runtime installs from.
    pub manifest: &'static str,
    /// `ready`, `installing`, `failed`, `unused` (no function names it yet) or `empty` (no
    /// manifest).
    pub state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Function folders whose `fn.config.json` names it in `shared_deps`.
    pub used_by: Vec<String>,
}

/// Status of one folder's install, for `/_fn/health` and the dashboard.
#[derive(Debug, Clone, Serialize)]
pub struct DepsStatus {
    pub runtime: RuntimeKind,
    pub function: String,
    pub installer: Installer,
    /// `installing`, `deferred` (waits for its first request), `ready`, `failed` or
    /// `unresolved` (inference found imports it cannot name).
    pub state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The package the installer could not install, when its output names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
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
    /// Bumped at every change of `not_ready`: requests waiting for an install watch it.
    changed: tokio::sync::watch::Sender<u64>,
    /// This `Deps` itself, for installs started from a request (`&self` there).
    this: std::sync::Weak<Deps>,
    /// Shared packs each function folder names (`shared_deps`), from the last read of its
    /// `fn.config.json`. Locked after `units` when both are held.
    uses: Mutex<HashMap<Key, Vec<PackRef>>>,
    /// The lab's "install fails" fault: installs of these units fail without running the
    /// installer (so what is installed stays on disk for when the fault is cleared). Read only
    /// by installs, never by the request path.
    sabotaged: Mutex<std::collections::HashSet<Key>>,
}

/// A pack a function names: its root-relative folder, or why it cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PackRef {
    Found {
        name: String,
        folder: String,
    },
    /// FastFN's `shared pack not found: …` message.
    Missing(String),
}

/// Root-relative folder of the shared packs of `installer`'s runtime.
fn packs_dir(installer: Installer) -> &'static str {
    match installer {
        Installer::Pip => ".fastfn/packs/python",
        Installer::Npm => ".fastfn/packs/node",
        Installer::Composer => ".fastfn/packs/php",
    }
}

/// `shared_deps` of a function folder's `fn.config.json`: names, once each, in order. Names
/// FastFN would refuse (characters) or that leave the packs folder (`..`, absolute) are
/// skipped.
fn shared_deps(dir: &Path) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(dir.join("fn.config.json")) else {
        return Vec::new();
    };
    let Ok(value) = serde_json::from_str::<serde_json::Value>(&text) else {
        return Vec::new();
    };
    let mut out: Vec<String> = Vec::new();
    for item in value["shared_deps"].as_array().into_iter().flatten() {
        let Some(name) = item.as_str().map(str::trim) else {
            continue;
        };
        let valid = !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphanumeric() || "._/-[]".contains(c))
            && !name.starts_with('/')
            && name.split('/').all(|seg| !seg.is_empty() && seg != "." && seg != "..");
        if valid && !out.iter().any(|o| o == name) {
            out.push(name.to_string());
        }
    }
    out
}

/// Names the packs of a function folder provide (python: normalised as requirement names): what each
/// pack's manifest lists, what its install folder holds at the top level, and (node, as FastFN
/// does) the pack names themselves.
fn pack_provides(root: &Path, dir: &Path, installer: Installer) -> Vec<String> {
    let mut out = Vec::new();
    for name in shared_deps(dir) {
        let pack = root.join(packs_dir(installer)).join(&name);
        let (main, _) = installer.files();
        let manifest = std::fs::read_to_string(pack.join(main)).unwrap_or_default();
        match installer {
            Installer::Pip => out.extend(manifest.lines().filter_map(infer::requirement_name)),
            _ => {
                out.push(name.clone());
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&manifest) {
                    out.extend(
                        v["dependencies"]
                            .as_object()
                            .into_iter()
                            .flatten()
                            .map(|(k, _)| k.clone()),
                    );
                }
            }
        }
        for entry in std::fs::read_dir(pack.join(installer.out_dir()))
            .into_iter()
            .flatten()
            .flatten()
        {
            if let Some(n) = entry.file_name().to_str() {
                out.push(n.trim_end_matches(".py").to_string());
            }
        }
    }
    match installer {
        Installer::Pip => out.iter().filter_map(|n| infer::requirement_name(n)).collect(),
        _ => out,
    }
}

/// Make the packages installed in a pack visible to a function: a symbolic link in the
/// function's install folder for each top-level entry of the pack's (`.deps/six.py`,
/// `node_modules/is-number`), unless the function has its own entry of that name (its own
/// install wins). The daemons search the function's install folder already, so a pack is
/// installed once and imported by each function as its own. Returns whether a link was made.
fn link_pack(pack_dir: &Path, fn_dir: &Path, installer: Installer) -> std::io::Result<bool> {
    let from = pack_dir.join(installer.out_dir());
    let Ok(entries) = std::fs::read_dir(&from) else {
        return Ok(false);
    };
    let into = fn_dir.join(installer.out_dir());
    let mut made = false;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let skip = name
            .to_str()
            .is_none_or(|n| n.starts_with('.') || n == "__pycache__" || n == "bin");
        let link = into.join(&name);
        if skip || link.symlink_metadata().is_ok() {
            continue;
        }
        std::fs::create_dir_all(&into)?;
        std::os::unix::fs::symlink(entry.path(), &link)?;
        made = true;
    }
    if made {
        // The python daemon re-imports a function whose stamp changed: touch it (same text).
        let stamp = into.join(STAMP_FILE);
        let text = std::fs::read_to_string(&stamp).unwrap_or_else(|_| "fastfn-deps-v1 packs\n".into());
        std::fs::write(stamp, text)?;
    }
    Ok(made)
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
        let concurrency = options.toggles.concurrency.unwrap_or(options.concurrency);
        Arc::new_cyclic(|this| Deps {
            this: this.clone(),
            programs: [python, npm, composer],
            events,
            options,
            slots: Arc::new(Semaphore::new(concurrency.max(1))),
            units: Mutex::new(HashMap::new()),
            not_ready: ArcSwap::from_pointee(HashMap::new()),
            changed: tokio::sync::watch::channel(0).0,
            uses: Mutex::new(HashMap::new()),
            sabotaged: Mutex::new(std::collections::HashSet::new()),
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
        // Sets, not a scan of `touched` per target: a checkout can touch thousands of paths.
        let paths: Option<std::collections::HashSet<&str>> = touched.map(|t| t.iter().map(String::as_str).collect());
        let parents: Option<std::collections::HashSet<&str>> = touched.map(|t| {
            t.iter()
                .map(|p| p.rsplit_once('/').map_or("", |(dir, _)| dir))
                .collect()
        });
        let is_touched = |folder: &str| {
            let (Some(paths), Some(parents)) = (&paths, &parents) else {
                return true;
            };
            // A file in the folder, the folder itself, or a folder above it changed.
            if parents.contains(folder) {
                return true;
            }
            let mut at = folder;
            loop {
                if paths.contains(at) {
                    return true;
                }
                match at.rsplit_once('/') {
                    Some((up, _)) => at = up,
                    None => return false,
                }
            }
        };
        let mut untouched = std::collections::HashSet::new();
        let mut wanted: BTreeMap<Key, Vec<PathBuf>> = BTreeMap::new();
        // A handler with several routes is read once (a set: a folder can hold thousands).
        let mut entries = std::collections::HashSet::new();
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
            if installer != Installer::Composer && entries.insert(t.entry.as_str()) {
                handlers.push(root.join(&t.entry));
            }
        }
        // Shared packs: read the `shared_deps` of every function folder read now; a pack folder
        // is read when a function names it or it was touched itself.
        let mut new_uses: HashMap<Key, Vec<PackRef>> = HashMap::new();
        for (folder, installer) in wanted.keys().filter(|(_, i)| *i != Installer::Composer) {
            let names = shared_deps(&root.join(folder));
            if names.is_empty() {
                continue;
            }
            let refs = names
                .into_iter()
                .map(|name| {
                    let rel = format!("{}/{name}", packs_dir(*installer));
                    if root.join(&rel).is_dir() {
                        PackRef::Found { name, folder: rel }
                    } else {
                        PackRef::Missing(format!("shared pack not found: {name} (looked in: {rel})"))
                    }
                })
                .collect();
            new_uses.insert((folder.clone(), *installer), refs);
        }
        let packs: Vec<Key> = {
            let mut uses = self.uses.lock().unwrap_or_else(|p| p.into_inner());
            uses.retain(|k, _| untouched.contains(k));
            uses.extend(new_uses);
            let mut packs: Vec<Key> = uses
                .iter()
                .flat_map(|((_, i), refs)| {
                    refs.iter().filter_map(move |r| match r {
                        PackRef::Found { folder, .. } => Some((folder.clone(), *i)),
                        PackRef::Missing(_) => None,
                    })
                })
                .collect();
            packs.sort();
            packs.dedup();
            packs
        };
        for key in &packs {
            if is_touched(&key.0) || touched.is_some_and(|t| t.iter().any(|p| p.starts_with(&key.0))) {
                wanted.entry(key.clone()).or_default();
            } else {
                untouched.insert(key.clone());
            }
        }
        // Each folder's handlers and manifests are read apart from the others: a large
        // project's start reads thousands of files, split over the cores.
        let wanted: Vec<(Key, Vec<PathBuf>)> = wanted.into_iter().collect();
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(wanted.len() / MIN_FOLDERS_PER_THREAD)
            .max(1);
        let read: Vec<(Key, PathBuf, Vec<PathBuf>, Found)> = if threads == 1 {
            wanted
                .into_iter()
                .filter_map(|(k, h)| self.read_folder(root, k, h))
                .collect()
        } else {
            let per = wanted.len().div_ceil(threads);
            let mut chunks: Vec<Vec<(Key, Vec<PathBuf>)>> = Vec::with_capacity(threads);
            let mut rest = wanted.into_iter().peekable();
            while rest.peek().is_some() {
                chunks.push(rest.by_ref().take(per).collect());
            }
            std::thread::scope(|scope| {
                let workers: Vec<_> = chunks
                    .into_iter()
                    .map(|chunk| {
                        scope.spawn(move || {
                            chunk
                                .into_iter()
                                .filter_map(|(k, h)| self.read_folder(root, k, h))
                                .collect::<Vec<_>>()
                        })
                    })
                    .collect();
                // In folder order, as the single-threaded loop gives them.
                workers
                    .into_iter()
                    .flat_map(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                    .collect()
            })
        };

        let toggles = self.options.toggles;
        let mut start = Vec::new();
        let mut unresolved = Vec::new();
        {
            let mut units = self.units.lock().unwrap_or_else(|p| p.into_inner());
            let live: std::collections::HashSet<&Key> = read.iter().map(|(k, ..)| k).chain(untouched.iter()).collect();
            // Folders gone (or without manifests now) are forgotten; a running install keeps
            // its unit until it ends.
            units.retain(|k, u| live.contains(k) || matches!(u.state, State::Installing { .. }));
            for (key, dir, handlers, found) in read {
                let (sig, stamped, inference) = match found {
                    Found::Unresolved(message, found) => {
                        let unit = units.entry(key.clone()).or_insert_with(|| Unit::new(dir.clone()));
                        unit.handlers = handlers;
                        let same = matches!(&unit.state, State::Unresolved { message: m } if *m == message);
                        if !same && !matches!(unit.state, State::Installing { .. }) {
                            unit.state = State::Unresolved {
                                message: message.clone(),
                            };
                            unresolved.push((key, dir, message, found));
                        }
                        continue;
                    }
                    Found::Manifest {
                        sig,
                        stamped,
                        inference,
                    } => (sig, stamped, inference),
                };
                let previous = units
                    .get(&key)
                    .map(|u| &u.state)
                    .filter(|s| !matches!(s, State::Unresolved { .. }));
                let step = decide(previous, sig, stamped);
                let unit = units.entry(key.clone()).or_insert_with(|| Unit::new(dir.clone()));
                if matches!(unit.state, State::Unresolved { .. }) {
                    unit.state = State::Ready { sig };
                }
                unit.handlers = handlers;
                if let Some(mut now) = inference {
                    // "generated" means FastFN wrote the manifest at some point, not just now.
                    now.generated |= unit.inference.as_ref().is_some_and(|i| i.generated);
                    unit.inference = Some(now);
                }
                match step {
                    Step::Keep => {}
                    Step::MarkReady => unit.state = State::Ready { sig },
                    Step::Install if toggles.preinstalls(key.1) || key.0.starts_with(".fastfn/packs/") => {
                        unit.state = State::Installing { sig };
                        start.push(key);
                    }
                    Step::Install => unit.state = State::Deferred { sig },
                }
            }
            self.publish(&units);
        }
        for (key, dir, message, found) in unresolved {
            write_state_file(&dir, key.1, Some(&found), Some(&message), "error");
            self.events.emit(EngineEvent::DepsFailed {
                runtime: key.1.runtime(),
                function: display_folder(&key.0),
                manifest: key.1.files().0.to_string(),
                code: "deps.unresolved_imports",
                ms: 0,
                output: message,
                package: None,
            });
        }
        for key in start {
            let deps = self.clone();
            tokio::spawn(async move { deps.run(key).await });
        }
        self.link_ready_packs(root, None);
    }

    /// Link every ready pack into the functions that name it, skipping functions whose own
    /// install is running (they are linked when it ends). `installed` is a unit whose install
    /// just succeeded and is not marked ready yet: it counts as ready, and only its links are
    /// made (a pack into its functions, or a function's packs into it). Blocking file-system
    /// work of a few directory reads; off the request path.
    fn link_ready_packs(&self, root: &Path, installed: Option<&Key>) {
        let mut work = Vec::new();
        {
            let units = self.units.lock().unwrap_or_else(|p| p.into_inner());
            let uses = self.uses.lock().unwrap_or_else(|p| p.into_inner());
            let is = |k: &Key| installed == Some(k);
            for (fn_key, refs) in uses.iter() {
                if installed.is_some_and(|k| !k.0.starts_with(".fastfn/packs/") && k != fn_key) {
                    continue;
                }
                let own_busy = !is(fn_key)
                    && units
                        .get(fn_key)
                        .is_some_and(|u| matches!(u.state, State::Installing { .. } | State::Deferred { .. }));
                for r in refs {
                    let PackRef::Found { folder, .. } = r else { continue };
                    let pack_key = (folder.clone(), fn_key.1);
                    if installed.is_some_and(|k| k.0.starts_with(".fastfn/packs/") && *k != pack_key) {
                        continue;
                    }
                    let ready = is(&pack_key)
                        || units
                            .get(&pack_key)
                            .is_none_or(|u| matches!(u.state, State::Ready { .. }));
                    if ready && !own_busy {
                        work.push((root.join(folder), root.join(&fn_key.0), fn_key.1));
                    }
                }
            }
        }
        for (pack_dir, fn_dir, installer) in work {
            if let Err(e) = link_pack(&pack_dir, &fn_dir, installer) {
                tracing::warn!("cannot link {} into {}: {e}", pack_dir.display(), fn_dir.display());
            }
        }
    }

    /// Every shared pack under `.fastfn/packs/<runtime>/`, with its install state and the
    /// functions that name it, for `GET /_fn/packs`.
    pub fn packs(&self, root: &Path) -> Vec<PackStatus> {
        let units = self.units.lock().unwrap_or_else(|p| p.into_inner());
        let uses = self.uses.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::new();
        for installer in [Installer::Pip, Installer::Npm, Installer::Composer] {
            let base = packs_dir(installer);
            let Ok(entries) = std::fs::read_dir(root.join(base)) else {
                continue;
            };
            let mut names: Vec<String> = entries
                .flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .filter_map(|e| e.file_name().to_str().map(str::to_string))
                .collect();
            names.sort();
            for name in names {
                let folder = format!("{base}/{name}");
                let (main, _) = installer.files();
                let state = match units.get(&(folder.clone(), installer)).map(|u| &u.state) {
                    Some(State::Ready { .. }) => "ready",
                    Some(State::Installing { .. } | State::Deferred { .. }) => "installing",
                    Some(State::Failed { .. } | State::Unresolved { .. }) => "failed",
                    None if root.join(&folder).join(main).is_file() => "unused",
                    None => "empty",
                };
                let error = match units.get(&(folder.clone(), installer)).map(|u| &u.state) {
                    Some(State::Failed { output, .. }) => Some(output.clone()),
                    _ => None,
                };
                let mut used_by: Vec<String> = uses
                    .iter()
                    .filter(|((_, i), refs)| {
                        *i == installer
                            && refs
                                .iter()
                                .any(|r| matches!(r, PackRef::Found { folder: f, .. } if *f == folder))
                    })
                    .map(|((f, _), _)| display_folder(f))
                    .collect();
                used_by.sort();
                out.push(PackStatus {
                    runtime: installer.runtime(),
                    name,
                    path: folder,
                    manifest: main,
                    state,
                    error,
                    used_by,
                });
            }
        }
        out
    }

    /// One folder of [`Deps::prepare_touched`]: its handlers read, imports inferred, its
    /// manifest and stamp read. `None` when it has nothing to install (or cannot be read).
    fn read_folder(
        &self,
        root: &Path,
        (folder, installer): Key,
        handlers: Vec<PathBuf>,
    ) -> Option<(Key, PathBuf, Vec<PathBuf>, Found)> {
        let dir = root.join(&folder);
        let sources = match read_handlers(installer, &handlers) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("cannot read the handlers of {}: {e}", dir.display());
                return None;
            }
        };
        // Inference first: it may write the manifest that is read next.
        let inference = match self.infer(root, &dir, installer, &handlers, &sources) {
            Ok(i) => i,
            Err((message, found)) => {
                return Some(((folder, installer), dir, handlers, Found::Unresolved(message, found)))
            }
        };
        if !self.options.toggles.installs(installer) {
            return None;
        }
        let manifest = match Manifest::read_with(&dir, installer, &sources) {
            Ok(Some(m)) => m,
            Ok(None) => return None,
            Err(e) => {
                tracing::warn!("cannot read the manifests of {}: {e}", dir.display());
                return None;
            }
        };
        let sig = manifest.signature(self.program(installer));
        let stamp = std::fs::read_to_string(dir.join(installer.out_dir()).join(STAMP_FILE)).unwrap_or_default();
        let found = Found::Manifest {
            sig,
            stamped: stamp == sig.stamp(),
            inference,
        };
        Some(((folder, installer), dir, handlers, found))
    }

    /// Inference for one folder (`FN_AUTO_INFER_*`): reads its handlers, adds the packages
    /// they import to the manifest when it does not name them (unless
    /// `FN_AUTO_INFER_WRITE_MANIFEST=0`). `Err` is the message of a strict failure and what
    /// was found. Blocking
    /// reads and writes of small files, off the request path.
    fn infer(
        &self,
        root: &Path,
        dir: &Path,
        installer: Installer,
        handlers: &[PathBuf],
        sources: &[Option<Vec<u8>>],
    ) -> Result<Option<Inference>, (String, Inference)> {
        let t = self.options.toggles;
        let enabled = match installer {
            Installer::Pip => t.infer_python && t.pip,
            Installer::Npm => t.infer_node,
            Installer::Composer => false,
        };
        if !enabled || handlers.is_empty() {
            return Ok(None);
        }
        let mut found = infer::Inferred::default();
        let mut inline = Vec::new();
        for (h, source) in handlers.iter().zip(sources) {
            let Some(Ok(source)) = source.as_deref().map(std::str::from_utf8) else {
                continue;
            };
            match installer {
                Installer::Pip => {
                    inline.extend(
                        inline_requirements(source)
                            .iter()
                            .filter_map(|r| infer::requirement_name(r)),
                    );
                    let stem = h.file_stem().and_then(|s| s.to_str()).unwrap_or("");
                    let local = |name: &str| dir.join(format!("{name}.py")).is_file() || dir.join(name).is_dir();
                    found.extend(infer::python_infer(source, stem, local));
                }
                _ => found.extend(infer::node_infer(source, &[])),
            }
        }
        // What the function's shared packs provide is not the function's to install.
        let provided = pack_provides(root, dir, installer);
        let provided_by_pack = |name: &str| match installer {
            Installer::Pip => provided.contains(&infer::requirement_name(name).unwrap_or_default()),
            _ => provided.iter().any(|p| p == name),
        };
        found.resolved.retain(|p| !provided_by_pack(p));
        found.unresolved.retain(|p| !provided_by_pack(p));
        let (main, _) = installer.files();
        let path = dir.join(main);
        let existing = std::fs::read_to_string(&path).ok();
        let list = found.unresolved.join(", ");
        let strict_failure = match installer {
            Installer::Pip => {
                let explicit = !inline.is_empty() || existing.as_deref().is_some_and(infer::has_requirements);
                (t.strict && !found.unresolved.is_empty() && !explicit).then(|| {
                    format!(
                        "python dependency inference failed: unresolved imports {list}. Add explicit requirements.txt entries or disable FN_AUTO_INFER_STRICT."
                    )
                })
            }
            _ => (t.strict && !found.unresolved.is_empty()).then(|| {
                format!(
                    "node dependency inference failed: unresolved imports {list}. Add explicit dependencies in package.json or disable FN_AUTO_INFER_STRICT."
                )
            }),
        };
        if let Some(message) = strict_failure {
            return Err((
                message,
                Inference {
                    found,
                    generated: false,
                },
            ));
        }
        // A package `#@requirements` names is not written again into `requirements.txt`.
        found
            .resolved
            .retain(|p| !inline.contains(&infer::requirement_name(p).unwrap_or_default()));
        let mut generated = false;
        if t.write_manifest && !found.resolved.is_empty() {
            let merged = match installer {
                Installer::Pip => Ok(infer::merge_requirements(existing.as_deref(), &found.resolved)),
                _ => {
                    let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("function");
                    infer::merge_package_json(existing.as_deref(), name, &found.resolved)
                }
            };
            match merged {
                Ok(Some(text)) => match std::fs::write(&path, text) {
                    Ok(()) => generated = existing.is_none(),
                    Err(e) => tracing::warn!("cannot write {}: {e}", path.display()),
                },
                Ok(None) => {}
                Err(e) => {
                    return Err((
                        e.to_string(),
                        Inference {
                            found,
                            generated: false,
                        },
                    ))
                }
            }
        }
        Ok(Some(Inference { found, generated }))
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

    /// A request for a function that is not ready: wait (at most `bound`) for its install to
    /// end, starting it if it was deferred to the first request. Holds no lock while waiting.
    pub async fn wait(&self, target: &Target, bound: Duration) -> Readiness {
        let mut changed = self.changed.subscribe();
        self.start_deferred(target);
        let deadline = tokio::time::Instant::now() + bound;
        loop {
            let r = self.readiness(target);
            if r != Readiness::Preparing {
                return r;
            }
            match tokio::time::timeout_at(deadline, changed.changed()).await {
                Ok(Ok(())) => {}
                // Timed out (or the sender is gone, which cannot happen while `self` lives).
                _ => return self.readiness(target),
            }
        }
    }

    /// `FN_PREINSTALL_*_DEPS_ON_START=0`: the first request of a deferred unit starts it.
    fn start_deferred(&self, target: &Target) {
        let Some(installer) = Installer::for_runtime(target.runtime) else {
            return;
        };
        let key = (function_folder(target).to_string(), installer);
        let mut units = self.units.lock().unwrap_or_else(|p| p.into_inner());
        let Some(unit) = units.get_mut(&key) else { return };
        let State::Deferred { sig } = unit.state else { return };
        unit.state = State::Installing { sig };
        self.publish(&units);
        drop(units);
        // `run` takes an `Arc` (the install outlives this request).
        if let Some(me) = self.this.upgrade() {
            tokio::spawn(async move { me.run(key).await });
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

    /// Whether the function folder `folder` (root-relative, as [`function_folder`] gives it)
    /// has an install of `installer` to make fail: the lab's "install fails" fault needs one.
    pub fn has_install(&self, folder: &str, installer: Installer) -> bool {
        let units = self.units.lock().unwrap_or_else(|p| p.into_inner());
        units
            .get(&(folder.to_string(), installer))
            .is_some_and(|u| !matches!(u.state, State::Unresolved { .. }))
    }

    fn is_sabotaged(&self, key: &Key) -> bool {
        self.sabotaged.lock().unwrap_or_else(|p| p.into_inner()).contains(key)
    }

    /// The lab's "install fails" fault, as the whole set of units it is on now. A unit that
    /// joins the set installs again at once, and fails as an install does (state `failed`, its
    /// output in health, [`EngineEvent::DepsFailed`], the function answering 503); a unit that
    /// leaves it and failed meanwhile waits for its next request to install again, as a
    /// deferred install does.
    pub fn sabotage(&self, now: std::collections::HashSet<(String, Installer)>) {
        let (added, removed): (Vec<Key>, Vec<Key>) = {
            let mut set = self.sabotaged.lock().unwrap_or_else(|p| p.into_inner());
            let added = now.difference(&set).cloned().collect();
            let removed = set.difference(&now).cloned().collect();
            *set = now;
            (added, removed)
        };
        if added.is_empty() && removed.is_empty() {
            return;
        }
        let mut start = Vec::new();
        {
            let mut units = self.units.lock().unwrap_or_else(|p| p.into_inner());
            for key in added {
                let Some(unit) = units.get_mut(&key) else { continue };
                let sig = match unit.state {
                    State::Ready { sig } | State::Deferred { sig } | State::Failed { sig, .. } => sig,
                    // A running install checks the set when it ends; inference failures
                    // install nothing.
                    State::Installing { .. } | State::Unresolved { .. } => continue,
                };
                unit.state = State::Installing { sig };
                start.push(key);
            }
            for key in removed {
                if let Some(unit) = units.get_mut(&key) {
                    if let State::Failed { sig, .. } = unit.state {
                        unit.state = State::Deferred { sig };
                    }
                }
            }
            self.publish(&units);
        }
        if let Some(me) = self.this.upgrade() {
            for key in start {
                let me = me.clone();
                tokio::spawn(async move { me.run(key).await });
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
                    State::Deferred { .. } => ("deferred", None),
                    State::Ready { .. } => ("ready", None),
                    State::Failed { output, .. } => ("failed", Some(output.clone())),
                    State::Unresolved { message } => ("unresolved", Some(message.clone())),
                };
                DepsStatus {
                    runtime: installer.runtime(),
                    function: display_folder(folder),
                    installer: *installer,
                    state,
                    package: matches!(u.state, State::Failed { .. })
                        .then(|| error.as_deref().and_then(failed_package))
                        .flatten(),
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
                State::Installing { .. } | State::Deferred { .. } => Readiness::Preparing,
                State::Failed { output, .. } => Readiness::Failed(output.clone()),
                State::Unresolved { message } => Readiness::Unresolved(message.clone()),
            };
            map.entry(folder.clone()).or_default()[installer.index()] = Some(r);
        }
        // A function is ready when its own install and each pack it names are.
        let uses = self.uses.lock().unwrap_or_else(|p| p.into_inner());
        for ((folder, installer), refs) in uses.iter() {
            let slot = &mut map.entry(folder.clone()).or_default()[installer.index()];
            if slot.is_some() {
                continue;
            }
            for r in refs {
                let pack = match r {
                    PackRef::Missing(message) => Some(Readiness::Unresolved(message.clone())),
                    PackRef::Found { name, folder } => match units.get(&(folder.clone(), *installer)).map(|u| &u.state)
                    {
                        None | Some(State::Ready { .. }) => None,
                        Some(State::Failed { output, .. }) => {
                            Some(Readiness::Failed(format!("shared pack {name}: {output}")))
                        }
                        Some(State::Unresolved { message }) => Some(Readiness::Unresolved(message.clone())),
                        Some(_) => Some(Readiness::Preparing),
                    },
                };
                if pack.is_some() {
                    *slot = pack;
                    break;
                }
            }
        }
        drop(uses);
        map.retain(|_, per| per.iter().any(Option::is_some));
        self.not_ready.store(Arc::new(map));
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
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
                if self.is_sabotaged(&key) {
                    Err(sabotaged_failure(&manifest))
                } else {
                    match self.install(&folder, &dir, &manifest).await {
                        // The fault was set while the installer ran: this install fails too.
                        Ok(()) if self.is_sabotaged(&key) => Err(sabotaged_failure(&manifest)),
                        other => other,
                    }
                }
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
                    if installer == Installer::Pip && !manifest.is_empty() {
                        self.write_python_lock(&dir).await;
                    }
                    let inference = self.with_unit(&key, |u| u.inference.clone()).flatten();
                    let state_dir = dir.clone();
                    let _ = tokio::task::spawn_blocking(move || {
                        write_state_file(&state_dir, installer, inference.as_ref(), None, "ok")
                    })
                    .await;
                    // Links first, so the function is complete when it turns ready: a pack
                    // links into the functions naming it, a function gets its packs again (a
                    // pip install starts from an empty `.deps`).
                    let root = dir.ancestors().nth(folder_depth(&folder)).map(Path::to_path_buf);
                    if let Some(root) = root {
                        let me = self.clone();
                        let key2 = key.clone();
                        let _ = tokio::task::spawn_blocking(move || me.link_ready_packs(&root, Some(&key2))).await;
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

    /// `requirements.lock.txt` beside `requirements.txt`: what pip put in `.deps`, pinned
    /// (`pip freeze --path .deps`, sorted), as FastFN writes it. Best effort.
    async fn write_python_lock(&self, dir: &Path) {
        let Ok(program) = which::which(self.program(Installer::Pip)) else {
            return;
        };
        let out = dir.join(Installer::Pip.out_dir());
        let freeze = tokio::process::Command::new(program)
            .args(["-m", "pip", "freeze", "--disable-pip-version-check", "--path"])
            .arg(&out)
            .current_dir(dir)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output();
        let Ok(Ok(output)) = tokio::time::timeout(Duration::from_secs(60), freeze).await else {
            return;
        };
        if !output.status.success() {
            return;
        }
        let mut lines: Vec<String> = String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect();
        lines.sort_by_key(|l| l.to_ascii_lowercase());
        lines.dedup();
        let text = if lines.is_empty() {
            String::new()
        } else {
            lines.join("\n") + "\n"
        };
        if let Err(e) = tokio::fs::write(dir.join(PY_LOCK_FILE), text).await {
            tracing::warn!("cannot write {PY_LOCK_FILE} in {}: {e}", dir.display());
        }
    }

    /// Run the installer for `manifest` in `dir`, streaming its output as
    /// [`EngineEvent::DepsProgress`] lines.
    async fn install(&self, folder: &str, dir: &Path, manifest: &Manifest) -> Result<(), (&'static str, String)> {
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
        let env = [
            ("PIP_NO_INPUT", "1"),
            ("PIP_DISABLE_PIP_VERSION_CHECK", "1"),
            ("PIP_ROOT_USER_ACTION", "ignore"),
            ("COMPOSER_NO_INTERACTION", "1"),
            ("npm_config_update_notifier", "false"),
        ];
        let mut child = crate::process::spawn(&crate::process::Spec {
            program: path.as_os_str(),
            args: manifest.args(&out),
            cwd: dir,
            env: env.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect(),
            env_remove: vec![],
            stdin_pipe: false,
        })
        .map_err(|e| ("deps.missing_installer", format!("cannot start {tool}: {e}")))?;
        let pid = child.id();
        let command = manifest.command_line();
        let progress = |line: &str| {
            self.events.emit(EngineEvent::DepsProgress {
                runtime: installer.runtime(),
                function: display_folder(folder),
                manager: installer,
                line: line.to_string(),
            })
        };
        let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
        let run = async {
            let (out, err) = tokio::join!(stream_lines(stdout, &progress), stream_lines(stderr, &progress));
            (child.wait().await, out, err)
        };
        match tokio::time::timeout(self.options.timeout, run).await {
            Ok((Ok(status), _, _)) if status.success() => Ok(()),
            Ok((Ok(status), out, err)) => Err((
                "deps.install_failed",
                failure_text(&format!("`{command}` failed ({status})"), &out, &err),
            )),
            Ok((Err(e), _, _)) => Err(("deps.install_failed", format!("`{command}` failed: {e}"))),
            Err(_) => {
                // The child itself was killed when its future was dropped; its helpers too.
                if let Some(pid) = pid {
                    crate::process::signal_group(pid, crate::process::Signal::SIGKILL);
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
        let found = self.with_unit(key, |u| {
            u.state = State::Failed {
                sig,
                output: output.clone(),
                retry: false,
            };
            (u.dir.clone(), u.inference.clone())
        });
        if let Some((dir, inference)) = found {
            write_state_file(&dir, key.1, inference.as_ref(), Some(&output), "error");
        }
        self.events.emit(EngineEvent::DepsFailed {
            runtime: key.1.runtime(),
            function: display_folder(&key.0),
            manifest: label.to_string(),
            code,
            ms,
            package: failed_package(&output),
            output,
        });
    }
}

/// The failure of an install the lab made fail: worded as the installer's own failure, with a
/// line saying why, so whoever reads health or the 503 knows it is the lab's doing.
fn sabotaged_failure(manifest: &Manifest) -> (&'static str, String) {
    let command = manifest.command_line();
    (
        "deps.install_failed",
        format!("`{command}` failed (fault injected by the lab: this install fails until the fault is cleared)"),
    )
}

/// How many folders `folder` (root-relative) is below the root.
fn folder_depth(folder: &str) -> usize {
    if folder.is_empty() {
        0
    } else {
        folder.split('/').count()
    }
}

fn display_folder(folder: &str) -> String {
    if folder.is_empty() {
        ".".into()
    } else {
        folder.to_string()
    }
}

/// Read `stream` line by line, reporting each line, and keep its last [`MAX_OUTPUT_BYTES`].
async fn stream_lines<R: tokio::io::AsyncRead + Unpin>(stream: Option<R>, report: &impl Fn(&str)) -> Vec<u8> {
    use tokio::io::AsyncBufReadExt;
    let mut kept: std::collections::VecDeque<u8> = std::collections::VecDeque::new();
    let Some(stream) = stream else { return Vec::new() };
    let mut reader = tokio::io::BufReader::new(stream);
    let mut line = Vec::new();
    // Lines split on `\n` and `\r` (progress bars redraw with `\r`); bytes, not UTF-8.
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        kept.extend(line.iter());
        let excess = kept.len().saturating_sub(MAX_OUTPUT_BYTES * 2);
        kept.drain(..excess);
        for part in String::from_utf8_lossy(&line).split(['\n', '\r']) {
            let part = part.trim_end();
            if !part.trim().is_empty() {
                report(part);
            }
        }
    }
    kept.into_iter().collect()
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
    #[test]
    fn failure_reason_is_the_telling_line() {
        let npm = "npm error code ENOTFOUND\nnpm error syscall getaddrinfo\nnpm error errno ENOTFOUND\n\
                   npm error network request to https://x.example/a.tgz failed, reason: getaddrinfo ENOTFOUND x.example\n\
                   npm error network This is a problem related to network connectivity.\nnpm error network\n\
                   npm error A complete log of this run can be found in: /root/.npm/_logs/x.log";
        assert_eq!(
            failure_reason(npm),
            "npm error network request to https://x.example/a.tgz failed, reason: getaddrinfo ENOTFOUND x.example"
        );
        let pip = "Collecting nope\nERROR: Could not find a version that satisfies the requirement nope (from versions: none)\n\
                   ERROR: No matching distribution found for nope";
        assert_eq!(
            failure_reason(pip),
            "ERROR: Could not find a version that satisfies the requirement nope (from versions: none)"
        );
        assert_eq!(
            failure_reason("Loading composer repositories\n  Problem 1\n\n"),
            "Problem 1"
        );
        assert_eq!(failure_reason(""), "");
    }

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
    /// As python it also answers the `-m pip freeze` run after an install (with nothing).
    fn script(dir: &Path, name: &str, body: &str) -> String {
        let p = dir.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n[ \"$3\" = freeze ] && exit 0\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p.display().to_string()
    }

    fn deps_with(python: &str, npm: &str, timeout: Duration) -> Arc<Deps> {
        let options = Options {
            timeout,
            concurrency: 2,
            ..Options::default()
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

    /// Many folders are read on several threads (see `MIN_FOLDERS_PER_THREAD`): each folder
    /// still gets its own manifest, in its own unit.
    #[tokio::test]
    async fn many_folders_each_get_their_own_unit() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("fns");
        let python = script(d.path(), "python", "echo \"failed: $*\" >&2; exit 3");
        let files: Vec<(String, String)> = (0..40)
            .map(|i| {
                let text = if i % 3 == 0 {
                    format!("#@requirements pkg-{i}\n")
                } else {
                    String::new()
                };
                (format!("f{i:02}/handler.py"), text)
            })
            .collect();
        let refs: Vec<(&str, &str)> = files.iter().map(|(p, t)| (p.as_str(), t.as_str())).collect();
        write(&root, &refs);
        let targets: Vec<Arc<Target>> = files.iter().map(|(p, _)| target(RuntimeKind::Python, p)).collect();
        let deps = deps_with(&python, "npm", Duration::from_secs(10));
        deps.prepare(&root, &targets);
        for (i, t) in targets.iter().enumerate() {
            if i % 3 == 0 {
                let Readiness::Failed(message) = settled(&deps, t, Duration::from_secs(20)).await else {
                    panic!("f{i:02} not failed")
                };
                assert!(message.contains(&format!("pkg-{i}")), "f{i:02}: {message}");
            } else {
                assert_eq!(deps.readiness(t), Readiness::Ready, "f{i:02}");
            }
        }
        assert_eq!(deps.status().len(), 14);
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
        // The installer's lines as they come (stdout and stderr), then the failure.
        let mut lines = Vec::new();
        loop {
            match events.recv().await.unwrap() {
                EngineEvent::DepsProgress {
                    function,
                    manager,
                    line,
                    ..
                } => {
                    assert_eq!((function.as_str(), manager), ("f", Installer::Pip));
                    lines.push(line);
                }
                EngineEvent::DepsFailed {
                    code, output, package, ..
                } => {
                    assert_eq!((code, output.as_str()), ("deps.install_failed", out.as_str()));
                    assert_eq!(package, None, "this output names no package");
                    break;
                }
                other => panic!("{other:?}"),
            }
        }
        lines.sort();
        assert_eq!(lines, ["ERROR: no such package", "collecting"]);
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

    #[test]
    fn failed_package_from_installer_output() {
        let pip = "Collecting x\nERROR: Could not find a version that satisfies the requirement nope-pkg==1.0 (from versions: none)\nERROR: No matching distribution found for nope-pkg==1.0\n";
        assert_eq!(failed_package(pip).as_deref(), Some("nope-pkg==1.0"));
        let npm = "npm error code E404\nnpm error 404 Not Found - GET https://registry.npmjs.org/nope-pkg - Not found\nnpm error 404\nnpm error 404  'nope-pkg@*' is not in this registry.\n";
        assert_eq!(failed_package(npm).as_deref(), Some("nope-pkg@*"));
        let composer =
            "  Problem 1\n    - Root composer.json requires acme/nope, it could not be found in any version\n";
        assert_eq!(failed_package(composer).as_deref(), Some("acme/nope"));
        assert_eq!(failed_package("`pip install` failed (exit status: 1)\nboom"), None);
    }

    #[test]
    fn iso8601_utc() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(iso8601(1_796_124_645), "2026-12-01T11:30:45Z");
    }

    #[test]
    fn toggles_read_as_fastfn_reads_them() {
        assert_eq!(Toggles::from_env(&|_| None), Toggles::default());
        let env = |k: &str| match k {
            "FN_AUTO_INFER_PY_DEPS" => Some("off".to_string()),
            "FN_AUTO_INFER_STRICT" => Some(" FALSE ".to_string()),
            "FN_PREINSTALL_PY_DEPS_ON_START" => Some("0".to_string()),
            "FN_AUTO_NODE_DEPS" => Some("no".to_string()),
            "FN_AUTO_REQUIREMENTS" => Some("yes".to_string()),
            "FN_PREINSTALL_NODE_DEPS_CONCURRENCY" => Some("3".to_string()),
            _ => None,
        };
        let t = Toggles::from_env(&env);
        assert!(!t.infer_python && !t.strict && !t.preinstall_python && !t.npm);
        assert!(t.pip && t.infer_node && t.write_manifest && t.preinstall_node && t.composer);
        assert_eq!(t.concurrency, Some(3));
    }

    /// A request for a function whose install runs waits for it (bounded), then is served.
    #[tokio::test]
    async fn a_request_waits_for_the_install_within_its_bound() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("fns");
        let python = script(d.path(), "python", "sleep 0.5; mkdir -p \"$5\"");
        write(&root, &[("f/requirements.txt", "x\n"), ("f/handler.py", "")]);
        let t = target(RuntimeKind::Python, "f/handler.py");
        let deps = deps_with(&python, "npm", Duration::from_secs(10));
        deps.prepare(&root, std::slice::from_ref(&t));
        // Too short a bound: still preparing when it ends.
        let started = std::time::Instant::now();
        assert_eq!(deps.wait(&t, Duration::from_millis(100)).await, Readiness::Preparing);
        assert!(started.elapsed() >= Duration::from_millis(100));
        // Long enough: woken by the install's end, not by the bound.
        let started = std::time::Instant::now();
        assert_eq!(deps.wait(&t, Duration::from_secs(10)).await, Readiness::Ready);
        assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    }

    /// `FN_PREINSTALL_PY_DEPS_ON_START=0`: nothing runs until the first request, which starts
    /// the install and waits for it.
    #[tokio::test]
    async fn without_preinstall_the_first_request_installs() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("fns");
        let count = d.path().join("count");
        let python = script(
            d.path(),
            "python",
            &format!("echo run >> {}; mkdir -p \"$5\"", count.display()),
        );
        write(&root, &[("f/requirements.txt", "x\n"), ("f/handler.py", "")]);
        let t = target(RuntimeKind::Python, "f/handler.py");
        let options = Options {
            toggles: Toggles {
                preinstall_python: false,
                ..Toggles::default()
            },
            ..Options::default()
        };
        let deps = Deps::with_options(python, "npm".into(), "composer".into(), EventBus::default(), options);
        deps.prepare(&root, std::slice::from_ref(&t));
        assert_eq!(deps.readiness(&t), Readiness::Preparing);
        assert_eq!(deps.status()[0].state, "deferred");
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!count.exists(), "not installed before a request");
        assert_eq!(deps.wait(&t, Duration::from_secs(10)).await, Readiness::Ready);
        assert_eq!(std::fs::read_to_string(&count).unwrap().lines().count(), 1);
    }

    /// Inference writes the manifest it needs, records what it did, and a strict failure names
    /// the import with FastFN's message until the handler changes.
    #[tokio::test]
    async fn inference_writes_requirements_or_fails_on_unresolved_imports() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("fns");
        let python = script(d.path(), "python", "mkdir -p \"$5\"");
        write(
            &root,
            &[
                ("inf/handler.py", "import os, json\nimport six\nimport helper\n"),
                ("inf/helper.py", "import attrs\n"),
                ("bad/handler.py", "import os\nimport PIL\n"),
                (
                    "node/handler.js",
                    "const n = require('is-number');\nconst fs = require('fs');\n",
                ),
            ],
        );
        let (inf, bad, node) = (
            target(RuntimeKind::Python, "inf/handler.py"),
            target(RuntimeKind::Python, "bad/handler.py"),
            target(RuntimeKind::Node, "node/handler.js"),
        );
        // npm is a stand-in too: the test checks what is written, not what npm does.
        let npm = script(d.path(), "npm", "mkdir -p node_modules");
        let deps = deps_with(&python, &npm, Duration::from_secs(10));
        let mut events = deps.events.subscribe();
        let all = [inf.clone(), bad.clone(), node.clone()];
        deps.prepare(&root, &all);
        let req = std::fs::read_to_string(root.join("inf/requirements.txt")).unwrap();
        assert!(
            req.ends_with("\nsix\n"),
            "only the handler's own imports, not its helper's: {req}"
        );
        let pkg: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(root.join("node/package.json")).unwrap()).unwrap();
        assert_eq!(pkg["dependencies"], serde_json::json!({"is-number": "*"}));
        let message = "python dependency inference failed: unresolved imports PIL. Add explicit requirements.txt entries or disable FN_AUTO_INFER_STRICT.";
        assert_eq!(deps.readiness(&bad), Readiness::Unresolved(message.into()));
        assert!(!root.join("bad/requirements.txt").exists());
        match events.recv().await.unwrap() {
            EngineEvent::DepsFailed { code, output, .. } => {
                assert_eq!((code, output.as_str()), ("deps.unresolved_imports", message))
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(settled(&deps, &inf, Duration::from_secs(10)).await, Readiness::Ready);
        assert_eq!(settled(&deps, &node, Duration::from_secs(10)).await, Readiness::Ready);
        let state: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(root.join("inf").join(STATE_FILE)).unwrap()).unwrap();
        assert_eq!(state["mode"], "inferred");
        assert_eq!(state["manifest_generated"], true);
        assert_eq!(state["resolved_packages"], serde_json::json!(["six"]));
        assert_eq!(state["last_install_status"], "ok");
        assert_eq!(state["lockfile_path"], PY_LOCK_FILE);
        let bad_state: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(root.join("bad").join(STATE_FILE)).unwrap()).unwrap();
        assert_eq!(
            (&bad_state["last_install_status"], &bad_state["last_error"]),
            (&serde_json::json!("error"), &serde_json::json!(message))
        );
        // What inference found is kept with the failure, as the original records it.
        assert_eq!(
            (&bad_state["mode"], &bad_state["unresolved_imports"]),
            (&serde_json::json!("inferred"), &serde_json::json!(["PIL"]))
        );
        // A reload that changed nothing writes nothing and keeps the failure.
        let before = std::fs::read_to_string(root.join("inf/requirements.txt")).unwrap();
        deps.prepare(&root, &all);
        assert_eq!(
            std::fs::read_to_string(root.join("inf/requirements.txt")).unwrap(),
            before
        );
        assert_eq!(deps.readiness(&bad), Readiness::Unresolved(message.into()));
        assert_eq!(deps.readiness(&inf), Readiness::Ready);
        // An explicit requirement lifts python's strict failure (as in FastFN).
        write(&root, &[("bad/requirements.txt", "pillow\n")]);
        deps.prepare(&root, &all);
        assert_eq!(settled(&deps, &bad, Duration::from_secs(10)).await, Readiness::Ready);
    }

    #[test]
    fn shared_deps_names_stay_inside_the_packs_folder() {
        let d = tempfile::tempdir().unwrap();
        let cfg =
            r#"{"shared_deps": ["common", " common ", "a/b", "../up", "/abs", "x/../y", "bad name", 3, "ok_1.2-[x]"]}"#;
        write(d.path(), &[("fn.config.json", cfg)]);
        assert_eq!(shared_deps(d.path()), ["common", "a/b", "ok_1.2-[x]"]);
        write(d.path(), &[("fn.config.json", "{\"shared_deps\": \"common\"}")]);
        assert!(shared_deps(d.path()).is_empty());
    }

    #[test]
    fn a_pack_is_linked_without_hiding_the_functions_own_packages() {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            &[
                ("pack/.deps/six.py", "pack"),
                ("pack/.deps/attr/__init__.py", "pack"),
                ("pack/.deps/.fastfn-signature", "x"),
                ("fn/.deps/attr/__init__.py", "own"),
            ],
        );
        let (pack, f) = (d.path().join("pack"), d.path().join("fn"));
        assert!(link_pack(&pack, &f, Installer::Pip).unwrap());
        assert_eq!(std::fs::read_to_string(f.join(".deps/six.py")).unwrap(), "pack");
        assert_eq!(
            std::fs::read_to_string(f.join(".deps/attr/__init__.py")).unwrap(),
            "own"
        );
        assert!(
            f.join(".deps").join(STAMP_FILE).is_file(),
            "stamp touched so the daemon re-imports"
        );
        assert!(!link_pack(&pack, &f, Installer::Pip).unwrap(), "idempotent");
        assert!(
            !link_pack(&pack, &d.path().join("other"), Installer::Npm).unwrap(),
            "nothing installed for npm"
        );
    }

    /// A function naming a pack is ready when the pack is, with the pack's packages linked
    /// into its install folder; one install serves every function naming it.
    #[tokio::test]
    async fn shared_packs_gate_readiness_and_are_linked() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("fns");
        let count = d.path().join("count");
        let python = script(
            d.path(),
            "python",
            &format!(
                "echo run >> {}; sleep 0.3; mkdir -p \"$5\"; touch \"$5/common_mod.py\"",
                count.display()
            ),
        );
        let uses = |pack: &str| format!("{{\"shared_deps\": [\"{pack}\"]}}");
        write(
            &root,
            &[
                (".fastfn/packs/python/common/requirements.txt", "common-mod\n"),
                ("a/fn.config.json", &uses("common")),
                ("a/handler.py", "import common_mod\n"),
                ("b/fn.config.json", &uses("common")),
                ("b/handler.py", "import common_mod\n"),
                ("m/fn.config.json", &uses("nope")),
                ("m/handler.py", ""),
            ],
        );
        let (a, b, m) = (
            target(RuntimeKind::Python, "a/handler.py"),
            target(RuntimeKind::Python, "b/handler.py"),
            target(RuntimeKind::Python, "m/handler.py"),
        );
        let deps = deps_with(&python, "npm", Duration::from_secs(10));
        deps.prepare(&root, &[a.clone(), b.clone(), m.clone()]);
        assert_eq!(deps.readiness(&a), Readiness::Preparing);
        assert_eq!(
            deps.readiness(&m),
            Readiness::Unresolved("shared pack not found: nope (looked in: .fastfn/packs/python/nope)".into())
        );
        assert_eq!(deps.wait(&a, Duration::from_secs(10)).await, Readiness::Ready);
        assert_eq!(deps.readiness(&b), Readiness::Ready);
        for f in ["a", "b"] {
            let link = root.join(f).join(".deps/common_mod.py");
            assert!(link.symlink_metadata().unwrap().file_type().is_symlink(), "{f}");
            assert!(
                !root.join(f).join("requirements.txt").exists(),
                "{f}: the pack provides it"
            );
        }
        assert_eq!(
            std::fs::read_to_string(&count).unwrap().lines().count(),
            1,
            "one install"
        );
        let packs = deps.packs(&root);
        assert_eq!(packs.len(), 1);
        assert_eq!(
            (packs[0].name.as_str(), packs[0].state, packs[0].used_by.clone()),
            ("common", "ready", vec!["a".to_string(), "b".to_string()])
        );
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
            ..Options::default()
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
