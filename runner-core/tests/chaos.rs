//! Fault scenarios fast enough to be ordinary tests (the long ones, with the release binary,
//! are in `cargo xtask chaos`; see docs/reliability.md). Each checks, from real counting, that
//! no accepted run is lost (every run reaches a final status at the control plane), none is
//! doubled (started twice, or a status transition applied twice), none is stuck.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use runner_argo::ArgoClientConfig;
use runner_argo::build::{LABEL_RUN_ID, SecretsDelivery};
use runner_argo::fake::{FakeArgo, FakeConfig, Fault, FaultRule, HttpMethod, PhaseStep};
use runner_core::backoff::{Backoff, BackoffConfig};
use runner_core::executor::argo::ArgoSettings;
use runner_core::testkit::{DropPoint, MockControlPlane};
use runner_protocol::{PipelineState, Request, Response, RunnerEvent};

/// Sends `request` under `id` until a reply arrives, across dropped connections and restarts,
/// always under the same id (how a control plane makes a retry idempotent).
async fn request_until_answered(cp: &MockControlPlane, id: &str, request: &Request) -> Response {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match cp.request_as(Some(id), request.clone()).await {
            Ok(r) => return r,
            Err(e) => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "no reply to {id}: {e}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

/// Status transitions the control plane applied more than once for the same runner instance:
/// (instance, run, state) stored under two sequence numbers.
fn doubled_transitions(cp: &MockControlPlane) -> Vec<(String, String, PipelineState)> {
    let mut seen: BTreeMap<(String, String, String), u32> = BTreeMap::new();
    let mut doubled = Vec::new();
    for e in cp.events() {
        let RunnerEvent::RunStatus { status, .. } = e.event.event;
        let n = seen
            .entry((
                e.instance_id.clone(),
                status.run_id.clone(),
                status.pipeline_state.as_str().to_owned(),
            ))
            .or_default();
        *n += 1;
        if *n == 2 {
            doubled.push((e.instance_id, status.run_id, status.pipeline_state));
        }
    }
    doubled
}

/// How many times the ingestion program started for `run_id` (the marker file).
fn starts_of(h: &Harness, run_id: &str) -> usize {
    std::fs::read_to_string(h.dir.path("runs.txt"))
        .map(|s| s.lines().filter(|l| *l == run_id).count())
        .unwrap_or(0)
}

#[tokio::test]
async fn connections_dropped_at_every_point_lose_and_double_nothing() {
    let h = start(Setup {
        sleep_secs: 0.2,
        ..Default::default()
    })
    .await;
    h.cp.wait_connected(WAIT).await.unwrap();
    let mut runs = Vec::new();
    for round in 0..2 {
        // Second round: `welcome` without `ackedThrough`, so stored but unacknowledged events
        // come again and must be recognised as duplicates, not applied twice.
        h.cp.set_omit_acked_through(round == 1);
        for point in DropPoint::ALL {
            let run_id = format!("run-{round}-{point:?}");
            h.cp.arm_drop(point);
            if point == DropPoint::Handshake {
                // The next hello is the one dropped.
                h.cp.drop_connection().await.unwrap();
            }
            let request = run_request("orders", Some(&run_id));
            let reply = request_until_answered(&h.cp, &format!("req-{run_id}"), &request).await;
            assert_eq!(run_id_of(&reply), run_id);
            wait_state(&h.cp, &run_id, PipelineState::Success).await;
            assert_eq!(h.cp.drops_armed(), 0, "the drop at {point:?} did not fire");
            runs.push(run_id);
        }
    }
    for point in DropPoint::ALL {
        assert_eq!(h.cp.drops_fired(point), 2, "{point:?}");
    }
    for run_id in &runs {
        assert_eq!(starts_of(&h, run_id), 1, "run {run_id} started twice");
    }
    assert!(h.cp.connections() > 8, "every drop forced a reconnect");
    assert_eq!(h.cp.applied_twice(), 0);
    assert_eq!(doubled_transitions(&h.cp), vec![]);
}

#[tokio::test]
async fn a_restarted_control_plane_replaying_request_ids_runs_nothing_twice() {
    let mut h = start(Setup::default()).await;
    h.cp.wait_connected(WAIT).await.unwrap();
    // No `options.runId`: the runner mints one per execution, so only its reply cache stands
    // between a replayed id and a second run.
    let request = run_request("orders", None);
    let mut first = Vec::new();
    for i in 0..3 {
        let id = format!("req-{i}");
        let r = h.cp.request_as(Some(&id), request.clone()).await;
        first.push(run_id_of(&r.unwrap()));
    }
    for run_id in &first {
        wait_state(&h.cp, run_id, PipelineState::Success).await;
    }
    // The control plane goes down right after sending a fourth request: no reply.
    h.cp.arm_drop(DropPoint::AfterRequest);
    assert!(
        h.cp.request_as(Some("req-3"), request.clone())
            .await
            .is_err()
    );
    let before = h.cp.connections();
    h.cp = h.cp.restart().await.unwrap();
    h.cp.wait_connections(before + 1, WAIT).await.unwrap();
    // Back up, it sends every request it has no reply for, and a few it has, under their ids.
    let mut again = Vec::new();
    for i in 0..4 {
        let r = request_until_answered(&h.cp, &format!("req-{i}"), &request).await;
        again.push(run_id_of(&r));
    }
    assert_eq!(
        again[..3],
        first[..],
        "replays answered from the reply cache"
    );
    wait_state(&h.cp, &again[3], PipelineState::Success).await;
    assert_eq!(starts(&h), 4, "four requests, four runs");
    assert_eq!(h.cp.applied_twice(), 0);
    assert_eq!(doubled_transitions(&h.cp), vec![]);
}

#[tokio::test]
async fn a_control_plane_that_stops_reading_gets_every_event_once_it_reads_again() {
    let h = start(Setup {
        sleep_secs: 0.2,
        ..Default::default()
    })
    .await;
    h.cp.wait_connected(WAIT).await.unwrap();
    let mut runs = Vec::new();
    for i in 0..12 {
        let r = h.cp.request(run_request(&format!("p{i}"), None)).await;
        runs.push(run_id_of(&r.unwrap()));
    }
    h.cp.set_reading(false);
    wait_until("every run finished", || {
        starts(&h) == runs.len() && h.status.get().runs_in_flight == 0
    })
    .await;
    // Nothing is acknowledged now; a newer status of a run replaces its unacknowledged older
    // one, so the outbox holds at most one event per run (3 states each would be 36).
    let pending = h.status.get().events_pending;
    assert!(
        (1..=runs.len()).contains(&pending),
        "{pending} events pending for {} runs",
        runs.len()
    );
    h.cp.set_reading(true);
    for run_id in &runs {
        wait_state(&h.cp, run_id, PipelineState::Success).await;
    }
    wait_until("outbox empty", || h.status.get().events_pending == 0).await;
    assert_eq!(h.cp.applied_twice(), 0);
    assert_eq!(doubled_transitions(&h.cp), vec![]);
}

fn argo_setup(fake: &FakeArgo) -> Setup {
    let url = fake.url();
    let client = ArgoClientConfig {
        endpoint: url,
        request_timeout: Duration::from_millis(500),
        stream_idle_timeout: Duration::from_secs(1),
        ..Default::default()
    };
    let build = argo_build("agent-test", SecretsDelivery::Pod);
    Setup {
        executor: Some(argo_executor(ArgoSettings::new(client, build), None)),
        ..Default::default()
    }
}

/// Workflows the fake Argo holds for `run_id`.
fn workflows_of(fake: &FakeArgo, run_id: &str) -> usize {
    fake.workflows()
        .iter()
        .filter(|w| w["metadata"]["labels"][LABEL_RUN_ID].as_str() == Some(run_id))
        .count()
}

#[tokio::test]
async fn executor_errors_timeouts_and_broken_streams_lose_and_double_nothing() {
    let fake = FakeArgo::start(FakeConfig {
        phase_plan: vec![
            PhaseStep::new(Duration::ZERO, "Pending"),
            PhaseStep::new(Duration::from_millis(100), "Running"),
            PhaseStep::new(Duration::from_millis(400), "Succeeded"),
        ],
        tick: Duration::from_millis(20),
        keepalive: Duration::from_millis(200),
        ..Default::default()
    })
    .await
    .unwrap();
    let post = || Some(HttpMethod::POST);
    let get = || Some(HttpMethod::GET);
    // The informer's first list fails twice; then its watches end with EOF, stall (no frame,
    // no keep-alive), and break with an error frame after one event, in turn.
    fake.inject(FaultRule::new(get(), "/api/v1/workflows/ingestion", Fault::status(500)).times(2));
    for fault in [
        Fault::Eof { after_frames: 0 },
        Fault::Stall { after_frames: 0 },
        Fault::StreamError {
            after_frames: 1,
            grpc_code: 13,
            message: "injected".into(),
        },
        Fault::Stall { after_frames: 2 },
    ] {
        fake.inject(FaultRule::new(get(), "/api/v1/workflow-events/", fault));
    }
    let h = start(argo_setup(&fake)).await;
    h.cp.wait_connected(WAIT).await.unwrap();
    // One fault per run, on its submission.
    let faults: [(Fault, usize); 4] = [
        (Fault::status(500), 2),
        (
            Fault::Status {
                status: 429,
                grpc_code: 8,
                message: "slow down".into(),
                retry_after: Some(1),
            },
            1,
        ),
        // Longer than the client's 500 ms timeout: the create may land after the client gave
        // up, and the retry must find it instead of creating a second workflow.
        (Fault::Delay(Duration::from_millis(700)), 1),
        // More than the client's 5 attempts: the request fails (retryable) and the control
        // plane sends it again under a new id with the same runId.
        (Fault::status(503), 6),
    ];
    for (i, (fault, times)) in faults.into_iter().enumerate() {
        fake.inject(FaultRule::new(post(), "/api/v1/workflows/ingestion", fault).times(times));
        let run_id = format!("run-fault-{i}");
        let request = run_request(&format!("faulty{i}"), Some(&run_id));
        let mut attempt = 0;
        loop {
            attempt += 1;
            let id = format!("req-{i}-{attempt}");
            match h.cp.request_as(Some(&id), request.clone()).await.unwrap() {
                Response::Error(e) if e.retryable && attempt < 4 => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                other => {
                    assert_eq!(run_id_of(&other), run_id);
                    break;
                }
            }
        }
        wait_state(&h.cp, &run_id, PipelineState::Success).await;
        assert_eq!(workflows_of(&fake, &run_id), 1, "run {run_id}");
    }
    assert_eq!(h.cp.applied_twice(), 0);
    assert_eq!(doubled_transitions(&h.cp), vec![]);
}

/// 1,000 runners lose the control plane at once and it is away for 30 s: with the runner's
/// own backoff (full jitter) their attempts spread out instead of arriving together. Pure
/// arithmetic over `Backoff` (no clock); the real-socket version is `cargo xtask chaos storm`.
#[test]
fn reconnects_after_an_outage_are_spread_by_jitter() {
    use rand::SeedableRng;
    let mut rng = rand::rngs::StdRng::seed_from_u64(6);
    let outage = Duration::from_secs(30);
    let mut attempts_per_second: BTreeMap<u64, u32> = BTreeMap::new();
    let mut reconnected_at = Vec::new();
    for _ in 0..1000 {
        let mut backoff = Backoff::new(BackoffConfig::default());
        let mut t = Duration::ZERO;
        loop {
            t += backoff.next_delay(&mut rng);
            *attempts_per_second.entry(t.as_secs()).or_default() += 1;
            if t >= outage {
                reconnected_at.push(t);
                break;
            }
        }
    }
    let busiest = attempts_per_second.values().copied().max().unwrap();
    // Without jitter all 1,000 would hit the same instant at every step.
    assert!(busiest < 400, "{busiest} attempts in the busiest second");
    reconnected_at.sort();
    let first = reconnected_at[0];
    let last = reconnected_at[999];
    assert!(
        last - first > Duration::from_secs(20),
        "{first:?}..{last:?}"
    );
    // Each wait is at most the cap (300 s), so the last runner is back within outage + cap.
    // (Full jitter has a long tail: a runner whose first waits were short reaches the larger
    // ceilings while the control plane is still down; docs/reliability.md has the figures.)
    let cap = BackoffConfig::default().max;
    assert!(last <= outage + cap, "{last:?}");
    let p90 = reconnected_at[900];
    assert!(p90 < outage + Duration::from_secs(60), "p90 {p90:?}");
}

/// docs/protocol.md (7): "`retryable: true` means the same request may succeed later
/// (`busy`, `executor_unavailable`, `timeout`, `shutting_down`); a control plane can retry
/// those with the same request id, after a delay." The runner caches every executed reply for
/// 10 minutes, retryable errors included, so such a retry gets the old error again and the run
/// never starts. Found by `cargo xtask chaos executor`; the fix belongs in `dispatch.rs`
/// (`Dispatcher::execute`: do not keep a `Done` entry for an error reply whose `retryable` is
/// true; remove the `Pending` entry instead, so a retry under the same id executes again).
#[tokio::test]
async fn a_retryable_error_retried_under_the_same_id_is_executed_again() {
    let fake = FakeArgo::start(FakeConfig {
        tick: Duration::from_millis(20),
        ..Default::default()
    })
    .await
    .unwrap();
    let h = start(argo_setup(&fake)).await;
    h.cp.wait_connected(WAIT).await.unwrap();
    // Every attempt of the Argo client (5) gets a 503: the request fails, retryable.
    fake.inject(
        FaultRule::new(
            Some(HttpMethod::POST),
            "/api/v1/workflows/ingestion",
            Fault::status(503),
        )
        .times(5),
    );
    let request = run_request("retried", Some("run-retried"));
    let first = h.cp.request_as(Some("req-retried"), request.clone()).await;
    match first.unwrap() {
        Response::Error(e) => assert!(e.retryable, "{e:?}"),
        other => panic!("expected a retryable error, got {other:?}"),
    }
    // Argo is fine again; the control plane retries as the protocol says: same id, later.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let again = h.cp.request_as(Some("req-retried"), request).await.unwrap();
    assert_eq!(
        run_id_of(&again),
        "run-retried",
        "the retry was answered from the cache"
    );
    assert_eq!(workflows_of(&fake, "run-retried"), 1);
}

/// A control plane that stops reading *and* sending while its socket stays open (a wedged
/// process on a live host): once the runner's writes block on the full socket, the runner
/// must still notice the silence (3 heartbeat intervals) and start a new session, instead of
/// waiting on the write until TCP gives up.
#[tokio::test]
async fn a_wedged_control_plane_is_left_even_when_writes_block() {
    let dir = TempDir::new();
    let marker = dir.path("big.txt");
    let mut setup = Setup {
        mock: runner_core::testkit::MockOptions {
            heartbeat_interval: Duration::from_secs(1),
            recv_buffer: Some(4096),
            ..Default::default()
        },
        ..Default::default()
    };
    // A program with 2 MiB of log: each log page in a reply is 256 KiB.
    let big = format!(
        "echo \"$pipelineRunId\" >> {}; head -c 2097152 /dev/zero | tr '\\0' 'x' | fold -w 100",
        marker.display()
    );
    setup.executor = Some(Box::new(move |sink, preparer| {
        Arc::new(runner_core::executor::local::LocalExecutor::start(
            runner_core::executor::local::LocalConfig {
                command: vec!["sh".into(), "-c".into(), big.clone()],
                automation_command: vec!["sh".into(), "-c".into(), big],
                ..Default::default()
            },
            sink,
            preparer,
        ))
    }));
    let h = start(setup).await;
    h.cp.wait_connected(WAIT).await.unwrap();
    let run_id = run_id_of(
        &h.cp
            .request(run_request("chatty", Some("chatty-1")))
            .await
            .unwrap(),
    );
    wait_state(&h.cp, &run_id, PipelineState::Success).await;
    let before = h.cp.connections();
    // The control plane wedges, then asks for many large log pages: the replies fill the socket.
    h.cp.set_reading(false);
    h.cp.set_silent(true);
    let logs = Request::GetIngestionLogs {
        pipeline: Box::new(pipeline("chatty")),
        run_id: run_id.clone(),
        after: None,
    };
    let asks = async {
        let ids: Vec<String> = (0..24).map(|i| format!("logs-{i}")).collect();
        let pending = ids.iter().map(|id| h.cp.request_as(Some(id), logs.clone()));
        futures_util::future::join_all(pending).await
    };
    let left = async {
        // Not a hang: the runner gives up on the session within about 3-4 intervals of silence.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        while h.status.get().state == runner_core::runner::ConnectionState::Connected {
            if tokio::time::Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        true
    };
    let left = tokio::select! {
        l = left => l,
        _ = asks => false,
    };
    assert!(
        left,
        "the runner stayed on a control plane that neither reads nor sends"
    );
    let why = h.status.get().last_error.unwrap_or_default();
    assert!(why.contains("not reading"), "{why}");
    // The control plane recovers; the runner comes back.
    h.cp.set_reading(true);
    h.cp.set_silent(false);
    h.cp.wait_connections(before + 1, WAIT).await.unwrap();
}
