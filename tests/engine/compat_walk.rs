//! Gaps found by running the original's `test-openapi-native.sh` and re-walking the feature
//! inventory: the console API in the internal OpenAPI set, and the console's "New function"
//! for go (the original's console has a go template).

use crate::support::{copy_fixture, start_in};
use serde_json::json;

const CSRF: (&str, &str) = ("X-Fn-Request", "1");

/// Every internal path the original's helper (`openapi-internal-paths-present`) requires is
/// listed when internal operations are asked for, with the original's operation ids.
#[tokio::test(flavor = "multi_thread")]
async fn internal_openapi_lists_the_console_api() {
    let dir = copy_fixture("compat");
    let e = start_in(
        dir.path(),
        &[("FN_RUNTIMES", "python"), ("FN_OPENAPI_INCLUDE_INTERNAL", "1")],
    )
    .await;
    let spec = e.get("/_fn/openapi.json").await.json();
    for path in [
        "/_fn/function",
        "/_fn/function-config",
        "/_fn/function-env",
        "/_fn/function-code",
        "/_fn/invoke",
        "/_fn/jobs",
        "/_fn/jobs/{id}/result",
        "/_fn/logs",
        "/_fn/ui-state",
    ] {
        assert!(spec["paths"][path].is_object(), "missing {path}");
    }
    let get = &spec["paths"]["/_fn/function"]["get"];
    assert_eq!(get["operationId"], "internal_function_get");
    assert_eq!(get["tags"], json!(["internal"]));
    let params = get["parameters"].as_array().expect("parameters");
    let param = |name: &str| params.iter().find(|p| p["name"] == name).cloned().unwrap_or_default();
    assert_eq!(
        (&param("runtime")["required"], &param("name")["required"]),
        (&json!(true), &json!(true))
    );
    assert_eq!(param("version")["required"], false);
    assert_eq!(param("include_code")["schema"]["default"], "1");
    assert_eq!(
        spec["paths"]["/_fn/function-code"]["put"]["operationId"],
        "internal_function_code_put"
    );
    assert_eq!(
        spec["paths"]["/_fn/ui-state"]["get"]["operationId"],
        "internal_ui_state_get"
    );
    e.stop().await;

    // Off by default: no `/_fn` path at all.
    let e = start_in(dir.path(), &[("FN_RUNTIMES", "python")]).await;
    let spec = e.get("/_fn/openapi.json").await.json();
    let paths = spec["paths"].as_object().expect("paths");
    assert!(paths.keys().all(|p| !p.starts_with("/_fn")), "{:?}", paths.keys());
    e.stop().await;
}

/// `POST /_fn/function?runtime=go` without `code` writes the go template (it was refused:
/// "no template"), and the function it creates builds and answers.
#[tokio::test(flavor = "multi_thread")]
async fn console_creates_a_go_function_from_its_template() {
    let go = std::process::Command::new("go")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !go {
        assert!(std::env::var_os("CI").is_none(), "go must be installed in CI");
        eprintln!("SKIPPED: go is not installed");
        return;
    }
    let dir = copy_fixture("compat");
    let e = start_in(
        dir.path(),
        &[("FN_RUNTIMES", "python,go"), ("FN_CONSOLE_WRITE_ENABLED", "1")],
    )
    .await;
    let r = e
        .send(
            "POST",
            "/_fn/function?runtime=go&name=go-probe",
            &[CSRF, ("Content-Type", "application/json")],
            Some(br#"{"methods":["GET"]}"#),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let code = std::fs::read_to_string(dir.path().join("go-probe/handler.go")).expect("handler.go");
    assert!(code.contains("func handler(event map[string]interface{})"), "{code}");
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("go-probe/fn.config.json")).expect("config"))
            .expect("json");
    assert_eq!(
        (&cfg["runtime"], &cfg["entrypoint"]),
        (&json!("go"), &json!("handler.go"))
    );
    // The first call builds it (a cold `go build` can be slow on a loaded machine).
    let mut last = None;
    for _ in 0..60 {
        let r = e.send("GET", "/go-probe?x=1", &[], None).await;
        if r.status == 200 {
            last = Some(r);
            break;
        }
        last = Some(r);
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
    let r = last.expect("a reply");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["query"], json!({"x": "1"}), "{}", r.text());
    e.stop().await;
}

/// `group` of a `fn.config.json` (the original console's grouping) is in the function's
/// `metadata`, as the original's `GET /_fn/function` gives it; it was read by nothing.
#[tokio::test(flavor = "multi_thread")]
async fn function_detail_carries_the_console_group() {
    let e = crate::support::start("compat_walk", &[("FN_RUNTIMES", "python")]).await;
    let detail = e.get("/_fn/function?runtime=python&name=grouped").await.json();
    assert_eq!(detail["metadata"]["group"], "billing", "{detail}");
    assert_eq!(detail["metadata"]["handler_file"], "handler.py", "{detail}");
    assert_eq!(e.get("/grouped").await.text(), "grouped");
    e.stop().await;
}

/// An inference backend this build does not have (`FN_PY_INFER_BACKEND=pipreqs`) is not
/// ignored in silence: `/_fn/health` `warnings` names it. `native` asks for nothing.
#[tokio::test(flavor = "multi_thread")]
async fn unsupported_inference_backends_are_warned() {
    let e = crate::support::start(
        "compat_walk",
        &[
            ("FN_RUNTIMES", "python"),
            ("FN_PY_INFER_BACKEND", "pipreqs"),
            ("FN_NODE_INFER_BACKEND", "native"),
        ],
    )
    .await;
    let h = e.get("/_fn/health").await.json();
    let warnings: Vec<String> = serde_json::from_value(h["warnings"].clone()).expect("warnings");
    let backend: Vec<&String> = warnings.iter().filter(|w| w.contains("INFER_BACKEND")).collect();
    assert_eq!(
        backend,
        ["FN_PY_INFER_BACKEND=pipreqs is not supported by this build: imports are inferred by the native backend"],
        "{warnings:?}"
    );
    e.stop().await;
}
