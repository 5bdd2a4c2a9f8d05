//! Dependencies as FastFN handles them (Compatibility II), with real pip and npm against the
//! registries: a first request waits for its function's install and is served; inference
//! writes the manifest it needs; shared packs install once for the functions naming them;
//! strict inference, a missing pack and a missing package fail clearly. One
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
async fn first_requests_wait_inference_writes_manifests_packs_are_shared() {
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
    let (pack_a, pack_b, pack_node, pack_missing) = tokio::join!(
        e.get("/pack-a"),
        e.get("/pack-b"),
        e.get("/pack-node"),
        e.get("/pack-missing"),
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

    // Shared packs: installed once, imported by each function that names them.
    for r in [&pack_a, &pack_b] {
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json(), json!({"six": "1.16.0", "from_pack": true}));
    }
    assert!(
        !root.join("pack-a/requirements.txt").exists(),
        "what the pack provides is not inferred into the function"
    );
    assert_eq!(pack_node.status, 200, "{}", pack_node.text());
    assert_eq!(pack_node.json(), json!({"isNumber": true, "fromPack": true}));
    assert_eq!(pack_missing.status, 500, "{}", pack_missing.text());
    assert_eq!(
        pack_missing.json()["error"],
        "shared pack not found: nope (looked in: .fastfn/packs/python/nope)"
    );
    let packs = e.get("/_fn/packs").await;
    assert_eq!(packs.status, 200, "{}", packs.text());
    let listed: Vec<(String, String, serde_json::Value)> = packs.json()["packs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["state"].as_str().unwrap().to_string(),
                p["used_by"].clone(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            ("common".to_string(), "ready".to_string(), json!(["pack-a", "pack-b"])),
            ("nodecommon".to_string(), "ready".to_string(), json!(["pack-node"])),
        ]
    );

    // The installers' output came as progress events while they ran; the pack ran pip once.
    let mut progress = std::collections::BTreeSet::new();
    let mut pack_installs = 0;
    while let Ok(ev) = events.try_recv() {
        match ev {
            EngineEvent::DepsProgress { function, manager, .. } => {
                progress.insert((function, format!("{manager:?}")));
            }
            EngineEvent::DepsInstalling { function, .. } if function == ".fastfn/packs/python/common" => {
                pack_installs += 1
            }
            _ => {}
        }
    }
    assert!(pack_installs <= 1, "{pack_installs} installs of one pack");
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

/// `FN_PREINSTALL_PY_DEPS_ON_START=0`: nothing is installed at start; the first request
/// starts pip, waits for it and is served.
#[tokio::test(flavor = "multi_thread")]
async fn without_preinstall_the_first_request_installs_and_waits() {
    let pip = std::process::Command::new("python3")
        .args(["-m", "pip", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !pip {
        assert!(std::env::var_os("CI").is_none(), "pip must be installed in CI");
        eprintln!("SKIPPED: pip is not available");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("lazy");
    std::fs::create_dir_all(&f).unwrap();
    std::fs::write(f.join("requirements.txt"), "six==1.16.0\n").unwrap();
    std::fs::write(
        f.join("handler.py"),
        "import six\n\n\ndef handler(event):\n    return {\"six\": six.__version__}\n",
    )
    .unwrap();
    std::fs::write(f.join("fn.config.json"), r#"{"timeout_ms": 120000}"#).unwrap();
    let e = start_in(
        dir.path(),
        &[("FN_RUNTIMES", "python"), ("FN_PREINSTALL_PY_DEPS_ON_START", "0")],
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let health = e.engine.health();
    assert_eq!(health["deps"][0]["state"], "deferred", "{}", health["deps"]);
    assert!(!f.join(".deps").exists(), "nothing installed before the first request");
    let r = e.get("/lazy").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), json!({"six": "1.16.0"}));
    e.stop().await;
}
