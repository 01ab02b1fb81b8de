//! `ARGO_SERVER_CERTIFICATE_PATH`: a self-signed argo-server certificate is trusted when its
//! PEM is given, and the handshake error names the setting when it is not.

use std::sync::Arc;

use runner_argo::{ArgoClient, ArgoClientConfig, ArgoError, RetryPolicy};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A minimal HTTPS server answering `GET /api/v1/version` like argo-server.
async fn tls_server() -> (u16, String) {
    let ck =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    let cert_pem = ck.cert.pem();
    let cert: CertificateDer<'static> = ck.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.key_pair.serialize_der()));
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert], key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let body = r#"{"version":"v4.1.2","platform":"linux/amd64"}"#;
                let resp = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(resp.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (port, cert_pem)
}

#[tokio::test]
async fn self_signed_server_is_trusted_only_with_the_certificate_path() {
    let (port, pem) = tls_server().await;
    let endpoint = format!("https://127.0.0.1:{port}");
    let no_retry = RetryPolicy {
        max_attempts: 1,
        ..RetryPolicy::default()
    };

    let without = ArgoClient::new(ArgoClientConfig {
        endpoint: endpoint.clone(),
        retry: no_retry.clone(),
        ..ArgoClientConfig::default()
    })
    .unwrap();
    let e = without.version().await.unwrap_err();
    assert!(matches!(e, ArgoError::Tls { .. }), "{e:?}");
    assert!(
        e.to_string().contains("ARGO_SERVER_CERTIFICATE_PATH"),
        "{e}"
    );

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("argo-server.pem");
    std::fs::write(&path, pem).unwrap();
    let with = ArgoClient::new(ArgoClientConfig {
        endpoint,
        ca_cert_path: Some(path),
        retry: no_retry,
        ..ArgoClientConfig::default()
    })
    .unwrap();
    let v = with.version().await.unwrap();
    assert_eq!(v.version, "v4.1.2");
}
