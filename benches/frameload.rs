//! Frame-protocol load generator: drives one daemon socket directly, with the engine's own
//! client but no HTTP, with `c` concurrent callers for `d` seconds, and prints requests/s and
//! p50/p99 latency as one JSON line. `FRAMELOAD_PROTOCOL=v2` (default): persistent multiplexed
//! connections (`runtime::mux`, 4 per socket, as the gateway keeps them); `v1`: connect, one
//! request frame, one reply frame, close (the contract's protocol).
//!
//! `cargo bench --bench frameload -- <socket> <runtime> <entry> <concurrency> <seconds>`

use fastfn::runtime::mux::Mux;
use fastfn::runtime::{client, RuntimeKind};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "support/mod.rs"]
mod support;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    if args.len() < 5 {
        eprintln!("usage: frameload <socket> <runtime> <entry> <concurrency> <seconds>");
        std::process::exit(2);
    }
    let socket = PathBuf::from(&args[0]);
    let runtime = RuntimeKind::parse(&args[1]).expect("runtime");
    let entry = args[2].clone();
    let concurrency: usize = args[3].parse().expect("concurrency");
    let seconds: f64 = args[4].parse().expect("seconds");

    // The same payload the gateway would send for `GET /<name>` from wrk.
    let payload = Arc::new(support::bench_payload(runtime, &entry));
    let v2 = std::env::var("FRAMELOAD_PROTOCOL").map_or(true, |p| p != "v1");
    let mux = Arc::new(Mux::new(socket.clone(), 4, 10 << 20, 2 << 20));

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (errors, lat) = rt.block_on(async move {
        let deadline = Instant::now() + Duration::from_secs_f64(seconds);
        let mut tasks = Vec::new();
        for _ in 0..concurrency {
            let socket = socket.clone();
            let payload = payload.clone();
            let mux = mux.clone();
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::with_capacity(200_000);
                let mut errors = 0u64;
                let whole = || payload.to_vec();
                while Instant::now() < deadline {
                    let t = Instant::now();
                    let ok = if v2 {
                        mux.call(&payload, &[], &whole).await.is_ok()
                    } else {
                        client::exchange(&socket, &payload, 10 << 20).await.is_ok()
                    };
                    if ok {
                        lat.push(t.elapsed().as_micros() as u32);
                    } else {
                        errors += 1;
                    }
                }
                (lat, errors)
            }));
        }
        let mut all = Vec::new();
        let mut errors = 0;
        for t in tasks {
            let (l, e) = t.await.unwrap();
            all.extend(l);
            errors += e;
        }
        (errors, all)
    });
    support::report(lat, errors, seconds);
}
