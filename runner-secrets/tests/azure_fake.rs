//! Azure provider through the real SDK (SecretClient, bearer-token challenge policy) with a custom
//! transport: an in-process fake of the vault's HTTPS API (Key Vault requires https, so the seam is
//! the transport, not a socket). Requests and replies are checked against
//! shared/specs/secrets/azure-keyvault-secrets-2025-07-01.swagger.json.
#![cfg(feature = "azure")]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use runner_secrets::providers::azure::AzureProvider;
use runner_secrets::providers::azure::azure_core::{
    self,
    credentials::{AccessToken, TokenCredential, TokenRequestOptions},
    http::{
        AsyncRawResponse, ClientOptions, HttpClient, Request, StatusCode, Transport,
        headers::Headers,
    },
};
use runner_secrets::{ErrorKind, ResolverOptions, Rule, SecretResolver};
use serde_json::{Value, json};

const VAULT: &str = "https://fakevault.vault.azure.net/";
const TOKEN: &str = "fake-access-token";

#[derive(Debug, Clone)]
struct SeenReq {
    method: String,
    url: String,
    auth: Option<String>,
}

#[derive(Debug, Default)]
struct FakeVault {
    log: Mutex<Vec<SeenReq>>,
    busy: AtomicUsize,
}

fn reply(status: u16, body: &Value, extra: &[(&'static str, String)]) -> AsyncRawResponse {
    let mut h = Headers::new();
    h.insert("content-type", "application/json");
    for (k, v) in extra {
        h.insert(*k, v.clone());
    }
    AsyncRawResponse::from_bytes(
        StatusCode::from(status),
        h,
        serde_json::to_vec(body).unwrap(),
    )
}

fn kv_error(code: &str) -> Value {
    json!({"error": {"code": code, "message": format!("fake {code}")}})
}

fn bundle(name: &str, value: &str) -> Value {
    json!({"value": value, "id": format!("{VAULT}secrets/{name}/0123456789abcdef0123456789abcdef"),
           "attributes": {"enabled": true}, "tags": {}})
}

#[async_trait]
impl HttpClient for FakeVault {
    async fn execute_request(&self, request: &Request) -> azure_core::Result<AsyncRawResponse> {
        let url = request.url().clone();
        let auth = request
            .headers()
            .get_optional_str(&azure_core::http::headers::AUTHORIZATION)
            .map(str::to_owned);
        self.log.lock().unwrap().push(SeenReq {
            method: format!("{:?}", request.method()),
            url: url.to_string(),
            auth: auth.clone(),
        });
        // Key Vault's challenge: the first request carries no token.
        if auth.is_none() {
            return Ok(reply(
                401,
                &kv_error("Unauthorized"),
                &[(
                    "www-authenticate",
                    r#"Bearer authorization="https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000", resource="https://vault.azure.net""#.to_owned(),
                )],
            ));
        }
        assert_eq!(auth.as_deref(), Some(format!("Bearer {TOKEN}").as_str()));
        let path = url.path().to_owned();
        let rest = path
            .strip_prefix("/secrets/")
            .expect("GET /secrets/{name}/{version}");
        let (name, version) = rest
            .split_once('/')
            .expect("the SDK sends /secrets/{name}/{version}");
        Ok(match (name, version) {
            ("plain", "") => reply(200, &bundle(name, "plain-value"), &[]),
            ("plain", "0123456789abcdef0123456789abcdef") => {
                reply(200, &bundle(name, "old-value"), &[])
            }
            ("db-creds", "") => reply(
                200,
                &bundle(name, r#"{"username":"au","password":"ap"}"#),
                &[],
            ),
            ("denied", _) => reply(403, &kv_error("Forbidden"), &[]),
            ("busy", _) => {
                if self.busy.fetch_add(1, Ordering::SeqCst) == 0 {
                    reply(
                        429,
                        &kv_error("Throttled"),
                        &[("retry-after", "1".to_owned())],
                    )
                } else {
                    reply(200, &bundle(name, "after-busy"), &[])
                }
            }
            _ => reply(404, &kv_error("SecretNotFound"), &[]),
        })
    }
}

#[derive(Debug)]
struct FakeCredential(AtomicUsize);

#[async_trait]
impl TokenCredential for FakeCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        self.0.fetch_add(1, Ordering::SeqCst);
        assert_eq!(scopes, ["https://vault.azure.net/.default"]);
        Ok(AccessToken::new(
            TOKEN,
            azure_core::time::OffsetDateTime::now_utc() + azure_core::time::Duration::hours(1),
        ))
    }
}

fn check_against_swagger(seen: &[SeenReq]) {
    let Some(doc) = common::spec("azure-keyvault-secrets-2025-07-01.swagger.json") else {
        return;
    };
    let api_version = doc["info"]["version"].as_str().unwrap();
    let op = &doc["paths"]["/secrets/{secret-name}/{secret-version}"]["get"];
    assert_eq!(op["operationId"], "GetSecret");
    for s in seen {
        assert_eq!(s.method, "Get", "{s:?}");
        let url = url::Url::parse(&s.url).unwrap();
        let q: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        assert!(
            q.contains(&("api-version".into(), api_version.into())),
            "{s:?} lacks api-version={api_version}"
        );
        let rest = url.path().strip_prefix("/secrets/").unwrap();
        let (name, version) = rest.split_once('/').unwrap();
        assert!(
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
            "name `{name}`"
        );
        assert!(
            version.chars().all(|c| c.is_ascii_hexdigit()),
            "version `{version}`"
        );
    }
    // Our replies use only SecretBundle / KeyVaultError properties.
    let props = doc["definitions"]["SecretBundle"]["properties"]
        .as_object()
        .unwrap();
    for k in bundle("x", "y").as_object().unwrap().keys() {
        assert!(props.contains_key(k), "{k} is not a SecretBundle property");
    }
    let err_props = doc["definitions"]["KeyVaultError"]["properties"]
        .as_object()
        .unwrap();
    assert!(err_props.contains_key("error"));
    assert!(
        op["responses"]["default"]["schema"]["$ref"]
            .as_str()
            .unwrap()
            .ends_with("KeyVaultError")
    );
}

#[tokio::test]
async fn azure_through_the_sdk_with_a_fake_transport() {
    let fake = Arc::new(FakeVault::default());
    let cred = Arc::new(FakeCredential(AtomicUsize::new(0)));
    let options = ClientOptions {
        transport: Some(Transport::new(fake.clone())),
        ..Default::default()
    };
    let p = AzureProvider::with_options(VAULT, cred.clone(), options).unwrap();
    let r = SecretResolver::new(
        Arc::new(p),
        ResolverOptions {
            backoff_base: Duration::from_millis(10),
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
        v("secret:plain?version=0123456789abcdef0123456789abcdef")
            .await
            .unwrap()
            .value
            .expose_str(),
        Some("old-value")
    );
    // `/` and `_` map to `-`; the JSON-key rule splits before mapping.
    assert_eq!(
        v("secret:/db_creds")
            .await
            .unwrap()
            .value
            .expose_str()
            .map(|s| s.contains("au")),
        Some(true)
    );
    let res = v("secret:/db/creds/password").await.unwrap();
    assert_eq!(res.value.expose_str(), Some("ap"));
    assert_eq!(
        res.rule,
        Rule::JsonKey {
            secret: "db-creds".into(),
            key: "password".into()
        }
    );
    // Names Key Vault cannot hold: no request.
    let before = fake.log.lock().unwrap().len();
    let e = v("secret:db.creds").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidReference);
    assert!(e.to_string().contains("[0-9A-Za-z-]"), "{e}");
    assert_eq!(fake.log.lock().unwrap().len(), before);
    // Errors.
    let e = v("secret:missing").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert!(e.to_string().contains("provider azure-kv"), "{e}");
    let e = v("secret:denied").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AccessDenied, "{e}");
    let start = std::time::Instant::now();
    assert_eq!(
        v("secret:busy").await.unwrap().value.expose_str(),
        Some("after-busy")
    );
    assert!(start.elapsed() >= Duration::from_secs(1));
    r.health().await.unwrap();

    let seen = fake.log.lock().unwrap().clone();
    // The challenge was answered with a token from our credential.
    assert!(seen.iter().any(|s| s.auth.is_none()));
    assert!(seen.iter().any(|s| s.auth.is_some()));
    assert!(cred.0.load(Ordering::SeqCst) >= 1);
    check_against_swagger(&seen);
}
