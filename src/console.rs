//! The dashboard's files at `/console` (when `FN_UI_ENABLED=1`): where they come from and how
//! they are answered.
//!
//! Sources, first found wins: `FN_UI_DIR` (a folder holding `index.html`; when set, nothing
//! else is tried), `ui/dist` of the source tree the binary was built from (a dashboard rebuilt
//! since the binary is served fresh), then the copy embedded by `build.rs` when `ui/dist`
//! existed at build time. With none, `/console` answers 503 with the commands that build it
//! (an HTML page for a browser, JSON otherwise): a plain `cargo build` never gives a bare 404.
//!
//! The embedded table is static: a request can only name one of its entries (no file system,
//! so no traversal), and a path that names none gets the SPA shell when it looks like a
//! navigation (no extension), else 404.

use crate::assets::{AssetOutcome, Assets};
use crate::config::project::Settings;
use crate::rescue::{Body, Failure};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{
    HeaderValue, ACCEPT, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, ETAG, IF_NONE_MATCH, X_CONTENT_TYPE_OPTIONS,
};
use hyper::{HeaderMap, Method, Response, StatusCode};
use std::path::{Path, PathBuf};

/// One file of the dashboard built into the binary.
#[derive(Debug)]
pub struct EmbeddedFile {
    /// `/index.html`, `/assets/index-1a2b.js`.
    pub path: &'static str,
    /// Strong validator: a content hash and the length, quoted.
    pub etag: &'static str,
    pub bytes: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/console_ui.rs"));

/// Number of dashboard files built into this binary (0: `ui/dist` was not built).
pub fn embedded_files() -> usize {
    EMBEDDED.len()
}

/// Vite's content-hashed bundles: safe to cache for good.
const CACHE_HASHED: &str = "public, max-age=31536000, immutable";
/// Everything else (the shell): revalidate each time, so a new build shows up.
const CACHE_SHELL: &str = "no-cache";

/// Where `/console` takes its files from.
#[derive(Debug)]
pub enum ConsoleUi {
    Dir(Assets),
    Embedded(&'static [EmbeddedFile]),
    /// Nothing to serve; `ui_dir_set` when `FN_UI_DIR` named a folder without `index.html`.
    NotBuilt {
        ui_dir_set: bool,
    },
}

impl ConsoleUi {
    /// The source for these settings; None when the console is off (`FN_UI_ENABLED` unset).
    /// Does a few blocking `stat`s: call it at start-up.
    pub fn open(settings: &Settings) -> Option<ConsoleUi> {
        if !settings.ui_enabled {
            return None;
        }
        let from_dir = |dir: &Path| {
            let (parent, name) = (dir.parent()?, dir.file_name()?.to_string_lossy().into_owned());
            let cfg = crate::discovery::AssetsConfig {
                directory: name,
                spa: true,
                run_worker_first: false,
            };
            dir.join("index.html")
                .is_file()
                .then(|| Assets::open(parent, &cfg, settings.max_asset_bytes))
                .flatten()
        };
        if let Some(dir) = std::env::var_os("FN_UI_DIR").map(PathBuf::from) {
            return Some(match from_dir(&dir) {
                Some(assets) => ConsoleUi::Dir(assets),
                None => {
                    tracing::warn!("FN_UI_ENABLED=1 but FN_UI_DIR={} has no index.html", dir.display());
                    ConsoleUi::NotBuilt { ui_dir_set: true }
                }
            });
        }
        let source_tree = Path::new(env!("CARGO_MANIFEST_DIR")).join("ui/dist");
        if let Some(assets) = from_dir(&source_tree) {
            return Some(ConsoleUi::Dir(assets));
        }
        if !EMBEDDED.is_empty() {
            return Some(ConsoleUi::Embedded(EMBEDDED));
        }
        tracing::warn!(
            "FN_UI_ENABLED=1 but this binary has no dashboard: {}",
            build_hint(false)
        );
        Some(ConsoleUi::NotBuilt { ui_dir_set: false })
    }

    /// Answers `rest`, the request path after `/console` (`""` for `/console` itself, whose
    /// `index.html` gets a `<base>` so its relative asset URLs stay inside `/console/`).
    pub async fn serve(&self, method: &Method, rest: &str, headers: &HeaderMap) -> Response<Body> {
        let (rest, at_root) = match rest {
            "" => ("/", true),
            rest => (rest, false),
        };
        let resp = match self {
            ConsoleUi::Dir(ui) => match ui.serve(method, rest, headers, true).await {
                AssetOutcome::Served(resp) => resp,
                AssetOutcome::Refused(f) => return f.into_response(),
                AssetOutcome::NoMatch => return Failure::NotFound.into_response(),
            },
            ConsoleUi::Embedded(files) => match serve_embedded(files, method, rest, headers) {
                Some(resp) => resp,
                None => return Failure::NotFound.into_response(),
            },
            ConsoleUi::NotBuilt { ui_dir_set } => return not_built(*ui_dir_set, headers),
        };
        if !at_root || resp.status() != StatusCode::OK {
            return resp;
        }
        with_base(resp).await
    }
}

/// What to run to get a dashboard.
fn build_hint(ui_dir_set: bool) -> &'static str {
    if ui_dir_set {
        "FN_UI_DIR names a folder without index.html: point it at a built dashboard (ui/dist after `npm run build` in ui/), or unset it"
    } else {
        "build it in the source tree with `cd ui && npm ci && npm run build`, then `cargo build` again to embed it (or set FN_UI_DIR to a built dashboard folder)"
    }
}

/// 503: an HTML page for a browser, the error map's JSON for anything else.
fn not_built(ui_dir_set: bool, headers: &HeaderMap) -> Response<Body> {
    let browser = headers
        .get_all(ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("text/html"));
    if !browser {
        return Failure::ConsoleNotBuilt {
            hint: build_hint(ui_dir_set),
        }
        .into_response();
    }
    let page = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>FastFN console not built</title>\
         <style>body{{font:16px/1.5 system-ui,sans-serif;max-width:42rem;margin:3rem auto;padding:0 1rem}}\
         code,pre{{background:#f3f3f3;padding:.1rem .3rem;border-radius:4px}}pre{{padding:.8rem}}</style></head>\
         <body><h1>The console is not built into this binary</h1><p>{}</p>\
         <pre>cd ui\nnpm ci\nnpm run build\ncd ..\ncargo build</pre>\
         <p>The engine itself works: <a href=\"/_fn/health\">/_fn/health</a>, \
         <a href=\"/_fn/docs\">/_fn/docs</a>.</p></body></html>",
        html_escape(build_hint(ui_dir_set))
    );
    let mut resp = Response::new(Full::new(Bytes::from(page)));
    *resp.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// A file of `files` for GET/HEAD; None (404) for other methods and for a path that is no
/// file and no navigation.
fn serve_embedded(
    files: &'static [EmbeddedFile],
    method: &Method,
    rest: &str,
    headers: &HeaderMap,
) -> Option<Response<Body>> {
    if method != Method::GET && method != Method::HEAD {
        return None;
    }
    let path = rest.split_once('?').map_or(rest, |(p, _)| p);
    let path = if path.ends_with('/') {
        format!("{path}index.html")
    } else {
        path.to_string()
    };
    let find = |p: &str| files.iter().find(|f| f.path == p);
    let (file, cache) = match find(&path) {
        Some(f) if f.path.starts_with("/assets/") => (f, CACHE_HASHED),
        Some(f) => (f, CACHE_SHELL),
        None => {
            let last = path.rsplit('/').next().unwrap_or("");
            let extension = last.rfind('.').is_some_and(|i| i > 0);
            if extension {
                return None;
            }
            (find("/index.html")?, CACHE_SHELL)
        }
    };
    let fresh = headers
        .get_all(IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == "*" || t == file.etag);
    let mut resp = if fresh {
        let mut r = Response::new(Full::default());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else if method == Method::HEAD {
        let mut r = Response::new(Full::default());
        r.headers_mut()
            .insert(CONTENT_LENGTH, HeaderValue::from(file.bytes.len()));
        r
    } else {
        Response::new(Full::new(Bytes::from_static(file.bytes)))
    };
    let h = resp.headers_mut();
    h.insert(ETAG, HeaderValue::from_static(file.etag));
    h.insert(CACHE_CONTROL, HeaderValue::from_static(cache));
    if !fresh {
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static(crate::assets::content_type(file.path)),
        );
        h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    }
    Some(resp)
}

/// `index.html` with `<base href="/console/">` as the first thing in its `<head>`.
async fn with_base(resp: Response<Body>) -> Response<Body> {
    let (mut head, body) = resp.into_parts();
    let Ok(collected) = body.collect().await;
    let html = String::from_utf8_lossy(&collected.to_bytes()).into_owned();
    let html = match html.find("<head>") {
        Some(i) => format!("{}<base href=\"/console/\">{}", &html[..i + 6], &html[i + 6..]),
        None => format!("<base href=\"/console/\">{html}"),
    };
    // The body differs from the file's: its validators no longer describe it.
    for h in ["etag", "last-modified", "content-length"] {
        head.headers.remove(h);
    }
    head.headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Response::from_parts(head, Full::new(Bytes::from(html)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ui/dist` is committed, so a plain `cargo build` of a checkout embeds the dashboard
    /// (unless it was left out on purpose with `FASTFN_EMBED_UI=0`).
    #[test]
    fn a_plain_build_embeds_the_dashboard() {
        if option_env!("FASTFN_EMBED_UI") == Some("0") {
            return;
        }
        let index = EMBEDDED
            .iter()
            .find(|f| f.path == "/index.html")
            .expect("index.html embedded");
        let shell = String::from_utf8_lossy(index.bytes);
        for file in EMBEDDED.iter().filter(|f| f.path.starts_with("/assets/index-")) {
            assert!(shell.contains(&file.path[1..]), "the shell loads {}", file.path);
        }
        assert!(EMBEDDED.iter().any(|f| f.path.ends_with(".js")));
    }

    static FILES: &[EmbeddedFile] = &[
        EmbeddedFile {
            path: "/assets/app-1.js",
            etag: "\"a-14\"",
            bytes: b"console.log(1)",
        },
        EmbeddedFile {
            path: "/index.html",
            etag: "\"b-39\"",
            bytes: b"<html><head><title>x</title></head></html>",
        },
    ];

    fn with(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    async fn get(method: Method, rest: &str, headers: &HeaderMap) -> (u16, HeaderMap, String) {
        let resp = ConsoleUi::Embedded(FILES).serve(&method, rest, headers).await;
        let (head, body) = resp.into_parts();
        let Ok(body) = body.collect().await;
        (
            head.status.as_u16(),
            head.headers,
            String::from_utf8_lossy(&body.to_bytes()).into_owned(),
        )
    }

    #[tokio::test]
    async fn embedded_files_shell_and_base() {
        let none = HeaderMap::new();
        let (status, h, body) = get(Method::GET, "/assets/app-1.js", &none).await;
        assert_eq!((status, body.as_str()), (200, "console.log(1)"));
        assert_eq!(h[CONTENT_TYPE], "text/javascript; charset=utf-8");
        assert_eq!(h[CACHE_CONTROL], CACHE_HASHED);
        assert_eq!(h[ETAG], "\"a-14\"");
        // `/console` itself: the shell with a <base>, no validators (the body was changed).
        let (status, h, body) = get(Method::GET, "", &none).await;
        assert_eq!(status, 200);
        assert_eq!(
            body,
            "<html><head><base href=\"/console/\"><title>x</title></head></html>"
        );
        assert!(h.get(ETAG).is_none());
        // Client-side routes get the shell; a missing file with an extension is a 404.
        let (status, _, body) = get(Method::GET, "/gateway/routes", &none).await;
        assert_eq!((status, body.contains("<title>x</title>")), (200, true));
        assert_eq!(get(Method::GET, "/", &none).await.0, 200);
        assert_eq!(get(Method::GET, "/assets/missing.js", &none).await.0, 404);
        assert_eq!(get(Method::GET, "/../Cargo.toml", &none).await.0, 404);
        assert_eq!(get(Method::POST, "/index.html", &none).await.0, 404);
    }

    #[tokio::test]
    async fn embedded_revalidation_and_head() {
        let (status, h, body) = get(
            Method::GET,
            "/assets/app-1.js",
            &with(&[("if-none-match", "W/\"a-14\"")]),
        )
        .await;
        assert_eq!((status, body.as_str()), (304, ""));
        assert_eq!(h[ETAG], "\"a-14\"");
        let (status, _, _) = get(
            Method::GET,
            "/assets/app-1.js",
            &with(&[("if-none-match", "\"other\"")]),
        )
        .await;
        assert_eq!(status, 200);
        let (status, h, body) = get(Method::HEAD, "/assets/app-1.js", &none()).await;
        assert_eq!((status, body.as_str()), (200, ""));
        assert_eq!(h[CONTENT_LENGTH], "14");
    }

    fn none() -> HeaderMap {
        HeaderMap::new()
    }

    #[tokio::test]
    async fn not_built_says_how_to_build() {
        let ui = ConsoleUi::NotBuilt { ui_dir_set: false };
        let resp = ui.serve(&Method::GET, "", &with(&[("accept", "text/html")])).await;
        assert_eq!(resp.status(), 503);
        let Ok(body) = resp.into_body().collect().await;
        let body = String::from_utf8_lossy(&body.to_bytes()).into_owned();
        assert!(body.contains("npm run build") && body.contains("cargo build"), "{body}");
        let resp = ui.serve(&Method::GET, "/x", &none()).await;
        assert_eq!(resp.status(), 503);
        let Ok(body) = resp.into_body().collect().await;
        let v: serde_json::Value = serde_json::from_slice(&body.to_bytes()).expect("json");
        assert_eq!(v["error"], "console not built");
        assert!(v["hint"].as_str().is_some_and(|h| h.contains("npm run build")));
    }
}
