//! The gateway answering as the original FastFN (`fixtures/compat-gw`, see its README): debug
//! headers from `response.include_debug_headers`, path and header edges, version-only
//! folders, discovery edges.

use crate::support::*;

#[tokio::test(flavor = "multi_thread")]
async fn response_include_debug_headers_turns_debug_headers_on() {
    let e = start("compat-gw", &[]).await;
    for (path, on) in [("/traced", true), ("/either", true), ("/untraced", false)] {
        let r = e.get(path).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        assert_eq!(r.header("x-fn-runtime").is_some(), on, "{path}: {:?}", r.headers);
        assert_eq!(r.header("x-fn-request-id").is_some(), on, "{path}: {:?}", r.headers);
        if on {
            assert_eq!(r.header("x-fn-function"), Some(&path[1..]), "{path}");
        }
    }
    e.stop().await;
}
