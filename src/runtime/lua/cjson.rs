//! `cjson` / `cjson.safe` for the Lua sandbox: lua-cjson's (OpenResty's 2.1 fork) behaviour,
//! written in Rust, so handlers written for the original FastFN (which runs them on
//! OpenResty) work unchanged.
//!
//! What it keeps from lua-cjson:
//! - `null` is a sentinel (a NULL light userdata, `cjson.null`) in both directions; `decode`
//!   turns JSON `null` into it, never into `nil` (so array holes survive a round trip).
//! - An empty table encodes as `{}` (`encode_empty_table_as_object(true)`); a table whose keys
//!   are all positive integers is an array, holes become `null`; an *excessively sparse* one
//!   (highest index > 2 × entries and > 10) is an error unless `encode_sparse_array(true)`
//!   turns it into an object. Number keys of an object become strings.
//! - `cjson.empty_array` encodes as `[]`; a table with metatable `cjson.array_mt` is always an
//!   array, one with `cjson.empty_array_mt` is `[]` when empty;
//!   `decode_array_with_array_mt(true)` gives decoded arrays `array_mt`.
//! - Floats are written as C's `%.14g` (`encode_number_precision`, 1..=16); integers as
//!   integers. NaN and ±inf are an error (`encode_invalid_numbers(true | "null")` changes it).
//! - `/` is escaped as `\/` (`encode_escape_forward_slash`), control characters as `\uXXXX`;
//!   bytes ≥ 0x80 pass through untouched on both sides (Lua strings are bytes).
//! - Nesting deeper than `encode_max_depth` / `decode_max_depth` (1000) is an error, which
//!   also catches cycles; we stop at [`HARD_MAX_DEPTH`] (256) whatever they say.
//! - `cjson` raises errors (plain messages, no position prefix, like `luaL_error` from C);
//!   `cjson.safe` returns `nil, message` instead. Each module (and each `cjson.new()`) has
//!   its own settings.
//!
//! Differences (see `docs/compat.md`): object keys are written in byte order (lua-cjson uses
//! the table's traversal order, which Lua does not define); decoding is strict JSON (no `NaN`,
//! `Infinity` or hex numbers, whatever `decode_invalid_numbers` would say, so that setting is
//! not offered); error messages follow lua-cjson's wording but not always its token names.

use mlua::{LightUserData, Lua, Table, Value};
use std::sync::{Arc, Mutex};

/// Default nesting limit of lua-cjson, for both directions.
pub const DEFAULT_MAX_DEPTH: usize = 1000;
/// Nesting we go to at most, whatever the setting says: both directions recurse, and a call
/// runs on a 2 MiB blocking-pool thread (debug builds use a few KiB per level).
pub const HARD_MAX_DEPTH: usize = 256;
const REG_ARRAY_MT: &str = "fastfn.cjson.array_mt";
const REG_EMPTY_ARRAY_MT: &str = "fastfn.cjson.empty_array_mt";

/// The address of this static is `cjson.empty_array` (a light userdata distinct from NULL).
static EMPTY_ARRAY: u8 = 0;

fn empty_array() -> Value {
    Value::LightUserData(LightUserData(std::ptr::addr_of!(EMPTY_ARRAY).cast_mut().cast()))
}

fn is_empty_array(v: &Value) -> bool {
    matches!(v, Value::LightUserData(p) if std::ptr::eq(p.0.cast_const().cast(), std::ptr::addr_of!(EMPTY_ARRAY)))
}

/// What `encode_invalid_numbers` allows for NaN and ±inf.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvalidNumbers {
    /// An error (the default).
    Refuse,
    /// Written as `NaN`, `Infinity`, `-Infinity` (not JSON, as lua-cjson does).
    Allow,
    /// Written as `null`.
    Null,
}

/// One module's settings (lua-cjson's `json_config_t`, the parts we honour).
#[derive(Debug, Clone)]
pub struct Config {
    pub empty_table_as_object: bool,
    pub escape_forward_slash: bool,
    pub sparse_convert: bool,
    pub sparse_ratio: i64,
    pub sparse_safe: i64,
    pub encode_max_depth: usize,
    pub decode_max_depth: usize,
    pub number_precision: usize,
    pub invalid_numbers: InvalidNumbers,
    pub decode_array_with_array_mt: bool,
    /// `encode_keep_buffer`: lua-cjson's buffer reuse, which changes nothing visible; kept
    /// only so the setting can be read back.
    pub keep_buffer: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            empty_table_as_object: true,
            escape_forward_slash: true,
            sparse_convert: false,
            sparse_ratio: 2,
            sparse_safe: 10,
            encode_max_depth: DEFAULT_MAX_DEPTH,
            decode_max_depth: DEFAULT_MAX_DEPTH,
            number_precision: 14,
            invalid_numbers: InvalidNumbers::Refuse,
            decode_array_with_array_mt: false,
            keep_buffer: true,
        }
    }
}

// ---------------------------------------------------------------- numbers

/// C's `printf("%.{precision}g", f)` for finite `f`.
pub fn format_g(f: f64, precision: usize) -> String {
    if f == 0.0 {
        return if f.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    let p = precision.clamp(1, 17);
    let sci = format!("{:.*e}", p - 1, f);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= p as i32 {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", strip_fraction_zeros(mantissa), exp.unsigned_abs())
    } else {
        let decimals = (p as i32 - 1 - exp).max(0) as usize;
        strip_fraction_zeros(&format!("{f:.decimals$}")).to_string()
    }
}

fn strip_fraction_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

// ---------------------------------------------------------------- encode

/// The metatables that mark arrays, when the state has them.
struct Marks {
    array_mt: Option<Table>,
    empty_array_mt: Option<Table>,
}

impl Marks {
    fn of(lua: &Lua) -> Marks {
        Marks {
            array_mt: lua.named_registry_value(REG_ARRAY_MT).ok(),
            empty_array_mt: lua.named_registry_value(REG_EMPTY_ARRAY_MT).ok(),
        }
    }
}

fn same_table(a: &Table, b: &Option<Table>) -> bool {
    b.as_ref().is_some_and(|b| a.to_pointer() == b.to_pointer())
}

struct Encoder<'a> {
    cfg: &'a Config,
    marks: Marks,
    out: Vec<u8>,
}

/// Encode `v` as lua-cjson would (errors are lua-cjson's messages).
pub fn encode(lua: &Lua, cfg: &Config, v: &Value) -> Result<Vec<u8>, String> {
    let mut enc = Encoder {
        cfg,
        marks: Marks::of(lua),
        out: Vec::new(),
    };
    enc.value(v, 0)?;
    Ok(enc.out)
}

impl Encoder<'_> {
    fn value(&mut self, v: &Value, depth: usize) -> Result<(), String> {
        match v {
            Value::Nil => self.out.extend_from_slice(b"null"),
            Value::LightUserData(p) if p.0.is_null() => self.out.extend_from_slice(b"null"),
            v if is_empty_array(v) => self.out.extend_from_slice(b"[]"),
            Value::Boolean(b) => self.out.extend_from_slice(if *b { b"true" } else { b"false" }),
            Value::Integer(i) => self.out.extend_from_slice(i.to_string().as_bytes()),
            Value::Number(f) => self.number(*f)?,
            Value::String(s) => self.string(&s.as_bytes()),
            Value::Table(t) => self.table(t, depth + 1)?,
            other => return Err(format!("Cannot serialise {}: type not supported", other.type_name())),
        }
        Ok(())
    }

    fn number(&mut self, f: f64) -> Result<(), String> {
        if !f.is_finite() {
            match self.cfg.invalid_numbers {
                InvalidNumbers::Refuse => {
                    return Err("Cannot serialise number: must not be NaN or Infinity".into());
                }
                InvalidNumbers::Null => {
                    self.out.extend_from_slice(b"null");
                    return Ok(());
                }
                InvalidNumbers::Allow => {}
            }
        }
        let text = if f.is_nan() {
            "NaN".to_string()
        } else if f.is_infinite() {
            if f > 0.0 { "Infinity" } else { "-Infinity" }.to_string()
        } else {
            format_g(f, self.cfg.number_precision)
        };
        self.out.extend_from_slice(text.as_bytes());
        Ok(())
    }

    fn string(&mut self, s: &[u8]) {
        self.out.push(b'"');
        for &b in s {
            match b {
                b'"' => self.out.extend_from_slice(b"\\\""),
                b'\\' => self.out.extend_from_slice(b"\\\\"),
                b'/' if self.cfg.escape_forward_slash => self.out.extend_from_slice(b"\\/"),
                b'\n' => self.out.extend_from_slice(b"\\n"),
                b'\r' => self.out.extend_from_slice(b"\\r"),
                b'\t' => self.out.extend_from_slice(b"\\t"),
                0x08 => self.out.extend_from_slice(b"\\b"),
                0x0c => self.out.extend_from_slice(b"\\f"),
                0..=0x1f | 0x7f => self.out.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
                _ => self.out.push(b),
            }
        }
        self.out.push(b'"');
    }

    fn table(&mut self, t: &Table, depth: usize) -> Result<(), String> {
        if depth > self.cfg.encode_max_depth.min(HARD_MAX_DEPTH) {
            return Err(format!("Cannot serialise, excessive nesting ({depth})"));
        }
        let mt = t.metatable();
        if let Some(mt) = &mt {
            if same_table(mt, &self.marks.array_mt) {
                return self.array(t, t.raw_len(), depth);
            }
        }
        let mut pairs = Vec::new();
        let mut max: i64 = 0;
        let mut all_indices = true;
        for pair in t.pairs::<Value, Value>() {
            let (k, v) = pair.map_err(|e| e.to_string())?;
            match k {
                Value::Integer(i) if i >= 1 => max = max.max(i),
                _ => all_indices = false,
            }
            pairs.push((k, v));
        }
        if pairs.is_empty() {
            let as_array = mt.as_ref().is_some_and(|mt| same_table(mt, &self.marks.empty_array_mt))
                || !self.cfg.empty_table_as_object;
            self.out.extend_from_slice(if as_array { b"[]" } else { b"{}" });
            return Ok(());
        }
        if all_indices {
            let items = pairs.len() as i64;
            let sparse = self.cfg.sparse_ratio > 0
                && max > items.saturating_mul(self.cfg.sparse_ratio)
                && max > self.cfg.sparse_safe;
            if !sparse {
                return self.array(t, max as usize, depth);
            }
            if !self.cfg.sparse_convert {
                return Err("Cannot serialise table: excessively sparse array".into());
            }
        }
        self.object(pairs, depth)
    }

    fn array(&mut self, t: &Table, len: usize, depth: usize) -> Result<(), String> {
        self.out.push(b'[');
        for i in 1..=len {
            if i > 1 {
                self.out.push(b',');
            }
            let item: Value = t.raw_get(i).map_err(|e| e.to_string())?;
            self.value(&item, depth)?;
        }
        self.out.push(b']');
        Ok(())
    }

    fn object(&mut self, pairs: Vec<(Value, Value)>, depth: usize) -> Result<(), String> {
        let mut keyed = Vec::with_capacity(pairs.len());
        for (k, v) in pairs {
            let key = match &k {
                Value::String(s) => s.as_bytes().to_vec(),
                Value::Integer(i) => i.to_string().into_bytes(),
                Value::Number(f) if f.is_finite() => format_g(*f, self.cfg.number_precision).into_bytes(),
                _ => return Err("Cannot serialise table: table key must be a number or string".into()),
            };
            keyed.push((key, v));
        }
        // Byte order: stable output (lua-cjson's order is the table's, which Lua leaves undefined).
        keyed.sort_by(|a, b| a.0.cmp(&b.0));
        self.out.push(b'{');
        for (i, (key, v)) in keyed.iter().enumerate() {
            if i > 0 {
                self.out.push(b',');
            }
            self.string(key);
            self.out.push(b':');
            self.value(v, depth)?;
        }
        self.out.push(b'}');
        Ok(())
    }
}

// ---------------------------------------------------------------- decode

struct Decoder<'a> {
    lua: &'a Lua,
    cfg: &'a Config,
    array_mt: Option<Table>,
    s: &'a [u8],
    i: usize,
}

/// Decode JSON text into Lua values as lua-cjson would.
pub fn decode(lua: &Lua, cfg: &Config, text: &[u8]) -> Result<Value, String> {
    let array_mt = if cfg.decode_array_with_array_mt {
        lua.named_registry_value::<Table>(REG_ARRAY_MT).ok()
    } else {
        None
    };
    let mut d = Decoder {
        lua,
        cfg,
        array_mt,
        s: text,
        i: 0,
    };
    let v = d.value(0)?;
    d.skip_ws();
    if d.i < d.s.len() {
        return Err(d.expected("the end"));
    }
    Ok(v)
}

impl Decoder<'_> {
    fn skip_ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    /// lua-cjson's "Expected X but found Y at character N" (1-based).
    fn expected(&self, what: &str) -> String {
        let found = match self.s.get(self.i) {
            None => "T_END".to_string(),
            Some(b'{') => "T_OBJ_BEGIN".into(),
            Some(b'}') => "T_OBJ_END".into(),
            Some(b'[') => "T_ARR_BEGIN".into(),
            Some(b']') => "T_ARR_END".into(),
            Some(b',') => "T_COMMA".into(),
            Some(b':') => "T_COLON".into(),
            Some(b'"') => "T_STRING".into(),
            Some(_) => "invalid token".into(),
        };
        format!("Expected {what} but found {found} at character {}", self.i + 1)
    }

    fn lua_err(e: mlua::Error) -> String {
        e.to_string()
    }

    fn value(&mut self, depth: usize) -> Result<Value, String> {
        self.skip_ws();
        match self.s.get(self.i) {
            Some(b'{') => self.object(depth + 1),
            Some(b'[') => self.array(depth + 1),
            Some(b'"') => {
                let bytes = self.string()?;
                self.lua.create_string(&bytes).map(Value::String).map_err(Self::lua_err)
            }
            Some(b't') if self.s[self.i..].starts_with(b"true") => {
                self.i += 4;
                Ok(Value::Boolean(true))
            }
            Some(b'f') if self.s[self.i..].starts_with(b"false") => {
                self.i += 5;
                Ok(Value::Boolean(false))
            }
            Some(b'n') if self.s[self.i..].starts_with(b"null") => {
                self.i += 4;
                Ok(Value::NULL)
            }
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(self.expected("value")),
        }
    }

    fn nested(&self, depth: usize) -> Result<(), String> {
        if depth > self.cfg.decode_max_depth.min(HARD_MAX_DEPTH) {
            return Err(format!(
                "Found too many nested data structures ({depth}) at character {}",
                self.i + 1
            ));
        }
        Ok(())
    }

    fn object(&mut self, depth: usize) -> Result<Value, String> {
        self.nested(depth)?;
        self.i += 1;
        let t = self.lua.create_table().map_err(Self::lua_err)?;
        self.skip_ws();
        if self.s.get(self.i) == Some(&b'}') {
            self.i += 1;
            return Ok(Value::Table(t));
        }
        loop {
            self.skip_ws();
            if self.s.get(self.i) != Some(&b'"') {
                return Err(self.expected("object key string"));
            }
            let key = self.string()?;
            self.skip_ws();
            if self.s.get(self.i) != Some(&b':') {
                return Err(self.expected("colon"));
            }
            self.i += 1;
            let v = self.value(depth)?;
            let key = self.lua.create_string(&key).map_err(Self::lua_err)?;
            t.raw_set(key, v).map_err(Self::lua_err)?;
            self.skip_ws();
            match self.s.get(self.i) {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(Value::Table(t));
                }
                _ => return Err(self.expected("comma or object end")),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<Value, String> {
        self.nested(depth)?;
        self.i += 1;
        let t = self.lua.create_table().map_err(Self::lua_err)?;
        if let Some(mt) = &self.array_mt {
            t.set_metatable(Some(mt.clone())).map_err(Self::lua_err)?;
        }
        self.skip_ws();
        if self.s.get(self.i) == Some(&b']') {
            self.i += 1;
            return Ok(Value::Table(t));
        }
        let mut n = 0usize;
        loop {
            let v = self.value(depth)?;
            n += 1;
            t.raw_set(n, v).map_err(Self::lua_err)?;
            self.skip_ws();
            match self.s.get(self.i) {
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    return Ok(Value::Table(t));
                }
                _ => return Err(self.expected("comma or array end")),
            }
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while self.s.get(self.i).is_some_and(u8::is_ascii_digit) {
            self.i += 1;
        }
        self.i - start
    }

    fn number(&mut self) -> Result<Value, String> {
        let start = self.i;
        if self.s[self.i] == b'-' {
            self.i += 1;
        }
        let int_start = self.i;
        let int_digits = self.digits();
        let leading_zero = int_digits > 1 && self.s[int_start] == b'0';
        if int_digits == 0 || leading_zero {
            self.i = start;
            return Err(self.expected("value"));
        }
        let mut integral = true;
        if self.s.get(self.i) == Some(&b'.') {
            integral = false;
            self.i += 1;
            if self.digits() == 0 {
                self.i = start;
                return Err(self.expected("value"));
            }
        }
        if matches!(self.s.get(self.i), Some(b'e' | b'E')) {
            integral = false;
            self.i += 1;
            if matches!(self.s.get(self.i), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if self.digits() == 0 {
                self.i = start;
                return Err(self.expected("value"));
            }
        }
        let text = std::str::from_utf8(&self.s[start..self.i]).unwrap_or("0");
        if integral {
            if let Ok(i) = text.parse::<i64>() {
                return Ok(Value::Integer(i));
            }
        }
        text.parse::<f64>().map(Value::Number).map_err(|_| {
            self.i = start;
            self.expected("value")
        })
    }

    fn hex4(&mut self) -> Option<u32> {
        let h = self.s.get(self.i..self.i + 4)?;
        let h = std::str::from_utf8(h).ok()?;
        let v = u32::from_str_radix(h, 16).ok()?;
        self.i += 4;
        Some(v)
    }

    /// A string token (at `"`), escapes resolved; other bytes copied as they are.
    fn string(&mut self) -> Result<Vec<u8>, String> {
        let start = self.i;
        self.i += 1;
        let mut out = Vec::new();
        loop {
            let Some(&b) = self.s.get(self.i) else {
                self.i = start;
                return Err(format!(
                    "Expected value but found unexpected end of string at character {}",
                    start + 1
                ));
            };
            self.i += 1;
            match b {
                b'"' => return Ok(out),
                b'\\' => {
                    let Some(&e) = self.s.get(self.i) else { continue };
                    self.i += 1;
                    match e {
                        b'"' | b'\\' | b'/' => out.push(e),
                        b'b' => out.push(0x08),
                        b'f' => out.push(0x0c),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'u' => {
                            let bad = |at: usize| {
                                format!(
                                    "Expected value but found invalid unicode escape code at character {}",
                                    at + 1
                                )
                            };
                            let at = self.i - 2;
                            let hi = self.hex4().ok_or_else(|| bad(at))?;
                            let code = if (0xd800..0xdc00).contains(&hi) {
                                if self.s.get(self.i..self.i + 2) != Some(b"\\u") {
                                    return Err(bad(at));
                                }
                                self.i += 2;
                                let lo = self.hex4().ok_or_else(|| bad(at))?;
                                if !(0xdc00..0xe000).contains(&lo) {
                                    return Err(bad(at));
                                }
                                0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00)
                            } else if (0xdc00..0xe000).contains(&hi) {
                                return Err(bad(at));
                            } else {
                                hi
                            };
                            let c = char::from_u32(code).ok_or_else(|| bad(at))?;
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                        }
                        _ => {
                            return Err(format!(
                                "Expected value but found invalid escape code at character {}",
                                self.i - 1
                            ));
                        }
                    }
                }
                _ => out.push(b),
            }
        }
    }
}

// ---------------------------------------------------------------- the Lua modules

/// Lua wrapper that raises the error a Rust function returned as `nil, message`. Level 0: the
/// message is lua-cjson's text alone, as `luaL_error` from C gives it.
const RAISING: &str = r#"
local f, error = ...
return function(...)
  local value, err = f(...)
  if err ~= nil then error(err, 0) end
  return value
end
"#;

/// Create the array marker metatables of this state (once per state).
fn marks(lua: &Lua) -> mlua::Result<(Table, Table)> {
    if let (Ok(a), Ok(e)) = (
        lua.named_registry_value::<Table>(REG_ARRAY_MT),
        lua.named_registry_value::<Table>(REG_EMPTY_ARRAY_MT),
    ) {
        return Ok((a, e));
    }
    let (a, e) = (lua.create_table()?, lua.create_table()?);
    lua.set_named_registry_value(REG_ARRAY_MT, &a)?;
    lua.set_named_registry_value(REG_EMPTY_ARRAY_MT, &e)?;
    Ok((a, e))
}

fn truthy(v: &Value) -> bool {
    !matches!(v, Value::Nil | Value::Boolean(false))
}

/// `cjson.new()` / `cjson.safe.new()`: a module with its own settings.
pub fn module(lua: &Lua, safe: bool) -> mlua::Result<Table> {
    let (array_mt, empty_array_mt) = marks(lua)?;
    let cfg = Arc::new(Mutex::new(Config::default()));
    let m = lua.create_table()?;
    let raise = lua
        .load(RAISING)
        .set_name("=cjson")
        .set_mode(mlua::chunk::ChunkMode::Text)
        .into_function()?;
    let error_fn: Value = lua.globals().raw_get("error")?;
    let wrap = |f: mlua::Function| -> mlua::Result<Value> {
        if safe {
            Ok(Value::Function(f))
        } else {
            raise.call::<Value>((f, error_fn.clone()))
        }
    };

    let c = cfg.clone();
    let encode_fn = lua.create_function(move |lua, args: mlua::MultiValue| {
        if args.len() != 1 {
            return Ok((
                Value::Nil,
                Some("bad argument #1 to 'encode' (expected 1 argument)".to_string()),
            ));
        }
        let cfg = c.lock().unwrap_or_else(|p| p.into_inner()).clone();
        match encode(lua, &cfg, &args[0]) {
            Ok(bytes) => Ok((Value::String(lua.create_string(&bytes)?), None)),
            Err(e) => Ok((Value::Nil, Some(e))),
        }
    })?;
    m.raw_set("encode", wrap(encode_fn)?)?;

    let c = cfg.clone();
    let decode_fn = lua.create_function(move |lua, args: mlua::MultiValue| {
        let text = match args.iter().collect::<Vec<_>>().as_slice() {
            [Value::String(s)] => s.as_bytes().to_vec(),
            [other] => {
                return Ok((
                    Value::Nil,
                    Some(format!(
                        "bad argument #1 to 'decode' (string expected, got {})",
                        other.type_name()
                    )),
                ))
            }
            _ => {
                return Ok((
                    Value::Nil,
                    Some("bad argument #1 to 'decode' (expected 1 argument)".to_string()),
                ))
            }
        };
        let cfg = c.lock().unwrap_or_else(|p| p.into_inner()).clone();
        match decode(lua, &cfg, &text) {
            Ok(v) => Ok((v, None)),
            Err(e) => Ok((Value::Nil, Some(e))),
        }
    })?;
    m.raw_set("decode", wrap(decode_fn)?)?;

    m.raw_set("null", Value::NULL)?;
    m.raw_set("empty_array", empty_array())?;
    m.raw_set("array_mt", array_mt)?;
    m.raw_set("empty_array_mt", empty_array_mt)?;
    m.raw_set("_NAME", if safe { "cjson.safe" } else { "cjson" })?;
    m.raw_set("new", lua.create_function(move |lua, ()| module(lua, safe))?)?;

    // Settings: called without arguments they answer the current value(s); with arguments
    // they change it and answer the new value(s), as lua-cjson does.
    type Setter = fn(&mut Config, &[Value]) -> Result<(), String>;
    type Getter = fn(&Config) -> Vec<Value>;
    let settings: Vec<(&'static str, Setter, Getter)> = vec![
        (
            "encode_empty_table_as_object",
            |c, a| {
                c.empty_table_as_object = truthy_or_bool(&a[0]);
                Ok(())
            },
            |c| vec![Value::Boolean(c.empty_table_as_object)],
        ),
        (
            "encode_escape_forward_slash",
            |c, a| {
                c.escape_forward_slash = truthy_or_bool(&a[0]);
                Ok(())
            },
            |c| vec![Value::Boolean(c.escape_forward_slash)],
        ),
        (
            "encode_keep_buffer",
            |c, a| {
                c.keep_buffer = truthy_or_bool(&a[0]);
                Ok(())
            },
            |c| vec![Value::Boolean(c.keep_buffer)],
        ),
        (
            "decode_array_with_array_mt",
            |c, a| {
                c.decode_array_with_array_mt = truthy_or_bool(&a[0]);
                Ok(())
            },
            |c| vec![Value::Boolean(c.decode_array_with_array_mt)],
        ),
        (
            "encode_number_precision",
            |c, a| {
                c.number_precision = int_arg("encode_number_precision", &a[0], 1, 16)? as usize;
                Ok(())
            },
            |c| vec![Value::Integer(c.number_precision as i64)],
        ),
        (
            "encode_max_depth",
            |c, a| {
                c.encode_max_depth = int_arg("encode_max_depth", &a[0], 1, i32::MAX as i64)? as usize;
                Ok(())
            },
            |c| vec![Value::Integer(c.encode_max_depth as i64)],
        ),
        (
            "decode_max_depth",
            |c, a| {
                c.decode_max_depth = int_arg("decode_max_depth", &a[0], 1, i32::MAX as i64)? as usize;
                Ok(())
            },
            |c| vec![Value::Integer(c.decode_max_depth as i64)],
        ),
        (
            "encode_sparse_array",
            |c, a| {
                if let Some(v) = a.first().filter(|v| !v.is_nil()) {
                    c.sparse_convert = truthy_or_bool(v);
                }
                if let Some(v) = a.get(1).filter(|v| !v.is_nil()) {
                    c.sparse_ratio = int_arg("encode_sparse_array", v, 0, i32::MAX as i64)?;
                }
                if let Some(v) = a.get(2).filter(|v| !v.is_nil()) {
                    c.sparse_safe = int_arg("encode_sparse_array", v, 0, i32::MAX as i64)?;
                }
                Ok(())
            },
            |c| {
                vec![
                    Value::Boolean(c.sparse_convert),
                    Value::Integer(c.sparse_ratio),
                    Value::Integer(c.sparse_safe),
                ]
            },
        ),
    ];
    for (name, set, get) in settings {
        let c = cfg.clone();
        let f = lua.create_function(move |_, args: mlua::MultiValue| {
            let args: Vec<Value> = args.into_iter().collect();
            let mut cfg = c.lock().unwrap_or_else(|p| p.into_inner());
            if args.iter().any(|v| !v.is_nil()) {
                if let Err(e) = set(&mut cfg, &args) {
                    return Err(mlua::Error::RuntimeError(e));
                }
            }
            Ok(mlua::MultiValue::from_iter(get(&cfg)))
        })?;
        m.raw_set(name, f)?;
    }
    let c = cfg.clone();
    m.raw_set(
        "encode_invalid_numbers",
        lua.create_function(move |lua, v: Option<Value>| {
            let mut cfg = c.lock().unwrap_or_else(|p| p.into_inner());
            match v {
                None | Some(Value::Nil) => {}
                Some(Value::String(s)) if s.as_bytes().as_ref() == b"null" => {
                    cfg.invalid_numbers = InvalidNumbers::Null
                }
                Some(v) => {
                    cfg.invalid_numbers = if truthy_or_bool(&v) {
                        InvalidNumbers::Allow
                    } else {
                        InvalidNumbers::Refuse
                    }
                }
            }
            Ok(match cfg.invalid_numbers {
                InvalidNumbers::Refuse => Value::Boolean(false),
                InvalidNumbers::Allow => Value::Boolean(true),
                InvalidNumbers::Null => Value::String(lua.create_string("null")?),
            })
        })?,
    )?;
    Ok(m)
}

/// lua-cjson's option parsing: booleans, `"on"`/`"off"`, else Lua truthiness.
fn truthy_or_bool(v: &Value) -> bool {
    match v {
        Value::String(s) if s.as_bytes().as_ref() == b"off" => false,
        v => truthy(v),
    }
}

fn int_arg(name: &str, v: &Value, lo: i64, hi: i64) -> Result<i64, String> {
    let n = match v {
        Value::Integer(i) => *i,
        Value::Number(f) if f.fract() == 0.0 => *f as i64,
        _ => return Err(format!("bad argument #1 to '{name}' (number expected)")),
    };
    if !(lo..=hi).contains(&n) {
        return Err(format!(
            "bad argument #1 to '{name}' (expected integer between {lo} and {hi})"
        ));
    }
    Ok(n)
}

#[cfg(test)]
mod tests;
