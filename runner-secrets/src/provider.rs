//! The provider seam: one backend (AWS, Azure, GCP, Kubernetes, env, file, memory).

use std::fmt;

use async_trait::async_trait;

use crate::error::{ErrorKind, ProviderError};
use crate::value::SecretValue;

/// Which backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProviderKind {
    /// Kubernetes Secrets in the runner's namespace (`SECRETS_MANAGER=kubernetes`, the default).
    Kubernetes,
    /// AWS Secrets Manager (`aws` or `managed-aws`).
    Aws,
    /// Azure Key Vault (`azure-kv`).
    Azure,
    /// GCP Secret Manager (`gcp`).
    Gcp,
    /// Environment variables of the runner (`env`), for local use.
    Env,
    /// A JSON file of name -> value (`file`), for local use.
    File,
    /// In-memory map, for tests and embedding.
    Memory,
}

impl ProviderKind {
    /// The `SECRETS_MANAGER` spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Kubernetes => "kubernetes",
            Self::Aws => "aws",
            Self::Azure => "azure-kv",
            Self::Gcp => "gcp",
            Self::Env => "env",
            Self::File => "file",
            Self::Memory => "memory",
        }
    }

    /// Parse a `SECRETS_MANAGER` value (case-insensitive). Accepts `kubernetes`/`k8s`,
    /// `aws`/`managed-aws`, `azure-kv`/`azure`, `gcp`, `env`, `file`.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "kubernetes" | "k8s" => Self::Kubernetes,
            "aws" | "managed-aws" => Self::Aws,
            "azure-kv" | "azure" => Self::Azure,
            "gcp" => Self::Gcp,
            "env" => Self::Env,
            "file" => Self::File,
            _ => return None,
        })
    }

    /// The cargo feature that compiles this provider in, if it needs one.
    pub fn feature(self) -> Option<&'static str> {
        match self {
            Self::Kubernetes => Some("kubernetes"),
            Self::Aws => Some("aws"),
            Self::Azure => Some("azure"),
            Self::Gcp => Some("gcp"),
            Self::Env | Self::File | Self::Memory => None,
        }
    }

    /// Whether this build has the provider compiled in.
    pub fn is_compiled(self) -> bool {
        match self {
            Self::Kubernetes => cfg!(feature = "kubernetes"),
            Self::Aws => cfg!(feature = "aws"),
            Self::Azure => cfg!(feature = "azure"),
            Self::Gcp => cfg!(feature = "gcp"),
            Self::Env | Self::File | Self::Memory => true,
        }
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Id used by the default health check: a name no one stores, valid for every provider.
pub const HEALTH_PROBE_ID: &str = "ingestion-runner-health-probe";

/// One secrets backend. Implementations do one call per `fetch` (no retries, no cache: the
/// resolver adds those) and map their errors to an [`ErrorKind`].
#[async_trait]
pub trait SecretProvider: Send + Sync + 'static {
    /// Which backend this is.
    fn kind(&self) -> ProviderKind;

    /// The backend-native names to look up, in order, for a secret id (the whole-secret rule);
    /// empty when the id cannot name a secret in this backend (then no call is made).
    fn names(&self, id: &str) -> Vec<String>;

    /// What names this backend accepts, for error messages.
    fn name_rules(&self) -> &'static str;

    /// Read one secret by backend-native name (an element of [`SecretProvider::names`]) and
    /// optional version.
    async fn fetch(&self, name: &str, version: Option<&str>) -> Result<SecretValue, ProviderError>;

    /// Reachability and credentials check. The default reads a probe name that does not exist:
    /// "not found" and "access denied" both prove the backend answered an authenticated request.
    async fn health(&self) -> Result<(), ProviderError> {
        let Some(name) = self.names(HEALTH_PROBE_ID).into_iter().next() else {
            return Err(ProviderError::new(
                ErrorKind::Config,
                format!(
                    "cannot probe the backend: `{HEALTH_PROBE_ID}` is not a name it accepts ({})",
                    self.name_rules()
                ),
            ));
        };
        match self.fetch(&name, None).await {
            Ok(_) => Ok(()),
            Err(e) if matches!(e.kind, ErrorKind::NotFound | ErrorKind::AccessDenied) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// `id` without its leading slashes.
pub(crate) fn strip_slash(id: &str) -> &str {
    id.trim_start_matches('/')
}
