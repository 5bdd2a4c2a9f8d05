//! The disk side of managing functions: names that cannot leave the functions root, content
//! tags (ETags) for "changed since you loaded it", and atomic writes (temp file + rename in
//! the same folder, so a reader — the watcher, a daemon loading the handler — never sees half
//! a file).

use super::ManageError;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Largest handler or file the API writes (FastFN's `MAX_CODE_BYTES`).
pub const MAX_FILE_BYTES: usize = 2 * 1024 * 1024;

/// The content tag of a file's bytes: the first 128 bits of its SHA-256, quoted as an HTTP
/// ETag. Content-based (not mtime) so that a save of the same bytes keeps the tag and two
/// writes within one mtime tick still differ.
pub fn etag(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut out = String::with_capacity(34);
    out.push('"');
    for b in &digest[..16] {
        out.push_str(&format!("{b:02x}"));
    }
    out.push('"');
    out
}

/// A root-relative (or function-relative) path given by a client: `/`-separated, relative,
/// no empty, `.` or `..` segment, no backslash or NUL, no hidden segment (`.env`, `.deps`:
/// the engine's own and the user's private files are not the console's to touch).
pub fn check_rel(rel: &str) -> Result<(), ManageError> {
    let bad = rel.is_empty()
        || rel.len() > 512
        || rel.starts_with('/')
        || rel.contains('\\')
        || rel.contains('\0')
        || rel.split('/').any(|s| s.is_empty() || s.starts_with('.'));
    if bad {
        Err(ManageError::InvalidPath(rel.to_string()))
    } else {
        Ok(())
    }
}

/// `root/rel` after [`check_rel`], refusing any symlink on the way (a link inside the root
/// may point outside it). The last component may be missing (a file about to be created).
pub fn contained(root: &Path, rel: &str) -> Result<PathBuf, ManageError> {
    check_rel(rel)?;
    let mut path = root.to_path_buf();
    for comp in Path::new(rel).components() {
        let Component::Normal(part) = comp else {
            return Err(ManageError::InvalidPath(rel.to_string()));
        };
        path.push(part);
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => return Err(ManageError::InvalidPath(rel.to_string())),
            _ => {}
        }
    }
    Ok(path)
}

/// Reads a file the API serves: `None` when it does not exist; refused over [`MAX_FILE_BYTES`].
pub fn read(path: &Path) -> Result<Option<Vec<u8>>, ManageError> {
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ManageError::Io(e.to_string())),
        Ok(m) if !m.is_file() => return Err(ManageError::NotAFile),
        Ok(m) if m.len() > MAX_FILE_BYTES as u64 => return Err(ManageError::TooLarge),
        Ok(_) => {}
    }
    std::fs::read(path)
        .map(Some)
        .map_err(|e| ManageError::Io(e.to_string()))
}

static TEMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` to `path` atomically: a temp file in the same folder (same filesystem, so
/// the rename is atomic), synced, given the old file's permissions, then renamed over it.
/// Creates missing parent folders. On failure the temp file is removed and `path` is untouched.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ManageError> {
    let dir = path.parent().ok_or(ManageError::NotAFile)?;
    std::fs::create_dir_all(dir).map_err(|e| ManageError::Io(e.to_string()))?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(
        ".{name}.fastfn-tmp-{}-{}",
        std::process::id(),
        TEMP_SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        if let Ok(meta) = std::fs::metadata(path) {
            std::fs::set_permissions(&tmp, meta.permissions())?;
        }
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(ManageError::Io(e.to_string()));
    }
    Ok(())
}

/// A file of a function folder as the files view lists it.
#[derive(Debug, Clone, serde::Serialize, ts_rs::TS)]
#[ts(export)]
pub struct FileEntry {
    pub name: String,
    /// Relative to the function's folder, `/`-separated.
    pub path: String,
    #[ts(type = "number")]
    pub size: u64,
    /// `handler`, `config`, `env`, `deps`, `lock` or `file` (FastFN's classes).
    #[serde(rename = "type")]
    pub kind: &'static str,
}

/// Folders never listed: dependencies, build output, caches (and every hidden folder).
const SKIP_DIRS: &[&str] = &["node_modules", "vendor", "__pycache__", "target"];
/// Listing bounds: FastFN lists three levels deep; a runaway folder stops at this many files.
const LIST_DEPTH: usize = 3;
const LIST_MAX: usize = 500;

/// The files of a function folder, sorted by path, without hidden files, symlinks and
/// dependency folders.
pub fn list(dir: &Path, entry: &str) -> Vec<FileEntry> {
    let mut out = Vec::new();
    walk(dir, "", 0, entry, &mut out);
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

fn walk(dir: &Path, prefix: &str, depth: usize, entry: &str, out: &mut Vec<FileEntry>) {
    let Ok(read) = std::fs::read_dir(dir) else { return };
    for item in read.flatten() {
        if out.len() >= LIST_MAX {
            return;
        }
        let Some(name) = item.file_name().to_str().map(str::to_string) else {
            continue;
        };
        if name.starts_with('.') {
            continue;
        }
        let Ok(ft) = item.file_type() else { continue };
        let rel = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}/{name}")
        };
        if ft.is_dir() {
            if depth + 1 < LIST_DEPTH && !SKIP_DIRS.contains(&name.as_str()) {
                walk(&item.path(), &rel, depth + 1, entry, out);
            }
        } else if ft.is_file() {
            let size = item.metadata().map(|m| m.len()).unwrap_or(0);
            out.push(FileEntry {
                kind: classify(&name, rel == entry),
                name,
                path: rel,
                size,
            });
        }
    }
}

fn classify(name: &str, is_entry: bool) -> &'static str {
    match name {
        _ if is_entry => "handler",
        "fn.config.json" => "config",
        "fn.env.json" => "env",
        "requirements.txt" | "package.json" | "composer.json" | "Cargo.toml" | "go.mod" => "deps",
        "package-lock.json" | "npm-shrinkwrap.json" | "composer.lock" | "Cargo.lock" | "go.sum" => "lock",
        _ => "file",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rel_paths_that_could_escape_are_refused() {
        for bad in [
            "",
            "/etc/passwd",
            "../x.js",
            "a/../../x",
            "a/./b",
            "a//b",
            "a\\b",
            ".env",
            "a/.deps/x",
            "x\0y",
        ] {
            assert!(check_rel(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["handler.js", "users/[id].js", "get.items.py", "a/b-c_d/e.txt"] {
            assert!(check_rel(good).is_ok(), "{good:?} refused");
        }
    }

    #[test]
    fn etag_follows_content() {
        assert_eq!(etag(b"a"), etag(b"a"));
        assert_ne!(etag(b"a"), etag(b"b"));
        assert_eq!(etag(b"").len(), 34);
    }

    #[test]
    fn atomic_write_replaces_and_keeps_mode_and_leaves_no_temp() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/f.txt");
        write_atomic(&p, b"one").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o640);
        let names: Vec<_> = std::fs::read_dir(dir.path().join("sub")).unwrap().flatten().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn symlinks_inside_the_root_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("link")).unwrap();
        assert!(contained(dir.path(), "link/x.js").is_err());
        assert!(contained(dir.path(), "real/x.js").is_ok());
    }

    #[test]
    fn listing_skips_hidden_and_dependency_folders() {
        let dir = tempfile::tempdir().unwrap();
        for f in [
            "handler.js",
            "fn.config.json",
            "lib/util.js",
            "node_modules/x/i.js",
            ".deps/a",
            ".hidden",
        ] {
            let p = dir.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "x").unwrap();
        }
        let got: Vec<(String, &str)> = list(dir.path(), "handler.js")
            .into_iter()
            .map(|e| (e.path, e.kind))
            .collect();
        assert_eq!(
            got,
            vec![
                ("fn.config.json".into(), "config"),
                ("handler.js".into(), "handler"),
                ("lib/util.js".into(), "file")
            ]
        );
    }
}
