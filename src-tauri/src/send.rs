//! `send_request`: one real HTTP/1.1 request to the engine's own address, as a browser on the
//! same origin would send it.

use crate::project::UiError;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde::Serialize;
use serde_json::Value;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Longest a request from the send panel may take.
const TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Serialize)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub ms: f64,
}

/// Headers as the UI gives them: `[[k, v]]`, `{k: v}`, or the send panel's text
/// (`Name: value` per line).
pub fn parse_headers(v: &Value) -> Result<Vec<(String, String)>, UiError> {
    let bad = || {
        UiError::new(
            "request.bad_headers",
            "headers must be [[name, value]], {name: value} or `Name: value` lines",
        )
    };
    Ok(match v {
        Value::Null => Vec::new(),
        Value::Array(items) => items
            .iter()
            .map(|pair| match pair.as_array().map(Vec::as_slice) {
                Some([Value::String(k), Value::String(v)]) => Ok((k.clone(), v.clone())),
                _ => Err(bad()),
            })
            .collect::<Result<_, _>>()?,
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                _ => Err(bad()),
            })
            .collect::<Result<_, _>>()?,
        Value::String(text) => text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|l| {
                l.split_once(':')
                    .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                    .ok_or_else(bad)
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(bad()),
    })
}

pub async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: Option<String>,
) -> Result<Reply, UiError> {
    let path = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    let mut addr = addr;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let mut req = hyper::Request::builder()
        .method(method.to_ascii_uppercase().as_str())
        .uri(&path)
        .header(hyper::header::HOST, addr.to_string());
    for (k, v) in headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let req = req
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .map_err(|e| UiError::new("request.invalid", e.to_string()))?;
    let started = Instant::now();
    let exchange = async {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(std::io::Error::other)?;
        let conn = tokio::spawn(conn);
        let resp = sender.send_request(req).await.map_err(std::io::Error::other)?;
        let (parts, body) = resp.into_parts();
        let body = body.collect().await.map_err(std::io::Error::other)?.to_bytes();
        conn.abort();
        Ok::<_, std::io::Error>((parts, body))
    };
    let (parts, body) = tokio::time::timeout(TIMEOUT, exchange)
        .await
        .map_err(|_| UiError::new("request.timeout", "no answer within 60 s"))?
        .map_err(|e| UiError::new("request.failed", e.to_string()))?;
    Ok(Reply {
        status: parts.status.as_u16(),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect(),
        body: String::from_utf8_lossy(&body).into_owned(),
        ms: (started.elapsed().as_secs_f64() * 100_000.0).round() / 100.0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn headers_in_three_shapes() {
        let want = vec![("X-A".to_string(), "1".to_string())];
        assert_eq!(parse_headers(&json!([["X-A", "1"]])).unwrap(), want);
        assert_eq!(parse_headers(&json!({"X-A": "1"})).unwrap(), want);
        assert_eq!(parse_headers(&json!("X-A: 1\n\n")).unwrap(), want);
        assert!(parse_headers(&json!("no colon")).is_err());
        assert!(parse_headers(&json!(null)).unwrap().is_empty());
    }
}
