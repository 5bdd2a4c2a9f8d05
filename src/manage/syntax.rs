//! After a handler file is saved: the runtime's own syntax check (`node --check`, Python's
//! `compile`, `php -l`), so the console can say "syntax error at line N" at once instead of
//! at the next call. The file is saved either way (work in progress is the user's); the
//! check only reports. Paths in the messages are the root-relative ones the client gave.

use std::path::Path;
use std::time::Duration;

/// The outcome of a check, as the API answers it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Syntax {
    pub ok: bool,
    /// 1-based line of the first error, when the checker names one.
    pub line: Option<u32>,
    pub message: Option<String>,
}

/// How long a checker may take (a cold `node` starts in well under a second).
const LIMIT: Duration = Duration::from_secs(10);

/// The command that checks a file of this extension, if any.
fn checker(ext: &str, binary: &dyn Fn(&str) -> String) -> Option<(String, Vec<String>)> {
    match ext {
        "js" | "cjs" | "mjs" => Some((binary("node"), vec!["--check".into()])),
        "py" => Some((
            binary("python"),
            vec![
                "-c".into(),
                "import sys; compile(open(sys.argv[1], encoding='utf-8').read(), sys.argv[1], 'exec')".into(),
            ],
        )),
        "php" => Some((binary("php"), vec!["-l".into()])),
        _ => None,
    }
}

/// Runs the check on `abs` (named `rel` in messages). `None` when there is no checker for the
/// file or it could not run (a missing interpreter is not a syntax error).
pub async fn check(abs: &Path, rel: &str, binary: &(dyn Fn(&str) -> String + Sync)) -> Option<Syntax> {
    let ext = abs.extension()?.to_str()?.to_ascii_lowercase();
    let (bin, mut args) = checker(&ext, binary)?;
    args.push(abs.display().to_string());
    let run = tokio::process::Command::new(&bin)
        .args(&args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(LIMIT, run).await.ok()?.ok()?;
    if out.status.success() {
        return Some(Syntax {
            ok: true,
            line: None,
            message: None,
        });
    }
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
    .replace(&abs.display().to_string(), rel);
    Some(parse(&ext, &text, rel))
}

/// The line and message of a checker's output (pure).
pub fn parse(ext: &str, text: &str, rel: &str) -> Syntax {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty())
        .collect();
    let number = |s: &str| s.trim().parse::<u32>().ok();
    let (line, message) = match ext {
        // node: "<file>:<line>" first, then the source line, a caret, "SyntaxError: …".
        "js" | "cjs" | "mjs" => (
            lines
                .iter()
                .find_map(|l| l.strip_prefix(rel).and_then(|r| r.strip_prefix(':')).and_then(number)),
            lines
                .iter()
                .find(|l| l.contains("Error:"))
                .map(|l| l.trim().to_string()),
        ),
        // python: `File "<file>", line N` in the traceback, the error last.
        "py" => (
            lines
                .iter()
                .rev()
                .find_map(|l| l.split_once(", line ").and_then(|(_, n)| number(n.split(',').next()?))),
            lines.last().map(|l| l.trim().to_string()),
        ),
        // php: "PHP Parse error:  … in <file> on line N".
        _ => (
            lines
                .iter()
                .find_map(|l| l.rsplit_once(" on line ").and_then(|(_, n)| number(n))),
            lines.iter().find(|l| l.contains("error")).map(|l| l.trim().to_string()),
        ),
    };
    Syntax {
        ok: false,
        line,
        message: message.or_else(|| lines.first().map(|l| l.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_output() {
        let out = "hello/handler.js:2\n  return ({ made: 3 ;\n                   ^\n\nSyntaxError: Unexpected token ';'\n    at wrapSafe (node:internal/modules/cjs/loader:1)\n";
        let s = parse("js", out, "hello/handler.js");
        assert_eq!(
            (s.line, s.message.as_deref()),
            (Some(2), Some("SyntaxError: Unexpected token ';'"))
        );
    }

    #[test]
    fn python_output() {
        let out = "Traceback (most recent call last):\n  File \"<string>\", line 1, in <module>\n  File \"a/h.py\", line 3\n    def x(:\n          ^\nSyntaxError: invalid syntax\n";
        let s = parse("py", out, "a/h.py");
        assert_eq!(
            (s.line, s.message.as_deref()),
            (Some(3), Some("SyntaxError: invalid syntax"))
        );
    }

    #[test]
    fn php_output() {
        let out =
            "PHP Parse error:  syntax error, unexpected token \";\" in a/h.php on line 4\nErrors parsing a/h.php\n";
        let s = parse("php", out, "a/h.php");
        assert_eq!(s.line, Some(4));
        assert!(s.message.unwrap().starts_with("PHP Parse error"));
    }

    #[tokio::test]
    async fn real_node_and_python_checkers() {
        let dir = tempfile::tempdir().unwrap();
        let bin = |k: &str| {
            if k == "python" {
                "python3".to_string()
            } else {
                k.to_string()
            }
        };
        let js = dir.path().join("h.js");
        std::fs::write(&js, "exports.handler = async () => {\n  return ({ a: 1 ;\n};\n").unwrap();
        let s = check(&js, "x/h.js", &bin).await.expect("node runs");
        assert_eq!((s.ok, s.line), (false, Some(2)), "{s:?}");
        assert!(!s.message.unwrap_or_default().contains(dir.path().to_str().unwrap()));
        std::fs::write(&js, "exports.handler = async () => ({ a: 1 });\n").unwrap();
        assert!(check(&js, "x/h.js", &bin).await.unwrap().ok);
        let py = dir.path().join("h.py");
        std::fs::write(&py, "def handler(event):\n    return {\n").unwrap();
        let s = check(&py, "x/h.py", &bin).await.expect("python runs");
        assert!(!s.ok && s.line.is_some(), "{s:?}");
        assert_eq!(check(&dir.path().join("notes.txt"), "notes.txt", &bin).await, None);
    }
}
