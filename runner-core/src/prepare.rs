//! Preparing a run: the workflow config built from the request, with every `secret:` reference
//! resolved through the customer's secrets manager, and a masker for the resolved values.
//!
//! Both the dispatcher (manual runs, automations) and the executors (scheduled runs) prepare
//! runs here, so resolution happens right before a run starts and a reference that does not
//! resolve fails the request before anything is started.

use std::sync::Arc;

use async_trait::async_trait;
use runner_protocol::{ComponentHealth, ErrorBody, ErrorCode, IngestionPipeline};
use runner_secrets::{ErrorKind, ResolvedConfig, SecretError, SecretResolver};
use serde_json::Value;

use crate::runner::HealthProbe;

/// A run's config ready for the workload: every `secret:` reference resolved. The config with
/// the values in place ([`ResolvedConfig::expose`]) goes to the workload only (child env, a
/// per-run Kubernetes Secret), never to a log or upstream; it is built only when a workload
/// needs it. [`ResolvedConfig::into_original`] is what a pod that resolves the references
/// itself gets (`SECRETS_DELIVERY=pod`).
#[derive(Clone, Default)]
pub struct PreparedConfig {
    /// Also holds the masker that redacts the resolved values (and their encodings) from logs
    /// and messages ([`ResolvedConfig::masker`]) and the references resolved.
    pub config: ResolvedConfig,
    /// For a pipeline run: the pipeline entity as JSON with `configOverride` applied (built
    /// on the way, so executors that build objects from it need not convert it again).
    /// `Null` otherwise.
    pub pipeline: Value,
}

impl std::fmt::Debug for PreparedConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedConfig")
            .field("config", &self.config)
            .finish()
    }
}

/// Builds and resolves run configs.
#[derive(Clone, Default)]
pub struct Preparer {
    resolver: Option<Arc<SecretResolver>>,
    server_host_api_url: Option<String>,
}

impl std::fmt::Debug for Preparer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Preparer")
            .field(
                "secrets",
                &self.resolver.as_ref().map(|r| r.provider_kind()),
            )
            .finish()
    }
}

/// The error reply for a reference that did not resolve. The message names the reference, the
/// provider, the rule tried, the cause and the fix; never a value.
pub fn secret_error_body(e: &SecretError) -> ErrorBody {
    let code = match e.kind() {
        ErrorKind::NotAllowed => ErrorCode::Forbidden,
        ErrorKind::Unavailable | ErrorKind::Timeout | ErrorKind::Throttled => {
            ErrorCode::SecretUnresolved
        }
        _ => ErrorCode::SecretUnresolved,
    };
    let mut body = ErrorBody::new(
        code,
        format!("secret not resolved, nothing was started: {e}"),
    );
    body.retryable = matches!(
        e.kind(),
        ErrorKind::Unavailable | ErrorKind::Timeout | ErrorKind::Throttled
    );
    body
}

impl Preparer {
    /// `resolver: None` leaves `secret:` references as they are (no secrets backend).
    pub fn new(
        resolver: Option<Arc<SecretResolver>>,
        server_host_api_url: Option<String>,
    ) -> Preparer {
        Preparer {
            resolver,
            server_host_api_url,
        }
    }

    pub fn resolver(&self) -> Option<&Arc<SecretResolver>> {
        self.resolver.as_ref()
    }

    /// The workflow config of a pipeline run, resolved.
    pub async fn pipeline_run(
        &self,
        pipeline: &IngestionPipeline,
        service: Option<&Value>,
        run_id: &str,
        config_override: Option<&Value>,
    ) -> Result<PreparedConfig, ErrorBody> {
        let crate::workflow_config::RunConfig {
            mut config,
            pipeline,
        } = crate::workflow_config::build(pipeline, service, run_id, config_override)
            .map_err(|e| e.to_body())?;
        if let Some(url) = &self.server_host_api_url {
            runner_argo::build::set_server_host(&mut config, url);
        }
        let mut prepared = self.resolve(config).await?;
        prepared.pipeline = pipeline;
        Ok(prepared)
    }

    /// An automation workflow (test connection), resolved.
    pub async fn automation(&self, workflow: &Value) -> Result<PreparedConfig, ErrorBody> {
        self.resolve(workflow.clone()).await
    }

    /// Resolves the references of a config built elsewhere (the Argo builders).
    pub async fn resolve(&self, config: Value) -> Result<PreparedConfig, ErrorBody> {
        let Some(resolver) = &self.resolver else {
            return Ok(PreparedConfig {
                config: ResolvedConfig::without_references(config),
                pipeline: Value::Null,
            });
        };
        let provider = format!("{:?}", resolver.provider_kind()).to_ascii_lowercase();
        let resolved = match resolver.resolve_config_owned(config).await {
            Ok(r) => r,
            Err(e) => {
                crate::metrics::metrics().secrets_resolved(&provider, false, 1);
                return Err(secret_error_body(&e));
            }
        };
        let references = resolved.references().len();
        crate::metrics::metrics().secrets_resolved(&provider, true, references as u64);
        if references > 0 {
            tracing::debug!(references, "secret references resolved");
        }
        Ok(PreparedConfig {
            config: resolved,
            pipeline: Value::Null,
        })
    }
}

/// Readiness of the secrets backend, for heartbeats and `/readyz`.
#[async_trait]
impl HealthProbe for Preparer {
    async fn check(&self) -> ComponentHealth {
        match &self.resolver {
            None => ComponentHealth {
                ok: true,
                detail: Some("no secrets backend in use".into()),
            },
            Some(r) => match r.health().await {
                Ok(()) => ComponentHealth {
                    ok: true,
                    detail: None,
                },
                Err(e) => ComponentHealth {
                    ok: false,
                    detail: Some(e.to_string()),
                },
            },
        }
    }
}
