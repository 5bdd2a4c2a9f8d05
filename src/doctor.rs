//! `fastfn doctor` / `fastfn check`: host tools, project config, functions folder, discovery and
//! the port, reported in the original's schema (`cli/cmd/doctor.go`):
//! `{scope, generated_at, checks: [{id, status, message, hint?, details?}], summary}` with
//! statuses `OK`, `WARN`, `FAIL` and its check ids (`runtime.python`, `project.config`,
//! `project.functions_dir`, `project.discovery`, `project.port`, `system.platform`). Docker
//! and OpenResty checks are left out: this build runs neither. Exit status 1 when a check fails.

use crate::config::project::{Overrides, Settings};
use crate::discovery::{self, DiscoveryOptions};
use crate::runtime::RuntimeKind;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Status {
    #[serde(rename = "OK")]
    Ok,
    #[serde(rename = "WARN")]
    Warn,
    #[serde(rename = "FAIL")]
    Fail,
}

#[derive(Debug, Serialize)]
pub struct Check {
    pub id: &'static str,
    pub status: Status,
    pub message: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub hint: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub details: BTreeMap<&'static str, String>,
}

impl Check {
    fn new(id: &'static str, status: Status, message: impl Into<String>) -> Check {
        Check {
            id,
            status,
            message: message.into(),
            hint: String::new(),
            details: BTreeMap::new(),
        }
    }

    fn hint(mut self, hint: impl Into<String>) -> Check {
        self.hint = hint.into();
        self
    }

    fn detail(mut self, key: &'static str, value: impl Into<String>) -> Check {
        self.details.insert(key, value.into());
        self
    }
}

#[derive(Debug, Default, Serialize)]
pub struct Summary {
    pub ok: usize,
    pub warn: usize,
    pub fail: usize,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub scope: &'static str,
    pub generated_at: String,
    pub checks: Vec<Check>,
    pub summary: Summary,
}

/// `bin --version` (`go version`): path and first line of output.
fn probe(bin: &str, args: &[&str]) -> Result<(PathBuf, String), String> {
    let path = which::which(bin).map_err(|e| e.to_string())?;
    let out = std::process::Command::new(&path)
        .args(args)
        .output()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let text = String::from_utf8_lossy(if out.stdout.is_empty() {
        &out.stderr
    } else {
        &out.stdout
    })
    .lines()
    .next()
    .unwrap_or("")
    .trim()
    .to_string();
    Ok((path, text))
}

fn runtime_check(settings: &Settings, rt: RuntimeKind) -> Check {
    let id = match rt {
        RuntimeKind::Python => "runtime.python",
        RuntimeKind::Node => "runtime.node",
        RuntimeKind::Php => "runtime.php",
        RuntimeKind::Lua => "runtime.lua",
        RuntimeKind::Rust => "runtime.rust",
        RuntimeKind::Go => "runtime.go",
    };
    let label = match rt {
        RuntimeKind::Python => "Python runtime",
        RuntimeKind::Node => "Node runtime",
        RuntimeKind::Php => "PHP runtime",
        RuntimeKind::Lua => "Lua runtime",
        RuntimeKind::Rust => "Rust toolchain (cargo)",
        RuntimeKind::Go => "Go runtime",
    };
    if rt == RuntimeKind::Lua {
        return if crate::engine::LUA_IN_BUILD {
            Check::new(id, Status::Ok, "Lua runtime available (in-process, built in)")
        } else {
            Check::new(id, Status::Warn, "Lua runtime not in this build")
        };
    }
    let key = crate::engine::binary_key(rt);
    let bin = settings.binary(key);
    let version_args: &[&str] = if rt == RuntimeKind::Go {
        &["version"]
    } else {
        &["--version"]
    };
    match probe(bin, version_args) {
        Ok((path, version)) => Check::new(id, Status::Ok, format!("{label} available"))
            .detail("path", path.display().to_string())
            .detail("version", version),
        Err(e) => {
            let var = crate::config::project::BINARY_KEYS
                .iter()
                .find(|(k, _, _)| *k == key)
                .map(|(_, var, _)| *var)
                .unwrap_or("");
            Check::new(
                id,
                Status::Warn,
                format!("{label} not found in PATH ({bin}): {rt} functions will not be served"),
            )
            .hint(format!("Install {bin} or set {var} to its path"))
            .detail("error", e)
        }
    }
}

fn platform_check() -> Check {
    let (os, arch) = (std::env::consts::OS, std::env::consts::ARCH);
    if matches!(os, "linux" | "macos") && matches!(arch, "x86_64" | "aarch64") {
        Check::new(
            "system.platform",
            Status::Ok,
            format!("Platform supported ({os}/{arch})"),
        )
    } else {
        Check::new(
            "system.platform",
            Status::Warn,
            format!("Platform not in primary support matrix ({os}/{arch})"),
        )
        .hint("Preferred platforms: linux/macos with x86_64/aarch64")
    }
}

/// `project.config` (and `project.config.fix` when `--fix` created the file).
fn config_checks(project: &Path, explicit: Option<&Path>, fix: bool, out: &mut Vec<Check>) {
    let found = match explicit {
        Some(f) => f.is_file().then(|| f.to_path_buf()),
        None => ["fastfn.json", "fastfn.toml"]
            .iter()
            .map(|n| project.join(n))
            .find(|p| p.is_file()),
    };
    let Some(path) = found else {
        if let Some(f) = explicit {
            out.push(
                Check::new(
                    "project.config",
                    Status::Fail,
                    format!("Config file not found: {}", f.display()),
                )
                .hint("Fix the --config path"),
            );
            return;
        }
        if !fix {
            out.push(
                Check::new("project.config", Status::Warn, "No fastfn.json found")
                    .hint("Create fastfn.json to define functions-dir (fastfn doctor --fix writes a starter one)"),
            );
            return;
        }
        let target = project.join("fastfn.json");
        match std::fs::write(&target, "{\n  \"functions-dir\": \".\"\n}\n") {
            Ok(()) => {
                out.push(
                    Check::new("project.config", Status::Ok, "fastfn.json created")
                        .detail("path", target.display().to_string()),
                );
                out.push(Check::new(
                    "project.config.fix",
                    Status::Ok,
                    "Applied safe fix: created fastfn.json with default functions-dir",
                ));
            }
            Err(e) => out.push(
                Check::new("project.config", Status::Fail, "Failed to auto-create fastfn.json")
                    .detail("error", e.to_string()),
            ),
        }
        return;
    };
    if path.extension().is_some_and(|e| e == "toml") {
        out.push(
            Check::new(
                "project.config",
                Status::Warn,
                format!("Using fallback config file {}", path.display()),
            )
            .hint("Prefer fastfn.json to avoid format ambiguity"),
        );
        return;
    }
    let parsed = std::fs::read_to_string(&path)
        .map_err(|e| e.to_string())
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).map_err(|e| e.to_string()));
    out.push(match parsed {
        Ok(v) if v.is_object() => Check::new(
            "project.config",
            Status::Ok,
            format!("Config file valid: {}", path.display()),
        ),
        Ok(_) => Check::new(
            "project.config",
            Status::Fail,
            format!("Invalid config in {}: expected a JSON object", path.display()),
        ),
        Err(e) => Check::new(
            "project.config",
            Status::Fail,
            format!("Invalid JSON in {}", path.display()),
        )
        .detail("error", e),
    });
}

/// Every general check, in the original's order (runtimes, platform, config, functions
/// folder, discovery, port).
pub fn report(dir: Option<PathBuf>, config: Option<PathBuf>, fix: bool) -> Report {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let explicit = config.as_ref().map(|f| cwd.join(f));
    let project = match (&dir, &explicit) {
        (Some(d), _) => cwd.join(d),
        (None, Some(f)) => f.parent().map(Path::to_path_buf).unwrap_or_else(|| cwd.clone()),
        (None, None) => cwd.clone(),
    };
    let mut checks = Vec::new();
    // Config first in time (a `--fix` must exist before settings are read), listed later.
    let mut config_part = Vec::new();
    if project.is_dir() {
        config_checks(&project, explicit.as_deref(), fix, &mut config_part);
    }
    let overrides = Overrides {
        dir,
        config_file: config,
        ..Default::default()
    };
    let settings = Settings::from_env(&overrides);
    let fallback;
    let s = match &settings {
        Ok(s) => s,
        Err(_) => {
            // Runtime checks still run, on default binaries.
            fallback = Settings::from_env(&Overrides::default()).ok();
            match &fallback {
                Some(s) => s,
                None => {
                    checks.extend(config_part);
                    return finish(checks);
                }
            }
        }
    };
    for &rt in &s.runtimes {
        checks.push(runtime_check(s, rt));
    }
    checks.push(platform_check());
    checks.extend(config_part);
    let settings = match settings {
        Ok(s) => s,
        Err(e) => {
            let hint = "Fix invalid project paths or configs before running fastfn dev/run";
            let fails_config = checks
                .iter()
                .any(|c| c.id == "project.config" && c.status == Status::Fail);
            if !fails_config {
                checks.push(Check::new("project.functions_dir", Status::Fail, e.to_string()).hint(hint));
            }
            checks.push(Check::new(
                "project.discovery",
                Status::Warn,
                "Discovery skipped: the project settings do not load",
            ));
            return finish(checks);
        }
    };
    checks.push(Check::new(
        "project.functions_dir",
        Status::Ok,
        format!("functions-dir exists: {}", settings.functions_root.display()),
    ));
    let available: Vec<RuntimeKind> = settings
        .runtimes
        .iter()
        .copied()
        .filter(|rt| {
            checks
                .iter()
                .any(|c| c.status == Status::Ok && c.id.strip_prefix("runtime.") == Some(rt.name()))
        })
        .collect();
    let d = discovery::discover(
        &settings.functions_root,
        &DiscoveryOptions {
            runtimes: available,
            force_url: settings.force_url,
            extra_ignore_dirs: settings.ignore_dirs.clone(),
            namespace_depth: settings.namespace_depth,
            policy_defaults: settings.policy_defaults,
        },
    );
    let routes = d.routes.routes().len();
    let conflicts = d.routes.conflicts();
    checks.push(if !d.errors.is_empty() {
        Check::new(
            "project.discovery",
            Status::Fail,
            format!("Function discovery failed: {}", d.errors[0]),
        )
        .hint("Fix invalid project paths or configs before running fastfn dev/run")
        .detail(
            "errors",
            d.errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join(" | "),
        )
    } else if !conflicts.is_empty() {
        Check::new(
            "project.discovery",
            Status::Warn,
            format!("Discovery found {} route conflict(s)", conflicts.len()),
        )
        .hint("Rename one of the conflicting routes")
        .detail("conflicts", conflicts.iter().cloned().collect::<Vec<_>>().join(" | "))
    } else {
        let mut c = Check::new(
            "project.discovery",
            Status::Ok,
            format!("Function discovery completed without route conflicts ({routes} route(s))"),
        );
        if !d.warnings.is_empty() {
            c = c.detail("warnings", d.warnings.join(" | "));
        }
        c
    });
    checks.push(
        match std::net::TcpListener::bind((settings.host.as_str(), settings.port)) {
            Ok(_) => Check::new(
                "project.port",
                Status::Ok,
                format!("Port {} is available", settings.port),
            ),
            Err(e) => Check::new(
                "project.port",
                Status::Warn,
                format!("Port {} is already in use ({e})", settings.port),
            )
            .hint("Set FN_HOST_PORT (or --port) to a free port before running fastfn dev/run"),
        },
    );
    finish(checks)
}

fn finish(checks: Vec<Check>) -> Report {
    let mut summary = Summary::default();
    for c in &checks {
        match c.status {
            Status::Ok => summary.ok += 1,
            Status::Warn => summary.warn += 1,
            Status::Fail => summary.fail += 1,
        }
    }
    Report {
        scope: "general",
        generated_at: crate::logs::rfc3339(crate::clock::epoch_millis() / 1000),
        checks,
        summary,
    }
}

pub fn run(dir: Option<PathBuf>, config: Option<PathBuf>, json: bool, fix: bool) -> ExitCode {
    let report = report(dir, config, fix);
    if json {
        println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
    } else {
        println!("FastFN Doctor ({})", report.scope);
        for c in &report.checks {
            let prefix = match c.status {
                Status::Ok => "[OK]",
                Status::Warn => "[WARN]",
                Status::Fail => "[FAIL]",
            };
            println!("{prefix} {}: {}", c.id, c.message);
            if !c.hint.is_empty() {
                println!("  hint: {}", c.hint);
            }
            for (k, v) in &c.details {
                println!("  {k}: {v}");
            }
        }
        let s = &report.summary;
        println!("Summary: OK={} WARN={} FAIL={}", s.ok, s.warn, s.fail);
    }
    if report.summary.fail > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
