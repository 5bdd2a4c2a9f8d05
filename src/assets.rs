//! Static assets: the one folder of the functions root (`assets.directory` in the root
//! `fn.config.json`) that the gateway may serve as files, for GET and HEAD only.
//!
//! Invariants this module keeps:
//! - A request path is decoded strictly ([`parse_path`]) before anything touches the disk:
//!   traversal (`..`, `.`, encoded or not), encoded separators (`%2f`, `%5c`), double encoding
//!   (`%25…`), NUL and control characters, invalid UTF-8 and overlong segments are a 400;
//!   dotfile segments are a 404. `/_fn/*` and `/console/*` are never ours.
//! - Only files whose canonical path (symlinks resolved) lies inside the canonical assets root,
//!   with no hidden component below it, are ever opened. Symlinks that stay inside are fine.
//! - Directories are never served; `/` and `/dir/` serve their `index.html`.
//! - Nothing larger than `max_bytes` is read into memory, and reads go through `tokio::fs`.

use crate::discovery::AssetsConfig;
use crate::rescue::Failure;
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{
    HeaderValue, ACCEPT, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH,
    LAST_MODIFIED, X_CONTENT_TYPE_OPTIONS,
};
use hyper::{HeaderMap, Method, Response, StatusCode};
use std::fs::Metadata;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Cache policy of ordinary files: always revalidate (ETag / Last-Modified), so edits show up.
const CACHE_REVALIDATE: &str = "public, max-age=0, must-revalidate";
/// Cache policy of the SPA shell served in place of a missing path.
const CACHE_SHELL: &str = "no-cache";
/// Longest raw request path we look at (Linux `PATH_MAX`).
const MAX_PATH_BYTES: usize = 4096;
/// Longest decoded segment (Linux `NAME_MAX`).
const MAX_SEGMENT_BYTES: usize = 255;
const INDEX: &str = "index.html";

/// The public assets folder of a functions root.
#[derive(Debug)]
pub struct Assets {
    /// Canonical absolute path of `<functions_root>/<directory>`; strictly inside the root.
    root: PathBuf,
    /// `not_found_handling: "spa"`: missing navigations get the root `index.html`.
    spa: bool,
    /// Routes are matched before assets (§2.6 step 1 is skipped).
    run_worker_first: bool,
    /// Files larger than this are refused (403), never read.
    max_bytes: u64,
    /// Test probe: every path this instance opened for reading.
    #[cfg(test)]
    opened: std::sync::Mutex<Vec<PathBuf>>,
}

/// What [`Assets::serve`] decided.
#[derive(Debug)]
pub enum AssetOutcome {
    /// A file (200), a revalidation (304) or the SPA shell.
    Served(Response<Full<Bytes>>),
    /// Answer with this failure and stop routing: 400 `invalid path` or 404 for hidden and
    /// escaping paths (decided before any file is opened), 403 `asset too large`, 500 when a
    /// file that exists cannot be read.
    Refused(Failure),
    /// Not ours (method, reserved prefix, no such file): let routing continue.
    NoMatch,
}

impl Assets {
    /// None when the directory is missing, not a folder, the functions root itself, or
    /// outside it (a warning is logged). Does two blocking `stat`s: call it at load time.
    pub fn open(functions_root: &Path, cfg: &AssetsConfig, max_bytes: u64) -> Option<Assets> {
        let base = match std::fs::canonicalize(functions_root) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(
                    "assets disabled: functions root {} is unreadable: {e}",
                    functions_root.display()
                );
                return None;
            }
        };
        let wanted = base.join(&cfg.directory);
        let root = match std::fs::canonicalize(&wanted) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!("assets disabled: directory {} is missing: {e}", wanted.display());
                return None;
            }
        };
        if !root.is_dir() {
            tracing::warn!("assets disabled: {} is not a directory", wanted.display());
            return None;
        }
        if root == base || !root.starts_with(&base) {
            // The functions root itself would publish every handler's source.
            tracing::warn!(
                "assets disabled: {} must be a folder inside the functions root {}",
                root.display(),
                base.display()
            );
            return None;
        }
        Some(Assets {
            root,
            spa: cfg.spa,
            run_worker_first: cfg.run_worker_first,
            max_bytes,
            #[cfg(test)]
            opened: Default::default(),
        })
    }

    pub fn run_worker_first(&self) -> bool {
        self.run_worker_first
    }

    /// Step 1 (and step 6 with `fallback = true`) of §2.6: serve a file for GET/HEAD, or say
    /// why not. `raw_path` is the request path as received (still percent-encoded).
    pub async fn serve(&self, method: &Method, raw_path: &str, headers: &HeaderMap, fallback: bool) -> AssetOutcome {
        if method != Method::GET && method != Method::HEAD {
            return AssetOutcome::NoMatch;
        }
        let path = match parse_path(raw_path) {
            Ok(p) => p,
            Err(Rejection::Reserved) => return AssetOutcome::NoMatch,
            Err(Rejection::Invalid) => {
                tracing::debug!("assets: invalid path refused");
                return AssetOutcome::Refused(Failure::BadRequest("invalid path"));
            }
            Err(Rejection::Hidden) => return AssetOutcome::Refused(Failure::NotFound),
        };
        match self.resolve(&path.segments, path.trailing_slash) {
            Resolved::File(found) => {
                // The type follows the name asked for (a symlink's target name may differ).
                let name = match path.segments.last() {
                    Some(last) if !path.trailing_slash => last.as_str(),
                    _ => INDEX,
                };
                return self.respond(method, headers, name, found, CACHE_REVALIDATE).await;
            }
            Resolved::Escaped => return AssetOutcome::Refused(Failure::NotFound),
            Resolved::Missing => {}
        }
        if fallback && self.spa && wants_shell(&path, headers) {
            let shell = [INDEX.to_string()];
            if let Resolved::File(found) = self.resolve(&shell, false) {
                return self.respond(method, headers, INDEX, found, CACHE_SHELL).await;
            }
        }
        AssetOutcome::NoMatch
    }

    /// Find the regular file for decoded segments, following symlinks only inside the root.
    ///
    /// On the calling thread, not the blocking pool: a lookup is a few metadata syscalls the
    /// kernel answers from its dentry and inode caches, and each `tokio::fs` call is a round
    /// trip to a pool thread that costs more than that. When assets are on, every function
    /// call looks first (§2.6 step 1): with `tokio::fs` that cost node calls 31 % of their
    /// throughput, and a served file took six round trips (`docs/benchmarks.md`).
    fn resolve(&self, segments: &[String], dir_wanted: bool) -> Resolved {
        let mut candidate = self.root.clone();
        candidate.extend(segments);
        let Some(found) = self.locate(&candidate) else {
            return Resolved::Missing;
        };
        let found = match found {
            Ok(f) => f,
            Err(Escape) => return Resolved::Escaped,
        };
        match (found.meta.is_dir(), dir_wanted) {
            (true, true) => match self.locate(&found.path.join(INDEX)) {
                Some(Ok(index)) if index.meta.is_file() => Resolved::File(index),
                Some(Err(Escape)) => Resolved::Escaped,
                _ => Resolved::Missing,
            },
            (false, false) if found.meta.is_file() => Resolved::File(found),
            // A directory without its slash, `file/`, FIFOs, sockets, devices.
            _ => Resolved::Missing,
        }
    }

    /// The real location of `path` and its metadata. None when it does not exist;
    /// `Err(Escape)` when its real location is outside the root or hidden below it.
    fn locate(&self, path: &Path) -> Option<Result<Found, Escape>> {
        // Without a symlink below the (canonical) root, a path of plain, unhidden names is
        // its own real location: one `lstat` per name decides it (a miss ends at the first
        // missing name), where resolving it walked and `readlink`ed every component from `/`.
        if let Ok(rel) = path.strip_prefix(&self.root) {
            let mut at = self.root.clone();
            let mut last = None;
            let mut plain = true;
            for c in rel.components() {
                let std::path::Component::Normal(name) = c else {
                    plain = false;
                    break;
                };
                if name.as_encoded_bytes().starts_with(b".") {
                    plain = false;
                    break;
                }
                at.push(name);
                let meta = std::fs::symlink_metadata(&at).ok()?;
                if meta.file_type().is_symlink() {
                    plain = false;
                    break;
                }
                last = Some(meta);
            }
            if plain {
                let meta = match last {
                    Some(meta) => meta,
                    None => std::fs::metadata(&self.root).ok()?,
                };
                return Some(Ok(Found { path: at, meta }));
            }
        }
        // A symlink on the way (or a name the walk does not take): resolve it and check that
        // its real location stays inside and unhidden.
        let real = std::fs::canonicalize(path).ok()?;
        let Ok(inside) = real.strip_prefix(&self.root) else {
            return Some(Err(Escape));
        };
        if inside
            .components()
            .any(|c| c.as_os_str().as_encoded_bytes().starts_with(b"."))
        {
            return Some(Err(Escape));
        }
        let meta = std::fs::metadata(&real).ok()?;
        Some(Ok(Found { path: real, meta }))
    }

    async fn respond(
        &self,
        method: &Method,
        headers: &HeaderMap,
        name: &str,
        found: Found,
        cache: &'static str,
    ) -> AssetOutcome {
        let content_type = content_type(name);
        if found.meta.len() > self.max_bytes {
            return self.too_large(&found.path);
        }
        let stat = Validators::of(&found.meta);
        if not_modified(headers, &stat) {
            let mut resp = Response::new(Full::default());
            *resp.status_mut() = StatusCode::NOT_MODIFIED;
            stat.write(resp.headers_mut(), cache);
            return AssetOutcome::Served(resp);
        }
        let (validators, body) = if method == Method::HEAD {
            (stat, Bytes::new())
        } else {
            match self.read(&found.path, found.meta.len()).await {
                Ok(Some(read)) => read,
                Ok(None) => return self.too_large(&found.path),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return AssetOutcome::NoMatch,
                Err(e) => {
                    tracing::warn!("assets: cannot read {}: {e}", found.path.display());
                    return AssetOutcome::Refused(Failure::Internal);
                }
            }
        };
        let length = if method == Method::HEAD {
            validators.len
        } else {
            body.len() as u64
        };
        let mut resp = Response::new(Full::new(body));
        let h = resp.headers_mut();
        validators.write(h, cache);
        h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        h.insert(CONTENT_LENGTH, HeaderValue::from(length));
        h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        AssetOutcome::Served(resp)
    }

    /// Read a file, at most `max_bytes`; `Ok(None)` when it is larger. Validators come from
    /// the open descriptor, so they describe the bytes read. A file up to
    /// [`INLINE_READ_BYTES`] is read on the calling thread (a page-cache copy, cheaper than a
    /// trip to the blocking pool: see [`Assets::resolve`]); a larger one on the blocking pool.
    async fn read(&self, path: &Path, len: u64) -> std::io::Result<Option<(Validators, Bytes)>> {
        #[cfg(test)]
        self.opened
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(path.to_path_buf());
        let max = self.max_bytes;
        if len <= INLINE_READ_BYTES {
            return read_capped(path, max);
        }
        let path = path.to_path_buf();
        tokio::task::spawn_blocking(move || read_capped(&path, max))
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)))
    }

    fn too_large(&self, path: &Path) -> AssetOutcome {
        tracing::warn!(
            "assets: {} is larger than {} bytes (FN_MAX_ASSET_BYTES); refused",
            path.display(),
            self.max_bytes
        );
        AssetOutcome::Refused(Failure::Forbidden("asset too large"))
    }
}

/// Files up to this size are read on the request's thread (see [`Assets::read`]).
const INLINE_READ_BYTES: u64 = 256 * 1024;

/// Read `path` whole if it is a regular file of at most `max` bytes (`Ok(None)`: larger).
fn read_capped(path: &Path, max: u64) -> std::io::Result<Option<(Validators, Bytes)>> {
    use std::io::Read;
    let file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        // Replaced since it was looked up.
        return Err(std::io::ErrorKind::NotFound.into());
    }
    if meta.len() > max {
        return Ok(None);
    }
    let mut buf = Vec::with_capacity(meta.len() as usize);
    file.take(max.saturating_add(1)).read_to_end(&mut buf)?;
    if buf.len() as u64 > max {
        return Ok(None);
    }
    Ok(Some((Validators::of(&meta), Bytes::from(buf))))
}

/// A path inside the root that exists, with its (followed) metadata.
struct Found {
    path: PathBuf,
    meta: Metadata,
}

/// The real location is outside the root, or hidden below it.
struct Escape;

enum Resolved {
    File(Found),
    Escaped,
    Missing,
}

/// Weak validators of a file: `W/"<mtime_secs>-<size>"` and its modification time.
struct Validators {
    etag: String,
    mtime: SystemTime,
    len: u64,
}

impl Validators {
    fn of(meta: &Metadata) -> Validators {
        let secs = meta
            .modified()
            .ok()
            .and_then(|m| m.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs());
        Validators {
            etag: format!("W/\"{secs}-{}\"", meta.len()),
            mtime: UNIX_EPOCH + std::time::Duration::from_secs(secs),
            len: meta.len(),
        }
    }

    fn write(&self, h: &mut HeaderMap, cache: &'static str) {
        if let Ok(v) = HeaderValue::from_str(&self.etag) {
            h.insert(ETAG, v);
        }
        if let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(self.mtime)) {
            h.insert(LAST_MODIFIED, v);
        }
        h.insert(CACHE_CONTROL, HeaderValue::from_static(cache));
    }
}

/// RFC 9110 §13.1.2 / §13.1.3: `If-None-Match` (list or `*`, weak comparison) decides when
/// present; otherwise `If-Modified-Since`.
fn not_modified(headers: &HeaderMap, v: &Validators) -> bool {
    let mut any = false;
    for value in headers.get_all(IF_NONE_MATCH) {
        any = true;
        let Ok(value) = value.to_str() else { continue };
        for tag in value.split(',').map(str::trim) {
            if tag == "*" || weak_eq(tag, &v.etag) {
                return true;
            }
        }
    }
    if any {
        return false;
    }
    headers
        .get(IF_MODIFIED_SINCE)
        .and_then(|s| s.to_str().ok())
        .and_then(|s| httpdate::parse_http_date(s).ok())
        .is_some_and(|since| v.mtime <= since)
}

fn weak_eq(a: &str, b: &str) -> bool {
    let opaque = |t: &str| {
        let t = t.strip_prefix("W/").unwrap_or(t);
        (t.len() >= 2 && t.starts_with('"') && t.ends_with('"')).then(|| t.to_string())
    };
    matches!((opaque(a), opaque(b)), (Some(x), Some(y)) if x == y)
}

/// SPA fallback only for navigations (`Accept: text/html`, `Accept: */*`, no `Accept` at all,
/// `Sec-Fetch-Mode: navigate` or `Sec-Fetch-Dest: document`, as the original decides), never
/// for a name with an extension, and for `/api/…` only with HTML intent.
fn wants_shell(path: &ParsedPath, headers: &HeaderMap) -> bool {
    let accept: Vec<String> = headers
        .get_all(ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|m| m.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
        .collect();
    let fetch_is = |name: &str, want: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case(want))
    };
    let html = accept.iter().any(|m| m == "text/html")
        || fetch_is("sec-fetch-mode", "navigate")
        || fetch_is("sec-fetch-dest", "document");
    // A client that states no preference (curl without `-H Accept`, a bare fetch) takes
    // anything, the shell included.
    let anything = accept.iter().all(|m| m.is_empty()) || accept.iter().any(|m| m == "*/*");
    if path.segments.last().is_some_and(|s| has_extension(s)) {
        return false;
    }
    if path.segments.first().is_some_and(|s| s.eq_ignore_ascii_case("api")) {
        return html;
    }
    html || anything
}

fn has_extension(name: &str) -> bool {
    name.rfind('.').is_some_and(|i| i > 0 && i + 1 < name.len())
}

/// A request path that passed [`parse_path`]: safe, non-hidden, decoded segments.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ParsedPath {
    segments: Vec<String>,
    /// `/` or `/dir/`: a directory (index) is asked for.
    trailing_slash: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rejection {
    /// `/_fn/*`, `/console/*`: the gateway's own (not ours, not an error).
    Reserved,
    /// Traversal, bad encoding, forbidden characters → 400 `invalid path`.
    Invalid,
    /// A dotfile segment → 404.
    Hidden,
}

/// Strictly decode a raw request path. A query (`?…`) is ignored. Empty segments (`//`)
/// collapse; a trailing `/` is kept as a request for a directory index.
fn parse_path(raw: &str) -> Result<ParsedPath, Rejection> {
    let raw = raw.split_once('?').map_or(raw, |(p, _)| p);
    for reserved in ["/_fn", "/console"] {
        if let Some(rest) = raw.strip_prefix(reserved) {
            if rest.is_empty() || rest.starts_with('/') {
                return Err(Rejection::Reserved);
            }
        }
    }
    if !raw.starts_with('/') || raw.len() > MAX_PATH_BYTES {
        return Err(Rejection::Invalid);
    }
    let mut segments = Vec::new();
    let mut hidden = false;
    for raw_segment in raw[1..].split('/') {
        if raw_segment.is_empty() {
            continue;
        }
        let segment = decode_segment(raw_segment)?;
        if segment == "." || segment == ".." {
            return Err(Rejection::Invalid);
        }
        // Keep looking: a later `..` or bad encoding is still a 400.
        hidden |= segment.starts_with('.');
        segments.push(segment);
    }
    if hidden {
        return Err(Rejection::Hidden);
    }
    if segments.first().is_some_and(|s| s == "_fn" || s == "console") {
        return Err(Rejection::Reserved);
    }
    let trailing_slash = raw.ends_with('/');
    Ok(ParsedPath {
        segments,
        trailing_slash,
    })
}

/// Percent-decode one segment. Raw bytes must be printable ASCII without `\`; `%` must start
/// a two-digit escape; the result must be UTF-8 with no `/`, `\`, `%` or control character and
/// at most [`MAX_SEGMENT_BYTES`] long.
fn decode_segment(raw: &str) -> Result<String, Rejection> {
    let bytes = raw.as_bytes();
    if bytes.iter().any(|&b| !(0x21..=0x7e).contains(&b) || b == b'\\') {
        return Err(Rejection::Invalid);
    }
    let mut i = 0;
    while let Some(p) = bytes[i..].iter().position(|&b| b == b'%') {
        let at = i + p;
        match bytes.get(at + 1..at + 3) {
            Some(hex) if hex.iter().all(u8::is_ascii_hexdigit) => i = at + 3,
            _ => return Err(Rejection::Invalid),
        }
    }
    let decoded = percent_encoding::percent_decode(bytes).collect::<Vec<u8>>();
    if decoded.len() > MAX_SEGMENT_BYTES {
        return Err(Rejection::Invalid);
    }
    let text = String::from_utf8(decoded).map_err(|_| Rejection::Invalid)?;
    if text.chars().any(|c| c.is_control() || matches!(c, '/' | '\\' | '%')) {
        return Err(Rejection::Invalid);
    }
    Ok(text)
}

/// `Content-Type` by extension (case-insensitive); text types say `charset=utf-8`.
pub(crate) fn content_type(name: &str) -> &'static str {
    let ext = match name.rsplit_once('.') {
        Some((_, ext)) => ext.to_ascii_lowercase(),
        None => return "application/octet-stream",
    };
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" | "cjs" => "text/javascript; charset=utf-8",
        "json" | "map" => "application/json",
        "webmanifest" => "application/manifest+json",
        "txt" => "text/plain; charset=utf-8",
        "md" => "text/markdown; charset=utf-8",
        "csv" => "text/csv; charset=utf-8",
        "xml" => "application/xml",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "avif" => "image/avif",
        "ico" => "image/x-icon",
        "wasm" => "application/wasm",
        "pdf" => "application/pdf",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "ttf" => "font/ttf",
        "otf" => "font/otf",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "mp3" => "audio/mpeg",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use proptest::prelude::*;
    use std::os::unix::fs::symlink;

    /// Content that must never appear in a response: files outside the assets root, and
    /// hidden files inside it.
    const SECRETS: [&str; 6] = [
        "SECRET-OUTSIDE-THE-FUNCTIONS-ROOT",
        "SECRET-SIBLING-FUNCTION",
        "SECRET-ROOT-DOTENV",
        "SECRET-HIDDEN-DOTENV",
        "SECRET-HIDDEN-GIT",
        "SECRET-HIDDEN-NESTED",
    ];

    /// ```text
    /// tmp/outside.txt                      secret
    /// tmp/functions/.env                   secret
    /// tmp/functions/api/handler.js         secret (a sibling function)
    /// tmp/functions/public/                the assets root
    ///   index.html style.css app.js data.json logo.svg fn.config.json big.bin
    ///   .env .git/config docs/index.html docs/.hidden empty/ nested/deep/page.txt
    ///   escape -> ../../outside.txt   escape_dir -> ../api   inside -> style.css
    ///   hidden_link -> .env           docs_link -> docs
    /// ```
    struct Fixture {
        _tmp: tempfile::TempDir,
        functions: PathBuf,
        assets: Assets,
    }

    const MAX: u64 = 1024;

    fn write(path: &Path, content: &[u8]) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    fn fixture(spa: bool) -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let top = tmp.path();
        let functions = top.join("functions");
        let public = functions.join("public");
        write(&top.join("outside.txt"), SECRETS[0].as_bytes());
        write(&functions.join("api/handler.js"), SECRETS[1].as_bytes());
        write(&functions.join(".env"), SECRETS[2].as_bytes());
        write(&public.join(".env"), SECRETS[3].as_bytes());
        write(&public.join(".git/config"), SECRETS[4].as_bytes());
        write(&public.join("docs/.hidden"), SECRETS[5].as_bytes());
        write(&public.join("index.html"), b"<h1>home</h1>");
        write(&public.join("style.css"), b"body{}");
        write(&public.join("app.js"), b"console.log(1)");
        write(&public.join("data.json"), b"{}");
        write(&public.join("logo.svg"), b"<svg/>");
        write(&public.join("fn.config.json"), br#"{"runtime":"node"}"#);
        write(&public.join("docs/index.html"), b"<h1>docs</h1>");
        write(&public.join("nested/deep/page.txt"), b"deep");
        write(&public.join("big.bin"), &vec![b'x'; MAX as usize + 1]);
        std::fs::create_dir_all(public.join("empty")).unwrap();
        symlink("../../outside.txt", public.join("escape")).unwrap();
        symlink("../api", public.join("escape_dir")).unwrap();
        symlink("style.css", public.join("inside")).unwrap();
        symlink(".env", public.join("hidden_link")).unwrap();
        symlink("docs", public.join("docs_link")).unwrap();
        let cfg = AssetsConfig {
            directory: "public".into(),
            spa,
            run_worker_first: false,
        };
        let assets = Assets::open(&functions, &cfg, MAX).expect("assets open");
        Fixture {
            _tmp: tmp,
            functions,
            assets,
        }
    }

    async fn body(resp: Response<Full<Bytes>>) -> Bytes {
        resp.into_body().collect().await.unwrap().to_bytes()
    }

    async fn get(fx: &Fixture, path: &str) -> AssetOutcome {
        fx.assets.serve(&Method::GET, path, &HeaderMap::new(), true).await
    }

    /// No body carries a secret, and every file opened for reading is inside the assets
    /// root and not hidden.
    async fn assert_nothing_leaked(fx: &Fixture, outcome: AssetOutcome) -> AssetOutcome {
        let (outcome, bytes) = match outcome {
            AssetOutcome::Served(resp) => {
                let (parts, b) = resp.into_parts();
                let bytes = body(Response::new(b)).await;
                (
                    AssetOutcome::Served(Response::from_parts(parts, Full::new(bytes.clone()))),
                    bytes,
                )
            }
            other => (other, Bytes::new()),
        };
        let text = String::from_utf8_lossy(&bytes);
        for secret in SECRETS {
            assert!(!text.contains(secret), "leaked {secret}");
        }
        for opened in fx.assets.opened.lock().unwrap().iter() {
            let inside = opened.strip_prefix(&fx.assets.root).expect("opened outside");
            assert!(
                !inside.to_string_lossy().split('/').any(|s| s.starts_with('.')),
                "opened hidden {}",
                opened.display()
            );
        }
        outcome
    }

    fn status(outcome: &AssetOutcome) -> Option<u16> {
        match outcome {
            AssetOutcome::Served(r) => Some(r.status().as_u16()),
            AssetOutcome::Refused(f) => Some(f.status().as_u16()),
            AssetOutcome::NoMatch => None,
        }
    }

    #[tokio::test]
    async fn traversal_and_hidden_attempts_are_refused_without_reading_anything() {
        let fx = fixture(true);
        let long = format!("/{}", "a".repeat(MAX_SEGMENT_BYTES + 1));
        let long_encoded = format!("/{}", "%61".repeat(MAX_SEGMENT_BYTES + 1));
        let too_long = format!("/{}", "a/".repeat(MAX_PATH_BYTES));
        #[rustfmt::skip]
        let cases: Vec<(&str, Option<u16>)> = vec![
            ("/../outside.txt", Some(400)),
            ("/..", Some(400)),
            ("/.", Some(400)),
            ("/./style.css", Some(400)),
            ("/%2e%2e/outside.txt", Some(400)),
            ("/%2E%2E/outside.txt", Some(400)),
            ("/%2e%2E/%2E%2e/outside.txt", Some(400)),
            ("/%2e", Some(400)),
            ("/.%2e/outside.txt", Some(400)),
            ("/%2E%2E%2Fapi%2Fhandler.js", Some(400)),
            ("/%2e%2e%2f%2e%2e%2foutside.txt", Some(400)),
            ("/..%2foutside.txt", Some(400)),
            ("/..%2F..%2Foutside.txt", Some(400)),
            ("/docs%2f..%2f..%2fapi/handler.js", Some(400)),
            ("/%252e%252e/outside.txt", Some(400)),
            ("/%25%32%65%25%32%65/outside.txt", Some(400)),
            ("/%252fetc%252fpasswd", Some(400)),
            ("/%%32%65%%32%65/outside.txt", Some(400)),
            ("/%2", Some(400)),
            ("/%zz", Some(400)),
            ("/%u002e%u002e/outside.txt", Some(400)),
            ("/..\\outside.txt", Some(400)),
            ("/\\..\\api\\handler.js", Some(400)),
            ("/..%5coutside.txt", Some(400)),
            ("/%5C..%5Capi%5Chandler.js", Some(400)),
            ("/docs/../../outside.txt", Some(400)),
            ("/docs/../index.html", Some(400)),
            ("/docs/%2e%2e/%2e%2e/api/handler.js", Some(400)),
            ("/nested/deep/%2E%2e/%2e%2E/../../outside.txt", Some(400)),
            ("//..//outside.txt", Some(400)),
            ("/style.css%00", Some(400)),
            ("/style.css%00.png", Some(400)),
            ("/%0d%0aSet-Cookie:%20x", Some(400)),
            ("/style.css%7f", Some(400)),
            ("/a%c2%85b", Some(400)),
            ("/%c0%ae%c0%ae/outside.txt", Some(400)),
            ("/%e0%80%ae%e0%80%ae/outside.txt", Some(400)),
            ("/%ff/outside.txt", Some(400)),
            ("/caf\u{e9}.txt", Some(400)),
            ("/a b", Some(400)),
            (&long, Some(400)),
            (&long_encoded, Some(400)),
            (&too_long, Some(400)),
            ("outside.txt", Some(400)),
            ("", Some(400)),
            ("/.env", Some(404)),
            ("/%2eenv", Some(404)),
            ("/%2Egit/config", Some(404)),
            ("/.git/config", Some(404)),
            ("/.git/", Some(404)),
            ("/docs/.hidden", Some(404)),
            ("/.env/../x", Some(400)),
            ("/escape", Some(404)),
            ("/escape_dir/handler.js", Some(404)),
            ("/escape_dir/", Some(404)),
            ("/hidden_link", Some(404)),
            ("/api/handler.js", None),
            ("/functions/api/handler.js", None),
            ("/public/index.html", None),
            ("/outside.txt", None),
            ("/_fn/health", None),
            ("/_fn", None),
            ("/console/index.html", None),
            ("/%5ffn/health", None),
            ("/_fn/../outside.txt", None),
        ];
        assert!(cases.len() >= 25);
        for (path, want) in cases {
            let outcome = assert_nothing_leaked(&fx, get(&fx, path).await).await;
            assert_eq!(status(&outcome), want, "{path:?}: {outcome:?}");
            if let AssetOutcome::Refused(Failure::BadRequest(msg)) = &outcome {
                assert_eq!(*msg, "invalid path");
            }
        }
        // Nothing above was read from disk at all.
        assert!(fx.assets.opened.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn bad_request_body_is_the_contract_one() {
        let fx = fixture(false);
        let AssetOutcome::Refused(f) = get(&fx, "/%2e%2e/x").await else {
            panic!("not refused")
        };
        let resp = f.into_response();
        assert_eq!(resp.status(), 400);
        assert_eq!(body(resp).await, r#"{"error":"invalid path"}"#);
    }

    #[tokio::test]
    async fn files_symlinks_inside_and_indexes_are_served() {
        let fx = fixture(false);
        for (path, content, ctype) in [
            ("/", "<h1>home</h1>", "text/html; charset=utf-8"),
            ("/index.html", "<h1>home</h1>", "text/html; charset=utf-8"),
            ("/docs/", "<h1>docs</h1>", "text/html; charset=utf-8"),
            ("/docs_link/", "<h1>docs</h1>", "text/html; charset=utf-8"),
            ("/inside", "body{}", "application/octet-stream"),
            ("/style.css", "body{}", "text/css; charset=utf-8"),
            ("/st%79le.css", "body{}", "text/css; charset=utf-8"),
            ("/style.css?v=1", "body{}", "text/css; charset=utf-8"),
            ("//nested//deep/page.txt", "deep", "text/plain; charset=utf-8"),
            ("/fn.config.json", r#"{"runtime":"node"}"#, "application/json"),
        ] {
            let AssetOutcome::Served(resp) = assert_nothing_leaked(&fx, get(&fx, path).await).await else {
                panic!("{path} not served")
            };
            assert_eq!(resp.status(), 200, "{path}");
            let h = resp.headers();
            assert_eq!(h[CONTENT_TYPE], ctype, "{path}");
            assert_eq!(h[CONTENT_LENGTH], content.len().to_string().as_str());
            assert_eq!(h[CACHE_CONTROL], CACHE_REVALIDATE);
            assert_eq!(h[X_CONTENT_TYPE_OPTIONS], "nosniff");
            assert!(h.contains_key(LAST_MODIFIED));
            assert_eq!(body(resp).await, content, "{path}");
        }
        // Directories are never served; without an index nothing matches.
        for path in ["/empty/", "/empty", "/docs", "/style.css/", "/missing.txt"] {
            assert!(matches!(get(&fx, path).await, AssetOutcome::NoMatch), "{path}");
        }
    }

    #[test]
    fn content_types() {
        for (name, want) in [
            ("a.html", "text/html; charset=utf-8"),
            ("a.HTM", "text/html; charset=utf-8"),
            ("a.css", "text/css; charset=utf-8"),
            ("a.js", "text/javascript; charset=utf-8"),
            ("a.mjs", "text/javascript; charset=utf-8"),
            ("a.json", "application/json"),
            ("a.js.map", "application/json"),
            ("a.svg", "image/svg+xml"),
            ("a.png", "image/png"),
            ("a.jpg", "image/jpeg"),
            ("a.jpeg", "image/jpeg"),
            ("a.gif", "image/gif"),
            ("a.webp", "image/webp"),
            ("favicon.ico", "image/x-icon"),
            ("a.wasm", "application/wasm"),
            ("a.txt", "text/plain; charset=utf-8"),
            ("a.xml", "application/xml"),
            ("a.pdf", "application/pdf"),
            ("a.woff", "font/woff"),
            ("a.woff2", "font/woff2"),
            ("Makefile", "application/octet-stream"),
            ("a.unknown", "application/octet-stream"),
        ] {
            assert_eq!(content_type(name), want, "{name}");
        }
    }

    fn with(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    async fn serve(fx: &Fixture, m: Method, path: &str, h: &HeaderMap, fallback: bool) -> AssetOutcome {
        fx.assets.serve(&m, path, h, fallback).await
    }

    #[tokio::test]
    async fn etag_revalidation() {
        let fx = fixture(false);
        let AssetOutcome::Served(first) = get(&fx, "/style.css").await else {
            panic!()
        };
        let etag = first.headers()[ETAG].to_str().unwrap().to_string();
        let meta = std::fs::metadata(fx.assets.root.join("style.css")).unwrap();
        let secs = meta.modified().unwrap().duration_since(UNIX_EPOCH).unwrap().as_secs();
        assert_eq!(etag, format!("W/\"{secs}-6\""));
        let strong = etag.trim_start_matches("W/").to_string();
        let last_modified = first.headers()[LAST_MODIFIED].to_str().unwrap().to_string();
        let opened_before = fx.assets.opened.lock().unwrap().len();
        for h in [
            with(&[("if-none-match", &etag)]),
            with(&[("if-none-match", &strong)]),
            with(&[("if-none-match", &format!("\"x\", {etag}"))]),
            with(&[("if-none-match", "\"x\""), ("if-none-match", &etag)]),
            with(&[("if-none-match", "*")]),
            with(&[("if-modified-since", &last_modified)]),
        ] {
            for m in [Method::GET, Method::HEAD] {
                let AssetOutcome::Served(resp) = serve(&fx, m, "/style.css", &h, false).await else {
                    panic!()
                };
                assert_eq!(resp.status(), 304, "{h:?}");
                assert_eq!(resp.headers()[ETAG], etag.as_str());
                assert_eq!(resp.headers()[CACHE_CONTROL], CACHE_REVALIDATE);
                assert!(body(resp).await.is_empty());
            }
        }
        // A 304 never opens the file.
        assert_eq!(fx.assets.opened.lock().unwrap().len(), opened_before);
        for h in [
            with(&[("if-none-match", "W/\"1-6\"")]),
            with(&[("if-none-match", "\"other\", W/\"0-0\"")]),
            with(&[("if-none-match", "garbage")]),
            // If-None-Match decides even when If-Modified-Since would match.
            with(&[("if-none-match", "\"other\""), ("if-modified-since", &last_modified)]),
            with(&[("if-modified-since", "Thu, 01 Jan 1970 00:00:01 GMT")]),
        ] {
            let AssetOutcome::Served(resp) = serve(&fx, Method::GET, "/style.css", &h, false).await else {
                panic!()
            };
            assert_eq!(resp.status(), 200, "{h:?}");
            assert_eq!(body(resp).await, "body{}");
        }
    }

    #[tokio::test]
    async fn head_has_headers_and_no_body() {
        let fx = fixture(false);
        let out = serve(&fx, Method::HEAD, "/app.js", &HeaderMap::new(), false).await;
        let AssetOutcome::Served(resp) = out else { panic!() };
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()[CONTENT_LENGTH], "14");
        assert_eq!(resp.headers()[CONTENT_TYPE], "text/javascript; charset=utf-8");
        assert!(resp.headers().contains_key(ETAG));
        assert!(body(resp).await.is_empty());
        assert!(fx.assets.opened.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn other_methods_are_not_ours() {
        let fx = fixture(true);
        for m in [Method::POST, Method::PUT, Method::DELETE, Method::OPTIONS] {
            let h = with(&[("accept", "text/html")]);
            assert!(matches!(
                serve(&fx, m.clone(), "/style.css", &h, true).await,
                AssetOutcome::NoMatch
            ));
            assert!(matches!(
                serve(&fx, m, "/%2e%2e/x", &h, true).await,
                AssetOutcome::NoMatch
            ));
        }
    }

    /// True when the SPA shell was served (checked), false on `NoMatch`.
    async fn shell(fx: &Fixture, path: &str, h: &HeaderMap, fallback: bool) -> bool {
        match serve(fx, Method::GET, path, h, fallback).await {
            AssetOutcome::Served(resp) => {
                assert_eq!(resp.status(), 200);
                assert_eq!(resp.headers()[CACHE_CONTROL], "no-cache");
                assert_eq!(resp.headers()[CONTENT_TYPE], "text/html; charset=utf-8");
                assert_eq!(body(resp).await, "<h1>home</h1>");
                true
            }
            AssetOutcome::NoMatch => false,
            other => panic!("{path}: {other:?}"),
        }
    }

    #[tokio::test]
    async fn spa_fallback_serves_the_shell_to_navigations_only() {
        let fx = fixture(true);
        let html = with(&[("accept", "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8")]);
        let navigate = with(&[("sec-fetch-mode", "navigate")]);
        let any = with(&[("accept", "*/*")]);
        let json = with(&[("accept", "application/json")]);
        let none = HeaderMap::new();
        assert!(shell(&fx, "/dashboard/settings", &html, true).await);
        assert!(shell(&fx, "/dashboard", &navigate, true).await);
        assert!(shell(&fx, "/dashboard", &any, true).await);
        assert!(shell(&fx, "/empty", &html, true).await);
        assert!(shell(&fx, "/api/page", &html, true).await);
        // Step 1 never falls back.
        assert!(!shell(&fx, "/dashboard", &html, false).await);
        assert!(!shell(&fx, "/dashboard", &json, true).await);
        assert!(shell(&fx, "/dashboard", &none, true).await, "no Accept takes anything");
        assert!(shell(&fx, "/dashboard", &with(&[("sec-fetch-dest", "document")]), true).await);
        assert!(!shell(&fx, "/api/x", &none, true).await);
        assert!(!shell(&fx, "/missing.js", &none, true).await);
        assert!(!shell(&fx, "/missing.js", &html, true).await);
        assert!(!shell(&fx, "/missing.js", &any, true).await);
        assert!(!shell(&fx, "/img/logo.png", &navigate, true).await);
        assert!(!shell(&fx, "/api/x", &json, true).await);
        assert!(!shell(&fx, "/api/x", &any, true).await);
        assert!(!shell(&fx, "/API/x", &any, true).await);
        // Existing files are themselves, not the shell.
        let AssetOutcome::Served(resp) = serve(&fx, Method::GET, "/style.css", &html, true).await else {
            panic!()
        };
        assert_eq!(resp.headers()[CACHE_CONTROL], CACHE_REVALIDATE);
        // Refusals are not rescued by the fallback.
        assert_eq!(
            status(&serve(&fx, Method::GET, "/%2e%2e/x", &html, true).await),
            Some(400)
        );
        assert_eq!(status(&serve(&fx, Method::GET, "/.env", &html, true).await), Some(404));
        // Without spa, no fallback.
        let plain = fixture(false);
        assert!(matches!(
            serve(&plain, Method::GET, "/dashboard", &html, true).await,
            AssetOutcome::NoMatch
        ));
    }

    #[tokio::test]
    async fn files_over_the_limit_are_refused() {
        let fx = fixture(false);
        for m in [Method::GET, Method::HEAD] {
            match serve(&fx, m, "/big.bin", &HeaderMap::new(), false).await {
                AssetOutcome::Refused(f) => {
                    assert_eq!(f.status(), 403);
                    assert_eq!(f.to_string(), "asset too large");
                }
                other => panic!("{other:?}"),
            }
        }
        assert!(fx.assets.opened.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn files_on_both_sides_of_the_inline_read_size_are_served_whole() {
        let tmp = tempfile::tempdir().unwrap();
        let public = tmp.path().join("public");
        let small: Vec<u8> = (0..INLINE_READ_BYTES).map(|i| (i % 251) as u8).collect();
        let large: Vec<u8> = (0..INLINE_READ_BYTES * 3 + 7).map(|i| (i % 241) as u8).collect();
        write(&public.join("small.bin"), &small);
        write(&public.join("large.bin"), &large);
        let cfg = AssetsConfig {
            directory: "public".into(),
            spa: false,
            run_worker_first: false,
        };
        let assets = Assets::open(tmp.path(), &cfg, INLINE_READ_BYTES * 4).expect("assets open");
        for (path, want) in [("/small.bin", &small), ("/large.bin", &large)] {
            let AssetOutcome::Served(resp) = assets.serve(&Method::GET, path, &HeaderMap::new(), false).await else {
                panic!("{path} not served");
            };
            assert_eq!(
                resp.headers()[CONTENT_LENGTH],
                want.len().to_string().as_str(),
                "{path}"
            );
            assert_eq!(body(resp).await.as_ref(), want.as_slice(), "{path}");
        }
    }

    #[tokio::test]
    async fn open_accepts_only_a_folder_inside_the_root() {
        let fx = fixture(false);
        let cfg = |dir: &str, run_worker_first| AssetsConfig {
            directory: dir.into(),
            spa: false,
            run_worker_first,
        };
        let root = &fx.functions;
        let a = Assets::open(root, &cfg("public", true), 7).unwrap();
        assert!(a.run_worker_first());
        assert_eq!(a.max_bytes, 7);
        assert!(!Assets::open(root, &cfg("public", false), 7).unwrap().run_worker_first());
        assert!(Assets::open(root, &cfg("./public/", false), 7).is_some());
        assert!(Assets::open(root, &cfg("api", false), 7).is_some());
        for bad in ["missing", "public/index.html", ".", "..", "../..", "/etc", ""] {
            assert!(Assets::open(root, &cfg(bad, false), 7).is_none(), "{bad}");
        }
        symlink("..", root.join("up")).unwrap();
        assert!(Assets::open(root, &cfg("up", false), 7).is_none());
        symlink("public", root.join("alias")).unwrap();
        assert!(Assets::open(root, &cfg("alias", false), 7).is_some());
        assert!(Assets::open(&root.join("nope"), &cfg("public", false), 7).is_none());
    }

    /// Paths built from pieces that matter, plus arbitrary text.
    fn hostile_path() -> impl Strategy<Value = String> {
        let piece = prop::sample::select(vec![
            "..",
            ".",
            "%2e",
            "%2E",
            "%2e%2e",
            "%2f",
            "%2F",
            "%5c",
            "\\",
            "%25",
            "%252e",
            "%00",
            "%c0%ae",
            "escape",
            "escape_dir",
            "hidden_link",
            "inside",
            "docs",
            "docs_link",
            "api",
            "handler.js",
            "outside.txt",
            ".env",
            ".git",
            "config",
            "public",
            "functions",
            "index.html",
            "style.css",
            "big.bin",
            "",
            "%",
            "_fn",
            "console",
        ]);
        prop_oneof![
            prop::collection::vec(piece, 0..8).prop_map(|v| format!("/{}", v.join("/"))),
            prop::collection::vec(prop::sample::select(vec!["..", "%2e", ".", "/", "\\"]), 0..12)
                .prop_map(|v| format!("/{}", v.concat())),
            any::<String>(),
            any::<String>().prop_map(|s| format!("/{s}")),
        ]
    }

    #[test]
    fn arbitrary_paths_never_reveal_anything_outside_the_root() {
        let fx = fixture(true);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
            cases: 512,
            ..ProptestConfig::default()
        });
        let headers = with(&[("accept", "*/*"), ("sec-fetch-mode", "navigate")]);
        runner
            .run(&(hostile_path(), any::<bool>()), |(path, fallback)| {
                rt.block_on(async {
                    let out = serve(&fx, Method::GET, &path, &headers, fallback).await;
                    assert_nothing_leaked(&fx, out).await;
                });
                Ok(())
            })
            .unwrap();
    }

    proptest! {
        #[test]
        fn parsed_segments_are_always_safe(raw in hostile_path()) {
            if let Ok(p) = parse_path(&raw) {
                for s in &p.segments {
                    prop_assert!(!s.is_empty() && !s.starts_with('.'));
                    prop_assert!(!s.contains(['/', '\\', '%', '\0']));
                    prop_assert!(!s.chars().any(char::is_control));
                }
            }
        }
    }
}
