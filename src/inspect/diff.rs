//! Pure: the difference between two answers to (about) the same request — status, headers,
//! body (JSON-aware: each changed path), and each stage of the waterfall. Used by replay (the
//! captured answer against the new one) and by saved tests.

use crate::events::Stages;
use serde::Serialize;
use serde_json::Value;

/// Headers that differ on every answer and say nothing about the code's behaviour.
const VOLATILE: [&str; 8] = [
    "date",
    "content-length",
    "x-fn-request-id",
    "x-fn-latency-ms",
    "server-timing",
    "x-fastfn-function-state",
    "x-fastfn-warmed",
    "x-fn-runtime-socket-index",
];

/// One side of a comparison.
#[derive(Debug, Clone, Default)]
pub struct Answer<'a> {
    pub status: u16,
    pub headers: &'a [(String, String)],
    /// `None`: not captured.
    pub body: Option<&'a [u8]>,
    pub stages: Stages,
    pub latency_us: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
#[ts(export)]
pub struct HeaderChange {
    pub name: String,
    #[ts(optional)]
    pub before: Option<String>,
    #[ts(optional)]
    pub after: Option<String>,
}

/// A changed JSON path (`$.user.name`, `$.items[2]`); a side is absent when the path is.
#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
#[ts(export)]
pub struct JsonChange {
    pub path: String,
    #[ts(optional, type = "unknown")]
    pub before: Option<Value>,
    #[ts(optional, type = "unknown")]
    pub after: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
#[ts(export)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BodyDiff {
    Same,
    /// Both bodies are JSON: the paths that differ.
    Json {
        changes: Vec<JsonChange>,
    },
    /// Text (or bytes) that differ.
    Text {
        before: String,
        after: String,
    },
    /// The captured answer has no body to compare (capture was off).
    NotCaptured,
}

#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
#[ts(export)]
pub struct StageChange {
    pub stage: String,
    #[ts(type = "number")]
    pub before_us: u64,
    #[ts(type = "number")]
    pub after_us: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
#[ts(export, rename = "RequestDiff")]
pub struct Diff {
    /// Status, headers and body are the same (stages always differ a little).
    pub same: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub status: Option<[u16; 2]>,
    pub headers: Vec<HeaderChange>,
    pub body: BodyDiff,
    /// Every stage, before and after.
    pub stages: Vec<StageChange>,
    #[ts(type = "[number, number]")]
    pub latency_us: [u64; 2],
}

/// The stages by name, in waterfall order.
pub fn stage_list(s: &Stages) -> [(&'static str, u64); 13] {
    [
        ("route", s.route_us),
        ("deps", s.deps_us),
        ("admission", s.admission_us),
        ("queue", s.queue_us),
        ("body", s.body_us),
        ("connect", s.connect_us),
        ("build", s.build_us),
        ("cold", s.cold_us),
        ("runtime", s.runtime_us),
        ("handler", s.handler_us),
        ("reply", s.reply_us),
        ("respond", s.respond_us),
        ("total", 0),
    ]
}

pub fn diff(before: &Answer<'_>, after: &Answer<'_>) -> Diff {
    let status = (before.status != after.status).then_some([before.status, after.status]);
    let headers = header_changes(before.headers, after.headers);
    let body = match (before.body, after.body) {
        (Some(a), Some(b)) => body_diff(a, b),
        _ => BodyDiff::NotCaptured,
    };
    let stages = stage_list(&before.stages)
        .iter()
        .zip(stage_list(&after.stages).iter())
        .filter(|((name, _), _)| *name != "total")
        .map(|((name, a), (_, b))| StageChange {
            stage: name.to_string(),
            before_us: *a,
            after_us: *b,
        })
        .collect();
    Diff {
        same: status.is_none() && headers.is_empty() && body == BodyDiff::Same,
        status,
        headers,
        body,
        stages,
        latency_us: [before.latency_us, after.latency_us],
    }
}

fn header_changes(a: &[(String, String)], b: &[(String, String)]) -> Vec<HeaderChange> {
    let norm = |h: &[(String, String)]| {
        let mut m: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for (k, v) in h {
            let k = k.to_ascii_lowercase();
            if !VOLATILE.contains(&k.as_str()) {
                m.entry(k).or_default().push(v.clone());
            }
        }
        m
    };
    let (a, b) = (norm(a), norm(b));
    let mut names: Vec<&String> = a.keys().chain(b.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter(|n| a.get(*n) != b.get(*n))
        .map(|n| HeaderChange {
            name: n.clone(),
            before: a.get(n).map(|v| v.join(", ")),
            after: b.get(n).map(|v| v.join(", ")),
        })
        .collect()
}

fn body_diff(a: &[u8], b: &[u8]) -> BodyDiff {
    if a == b {
        return BodyDiff::Same;
    }
    match (serde_json::from_slice::<Value>(a), serde_json::from_slice::<Value>(b)) {
        (Ok(x), Ok(y)) => {
            let mut changes = Vec::new();
            json_changes("$", &x, &y, &mut changes);
            if changes.is_empty() {
                // Same JSON, other formatting.
                BodyDiff::Same
            } else {
                BodyDiff::Json { changes }
            }
        }
        _ => BodyDiff::Text {
            before: String::from_utf8_lossy(a).into_owned(),
            after: String::from_utf8_lossy(b).into_owned(),
        },
    }
}

/// Every path where `a` and `b` differ (objects by key, arrays by index; other values whole).
pub fn json_changes(path: &str, a: &Value, b: &Value, out: &mut Vec<JsonChange>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, va) in x {
                let p = format!("{path}.{k}");
                match y.get(k) {
                    Some(vb) => json_changes(&p, va, vb, out),
                    None => out.push(JsonChange {
                        path: p,
                        before: Some(va.clone()),
                        after: None,
                    }),
                }
            }
            for (k, vb) in y {
                if !x.contains_key(k) {
                    out.push(JsonChange {
                        path: format!("{path}.{k}"),
                        before: None,
                        after: Some(vb.clone()),
                    });
                }
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            for i in 0..x.len().max(y.len()) {
                let p = format!("{path}[{i}]");
                match (x.get(i), y.get(i)) {
                    (Some(va), Some(vb)) => json_changes(&p, va, vb, out),
                    (va, vb) => out.push(JsonChange {
                        path: p,
                        before: va.cloned(),
                        after: vb.cloned(),
                    }),
                }
            }
        }
        _ if a != b => out.push(JsonChange {
            path: path.to_string(),
            before: Some(a.clone()),
            after: Some(b.clone()),
        }),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn json_bodies_differ_by_path() {
        let a = br#"{"user":{"name":"ada","tags":["x","y"]},"n":1,"gone":true}"#;
        let b = br#"{"n": 1, "user":{"name":"bob","tags":["x"]},"new":null}"#;
        let BodyDiff::Json { changes } = body_diff(a, b) else {
            panic!("json expected")
        };
        let paths: Vec<&str> = changes.iter().map(|c| c.path.as_str()).collect();
        // Keys in serde_json's (sorted) order; removed keys before added ones.
        assert_eq!(paths, vec!["$.gone", "$.user.name", "$.user.tags[1]", "$.new"]);
        assert_eq!(changes[1].before, Some(json!("ada")));
        assert_eq!(changes[1].after, Some(json!("bob")));
        assert_eq!(changes[2].after, None);
        assert_eq!(changes[3].before, None);
        assert_eq!(changes[0].after, None);
        assert_eq!(body_diff(br#"{"a":1}"#, br#"{ "a" : 1 }"#), BodyDiff::Same);
        assert!(matches!(body_diff(b"hi", b"ho"), BodyDiff::Text { .. }));
    }

    #[test]
    fn volatile_headers_are_ignored_and_stages_are_listed() {
        let a = h(&[("date", "1"), ("x-a", "1"), ("content-type", "text/plain")]);
        let b = h(&[
            ("date", "2"),
            ("x-a", "2"),
            ("x-new", "y"),
            ("content-type", "text/plain"),
        ]);
        let before = Answer {
            status: 200,
            headers: &a,
            body: Some(b"same"),
            ..Answer::default()
        };
        let after = Answer {
            status: 201,
            headers: &b,
            body: Some(b"same"),
            stages: Stages {
                runtime_us: 5,
                ..Stages::default()
            },
            ..Answer::default()
        };
        let d = diff(&before, &after);
        assert!(!d.same);
        assert_eq!(d.status, Some([200, 201]));
        let names: Vec<&str> = d.headers.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, vec!["x-a", "x-new"]);
        assert_eq!(d.body, BodyDiff::Same);
        assert_eq!(d.stages.len(), 12);
        assert!(d.stages.iter().any(|s| s.stage == "runtime" && s.after_us == 5));
        let same = diff(&before, &before);
        assert!(same.same && same.headers.is_empty());
        let uncaptured = diff(
            &Answer {
                body: None,
                ..before.clone()
            },
            &before,
        );
        assert_eq!(uncaptured.body, BodyDiff::NotCaptured);
    }
}
