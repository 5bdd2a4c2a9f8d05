//! Static assets through the real gateway (contract §2.6 steps 1 and 6, §5.5): raw request
//! targets go over the wire exactly as written, so encodings reach the assets module as a
//! client sends them. The module's own table of 66 cases lives beside it (`src/assets.rs`).

use crate::support::{send_raw, start};
use serde_json::json;

const SECRETS: [&str; 2] = ["SECRET-SIBLING-FUNCTION-SOURCE", "TOP-SECRET-DOTFILE"];

#[tokio::test(flavor = "multi_thread")]
async fn traversal_and_hidden_files_are_refused_over_http() {
    let e = start("assets", &[]).await;
    e.ready().await;
    let attempts = [
        "/%2e%2e/api/_secret.py",
        "/%2E%2E/api/_secret.py",
        "/..%2fapi/_secret.py",
        "/%252e%252e/api/_secret.py",
        "/app/..%5c..%5capi/_secret.py",
        "/.env",
        "/%2eenv",
        "/app/%00.js",
        "/api/_secret.py",
        "/app/../../api/_secret.py",
        "/%c0%ae%c0%ae/api/_secret.py",
    ];
    for target in attempts {
        let raw = format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/html\r\nConnection: close\r\n\r\n");
        let r = send_raw(e.addr(), raw.as_bytes()).await;
        assert!(matches!(r.status, 400 | 404), "{target}: {} {}", r.status, r.text());
        for secret in SECRETS {
            assert!(!r.text().contains(secret), "{target} leaked {secret}");
        }
    }
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn files_etags_and_the_spa_fallback() {
    let e = start("assets", &[]).await;
    e.ready().await;
    let r = e.get("/app/main.js").await;
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type").unwrap_or("").contains("javascript"),
        "{:?}",
        r.header("content-type")
    );
    let etag = r.header("etag").expect("etag").to_string();
    assert!(etag.starts_with("W/\""), "{etag}");
    assert!(r.header("cache-control").unwrap_or("").contains("must-revalidate"));
    let r = e.send("GET", "/app/main.js", &[("If-None-Match", &etag)], None).await;
    assert_eq!((r.status, r.body.len()), (304, 0));

    // Functions still answer; a navigation to an unknown path gets the shell; an unknown file
    // with an extension or an API call without HTML intent does not.
    assert_eq!(e.get("/api/hello").await.json(), json!({"hello": "from a function"}));
    let r = e
        .send("GET", "/dashboard/settings", &[("Accept", "text/html")], None)
        .await;
    assert_eq!(r.status, 200);
    assert!(r.text().contains("spa shell"));
    let r = e.send("GET", "/missing.js", &[("Accept", "text/html")], None).await;
    assert_eq!(r.status, 404);
    let r = e
        .send("GET", "/api/nothing", &[("Accept", "application/json")], None)
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json(), json!({"error": "not found"}));
    let r = e.send("POST", "/app/main.js", &[], Some(b"x")).await;
    assert_eq!(r.status, 404, "assets answer GET/HEAD only");
    e.stop().await;
}

/// A root `assets.directory` outside the functions root turns assets off with a warning in
/// `/_fn/health`; every route keeps serving (docs/compat.md "Assets").
#[tokio::test(flavor = "multi_thread")]
async fn an_assets_folder_outside_the_root_turns_assets_off_not_routes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("fns");
    std::fs::create_dir_all(root.join("api")).expect("mkdir");
    std::fs::create_dir_all(dir.path().join("public")).expect("mkdir");
    std::fs::write(dir.path().join("public/index.html"), "OUTSIDE").expect("write");
    std::fs::write(root.join("fn.config.json"), r#"{"assets":{"directory":"../public"}}"#).expect("write");
    std::fs::write(root.join("api/hello.py"), "def handler(e):\n    return 'hello'\n").expect("write");
    let e = crate::support::start_in(&root, &[("FN_RUNTIMES", "python")]).await;
    let r = e.get("/api/hello").await;
    assert_eq!((r.status, r.text().as_str()), (200, "hello"));
    assert!(!e.get("/").await.text().contains("OUTSIDE"));
    let health = e.engine.health();
    let warnings = health["warnings"].as_array().cloned().unwrap_or_default();
    assert!(
        warnings.iter().any(|w| w
            .as_str()
            .is_some_and(|w| w.contains("assets.directory") && w.contains("assets are off"))),
        "{warnings:?}"
    );
    assert!(health.get("config_errors").is_none(), "{health}");
    e.stop().await;
}
