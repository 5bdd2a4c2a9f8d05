//! The route map: which URL and method reach which function, and how a request is matched
//! (contract §2.5, §2.6). Pure: no I/O. Built by [`crate::discovery`], swapped atomically by
//! the engine, read by the gateway on every request.

use crate::config::FnPolicy;
use crate::runtime::RuntimeKind;
use percent_encoding::percent_decode_str;
use serde::Serialize;
use std::borrow::Cow;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::ops::BitOr;
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

    /// Case-insensitive method name → bit; `None` for anything else.
    pub fn parse(name: &str) -> Option<Methods> {
        let name = name.trim();
        Methods::ALL_NAMES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, m)| *m)
    }

    /// A request's method → bit. Exact: HTTP method names are case-sensitive (RFC 9110 §9.1),
    /// so `get` is an unknown method, not GET.
    pub fn of_request(name: &str) -> Option<Methods> {
        Methods::ALL_NAMES.iter().find(|(n, _)| *n == name).map(|(_, m)| *m)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// True when every method of `other` is in `self` (and `other` is not empty).
    pub fn contains(self, other: Methods) -> bool {
        !other.is_empty() && self.0 & other.0 == other.0
    }

    pub fn intersection(self, other: Methods) -> Methods {
        Methods(self.0 & other.0)
    }

    /// Method names in canonical order.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        Methods::ALL_NAMES
            .iter()
            .filter(move |(_, m)| self.contains(*m))
            .map(|(n, _)| *n)
    }
}

impl BitOr for Methods {
    type Output = Methods;
    fn bitor(self, rhs: Methods) -> Methods {
        Methods(self.0 | rhs.0)
    }
}

/// `GET, POST`: the form of an `Allow` header.
impl fmt::Display for Methods {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, name) in self.names().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(name)?;
        }
        Ok(())
    }
}

/// Where a route came from; its rank is its priority (contract §2.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteSource {
    File = 1,
    RoutesJson = 2,
    Config = 3,
}

impl RouteSource {
    fn label(self) -> &'static str {
        match self {
            RouteSource::File => "file route",
            RouteSource::RoutesJson => "fn.routes.json route",
            RouteSource::Config => "fn.config.json route",
        }
    }
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
    /// Explicit (folder) function: a method mismatch resolves to
    /// [`Resolution::MethodNotAllowed`] (405 only at its named target).
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
    /// The path is an explicit function's, but not for this method. `allow` lists the methods
    /// it takes (the `Allow` form). The gateway answers 404, as the original does, except at
    /// the named target `/<name>@<version>` ([`is_named_target`]), which answers 405 with
    /// `Allow`; `/_fn/resolve` uses the reason to explain either.
    MethodNotAllowed {
        allow: String,
    },
    /// 421 `host not allowed`.
    HostNotAllowed,
    NotFound,
}

/// `/<name>@<version>` and nothing more (name: letters, digits, `_`, `-`; version: also `.`):
/// the one form the original answers with 405 and `Allow` on a method mismatch (its named
/// target lookup); everywhere else a method mismatch is a 404.
pub fn is_named_target(path: &str) -> bool {
    let Some((name, version)) = path.strip_prefix('/').and_then(|p| p.split_once('@')) else {
        return false;
    };
    let name_ok = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
    !name.is_empty()
        && !version.is_empty()
        && name.bytes().all(name_ok)
        && version.bytes().all(|b| name_ok(b) || b == b'.')
}

/// One compiled pattern segment.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Static(String),
    /// `:name`: exactly one segment.
    Param(String),
    /// `:name*` or `*` (named `wildcard`): one or more segments, the rest of the path.
    CatchAll(String),
}

fn compile(pattern: &str) -> Vec<Segment> {
    pattern
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            if s == "*" {
                Segment::CatchAll("wildcard".to_string())
            } else if let Some(name) = s.strip_prefix(':') {
                match name.strip_suffix('*') {
                    Some(name) => Segment::CatchAll(name.to_string()),
                    None => Segment::Param(name.to_string()),
                }
            } else {
                Segment::Static(s.to_string())
            }
        })
        .collect()
}

/// Checks the shape of a route pattern: starts with `/`, no `..`, params named, a catch-all
/// only as the last segment. Discovery calls this before offering a route.
pub fn validate_pattern(pattern: &str) -> Result<(), String> {
    if !pattern.starts_with('/') {
        return Err(format!("route `{pattern}` must start with `/`"));
    }
    if pattern.split('/').any(|s| s == "..") {
        return Err(format!("route `{pattern}` contains `..`"));
    }
    let segments = compile(pattern);
    for (i, seg) in segments.iter().enumerate() {
        match seg {
            Segment::Param(n) | Segment::CatchAll(n) if n.is_empty() => {
                return Err(format!("route `{pattern}` has a parameter without a name"))
            }
            Segment::CatchAll(_) if i + 1 != segments.len() => {
                return Err(format!("route `{pattern}`: a catch-all must be the last segment"))
            }
            _ => {}
        }
    }
    Ok(())
}

/// A value captured by a param: one segment or the rest of the path.
enum Capture<'p> {
    One(&'p str),
    Rest(&'p str),
}

/// Non-empty segments of `path` with their byte offsets.
fn path_segments(path: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut pos = 0;
    path.split('/')
        .map(move |s| {
            let start = pos;
            pos += s.len() + 1;
            (start, s)
        })
        .filter(|(_, s)| !s.is_empty())
}

/// Walks `segments` against `path`, reporting captures to `on_param`. Allocates nothing.
fn walk<'p>(segments: &[Segment], path: &'p str, mut on_param: impl FnMut(&str, Capture<'p>)) -> bool {
    let mut parts = path_segments(path);
    for seg in segments {
        let Some((start, part)) = parts.next() else {
            return false;
        };
        match seg {
            Segment::Static(s) if s == part => {}
            Segment::Static(_) => return false,
            Segment::Param(name) => on_param(name, Capture::One(part)),
            Segment::CatchAll(name) => {
                on_param(name, Capture::Rest(&path[start..]));
                return true;
            }
        }
    }
    parts.next().is_none()
}

fn decode(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

fn capture_params(segments: &[Segment], path: &str) -> Vec<(String, String)> {
    let mut params = Vec::new();
    walk(segments, path, |name, capture| {
        let value = match capture {
            Capture::One(s) => decode(s),
            Capture::Rest(rest) => rest
                .split('/')
                .filter(|s| !s.is_empty())
                .map(decode)
                .collect::<Vec<_>>()
                .join("/"),
        };
        params.push((name.to_string(), value));
    });
    params
}

/// `allow_hosts` check: exact names or `*.example.com` (any subdomain, not the apex),
/// case-insensitive. An empty list allows every host; a missing host matches no list.
pub fn host_allowed(allow_hosts: &[String], host: Option<&str>) -> bool {
    if allow_hosts.is_empty() {
        return true;
    }
    let Some(host) = host else {
        return false;
    };
    let host = host.trim_end_matches('.').as_bytes();
    allow_hosts.iter().any(|pattern| {
        if pattern == "*" {
            return true;
        }
        match pattern.strip_prefix("*.") {
            Some(suffix) => {
                let suffix = suffix.as_bytes();
                host.len() > suffix.len() + 1
                    && host[host.len() - suffix.len() - 1] == b'.'
                    && host[host.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
            }
            None => pattern.as_bytes().eq_ignore_ascii_case(host),
        }
    })
}

/// All routes of one URL pattern, ready for matching.
#[derive(Debug, Clone)]
struct Entry {
    segments: Vec<Segment>,
    /// Indices into [`RouteMap::routes`].
    routes: Vec<usize>,
    /// Methods for which targets tie: 409.
    ambiguous: Methods,
}

/// The active route table. Cheap to read from many threads; rebuilt on every reload.
#[derive(Debug, Clone, Default)]
pub struct RouteMap {
    routes: Vec<Route>,
    entries: Vec<Entry>,
    /// Patterns without params → entry index. foldhash, not SipHash: the keys come from the
    /// project's files (no flooding by a client: requests only look up), and every request
    /// and every rebuild of a large map hashes here.
    exact: HashMap<String, usize, foldhash::fast::RandomState>,
    /// Entries with params, most specific first.
    dynamic: Vec<usize>,
    conflicts: BTreeSet<String>,
    /// Every function offering each conflicting pattern (for the 409 warning).
    conflict_names: BTreeMap<String, Vec<String>>,
    /// The targets that tie on each conflicting pattern (for reports).
    claimants: BTreeMap<String, Vec<Arc<Target>>>,
    shadowed: Vec<Shadowed>,
}

/// Order of strength among routes claiming the same URL and method; the greatest wins.
/// A route with force-url beats one without; among forced routes the higher priority wins,
/// among unforced ones the lower priority keeps the URL (a higher one displaces a lower one
/// only with force-url, contract §2.5); then the earlier runtime in `runtime_order` wins.
/// Equal keys mean same source, same force-url and same runtime: ambiguous.
fn strength(route: &Route, runtime_order: &[RuntimeKind]) -> (bool, i8, Reverse<usize>) {
    let rank = route.source as i8;
    let runtime_rank = runtime_order
        .iter()
        .position(|r| *r == route.target.runtime)
        .unwrap_or(runtime_order.len() + route.target.runtime as usize);
    (
        route.force_url,
        if route.force_url { rank } else { -rank },
        Reverse(runtime_rank),
    )
}

fn shadow_reason(winner: &Route, loser: &Route) -> String {
    let (w, l) = (&winner.target, &loser.target);
    if winner.force_url && !loser.force_url {
        format!(
            "{} ({} `{}`) takes the URL over with force-url",
            w.fn_name,
            w.runtime,
            winner.source.label()
        )
    } else if winner.source != loser.source && !winner.force_url {
        format!(
            "a {} needs force-url to displace the {} `{}` ({})",
            loser.source.label(),
            winner.source.label(),
            w.fn_name,
            w.runtime
        )
    } else if winner.source != loser.source {
        format!(
            "the {} `{}` ({}) has a higher priority and force-url",
            winner.source.label(),
            w.fn_name,
            w.runtime
        )
    } else {
        format!(
            "runtime {} comes before {} in the runtime order; `{}` wins",
            w.runtime, l.runtime, w.fn_name
        )
    }
}

impl RouteMap {
    /// Resolve priorities, runtime order (shadowing) and same-runtime conflicts.
    /// Decisions are taken per method, so `GET /x` in node and `POST /x` in python coexist.
    pub fn build(mut candidates: Vec<Route>, runtime_order: &[RuntimeKind]) -> RouteMap {
        // Group by pattern with one stable sort (candidate order kept within a group) instead
        // of a map keyed by a copy of every pattern: a reload of 10,000 routes builds the whole
        // map, and that copy, its compares and its frees were most of the build. The walk
        // offers candidates nearly sorted already, which the sort takes in one pass.
        candidates.sort_by(|a, b| a.pattern.cmp(&b.pattern));
        let mut groups: Vec<Vec<Route>> = Vec::new();
        for route in candidates {
            match groups.last_mut() {
                Some(group) if group[0].pattern == route.pattern => {
                    // The same target offered twice (e.g. by two aliases) is one route.
                    match group
                        .iter_mut()
                        .find(|r| r.target == route.target && r.source == route.source)
                    {
                        Some(same) => {
                            same.methods = same.methods | route.methods;
                            same.force_url |= route.force_url;
                        }
                        None => group.push(route),
                    }
                }
                _ => groups.push(vec![route]),
            }
        }

        let mut map = RouteMap::default();
        map.exact.reserve(groups.len());
        map.entries.reserve(groups.len());
        map.routes.reserve(groups.len());
        for group in groups {
            let pattern = group[0].pattern.clone();
            let mut won = vec![Methods::default(); group.len()];
            let mut ambiguous = Methods::default();
            let mut losers: Vec<(usize, usize)> = Vec::new();
            // A pattern with one claimant (nearly every pattern of a large tree) wins all its
            // methods: skip the per-method contest and its allocations.
            let contested = group.len() > 1;
            if !contested {
                for (_, bit) in Methods::ALL_NAMES {
                    if group[0].methods.contains(bit) {
                        won[0] = won[0] | bit;
                    }
                }
            }
            for (_, bit) in Methods::ALL_NAMES.into_iter().filter(|_| contested) {
                let mut contenders: Vec<usize> = (0..group.len()).filter(|&i| group[i].methods.contains(bit)).collect();
                // Stable sort keeps candidate order for equal strength; that only matters
                // for the ambiguity check below.
                contenders.sort_by_key(|&i| Reverse(strength(&group[i], runtime_order)));
                let Some(&best) = contenders.first() else {
                    continue;
                };
                let best_strength = strength(&group[best], runtime_order);
                if contenders
                    .get(1)
                    .is_some_and(|&i| strength(&group[i], runtime_order) == best_strength)
                {
                    ambiguous = ambiguous | bit;
                    let tied = map.claimants.entry(pattern.clone()).or_default();
                    for &i in contenders
                        .iter()
                        .filter(|&&i| strength(&group[i], runtime_order) == best_strength)
                    {
                        if !tied.contains(&group[i].target) {
                            tied.push(group[i].target.clone());
                        }
                    }
                    continue;
                }
                won[best] = won[best] | bit;
                for &loser in &contenders[1..] {
                    if !losers.iter().any(|&(l, _)| l == loser) {
                        losers.push((loser, best));
                    }
                }
            }
            for (loser, winner) in losers {
                map.shadowed.push(Shadowed {
                    pattern: pattern.clone(),
                    winner: group[winner].target.clone(),
                    loser: group[loser].target.clone(),
                    reason: shadow_reason(&group[winner], &group[loser]),
                });
            }

            if !ambiguous.is_empty() {
                // Every function offering the URL, for the 409 warning.
                let mut names: Vec<String> = group.iter().map(|r| r.target.fn_name.clone()).collect();
                names.sort_unstable();
                names.dedup();
                map.conflict_names.insert(pattern.clone(), names);
            }
            let mut entry = Entry {
                segments: compile(&pattern),
                routes: Vec::new(),
                ambiguous,
            };
            for (route, methods) in group.into_iter().zip(won) {
                if !methods.is_empty() {
                    entry.routes.push(map.routes.len());
                    map.routes.push(Route { methods, ..route });
                }
            }
            if !ambiguous.is_empty() {
                map.conflicts.insert(pattern.clone());
            }
            let index = map.entries.len();
            let is_exact = entry.segments.iter().all(|s| matches!(s, Segment::Static(_)));
            if is_exact {
                map.exact.insert(normalise_path(&pattern).into_owned(), index);
            } else {
                map.dynamic.push(index);
            }
            map.entries.push(entry);
        }

        let entries = &map.entries;
        let routes = &map.routes;
        // Cached: the key builds a string, once per entry rather than once per comparison.
        map.dynamic.sort_by_cached_key(|&i| {
            let segs = &entries[i].segments;
            let count = |f: fn(&Segment) -> bool| segs.iter().filter(|s| f(s)).count();
            let pattern = entries[i]
                .routes
                .first()
                .map(|&r| routes[r].pattern.as_str())
                .unwrap_or_default()
                .to_string();
            (
                Reverse(count(|s| matches!(s, Segment::Static(_)))),
                Reverse(segs.len()),
                count(|s| matches!(s, Segment::CatchAll(_))),
                Reverse(count(|s| matches!(s, Segment::Param(_)))),
                pattern,
            )
        });
        map
    }

    /// Match a request. `path` has no query string; `host` is the `Host` (or first
    /// `X-Forwarded-Host`) without port. HEAD is answered by a GET route when no route
    /// declares HEAD.
    pub fn resolve(&self, method: &str, path: &str, host: Option<&str>) -> Resolution<'_> {
        let Some(wanted) = Methods::of_request(method) else {
            return Resolution::NotFound;
        };
        let path = normalise_path(path);
        let mut host_mismatch = false;
        let mut allow = Methods::default();

        let exact = self.exact.get(path.as_ref()).copied();
        let dynamic = self
            .dynamic
            .iter()
            .copied()
            .filter(|&i| walk(&self.entries[i].segments, &path, |_, _| {}));
        for index in exact.into_iter().chain(dynamic) {
            let entry = &self.entries[index];
            if entry.ambiguous.contains(wanted) || (wanted == Methods::HEAD && entry.ambiguous.contains(Methods::GET)) {
                return Resolution::Ambiguous;
            }
            let mut fallbacks = [wanted, Methods::default()];
            if wanted == Methods::HEAD {
                fallbacks[1] = Methods::GET;
            }
            for bit in fallbacks.into_iter().filter(|b| !b.is_empty()) {
                for &r in &entry.routes {
                    let route = &self.routes[r];
                    if !route.methods.contains(bit) {
                        continue;
                    }
                    if host_allowed(&route.target.policy.allow_hosts, host) {
                        let params = if exact == Some(index) {
                            Vec::new()
                        } else {
                            capture_params(&entry.segments, &path)
                        };
                        return Resolution::Matched { route, params };
                    }
                    host_mismatch = true;
                }
            }
            for &r in &entry.routes {
                let route = &self.routes[r];
                if route.target.explicit && host_allowed(&route.target.policy.allow_hosts, host) {
                    allow = allow | route.methods;
                }
            }
        }
        if host_mismatch {
            Resolution::HostNotAllowed
        } else if !allow.is_empty() {
            Resolution::MethodNotAllowed {
                allow: allow.to_string(),
            }
        } else {
            Resolution::NotFound
        }
    }

    /// Every active route, sorted by pattern.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// Patterns that answer 409.
    pub fn conflicts(&self) -> &BTreeSet<String> {
        &self.conflicts
    }

    /// The functions offering a conflicting `pattern` (sorted, each once).
    pub fn conflict_names(&self, pattern: &str) -> &[String] {
        self.conflict_names.get(pattern).map_or(&[], Vec::as_slice)
    }

    /// The targets that tie on a pattern answering 409.
    pub fn claimants(&self, pattern: &str) -> &[Arc<Target>] {
        self.claimants.get(pattern).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Routes that lost their URL to another route, with the reason.
    pub fn shadowed(&self) -> &[Shadowed] {
        &self.shadowed
    }
}

/// Whether `pattern` (`/users/:id`, `/blog/:slug*`, `/x/*`) matches `path`, ignoring methods and
/// hosts. For explanations off the request path (it compiles the pattern every call).
pub fn pattern_matches(pattern: &str, path: &str) -> bool {
    walk(&compile(pattern), &normalise_path(path), |_, _| {})
}

/// Collapses `//` and drops a trailing `/`; borrows when the path is already clean.
fn normalise_path(path: &str) -> Cow<'_, str> {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return Cow::Borrowed("/");
    }
    if trimmed.contains("//") || !trimmed.starts_with('/') {
        let mut out = String::with_capacity(trimmed.len() + 1);
        for seg in trimmed.split('/').filter(|s| !s.is_empty()) {
            out.push('/');
            out.push_str(seg);
        }
        return Cow::Owned(out);
    }
    Cow::Borrowed(trimmed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use RuntimeKind::{Node, Python};

    fn target(runtime: RuntimeKind, fn_name: &str, explicit: bool) -> Arc<Target> {
        Arc::new(Target {
            runtime,
            fn_name: fn_name.to_string(),
            fn_source_dir: None,
            version: None,
            entry: fn_name.to_string(),
            policy: FnPolicy::default(),
            explicit,
        })
    }

    fn route(pattern: &str, methods: Methods, runtime: RuntimeKind, fn_name: &str) -> Route {
        Route {
            pattern: pattern.to_string(),
            methods,
            target: target(runtime, fn_name, false),
            source: RouteSource::File,
            force_url: false,
        }
    }

    fn with_source(mut r: Route, source: RouteSource, force_url: bool) -> Route {
        r.source = source;
        r.force_url = force_url;
        r
    }

    /// `fn_name` of the matched route and its params, or a short label for the outcome.
    fn outcome(map: &RouteMap, method: &str, path: &str, host: Option<&str>) -> String {
        match map.resolve(method, path, host) {
            Resolution::Matched { route, params } => {
                let params: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!("{} {}", route.target.fn_name, params.join("&"))
                    .trim_end()
                    .to_string()
            }
            Resolution::Ambiguous => "409".into(),
            Resolution::MethodNotAllowed { allow } => format!("405 {allow}"),
            Resolution::HostNotAllowed => "421".into(),
            Resolution::NotFound => "404".into(),
        }
    }

    #[test]
    fn methods_parse_and_display() {
        assert_eq!(Methods::parse("post"), Some(Methods::POST));
        assert_eq!(Methods::parse("FETCH"), None);
        assert_eq!(Methods::of_request("POST"), Some(Methods::POST));
        assert_eq!(Methods::of_request("post"), None, "request methods are case-sensitive");
        assert_eq!((Methods::POST | Methods::GET).to_string(), "GET, POST");
        assert!(!Methods::GET.contains(Methods::default()));
    }

    #[test]
    fn runtime_order_decides_cross_runtime_duplicates() {
        for (order, winner, loser) in [
            (vec![Node, Python], "conflict.js", "conflict.py"),
            (vec![Python, Node], "conflict.py", "conflict.js"),
        ] {
            let map = RouteMap::build(
                vec![
                    route("/conflict", Methods::GET, Node, "conflict.js"),
                    route("/conflict", Methods::GET, Python, "conflict.py"),
                ],
                &order,
            );
            assert_eq!(outcome(&map, "GET", "/conflict", None), winner);
            assert_eq!(map.shadowed().len(), 1);
            assert_eq!(map.shadowed()[0].loser.fn_name, loser);
            assert_eq!(map.shadowed()[0].winner.fn_name, winner);
            assert!(map.conflicts().is_empty());
            assert_eq!(map.routes().len(), 1);
        }
    }

    #[test]
    fn same_runtime_same_priority_is_ambiguous() {
        let map = RouteMap::build(
            vec![
                route("/dup", Methods::GET, Node, "get.dup.js"),
                route("/dup", Methods::GET, Node, "dup/index.js"),
            ],
            &[Node],
        );
        assert_eq!(outcome(&map, "GET", "/dup", None), "409");
        assert_eq!(map.conflicts().iter().collect::<Vec<_>>(), vec!["/dup"]);
        assert_eq!(map.claimants("/dup").len(), 2, "both tied targets are reported");
        assert!(map.routes().is_empty());
    }

    #[test]
    fn different_methods_coexist() {
        let map = RouteMap::build(
            vec![
                route("/items", Methods::GET, Node, "get.items.js"),
                route("/items", Methods::POST, Python, "post.items.py"),
            ],
            &[Node, Python],
        );
        assert_eq!(outcome(&map, "GET", "/items", None), "get.items.js");
        assert_eq!(outcome(&map, "POST", "/items", None), "post.items.py");
        assert!(map.shadowed().is_empty());
    }

    #[test]
    fn priority_needs_force_url_to_displace() {
        let file = route("/x", Methods::GET, Node, "x.js");
        let config = route("/x", Methods::GET, Node, "fnx");
        let cases = [
            // (config force-url, file force-url, winner)
            (false, false, "x.js"),
            (true, false, "fnx"),
            (true, true, "fnx"),
            (false, true, "x.js"),
        ];
        for (config_force, file_force, want) in cases {
            let map = RouteMap::build(
                vec![
                    with_source(file.clone(), RouteSource::File, file_force),
                    with_source(config.clone(), RouteSource::Config, config_force),
                ],
                &[Node],
            );
            assert_eq!(outcome(&map, "GET", "/x", None), want, "{config_force} {file_force}");
            assert_eq!(map.shadowed().len(), 1);
        }
        // force-url also takes a URL over from an earlier runtime.
        let map = RouteMap::build(
            vec![
                route("/y", Methods::GET, Node, "y.js"),
                with_source(route("/y", Methods::GET, Python, "y.py"), RouteSource::File, true),
            ],
            &[Node, Python],
        );
        assert_eq!(outcome(&map, "GET", "/y", None), "y.py");
    }

    #[test]
    fn matching_order_and_params() {
        let map = RouteMap::build(
            vec![
                route("/users/me", Methods::GET, Node, "me"),
                route("/users/:id", Methods::GET, Node, "user"),
                route("/users/:id/posts/:post", Methods::GET, Node, "post"),
                route("/users/:id/:tab", Methods::GET, Node, "tab"),
                route("/users/:rest*", Methods::GET, Node, "users-rest"),
                route("/:all*", Methods::GET, Node, "all"),
                route("/files/*", Methods::GET, Node, "files"),
            ],
            &[Node],
        );
        let cases = [
            ("/users/me", "me"),
            ("/users/me/", "me"),
            ("/users/42", "user id=42"),
            ("/users/J%C3%BCrgen%20K", "user id=Jürgen K"),
            ("/users/1/posts/2", "post id=1&post=2"),
            ("/users/1/likes", "tab id=1&tab=likes"),
            ("/users/1/a/b", "users-rest rest=1/a/b"),
            ("/users", "all all=users"),
            ("/files/a%2Fb/c", "files wildcard=a/b/c"),
            ("//users//7", "user id=7"),
            ("/", "404"),
        ];
        for (path, want) in cases {
            assert_eq!(outcome(&map, "GET", path, None), want, "{path}");
        }
    }

    #[test]
    fn method_rules() {
        let mut explicit = route("/fn", Methods::GET | Methods::POST, Node, "fn");
        explicit.target = target(Node, "fn", true);
        let mut explicit_wild = explicit.clone();
        explicit_wild.pattern = "/fn/*".into();
        let map = RouteMap::build(
            vec![
                route("/file", Methods::POST, Node, "post.file.js"),
                explicit,
                explicit_wild,
            ],
            &[Node],
        );
        let cases = [
            ("GET", "/file", "404"),
            ("POST", "/file", "post.file.js"),
            ("DELETE", "/fn", "405 GET, POST"),
            ("PUT", "/fn/x", "405 GET, POST"),
            ("HEAD", "/fn", "fn"),
            ("BREW", "/fn", "404"),
        ];
        for (method, path, want) in cases {
            assert_eq!(outcome(&map, method, path, None), want, "{method} {path}");
        }
    }

    #[test]
    fn host_rules() {
        let mut hosted = route("/h", Methods::GET, Node, "h");
        Arc::make_mut(&mut hosted.target).policy.allow_hosts = vec!["api.example.com".into(), "*.example.org".into()];
        let map = RouteMap::build(vec![hosted], &[Node]);
        let cases = [
            (Some("api.example.com"), "h"),
            (Some("API.Example.COM"), "h"),
            (Some("a.example.org"), "h"),
            (Some("a.b.example.org"), "h"),
            (Some("example.org"), "421"),
            (Some("evil.com"), "421"),
            (Some("xexample.org"), "421"),
            (None, "421"),
        ];
        for (host, want) in cases {
            assert_eq!(outcome(&map, "GET", "/h", host), want, "{host:?}");
        }
        assert_eq!(outcome(&map, "POST", "/h", Some("evil.com")), "404");
    }

    #[test]
    fn host_mismatch_falls_through_to_a_less_specific_route() {
        let mut hosted = route("/a/b", Methods::GET, Node, "hosted");
        Arc::make_mut(&mut hosted.target).policy.allow_hosts = vec!["x.io".into()];
        let map = RouteMap::build(vec![hosted, route("/a/:p", Methods::GET, Node, "open")], &[Node]);
        assert_eq!(outcome(&map, "GET", "/a/b", Some("x.io")), "hosted");
        assert_eq!(outcome(&map, "GET", "/a/b", Some("y.io")), "open p=b");
    }

    #[test]
    fn validate_patterns() {
        assert_eq!(validate_pattern("/a/:id/*"), Ok(()));
        assert!(validate_pattern("/a/*/b").is_err());
        assert!(validate_pattern("/a/../b").is_err());
        assert!(validate_pattern("/a/:").is_err());
        assert!(validate_pattern("a").is_err());
    }

    /// A generated path segment: static text, or a param (`None`) to be filled with a value.
    fn segment() -> impl Strategy<Value = (Option<String>, String)> {
        prop_oneof![
            "[a-z0-9-]{1,8}".prop_map(|s| (None, s)),
            ("[a-z]{1,6}", "[a-zA-Z0-9 %/é._~-]{1,10}").prop_map(|(n, v)| (Some(n), v)),
        ]
    }

    proptest! {
        #[test]
        fn a_route_matches_its_own_path_and_yields_the_params(
            segs in proptest::collection::vec(segment(), 1..6),
            catch_all in proptest::collection::vec("[a-zA-Z0-9%é]{1,6}", 0..3),
        ) {
            let mut pattern = String::new();
            let mut path = String::new();
            let mut want = Vec::new();
            for (i, (param, text)) in segs.iter().enumerate() {
                match param {
                    None => {
                        pattern.push_str(&format!("/{text}"));
                        path.push_str(&format!("/{text}"));
                    }
                    Some(name) => {
                        let name = format!("{name}{i}");
                        pattern.push_str(&format!("/:{name}"));
                        let encoded = percent_encoding::utf8_percent_encode(
                            text, percent_encoding::NON_ALPHANUMERIC).to_string();
                        path.push_str(&format!("/{encoded}"));
                        want.push((name, text.clone()));
                    }
                }
            }
            if !catch_all.is_empty() {
                pattern.push_str("/:rest*");
                let encoded: Vec<String> = catch_all.iter().map(|s| percent_encoding::utf8_percent_encode(
                    s, percent_encoding::NON_ALPHANUMERIC).to_string()).collect();
                path.push_str(&format!("/{}", encoded.join("/")));
                want.push(("rest".to_string(), catch_all.join("/")));
            }
            let map = RouteMap::build(vec![route(&pattern, Methods::GET, Node, "f")], &[Node]);
            match map.resolve("GET", &path, None) {
                Resolution::Matched { route, params } => {
                    prop_assert_eq!(&route.pattern, &pattern);
                    prop_assert_eq!(params, want);
                }
                other => prop_assert!(false, "{path} did not match {pattern}: {other:?}"),
            }
        }
    }
}
