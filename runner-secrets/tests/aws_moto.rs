//! AWS provider against moto's real server (through the real SDK with an endpoint override), and
//! throttling against a small fake HTTP server (moto does not throttle).
//!
//! `cargo xtask test` starts moto and exports `RUNNER_TEST_MOTO_ENDPOINT`; without it the moto
//! tests print a skip line and return.
#![cfg(feature = "aws")]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::config::Credentials;
use aws_sdk_secretsmanager::primitives::Blob;
use runner_secrets::config::AwsSettings;
use runner_secrets::providers::aws::AwsProvider;
use runner_secrets::{ErrorKind, ResolverOptions, Rule, SecretResolver};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const MOTO_VAR: &str = "RUNNER_TEST_MOTO_ENDPOINT";

fn moto_endpoint() -> Option<String> {
    match std::env::var(MOTO_VAR) {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            println!("skipped: {MOTO_VAR} not set (run `cargo xtask test`)");
            None
        }
    }
}

fn loader() -> aws_config::ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest())
        .credentials_provider(Credentials::new("testing", "testing", None, None, "static"))
}

fn settings(endpoint: &str) -> AwsSettings {
    AwsSettings {
        region: Some("us-east-1".into()),
        endpoint_url: Some(endpoint.into()),
    }
}

async fn provider(endpoint: &str, opts: &ResolverOptions) -> AwsProvider {
    AwsProvider::from_settings_and_loader(&settings(endpoint), opts, loader())
        .await
        .unwrap()
}

/// A prefix unique to this test run, so that a long-running moto can be reused.
fn unique(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("t{}-{nanos}-{tag}", std::process::id())
}

#[tokio::test]
async fn moto_resolution_rule_end_to_end() {
    let Some(endpoint) = moto_endpoint() else {
        return;
    };
    let opts = ResolverOptions::default();
    let p = provider(&endpoint, &opts).await;
    let sdk: Client = p.client().clone();
    let base = unique("rule");

    // Plain text secret.
    sdk.create_secret()
        .name(format!("{base}/plain"))
        .secret_string("plain-value")
        .send()
        .await
        .unwrap();
    // The seed's example: a JSON secret addressed as /<path>/<key>.
    let creds = sdk
        .create_secret()
        .name(format!("{base}/my/database/credentials"))
        .secret_string(r#"{"username":"dbuser","password":"p@ss w0rd","port":5432}"#)
        .send()
        .await
        .unwrap();
    // A secret whose name really starts with a slash.
    sdk.create_secret()
        .name(format!("/{base}/slashed"))
        .secret_string("slashed-value")
        .send()
        .await
        .unwrap();
    // Binary.
    sdk.create_secret()
        .name(format!("{base}/bin"))
        .secret_binary(Blob::new(vec![0u8, 159, 146, 150, 255]))
        .send()
        .await
        .unwrap();
    // Versions: first, then rotated.
    sdk.create_secret()
        .name(format!("{base}/rotated"))
        .secret_string("v1")
        .send()
        .await
        .unwrap();
    let v2 = sdk
        .put_secret_value()
        .secret_id(format!("{base}/rotated"))
        .secret_string("v2")
        .send()
        .await
        .unwrap();

    let r = SecretResolver::new(Arc::new(p), opts);
    let get = |s: String| {
        let r = r.clone();
        async move { r.resolve_str(&s).await }
    };

    let res = get(format!("secret:{base}/plain")).await.unwrap();
    assert_eq!(res.value.expose_str(), Some("plain-value"));
    assert_eq!(
        res.rule,
        Rule::WholeSecret {
            name: format!("{base}/plain")
        }
    );

    // Leading slash on a secret stored without one, plus the JSON-key rule.
    let res = get(format!("secret:/{base}/my/database/credentials/username"))
        .await
        .unwrap();
    assert_eq!(res.value.expose_str(), Some("dbuser"));
    assert_eq!(
        res.rule,
        Rule::JsonKey {
            secret: format!("{base}/my/database/credentials"),
            key: "username".into()
        }
    );
    let res = get(format!("secret:{base}/my/database/credentials/port"))
        .await
        .unwrap();
    assert_eq!(res.value.expose_str(), Some("5432"));

    // A name that has the slash: found as written.
    let res = get(format!("secret:/{base}/slashed")).await.unwrap();
    assert_eq!(res.value.expose_str(), Some("slashed-value"));
    assert_eq!(
        res.rule,
        Rule::WholeSecret {
            name: format!("/{base}/slashed")
        }
    );

    // ARN, whole and with a key.
    let arn = creds.arn().unwrap().to_owned();
    let res = get(format!("secret:{arn}")).await.unwrap();
    assert!(res.value.expose_str().unwrap().contains("dbuser"));
    let res = get(format!("secret:{arn}/password")).await.unwrap();
    assert_eq!(res.value.expose_str(), Some("p@ss w0rd"));

    // Binary.
    let res = get(format!("secret:{base}/bin")).await.unwrap();
    assert_eq!(res.value.expose_bytes(), &[0u8, 159, 146, 150, 255]);

    // Versions: current, previous stage, version id.
    assert_eq!(
        get(format!("secret:{base}/rotated"))
            .await
            .unwrap()
            .value
            .expose_str(),
        Some("v2")
    );
    assert_eq!(
        get(format!("secret:{base}/rotated?version=AWSPREVIOUS"))
            .await
            .unwrap()
            .value
            .expose_str(),
        Some("v1")
    );
    let v2_id = v2.version_id().unwrap();
    assert_eq!(
        get(format!("secret:{base}/rotated?version={v2_id}"))
            .await
            .unwrap()
            .value
            .expose_str(),
        Some("v2")
    );

    // Missing secret and missing key.
    let e = get(format!("secret:{base}/nope/x")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("provider aws") && msg.contains("fix: verify the path"),
        "{msg}"
    );
    let e = get(format!("secret:{base}/my/database/credentials/nokey"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::KeyMissing, "{e}");
    assert!(
        !e.to_string().contains("dbuser") && !e.to_string().contains("p@ss"),
        "{e}"
    );

    // A whole config with masking.
    let cfg = json!({"u": format!("secret:/{base}/my/database/credentials/username"),
                     "p": format!("secret:/{base}/my/database/credentials/password")});
    let resolved = r.resolve_config(&cfg).await.unwrap();
    assert_eq!(resolved.expose()["p"], "p@ss w0rd");
    assert_eq!(resolved.masker().mask("pw=p%40ss%20w0rd"), "pw=***");

    r.health().await.unwrap();
}

#[tokio::test]
async fn moto_wrong_endpoint_is_unavailable_quickly() {
    // Not moto: a closed port. Resolution must fail fast with Unavailable, not hang in SDK retries.
    let opts = ResolverOptions {
        attempt_timeout: Duration::from_secs(2),
        max_attempts: 2,
        backoff_base: Duration::from_millis(10),
        ..ResolverOptions::default()
    };
    let p = provider("http://127.0.0.1:9", &opts).await;
    let r = SecretResolver::new(Arc::new(p), opts);
    let start = std::time::Instant::now();
    let e = r.resolve_str("secret:any").await.unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::Unavailable | ErrorKind::Timeout),
        "{e}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(6),
        "{:?}",
        start.elapsed()
    );
    let e = r.health().await.unwrap_err();
    assert!(e.to_string().contains("health check failed"), "{e}");
}

/// A fake Secrets Manager endpoint: the first `throttle` requests get 400 ThrottlingException
/// with `Retry-After: 1`, then GetSecretValue answers.
async fn throttling_fake(throttle: usize) -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let c = c.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut tmp = [0u8; 4096];
                // Read headers and body (Content-Length).
                loop {
                    let n = sock.read(&mut tmp).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&tmp[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let len = text[..end]
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("content-length")
                                    .then(|| v.trim().parse::<usize>().ok())?
                            })
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + len {
                            let head = &text[..end];
                            assert!(head.contains("secretsmanager.GetSecretValue"), "{head}");
                            break;
                        }
                    }
                }
                let n = c.fetch_add(1, Ordering::SeqCst);
                let (status, extra, body) = if n < throttle {
                    (
                        "400 Bad Request",
                        "x-amzn-errortype: ThrottlingException\r\nRetry-After: 1\r\n",
                        r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#.to_owned(),
                    )
                } else {
                    (
                        "200 OK",
                        "",
                        r#"{"ARN":"arn:aws:secretsmanager:us-east-1:123456789012:secret:t-AbCdEf","Name":"t","SecretString":"after-throttle","VersionId":"a1b2c3d4-5678-90ab-cdef-abcdef111111","VersionStages":["AWSCURRENT"],"CreatedDate":1.0}"#.to_owned(),
                    )
                };
                let resp = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/x-amz-json-1.1\r\n{extra}content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    (format!("http://{addr}"), count)
}

#[tokio::test]
async fn throttling_is_retried_honouring_retry_after() {
    let (endpoint, count) = throttling_fake(2).await;
    let opts = ResolverOptions {
        backoff_base: Duration::from_millis(10),
        ..ResolverOptions::default()
    };
    let p = provider(&endpoint, &opts).await;
    let r = SecretResolver::new(Arc::new(p), opts);
    let start = std::time::Instant::now();
    let res = r.resolve_str("secret:t").await.unwrap();
    assert_eq!(res.value.expose_str(), Some("after-throttle"));
    assert_eq!(count.load(Ordering::SeqCst), 3);
    assert_eq!(r.stats().provider_calls, 3);
    // Two Retry-After: 1 waits.
    assert!(
        start.elapsed() >= Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn throttling_beyond_the_budget_is_a_throttled_error() {
    let (endpoint, count) = throttling_fake(100).await;
    let opts = ResolverOptions {
        backoff_base: Duration::from_millis(10),
        max_attempts: 3,
        ..ResolverOptions::default()
    };
    let p = provider(&endpoint, &opts).await;
    let r = SecretResolver::new(Arc::new(p), opts);
    let e = r.resolve_str("secret:t").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Throttled, "{e}");
    assert_eq!(count.load(Ordering::SeqCst), 3);
    let s = e.to_string();
    assert!(
        s.contains("ThrottlingException") && s.contains("HTTP 400"),
        "{s}"
    );
}
