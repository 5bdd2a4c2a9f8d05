//! Pure: a recorded request as a curl command line and as HAR 1.2 (one entry or the log).
//! Secrets are masked unless revealed (see `secrets`).

use super::secrets::{mask_body, mask_headers};
use super::Entry;
use serde_json::{json, Value};

/// Headers a client sets itself; left out of curl lines and replays.
pub fn is_hop_header(name: &str) -> bool {
    matches!(
        name.to_ascii_lowercase().as_str(),
        "host" | "content-length" | "connection" | "transfer-encoding" | "keep-alive" | "upgrade" | "te"
    ) || name.eq_ignore_ascii_case(super::REPLAY_HEADER)
}

/// POSIX shell single quotes.
fn sh(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// `curl -X POST 'http://127.0.0.1:8080/x?a=1' -H 'k: v' --data-binary '…'`.
pub fn curl(e: &Entry, base: &str, reveal: bool) -> String {
    let mut out = String::from("curl");
    if e.method != hyper::Method::GET {
        out.push_str(&format!(" -X {}", e.method));
    }
    let target = e.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    out.push_str(&format!(" {}", sh(&format!("{base}{target}"))));
    if let Some(c) = &e.captured {
        for (k, v) in mask_headers(&c.request_pairs(), reveal) {
            if !is_hop_header(&k) {
                out.push_str(&format!(" -H {}", sh(&format!("{k}: {v}"))));
            }
        }
        if !c.request_body.is_empty() {
            let body = mask_body(&String::from_utf8_lossy(&c.request_body), reveal);
            out.push_str(&format!(" --data-binary {}", sh(&body)));
        }
    }
    out
}

fn har_headers(h: &[(String, String)]) -> Value {
    Value::Array(h.iter().map(|(k, v)| json!({"name": k, "value": v})).collect())
}

/// One HAR entry.
pub fn har_entry(e: &Entry, base: &str, reveal: bool) -> Value {
    let empty = Vec::new();
    let (req_h, resp_h) = match &e.captured {
        Some(c) => (
            mask_headers(&c.request_pairs(), reveal),
            mask_headers(&c.response_pairs(), reveal),
        ),
        None => (empty.clone(), empty),
    };
    let header = |h: &[(String, String)], name: &str| {
        h.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let query: Vec<Value> = e
        .uri
        .query()
        .map(|q| {
            q.split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    json!({"name": k, "value": v})
                })
                .collect()
        })
        .unwrap_or_default();
    let target = e.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let ms = |us: u64| us as f64 / 1000.0;
    let s = &e.note.stages;
    let mut request = json!({
        "method": e.method.as_str(),
        "url": format!("{base}{target}"),
        "httpVersion": "HTTP/1.1",
        "cookies": [],
        "headers": har_headers(&req_h),
        "queryString": query,
        "headersSize": -1,
        "bodySize": e.captured.as_ref().map_or(-1, |c| c.request_body.len() as i64),
    });
    if let Some(c) = e.captured.as_ref().filter(|c| !c.request_body.is_empty()) {
        request["postData"] = json!({
            "mimeType": header(&req_h, "content-type").unwrap_or_default(),
            "text": mask_body(&String::from_utf8_lossy(&c.request_body), reveal),
        });
    }
    let content_text = e
        .captured
        .as_ref()
        .map(|c| mask_body(&String::from_utf8_lossy(&c.response_body), reveal));
    let record = e.record(None, reveal).summary;
    json!({
        "startedDateTime": super::super::logs::rfc3339(e.ts / 1000).replace('Z', &format!(".{:03}Z", e.ts % 1000)),
        "time": ms(e.latency_us),
        "request": request,
        "response": {
            "status": e.status,
            "statusText": hyper::StatusCode::from_u16(e.status).ok().and_then(|s| s.canonical_reason()).unwrap_or(""),
            "httpVersion": "HTTP/1.1",
            "cookies": [],
            "headers": har_headers(&resp_h),
            "content": {
                "size": e.captured.as_ref().map_or(0, |c| c.response_body.len()),
                "mimeType": header(&resp_h, "content-type").unwrap_or_default(),
                "text": content_text.unwrap_or_default(),
            },
            "redirectURL": header(&resp_h, "location").unwrap_or_default(),
            "headersSize": -1,
            "bodySize": e.captured.as_ref().map_or(-1, |c| c.response_body.len() as i64),
        },
        "cache": {},
        "timings": {
            "blocked": ms(s.route_us + s.deps_us + s.admission_us + s.queue_us),
            "connect": ms(s.connect_us),
            "send": ms(s.body_us),
            "wait": ms(s.build_us + s.cold_us + s.runtime_us + s.handler_us),
            "receive": ms(s.reply_us + s.respond_us),
        },
        "_fastfn": {
            "id": record.id,
            "reason": record.reason,
            "why": record.why,
            "function": record.function,
            "runtime": record.runtime,
            "stages": record.stages,
        },
    })
}

/// A HAR 1.2 log of these entries.
pub fn har(entries: &[&Entry], base: &str, reveal: bool) -> Value {
    json!({
        "log": {
            "version": "1.2",
            "creator": {"name": "fastfn", "version": env!("CARGO_PKG_VERSION")},
            "entries": entries.iter().map(|e| har_entry(e, base, reveal)).collect::<Vec<_>>(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::super::{Captured, Kind, Note};
    use super::*;
    use bytes::Bytes;

    fn headers(pairs: &[(&'static str, &'static str)]) -> super::super::HeaderText {
        let map: hyper::HeaderMap = pairs
            .iter()
            .map(|(k, v)| {
                (
                    hyper::header::HeaderName::from_static(k),
                    hyper::header::HeaderValue::from_static(v),
                )
            })
            .collect();
        super::super::HeaderText::of(&map)
    }

    fn entry() -> Entry {
        Entry {
            seq: 7,
            ts: 1_796_121_605_123,
            method: hyper::Method::POST,
            uri: "/echo?a=1&b=it's".parse().unwrap(),
            status: 201,
            latency_us: 1500,
            note: Note {
                kind: Kind::Function,
                ..Note::default()
            },
            captured: Some(Box::new(Captured {
                request_headers: headers(&[
                    ("host", "x"),
                    ("authorization", "Bearer s3cret"),
                    ("content-type", "application/json"),
                ]),
                request_body: Bytes::from_static(br#"{"password":"pw","q":"it's"}"#),
                response_headers: headers(&[("content-type", "application/json")]),
                response_body: Bytes::from_static(br#"{"ok":true}"#),
                ..Captured::default()
            })),
        }
    }

    #[test]
    fn curl_quotes_for_the_shell_and_masks() {
        let c = curl(&entry(), "http://127.0.0.1:8080", false);
        assert!(
            c.starts_with("curl -X POST 'http://127.0.0.1:8080/echo?a=1&b=it'\\''s'"),
            "{c}"
        );
        assert!(c.contains("-H 'authorization: Bearer ••••••'"), "{c}");
        assert!(!c.contains("host:"), "{c}");
        assert!(
            c.contains(r#"--data-binary '{"password":"••••••","q":"it'\''s"}'"#),
            "{c}"
        );
        assert!(curl(&entry(), "http://h", true).contains("s3cret"));
    }

    #[test]
    fn har_has_the_spec_fields() {
        let e = entry();
        let h = har(&[&e], "http://h", false);
        let x = &h["log"]["entries"][0];
        assert_eq!(h["log"]["version"], "1.2");
        assert_eq!(x["request"]["method"], "POST");
        assert_eq!(x["request"]["url"], "http://h/echo?a=1&b=it's");
        assert_eq!(x["request"]["queryString"][0], json!({"name": "a", "value": "1"}));
        assert_eq!(x["request"]["postData"]["mimeType"], "application/json");
        assert!(x["request"]["postData"]["text"].as_str().unwrap().contains("••••••"));
        assert_eq!(x["response"]["status"], 201);
        assert_eq!(x["response"]["statusText"], "Created");
        assert_eq!(x["response"]["content"]["text"], r#"{"ok":true}"#);
        assert_eq!(x["startedDateTime"], "2026-12-01T10:40:05.123Z");
        assert_eq!(x["time"], 1.5);
    }
}
