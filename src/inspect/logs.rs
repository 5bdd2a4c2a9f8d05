//! Engine log lines of one request: every line the engine logs while it serves a request (a
//! `tracing` event in the gateway or invoke pipeline, a line of the error log) is kept with
//! that request's record and carries its request id on the engine's own output.
//!
//! How, without a cost for requests that log nothing: the gateway runs each request inside a
//! tokio task-local [`Scope`] (moved into the request's future, no allocation): the request's
//! sequence number, the key of its request id once a function call has one (`Copy`, formatted
//! only when a line is written), and the lines, an empty `Vec` until the first one. The
//! [`Capture`] layer and the [`Tagged`] formatter look the scope up only for events that the
//! subscriber's filter already let through, so a request that logs nothing pays one
//! task-local swap per poll and nothing else. Work spawned onto other tasks (a connection's
//! reader, the flush task) is outside the scope: those lines belong to no single request.

use serde::Serialize;
use std::cell::{Cell, RefCell};
use std::fmt::Write as _;
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// Lines kept per request (the rest are counted in one last line).
pub const LINES_KEPT: usize = 100;

/// The parts of a request id (`req-<epoch ms>-<pid>-<n>`), kept as numbers so that tagging a
/// request costs no allocation; formatted only when a line is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestKey {
    pub ms: u64,
    pub pid: u32,
    pub n: u64,
}

impl std::fmt::Display for RequestKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "req-{}-{}-{:06}", self.ms, self.pid, self.n)
    }
}

/// How severe a line is (`tracing`'s levels; error-log lines are `error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ts_rs::TS)]
#[ts(export, rename = "RequestLogLevel")]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl From<&tracing::Level> for Level {
    fn from(l: &tracing::Level) -> Level {
        match *l {
            tracing::Level::ERROR => Level::Error,
            tracing::Level::WARN => Level::Warn,
            tracing::Level::INFO => Level::Info,
            tracing::Level::DEBUG => Level::Debug,
            tracing::Level::TRACE => Level::Trace,
        }
    }
}

/// One engine log line of a request (`RequestRecord.logs`).
#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
#[ts(export, rename = "RequestLogLine")]
pub struct LogLine {
    /// Epoch milliseconds.
    #[ts(type = "number")]
    pub ts: u64,
    pub level: Level,
    /// `engine` (a `tracing` event) or `error_log` (a line of FastFN's error log).
    pub source: &'static str,
    /// The message and its fields (`key=value`).
    pub line: String,
}

/// What the gateway keeps for the request it is serving (see the module docs).
#[derive(Debug)]
pub struct Scope {
    /// The request's sequence number in the request log (its `g-<seq>` id without a call).
    seq: u64,
    /// An id of another form (a job's), set when the scope starts.
    name: Option<String>,
    key: Cell<Option<RequestKey>>,
    lines: RefCell<Vec<LogLine>>,
    /// Lines past [`LINES_KEPT`].
    dropped: Cell<usize>,
}

tokio::task_local! {
    static SCOPE: Scope;
}

/// What a request logged: its lines, and the request id they were tagged with (when a call
/// had one).
#[derive(Debug, Default)]
pub struct Logged {
    pub lines: Vec<LogLine>,
    pub key: Option<RequestKey>,
}

/// Run `fut` as the request with sequence number `seq`; its output and what it logged.
pub fn scoped<F: std::future::Future>(seq: u64, fut: F) -> impl std::future::Future<Output = (F::Output, Logged)> {
    scoped_as(seq, None, fut)
}

/// [`scoped`] for a call whose id is not a request key (a job's id): lines carry `name`.
///
/// Not an `async fn` (see `crate::wrap`): this wraps every request's future. The closure
/// runs inside the scope's poll, where the lines are still in reach.
pub fn scoped_as<F: std::future::Future>(
    seq: u64,
    name: Option<String>,
    fut: F,
) -> impl std::future::Future<Output = (F::Output, Logged)> {
    let scope = Scope {
        seq,
        name,
        key: Cell::new(None),
        lines: RefCell::new(Vec::new()),
        dropped: Cell::new(0),
    };
    SCOPE.scope(
        scope,
        crate::wrap::then_in_place(fut, |out| {
            let logged = SCOPE.with(|s| {
                let mut lines = s.lines.take();
                if s.dropped.get() > 0 {
                    lines.push(LogLine {
                        ts: crate::clock::epoch_millis(),
                        level: Level::Warn,
                        source: "engine",
                        line: format!("… {} more lines not kept", s.dropped.get()),
                    });
                }
                Logged {
                    lines,
                    key: s.key.get(),
                }
            });
            (out, logged)
        }),
    )
}

/// The request being served has this request id from now on (a function call's).
pub fn set_key(key: RequestKey) {
    let _ = SCOPE.try_with(|s| s.key.set(Some(key)));
}

/// The key of the request being served, when it has one.
pub fn current_key() -> Option<RequestKey> {
    SCOPE.try_with(|s| s.key.get()).ok().flatten()
}

/// The id of the request being served (`req-…`, else `g-<seq>`), `None` outside a request.
pub fn current_id() -> Option<String> {
    SCOPE
        .try_with(|s| match (&s.name, s.key.get()) {
            (Some(name), _) => name.clone(),
            (None, Some(k)) => k.to_string(),
            (None, None) => format!("g-{}", s.seq),
        })
        .ok()
}

/// Keep a line for the request being served (nothing outside a request).
pub fn keep(level: Level, source: &'static str, line: impl FnOnce() -> String) {
    let _ = SCOPE.try_with(|s| {
        let mut lines = s.lines.borrow_mut();
        if lines.len() >= LINES_KEPT {
            s.dropped.set(s.dropped.get() + 1);
            return;
        }
        lines.push(LogLine {
            ts: crate::clock::epoch_millis(),
            level,
            source,
            line: line(),
        });
    });
}

/// A `tracing` layer that keeps each event logged while a request is served with that
/// request. Install it under the subscriber's filter (only lines that are written are kept).
#[derive(Debug, Default, Clone, Copy)]
pub struct Capture;

impl<S: Subscriber> Layer<S> for Capture {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        keep(event.metadata().level().into(), "engine", || {
            let mut text = Text::default();
            event.record(&mut text);
            text.0
        });
    }
}

/// An event's message, then its other fields as `key=value`.
#[derive(Default)]
struct Text(String);

impl tracing::field::Visit for Text {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let fields = std::mem::take(&mut self.0);
            let _ = write!(self.0, "{value:?}");
            self.0.push_str(&fields);
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            let fields = std::mem::take(&mut self.0);
            self.0.push_str(value);
            self.0.push_str(&fields);
        } else {
            let _ = write!(self.0, " {}={value}", field.name());
        }
    }
}

/// An event formatter that puts `[req-…] ` before each text line written while a request is
/// served.
#[derive(Debug, Clone)]
pub struct Tagged<F> {
    inner: F,
}

impl<F> Tagged<F> {
    /// Tag text lines written by `inner`.
    pub fn text(inner: F) -> Tagged<F> {
        Tagged { inner }
    }
}

impl<S, N, F> FormatEvent<S, N> for Tagged<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'w> FormatFields<'w> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> std::fmt::Result {
        if let Some(id) = current_id() {
            write!(writer, "[{id}] ")?;
        }
        self.inner.format_event(ctx, writer, event)
    }
}

/// The engine's JSON log line (`FN_LOG_FORMAT=json`) for a `tracing` event, in the shape of
/// the CLI's own lines: `{"ts", "level", "msg", "request_id"?, <fields>}` (`ts` in epoch
/// seconds, `level` in lowercase), one object per line.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonLine;

impl<S, N> FormatEvent<S, N> for JsonLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'w> FormatFields<'w> + 'static,
{
    fn format_event(&self, _ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> std::fmt::Result {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let mut line = serde_json::Map::new();
        line.insert("ts".into(), crate::clock::epoch_secs().into());
        let level = serde_json::to_value(Level::from(event.metadata().level())).unwrap_or_default();
        line.insert("level".into(), level);
        line.insert("msg".into(), fields.msg.into());
        if let Some(id) = current_id() {
            line.insert("request_id".into(), id.into());
        }
        for (k, v) in fields.rest {
            line.entry(k).or_insert(v);
        }
        writeln!(writer, "{}", serde_json::Value::Object(line))
    }
}

/// An event's message and other fields, as JSON values.
#[derive(Default)]
struct Fields {
    msg: String,
    rest: Vec<(String, serde_json::Value)>,
}

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        let text = format!("{value:?}");
        if field.name() == "message" {
            self.msg = text;
        } else {
            self.rest.push((field.name().to_string(), text.into()));
        }
    }

    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            self.msg = value.to_string();
        } else {
            self.rest.push((field.name().to_string(), value.into()));
        }
    }

    fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
        self.rest.push((field.name().to_string(), value.into()));
    }

    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        self.rest.push((field.name().to_string(), value.into()));
    }

    fn record_bool(&mut self, field: &tracing::field::Field, value: bool) {
        self.rest.push((field.name().to_string(), value.into()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    #[test]
    fn a_key_formats_as_the_engine_request_id() {
        let k = RequestKey {
            ms: 1700000000000,
            pid: 42,
            n: 7,
        };
        assert_eq!(k.to_string(), "req-1700000000000-42-000007");
    }

    #[tokio::test]
    async fn lines_are_kept_only_inside_a_request_and_tagged_with_its_id() {
        let sub = tracing_subscriber::registry()
            .with(tracing_subscriber::filter::LevelFilter::INFO)
            .with(Capture);
        let _guard = tracing::subscriber::set_default(sub);
        tracing::warn!("outside any request");
        assert_eq!(current_id(), None);
        let ((), logged) = scoped(5, async {
            assert_eq!(current_id().as_deref(), Some("g-5"));
            tracing::debug!("filtered out");
            tracing::warn!(socket = 2, "socket refused");
            set_key(RequestKey { ms: 1, pid: 2, n: 3 });
            assert_eq!(current_id().as_deref(), Some("req-1-2-000003"));
            keep(Level::Error, "error_log", || "answered 500".into());
        })
        .await;
        assert_eq!(logged.key, Some(RequestKey { ms: 1, pid: 2, n: 3 }));
        let lines = logged.lines;
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert_eq!(lines[0].level, Level::Warn);
        assert_eq!(lines[0].line, "socket refused socket=2");
        assert_eq!((lines[1].source, lines[1].line.as_str()), ("error_log", "answered 500"));
        assert_eq!(current_key(), None);
    }

    #[tokio::test]
    async fn a_named_scope_tags_lines_with_its_name() {
        let ((), logged) = scoped_as(3, Some("job-1".into()), async {
            set_key(RequestKey { ms: 1, pid: 1, n: 1 });
            assert_eq!(current_id().as_deref(), Some("job-1"), "the name wins");
            keep(Level::Warn, "engine", || "x".into());
        })
        .await;
        assert_eq!(logged.lines.len(), 1);
    }

    #[tokio::test]
    async fn a_chatty_request_keeps_a_bounded_number_of_lines() {
        let ((), logged) = scoped(1, async {
            for i in 0..LINES_KEPT + 5 {
                keep(Level::Info, "engine", || format!("line {i}"));
            }
        })
        .await;
        let lines = logged.lines;
        assert_eq!(lines.len(), LINES_KEPT + 1);
        assert!(lines.last().unwrap().line.contains("5 more lines"));
    }

    #[test]
    fn json_lines_have_the_cli_shape_and_the_request_id() {
        let out = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
        let w = out.clone();
        let make = move || Sink(w.clone());
        let sub = tracing_subscriber::fmt()
            .event_format(JsonLine)
            .with_writer(make)
            .finish();
        let _guard = tracing::subscriber::set_default(sub);
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(scoped(9, async {
            tracing::warn!(socket = 2, "inside");
        }));
        tracing::info!("outside");
        let text = String::from_utf8(out.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines[0]["request_id"], "g-9");
        assert_eq!(lines[0]["msg"], "inside");
        assert_eq!(lines[0]["level"], "warn");
        assert_eq!(lines[0]["socket"], 2);
        assert!(lines[0]["ts"].is_number(), "epoch seconds, as the CLI's lines");
        assert!(lines[1].get("request_id").is_none());
        assert_eq!(lines[1]["level"], "info");
    }

    struct Sink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Sink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
}
