//! Per-socket health (contract §5.4). The state machine is pure ([`SocketHealth::observe`]);
//! the probe loop that feeds it lives in [`crate::runtime::RuntimeSockets::probe_all`].

use serde::Serialize;

/// What is known of one socket. `up == None` until the first observation: unknown counts as
/// usable for selection.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SocketHealth {
    pub up: Option<bool>,
    /// `ok` or the last error.
    pub reason: String,
    /// Epoch seconds of the last observation.
    pub ts: f64,
    /// Connect refusals since the last observation (a busy daemon's backlog is not a refusal).
    #[serde(skip)]
    pub refusals: u32,
}

/// Refused connects in a row that mark a socket down before the next probe.
pub const REFUSALS_TO_DOWN: u32 = 3;

impl Default for SocketHealth {
    fn default() -> Self {
        SocketHealth {
            up: None,
            reason: "unknown".into(),
            ts: 0.0,
            refusals: 0,
        }
    }
}

impl SocketHealth {
    /// Record an observation at wall-clock time `ts`. Returns true when up/down flipped (or
    /// became known), which is when an event is worth emitting.
    pub fn observe(&mut self, result: Result<(), &str>, ts: f64) -> bool {
        let up = result.is_ok();
        let changed = self.up != Some(up);
        self.up = Some(up);
        self.reason = match result {
            Ok(()) => "ok".into(),
            Err(e) => e.to_string(),
        };
        self.ts = ts;
        self.refusals = 0;
        changed
    }

    /// A connect was refused. Down only after [`REFUSALS_TO_DOWN`] in a row, so one refusal
    /// (a daemon restarting, a race with its bind) does not send fast 503s for a probe interval.
    pub fn observe_refusal(&mut self, reason: &str, ts: f64) -> bool {
        self.refusals += 1;
        if self.refusals < REFUSALS_TO_DOWN || self.up == Some(false) {
            return false;
        }
        self.observe(Err(reason), ts)
    }

    /// Usable for selection: up or not yet known.
    pub fn usable(&self) -> bool {
        self.up != Some(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flips_are_reported_once() {
        let mut h = SocketHealth::default();
        assert!(h.usable(), "unknown counts as usable");
        assert!(h.observe(Ok(()), 1.0), "first observation is a change");
        assert!(!h.observe(Ok(()), 2.0));
        assert!(h.observe(Err("connection refused"), 3.0));
        assert_eq!(h.reason, "connection refused");
        assert!(!h.usable());
        assert!(!h.observe(Err("connection refused"), 4.0));
        assert!(h.observe(Ok(()), 5.0));
        assert_eq!((h.up, h.reason.as_str(), h.ts), (Some(true), "ok", 5.0));
    }

    #[test]
    fn repeated_refusals_mark_down_and_a_probe_resets_the_count() {
        let mut h = SocketHealth::default();
        h.observe(Ok(()), 1.0);
        assert!(!h.observe_refusal("connection refused", 2.0));
        assert!(!h.observe_refusal("connection refused", 2.1));
        assert!(h.usable(), "two refusals are not down");
        assert!(h.observe_refusal("connection refused", 2.2), "the third flips");
        assert!(!h.usable());
        assert!(
            !h.observe_refusal("connection refused", 2.3),
            "already down: no new flip"
        );
        assert!(h.observe(Ok(()), 3.0));
        assert!(!h.observe_refusal("connection refused", 3.1), "the count restarted");
        assert!(h.usable());
    }
}
