//! `KubeConfigSecrets` against a fake Kubernetes API server on loopback: the requests the runner
//! makes to store, own and remove a run's config Secret, and how API errors map.
#![cfg(feature = "kubernetes")]

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri};
use axum::response::IntoResponse;
use runner_core::ExecutorError;
use runner_core::executor::argo::{ConfigSecrets, KubeConfigSecrets};
use serde_json::{Value, json};

#[derive(Default, Clone)]
struct Api {
    seen: Arc<Mutex<Vec<(String, String, Value)>>>,
    existing: Arc<Mutex<Vec<String>>>,
    forbid: bool,
}

async fn handle(
    State(api): State<Api>,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> impl IntoResponse {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    api.seen
        .lock()
        .unwrap()
        .push((method.to_string(), uri.path().to_owned(), body.clone()));
    let status = |code: u16, reason: &str| {
        (
            StatusCode::from_u16(code).unwrap(),
            json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": reason, "reason": reason, "code": code}).to_string(),
        )
    };
    if api.forbid {
        return status(403, "Forbidden");
    }
    let name = uri.path().rsplit('/').next().unwrap_or_default().to_owned();
    match method {
        Method::POST => {
            let n = body["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let mut existing = api.existing.lock().unwrap();
            if existing.contains(&n) {
                return status(409, "AlreadyExists");
            }
            existing.push(n);
            (StatusCode::CREATED, body.to_string())
        }
        Method::PATCH => (
            StatusCode::OK,
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}}).to_string(),
        ),
        Method::DELETE => {
            let mut existing = api.existing.lock().unwrap();
            if !existing.contains(&name) {
                return status(404, "NotFound");
            }
            existing.retain(|e| *e != name);
            (
                StatusCode::OK,
                json!({"kind": "Status", "apiVersion": "v1", "status": "Success"}).to_string(),
            )
        }
        _ => status(405, "MethodNotAllowed"),
    }
}

async fn serve(api: Api) -> KubeConfigSecrets {
    // kube's client builds a rustls config from the process default provider.
    runner_core::install_crypto_provider();
    let app = Router::new().fallback(handle).with_state(api);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let config = kube::Config::new(url.parse().unwrap());
    KubeConfigSecrets::from_client(kube::Client::try_from(config).unwrap())
}

/// The resolved value the config Secret holds.
const VALUE: &str = "kube-S3cret-value-42";

fn manifest() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": "om-orders-abc-config", "namespace": "ingestion", "labels": {"app.kubernetes.io/managed-by": "ingestion-runner"}},
        "stringData": {"config": format!("{{\"password\":\"{VALUE}\"}}")}
    })
}

#[tokio::test]
async fn put_own_and_delete_a_config_secret() {
    let api = Api::default();
    let store = serve(api.clone()).await;
    store.put("ingestion", &manifest()).await.unwrap();
    // A replayed run replaces the Secret (409 -> delete -> create).
    store.put("ingestion", &manifest()).await.unwrap();
    let owner = json!({"metadata": {"ownerReferences": [{"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "name": "om-orders-abc", "uid": "u-1"}]}});
    store
        .patch("ingestion", "om-orders-abc-config", &owner)
        .await
        .unwrap();
    store
        .delete("ingestion", "om-orders-abc-config")
        .await
        .unwrap();
    store
        .delete("ingestion", "om-orders-abc-config")
        .await
        .unwrap(); // already gone: fine

    let seen = api.seen.lock().unwrap().clone();
    let calls: Vec<(String, String)> = seen
        .iter()
        .map(|(m, p, _)| (m.clone(), p.clone()))
        .collect();
    let secrets = "/api/v1/namespaces/ingestion/secrets";
    let one = "/api/v1/namespaces/ingestion/secrets/om-orders-abc-config";
    assert_eq!(
        calls,
        vec![
            ("POST".into(), secrets.into()),
            ("POST".into(), secrets.into()),
            ("DELETE".into(), one.into()),
            ("POST".into(), secrets.into()),
            ("PATCH".into(), one.into()),
            ("DELETE".into(), one.into()),
            ("DELETE".into(), one.into()),
        ]
    );
    assert_eq!(
        seen[0].2["stringData"]["config"],
        format!("{{\"password\":\"{VALUE}\"}}")
    );
    // Leak scan of every body the API received: only the Secret itself holds the value.
    let s = runner_secrets::leak::LeakScanner::from_strs([VALUE]);
    for (method, path, body) in &seen {
        let text = body.to_string();
        if method == "POST"
            && body["kind"] == "Secret"
            && body["metadata"]["name"] == "om-orders-abc-config"
        {
            assert!(!s.scan(&text).is_empty(), "the Secret holds the value");
        } else {
            s.assert_clean(&format!("{method} {path}"), &text);
        }
    }
    assert_eq!(
        seen[4].2["metadata"]["ownerReferences"][0]["name"],
        "om-orders-abc"
    );
}

#[tokio::test]
async fn missing_rbac_names_the_permission_and_the_alternative() {
    let store = serve(Api {
        forbid: true,
        ..Default::default()
    })
    .await;
    let err = store.put("ingestion", &manifest()).await.unwrap_err();
    assert!(matches!(err, ExecutorError::Refused(_)), "{err:?}");
    let text = err.to_string();
    runner_secrets::leak::LeakScanner::from_strs([VALUE]).assert_clean("the error", &text);
    assert!(
        text.contains("create/patch/delete on secrets") && text.contains("SECRETS_DELIVERY=pod"),
        "{text}"
    );
}
