//! Engine events: what the CLI prints, the dashboard shows and tests wait for. Our own
//! serialisable types; `notify`'s and hyper's types stay at the edges.

use crate::pool::PoolStats;
use crate::runtime::RuntimeKind;
use serde::Serialize;
use tokio::sync::broadcast;

/// Lifecycle phase of the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ts_rs::TS)]
#[ts(export)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Starting,
    Serving,
    Reloading,
    Stopping,
    Stopped,
}

#[derive(Debug, Clone, Serialize, ts_rs::TS)]
#[ts(export)]
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
        #[ts(type = "number")]
        ms: u64,
    },
    DaemonExited {
        runtime: RuntimeKind,
        index: usize,
        pid: u32,
        status: String,
        #[ts(type = "number | null")]
        restart_in_ms: Option<u64>,
    },
    /// A daemon could not be started at all (binary vanished, exec error).
    DaemonFailed {
        runtime: RuntimeKind,
        index: usize,
        code: &'static str,
        message: String,
    },
    /// Daemons run only for runtimes the route map uses: `needed: true` when a runtime's first
    /// route appeared and its daemons are starting; `needed: false` when it has no route (at
    /// start, or after its last route went) and its daemons are stopped. A runtime that is not
    /// needed is not down.
    RuntimeDemand {
        runtime: RuntimeKind,
        needed: bool,
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
        #[ts(type = "number")]
        ms: u64,
        error: Option<String>,
    },
    Pool {
        key: String,
        stats: PoolStats,
    },
    /// A compiled function (rust/go) started building; `function` is its root-relative entry.
    BuildStarted {
        runtime: RuntimeKind,
        function: String,
    },
    /// A compiled function's build ended; `message` is empty on success, else the trimmed
    /// compiler output (≤ 8 KiB).
    BuildFinished {
        runtime: RuntimeKind,
        function: String,
        ok: bool,
        #[ts(type = "number")]
        ms: u64,
        message: String,
    },
    /// A function folder's dependencies started installing (contract §4.2). `function` is the
    /// folder, relative to the root (`.` for the root itself); `manifest` names what is
    /// installed (`requirements.txt`, `package.json`, …); `installer` is the command line.
    DepsInstalling {
        runtime: RuntimeKind,
        function: String,
        manifest: String,
        installer: String,
    },
    /// One line of the package manager's output while it runs (stdout and stderr, as they
    /// come), so the dashboard can show an install's progress.
    DepsProgress {
        runtime: RuntimeKind,
        function: String,
        manager: crate::deps::Installer,
        line: String,
    },
    /// The install finished; the function answers again.
    DepsReady {
        runtime: RuntimeKind,
        function: String,
        manifest: String,
        #[ts(type = "number")]
        ms: u64,
    },
    /// The install failed (`deps.install_failed`, `deps.timeout`, `deps.missing_installer`,
    /// `deps.io`), or inference found imports it cannot name (`deps.unresolved_imports`);
    /// `output` is the installer's output, trimmed to its last lines (or inference's message);
    /// `package` is the package the output names as the cause, when it names one. Retried when
    /// the manifest changes.
    DepsFailed {
        runtime: RuntimeKind,
        function: String,
        manifest: String,
        code: &'static str,
        #[ts(type = "number")]
        ms: u64,
        output: String,
        package: Option<String>,
    },
    /// The saved tests ran (at start, after a reload, on demand): the dashboard's strip.
    TestsRun(Box<crate::inspect::saved::TestRun>),
    /// The requests recorded since the last batch (a few times per second while a dashboard
    /// listens), oldest first; at most [`crate::inspect::live::BATCH_MAX`], `left_out` counts
    /// the older ones of the interval that were not sent. Headers, bodies, output and log lines
    /// stay in the request log (`GET /_fn/requests/<id>`).
    Requests {
        requests: Vec<RequestSummary>,
        #[ts(type = "number")]
        left_out: u64,
    },
    /// CPU (% of one core) and resident memory of a daemon, every few seconds.
    DaemonUsage {
        runtime: RuntimeKind,
        index: usize,
        pid: u32,
        cpu_percent: f32,
        #[ts(type = "number")]
        rss_bytes: u64,
    },
}

/// One finished request, for the request log.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
#[ts(export)]
pub struct RequestRecord {
    /// What the live stream sends of it; here with the why worked out when read (a 404's
    /// method mismatch, private file or nearest routes; the files a route shadows).
    #[serde(flatten)]
    #[ts(flatten)]
    pub summary: RequestSummary,
    /// Response headers (captured while a dashboard is open; secrets masked).
    pub headers: Vec<(String, String)>,
    /// The function's entry file, relative to the root.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub version: Option<String>,
    /// The handler's stdout/stderr of this call.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub stdout: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub stderr: Option<String>,
    /// Engine log lines written while this request was served (warnings of the gateway and
    /// the invoke pipeline, error-log lines), tagged with its id on the engine's output.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[ts(as = "Option<Vec<crate::inspect::logs::LogLine>>", optional)]
    pub logs: Vec<crate::inspect::logs::LogLine>,
}

/// One request of a live `requests` batch: what the request list and the live charts show.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
#[ts(export)]
pub struct RequestSummary {
    pub id: String,
    #[ts(type = "number")]
    pub seq: u64,
    #[ts(type = "number")]
    pub ts: u64,
    pub method: String,
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub query: Option<String>,
    pub status: u16,
    pub reason: crate::inspect::Reason,
    /// The why known when the request was answered (a 404's nearest routes come with its
    /// detail).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub why: Option<String>,
    pub kind: crate::inspect::Kind,
    #[ts(type = "number")]
    pub latency_us: u64,
    pub stages: Stages,
    pub runtime: Option<RuntimeKind>,
    pub function: Option<String>,
    pub socket_index: Option<usize>,
    pub queued: bool,
    pub cold: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub trigger: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub fault: Option<String>,
    pub captured: bool,
    pub replay: bool,
}

/// A request's stages in microseconds, from the engine's own clock (also sent as
/// `Server-Timing` with debug headers).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ts_rs::TS)]
#[ts(export)]
pub struct Stages {
    /// Accept to route decision: the router, home and static-file checks.
    #[ts(type = "number")]
    pub route_us: u64,
    /// Waiting for the function's dependencies to finish installing (0 when they were ready).
    #[ts(type = "number")]
    pub deps_us: u64,
    /// The admission check for a worker-pool slot (the queue wait is `queue_us`).
    #[ts(type = "number")]
    pub admission_us: u64,
    /// Waiting in the function's queue for a slot (0 unless `queued`).
    #[serde(default)]
    #[ts(type = "number")]
    pub queue_us: u64,
    /// Reading the request body.
    #[ts(type = "number")]
    pub body_us: u64,
    /// Getting a connection to the daemon: ~0 on one already open, the connect and the
    /// protocol hello when one is opened (socket daemons on v2; 0 for others).
    #[serde(default)]
    #[ts(type = "number")]
    pub connect_us: u64,
    /// Building a compiled function (rust/go) before its call: the first call after a change.
    #[serde(default)]
    #[ts(type = "number")]
    pub build_us: u64,
    /// The cold part of a cold call: loading the Lua module into a fresh state, starting a
    /// rust/go function's process (0 for daemons: their start is not a call's).
    #[serde(default)]
    #[ts(type = "number")]
    pub cold_us: u64,
    /// Send, the daemon's dispatch, and the reply's bytes back (the handler too when its
    /// runtime does not report `handler_us`).
    #[ts(type = "number")]
    pub runtime_us: u64,
    /// The call's own time: inside its daemon, as the daemon reports it (python, node, php),
    /// or around the Lua function's call (lua); 0 when unknown (rust, go, a v1 daemon).
    #[serde(default)]
    #[ts(type = "number")]
    pub handler_us: u64,
    /// Parsing and validating the reply.
    #[ts(type = "number")]
    pub reply_us: u64,
    /// Latency the lab injected (function or socket), apart from the runtime stage.
    #[serde(default)]
    #[ts(type = "number")]
    pub fault_us: u64,
    /// Building the response from the reply (headers, record) until it is handed to hyper.
    #[ts(type = "number")]
    pub respond_us: u64,
}

/// Fan-out of events on two channels: `lifecycle` (phases, daemons, health, logs, reloads) for
/// everyone, and `live` (batches of request summaries, pool changes, daemon usage) for dashboards. The hot path only
/// builds live events when someone listens to them, so a CLI that prints daemon events pays
/// nothing per request. Sending never blocks; slow receivers lose the oldest events.
#[derive(Debug, Clone)]
pub struct EventBus {
    lifecycle: broadcast::Sender<EngineEvent>,
    live: broadcast::Sender<EngineEvent>,
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus {
            lifecycle: broadcast::channel(1024).0,
            live: broadcast::channel(4096).0,
        }
    }
}

impl EventBus {
    /// Emit on the channel the event belongs to.
    pub fn emit(&self, event: EngineEvent) {
        let channel = match event {
            EngineEvent::Requests { .. } | EngineEvent::Pool { .. } | EngineEvent::DaemonUsage { .. } => &self.live,
            _ => &self.lifecycle,
        };
        // No receiver is fine: nobody is watching.
        let _ = channel.send(event);
    }

    /// Lifecycle events: phases, daemons, socket health, logs, reloads, dependency installs.
    pub fn subscribe(&self) -> broadcast::Receiver<EngineEvent> {
        self.lifecycle.subscribe()
    }

    /// Live events: request records and pool changes.
    pub fn subscribe_live(&self) -> broadcast::Receiver<EngineEvent> {
        self.live.subscribe()
    }

    /// Whether anyone listens to live events (lets the hot path skip building them).
    pub fn has_live_receivers(&self) -> bool {
        self.live.receiver_count() > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn requests_and_pool_changes_go_to_live_listeners_only() {
        let bus = EventBus::default();
        let mut lifecycle = bus.subscribe();
        assert!(!bus.has_live_receivers());
        let mut live = bus.subscribe_live();
        assert!(bus.has_live_receivers());
        bus.emit(EngineEvent::Pool {
            key: "node/a@default".into(),
            stats: PoolStats::default(),
        });
        bus.emit(EngineEvent::Phase { phase: Phase::Serving });
        assert!(matches!(live.recv().await.unwrap(), EngineEvent::Pool { .. }));
        assert!(matches!(
            lifecycle.recv().await.unwrap(),
            EngineEvent::Phase { phase: Phase::Serving }
        ));
        assert!(lifecycle.try_recv().is_err(), "the pool event is not a lifecycle event");
        assert!(live.try_recv().is_err());
    }
}
