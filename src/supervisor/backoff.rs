//! Restart backoff for crashed daemons: 0.5 s, 1 s, 2 s, 4 s, then 8 s; a daemon that stayed
//! up for a while starts again from 0.5 s. Pure.

use std::time::Duration;

pub const FIRST: Duration = Duration::from_millis(500);
pub const MAX: Duration = Duration::from_secs(8);
/// A daemon that ran this long before exiting is considered to have been healthy.
pub const STABLE: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { next: FIRST }
    }
}

impl Backoff {
    /// The daemon exited after running for `ran_for`: how long to wait before restarting it.
    pub fn on_exit(&mut self, ran_for: Duration) -> Duration {
        if ran_for >= STABLE {
            self.next = FIRST;
        }
        let delay = self.next;
        self.next = (delay * 2).min(MAX);
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn doubles_to_the_cap_and_resets_after_a_stable_run() {
        let mut b = Backoff::default();
        let quick = Duration::from_millis(10);
        let delays: Vec<u64> = (0..7).map(|_| b.on_exit(quick).as_millis() as u64).collect();
        assert_eq!(delays, [500, 1000, 2000, 4000, 8000, 8000, 8000]);
        assert_eq!(b.on_exit(STABLE), FIRST);
        assert_eq!(b.on_exit(quick), Duration::from_secs(1));
    }

    proptest! {
        #[test]
        fn always_within_bounds(runs in proptest::collection::vec(0u64..20_000, 1..50)) {
            let mut b = Backoff::default();
            for ms in runs {
                let d = b.on_exit(Duration::from_millis(ms));
                prop_assert!(d >= FIRST && d <= MAX);
            }
        }
    }
}
