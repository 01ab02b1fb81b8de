//! The [`Executor`] trait: where runs actually happen. Implementations: [`local::LocalExecutor`]
//! (child processes on this host) and the Argo Workflows executor.
//!
//! Executors report run status changes by publishing to the [`Outbox`](crate::Outbox) they are
//! given; the dispatcher only turns requests into calls.

pub mod argo;
pub mod local;

use std::sync::Arc;

use async_trait::async_trait;
use runner_protocol::{
    ComponentHealth, ErrorBody, ErrorCode, IngestionLogs, IngestionPipeline, PipelineState,
    PipelineStatus, PipelineType, RunnerEvent,
};
use runner_secrets::{Masker, ResolvedConfig};
use serde_json::Value;

use crate::Outbox;

/// An executor failure. The message names the thing, the cause and the fix; it never holds a
/// secret value.
#[derive(Debug, thiserror::Error)]
pub enum ExecutorError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Busy(String),
    #[error("{0}")]
    Timeout(String),
    #[error("{0}")]
    Failed(String),
}

impl ExecutorError {
    pub fn code(&self) -> ErrorCode {
        match self {
            ExecutorError::NotFound(_) => ErrorCode::NotFound,
            ExecutorError::Conflict(_) => ErrorCode::Conflict,
            ExecutorError::Refused(_) => ErrorCode::Forbidden,
            ExecutorError::InvalidRequest(_) => ErrorCode::InvalidRequest,
            ExecutorError::Unavailable(_) => ErrorCode::ExecutorUnavailable,
            ExecutorError::Busy(_) => ErrorCode::Busy,
            ExecutorError::Timeout(_) => ErrorCode::Timeout,
            ExecutorError::Failed(_) => ErrorCode::ExecutorError,
        }
    }

    pub fn to_body(&self) -> ErrorBody {
        ErrorBody::new(self.code(), self.to_string())
    }
}

/// What starts a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// A `runPipeline` request.
    Manual,
    /// The pipeline's schedule fired.
    Schedule,
}

/// A run to start. `workflow_config` is the ingestion framework's workflow config (what the
/// container reads from env `config`), already built from the pipeline and service.
#[derive(Debug, Clone)]
pub struct RunSpec {
    pub pipeline: IngestionPipeline,
    pub service: Option<Value>,
    pub run_id: String,
    /// The workflow config with its `secret:` references resolved: what it exposes goes to the
    /// workload only; [`ResolvedConfig::into_original`] keeps the references as they are;
    /// [`ResolvedConfig::masker`] redacts the resolved values from the run's logs.
    pub config: ResolvedConfig,
    pub trigger: Trigger,
    /// The control plane's replacement of `sourceConfig.config` (already applied to
    /// `config`; executors that build their own objects apply it themselves).
    pub config_override: Option<Value>,
    /// The pipeline as JSON with `config_override` applied, when the preparer built it
    /// ([`crate::prepare::PreparedConfig::pipeline`]); `Null` when not.
    pub pipeline_json: Value,
}

/// An automation workflow (test connection and friends) to run once.
#[derive(Debug, Clone)]
pub struct AutomationSpec {
    pub run_id: String,
    /// The automations Workflow entity, with its references resolved (for the workload only).
    pub workflow: Value,
    /// The entity as the control plane sent it (`secret:` references unresolved).
    pub original: Value,
    pub masker: Masker,
}

/// What a deploy did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployOutcome {
    /// Whether the pipeline now has an active schedule.
    pub scheduled: bool,
    pub message: String,
}

/// Where runs happen. Every method is safe to call concurrently.
#[async_trait]
pub trait Executor: Send + Sync + 'static {
    /// `local` or `argo`, as sent in `hello`.
    fn kind(&self) -> &'static str;
    /// Where runs go (Kubernetes namespace, or `local`).
    fn namespace(&self) -> &str;
    /// Runs at once this executor allows (reported in heartbeats).
    fn capacity(&self) -> u32;
    /// Runs not yet finished.
    fn runs_in_flight(&self) -> u32;

    /// Records the pipeline and its schedule (if it has a `scheduleInterval`).
    async fn deploy(
        &self,
        pipeline: &IngestionPipeline,
        service: Option<&Value>,
    ) -> Result<DeployOutcome, ExecutorError>;
    /// Starts a run. Idempotent by `run_id`: a run id that exists is not started again and its
    /// current status is returned.
    async fn run(&self, spec: RunSpec) -> Result<PipelineStatus, ExecutorError>;
    /// Stops one run (`Some(run_id)`) or every unfinished run of the pipeline. Returns how many
    /// runs were asked to stop.
    async fn kill(
        &self,
        pipeline: &IngestionPipeline,
        run_id: Option<&str>,
    ) -> Result<u32, ExecutorError>;
    /// Removes the pipeline's schedule and its runs.
    async fn delete(&self, pipeline: &IngestionPipeline) -> Result<(), ExecutorError>;
    /// Enables or disables the pipeline's schedule.
    async fn toggle(
        &self,
        pipeline: &IngestionPipeline,
        enabled: bool,
    ) -> Result<(), ExecutorError>;
    /// Statuses of the pipeline's known runs, newest first.
    async fn statuses(
        &self,
        pipeline: &IngestionPipeline,
    ) -> Result<Vec<PipelineStatus>, ExecutorError>;
    /// One page of a run's logs (`run_id` None: the latest run).
    async fn logs(
        &self,
        pipeline: &IngestionPipeline,
        run_id: Option<&str>,
        after: Option<&str>,
    ) -> Result<IngestionLogs, ExecutorError>;
    /// Starts an automation workflow.
    async fn run_automation(&self, spec: AutomationSpec) -> Result<(), ExecutorError>;
    /// Whether the executor's backend is reachable.
    async fn health(&self) -> ComponentHealth;
    /// Resolves once the executor knows the runs a previous runner process left going (the
    /// runner waits for it, bounded, before it connects and takes new work).
    async fn ready(&self) {}
    /// Called once when the runner shuts down, with the time left for runs to finish.
    async fn shutdown(&self, grace: std::time::Duration);
}

/// Publishes status changes of runs to the outbox.
#[derive(Debug, Clone)]
pub struct StatusSink {
    outbox: Arc<Outbox>,
}

impl StatusSink {
    pub fn new(outbox: Arc<Outbox>) -> StatusSink {
        StatusSink { outbox }
    }

    pub fn publish(
        &self,
        pipeline_fqn: &str,
        pipeline_type: &PipelineType,
        status: PipelineStatus,
    ) {
        tracing::info!(
            pipeline = pipeline_fqn,
            run_id = %status.run_id,
            state = status.pipeline_state.as_str(),
            "run status"
        );
        if status.pipeline_state.is_terminal() {
            crate::metrics::metrics().job_finished(status.pipeline_state.as_str());
        }
        self.outbox.publish(RunnerEvent::RunStatus {
            pipeline_fqn: pipeline_fqn.to_owned(),
            pipeline_type: pipeline_type.clone(),
            status,
        });
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A status in `state`, timestamped now.
pub fn status_now(run_id: &str, state: PipelineState, start: Option<i64>) -> PipelineStatus {
    let now = now_ms();
    PipelineStatus {
        run_id: run_id.to_owned(),
        pipeline_state: state,
        start_date: start,
        timestamp: Some(start.unwrap_or(now)),
        end_date: state.is_terminal().then_some(now),
        status: None,
        metadata: None,
    }
}

/// Wraps an executor and records the duration and result of every call in the metrics
/// (`collate_hybrid_agent_executor_response_time_seconds`, `ingestion_runner_executor_calls`).
pub struct Timed(pub Arc<dyn Executor>);

impl Timed {
    async fn time<T, E>(
        op: &str,
        call: impl std::future::Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        let started = std::time::Instant::now();
        let result = call.await;
        crate::metrics::metrics().executor_call(op, result.is_ok(), started.elapsed());
        result
    }
}

#[async_trait]
impl Executor for Timed {
    fn kind(&self) -> &'static str {
        self.0.kind()
    }
    fn namespace(&self) -> &str {
        self.0.namespace()
    }
    fn capacity(&self) -> u32 {
        self.0.capacity()
    }
    fn runs_in_flight(&self) -> u32 {
        self.0.runs_in_flight()
    }
    async fn deploy(
        &self,
        pipeline: &IngestionPipeline,
        service: Option<&Value>,
    ) -> Result<DeployOutcome, ExecutorError> {
        Self::time("deploy", self.0.deploy(pipeline, service)).await
    }
    async fn run(&self, spec: RunSpec) -> Result<PipelineStatus, ExecutorError> {
        Self::time("run", self.0.run(spec)).await
    }
    async fn kill(
        &self,
        pipeline: &IngestionPipeline,
        run_id: Option<&str>,
    ) -> Result<u32, ExecutorError> {
        Self::time("kill", self.0.kill(pipeline, run_id)).await
    }
    async fn delete(&self, pipeline: &IngestionPipeline) -> Result<(), ExecutorError> {
        Self::time("delete", self.0.delete(pipeline)).await
    }
    async fn toggle(
        &self,
        pipeline: &IngestionPipeline,
        enabled: bool,
    ) -> Result<(), ExecutorError> {
        Self::time("toggle", self.0.toggle(pipeline, enabled)).await
    }
    async fn statuses(
        &self,
        pipeline: &IngestionPipeline,
    ) -> Result<Vec<PipelineStatus>, ExecutorError> {
        Self::time("statuses", self.0.statuses(pipeline)).await
    }
    async fn logs(
        &self,
        pipeline: &IngestionPipeline,
        run_id: Option<&str>,
        after: Option<&str>,
    ) -> Result<IngestionLogs, ExecutorError> {
        Self::time("logs", self.0.logs(pipeline, run_id, after)).await
    }
    async fn run_automation(&self, spec: AutomationSpec) -> Result<(), ExecutorError> {
        Self::time("run_automation", self.0.run_automation(spec)).await
    }
    async fn health(&self) -> ComponentHealth {
        let started = std::time::Instant::now();
        let health = self.0.health().await;
        crate::metrics::metrics().executor_call("health", health.ok, started.elapsed());
        health
    }
    async fn ready(&self) {
        self.0.ready().await
    }
    async fn shutdown(&self, grace: std::time::Duration) {
        self.0.shutdown(grace).await
    }
}
