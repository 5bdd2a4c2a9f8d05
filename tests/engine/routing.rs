//! Contract §2 over HTTP: every routing form, shadowing by runtime order, 409, 404/405
//! (a method mismatch is 404 except at `/<name>@<version>`).

use crate::support::{start, Resp};
use serde_json::{json, Value};

/// `file` and `params` a routing fixture handler reports.
fn served_by(r: &Resp) -> (String, Value) {
    assert_eq!(r.status, 200, "body: {}", r.text());
    let v = r.json();
    (v["file"].as_str().unwrap_or("").to_string(), v["params"].clone())
}

#[tokio::test(flavor = "multi_thread")]
async fn file_routes_answer_as_the_contract_says() {
    let e = start("routing", &[]).await;
    let cases: [(&str, &str, &str, Value); 13] = [
        ("GET", "/plain", "plain.js", json!({})),
        ("GET", "/users", "users/index.py", json!({})),
        ("POST", "/items", "post.items.js", json!({})),
        (
            "GET",
            "/users-profile/main-page",
            "Users_Profile/Main_Page.js",
            json!({}),
        ),
        (
            "GET",
            "/accounts/a%20b",
            "accounts/[userId].py",
            json!({"userid": "a b"}),
        ),
        (
            "GET",
            "/files/a/b/c.txt",
            "files/[...path].js",
            json!({"path": "a/b/c.txt"}),
        ),
        ("GET", "/wiki", "wiki/[[...page]].py", json!({})),
        ("GET", "/wiki/x/y", "wiki/[[...page]].py", json!({"page": "x/y"})),
        ("DELETE", "/orders/7", "orders/[id]/delete.py", json!({"id": "7"})),
        ("POST", "/admin/users/9", "admin/post.users.[id].py", json!({"id": "9"})),
        ("GET", "/single", "single/handler.py", json!({})),
        ("GET", "/single/extra", "single/get.extra.py", json!({})),
        ("GET", "/deep/1/2/3/4/5/ok", "deep/1/2/3/4/5/ok.js", json!({})),
    ];
    for (method, path, file, params) in cases {
        let r = e.send(method, path, &[], None).await;
        assert_eq!(served_by(&r), (file.to_string(), params), "{method} {path}");
    }
    // Trailing slash and `//` are ignored.
    assert_eq!(served_by(&e.get("/users/").await).0, "users/index.py");
    assert_eq!(served_by(&e.get("//plain").await).0, "plain.js");
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn private_ignored_and_mismatched_paths_are_404() {
    let e = start("routing", &[]).await;
    let not_found = [
        ("GET", "/items"), // file route, wrong method: falls through, not 405
        ("PUT", "/plain"),
        ("GET", "/twice"), // two method tokens
        ("POST", "/twice"),
        ("GET", "/get/post/twice"),
        ("GET", "/private"), // _private.js
        ("GET", "/_private"),
        ("GET", "/plain.test"),
        ("GET", "/plain/test"),
        ("GET", "/other/spec"),
        ("GET", "/node_modules/pkg"),
        ("GET", "/vendor/lib"),
        ("GET", "/hidden/secret"),
        ("GET", "/.hidden/secret"),
        ("GET", "/src/app"),
        ("GET", "/skipme/here"),         // zero_config.ignore_dirs
        ("GET", "/single/lib"),          // private module of a single-entry folder
        ("GET", "/legacy/other"),        // a folder with fn.routes.json is a leaf
        ("GET", "/deep/1/2/3/4/5/6/no"), // depth limit
        ("GET", "/python/grouped"),      // grouped layout: served at /grouped
        ("POST", "/"),                   // no function at `/` (GET / is the landing page)
        ("GET", "/nope"),
    ];
    for (method, path) in not_found {
        let r = e.send(method, path, &[], None).await;
        assert_eq!(r.status, 404, "{method} {path}: {}", r.text());
        assert_eq!(r.text(), r#"{"error":"not found"}"#, "{method} {path}");
        assert_eq!(r.header("content-type"), Some("application/json"));
    }
    // `/` is never a file route; with routes in the project it is the built-in landing page
    // (the original's; this answered 404 before the compatibility work).
    let r = e.get("/").await;
    assert_eq!(
        (r.status, r.header("content-type")),
        (200, Some("text/html; charset=utf-8"))
    );
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn explicit_functions_versions_routes_json_and_405() {
    let e = start("routing", &[]).await;
    let ok = [
        ("GET", "/api", "api/handler.py", json!({})),
        ("POST", "/api", "api/handler.py", json!({})),
        ("GET", "/api/a/b", "api/handler.py", json!({"wildcard": "a/b"})),
        ("GET", "/api@v2", "api/v2/handler.py", json!({})),
        ("GET", "/svc-alias/ann", "svc/handler.js", json!({"who": "ann"})),
        ("GET", "/svc-any/x/y", "svc/handler.js", json!({"wildcard": "x/y"})),
        ("GET", "/old/path", "legacy/impl.js", json!({})),
        ("POST", "/old/path", "legacy/impl.js", json!({})),
        ("GET", "/x/5", "legacy/y.py", json!({"id": "5"})),
        ("GET", "/grouped", "python/grouped/handler.py", json!({})),
    ];
    for (method, path, file, params) in ok {
        let r = e.send(method, path, &[], None).await;
        assert_eq!(served_by(&r), (file.to_string(), params), "{method} {path}");
    }
    // invoke.routes replaces the default /<name> routes.
    assert_eq!(e.get("/svc").await.status, 404);
    // A method the explicit function does not take is a 404, as in the original…
    // (a default route, its catch-all, a version's catch-all, an invoke.routes route).
    for path in ["/api", "/api/z", "/api@v2/z", "/svc-alias/ann"] {
        let r = e.send("DELETE", path, &[], None).await;
        assert_eq!((r.status, r.header("allow")), (404, None), "{path}");
        assert_eq!(r.text(), r#"{"error":"not found"}"#, "{path}");
    }
    // …except at its named target /<name>@<version>: 405 with Allow.
    let r = e.send("DELETE", "/api@v2", &[], None).await;
    assert_eq!((r.status, r.header("allow")), (405, Some("GET, POST")));
    assert_eq!(r.text(), r#"{"error":"method not allowed"}"#);
    // /_fn/resolve still explains the 404.
    let r = e.get("/_fn/resolve?method=DELETE&url=/api").await.json();
    assert_eq!((&r["status"], &r["allow"]), (&json!(404), &json!("GET, POST")), "{r}");
    assert!(
        r["why"].as_str().unwrap().starts_with("route exists, allows GET, POST"),
        "{r}"
    );
    let r = e.get("/_fn/resolve?method=DELETE&url=/api@v2").await.json();
    assert_eq!((&r["status"], &r["allow"]), (&json!(405), &json!("GET, POST")), "{r}");
    // fn.routes.json methods default to GET: /x/:id is GET only (a routes_json route → 404).
    assert_eq!(e.send("POST", "/x/5", &[], None).await.status, 404);
    assert_eq!(e.get("/api@v9").await.status, 404);
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn same_runtime_duplicates_answer_409() {
    let e = start("routing", &[]).await;
    let r = e.get("/dup").await;
    assert_eq!(r.status, 409);
    assert_eq!(r.text(), r#"{"error":"ambiguous function"}"#);
    let catalog = e.get("/_fn/catalog").await.json();
    assert_eq!(catalog["mapped_route_conflicts"], json!({"/dup": true}));
    let health = e.get("/_fn/health").await.json();
    assert_eq!(health["routing"]["mapped_route_conflicts"], 1);
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cross_runtime_duplicates_follow_the_runtime_order() {
    for (order, winner, loser) in [
        (
            "node,python",
            ("node", "get.conflict.js"),
            ("python", "get.conflict.py"),
        ),
        (
            "python,node",
            ("python", "get.conflict.py"),
            ("node", "get.conflict.js"),
        ),
    ] {
        let e = start("routing", &[("FN_RUNTIMES", order)]).await;
        assert_eq!(served_by(&e.get("/conflict").await).0, winner.1, "{order}");
        let catalog = e.get("/_fn/catalog").await.json();
        let shadowed = catalog["shadowed_routes"].as_array().expect("shadowed_routes");
        assert_eq!(shadowed.len(), 1, "{order}: {shadowed:?}");
        assert_eq!(shadowed[0]["route"], "/conflict");
        assert_eq!(shadowed[0]["winner"], json!({"runtime": winner.0, "fn_name": winner.1}));
        assert_eq!(shadowed[0]["loser"], json!({"runtime": loser.0, "fn_name": loser.1}));
        let order_list: Vec<&str> = order.split(',').collect();
        assert_eq!(catalog["runtime_order"], json!(order_list));
        let mapped = &catalog["mapped_routes"]["/conflict"];
        assert_eq!(mapped.as_array().map(Vec::len), Some(1));
        assert_eq!(mapped[0]["runtime"], winner.0);
        let health = e.get("/_fn/health").await.json();
        assert_eq!(health["routing"]["shadowed_routes"], 1, "{order}");
        e.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn openapi_lists_paths_with_templates() {
    let e = start("routing", &[]).await;
    let spec = e.get("/_fn/openapi.json").await.json();
    assert_eq!(spec["openapi"], "3.1.0");
    let paths = spec["paths"].as_object().expect("paths");
    for p in [
        "/plain",
        "/accounts/{userid}",
        "/files/{path}",
        "/api",
        "/api/{wildcard}",
        "/api@v2/{wildcard}",
        "/svc-alias/{who}",
        "/orders/{id}",
    ] {
        assert!(paths.contains_key(p), "{p} missing from {:?}", paths.keys());
    }
    assert!(paths["/orders/{id}"].get("delete").is_some());
    assert!(paths["/api"].get("post").is_some());
    let params = &paths["/accounts/{userid}"]["get"]["parameters"];
    assert_eq!(params[0]["name"], "userid");
    assert_eq!(params[0]["in"], "path");
    assert!(!paths.keys().any(|k| k.contains(':') || k.contains('*')));
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn env_ignore_dirs_skip_folders() {
    let e = start("routing", &[("FN_ZERO_CONFIG_IGNORE_DIRS", "wiki, files")]).await;
    for path in ["/wiki", "/wiki/a", "/files/a"] {
        assert_eq!(e.get(path).await.status, 404, "{path}");
    }
    assert_eq!(e.get("/plain").await.status, 200);
    e.stop().await;
}

/// Every URL the demo's README lists answers as the README says (2xx, or 418 for the teapot).
#[tokio::test(flavor = "multi_thread")]
async fn demo_readme_urls_answer() {
    let readme = std::fs::read_to_string(crate::support::fixture("demo").join("README.md")).expect("README.md");
    let mut calls = Vec::new();
    for row in readme.lines().filter(|l| l.starts_with("| `")) {
        let first_cell = row.split('|').nth(1).unwrap_or("");
        for code in first_cell.split('`').skip(1).step_by(2) {
            if let Some((method, path)) = code.split_once(' ') {
                calls.push((method.to_string(), path.to_string()));
            }
        }
    }
    assert!(calls.len() >= 25, "{calls:?}");
    let e = start("demo", &[]).await;
    for (method, path) in &calls {
        let r = e.send(method, path, &[], Some(b"{}")).await;
        let want_ok = (200..300).contains(&r.status) || (path == "/teapot" && r.status == 418);
        assert!(want_ok, "{method} {path}: {} {}", r.status, r.text());
    }
    // A method /counter does not take: 404, as the original answers (was 405).
    let r = e.send("DELETE", "/counter", &[], None).await;
    assert_eq!((r.status, r.header("allow")), (404, None));
    assert_eq!(e.get("/shop/cart").await.status, 404);
    e.stop().await;
}
