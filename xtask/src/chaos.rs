//! `cargo xtask chaos [--runs M] [--seed S] [--no-build] [SCENARIO...]`: the fault harness.
//!
//! Each scenario runs M times and prints `M runs, L lost, D doubled, S stuck`, counted from what
//! the mock control plane stored and what the executor holds:
//!
//! - **lost**: a run request was accepted (a 200 reply with its run id) and the control plane
//!   never got a final status, although the executor finished the run (or never had it);
//! - **doubled**: the run's program / Workflow was started twice, one request id got two
//!   different runs, or the control plane applied a status transition twice (the same run and
//!   state under two sequence numbers of one runner instance, or one (instance, seq) stored
//!   twice);
//! - **stuck**: no final status at the control plane within the deadline and the executor has
//!   not finished the run either.
//!
//! Scenarios (all by default): `drop`, `restart`, `executor`, `kill`, `storm`, `slow`. `kill`
//! and `slow` run the release `ingestion-runner` (`EXECUTOR_TYPE=argo`) against the in-process
//! fake Argo, the others run the runner library in this process. The exit status is non-zero
//! when any count is not zero. Figures and commands: docs/reliability.md.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use runner_argo::ArgoClientConfig;
use runner_argo::build::{BuildConfig, LABEL_RUN_ID, SecretsDelivery};
use runner_argo::fake::{FakeArgo, FakeConfig, Fault, FaultRule, HttpMethod, PhaseStep};
use runner_core::backoff::BackoffConfig;
use runner_core::config::TokenSource;
use runner_core::executor::argo::{ArgoExecutor, ArgoSettings};
use runner_core::executor::local::{LocalConfig, LocalExecutor};
use runner_core::executor::{Executor, StatusSink};
use runner_core::testkit::{DropPoint, MockControlPlane, MockOptions};
use runner_core::{AuthToken, Outbox, Preparer, Runner, RunnerConfig, ServerUrl};
use runner_protocol::{
    IngestionPipeline, OpResult, PipelineState, Request, Response, RunOptions, RunnerEvent,
};
use serde_json::{Value, json};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::util;

const TOKEN: &str = "chaos-token";
/// A run with no final status this long after it was accepted is stuck (or lost).
const DEADLINE: Duration = Duration::from_secs(45);

struct Scenario {
    name: &'static str,
    what: &'static str,
    default_runs: usize,
}

const SCENARIOS: [Scenario; 6] = [
    Scenario {
        name: "drop",
        what: "the control plane drops the connection mid-handshake, mid-request, mid-event (before or after storing it) or at a random moment",
        default_runs: 60,
    },
    Scenario {
        name: "restart",
        what: "the control plane restarts on the same port and replays old request ids",
        default_runs: 40,
    },
    Scenario {
        name: "executor",
        what: "the fake Argo answers 500 / 429 / 503, times out, ends, breaks and stalls its watch streams",
        default_runs: 40,
    },
    Scenario {
        name: "kill",
        what: "the release runner is SIGKILLed mid-request, after the reply or mid-run, and restarted",
        default_runs: 10,
    },
    Scenario {
        name: "storm",
        what: "1,000 runners reconnect at once after a 30 s outage of the control plane",
        default_runs: 1000,
    },
    Scenario {
        name: "slow",
        what: "the control plane stops reading for 30 s while the runner's runs change state",
        default_runs: 1000,
    },
];

/// What one scenario counted.
#[derive(Debug, Default)]
struct Tally {
    runs: usize,
    lost: Vec<String>,
    doubled: Vec<String>,
    stuck: Vec<String>,
    /// Facts worth printing (retries, reconnects, figures).
    notes: Vec<String>,
}

impl Tally {
    fn line(&self, name: &str) -> String {
        format!(
            "{name}: {} runs, {} lost, {} doubled, {} stuck",
            self.runs,
            self.lost.len(),
            self.doubled.len(),
            self.stuck.len()
        )
    }

    fn ok(&self) -> bool {
        self.lost.is_empty() && self.doubled.is_empty() && self.stuck.is_empty()
    }
}

pub fn main(args: &[String]) -> anyhow::Result<()> {
    let mut runs: Option<usize> = None;
    let mut seed: u64 = rand::rng().random();
    let mut names: Vec<String> = Vec::new();
    let mut build = true;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--runs" => runs = Some(it.next().context("--runs N")?.parse()?),
            "--seed" => seed = it.next().context("--seed S")?.parse()?,
            // Use the release runner binary as it is (kill, slow).
            "--no-build" => build = false,
            "-h" | "--help" => {
                println!("cargo xtask chaos [--runs M] [--seed S] [--no-build] [SCENARIO...]");
                for s in &SCENARIOS {
                    println!("  {:9} (M={:4}) {}", s.name, s.default_runs, s.what);
                }
                return Ok(());
            }
            n if SCENARIOS.iter().any(|s| s.name == n) => names.push(n.to_owned()),
            other => bail!(
                "unknown scenario or option `{other}`; scenarios: {}",
                SCENARIOS.map(|s| s.name).join(", ")
            ),
        }
    }
    if names.is_empty() {
        names = SCENARIOS.iter().map(|s| s.name.to_owned()).collect();
    }
    if names.iter().any(|n| n == "kill" || n == "slow") {
        release_runner(build)?;
    }
    let work = util::target_dir().join("chaos");
    std::fs::create_dir_all(&work)?;
    println!(
        "chaos: seed {seed} (repeat with --seed {seed}); {} cores; load average {}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        loadavg()
    );
    let mut lines = Vec::new();
    let mut failed = false;
    for name in &names {
        let s = SCENARIOS
            .iter()
            .find(|s| s.name == name)
            .expect("known scenario");
        let m = runs.unwrap_or(s.default_runs);
        println!("\n== {name} (M={m}): {}", s.what);
        let mut rng = StdRng::seed_from_u64(seed ^ fxhash(name));
        // One runtime per scenario: whatever a scenario leaves running ends with it.
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let started = std::time::Instant::now();
        let tally = rt.block_on(async {
            match s.name {
                "drop" => drop_scenario(m, &mut rng, &work).await,
                "restart" => restart_scenario(m, &mut rng, &work).await,
                "executor" => executor_scenario(m, &mut rng).await,
                "kill" => kill_scenario(m, &mut rng, &work).await,
                "storm" => storm_scenario(m, &mut rng).await,
                "slow" => slow_scenario(m, &work).await,
                _ => unreachable!(),
            }
        });
        rt.shutdown_timeout(Duration::from_secs(5));
        let tally = tally.with_context(|| format!("scenario {name}"))?;
        for n in &tally.notes {
            println!("   {n}");
        }
        for (what, list) in [
            ("lost", &tally.lost),
            ("doubled", &tally.doubled),
            ("stuck", &tally.stuck),
        ] {
            for x in list.iter().take(10) {
                println!("   {what}: {x}");
            }
        }
        let line = tally.line(name);
        println!("   {line}  ({:.0?})", started.elapsed());
        failed |= !tally.ok();
        lines.push(line);
    }
    println!("\nchaos results (seed {seed}):");
    for l in &lines {
        println!("  {l}");
    }
    if failed {
        bail!("a scenario lost, doubled or left stuck a run (see above)");
    }
    Ok(())
}

fn fxhash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// The release runner binary (runner-bin built alone, so it carries no test features).
fn release_runner(build: bool) -> anyhow::Result<PathBuf> {
    let bin = util::target_dir().join("release").join("ingestion-runner");
    if !build {
        if !bin.exists() {
            bail!("--no-build, but {} does not exist", bin.display());
        }
        return Ok(bin);
    }
    println!("== building runner-bin (release)");
    let ok = util::cargo()
        .args(["build", "--release", "--quiet", "-p", "runner-bin"])
        .status()?
        .success();
    if !ok {
        if bin.exists() {
            println!("   the build failed; using the existing {}", bin.display());
        } else {
            bail!("release build of runner-bin failed");
        }
    }
    Ok(bin)
}

// ---------------------------------------------------------------------------------------------
// Counting

/// Final states the control plane stored per run (any runner instance).
fn final_runs(cp: &MockControlPlane) -> HashMap<String, PipelineState> {
    let mut out = HashMap::new();
    for e in cp.events() {
        let RunnerEvent::RunStatus { status, .. } = e.event.event;
        if status.pipeline_state.is_terminal() {
            out.insert(status.run_id, status.pipeline_state);
        }
    }
    out
}

/// (instance, run, state) stored under more than one sequence number: a transition applied
/// twice. Across instances a status may be reported again (a restarted runner re-attaches and
/// reports what it finds); that is a new snapshot of the same state, not counted.
fn doubled_transitions(cp: &MockControlPlane) -> Vec<String> {
    let mut seen: BTreeMap<(String, String, String), u32> = BTreeMap::new();
    for e in cp.events() {
        let RunnerEvent::RunStatus { status, .. } = e.event.event;
        *seen
            .entry((
                e.instance_id,
                status.run_id,
                status.pipeline_state.as_str().to_owned(),
            ))
            .or_default() += 1;
    }
    seen.into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|((i, r, s), n)| format!("run {r}: `{s}` applied {n} times by instance {i}"))
        .collect()
}

/// Waits until every run in `runs` has a final status at the control plane, or the deadline.
async fn wait_final(cp: &MockControlPlane, runs: &[String], deadline: Duration) -> Vec<String> {
    let until = Instant::now() + deadline;
    loop {
        let done = final_runs(cp);
        let missing: Vec<String> = runs
            .iter()
            .filter(|r| !done.contains_key(*r))
            .cloned()
            .collect();
        if missing.is_empty() || Instant::now() >= until {
            return missing;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn check_dedup(cp: &MockControlPlane, t: &mut Tally) {
    t.doubled.extend(doubled_transitions(cp));
    if cp.applied_twice() > 0 {
        t.doubled.push(format!(
            "{} events stored twice under the same (instance, seq)",
            cp.applied_twice()
        ));
    }
}

/// Sends `request` under `id` until a reply comes back (across drops and restarts), always under
/// the same id. `None` after `deadline`.
async fn request_until_answered(
    cp: &MockControlPlane,
    id: &str,
    request: &Request,
    deadline: Duration,
) -> Option<Response> {
    let until = Instant::now() + deadline;
    loop {
        match cp.request_as(Some(id), request.clone()).await {
            Ok(r) => return Some(r),
            Err(_) if Instant::now() < until => tokio::time::sleep(Duration::from_millis(20)).await,
            Err(_) => return None,
        }
    }
}

fn run_id_of(r: &Response) -> Option<String> {
    match r {
        Response::Result(OpResult::PipelineResponse(p)) if p.code == 200 => p.run_id.clone(),
        _ => None,
    }
}

fn pipeline(name: &str) -> IngestionPipeline {
    serde_json::from_value(json!({
        "id": "7a3b6a2e-0000-4000-8000-000000000001",
        "name": name,
        "fullyQualifiedName": format!("mysql_prod.{name}"),
        "pipelineType": "metadata",
        "sourceConfig": {"config": {"type": "DatabaseMetadata"}},
        "airflowConfig": {},
        "enabled": true,
        "openMetadataServerConnection": {"hostPort": "http://openmetadata:8585/api", "authProvider": "openmetadata"}
    }))
    .expect("a valid pipeline")
}

fn run_request(name: &str, run_id: Option<&str>) -> Request {
    Request::RunPipeline {
        pipeline: Box::new(pipeline(name)),
        service: Some(json!({"name": "mysql_prod", "serviceType": "Mysql",
            "connection": {"config": {"type": "Mysql", "hostPort": "db:3306"}}})),
        options: RunOptions {
            run_id: run_id.map(str::to_owned),
            config_override: None,
        },
    }
}

// ---------------------------------------------------------------------------------------------
// An in-process runner (the library, as runner-bin composes it)

struct InProcess {
    cp: MockControlPlane,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    /// Where the local executor's program records each start and end (`local` only).
    marker: PathBuf,
}

/// The stand-in ingestion program: `start <run>` and `end <run>` lines in the marker file.
fn script(marker: &Path, sleep: f64) -> String {
    format!(
        r#"echo "start $pipelineRunId" >> {m}; sleep {sleep}; echo "end $pipelineRunId" >> {m}"#,
        m = marker.display()
    )
}

fn marker_count(marker: &Path, what: &str, run_id: &str) -> usize {
    let line = format!("{what} {run_id}");
    std::fs::read_to_string(marker)
        .map(|s| s.lines().filter(|l| *l == line).count())
        .unwrap_or(0)
}

fn runner_config(cp: &MockControlPlane, agent: &str) -> anyhow::Result<RunnerConfig> {
    let mut config = RunnerConfig::new(
        agent,
        ServerUrl::parse(&cp.url(), false)?,
        TokenSource::Static(AuthToken::new(TOKEN)),
    );
    // Scaled down from 5 s / 300 s so that a scenario with dozens of drops ends in seconds;
    // the storm scenario uses the defaults.
    config.backoff = BackoffConfig {
        base: Duration::from_millis(100),
        max: Duration::from_millis(500),
        auth_retry: Duration::from_secs(60),
    };
    config.drain_grace = Duration::from_secs(5);
    Ok(config)
}

fn spawn_runner(
    config: RunnerConfig,
    executor: Arc<dyn Executor>,
    outbox: Arc<Outbox>,
    preparer: Arc<Preparer>,
) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    let runner = Runner::new(config, executor, outbox, preparer);
    let shutdown = CancellationToken::new();
    let s = shutdown.clone();
    let task = tokio::spawn(async move {
        let _ = runner.run(s).await;
    });
    (shutdown, task)
}

async fn local_runner(work: &Path, label: &str, sleep: f64) -> anyhow::Result<InProcess> {
    let cp = MockControlPlane::start(MockOptions {
        token: TOKEN.into(),
        ..MockOptions::default()
    })
    .await?;
    let marker = work.join(format!("{label}-runs.txt"));
    let _ = std::fs::remove_file(&marker);
    let outbox = Arc::new(Outbox::new(10_000));
    let preparer = Arc::new(Preparer::default());
    let local = LocalConfig {
        command: vec!["sh".into(), "-c".into(), script(&marker, sleep)],
        automation_command: vec!["sh".into(), "-c".into(), script(&marker, sleep)],
        max_concurrent_runs: 8,
        ..Default::default()
    };
    let executor = Arc::new(LocalExecutor::start(
        local,
        StatusSink::new(outbox.clone()),
        preparer.clone(),
    ));
    let (shutdown, task) = spawn_runner(
        runner_config(&cp, &format!("chaos-{label}"))?,
        executor,
        outbox,
        preparer,
    );
    cp.wait_connected(Duration::from_secs(20))
        .await
        .map_err(anyhow::Error::msg)?;
    Ok(InProcess {
        cp,
        shutdown,
        task,
        marker,
    })
}

impl InProcess {
    async fn stop(self) {
        self.shutdown.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(15), self.task).await;
    }

    /// Lost or stuck: no final status at the control plane; the marker says whether the
    /// program ended.
    fn classify_missing(&self, missing: Vec<String>, t: &mut Tally) {
        for run in missing {
            if marker_count(&self.marker, "end", &run) > 0 {
                t.lost.push(format!(
                    "run {run} ended but its final status never arrived"
                ));
            } else {
                t.stuck.push(format!("run {run} never ended"));
            }
        }
    }

    fn check_starts(&self, runs: &[String], t: &mut Tally) {
        for run in runs {
            let n = marker_count(&self.marker, "start", run);
            if n > 1 {
                t.doubled.push(format!("run {run} started {n} times"));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// drop

async fn drop_scenario(m: usize, rng: &mut StdRng, work: &Path) -> anyhow::Result<Tally> {
    let r = local_runner(work, "drop", 0.2).await?;
    let mut t = Tally::default();
    let mut runs = Vec::new();
    let mut by_point: BTreeMap<String, usize> = BTreeMap::new();
    for i in 0..m {
        let run_id = format!("drop-{i}");
        // Every other iteration the control plane "forgets" to say what it stored in `welcome`:
        // the runner then replays what it stored but did not acknowledge, and the control plane
        // has to recognise the repeats by their sequence numbers.
        r.cp.set_omit_acked_through(i % 2 == 1);
        // Four fixed points and a drop at a random moment of the run.
        let choice = rng.random_range(0..=DropPoint::ALL.len());
        let request = run_request("orders", Some(&run_id));
        let id = format!("drop-req-{i}");
        let reply = if let Some(point) = DropPoint::ALL.get(choice).copied() {
            *by_point.entry(format!("{point:?}")).or_default() += 1;
            r.cp.arm_drop(point);
            if point == DropPoint::Handshake {
                let _ = r.cp.drop_connection().await;
            }
            request_until_answered(&r.cp, &id, &request, DEADLINE).await
        } else {
            *by_point.entry("random moment".into()).or_default() += 1;
            let delay = Duration::from_millis(rng.random_range(0..400));
            let (reply, _) = tokio::join!(
                request_until_answered(&r.cp, &id, &request, DEADLINE),
                async {
                    tokio::time::sleep(delay).await;
                    let _ = r.cp.drop_connection().await;
                }
            );
            reply
        };
        t.runs += 1;
        match reply.as_ref().and_then(run_id_of) {
            Some(got) if got == run_id => runs.push(run_id.clone()),
            Some(other) => t
                .doubled
                .push(format!("request {id} answered with run {other}")),
            None => t.notes.push(format!("request {id} refused: {reply:?}")),
        }
        // One run at a time, so that each drop hits its own run.
        let missing = wait_final(&r.cp, std::slice::from_ref(&run_id), DEADLINE).await;
        r.classify_missing(missing, &mut t);
        // A drop still armed (its point never came) must not fire in the next iteration.
        if r.cp.drops_armed() > 0 {
            t.notes
                .push(format!("iteration {i}: the armed drop did not fire"));
        }
    }
    r.check_starts(&runs, &mut t);
    check_dedup(&r.cp, &mut t);
    t.notes.push(format!(
        "drops by point: {}",
        by_point
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    t.notes.push(format!(
        "sessions: {}; events received {} (of which repeats recognised as duplicates: {})",
        r.cp.connections(),
        r.cp.events_received(),
        r.cp.duplicates()
    ));
    r.stop().await;
    Ok(t)
}

// ---------------------------------------------------------------------------------------------
// restart

async fn restart_scenario(m: usize, rng: &mut StdRng, work: &Path) -> anyhow::Result<Tally> {
    let mut r = local_runner(work, "restart", 0.1).await?;
    let mut t = Tally::default();
    // Request id -> (request, the run id of its first reply).
    let mut sent: Vec<(String, Request, Option<String>)> = Vec::new();
    let mut restarts = 0;
    let mut replays = 0;
    let mut i = 0;
    while i < m {
        // A few requests; half without options.runId, so only the reply cache protects them.
        let batch = 4.min(m - i);
        for _ in 0..batch {
            let run_id = (i % 2 == 0).then(|| format!("restart-{i}"));
            let request = run_request("orders", run_id.as_deref());
            let id = format!("restart-req-{i}");
            // The last request of a batch goes out just before the control plane dies.
            let last = sent.len() % 4 == 3 || i + 1 == m;
            if last {
                r.cp.arm_drop(DropPoint::AfterRequest);
            }
            let reply = r.cp.request_as(Some(&id), request.clone()).await.ok();
            sent.push((id, request, reply.as_ref().and_then(run_id_of)));
            t.runs += 1;
            i += 1;
        }
        // Restart on the same port, on top of the stored state.
        let before = r.cp.connections();
        r.cp = r.cp.restart().await?;
        restarts += 1;
        r.cp.wait_connections(before + 1, Duration::from_secs(20))
            .await
            .map_err(anyhow::Error::msg)?;
        // Replay: every request without a reply, and a random sample of old ids.
        let mut replay: Vec<usize> = (0..sent.len()).filter(|k| sent[*k].2.is_none()).collect();
        for _ in 0..4 {
            replay.push(rng.random_range(0..sent.len()));
        }
        for k in replay {
            let (id, request, first) = sent[k].clone();
            replays += 1;
            let got = request_until_answered(&r.cp, &id, &request, DEADLINE)
                .await
                .as_ref()
                .and_then(run_id_of);
            match (first, got) {
                (_, None) => t.notes.push(format!("replay of {id} got no run")),
                (None, Some(g)) => sent[k].2 = Some(g),
                (Some(f), Some(g)) if f != g => t.doubled.push(format!(
                    "request {id} answered with run {f}, then with run {g}"
                )),
                _ => {}
            }
        }
    }
    let runs: Vec<String> = sent.iter().filter_map(|s| s.2.clone()).collect();
    let missing = wait_final(&r.cp, &runs, DEADLINE).await;
    r.classify_missing(missing, &mut t);
    r.check_starts(&runs, &mut t);
    let starts = std::fs::read_to_string(&r.marker)
        .map(|s| s.lines().filter(|l| l.starts_with("start ")).count())
        .unwrap_or(0);
    if starts > sent.len() {
        t.doubled.push(format!(
            "{starts} program starts for {} request ids",
            sent.len()
        ));
    }
    if runs.len() < sent.len() {
        t.lost.push(format!(
            "{} of {} requests never got a run id",
            sent.len() - runs.len(),
            sent.len()
        ));
    }
    check_dedup(&r.cp, &mut t);
    t.notes.push(format!(
        "{restarts} restarts of the control plane; {replays} request ids replayed; {starts} program starts for {} request ids",
        sent.len()
    ));
    r.stop().await;
    Ok(t)
}

// ---------------------------------------------------------------------------------------------
// executor

fn fast_plan() -> FakeConfig {
    FakeConfig {
        phase_plan: vec![
            PhaseStep::new(Duration::ZERO, "Pending"),
            PhaseStep::new(Duration::from_millis(100), "Running"),
            PhaseStep::new(Duration::from_millis(400), "Succeeded"),
        ],
        tick: Duration::from_millis(20),
        keepalive: Duration::from_millis(500),
        ..Default::default()
    }
}

fn workflows_of(fake: &FakeArgo, run_id: &str) -> usize {
    fake.workflows()
        .iter()
        .filter(|w| w["metadata"]["labels"][LABEL_RUN_ID].as_str() == Some(run_id))
        .count()
}

fn workflow_phase(fake: &FakeArgo, run_id: &str) -> Option<String> {
    fake.workflows()
        .iter()
        .find(|w| w["metadata"]["labels"][LABEL_RUN_ID].as_str() == Some(run_id))
        .and_then(|w| w["status"]["phase"].as_str().map(str::to_owned))
}

fn classify_argo(fake: &FakeArgo, missing: Vec<String>, t: &mut Tally) {
    for run in missing {
        match workflow_phase(fake, &run) {
            Some(p) if matches!(p.as_str(), "Succeeded" | "Failed" | "Error") => t.lost.push(
                format!("run {run}: Workflow {p} but its final status never arrived"),
            ),
            Some(p) => t.stuck.push(format!("run {run}: Workflow still {p}")),
            None => t
                .lost
                .push(format!("run {run}: accepted, but no Workflow exists")),
        }
    }
}

async fn executor_scenario(m: usize, rng: &mut StdRng) -> anyhow::Result<Tally> {
    let fake = FakeArgo::start(fast_plan()).await?;
    let cp = MockControlPlane::start(MockOptions {
        token: TOKEN.into(),
        ..MockOptions::default()
    })
    .await?;
    let outbox = Arc::new(Outbox::new(10_000));
    let preparer = Arc::new(Preparer::default());
    let build = BuildConfig {
        runner_id: "chaos-executor".into(),
        image: "openmetadata/ingestion:1.9.0".into(),
        namespace: "ingestion".into(),
        secrets_delivery: SecretsDelivery::Pod,
        ..BuildConfig::default()
    };
    let client = ArgoClientConfig {
        endpoint: fake.url(),
        // Scaled from 30 s / 60 s so that timeouts happen within the scenario.
        request_timeout: Duration::from_millis(500),
        stream_idle_timeout: Duration::from_secs(2),
        ..Default::default()
    };
    let executor = Arc::new(
        ArgoExecutor::start(
            ArgoSettings::new(client, build),
            StatusSink::new(outbox.clone()),
            preparer.clone(),
            None,
        )
        .map_err(|e| anyhow::anyhow!("{e}"))?,
    );
    let (shutdown, task) = spawn_runner(
        runner_config(&cp, "chaos-executor")?,
        executor,
        outbox,
        preparer,
    );
    cp.wait_connected(Duration::from_secs(20))
        .await
        .map_err(anyhow::Error::msg)?;
    let post = || Some(HttpMethod::POST);
    let get = || Some(HttpMethod::GET);
    let mut t = Tally::default();
    let mut runs = Vec::new();
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    let mut refusals = 0;
    for i in 0..m {
        let run_id = format!("exec-{i}");
        // A fault on this run's submission.
        let (kind, fault, times) = match rng.random_range(0..5) {
            0 => (
                "500 x1-4 (absorbed by the client's retries)",
                Fault::status(500),
                rng.random_range(1..=4),
            ),
            1 => (
                "429 + Retry-After: 1",
                Fault::Status {
                    status: 429,
                    grpc_code: 8,
                    message: "slow down".into(),
                    retry_after: Some(1),
                },
                1,
            ),
            2 => (
                "create slower than the 500 ms client timeout",
                Fault::Delay(Duration::from_millis(rng.random_range(600..1200))),
                1,
            ),
            3 => (
                "503 x6 (beyond the client's 5 attempts: the request fails, retried under a new id)",
                Fault::status(503),
                6,
            ),
            _ => ("none on the create", Fault::status(500), 0),
        };
        *kinds.entry(kind).or_default() += 1;
        if times > 0 {
            fake.inject(FaultRule::new(post(), "/api/v1/workflows/ingestion", fault).times(times));
        }
        // Every third run, the watch breaks too: the next watch gets a fault, and the open one
        // is ended (EOF) so that the informer re-watches now.
        if i % 3 == 0 {
            let (kind, fault) = match rng.random_range(0..4) {
                0 => (
                    "watch: EOF",
                    Fault::Eof {
                        after_frames: rng.random_range(0..3),
                    },
                ),
                1 => (
                    "watch: stalls (idle timeout)",
                    Fault::Stall {
                        after_frames: rng.random_range(0..3),
                    },
                ),
                2 => (
                    "watch: error frame",
                    Fault::StreamError {
                        after_frames: rng.random_range(0..3),
                        grpc_code: 13,
                        message: "injected".into(),
                    },
                ),
                _ => ("list: 500 x2 before the re-list", Fault::status(500)),
            };
            *kinds.entry(kind).or_default() += 1;
            if kind.starts_with("list") {
                fake.inject(FaultRule::new(get(), "/api/v1/workflows/ingestion", fault).times(2));
                fake.inject(FaultRule::new(
                    get(),
                    "/api/v1/workflow-events/",
                    Fault::StreamError {
                        after_frames: 0,
                        grpc_code: 13,
                        message: "injected".into(),
                    },
                ));
            } else {
                fake.inject(FaultRule::new(get(), "/api/v1/workflow-events/", fault));
            }
            fake.cut_streams();
        }
        t.runs += 1;
        let request = run_request(&format!("faulty{i}"), Some(&run_id));
        let mut accepted = None;
        for attempt in 1..=4 {
            let id = format!("exec-req-{i}-{attempt}");
            match cp.request_as(Some(&id), request.clone()).await {
                Ok(Response::Error(e)) if e.retryable => {
                    refusals += 1;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Ok(r) => {
                    accepted = run_id_of(&r);
                    if accepted.is_none() {
                        t.notes.push(format!("run {run_id} refused: {r:?}"));
                    }
                    break;
                }
                Err(e) => t.notes.push(format!("request {id}: {e}")),
            }
        }
        match accepted {
            Some(got) if got == run_id => runs.push(run_id.clone()),
            Some(got) => t.doubled.push(format!("run {run_id} answered as {got}")),
            None => t.notes.push(format!("run {run_id} never accepted")),
        }
    }
    fake.clear_faults();
    let missing = wait_final(&cp, &runs, DEADLINE).await;
    classify_argo(&fake, missing, &mut t);
    for run in &runs {
        let n = workflows_of(&fake, run);
        if n > 1 {
            t.doubled.push(format!("run {run}: {n} Workflows"));
        }
    }
    check_dedup(&cp, &mut t);
    t.notes.push(format!(
        "faults: {}",
        kinds
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join("; ")
    ));
    t.notes.push(format!(
        "{refusals} retryable error replies (each retried under a new request id); {} Argo requests; {} Workflows for {} accepted runs",
        fake.request_count(),
        fake.workflows().len(),
        runs.len()
    ));
    shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(15), task).await;
    Ok(t)
}

// ---------------------------------------------------------------------------------------------
// The release runner against the fake Argo (kill, slow)

fn release_env(
    server_url: &str,
    argo_url: &str,
    agent: &str,
    health: &str,
) -> Vec<(&'static str, String)> {
    vec![
        ("SERVER_URL", server_url.to_owned()),
        ("AUTH_TOKEN", TOKEN.to_owned()),
        ("AGENT_ID", agent.to_owned()),
        ("EXECUTOR_TYPE", "argo".to_owned()),
        ("PIPELINE_SERVICE_CLIENT_ENDPOINT", argo_url.to_owned()),
        ("INGESTION_IMAGE", "openmetadata/ingestion:1.9.0".to_owned()),
        ("INGESTION_NAMESPACE", "ingestion".to_owned()),
        ("SECRETS_MANAGER", "env".to_owned()),
        ("SECRETS_DELIVERY", "pod".to_owned()),
        ("MAX_CONCURRENT_REQUESTS", "256".to_owned()),
        ("RECONNECT_DELAY_SECONDS", "1".to_owned()),
        ("LOG_LEVEL", "info".to_owned()),
        ("HEALTH_BIND", health.to_owned()),
        ("METRICS_BIND", "off".to_owned()),
    ]
}

struct Child {
    child: tokio::process::Child,
    pid: u32,
}

fn spawn_release(env: &[(&'static str, String)], log: &Path) -> anyhow::Result<Child> {
    let bin = util::target_dir().join("release").join("ingestion-runner");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    let mut cmd = tokio::process::Command::new(&bin);
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true)
        .arg("run");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let pid = child.id().context("pid")?;
    Ok(Child { child, pid })
}

impl Child {
    async fn sigkill(mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = self.child.wait().await;
    }

    async fn sigterm(mut self) -> Option<std::process::ExitStatus> {
        util::sigterm(self.pid);
        match tokio::time::timeout(Duration::from_secs(20), self.child.wait()).await {
            Ok(s) => s.ok(),
            Err(_) => {
                let _ = self.child.kill().await;
                None
            }
        }
    }
}

async fn kill_scenario(m: usize, rng: &mut StdRng, work: &Path) -> anyhow::Result<Tally> {
    // Runs take 3 s: Pending, Running after 1 s, Succeeded after 3 s.
    let fake = FakeArgo::start(FakeConfig::default()).await?;
    let cp = MockControlPlane::start(MockOptions {
        token: TOKEN.into(),
        ..MockOptions::default()
    })
    .await?;
    let log = work.join("kill-runner.log");
    let _ = std::fs::remove_file(&log);
    let env = release_env(&cp.url(), &fake.url(), "chaos-kill", "off");
    let mut child = spawn_release(&env, &log)?;
    cp.wait_connected(Duration::from_secs(30))
        .await
        .map_err(|e| anyhow::anyhow!("the runner did not connect: {e}; see {}", log.display()))?;
    let mut t = Tally::default();
    let mut runs = Vec::new();
    let mut points: BTreeMap<&str, usize> = BTreeMap::new();
    let mut reattached = 0;
    for i in 0..m {
        let run_id = format!("kill-{i}");
        let id = format!("kill-req-{i}");
        let request = run_request(&format!("victim{i}"), Some(&run_id));
        let point = ["mid-request", "after the reply", "mid-run (running)"][i % 3];
        *points.entry(point).or_default() += 1;
        t.runs += 1;
        let reply = match point {
            "mid-request" => {
                // The kill comes 0-30 ms after the request left, whether or not it was answered.
                let pause = Duration::from_millis(rng.random_range(0..30));
                let sent = cp.request_as(Some(&id), request.clone());
                tokio::pin!(sent);
                tokio::select! {
                    r = &mut sent => r.ok(),
                    _ = tokio::time::sleep(pause) => None,
                }
            }
            _ => {
                let reply = cp.request_as(Some(&id), request.clone()).await.ok();
                if point.starts_with("mid-run") {
                    let seen = wait_state(
                        &cp,
                        &run_id,
                        PipelineState::Running,
                        Duration::from_secs(10),
                    )
                    .await;
                    if !seen {
                        t.notes
                            .push(format!("run {run_id}: no running status before the kill"));
                    }
                }
                reply
            }
        };
        let sessions_before = cp.connections();
        child.sigkill().await;
        // Down for a while: the run may finish in Argo meanwhile.
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..3000))).await;
        child = spawn_release(&env, &log)?;
        cp.wait_connections(sessions_before + 1, Duration::from_secs(30))
            .await
            .map_err(|e| anyhow::anyhow!("the restarted runner did not connect: {e}"))?;
        // The control plane had no reply: it sends the request again under the same id. The
        // new process has no reply cache; the run id keeps it from running twice.
        let reply = match reply {
            Some(r) => Some(r),
            None => request_until_answered(&cp, &id, &request, DEADLINE).await,
        };
        match reply.as_ref().and_then(run_id_of) {
            Some(got) if got == run_id => runs.push(run_id.clone()),
            other => t.notes.push(format!("run {run_id}: reply {other:?}")),
        }
        let missing = wait_final(&cp, std::slice::from_ref(&run_id), DEADLINE).await;
        if missing.is_empty() {
            // Reported by the new process?
            let current = cp
                .wait_connected(Duration::from_secs(1))
                .await
                .ok()
                .map(|h| h.instance_id);
            let by_new = cp.events().iter().any(|e| {
                let RunnerEvent::RunStatus { status, .. } = &e.event.event;
                Some(&e.instance_id) == current.as_ref()
                    && status.run_id == run_id
                    && status.pipeline_state.is_terminal()
            });
            if by_new {
                reattached += 1;
            }
        }
        classify_argo(&fake, missing, &mut t);
        let n = workflows_of(&fake, &run_id);
        if n > 1 {
            t.doubled.push(format!("run {run_id}: {n} Workflows"));
        }
    }
    check_dedup(&cp, &mut t);
    let exit = child.sigterm().await;
    t.notes.push(format!(
        "kill points: {}",
        points
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    t.notes.push(format!(
        "{m} SIGKILLs and restarts; final status reported by the restarted process for {reattached} of {} runs; {} Workflows in Argo; last runner exited with {exit:?} after SIGTERM; log {}",
        runs.len(),
        fake.workflows().len(),
        log.display()
    ));
    Ok(t)
}

/// Waits until the control plane stored `state` for `run_id`.
async fn wait_state(
    cp: &MockControlPlane,
    run_id: &str,
    state: PipelineState,
    timeout: Duration,
) -> bool {
    cp.wait_event(timeout, |e| {
        let RunnerEvent::RunStatus { status, .. } = &e.event;
        status.run_id == run_id && status.pipeline_state == state
    })
    .await
    .is_ok()
}

/// `GET /status` of the runner's health server: the `events_pending` field.
async fn events_pending(health: &str) -> Option<u64> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(health).await.ok()?;
    s.write_all(b"GET /status HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .await
        .ok()?;
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf))
        .await
        .ok()?
        .ok()?;
    let text = String::from_utf8_lossy(&buf);
    let body = text.split_once("\r\n\r\n")?.1;
    let v: Value = serde_json::from_str(body).ok()?;
    v["events_pending"].as_u64()
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

async fn slow_scenario(m: usize, work: &Path) -> anyhow::Result<Tally> {
    const STALL: Duration = Duration::from_secs(30);
    // Every run changes state twice during the stall: Running after 5 s, Succeeded after 10 s.
    let fake = FakeArgo::start(FakeConfig {
        phase_plan: vec![
            PhaseStep::new(Duration::ZERO, "Pending"),
            PhaseStep::new(Duration::from_secs(5), "Running"),
            PhaseStep::new(Duration::from_secs(10), "Succeeded"),
        ],
        ..FakeConfig::default()
    })
    .await?;
    let cp = MockControlPlane::start(MockOptions {
        token: TOKEN.into(),
        // A small receive window: the runner's writes block soon after the mock stops reading.
        recv_buffer: Some(4096),
        ..MockOptions::default()
    })
    .await?;
    let health = format!("127.0.0.1:{}", free_port()?);
    let log = work.join("slow-runner.log");
    let _ = std::fs::remove_file(&log);
    let env = release_env(&cp.url(), &fake.url(), "chaos-slow", &health);
    let child = spawn_release(&env, &log)?;
    cp.wait_connected(Duration::from_secs(30))
        .await
        .map_err(|e| anyhow::anyhow!("the runner did not connect: {e}; see {}", log.display()))?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle = util::rss_kib(child.pid)?;
    let mut t = Tally::default();
    // M runs, 32 requests in flight.
    use futures_util::StreamExt;
    let replies: Vec<(String, Option<String>)> = futures_util::stream::iter(0..m)
        .map(|i| {
            let cp = &cp;
            async move {
                let run_id = format!("slow-{i}");
                let r = cp
                    .request_as(
                        Some(&format!("slow-req-{i}")),
                        run_request(&format!("slow{i}"), Some(&run_id)),
                    )
                    .await
                    .ok();
                (run_id, r.as_ref().and_then(run_id_of))
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    t.runs = m;
    let runs: Vec<String> = replies
        .iter()
        .filter(|(want, got)| got.as_ref() == Some(want))
        .map(|(w, _)| w.clone())
        .collect();
    if runs.len() < m {
        t.notes
            .push(format!("{} run requests not accepted", m - runs.len()));
    }
    let after_submit = util::rss_kib(child.pid)?;
    let sessions_before = cp.connections();
    let received_before = cp.events_received();
    cp.set_reading(false);
    let stall_start = Instant::now();
    let mut peak_rss = 0;
    let mut peak_pending = 0;
    let mut samples = Vec::new();
    while stall_start.elapsed() < STALL {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let rss = util::rss_kib(child.pid)?;
        let pending = events_pending(&health).await.unwrap_or(0);
        peak_rss = peak_rss.max(rss);
        peak_pending = peak_pending.max(pending);
        samples.push(format!(
            "{:.0}s {} / {pending}",
            stall_start.elapsed().as_secs_f64(),
            mib(rss)
        ));
    }
    let finished_in_argo = fake
        .workflows()
        .iter()
        .filter(|w| w["status"]["phase"] == "Succeeded")
        .count();
    cp.set_reading(true);
    let resumed = Instant::now();
    let missing = wait_final(&cp, &runs, DEADLINE).await;
    let caught_up = resumed.elapsed();
    let until = Instant::now() + Duration::from_secs(20);
    let mut pending_after = events_pending(&health).await;
    while pending_after != Some(0) && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(200)).await;
        pending_after = events_pending(&health).await;
    }
    let after = util::rss_kib(child.pid)?;
    classify_argo(&fake, missing, &mut t);
    for run in &runs {
        let n = workflows_of(&fake, run);
        if n > 1 {
            t.doubled.push(format!("run {run}: {n} Workflows"));
        }
    }
    check_dedup(&cp, &mut t);
    let hwm = std::fs::read_to_string(format!("/proc/{}/status", child.pid))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<u64>().ok())
        })
        .unwrap_or(0);
    let exit = child.sigterm().await;
    t.notes.push(format!(
        "{} runs submitted; the control plane stopped reading for {}s; {finished_in_argo} Workflows finished in Argo meanwhile ({} status changes)",
        runs.len(),
        STALL.as_secs(),
        2 * finished_in_argo
    ));
    t.notes.push(format!(
        "RSS / events pending during the stall: {}",
        samples.join(", ")
    ));
    t.notes.push(format!(
        "RSS: idle {}, after the {} requests {}, peak during the stall {} (events pending at most {peak_pending}, bound: 1 per run), after catching up {}; VmHWM {}",
        mib(idle),
        runs.len(),
        mib(after_submit),
        mib(peak_rss),
        mib(after),
        mib(hwm)
    ));
    t.notes.push(format!(
        "after reading again: every final status stored {:.1?} later; events pending {pending_after:?}; sessions during stall and catch-up: {} new (reconnects); events received before/after the stall: {received_before}/{}",
        caught_up,
        cp.connections() - sessions_before,
        cp.events_received()
    ));
    t.notes.push(format!(
        "runner exited with {exit:?} after SIGTERM; log {}",
        log.display()
    ));
    Ok(t)
}

// ---------------------------------------------------------------------------------------------
// storm

/// An executor with nothing to run: the storm measures the connection loop only.
fn idle_executor(outbox: &Arc<Outbox>, preparer: &Arc<Preparer>) -> Arc<dyn Executor> {
    Arc::new(LocalExecutor::start(
        LocalConfig {
            command: vec!["true".into()],
            automation_command: vec!["true".into()],
            ..Default::default()
        },
        StatusSink::new(outbox.clone()),
        preparer.clone(),
    ))
}

fn bar(n: usize, scale: usize) -> String {
    "#".repeat(n.div_ceil(scale.max(1)))
}

async fn storm_scenario(m: usize, _rng: &mut StdRng) -> anyhow::Result<Tally> {
    const OUTAGE: Duration = Duration::from_secs(30);
    let cp = MockControlPlane::start(MockOptions {
        token: TOKEN.into(),
        ..MockOptions::default()
    })
    .await?;
    let mut handles = Vec::new();
    for i in 0..m {
        let outbox = Arc::new(Outbox::new(100));
        let preparer = Arc::new(Preparer::default());
        let mut config = runner_config(&cp, &format!("storm-{i}"))?;
        // The runner's real defaults: 5 s base, 300 s cap, full jitter.
        config.backoff = BackoffConfig::default();
        let executor = idle_executor(&outbox, &preparer);
        handles.push(spawn_runner(config, executor, outbox, preparer));
    }
    let t_start = Instant::now();
    let until = t_start + Duration::from_secs(120);
    let all_connected = loop {
        let n = cp
            .sessions()
            .iter()
            .map(|s| s.1.clone())
            .collect::<BTreeSet<_>>()
            .len();
        if n >= m {
            break true;
        }
        if Instant::now() > until {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    if !all_connected {
        bail!("only some of {m} runners connected within 120 s");
    }
    let first_connect = t_start.elapsed();
    let instances: BTreeSet<String> = cp.sessions().into_iter().map(|s| s.1).collect();
    // The outage: every session dropped at once, upgrades answered 503 for OUTAGE.
    let down = Instant::now();
    cp.set_outage(true);
    tokio::time::sleep(OUTAGE).await;
    cp.set_outage(false);
    let up = Instant::now();
    let deadline = up + Duration::from_secs(400);
    let mut back: HashMap<String, Instant> = HashMap::new();
    loop {
        for (at, inst) in cp.sessions() {
            if at >= down {
                back.entry(inst).or_insert(at);
            }
        }
        if back.len() >= instances.len() || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut t = Tally {
        runs: m,
        ..Default::default()
    };
    for inst in &instances {
        if !back.contains_key(inst) {
            t.stuck.push(format!("runner {inst} never reconnected"));
        }
    }
    let mut after: Vec<Duration> = back
        .values()
        .map(|at| at.saturating_duration_since(up))
        .collect();
    after.sort();
    // Attempts while the control plane was down (503s), per 5 s.
    let attempts = cp.outage_attempts();
    let mut per5: BTreeMap<u64, usize> = BTreeMap::new();
    let mut per_sec: BTreeMap<u64, usize> = BTreeMap::new();
    for a in &attempts {
        let s = a.saturating_duration_since(down).as_secs();
        *per5.entry(s / 5).or_default() += 1;
        *per_sec.entry(s).or_default() += 1;
    }
    let mut back_per5: BTreeMap<u64, usize> = BTreeMap::new();
    let mut back_per_sec: BTreeMap<u64, usize> = BTreeMap::new();
    for d in &after {
        *back_per5.entry(d.as_secs() / 5).or_default() += 1;
        *back_per_sec.entry(d.as_secs()).or_default() += 1;
    }
    let pct = |p: usize| {
        after
            .get((after.len() * p / 100).min(after.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    t.notes.push(format!(
        "{m} runners (in this process, real sockets, default backoff: 5 s base, 300 s cap, full jitter) connected in {first_connect:.1?}; the control plane then went away for {}s (sessions dropped, upgrades answered 503)",
        OUTAGE.as_secs()
    ));
    t.notes.push(format!(
        "connection attempts during the outage: {} in total, busiest second {}",
        attempts.len(),
        per_sec.values().max().copied().unwrap_or(0)
    ));
    let scale = (m / 100).max(1);
    let mut hist = vec![format!(
        "attempts refused during the outage, per 5 s since it began (# = {scale}):"
    )];
    for (b, n) in &per5 {
        hist.push(format!(
            "  {:>3}-{:<3}s {:>5} {}",
            b * 5,
            b * 5 + 5,
            n,
            bar(*n, scale)
        ));
    }
    hist.push(format!(
        "reconnects, per 5 s since the control plane came back (# = {scale}):"
    ));
    for (b, n) in &back_per5 {
        hist.push(format!(
            "  {:>3}-{:<3}s {:>5} {}",
            b * 5,
            b * 5 + 5,
            n,
            bar(*n, scale)
        ));
    }
    t.notes.extend(hist);
    t.notes.push(format!(
        "reconnected: {} of {m}; after the outage ended: first {:.1?}, p50 {:.1?}, p90 {:.1?}, p99 {:.1?}, last {:.1?}; busiest second {} reconnects",
        after.len(),
        pct(0),
        pct(50),
        pct(90),
        pct(99),
        after.last().copied().unwrap_or_default(),
        back_per_sec.values().max().copied().unwrap_or(0)
    ));
    for (shutdown, _) in &handles {
        shutdown.cancel();
    }
    let stop = Instant::now() + Duration::from_secs(20);
    for (_, task) in handles {
        if tokio::time::timeout_at(stop, task).await.is_err() {
            break;
        }
    }
    Ok(t)
}
