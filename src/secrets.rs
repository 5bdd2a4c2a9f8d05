//! Secrets: keys marked `is_secret` in a function's `fn.env.json` reach its handler as
//! `event.secrets` (FastFN's `fn.env.json` `{"value", "is_secret"}` and `/_fn/secrets`), and
//! their values are masked everywhere else.
//!
//! - `event.secrets` holds the function's `is_secret` keys only (never another function's),
//!   each with the value stored through `/_fn/secrets` when there is one, else the file's
//!   value. Daemons still merge every `fn.env.json` value into `event.env`, as in the original.
//! - `/_fn/secrets` (behind the admin guard): `GET` lists the stored keys (never values),
//!   `POST {key, value}` stores one, `DELETE ?key=` removes it. Stored values live in memory,
//!   as the original keeps them (its shared dict): they do not survive a restart.
//! - `GET /_fn/env`: every function's `fn.env.json` with secret values replaced by `<hidden>`
//!   (the original console's mask): what the dashboard shows.
//! - Masking: handler output (`stdout`/`stderr` of a reply, which feeds the runtime log, the
//!   debug headers, `/_fn/invoke` and job results) has every known secret value of at least
//!   [`MIN_MASKED_LEN`] characters replaced by `********`. Error bodies never carry values.
//!
//! Hot path: a call reads one `ArcSwap` (the per-folder cache) and, once a second per folder,
//! `stat`s the file; a function without secrets allocates nothing; with no secret known
//! anywhere, masking is one more `ArcSwap` load.

use crate::engine::Shared;
use crate::rescue::{json_response, Body, Failure};
use crate::routing::Target;
use arc_swap::ArcSwap;
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::http::request::Parts;
use hyper::{Method, StatusCode};
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

pub const ENV_FILE: &str = "fn.env.json";
/// What a masked value shows (output) and what the env listing shows (the original's).
pub const MASK: &str = "********";
pub const HIDDEN: &str = "<hidden>";
/// Shorter values are not masked in output: `"1"` would garble every line.
pub const MIN_MASKED_LEN: usize = 4;
/// A cached `fn.env.json` is looked at again after this long.
const RECHECK: Duration = Duration::from_secs(1);
const MAX_BODY: usize = 64 * 1024;

/// Why a `/_fn/secrets` request failed (status in [`SecretError::status`], mapped once in
/// [`crate::rescue`]). Messages never include a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("invalid json body: require key/value")]
    Invalid,
    #[error("invalid key: letters, digits and _ only, not starting with a digit")]
    InvalidKey,
    #[error("missing key parameter")]
    MissingKey,
}

impl SecretError {
    pub fn status(&self) -> u16 {
        400
    }
}

/// One `fn.env.json` entry as the dashboard sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ts_rs::TS)]
#[ts(export)]
pub struct EnvEntry {
    pub key: String,
    /// The value, or `<hidden>` for a secret.
    pub value: String,
    pub is_secret: bool,
    /// A value for this key is stored through `/_fn/secrets` (and wins over the file's).
    pub stored: bool,
}

/// A function's `fn.env.json`, masked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ts_rs::TS)]
#[ts(export)]
pub struct FunctionEnv {
    pub runtime: crate::runtime::RuntimeKind,
    pub name: String,
    pub version: String,
    /// The file, relative to the functions root.
    pub file: String,
    pub env: Vec<EnvEntry>,
    /// The file could not be read as an object of values (the daemons answer 500).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub error: Option<String>,
}

/// A secret stored through `/_fn/secrets` (value never serialised).
#[derive(Debug, Clone)]
struct Stored {
    value: String,
    created: u64,
    updated: Option<u64>,
}

/// What one `fn.env.json` holds, as read at `mtime`.
#[derive(Debug, Default)]
struct EnvFile {
    mtime: Option<SystemTime>,
    /// Epoch ms of the last look at the file.
    checked_ms: AtomicU64,
    /// `(key, value, is_secret)` in file order.
    entries: Vec<(String, String, bool)>,
    has_secrets: bool,
    error: Option<String>,
}

/// Parse a `fn.env.json` text (the daemons' rules: `"K": "v"` or `{"value", "is_secret"}`;
/// null values are left out; numbers and booleans become text). A secret key without a value
/// (`{"is_secret": true}`, what `fastfn export k8s` leaves in the image) takes the value of
/// the engine's environment variable of that name (`env`), when there is one: in a pod the
/// Secret arrives that way, so `event.secrets` holds what it holds locally.
fn parse_env(text: &[u8], env: &dyn Fn(&str) -> Option<String>) -> Result<Vec<(String, String, bool)>, String> {
    let v: Value = serde_json::from_slice(text).map_err(|e| format!("invalid JSON at line {}", e.line()))?;
    let Value::Object(map) = v else {
        return Err("fn.env.json must hold an object".into());
    };
    let mut out = Vec::new();
    for (k, v) in map {
        let (value, secret) = match v {
            Value::Object(o) => (
                o.get("value").cloned().unwrap_or(Value::Null),
                o.get("is_secret") == Some(&Value::Bool(true)),
            ),
            other => (other, false),
        };
        let text = match value {
            Value::Null if secret => match env(&k) {
                Some(v) => v,
                None => continue,
            },
            Value::Null => continue,
            Value::String(s) => s,
            other => other.to_string(),
        };
        out.push((k, text, secret));
    }
    Ok(out)
}

/// The folder whose `fn.env.json` a target's daemon reads: its handler file's.
fn folder_of(target: &Target) -> &str {
    target.entry.rsplit_once('/').map(|(d, _)| d).unwrap_or("")
}

/// Shards of the folder cache: a folder seen for the first time copies one shard's map, not
/// the whole cache (10,000 functions would otherwise copy 10,000 entries per first call).
const SHARDS: usize = 64;

type Shard = ArcSwap<HashMap<String, Arc<EnvFile>>>;

/// The engine's secrets: stored values, the per-folder `fn.env.json` cache, what to mask.
pub struct Secrets {
    stored: ArcSwap<BTreeMap<String, Stored>>,
    files: Vec<Shard>,
    /// Serialises writers of `stored` and `files` (readers never lock).
    write: Mutex<()>,
    /// Values masked in output, longest first.
    masked: ArcSwap<Vec<String>>,
}

impl Default for Secrets {
    fn default() -> Self {
        Secrets {
            stored: ArcSwap::default(),
            files: (0..SHARDS).map(|_| Shard::default()).collect(),
            write: Mutex::new(()),
            masked: ArcSwap::default(),
        }
    }
}

impl Secrets {
    fn shard(&self, folder: &str) -> &Shard {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        folder.hash(&mut h);
        &self.files[(h.finish() as usize) % SHARDS]
    }

    fn file(&self, root: &Path, folder: &str) -> Arc<EnvFile> {
        let now = crate::clock::epoch_millis();
        if let Some(f) = self.shard(folder).load().get(folder) {
            let checked = f.checked_ms.load(Ordering::Relaxed);
            if now.saturating_sub(checked) < RECHECK.as_millis() as u64 {
                return f.clone();
            }
            let path = root.join(folder).join(ENV_FILE);
            let mtime = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
            if mtime == f.mtime {
                f.checked_ms.store(now, Ordering::Relaxed);
                return f.clone();
            }
        }
        self.read(root, folder, now)
    }

    /// (Re)read a folder's file into the cache.
    fn read(&self, root: &Path, folder: &str, now: u64) -> Arc<EnvFile> {
        let path = root.join(folder).join(ENV_FILE);
        let mtime = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
        let (entries, error) = match mtime {
            None => (Vec::new(), None),
            Some(_) => match std::fs::read(&path).map_err(|e| e.kind().to_string()).and_then(|t| {
                parse_env(&t, &|k| {
                    let v = std::env::var(k).ok();
                    if v.is_none() {
                        // A secret without a value, and none in the environment (a pod
                        // whose Secret lacks the key): said once per read, not dropped
                        // in silence.
                        tracing::warn!(
                            "{}/{ENV_FILE}: secret {k} has no value and no environment variable {k}: \
                                 event.secrets lacks it",
                            if folder.is_empty() { "." } else { folder }
                        );
                    }
                    v
                })
            }) {
                Ok(e) => (e, None),
                Err(e) => (Vec::new(), Some(e)),
            },
        };
        let file = Arc::new(EnvFile {
            mtime,
            checked_ms: AtomicU64::new(now),
            has_secrets: entries.iter().any(|(_, _, s)| *s),
            entries,
            error,
        });
        let _w = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let shard = self.shard(folder);
        let mut files = HashMap::clone(&shard.load());
        let had = files
            .insert(folder.to_string(), file.clone())
            .is_some_and(|old| old.has_secrets);
        shard.store(Arc::new(files));
        // Most folders have no secrets: nothing to mask changes.
        if had || file.has_secrets {
            self.remask();
        }
        file
    }

    /// Recompute the masked values (under `write`).
    fn remask(&self) {
        let mut values: BTreeSet<String> = self.stored.load().values().map(|s| s.value.clone()).collect();
        for shard in &self.files {
            for f in shard.load().values() {
                values.extend(f.entries.iter().filter(|(_, _, s)| *s).map(|(_, v, _)| v.clone()));
            }
        }
        let mut list: Vec<String> = values
            .into_iter()
            .filter(|v| v.chars().count() >= MIN_MASKED_LEN)
            .collect();
        list.sort_by_key(|v| std::cmp::Reverse(v.len()));
        self.masked.store(Arc::new(list));
    }

    /// `event.secrets` for a call: `None` when the function marks no key `is_secret`.
    pub fn for_call(&self, root: &Path, target: &Target) -> Option<Map<String, Value>> {
        let file = self.file(root, folder_of(target));
        if !file.has_secrets {
            return None;
        }
        let stored = self.stored.load();
        Some(
            file.entries
                .iter()
                .filter(|(_, _, secret)| *secret)
                .map(|(k, v, _)| {
                    let value = stored.get(k).map(|s| s.value.clone()).unwrap_or_else(|| v.clone());
                    (k.clone(), Value::String(value))
                })
                .collect(),
        )
    }

    /// Replace every known secret value in `text` (handler output).
    pub fn mask(&self, text: &mut Option<String>) {
        let masked = self.masked.load();
        if masked.is_empty() {
            return;
        }
        if let Some(t) = text.as_mut() {
            for v in masked.iter() {
                if t.contains(v.as_str()) {
                    *t = t.replace(v.as_str(), MASK);
                }
            }
        }
    }

    fn set(&self, key: String, value: String) {
        let _w = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let mut stored = BTreeMap::clone(&self.stored.load());
        let now = crate::clock::epoch_secs() as u64;
        match stored.get_mut(&key) {
            Some(s) => {
                s.value = value;
                s.updated = Some(now);
            }
            None => {
                stored.insert(
                    key,
                    Stored {
                        value,
                        created: now,
                        updated: None,
                    },
                );
            }
        }
        self.stored.store(Arc::new(stored));
        self.remask();
    }

    fn delete(&self, key: &str) {
        let _w = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let mut stored = BTreeMap::clone(&self.stored.load());
        if stored.remove(key).is_some() {
            self.stored.store(Arc::new(stored));
            self.remask();
        }
    }

    /// The stored keys, as the original lists them (`[{key, created, updated?}]`).
    fn list(&self) -> Value {
        Value::Array(
            self.stored
                .load()
                .iter()
                .map(|(k, s)| {
                    let mut o = json!({ "key": k, "created": s.created });
                    if let Some(u) = s.updated {
                        o["updated"] = json!(u);
                    }
                    o
                })
                .collect(),
        )
    }

    /// Every function's env, secrets hidden.
    pub fn functions(&self, root: &Path, routes: &[crate::routing::Route]) -> Vec<FunctionEnv> {
        let stored = self.stored.load();
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for r in routes {
            let t = &r.target;
            if !seen.insert((t.runtime, t.fn_name.clone(), t.version.clone())) {
                continue;
            }
            let folder = folder_of(t);
            let file = self.file(root, folder);
            if file.mtime.is_none() {
                continue;
            }
            out.push(FunctionEnv {
                runtime: t.runtime,
                name: t.fn_name.clone(),
                version: t.version.clone().unwrap_or_else(|| "default".into()),
                file: if folder.is_empty() {
                    ENV_FILE.to_string()
                } else {
                    format!("{folder}/{ENV_FILE}")
                },
                env: file
                    .entries
                    .iter()
                    .map(|(k, v, secret)| EnvEntry {
                        key: k.clone(),
                        value: if *secret { HIDDEN.to_string() } else { v.clone() },
                        is_secret: *secret,
                        stored: *secret && stored.contains_key(k),
                    })
                    .collect(),
                error: file.error.clone(),
            });
        }
        out
    }
}

fn valid_key(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 128
        && !k.starts_with(|c: char| c.is_ascii_digit())
        && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn error(e: SecretError) -> hyper::Response<Body> {
    Failure::Secret(e).into_response()
}

/// `/_fn/secrets` and `/_fn/env`, after the admin guard.
pub(crate) async fn handle(shared: &Arc<Shared>, parts: &Parts, body: Incoming) -> hyper::Response<Body> {
    let secrets = &shared.secrets;
    if parts.uri.path() == "/_fn/env" {
        return match parts.method {
            Method::GET | Method::HEAD => {
                let served = shared.served();
                let root = shared.settings.functions_root.clone();
                let list = secrets.functions(&root, served.discovery.routes.routes());
                json_response(StatusCode::OK, &json!({ "functions": list }))
            }
            _ => Failure::MethodNotAllowed { allow: "GET".into() }.into_response(),
        };
    }
    match parts.method {
        Method::GET | Method::HEAD => json_response(StatusCode::OK, &secrets.list()),
        Method::POST => {
            let bytes: Bytes = match http_body_util::Limited::new(body, MAX_BODY).collect().await {
                Ok(b) => b.to_bytes(),
                Err(_) => return Failure::PayloadTooLarge.into_response(),
            };
            let Ok(Value::Object(payload)) = serde_json::from_slice::<Value>(&bytes) else {
                return error(SecretError::Invalid);
            };
            let key = match payload.get("key") {
                Some(Value::String(k)) if !k.is_empty() => k.clone(),
                _ => return error(SecretError::Invalid),
            };
            let value = match payload.get("value") {
                Some(Value::String(v)) if !v.is_empty() => v.clone(),
                Some(v @ (Value::Number(_) | Value::Bool(true))) => v.to_string(),
                _ => return error(SecretError::Invalid),
            };
            if !valid_key(&key) {
                return error(SecretError::InvalidKey);
            }
            secrets.set(key.clone(), value);
            json_response(StatusCode::CREATED, &json!({ "status": "created", "key": key }))
        }
        Method::DELETE => {
            let key = crate::invoke::event::parse_query(parts.uri.query().unwrap_or(""))
                .into_iter()
                .find(|(k, _)| k == "key")
                .and_then(|(_, v)| match v {
                    crate::invoke::event::QueryValueOut::One(s) if !s.is_empty() => Some(s),
                    _ => None,
                });
            let Some(key) = key else {
                return error(SecretError::MissingKey);
            };
            secrets.delete(&key);
            json_response(StatusCode::OK, &json!({ "status": "deleted", "key": key }))
        }
        _ => Failure::MethodNotAllowed {
            allow: "GET, POST, DELETE".into(),
        }
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::RuntimeKind;

    fn target(entry: &str) -> Target {
        Target {
            runtime: RuntimeKind::Python,
            fn_name: "f".into(),
            fn_source_dir: None,
            version: None,
            entry: entry.into(),
            policy: crate::config::FnPolicy::default(),
            explicit: false,
        }
    }

    #[test]
    fn env_files_parse_like_the_daemons() {
        let none = |_: &str| None;
        let e = parse_env(
            br#"{"A": "1", "N": 2, "B": true, "S": {"value": "s3cret", "is_secret": true},
                               "P": {"value": "on", "is_secret": false}, "Z": null}"#,
            &none,
        )
        .unwrap();
        let got: Vec<(&str, &str, bool)> = e.iter().map(|(k, v, s)| (k.as_str(), v.as_str(), *s)).collect();
        assert_eq!(
            got,
            [
                ("A", "1", false),
                ("B", "true", false),
                ("N", "2", false),
                ("P", "on", false),
                ("S", "s3cret", true)
            ]
        );
        assert!(parse_env(b"[1]", &none).is_err());
        assert!(
            parse_env(b"{", &none).unwrap_err().starts_with("invalid JSON"),
            "no file text in errors"
        );
    }

    #[test]
    fn a_secret_without_a_value_comes_from_the_environment() {
        let env = |k: &str| (k == "TOKEN" || k == "PLAIN").then(|| format!("env-{k}"));
        let e = parse_env(
            br#"{"TOKEN": {"is_secret": true}, "GONE": {"is_secret": true},
                 "FILE": {"value": "f", "is_secret": true}, "PLAIN": null}"#,
            &env,
        )
        .unwrap();
        let got: Vec<(&str, &str, bool)> = e.iter().map(|(k, v, s)| (k.as_str(), v.as_str(), *s)).collect();
        // Only a value-less secret reads the environment; a file value wins; a plain null
        // stays out (as the daemons leave it out).
        assert_eq!(got, [("FILE", "f", true), ("TOKEN", "env-TOKEN", true)]);
    }

    #[test]
    fn secrets_reach_their_function_only_and_stored_values_win() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a")).unwrap();
        std::fs::write(
            dir.path().join("a/fn.env.json"),
            r#"{"API_KEY": {"value": "from-file", "is_secret": true}, "PLAIN": "p"}"#,
        )
        .unwrap();
        let s = Secrets::default();
        let a = target("a/handler.py");
        let other = target("b/handler.py");
        assert_eq!(s.for_call(dir.path(), &other), None, "no file: nothing");
        let got = s.for_call(dir.path(), &a).unwrap();
        assert_eq!(Value::Object(got), json!({"API_KEY": "from-file"}));
        s.set("API_KEY".into(), "from-store".into());
        s.set("OTHER_KEY".into(), "not-for-a".into());
        let got = s.for_call(dir.path(), &a).unwrap();
        assert_eq!(
            Value::Object(got),
            json!({"API_KEY": "from-store"}),
            "only keys the file marks"
        );
        s.delete("API_KEY");
        let got = s.for_call(dir.path(), &a).unwrap();
        assert_eq!(got["API_KEY"], "from-file");
        // Listing never shows values.
        let listed = s.list().to_string();
        assert!(
            listed.contains("OTHER_KEY") && !listed.contains("not-for-a"),
            "{listed}"
        );
    }

    #[test]
    fn output_is_masked() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("fn.env.json"),
            r#"{"T": {"value": "tok-123", "is_secret": true}, "X": {"value": "ab", "is_secret": true}}"#,
        )
        .unwrap();
        let s = Secrets::default();
        let mut none = Some("tok-123 here".to_string());
        s.mask(&mut none);
        assert_eq!(none.as_deref(), Some("tok-123 here"), "nothing known yet");
        s.for_call(dir.path(), &target("handler.py"));
        s.set("K".into(), "stored-value".into());
        let mut out = Some("a tok-123 b stored-value c ab".to_string());
        s.mask(&mut out);
        assert_eq!(
            out.as_deref(),
            Some("a ******** b ******** c ab"),
            "short values are left"
        );
        let listed = s.functions(dir.path(), &[]);
        assert!(listed.is_empty());
    }

    #[test]
    fn keys_are_checked() {
        assert!(valid_key("API_KEY") && valid_key("_x1"));
        for bad in ["", "1A", "a-b", "a b", "ä"] {
            assert!(!valid_key(bad), "{bad}");
        }
    }
}
