//! End to end: mock control plane -> runner -> Argo executor -> fake Argo Server (which checks
//! every request body against the upstream swagger).

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::leak::{
    Exempt, Put, argo_objects, assert_no_leak_in_logs, assert_no_leak_in_objects,
    assert_no_leak_upstream, scanner,
};
use common::*;
use runner_argo::ArgoClientConfig;
use runner_argo::build::SecretsDelivery;
use runner_argo::fake::{FakeArgo, FakeConfig, PhaseStep};
use runner_core::executor::argo::ArgoSettings;
use runner_protocol::{
    ErrorCode, IngestionPipeline, OpResult, PipelineState, Request, Response, RunOptions,
};
use serde_json::json;

fn plan(running_after_ms: u64, done_after_ms: Option<u64>) -> FakeConfig {
    let mut steps = vec![
        PhaseStep::new(Duration::ZERO, "Pending"),
        PhaseStep::new(Duration::from_millis(running_after_ms), "Running"),
    ];
    if let Some(done) = done_after_ms {
        steps.push(PhaseStep::new(Duration::from_millis(done), "Succeeded"));
    }
    FakeConfig {
        phase_plan: steps,
        tick: Duration::from_millis(20),
        ..Default::default()
    }
}

fn argo_setup(fake: &FakeArgo) -> Setup {
    let url = fake.url();
    let client = ArgoClientConfig {
        endpoint: url,
        ..Default::default()
    };
    let mut settings = ArgoSettings::new(client, argo_build("agent-test", SecretsDelivery::Pod));
    settings.kill_grace = Duration::from_millis(500);
    Setup {
        executor: Some(argo_executor(settings, None)),
        ..Default::default()
    }
}

fn argo_pipeline(name: &str, schedule: Option<&str>) -> IngestionPipeline {
    serde_json::from_value(json!({
        "id": "0f5e8a52-1111-4a4a-9d9d-000000000042",
        "name": name,
        "fullyQualifiedName": format!("mysql_prod.{name}"),
        "pipelineType": "metadata",
        "sourceConfig": {"config": {"type": "DatabaseMetadata"}},
        "airflowConfig": {"scheduleInterval": schedule, "pipelineTimezone": "UTC"},
        "openMetadataServerConnection": {"hostPort": "https://acme.getcollate.io/api", "authProvider": "openmetadata",
            "securityConfig": {"jwtToken": "secret:/demo/bot-token"}},
        "enabled": true
    }))
    .unwrap()
}

fn run(name: &str, run_id: &str) -> Request {
    Request::RunPipeline {
        pipeline: Box::new(argo_pipeline(name, None)),
        service: Some(service()),
        options: RunOptions {
            run_id: Some(run_id.into()),
            config_override: None,
        },
    }
}

fn workflow_names(fake: &FakeArgo) -> Vec<String> {
    fake.workflows()
        .iter()
        .filter_map(|w| w["metadata"]["name"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn run_through_argo_reports_status_in_order_and_serves_logs() {
    let fake = FakeArgo::start(plan(200, Some(700))).await.unwrap();
    let h = start(argo_setup(&fake)).await;
    h.cp.wait_connected(WAIT).await.unwrap();
    let run_id = run_id_of(&h.cp.request(run("orders", "run-argo-1")).await.unwrap());
    assert_eq!(run_id, "run-argo-1");
    // A replayed run (same run id, new request id) does not create a second workflow.
    run_id_of(&h.cp.request(run("orders", "run-argo-1")).await.unwrap());
    assert_eq!(workflow_names(&fake).len(), 1);
    wait_state(&h.cp, &run_id, PipelineState::Success).await;
    assert_eq!(
        states_of(&h.cp, &run_id),
        vec![
            PipelineState::Queued,
            PipelineState::Running,
            PipelineState::Success
        ]
    );

    let name = workflow_names(&fake).remove(0);
    fake.set_logs(
        "ingestion",
        &name,
        vec![
            "INFO Starting workflow".into(),
            "INFO Workflow finished".into(),
        ],
    );
    match h
        .cp
        .request(Request::GetIngestionLogs {
            pipeline: Box::new(argo_pipeline("orders", None)),
            run_id,
            after: None,
        })
        .await
        .unwrap()
    {
        Response::Result(OpResult::Logs(l)) => {
            assert_eq!(l.total, 1);
            assert!(
                l.tasks["ingestion_task"].contains("Workflow finished"),
                "{l:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    match h
        .cp
        .request(Request::GetQueuedPipelineStatus {
            pipeline: Box::new(argo_pipeline("orders", None)),
        })
        .await
        .unwrap()
    {
        Response::Result(OpResult::Statuses { statuses }) => {
            assert_eq!(statuses[0].pipeline_state, PipelineState::Success)
        }
        other => panic!("{other:?}"),
    }
    assert!(
        fake.rejected().is_empty(),
        "requests the swagger refuses: {:?}",
        fake.rejected()
    );
    // The Workflow holds the reference, not a value.
    let wf = serde_json::to_string(&fake.workflows()).unwrap();
    assert!(wf.contains("secret:/demo/bot-token"));
}

#[tokio::test]
async fn schedule_toggle_kill_and_delete_through_argo() {
    let fake = FakeArgo::start(plan(100, None)).await.unwrap();
    let h = start(argo_setup(&fake)).await;
    h.cp.wait_connected(WAIT).await.unwrap();
    let p = || Box::new(argo_pipeline("nightly", Some("@daily")));
    match h
        .cp
        .request(Request::DeployPipeline {
            pipeline: p(),
            service: Some(service()),
        })
        .await
        .unwrap()
    {
        Response::Result(OpResult::PipelineResponse(r)) => assert_eq!(r.code, 200, "{r:?}"),
        other => panic!("{other:?}"),
    }
    let crons = fake.cron_workflows();
    assert_eq!(crons.len(), 1);
    assert_eq!(crons[0]["spec"]["schedules"][0], "0 0 * * *");
    h.cp.request(Request::ToggleIngestion {
        pipeline: p(),
        enabled: Some(false),
    })
    .await
    .unwrap();
    assert_eq!(fake.cron_workflows()[0]["spec"]["suspend"], true);
    h.cp.request(Request::ToggleIngestion {
        pipeline: p(),
        enabled: Some(true),
    })
    .await
    .unwrap();
    assert_ne!(fake.cron_workflows()[0]["spec"]["suspend"], true);

    let run_id = run_id_of(&h.cp.request(run("nightly", "run-long-1")).await.unwrap());
    wait_state(&h.cp, &run_id, PipelineState::Running).await;
    match h
        .cp
        .request(Request::KillIngestionRun {
            pipeline: p(),
            run_id: run_id.clone(),
        })
        .await
        .unwrap()
    {
        Response::Result(OpResult::PipelineResponse(r)) => assert_eq!(r.code, 200),
        other => panic!("{other:?}"),
    }
    wait_state(&h.cp, &run_id, PipelineState::Stopped).await;
    match h
        .cp
        .request(Request::KillIngestionRun {
            pipeline: p(),
            run_id: "no-such-run".into(),
        })
        .await
        .unwrap()
    {
        Response::Error(e) => assert_eq!(e.code, ErrorCode::NotFound),
        other => panic!("{other:?}"),
    }
    h.cp.request(Request::DeletePipeline { pipeline: p() })
        .await
        .unwrap();
    assert!(fake.cron_workflows().is_empty());
    assert!(workflow_names(&fake).is_empty());
    assert!(fake.rejected().is_empty(), "{:?}", fake.rejected());
}

#[tokio::test]
async fn a_new_runner_reattaches_to_runs_still_going() {
    let fake = FakeArgo::start(plan(100, Some(2500))).await.unwrap();
    let first = start(argo_setup(&fake)).await;
    first.cp.wait_connected(WAIT).await.unwrap();
    let run_id = run_id_of(
        &first
            .cp
            .request(run("survivor", "run-reattach-1"))
            .await
            .unwrap(),
    );
    wait_state(&first.cp, &run_id, PipelineState::Running).await;
    // The runner goes away mid-run; the workflow keeps going in Argo.
    first.shutdown.cancel();
    tokio::time::timeout(WAIT, first.task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(!states_of(&first.cp, &run_id).contains(&PipelineState::Success));

    let second = start(argo_setup(&fake)).await;
    second.cp.wait_connected(WAIT).await.unwrap();
    wait_state(&second.cp, &run_id, PipelineState::Success).await;
    assert_eq!(
        workflow_names(&fake).len(),
        1,
        "re-attached, not re-submitted"
    );
}

/// Config Secrets kept in memory: what the Kubernetes API would hold.
#[derive(Default)]
struct MemorySecrets {
    secrets: std::sync::Mutex<std::collections::BTreeMap<String, serde_json::Value>>,
}

#[async_trait::async_trait]
impl runner_core::executor::argo::ConfigSecrets for MemorySecrets {
    async fn put(
        &self,
        _ns: &str,
        manifest: &serde_json::Value,
    ) -> Result<(), runner_core::ExecutorError> {
        let name = manifest["metadata"]["name"].as_str().unwrap().to_owned();
        self.secrets.lock().unwrap().insert(name, manifest.clone());
        Ok(())
    }
    async fn patch(
        &self,
        _ns: &str,
        name: &str,
        patch: &serde_json::Value,
    ) -> Result<(), runner_core::ExecutorError> {
        let mut s = self.secrets.lock().unwrap();
        let secret = s
            .get_mut(name)
            .ok_or_else(|| runner_core::ExecutorError::NotFound(name.into()))?;
        secret["metadata"]["ownerReferences"] = patch["metadata"]["ownerReferences"].clone();
        Ok(())
    }
    async fn delete(&self, _ns: &str, name: &str) -> Result<(), runner_core::ExecutorError> {
        self.secrets.lock().unwrap().remove(name);
        Ok(())
    }
}

#[tokio::test]
async fn runner_delivery_puts_resolved_config_in_an_owned_secret_not_in_the_workflow() {
    use runner_secrets::providers::memory::MemoryProvider;
    const PASSWORD: &str = "Argo-S3cret-Pw!";
    let _ = common::leak::logs();
    let provider = MemoryProvider::new();
    provider.insert(
        "demo/db/credentials",
        json!({"password": PASSWORD}).to_string(),
    );
    provider.insert("demo/bot-token", "eyJ.bot.token");
    let resolver = runner_secrets::SecretResolver::new(Arc::new(provider), Default::default());
    let fake = FakeArgo::start(plan(100, Some(400))).await.unwrap();
    let store = Arc::new(MemorySecrets::default());
    let url = fake.url();
    let store_for_executor = store.clone();
    let setup = Setup {
        preparer: runner_core::Preparer::new(Some(Arc::new(resolver)), None),
        executor: Some(argo_executor(
            ArgoSettings::new(
                ArgoClientConfig {
                    endpoint: url,
                    ..Default::default()
                },
                argo_build("agent-test", SecretsDelivery::Runner),
            ),
            Some(store_for_executor),
        )),
        ..Default::default()
    };
    let h = start(setup).await;
    h.cp.wait_connected(WAIT).await.unwrap();
    let request = Request::RunPipeline {
        pipeline: Box::new(argo_pipeline("secured", None)),
        service: Some(json!({"name": "mysql_prod", "serviceType": "Mysql",
            "connection": {"config": {"type": "Mysql", "password": "secret:/demo/db/credentials/password"}}})),
        options: RunOptions {
            run_id: Some("run-sec-1".into()),
            config_override: None,
        },
    };
    let run_id = run_id_of(&h.cp.request(request).await.unwrap());
    wait_state(&h.cp, &run_id, PipelineState::Success).await;

    let secrets = store.secrets.lock().unwrap().clone();
    assert_eq!(secrets.len(), 1, "{secrets:?}");
    let (name, secret) = secrets.into_iter().next().unwrap();
    let stored = serde_json::to_string(&secret).unwrap();
    assert!(
        stored.contains(PASSWORD),
        "the Secret holds the resolved config"
    );
    let wf_name = workflow_names(&fake).remove(0);
    assert_eq!(
        secret["metadata"]["ownerReferences"][0]["name"],
        wf_name.as_str(),
        "owned by its Workflow"
    );
    let workflows = serde_json::to_string(&fake.workflows()).unwrap();
    assert!(
        workflows.contains(&name) && workflows.contains("secretKeyRef"),
        "the pod reads config from the Secret"
    );
    // Leak scan: every body Argo received and every object it holds, every Secret stored (the
    // run's config Secret alone is exempt, and must hold the values), every frame sent
    // upstream, every log line.
    let s = scanner(&[PASSWORD, "eyJ.bot.token"]);
    let mut objects = argo_objects(&fake);
    objects.push(Put {
        place: "the Secret stored through the Kubernetes API".into(),
        object: secret.clone(),
    });
    assert_no_leak_in_objects(
        &s,
        &objects,
        Some(Exempt {
            kind: "Secret",
            name: &name,
        }),
    );
    assert_no_leak_upstream(&s, &h.cp);
    assert_no_leak_in_logs(&s);
    assert!(fake.rejected().is_empty(), "{:?}", fake.rejected());
}
