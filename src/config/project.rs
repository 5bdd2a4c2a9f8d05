//! Project settings: `fastfn.json` / `fastfn.toml`, `FN_*` variables and CLI flags, resolved
//! once into [`Settings`]. Precedence: CLI flags > environment > `fastfn.json` > defaults.

use super::{defaults, ConfigError, PolicyDefaults};
use crate::runtime::RuntimeKind;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What the command line says; `None` = not given.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub dir: Option<PathBuf>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub force_url: Option<bool>,
    pub hot_reload: Option<bool>,
    /// `--config FILE`: the project file to read instead of `DIR/fastfn.json`.
    pub config_file: Option<PathBuf>,
}

/// Binaries the engine may run, by `runtime-binaries` key.
pub const BINARY_KEYS: [(&str, &str, &str); 7] = [
    ("python", "FN_PYTHON_BIN", "python3"),
    ("node", "FN_NODE_BIN", "node"),
    ("npm", "FN_NPM_BIN", "npm"),
    ("php", "FN_PHP_BIN", "php"),
    ("composer", "FN_COMPOSER_BIN", "composer"),
    ("cargo", "FN_CARGO_BIN", "cargo"),
    ("go", "FN_GO_BIN", "go"),
];

/// The original's hot-reload knobs. With the watchdog on (default) a file watcher reports
/// changes (inotify; polling every `poll` when inotify is unavailable) and changes that follow
/// one within `debounce` are reloaded together; with it off the tree is polled every
/// `interval`, as the original's interval reload does.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HotReloadTuning {
    pub watchdog: bool,
    pub poll: Duration,
    pub debounce: Duration,
    pub interval: Duration,
}

impl Default for HotReloadTuning {
    fn default() -> Self {
        HotReloadTuning {
            watchdog: true,
            poll: defaults::WATCH_POLL,
            debounce: defaults::WATCH_QUIET,
            interval: defaults::HOT_RELOAD_INTERVAL,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    /// Folder holding `fastfn.json`, if any (the DIR argument or the working directory).
    pub project_dir: PathBuf,
    /// Absolute functions root.
    pub functions_root: PathBuf,
    pub host: String,
    pub port: u16,
    /// Enabled runtimes in `FN_RUNTIMES` order.
    pub runtimes: Vec<RuntimeKind>,
    pub force_url: bool,
    pub hot_reload: bool,
    /// How changes are noticed (`FN_HOT_RELOAD_WATCHDOG*`, `_DEBOUNCE_MS`, `_INTERVAL`).
    pub hot_reload_tuning: HotReloadTuning,
    /// Daemons per runtime (`FN_RUNTIME_DAEMONS` > `runtime-daemons` > 1).
    pub daemon_counts: BTreeMap<RuntimeKind, usize>,
    /// `FN_RUNTIME_SOCKETS`: explicit socket paths per runtime (wins over counts).
    pub explicit_sockets: BTreeMap<RuntimeKind, Vec<PathBuf>>,
    /// Binary per key of [`BINARY_KEYS`].
    pub binaries: BTreeMap<&'static str, String>,
    pub socket_base_dir: PathBuf,
    pub health_interval: Duration,
    pub ignore_dirs: Vec<String>,
    pub namespace_depth: usize,
    /// `FN_PUBLIC_BASE_URL` > `public-base-url`: OpenAPI `servers[0].url`.
    pub public_base_url: Option<String>,
    /// `FN_OPENAPI_INCLUDE_INTERNAL` > `openapi-include-internal`: list `/_fn/*` in OpenAPI.
    pub openapi_include_internal: bool,
    pub admin_api_enabled: bool,
    pub docs_enabled: bool,
    pub ui_enabled: bool,
    /// `FN_CONSOLE_API_ENABLED` (default on): the admin API besides health and docs.
    pub console_api_enabled: bool,
    /// `FN_CONSOLE_LOCAL_ONLY` (default on): admin API and console answer local clients only
    /// (or the admin token); off, any client.
    pub console_local_only: bool,
    /// `FN_DEFAULT_TIMEOUT_MS`, `FN_DEFAULT_MAX_CONCURRENCY`, `FN_DEFAULT_MAX_BODY_BYTES`.
    pub policy_defaults: PolicyDefaults,
    /// `FN_RUNTIME_LOG_FILE`: runtime (handler and daemon output) lines are appended here too.
    pub runtime_log_file: Option<PathBuf>,
    /// `FN_LOG_DIR`: `error.log`, `access.log` and `runtime.log` are appended there too.
    pub log_dir: Option<PathBuf>,
    pub admin_token: Option<String>,
    /// `FN_CONSOLE_WRITE_ENABLED`, `FN_CONSOLE_LOGIN_*`, `FN_CONSOLE_SESSION_*`.
    pub console: crate::manage::ConsoleSettings,
    pub home_function: Option<String>,
    pub home_redirect: Option<String>,
    pub max_frame_bytes: usize,
    /// `FN_STRICT_FS_ALLOW`: extra folders strict handlers may use (comma-separated absolute
    /// paths), passed to the daemons as is.
    pub strict_fs_allow: Option<String>,
    /// `FN_CLIENT_TIMEOUT_MS`: a client must send its request head, and its body, within this.
    pub client_timeout: Duration,
    /// `FN_DRAIN_TIMEOUT_MS`: on stop (SIGTERM), how long requests in flight may take to
    /// finish before their connections are closed (a pod's grace period must cover it).
    pub drain_timeout: Duration,
    /// `FN_RUNTIME_CONNECTIONS`: persistent connections per daemon socket.
    pub runtime_connections: usize,
    /// `FN_MAX_CONNECTIONS`: client connections open at once (else the file-descriptor limit
    /// less a reserve).
    pub max_connections: Option<usize>,
    /// `FN_MAX_ASSET_BYTES`: largest static file served.
    pub max_asset_bytes: u64,
    /// `FN_AUTO_*`, `FN_AUTO_INFER_*`, `FN_PREINSTALL_*`: dependency installs and inference.
    pub deps: crate::deps::Toggles,
    /// Inference backends other than `native` that were asked for (`FN_PY_INFER_BACKEND`,
    /// `FN_NODE_INFER_BACKEND`): only the native one is built, so each is warned about.
    pub infer_backends_asked: Vec<(&'static str, String)>,
    /// The original's per-function runtime worker pools (`FN_PY_RUNTIME_WORKER_POOL`,
    /// `FN_NODE_RUNTIME_PROCESS_POOL`, `FN_<RT>_POOL_*`) that were set: this build has no
    /// per-function worker processes, so each is warned about (switching a pool off asks for
    /// nothing this build lacks and is not).
    pub worker_pool_env_asked: Vec<(&'static str, String)>,
    /// `FN_SCHEDULER_*`: schedules, keep-warm and their state file.
    pub scheduler: crate::scheduler::Options,
    /// `FN_JOBS_*`.
    pub jobs: crate::jobs::JobSettings,
    /// `FN_DEBUG_HEADERS`, `FN_INSPECT_*`: the request inspector.
    pub inspect: crate::inspect::InspectSettings,
}

/// `fastfn.json` / `fastfn.toml`, keys normalised to kebab-case.
#[derive(Debug, Default)]
struct ProjectFile {
    path: Option<PathBuf>,
    keys: BTreeMap<String, Value>,
}

fn kebab(key: &str) -> String {
    let mut out = String::new();
    for c in key.chars() {
        if c == '_' {
            out.push('-');
        } else if c.is_ascii_uppercase() {
            out.push('-');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn load_project_file(dir: &Path, explicit: Option<&Path>) -> Result<ProjectFile, ConfigError> {
    let path = match explicit {
        Some(f) if !f.is_file() => {
            return Err(ConfigError {
                code: "config.missing_file",
                file: f.to_path_buf(),
                field: None,
                message: "config file not found (--config)".into(),
            })
        }
        Some(f) => f.to_path_buf(),
        None => match [dir.join("fastfn.json"), dir.join("fastfn.toml")]
            .into_iter()
            .find(|p| p.is_file())
        {
            Some(p) => p,
            None => return Ok(ProjectFile::default()),
        },
    };
    let text = std::fs::read_to_string(&path).map_err(|e| io_error(&path, e))?;
    // `--config x.toml` reads TOML; any other name is JSON.
    let value = if path.extension().is_some_and(|e| e == "toml") {
        let v: toml::Value = toml::from_str(&text).map_err(|e| ConfigError {
            code: "config.invalid_toml",
            file: path.clone(),
            field: None,
            message: format!("invalid TOML: {}", e.message()),
        })?;
        serde_json::to_value(v).unwrap_or(Value::Null)
    } else {
        serde_json::from_str(&text).map_err(|e| ConfigError {
            code: "config.invalid_json",
            file: path.clone(),
            field: None,
            message: format!("invalid JSON: {e}"),
        })?
    };
    let Value::Object(map) = value else {
        return Err(ConfigError {
            code: "config.invalid_field",
            file: path,
            field: None,
            message: "expected an object at the top level".into(),
        });
    };
    Ok(ProjectFile {
        keys: map.into_iter().map(|(k, v)| (kebab(&k), v)).collect(),
        path: Some(path),
    })
}

fn io_error(path: &Path, e: std::io::Error) -> ConfigError {
    ConfigError {
        code: "config.unreadable",
        file: path.to_path_buf(),
        field: None,
        message: e.to_string(),
    }
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" | "" => Some(false),
        _ => None,
    }
}

/// `node=3,python=2`.
fn parse_counts(s: &str) -> Result<BTreeMap<RuntimeKind, usize>, String> {
    let mut out = BTreeMap::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (rt, n) = part
            .split_once('=')
            .ok_or_else(|| format!("expected runtime=count, got `{part}`"))?;
        let rt = RuntimeKind::parse(rt).ok_or_else(|| format!("unknown runtime `{rt}`"))?;
        let n: usize = n
            .trim()
            .parse()
            .map_err(|_| format!("expected a count for {rt}, got `{n}`"))?;
        if !(1..=64).contains(&n) {
            return Err(format!("daemon count for {rt} must be 1..64, got {n}"));
        }
        out.insert(rt, n);
    }
    Ok(out)
}

impl Settings {
    /// Resolve settings from flags, an environment lookup and the project file.
    pub fn resolve(
        overrides: &Overrides,
        env: &dyn Fn(&str) -> Option<String>,
        cwd: &Path,
    ) -> Result<Settings, ConfigError> {
        let env_err = |name: &str, message: String| ConfigError {
            code: "config.invalid_env",
            file: PathBuf::from(format!("${name}")),
            field: None,
            message,
        };
        let config_file = overrides.config_file.as_ref().map(|f| cwd.join(f));
        let project_dir = match (&overrides.dir, &config_file) {
            (Some(d), _) if d.is_absolute() => d.clone(),
            (Some(d), _) => cwd.join(d),
            // `--config other/fastfn.json` without DIR: the project is the file's folder.
            (None, Some(f)) => f.parent().map(Path::to_path_buf).unwrap_or_else(|| cwd.to_path_buf()),
            (None, None) => cwd.to_path_buf(),
        };
        if let Some(f) = config_file.as_ref().filter(|f| !f.is_file()) {
            return Err(ConfigError {
                code: "config.missing_file",
                file: f.clone(),
                field: None,
                message: "config file not found (--config)".into(),
            });
        }
        if !project_dir.is_dir() {
            return Err(ConfigError {
                code: "config.missing_dir",
                file: project_dir.clone(),
                field: None,
                message: "no such folder".into(),
            });
        }
        let file = load_project_file(&project_dir, config_file.as_deref())?;
        let file_path = file.path.clone().unwrap_or_else(|| project_dir.join("fastfn.json"));
        let field_err = |field: &str, message: String| ConfigError {
            code: "config.invalid_field",
            file: file_path.clone(),
            field: Some(field.to_string()),
            message,
        };
        let file_bool = |key: &str| -> Result<Option<bool>, ConfigError> {
            match file.keys.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Bool(b)) => Ok(Some(*b)),
                Some(Value::String(s)) => parse_bool(s)
                    .map(Some)
                    .ok_or_else(|| field_err(key, format!("expected true or false, got \"{s}\""))),
                Some(v) => Err(field_err(key, format!("expected true or false, got {v}"))),
            }
        };
        let env_bool = |name: &str| -> Result<Option<bool>, ConfigError> {
            match env(name) {
                None => Ok(None),
                Some(s) => parse_bool(&s)
                    .map(Some)
                    .ok_or_else(|| env_err(name, format!("expected 0 or 1, got `{s}`"))),
            }
        };

        // Functions root: DIR (+ functions-dir) > FN_FUNCTIONS_ROOT > project dir.
        let functions_dir = match file.keys.get("functions-dir") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(v) => return Err(field_err("functions-dir", format!("expected a folder name, got {v}"))),
        };
        let root = match (&functions_dir, &overrides.dir, env("FN_FUNCTIONS_ROOT")) {
            (Some(f), _, _) => project_dir.join(f),
            (None, None, Some(r)) => cwd.join(r),
            _ => project_dir.clone(),
        };
        let functions_root = root.canonicalize().map_err(|e| ConfigError {
            code: "config.missing_dir",
            file: root.clone(),
            field: functions_dir.as_ref().map(|_| "functions-dir".to_string()),
            message: format!("functions root not found: {e}"),
        })?;

        let host = overrides
            .host
            .clone()
            .or_else(|| env("FN_HOST"))
            .unwrap_or_else(|| defaults::HOST.to_string());
        let port = match (overrides.port, env("FN_HOST_PORT")) {
            (Some(p), _) => p,
            (None, Some(p)) => p
                .trim()
                .parse()
                .map_err(|_| env_err("FN_HOST_PORT", format!("expected a port number, got `{p}`")))?,
            (None, None) => defaults::PORT,
        };

        let runtimes = match env("FN_RUNTIMES") {
            Some(list) if !list.trim().is_empty() => {
                let mut out = Vec::new();
                for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    let rt = RuntimeKind::parse(name).ok_or_else(|| {
                        env_err(
                            "FN_RUNTIMES",
                            format!("unknown runtime `{name}` (known: node, python, php, lua, rust, go)"),
                        )
                    })?;
                    if !out.contains(&rt) {
                        out.push(rt);
                    }
                }
                out
            }
            _ => RuntimeKind::DEFAULT_ORDER.to_vec(),
        };

        let force_url = overrides
            .force_url
            .filter(|f| *f)
            .or(env_bool("FN_FORCE_URL")?)
            .or(file_bool("force-url")?)
            .unwrap_or(false);
        let hot_reload = overrides
            .hot_reload
            .or(env_bool("FN_HOT_RELOAD")?)
            .or(file_bool("hot-reload")?)
            .unwrap_or(true);

        // The original's watcher knobs: seconds (fractions allowed) or milliseconds.
        let env_secs = |name: &str, min: f64| -> Result<Option<Duration>, ConfigError> {
            match env(name).filter(|s| !s.trim().is_empty()) {
                None => Ok(None),
                Some(s) => match s.trim().parse::<f64>() {
                    Ok(v) if v.is_finite() && v >= min => Ok(Some(Duration::from_secs_f64(v))),
                    _ => Err(env_err(
                        name,
                        format!("expected a number of seconds ≥ {min}, got `{s}`"),
                    )),
                },
            }
        };
        let hot_reload_tuning =
            HotReloadTuning {
                watchdog: env_bool("FN_HOT_RELOAD_WATCHDOG")?.unwrap_or(true),
                poll: env_secs("FN_HOT_RELOAD_WATCHDOG_POLL", 0.01)?.unwrap_or(defaults::WATCH_POLL),
                debounce: match env("FN_HOT_RELOAD_DEBOUNCE_MS").filter(|s| !s.trim().is_empty()) {
                    None => defaults::WATCH_QUIET,
                    Some(s) => Duration::from_millis(s.trim().parse::<u64>().map_err(|_| {
                        env_err("FN_HOT_RELOAD_DEBOUNCE_MS", format!("expected milliseconds, got `{s}`"))
                    })?),
                },
                interval: env_secs("FN_HOT_RELOAD_INTERVAL", 1.0)?.unwrap_or(defaults::HOT_RELOAD_INTERVAL),
            };

        let mut daemon_counts = match file.keys.get("runtime-daemons") {
            None | Some(Value::Null) => BTreeMap::new(),
            Some(Value::String(s)) => parse_counts(s).map_err(|m| field_err("runtime-daemons", m))?,
            Some(Value::Object(map)) => {
                let csv = map
                    .iter()
                    .map(|(k, v)| match v {
                        Value::Number(n) => Ok(format!("{k}={n}")),
                        Value::String(s) => Ok(format!("{k}={s}")),
                        other => Err(field_err(
                            &format!("runtime-daemons.{k}"),
                            format!("expected a count, got {other}"),
                        )),
                    })
                    .collect::<Result<Vec<_>, _>>()?
                    .join(",");
                parse_counts(&csv).map_err(|m| field_err("runtime-daemons", m))?
            }
            Some(v) => {
                return Err(field_err(
                    "runtime-daemons",
                    format!("expected {{\"node\":3}} or \"node=3,python=2\", got {v}"),
                ))
            }
        };
        if let Some(s) = env("FN_RUNTIME_DAEMONS") {
            daemon_counts.extend(parse_counts(&s).map_err(|m| env_err("FN_RUNTIME_DAEMONS", m))?);
        }

        let mut explicit_sockets = BTreeMap::new();
        if let Some(s) = env("FN_RUNTIME_SOCKETS").filter(|s| !s.trim().is_empty()) {
            let v: Value =
                serde_json::from_str(&s).map_err(|e| env_err("FN_RUNTIME_SOCKETS", format!("invalid JSON: {e}")))?;
            let Value::Object(map) = v else {
                return Err(env_err(
                    "FN_RUNTIME_SOCKETS",
                    "expected a JSON object of runtime → socket(s)".into(),
                ));
            };
            for (k, v) in map {
                let rt = RuntimeKind::parse(&k)
                    .ok_or_else(|| env_err("FN_RUNTIME_SOCKETS", format!("unknown runtime `{k}`")))?;
                let list: Vec<String> = match v {
                    Value::String(s) => vec![s],
                    Value::Array(a) => a.into_iter().filter_map(|x| x.as_str().map(String::from)).collect(),
                    other => {
                        return Err(env_err(
                            "FN_RUNTIME_SOCKETS",
                            format!("{k}: expected a string or an array, got {other}"),
                        ))
                    }
                };
                let paths = list
                    .iter()
                    .map(|s| PathBuf::from(s.strip_prefix("unix:").unwrap_or(s)))
                    .collect::<Vec<_>>();
                if !paths.is_empty() {
                    explicit_sockets.insert(rt, paths);
                }
            }
        }

        let file_binaries = match file.keys.get("runtime-binaries") {
            None | Some(Value::Null) => serde_json::Map::new(),
            Some(Value::Object(m)) => m.clone(),
            Some(v) => {
                return Err(field_err(
                    "runtime-binaries",
                    format!("expected an object like {{\"python\": \"python3.11\"}}, got {v}"),
                ))
            }
        };
        let mut binaries = BTreeMap::new();
        for (key, var, default) in BINARY_KEYS {
            let from_file = match file_binaries.get(key) {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s.clone()),
                Some(v) => {
                    return Err(field_err(
                        &format!("runtime-binaries.{key}"),
                        format!("expected one executable name, got {v}"),
                    ))
                }
            };
            binaries.insert(
                key,
                env(var)
                    .filter(|s| !s.is_empty())
                    .or(from_file)
                    .unwrap_or_else(|| default.to_string()),
            );
        }

        let socket_base_dir = PathBuf::from(
            env("FN_SOCKET_BASE_DIR")
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| defaults::SOCKET_BASE_DIR.into()),
        );
        let health_interval = match env("FN_HEALTH_INTERVAL") {
            None => Duration::from_secs_f64(defaults::HEALTH_INTERVAL_SECS),
            Some(s) => {
                let secs: f64 = s
                    .trim()
                    .parse()
                    .ok()
                    .filter(|v: &f64| *v > 0.0 && *v <= 3600.0)
                    .ok_or_else(|| {
                        env_err(
                            "FN_HEALTH_INTERVAL",
                            format!("expected seconds (0 < s ≤ 3600), got `{s}`"),
                        )
                    })?;
                Duration::from_secs_f64(secs)
            }
        };
        let namespace_depth = match env("FN_NAMESPACE_DEPTH") {
            None => defaults::NAMESPACE_DEPTH,
            Some(s) => s
                .trim()
                .parse()
                .ok()
                .filter(|d| (1..=5).contains(d))
                .ok_or_else(|| env_err("FN_NAMESPACE_DEPTH", format!("expected 1..5, got `{s}`")))?,
        };
        let ignore_dirs = env("FN_ZERO_CONFIG_IGNORE_DIRS")
            .map(|s| {
                s.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        let public_base_url = match (env("FN_PUBLIC_BASE_URL"), file.keys.get("public-base-url")) {
            (Some(s), _) if !s.trim().is_empty() => Some(s.trim().trim_end_matches('/').to_string()),
            (_, Some(Value::String(s))) if !s.trim().is_empty() => Some(s.trim().trim_end_matches('/').to_string()),
            _ => None,
        };
        // The original's spellings: `openapi-include-internal` (and its snake/camel forms, all
        // kebab here), `swagger-include-admin`, or `{"openapi": {"include-internal": …}}`.
        let mut include_internal_file = None;
        for key in ["swagger-include-admin", "openapi-include-internal"] {
            if let Some(b) = file_bool(key)? {
                include_internal_file = Some(b);
            }
        }
        if let Some(Value::Object(o)) = file.keys.get("openapi") {
            for (k, v) in o {
                if kebab(k) == "include-internal" {
                    include_internal_file = Some(match v {
                        Value::Bool(b) => *b,
                        Value::String(s) => parse_bool(s).ok_or_else(|| {
                            field_err(
                                "openapi.include-internal",
                                format!("expected true or false, got \"{s}\""),
                            )
                        })?,
                        v => {
                            return Err(field_err(
                                "openapi.include-internal",
                                format!("expected true or false, got {v}"),
                            ))
                        }
                    });
                }
            }
        }
        let openapi_include_internal = env_bool("FN_OPENAPI_INCLUDE_INTERNAL")?
            .or(include_internal_file)
            .unwrap_or(false);
        let env_count = |name: &str, default: u64| -> Result<u64, ConfigError> {
            match env(name).filter(|s| !s.trim().is_empty()) {
                None => Ok(default),
                Some(s) => s
                    .trim()
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| env_err(name, format!("expected a positive integer, got `{s}`"))),
            }
        };
        let policy_defaults = PolicyDefaults {
            timeout_ms: env_count("FN_DEFAULT_TIMEOUT_MS", defaults::TIMEOUT_MS)?,
            max_concurrency: env_count("FN_DEFAULT_MAX_CONCURRENCY", defaults::MAX_CONCURRENCY as u64)? as i64,
            max_body_bytes: env_count("FN_DEFAULT_MAX_BODY_BYTES", defaults::MAX_BODY_BYTES)?,
            strict_fs: env_bool("FN_STRICT_FS")?.unwrap_or(true),
        };
        let env_path = |name: &str| env(name).filter(|s| !s.trim().is_empty()).map(|s| cwd.join(s.trim()));
        let max_frame_bytes = match env("FN_MAX_FRAME_BYTES") {
            None => defaults::MAX_REQUEST_FRAME,
            Some(s) => s
                .trim()
                .parse()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| env_err("FN_MAX_FRAME_BYTES", format!("expected a byte count, got `{s}`")))?,
        };
        let positive = |name: &str, default: u64| -> Result<u64, ConfigError> {
            match env(name) {
                None => Ok(default),
                Some(s) => s
                    .trim()
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| env_err(name, format!("expected a positive integer, got `{s}`"))),
            }
        };
        let client_timeout = Duration::from_millis(positive("FN_CLIENT_TIMEOUT_MS", defaults::CLIENT_TIMEOUT_MS)?);
        let drain_timeout = Duration::from_millis(positive("FN_DRAIN_TIMEOUT_MS", defaults::DRAIN_TIMEOUT_MS)?);
        let runtime_connections = positive("FN_RUNTIME_CONNECTIONS", defaults::RUNTIME_CONNECTIONS as u64)? as usize;
        let max_connections = match env("FN_MAX_CONNECTIONS") {
            None => None,
            Some(_) => Some(positive("FN_MAX_CONNECTIONS", 1)? as usize),
        };

        let max_asset_bytes = match env("FN_MAX_ASSET_BYTES") {
            None => defaults::MAX_ASSET_BYTES,
            Some(s) => s
                .trim()
                .parse()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| env_err("FN_MAX_ASSET_BYTES", format!("expected a byte count, got `{s}`")))?,
        };

        Ok(Settings {
            inspect: crate::inspect::InspectSettings::from_env(env).map_err(|(name, msg)| env_err(name, msg))?,
            deps: crate::deps::Toggles::from_env(env),
            infer_backends_asked: ["FN_PY_INFER_BACKEND", "FN_NODE_INFER_BACKEND"]
                .into_iter()
                .filter_map(|k| Some((k, env(k)?.trim().to_string())))
                .filter(|(_, v)| !v.is_empty() && !v.eq_ignore_ascii_case("native"))
                .collect(),
            worker_pool_env_asked: WORKER_POOL_ENV
                .iter()
                .filter_map(|&k| Some((k, env(k)?.trim().to_string())))
                .filter(|(k, v)| {
                    // A pool switched off asks for nothing this build lacks.
                    let off =
                        k.ends_with("_POOL") && matches!(v.to_ascii_lowercase().as_str(), "0" | "false" | "off" | "no");
                    !(v.is_empty() || off)
                })
                .collect(),
            scheduler: crate::scheduler::Options::from_lookup(&functions_root, env),
            jobs: crate::jobs::JobSettings::from_env(env),
            max_asset_bytes,
            project_dir,
            functions_root,
            host,
            port,
            runtimes,
            force_url,
            hot_reload,
            hot_reload_tuning,
            daemon_counts,
            explicit_sockets,
            binaries,
            socket_base_dir,
            health_interval,
            ignore_dirs,
            namespace_depth,
            public_base_url,
            openapi_include_internal,
            admin_api_enabled: env_bool("FN_ADMIN_API_ENABLED")?.unwrap_or(true),
            docs_enabled: env_bool("FN_DOCS_ENABLED")?.unwrap_or(true),
            ui_enabled: env_bool("FN_UI_ENABLED")?.unwrap_or(false),
            console_api_enabled: env_bool("FN_CONSOLE_API_ENABLED")?.unwrap_or(true),
            console_local_only: env_bool("FN_CONSOLE_LOCAL_ONLY")?.unwrap_or(true),
            policy_defaults,
            runtime_log_file: env_path("FN_RUNTIME_LOG_FILE"),
            log_dir: env_path("FN_LOG_DIR"),
            admin_token: env("FN_ADMIN_TOKEN").filter(|s| !s.is_empty()),
            console: crate::manage::ConsoleSettings::from_env(env)?,
            home_function: env("FN_HOME_FUNCTION").filter(|s| !s.is_empty()),
            home_redirect: env("FN_HOME_REDIRECT").filter(|s| !s.is_empty()),
            max_frame_bytes,
            strict_fs_allow: env("FN_STRICT_FS_ALLOW").filter(|s| !s.trim().is_empty()),
            client_timeout,
            drain_timeout,
            runtime_connections,
            max_connections,
        })
    }

    /// Settings from the process environment.
    pub fn from_env(overrides: &Overrides) -> Result<Settings, ConfigError> {
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        Settings::resolve(overrides, &|k| std::env::var(k).ok(), &cwd)
    }

    /// Settings this build accepts but that change nothing, each said in one line (reported
    /// with discovery's warnings: CLI, `/_fn/health`, dashboard) rather than ignored in silence.
    pub fn warnings(&self) -> Vec<String> {
        self.daemon_counts
            .iter()
            .filter(|(rt, n)| **n != 1 && matches!(rt, RuntimeKind::Lua | RuntimeKind::Rust | RuntimeKind::Go))
            .map(|(rt, n)| {
                let how = if *rt == RuntimeKind::Lua {
                    "lua runs inside the engine"
                } else {
                    "each function runs as its own process (docs/compat.md)"
                };
                format!("runtime-daemons: {rt}={n} has no effect: {how}")
            })
            .chain(self.infer_backends_asked.iter().map(|(k, v)| {
                format!("{k}={v} is not supported by this build: imports are inferred by the native backend")
            }))
            .chain(self.worker_pool_env_asked.iter().map(|(k, v)| {
                format!(
                    "{k}={v} is not supported by this build: it has no per-function worker processes; handlers run in the runtime's shared daemons (docs/compat.md)"
                )
            }))
            .collect()
    }

    /// Number of daemons for a runtime (lua ignores counts).
    pub fn daemon_count(&self, rt: RuntimeKind) -> usize {
        if !rt.uses_daemons() {
            return 0;
        }
        self.explicit_sockets
            .get(&rt)
            .map(Vec::len)
            .or_else(|| self.daemon_counts.get(&rt).copied())
            .unwrap_or(1)
    }

    /// Binary for a runtime-binaries key (`python`, `node`, …).
    pub fn binary<'a>(&'a self, key: &'a str) -> &'a str {
        self.binaries.get(key).map(String::as_str).unwrap_or(key)
    }
}

/// The original's per-function worker-pool variables (its daemons read them; see
/// `Settings::worker_pool_env_asked`).
const WORKER_POOL_ENV: &[&str] = &[
    "FN_PY_RUNTIME_WORKER_POOL",
    "FN_NODE_RUNTIME_PROCESS_POOL",
    "FN_GO_RUNTIME_WORKER_POOL",
    "FN_RUST_RUNTIME_WORKER_POOL",
    "FN_PY_POOL_ACQUIRE_TIMEOUT_MS",
    "FN_PY_POOL_IDLE_TTL_MS",
    "FN_PY_POOL_REAPER_INTERVAL_MS",
    "FN_NODE_POOL_ACQUIRE_TIMEOUT_MS",
    "FN_NODE_POOL_IDLE_TTL_MS",
    "FN_NODE_POOL_REAPER_INTERVAL_MS",
    "FN_GO_POOL_ACQUIRE_TIMEOUT_MS",
    "FN_GO_POOL_IDLE_TTL_MS",
    "FN_GO_POOL_REAPER_INTERVAL_MS",
    "FN_RUST_POOL_ACQUIRE_TIMEOUT_MS",
    "FN_RUST_POOL_IDLE_TTL_MS",
    "FN_RUST_POOL_REAPER_INTERVAL_MS",
    "FN_PHP_POOL_IDLE_TTL_MS",
];

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn resolve(dir: &Path, vars: &[(&str, &str)], o: Overrides) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Settings::resolve(
            &Overrides {
                dir: Some(dir.to_path_buf()),
                ..o
            },
            &|k| map.get(k).cloned(),
            dir,
        )
    }

    #[test]
    fn defaults_apply_without_config() {
        let d = tempfile::tempdir().unwrap();
        let s = resolve(d.path(), &[], Overrides::default()).unwrap();
        assert_eq!((s.host.as_str(), s.port), ("127.0.0.1", 8080));
        assert_eq!(s.runtimes, RuntimeKind::DEFAULT_ORDER.to_vec());
        assert!(s.hot_reload && !s.force_url);
        assert_eq!(s.daemon_count(RuntimeKind::Python), 1);
        assert_eq!(s.daemon_count(RuntimeKind::Lua), 0);
        assert_eq!(s.binary("python"), "python3");
    }

    #[test]
    fn hot_reload_knobs_are_read_and_checked() {
        let d = tempfile::tempdir().unwrap();
        let s = resolve(d.path(), &[], Overrides::default()).unwrap();
        assert_eq!(s.hot_reload_tuning, HotReloadTuning::default());
        let s = resolve(
            d.path(),
            &[
                ("FN_HOT_RELOAD_WATCHDOG", "0"),
                ("FN_HOT_RELOAD_WATCHDOG_POLL", "0.5"),
                ("FN_HOT_RELOAD_DEBOUNCE_MS", "150"),
                ("FN_HOT_RELOAD_INTERVAL", "3"),
            ],
            Overrides::default(),
        )
        .unwrap();
        let t = s.hot_reload_tuning;
        assert!(!t.watchdog);
        assert_eq!(
            (t.poll, t.debounce, t.interval),
            (
                Duration::from_millis(500),
                Duration::from_millis(150),
                Duration::from_secs(3)
            )
        );
        for (name, bad) in [
            ("FN_HOT_RELOAD_DEBOUNCE_MS", "soon"),
            ("FN_HOT_RELOAD_INTERVAL", "0.2"),
            ("FN_HOT_RELOAD_WATCHDOG_POLL", "-1"),
            ("FN_HOT_RELOAD_WATCHDOG", "maybe"),
        ] {
            let e = resolve(d.path(), &[(name, bad)], Overrides::default()).unwrap_err();
            assert!(e.to_string().contains(name), "{name}={bad}: {e}");
        }
    }

    #[test]
    fn daemon_counts_that_change_nothing_are_warned_about() {
        let d = tempfile::tempdir().unwrap();
        let s = resolve(
            d.path(),
            &[("FN_RUNTIME_DAEMONS", "rust=3,python=2,lua=2,go=1")],
            Overrides::default(),
        )
        .unwrap();
        let w = s.warnings();
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].starts_with("runtime-daemons: lua=2 has no effect"), "{w:?}");
        assert!(w[1].starts_with("runtime-daemons: rust=3 has no effect"), "{w:?}");
        let quiet = resolve(d.path(), &[("FN_RUNTIME_DAEMONS", "python=3")], Overrides::default()).unwrap();
        assert!(quiet.warnings().is_empty());
    }

    #[test]
    fn inference_backends_other_than_native_are_warned_about() {
        let d = tempfile::tempdir().unwrap();
        let s = resolve(
            d.path(),
            &[("FN_PY_INFER_BACKEND", "pipreqs"), ("FN_NODE_INFER_BACKEND", "Native")],
            Overrides::default(),
        )
        .unwrap();
        assert_eq!(
            s.warnings(),
            ["FN_PY_INFER_BACKEND=pipreqs is not supported by this build: imports are inferred by the native backend"]
        );
    }

    #[test]
    fn worker_pool_variables_are_warned_about_unless_they_switch_a_pool_off() {
        let d = tempfile::tempdir().unwrap();
        let s = resolve(
            d.path(),
            &[
                ("FN_PY_RUNTIME_WORKER_POOL", "1"),
                ("FN_NODE_RUNTIME_PROCESS_POOL", "off"),
                ("FN_GO_RUNTIME_WORKER_POOL", "0"),
                ("FN_NODE_POOL_IDLE_TTL_MS", "1000"),
            ],
            Overrides::default(),
        )
        .unwrap();
        let w = s.warnings();
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(
            w[0].starts_with("FN_PY_RUNTIME_WORKER_POOL=1 is not supported by this build"),
            "{w:?}"
        );
        assert!(
            w[1].starts_with("FN_NODE_POOL_IDLE_TTL_MS=1000 is not supported"),
            "{w:?}"
        );
        let off = resolve(
            d.path(),
            &[("FN_RUST_RUNTIME_WORKER_POOL", "false")],
            Overrides::default(),
        )
        .unwrap();
        assert!(off.warnings().is_empty());
    }

    #[test]
    fn precedence_flags_over_env_over_file() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("fastfn.json"), r#"{"runtime_daemons": {"node": 2, "python": 2}, "hotReload": false, "runtime-binaries": {"python": "python3.11"}}"#).unwrap();
        let s = resolve(
            d.path(),
            &[("FN_RUNTIME_DAEMONS", "python=3"), ("FN_HOST_PORT", "9000")],
            Overrides::default(),
        )
        .unwrap();
        assert_eq!(s.daemon_count(RuntimeKind::Python), 3);
        assert_eq!(s.daemon_count(RuntimeKind::Node), 2);
        assert!(!s.hot_reload);
        assert_eq!(s.port, 9000);
        assert_eq!(s.binary("python"), "python3.11");
        let s = resolve(
            d.path(),
            &[
                ("FN_HOST_PORT", "9000"),
                ("FN_HOT_RELOAD", "1"),
                ("FN_PYTHON_BIN", "/opt/py"),
            ],
            Overrides {
                port: Some(7000),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(s.port, 7000);
        assert!(s.hot_reload);
        assert_eq!(s.binary("python"), "/opt/py");
    }

    #[test]
    fn explicit_sockets_win_over_counts() {
        let d = tempfile::tempdir().unwrap();
        let s = resolve(
            d.path(),
            &[
                ("FN_RUNTIME_DAEMONS", "node=4"),
                ("FN_RUNTIME_SOCKETS", r#"{"node": ["unix:/tmp/a.sock", "/tmp/b.sock"]}"#),
            ],
            Overrides::default(),
        )
        .unwrap();
        assert_eq!(s.daemon_count(RuntimeKind::Node), 2);
        assert_eq!(
            s.explicit_sockets[&RuntimeKind::Node],
            vec![PathBuf::from("/tmp/a.sock"), PathBuf::from("/tmp/b.sock")]
        );
    }

    #[test]
    fn runtime_order_is_kept_as_given() {
        let d = tempfile::tempdir().unwrap();
        let s = resolve(d.path(), &[("FN_RUNTIMES", "python, node,go")], Overrides::default()).unwrap();
        assert_eq!(
            s.runtimes,
            vec![RuntimeKind::Python, RuntimeKind::Node, RuntimeKind::Go]
        );
    }

    #[test]
    fn errors_name_the_file_and_field() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("fastfn.json"), r#"{"runtime-daemons": "node=x"}"#).unwrap();
        let e = resolve(d.path(), &[], Overrides::default()).unwrap_err();
        assert_eq!(e.code, "config.invalid_field");
        assert_eq!(e.field.as_deref(), Some("runtime-daemons"));
        assert!(
            e.to_string()
                .contains("fastfn.json (field `runtime-daemons`): expected a count for node, got `x`"),
            "{e}"
        );
        std::fs::write(d.path().join("fastfn.json"), "{\n  \"force-url\": tru }").unwrap();
        let e = resolve(d.path(), &[], Overrides::default()).unwrap_err();
        assert_eq!(e.code, "config.invalid_json");
        assert!(e.message.contains("line 2 column"), "{e}");
        let e = resolve(d.path().join("nope").as_path(), &[], Overrides::default()).unwrap_err();
        assert_eq!(e.code, "config.missing_dir");
        std::fs::remove_file(d.path().join("fastfn.json")).unwrap();
        let e = resolve(d.path(), &[("FN_RUNTIMES", "python,cobol")], Overrides::default()).unwrap_err();
        assert!(e.to_string().contains("unknown runtime `cobol`"), "{e}");
    }

    #[test]
    fn compat_settings_from_env_and_file() {
        let d = tempfile::tempdir().unwrap();
        let s = resolve(d.path(), &[], Overrides::default()).unwrap();
        assert_eq!(s.policy_defaults, PolicyDefaults::default());
        assert!(s.console_api_enabled && s.console_local_only && !s.openapi_include_internal);
        assert_eq!((s.public_base_url.as_deref(), s.log_dir.as_deref()), (None, None));
        std::fs::write(
            d.path().join("fastfn.json"),
            r#"{"publicBaseUrl": "https://file.example.com/", "openapi": {"include_internal": true}}"#,
        )
        .unwrap();
        let s = resolve(d.path(), &[], Overrides::default()).unwrap();
        assert_eq!(s.public_base_url.as_deref(), Some("https://file.example.com"));
        assert!(s.openapi_include_internal);
        let s = resolve(
            d.path(),
            &[
                ("FN_PUBLIC_BASE_URL", "https://env.example.com"),
                ("FN_OPENAPI_INCLUDE_INTERNAL", "0"),
                ("FN_DEFAULT_TIMEOUT_MS", "9000"),
                ("FN_DEFAULT_MAX_CONCURRENCY", "3"),
                ("FN_DEFAULT_MAX_BODY_BYTES", "100"),
                ("FN_CONSOLE_LOCAL_ONLY", "0"),
                ("FN_CONSOLE_API_ENABLED", "false"),
                ("FN_LOG_DIR", "logs"),
            ],
            Overrides::default(),
        )
        .unwrap();
        assert_eq!(s.public_base_url.as_deref(), Some("https://env.example.com"));
        assert!(!s.openapi_include_internal && !s.console_local_only && !s.console_api_enabled);
        assert_eq!(
            s.policy_defaults,
            PolicyDefaults {
                timeout_ms: 9000,
                max_concurrency: 3,
                max_body_bytes: 100,
                strict_fs: true,
            }
        );
        assert_eq!(s.log_dir, Some(d.path().join("logs")));
        let e = resolve(d.path(), &[("FN_DEFAULT_TIMEOUT_MS", "0")], Overrides::default()).unwrap_err();
        assert!(e.to_string().contains("FN_DEFAULT_TIMEOUT_MS"), "{e}");
        std::fs::write(d.path().join("fastfn.json"), r#"{"swagger_include_admin": true}"#).unwrap();
        assert!(
            resolve(d.path(), &[], Overrides::default())
                .unwrap()
                .openapi_include_internal
        );
    }

    #[test]
    fn config_flag_names_the_project_file() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("p/fns")).unwrap();
        std::fs::write(
            d.path().join("p/custom.json"),
            r#"{"functions-dir": "fns", "force-url": true}"#,
        )
        .unwrap();
        let o = Overrides {
            config_file: Some(PathBuf::from("p/custom.json")),
            ..Default::default()
        };
        let s = Settings::resolve(&o, &|_| None, d.path()).unwrap();
        assert_eq!(s.functions_root, d.path().join("p/fns").canonicalize().unwrap());
        assert!(s.force_url);
        let o = Overrides {
            config_file: Some(PathBuf::from("p/missing.json")),
            ..Default::default()
        };
        let e = Settings::resolve(&o, &|_| None, d.path()).unwrap_err();
        assert_eq!(e.code, "config.missing_file");
        assert!(e.to_string().contains("missing.json"), "{e}");
    }

    #[test]
    fn functions_dir_and_toml() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("functions")).unwrap();
        std::fs::write(
            d.path().join("fastfn.toml"),
            "functions-dir = \"functions\"\nforce_url = true\n",
        )
        .unwrap();
        let s = resolve(d.path(), &[], Overrides::default()).unwrap();
        assert_eq!(s.functions_root, d.path().join("functions").canonicalize().unwrap());
        assert!(s.force_url);
    }
}
