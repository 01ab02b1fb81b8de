//! Kubernetes provider against a fake API server at the HTTP seam (a tower service given to
//! `kube::Client::new`). The fake answers like the API server: Secret objects with base64 `data`,
//! `Status` objects for errors.
#![cfg(feature = "kubernetes")]

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use kube::client::Body;
use runner_secrets::providers::kubernetes::KubernetesProvider;
use runner_secrets::{ErrorKind, ResolverOptions, Rule, SecretResolver};
use serde_json::{Value, json};

fn secret(name: &str, data: &[(&str, &[u8])]) -> Value {
    let data: serde_json::Map<String, Value> = data
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Value::String(STANDARD.encode(v))))
        .collect();
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": "ingest"}, "type": "Opaque", "data": data})
}

fn status(code: u16, reason: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": format!("secrets is {reason}"), "reason": reason, "code": code,
           "details": {"retryAfterSeconds": if code == 429 { 1 } else { 0 }}})
}

fn fake() -> (kube::Client, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let svc = tower::service_fn(move |req: http::Request<Body>| {
        let s = s.clone();
        async move {
            assert_eq!(req.method(), http::Method::GET);
            let path = req.uri().path().to_owned();
            s.lock().unwrap().push(path.clone());
            let name = path
                .strip_prefix("/api/v1/namespaces/ingest/secrets/")
                .unwrap_or_else(|| panic!("unexpected path {path}"));
            let (code, body) = match name {
                "plain" => (200, secret("plain", &[("value", b"plain-value")])),
                "db-creds" => (
                    200,
                    secret(
                        "db-creds",
                        &[("value", br#"{"username":"u","password":"pw"}"#)],
                    ),
                ),
                "multi" => (
                    200,
                    secret(
                        "multi",
                        &[("user", b"mu"), ("pass", b"mp"), ("bin", &[0xff])],
                    ),
                ),
                "empty" => (
                    200,
                    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "empty"}}),
                ),
                "forbidden" => (403, status(403, "Forbidden")),
                "busy" => (429, status(429, "TooManyRequests")),
                _ => (404, status(404, "NotFound")),
            };
            let resp = http::Response::builder()
                .status(code)
                .header("content-type", "application/json")
                .body(Body::from(serde_json::to_vec(&body).unwrap()))
                .unwrap();
            Ok::<_, Infallible>(resp)
        }
    });
    (kube::Client::new(svc, "ingest"), seen)
}

#[tokio::test]
async fn kubernetes_secrets_through_a_fake_api_server() {
    let (client, seen) = fake();
    let p = KubernetesProvider::from_client(client, "ingest");
    let r = SecretResolver::new(
        Arc::new(p),
        ResolverOptions {
            max_attempts: 2,
            backoff_base: std::time::Duration::from_millis(1),
            ..Default::default()
        },
    );
    let v = |s: &'static str| {
        let r = r.clone();
        async move { r.resolve_str(s).await }
    };
    assert_eq!(
        v("secret:plain").await.unwrap().value.expose_str(),
        Some("plain-value")
    );
    assert_eq!(
        v("secret:/plain").await.unwrap().value.expose_str(),
        Some("plain-value")
    );
    let res = v("secret:db-creds/password").await.unwrap();
    assert_eq!(res.value.expose_str(), Some("pw"));
    assert_eq!(
        res.rule,
        Rule::JsonKey {
            secret: "db-creds".into(),
            key: "password".into()
        }
    );
    // A multi-key Secret without `value`: its data keys.
    assert_eq!(
        v("secret:multi/user").await.unwrap().value.expose_str(),
        Some("mu")
    );
    assert_eq!(
        v("secret:multi/bin").await.unwrap_err().kind(),
        ErrorKind::KeyMissing
    );
    // `db-creds/password` is not a valid Secret name: no request was made for it.
    let paths = seen.lock().unwrap().clone();
    assert!(
        paths
            .iter()
            .all(|p| !p.contains("db-creds/password") && !p.contains("%2F")),
        "{paths:?}"
    );
    assert!(paths.contains(&"/api/v1/namespaces/ingest/secrets/db-creds".to_owned()));

    let e = v("secret:missing").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(e.to_string().contains("provider kubernetes"), "{e}");
    let e = v("secret:forbidden").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AccessDenied);
    assert!(e.to_string().contains("verify path and permissions"), "{e}");
    let e = v("secret:busy").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Throttled);
    let e = v("secret:empty").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Malformed);
    let e = v("secret:plain?version=2").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    // Upper case and `_` cannot be Secret names, whole or as parent.
    let e = v("secret:Bad_Name").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidReference, "{e}");
    assert!(e.to_string().contains("DNS-1123"), "{e}");
    r.health().await.unwrap();
}
