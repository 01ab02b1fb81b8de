//! Argo Workflows for the Hybrid Ingestion Runner: a typed client of the Argo Server
//! REST API, builders of Workflow / CronWorkflow objects from a pipeline request,
//! status mapping, and log / watch streams. See docs/argo.md.
//!
//! This crate knows nothing of the wire protocol or of secrets resolution: inputs are
//! plain JSON (`serde_json::Value`) and the crate's own typed structs.

pub mod build;
pub mod client;
pub mod error;
pub mod informer;
pub mod logs;
pub mod model;
pub mod status;
pub mod stream;
pub mod trust;

#[cfg(feature = "fake")]
pub mod fake;
#[cfg(feature = "fake")]
pub mod schema;

pub use build::{BuildConfig, BuildError, BuiltCron, BuiltRun, RunRequest, SecretsDelivery};
pub use client::{ArgoClient, ArgoClientConfig, LogOptions, RetryPolicy, TokenSource};
pub use error::ArgoError;
pub use informer::{InformerConfig, InformerEvent, informer};
pub use status::{PipelineState, RunStatus};
pub use stream::{ArgoStream, StreamFormat};

/// Where the upstream Argo API definitions are (`swagger.json`, the CRDs):
/// `$ARGO_SPECS_DIR`, else `shared/specs/argo` beside the repository checkout.
/// They are read from there, never copied into the repository.
pub fn schema_dir() -> std::path::PathBuf {
    if let Some(d) = std::env::var_os("ARGO_SPECS_DIR") {
        return d.into();
    }
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/specs/argo")
}
