//! What goes into a compiled function's build, decided from the files alone (no toolchain):
//! which files it is made of (so a change to any of them rebuilds it), which Go helper files
//! are compiled with the handler, the Go handler's symbol, the function's own `go.mod` made
//! buildable by the local Go, the generated crate's `Cargo.toml` with the function's own
//! dependencies, and the build timeout.

use super::RuntimeKind;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Default upper bound of one build (contract §3.1: rust/go `timeout_ms` is at least 180000).
pub const DEFAULT_BUILD_TIMEOUT: Duration = Duration::from_secs(180);

/// Files and folders whose change means "rebuild": the handler, its helpers and manifests.
/// Folders are listed because adding or removing a helper changes them (not their files).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sources {
    pub dirs: Vec<PathBuf>,
    pub files: Vec<PathBuf>,
}

/// Names of a file route (`get.x`, `[id]`, `index`, `handler`, `main`…): never a Go helper.
pub fn is_route_stem(stem: &str) -> bool {
    if stem.contains('[') && stem.contains(']') {
        return true;
    }
    let tokens: Vec<&str> = stem.split('.').filter(|t| !t.is_empty()).collect();
    let Some(first) = tokens.first() else {
        return false;
    };
    if ["get", "post", "put", "patch", "delete"].contains(first) {
        return true;
    }
    tokens.iter().any(|t| ["index", "handler", "main"].contains(t))
}

/// A folder that is one function (an entry file or an `entrypoint` in `fn.config.json`).
fn single_entry_dir(dir: &Path, kind: RuntimeKind) -> bool {
    let names: &[&str] = match kind {
        RuntimeKind::Go => &["handler.go", "main.go"],
        _ => &["handler.rs", "lib.rs", "src/lib.rs"],
    };
    if names.iter().any(|n| dir.join(n).is_file()) {
        return true;
    }
    let Ok(text) = std::fs::read_to_string(dir.join("fn.config.json")) else {
        return false;
    };
    let entry = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v.get("entrypoint").and_then(|e| e.as_str()).map(str::to_string));
    entry.is_some_and(|e| !e.starts_with('/') && !e.split('/').any(|p| p == "..") && dir.join(e).is_file())
}

/// Go files compiled with the handler, as the original decides: inside a single-entry
/// function folder (this folder or one above it, up to the root), every sibling `.go` that is
/// not itself a route file; elsewhere (a folder of file routes) only `_`-prefixed siblings.
/// Test files (`_test.go`) never.
pub fn go_helpers(root: &Path, handler: &Path) -> Vec<PathBuf> {
    let Some(dir) = handler.parent() else {
        return Vec::new();
    };
    let mut single = false;
    let mut cur = Some(dir);
    while let Some(d) = cur {
        if !d.starts_with(root) {
            break;
        }
        if single_entry_dir(d, RuntimeKind::Go) {
            single = true;
            break;
        }
        cur = d.parent();
    }
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p != handler && p.is_file())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let Some(stem) = name.strip_suffix(".go") else {
                return false;
            };
            if stem.ends_with("_test") || name.starts_with('.') {
                return false;
            }
            if single {
                !is_route_stem(stem)
            } else {
                stem.starts_with('_')
            }
        })
        .collect();
    out.sort();
    out
}

/// Everything a build of `handler` reads. Go: the handler, its helpers, `go.mod`, `go.sum`.
/// Rust, in a single-entry folder (or one with a `Cargo.toml`): every `.rs` below it (a
/// `mod x;` may live in a sub-folder; dot folders and `target` skipped); in a folder of file
/// routes: the `.rs` siblings that are not routes. Plus `Cargo.toml`, `Cargo.lock`. Missing
/// manifests are listed too (their appearance is a change).
pub fn sources(kind: RuntimeKind, root: &Path, fn_dir: &Path, handler: &Path) -> Sources {
    let mut s = Sources {
        dirs: vec![fn_dir.to_path_buf()],
        files: vec![handler.to_path_buf()],
    };
    match kind {
        RuntimeKind::Go => {
            s.files.extend(go_helpers(root, handler));
            s.files.push(fn_dir.join("go.mod"));
            s.files.push(fn_dir.join("go.sum"));
        }
        _ if !single_entry_dir(fn_dir, kind) && !fn_dir.join("Cargo.toml").is_file() => {
            // A folder of file routes (or the root): its non-route `.rs` siblings, so another
            // route's edit does not rebuild (and restart) this one.
            let mut helpers: Vec<PathBuf> = std::fs::read_dir(fn_dir)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
                .filter(|p| p != handler && p.is_file())
                .filter(|p| {
                    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                    name.strip_suffix(".rs")
                        .is_some_and(|stem| !name.starts_with('.') && !is_route_stem(stem))
                })
                .collect();
            helpers.sort();
            s.files.extend(helpers);
            s.files.push(fn_dir.join("Cargo.toml"));
            s.files.push(fn_dir.join("Cargo.lock"));
        }
        _ => {
            let mut stack = vec![fn_dir.to_path_buf()];
            while let Some(dir) = stack.pop() {
                let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
                    .into_iter()
                    .flatten()
                    .flatten()
                    .map(|e| e.path())
                    .collect();
                entries.sort();
                for p in entries {
                    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                    if name.starts_with('.') {
                        continue;
                    }
                    if p.is_dir() {
                        if name != "target" && s.dirs.len() < 64 {
                            s.dirs.push(p.clone());
                            stack.push(p);
                        }
                    } else if name.ends_with(".rs") && p != handler {
                        s.files.push(p);
                    }
                }
            }
            s.files.push(fn_dir.join("Cargo.toml"));
            s.files.push(fn_dir.join("Cargo.lock"));
        }
    }
    s
}

/// `handler` or `Handler` (in that order), declared as a top-level function in the Go source
/// (a line starting with `func <name>(`, so comments and methods do not count).
pub fn go_symbol(source: &str) -> Option<&'static str> {
    ["handler", "Handler"].into_iter().find(|sym| {
        source.lines().any(|line| {
            let Some(rest) = line.trim_start().strip_prefix("func") else {
                return false;
            };
            let name = rest.trim_start_matches([' ', '\t']);
            name.len() < rest.len()
                && name
                    .strip_prefix(sym)
                    .is_some_and(|after| after.trim_start_matches([' ', '\t']).starts_with('('))
        })
    })
}

/// `go env GOVERSION` output (`go1.19.8`, `go1.22rc1`) → (1, 19).
pub fn parse_go_version(text: &str) -> Option<(u32, u32)> {
    let v = text.trim().strip_prefix("go")?;
    let mut parts = v.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().and_then(|m| m.parse().ok()).unwrap_or(0);
    Some((major, minor))
}

/// The function's `go.mod` as the build uses it, given the local Go `(major, minor)`:
/// a `go` line newer than the local Go is lowered to it (Go before 1.21 then still tries to
/// build, and only fails if newer language features are really used; `GOTOOLCHAIN=local`
/// keeps 1.21+ from downloading another Go); `toolchain` and `godebug` lines (unknown before
/// 1.21) are commented out there; relative `replace` targets are made absolute, since the
/// build runs in `.go-build/<stem>/`, not in the function folder.
pub fn rewrite_go_mod(text: &str, local: Option<(u32, u32)>, fn_dir: &Path) -> String {
    let old_go = local.is_some_and(|v| v < (1, 21));
    let mut out = String::new();
    let mut in_block: Option<&str> = None;
    for line in text.lines() {
        let t = line.trim();
        let mut new_line = line.to_string();
        if let Some(block) = in_block {
            if t.starts_with(')') {
                in_block = None;
                if block == "godebug" && old_go {
                    new_line = format!("// {line}");
                }
            } else if block == "replace" {
                new_line = absolute_replace(line, fn_dir);
            } else if block == "godebug" && old_go {
                new_line = format!("// {line}");
            }
        } else if let Some(rest) = t.strip_prefix("go ") {
            if let (Some(want), Some(have)) = (parse_go_version(&format!("go{}", rest.trim())), local) {
                if want > have || (old_go && rest.trim().matches('.').count() > 1) {
                    let lowered = want.min(have);
                    new_line = format!(
                        "go {}.{} // lowered from {} by FastFN",
                        lowered.0,
                        lowered.1,
                        rest.trim()
                    );
                }
            }
        } else if (t.starts_with("toolchain") || t.starts_with("godebug")) && old_go {
            if t.ends_with('(') {
                in_block = Some("godebug");
            }
            new_line = format!("// {line} (not understood by the local Go)");
        } else if t.starts_with("replace") && t.ends_with('(') {
            in_block = Some("replace");
        } else if t.starts_with("replace ") {
            new_line = absolute_replace(line, fn_dir);
        } else if t.ends_with('(') {
            in_block = Some("other");
        }
        out.push_str(&new_line);
        out.push('\n');
    }
    out
}

fn absolute_replace(line: &str, fn_dir: &Path) -> String {
    let Some((left, target)) = line.split_once("=>") else {
        return line.to_string();
    };
    let target = target.trim();
    let path = target.split_whitespace().next().unwrap_or("");
    if path.starts_with("./") || path.starts_with("../") || path == "." || path == ".." {
        let abs = fn_dir.join(path);
        let rest = target[path.len()..].trim();
        let rest = if rest.is_empty() {
            String::new()
        } else {
            format!(" {rest}")
        };
        return format!("{left}=> {}{rest}", abs.display());
    }
    line.to_string()
}

/// A function that is a cargo library package (`[package]` in its `Cargo.toml`, and the entry
/// is that package's library, `src/lib.rs` or `[lib] path`): `(package name, library name)`.
/// Such a function is built as a dependency of the generated crate, so everything cargo
/// offers (`crate::` paths, features, build scripts) works as in the user's own checkout.
pub fn rust_lib_crate(user_toml: &str, fn_dir: &Path, entry: &Path) -> Option<(String, String)> {
    let parsed: toml::Table = user_toml.parse().ok()?;
    let package = parsed.get("package")?.get("name")?.as_str()?.to_string();
    let lib = parsed.get("lib");
    let lib_path = lib
        .and_then(|l| l.get("path"))
        .and_then(|p| p.as_str())
        .unwrap_or("src/lib.rs");
    if fn_dir.join(lib_path) != entry {
        return None;
    }
    let lib_name = lib
        .and_then(|l| l.get("name"))
        .and_then(|n| n.as_str())
        .map(str::to_string)
        .unwrap_or_else(|| package.replace('-', "_"));
    Some((package, lib_name))
}

/// The generated crate's manifest for a function that is a cargo library package: our
/// `serde_json` and the package itself by path.
pub fn rust_crate_manifest(crate_name: &str, header: &str, package: &str, fn_dir: &Path) -> Result<String, String> {
    let mut spec = toml::Table::new();
    spec.insert("path".into(), toml::Value::String(fn_dir.display().to_string()));
    let mut deps = toml::Table::new();
    deps.insert("serde_json".into(), toml::Value::String("1".into()));
    deps.insert(package.into(), toml::Value::Table(spec));
    manifest(crate_name, header, deps)
}

/// The generated crate's manifest: our `serde_json`, plus the
/// `[dependencies]` of the function's own `Cargo.toml` (theirs win; relative `path`s made
/// absolute, since the crate lives in `.rust-build/<stem>/`). Other sections are not used.
pub fn rust_manifest(crate_name: &str, header: &str, user_toml: Option<&str>, fn_dir: &Path) -> Result<String, String> {
    let mut deps = toml::Table::new();
    deps.insert("serde_json".into(), toml::Value::String("1".into()));
    if let Some(text) = user_toml {
        let parsed: toml::Table = text.parse().map_err(|e| format!("Cargo.toml: {e}"))?;
        if let Some(user) = parsed.get("dependencies") {
            let user = user
                .as_table()
                .ok_or_else(|| "Cargo.toml: [dependencies] must be a table".to_string())?;
            for (name, spec) in user {
                let mut spec = spec.clone();
                if let Some(path) = spec.get("path").and_then(|p| p.as_str()).map(str::to_string) {
                    if Path::new(&path).is_relative() {
                        let abs = fn_dir.join(&path).display().to_string();
                        if let Some(t) = spec.as_table_mut() {
                            t.insert("path".into(), toml::Value::String(abs));
                        }
                    }
                }
                deps.insert(name.clone(), spec);
            }
        }
    }
    manifest(crate_name, header, deps)
}

fn manifest(crate_name: &str, header: &str, deps: toml::Table) -> Result<String, String> {
    let mut package = toml::Table::new();
    package.insert("name".into(), toml::Value::String(crate_name.into()));
    package.insert("version".into(), toml::Value::String("0.1.0".into()));
    package.insert("edition".into(), toml::Value::String("2021".into()));
    package.insert("publish".into(), toml::Value::Boolean(false));
    let mut doc = toml::Table::new();
    doc.insert("package".into(), toml::Value::Table(package));
    doc.insert("dependencies".into(), toml::Value::Table(deps));
    let mut dev = toml::Table::new();
    dev.insert("debug".into(), toml::Value::Boolean(false));
    let mut profile = toml::Table::new();
    profile.insert("dev".into(), toml::Value::Table(dev));
    doc.insert("profile".into(), toml::Value::Table(profile));
    // An empty [workspace]: the crate is its own workspace root, whatever folder holds it.
    doc.insert("workspace".into(), toml::Value::Table(toml::Table::new()));
    let body = toml::to_string(&doc).map_err(|e| e.to_string())?;
    Ok(format!("{header}\n{body}"))
}

/// Build timeout: `FN_GO_BUILD_TIMEOUT_S` (or the documented `GO_BUILD_TIMEOUT_S`) for Go,
/// `FN_RUST_BUILD_TIMEOUT_S` for Rust, in seconds (at least 1); else 180 s.
pub fn build_timeout(kind: RuntimeKind, getenv: impl Fn(&str) -> Option<String>) -> Duration {
    let names: &[&str] = match kind {
        RuntimeKind::Go => &["FN_GO_BUILD_TIMEOUT_S", "GO_BUILD_TIMEOUT_S"],
        _ => &["FN_RUST_BUILD_TIMEOUT_S"],
    };
    names
        .iter()
        .find_map(|n| getenv(n).and_then(|v| v.trim().parse::<f64>().ok()))
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(|s| Duration::from_secs_f64(s.max(1.0)))
        .unwrap_or(DEFAULT_BUILD_TIMEOUT)
}
