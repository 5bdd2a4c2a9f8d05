//! The edge proxy: a handler reply with `proxy` is forwarded upstream by the engine and the
//! upstream's answer becomes the response (FastFN's "Edge passthrough", `http/gateway.lua`
//! `execute_proxy`). Only functions whose `fn.config.json` has an `edge` block may proxy.
//!
//! Invariants:
//! - The target is `proxy.url` (absolute `http://`) or `edge.base_url` + `proxy.path`; never
//!   `/_fn/*` or `/console/*`, never a path with `..`.
//! - Private addresses (loopback, RFC 1918, link-local, unique-local, CGNAT, unspecified, and
//!   their IPv4-mapped forms) are refused unless `edge.allow_private`. The decision is made on
//!   the addresses the name resolves to, and the connection goes to a vetted address, so a
//!   public name that resolves to a private address is refused too (the original looks at the
//!   name's text only).
//! - `edge.allow_hosts`, when set, names the only hosts (`host` or `host:port`) allowed.
//! - The whole exchange is bounded by `proxy.timeout_ms` (else the function's `timeout_ms`),
//!   and the upstream body by `proxy.max_response_bytes`, else `edge.max_response_bytes`, else
//!   2 MiB; hop-by-hop headers are dropped both ways.
//! - Every failure answers 502 with the original's body: `{"error":"edge proxy failed: …"}`
//!   (`edge proxy disabled for this function` without an `edge` block).
//!
//! Ordinary replies never reach this module: the invoke pipeline checks one `Option`.

use crate::config::FnPolicy;
use crate::invoke::reply::Reply;
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{HeaderName, HeaderValue};
use serde::Serialize;
use serde_json::Value;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// Upstream body bound when neither the reply nor the config sets one (the original's).
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 2 * 1024 * 1024;

/// `edge` of `fn.config.json`. Present (with at least one field set) = the function may proxy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EdgePolicy {
    /// Base of relative `proxy.path` targets, without a trailing `/`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// Hosts (`host` or `host:port`) a proxy may reach; empty = any public host.
    pub allow_hosts: Vec<String>,
    /// Allow loopback, private and link-local addresses.
    pub allow_private: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_response_bytes: Option<u64>,
}

/// Why a proxy directive could not be carried out. The message is the response body's
/// `error`, worded as the original's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    #[error("edge proxy disabled for this function")]
    Disabled,
    #[error("edge proxy failed: {0}")]
    Invalid(&'static str),
    #[error("edge proxy failed: proxy denied: {0}")]
    Denied(&'static str),
    #[error("edge proxy failed: proxy request failed: {0}")]
    Request(String),
}

/// A proxy directive, checked: where, how, what.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Plan {
    host: String,
    /// `host[:port]` as written (the `Host` header and the allow-list's second form).
    authority: String,
    port: u16,
    /// Path and query.
    path: String,
    method: hyper::Method,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Bytes,
    timeout: Duration,
    max_bytes: u64,
}

/// Headers that belong to one connection, never forwarded (RFC 9110 §7.6.1), plus the ones the
/// proxy sets itself.
fn hop_by_hop(name: &str) -> bool {
    matches!(
        name,
        "connection"
            | "keep-alive"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "proxy-connection"
            | "te"
            | "trailer"
            | "trailers"
            | "transfer-encoding"
            | "upgrade"
            | "content-length"
            | "host"
    )
}

fn control_plane(path: &str) -> bool {
    ["/_fn", "/console"].iter().any(|prefix| {
        path.strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(['/', '?', '#']))
    })
}

/// Loopback, private, link-local, unique-local, CGNAT, unspecified (and IPv4-mapped forms).
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || (a == 100 && (64..128).contains(&b))
                || a == 0
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback() || v6.is_unspecified() || (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80
        }
    }
}

fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// Check a directive against the function's `edge` block (pure: no I/O).
fn plan(
    proxy: &Value,
    edge: &EdgePolicy,
    inbound_method: &hyper::Method,
    default_timeout_ms: u64,
) -> Result<Plan, ProxyError> {
    let Value::Object(p) = proxy else {
        return Err(ProxyError::Invalid("proxy must be an object"));
    };
    let url = text(p.get("url"));
    let absolute = url.as_deref().filter(|u| {
        let lower = u.to_ascii_lowercase();
        lower.starts_with("http://") || lower.starts_with("https://")
    });
    let full = match absolute {
        Some(u) => u.to_string(),
        None => {
            let path = match url.as_deref().filter(|u| u.starts_with('/')) {
                Some(u) => Some(u.to_string()),
                None => text(p.get("path")),
            };
            let path = path.filter(|p| p.starts_with('/')).ok_or(ProxyError::Invalid(
                "proxy.url must be absolute (http/https) or proxy.path must start with /",
            ))?;
            if path.contains("..") {
                return Err(ProxyError::Invalid("proxy.path may not include .."));
            }
            let base = edge
                .base_url
                .as_deref()
                .filter(|b| !b.is_empty())
                .ok_or(ProxyError::Invalid(
                    "edge.base_url is required for relative proxy paths",
                ))?;
            format!("{}{path}", base.trim_end_matches('/'))
        }
    };
    let (scheme, rest) = full.split_once("://").ok_or(ProxyError::Denied("invalid url"))?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return Err(ProxyError::Denied("invalid scheme"));
    }
    let (authority, path) = match rest.find(['/', '?', '#']) {
        Some(i) if rest[i..].starts_with('/') => (&rest[..i], rest[i..].to_string()),
        Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
        None => (rest, "/".to_string()),
    };
    let path = path.split('#').next().unwrap_or("/").to_string();
    if authority.is_empty() || authority.contains('@') {
        return Err(ProxyError::Denied("invalid url"));
    }
    let (host, port) = split_authority(authority).ok_or(ProxyError::Denied("invalid url"))?;
    if control_plane(path.split('?').next().unwrap_or("")) {
        return Err(ProxyError::Denied("control-plane path not allowed"));
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        if !edge.allow_private && is_private(ip) {
            return Err(ProxyError::Denied("private host not allowed"));
        }
    } else if !edge.allow_private && (host.eq_ignore_ascii_case("localhost") || host.ends_with(".localhost")) {
        return Err(ProxyError::Denied("private host not allowed"));
    }
    if !edge.allow_hosts.is_empty()
        && !edge
            .allow_hosts
            .iter()
            .any(|h| h.eq_ignore_ascii_case(&host) || h.eq_ignore_ascii_case(authority))
    {
        return Err(ProxyError::Denied("host not in allowlist"));
    }
    if scheme == "https" {
        // No TLS client in this build (docs/compat.md "Edge proxy").
        return Err(ProxyError::Request(
            "https upstreams are not supported by this build".into(),
        ));
    }
    let method = match text(p.get("method")) {
        Some(m) => m.to_ascii_uppercase(),
        None => inbound_method.as_str().to_string(),
    };
    if !matches!(
        method.as_str(),
        "GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD" | "OPTIONS"
    ) {
        return Err(ProxyError::Invalid("invalid proxy method"));
    }
    let method: hyper::Method = method
        .parse()
        .map_err(|_| ProxyError::Invalid("invalid proxy method"))?;
    let mut headers = Vec::new();
    if let Some(Value::Object(h)) = p.get("headers") {
        for (k, v) in h {
            // The original's rule: plain token names, values without line breaks.
            if k.is_empty() || !k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                continue;
            }
            let lower = k.to_ascii_lowercase();
            if hop_by_hop(&lower) {
                continue;
            }
            let value = text(Some(v)).unwrap_or_default();
            if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(lower.as_bytes()), HeaderValue::from_str(&value)) {
                headers.push((name, value));
            }
        }
    }
    let body = if p.get("is_base64") == Some(&Value::Bool(true)) {
        let b64 = match p.get("body_base64") {
            Some(Value::String(s)) if !s.is_empty() => s,
            _ => {
                return Err(ProxyError::Invalid(
                    "proxy.body_base64 must be a non-empty string when proxy.is_base64=true",
                ))
            }
        };
        Bytes::from(
            base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|_| ProxyError::Invalid("invalid proxy.body_base64"))?,
        )
    } else {
        Bytes::from(text(p.get("body")).unwrap_or_default())
    };
    let positive = |key: &str| {
        p.get(key)
            .and_then(Value::as_f64)
            .filter(|n| *n > 0.0)
            .map(|n| n as u64)
    };
    let timeout_ms = positive("timeout_ms").unwrap_or(default_timeout_ms).max(50);
    let max_bytes = positive("max_response_bytes")
        .or(edge.max_response_bytes)
        .unwrap_or(DEFAULT_MAX_RESPONSE_BYTES);
    Ok(Plan {
        host,
        authority: authority.to_string(),
        port: port.unwrap_or(80),
        path,
        method,
        headers,
        body,
        timeout: Duration::from_millis(timeout_ms),
        max_bytes,
    })
}

/// `host[:port]` or `[v6][:port]`.
fn split_authority(authority: &str) -> Option<(String, Option<u16>)> {
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.parse().ok()?),
            None if after.is_empty() => None,
            None => return None,
        };
        return Some((host.to_string(), port));
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => Some((host.to_string(), Some(port.parse().ok()?))),
        Some(_) => None,
        None => Some((authority.to_string(), None)),
    }
}

/// Carry out the reply's `proxy` directive; the upstream's answer replaces the reply (whose
/// `status`/`headers`/`body` were only the fallback). The handler's captured output stays.
pub async fn forward(reply: Reply, policy: &FnPolicy, inbound_method: &hyper::Method) -> Result<Reply, ProxyError> {
    let Some(proxy) = reply.proxy.as_ref() else {
        return Ok(reply);
    };
    let edge = policy.edge.as_ref().ok_or(ProxyError::Disabled)?;
    let plan = plan(proxy, edge, inbound_method, policy.timeout_ms)?;
    let (status, headers, body) = tokio::time::timeout(plan.timeout, exchange(&plan, edge.allow_private))
        .await
        .map_err(|_| ProxyError::Request("timeout".into()))??;
    Ok(Reply {
        status,
        headers,
        body,
        stdout: reply.stdout,
        stderr: reply.stderr,
        proxy: None,
        handler_us: reply.handler_us,
        load_us: reply.load_us,
    })
}

/// Resolve, vet every address, connect to the first that answers, one HTTP/1.1 exchange.
async fn exchange(
    plan: &Plan,
    allow_private: bool,
) -> Result<(u16, Vec<(HeaderName, HeaderValue)>, Bytes), ProxyError> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((plan.host.as_str(), plan.port))
        .await
        .map_err(|_| ProxyError::Request("could not resolve host".into()))?
        .collect();
    if addrs.is_empty() {
        return Err(ProxyError::Request("could not resolve host".into()));
    }
    if !allow_private && addrs.iter().any(|a| is_private(a.ip())) {
        return Err(ProxyError::Denied("private host not allowed"));
    }
    let mut stream = None;
    let mut last = String::new();
    for addr in &addrs {
        match tokio::net::TcpStream::connect(addr).await {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = e.kind().to_string(),
        }
    }
    let stream = stream.ok_or_else(|| ProxyError::Request(format!("connect_error:{last}")))?;
    let io = hyper_util::rt::TokioIo::new(stream);
    let (mut sender, conn) = hyper::client::conn::http1::handshake::<_, Full<Bytes>>(io)
        .await
        .map_err(|e| ProxyError::Request(format!("connect_error:{e}")))?;
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut req = hyper::Request::new(Full::new(plan.body.clone()));
    *req.method_mut() = plan.method.clone();
    *req.uri_mut() = plan.path.parse().map_err(|_| ProxyError::Denied("invalid url"))?;
    let h = req.headers_mut();
    for (k, v) in &plan.headers {
        h.append(k.clone(), v.clone());
    }
    if let Ok(host) = HeaderValue::from_str(&plan.authority) {
        h.insert(hyper::header::HOST, host);
    }
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| ProxyError::Request(format!("receive_error:{e}")));
    let resp = match resp {
        Ok(r) => r,
        Err(e) => {
            driver.abort();
            return Err(e);
        }
    };
    let too_large = || ProxyError::Request("response_too_large".into());
    if resp
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
        .is_some_and(|n| n > plan.max_bytes)
    {
        driver.abort();
        return Err(too_large());
    }
    let status = resp.status().as_u16();
    let headers: Vec<(HeaderName, HeaderValue)> = resp
        .headers()
        .iter()
        .filter(|(k, _)| !hop_by_hop(k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let limit = usize::try_from(plan.max_bytes).unwrap_or(usize::MAX);
    let body = Limited::new(resp.into_body(), limit).collect().await;
    driver.abort();
    let body = body
        .map_err(|e| {
            if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
                too_large()
            } else {
                ProxyError::Request(format!("receive_error:{e}"))
            }
        })?
        .to_bytes();
    Ok((status, headers, body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn edge(private: bool) -> EdgePolicy {
        EdgePolicy {
            base_url: Some("http://api.example.com/".into()),
            allow_private: private,
            ..EdgePolicy::default()
        }
    }

    fn planned(proxy: Value, edge: &EdgePolicy) -> Result<Plan, ProxyError> {
        plan(&proxy, edge, &hyper::Method::POST, 2500)
    }

    #[test]
    fn targets_are_built_like_the_original() {
        let p = planned(json!({"path": "/v1/users/7?x=1", "method": "get"}), &edge(false)).unwrap();
        assert_eq!(
            (p.host.as_str(), p.port, p.path.as_str()),
            ("api.example.com", 80, "/v1/users/7?x=1")
        );
        assert_eq!(p.method, hyper::Method::GET);
        assert_eq!(p.timeout, Duration::from_millis(2500));
        assert_eq!(p.max_bytes, DEFAULT_MAX_RESPONSE_BYTES);
        let p = planned(
            json!({"url": "http://[2001:db8::1]:8080", "timeout_ms": 10}),
            &edge(false),
        )
        .unwrap();
        assert_eq!((p.host.as_str(), p.port, p.path.as_str()), ("2001:db8::1", 8080, "/"));
        assert_eq!(p.method, hyper::Method::POST, "the inbound method by default");
        assert_eq!(p.timeout, Duration::from_millis(50), "at least 50 ms");
        let p = planned(json!({"url": "/relative", "max_response_bytes": 10}), &edge(false)).unwrap();
        assert_eq!((p.path.as_str(), p.max_bytes), ("/relative", 10));
    }

    #[test]
    fn bad_directives_are_refused_with_the_original_messages() {
        let no_base = EdgePolicy::default();
        let cases: [(Value, &EdgePolicy, &str); 11] = [
            (json!("x"), &no_base, "edge proxy failed: proxy must be an object"),
            (
                json!({}),
                &no_base,
                "edge proxy failed: proxy.url must be absolute (http/https) or proxy.path must start with /",
            ),
            (
                json!({"path": "/a/../b"}),
                &no_base,
                "edge proxy failed: proxy.path may not include ..",
            ),
            (
                json!({"path": "/a"}),
                &no_base,
                "edge proxy failed: edge.base_url is required for relative proxy paths",
            ),
            (
                json!({"path": "/_fn/health"}),
                &edge(true),
                "edge proxy failed: proxy denied: control-plane path not allowed",
            ),
            (
                json!({"path": "/console?x"}),
                &edge(true),
                "edge proxy failed: proxy denied: control-plane path not allowed",
            ),
            (
                json!({"url": "http://127.0.0.1:9/"}),
                &edge(false),
                "edge proxy failed: proxy denied: private host not allowed",
            ),
            (
                json!({"url": "http://localhost/"}),
                &edge(false),
                "edge proxy failed: proxy denied: private host not allowed",
            ),
            (
                json!({"url": "http://[::ffff:10.0.0.1]/"}),
                &edge(false),
                "edge proxy failed: proxy denied: private host not allowed",
            ),
            (
                json!({"path": "/x", "method": "TRACE"}),
                &edge(false),
                "edge proxy failed: invalid proxy method",
            ),
            (
                json!({"path": "/x", "is_base64": true}),
                &edge(false),
                "edge proxy failed: proxy.body_base64 must be a non-empty string when proxy.is_base64=true",
            ),
        ];
        for (proxy, e, want) in cases {
            assert_eq!(planned(proxy.clone(), e).unwrap_err().to_string(), want, "{proxy}");
        }
        let listed = EdgePolicy {
            allow_hosts: vec!["api.example.com".into(), "other:8080".into()],
            ..EdgePolicy::default()
        };
        assert!(planned(json!({"url": "http://api.example.com/x"}), &listed).is_ok());
        assert!(planned(json!({"url": "http://other:8080/x"}), &listed).is_ok());
        assert_eq!(
            planned(json!({"url": "http://other:9090/x"}), &listed).unwrap_err(),
            ProxyError::Denied("host not in allowlist")
        );
        assert!(matches!(
            planned(json!({"url": "https://api.example.com/x"}), &listed).unwrap_err(),
            ProxyError::Request(_)
        ));
    }

    #[test]
    fn headers_are_cleaned_and_bodies_decoded() {
        let p = planned(
            json!({"path": "/x", "headers": {"X-Edge": "1", "Connection": "close", "Host": "evil", "bad name": "v",
                                             "x-n": 5, "x-crlf": "a\r\nb"},
                   "is_base64": true, "body_base64": "AAEC"}),
            &edge(false),
        )
        .unwrap();
        let names: Vec<&str> = p.headers.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["x-edge", "x-n"]);
        assert_eq!(&p.body[..], &[0, 1, 2]);
    }

    #[test]
    fn private_addresses() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:192.168.0.1",
        ] {
            assert!(is_private(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "172.32.0.1", "100.128.0.1", "2001:db8::1", "::ffff:8.8.8.8"] {
            assert!(!is_private(ip.parse().unwrap()), "{ip}");
        }
    }
}
