//! Hot reload: watch the functions root with `notify` (inotify), debounce, and ask the engine to
//! rebuild the route map. Falls back to polling when inotify is unavailable or its watch limit
//! is hit. `notify`'s types stay in this module.

use notify::{PollWatcher, RecommendedWatcher, RecursiveMode};
use notify_debouncer_full::{new_debouncer_opt, DebounceEventResult, Debouncer, NoCache, RecommendedCache};
use serde::Serialize;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;
use tokio::sync::mpsc;

/// Quiet time after the last change before a reload (the original waits 150 ms).
pub const DEBOUNCE: Duration = Duration::from_millis(40);
const TICK: Duration = Duration::from_millis(10);
pub const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// Folders whose changes never affect routes (dependencies, build output, caches).
const QUIET_DIRS: [&str; 9] = [
    "node_modules",
    "__pycache__",
    ".deps",
    ".rust-build",
    ".go-build",
    "target",
    ".git",
    ".fastfn",
    "vendor",
];

/// What `/_fn/health` says under `hot_reload.watchdog`.
#[derive(Debug, Clone, Serialize)]
pub struct WatchStatus {
    pub enabled: bool,
    pub active: bool,
    /// `inotify` or `poll`.
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
    if quiet_dir {
        return false;
    }
    let name = rel.file_name().and_then(|n| n.to_str()).unwrap_or("");
    // Editor swap and backup files, byte-code.
    !(name.ends_with('~')
        || name.ends_with(".swp")
        || name.ends_with(".swx")
        || name.ends_with(".pyc")
        || name == "4913")
}

/// A running watcher; dropping it stops watching.
pub struct Watcher {
    _inner: WatcherKind,
    pub backend: &'static str,
}

#[allow(dead_code)] // held only to keep the watcher alive
enum WatcherKind {
    Inotify(Debouncer<RecommendedWatcher, RecommendedCache>),
    Poll(Debouncer<PollWatcher, NoCache>),
}

/// Watch `root` recursively; batches of relevant changed paths arrive on `tx`.
pub fn start(root: &Path, tx: mpsc::UnboundedSender<Vec<PathBuf>>) -> Result<Watcher, String> {
    let handler = |root: PathBuf, tx: mpsc::UnboundedSender<Vec<PathBuf>>| {
        move |result: DebounceEventResult| {
            if let Ok(events) = result {
                // Reads (daemons opening handler files) are not changes.
                let mut paths: Vec<PathBuf> = events
                    .iter()
                    .filter(|e| !matches!(e.kind, notify::EventKind::Access(_)))
                    .flat_map(|e| e.paths.iter())
                    .filter(|p| relevant(&root, p))
                    .cloned()
                    .collect();
                paths.sort();
                paths.dedup();
                if !paths.is_empty() {
                    let _ = tx.send(paths);
                }
            }
        }
    };
    let inotify = new_debouncer_opt::<_, RecommendedWatcher, RecommendedCache>(
        DEBOUNCE,
        Some(TICK),
        handler(root.to_path_buf(), tx.clone()),
        RecommendedCache::new(),
        notify::Config::default(),
    )
    .and_then(|mut d| d.watch(root, RecursiveMode::Recursive).map(|_| d));
    match inotify {
        Ok(d) => Ok(Watcher {
            _inner: WatcherKind::Inotify(d),
            backend: "inotify",
        }),
        Err(e) => {
            // No inotify, or its watch limit (fs.inotify.max_user_watches) is reached.
            tracing::warn!(
                "file watching falls back to polling every {} ms: {e}",
                POLL_INTERVAL.as_millis()
            );
            let mut d = new_debouncer_opt::<_, PollWatcher, NoCache>(
                DEBOUNCE.max(POLL_INTERVAL / 4),
                Some(TICK),
                handler(root.to_path_buf(), tx),
                NoCache,
                notify::Config::default().with_poll_interval(POLL_INTERVAL),
            )
            .map_err(|e| e.to_string())?;
            d.watch(root, RecursiveMode::Recursive).map_err(|e| e.to_string())?;
            Ok(Watcher {
                _inner: WatcherKind::Poll(d),
                backend: "poll",
            })
        }
    }
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

    #[tokio::test]
    async fn reports_a_new_file() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let _w = start(&root, tx).unwrap();
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
