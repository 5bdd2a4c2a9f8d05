//! Load runs saved per project: each ended run is written to `.fastfn/lab/runs/<file>.json`
//! (see [`super::load::Run`]), listed here, and two of them compared side by side with the
//! difference of the config they ran against.
//!
//! Also builds what a run needs from the engine ([`extras`]): a probe of the target
//! function's pool and its runtime's daemons, and the target's effective config.

use super::load::{AdmissionPoint, DaemonPoint, Extras, LoadRun, LoadSpec, LoadSummary};
use super::LabError;
use crate::engine::Shared;
use crate::routing::Resolution;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The project's run folder.
pub fn runs_dir(shared: &Shared) -> PathBuf {
    shared.settings.functions_root.join(".fastfn").join("lab").join("runs")
}

/// What a run of `spec` needs from the engine: the function its path reaches (a probe of its
/// pool and its runtime's daemons, its config now) and the folder to save it in.
pub(crate) fn extras(shared: &Shared, spec: &LoadSpec) -> Extras {
    let mut extras = Extras {
        save_dir: Some(runs_dir(shared)),
        ..Extras::default()
    };
    let served = shared.served();
    let path = spec.path.split('?').next().unwrap_or("/");
    let method = spec.method.as_deref().unwrap_or("GET");
    let Resolution::Matched { route, .. } = served.discovery.routes.resolve(method, path, None) else {
        return extras;
    };
    let Some(slot) = served.slot(&route.target).cloned() else {
        return extras;
    };
    let runtime = route.target.runtime;
    let daemons = shared.supervisor().daemons_of(runtime);
    extras.config = Some(serde_json::json!({
        "function": slot.name,
        "runtime": runtime,
        "runtime_daemons": shared.runtimes.get(&runtime).map_or(0, |s| s.sockets.len()),
        "policy": route.target.policy,
    }));
    extras.probe = Some(Box::new(move || {
        let stats = slot.pool.stats();
        let limits = slot.pool.limits();
        let admission = AdmissionPoint {
            active: stats.active,
            queued: stats.queued,
            max_workers: limits.max_workers,
            max_queue: limits.max_queue,
            overflow_drops: stats.overflow_drops,
            timeout_drops: stats.timeout_drops,
        };
        let daemons = daemons
            .iter()
            .filter(|d| d.pid() != 0)
            .map(|d| {
                let (cpu_percent, rss_bytes) = d.usage();
                DaemonPoint {
                    socket: d.index,
                    pid: d.pid(),
                    cpu_percent,
                    rss_bytes,
                }
            })
            .collect();
        (Some(admission), daemons)
    }));
    extras
}

/// A saved run in the list: its file, spec, summary and config (no series).
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
#[ts(export)]
pub struct SavedRun {
    pub file: String,
    pub spec: LoadSpec,
    #[ts(type = "number")]
    pub started_ms: u64,
    pub summary: LoadSummary,
    #[ts(type = "Record<string, unknown> | null")]
    pub config: Option<Value>,
}

/// One config key that differs between two runs (`policy.worker_pool.max_workers`, …).
#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
#[ts(export)]
pub struct ConfigChange {
    pub key: String,
    #[ts(type = "unknown")]
    pub a: Value,
    #[ts(type = "unknown")]
    pub b: Value,
}

/// `GET /_fn/lab/runs/compare?a=FILE&b=FILE`.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
#[ts(export)]
pub struct Comparison {
    pub a: LoadRun,
    pub b: LoadRun,
    /// Keys whose values differ, sorted; absent on one side is `null` there.
    pub config_diff: Vec<ConfigChange>,
}

/// A file name this module wrote: digits, one dash, digits, `.json` (nothing that leaves the
/// folder).
fn valid_name(name: &str) -> bool {
    name.strip_suffix(".json").is_some_and(|stem| {
        let mut parts = stem.split('-');
        let ok = |p: Option<&str>| p.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
        ok(parts.next()) && ok(parts.next()) && parts.next().is_none()
    })
}

fn read_run(dir: &Path, name: &str) -> Result<LoadRun, LabError> {
    if !valid_name(name) {
        return Err(LabError::NotFound);
    }
    let bytes = std::fs::read(dir.join(name)).map_err(|_| LabError::NotFound)?;
    serde_json::from_slice(&bytes).map_err(|e| LabError::Saved(format!("{name}: {e}")))
}

/// Every saved run, oldest first. Files that do not parse are skipped (a newer engine's, or
/// hand-edited).
pub fn list(dir: &Path) -> Vec<SavedRun> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| valid_name(n))
        .collect();
    names.sort_by_key(|n| {
        let (ms, id) = n.trim_end_matches(".json").split_once('-').unwrap_or(("0", "0"));
        (ms.parse::<u64>().unwrap_or(0), id.parse::<u64>().unwrap_or(0))
    });
    names
        .into_iter()
        .filter_map(|n| {
            let run = read_run(dir, &n).ok()?;
            Some(SavedRun {
                file: n,
                spec: run.spec,
                started_ms: run.started_ms,
                summary: run.summary,
                config: run.config,
            })
        })
        .collect()
}

pub fn get(dir: &Path, name: &str) -> Result<LoadRun, LabError> {
    read_run(dir, name)
}

pub fn compare(dir: &Path, a: &str, b: &str) -> Result<Comparison, LabError> {
    let a = read_run(dir, a)?;
    let b = read_run(dir, b)?;
    let config_diff = diff(a.config.as_ref(), b.config.as_ref());
    Ok(Comparison { a, b, config_diff })
}

/// Flatten a JSON value into dotted keys (arrays as one value each: a list of hosts is one
/// setting).
fn flatten(prefix: &str, v: &Value, out: &mut BTreeMap<String, Value>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        other => {
            out.insert(prefix.to_string(), other.clone());
        }
    }
}

/// Pure: the keys whose values differ between two configs.
pub fn diff(a: Option<&Value>, b: Option<&Value>) -> Vec<ConfigChange> {
    let (mut fa, mut fb) = (BTreeMap::new(), BTreeMap::new());
    if let Some(a) = a {
        flatten("", a, &mut fa);
    }
    if let Some(b) = b {
        flatten("", b, &mut fb);
    }
    let keys: std::collections::BTreeSet<&String> = fa.keys().chain(fb.keys()).collect();
    keys.into_iter()
        .filter_map(|k| {
            let (va, vb) = (
                fa.get(k).cloned().unwrap_or(Value::Null),
                fb.get(k).cloned().unwrap_or(Value::Null),
            );
            (va != vb).then(|| ConfigChange {
                key: k.clone(),
                a: va,
                b: vb,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn diff_names_changed_added_and_removed_keys() {
        let a = json!({"runtime_daemons": 1, "policy": {"worker_pool": {"max_workers": 4, "max_queue": 10}, "allow_hosts": []}});
        let b = json!({"runtime_daemons": 3, "policy": {"worker_pool": {"max_workers": 4}, "allow_hosts": ["x"], "strict_fs": true}});
        let d = diff(Some(&a), Some(&b));
        let keys: Vec<&str> = d.iter().map(|c| c.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "policy.allow_hosts",
                "policy.strict_fs",
                "policy.worker_pool.max_queue",
                "runtime_daemons"
            ]
        );
        assert_eq!(d[3].a, json!(1));
        assert_eq!(d[3].b, json!(3));
        assert_eq!(d[2].b, Value::Null);
        assert!(diff(Some(&a), Some(&a)).is_empty());
    }

    #[test]
    fn only_names_written_here_are_read() {
        assert!(valid_name("1764600000000-3.json"));
        for bad in [
            "../x.json",
            "1-2",
            "a-1.json",
            "1-2-3.json",
            "-1.json",
            "1-.json",
            "/etc/passwd",
        ] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
