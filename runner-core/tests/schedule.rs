//! Schedules of the local executor on paused tokio time: a cron pipeline fires at its times,
//! toggling pauses and resumes it, deleting stops it.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use runner_core::Outbox;
use runner_core::executor::local::{LocalConfig, LocalExecutor};
use runner_core::executor::{Executor, StatusSink};
use runner_protocol::{IngestionPipeline, RunnerEvent};
use serde_json::json;

fn pipeline(schedule: &str) -> IngestionPipeline {
    serde_json::from_value(json!({
        "name": "nightly", "fullyQualifiedName": "svc.nightly", "pipelineType": "metadata",
        "sourceConfig": {"config": {}}, "airflowConfig": {"scheduleInterval": schedule}, "openMetadataServerConnection": {"hostPort": "http://om:8585/api"}
    }))
    .unwrap()
}

/// Distinct runs that reported any status so far.
fn runs(outbox: &Outbox) -> usize {
    outbox
        .pending_after(0, 10_000)
        .iter()
        .map(|e| match &e.event {
            RunnerEvent::RunStatus { status, .. } => status.run_id.clone(),
        })
        .collect::<HashSet<_>>()
        .len()
}

#[tokio::test(start_paused = true)]
async fn cron_fires_on_time_and_toggle_pauses_it() {
    let outbox = Arc::new(Outbox::new(10_000));
    // A program that cannot start: each scheduled run goes queued -> failed at once, which keeps
    // the test free of real child processes (paused time would race them).
    let ex = LocalExecutor::start(
        LocalConfig {
            command: vec!["/nonexistent/ingestion".into()],
            ..Default::default()
        },
        StatusSink::new(outbox.clone()),
        Arc::new(runner_core::Preparer::default()),
    );
    let service =
        json!({"name": "svc", "serviceType": "Mysql", "connection": {"config": {"type": "Mysql"}}});
    let outcome = ex
        .deploy(&pipeline("*/5 * * * *"), Some(&service))
        .await
        .unwrap();
    assert!(outcome.scheduled, "{}", outcome.message);
    assert_eq!(runs(&outbox), 0);

    // (t0, t0 + 15m + 1s] holds three 5-minute marks, four if t0 fell within a second after one.
    tokio::time::sleep(Duration::from_secs(15 * 60 + 1)).await;
    let fired = runs(&outbox);
    assert!(
        (3..=4).contains(&fired),
        "fired {fired} times in 15 minutes"
    );

    ex.toggle(&pipeline("*/5 * * * *"), false).await.unwrap();
    tokio::time::sleep(Duration::from_secs(60 * 60)).await;
    assert_eq!(runs(&outbox), fired, "a disabled schedule does not fire");

    ex.toggle(&pipeline("*/5 * * * *"), true).await.unwrap();
    tokio::time::sleep(Duration::from_secs(5 * 60 + 1)).await;
    let after = runs(&outbox);
    assert!(
        (fired + 1..=fired + 2).contains(&after),
        "{fired} -> {after}"
    );

    ex.delete(&pipeline("*/5 * * * *")).await.unwrap();
    tokio::time::sleep(Duration::from_secs(60 * 60)).await;
    assert_eq!(runs(&outbox), after, "a deleted pipeline does not fire");
}

#[tokio::test(start_paused = true)]
async fn deploy_refuses_bad_schedules_with_the_fix() {
    let outbox = Arc::new(Outbox::new(10));
    let ex = LocalExecutor::start(
        LocalConfig::default(),
        StatusSink::new(outbox),
        Arc::new(runner_core::Preparer::default()),
    );
    let err = ex.deploy(&pipeline("* * * * * *"), None).await.unwrap_err();
    assert!(err.to_string().contains("5-field cron"), "{err}");
    let ok = ex.deploy(&pipeline("@daily"), None).await.unwrap();
    assert!(ok.message.contains("0 0 * * *"), "{}", ok.message);
}
