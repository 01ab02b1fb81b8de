//! `ARGO_SERVER_CERTIFICATE_PATH`: a self-signed argo-server certificate is trusted when its
//! PEM is given (as a file or in a directory), and the handshake error names the setting when it
//! is not. `SSL_CERT_FILE` and the proxy variables, which the client reads from the process
//! environment, are tested in a child process (this test binary run again with that
//! environment), so that this process's environment is never changed.

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

#[tokio::test]
async fn certificate_path_may_be_a_directory() {
    let (port, pem) = tls_server().await;
    let dir = tempfile::tempdir().unwrap();
    let other = rcgen::generate_simple_self_signed(vec!["other".to_owned()]).unwrap();
    std::fs::write(dir.path().join("a-other.crt"), other.cert.pem()).unwrap();
    std::fs::write(dir.path().join("argo-server.pem"), pem).unwrap();
    std::fs::write(dir.path().join("README.md"), "not a certificate").unwrap();
    let client = ArgoClient::new(ArgoClientConfig {
        endpoint: format!("https://127.0.0.1:{port}"),
        ca_cert_path: Some(dir.path().to_owned()),
        retry: RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        },
        ..ArgoClientConfig::default()
    })
    .unwrap();
    assert_eq!(client.version().await.unwrap().version, "v4.1.2");
}

/// The child half: with `RUNNER_TEST_CHILD_ENDPOINT` set (by [`child`]), calls `version` on it
/// and prints the outcome; in a normal test run it does nothing.
#[tokio::test]
async fn child_calls_version() {
    let Ok(endpoint) = std::env::var("RUNNER_TEST_CHILD_ENDPOINT") else {
        return;
    };
    let client = ArgoClient::new(ArgoClientConfig {
        endpoint,
        retry: RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        },
        ..ArgoClientConfig::default()
    })
    .unwrap();
    match client.version().await {
        Ok(v) => println!("CHILD-RESULT ok {}", v.version),
        Err(e) => println!("CHILD-RESULT error {e}"),
    }
}

/// Runs [`child_calls_version`] in a fresh process with `env` on top of this process's
/// environment minus every proxy and CA variable; returns its `CHILD-RESULT` line.
async fn child(endpoint: &str, env: &[(&str, &str)]) -> String {
    let mut cmd = tokio::process::Command::new(std::env::current_exe().unwrap());
    cmd.args(["child_calls_version", "--exact", "--nocapture"]);
    for v in [
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
        "NO_PROXY",
        "no_proxy",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "REQUEST_METHOD",
    ] {
        cmd.env_remove(v);
    }
    cmd.env("RUNNER_TEST_CHILD_ENDPOINT", endpoint);
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

/// A CONNECT proxy on 127.0.0.1 that records the request line of each connection.
async fn recording_proxy() -> (String, Arc<std::sync::Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let s = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let s = s.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    match tcp.read(&mut byte).await {
                        Ok(1) => head.push(byte[0]),
                        _ => return,
                    }
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                let line = head.lines().next().unwrap_or_default().to_owned();
                s.lock().unwrap().push(line.clone());
                let target = line
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or_default()
                    .to_owned();
                let Ok(mut up) = tokio::net::TcpStream::connect(target).await else {
                    return;
                };
                if tcp
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .await
                    .is_ok()
                {
                    let _ = tokio::io::copy_bidirectional(&mut tcp, &mut up).await;
                }
            });
        }
    });
    (url, seen)
}

#[tokio::test]
async fn ssl_cert_file_is_honoured() {
    let (port, pem) = tls_server().await;
    let endpoint = format!("https://127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle.pem");
    std::fs::write(&bundle, pem).unwrap();
    let without = child(&endpoint, &[]).await;
    assert!(
        without.starts_with("CHILD-RESULT error")
            && without.contains("ARGO_SERVER_CERTIFICATE_PATH"),
        "{without}"
    );
    let with = child(&endpoint, &[("SSL_CERT_FILE", bundle.to_str().unwrap())]).await;
    assert_eq!(with, "CHILD-RESULT ok v4.1.2");
    // SSL_CERT_DIR: a directory of certificates.
    let with = child(&endpoint, &[("SSL_CERT_DIR", dir.path().to_str().unwrap())]).await;
    assert_eq!(with, "CHILD-RESULT ok v4.1.2");
}

#[tokio::test]
async fn proxy_variables_and_no_proxy_are_honoured() {
    let (port, pem) = tls_server().await;
    let endpoint = format!("https://127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle.pem");
    std::fs::write(&bundle, pem).unwrap();
    let bundle = bundle.to_str().unwrap();
    let (proxy, seen) = recording_proxy().await;
    for var in ["HTTPS_PROXY", "https_proxy", "ALL_PROXY"] {
        let r = child(&endpoint, &[("SSL_CERT_FILE", bundle), (var, &proxy)]).await;
        assert_eq!(r, "CHILD-RESULT ok v4.1.2", "{var}");
    }
    let connects = seen.lock().unwrap().clone();
    assert_eq!(
        connects,
        vec![format!("CONNECT 127.0.0.1:{port} HTTP/1.1"); 3],
        "every variable routes through the proxy"
    );
    for no_proxy in ["127.0.0.1", "localhost,127.0.0.0/8", "*"] {
        let r = child(
            &endpoint,
            &[
                ("SSL_CERT_FILE", bundle),
                ("HTTPS_PROXY", &proxy),
                ("NO_PROXY", no_proxy),
            ],
        )
        .await;
        assert_eq!(r, "CHILD-RESULT ok v4.1.2", "{no_proxy}");
    }
    assert_eq!(seen.lock().unwrap().len(), 3, "NO_PROXY bypasses the proxy");
}
