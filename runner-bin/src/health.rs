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

/// Binds now (so a taken port fails the start with a clear error) and serves until `shutdown`.
pub async fn start(
    bind: SocketAddr,
    handle: StatusHandle,
    shutdown: CancellationToken,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(bind).await.with_context(|| {
        format!("cannot listen on HEALTH_BIND={bind} (port taken, or not allowed); choose another address or `off`")
    })?;
    tracing::info!(%bind, "health server: /healthz /readyz /status");
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/status", get(status))
        .with_state(handle);
    Ok(tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await });
        if let Err(e) = served.await {
            tracing::error!(error = %e, "health server stopped");
        }
    }))
}
