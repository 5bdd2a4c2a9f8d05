//! `fastfn`: the engine, headless, for terminals and CI.

use crate::config::project::{Overrides, Settings};
use crate::engine::Engine;
use crate::events::EngineEvent;
use crate::routing::Methods;
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "fastfn",
    version,
    about = "Run a folder of functions as an HTTP API",
    long_about = "FastFN turns a folder of function files into an HTTP API.\n\n\
        Each file is a route: `hello.py` answers GET /hello, `users/[id].js` answers GET /users/:id,\n\
        `post.orders.py` answers POST /orders. Python and Node handlers run in daemons behind Unix\n\
        sockets; the gateway listens on 127.0.0.1:8080.\n\n\
        Start with:  fastfn init hello -t python && fastfn dev .",
    after_help = "Environment: FN_HOST_PORT, FN_RUNTIMES (e.g. python,node), FN_RUNTIME_DAEMONS (node=3,python=2),\n\
        FN_PYTHON_BIN, FN_NODE_BIN, FN_HEALTH_INTERVAL, FN_SOCKET_BASE_DIR, FN_HOT_RELOAD, FN_FORCE_URL."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(clap::Args, Debug, Clone)]
pub struct ServeArgs {
    /// Project or functions folder (default: the current folder)
    pub dir: Option<PathBuf>,
    /// Port to listen on [env: FN_HOST_PORT] [default: 8080]
    #[arg(long, short)]
    pub port: Option<u16>,
    /// Address to bind [default: 127.0.0.1]
    #[arg(long)]
    pub host: Option<String>,
    /// Let config routes take over URLs claimed by other routes
    #[arg(long)]
    pub force_url: bool,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve a project for development (hot reload on)
    Dev {
        #[command(flatten)]
        serve: ServeArgs,
        /// Turn hot reload off
        #[arg(long)]
        no_hot_reload: bool,
    },
    /// Serve a project like production (hot reload off unless asked)
    Run {
        #[command(flatten)]
        serve: ServeArgs,
        /// Turn hot reload on
        #[arg(long)]
        hot_reload: bool,
    },
    /// Create a function folder with a config and a handler
    Init {
        /// Function name (also the folder created)
        name: String,
        /// Runtime of the handler
        #[arg(short = 't', long = "template", value_parser = ["node", "python", "php", "lua", "rust"], default_value = "python")]
        runtime: String,
    },
    /// Check host tools, configuration, port and discovery
    Doctor {
        /// Project or functions folder
        dir: Option<PathBuf>,
        /// Machine-readable output
        #[arg(long)]
        json: bool,
    },
    /// Show the last lines of daemon and handler output of a running engine
    Logs {
        /// Port of the running engine [default: 8080]
        #[arg(long, short)]
        port: Option<u16>,
        /// Only this runtime
        #[arg(long)]
        runtime: Option<String>,
        /// Only this function
        #[arg(long = "fn")]
        function: Option<String>,
        /// stdout, stderr or all
        #[arg(long, default_value = "all")]
        stream: String,
        /// How many lines (at most 2000)
        #[arg(long, short = 'n', default_value_t = 100)]
        lines: usize,
    },
    /// Print the version
    Version,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("FN_LOG").unwrap_or_else(|_| "fastfn=info".into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .without_time()
        .init();
    match cli.command {
        Command::Version => {
            println!("FastFN {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Command::Init { name, runtime } => init(&name, &runtime),
        Command::Doctor { dir, json } => crate::doctor::run(dir, json),
        Command::Logs {
            port,
            runtime,
            function,
            stream,
            lines,
        } => logs(port, runtime, function, &stream, lines),
        Command::Dev { serve, no_hot_reload } => run_engine(serve, Some(!no_hot_reload).filter(|h| !h)),
        Command::Run { serve, hot_reload } => {
            // Production-like: off unless the flag, FN_HOT_RELOAD or fastfn.json asks for it.
            let asked = hot_reload || std::env::var_os("FN_HOT_RELOAD").is_some();
            run_engine(serve, if asked { hot_reload.then_some(true) } else { Some(false) })
        }
    }
}

fn overrides(serve: &ServeArgs, hot_reload: Option<bool>) -> Overrides {
    Overrides {
        dir: serve.dir.clone(),
        host: serve.host.clone(),
        port: serve.port,
        force_url: serve.force_url.then_some(true),
        hot_reload,
        config_file: None,
    }
}

fn run_engine(serve: ServeArgs, hot_reload: Option<bool>) -> ExitCode {
    let settings = match Settings::from_env(&overrides(&serve, hot_reload)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(gateway_threads())
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = rt.block_on(async move {
        let engine = match Engine::start(settings).await {
            Ok(e) => e,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(if matches!(e, crate::StartError::PortInUse { .. }) {
                    3
                } else {
                    2
                });
            }
        };
        print_summary(&engine);
        let mut events = engine.events().subscribe();
        let printer = tokio::spawn(async move {
            while let Ok(ev) = events.recv().await {
                print_event(&ev);
            }
        });
        wait_for_signal().await;
        eprintln!("stopping…");
        engine.stop().await;
        printer.abort();
        ExitCode::SUCCESS
    });
    // A Lua call stuck in a long C function holds a blocking thread: do not wait for it.
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    code
}

/// The gateway mostly waits on sockets while the daemons burn CPU, so by default it takes half
/// the cores (one on a 2-core machine: measured faster there, see docs/benchmarks.md).
/// `FN_GATEWAY_THREADS` overrides.
fn gateway_threads() -> usize {
    std::env::var("FN_GATEWAY_THREADS")
        .ok()
        .and_then(|n| n.parse().ok())
        .filter(|n: &usize| *n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1)))
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) {
        (Ok(mut int), Ok(mut term)) => {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

fn methods_text(m: Methods) -> String {
    Methods::ALL_NAMES
        .iter()
        .filter(|(_, b)| m.0 & b.0 != 0)
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(",")
}

fn print_summary(engine: &Engine) {
    let s = engine.settings();
    let served = engine.served();
    let routes = served.discovery.routes.routes();
    println!(
        "FastFN {} serving {}",
        env!("CARGO_PKG_VERSION"),
        s.functions_root.display()
    );
    println!("  → http://{}", engine.addr());
    for (rt, sockets) in engine.runtimes() {
        let up = sockets.sockets.iter().filter(|x| x.health().up == Some(true)).count();
        println!(
            "  {rt}: {up}/{} daemon(s) ready ({})",
            sockets.sockets.len(),
            sockets.routing()
        );
    }
    for (rt, why) in engine.missing_runtimes() {
        println!("  {rt}: off — {why}");
    }
    println!("  {} route(s):", routes.len());
    for r in routes {
        println!(
            "    {:<14} {:<32} {:<7} {}",
            methods_text(r.methods),
            r.pattern,
            r.target.runtime.name(),
            r.target.entry
        );
    }
    for pattern in served.discovery.routes.conflicts() {
        println!("  409 {pattern}: several functions of one runtime claim it (ambiguous function)");
    }
    for w in &served.discovery.warnings {
        println!("  warning: {w}");
    }
    for e in &served.discovery.errors {
        println!("  error: {e}");
    }
    println!("Press Ctrl+C to stop.");
}

fn print_event(ev: &EngineEvent) {
    match ev {
        EngineEvent::DaemonExited {
            runtime,
            index,
            status,
            restart_in_ms,
            ..
        } => {
            let again = restart_in_ms
                .map(|ms| format!(", restarting in {:.1} s", ms as f64 / 1000.0))
                .unwrap_or_default();
            eprintln!("{runtime} daemon {index} exited ({status}){again}");
        }
        EngineEvent::DaemonFailed {
            runtime,
            index,
            message,
            ..
        } => eprintln!("{runtime} daemon {index}: {message}"),
        EngineEvent::DaemonReady {
            runtime,
            index,
            pid,
            ms,
        } => tracing::debug!("{runtime} daemon {index} ready (pid {pid}, {ms} ms)"),
        EngineEvent::SocketHealth {
            runtime,
            index,
            up,
            reason,
        } => {
            eprintln!(
                "{runtime} socket {index} {} ({reason})",
                if *up { "up" } else { "down" }
            )
        }
        EngineEvent::Log {
            runtime,
            index,
            stream,
            line,
        } => eprintln!("[{runtime}:{index} {stream}] {line}"),
        EngineEvent::Reload {
            ok,
            files,
            routes,
            added,
            removed,
            ms,
            error,
        } => {
            if *ok {
                let what = match files.as_slice() {
                    [] => String::new(),
                    [one] => format!(" ({one} changed)"),
                    [first, rest @ ..] => format!(" ({first} and {} more changed)", rest.len()),
                };
                let delta: Vec<String> = added
                    .iter()
                    .map(|r| format!("+{r}"))
                    .chain(removed.iter().map(|r| format!("-{r}")))
                    .collect();
                eprintln!("reloaded in {ms} ms{what}: {routes} route(s) {}", delta.join(" "));
            } else {
                eprintln!(
                    "reload kept the last good routes: {}",
                    error.as_deref().unwrap_or("error")
                );
            }
        }
        EngineEvent::DepsInstalling {
            function, installer, ..
        } => eprintln!("{function}: installing dependencies ({installer})…"),
        EngineEvent::DepsReady { function, ms, .. } => {
            eprintln!("{function}: dependencies ready in {:.1} s", *ms as f64 / 1000.0)
        }
        EngineEvent::DepsFailed { function, output, .. } => {
            let last = output.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
            eprintln!("{function}: dependency install failed: {last}");
        }
        EngineEvent::BuildStarted { function, .. } => eprintln!("{function}: building…"),
        EngineEvent::BuildFinished {
            function,
            ok,
            ms,
            message,
            ..
        } => {
            if *ok {
                eprintln!("{function}: built in {:.1} s", *ms as f64 / 1000.0);
            } else {
                eprintln!("{function}: build failed: {}", message.lines().next().unwrap_or(""));
            }
        }
        _ => {}
    }
}

fn init(name: &str, runtime: &str) -> ExitCode {
    let valid = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !valid {
        eprintln!("error: a function name uses letters, digits, `-` and `_` only, got `{name}`");
        return ExitCode::from(2);
    }
    let dir = Path::new(name);
    if dir.exists() {
        eprintln!("error: `{name}` already exists; pick another name");
        return ExitCode::from(2);
    }
    let (file, code) = match runtime {
        "node" => ("handler.js", "exports.handler = async (event) => {\n  return { message: `Hello from ${event.path}` };\n};\n"),
        "python" => ("handler.py", "def handler(event):\n    return {\"message\": f\"Hello from {event['path']}\"}\n"),
        "php" => ("handler.php", "<?php\nfunction handler(array $event) {\n    return ['message' => 'Hello from ' . $event['path']];\n}\n"),
        "lua" => ("handler.lua", "return function(event)\n  return { message = \"Hello from \" .. event.path }\nend\n"),
        "rust" => ("handler.rs", "pub fn handler(event: serde_json::Value) -> serde_json::Value {\n    serde_json::json!({\"status\": 200, \"body\": format!(\"Hello from {}\", event[\"path\"])})\n}\n"),
        _ => unreachable!("clap restricts the template"),
    };
    let config = serde_json::json!({"runtime": runtime, "name": name, "version": "1.0.0", "entrypoint": file});
    let written = std::fs::create_dir_all(dir)
        .and_then(|_| {
            std::fs::write(
                dir.join("fn.config.json"),
                serde_json::to_string_pretty(&config).unwrap_or_default() + "\n",
            )
        })
        .and_then(|_| std::fs::write(dir.join(file), code));
    match written {
        Ok(()) => {
            println!("Created {name}/fn.config.json and {name}/{file}.");
            println!("Run `fastfn dev .` and open http://127.0.0.1:8080/{name}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: cannot write {name}/: {e}");
            ExitCode::FAILURE
        }
    }
}

fn logs(port: Option<u16>, runtime: Option<String>, function: Option<String>, stream: &str, lines: usize) -> ExitCode {
    use std::io::{Read, Write};
    let port = port
        .or_else(|| std::env::var("FN_HOST_PORT").ok().and_then(|p| p.parse().ok()))
        .unwrap_or(crate::config::defaults::PORT);
    let enc = |s: &str| percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string();
    let mut query = format!("format=text&stream={}&lines={}", enc(stream), lines.min(2000));
    if let Some(r) = runtime {
        query.push_str(&format!("&runtime={}", enc(&r)));
    }
    if let Some(f) = function {
        query.push_str(&format!("&fn={}", enc(&f)));
    }
    let fetched = (|| -> std::io::Result<String> {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
        write!(s, "GET /_fn/logs?{query} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        Ok(out)
    })();
    match fetched {
        Ok(resp) => {
            let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
            if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
                eprintln!(
                    "error: the engine answered {}: {body}",
                    head.lines().next().unwrap_or("")
                );
                return ExitCode::FAILURE;
            }
            print!("{body}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: no FastFN engine answers on 127.0.0.1:{port} ({e}); start one with `fastfn dev`");
            ExitCode::FAILURE
        }
    }
}
