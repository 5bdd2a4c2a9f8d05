//! Language runtimes: which exist, how files map to them, and (in submodules) how the gateway
//! talks to their daemons.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A language runtime. The order of the variants is not meaningful; the enabled order comes
/// from `FN_RUNTIMES` (see [`crate::config`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ts_rs::TS)]
#[ts(export)]
#[serde(rename_all = "lowercase")]
pub enum RuntimeKind {
    Node,
    Python,
    Php,
    Lua,
    Rust,
    Go,
}

impl RuntimeKind {
    pub const ALL: [RuntimeKind; 6] = [
        RuntimeKind::Node,
        RuntimeKind::Python,
        RuntimeKind::Php,
        RuntimeKind::Lua,
        RuntimeKind::Rust,
        RuntimeKind::Go,
    ];

    /// Runtimes on when `FN_RUNTIMES` is not set (rust and go are experimental), in the
    /// original's native order (`python,node,php,lua`), which also decides cross-runtime
    /// duplicates.
    pub const DEFAULT_ORDER: [RuntimeKind; 4] = [
        RuntimeKind::Python,
        RuntimeKind::Node,
        RuntimeKind::Php,
        RuntimeKind::Lua,
    ];

    pub fn name(self) -> &'static str {
        match self {
            RuntimeKind::Node => "node",
            RuntimeKind::Python => "python",
            RuntimeKind::Php => "php",
            RuntimeKind::Lua => "lua",
            RuntimeKind::Rust => "rust",
            RuntimeKind::Go => "go",
        }
    }

    pub fn parse(s: &str) -> Option<RuntimeKind> {
        match s.trim().to_ascii_lowercase().as_str() {
            "node" | "nodejs" | "javascript" | "js" => Some(RuntimeKind::Node),
            "python" | "py" => Some(RuntimeKind::Python),
            "php" => Some(RuntimeKind::Php),
            "lua" => Some(RuntimeKind::Lua),
            "rust" | "rs" => Some(RuntimeKind::Rust),
            "go" | "golang" => Some(RuntimeKind::Go),
            _ => None,
        }
    }

    /// Runtime of a file by its name (contract §1): `.js .ts`→node (`.d.ts` skipped),
    /// `.py`→python, `.php`→php, `.lua`→lua, `.rs`→rust, `.go`→go; case-insensitive.
    pub fn from_file_name(name: &str) -> Option<RuntimeKind> {
        let lower = name.to_ascii_lowercase();
        if lower.ends_with(".d.ts") {
            return None;
        }
        let ext = lower.rsplit_once('.')?.1;
        match ext {
            "js" | "ts" => Some(RuntimeKind::Node),
            "py" => Some(RuntimeKind::Python),
            "php" => Some(RuntimeKind::Php),
            "lua" => Some(RuntimeKind::Lua),
            "rs" => Some(RuntimeKind::Rust),
            "go" => Some(RuntimeKind::Go),
            _ => None,
        }
    }

    /// Whether the runtime runs behind Unix-socket daemons (lua runs in-process).
    pub fn uses_daemons(self) -> bool {
        !matches!(self, RuntimeKind::Lua)
    }
}

impl fmt::Display for RuntimeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_map_to_runtimes() {
        let cases = [
            ("a.js", Some(RuntimeKind::Node)),
            ("A.TS", Some(RuntimeKind::Node)),
            ("types.d.ts", None),
            ("x.py", Some(RuntimeKind::Python)),
            ("x.php", Some(RuntimeKind::Php)),
            ("x.lua", Some(RuntimeKind::Lua)),
            ("x.rs", Some(RuntimeKind::Rust)),
            ("x.go", Some(RuntimeKind::Go)),
            ("x.json", None),
            ("noext", None),
        ];
        for (name, want) in cases {
            assert_eq!(RuntimeKind::from_file_name(name), want, "{name}");
        }
    }
}

pub mod balance;
pub mod client;
pub mod compiled;
pub mod frame;
pub mod health;
pub mod lua;
pub mod mux;

use balance::RoundRobin;
use health::SocketHealth;
use std::path::PathBuf;
use std::sync::Mutex;

/// One daemon socket of a runtime.
#[derive(Debug)]
pub struct SocketSlot {
    /// 1-based, as in `X-Fn-Runtime-Socket-Index` and `/_fn/health`.
    pub index: usize,
    pub path: PathBuf,
    health: Mutex<SocketHealth>,
    /// The persistent connections to this socket's daemon.
    pub mux: mux::Mux,
}

impl SocketSlot {
    pub fn uri(&self) -> String {
        format!("unix:{}", self.path.display())
    }

    pub fn health(&self) -> SocketHealth {
        self.health.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// The sockets of one runtime with their health and the round-robin cursor.
#[derive(Debug)]
pub struct RuntimeSockets {
    pub kind: RuntimeKind,
    pub sockets: Vec<SocketSlot>,
    pub balance: RoundRobin,
}

impl RuntimeSockets {
    pub fn new(kind: RuntimeKind, paths: Vec<PathBuf>) -> RuntimeSockets {
        let d = crate::config::defaults::RUNTIME_CONNECTIONS;
        Self::with_limits(kind, paths, d, crate::config::defaults::MAX_REQUEST_FRAME)
    }

    /// At most `connections` persistent connections per socket; call frames up to `max_frame`.
    pub fn with_limits(kind: RuntimeKind, paths: Vec<PathBuf>, connections: usize, max_frame: usize) -> RuntimeSockets {
        let balance = RoundRobin::new(paths.len());
        let max_reply = crate::config::defaults::MAX_REPLY_FRAME;
        let sockets = paths
            .into_iter()
            .enumerate()
            .map(|(i, path)| SocketSlot {
                index: i + 1,
                mux: mux::Mux::new(path.clone(), connections, max_reply, max_frame),
                path,
                health: Mutex::new(SocketHealth::default()),
            })
            .collect();
        RuntimeSockets { kind, sockets, balance }
    }

    /// `single` or `round_robin` (`X-Fn-Runtime-Routing`).
    pub fn routing(&self) -> &'static str {
        if self.sockets.len() > 1 {
            "round_robin"
        } else {
            "single"
        }
    }

    /// Record an observation of socket `i` (0-based). Returns true when it flipped.
    pub fn observe(&self, i: usize, result: Result<(), &str>, ts: f64) -> bool {
        let Some(slot) = self.sockets.get(i) else {
            return false;
        };
        let changed = slot
            .health
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .observe(result, ts);
        self.balance.set_up(i, result.is_ok());
        changed
    }

    /// A connect to socket `i` was refused. Busy is not down: only repeated refusals (or a
    /// failed probe) mark it down. Returns true when it flipped.
    pub fn observe_refusal(&self, i: usize, reason: &str, ts: f64) -> bool {
        let Some(slot) = self.sockets.get(i) else {
            return false;
        };
        let mut health = slot.health.lock().unwrap_or_else(|p| p.into_inner());
        let changed = health.observe_refusal(reason, ts);
        self.balance.set_up(i, health.usable());
        changed
    }

    /// Probe every socket once (a hello on a fresh connection, so a foreign listener is told
    /// apart from a daemon); returns the sockets whose state flipped.
    pub async fn probe_all(&self) -> Vec<usize> {
        let mut flipped = Vec::new();
        for (i, slot) in self.sockets.iter().enumerate() {
            let result = probe_socket(slot).await;
            let reason = result.as_ref().err().map(String::as_str);
            if self.observe(i, reason.map_or(Ok(()), Err), crate::clock::epoch_secs()) {
                flipped.push(i);
            }
        }
        flipped
    }

    /// A runtime is up when any socket is.
    pub fn up(&self) -> bool {
        self.sockets.iter().any(|s| s.health().up == Some(true))
    }
}

/// One probe: connect only for a socket known to speak v1 (a hello would be a call to it),
/// else a hello, which also tells a daemon from a foreign listener.
async fn probe_socket(slot: &SocketSlot) -> Result<(), String> {
    // A full listen backlog (EAGAIN) means a live daemon that is busy: up.
    let busy = |e: &std::io::Error| e.kind() == std::io::ErrorKind::WouldBlock;
    if slot.mux.protocol() == Some(mux::Protocol::V1) {
        return match client::probe(&slot.path).await {
            Err(e) if !busy(&e) => Err(probe_reason(&e)),
            _ => Ok(()),
        };
    }
    match mux::hello(&slot.path).await {
        Ok(_) => Ok(()),
        Err(mux::CallError::Connect(e)) if busy(&e) => Ok(()),
        Err(mux::CallError::Connect(e)) | Err(mux::CallError::NotSent(e)) => Err(probe_reason(&e)),
        Err(mux::CallError::Foreign(why)) => Err(format!("foreign listener: {why}")),
        Err(e) => Err(e.to_string()),
    }
}

/// A short, stable reason for a failed connect (no paths: it is shown to clients).
pub fn probe_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
        std::io::ErrorKind::NotFound => "socket missing".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.kind().to_string(),
    }
}
