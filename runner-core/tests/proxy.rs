//! The control-plane WebSocket through an HTTP CONNECT proxy (HTTPS_PROXY / HTTP_PROXY with
//! NO_PROXY), against the mock control plane, with a small CONNECT proxy written here.

mod pki;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use runner_core::config::TokenSource;
use runner_core::executor::StatusSink;
use runner_core::executor::local::{LocalConfig, LocalExecutor};
use runner_core::proxy::ProxyConfig;
use runner_core::testkit::{MockControlPlane, MockOptions};
use runner_core::{AuthToken, CoreError, Outbox, Preparer, Runner, RunnerConfig, ServerUrl};
use runner_protocol::{OpResult, Request, Response};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(20);

/// What the test proxy does with a CONNECT.
#[derive(Clone)]
enum Mode {
    /// Tunnels, after checking `Proxy-Authorization` equals this when set (407 otherwise).
    Tunnel { auth: Option<String> },
    /// Answers with this status line.
    Refuse(&'static str),
}

/// A CONNECT proxy on 127.0.0.1:0 that records each request head it received.
struct TestProxy {
    url: String,
    heads: Arc<Mutex<Vec<String>>>,
    _stop: tokio_util::sync::DropGuard,
}

impl TestProxy {
    async fn start(mode: Mode) -> TestProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let heads = Arc::new(Mutex::new(Vec::new()));
        let stop = CancellationToken::new();
        let (h, s) = (heads.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let (tcp, _) = tokio::select! {
                    r = listener.accept() => r.unwrap(),
                    _ = s.cancelled() => return,
                };
                tokio::spawn(serve(tcp, mode.clone(), h.clone()));
            }
        });
        TestProxy {
            url,
            heads,
            _stop: stop.drop_guard(),
        }
    }

    fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }
}

async fn serve(tcp: TcpStream, mode: Mode, heads: Arc<Mutex<Vec<String>>>) {
    let mut reader = BufReader::new(tcp);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    heads.lock().unwrap().push(head.clone());
    // Nothing follows the head before our answer, so nothing is left in the buffer.
    let mut client = reader.into_inner();
    let target = head
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    let answer = match mode {
        Mode::Refuse(status) => Some(format!("{status}\r\nContent-Length: 0\r\n\r\n")),
        Mode::Tunnel { auth: Some(want) }
            if !head
                .lines()
                .any(|l| l == format!("Proxy-Authorization: {want}")) =>
        {
            Some(
                "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"test\"\r\nContent-Length: 0\r\n\r\n"
                    .to_owned(),
            )
        }
        Mode::Tunnel { .. } => None,
    };
    if let Some(answer) = answer {
        let _ = client.write_all(answer.as_bytes()).await;
        return;
    }
    let Ok(mut upstream) = TcpStream::connect(target.as_str()).await else {
        let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
        return;
    };
    if client
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .await
        .is_ok()
    {
        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
    }
}

fn proxy_config(pairs: &[(&str, String)]) -> ProxyConfig {
    ProxyConfig::from_lookup(|k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone()))
        .unwrap()
}

fn config(cp: &MockControlPlane, proxy: ProxyConfig) -> RunnerConfig {
    let mut c = RunnerConfig::new(
        "agent-proxy",
        ServerUrl::parse(&cp.url(), false).unwrap(),
        TokenSource::Static(AuthToken::new("test-token")),
    );
    c.proxy = proxy;
    c.handshake_timeout = Duration::from_secs(10);
    c
}

/// Runs a runner with `config` until the returned token is cancelled.
fn spawn_runner(config: RunnerConfig) -> CancellationToken {
    let outbox = Arc::new(Outbox::new(100));
    let preparer = Arc::new(Preparer::default());
    let executor = Arc::new(LocalExecutor::start(
        LocalConfig::default(),
        StatusSink::new(outbox.clone()),
        preparer.clone(),
    ));
    let runner = Runner::new(config, executor, outbox, preparer);
    let shutdown = CancellationToken::new();
    tokio::spawn(runner.run(shutdown.clone()));
    shutdown
}

async fn assert_session(cp: &MockControlPlane) {
    cp.wait_connected(WAIT).await.unwrap();
    assert_eq!(
        cp.request(Request::Ping {}).await.unwrap(),
        Response::Result(OpResult::Pong {})
    );
}

#[tokio::test]
async fn websocket_goes_through_the_proxy_with_its_credentials() {
    // "user" / "p@ss:w" percent-encoded in the URL, as an operator must write them.
    let basic = "Basic dXNlcjpwQHNzOnc="; // base64("user:p@ss:w")
    let proxy = TestProxy::start(Mode::Tunnel {
        auth: Some(basic.into()),
    })
    .await;
    let cp = MockControlPlane::start(MockOptions::default())
        .await
        .unwrap();
    let with_auth = proxy.url.replace("http://", "http://user:p%40ss%3Aw@");
    let stop = spawn_runner(config(
        &cp,
        proxy_config(&[
            ("HTTP_PROXY", with_auth),
            ("NO_PROXY", "example.com".into()),
        ]),
    ));
    assert_session(&cp).await;
    stop.cancel();
    let heads = proxy.heads();
    let head = heads.first().expect("the proxy saw the connection");
    let target = format!("127.0.0.1:{}", cp.addr().port());
    assert!(
        head.starts_with(&format!("CONNECT {target} HTTP/1.1\r\n")),
        "{head}"
    );
    assert!(head.contains(&format!("Host: {target}\r\n")), "{head}");
    assert!(
        head.contains(&format!("Proxy-Authorization: {basic}\r\n")),
        "{head}"
    );
}

#[tokio::test]
async fn wss_through_https_proxy_with_a_ca_directory() {
    let (ca_pem, server) = pki::private_ca("proxy test CA");
    let (other_ca, _) = pki::private_ca("unrelated CA");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("00-other.pem"), other_ca).unwrap();
    std::fs::write(dir.path().join("ca.crt"), ca_pem).unwrap();
    std::fs::write(dir.path().join("notes.txt"), "ignored").unwrap();
    let proxy = TestProxy::start(Mode::Tunnel { auth: None }).await;
    let cp = MockControlPlane::start(MockOptions {
        tls: Some(server),
        ..Default::default()
    })
    .await
    .unwrap();
    let mut c = config(&cp, proxy_config(&[("HTTPS_PROXY", proxy.url.clone())]));
    c.ca_file = Some(dir.path().to_owned());
    let stop = spawn_runner(c);
    assert_session(&cp).await;
    stop.cancel();
    let heads = proxy.heads();
    assert!(
        heads[0].starts_with(&format!("CONNECT localhost:{} HTTP/1.1", cp.addr().port())),
        "{heads:?}"
    );
    assert!(!heads[0].contains("Proxy-Authorization"), "{heads:?}");
}

#[tokio::test]
async fn no_proxy_bypasses_the_proxy() {
    let proxy = TestProxy::start(Mode::Tunnel { auth: None }).await;
    let cp = MockControlPlane::start(MockOptions::default())
        .await
        .unwrap();
    let port = cp.addr().port();
    for no_proxy in [
        "127.0.0.1".to_owned(),
        format!("other.example, 127.0.0.0/8:{port}"),
        "*".to_owned(),
    ] {
        let c = config(
            &cp,
            proxy_config(&[("http_proxy", proxy.url.clone()), ("no_proxy", no_proxy)]),
        );
        let token = AuthToken::new("test-token");
        runner_core::connection::connect(&c, &token, None)
            .await
            .unwrap();
    }
    // The same set-up with an entry that does not match goes through the proxy.
    let c = config(
        &cp,
        proxy_config(&[
            ("http_proxy", proxy.url.clone()),
            ("no_proxy", format!("127.0.0.1:{}", port + 1)),
        ]),
    );
    runner_core::connection::connect(&c, &AuthToken::new("test-token"), None)
        .await
        .unwrap();
    assert_eq!(proxy.heads().len(), 1, "{:?}", proxy.heads());
}

#[tokio::test]
async fn proxy_407_names_https_proxy_and_hides_the_password() {
    let proxy = TestProxy::start(Mode::Tunnel {
        auth: Some("Basic never".into()),
    })
    .await;
    let (_, server) = pki::private_ca("unused");
    let cp = MockControlPlane::start(MockOptions {
        tls: Some(server),
        ..Default::default()
    })
    .await
    .unwrap();
    let token = AuthToken::new("test-token");
    // Without credentials.
    let c = config(&cp, proxy_config(&[("HTTPS_PROXY", proxy.url.clone())]));
    let e = runner_core::connection::connect(&c, &token, None)
        .await
        .unwrap_err();
    assert!(matches!(e, CoreError::Proxy { .. }), "{e:?}");
    let text = e.to_string();
    for part in [
        "HTTPS_PROXY",
        "407 Proxy Authentication Required",
        "Basic realm=\"test\"",
        "http://USER:PASSWORD@",
        &format!("CONNECT localhost:{}", cp.addr().port()),
    ] {
        assert!(text.contains(part), "`{part}` missing from: {text}");
    }
    // With wrong credentials: said so, password masked.
    let c = config(
        &cp,
        proxy_config(&[(
            "HTTPS_PROXY",
            proxy.url.replace("http://", "http://bob:s3cr3t-pw@"),
        )]),
    );
    let text = runner_core::connection::connect(&c, &token, None)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        text.contains("refused the user and password in HTTPS_PROXY")
            && text.contains("http://bob:***@"),
        "{text}"
    );
    assert!(!text.contains("s3cr3t-pw"), "{text}");
    assert_eq!(cp.connections(), 0);
}

#[tokio::test]
async fn refused_connect_says_what_the_proxy_answered() {
    let proxy = TestProxy::start(Mode::Refuse("HTTP/1.1 403 Forbidden by policy")).await;
    let cp = MockControlPlane::start(MockOptions::default())
        .await
        .unwrap();
    let c = config(&cp, proxy_config(&[("ALL_PROXY", proxy.url.clone())]));
    let text = runner_core::connection::connect(&c, &AuthToken::new("test-token"), None)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        text.contains("ALL_PROXY")
            && text.contains("`HTTP/1.1 403 Forbidden by policy`")
            && text.contains("NO_PROXY"),
        "{text}"
    );
}
