//! FastFN engine: filesystem discovery → route map → HTTP gateway → runtime daemons on Unix
//! sockets, supervised and health-checked. No GUI dependency: the CLI and the desktop app both
//! embed this library.

pub mod config;
pub mod discovery;
pub mod routing;
pub mod runtime;
