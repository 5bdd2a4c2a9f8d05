//! The in-process Lua runtime called directly (no HTTP, no gateway): the "direct" figure that
//! `benches/gateway.sh` compares the gateway's lua numbers with. Prints one JSON line like
//! `frameload`.
//!
//! `cargo bench --bench luadirect -- <functions-root> <entry> <concurrency> <seconds>`

use fastfn::runtime::lua::LuaRuntime;
use fastfn::runtime::RuntimeKind;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "support/mod.rs"]
mod support;

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
    let payload = support::bench_payload(RuntimeKind::Lua, &entry);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let lua = Arc::new(LuaRuntime::new(root));
    let lat = rt.block_on(async move {
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
        all
    });
    rt.shutdown_timeout(Duration::from_secs(1));
    support::report(lat, 0, seconds);
}
