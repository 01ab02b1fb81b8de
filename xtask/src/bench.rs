//! `cargo xtask bench`: figures of the runner measured side by side on this machine.
//!
//! - binary size of the release `ingestion-runner`;
//! - idle RSS of `ingestion-runner run` connected to a control plane;
//! - round-trip time of a no-op request (`ping`) through the runner, against the same frames
//!   bounced by a bare WebSocket echo client (same library, same release build, separate
//!   process), measured by the same server loop. The ratio is the runner's overhead.
//!
//! Runs in release: `cargo xtask bench` builds `runner-bin` and `xtask` with `--release`,
//! re-executes itself from the release build, then runs `bench-argo` (run submission at 1,000
//! and 10,000 requests, status tracking, footprint) from it and the secrets comparison
//! (`runner-secrets`' `aws_vs_sdk` example against moto's server, started here), printing every
//! table and writing them all to `target/bench-report.md`.

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use runner_protocol::{
    AcceptOptions, ControlInput, ControlSession, Limits, OpResult, Request, Response,
};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

use crate::util;

const WARMUP: usize = 500;
const SAMPLES: usize = 5_000;

pub fn main(args: &[String]) -> anyhow::Result<()> {
    if cfg!(debug_assertions) {
        println!("== building release binaries (runner-bin, xtask)");
        // Two builds: built together, the runner would get xtask's test-only features
        // (testkit, the fake Argo) and the binary size would not be the shipped one's.
        let build = |package: &str| -> anyhow::Result<bool> {
            Ok(util::cargo()
                .args(["build", "--release", "--quiet", "-p", package])
                .status()?
                .success())
        };
        let ok = build("runner-bin")? && build("xtask")?;
        if !ok {
            bail!("release build failed");
        }
        let me = util::target_dir().join("release").join("xtask");
        let report = util::target_dir().join("bench-report.md");
        std::fs::write(
            &report,
            "# cargo xtask bench: report\n\nCopy the figures into docs/benchmarks.md.\n\n",
        )?;
        for task in ["bench", "bench-argo"] {
            let mut cmd = std::process::Command::new(&me);
            cmd.arg(task).args(args);
            util::run_tee(cmd, &report).with_context(|| format!("xtask {task}"))?;
        }
        // Secrets: a config's references through the resolver, cold and cached, against the
        // bare AWS SDK, both against moto's server (installed as `cargo xtask test` does).
        println!("== secrets: runner-secrets vs the bare AWS SDK, against moto");
        let (moto, endpoint) = crate::test::start_moto()?;
        let mut cmd = util::cargo();
        cmd.args([
            "run",
            "--release",
            "--quiet",
            "-p",
            "runner-secrets",
            "--features",
            "aws",
            "--example",
            "aws_vs_sdk",
        ])
        .env("RUNNER_TEST_MOTO_ENDPOINT", &endpoint);
        let secrets = util::run_tee(cmd, &report).context("the aws_vs_sdk example");
        drop(moto);
        secrets?;
        println!("\nreport written to {}", report.display());
        return Ok(());
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    rt.block_on(inner())
}

struct Stats {
    p50: Duration,
    p99: Duration,
    mean: Duration,
}

fn stats(mut v: Vec<Duration>) -> Stats {
    v.sort();
    let mean = v.iter().sum::<Duration>() / v.len() as u32;
    Stats {
        p50: v[v.len() / 2],
        p99: v[v.len() * 99 / 100],
        mean,
    }
}

async fn next_text(
    ws: &mut tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
) -> anyhow::Result<String> {
    loop {
        match ws.next().await.context("peer closed")?? {
            Message::Text(t) => return Ok(t.to_string()),
            Message::Close(_) => bail!("peer closed"),
            _ => continue,
        }
    }
}

async fn inner() -> anyhow::Result<()> {
    let release = util::target_dir().join("release");
    let runner_bin = release.join("ingestion-runner");
    let size = std::fs::metadata(&runner_bin)
        .with_context(|| format!("{} missing", runner_bin.display()))?
        .len();

    // The runner, connected to our server loop.
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("ws://{}/agent", listener.local_addr()?);
    let mut runner = tokio::process::Command::new(&runner_bin)
        .arg("run")
        .env("SERVER_URL", &url)
        .env("AUTH_TOKEN", "bench")
        .env("AGENT_ID", "bench")
        .env("EXECUTOR_TYPE", "local")
        .env("SECRETS_MANAGER", "env")
        .env("HEALTH_BIND", "off")
        .env("METRICS_BIND", "off")
        .env("LOG_LEVEL", "warn")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let pid = runner.id().context("pid")?;
    let (tcp, _) = tokio::time::timeout(Duration::from_secs(30), listener.accept()).await??;
    let mut ws = tokio_tungstenite::accept_async(tcp).await?;
    let mut session = ControlSession::new(Limits::DEFAULT);
    let hello = next_text(&mut ws).await?;
    if !matches!(session.receive(hello.as_bytes()), ControlInput::Hello(_)) {
        bail!("expected hello, got {hello}");
    }
    let welcome = session
        .accept(AcceptOptions {
            session_id: "bench".into(),
            heartbeat_interval: Duration::from_secs(30),
            acked_through: None,
            server_version: None,
        })
        .map_err(|e| anyhow::anyhow!("reject: {e}"))?;
    ws.send(Message::text(welcome)).await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle_rss = util::rss_kib(pid)?;

    let mut through_runner = Vec::with_capacity(SAMPLES);
    let mut frame_len = 0;
    for i in 0..WARMUP + SAMPLES {
        let (_, text) = session
            .request(Request::Ping {})
            .map_err(|e| anyhow::anyhow!(e.message))?;
        frame_len = text.len();
        let t0 = Instant::now();
        ws.send(Message::text(text)).await?;
        loop {
            let reply = next_text(&mut ws).await?;
            match session.receive(reply.as_bytes()) {
                ControlInput::Response {
                    response: Response::Result(OpResult::Pong {}),
                    ..
                } => break,
                ControlInput::Response { response, .. } => bail!("unexpected reply {response:?}"),
                _ => continue,
            }
        }
        if i >= WARMUP {
            through_runner.push(t0.elapsed());
        }
    }
    let busy_rss = util::rss_kib(pid)?;
    util::sigterm(pid);
    let _ = tokio::time::timeout(Duration::from_secs(10), runner.wait()).await;

    // The bare echo: same server loop, same frame, a WebSocket client that sends each text frame
    // back.
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let echo_url = format!("ws://{}/", listener.local_addr()?);
    let me = std::env::current_exe()?;
    let mut echo = tokio::process::Command::new(me)
        .args(["echo-client", &echo_url])
        .kill_on_drop(true)
        .spawn()?;
    let (tcp, _) = tokio::time::timeout(Duration::from_secs(30), listener.accept()).await??;
    let mut ws = tokio_tungstenite::accept_async(tcp).await?;
    let mut session = ControlSession::new(Limits::DEFAULT);
    let mut bare = Vec::with_capacity(SAMPLES);
    // One request frame, sent again and again: the echo peer answers nothing itself.
    let (_, text) = session
        .request(Request::Ping {})
        .map_err(|e| anyhow::anyhow!(e.message))?;
    for i in 0..WARMUP + SAMPLES {
        let text = text.clone();
        let t0 = Instant::now();
        ws.send(Message::text(text)).await?;
        let reply = next_text(&mut ws).await?;
        // Pay the same decode on the way back as the runner path does.
        let _ = runner_protocol::decode(reply.as_bytes(), &Limits::DEFAULT);
        if i >= WARMUP {
            bare.push(t0.elapsed());
        }
    }
    let _ = echo.kill().await;

    let r = stats(through_runner);
    let b = stats(bare);
    let ratio50 = r.p50.as_secs_f64() / b.p50.as_secs_f64();
    let ratio_mean = r.mean.as_secs_f64() / b.mean.as_secs_f64();
    println!();
    println!("| figure | value |");
    println!("| --- | --- |");
    println!(
        "| binary size (release, stripped) | {:.2} MiB ({size} bytes) |",
        size as f64 / 1048576.0
    );
    println!(
        "| idle RSS, connected | {:.1} MiB ({idle_rss} KiB) |",
        idle_rss as f64 / 1024.0
    );
    println!(
        "| RSS after {} pings | {:.1} MiB |",
        WARMUP + SAMPLES,
        busy_rss as f64 / 1024.0
    );
    println!(
        "| no-op request through the runner (p50 / p99 / mean) | {:?} / {:?} / {:?} |",
        r.p50, r.p99, r.mean
    );
    println!(
        "| bare WebSocket echo, same {frame_len}-byte frame (p50 / p99 / mean) | {:?} / {:?} / {:?} |",
        b.p50, b.p99, b.mean
    );
    println!("| overhead ratio p50 / mean (target <= 1.5) | {ratio50:.2} / {ratio_mean:.2} |");
    println!();
    println!(
        "{SAMPLES} sequential samples after {WARMUP} warm-up, one connection, loopback, {} cores.",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    Ok(())
}

/// `xtask echo-client URL`: sends every text frame back (the bare-echo baseline).
pub fn echo_client(args: &[String]) -> anyhow::Result<()> {
    let url = args.first().context("echo-client needs a URL")?.clone();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str()).await?;
        while let Some(msg) = ws.next().await {
            match msg? {
                Message::Text(t) => ws.send(Message::Text(t)).await?,
                Message::Close(_) => break,
                _ => {}
            }
        }
        Ok(())
    })
}
