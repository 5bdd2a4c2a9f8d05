//! The router: a request head → what the gateway does with it. Pure (no I/O, no awaits): the
//! admin and console prefixes, refusals of malformed heads, the home route, and the route
//! map's answer, in contract order (§2.6). Static files are the one step that needs the disk:
//! the decision says when to try them, and the gateway does.

use super::Failure;
use crate::host::request_host;
use crate::landing::HomeAction;
use crate::routing::{is_named_target, Resolution, Route, RouteMap};
use hyper::http::request::Parts;

/// What to do with a request.
#[derive(Debug)]
pub enum Decision<'a> {
    /// `/_fn/*` (the admin surface decides the rest).
    Admin,
    /// `/console/*`.
    Console,
    /// `GET /` with `home.redirect` / `FN_HOME_REDIRECT`.
    Redirect(&'a str),
    /// Refused before any lookup.
    Refuse(Failure),
    Serve(Plan<'a>),
}

/// A request for the project's own routes.
#[derive(Debug)]
pub struct Plan<'a> {
    /// Try static files before the route map (§2.6 step 1; off with `run_worker_first`).
    pub assets_first: bool,
    pub route: RouteDecision<'a>,
}

#[derive(Debug)]
pub enum RouteDecision<'a> {
    Invoke {
        route: &'a Route,
        params: Vec<(String, String)>,
    },
    /// No route: static files with the SPA fallback, else 404 (§2.6 step 6). `allow`: a
    /// route matches the path but not the method (its methods, for the request log's why).
    Assets {
        allow: Option<String>,
    },
    Refuse(Failure),
}

/// `home`: what `/` does instead of the normal lookup (env or root config), if anything;
/// `assets_first`: a root assets mount exists and functions do not run first.
pub fn decide<'a>(
    routes: &'a RouteMap,
    home: Option<&'a HomeAction>,
    assets_first: bool,
    parts: &'a Parts,
) -> Decision<'a> {
    if !is_method_token(parts.method.as_str()) {
        return Decision::Refuse(Failure::BadRequest("invalid method"));
    }
    let path = parts.uri.path();
    if is_edge_invalid_path(path) {
        return Decision::Refuse(Failure::BadRequest("invalid path"));
    }
    if parts
        .headers
        .iter()
        .any(|(k, v)| header_line_len(k.as_str(), v.len()) > HEADER_LINE_MAX)
    {
        return Decision::Refuse(Failure::BadRequest("request header too large"));
    }
    if path == "/_fn" || path.starts_with("/_fn/") || crate::admin::is_public_alias(path) {
        return Decision::Admin;
    }
    if path == "/console" || path.starts_with("/console/") {
        return Decision::Console;
    }
    let lookup = match home {
        Some(HomeAction::Redirect(to)) if path == "/" => return Decision::Redirect(to),
        Some(HomeAction::Function(to)) if path == "/" => to.as_str(),
        _ => path,
    };
    let route = match routes.resolve(parts.method.as_str(), lookup, request_host(parts)) {
        Resolution::Matched { route, params } => RouteDecision::Invoke { route, params },
        Resolution::Ambiguous => RouteDecision::Refuse(Failure::Ambiguous),
        // The original answers a method mismatch 404 (static files first, as for no route),
        // except at the named target `/<name>@<version>`.
        Resolution::MethodNotAllowed { allow } if is_named_target(lookup) => {
            RouteDecision::Refuse(Failure::MethodNotAllowed { allow })
        }
        Resolution::MethodNotAllowed { allow } => RouteDecision::Assets { allow: Some(allow) },
        Resolution::HostNotAllowed => RouteDecision::Refuse(Failure::HostNotAllowed),
        Resolution::NotFound => RouteDecision::Assets { allow: None },
    };
    Decision::Serve(Plan { assets_first, route })
}

/// The longest header line nginx in front of the original takes (`large_client_header_buffers
/// 4 8k`): one line, `name: value` and its CRLF, must fit one 8 KiB buffer.
pub const HEADER_LINE_MAX: usize = 8192;

/// A header's line on the wire: `name: value\r\n`.
fn header_line_len(name: &str, value_len: usize) -> usize {
    name.len() + 2 + value_len + 2
}

/// Request paths that nginx in front of the original refuses with 400 before any location
/// (for `/_fn/*` too): a `%` not followed by two hex digits, an encoded NUL (`%00`), and a
/// `..` segment, also encoded (`%2e%2e`, any case). nginx resolves a `..` that stays inside
/// the root (`/a/../b` → `/b`); we refuse every one (recorded in docs/compat.md).
pub fn is_edge_invalid_path(path: &str) -> bool {
    let b = path.as_bytes();
    for (i, &c) in b.iter().enumerate() {
        if c != b'%' {
            continue;
        }
        match (b.get(i + 1), b.get(i + 2)) {
            (Some(h), Some(l)) if h.is_ascii_hexdigit() && l.is_ascii_hexdigit() => {
                if *h == b'0' && *l == b'0' {
                    return true;
                }
            }
            _ => return true,
        }
    }
    path.split('/').any(|seg| {
        let seg = seg.as_bytes();
        let mut dots = 0;
        let mut i = 0;
        while i < seg.len() {
            if seg[i] == b'.' {
                i += 1;
            } else if seg[i..].len() >= 3
                && seg[i] == b'%'
                && seg[i + 1] == b'2'
                && seg[i + 2].eq_ignore_ascii_case(&b'e')
            {
                i += 3;
            } else {
                return false;
            }
            dots += 1;
        }
        dots == 2
    })
}

/// Methods as an HTTP edge like nginx takes them: upper-case letters, `_` and `-`. `get` is
/// not GET (method names are case-sensitive) and is refused rather than routed.
pub fn is_method_token(m: &str) -> bool {
    !m.is_empty() && m.bytes().all(|b| b.is_ascii_uppercase() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::{discover, DiscoveryOptions};
    use crate::runtime::RuntimeKind;

    fn project(files: &[(&str, &str)]) -> (tempfile::TempDir, RouteMap) {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let p = dir.path().join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        let opts = DiscoveryOptions {
            runtimes: vec![RuntimeKind::Python, RuntimeKind::Node],
            ..DiscoveryOptions::default()
        };
        let routes = discover(dir.path(), &opts).routes;
        (dir, routes)
    }

    fn head(method: &str, uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut b = hyper::Request::builder()
            .method(hyper::Method::from_bytes(method.as_bytes()).unwrap())
            .uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    /// Every kind of decision, from request heads alone (no socket, no engine).
    #[test]
    fn request_heads_map_to_decisions() {
        let files = [
            ("hello.py", "def handler(e): return 'hi'"),
            ("users/[id].py", "def handler(e): return e['params']"),
            ("post.users.py", "def handler(e): return 'made'"),
            ("dup.py", "def handler(e): return 'py'"),
            ("dup.js", "exports.handler = () => 'js'"),
            (
                "only/fn.config.json",
                r#"{"invoke": {"allow_hosts": ["api.example.com"]}}"#,
            ),
            ("only/handler.py", "def handler(e): return 'api'"),
            (
                "api/fn.config.json",
                r#"{"name": "api", "runtime": "python", "invoke": {"methods": ["GET"]}}"#,
            ),
            ("api/handler.py", "def handler(e): return 'api'"),
            ("api/v2/handler.py", "def handler(e): return 'v2'"),
        ];
        let (_dir, routes) = project(&files);
        let home = HomeAction::Redirect("/hello".into());
        let kind = |d: &Decision| -> String {
            match d {
                Decision::Admin => "admin".into(),
                Decision::Console => "console".into(),
                Decision::Redirect(to) => format!("redirect {to}"),
                Decision::Refuse(f) => format!("refuse {}", f.status().as_u16()),
                Decision::Serve(p) => match &p.route {
                    RouteDecision::Invoke { route, params } => {
                        let ps: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
                        format!("invoke {} {} [{}]", route.pattern, route.target.runtime, ps.join(","))
                    }
                    RouteDecision::Assets { .. } => "assets".into(),
                    RouteDecision::Refuse(f) => format!("refuse {}", f.status().as_u16()),
                },
            }
        };
        type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], &'a str);
        let cases: &[Case] = &[
            ("GET", "/_fn/health", &[], "admin"),
            ("POST", "/_fn/reload", &[], "admin"),
            ("GET", "/_fnx", &[], "assets"),
            ("GET", "/console/", &[], "console"),
            ("GET", "/", &[], "redirect /hello"),
            ("GET", "/hello", &[], "invoke /hello python []"),
            ("HEAD", "/hello", &[], "invoke /hello python []"),
            ("GET", "/users/42", &[], "invoke /users/:id python [id=42]"),
            ("POST", "/users", &[], "invoke /users python []"),
            ("GET", "/dup", &[], "invoke /dup python []"),
            ("GET", "/nope", &[], "assets"),
            ("get", "/hello", &[], "refuse 400"),
            ("GET", "/only", &[("host", "api.example.com")], "invoke /only python []"),
            ("GET", "/only", &[("host", "evil.example.com")], "refuse 421"),
            // A method mismatch is a 404 (via static files), as in the original…
            ("POST", "/hello", &[], "assets"),
            ("DELETE", "/api", &[], "assets"),
            ("DELETE", "/api/x", &[], "assets"),
            ("DELETE", "/api@v2/x", &[], "assets"),
            // …except at the named target /<name>@<version>: 405 with Allow.
            ("GET", "/api@v2", &[], "invoke /api@v2 python []"),
            ("DELETE", "/api@v2", &[], "refuse 405"),
        ];
        for (method, uri, headers, want) in cases {
            let parts = head(method, uri, headers);
            let got = kind(&decide(&routes, Some(&home), false, &parts));
            assert_eq!(&got, want, "{method} {uri} {headers:?}");
        }
        let parts = head("GET", "/hello", &[]);
        let Decision::Serve(plan) = decide(&routes, None, true, &parts) else {
            panic!()
        };
        assert!(plan.assets_first);
        let home = HomeAction::Function("/users/7".into());
        let parts = head("GET", "/", &[]);
        assert_eq!(
            kind(&decide(&routes, Some(&home), false, &parts)),
            "invoke /users/:id python [id=7]"
        );
        let parts = head("GET", "/openapi.json", &[]);
        assert_eq!(kind(&decide(&routes, None, false, &parts)), "admin", "a public alias");
    }

    #[test]
    fn edge_paths_as_nginx_refuses_them() {
        for bad in [
            "/../x",
            "/a/../x",
            "/..",
            "/%2e%2e/x",
            "/%2E%2e/x",
            "/.%2e/x",
            "/x/%00",
            "/a%00b",
            "/%",
            "/a%",
            "/a%2",
            "/a%zz",
            "/a%g0",
        ] {
            assert!(is_edge_invalid_path(bad), "{bad}");
        }
        for ok in [
            "/",
            "/x",
            "/.env",
            "/%2eenv",
            "/.../x",
            "/a..b",
            "/a/.",
            "/%252e%252e/x",
            "/a%20b",
            "/%2fx",
        ] {
            assert!(!is_edge_invalid_path(ok), "{ok}");
        }
        let routes = RouteMap::default();
        let long = "v".repeat(HEADER_LINE_MAX - "x-long: \r\n".len());
        let fits = head("GET", "/x", &[("x-long", &long)]);
        assert!(matches!(decide(&routes, None, false, &fits), Decision::Serve(_)));
        let over = head("GET", "/x", &[("x-long", &format!("{long}v"))]);
        let Decision::Refuse(f) = decide(&routes, None, false, &over) else {
            panic!("a header line over 8 KiB must be refused")
        };
        assert_eq!(f.status().as_u16(), 400);
        let Decision::Refuse(f) = decide(&routes, None, false, &head("GET", "/%2e%2e/x", &[])) else {
            panic!("traversal must be refused")
        };
        assert_eq!(f.status().as_u16(), 400);
    }

    #[test]
    fn named_targets_are_name_at_version_only() {
        for yes in ["/api@v2", "/a-b_c@1.2.3", "/x@y"] {
            assert!(is_named_target(yes), "{yes}");
        }
        for no in [
            "/api",
            "/api@",
            "/@v2",
            "/api@v2/x",
            "/a/b@v2",
            "/api@v2@v3",
            "api@v2",
            "/a.b@v2",
        ] {
            assert!(!is_named_target(no), "{no}");
        }
    }

    #[test]
    fn method_tokens_are_upper_case() {
        for ok in ["GET", "POST", "PROPFIND", "VERSION-CONTROL", "M_SEARCH"] {
            assert!(is_method_token(ok), "{ok}");
        }
        for bad in ["get", "Get", "", "GE T", "GET1"] {
            assert!(!is_method_token(bad), "{bad}");
        }
    }
}
