//! `fastfn bench ROUTE`: the load lab from the command line. The running engine sends the load
//! to itself (`POST /_fn/lab/load` with `wait`), as the dashboard's Lab does, and the CLI
//! prints the same summary.

use super::load::{LoadRun, LoadSpec};
use std::io::{Read, Write};
use std::process::ExitCode;

/// One guarded `POST` to the engine on 127.0.0.1 (CSRF header set): status line and body.
fn post(port: u16, target: &str, body: &str) -> std::io::Result<(String, String)> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    // The run is bounded (5 minutes at most) and the answer comes at its end.
    s.set_read_timeout(Some(std::time::Duration::from_secs(330)))?;
    write!(
        s,
        "POST {target} HTTP/1.0\r\nHost: 127.0.0.1\r\nX-Fn-Request: 1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    Ok((head.lines().next().unwrap_or("").to_string(), body.to_string()))
}

pub fn run(port: u16, spec: &LoadSpec) -> ExitCode {
    if let Err(e) = spec.validate() {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    let mut payload = serde_json::to_value(spec).unwrap_or_default();
    payload["wait"] = serde_json::Value::Bool(true);
    let (status, body) = match post(port, "/_fn/lab/load", &payload.to_string()) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: no FastFN engine answers on 127.0.0.1:{port} ({e}); start one with `fastfn dev`");
            return ExitCode::FAILURE;
        }
    };
    match serde_json::from_str::<LoadRun>(&body) {
        Ok(run) if status.split_whitespace().nth(1) == Some("200") => {
            print!("{}", run.render());
            if run.summary.errors > 0 {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        _ => {
            eprintln!("error: the engine answered {status}: {}", body.trim());
            ExitCode::FAILURE
        }
    }
}
