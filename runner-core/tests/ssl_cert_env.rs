//! `SSL_CERT_FILE` / `SSL_CERT_DIR` for the control-plane connection: read from the process
//! environment (by rustls-native-certs), so tested in a child process (this test binary run again
//! with that environment) and never by changing this process's environment.

mod pki;

use runner_core::config::TokenSource;
use runner_core::testkit::{MockControlPlane, MockOptions};
use runner_core::{AuthToken, RunnerConfig, ServerUrl};

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
    let (ca_pem, server) = pki::private_ca("env test CA");
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
