//! Managing functions through the console API (`/_fn/function*`, `/_fn/api/functions`,
//! `/_fn/ui-state`, `/_fn/login`): a real engine on a temp copy of `fixtures/manage`, real
//! node daemons, real HTTP. Every write: success, validation, path escapes, the write switch,
//! CSRF, stale tags (409), and the login with its rate limit.

use crate::support::{copy_fixture, start_in, Resp, TestEngine};
use serde_json::{json, Value};
use std::path::Path;

const CSRF: (&str, &str) = ("X-Fn-Request", "1");
const WRITE_ON: (&str, &str) = ("FN_CONSOLE_WRITE_ENABLED", "1");

async fn engine(dir: &Path, env: &[(&str, &str)]) -> TestEngine {
    let mut vars = vec![("FN_RUNTIMES", "node")];
    vars.extend_from_slice(env);
    let e = start_in(dir, &vars).await;
    e.ready().await;
    e
}

async fn put(e: &TestEngine, path: &str, body: Value) -> Resp {
    let b = body.to_string();
    e.send("PUT", path, &[CSRF], Some(b.as_bytes())).await
}

async fn post(e: &TestEngine, path: &str, body: Value) -> Resp {
    let b = body.to_string();
    e.send("POST", path, &[CSRF], Some(b.as_bytes())).await
}

fn error_of(r: &Resp) -> String {
    r.json()["error"].as_str().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn lists_functions_and_shows_one_with_secrets_masked() {
    let dir = copy_fixture("manage");
    let e = engine(dir.path(), &[]).await;
    let list = e.get("/_fn/api/functions").await;
    assert_eq!(list.status, 200, "{}", list.text());
    let names: Vec<String> = list
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_string())
        .collect();
    assert!(
        names.contains(&"hello".to_string()) && names.contains(&"api/get.items.js".to_string()),
        "{names:?}"
    );

    let d = e.get("/_fn/function?runtime=node&name=hello").await;
    assert_eq!(d.status, 200, "{}", d.text());
    let d = d.json();
    assert_eq!(d["function_dir"], "hello");
    assert_eq!(d["file_path"], "hello/handler.js");
    assert!(d["code"].as_str().unwrap().contains("mark: \"v1\""));
    assert_eq!(d["fn_env"]["GREETING"], json!({"value": "hi", "is_secret": false}));
    assert_eq!(
        d["fn_env"]["API_TOKEN"],
        json!({"value": "<hidden>", "is_secret": true})
    );
    assert!(!d.to_string().contains("s3cret"), "a secret leaked: {d}");
    assert!(d["routes"].as_array().unwrap().iter().any(|r| r["route"] == "/hello"));
    assert_eq!(d["write_enabled"], false);

    let files = e.get("/_fn/function-files?runtime=node&name=hello").await.json();
    let kinds: Vec<(String, String)> = files["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["path"].as_str().unwrap().into(), f["type"].as_str().unwrap().into()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("fn.config.json".into(), "config".into()),
            ("fn.env.json".into(), "env".into()),
            ("handler.js".into(), "handler".into())
        ]
    );
    let content = e
        .get("/_fn/function-file-content?runtime=node&name=hello&path=handler.js")
        .await;
    assert_eq!(content.status, 200);
    assert_eq!(content.json()["etag"], d["code_etag"]);
    // The env file itself reads masked too.
    let env = e
        .get("/_fn/function-file-content?runtime=node&name=hello&path=fn.env.json")
        .await;
    assert_eq!(env.status, 200);
    assert!(
        !env.text().contains("s3cret") && env.text().contains("<hidden>"),
        "{}",
        env.text()
    );

    // Unknown function, bad runtime, bad names.
    assert_eq!(e.get("/_fn/function?runtime=node&name=nope").await.status, 404);
    let r = e.get("/_fn/function?runtime=cobol&name=hello").await;
    assert_eq!((r.status, error_of(&r)), (400, "invalid runtime".into()));
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_write_is_refused_while_the_write_switch_is_off() {
    let dir = copy_fixture("manage");
    let e = engine(dir.path(), &[("FN_ADMIN_TOKEN", "tok")]).await;
    let before = std::fs::read_to_string(dir.path().join("hello/handler.js")).unwrap();
    let calls: Vec<(&str, &str, Value)> = vec![
        ("POST", "/_fn/function?runtime=node&name=fresh", json!({})),
        ("DELETE", "/_fn/function?runtime=node&name=hello", json!({})),
        (
            "PUT",
            "/_fn/function-config?runtime=node&name=hello",
            json!({"timeout_ms": 100}),
        ),
        ("PUT", "/_fn/function-env?runtime=node&name=hello", json!({"A": "1"})),
        (
            "PUT",
            "/_fn/function-code?runtime=node&name=hello",
            json!({"code": "x"}),
        ),
        (
            "PUT",
            "/_fn/function-file-content?runtime=node&name=hello",
            json!({"path": "handler.js", "content": "x"}),
        ),
        (
            "DELETE",
            "/_fn/function-file-content?runtime=node&name=hello&path=fn.env.json",
            json!({}),
        ),
        ("PUT", "/_fn/ui-state", json!({"write_enabled": true})),
    ];
    for (m, p, body) in &calls {
        let b = body.to_string();
        let r = e.send(m, p, &[CSRF], Some(b.as_bytes())).await;
        assert_eq!(
            (r.status, error_of(&r)),
            (403, "console write disabled".into()),
            "{m} {p}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(dir.path().join("hello/handler.js")).unwrap(),
        before
    );
    assert!(dir.path().join("hello/fn.env.json").exists() && !dir.path().join("fresh").exists());

    // The admin token is write permission (FastFN's enforce_write), and turns the switch on.
    let r = e
        .send(
            "PUT",
            "/_fn/ui-state",
            &[("x-fn-admin-token", "tok")],
            Some(br#"{"write_enabled":true}"#),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["write_enabled"], true);
    let r = put(
        &e,
        "/_fn/function-code?runtime=node&name=hello",
        json!({"code": before}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // Only write_enabled changes at runtime; asking for another switch is refused by name.
    let r = put(&e, "/_fn/ui-state", json!({"local_only": false})).await;
    assert_eq!(r.status, 400, "{}", r.text());
    let r = e.send("DELETE", "/_fn/ui-state", &[CSRF], None).await;
    assert_eq!(r.json()["write_enabled"], false);
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn writes_need_the_csrf_header_and_a_local_client() {
    let dir = copy_fixture("manage");
    let e = engine(dir.path(), &[WRITE_ON]).await;
    let body = br#"{"code":"exports.handler = async () => ({})"}"#;
    let r = e
        .send("PUT", "/_fn/function-code?runtime=node&name=hello", &[], Some(body))
        .await;
    assert_eq!((r.status, error_of(&r)), (403, "missing CSRF header".into()));
    let r = e
        .send(
            "PUT",
            "/_fn/function-code?runtime=node&name=hello",
            &[CSRF, ("X-Forwarded-For", "8.8.8.8")],
            Some(body),
        )
        .await;
    assert_eq!((r.status, error_of(&r)), (403, "console api local-only".into()));
    let r = e
        .send(
            "GET",
            "/_fn/function?runtime=node&name=hello",
            &[("Host", "evil.example")],
            None,
        )
        .await;
    assert_eq!(r.status, 421, "DNS rebinding: {}", r.text());
    assert!(std::fs::read_to_string(dir.path().join("hello/handler.js"))
        .unwrap()
        .contains("v1"));
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn creates_folder_functions_and_file_routes_served_at_once() {
    let dir = copy_fixture("manage");
    let e = engine(dir.path(), &[WRITE_ON]).await;
    // A folder function from the `fastfn init` template.
    let r = post(
        &e,
        "/_fn/function?runtime=node&name=greet",
        json!({"methods": ["GET", "POST"]}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let created = r.json();
    assert_eq!(created["reload"]["ok"], true);
    assert!(created["routes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["route"] == "/greet"));
    let cfg: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("greet/fn.config.json")).unwrap()).unwrap();
    assert_eq!(cfg["runtime"], "node");
    assert_eq!(cfg["invoke"]["methods"], json!(["GET", "POST"]));
    let cfg_text = std::fs::read_to_string(dir.path().join("greet/fn.config.json")).unwrap();
    assert!(
        cfg_text.starts_with("{\n  \"runtime\": \"node\",\n  \"name\": \"greet\",\n  \"version\""),
        "`fastfn init`'s key order: {cfg_text}"
    );
    let r = e.get("/greet?name=Ana").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["message"], "Hello from FastFN Node!", "{}", r.text());
    assert_eq!(r.json()["query"]["name"], "Ana", "{}", r.text());
    assert_eq!(e.send("POST", "/greet", &[], Some(b"{}")).await.status, 200);

    // A file route with a method prefix and a param, with its own code.
    let code = "exports.handler = async (e) => ({ id: e.params.id });";
    let r = post(
        &e,
        "/_fn/function?runtime=node&name=users/get.[id].js",
        json!({"code": code}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let r = e.get("/users/42").await;
    assert_eq!((r.status, r.json()["id"].clone()), (200, json!("42")));

    // Refused: taken, bad names, wrong extension, private file, runtime not enabled, bad config.
    let r = post(&e, "/_fn/function?runtime=node&name=greet", json!({})).await;
    assert_eq!((r.status, error_of(&r)), (400, "function already exists".into()));
    let r = post(&e, "/_fn/function?runtime=node&name=api/get.items.js", json!({})).await;
    assert_eq!((r.status, error_of(&r)), (400, "function already exists".into()));
    for bad in ["../escape", "a b", "..", "/abs", "x/../../y.js"] {
        let r = post(&e, &format!("/_fn/function?runtime=node&name={bad}"), json!({})).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
    }
    let r = post(&e, "/_fn/function?runtime=node&name=thing.py", json!({})).await;
    assert_eq!(r.status, 400, "{}", r.text());
    let r = post(&e, "/_fn/function?runtime=node&name=lib/_util.js", json!({})).await;
    assert_eq!(r.status, 400, "{}", r.text());
    let r = post(&e, "/_fn/function?runtime=python&name=pyfn", json!({})).await;
    assert_eq!((r.status, error_of(&r)), (400, "runtime not enabled".into()));
    let r = post(&e, "/_fn/function?runtime=node&name=badcfg", json!({"methods": 7})).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(error_of(&r).starts_with("invalid fn.config.json"), "{}", r.text());
    assert!(!dir.path().join("badcfg").exists(), "nothing written on a refusal");
    assert!(!dir.path().join("escape").exists() && !dir.path().parent().unwrap().join("escape").exists());
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn edits_code_config_and_env_with_validation_and_reload() {
    let dir = copy_fixture("manage");
    let e = engine(dir.path(), &[WRITE_ON]).await;
    assert_eq!(e.get("/hello").await.json()["mark"], "v1");

    // Code: written, reloaded, the next call runs it.
    let code = "exports.handler = async (event) => ({ mark: \"v2\", env: event.env || {} });\n";
    let r = put(&e, "/_fn/function-code?runtime=node&name=hello", json!({"code": code})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["reload"]["ok"], true);
    assert_eq!(r.json()["syntax"]["ok"], true);
    assert_eq!(e.get("/hello").await.json()["mark"], "v2");
    // A syntax error is saved (work in progress) and reported with its line, by node itself.
    let broken = "exports.handler = async () => {\n  return ({ mark: 3 ;\n};\n";
    let r = put(
        &e,
        "/_fn/function-code?runtime=node&name=hello",
        json!({"code": broken}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let syntax = r.json()["syntax"].clone();
    assert_eq!(
        (syntax["ok"].clone(), syntax["line"].clone()),
        (json!(false), json!(2)),
        "{syntax}"
    );
    assert!(syntax["message"].as_str().unwrap().contains("SyntaxError"), "{syntax}");
    let r = put(&e, "/_fn/function-code?runtime=node&name=hello", json!({"code": code})).await;
    assert_eq!(r.json()["syntax"]["ok"], true);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("hello/handler.js")).unwrap(),
        code
    );

    // Config: validated by the engine's parser before anything is written.
    let cfg_path = dir.path().join("hello/fn.config.json");
    let cfg_before = std::fs::read_to_string(&cfg_path).unwrap();
    let r = put(
        &e,
        "/_fn/function-config?runtime=node&name=hello",
        json!({"timeout_ms": "soon"}),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(error_of(&r).starts_with("invalid fn.config.json"), "{}", r.text());
    assert_eq!(r.json()["field"], "timeout_ms");
    assert_eq!(std::fs::read_to_string(&cfg_path).unwrap(), cfg_before);
    assert_eq!(e.send("POST", "/hello", &[], Some(b"{}")).await.status, 404);
    let r = put(
        &e,
        "/_fn/function-config?runtime=node&name=hello",
        json!({"methods": ["GET", "POST"], "timeout_ms": 1234}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["fn_config"]["invoke"]["methods"], json!(["GET", "POST"]));
    assert_eq!(r.json()["policy"]["timeout_ms"], 1234);
    assert_eq!(e.send("POST", "/hello", &[], Some(b"{}")).await.status, 200);
    assert_eq!(r.json()["warnings"], json!([]));
    // A key this build does not support is written, and the answer says it is not applied.
    let r = put(
        &e,
        "/_fn/function-config?runtime=node&name=hello",
        json!({"worker_pool": {"enabled": true, "min_warm": 2}}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.json()["warnings"][0]
            .as_str()
            .unwrap()
            .contains("`worker_pool.min_warm` is not supported"),
        "{}",
        r.text()
    );
    // Raw JSON replace (the editor's form): keys left out are gone.
    let whole = json!({"runtime": "node", "name": "hello", "entrypoint": "handler.js"});
    let r = put(
        &e,
        "/_fn/function-config?runtime=node&name=hello&replace=1",
        whole.clone(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["fn_config"], whole);
    assert_eq!(e.send("POST", "/hello", &[], Some(b"{}")).await.status, 404);
    let r = put(
        &e,
        "/_fn/function-file-content?runtime=node&name=hello",
        json!({"path": "fn.config.json", "content": "{nope"}),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());

    // Env: a masked secret sent back keeps its value; null deletes; non-scalars are refused.
    let r = put(
        &e,
        "/_fn/function-env?runtime=node&name=hello",
        json!({"GREETING": "hola", "API_TOKEN": {"value": "<hidden>", "is_secret": true}, "NEW": "n"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["fn_env"]["API_TOKEN"]["value"], "<hidden>");
    let env = e.get("/hello").await.json()["env"].clone();
    assert_eq!(
        (env["GREETING"].clone(), env["API_TOKEN"].clone(), env["NEW"].clone()),
        (json!("hola"), json!("s3cret"), json!("n"))
    );
    let r = put(&e, "/_fn/function-env?runtime=node&name=hello", json!({"NEW": null})).await;
    assert_eq!(r.status, 200);
    assert!(r.json()["fn_env"].get("NEW").is_none());
    // The masked file text saved back through file-content keeps the secret.
    let masked = e
        .get("/_fn/function-file-content?runtime=node&name=hello&path=fn.env.json")
        .await
        .json();
    let edited = masked["content"].as_str().unwrap().replace("hola", "salut");
    let r = put(
        &e,
        "/_fn/function-file-content?runtime=node&name=hello",
        json!({"path": "fn.env.json", "content": edited, "etag": masked["etag"]}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let env = e.get("/hello").await.json()["env"].clone();
    assert_eq!(
        (env["GREETING"].clone(), env["API_TOKEN"].clone()),
        (json!("salut"), json!("s3cret"))
    );
    let env_before = std::fs::read_to_string(dir.path().join("hello/fn.env.json")).unwrap();
    for bad in [json!({"A": [1]}), json!({"A": {"value": {}}}), json!({"": "x"})] {
        let r = put(&e, "/_fn/function-env?runtime=node&name=hello", bad.clone()).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
    }
    let r = e
        .send(
            "PUT",
            "/_fn/function-env?runtime=node&name=hello",
            &[CSRF],
            Some(b"[1,2]"),
        )
        .await;
    assert_eq!((r.status, error_of(&r)), (400, "invalid json body".into()));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("hello/fn.env.json")).unwrap(),
        env_before
    );

    // Any file of the function, and its deletion (not the entry).
    let r = put(
        &e,
        "/_fn/function-file-content?runtime=node&name=hello",
        json!({"path": "lib/util.js", "content": "module.exports = 1;\n"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(dir.path().join("hello/lib/util.js").exists());
    let r = e
        .send(
            "DELETE",
            "/_fn/function-file-content?runtime=node&name=hello&path=lib/util.js",
            &[CSRF],
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(!dir.path().join("hello/lib/util.js").exists());
    let r = e
        .send(
            "DELETE",
            "/_fn/function-file-content?runtime=node&name=hello&path=handler.js",
            &[CSRF],
            None,
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    // No temp file is left behind by the atomic writes.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("hello"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("fastfn-tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn paths_that_escape_the_function_are_refused() {
    let dir = copy_fixture("manage");
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), "outside").unwrap();
    std::os::unix::fs::symlink(outside.path(), dir.path().join("hello/link")).unwrap();
    let e = engine(dir.path(), &[WRITE_ON]).await;
    for p in [
        "../api/get.items.js",
        "../../etc/passwd",
        "/etc/passwd",
        "link/secret.txt",
        ".env",
        "a/../../x",
        "%2e%2e/x",
    ] {
        // In a query the path is percent-decoded (`%2e%2e` is `..`); in a JSON body it is literal.
        let enc = p.replace('/', "%2F");
        let r = e
            .get(&format!(
                "/_fn/function-file-content?runtime=node&name=hello&path={enc}"
            ))
            .await;
        assert_eq!(r.status, 400, "GET {p}: {}", r.text());
        let literal = p.replace("%2e", ".");
        let r = put(
            &e,
            "/_fn/function-file-content?runtime=node&name=hello",
            json!({"path": literal, "content": "x"}),
        )
        .await;
        assert_eq!(r.status, 400, "PUT {literal}: {}", r.text());
        let r = e
            .send(
                "DELETE",
                &format!("/_fn/function-file-content?runtime=node&name=hello&path={enc}"),
                &[CSRF],
                None,
            )
            .await;
        assert_eq!(r.status, 400, "DELETE {p}: {}", r.text());
    }
    assert_eq!(
        std::fs::read_to_string(outside.path().join("secret.txt")).unwrap(),
        "outside"
    );
    assert!(!outside.path().join("x").exists());
    // Names outside the served map are refused before any lookup.
    for n in ["../hello", "hello/../../x", "/etc", "a//b"] {
        let r = e
            .get(&format!("/_fn/function?runtime=node&name={}", n.replace('/', "%2F")))
            .await;
        assert_eq!((r.status, error_of(&r)), (400, "invalid function".into()), "{n}");
    }
    let r = e.get("/_fn/function?runtime=node&name=hello&version=..").await;
    assert_eq!((r.status, error_of(&r)), (400, "invalid version".into()));
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_changed_since_it_was_loaded_is_not_overwritten() {
    let dir = copy_fixture("manage");
    let e = engine(dir.path(), &[WRITE_ON]).await;
    let loaded = e.get("/_fn/function?runtime=node&name=hello").await.json();
    let tag = loaded["code_etag"].as_str().unwrap().to_string();

    // Another editor changes the file on disk.
    let theirs = "exports.handler = async () => ({ mark: \"theirs\" });\n";
    std::fs::write(dir.path().join("hello/handler.js"), theirs).unwrap();
    let mine = "exports.handler = async () => ({ mark: \"mine\" });\n";
    let r = e
        .send(
            "PUT",
            "/_fn/function-code?runtime=node&name=hello",
            &[CSRF, ("If-Match", &tag)],
            Some(json!({"code": mine}).to_string().as_bytes()),
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.text());
    let c = r.json();
    assert_eq!(c["current"]["content"], theirs);
    assert_eq!(c["yours"]["content"], mine);
    assert_eq!(c["path"], "hello/handler.js");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("hello/handler.js")).unwrap(),
        theirs
    );

    // Two console writers with the same tag: the first wins, the second gets 409.
    let fresh = c["current"]["etag"].as_str().unwrap().to_string();
    let send = |code: &'static str| {
        let addr = e.addr();
        let tag = fresh.clone();
        async move {
            crate::support::request(
                addr,
                "PUT",
                "/_fn/function-code?runtime=node&name=hello",
                &[CSRF, ("If-Match", &tag)],
                Some(json!({"code": code}).to_string().as_bytes()),
            )
            .await
            .status
        }
    };
    let (a, b) = tokio::join!(
        send("exports.handler = async () => ({ mark: \"a\" });\n"),
        send("exports.handler = async () => ({ mark: \"b\" });\n")
    );
    let mut got = [a, b];
    got.sort();
    assert_eq!(got, [200, 409]);

    // Same for config and env (tags from GET).
    let cfg = e.get("/_fn/function-config?runtime=node&name=hello").await.json();
    std::fs::write(
        dir.path().join("hello/fn.config.json"),
        "{\"runtime\":\"node\",\"name\":\"hello\",\"entrypoint\":\"handler.js\",\"timeout_ms\":999}\n",
    )
    .unwrap();
    let r = e
        .send(
            "PUT",
            "/_fn/function-config?runtime=node&name=hello",
            &[CSRF, ("If-Match", cfg["config_etag"].as_str().unwrap())],
            Some(b"{\"timeout_ms\": 5}"),
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(r.json()["current"]["content"].as_str().unwrap().contains("999"));
    let file = e
        .get("/_fn/function-file-content?runtime=node&name=hello&path=fn.env.json")
        .await
        .json();
    std::fs::write(dir.path().join("hello/fn.env.json"), "{\"X\":\"1\"}\n").unwrap();
    std::fs::write(
        dir.path().join("hello/fn.env.json"),
        "{\"X\":\"1\",\"K\":{\"value\":\"topsecret\",\"is_secret\":true}}\n",
    )
    .unwrap();
    let r = put(
        &e,
        "/_fn/function-file-content?runtime=node&name=hello",
        json!({"path": "fn.env.json", "content": "{}", "etag": file["etag"]}),
    )
    .await;
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(
        !r.text().contains("topsecret"),
        "a secret leaked in the 409: {}",
        r.text()
    );
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn deletes_a_folder_function_or_a_file_route() {
    let dir = copy_fixture("manage");
    let e = engine(dir.path(), &[WRITE_ON]).await;
    assert_eq!(e.get("/hello").await.status, 200);
    let r = e
        .send("DELETE", "/_fn/function?runtime=node&name=hello", &[CSRF], None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["reload"]["ok"], true);
    assert!(!dir.path().join("hello").exists());
    assert_eq!(e.get("/hello").await.status, 404);
    let r = e
        .send("DELETE", "/_fn/function?runtime=node&name=hello", &[CSRF], None)
        .await;
    assert_eq!(r.status, 404);

    let r = e
        .send(
            "DELETE",
            "/_fn/function?runtime=node&name=api%2Fget.items.js",
            &[CSRF],
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(!dir.path().join("api/get.items.js").exists() && dir.path().join("api").is_dir());
    assert_eq!(e.get("/api/items").await.status, 404);
    let r = e.send("GET", "/_fn/function", &[], None).await;
    assert_eq!(r.status, 400, "{}", r.text());
    let r = e
        .send("PATCH", "/_fn/function?runtime=node&name=x", &[CSRF], None)
        .await;
    assert_eq!(r.status, 405);
    e.stop().await;
}

/// `pbkdf2-sha256` of `pw` (salt `00112233`, 100000 iterations), as FastFN's Python line makes it.
const HASH: &str = "pbkdf2-sha256:100000:00112233:e1edcd8c6b066aa5bfe5116800b37033342638d5dbb61f2c0baee865b9b4ef23";

fn session_cookie(r: &Resp) -> String {
    let set = r.header("set-cookie").expect("set-cookie");
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict"), "{set}");
    set.split(';').next().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn login_gives_a_signed_session_that_expires() {
    let dir = copy_fixture("manage");
    let e = engine(
        dir.path(),
        &[
            WRITE_ON,
            ("FN_CONSOLE_LOGIN_ENABLED", "1"),
            ("FN_CONSOLE_LOGIN_API", "1"),
            ("FN_CONSOLE_LOGIN_USERNAME", "admin"),
            ("FN_CONSOLE_LOGIN_PASSWORD_HASH", HASH),
            ("FN_CONSOLE_SESSION_SECRET", "test-secret"),
            ("FN_CONSOLE_SESSION_TTL_S", "2"),
        ],
    )
    .await;
    // Signed out: the API answers 401 (health stays open); wrong passwords set no cookie.
    let r = e.get("/_fn/catalog").await;
    assert_eq!((r.status, error_of(&r)), (401, "login required".into()));
    assert_eq!(e.get("/_fn/health").await.status, 200);
    let r = post(&e, "/_fn/login", json!({"username": "admin", "password": "nope"})).await;
    assert_eq!((r.status, error_of(&r)), (401, "invalid credentials".into()));
    assert!(r.header("set-cookie").is_none());
    let r = post(&e, "/_fn/login", json!({"username": "admin"})).await;
    assert_eq!(r.status, 400);
    let r = e
        .send(
            "POST",
            "/_fn/login",
            &[],
            Some(br#"{"username":"admin","password":"pw"}"#),
        )
        .await;
    assert_eq!((r.status, error_of(&r)), (403, "missing CSRF header".into()));

    let r = post(&e, "/_fn/login", json!({"username": "admin", "password": "pw"})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.header("set-cookie").unwrap().contains("Max-Age=2"));
    let cookie = session_cookie(&r);
    let r = e.send("GET", "/_fn/catalog", &[("Cookie", &cookie)], None).await;
    assert_eq!(r.status, 200);
    let r = e.send("GET", "/_fn/ui-state", &[("Cookie", &cookie)], None).await;
    assert_eq!(r.json()["current_user"], "admin");
    let r = e
        .send(
            "PUT",
            "/_fn/function-env?runtime=node&name=hello",
            &[CSRF, ("Cookie", &cookie)],
            Some(br#"{"A":"1"}"#),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // A tampered token is no session.
    let forged = cookie.replacen('.', ".9", 1);
    let r = e.send("GET", "/_fn/catalog", &[("Cookie", &forged)], None).await;
    assert_eq!(r.status, 401);
    // Logout clears the cookie; the TTL ends the session anyway.
    let r = e.send("POST", "/_fn/logout", &[CSRF, ("Cookie", &cookie)], None).await;
    assert!(r.header("set-cookie").unwrap().contains("Max-Age=0"));
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let r = e.send("GET", "/_fn/catalog", &[("Cookie", &cookie)], None).await;
    assert_eq!(r.status, 401, "expired session accepted");
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn login_attempts_are_rate_limited_and_writes_need_a_session() {
    let dir = copy_fixture("manage");
    let e = engine(
        dir.path(),
        &[
            WRITE_ON,
            ("FN_CONSOLE_LOGIN_ENABLED", "1"),
            ("FN_CONSOLE_LOGIN_USERNAME", "admin"),
            ("FN_CONSOLE_LOGIN_PASSWORD_HASH", HASH),
            ("FN_CONSOLE_LOGIN_RATE_LIMIT_MAX", "2"),
        ],
    )
    .await;
    // Login for the console only: reads stay open, writes need a session.
    assert_eq!(e.get("/_fn/api/functions").await.status, 200);
    let r = put(&e, "/_fn/function-env?runtime=node&name=hello", json!({"A": "1"})).await;
    assert_eq!((r.status, error_of(&r)), (401, "login required".into()));
    for _ in 0..2 {
        let r = post(&e, "/_fn/login", json!({"username": "admin", "password": "bad"})).await;
        assert_eq!(r.status, 401);
    }
    // Used up: even the right password is refused until the window ends.
    let r = post(&e, "/_fn/login", json!({"username": "admin", "password": "pw"})).await;
    assert_eq!(
        (r.status, error_of(&r)),
        (429, "too many login attempts, try again later".into())
    );
    e.stop().await;

    // A fresh engine (fresh limits): the right password works and its session may write.
    let e = engine(
        dir.path(),
        &[
            WRITE_ON,
            ("FN_CONSOLE_LOGIN_ENABLED", "1"),
            ("FN_CONSOLE_LOGIN_USERNAME", "admin"),
            ("FN_CONSOLE_LOGIN_PASSWORD_HASH", HASH),
        ],
    )
    .await;
    let r = post(&e, "/_fn/login", json!({"username": "admin", "password": "pw"})).await;
    let cookie = session_cookie(&r);
    let r = e
        .send(
            "PUT",
            "/_fn/function-env?runtime=node&name=hello",
            &[CSRF, ("Cookie", &cookie)],
            Some(br#"{"A":"1"}"#),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    e.stop().await;

    // Login off: the endpoint is not there.
    let e = engine(dir.path(), &[]).await;
    let r = post(&e, "/_fn/login", json!({"username": "admin", "password": "pw"})).await;
    assert_eq!((r.status, error_of(&r)), (404, "login disabled".into()));
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_malformed_password_hash_stops_the_start() {
    let dir = copy_fixture("manage");
    let sockets = crate::support::socket_base();
    let vars = std::collections::HashMap::from([
        (
            "FN_CONSOLE_LOGIN_PASSWORD_HASH".to_string(),
            "pbkdf2-sha256:10:zz:00".to_string(),
        ),
        ("FN_SOCKET_BASE_DIR".to_string(), sockets.path().display().to_string()),
    ]);
    let err = fastfn::config::project::Settings::resolve(
        &fastfn::config::project::Overrides {
            dir: Some(dir.path().to_path_buf()),
            port: Some(0),
            ..Default::default()
        },
        &|k| vars.get(k).cloned(),
        dir.path(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("FN_CONSOLE_LOGIN_PASSWORD_HASH"), "{err}");
}
