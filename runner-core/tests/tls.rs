//! `wss://` with a private CA (SERVER_CA_FILE), and protocol version negotiation, over real sockets.

mod common;

use std::sync::Arc;

use common::*;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use runner_core::runner::ConnectionState;
use runner_core::testkit::MockOptions;
use runner_protocol::{OpResult, Request, Response};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A CA (PEM) and a server config whose certificate for `localhost` it signed.
fn private_ca() -> (String, Arc<rustls::ServerConfig>) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "runner test CA");
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

#[tokio::test]
async fn wss_with_private_ca_file_connects() {
    let (ca_pem, server) = private_ca();
    let dir = TempDir::new();
    let ca_file = dir.path("ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();
    let h = start(Setup {
        mock: MockOptions {
            tls: Some(server),
            ..Default::default()
        },
        ca_file: Some(ca_file),
        ..Default::default()
    })
    .await;
    assert!(h.cp.url().starts_with("wss://localhost:"));
    h.cp.wait_connected(WAIT).await.unwrap();
    assert_eq!(
        h.cp.request(Request::Ping {}).await.unwrap(),
        Response::Result(OpResult::Pong {})
    );
}

#[tokio::test]
async fn wss_with_untrusted_certificate_names_the_fix() {
    let (_, server) = private_ca();
    let h = start(Setup {
        mock: MockOptions {
            tls: Some(server),
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    wait_until("a TLS failure", || h.status.get().last_error.is_some()).await;
    let err = h.status.get().last_error.unwrap();
    assert!(
        err.contains("TLS") && err.contains("SERVER_CA_FILE"),
        "{err}"
    );
    assert_eq!(h.cp.connections(), 0);
}

#[tokio::test]
async fn no_common_protocol_version_is_reported() {
    let h = start(Setup {
        mock: MockOptions {
            versions: Some(vec![7]),
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    wait_until("a rejection", || h.status.get().last_error.is_some()).await;
    let status = h.status.get();
    assert_eq!(status.state, ConnectionState::Disconnected);
    let err = status.last_error.unwrap();
    assert!(
        err.contains("no common protocol version") && err.contains("upgrade"),
        "{err}"
    );
}
