//! Discovery: the functions root on disk → candidate routes → [`RouteMap`] (contract §2).
//! Reads the filesystem but holds no state; the engine calls it at start and on every reload.

use crate::config::ConfigError;
use crate::routing::RouteMap;
use crate::runtime::RuntimeKind;
use serde::Serialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct DiscoveryOptions {
    /// Enabled runtimes in `FN_RUNTIMES` order.
    pub runtimes: Vec<RuntimeKind>,
    /// Global force-url (`FN_FORCE_URL`, `--force-url`, `force-url` in fastfn.json).
    pub force_url: bool,
    /// `FN_ZERO_CONFIG_IGNORE_DIRS`.
    pub extra_ignore_dirs: Vec<String>,
    /// `FN_NAMESPACE_DEPTH` (1..5, default 3).
    pub namespace_depth: usize,
}

/// Root `fn.config.json` `assets` block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AssetsConfig {
    /// Relative to the root, validated safe.
    pub directory: String,
    pub spa: bool,
    pub run_worker_first: bool,
}

#[derive(Debug, Clone)]
pub struct Discovery {
    pub routes: RouteMap,
    pub assets: Option<AssetsConfig>,
    /// Non-fatal problems (ignored files, shadowed routes…), one readable line each.
    pub warnings: Vec<String>,
    /// Config errors; the folders they name published nothing.
    pub errors: Vec<ConfigError>,
    /// Files looked at, for reload reports.
    pub files_scanned: usize,
}

pub fn discover(_root: &Path, _opts: &DiscoveryOptions) -> Discovery {
    let _: PathBuf;
    todo!()
}
