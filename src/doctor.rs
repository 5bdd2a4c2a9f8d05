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
    /// The domain a `doctor domains` check is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
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
            domain: None,
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
        &DiscoveryOptions::for_settings(&settings, &available),
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
    finish_scope("general", checks)
}

fn finish_scope(scope: &'static str, checks: Vec<Check>) -> Report {
    let mut summary = Summary::default();
    for c in &checks {
        match c.status {
            Status::Ok => summary.ok += 1,
            Status::Warn => summary.warn += 1,
            Status::Fail => summary.fail += 1,
        }
    }
    Report {
        scope,
        generated_at: crate::logs::rfc3339(crate::clock::epoch_millis() / 1000),
        checks,
        summary,
    }
}

pub fn run(dir: Option<PathBuf>, config: Option<PathBuf>, json: bool, fix: bool) -> ExitCode {
    print_report(&report(dir, config, fix), json)
}

/// Print a report as the original does (text or JSON); exit 1 when a check failed.
fn print_report(report: &Report, json: bool) -> ExitCode {
    if json {
        println!("{}", serde_json::to_string_pretty(report).unwrap_or_default());
    } else {
        println!("FastFN Doctor ({})", report.scope);
        for c in &report.checks {
            let prefix = match c.status {
                Status::Ok => "[OK]",
                Status::Warn => "[WARN]",
                Status::Fail => "[FAIL]",
            };
            let target = c.domain.as_deref().map(|d| format!("[{d}] ")).unwrap_or_default();
            println!("{prefix} {target}{}: {}", c.id, c.message);
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

/// One domain for `doctor domains`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainTarget {
    pub domain: String,
    pub expected_target: Option<String>,
    pub enforce_https: bool,
}

fn normalize_domain(raw: &str) -> String {
    raw.trim().to_ascii_lowercase().trim_end_matches('.').to_string()
}

/// The original's rule: 2+ labels of letters, digits and inner hyphens, 1..63 bytes each.
fn valid_domain(d: &str) -> bool {
    let labels: Vec<&str> = d.split('.').collect();
    !d.is_empty()
        && d.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

/// `--domain` values, else the `domains` of the project file (strings or
/// `{domain, expected-target, enforce-https}` objects).
fn domain_targets(
    flags: &[String],
    expected: Option<&str>,
    enforce_https: bool,
    config: Option<&Path>,
) -> Result<Vec<DomainTarget>, String> {
    let expected = expected.map(str::trim).filter(|e| !e.is_empty()).map(str::to_string);
    if !flags.is_empty() {
        let out: Vec<DomainTarget> = flags
            .iter()
            .map(|d| normalize_domain(d))
            .filter(|d| !d.is_empty())
            .map(|domain| DomainTarget {
                domain,
                expected_target: expected.clone(),
                enforce_https,
            })
            .collect();
        return if out.is_empty() {
            Err("no valid --domain values provided".into())
        } else {
            Ok(out)
        };
    }
    let path = config
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("fastfn.json"));
    let file: serde_json::Value = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    let one = |v: &serde_json::Value| -> Result<DomainTarget, String> {
        let get = |keys: &[&str]| keys.iter().find_map(|k| v.get(*k)).cloned();
        match v {
            serde_json::Value::String(s) => Ok(DomainTarget {
                domain: normalize_domain(s),
                expected_target: expected.clone(),
                enforce_https: true,
            }),
            serde_json::Value::Object(_) => Ok(DomainTarget {
                domain: get(&["domain", "host", "name"])
                    .and_then(|d| d.as_str().map(normalize_domain))
                    .ok_or("a domain entry needs `domain`")?,
                expected_target: expected.clone().or_else(|| {
                    get(&["expected-target", "expected_target", "expectedTarget", "target"])
                        .and_then(|t| t.as_str().map(str::to_string))
                }),
                enforce_https: get(&["enforce-https", "enforce_https", "enforceHttps"])
                    .and_then(|b| b.as_bool())
                    .unwrap_or(true),
            }),
            _ => Err("domains must be an array or string".into()),
        }
    };
    let targets = match file.get("domains") {
        None | Some(serde_json::Value::Null) => Vec::new(),
        Some(serde_json::Value::Array(a)) => a.iter().map(one).collect::<Result<Vec<_>, _>>()?,
        Some(v) => vec![one(v)?],
    };
    if targets.is_empty() {
        return Err("no domains configured. use --domain or set domains in fastfn.json".into());
    }
    Ok(targets)
}

/// `GET <path>` over plain HTTP on port 80: status and `Location`.
fn http_probe(domain: &str, path: &str) -> Result<(u16, Option<String>), String> {
    use std::io::{Read, Write};
    use std::net::ToSocketAddrs;
    let timeout = std::time::Duration::from_secs(8);
    let addr = (domain, 80)
        .to_socket_addrs()
        .map_err(|e| e.to_string())?
        .next()
        .ok_or("no address")?;
    let mut s = std::net::TcpStream::connect_timeout(&addr, timeout).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: {domain}\r\nUser-Agent: fastfn-doctor\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 65536 {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(e) => return Err(e.to_string()),
        }
    }
    let text = String::from_utf8_lossy(&head);
    let status = text
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or("no HTTP status line")?;
    let location = text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case("location").then(|| v.trim().to_string())
    });
    Ok((status, location))
}

/// `fastfn doctor domains`: per domain, its format, DNS, the expected target, and the plain
/// HTTP side (redirect to HTTPS, the ACME challenge path). TLS and HTTPS are not probed (this
/// build has no TLS client): those checks say so as `WARN`.
pub fn domain_report(targets: &[DomainTarget]) -> Report {
    use std::net::ToSocketAddrs;
    let mut checks = Vec::new();
    for t in targets {
        let d = &t.domain;
        let mut push = |c: Check| {
            checks.push(Check {
                domain: Some(d.clone()),
                ..c
            })
        };
        if !valid_domain(d) {
            push(
                Check::new("domain.format", Status::Fail, "Invalid domain format")
                    .hint("Use a valid host like api.example.com (letters, digits, hyphens, dots)"),
            );
            continue;
        }
        push(Check::new("domain.format", Status::Ok, "Domain format is valid"));
        let addrs: Vec<std::net::IpAddr> = match (d.as_str(), 443).to_socket_addrs() {
            Ok(a) => a.map(|a| a.ip()).collect(),
            Err(e) => {
                push(
                    Check::new("dns.resolve", Status::Fail, format!("DNS resolution failed: {e}"))
                        .hint("Check DNS A/AAAA/CNAME records"),
                );
                Vec::new()
            }
        };
        let list = addrs.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(", ");
        if !addrs.is_empty() {
            push(Check::new("dns.resolve", Status::Ok, "DNS resolution succeeded").detail("addresses", list.clone()));
        }
        if let Some(expected) = t.expected_target.as_deref().map(normalize_domain) {
            // No CNAME lookup without a DNS client: a host name matches when it resolves to
            // one of the domain's addresses.
            let want: Vec<std::net::IpAddr> = match expected.parse() {
                Ok(ip) => vec![ip],
                Err(_) => (expected.as_str(), 443)
                    .to_socket_addrs()
                    .map(|a| a.map(|a| a.ip()).collect())
                    .unwrap_or_default(),
            };
            push(if want.iter().any(|w| addrs.contains(w)) {
                Check::new(
                    "dns.target",
                    Status::Ok,
                    format!("Domain matches expected target {expected}"),
                )
            } else {
                Check::new(
                    "dns.target",
                    Status::Fail,
                    format!("Domain does not match expected target {expected}"),
                )
                .hint("Validate DNS records and provider proxy settings")
                .detail("addresses", list.clone())
            });
        }
        for id in ["tls.handshake", "https.reachability"] {
            push(
                Check::new(id, Status::Warn, "Not checked: this build has no TLS client")
                    .hint(format!("Check with: curl -sSI https://{d}/")),
            );
        }
        push(match http_probe(d, "/") {
            Err(e) => Check::new(
                "http.redirect",
                if t.enforce_https { Status::Fail } else { Status::Warn },
                format!("HTTP probe failed: {e}"),
            )
            .hint("Check port 80 routing and redirect rules"),
            Ok((status, location)) => {
                let https = location
                    .as_deref()
                    .is_some_and(|l| l.to_ascii_lowercase().starts_with("https://"));
                let (st, msg) = match (t.enforce_https, https) {
                    (false, _) => (Status::Ok, "HTTP endpoint reachable"),
                    (true, true) => (Status::Ok, "HTTP redirects to HTTPS"),
                    (true, false) => (Status::Warn, "HTTP does not redirect to HTTPS"),
                };
                Check::new("http.redirect", st, msg)
                    .detail("status", status.to_string())
                    .detail("location", location.unwrap_or_default())
            }
        });
        push(match http_probe(d, "/.well-known/acme-challenge/fastfn-doctor-probe") {
            Err(e) => Check::new("acme.challenge", Status::Warn, format!("ACME path probe failed: {e}"))
                .hint("Check firewall/WAF and HTTP path handling for ACME challenges"),
            Ok((status, _)) => Check::new(
                "acme.challenge",
                if status >= 500 { Status::Fail } else { Status::Ok },
                format!("ACME path responded with status {status}"),
            ),
        });
    }
    finish_scope("domains", checks)
}

/// `fastfn doctor domains [--domain D]... [--expected-target T] [--enforce-https B] [--json]`.
pub fn run_domains(
    domains: &[String],
    expected: Option<&str>,
    enforce_https: bool,
    config: Option<&Path>,
    json: bool,
) -> ExitCode {
    match domain_targets(domains, expected, enforce_https, config) {
        Ok(targets) => print_report(&domain_report(&targets), json),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_format_follows_the_original() {
        for ok in ["api.example.com", "a-b.c0", "127.0.0.1"] {
            assert!(valid_domain(ok), "{ok}");
        }
        for bad in ["localhost", "*.example.com", "a_b.com", "-a.com", "a..com", ""] {
            assert!(!valid_domain(bad), "{bad}");
        }
        assert_eq!(normalize_domain(" API.Example.com. "), "api.example.com");
    }

    #[test]
    fn domains_come_from_flags_or_the_project_file() {
        let t = domain_targets(&["A.example.com".into()], Some("1.2.3.4"), false, None).unwrap();
        assert_eq!(
            t,
            vec![DomainTarget {
                domain: "a.example.com".into(),
                expected_target: Some("1.2.3.4".into()),
                enforce_https: false
            }]
        );
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("fastfn.json");
        std::fs::write(
            &f,
            r#"{"domains": ["x.example.com", {"domain": "y.example.com", "enforce-https": false}]}"#,
        )
        .unwrap();
        let t = domain_targets(&[], None, true, Some(&f)).unwrap();
        assert_eq!(t.len(), 2);
        assert!(t[0].enforce_https && !t[1].enforce_https);
        std::fs::write(&f, "{}").unwrap();
        assert!(domain_targets(&[], None, true, Some(&f))
            .unwrap_err()
            .contains("no domains configured"));
    }

    #[test]
    fn a_bad_domain_fails_without_probing() {
        let r = domain_report(&[DomainTarget {
            domain: "not_a_domain".into(),
            expected_target: None,
            enforce_https: true,
        }]);
        assert_eq!(r.scope, "domains");
        assert_eq!(r.checks.len(), 1);
        assert_eq!((r.checks[0].id, r.checks[0].status), ("domain.format", Status::Fail));
        assert_eq!(r.summary.fail, 1);
    }
}
