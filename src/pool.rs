//! Per-function admission (contract §5.2): at most `max_workers` calls run at once, up to
//! `max_queue` more wait in FIFO order for at most `queue_timeout_ms`, the rest are refused
//! with the pool's overflow status.
//!
//! [`Admission`] is the pure state machine; [`Pool`] wraps it in a mutex (never held across
//! an await) and hands out RAII [`Permit`]s. A queued caller waits on a oneshot channel, not a
//! sleep loop. Dropping a permit — including when hyper drops the request future because the
//! client hung up — hands the slot straight to the oldest waiter.

use crate::config::WorkerPoolPolicy;
use serde::Serialize;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::oneshot;

/// The admission limits of one function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `None` = unlimited.
    pub max_workers: Option<u64>,
    pub max_queue: u64,
    pub queue_timeout: Duration,
    pub overflow_status: u16,
}

impl Limits {
    pub fn from_policy(p: &WorkerPoolPolicy) -> Limits {
        Limits {
            max_workers: (p.max_workers > 0).then_some(p.max_workers as u64),
            max_queue: p.max_queue,
            queue_timeout: Duration::from_millis(p.queue_timeout_ms),
            overflow_status: p.overflow_status,
        }
    }
}

pub type Ticket = u64;

/// What happens to an arriving call.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    Run,
    Queued(Ticket),
    Reject,
}

/// Counters, as `/_fn/health` reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ts_rs::TS)]
#[ts(export)]
pub struct PoolStats {
    #[ts(type = "number")]
    pub active: u64,
    #[ts(type = "number")]
    pub queued: u64,
    #[ts(type = "number")]
    pub overflow_drops: u64,
    #[ts(type = "number")]
    pub timeout_drops: u64,
}

/// Pure admission state. `W` is what a queued caller is woken with (a channel in [`Pool`]).
#[derive(Debug)]
pub struct Admission<W> {
    limits: Limits,
    active: u64,
    queue: VecDeque<(Ticket, W)>,
    next_ticket: Ticket,
    overflow_drops: u64,
    timeout_drops: u64,
}

impl<W> Admission<W> {
    pub fn new(limits: Limits) -> Self {
        Admission {
            limits,
            active: 0,
            queue: VecDeque::new(),
            next_ticket: 0,
            overflow_drops: 0,
            timeout_drops: 0,
        }
    }

    /// New limits apply to the next arrivals; running and queued calls keep their place.
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// A call arrives. `waker` is kept only if the call is queued.
    pub fn arrive(&mut self, waker: W) -> Decision {
        self.arrive_with(|| waker)
    }

    /// [`Pool::arrive`], making the waker only when the call is queued: a call that runs at
    /// once or is refused allocates nothing.
    pub fn arrive_with(&mut self, waker: impl FnOnce() -> W) -> Decision {
        let has_room = self.limits.max_workers.is_none_or(|max| self.active < max);
        if has_room && self.queue.is_empty() {
            self.active += 1;
            return Decision::Run;
        }
        let can_wait = self.limits.max_queue > 0 && !self.limits.queue_timeout.is_zero();
        if can_wait && (self.queue.len() as u64) < self.limits.max_queue {
            let ticket = self.next_ticket;
            self.next_ticket += 1;
            self.queue.push_back((ticket, waker()));
            return Decision::Queued(ticket);
        }
        self.overflow_drops += 1;
        Decision::Reject
    }

    /// A running call finished. If someone waits (and the limit still allows), its slot is
    /// handed over and its waker returned; `active` is unchanged in that case.
    pub fn release(&mut self) -> Option<W> {
        let has_room = self.limits.max_workers.is_none_or(|max| self.active <= max);
        if has_room {
            if let Some((_, waker)) = self.queue.pop_front() {
                return Some(waker);
            }
        }
        self.active = self.active.saturating_sub(1);
        None
    }

    /// A queued caller gives up (timeout or hang-up). Returns false when it was not in the
    /// queue any more: its slot was already handed over, so it now holds a running slot.
    pub fn leave(&mut self, ticket: Ticket, timed_out: bool) -> bool {
        match self.queue.iter().position(|(t, _)| *t == ticket) {
            Some(i) => {
                self.queue.remove(i);
                if timed_out {
                    self.timeout_drops += 1;
                }
                true
            }
            None => false,
        }
    }

    pub fn stats(&self) -> PoolStats {
        PoolStats {
            active: self.active,
            queued: self.queue.len() as u64,
            overflow_drops: self.overflow_drops,
            timeout_drops: self.timeout_drops,
        }
    }
}

/// Why admission refused a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("worker pool overflow")]
    Overflow { status: u16 },
    #[error("worker pool queue timeout")]
    QueueTimeout { status: u16 },
}

/// The live pool of one function, shared by all its requests.
pub struct Pool {
    state: Mutex<Admission<oneshot::Sender<()>>>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool").field("stats", &self.stats()).finish()
    }
}

/// A running slot; dropping it frees the slot (or hands it to the oldest waiter).
#[derive(Debug)]
pub struct Permit {
    pool: Arc<Pool>,
    /// The call waited in the queue (`X-FastFN-Queued: true`).
    pub queued: bool,
    /// How long it waited there (µs; the clock is read only for a queued call).
    pub queue_us: u64,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.pool.release();
    }
}

impl Pool {
    pub fn new(limits: Limits) -> Arc<Pool> {
        // No observer: the dashboard reads the numbers a few times per second
        // (`inspect::live`), not twice per call.
        Arc::new(Pool {
            state: Mutex::new(Admission::new(limits)),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Admission<oneshot::Sender<()>>> {
        // A panic while holding this lock cannot leave the counters half-updated (each
        // method is a few integer ops), so a poisoned lock is still consistent.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn stats(&self) -> PoolStats {
        self.lock().stats()
    }

    pub fn limits(&self) -> Limits {
        self.lock().limits()
    }

    pub fn set_limits(&self, limits: Limits) {
        self.lock().set_limits(limits);
    }

    /// Wait for a running slot, or be refused.
    pub async fn acquire(self: &Arc<Self>) -> Result<Permit, Refusal> {
        let mut rx = None;
        let (decision, limits) = {
            let mut state = self.lock();
            let d = state.arrive_with(|| {
                let (tx, r) = oneshot::channel();
                rx = Some(r);
                tx
            });
            (d, state.limits())
        };
        let ticket = match decision {
            Decision::Run => {
                return Ok(Permit {
                    pool: self.clone(),
                    queued: false,
                    queue_us: 0,
                })
            }
            Decision::Reject => {
                return Err(Refusal::Overflow {
                    status: limits.overflow_status,
                })
            }
            Decision::Queued(ticket) => ticket,
        };
        let Some(rx) = rx else {
            unreachable!("a queued call has its waker")
        };
        // If this future is dropped while queued (client hung up), the guard leaves the queue,
        // or, if the slot was handed over meanwhile, gives it back.
        let mut guard = QueuedGuard {
            pool: self,
            ticket,
            armed: true,
        };
        let entered = tokio::time::Instant::now();
        let woken = tokio::time::timeout(limits.queue_timeout, rx).await;
        guard.armed = false;
        let queue_us = entered.elapsed().as_micros() as u64;
        match woken {
            Ok(_) => Ok(Permit {
                pool: self.clone(),
                queued: true,
                queue_us,
            }),
            Err(_elapsed) => {
                let left = self.lock().leave(ticket, true);
                if left {
                    Err(Refusal::QueueTimeout {
                        status: limits.overflow_status,
                    })
                } else {
                    // Handed a slot just as the timer fired: take it.
                    Ok(Permit {
                        pool: self.clone(),
                        queued: true,
                        queue_us,
                    })
                }
            }
        }
    }

    fn release(&self) {
        let mut state = self.lock();
        // A waiter whose receiver is gone has a guard that will give the slot back, so a
        // failed send needs no handling here.
        if let Some(waker) = state.release() {
            let _ = waker.send(());
        }
    }
}

struct QueuedGuard<'a> {
    pool: &'a Arc<Pool>,
    ticket: Ticket,
    armed: bool,
}

impl Drop for QueuedGuard<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let left = self.pool.lock().leave(self.ticket, false);
        if !left {
            // The slot was handed to us as we were dropped: pass it on.
            self.pool.release();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_workers: u64, max_queue: u64, timeout_ms: u64) -> Limits {
        Limits {
            max_workers: Some(max_workers),
            max_queue,
            queue_timeout: Duration::from_millis(timeout_ms),
            overflow_status: 429,
        }
    }

    #[test]
    fn runs_queues_then_rejects() {
        let mut a = Admission::new(limits(1, 1, 100));
        assert_eq!(a.arrive('a'), Decision::Run);
        assert_eq!(a.arrive('b'), Decision::Queued(0));
        assert_eq!(a.arrive('c'), Decision::Reject);
        assert_eq!(
            a.stats(),
            PoolStats {
                active: 1,
                queued: 1,
                overflow_drops: 1,
                timeout_drops: 0
            }
        );
        assert_eq!(a.release(), Some('b'), "slot handed to the waiter");
        assert_eq!(a.stats().active, 1);
        assert_eq!(a.release(), None);
        assert_eq!(a.stats().active, 0);
    }

    #[test]
    fn default_gate_rejects_the_21st() {
        let mut a = Admission::new(Limits::from_policy(&WorkerPoolPolicy::default()));
        for _ in 0..20 {
            assert_eq!(a.arrive(()), Decision::Run);
        }
        assert_eq!(a.arrive(()), Decision::Reject);
    }

    #[test]
    fn zero_queue_timeout_rejects_at_once() {
        let mut a = Admission::new(limits(1, 5, 0));
        assert_eq!(a.arrive(()), Decision::Run);
        assert_eq!(a.arrive(()), Decision::Reject);
    }

    #[test]
    fn queue_is_fifo_and_leaving_counts_timeouts_only() {
        let mut a = Admission::new(limits(1, 3, 100));
        a.arrive(0);
        let Decision::Queued(t1) = a.arrive(1) else { panic!() };
        let Decision::Queued(t2) = a.arrive(2) else { panic!() };
        let Decision::Queued(_t3) = a.arrive(3) else { panic!() };
        assert!(a.leave(t2, false), "hang-up leaves the queue");
        assert_eq!(a.stats().timeout_drops, 0);
        assert_eq!(a.release(), Some(1));
        assert!(!a.leave(t1, true), "already handed a slot");
        assert_eq!(a.release(), Some(3));
        assert_eq!(a.stats().queued, 0);
    }

    #[test]
    fn unlimited_never_queues() {
        let mut a = Admission::new(Limits {
            max_workers: None,
            ..limits(0, 0, 0)
        });
        for _ in 0..1000 {
            assert_eq!(a.arrive(()), Decision::Run);
        }
    }

    #[test]
    fn lowered_limit_drains_before_handing_over() {
        let mut a = Admission::new(limits(2, 2, 100));
        a.arrive(0);
        a.arrive(1);
        assert!(matches!(a.arrive(2), Decision::Queued(_)));
        a.set_limits(limits(1, 2, 100));
        assert_eq!(a.release(), None, "still over the new limit: no hand-over");
        assert_eq!(a.release(), Some(2));
    }

    #[tokio::test(start_paused = true)]
    async fn queued_call_wakes_when_a_permit_drops() {
        let pool = Pool::new(limits(1, 1, 1000));
        let first = pool.acquire().await.unwrap();
        assert!(!first.queued);
        let p2 = pool.clone();
        let waiter = tokio::spawn(async move { p2.acquire().await.map(|p| p.queued) });
        tokio::task::yield_now().await;
        assert_eq!(pool.stats().queued, 1);
        assert_eq!(pool.acquire().await.unwrap_err(), Refusal::Overflow { status: 429 });
        drop(first);
        assert_eq!(waiter.await.unwrap(), Ok(true));
        assert_eq!(
            pool.stats(),
            PoolStats {
                active: 0,
                queued: 0,
                overflow_drops: 1,
                timeout_drops: 0
            }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn queue_timeout_is_counted_separately() {
        let pool = Pool::new(limits(1, 1, 500));
        let _held = pool.acquire().await.unwrap();
        let started = tokio::time::Instant::now();
        assert_eq!(pool.acquire().await.unwrap_err(), Refusal::QueueTimeout { status: 429 });
        assert_eq!(started.elapsed(), Duration::from_millis(500));
        assert_eq!(pool.stats().timeout_drops, 1);
        assert_eq!(pool.stats().overflow_drops, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn dropped_waiter_gives_its_place_back() {
        let pool = Pool::new(limits(1, 1, 10_000));
        let held = pool.acquire().await.unwrap();
        let p2 = pool.clone();
        let waiter = tokio::spawn(async move { p2.acquire().await.map(drop) });
        tokio::task::yield_now().await;
        assert_eq!(pool.stats().queued, 1);
        waiter.abort();
        let _ = waiter.await;
        assert_eq!(pool.stats().queued, 0, "hang-up frees the queue place");
        drop(held);
        assert_eq!(pool.stats().active, 0);
        assert!(pool.acquire().await.is_ok());
    }
}
