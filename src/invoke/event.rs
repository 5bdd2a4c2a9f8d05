//! The request frame sent to a daemon: `{fn, fn_source_dir, version, entry, handler, adapter,
//! event}` with the full `event` of contract §4. Serialised straight from borrowed request
//! parts: no intermediate JSON tree.

use crate::config::FnPolicy;
use crate::routing::Target;
use hyper::HeaderMap;
use percent_encoding::percent_decode_str;
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use std::borrow::Cow;

/// Everything about one request that goes into the event.
#[derive(Clone, Copy)]
pub struct EventParts<'a> {
    pub request_id: &'a str,
    pub ts: u64,
    pub method: &'a str,
    pub path: &'a str,
    /// Query string without `?`, if any.
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    pub body: Option<&'a [u8]>,
    pub client_ip: &'a str,
    pub params: &'a [(String, String)],
    pub target: &'a Target,
    pub debug: bool,
    pub worker_pid: u32,
    /// `context.user`, from `/_fn/invoke`.
    pub user: Option<&'a serde_json::Value>,
    /// `context.trigger`, on calls the scheduler makes (`{type: "schedule", …}`).
    pub trigger: Option<&'a serde_json::Value>,
    /// `event.secrets`: the function's `is_secret` keys (see [`crate::secrets`]).
    pub secrets: Option<&'a serde_json::Map<String, serde_json::Value>>,
}

#[derive(Serialize)]
struct Frame<'a> {
    #[serde(rename = "fn")]
    fn_name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    fn_source_dir: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<&'a str>,
    entry: &'a str,
    handler: &'a str,
    adapter: crate::config::Adapter,
    /// Present (true) when the handler must run in its runtime's strict sandbox
    /// (`strict_fs`, docs/protocol.md); absent otherwise.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    strict_fs: bool,
    event: Event<'a>,
}

#[derive(Serialize)]
struct Event<'a> {
    id: &'a str,
    ts: u64,
    method: &'a str,
    path: &'a str,
    raw_path: RawPath<'a>,
    query: Query<'a>,
    params: Params<'a>,
    path_params: Params<'a>,
    headers: Headers<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<Cow<'a, str>>,
    /// Only for bodies that are not UTF-8 (then `body` is the lossy text).
    #[serde(skip_serializing_if = "Option::is_none")]
    body_base64: Option<String>,
    session: Option<Session<'a>>,
    client: Client<'a>,
    context: Context<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    secrets: Option<&'a serde_json::Map<String, serde_json::Value>>,
}

struct RawPath<'a>(&'a str, Option<&'a str>);

impl Serialize for RawPath<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.1 {
            Some(q) => s.collect_str(&format_args!("{}?{}", self.0, q)),
            None => s.serialize_str(self.0),
        }
    }
}

/// Query string → object: repeated key → array, key without value → `true`.
struct Query<'a>(Option<&'a str>);

fn decode_component(s: &str) -> Cow<'_, str> {
    if !s.contains(['%', '+']) {
        return Cow::Borrowed(s);
    }
    let spaced = s.replace('+', " ");
    Cow::Owned(percent_decode_str(&spaced).decode_utf8_lossy().into_owned())
}

enum QueryValue<'a> {
    Flag,
    One(Cow<'a, str>),
    Many(Vec<Option<Cow<'a, str>>>),
}

impl Serialize for QueryValue<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            QueryValue::Flag => s.serialize_bool(true),
            QueryValue::One(v) => s.serialize_str(v),
            QueryValue::Many(vs) => {
                let mut seq = s.serialize_seq(Some(vs.len()))?;
                for v in vs {
                    match v {
                        Some(v) => seq.serialize_element(v.as_ref())?,
                        None => seq.serialize_element(&true)?,
                    }
                }
                seq.end()
            }
        }
    }
}

/// Parse a query string into ordered pairs, merging repeated keys.
pub fn parse_query(q: &str) -> Vec<(Cow<'_, str>, QueryValueOut)> {
    let mut out: Vec<(Cow<'_, str>, QueryValueOut)> = Vec::new();
    for part in q.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = match part.split_once('=') {
            Some((k, v)) => (decode_component(k), Some(decode_component(v).into_owned())),
            None => (decode_component(part), None),
        };
        match out.iter_mut().find(|(key, _)| *key == k) {
            Some((_, existing)) => existing.push(v),
            None => out.push((k, QueryValueOut::from(v))),
        }
    }
    out
}

/// A parsed query value (owned; used by tests and `/_fn/invoke`).
#[derive(Debug, Clone, PartialEq)]
pub enum QueryValueOut {
    Flag,
    One(String),
    Many(Vec<Option<String>>),
}

impl QueryValueOut {
    fn from(v: Option<String>) -> Self {
        match v {
            Some(v) => QueryValueOut::One(v),
            None => QueryValueOut::Flag,
        }
    }

    fn push(&mut self, v: Option<String>) {
        let first = match std::mem::replace(self, QueryValueOut::Flag) {
            QueryValueOut::Flag => vec![None],
            QueryValueOut::One(s) => vec![Some(s)],
            QueryValueOut::Many(vs) => vs,
        };
        let mut all = first;
        all.push(v);
        *self = QueryValueOut::Many(all);
    }

    fn as_value(&self) -> QueryValue<'_> {
        match self {
            QueryValueOut::Flag => QueryValue::Flag,
            QueryValueOut::One(s) => QueryValue::One(Cow::Borrowed(s)),
            QueryValueOut::Many(vs) => QueryValue::Many(vs.iter().map(|v| v.as_deref().map(Cow::Borrowed)).collect()),
        }
    }
}

impl Serialize for Query<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let pairs = self.0.map(parse_query).unwrap_or_default();
        let mut map = s.serialize_map(Some(pairs.len()))?;
        for (k, v) in &pairs {
            map.serialize_entry(k.as_ref(), &v.as_value())?;
        }
        map.end()
    }
}

struct Params<'a>(&'a [(String, String)]);

impl Serialize for Params<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// Header names are already lower-case in hyper; repeated headers become arrays.
struct Headers<'a>(&'a HeaderMap);

impl Serialize for Headers<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.keys_len()))?;
        for name in self.0.keys() {
            let mut values = self.0.get_all(name).iter();
            let first = values.next().map(|v| String::from_utf8_lossy(v.as_bytes()));
            match values.next() {
                None => map.serialize_entry(name.as_str(), &first)?,
                Some(second) => {
                    let mut all: Vec<_> = first.into_iter().collect();
                    all.push(String::from_utf8_lossy(second.as_bytes()));
                    all.extend(values.map(|v| String::from_utf8_lossy(v.as_bytes())));
                    map.serialize_entry(name.as_str(), &all)?
                }
            }
        }
        map.end()
    }
}

#[derive(Serialize)]
struct Session<'a> {
    id: Option<&'a str>,
    raw: &'a str,
    cookies: Cookies<'a>,
}

struct Cookies<'a>(&'a str);

fn cookie_pairs(raw: &str) -> impl Iterator<Item = (&str, &str)> {
    raw.split(';').filter_map(|c| {
        let (k, v) = c.trim().split_once('=')?;
        Some((k.trim(), v.trim()))
    })
}

impl Serialize for Cookies<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        for (k, v) in cookie_pairs(self.0) {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

#[derive(Serialize)]
struct Client<'a> {
    ip: &'a str,
    ua: Option<&'a str>,
}

#[derive(Serialize)]
struct Context<'a> {
    request_id: &'a str,
    runtime: crate::runtime::RuntimeKind,
    function_name: &'a str,
    version: &'a str,
    timeout_ms: u64,
    max_concurrency: i64,
    max_body_bytes: u64,
    worker_pool: &'a crate::config::WorkerPoolPolicy,
    gateway: Gateway,
    debug: Debug,
    /// Absent, not `null`, when no caller set it: the original sends no `user` key, and a
    /// handler that copies `context.user` into its reply must answer the same.
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trigger: Option<&'a serde_json::Value>,
}

#[derive(Serialize)]
struct Gateway {
    worker_pid: u32,
}

#[derive(Serialize)]
struct Debug {
    enabled: bool,
}

/// Serialise the request frame payload (without the 4-byte length).
pub fn request_payload(p: &EventParts<'_>) -> Vec<u8> {
    let policy: &FnPolicy = &p.target.policy;
    let cookie = p.headers.get(hyper::header::COOKIE).and_then(|v| v.to_str().ok());
    let session = cookie.map(|raw| Session {
        id: cookie_pairs(raw)
            .find(|(k, _)| matches!(*k, "session_id" | "sessionid" | "sid"))
            .map(|(_, v)| v),
        raw,
        cookies: Cookies(raw),
    });
    let (body, body_base64) = match p.body {
        None => (None, None),
        Some(bytes) => match std::str::from_utf8(bytes) {
            Ok(s) => (Some(Cow::Borrowed(s)), None),
            Err(_) => {
                use base64::Engine as _;
                (
                    Some(String::from_utf8_lossy(bytes)),
                    Some(base64::engine::general_purpose::STANDARD.encode(bytes)),
                )
            }
        },
    };
    let frame = Frame {
        fn_name: &p.target.fn_name,
        fn_source_dir: p.target.fn_source_dir.as_deref(),
        version: p.target.version.as_deref(),
        entry: &p.target.entry,
        handler: &policy.handler,
        adapter: policy.adapter,
        strict_fs: policy.strict_fs,
        event: Event {
            id: p.request_id,
            ts: p.ts,
            method: p.method,
            path: p.path,
            raw_path: RawPath(p.path, p.query),
            query: Query(p.query),
            params: Params(p.params),
            path_params: Params(p.params),
            headers: Headers(p.headers),
            body,
            body_base64,
            session,
            client: Client {
                ip: p.client_ip,
                ua: p.headers.get(hyper::header::USER_AGENT).and_then(|v| v.to_str().ok()),
            },
            context: Context {
                request_id: p.request_id,
                runtime: p.target.runtime,
                function_name: &p.target.fn_name,
                version: p.target.version.as_deref().unwrap_or("default"),
                timeout_ms: policy.timeout_ms,
                max_concurrency: policy.max_concurrency,
                max_body_bytes: policy.max_body_bytes,
                worker_pool: &policy.worker_pool,
                gateway: Gateway {
                    worker_pid: p.worker_pid,
                },
                debug: Debug { enabled: p.debug },
                user: p.user,
                trigger: p.trigger,
            },
            secrets: p.secrets,
        },
    };
    // Serialising plain structs into a Vec cannot fail.
    serde_json::to_vec(&frame).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::Target;
    use crate::runtime::RuntimeKind;
    use serde_json::{json, Value};

    fn target() -> Target {
        Target {
            runtime: RuntimeKind::Python,
            fn_name: "users/[id].py".into(),
            fn_source_dir: None,
            version: None,
            entry: "users/[id].py".into(),
            policy: FnPolicy::default(),
            explicit: false,
        }
    }

    #[test]
    fn event_has_every_contract_field() {
        let mut headers = HeaderMap::new();
        headers.insert("x-one", "1".parse().unwrap());
        headers.append("x-many", "a".parse().unwrap());
        headers.append("x-many", "b".parse().unwrap());
        headers.insert("cookie", "theme=dark; sid=abc".parse().unwrap());
        headers.insert("user-agent", "curl/8".parse().unwrap());
        let params = vec![("id".to_string(), "42".to_string())];
        let t = target();
        let payload = request_payload(&EventParts {
            request_id: "req-1-2-000003",
            ts: 1,
            method: "POST",
            path: "/users/42",
            query: Some("a=1&a=2&flag&q=hello+world%21"),
            headers: &headers,
            body: Some(b"{\"x\":1}"),
            client_ip: "127.0.0.1",
            params: &params,
            target: &t,
            debug: true,
            worker_pid: 99,
            secrets: None,
            user: None,
            trigger: None,
        });
        let v: Value = serde_json::from_slice(&payload).unwrap();
        assert_eq!(v["fn"], "users/[id].py");
        assert!(v.get("fn_source_dir").is_none());
        assert_eq!(v["entry"], "users/[id].py");
        assert_eq!(v["handler"], "handler");
        assert_eq!(v["adapter"], "native");
        let e = &v["event"];
        assert_eq!(e["raw_path"], "/users/42?a=1&a=2&flag&q=hello+world%21");
        assert_eq!(e["query"], json!({"a": ["1", "2"], "flag": true, "q": "hello world!"}));
        assert_eq!(e["params"], json!({"id": "42"}));
        assert_eq!(e["path_params"], e["params"]);
        assert_eq!(e["headers"]["x-many"], json!(["a", "b"]));
        assert_eq!(e["headers"]["x-one"], "1");
        assert_eq!(e["body"], "{\"x\":1}");
        assert_eq!(
            e["session"],
            json!({"id": "abc", "raw": "theme=dark; sid=abc", "cookies": {"theme": "dark", "sid": "abc"}})
        );
        assert_eq!(e["client"], json!({"ip": "127.0.0.1", "ua": "curl/8"}));
        let c = &e["context"];
        assert_eq!(c["request_id"], "req-1-2-000003");
        assert_eq!(c["runtime"], "python");
        assert_eq!(c["version"], "default");
        assert_eq!(c["timeout_ms"], 2500);
        assert_eq!(c["max_concurrency"], 20);
        assert_eq!(c["max_body_bytes"], 1048576);
        assert_eq!(c["worker_pool"]["max_workers"], 20);
        assert_eq!(c["gateway"], json!({"worker_pid": 99}));
        assert_eq!(c["debug"], json!({"enabled": true}));
        assert!(c.get("user").is_none(), "no user key without a caller's user: {c}");
    }

    #[test]
    fn no_body_no_cookie_no_query() {
        let headers = HeaderMap::new();
        let t = target();
        let payload = request_payload(&EventParts {
            request_id: "r",
            ts: 1,
            method: "GET",
            path: "/x",
            query: None,
            headers: &headers,
            body: None,
            client_ip: "127.0.0.1",
            params: &[],
            target: &t,
            debug: false,
            worker_pid: 1,
            user: None,
            trigger: None,
            secrets: None,
        });
        let v: Value = serde_json::from_slice(&payload).unwrap();
        let e = &v["event"];
        assert!(e.get("body").is_none(), "body is absent without a request body");
        assert_eq!(e["session"], Value::Null);
        assert_eq!(e["query"], json!({}));
        assert_eq!(e["params"], json!({}));
        assert_eq!(e["raw_path"], "/x");
    }
}
