//! The typed error of every Argo Server call. Callers branch on the variant;
//! the `Display` text is for people: it names the setting to check and the fix.

use std::time::Duration;

use crate::model::{GatewayError, StreamError};

/// gRPC status codes used by grpc-gateway error bodies.
pub mod grpc {
    pub const CANCELLED: i64 = 1;
    pub const UNKNOWN: i64 = 2;
    pub const INVALID_ARGUMENT: i64 = 3;
    pub const DEADLINE_EXCEEDED: i64 = 4;
    pub const NOT_FOUND: i64 = 5;
    pub const ALREADY_EXISTS: i64 = 6;
    pub const PERMISSION_DENIED: i64 = 7;
    pub const RESOURCE_EXHAUSTED: i64 = 8;
    pub const FAILED_PRECONDITION: i64 = 9;
    pub const ABORTED: i64 = 10;
    pub const INTERNAL: i64 = 13;
    pub const UNAVAILABLE: i64 = 14;
    pub const UNAUTHENTICATED: i64 = 16;
}

/// RBAC the runner's service account needs in the ingestion namespace.
pub const RBAC_HINT: &str = "the ARGO_TOKEN service account needs create/get/list/watch/patch/delete on \
     workflows.argoproj.io, create/get/list/update/patch/delete on cronworkflows.argoproj.io, list/watch on \
     pods and get on pods/log in the ingestion namespace (INGESTION_NAMESPACE); see deploy/kubernetes";

#[derive(Debug, thiserror::Error)]
pub enum ArgoError {
    #[error(
        "Argo Server rejected the token (401 Unauthorized){}: check ARGO_TOKEN (or the token file) holds a valid, \
         unexpired service-account token for this cluster",
        fmt_msg(.message)
    )]
    Unauthorized { message: String },

    #[error(
        "Argo Server refused the request (403 Forbidden){}: the ARGO_TOKEN service account lacks RBAC; {RBAC_HINT}",
        fmt_msg(.message)
    )]
    Forbidden { message: String },

    #[error("not found in Argo{}", fmt_msg(.message))]
    NotFound { message: String },

    /// 409 / gRPC ALREADY_EXISTS: a create with a deterministic name that already exists.
    #[error("already exists in Argo (409){}", fmt_msg(.message))]
    AlreadyExists { message: String },

    /// 409 on update: the resourceVersion is stale. Re-read and retry.
    #[error("conflict: the object changed since it was read (stale resourceVersion){}", fmt_msg(.message))]
    Conflict { message: String },

    /// 400 / INVALID_ARGUMENT: Argo rejected the object. A bug in the builder or a merged spec file.
    #[error(
        "Argo Server rejected the request as invalid (400){}: check ARGO_INGESTION_CONTAINER_SPEC_FILE_PATH, \
         ARGO_INGESTION_WORKFLOW_SPEC_FILE_PATH and ARGO_PIPELINE_TYPE_CONFIGS",
        fmt_msg(.message)
    )]
    Invalid { message: String },

    /// 429 / RESOURCE_EXHAUSTED after all retries.
    #[error("Argo Server is throttling requests (429) after {attempts} attempts{}", fmt_msg(.message))]
    Throttled { message: String, attempts: u32 },

    /// 5xx / UNAVAILABLE after all retries.
    #[error("Argo Server unavailable (HTTP {status}) after {attempts} attempts{}", fmt_msg(.message))]
    Unavailable {
        status: u16,
        message: String,
        attempts: u32,
    },

    #[error(
        "cannot connect to the Argo Server at {endpoint}: {detail}; check PIPELINE_SERVICE_CLIENT_ENDPOINT \
         (scheme, host and port of argo-server, e.g. https://argo-server.argo:2746) and that the server is running"
    )]
    Connect { endpoint: String, detail: String },

    #[error(
        "TLS handshake with the Argo Server at {endpoint} failed: {detail}; set ARGO_SERVER_CERTIFICATE_PATH to the \
         PEM of the CA that signed argo-server's certificate (argo-server uses a self-signed one by default), or \
         use http:// if the server runs with --secure=false"
    )]
    Tls { endpoint: String, detail: String },

    #[error(
        "request to the Argo Server timed out after {after:?} ({what}); raise the client timeout or check the server"
    )]
    Timeout { what: String, after: Duration },

    #[error("cannot decode the Argo Server's answer to {what}: {detail}")]
    Decode { what: String, detail: String },

    #[error("error from the Argo Server in the middle of a stream{}: {message}", fmt_code(.grpc_code))]
    Stream {
        grpc_code: Option<i64>,
        message: String,
    },

    #[error("stream line/frame larger than the {limit} byte limit; the stream was closed")]
    FrameTooLarge { limit: usize },

    #[error("Argo client configuration: {0}")]
    Config(String),

    #[error("Argo Server answered HTTP {status}{}", fmt_msg(.message))]
    Http {
        status: u16,
        grpc_code: Option<i64>,
        message: String,
    },
}

fn fmt_msg(m: &str) -> String {
    if m.is_empty() {
        String::new()
    } else {
        format!(": {m}")
    }
}

fn fmt_code(c: &Option<i64>) -> String {
    c.map(|c| format!(" (grpc code {c})")).unwrap_or_default()
}

impl ArgoError {
    /// Worth retrying the same request (after a backoff)?
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Throttled { .. }
                | Self::Unavailable { .. }
                | Self::Connect { .. }
                | Self::Timeout { .. }
        )
    }
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound { .. })
    }
    pub fn is_already_exists(&self) -> bool {
        matches!(self, Self::AlreadyExists { .. })
    }

    /// Map an HTTP status and the (maybe) `{"code","message"}` body. `is_update` turns
    /// 409 into `Conflict` (stale resourceVersion) rather than `AlreadyExists`.
    pub fn from_response(status: u16, body: &[u8], is_update: bool) -> Self {
        let parsed: Option<GatewayError> = serde_json::from_slice(body).ok();
        let grpc_code = parsed.as_ref().and_then(|g| g.code);
        let mut message = parsed
            .as_ref()
            .and_then(|g| g.message.clone().or_else(|| g.error.clone()))
            .unwrap_or_else(|| {
                String::from_utf8_lossy(&body[..body.len().min(512)])
                    .trim()
                    .to_owned()
            });
        if message.len() > 1024 {
            let mut cut = 1024;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
        }
        Self::classify(status, grpc_code, message, is_update)
    }

    pub fn from_stream_error(e: &StreamError) -> Self {
        let code = e.grpc_code.or(e.code);
        let message = e.message.clone().unwrap_or_default();
        match (code, e.http_code) {
            (Some(grpc::UNAUTHENTICATED), _) | (_, Some(401)) => Self::Unauthorized { message },
            (Some(grpc::PERMISSION_DENIED), _) | (_, Some(403)) => Self::Forbidden { message },
            (Some(grpc::NOT_FOUND), _) | (_, Some(404)) => Self::NotFound { message },
            _ => Self::Stream {
                grpc_code: code,
                message,
            },
        }
    }

    fn classify(status: u16, grpc_code: Option<i64>, message: String, is_update: bool) -> Self {
        match (status, grpc_code) {
            (401, _) | (_, Some(grpc::UNAUTHENTICATED)) => Self::Unauthorized { message },
            (403, _) | (_, Some(grpc::PERMISSION_DENIED)) => Self::Forbidden { message },
            (404, _) | (_, Some(grpc::NOT_FOUND)) => Self::NotFound { message },
            (409, _) | (_, Some(grpc::ALREADY_EXISTS)) | (_, Some(grpc::ABORTED)) => {
                if is_update || grpc_code == Some(grpc::ABORTED) {
                    Self::Conflict { message }
                } else {
                    Self::AlreadyExists { message }
                }
            }
            (429, _) | (_, Some(grpc::RESOURCE_EXHAUSTED)) => Self::Throttled {
                message,
                attempts: 1,
            },
            (400, _) | (_, Some(grpc::INVALID_ARGUMENT)) => Self::Invalid { message },
            (502..=504, _) | (_, Some(grpc::UNAVAILABLE)) => Self::Unavailable {
                status,
                message,
                attempts: 1,
            },
            (500, _) => Self::Unavailable {
                status,
                message,
                attempts: 1,
            },
            _ => Self::Http {
                status,
                grpc_code,
                message,
            },
        }
    }

    pub(crate) fn with_attempts(self, n: u32) -> Self {
        match self {
            Self::Throttled { message, .. } => Self::Throttled {
                message,
                attempts: n,
            },
            Self::Unavailable {
                status, message, ..
            } => Self::Unavailable {
                status,
                message,
                attempts: n,
            },
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_status_and_grpc_codes() {
        let e = ArgoError::from_response(401, br#"{"code":16,"message":"token not valid"}"#, false);
        assert!(matches!(e, ArgoError::Unauthorized { .. }));
        assert!(e.to_string().contains("ARGO_TOKEN"), "{e}");
        let e = ArgoError::from_response(
            403,
            br#"{"code":7,"message":"workflows.argoproj.io is forbidden"}"#,
            false,
        );
        assert!(
            e.to_string().contains("RBAC") && e.to_string().contains("ARGO_TOKEN"),
            "{e}"
        );
        assert!(
            ArgoError::from_response(409, br#"{"code":6,"message":"exists"}"#, false)
                .is_already_exists()
        );
        assert!(matches!(
            ArgoError::from_response(409, b"{}", true),
            ArgoError::Conflict { .. }
        ));
        assert!(ArgoError::from_response(404, b"not json", false).is_not_found());
        assert!(ArgoError::from_response(429, b"", false).is_retryable());
        assert!(ArgoError::from_response(503, b"", false).is_retryable());
        assert!(
            !ArgoError::from_response(400, br#"{"code":3,"message":"bad"}"#, false).is_retryable()
        );
        // gRPC code wins over a generic HTTP status
        assert!(
            ArgoError::from_response(500, br#"{"code":5,"message":"nope"}"#, false).is_not_found()
        );
        let e = ArgoError::from_response(418, br#"{"code":2,"message":"teapot"}"#, false);
        assert!(
            matches!(
                e,
                ArgoError::Http {
                    status: 418,
                    grpc_code: Some(2),
                    ..
                }
            ),
            "{e:?}"
        );
    }
}
