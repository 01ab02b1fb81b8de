//! Kubernetes Secrets through `kube` + `k8s-openapi` (feature `kubernetes`).
//!
//! - `secret:<name>` reads the Secret `<name>` (leading slashes removed) in the runner's namespace
//!   (or `SECRETS_KUBERNETES_NAMESPACE`): its data key `value`. A Secret without a `value` key has
//!   as its value the JSON object of its data keys (UTF-8 values only), so `secret:<name>/<key>`
//!   reads data key `<key>` of an ordinary multi-key Secret through the JSON-key rule, and
//!   `secret:<name>/<key>` also reads key `<key>` of JSON stored under `value`.
//! - Names must be DNS-1123 subdomains (`[a-z0-9]([-a-z0-9.]*[a-z0-9])?`, at most 253): any other
//!   id cannot name a Secret (no call is made).
//! - Kubernetes Secrets have no versions: `?version=` is refused.
//! - Test seam: [`KubernetesProvider::from_client`] with a `kube::Client` built over any tower
//!   service (a fake API server).

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};

use crate::config::KubernetesSettings;
use crate::error::{ErrorKind, ProviderError, SecretError};
use crate::provider::{ProviderKind, SecretProvider, strip_slash};
use crate::value::SecretValue;

/// The data key read from a Secret.
pub const VALUE_KEY: &str = "value";

/// Kubernetes Secrets provider.
#[derive(Clone)]
pub struct KubernetesProvider {
    api: Api<Secret>,
    namespace: String,
}

impl std::fmt::Debug for KubernetesProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubernetesProvider")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

/// Whether `name` is a valid Secret name (DNS-1123 subdomain).
pub fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 253
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-' || *c == b'.')
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

/// Install rustls' `ring` provider as the process default when none is installed yet.
///
/// With every provider feature on, rustls has both its `ring` and `aws-lc-rs` backends compiled
/// in, and kube's TLS setup (which asks for the process default) would panic without this. The
/// other providers pick their backend explicitly. Returns whether this call installed it.
pub fn ensure_crypto_provider() -> bool {
    rustls::crypto::CryptoProvider::get_default().is_none()
        && rustls::crypto::ring::default_provider()
            .install_default()
            .is_ok()
}

impl KubernetesProvider {
    /// In-cluster config or kubeconfig (kube's inference), with 5 s connect and read timeouts.
    pub async fn from_settings(settings: &KubernetesSettings) -> Result<Self, SecretError> {
        let mut config = kube::Config::infer()
            .await
            .map_err(|e| SecretError::Config {
                setting: "SECRETS_MANAGER=kubernetes".into(),
                reason: "no in-cluster service account and no kubeconfig found".into(),
                source: Some(std::sync::Arc::new(e)),
            })?;
        ensure_crypto_provider();
        config.connect_timeout = Some(Duration::from_secs(5));
        config.read_timeout = Some(Duration::from_secs(5));
        let namespace = settings
            .namespace
            .clone()
            .unwrap_or_else(|| config.default_namespace.clone());
        let client = Client::try_from(config).map_err(|e| SecretError::Config {
            setting: "SECRETS_MANAGER=kubernetes".into(),
            reason: "cannot build the Kubernetes client".into(),
            source: Some(std::sync::Arc::new(e)),
        })?;
        Ok(Self::from_client(client, &namespace))
    }

    /// Over a ready client (tests: `kube::Client::new(fake_service, ns)`).
    pub fn from_client(client: Client, namespace: &str) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            namespace: namespace.to_owned(),
        }
    }

    /// The namespace read.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }
}

fn map_error(name: &str, ns: &str, e: kube::Error) -> ProviderError {
    let (kind, what, after) = match &e {
        kube::Error::Api(status) => {
            let after = status
                .details
                .as_ref()
                .map(|d| d.retry_after_seconds)
                .filter(|s| *s > 0)
                .map(|s| Duration::from_secs(u64::from(s)));
            let kind = match status.code {
                404 => ErrorKind::NotFound,
                401 => ErrorKind::Unauthenticated,
                403 => ErrorKind::AccessDenied,
                429 => ErrorKind::Throttled,
                c if c >= 500 => ErrorKind::Unavailable,
                _ => ErrorKind::Unavailable,
            };
            (
                kind,
                format!("the API server answered {}", status.code),
                after,
            )
        }
        kube::Error::Auth(_) => (
            ErrorKind::Unauthenticated,
            "the client could not authenticate".to_owned(),
            None,
        ),
        _ => (
            ErrorKind::Unavailable,
            "the API server could not be reached".to_owned(),
            None,
        ),
    };
    ProviderError::new(
        kind,
        format!("get Secret `{name}` in namespace `{ns}`: {what}"),
    )
    .with_retry_after(after)
    .with_source(e)
}

/// A Secret's value: data key `value`, else the JSON object of its (UTF-8) data keys.
fn secret_value(name: &str, secret: &Secret) -> Result<SecretValue, ProviderError> {
    let data = secret.data.as_ref().filter(|d| !d.is_empty());
    let Some(data) = data else {
        return Err(ProviderError::new(
            ErrorKind::Malformed,
            format!("Secret `{name}` has no data"),
        ));
    };
    if let Some(v) = data.get(VALUE_KEY) {
        return Ok(SecretValue::new(v.0.clone()));
    }
    let obj: BTreeMap<&str, &str> = data
        .iter()
        .filter_map(|(k, v)| Some((k.as_str(), std::str::from_utf8(&v.0).ok()?)))
        .collect();
    let json = serde_json::to_string(&obj).map_err(|_| {
        ProviderError::new(
            ErrorKind::Malformed,
            format!("Secret `{name}` cannot be read"),
        )
    })?;
    Ok(SecretValue::new(json))
}

#[async_trait]
impl SecretProvider for KubernetesProvider {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Kubernetes
    }

    fn names(&self, id: &str) -> Vec<String> {
        let n = strip_slash(id);
        if valid_name(n) {
            vec![n.to_owned()]
        } else {
            Vec::new()
        }
    }

    fn name_rules(&self) -> &'static str {
        "Kubernetes Secret names are DNS-1123 subdomains: lowercase letters, digits, `-` and `.`"
    }

    async fn fetch(&self, name: &str, version: Option<&str>) -> Result<SecretValue, ProviderError> {
        if version.is_some() {
            return Err(ProviderError::new(
                ErrorKind::Unsupported,
                "Kubernetes Secrets have no versions; remove `?version=`",
            ));
        }
        let secret = self
            .api
            .get(name)
            .await
            .map_err(|e| map_error(name, &self.namespace, e))?;
        secret_value(name, &secret)
    }
}
