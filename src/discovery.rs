//! Discovery: the functions root on disk → candidate routes → [`RouteMap`] (contract §2).
//! Reads the filesystem but holds no state; the engine calls it at start and on every reload.
//!
//! Every read goes through a [`TreeCache`]: a full scan starts from an empty cache, and a hot
//! reload keeps the cache, patches only the paths a change touched ([`TreeCache::touch`]) and
//! walks the rest from memory. The walk is the same code either way, so a patched scan equals a
//! full one (a property test checks it against random add/remove/rename sequences).
//!
//! Invariants: directory reads are sorted, so the same tree always gives the same routes and
//! warnings; a folder whose `fn.config.json` (or `fn.routes.json`) is invalid publishes nothing
//! below it while the rest of the tree still publishes; routes of runtimes that are not enabled
//! are never offered.

use crate::config::function::{
    parse_fn_config, parse_routes_json, FnConfig, PolicyOverlay, FN_CONFIG_FILE, FN_ROUTES_FILE,
};
use crate::config::{defaults, ConfigError};
use crate::routing::{validate_pattern, Methods, Route, RouteMap, RouteSource, Target};
use crate::runtime::RuntimeKind;
use serde::Serialize;
use std::collections::HashMap;
use std::fs;
use std::path::Path;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct DiscoveryOptions {
    /// Enabled runtimes in `FN_RUNTIMES` order.
    pub runtimes: Vec<RuntimeKind>,
    /// Global force-url (`FN_FORCE_URL`, `--force-url`, `force-url` in fastfn.json).
    pub force_url: bool,
    /// `FN_ZERO_CONFIG_IGNORE_DIRS`.
    pub extra_ignore_dirs: Vec<String>,
    /// `FN_NAMESPACE_DEPTH` (1..5, default 3).
    pub namespace_depth: usize,
    /// `FN_DEFAULT_*`: limits for functions that set none.
    pub policy_defaults: crate::config::PolicyDefaults,
    /// Project settings that change nothing ([`Settings::warnings`]), listed first among the
    /// scan's warnings so that they reach every place discovery's do.
    ///
    /// [`Settings::warnings`]: crate::config::Settings::warnings
    pub settings_warnings: Vec<String>,
}

/// Root `fn.config.json` `assets` block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AssetsConfig {
    /// Relative to the root, validated safe.
    pub directory: String,
    pub spa: bool,
    pub run_worker_first: bool,
}

#[derive(Debug, Clone)]
pub struct Discovery {
    pub routes: RouteMap,
    pub assets: Option<AssetsConfig>,
    /// Non-fatal problems (ignored files, shadowed routes…), one readable line each.
    pub warnings: Vec<String>,
    /// Config errors; the folders they name published nothing.
    pub errors: Vec<ConfigError>,
    /// Files looked at, for reload reports.
    pub files_scanned: usize,
}

impl DiscoveryOptions {
    /// The options a project's settings give, for `runtimes` (the engine's order, or the
    /// runtimes a check found available).
    pub fn for_settings(settings: &crate::config::project::Settings, runtimes: &[RuntimeKind]) -> DiscoveryOptions {
        DiscoveryOptions {
            runtimes: runtimes.to_vec(),
            force_url: settings.force_url,
            extra_ignore_dirs: settings.ignore_dirs.clone(),
            namespace_depth: settings.namespace_depth,
            policy_defaults: settings.policy_defaults,
            settings_warnings: settings.warnings(),
        }
    }
}

impl Default for DiscoveryOptions {
    fn default() -> Self {
        DiscoveryOptions {
            runtimes: RuntimeKind::DEFAULT_ORDER.to_vec(),
            force_url: false,
            extra_ignore_dirs: Vec::new(),
            namespace_depth: defaults::NAMESPACE_DEPTH,
            policy_defaults: crate::config::PolicyDefaults::default(),
            settings_warnings: Vec::new(),
        }
    }
}

/// Folders never scanned (besides names starting with `.`).
const SKIPPED_DIRS: [&str; 7] = [
    "node_modules",
    "vendor",
    "__pycache__",
    "target",
    "src",
    ".deps",
    ".rust-build",
];

/// Canonical entry files, in the order a single-entry folder picks its runtime (go, lua,
/// node, php, python, rust) and, within a runtime, the order the original's code uses.
const ENTRY_FILES: [(RuntimeKind, &[&str]); 6] = [
    (RuntimeKind::Go, &["handler.go", "main.go"]),
    (RuntimeKind::Lua, &["handler.lua", "main.lua", "index.lua"]),
    (RuntimeKind::Node, &["handler.ts", "handler.js", "index.ts", "index.js"]),
    (RuntimeKind::Php, &["handler.php", "index.php"]),
    (RuntimeKind::Python, &["handler.py", "main.py"]),
    (RuntimeKind::Rust, &["handler.rs"]),
];

const FILE_METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// Normalise a static segment (contract §2.1): lower-case, runs of `_` → `-`, any other
/// character outside `[a-z0-9-]` → `-`, leading/trailing `-` trimmed. `None` when empty.
pub fn normalise_segment(raw: &str) -> Option<String> {
    let mut out = String::with_capacity(raw.len());
    let mut in_underscores = false;
    for c in raw.chars() {
        let c = c.to_ascii_lowercase();
        if c == '_' {
            if !in_underscores {
                out.push('-');
            }
            in_underscores = true;
            continue;
        }
        in_underscores = false;
        out.push(if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' {
            c
        } else {
            '-'
        });
    }
    let trimmed = out.trim_matches('-');
    (!trimmed.is_empty()).then(|| trimmed.to_string())
}

/// One URL piece taken from a folder name or a file-name token.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Static(String),
    Param(String),
    CatchAll(String),
    /// `[[...x]]`: the catch-all route and the route without it.
    OptionalCatchAll(String),
}

/// Parses `[id]`, `[...slug]`, `[[...slug]]` or a static name. `Ok(None)` for a static name
/// that normalises to nothing.
fn parse_token(raw: &str) -> Result<Option<Token>, String> {
    let param = |name: &str, make: fn(String) -> Token| {
        let name = name.to_ascii_lowercase();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            return Err(format!("`{raw}` is not a valid parameter name"));
        }
        Ok(Some(make(name)))
    };
    if let Some(name) = raw.strip_prefix("[[...").and_then(|r| r.strip_suffix("]]")) {
        param(name, Token::OptionalCatchAll)
    } else if let Some(name) = raw.strip_prefix("[...").and_then(|r| r.strip_suffix(']')) {
        param(name, Token::CatchAll)
    } else if let Some(name) = raw.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        param(name, Token::Param)
    } else {
        Ok(normalise_segment(raw).map(Token::Static))
    }
}

/// Splits a file stem on `.` outside brackets (`get.blog.[[...slug]]` → 3 tokens).
fn split_stem(stem: &str) -> Vec<&str> {
    let mut tokens = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, c) in stem.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            '.' if depth == 0 => {
                tokens.push(&stem[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    tokens.push(&stem[start..]);
    tokens
}

/// What a route file's name says.
#[derive(Debug, PartialEq, Eq)]
struct FileName {
    method: Option<Methods>,
    tokens: Vec<Token>,
    /// Method-prefixed, `index|handler|main`, or a bracket file: public even below a
    /// single-entry folder (contract §2.3).
    explicit: bool,
}

fn parse_file_name(stem: &str) -> Result<FileName, String> {
    let raw = split_stem(stem);
    let is_method = |t: &str| FILE_METHODS.iter().any(|m| m.eq_ignore_ascii_case(t));
    let mut rest = raw.as_slice();
    let mut method = None;
    if let Some((first, tail)) = rest.split_first() {
        if is_method(first) {
            if tail.first().is_some_and(|t| is_method(t)) {
                return Err(format!("two method tokens (`{first}.{}`); use one", tail[0]));
            }
            method = Methods::parse(first);
            rest = tail;
        }
    }
    let mut explicit = method.is_some();
    let mut tokens = Vec::new();
    for raw in rest {
        if ["index", "handler", "main"].iter().any(|t| t.eq_ignore_ascii_case(raw)) {
            explicit = true;
            continue;
        }
        if raw.starts_with('[') {
            explicit = true;
        }
        tokens.extend(parse_token(raw)?);
    }
    Ok(FileName {
        method,
        tokens,
        explicit,
    })
}

/// Turns URL tokens into patterns: one, or two for a trailing `[[...x]]`.
fn render(tokens: &[Token]) -> Result<Vec<String>, String> {
    let mut base = String::new();
    for (i, token) in tokens.iter().enumerate() {
        let last = i + 1 == tokens.len();
        match token {
            Token::Static(s) => base.push_str(&format!("/{s}")),
            Token::Param(p) => base.push_str(&format!("/:{p}")),
            Token::CatchAll(p) if last => base.push_str(&format!("/:{p}*")),
            Token::OptionalCatchAll(p) if last => {
                let without = if base.is_empty() { "/".to_string() } else { base.clone() };
                return Ok(vec![without, format!("{base}/:{p}*")]);
            }
            _ => return Err("a catch-all must be the last part of the route".to_string()),
        }
    }
    Ok(vec![if base.is_empty() { "/".to_string() } else { base }])
}

/// `//` collapses, a trailing `/` is removed.
fn clean_route(route: &str) -> String {
    let joined: Vec<&str> = route.split('/').filter(|s| !s.is_empty()).collect();
    format!("/{}", joined.join("/"))
}

fn is_reserved(pattern: &str) -> bool {
    ["/_fn", "/console"]
        .iter()
        .any(|p| pattern == *p || pattern.starts_with(&format!("{p}/")))
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// A nested `fn.config.json`'s `assets.directory` (relative to its folder) is that
/// sub-project's static folder: the child folder `dir` holding it is never scanned for
/// handlers, as in the original.
fn holds_assets(cfg: &FnConfig, dir: &str) -> bool {
    cfg.assets.as_ref().is_some_and(|a| {
        let assets = a.directory.trim_start_matches("./").trim_end_matches('/');
        assets == dir || assets.strip_prefix(dir).is_some_and(|rest| rest.starts_with('/'))
    })
}

fn is_version_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Sorted sub-folders and files of one folder (UTF-8 names, symlinks followed, editor noise
/// left out).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Listing {
    dirs: Vec<String>,
    files: Vec<String>,
}

/// Folders never listed: dependencies, build output, caches. The watcher ignores changes in
/// them (so a cached listing never goes stale because of them).
pub const UNWATCHED_DIRS: [&str; 9] = [
    "node_modules",
    "__pycache__",
    ".deps",
    ".rust-build",
    ".go-build",
    "target",
    ".git",
    ".fastfn",
    "vendor",
];

/// Files that never matter to routes and whose changes the watcher drops: editor swap and
/// backup files, Python byte-code. Left out of listings too, so that a cached listing the
/// watcher was not told about stays equal to a fresh read.
pub fn is_noise_file(name: &str) -> bool {
    name.ends_with('~') || name.ends_with(".swp") || name.ends_with(".swx") || name.ends_with(".pyc") || name == "4913"
}

/// `a//b/./c/` → `a/b/c`: one key per folder whatever way a path was written.
fn clean_rel(rel: &str) -> String {
    let parts: Vec<&str> = rel.split('/').filter(|s| !s.is_empty() && *s != ".").collect();
    parts.join("/")
}

fn insert_sorted(names: &mut Vec<String>, name: &str) {
    if let Err(at) = names.binary_search_by(|n| n.as_str().cmp(name)) {
        names.insert(at, name.to_string());
    }
}

/// What discovery read from disk: folder listings and config texts, by root-relative path.
/// Kept by the engine between reloads; a change is applied with [`TreeCache::touch`], and
/// anything not cached is read on demand. Errors are cached too, so a cached scan reports the
/// same warnings as the read that failed.
#[derive(Debug, Default, Clone)]
pub struct TreeCache {
    folders: HashMap<String, Result<Arc<Listing>, String>>,
    texts: HashMap<String, Result<Arc<str>, String>>,
    /// What the walk of each sub-tree produced (see `Scan::memoized`); dropped for a folder
    /// and all its ancestors when something in it changes.
    subtrees: HashMap<String, Arc<Subtree>>,
    /// The scan-wide inputs the memos were made with (options, root config's ignore list
    /// and assets folder); memos of other inputs are dropped.
    scan_inputs: String,
}

/// Inputs of one sub-tree walk besides the files in it.
#[derive(Debug, Clone, PartialEq)]
struct SubtreeInputs {
    at_root: bool,
    depth: usize,
    overlay: PolicyOverlay,
    mode: Mode,
}

/// What one sub-tree walk appended to the scan.
#[derive(Debug)]
struct Subtree {
    inputs: SubtreeInputs,
    candidates: Box<[Route]>,
    homes: Box<[(String, String)]>,
    warnings: Box<[String]>,
    errors: Box<[ConfigError]>,
    files_scanned: usize,
}

impl TreeCache {
    /// Forget everything (a manual reload, or a watcher that lost events).
    pub fn clear(&mut self) {
        self.folders.clear();
        self.texts.clear();
        self.subtrees.clear();
    }

    /// Folders currently cached (for reports and tests).
    pub fn cached_folders(&self) -> usize {
        self.folders.len()
    }

    /// Apply a change at `rel` (root-relative; created, modified, removed or renamed): drop
    /// what was read at or below it and patch its folder's listing with one `stat` instead of
    /// re-reading the folder (a folder of 10,000 files costs one syscall, not 10,000).
    pub fn touch(&mut self, root: &Path, rel: &str) {
        let rel = clean_rel(rel);
        if rel.is_empty() {
            return self.clear();
        }
        let below = format!("{rel}/");
        self.folders.retain(|k, _| !k.starts_with(&below));
        self.texts.retain(|k, _| !k.starts_with(&below));
        self.folders.remove(&rel);
        self.texts.remove(&rel);
        self.subtrees.retain(|k, _| !k.starts_with(&below));
        // The sub-trees that contain the change: the path itself and every folder above it.
        let mut at = rel.as_str();
        loop {
            self.subtrees.remove(at);
            match at.rsplit_once('/') {
                Some((parent, _)) => at = parent,
                None => break,
            }
        }
        let (parent, name) = rel.rsplit_once('/').unwrap_or(("", rel.as_str()));
        // An unread (or unreadable) parent is read in full when the walk needs it.
        if let Some(Ok(listing)) = self.folders.get_mut(parent) {
            let listing = Arc::make_mut(listing);
            listing.dirs.retain(|d| d != name);
            listing.files.retain(|f| f != name);
            if is_noise_file(name) {
                return;
            }
            match fs::metadata(root.join(&rel)) {
                Ok(m) if m.is_dir() && !UNWATCHED_DIRS.contains(&name) => insert_sorted(&mut listing.dirs, name),
                Ok(m) if m.is_file() => insert_sorted(&mut listing.files, name),
                _ => {}
            }
        }
    }

    fn listing(&mut self, root: &Path, rel: &str) -> Result<Arc<Listing>, String> {
        let rel = clean_rel(rel);
        if let Some(cached) = self.folders.get(&rel) {
            return cached.clone();
        }
        let read = read_listing(&root.join(&rel)).map(Arc::new).map_err(|e| e.to_string());
        self.folders.insert(rel, read.clone());
        read
    }

    /// Whether `rel` is a file (symlinks followed), answered from its folder's listing.
    fn is_file(&mut self, root: &Path, rel: &str) -> bool {
        let rel = clean_rel(rel);
        let (parent, name) = rel.rsplit_once('/').unwrap_or(("", rel.as_str()));
        !name.is_empty()
            && self
                .listing(root, parent)
                .is_ok_and(|l| l.files.binary_search_by(|f| f.as_str().cmp(name)).is_ok())
    }

    fn text(&mut self, root: &Path, rel: &str) -> Result<Arc<str>, String> {
        let rel = clean_rel(rel);
        if let Some(cached) = self.texts.get(&rel) {
            return cached.clone();
        }
        let read = fs::read_to_string(root.join(&rel))
            .map(Arc::from)
            .map_err(|e| e.to_string());
        self.texts.insert(rel, read.clone());
        read
    }
}

fn read_listing(dir: &Path) -> std::io::Result<Listing> {
    let mut listing = Listing::default();
    for entry in fs::read_dir(dir)?.flatten() {
        let Ok(name) = entry.file_name().into_string() else {
            continue; // Not UTF-8: cannot be a URL.
        };
        // The entry's type comes with the listing (`d_type`): no `stat` per file, which was a
        // third of a cold scan of 10,000 files. Symlinks (and file systems that do not report
        // a type) are followed with `metadata`, so linked folders and files count.
        let kind = match entry.file_type() {
            Ok(t) if !t.is_symlink() => Some((t.is_dir(), t.is_file())),
            _ => fs::metadata(entry.path()).ok().map(|m| (m.is_dir(), m.is_file())),
        };
        match kind {
            Some((true, _)) if !UNWATCHED_DIRS.contains(&name.as_str()) => listing.dirs.push(name),
            Some((_, true)) if !is_noise_file(&name) => listing.files.push(name),
            _ => {}
        }
    }
    listing.dirs.sort();
    listing.files.sort();
    Ok(listing)
}

/// How files of a folder become routes (contract §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Every runtime file is a route.
    Tree,
    /// In or below a single-entry folder: only explicit route files are routes.
    SingleEntry,
}

/// One walk of the tree; collects candidates, warnings and errors.
struct Scan<'a> {
    root: &'a Path,
    tree: &'a mut TreeCache,
    opts: &'a DiscoveryOptions,
    /// Folder names or root-relative paths never scanned.
    ignore: Vec<String>,
    assets_dir: Option<String>,
    candidates: Vec<Route>,
    /// `(folder URL, route it aliases)` from `home.route`.
    homes: Vec<(String, String)>,
    warnings: Vec<String>,
    errors: Vec<ConfigError>,
    files_scanned: usize,
    /// Told the runtime of each route candidate the first time one appears (bit per
    /// `RuntimeKind`), so a start can launch daemons while the rest of the tree is read.
    on_runtime: &'a dyn Fn(RuntimeKind),
    runtimes_seen: u64,
}

impl<'a> Scan<'a> {
    fn enabled(&self, runtime: RuntimeKind) -> bool {
        self.opts.runtimes.contains(&runtime)
    }

    fn list(&mut self, rel: &str) -> Arc<Listing> {
        match self.tree.listing(self.root, rel) {
            Ok(listing) => {
                self.files_scanned += listing.files.len();
                listing
            }
            Err(e) => {
                self.warnings
                    .push(format!("{}: cannot read folder: {e}", display_dir(rel)));
                Arc::default()
            }
        }
    }

    fn is_file(&mut self, rel: &str) -> bool {
        self.tree.is_file(self.root, rel)
    }

    /// Runs `walk` for the sub-tree at `rel`, or replays what it produced last time when
    /// nothing at or below `rel` was touched since and it is walked with the same inputs.
    /// Everything a walk produces is appended in order, so a replay is indistinguishable
    /// from a walk; a walk reads nothing outside its sub-tree.
    fn memoized(&mut self, rel: &str, inputs: SubtreeInputs, walk: impl FnOnce(&mut Self)) {
        if let Some(memo) = self.tree.subtrees.get(rel).filter(|m| m.inputs == inputs) {
            let memo = memo.clone();
            for c in memo.candidates.iter() {
                self.saw(c.target.runtime);
            }
            self.candidates.extend(memo.candidates.iter().cloned());
            self.homes.extend(memo.homes.iter().cloned());
            self.warnings.extend(memo.warnings.iter().cloned());
            self.errors.extend(memo.errors.iter().cloned());
            self.files_scanned += memo.files_scanned;
            return;
        }
        let start = (
            self.candidates.len(),
            self.homes.len(),
            self.warnings.len(),
            self.errors.len(),
            self.files_scanned,
        );
        walk(self);
        let memo = Subtree {
            inputs,
            candidates: self.candidates[start.0..].into(),
            homes: self.homes[start.1..].into(),
            warnings: self.warnings[start.2..].into(),
            errors: self.errors[start.3..].into(),
            files_scanned: self.files_scanned - start.4,
        };
        self.tree.subtrees.insert(rel.to_string(), Arc::new(memo));
    }

    fn skip_dir(&self, parent: &str, name: &str) -> bool {
        let rel = join(parent, name);
        name.starts_with('.')
            || SKIPPED_DIRS.contains(&name)
            || self.ignore.iter().any(|i| *i == name || *i == rel)
            || self.assets_dir.as_deref() == Some(rel.as_str())
    }

    /// `Err` when the folder has an invalid config: the error is recorded and the caller
    /// publishes nothing from that folder down.
    fn read_config(&mut self, rel: &str) -> Result<Option<FnConfig>, ()> {
        let path = self.root.join(rel).join(FN_CONFIG_FILE);
        if !self.is_file(&join(rel, FN_CONFIG_FILE)) {
            return Ok(None);
        }
        let parsed = self
            .tree
            .text(self.root, &join(rel, FN_CONFIG_FILE))
            .map_err(|e| ConfigError {
                code: "config.unreadable",
                file: path.clone(),
                field: None,
                message: format!("cannot read: {e}"),
            })
            .and_then(|text| parse_fn_config(&text, &path));
        if let Ok(cfg) = &parsed {
            let file = join(rel, FN_CONFIG_FILE);
            self.warnings
                .extend(cfg.warnings.iter().map(|w| format!("{file}: {w}")));
        }
        parsed.map(Some).map_err(|e| self.errors.push(e))
    }

    /// The entry file a single-entry folder runs: first in [`ENTRY_FILES`] order among
    /// enabled runtimes (or only `runtime` when given).
    fn choose_entry(&self, files: &[String], runtime: Option<RuntimeKind>) -> Option<(RuntimeKind, &'static str)> {
        ENTRY_FILES
            .iter()
            .filter(|(rt, _)| runtime.is_none_or(|r| r == *rt) && self.enabled(*rt))
            .find_map(|(rt, names)| names.iter().find(|n| files.iter().any(|f| f == *n)).map(|n| (*rt, *n)))
    }

    fn force_url(&self, overlay: &PolicyOverlay) -> bool {
        self.opts.force_url || overlay.force_url.unwrap_or(false)
    }

    /// Adds a candidate after the checks every route passes.
    fn offer(&mut self, origin: &str, route: Route) {
        let pattern = &route.pattern;
        let problem = if route.source == RouteSource::File && pattern == "/" {
            Some("`/` is never registered from a file (use `home.route` in the root fn.config.json)".to_string())
        } else if is_reserved(pattern) {
            Some(format!("`{pattern}` is reserved"))
        } else {
            validate_pattern(pattern).err()
        };
        match problem {
            Some(p) => self.warnings.push(format!("{origin}: ignored: {p}")),
            None => {
                self.saw(route.target.runtime);
                self.candidates.push(route)
            }
        }
    }

    fn saw(&mut self, runtime: RuntimeKind) {
        let bit = 1u64 << (runtime as u32 % 64);
        if self.runtimes_seen & bit == 0 {
            self.runtimes_seen |= bit;
            (self.on_runtime)(runtime);
        }
    }

    /// URL tokens of a folder's path (`orders/[id]` → `orders`, `:id`).
    fn folder_tokens(rel: &str) -> Result<Vec<Token>, String> {
        let mut tokens = Vec::new();
        for name in rel.split('/').filter(|s| !s.is_empty()) {
            tokens.extend(parse_token(name)?);
        }
        Ok(tokens)
    }

    fn folder(&mut self, rel: &str, depth: usize, cfg: Option<FnConfig>, parent: &PolicyOverlay, mode: Mode) {
        let listing = self.list(rel);
        let is_root = rel.is_empty();
        let cfg = cfg.unwrap_or_default();
        if !is_root && cfg.has_identity() {
            self.explicit_folder(rel, depth, &cfg, &listing, parent);
            return;
        }
        let overlay = parent.merge(&cfg.overlay);
        if let Some(home) = &cfg.home_route {
            match Self::folder_tokens(rel).and_then(|t| render(&t)) {
                Ok(urls) => self.homes.push((urls[0].clone(), clean_route(home))),
                Err(e) => self.warnings.push(format!("{}: {e}", display_dir(rel))),
            }
        }
        if listing.files.iter().any(|f| f == FN_ROUTES_FILE) {
            self.routes_json(rel, &overlay);
            // A folder with a routes file is a leaf; the root keeps scanning its folders.
            if !is_root {
                return;
            }
        }
        let mut mode = mode;
        let entry = if is_root {
            None
        } else {
            self.choose_entry(&listing.files, None)
        };
        if entry.is_some() {
            mode = Mode::SingleEntry;
        }
        for file in &listing.files {
            self.file_route(rel, file, &overlay, cfg.methods, mode, entry);
        }
        if depth >= defaults::DISCOVERY_DEPTH {
            return;
        }
        for dir in &listing.dirs {
            if self.skip_dir(rel, dir) || (!is_root && holds_assets(&cfg, dir)) {
                continue;
            }
            let child = join(rel, dir);
            let inputs = SubtreeInputs {
                at_root: is_root,
                depth: depth + 1,
                overlay: overlay.clone(),
                mode,
            };
            self.memoized(&child, inputs, |scan| {
                let Ok(child_cfg) = scan.read_config(&child) else {
                    return;
                };
                if is_root {
                    if let Some(runtime) = scan.runtime_group(&child) {
                        scan.grouped(&child, "", runtime, 1);
                        return;
                    }
                }
                scan.folder(&child, depth + 1, child_cfg, &overlay, mode);
            });
        }
    }

    /// A root folder named after an enabled runtime that holds no route file of its own.
    fn runtime_group(&mut self, dir: &str) -> Option<RuntimeKind> {
        let runtime = self.opts.runtimes.iter().copied().find(|r| r.name() == dir)?;
        let listing = self.tree.listing(self.root, dir).ok()?;
        let exposes_routes = listing.files.iter().any(|name| self.route_file_runtime(name).is_some());
        (!exposes_routes).then_some(runtime)
    }

    /// The runtime of a public route file: known extension, enabled, not private, not a test.
    fn route_file_runtime(&self, name: &str) -> Option<RuntimeKind> {
        let lower = name.to_ascii_lowercase();
        if name.starts_with('_') || lower.contains(".test.") || lower.contains(".spec.") {
            return None;
        }
        RuntimeKind::from_file_name(name).filter(|r| self.enabled(*r))
    }

    fn file_route(
        &mut self,
        dir: &str,
        file: &str,
        overlay: &PolicyOverlay,
        folder_methods: Option<Methods>,
        mode: Mode,
        entry: Option<(RuntimeKind, &str)>,
    ) {
        let Some(runtime) = self.route_file_runtime(file) else {
            return;
        };
        let rel_file = join(dir, file);
        let is_entry_name = ENTRY_FILES.iter().any(|(_, names)| names.contains(&file));
        if let Some((_, chosen)) = entry {
            if is_entry_name && file != chosen {
                self.warnings
                    .push(format!("{rel_file}: ignored: the folder's entry file is {chosen}"));
                return;
            }
        }
        let stem = file.rsplit_once('.').map_or(file, |(stem, _)| stem);
        let parsed = match parse_file_name(stem) {
            Ok(parsed) => parsed,
            Err(e) => {
                self.warnings.push(format!("{rel_file}: ignored: {e}"));
                return;
            }
        };
        if mode == Mode::SingleEntry && !parsed.explicit {
            return; // A private module of the single-entry folder.
        }
        let patterns = Self::folder_tokens(dir).and_then(|mut tokens| {
            tokens.extend(parsed.tokens);
            render(&tokens)
        });
        let patterns = match patterns {
            Ok(p) => p,
            Err(e) => {
                self.warnings.push(format!("{rel_file}: ignored: {e}"));
                return;
            }
        };
        if let Some(w) = overlay.sandbox_warning(runtime) {
            self.warnings.push(format!("{rel_file}: {w}"));
        }
        let target = Arc::new(Target {
            runtime,
            fn_name: rel_file.clone(),
            fn_source_dir: None,
            version: None,
            entry: rel_file.clone(),
            policy: overlay.resolve_with(runtime, &self.opts.policy_defaults),
            explicit: false,
        });
        let methods = parsed.method.or(folder_methods).unwrap_or(Methods::GET);
        for pattern in patterns {
            let route = Route {
                pattern,
                methods,
                target: target.clone(),
                source: RouteSource::File,
                force_url: self.force_url(overlay),
            };
            self.offer(&rel_file, route);
        }
    }

    fn routes_json(&mut self, dir: &str, overlay: &PolicyOverlay) {
        let path = self.root.join(dir).join(FN_ROUTES_FILE);
        let parsed = self
            .tree
            .text(self.root, &join(dir, FN_ROUTES_FILE))
            .map_err(|e| ConfigError {
                code: "config.unreadable",
                file: path.clone(),
                field: None,
                message: format!("cannot read: {e}"),
            })
            .and_then(|text| parse_routes_json(&text, &path));
        let entries = match parsed {
            Ok(entries) => entries,
            Err(e) => return self.errors.push(e),
        };
        let origin = join(dir, FN_ROUTES_FILE);
        for entry in entries {
            let rel_file = join(dir, &entry.file);
            let Some(runtime) = RuntimeKind::from_file_name(&entry.file) else {
                self.warnings.push(format!(
                    "{origin}: ignored `{}`: {} is not a runtime file",
                    entry.path, entry.file
                ));
                continue;
            };
            if !self.enabled(runtime) {
                continue;
            }
            if !self.is_file(&rel_file) {
                self.warnings
                    .push(format!("{origin}: ignored `{}`: {rel_file} does not exist", entry.path));
                continue;
            }
            if let Some(w) = overlay.sandbox_warning(runtime) {
                self.warnings.push(format!("{rel_file}: {w}"));
            }
            let target = Arc::new(Target {
                runtime,
                fn_name: rel_file.clone(),
                fn_source_dir: None,
                version: None,
                entry: rel_file,
                policy: overlay.resolve_with(runtime, &self.opts.policy_defaults),
                explicit: false,
            });
            let route = Route {
                pattern: clean_route(&entry.path),
                methods: entry.methods,
                target,
                source: RouteSource::RoutesJson,
                force_url: self.force_url(overlay),
            };
            self.offer(&origin, route);
        }
    }

    /// A zero-config folder whose `fn.config.json` has identity (contract §2.4).
    fn explicit_folder(&mut self, rel: &str, depth: usize, cfg: &FnConfig, listing: &Listing, parent: &PolicyOverlay) {
        let name = cfg.name.clone().unwrap_or_else(|| rel.to_string());
        let Some(versions) = self.function(rel, &name, cfg, cfg.runtime, listing) else {
            self.warnings.push(format!(
                "{}: fn.config.json declares a function but the folder has no entry file; nothing published",
                display_dir(rel)
            ));
            return;
        };
        if depth >= defaults::DISCOVERY_DEPTH {
            return;
        }
        for dir in &listing.dirs {
            if self.skip_dir(rel, dir) || versions.contains(dir) || holds_assets(cfg, dir) {
                continue;
            }
            let child = join(rel, dir);
            if let Ok(child_cfg) = self.read_config(&child) {
                self.folder(&child, depth + 1, child_cfg, parent, Mode::SingleEntry);
            }
        }
    }

    /// Under `<root>/<runtime>/`: folders with an entry file are functions named by their
    /// path; others are namespaces, searched to `namespace_depth`.
    fn grouped(&mut self, base: &str, sub: &str, runtime: RuntimeKind, depth: usize) {
        let dir = join(base, sub);
        let listing = self.list(&dir);
        for name in &listing.dirs {
            if self.skip_dir(&dir, name) {
                continue;
            }
            let child_sub = join(sub, name);
            let child = join(base, &child_sub);
            let Ok(cfg) = self.read_config(&child) else {
                continue;
            };
            let cfg = cfg.unwrap_or_default();
            let child_listing = self.list(&child);
            let fn_name = cfg.name.clone().unwrap_or_else(|| child_sub.clone());
            let runtime = cfg.runtime.unwrap_or(runtime);
            let found = self.function(&child, &fn_name, &cfg, Some(runtime), &child_listing);
            if found.is_some() {
                continue;
            }
            if !fn_name.contains('/') && self.enabled(runtime) && self.only_versions(&child, runtime, &child_listing) {
                self.versions(&child, &fn_name, &cfg, runtime, &child_listing, true);
                continue;
            }
            // A namespace folder: its method-prefixed files are file routes under their full
            // path (`node/multi-endpoints/get.alpha.js` → `/node/multi-endpoints/alpha`), as
            // in the original; its other files stay private modules.
            for file in &child_listing.files {
                self.file_route(&child, file, &cfg.overlay, cfg.methods, Mode::SingleEntry, None);
            }
            let depth_limit = self.opts.namespace_depth.clamp(1, 5);
            if depth < depth_limit {
                self.grouped(base, &child_sub, runtime, depth + 1);
            }
        }
    }

    /// The entry of a function folder: `entrypoint` if it exists, else the canonical entry.
    fn function_entry(
        &mut self,
        rel: &str,
        cfg: &FnConfig,
        runtime: Option<RuntimeKind>,
        files: &[String],
    ) -> Option<(RuntimeKind, String)> {
        match &cfg.entrypoint {
            Some(entry) => {
                let runtime = runtime.or_else(|| RuntimeKind::from_file_name(entry))?;
                self.is_file(&join(rel, entry)).then(|| (runtime, entry.clone()))
            }
            None => self
                .choose_entry(files, runtime)
                .map(|(rt, name)| (rt, name.to_string())),
        }
    }

    /// Registers an explicit function and its versions. `None` when the folder has no entry
    /// file; otherwise the names of the version folders.
    fn function(
        &mut self,
        rel: &str,
        name: &str,
        cfg: &FnConfig,
        runtime: Option<RuntimeKind>,
        listing: &Listing,
    ) -> Option<Vec<String>> {
        let (runtime, entry) = self.function_entry(rel, cfg, runtime, &listing.files)?;
        if !self.enabled(runtime) {
            return Some(Vec::new());
        }
        self.offer_function(rel, name, cfg, runtime, &join(rel, &entry), None);

        if name.contains('/') {
            return Some(Vec::new()); // Versions are for flat names only.
        }
        Some(self.versions(rel, name, cfg, runtime, listing, false))
    }

    /// A folder of `<root>/<runtime>/` with no entry whose function sub-folders (those with an
    /// entry) are all version labels (`v2`, `2`, `v1.1`), as the original tells a function
    /// with versions only from a namespace.
    fn only_versions(&mut self, rel: &str, runtime: RuntimeKind, listing: &Listing) -> bool {
        let mut seen = false;
        for dir in &listing.dirs {
            if dir.starts_with('.') || !is_version_name(dir) {
                continue;
            }
            let files = self.list(&join(rel, dir));
            if self.choose_entry(&files.files, Some(runtime)).is_none() {
                continue;
            }
            let label = dir.strip_prefix('v').unwrap_or(dir);
            if !label.starts_with(|c: char| c.is_ascii_digit()) {
                return false;
            }
            seen = true;
        }
        seen
    }

    /// Registers the version folders of function `name` (at `/<name>@<version>`); returns
    /// their names. `nested`: a function with versions only, whose versions also keep the
    /// folder URL `/<name>/<version>` (what a namespace would have given them).
    fn versions(
        &mut self,
        rel: &str,
        name: &str,
        cfg: &FnConfig,
        runtime: RuntimeKind,
        listing: &Listing,
        nested: bool,
    ) -> Vec<String> {
        let mut versions = Vec::new();
        for dir in &listing.dirs {
            if dir.starts_with('.') || !is_version_name(dir) {
                continue;
            }
            let version_dir = join(rel, dir);
            let Ok(version_cfg) = self.read_config(&version_dir) else {
                versions.push(dir.clone()); // Its error is recorded; it publishes nothing.
                continue;
            };
            let files = self.list(&version_dir);
            let Some((_, version_entry)) = self
                .choose_entry(&files.files, Some(runtime))
                .map(|(r, n)| (r, n.to_string()))
            else {
                continue;
            };
            // The version's own config overrides the function's, field by field.
            let mut merged = cfg.clone();
            if let Some(v) = version_cfg {
                merged.overlay = cfg.overlay.merge(&v.overlay);
                merged.methods = v.methods.or(cfg.methods);
            }
            let entry = join(&version_dir, &version_entry);
            self.offer_function(rel, name, &merged, runtime, &entry, Some((dir, nested)));
            versions.push(dir.clone());
        }
        versions
    }

    fn offer_function(
        &mut self,
        rel: &str,
        name: &str,
        cfg: &FnConfig,
        runtime: RuntimeKind,
        entry: &str,
        version: Option<(&str, bool)>,
    ) {
        // `(version, nested)`: nested versions also keep `/<name>/<version>` (see `versions`).
        let (version, nested) = match version {
            Some((v, nested)) => (Some(v), nested),
            None => (None, false),
        };
        let base = match version {
            Some(v) => format!("/{name}@{v}"),
            None => format!("/{name}"),
        };
        let mut patterns = if cfg.routes.is_empty() || version.is_some() {
            vec![base.clone(), format!("{base}/*")]
        } else {
            cfg.routes.iter().map(|r| clean_route(r)).collect()
        };
        if let (true, Some(v)) = (nested, version) {
            patterns.extend([format!("/{name}/{v}"), format!("/{name}/{v}/*")]);
        }
        if let Some(w) = cfg.overlay.sandbox_warning(runtime) {
            self.warnings.push(format!("{}: {w}", join(rel, FN_CONFIG_FILE)));
        }
        let target = Arc::new(Target {
            runtime,
            fn_name: name.to_string(),
            fn_source_dir: Some(rel.to_string()),
            version: version.map(str::to_string),
            entry: entry.to_string(),
            policy: cfg.overlay.resolve_with(runtime, &self.opts.policy_defaults),
            explicit: true,
        });
        let origin = join(rel, FN_CONFIG_FILE);
        for pattern in patterns {
            let route = Route {
                pattern,
                methods: cfg.methods.unwrap_or(Methods::GET),
                target: target.clone(),
                source: RouteSource::Config,
                force_url: self.force_url(&cfg.overlay),
            };
            self.offer(&origin, route);
        }
    }

    /// `home.route`: the folder URL answers like the route it names, unless it has a route.
    fn apply_homes(&mut self) {
        for (url, target) in std::mem::take(&mut self.homes) {
            if self.candidates.iter().any(|r| r.pattern == url) {
                self.warnings
                    .push(format!("home.route for `{url}` ignored: `{url}` already has a route"));
                continue;
            }
            // `home.route` may name the route absolutely or relative to the folder.
            let relative = clean_route(&format!("{url}{target}"));
            let exists = |p: &str| self.candidates.iter().any(|r| r.pattern == p);
            let target = if !exists(&target) && exists(&relative) {
                relative
            } else {
                target
            };
            let aliases: Vec<Route> = self
                .candidates
                .iter()
                .filter(|r| r.pattern == target)
                .map(|r| Route {
                    pattern: url.clone(),
                    ..r.clone()
                })
                .collect();
            if aliases.is_empty() {
                self.warnings
                    .push(format!("home.route for `{url}` ignored: no route `{target}`"));
            }
            self.candidates.extend(aliases);
        }
    }
}

fn display_dir(rel: &str) -> &str {
    if rel.is_empty() {
        "."
    } else {
        rel
    }
}

/// A full scan of `root`.
pub fn discover(root: &Path, opts: &DiscoveryOptions) -> Discovery {
    discover_with(root, opts, &mut TreeCache::default())
}

/// A scan that reads through `tree`: what it holds is trusted, what it lacks is read from disk
/// and kept. With a cache patched by [`TreeCache::touch`] for every changed path, the result
/// equals [`discover`].
pub fn discover_with(root: &Path, opts: &DiscoveryOptions, tree: &mut TreeCache) -> Discovery {
    discover_observed(root, opts, tree, &|_| {})
}

/// [`discover_with`], calling `on_runtime` the first time a route candidate of each runtime is
/// found (a candidate may still lose its URL to another; the final map decides what is needed).
pub fn discover_observed(
    root: &Path,
    opts: &DiscoveryOptions,
    tree: &mut TreeCache,
    on_runtime: &dyn Fn(RuntimeKind),
) -> Discovery {
    let mut scan = Scan {
        root,
        tree,
        opts,
        ignore: opts.extra_ignore_dirs.clone(),
        assets_dir: None,
        candidates: Vec::new(),
        homes: Vec::new(),
        warnings: opts.settings_warnings.clone(),
        errors: Vec::new(),
        files_scanned: 0,
        on_runtime,
        runtimes_seen: 0,
    };
    let mut assets = None;
    if let Ok(cfg) = scan.read_config("") {
        if let Some(cfg) = &cfg {
            scan.ignore.extend(cfg.ignore_dirs.iter().cloned());
            assets = cfg.assets.clone();
            scan.assets_dir = assets.as_ref().map(|a| a.directory.clone());
        }
        let inputs = format!("{opts:?} {:?} {:?}", scan.ignore, scan.assets_dir);
        if scan.tree.scan_inputs != inputs {
            scan.tree.subtrees.clear();
            scan.tree.scan_inputs = inputs;
        }
        scan.folder("", 0, cfg, &PolicyOverlay::default(), Mode::Tree);
        scan.apply_homes();
    }

    let candidates = std::mem::take(&mut scan.candidates);
    let routes = RouteMap::build(candidates, &opts.runtimes);
    for s in routes.shadowed() {
        scan.warnings.push(format!(
            "{}: {} ({}) is shadowed: {}",
            s.pattern, s.loser.fn_name, s.loser.runtime, s.reason
        ));
    }
    for pattern in routes.conflicts() {
        scan.warnings.push(format!(
            "{pattern}: answers 409, ambiguous function: {}",
            routes.conflict_names(pattern).join(", ")
        ));
    }
    Discovery {
        routes,
        assets,
        warnings: scan.warnings,
        errors: scan.errors,
        files_scanned: scan.files_scanned,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::Resolution;
    use proptest::prelude::*;
    use RuntimeKind::{Go, Node, Python};

    fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (path, content) in files {
            let path = dir.path().join(path);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, content).unwrap();
        }
        dir
    }

    fn opts(runtimes: &[RuntimeKind]) -> DiscoveryOptions {
        DiscoveryOptions {
            runtimes: runtimes.to_vec(),
            ..DiscoveryOptions::default()
        }
    }

    #[test]
    fn listings_follow_symlinks_to_folders_and_files() {
        let dir = tree(&[("real/a.py", "def handler(e): pass"), ("real/b.js", "x")]);
        let root = dir.path();
        std::os::unix::fs::symlink(root.join("real"), root.join("linked")).unwrap();
        std::os::unix::fs::symlink(root.join("real/b.js"), root.join("real/c.js")).unwrap();
        // A dangling link is neither.
        std::os::unix::fs::symlink(root.join("gone"), root.join("dangling")).unwrap();
        let top = read_listing(root).unwrap();
        assert_eq!(top.dirs, ["linked", "real"]);
        assert!(top.files.is_empty(), "{:?}", top.files);
        let real = read_listing(&root.join("real")).unwrap();
        assert_eq!(real.files, ["a.py", "b.js", "c.js"]);
    }

    #[test]
    fn the_observer_hears_each_runtime_once_as_its_first_candidate_is_found() {
        let dir = tree(&[
            ("a.py", "def handler(e): pass"),
            ("b.py", "def handler(e): pass"),
            ("c/d.js", "exports.handler = () => 1"),
            ("lib/helper.go", "package x"),
        ]);
        let heard = std::sync::Mutex::new(Vec::new());
        let mut cache = TreeCache::default();
        let on = |rt| heard.lock().unwrap().push(rt);
        discover_observed(dir.path(), &opts(&[Python, Node]), &mut cache, &on);
        let mut first = heard.lock().unwrap().clone();
        first.sort_by_key(|rt| *rt as u8);
        assert_eq!(first, {
            let mut v = vec![Python, Node];
            v.sort_by_key(|rt| *rt as u8);
            v
        });
        // A scan that replays memoised sub-trees tells the same.
        heard.lock().unwrap().clear();
        discover_observed(dir.path(), &opts(&[Python, Node]), &mut cache, &on);
        assert_eq!(heard.lock().unwrap().len(), 2);
    }

    /// `GET,POST /pattern -> fn_name`, sorted by pattern.
    fn lines(d: &Discovery) -> Vec<String> {
        d.routes
            .routes()
            .iter()
            .map(|r| {
                let methods: Vec<&str> = r.methods.names().collect();
                format!("{} {} -> {}", methods.join(","), r.pattern, r.target.fn_name)
            })
            .collect()
    }

    fn run(files: &[(&str, &str)], o: &DiscoveryOptions) -> Discovery {
        let dir = tree(files);
        discover(dir.path(), o)
    }

    fn routes(files: &[&str]) -> Vec<String> {
        let files: Vec<(&str, &str)> = files.iter().map(|f| (*f, "")).collect();
        lines(&run(&files, &DiscoveryOptions::default()))
    }

    #[test]
    fn file_name_rules() {
        let cases: &[(&[&str], &[&str])] = &[
            (
                &[
                    "users/index.js",
                    "users/[id].js",
                    "admin/post.users.[id].py",
                    "get.blog.[[...slug]].py",
                    "orders/[id]/delete.py",
                ],
                &[
                    "POST /admin/users/:id -> admin/post.users.[id].py",
                    "GET /blog -> get.blog.[[...slug]].py",
                    "GET /blog/:slug* -> get.blog.[[...slug]].py",
                    "DELETE /orders/:id -> orders/[id]/delete.py",
                    "GET /users -> users/index.js",
                    "GET /users/:id -> users/[id].js",
                ],
            ),
            (
                &["My_Folder/Hello World__x.js", "p/[userId].php", "Lua/PUT.Item.lua"],
                &[
                    "PUT /lua/item -> Lua/PUT.Item.lua",
                    "GET /my-folder/hello-world-x -> My_Folder/Hello World__x.js",
                    "GET /p/:userid -> p/[userId].php",
                ],
            ),
            (&["docs/[...path].js"], &["GET /docs/:path* -> docs/[...path].js"]),
            (
                &["a/get.main.js", "b/handler.main.js"],
                &["GET /a -> a/get.main.js", "GET /b -> b/handler.main.js"],
            ),
            (
                &[
                    "_private.js",
                    "x/_helper.py",
                    "users.test.js",
                    "x.spec.py",
                    "types.d.ts",
                    "readme.md",
                    "fastfn.json",
                ],
                &[],
            ),
            (&["a//b.js"], &["GET /a/b -> a/b.js"]),
        ];
        for (files, want) in cases {
            assert_eq!(routes(files), *want, "{files:?}");
        }
    }

    #[test]
    fn rejected_file_names_warn() {
        let d = run(
            &[
                ("get.post.items.js", ""),
                ("index.js", ""),
                ("console/x.js", ""),
                ("a/[...rest]/b.js", ""),
            ],
            &DiscoveryOptions::default(),
        );
        assert_eq!(lines(&d), Vec::<String>::new());
        assert_eq!(
            d.warnings,
            vec![
                "get.post.items.js: ignored: two method tokens (`get.post`); use one",
                "index.js: ignored: `/` is never registered from a file (use `home.route` in the root fn.config.json)",
                "a/[...rest]/b.js: ignored: a catch-all must be the last part of the route",
                "console/x.js: ignored: `/console/x` is reserved",
            ]
        );
    }

    /// A root `assets.directory` outside the root turns assets off with a warning; it must not
    /// invalidate the root config (which would drop every route).
    #[test]
    fn escaping_assets_directory_turns_assets_off_and_keeps_routes() {
        for dir in ["../outside", "/etc", "a/../../b"] {
            let cfg = format!(r#"{{"assets":{{"directory":"{dir}"}},"timeout_ms":1234}}"#);
            let d = run(
                &[("fn.config.json", &cfg), ("hello.py", ""), ("api/users.js", "")],
                &DiscoveryOptions::default(),
            );
            assert_eq!(
                lines(&d),
                vec!["GET /api/users -> api/users.js", "GET /hello -> hello.py"],
                "{dir}"
            );
            assert!(d.errors.is_empty(), "{dir}: {:?}", d.errors);
            assert_eq!(d.assets, None, "{dir}");
            assert!(
                d.warnings
                    .iter()
                    .any(|w| w.contains("assets.directory") && w.contains("assets are off")),
                "{dir}: {:?}",
                d.warnings
            );
            // The rest of the root config still applies.
            assert_eq!(d.routes.routes()[0].target.policy.timeout_ms, 1234, "{dir}");
        }
    }

    #[test]
    fn ignored_folders_depth_and_assets() {
        let d = run(
            &[
                (
                    "fn.config.json",
                    r#"{"zero_config":{"ignore_dirs":["skipme"]},"assets":{"directory":"public"}}"#,
                ),
                ("node_modules/x.js", ""),
                ("vendor/x.php", ""),
                ("src/x.js", ""),
                ("target/x.js", ""),
                ("__pycache__/x.py", ""),
                (".hidden/x.js", ""),
                ("skipme/x.js", ""),
                ("envskip/x.js", ""),
                ("public/app.js", ""),
                ("a/b/c/d/e/f/deep.js", ""),
                ("a/b/c/d/e/f/g/deeper.js", ""),
            ],
            &DiscoveryOptions {
                extra_ignore_dirs: vec!["envskip".into()],
                ..DiscoveryOptions::default()
            },
        );
        assert_eq!(lines(&d), vec!["GET /a/b/c/d/e/f/deep -> a/b/c/d/e/f/deep.js"]);
        assert_eq!(
            d.assets,
            Some(AssetsConfig {
                directory: "public".into(),
                spa: false,
                run_worker_first: false
            })
        );
    }

    #[test]
    fn single_entry_folders_publish_only_explicit_files() {
        let cases: &[(&[&str], &[&str])] = &[
            (
                &[
                    "svc/handler.py",
                    "svc/util.py",
                    "svc/get.health.py",
                    "svc/sub/helper.py",
                    "svc/sub/[id].py",
                    "svc/sub/index.py",
                ],
                &[
                    "GET /svc -> svc/handler.py",
                    "GET /svc/health -> svc/get.health.py",
                    "GET /svc/sub -> svc/sub/index.py",
                    "GET /svc/sub/:id -> svc/sub/[id].py",
                ],
            ),
            // Entry order within node, and node before python in the runtime choice.
            (
                &["m/index.js", "m/handler.js", "m/handler.ts"],
                &["GET /m -> m/handler.ts"],
            ),
            (&["m/handler.py", "m/index.js"], &["GET /m -> m/index.js"]),
            (&["m/main.py", "m/handler.py"], &["GET /m -> m/handler.py"]),
            // A disabled runtime's entry does not make the folder single-entry.
            (&["m/handler.go", "m/other.py"], &["GET /m/other -> m/other.py"]),
        ];
        for (files, want) in cases {
            assert_eq!(routes(files), *want, "{files:?}");
        }
    }

    #[test]
    fn explicit_functions_get_name_and_wildcard_and_versions() {
        let d = run(
            &[
                (
                    "hello/fn.config.json",
                    r#"{"runtime":"node","invoke":{"methods":["GET","POST"]}}"#,
                ),
                ("hello/handler.js", ""),
                ("hello/lib.js", ""),
                ("hello/v2/handler.js", ""),
                ("hello/v2/fn.config.json", r#"{"timeout_ms":99}"#),
                ("hello/extra/get.ping.js", ""),
                ("hello/extra/plain.js", ""),
                (
                    "named/fn.config.json",
                    r#"{"name":"greet","entrypoint":"app.py","invoke":{"routes":["/hi/:who","/hey/*"]}}"#,
                ),
                ("named/app.py", ""),
                ("ghost/fn.config.json", r#"{"name":"ghost"}"#),
                ("ghost/lib.js", ""),
            ],
            &DiscoveryOptions::default(),
        );
        assert_eq!(
            lines(&d),
            vec![
                "GET,POST /hello -> hello",
                "GET,POST /hello/* -> hello",
                "GET /hello/extra/ping -> hello/extra/get.ping.js",
                "GET,POST /hello@v2 -> hello",
                "GET,POST /hello@v2/* -> hello",
                "GET /hey/* -> greet",
                "GET /hi/:who -> greet",
            ]
        );
        let by_pattern = |p: &str| {
            d.routes
                .routes()
                .iter()
                .find(|r| r.pattern == p)
                .map(|r| r.target.clone())
                .unwrap()
        };
        let hello = by_pattern("/hello");
        assert_eq!(
            (hello.fn_source_dir.as_deref(), hello.entry.as_str(), hello.explicit),
            (Some("hello"), "hello/handler.js", true)
        );
        let v2 = by_pattern("/hello@v2");
        assert_eq!(
            (v2.version.as_deref(), v2.entry.as_str(), v2.policy.timeout_ms),
            (Some("v2"), "hello/v2/handler.js", 99)
        );
        assert_eq!(by_pattern("/hi/:who").entry, "named/app.py");
        assert_eq!(by_pattern("/hi/:who").runtime, Python);
        assert_eq!(
            d.warnings,
            vec!["ghost: fn.config.json declares a function but the folder has no entry file; nothing published"]
        );
        assert!(matches!(
            d.routes.resolve("DELETE", "/hello/x", None),
            Resolution::MethodNotAllowed { allow } if allow == "GET, POST"
        ));
    }

    #[test]
    fn runtime_grouped_layout() {
        let files = [
            ("python/api/v1/users/main.py", ""),
            ("python/api/v1/users/fn.config.json", r#"{"invoke":{"methods":"POST"}}"#),
            ("python/tools/handler.py", ""),
            ("python/tools/v1/handler.py", ""),
            ("python/a/b/c/d/handler.py", ""),
            ("node/hello.js", ""),
        ];
        let d = run(&files, &DiscoveryOptions::default());
        assert_eq!(
            lines(&d),
            vec![
                "POST /api/v1/users -> api/v1/users",
                "POST /api/v1/users/* -> api/v1/users",
                "GET /node/hello -> node/hello.js",
                "GET /tools -> tools",
                "GET /tools/* -> tools",
                "GET /tools@v1 -> tools",
                "GET /tools@v1/* -> tools",
            ]
        );
        let users = &d.routes.routes()[0].target;
        assert_eq!(
            (users.fn_source_dir.as_deref(), users.entry.as_str()),
            (Some("python/api/v1/users"), "python/api/v1/users/main.py")
        );
        let deeper = DiscoveryOptions {
            namespace_depth: 4,
            ..DiscoveryOptions::default()
        };
        assert!(lines(&run(&files, &deeper)).contains(&"GET /a/b/c/d -> a/b/c/d".to_string()));
        // Without python enabled, `python/` is a plain folder with nothing to publish.
        assert_eq!(
            lines(&run(&files, &opts(&[Node]))),
            vec!["GET /node/hello -> node/hello.js"]
        );
    }

    #[test]
    fn version_only_folders_are_versions_of_a_function() {
        let files = [
            ("node/hello/v2/handler.js", ""),
            ("node/hello/v10/handler.js", ""),
            ("node/hello/notes/readme.txt", ""),
            ("python/hello/handler.py", ""),
            // A namespace: one of its function folders is not a version label.
            ("node/api/v1/handler.js", ""),
            ("node/api/users/handler.js", ""),
            // Version labels start with a digit (after an optional `v`).
            ("node/tools/vx/handler.js", ""),
        ];
        let d = run(&files, &DiscoveryOptions::default());
        assert_eq!(
            lines(&d),
            vec![
                "GET /api/users -> api/users",
                "GET /api/users/* -> api/users",
                "GET /api/v1 -> api/v1",
                "GET /api/v1/* -> api/v1",
                "GET /hello -> hello",
                "GET /hello/* -> hello",
                "GET /hello/v10 -> hello",
                "GET /hello/v10/* -> hello",
                "GET /hello/v2 -> hello",
                "GET /hello/v2/* -> hello",
                "GET /hello@v10 -> hello",
                "GET /hello@v10/* -> hello",
                "GET /hello@v2 -> hello",
                "GET /hello@v2/* -> hello",
                "GET /tools/vx -> tools/vx",
                "GET /tools/vx/* -> tools/vx",
            ]
        );
        let v2 = d.routes.routes().iter().find(|r| r.pattern == "/hello@v2").unwrap();
        assert_eq!(
            (
                v2.target.runtime,
                v2.target.version.as_deref(),
                v2.target.entry.as_str()
            ),
            (Node, Some("v2"), "node/hello/v2/handler.js")
        );
    }

    #[test]
    fn namespace_route_files_and_nested_assets() {
        let files = [
            ("node/multi-endpoints/get.alpha.js", ""),
            ("node/multi-endpoints/post.beta.js", ""),
            ("node/multi-endpoints/helper.js", ""),
            ("node/users/index.js", ""),
            ("shop/fn.config.json", r#"{"assets":{"directory":"public"}}"#),
            ("shop/cart.js", ""),
            ("shop/public/app.js", ""),
            (
                "site/fn.config.json",
                r#"{"name":"site","runtime":"node","assets":{"directory":"./www/dist"}}"#,
            ),
            ("site/handler.js", ""),
            ("site/www/dist/get.app.js", ""),
            ("site/admin/get.panel.js", ""),
        ];
        let d = run(&files, &DiscoveryOptions::default());
        assert_eq!(
            lines(&d),
            vec![
                "GET /node/multi-endpoints/alpha -> node/multi-endpoints/get.alpha.js",
                "POST /node/multi-endpoints/beta -> node/multi-endpoints/post.beta.js",
                "GET /shop/cart -> shop/cart.js",
                "GET /site -> site",
                "GET /site/* -> site",
                "GET /site/admin/panel -> site/admin/get.panel.js",
                "GET /users -> users",
                "GET /users/* -> users",
            ]
        );
    }

    #[test]
    fn routes_json_and_home_route() {
        let d = run(
            &[
                (
                    "legacy/fn.routes.json",
                    r#"{"routes":{"GET,POST /old":"impl.js","/x/":"y.py","/gone":"missing.js"}}"#,
                ),
                ("legacy/impl.js", ""),
                ("legacy/y.py", ""),
                ("legacy/other.js", ""),
                ("docs/fn.config.json", r#"{"home":{"route":"/docs/intro"}}"#),
                ("docs/intro.js", ""),
                ("guide/fn.config.json", r#"{"home":{"route":"start"}}"#),
                ("guide/start.js", ""),
                ("fn.config.json", r#"{"home":{"route":"/hello"}}"#),
                ("hello.py", ""),
            ],
            &DiscoveryOptions::default(),
        );
        assert_eq!(
            lines(&d),
            vec![
                "GET / -> hello.py",
                "GET /docs -> docs/intro.js",
                "GET /docs/intro -> docs/intro.js",
                "GET /guide -> guide/start.js",
                "GET /guide/start -> guide/start.js",
                "GET /hello -> hello.py",
                "GET,POST /old -> legacy/impl.js",
                "GET /x -> legacy/y.py",
            ]
        );
        assert_eq!(
            d.warnings,
            vec!["legacy/fn.routes.json: ignored `/gone`: legacy/missing.js does not exist"]
        );
        let old = &d.routes.routes()[6];
        assert_eq!(old.source, RouteSource::RoutesJson);
        assert!(matches!(
            d.routes.resolve("GET", "/", None),
            Resolution::Matched { route, .. } if route.target.fn_name == "hello.py"
        ));
    }

    #[test]
    fn cross_runtime_duplicates_follow_runtime_order() {
        let files = [("get.conflict.js", ""), ("get.conflict.py", "")];
        for (order, winner, loser) in [
            ([Node, Python], "get.conflict.js", "get.conflict.py"),
            ([Python, Node], "get.conflict.py", "get.conflict.js"),
        ] {
            let d = run(&files, &opts(&order));
            assert_eq!(lines(&d), vec![format!("GET /conflict -> {winner}")]);
            let shadowed = d.routes.shadowed();
            assert_eq!(shadowed.len(), 1);
            assert_eq!(shadowed[0].loser.fn_name, loser);
            assert_eq!(d.warnings.len(), 1);
            assert!(
                d.warnings[0].starts_with(&format!("/conflict: {loser} (")),
                "{:?}",
                d.warnings
            );
        }
    }

    #[test]
    fn same_runtime_duplicates_answer_409() {
        let d = run(
            &[("get.dup.js", ""), ("dup/index.js", "")],
            &DiscoveryOptions::default(),
        );
        assert!(matches!(d.routes.resolve("GET", "/dup", None), Resolution::Ambiguous));
        assert_eq!(d.routes.conflicts().iter().collect::<Vec<_>>(), vec!["/dup"]);
        assert_eq!(
            d.warnings,
            vec!["/dup: answers 409, ambiguous function: dup/index.js, get.dup.js"]
        );
    }

    #[test]
    fn force_url_lets_config_routes_take_over() {
        let files = |force: &str| {
            vec![
                ("users.js".to_string(), String::new()),
                (
                    "svc/fn.config.json".to_string(),
                    format!(r#"{{"name":"svc","invoke":{{"routes":["/users"]}}{force}}}"#),
                ),
                ("svc/handler.js".to_string(), String::new()),
            ]
        };
        for (force, global, want) in [
            ("", false, "users.js"),
            (r#","force-url":true"#, false, "svc"),
            ("", true, "svc"),
        ] {
            let f = files(force);
            let f: Vec<(&str, &str)> = f.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
            let o = DiscoveryOptions {
                force_url: global,
                ..DiscoveryOptions::default()
            };
            let d = run(&f, &o);
            assert_eq!(lines(&d), vec![format!("GET /users -> {want}")], "{force} {global}");
        }
    }

    #[test]
    fn invalid_config_publishes_nothing_below_it() {
        let d = run(
            &[
                ("bad/fn.config.json", "{\"timeout_ms\": }"),
                ("bad/x.js", ""),
                ("bad/sub/y.js", ""),
                ("pool/fn.config.json", r#"{"worker_pool":{"overflow_status":500}}"#),
                ("pool/z.js", ""),
                ("good.js", ""),
            ],
            &DiscoveryOptions::default(),
        );
        assert_eq!(lines(&d), vec!["GET /good -> good.js"]);
        let codes: Vec<(&str, bool)> = d
            .errors
            .iter()
            .map(|e| (e.code, e.file.ends_with("fn.config.json")))
            .collect();
        assert_eq!(
            codes,
            vec![("config.invalid_json", true), ("config.invalid_field", true)]
        );
        assert!(d.errors[1]
            .to_string()
            .ends_with("pool/fn.config.json (field `worker_pool.overflow_status`): expected 429 or 503, got 500"));
    }

    #[test]
    fn overlays_and_runtime_floors() {
        let d = run(
            &[
                ("fn.config.json", r#"{"timeout_ms":1000}"#),
                (
                    "api/fn.config.json",
                    r#"{"max_body_bytes":5,"invoke":{"methods":["POST"]}}"#,
                ),
                ("api/items.js", ""),
                ("api/sub/x.js", ""),
                ("api/sub/fn.config.json", r#"{"timeout_ms":3000}"#),
                ("compiled.go", ""),
            ],
            &opts(&[Node, Go]),
        );
        let found: Vec<(String, u64, u64)> = d
            .routes
            .routes()
            .iter()
            .map(|r| {
                let methods: Vec<&str> = r.methods.names().collect();
                (
                    format!("{} {}", methods.join(","), r.pattern),
                    r.target.policy.timeout_ms,
                    r.target.policy.max_body_bytes,
                )
            })
            .collect();
        assert_eq!(
            found,
            vec![
                ("POST /api/items".to_string(), 1000, 5),
                ("GET /api/sub/x".to_string(), 3000, 5),
                ("GET /compiled".to_string(), defaults::COMPILED_TIMEOUT_MS, 1_048_576),
            ]
        );
    }

    #[test]
    fn disabled_runtimes_are_not_registered() {
        let files = [("a.go", ""), ("b.rs", ""), ("c.lua", ""), ("d.php", "")];
        assert_eq!(
            lines(&run(&files, &DiscoveryOptions::default())),
            vec!["GET /c -> c.lua", "GET /d -> d.php"]
        );
        assert_eq!(lines(&run(&files, &opts(&[Go]))), vec!["GET /a -> a.go"]);
    }

    #[test]
    fn discovery_is_deterministic() {
        let files = [
            ("b.js", ""),
            ("a.py", ""),
            ("z/[id].js", ""),
            ("get.conflict.js", ""),
            ("get.conflict.py", ""),
        ];
        let dir = tree(&files);
        let first = discover(dir.path(), &DiscoveryOptions::default());
        let second = discover(dir.path(), &DiscoveryOptions::default());
        assert_eq!(lines(&first), lines(&second));
        assert_eq!(first.warnings, second.warnings);
        assert_eq!(first.files_scanned, 5);
    }

    proptest! {
        #[test]
        fn normalised_segments_are_clean_and_stable(raw in "\\PC{0,24}") {
            if let Some(seg) = normalise_segment(&raw) {
                prop_assert!(!seg.is_empty());
                prop_assert!(seg.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'));
                prop_assert!(!seg.starts_with('-') && !seg.ends_with('-'));
                prop_assert_eq!(normalise_segment(&seg), Some(seg.clone()));
            }
        }
    }

    /// Everything a scan says, for comparing a patched scan with a full one.
    fn fingerprint(d: &Discovery) -> String {
        format!(
            "{:#?}\n{:#?}\n{:?}\n{:?}\n{:?}\n{}",
            d.routes.routes(),
            d.warnings,
            d.errors.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
            d.assets,
            d.routes.conflicts(),
            d.files_scanned
        )
    }

    /// A change to the test tree, as the watcher would see it.
    #[derive(Debug, Clone)]
    enum Op {
        Write(usize, usize, usize),
        Remove(usize, usize),
        Rename(usize, usize, usize, usize),
        RemoveDir(usize),
        RenameDir(usize, usize),
    }

    const DIRS: [&str; 9] = [
        "",
        "a",
        "a/b",
        "[id]",
        "python",
        "python/fx",
        "fnx",
        "fnx/v2",
        "a/b/[[...s]]",
    ];
    const FILES: [&str; 13] = [
        "x.py",
        "y.js",
        "get.z.py",
        "handler.py",
        "index.js",
        "_p.py",
        "[k].php",
        "post.items.py",
        "main.lua",
        "notes.txt",
        "x.py~",
        "fn.config.json",
        "fn.routes.json",
    ];
    const CONTENTS: [&str; 8] = [
        "",
        "{}",
        r#"{"timeout_ms": 7, "invoke": {"methods": ["GET", "POST"]}}"#,
        r#"{"name": "fx"}"#,
        r#"{"runtime": "python", "invoke": {"routes": ["/fx-route"]}}"#,
        "{ broken",
        r#"{"home": {"route": "/x"}, "assets": {"directory": "../out"}, "routes": {"/rj": "x.py"}}"#,
        r#"{"routes": {"POST /rj/[n]": "y.js", "/gone": "nope.py"}, "force_url": true}"#,
    ];

    fn op() -> impl Strategy<Value = Op> {
        let (d, f, c) = (0..DIRS.len(), 0..FILES.len(), 0..CONTENTS.len());
        prop_oneof![
            4 => (d.clone(), f.clone(), c).prop_map(|(d, f, c)| Op::Write(d, f, c)),
            2 => (d.clone(), f.clone()).prop_map(|(d, f)| Op::Remove(d, f)),
            1 => (d.clone(), f.clone(), d.clone(), f).prop_map(|(a, b, c, e)| Op::Rename(a, b, c, e)),
            1 => d.clone().prop_map(Op::RemoveDir),
            1 => (d.clone(), d).prop_map(|(a, b)| Op::RenameDir(a, b)),
        ]
    }

    /// Apply `op` under `root`; returns the paths the watcher would report (created parents,
    /// both ends of a rename).
    fn apply(root: &Path, op: &Op) -> Vec<String> {
        let file = |d: usize, f: usize| join(DIRS[d], FILES[f]);
        let mkdirs = |rel: &str| -> Vec<String> {
            let mut created = Vec::new();
            let mut at = String::new();
            for part in rel.split('/').filter(|p| !p.is_empty()) {
                at = join(&at, part);
                if !root.join(&at).is_dir() {
                    let _ = fs::remove_file(root.join(&at));
                    fs::create_dir(root.join(&at)).unwrap();
                    created.push(at.clone());
                }
            }
            created
        };
        match *op {
            Op::Write(d, f, c) => {
                let mut touched = mkdirs(DIRS[d]);
                let path = file(d, f);
                if !root.join(&path).is_dir() {
                    fs::write(root.join(&path), CONTENTS[c]).unwrap();
                    touched.push(path);
                }
                touched
            }
            Op::Remove(d, f) => {
                let path = file(d, f);
                if fs::remove_file(root.join(&path)).is_ok() {
                    vec![path]
                } else {
                    vec![]
                }
            }
            Op::Rename(a, b, c, e) => {
                let (from, to) = (file(a, b), file(c, e));
                if !root.join(&from).is_file() || root.join(&to).is_dir() {
                    return vec![];
                }
                let mut touched = mkdirs(DIRS[c]);
                fs::rename(root.join(&from), root.join(&to)).unwrap();
                touched.extend([from, to]);
                touched
            }
            Op::RemoveDir(d) if !DIRS[d].is_empty() => {
                if fs::remove_dir_all(root.join(DIRS[d])).is_ok() {
                    vec![DIRS[d].to_string()]
                } else {
                    vec![]
                }
            }
            Op::RenameDir(a, b) if !DIRS[a].is_empty() && !DIRS[b].is_empty() => {
                let (from, to) = (DIRS[a], DIRS[b]);
                if !root.join(from).is_dir() || root.join(to).exists() || to.starts_with(&format!("{from}/")) {
                    return vec![];
                }
                let mut touched = mkdirs(to.rsplit_once('/').map_or("", |(p, _)| p));
                fs::rename(root.join(from), root.join(to)).unwrap();
                touched.extend([from.to_string(), to.to_string()]);
                touched
            }
            _ => vec![],
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// A scan through a cache patched with the watcher's paths equals a full scan, after
        /// every step of a random sequence of adds, removes and renames.
        #[test]
        fn patched_scan_equals_full_scan(ops in proptest::collection::vec(op(), 1..24)) {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path();
            let o = opts(&[Python, Node, RuntimeKind::Php, RuntimeKind::Lua]);
            let mut cache = TreeCache::default();
            discover_with(root, &o, &mut cache);
            for (i, op) in ops.iter().enumerate() {
                for rel in apply(root, op) {
                    cache.touch(root, &rel);
                }
                let patched = fingerprint(&discover_with(root, &o, &mut cache));
                let full = fingerprint(&discover(root, &o));
                prop_assert_eq!(patched, full, "after step {} ({:?}) of {:?}", i, op, ops);
            }
        }
    }

    #[test]
    fn a_touch_rereads_only_what_changed() {
        let dir = tree(&[("a/x.py", ""), ("b/y.py", "")]);
        let root = dir.path();
        let mut cache = TreeCache::default();
        let d = discover_with(root, &DiscoveryOptions::default(), &mut cache);
        assert_eq!(lines(&d), vec!["GET /a/x -> a/x.py", "GET /b/y -> b/y.py"]);
        let cached = cache.cached_folders();
        // Written behind the cache's back: not seen until touched.
        fs::write(root.join("b/z.py"), "").unwrap();
        assert_eq!(
            lines(&discover_with(root, &DiscoveryOptions::default(), &mut cache)).len(),
            2
        );
        cache.touch(root, "b/z.py");
        assert_eq!(
            cache.cached_folders(),
            cached,
            "the folder listing is patched, not dropped"
        );
        assert_eq!(
            lines(&discover_with(root, &DiscoveryOptions::default(), &mut cache)).len(),
            3
        );
        fs::remove_dir_all(root.join("a")).unwrap();
        cache.touch(root, "a");
        assert_eq!(
            lines(&discover_with(root, &DiscoveryOptions::default(), &mut cache)),
            vec!["GET /b/y -> b/y.py", "GET /b/z -> b/z.py"]
        );
    }

    #[test]
    fn normalise_segment_examples() {
        let cases = [
            ("Hello", Some("hello")),
            ("a__b_c", Some("a-b-c")),
            ("_x_", Some("x")),
            ("Héllo wörld", Some("h-llo-w-rld")),
            ("---", None),
            ("", None),
            ("v1.2", Some("v1-2")),
        ];
        for (raw, want) in cases {
            assert_eq!(normalise_segment(raw).as_deref(), want, "{raw}");
        }
    }
}
