#![allow(dead_code)]
//! Shared set-up: a mock control plane, a runner with the local executor, and a stand-in
//! ingestion program (a shell script). `leak`: leak scans of frames, logs and objects.

pub mod leak;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use runner_core::backoff::BackoffConfig;
use runner_core::config::TokenSource;
use runner_core::executor::local::{LocalConfig, LocalExecutor};
use runner_core::executor::{Executor, StatusSink};
use runner_core::runner::StatusHandle;
use runner_core::testkit::{MockControlPlane, MockOptions};
use runner_core::{AuthToken, CoreError, Outbox, Preparer, Runner, RunnerConfig, ServerUrl};
use runner_protocol::{
    EventFrame, IngestionPipeline, PipelineState, Request, Response, RunOptions, RunnerEvent,
};
use serde_json::json;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const WAIT: Duration = Duration::from_secs(20);

pub struct Harness {
    pub cp: MockControlPlane,
    pub shutdown: CancellationToken,
    pub status: StatusHandle,
    pub task: JoinHandle<Result<(), CoreError>>,
    pub dir: TempDir,
}

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        let p = std::env::temp_dir().join(format!("runner-test-{}", uuid_like()));
        // A killed earlier process with the same id may have left it behind.
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Unique per directory: the process id and a counter. (The clock alone is not: two tests
/// starting together got the same name, shared `runs.txt`, and counted each other's runs.)
fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{}-{n}", std::process::id())
}

/// The stand-in ingestion program: records that it ran, prints its env contract, sleeps
/// `$SLEEP` seconds (from the extra envs), exits with `$EXIT`.
pub fn script(marker: &std::path::Path) -> String {
    format!(
        r#"echo "$pipelineRunId" >> {marker}; echo "starting $pipelineType run $pipelineRunId for $ingestionPipelineFQN"; echo "token=${{AUTH_TOKEN:-absent}}"; echo "$config" | head -c 4000; echo; sleep "${{SLEEP:-0}}"; echo "done"; exit "${{EXIT:-0}}""#,
        marker = marker.display()
    )
}

pub struct Setup {
    pub token: String,
    pub mock: MockOptions,
    pub sleep_secs: f64,
    pub exit: i32,
    pub drain_grace: Duration,
    pub ca_file: Option<PathBuf>,
    pub preparer: Preparer,
    /// Another executor than the local one (given the status sink and the preparer).
    pub executor: Option<MakeExecutor>,
    /// Read the token from this file at each connection attempt (AUTH_TOKEN_FILE).
    pub token_file: Option<PathBuf>,
    /// Delay after a rejected token.
    pub auth_retry: Duration,
}

pub type MakeExecutor = Box<dyn FnOnce(StatusSink, Arc<Preparer>) -> Arc<dyn Executor>>;

/// The build settings the Argo tests share: the stock image in namespace `ingestion`.
pub fn argo_build(
    runner_id: &str,
    delivery: runner_argo::build::SecretsDelivery,
) -> runner_argo::BuildConfig {
    runner_argo::BuildConfig {
        runner_id: runner_id.into(),
        image: "openmetadata/ingestion:1.9.0".into(),
        namespace: "ingestion".into(),
        secrets_delivery: delivery,
        ..runner_argo::BuildConfig::default()
    }
}

/// The Argo executor with these settings as the runner's executor; `store` holds the config
/// Secrets of `SECRETS_DELIVERY=runner`.
pub fn argo_executor(
    settings: runner_core::executor::argo::ArgoSettings,
    store: Option<Arc<dyn runner_core::executor::argo::ConfigSecrets>>,
) -> MakeExecutor {
    Box::new(move |sink, preparer| {
        Arc::new(
            runner_core::executor::argo::ArgoExecutor::start(settings, sink, preparer, store)
                .expect("argo executor"),
        )
    })
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            token: "test-token".into(),
            mock: MockOptions::default(),
            sleep_secs: 0.0,
            exit: 0,
            drain_grace: Duration::from_secs(10),
            ca_file: None,
            preparer: Preparer::default(),
            executor: None,
            token_file: None,
            auth_retry: Duration::from_secs(120),
        }
    }
}

pub async fn start(setup: Setup) -> Harness {
    let cp = MockControlPlane::start(setup.mock.clone()).await.unwrap();
    let dir = TempDir::new();
    let marker = dir.path("runs.txt");
    let outbox = Arc::new(Outbox::new(1000));
    let local = LocalConfig {
        command: vec!["sh".into(), "-c".into(), script(&marker)],
        automation_command: vec!["sh".into(), "-c".into(), script(&marker)],
        extra_envs: vec![
            ("SLEEP".into(), setup.sleep_secs.to_string()),
            ("EXIT".into(), setup.exit.to_string()),
        ],
        kill_grace: Duration::from_secs(2),
        ..Default::default()
    };
    let preparer = Arc::new(setup.preparer);
    let executor: Arc<dyn Executor> = match setup.executor {
        Some(make) => make(StatusSink::new(outbox.clone()), preparer.clone()),
        None => Arc::new(LocalExecutor::start(
            local,
            StatusSink::new(outbox.clone()),
            preparer.clone(),
        )),
    };
    let mut config = RunnerConfig::new(
        "agent-test",
        ServerUrl::parse(&cp.url(), false).unwrap(),
        match setup.token_file {
            Some(path) => TokenSource::File(path),
            None => TokenSource::Static(AuthToken::new(setup.token)),
        },
    );
    config.backoff = BackoffConfig {
        base: Duration::from_millis(100),
        max: Duration::from_millis(500),
        auth_retry: setup.auth_retry,
    };
    config.drain_grace = setup.drain_grace;
    config.ca_file = setup.ca_file;
    let runner = Runner::new(config, executor, outbox, preparer);
    let status = runner.status_handle();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(runner.run(shutdown.clone()));
    Harness {
        cp,
        shutdown,
        status,
        task,
        dir,
    }
}

pub fn pipeline(name: &str) -> IngestionPipeline {
    serde_json::from_value(json!({
        "id": "7a3b6a2e-0000-4000-8000-000000000001",
        "name": name,
        "fullyQualifiedName": format!("mysql_prod.{name}"),
        "pipelineType": "metadata",
        "sourceConfig": {"config": {"type": "DatabaseMetadata"}},
        "airflowConfig": {"scheduleInterval": "0 * * * *"},
        "enabled": true,
        "openMetadataServerConnection": {"hostPort": "http://openmetadata:8585/api", "authProvider": "openmetadata"}
    }))
    .unwrap()
}

pub fn service() -> serde_json::Value {
    json!({"name": "mysql_prod", "serviceType": "Mysql", "connection": {"config": {"type": "Mysql", "hostPort": "db:3306"}}})
}

pub fn run_request(name: &str, run_id: Option<&str>) -> Request {
    Request::RunPipeline {
        pipeline: Box::new(pipeline(name)),
        service: Some(service()),
        options: RunOptions {
            run_id: run_id.map(str::to_owned),
            config_override: None,
        },
    }
}

/// The run id of a successful pipeline response.
pub fn run_id_of(r: &Response) -> String {
    match r {
        Response::Result(runner_protocol::OpResult::PipelineResponse(p)) => {
            assert_eq!(p.code, 200, "{p:?}");
            p.run_id.clone().expect("runId in response")
        }
        other => panic!("expected a pipeline response, got {other:?}"),
    }
}

/// States stored by the control plane for `run_id`, in seq order.
pub fn states_of(cp: &MockControlPlane, run_id: &str) -> Vec<PipelineState> {
    cp.events()
        .into_iter()
        .filter_map(|e| match e.event.event {
            RunnerEvent::RunStatus { status, .. } if status.run_id == run_id => {
                Some(status.pipeline_state)
            }
            _ => None,
        })
        .collect()
}

pub async fn wait_state(cp: &MockControlPlane, run_id: &str, state: PipelineState) -> EventFrame {
    cp.wait_event(WAIT, |e| match &e.event {
        RunnerEvent::RunStatus { status, .. } => {
            status.run_id == run_id && status.pipeline_state == state
        }
    })
    .await
    .unwrap_or_else(|e| panic!("run {run_id} never reached {state:?}: {e}"))
}

/// Lines in the marker file: how many times the ingestion program started.
pub fn starts(h: &Harness) -> usize {
    std::fs::read_to_string(h.dir.path("runs.txt"))
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

/// Polls `f` until it holds (or panics after [`WAIT`]).
pub async fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !f() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
