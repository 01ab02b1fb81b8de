//! Load on the fake Argo Server through the client: N workflow creates (built by the
//! builders) with C in flight, then one list. Prints throughput and latency percentiles.
//!
//! `cargo run -p runner-argo --features fake --example fake_load -- [N] [C]`

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use runner_argo::build::{BuildConfig, RunRequest, build_run_workflow, runner_selector};
use runner_argo::fake::{FakeArgo, FakeConfig};
use runner_argo::{ArgoClient, ArgoClientConfig};
use serde_json::json;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let c: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(32);
    let fake = FakeArgo::start(FakeConfig::default())
        .await
        .expect("fake starts");
    let client = ArgoClient::new(ArgoClientConfig {
        endpoint: fake.url(),
        ..Default::default()
    })
    .unwrap();
    let bc = BuildConfig {
        runner_id: "load".into(),
        ..BuildConfig::default()
    };
    let pipeline = json!({
        "name": "load_pipeline", "fullyQualifiedName": "svc.load_pipeline", "pipelineType": "metadata",
        "sourceConfig": {"config": {"type": "DatabaseMetadata"}},
        "openMetadataServerConnection": {"hostPort": "http://om:8585/api", "authProvider": "openmetadata",
            "securityConfig": {"jwtToken": "secret:/bot/jwt"}},
        "airflowConfig": {"retries": 1}
    });
    let service =
        json!({"name": "svc", "serviceType": "Mysql", "connection": {"config": {"type": "Mysql"}}});
    let wfs: Vec<_> = (0..n)
        .map(|i| {
            let id = format!("run-{i}");
            build_run_workflow(
                &bc,
                &RunRequest {
                    pipeline: &pipeline,
                    service: Some(&service),
                    run_id: &id,
                    overrides: None,
                },
            )
            .unwrap()
            .workflow
        })
        .collect();
    let t0 = Instant::now();
    let mut lat: Vec<Duration> = futures_util::stream::iter(wfs.iter())
        .map(|wf| {
            let client = client.clone();
            async move {
                let s = Instant::now();
                client
                    .create_workflow("ingestion", wf)
                    .await
                    .expect("create");
                s.elapsed()
            }
        })
        .buffer_unordered(c)
        .collect()
        .await;
    let total = t0.elapsed();
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    let t1 = Instant::now();
    let listed = client
        .list_workflows("ingestion", &runner_selector("load"))
        .await
        .unwrap()
        .items
        .len();
    println!(
        "creates={n} in_flight={c} total={total:?} throughput={:.0}/s p50={:?} p99={:?} max={:?}; list of {listed} took {:?}; requests={} rejected={}",
        n as f64 / total.as_secs_f64(),
        pct(0.50),
        pct(0.99),
        lat.last().unwrap(),
        t1.elapsed(),
        fake.request_count(),
        fake.rejected().len(),
    );
}
