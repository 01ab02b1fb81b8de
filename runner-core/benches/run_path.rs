//! The runner's CPU work for one `runPipeline` request under the Argo executor with
//! `SECRETS_DELIVERY=pod`, without the sockets: decode the frame, build and resolve the
//! workflow config, build the Workflow, serialize the create body. The same request
//! (`runner_core::testkit::bench_run_request`) and settings (`testkit::BENCH_*`) as `cargo
//! xtask bench-argo`, so a change here can be told apart from the noise of the end-to-end
//! benchmark on a shared machine. The secret values come from an in-memory provider instead of
//! bench-argo's environment variables (a benchmark cannot set its own environment safely);
//! they are cached after the first request in both.
//!
//! `cargo bench -p runner-core --bench run_path` (add `-- --quick` for a short run). Figures:
//! docs/benchmarks.md.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use runner_argo::build::{BuildConfig, RunRequest, build_run_workflow_with_config};
use runner_core::prepare::Preparer;
use runner_core::testkit::{BENCH_AGENT_ID, BENCH_IMAGE, BENCH_NAMESPACE, bench_run_request};
use runner_protocol::{Frame, Limits, Message, MessageId, Request, decode, encode};
use runner_secrets::providers::memory::MemoryProvider;
use runner_secrets::{ResolverOptions, SecretResolver};
use serde_json::Value;

/// The frame `cargo xtask bench-argo`'s control plane sends for run `i`.
fn frame(i: usize) -> String {
    encode(&Frame {
        v: 1,
        id: MessageId::new(format!("c-{i}"), 128).expect("id"),
        re: None,
        message: Message::Request(bench_run_request(i)),
    })
}

fn settings() -> BuildConfig {
    BuildConfig::from_lookup(|k| {
        Some(
            match k {
                "AGENT_ID" => BENCH_AGENT_ID,
                "INGESTION_IMAGE" => BENCH_IMAGE,
                "INGESTION_NAMESPACE" => BENCH_NAMESPACE,
                "SECRETS_MANAGER" => "env",
                "SECRETS_DELIVERY" => "pod",
                _ => return None,
            }
            .to_owned(),
        )
    })
    .expect("settings")
}

fn preparer() -> Preparer {
    let provider = MemoryProvider::new();
    provider.insert("demo/bot-token", "bench-jwt");
    provider.insert("mysql/prod/password", "bench-password");
    let resolver = SecretResolver::new(Arc::new(provider), ResolverOptions::default());
    Preparer::new(Some(Arc::new(resolver)), None)
}

/// The work between a frame read and the create body written, as the runner does it.
async fn one(frame: &str, preparer: &Preparer, bc: &BuildConfig) -> Vec<u8> {
    let decoded = decode(frame.as_bytes(), &Limits::default()).expect("frame");
    let Message::Request(Request::RunPipeline {
        pipeline,
        service,
        options,
    }) = decoded.message
    else {
        panic!("not a runPipeline request");
    };
    let run_id = options.run_id.expect("run id");
    let prepared = preparer
        .pipeline_run(&pipeline, service.as_ref(), &run_id, None)
        .await
        .expect("prepared");
    let built = build_run_workflow_with_config(
        bc,
        &RunRequest {
            pipeline: &prepared.pipeline,
            service: service.as_ref(),
            run_id: &run_id,
            overrides: None,
        },
        prepared.config.into_original(),
    )
    .expect("built");
    // The body of Argo Server's create call, as runner-argo's client writes it.
    #[derive(serde::Serialize)]
    struct Create<'a> {
        namespace: &'a str,
        workflow: &'a runner_argo::model::Workflow,
    }
    serde_json::to_vec(&Create {
        namespace: BENCH_NAMESPACE,
        workflow: &built.workflow,
    })
    .expect("body")
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let frames: Vec<String> = (0..64).map(frame).collect();
    let preparer = preparer();
    let bc = settings();
    // What the benchmark measures is what the runner sends: check it once.
    let body: Value =
        serde_json::from_slice(&rt.block_on(one(&frames[0], &preparer, &bc))).expect("json");
    let env = &body["workflow"]["spec"]["templates"][0]["container"]["env"];
    assert!(
        env.to_string().contains("secret:/mysql/prod/password"),
        "pod delivery passes references through: {env}"
    );
    assert!(!body.to_string().contains("bench-password"));

    let mut g = c.benchmark_group("run_path");
    let mut i = 0;
    g.bench_function("decode", |b| {
        b.iter(|| {
            i = (i + 1) % frames.len();
            black_box(decode(frames[i].as_bytes(), &Limits::default()).expect("frame"))
        })
    });
    g.bench_function("frame_to_create_body", |b| {
        b.iter(|| {
            i = (i + 1) % frames.len();
            black_box(rt.block_on(one(&frames[i], &preparer, &bc)))
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
