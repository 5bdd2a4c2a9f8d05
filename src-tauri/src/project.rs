//! The open project: which folder, the engine serving it, and the recent-projects list.
//!
//! Invariant: at most one engine runs at a time. Switching stops the old engine (its daemons and
//! socket folder) before the new one binds, so a switch never leaves orphan daemons.

use fastfn::config::project::{Overrides, Settings};
use fastfn::{Engine, StartError};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Longest recent-projects list kept.
pub const MAX_RECENTS: usize = 10;

/// What `current_project` and `project-changed` carry.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ProjectInfo {
    pub path: String,
    pub url: Option<String>,
    pub port: Option<u16>,
    /// Why the engine is not serving this project (start failure), if it is not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<UiError>,
}

/// An error for the UI: a stable code and a human message (the UI never parses the message).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct UiError {
    pub code: String,
    pub message: String,
}

impl UiError {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        UiError {
            code: code.to_string(),
            message: message.into(),
        }
    }
}

impl From<&StartError> for UiError {
    fn from(e: &StartError) -> Self {
        UiError::new(e.code(), e.to_string())
    }
}

/// The project the window shows: its folder, and the engine unless it failed to start.
pub struct Open {
    pub path: PathBuf,
    pub engine: Option<Engine>,
    pub error: Option<UiError>,
}

impl Open {
    pub fn info(&self) -> ProjectInfo {
        let addr = self.engine.as_ref().map(Engine::addr);
        ProjectInfo {
            path: self.path.display().to_string(),
            url: addr.map(|a| {
                let host = if a.ip().is_unspecified() {
                    "127.0.0.1".to_string()
                } else {
                    a.ip().to_string()
                };
                format!("http://{host}:{}", a.port())
            }),
            port: addr.map(|a| a.port()),
            error: self.error.clone(),
        }
    }
}

/// Resolve the settings of `dir` (its `fastfn.json` and the environment) and start an engine.
/// If the configured port is taken, start on a free one instead.
pub async fn start(dir: &Path) -> Result<Engine, StartError> {
    let resolve = |port: Option<u16>| {
        Settings::from_env(&Overrides {
            dir: Some(dir.to_path_buf()),
            port,
            ..Overrides::default()
        })
        .map(|mut s| {
            // The app is where the user edits their functions: its dashboard may write unless
            // the environment says otherwise (a browser at /console stays read-only by default).
            if std::env::var_os("FN_CONSOLE_WRITE_ENABLED").is_none() {
                s.console.write_enabled = true;
            }
            s
        })
    };
    match Engine::start(resolve(None)?).await {
        Err(StartError::PortInUse { port, .. }) => {
            tracing::info!("port {port} is taken: starting on a free port");
            Engine::start(resolve(Some(0))?).await
        }
        other => other,
    }
}

/// The recent-projects list, most recent first, stored as JSON.
pub struct Recents {
    file: PathBuf,
}

impl Recents {
    pub fn new(config_dir: &Path) -> Self {
        Recents {
            file: config_dir.join("recent-projects.json"),
        }
    }

    pub fn list(&self) -> Vec<String> {
        std::fs::read(&self.file)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Put `path` first; keep at most [`MAX_RECENTS`].
    pub fn push(&self, path: &Path) -> std::io::Result<Vec<String>> {
        let list = push_recent(self.list(), &path.display().to_string());
        if let Some(dir) = self.file.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&self.file, serde_json::to_vec_pretty(&list)?)?;
        Ok(list)
    }
}

fn push_recent(mut list: Vec<String>, path: &str) -> Vec<String> {
    list.retain(|p| p != path);
    list.insert(0, path.to_string());
    list.truncate(MAX_RECENTS);
    list
}

/// `rel` under `root`, refusing anything that leaves it (absolute paths, `..`, symlinks out).
pub fn file_under(root: &Path, rel: &str) -> Result<PathBuf, UiError> {
    let refuse = || UiError::new("file.outside_root", "the file is not inside the functions folder");
    let rel = Path::new(rel);
    if rel.is_absolute() || rel.components().any(|c| !matches!(c, std::path::Component::Normal(_))) {
        return Err(refuse());
    }
    let root = root
        .canonicalize()
        .map_err(|e| UiError::new("file.not_found", e.to_string()))?;
    let full = root
        .join(rel)
        .canonicalize()
        .map_err(|_| UiError::new("file.not_found", "no such file"))?;
    if full.starts_with(&root) {
        Ok(full)
    } else {
        Err(refuse())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recents_put_latest_first_without_duplicates_and_keep_ten() {
        let mut list = Vec::new();
        for i in 0..12 {
            list = push_recent(list, &format!("/p{i}"));
        }
        list = push_recent(list, "/p5");
        assert_eq!(list.len(), MAX_RECENTS);
        assert_eq!(list[0], "/p5");
        assert_eq!(list.iter().filter(|p| *p == "/p5").count(), 1);
    }

    #[test]
    fn recents_persist() {
        let dir = std::env::temp_dir().join(format!("fastfn-recents-{}", std::process::id()));
        let recents = Recents::new(&dir);
        recents.push(Path::new("/a")).unwrap();
        recents.push(Path::new("/b")).unwrap();
        assert_eq!(Recents::new(&dir).list(), vec!["/b", "/a"]);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn files_outside_the_root_are_refused() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/demo");
        assert!(file_under(&root, "hello.py").is_ok());
        for bad in ["../Cargo.toml", "/etc/passwd", "debug/../../README.md"] {
            assert_eq!(file_under(&root, bad).unwrap_err().code, "file.outside_root", "{bad}");
        }
        assert_eq!(file_under(&root, "nope.py").unwrap_err().code, "file.not_found");
    }
}
