//! With every provider feature on (as in the binary), each provider's HTTPS stack must initialise
//! and fail cleanly (no rustls CryptoProvider panic) against a closed loopback port.
#![cfg(all(
    feature = "aws",
    feature = "azure",
    feature = "gcp",
    feature = "kubernetes"
))]

use std::sync::Arc;
use std::time::Duration;

use runner_secrets::config::AwsSettings;
use runner_secrets::providers::aws::AwsProvider;
use runner_secrets::providers::azure::AzureProvider;
use runner_secrets::providers::azure::azure_core::{
    self,
    credentials::{AccessToken, TokenCredential, TokenRequestOptions},
};
use runner_secrets::providers::gcp::GcpProvider;
use runner_secrets::providers::kubernetes::KubernetesProvider;
use runner_secrets::{ErrorKind, ResolverOptions, SecretProvider, SecretResolver};

#[derive(Debug)]
struct NoCredential;

#[async_trait::async_trait]
impl TokenCredential for NoCredential {
    async fn get_token(
        &self,
        _scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        Err(azure_core::Error::with_message(
            azure_core::error::ErrorKind::Credential,
            "no credential in this test",
        ))
    }
}

fn opts() -> ResolverOptions {
    ResolverOptions {
        attempt_timeout: Duration::from_secs(3),
        max_attempts: 1,
        ..Default::default()
    }
}

async fn expect_unreachable(p: Arc<dyn SecretProvider>) {
    let kind = p.kind();
    let r = SecretResolver::new(p, opts());
    let e = r.resolve_str("secret:plain").await.unwrap_err();
    assert!(
        matches!(
            e.kind(),
            ErrorKind::Unavailable | ErrorKind::Timeout | ErrorKind::Unauthenticated
        ),
        "{kind}: {e}"
    );
}

#[tokio::test]
async fn https_stacks_initialise_and_fail_cleanly() {
    let aws = AwsProvider::from_settings_and_loader(
        &AwsSettings {
            region: Some("us-east-1".into()),
            endpoint_url: Some("https://127.0.0.1:9".into()),
        },
        &opts(),
        aws_config::defaults(aws_config::BehaviorVersion::latest()).credentials_provider(
            aws_sdk_secretsmanager::config::Credentials::new("a", "b", None, None, "static"),
        ),
    )
    .await
    .unwrap();
    expect_unreachable(Arc::new(aws)).await;

    let gcp = GcpProvider::client_builder(&opts())
        .with_endpoint("https://127.0.0.1:9")
        .with_credentials(
            runner_secrets::providers::gcp::google_cloud_auth::credentials::anonymous::Builder::new().build(),
        )
        .build()
        .await
        .unwrap();
    expect_unreachable(Arc::new(GcpProvider::from_client(gcp, Some("p".into())))).await;

    let azure = AzureProvider::with_options(
        "https://127.0.0.1:9/",
        Arc::new(NoCredential),
        runner_secrets::providers::azure::azure_core::http::ClientOptions::default(),
    )
    .unwrap();
    expect_unreachable(Arc::new(azure)).await;

    runner_secrets::providers::kubernetes::ensure_crypto_provider();
    let config = kube::Config::new("https://127.0.0.1:9".parse().unwrap());
    let client = kube::Client::try_from(config).unwrap();
    expect_unreachable(Arc::new(KubernetesProvider::from_client(client, "default"))).await;
}
