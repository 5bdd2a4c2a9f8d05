//! Pure: what a `schedule` / `keep_warm` block asks for, and when it is due.
//!
//! - [`Schedule`] and [`KeepWarm`] are the validated `fn.config.json` blocks (FastFN's
//!   `function-spec.md` "Schedule" and "Keep Warm", with its defaults and clamps).
//! - [`Zone`] is a schedule's `timezone`: `UTC`/`Z`, `local` (the default), a fixed offset
//!   (`+02:00`, `-0500`) or an IANA name (`Europe/Madrid`, an addition over FastFN).
//! - [`next_run`] is the next-run computation: intervals aligned to multiples of
//!   `every_seconds` since the epoch (so a reload or restart does not shift them, as FastFN
//!   does), cron expressions through `croner` in the schedule's zone (DST gaps and folds are
//!   croner's and jiff's business, not ours).
//! - [`RetryPolicy::delay`] is the retry backoff (`base · 2^(attempt-1)`, capped, ± jitter).
//!
//! Nothing here reads a clock: the caller passes `now` in epoch seconds.

use serde::Serialize;
use serde_json::{Map, Value};
use std::str::FromStr;

/// FastFN's defaults (`core/scheduler.lua`).
pub const DEFAULT_KEEP_WARM_PING_SECONDS: u64 = 45;
pub const DEFAULT_KEEP_WARM_IDLE_TTL_SECONDS: u64 = 300;
pub const DEFAULT_RETRY_MAX_ATTEMPTS: u32 = 3;
pub const DEFAULT_RETRY_BASE_DELAY_SECONDS: f64 = 1.0;
pub const DEFAULT_RETRY_MAX_DELAY_SECONDS: f64 = 30.0;
pub const DEFAULT_RETRY_JITTER: f64 = 0.2;

/// What fires a schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Trigger {
    /// `every_seconds` (> 0).
    Every(u64),
    /// `cron`, as written (validated at load).
    Cron(String),
}

/// A schedule's `timezone`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Zone {
    Utc,
    /// The machine's zone (FastFN's default when `timezone` is absent).
    Local,
    /// Seconds east of UTC.
    Fixed(i32),
    /// An IANA zone name, checked against the tz database at load.
    Named(String),
}

impl Zone {
    /// Parse a `timezone` value; `None`/empty is `local`, as in FastFN.
    pub fn parse(raw: Option<&str>) -> Result<Zone, String> {
        let raw = raw.map(str::trim).unwrap_or("");
        if raw.is_empty() || raw.eq_ignore_ascii_case("local") {
            return Ok(Zone::Local);
        }
        if raw.eq_ignore_ascii_case("utc") || raw == "Z" {
            return Ok(Zone::Utc);
        }
        if let Some(offset) = parse_offset(raw) {
            return offset.map(Zone::Fixed);
        }
        jiff::tz::TimeZone::get(raw)
            .map(|_| Zone::Named(raw.to_string()))
            .map_err(|_| format!("unknown timezone {raw:?} (use UTC, local, ±HH:MM or an IANA name)"))
    }

    fn tz(&self) -> Result<jiff::tz::TimeZone, String> {
        match self {
            Zone::Utc => Ok(jiff::tz::TimeZone::UTC),
            Zone::Local => Ok(jiff::tz::TimeZone::system()),
            Zone::Fixed(secs) => jiff::tz::Offset::from_seconds(*secs)
                .map(jiff::tz::TimeZone::fixed)
                .map_err(|e| e.to_string()),
            Zone::Named(name) => jiff::tz::TimeZone::get(name).map_err(|e| e.to_string()),
        }
    }
}

/// `±HH:MM` / `±HHMM`: `None` when `raw` is not shaped like an offset, `Some(Err)` when it is
/// but out of range.
fn parse_offset(raw: &str) -> Option<Result<i32, String>> {
    let (sign, rest) = match raw.as_bytes().first()? {
        b'+' => (1, &raw[1..]),
        b'-' => (-1, &raw[1..]),
        _ => return None,
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    let colon_ok = rest.len() == 4 || (rest.len() == 5 && rest.as_bytes()[2] == b':');
    if digits.len() != 4 || !colon_ok || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let (h, m): (i32, i32) = (digits[..2].parse().ok()?, digits[2..].parse().ok()?);
    if h > 23 || m > 59 {
        return Some(Err(format!("invalid timezone offset {raw:?}")));
    }
    Some(Ok(sign * (h * 3600 + m * 60)))
}

/// A cron expression as FastFN reads it: 5 fields (`min hour dom mon dow`) or 6 (`sec …`),
/// macros (`@hourly`, `@daily`, `@midnight`, `@weekly`, `@monthly`, `@yearly`, `@annually`),
/// `JAN..DEC` / `SUN..SAT`, `7` for Sunday, and Vixie's OR when both day fields are
/// restricted (croner's default).
pub fn parse_cron(expr: &str) -> Result<croner::Cron, String> {
    let text = expr.trim();
    // croner knows every FastFN macro but `@midnight`.
    let text = if text.eq_ignore_ascii_case("@midnight") {
        "@daily"
    } else {
        text
    };
    if !text.starts_with('@') {
        let fields = text.split_whitespace().count();
        if !(5..=6).contains(&fields) {
            return Err(format!("cron must have 5 or 6 fields, got {fields}"));
        }
    }
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Optional)
        .year(croner::parser::Year::Disallowed)
        .build()
        .parse(text)
        .map_err(|e| e.to_string())
}

/// `schedule.retry`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RetryPolicy {
    pub enabled: bool,
    /// 1..=10 (the first run counts).
    pub max_attempts: u32,
    /// 0..=3600.
    pub base_delay_seconds: f64,
    /// base..=3600.
    pub max_delay_seconds: f64,
    /// 0..=0.5, a fraction of the delay.
    pub jitter: f64,
}

impl RetryPolicy {
    pub const OFF: RetryPolicy = RetryPolicy {
        enabled: false,
        max_attempts: 1,
        base_delay_seconds: DEFAULT_RETRY_BASE_DELAY_SECONDS,
        max_delay_seconds: DEFAULT_RETRY_MAX_DELAY_SECONDS,
        jitter: DEFAULT_RETRY_JITTER,
    };

    /// `true` → the defaults; an object → its fields (FastFN's aliases too), clamped.
    fn parse(v: &Value) -> Result<RetryPolicy, String> {
        let obj = match v {
            Value::Null | Value::Bool(false) => return Ok(RetryPolicy::OFF),
            Value::Bool(true) => &Map::new(),
            Value::Object(o) => o,
            _ => return Err("expected true, false or an object".into()),
        };
        if obj.get("enabled") == Some(&Value::Bool(false)) {
            return Ok(RetryPolicy::OFF);
        }
        let num = |names: &[&str]| -> Result<Option<f64>, String> {
            for name in names {
                match obj.get(*name) {
                    None | Some(Value::Null) => continue,
                    Some(v) => return number(v).map(Some).ok_or_else(|| format!("`{name}` must be a number")),
                }
            }
            Ok(None)
        };
        let max_attempts = num(&["max_attempts", "maxAttempts", "attempts"])?
            .map(|n| n.floor().clamp(1.0, 10.0) as u32)
            .unwrap_or(DEFAULT_RETRY_MAX_ATTEMPTS);
        let base = num(&[
            "base_delay_seconds",
            "baseDelaySeconds",
            "delay_seconds",
            "delaySeconds",
        ])?
        .unwrap_or(DEFAULT_RETRY_BASE_DELAY_SECONDS)
        .clamp(0.0, 3600.0);
        let max = num(&["max_delay_seconds", "maxDelaySeconds"])?
            .unwrap_or(DEFAULT_RETRY_MAX_DELAY_SECONDS)
            .clamp(base, 3600.0);
        let jitter = num(&["jitter"])?.unwrap_or(DEFAULT_RETRY_JITTER).clamp(0.0, 0.5);
        Ok(RetryPolicy {
            enabled: true,
            max_attempts,
            base_delay_seconds: base,
            max_delay_seconds: max,
            jitter,
        })
    }

    /// Seconds to wait before attempt `failed_attempt + 1`; `unit` is a sample of [0, 1) that
    /// places the jitter (0.5 = none).
    pub fn delay(&self, failed_attempt: u32, unit: f64) -> f64 {
        let exp = failed_attempt.saturating_sub(1).min(30) as i32;
        let delay = (self.base_delay_seconds * 2f64.powi(exp)).min(self.max_delay_seconds);
        let wiggle = delay * self.jitter;
        (delay + unit.clamp(0.0, 1.0) * 2.0 * wiggle - wiggle).max(0.0)
    }

    /// Whether another attempt follows a run that ended with `status` (0 = no answer).
    pub fn retries(&self, attempt: u32, status: u16) -> bool {
        self.enabled && attempt < self.max_attempts && status_retryable(status)
    }
}

/// FastFN retries no answer at all, 429, and every 5xx.
pub fn status_retryable(status: u16) -> bool {
    status == 0 || status == 429 || status >= 500
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A validated `schedule` block. Only an `enabled: true` block with a trigger schedules
/// anything, as in FastFN.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Schedule {
    pub enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub every_seconds: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    /// As written (`None` = local).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    pub method: String,
    pub query: Map<String, Value>,
    pub headers: Map<String, Value>,
    /// Sent as the request body (a non-string value as its JSON text).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<Map<String, Value>>,
    pub retry: RetryPolicy,
    /// Why the block cannot run (a bad cron or zone): shown as the schedule's `last_error`.
    #[serde(skip)]
    pub invalid: Option<String>,
}

impl Schedule {
    /// Parse a `schedule` object. Type errors of the plain fields are `Err` (the config is
    /// invalid); a cron or zone that does not parse is kept with [`Schedule::invalid`] set, so
    /// the function is still served and the problem shows where schedules are shown.
    pub fn parse(v: &Value) -> Result<Schedule, (String, String)> {
        let Value::Object(obj) = v else {
            return Err(("schedule".into(), "expected an object".into()));
        };
        let field = |name: &str| format!("schedule.{name}");
        let enabled = match obj.get("enabled") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err((field("enabled"), "expected true or false".into())),
        };
        let every_seconds = match obj.get("every_seconds") {
            None | Some(Value::Null) => None,
            Some(v) => match number(v) {
                Some(n) if n >= 1.0 => Some(n.floor() as u64),
                _ => return Err((field("every_seconds"), "expected a number of seconds >= 1".into())),
            },
        };
        let text = |name: &str| -> Result<Option<String>, (String, String)> {
            match obj.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.trim().to_string()).filter(|s| !s.is_empty())),
                Some(_) => Err((field(name), "expected a string".into())),
            }
        };
        let cron = text("cron")?;
        let timezone = match text("timezone")? {
            Some(tz) => Some(tz),
            None => text("tz")?,
        };
        let method = text("method")?.unwrap_or_else(|| "GET".into()).to_ascii_uppercase();
        if !matches!(method.as_str(), "GET" | "POST" | "PUT" | "PATCH" | "DELETE") {
            return Err((field("method"), "expected GET, POST, PUT, PATCH or DELETE".into()));
        }
        let object = |name: &str| -> Result<Map<String, Value>, (String, String)> {
            match obj.get(name) {
                None | Some(Value::Null) => Ok(Map::new()),
                Some(Value::Object(o)) => Ok(o.clone()),
                Some(_) => Err((field(name), "expected an object".into())),
            }
        };
        let query = object("query")?;
        let headers = object("headers")?;
        let context = match obj.get("context") {
            None | Some(Value::Null) => None,
            Some(Value::Object(o)) => Some(o.clone()),
            Some(_) => return Err((field("context"), "expected an object".into())),
        };
        let body = match obj.get("body") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()).filter(|s| !s.is_empty()),
            Some(other) => Some(other.to_string()),
        };
        let retry = RetryPolicy::parse(obj.get("retry").unwrap_or(&Value::Null)).map_err(|e| (field("retry"), e))?;
        let mut invalid = None;
        if every_seconds.is_none() {
            match &cron {
                Some(c) => invalid = parse_cron(c).err().map(|e| format!("invalid cron: {e}")),
                None if enabled => invalid = Some("missing trigger: set `every_seconds` or `cron`".into()),
                None => {}
            }
        }
        if let Err(e) = Zone::parse(timezone.as_deref()) {
            invalid.get_or_insert(e);
        }
        Ok(Schedule {
            enabled,
            every_seconds,
            cron,
            timezone,
            method,
            query,
            headers,
            body,
            context,
            retry,
            invalid,
        })
    }

    /// What fires it: `every_seconds` wins over `cron`, as in FastFN.
    pub fn trigger(&self) -> Option<Trigger> {
        match (self.every_seconds, &self.cron) {
            (Some(n), _) => Some(Trigger::Every(n)),
            (None, Some(c)) => Some(Trigger::Cron(c.clone())),
            _ => None,
        }
    }

    /// Whether the scheduler runs it (enabled, with a valid trigger).
    pub fn active(&self) -> bool {
        self.enabled && self.invalid.is_none() && self.trigger().is_some()
    }

    /// A fingerprint of what decides the run times: a changed one recomputes `next`.
    pub fn timing_signature(&self) -> String {
        format!(
            "{}|{}|{}",
            self.every_seconds.map(|n| n.to_string()).unwrap_or_default(),
            self.cron.as_deref().unwrap_or(""),
            self.timezone.as_deref().unwrap_or("")
        )
    }
}

/// A validated `keep_warm` block; `None` from [`KeepWarm::parse`] when it asks for nothing
/// (`enabled` not true, or `min_warm` 0), as FastFN reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ts_rs::TS)]
#[ts(export)]
pub struct KeepWarm {
    pub enabled: bool,
    #[ts(type = "number")]
    pub min_warm: u64,
    #[ts(type = "number")]
    pub ping_every_seconds: u64,
    #[ts(type = "number")]
    pub idle_ttl_seconds: u64,
}

impl KeepWarm {
    pub fn parse(v: &Value) -> Result<Option<KeepWarm>, (String, String)> {
        let obj = match v {
            Value::Null | Value::Bool(false) => return Ok(None),
            Value::Object(o) => o,
            _ => return Err(("keep_warm".into(), "expected an object".into())),
        };
        let int = |name: &str, default: u64| -> Result<u64, (String, String)> {
            match obj.get(name) {
                None | Some(Value::Null) => Ok(default),
                Some(v) => number(v)
                    .map(|n| if n < 0.0 { 0 } else { n.floor() as u64 })
                    .ok_or_else(|| (format!("keep_warm.{name}"), "expected a number".into())),
            }
        };
        let enabled = match obj.get("enabled") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(("keep_warm.enabled".into(), "expected true or false".into())),
        };
        let min_warm = int("min_warm", 1)?;
        // Below 1 second falls back to the default, as in FastFN.
        let or_default = |n: u64, d: u64| if n < 1 { d } else { n };
        let ping = or_default(
            int("ping_every_seconds", DEFAULT_KEEP_WARM_PING_SECONDS)?,
            DEFAULT_KEEP_WARM_PING_SECONDS,
        );
        let ttl = or_default(
            int("idle_ttl_seconds", DEFAULT_KEEP_WARM_IDLE_TTL_SECONDS)?,
            DEFAULT_KEEP_WARM_IDLE_TTL_SECONDS,
        );
        if !enabled || min_warm == 0 {
            return Ok(None);
        }
        Ok(Some(KeepWarm {
            enabled,
            min_warm,
            ping_every_seconds: ping,
            idle_ttl_seconds: ttl,
        }))
    }
}

/// The first run strictly after `now` (epoch seconds).
pub fn next_run(trigger: &Trigger, zone: &Zone, now: f64) -> Result<f64, String> {
    match trigger {
        Trigger::Every(every) => {
            let every = (*every).max(1) as f64;
            Ok((now / every).floor() * every + every)
        }
        Trigger::Cron(expr) => {
            let cron = parse_cron(expr)?;
            let ts = jiff::Timestamp::from_second(now.floor() as i64).map_err(|e| e.to_string())?;
            let start = ts.to_zoned(zone.tz()?);
            let next = cron.find_next_occurrence(&start, false).map_err(|e| e.to_string())?;
            Ok(next.timestamp().as_second() as f64)
        }
    }
}

/// `FromStr` for tests and callers holding a zone name.
impl FromStr for Zone {
    type Err = String;
    fn from_str(s: &str) -> Result<Zone, String> {
        Zone::parse(Some(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// `2026-03-29T00:59:59Z`-style text → epoch seconds.
    fn at(s: &str) -> f64 {
        s.parse::<jiff::Timestamp>().unwrap().as_second() as f64
    }

    fn iso(secs: f64) -> String {
        jiff::Timestamp::from_second(secs as i64).unwrap().to_string()
    }

    fn cron(expr: &str, tz: &str, now: &str) -> String {
        iso(next_run(&Trigger::Cron(expr.into()), &tz.parse().unwrap(), at(now)).unwrap())
    }

    #[test]
    fn intervals_align_to_multiples_of_the_period() {
        let every = |n, now| next_run(&Trigger::Every(n), &Zone::Utc, now).unwrap();
        assert_eq!(every(60, 1_000.0), 1_020.0);
        assert_eq!(every(60, 1_020.0), 1_080.0, "strictly after now");
        assert_eq!(every(1, 5.5), 6.0);
        assert_eq!(every(900, 0.0), 900.0);
    }

    #[test]
    fn cron_table() {
        // (expression, zone, now, next)
        let cases = [
            ("*/5 * * * *", "UTC", "2026-01-01T10:02:03Z", "2026-01-01T10:05:00Z"),
            ("* * * * * *", "UTC", "2026-01-01T10:02:03Z", "2026-01-01T10:02:04Z"),
            ("30 0 9 * * *", "UTC", "2026-01-01T09:00:31Z", "2026-01-02T09:00:30Z"),
            ("0 9 * * *", "-05:00", "2026-01-01T12:00:00Z", "2026-01-01T14:00:00Z"),
            ("0 9 * * *", "+0200", "2026-01-01T12:00:00Z", "2026-01-02T07:00:00Z"),
            (
                "0 9 * * *",
                "Europe/Madrid",
                "2026-01-01T00:00:00Z",
                "2026-01-01T08:00:00Z",
            ),
            (
                "0 9 * * *",
                "Europe/Madrid",
                "2026-07-01T00:00:00Z",
                "2026-07-01T07:00:00Z",
            ),
            ("0 0 * * MON", "UTC", "2026-01-01T00:00:00Z", "2026-01-05T00:00:00Z"),
            ("0 0 * * 7", "UTC", "2026-01-01T00:00:00Z", "2026-01-04T00:00:00Z"),
            ("0 0 1 JAN *", "UTC", "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z"),
            // Vixie: both day fields restricted → either matches (the 13th, or any Friday).
            ("0 0 13 * FRI", "UTC", "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"),
            ("0 0 13 * FRI", "UTC", "2026-01-10T00:00:00Z", "2026-01-13T00:00:00Z"),
            ("@hourly", "UTC", "2026-01-01T10:02:03Z", "2026-01-01T11:00:00Z"),
            ("@midnight", "UTC", "2026-01-01T10:02:03Z", "2026-01-02T00:00:00Z"),
            ("@weekly", "UTC", "2026-01-01T10:02:03Z", "2026-01-04T00:00:00Z"),
            ("@monthly", "UTC", "2026-01-01T10:02:03Z", "2026-02-01T00:00:00Z"),
            ("@yearly", "UTC", "2026-01-01T10:02:03Z", "2027-01-01T00:00:00Z"),
            ("@annually", "Z", "2026-01-01T10:02:03Z", "2027-01-01T00:00:00Z"),
        ];
        for (expr, tz, now, want) in cases {
            assert_eq!(cron(expr, tz, now), want, "{expr} in {tz} after {now}");
        }
    }

    #[test]
    fn cron_across_dst_changes() {
        // Europe/Madrid springs forward 2026-03-29 02:00 → 03:00 and falls back 2026-10-25
        // 03:00 → 02:00. America/New_York: 2026-03-08 and 2026-11-01.
        let cases = [
            // The skipped hour: a 02:30 job runs once that day, at the first valid instant.
            (
                "30 2 * * *",
                "Europe/Madrid",
                "2026-03-28T12:00:00Z",
                "2026-03-29T01:00:00Z",
            ),
            // Wall-clock 09:00 moves from UTC+1 to UTC+2 across the change.
            (
                "0 9 * * *",
                "Europe/Madrid",
                "2026-03-28T09:00:00Z",
                "2026-03-29T07:00:00Z",
            ),
            // The repeated hour: a 02:30 job runs once, at the first 02:30 (UTC+2).
            (
                "30 2 * * *",
                "Europe/Madrid",
                "2026-10-24T12:00:00Z",
                "2026-10-25T00:30:00Z",
            ),
            (
                "30 2 * * *",
                "Europe/Madrid",
                "2026-10-25T00:30:00Z",
                "2026-10-26T01:30:00Z",
            ),
            (
                "0 9 * * *",
                "America/New_York",
                "2026-03-07T15:00:00Z",
                "2026-03-08T13:00:00Z",
            ),
            (
                "0 9 * * *",
                "America/New_York",
                "2026-10-31T14:00:00Z",
                "2026-11-01T14:00:00Z",
            ),
            // Fixed offsets know no DST.
            ("0 9 * * *", "+01:00", "2026-03-28T09:00:00Z", "2026-03-29T08:00:00Z"),
        ];
        for (expr, tz, now, want) in cases {
            assert_eq!(cron(expr, tz, now), want, "{expr} in {tz} after {now}");
        }
    }

    #[test]
    fn cron_and_zone_errors() {
        for bad in ["* * * *", "* * * * * * *", "61 * * * *", "* * * * BLA", ""] {
            assert!(parse_cron(bad).is_err(), "{bad:?}");
        }
        assert_eq!(Zone::parse(None), Ok(Zone::Local));
        assert_eq!(Zone::parse(Some(" Local ")), Ok(Zone::Local));
        assert_eq!(Zone::parse(Some("utc")), Ok(Zone::Utc));
        assert_eq!(Zone::parse(Some("-05:00")), Ok(Zone::Fixed(-18_000)));
        assert_eq!(Zone::parse(Some("+0230")), Ok(Zone::Fixed(9_000)));
        assert!(Zone::parse(Some("+25:00")).is_err());
        assert!(Zone::parse(Some("Mars/Olympus")).is_err());
    }

    #[test]
    fn schedule_block() {
        let s = Schedule::parse(&json!({"enabled": true, "cron": "0 9 * * *", "tz": "UTC",
            "method": "post", "query": {"a": 1}, "body": {"x": 1}, "retry": true}))
        .unwrap();
        assert!(s.active());
        assert_eq!(s.method, "POST");
        assert_eq!(s.timezone.as_deref(), Some("UTC"));
        assert_eq!(s.body.as_deref(), Some(r#"{"x":1}"#));
        assert_eq!(s.retry.max_attempts, 3);
        assert_eq!(s.trigger(), Some(Trigger::Cron("0 9 * * *".into())));
        // every_seconds wins; not enabled → not active.
        let s = Schedule::parse(&json!({"every_seconds": 2.7, "cron": "bad"})).unwrap();
        assert_eq!(
            (s.trigger(), s.active(), s.invalid.is_none()),
            (Some(Trigger::Every(2)), false, true)
        );
        // A bad cron or zone is kept, with the reason.
        let s = Schedule::parse(&json!({"enabled": true, "cron": "* * *"})).unwrap();
        assert!(
            s.invalid.as_deref().unwrap().starts_with("invalid cron"),
            "{:?}",
            s.invalid
        );
        let s = Schedule::parse(&json!({"enabled": true, "every_seconds": 5, "timezone": "Nowhere/X"})).unwrap();
        assert!(s.invalid.as_deref().unwrap().contains("unknown timezone"));
        assert!(Schedule::parse(&json!({"enabled": true})).unwrap().invalid.is_some());
        // Type errors make the config invalid.
        assert_eq!(
            Schedule::parse(&json!({"every_seconds": "soon"})).unwrap_err().0,
            "schedule.every_seconds"
        );
        assert_eq!(
            Schedule::parse(&json!({"method": "FETCH"})).unwrap_err().0,
            "schedule.method"
        );
    }

    #[test]
    fn retry_clamps_and_backoff() {
        let r = RetryPolicy::parse(
            &json!({"maxAttempts": 50, "delay_seconds": -3, "max_delay_seconds": 9000,
            "jitter": 2}),
        )
        .unwrap();
        assert_eq!(
            (
                r.enabled,
                r.max_attempts,
                r.base_delay_seconds,
                r.max_delay_seconds,
                r.jitter
            ),
            (true, 10, 0.0, 3600.0, 0.5)
        );
        assert!(!RetryPolicy::parse(&json!({"enabled": false})).unwrap().enabled);
        assert!(!RetryPolicy::parse(&json!(false)).unwrap().enabled);
        let r = RetryPolicy::parse(&json!({"base_delay_seconds": 2, "max_delay_seconds": 5, "jitter": 0})).unwrap();
        assert_eq!([1, 2, 3, 4].map(|a| r.delay(a, 0.9)), [2.0, 4.0, 5.0, 5.0]);
        let j = RetryPolicy { jitter: 0.2, ..r };
        assert_eq!((j.delay(1, 0.0), j.delay(1, 0.5), j.delay(1, 1.0)), (1.6, 2.0, 2.4));
        // Which outcomes retry, and the attempt bound.
        assert!([0, 429, 500, 503, 504].iter().all(|s| status_retryable(*s)));
        assert!([200, 204, 400, 404, 405, 413].iter().all(|s| !status_retryable(*s)));
        assert!(r.retries(2, 500) && !r.retries(3, 500) && !RetryPolicy::OFF.retries(1, 500));
    }

    #[test]
    fn keep_warm_block() {
        assert_eq!(KeepWarm::parse(&json!({"enabled": false})).unwrap(), None);
        assert_eq!(KeepWarm::parse(&json!({"enabled": true, "min_warm": 0})).unwrap(), None);
        assert_eq!(
            KeepWarm::parse(&json!({"enabled": true, "ping_every_seconds": 0})).unwrap(),
            Some(KeepWarm {
                enabled: true,
                min_warm: 1,
                ping_every_seconds: 45,
                idle_ttl_seconds: 300
            })
        );
        assert!(KeepWarm::parse(&json!(3)).is_err());
    }
}
