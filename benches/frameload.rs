//! Frame-protocol load generator: drives one daemon socket directly, the way the gateway does
//! (connect, one request frame, one reply frame, close), with `c` concurrent clients for `d`
//! seconds, and prints requests/s and p50/p99 latency as one JSON line.
//!
//! `cargo bench --bench frameload -- <socket> <runtime> <entry> <concurrency> <seconds>`

use fastfn::config::FnPolicy;
use fastfn::gateway::event::{request_payload, EventParts};
use fastfn::routing::Target;
use fastfn::runtime::{client, RuntimeKind};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

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
    let target = Target {
        runtime,
        fn_name: entry.clone(),
        fn_source_dir: None,
        version: None,
        entry: entry.clone(),
        policy: FnPolicy::default(),
        explicit: false,
    };
    let mut headers = hyper::HeaderMap::new();
    headers.insert("host", "127.0.0.1:8080".parse().unwrap());
    let payload = Arc::new(request_payload(&EventParts {
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
    }));

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (count, errors, mut lat) = rt.block_on(async move {
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
        (all.len(), errors, all)
    });
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    println!(
        "{{\"requests\":{count},\"errors\":{errors},\"rps\":{:.0},\"p50_us\":{},\"p99_us\":{}}}",
        count as f64 / seconds,
        pct(0.50),
        pct(0.99)
    );
}
