//! The route map: which URL and method reach which function, and how a request is matched
//! (contract §2.5, §2.6). Pure: no I/O. Built by [`crate::discovery`], swapped atomically by
//! the engine, read by the gateway on every request.

use crate::config::FnPolicy;
use crate::runtime::RuntimeKind;
use serde::Serialize;
use std::collections::BTreeSet;
use std::sync::Arc;

/// HTTP methods a route answers, as a small bitset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
pub struct Methods(pub u8);

impl Methods {
    pub const GET: Methods = Methods(1);
    pub const POST: Methods = Methods(2);
    pub const PUT: Methods = Methods(4);
    pub const PATCH: Methods = Methods(8);
    pub const DELETE: Methods = Methods(16);
    pub const HEAD: Methods = Methods(32);
    pub const OPTIONS: Methods = Methods(64);
    pub const ALL_NAMES: [(&'static str, Methods); 7] = [
        ("GET", Methods::GET),
        ("POST", Methods::POST),
        ("PUT", Methods::PUT),
        ("PATCH", Methods::PATCH),
        ("DELETE", Methods::DELETE),
        ("HEAD", Methods::HEAD),
        ("OPTIONS", Methods::OPTIONS),
    ];
}

/// Where a route came from; its rank is its priority (contract §2.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteSource {
    File = 1,
    RoutesJson = 2,
    Config = 3,
}

/// What runs when a route matches.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Target {
    pub runtime: RuntimeKind,
    /// Identity sent to the runtime as `fn`: root-relative file path for file routes, the
    /// function name for explicit functions.
    pub fn_name: String,
    /// Folder of an explicit function, relative to the root.
    pub fn_source_dir: Option<String>,
    /// `None` for the default version.
    pub version: Option<String>,
    /// Entry file, relative to the root, `/`-separated.
    pub entry: String,
    pub policy: FnPolicy,
    /// Explicit (folder) function: a method mismatch answers 405 with `Allow`.
    pub explicit: bool,
}

/// One public route.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Route {
    /// `/users/:id`, `/blog/:slug*`, `/hello/*` (the `*` arrives as param `wildcard`).
    pub pattern: String,
    pub methods: Methods,
    pub target: Arc<Target>,
    pub source: RouteSource,
    pub force_url: bool,
}

/// A route that lost to another runtime's route for the same URL and methods.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Shadowed {
    pub pattern: String,
    pub winner: Arc<Target>,
    pub loser: Arc<Target>,
    pub reason: String,
}

/// Outcome of matching one request.
#[derive(Debug)]
pub enum Resolution<'a> {
    Matched {
        route: &'a Route,
        /// URL-decoded params in pattern order.
        params: Vec<(String, String)>,
    },
    /// 409 `ambiguous function`.
    Ambiguous,
    /// 405 with `Allow` (explicit functions only).
    MethodNotAllowed {
        allow: String,
    },
    /// 421 `host not allowed`.
    HostNotAllowed,
    NotFound,
}

#[derive(Debug, Clone, Default)]
pub struct RouteMap {
    _todo: (),
}

impl RouteMap {
    /// Resolve priorities, runtime order (shadowing) and same-runtime conflicts.
    pub fn build(_candidates: Vec<Route>, _runtime_order: &[RuntimeKind]) -> RouteMap {
        todo!()
    }

    /// Match a request. `path` has no query string; `host` is the `Host` (or first
    /// `X-Forwarded-Host`) without port.
    pub fn resolve(&self, _method: &str, _path: &str, _host: Option<&str>) -> Resolution<'_> {
        todo!()
    }

    /// Every active route, sorted by pattern.
    pub fn routes(&self) -> &[Route] {
        todo!()
    }

    /// Patterns that answer 409.
    pub fn conflicts(&self) -> &BTreeSet<String> {
        todo!()
    }

    pub fn shadowed(&self) -> &[Shadowed] {
        todo!()
    }
}
