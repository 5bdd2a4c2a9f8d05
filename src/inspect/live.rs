//! The dashboard's live view of requests and worker pools, sent in batches a few times per
//! second instead of one event per request or per pool change.
//!
//! Why: with a dashboard open, one event per request meant a record built, serialised and
//! written to the event stream per request (a write syscall and a wake-up of the reader
//! each), and two `pool` events per call; a third to a half of the engine's throughput went
//! there at c=16 (docs/benchmarks.md, #12). Now the hot path only pushes its entry into the
//! request log, as it does with no dashboard; this task reads the entries pushed since its
//! last tick and sends their summaries as one `requests` event, and the pools whose numbers
//! changed as `pool` events. The cost is bounded by the interval and [`BATCH_MAX`], not by
//! the request rate.

use crate::engine::Shared;
use crate::events::EngineEvent;
use crate::pool::PoolStats;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// How often a batch is sent (while someone listens).
pub const INTERVAL: Duration = Duration::from_millis(250);
/// Summaries per batch at most: the newest are sent, the rest counted (`left_out`). 800 a
/// second: the dashboard keeps the newest 500 requests, so under load its list still turns
/// over within a second, and the task's work (summaries, a 404's method check, JSON) stays a
/// fixed small cost whatever the request rate.
pub const BATCH_MAX: usize = 200;

/// The last numbers sent per pool; says which changed.
#[derive(Debug, Default)]
pub struct PoolWatch {
    sent: HashMap<String, PoolStats>,
}

impl PoolWatch {
    /// The pools whose numbers differ from the last ones seen; with `emit` false (a listener
    /// just arrived: it reads the current numbers from `/_fn/health`), only remembered.
    pub fn changed<'a>(
        &mut self,
        now: impl Iterator<Item = (&'a str, PoolStats)>,
        emit: bool,
    ) -> Vec<(String, PoolStats)> {
        let mut out = Vec::new();
        for (key, stats) in now {
            if self.sent.get(key) == Some(&stats) {
                continue;
            }
            self.sent.insert(key.to_string(), stats);
            if emit {
                out.push((key.to_string(), stats));
            }
        }
        out
    }
}

/// A 404 told apart here, off the request path (the gateway does not walk every method for
/// a 404 unless debug headers ask for its reason at once).
fn tell_method_mismatch(map: &crate::routing::RouteMap, r: &mut crate::events::RequestSummary) {
    if r.reason != super::Reason::NoRoute {
        return;
    }
    if let Some(why) = super::method_mismatch(map, &r.method, &r.path, None) {
        r.reason = super::Reason::MethodMismatch;
        r.why = Some(why);
    }
}

/// Send batches until the task is aborted (the engine's stop).
pub async fn run(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut cursor = shared.inspector.pushed();
    let mut pools = PoolWatch::default();
    let mut listening = false;
    loop {
        tick.tick().await;
        if !shared.events.has_live_receivers() {
            // Kept current, so that a listener that arrives gets the requests since the tick
            // before it (not those of an hour ago, nor none of the ones it just sent).
            listening = false;
            cursor = shared.inspector.pushed();
            continue;
        }
        let served = shared.served();
        // Several routes of one function share its slot (`changed` sees it once per value).
        let stats = served.slots().map(|s| (s.key.as_str(), s.pool.stats()));
        let changed = pools.changed(stats, listening);
        listening = true;
        let (mut requests, left_out, next) = shared.inspector.summaries_since(cursor, BATCH_MAX);
        cursor = next;
        for r in requests.iter_mut() {
            tell_method_mismatch(&served.discovery.routes, r);
        }
        if !requests.is_empty() || left_out > 0 {
            shared.events.emit(EngineEvent::Requests { requests, left_out });
        }
        for (key, stats) in changed {
            shared.events.emit(EngineEvent::Pool { key, stats });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_are_sent_when_their_numbers_change() {
        let mut w = PoolWatch::default();
        let s = |active| PoolStats {
            active,
            ..PoolStats::default()
        };
        assert!(
            w.changed([("a", s(1)), ("b", s(0))].into_iter(), false).is_empty(),
            "a listener arrived"
        );
        assert!(w.changed([("a", s(1)), ("a", s(1))].into_iter(), true).is_empty());
        let out = w.changed([("a", s(2)), ("b", s(0))].into_iter(), true);
        assert_eq!(out, vec![("a".to_string(), s(2))]);
        assert!(w.changed([("a", s(2))].into_iter(), true).is_empty());
    }
}
