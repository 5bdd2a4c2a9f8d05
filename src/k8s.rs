//! `fastfn export k8s`: the same project, unchanged, handed to Kubernetes (docs/deploy.md).
//!
//! Two halves: [`Plan::gather`] reads the project (settings, discovery, every `fn.config.json`
//! `schedule` and every `fn.env.json`) into plain data; [`render`] turns a plan into files
//! (pure, unit-tested); [`export`] writes them with a copy of the project and the `fastfn`
//! binary, so the output folder is a complete build context.
//!
//! Invariants kept here:
//! - Secret values never leave the project: keys marked `is_secret` keep only their name in the
//!   copied `fn.env.json` files (`{"is_secret": true}`, filled by the engine from the pod's
//!   environment) and appear, by name only, in the `Secret` template.
//! - A setting that cannot be carried to the cluster (a seconds-level schedule, a timezone
//!   Kubernetes cannot name, a schedule `context`) is refused with a warning printed by the CLI
//!   and listed in the export's README, never dropped in silence.
//! - Output is deterministic (sorted maps, no timestamps), so an export can be diffed and kept
//!   in git.

use crate::config::project::{Overrides, Settings};
use crate::discovery::{self, DiscoveryOptions};
use crate::routing::Route;
use crate::runtime::RuntimeKind;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Port the engine listens on inside the pod.
pub const POD_PORT: u16 = 8080;
/// UID the image runs as (no name needed; not root).
pub const POD_UID: u32 = 10001;
/// Seconds the `preStop` hook waits so endpoints stop sending before SIGTERM.
pub const PRESTOP_SECS: u64 = 5;
/// Default base image of the Containerfile (a build argument: `--build-arg BASE=…`).
pub const BASE_IMAGE: &str = "docker.io/library/debian:bookworm-slim";
/// Folder the project is copied to in the image.
pub const APP_DIR: &str = "/app";
/// Folders never copied into the image: installs are made again at build time, and the engine's
/// own state and version control have no place there.
const SKIPPED_DIRS: &[&str] = &[
    ".git",
    "node_modules",
    ".deps",
    "vendor",
    ".fastfn",
    "target",
    "__pycache__",
];

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{0}")]
    Settings(#[from] crate::config::ConfigError),
    #[error("the project has configuration errors: {0}")]
    Discovery(String),
    #[error("the functions folder {0} is outside the project folder {1}: the image copies the project folder only")]
    RootOutsideProject(PathBuf, PathBuf),
    #[error("the output folder {0} exists and is not empty (pass --force to replace the files the export writes)")]
    OutNotEmpty(PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}: invalid fn.env.json: {1}")]
    BadEnv(PathBuf, String),
    #[error("the `fastfn` binary was not found (beside this program or on PATH): the image needs it")]
    NoBinary,
    #[error("`out` must be an absolute folder path")]
    OutNotAbsolute,
}

impl ExportError {
    /// Stable code for the dashboard (STYLE 5).
    pub fn code(&self) -> &'static str {
        match self {
            ExportError::Settings(_) => "export.settings",
            ExportError::Discovery(_) => "export.config_errors",
            ExportError::RootOutsideProject(..) => "export.root_outside_project",
            ExportError::OutNotEmpty(_) => "export.out_not_empty",
            ExportError::Io { .. } => "export.io",
            ExportError::BadEnv(..) => "export.bad_env",
            ExportError::NoBinary => "export.no_binary",
            ExportError::OutNotAbsolute => "export.out_not_absolute",
        }
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ExportError + '_ {
    move |source| ExportError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What the user asked for.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Project folder (as `fastfn run DIR`).
    pub dir: Option<PathBuf>,
    /// `--config FILE`.
    pub config_file: Option<PathBuf>,
    pub out: PathBuf,
    /// Name of the app (Kubernetes object names); default: the project folder's name.
    pub name: Option<String>,
    /// Image reference in the manifests; default `<name>:latest`.
    pub image: Option<String>,
    /// Binary copied into the build context; default: the running executable.
    pub binary: Option<PathBuf>,
    /// Replace files in a non-empty output folder.
    pub force: bool,
}

/// One `fn.env.json`: its folder (root-relative, `/`-separated, "" for the root) and its
/// values split by `is_secret`.
#[derive(Debug, Clone, PartialEq)]
pub struct EnvFile {
    pub dir: String,
    /// Non-secret entries exactly as written (string or `{"value": …}`).
    pub public: Map<String, Value>,
    pub secret_keys: Vec<String>,
}

/// One schedule carried to a `CronJob`.
#[derive(Debug, Clone, PartialEq)]
pub struct CronCall {
    /// Folder of the function (root-relative), for the object name.
    pub function: String,
    pub cron: String,
    pub time_zone: Option<String>,
    pub method: String,
    /// Path and query on the Service.
    pub path: String,
    pub headers: BTreeMap<String, String>,
    pub body: Option<String>,
    pub timeout_secs: u64,
    /// Job retries (`schedule.retry`).
    pub retries: u32,
}

/// Per-function limits, for the README's capacity table.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionLimits {
    pub route: String,
    pub runtime: RuntimeKind,
    pub max_concurrency: i64,
    pub worker_pool: Option<(i64, i64)>,
}

/// Everything the files are made from.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub name: String,
    pub image: String,
    /// Runtimes the routes use, in the engine's order.
    pub runtimes: Vec<RuntimeKind>,
    /// Daemons per daemon runtime in use.
    pub daemons: BTreeMap<RuntimeKind, usize>,
    /// `fastfn.json` text ("{}" when the project has none).
    pub fastfn_json: String,
    /// Folder of the functions root inside the project ("" = the project folder).
    pub functions_dir: String,
    pub env_files: Vec<EnvFile>,
    pub schedules: Vec<CronCall>,
    pub functions: Vec<FunctionLimits>,
    /// Debian packages the handlers' installs need beyond the interpreters.
    pub needs_pip: bool,
    pub needs_npm: bool,
    pub needs_composer: bool,
    /// Seconds the engine lets calls in flight finish on SIGTERM (`FN_DRAIN_TIMEOUT_MS`): the
    /// engine's default, or the longest `timeout_ms` of a route when that is longer.
    pub drain_secs: u64,
    pub warnings: Vec<String>,
}

impl Plan {
    /// Every secret key name, sorted, once.
    pub fn secret_keys(&self) -> BTreeSet<&str> {
        self.env_files
            .iter()
            .flat_map(|e| e.secret_keys.iter().map(String::as_str))
            .collect()
    }

    /// Whether rust or go functions are exported (they compile on first call in the pod).
    fn compiles(&self) -> bool {
        self.runtimes
            .iter()
            .any(|r| matches!(r, RuntimeKind::Rust | RuntimeKind::Go))
    }
}

/// A Kubernetes object name (DNS-1123 label): lowercase alphanumerics and `-`, at most `max`.
pub fn dns_name(raw: &str, max: usize) -> String {
    let mut s = String::new();
    for c in raw.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() {
            s.push(c);
        } else if !s.ends_with('-') {
            s.push('-');
        }
    }
    let mut s: String = s.trim_matches('-').chars().take(max).collect();
    while s.ends_with('-') {
        s.pop();
    }
    if s.is_empty() || !s.starts_with(|c: char| c.is_ascii_lowercase()) {
        s = format!("fn-{s}").chars().take(max).collect();
        while s.ends_with('-') {
            s.pop();
        }
    }
    s
}

/// A ConfigMap key for the `fn.env.json` of `dir`.
fn env_key(dir: &str) -> String {
    if dir.is_empty() {
        return "env.root.json".into();
    }
    let slug: String = dir
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '.'
            }
        })
        .collect();
    format!("env.{slug}.json")
}

// ---------------------------------------------------------------------------------------------
// Schedules

/// FastFN's `every_seconds` as a 5-field cron, when Kubernetes (minute resolution) can say it
/// exactly.
pub fn every_to_cron(secs: u64) -> Result<String, String> {
    if secs == 0 || !secs.is_multiple_of(60) {
        return Err(format!(
            "every_seconds {secs} is not a whole number of minutes (CronJobs run at most once a minute)"
        ));
    }
    let mins = secs / 60;
    match mins {
        1 => Ok("* * * * *".into()),
        m if m < 60 && 60u64.is_multiple_of(m) => Ok(format!("*/{m} * * * *")),
        m if m.is_multiple_of(60) && m < 1440 && 24u64.is_multiple_of(m / 60) => {
            let h = m / 60;
            Ok(if h == 1 {
                "0 * * * *".into()
            } else {
                format!("0 */{h} * * *")
            })
        }
        1440 => Ok("0 0 * * *".into()),
        _ => Err(format!(
            "every_seconds {secs} does not divide an hour or a day evenly: write it as `cron`"
        )),
    }
}

/// FastFN's `cron` as Kubernetes reads it: macros and 5 fields as they are; 6 fields (seconds
/// first) only when the seconds field is `0`.
pub fn cron_to_k8s(expr: &str) -> Result<String, String> {
    let expr = expr.trim();
    if let Some(m) = expr.strip_prefix('@') {
        return match m {
            "yearly" | "annually" | "monthly" | "weekly" | "daily" | "midnight" | "hourly" => Ok(expr.to_string()),
            _ => Err(format!("cron macro `{expr}` has no Kubernetes equivalent")),
        };
    }
    let fields: Vec<&str> = expr.split_whitespace().collect();
    match fields.len() {
        5 => Ok(fields.join(" ")),
        6 if fields[0] == "0" => Ok(fields[1..].join(" ")),
        6 => Err(format!(
            "cron `{expr}` runs on seconds (`{}`): CronJobs run at most once a minute",
            fields[0]
        )),
        n => Err(format!("cron `{expr}` has {n} fields (expected 5 or 6)")),
    }
}

/// FastFN's `timezone` as an IANA name (`Ok(None)`: the controller's zone, UTC by default).
pub fn time_zone(tz: &str) -> Result<Option<String>, String> {
    let tz = tz.trim();
    match tz {
        "" => Ok(None),
        "UTC" | "utc" | "Z" | "z" => Ok(Some("Etc/UTC".into())),
        "local" => Err(
            "timezone `local` is the engine host's zone, unknown to a cluster: the CronJob uses UTC; \
             write an offset or UTC"
                .into(),
        ),
        _ => {
            let (sign, rest) = match tz.as_bytes()[0] {
                b'+' => (1i32, &tz[1..]),
                b'-' => (-1i32, &tz[1..]),
                _ => return Err(format!("timezone `{tz}` is not UTC, local or ±HH:MM")),
            };
            let (h, m) = rest.split_once(':').unwrap_or((rest, "00"));
            match (h.parse::<i32>(), m) {
                (Ok(0), "00") => Ok(Some("Etc/UTC".into())),
                // POSIX zones invert the sign: UTC+02:00 is `Etc/GMT-2`.
                (Ok(h), "00") if (1..=14).contains(&h) => {
                    Ok(Some(format!("Etc/GMT{}{h}", if sign > 0 { '-' } else { '+' })))
                }
                _ => Err(format!(
                    "timezone `{tz}` is not a whole-hour offset Kubernetes can name (Etc/GMT±H)"
                )),
            }
        }
    }
}

fn query_string(q: &Map<String, Value>) -> String {
    use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
    q.iter()
        .map(|(k, v)| {
            let v = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            format!(
                "{}={}",
                utf8_percent_encode(k, NON_ALPHANUMERIC),
                utf8_percent_encode(&v, NON_ALPHANUMERIC)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// One `schedule` block → a [`CronCall`], or why it cannot be one. `route` is the function's
/// static route; `timeout_ms` its policy's.
pub fn schedule_call(
    function: &str,
    sched: &Value,
    route: Option<&str>,
    timeout_ms: u64,
) -> Result<Option<CronCall>, String> {
    let Some(obj) = sched.as_object() else {
        return Err("`schedule` is not an object".into());
    };
    if obj.get("enabled").and_then(Value::as_bool) == Some(false) {
        return Ok(None);
    }
    let cron = match (obj.get("cron"), obj.get("every_seconds")) {
        (Some(Value::String(c)), _) => cron_to_k8s(c)?,
        (_, Some(v)) => every_to_cron(v.as_u64().ok_or("every_seconds is not a positive integer")?)?,
        _ => return Err("`schedule` has neither `cron` nor `every_seconds`".into()),
    };
    let time_zone = match obj.get("timezone").and_then(Value::as_str) {
        Some(tz) => time_zone(tz)?,
        None => None,
    };
    if obj
        .get("context")
        .is_some_and(|c| c.as_object().is_some_and(|m| !m.is_empty()))
    {
        return Err("`schedule.context` cannot travel over HTTP from a CronJob".into());
    }
    let Some(route) = route else {
        return Err("the function has no static route a CronJob could call".into());
    };
    let method = obj
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or("GET")
        .to_ascii_uppercase();
    let mut path = route.to_string();
    if let Some(q) = obj.get("query").and_then(Value::as_object).filter(|q| !q.is_empty()) {
        path.push('?');
        path.push_str(&query_string(q));
    }
    let headers = obj
        .get("headers")
        .and_then(Value::as_object)
        .map(|h| {
            h.iter()
                .map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_string)))
                .collect()
        })
        .unwrap_or_default();
    let body = match obj.get("body") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => Some(other.to_string()),
    };
    let retries = match obj.get("retry") {
        None | Some(Value::Bool(false)) | Some(Value::Null) => 0,
        Some(Value::Object(r)) if r.get("enabled").and_then(Value::as_bool) == Some(false) => 0,
        Some(Value::Object(r)) => r
            .get("max_attempts")
            .and_then(Value::as_u64)
            .map_or(2, |n| n.saturating_sub(1).min(10) as u32),
        Some(_) => 2,
    };
    Ok(Some(CronCall {
        function: function.to_string(),
        cron,
        time_zone,
        method,
        path,
        headers,
        body,
        timeout_secs: timeout_ms.div_ceil(1000).max(1) + 5,
        retries,
    }))
}

// ---------------------------------------------------------------------------------------------
// Gathering (I/O)

fn rel(path: &Path, root: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

/// Every file named `name` under `root`, skipping [`SKIPPED_DIRS`] and `skip` (the output).
fn find_files(root: &Path, name: &str, skip: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(root) else { return };
    let mut entries: Vec<_> = entries.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() {
            let n = e.file_name();
            if SKIPPED_DIRS.iter().any(|s| n == *s) || path == skip {
                continue;
            }
            find_files(&path, name, skip, out);
        } else if ft.is_file() && e.file_name() == name {
            out.push(path);
        }
    }
}

/// Split a `fn.env.json` into public entries and secret key names.
pub fn split_env(text: &str) -> Result<(Map<String, Value>, Vec<String>), String> {
    let v: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let Value::Object(map) = v else {
        return Err("expected an object".into());
    };
    let mut public = Map::new();
    let mut secret = Vec::new();
    for (k, v) in map {
        let is_secret = v.get("is_secret").and_then(Value::as_bool) == Some(true);
        if is_secret {
            secret.push(k);
        } else {
            public.insert(k, v);
        }
    }
    Ok((public, secret))
}

/// A `fn.env.json` as the image and the ConfigMap carry it: the public entries, and each
/// secret key that can be an environment variable without its value (`{"is_secret": true}`).
/// The engine fills such a key from the pod's environment (the Secret, by `envFrom`), so
/// `event.secrets` holds the same keys and values as locally (`secrets::parse_env`).
pub fn image_env(public: &Map<String, Value>, secret_keys: &[String]) -> Map<String, Value> {
    let mut out = public.clone();
    for k in secret_keys.iter().filter(|k| is_env_name(k)) {
        out.insert(k.clone(), json!({ "is_secret": true }));
    }
    out
}

/// `[A-Za-z_][A-Za-z0-9_]*`: a name a Secret key and an environment variable can both have.
pub fn is_env_name(k: &str) -> bool {
    k.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The first route of a function folder whose pattern has no parameter.
fn static_route<'a>(routes: &'a [Route], dir: &str) -> Option<&'a Route> {
    routes.iter().find(|r| {
        let folder = r
            .target
            .fn_source_dir
            .as_deref()
            .unwrap_or_else(|| crate::deps::function_folder(&r.target));
        (folder == dir || crate::deps::function_folder(&r.target) == dir)
            && !r.pattern.contains(':')
            && !r.pattern.contains('*')
    })
}

impl Plan {
    /// Read the project the way `fastfn run` would.
    pub fn gather(opts: &Options) -> Result<Plan, ExportError> {
        Plan::gather_at(opts).map(|(plan, _)| plan)
    }

    /// [`Plan::gather`], and the project folder (canonical).
    fn gather_at(opts: &Options) -> Result<(Plan, PathBuf), ExportError> {
        let settings = Settings::from_env(&Overrides {
            dir: opts.dir.clone(),
            config_file: opts.config_file.clone(),
            ..Default::default()
        })?;
        Plan::gather_with(&settings, opts)
    }

    /// [`Plan::gather_at`] with settings already resolved (a running engine's).
    fn gather_with(settings: &Settings, opts: &Options) -> Result<(Plan, PathBuf), ExportError> {
        let project = settings.project_dir.canonicalize().map_err(io(&settings.project_dir))?;
        let root = settings
            .functions_root
            .canonicalize()
            .map_err(io(&settings.functions_root))?;
        if !root.starts_with(&project) {
            return Err(ExportError::RootOutsideProject(root, project));
        }
        let d = discovery::discover(&root, &DiscoveryOptions::for_settings(settings, &settings.runtimes));
        if !d.errors.is_empty() {
            let all: Vec<String> = d.errors.iter().map(ToString::to_string).collect();
            return Err(ExportError::Discovery(all.join("; ")));
        }
        let routes = d.routes.routes();
        let used: BTreeSet<RuntimeKind> = routes.iter().map(|r| r.target.runtime).collect();
        let runtimes: Vec<RuntimeKind> = settings.runtimes.iter().copied().filter(|r| used.contains(r)).collect();
        let daemons = runtimes
            .iter()
            .filter(|r| r.uses_daemons())
            .map(|r| (*r, settings.daemon_count(*r)))
            .collect();
        let name = dns_name(
            &opts.name.clone().unwrap_or_else(|| {
                project
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "fastfn".into())
            }),
            40,
        );
        let image = opts.image.clone().unwrap_or_else(|| format!("{name}:latest"));
        let config_path = opts
            .config_file
            .clone()
            .map(|f| if f.is_absolute() { f } else { project.join(f) })
            .unwrap_or_else(|| project.join("fastfn.json"));
        let fastfn_json = match std::fs::read_to_string(&config_path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => "{}\n".into(),
            Err(e) => return Err(io(&config_path)(e)),
        };
        let mut warnings: Vec<String> = d.warnings.clone();
        if project.join("fastfn.toml").is_file() && !config_path.is_file() {
            warnings.push(
                "fastfn.toml is copied into the image but the ConfigMap carries fastfn.json only: \
                 convert it to fastfn.json to overlay it"
                    .into(),
            );
        }
        let out = opts.out.canonicalize().unwrap_or_else(|_| opts.out.clone());

        let mut env_paths = Vec::new();
        find_files(&root, "fn.env.json", &out, &mut env_paths);
        let mut env_files = Vec::new();
        for p in env_paths {
            let text = std::fs::read_to_string(&p).map_err(io(&p))?;
            let (public, secret_keys) = split_env(&text).map_err(|e| ExportError::BadEnv(p.clone(), e))?;
            let dir = rel(p.parent().unwrap_or(&root), &root);
            // The pod gets secrets as environment variables: a key that cannot be one is refused.
            let (secret_keys, bad): (Vec<String>, Vec<String>) = secret_keys.into_iter().partition(|k| is_env_name(k));
            for k in bad {
                warnings.push(format!(
                    "{}: secret key `{k}` is not an environment variable name: not in the Secret template",
                    rel(&p, &root)
                ));
            }
            env_files.push(EnvFile {
                dir,
                public,
                secret_keys,
            });
        }

        let mut cfg_paths = Vec::new();
        find_files(&root, "fn.config.json", &out, &mut cfg_paths);
        let mut schedules = Vec::new();
        for p in cfg_paths {
            let Ok(text) = std::fs::read_to_string(&p) else {
                continue;
            };
            let Ok(v) = serde_json::from_str::<Value>(&text) else {
                continue;
            };
            let Some(sched) = v.get("schedule") else { continue };
            let dir = rel(p.parent().unwrap_or(&root), &root);
            let route = static_route(routes, &dir);
            let timeout = route.map_or(settings.policy_defaults.timeout_ms, |r| r.target.policy.timeout_ms);
            let label = if dir.is_empty() { "/".to_string() } else { dir.clone() };
            match schedule_call(&dir, sched, route.map(|r| r.pattern.as_str()), timeout) {
                Ok(Some(c)) => schedules.push(c),
                Ok(None) => warnings.push(format!("{label}: schedule disabled (`enabled: false`): no CronJob")),
                Err(why) => warnings.push(format!("{label}: schedule not exported: {why}")),
            }
        }

        let mut functions: Vec<FunctionLimits> = routes
            .iter()
            .map(|r| FunctionLimits {
                route: r.pattern.clone(),
                runtime: r.target.runtime,
                max_concurrency: r.target.policy.max_concurrency,
                worker_pool: r.target.policy.worker_pool.enabled.then_some((
                    r.target.policy.worker_pool.max_workers,
                    r.target.policy.worker_pool.max_queue as i64,
                )),
            })
            .collect();
        functions.sort_by(|a, b| a.route.cmp(&b.route));

        let any_file = |names: &[&str]| {
            names.iter().any(|n| {
                let mut v = Vec::new();
                find_files(&root, n, &out, &mut v);
                !v.is_empty()
            })
        };
        let has = |rt| runtimes.contains(&rt);
        let drain_secs = drain_secs(routes.iter().map(|r| r.target.policy.timeout_ms));
        let plan = Plan {
            drain_secs,
            needs_pip: has(RuntimeKind::Python),
            needs_npm: has(RuntimeKind::Node),
            needs_composer: has(RuntimeKind::Php) && any_file(&["composer.json"]),
            name,
            image,
            runtimes,
            daemons,
            fastfn_json,
            functions_dir: rel(&root, &project),
            env_files,
            schedules,
            functions,
            warnings,
        };
        let mut plan = plan;
        if plan.compiles() {
            plan.warnings.push(
                "rust/go functions compile at their first call in each pod (the toolchain is in the \
                 image and the root filesystem stays writable)"
                    .into(),
            );
        }
        Ok((plan, project))
    }
}

// ---------------------------------------------------------------------------------------------
// YAML (a small emitter over JSON values: block style, every string double-quoted)

fn yaml_key(k: &str) -> String {
    let plain = !k.is_empty()
        && k.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && k.chars().all(|c| c.is_ascii_alphanumeric() || "_.-/".contains(c))
        && !matches!(
            k.to_ascii_lowercase().as_str(),
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "y" | "n"
        );
    if plain {
        k.to_string()
    } else {
        Value::String(k.to_string()).to_string()
    }
}

fn yaml_scalar(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        // JSON's string escapes are valid in a YAML double-quoted scalar.
        other => other.to_string(),
    }
}

/// A multi-line string as a literal block, when its text allows one.
fn literal_block(s: &str, indent: usize) -> Option<String> {
    if !s.contains('\n') || s.starts_with([' ', '\n']) || s.contains('\r') || s.contains('\t') {
        return None;
    }
    if s.lines().any(|l| l.ends_with(' ')) {
        return None;
    }
    let chomp = if s.ends_with("\n\n") {
        "+"
    } else if s.ends_with('\n') {
        ""
    } else {
        "-"
    };
    let pad = " ".repeat(indent);
    let mut out = format!("|{chomp}\n");
    for line in s.trim_end_matches('\n').split('\n') {
        if line.is_empty() {
            out.push('\n');
        } else {
            let _ = writeln!(out, "{pad}{line}");
        }
    }
    for _ in 1..s.len() - s.trim_end_matches('\n').len() {
        out.push('\n');
    }
    Some(out)
}

fn emit(out: &mut String, v: &Value, indent: usize) {
    let pad = " ".repeat(indent);
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let _ = write!(out, "{pad}{}:", yaml_key(k));
                emit_value_after_key(out, v, indent);
            }
        }
        Value::Array(a) => {
            for item in a {
                match item {
                    Value::Object(m) if !m.is_empty() => {
                        let mut inner = String::new();
                        emit(&mut inner, item, indent + 2);
                        out.push_str(&pad);
                        out.push_str("- ");
                        out.push_str(&inner[indent + 2..]);
                    }
                    Value::Array(x) if !x.is_empty() => {
                        let mut inner = String::new();
                        emit(&mut inner, item, indent + 2);
                        out.push_str(&pad);
                        out.push_str("- ");
                        out.push_str(&inner[indent + 2..]);
                    }
                    Value::Object(_) => {
                        let _ = writeln!(out, "{pad}- {{}}");
                    }
                    Value::Array(_) => {
                        let _ = writeln!(out, "{pad}- []");
                    }
                    scalar => {
                        let _ = writeln!(out, "{pad}- {}", yaml_scalar(scalar));
                    }
                }
            }
        }
        scalar => {
            let _ = writeln!(out, "{pad}{}", yaml_scalar(scalar));
        }
    }
}

fn emit_value_after_key(out: &mut String, v: &Value, indent: usize) {
    match v {
        Value::Object(m) if m.is_empty() => out.push_str(" {}\n"),
        Value::Array(a) if a.is_empty() => out.push_str(" []\n"),
        Value::Object(_) | Value::Array(_) => {
            out.push('\n');
            emit(out, v, indent + 2);
        }
        Value::String(s) => match literal_block(s, indent + 2) {
            Some(block) => {
                out.push(' ');
                out.push_str(&block);
            }
            None => {
                let _ = writeln!(out, " {}", yaml_scalar(v));
            }
        },
        scalar => {
            let _ = writeln!(out, " {}", yaml_scalar(scalar));
        }
    }
}

/// One YAML document for a JSON object.
pub fn to_yaml(v: &Value) -> String {
    let mut out = String::new();
    emit(&mut out, v, 0);
    out
}

// ---------------------------------------------------------------------------------------------
// Rendering (pure)

/// A file the export writes, relative to the output folder.
#[derive(Debug, Clone, PartialEq)]
pub struct OutFile {
    pub path: String,
    pub text: String,
}

fn labels(plan: &Plan) -> Value {
    json!({ "app.kubernetes.io/name": plan.name, "app.kubernetes.io/managed-by": "fastfn-export" })
}

fn selector(plan: &Plan) -> Value {
    json!({ "app.kubernetes.io/name": plan.name })
}

fn container_security() -> Value {
    json!({
        "allowPrivilegeEscalation": false,
        "capabilities": { "drop": ["ALL"] },
        "runAsNonRoot": true,
        "runAsUser": POD_UID,
    })
}

/// `FN_RUNTIME_DAEMONS` as the engine reads it.
fn daemons_env(plan: &Plan) -> String {
    plan.daemons
        .iter()
        .map(|(rt, n)| format!("{rt}={n}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Requests grow with the daemons a pod runs; memory is limited (a leak restarts one pod),
/// CPU is not (throttling a latency-bound server hurts more than sharing a node).
fn resources(plan: &Plan) -> Value {
    let daemons: usize = plan.daemons.values().sum();
    let cpu = 100 + 100 * daemons;
    let mem = 64 + 64 * daemons;
    json!({
        "requests": { "cpu": format!("{cpu}m"), "memory": format!("{mem}Mi") },
        "limits": { "memory": format!("{}Mi", mem * 2) },
    })
}

/// Margin of the grace period past the drain: the engine stops its daemons (SIGTERM, then
/// SIGKILL) and exits.
pub const STOP_MARGIN_SECS: u64 = 10;

/// Seconds a pod may take to stop: the `preStop` wait, the engine's drain, and its daemons'
/// stop. Kubernetes cannot tell a container its grace period, so the export sets both: the
/// drain as `FN_DRAIN_TIMEOUT_MS`, and `terminationGracePeriodSeconds` from it.
fn grace_secs(plan: &Plan) -> u64 {
    PRESTOP_SECS + plan.drain_secs + STOP_MARGIN_SECS
}

/// The drain a project needs: a call may run for its function's `timeout_ms`, so the longest
/// of them (whole seconds, rounded up) when it is longer than the engine's default.
pub fn drain_secs(timeouts_ms: impl Iterator<Item = u64>) -> u64 {
    let default = crate::config::defaults::DRAIN_TIMEOUT_MS.div_ceil(1000);
    timeouts_ms.map(|t| t.div_ceil(1000)).fold(default, u64::max)
}

fn deployment(plan: &Plan) -> Value {
    let probe = |period: u64, failures: u64| {
        json!({
            "httpGet": { "path": "/_fn/health?probe=1", "port": "http" },
            "periodSeconds": period,
            "timeoutSeconds": 2,
            "failureThreshold": failures,
        })
    };
    let mut env = vec![
        json!({"name": "FN_LOG_FORMAT", "value": "json"}),
        json!({"name": "FN_HOT_RELOAD", "value": "0"}),
        json!({"name": "FN_SCHEDULER_ENABLED", "value": "0"}),
        json!({"name": "FN_ADMIN_API_ENABLED", "value": "0"}),
        json!({"name": "FN_SOCKET_BASE_DIR", "value": "/tmp/fastfn"}),
        json!({"name": "FN_DRAIN_TIMEOUT_MS", "value": (plan.drain_secs * 1000).to_string()}),
    ];
    if !plan.daemons.is_empty() {
        env.push(json!({"name": "FN_RUNTIME_DAEMONS", "value": daemons_env(plan)}));
    }
    let mut mounts = vec![
        json!({"name": "tmp", "mountPath": "/tmp"}),
        json!({"name": "config", "mountPath": format!("{APP_DIR}/fastfn.json"), "subPath": "fastfn.json", "readOnly": true}),
    ];
    let fns = if plan.functions_dir.is_empty() {
        APP_DIR.to_string()
    } else {
        format!("{APP_DIR}/{}", plan.functions_dir)
    };
    for e in &plan.env_files {
        let at = if e.dir.is_empty() {
            format!("{fns}/fn.env.json")
        } else {
            format!("{fns}/{}/fn.env.json", e.dir)
        };
        mounts.push(json!({"name": "config", "mountPath": at, "subPath": env_key(&e.dir), "readOnly": true}));
    }
    let mut container = json!({
        "name": "fastfn",
        "image": plan.image,
        "args": ["run", APP_DIR, "--host", "0.0.0.0", "--port", POD_PORT.to_string()],
        "ports": [{"name": "http", "containerPort": POD_PORT}],
        "env": env,
        "startupProbe": probe(2, 60),
        "readinessProbe": probe(5, 2),
        "livenessProbe": probe(10, 6),
        "lifecycle": { "preStop": { "exec": { "command": ["sleep", PRESTOP_SECS.to_string()] } } },
        "resources": resources(plan),
        "securityContext": container_security(),
        "volumeMounts": mounts,
    });
    container["securityContext"]["readOnlyRootFilesystem"] = Value::Bool(!plan.compiles());
    if !plan.secret_keys().is_empty() {
        container["envFrom"] = json!([{ "secretRef": { "name": format!("{}-secrets", plan.name) } }]);
    }
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": { "name": plan.name, "labels": labels(plan) },
        "spec": {
            "replicas": 2,
            "selector": { "matchLabels": selector(plan) },
            "template": {
                "metadata": { "labels": labels(plan) },
                "spec": {
                    "terminationGracePeriodSeconds": grace_secs(plan),
                    "automountServiceAccountToken": false,
                    "containers": [container],
                    "volumes": [
                        { "name": "tmp", "emptyDir": {} },
                        { "name": "config", "configMap": { "name": format!("{}-config", plan.name) } },
                    ],
                },
            },
        },
    })
}

fn service(plan: &Plan) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": { "name": plan.name, "labels": labels(plan) },
        "spec": {
            "selector": selector(plan),
            "ports": [{ "name": "http", "port": POD_PORT, "targetPort": "http" }],
        },
    })
}

fn hpa(plan: &Plan) -> Value {
    json!({
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": { "name": plan.name, "labels": labels(plan) },
        "spec": {
            "scaleTargetRef": { "apiVersion": "apps/v1", "kind": "Deployment", "name": plan.name },
            "minReplicas": 2,
            "maxReplicas": 10,
            "metrics": [{
                "type": "Resource",
                "resource": { "name": "cpu", "target": { "type": "Utilization", "averageUtilization": 70 } },
            }],
        },
    })
}

fn configmap(plan: &Plan) -> Value {
    let mut data = Map::new();
    data.insert("fastfn.json".into(), Value::String(plan.fastfn_json.clone()));
    for e in &plan.env_files {
        let env = image_env(&e.public, &e.secret_keys);
        let text = serde_json::to_string_pretty(&Value::Object(env)).unwrap_or_else(|_| "{}".into());
        data.insert(env_key(&e.dir), Value::String(text + "\n"));
    }
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": { "name": format!("{}-config", plan.name), "labels": labels(plan) },
        "data": data,
    })
}

fn secret(plan: &Plan) -> Value {
    let data: Map<String, Value> = plan
        .secret_keys()
        .into_iter()
        .map(|k| (k.to_string(), Value::String(String::new())))
        .collect();
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": { "name": format!("{}-secrets", plan.name), "labels": labels(plan) },
        "type": "Opaque",
        "stringData": data,
    })
}

fn cron_name(plan: &Plan, call: &CronCall, taken: &mut BTreeSet<String>) -> String {
    // CronJob names are at most 52 characters (their Jobs add a suffix).
    let base = dns_name(
        &format!(
            "{}-cron-{}",
            plan.name,
            if call.function.is_empty() {
                "root"
            } else {
                &call.function
            }
        ),
        48,
    );
    let mut name = base.clone();
    let mut n = 2;
    while !taken.insert(name.clone()) {
        name = format!("{base}-{n}");
        n += 1;
    }
    name
}

fn cronjob(plan: &Plan, call: &CronCall, name: &str) -> Value {
    let mut cmd = vec![
        "curl".to_string(),
        "-fsS".into(),
        "--max-time".into(),
        call.timeout_secs.to_string(),
        "-X".into(),
        call.method.clone(),
    ];
    for (k, v) in &call.headers {
        cmd.push("-H".into());
        cmd.push(format!("{k}: {v}"));
    }
    if let Some(b) = &call.body {
        cmd.push("--data-binary".into());
        cmd.push(b.clone());
    }
    cmd.push(format!("http://{}:{POD_PORT}{}", plan.name, call.path));
    let mut spec = json!({
        "schedule": call.cron,
        "concurrencyPolicy": "Forbid",
        "startingDeadlineSeconds": 60,
        "successfulJobsHistoryLimit": 3,
        "failedJobsHistoryLimit": 3,
        "jobTemplate": {
            "spec": {
                "backoffLimit": call.retries,
                "activeDeadlineSeconds": call.timeout_secs * u64::from(call.retries + 1) + 60,
                "template": {
                    "metadata": { "labels": { "app.kubernetes.io/name": format!("{}-cron", plan.name) } },
                    "spec": {
                        "restartPolicy": "Never",
                        "automountServiceAccountToken": false,
                        "containers": [{
                            "name": "call",
                            "image": plan.image,
                            "command": cmd,
                            "securityContext": container_security(),
                            "resources": { "requests": { "cpu": "10m", "memory": "16Mi" }, "limits": { "memory": "64Mi" } },
                        }],
                    },
                },
            },
        },
    });
    if let Some(tz) = &call.time_zone {
        spec["timeZone"] = Value::String(tz.clone());
    }
    json!({
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": { "name": name, "labels": labels(plan) },
        "spec": spec,
    })
}

fn containerfile(plan: &Plan) -> String {
    let mut pkgs: Vec<&str> = vec!["ca-certificates", "curl"];
    for rt in &plan.runtimes {
        match rt {
            RuntimeKind::Python => pkgs.push("python3"),
            RuntimeKind::Node => pkgs.push("nodejs"),
            RuntimeKind::Php => pkgs.push("php-cli"),
            RuntimeKind::Rust => pkgs.extend(["cargo", "rustc", "build-essential"]),
            RuntimeKind::Go => pkgs.push("golang-go"),
            RuntimeKind::Lua => {}
        }
    }
    if plan.needs_pip {
        pkgs.push("python3-pip");
    }
    if plan.needs_npm {
        pkgs.push("npm");
    }
    if plan.needs_composer {
        pkgs.push("composer");
    }
    let runtimes = plan
        .runtimes
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let mut f = String::new();
    let _ = writeln!(
        f,
        "# Generated by `fastfn export k8s`. Build from this folder:\n\
         #   podman build -t {image} .      (or: buildah bud -t {image} .)\n\
         # The base is a build argument: --build-arg BASE=<a Debian 12 image>.\n\
         ARG BASE={BASE_IMAGE}\n\
         FROM ${{BASE}}\n\n\
         # Interpreters the project's runtimes need ({runtimes}), from Debian.\n\
         RUN apt-get update \\\n \
         && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \\\n      {pkgs} \\\n \
         && rm -rf /var/lib/apt/lists/*\n\n\
         COPY fastfn /usr/local/bin/fastfn\n\
         COPY project/ {APP_DIR}/\n\n\
         # The same per-function installs `fastfn dev` makes, made now, so a pod starts without\n\
         # network and writes nothing into {APP_DIR}. (Debian's pip refuses system installs; these go\n\
         # into each function's own folder.)\n\
         ENV FN_RUNTIMES={runtimes} PIP_BREAK_SYSTEM_PACKAGES=1 PIP_NO_CACHE_DIR=1 npm_config_cache=/tmp/npm-cache\n\
         RUN fastfn prepare {APP_DIR} && rm -rf /tmp/npm-cache /root/.cache\n\n\
         ENV FN_LOG_FORMAT=json FN_HOT_RELOAD=0 FN_SCHEDULER_ENABLED=0 FN_SOCKET_BASE_DIR=/tmp/fastfn \\\n    PYTHONDONTWRITEBYTECODE=1\n\
         USER {POD_UID}\n\
         EXPOSE {POD_PORT}\n\
         ENTRYPOINT [\"fastfn\"]\n\
         CMD [\"run\", \"{APP_DIR}\", \"--host\", \"0.0.0.0\", \"--port\", \"{POD_PORT}\"]",
        image = plan.image,
        pkgs = pkgs.join(" "),
    );
    f
}

fn readme(plan: &Plan, files: &[String]) -> String {
    let mut r = String::new();
    let _ = writeln!(r, "# {} on Kubernetes\n", plan.name);
    let _ = writeln!(
        r,
        "Written by `fastfn export k8s`; the steps from here to a cluster are in FastFN Desktop's\n\
         `docs/deploy.md`. In short:\n\n\
         ```sh\n\
         podman build -t {image} .\n\
         podman push {image}            # to a registry your cluster pulls from\n\
         kubectl apply -k .\n\
         ```\n",
        image = plan.image
    );
    let _ = writeln!(r, "## Files\n");
    for f in files {
        let what = match f.as_str() {
            "Containerfile" => "the image: Debian, the interpreters, `fastfn`, the project and its installs",
            "deployment.yaml" => "the engine (`fastfn run`), probes on `/_fn/health?probe=1`, a `preStop` drain",
            "service.yaml" => "one stable address for the replicas (also what the CronJobs call)",
            "hpa.yaml" => "2 to 10 replicas on CPU",
            "configmap.yaml" => "`fastfn.json` and the non-secret `fn.env.json` values, mounted over the image's",
            "secret.yaml" => "secret key names, empty: fill them in an overlay or create the Secret yourself",
            "kustomization.yaml" => "the list above, for `kubectl apply -k` and your overlays",
            "fastfn" => "the engine binary copied into the image",
            "project/" => "the project as the image gets it (secret values removed)",
            f if f.starts_with("cronjob-") => "one schedule: calls the function through the Service",
            _ => "",
        };
        let _ = writeln!(r, "- `{f}`: {what}");
    }
    let _ = writeln!(
        r,
        "\n## Replicas and worker pools multiply\n\n\
         Every limit of the project is per pod. A pod runs {daemons} and admits, per function, at most\n\
         `max_concurrency` calls at once (`worker_pool.max_workers` when a pool is on, plus its\n\
         queue). With N replicas the cluster admits N times that: at the HPA's 2 to 10 replicas,\n\
         2× to 10× the numbers below. A downstream service that allows only so many connections\n\
         needs the per-pod number divided by the replicas.\n",
        daemons = if plan.daemons.is_empty() {
            "no daemons (in-process or compiled runtimes only)".to_string()
        } else {
            format!("`{}` daemon(s) (`FN_RUNTIME_DAEMONS`)", daemons_env(plan))
        }
    );
    let _ = writeln!(
        r,
        "| route | runtime | per pod | at 2 replicas | at 10 replicas |\n|---|---|---|---|---|"
    );
    for f in &plan.functions {
        let per = match f.worker_pool {
            Some((w, q)) => format!("{w} workers + {q} queued"),
            None => format!("{} at once", f.max_concurrency),
        };
        let times = |n: i64| match f.worker_pool {
            Some((w, q)) => format!("{} + {}", w * n, q * n),
            None => (f.max_concurrency * n).to_string(),
        };
        let _ = writeln!(
            r,
            "| `{}` | {} | {per} | {} | {} |",
            f.route,
            f.runtime,
            times(2),
            times(10)
        );
    }
    let _ = writeln!(
        r,
        "\n## Schedules\n\n\
         The engine's own scheduler is off in the pods (`FN_SCHEDULER_ENABLED=0`): each replica\n\
         would run every schedule. Each schedule is a CronJob instead, which runs once per cluster\n\
         and calls the function through the Service.\n"
    );
    if plan.schedules.is_empty() {
        let _ = writeln!(r, "This project has none.");
    }
    for s in &plan.schedules {
        let _ = writeln!(
            r,
            "- `{}` `{}` on `{}`{}",
            s.method,
            s.path,
            s.cron,
            s.time_zone.as_deref().map(|t| format!(" ({t})")).unwrap_or_default()
        );
    }
    let keys = plan.secret_keys();
    let _ = writeln!(
        r,
        "\n## Secrets\n\n\
         Keys marked `is_secret` in `fn.env.json` lose their values in the image (`{{\"is_secret\": true}}`)\n\
         and are listed, empty, in `secret.yaml`; the pod gets them as environment variables, and the\n\
         engine fills each value-less secret key from the variable of that name, so handlers find\n\
         them in `event.secrets` as they do locally (and in the process environment). Keys: {}.\n",
        if keys.is_empty() {
            "none".to_string()
        } else {
            keys.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
        }
    );
    if !plan.warnings.is_empty() {
        let _ = writeln!(
            r,
            "## Warnings\n\nSettings not carried to the cluster, and what the engine warns about this project:\n"
        );
        for w in &plan.warnings {
            let _ = writeln!(r, "- {w}");
        }
    }
    r
}

/// The files of an export (without the project copy and the binary).
pub fn render(plan: &Plan) -> Vec<OutFile> {
    let mut manifests: Vec<(String, Value)> = vec![
        ("deployment.yaml".into(), deployment(plan)),
        ("service.yaml".into(), service(plan)),
        ("hpa.yaml".into(), hpa(plan)),
        ("configmap.yaml".into(), configmap(plan)),
    ];
    if !plan.secret_keys().is_empty() {
        manifests.push(("secret.yaml".into(), secret(plan)));
    }
    let mut taken = BTreeSet::new();
    for call in &plan.schedules {
        let name = cron_name(plan, call, &mut taken);
        manifests.push((format!("cronjob-{}.yaml", name), cronjob(plan, call, &name)));
    }
    let resources: Vec<Value> = manifests.iter().map(|(p, _)| Value::String(p.clone())).collect();
    let kustomization = json!({
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": resources,
        "images": [{ "name": plan.image.rsplit_once(':').map_or(plan.image.as_str(), |(n, _)| n) }],
    });
    let mut files: Vec<OutFile> = manifests
        .into_iter()
        .map(|(path, v)| OutFile {
            path,
            text: format!("# Generated by `fastfn export k8s`.\n{}", to_yaml(&v)),
        })
        .collect();
    files.push(OutFile {
        path: "kustomization.yaml".into(),
        text: format!("# Generated by `fastfn export k8s`.\n{}", to_yaml(&kustomization)),
    });
    files.insert(
        0,
        OutFile {
            path: "Containerfile".into(),
            text: containerfile(plan),
        },
    );
    let mut listed: Vec<String> = files.iter().map(|f| f.path.clone()).collect();
    listed.extend(["fastfn".to_string(), "project/".to_string()]);
    files.push(OutFile {
        path: "README.md".into(),
        text: readme(plan, &listed),
    });
    files
}

// ---------------------------------------------------------------------------------------------
// Writing

/// Copy the project into `to`, skipping install and state folders and `out`, with secret
/// values removed from every `fn.env.json`.
fn copy_project(from: &Path, to: &Path, out: &Path) -> Result<(), ExportError> {
    std::fs::create_dir_all(to).map_err(io(to))?;
    let entries = std::fs::read_dir(from).map_err(io(from))?;
    for e in entries {
        let e = e.map_err(io(from))?;
        let src = e.path();
        let dst = to.join(e.file_name());
        // `metadata` follows symlinks: a linked file or folder is copied as what it names.
        let Ok(meta) = std::fs::metadata(&src) else { continue };
        if meta.is_dir() {
            let n = e.file_name();
            if SKIPPED_DIRS.iter().any(|s| n == *s) || src == out {
                continue;
            }
            copy_project(&src, &dst, out)?;
        } else if meta.is_file() {
            if e.file_name() == "fn.env.json" {
                let text = std::fs::read_to_string(&src).map_err(io(&src))?;
                let (public, secret_keys) = split_env(&text).map_err(|m| ExportError::BadEnv(src.clone(), m))?;
                let env = image_env(&public, &secret_keys);
                let text = serde_json::to_string_pretty(&Value::Object(env)).unwrap_or_default() + "\n";
                std::fs::write(&dst, text).map_err(io(&dst))?;
            } else {
                std::fs::copy(&src, &dst).map_err(io(&src))?;
            }
        }
    }
    Ok(())
}

/// What [`export`] did.
#[derive(Debug)]
pub struct Exported {
    pub plan: Plan,
    pub files: Vec<String>,
}

/// Write the export of a project into `opts.out`.
pub fn export(opts: &Options) -> Result<Exported, ExportError> {
    let gathered = Plan::gather_at(opts)?;
    write_export(gathered, opts)
}

/// The `fastfn` binary to put in the image: this executable when it is `fastfn`, else a
/// `fastfn` beside it (the desktop app ships both) or on `PATH`.
pub fn engine_binary() -> Result<PathBuf, ExportError> {
    let me = std::env::current_exe().ok();
    if let Some(me) = &me {
        if me.file_name().is_some_and(|n| n == "fastfn") {
            return Ok(me.clone());
        }
        if let Some(beside) = me.parent().map(|d| d.join("fastfn")).filter(|p| p.is_file()) {
            return Ok(beside);
        }
    }
    which::which("fastfn").map_err(|_| ExportError::NoBinary)
}

fn write_export((plan, project): (Plan, PathBuf), opts: &Options) -> Result<Exported, ExportError> {
    let out = &opts.out;
    if out.is_dir() && !opts.force && std::fs::read_dir(out).map_err(io(out))?.next().is_some() {
        return Err(ExportError::OutNotEmpty(out.clone()));
    }
    std::fs::create_dir_all(out).map_err(io(out))?;
    let out_abs = out.canonicalize().map_err(io(out))?;
    let copy = out_abs.join("project");
    if copy.exists() {
        std::fs::remove_dir_all(&copy).map_err(io(&copy))?;
    }
    copy_project(&project, &copy, &out_abs)?;
    // The ConfigMap carries fastfn.json; a --config file elsewhere becomes the image's too.
    std::fs::write(copy.join("fastfn.json"), &plan.fastfn_json).map_err(io(&copy))?;
    let binary = match &opts.binary {
        Some(b) => b.clone(),
        None => engine_binary()?,
    };
    let bin_dst = out_abs.join("fastfn");
    std::fs::copy(&binary, &bin_dst).map_err(io(&binary))?;
    let files = render(&plan);
    for f in &files {
        let p = out_abs.join(&f.path);
        std::fs::write(&p, &f.text).map_err(io(&p))?;
    }
    Ok(Exported {
        files: files.into_iter().map(|f| f.path).collect(),
        plan,
    })
}

/// `fastfn prepare DIR` (the Containerfile's build step): every function's dependency install,
/// made now and awaited, as `fastfn dev` would make them at start. Returns the final states;
/// the caller fails the build when one is not `ready`.
pub async fn prepare(
    dir: Option<PathBuf>,
    config_file: Option<PathBuf>,
) -> Result<Vec<crate::deps::DepsStatus>, ExportError> {
    let settings = Settings::from_env(&Overrides {
        dir,
        config_file,
        ..Default::default()
    })?;
    let d = discovery::discover(
        &settings.functions_root,
        &DiscoveryOptions::for_settings(&settings, &settings.runtimes),
    );
    if !d.errors.is_empty() {
        let all: Vec<String> = d.errors.iter().map(ToString::to_string).collect();
        return Err(ExportError::Discovery(all.join("; ")));
    }
    let mut toggles = settings.deps;
    // A build installs everything now: nothing may be left to a pod's first request.
    toggles.preinstall_python = true;
    toggles.preinstall_node = true;
    let deps = crate::deps::Deps::with_options(
        settings.binary("python").to_string(),
        settings.binary("npm").to_string(),
        settings.binary("composer").to_string(),
        crate::events::EventBus::default(),
        crate::deps::Options {
            toggles,
            ..Default::default()
        },
    );
    let targets: Vec<_> = d.routes.routes().iter().map(|r| r.target.clone()).collect();
    deps.prepare(&settings.functions_root, &targets);
    loop {
        let status = deps.status();
        if !status.iter().any(|s| matches!(s.state, "installing" | "deferred")) {
            return Ok(status);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// `fastfn export k8s`: write, then say what was written and what was not carried over.
pub fn cli_export(opts: Options) -> std::process::ExitCode {
    match export(&opts) {
        Ok(done) => {
            println!("Exported {} for Kubernetes into {}", done.plan.name, opts.out.display());
            for f in &done.files {
                println!("  {f}");
            }
            println!("  fastfn\n  project/");
            for w in &done.plan.warnings {
                eprintln!("warning: {w}");
            }
            println!(
                "Next: podman build -t {} {} && kubectl apply -k {}",
                done.plan.image,
                opts.out.display(),
                opts.out.display()
            );
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::from(2)
        }
    }
}

/// `fastfn prepare`: run [`prepare`], print one line per install, exit 1 if one is not ready.
pub fn cli_prepare(dir: Option<PathBuf>, config_file: Option<PathBuf>) -> std::process::ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(prepare(dir, config_file)) {
        Ok(status) => {
            let mut ok = true;
            for s in &status {
                let label = if s.function.is_empty() { "/" } else { &s.function };
                println!("{:<10} {} ({})", s.state, label, s.runtime);
                if s.state != "ready" {
                    ok = false;
                    if let Some(e) = &s.error {
                        eprintln!("{e}");
                    }
                }
            }
            if status.is_empty() {
                println!("no dependencies to install");
            }
            if ok {
                std::process::ExitCode::SUCCESS
            } else {
                std::process::ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::from(2)
        }
    }
}

/// What the dashboard's "Export for Kubernetes" gets back.
#[derive(Debug, Clone, serde::Serialize, ts_rs::TS)]
#[ts(export)]
pub struct K8sExport {
    pub name: String,
    pub image: String,
    pub out: String,
    pub files: Vec<String>,
    /// Settings not carried to the cluster, each with why.
    pub warnings: Vec<String>,
}

/// The body of `POST /_fn/export/k8s`.
#[derive(Debug, serde::Deserialize)]
struct ExportRequest {
    out: PathBuf,
    name: Option<String>,
    image: Option<String>,
    #[serde(default)]
    force: bool,
}

/// Export the project a running engine serves (its own settings). Used by
/// `POST /_fn/export/k8s` and the desktop app's command.
pub fn export_served(
    settings: &Settings,
    out: PathBuf,
    name: Option<String>,
    image: Option<String>,
    force: bool,
) -> Result<K8sExport, ExportError> {
    if !out.is_absolute() {
        return Err(ExportError::OutNotAbsolute);
    }
    let opts = Options {
        dir: Some(settings.project_dir.clone()),
        config_file: None,
        out: out.clone(),
        name,
        image,
        binary: None,
        force,
    };
    let done = write_export(Plan::gather_with(settings, &opts)?, &opts)?;
    Ok(K8sExport {
        name: done.plan.name,
        image: done.plan.image,
        out: out.display().to_string(),
        files: done.files,
        warnings: done.plan.warnings,
    })
}

/// `POST /_fn/export/k8s` (behind the admin guard): `{"out": "/abs/folder", "name"?, "image"?,
/// "force"?}` → 200 [`K8sExport`], or 400/500 `{"error": code, "message"}`.
pub(crate) async fn admin_export(
    settings: &Settings,
    body: hyper::body::Incoming,
) -> hyper::Response<crate::rescue::Body> {
    use http_body_util::BodyExt;
    let bad = |code: &str, message: String, status: hyper::StatusCode| {
        crate::rescue::json_response(status, &json!({ "error": code, "message": message }))
    };
    let Ok(bytes) = http_body_util::Limited::new(body, 64 * 1024).collect().await else {
        return bad(
            "export.bad_request",
            "body too large".into(),
            hyper::StatusCode::PAYLOAD_TOO_LARGE,
        );
    };
    let req: ExportRequest = match serde_json::from_slice(&bytes.to_bytes()) {
        Ok(r) => r,
        Err(e) => {
            return bad(
                "export.bad_request",
                format!("invalid body: {e}"),
                hyper::StatusCode::BAD_REQUEST,
            )
        }
    };
    let settings = settings.clone();
    // Reads and copies the project: off the async workers.
    let done =
        tokio::task::spawn_blocking(move || export_served(&settings, req.out, req.name, req.image, req.force)).await;
    match done {
        Ok(Ok(r)) => crate::rescue::json_response(hyper::StatusCode::OK, &r),
        Ok(Err(e)) => {
            let status = if matches!(e, ExportError::Io { .. }) {
                hyper::StatusCode::INTERNAL_SERVER_ERROR
            } else {
                hyper::StatusCode::BAD_REQUEST
            };
            bad(e.code(), e.to_string(), status)
        }
        Err(_) => bad(
            "export.io",
            "the export stopped".into(),
            hyper::StatusCode::INTERNAL_SERVER_ERROR,
        ),
    }
}

/// `/_fn/health?probe=1`: the status a Kubernetes probe reads (503 when a runtime the routes
/// need is down). Other queries keep the plain 200 of the original.
pub fn wants_probe(query: Option<&str>) -> bool {
    query.is_some_and(|q| q.split('&').any(|kv| kv == "probe=1" || kv == "probe=true"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_dns_labels() {
        assert_eq!(dns_name("My Project_2", 40), "my-project-2");
        assert_eq!(dns_name("--x--", 40), "x");
        assert_eq!(dns_name("9lives", 40), "fn-9lives");
        assert_eq!(dns_name("", 40), "fn");
        assert_eq!(dns_name("abcdefghij-klm", 11), "abcdefghij");
    }

    #[test]
    fn every_seconds_to_cron() {
        assert_eq!(every_to_cron(60).unwrap(), "* * * * *");
        assert_eq!(every_to_cron(300).unwrap(), "*/5 * * * *");
        assert_eq!(every_to_cron(3600).unwrap(), "0 * * * *");
        assert_eq!(every_to_cron(6 * 3600).unwrap(), "0 */6 * * *");
        assert_eq!(every_to_cron(86400).unwrap(), "0 0 * * *");
        assert!(every_to_cron(2).unwrap_err().contains("whole number of minutes"));
        assert!(every_to_cron(420).unwrap_err().contains("write it as `cron`"));
        assert!(every_to_cron(5 * 3600).is_err());
    }

    #[test]
    fn cron_fields_and_macros() {
        assert_eq!(cron_to_k8s(" */5  * * * * ").unwrap(), "*/5 * * * *");
        assert_eq!(cron_to_k8s("0 30 2 * * 1").unwrap(), "30 2 * * 1");
        assert!(cron_to_k8s("*/10 * * * * *").unwrap_err().contains("seconds"));
        assert_eq!(cron_to_k8s("@hourly").unwrap(), "@hourly");
        assert!(cron_to_k8s("@reboot").is_err());
        assert!(cron_to_k8s("* *").is_err());
    }

    #[test]
    fn time_zones() {
        assert_eq!(time_zone("UTC").unwrap().as_deref(), Some("Etc/UTC"));
        assert_eq!(time_zone("+02:00").unwrap().as_deref(), Some("Etc/GMT-2"));
        assert_eq!(time_zone("-05:00").unwrap().as_deref(), Some("Etc/GMT+5"));
        assert_eq!(time_zone("+00:00").unwrap().as_deref(), Some("Etc/UTC"));
        assert!(time_zone("+05:30").is_err());
        assert!(time_zone("local").unwrap_err().contains("unknown to a cluster"));
        assert!(time_zone("Europe/Paris").is_err());
    }

    #[test]
    fn schedule_blocks() {
        let s = json!({"every_seconds": 120, "method": "post", "query": {"a b": "1"}, "headers": {"X-K": "v"},
                       "body": {"n": 1}, "retry": {"max_attempts": 3}});
        let c = schedule_call("jobs/tick", &s, Some("/tick"), 2500).unwrap().unwrap();
        assert_eq!(c.cron, "*/2 * * * *");
        assert_eq!(c.method, "POST");
        assert_eq!(c.path, "/tick?a%20b=1");
        assert_eq!(c.headers.get("X-K").map(String::as_str), Some("v"));
        assert_eq!(c.body.as_deref(), Some(r#"{"n":1}"#));
        assert_eq!((c.retries, c.timeout_secs), (2, 8));
        assert_eq!(
            schedule_call("x", &json!({"enabled": false, "every_seconds": 60}), Some("/x"), 1).unwrap(),
            None
        );
        assert!(schedule_call("x", &json!({"every_seconds": 60}), None, 1)
            .unwrap_err()
            .contains("no static route"));
        assert!(
            schedule_call("x", &json!({"every_seconds": 60, "context": {"a": 1}}), Some("/x"), 1)
                .unwrap_err()
                .contains("context")
        );
        assert!(schedule_call("x", &json!({}), Some("/x"), 1).is_err());
    }

    #[test]
    fn env_split_keeps_values_of_public_keys_only() {
        let (public, secret) = split_env(r#"{"A":"1","B":{"value":"x","is_secret":true},"C":{"value":2}}"#).unwrap();
        assert_eq!(Value::Object(public), json!({"A":"1","C":{"value":2}}));
        assert_eq!(secret, vec!["B".to_string()]);
        assert!(split_env("[1]").is_err());
    }

    #[test]
    fn secret_names_are_environment_names() {
        assert!(is_env_name("API_KEY") && is_env_name("_x1"));
        assert!(!is_env_name("1X") && !is_env_name("MY KEY") && !is_env_name("a-b") && !is_env_name(""));
    }

    #[test]
    fn probe_query() {
        assert!(wants_probe(Some("probe=1")));
        assert!(wants_probe(Some("x=2&probe=true")));
        assert!(!wants_probe(Some("probe=0")));
        assert!(!wants_probe(None));
    }

    #[test]
    fn yaml_emitter_shapes() {
        let v = json!({
            "a": {"b": [1, "two", {"c": true, "d": []}], "e": {}},
            "on": "quoted key",
            "s": "line1\nline2\n",
            "t": "no newline at end\nsecond",
            "u": " lead",
            "n": null,
        });
        let y = to_yaml(&v);
        assert_eq!(
            y,
            "a:\n  b:\n    - 1\n    - \"two\"\n    - c: true\n      d: []\n  e: {}\n\
             \"n\": null\n\"on\": \"quoted key\"\ns: |\n  line1\n  line2\nt: |-\n  no newline at end\n  second\n\
             u: \" lead\"\n"
        );
    }

    fn plan() -> Plan {
        Plan {
            name: "shop".into(),
            image: "registry.example/shop:1".into(),
            runtimes: vec![RuntimeKind::Python, RuntimeKind::Node],
            daemons: BTreeMap::from([(RuntimeKind::Python, 2), (RuntimeKind::Node, 1)]),
            fastfn_json: "{\n  \"port\": 8080\n}\n".into(),
            functions_dir: String::new(),
            env_files: vec![EnvFile {
                dir: "api".into(),
                public: serde_json::from_value(json!({"MODE": "prod"})).unwrap(),
                secret_keys: vec!["TOKEN".into()],
            }],
            schedules: vec![CronCall {
                function: "api".into(),
                cron: "*/5 * * * *".into(),
                time_zone: Some("Etc/UTC".into()),
                method: "GET".into(),
                path: "/api".into(),
                headers: BTreeMap::new(),
                body: None,
                timeout_secs: 7,
                retries: 0,
            }],
            functions: vec![FunctionLimits {
                route: "/api".into(),
                runtime: RuntimeKind::Python,
                max_concurrency: 4,
                worker_pool: Some((2, 8)),
            }],
            needs_pip: true,
            needs_npm: true,
            needs_composer: false,
            drain_secs: 10,
            warnings: vec!["/x: schedule not exported: reasons".into()],
        }
    }

    #[test]
    fn the_drain_follows_the_longest_timeout_and_the_grace_period_covers_it() {
        assert_eq!(drain_secs([].into_iter()), 10, "the engine's default");
        assert_eq!(drain_secs([2500, 9000].into_iter()), 10);
        assert_eq!(drain_secs([2500, 30_001].into_iter()), 31);
        let mut p = plan();
        p.drain_secs = 31;
        let d = render(&p)
            .into_iter()
            .find(|f| f.path == "deployment.yaml")
            .unwrap()
            .text;
        assert!(d.contains("terminationGracePeriodSeconds: 46"), "{d}");
        assert!(
            d.contains("name: \"FN_DRAIN_TIMEOUT_MS\"\n") && d.contains("value: \"31000\""),
            "{d}"
        );
    }

    #[test]
    fn secret_keys_keep_their_names_without_values_in_the_image() {
        let public: Map<String, Value> = serde_json::from_value(json!({"MODE": "prod"})).unwrap();
        let env = image_env(&public, &["TOKEN".into(), "db-url".into()]);
        assert_eq!(
            Value::Object(env),
            json!({"MODE": "prod", "TOKEN": {"is_secret": true}}),
            "a key that cannot be an environment variable is left out (warned at export)"
        );
        let cm = render(&plan())
            .into_iter()
            .find(|f| f.path == "configmap.yaml")
            .unwrap()
            .text;
        assert!(cm.contains("is_secret"), "{cm}");
    }

    #[test]
    fn render_lists_every_manifest_in_the_kustomization() {
        let files = render(&plan());
        let names: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            names,
            [
                "Containerfile",
                "deployment.yaml",
                "service.yaml",
                "hpa.yaml",
                "configmap.yaml",
                "secret.yaml",
                "cronjob-shop-cron-api.yaml",
                "kustomization.yaml",
                "README.md"
            ]
        );
        let k = &files.iter().find(|f| f.path == "kustomization.yaml").unwrap().text;
        for n in &names[1..7] {
            assert!(k.contains(&format!("- \"{n}\"")), "{n} missing in {k}");
        }
        let d = &files[1].text;
        assert!(d.contains("FN_SCHEDULER_ENABLED"), "{d}");
        assert!(
            d.contains("\"python=2,node=1\"") || d.contains("\"node=1,python=2\""),
            "{d}"
        );
        assert!(d.contains("subPath: \"env.api.json\""), "{d}");
        assert!(d.contains("name: \"shop-secrets\""), "{d}");
        let secret = &files[5].text;
        assert!(secret.contains("TOKEN: \"\""), "{secret}");
        let cron = &files[6].text;
        assert!(cron.contains("\"http://shop:8080/api\""), "{cron}");
        assert!(cron.contains("timeZone: \"Etc/UTC\""), "{cron}");
        let readme = &files.last().unwrap().text;
        assert!(
            readme.contains("| `/api` | python | 2 workers + 8 queued | 4 + 16 | 20 + 80 |"),
            "{readme}"
        );
        assert!(readme.contains("schedule not exported: reasons"), "{readme}");
        let cf = &files[0].text;
        assert!(cf.contains("python3 nodejs python3-pip npm"), "{cf}");
        assert!(cf.contains("RUN fastfn prepare /app"), "{cf}");
    }

    #[test]
    fn no_secret_file_without_secret_keys() {
        let mut p = plan();
        p.env_files[0].secret_keys.clear();
        let files = render(&p);
        assert!(!files.iter().any(|f| f.path == "secret.yaml"));
        assert!(!files[1].text.contains("secretRef"));
    }
}
