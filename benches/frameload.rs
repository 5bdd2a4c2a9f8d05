//! Frame-protocol load generator: drives one daemon socket directly, the way the gateway does
//! (connect, one request frame, one reply frame, close), with `c` concurrent clients for `d`
//! seconds, and prints requests/s and p50/p99 latency as one JSON line.
//!
//! `cargo bench --bench frameload -- <socket> <runtime> <entry> <concurrency> <seconds>`

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
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::with_capacity(200_000);
                let mut errors = 0u64;
                while Instant::now() < deadline {
                    let t = Instant::now();
                    match client::exchange(&socket, &payload, 10 << 20).await {
                        Ok(_) => lat.push(t.elapsed().as_micros() as u32),
                        Err(_) => errors += 1,
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
