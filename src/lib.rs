//! FastFN engine: filesystem discovery → route map → HTTP gateway → runtime daemons on Unix
//! sockets, supervised and health-checked. No GUI dependency: the CLI and the desktop app both
//! embed this library.

pub mod admin;
pub mod assets;
pub mod clock;
pub mod config;
pub mod console;
pub mod deps;
pub mod discovery;
pub mod engine;
pub mod events;
pub mod gateway;
pub mod host;
pub mod inspect;
pub mod invoke;
pub mod isolation;
pub mod jobs;
pub mod lab;
pub mod landing;
pub mod logs;
pub mod manage;
pub mod pool;
pub mod process;
pub mod proxy;
pub mod rescue;
pub mod routing;
pub mod runtime;
pub mod scheduler;
pub mod secrets;
pub mod supervisor;

pub use engine::{Engine, StartError};
pub mod cli;
pub mod doctor;
pub mod k8s;
pub mod usage;
pub mod watch;
pub mod wrap;
