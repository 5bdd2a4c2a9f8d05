//! `GET /`: what answers the root URL when no function does.
//!
//! In the original's order: `FN_HOME_FUNCTION`, `FN_HOME_REDIRECT`, then the root
//! `fn.config.json` `home` block (`home.function`, or `home.redirect` → 302); `home.route` is
//! an alias that discovery registers. If none applies, a static `index.html` and then the
//! built-in landing page answer — the landing page only when the project has routes (an empty
//! project stays a 404).

use crate::engine::Served;
use crate::rescue::Body;
use crate::rescue::Failure;
use bytes::Bytes;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::Response;
use serde_json::Value;
use std::path::Path;

/// What `/` does instead of the normal lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HomeAction {
    /// Serve `/` as this local path (`/portal/dashboard`).
    Function(String),
    /// 302 to this path or `http(s)://` URL.
    Redirect(String),
}

fn is_http_url(s: &str) -> bool {
    let lower = s.to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

/// A local target: leading `/`, no `//`, no trailing `/`, never `/` itself or `..`; the query
/// is dropped (the route lookup has no use for it). `None` when unusable.
fn local_target(raw: &str) -> Option<String> {
    let raw = raw.trim();
    if raw.is_empty() || is_http_url(raw) {
        return None;
    }
    let path = raw.split('?').next().unwrap_or("").trim();
    let joined: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    if joined.is_empty() || path.contains("..") {
        return None;
    }
    Some(format!("/{}", joined.join("/")))
}

/// A redirect target: an `http(s)://` URL as given, else a local target with its query.
fn redirect_target(raw: &str) -> Option<String> {
    let raw = raw.trim();
    if is_http_url(raw) {
        return Some(raw.to_string());
    }
    let path = local_target(raw)?;
    Some(match raw.split_once('?') {
        Some((_, q)) if !q.is_empty() => format!("{path}?{q}"),
        _ => path,
    })
}

/// `home` of a root `fn.config.json`: a string (the function), or an object with `function`
/// (also `path`, `target`) and `redirect` (also `url`, `location`); `invoke.home` too.
fn home_of_config(cfg: &Value) -> Option<HomeAction> {
    let first = |v: &Value, keys: &[&str]| {
        keys.iter()
            .find_map(|k| v.get(*k).and_then(Value::as_str).filter(|s| !s.trim().is_empty()))
            .map(str::to_string)
    };
    let spec = |v: &Value| -> (Option<String>, Option<String>) {
        match v {
            Value::String(s) => (Some(s.clone()), None),
            Value::Object(_) => (
                first(v, &["function", "path", "target"]),
                first(v, &["redirect", "url", "location"]),
            ),
            _ => (None, None),
        }
    };
    let (mut function, mut redirect) = cfg.get("home").map(spec).unwrap_or_default();
    if function.is_none() && redirect.is_none() {
        (function, redirect) = cfg.pointer("/invoke/home").map(spec).unwrap_or_default();
    }
    function
        .as_deref()
        .and_then(local_target)
        .map(HomeAction::Function)
        .or_else(|| redirect.as_deref().and_then(redirect_target).map(HomeAction::Redirect))
}

/// What `/` should do, or `None` for the normal lookup. Read when a route map is built (start
/// and every reload, which an edit of the root `fn.config.json` triggers), not per request.
pub fn home_action(settings: &crate::config::project::Settings) -> Option<HomeAction> {
    if let Some(p) = settings.home_function.as_deref().and_then(local_target) {
        return Some(HomeAction::Function(p));
    }
    if let Some(to) = settings.home_redirect.as_deref().and_then(redirect_target) {
        return Some(HomeAction::Redirect(to));
    }
    root_config_home(&settings.functions_root)
}

fn root_config_home(root: &Path) -> Option<HomeAction> {
    let text = std::fs::read(root.join(crate::config::function::FN_CONFIG_FILE)).ok()?;
    let cfg: Value = serde_json::from_slice(&text).ok()?;
    home_of_config(&cfg)
}

/// The answer when nothing matched `path`: the landing page for `GET /` (and `HEAD`) in a
/// project with routes, else 404.
pub fn not_found(served: &Served, method: &hyper::Method, path: &str) -> Response<Body> {
    let page = matches!(*method, hyper::Method::GET | hyper::Method::HEAD);
    if page && path == "/" && !served.discovery.routes.routes().is_empty() {
        let mut resp = Response::new(Body::new(Bytes::from_static(PAGE.as_bytes())));
        resp.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
        return resp;
    }
    Failure::NotFound.into_response()
}

/// The built-in landing page: where the docs, the OpenAPI document, health and the console
/// are, how to take over `/`, and a curl line per public route (from `/openapi.json`).
const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>FastFN</title>
<style>
body{margin:0;font:15px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1b2430;background:#f4f6f9}
main{max-width:64rem;margin:0 auto;padding:2rem 1rem}
header{background:#1b2430;color:#fff;border-radius:10px;padding:1.2rem 1.5rem;margin-bottom:1rem}
header h1{margin:0;font-size:1.5rem}header p{margin:.3rem 0 0;color:#c9d3df}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(15rem,1fr));gap:.8rem}
section{background:#fff;border:1px solid #dde3ea;border-radius:10px;padding:1rem}
h2{font-size:1rem;margin:0 0 .4rem}a.b{display:inline-block;margin:.2rem .3rem 0 0;padding:.3rem .6rem;border:1px solid #1b2430;border-radius:6px;color:#1b2430;text-decoration:none;font-weight:600;font-size:.85rem}
pre{background:#10161f;color:#e4eaf1;border-radius:6px;padding:.6rem;overflow:auto;font-size:.8rem;white-space:pre-wrap;overflow-wrap:anywhere}
.up{color:#17663a}.down{color:#9a4a00}
</style>
</head>
<body><main>
<header><h1>FastFN</h1><p>Your files are the API: every handler below is served by this engine.</p></header>
<div class="cards">
<section><h2>API docs</h2><p>Try every route in the browser.</p><a class="b" href="/_fn/docs">Swagger UI</a><a class="b" href="/openapi.json">OpenAPI JSON</a></section>
<section><h2>Health</h2><p id="health">Checking runtimes…</p><a class="b" href="/_fn/health">/_fn/health</a></section>
<section><h2>Console</h2><p>The dashboard, for this machine only. Start with <code>FN_UI_ENABLED=1</code>.</p><a class="b" href="/console">Open the console</a></section>
<section><h2>Your own home page</h2><p>Point <code>/</code> somewhere else:</p><pre>FN_HOME_FUNCTION=/hello
FN_HOME_REDIRECT=/_fn/docs
# or in the root fn.config.json
{"home": {"route": "/hello"}}</pre></section>
</div>
<section style="margin-top:.8rem"><h2>Routes</h2><pre id="routes">Loading /openapi.json…</pre></section>
</main>
<script>
(function () {
  var sample = function (p) { return p.replace(/\{([^}]+)\}/g, function (_, k) { return /id/i.test(k) ? '1' : 'sample'; }); };
  fetch('/openapi.json').then(function (r) { if (!r.ok) throw r.status; return r.json(); }).then(function (spec) {
    var lines = [];
    Object.keys(spec.paths || {}).sort().forEach(function (p) {
      if (p.indexOf('/_fn/') === 0) return;
      ['get', 'post', 'put', 'patch', 'delete'].forEach(function (m) {
        if (!spec.paths[p][m]) return;
        var url = location.origin + sample(p);
        lines.push(m === 'get' ? "curl '" + url + "'" : 'curl -X ' + m.toUpperCase() + " '" + url + "'");
      });
    });
    document.getElementById('routes').textContent = lines.join('\n') || 'No public routes yet.';
  }).catch(function () { document.getElementById('routes').textContent = 'The OpenAPI document is not available (FN_DOCS_ENABLED=0?).'; });
  fetch('/_fn/health').then(function (r) { return r.json(); }).then(function (h) {
    var el = document.getElementById('health'), rts = h.runtimes || {}, names = Object.keys(rts).sort();
    var down = names.filter(function (n) { return !(rts[n].health && rts[n].health.up); });
    el.textContent = names.map(function (n) { return n + (down.indexOf(n) < 0 ? ' up' : ' down'); }).join(' · ') || 'No runtimes';
    el.className = down.length ? 'down' : 'up';
  }).catch(function () { document.getElementById('health').textContent = 'Unavailable'; });
})();
</script>
</body></html>
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn targets_are_normalised_like_the_original() {
        assert_eq!(local_target("portal//dashboard/"), Some("/portal/dashboard".into()));
        assert_eq!(local_target("/x?a=1"), Some("/x".into()));
        assert_eq!(local_target("/"), None);
        assert_eq!(local_target("/a/../b"), None);
        assert_eq!(local_target("https://example.com"), None);
        assert_eq!(redirect_target("/docs?x=1"), Some("/docs?x=1".into()));
        assert_eq!(
            redirect_target("https://example.com/x"),
            Some("https://example.com/x".into())
        );
        assert_eq!(redirect_target(" "), None);
    }

    #[test]
    fn config_home_forms() {
        let f = |v: Value| home_of_config(&v);
        assert_eq!(f(json!({"home": "/hi"})), Some(HomeAction::Function("/hi".into())));
        assert_eq!(
            f(json!({"home": {"redirect": "/_fn/docs"}})),
            Some(HomeAction::Redirect("/_fn/docs".into()))
        );
        // The function wins over the redirect, as in the original.
        assert_eq!(
            f(json!({"home": {"function": "/a", "redirect": "/b"}})),
            Some(HomeAction::Function("/a".into()))
        );
        assert_eq!(
            f(json!({"invoke": {"home": {"url": "https://x.dev"}}})),
            Some(HomeAction::Redirect("https://x.dev".into()))
        );
        // `home.route` is discovery's (an alias), not an action here.
        assert_eq!(f(json!({"home": {"route": "/hello"}})), None);
        assert_eq!(f(json!({"home": {"function": "/"}})), None);
    }
}
