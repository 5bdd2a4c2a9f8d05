//! Round robin over the sockets of one runtime, skipping those marked down (contract §5.4).
//! Lock-free: one atomic counter and one atomic state per socket, read on every request.

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

const UNKNOWN: u8 = 0;
const UP: u8 = 1;
const DOWN: u8 = 2;

#[derive(Debug)]
pub struct RoundRobin {
    next: AtomicUsize,
    states: Box<[AtomicU8]>,
}

impl RoundRobin {
    pub fn new(sockets: usize) -> Self {
        RoundRobin {
            next: AtomicUsize::new(0),
            states: (0..sockets).map(|_| AtomicU8::new(UNKNOWN)).collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.states.len()
    }

    pub fn is_empty(&self) -> bool {
        self.states.is_empty()
    }

    pub fn set_up(&self, index: usize, up: bool) {
        if let Some(s) = self.states.get(index) {
            s.store(if up { UP } else { DOWN }, Ordering::Relaxed);
        }
    }

    pub fn is_down(&self, index: usize) -> bool {
        self.states
            .get(index)
            .is_some_and(|s| s.load(Ordering::Relaxed) == DOWN)
    }

    /// Every socket is known to be down.
    pub fn all_down(&self) -> bool {
        !self.states.is_empty() && self.states.iter().all(|s| s.load(Ordering::Relaxed) == DOWN)
    }

    /// The next usable socket (0-based) other than `except`, or `None` when none is usable.
    pub fn pick(&self, except: Option<usize>) -> Option<usize> {
        let n = self.states.len();
        if n == 0 {
            return None;
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..n)
            .map(|k| (start + k) % n)
            .find(|&i| Some(i) != except && self.states[i].load(Ordering::Relaxed) != DOWN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rotates_and_skips_down_sockets() {
        let rr = RoundRobin::new(3);
        let picks: Vec<_> = (0..6).map(|_| rr.pick(None).unwrap()).collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2]);
        rr.set_up(1, false);
        let picks: Vec<_> = (0..4).map(|_| rr.pick(None).unwrap()).collect();
        assert!(!picks.contains(&1), "{picks:?}");
        assert_eq!(rr.pick(Some(0)), Some(2));
        rr.set_up(0, false);
        rr.set_up(2, false);
        assert!(rr.all_down());
        assert_eq!(rr.pick(None), None);
        rr.set_up(2, true);
        assert_eq!(rr.pick(None), Some(2));
        assert_eq!(rr.pick(Some(2)), None, "no other usable socket for a retry");
    }

    proptest! {
        /// Over k·n picks with every socket usable, each socket is chosen exactly k times.
        #[test]
        fn fair_when_all_up(n in 1usize..8, k in 1usize..20) {
            let rr = RoundRobin::new(n);
            let mut counts = vec![0usize; n];
            for _ in 0..n * k {
                counts[rr.pick(None).unwrap()] += 1;
            }
            prop_assert!(counts.iter().all(|&c| c == k), "{:?}", counts);
        }
    }
}
