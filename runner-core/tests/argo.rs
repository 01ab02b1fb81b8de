//! End to end: mock control plane -> runner -> Argo executor -> fake Argo Server (which checks
//! every request body against the upstream swagger).

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use runner_argo::ArgoClientConfig;
use runner_argo::build::{BuildConfig, SecretsDelivery};
use runner_argo::fake::{FakeArgo, FakeConfig, PhaseStep};
use runner_core::executor::argo::{ArgoExecutor, ArgoSettings};
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
    Setup {
        executor: Some(Box::new(move |sink, _preparer| {
            let build = BuildConfig {
                runner_id: "agent-test".into(),
                image: "openmetadata/ingestion:1.9.0".into(),
                namespace: "ingestion".into(),
                secrets_delivery: SecretsDelivery::Pod,
                ..BuildConfig::default()
            };
            let client = ArgoClientConfig {
                endpoint: url,
                ..Default::default()
            };
            let mut settings = ArgoSettings::new(client, build);
            settings.kill_grace = Duration::from_millis(500);
            Arc::new(ArgoExecutor::start(settings, sink).expect("argo executor"))
        })),
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
