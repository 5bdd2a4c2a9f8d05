//! Child processes of the engine: runtime daemons, compiled Rust/Go functions, toolchains and
//! installers. One way to start them (their own process group, so one signal reaches whatever
//! they fork; killed when dropped; stdin a pipe when they must exit on the engine's EOF), to
//! signal their group, and to forward their output line by line while keeping a short tail of
//! stderr for error messages.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, BufReader};

pub use nix::sys::signal::Signal;

/// What to start.
pub struct Spec<'a> {
    pub program: &'a OsStr,
    pub args: Vec<OsString>,
    pub cwd: &'a Path,
    pub env: Vec<(OsString, OsString)>,
    pub env_remove: Vec<OsString>,
    /// Keep stdin as a pipe held by the engine: a child that exits on EOF then cannot outlive
    /// it (daemons, compiled functions). Otherwise stdin is `/dev/null` (tools, installers).
    pub stdin_pipe: bool,
}

/// Start `spec` in its own process group with piped stdout/stderr.
pub fn spawn(spec: &Spec<'_>) -> std::io::Result<tokio::process::Child> {
    let mut cmd = tokio::process::Command::new(spec.program);
    cmd.args(&spec.args)
        .current_dir(spec.cwd)
        .stdin(if spec.stdin_pipe { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    for key in &spec.env_remove {
        cmd.env_remove(key);
    }
    for (k, v) in &spec.env {
        cmd.env(k, v);
    }
    cmd.spawn()
}

/// Send `signal` to the process group led by `pid` (0: nothing to signal). False when it
/// could not be sent (the group is gone).
pub fn signal_group(pid: u32, signal: Signal) -> bool {
    pid != 0 && nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid as i32), signal).is_ok()
}

/// Kills a process group when dropped (a no-op once the group is gone): for work that a
/// timeout or an engine stop may abandon half way (a build: rustc, the linker, …).
pub struct GroupGuard(pub u32);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        signal_group(self.0, Signal::SIGKILL);
    }
}

/// The last lines a child wrote to stderr (for "exited during start-up: …").
#[derive(Debug, Default)]
pub struct Tail {
    lines: Mutex<VecDeque<String>>,
}

impl Tail {
    /// Lines kept.
    pub const LINES: usize = 20;

    pub fn push(&self, line: &str) {
        let mut t = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        if t.len() == Self::LINES {
            t.pop_front();
        }
        t.push_back(line.to_string());
    }

    /// The last `n` lines joined with ` | ` (empty when none).
    pub fn last(&self, n: usize) -> String {
        let t = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        let skip = t.len().saturating_sub(n);
        t.iter().skip(skip).cloned().collect::<Vec<_>>().join(" | ")
    }
}

/// Forward `stream` line by line to `on_line` until it closes, keeping `tail` if given.
pub async fn forward_lines(
    stream: impl tokio::io::AsyncRead + Unpin,
    tail: Option<Arc<Tail>>,
    mut on_line: impl FnMut(String),
) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if let Some(tail) = &tail {
            tail.push(&line);
        }
        on_line(line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_keeps_the_last_lines() {
        let t = Tail::default();
        assert_eq!(t.last(5), "");
        for i in 0..25 {
            t.push(&format!("l{i}"));
        }
        assert_eq!(t.last(3), "l22 | l23 | l24");
        assert_eq!(t.last(100).split(" | ").count(), Tail::LINES);
    }

    #[tokio::test]
    async fn a_child_runs_in_its_own_group_and_its_lines_are_forwarded() {
        let dir = std::env::temp_dir();
        let spec = Spec {
            program: OsStr::new("sh"),
            args: vec![
                "-c".into(),
                "echo one; echo two >&2; echo three; sleep 30 & wait".into(),
            ],
            cwd: &dir,
            env: vec![],
            env_remove: vec![],
            stdin_pipe: false,
        };
        let mut child = spawn(&spec).unwrap();
        let pid = child.id().unwrap();
        assert_eq!(
            nix::unistd::getpgid(Some(nix::unistd::Pid::from_raw(pid as i32)))
                .unwrap()
                .as_raw() as u32,
            pid
        );
        let tail = Arc::new(Tail::default());
        let mut out = Vec::new();
        let (so, se) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
        let err = tokio::spawn(forward_lines(se, Some(tail.clone()), |_| {}));
        let read = forward_lines(so, None, |l| out.push(l));
        // The grandchild `sleep` holds stdout open: the group kill ends it too.
        let killer = async {
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            assert!(signal_group(pid, Signal::SIGKILL));
        };
        tokio::join!(read, killer);
        err.await.unwrap();
        assert_eq!(out, ["one", "three"]);
        assert_eq!(tail.last(5), "two");
        let _ = child.wait().await;
        assert!(
            !signal_group(0, Signal::SIGKILL),
            "pid 0 (not started) is never signalled"
        );
    }
}
