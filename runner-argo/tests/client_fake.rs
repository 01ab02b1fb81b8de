//! The client against the in-process fake Argo Server: operations, streams, errors, retry.
#![cfg(feature = "fake")]

mod common;

use std::time::Duration;

use common::{fixture, full_config};
use futures_util::StreamExt;
use runner_argo::build::{self, RunRequest, build_cron_workflow, build_run_workflow};
use runner_argo::fake::{FakeArgo, FakeConfig, Fault, FaultRule, PhaseStep};
use runner_argo::logs::{collect_log_text, page_logs};
use runner_argo::model::{CronWorkflow, Workflow};
use runner_argo::status::{PipelineState, map_workflow};
use runner_argo::{
    ArgoClient, ArgoClientConfig, ArgoError, LogOptions, RetryPolicy, StreamFormat, TokenSource,
};
use serde_json::json;

const NS: &str = "ingestion";

fn client_for(fake: &FakeArgo, tweak: impl FnOnce(&mut ArgoClientConfig)) -> ArgoClient {
    let mut cfg = ArgoClientConfig {
        endpoint: fake.url(),
        retry: RetryPolicy {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(50),
        },
        request_timeout: Duration::from_secs(30),
        stream_idle_timeout: Duration::from_secs(3600),
        ..ArgoClientConfig::default()
    };
    tweak(&mut cfg);
    ArgoClient::new(cfg).unwrap()
}

fn run_wf(run_id: &str) -> Workflow {
    let bc = full_config();
    build_run_workflow(
        &bc,
        &RunRequest {
            pipeline: &fixture("pipeline_metadata.json"),
            service: Some(&fixture("service_mysql.json")),
            run_id,
            overrides: None,
        },
    )
    .unwrap()
    .workflow
}

fn selector() -> String {
    build::runner_selector("runner-eu-1")
}

#[tokio::test]
async fn workflow_crud_duplicate_and_list_by_label() {
    let fake = FakeArgo::start(FakeConfig::default()).await.unwrap();
    let c = client_for(&fake, |_| {});
    let v = c.version().await.unwrap();
    assert_eq!(v.version, "v4.1.2");

    let wf = run_wf("run-1");
    let created = c.create_workflow(NS, &wf).await.unwrap();
    assert_eq!(created.name(), wf.name());
    assert!(created.metadata.uid.is_some() && created.metadata.resource_version.is_some());
    assert!(fake.rejected().is_empty(), "{:?}", fake.rejected());

    // same deterministic name again: 409, not a second run
    let e = c.create_workflow(NS, &wf).await.unwrap_err();
    assert!(e.is_already_exists(), "{e:?}");
    let (again, fresh) = c
        .create_workflow_idempotent(NS, &wf, build::LABEL_RUN_ID)
        .await
        .unwrap();
    assert!(!fresh);
    assert_eq!(again.metadata.uid, created.metadata.uid);
    assert_eq!(fake.workflows().len(), 1);

    let got = c.get_workflow(NS, wf.name()).await.unwrap();
    assert_eq!(got.metadata.uid, created.metadata.uid);
    for i in 2..=6 {
        c.create_workflow(NS, &run_wf(&format!("run-{i}")))
            .await
            .unwrap();
    }
    let c_paged = client_for(&fake, |cfg| cfg.list_page_size = 2);
    let all = c_paged.list_workflows(NS, &selector()).await.unwrap();
    assert_eq!(all.items.len(), 6);
    assert!(
        fake.count("GET", "/api/v1/workflows/ingestion") >= 3,
        "pages followed"
    );
    let one = c
        .list_workflows(NS, &build::run_selector("runner-eu-1", "run-3"))
        .await
        .unwrap();
    assert_eq!(one.items.len(), 1);
    let none = c
        .list_workflows(NS, &build::runner_selector("someone-else"))
        .await
        .unwrap();
    assert!(none.items.is_empty());
    let other_ns = c.list_workflows("elsewhere", &selector()).await.unwrap();
    assert!(other_ns.items.is_empty());

    c.delete_workflow(NS, wf.name()).await.unwrap();
    assert!(
        c.get_workflow(NS, wf.name())
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert!(
        c.delete_workflow(NS, wf.name())
            .await
            .unwrap_err()
            .is_not_found()
    );
    let n = c
        .delete_workflows_by_label(
            NS,
            &build::pipeline_selector("runner-eu-1", "mysql_prod.mysql_prod_metadata_Ingestion"),
        )
        .await
        .unwrap();
    assert_eq!(n, 5);
    assert!(fake.workflows().is_empty());
}

/// Streams are read over real sockets, so these tests run on real time with short
/// durations (a paused clock auto-advances while a socket read is pending, which made a
/// stream test flaky); request/response tests below use `start_paused`.
fn fast_plan() -> Vec<PhaseStep> {
    vec![
        PhaseStep::new(Duration::ZERO, "Pending"),
        PhaseStep::new(Duration::from_millis(200), "Running"),
        PhaseStep::new(Duration::from_millis(500), "Succeeded"),
    ]
}

fn fast_fake() -> FakeConfig {
    FakeConfig {
        phase_plan: fast_plan(),
        tick: Duration::from_millis(20),
        ..FakeConfig::default()
    }
}

#[tokio::test]
async fn phases_over_time_through_the_watch_ndjson_and_sse() {
    for format in [StreamFormat::Ndjson, StreamFormat::Sse] {
        let fake = FakeArgo::start(fast_fake()).await.unwrap();
        let c = client_for(&fake, |_| {});
        let mut watch = c
            .watch_workflows_as(NS, &selector(), None, format)
            .await
            .unwrap();
        let wf = run_wf("run-w");
        c.create_workflow(NS, &wf).await.unwrap();
        let mut states = Vec::new();
        while let Some(ev) = tokio::time::timeout(Duration::from_secs(10), watch.next())
            .await
            .expect("events keep coming")
        {
            let obj = ev.unwrap().object.unwrap();
            let st = map_workflow(&obj);
            assert_eq!(st.run_id.as_deref(), Some("run-w"));
            if states.last() != Some(&st.state) {
                states.push(st.state);
            }
            if st.state.is_terminal() {
                assert!(st.start_date_ms.is_some() && st.end_date_ms.is_some());
                break;
            }
        }
        assert_eq!(
            states,
            vec![
                PipelineState::Queued,
                PipelineState::Running,
                PipelineState::Success
            ],
            "{format:?}"
        );
        // one watch, no polling of the run
        assert_eq!(fake.count("GET", "/api/v1/workflows/ingestion/"), 0);
    }
}

#[tokio::test]
async fn watch_resumes_from_resource_version_and_survives_keepalives() {
    let fake = FakeArgo::start(FakeConfig {
        keepalive: Duration::from_millis(100),
        ..fast_fake()
    })
    .await
    .unwrap();
    let c = client_for(&fake, |cfg| {
        cfg.stream_idle_timeout = Duration::from_secs(2)
    });
    c.create_workflow(NS, &run_wf("a")).await.unwrap();
    let list = c.list_workflows(NS, &selector()).await.unwrap();
    let rv = list.metadata.resource_version.clone().unwrap();
    let mut w = c.watch_workflows(NS, &selector(), Some(&rv)).await.unwrap();
    // "b" stays Pending for 3.5 s, longer than the 2 s idle limit: keep-alives
    // every 100 ms keep the stream open
    fake.set_plan(
        NS,
        run_wf("b").name(),
        vec![
            PhaseStep::new(Duration::ZERO, "Pending"),
            PhaseStep::new(Duration::from_millis(3500), "Running"),
        ],
    );
    tokio::time::sleep(Duration::from_millis(700)).await; // "a" Running, then Succeeded
    c.create_workflow(NS, &run_wf("b")).await.unwrap();
    let mut seen = Vec::new();
    loop {
        let ev = w.next().await.expect("not EOF").expect("no error");
        let o = ev.object.unwrap();
        seen.push((
            ev.event_type.clone(),
            map_workflow(&o).run_id.unwrap(),
            o.phase().map(str::to_owned),
        ));
        if seen
            .iter()
            .any(|(_, r, p)| r == "b" && p.as_deref() == Some("Running"))
        {
            break;
        }
    }
    // events after rv only: no ADDED for "a" (it existed at rv), its MODIFIEDs, then "b"
    assert!(
        !seen.iter().any(|(t, r, _)| t == "ADDED" && r == "a"),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .any(|(t, r, p)| t == "MODIFIED" && r == "a" && p.as_deref() == Some("Succeeded")),
        "{seen:?}"
    );
    assert!(
        seen.iter().any(|(t, r, _)| t == "ADDED" && r == "b"),
        "{seen:?}"
    );
}

#[tokio::test]
async fn watch_mid_stream_error_eof_and_idle_timeout() {
    let fake = FakeArgo::start(FakeConfig {
        keepalive: Duration::from_secs(3600),
        ..fast_fake()
    })
    .await
    .unwrap();
    let c = client_for(&fake, |cfg| {
        cfg.stream_idle_timeout = Duration::from_secs(5)
    });
    c.create_workflow(NS, &run_wf("x")).await.unwrap();
    c.create_workflow(NS, &run_wf("y")).await.unwrap();

    fake.inject(FaultRule::new(
        None,
        "/workflow-events/",
        Fault::StreamError {
            after_frames: 1,
            grpc_code: 14,
            message: "etcd leader changed".into(),
        },
    ));
    let items: Vec<_> = c
        .watch_workflows(NS, &selector(), None)
        .await
        .unwrap()
        .collect()
        .await;
    assert_eq!(items.len(), 2, "{items:?}");
    assert!(items[0].is_ok());
    match &items[1] {
        Err(ArgoError::Stream {
            grpc_code: Some(14),
            message,
        }) => assert!(message.contains("etcd")),
        other => panic!("{other:?}"),
    }

    fake.inject(FaultRule::new(
        None,
        "/workflow-events/",
        Fault::Eof { after_frames: 2 },
    ));
    let items: Vec<_> = c
        .watch_workflows_as(NS, &selector(), None, StreamFormat::Sse)
        .await
        .unwrap()
        .collect()
        .await;
    assert_eq!(items.len(), 2);
    assert!(
        items.iter().all(Result::is_ok),
        "EOF ends the stream cleanly: re-list and re-watch"
    );

    // a too-old resourceVersion: 410 mid-stream
    let fake2 = FakeArgo::start(FakeConfig {
        history: 1,
        ..fast_fake()
    })
    .await
    .unwrap();
    let c2 = client_for(&fake2, |_| {});
    for r in ["p", "q", "r"] {
        c2.create_workflow(NS, &run_wf(r)).await.unwrap();
    }
    let mut w = c2
        .watch_workflows(NS, &selector(), Some("1"))
        .await
        .unwrap();
    let e = w.next().await.unwrap().unwrap_err();
    assert!(e.to_string().contains("too old resource version"), "{e}");

    // nothing at all (keep-alives off): idle timeout
    let c = client_for(&fake, |cfg| {
        cfg.stream_idle_timeout = Duration::from_millis(300)
    });
    let mut w = c
        .watch_workflows(NS, &build::runner_selector("nobody"), None)
        .await
        .unwrap();
    let e = w.next().await.unwrap().unwrap_err();
    assert!(matches!(e, ArgoError::Timeout { .. }), "{e:?}");
}

#[tokio::test(start_paused = true)]
async fn stop_and_terminate_map_to_stopped() {
    let fake = FakeArgo::start(FakeConfig::default()).await.unwrap();
    let c = client_for(&fake, |_| {});
    let a = run_wf("s1");
    c.create_workflow(NS, &a).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        map_workflow(&c.get_workflow(NS, a.name()).await.unwrap()).state,
        PipelineState::Running
    );
    let stopped = c
        .stop_workflow(NS, a.name(), Some("killed from the UI"))
        .await
        .unwrap();
    let st = map_workflow(&stopped);
    assert_eq!(st.state, PipelineState::Stopped);
    assert!(st.message.unwrap().contains("killed from the UI"));
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(
        map_workflow(&c.get_workflow(NS, a.name()).await.unwrap()).state,
        PipelineState::Stopped,
        "stays stopped"
    );
    let b = run_wf("s2");
    c.create_workflow(NS, &b).await.unwrap();
    let t = c.terminate_workflow(NS, b.name()).await.unwrap();
    assert_eq!(t.spec.shutdown.as_deref(), Some("Terminate"));
    assert_eq!(map_workflow(&t).state, PipelineState::Stopped);
    // stopping a finished workflow is an error the caller can branch on
    let e = c.stop_workflow(NS, b.name(), None).await.unwrap_err();
    assert!(matches!(e, ArgoError::Invalid { .. }), "{e:?}");
    assert!(
        c.stop_workflow(NS, "om-nope", None)
            .await
            .unwrap_err()
            .is_not_found()
    );
}

#[tokio::test]
async fn logs_ndjson_and_sse_paged_for_the_control_plane() {
    let fake = FakeArgo::start(FakeConfig::default()).await.unwrap();
    let c = client_for(&fake, |_| {});
    let wf = run_wf("l1");
    c.create_workflow(NS, &wf).await.unwrap();
    let lines: Vec<String> = (0..500)
        .map(|i| format!("2026-11-29 10:00:{:02} INFO line {i}", i % 60))
        .collect();
    fake.set_logs(NS, wf.name(), lines.clone());
    for format in [StreamFormat::Ndjson, StreamFormat::Sse] {
        let s = c
            .workflow_logs_as(NS, wf.name(), &LogOptions::default(), format)
            .await
            .unwrap();
        let text = collect_log_text(s, 10 << 20).await.unwrap();
        assert_eq!(text.lines().count(), 500, "{format:?}");
        assert_eq!(text.lines().last(), lines.last().map(String::as_str));
        let p = page_logs("metadata", &text, None, 4096);
        assert_eq!(p.task_key, "ingestion_task");
        assert!(p.total > 1 && p.after == Some(1));
    }
    let req = fake
        .requests()
        .into_iter()
        .find(|r| r.path.ends_with("/log"))
        .unwrap();
    assert!(
        req.query.contains("logOptions.container=main"),
        "{}",
        req.query
    );
    // mid-stream error on logs
    fake.inject(FaultRule::new(
        None,
        "/log",
        Fault::StreamError {
            after_frames: 10,
            grpc_code: 2,
            message: "pod deleted".into(),
        },
    ));
    let s = c
        .workflow_logs(NS, wf.name(), &LogOptions::default())
        .await
        .unwrap();
    let e = collect_log_text(s, 1 << 20).await.unwrap_err();
    assert!(e.to_string().contains("pod deleted"), "{e}");
    // bounded collection
    let s = c
        .workflow_logs(NS, wf.name(), &LogOptions::default())
        .await
        .unwrap();
    let t = collect_log_text(s, 1000).await.unwrap();
    assert!(t.len() < 1100 && t.ends_with("[log truncated by the runner]\n"));
    assert!(
        c.workflow_logs(NS, "om-missing", &LogOptions::default())
            .await
            .err()
            .unwrap()
            .is_not_found()
    );
}

#[tokio::test]
async fn follow_logs_end_when_the_workflow_ends() {
    let fake = FakeArgo::start(fast_fake()).await.unwrap();
    let c = client_for(&fake, |_| {});
    let wf = run_wf("f1");
    c.create_workflow(NS, &wf).await.unwrap();
    let s = c
        .workflow_logs(
            NS,
            wf.name(),
            &LogOptions {
                follow: true,
                ..LogOptions::default()
            },
        )
        .await
        .unwrap();
    let text = tokio::time::timeout(Duration::from_secs(10), collect_log_text(s, 1 << 20))
        .await
        .expect("the stream ends with the workflow")
        .unwrap();
    assert_eq!(text.lines().count(), 3);
    let wf_now = c.get_workflow(NS, wf.name()).await.unwrap();
    assert_eq!(wf_now.phase(), Some("Succeeded"), "followed until the end");
}

#[tokio::test]
async fn throttling_and_unavailability_are_retried_with_backoff() {
    let fake = FakeArgo::start(FakeConfig::default()).await.unwrap();
    let c = client_for(&fake, |_| {});
    fake.inject(
        FaultRule::new(
            Some(runner_argo::fake::HttpMethod::POST),
            "/api/v1/workflows/",
            Fault::status(429),
        )
        .times(2),
    );
    c.create_workflow(NS, &run_wf("r1")).await.unwrap();
    assert_eq!(fake.count("POST", "/api/v1/workflows/"), 3);

    fake.inject(FaultRule::new(None, "/api/v1/version", Fault::status(503)).times(10));
    let e = c.version().await.unwrap_err();
    match &e {
        ArgoError::Unavailable {
            status: 503,
            attempts: 4,
            ..
        } => {}
        other => panic!("{other:?}"),
    }
    fake.clear_faults();
    fake.inject(FaultRule::new(None, "/api/v1/version", Fault::status(500)));
    c.version().await.unwrap();

    // Retry-After is honoured (capped by max_backoff)
    fake.inject(FaultRule::new(
        None,
        "/api/v1/version",
        Fault::Status {
            status: 429,
            grpc_code: 8,
            message: "slow down".into(),
            retry_after: Some(1),
        },
    ));
    let slow = client_for(&fake, |cfg| cfg.retry.max_backoff = Duration::from_secs(2));
    let t0 = std::time::Instant::now();
    slow.version().await.unwrap();
    assert!(
        t0.elapsed() >= Duration::from_millis(900),
        "{:?}",
        t0.elapsed()
    );

    // a not-retryable error is not retried
    let before = fake.request_count();
    assert!(
        c.get_workflow(NS, "om-nope")
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert_eq!(fake.request_count() - before, 1);

    // create retried after a 503 that happened AFTER the server stored it: idempotent create
    let wf = run_wf("r2");
    c.create_workflow(NS, &wf).await.unwrap();
    let (w, fresh) = c
        .create_workflow_idempotent(NS, &wf, build::LABEL_RUN_ID)
        .await
        .unwrap();
    assert!(!fresh && w.name() == wf.name());
}

#[tokio::test]
async fn auth_errors_name_the_setting_and_token_files_rotate() {
    let fake = FakeArgo::start(FakeConfig {
        token: Some("good-token".into()),
        forbidden_namespaces: vec!["locked".into()],
        ..FakeConfig::default()
    })
    .await
    .unwrap();
    let none = client_for(&fake, |_| {});
    let e = none.version().await.unwrap_err();
    assert!(matches!(e, ArgoError::Unauthorized { .. }));
    assert!(e.to_string().contains("ARGO_TOKEN"), "{e}");

    let good = client_for(&fake, |cfg| {
        cfg.token = TokenSource::Static("good-token".into())
    });
    good.version().await.unwrap();
    let e = good.list_workflows("locked", "").await.unwrap_err();
    assert!(matches!(e, ArgoError::Forbidden { .. }));
    assert!(
        e.to_string().contains("RBAC") && e.to_string().contains("workflows.argoproj.io"),
        "{e}"
    );
    assert!(
        !format!("{e} {e:?} {good:?}").contains("good-token"),
        "the token never shows"
    );

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token");
    std::fs::write(&path, "expired\n").unwrap();
    let file = client_for(&fake, |cfg| cfg.token = TokenSource::File(path.clone()));
    assert!(matches!(
        file.version().await.unwrap_err(),
        ArgoError::Unauthorized { .. }
    ));
    std::fs::write(&path, "good-token\n").unwrap();
    file.version().await.unwrap();
    let auths: Vec<_> = fake
        .requests()
        .into_iter()
        .filter_map(|r| r.authorization)
        .collect();
    assert!(
        auths.contains(&"Bearer good-token".to_owned())
            && auths.contains(&"Bearer expired".to_owned())
    );
}

#[tokio::test]
async fn transport_errors_name_the_setting() {
    // connection refused
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let c = ArgoClient::new(ArgoClientConfig {
        endpoint: format!("http://127.0.0.1:{port}"),
        retry: RetryPolicy {
            max_attempts: 2,
            initial_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(5),
        },
        ..ArgoClientConfig::default()
    })
    .unwrap();
    let e = c.version().await.unwrap_err();
    assert!(matches!(e, ArgoError::Connect { .. }), "{e:?}");
    assert!(
        e.to_string().contains("PIPELINE_SERVICE_CLIENT_ENDPOINT"),
        "{e}"
    );

    // https to a plain-HTTP server: the TLS handshake fails
    let fake = FakeArgo::start(FakeConfig::default()).await.unwrap();
    let c = ArgoClient::new(ArgoClientConfig {
        endpoint: fake.url().replace("http://", "https://"),
        retry: RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        },
        ..ArgoClientConfig::default()
    })
    .unwrap();
    let e = c.version().await.unwrap_err();
    assert!(matches!(e, ArgoError::Tls { .. }), "{e:?}");
    assert!(
        e.to_string().contains("ARGO_SERVER_CERTIFICATE_PATH"),
        "{e}"
    );

    // a slow server: timeout
    let c = client_for(&fake, |cfg| {
        cfg.request_timeout = Duration::from_millis(200);
        cfg.retry.max_attempts = 1;
    });
    fake.inject(FaultRule::new(
        None,
        "/api/v1/version",
        Fault::Delay(Duration::from_secs(3)),
    ));
    let e = c.version().await.unwrap_err();
    assert!(matches!(e, ArgoError::Timeout { .. }), "{e:?}");

    // a proxy page instead of JSON
    fake.inject(FaultRule::new(None, "/api/v1/version", Fault::Garbage));
    let e = c.version().await.unwrap_err();
    assert!(matches!(e, ArgoError::Decode { .. }), "{e:?}");
}

#[tokio::test]
async fn cron_workflows_create_update_suspend_resume_delete() {
    let fake = FakeArgo::start(FakeConfig::default()).await.unwrap();
    let c = client_for(&fake, |_| {});
    let bc = full_config();
    let built = build_cron_workflow(
        &bc,
        &fixture("pipeline_metadata.json"),
        Some(&fixture("service_mysql.json")),
    )
    .unwrap()
    .unwrap();
    let cw = built.cron_workflow;
    let name = cw.metadata.name.clone().unwrap();
    let (created, fresh) = c.apply_cron_workflow(NS, &cw).await.unwrap();
    assert!(fresh && created.metadata.resource_version.is_some());
    assert!(fake.rejected().is_empty(), "{:?}", fake.rejected());
    assert!(
        c.create_cron_workflow(NS, &cw)
            .await
            .unwrap_err()
            .is_already_exists()
    );

    // redeploy with a new schedule: read, update with resourceVersion
    let mut p = fixture("pipeline_metadata.json");
    p["airflowConfig"]["scheduleInterval"] = json!("@hourly");
    let cw2 = build_cron_workflow(&bc, &p, Some(&fixture("service_mysql.json")))
        .unwrap()
        .unwrap()
        .cron_workflow;
    let (updated, fresh) = c.apply_cron_workflow(NS, &cw2).await.unwrap();
    assert!(!fresh);
    assert_eq!(updated.spec.schedules, vec!["0 * * * *".to_owned()]);
    // a stale resourceVersion is a Conflict
    let e = c.update_cron_workflow(NS, &created).await.unwrap_err();
    assert!(matches!(e, ArgoError::Conflict { .. }), "{e:?}");
    let mut no_rv = cw2.clone();
    no_rv.metadata.resource_version = None;
    assert!(matches!(
        c.update_cron_workflow(NS, &no_rv).await.unwrap_err(),
        ArgoError::Config(_)
    ));

    let s = c.suspend_cron_workflow(NS, &name).await.unwrap();
    assert_eq!(s.spec.suspend, Some(true));
    let r = c.resume_cron_workflow(NS, &name).await.unwrap();
    assert_eq!(r.spec.suspend, Some(false));
    let got: CronWorkflow = c.get_cron_workflow(NS, &name).await.unwrap();
    assert_eq!(got.spec.suspend, Some(false));
    assert_eq!(
        c.list_cron_workflows(NS, &selector())
            .await
            .unwrap()
            .items
            .len(),
        1
    );

    // a scheduled run carries the pipeline's labels, so the one watch sees it
    let run_name = fake.trigger_cron(NS, &name).unwrap();
    let runs = c
        .list_workflows(
            NS,
            &build::pipeline_selector("runner-eu-1", "mysql_prod.mysql_prod_metadata_Ingestion"),
        )
        .await
        .unwrap();
    assert_eq!(runs.items.len(), 1);
    assert_eq!(runs.items[0].name(), run_name);
    let st = map_workflow(&runs.items[0]);
    assert_eq!(
        st.run_id, runs.items[0].metadata.uid,
        "scheduled runs are identified by the workflow uid"
    );

    // every body sent: no `config` inline (SECRETS_DELIVERY=runner), only secretKeyRef
    let bodies = fake.bodies();
    assert!(bodies.len() >= 6, "{}", bodies.len());
    for (what, b) in &bodies {
        let text = b.to_string();
        assert!(
            !text.contains("openMetadataServerConfig") && !text.contains("secret:/"),
            "{what}"
        );
    }
    c.delete_cron_workflow(NS, &name).await.unwrap();
    assert!(
        c.get_cron_workflow(NS, &name)
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert!(
        c.suspend_cron_workflow(NS, &name)
            .await
            .unwrap_err()
            .is_not_found()
    );
}

#[tokio::test]
async fn the_fake_rejects_bodies_argo_would_reject() {
    let fake = FakeArgo::start(FakeConfig::default()).await.unwrap();
    if !fake.validating() {
        eprintln!("SKIPPED: swagger.json absent (set ARGO_SPECS_DIR); the fake is not validating");
        return;
    }
    let c = client_for(&fake, |_| {});
    let bc = full_config();
    let mut cw = build_cron_workflow(
        &bc,
        &fixture("pipeline_metadata.json"),
        Some(&fixture("service_mysql.json")),
    )
    .unwrap()
    .unwrap()
    .cron_workflow;
    cw.spec.extra.insert("schedule".into(), json!("0 0 * * *"));
    let e = c.create_cron_workflow(NS, &cw).await.unwrap_err();
    assert!(matches!(e, ArgoError::Invalid { .. }), "{e:?}");
    assert!(e.to_string().contains("schedule"), "{e}");
    let mut wf = run_wf("bad");
    wf.spec.extra.insert("activeDeadline".into(), json!(5));
    wf.spec.templates[0].name = "ingestion_task".into();
    let e = c.create_workflow(NS, &wf).await.unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("activeDeadline: unknown field") && msg.contains("entrypoint"),
        "{msg}"
    );
    let long = Workflow {
        metadata: runner_argo::model::ObjectMeta {
            name: Some("a".repeat(64)),
            ..Default::default()
        },
        ..run_wf("x")
    };
    assert!(
        c.create_workflow(NS, &long)
            .await
            .unwrap_err()
            .to_string()
            .contains("63")
    );
    assert_eq!(fake.rejected().len(), 3);
    assert!(fake.workflows().is_empty() && fake.cron_workflows().is_empty());
}

#[tokio::test(start_paused = true)]
async fn image_pull_failures_are_reported_with_the_hint() {
    let mut bc = full_config();
    bc.image = "openmetadata/ingestion:does-not-exist".into();
    let fake = FakeArgo::start(FakeConfig {
        unpullable_images: vec![bc.image.clone()],
        ..FakeConfig::default()
    })
    .await
    .unwrap();
    let c = client_for(&fake, |_| {});
    let wf = build_run_workflow(
        &bc,
        &RunRequest {
            pipeline: &fixture("pipeline_metadata.json"),
            service: Some(&fixture("service_mysql.json")),
            run_id: "img",
            overrides: None,
        },
    )
    .unwrap()
    .workflow;
    c.create_workflow(NS, &wf).await.unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let st = map_workflow(&c.get_workflow(NS, wf.name()).await.unwrap());
    assert!(st.image_pull_failure);
    assert!(!st.state.is_terminal());
    assert!(
        st.message
            .unwrap()
            .contains("check INGESTION_IMAGE name and tag")
    );
}

#[tokio::test(start_paused = true)]
async fn unfinished_workflows_are_found_after_a_restart() {
    let fake = FakeArgo::start(FakeConfig::default()).await.unwrap();
    let c = client_for(&fake, |_| {});
    let done = run_wf("done");
    c.create_workflow(NS, &done).await.unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    fake.set_plan(
        NS,
        run_wf("live").name(),
        vec![PhaseStep::new(Duration::ZERO, "Running")],
    );
    c.create_workflow(NS, &run_wf("live")).await.unwrap();
    let open = c
        .list_workflows(NS, &build::unfinished_selector("runner-eu-1"))
        .await
        .unwrap();
    let ids: Vec<_> = open
        .items
        .iter()
        .map(|w| map_workflow(w).run_id.unwrap())
        .collect();
    assert_eq!(ids, vec!["live".to_owned()]);
}

#[tokio::test]
async fn informer_relists_and_rewatches_through_eof_and_errors() {
    use runner_argo::{InformerConfig, InformerEvent, informer};
    let fake = FakeArgo::start(FakeConfig {
        keepalive: Duration::from_millis(100),
        ..fast_fake()
    })
    .await
    .unwrap();
    let c = client_for(&fake, |cfg| {
        cfg.stream_idle_timeout = Duration::from_secs(5)
    });
    // a run that exists before the informer starts (runner restart) ...
    fake.set_plan(
        NS,
        run_wf("before").name(),
        vec![PhaseStep::new(Duration::ZERO, "Running")],
    );
    c.create_workflow(NS, &run_wf("before")).await.unwrap();
    // ... and a broken watch: EOF after one event, then an error after one event
    fake.inject(FaultRule::new(
        None,
        "/workflow-events/",
        Fault::Eof { after_frames: 1 },
    ));
    fake.inject(FaultRule::new(
        None,
        "/workflow-events/",
        Fault::StreamError {
            after_frames: 1,
            grpc_code: 14,
            message: "unavailable".into(),
        },
    ));
    let cfg = InformerConfig {
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(100),
    };
    let mut inf = Box::pin(informer(c.clone(), NS, &selector(), cfg));
    let first = inf.next().await.unwrap();
    match &first {
        InformerEvent::Resync(items) => {
            assert_eq!(items.len(), 1);
            assert_eq!(map_workflow(&items[0]).run_id.as_deref(), Some("before"));
        }
        other => panic!("{other:?}"),
    }
    c.create_workflow(NS, &run_wf("after")).await.unwrap();
    let mut interruptions = 0;
    let mut resyncs = 1;
    let mut final_state = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while final_state.is_none() {
        let ev = tokio::time::timeout_at(deadline, inf.next())
            .await
            .expect("in time")
            .unwrap();
        match ev {
            InformerEvent::Interrupted { .. } => interruptions += 1,
            InformerEvent::Resync(items) => {
                resyncs += 1;
                for w in items {
                    let s = map_workflow(&w);
                    if s.run_id.as_deref() == Some("after") && s.state.is_terminal() {
                        final_state = Some(s.state);
                    }
                }
            }
            InformerEvent::Applied(w) => {
                let s = map_workflow(&w);
                if s.run_id.as_deref() == Some("after") && s.state.is_terminal() {
                    final_state = Some(s.state);
                }
            }
            InformerEvent::Deleted(_) => {}
        }
    }
    assert_eq!(final_state, Some(PipelineState::Success));
    assert!(
        interruptions >= 2,
        "EOF and the error were both seen: {interruptions}"
    );
    assert!(resyncs >= 2, "an error leads to a re-list: {resyncs}");
    assert!(fake.count("GET", "/workflow-events/") >= 3);
    // still one watch at a time: a few lists, no per-run GETs
    assert_eq!(fake.count("GET", "/api/v1/workflows/ingestion/"), 0);
}

#[tokio::test(start_paused = true)]
async fn kill_stops_then_terminates_after_the_grace_period() {
    let fake = FakeArgo::start(FakeConfig {
        stop_takes: Duration::from_secs(20),
        phase_plan: vec![PhaseStep::new(Duration::ZERO, "Running")],
        ..FakeConfig::default()
    })
    .await
    .unwrap();
    let c = client_for(&fake, |_| {});
    // the exit handler finishes within the grace period: no terminate
    let a = run_wf("k1");
    c.create_workflow(NS, &a).await.unwrap();
    let (w, terminated) = c
        .stop_then_terminate(
            NS,
            a.name(),
            Some("kill"),
            Duration::from_secs(60),
            Duration::from_secs(1),
        )
        .await
        .unwrap();
    assert!(!terminated);
    assert_eq!(map_workflow(&w).state, PipelineState::Stopped);
    assert_eq!(w.spec.shutdown.as_deref(), Some("Stop"));
    // it does not: terminate after the grace period
    let b = run_wf("k2");
    c.create_workflow(NS, &b).await.unwrap();
    let (w, terminated) = c
        .stop_then_terminate(
            NS,
            b.name(),
            None,
            Duration::from_secs(5),
            Duration::from_secs(1),
        )
        .await
        .unwrap();
    assert!(terminated);
    assert_eq!(w.spec.shutdown.as_deref(), Some("Terminate"));
    assert_eq!(map_workflow(&w).state, PipelineState::Stopped);
    assert_eq!(fake.count("PUT", "/terminate"), 1);
    // already finished: returned as is
    let (w2, t2) = c
        .stop_then_terminate(
            NS,
            b.name(),
            None,
            Duration::from_secs(5),
            Duration::from_secs(1),
        )
        .await
        .unwrap();
    assert!(!t2 && w2.phase() == Some("Failed"));
}

#[tokio::test]
async fn informer_request_rate_does_not_grow_with_the_number_of_runs() {
    use runner_argo::{InformerConfig, InformerEvent, informer};
    let mut counts = Vec::new();
    for n in [10usize, 200] {
        let fake = FakeArgo::start(FakeConfig {
            keepalive: Duration::from_millis(100),
            phase_plan: vec![PhaseStep::new(Duration::ZERO, "Running")],
            ..fast_fake()
        })
        .await
        .unwrap();
        let c = client_for(&fake, |cfg| {
            cfg.stream_idle_timeout = Duration::from_secs(2)
        });
        for i in 0..n {
            c.create_workflow(NS, &run_wf(&format!("n{i}")))
                .await
                .unwrap();
        }
        fake.reset_requests();
        let mut inf = Box::pin(informer(
            c.clone(),
            NS,
            &selector(),
            InformerConfig::default(),
        ));
        match inf.next().await.unwrap() {
            InformerEvent::Resync(items) => assert_eq!(items.len(), n),
            other => panic!("{other:?}"),
        }
        // track them for a while (keep-alives only)
        let idle = tokio::time::timeout(Duration::from_millis(1500), inf.next()).await;
        assert!(idle.is_err(), "nothing happens: {idle:?}");
        counts.push(fake.request_count());
    }
    assert_eq!(
        counts,
        vec![2, 2],
        "one list and one watch, whatever the number of runs"
    );
}

/// The watch asks Argo for the parts of each workflow the runner reads (`fields`, as Argo's UI
/// does), and the fake, like Argo Server, leaves the rest (the spec) out of every frame.
#[tokio::test]
async fn watch_asks_only_for_the_fields_it_reads() {
    let fake = FakeArgo::start(FakeConfig::default()).await.unwrap();
    let c = client_for(&fake, |_| {});
    let wf = run_wf("run-f");
    c.create_workflow(NS, &wf).await.unwrap();
    let mut watch = c.watch_workflows(NS, &selector(), None).await.unwrap();
    let ev = tokio::time::timeout(Duration::from_secs(10), watch.next())
        .await
        .expect("an event")
        .expect("a frame")
        .unwrap();
    let obj = ev.object.expect("object");
    assert_eq!(obj.metadata.name.as_deref(), Some(wf.name()));
    assert_eq!(map_workflow(&obj).run_id.as_deref(), Some("run-f"));
    let asked = fake
        .requests()
        .into_iter()
        .find(|r| r.path.starts_with("/api/v1/workflow-events/"))
        .expect("the watch request");
    assert!(
        asked.query.contains("fields=result.type"),
        "watch query: {}",
        asked.query
    );

    // The same request by hand: the frame keeps metadata, labels and status, not the spec.
    let url = format!(
        "{}/api/v1/workflow-events/{NS}?listOptions.labelSelector={}&fields={}",
        fake.url(),
        selector(),
        runner_argo::client::watch_fields()
    );
    let raw = raw_get(&url, Some(b"{\"result\"")).await;
    let at = find(&raw, b"{\"result\"").expect("a result frame");
    let line = &raw[at..at + raw[at..].iter().position(|b| *b == b'\n').unwrap()];
    let frame: serde_json::Value = serde_json::from_slice(line).unwrap();
    let o = &frame["result"]["object"];
    assert_eq!(frame["result"]["type"], "ADDED");
    assert_eq!(o["metadata"]["name"], wf.name());
    assert!(o["metadata"]["labels"].is_object(), "{frame}");
    assert!(o["status"].is_object(), "{frame}");
    assert!(o["spec"].get("templates").is_none(), "{frame}");
    assert!(o["spec"].get("entrypoint").is_none(), "{frame}");
    let full = serde_json::to_vec(&fake.workflows()[0]).unwrap();
    assert!(
        line.len() * 2 < full.len(),
        "{} bytes per event with fields vs {} for the whole workflow",
        line.len(),
        full.len()
    );
}

/// `fields` on a list keeps the listed paths of every item.
#[tokio::test]
async fn list_honours_fields_per_item() {
    let fake = FakeArgo::start(FakeConfig::default()).await.unwrap();
    let c = client_for(&fake, |_| {});
    for id in ["run-a", "run-b"] {
        c.create_workflow(NS, &run_wf(id)).await.unwrap();
    }
    let url = format!(
        "{}/api/v1/workflows/{NS}?fields=metadata.resourceVersion,items.metadata.name",
        fake.url()
    );
    let raw = raw_get(&url, None).await;
    let at = find(&raw, b"\r\n\r\n").expect("headers end") + 4;
    let list: serde_json::Value = serde_json::from_slice(&raw[at..]).unwrap();
    let items = list["items"].as_array().expect("items");
    assert_eq!(items.len(), 2);
    for it in items {
        assert_eq!(it.as_object().unwrap().len(), 1, "{it}");
        assert!(it["metadata"]["name"].is_string(), "{it}");
    }
    assert!(list["metadata"]["resourceVersion"].is_string(), "{list}");

    // The client's own list asks for metadata, spec.shutdown and status only.
    let listed = c.list_workflows(NS, &selector()).await.unwrap();
    assert_eq!(listed.items.len(), 2);
    let asked = fake
        .requests()
        .into_iter()
        .rfind(|r| r.path == format!("/api/v1/workflows/{NS}"))
        .expect("the list request");
    assert!(
        asked.query.contains("fields=metadata.resourceVersion"),
        "{}",
        asked.query
    );
    for wf in &listed.items {
        assert!(wf.spec.templates.is_empty(), "no spec: {:?}", wf.spec);
        assert!(map_workflow(wf).run_id.is_some(), "labels kept");
        assert!(wf.metadata.uid.is_some(), "metadata kept");
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A plain HTTP/1.0 GET to the fake (one request, no client features in the way): the raw
/// answer, read to its end, or until `until` and the end of that line.
async fn raw_get(url: &str, until: Option<&[u8]>) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").expect("an http URL");
    let (host, path) = rest.split_at(rest.find('/').expect("a path"));
    let mut s = tokio::net::TcpStream::connect(host).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
            .await
            .expect("an answer in time")
            .unwrap();
        out.extend_from_slice(&buf[..n]);
        let done = match until {
            Some(u) => find(&out, u).is_some_and(|at| out[at..].contains(&b'\n')),
            None => false,
        };
        if n == 0 || done {
            return out;
        }
    }
}
