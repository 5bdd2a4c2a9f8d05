//! CPU and memory of each daemon, sampled with `sysinfo` every few seconds off the request
//! path, for `/_fn/health` and the dashboard.

use crate::events::{EngineEvent, EventBus};
use crate::supervisor::DaemonHandle;
use std::sync::Arc;
use std::time::Duration;
use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

pub const INTERVAL: Duration = Duration::from_secs(2);

/// Sample until the task is aborted. The `System` lives on a blocking thread between samples
/// because reading `/proc` is blocking I/O.
pub async fn sample_loop(daemons: Vec<Arc<DaemonHandle>>, events: EventBus) {
    let mut system = System::new();
    let mut tick = tokio::time::interval(INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let handles = daemons.clone();
        let sampled = tokio::task::spawn_blocking(move || {
            let pids: Vec<Pid> = handles
                .iter()
                .map(|d| d.pid())
                .filter(|p| *p != 0)
                .map(Pid::from_u32)
                .collect();
            system.refresh_processes_specifics(
                ProcessesToUpdate::Some(&pids),
                true,
                ProcessRefreshKind::nothing().with_cpu().with_memory(),
            );
            let usage: Vec<(f32, u64)> = handles
                .iter()
                .map(|d| match system.process(Pid::from_u32(d.pid())) {
                    Some(p) if d.pid() != 0 => (p.cpu_usage(), p.memory()),
                    _ => (0.0, 0),
                })
                .collect();
            (system, usage)
        })
        .await;
        let Ok((back, usage)) = sampled else { return };
        system = back;
        for (d, (cpu, rss)) in daemons.iter().zip(usage) {
            d.set_usage(cpu, rss);
            if events.has_live_receivers() && d.pid() != 0 {
                events.emit(EngineEvent::DaemonUsage {
                    runtime: d.runtime,
                    index: d.index,
                    pid: d.pid(),
                    cpu_percent: cpu,
                    rss_bytes: rss,
                });
            }
        }
    }
}
