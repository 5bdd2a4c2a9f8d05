//! The admin API and public endpoints answering as the original FastFN does ("Compatibility
//! I"): switches and their errors, project defaults from the environment, `/_fn/invoke`,
//! `/_fn/catalog` functions, `/_fn/logs` files, OpenAPI details, the landing page, home
//! actions, the public aliases and Swagger UI. `fixtures/compat` (see its README).

use crate::support::{copy_fixture, start, start_in, Resp, TestEngine};
use serde_json::{json, Value};

async fn compat(env: &[(&str, &str)]) -> TestEngine {
    let mut all = vec![("FN_RUNTIMES", "python")];
    all.extend_from_slice(env);
    start("compat", &all).await
}

const CSRF: (&str, &str) = ("X-Fn-Request", "1");
/// Stands in for a non-local client (see `admin_answers_loopback_clients_only_…`).
const XFF: (&str, &str) = ("X-Forwarded-For", "203.0.113.9");

async fn invoke(e: &TestEngine, body: Value) -> Resp {
    e.send(
        "POST",
        "/_fn/invoke",
        &[CSRF, ("Content-Type", "application/json")],
        Some(body.to_string().as_bytes()),
    )
    .await
}

fn body_json(r: &Resp) -> Value {
    assert_eq!(r.status, 200, "{}", r.text());
    let text = r.json()["body"].as_str().map(str::to_string);
    let text = text.unwrap_or_else(|| panic!("no body text: {}", r.text()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {}", r.text()))
}

fn error_of(r: &Resp) -> (u16, Value) {
    (r.status, r.json()["error"].clone())
}

#[tokio::test(flavor = "multi_thread")]
async fn switches_answer_404_naming_the_switch() {
    let e = compat(&[("FN_CONSOLE_API_ENABLED", "0")]).await;
    for path in ["/_fn/catalog", "/_fn/logs", "/_fn/resolve?url=/hello", "/_fn/reload"] {
        assert_eq!(
            error_of(&e.get(path).await),
            (404, json!("console api disabled")),
            "{path}"
        );
    }
    // Docs and health are not part of the console API.
    assert_eq!(e.get("/_fn/openapi.json").await.status, 200);
    assert_eq!(e.get("/_fn/health").await.status, 200);
    e.stop().await;

    let e = compat(&[("FN_DOCS_ENABLED", "0")]).await;
    for path in [
        "/_fn/openapi.json",
        "/openapi.json",
        "/_fn/docs",
        "/_fn/docs/swagger-ui-bundle.js",
    ] {
        assert_eq!(error_of(&e.get(path).await), (404, json!("docs disabled")), "{path}");
    }
    assert_eq!(e.get("/_fn/catalog").await.status, 200);
    e.stop().await;

    let e = compat(&[("FN_UI_ENABLED", "0")]).await;
    for path in ["/console", "/console/", "/console/app"] {
        assert_eq!(
            error_of(&e.get(path).await),
            (404, json!("console ui disabled")),
            "{path}"
        );
    }
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn local_only_can_be_lifted_and_the_token_passes_csrf() {
    let e = compat(&[("FN_ADMIN_TOKEN", "tok")]).await;
    let r = e.send("GET", "/_fn/catalog", &[XFF], None).await;
    assert_eq!(error_of(&r), (403, json!("console api local-only")));
    // The token stands for both the local-only and the CSRF checks (the original's guard).
    let r = e
        .send("POST", "/_fn/reload", &[XFF, ("x-fn-admin-token", "tok")], None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = e
        .send("POST", "/_fn/reload", &[("x-fn-admin-token", "tok")], None)
        .await;
    assert_eq!(r.status, 200, "token without X-Fn-Request: {}", r.text());
    let r = e
        .send("POST", "/_fn/reload", &[("x-fn-admin-token", "nope")], None)
        .await;
    assert_eq!(error_of(&r), (403, json!("missing CSRF header")));
    e.stop().await;

    let e = compat(&[("FN_CONSOLE_LOCAL_ONLY", "0")]).await;
    let r = e
        .send("GET", "/_fn/catalog", &[XFF, ("Host", "api.example.com")], None)
        .await;
    assert_eq!(r.status, 200, "local-only off admits any client: {}", r.text());
    // CSRF still applies to writes.
    let r = e.send("POST", "/_fn/reload", &[XFF], None).await;
    assert_eq!(error_of(&r), (403, json!("missing CSRF header")));
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn project_defaults_come_from_the_environment() {
    let e = compat(&[
        ("FN_DEFAULT_TIMEOUT_MS", "4321"),
        ("FN_DEFAULT_MAX_CONCURRENCY", "7"),
        ("FN_DEFAULT_MAX_BODY_BYTES", "2048"),
    ])
    .await;
    let want = json!({"timeout_ms": 4321, "max_concurrency": 7, "max_body_bytes": 2048});
    assert_eq!(e.get("/_fn/health").await.json()["defaults"], want);
    assert_eq!(e.get("/_fn/catalog").await.json()["defaults"], want);
    assert_eq!(
        e.get("/context").await.json(),
        want,
        "a function without its own limits"
    );
    assert_eq!(
        e.get("/own").await.json(),
        json!({"timeout_ms": 1234}),
        "its own timeout_ms wins"
    );
    // The body limit applies: 2049 bytes are refused, 2048 pass.
    let r = e.send("GET", "/context", &[], Some(&[b'x'; 2049])).await;
    assert_eq!(error_of(&r), (413, json!("payload too large")));
    assert_eq!(e.send("GET", "/context", &[], Some(&[b'x'; 2048])).await.status, 200);
    e.stop().await;

    let e = compat(&[]).await;
    assert_eq!(
        e.get("/context").await.json(),
        json!({"timeout_ms": 2500, "max_concurrency": 20, "max_body_bytes": 1048576})
    );
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn invoke_enforces_methods_and_body_limit_and_names_the_route() {
    let e = compat(&[]).await;
    let r = invoke(&e, json!({"name": "limits", "method": "DELETE"})).await;
    assert_eq!(r.status, 405, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({"error": "method not allowed", "allowed_methods": ["GET", "POST"]})
    );
    let r = invoke(&e, json!({"name": "limits", "method": "POST", "body": "0123456789X"})).await;
    assert_eq!(error_of(&r), (413, json!("payload too large")));
    let r = invoke(&e, json!({"name": "limits", "method": "POST", "body": "0123456789"})).await;
    assert_eq!(body_json(&r), json!({"method": "POST", "got": "0123456789"}));
    let r = invoke(&e, json!({"name": "limits", "method": "BREW"})).await;
    assert_eq!(error_of(&r), (400, json!("unsupported method")));

    // A route with params: the concrete path and its template.
    let r = invoke(&e, json!({"name": "users/[id].py", "params": {"id": 42}})).await;
    let out = r.json();
    assert_eq!(
        (&out["route"], &out["route_template"]),
        (&json!("/users/42"), &json!("/users/:id"))
    );
    assert_eq!(body_json(&r), json!({"params": {"id": "42"}, "path": "/users/42"}));
    let r = invoke(&e, json!({"name": "users/[id].py"})).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({"error": "missing required path params", "route": "/users/:id", "missing_params": ["id"]})
    );
    let r = invoke(&e, json!({"name": "limits", "route": "/limits"})).await;
    assert_eq!(r.json()["route"], "/limits", "{}", r.text());
    let r = invoke(&e, json!({"name": "limits", "route": "/hello"})).await;
    assert_eq!(error_of(&r), (400, json!("invalid route")));
    let r = invoke(&e, json!({"name": "/users/7"})).await;
    assert_eq!(
        (&r.json()["route"], &r.json()["route_template"]),
        (&json!("/users/7"), &json!("/users/:id"))
    );

    // `context` reaches the handler as `event.context.user`, whatever its keys.
    let ctx = json!({"trace": "t1", "user": {"id": "u1"}});
    let r = invoke(&e, json!({"name": "whoami.py", "context": ctx})).await;
    assert_eq!(body_json(&r), json!({ "user": ctx }));
    let r = invoke(&e, json!({"name": "whoami.py", "context": "x"})).await;
    assert_eq!(error_of(&r), (400, json!("context must be an object")));
    for name in ["nope", "/nope"] {
        let r = invoke(&e, json!({ "name": name })).await;
        assert_eq!(error_of(&r), (404, json!("unknown function or version")), "{name}");
    }
    let r = invoke(&e, json!({})).await;
    assert_eq!(error_of(&r), (400, json!("name is required")));
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn catalog_lists_each_runtimes_functions() {
    let e = compat(&[]).await;
    let c = e.get("/_fn/catalog").await.json();
    let functions = c["runtimes"]["python"]["functions"]
        .as_array()
        .expect("functions")
        .clone();
    let names: Vec<&str> = functions.iter().filter_map(|f| f["name"].as_str()).collect();
    for want in ["limits", "own", "hello.py", "users/[id].py", "whoami.py"] {
        assert!(names.contains(&want), "{want} in {names:?}");
    }
    let limits = functions.iter().find(|f| f["name"] == "limits").expect("limits");
    assert_eq!(limits["has_default"], true);
    assert_eq!(limits["versions"], json!([]));
    assert_eq!(limits["policy"]["methods"], json!(["GET", "POST"]));
    assert_eq!(limits["policy"]["max_body_bytes"], 10);
    assert!(
        limits["policy"]["routes"]
            .as_array()
            .is_some_and(|r| r.contains(&json!("/limits"))),
        "{limits}"
    );
    let own = functions.iter().find(|f| f["name"] == "own").expect("own");
    assert_eq!(own["policy"]["timeout_ms"], 1234);
    e.stop().await;
}

fn data(r: &Resp) -> Vec<String> {
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|l| l.as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_have_fastfns_three_files_and_shape() {
    let logs_dir = tempfile::tempdir().expect("temp");
    let dir = logs_dir.path().display().to_string();
    let e = compat(&[("FN_LOG_DIR", dir.as_str())]).await;
    assert_eq!(e.get("/hello?name=a").await.status, 200);
    let r = e
        .get("/_fn/logs?file=runtime&format=json&runtime=python&fn=hello.py&stream=stdout")
        .await;
    let out = r.json();
    for (k, v) in [
        ("file", json!("runtime")),
        ("runtime", json!("python")),
        ("fn", json!("hello.py")),
        ("version", Value::Null),
        ("stream", json!("stdout")),
        ("lines", json!(1)),
    ] {
        assert_eq!(out[k], v, "{k}: {out}");
    }
    assert_eq!(data(&r), ["[python] [fn:hello.py@default stdout] hello printed a"]);
    let r = e.get("/_fn/logs?file=runtime&format=json&version=v9").await;
    assert!(data(&r).is_empty(), "no such version");

    let access = data(&e.get("/_fn/logs?file=access&format=json").await);
    let line = access
        .iter()
        .find(|l| l.contains("\"GET /hello?name=a HTTP/1.1\""))
        .unwrap_or_else(|| panic!("{access:?}"));
    assert!(line.starts_with("127.0.0.1 - ["), "{line}");
    assert!(line.contains(" status=200 bytes=") && line.contains(" rt="), "{line}");

    // An answer of 500 or more goes to the error log, which is what `/_fn/logs` shows by
    // default, as text.
    assert_eq!(e.get("/fail").await.status, 500);
    let r = e.get("/_fn/logs").await;
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    assert!(
        r.text().contains("[error] GET /fail answered 500 (client 127.0.0.1)"),
        "{}",
        r.text()
    );
    let error = std::fs::read_to_string(logs_dir.path().join("error.log")).expect("error.log");
    assert!(error.contains("GET /fail answered 500"), "{error}");

    for bad in ["file=nginx", "file=runtime&stream=both"] {
        let r = e.get(&format!("/_fn/logs?{bad}")).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
    }
    // The same lines were appended to FN_LOG_DIR.
    let runtime = std::fs::read_to_string(logs_dir.path().join("runtime.log")).expect("runtime.log");
    assert!(
        runtime.contains("[python] [fn:hello.py@default stdout] hello printed a"),
        "{runtime}"
    );
    let access = std::fs::read_to_string(logs_dir.path().join("access.log")).expect("access.log");
    assert!(access.contains("\"GET /hello?name=a HTTP/1.1\" status=200"), "{access}");
    // `since` gives only newer lines: the follower's cursor.
    let next = e.get("/_fn/logs?file=access&format=json").await.json()["next"]
        .as_u64()
        .expect("next");
    assert_eq!(e.get("/hello?name=b").await.status, 200);
    let newer = data(&e.get(&format!("/_fn/logs?file=access&format=json&since={next}")).await);
    assert!(
        newer.iter().any(|l| l.contains("/hello?name=b")) && !newer.iter().any(|l| l.contains("/hello?name=a")),
        "{newer:?}"
    );
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn openapi_names_operations_like_the_original() {
    let e = compat(&[]).await;
    let spec = e.get("/_fn/openapi.json").await.json();
    let get = &spec["paths"]["/limits"]["get"];
    assert_eq!(get["operationId"], "get_python_limits_default");
    assert_eq!(get["tags"], json!(["functions"]));
    assert_eq!(get["summary"], "GET Echo a small body");
    let query: Vec<(Value, Value)> = get["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .filter(|p| p["in"] == "query")
        .map(|p| (p["name"].clone(), p["example"].clone()))
        .collect();
    assert_eq!(query, vec![(json!("count"), json!(3)), (json!("mode"), json!("short"))]);
    let post = &spec["paths"]["/limits"]["post"];
    assert_eq!(
        post["requestBody"]["content"]["application/json"]["examples"]["primary"]["value"],
        json!({"text": "hi"})
    );
    assert!(
        spec["paths"]["/limits"]["delete"].is_null(),
        "methods follow invoke.methods"
    );
    let user = &spec["paths"]["/users/{id}"]["get"];
    assert_eq!(user["operationId"], "get_python_users__id__py_default");
    assert_eq!(user["summary"], "GET invoke python/users/[id].py");
    assert_eq!(user["parameters"][0]["in"], "path");
    assert!(
        spec["paths"]["/_fn/health"].is_null(),
        "internal paths are off by default"
    );
    assert_eq!(
        spec["tags"],
        json!([{"name": "functions", "description": "Invocable functions"}])
    );
    // servers: the request's Host, else X-Forwarded-Proto/Host.
    let url = format!("http://{}", e.addr());
    assert_eq!(spec["servers"], json!([{ "url": url }]));
    let r = e
        .send(
            "GET",
            "/openapi.json",
            &[
                ("X-Forwarded-Proto", "https"),
                ("X-Forwarded-Host", "api.example.com, proxy"),
            ],
            None,
        )
        .await;
    assert_eq!(r.json()["servers"], json!([{"url": "https://api.example.com"}]));
    e.stop().await;

    let e = compat(&[
        ("FN_PUBLIC_BASE_URL", "https://pub.example.com/"),
        ("FN_OPENAPI_INCLUDE_INTERNAL", "1"),
    ])
    .await;
    let spec = e
        .send(
            "GET",
            "/_fn/openapi.json",
            &[("X-Forwarded-Host", "ignored.example.com")],
            None,
        )
        .await
        .json();
    assert_eq!(spec["servers"], json!([{"url": "https://pub.example.com"}]));
    for (path, method, id) in [
        ("/_fn/health", "get", "internal_health_get"),
        ("/_fn/reload", "post", "internal_reload_post"),
        ("/_fn/invoke", "post", "internal_invoke_post"),
        ("/_fn/logs", "get", "internal_logs_get"),
    ] {
        assert_eq!(spec["paths"][path][method]["operationId"], id, "{path}");
        assert_eq!(spec["paths"][path][method]["tags"], json!(["internal"]), "{path}");
    }
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn openapi_include_internal_from_fastfn_json() {
    let dir = copy_fixture("compat");
    std::fs::write(dir.path().join("fastfn.json"), r#"{"openapi_include_internal": true}"#).expect("write");
    let e = start_in(dir.path(), &[("FN_RUNTIMES", "python")]).await;
    let spec = e.get("/openapi.json").await.json();
    assert_eq!(
        spec["paths"]["/_fn/catalog"]["get"]["operationId"],
        "internal_catalog_get"
    );
    e.stop().await;
    // The environment wins over the file.
    let e = start_in(
        dir.path(),
        &[("FN_RUNTIMES", "python"), ("FN_OPENAPI_INCLUDE_INTERNAL", "0")],
    )
    .await;
    assert!(e.get("/openapi.json").await.json()["paths"]["/_fn/catalog"].is_null());
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn public_aliases_and_swagger_ui() {
    let e = compat(&[]).await;
    // `/openapi.json` is public (a non-local client gets it); `/_fn/openapi.json` is not.
    let r = e.send("GET", "/openapi.json", &[XFF], None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["openapi"], "3.1.0");
    assert_eq!(e.send("GET", "/_fn/openapi.json", &[XFF], None).await.status, 403);
    let metrics = e.send("GET", "/system/metrics", &[XFF], None).await;
    assert_eq!(metrics.status, 200);
    assert_eq!(metrics.json()["runtime_order"], json!(["python"]));
    assert!(metrics.json()["functions"]["summary"].is_object());

    let page = e.get("/_fn/docs").await;
    assert_eq!(page.status, 200);
    let html = page.text();
    for needle in [
        "/_fn/docs/swagger-ui-bundle.js",
        "/_fn/docs/swagger-ui.css",
        "SwaggerUIBundle(",
        "/_fn/openapi.json",
    ] {
        assert!(html.contains(needle), "{needle}: {html}");
    }
    assert!(!html.contains("cdn") && !html.contains("https://"), "no CDN: {html}");
    let js = e.get("/_fn/docs/swagger-ui-bundle.js").await;
    assert_eq!(js.status, 200);
    assert_eq!(js.header("content-type"), Some("text/javascript"));
    assert!(js.body.len() > 500_000 && js.text().contains("SwaggerUIBundle"));
    let css = e.get("/_fn/docs/swagger-ui.css").await;
    assert_eq!(css.header("content-type"), Some("text/css; charset=utf-8"));
    assert!(css.text().contains(".swagger-ui"));
    assert_eq!(e.get("/_fn/docs/nope.js").await.status, 404);
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn root_serves_the_landing_page_or_the_home_action() {
    let e = compat(&[]).await;
    let r = e.get("/").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    let html = r.text();
    assert!(html.contains("/_fn/docs") && html.contains("/openapi.json") && html.contains("/_fn/health"));
    e.stop().await;

    // A project without routes has no landing page.
    let empty = tempfile::tempdir().expect("temp");
    let e = start_in(empty.path(), &[("FN_RUNTIMES", "python")]).await;
    assert_eq!(error_of(&e.get("/").await), (404, json!("not found")));
    e.stop().await;

    let dir = copy_fixture("compat");
    let root_cfg = dir.path().join("fn.config.json");
    std::fs::write(&root_cfg, r#"{"home": {"redirect": "/_fn/docs"}}"#).expect("write");
    let e = start_in(dir.path(), &[("FN_RUNTIMES", "python")]).await;
    let r = e.get("/").await;
    assert_eq!((r.status, r.header("location")), (302, Some("/_fn/docs")));
    // Edits apply with the hot reload (read when the map is built, not per request), and
    // `home.function` serves `/` as that path.
    std::fs::write(&root_cfg, r#"{"home": {"function": "/hello"}}"#).expect("write");
    let t = std::time::Instant::now();
    let mut r = e.get("/").await;
    while r.status == 302 && t.elapsed() < std::time::Duration::from_secs(3) {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        r = e.get("/").await;
    }
    assert_eq!(r.json(), json!({"message": "Hello, world!"}));
    e.stop().await;
    // The environment comes first.
    let e = start_in(
        dir.path(),
        &[("FN_RUNTIMES", "python"), ("FN_HOME_REDIRECT", "https://example.com/x")],
    )
    .await;
    assert_eq!(e.get("/").await.header("location"), Some("https://example.com/x"));
    e.stop().await;
    let e = start_in(
        dir.path(),
        &[
            ("FN_RUNTIMES", "python"),
            ("FN_HOME_FUNCTION", "/users/5"),
            ("FN_HOME_REDIRECT", "/elsewhere"),
        ],
    )
    .await;
    assert_eq!(
        e.get("/").await.json(),
        json!({"params": {"id": "5"}, "path": "/"}),
        "FN_HOME_FUNCTION before FN_HOME_REDIRECT, as in the original"
    );
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn default_runtime_order_is_pythons_first() {
    // No FN_RUNTIMES: the original's native order decides who answers a shared URL.
    let dir = tempfile::tempdir().expect("temp");
    std::fs::write(
        dir.path().join("dup.py"),
        "def handler(event):\n    return {'who': 'python'}\n",
    )
    .expect("write");
    std::fs::write(
        dir.path().join("dup.js"),
        "exports.handler = async () => ({ who: 'node' });\n",
    )
    .expect("write");
    let sockets = crate::support::socket_base();
    let settings = fastfn::config::project::Settings::resolve(
        &fastfn::config::project::Overrides {
            dir: Some(dir.path().to_path_buf()),
            port: Some(0),
            ..Default::default()
        },
        &|k| match k {
            "FN_SOCKET_BASE_DIR" => Some(sockets.path().display().to_string()),
            _ => None,
        },
        dir.path(),
    )
    .expect("settings");
    let order: Vec<&str> = settings.runtimes.iter().map(|r| r.name()).collect();
    assert_eq!(order, ["python", "node", "php", "lua"]);
    let engine = fastfn::Engine::start(settings).await.expect("start");
    let r = crate::support::request(engine.addr(), "GET", "/dup", &[], None).await;
    assert_eq!(r.json(), json!({"who": "python"}), "{}", r.text());
    engine.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn resolve_explains_each_answer() {
    let e = compat(&[]).await;
    // The query is not part of the path.
    let r = e.get("/_fn/resolve?url=/users/3%3Fx").await.json();
    assert_eq!(
        (&r["status"], &r["route"], &r["params"], &r["source"], &r["file"]),
        (
            &json!(200),
            &json!("/users/:id"),
            &json!({"id": "3"}),
            &json!("file"),
            &json!("users/[id].py")
        ),
        "{r}"
    );
    let r = e.get("/_fn/resolve?method=DELETE&url=/limits").await.json();
    assert_eq!((&r["status"], &r["allow"]), (&json!(404), &json!("GET, POST")), "{r}");
    let r = e.get("/_fn/resolve?url=/").await.json();
    assert_eq!((&r["status"], &r["source"]), (&json!(200), &json!("landing")), "{r}");
    let r = e.get("/_fn/resolve?url=/nope").await.json();
    assert_eq!(r["status"], 404, "{r}");
    assert!(
        r.get("route").is_none() && r["why"].is_string(),
        "absent keys are left out: {r}"
    );
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_home_function_comes_before_a_static_index() {
    let dir = copy_fixture("compat");
    std::fs::create_dir(dir.path().join("public")).expect("mkdir");
    std::fs::write(dir.path().join("public/index.html"), "<p>static home</p>").expect("write");
    let root_cfg = dir.path().join("fn.config.json");
    std::fs::write(&root_cfg, r#"{"assets": {"directory": "public"}}"#).expect("write");
    let e = start_in(dir.path(), &[("FN_RUNTIMES", "python")]).await;
    assert_eq!(e.get("/").await.text(), "<p>static home</p>");
    e.stop().await;
    std::fs::write(
        &root_cfg,
        r#"{"assets": {"directory": "public"}, "home": {"function": "/hello"}}"#,
    )
    .expect("write");
    let e = start_in(dir.path(), &[("FN_RUNTIMES", "python")]).await;
    assert_eq!(e.get("/").await.json(), json!({"message": "Hello, world!"}));
    assert_eq!(e.get("/index.html").await.text(), "<p>static home</p>");
    e.stop().await;
}
