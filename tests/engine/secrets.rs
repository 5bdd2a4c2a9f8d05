//! Secrets: `is_secret` keys of `fn.env.json` reach their handler as `event.secrets` (the
//! file's value, or the one stored through `/_fn/secrets`), and the values never appear in
//! logs, health, catalog, `/_fn/invoke` output, the dashboard's env listing, or error bodies.
//! `fixtures/secrets` (see its README).

use crate::support::{start, Resp, TestEngine};
use serde_json::{json, Value};

const CSRF: (&str, &str) = ("X-Fn-Request", "1");
const FILE_TOKEN: &str = "file-token-123";
const STORED_TOKEN: &str = "stored-token-456";

async fn engine() -> TestEngine {
    let e = start("secrets", &[("FN_RUNTIMES", "python")]).await;
    e.ready().await;
    e
}

async fn store(e: &TestEngine, body: Value, headers: &[(&str, &str)]) -> Resp {
    e.send("POST", "/_fn/secrets", headers, Some(body.to_string().as_bytes()))
        .await
}

fn assert_no_secret(what: &str, text: &str) {
    for v in [FILE_TOKEN, STORED_TOKEN] {
        assert!(!text.contains(v), "{what} shows a secret value: {text}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_secret_reaches_its_handler_and_is_masked_everywhere_else() {
    let e = engine().await;
    // The file's value, for this function only.
    let r = e.get("/vault").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({"secrets": {"API_TOKEN": FILE_TOKEN}, "greeting": "hi"})
    );
    assert_eq!(e.get("/plain").await.json(), json!({"has_secrets": false}));

    // `/_fn/secrets` is guarded like every admin write.
    let r = store(&e, json!({"key": "API_TOKEN", "value": STORED_TOKEN}), &[]).await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert_no_secret("a refused write", &r.text());
    // A bad key is refused without echoing the value.
    let r = store(&e, json!({"key": "no-dashes", "value": STORED_TOKEN}), &[CSRF]).await;
    assert_eq!(r.status, 400);
    assert_no_secret("an error body", &r.text());
    let r = store(&e, json!({"key": "API_TOKEN"}), &[CSRF]).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json(), json!({"error": "invalid json body: require key/value"}));
    let r = store(&e, json!({"key": "API_TOKEN", "value": STORED_TOKEN}), &[CSRF]).await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json(), json!({"status": "created", "key": "API_TOKEN"}));

    // The stored value wins over the file's.
    assert_eq!(
        e.get("/vault").await.json()["secrets"],
        json!({"API_TOKEN": STORED_TOKEN})
    );
    let listed = e.get("/_fn/secrets").await;
    assert_eq!(listed.json()[0]["key"], "API_TOKEN");
    assert_no_secret("GET /_fn/secrets", &listed.text());

    // The handler printed it: the runtime log and /_fn/invoke show it masked.
    let r = e
        .send(
            "POST",
            "/_fn/invoke",
            &[CSRF, ("Content-Type", "application/json")],
            Some(json!({"name": "vault"}).to_string().as_bytes()),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let out = r.json();
    assert_eq!(out["stdout"], "using token ********\n", "{out}");
    let logs = e.get("/_fn/logs?file=runtime&format=json&lines=100").await;
    assert!(logs.text().contains("using token ********"), "{}", logs.text());
    assert_no_secret("the runtime log", &logs.text());
    for path in ["/_fn/health", "/_fn/catalog", "/_fn/openapi.json"] {
        assert_no_secret(path, &e.get(path).await.text());
    }

    // The dashboard's env listing: plain values shown, secrets hidden.
    let env = e.get("/_fn/env").await;
    assert_eq!(env.status, 200);
    assert_no_secret("/_fn/env", &env.text());
    let vault = env.json()["functions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "vault")
        .cloned()
        .unwrap();
    assert_eq!(vault["file"], "vault/fn.env.json");
    assert_eq!(
        vault["env"],
        json!([{"key": "API_TOKEN", "value": "<hidden>", "is_secret": true, "stored": true},
               {"key": "GREETING", "value": "hi", "is_secret": false, "stored": false}])
    );

    // Deleted: back to the file's value.
    let r = e.send("DELETE", "/_fn/secrets?key=API_TOKEN", &[CSRF], None).await;
    assert_eq!(r.json(), json!({"status": "deleted", "key": "API_TOKEN"}));
    assert_eq!(
        e.get("/vault").await.json()["secrets"],
        json!({"API_TOKEN": FILE_TOKEN})
    );
    assert_eq!(e.get("/_fn/secrets").await.json(), json!([]));
    let r = e.send("DELETE", "/_fn/secrets", &[CSRF], None).await;
    assert_eq!(r.json(), json!({"error": "missing key parameter"}));
    e.stop().await;
}

/// The new admin endpoints sit behind the same guard as the rest of `/_fn`: switched off with
/// the admin API, and refused to a `Host` that is not loopback (DNS rebinding).
#[tokio::test(flavor = "multi_thread")]
async fn secrets_env_and_jobs_are_guarded_like_every_admin_endpoint() {
    let e = start("secrets", &[("FN_RUNTIMES", "python"), ("FN_ADMIN_API_ENABLED", "0")]).await;
    for path in ["/_fn/secrets", "/_fn/env", "/_fn/jobs", "/_fn/jobs/job-1-1-000001"] {
        let r = e.get(path).await;
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(r.json(), json!({"error": "admin api disabled"}), "{path}");
    }
    // User routes keep working, secrets included.
    assert_eq!(e.get("/vault").await.json()["secrets"]["API_TOKEN"], FILE_TOKEN);
    e.stop().await;
    let e = engine().await;
    for path in ["/_fn/secrets", "/_fn/env", "/_fn/jobs"] {
        let r = e.send("GET", path, &[("Host", "evil.example.com")], None).await;
        assert_eq!(r.status, 421, "{path}: {}", r.text());
        assert_no_secret(path, &r.text());
    }
    e.stop().await;
}
