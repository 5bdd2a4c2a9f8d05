//! Real builds with the machine's cargo / go. Rust tests share one cargo target dir (under the
//! project's `target/`) so `serde_json` is compiled once; each test has its own functions root.
//! Tests skip (with a message) when the toolchain is not on PATH.

use super::*;
use serde_json::{json, Value};
use std::process::Stdio;
use tokio::sync::broadcast;

const T: Duration = Duration::from_secs(10);

fn toolchain(kind: RuntimeKind) -> Option<PathBuf> {
    let name = if kind == RuntimeKind::Go { "go" } else { "cargo" };
    match which::which(name) {
        Ok(p) => Some(p),
        Err(_) => {
            eprintln!("SKIPPED: `{name}` is not on PATH (the {kind} compiled runtime cannot be tested here)");
            None
        }
    }
}

struct Env {
    root: tempfile::TempDir,
    _sockets: tempfile::TempDir,
    compiled: Arc<Compiled>,
    events: broadcast::Receiver<EngineEvent>,
}

/// A functions root holding copies of `fixtures/compiled/<lang>/<names>`; `None` = skip.
fn setup(kind: RuntimeKind, names: &[&str]) -> Option<Env> {
    let tool = toolchain(kind)?;
    let lang = kind.name();
    let root = tempfile::tempdir().unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/compiled")
        .join(lang);
    for name in names {
        let dst = root.path().join(name);
        std::fs::create_dir_all(&dst).unwrap();
        for f in std::fs::read_dir(fixtures.join(name)).unwrap() {
            let f = f.unwrap();
            std::fs::copy(f.path(), dst.join(f.file_name())).unwrap();
        }
    }
    let sockets = tempfile::tempdir().unwrap();
    let bus = EventBus::default();
    let events = bus.subscribe();
    let mut compiled = Compiled::new(kind, root.path().into(), tool, sockets.path().into(), bus);
    if kind == RuntimeKind::Rust {
        let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/compiled-tests");
        compiled = compiled.with_cargo_target_dir(target);
    }
    Some(Env {
        root,
        _sockets: sockets,
        compiled: Arc::new(compiled),
        events,
    })
}

fn request(params: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "fn": "x",
        "event": {
            "method": "GET",
            "path": "/x",
            "params": params,
            "query": {},
            "headers": {},
            "env": {"FN_ADMIN_SECRET": "no", "FROM_GATEWAY": "yes"},
        }
    }))
    .unwrap()
}

async fn call(env: &Env, entry: &str, params: Value) -> Value {
    let reply = env
        .compiled
        .call(entry, &request(params), T)
        .await
        .unwrap_or_else(|e| panic!("{entry}: {e:?}"));
    serde_json::from_slice(&reply).unwrap()
}

fn builds_started(env: &mut Env) -> Vec<String> {
    let mut out = Vec::new();
    while let Ok(ev) = env.events.try_recv() {
        if let EngineEvent::BuildStarted { function, .. } = ev {
            out.push(function);
        }
    }
    out
}

fn alive(pid: u32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), None).is_ok()
}

#[test]
fn entries_are_validated() {
    let rust = RuntimeKind::Rust;
    assert_eq!(
        normalize_entry("hello/handler.rs", rust).as_deref(),
        Some("hello/handler.rs")
    );
    assert_eq!(normalize_entry("./a/./b.rs", rust).as_deref(), Some("a/b.rs"));
    for bad in [
        "../x.rs",
        "/etc/x.rs",
        "a/../../x.rs",
        "hello/handler.go",
        ".rust-build/x.rs",
        "",
        "a/",
    ] {
        assert_eq!(normalize_entry(bad, rust), None, "{bad}");
    }
    assert_eq!(normalize_entry("a/b.go", RuntimeKind::Go).as_deref(), Some("a/b.go"));
}

#[test]
fn build_output_is_trimmed_to_the_error() {
    let text = "   Compiling serde v1\n   Compiling x v0.1.0\nerror[E0308]: mismatched types\n --> a.rs:1\n";
    assert_eq!(trim_output(text), "error[E0308]: mismatched types\n --> a.rs:1");
    let long = format!("error: x\n{}", "y".repeat(20_000));
    let t = trim_output(&long);
    assert!(t.len() <= MAX_BUILD_OUTPUT, "{}", t.len());
    assert!(t.ends_with("… (truncated)"));
}

#[test]
fn go_handler_gets_package_main_and_a_line_directive() {
    let src = "// c\npackage handler\n\nfunc handler() {}\n";
    assert_eq!(
        go_handler_source(src, "a/h.go"),
        "//line a/h.go:1\n// c\npackage main\n\nfunc handler() {}\n"
    );
}

#[tokio::test]
async fn unknown_and_traversal_entries_are_unavailable() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("ok.rs"), "").unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("evil.rs"), "").unwrap();
    std::os::unix::fs::symlink(outside.path().join("evil.rs"), root.path().join("link.rs")).unwrap();
    let c = Compiled::new(
        RuntimeKind::Rust,
        root.path().into(),
        "/nonexistent/cargo".into(),
        root.path().into(),
        EventBus::default(),
    );
    for entry in ["../ok.rs", "missing.rs", "link.rs", "ok.go"] {
        match c.call(entry, b"{}", T).await {
            Err(CompiledError::Unavailable(m)) => assert_eq!(m, format!("unknown function: {entry}")),
            other => panic!("{entry}: {other:?}"),
        }
    }
    // A real entry with a missing toolchain: Unavailable, naming the toolchain.
    match c.call("ok.rs", b"{}", T).await {
        Err(CompiledError::Unavailable(m)) => assert!(m.contains("rust toolchain unavailable"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn rust_hello_replies_with_a_json_body() {
    let Some(env) = setup(RuntimeKind::Rust, &["hello"]) else {
        return;
    };
    let reply = call(&env, "hello/handler.rs", json!({})).await;
    assert_eq!(
        reply,
        json!({
            "status": 200,
            "headers": {"X-Hello": "1", "Content-Type": "application/json"},
            "body": "{\"hello\":\"world\",\"method\":\"GET\"}",
        })
    );
    assert!(env.root.path().join("hello/.rust-build/handler/Cargo.toml").is_file());
    env.compiled.stop().await;
}

#[tokio::test]
async fn rust_params_are_merged_into_the_event() {
    let Some(env) = setup(RuntimeKind::Rust, &["params"]) else {
        return;
    };
    let reply = call(&env, "params/handler.rs", json!({"id": "42", "method": "EVIL"})).await;
    assert_eq!(reply["status"], 201);
    let body: Value = serde_json::from_str(reply["body"].as_str().unwrap()).unwrap();
    assert_eq!(
        body,
        json!({
            "id": "42",
            "method": "GET",
            "params": {"id": "42", "method": "EVIL"},
            "greeting": "hi",
            "admin": false,
            "version": "default",
        })
    );
    let reply = call(&env, "params/handler.rs", json!({"mode": "nostatus"})).await;
    assert_eq!(reply["status"], 500);
    assert_eq!(reply["body"], "{\"error\":\"invalid handler response\"}");
    env.compiled.stop().await;
}

#[tokio::test]
async fn rust_library_package_entry_with_crate_paths_and_captured_output() {
    let Some(mut env) = setup(RuntimeKind::Rust, &[]) else {
        return;
    };
    let dir = env.root.path().join("libfn");
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        "[package]\nname = \"lib-fn\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\nitoa = \"1\"\nserde_json = \"1\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("src/lib.rs"),
        "mod helper;\nuse serde_json::{json, Value};\n\
         pub fn handler(_e: Value) -> Value {\n  print!(\"no newline {}\", std::env::var(\"FROM_GATEWAY\").unwrap_or_default());\n  eprintln!(\"err line\");\n  \
         json!({\"status\": 200, \"body\": crate::helper::text(7)})\n}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("src/helper.rs"),
        "pub fn text(n: u64) -> String { itoa::Buffer::new().format(n).to_string() }\n",
    )
    .unwrap();
    // A cargo library package: built as a dependency, so `crate::helper` is the user's crate.
    let reply = call(&env, "libfn/src/lib.rs", json!({})).await;
    assert_eq!(reply["status"], 200, "{reply}");
    assert_eq!(reply["body"], "7");
    // Per call: the unterminated print is flushed into this reply, not the next one; the
    // call's env is in the process env while it runs.
    assert_eq!(reply["stdout"], "no newline yes");
    assert_eq!(reply["stderr"], "err line\n");
    let again = call(&env, "libfn/src/lib.rs", json!({})).await;
    assert_eq!(
        (&again["stdout"], &again["stderr"]),
        (&json!("no newline yes"), &json!("err line\n"))
    );
    assert!(
        dir.join(".rust-build/lib/Cargo.toml").is_file(),
        "built in the function folder"
    );
    // A helper change rebuilds.
    std::fs::write(
        dir.join("src/helper.rs"),
        "pub fn text(n: u64) -> String { format!(\"n={n}\") }\n",
    )
    .unwrap();
    assert_eq!(call(&env, "libfn/src/lib.rs", json!({})).await["body"], "n=7");
    assert_eq!(builds_started(&mut env).len(), 2);
    // Compiler messages name the user's files relative to the functions root.
    std::fs::write(dir.join("src/helper.rs"), "pub fn text(n: u64) -> String { n }\n").unwrap();
    let err = env
        .compiled
        .call("libfn/src/lib.rs", &request(json!({})), T)
        .await
        .unwrap_err();
    let CompiledError::Build { output, .. } = err else {
        panic!("{err:?}");
    };
    assert!(output.contains("libfn/src/helper.rs"), "{output}");
    assert!(!output.contains(&env.root.path().display().to_string()), "{output}");
    env.compiled.stop().await;
}

#[tokio::test]
async fn go_output_is_captured_per_call() {
    let Some(env) = setup(RuntimeKind::Go, &[]) else {
        return;
    };
    let dir = env.root.path().join("printer");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("handler.go"),
        "package main\n\nimport (\n\t\"fmt\"\n\t\"os\"\n)\n\n\
         func handler(e map[string]interface{}) map[string]interface{} {\n\
         \tfmt.Println(\"out\", e[\"n\"])\n\tfmt.Fprint(os.Stderr, \"err\")\n\
         \treturn map[string]interface{}{\"status\": 200, \"body\": \"ok \" + os.Getenv(\"FROM_GATEWAY\")}\n}\n",
    )
    .unwrap();
    for n in ["1", "2"] {
        let reply = call(&env, "printer/handler.go", json!({"n": n})).await;
        // The call's env is in the process env while it runs.
        assert_eq!(reply["body"], "ok yes", "{reply}");
        assert_eq!(reply["stdout"], format!("out {n}\n"));
        assert_eq!(reply["stderr"], "err");
    }
    env.compiled.stop().await;
}

#[tokio::test]
async fn go_call_past_its_timeout_does_not_hold_the_next_ones() {
    let Some(env) = setup(RuntimeKind::Go, &[]) else {
        return;
    };
    let dir = env.root.path().join("sleepy");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("handler.go"),
        "package main\n\nimport \"time\"\n\n\
         func handler(e map[string]interface{}) map[string]interface{} {\n\
         \tif e[\"sleep\"] == \"yes\" {\n\t\ttime.Sleep(30 * time.Second)\n\t}\n\
         \treturn map[string]interface{}{\"status\": 200, \"body\": \"awake\"}\n}\n",
    )
    .unwrap();
    let entry = "sleepy/handler.go";
    assert_eq!(call(&env, entry, json!({})).await["body"], "awake");
    let first = env.compiled.pid(entry).unwrap();
    let r = env
        .compiled
        .call(entry, &request(json!({"sleep": "yes"})), Duration::from_millis(300))
        .await;
    assert!(matches!(r, Err(CompiledError::Timeout)), "{r:?}");
    // Calls run one at a time in a process: without stopping the stuck one, this would wait
    // 30 s behind it.
    let t0 = Instant::now();
    assert_eq!(call(&env, entry, json!({})).await["body"], "awake");
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    assert_ne!(env.compiled.pid(entry), Some(first), "a fresh process");
    env.compiled.stop().await;
}

#[tokio::test]
async fn rust_panic_is_a_500_reply() {
    let Some(env) = setup(RuntimeKind::Rust, &["panic"]) else {
        return;
    };
    let reply = call(&env, "panic/handler.rs", json!({})).await;
    assert_eq!(reply["status"], 500);
    assert_eq!(reply["headers"]["Content-Type"], "application/json");
    assert_eq!(reply["body"], "{\"error\":\"handler panicked: boom\"}");
    // The process survives its handler's panic.
    let reply = call(&env, "panic/handler.rs", json!({"n": 1})).await;
    assert_eq!(reply["body"], "{\"error\":\"invalid handler response\"}");
    env.compiled.stop().await;
}

#[tokio::test]
async fn rust_compile_error_carries_the_compiler_message() {
    let Some(mut env) = setup(RuntimeKind::Rust, &["broken"]) else {
        return;
    };
    let err = env.compiled.call("broken/handler.rs", &request(json!({})), T).await;
    let Err(CompiledError::Build { runtime, output }) = err else {
        panic!("{err:?}")
    };
    assert_eq!(runtime, RuntimeKind::Rust);
    assert!(output.contains("mismatched types"), "{output}");
    assert!(output.contains("broken/handler.rs"), "{output}");
    assert!(!output.contains("Compiling"), "{output}");
    let mut finished = None;
    while let Ok(ev) = env.events.try_recv() {
        if let EngineEvent::BuildFinished { ok, message, .. } = ev {
            finished = Some((ok, message));
        }
    }
    assert_eq!(finished, Some((false, output.clone())));
    // Unchanged file: the same error at once, no second build.
    let again = env.compiled.call("broken/handler.rs", &request(json!({})), T).await;
    assert!(matches!(again, Err(CompiledError::Build { output: o, .. }) if o == output));
    assert!(builds_started(&mut env).is_empty());
}

#[tokio::test]
async fn rust_changed_handler_is_rebuilt() {
    let Some(mut env) = setup(RuntimeKind::Rust, &["hello"]) else {
        return;
    };
    let entry = "hello/handler.rs";
    assert_eq!(
        call(&env, entry, json!({})).await["body"],
        "{\"hello\":\"world\",\"method\":\"GET\"}"
    );
    let pid1 = env.compiled.pid(entry).unwrap();
    // Same content, new mtime: no rebuild.
    let file = env.root.path().join(entry);
    let src = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, &src).unwrap();
    assert_eq!(call(&env, entry, json!({})).await["status"], 200);
    assert_eq!(env.compiled.pid(entry), Some(pid1));
    std::fs::write(&file, src.replace("\"world\"", "\"again\"")).unwrap();
    assert_eq!(
        call(&env, entry, json!({})).await["body"],
        "{\"hello\":\"again\",\"method\":\"GET\"}"
    );
    let pid2 = env.compiled.pid(entry).unwrap();
    assert_ne!(pid1, pid2);
    assert!(
        !alive(pid1) || {
            tokio::time::sleep(Duration::from_millis(200)).await;
            !alive(pid1)
        }
    );
    assert_eq!(builds_started(&mut env), [entry, entry]);
    // Only the current binary is kept.
    let bins = std::fs::read_dir(env.root.path().join("hello/.rust-build/handler/bin"))
        .unwrap()
        .count();
    assert_eq!(bins, 1);
    env.compiled.stop().await;
}

#[tokio::test]
async fn rust_concurrent_first_calls_share_one_build() {
    let Some(mut env) = setup(RuntimeKind::Rust, &["hello"]) else {
        return;
    };
    assert!(!env.compiled.building("hello/handler.rs"));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let c = env.compiled.clone();
        tasks.push(tokio::spawn(async move {
            c.call("hello/handler.rs", &request(json!({})), T).await
        }));
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(env.compiled.building("hello/handler.rs"), "a build is in progress");
    for t in tasks {
        let reply: Value = serde_json::from_slice(&t.await.unwrap().unwrap()).unwrap();
        assert_eq!(reply["status"], 200);
    }
    assert_eq!(builds_started(&mut env), ["hello/handler.rs"]);
    assert!(!env.compiled.building("hello/handler.rs"));
    env.compiled.stop().await;
}

#[tokio::test]
async fn rust_killed_process_is_restarted_and_stop_kills_it() {
    let Some(mut env) = setup(RuntimeKind::Rust, &["hello"]) else {
        return;
    };
    let entry = "hello/handler.rs";
    assert_eq!(call(&env, entry, json!({})).await["status"], 200);
    let pid = env.compiled.pid(entry).unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(call(&env, entry, json!({})).await["status"], 200);
    let pid2 = env.compiled.pid(entry).unwrap();
    assert_ne!(pid, pid2);
    assert_eq!(builds_started(&mut env), [entry], "the cached binary is reused");
    let socket = env.compiled.socket_path(entry).unwrap();
    assert!(socket.exists());
    env.compiled.stop().await;
    assert!(!alive(pid2), "stopped");
    assert!(!socket.exists());
    assert!(matches!(
        env.compiled.call(entry, &request(json!({})), T).await,
        Err(CompiledError::Unavailable(m)) if m == "compiled runtime stopped"
    ));
}

#[tokio::test]
async fn dropping_compiled_kills_its_processes() {
    let Some(env) = setup(RuntimeKind::Rust, &["hello"]) else {
        return;
    };
    assert_eq!(call(&env, "hello/handler.rs", json!({})).await["status"], 200);
    let pid = env.compiled.pid("hello/handler.rs").unwrap();
    let Env { compiled, .. } = env;
    drop(compiled);
    for _ in 0..100 {
        if !alive(pid) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("pid {pid} still alive after drop");
}

/// The built program, started by hand, exits (removing its socket) when its stdin closes.
async fn exits_on_stdin_eof(kind: RuntimeKind, folder: &str) {
    let Some(env) = setup(kind, &["hello"]) else { return };
    let entry = format!("hello/handler.{}", if kind == RuntimeKind::Go { "go" } else { "rs" });
    assert_eq!(call(&env, &entry, json!({})).await["status"], 200);
    let bin_dir = env.root.path().join("hello").join(folder).join("handler/bin");
    let binary = std::fs::read_dir(bin_dir).unwrap().next().unwrap().unwrap().path();
    let socket = env._sockets.path().join("manual.sock");
    let mut child = tokio::process::Command::new(&binary)
        .arg(&socket)
        .stdin(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    for _ in 0..200 {
        if client::probe(&socket).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let reply = client::exchange(&socket, &request(json!({})), MAX_REPLY_BYTES)
        .await
        .unwrap();
    assert_eq!(serde_json::from_slice::<Value>(&reply).unwrap()["status"], 200);
    drop(child.stdin.take());
    let status = tokio::time::timeout(Duration::from_secs(3), child.wait()).await;
    assert!(matches!(status, Ok(Ok(s)) if s.success()), "{status:?}");
    assert!(!socket.exists(), "socket removed on exit");
    env.compiled.stop().await;
}

#[tokio::test]
async fn rust_process_exits_when_stdin_closes() {
    exits_on_stdin_eof(RuntimeKind::Rust, ".rust-build").await;
}

#[tokio::test]
async fn go_process_exits_when_stdin_closes() {
    exits_on_stdin_eof(RuntimeKind::Go, ".go-build").await;
}

#[tokio::test]
async fn go_hello_replies_with_a_json_body() {
    let Some(env) = setup(RuntimeKind::Go, &["hello"]) else {
        return;
    };
    let reply = call(&env, "hello/handler.go", json!({})).await;
    assert_eq!(
        reply,
        json!({
            "status": 200,
            "headers": {"X-Hello": "1", "Content-Type": "application/json"},
            "body": "{\"hello\":\"world\",\"method\":\"GET\"}",
        })
    );
    assert!(env.root.path().join("hello/.go-build/handler/go.mod").is_file());
    env.compiled.stop().await;
}

#[tokio::test]
async fn go_params_are_merged_into_the_event() {
    let Some(env) = setup(RuntimeKind::Go, &["params"]) else {
        return;
    };
    let reply = call(&env, "params/handler.go", json!({"id": "42", "method": "EVIL"})).await;
    assert_eq!(reply["status"], 201);
    let body: Value = serde_json::from_str(reply["body"].as_str().unwrap()).unwrap();
    assert_eq!(
        body,
        json!({
            "id": "42",
            "method": "GET",
            "params": {"id": "42", "method": "EVIL"},
            "greeting": "hi",
            "admin": false,
            "version": "default",
        })
    );
    let reply = call(&env, "params/handler.go", json!({"mode": "nostatus"})).await;
    assert_eq!(reply["status"], 500);
    assert_eq!(reply["body"], "{\"error\":\"invalid handler response\"}");
    env.compiled.stop().await;
}

#[tokio::test]
async fn go_compile_error_carries_the_compiler_message() {
    let Some(env) = setup(RuntimeKind::Go, &["broken"]) else {
        return;
    };
    let err = env.compiled.call("broken/handler.go", &request(json!({})), T).await;
    let Err(CompiledError::Build { runtime, output }) = err else {
        panic!("{err:?}")
    };
    assert_eq!(runtime, RuntimeKind::Go);
    assert!(output.contains("undefined: notDefined"), "{output}");
    assert!(output.contains("broken/handler.go:4"), "{output}");
}

#[tokio::test]
async fn go_panic_is_a_500_reply() {
    let Some(env) = setup(RuntimeKind::Go, &["panic"]) else {
        return;
    };
    let reply = call(&env, "panic/handler.go", json!({})).await;
    assert_eq!(reply["status"], 500);
    assert_eq!(reply["body"], "{\"error\":\"handler panicked: boom\"}");
    assert_eq!(
        call(&env, "panic/handler.go", json!({})).await["status"],
        500,
        "still serving"
    );
    env.compiled.stop().await;
}

/// Figures for the report: `cargo test --lib compiled::tests::measure -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn measure() {
    for (kind, entry) in [
        (RuntimeKind::Rust, "hello/handler.rs"),
        (RuntimeKind::Go, "hello/handler.go"),
    ] {
        let Some(tool) = toolchain(kind) else { continue };
        let Some(env) = setup(kind, &["hello"]) else { continue };
        // Real layout: no shared target dir (a fresh function folder, dependencies included).
        let c = Compiled::new(
            kind,
            env.root.path().into(),
            tool,
            env._sockets.path().into(),
            EventBus::default(),
        );
        let t0 = Instant::now();
        c.call(entry, &request(json!({})), T).await.unwrap();
        let cold = t0.elapsed();
        let mut lat = Vec::new();
        for _ in 0..200 {
            let t = Instant::now();
            c.call(entry, &request(json!({})), T).await.unwrap();
            lat.push(t.elapsed());
        }
        lat.sort();
        // A changed handler: rebuild with the dependencies already compiled.
        let file = env.root.path().join(entry);
        let src = std::fs::read_to_string(&file).unwrap();
        std::fs::write(&file, src.replace("\"world\"", "\"again\"")).unwrap();
        let t0 = Instant::now();
        c.call(entry, &request(json!({})), T).await.unwrap();
        let rebuild = t0.elapsed();
        c.stop().await;
        // Engine restart: the cached binary is reused.
        let c2 = Compiled::new(
            kind,
            env.root.path().into(),
            "/bin/false".into(),
            env._sockets.path().into(),
            EventBus::default(),
        );
        let t0 = Instant::now();
        c2.call(entry, &request(json!({})), T).await.unwrap();
        let restart = t0.elapsed();
        c2.stop().await;
        println!(
            "{kind}: cold build+start+call {:.1} s, rebuild after a change {:.1} s, first call after engine restart \
             (cached binary) {} ms, warm p50 {} µs, p99 {} µs",
            cold.as_secs_f64(),
            rebuild.as_secs_f64(),
            restart.as_millis(),
            lat[100].as_micros(),
            lat[197].as_micros()
        );
    }
}

// ---------------------------------------------------------------- sources (no toolchain)

#[test]
fn route_stems_are_not_go_helpers() {
    for stem in [
        "get",
        "post.items",
        "handler",
        "main",
        "index",
        "[id]",
        "get.[id]",
        "users.[...rest]",
    ] {
        assert!(sources::is_route_stem(stem), "{stem}");
    }
    for stem in ["_shared", "util", "db_models", "getter"] {
        assert!(!sources::is_route_stem(stem), "{stem}");
    }
}

#[test]
fn go_symbol_is_handler_then_handler_capitalised() {
    assert_eq!(
        sources::go_symbol("func handler(e map[string]interface{}) map[string]interface{} {"),
        Some("handler")
    );
    assert_eq!(
        sources::go_symbol("package main\nfunc  Handler (e map[string]any) any {"),
        Some("Handler")
    );
    assert_eq!(
        sources::go_symbol("func Handler(e E) R {}\nfunc handler(e E) R {}"),
        Some("handler")
    );
    assert_eq!(
        sources::go_symbol("func handlerX(e E) R {}\nfunc myHandler(e E) {}"),
        None
    );
    assert_eq!(sources::go_symbol("var handler = 1"), None);
    assert_eq!(
        sources::go_symbol("// func handler( is the old name\nfunc Handler(e E) R {}"),
        Some("Handler"),
        "a comment is not a declaration"
    );
    assert_eq!(
        sources::go_symbol("func (s S) handler(e E) R {}"),
        None,
        "a method is not the handler"
    );
}

#[test]
fn go_versions_parse() {
    assert_eq!(sources::parse_go_version("go1.19.8\n"), Some((1, 19)));
    assert_eq!(sources::parse_go_version("go1.22rc1"), Some((1, 22)));
    assert_eq!(sources::parse_go_version("devel"), None);
}

#[test]
fn go_mod_is_made_buildable_by_the_local_go() {
    let text = "module example.com/f\n\ngo 1.22.1\n\ntoolchain go1.22.3\n\ngodebug (\n\tpanicnil=1\n)\n\n\
                require example.com/greet v0.0.0\n\nreplace example.com/greet => ./greet\n\n\
                replace (\n\texample.com/a v1.0.0 => ../a v1.2.0\n\texample.com/b => example.com/c v1.0.0\n)\n";
    let got = sources::rewrite_go_mod(text, Some((1, 19)), Path::new("/fns/f"));
    assert_eq!(
        got,
        "module example.com/f\n\ngo 1.19 // lowered from 1.22.1 by FastFN\n\n\
         // toolchain go1.22.3 (not understood by the local Go)\n\n\
         // godebug ( (not understood by the local Go)\n// \tpanicnil=1\n// )\n\n\
         require example.com/greet v0.0.0\n\nreplace example.com/greet => /fns/f/./greet\n\n\
         replace (\n\texample.com/a v1.0.0 => /fns/f/../a v1.2.0\n\texample.com/b => example.com/c v1.0.0\n)\n"
    );
    // A Go that understands everything only gets the go line lowered when it is older.
    let got = sources::rewrite_go_mod("go 1.22\ntoolchain go1.22.3\n", Some((1, 23)), Path::new("/f"));
    assert_eq!(got, "go 1.22\ntoolchain go1.22.3\n");
    let got = sources::rewrite_go_mod("go 1.24.0\n", Some((1, 22)), Path::new("/f"));
    assert_eq!(got, "go 1.22 // lowered from 1.24.0 by FastFN\n");
    // Unknown local version: left alone.
    assert_eq!(sources::rewrite_go_mod("go 1.30\n", None, Path::new("/f")), "go 1.30\n");
}

#[test]
fn rust_manifest_takes_the_functions_dependencies() {
    let user = "[package]\nname = \"mine\"\nversion = \"1.0.0\"\n\n[dependencies]\nitoa = \"1\"\n\
                greet = { path = \"greet\" }\nserde_json = { version = \"1.0.100\", features = [\"preserve_order\"] }\n\
                abs = { path = \"/opt/abs\" }\n\n[dev-dependencies]\nproptest = \"1\"\n";
    let got = sources::rust_manifest("fastfn_fn_x", "# header", Some(user), Path::new("/fns/f")).unwrap();
    let parsed: toml::Table = got.parse().unwrap();
    assert!(got.starts_with("# header\n"));
    assert_eq!(parsed["package"]["name"].as_str(), Some("fastfn_fn_x"));
    let deps = parsed["dependencies"].as_table().unwrap();
    assert_eq!(deps["itoa"].as_str(), Some("1"));
    assert_eq!(deps["greet"]["path"].as_str(), Some("/fns/f/greet"));
    assert_eq!(deps["abs"]["path"].as_str(), Some("/opt/abs"));
    assert_eq!(deps["serde_json"]["version"].as_str(), Some("1.0.100"), "theirs wins");
    assert!(!deps.contains_key("proptest"), "dev-dependencies are not the handler's");
    assert!(parsed.contains_key("workspace"));
    let err = sources::rust_manifest("x", "#", Some("[dependencies"), Path::new("/f")).unwrap_err();
    assert!(err.starts_with("Cargo.toml: "), "{err}");
    let plain = sources::rust_manifest("x", "#", None, Path::new("/f")).unwrap();
    let parsed: toml::Table = plain.parse().unwrap();
    assert_eq!(parsed["dependencies"].as_table().unwrap().len(), 1);
}

#[test]
fn build_timeouts_come_from_the_environment() {
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
    };
    assert_eq!(
        sources::build_timeout(RuntimeKind::Go, env(&[])),
        Duration::from_secs(180)
    );
    assert_eq!(
        sources::build_timeout(RuntimeKind::Go, env(&[("FN_GO_BUILD_TIMEOUT_S", "30")])),
        Duration::from_secs(30)
    );
    assert_eq!(
        sources::build_timeout(RuntimeKind::Go, env(&[("GO_BUILD_TIMEOUT_S", "2.5")])),
        Duration::from_millis(2500)
    );
    assert_eq!(
        sources::build_timeout(RuntimeKind::Go, env(&[("FN_GO_BUILD_TIMEOUT_S", "0.1")])),
        Duration::from_secs(1),
        "at least one second"
    );
    assert_eq!(
        sources::build_timeout(RuntimeKind::Go, env(&[("FN_GO_BUILD_TIMEOUT_S", "soon")])),
        Duration::from_secs(180)
    );
    assert_eq!(
        sources::build_timeout(
            RuntimeKind::Rust,
            env(&[("FN_RUST_BUILD_TIMEOUT_S", "600"), ("FN_GO_BUILD_TIMEOUT_S", "5")])
        ),
        Duration::from_secs(600)
    );
}

#[test]
fn go_helpers_follow_the_folder_kind() {
    let root = tempfile::tempdir().unwrap();
    let touch = |rel: &str| {
        let p = root.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, "package main\n").unwrap();
    };
    // A folder of file routes: only `_` helpers.
    for f in [
        "routes/get.go",
        "routes/post.go",
        "routes/_shared.go",
        "routes/util.go",
        "routes/_x_test.go",
    ] {
        touch(f);
    }
    let names = |v: Vec<PathBuf>| -> Vec<String> {
        v.iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect()
    };
    let root_path = root.path().canonicalize().unwrap();
    let got = sources::go_helpers(&root_path, &root_path.join("routes/get.go"));
    assert_eq!(names(got), ["_shared.go"]);
    // A single-entry folder: every sibling that is not a route file.
    for f in [
        "single/handler.go",
        "single/util.go",
        "single/_shared.go",
        "single/get.go",
        "single/[id].go",
    ] {
        touch(f);
    }
    let got = sources::go_helpers(&root_path, &root_path.join("single/handler.go"));
    assert_eq!(names(got), ["_shared.go", "util.go"]);
    // Signature inputs include go.mod/go.sum even before they exist.
    let s = sources::sources(
        RuntimeKind::Go,
        &root_path,
        &root_path.join("single"),
        &root_path.join("single/handler.go"),
    );
    assert_eq!(
        names(s.files),
        ["handler.go", "_shared.go", "util.go", "go.mod", "go.sum"]
    );
}

#[test]
fn rust_sources_follow_the_folder_kind() {
    let root = tempfile::tempdir().unwrap();
    let root_path = root.path().canonicalize().unwrap();
    for f in [
        "routes/get.health.rs",
        "routes/get.version.rs",
        "routes/_shared.rs",
        "routes/util.rs",
        "single/handler.rs",
        "single/helper.rs",
        "single/deep/mod.rs",
        "single/target/x.rs",
        "single/.rust-build/y.rs",
    ] {
        let p = root_path.join(f);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, "").unwrap();
    }
    let rel = |s: sources::Sources| -> Vec<String> {
        s.files
            .iter()
            .map(|p| p.strip_prefix(&root_path).unwrap().display().to_string())
            .collect()
    };
    let routes = root_path.join("routes");
    let got = sources::sources(RuntimeKind::Rust, &root_path, &routes, &routes.join("get.health.rs"));
    assert_eq!(
        rel(got),
        [
            "routes/get.health.rs",
            "routes/_shared.rs",
            "routes/util.rs",
            "routes/Cargo.toml",
            "routes/Cargo.lock"
        ],
        "another route's file is not an input"
    );
    let single = root_path.join("single");
    let got = sources::sources(RuntimeKind::Rust, &root_path, &single, &single.join("handler.rs"));
    assert_eq!(
        rel(got),
        [
            "single/handler.rs",
            "single/helper.rs",
            "single/deep/mod.rs",
            "single/Cargo.toml",
            "single/Cargo.lock"
        ]
    );
}

#[test]
fn library_packages_are_recognised() {
    let fn_dir = Path::new("/fns/f");
    let lib = fn_dir.join("src/lib.rs");
    let toml = "[package]\nname = \"my-fn\"\nversion = \"0.1.0\"\n";
    assert_eq!(
        sources::rust_lib_crate(toml, fn_dir, &lib),
        Some(("my-fn".into(), "my_fn".into()))
    );
    assert_eq!(
        sources::rust_lib_crate(toml, fn_dir, &fn_dir.join("handler.rs")),
        None,
        "not the library"
    );
    let custom = "[package]\nname = \"p\"\n[lib]\nname = \"core_fn\"\npath = \"lib.rs\"\n";
    assert_eq!(
        sources::rust_lib_crate(custom, fn_dir, &fn_dir.join("lib.rs")),
        Some(("p".into(), "core_fn".into()))
    );
    assert_eq!(
        sources::rust_lib_crate("[dependencies]\nitoa = \"1\"\n", fn_dir, &lib),
        None,
        "no [package]"
    );
    let m = sources::rust_crate_manifest("gen", "#", "my-fn", fn_dir).unwrap();
    let parsed: toml::Table = m.parse().unwrap();
    assert_eq!(parsed["dependencies"]["my-fn"]["path"].as_str(), Some("/fns/f"));
}
