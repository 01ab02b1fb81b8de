//! `xtask floor-runner`: the least a runner could do per `runPipeline` request, for
//! `cargo xtask bench-argo --floor`.
//!
//! A separate process (so it is placed and measured like the runner) that speaks the runner's
//! half of the protocol over the same WebSocket library and posts to Argo with the same client
//! as the benchmark's straight path, and does nothing else: each request's frame is decoded, the
//! Workflow for its run id is looked up in bodies built at start (no config, no secrets, no
//! build per request), posted with `ArgoClient::create_workflow`, and answered `200`. No watch,
//! no status events, no admission, no dedup, no logs.
//!
//! Whatever ratio the benchmark measures with this process in the runner's place is a floor
//! for any runner in this harness on this machine: a real one does all of this and more.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use futures_util::{SinkExt, StreamExt};
use runner_argo::model::Workflow;
use runner_argo::{ArgoClient, ArgoClientConfig};
use runner_protocol::{
    ErrorBody, ErrorCode, Heartbeat, Hello, Limits, OpResult, PipelineServiceClientResponse,
    Request, Response, RunnerInput, RunnerSession, SUPPORTED_VERSIONS,
};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// `floor-runner` reads `SERVER_URL`, `AUTH_TOKEN` and `PIPELINE_SERVICE_CLIENT_ENDPOINT`
/// (set by `bench-argo`), and builds its bodies as the benchmark does.
pub fn main(_args: &[String]) -> anyhow::Result<()> {
    let var = |k: &str| std::env::var(k).with_context(|| format!("floor-runner needs {k}"));
    let server = var("SERVER_URL")?;
    let token = var("AUTH_TOKEN")?;
    let argo = var("PIPELINE_SERVICE_CLIENT_ENDPOINT")?;
    // The runner's runtime: one worker on the multi-thread scheduler.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let (settings, bodies) = crate::bench_argo::all_bodies().await?;
        let bodies: Arc<HashMap<String, Workflow>> = Arc::new(bodies);
        let client = ArgoClient::new(ArgoClientConfig::from_lookup(|k| {
            if k == "PIPELINE_SERVICE_CLIENT_ENDPOINT" {
                Some(argo.clone())
            } else {
                settings.get(k).cloned()
            }
        })?)?;
        serve(&server, &token, client, bodies).await
    })
}

async fn serve(
    server: &str,
    token: &str,
    client: ArgoClient,
    bodies: Arc<HashMap<String, Workflow>>,
) -> anyhow::Result<()> {
    let mut req = server.into_client_request()?;
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse()?);
    let (ws, _) = tokio_tungstenite::connect_async(req).await?;
    let (mut sink, mut stream) = ws.split();
    let mut session = RunnerSession::new(
        Hello {
            agent_id: runner_core::testkit::BENCH_AGENT_ID.into(),
            instance_id: format!("floor-{}", std::process::id()),
            runner_version: "floor".into(),
            protocol_versions: SUPPORTED_VERSIONS.to_vec(),
            capabilities: vec![],
            executor: "argo".into(),
            namespace: runner_core::testkit::BENCH_NAMESPACE.into(),
            last_event_seq: 0,
        },
        Limits::default(),
    );
    sink.send(Message::text(session.hello_frame())).await?;
    let (tx, mut rx) = mpsc::channel::<(runner_protocol::MessageId, Response)>(1024);
    let mut heartbeat = tokio::time::interval(Duration::from_secs(3600));
    // `bench-argo` stops it as it stops the runner.
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            _ = sigterm.recv() => return Ok(()),
            frame = stream.next() => {
                let input = match frame {
                    Some(Ok(Message::Text(t))) => session.receive(t.as_bytes()),
                    Some(Ok(Message::Binary(b))) => session.receive(&b),
                    Some(Ok(Message::Close(_))) | None => return Ok(()),
                    Some(Err(e)) => return Err(e.into()),
                    Some(Ok(_)) => continue,
                };
                match input {
                    RunnerInput::Accepted(_) => {
                        let every = session.heartbeat_interval().unwrap_or(Duration::from_secs(30));
                        heartbeat = tokio::time::interval(every);
                    }
                    RunnerInput::Request { id, request } => {
                        let run_id = match request {
                            Request::RunPipeline { options, .. } => options.run_id.unwrap_or_default(),
                            Request::Ping {} => {
                                let text = session.respond(&id, Response::Result(OpResult::Pong {}));
                                sink.send(Message::text(text)).await?;
                                continue;
                            }
                            other => {
                                let error = ErrorBody::new(
                                    ErrorCode::UnknownOperation,
                                    format!("the floor runner answers `runPipeline` and `ping` only, not `{}`", other.op()),
                                );
                                let text = session.respond(&id, Response::Error(error));
                                sink.send(Message::text(text)).await?;
                                continue;
                            }
                        };
                        let (client, bodies, tx) = (client.clone(), bodies.clone(), tx.clone());
                        tokio::spawn(async move {
                            // A run the benchmark did not prepare a body for: not found.
                            let code = match bodies.get(&run_id) {
                                Some(wf) => match client.create_workflow(runner_core::testkit::BENCH_NAMESPACE, wf).await {
                                    Ok(_) => 200,
                                    Err(_) => 500,
                                },
                                None => 404,
                            };
                            let _ = tx.send((id, Response::Result(OpResult::PipelineResponse(PipelineServiceClientResponse {
                                code,
                                platform: "argo".into(),
                                reason: None,
                                version: None,
                                run_id: Some(run_id),
                            })))).await;
                        });
                    }
                    RunnerInput::Reply(text) => sink.send(Message::text(text)).await?,
                    RunnerInput::Rejected(r) => anyhow::bail!("rejected: {r:?}"),
                    RunnerInput::Goodbye(_) => return Ok(()),
                    _ => {}
                }
            }
            Some((id, response)) = rx.recv() => {
                // Replies ready together leave in one write, as the runner's do.
                sink.feed(Message::text(session.respond(&id, response))).await?;
                while let Ok((id, response)) = rx.try_recv() {
                    sink.feed(Message::text(session.respond(&id, response))).await?;
                }
                sink.flush().await?;
            }
            _ = heartbeat.tick() => {
                if session.heartbeat_interval().is_some() {
                    sink.send(Message::text(session.heartbeat(Heartbeat { readiness: None, load: None }))).await?;
                }
            }
        }
    }
}
