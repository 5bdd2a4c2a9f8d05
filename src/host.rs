//! The host a request names, without its port: for a route's `allow_hosts` (forwarded hosts
//! count, as in FastFN) and for the admin guard (`Host` only: a forwarded header is the
//! client's word and decides nothing about security).

use hyper::header::HOST;
use hyper::http::request::Parts;

/// Host of the request without port, for a route's `allow_hosts` (contract §3): first
/// `X-Forwarded-Host`, else `Host`. Never for a security decision: any client can send
/// `X-Forwarded-Host` (see [`authority_host`]).
pub fn request_host(parts: &Parts) -> Option<&str> {
    let raw = parts
        .headers
        .get("x-forwarded-host")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .or_else(|| parts.headers.get(HOST).and_then(|v| v.to_str().ok()))
        .or_else(|| parts.uri.host())?
        .trim();
    Some(strip_port(raw))
}

/// Host of the request without port from `Host` (or the absolute-form URI) only: what a browser
/// sets from the URL and a page cannot change. The admin guard's DNS-rebinding check uses this.
pub fn authority_host(parts: &Parts) -> Option<&str> {
    let raw = parts
        .headers
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| parts.uri.host())?
        .trim();
    Some(strip_port(raw))
}

fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        // [::1]:8080
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_stripped_from_hosts() {
        assert_eq!(strip_port("example.com:8080"), "example.com");
        assert_eq!(strip_port("example.com"), "example.com");
        assert_eq!(strip_port("[::1]:8080"), "::1");
        assert_eq!(strip_port("127.0.0.1"), "127.0.0.1");
    }

    #[test]
    fn forwarded_hosts_count_for_routes_only() {
        let req = hyper::Request::builder()
            .uri("/x")
            .header("host", "127.0.0.1:8080")
            .header("x-forwarded-host", "app.example.com, proxy")
            .body(())
            .unwrap();
        let (parts, _) = req.into_parts();
        assert_eq!(request_host(&parts), Some("app.example.com"));
        assert_eq!(authority_host(&parts), Some("127.0.0.1"));
    }
}
