//! `wss://` with a private CA (SERVER_CA_FILE), and protocol version negotiation, over real sockets.

mod common;
mod pki;

use common::*;
use runner_core::runner::ConnectionState;
use runner_core::testkit::MockOptions;
use runner_protocol::{OpResult, Request, Response};

#[tokio::test]
async fn wss_with_private_ca_file_connects() {
    let (ca_pem, server) = pki::private_ca("runner test CA");
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
    let (_, server) = pki::private_ca("runner test CA");
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
    // One snapshot for the error and the state: after a rejection the runner waits its backoff
    // (full jitter from 100 ms, so at times a few ms) and goes back to Connecting, with the
    // error kept; a second read of the status could land after that.
    let mut status = h.status.get();
    wait_until("a rejection, disconnected", || {
        status = h.status.get();
        status.last_error.is_some() && status.state == ConnectionState::Disconnected
    })
    .await;
    assert_eq!(status.state, ConnectionState::Disconnected);
    let err = status.last_error.unwrap();
    assert!(
        err.contains("no common protocol version") && err.contains("upgrade"),
        "{err}"
    );
}
