//! The one map from engine failures to HTTP responses. Every failure the gateway meets ends
//! here as a status and a `{"error": "…"}` JSON body; nothing fails towards hyper.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use hyper::{Response, StatusCode};

/// A whole response body (every response but one).
pub type Body = Full<Bytes>;

/// What the HTTP service answers with: a whole body, or a stream (`/_fn/events`). `Either`
/// keeps the common case unboxed.
pub type ResponseBody =
    http_body_util::Either<Full<Bytes>, http_body_util::combinators::BoxBody<Bytes, std::convert::Infallible>>;

/// Why a request could not be served. Says who caused it: the client (4xx), the gateway's
/// admission (429/503 overflow), or the runtime (502/503/504).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    #[error("not found")]
    NotFound,
    /// `/_fn/invoke` names no known function (or version).
    #[error("unknown function or version")]
    UnknownFunction,
    #[error("method not allowed")]
    MethodNotAllowed { allow: String },
    /// `/_fn/invoke` with a method the function does not take: the body lists the ones it does
    /// (`allowed_methods`), as the original's invoke endpoint answers.
    #[error("method not allowed")]
    InvokeMethodNotAllowed { allowed: Vec<&'static str> },
    /// A switched-off surface (`docs disabled`, `admin api disabled`, `console ui disabled`,
    /// `console api disabled`): 404 with the switch named, as the original answers.
    #[error("{0}")]
    Disabled(&'static str),
    #[error("ambiguous function")]
    Ambiguous,
    #[error("payload too large")]
    PayloadTooLarge,
    #[error("host not allowed")]
    HostNotAllowed,
    #[error("{0}")]
    BadRequest(&'static str),
    #[error("{0}")]
    Forbidden(&'static str),
    /// The console's login is required (`FN_CONSOLE_LOGIN_API`).
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("worker pool overflow")]
    Overflow { status: u16 },
    #[error("worker pool queue timeout")]
    QueueTimeout { status: u16 },
    #[error("invalid runtime response")]
    InvalidReply,
    #[error("invalid runtime response: invalid body_base64")]
    InvalidBase64,
    /// The exchange broke after the request was sent (not safe to retry).
    #[error("runtime error: {0}")]
    RuntimeError(String),
    /// Every socket of the runtime is known to be down.
    #[error("runtime down")]
    RuntimeDown,
    /// No socket could be reached, or the runtime has none.
    #[error("runtime unavailable")]
    RuntimeUnavailable,
    #[error("runtime timeout")]
    Timeout,
    /// The function's dependencies are being installed (`Retry-After: 2`).
    #[error("dependencies are being installed")]
    DepsPreparing,
    /// The function's dependency install failed; `package` is the one the installer's output
    /// names (shown always: the user wrote it); `output` is shown only with debug headers.
    #[error("dependency install failed")]
    DepsFailed {
        package: Option<String>,
        output: Option<String>,
    },
    /// Inference found imports it cannot map to packages (FastFN's message, which names them
    /// and no path).
    #[error("{0}")]
    DepsUnresolved(String),
    /// A rust/go handler does not compile; `output` is the compiler's message.
    #[error("{runtime} build failed")]
    BuildFailed { runtime: &'static str, output: String },
    #[error("internal error")]
    Internal,
    /// `/console` with no dashboard to serve (`ui/dist` not built): 503 with what to run.
    #[error("console not built")]
    ConsoleNotBuilt { hint: &'static str },
    /// A handler's `proxy` directive could not be carried out (502, the original's bodies).
    #[error("{0}")]
    EdgeProxy(crate::proxy::ProxyError),
    /// `/_fn/secrets`: a bad request (never echoes a value).
    #[error("{0}")]
    Secret(crate::secrets::SecretError),
    /// `/_fn/jobs`: the status is the job error's own (`crate::jobs::JobError::status`).
    #[error("{0}")]
    Job(crate::jobs::JobError),
}

impl Failure {
    pub fn status(&self) -> StatusCode {
        let code = match self {
            Failure::NotFound | Failure::UnknownFunction => 404,
            Failure::MethodNotAllowed { .. } | Failure::InvokeMethodNotAllowed { .. } => 405,
            Failure::Disabled(_) => 404,
            Failure::Ambiguous => 409,
            Failure::PayloadTooLarge => 413,
            Failure::HostNotAllowed => 421,
            Failure::BadRequest(_) => 400,
            Failure::Forbidden(_) => 403,
            Failure::Unauthorized(_) => 401,
            Failure::Overflow { status } | Failure::QueueTimeout { status } => *status,
            Failure::InvalidReply | Failure::InvalidBase64 | Failure::RuntimeError(_) => 502,
            Failure::RuntimeDown | Failure::RuntimeUnavailable => 503,
            Failure::Timeout => 504,
            Failure::BuildFailed { .. } | Failure::DepsUnresolved(_) => 500,
            Failure::DepsPreparing | Failure::DepsFailed { .. } => 503,
            Failure::Internal => 500,
            Failure::ConsoleNotBuilt { .. } => 503,
            Failure::Job(e) => e.status(),
            Failure::EdgeProxy(_) => 502,
            Failure::Secret(e) => e.status(),
        };
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// A failure of the runtime side (counts as a cold-start error for warm-up headers).
    pub fn is_runtime(&self) -> bool {
        matches!(
            self,
            Failure::InvalidReply
                | Failure::InvalidBase64
                | Failure::RuntimeError(_)
                | Failure::RuntimeDown
                | Failure::RuntimeUnavailable
                | Failure::Timeout
        )
    }

    /// Refused before anything ran: the request was too large, its function's dependencies
    /// are not ready, or its worker pool is full.
    pub fn is_admission(&self) -> bool {
        matches!(
            self,
            Failure::PayloadTooLarge | Failure::Overflow { .. } | Failure::QueueTimeout { .. } | Failure::DepsPreparing
        )
    }

    /// The body of a failure that carries nothing but its message, built at compile time:
    /// refusals under load must cost no allocation beyond the response.
    fn static_body(&self) -> Option<&'static [u8]> {
        Some(match self {
            Failure::NotFound => br#"{"error":"not found"}"#,
            Failure::PayloadTooLarge => br#"{"error":"payload too large"}"#,
            Failure::HostNotAllowed => br#"{"error":"host not allowed"}"#,
            Failure::Overflow { .. } => br#"{"error":"worker pool overflow"}"#,
            Failure::QueueTimeout { .. } => br#"{"error":"worker pool queue timeout"}"#,
            Failure::RuntimeDown => br#"{"error":"runtime down"}"#,
            Failure::Timeout => br#"{"error":"runtime timeout"}"#,
            _ => return None,
        })
    }

    pub fn into_response(self) -> Response<Full<Bytes>> {
        let status = self.status();
        if let Some(body) = self.static_body() {
            let mut resp = Response::new(Full::new(Bytes::from_static(body)));
            *resp.status_mut() = status;
            resp.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            return resp;
        }
        let allow = match &self {
            Failure::MethodNotAllowed { allow } => HeaderValue::from_str(allow).ok(),
            Failure::InvokeMethodNotAllowed { allowed } => HeaderValue::from_str(&allowed.join(", ")).ok(),
            _ => None,
        };
        let mut body = serde_json::json!({ "error": self.to_string() });
        match &self {
            Failure::BuildFailed { output, .. } => {
                body["output"] = serde_json::json!(output);
            }
            Failure::InvokeMethodNotAllowed { allowed } => {
                body["allowed_methods"] = serde_json::json!(allowed);
            }
            Failure::ConsoleNotBuilt { hint } => {
                body["hint"] = serde_json::json!(hint);
            }
            Failure::DepsFailed { package, output } => {
                if let Some(package) = package {
                    body["package"] = serde_json::json!(package);
                }
                match output {
                    Some(output) => body["output"] = serde_json::json!(output),
                    None => {
                        body["hint"] =
                            serde_json::json!("the installer's output is in /_fn/health (deps) and /_fn/logs")
                    }
                }
            }
            _ => {}
        }
        let retry_after = matches!(self, Failure::DepsPreparing);
        let mut resp = json_response(status, &body);
        if let Some(allow) = allow {
            resp.headers_mut().insert(ALLOW, allow);
        }
        if retry_after {
            resp.headers_mut()
                .insert(hyper::header::RETRY_AFTER, HeaderValue::from_static("2"));
        }
        resp
    }
}

/// A JSON response (admin endpoints and errors).
pub fn json_response<T: serde::Serialize + ?Sized>(status: StatusCode, value: &T) -> Response<Full<Bytes>> {
    let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn body(resp: Response<Full<Bytes>>) -> String {
        String::from_utf8(resp.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap()
    }

    #[tokio::test]
    async fn every_failure_has_the_contract_status_and_body() {
        let cases = [
            (Failure::NotFound, 404, r#"{"error":"not found"}"#),
            (Failure::Ambiguous, 409, r#"{"error":"ambiguous function"}"#),
            (Failure::PayloadTooLarge, 413, r#"{"error":"payload too large"}"#),
            (Failure::HostNotAllowed, 421, r#"{"error":"host not allowed"}"#),
            (
                Failure::Overflow { status: 429 },
                429,
                r#"{"error":"worker pool overflow"}"#,
            ),
            (
                Failure::QueueTimeout { status: 503 },
                503,
                r#"{"error":"worker pool queue timeout"}"#,
            ),
            (Failure::InvalidReply, 502, r#"{"error":"invalid runtime response"}"#),
            (
                Failure::InvalidBase64,
                502,
                r#"{"error":"invalid runtime response: invalid body_base64"}"#,
            ),
            (
                Failure::RuntimeError("connection reset".into()),
                502,
                r#"{"error":"runtime error: connection reset"}"#,
            ),
            (Failure::RuntimeDown, 503, r#"{"error":"runtime down"}"#),
            (Failure::RuntimeUnavailable, 503, r#"{"error":"runtime unavailable"}"#),
            (Failure::Timeout, 504, r#"{"error":"runtime timeout"}"#),
            (Failure::NotFound, 404, r#"{"error":"not found"}"#),
            (
                Failure::Forbidden("missing CSRF header"),
                403,
                r#"{"error":"missing CSRF header"}"#,
            ),
        ];
        for (failure, status, want) in cases {
            let resp = failure.into_response();
            assert_eq!(resp.status().as_u16(), status);
            assert_eq!(resp.headers()[CONTENT_TYPE], "application/json");
            assert_eq!(body(resp).await, want);
        }
    }

    #[tokio::test]
    async fn dependency_failures_name_the_package_and_show_output_only_when_asked() {
        let failed = |output: Option<&str>| Failure::DepsFailed {
            package: Some("nope==1".into()),
            output: output.map(str::to_string),
        };
        let resp = failed(None).into_response();
        assert_eq!((resp.status().as_u16(), resp.headers().get("retry-after")), (503, None));
        let hidden: serde_json::Value = serde_json::from_str(&body(resp).await).unwrap();
        assert_eq!(hidden["package"], "nope==1");
        assert!(
            hidden.get("output").is_none() && hidden.get("hint").is_some(),
            "{hidden}"
        );
        let shown: serde_json::Value =
            serde_json::from_str(&body(failed(Some("ERROR: No matching distribution")).into_response()).await).unwrap();
        assert_eq!(shown["output"], "ERROR: No matching distribution");
        let resp = Failure::DepsUnresolved("python dependency inference failed: unresolved imports PIL.".into())
            .into_response();
        assert_eq!(resp.status(), 500);
        assert_eq!(
            body(resp).await,
            r#"{"error":"python dependency inference failed: unresolved imports PIL."}"#
        );
        let resp = Failure::DepsPreparing.into_response();
        assert_eq!(resp.status(), 503);
        assert_eq!(resp.headers()["retry-after"], "2");
    }

    #[tokio::test]
    async fn method_not_allowed_carries_allow() {
        let resp = Failure::MethodNotAllowed {
            allow: "GET, POST".into(),
        }
        .into_response();
        assert_eq!(resp.status(), 405);
        assert_eq!(resp.headers()[ALLOW], "GET, POST");
        assert_eq!(body(resp).await, r#"{"error":"method not allowed"}"#);
    }
}
