//! The log book: FastFN's three logs, kept in memory (bounded rings) for `/_fn/logs`,
//! `fastfn logs` and the dashboard, and appended to files when asked (`FN_RUNTIME_LOG_FILE`,
//! `FN_LOG_DIR`):
//!
//! - **runtime**: daemon stdout/stderr and per-call handler output, shown as FastFN prints it
//!   (`[python] [fn:hello@default stdout] …`);
//! - **access**: one line per HTTP request, in the original's nginx format;
//! - **error**: gateway answers of 500 and above, and engine problems (daemon exits, failed
//!   reloads) that the CLI reports.
//!
//! Every entry carries a sequence number so a follower (`fastfn logs`) can ask for what is new.
//! An access entry is stored as parts (refcounted `Uri`, header value) and formatted only when
//! read or written to a file, so the per-request cost is a lock and a push.

use crate::runtime::RuntimeKind;
use hyper::header::{HeaderValue, USER_AGENT};
use hyper::{Method, Request, Response, Uri, Version};
use serde::Serialize;
use std::collections::VecDeque;
use std::future::Future;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Lines kept per log.
pub const CAPACITY: usize = 2000;

#[derive(Debug, Clone, Serialize, ts_rs::TS)]
#[ts(export)]
pub struct LogLine {
    #[ts(type = "number")]
    pub ts: u64,
    pub runtime: RuntimeKind,
    /// Function that printed it, for per-call handler output.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub function: Option<String>,
    pub stream: &'static str,
    pub line: String,
}

/// One of FastFN's log files (`/_fn/logs?file=…`, `fastfn logs --file …`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFile {
    Error,
    Access,
    Runtime,
}

impl LogFile {
    pub const ALL: [LogFile; 3] = [LogFile::Error, LogFile::Access, LogFile::Runtime];

    pub fn parse(s: &str) -> Option<LogFile> {
        match s {
            "error" => Some(LogFile::Error),
            "access" => Some(LogFile::Access),
            "runtime" => Some(LogFile::Runtime),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            LogFile::Error => "error",
            LogFile::Access => "access",
            LogFile::Runtime => "runtime",
        }
    }
}

/// Filter for [`LogBook::tail`].
#[derive(Debug, Default, Clone)]
pub struct LogFilter {
    pub runtime: Option<RuntimeKind>,
    pub function: Option<String>,
    /// `stdout`, `stderr`, or `None` for all.
    pub stream: Option<String>,
    pub lines: usize,
}

/// What [`LogBook::text_tail`] returns: the lines, and the cursor to pass as `since` next time.
#[derive(Debug, Clone)]
pub struct TextTail {
    pub lines: Vec<String>,
    pub next: u64,
}

struct RuntimeEntry {
    seq: u64,
    line: LogLine,
    /// Version of the function (`None` = default); only for handler output.
    version: Option<String>,
}

/// A request as the access log needs it; formatted lazily.
struct AccessEntry {
    seq: u64,
    ts_secs: u64,
    ip: IpAddr,
    method: Method,
    uri: Uri,
    version: Version,
    status: u16,
    bytes: u64,
    micros: u64,
    ua: Option<HeaderValue>,
}

struct TextEntry {
    seq: u64,
    text: String,
}

/// Files the logs are appended to, one line per write.
#[derive(Default)]
struct LogFiles {
    runtime: Vec<Mutex<std::fs::File>>,
    access: Option<Mutex<std::fs::File>>,
    error: Option<Mutex<std::fs::File>>,
}

fn open_append(path: &Path) -> Option<Mutex<std::fs::File>> {
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    match std::fs::OpenOptions::new().create(true).append(true).open(path) {
        Ok(f) => Some(Mutex::new(f)),
        Err(e) => {
            tracing::warn!("cannot open log file {}: {e}", path.display());
            None
        }
    }
}

fn append(file: &Mutex<std::fs::File>, line: &str) {
    let mut f = file.lock().unwrap_or_else(|p| p.into_inner());
    // One write per line, so concurrent writers (and `tail -F`) never see half lines.
    let mut buf = Vec::with_capacity(line.len() + 1);
    buf.extend_from_slice(line.as_bytes());
    buf.push(b'\n');
    let _ = f.write_all(&buf);
}

#[derive(Default)]
pub struct LogBook {
    runtime: Mutex<VecDeque<RuntimeEntry>>,
    access: Mutex<VecDeque<AccessEntry>>,
    errors: Mutex<VecDeque<TextEntry>>,
    seq: AtomicU64,
    files: LogFiles,
}

impl std::fmt::Debug for LogBook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogBook")
            .field("seq", &self.seq.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

fn push_bounded<T>(ring: &Mutex<VecDeque<T>>, item: T) {
    let mut ring = ring.lock().unwrap_or_else(|p| p.into_inner());
    if ring.len() == CAPACITY {
        ring.pop_front();
    }
    ring.push_back(item);
}

impl LogBook {
    /// A log book that also appends to files: `runtime_file` (`FN_RUNTIME_LOG_FILE`) gets the
    /// runtime log; `dir` (`FN_LOG_DIR`) gets `error.log`, `access.log` and `runtime.log`.
    pub fn with_files(runtime_file: Option<&Path>, dir: Option<&Path>) -> LogBook {
        let mut files = LogFiles::default();
        let mut runtime_paths: Vec<PathBuf> = runtime_file.map(Path::to_path_buf).into_iter().collect();
        if let Some(dir) = dir {
            files.access = open_append(&dir.join("access.log"));
            files.error = open_append(&dir.join("error.log"));
            let r = dir.join("runtime.log");
            if !runtime_paths.contains(&r) {
                runtime_paths.push(r);
            }
        }
        files.runtime = runtime_paths.iter().filter_map(|p| open_append(p)).collect();
        LogBook {
            files,
            ..LogBook::default()
        }
    }

    /// A log book for these settings (files from `FN_RUNTIME_LOG_FILE` / `FN_LOG_DIR`).
    pub fn for_settings(settings: &crate::config::project::Settings) -> LogBook {
        LogBook::with_files(settings.runtime_log_file.as_deref(), settings.log_dir.as_deref())
    }

    fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// A daemon's line (or any runtime line without a version).
    pub fn push(&self, line: LogLine) {
        self.push_runtime(line, None);
    }

    /// Handler output of one call, with the function's version (`None` = default).
    pub fn push_output(&self, line: LogLine, version: Option<&str>) {
        self.push_runtime(line, version.map(str::to_string));
    }

    /// A call's stdout and stderr, a line each, under `target`'s function: the one place every
    /// trigger (request, job, schedule, `/_fn/invoke`) sends handler output.
    pub fn push_call_output(&self, target: &crate::routing::Target, stdout: Option<&str>, stderr: Option<&str>) {
        let ts = crate::clock::epoch_millis();
        for (stream, text) in [("stdout", stdout), ("stderr", stderr)] {
            for line in text.into_iter().flat_map(str::lines) {
                let line = LogLine {
                    ts,
                    runtime: target.runtime,
                    function: Some(target.fn_name.clone()),
                    stream,
                    line: line.to_string(),
                };
                self.push_output(line, target.version.as_deref());
            }
        }
    }

    fn push_runtime(&self, line: LogLine, version: Option<String>) {
        let entry = RuntimeEntry {
            seq: self.next_seq(),
            line,
            version,
        };
        for f in &self.files.runtime {
            append(f, &runtime_text(&entry));
        }
        push_bounded(&self.runtime, entry);
    }

    /// An engine problem for the error log (a daemon exited, a reload failed…).
    pub fn error(&self, message: &str) {
        let mut text = format!("{} [error] {message}", error_time(crate::clock::epoch_millis() / 1000));
        // Written while a request is served: the request's detail shows it, and the line
        // names the request (as nginx adds `request: "…"` to its error lines).
        if let Some(id) = crate::inspect::logs::current_id() {
            crate::inspect::logs::keep(crate::inspect::logs::Level::Error, "error_log", || message.to_string());
            text.push_str(", request_id: ");
            text.push_str(&id);
        }
        if let Some(f) = &self.files.error {
            append(f, &text);
        }
        push_bounded(
            &self.errors,
            TextEntry {
                seq: self.next_seq(),
                text,
            },
        );
    }

    fn push_access(&self, entry: AccessEntry) {
        if entry.status >= 500 {
            self.error(&format!(
                "{} {} answered {} (client {})",
                entry.method,
                entry.uri.path(),
                entry.status,
                entry.ip
            ));
        }
        if let Some(f) = &self.files.access {
            append(f, &access_text(&entry));
        }
        push_bounded(&self.access, entry);
    }

    /// The last `filter.lines` matching runtime lines, oldest first.
    pub fn tail(&self, filter: &LogFilter) -> Vec<LogLine> {
        self.tail_since(filter, None, 0)
    }

    /// [`LogBook::tail`] of one `version` (`default` for unversioned functions) and only the
    /// lines newer than `since`.
    pub fn tail_since(&self, filter: &LogFilter, version: Option<&str>, since: u64) -> Vec<LogLine> {
        let lines = self.runtime.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<LogLine> = lines
            .iter()
            .rev()
            .take_while(|e| e.seq > since)
            .filter(|e| runtime_matches(e, filter, version))
            .take(filter.lines.min(CAPACITY))
            .map(|e| e.line.clone())
            .collect();
        out.reverse();
        out
    }

    /// The last `filter.lines` lines of one log as FastFN prints them, newer than `since`,
    /// oldest first. The runtime log is filtered by runtime, function, `version` and stream;
    /// the other two by the same words in their text (as the original filters its files).
    pub fn text_tail(&self, file: LogFile, filter: &LogFilter, version: Option<&str>, since: u64) -> TextTail {
        let next = self.seq.load(Ordering::Relaxed);
        let take = filter.lines.min(CAPACITY);
        let mut lines: Vec<String> = match file {
            LogFile::Runtime => {
                let ring = self.runtime.lock().unwrap_or_else(|p| p.into_inner());
                ring.iter()
                    .rev()
                    .take_while(|e| e.seq > since)
                    .filter(|e| runtime_matches(e, filter, version))
                    .take(take)
                    .map(runtime_text)
                    .collect()
            }
            LogFile::Access => {
                let ring = self.access.lock().unwrap_or_else(|p| p.into_inner());
                ring.iter()
                    .rev()
                    .take_while(|e| e.seq > since)
                    .map(access_text)
                    .filter(|t| text_matches(t, filter, version))
                    .take(take)
                    .collect()
            }
            LogFile::Error => {
                let ring = self.errors.lock().unwrap_or_else(|p| p.into_inner());
                ring.iter()
                    .rev()
                    .take_while(|e| e.seq > since)
                    .filter(|e| text_matches(&e.text, filter, version))
                    .take(take)
                    .map(|e| e.text.clone())
                    .collect()
            }
        };
        lines.reverse();
        TextTail { lines, next }
    }
}

fn runtime_matches(e: &RuntimeEntry, filter: &LogFilter, version: Option<&str>) -> bool {
    let l = &e.line;
    filter.runtime.is_none_or(|r| l.runtime == r)
        && filter
            .function
            .as_deref()
            .is_none_or(|f| l.function.as_deref() == Some(f))
        && version.is_none_or(|v| l.function.is_some() && e.version.as_deref().unwrap_or("default") == v)
        && filter.stream.as_deref().is_none_or(|s| s == "all" || l.stream == s)
}

/// The original's filter over a file's text: `[runtime]`, `[fn:<name>@`, `@<version> `,
/// ` stdout]` / ` stderr]` must appear in the line.
fn text_matches(text: &str, filter: &LogFilter, version: Option<&str>) -> bool {
    filter.runtime.is_none_or(|r| text.contains(&format!("[{r}]")))
        && filter
            .function
            .as_deref()
            .is_none_or(|f| text.contains(&format!("[fn:{f}@")))
        && version.is_none_or(|v| text.contains(&format!("@{v} ")))
        && filter
            .stream
            .as_deref()
            .is_none_or(|s| s == "all" || text.contains(&format!(" {s}]")))
}

/// `[python] [fn:hello@default stdout] line` for handler output, `[python] [daemon stderr] line`
/// for a daemon's own output.
fn runtime_text(e: &RuntimeEntry) -> String {
    let l = &e.line;
    match &l.function {
        Some(f) => format!(
            "[{}] [fn:{f}@{} {}] {}",
            l.runtime,
            e.version.as_deref().unwrap_or("default"),
            l.stream,
            l.line
        ),
        None => format!("[{}] [daemon {}] {}", l.runtime, l.stream, l.line),
    }
}

/// nginx's `fastfn_access` format of the original:
/// `$remote_addr - [$time_local] "$request" status=$status bytes=$body_bytes_sent rt=$request_time ua="$http_user_agent"`.
fn access_text(e: &AccessEntry) -> String {
    let target = e.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let ua =
        e.ua.as_ref()
            .map(|v| String::from_utf8_lossy(v.as_bytes()))
            .unwrap_or_default();
    format!(
        "{} - [{}] \"{} {} {:?}\" status={} bytes={} rt={:.3} ua=\"{}\"",
        e.ip,
        access_time(e.ts_secs),
        e.method,
        target,
        e.version,
        e.status,
        e.bytes,
        e.micros as f64 / 1_000_000.0,
        ua.replace('"', "\\\"")
    )
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (Howard Hinnant's method).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn split_time(secs: u64) -> (i64, u32, u32, u64, u64, u64) {
    let (y, m, d) = civil((secs / 86_400) as i64);
    let rem = secs % 86_400;
    (y, m, d, rem / 3600, rem % 3600 / 60, rem % 60)
}

/// `01/Dec/2026:10:40:00 +0000` (nginx `$time_local`, in UTC).
fn access_time(secs: u64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (y, m, d, hh, mm, ss) = split_time(secs);
    format!(
        "{d:02}/{}/{y}:{hh:02}:{mm:02}:{ss:02} +0000",
        MONTHS[(m as usize).saturating_sub(1) % 12]
    )
}

/// `2026-12-01T10:40:00Z` (RFC 3339, UTC), for reports such as `fastfn doctor --json`.
pub fn rfc3339(secs: u64) -> String {
    let (y, m, d, hh, mm, ss) = split_time(secs);
    format!("{y}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z")
}

/// `2026/12/01 10:40:00` (nginx error log time, in UTC).
fn error_time(secs: u64) -> String {
    let (y, m, d, hh, mm, ss) = split_time(secs);
    format!("{y}/{m:02}/{d:02} {hh:02}:{mm:02}:{ss:02}")
}

/// A request's URI that owns its bytes. The URI hyper parses borrows its connection's read
/// buffer: a clone kept by the access log or the request log (up to thousands of entries)
/// pins that buffer, and hyper then allocates and copies a new one for every later read.
/// Measured on the 404 path: ~3 % of the gateway's CPU freeing shared buffers alone.
pub fn detached(uri: &Uri) -> Uri {
    match uri.path_and_query() {
        Some(pq) if uri.scheme().is_none() && uri.authority().is_none() => {
            hyper::http::uri::PathAndQuery::from_maybe_shared(bytes::Bytes::copy_from_slice(pq.as_str().as_bytes()))
                .map(Uri::from)
                .unwrap_or_else(|_| uri.clone())
        }
        // Absolute-form or `*`: rare; a round trip through text copies it.
        _ => uri.to_string().parse().unwrap_or_else(|_| uri.clone()),
    }
}

/// Serve one request through `handle` and record it in the access log: the gateway's single
/// call site. Takes the request with its detached URI and arrival time; the response size is
/// the body's exact size hint (0 for a stream).
pub fn served<'a, B, F>(
    logs: &'a LogBook,
    (req, uri, started): (Request<hyper::body::Incoming>, Uri, tokio::time::Instant),
    remote: SocketAddr,
    handle: impl FnOnce(Request<hyper::body::Incoming>) -> F,
) -> impl Future<Output = Response<B>> + 'a
where
    B: hyper::body::Body,
    F: Future<Output = Response<B>> + 'a,
{
    let method = req.method().clone();
    let version = req.version();
    // A copy: a clone would keep hyper's read buffer alive for as long as the log keeps
    // the line (see `detached`).
    let ua = req
        .headers()
        .get(USER_AGENT)
        .and_then(|v| HeaderValue::from_bytes(v.as_bytes()).ok());
    // Not an `async fn` (see `crate::wrap`): this wraps every request's future.
    crate::wrap::then_in_place(handle(req), move |resp| {
        logs.push_access(AccessEntry {
            seq: logs.next_seq(),
            ts_secs: crate::clock::epoch_millis() / 1000,
            ip: remote.ip().to_canonical(),
            method,
            uri,
            version,
            status: resp.status().as_u16(),
            bytes: resp.body().size_hint().exact().unwrap_or(0),
            micros: started.elapsed().as_micros() as u64,
            ua,
        });
        resp
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_detached_uri_reads_the_same() {
        for text in ["/a/b?x=1&y=%20", "/", "*", "http://example.com:8080/p?q", "/%E2%9C%93"] {
            let uri: Uri = text.parse().unwrap();
            let copy = detached(&uri);
            assert_eq!(copy, uri, "{text}");
            assert_eq!(copy.to_string(), uri.to_string(), "{text}");
        }
    }

    fn line(function: Option<&str>, stream: &'static str, text: &str) -> LogLine {
        LogLine {
            ts: 0,
            runtime: RuntimeKind::Python,
            function: function.map(str::to_string),
            stream,
            line: text.into(),
        }
    }

    fn all(lines: usize) -> LogFilter {
        LogFilter {
            lines,
            ..LogFilter::default()
        }
    }

    #[test]
    fn runtime_lines_read_as_fastfn_prints_them() {
        let book = LogBook::default();
        book.push_output(line(Some("hello"), "stdout", "hi"), None);
        book.push_output(line(Some("hello"), "stderr", "oops"), Some("v2"));
        book.push(line(None, "stderr", "daemon up"));
        let t = book.text_tail(LogFile::Runtime, &all(10), None, 0);
        assert_eq!(
            t.lines,
            vec![
                "[python] [fn:hello@default stdout] hi",
                "[python] [fn:hello@v2 stderr] oops",
                "[python] [daemon stderr] daemon up"
            ]
        );
        assert_eq!(t.next, 3);
        let v2 = book.text_tail(LogFile::Runtime, &all(10), Some("v2"), 0);
        assert_eq!(v2.lines, vec!["[python] [fn:hello@v2 stderr] oops"]);
        // `since` returns only what is newer; `lines` keeps the last ones.
        assert_eq!(book.text_tail(LogFile::Runtime, &all(10), None, 2).lines.len(), 1);
        assert_eq!(
            book.text_tail(LogFile::Runtime, &all(1), None, 0).lines,
            vec!["[python] [daemon stderr] daemon up"]
        );
        assert!(book.text_tail(LogFile::Access, &all(10), None, 0).lines.is_empty());
    }

    #[test]
    fn rings_are_bounded() {
        let book = LogBook::default();
        for i in 0..CAPACITY + 5 {
            book.error(&format!("e{i}"));
        }
        let t = book.text_tail(LogFile::Error, &all(CAPACITY + 5), None, 0);
        assert_eq!(t.lines.len(), CAPACITY);
        assert!(t.lines[0].ends_with("[error] e5"), "{}", t.lines[0]);
    }

    #[test]
    fn times_are_formatted_like_nginx() {
        // 2026-12-01 10:40:05 UTC
        let secs = 1_796_121_605;
        assert_eq!(access_time(secs), "01/Dec/2026:10:40:05 +0000");
        assert_eq!(error_time(secs), "2026/12/01 10:40:05");
        assert_eq!(rfc3339(secs), "2026-12-01T10:40:05Z");
        assert_eq!(access_time(0), "01/Jan/1970:00:00:00 +0000");
        assert_eq!(error_time(951_782_400), "2000/02/29 00:00:00");
    }

    #[test]
    fn files_get_each_log() {
        let dir = tempfile::tempdir().unwrap();
        let book = LogBook::with_files(None, Some(dir.path()));
        book.push_output(line(Some("f"), "stdout", "x"), None);
        book.error("boom");
        let runtime = std::fs::read_to_string(dir.path().join("runtime.log")).unwrap();
        assert_eq!(runtime, "[python] [fn:f@default stdout] x\n");
        let error = std::fs::read_to_string(dir.path().join("error.log")).unwrap();
        assert!(error.ends_with("[error] boom\n"), "{error}");
        assert!(dir.path().join("access.log").is_file());
    }
}
