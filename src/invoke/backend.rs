//! The backends: how a call reaches each kind of runtime. Socket daemons (python, node, php)
//! over persistent v2 connections (or the contract's v1), in-process Lua, and compiled
//! Rust/Go processes. An enum rather than a `dyn` trait: three fixed kinds, and the hot path
//! keeps its futures unboxed.

use crate::engine::{FunctionSlot, Shared};
use crate::events::EngineEvent;
use crate::rescue::Failure;
use crate::routing::Target;
use crate::runtime::compiled::CompiledError;
use crate::runtime::lua::LuaError;
use crate::runtime::mux::{self, CallError, ReplyFrame};
use crate::runtime::{RuntimeKind, RuntimeSockets};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

/// One call, as every backend needs it: the request object without the body (`meta`), the
/// raw body, and a builder for the contract's whole frame (body inside, as text or base64) for
/// the backends that take it.
pub(crate) struct Call<'a> {
    pub meta: &'a [u8],
    pub body: &'a [u8],
    pub whole: &'a (dyn Fn() -> Vec<u8> + Sync),
    pub timeout: Duration,
    /// Safe to send again after the connection broke mid-call.
    pub idempotent: bool,
    /// The lab's faults, when any is set.
    pub lab: Option<&'a crate::lab::faults::Active>,
    /// Socket latency the lab added (µs).
    pub lab_us: AtomicU64,
    /// Time spent getting a daemon connection (µs): the `connect` stage.
    pub connect_us: AtomicU64,
    /// Building a compiled function before this call (µs).
    pub build_us: AtomicU64,
    /// The cold part of this call (µs): Lua module load, compiled process start.
    pub cold_us: AtomicU64,
    /// The handler's own time, when the backend measures it in-process (Lua).
    pub handler_us: AtomicU64,
    /// 1 + the paused socket skipped last (0: none).
    pub lab_skipped: AtomicUsize,
}

/// A call's result: the reply frame (parsed by the caller), and the 0-based socket that
/// served (or failed) it.
pub(crate) type Answer = (Result<ReplyFrame, Failure>, Option<usize>);

fn whole_reply(bytes: Vec<u8>) -> ReplyFrame {
    ReplyFrame {
        meta: bytes::Bytes::from(bytes),
        body: bytes::Bytes::new(),
    }
}

pub(crate) async fn call(shared: &Shared, target: &Target, slot: &FunctionSlot, call: &Call<'_>) -> Answer {
    match target.runtime {
        RuntimeKind::Lua => match &shared.lua {
            Some(lua) => match lua.call_timed((call.whole)(), call.timeout).await {
                Ok(reply) => {
                    call.handler_us.store(reply.handler_us, Ordering::Relaxed);
                    call.cold_us.store(reply.load_us, Ordering::Relaxed);
                    (Ok(whole_reply(reply.bytes)), Some(0))
                }
                Err(LuaError::Timeout) => (Err(Failure::Timeout), None),
                Err(LuaError::Worker(msg)) => (Err(Failure::RuntimeError(msg)), None),
            },
            None => (Err(Failure::RuntimeUnavailable), None),
        },
        RuntimeKind::Rust | RuntimeKind::Go => match shared.compiled.get(&target.runtime) {
            Some(compiled) => match compiled.call_timed(&target.entry, &(call.whole)(), call.timeout).await {
                Ok(reply) => {
                    call.build_us.store(reply.build_us, Ordering::Relaxed);
                    call.cold_us.store(reply.start_us, Ordering::Relaxed);
                    (Ok(whole_reply(reply.bytes)), Some(0))
                }
                Err(e) => {
                    let failure = match e {
                        CompiledError::Build { runtime, output } => Failure::BuildFailed {
                            runtime: runtime.name(),
                            output,
                        },
                        CompiledError::Timeout => Failure::Timeout,
                        CompiledError::Unavailable(_) => Failure::RuntimeUnavailable,
                        CompiledError::Exchange(msg) => Failure::RuntimeError(msg),
                    };
                    (Err(failure), None)
                }
            },
            None => (Err(Failure::RuntimeUnavailable), None),
        },
        _ => {
            // An isolated function has a daemon of its own (crate::isolation).
            let isolated = slot.isolation.sockets();
            match isolated.or_else(|| shared.runtimes.get(&target.runtime).map(|s| &**s)) {
                Some(sockets) => {
                    let max = shared.settings.max_frame_bytes;
                    if mux::call_frame_len(call.meta.len(), call.body.len()) > max {
                        return (Err(Failure::PayloadTooLarge), None);
                    }
                    match exchange(shared, sockets, call).await {
                        Ok((frame, i)) => (Ok(frame), Some(i)),
                        Err((failure, i, lost)) => {
                            // A shared daemon ended under this call: blame its function.
                            if lost && isolated.is_none() {
                                crate::isolation::isolate(shared, slot, i);
                            }
                            (Err(failure), i)
                        }
                    }
                }
                None => (Err(Failure::RuntimeUnavailable), None),
            }
        }
    }
}

/// One call on a socket picked by round robin, within the call's timeout. Retried once on
/// another socket when nothing reached a handler (connect refused, not written whole, a
/// foreign listener), or when the connection broke mid-call for an idempotent method. A busy
/// socket (full backlog) is retried, never marked down. A failure says whether a connection
/// broke under the call (`lost`) on the way.
async fn exchange(
    shared: &Shared,
    sockets: &RuntimeSockets,
    call: &Call<'_>,
) -> Result<(mux::ReplyFrame, usize), (Failure, Option<usize>, bool)> {
    // A daemon the lab is restarting (force cold on a runtime) comes back: its calls wait.
    let restarting = |lab: Option<&crate::lab::faults::Active>| lab.is_some_and(|l| l.restarting(sockets.kind));
    if sockets.balance.all_down() && !restarting(call.lab) {
        return Err((Failure::RuntimeDown, None, false));
    }
    let mut lost = false;
    let attempt = async {
        let mut except = None;
        let mut tries = 0;
        // The lab's faults as they are now, once this call has waited for a paused or
        // restarting socket (the snapshot taken at its start may be cleared meanwhile).
        let mut fresh: Option<std::sync::Arc<crate::lab::faults::Active>> = None;
        loop {
            let lab = fresh.as_deref().or(call.lab);
            let Some(i) = sockets.balance.pick(except) else {
                if restarting(lab) {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    fresh = Some(shared.lab.active().unwrap_or_default());
                    except = None;
                    continue;
                }
                let failure = if tries == 0 {
                    Failure::RuntimeDown
                } else {
                    Failure::RuntimeUnavailable
                };
                return Err((failure, except, lost));
            };
            if let Some(lab) = lab {
                if lab.paused(sockets.kind, i) {
                    call.lab_skipped.store(i + 1, Ordering::Relaxed);
                    // A paused socket accepts nothing: another takes the call; with none
                    // left, the call waits for it as in a backlog (up to its timeout).
                    let other = (0..sockets.sockets.len())
                        .any(|j| j != i && !sockets.balance.is_down(j) && !lab.paused(sockets.kind, j));
                    if other {
                        except = Some(i);
                    } else {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        fresh = Some(shared.lab.active().unwrap_or_default());
                    }
                    continue;
                }
                if let Some(d) = lab.socket_delay(sockets.kind, i, lab.seed()) {
                    tokio::time::sleep(d).await;
                    call.lab_us.fetch_add(d.as_micros() as u64, Ordering::Relaxed);
                }
            }
            let err = match sockets.sockets[i]
                .mux
                .call_timed(call.meta, call.body, call.whole, &call.connect_us)
                .await
            {
                Ok(frame) => return Ok((frame, i)),
                Err(e) => e,
            };
            tries += 1;
            lost |= matches!(err, CallError::Lost);
            let retry = match &err {
                CallError::Connect(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    // Busy, not down: give its accept loop a moment (or another socket a turn).
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    true
                }
                CallError::Connect(e) => {
                    let reason = crate::runtime::probe_reason(e);
                    if sockets.observe_refusal(i, &reason, crate::clock::epoch_secs()) {
                        emit_health(shared, sockets, i, reason);
                    }
                    true
                }
                CallError::Foreign(why) => {
                    let reason = format!("foreign listener: {why}");
                    if sockets.observe(i, Err(&reason), crate::clock::epoch_secs()) {
                        emit_health(shared, sockets, i, reason);
                    }
                    true
                }
                CallError::NotSent(_) => true,
                CallError::Lost => call.idempotent,
                CallError::Frame(_) | CallError::TooLarge => false,
            };
            let busy = matches!(&err, CallError::Connect(e) if e.kind() == std::io::ErrorKind::WouldBlock);
            // Busy sockets may be tried again until the timeout; a broken one once elsewhere.
            if !retry || (!busy && tries >= 2) {
                return Err((failure_of(err), Some(i), lost));
            }
            if !busy {
                // Part of the request's story (its detail shows it): the first socket failed.
                tracing::warn!("{} socket {}: {err}; trying again", sockets.kind, i + 1);
            }
            if !busy && sockets.sockets.len() > 1 {
                except = Some(i);
            }
        }
    };
    match tokio::time::timeout(call.timeout, attempt).await {
        Ok(r) => r,
        Err(_) => Err((Failure::Timeout, None, false)),
    }
}

fn failure_of(e: CallError) -> Failure {
    match e {
        CallError::Connect(_) | CallError::Foreign(_) | CallError::NotSent(_) => Failure::RuntimeUnavailable,
        CallError::Lost => Failure::RuntimeError("connection closed before a reply".into()),
        CallError::Frame(_) => Failure::InvalidReply,
        CallError::TooLarge => Failure::PayloadTooLarge,
    }
}

fn emit_health(shared: &Shared, sockets: &RuntimeSockets, i: usize, reason: String) {
    tracing::warn!("{} socket {} marked down: {reason}", sockets.kind, i + 1);
    shared.events.emit(EngineEvent::SocketHealth {
        runtime: sockets.kind,
        index: i + 1,
        up: false,
        reason,
    });
}
