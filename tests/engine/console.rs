//! `/console` from a binary built with `cargo build` alone: the dashboard when one is built
//! (in the source tree or embedded by `build.rs`), else a 503 that says how to build it,
//! never a bare 404.

use crate::support::{fixture, request, spawn_engine};
use std::path::Path;

/// Whether this build has a dashboard to serve without `FN_UI_DIR`.
fn has_dashboard() -> bool {
    fastfn::console::embedded_files() > 0
        || Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("ui/dist/index.html")
            .is_file()
}

/// Without `FN_UI_DIR`: the dashboard this build has, or the 503 with the build commands.
#[tokio::test(flavor = "multi_thread")]
async fn console_from_a_plain_build() {
    let dir = fixture("compat");
    let e = spawn_engine(&["dev", dir.to_str().expect("utf-8")], &[("FN_UI_ENABLED", "1")]).await;
    let r = request(e.addr(), "GET", "/console", &[("Accept", "text/html")], None).await;
    if has_dashboard() {
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(r.text().contains("<base href=\"/console/\">"), "{}", r.text());
        // A client-side route gets the same shell.
        let r = request(e.addr(), "GET", "/console/gateway", &[("Accept", "text/html")], None).await;
        assert_eq!(r.status, 200, "{}", r.text());
    } else {
        assert_eq!(r.status, 503, "{}", r.text());
        assert!(r.text().contains("npm run build"), "{}", r.text());
    }
    e.stop().await;
}

/// A folder without a dashboard: 503, an HTML page for a browser and JSON with the hint for
/// anything else. The engine keeps serving everything else.
#[tokio::test(flavor = "multi_thread")]
async fn console_not_built_says_how_to_build_it() {
    let empty = tempfile::tempdir().expect("temp");
    let dir = fixture("compat");
    let e = spawn_engine(
        &["dev", dir.to_str().expect("utf-8")],
        &[
            ("FN_UI_ENABLED", "1"),
            ("FN_UI_DIR", empty.path().to_str().expect("utf-8")),
        ],
    )
    .await;
    let r = request(e.addr(), "GET", "/console", &[("Accept", "text/html,*/*")], None).await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    assert!(r.text().contains("FN_UI_DIR"), "{}", r.text());
    let r = request(e.addr(), "GET", "/console/assets/app.js", &[], None).await;
    assert_eq!(r.status, 503, "{}", r.text());
    let v = r.json();
    assert_eq!(v["error"], "console not built");
    assert!(v["hint"].as_str().is_some_and(|h| h.contains("FN_UI_DIR")), "{v}");
    assert_eq!(request(e.addr(), "GET", "/_fn/health", &[], None).await.status, 200);
    // The guard still comes first: a remote client learns nothing.
    let r = request(e.addr(), "GET", "/console", &[("X-Forwarded-For", "8.8.8.8")], None).await;
    assert_eq!(r.status, 403, "{}", r.text());
    e.stop().await;
}
