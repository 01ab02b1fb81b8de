//! Turns requests into executor calls and replies. Bounded concurrency; replies always sent; a
//! request id seen again (a replay after reconnect) is answered from a short-lived cache instead of
//! being executed twice.

use std::collections::{HashMap, VecDeque};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use runner_protocol::{
    ErrorBody, ErrorCode, IngestionPipeline, MessageId, OpResult, PipelineServiceClientResponse,
    Request, Response,
};
use serde_json::{Value, json};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::executor::{AutomationSpec, Executor, RunSpec, Trigger};
use crate::prepare::Preparer;
use crate::{PLATFORM, VERSION};

#[derive(Debug, Clone)]
enum Entry {
    Pending { digest: u64 },
    Done { digest: u64, response: Response },
}

impl Entry {
    fn digest(&self) -> u64 {
        match self {
            Entry::Pending { digest } | Entry::Done { digest, .. } => *digest,
        }
    }
}

#[derive(Debug, Default)]
struct ReplyCache {
    entries: HashMap<MessageId, (Entry, Instant)>,
    order: VecDeque<(MessageId, Instant)>,
}

/// What to do with an incoming request.
#[derive(Debug)]
pub enum Admission {
    /// Execute it; the ticket holds a concurrency permit.
    Execute(Ticket),
    /// Seen before and finished: send this reply again.
    Cached(Response),
    /// Seen before and still executing: its reply will be sent when done.
    InFlight,
    /// Refused at once with this reply (busy, shutting down).
    Refused(Response),
}

/// Leave to execute one admitted request: a concurrency permit and the request's digest
/// (computed once, at admission).
#[derive(Debug)]
pub struct Ticket {
    permit: OwnedSemaphorePermit,
    digest: u64,
}

/// Executes requests against an executor.
pub struct Dispatcher {
    executor: Arc<dyn Executor>,
    preparer: Arc<Preparer>,
    permits: Arc<Semaphore>,
    capacity: usize,
    cache: Mutex<ReplyCache>,
    ttl: Duration,
    cache_max: usize,
    draining: AtomicBool,
    host_ip: Mutex<Option<IpAddr>>,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("capacity", &self.capacity)
            .finish()
    }
}

fn digest(request: &Request) -> u64 {
    let mut h = DefaultHasher::new();
    serde_json::to_string(request)
        .unwrap_or_default()
        .hash(&mut h);
    h.finish()
}

fn ok(reason: impl Into<String>, run_id: Option<String>) -> Response {
    Response::Result(OpResult::PipelineResponse(PipelineServiceClientResponse {
        code: 200,
        platform: PLATFORM.to_owned(),
        reason: Some(reason.into()),
        version: Some(VERSION.to_owned()),
        run_id,
    }))
}

fn err(body: ErrorBody) -> Response {
    Response::Error(body)
}

impl Dispatcher {
    pub fn new(
        executor: Arc<dyn Executor>,
        preparer: Arc<Preparer>,
        capacity: usize,
        ttl: Duration,
    ) -> Dispatcher {
        Dispatcher {
            executor,
            preparer,
            permits: Arc::new(Semaphore::new(capacity.max(1))),
            capacity: capacity.max(1),
            cache: Mutex::new(ReplyCache::default()),
            ttl,
            cache_max: 10_000,
            draining: AtomicBool::new(false),
            host_ip: Mutex::new(None),
        }
    }

    pub fn executor(&self) -> &Arc<dyn Executor> {
        &self.executor
    }

    /// Requests executing now.
    pub fn in_flight(&self) -> usize {
        self.capacity - self.permits.available_permits()
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// From now on new requests are refused with `shutting_down`.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// Records the local address of the control-plane connection (for `getHostIp`).
    pub fn set_host_ip(&self, ip: IpAddr) {
        *crate::lock(&self.host_ip) = Some(ip);
    }

    /// Decides whether to execute `request` with id `id`.
    pub fn admit(&self, id: &MessageId, request: &Request) -> Admission {
        let d = digest(request);
        let now = Instant::now();
        {
            let mut cache = crate::lock(&self.cache);
            // Expire old entries.
            while let Some((old, at)) = cache.order.front().cloned() {
                if now.duration_since(at) < self.ttl && cache.entries.len() <= self.cache_max {
                    break;
                }
                cache.order.pop_front();
                let current = cache.entries.get(&old).filter(|(_, t)| *t == at);
                let pending = current.is_some_and(|(e, _)| matches!(e, Entry::Pending { .. }));
                if pending {
                    // A request still executing keeps its entry, so a replay never runs it twice.
                    // Requeued with a fresh time; pending entries are bounded by the concurrency
                    // limit, far below `cache_max`, so this loop terminates.
                    cache.order.push_back((old.clone(), now));
                    if let Some(entry) = cache.entries.get_mut(&old) {
                        entry.1 = now;
                    }
                } else if current.is_some() {
                    cache.entries.remove(&old);
                }
            }
            if let Some((entry, _)) = cache.entries.get(id) {
                if entry.digest() == d {
                    return match entry {
                        Entry::Done { response, .. } => Admission::Cached(response.clone()),
                        Entry::Pending { .. } => Admission::InFlight,
                    };
                }
                tracing::warn!(id = %id, "request id reused with a different body; executing it as a new request");
            }
        }
        if self.draining.load(Ordering::SeqCst) {
            return Admission::Refused(err(ErrorBody::new(
                ErrorCode::ShuttingDown,
                "the runner is shutting down and takes no new requests; retry when it reconnects",
            )));
        }
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            return Admission::Refused(err(ErrorBody::new(
                ErrorCode::Busy,
                format!(
                    "{} requests are executing (MAX_CONCURRENT_REQUESTS); retry shortly",
                    self.capacity
                ),
            )));
        };
        let mut cache = crate::lock(&self.cache);
        cache
            .entries
            .insert(id.clone(), (Entry::Pending { digest: d }, now));
        cache.order.push_back((id.clone(), now));
        Admission::Execute(Ticket { permit, digest: d })
    }

    /// Executes an admitted request and records its reply for replays.
    pub async fn execute(&self, id: &MessageId, request: Request, ticket: Ticket) -> Response {
        let Ticket { permit, digest: d } = ticket;
        let op = request.op();
        let started = Instant::now();
        let response = self.handle(request).await;
        crate::metrics::metrics().request_done(op, started.elapsed());
        drop(permit);
        match &response {
            Response::Error(e) => {
                tracing::warn!(id = %id, op, code = ?e.code, error = %e.message, elapsed_ms = started.elapsed().as_millis() as u64, "request failed")
            }
            Response::Result(_) => {
                tracing::debug!(id = %id, op, elapsed_ms = started.elapsed().as_millis() as u64, "request done")
            }
        }
        let mut cache = crate::lock(&self.cache);
        if let Response::Error(e) = &response
            && e.retryable
        {
            // The control plane may retry a retryable error under the same id (docs/protocol.md
            // section 7): forget the request so that the retry executes. (The expiry loop skips
            // ids it no longer holds.)
            cache.entries.remove(id);
            return response;
        }
        let now = Instant::now();
        cache.entries.insert(
            id.clone(),
            (
                Entry::Done {
                    digest: d,
                    response: response.clone(),
                },
                now,
            ),
        );
        cache.order.push_back((id.clone(), now));
        response
    }

    async fn handle(&self, request: Request) -> Response {
        let ex = &self.executor;
        match request {
            Request::Ping {} => Response::Result(OpResult::Pong {}),
            Request::DeployPipeline { pipeline, service } => {
                // Every `secret:` reference must resolve now, so a broken one fails the deploy
                // instead of the first scheduled run. The values are dropped here; a scheduled
                // run resolves again when it fires.
                if let Err(e) = self
                    .preparer
                    .pipeline_run(&pipeline, service.as_ref(), "deploy-check", None)
                    .await
                {
                    return err(e);
                }
                match ex.deploy(&pipeline, service.as_ref()).await {
                    Ok(outcome) => ok(outcome.message, None),
                    Err(e) => err(e.to_body()),
                }
            }
            Request::RunPipeline {
                pipeline,
                service,
                options,
            } => {
                let run_id = options
                    .run_id
                    .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
                let prepared = match self
                    .preparer
                    .pipeline_run(
                        &pipeline,
                        service.as_ref(),
                        &run_id,
                        options.config_override.as_ref(),
                    )
                    .await
                {
                    Ok(c) => c,
                    Err(e) => return err(e),
                };
                let spec = RunSpec {
                    pipeline: *pipeline,
                    service,
                    run_id: run_id.clone(),
                    config: prepared.config,
                    trigger: Trigger::Manual,
                    config_override: options.config_override,
                    pipeline_json: prepared.pipeline,
                };
                match ex.run(spec).await {
                    Ok(status) => ok(
                        format!("run {run_id} is {}", status.pipeline_state.as_str()),
                        Some(run_id),
                    ),
                    Err(e) => err(e.to_body()),
                }
            }
            Request::KillIngestion { pipeline } => match ex.kill(&pipeline, None).await {
                Ok(n) => ok(
                    format!("asked {n} run(s) of `{}` to stop", pipeline.fqn()),
                    None,
                ),
                Err(e) => err(e.to_body()),
            },
            Request::KillIngestionRun { pipeline, run_id } => {
                match ex.kill(&pipeline, Some(&run_id)).await {
                    Ok(_) => ok(format!("asked run {run_id} to stop"), Some(run_id)),
                    Err(e) => err(e.to_body()),
                }
            }
            Request::DeletePipeline { pipeline } => match ex.delete(&pipeline).await {
                Ok(()) => ok(format!("deleted `{}`", pipeline.fqn()), None),
                Err(e) => err(e.to_body()),
            },
            Request::ToggleIngestion { pipeline, enabled } => {
                let enabled = enabled.unwrap_or(!pipeline.enabled.unwrap_or(true));
                match ex.toggle(&pipeline, enabled).await {
                    Ok(()) => ok(
                        if enabled {
                            "schedule enabled"
                        } else {
                            "schedule disabled"
                        },
                        None,
                    ),
                    Err(e) => err(e.to_body()),
                }
            }
            Request::GetQueuedPipelineStatus { pipeline } => match ex.statuses(&pipeline).await {
                Ok(statuses) => Response::Result(OpResult::Statuses { statuses }),
                Err(e) => err(e.to_body()),
            },
            Request::GetLastIngestionLogs { pipeline, after } => {
                match ex.logs(&pipeline, None, after.as_deref()).await {
                    Ok(logs) => Response::Result(OpResult::Logs(logs)),
                    Err(e) => err(e.to_body()),
                }
            }
            Request::GetIngestionLogs {
                pipeline,
                run_id,
                after,
            } => match ex.logs(&pipeline, Some(&run_id), after.as_deref()).await {
                Ok(logs) => Response::Result(OpResult::Logs(logs)),
                Err(e) => err(e.to_body()),
            },
            Request::GetServiceStatus {} => {
                let health = tokio::time::timeout(Duration::from_secs(10), ex.health())
                    .await
                    .unwrap_or_else(|_| runner_protocol::ComponentHealth {
                        ok: false,
                        detail: Some(
                            "the executor's health check did not answer within 10s".into(),
                        ),
                    });
                let (code, reason) = if health.ok {
                    (200, None)
                } else {
                    (500, health.detail)
                };
                Response::Result(OpResult::PipelineResponse(PipelineServiceClientResponse {
                    code,
                    platform: PLATFORM.to_owned(),
                    reason,
                    version: Some(VERSION.to_owned()),
                    run_id: None,
                }))
            }
            Request::GetHostIp {} => {
                let ip = std::env::var("HOST_IP")
                    .ok()
                    .or_else(|| crate::lock(&self.host_ip).map(|ip| ip.to_string()))
                    .unwrap_or_else(|| "unknown".to_owned());
                Response::Result(OpResult::HostIp { ip })
            }
            Request::RunAutomationsWorkflow { workflow } => {
                if !workflow.is_object() {
                    return err(ErrorBody::new(
                        ErrorCode::InvalidRequest,
                        "`workflow` must be an automations Workflow object",
                    ));
                }
                // Refuse what only the operator may set before any secret is read.
                if let Err(e) = runner_argo::build::guard::check_top_level(&workflow) {
                    return err(ErrorBody::new(
                        ErrorCode::Forbidden,
                        format!("automation workflow refused, nothing was started: {e}"),
                    ));
                }
                let run_id = uuid::Uuid::new_v4().to_string();
                let prepared = match self.preparer.automation(&workflow).await {
                    Ok(p) => p,
                    Err(e) => return err(e),
                };
                match ex
                    .run_automation(AutomationSpec {
                        run_id: run_id.clone(),
                        masker: prepared.config.masker().clone(),
                        workflow: prepared.config.into_exposed(),
                        original: workflow,
                    })
                    .await
                {
                    Ok(()) => ok("automation workflow started", Some(run_id)),
                    Err(e) => err(e.to_body()),
                }
            }
            Request::RunApplicationFlow { application } => {
                let pipeline = match application_pipeline(&application) {
                    Ok(p) => p,
                    Err(e) => return err(e),
                };
                let run_id = uuid::Uuid::new_v4().to_string();
                let prepared = match self
                    .preparer
                    .pipeline_run(&pipeline, None, &run_id, None)
                    .await
                {
                    Ok(c) => c,
                    Err(e) => return err(e),
                };
                let spec = RunSpec {
                    pipeline,
                    service: None,
                    run_id: run_id.clone(),
                    config: prepared.config,
                    trigger: Trigger::Manual,
                    config_override: None,
                    pipeline_json: prepared.pipeline,
                };
                match ex.run(spec).await {
                    Ok(_) => ok("application flow started", Some(run_id)),
                    Err(e) => err(e.to_body()),
                }
            }
            Request::ValidateAppRegistration { application } => {
                match application_pipeline(&application) {
                    Ok(_) => ok("application can run on this runner", None),
                    Err(e) => err(e),
                }
            }
        }
    }
}

/// An application run expressed as an IngestionPipeline of type `application`.
fn application_pipeline(app: &Value) -> Result<IngestionPipeline, ErrorBody> {
    let name = app.get("name").and_then(Value::as_str).ok_or_else(|| {
        ErrorBody::new(ErrorCode::InvalidRequest, "the application has no `name`")
    })?;
    let class = app.get("sourcePythonClass").and_then(Value::as_str).ok_or_else(|| {
        ErrorBody::new(
            ErrorCode::InvalidRequest,
            format!("application `{name}` has no `sourcePythonClass`; only external applications run on a hybrid runner"),
        )
    })?;
    let fqn = app
        .get("fullyQualifiedName")
        .and_then(Value::as_str)
        .unwrap_or(name);
    serde_json::from_value(json!({
        "name": name,
        "fullyQualifiedName": fqn,
        "pipelineType": "application",
        "sourceConfig": { "config": {
            "type": "Application",
            "sourcePythonClass": class,
            "appConfig": app.get("appConfiguration").cloned().unwrap_or(Value::Null),
            "appPrivateConfig": app.get("privateConfiguration").cloned().unwrap_or(Value::Null),
        }},
        "airflowConfig": {},
        // The platform's connection for the app to report to; SERVER_HOST_API_URL fills its
        // hostPort when the control plane leaves it out.
        "openMetadataServerConnection": app.get("openMetadataServerConnection").cloned().unwrap_or_else(|| json!({})),
    }))
    .map_err(|e| {
        ErrorBody::new(
            ErrorCode::InvalidRequest,
            format!("application `{name}`: {e}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::executor::{DeployOutcome, ExecutorError};
    use async_trait::async_trait;
    use runner_protocol::{ComponentHealth, IngestionLogs, PipelineStatus};

    /// Counts `toggle` calls; any other call is a test failure.
    #[derive(Default)]
    struct CountingExecutor {
        toggles: std::sync::atomic::AtomicU32,
    }

    #[async_trait]
    impl Executor for CountingExecutor {
        fn kind(&self) -> &'static str {
            "counting"
        }
        fn namespace(&self) -> &str {
            "test"
        }
        fn capacity(&self) -> u32 {
            1
        }
        fn runs_in_flight(&self) -> u32 {
            0
        }
        async fn deploy(
            &self,
            _: &IngestionPipeline,
            _: Option<&Value>,
        ) -> Result<DeployOutcome, ExecutorError> {
            unreachable!("deploy")
        }
        async fn run(&self, _: RunSpec) -> Result<PipelineStatus, ExecutorError> {
            unreachable!("run")
        }
        async fn kill(&self, _: &IngestionPipeline, _: Option<&str>) -> Result<u32, ExecutorError> {
            unreachable!("kill")
        }
        async fn delete(&self, _: &IngestionPipeline) -> Result<(), ExecutorError> {
            unreachable!("delete")
        }
        async fn toggle(&self, _: &IngestionPipeline, _: bool) -> Result<(), ExecutorError> {
            self.toggles.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
        async fn statuses(
            &self,
            _: &IngestionPipeline,
        ) -> Result<Vec<PipelineStatus>, ExecutorError> {
            unreachable!("statuses")
        }
        async fn logs(
            &self,
            _: &IngestionPipeline,
            _: Option<&str>,
            _: Option<&str>,
        ) -> Result<IngestionLogs, ExecutorError> {
            unreachable!("logs")
        }
        async fn run_automation(&self, _: AutomationSpec) -> Result<(), ExecutorError> {
            unreachable!("run_automation")
        }
        async fn health(&self) -> ComponentHealth {
            ComponentHealth {
                ok: true,
                detail: None,
            }
        }
        async fn shutdown(&self, _: Duration) {}
    }

    fn toggle_request(enabled: Option<bool>) -> Request {
        let pipeline = serde_json::from_value(json!({
            "name": "p", "pipelineType": "metadata", "enabled": true
        }))
        .unwrap();
        Request::ToggleIngestion {
            pipeline: Box::new(pipeline),
            enabled,
        }
    }

    fn id(s: &str) -> MessageId {
        MessageId::new(s, 64).unwrap()
    }

    #[tokio::test]
    async fn replay_and_refusals_never_reach_the_executor() {
        let exec = Arc::new(CountingExecutor::default());
        let d = Dispatcher::new(
            exec.clone(),
            Arc::new(Preparer::default()),
            1,
            Duration::from_secs(60),
        );

        let Admission::Execute(permit) = d.admit(&id("c1"), &toggle_request(None)) else {
            panic!()
        };
        // While c1 holds the only permit, another request is refused as busy.
        match d.admit(&id("c2"), &toggle_request(None)) {
            Admission::Refused(Response::Error(e)) => assert_eq!(e.code, ErrorCode::Busy),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            d.admit(&id("c1"), &toggle_request(None)),
            Admission::InFlight
        ));
        let first = d.execute(&id("c1"), toggle_request(None), permit).await;
        match d.admit(&id("c1"), &toggle_request(None)) {
            Admission::Cached(r) => assert_eq!(r, first),
            other => panic!("{other:?}"),
        }
        d.start_draining();
        match d.admit(&id("c3"), &toggle_request(Some(true))) {
            Admission::Refused(Response::Error(e)) => assert_eq!(e.code, ErrorCode::ShuttingDown),
            other => panic!("{other:?}"),
        }
        // Exactly one call: the first execution. The replay, the busy and the draining refusals
        // did not reach the executor.
        assert_eq!(exec.toggles.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn reused_id_with_another_body_is_a_new_request() {
        let exec = Arc::new(CountingExecutor::default());
        let d = Dispatcher::new(
            exec.clone(),
            Arc::new(Preparer::default()),
            4,
            Duration::from_secs(60),
        );
        for enabled in [Some(true), Some(false)] {
            let req = toggle_request(enabled);
            let Admission::Execute(p) = d.admit(&id("same"), &req) else {
                panic!()
            };
            d.execute(&id("same"), req, p).await;
        }
        assert_eq!(exec.toggles.load(Ordering::SeqCst), 2);
    }
}
