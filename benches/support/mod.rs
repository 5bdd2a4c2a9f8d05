//! Shared by the direct-call benches (`frameload`, `luadirect`): the request payload the gateway
//! would send for `GET /bench` from wrk, and the one-line JSON report.

use fastfn::config::FnPolicy;
use fastfn::invoke::event::{request_payload, EventParts};
use fastfn::routing::Target;
use fastfn::runtime::RuntimeKind;

pub fn bench_payload(runtime: RuntimeKind, entry: &str) -> Vec<u8> {
    let target = Target {
        runtime,
        fn_name: entry.to_string(),
        fn_source_dir: None,
        version: None,
        entry: entry.to_string(),
        policy: FnPolicy::default(),
        explicit: false,
    };
    let mut headers = hyper::HeaderMap::new();
    headers.insert("host", hyper::header::HeaderValue::from_static("127.0.0.1:8080"));
    request_payload(&EventParts {
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
        trigger: None,
        secrets: None,
    })
}

/// Print requests/s and p50/p99 (µs) as one JSON line; `lat` holds one latency per success.
pub fn report(mut lat: Vec<u32>, errors: u64, seconds: f64) {
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    println!(
        "{{\"requests\":{},\"errors\":{errors},\"rps\":{:.0},\"p50_us\":{},\"p99_us\":{}}}",
        lat.len(),
        lat.len() as f64 / seconds,
        pct(0.5),
        pct(0.99)
    );
}
