//! Optional console login (FastFN's `FN_CONSOLE_LOGIN_*`): one configured user, a password
//! checked against a PBKDF2-SHA256 hash (or FastFN's legacy `sha256:<hex>`, or a plain
//! password), a session cookie signed with HMAC-SHA256 that expires after a TTL and is bound
//! to the current credentials (rotating the password ends existing sessions), and a limit on
//! failed attempts per client address.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

type HmacSha256 = Hmac<Sha256>;

/// FastFN's cookie name.
pub const COOKIE_NAME: &str = "fastfn_session";
/// FastFN refuses weaker hashes.
const MIN_PBKDF2_ITERATIONS: u32 = 100_000;

/// Login settings from the environment (resolved once, with the rest of `Settings`).
#[derive(Debug, Clone, Default)]
pub struct LoginSettings {
    /// `FN_CONSOLE_LOGIN_ENABLED`: writes from the console need a session.
    pub enabled: bool,
    /// `FN_CONSOLE_LOGIN_API`: every admin API call needs a session (or the admin token).
    pub api: bool,
    pub username: Option<String>,
    pub password: Option<Password>,
    /// `FN_CONSOLE_SESSION_SECRET(_FILE)`; without one, a random per-process key (sessions
    /// then end when the engine stops).
    pub secret: Option<String>,
    pub ttl: Duration,
    /// Failed attempts allowed per client within `window` (0 = no limit).
    pub max_attempts: u32,
    pub window: Duration,
}

/// How the configured password is stored.
#[derive(Clone, PartialEq, Eq)]
pub enum Password {
    Pbkdf2 {
        iterations: u32,
        salt: Vec<u8>,
        digest: Vec<u8>,
    },
    /// FastFN's legacy `sha256:<hex>`.
    Sha256(Vec<u8>),
    /// `FN_CONSOLE_LOGIN_PASSWORD` (compatibility fallback).
    Plain(String),
}

impl std::fmt::Debug for Password {
    // Never print a hash or a password into logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(..)")
    }
}

fn hex(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Password {
    /// `pbkdf2-sha256:<iterations>:<salt_hex>:<digest_hex>` or `sha256:<hex>`.
    pub fn parse_hash(text: &str) -> Result<Password, String> {
        let text = text.trim();
        if let Some(rest) = text.strip_prefix("pbkdf2-sha256:") {
            let parts: Vec<&str> = rest.split(':').collect();
            let [iters, salt, digest] = parts.as_slice() else {
                return Err("expected pbkdf2-sha256:<iterations>:<salt_hex>:<digest_hex>".into());
            };
            let iterations: u32 = iters.parse().map_err(|_| "iterations must be a number".to_string())?;
            if iterations < MIN_PBKDF2_ITERATIONS {
                return Err(format!("at least {MIN_PBKDF2_ITERATIONS} iterations"));
            }
            let salt = hex(salt).filter(|s| !s.is_empty()).ok_or("salt must be hex")?;
            let digest = hex(digest).filter(|d| d.len() >= 16).ok_or("digest must be hex")?;
            return Ok(Password::Pbkdf2 {
                iterations,
                salt,
                digest,
            });
        }
        if let Some(rest) = text.strip_prefix("sha256:") {
            return hex(rest)
                .filter(|d| d.len() == 32)
                .map(Password::Sha256)
                .ok_or_else(|| "sha256 digest must be 64 hex digits".into());
        }
        Err("unknown hash format (expected pbkdf2-sha256:… or sha256:…)".into())
    }

    /// Checks a password in constant time (for equal lengths).
    pub fn verify(&self, given: &str) -> bool {
        match self {
            Password::Pbkdf2 {
                iterations,
                salt,
                digest,
            } => {
                let mut out = vec![0u8; digest.len()];
                pbkdf2::pbkdf2_hmac::<Sha256>(given.as_bytes(), salt, *iterations, &mut out);
                ct_eq(&out, digest)
            }
            Password::Sha256(digest) => ct_eq(&Sha256::digest(given.as_bytes()), digest),
            Password::Plain(p) => ct_eq(given.as_bytes(), p.as_bytes()),
        }
    }

    /// What sessions are bound to: changes when the password does.
    fn fingerprint(&self) -> Vec<u8> {
        let mut h = Sha256::new();
        match self {
            Password::Pbkdf2 { salt, digest, .. } => {
                h.update(b"p");
                h.update(salt);
                h.update(digest);
            }
            Password::Sha256(d) => {
                h.update(b"s");
                h.update(d);
            }
            Password::Plain(p) => {
                h.update(b"t");
                h.update(p.as_bytes());
            }
        }
        h.finalize().to_vec()
    }
}

pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A hash in FastFN's recommended format (tests and docs; the user makes theirs with Python).
pub fn hash_password(password: &str, salt: &[u8], iterations: u32) -> String {
    let mut out = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), salt, iterations, &mut out);
    format!("pbkdf2-sha256:{iterations}:{}:{}", to_hex(salt), to_hex(&out))
}

impl LoginSettings {
    /// Reads `FN_CONSOLE_LOGIN_*` and `FN_CONSOLE_SESSION_*` (`*_FILE` variants read the
    /// value from a file). A hash that does not parse is an error, not a silent "no password".
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<LoginSettings, (String, String)> {
        let value = |name: &str| -> Result<Option<String>, (String, String)> {
            if let Some(v) = env(name).filter(|v| !v.is_empty()) {
                return Ok(Some(v));
            }
            let file_var = format!("{name}_FILE");
            match env(&file_var).filter(|v| !v.is_empty()) {
                None => Ok(None),
                Some(path) => std::fs::read_to_string(&path)
                    .map(|s| Some(s.trim().to_string()))
                    .map_err(|e| (file_var, format!("cannot read `{path}`: {e}"))),
            }
        };
        let flag = |name: &str| -> Result<bool, (String, String)> {
            match env(name).map(|s| s.trim().to_ascii_lowercase()) {
                None => Ok(false),
                Some(s) => match s.as_str() {
                    "1" | "true" | "yes" | "on" => Ok(true),
                    "0" | "false" | "no" | "off" | "" => Ok(false),
                    _ => Err((name.to_string(), format!("expected 0 or 1, got `{s}`"))),
                },
            }
        };
        let number = |name: &str, default: u64| -> Result<u64, (String, String)> {
            match env(name).filter(|s| !s.trim().is_empty()) {
                None => Ok(default),
                Some(s) => s
                    .trim()
                    .parse()
                    .map_err(|_| (name.to_string(), format!("expected a whole number, got `{s}`"))),
            }
        };
        let password = match value("FN_CONSOLE_LOGIN_PASSWORD_HASH")? {
            Some(h) => Some(Password::parse_hash(&h).map_err(|e| ("FN_CONSOLE_LOGIN_PASSWORD_HASH".to_string(), e))?),
            None => value("FN_CONSOLE_LOGIN_PASSWORD")?.map(Password::Plain),
        };
        let ttl = number("FN_CONSOLE_SESSION_TTL_S", 43_200)?;
        Ok(LoginSettings {
            enabled: flag("FN_CONSOLE_LOGIN_ENABLED")?,
            api: flag("FN_CONSOLE_LOGIN_API")?,
            username: value("FN_CONSOLE_LOGIN_USERNAME")?,
            password,
            secret: value("FN_CONSOLE_SESSION_SECRET")?,
            ttl: Duration::from_secs(if ttl == 0 { 43_200 } else { ttl }),
            max_attempts: number("FN_CONSOLE_LOGIN_RATE_LIMIT_MAX", 5)?.min(u32::MAX as u64) as u32,
            window: Duration::from_secs(number("FN_CONSOLE_LOGIN_RATE_LIMIT_WINDOW_S", 300)?),
        })
    }

    pub fn configured(&self) -> bool {
        self.username.is_some() && self.password.is_some()
    }
}

/// Signs and checks session tokens: `<user_b64>.<expiry_s>.<sig_b64>`, the signature an
/// HMAC-SHA256 over user, expiry and the credentials' fingerprint.
pub struct Sessions {
    key: Vec<u8>,
}

impl Sessions {
    pub fn new(secret: Option<&str>) -> Sessions {
        let key = match secret {
            Some(s) => s.as_bytes().to_vec(),
            None => {
                let mut k = vec![0u8; 32];
                // No system randomness is fatal for nothing but login: fall back to a key
                // derived from the clock and pid (sessions still expire and are bound).
                if getrandom::fill(&mut k).is_err() {
                    let seed = format!("{:?}{}", std::time::SystemTime::now(), std::process::id());
                    k = Sha256::digest(seed.as_bytes()).to_vec();
                }
                k
            }
        };
        Sessions { key }
    }

    fn sign(&self, user: &str, expiry: u64, binding: &[u8]) -> Vec<u8> {
        // `new_from_slice` accepts any key length for HMAC.
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("hmac takes any key length");
        mac.update(user.as_bytes());
        mac.update(b"\n");
        mac.update(expiry.to_string().as_bytes());
        mac.update(b"\n");
        mac.update(binding);
        mac.finalize().into_bytes().to_vec()
    }

    pub fn issue(&self, user: &str, password: &Password, now_s: u64, ttl: Duration) -> String {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let expiry = now_s + ttl.as_secs();
        let sig = self.sign(user, expiry, &password.fingerprint());
        format!("{}.{expiry}.{}", b64.encode(user), b64.encode(sig))
    }

    /// The user of a valid, unexpired token issued for the current credentials.
    pub fn check(&self, token: &str, settings: &LoginSettings, now_s: u64) -> Option<String> {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut parts = token.split('.');
        let (user, expiry, sig) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let user = String::from_utf8(b64.decode(user).ok()?).ok()?;
        let expiry: u64 = expiry.parse().ok()?;
        let sig = b64.decode(sig).ok()?;
        let password = settings.password.as_ref()?;
        let mut mac = HmacSha256::new_from_slice(&self.key).ok()?;
        mac.update(user.as_bytes());
        mac.update(b"\n");
        mac.update(expiry.to_string().as_bytes());
        mac.update(b"\n");
        mac.update(&password.fingerprint());
        mac.verify_slice(&sig).ok()?;
        (expiry > now_s && settings.username.as_deref() == Some(user.as_str())).then_some(user)
    }
}

/// The session token in a `Cookie` header, if any.
pub fn cookie_token(header: &str) -> Option<&str> {
    header.split(';').find_map(|kv| {
        let (k, v) = kv.trim().split_once('=')?;
        (k == COOKIE_NAME).then_some(v)
    })
}

/// Failed login attempts per client address in fixed windows (pure: the caller passes `now`).
#[derive(Default)]
pub struct Attempts {
    by_client: HashMap<IpAddr, (u32, Instant)>,
}

impl Attempts {
    /// Whether this client has used up its attempts.
    pub fn blocked(&mut self, ip: IpAddr, max: u32, window: Duration, now: Instant) -> bool {
        if max == 0 {
            return false;
        }
        match self.by_client.get(&ip) {
            Some((_, since)) if now.duration_since(*since) >= window => {
                self.by_client.remove(&ip);
                false
            }
            Some((n, _)) => *n >= max,
            None => false,
        }
    }

    pub fn failed(&mut self, ip: IpAddr, window: Duration, now: Instant) {
        // Forget expired windows now and then so the map cannot grow without bound.
        if self.by_client.len() > 10_000 {
            self.by_client
                .retain(|_, (_, since)| now.duration_since(*since) < window);
        }
        let e = self.by_client.entry(ip).or_insert((0, now));
        e.0 += 1;
    }

    pub fn succeeded(&mut self, ip: IpAddr) {
        self.by_client.remove(&ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(hash: &str) -> LoginSettings {
        LoginSettings {
            enabled: true,
            username: Some("admin".into()),
            password: Some(Password::parse_hash(hash).unwrap()),
            ttl: Duration::from_secs(60),
            ..Default::default()
        }
    }

    #[test]
    fn pbkdf2_hash_verifies_the_right_password_only() {
        // The same format and numbers as FastFN's Python one-liner.
        let h = hash_password("change-me", b"0123456789abcdef", 100_000);
        let p = Password::parse_hash(&h).unwrap();
        assert!(p.verify("change-me"));
        assert!(!p.verify("change-me "));
        assert!(!p.verify(""));
    }

    #[test]
    fn known_vector_from_python_hashlib() {
        // hashlib.pbkdf2_hmac("sha256", b"pw", bytes.fromhex("00112233"), 100000).hex()
        let h = "pbkdf2-sha256:100000:00112233:e1edcd8c6b066aa5bfe5116800b37033342638d5dbb61f2c0baee865b9b4ef23";
        assert_eq!(hash_password("pw", &[0x00, 0x11, 0x22, 0x33], 100_000), h);
        let p = Password::parse_hash(h).unwrap();
        assert!(p.verify("pw"));
        assert!(!p.verify("pW"));
    }

    #[test]
    fn weak_or_malformed_hashes_are_refused() {
        assert!(Password::parse_hash("pbkdf2-sha256:1000:00:00112233445566778899aabbccddeeff").is_err());
        assert!(Password::parse_hash("pbkdf2-sha256:200000:zz:00").is_err());
        assert!(Password::parse_hash("md5:abc").is_err());
        assert!(Password::parse_hash(&format!("sha256:{}", to_hex(&Sha256::digest(b"x")))).is_ok());
    }

    #[test]
    fn sessions_expire_and_are_bound_to_credentials() {
        let s = settings(&hash_password("a", b"salt", 100_000));
        let sessions = Sessions::new(Some("k"));
        let token = sessions.issue("admin", s.password.as_ref().unwrap(), 1000, s.ttl);
        assert_eq!(sessions.check(&token, &s, 1000).as_deref(), Some("admin"));
        assert_eq!(sessions.check(&token, &s, 1059).as_deref(), Some("admin"));
        assert_eq!(sessions.check(&token, &s, 1060), None, "expired");
        // Another key, a changed password, a tampered token: all refused.
        assert_eq!(Sessions::new(Some("other")).check(&token, &s, 1000), None);
        let rotated = settings(&hash_password("b", b"salt", 100_000));
        assert_eq!(sessions.check(&token, &rotated, 1000), None);
        let mut parts: Vec<&str> = token.split('.').collect();
        parts[1] = "99999999";
        assert_eq!(sessions.check(&parts.join("."), &s, 1000), None);
    }

    #[test]
    fn cookie_header_is_searched_by_name() {
        assert_eq!(cookie_token("a=1; fastfn_session=tok; b=2"), Some("tok"));
        assert_eq!(cookie_token("xfastfn_session=tok"), None);
    }

    #[test]
    fn attempts_block_after_max_until_the_window_ends() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let w = Duration::from_secs(300);
        let t0 = Instant::now();
        let mut a = Attempts::default();
        for _ in 0..2 {
            assert!(!a.blocked(ip, 2, w, t0));
            a.failed(ip, w, t0);
        }
        assert!(a.blocked(ip, 2, w, t0 + Duration::from_secs(299)));
        assert!(!a.blocked(ip, 2, w, t0 + w));
        a.failed(ip, w, t0);
        a.succeeded(ip);
        assert!(!a.blocked(ip, 1, w, t0));
        assert!(!a.blocked(ip, 0, w, t0), "0 = no limit");
    }
}
