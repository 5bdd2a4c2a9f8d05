//! The one-line *why* of an answer the engine produced itself, with the context the gateway
//! has at that moment (limits, queue depth, socket states, the handler's stack). Built only
//! on the error paths.

use crate::engine::Shared;
use crate::invoke::Timings;
use crate::rescue::Failure;
use crate::routing::{RouteMap, Target};
use hyper::http::request::Parts;
use std::path::Path;

/// Why the route map refused a request (409, 421, 405 at a named target).
pub fn refusal_why(failure: &Failure, map: &RouteMap, parts: &Parts) -> Option<String> {
    let path = parts.uri.path();
    match failure {
        Failure::Ambiguous => {
            let claimants: Vec<String> = map
                .conflicts()
                .iter()
                .filter(|p| crate::routing::pattern_matches(p, path))
                .flat_map(|p| map.claimants(p).iter().map(|t| format!("{} ({})", t.entry, t.runtime)))
                .collect();
            Some(format!(
                "{path} is claimed by {} with the same priority: rename or remove one",
                if claimants.is_empty() {
                    "several functions".to_string()
                } else {
                    claimants.join(" and ")
                }
            ))
        }
        Failure::HostNotAllowed => Some(format!(
            "a route matches {path}, but its allow_hosts do not include {}",
            crate::host::request_host(parts).unwrap_or("(no host)")
        )),
        Failure::MethodNotAllowed { allow } => Some(format!(
            "{path} allows {allow}, not {}: the named target answers 405 with Allow",
            parts.method
        )),
        _ => None,
    }
}

/// A 404 without a route for its method: the methods the routes at `path` do take, as a
/// why (`None` when no route matches the path at all). Walks every method: called on the
/// 404 path only while someone looks (debug headers, capture) or when the log is read.
pub fn method_mismatch(map: &RouteMap, method: &str, path: &str, host: Option<&str>) -> Option<String> {
    let mut allowed: Vec<&str> = Vec::new();
    let mut file = None;
    for (m, _) in crate::routing::Methods::ALL_NAMES.iter() {
        if *m == method {
            continue;
        }
        if let crate::routing::Resolution::Matched { route, .. } = map.resolve(m, path, host) {
            allowed.push(m);
            file.get_or_insert_with(|| route.target.entry.clone());
        }
    }
    let file = file?;
    Some(format!(
        "a route matches {path} ({file}) but allows {}, not {method}: a method mismatch answers 404",
        allowed.join(", ")
    ))
}

/// A 404 whose path names a handler file that is not a route: the file and why it is
/// private (read at the time the log is read: one `stat` per known extension).
pub fn private_file(root: &Path, path: &str) -> Option<String> {
    let rel = path.trim_matches('/');
    if rel.is_empty() || rel.split('/').any(|s| s.is_empty() || s == "..") {
        return None;
    }
    let exts = ["py", "js", "ts", "php", "lua", "rs", "go"];
    let has_ext = exts.iter().any(|x| rel.ends_with(&format!(".{x}")));
    let candidates: Vec<String> = if has_ext {
        vec![rel.to_string()]
    } else {
        exts.iter().map(|x| format!("{rel}.{x}")).collect()
    };
    let file = candidates.into_iter().find(|c| root.join(c).is_file())?;
    let name = file.rsplit('/').next().unwrap_or(&file);
    let lower = name.to_ascii_lowercase();
    let why = if name.starts_with('_') {
        "a file whose name starts with `_` is a private module, never a route"
    } else if lower.contains(".test.") || lower.contains(".spec.") {
        "test files are never routes"
    } else if has_ext {
        "handler files are not served by their file name (their route has no extension)"
    } else {
        "it is a private module of its folder (a folder with a handler, an explicit function or an ignored folder publishes no other file)"
    };
    Some(format!("{file} exists but is not a route: {why}"))
}

/// Files this route's file shadows (same URL and methods, a later runtime in the order):
/// `served by x.py; x.js is shadowed (…)`. Read when the log is read.
pub fn shadowing(map: &RouteMap, target: &Target) -> Option<String> {
    let losers: Vec<String> = map
        .shadowed()
        .iter()
        .filter(|s| std::ptr::eq(s.winner.as_ref(), target) || s.winner.entry == target.entry)
        .map(|s| format!("{} ({}) at {}: {}", s.loser.entry, s.loser.runtime, s.pattern, s.reason))
        .collect();
    (!losers.is_empty()).then(|| {
        format!(
            "served by {} ({}); shadowed: {} — set force-url to let the other file take the URL",
            target.entry,
            target.runtime,
            losers.join("; ")
        )
    })
}

/// The numbers of an admission refusal, taken when it was answered and worded when the log
/// is read (the refusal path stays free of formatting under overload).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Admission {
    /// Calls running and queued in the function's pool at that moment.
    pub active: u64,
    pub queued: u64,
    /// The request's `Content-Length`, when it sent one.
    pub declared: Option<u64>,
    /// Time spent waiting (dependencies or queue).
    pub waited_us: u64,
}

/// Why an admission refusal (`body_too_large`, `pool_full`, `queue_timeout`,
/// `deps_installing`) happened, with the function's limits.
pub fn admission_why(reason: super::Reason, target: &Target, a: &Admission) -> Option<String> {
    use super::Reason as R;
    let policy = &target.policy;
    let pool = &policy.worker_pool;
    Some(match reason {
        R::BodyTooLarge => format!(
            "the body{} is over {}'s max_body_bytes of {} bytes",
            a.declared.map(|n| format!(" (Content-Length {n})")).unwrap_or_default(),
            target.fn_name,
            policy.max_body_bytes
        ),
        R::PoolFull => format!(
            "{}'s worker pool is full: max_workers {}, max_queue {}; {} running and {} queued at that moment ({})",
            target.fn_name, pool.max_workers, pool.max_queue, a.active, a.queued, pool.overflow_status
        ),
        R::QueueTimeout => format!(
            "waited {} ms in {}'s queue, past queue_timeout_ms {} (max_workers {}; {} running, {} queued at that moment)",
            a.waited_us / 1000,
            target.fn_name,
            pool.queue_timeout_ms,
            pool.max_workers,
            a.active,
            a.queued
        ),
        R::DepsInstalling => format!(
            "{}'s dependencies are being installed (waited {} ms, at most its timeout_ms)",
            target.fn_name,
            a.waited_us / 1000
        ),
        _ => return None,
    })
}

/// Why a call failed, with the function's limits and the runtime's state.
pub fn call_failure_why(shared: &Shared, target: &Target, failure: &Failure, timings: &Timings) -> Option<String> {
    let policy = &target.policy;
    Some(match failure {
        Failure::RuntimeDown | Failure::RuntimeUnavailable => {
            let states: Vec<String> = shared
                .runtimes
                .get(&target.runtime)
                .map(|r| {
                    r.sockets
                        .iter()
                        .map(|s| {
                            let h = s.health();
                            let state = match h.up {
                                Some(true) => "up",
                                Some(false) => "down",
                                None => "unknown",
                            };
                            format!("socket {} {state} ({})", s.index, h.reason)
                        })
                        .collect()
                })
                .unwrap_or_default();
            if states.is_empty() {
                format!("{} has no socket", target.runtime)
            } else {
                format!(
                    "no {} socket could take the call: {}",
                    target.runtime,
                    states.join("; ")
                )
            }
        }
        Failure::Timeout => format!(
            "no reply within {}'s timeout_ms of {} ms (the call ran {} ms; the handler was stopped)",
            target.fn_name,
            policy.timeout_ms,
            timings.runtime_us / 1000
        ),
        Failure::InvalidReply => format!(
            "{} ({}) replied with something that is not a valid response (status, headers or body)",
            target.entry, target.runtime
        ),
        _ => return None,
    })
}

/// "500 from the handler: ValueError: boom (at throws-py.py:3)": the error's line and where
/// it was raised, from the body and the stack on stderr.
pub fn handler_error_why(status: u16, body: &[u8], stderr: Option<&str>, root: &Path) -> String {
    let body = String::from_utf8_lossy(body);
    let message = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
        .unwrap_or_else(|| body.lines().next().unwrap_or("").chars().take(200).collect());
    let mut out = format!("{status} from the handler");
    if !message.is_empty() {
        out.push_str(&format!(": {message}"));
    }
    if let Some(at) = stderr.and_then(|s| locate(s, root)) {
        out.push_str(&format!(" (at {at})"));
    }
    out
}

/// `file:line` (relative to the functions root) of the innermost frame of a stack that is in
/// the project: python `File "…", line N`, node `(…:N:C)` / `at …:N:C`, php `… in /x.php:N`
/// / `/x.php(N)`, lua `x.lua:N:`.
pub fn locate(stack: &str, root: &Path) -> Option<String> {
    let root = root.to_string_lossy();
    let root = root.trim_end_matches('/');
    let mut python: Option<String> = None;
    let mut first: Option<String> = None;
    for line in stack.lines() {
        let l = line.trim();
        if let Some(rest) = l.strip_prefix("File \"") {
            // Python: the last frame in the project is the innermost.
            if let Some((file, tail)) = rest.split_once('"') {
                let n: String = tail
                    .trim_start_matches(", line ")
                    .chars()
                    .take_while(|c| c.is_ascii_digit())
                    .collect();
                if let Some(rel) = file.strip_prefix(root) {
                    python = Some(format!("{}:{n}", rel.trim_start_matches('/')));
                }
            }
            continue;
        }
        if first.is_some() {
            continue;
        }
        // Node, PHP, Lua: the first frame in the project is the innermost.
        if let Some(i) = l.find(root) {
            let rest = &l[i + root.len()..];
            let rest = rest.trim_start_matches('/');
            let end = rest.find([')', ' ', ',']).unwrap_or(rest.len());
            let loc = &rest[..end];
            let mut parts = loc.split(':');
            let file = parts.next().unwrap_or("");
            let line_no = parts
                .next()
                .filter(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()));
            let (file, line_no) = match (line_no, file.split_once('(')) {
                (Some(n), _) => (file.to_string(), Some(n.to_string())),
                (None, Some((f, n))) => (f.to_string(), Some(n.trim_end_matches(')').to_string())),
                (None, None) => (file.to_string(), None),
            };
            if let Some(n) = line_no {
                first = Some(format!("{file}:{n}"));
            }
        }
    }
    python.or(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stacks_point_at_the_project_file() {
        let root = Path::new("/srv/app");
        let py = "Traceback (most recent call last):\n  File \"/usr/lib/daemon.py\", line 10, in call\n  File \"/srv/app/api/throws.py\", line 3, in handler\n    raise ValueError('boom')\nValueError: boom\n";
        assert_eq!(locate(py, root).as_deref(), Some("api/throws.py:3"));
        let js = "Error: boom\n    at exports.handler (/srv/app/throws.js:3:9)\n    at run (/opt/daemon.js:88:1)\n";
        assert_eq!(locate(js, root).as_deref(), Some("throws.js:3"));
        let js2 = "Error: boom\n    at /srv/app/x/handler.js:12:5\n";
        assert_eq!(locate(js2, root).as_deref(), Some("x/handler.js:12"));
        let php = "PHP Fatal error:  Uncaught Exception: boom in /srv/app/p.php:7\n";
        assert_eq!(locate(php, root).as_deref(), Some("p.php:7"));
        assert_eq!(locate("nothing here", root), None);
        let why = handler_error_why(500, br#"{"error":"ValueError: boom"}"#, Some(py), root);
        assert_eq!(why, "500 from the handler: ValueError: boom (at api/throws.py:3)");
    }
}
