//! Engine integration tests: a real engine (in-process, port 0) or the real `fastfn` binary,
//! real Python and Node daemons on Unix sockets, real HTTP. One test binary, one module per
//! concern; fixtures live in `fixtures/` and are copied to a temp dir when a test writes.

mod admin;
mod assets;
mod cli;
mod compat;
mod compat_gw;
mod compat_rt;
mod compat_walk;
mod console;
mod deps_compat;
mod deps_state;
mod edge;
mod edge_proxy;
mod errors;
mod events;
mod handlers;
mod health;
mod inspect;
mod inspect_live;
mod inspect_logs;
mod inspect_stages;
mod jobs;
mod k8s;
mod k8s_pod;
mod lab;
mod lab2;
mod manage;
mod pool;
mod reload;
mod routing;
mod runtimes;
mod sandbox;
mod schedules;
mod secrets;
mod supervisor;
mod support;
