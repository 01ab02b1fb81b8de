//! GCP Secret Manager through `google-cloud-secretmanager-v1` (feature `gcp`).
//!
//! - Names: a full resource name `projects/P/secrets/S` or `projects/P/secrets/S/versions/V` is
//!   used as is; a short id `S` (`[A-Za-z0-9_-]{1,255}`) becomes `projects/<project>/secrets/S`
//!   with the project from `GOOGLE_CLOUD_PROJECT` or the metadata server. Secret ids cannot contain
//!   `/`, so `secret:S/key` can only mean key `key` of secret `S` (JSON-key rule).
//! - Version: `?version=V` (a number or an alias) or `/versions/V` in a full name (not both);
//!   default `latest`.
//! - The payload's CRC32C (`dataCrc32c`) is verified here: the SDK does not.
//! - The SDK's retries are off (the resolver retries); each attempt has the resolver's timeout.

use std::time::Duration;

use async_trait::async_trait;
use google_cloud_gax::error::rpc::Code;
use google_cloud_gax::retry_policy::NeverRetry;
use google_cloud_secretmanager_v1::client::SecretManagerService;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The SDK crates, re-exported for callers that build their own client or credentials.
pub use {google_cloud_auth, google_cloud_secretmanager_v1};

use crate::config::GcpSettings;
use crate::error::{ErrorKind, ProviderError, SecretError};
use crate::provider::{ProviderKind, SecretProvider, strip_slash};
use crate::resolver::ResolverOptions;
use crate::value::SecretValue;

/// GCP Secret Manager provider.
#[derive(Clone)]
pub struct GcpProvider {
    client: SecretManagerService,
    project: Option<String>,
}

impl std::fmt::Debug for GcpProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GcpProvider")
            .field("project", &self.project)
            .finish_non_exhaustive()
    }
}

fn valid_secret_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn valid_segment(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// Resolve the project from the metadata server (`GCE_METADATA_HOST`, default
/// `metadata.google.internal`), within `timeout`.
pub async fn project_from_metadata(host: &str, timeout: Duration) -> Option<String> {
    let fut = async {
        let addr = if host.contains(':') {
            host.to_owned()
        } else {
            format!("{host}:80")
        };
        let mut sock = tokio::net::TcpStream::connect(addr).await.ok()?;
        let req = format!(
            "GET /computeMetadata/v1/project/project-id HTTP/1.0\r\nHost: {host}\r\nMetadata-Flavor: Google\r\n\r\n"
        );
        sock.write_all(req.as_bytes()).await.ok()?;
        let mut buf = Vec::new();
        sock.take(64 * 1024).read_to_end(&mut buf).await.ok()?;
        let text = String::from_utf8(buf).ok()?;
        let (head, body) = text.split_once("\r\n\r\n")?;
        let status_ok = head.lines().next()?.split_whitespace().nth(1)? == "200";
        let project = body.trim();
        (status_ok && valid_segment(project)).then(|| project.to_owned())
    };
    tokio::time::timeout(timeout, fut).await.ok().flatten()
}

impl GcpProvider {
    /// Application Default Credentials; project from settings, else the metadata server.
    pub async fn from_settings(
        settings: &GcpSettings,
        opts: &ResolverOptions,
    ) -> Result<Self, SecretError> {
        let mut builder = SecretManagerService::builder()
            .with_retry_policy(NeverRetry)
            .with_attempt_timeout(opts.attempt_timeout);
        if let Some(e) = &settings.endpoint {
            builder = builder.with_endpoint(e.clone());
        }
        let client = builder.build().await.map_err(|e| SecretError::Config {
            setting: "SECRETS_MANAGER=gcp".into(),
            reason: "cannot build the Secret Manager client (Application Default Credentials?)"
                .into(),
            source: Some(std::sync::Arc::new(e)),
        })?;
        let project = match &settings.project {
            Some(p) => Some(p.clone()),
            None => {
                let host = std::env::var("GCE_METADATA_HOST")
                    .unwrap_or_else(|_| "metadata.google.internal".to_owned());
                project_from_metadata(&host, Duration::from_secs(2)).await
            }
        };
        Ok(Self::from_client(client, project))
    }

    /// Over a ready client (tests: `with_endpoint(fake)` + anonymous credentials).
    pub fn from_client(client: SecretManagerService, project: Option<String>) -> Self {
        Self { client, project }
    }

    /// The project of short ids, if known.
    pub fn project(&self) -> Option<&str> {
        self.project.as_deref()
    }

    /// The client builder this provider uses, for tests and callers that build their own client.
    pub fn client_builder(
        opts: &ResolverOptions,
    ) -> google_cloud_secretmanager_v1::builder::secret_manager_service::ClientBuilder {
        SecretManagerService::builder()
            .with_retry_policy(NeverRetry)
            .with_attempt_timeout(opts.attempt_timeout)
    }
}

fn map_error(name: &str, e: google_cloud_secretmanager_v1::Error) -> ProviderError {
    let after = e
        .http_headers()
        .and_then(|h| h.get("retry-after"))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|s| Duration::from_secs(s.min(3600)));
    let (kind, what) = if let Some(status) = e.status() {
        let kind = match status.code {
            Code::NotFound | Code::FailedPrecondition => ErrorKind::NotFound,
            Code::PermissionDenied => ErrorKind::AccessDenied,
            Code::Unauthenticated => ErrorKind::Unauthenticated,
            Code::ResourceExhausted => ErrorKind::Throttled,
            Code::DeadlineExceeded => ErrorKind::Timeout,
            Code::InvalidArgument => ErrorKind::InvalidReference,
            _ => ErrorKind::Unavailable,
        };
        (kind, format!("Secret Manager answered {:?}", status.code))
    } else if e.is_timeout() {
        (ErrorKind::Timeout, "the request timed out".to_owned())
    } else if e.is_authentication() {
        (
            ErrorKind::Unauthenticated,
            "no usable credentials (Application Default Credentials)".to_owned(),
        )
    } else {
        (
            ErrorKind::Unavailable,
            "Secret Manager could not be reached".to_owned(),
        )
    };
    let http = e
        .http_status_code()
        .map(|c| format!(" (HTTP {c})"))
        .unwrap_or_default();
    ProviderError::new(kind, format!("access `{name}`: {what}{http}"))
        .with_retry_after(after)
        .with_source(e)
}

#[async_trait]
impl SecretProvider for GcpProvider {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Gcp
    }

    fn names(&self, id: &str) -> Vec<String> {
        let id = strip_slash(id);
        let segs: Vec<&str> = id.split('/').collect();
        match segs.as_slice() {
            ["projects", p, "secrets", s] if valid_segment(p) && valid_secret_id(s) => {
                vec![id.to_owned()]
            }
            ["projects", p, "secrets", s, "versions", v]
                if valid_segment(p) && valid_secret_id(s) && valid_segment(v) =>
            {
                vec![id.to_owned()]
            }
            [s] if valid_secret_id(s) => match &self.project {
                Some(p) => vec![format!("projects/{p}/secrets/{s}")],
                None => Vec::new(),
            },
            _ => Vec::new(),
        }
    }

    fn name_rules(&self) -> &'static str {
        if self.project.is_some() {
            "GCP ids are `[A-Za-z0-9_-]{1,255}` or `projects/P/secrets/S[/versions/V]`"
        } else {
            "GCP ids are `projects/P/secrets/S[/versions/V]`; short ids need GOOGLE_CLOUD_PROJECT"
        }
    }

    async fn fetch(&self, name: &str, version: Option<&str>) -> Result<SecretValue, ProviderError> {
        let full = if name.contains("/versions/") {
            if version.is_some() {
                return Err(ProviderError::new(
                    ErrorKind::InvalidReference,
                    format!("`{name}` names a version and `?version=` names another; use one"),
                ));
            }
            name.to_owned()
        } else {
            format!("{name}/versions/{}", version.unwrap_or("latest"))
        };
        let resp = self
            .client
            .access_secret_version()
            .set_name(full.clone())
            .send()
            .await
            .map_err(|e| map_error(&full, e))?;
        let Some(payload) = resp.payload else {
            return Err(ProviderError::new(
                ErrorKind::Malformed,
                format!("`{full}` was returned without a payload"),
            ));
        };
        match payload.data_crc32c {
            Some(expected) => {
                let actual = i64::from(crc32c::crc32c(&payload.data));
                if actual != expected {
                    return Err(ProviderError::new(
                        ErrorKind::Malformed,
                        format!(
                            "`{full}`: payload CRC32C mismatch (corrupted in transit or at rest)"
                        ),
                    ));
                }
            }
            None => tracing::debug!(name = %full, "GCP payload has no dataCrc32c; not verified"),
        }
        Ok(SecretValue::new(payload.data.to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn metadata_project_lookup() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let n = s.read(&mut buf).await.unwrap();
            let req = String::from_utf8_lossy(&buf[..n]).to_string();
            assert!(req.contains("Metadata-Flavor: Google"));
            s.write_all(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nmy-proj-1")
                .await
                .unwrap();
        });
        assert_eq!(
            project_from_metadata(&addr, Duration::from_secs(2))
                .await
                .as_deref(),
            Some("my-proj-1")
        );
        // Nothing listening: None, quickly.
        assert_eq!(
            project_from_metadata("127.0.0.1:9", Duration::from_secs(2)).await,
            None
        );
    }
}
