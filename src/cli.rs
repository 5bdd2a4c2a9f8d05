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
    disable_version_flag = true,
    about = "Run a folder of functions as an HTTP API",
    long_about = "FastFN turns a folder of function files into an HTTP API.\n\n\
        Each file is a route: `hello.py` answers GET /hello, `users/[id].js` answers GET /users/:id,\n\
        `post.orders.py` answers POST /orders. Python and Node handlers run in daemons behind Unix\n\
        sockets; the gateway listens on 127.0.0.1:8080.\n\n\
        Start with:  fastfn init hello -t python && fastfn dev .",
    after_help = "Environment: FN_HOST_PORT, FN_RUNTIMES (e.g. python,node), FN_RUNTIME_DAEMONS (node=3,python=2),\n\
        FN_PYTHON_BIN, FN_NODE_BIN, FN_HEALTH_INTERVAL, FN_SOCKET_BASE_DIR, FN_HOT_RELOAD, FN_FORCE_URL,\n\
        FN_DEFAULT_TIMEOUT_MS, FN_DEFAULT_MAX_CONCURRENCY, FN_DEFAULT_MAX_BODY_BYTES, FN_PUBLIC_BASE_URL,\n\
        FN_RUNTIME_LOG_FILE, FN_LOG_DIR, FN_LOG_FORMAT (json: one JSON object per line on stdout)."
)]
pub struct Cli {
    /// Project config file to read instead of ./fastfn.json
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Accepted for FastFN compatibility: this build always runs natively
    #[arg(long, global = true)]
    pub native: bool,
    /// Print the version (`FastFN <version>`)
    #[arg(long, short = 'V')]
    pub version: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
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
        /// Docker only in the original FastFN: refused here (native-only build)
        #[arg(long, hide = true)]
        build: bool,
        /// Docker only in the original FastFN: refused here (native-only build)
        #[arg(long, hide = true)]
        dry_run: bool,
    },
    /// Serve a project with production defaults (hot reload on unless FN_HOT_RELOAD=0 or
    /// `"hot-reload": false`)
    Run {
        #[command(flatten)]
        serve: ServeArgs,
        /// Force hot reload on (over FN_HOT_RELOAD and fastfn.json)
        #[arg(long)]
        hot_reload: bool,
    },
    /// Create a function folder with a config and a handler
    Init {
        /// Function name (also the folder created)
        name: String,
        /// Runtime of the handler
        #[arg(short = 't', long = "template", value_parser = ["node", "python", "php", "lua", "rust"], default_value = "node")]
        runtime: String,
    },
    /// Check host tools, configuration, port and discovery (exit 1 when a check fails)
    #[command(visible_alias = "check", args_conflicts_with_subcommands = true)]
    Doctor {
        /// Project or functions folder
        dir: Option<PathBuf>,
        /// Machine-readable output (FastFN's schema)
        #[arg(long, global = true)]
        json: bool,
        /// Apply safe fixes: create a starter fastfn.json when there is none
        #[arg(long)]
        fix: bool,
        #[command(subcommand)]
        sub: Option<DoctorCommand>,
    },
    /// Print (and follow) the logs of a running engine: error, access and runtime
    Logs {
        /// Which log: error, access, runtime or all
        #[arg(long, default_value = "all", value_parser = ["error", "access", "runtime", "all"])]
        file: String,
        /// How many recent lines to show first (at most 2000)
        #[arg(long, short = 'n', default_value_t = 200)]
        lines: usize,
        /// Print the current lines and exit
        #[arg(long)]
        no_follow: bool,
        /// Docker only in the original FastFN: refused here (native-only build)
        #[arg(long, hide = true)]
        docker: bool,
        /// Port of the running engine [env: FN_HOST_PORT] [default: 8080]
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
    },
    /// Print the Swagger UI URL of a running engine and open it in a browser
    Docs {
        /// Port of the running engine [env: FN_HOST_PORT] [default: 8080]
        #[arg(long, short)]
        port: Option<u16>,
    },
    /// Send load to a route of a running engine (the engine sends it to itself) and print
    /// requests/s, p50/p95/p99 and the status mix
    Bench {
        /// The route's path, e.g. /hello
        route: String,
        /// Requests in flight at once
        #[arg(short = 'c', long, default_value_t = 16)]
        concurrency: usize,
        /// Requests in all (default 1000 unless --duration is given)
        #[arg(short = 'n', long)]
        requests: Option<u64>,
        /// Run for this many seconds instead of a count
        #[arg(short = 'd', long)]
        duration: Option<f64>,
        /// Requests per second in all (default: as fast as answers come)
        #[arg(long)]
        rate: Option<f64>,
        /// HTTP method
        #[arg(short = 'X', long, default_value = "GET")]
        method: String,
        /// Port of the running engine [env: FN_HOST_PORT] [default: 8080]
        #[arg(long, short)]
        port: Option<u16>,
    },
    /// Run the project's saved tests (.fastfn/tests/*.json) against an engine started on
    /// DIR; exits 1 when one fails (for CI)
    Test {
        /// Project or functions folder (default: the current folder)
        dir: Option<PathBuf>,
    },
    /// Print the version
    Version,
    /// Write the project out for another platform (Kubernetes: `fastfn export k8s --out DIR`)
    Export {
        #[command(subcommand)]
        target: ExportTarget,
    },
    /// Install every function's dependencies now and exit (an image build step; exit 1 when
    /// one fails)
    Prepare {
        /// Project or functions folder
        dir: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum ExportTarget {
    /// A Containerfile, Kubernetes manifests and a kustomization (docs/deploy.md)
    K8s {
        /// Project or functions folder (default: the current folder)
        dir: Option<PathBuf>,
        /// Folder to write (a build context: the project copy, the binary, the manifests)
        #[arg(long, short)]
        out: PathBuf,
        /// App name for the Kubernetes objects [default: the project folder's name]
        #[arg(long)]
        name: Option<String>,
        /// Image reference in the manifests [default: <name>:latest]
        #[arg(long)]
        image: Option<String>,
        /// Replace the files of an earlier export in a non-empty --out folder
        #[arg(long)]
        force: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum DoctorCommand {
    /// Check domains: format, DNS, expected target, HTTP→HTTPS redirect, ACME path
    Domains {
        /// Domain to check (repeat for several) [default: `domains` in fastfn.json]
        #[arg(long = "domain")]
        domains: Vec<String>,
        /// Expected DNS target (an IP, or a host resolving to the same addresses)
        #[arg(long)]
        expected_target: Option<String>,
        /// Require HTTP to redirect to HTTPS
        #[arg(long, default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
        enforce_https: bool,
    },
}

/// The one line for the original's Docker-only flags.
const NATIVE_ONLY: &str =
    "error: this build is native-only: --build, --dry-run and --docker need the original FastFN's Docker mode";

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("FN_LOG").unwrap_or_else(|_| "fastfn=info".into());
    // Lines written while a request is served carry its id and are kept with its record
    // (`inspect::logs`).
    use crate::inspect::logs::{Capture, JsonLine, Tagged};
    use tracing_subscriber::fmt::format;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    if json_logs() {
        tracing_subscriber::fmt()
            .event_format(JsonLine)
            .with_env_filter(filter)
            .with_writer(std::io::stdout)
            .finish()
            .with(Capture)
            .init();
    } else {
        tracing_subscriber::fmt()
            .event_format(Tagged::text(format().with_target(false).without_time()))
            .with_env_filter(filter)
            .finish()
            .with(Capture)
            .init();
    }
    if cli.version {
        println!("FastFN {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    let Some(command) = cli.command else {
        let _ = <Cli as clap::CommandFactory>::command().print_help();
        return ExitCode::from(2);
    };
    if cli.native {
        eprintln!("--native: FastFN Desktop always runs natively (no Docker); nothing to switch.");
    }
    let config = cli.config;
    match command {
        Command::Version => {
            println!("FastFN {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Command::Init { name, runtime } => init(&name, &runtime),
        Command::Test { dir } => crate::inspect::saved::cli(dir, config),
        Command::Export {
            target:
                ExportTarget::K8s {
                    dir,
                    out,
                    name,
                    image,
                    force,
                },
        } => crate::k8s::cli_export(crate::k8s::Options {
            dir,
            config_file: config,
            out,
            name,
            image,
            binary: None,
            force,
        }),
        Command::Prepare { dir } => crate::k8s::cli_prepare(dir, config),
        Command::Doctor {
            sub:
                Some(DoctorCommand::Domains {
                    domains,
                    expected_target,
                    enforce_https,
                }),
            json,
            ..
        } => crate::doctor::run_domains(
            &domains,
            expected_target.as_deref(),
            enforce_https,
            config.as_deref(),
            json,
        ),
        Command::Doctor { dir, json, fix, .. } => crate::doctor::run(dir, config, json, fix),
        Command::Logs {
            file,
            lines,
            no_follow,
            docker,
            port,
            runtime,
            function,
            stream,
        } => {
            if docker {
                eprintln!("{NATIVE_ONLY}");
                return ExitCode::from(2);
            }
            let q = LogQuery {
                runtime,
                function,
                stream,
                lines: lines.clamp(1, 2000),
            };
            logs(engine_port(port), &file, &q, !no_follow)
        }
        Command::Docs { port } => docs(engine_port(port)),
        Command::Bench {
            route,
            concurrency,
            requests,
            duration,
            rate,
            method,
            port,
        } => {
            let spec = crate::lab::load::LoadSpec {
                path: route,
                method: Some(method),
                count: requests,
                duration_ms: duration.map(|s| (s * 1000.0) as u64),
                concurrency,
                rate,
                body: None,
            };
            crate::lab::bench::run(engine_port(port), &spec)
        }
        Command::Dev {
            serve,
            no_hot_reload,
            build,
            dry_run,
        } => {
            if build || dry_run {
                eprintln!("{NATIVE_ONLY}");
                return ExitCode::from(2);
            }
            run_engine(serve, config, no_hot_reload.then_some(false))
        }
        // As the original's `run`: flag > FN_HOT_RELOAD > `hot-reload` in fastfn.json > on.
        Command::Run { serve, hot_reload } => run_engine(serve, config, hot_reload.then_some(true)),
    }
}

fn engine_port(port: Option<u16>) -> u16 {
    port.or_else(|| std::env::var("FN_HOST_PORT").ok().and_then(|p| p.trim().parse().ok()))
        .unwrap_or(crate::config::defaults::PORT)
}

fn overrides(serve: &ServeArgs, config: Option<PathBuf>, hot_reload: Option<bool>) -> Overrides {
    Overrides {
        dir: serve.dir.clone(),
        host: serve.host.clone(),
        port: serve.port,
        force_url: serve.force_url.then_some(true),
        hot_reload,
        config_file: config,
    }
}

fn run_engine(serve: ServeArgs, config: Option<PathBuf>, hot_reload: Option<bool>) -> ExitCode {
    let settings = match Settings::from_env(&overrides(&serve, config, hot_reload)) {
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
        let stop = shutdown_signal();
        let json = json_logs();
        if json {
            json_line("info", "serving", summary_json(&engine));
        } else {
            print_summary(&engine);
        }
        let mut events = engine.events().subscribe();
        let book = engine.clone();
        let printer = tokio::spawn(async move {
            while let Ok(ev) = events.recv().await {
                if json {
                    json_line(event_level(&ev), "event", serde_json::json!({ "event": ev }));
                } else {
                    print_event(&ev);
                }
                if let Some(line) = error_line(&ev) {
                    book.logs().error(&line);
                }
            }
        });
        stop.await;
        if json {
            json_line("info", "stopping", serde_json::json!({}));
        } else {
            eprintln!("stopping…");
        }
        engine.stop().await;
        if json {
            json_line("info", "stopped", serde_json::json!({}));
        }
        printer.abort();
        ExitCode::SUCCESS
    });
    // A Lua call stuck in a long C function holds a blocking thread: do not wait for it.
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    code
}

/// `FN_LOG_FORMAT=json`: one JSON object per line on stdout (summary, engine events, the
/// engine's own messages) for log collectors; anything else keeps the human lines.
fn json_logs() -> bool {
    std::env::var("FN_LOG_FORMAT").is_ok_and(|v| v.trim().eq_ignore_ascii_case("json"))
}

/// One JSON log line: `ts` (Unix seconds), `level`, `msg`, then `fields`' own keys.
fn json_line(level: &str, msg: &str, fields: serde_json::Value) {
    let mut line = serde_json::json!({ "ts": crate::clock::epoch_secs(), "level": level, "msg": msg });
    if let (Some(l), serde_json::Value::Object(f)) = (line.as_object_mut(), fields) {
        l.extend(f);
    }
    println!("{line}");
}

fn event_level(ev: &EngineEvent) -> &'static str {
    match ev {
        EngineEvent::DaemonExited { .. } | EngineEvent::DaemonFailed { .. } => "warn",
        EngineEvent::Reload { ok: false, .. } | EngineEvent::DepsFailed { .. } => "error",
        EngineEvent::SocketHealth { up: false, .. } => "warn",
        _ => "info",
    }
}

/// The startup summary as data.
fn summary_json(engine: &Engine) -> serde_json::Value {
    let s = engine.settings();
    let served = engine.served();
    let routes: Vec<serde_json::Value> = served
        .discovery
        .routes
        .routes()
        .iter()
        .map(|r| {
            serde_json::json!({
                "methods": methods_text(r.methods),
                "pattern": r.pattern,
                "runtime": r.target.runtime.name(),
                "entry": r.target.entry,
            })
        })
        .collect();
    let missing: std::collections::BTreeMap<String, String> = engine
        .missing_runtimes()
        .iter()
        .map(|(rt, why)| (rt.to_string(), why.to_string()))
        .collect();
    serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "functions_root": s.functions_root,
        "addr": engine.addr().to_string(),
        "routes": routes,
        "runtimes_missing": missing,
        "warnings": served.discovery.warnings,
        "errors": served.discovery.errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
    })
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

/// Ctrl+C or SIGTERM. The handlers are installed when this is called (before the summary is
/// printed), so a signal sent as soon as the engine says it is ready is never the default
/// "terminate now".
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let both = (signal(SignalKind::interrupt()), signal(SignalKind::terminate()));
    async move {
        match both {
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
        if !engine.0.runtime_needed(*rt) {
            // Daemons start with the runtime's first route (docs/architecture.md).
            println!("  {rt}: not needed (no routes yet; starts with the first)");
            continue;
        }
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

/// Engine events that belong in the error log (`fastfn logs --file error`).
fn error_line(ev: &EngineEvent) -> Option<String> {
    match ev {
        EngineEvent::DaemonExited {
            runtime, index, status, ..
        } => Some(format!("{runtime} daemon {index} exited ({status})")),
        EngineEvent::DaemonFailed {
            runtime,
            index,
            message,
            ..
        } => Some(format!("{runtime} daemon {index}: {message}")),
        EngineEvent::Reload { ok: false, error, .. } => Some(format!(
            "reload kept the last good routes: {}",
            error.as_deref().unwrap_or("error")
        )),
        EngineEvent::DepsFailed { function, .. } => Some(format!("{function}: dependency install failed")),
        EngineEvent::BuildFinished {
            function,
            ok: false,
            message,
            ..
        } => Some(format!(
            "{function}: build failed: {}",
            message.lines().next().unwrap_or("")
        )),
        _ => None,
    }
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
            let reason = crate::deps::failure_reason(output);
            eprintln!("{function}: dependency install failed: {reason}");
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

/// `fn.config.json` of `fastfn init`, keys in the original's order; node and python also get
/// the limits (as the original writes them).
#[derive(serde::Serialize)]
struct InitConfig<'a> {
    runtime: &'a str,
    name: &'a str,
    version: &'a str,
    entrypoint: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    timeout_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_concurrency: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_body_bytes: Option<u64>,
    /// Only from the console's "New function" (its methods and routes).
    #[serde(skip_serializing_if = "Option::is_none")]
    invoke: Option<serde_json::Value>,
}

/// Handler file and text per template: `handler(event)` answering with a greeting, the
/// version, the query and the params (what the original's templates show).
fn template(runtime: &str) -> (&'static str, &'static str) {
    match runtime {
        "node" => (
            "handler.js",
            r#"/**
 * GET /<name> → a JSON greeting with the query and params it got. `event` has method, path,
 * query, params, headers, body.
 * @param {Record<string, any>} event
 */
module.exports.handler = async (event) => {
  const query = (event && event.query) || {};
  const params = (event && event.params) || {};
  return {
    status: 200,
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({
      message: "Hello from FastFN Node!",
      version: (event && event.version) || "default",
      query,
      params,
      wildcard: typeof params.wildcard === "string" ? params.wildcard : "",
    }),
  };
};
"#,
        ),
        "python" => (
            "handler.py",
            r#"# GET /<name>?name=you -> a JSON greeting. `event` has method, path, query, params, headers, body.
def handler(event):
    query = event.get("query") or {}
    params = event.get("params") or {}
    return {
        "message": f"Hello, {query.get('name', 'World')} from FastFN Python!",
        "version": str(event.get("version") or "default"),
        "query": query,
        "params": params,
        "wildcard": params.get("wildcard", ""),
    }
"#,
        ),
        "php" => (
            "handler.php",
            r#"<?php
// GET /<name> -> a JSON greeting (an array is answered as JSON) with the event it got.
function handler(array $event): array {
    return [
        'message' => 'Hello from FastFN PHP!',
        'input' => $event,
    ];
}
"#,
        ),
        "lua" => (
            "handler.lua",
            r#"-- GET /<name>?name=you -> a JSON greeting (a table is answered as JSON).
return function(event)
  local query = event.query or {}
  local params = event.params or {}
  return {
    message = "Hello, " .. tostring(query.name or "World") .. " from FastFN Lua!",
    version = event.version or "default",
    query = query,
    params = params,
    wildcard = params.wildcard or "",
  }
end
"#,
        ),
        "rust" => (
            "handler.rs",
            r#"use serde_json::{json, Value};

// GET /<name> -> a JSON greeting with the event it got.
pub fn handler(event: Value) -> Value {
    json!({
        "status": 200,
        "headers": {"Content-Type": "application/json"},
        "body": json!({"message": "Hello from FastFN Rust!", "input": event}).to_string()
    })
}
"#,
        ),
        // Only the console's "New function" asks for go (the original's console has a go
        // template; its `init` does not).
        "go" => (
            "handler.go",
            r#"package main

import "encoding/json"

// GET /<name> -> a JSON answer with the query it got.
func handler(event map[string]interface{}) map[string]interface{} {
	query, _ := event["query"].(map[string]interface{})
	body, _ := json.Marshal(map[string]interface{}{"message": "Hello from FastFN Go!", "query": query})
	return map[string]interface{}{
		"status":  200,
		"headers": map[string]interface{}{"Content-Type": "application/json"},
		"body":    string(body),
	}
}
"#,
        ),
        _ => unreachable!("clap restricts the template"),
    }
}

/// The `fastfn init` template of a runtime (entry file name, text), for the console's "New
/// function"; `None` for a runtime `init` has no template for.
pub(crate) fn template_for(runtime: &str) -> Option<(&'static str, &'static str)> {
    matches!(runtime, "node" | "python" | "php" | "lua" | "rust" | "go").then(|| template(runtime))
}

/// The `fn.config.json` text `fastfn init` writes for a function (keys in the original's
/// order), with an `invoke` block last when the console gives one.
pub(crate) fn init_config(runtime: &str, name: &str, entry: &str, invoke: Option<serde_json::Value>) -> String {
    let limits = matches!(runtime, "node" | "python");
    let config = InitConfig {
        runtime,
        name,
        version: "1.0.0",
        entrypoint: entry,
        timeout_ms: limits.then_some(crate::config::defaults::TIMEOUT_MS),
        max_concurrency: limits.then_some(crate::config::defaults::MAX_CONCURRENCY),
        max_body_bytes: limits.then_some(crate::config::defaults::MAX_BODY_BYTES),
        invoke,
    };
    serde_json::to_string_pretty(&config).unwrap_or_default() + "\n"
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
    let (file, code) = template(runtime);
    let config = init_config(runtime, name, file, None);
    let mut files = vec![("fn.config.json", config), (file, code.to_string())];
    if runtime == "python" {
        files.push(("requirements.txt", "# Add your dependencies here\n".to_string()));
    }
    let written = std::fs::create_dir_all(dir)
        .and_then(|_| files.iter().try_for_each(|(f, text)| std::fs::write(dir.join(f), text)));
    match written {
        Ok(()) => {
            println!("Created function '{name}' in {name} (runtime: {runtime})");
            println!("Files created:");
            for (f, _) in &files {
                println!(" - {f}");
            }
            println!("\nRun 'fastfn dev' in the project root to auto-discover this function.");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: cannot write {name}/: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Filters of `fastfn logs`.
struct LogQuery {
    runtime: Option<String>,
    function: Option<String>,
    stream: String,
    lines: usize,
}

/// One `GET` to the engine on 127.0.0.1: the status line and the body.
fn http_get(port: u16, target: &str) -> std::io::Result<(String, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    write!(s, "GET {target} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    Ok((head.lines().next().unwrap_or("").to_string(), body.to_string()))
}

fn is_ok_status(status_line: &str) -> bool {
    status_line.split_whitespace().nth(1) == Some("200")
}

fn no_engine(port: u16, e: &std::io::Error) -> ExitCode {
    eprintln!("error: no FastFN engine answers on 127.0.0.1:{port} ({e}); start one with `fastfn dev`");
    ExitCode::FAILURE
}

/// `fastfn logs`: the last lines of each asked log, then (unless `--no-follow`) new lines as
/// they come, read from `/_fn/logs` (cursor `next` → `since`). With `--file all` each log's
/// lines come under a `==> <log> <==` header, as `tail` prints several files.
fn logs(port: u16, file: &str, q: &LogQuery, follow: bool) -> ExitCode {
    let enc = |s: &str| percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string();
    let files: Vec<&str> = match file {
        "all" => vec!["error", "access", "runtime"],
        one => vec![one],
    };
    let mut filters = format!("&stream={}", enc(&q.stream));
    if let Some(r) = &q.runtime {
        filters.push_str(&format!("&runtime={}", enc(r)));
    }
    if let Some(f) = &q.function {
        filters.push_str(&format!("&fn={}", enc(f)));
    }
    let mut cursors = vec![0u64; files.len()];
    let mut last_header: Option<usize> = None;
    let mut first = true;
    loop {
        for (i, name) in files.iter().enumerate() {
            let target = format!(
                "/_fn/logs?file={name}&format=json&lines={}&since={}{filters}",
                if first { q.lines } else { 2000 },
                cursors[i]
            );
            let (status, body) = match http_get(port, &target) {
                Ok(r) => r,
                Err(e) => return no_engine(port, &e),
            };
            if !is_ok_status(&status) {
                eprintln!("error: the engine answered {status}: {body}");
                return ExitCode::FAILURE;
            }
            let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            cursors[i] = v["next"].as_u64().unwrap_or(cursors[i]);
            let data = v["data"].as_array().cloned().unwrap_or_default();
            if files.len() > 1 && (first || (!data.is_empty() && last_header != Some(i))) {
                if !first || i > 0 {
                    println!();
                }
                println!("==> {name} <==");
                last_header = Some(i);
            }
            for line in data {
                println!("{}", line.as_str().unwrap_or_default());
            }
        }
        if !follow {
            return ExitCode::SUCCESS;
        }
        if first {
            eprintln!("Following the logs of 127.0.0.1:{port} ({file}); Ctrl+C to stop.");
        }
        first = false;
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

/// `fastfn docs`: the Swagger UI URL of the engine on `port`, opened with `$BROWSER`, else
/// `xdg-open` / `open` when there is one (the URL is printed either way).
fn docs(port: u16) -> ExitCode {
    let url = format!("http://127.0.0.1:{port}/_fn/docs");
    match http_get(port, "/_fn/docs") {
        Ok((status, _)) if is_ok_status(&status) => {}
        Ok((status, body)) => {
            eprintln!("error: {url} answered {status}: {}", body.trim());
            return ExitCode::FAILURE;
        }
        Err(e) => return no_engine(port, &e),
    }
    println!("Opening {url}...");
    let opener = std::env::var("BROWSER")
        .ok()
        .filter(|b| !b.trim().is_empty())
        .or_else(|| {
            ["xdg-open", "open"]
                .into_iter()
                .find(|b| which::which(b).is_ok())
                .map(str::to_string)
        });
    match opener {
        Some(b) => {
            if let Err(e) = std::process::Command::new(&b)
                .arg(&url)
                .stdin(std::process::Stdio::null())
                .spawn()
            {
                eprintln!("could not start {b} ({e}); open the URL above yourself");
            }
        }
        None => eprintln!("no browser opener found (set BROWSER); open the URL above yourself"),
    }
    ExitCode::SUCCESS
}
