//! Language runtimes: which exist, how files map to them, and (in submodules) how the gateway
//! talks to their daemons.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A language runtime. The order of the variants is not meaningful; the enabled order comes
/// from `FN_RUNTIMES` (see [`crate::config`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
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

    /// Runtimes on when `FN_RUNTIMES` is not set (rust and go are experimental).
    pub const DEFAULT_ORDER: [RuntimeKind; 4] = [
        RuntimeKind::Node,
        RuntimeKind::Python,
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
