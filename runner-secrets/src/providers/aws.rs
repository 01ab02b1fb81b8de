//! AWS Secrets Manager through `aws-sdk-secretsmanager` (feature `aws`).
//!
//! - Credentials and region: the SDK's default chain (env, profile, web identity / IRSA, ECS,
//!   IMDS); region and endpoint may be set by [`AwsSettings`] (endpoint override for moto).
//! - The SDK's own retries are off (the resolver retries with backoff and Retry-After) and every
//!   call has connect/attempt/operation timeouts equal to the resolver's attempt timeout.
//! - Names: as written, then without a leading slash; ARNs as written. Characters outside
//!   AWS's name charset `[A-Za-z0-9/_+=.@-]` mean "cannot exist" (no call).
//! - `?version=V`: a UUID-shaped V (32-64 hex digits and dashes) is a `VersionId`, anything else
//!   a `VersionStage` (`AWSCURRENT`, `AWSPREVIOUS`, custom labels).
//! - `SecretString` is the value; else `SecretBinary`'s bytes.

use std::time::Duration;

use async_trait::async_trait;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, ConfigLoader, Region, SdkConfig};
use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::config::http::HttpResponse;
use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};

use crate::config::AwsSettings;
use crate::error::{ErrorKind, ProviderError, SecretError};
use crate::provider::{ProviderKind, SecretProvider};
use crate::resolver::ResolverOptions;
use crate::value::SecretValue;

/// AWS Secrets Manager provider.
#[derive(Debug, Clone)]
pub struct AwsProvider {
    client: Client,
}

/// Whether a `?version=` value is a VersionId (else it is a stage label).
pub fn is_version_id(v: &str) -> bool {
    (32..=64).contains(&v.len()) && v.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

fn valid_name(name: &str) -> bool {
    if name.starts_with("arn:") {
        return name.len() <= 2048 && name.contains(":secret:");
    }
    !name.is_empty()
        && name.len() <= 512
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/_+=.@-".contains(c))
}

impl AwsProvider {
    /// Build from settings, with the SDK's default chain for everything not set.
    pub async fn from_settings(
        settings: &AwsSettings,
        opts: &ResolverOptions,
    ) -> Result<Self, SecretError> {
        Self::from_settings_and_loader(
            settings,
            opts,
            aws_config::defaults(BehaviorVersion::latest()),
        )
        .await
    }

    /// Like [`Self::from_settings`] on a caller-prepared loader (tests set static credentials).
    pub async fn from_settings_and_loader(
        settings: &AwsSettings,
        opts: &ResolverOptions,
        mut loader: ConfigLoader,
    ) -> Result<Self, SecretError> {
        let t = opts.attempt_timeout;
        loader = loader.retry_config(RetryConfig::disabled()).timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(t.min(Duration::from_secs(3)))
                .operation_attempt_timeout(t)
                .operation_timeout(t)
                .build(),
        );
        if let Some(region) = &settings.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(endpoint) = &settings.endpoint_url {
            if url::Url::parse(endpoint).is_err() {
                return Err(SecretError::config(
                    "AWS_ENDPOINT_URL_SECRETS_MANAGER",
                    format!("`{endpoint}` is not a URL"),
                ));
            }
            loader = loader.endpoint_url(endpoint.clone());
        }
        let conf = loader.load().await;
        if conf.region().is_none() {
            return Err(SecretError::config(
                "AWS_REGION",
                "no AWS region found (set AWS_REGION, a profile region, or run where IMDS answers)",
            ));
        }
        Ok(Self::from_sdk_config(&conf))
    }

    /// From a loaded SDK config as is.
    pub fn from_sdk_config(conf: &SdkConfig) -> Self {
        Self {
            client: Client::new(conf),
        }
    }

    /// From a ready client.
    pub fn from_client(client: Client) -> Self {
        Self { client }
    }

    /// The SDK client.
    pub fn client(&self) -> &Client {
        &self.client
    }
}

fn retry_after(raw: &HttpResponse) -> Option<Duration> {
    raw.headers()
        .get("retry-after")
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(|s| Duration::from_secs_f64(s.min(3600.0)))
}

fn map_error<E>(name: &str, err: SdkError<E, HttpResponse>) -> ProviderError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let (status, after) = match err.raw_response() {
        Some(raw) => (Some(raw.status().as_u16()), retry_after(raw)),
        None => (None, None),
    };
    let (kind, what) = match &err {
        SdkError::TimeoutError(_) => (ErrorKind::Timeout, "the request timed out".to_owned()),
        SdkError::DispatchFailure(d) if d.is_timeout() => {
            (ErrorKind::Timeout, "the request timed out".to_owned())
        }
        SdkError::DispatchFailure(_) => (
            ErrorKind::Unavailable,
            "the request could not be sent (network, TLS or credentials)".to_owned(),
        ),
        SdkError::ConstructionFailure(_) => (
            ErrorKind::Unavailable,
            "the request could not be built (credentials or configuration)".to_owned(),
        ),
        SdkError::ServiceError(se) => {
            let code = se.err().code().unwrap_or("unknown error").to_owned();
            let kind = match code.as_str() {
                "ResourceNotFoundException" => ErrorKind::NotFound,
                // Marked for deletion, or a name AWS refuses: it cannot be read under this name.
                "InvalidRequestException" | "InvalidParameterException" | "ValidationException" => {
                    ErrorKind::NotFound
                }
                "AccessDeniedException" | "DecryptionFailure" | "AccessDenied" => {
                    ErrorKind::AccessDenied
                }
                "UnrecognizedClientException"
                | "InvalidSignatureException"
                | "ExpiredTokenException"
                | "InvalidClientTokenId"
                | "IncompleteSignature"
                | "MissingAuthenticationToken" => ErrorKind::Unauthenticated,
                "ThrottlingException"
                | "TooManyRequestsException"
                | "RequestLimitExceeded"
                | "Throttling" => ErrorKind::Throttled,
                "InternalServiceError" | "InternalFailure" | "ServiceUnavailable" => {
                    ErrorKind::Unavailable
                }
                _ => match status {
                    Some(429) => ErrorKind::Throttled,
                    Some(s) if s >= 500 => ErrorKind::Unavailable,
                    Some(401) => ErrorKind::Unauthenticated,
                    Some(403) => ErrorKind::AccessDenied,
                    _ => ErrorKind::Unavailable,
                },
            };
            (kind, format!("AWS answered {code}"))
        }
        SdkError::ResponseError(_) => (
            ErrorKind::Unavailable,
            "the response could not be read".to_owned(),
        ),
        _ => (ErrorKind::Unavailable, "the request failed".to_owned()),
    };
    let status = status.map(|s| format!(" (HTTP {s})")).unwrap_or_default();
    ProviderError::new(kind, format!("GetSecretValue `{name}`: {what}{status}"))
        .with_retry_after(after)
        .with_source(err)
}

#[async_trait]
impl SecretProvider for AwsProvider {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Aws
    }

    fn names(&self, id: &str) -> Vec<String> {
        super::slash_variants(id)
            .into_iter()
            .filter(|n| valid_name(n))
            .collect()
    }

    fn name_rules(&self) -> &'static str {
        "AWS names use [A-Za-z0-9/_+=.@-], at most 512 characters, or a full ARN"
    }

    async fn fetch(&self, name: &str, version: Option<&str>) -> Result<SecretValue, ProviderError> {
        let mut req = self.client.get_secret_value().secret_id(name);
        if let Some(v) = version {
            req = if is_version_id(v) {
                req.version_id(v)
            } else {
                req.version_stage(v)
            };
        }
        let out = req.send().await.map_err(|e| map_error(name, e))?;
        if let Some(s) = out.secret_string() {
            return Ok(SecretValue::new(s.as_bytes()));
        }
        if let Some(b) = out.secret_binary() {
            return Ok(SecretValue::new(b.as_ref()));
        }
        Err(ProviderError::new(
            ErrorKind::Malformed,
            format!("secret `{name}` has neither SecretString nor SecretBinary"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_id_vs_stage() {
        assert!(is_version_id(
            "a1b2c3d4-5678-90ab-cdef-EXAMPLE11111"
                .replace("EXAMPLE", "abcdef1")
                .as_str()
        ));
        assert!(!is_version_id("AWSPREVIOUS"));
        assert!(!is_version_id("AWSCURRENT"));
    }

    #[test]
    fn names() {
        assert!(valid_name("my/db+x=y.z@w-1_2"));
        assert!(!valid_name("my db"));
        assert!(!valid_name("a#b"));
        assert!(valid_name("arn:aws:secretsmanager:us-east-1:1:secret:x"));
    }
}
