//! GCP provider through the real SDK (HTTP+JSON, `with_endpoint`, anonymous credentials) against a
//! fake Secret Manager whose requests and responses are checked against the Discovery document in
//! shared/specs/secrets/gcp-secretmanager-v1.discovery.json.
#![cfg(feature = "gcp")]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::{Reply, Seen, serve, spec};
use runner_secrets::providers::gcp::GcpProvider;
use runner_secrets::{ErrorKind, ResolverOptions, Rule, SecretResolver};
use serde_json::{Value, json};

fn payload(name: &str, data: &[u8], crc: Option<u32>) -> Value {
    let mut p = json!({"data": STANDARD.encode(data)});
    if let Some(c) = crc {
        p["dataCrc32c"] = Value::String(c.to_string());
    }
    json!({"name": name, "payload": p})
}

fn error(code: u16, status: &str) -> Value {
    json!({"error": {"code": code, "message": format!("fake {status}"), "status": status}})
}

fn handler(throttled: Arc<AtomicUsize>) -> impl Fn(&Seen) -> Reply + Send + Sync + 'static {
    move |req: &Seen| {
        let path = req.path().to_owned();
        let Some(name) = path
            .strip_prefix("/v1/")
            .and_then(|p| p.strip_suffix(":access"))
        else {
            return Reply::json(404, &error(404, "NOT_FOUND"));
        };
        // The SDK names the version with its number: respond with the resolved version name.
        let num = |n: &str| n.replace("/versions/latest", "/versions/3");
        match name {
            "projects/p1/secrets/plain/versions/latest" => Reply::json(
                200,
                &payload(
                    &num(name),
                    b"plain-value",
                    Some(crc32c::crc32c(b"plain-value")),
                ),
            ),
            "projects/p1/secrets/plain/versions/1" => Reply::json(
                200,
                &payload(name, b"old-value", Some(crc32c::crc32c(b"old-value"))),
            ),
            "projects/p1/secrets/db/versions/latest"
            | "projects/other/secrets/db/versions/latest" => {
                let d = br#"{"username":"gu","password":"gp","port":5432}"#;
                Reply::json(200, &payload(&num(name), d, Some(crc32c::crc32c(d))))
            }
            "projects/p1/secrets/bin/versions/latest" => {
                let d = [0u8, 1, 2, 255];
                Reply::json(200, &payload(&num(name), &d, Some(crc32c::crc32c(&d))))
            }
            "projects/p1/secrets/nocrc/versions/latest" => {
                Reply::json(200, &payload(&num(name), b"nocrc", None))
            }
            "projects/p1/secrets/corrupt/versions/latest" => Reply::json(
                200,
                &payload(&num(name), b"corrupt!", Some(crc32c::crc32c(b"corrupt?"))),
            ),
            "projects/p1/secrets/denied/versions/latest" => {
                Reply::json(403, &error(403, "PERMISSION_DENIED"))
            }
            "projects/p1/secrets/busy/versions/latest" => {
                if throttled.fetch_add(1, Ordering::SeqCst) == 0 {
                    Reply::json(429, &error(429, "RESOURCE_EXHAUSTED")).header("retry-after", "1")
                } else {
                    Reply::json(
                        200,
                        &payload(
                            &num(name),
                            b"after-busy",
                            Some(crc32c::crc32c(b"after-busy")),
                        ),
                    )
                }
            }
            _ => Reply::json(404, &error(404, "NOT_FOUND")),
        }
    }
}

/// Check a seen request and our reply shape against the Discovery document.
fn check_against_discovery(seen: &[Seen]) {
    let Some(doc) = spec("gcp-secretmanager-v1.discovery.json") else {
        return;
    };
    let m = &doc["resources"]["projects"]["resources"]["secrets"]["resources"]["versions"]["methods"]
        ["access"];
    assert_eq!(m["httpMethod"], "GET");
    assert_eq!(m["path"], "v1/{+name}:access");
    assert_eq!(
        m["parameters"]["name"]["pattern"],
        "^projects/[^/]+/secrets/[^/]+/versions/[^/]+$"
    );
    for s in seen {
        assert_eq!(s.method, m["httpMethod"].as_str().unwrap(), "{s:?}");
        let name = s
            .path()
            .strip_prefix("/v1/")
            .and_then(|p| p.strip_suffix(":access"))
            .expect("v1/{+name}:access");
        let segs: Vec<&str> = name.split('/').collect();
        assert!(
            segs.len() == 6
                && segs[0] == "projects"
                && segs[2] == "secrets"
                && segs[4] == "versions"
                && segs.iter().all(|x| !x.is_empty()),
            "name `{name}` does not match the spec's pattern"
        );
    }
    // Our reply shape: exactly the schema's properties with the schema's types.
    let resp = &doc["schemas"]["AccessSecretVersionResponse"]["properties"];
    let pay = &doc["schemas"]["SecretPayload"]["properties"];
    let sample = payload("projects/p/secrets/s/versions/1", b"x", Some(1));
    for k in sample.as_object().unwrap().keys() {
        assert!(
            resp.get(k).is_some(),
            "reply key {k} not in AccessSecretVersionResponse"
        );
    }
    for (k, v) in sample["payload"].as_object().unwrap() {
        assert_eq!(pay[k]["type"], "string", "{k}");
        assert!(v.is_string(), "{k} must be a JSON string");
    }
    assert_eq!(pay["data"]["format"], "byte");
    assert_eq!(pay["dataCrc32c"]["format"], "int64");
}

#[tokio::test]
async fn gcp_through_the_sdk_against_a_spec_checked_fake() {
    let (url, log) = serve(handler(Arc::new(AtomicUsize::new(0)))).await;
    let opts = ResolverOptions {
        backoff_base: Duration::from_millis(10),
        ..Default::default()
    };
    let client = GcpProvider::client_builder(&opts)
        .with_endpoint(url)
        .with_credentials(runner_secrets::providers::gcp::google_cloud_auth::credentials::anonymous::Builder::new().build())
        .build()
        .await
        .unwrap();
    let r = SecretResolver::new(
        Arc::new(GcpProvider::from_client(client, Some("p1".into()))),
        opts,
    );
    let v = |s: &'static str| {
        let r = r.clone();
        async move { r.resolve_str(s).await }
    };
    // Short id, leading slash, full names, versions.
    assert_eq!(
        v("secret:plain").await.unwrap().value.expose_str(),
        Some("plain-value")
    );
    assert_eq!(
        v("secret:/plain").await.unwrap().value.expose_str(),
        Some("plain-value")
    );
    assert_eq!(
        v("secret:projects/p1/secrets/plain")
            .await
            .unwrap()
            .value
            .expose_str(),
        Some("plain-value")
    );
    assert_eq!(
        v("secret:plain?version=1")
            .await
            .unwrap()
            .value
            .expose_str(),
        Some("old-value")
    );
    assert_eq!(
        v("secret:projects/p1/secrets/plain/versions/1")
            .await
            .unwrap()
            .value
            .expose_str(),
        Some("old-value")
    );
    let e = v("secret:projects/p1/secrets/plain/versions/1?version=2")
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidReference, "{e}");
    // JSON key, short and full.
    let res = v("secret:db/username").await.unwrap();
    assert_eq!(res.value.expose_str(), Some("gu"));
    assert_eq!(
        res.rule,
        Rule::JsonKey {
            secret: "projects/p1/secrets/db".into(),
            key: "username".into()
        }
    );
    assert_eq!(
        v("secret:projects/other/secrets/db/password")
            .await
            .unwrap()
            .value
            .expose_str(),
        Some("gp")
    );
    assert_eq!(
        v("secret:db/port").await.unwrap().value.expose_str(),
        Some("5432")
    );
    assert_eq!(
        v("secret:db/nokey").await.unwrap_err().kind(),
        ErrorKind::KeyMissing
    );
    // Binary, missing CRC, CRC mismatch.
    assert_eq!(
        v("secret:bin").await.unwrap().value.expose_bytes(),
        &[0u8, 1, 2, 255]
    );
    assert_eq!(
        v("secret:nocrc").await.unwrap().value.expose_str(),
        Some("nocrc")
    );
    let e = v("secret:corrupt").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Malformed, "{e}");
    assert!(e.to_string().contains("CRC32C"), "{e}");
    // Errors.
    let e = v("secret:missing").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert!(e.to_string().contains("projects/p1/secrets/missing"), "{e}");
    let e = v("secret:denied").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AccessDenied, "{e}");
    // Throttled once with Retry-After: 1, then served.
    let start = std::time::Instant::now();
    assert_eq!(
        v("secret:busy").await.unwrap().value.expose_str(),
        Some("after-busy")
    );
    assert!(start.elapsed() >= Duration::from_secs(1));
    // Names GCP cannot hold make no call.
    let before = log.lock().unwrap().len();
    assert_eq!(
        v("secret:a.b").await.unwrap_err().kind(),
        ErrorKind::InvalidReference
    );
    assert_eq!(log.lock().unwrap().len(), before);
    r.health().await.unwrap();

    let seen = log.lock().unwrap().clone();
    assert!(seen.len() >= 10);
    check_against_discovery(&seen);
}

#[tokio::test]
async fn gcp_short_ids_need_a_project() {
    let (url, _log) = serve(handler(Arc::new(AtomicUsize::new(0)))).await;
    let opts = ResolverOptions::default();
    let client = GcpProvider::client_builder(&opts)
        .with_endpoint(url)
        .with_credentials(runner_secrets::providers::gcp::google_cloud_auth::credentials::anonymous::Builder::new().build())
        .build()
        .await
        .unwrap();
    let r = SecretResolver::new(Arc::new(GcpProvider::from_client(client, None)), opts);
    let e = r.resolve_str("secret:plain").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidReference);
    assert!(e.to_string().contains("GOOGLE_CLOUD_PROJECT"), "{e}");
    let res = r
        .resolve_str("secret:projects/p1/secrets/plain")
        .await
        .unwrap();
    assert_eq!(res.value.expose_str(), Some("plain-value"));
    // Without a project the health probe cannot name a secret: reported, not silently healthy.
    let e = r.health().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert!(e.to_string().contains("GOOGLE_CLOUD_PROJECT"), "{e}");
}
