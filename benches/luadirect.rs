//! The in-process Lua runtime called directly (no HTTP, no gateway): the "direct" figure that
//! `benches/gateway.sh` compares the gateway's lua numbers with. Prints one JSON line like
//! `frameload`.
//!
//! `cargo bench --bench luadirect -- <functions-root> <entry> <concurrency> <seconds>`

use fastfn::config::FnPolicy;
use fastfn::gateway::event::{request_payload, EventParts};
use fastfn::routing::Target;
use fastfn::runtime::lua::LuaRuntime;
use fastfn::runtime::RuntimeKind;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    if args.len() < 4 {
        eprintln!("usage: luadirect <functions-root> <entry> <concurrency> <seconds>");
        std::process::exit(2);
    }
    let root = std::path::PathBuf::from(&args[0]).canonicalize().expect("root");
    let entry = args[1].clone();
    let concurrency: usize = args[2].parse().expect("concurrency");
    let seconds: f64 = args[3].parse().expect("seconds");
    let target = Target {
        runtime: RuntimeKind::Lua,
        fn_name: entry.clone(),
        fn_source_dir: None,
        version: None,
        entry,
        policy: FnPolicy::default(),
        explicit: false,
    };
    let mut headers = hyper::HeaderMap::new();
    headers.insert("host", "127.0.0.1:8080".parse().unwrap());
    let payload = request_payload(&EventParts {
        request_id: "req-1700000000000-1-000001",
        ts: 1_700_000_000_000,
        method: "GET",
        path: "/bench",
        query: None,
        headers: &headers,
        body: None,
        client_ip: "127.0.0.1",
        params: &[],
        target: &target,
        debug: false,
        worker_pid: 1,
        user: None,
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let lua = Arc::new(LuaRuntime::new(root));
    let (count, mut lat) = rt.block_on(async move {
        let deadline = Instant::now() + Duration::from_secs_f64(seconds);
        let mut tasks = Vec::new();
        for _ in 0..concurrency {
            let (lua, payload) = (lua.clone(), payload.clone());
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                while Instant::now() < deadline {
                    let t = Instant::now();
                    if lua.call(payload.clone(), Duration::from_secs(2)).await.is_ok() {
                        lat.push(t.elapsed().as_micros() as u32);
                    }
                }
                lat
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        (all.len(), all)
    });
    rt.shutdown_timeout(Duration::from_secs(1));
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    println!(
        "{{\"requests\":{count},\"errors\":0,\"rps\":{:.0},\"p50_us\":{},\"p99_us\":{}}}",
        count as f64 / seconds,
        pct(0.5),
        pct(0.99)
    );
}
