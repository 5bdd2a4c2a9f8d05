//! Hot reload: watch the functions root with `notify` (inotify), coalesce changes, and hand
//! the engine batches of changed paths (it re-reads only those, see
//! [`crate::discovery::TreeCache`]). Falls back to polling when inotify is unavailable or its
//! watch limit is hit. `notify`'s types stay in this module.
//!
//! Coalescing is leading-edge ([`Coalescer`]): the first change after a quiet period is
//! reported at once, so a new file is served as soon as the rescan is done instead of after a
//! fixed debounce; changes that follow within [`QUIET`] are gathered and reported together
//! once [`QUIET`] passes without another (at most [`MAX_WAIT`] after the first of them), so a
//! `git checkout` or an editor's save dance costs two rescans, not hundreds.

use notify::{EventKind, PollWatcher, RecommendedWatcher, RecursiveMode, Watcher as _};
use serde::Serialize;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Quiet time that ends a burst of changes (the original debounces every change by 150 ms);
/// `FN_HOT_RELOAD_DEBOUNCE_MS` sets it.
pub const QUIET: Duration = crate::config::defaults::WATCH_QUIET;
/// The longest a change waits while a burst goes on (at least the quiet time).
pub const MAX_WAIT: Duration = Duration::from_millis(250);

/// Folders whose changes never affect routes (dependencies, build output, caches); discovery
/// leaves them out of its listings too, so ignoring their events loses nothing.
pub use crate::discovery::UNWATCHED_DIRS as QUIET_DIRS;

/// What `/_fn/health` says under `hot_reload.watchdog`.
#[derive(Debug, Clone, Serialize)]
pub struct WatchStatus {
    pub enabled: bool,
    pub active: bool,
    /// `inotify`, `poll` (no inotify) or `interval` (`FN_HOT_RELOAD_WATCHDOG=0`).
    pub backend: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_scan_at: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl WatchStatus {
    pub fn off() -> WatchStatus {
        WatchStatus {
            enabled: false,
            active: false,
            backend: "none",
            last_scan_at: None,
            error: None,
        }
    }
}

/// Whether a changed path can matter to the route map or a handler.
pub fn relevant(root: &Path, path: &Path) -> bool {
    let Ok(rel) = path.strip_prefix(root) else {
        return false;
    };
    let quiet_dir = rel
        .components()
        .any(|c| matches!(c, Component::Normal(n) if n.to_str().is_some_and(|n| QUIET_DIRS.contains(&n))));
    let name = rel.file_name().and_then(|n| n.to_str()).unwrap_or("");
    !quiet_dir && !crate::discovery::is_noise_file(name)
}

/// Configs are read whole: a half-written one would fail the rescan that reads it.
fn is_config_file(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| matches!(n, "fn.config.json" | "fn.routes.json" | "fastfn.json" | "fastfn.toml"))
}

/// The paths of one `notify` event worth a rescan, or `None`. With inotify a config file
/// counts once it is closed after writing (or renamed into place, or removed), not when it is
/// created or truncated; handler files count at once (routes depend on their names only, and
/// the daemons reload a changed file on the next call).
fn paths_of(root: &Path, event: &notify::Event, inotify: bool) -> Option<Vec<PathBuf>> {
    use notify::event::{AccessKind, AccessMode, CreateKind, ModifyKind};
    if event.need_rescan() {
        // Events were lost: the root itself means "read everything again".
        return Some(vec![root.to_path_buf()]);
    }
    let written = matches!(event.kind, EventKind::Access(AccessKind::Close(AccessMode::Write)));
    // Reads (daemons opening handler files) are not changes.
    if matches!(event.kind, EventKind::Access(_)) && !written {
        return None;
    }
    let partial_write = inotify
        && matches!(
            event.kind,
            EventKind::Create(CreateKind::File | CreateKind::Any)
                | EventKind::Modify(ModifyKind::Data(_) | ModifyKind::Any)
        );
    let paths: Vec<PathBuf> = event
        .paths
        .iter()
        .filter(|p| relevant(root, p) && !(partial_write && is_config_file(p)))
        .cloned()
        .collect();
    (!paths.is_empty()).then_some(paths)
}

/// Leading-edge coalescing of change batches (pure; the watcher's task drives it with tokio
/// time). Idle → a change is reported at once and a cooling period starts; changes during
/// cooling are gathered and reported when [`QUIET`] passes without one (or [`MAX_WAIT`] after
/// the first gathered); a cooling period that gathered nothing ends in idle.
#[derive(Debug)]
pub struct Coalescer {
    quiet: Duration,
    max_wait: Duration,
    state: CoalesceState,
}

#[derive(Debug, PartialEq)]
enum CoalesceState {
    Idle,
    Cooling {
        until: Instant,
        pending: Vec<PathBuf>,
        /// When the first pending change arrived.
        first: Option<Instant>,
    },
}

impl Coalescer {
    pub fn new(quiet: Duration, max_wait: Duration) -> Coalescer {
        Coalescer {
            quiet,
            max_wait,
            state: CoalesceState::Idle,
        }
    }

    /// Changes arrived at `now`: the batch to report at once, if any.
    pub fn on_change(&mut self, now: Instant, paths: Vec<PathBuf>) -> Option<Vec<PathBuf>> {
        match &mut self.state {
            CoalesceState::Idle => {
                self.state = CoalesceState::Cooling {
                    until: now + self.quiet,
                    pending: Vec::new(),
                    first: None,
                };
                Some(dedup(paths))
            }
            CoalesceState::Cooling { until, pending, first } => {
                pending.extend(paths);
                let first = *first.get_or_insert(now);
                *until = (now + self.quiet).min(first + self.max_wait);
                None
            }
        }
    }

    /// When [`Coalescer::on_deadline`] is due; `None` while idle.
    pub fn deadline(&self) -> Option<Instant> {
        match &self.state {
            CoalesceState::Idle => None,
            CoalesceState::Cooling { until, .. } => Some(*until),
        }
    }

    /// Time has passed: the gathered batch, if its deadline is reached and it is not empty.
    pub fn on_deadline(&mut self, now: Instant) -> Option<Vec<PathBuf>> {
        let CoalesceState::Cooling { until, pending, .. } = &mut self.state else {
            return None;
        };
        if now < *until {
            return None;
        }
        if pending.is_empty() {
            self.state = CoalesceState::Idle;
            return None;
        }
        let batch = std::mem::take(pending);
        self.state = CoalesceState::Cooling {
            until: now + self.quiet,
            pending: Vec::new(),
            first: None,
        };
        Some(dedup(batch))
    }
}

fn dedup(mut paths: Vec<PathBuf>) -> Vec<PathBuf> {
    paths.sort();
    paths.dedup();
    paths
}

/// Feeds raw change batches through a [`Coalescer`] to `tx` until either channel closes.
async fn coalesce(
    mut raw: mpsc::UnboundedReceiver<Vec<PathBuf>>,
    tx: mpsc::UnboundedSender<Vec<PathBuf>>,
    mut c: Coalescer,
) {
    loop {
        let changed = match c.deadline() {
            None => match raw.recv().await {
                Some(paths) => Some(paths),
                None => return,
            },
            Some(at) => tokio::select! {
                got = raw.recv() => match got {
                    Some(paths) => Some(paths),
                    None => return,
                },
                _ = tokio::time::sleep_until(at) => None,
            },
        };
        let now = Instant::now();
        let batch = match changed {
            Some(paths) => c.on_change(now, paths),
            None => c.on_deadline(now),
        };
        if let Some(batch) = batch {
            if tx.send(batch).is_err() {
                return;
            }
        }
    }
}

/// A running watcher; dropping it stops watching (and its coalescing task).
pub struct Watcher {
    _inner: WatcherKind,
    pub backend: &'static str,
}

#[allow(dead_code)] // held only to keep the watcher alive
enum WatcherKind {
    Inotify(RecommendedWatcher),
    Poll(PollWatcher),
}

/// Watch `root` recursively; batches of relevant changed paths arrive on `tx`. The root itself
/// in a batch means events were lost and everything must be read again. Must be called
/// within a tokio runtime (the coalescing runs as a task).
pub fn start(
    root: &Path,
    tuning: crate::config::project::HotReloadTuning,
    tx: mpsc::UnboundedSender<Vec<PathBuf>>,
) -> Result<Watcher, String> {
    let (raw_tx, raw_rx) = mpsc::unbounded_channel();
    let handler = |root: PathBuf, raw_tx: mpsc::UnboundedSender<Vec<PathBuf>>, inotify: bool| {
        move |result: notify::Result<notify::Event>| match result {
            Ok(event) => {
                if let Some(paths) = paths_of(&root, &event, inotify) {
                    let _ = raw_tx.send(paths);
                }
            }
            Err(e) => {
                tracing::warn!("file watching: {e}; reading the whole tree again");
                let _ = raw_tx.send(vec![root.clone()]);
            }
        }
    };
    let poll = |every: Duration, backend: &'static str| -> Result<Watcher, String> {
        let mut w = PollWatcher::new(
            handler(root.to_path_buf(), raw_tx.clone(), false),
            notify::Config::default().with_poll_interval(every),
        )
        .map_err(|e| e.to_string())?;
        w.watch(root, RecursiveMode::Recursive).map_err(|e| e.to_string())?;
        Ok(Watcher {
            _inner: WatcherKind::Poll(w),
            backend,
        })
    };
    let watcher = if !tuning.watchdog {
        // FN_HOT_RELOAD_WATCHDOG=0: the original rescans every FN_HOT_RELOAD_INTERVAL seconds;
        // polling at that period finds the same changes and reloads only what changed.
        poll(tuning.interval, "interval")?
    } else {
        // Changes and close-after-write only: with opens in the kernel's mask (notify's
        // default), every read of a file in the tree (the start-up dependency check's
        // thousands, each asset served, each handler a daemon imports) queued an event that
        // woke the watcher thread only to be dropped in `paths_of`. At 10,000 routes that was
        // a fifth of the start-up's CPU (`docs/benchmarks.md`).
        use notify::event::EventKindMask;
        let inotify = RecommendedWatcher::new(
            handler(root.to_path_buf(), raw_tx.clone(), true),
            notify::Config::default().with_event_kinds(EventKindMask::CORE | EventKindMask::ACCESS_CLOSE),
        )
        .and_then(|mut w| w.watch(root, RecursiveMode::Recursive).map(|_| w));
        match inotify {
            Ok(w) => Watcher {
                _inner: WatcherKind::Inotify(w),
                backend: "inotify",
            },
            Err(e) => {
                // No inotify, or its watch limit (fs.inotify.max_user_watches) is reached.
                tracing::warn!(
                    "file watching falls back to polling every {} ms: {e}",
                    tuning.poll.as_millis()
                );
                poll(tuning.poll, "poll")?
            }
        }
    };
    drop(raw_tx);
    // Ends when the watcher (holding the raw sender) is dropped.
    let max_wait = MAX_WAIT.max(tuning.debounce);
    tokio::spawn(coalesce(raw_rx, tx, Coalescer::new(tuning.debounce, max_wait)));
    Ok(watcher)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependency_and_editor_noise_is_ignored() {
        let root = Path::new("/p");
        for (path, want) in [
            ("/p/hello.py", true),
            ("/p/users/[id].js", true),
            ("/p/api/fn.config.json", true),
            ("/p/api/node_modules/x/index.js", false),
            ("/p/api/__pycache__/h.cpython-311.pyc", false),
            ("/p/api/.deps/pkg/__init__.py", false),
            ("/p/rs/.rust-build/target/x", false),
            ("/p/hello.py~", false),
            ("/p/.hello.py.swp", false),
            ("/elsewhere/x.py", false),
        ] {
            assert_eq!(relevant(root, Path::new(path)), want, "{path}");
        }
    }

    fn p(s: &str) -> PathBuf {
        PathBuf::from(s)
    }

    #[test]
    fn first_change_goes_at_once_and_a_burst_is_coalesced() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let mut c = Coalescer::new(Duration::from_millis(40), Duration::from_millis(250));
        assert_eq!(c.deadline(), None);
        // Leading edge: reported with no wait.
        assert_eq!(
            c.on_change(ms(0), vec![p("/r/b"), p("/r/a"), p("/r/b")]),
            Some(vec![p("/r/a"), p("/r/b")])
        );
        assert_eq!(c.deadline(), Some(ms(40)));
        // The rest of the burst waits for quiet; every change pushes the deadline.
        assert_eq!(c.on_change(ms(5), vec![p("/r/c")]), None);
        assert_eq!(c.on_change(ms(30), vec![p("/r/d"), p("/r/c")]), None);
        assert_eq!(c.deadline(), Some(ms(70)));
        assert_eq!(c.on_deadline(ms(69)), None, "not yet");
        assert_eq!(c.on_deadline(ms(70)), Some(vec![p("/r/c"), p("/r/d")]));
        // Nothing more: the next deadline ends cooling, and the next change is leading again.
        assert_eq!(c.deadline(), Some(ms(110)));
        assert_eq!(c.on_deadline(ms(110)), None);
        assert_eq!(c.deadline(), None);
        assert_eq!(c.on_change(ms(500), vec![p("/r/e")]), Some(vec![p("/r/e")]));
    }

    #[test]
    fn a_continuous_stream_is_reported_at_least_every_max_wait() {
        let t0 = Instant::now();
        let mut c = Coalescer::new(Duration::from_millis(40), Duration::from_millis(250));
        assert!(c.on_change(t0, vec![p("/r/0")]).is_some());
        let mut reported = Vec::new();
        // A change every 10 ms for a second: quiet never comes.
        for i in 1..=100u64 {
            let now = t0 + Duration::from_millis(i * 10);
            if let Some(b) = c.deadline().filter(|d| *d <= now).and_then(|_| c.on_deadline(now)) {
                reported.push((i * 10, b.len()));
            }
            assert!(c.on_change(now, vec![p(&format!("/r/{i}"))]).is_none());
        }
        assert!(reported.len() >= 3, "{reported:?}");
        assert!(reported.iter().all(|(_, n)| *n <= 26), "{reported:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn the_task_reports_a_lone_change_with_no_delay() {
        let (raw_tx, raw_rx) = mpsc::unbounded_channel();
        let (tx, mut rx) = mpsc::unbounded_channel();
        tokio::spawn(coalesce(raw_rx, tx, Coalescer::new(QUIET, MAX_WAIT)));
        let t0 = Instant::now();
        raw_tx.send(vec![p("/r/new.py")]).unwrap();
        assert_eq!(rx.recv().await, Some(vec![p("/r/new.py")]));
        assert_eq!(t0.elapsed(), Duration::ZERO, "a lone change is not debounced");
        // Its echo (modify, close) within the quiet time comes once, QUIET after the last.
        raw_tx.send(vec![p("/r/new.py")]).unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
        raw_tx.send(vec![p("/r/new.py")]).unwrap();
        assert_eq!(rx.recv().await, Some(vec![p("/r/new.py")]));
        assert_eq!(t0.elapsed(), Duration::from_millis(10) + QUIET);
        drop(raw_tx);
        assert_eq!(rx.recv().await, None, "the task ends with the watcher");
    }

    #[test]
    fn half_written_configs_wait_for_close() {
        use notify::event::{AccessKind, AccessMode, CreateKind, DataChange, ModifyKind, RemoveKind};
        let root = Path::new("/p");
        let ev = |kind, path: &str| notify::Event::new(kind).add_path(PathBuf::from(path));
        let create = EventKind::Create(CreateKind::File);
        let data = EventKind::Modify(ModifyKind::Data(DataChange::Any));
        let closed = EventKind::Access(AccessKind::Close(AccessMode::Write));
        let opened = EventKind::Access(AccessKind::Open(AccessMode::Any));
        let removed = EventKind::Remove(RemoveKind::File);
        assert_eq!(paths_of(root, &ev(create, "/p/a/fn.config.json"), true), None);
        assert_eq!(paths_of(root, &ev(data, "/p/a/fn.config.json"), true), None);
        assert!(paths_of(root, &ev(closed, "/p/a/fn.config.json"), true).is_some());
        assert!(paths_of(root, &ev(removed, "/p/a/fn.config.json"), true).is_some());
        // Polling sees only finished states.
        assert!(paths_of(root, &ev(create, "/p/a/fn.config.json"), false).is_some());
        // Handler files count at once; reads never.
        assert!(paths_of(root, &ev(create, "/p/a/new.py"), true).is_some());
        assert_eq!(paths_of(root, &ev(opened, "/p/a/new.py"), true), None);
        let lost = notify::Event::new(EventKind::Other).set_flag(notify::event::Flag::Rescan);
        assert_eq!(paths_of(root, &lost, true), Some(vec![PathBuf::from("/p")]));
    }

    #[tokio::test]
    async fn reports_a_new_file() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let _w = start(&root, Default::default(), tx).unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        std::fs::create_dir(root.join("api")).unwrap();
        std::fs::write(root.join("api/new.py"), "def handler(e): return 1\n").unwrap();
        // The new folder or the file in it: a file written before the watch on its new folder
        // is in place is found by the rescan the folder's event triggers.
        let mut seen = Vec::new();
        while !seen.contains(&root.join("api/new.py")) && !seen.contains(&root.join("api")) {
            let batch = tokio::time::timeout(Duration::from_secs(5), rx.recv())
                .await
                .expect("a change within 5 s")
                .unwrap();
            seen.extend(batch);
        }
        // Reading files (as daemons do on every call) is not a change.
        while tokio::time::timeout(Duration::from_millis(150), rx.recv())
            .await
            .is_ok()
        {}
        for _ in 0..20 {
            let _ = std::fs::read(root.join("api/new.py"));
        }
        let quiet = tokio::time::timeout(Duration::from_millis(300), rx.recv()).await;
        assert!(quiet.is_err(), "reads reported as changes: {quiet:?}");
    }
}
