//! The error type callers branch on.
//!
//! Every error names the reference it is about (the `secret:` string, never a value), the provider,
//! the rules that were tried, the cause, and what to do about it. A wrapped provider/SDK error is
//! kept in [`std::error::Error::source`] and is *not* repeated in the message.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::provider::ProviderKind;

/// Shared, clonable boxed error (errors are shared between concurrent waiters of one fetch).
pub type BoxError = Arc<dyn StdError + Send + Sync + 'static>;

/// What went wrong, as a value a program can branch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The reference itself is not valid (`secret:` grammar, a name the provider cannot hold).
    InvalidReference,
    /// The reference is outside `SECRETS_ALLOWED_PREFIXES`.
    NotAllowed,
    /// No secret under any name the resolution rule tried.
    NotFound,
    /// The parent secret exists but the key is not in its JSON object (or is `null`).
    KeyMissing,
    /// The secret exists but its content cannot be used: not JSON when a key was asked for,
    /// not UTF-8 where text is needed, payload checksum mismatch.
    Malformed,
    /// The backend refused: the runner's identity may not read this secret.
    AccessDenied,
    /// The backend did not accept the runner's credentials at all.
    Unauthenticated,
    /// The backend throttled us and retries did not get through.
    Throttled,
    /// The backend could not be reached or failed (network, 5xx) after retries.
    Unavailable,
    /// The backend did not answer within the configured timeout.
    Timeout,
    /// The provider was not compiled into this build (cargo feature off), or cannot do what was asked.
    Unsupported,
    /// The secrets configuration (environment) is invalid.
    Config,
}

impl ErrorKind {
    /// Worth retrying (with backoff) and worth serving a stale cached value for.
    pub fn is_transient(self) -> bool {
        matches!(self, Self::Throttled | Self::Unavailable | Self::Timeout)
    }

    /// Short lowercase label (`not_found`, `access_denied`, ...), stable for metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidReference => "invalid_reference",
            Self::NotAllowed => "not_allowed",
            Self::NotFound => "not_found",
            Self::KeyMissing => "key_missing",
            Self::Malformed => "malformed",
            Self::AccessDenied => "access_denied",
            Self::Unauthenticated => "unauthenticated",
            Self::Throttled => "throttled",
            Self::Unavailable => "unavailable",
            Self::Timeout => "timeout",
            Self::Unsupported => "unsupported",
            Self::Config => "config",
        }
    }

    /// The operator's fix for this kind of failure.
    pub fn fix(self) -> &'static str {
        match self {
            Self::InvalidReference => {
                "write the reference as `secret:<id>` or `secret:<id>?version=<v>` (see docs/secrets.md)"
            }
            Self::NotAllowed => {
                "use a secret under an allowed prefix, or add its prefix to SECRETS_ALLOWED_PREFIXES on the runner"
            }
            Self::NotFound => {
                "verify the path in the secrets manager (name, region/vault/project/namespace) and the runner's SECRETS_MANAGER setting"
            }
            Self::KeyMissing => {
                "verify the key: the last path segment must be a key of the JSON object stored in the secret"
            }
            Self::Malformed => {
                "store the secret as a JSON object of keys (for `secret:<path>/<key>`) or as plain UTF-8 text"
            }
            Self::AccessDenied => {
                "verify path and permissions in the secrets manager: grant the runner's identity read access to this secret"
            }
            Self::Unauthenticated => {
                "verify the runner's cloud credentials (service account / workload identity / access keys)"
            }
            Self::Throttled => {
                "the secrets manager is throttling the runner: retry later or raise its request quota"
            }
            Self::Unavailable => {
                "check network access from the runner to the secrets manager endpoint and its status"
            }
            Self::Timeout => {
                "check network access to the secrets manager endpoint, or raise SECRETS_TIMEOUT_SECONDS"
            }
            Self::Unsupported => {
                "use a runner build with this provider's feature enabled, or another SECRETS_MANAGER"
            }
            Self::Config => "fix the runner's secrets settings (see docs/secrets.md)",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error of one provider call (before the resolver adds the reference and rule context).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct ProviderError {
    /// What went wrong.
    pub kind: ErrorKind,
    /// Our description of it (never a secret value, never the source's text again).
    pub message: String,
    /// The server asked us to wait this long (Retry-After), if it said so.
    pub retry_after: Option<Duration>,
    /// The wrapped SDK / transport error.
    #[source]
    pub source: Option<BoxError>,
}

impl ProviderError {
    /// A provider error without a wrapped source.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            retry_after: None,
            source: None,
        }
    }

    /// Attach the wrapped error.
    pub fn with_source(mut self, source: impl StdError + Send + Sync + 'static) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    /// Attach a server-requested delay.
    pub fn with_retry_after(mut self, after: Option<Duration>) -> Self {
        self.retry_after = after;
        self
    }
}

/// The crate's error.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// The string is not a valid `secret:` reference.
    #[error("invalid secret reference `{reference}`: {reason}; fix: {fix}", fix = ErrorKind::InvalidReference.fix())]
    InvalidReference {
        /// The offending string, truncated to 200 chars.
        reference: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The reference is outside the allow-list.
    #[error(
        "secret reference `{reference}` is refused: its id is not under SECRETS_ALLOWED_PREFIXES [{allowed}]; fix: {fix}",
        fix = ErrorKind::NotAllowed.fix()
    )]
    NotAllowed {
        /// The reference.
        reference: String,
        /// The configured prefixes, comma-separated.
        allowed: String,
    },

    /// Resolution through the provider failed.
    #[error("secret reference `{reference}` not resolved by provider {provider}: {cause} (tried: {tried}); fix: {fix}", fix = kind.fix())]
    Resolve {
        /// The reference.
        reference: String,
        /// Which provider was asked.
        provider: ProviderKind,
        /// The category.
        kind: ErrorKind,
        /// The names/rules tried, in order (e.g. "secret `a/b/c`, key `c` of JSON secret `a/b`").
        tried: String,
        /// What went wrong (never a secret value).
        cause: String,
        /// The provider / SDK error, if any.
        #[source]
        source: Option<BoxError>,
    },

    /// A reachability check of the backend failed.
    #[error("secrets provider {provider} health check failed: {cause}; fix: {fix}", fix = kind.fix())]
    Health {
        /// The provider.
        provider: ProviderKind,
        /// The category.
        kind: ErrorKind,
        /// What went wrong.
        cause: String,
        /// The provider / SDK error, if any.
        #[source]
        source: Option<BoxError>,
    },

    /// `SECRETS_MANAGER` names a provider whose cargo feature is off in this build.
    #[error(
        "secrets provider `{provider}` is not compiled into this build (cargo feature `{feature}` of runner-secrets is off); fix: {fix}",
        fix = ErrorKind::Unsupported.fix()
    )]
    ProviderNotCompiled {
        /// The provider asked for.
        provider: ProviderKind,
        /// The feature that enables it.
        feature: &'static str,
    },

    /// A config document (YAML/JSON text) could not be parsed.
    #[error(
        "the {format} config could not be parsed: {reason}; fix: pass a valid {format} document"
    )]
    InvalidDocument {
        /// `YAML` or `JSON`.
        format: &'static str,
        /// The parser's description (the document holds references, not values).
        reason: String,
    },

    /// Invalid secrets configuration.
    #[error("invalid secrets configuration: {setting}: {reason}; fix: {fix}", fix = ErrorKind::Config.fix())]
    Config {
        /// The setting (environment variable) concerned.
        setting: String,
        /// What is wrong.
        reason: String,
        /// A wrapped error, if any.
        #[source]
        source: Option<BoxError>,
    },
}

impl SecretError {
    /// The category, for callers that branch.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidReference { .. } => ErrorKind::InvalidReference,
            Self::NotAllowed { .. } => ErrorKind::NotAllowed,
            Self::Resolve { kind, .. } | Self::Health { kind, .. } => *kind,
            Self::ProviderNotCompiled { .. } => ErrorKind::Unsupported,
            Self::Config { .. } => ErrorKind::Config,
            Self::InvalidDocument { .. } => ErrorKind::Malformed,
        }
    }

    /// The reference this error is about, when it is about one.
    pub fn reference(&self) -> Option<&str> {
        match self {
            Self::InvalidReference { reference, .. }
            | Self::NotAllowed { reference, .. }
            | Self::Resolve { reference, .. } => Some(reference),
            _ => None,
        }
    }

    /// The operator's fix.
    pub fn fix(&self) -> &'static str {
        self.kind().fix()
    }

    pub(crate) fn config(setting: &str, reason: impl Into<String>) -> Self {
        Self::Config {
            setting: setting.to_owned(),
            reason: reason.into(),
            source: None,
        }
    }

    pub(crate) fn invalid(reference: &str, reason: impl Into<String>) -> Self {
        let mut r: String = reference.chars().take(200).collect();
        if r.len() < reference.len() {
            r.push('…');
        }
        Self::InvalidReference {
            reference: r,
            reason: reason.into(),
        }
    }
}
