//! Engine events: what the CLI prints, the dashboard shows and tests wait for. Our own
//! serialisable types; `notify`'s and hyper's types stay at the edges.

use crate::pool::PoolStats;
use crate::runtime::RuntimeKind;
use serde::Serialize;
use tokio::sync::broadcast;

/// Lifecycle phase of the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Starting,
    Serving,
    Reloading,
    Stopping,
    Stopped,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EngineEvent {
    Phase {
        phase: Phase,
    },
    DaemonStarted {
        runtime: RuntimeKind,
        index: usize,
        pid: u32,
    },
    DaemonReady {
        runtime: RuntimeKind,
        index: usize,
        pid: u32,
        ms: u64,
    },
    DaemonExited {
        runtime: RuntimeKind,
        index: usize,
        pid: u32,
        status: String,
        restart_in_ms: Option<u64>,
    },
    /// A daemon could not be started at all (binary vanished, exec error).
    DaemonFailed {
        runtime: RuntimeKind,
        index: usize,
        code: &'static str,
        message: String,
    },
    SocketHealth {
        runtime: RuntimeKind,
        index: usize,
        up: bool,
        reason: String,
    },
    Log {
        runtime: RuntimeKind,
        index: usize,
        stream: &'static str,
        line: String,
    },
    Reload {
        ok: bool,
        files: Vec<String>,
        routes: usize,
        added: Vec<String>,
        removed: Vec<String>,
        ms: u64,
        error: Option<String>,
    },
    Pool {
        key: String,
        stats: PoolStats,
    },
    Request(RequestRecord),
}

/// One finished request, for the request log.
#[derive(Debug, Clone, Serialize)]
pub struct RequestRecord {
    pub id: String,
    pub ts: u64,
    pub method: String,
    pub path: String,
    pub status: u16,
    pub latency_us: u64,
    pub runtime: Option<RuntimeKind>,
    pub function: Option<String>,
    pub socket_index: Option<usize>,
    pub queued: bool,
    pub cold: bool,
    pub headers: Vec<(String, String)>,
}

/// Fan-out of events. Sending never blocks; slow receivers lose the oldest events.
#[derive(Debug, Clone)]
pub struct EventBus {
    tx: broadcast::Sender<EngineEvent>,
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus {
            tx: broadcast::channel(4096).0,
        }
    }
}

impl EventBus {
    pub fn emit(&self, event: EngineEvent) {
        // No receiver is fine: nobody is watching.
        let _ = self.tx.send(event);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<EngineEvent> {
        self.tx.subscribe()
    }

    /// Whether anyone listens (lets the hot path skip building request records).
    pub fn has_receivers(&self) -> bool {
        self.tx.receiver_count() > 0
    }
}
