//! `cargo xtask bench-argo`: the Argo executor measured side by side on this machine, in one run.
//!
//! 1. A burst of 1,000 `runPipeline` requests (distinct pipelines and run ids) sent by a mock
//!    control plane through the release `ingestion-runner run` (`EXECUTOR_TYPE=argo`) into the
//!    in-process fake Argo Server, against posting the same Workflow bodies (built with
//!    `build_run_workflow` from the same settings) straight to a fresh fake Argo with
//!    `ArgoClient::create_workflow`, from the same harness, with the same number in flight.
//!    In 5 rounds (`--rounds N`) after a warm-up, each round isolated from the next (the
//!    median round is reported), first with every process sharing the cores, then with the
//!    runner on a core of its own (see [`Placement`]); then both placements again with
//!    `xtask floor-runner` in the runner's place (the floor, see [`crate::floor`]).
//! 2. Argo API requests the runner makes over a fixed window while it tracks 10, 100 and 1,000
//!    active runs (the fake's phase plan keeps them Running), scaled to per minute.
//! 3. The runner's RSS while it tracks them.
//!
//! `--burst-only` runs only part 1, `--own-core-only` only its own-core rounds, and `--aa`
//! (with either) replaces the path through the runner by a second measurement of the straight
//! path: the ratios it prints are this machine's noise floor. `--floor` (with either) puts
//! `xtask floor-runner` in the runner's place: the least any runner could cost here.
//! `--callgrind` (with `--own-core-only`) runs the runner under callgrind and prints the
//! instructions it executed: a figure to compare two builds by on a machine whose speed moves.
//!
//! Both fakes validate every request body against `shared/specs/argo/swagger.json` when the
//! file is present (the table says whether it was).
//!
//! Runs in release: builds `runner-bin` (alone, so it carries no test features) and `xtask`
//! with `--release`, then re-executes itself from the release build.

use std::collections::{BTreeMap, HashMap};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::StreamExt;
use runner_argo::build::{BuildConfig, RunRequest, build_run_workflow};
use runner_argo::fake::{FakeArgo, FakeConfig, PhaseStep};
use runner_argo::model::Workflow;
use runner_argo::{ArgoClient, ArgoClientConfig};
use runner_core::testkit::{
    MockControlPlane, MockOptions, bench_pipeline, bench_run_id, bench_run_request, bench_service,
};
use runner_protocol::{OpResult, PipelineState, Request, Response, RunnerEvent};
use serde_json::Value;

use crate::util;

/// Requests in the burst.
const BURST: usize = 1_000;
/// Requests in the large burst (scaling).
const LARGE: usize = 10_000;
/// Rounds of the 1,000 burst per placement (each path into fresh fakes and a fresh runner);
/// the median round is reported. 5 unless `--rounds N` says otherwise.
static ROUNDS_N: AtomicUsize = AtomicUsize::new(5);
/// Requests sent before each measured burst, on each path (other pipelines and run ids).
const WARMUP: usize = 64;
/// Requests in flight, on both paths.
const IN_FLIGHT: usize = 32;
/// Window over which the runner's Argo API requests are counted.
/// (30 s: a multiple of the runner's 15 s health check, which calls `GET /api/v1/version`.)
const WINDOW: Duration = Duration::from_secs(30);
/// Quiet time between "every run is Running" and the window.
const SETTLE: Duration = Duration::from_secs(2);
const TOKEN: &str = "bench-argo-token";
const AGENT: &str = runner_core::testkit::BENCH_AGENT_ID;
const NAMESPACE: &str = runner_core::testkit::BENCH_NAMESPACE;
const IMAGE: &str = runner_core::testkit::BENCH_IMAGE;

pub fn main(args: &[String]) -> anyhow::Result<()> {
    if cfg!(debug_assertions) {
        // Two builds, so that the runner binary does not get the fake / testkit features the
        // xtask enables (features unify within one cargo invocation).
        for pkg in ["runner-bin", "xtask"] {
            println!("== building {pkg} (release)");
            let ok = util::cargo()
                .args(["build", "--release", "--quiet", "-p", pkg])
                .status()?
                .success();
            if !ok {
                bail!("release build of {pkg} failed");
            }
        }
        let me = util::target_dir().join("release").join("xtask");
        let status = std::process::Command::new(me)
            .arg("bench-argo")
            .args(args)
            .status()?;
        if !status.success() {
            bail!("bench-argo failed ({status})");
        }
        return Ok(());
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut quick = false;
    let mut args = args.iter();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--burst-only" => quick = true,
            "--own-core-only" => {
                quick = true;
                OWN_CORE_ONLY.store(true, Ordering::Relaxed);
            }
            "--aa" => AA.store(true, Ordering::Relaxed),
            "--floor" => FLOOR.store(true, Ordering::Relaxed),
            "--callgrind" => CALLGRIND.store(true, Ordering::Relaxed),
            "--trace" => TRACE.store(true, Ordering::Relaxed),
            "--rounds" => {
                let n = args
                    .next()
                    .and_then(|n| n.parse::<usize>().ok())
                    .filter(|n| *n > 0)
                    .context(
                        "--rounds takes a number of rounds (at least 1), e.g. `--rounds 15`",
                    )?;
                ROUNDS_N.store(n, Ordering::Relaxed);
            }
            other => bail!(
                "bench-argo takes `--burst-only`, `--own-core-only`, `--rounds N`, `--aa`, `--floor`, `--callgrind` and `--trace` (got `{other}`); see `cargo xtask help`"
            ),
        }
    }
    if AA.load(Ordering::Relaxed) && !quick {
        bail!(
            "--aa measures the noise floor of the burst rounds only: add `--burst-only` or `--own-core-only`"
        );
    }
    if FLOOR.load(Ordering::Relaxed) && !quick {
        bail!(
            "--floor measures the burst rounds only (the floor runner does not track runs): add `--burst-only` or `--own-core-only`"
        );
    }
    if CALLGRIND.load(Ordering::Relaxed) && !OWN_CORE_ONLY.load(Ordering::Relaxed) {
        bail!(
            "--callgrind counts the runner's instructions over own-core rounds only: add `--own-core-only` (and `--rounds 1`: each round takes about 20 s under valgrind)"
        );
    }
    if CALLGRIND.load(Ordering::Relaxed) {
        let valgrind = std::process::Command::new("valgrind")
            .arg("--version")
            .output();
        if !valgrind.is_ok_and(|o| o.status.success()) {
            bail!(
                "--callgrind runs the runner under valgrind, which is not on PATH here: install it (`apt-get install valgrind`)"
            );
        }
        println!(
            "== --callgrind: the runner runs under valgrind (about 30 times slower): every ratio and latency is meaningless; compare the instruction counts of two builds"
        );
    }
    if FLOOR.load(Ordering::Relaxed) {
        println!(
            "== --floor: the \"through\" column is `xtask floor-runner` in the runner's place (decode, post a prebuilt body, reply; no build, watch or events): the least any runner could cost here"
        );
    }
    if AA.load(Ordering::Relaxed) {
        println!(
            "== --aa: the \"through\" column is the straight path measured a second time (runner idle); every ratio is noise, CPU and body checks do not apply"
        );
    }
    rt.block_on(inner(quick))
}

/// `--trace`: print each round's timeline (see [`print_trace`]).
static TRACE: AtomicBool = AtomicBool::new(false);
/// `--own-core-only`: only the rounds with the runner on a core of its own.
static OWN_CORE_ONLY: AtomicBool = AtomicBool::new(false);
/// `--aa`: the benchmark's noise floor. In each round, the path "through the runner" is
/// replaced by a second run of the straight path (a fresh fake Argo, the same warm-up and
/// bodies), so every ratio printed compares the straight path with itself: how far from 1.00x
/// this machine and harness put two measurements of the same thing.
static AA: AtomicBool = AtomicBool::new(false);
/// `--floor`: the runner replaced by [`crate::floor`]'s process, which only decodes each
/// request, posts the Workflow built for it before the burst and answers: the ratios it gives
/// are the least any runner could reach in this harness on this machine.
static FLOOR: AtomicBool = AtomicBool::new(false);
/// `--callgrind`: the runner of each round runs under `valgrind --tool=callgrind`, and the
/// instructions it executed over its life are printed when it stops. The workload of a round
/// is fixed, so the count compares two builds whatever the machine's speed (which moves by more
/// than most changes do); the latencies and ratios of such a round mean nothing.
static CALLGRIND: AtomicBool = AtomicBool::new(false);

/// What runs in the runner's place: the runner, or the floor (`--floor`).
fn in_runners_place() -> &'static str {
    if FLOOR.load(Ordering::Relaxed) {
        "the floor runner"
    } else {
        "runner"
    }
}

fn rounds_n() -> usize {
    ROUNDS_N.load(Ordering::Relaxed)
}

/// The first requests of a burst and its slowest ones, with when the fake stored each
/// workflow, and the longest spells in which no request completed: where a burst's latency
/// goes (for instance the runner answering a batch of requests together, a stall in the
/// middle of the burst, or the harness answering in batches).
fn print_trace(path: &str, burst: &Burst, created: &[Instant]) {
    let start = burst.start;
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let stored: Vec<String> = created
        .iter()
        .filter(|t| **t >= start)
        .take(IN_FLIGHT + 8)
        .map(|t| format!("{:.1}", ms(*t - start)))
        .collect();
    let head: Vec<String> = burst
        .trace
        .iter()
        .take(IN_FLIGHT + 8)
        .map(|(s, d)| format!("{:.1}+{:.1}", ms(*s), ms(*d)))
        .collect();
    // When requests complete: long gaps with nothing completing mean the harness answers in
    // batches (its one thread on CPU 0 handles every ready request before it reads replies).
    let mut done: Vec<Duration> = burst.trace.iter().map(|(s, d)| *s + *d).collect();
    done.sort();
    let gaps = longest(done.windows(2).map(|w| (w[1] - w[0], w[0])), 8);
    let slow = longest(burst.trace.iter().map(|(s, d)| (*d, *s)), 12);
    println!(
        "   trace {path}: first requests, start+latency ms: {}\n   trace {path}: first workflows stored at ms: {}\n   trace {path}: slowest, latency@start ms: {} (burst {:.1} ms)\n   trace {path}: longest gaps with no request completing, gap@after ms: {}",
        head.join(" "),
        stored.join(" "),
        slow,
        ms(burst.wall),
        gaps
    );
}

/// The `n` pairs with the longest first duration, each as `first@second` in milliseconds.
fn longest(pairs: impl Iterator<Item = (Duration, Duration)>, n: usize) -> String {
    let mut pairs: Vec<(Duration, Duration)> = pairs.collect();
    pairs.sort_by_key(|p| std::cmp::Reverse(p.0));
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    pairs
        .iter()
        .take(n)
        .map(|(a, b)| format!("{:.1}@{:.1}", ms(*a), ms(*b)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The runner's environment (and the settings the direct path builds its bodies from).
fn runner_env(server_url: &str, argo_url: &str) -> Vec<(&'static str, String)> {
    vec![
        ("SERVER_URL", server_url.to_owned()),
        ("AUTH_TOKEN", TOKEN.to_owned()),
        ("AGENT_ID", AGENT.to_owned()),
        ("EXECUTOR_TYPE", "argo".to_owned()),
        ("PIPELINE_SERVICE_CLIENT_ENDPOINT", argo_url.to_owned()),
        ("INGESTION_IMAGE", IMAGE.to_owned()),
        ("INGESTION_NAMESPACE", NAMESPACE.to_owned()),
        ("SECRETS_MANAGER", "env".to_owned()),
        ("SECRETS_DELIVERY", "pod".to_owned()),
        // What the `secret:` references of the pipeline and the service resolve to.
        ("RUNNER_SECRET_DEMO_BOT_TOKEN", "bench-jwt".to_owned()),
        (
            "RUNNER_SECRET_MYSQL_PROD_PASSWORD",
            "bench-password".to_owned(),
        ),
        ("MAX_CONCURRENT_REQUESTS", "1000".to_owned()),
        ("LOG_LEVEL", "warn".to_owned()),
        // Loopback, any port: nothing else on this machine gets in the way.
        ("HEALTH_BIND", "127.0.0.1:0".to_owned()),
        ("METRICS_BIND", "127.0.0.1:0".to_owned()),
    ]
}

fn runner_command(env: &[(&'static str, String)], placement: Placement) -> tokio::process::Command {
    runner_command_of("ingestion-runner", &[], env, placement)
}

/// `runner_command` for the release binary `bin` (the runner, or xtask's floor runner), run
/// under the program and arguments `under` (none, or callgrind).
fn runner_command_of(
    bin: &str,
    under: &[String],
    env: &[(&'static str, String)],
    placement: Placement,
) -> tokio::process::Command {
    let mut argv: Vec<std::ffi::OsString> = Vec::new();
    if placement == Placement::OwnCore {
        argv.extend(["taskset", "-c", "1"].map(Into::into));
    }
    argv.extend(under.iter().map(Into::into));
    argv.push(util::target_dir().join("release").join(bin).into());
    let mut cmd = tokio::process::Command::new(&argv[0]);
    cmd.args(&argv[1..]);
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .stdin(Stdio::null())
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// The runner's effective settings (defaults included), from `ingestion-runner config --json`:
/// what the direct path builds its bodies and its client from, so both send the same.
async fn effective_settings() -> anyhow::Result<HashMap<String, String>> {
    let out = runner_command(
        &runner_env("ws://127.0.0.1:9/agent", "http://127.0.0.1:9"),
        Placement::Shared,
    )
    .args(["config", "--json"])
    .output()
    .await?;
    if !out.status.success() {
        bail!(
            "ingestion-runner config failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let list: Vec<Value> = serde_json::from_slice(&out.stdout)?;
    Ok(list
        .iter()
        .filter(|v| v["source"] != "-")
        .filter_map(|v| {
            Some((
                v["name"].as_str()?.to_owned(),
                v["value"].as_str()?.to_owned(),
            ))
        })
        .collect())
}

/// The fake's configuration, the same for both paths: runs go Pending -> Running after 1 s and
/// stay Running (no end), so they remain active for the tracking windows.
fn fake_config() -> FakeConfig {
    FakeConfig {
        phase_plan: vec![
            PhaseStep::new(Duration::ZERO, "Pending"),
            PhaseStep::new(Duration::from_secs(1), "Running"),
        ],
        ..FakeConfig::default()
    }
}

/// The Workflow the runner builds for run `i` (what its Argo executor does).
fn workflow(bc: &BuildConfig, i: usize) -> anyhow::Result<Workflow> {
    let pj = serde_json::to_value(bench_pipeline(i))?;
    let svc = bench_service();
    let id = bench_run_id(i);
    Ok(build_run_workflow(
        bc,
        &RunRequest {
            pipeline: &pj,
            service: Some(&svc),
            run_id: &id,
            overrides: None,
        },
    )?
    .workflow)
}

/// The runner's effective settings, and the build configuration they give: what the straight
/// path (and the floor runner) build their bodies with, as the runner builds its own.
async fn build_settings() -> anyhow::Result<(HashMap<String, String>, BuildConfig)> {
    let env = effective_settings().await?;
    let bc = BuildConfig::from_lookup(|k: &str| env.get(k).cloned())?;
    Ok((env, bc))
}

/// The runner's effective settings and the Workflow of every run of the warm-up and the
/// burst, by run id (what `floor-runner` posts).
pub async fn all_bodies() -> anyhow::Result<(HashMap<String, String>, HashMap<String, Workflow>)> {
    let (env, bc) = build_settings().await?;
    let bodies = (0..BURST + WARMUP)
        .map(|i| Ok((bench_run_id(i), workflow(&bc, i)?)))
        .collect::<anyhow::Result<_>>()?;
    Ok((env, bodies))
}

/// One round of the burst: both paths, fresh fakes and a fresh runner.
struct Round {
    direct: Burst,
    through: Burst,
    pings: Burst,
    /// Harness CPU during the direct burst (client and fake).
    direct_cpu: Duration,
    /// Harness CPU during the burst through the runner (mock control plane and fake).
    harness_cpu: Duration,
    runner_cpu: Duration,
    direct_rejected: usize,
    runner_rejected: usize,
    burst_requests: usize,
    idle_rss: u64,
}

impl Round {
    /// How many times the direct path's throughput the path through the runner lost.
    fn ratio(&self) -> f64 {
        self.direct.throughput() / self.through.throughput()
    }
}

/// The median of `xs` (the upper one of an even count).
fn median_of(xs: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = xs.collect();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

struct Burst {
    n: usize,
    wall: Duration,
    p50: Duration,
    p99: Duration,
    max: Duration,
    failures: usize,
    first_failure: Option<String>,
    /// When the burst started.
    start: Instant,
    /// Each request's start (from the burst's start) and latency, in the order they started.
    trace: Vec<(Duration, Duration)>,
}

impl Burst {
    fn throughput(&self) -> f64 {
        self.n as f64 / self.wall.as_secs_f64()
    }
}

/// One request of a burst: when it started (from the burst's start), its latency, its result.
type Sample = (Duration, Duration, Result<(), String>);

fn burst_of(start: Instant, results: Vec<Sample>) -> Burst {
    let wall = start.elapsed();
    let mut trace: Vec<(Duration, Duration)> = results.iter().map(|r| (r.0, r.1)).collect();
    trace.sort();
    let mut lat: Vec<Duration> = results.iter().map(|r| r.1).collect();
    lat.sort();
    let failures: Vec<&String> = results.iter().filter_map(|r| r.2.as_ref().err()).collect();
    let pct = |p: usize| lat[(lat.len() * p / 100).min(lat.len() - 1)];
    Burst {
        n: lat.len(),
        wall,
        p50: pct(50),
        p99: pct(99),
        max: *lat.last().expect("samples"),
        failures: failures.len(),
        first_failure: failures.first().map(|s| s.to_string()),
        start,
        trace,
    }
}

/// The direct path's client: the runner's effective settings, pointed at `fake`.
fn client_for(fake: &FakeArgo, env: &HashMap<String, String>) -> anyhow::Result<ArgoClient> {
    Ok(ArgoClient::new(ArgoClientConfig::from_lookup(|k| {
        if k == "PIPELINE_SERVICE_CLIENT_ENDPOINT" {
            Some(fake.url())
        } else {
            env.get(k).cloned()
        }
    })?)?)
}

/// Posts `bodies` straight to the fake, `IN_FLIGHT` at a time.
async fn direct_burst(client: &ArgoClient, bodies: &[Workflow]) -> Burst {
    let t0 = Instant::now();
    let results = futures_util::stream::iter(bodies)
        .map(|wf| async move {
            let s = Instant::now();
            let r = client
                .create_workflow(NAMESPACE, wf)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string());
            (s - t0, s.elapsed(), r)
        })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    burst_of(t0, results)
}

/// Sends `requests` through the control plane to the runner, `IN_FLIGHT` at a time.
async fn runner_burst(cp: &MockControlPlane, requests: Vec<Request>) -> Burst {
    let t0 = Instant::now();
    let results = futures_util::stream::iter(requests)
        .map(|req| async move {
            let s = Instant::now();
            let r = match cp.request(req).await {
                Ok(Response::Result(OpResult::PipelineResponse(p))) if p.code == 200 => Ok(()),
                Ok(Response::Result(OpResult::Pong {})) => Ok(()),
                Ok(other) => Err(format!("{other:?}")),
                Err(e) => Err(e),
            };
            (s - t0, s.elapsed(), r)
        })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    burst_of(t0, results)
}

/// Where two JSON values first differ (a JSON pointer and both values).
fn first_diff(a: &Value, b: &Value, at: &str) -> String {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for k in x.keys().chain(y.keys()) {
                match (x.get(k), y.get(k)) {
                    (Some(p), Some(q)) if p == q => {}
                    (Some(p), Some(q)) => return first_diff(p, q, &format!("{at}/{k}")),
                    (p, q) => return format!("{at}/{k}: {p:?} vs {q:?}"),
                }
            }
            format!("{at}: equal")
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                if p != q {
                    return first_diff(p, q, &format!("{at}/{i}"));
                }
            }
            format!("{at}: equal")
        }
        _ => format!("{at}: {a} vs {b}"),
    }
}

/// CPU time of a process's live threads so far, in nanoseconds: the sum of the first field of
/// `/proc/PID/task/*/schedstat`. (`/proc/PID/stat` counts in 10 ms ticks: a 1,000 burst costs
/// the runner about 13 of them, too coarse to compare two builds.)
fn cpu_time(pid: &str) -> anyhow::Result<Duration> {
    let mut ns = 0u64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        // A thread that ended since the listing has no file any more; its time is not counted.
        let Ok(stat) = std::fs::read_to_string(task?.path().join("schedstat")) else {
            continue;
        };
        ns += stat
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok())
            .context("/proc/PID/task/TID/schedstat")?;
    }
    Ok(Duration::from_nanos(ns))
}

/// Peak resident set size (`VmHWM`) of a process, in KiB.
fn hwm_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("no VmHWM in /proc/PID/status")
}

/// How a figure changed from N to 10 N: flat (within 25%), linear (about 10x), or the factor.
fn growth(at_n: f64, at_10n: f64) -> String {
    if at_n <= 0.0 {
        return "-".into();
    }
    let f = at_10n / at_n;
    if (0.8..=1.25).contains(&f) {
        format!("flat ({f:.2}x)")
    } else if (7.5..=12.5).contains(&f) {
        format!("linear ({f:.1}x)")
    } else {
        format!("{f:.2}x")
    }
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// A release runner connected to a fresh mock control plane, with its Argo executor pointed
/// at a fresh fake Argo.
struct Rig {
    fake: FakeArgo,
    cp: MockControlPlane,
    child: tokio::process::Child,
    pid: u32,
    log: std::path::PathBuf,
    /// `--callgrind`: where callgrind writes the runner's counts when it exits.
    callgrind: Option<std::path::PathBuf>,
}

impl Rig {
    async fn start(label: &str, placement: Placement) -> anyhow::Result<Rig> {
        let fake = FakeArgo::start(fake_config()).await?;
        let cp = MockControlPlane::start(MockOptions {
            token: TOKEN.into(),
            ..MockOptions::default()
        })
        .await?;
        let log = util::target_dir().join(format!("bench-argo-runner-{label}.log"));
        let log_file = std::fs::File::create(&log)?;
        let floor = FLOOR.load(Ordering::Relaxed);
        let (bin, arg) = if floor {
            ("xtask", "floor-runner")
        } else {
            ("ingestion-runner", "run")
        };
        let callgrind = CALLGRIND
            .load(Ordering::Relaxed)
            .then(|| util::target_dir().join(format!("bench-argo-runner-{label}.callgrind")));
        let under: Vec<String> = match &callgrind {
            Some(out) => {
                // A count left by an earlier run must not pass for this runner's.
                match std::fs::remove_file(out) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => bail!("removing the old count {}: {e}", out.display()),
                }
                vec![
                    "valgrind".into(),
                    "-q".into(),
                    "--tool=callgrind".into(),
                    format!("--callgrind-out-file={}", out.display()),
                ]
            }
            None => vec![],
        };
        let child = runner_command_of(bin, &under, &runner_env(&cp.url(), &fake.url()), placement)
            .arg(arg)
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .spawn()
            .context("starting target/release/ingestion-runner")?;
        let pid = child.id().context("pid")?;
        cp.wait_connected(Duration::from_secs(30))
            .await
            .map_err(|e| anyhow::anyhow!("the runner did not connect: {e}"))?;
        // The executor's informer: one list, then one watch.
        let deadline = Instant::now() + Duration::from_secs(10);
        while fake.request_count() < 2 && !floor {
            if Instant::now() > deadline {
                bail!(
                    "the runner's Argo executor made {} request(s) in 10 s (expected a list and a watch); see {}",
                    fake.request_count(),
                    log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        Ok(Rig {
            fake,
            cp,
            child,
            pid,
            log,
            callgrind,
        })
    }

    /// Waits until the control plane has stored a `running` status for `n` distinct runs.
    async fn wait_running(&self, n: usize, timeout: Duration) -> anyhow::Result<Duration> {
        let t0 = Instant::now();
        loop {
            let mut latest: HashMap<String, PipelineState> = HashMap::new();
            for e in self.cp.events() {
                let RunnerEvent::RunStatus { status, .. } = e.event.event;
                latest.insert(status.run_id, status.pipeline_state);
            }
            let running = latest
                .values()
                .filter(|s| **s == PipelineState::Running)
                .count();
            if running >= n {
                return Ok(t0.elapsed());
            }
            if t0.elapsed() > timeout {
                bail!("only {running} of {n} runs reported running after {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Argo API requests made by the runner over [`WINDOW`], with their kinds.
    async fn window(&self) -> (usize, BTreeMap<String, usize>) {
        let before = self.fake.request_count();
        tokio::time::sleep(WINDOW).await;
        let requests = self.fake.requests();
        let mut kinds = BTreeMap::new();
        for r in requests.iter().skip(before) {
            *kinds.entry(format!("{} {}", r.method, r.path)).or_insert(0) += 1;
        }
        (requests.len() - before, kinds)
    }

    async fn stop(mut self) -> anyhow::Result<()> {
        util::sigterm(self.pid);
        match tokio::time::timeout(Duration::from_secs(15), self.child.wait()).await {
            Ok(status) => {
                let status = status?;
                if !status.success() {
                    println!(
                        "   runner exited with {status} after SIGTERM (log: {})",
                        self.log.display()
                    );
                }
            }
            Err(_) => {
                println!("   runner did not exit within 15 s of SIGTERM; killing it");
                let _ = self.child.kill().await;
            }
        }
        if let Some(out) = &self.callgrind {
            let counts = std::fs::read_to_string(out).unwrap_or_default();
            match counts
                .lines()
                .find_map(|l| l.strip_prefix("summary: ").or(l.strip_prefix("totals: ")))
            {
                Some(n) => println!(
                    "   runner instructions over its life (callgrind; start, connect, {BURST} pings, {WARMUP} warm-up and {BURST} run requests, stop): {n}"
                ),
                None => println!(
                    "   no instruction count in {} (is valgrind installed?); see {}",
                    out.display(),
                    self.log.display()
                ),
            }
        }
        let warnings = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = warnings.lines().collect();
        if !lines.is_empty() {
            println!(
                "   runner log {} ({} lines), first: {}",
                self.log.display(),
                lines.len(),
                lines[0]
            );
        }
        Ok(())
    }
}

struct Tracking {
    runs: usize,
    requests: usize,
    kinds: BTreeMap<String, usize>,
    rss_kib: u64,
}

impl Tracking {
    fn per_minute(&self) -> f64 {
        self.requests as f64 * 60.0 / WINDOW.as_secs_f64()
    }
}

async fn track(rig: &Rig, runs: usize) -> anyhow::Result<Tracking> {
    let took = rig.wait_running(runs, Duration::from_secs(120)).await?;
    tokio::time::sleep(SETTLE).await;
    println!(
        "   {runs} runs running ({took:.1?} after the last reply); counting Argo requests for {WINDOW:?}"
    );
    let (requests, kinds) = rig.window().await;
    let rss_kib = util::rss_kib(rig.pid)?;
    Ok(Tracking {
        runs,
        requests,
        kinds,
        rss_kib,
    })
}

/// Where the processes run during a round.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Placement {
    /// Every process may use every core (the harness and the runner compete).
    Shared,
    /// The harness (client, mock control plane, fakes) on CPU 0, the runner on CPU 1, as in a
    /// cluster where the runner's pod has its own CPU (`taskset`).
    OwnCore,
}

impl Placement {
    fn label(self) -> &'static str {
        match self {
            Placement::Shared => "",
            Placement::OwnCore => " (runner on CPU 1, harness on CPU 0)",
        }
    }
}

/// Sets the CPU affinity of every thread of this process (`taskset -a -p`); threads started
/// later inherit it.
fn pin_harness(cpus: &str) -> anyhow::Result<()> {
    let pid = std::process::id().to_string();
    let out = std::process::Command::new("taskset")
        .args(["-a", "-cp", cpus, &pid])
        .output()
        .context("running taskset (util-linux)")?;
    if !out.status.success() {
        bail!(
            "taskset -a -cp {cpus} {pid} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// The straight path once: a fresh fake Argo, the warm-up (not measured: connections opened,
/// caches filled, as on the path through the runner), then `bodies`. Returns the fake, the
/// burst and the harness CPU it took; fails unless every create succeeded and was stored.
async fn straight_burst(
    env: &HashMap<String, String>,
    bodies: &[Workflow],
    warm_bodies: &[Workflow],
) -> anyhow::Result<(FakeArgo, Burst, Duration)> {
    let fake = FakeArgo::start(fake_config()).await?;
    let client = client_for(&fake, env)?;
    let warm = direct_burst(&client, warm_bodies).await;
    let cpu0 = cpu_time("self")?;
    let direct = direct_burst(&client, bodies).await;
    let cpu = cpu_time("self")? - cpu0;
    let stored = fake.workflows().len();
    if stored != bodies.len() + warm_bodies.len() || direct.failures + warm.failures > 0 {
        bail!(
            "direct path: {stored} workflows stored, {} failures (first: {:?})",
            direct.failures + warm.failures,
            direct
                .first_failure
                .as_ref()
                .or(warm.first_failure.as_ref())
        );
    }
    Ok((fake, direct, cpu))
}

/// The 1,000 burst in [`rounds_n`] rounds. A round: the bodies straight to a fresh fake Argo,
/// then the same requests through a fresh runner into another fresh fake, each after a
/// warm-up. One burst lasts about 0.2 s on 2 shared cores, so one round's ratio is noisy:
/// the caller reports the median round and every round's ratio. The last round's runner is
/// returned (for the tracking figures); the others are stopped before the next round starts.
async fn burst_rounds(
    env: &HashMap<String, String>,
    bodies: &[Workflow],
    warm_bodies: &[Workflow],
    placement: Placement,
) -> anyhow::Result<(Vec<Round>, Rig, bool)> {
    let total = rounds_n();
    let mut rounds: Vec<Round> = Vec::with_capacity(total);
    let mut validating = false;
    let mut kept: Option<Rig> = None;
    for r in 1..=total {
        println!(
            "== round {r}/{total}{}: {BURST} workflow creates straight to a fresh fake Argo, then {BURST} runPipeline requests through a fresh {}; {IN_FLIGHT} in flight",
            placement.label(),
            in_runners_place()
        );
        let (fake, direct, direct_cpu) = straight_burst(env, bodies, warm_bodies).await?;
        validating = fake.validating();
        let direct_rejected = fake.rejected().len();
        if TRACE.load(Ordering::Relaxed) {
            print_trace("straight", &direct, &fake.created_at());
        }
        drop(fake);

        let rig = Rig::start("1000", placement).await?;
        let idle_rss = util::rss_kib(rig.pid)?;
        // The protocol hop alone: no-op pings, same harness, same number in flight.
        let pings = runner_burst(&rig.cp, (0..BURST).map(|_| Request::Ping {}).collect()).await;
        let warm = runner_burst(
            &rig.cp,
            (BURST..BURST + WARMUP).map(bench_run_request).collect(),
        )
        .await;
        if warm.failures > 0 {
            bail!(
                "{} warm-up requests failed; first: {:?}",
                warm.failures,
                warm.first_failure
            );
        }
        let base_requests = rig.fake.request_count();
        if pings.failures > 0 {
            println!(
                "   {} pings failed: {:?}",
                pings.failures, pings.first_failure
            );
        }
        let runner_pid = rig.pid.to_string();
        let (cpu0, rcpu0) = (cpu_time("self")?, cpu_time(&runner_pid)?);
        let through = if AA.load(Ordering::Relaxed) {
            // The noise floor: the straight path again, on a fresh fake, the runner idle.
            straight_burst(env, bodies, warm_bodies).await?.1
        } else {
            runner_burst(&rig.cp, (0..BURST).map(bench_run_request).collect()).await
        };
        let harness_cpu = cpu_time("self")? - cpu0;
        let runner_cpu = cpu_time(&runner_pid)? - rcpu0;
        if through.failures > 0 {
            println!(
                "   {} of {BURST} requests failed; first: {}",
                through.failures,
                through.first_failure.as_deref().unwrap_or("")
            );
        }
        if TRACE.load(Ordering::Relaxed) {
            print_trace("through", &through, &rig.fake.created_at());
        }
        println!(
            "   throughput ratio {:.2}x ({:.0}/s through, {:.0}/s straight)",
            direct.throughput() / through.throughput(),
            through.throughput(),
            direct.throughput()
        );
        rounds.push(Round {
            direct,
            through,
            pings,
            direct_cpu,
            harness_cpu,
            runner_cpu,
            direct_rejected,
            runner_rejected: rig.fake.rejected().len(),
            burst_requests: rig.fake.request_count() - base_requests,
            idle_rss,
        });
        // Nothing of this round may run during the next one (its fake moves 1,000 runs to
        // Running a second after they were created, and its runner reports them).
        if r < total {
            rig.stop().await?;
        } else {
            kept = Some(rig);
        }
    }
    let rig = kept.context("no round ran")?;
    Ok((rounds, rig, validating))
}

/// The rounds again with the runner on a core of its own (see [`Placement::OwnCore`]), and
/// one line saying what they measured. `None` on a machine with fewer than 2 cores.
async fn own_core_rounds(
    env: &HashMap<String, String>,
    bodies: &[Workflow],
    warm_bodies: &[Workflow],
    cores: usize,
) -> anyhow::Result<Option<String>> {
    if cores < 2 {
        return Ok(None);
    }
    pin_harness("0")?;
    // The harness on one thread of its own (a current-thread runtime) on CPU 0: its client,
    // mock control plane and fakes then never wait for each other's time slices on that core.
    let result = std::thread::scope(|scope| {
        scope
            .spawn(|| -> anyhow::Result<Vec<Round>> {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                rt.block_on(async {
                    let (rounds, rig, _) =
                        burst_rounds(env, bodies, warm_bodies, Placement::OwnCore).await?;
                    rig.stop().await?;
                    Ok(rounds)
                })
            })
            .join()
            .map_err(|_| anyhow::anyhow!("the own-core rounds panicked"))?
    });
    pin_harness(&format!("0-{}", cores - 1))?;
    let rounds = result?;
    Ok(Some(rounds_row(
        &format!(
            "{BURST} run requests, {} on CPU 1, harness on CPU 0",
            in_runners_place()
        ),
        &rounds,
        "<= 1.2x",
    )?))
}

/// A table row for a set of rounds, `what` first and `target` last: the median round's
/// throughput and latencies on both paths, every round's ratio, the medians of the p50 and
/// p99 ratios, and the CPU per request.
fn rounds_row(what: &str, rounds: &[Round], target: &str) -> anyhow::Result<String> {
    let s = Summary::of(rounds)?;
    let m = s.median;
    let cpu = Cpu::of(rounds);
    Ok(format!(
        "| {what} (median of {} rounds) | {:.0}/s, p50 {:.2?}, p99 {:.2?} | {:.0}/s, p50 {:.2?}, p99 {:.2?} | throughput **{:.2}x** (rounds: {}); p50 {:.2}x, p99 {:.2}x (medians over the rounds); CPU per request: {cpu} | {target} |",
        rounds.len(),
        m.through.throughput(),
        m.through.p50,
        m.through.p99,
        m.direct.throughput(),
        m.direct.p50,
        m.direct.p99,
        m.ratio(),
        s.ratios,
        s.p50,
        s.p99,
    ))
}

/// CPU per request over a set of rounds, in µs (the mean of the rounds): the runner, and the
/// harness on each path.
struct Cpu {
    runner: f64,
    through: f64,
    straight: f64,
}

impl Cpu {
    fn of(rounds: &[Round]) -> Cpu {
        let per_req = |f: fn(&Round) -> Duration| {
            rounds.iter().map(f).sum::<Duration>().as_secs_f64() * 1e6
                / (BURST * rounds.len().max(1)) as f64
        };
        Cpu {
            runner: per_req(|r| r.runner_cpu),
            through: per_req(|r| r.harness_cpu),
            straight: per_req(|r| r.direct_cpu),
        }
    }
}

impl std::fmt::Display for Cpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "runner {:.0} µs, harness {:.0} µs through vs {:.0} µs straight",
            self.runner, self.through, self.straight
        )
    }
}

/// The median round (by throughput ratio) of a set of rounds, every round's ratio, and the
/// medians over the rounds of the p50 and p99 ratios.
struct Summary<'a> {
    median: &'a Round,
    ratios: String,
    p50: f64,
    p99: f64,
}

impl<'a> Summary<'a> {
    fn of(rounds: &'a [Round]) -> anyhow::Result<Summary<'a>> {
        let mut ratios: Vec<f64> = rounds.iter().map(Round::ratio).collect();
        ratios.sort_by(f64::total_cmp);
        let median = *ratios.get(ratios.len() / 2).context("no round ran")?;
        let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
        Ok(Summary {
            median: rounds
                .iter()
                .find(|r| r.ratio() == median)
                .context("median round")?,
            ratios: ratios
                .iter()
                .map(|r| format!("{r:.2}x"))
                .collect::<Vec<_>>()
                .join(", "),
            p50: median_of(rounds.iter().map(|r| ratio(r.through.p50, r.direct.p50))),
            p99: median_of(rounds.iter().map(|r| ratio(r.through.p99, r.direct.p99))),
        })
    }
}

/// `quick`: only the 1,000 burst on both paths (about 30 s once built), for iterating on the
/// runner's per-request cost.
async fn inner(quick: bool) -> anyhow::Result<()> {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    // Other work on the machine skews every figure here: say how busy it was.
    let loadavg = || {
        std::fs::read_to_string("/proc/loadavg")
            .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_default()
    };
    let load_before = loadavg();

    // The bodies of the direct path, from the runner's own settings.
    let (env, bc) = build_settings().await?;
    let bodies: Vec<Workflow> = (0..BURST)
        .map(|i| workflow(&bc, i))
        .collect::<anyhow::Result<_>>()?;
    let warm_bodies: Vec<Workflow> = (BURST..BURST + WARMUP)
        .map(|i| workflow(&bc, i))
        .collect::<anyhow::Result<_>>()?;

    if OWN_CORE_ONLY.load(Ordering::Relaxed) {
        if let Some(line) = own_core_rounds(&env, &bodies, &warm_bodies, cores).await? {
            println!("{line}");
        }
        return Ok(());
    }
    // 1. The burst, in rounds, the processes sharing the cores; then again with the runner on
    //    a core of its own.
    let (rounds, rig, validating) =
        burst_rounds(&env, &bodies, &warm_bodies, Placement::Shared).await?;
    let Summary {
        median: m,
        ratios: round_ratios,
        p50: p50_ratio,
        p99: p99_ratio,
    } = Summary::of(&rounds)?;
    let (direct, through, pings) = (&m.direct, &m.through, &m.pings);
    let cpu = Cpu::of(&rounds);
    let (direct_rejected, runner_rejected) = (
        rounds.iter().map(|r| r.direct_rejected).sum::<usize>(),
        rounds.iter().map(|r| r.runner_rejected).sum::<usize>(),
    );
    let burst_requests = m.burst_requests;
    let idle_rss = m.idle_rss;
    // The runner sent what the direct path sent (last round).
    let sent: HashMap<String, Value> = rig
        .fake
        .bodies()
        .into_iter()
        .filter(|(what, _)| what.starts_with("POST /api/v1/workflows/"))
        .filter_map(|(_, b)| {
            let name = b["workflow"]["metadata"]["name"].as_str()?.to_owned();
            Some((name, b["workflow"].clone()))
        })
        .collect();
    let same_bodies = bodies
        .iter()
        .filter(|wf| {
            sent.get(wf.name())
                .is_some_and(|b| serde_json::to_value(wf).is_ok_and(|v| v == *b))
        })
        .count();
    if let Some(wf) = bodies.first()
        && let Some(b) = sent.get(wf.name())
    {
        let mine = serde_json::to_value(wf)?;
        if mine != *b {
            println!(
                "   run 0: the runner's body differs: {}",
                first_diff(&mine, b, "")
            );
        }
    }
    if quick {
        rig.stop().await?;
        if let Some(line) = own_core_rounds(&env, &bodies, &warm_bodies, cores).await? {
            println!("{line}");
        }
        println!(
            "throughput {:.0}/s through vs {:.0}/s straight: **{:.2}x**; p50 {:.2?} vs {:.2?} ({:.2}x); p99 {:.2?} vs {:.2?} ({:.2}x)",
            through.throughput(),
            direct.throughput(),
            direct.throughput() / through.throughput(),
            through.p50,
            direct.p50,
            through.p50.as_secs_f64() / direct.p50.as_secs_f64(),
            through.p99,
            direct.p99,
            through.p99.as_secs_f64() / direct.p99.as_secs_f64(),
        );
        println!(
            "rounds: {round_ratios} (median shown); median p50 ratio {p50_ratio:.2}x, p99 ratio {p99_ratio:.2}x\nCPU per request: {cpu}; no-op pings {:.0}/s, p50 {:.2?}; failures {} / {}; bodies identical {same_bodies} of {BURST}; rejected {runner_rejected} / {direct_rejected}",
            pings.throughput(),
            pings.p50,
            through.failures,
            direct.failures,
        );
        return Ok(());
    }
    let t1000 = track(&rig, BURST + WARMUP).await?;
    let peak_rss = hwm_kib(rig.pid)?;
    let stored = rig.fake.workflows().len();
    rig.stop().await?;
    println!("== the burst again, the runner on a core of its own");
    let own_core = own_core_rounds(&env, &bodies, &warm_bodies, cores).await?;
    // The same rounds with the floor in the runner's place (see `--floor`): what no runner
    // can go below in this harness on this machine.
    println!("== the burst again, both placements, `xtask floor-runner` in the runner's place");
    FLOOR.store(true, Ordering::Relaxed);
    let (floor_rounds, floor_rig, _) =
        burst_rounds(&env, &bodies, &warm_bodies, Placement::Shared).await?;
    floor_rig.stop().await?;
    let floor_own_core = own_core_rounds(&env, &bodies, &warm_bodies, cores).await?;
    FLOOR.store(false, Ordering::Relaxed);

    // 2. Tracking 10 and 100 runs: a fresh runner and fake.
    println!("== tracking 10, then 100 runs (fresh runner, fresh fake Argo)");
    let rig = Rig::start("100", Placement::Shared).await?;
    let idle_rss_2 = util::rss_kib(rig.pid)?;
    let b10 = runner_burst(&rig.cp, (0..10).map(bench_run_request).collect()).await;
    let t10 = track(&rig, 10).await?;
    let b100 = runner_burst(&rig.cp, (10..100).map(bench_run_request).collect()).await;
    let t100 = track(&rig, 100).await?;
    if b10.failures + b100.failures > 0 {
        println!(
            "   {} requests failed; first: {:?}",
            b10.failures + b100.failures,
            b10.first_failure.or(b100.first_failure)
        );
    }
    rig.stop().await?;

    // 3. Scaling: 10,000 requests, each path into a fresh fake (and a fresh runner).
    println!(
        "== {LARGE} workflow creates straight to a fresh fake Argo, then {LARGE} runPipeline requests through a fresh runner"
    );
    let bodies_l: Vec<Workflow> = (0..LARGE)
        .map(|i| workflow(&bc, i))
        .collect::<anyhow::Result<_>>()?;
    let fake = FakeArgo::start(fake_config()).await?;
    let client = client_for(&fake, &env)?;
    let direct_l = direct_burst(&client, &bodies_l).await;
    drop((client, fake, bodies_l));
    let rig = Rig::start("10000", Placement::Shared).await?;
    let rcpu0 = cpu_time(&rig.pid.to_string())?;
    let through_l = runner_burst(&rig.cp, (0..LARGE).map(bench_run_request).collect()).await;
    let runner_cpu_l = cpu_time(&rig.pid.to_string())? - rcpu0;
    if through_l.failures + direct_l.failures > 0 {
        println!(
            "   failures: {} through, {} direct; first: {:?}",
            through_l.failures,
            direct_l.failures,
            through_l
                .first_failure
                .clone()
                .or(direct_l.first_failure.clone())
        );
    }
    let t10k = track(&rig, LARGE).await?;
    let rcpu1 = cpu_time(&rig.pid.to_string())?;
    tokio::time::sleep(WINDOW).await;
    let idle_cpu_10k = cpu_time(&rig.pid.to_string())? - rcpu1;
    let peak_rss_l = hwm_kib(rig.pid)?;
    rig.stop().await?;

    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    println!();
    println!(
        "The {BURST} burst ran {} times; columns: the round with the median throughput ratio. Throughput ratio of each round: {round_ratios}. Median over the rounds of the p50 ratio: {p50_ratio:.2}x, of the p99 ratio: {p99_ratio:.2}x.",
        rounds_n()
    );
    println!();
    println!(
        "| {BURST} run requests, {IN_FLIGHT} in flight | through the runner | straight to the fake Argo | ratio | target |"
    );
    println!("| --- | --- | --- | --- | --- |");
    println!(
        "| wall time | {:.2?} | {:.2?} | {:.2}x | - |",
        through.wall,
        direct.wall,
        ratio(through.wall, direct.wall)
    );
    println!(
        "| throughput | {:.0}/s | {:.0}/s | **{:.2}x** | <= 1.2x |",
        through.throughput(),
        direct.throughput(),
        direct.throughput() / through.throughput()
    );
    println!(
        "| latency p50 | {:.2?} | {:.2?} | **{:.2}x** | <= 1.2x |",
        through.p50,
        direct.p50,
        ratio(through.p50, direct.p50)
    );
    println!(
        "| latency p99 | {:.2?} | {:.2?} | {:.2}x | - |",
        through.p99,
        direct.p99,
        ratio(through.p99, direct.p99)
    );
    println!(
        "| latency max | {:.2?} | {:.2?} | - | - |",
        through.max, direct.max
    );
    if let Some(line) = &own_core {
        println!("{line}");
    }
    println!(
        "{}",
        rounds_row(
            "the floor (`xtask floor-runner` in the runner's place), shared cores",
            &floor_rounds,
            "the least any runner reaches here",
        )?
    );
    if let Some(line) = &floor_own_core {
        println!("{line}");
    }
    println!(
        "| CPU per request: harness (fake Argo, mock control plane, client) | {:.0} µs | {:.0} µs | - | - |",
        cpu.through, cpu.straight
    );
    println!(
        "| CPU per request: runner process | {:.0} µs | - | - | - |",
        cpu.runner
    );
    println!(
        "| no-op `ping` through the runner, same harness: throughput, p50 / p99 | {:.0}/s, {:.2?} / {:.2?} | - | - | - |",
        pings.throughput(),
        pings.p50,
        pings.p99
    );
    println!(
        "| failures / bodies rejected by the fake | {} / {runner_rejected} | {} / {direct_rejected} | - | 0 |",
        through.failures, direct.failures
    );
    println!(
        "| runner CPU per 1,000 runs submitted | {:.2} s | - | - | - |",
        cpu.runner / 1000.0
    );
    println!();
    println!("| scaling: run requests, 32 in flight | {BURST} | {LARGE} | growth |");
    println!("| --- | --- | --- | --- |");
    println!(
        "| throughput through the runner / straight (ratio) | {:.0}/s / {:.0}/s ({:.2}x) | {:.0}/s / {:.0}/s ({:.2}x) | {} |",
        through.throughput(),
        direct.throughput(),
        direct.throughput() / through.throughput(),
        through_l.throughput(),
        direct_l.throughput(),
        direct_l.throughput() / through_l.throughput(),
        growth(through.throughput(), through_l.throughput())
    );
    println!(
        "| latency p50 / p99 through the runner | {:.2?} / {:.2?} | {:.2?} / {:.2?} | {} |",
        through.p50,
        through.p99,
        through_l.p50,
        through_l.p99,
        growth(through.p50.as_secs_f64(), through_l.p50.as_secs_f64())
    );
    println!(
        "| latency p50 / p99 straight to the fake | {:.2?} / {:.2?} | {:.2?} / {:.2?} | {} |",
        direct.p50,
        direct.p99,
        direct_l.p50,
        direct_l.p99,
        growth(direct.p50.as_secs_f64(), direct_l.p50.as_secs_f64())
    );
    println!(
        "| runner CPU per 1,000 runs submitted | {:.2} s | {:.2} s | {} |",
        cpu.runner / 1000.0,
        runner_cpu_l.as_secs_f64() * 1000.0 / LARGE as f64,
        growth(cpu.runner / 1e6, runner_cpu_l.as_secs_f64() / LARGE as f64)
    );
    println!(
        "| runner RSS while tracking the runs (peak) | {} ({}) | {} ({}) | {} per run tracked |",
        mib(t1000.rss_kib),
        mib(peak_rss),
        mib(t10k.rss_kib),
        mib(peak_rss_l),
        format_args!(
            "{:.1} KiB",
            (t10k.rss_kib as f64 - t1000.rss_kib as f64) / (LARGE - BURST) as f64
        )
    );
    println!(
        "| Argo API requests per minute while tracking | {:.1} | {:.1} | {} |",
        t1000.per_minute(),
        t10k.per_minute(),
        growth(t1000.per_minute(), t10k.per_minute())
    );
    println!(
        "| runner CPU while tracking, per minute | - | {:.2} s | - |",
        idle_cpu_10k.as_secs_f64() * 60.0 / WINDOW.as_secs_f64()
    );
    println!();
    println!(
        "| active runs tracked | Argo API requests in {}s window | per minute | runner RSS | target |",
        WINDOW.as_secs()
    );
    println!("| --- | --- | --- | --- | --- |");
    println!(
        "| 0 (connected, idle) | - | - | {} / {} | - |",
        mib(idle_rss),
        mib(idle_rss_2)
    );
    for t in [&t10, &t100, &t1000] {
        let kinds = if t.kinds.is_empty() {
            "none".to_owned()
        } else {
            t.kinds
                .iter()
                .map(|(k, n)| format!("{n}x `{k}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        println!(
            "| {} | {} ({kinds}) | {:.1} | {} | independent of runs; RSS < 64 MB |",
            t.runs,
            t.requests,
            t.per_minute(),
            mib(t.rss_kib)
        );
    }
    println!(
        "| peak RSS of the 1,000-run runner (VmHWM) | - | - | {} | - |",
        mib(peak_rss)
    );
    println!();
    println!(
        "Argo requests the runner made during the burst: {burst_requests} ({BURST} creates expected); workflows stored: {stored}."
    );
    println!(
        "Bodies the runner sent identical to the direct path's: {same_bodies} of {BURST}. Request bodies validated against swagger.json: {}.",
        if validating {
            "yes, on both paths"
        } else {
            "no (swagger.json absent), on neither path"
        }
    );
    println!(
        "RSS growth: {} idle -> {} at 10 runs -> {} at 100 runs (runner 2); {} idle -> {} at 1,000 runs (runner 1).",
        mib(idle_rss_2),
        mib(t10.rss_kib),
        mib(t100.rss_kib),
        mib(idle_rss),
        mib(t1000.rss_kib)
    );
    println!(
        "Release runner and harness on loopback, {cores} cores; harness runtime: 2 worker threads (fake Argo, mock control plane, clients). Load average (1/5/15 min) before: {load_before}; after: {}.",
        loadavg()
    );
    Ok(())
}
