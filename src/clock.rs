//! Wall-clock time, for timestamps that are recorded (health `ts`, event ids). Durations and
//! timers use tokio time so tests can pause it.

use std::time::{SystemTime, UNIX_EPOCH};

pub fn epoch_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Epoch seconds with millisecond precision, as `/_fn/health` reports times.
pub fn epoch_secs() -> f64 {
    epoch_millis() as f64 / 1000.0
}
