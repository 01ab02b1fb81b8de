//! Secrets from the runner's environment variables (`SECRETS_MANAGER=env`), for local use.
//!
//! `secret:<id>` reads the variable `<prefix><ID>` where ID is the id without leading slashes,
//! upper-cased, every character other than `A-Z0-9` replaced by `_`. With the default prefix
//! `RUNNER_SECRET_`, `secret:/db/creds` reads `RUNNER_SECRET_DB_CREDS`, and `secret:db/creds/user`
//! reads `RUNNER_SECRET_DB_CREDS_USER` or else key `user` of the JSON in `RUNNER_SECRET_DB_CREDS`.

use std::sync::Arc;

use async_trait::async_trait;

use crate::error::{ErrorKind, ProviderError};
use crate::provider::{ProviderKind, SecretProvider, strip_slash};
use crate::value::SecretValue;

/// Default variable prefix.
pub const DEFAULT_PREFIX: &str = "RUNNER_SECRET_";

type Lookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Environment-variable provider.
#[derive(Clone)]
pub struct EnvProvider {
    prefix: String,
    lookup: Lookup,
}

impl std::fmt::Debug for EnvProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnvProvider")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl EnvProvider {
    /// Reads the process environment.
    pub fn new(prefix: impl Into<String>) -> Self {
        Self::with_lookup(prefix, |k| std::env::var(k).ok())
    }

    /// Reads through `lookup` (tests).
    pub fn with_lookup(
        prefix: impl Into<String>,
        lookup: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        Self {
            prefix: prefix.into(),
            lookup: Arc::new(lookup),
        }
    }

    /// The variable name read for an id.
    pub fn var_name(&self, id: &str) -> String {
        let mut out = self.prefix.clone();
        out.extend(strip_slash(id).chars().map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        }));
        out
    }
}

#[async_trait]
impl SecretProvider for EnvProvider {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Env
    }

    fn names(&self, id: &str) -> Vec<String> {
        vec![self.var_name(id)]
    }

    fn name_rules(&self) -> &'static str {
        "any id; it maps to an environment variable <prefix><ID upper-cased, non-alphanumerics as _>"
    }

    async fn fetch(&self, name: &str, version: Option<&str>) -> Result<SecretValue, ProviderError> {
        if version.is_some() {
            return Err(ProviderError::new(
                ErrorKind::Unsupported,
                "the env provider has no versions; remove `?version=`",
            ));
        }
        (self.lookup)(name).map(SecretValue::new).ok_or_else(|| {
            ProviderError::new(
                ErrorKind::NotFound,
                format!("environment variable {name} is not set"),
            )
        })
    }

    async fn health(&self) -> Result<(), ProviderError> {
        Ok(())
    }
}
