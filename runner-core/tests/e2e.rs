//! End to end over a real WebSocket on loopback: mock control plane <-> runner <-> local executor.

mod common;

use std::time::Duration;

use common::leak::{assert_no_leak_upstream, scanner};
use common::*;
use runner_core::runner::ConnectionState;
use runner_core::testkit::MockOptions;
use runner_protocol::{ErrorCode, OpResult, PipelineState, Reject, RejectCode, Request, Response};

#[tokio::test]
async fn handshake_announces_the_runner_and_heartbeats_carry_readiness_and_load() {
    let h = start(Setup {
        mock: MockOptions {
            heartbeat_interval: Duration::from_secs(1),
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    let hello = h.cp.wait_connected(WAIT).await.unwrap();
    assert_eq!(hello.agent_id, "agent-test");
    assert_eq!(hello.executor, "local");
    assert_eq!(hello.protocol_versions, vec![1]);
    assert!(hello.capabilities.iter().any(|c| c == "events.ack"));
    wait_until("connected", || {
        h.status.get().state == ConnectionState::Connected
    })
    .await;
    assert_eq!(h.status.get().protocol_version, Some(1));
    // The runner heartbeats at the negotiated interval with readiness and load.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let hbs = h.cp.heartbeats();
    let hb = hbs.last().expect("at least one heartbeat from the runner");
    let load = hb.load.expect("load");
    assert_eq!(load.run_capacity, 4);
    assert!(hb.readiness.as_ref().expect("readiness").executor.ok);
}

#[tokio::test]
async fn bad_token_is_reported_and_not_hammered() {
    let h = start(Setup {
        token: "wrong".into(),
        ..Default::default()
    })
    .await;
    wait_until("a refused upgrade", || h.cp.upgrades_refused() > 0).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // Base backoff is 100 ms: a runner that ignored the rejection would have retried ~10 times.
    assert_eq!(h.cp.upgrades_refused(), 1);
    let status = h.status.get();
    assert_eq!(status.state, ConnectionState::Unauthorized);
    let err = status.last_error.unwrap();
    assert!(err.contains("AUTH_TOKEN"), "{err}");
    assert!(
        !err.contains("wrong"),
        "the token must not appear in errors: {err}"
    );
}

#[tokio::test]
async fn in_band_reject_is_treated_like_a_bad_token() {
    let h = start(Setup {
        mock: MockOptions {
            reject: Some(Reject {
                code: RejectCode::Unauthorized,
                reason: "token expired at 2026-11-01".into(),
                retry_after_ms: None,
                protocol_versions: vec![],
            }),
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    wait_until("unauthorized", || {
        h.status.get().state == ConnectionState::Unauthorized
    })
    .await;
    let err = h.status.get().last_error.unwrap();
    assert!(err.contains("token expired"), "{err}");
    assert_eq!(h.cp.connections(), 0);
}

#[tokio::test]
async fn run_reports_queued_running_success_in_order() {
    let h = start(Setup::default()).await;
    h.cp.wait_connected(WAIT).await.unwrap();
    let run_id = run_id_of(&h.cp.request(run_request("orders", None)).await.unwrap());
    wait_state(&h.cp, &run_id, PipelineState::Success).await;
    assert_eq!(
        states_of(&h.cp, &run_id),
        vec![
            PipelineState::Queued,
            PipelineState::Running,
            PipelineState::Success
        ]
    );
    assert_eq!(starts(&h), 1);
    // The child never sees the runner's token (its env is cleared).
    let logs =
        h.cp.request(Request::GetIngestionLogs {
            pipeline: Box::new(pipeline("orders")),
            run_id: run_id.clone(),
            after: None,
        })
        .await
        .unwrap();
    let Response::Result(OpResult::Logs(logs)) = logs else {
        panic!("{logs:?}")
    };
    let text = &logs.tasks["ingestion_task"];
    assert!(
        text.contains(&format!(
            "starting metadata run {run_id} for mysql_prod.orders"
        )),
        "{text}"
    );
    assert!(text.contains("token=absent"), "{text}");
    assert!(text.contains("\"serviceName\":\"mysql_prod\""), "{text}");
    // The token goes in the upgrade header only: no frame holds it, in any encoding.
    assert_no_leak_upstream(&scanner(&["test-token"]), &h.cp);
}

#[tokio::test]
async fn failing_program_reports_failed_with_a_reason() {
    let h = start(Setup {
        exit: 3,
        ..Default::default()
    })
    .await;
    h.cp.wait_connected(WAIT).await.unwrap();
    let run_id = run_id_of(&h.cp.request(run_request("p", None)).await.unwrap());
    let ev = wait_state(&h.cp, &run_id, PipelineState::Failed).await;
    let runner_protocol::RunnerEvent::RunStatus { status, .. } = ev.event;
    let msg = runner_core::executor::local::status_message(&status).unwrap();
    assert!(msg.contains("exit status: 3"), "{msg}");
}

#[tokio::test]
async fn every_request_type_round_trips() {
    let h = start(Setup {
        sleep_secs: 5.0,
        ..Default::default()
    })
    .await;
    h.cp.wait_connected(WAIT).await.unwrap();
    let p = || Box::new(pipeline("all"));
    let code = |r: Response| match r {
        Response::Result(OpResult::PipelineResponse(p)) => p.code,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        code(
            h.cp.request(Request::DeployPipeline {
                pipeline: p(),
                service: Some(service())
            })
            .await
            .unwrap()
        ),
        200
    );
    let run_id = run_id_of(
        &h.cp
            .request(run_request("all", Some("run-fixed-1")))
            .await
            .unwrap(),
    );
    assert_eq!(run_id, "run-fixed-1");
    wait_state(&h.cp, &run_id, PipelineState::Running).await;
    match h
        .cp
        .request(Request::GetQueuedPipelineStatus { pipeline: p() })
        .await
        .unwrap()
    {
        Response::Result(OpResult::Statuses { statuses }) => {
            assert_eq!(statuses[0].run_id, "run-fixed-1");
            assert_eq!(statuses[0].pipeline_state, PipelineState::Running);
        }
        other => panic!("{other:?}"),
    }
    match h
        .cp
        .request(Request::GetLastIngestionLogs {
            pipeline: p(),
            after: None,
        })
        .await
        .unwrap()
    {
        Response::Result(OpResult::Logs(l)) => {
            assert_eq!(l.total, 1);
            assert!(l.tasks.contains_key("ingestion_task"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        code(
            h.cp.request(Request::KillIngestionRun {
                pipeline: p(),
                run_id: run_id.clone()
            })
            .await
            .unwrap()
        ),
        200
    );
    wait_state(&h.cp, &run_id, PipelineState::Stopped).await;
    // A second run, then kill every run of the pipeline.
    let second = run_id_of(&h.cp.request(run_request("all", None)).await.unwrap());
    wait_state(&h.cp, &second, PipelineState::Running).await;
    assert_eq!(
        code(
            h.cp.request(Request::KillIngestion { pipeline: p() })
                .await
                .unwrap()
        ),
        200
    );
    wait_state(&h.cp, &second, PipelineState::Stopped).await;
    assert_eq!(
        code(
            h.cp.request(Request::ToggleIngestion {
                pipeline: p(),
                enabled: None
            })
            .await
            .unwrap()
        ),
        200
    );
    assert_eq!(
        code(h.cp.request(Request::GetServiceStatus {}).await.unwrap()),
        200
    );
    match h.cp.request(Request::GetHostIp {}).await.unwrap() {
        Response::Result(OpResult::HostIp { ip }) => assert_eq!(ip, "127.0.0.1"),
        other => panic!("{other:?}"),
    }
    let automation = serde_json::json!({"name": "test-connection-1", "workflowType": "TEST_CONNECTION", "request": {}});
    let r =
        h.cp.request(Request::RunAutomationsWorkflow {
            workflow: automation,
        })
        .await
        .unwrap();
    run_id_of(&r);
    let app = serde_json::json!({"name": "MyApp", "sourcePythonClass": "my.app.Runner", "appConfiguration": {}});
    assert_eq!(
        code(
            h.cp.request(Request::ValidateAppRegistration {
                application: app.clone()
            })
            .await
            .unwrap()
        ),
        200
    );
    run_id_of(
        &h.cp
            .request(Request::RunApplicationFlow { application: app })
            .await
            .unwrap(),
    );
    match h
        .cp
        .request(Request::ValidateAppRegistration {
            application: serde_json::json!({"name": "Internal"}),
        })
        .await
        .unwrap()
    {
        Response::Error(e) => assert_eq!(e.code, ErrorCode::InvalidRequest),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        code(
            h.cp.request(Request::DeletePipeline { pipeline: p() })
                .await
                .unwrap()
        ),
        200
    );
    match h
        .cp
        .request(Request::DeletePipeline { pipeline: p() })
        .await
        .unwrap()
    {
        Response::Error(e) => assert_eq!(e.code, ErrorCode::NotFound),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        h.cp.request(Request::Ping {}).await.unwrap(),
        Response::Result(OpResult::Pong {})
    );
}

#[tokio::test]
async fn same_request_id_twice_executes_once() {
    let h = start(Setup {
        sleep_secs: 0.3,
        ..Default::default()
    })
    .await;
    h.cp.wait_connected(WAIT).await.unwrap();
    let first = run_id_of(
        &h.cp
            .request_as(Some("cp-req-42"), run_request("dup", None))
            .await
            .unwrap(),
    );
    let second = run_id_of(
        &h.cp
            .request_as(Some("cp-req-42"), run_request("dup", None))
            .await
            .unwrap(),
    );
    assert_eq!(first, second, "the replay is answered from the cache");
    wait_state(&h.cp, &first, PipelineState::Success).await;
    assert_eq!(starts(&h), 1);
    // Same run id under a new request id: idempotent by run id too.
    let third = run_id_of(
        &h.cp
            .request(run_request("dup", Some(&first)))
            .await
            .unwrap(),
    );
    assert_eq!(third, first);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(starts(&h), 1);
}

#[tokio::test]
async fn connection_dropped_mid_run_reconnects_and_replays_unacked_events() {
    let h = start(Setup {
        sleep_secs: 1.5,
        ..Default::default()
    })
    .await;
    h.cp.wait_connected(WAIT).await.unwrap();
    // The control plane loses events from now on (stores and acks nothing).
    h.cp.set_ack_events(false);
    let run_id = run_id_of(&h.cp.request(run_request("flaky", None)).await.unwrap());
    // Let the run reach `running` in the runner, then cut the connection.
    wait_until("the run to start", || {
        h.status.get().runs_in_flight > 0 && starts(&h) > 0
    })
    .await;
    assert!(
        h.status.get().events_pending > 0,
        "events are unacknowledged"
    );
    h.cp.drop_connection().await.unwrap();
    h.cp.set_ack_events(true);
    h.cp.wait_connections(2, WAIT).await.unwrap();
    wait_state(&h.cp, &run_id, PipelineState::Success).await;
    let states = states_of(&h.cp, &run_id);
    assert_eq!(states.last(), Some(&PipelineState::Success));
    // Nothing stored twice in effect: each state at most once, in order.
    let mut sorted = states.clone();
    sorted.dedup();
    assert_eq!(sorted, states);
    assert_eq!(starts(&h), 1, "the run kept going; it was not restarted");
    wait_until("all events acknowledged", || {
        h.status.get().events_pending == 0
    })
    .await;
}

#[tokio::test]
async fn acknowledged_events_are_not_replayed_after_reconnect() {
    let h = start(Setup::default()).await;
    h.cp.wait_connected(WAIT).await.unwrap();
    let run_id = run_id_of(&h.cp.request(run_request("steady", None)).await.unwrap());
    wait_state(&h.cp, &run_id, PipelineState::Success).await;
    let before = h.cp.events().len();
    h.cp.drop_connection().await.unwrap();
    h.cp.wait_connections(2, WAIT).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(h.cp.events().len(), before);
    assert_eq!(h.cp.duplicates(), 0);
}

#[tokio::test]
async fn bad_frames_get_error_replies_and_the_session_goes_on() {
    let h = start(Setup::default()).await;
    h.cp.wait_connected(WAIT).await.unwrap();
    h.cp.send_raw("{this is not json").await.unwrap();
    h.cp.send_raw(r#"{"v":1,"id":"x1","type":"teleport","body":{}}"#)
        .await
        .unwrap();
    h.cp.send_raw(r#"{"v":1,"id":"x2","type":"request","body":{"op":"runPipelines"}}"#)
        .await
        .unwrap();
    let big = format!(
        r#"{{"v":1,"id":"x3","type":"request","body":{{"op":"ping","pad":"{}"}}}}"#,
        "a".repeat(1_100_000)
    );
    h.cp.send_raw(big).await.unwrap();
    h.cp.send_raw(r#"{"v":2,"id":"x4","type":"heartbeat","body":{}}"#)
        .await
        .unwrap();
    let replies = h.cp.wait_raw_replies(5, WAIT).await.unwrap();
    let codes: Vec<String> = replies
        .iter()
        .map(|r| {
            let body = &r["body"];
            body.get("error").unwrap_or(body)["code"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        codes,
        [
            "malformed",
            "unknown_type",
            "unknown_operation",
            "frame_too_large",
            "unsupported_version"
        ]
    );
    assert_eq!(replies[1]["re"], "x1");
    assert!(
        replies[2]["body"]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("did you mean `runPipeline`")
    );
    // The session survived.
    assert_eq!(
        h.cp.request(Request::Ping {}).await.unwrap(),
        Response::Result(OpResult::Pong {})
    );
    assert_eq!(h.cp.connections(), 1);
}

#[tokio::test]
async fn shutdown_drains_runs_flushes_events_and_says_goodbye() {
    let h = start(Setup {
        sleep_secs: 1.0,
        ..Default::default()
    })
    .await;
    h.cp.wait_connected(WAIT).await.unwrap();
    let run_id = run_id_of(&h.cp.request(run_request("drain", None)).await.unwrap());
    wait_state(&h.cp, &run_id, PipelineState::Running).await;
    h.shutdown.cancel();
    // New work is refused while draining.
    tokio::time::sleep(Duration::from_millis(100)).await;
    match h.cp.request(run_request("late", None)).await {
        Ok(Response::Error(e)) => assert_eq!(e.code, ErrorCode::ShuttingDown),
        other => panic!("expected shutting_down, got {other:?}"),
    }
    let result = tokio::time::timeout(WAIT, h.task)
        .await
        .expect("drain finishes")
        .unwrap();
    assert!(result.is_ok());
    // The run finished inside the grace period and its final status reached the control plane.
    assert_eq!(
        states_of(&h.cp, &run_id).last(),
        Some(&PipelineState::Success)
    );
    h.cp.wait_disconnected(WAIT).await.unwrap();
    assert_eq!(h.status.get().state, ConnectionState::Stopped);
}

#[tokio::test]
async fn shutdown_stops_runs_past_the_grace_period() {
    let h = start(Setup {
        sleep_secs: 30.0,
        drain_grace: Duration::from_millis(300),
        ..Default::default()
    })
    .await;
    h.cp.wait_connected(WAIT).await.unwrap();
    let run_id = run_id_of(&h.cp.request(run_request("slow", None)).await.unwrap());
    wait_state(&h.cp, &run_id, PipelineState::Running).await;
    h.shutdown.cancel();
    tokio::time::timeout(WAIT, h.task)
        .await
        .expect("drain is bounded")
        .unwrap()
        .unwrap();
    assert_eq!(
        states_of(&h.cp, &run_id).last(),
        Some(&PipelineState::Stopped)
    );
}

#[tokio::test]
async fn a_rotated_token_file_is_used_at_the_next_attempt() {
    let dir = TempDir::new();
    let file = dir.path("token");
    std::fs::write(&file, "revoked-token\n").unwrap();
    let h = start(Setup {
        token_file: Some(file.clone()),
        auth_retry: Duration::from_millis(400),
        ..Default::default()
    })
    .await;
    // The mock counts the refusal before the runner has read the 401 and set its state: wait
    // for both (the state alone would also be set by an in-band reject).
    wait_until("the old token to be refused", || {
        h.cp.upgrades_refused() > 0 && h.status.get().state == ConnectionState::Unauthorized
    })
    .await;
    // The operator (or the kubelet's secret refresh) rotates the file; no restart.
    std::fs::write(&file, "test-token\n").unwrap();
    h.cp.wait_connected(WAIT).await.unwrap();
    wait_until("connected", || {
        h.status.get().state == ConnectionState::Connected
    })
    .await;
}
