//! The log book: the last lines of daemon stdout/stderr and per-call handler output, kept in
//! memory for `/_fn/logs`, `fastfn logs` and the dashboard.

use crate::runtime::RuntimeKind;
use serde::Serialize;
use std::collections::VecDeque;
use std::sync::Mutex;

pub const CAPACITY: usize = 2000;

#[derive(Debug, Clone, Serialize, ts_rs::TS)]
#[ts(export)]
pub struct LogLine {
    #[ts(type = "number")]
    pub ts: u64,
    pub runtime: RuntimeKind,
    /// Function that printed it, for per-call handler output.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    pub stream: &'static str,
    pub line: String,
}

#[derive(Debug, Default)]
pub struct LogBook {
    lines: Mutex<VecDeque<LogLine>>,
}

/// Filter for [`LogBook::tail`].
#[derive(Debug, Default, Clone)]
pub struct LogFilter {
    pub runtime: Option<RuntimeKind>,
    pub function: Option<String>,
    /// `stdout`, `stderr`, or `None` for all.
    pub stream: Option<String>,
    pub lines: usize,
}

impl LogBook {
    pub fn push(&self, line: LogLine) {
        let mut lines = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        if lines.len() == CAPACITY {
            lines.pop_front();
        }
        lines.push_back(line);
    }

    /// The last `filter.lines` matching lines, oldest first.
    pub fn tail(&self, filter: &LogFilter) -> Vec<LogLine> {
        let lines = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<LogLine> = lines
            .iter()
            .rev()
            .filter(|l| filter.runtime.is_none_or(|r| l.runtime == r))
            .filter(|l| {
                filter
                    .function
                    .as_deref()
                    .is_none_or(|f| l.function.as_deref() == Some(f))
            })
            .filter(|l| filter.stream.as_deref().is_none_or(|s| s == "all" || l.stream == s))
            .take(filter.lines.min(CAPACITY))
            .cloned()
            .collect();
        out.reverse();
        out
    }
}
