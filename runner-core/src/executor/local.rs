//! The local executor: each run is a child process of the runner, with the ingestion container's
//! env contract (`config`, `pipelineType`, `pipelineRunId`, `ingestionPipelineFQN`, extra envs).
//! For development, demos, and hosts without Kubernetes.
//!
//! The child gets a clean environment: only `PATH`, `HOME`, `LANG`, `TZ`, `TMPDIR` are passed
//! through from the runner, so `AUTH_TOKEN` and the runner's own settings never reach it.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use runner_protocol::{
    ComponentHealth, IngestionLogs, IngestionPipeline, PipelineState, PipelineStatus, PipelineType,
};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{
    AutomationSpec, DeployOutcome, Executor, ExecutorError, RunSpec, StatusSink, Trigger, now_ms,
    status_now,
};
use crate::lock;
use crate::prepare::Preparer;
use crate::schedule::Schedule;
use runner_secrets::Masker;

/// Settings of the local executor (`LOCAL_*` variables).
#[derive(Debug, Clone)]
pub struct LocalConfig {
    /// Program and arguments of an ingestion run (the image's `python main.py`).
    pub command: Vec<String>,
    /// Program and arguments of an automation run (`python run_automation.py`).
    pub automation_command: Vec<String>,
    /// Working directory of the children.
    pub workdir: Option<PathBuf>,
    /// `INGESTION_EXTRA_ENVS`, already parsed.
    pub extra_envs: Vec<(String, String)>,
    /// Runs executing at once; more wait in `queued`.
    pub max_concurrent_runs: usize,
    /// Run timeout when the pipeline sets no `workflowTimeout`.
    pub default_timeout: Duration,
    /// Time between SIGTERM and SIGKILL when a run is stopped.
    pub kill_grace: Duration,
    /// Log bytes kept per run (oldest lines dropped first).
    pub log_limit_bytes: usize,
    /// Bytes per page of `getIngestionLogs`.
    pub log_page_bytes: usize,
    /// Finished runs remembered per pipeline.
    pub runs_kept_per_pipeline: usize,
}

impl Default for LocalConfig {
    fn default() -> Self {
        LocalConfig {
            command: vec!["python".into(), "main.py".into()],
            automation_command: vec!["python".into(), "run_automation.py".into()],
            workdir: None,
            extra_envs: Vec::new(),
            max_concurrent_runs: 4,
            default_timeout: Duration::from_secs(24 * 3600),
            kill_grace: Duration::from_secs(10),
            log_limit_bytes: 8 * 1024 * 1024,
            log_page_bytes: 256 * 1024,
            runs_kept_per_pipeline: 20,
        }
    }
}

/// Lines of one run's output, bounded in bytes.
#[derive(Debug, Default)]
struct LogBuffer {
    lines: VecDeque<String>,
    bytes: usize,
    dropped_lines: u64,
}

impl LogBuffer {
    fn push(&mut self, line: String, limit: usize) {
        self.bytes += line.len() + 1;
        self.lines.push_back(line);
        while self.bytes > limit {
            let Some(old) = self.lines.pop_front() else {
                break;
            };
            self.bytes -= old.len() + 1;
            self.dropped_lines += 1;
        }
    }

    /// Pages of at most `page_bytes` (a longer single line is a page of its own).
    fn page(&self, index: usize, page_bytes: usize) -> (String, usize) {
        let mut pages = 0usize;
        let mut current = String::new();
        let mut found = None;
        let header = (self.dropped_lines > 0).then(|| {
            format!(
                "[{} earlier lines dropped: log limit reached]",
                self.dropped_lines
            )
        });
        for line in header.iter().chain(self.lines.iter()) {
            if !current.is_empty() && current.len() + line.len() + 1 > page_bytes {
                if pages == index {
                    found = Some(std::mem::take(&mut current));
                }
                current.clear();
                pages += 1;
            }
            current.push_str(line);
            current.push('\n');
        }
        if !current.is_empty() || pages == 0 {
            if pages == index {
                found = Some(current);
            }
            pages += 1;
        }
        (found.unwrap_or_default(), pages)
    }
}

#[derive(Debug)]
struct Run {
    fqn: String,
    pipeline_type: PipelineType,
    run_id: String,
    status: Mutex<PipelineStatus>,
    logs: Mutex<LogBuffer>,
    stop: CancellationToken,
    /// Redacts the run's resolved secret values from its logs.
    masker: Masker,
}

impl Run {
    fn status(&self) -> PipelineStatus {
        lock(&self.status).clone()
    }

    fn is_finished(&self) -> bool {
        lock(&self.status).pipeline_state.is_terminal()
    }
}

#[derive(Debug)]
struct Deployed {
    pipeline: IngestionPipeline,
    service: Option<Value>,
    schedule: Option<Schedule>,
    enabled: bool,
    next_fire: Option<DateTime<Utc>>,
}

#[derive(Debug, Default)]
struct State {
    pipelines: HashMap<String, Deployed>,
    runs: HashMap<String, Arc<Run>>,
    /// Run ids per pipeline, oldest first.
    order: HashMap<String, VecDeque<String>>,
}

/// Wall-clock time derived from tokio's clock, so that schedules follow paused time in tests.
#[derive(Debug, Clone, Copy)]
struct Clock {
    wall0: DateTime<Utc>,
    inst0: tokio::time::Instant,
}

impl Clock {
    fn new() -> Clock {
        Clock {
            wall0: Utc::now(),
            inst0: tokio::time::Instant::now(),
        }
    }

    fn now(&self) -> DateTime<Utc> {
        let elapsed = chrono::Duration::from_std(self.inst0.elapsed()).unwrap_or_default();
        self.wall0 + elapsed
    }

    fn instant_for(&self, t: DateTime<Utc>) -> tokio::time::Instant {
        let offset = (t - self.wall0).to_std().unwrap_or_default();
        self.inst0 + offset
    }
}

struct Inner {
    config: LocalConfig,
    sink: StatusSink,
    state: Mutex<State>,
    permits: Arc<Semaphore>,
    tracker: TaskTracker,
    schedule_changed: Notify,
    shutdown: CancellationToken,
    clock: Clock,
    preparer: Arc<Preparer>,
}

/// Runs pipelines as child processes. Cheap to clone.
#[derive(Clone)]
pub struct LocalExecutor {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for LocalExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalExecutor")
            .field("config", &self.inner.config)
            .finish()
    }
}

impl LocalExecutor {
    /// Creates the executor and starts its scheduler task. `preparer` builds the workflow config
    /// of scheduled runs.
    pub fn start(config: LocalConfig, sink: StatusSink, preparer: Arc<Preparer>) -> LocalExecutor {
        let inner = Arc::new(Inner {
            permits: Arc::new(Semaphore::new(config.max_concurrent_runs.max(1))),
            config,
            sink,
            state: Mutex::new(State::default()),
            tracker: TaskTracker::new(),
            schedule_changed: Notify::new(),
            shutdown: CancellationToken::new(),
            clock: Clock::new(),
            preparer,
        });
        let scheduler = inner.clone();
        inner
            .tracker
            .spawn(async move { scheduler.schedule_loop().await });
        LocalExecutor { inner }
    }
}

impl Inner {
    fn find_run(&self, fqn: &str, run_id: Option<&str>) -> Result<Arc<Run>, ExecutorError> {
        let state = lock(&self.state);
        let id = match run_id {
            Some(id) => id.to_owned(),
            None => state
                .order
                .get(fqn)
                .and_then(|ids| ids.back().cloned())
                .ok_or_else(|| {
                    ExecutorError::NotFound(format!(
                        "pipeline `{fqn}` has no runs on this runner yet"
                    ))
                })?,
        };
        state
            .runs
            .get(&id)
            .filter(|r| r.fqn == fqn)
            .cloned()
            .ok_or_else(|| {
                ExecutorError::NotFound(format!(
                    "run `{id}` of pipeline `{fqn}` is not known to this runner"
                ))
            })
    }

    fn publish(&self, run: &Run) {
        self.sink
            .publish(&run.fqn, &run.pipeline_type, run.status());
    }

    fn set_state(&self, run: &Run, state: PipelineState, message: Option<String>) {
        {
            let mut st = lock(&run.status);
            st.pipeline_state = state;
            if state == PipelineState::Running {
                st.start_date = Some(now_ms());
            }
            if state.is_terminal() {
                st.end_date = Some(now_ms());
            }
            if let Some(message) = message {
                let mut meta = serde_json::Map::new();
                meta.insert("message".into(), Value::String(message));
                st.metadata = Some(meta);
            }
        }
        self.publish(run);
    }

    /// Registers and starts a run; idempotent by run id.
    fn start_run(self: &Arc<Self>, launch: Launch) -> Result<PipelineStatus, ExecutorError> {
        let Launch {
            fqn,
            pipeline_type,
            run_id,
            command,
            env,
            timeout,
            masker,
        } = launch;
        if self.shutdown.is_cancelled() {
            return Err(ExecutorError::Unavailable(
                "the runner is shutting down and starts no new runs; retry on the next runner"
                    .into(),
            ));
        }
        let run = {
            let mut state = lock(&self.state);
            if let Some(existing) = state.runs.get(&run_id) {
                return Ok(existing.status());
            }
            let run = Arc::new(Run {
                fqn: fqn.clone(),
                pipeline_type,
                run_id: run_id.clone(),
                status: Mutex::new(status_now(&run_id, PipelineState::Queued, None)),
                logs: Mutex::new(LogBuffer::default()),
                stop: self.shutdown.child_token(),
                masker,
            });
            state.runs.insert(run_id.clone(), run.clone());
            let State { runs, order, .. } = &mut *state;
            let order = order.entry(fqn).or_default();
            order.push_back(run_id);
            // Forget the oldest finished runs beyond the limit.
            let keep = self.config.runs_kept_per_pipeline.max(1);
            let mut excess = order.len().saturating_sub(keep);
            let mut forget = Vec::new();
            order.retain(|id| {
                if excess == 0 {
                    return true;
                }
                let finished = runs.get(id).is_some_and(|r| r.is_finished());
                if finished {
                    excess -= 1;
                    forget.push(id.clone());
                }
                !finished
            });
            for id in forget {
                runs.remove(&id);
            }
            run
        };
        self.publish(&run);
        let status = run.status();
        let this = self.clone();
        self.tracker
            .spawn(async move { this.execute(run, command, env, timeout).await });
        Ok(status)
    }

    async fn execute(
        self: Arc<Self>,
        run: Arc<Run>,
        command: Vec<String>,
        env: Vec<(String, String)>,
        timeout: Duration,
    ) {
        let _permit = tokio::select! {
            permit = self.permits.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => return,
            },
            _ = run.stop.cancelled() => {
                self.set_state(&run, PipelineState::Stopped, Some("stopped before it started".into()));
                return;
            }
        };
        let Some((program, args)) = command.split_first() else {
            self.set_state(
                &run,
                PipelineState::Failed,
                Some("no command configured; set LOCAL_INGESTION_COMMAND".into()),
            );
            return;
        };
        let mut cmd = Command::new(program);
        cmd.args(args)
            .env_clear()
            .envs(passthrough_env())
            .envs(env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .process_group(0);
        if let Some(dir) = &self.config.workdir {
            cmd.current_dir(dir);
        }
        let mut child = match cmd.spawn() {
            Ok(child) => child,
            Err(e) => {
                let msg = format!(
                    "cannot start `{program}`: {e}; check LOCAL_INGESTION_COMMAND and that the program is installed and on PATH"
                );
                lock(&run.logs).push(msg.clone(), self.config.log_limit_bytes);
                self.set_state(&run, PipelineState::Failed, Some(msg));
                return;
            }
        };
        self.set_state(&run, PipelineState::Running, None);
        let readers = TaskTracker::new();
        if let Some(out) = child.stdout.take() {
            readers.spawn(capture(out, run.clone(), self.config.log_limit_bytes));
        }
        if let Some(err) = child.stderr.take() {
            readers.spawn(capture(err, run.clone(), self.config.log_limit_bytes));
        }
        readers.close();
        let (state, message) = tokio::select! {
            exit = child.wait() => match exit {
                Ok(s) if s.success() => (PipelineState::Success, None),
                Ok(s) => (PipelineState::Failed, Some(format!("the ingestion process exited with {s}; see the run's logs"))),
                Err(e) => (PipelineState::Failed, Some(format!("waiting for the ingestion process failed: {e}"))),
            },
            _ = run.stop.cancelled() => {
                terminate(&mut child, self.config.kill_grace).await;
                let why = if self.shutdown.is_cancelled() { "stopped: the runner shut down" } else { "stopped on request" };
                (PipelineState::Stopped, Some(why.to_owned()))
            }
            _ = tokio::time::sleep(timeout) => {
                terminate(&mut child, self.config.kill_grace).await;
                (PipelineState::Failed, Some(format!("timed out after {}s (workflowTimeout); raise the pipeline's timeout or check why it hangs", timeout.as_secs())))
            }
        };
        // Output still buffered in the pipes is read before the final status is sent.
        let _ = tokio::time::timeout(Duration::from_secs(5), readers.wait()).await;
        self.set_state(&run, state, message);
    }

    async fn schedule_loop(self: Arc<Self>) {
        loop {
            let changed = self.schedule_changed.notified();
            let next = {
                let state = lock(&self.state);
                state
                    .pipelines
                    .values()
                    .filter(|d| d.enabled)
                    .filter_map(|d| d.next_fire)
                    .min()
            };
            let sleep = async {
                match next {
                    Some(t) => tokio::time::sleep_until(self.clock.instant_for(t)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = self.shutdown.cancelled() => return,
                _ = changed => continue,
                _ = sleep => self.fire_due(),
            }
        }
    }

    fn fire_due(self: &Arc<Self>) {
        let now = self.clock.now();
        let mut due = Vec::new();
        {
            let mut state = lock(&self.state);
            let State {
                pipelines,
                runs,
                order,
            } = &mut *state;
            for (fqn, d) in pipelines.iter_mut() {
                let Some(t) = d.next_fire.filter(|t| *t <= now && d.enabled) else {
                    continue;
                };
                d.next_fire = d.schedule.as_ref().and_then(|s| s.next_after(t.max(now)));
                let max_active = d
                    .pipeline
                    .airflow_config
                    .max_active_runs
                    .unwrap_or(1)
                    .max(1) as usize;
                let active = order
                    .get(fqn)
                    .map(|ids| {
                        ids.iter()
                            .filter(|id| runs.get(*id).is_some_and(|r| !r.is_finished()))
                            .count()
                    })
                    .unwrap_or(0);
                if active >= max_active {
                    tracing::warn!(pipeline = %fqn, active, max_active, "scheduled run skipped: maxActiveRuns reached");
                    continue;
                }
                due.push((d.pipeline.clone(), d.service.clone()));
            }
        }
        for (pipeline, service) in due {
            // Secrets are resolved when the schedule fires, not at deploy time.
            let this = self.clone();
            self.tracker.spawn(async move {
                let run_id = uuid::Uuid::new_v4().to_string();
                let prepared = this.preparer.pipeline_run(&pipeline, service.as_ref(), &run_id, None).await;
                let result = match prepared {
                    Ok(p) => this.start_run(this.launch(&RunSpec {
                        pipeline: pipeline.clone(),
                        service,
                        run_id,
                        config: p.config,
                        trigger: Trigger::Schedule,
                        config_override: None,
                        pipeline_json: p.pipeline,
                    })),
                    Err(e) => Err(ExecutorError::InvalidRequest(e.message)),
                };
                if let Err(e) = result {
                    tracing::error!(pipeline = pipeline.fqn(), error = %e, "scheduled run could not start");
                }
            });
        }
    }

    /// The child's command, env contract and timeout for a pipeline run.
    fn launch(&self, spec: &RunSpec) -> Launch {
        let fqn = spec.pipeline.fqn().to_owned();
        let mut env = self.config.extra_envs.clone();
        env.push(("config".into(), spec.config.expose().to_string()));
        env.push((
            "pipelineType".into(),
            spec.pipeline.pipeline_type.as_str().to_owned(),
        ));
        env.push(("pipelineRunId".into(), spec.run_id.clone()));
        env.push(("ingestionPipelineFQN".into(), fqn.clone()));
        let timeout = spec
            .pipeline
            .airflow_config
            .workflow_timeout
            .filter(|t| *t > 0)
            .map(|t| Duration::from_secs(t as u64))
            .unwrap_or(self.config.default_timeout);
        Launch {
            fqn,
            pipeline_type: spec.pipeline.pipeline_type.clone(),
            run_id: spec.run_id.clone(),
            command: self.config.command.clone(),
            env,
            timeout,
            masker: spec.config.masker().clone(),
        }
    }
}

/// Everything needed to start one child process.
struct Launch {
    fqn: String,
    pipeline_type: PipelineType,
    run_id: String,
    command: Vec<String>,
    env: Vec<(String, String)>,
    timeout: Duration,
    masker: Masker,
}

fn passthrough_env() -> Vec<(String, String)> {
    ["PATH", "HOME", "LANG", "TZ", "TMPDIR"]
        .iter()
        .filter_map(|k| std::env::var(k).ok().map(|v| ((*k).to_owned(), v)))
        .collect()
}

/// Reads a child's output into the run's logs, line by line, with resolved secrets masked.
async fn capture(stream: impl AsyncRead + Unpin, run: Arc<Run>, limit: usize) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let line = match run.masker.mask(&line) {
            std::borrow::Cow::Borrowed(_) => line,
            std::borrow::Cow::Owned(masked) => masked,
        };
        lock(&run.logs).push(line, limit);
    }
}

/// SIGTERM to the child's process group, SIGKILL after `grace`.
async fn terminate(child: &mut Child, grace: Duration) {
    if let Some(pid) = child.id() {
        let pgid = nix::unistd::Pid::from_raw(pid as i32);
        let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGTERM);
        if tokio::time::timeout(grace, child.wait()).await.is_ok() {
            return;
        }
        let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
    }
    let _ = child.kill().await;
}

#[async_trait]
impl Executor for LocalExecutor {
    fn kind(&self) -> &'static str {
        "local"
    }

    fn namespace(&self) -> &str {
        "local"
    }

    fn capacity(&self) -> u32 {
        self.inner.config.max_concurrent_runs as u32
    }

    fn runs_in_flight(&self) -> u32 {
        let state = lock(&self.inner.state);
        state.runs.values().filter(|r| !r.is_finished()).count() as u32
    }

    async fn deploy(
        &self,
        pipeline: &IngestionPipeline,
        service: Option<&Value>,
    ) -> Result<DeployOutcome, ExecutorError> {
        let ac = &pipeline.airflow_config;
        let schedule = Schedule::parse(
            ac.schedule_interval.as_deref(),
            ac.pipeline_timezone.as_deref(),
        )
        .map_err(|e| ExecutorError::InvalidRequest(e.to_string()))?;
        let enabled = pipeline.enabled.unwrap_or(true) && !ac.pause_pipeline.unwrap_or(false);
        let next_fire = schedule
            .as_ref()
            .and_then(|s| s.next_after(self.inner.clock.now()));
        let message = match (&schedule, enabled) {
            (Some(s), true) => format!(
                "deployed; scheduled `{}` ({}), next run at {}",
                s.cron,
                s.timezone,
                next_fire.map(|t| t.to_rfc3339()).unwrap_or_default()
            ),
            (Some(s), false) => format!("deployed; schedule `{}` is paused", s.cron),
            (None, _) => "deployed; no schedule (runs on demand)".to_owned(),
        };
        let scheduled = schedule.is_some() && enabled;
        lock(&self.inner.state).pipelines.insert(
            pipeline.fqn().to_owned(),
            Deployed {
                pipeline: pipeline.clone(),
                service: service.cloned(),
                schedule,
                enabled,
                next_fire,
            },
        );
        self.inner.schedule_changed.notify_one();
        Ok(DeployOutcome { scheduled, message })
    }

    async fn run(&self, spec: RunSpec) -> Result<PipelineStatus, ExecutorError> {
        self.inner.start_run(self.inner.launch(&spec))
    }

    async fn kill(
        &self,
        pipeline: &IngestionPipeline,
        run_id: Option<&str>,
    ) -> Result<u32, ExecutorError> {
        let fqn = pipeline.fqn();
        let targets: Vec<Arc<Run>> = match run_id {
            Some(id) => {
                let run = self.inner.find_run(fqn, Some(id))?;
                if run.is_finished() {
                    return Err(ExecutorError::Conflict(format!(
                        "run `{id}` already finished ({}); nothing to stop",
                        run.status().pipeline_state.as_str()
                    )));
                }
                vec![run]
            }
            None => {
                let state = lock(&self.inner.state);
                state
                    .order
                    .get(fqn)
                    .into_iter()
                    .flatten()
                    .filter_map(|id| state.runs.get(id))
                    .filter(|r| !r.is_finished())
                    .cloned()
                    .collect()
            }
        };
        for run in &targets {
            run.stop.cancel();
        }
        Ok(targets.len() as u32)
    }

    async fn delete(&self, pipeline: &IngestionPipeline) -> Result<(), ExecutorError> {
        self.kill(pipeline, None).await?;
        let fqn = pipeline.fqn();
        let mut state = lock(&self.inner.state);
        let known = state.pipelines.remove(fqn).is_some();
        let ids = state.order.remove(fqn).unwrap_or_default();
        for id in &ids {
            state.runs.remove(id);
        }
        drop(state);
        self.inner.schedule_changed.notify_one();
        if !known && ids.is_empty() {
            return Err(ExecutorError::NotFound(format!(
                "pipeline `{fqn}` is not deployed on this runner; nothing to delete"
            )));
        }
        Ok(())
    }

    async fn toggle(
        &self,
        pipeline: &IngestionPipeline,
        enabled: bool,
    ) -> Result<(), ExecutorError> {
        let fqn = pipeline.fqn();
        let now = self.inner.clock.now();
        {
            let mut state = lock(&self.inner.state);
            let d = state.pipelines.get_mut(fqn).ok_or_else(|| {
                ExecutorError::NotFound(format!(
                    "pipeline `{fqn}` is not deployed on this runner; deploy it first"
                ))
            })?;
            d.enabled = enabled;
            d.next_fire = if enabled {
                d.schedule.as_ref().and_then(|s| s.next_after(now))
            } else {
                None
            };
        }
        self.inner.schedule_changed.notify_one();
        Ok(())
    }

    async fn statuses(
        &self,
        pipeline: &IngestionPipeline,
    ) -> Result<Vec<PipelineStatus>, ExecutorError> {
        let state = lock(&self.inner.state);
        Ok(state
            .order
            .get(pipeline.fqn())
            .into_iter()
            .flatten()
            .rev()
            .filter_map(|id| state.runs.get(id).map(|r| r.status()))
            .collect())
    }

    async fn logs(
        &self,
        pipeline: &IngestionPipeline,
        run_id: Option<&str>,
        after: Option<&str>,
    ) -> Result<IngestionLogs, ExecutorError> {
        let run = self.inner.find_run(pipeline.fqn(), run_id)?;
        let index = match after {
            None | Some("") => 0,
            Some(a) => a.parse::<usize>().map_err(|_| {
                ExecutorError::InvalidRequest(format!(
                    "`after` must be the cursor returned by the previous page (a number), got `{a}`"
                ))
            })?,
        };
        let (text, total) = lock(&run.logs).page(index, self.inner.config.log_page_bytes);
        if index >= total {
            return Err(ExecutorError::NotFound(format!(
                "log page {index} does not exist; run `{}` has {total} page(s)",
                run.run_id
            )));
        }
        let mut tasks = std::collections::BTreeMap::new();
        tasks.insert(run.pipeline_type.log_task_key().to_owned(), text);
        Ok(IngestionLogs {
            tasks,
            total: total as u32,
            after: (index + 1 < total).then(|| (index + 1).to_string()),
        })
    }

    async fn run_automation(&self, spec: AutomationSpec) -> Result<(), ExecutorError> {
        let name = spec
            .workflow
            .get("fullyQualifiedName")
            .or_else(|| spec.workflow.get("name"))
            .and_then(Value::as_str)
            .unwrap_or("automation")
            .to_owned();
        let mut env = self.inner.config.extra_envs.clone();
        env.push(("config".into(), spec.workflow.to_string()));
        env.push(("pipelineRunId".into(), spec.run_id.clone()));
        self.inner.start_run(Launch {
            fqn: format!("automation:{name}"),
            pipeline_type: PipelineType::Other("automation".into()),
            run_id: spec.run_id,
            command: self.inner.config.automation_command.clone(),
            env,
            timeout: self.inner.config.default_timeout,
            masker: spec.masker,
        })?;
        Ok(())
    }

    async fn health(&self) -> ComponentHealth {
        let program = self
            .inner
            .config
            .command
            .first()
            .cloned()
            .unwrap_or_default();
        if program.is_empty() {
            return ComponentHealth {
                ok: false,
                detail: Some("LOCAL_INGESTION_COMMAND is empty".into()),
            };
        }
        ComponentHealth {
            ok: true,
            detail: None,
        }
    }

    async fn shutdown(&self, grace: Duration) {
        self.inner.tracker.close();
        let unfinished = self.runs_in_flight();
        if unfinished > 0 {
            tracing::info!(
                runs = unfinished,
                grace_secs = grace.as_secs(),
                "waiting for local runs to finish"
            );
        }
        // Wait for runs, then stop what is left; runs are children of this process and cannot
        // outlive it.
        let runs_done = async {
            loop {
                if self.runs_in_flight() == 0 {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        if tokio::time::timeout(grace, runs_done).await.is_err() {
            tracing::warn!("grace period over: stopping local runs still going");
        }
        self.inner.shutdown.cancel();
        let _ = tokio::time::timeout(
            self.inner.config.kill_grace + Duration::from_secs(5),
            self.inner.tracker.wait(),
        )
        .await;
    }
}

/// Documented for tests: the `json!` of a run's status metadata message.
pub fn status_message(status: &PipelineStatus) -> Option<&str> {
    status.metadata.as_ref()?.get("message")?.as_str()
}
