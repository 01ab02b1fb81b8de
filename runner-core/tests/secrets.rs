//! `secret:` references end to end: resolved by the runner right before a run starts, handed to
//! the workload only, masked in its logs, never sent upstream; a reference that does not resolve
//! fails the request before anything starts.

mod common;

use std::sync::Arc;

use common::leak::{assert_no_leak_in_logs, assert_no_leak_upstream, scanner};
use common::*;
use runner_core::Preparer;
use runner_protocol::{ErrorCode, OpResult, Request, Response, RunOptions};
use runner_secrets::providers::memory::MemoryProvider;
use runner_secrets::{ResolverOptions, SecretResolver};
use serde_json::json;

const PASSWORD: &str = "S3cr3t-P@ss-9Xq!";

fn preparer() -> Preparer {
    let provider = MemoryProvider::new();
    provider.insert(
        "demo/db/credentials",
        json!({"username": "svc_ingest", "password": PASSWORD}).to_string(),
    );
    let resolver = SecretResolver::new(
        Arc::new(provider),
        ResolverOptions {
            allowed_prefixes: vec!["demo/".into()],
            ..Default::default()
        },
    );
    Preparer::new(Some(Arc::new(resolver)), None)
}

fn run_with(password_ref: &str) -> Request {
    Request::RunPipeline {
        pipeline: Box::new(pipeline("secured")),
        service: Some(json!({
            "name": "mysql_prod", "serviceType": "Mysql",
            "connection": {"config": {"type": "Mysql", "hostPort": "db:3306",
                "username": "secret:demo/db/credentials/username",
                "password": password_ref}}
        })),
        options: RunOptions::default(),
    }
}

#[tokio::test]
async fn resolved_values_reach_the_workload_only() {
    let _ = common::leak::logs();
    let h = start(Setup {
        preparer: preparer(),
        ..Default::default()
    })
    .await;
    h.cp.wait_connected(WAIT).await.unwrap();
    let run_id = run_id_of(
        &h.cp
            .request(run_with("secret:/demo/db/credentials/password"))
            .await
            .unwrap(),
    );
    wait_state(&h.cp, &run_id, runner_protocol::PipelineState::Success).await;
    let logs =
        h.cp.request(Request::GetIngestionLogs {
            pipeline: Box::new(pipeline("secured")),
            run_id,
            after: None,
        })
        .await
        .unwrap();
    let Response::Result(OpResult::Logs(logs)) = logs else {
        panic!("{logs:?}")
    };
    let text = &logs.tasks["ingestion_task"];
    // The workload saw resolved values (the reference is gone from its config) ...
    assert!(text.contains("\"username\":\"***\""), "{text}");
    assert!(!text.contains("svc_ingest"), "{text}");
    assert!(
        !text.contains("secret:/demo/db/credentials/password"),
        "{text}"
    );
    // ... and what it printed of the password was masked before it left the runner.
    assert!(text.contains("\"password\":\"***\""), "{text}");
    // Nothing the runner sent upstream or logged holds a value, in any encoding.
    let s = scanner(&[PASSWORD, "svc_ingest"]);
    assert_no_leak_upstream(&s, &h.cp);
    assert_no_leak_in_logs(&s);
}

#[tokio::test]
async fn unresolvable_reference_fails_fast_and_starts_nothing() {
    let _ = common::leak::logs();
    let h = start(Setup {
        preparer: preparer(),
        ..Default::default()
    })
    .await;
    h.cp.wait_connected(WAIT).await.unwrap();
    match h
        .cp
        .request(run_with("secret:/demo/db/other/password"))
        .await
        .unwrap()
    {
        Response::Error(e) => {
            assert_eq!(e.code, ErrorCode::SecretUnresolved);
            assert!(
                e.message.contains("demo/db/other/password"),
                "{}",
                e.message
            );
            assert!(e.message.contains("nothing was started"), "{}", e.message);
        }
        other => panic!("{other:?}"),
    }
    match h
        .cp
        .request(run_with("secret:/prod/db/credentials/password"))
        .await
        .unwrap()
    {
        Response::Error(e) => assert_eq!(e.code, ErrorCode::Forbidden, "{}", e.message),
        other => panic!("{other:?}"),
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(starts(&h), 0);
    assert!(h.cp.events().is_empty(), "no run was queued");
    // The username resolved before the failing reference went nowhere.
    let s = scanner(&["svc_ingest"]);
    assert_no_leak_upstream(&s, &h.cp);
    assert_no_leak_in_logs(&s);
}
