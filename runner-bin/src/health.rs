//! The health server (`HEALTH_BIND`, default `0.0.0.0:8585`, the vendor chart's app port):
//! `/healthz` (the process is live), `/readyz` (connected, executor and secrets backend
//! reachable; 503 with the reasons otherwise), `/status` (JSON for operators and dashboards).

use std::net::SocketAddr;

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json};
use axum::routing::get;
use runner_core::runner::StatusHandle;
use serde_json::json;
use tokio_util::sync::CancellationToken;

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(status): State<StatusHandle>) -> impl IntoResponse {
    match status.get().ready() {
        Ok(()) => (StatusCode::OK, Json(json!({"ready": true}))),
        Err(reasons) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"ready": false, "reasons": reasons})),
        ),
    }
}

async fn status(State(status): State<StatusHandle>) -> impl IntoResponse {
    Json(status.get())
}

async fn metrics() -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        runner_core::metrics::metrics().encode(),
    )
}

/// `/healthz`, `/readyz`, `/status`.
pub fn health_routes(handle: StatusHandle) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/status", get(status))
        .with_state(handle)
}

/// `/metrics` (Prometheus / OpenMetrics text).
pub fn metrics_routes() -> Router {
    Router::new().route("/metrics", get(metrics))
}

/// Binds now (so a taken port fails the start with a clear error) and serves `app` until
/// `shutdown`. `setting` names the variable in errors.
pub async fn start(
    setting: &str,
    bind: SocketAddr,
    app: Router,
    shutdown: CancellationToken,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(bind).await.with_context(|| {
        format!("cannot listen on {setting}={bind} (port taken, or not allowed); choose another address or `off`")
    })?;
    tracing::info!(%bind, setting, "serving");
    Ok(tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await });
        if let Err(e) = served.await {
            tracing::error!(error = %e, "HTTP server stopped");
        }
    }))
}
