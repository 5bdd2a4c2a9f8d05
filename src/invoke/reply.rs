//! Reply frames from daemons: validation (contract §4) and the pieces of the HTTP response.

use crate::rescue::Failure;
use base64::Engine as _;
use bytes::Bytes;
use hyper::header::{HeaderName, HeaderValue};
use serde::Deserialize;
use serde_json::Value;

use crate::config::defaults::{MAX_REPLY_HEADERS, MAX_REPLY_HEADER_BYTES};

/// A validated reply.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Bytes,
    pub stdout: Option<String>,
    pub stderr: Option<String>,
    /// The handler's `proxy` directive (an object), carried out by [`crate::proxy::forward`].
    pub proxy: Option<Value>,
    /// The call's time inside the daemon, as it reports it (`handler_us`, ours: our daemons
    /// send it on v2; others do not).
    pub handler_us: Option<u64>,
    /// The part of `handler_us` a cold call spent loading its handler (`load_us`, ours: the
    /// python and node daemons time the import, php the worker's start and its include).
    pub load_us: Option<u64>,
}

#[derive(Deserialize)]
struct Raw {
    status: Option<Value>,
    headers: Option<Value>,
    body: Option<Value>,
    is_base64: Option<Value>,
    body_base64: Option<Value>,
    stdout: Option<Value>,
    stderr: Option<Value>,
    proxy: Option<Value>,
    handler_us: Option<Value>,
    load_us: Option<Value>,
}

/// Headers the gateway owns: a daemon cannot set them.
fn hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "content-length" | "transfer-encoding" | "connection" | "keep-alive" | "upgrade" | "te" | "trailer"
    )
}

fn text(v: Option<Value>) -> Option<String> {
    match v {
        Some(Value::String(s)) if !s.is_empty() => Some(s),
        _ => None,
    }
}

/// A v1 reply frame: the reply object with its body inside.
pub fn parse(payload: &[u8]) -> Result<Reply, Failure> {
    parse_frame(payload, Bytes::new())
}

/// A reply object, and the raw body a v2 daemon sent apart from it (empty: the body is in
/// the object, as in v1).
pub fn parse_frame(payload: &[u8], raw_body: Bytes) -> Result<Reply, Failure> {
    let raw: Raw = serde_json::from_slice(payload).map_err(|_| Failure::InvalidReply)?;
    // 1xx are not final statuses: sent as one, the client would wait for another response
    // (or take a 101 as a protocol switch) and the connection would lose its framing.
    let status = match raw.status {
        Some(Value::Number(n)) => n
            .as_u64()
            .filter(|s| (200..=599).contains(s))
            .ok_or(Failure::InvalidReply)? as u16,
        _ => return Err(Failure::InvalidReply),
    };
    let mut headers = Vec::new();
    let mut header_bytes = 0usize;
    match raw.headers {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (k, v) in map {
                // Invalid names or values are dropped rather than failing the whole reply.
                let Ok(name) = HeaderName::from_bytes(k.as_bytes()) else {
                    continue;
                };
                if hop_by_hop(&name) {
                    continue;
                }
                let values = match v {
                    Value::Array(items) => items,
                    other => vec![other],
                };
                for item in values {
                    let s = match item {
                        Value::String(s) => s,
                        Value::Number(n) => n.to_string(),
                        Value::Bool(b) => b.to_string(),
                        _ => continue,
                    };
                    if let Ok(value) = HeaderValue::from_str(&s) {
                        // Bounded: a `HeaderMap` panics past 32,768 entries, and a client
                        // should never get megabytes of headers.
                        header_bytes += name.as_str().len() + value.len();
                        if headers.len() >= MAX_REPLY_HEADERS || header_bytes > MAX_REPLY_HEADER_BYTES {
                            return Err(Failure::InvalidReply);
                        }
                        headers.push((name.clone(), value));
                    }
                }
            }
        }
        Some(_) => return Err(Failure::InvalidReply),
    }
    let is_base64 = matches!(raw.is_base64, Some(Value::Bool(true)));
    let body = if !raw_body.is_empty() {
        raw_body
    } else if is_base64 {
        match raw.body_base64 {
            Some(Value::String(b64)) => Bytes::from(
                base64::engine::general_purpose::STANDARD
                    .decode(b64.trim())
                    .map_err(|_| Failure::InvalidBase64)?,
            ),
            _ => return Err(Failure::InvalidBase64),
        }
    } else {
        match raw.body {
            None | Some(Value::Null) => Bytes::new(),
            Some(Value::String(s)) => Bytes::from(s),
            Some(_) => return Err(Failure::InvalidReply),
        }
    };
    Ok(Reply {
        status,
        headers,
        body,
        stdout: text(raw.stdout),
        stderr: text(raw.stderr),
        // Only an object is a directive, as in the original (`type(resp.proxy) == "table"`).
        proxy: raw.proxy.filter(Value::is_object),
        handler_us: raw.handler_us.as_ref().and_then(Value::as_u64),
        load_us: raw.load_us.as_ref().and_then(Value::as_u64),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_replies() {
        let r = parse(br#"{"status":201,"headers":{"X-A":"1","Set-Cookie":["a=1","b=2"],"Content-Length":"99"},"body":"hi","stdout":"out"}"#).unwrap();
        assert_eq!(r.status, 201);
        assert_eq!(r.body, "hi");
        assert_eq!(r.stdout.as_deref(), Some("out"));
        let mut names: Vec<_> = r
            .headers
            .iter()
            .map(|(n, v)| format!("{n}={}", v.to_str().unwrap()))
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["set-cookie=a=1", "set-cookie=b=2", "x-a=1"],
            "content-length is the gateway's"
        );
        let r = parse(br#"{"status":200,"headers":{},"is_base64":true,"body_base64":"AAEC/w=="}"#).unwrap();
        assert_eq!(&r.body[..], &[0, 1, 2, 255]);
        let r = parse(br#"{"status":204}"#).unwrap();
        assert!(r.body.is_empty() && r.headers.is_empty());
    }

    #[test]
    fn raw_bodies_win_and_header_floods_are_refused() {
        let r = parse_frame(br#"{"status":200,"body":"ignored"}"#, Bytes::from_static(&[0, 255])).unwrap();
        assert_eq!(&r.body[..], &[0, 255]);
        let many: serde_json::Map<String, Value> = (0..MAX_REPLY_HEADERS + 1)
            .map(|i| (format!("x-h{i}"), Value::from("v")))
            .collect();
        let flood = serde_json::json!({"status": 200, "headers": many}).to_string();
        assert_eq!(parse(flood.as_bytes()).unwrap_err(), Failure::InvalidReply);
        let big = serde_json::json!({"status": 200, "headers": {"x-big": "a".repeat(MAX_REPLY_HEADER_BYTES)}});
        assert_eq!(parse(big.to_string().as_bytes()).unwrap_err(), Failure::InvalidReply);
        let fine: serde_json::Map<String, Value> = (0..MAX_REPLY_HEADERS)
            .map(|i| (format!("x-h{i}"), Value::from("v")))
            .collect();
        let ok = serde_json::json!({"status": 200, "headers": fine}).to_string();
        assert_eq!(parse(ok.as_bytes()).unwrap().headers.len(), MAX_REPLY_HEADERS);
    }

    #[test]
    fn invalid_replies_map_to_the_contract_errors() {
        let cases: [(&[u8], Failure); 10] = [
            (br#"{"status":100,"body":""}"#, Failure::InvalidReply),
            (br#"{"status":101,"body":""}"#, Failure::InvalidReply),
            (b"garbage", Failure::InvalidReply),
            (br#"{"status":"200","body":""}"#, Failure::InvalidReply),
            (br#"{"status":99,"body":""}"#, Failure::InvalidReply),
            (br#"{"status":600,"body":""}"#, Failure::InvalidReply),
            (br#"{"status":200,"headers":[],"body":""}"#, Failure::InvalidReply),
            (br#"{"status":200,"body":{"a":1}}"#, Failure::InvalidReply),
            (
                br#"{"status":200,"is_base64":true,"body_base64":"!!"}"#,
                Failure::InvalidBase64,
            ),
            (br#"{"body":""}"#, Failure::InvalidReply),
        ];
        for (payload, want) in cases {
            assert_eq!(
                parse(payload).unwrap_err(),
                want,
                "{}",
                String::from_utf8_lossy(payload)
            );
        }
    }
}
