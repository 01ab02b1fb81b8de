//! `cargo xtask demo`: a mock control plane, the real `ingestion-runner` binary with the local
//! executor, and a stand-in ingestion program. Deploys and runs a pipeline, shows its status
//! transitions and logs, kills a second run, drains the runner with SIGTERM.

use std::collections::HashSet;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use runner_core::testkit::{MockControlPlane, MockOptions};
use runner_protocol::{
    IngestionPipeline, OpResult, PipelineState, Request, Response, RunOptions, RunnerEvent,
};
use serde_json::json;

use crate::util;

const TOKEN: &str = "demo-token-not-a-real-jwt";

/// The stand-in ingestion program: reads the container's env contract like the real image.
const FAKE_INGESTION: &str = r#"#!/bin/sh
# Stand-in for the ingestion image's `python main.py`: reads the same environment.
echo "[ingestion] pipelineType=$pipelineType runId=$pipelineRunId"
echo "[ingestion] pipeline=$ingestionPipelineFQN"
echo "[ingestion] connection: $(printf '%s' "$config" | grep -o '"serviceConnection":{[^}]*}')"
case "$ingestionPipelineFQN" in
  *slow*) steps=60 ;;
  *) steps=3 ;;
esac
i=1
while [ $i -le $steps ]; do
  echo "[ingestion] step $i/$steps: processed $((i * 42)) tables"
  sleep 0.4
  i=$((i + 1))
done
echo "[ingestion] workflow finished successfully"
"#;

fn pipeline(name: &str, schedule: Option<&str>) -> IngestionPipeline {
    serde_json::from_value(json!({
        "id": "4e1d1f49-5c6a-4e0e-9a53-8f0d2b5c6d01",
        "name": name,
        "fullyQualifiedName": format!("demo_mysql.{name}"),
        "pipelineType": "metadata",
        "sourceConfig": {"config": {"type": "DatabaseMetadata", "includeViews": true}},
        "airflowConfig": {"scheduleInterval": schedule, "pipelineTimezone": "UTC"},
        "loggerLevel": "INFO",
        "openMetadataServerConnection": {"hostPort": "http://openmetadata:8585/api", "authProvider": "openmetadata"},
        "enabled": true
    }))
    .expect("valid pipeline")
}

fn service() -> serde_json::Value {
    json!({
        "name": "demo_mysql",
        "serviceType": "Mysql",
        "connection": {"config": {"type": "Mysql", "hostPort": "mysql:3306",
            "username": "secret:/demo/mysql/credentials/username",
            "password": "secret:/demo/mysql/credentials/password"}}
    })
}

fn describe(r: &Response) -> String {
    match r {
        Response::Result(OpResult::PipelineResponse(p)) => format!(
            "{} {}{}",
            p.code,
            p.reason.as_deref().unwrap_or(""),
            p.run_id
                .as_ref()
                .map(|r| format!(" (runId {r})"))
                .unwrap_or_default()
        ),
        Response::Result(other) => format!("{other:?}"),
        Response::Error(e) => format!("error {:?}: {}", e.code, e.message),
    }
}

fn run_id(r: &Response) -> anyhow::Result<String> {
    match r {
        Response::Result(OpResult::PipelineResponse(p)) if p.code == 200 => {
            p.run_id.clone().context("no runId in the reply")
        }
        other => bail!("run request failed: {}", describe(other)),
    }
}

struct Printer {
    seen: HashSet<(String, u64)>,
}

impl Printer {
    fn print_new(&mut self, cp: &MockControlPlane) {
        for e in cp.events() {
            if !self.seen.insert((e.instance_id.clone(), e.event.seq)) {
                continue;
            }
            let RunnerEvent::RunStatus {
                pipeline_fqn,
                status,
                ..
            } = e.event.event;
            println!(
                "  event #{:<3} {pipeline_fqn:<24} run {} -> {}",
                e.event.seq,
                &status.run_id[..8.min(status.run_id.len())],
                status.pipeline_state.as_str()
            );
        }
    }
}

async fn wait_state(
    cp: &MockControlPlane,
    printer: &mut Printer,
    run: &str,
    state: PipelineState,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        printer.print_new(cp);
        let reached = cp.events().iter().any(|e| match &e.event.event {
            RunnerEvent::RunStatus { status, .. } => {
                status.run_id == run && status.pipeline_state == state
            }
        });
        if reached {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("run {run} did not reach {} within 60s", state.as_str());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn main(_args: &[String]) -> anyhow::Result<()> {
    println!("== building ingestion-runner");
    let bin = util::build_runner(false)?;
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(demo(bin))
}

async fn demo(bin: std::path::PathBuf) -> anyhow::Result<()> {
    let dir = util::target_dir().join("demo");
    std::fs::create_dir_all(&dir)?;
    let script = dir.join("fake_ingestion.sh");
    std::fs::write(&script, FAKE_INGESTION)?;

    let cp = MockControlPlane::start(MockOptions {
        token: TOKEN.into(),
        heartbeat_interval: Duration::from_secs(5),
        ..Default::default()
    })
    .await?;
    println!("== mock control plane listening on {}", cp.url());

    let health_port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut child = tokio::process::Command::new(&bin)
        .arg("run")
        .env("SERVER_URL", cp.url())
        .env("AUTH_TOKEN", TOKEN)
        .env("AGENT_ID", "demo-runner")
        .env("EXECUTOR_TYPE", "local")
        .env(
            "LOCAL_INGESTION_COMMAND",
            format!("sh {}", script.display()),
        )
        .env("INGESTION_EXTRA_ENVS", "[DEMO:true]")
        // Secrets from the runner's environment: `secret:/demo/mysql/credentials/password` is key
        // `password` of the JSON in RUNNER_SECRET_DEMO_MYSQL_CREDENTIALS. The run gets the values;
        // its logs and everything sent upstream show `***`.
        .env("SECRETS_MANAGER", "env")
        .env("SECRETS_ALLOWED_PREFIXES", "demo/")
        .env(
            "RUNNER_SECRET_DEMO_MYSQL_CREDENTIALS",
            r#"{"username":"demo_reader","password":"Demo-Pa55-word"}"#,
        )
        .env("RECONNECT_DELAY_SECONDS", "1")
        .env("HEALTH_BIND", format!("127.0.0.1:{health_port}"))
        .env("METRICS_BIND", "off")
        .env("DRAIN_GRACE_SECONDS", "10")
        .env("LOG_LEVEL", "warn")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let pid = child.id().context("runner pid")?;
    println!("== started {} run (pid {pid})", bin.display());

    let hello = cp
        .wait_connected(Duration::from_secs(30))
        .await
        .map_err(|e| anyhow::anyhow!("the runner did not connect: {e}"))?;
    println!(
        "== runner `{}` Connected (version {}, executor {}, protocol {:?})",
        hello.agent_id, hello.runner_version, hello.executor, hello.protocol_versions
    );

    let mut printer = Printer {
        seen: HashSet::new(),
    };
    let req = |r| async { cp.request(r).await.map_err(|e| anyhow::anyhow!(e)) };

    let p = pipeline("orders_metadata", Some("0 */6 * * *"));
    let r = req(Request::DeployPipeline {
        pipeline: Box::new(p.clone()),
        service: Some(service()),
    })
    .await?;
    println!(
        "== deployPipeline demo_mysql.orders_metadata: {}",
        describe(&r)
    );

    let r = req(Request::RunPipeline {
        pipeline: Box::new(p.clone()),
        service: Some(service()),
        options: RunOptions::default(),
    })
    .await?;
    println!("== runPipeline: {}", describe(&r));
    let first = run_id(&r)?;
    wait_state(&cp, &mut printer, &first, PipelineState::Success).await?;

    let r = req(Request::GetIngestionLogs {
        pipeline: Box::new(p.clone()),
        run_id: first.clone(),
        after: None,
    })
    .await?;
    match r {
        Response::Result(OpResult::Logs(logs)) => {
            println!("== getIngestionLogs (page 1 of {}):", logs.total);
            for (task, text) in &logs.tasks {
                for line in text.lines() {
                    println!("  {task} | {line}");
                }
            }
        }
        other => bail!("logs failed: {}", describe(&other)),
    }

    match http_get(health_port, "/readyz").await {
        Ok(line) => println!("== GET /readyz on 127.0.0.1:{health_port}: {line}"),
        Err(e) => println!("== GET /readyz failed: {e}"),
    }
    let slow = pipeline("slow_profiler", None);
    let r = req(Request::RunPipeline {
        pipeline: Box::new(slow.clone()),
        service: Some(service()),
        options: RunOptions::default(),
    })
    .await?;
    println!("== runPipeline demo_mysql.slow_profiler: {}", describe(&r));
    let second = run_id(&r)?;
    wait_state(&cp, &mut printer, &second, PipelineState::Running).await?;
    let r = req(Request::KillIngestionRun {
        pipeline: Box::new(slow.clone()),
        run_id: second.clone(),
    })
    .await?;
    println!("== killIngestionRun: {}", describe(&r));
    wait_state(&cp, &mut printer, &second, PipelineState::Stopped).await?;

    let r = req(Request::GetQueuedPipelineStatus {
        pipeline: Box::new(p.clone()),
    })
    .await?;
    if let Response::Result(OpResult::Statuses { statuses }) = &r {
        println!(
            "== getQueuedPipelineStatus: {} run(s), latest {}",
            statuses.len(),
            statuses
                .first()
                .map(|s| s.pipeline_state.as_str())
                .unwrap_or("-")
        );
    }
    let r = req(Request::GetServiceStatus {}).await?;
    println!("== getServiceStatus: {}", describe(&r));
    let r = req(Request::ToggleIngestion {
        pipeline: Box::new(p.clone()),
        enabled: Some(false),
    })
    .await?;
    println!("== toggleIngestion (disable): {}", describe(&r));

    println!("== SIGTERM to the runner: it drains and says goodbye");
    util::sigterm(pid);
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .context("the runner did not exit within 30s of SIGTERM")??;
    printer.print_new(&cp);
    if !status.success() {
        bail!("the runner exited with {status}");
    }
    let leaked = cp
        .transcript()
        .iter()
        .any(|f| f.contains("Demo-Pa55-word") || f.contains("demo_reader"));
    if leaked {
        bail!("a frame sent to the control plane holds a secret value");
    }
    println!(
        "== runner exited cleanly ({status}); {} events stored, {} duplicates; no secret value in any of the {} frames received",
        cp.events().len(),
        cp.duplicates(),
        cp.transcript().len()
    );
    println!("demo OK");
    Ok(())
}

/// The status line and body of a plain HTTP GET on loopback.
async fn http_get(port: u16, path: &str) -> anyhow::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    tcp.write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes())
        .await?;
    let mut text = String::new();
    tcp.read_to_string(&mut text).await?;
    let status = text.lines().next().unwrap_or_default().to_owned();
    let body = text
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .trim()
        .to_owned();
    Ok(format!("{status} {body}"))
}

/// `cargo xtask control-plane [--addr 127.0.0.1:8080] [--token T]`: serves until Ctrl-C,
/// printing connections and events.
pub fn control_plane(args: &[String]) -> anyhow::Result<()> {
    let mut addr = "127.0.0.1:8080".to_owned();
    let mut token = "dev-token".to_owned();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--addr" => addr = it.next().context("--addr needs a value")?.clone(),
            "--token" => token = it.next().context("--token needs a value")?.clone(),
            other => bail!("unknown argument `{other}`"),
        }
    }
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        let cp = MockControlPlane::bind(&addr, MockOptions { token: token.clone(), ..Default::default() }).await?;
        println!("mock control plane on {} (token `{token}`); Ctrl-C to stop", cp.url());
        println!("point a runner at it: SERVER_URL={} AUTH_TOKEN={token} EXECUTOR_TYPE=local ingestion-runner run", cp.url());
        let mut printer = Printer { seen: HashSet::new() };
        let mut connected = 0;
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => return Ok(()),
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
            if cp.connections() != connected {
                connected = cp.connections();
                if let Ok(h) = cp.wait_connected(Duration::from_millis(10)).await {
                    println!("runner connected: {} ({}), executor {}", h.agent_id, h.runner_version, h.executor);
                }
            }
            printer.print_new(&cp);
        }
    })
}
