//! Crash isolation: one function's crashes cost only its own calls.
//!
//! All functions of a runtime share its daemon(s); that is the fast path (no extra process hop
//! per call). When a shared daemon dies under a call — the call's connection broke before a
//! reply and the call failed — the function of that call is *isolated*: from then on its calls
//! go to a daemon of its own (the same daemon program on its own socket, kept alive by the
//! supervisor's restart loop with backoff), while every other function stays on the shared
//! daemon. A function that keeps ending its process (`os._exit`, `process.exit`, a crashing
//! native extension) then takes down only its dedicated daemon, and `/_fn/health` names it
//! (`isolated_functions`: state `crashing`, last exit, restarts).
//!
//! Attribution is by the calls in flight: every function with a call on the daemon when it
//! died is isolated, so a healthy function that happened to be in flight moves too (it keeps
//! answering, on its own daemon). The first crash still costs the calls in flight on the shared
//! daemon and the time it takes to restart; every later crash does not.
//!
//! Invariants: an isolation lasts as long as the engine (a function that took a shared daemon
//! down is not trusted with it again); at most [`MAX_ISOLATED`] functions are isolated (each
//! is a process); on the call path, a function that is not isolated costs one `OnceLock` read.

use crate::engine::{FunctionSlot, Shared};
use crate::runtime::RuntimeSockets;
use crate::supervisor::Dedicated;
use serde::Serialize;
use std::sync::{Arc, OnceLock};

/// The most functions isolated at once (each has a daemon process of its own).
pub const MAX_ISOLATED: usize = 32;
/// A dedicated daemon that ended within this many seconds makes its function `crashing`.
pub const CRASHING_WINDOW_SECS: f64 = 30.0;

/// A function's isolation state, kept in its [`FunctionSlot`] across reloads.
#[derive(Default)]
pub struct Isolation {
    /// Set once, when the function is first blamed for a daemon's death; `None` inside when
    /// it cannot be isolated (the runtime's sockets are not the engine's own daemons).
    cell: OnceLock<Option<Arc<Quarantine>>>,
}

impl std::fmt::Debug for Isolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Isolation")
            .field("isolated", &self.quarantine().is_some())
            .finish()
    }
}

impl Isolation {
    /// The function's own daemon, once it is isolated.
    pub fn quarantine(&self) -> Option<&Arc<Quarantine>> {
        self.cell.get().and_then(Option::as_ref)
    }

    /// The sockets its calls go to instead of the runtime's shared ones.
    #[inline]
    pub fn sockets(&self) -> Option<&RuntimeSockets> {
        self.quarantine().map(|q| &*q.sockets)
    }
}

/// A function's dedicated daemon.
pub struct Quarantine {
    pub sockets: Arc<RuntimeSockets>,
    pub daemon: Dedicated,
    /// When it was isolated (epoch seconds).
    pub since: f64,
    /// Why: which shared daemon died under which call.
    pub cause: String,
}

/// What `/_fn/health` and the dashboard show for an isolated function.
#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
#[ts(export)]
pub struct IsolatedFunction {
    /// `<runtime>/<fn>@<version>`.
    pub key: String,
    pub runtime: crate::runtime::RuntimeKind,
    pub name: String,
    /// `crashing` while its daemon is down or ended within the last
    /// [`CRASHING_WINDOW_SECS`], else `isolated` (it runs on its own daemon and answers).
    pub state: IsolationState,
    pub cause: String,
    pub since: f64,
    pub pid: u32,
    pub restarts: u32,
    /// How its dedicated daemon last ended (`exit status: 3`, `signal: 9 (SIGKILL)`).
    pub last_exit: Option<String>,
    pub last_exit_at: Option<f64>,
    pub socket: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ts_rs::TS)]
#[ts(export)]
#[serde(rename_all = "snake_case")]
pub enum IsolationState {
    Isolated,
    Crashing,
}

/// Pure: the state of an isolated function from its daemon's facts.
pub fn state_of(running: bool, last_exit_at: Option<f64>, now: f64) -> IsolationState {
    let recent = last_exit_at.is_some_and(|t| now - t < CRASHING_WINDOW_SECS);
    if !running || recent {
        IsolationState::Crashing
    } else {
        IsolationState::Isolated
    }
}

/// Blame `slot`'s function for the death of the shared daemon its call was on (`socket_index`,
/// 0-based) and move it to a daemon of its own. Does nothing when it is isolated already, when
/// [`MAX_ISOLATED`] functions are, or when its runtime's daemons are not the engine's.
pub(crate) fn isolate(shared: &Shared, slot: &FunctionSlot, socket_index: Option<usize>) {
    if slot.isolation.cell.get().is_some() {
        return;
    }
    let slots = shared.function_slots();
    let isolated = slots.iter().filter(|s| s.isolation.quarantine().is_some()).count();
    if isolated >= MAX_ISOLATED {
        return;
    }
    let Some(shared_sockets) = shared.runtimes.get(&slot.runtime) else {
        return;
    };
    let daemon_no = socket_index.map(|i| i + 1).unwrap_or(1);
    let cause = format!(
        "the shared {} daemon {daemon_no} ended while a call of this function was in flight",
        slot.runtime
    );
    slot.isolation.cell.get_or_init(|| {
        // Named after the function key (stable, unique per function), short enough for a
        // Unix socket path.
        let socket = shared
            .socket_dir
            .join(format!("fn-{}-q{:08x}.sock", slot.runtime, key_hash(&slot.key)));
        let sockets = Arc::new(RuntimeSockets::with_limits(
            slot.runtime,
            vec![socket.clone()],
            shared.settings.runtime_connections,
            shared.settings.max_frame_bytes,
        ));
        // Numbered after the shared daemons in events and logs.
        let index = shared_sockets.sockets.len() + isolated + 1;
        let daemon = shared
            .supervisor()
            .dedicated(slot.runtime, index, socket, sockets.clone())?;
        shared.logs.error(&format!(
            "{}: {cause}; it now runs on a daemon of its own ({} daemon {index})",
            slot.key, slot.runtime
        ));
        Some(Arc::new(Quarantine {
            sockets,
            daemon,
            since: crate::clock::epoch_secs(),
            cause: cause.clone(),
        }))
    });
}

/// FNV-1a: a stable short name for a function's socket.
fn key_hash(key: &str) -> u32 {
    key.bytes()
        .fold(0x811c_9dc5u32, |h, b| (h ^ b as u32).wrapping_mul(0x0100_0193))
}

/// What health shows of `slot`'s isolation at `now` (epoch seconds); `None` when the function
/// runs on the shared daemon.
pub fn describe(slot: &FunctionSlot, now: f64) -> Option<IsolatedFunction> {
    let q = slot.isolation.quarantine()?;
    let handle = &q.daemon.handle;
    let last = handle.last_exit();
    let running = handle.pid() != 0 && q.sockets.sockets[0].health().up == Some(true);
    Some(IsolatedFunction {
        key: slot.key.clone(),
        runtime: slot.runtime,
        name: slot.name.clone(),
        state: state_of(running, last.as_ref().map(|l| l.1), now),
        cause: q.cause.clone(),
        since: q.since,
        pid: handle.pid(),
        restarts: handle.restarts(),
        last_exit_at: last.as_ref().map(|l| l.1),
        last_exit: last.map(|l| l.0),
        socket: q.sockets.sockets[0].uri(),
    })
}

/// Stop every dedicated daemon (engine stop).
pub(crate) async fn stop_all(shared: &Shared) {
    for slot in shared.function_slots() {
        if let Some(q) = slot.isolation.quarantine() {
            q.daemon.stop().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recent_or_down_daemon_is_crashing() {
        let now = 1000.0;
        assert_eq!(state_of(true, None, now), IsolationState::Isolated);
        assert_eq!(state_of(false, None, now), IsolationState::Crashing);
        assert_eq!(state_of(true, Some(now - 1.0), now), IsolationState::Crashing);
        assert_eq!(
            state_of(true, Some(now - CRASHING_WINDOW_SECS - 1.0), now),
            IsolationState::Isolated
        );
    }

    #[test]
    fn socket_names_are_stable_and_distinct() {
        assert_eq!(key_hash("python/crash@default"), key_hash("python/crash@default"));
        assert_ne!(key_hash("python/crash@default"), key_hash("python/healthy@default"));
    }
}
