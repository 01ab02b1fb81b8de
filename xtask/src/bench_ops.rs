//! `cargo xtask bench-ops [--starts N] [--scrapes M]`: the operational figures of issue 5,
//! measured on this machine against the in-process mock control plane:
//!
//! - size of the release `ingestion-runner` (built alone, so it is the shipped binary);
//! - time from process start (just before `spawn`) to the first `200` from `/readyz`, over N
//!   starts (median, min, max): configuration, logging, the secrets backend, the health server,
//!   the executor, connect + `hello`/`welcome`;
//! - `/metrics` scrape cost over M scrapes after a warm-up: bytes, latency p50 / p99 / max (a new
//!   loopback TCP connection per scrape, `Connection: close`), and the runner's CPU per scrape
//!   from `/proc/PID/stat` (utime + stime), with the CPU of an idle period of the same length
//!   subtracted.
//!
//! Runs in release: builds `runner-bin` and `xtask` with `--release` (two builds, as
//! `cargo xtask bench` does) and re-executes itself from the release build.

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use runner_core::testkit::{MockControlPlane, MockOptions};
use runner_protocol::Request;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::util;

const TOKEN: &str = "bench-ops-token";

struct Args {
    starts: usize,
    scrapes: usize,
}

fn parse_args(args: &[String]) -> anyhow::Result<Args> {
    let mut a = Args {
        starts: 20,
        scrapes: 1_000,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = |v: Option<&String>| -> anyhow::Result<usize> {
            v.context("missing value")?
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .context("expected a positive number")
        };
        match flag.as_str() {
            "--starts" => a.starts = value(it.next())?,
            "--scrapes" => a.scrapes = value(it.next())?,
            other => bail!("unknown argument {other}; usage: bench-ops [--starts N] [--scrapes M]"),
        }
    }
    Ok(a)
}

pub fn main(args: &[String]) -> anyhow::Result<()> {
    let parsed = parse_args(args)?;
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
        if !(build("runner-bin")? && build("xtask")?) {
            bail!("release build failed");
        }
        let me = util::target_dir().join("release").join("xtask");
        let status = std::process::Command::new(me)
            .arg("bench-ops")
            .args(args)
            .status()?;
        if !status.success() {
            bail!("bench-ops failed ({status})");
        }
        return Ok(());
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    rt.block_on(inner(parsed))
}

/// A free loopback port (bound then released: the runner binds it right after).
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// `GET path` with `Connection: close`: the status code and the body's length.
async fn get(port: u16, path: &str) -> std::io::Result<(u16, usize)> {
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).await?;
    tcp.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await?;
    let mut buf = Vec::with_capacity(16 * 1024);
    tcp.read_to_end(&mut buf).await?;
    let head_end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 4)
        .unwrap_or(buf.len());
    let status = std::str::from_utf8(&buf[..head_end.min(buf.len())])
        .ok()
        .and_then(|h| h.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok((status, buf.len() - head_end))
}

/// CPU time (user + system) of `pid` so far, from /proc/PID/stat, in seconds.
fn cpu_secs(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let f: Vec<&str> = after.split_whitespace().collect();
    let tick = |i: usize| -> anyhow::Result<f64> {
        f.get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .context("unexpected /proc/PID/stat")
    };
    // utime and stime are fields 14 and 15, i.e. 11 and 12 after the command name.
    // USER_HZ is 100 on Linux.
    Ok((tick(11)? + tick(12)?) / 100.0)
}

fn spawn_runner(
    bin: &std::path::Path,
    url: &str,
    agent: &str,
    health: u16,
    metrics: Option<u16>,
) -> anyhow::Result<tokio::process::Child> {
    Ok(tokio::process::Command::new(bin)
        .arg("run")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("SERVER_URL", url)
        .env("AUTH_TOKEN", TOKEN)
        .env("AGENT_ID", agent)
        .env("EXECUTOR_TYPE", "local")
        .env("SECRETS_MANAGER", "env")
        .env("HEALTH_BIND", format!("127.0.0.1:{health}"))
        .env(
            "METRICS_BIND",
            metrics.map_or("off".to_owned(), |p| format!("127.0.0.1:{p}")),
        )
        .env("LOG_LEVEL", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()?)
}

/// Polls `/readyz` every millisecond until 200; returns the time since `t0`.
async fn until_ready(port: u16, t0: Instant) -> anyhow::Result<Duration> {
    let deadline = t0 + Duration::from_secs(30);
    loop {
        if let Ok((200, _)) = get(port, "/readyz").await {
            return Ok(t0.elapsed());
        }
        if Instant::now() > deadline {
            bail!("/readyz not 200 within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

async fn stop(mut child: tokio::process::Child) {
    if let Some(pid) = child.id() {
        util::sigterm(pid);
    }
    if tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .is_err()
    {
        let _ = child.kill().await;
    }
}

fn pct(sorted: &[Duration], p: usize) -> Duration {
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

async fn inner(args: Args) -> anyhow::Result<()> {
    let bin = util::target_dir().join("release").join("ingestion-runner");
    let size = std::fs::metadata(&bin)
        .with_context(|| format!("{} missing", bin.display()))?
        .len();
    let cp = MockControlPlane::start(MockOptions {
        token: TOKEN.into(),
        ..Default::default()
    })
    .await?;
    let url = cp.url();

    // Start to ready, N times; each runner is stopped (and has exited) before the next.
    let mut starts = Vec::with_capacity(args.starts);
    for i in 0..args.starts {
        let health = free_port()?;
        let t0 = Instant::now();
        let child = spawn_runner(&bin, &url, &format!("bench-ops-{i}"), health, None)?;
        let took = until_ready(health, t0).await;
        stop(child).await;
        starts.push(took?);
    }
    starts.sort();

    // Scrapes, against one runner that has answered some requests (so the request histograms
    // and the executor counters hold series, as in production).
    let health = free_port()?;
    let metrics_port = free_port()?;
    let child = spawn_runner(&bin, &url, "bench-ops-scrape", health, Some(metrics_port))?;
    let pid = child.id().context("runner pid")?;
    until_ready(health, Instant::now()).await?;
    for _ in 0..100 {
        cp.request(Request::Ping {})
            .await
            .map_err(|e| anyhow::anyhow!("ping: {e}"))?;
    }
    for _ in 0..50 {
        get(metrics_port, "/metrics").await?;
    }
    let mut lat = Vec::with_capacity(args.scrapes);
    let mut bytes = 0;
    let cpu0 = cpu_secs(pid)?;
    let w0 = Instant::now();
    for _ in 0..args.scrapes {
        let t = Instant::now();
        let (status, len) = get(metrics_port, "/metrics").await?;
        lat.push(t.elapsed());
        if status != 200 {
            bail!("/metrics answered {status}");
        }
        bytes = len;
    }
    let wall = w0.elapsed();
    let cpu_busy = cpu_secs(pid)? - cpu0;
    // The same wall time idle, to subtract what the runner does anyway (heartbeats, ticks).
    let cpu1 = cpu_secs(pid)?;
    tokio::time::sleep(wall).await;
    let cpu_idle = cpu_secs(pid)? - cpu1;
    let rss_kib = util::rss_kib(pid)?;
    stop(child).await;
    lat.sort();

    let per_scrape = |cpu: f64| cpu / args.scrapes as f64 * 1e6;
    println!();
    println!("| figure | value |");
    println!("| --- | --- |");
    println!(
        "| binary size (release, stripped, all providers) | {:.2} MiB ({size} bytes) |",
        size as f64 / 1_048_576.0
    );
    println!(
        "| process start -> `/readyz` 200, {} starts (median / min / max) | {:.0} ms / {:.0} ms / {:.0} ms |",
        args.starts,
        pct(&starts, 50).as_secs_f64() * 1e3,
        starts[0].as_secs_f64() * 1e3,
        starts[starts.len() - 1].as_secs_f64() * 1e3
    );
    println!("| `/metrics` body | {bytes} bytes |");
    println!(
        "| `/metrics` latency, {} scrapes (p50 / p99 / max) | {:.0} µs / {:.0} µs / {:.0} µs |",
        args.scrapes,
        pct(&lat, 50).as_secs_f64() * 1e6,
        pct(&lat, 99).as_secs_f64() * 1e6,
        lat[lat.len() - 1].as_secs_f64() * 1e6
    );
    println!(
        "| runner CPU per scrape (minus idle) | {:.0} µs ({:.0} µs raw, {:.0} µs idle over the same {:.2} s) |",
        per_scrape((cpu_busy - cpu_idle).max(0.0)),
        per_scrape(cpu_busy),
        per_scrape(cpu_idle),
        wall.as_secs_f64()
    );
    println!(
        "| RSS after the scrapes | {:.1} MiB |",
        rss_kib as f64 / 1024.0
    );
    println!();
    println!(
        "Loopback, mock control plane in this process, EXECUTOR_TYPE=local, SECRETS_MANAGER=env, {} cores; CPU from /proc at 10 ms resolution.",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    Ok(())
}
