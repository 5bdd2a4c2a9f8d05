//! Dependencies inferred from a handler's imports (FastFN's `FN_AUTO_INFER_PY_DEPS` /
//! `FN_AUTO_INFER_NODE_DEPS`), and the manifest edits that record them. Pure: source text in,
//! package names and new manifest text out; the caller reads and writes the files.
//!
//! Rules kept from the original's "native" backend:
//! - python: top-level names of `import a.b` / `from a.b import c` (relative imports skipped),
//!   minus the standard library, the handler's own module and modules of the function folder
//!   (`<name>.py` or `<name>/`). A name with upper-case letters (or other than a package name's
//!   characters) cannot be mapped to a package and is *unresolved*; the rest are installed
//!   under their lower-case name.
//! - node: string specifiers of `import … from "x"`, `import "x"`, `import("x")` and
//!   `require("x")` (comments ignored); relative, absolute and URL specifiers are skipped,
//!   `@scope/name/sub` → `@scope/name`, `name/sub` → `name`; builtins (and anything `node:`)
//!   are never packages; a specifier that is not a valid package name is unresolved.
//! - Inferred names are added to the manifest only when it does not name them yet; nothing the
//!   user wrote is removed or reordered.

use std::collections::BTreeSet;

/// Names a handler imports, split by whether they map to a package.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inferred {
    /// Imports seen (after removing the standard library and local modules), in order.
    pub imports: Vec<String>,
    /// Package names to install.
    pub resolved: Vec<String>,
    /// Imports that cannot be mapped to a package name.
    pub unresolved: Vec<String>,
}

impl Inferred {
    fn add(&mut self, import: &str, package: Option<String>) {
        if !self.imports.iter().any(|i| i == import) {
            self.imports.push(import.to_string());
        }
        match package {
            Some(p) if !self.resolved.contains(&p) => self.resolved.push(p),
            Some(_) => {}
            None if !self.unresolved.iter().any(|u| u == import) => self.unresolved.push(import.to_string()),
            None => {}
        }
    }

    /// Merge another handler's inference (a folder with several handlers).
    pub fn extend(&mut self, other: Inferred) {
        for i in other.imports {
            if !self.imports.contains(&i) {
                self.imports.push(i);
            }
        }
        for r in other.resolved {
            if !self.resolved.contains(&r) {
                self.resolved.push(r);
            }
        }
        for u in other.unresolved {
            if !self.unresolved.contains(&u) {
                self.unresolved.push(u);
            }
        }
    }
}

include!("stdlib.rs");

/// Modules our python daemon provides itself (the cloudflare-worker adapter classes).
const PYTHON_RUNTIME_MODULES: &[&str] = &["fastfn_worker"];

/// Code of each physical line with comments removed and string contents blanked, so that
/// `"import x"` in a docstring or a string is not an import. Triple-quoted strings may span
/// lines.
fn python_code_lines(source: &str) -> Vec<String> {
    let mut out = Vec::new();
    // The quote that closes the string we are in (`"""`, `'''`, `"` or `'`).
    let mut open: Option<&'static str> = None;
    for line in source.lines() {
        let mut code = String::new();
        let mut rest = line;
        while !rest.is_empty() {
            if let Some(q) = open {
                if let Some(at) = find_unescaped(rest, q) {
                    rest = &rest[at + q.len()..];
                    open = None;
                    code.push_str(" \"\" ");
                } else {
                    // A one-quote string ends with its line (or an error): drop the rest.
                    if q.len() == 1 {
                        open = None;
                    }
                    rest = "";
                }
                continue;
            }
            let Some(at) = rest.find(['#', '"', '\'']) else {
                code.push_str(rest);
                break;
            };
            code.push_str(&rest[..at]);
            let tail = &rest[at..];
            if tail.starts_with('#') {
                break;
            }
            let q: &'static str = if tail.starts_with("\"\"\"") {
                "\"\"\""
            } else if tail.starts_with("'''") {
                "'''"
            } else if tail.starts_with('"') {
                "\""
            } else {
                "'"
            };
            open = Some(q);
            rest = &tail[q.len()..];
        }
        out.push(code);
    }
    out
}

fn find_unescaped(text: &str, quote: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = text[from..].find(quote) {
        let at = from + i;
        let backslashes = text[..at].bytes().rev().take_while(|b| *b == b'\\').count();
        if backslashes % 2 == 0 {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c == '_' || c.is_alphabetic()) && chars.all(|c| c == '_' || c.is_alphanumeric())
}

/// Top-level module names a python source imports (absolute imports only), in order, once
/// each.
pub fn python_imports(source: &str) -> Vec<String> {
    let lines = python_code_lines(source);
    // Backslash continuations make one logical line.
    let mut logical = Vec::new();
    let mut current = String::new();
    for l in lines {
        if let Some(cont) = l.trim_end().strip_suffix('\\') {
            current.push_str(cont);
            current.push(' ');
        } else {
            current.push_str(&l);
            logical.push(std::mem::take(&mut current));
        }
    }
    logical.push(current);
    let mut out: Vec<String> = Vec::new();
    let mut push = |dotted: &str| {
        let top = dotted.split('.').next().unwrap_or("").trim();
        if is_identifier(top) && !out.iter().any(|o| o == top) {
            out.push(top.to_string());
        }
    };
    for line in &logical {
        for stmt in line.split(';') {
            // `if x: import y` and `try: import y` put the statement after a colon.
            let stmt = stmt.trim();
            let stmt = stmt
                .rsplit_once(": ")
                .filter(|(head, _)| !head.contains('('))
                .map_or(stmt, |(_, s)| s.trim());
            if let Some(names) = stmt.strip_prefix("import ") {
                for part in names.split(',') {
                    push(part.split_whitespace().next().unwrap_or(""));
                }
            } else if let Some(rest) = stmt.strip_prefix("from ") {
                let module = rest.split_whitespace().next().unwrap_or("");
                let after = rest[module.len()..].trim_start();
                if !module.starts_with('.') && after.starts_with("import") {
                    push(module);
                }
            }
        }
    }
    out
}

/// The package a python import maps to, or `None` when it cannot be mapped (upper case, or
/// characters no package name has).
fn python_package(import: &str) -> Option<String> {
    let valid = import.starts_with(|c: char| c.is_ascii_alphanumeric())
        && import
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    (valid && !import.chars().any(|c| c.is_ascii_uppercase())).then(|| import.to_ascii_lowercase())
}

/// Inference for one python handler: `stem` is its file name without `.py`; `is_local`
/// says whether the function folder has a module of that name (`<name>.py` or `<name>/`).
pub fn python_infer(source: &str, stem: &str, is_local: impl Fn(&str) -> bool) -> Inferred {
    let mut out = Inferred::default();
    for name in python_imports(source) {
        if PYTHON_STDLIB.binary_search(&name.as_str()).is_ok()
            || PYTHON_RUNTIME_MODULES.contains(&name.as_str())
            || name == stem
            || is_local(&name)
        {
            continue;
        }
        let package = python_package(&name);
        out.add(&name, package);
    }
    out
}

/// The normalised project name of a `requirements.txt` line (PEP 503: lower case, runs of
/// `-_.` as `-`), or `None` for blanks, comments, options and URLs.
pub fn requirement_name(line: &str) -> Option<String> {
    let raw = line.trim();
    let lower = raw.to_ascii_lowercase();
    if raw.is_empty()
        || raw.starts_with('#')
        || raw.starts_with('-')
        || ["git+", "http://", "https://", "file:"]
            .iter()
            .any(|p| lower.starts_with(p))
    {
        return None;
    }
    let name: String = raw
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        .collect();
    (!name.is_empty()).then(|| normalise_project(&name))
}

fn normalise_project(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !out.ends_with('-') {
                out.push('-');
            }
        } else {
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

/// Whether a `requirements.txt` asks for anything (a line other than blanks and comments).
pub fn has_requirements(text: &str) -> bool {
    text.lines()
        .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
}

/// `requirements.txt` with the `packages` it does not name yet appended (a header comment
/// when the file is new or empty), or `None` when it names them all.
pub fn merge_requirements(existing: Option<&str>, packages: &[String]) -> Option<String> {
    let text = existing.unwrap_or("");
    let named: BTreeSet<String> = text.lines().filter_map(requirement_name).collect();
    let mut missing: Vec<&String> = Vec::new();
    for p in packages {
        if !named.contains(&normalise_project(p)) && !missing.contains(&p) {
            missing.push(p);
        }
    }
    if missing.is_empty() {
        return None;
    }
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    while lines.last().is_some_and(|l| l.trim().is_empty()) {
        lines.pop();
    }
    if lines.is_empty() {
        lines.push("# Added by FastFN from the handler's imports (FN_AUTO_INFER_PY_DEPS).".into());
        lines.push("# Pin versions here: an explicit list installs faster and the same way each time.".into());
    }
    lines.push(String::new());
    lines.extend(missing.into_iter().cloned());
    Some(lines.join("\n") + "\n")
}

/// `source` with `//` and `/* */` comments blanked (a `//` after `:` is kept: URLs).
fn strip_js_comments(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut rest = source;
    while let Some(at) = rest.find("/*") {
        out.push_str(&rest[..at]);
        out.push(' ');
        rest = rest[at + 2..].find("*/").map_or("", |end| &rest[at + 2 + end + 2..]);
    }
    out.push_str(rest);
    out.lines()
        .map(|l| {
            let mut from = 0;
            while let Some(i) = l[from..].find("//") {
                let at = from + i;
                let prev = l[..at].chars().next_back();
                if !matches!(prev, Some(':') | Some('\\')) {
                    return &l[..at];
                }
                from = at + 2;
            }
            l
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The quoted string at the start of `s` (after blanks): `"x"` or `'x'`.
fn leading_string(s: &str) -> Option<&str> {
    let s = s.trim_start();
    let q = s.chars().next().filter(|c| matches!(c, '"' | '\''))?;
    let body = &s[1..];
    let end = body.find(q)?;
    let spec = &body[..end];
    (!spec.contains(['"', '\'', '`', '\n'])).then_some(spec)
}

fn is_word_start(text: &str, at: usize) -> bool {
    text[..at]
        .chars()
        .next_back()
        .is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '$' || c == '.'))
}

/// Module specifiers a JavaScript/TypeScript source loads, in order, once each.
pub fn node_specifiers(source: &str) -> Vec<String> {
    let text = strip_js_comments(source);
    let mut out: Vec<String> = Vec::new();
    let mut push = |s: &str| {
        let s = s.trim();
        if !s.is_empty() && !out.iter().any(|o| o == s) {
            out.push(s.to_string());
        }
    };
    for keyword in ["import", "require"] {
        let mut from = 0;
        while let Some(i) = text[from..].find(keyword) {
            let at = from + i;
            from = at + keyword.len();
            if !is_word_start(&text, at) {
                continue;
            }
            let after = &text[from..];
            let trimmed = after.trim_start();
            if let Some(call) = trimmed.strip_prefix('(') {
                // require("x") / import("x")
                if let Some(spec) = leading_string(call) {
                    let close = call.trim_start()[spec.len() + 2..].trim_start();
                    if close.starts_with(')') {
                        push(spec);
                    }
                }
            } else if keyword == "import" && after.starts_with(char::is_whitespace) {
                if let Some(spec) = leading_string(trimmed) {
                    push(spec); // import "x"
                    continue;
                }
                // import a, { b } from "x" (the `from` comes before any quote)
                if let Some(f) = find_from(trimmed) {
                    if let Some(spec) = leading_string(&trimmed[f + 4..]) {
                        push(spec);
                    }
                }
            }
        }
    }
    out
}

/// Position of the `from` keyword of an import statement (before any quote).
fn find_from(s: &str) -> Option<usize> {
    let quote = s.find(['"', '\'', '`']).unwrap_or(s.len());
    let mut from = 0;
    while let Some(i) = s[from..quote].find("from") {
        let at = from + i;
        let before = s[..at].chars().next_back();
        let after = s[at + 4..].chars().next();
        if before.is_some_and(|c| c.is_whitespace() || c == '}')
            && after.is_some_and(|c| c.is_whitespace() || c == '"' || c == '\'')
        {
            return Some(at);
        }
        from = at + 4;
    }
    None
}

/// What a node specifier names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeSpec {
    /// Relative, absolute, URL, builtin: not a package.
    Ignore,
    Package(String),
    Unresolved,
}

fn node_package_name(name: &str) -> bool {
    let (scope, rest) = match name.strip_prefix('@') {
        Some(s) => match s.split_once('/') {
            Some((scope, rest)) => (Some(scope), rest),
            None => return false,
        },
        None => (None, name),
    };
    let ok = |p: &str| {
        !p.is_empty()
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    };
    scope.is_none_or(ok) && ok(rest)
}

pub fn node_spec(specifier: &str) -> NodeSpec {
    let raw = specifier.trim();
    let skipped = [".", "/", "http:", "https:", "file:", "data:", "@/", "~/", "#", "node:"];
    if raw.is_empty() || skipped.iter().any(|p| raw.starts_with(p)) {
        return NodeSpec::Ignore;
    }
    let name = if raw.starts_with('@') {
        let mut parts = raw.splitn(3, '/');
        match (parts.next(), parts.next()) {
            (Some(scope), Some(pkg)) if scope.len() > 1 && !pkg.is_empty() => format!("{scope}/{pkg}"),
            _ => return NodeSpec::Unresolved,
        }
    } else {
        raw.split('/').next().unwrap_or("").to_string()
    };
    if NODE_BUILTINS.binary_search(&name.as_str()).is_ok() {
        return NodeSpec::Ignore;
    }
    if node_package_name(&name) {
        NodeSpec::Package(name)
    } else {
        NodeSpec::Unresolved
    }
}

/// Inference for one node handler; `ignore` are names provided otherwise (shared packs).
pub fn node_infer(source: &str, ignore: &[String]) -> Inferred {
    let mut out = Inferred::default();
    for spec in node_specifiers(source) {
        match node_spec(&spec) {
            NodeSpec::Ignore => {}
            NodeSpec::Package(p) if ignore.contains(&p) => {}
            NodeSpec::Package(p) => out.add(&spec, Some(p)),
            NodeSpec::Unresolved => out.add(&spec, None),
        }
    }
    out
}

/// Why a `package.json` cannot be extended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid package.json: {0}")]
pub struct InvalidPackageJson(pub String);

/// `package.json` with the `packages` it does not list under `dependencies` (or
/// `devDependencies`, `optionalDependencies`, `peerDependencies`) added as `"*"`, or `None` when
/// nothing is missing. A new file is `{"name": "fastfn-<folder>", "private": true, "version":
/// "1.0.0", "dependencies": {…}}`. An existing file is edited in place as text (a new
/// `dependencies` entry is inserted): its keys keep their order and formatting.
pub fn merge_package_json(
    existing: Option<&str>,
    folder_name: &str,
    packages: &[String],
) -> Result<Option<String>, InvalidPackageJson> {
    let Some(text) = existing else {
        if packages.is_empty() {
            return Ok(None);
        }
        let slug: String = folder_name
            .to_ascii_lowercase()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        let slug = slug.trim_matches('-');
        let mut deps = serde_json::Map::new();
        for p in packages {
            deps.insert(p.clone(), serde_json::json!("*"));
        }
        // Written by hand so the keys come in npm's usual order.
        let deps = serde_json::to_string_pretty(&serde_json::Value::Object(deps)).unwrap_or_default();
        let name = if slug.is_empty() { "function" } else { slug };
        let text = format!(
            "{{\n  \"name\": \"fastfn-{name}\",\n  \"private\": true,\n  \"version\": \"1.0.0\",\n  \"dependencies\": {}\n}}\n",
            deps.replace('\n', "\n  ")
        );
        return Ok(Some(text));
    };
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| InvalidPackageJson(e.to_string()))?;
    let Some(obj) = value.as_object() else {
        return Err(InvalidPackageJson("expected a JSON object".into()));
    };
    let listed = |p: &str| {
        [
            "dependencies",
            "devDependencies",
            "optionalDependencies",
            "peerDependencies",
        ]
        .iter()
        .any(|k| {
            obj.get(*k)
                .and_then(|d| d.as_object())
                .is_some_and(|d| d.contains_key(p))
        })
    };
    let missing: Vec<&String> = packages.iter().filter(|p| !listed(p)).collect();
    if missing.is_empty() {
        return Ok(None);
    }
    let entries = |indent: &str| {
        missing
            .iter()
            .map(|p| format!("{indent}{}: \"*\"", serde_json::Value::String((*p).clone())))
            .collect::<Vec<_>>()
            .join(",\n")
    };
    let spans = top_level_values(text).ok_or_else(|| InvalidPackageJson("unreadable layout".into()))?;
    let out = match spans.iter().find(|(k, ..)| k == "dependencies") {
        Some((_, start, end)) if text[*start..].starts_with('{') => {
            // Insert before the closing brace of `dependencies`.
            let inner = text[start + 1..end - 1].trim();
            let body = if inner.is_empty() {
                format!("{{\n{}\n  }}", entries("    "))
            } else {
                let close = text[..end - 1].trim_end().len();
                return Ok(Some(format!(
                    "{},\n{}\n  {}",
                    &text[..close],
                    entries("    "),
                    &text[end - 1..]
                )));
            };
            format!("{}{}{}", &text[..*start], body, &text[*end..])
        }
        Some(_) => return Err(InvalidPackageJson("`dependencies` is not an object".into())),
        None => {
            let close = text.trim_end().len() - 1; // the final `}`
            let before = text[..close].trim_end();
            let comma = if before.ends_with('{') { "" } else { "," };
            format!(
                "{before}{comma}\n  \"dependencies\": {{\n{}\n  }}\n}}\n",
                entries("    ")
            )
        }
    };
    Ok(Some(out))
}

/// Keys of the top-level object with the byte span of each value (`start..end`).
fn top_level_values(text: &str) -> Option<Vec<(String, usize, usize)>> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = text.find('{')? + 1;
    let skip_ws = |mut i: usize| {
        while i < bytes.len() && (bytes[i] as char).is_whitespace() {
            i += 1;
        }
        i
    };
    let string_end = |i: usize| {
        // `i` is at the opening quote; returns the index after the closing quote.
        let mut j = i + 1;
        while j < bytes.len() {
            match bytes[j] {
                b'\\' => j += 2,
                b'"' => return Some(j + 1),
                _ => j += 1,
            }
        }
        None
    };
    loop {
        i = skip_ws(i);
        match bytes.get(i)? {
            b'}' => return Some(out),
            b',' => {
                i += 1;
                continue;
            }
            b'"' => {}
            _ => return None,
        }
        let key_end = string_end(i)?;
        let key: String = serde_json::from_str(&text[i..key_end]).ok()?;
        i = skip_ws(key_end);
        if bytes.get(i)? != &b':' {
            return None;
        }
        let start = skip_ws(i + 1);
        // The value ends where depth returns to zero at a `,` or the closing `}`.
        let mut j = start;
        let mut depth = 0i32;
        while j < bytes.len() {
            match bytes[j] {
                b'"' => {
                    j = string_end(j)?;
                    continue;
                }
                b'{' | b'[' => depth += 1,
                b'}' | b']' if depth > 0 => depth -= 1,
                b',' | b'}' if depth == 0 => break,
                _ => {}
            }
            j += 1;
        }
        let end = text[..j].trim_end().len();
        out.push((key, start, end));
        i = j;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stdlib_tables_are_sorted_for_binary_search() {
        assert!(PYTHON_STDLIB.windows(2).all(|w| w[0] < w[1]));
        assert!(NODE_BUILTINS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn python_imports_absolute_top_level_names_only() {
        let src = r#"
import os, sys as system
import six.moves
from requests.adapters import HTTPAdapter
from . import sibling
from .pkg import thing
from __future__ import annotations
import attr; import idna
try: import ujson
except ImportError: ujson = None
from yaml import \
    safe_load
"""
import not_this
"""
text = "import nor_this"  # import nor_that
x = 'from nope import x'
def f():
    import PIL.Image
    from Crypto.Cipher import AES
"#;
        assert_eq!(
            python_imports(src),
            [
                "os",
                "sys",
                "six",
                "requests",
                "__future__",
                "attr",
                "idna",
                "ujson",
                "yaml",
                "PIL",
                "Crypto"
            ]
        );
    }

    #[test]
    fn python_inference_skips_stdlib_local_and_runtime_modules() {
        let src = "import os, json, asyncio\nimport six\nimport helpers\nimport handler\nfrom fastfn_worker import Response\nimport PIL\nimport requests\nimport six\n";
        let got = python_infer(src, "handler", |n| n == "helpers");
        assert_eq!(got.resolved, ["six", "requests"]);
        assert_eq!(got.unresolved, ["PIL"]);
        assert_eq!(got.imports, ["six", "PIL", "requests"]);
    }

    #[test]
    fn requirement_names() {
        assert_eq!(requirement_name("six==1.16.0").as_deref(), Some("six"));
        assert_eq!(
            requirement_name("  Flask_SQLAlchemy>=3 ; python_version>'3'").as_deref(),
            Some("flask-sqlalchemy")
        );
        assert_eq!(requirement_name("requests[socks]").as_deref(), Some("requests"));
        for none in [
            "",
            "# six",
            "-r other.txt",
            "--index-url x",
            "git+https://x/y",
            "https://x/y.whl",
        ] {
            assert_eq!(requirement_name(none), None, "{none}");
        }
    }

    #[test]
    fn requirements_are_extended_never_rewritten() {
        let p = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let new = merge_requirements(None, &p(&["six", "requests"])).unwrap();
        assert!(new.starts_with("# Added by FastFN"), "{new}");
        assert!(new.ends_with("\n\nsix\nrequests\n"), "{new}");
        assert_eq!(
            merge_requirements(Some("Six==1.16.0\nrequests\n"), &p(&["six", "requests"])),
            None
        );
        assert_eq!(
            merge_requirements(Some("# mine\nsix==1.16.0\n\n\n"), &p(&["six", "attrs"])).as_deref(),
            Some("# mine\nsix==1.16.0\n\nattrs\n")
        );
        assert_eq!(merge_requirements(Some("x\n"), &[]), None);
        assert!(has_requirements("# c\nsix\n") && !has_requirements("# c\n\n"));
    }

    #[test]
    fn node_specifiers_from_imports_and_requires() {
        let src = r#"
import fs from 'fs';
import { isNumber } from "is-number";
import * as lodash from 'lodash/fp';
import def, { a as b } from '@scope/pkg/sub';
import 'side-effect';
import type { T } from "typed-only";
const x = require('./local');
const y = require ( "left-pad" );
const z = await import('dynamic-pkg');
// require('commented-out')
/* import nope from 'nope'; */
const url = 'https://example.com//path';
const notImport = myimport('nope2');
const r = require.resolve('resolved-only');
import {
  a,
  b,
} from 'multi-line';
"#;
        assert_eq!(
            node_specifiers(src),
            [
                "fs",
                "is-number",
                "lodash/fp",
                "@scope/pkg/sub",
                "side-effect",
                "typed-only",
                "dynamic-pkg",
                "multi-line",
                "./local",
                "left-pad"
            ]
        );
    }

    #[test]
    fn node_specs_to_packages() {
        assert_eq!(node_spec("fs/promises"), NodeSpec::Ignore);
        assert_eq!(node_spec("node:test"), NodeSpec::Ignore);
        assert_eq!(node_spec("./x"), NodeSpec::Ignore);
        assert_eq!(node_spec("lodash/fp"), NodeSpec::Package("lodash".into()));
        assert_eq!(node_spec("@scope/pkg/sub"), NodeSpec::Package("@scope/pkg".into()));
        assert_eq!(node_spec("@scope"), NodeSpec::Unresolved);
        assert_eq!(node_spec("bad name!"), NodeSpec::Unresolved);
        let got = node_infer(
            "require('is-number'); require('os'); require('my-pack-lib'); require('$weird')",
            &["my-pack-lib".to_string()],
        );
        assert_eq!(
            (got.resolved, got.unresolved),
            (vec!["is-number".to_string()], vec!["$weird".to_string()])
        );
    }

    #[test]
    fn package_json_new_and_extended_in_place() {
        let p = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let new = merge_package_json(None, "My Fn", &p(&["is-number"])).unwrap().unwrap();
        let v: serde_json::Value = serde_json::from_str(&new).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"name":"fastfn-my-fn","private":true,"version":"1.0.0","dependencies":{"is-number":"*"}})
        );
        assert!(new.find("\"name\"").unwrap() < new.find("\"dependencies\"").unwrap());
        assert_eq!(merge_package_json(None, "x", &[]).unwrap(), None);

        let existing = "{\n  \"name\": \"z\",\n  \"scripts\": {\"a\": \"b,}\"},\n  \"dependencies\": {\n    \"left-pad\": \"1.3.0\"\n  }\n}\n";
        let out = merge_package_json(Some(existing), "z", &p(&["left-pad", "is-number"]))
            .unwrap()
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            v["dependencies"],
            serde_json::json!({"left-pad":"1.3.0","is-number":"*"})
        );
        assert!(
            out.find("\"name\"").unwrap() < out.find("\"scripts\"").unwrap(),
            "order kept: {out}"
        );
        assert_eq!(
            merge_package_json(Some(existing), "z", &p(&["left-pad"])).unwrap(),
            None
        );

        let no_deps = "{\"name\": \"z\", \"devDependencies\": {\"jest\": \"1\"}}";
        let out = merge_package_json(Some(no_deps), "z", &p(&["jest", "six"]))
            .unwrap()
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["dependencies"], serde_json::json!({"six":"*"}));
        assert_eq!(v["name"], "z");
        let empty_deps = "{\"dependencies\": {}}";
        let out = merge_package_json(Some(empty_deps), "z", &p(&["a"])).unwrap().unwrap();
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&out).unwrap(),
            serde_json::json!({"dependencies":{"a":"*"}})
        );
        let empty = "{}";
        let out = merge_package_json(Some(empty), "z", &p(&["a"])).unwrap().unwrap();
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&out).unwrap(),
            serde_json::json!({"dependencies":{"a":"*"}})
        );
        assert!(merge_package_json(Some("[1]"), "z", &p(&["a"])).is_err());
        assert!(merge_package_json(Some("{nope"), "z", &p(&["a"])).is_err());
        assert!(merge_package_json(Some("{\"dependencies\": 3}"), "z", &p(&["a"])).is_err());
    }
}
