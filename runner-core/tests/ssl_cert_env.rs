//! `SSL_CERT_FILE` / `SSL_CERT_DIR` for the control-plane connection: read from the process
//! environment (by rustls-native-certs), so tested in a child process (this test binary run again
//! with that environment) and never by changing this process's environment.

use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use runner_core::config::TokenSource;
use runner_core::testkit::{MockControlPlane, MockOptions};
use runner_core::{AuthToken, RunnerConfig, ServerUrl};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A CA (PEM) and a server config whose certificate for `localhost` it signed.
fn private_ca() -> (String, Arc<rustls::ServerConfig>) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "env test CA");
    let ca_key = KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &ca, &ca_key)
        .unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let server = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![CertificateDer::from(leaf.der().to_vec())], key)
    .unwrap();
    (ca.pem(), Arc::new(server))
}

/// The child half: with `RUNNER_TEST_CHILD_URL` set (by [`child`]), opens the WebSocket to it
/// without SERVER_CA_FILE and prints the outcome; in a normal test run it does nothing.
#[tokio::test]
async fn child_connects() {
    let Ok(url) = std::env::var("RUNNER_TEST_CHILD_URL") else {
        return;
    };
    let config = RunnerConfig::new(
        "agent-env",
        ServerUrl::parse(&url, false).unwrap(),
        TokenSource::Static(AuthToken::new("test-token")),
    );
    match runner_core::connection::connect(&config, &AuthToken::new("test-token"), None).await {
        Ok(_) => println!("CHILD-RESULT ok"),
        Err(e) => println!("CHILD-RESULT error {e}"),
    }
}

async fn child(url: &str, env: &[(&str, &std::path::Path)]) -> String {
    let mut cmd = tokio::process::Command::new(std::env::current_exe().unwrap());
    cmd.args(["child_connects", "--exact", "--nocapture"]);
    for v in ["SSL_CERT_FILE", "SSL_CERT_DIR"] {
        cmd.env_remove(v);
    }
    cmd.env("RUNNER_TEST_CHILD_URL", url);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        .find(|l| l.starts_with("CHILD-RESULT"))
        .unwrap_or_else(|| panic!("no result from the child: {stdout}"))
        .to_owned()
}

#[tokio::test]
async fn ssl_cert_file_and_dir_are_trusted_for_the_control_plane() {
    let (ca_pem, server) = private_ca();
    let cp = MockControlPlane::start(MockOptions {
        tls: Some(server),
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ca.pem");
    std::fs::write(&file, ca_pem).unwrap();

    let without = child(&cp.url(), &[]).await;
    assert!(
        without.starts_with("CHILD-RESULT error") && without.contains("not trusted"),
        "{without}"
    );
    assert_eq!(
        child(&cp.url(), &[("SSL_CERT_FILE", &file)]).await,
        "CHILD-RESULT ok"
    );
    assert_eq!(
        child(&cp.url(), &[("SSL_CERT_DIR", dir.path())]).await,
        "CHILD-RESULT ok"
    );
    // A missing SSL_CERT_FILE replaces the system roots with nothing: the error says so.
    let missing = child(
        &cp.url(),
        &[("SSL_CERT_FILE", &dir.path().join("nope.pem"))],
    )
    .await;
    assert!(
        missing.contains("no trusted CA certificates") && missing.contains("SSL_CERT_FILE"),
        "{missing}"
    );
}
