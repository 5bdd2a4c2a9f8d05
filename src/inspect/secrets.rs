//! Masking of secrets in captured requests: what the request log, HAR and curl exports show
//! unless the user asks to reveal them (`reveal=1`). Replays always use the real values.

use serde_json::Value;

/// What a masked value reads as.
pub const MASK: &str = "••••••";

/// Header names whose values are secrets: credentials, cookies, tokens, keys.
pub fn is_secret_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    matches!(
        n.as_str(),
        "authorization" | "proxy-authorization" | "cookie" | "set-cookie" | "x-fn-admin-token"
    ) || is_secret_key(&n)
}

/// JSON keys (and header names) that name a secret: `password`, `secret`, `token`, `api_key`…
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase().replace(['-', '_'], "");
    [
        "password",
        "passwd",
        "secret",
        "token",
        "apikey",
        "authorization",
        "privatekey",
        "cookie",
    ]
    .iter()
    .any(|s| k.contains(s))
}

/// Headers with secret values masked (unless `reveal`). `Authorization: Bearer x` keeps its
/// scheme.
pub fn mask_headers(headers: &[(String, String)], reveal: bool) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(k, v)| {
            if reveal || !is_secret_header(k) {
                return (k.clone(), v.clone());
            }
            let masked = match v.split_once(' ') {
                Some((scheme, _)) if k.eq_ignore_ascii_case("authorization") => format!("{scheme} {MASK}"),
                _ => MASK.to_string(),
            };
            (k.clone(), masked)
        })
        .collect()
}

/// A body with the values of secret JSON keys masked (unless `reveal`, or the body is not
/// JSON).
pub fn mask_body(body: &str, reveal: bool) -> String {
    if reveal {
        return body.to_string();
    }
    match serde_json::from_str::<Value>(body) {
        Ok(mut v @ (Value::Object(_) | Value::Array(_))) => {
            if mask_value(&mut v) {
                serde_json::to_string(&v).unwrap_or_else(|_| body.to_string())
            } else {
                body.to_string()
            }
        }
        _ => body.to_string(),
    }
}

/// Mask secret keys in place; says whether anything was masked.
fn mask_value(v: &mut Value) -> bool {
    match v {
        Value::Object(map) => {
            let mut any = false;
            for (k, val) in map.iter_mut() {
                if is_secret_key(k) && !val.is_object() && !val.is_array() {
                    *val = Value::String(MASK.into());
                    any = true;
                } else {
                    any |= mask_value(val);
                }
            }
            any
        }
        Value::Array(items) => items.iter_mut().fold(false, |any, i| mask_value(i) | any),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_cookies_and_keys_are_masked_unless_revealed() {
        let h = vec![
            ("Authorization".to_string(), "Bearer abc.def".to_string()),
            ("cookie".to_string(), "sid=1".to_string()),
            ("x-api-key".to_string(), "k".to_string()),
            ("accept".to_string(), "*/*".to_string()),
        ];
        let m = mask_headers(&h, false);
        assert_eq!(m[0].1, format!("Bearer {MASK}"));
        assert_eq!(m[1].1, MASK);
        assert_eq!(m[2].1, MASK);
        assert_eq!(m[3].1, "*/*");
        assert_eq!(mask_headers(&h, true), h);
        let body = r#"{"user":"a","password":"p","nested":[{"api_key":"k"}]}"#;
        let masked: Value = serde_json::from_str(&mask_body(body, false)).unwrap();
        assert_eq!(masked["password"], MASK);
        assert_eq!(masked["nested"][0]["api_key"], MASK);
        assert_eq!(masked["user"], "a");
        assert_eq!(mask_body(body, true), body);
        assert_eq!(mask_body("password=x", false), "password=x", "not JSON: unchanged");
    }
}
