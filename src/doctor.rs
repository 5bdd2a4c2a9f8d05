//! `fastfn doctor`: checks host tools, configuration, the port and discovery, and says what to
//! fix in one line each.

use crate::config::project::{Overrides, Settings};
use crate::discovery::{self, DiscoveryOptions};
use crate::runtime::RuntimeKind;
use serde::Serialize;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Serialize)]
pub struct Check {
    pub name: String,
    /// `ok`, `warn` or `fail`.
    pub status: &'static str,
    pub detail: String,
}

fn tool_version(bin: &str) -> Result<String, String> {
    let path = which::which(bin).map_err(|_| format!("`{bin}` not found on PATH"))?;
    let out = std::process::Command::new(&path)
        .arg("--version")
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
    Ok(format!("{} ({})", text, path.display()))
}

pub fn checks(dir: Option<PathBuf>) -> Vec<Check> {
    let mut out = Vec::new();
    let mut push = |name: &str, status: &'static str, detail: String| {
        out.push(Check {
            name: name.into(),
            status,
            detail,
        })
    };
    let settings = match Settings::from_env(&Overrides {
        dir,
        ..Default::default()
    }) {
        Ok(s) => {
            push("config", "ok", format!("functions root {}", s.functions_root.display()));
            s
        }
        Err(e) => {
            push("config", "fail", e.to_string());
            return out;
        }
    };
    let mut available = Vec::new();
    for &rt in &settings.runtimes {
        if rt == RuntimeKind::Lua {
            if crate::engine::LUA_IN_BUILD {
                available.push(rt);
                push("runtime lua", "ok", "in-process (built in)".into());
            } else {
                push("runtime lua", "warn", "not available in this build yet".into());
            }
            continue;
        }
        let bin = settings.binary(crate::engine::binary_key(rt));
        match tool_version(bin) {
            Ok(v) => {
                available.push(rt);
                push(&format!("runtime {rt}"), "ok", v)
            }
            Err(e) => push(
                &format!("runtime {rt}"),
                "warn",
                format!("{e}: {rt} functions will not be served"),
            ),
        }
    }
    match std::net::TcpListener::bind((settings.host.as_str(), settings.port)) {
        Ok(_) => push("port", "ok", format!("{}:{} is free", settings.host, settings.port)),
        Err(e) => push(
            "port",
            "fail",
            format!(
                "{}:{} cannot be used: {e} (choose another with --port or FN_HOST_PORT)",
                settings.host, settings.port
            ),
        ),
    }
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
    push(
        "discovery",
        if routes == 0 { "warn" } else { "ok" },
        format!(
            "{routes} route(s), {} conflict(s), {} shadowed",
            d.routes.conflicts().len(),
            d.routes.shadowed().len()
        ),
    );
    for e in &d.errors {
        push("discovery", "fail", e.to_string());
    }
    for w in &d.warnings {
        push("discovery", "warn", w.clone());
    }
    out
}

pub fn run(dir: Option<PathBuf>, json: bool) -> ExitCode {
    let checks = checks(dir);
    let failed = checks.iter().any(|c| c.status == "fail");
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({"ok": !failed, "checks": checks})).unwrap_or_default()
        );
    } else {
        for c in &checks {
            let mark = match c.status {
                "ok" => "ok  ",
                "warn" => "warn",
                _ => "FAIL",
            };
            println!("[{mark}] {:<16} {}", c.name, c.detail);
        }
        println!("{}", if failed { "Some checks failed." } else { "Ready." });
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
