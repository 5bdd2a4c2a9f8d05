//! Injected faults: what the lab has switched on, as one immutable snapshot the request path
//! reads with a single atomic load (none set: one `AtomicBool` load and nothing else).
//!
//! Invariants: a snapshot never changes once published (updates build a new one); a fault
//! names a socket by its 1-based index, as health and the request record do; the "fail N %"
//! decision is exact over any run of calls (error diffusion, not a coin), so 1,000 calls at
//! 30 % fail exactly 300 times and a test can hold it to that.

use crate::runtime::RuntimeKind;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// One fault, as the admin API takes it and health lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[ts(export)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultSpec {
    /// The engine stops sending new calls to this socket (as a daemon that stops accepting):
    /// round robin moves on to the other sockets; with none left, calls wait for it (up to
    /// their timeout), as in a listen backlog nobody accepts.
    Pause { runtime: RuntimeKind, socket: usize },
    /// Every call that goes to this socket waits `fixed_ms` plus up to `jitter_ms` first.
    SocketLatency {
        runtime: RuntimeKind,
        socket: usize,
        #[serde(default)]
        #[ts(type = "number")]
        fixed_ms: u64,
        #[serde(default)]
        #[ts(type = "number")]
        jitter_ms: u64,
    },
    /// Every call of this function waits `fixed_ms` plus up to `jitter_ms` after admission.
    FunctionLatency {
        function: String,
        #[serde(default)]
        #[ts(type = "number")]
        fixed_ms: u64,
        #[serde(default)]
        #[ts(type = "number")]
        jitter_ms: u64,
    },
    /// `percent` % of this function's calls are answered with `status` by the engine, without
    /// reaching the handler.
    FunctionFail {
        function: String,
        percent: f64,
        status: u16,
    },
    /// The function's dependency install fails (as an installer that exits non-zero would):
    /// the function answers 503 with the failure, health lists the install as failed. Cleared,
    /// the install runs again at the function's next call.
    DepsFail { function: String },
    /// Set by "force cold" on a runtime, never by hand: the socket's daemon is being restarted
    /// gracefully. The socket takes no new calls (as when paused) until its daemon is back.
    Restart { runtime: RuntimeKind, socket: usize },
}

/// An active fault: its spec, an id to clear it by, and when it was set.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
#[ts(export)]
pub struct Fault {
    #[ts(type = "number")]
    pub id: u64,
    /// Epoch milliseconds.
    #[ts(type = "number")]
    pub since_ms: u64,
    pub spec: FaultSpec,
}

/// Why a spec was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("socket indexes start at 1")]
    SocketZero,
    #[error("percent must be between 0 and 100")]
    Percent,
    #[error("status must be between 400 and 599")]
    Status,
    #[error("latency is at most 60000 ms")]
    TooSlow,
    #[error("function name is empty")]
    NoFunction,
    #[error("a restart is set by force cold on the runtime, not by hand")]
    Internal,
}

const MAX_LATENCY_MS: u64 = 60_000;

impl FaultSpec {
    pub fn validate(&self) -> Result<(), SpecError> {
        let latency = |fixed: u64, jitter: u64| {
            if fixed.saturating_add(jitter) > MAX_LATENCY_MS {
                Err(SpecError::TooSlow)
            } else {
                Ok(())
            }
        };
        match self {
            FaultSpec::Restart { .. } => Err(SpecError::Internal),
            FaultSpec::Pause { socket, .. } if *socket == 0 => Err(SpecError::SocketZero),
            FaultSpec::SocketLatency { socket, .. } if *socket == 0 => Err(SpecError::SocketZero),
            FaultSpec::SocketLatency {
                fixed_ms, jitter_ms, ..
            } => latency(*fixed_ms, *jitter_ms),
            FaultSpec::FunctionLatency { function, .. }
            | FaultSpec::FunctionFail { function, .. }
            | FaultSpec::DepsFail { function }
                if function.is_empty() =>
            {
                Err(SpecError::NoFunction)
            }
            FaultSpec::FunctionLatency {
                fixed_ms, jitter_ms, ..
            } => latency(*fixed_ms, *jitter_ms),
            FaultSpec::FunctionFail { percent, .. } if !(0.0..=100.0).contains(percent) => Err(SpecError::Percent),
            FaultSpec::FunctionFail { status, .. } if !(400..=599).contains(status) => Err(SpecError::Status),
            _ => Ok(()),
        }
    }

    /// The function this spec is about, if any.
    pub fn function(&self) -> Option<&str> {
        match self {
            FaultSpec::FunctionLatency { function, .. }
            | FaultSpec::FunctionFail { function, .. }
            | FaultSpec::DepsFail { function } => Some(function),
            _ => None,
        }
    }

    /// Whether `other` replaces this one (same kind, same target): setting a fault twice
    /// updates it instead of stacking two.
    fn same_slot(&self, other: &FaultSpec) -> bool {
        use FaultSpec::*;
        match (self, other) {
            (Pause { runtime: a, socket: i }, Pause { runtime: b, socket: j })
            | (Restart { runtime: a, socket: i }, Restart { runtime: b, socket: j })
            | (
                SocketLatency {
                    runtime: a, socket: i, ..
                },
                SocketLatency {
                    runtime: b, socket: j, ..
                },
            ) => a == b && i == j,
            (FunctionLatency { function: a, .. }, FunctionLatency { function: b, .. })
            | (FunctionFail { function: a, .. }, FunctionFail { function: b, .. })
            | (DepsFail { function: a }, DepsFail { function: b }) => a == b,
            _ => false,
        }
    }
}

/// The published snapshot: the faults and, beside each, its call counter (for the exact
/// failure rate).
#[derive(Debug, Default)]
pub struct Active {
    faults: Vec<Fault>,
    calls: Vec<AtomicU64>,
    /// Jitter seeds: a counter, hashed by [`delay`].
    seq: AtomicU64,
}

impl Active {
    pub fn new(faults: Vec<Fault>) -> Active {
        let calls = faults.iter().map(|_| AtomicU64::new(0)).collect();
        Active {
            faults,
            calls,
            seq: AtomicU64::new(crate::clock::epoch_millis()),
        }
    }

    /// A fresh seed for a jittered delay.
    pub fn seed(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::Relaxed)
    }

    pub fn list(&self) -> &[Fault] {
        &self.faults
    }

    /// The list with `spec` added (replacing one on the same target).
    pub fn with(&self, fault: Fault) -> Vec<Fault> {
        let mut out: Vec<Fault> = self
            .faults
            .iter()
            .filter(|f| !f.spec.same_slot(&fault.spec))
            .cloned()
            .collect();
        out.push(fault);
        out
    }

    /// Whether the engine should skip socket `index` (0-based) of `runtime`: paused, or its
    /// daemon being restarted.
    pub fn paused(&self, runtime: RuntimeKind, index: usize) -> bool {
        self.faults.iter().any(|f| {
            matches!(&f.spec, FaultSpec::Pause { runtime: r, socket } | FaultSpec::Restart { runtime: r, socket }
                if *r == runtime && *socket == index + 1)
        })
    }

    /// Whether a daemon of `runtime` is being restarted by the lab.
    pub fn restarting(&self, runtime: RuntimeKind) -> bool {
        self.faults
            .iter()
            .any(|f| matches!(&f.spec, FaultSpec::Restart { runtime: r, .. } if *r == runtime))
    }

    /// The delay to add before a call on socket `index` (0-based) of `runtime`.
    pub fn socket_delay(&self, runtime: RuntimeKind, index: usize, seed: u64) -> Option<Duration> {
        self.faults.iter().find_map(|f| match &f.spec {
            FaultSpec::SocketLatency {
                runtime: r,
                socket,
                fixed_ms,
                jitter_ms,
            } if *r == runtime && *socket == index + 1 => Some(delay(*fixed_ms, *jitter_ms, seed)),
            _ => None,
        })
    }

    /// The delay to add to a call of `function`.
    pub fn function_delay(&self, function: &str, seed: u64) -> Option<Duration> {
        self.faults.iter().find_map(|f| match &f.spec {
            FaultSpec::FunctionLatency {
                function: name,
                fixed_ms,
                jitter_ms,
            } if name == function => Some(delay(*fixed_ms, *jitter_ms, seed)),
            _ => None,
        })
    }

    /// The status this call of `function` must fail with, if it is one of the chosen share.
    pub fn fail_now(&self, function: &str) -> Option<u16> {
        self.faults
            .iter()
            .zip(&self.calls)
            .find_map(|(f, calls)| match &f.spec {
                FaultSpec::FunctionFail {
                    function: name,
                    percent,
                    status,
                } if name == function => {
                    let k = calls.fetch_add(1, Ordering::Relaxed) + 1;
                    fails(k, *percent).then_some(*status)
                }
                _ => None,
            })
    }
}

/// Call `k` (1-based) fails when it carries the running total of failures at `percent` past
/// a whole number: floor(k·p) > floor((k-1)·p).
pub fn fails(k: u64, percent: f64) -> bool {
    let p = percent / 100.0;
    (k as f64 * p).floor() > ((k - 1) as f64 * p).floor()
}

/// `fixed` plus a pseudo-random share of `jitter` (a hash of `seed`: no RNG crate, and no
/// shared state on the request path).
pub fn delay(fixed_ms: u64, jitter_ms: u64, seed: u64) -> Duration {
    let extra = if jitter_ms == 0 {
        0
    } else {
        // splitmix64
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % (jitter_ms + 1)
    };
    Duration::from_millis(fixed_ms + extra)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(id: u64, spec: FaultSpec) -> Fault {
        Fault { id, since_ms: 0, spec }
    }

    #[test]
    fn failure_share_is_exact() {
        for p in [0.0, 1.0, 12.5, 30.0, 50.0, 99.0, 100.0] {
            let n = (1..=1000).filter(|&k| fails(k, p)).count() as f64;
            assert!((n - p * 10.0).abs() <= 1.0, "{p}% gave {n}");
        }
        let active = Active::new(vec![fault(
            1,
            FaultSpec::FunctionFail {
                function: "f".into(),
                percent: 25.0,
                status: 503,
            },
        )]);
        let statuses: Vec<_> = (0..8).map(|_| active.fail_now("f")).collect();
        assert_eq!(statuses.iter().filter(|s| **s == Some(503)).count(), 2);
        assert_eq!(active.fail_now("g"), None);
    }

    #[test]
    fn pause_and_latency_name_sockets_from_one() {
        let active = Active::new(vec![
            fault(
                1,
                FaultSpec::Pause {
                    runtime: RuntimeKind::Python,
                    socket: 2,
                },
            ),
            fault(
                2,
                FaultSpec::SocketLatency {
                    runtime: RuntimeKind::Node,
                    socket: 1,
                    fixed_ms: 40,
                    jitter_ms: 0,
                },
            ),
        ]);
        assert!(active.paused(RuntimeKind::Python, 1));
        assert!(!active.paused(RuntimeKind::Python, 0));
        assert!(!active.paused(RuntimeKind::Node, 1));
        assert_eq!(
            active.socket_delay(RuntimeKind::Node, 0, 7),
            Some(Duration::from_millis(40))
        );
        assert_eq!(active.socket_delay(RuntimeKind::Node, 1, 7), None);
    }

    #[test]
    fn jitter_stays_in_bounds_and_varies() {
        let ds: Vec<_> = (0..200).map(|s| delay(10, 20, s).as_millis()).collect();
        assert!(ds.iter().all(|d| (10..=30).contains(d)));
        assert!(ds.iter().collect::<std::collections::BTreeSet<_>>().len() > 5);
    }

    #[test]
    fn setting_twice_replaces() {
        let spec = |ms| FaultSpec::FunctionLatency {
            function: "f".into(),
            fixed_ms: ms,
            jitter_ms: 0,
        };
        let a = Active::new(vec![fault(1, spec(10))]);
        let list = a.with(fault(2, spec(20)));
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].spec, spec(20));
    }

    #[test]
    fn bad_specs_are_refused() {
        let fail = |percent, status| FaultSpec::FunctionFail {
            function: "f".into(),
            percent,
            status,
        };
        assert_eq!(fail(101.0, 500).validate(), Err(SpecError::Percent));
        assert_eq!(fail(10.0, 200).validate(), Err(SpecError::Status));
        assert_eq!(fail(10.0, 503).validate(), Ok(()));
        assert_eq!(
            FaultSpec::Pause {
                runtime: RuntimeKind::Python,
                socket: 0
            }
            .validate(),
            Err(SpecError::SocketZero)
        );
        let slow = FaultSpec::FunctionLatency {
            function: "f".into(),
            fixed_ms: 60_000,
            jitter_ms: 1,
        };
        assert_eq!(slow.validate(), Err(SpecError::TooSlow));
    }
}
