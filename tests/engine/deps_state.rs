//! `GET /_fn/function` carries `metadata.dependency_resolution` as the original's console API
//! does: the function folder's `.fastfn-deps-state.json` (what inference found, from which
//! manifest, the last install's status and error). Strict inference fails before any
//! installer runs, so no network is needed.

use crate::support::{copy_fixture, start_in};
use serde_json::{json, Value};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn function_detail_reports_dependency_resolution() {
    let dir = copy_fixture("deps_state");
    let e = start_in(
        dir.path(),
        &[
            ("FN_AUTO_REQUIREMENTS", "1"),
            ("FN_AUTO_NODE_DEPS", "1"),
            ("FN_AUTO_INFER_PY_DEPS", "1"),
            ("FN_AUTO_INFER_NODE_DEPS", "1"),
            ("FN_AUTO_INFER_WRITE_MANIFEST", "1"),
            ("FN_AUTO_INFER_STRICT", "1"),
        ],
    )
    .await;
    // The route answers FastFN's 500 naming the import.
    let r = e.get("/py-unknown-sdk").await;
    assert_eq!(r.status, 500, "{}", r.text());
    assert!(
        r.text().contains("unresolved imports AcmeInternalClient"),
        "{}",
        r.text()
    );
    let r = e.get("/node-bad-spec").await;
    assert_eq!(r.status, 500, "{}", r.text());
    assert!(r.text().contains("unresolved imports @broken/"), "{}", r.text());

    for (runtime, name, import) in [
        ("python", "py-unknown-sdk", "AcmeInternalClient"),
        ("node", "node-bad-spec", "@broken/"),
    ] {
        let path = format!("/_fn/function?runtime={runtime}&name={name}");
        let mut detail = Value::Null;
        // The state file is written when the failure is found; wait for it generously.
        for _ in 0..300 {
            detail = e.get(&path).await.json();
            if !detail["metadata"]["dependency_resolution"].is_null() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let dep = &detail["metadata"]["dependency_resolution"];
        assert_eq!(dep["runtime"], runtime, "{detail}");
        assert_eq!(dep["last_install_status"], "error", "{dep}");
        assert_eq!(dep["mode"], "inferred", "{dep}");
        assert_eq!(dep["unresolved_imports"], json!([import]), "{dep}");
        assert!(dep["last_error"].as_str().is_some_and(|m| m.contains(import)), "{dep}");
        assert!(detail["metadata"]["handler_file"]
            .as_str()
            .is_some_and(|f| f.starts_with("handler.")));
    }

    // A function without dependencies has no record: null, as in the original.
    let detail = e.get("/_fn/function?runtime=python&name=plain").await.json();
    assert_eq!(detail["metadata"]["handler_file"], "handler.py", "{detail}");
    assert_eq!(detail["metadata"]["dependency_resolution"], Value::Null, "{detail}");
    e.stop().await;
}
