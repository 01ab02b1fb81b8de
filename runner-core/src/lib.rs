//! The Hybrid Ingestion Runner's orchestration: the connection loop to the control plane, request
//! dispatch, executors (local processes here, Argo Workflows in `executor::argo`), run tracking,
//! the outbox of status events, and shutdown.
//!
//! Entry point: [`Runner`]. It takes a validated [`RunnerConfig`] and an [`Executor`], and runs
//! until its [`CancellationToken`](tokio_util::sync::CancellationToken) is cancelled.

pub mod backoff;
pub mod config;
pub mod connection;
pub mod dispatch;
pub mod error;
pub mod executor;
pub mod expiry;
pub mod metrics;
pub mod outbox;
pub mod prepare;
pub mod proxy;
pub mod runner;
pub mod schedule;
pub mod workflow_config;

#[cfg(feature = "testkit")]
pub mod testkit;

pub use config::{AuthToken, RunnerConfig, ServerUrl};
pub use error::CoreError;
pub use executor::{Executor, ExecutorError};
pub use outbox::Outbox;
pub use prepare::Preparer;
pub use runner::{Runner, RunnerStatus};
/// The Argo crate, for callers that configure the Argo executor.
pub use runner_argo as argo;
/// The secrets crate, for callers that configure the resolver.
pub use runner_secrets as secrets;

/// The runner's version, sent in `hello` and in `getServiceStatus`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The `platform` of every `PipelineServiceClientResponse` this runner sends.
pub const PLATFORM: &str = "hybrid-runner";

/// Locks a mutex; a panic while it was held leaves data this crate keeps consistent (every
/// critical section is one step), so poisoning is ignored rather than propagated.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Installs rustls's `ring` backend as the process default. Call once at start: with every
/// cloud SDK compiled in, rustls has two backends and libraries that use the process default
/// (kube's TLS setup) would otherwise panic.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
