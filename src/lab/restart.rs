//! Force cold on a runtime: restart its daemons gracefully, one socket at a time, so that no
//! call fails while load runs against it.
//!
//! For each socket in turn: the socket is taken out of round robin (a `restart` entry in the
//! lab's fault list, read like a pause: new calls go to the other sockets, or wait for this one
//! when it is the only one), the calls already on it are let finish, its daemon is sent
//! SIGTERM, the supervisor starts it again as after any exit, and once the new daemon accepts
//! calls the socket is put back. Then every function of the runtime is marked cold: the new
//! daemons have loaded nothing, and the next call of each is reported and measured as cold.

use super::faults::FaultSpec;
use super::LabError;
use crate::engine::Shared;
use crate::runtime::RuntimeKind;
use serde::Serialize;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::time::Instant;

/// How long the calls already on a socket may take to finish before its daemon is stopped
/// anyway (a handler stuck longer would otherwise hold the restart forever).
const DRAIN_LIMIT: Duration = Duration::from_secs(30);
/// How long a restarted daemon may take to accept calls again: the supervisor's start limit
/// plus its longest first restart delay.
const BACK_LIMIT: Duration = Duration::from_secs(20);
/// Calls that passed round robin just before the socket left it reach the socket within
/// this; the drain starts counting after it.
const SETTLE: Duration = Duration::from_millis(20);

/// One socket's restart, for the answer of `POST /_fn/lab/cold` with a runtime.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
#[ts(export)]
pub struct Restarted {
    /// 1-based, as health numbers sockets.
    pub socket: usize,
    pub old_pid: u32,
    pub new_pid: u32,
    /// From taking the socket out of round robin to putting it back.
    #[ts(type = "number")]
    pub ms: u64,
    /// Calls were still on the socket when [`DRAIN_LIMIT`] ran out.
    pub drain_timed_out: bool,
}

/// Clears the busy flag when the restart ends, however it ends.
struct Busy<'a>(&'a std::sync::atomic::AtomicBool);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// Restart every daemon of `runtime`, one at a time; returns what was done per socket.
pub(crate) async fn restart_runtime(shared: &Shared, runtime: RuntimeKind) -> Result<Vec<Restarted>, LabError> {
    let sockets = shared
        .runtimes
        .get(&runtime)
        .cloned()
        .ok_or(LabError::NotRunning(runtime))?;
    let daemons = shared.supervisor().daemons_of(runtime);
    if daemons.is_empty() || daemons.iter().all(|d| d.pid() == 0) {
        // Sockets given with FN_RUNTIME_SOCKETS, or a runtime no route uses: nothing of ours runs.
        return Err(LabError::NotRunning(runtime));
    }
    let lab = &shared.lab;
    if lab.restarting.swap(true, Ordering::AcqRel) {
        return Err(LabError::Busy);
    }
    let _busy = Busy(&lab.restarting);
    let mut out = Vec::new();
    for daemon in daemons {
        let i = daemon.index - 1;
        let Some(slot) = sockets.sockets.get(i) else { continue };
        let started = Instant::now();
        let fault = lab.set(FaultSpec::Restart {
            runtime,
            socket: daemon.index,
        });
        tokio::time::sleep(SETTLE).await;
        let drain_until = Instant::now() + DRAIN_LIMIT;
        while slot.mux.in_flight() > 0 && Instant::now() < drain_until {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let drain_timed_out = slot.mux.in_flight() > 0;
        let old_pid = daemon.pid();
        if old_pid != 0 {
            crate::process::signal_group(old_pid, crate::process::Signal::SIGTERM);
        }
        // Its connections end with the daemon; none has a call on it now.
        slot.mux.reset();
        let back_until = Instant::now() + BACK_LIMIT;
        let back = loop {
            let pid = daemon.pid();
            if pid != 0 && pid != old_pid && !sockets.balance.is_down(i) && slot.health().usable() {
                break true;
            }
            if Instant::now() >= back_until {
                break false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        lab.clear(Some(fault.id));
        if !back {
            return Err(LabError::NotBack {
                runtime,
                socket: daemon.index,
            });
        }
        out.push(Restarted {
            socket: daemon.index,
            old_pid,
            new_pid: daemon.pid(),
            ms: started.elapsed().as_millis() as u64,
            drain_timed_out,
        });
    }
    Ok(out)
}
