//! Dependencies as FastFN handles them (Compatibility II), with real pip and npm against the
//! registries: a first request waits for its function's install and is served; inference
//! writes the manifest it needs; strict inference and a missing package fail clearly. One
//! engine serves every case so the installs overlap.

use crate::support::{copy_fixture, start_in, Resp};
use fastfn::events::EngineEvent;
use serde_json::json;

fn has(tool: &str) -> bool {
    std::process::Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `deps;dur=…` of `Server-Timing`, in milliseconds.
fn deps_ms(r: &Resp) -> f64 {
    let timing = r.header("server-timing").unwrap_or_default();
    timing
        .split(", ")
        .find_map(|p| p.strip_prefix("deps;dur="))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no deps stage in Server-Timing: {timing:?}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn first_requests_wait_for_installs_and_inference_writes_manifests() {
    let tools = ["npm", "python3"].iter().all(|t| has(t))
        && std::process::Command::new("python3")
            .args(["-m", "pip", "--version"])
            .output()
            .is_ok_and(|o| o.status.success());
    if !tools {
        assert!(std::env::var_os("CI").is_none(), "pip and npm must be installed in CI");
        eprintln!("SKIPPED: pip or npm is not available");
        return;
    }
    let dir = copy_fixture("deps_compat");
    let root = dir.path();
    let e = start_in(root, &[("FN_RUNTIMES", "node,python")]).await;
    let mut events = e.engine.events().subscribe();
    // Every first request at once, while pip and npm run: none answers 503 "preparing".
    let (py_wait, node_wait, py_infer, node_infer, unresolved, missing) = tokio::join!(
        e.get("/py-wait"),
        e.get("/node-wait"),
        e.get("/py-infer"),
        e.get("/node-infer"),
        e.get("/py-unresolved"),
        e.get("/py-missing"),
    );

    assert_eq!(py_wait.status, 200, "{}", py_wait.text());
    assert_eq!(py_wait.json(), json!({"six": "1.16.0"}));
    assert_eq!(node_wait.status, 200, "{}", node_wait.text());
    assert_eq!(node_wait.json(), json!({"isNumber": true}));
    // The wait shows as its own stage (an install takes well over 50 ms).
    for r in [&py_wait, &node_wait, &py_infer, &node_infer] {
        assert!(deps_ms(r) > 50.0, "{:?}", r.header("server-timing"));
    }

    // Inference: the manifest written from the imports, installed, lock and state files.
    assert_eq!(py_infer.status, 200, "{}", py_infer.text());
    assert_eq!(py_infer.json()["json"], "1");
    let req = std::fs::read_to_string(root.join("py-infer/requirements.txt")).unwrap();
    assert_eq!(
        req.lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .collect::<Vec<_>>(),
        ["six"]
    );
    let lock = std::fs::read_to_string(root.join("py-infer/requirements.lock.txt")).unwrap();
    assert!(lock.lines().any(|l| l.starts_with("six==")), "{lock}");
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("py-infer/.fastfn-deps-state.json")).unwrap()).unwrap();
    assert_eq!(
        (
            &state["mode"],
            &state["last_install_status"],
            &state["resolved_packages"]
        ),
        (&json!("inferred"), &json!("ok"), &json!(["six"]))
    );
    assert_eq!(node_infer.status, 200, "{}", node_infer.text());
    assert_eq!(node_infer.json(), json!({"isNumber": true, "sep": "/"}));
    let pkg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("node-infer/package.json")).unwrap()).unwrap();
    assert_eq!(pkg["dependencies"], json!({"is-number": "*"}), "node:path is a builtin");
    assert!(root.join("node-infer/.fastfn-deps-state.json").is_file());

    // Strict inference: FastFN's message, naming the import, as a 500.
    assert_eq!(unresolved.status, 500, "{}", unresolved.text());
    assert_eq!(
        unresolved.json()["error"],
        "python dependency inference failed: unresolved imports PIL. Add explicit requirements.txt entries or disable FN_AUTO_INFER_STRICT."
    );

    // A package that does not exist: the 503 names it, and (debug headers) pip's last lines.
    assert_eq!(missing.status, 503, "{}", missing.text());
    assert_eq!(
        missing.header("retry-after"),
        None,
        "a failure is not retried by waiting"
    );
    let body = missing.json();
    assert_eq!(body["package"], "this-package-does-not-exist-fastfn==0.0.1");
    assert!(
        body["output"]
            .as_str()
            .unwrap_or_default()
            .contains("No matching distribution"),
        "{body}"
    );
    let health = e.engine.health();
    let entry = health["deps"]
        .as_array()
        .and_then(|a| a.iter().find(|d| d["function"] == "py-missing").cloned())
        .unwrap_or_default();
    assert_eq!(entry["package"], "this-package-does-not-exist-fastfn==0.0.1", "{entry}");

    // The installers' output came as progress events while they ran.
    let mut progress = std::collections::BTreeSet::new();
    while let Ok(ev) = events.try_recv() {
        if let EngineEvent::DepsProgress { function, manager, .. } = ev {
            progress.insert((function, format!("{manager:?}")));
        }
    }
    for want in [("py-wait", "Pip"), ("node-wait", "Npm"), ("py-missing", "Pip")] {
        assert!(
            progress.contains(&(want.0.to_string(), want.1.to_string())),
            "no progress from {want:?}: {progress:?}"
        );
    }

    // Once installed, a request does not wait.
    let again = e.get("/py-wait").await;
    assert_eq!((again.status, deps_ms(&again)), (200, 0.0));
    e.stop().await;
}
