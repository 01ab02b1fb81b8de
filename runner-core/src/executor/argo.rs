//! The Argo Workflows executor: each run is a Workflow, each schedule a CronWorkflow, in the
//! customer's cluster, created through the Argo Server REST API (`runner-argo`).
//!
//! Status comes from one watch per namespace on this runner's label (`runner_selector`), with a
//! list to resync whenever the watch is (re)established; that first list also re-attaches the
//! runs a previous runner process left going. Runs keep going in Argo when the runner stops.
//!
//! Secrets. `SECRETS_DELIVERY=runner`: the runner resolves the run's config and stores it in a
//! Kubernetes Secret (through [`ConfigSecrets`]) created before the Workflow and then owned by it,
//! so Kubernetes deletes it with the Workflow; the pod reads `config` through `secretKeyRef` and
//! the Workflow holds no value. A CronWorkflow gets one such Secret, owned by the CronWorkflow,
//! refreshed at each deploy. `SECRETS_DELIVERY=pod`: the Workflow carries the `secret:`
//! references and the pod resolves them itself. Either way the dispatcher has resolved every
//! reference before the executor is called, so nothing starts with a broken reference.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use runner_argo::build::{
    ANNOTATION_PIPELINE_FQN, LABEL_KIND, LABEL_PIPELINE_TYPE, LABEL_RUN_ID, RunRequest,
    SecretsDelivery, build_automation_workflow, build_cron_workflow,
    build_run_workflow_with_config, cron_workflow_name, pipeline_selector, run_selector,
    runner_selector,
};
use runner_argo::informer::{InformerConfig, InformerEvent, informer};
use runner_argo::model::Workflow;
use runner_argo::{ArgoClient, ArgoClientConfig, ArgoError, BuildConfig, LogOptions};
use runner_protocol::{
    ComponentHealth, IngestionLogs, IngestionPipeline, PipelineState, PipelineStatus, PipelineType,
};
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{AutomationSpec, DeployOutcome, Executor, ExecutorError, RunSpec, StatusSink, now_ms};
use crate::lock;
use crate::prepare::Preparer;

/// Settings of the Argo executor.
#[derive(Debug, Clone)]
pub struct ArgoSettings {
    pub client: ArgoClientConfig,
    pub build: BuildConfig,
    /// Time between `stop` (exit handler runs) and `terminate` of a killed run.
    pub kill_grace: Duration,
    /// Bytes per page of `getIngestionLogs`.
    pub log_page_bytes: usize,
    /// Log bytes read from Argo per request.
    pub log_max_bytes: usize,
}

impl ArgoSettings {
    pub fn new(client: ArgoClientConfig, build: BuildConfig) -> ArgoSettings {
        ArgoSettings {
            client,
            build,
            kill_grace: Duration::from_secs(30),
            log_page_bytes: 256 * 1024,
            log_max_bytes: 16 * 1024 * 1024,
        }
    }
}

/// Where the runner stores resolved run configs (`SECRETS_DELIVERY=runner`): the Kubernetes API.
#[async_trait]
pub trait ConfigSecrets: Send + Sync {
    /// Creates the Secret described by `manifest` (a v1 Secret); an existing one is replaced.
    async fn put(&self, namespace: &str, manifest: &Value) -> Result<(), ExecutorError>;
    /// Merge-patches Secret `name` (used to set its owner).
    async fn patch(&self, namespace: &str, name: &str, patch: &Value) -> Result<(), ExecutorError>;
    /// Deletes Secret `name`; a missing one is not an error.
    async fn delete(&self, namespace: &str, name: &str) -> Result<(), ExecutorError>;
}

#[derive(Debug, Clone)]
struct Tracked {
    state: PipelineState,
}

struct Inner {
    client: ArgoClient,
    settings: ArgoSettings,
    sink: StatusSink,
    preparer: Arc<Preparer>,
    config_secrets: Option<Arc<dyn ConfigSecrets>>,
    /// Last state reported per workflow name.
    runs: Mutex<HashMap<String, Tracked>>,
    /// Set after the first full list: every run left going is tracked again.
    resynced: tokio::sync::watch::Sender<bool>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

/// Runs pipelines as Argo Workflows.
#[derive(Clone)]
pub struct ArgoExecutor {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ArgoExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArgoExecutor")
            .field("endpoint", &self.inner.client.endpoint())
            .field("namespace", &self.inner.settings.build.namespace)
            .finish()
    }
}

fn argo_err(e: ArgoError) -> ExecutorError {
    let text = e.to_string();
    if e.is_not_found() {
        return ExecutorError::NotFound(text);
    }
    if e.is_already_exists() {
        return ExecutorError::Conflict(text);
    }
    if e.is_retryable() {
        return ExecutorError::Unavailable(text);
    }
    ExecutorError::Failed(text)
}

fn build_err(e: runner_argo::BuildError) -> ExecutorError {
    let text = e.to_string();
    match e {
        runner_argo::BuildError::Forbidden { .. } | runner_argo::BuildError::PlaintextSecret(_) => {
            ExecutorError::Refused(text)
        }
        _ => ExecutorError::InvalidRequest(text),
    }
}

fn to_state(s: runner_argo::PipelineState) -> PipelineState {
    use runner_argo::PipelineState as A;
    match s {
        A::Queued => PipelineState::Queued,
        A::Running => PipelineState::Running,
        A::Success => PipelineState::Success,
        A::Failed => PipelineState::Failed,
        A::PartialSuccess => PipelineState::PartialSuccess,
        A::Stopped => PipelineState::Stopped,
    }
}

/// The status of a workflow as OpenMetadata wants it, with who it belongs to.
fn status_of(wf: &Workflow) -> (String, PipelineType, PipelineStatus) {
    let st = runner_argo::status::map_workflow(wf);
    let fqn = wf
        .metadata
        .annotations
        .get(ANNOTATION_PIPELINE_FQN)
        .cloned()
        .unwrap_or_else(|| wf.name().to_owned());
    let kind = wf.label(LABEL_KIND).unwrap_or_default();
    let ptype = match wf.label(LABEL_PIPELINE_TYPE) {
        _ if kind == "automation" => PipelineType::Other("automation".into()),
        Some(t) => PipelineType::parse(t),
        None => PipelineType::Other("unknown".into()),
    };
    let mut metadata = serde_json::Map::new();
    metadata.insert("workflow".into(), Value::String(st.workflow_name.clone()));
    if let Some(m) = &st.message {
        metadata.insert("message".into(), Value::String(m.clone()));
    }
    let status = PipelineStatus {
        run_id: st.run_id.clone().unwrap_or_else(|| wf.name().to_owned()),
        pipeline_state: to_state(st.state),
        start_date: st.start_date_ms,
        timestamp: st.start_date_ms.or(Some(now_ms())),
        end_date: st.end_date_ms,
        status: None,
        metadata: Some(metadata),
    };
    (fqn, ptype, status)
}

impl ArgoExecutor {
    /// Builds the client and starts the watch that tracks this runner's workflows.
    /// `config_secrets` is required with `SECRETS_DELIVERY=runner`.
    pub fn start(
        settings: ArgoSettings,
        sink: StatusSink,
        preparer: Arc<Preparer>,
        config_secrets: Option<Arc<dyn ConfigSecrets>>,
    ) -> Result<ArgoExecutor, ExecutorError> {
        if settings.build.secrets_delivery == SecretsDelivery::Runner && config_secrets.is_none() {
            return Err(ExecutorError::InvalidRequest(
                "SECRETS_DELIVERY=runner needs the Kubernetes API to store resolved configs in Secrets, and this build has no Kubernetes client (feature `kubernetes`); set SECRETS_DELIVERY=pod".into(),
            ));
        }
        let client = ArgoClient::new(settings.client.clone()).map_err(argo_err)?;
        let inner = Arc::new(Inner {
            client,
            settings,
            sink,
            preparer,
            config_secrets,
            runs: Mutex::new(HashMap::new()),
            resynced: tokio::sync::watch::channel(false).0,
            shutdown: CancellationToken::new(),
            tracker: TaskTracker::new(),
        });
        let watcher = inner.clone();
        inner
            .tracker
            .spawn(async move { watcher.watch_loop().await });
        Ok(ArgoExecutor { inner })
    }
}

impl Inner {
    fn ns(&self) -> &str {
        &self.settings.build.namespace
    }

    fn runner_id(&self) -> &str {
        &self.settings.build.runner_id
    }

    /// Label selector of one run (`Some(run_id)`) or of every run of the pipeline.
    fn selector(&self, pipeline: &IngestionPipeline, run_id: Option<&str>) -> String {
        match run_id {
            Some(id) => run_selector(self.runner_id(), id),
            None => pipeline_selector(self.runner_id(), pipeline.fqn()),
        }
    }

    /// Records a workflow's state; publishes it when it changed.
    fn observe(&self, wf: &Workflow) {
        let (fqn, ptype, status) = status_of(wf);
        let changed = {
            let mut runs = lock(&self.runs);
            let prev = runs.insert(
                wf.name().to_owned(),
                Tracked {
                    state: status.pipeline_state,
                },
            );
            prev.is_none_or(|p| p.state != status.pipeline_state)
        };
        if changed {
            self.sink.publish(&fqn, &ptype, status);
        }
    }

    /// Follows this runner's workflows through `runner-argo`'s informer (one list, then one
    /// watch; re-watch after EOF, re-list after errors). The first list re-attaches the runs a
    /// previous runner process left going.
    async fn watch_loop(self: Arc<Self>) {
        let selector = runner_selector(self.runner_id());
        let events = informer(
            self.client.clone(),
            self.ns(),
            &selector,
            InformerConfig::default(),
        );
        tokio::pin!(events);
        loop {
            let event = tokio::select! {
                e = events.next() => e,
                _ = self.shutdown.cancelled() => return,
            };
            match event {
                None => return,
                Some(InformerEvent::Resync(items)) => {
                    items.iter().for_each(|wf| self.observe(wf));
                    if !*self.resynced.borrow() {
                        tracing::info!(
                            runs = items.len(),
                            "re-attached to this runner's workflows in Argo"
                        );
                    }
                    self.resynced.send_replace(true);
                }
                Some(InformerEvent::Applied(wf)) => self.observe(&wf),
                Some(InformerEvent::Deleted(wf)) => {
                    lock(&self.runs).remove(wf.name());
                }
                Some(InformerEvent::Interrupted { error, retry_in }) => {
                    tracing::warn!(%error, retry_in_ms = retry_in.as_millis() as u64, "Argo watch interrupted");
                }
            }
        }
    }

    /// `SECRETS_DELIVERY=runner`: resolves `config` (built unresolved by the Argo builders) and
    /// stores it in Secret `name` before the object that reads it is created.
    async fn store_config(
        &self,
        name: &str,
        labels: &std::collections::BTreeMap<String, String>,
        config: &Value,
    ) -> Result<(), ExecutorError> {
        let prepared = self
            .preparer
            .resolve(config.clone())
            .await
            .map_err(|e| ExecutorError::InvalidRequest(e.message))?;
        self.put_config(name, labels, prepared.config.expose())
            .await
    }

    /// Stores an already resolved config in Secret `name`.
    async fn put_config(
        &self,
        name: &str,
        labels: &std::collections::BTreeMap<String, String>,
        resolved: &Value,
    ) -> Result<(), ExecutorError> {
        let store = self.config_secrets.as_ref().ok_or_else(|| {
            ExecutorError::Unavailable("SECRETS_DELIVERY=runner but no Kubernetes client".into())
        })?;
        let text = runner_argo::build::config_text(resolved);
        let manifest =
            runner_argo::build::config_secret(&self.settings.build, name, labels, &text, None);
        store.put(self.ns(), &manifest).await
    }

    /// Makes Secret `name` owned by the object that reads it, so Kubernetes deletes it with it.
    async fn own_config(&self, name: &str, owner: &runner_argo::build::OwnerRef) {
        let Some(store) = &self.config_secrets else {
            return;
        };
        let patch = runner_argo::build::owner_patch(owner);
        if let Err(e) = store.patch(self.ns(), name, &patch).await {
            tracing::warn!(secret = name, error = %e, "could not set the owner of a config Secret; it will not be garbage-collected with its workflow");
        }
    }

    /// Deletes the pipeline's CronWorkflow; one that does not exist is not an error.
    async fn delete_cron(&self, pipeline: &IngestionPipeline) -> Result<(), ExecutorError> {
        let name = cron_workflow_name(&pipeline.name, pipeline.fqn());
        match self.client.delete_cron_workflow(self.ns(), &name).await {
            Ok(()) | Err(ArgoError::NotFound { .. }) => Ok(()),
            Err(e) => Err(argo_err(e)),
        }
    }

    async fn workflows_of(&self, selector: &str) -> Result<Vec<Workflow>, ExecutorError> {
        let mut items = self
            .client
            .list_workflows(self.ns(), selector)
            .await
            .map_err(argo_err)?
            .items;
        // Newest first.
        items.sort_by(|a, b| {
            let t = |w: &Workflow| w.metadata.creation_timestamp.clone().unwrap_or_default();
            t(b).cmp(&t(a))
        });
        Ok(items)
    }
}

fn pipeline_json(pipeline: &IngestionPipeline) -> Result<Value, ExecutorError> {
    serde_json::to_value(pipeline)
        .map_err(|e| ExecutorError::InvalidRequest(format!("pipeline `{}`: {e}", pipeline.fqn())))
}

#[async_trait]
impl Executor for ArgoExecutor {
    fn kind(&self) -> &'static str {
        "argo"
    }

    fn namespace(&self) -> &str {
        self.inner.ns()
    }

    /// Argo schedules runs on the cluster's capacity: no fixed bound here (0).
    fn capacity(&self) -> u32 {
        0
    }

    fn runs_in_flight(&self) -> u32 {
        lock(&self.inner.runs)
            .values()
            .filter(|t| !t.state.is_terminal())
            .count() as u32
    }

    async fn deploy(
        &self,
        pipeline: &IngestionPipeline,
        service: Option<&Value>,
    ) -> Result<DeployOutcome, ExecutorError> {
        let pj = pipeline_json(pipeline)?;
        let built =
            build_cron_workflow(&self.inner.settings.build, &pj, service).map_err(build_err)?;
        let Some(built) = built else {
            // No schedule (any more): remove a previous one.
            self.inner.delete_cron(pipeline).await?;
            return Ok(DeployOutcome {
                scheduled: false,
                message: "deployed; no schedule (runs on demand)".into(),
            });
        };
        let name = built
            .cron_workflow
            .metadata
            .name
            .clone()
            .unwrap_or_default();
        if let (Some(secret), Some(config)) = (&built.config_secret_name, &built.config) {
            self.inner
                .store_config(secret, &built.cron_workflow.metadata.labels, config)
                .await?;
        }
        let (cron, created) = self
            .inner
            .client
            .apply_cron_workflow(self.inner.ns(), &built.cron_workflow)
            .await
            .map_err(argo_err)?;
        if let (Some(secret), Some(uid)) = (&built.config_secret_name, &cron.metadata.uid) {
            self.inner
                .own_config(
                    secret,
                    &runner_argo::build::OwnerRef::cron_workflow(&name, uid),
                )
                .await;
        }
        let suspended = built.cron_workflow.spec.suspend.unwrap_or(false);
        Ok(DeployOutcome {
            scheduled: !suspended,
            message: format!(
                "deployed; CronWorkflow {}/{name} {}{}",
                self.inner.ns(),
                if created { "created" } else { "updated" },
                if suspended { " (suspended)" } else { "" }
            ),
        })
    }

    async fn run(&self, mut spec: RunSpec) -> Result<PipelineStatus, ExecutorError> {
        let pj = match std::mem::take(&mut spec.pipeline_json) {
            pj @ Value::Object(_) => pj,
            _ => {
                let mut pj = pipeline_json(&spec.pipeline)?;
                if let Some(over) = spec.config_override.as_ref() {
                    crate::workflow_config::apply_override(&mut pj, over);
                }
                pj
            }
        };
        // The dispatcher built this run's config and resolved its references; the Workflow
        // gets the unresolved one, and with runner delivery the resolved one goes into its
        // Secret (built here, once). With pod delivery the resolved one is never built.
        let (unresolved_config, resolved) = match self.inner.settings.build.secrets_delivery {
            SecretsDelivery::Runner => {
                let (unresolved, resolved) = spec.config.into_configs();
                (unresolved, Some(resolved))
            }
            SecretsDelivery::Pod => (spec.config.into_original(), None),
        };
        let built = build_run_workflow_with_config(
            &self.inner.settings.build,
            &RunRequest {
                pipeline: &pj,
                service: spec.service.as_ref(),
                run_id: &spec.run_id,
                overrides: None,
            },
            unresolved_config,
        )
        .map_err(build_err)?;
        if let Some(secret) = &built.config_secret_name {
            let resolved = resolved.as_ref().ok_or_else(|| {
                ExecutorError::Unavailable(format!(
                    "run {}: the Workflow reads its config from Secret {secret}, but this runner's SECRETS_DELIVERY is not `runner`; report this as a bug",
                    spec.run_id
                ))
            })?;
            self.inner
                .put_config(secret, &built.workflow.metadata.labels, resolved)
                .await?;
        }
        let submitted = self
            .inner
            .client
            .create_workflow_idempotent(self.inner.ns(), &built.workflow, LABEL_RUN_ID)
            .await;
        let (wf, created) = match submitted {
            Ok(x) => x,
            Err(e) => {
                // Nothing will read the Secret: remove it now rather than leave a resolved config.
                if let (Some(secret), Some(store)) =
                    (&built.config_secret_name, &self.inner.config_secrets)
                {
                    let _ = store.delete(self.inner.ns(), secret).await;
                }
                return Err(argo_err(e));
            }
        };
        if let (true, Some(secret), Some(uid)) =
            (created, &built.config_secret_name, &wf.metadata.uid)
        {
            self.inner
                .own_config(
                    secret,
                    &runner_argo::build::OwnerRef::workflow(wf.name(), uid),
                )
                .await;
        }
        if !created {
            tracing::info!(run_id = %spec.run_id, workflow = wf.name(), "run already submitted; not creating a second workflow");
        }
        self.inner.observe(&wf);
        Ok(status_of(&wf).2)
    }

    async fn kill(
        &self,
        pipeline: &IngestionPipeline,
        run_id: Option<&str>,
    ) -> Result<u32, ExecutorError> {
        let selector = self.inner.selector(pipeline, run_id);
        let targets: Vec<Workflow> = self
            .inner
            .workflows_of(&selector)
            .await?
            .into_iter()
            .filter(|w| !status_of(w).2.pipeline_state.is_terminal())
            .collect();
        if targets.is_empty() && run_id.is_some() {
            return Err(ExecutorError::NotFound(format!(
                "no unfinished run `{}` of `{}` in namespace {}",
                run_id.unwrap_or_default(),
                pipeline.fqn(),
                self.inner.ns()
            )));
        }
        for wf in &targets {
            let name = wf.name().to_owned();
            self.inner
                .client
                .stop_workflow(
                    self.inner.ns(),
                    &name,
                    Some("stopped on request from the control plane"),
                )
                .await
                .map_err(argo_err)?;
            // Terminate if the exit handler does not let it finish within the grace period.
            let inner = self.inner.clone();
            self.inner.tracker.spawn(async move {
                tokio::time::sleep(inner.settings.kill_grace).await;
                let done = lock(&inner.runs).get(&name).is_some_and(|t| t.state.is_terminal());
                if !done
                    && let Err(e) = inner.client.terminate_workflow(inner.ns(), &name).await
                    && !e.is_not_found()
                {
                    tracing::warn!(workflow = %name, error = %e, "terminate after the kill grace period failed");
                }
            });
        }
        Ok(targets.len() as u32)
    }

    async fn delete(&self, pipeline: &IngestionPipeline) -> Result<(), ExecutorError> {
        self.inner.delete_cron(pipeline).await?;
        self.inner
            .client
            .delete_workflows_by_label(
                self.inner.ns(),
                &pipeline_selector(self.inner.runner_id(), pipeline.fqn()),
            )
            .await
            .map_err(argo_err)?;
        Ok(())
    }

    async fn toggle(
        &self,
        pipeline: &IngestionPipeline,
        enabled: bool,
    ) -> Result<(), ExecutorError> {
        let name = cron_workflow_name(&pipeline.name, pipeline.fqn());
        let result = if enabled {
            self.inner
                .client
                .resume_cron_workflow(self.inner.ns(), &name)
                .await
        } else {
            self.inner
                .client
                .suspend_cron_workflow(self.inner.ns(), &name)
                .await
        };
        match result {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Err(ExecutorError::NotFound(format!(
                "pipeline `{}` has no CronWorkflow {}/{name}: deploy it with a scheduleInterval first",
                pipeline.fqn(),
                self.inner.ns()
            ))),
            Err(e) => Err(argo_err(e)),
        }
    }

    async fn statuses(
        &self,
        pipeline: &IngestionPipeline,
    ) -> Result<Vec<PipelineStatus>, ExecutorError> {
        let selector = pipeline_selector(self.inner.runner_id(), pipeline.fqn());
        Ok(self
            .inner
            .workflows_of(&selector)
            .await?
            .iter()
            .map(|w| status_of(w).2)
            .collect())
    }

    async fn logs(
        &self,
        pipeline: &IngestionPipeline,
        run_id: Option<&str>,
        after: Option<&str>,
    ) -> Result<IngestionLogs, ExecutorError> {
        let selector = self.inner.selector(pipeline, run_id);
        let wf = self
            .inner
            .workflows_of(&selector)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| {
                ExecutorError::NotFound(format!(
                    "no workflow for `{}`{} in namespace {}",
                    pipeline.fqn(),
                    run_id.map(|r| format!(" run {r}")).unwrap_or_default(),
                    self.inner.ns()
                ))
            })?;
        let stream = self
            .inner
            .client
            .workflow_logs(self.inner.ns(), wf.name(), &LogOptions::default())
            .await
            .map_err(argo_err)?;
        let text = runner_argo::logs::collect_log_text(stream, self.inner.settings.log_max_bytes)
            .await
            .map_err(argo_err)?;
        let page = runner_argo::logs::page_logs(
            pipeline.pipeline_type.as_str(),
            &text,
            after,
            self.inner.settings.log_page_bytes,
        );
        let mut tasks = std::collections::BTreeMap::new();
        tasks.insert(page.task_key, page.content);
        Ok(IngestionLogs {
            tasks,
            total: page.total as u32,
            after: page.after.map(|a| a.to_string()),
        })
    }

    async fn run_automation(&self, spec: AutomationSpec) -> Result<(), ExecutorError> {
        // The Workflow carries the original (unresolved) automation: values stay out of etcd.
        let built =
            build_automation_workflow(&self.inner.settings.build, &spec.original, &spec.run_id)
                .map_err(build_err)?;
        if let (Some(secret), Some(config)) = (&built.config_secret_name, &built.config) {
            self.inner
                .store_config(secret, &built.workflow.metadata.labels, config)
                .await?;
        }
        let (wf, created) = self
            .inner
            .client
            .create_workflow_idempotent(self.inner.ns(), &built.workflow, LABEL_RUN_ID)
            .await
            .map_err(argo_err)?;
        if let (true, Some(secret), Some(uid)) =
            (created, &built.config_secret_name, &wf.metadata.uid)
        {
            self.inner
                .own_config(
                    secret,
                    &runner_argo::build::OwnerRef::workflow(wf.name(), uid),
                )
                .await;
        }
        self.inner.observe(&wf);
        Ok(())
    }

    async fn ready(&self) {
        let mut rx = self.inner.resynced.subscribe();
        let _ = rx.wait_for(|done| *done).await;
    }

    async fn health(&self) -> ComponentHealth {
        match self.inner.client.version().await {
            Ok(_) => ComponentHealth {
                ok: true,
                detail: None,
            },
            Err(e) => ComponentHealth {
                ok: false,
                detail: Some(e.to_string()),
            },
        }
    }

    async fn shutdown(&self, _grace: Duration) {
        // Runs keep going in Argo; the next runner re-attaches to them.
        self.inner.shutdown.cancel();
        self.inner.tracker.close();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.inner.tracker.wait()).await;
    }
}

/// [`ConfigSecrets`] over the Kubernetes API (in-cluster service account or kubeconfig).
#[cfg(feature = "kubernetes")]
pub struct KubeConfigSecrets {
    client: kube::Client,
}

#[cfg(feature = "kubernetes")]
impl KubeConfigSecrets {
    /// A client from the in-cluster service account, else the kubeconfig.
    pub async fn infer() -> Result<KubeConfigSecrets, ExecutorError> {
        crate::install_crypto_provider();
        let client = kube::Client::try_default().await.map_err(|e| {
            ExecutorError::Unavailable(format!(
                "SECRETS_DELIVERY=runner needs the Kubernetes API: no in-cluster service account and no kubeconfig ({e}); run in the cluster or set SECRETS_DELIVERY=pod"
            ))
        })?;
        Ok(KubeConfigSecrets { client })
    }

    /// Over a ready client (tests: a client over a fake API server).
    pub fn from_client(client: kube::Client) -> KubeConfigSecrets {
        KubeConfigSecrets { client }
    }

    fn api(&self, namespace: &str) -> kube::Api<k8s_openapi::api::core::v1::Secret> {
        kube::Api::namespaced(self.client.clone(), namespace)
    }
}

#[cfg(feature = "kubernetes")]
fn kube_err(what: &str, e: kube::Error) -> ExecutorError {
    let text = format!("{what}: {e}");
    match &e {
        kube::Error::Api(s) if s.code == 403 => ExecutorError::Refused(format!(
            "{text}; the runner's service account needs create/patch/delete on secrets in the ingestion namespace (or set SECRETS_DELIVERY=pod)"
        )),
        kube::Error::Api(s) if s.code == 404 => ExecutorError::NotFound(text),
        _ => ExecutorError::Unavailable(text),
    }
}

#[cfg(feature = "kubernetes")]
#[async_trait]
impl ConfigSecrets for KubeConfigSecrets {
    async fn put(&self, namespace: &str, manifest: &Value) -> Result<(), ExecutorError> {
        use kube::api::{DeleteParams, PostParams};
        let secret: k8s_openapi::api::core::v1::Secret =
            serde_json::from_value(manifest.clone())
                .map_err(|e| ExecutorError::Failed(format!("config Secret manifest: {e}")))?;
        let name = secret.metadata.name.clone().unwrap_or_default();
        let api = self.api(namespace);
        match api.create(&PostParams::default(), &secret).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 409 => {
                // A replayed run or a redeploy: replace the old Secret with fresh values.
                let _ = api.delete(&name, &DeleteParams::default()).await;
                api.create(&PostParams::default(), &secret)
                    .await
                    .map(|_| ())
                    .map_err(|e| kube_err("create config Secret", e))
            }
            Err(e) => Err(kube_err("create config Secret", e)),
        }
    }

    async fn patch(&self, namespace: &str, name: &str, patch: &Value) -> Result<(), ExecutorError> {
        use kube::api::{Patch, PatchParams};
        self.api(namespace)
            .patch(name, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .map(|_| ())
            .map_err(|e| kube_err("patch config Secret", e))
    }

    async fn delete(&self, namespace: &str, name: &str) -> Result<(), ExecutorError> {
        use kube::api::DeleteParams;
        match self
            .api(namespace)
            .delete(name, &DeleteParams::default())
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => Err(kube_err("delete config Secret", e)),
        }
    }
}
