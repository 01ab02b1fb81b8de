//! Configuration from the environment and construction of the selected provider.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::error::SecretError;
use crate::provider::{ProviderKind, SecretProvider};
use crate::providers::{env::EnvProvider, file::FileProvider};
use crate::resolver::{ResolverOptions, SecretResolver};

/// AWS Secrets Manager settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AwsSettings {
    /// `AWS_REGION`, else `AWS_DEFAULT_REGION`, else the SDK's chain (profile, IMDS).
    pub region: Option<String>,
    /// `AWS_ENDPOINT_URL_SECRETS_MANAGER`, else `AWS_ENDPOINT_URL` (emulators such as moto).
    pub endpoint_url: Option<String>,
}

/// Azure Key Vault settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AzureSettings {
    /// `AZURE_KEY_VAULT_URL`, else `https://<AZURE_KEY_VAULT_NAME>.vault.azure.net/`.
    pub vault_url: Option<String>,
}

/// GCP Secret Manager settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcpSettings {
    /// `GOOGLE_CLOUD_PROJECT` (else `GCLOUD_PROJECT`): the project of short secret ids.
    pub project: Option<String>,
    /// `SECRETS_GCP_ENDPOINT` (tests/emulators), else Google's endpoint.
    pub endpoint: Option<String>,
}

/// Kubernetes settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KubernetesSettings {
    /// `SECRETS_KUBERNETES_NAMESPACE`, else the client's default namespace (in a pod: its own).
    pub namespace: Option<String>,
}

/// Everything needed to build a [`SecretResolver`]. Fill it with [`SecretsConfig::from_env`] or by
/// hand; `Default` is the kubernetes provider with default options.
#[derive(Debug, Clone)]
pub struct SecretsConfig {
    /// `SECRETS_MANAGER`.
    pub manager: ProviderKind,
    /// Cache, retries, allow-list.
    pub resolver: ResolverOptions,
    /// AWS.
    pub aws: AwsSettings,
    /// Azure.
    pub azure: AzureSettings,
    /// GCP.
    pub gcp: GcpSettings,
    /// Kubernetes.
    pub kubernetes: KubernetesSettings,
    /// `SECRETS_ENV_PREFIX` for the env provider (default `RUNNER_SECRET_`).
    pub env_prefix: String,
    /// `SECRETS_FILE` for the file provider.
    pub file_path: Option<PathBuf>,
}

impl Default for SecretsConfig {
    fn default() -> Self {
        Self {
            manager: ProviderKind::Kubernetes,
            resolver: ResolverOptions::default(),
            aws: AwsSettings::default(),
            azure: AzureSettings::default(),
            gcp: GcpSettings::default(),
            kubernetes: KubernetesSettings::default(),
            env_prefix: crate::providers::env::DEFAULT_PREFIX.to_owned(),
            file_path: None,
        }
    }
}

fn non_empty(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

fn parse_secs(
    lookup: &dyn Fn(&str) -> Option<String>,
    var: &str,
    default: Duration,
) -> Result<Duration, SecretError> {
    match non_empty(lookup(var)) {
        None => Ok(default),
        Some(s) => s
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v >= 0.0 && *v < 1e9)
            .map(Duration::from_secs_f64)
            .ok_or_else(|| SecretError::config(var, format!("`{s}` is not a number of seconds"))),
    }
}

fn parse_count(
    lookup: &dyn Fn(&str) -> Option<String>,
    var: &str,
    default: usize,
    min: usize,
) -> Result<usize, SecretError> {
    match non_empty(lookup(var)) {
        None => Ok(default),
        Some(s) => s
            .parse::<usize>()
            .ok()
            .filter(|v| *v >= min)
            .ok_or_else(|| SecretError::config(var, format!("`{s}` is not an integer >= {min}"))),
    }
}

impl SecretsConfig {
    /// Read the process environment (see docs/secrets.md for every variable and its default).
    pub fn from_env() -> Result<Self, SecretError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Read settings through `lookup` (a map in tests, the environment in [`Self::from_env`]).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SecretError> {
        let lookup: &dyn Fn(&str) -> Option<String> = &lookup;
        let d = ResolverOptions::default();
        let manager = match non_empty(lookup("SECRETS_MANAGER")) {
            None => ProviderKind::Kubernetes,
            Some(s) => ProviderKind::parse(&s).ok_or_else(|| {
                SecretError::config(
                    "SECRETS_MANAGER",
                    format!(
                        "`{s}` is not one of kubernetes, aws, managed-aws, azure-kv, gcp, env, file"
                    ),
                )
            })?,
        };
        let allowed_prefixes = non_empty(lookup("SECRETS_ALLOWED_PREFIXES"))
            .map(|s| {
                s.split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(ToOwned::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let resolver = ResolverOptions {
            allowed_prefixes,
            cache_ttl: parse_secs(lookup, "SECRETS_CACHE_TTL_SECONDS", d.cache_ttl)?,
            cache_max_entries: parse_count(
                lookup,
                "SECRETS_CACHE_MAX_ENTRIES",
                d.cache_max_entries,
                1,
            )?,
            stale_grace: parse_secs(lookup, "SECRETS_STALE_GRACE_SECONDS", d.stale_grace)?,
            max_concurrency: parse_count(lookup, "SECRETS_MAX_CONCURRENCY", d.max_concurrency, 1)?,
            attempt_timeout: parse_secs(lookup, "SECRETS_TIMEOUT_SECONDS", d.attempt_timeout)?,
            max_attempts: u32::try_from(parse_count(
                lookup,
                "SECRETS_MAX_ATTEMPTS",
                d.max_attempts as usize,
                1,
            )?)
            .unwrap_or(u32::MAX)
            .min(10),
            ..d
        };
        let vault_url = match (
            non_empty(lookup("AZURE_KEY_VAULT_URL")),
            non_empty(lookup("AZURE_KEY_VAULT_NAME")),
        ) {
            (Some(url), _) => Some(url),
            (None, Some(name)) if name.starts_with("https://") => Some(name),
            (None, Some(name)) => {
                if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                    return Err(SecretError::config(
                        "AZURE_KEY_VAULT_NAME",
                        format!("`{name}` is not a vault name (letters, digits, `-`)"),
                    ));
                }
                Some(format!("https://{name}.vault.azure.net/"))
            }
            (None, None) => None,
        };
        Ok(Self {
            manager,
            resolver,
            aws: AwsSettings {
                region: non_empty(lookup("AWS_REGION"))
                    .or_else(|| non_empty(lookup("AWS_DEFAULT_REGION"))),
                endpoint_url: non_empty(lookup("AWS_ENDPOINT_URL_SECRETS_MANAGER"))
                    .or_else(|| non_empty(lookup("AWS_ENDPOINT_URL"))),
            },
            azure: AzureSettings { vault_url },
            gcp: GcpSettings {
                project: non_empty(lookup("GOOGLE_CLOUD_PROJECT"))
                    .or_else(|| non_empty(lookup("GCLOUD_PROJECT"))),
                endpoint: non_empty(lookup("SECRETS_GCP_ENDPOINT")),
            },
            kubernetes: KubernetesSettings {
                namespace: non_empty(lookup("SECRETS_KUBERNETES_NAMESPACE")),
            },
            env_prefix: non_empty(lookup("SECRETS_ENV_PREFIX"))
                .unwrap_or_else(|| crate::providers::env::DEFAULT_PREFIX.to_owned()),
            file_path: non_empty(lookup("SECRETS_FILE")).map(PathBuf::from),
        })
    }

    /// Build the provider selected by `manager`. Fails with
    /// [`SecretError::ProviderNotCompiled`] when its cargo feature is off, and with
    /// [`SecretError::Config`] when a required setting is missing.
    pub async fn build_provider(&self) -> Result<Arc<dyn SecretProvider>, SecretError> {
        if !self.manager.is_compiled() {
            return Err(SecretError::ProviderNotCompiled {
                provider: self.manager,
                feature: self.manager.feature().unwrap_or("?"),
            });
        }
        match self.manager {
            ProviderKind::Env => Ok(Arc::new(EnvProvider::new(self.env_prefix.clone()))),
            ProviderKind::File => {
                let path = self.file_path.clone().ok_or_else(|| {
                    SecretError::config("SECRETS_FILE", "required when SECRETS_MANAGER=file")
                })?;
                Ok(Arc::new(FileProvider::new(path)))
            }
            ProviderKind::Memory => Ok(Arc::new(crate::providers::memory::MemoryProvider::new())),
            #[cfg(feature = "aws")]
            ProviderKind::Aws => Ok(Arc::new(
                crate::providers::aws::AwsProvider::from_settings(&self.aws, &self.resolver)
                    .await?,
            )),
            #[cfg(feature = "azure")]
            ProviderKind::Azure => Ok(Arc::new(
                crate::providers::azure::AzureProvider::from_settings(&self.azure, &self.resolver)?,
            )),
            #[cfg(feature = "gcp")]
            ProviderKind::Gcp => Ok(Arc::new(
                crate::providers::gcp::GcpProvider::from_settings(&self.gcp, &self.resolver)
                    .await?,
            )),
            #[cfg(feature = "kubernetes")]
            ProviderKind::Kubernetes => Ok(Arc::new(
                crate::providers::kubernetes::KubernetesProvider::from_settings(&self.kubernetes)
                    .await?,
            )),
            #[allow(unreachable_patterns)]
            other => Err(SecretError::ProviderNotCompiled {
                provider: other,
                feature: other.feature().unwrap_or("?"),
            }),
        }
    }

    /// Build the provider and a resolver over it.
    pub async fn build_resolver(&self) -> Result<SecretResolver, SecretError> {
        let provider = self.build_provider().await?;
        Ok(SecretResolver::new(provider, self.resolver.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(vars: &[(&str, &str)]) -> Result<SecretsConfig, SecretError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        SecretsConfig::from_lookup(move |k| map.get(k).cloned())
    }

    #[test]
    fn defaults() {
        let c = cfg(&[]).unwrap();
        assert_eq!(c.manager, ProviderKind::Kubernetes);
        assert!(c.resolver.allowed_prefixes.is_empty());
        assert_eq!(c.resolver.cache_ttl, Duration::from_secs(300));
        assert_eq!(c.env_prefix, "RUNNER_SECRET_");
    }

    #[test]
    fn reads_every_setting() {
        let c = cfg(&[
            ("SECRETS_MANAGER", "managed-aws"),
            ("SECRETS_ALLOWED_PREFIXES", " prod/ , /team-a/,"),
            ("SECRETS_CACHE_TTL_SECONDS", "60"),
            ("SECRETS_CACHE_MAX_ENTRIES", "10"),
            ("SECRETS_STALE_GRACE_SECONDS", "0"),
            ("SECRETS_MAX_CONCURRENCY", "2"),
            ("SECRETS_TIMEOUT_SECONDS", "1.5"),
            ("SECRETS_MAX_ATTEMPTS", "3"),
            ("AWS_DEFAULT_REGION", "eu-west-1"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
            ("AZURE_KEY_VAULT_NAME", "my-vault"),
            ("GCLOUD_PROJECT", "p1"),
            ("SECRETS_KUBERNETES_NAMESPACE", "ingest"),
            ("SECRETS_FILE", "/tmp/s.json"),
        ])
        .unwrap();
        assert_eq!(c.manager, ProviderKind::Aws);
        assert_eq!(c.resolver.allowed_prefixes, vec!["prod/", "/team-a/"]);
        assert_eq!(c.resolver.cache_ttl, Duration::from_secs(60));
        assert_eq!(c.resolver.cache_max_entries, 10);
        assert_eq!(c.resolver.stale_grace, Duration::ZERO);
        assert_eq!(c.resolver.max_concurrency, 2);
        assert_eq!(c.resolver.attempt_timeout, Duration::from_millis(1500));
        assert_eq!(c.resolver.max_attempts, 3);
        assert_eq!(c.aws.region.as_deref(), Some("eu-west-1"));
        assert_eq!(c.aws.endpoint_url.as_deref(), Some("http://127.0.0.1:5000"));
        assert_eq!(
            c.azure.vault_url.as_deref(),
            Some("https://my-vault.vault.azure.net/")
        );
        assert_eq!(c.gcp.project.as_deref(), Some("p1"));
        assert_eq!(c.kubernetes.namespace.as_deref(), Some("ingest"));
        assert_eq!(c.file_path, Some(PathBuf::from("/tmp/s.json")));
    }

    #[test]
    fn rejects_bad_values_naming_the_variable() {
        for (k, v) in [
            ("SECRETS_MANAGER", "vault"),
            ("SECRETS_CACHE_TTL_SECONDS", "soon"),
            ("SECRETS_MAX_CONCURRENCY", "0"),
            ("AZURE_KEY_VAULT_NAME", "a b"),
        ] {
            let e = cfg(&[(k, v)]).unwrap_err();
            assert!(e.to_string().contains(k), "{e}");
        }
    }

    #[tokio::test]
    async fn builds_a_working_resolver_from_settings() {
        let dir = std::env::temp_dir().join(format!("runner-secrets-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.json");
        std::fs::write(&path, r#"{"team-a/db": {"user": "u"}, "other": "x"}"#).unwrap();
        let c = cfg(&[
            ("SECRETS_MANAGER", "file"),
            ("SECRETS_FILE", path.to_str().unwrap()),
            ("SECRETS_ALLOWED_PREFIXES", "team-a/"),
        ])
        .unwrap();
        let r = c.build_resolver().await.unwrap();
        assert_eq!(r.provider_kind(), ProviderKind::File);
        r.health().await.unwrap();
        let res = r.resolve_str("secret:/team-a/db/user").await.unwrap();
        assert_eq!(res.value.expose_str(), Some("u"));
        let e = r.resolve_str("secret:other").await.unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::NotAllowed);
        std::fs::remove_dir_all(&dir).unwrap();

        let c = cfg(&[("SECRETS_MANAGER", "env"), ("SECRETS_ENV_PREFIX", "X_")]).unwrap();
        let r = c.build_resolver().await.unwrap();
        assert_eq!(r.provider_kind(), ProviderKind::Env);
    }

    #[tokio::test]
    async fn uncompiled_provider_is_a_clear_error() {
        for m in ["aws", "azure-kv", "gcp", "kubernetes"] {
            let c = cfg(&[("SECRETS_MANAGER", m)]).unwrap();
            if c.manager.is_compiled() {
                continue;
            }
            let e = c.build_provider().await.err().unwrap();
            assert!(matches!(e, SecretError::ProviderNotCompiled { .. }));
            assert!(e.to_string().contains("feature"), "{e}");
        }
        let e = cfg(&[("SECRETS_MANAGER", "file")])
            .unwrap()
            .build_provider()
            .await
            .err()
            .unwrap();
        assert!(e.to_string().contains("SECRETS_FILE"), "{e}");
    }
}
