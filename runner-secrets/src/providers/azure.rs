//! Azure Key Vault through `azure_security_keyvault_secrets` + `azure_identity` (feature `azure`).
//!
//! - Vault: `AZURE_KEY_VAULT_URL`, or `https://<AZURE_KEY_VAULT_NAME>.vault.azure.net/`.
//! - Credential: workload identity when `AZURE_FEDERATED_TOKEN_FILE` is set (AKS), else a client
//!   secret when `AZURE_CLIENT_SECRET` is set (with `AZURE_TENANT_ID`, `AZURE_CLIENT_ID`), else
//!   managed identity (user-assigned when `AZURE_CLIENT_ID` is set).
//! - Names: Key Vault names are `[0-9A-Za-z-]{1,127}`. The id, without leading slashes, has `/`
//!   and `_` mapped to `-` (so `secret:/db/creds` reads `db-creds`; `a/b`, `a_b` and `a-b` are the
//!   same secret). Any other character means the id cannot name a secret (no call). The JSON-key
//!   rule splits the id before mapping: `secret:db/creds/username` tries `db-creds-username`, then
//!   key `username` of `db-creds`.
//! - `?version=V` is the Key Vault secret version (32 hex digits); default latest.
//! - The SDK's retries are off (the resolver retries, honouring Retry-After).
//! - Test seam: [`AzureProvider::with_options`] with a custom `Transport` (an in-process fake of
//!   the vault's HTTPS API) and any `TokenCredential`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use azure_core::credentials::{Secret as CredSecret, TokenCredential};
use azure_core::error::ErrorKind as AzErrorKind;
use azure_core::http::{ClientOptions, RetryOptions};
use azure_identity::{
    ClientSecretCredential, ManagedIdentityCredential, ManagedIdentityCredentialOptions,
    UserAssignedId, WorkloadIdentityCredential,
};
use azure_security_keyvault_secrets::models::SecretClientGetSecretOptions;
use azure_security_keyvault_secrets::{SecretClient, SecretClientOptions};

/// The SDK crates, re-exported for callers that build their own transport or credential.
pub use {azure_core, azure_identity, azure_security_keyvault_secrets};

use crate::config::AzureSettings;
use crate::error::{ErrorKind, ProviderError, SecretError};
use crate::provider::{ProviderKind, SecretProvider, strip_slash};
use crate::resolver::ResolverOptions;
use crate::value::SecretValue;

/// Azure Key Vault provider.
#[derive(Clone)]
pub struct AzureProvider {
    client: Arc<SecretClient>,
    vault_url: String,
}

impl std::fmt::Debug for AzureProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzureProvider")
            .field("vault_url", &self.vault_url)
            .finish_non_exhaustive()
    }
}

/// Map an id to a Key Vault secret name, or `None` when it cannot be one.
pub fn map_name(id: &str) -> Option<String> {
    let mapped: String = strip_slash(id)
        .chars()
        .map(|c| if c == '/' || c == '_' { '-' } else { c })
        .collect();
    let ok = !mapped.is_empty()
        && mapped.len() <= 127
        && mapped
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-');
    ok.then_some(mapped)
}

fn env(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.trim().is_empty())
}

fn cred_err(e: azure_core::Error, which: &str) -> SecretError {
    SecretError::Config {
        setting: which.to_owned(),
        reason: "cannot create the Azure credential".into(),
        source: Some(Arc::new(e)),
    }
}

impl AzureProvider {
    /// Vault from settings, credential from the environment (see the module docs).
    pub fn from_settings(
        settings: &AzureSettings,
        _opts: &ResolverOptions,
    ) -> Result<Self, SecretError> {
        let vault = settings.vault_url.clone().ok_or_else(|| {
            SecretError::config(
                "AZURE_KEY_VAULT_NAME",
                "set AZURE_KEY_VAULT_NAME or AZURE_KEY_VAULT_URL when SECRETS_MANAGER=azure-kv",
            )
        })?;
        let credential: Arc<dyn TokenCredential> = if env("AZURE_FEDERATED_TOKEN_FILE").is_some() {
            WorkloadIdentityCredential::new(None)
                .map_err(|e| cred_err(e, "AZURE_FEDERATED_TOKEN_FILE"))?
        } else if let Some(secret) = env("AZURE_CLIENT_SECRET") {
            let tenant = env("AZURE_TENANT_ID").ok_or_else(|| {
                SecretError::config("AZURE_TENANT_ID", "required with AZURE_CLIENT_SECRET")
            })?;
            let client = env("AZURE_CLIENT_ID").ok_or_else(|| {
                SecretError::config("AZURE_CLIENT_ID", "required with AZURE_CLIENT_SECRET")
            })?;
            ClientSecretCredential::new(&tenant, client, CredSecret::new(secret), None)
                .map_err(|e| cred_err(e, "AZURE_CLIENT_SECRET"))?
        } else {
            let options = ManagedIdentityCredentialOptions {
                user_assigned_id: env("AZURE_CLIENT_ID").map(UserAssignedId::ClientId),
                ..Default::default()
            };
            ManagedIdentityCredential::new(Some(options))
                .map_err(|e| cred_err(e, "AZURE_CLIENT_ID"))?
        };
        Self::with_options(&vault, credential, ClientOptions::default())
    }

    /// Over any credential and client options (tests pass a custom `transport`). The SDK's
    /// retries are turned off here.
    pub fn with_options(
        vault_url: &str,
        credential: Arc<dyn TokenCredential>,
        mut client_options: ClientOptions,
    ) -> Result<Self, SecretError> {
        client_options.retry = RetryOptions::none();
        let options = SecretClientOptions {
            client_options,
            ..Default::default()
        };
        let client = SecretClient::new(vault_url, credential, Some(options)).map_err(|e| {
            SecretError::Config {
                setting: "AZURE_KEY_VAULT_URL".into(),
                reason: format!("`{vault_url}` is not a usable vault URL"),
                source: Some(Arc::new(e)),
            }
        })?;
        Ok(Self {
            client: Arc::new(client),
            vault_url: vault_url.to_owned(),
        })
    }
}

fn map_error(name: &str, e: azure_core::Error) -> ProviderError {
    let (kind, what, after) = match e.kind() {
        AzErrorKind::HttpResponse {
            status,
            error_code,
            raw_response,
        } => {
            let code = u16::from(*status);
            let after = raw_response
                .as_ref()
                .and_then(|r| {
                    r.headers()
                        .get_optional_str(&azure_core::http::headers::RETRY_AFTER)
                        .map(str::to_owned)
                })
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(|s| Duration::from_secs(s.min(3600)));
            let kind = match code {
                404 => ErrorKind::NotFound,
                403 => ErrorKind::AccessDenied,
                401 => ErrorKind::Unauthenticated,
                429 => ErrorKind::Throttled,
                // Key Vault answers 400 for a name it cannot hold.
                400 => ErrorKind::NotFound,
                _ => ErrorKind::Unavailable,
            };
            let ec = error_code.clone().unwrap_or_default();
            (kind, format!("Key Vault answered HTTP {code} {ec}"), after)
        }
        AzErrorKind::Credential => (
            ErrorKind::Unauthenticated,
            "no Azure token could be obtained".to_owned(),
            None,
        ),
        AzErrorKind::Connection | AzErrorKind::Io => (
            ErrorKind::Unavailable,
            "Key Vault could not be reached".to_owned(),
            None,
        ),
        _ => (
            ErrorKind::Unavailable,
            "the Key Vault request failed".to_owned(),
            None,
        ),
    };
    ProviderError::new(kind, format!("get secret `{name}`: {}", what.trim_end()))
        .with_retry_after(after)
        .with_source(e)
}

#[async_trait]
impl SecretProvider for AzureProvider {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Azure
    }

    fn names(&self, id: &str) -> Vec<String> {
        map_name(id).into_iter().collect()
    }

    fn name_rules(&self) -> &'static str {
        "Key Vault names are [0-9A-Za-z-] (after mapping `/` and `_` to `-`), at most 127 characters"
    }

    async fn fetch(&self, name: &str, version: Option<&str>) -> Result<SecretValue, ProviderError> {
        let options = SecretClientGetSecretOptions {
            secret_version: version.map(ToOwned::to_owned),
            ..Default::default()
        };
        let resp = self
            .client
            .get_secret(name, Some(options))
            .await
            .map_err(|e| map_error(name, e))?;
        let secret = resp.into_model().map_err(|e| {
            ProviderError::new(
                ErrorKind::Malformed,
                format!("get secret `{name}`: the answer is not a Key Vault secret"),
            )
            .with_source(e)
        })?;
        secret
            .value
            .map(|v| SecretValue::new(v.into_bytes()))
            .ok_or_else(|| {
                ProviderError::new(
                    ErrorKind::Malformed,
                    format!("secret `{name}` has no value"),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_mapping() {
        assert_eq!(map_name("/db/creds").as_deref(), Some("db-creds"));
        assert_eq!(map_name("db_creds-1").as_deref(), Some("db-creds-1"));
        assert_eq!(map_name("db.creds"), None);
        assert_eq!(map_name(&"a".repeat(128)), None);
    }
}
