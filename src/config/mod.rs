//! Configuration: defaults (one place), function config (`fn.config.json`, `fn.env.json`) and
//! project config (`fastfn.json` / `fastfn.toml`, `FN_*` variables, CLI flags).
//!
//! Precedence everywhere: CLI flags > environment > `fastfn.json` > `fn.config.json` > defaults.

pub mod function;
pub mod project;

use serde::Serialize;
use std::path::PathBuf;

/// Every default the engine uses, in one place.
pub mod defaults {
    pub const TIMEOUT_MS: u64 = 2500;
    /// rust/go handlers compile on first call.
    pub const COMPILED_TIMEOUT_MS: u64 = 180_000;
    pub const MAX_CONCURRENCY: i64 = 20;
    pub const MAX_BODY_BYTES: u64 = 1_048_576;
    pub const QUEUE_POLL_MS: u64 = 20;
    pub const IDLE_TTL_SECONDS: u64 = 300;
    pub const OVERFLOW_STATUS: u16 = 429;
    pub const HANDLER: &str = "handler";
    pub const NAMESPACE_DEPTH: usize = 3;
    pub const DISCOVERY_DEPTH: usize = 6;
    pub const HOST: &str = "127.0.0.1";
    pub const PORT: u16 = 8080;
    pub const SOCKET_BASE_DIR: &str = "/tmp/fastfn";
    pub const HEALTH_INTERVAL_SECS: f64 = 2.0;
    /// Largest reply frame the gateway accepts from a daemon.
    pub const MAX_REPLY_FRAME: usize = 10 * 1024 * 1024;
    /// Largest request frame a daemon accepts (`FN_MAX_FRAME_BYTES`).
    pub const MAX_REQUEST_FRAME: usize = 2 * 1024 * 1024;
    pub const DEBUG_OUTPUT_BYTES: usize = 4096;
    /// Persistent connections per daemon socket (`FN_RUNTIME_CONNECTIONS`).
    pub const RUNTIME_CONNECTIONS: usize = 4;
    /// Client header/body read timeout, as nginx's `client_header_timeout` (`FN_CLIENT_TIMEOUT_MS`).
    pub const CLIENT_TIMEOUT_MS: u64 = 60_000;
    /// How long a stopping engine lets requests in flight finish (`FN_DRAIN_TIMEOUT_MS`).
    pub const DRAIN_TIMEOUT_MS: u64 = 10_000;
    /// Headers of a reply a daemon may send, and their total size; past either → 502.
    pub const MAX_REPLY_HEADERS: usize = 1000;
    pub const MAX_REPLY_HEADER_BYTES: usize = 256 * 1024;
    pub const MAX_ASSET_BYTES: u64 = 32 * 1024 * 1024;
    /// Changes within this of the last one are reloaded together (`FN_HOT_RELOAD_DEBOUNCE_MS`;
    /// the original waits 150 ms after every change, ours reports the first one at once).
    pub const WATCH_QUIET: std::time::Duration = std::time::Duration::from_millis(40);
    /// Polling period when inotify is unavailable (`FN_HOT_RELOAD_WATCHDOG_POLL`, as the original).
    pub const WATCH_POLL: std::time::Duration = std::time::Duration::from_millis(200);
    /// Polling period with the watchdog off (`FN_HOT_RELOAD_INTERVAL`, as the original).
    pub const HOT_RELOAD_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);
}

/// The project-wide limits a function gets when neither it nor a parent folder sets them
/// (`FN_DEFAULT_TIMEOUT_MS`, `FN_DEFAULT_MAX_CONCURRENCY`, `FN_DEFAULT_MAX_BODY_BYTES`); shown
/// as `defaults` in `/_fn/health` and `/_fn/catalog`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ts_rs::TS)]
#[ts(export)]
pub struct PolicyDefaults {
    #[ts(type = "number")]
    pub timeout_ms: u64,
    #[ts(type = "number")]
    pub max_concurrency: i64,
    #[ts(type = "number")]
    pub max_body_bytes: u64,
    /// `FN_STRICT_FS` (default on, as in FastFN): the sandbox of functions whose config does
    /// not set `strict_fs`. Not in health's `defaults` (the contract's shape); each function's
    /// own `strict_fs` is in `functions.states`.
    #[serde(skip)]
    #[ts(skip)]
    pub strict_fs: bool,
}

impl Default for PolicyDefaults {
    fn default() -> Self {
        PolicyDefaults {
            timeout_ms: defaults::TIMEOUT_MS,
            max_concurrency: defaults::MAX_CONCURRENCY,
            max_body_bytes: defaults::MAX_BODY_BYTES,
            strict_fs: true,
        }
    }
}

/// Per-function worker pool (admission) settings, `worker_pool.*` in `fn.config.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkerPoolPolicy {
    /// True when a `worker_pool` block is present (and not disabled).
    pub enabled: bool,
    /// Admitted at once; `<= 0` means unlimited.
    pub max_workers: i64,
    pub max_queue: u64,
    pub queue_timeout_ms: u64,
    pub queue_poll_ms: u64,
    pub min_warm: u64,
    pub idle_ttl_seconds: u64,
    /// 429 or 503.
    pub overflow_status: u16,
}

impl Default for WorkerPoolPolicy {
    fn default() -> Self {
        WorkerPoolPolicy {
            enabled: false,
            max_workers: defaults::MAX_CONCURRENCY,
            max_queue: 0,
            queue_timeout_ms: 0,
            queue_poll_ms: defaults::QUEUE_POLL_MS,
            min_warm: 0,
            idle_ttl_seconds: defaults::IDLE_TTL_SECONDS,
            overflow_status: defaults::OVERFLOW_STATUS,
        }
    }
}

/// Which calling convention the daemon uses for a handler (`invoke.adapter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Adapter {
    #[default]
    Native,
    AwsLambda,
    CloudflareWorker,
}

/// `invoke.summary`, `invoke.query`, `invoke.body`, `invoke.content_type`: what the OpenAPI
/// document shows for a function (summary, query parameters with examples, a request body
/// example). Never changes how a call is served.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct InvokeDocs {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// Query example: parameter name → example value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<serde_json::Map<String, serde_json::Value>>,
    /// Body example, as written (a string is kept as text, anything else as JSON).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
}

impl InvokeDocs {
    pub fn is_empty(&self) -> bool {
        self == &InvokeDocs::default()
    }

    /// The original's handler comments, in the first 80 lines of a handler file:
    /// `# @summary …` or `// @summary …`, `@query {"ip":"8.8.8.8"}` (a JSON object), `@body …`
    /// (JSON if it parses, else text) and `@content_type …`. Unknown keys and a `@query` that
    /// is not a JSON object are passed over, as the original does.
    pub fn from_handler_comments(source: &str) -> InvokeDocs {
        let mut docs = InvokeDocs::default();
        for line in source.lines().take(80) {
            let line = line.trim_start();
            let Some(rest) = line.strip_prefix('#').or_else(|| line.strip_prefix("//")) else {
                continue;
            };
            let Some(rest) = rest.trim_start().strip_prefix('@') else {
                continue;
            };
            let (key, value) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            let value = value.trim();
            if value.is_empty() || !key.chars().all(|c| c.is_ascii_alphabetic() || c == '_') {
                continue;
            }
            match key.to_ascii_lowercase().as_str() {
                "summary" => docs.summary = Some(value.to_string()),
                "query" => {
                    if let Ok(serde_json::Value::Object(map)) = serde_json::from_str(value) {
                        docs.query = Some(map);
                    }
                }
                "body" => {
                    docs.body = Some(
                        serde_json::from_str(value).unwrap_or_else(|_| serde_json::Value::String(value.to_string())),
                    )
                }
                "content_type" => docs.content_type = Some(value.to_string()),
                _ => {}
            }
        }
        docs
    }

    /// These docs, each field missing here taken from `fallback` (config over comments).
    pub fn or(self, fallback: InvokeDocs) -> InvokeDocs {
        InvokeDocs {
            summary: self.summary.or(fallback.summary),
            query: self.query.or(fallback.query),
            body: self.body.or(fallback.body),
            content_type: self.content_type.or(fallback.content_type),
        }
    }
}

/// The resolved, validated policy of one function: its own `fn.config.json` merged over the
/// policy overlays of its parent folders (root first), over the defaults.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FnPolicy {
    pub timeout_ms: u64,
    pub max_concurrency: i64,
    pub max_body_bytes: u64,
    pub include_debug_headers: bool,
    pub worker_pool: WorkerPoolPolicy,
    /// `invoke.handler`: the callable's name.
    pub handler: String,
    pub adapter: Adapter,
    /// `invoke.allow_hosts`; empty = any host.
    pub allow_hosts: Vec<String>,
    /// The handler runs in its runtime's strict sandbox (docs/compat.md, "Strict sandbox").
    pub strict_fs: bool,
    /// OpenAPI metadata (`invoke.summary/query/body/content_type`).
    #[serde(skip_serializing_if = "InvokeDocs::is_empty")]
    pub docs: InvokeDocs,
    /// `schedule` (run by the scheduler when enabled).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule: Option<crate::scheduler::spec::Schedule>,
    /// `keep_warm`, when it asks for pings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_warm: Option<crate::scheduler::spec::KeepWarm>,
    /// `edge`: the function may answer with a `proxy` directive (`None`: proxying is off).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub edge: Option<crate::proxy::EdgePolicy>,
}

impl Default for FnPolicy {
    fn default() -> Self {
        FnPolicy {
            timeout_ms: defaults::TIMEOUT_MS,
            max_concurrency: defaults::MAX_CONCURRENCY,
            max_body_bytes: defaults::MAX_BODY_BYTES,
            include_debug_headers: false,
            worker_pool: WorkerPoolPolicy::default(),
            handler: defaults::HANDLER.to_string(),
            adapter: Adapter::Native,
            allow_hosts: Vec::new(),
            strict_fs: true,
            docs: InvokeDocs::default(),
            schedule: None,
            keep_warm: None,
            edge: None,
        }
    }
}

/// A configuration problem: which file, which field, what was expected. Stable `code` for the
/// UI (e.g. `config.invalid_json`, `config.invalid_field`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{}{}: {message}", file.display(), field.as_deref().map(|f| format!(" (field `{f}`)")).unwrap_or_default())]
pub struct ConfigError {
    pub code: &'static str,
    pub file: PathBuf,
    pub field: Option<String>,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handler_comments_document_a_function() {
        let src = "// @summary IP intel via remote provider (ipapi)\n// @methods GET\n\
                   // @query {\"ip\":\"8.8.8.8\",\"mock\":\"1\"}\n//   @body {\"ok\":true}\n\
                   // @content_type application/json\nconst x = 1; // @summary not a comment line\n";
        let d = InvokeDocs::from_handler_comments(src);
        assert_eq!(d.summary.as_deref(), Some("IP intel via remote provider (ipapi)"));
        assert_eq!(
            serde_json::Value::Object(d.query.clone().unwrap()),
            serde_json::json!({"ip": "8.8.8.8", "mock": "1"})
        );
        assert_eq!(d.body, Some(serde_json::json!({"ok": true})));
        assert_eq!(d.content_type.as_deref(), Some("application/json"));
        let py = InvokeDocs::from_handler_comments("# @summary hi\n# @query [1]\n# @body raw text\n");
        assert_eq!(
            (py.summary.as_deref(), py.query, py.body),
            (Some("hi"), None, Some(serde_json::json!("raw text")))
        );
        let config = InvokeDocs {
            summary: Some("from config".into()),
            ..InvokeDocs::default()
        };
        let merged = config.or(d);
        assert_eq!(merged.summary.as_deref(), Some("from config"));
        assert_eq!(merged.content_type.as_deref(), Some("application/json"));
    }
}
