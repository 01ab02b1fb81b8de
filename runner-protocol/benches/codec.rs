//! Decode and encode of the frames that dominate the wire: a `runPipeline` request with a
//! realistic pipeline and service (about 4 KB), a run-status event, a heartbeat.
//!
//! `cargo bench -p runner-protocol --bench codec` (add `-- --quick` for a short run). Figures and
//! the machine they were measured on: docs/fuzzing.md.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use runner_protocol::{Limits, decode, encode};
use serde_json::{Value, json};
use std::hint::black_box;

/// A metadata pipeline as OpenMetadata sends it: source config with filter patterns, schedule,
/// owners, logger level, plus a MySQL service connection with `secret:` references.
fn run_pipeline_frame() -> String {
    let tables: Vec<Value> = (0..40)
        .map(|i| json!(format!("^sales_schema_{i}\\.orders_\\d+$")))
        .collect();
    let frame = json!({
        "v": 1,
        "id": "c3-0b7e3a1f",
        "type": "request",
        "body": {
            "op": "runPipeline",
            "pipeline": {
                "id": "2b3c4d5e-6f70-4a1b-9c2d-3e4f5a6b7c8d",
                "name": "mysql_prod_metadata",
                "displayName": "MySQL production metadata",
                "fullyQualifiedName": "mysql_prod.mysql_prod_metadata",
                "pipelineType": "metadata",
                "enabled": true,
                "deployed": true,
                "loggerLevel": "INFO",
                "owners": [{"id": "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a", "type": "team", "name": "data-platform"}],
                "sourceConfig": {"config": {
                    "type": "DatabaseMetadata",
                    "markDeletedTables": true,
                    "includeTables": true,
                    "includeViews": true,
                    "includeTags": true,
                    "useFqnForFiltering": false,
                    "schemaFilterPattern": {"includes": ["^sales_schema_.*$", "^finance$"], "excludes": ["^information_schema$", "^performance_schema$", "^mysql$", "^sys$"]},
                    "tableFilterPattern": {"includes": tables, "excludes": ["^tmp_.*$", "^_airbyte_.*$"]},
                    "databaseFilterPattern": {"includes": [".*"]}
                }},
                "airflowConfig": {"scheduleInterval": "0 */6 * * *", "pipelineTimezone": "Europe/Madrid", "retries": 3, "retryDelay": 300, "maxActiveRuns": 1, "workflowTimeout": 7200, "concurrency": 1, "pausePipeline": false, "pipelineCatchup": false},
                "openMetadataServerConnection": {"hostPort": "https://metadata.example.com/api", "authProvider": "openmetadata", "securityConfig": {"jwtToken": "secret:/openmetadata/bot/jwt"}, "verifySSL": "validate"},
                "service": {"id": "1a2b3c4d-5e6f-4708-9192-a3b4c5d6e7f8", "type": "databaseService", "name": "mysql_prod", "fullyQualifiedName": "mysql_prod"},
                "version": 0.4,
                "updatedAt": 1764417598000u64,
                "updatedBy": "admin"
            },
            "service": {
                "id": "1a2b3c4d-5e6f-4708-9192-a3b4c5d6e7f8",
                "name": "mysql_prod",
                "serviceType": "Mysql",
                "connection": {"config": {
                    "type": "Mysql",
                    "scheme": "mysql+pymysql",
                    "username": "secret:/prod/mysql/creds/username",
                    "authType": {"password": "secret:/prod/mysql/creds/password"},
                    "hostPort": "mysql.internal.example.com:3306",
                    "databaseSchema": "sales_schema_1",
                    "sslConfig": {"caCertificate": "secret:/prod/mysql/ca"},
                    "connectionOptions": {"connect_timeout": "30", "read_timeout": "600"},
                    "connectionArguments": {"init_command": "SET SESSION sql_mode='ANSI_QUOTES'"},
                    "supportsMetadataExtraction": true,
                    "supportsDBTExtraction": true,
                    "supportsProfiler": true,
                    "supportsQueryComment": true
                }},
                "owners": [{"id": "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a", "type": "team", "name": "data-platform"}],
                "tags": [{"tagFQN": "Tier.Tier1", "source": "Classification", "labelType": "Manual", "state": "Confirmed"}]
            },
            "options": {"runId": "6a1f0c2e-8b3d-4e5f-9a0b-1c2d3e4f5a6b"}
        }
    });
    frame.to_string()
}

fn run_status_frame() -> String {
    json!({"v":1,"id":"r19","type":"event","body":{"seq":8,"event":{"kind":"runStatus",
        "pipelineFqn":"mysql_prod.mysql_prod_metadata","pipelineType":"metadata",
        "status":{"runId":"6a1f0c2e-8b3d-4e5f-9a0b-1c2d3e4f5a6b","pipelineState":"running",
        "timestamp":1764417598000u64}}}})
    .to_string()
}

fn heartbeat_frame() -> String {
    json!({"v":1,"id":"r14","type":"heartbeat","body":{"readiness":{"executor":{"ok":true},
        "secrets":{"ok":true}},"load":{"runsInFlight":3,"runCapacity":20,"requestsInFlight":1,
        "requestCapacity":32,"eventsPending":2}}})
    .to_string()
}

fn bench(c: &mut Criterion) {
    let limits = Limits::DEFAULT;
    for (name, text) in [
        ("run_pipeline", run_pipeline_frame()),
        ("run_status_event", run_status_frame()),
        ("heartbeat", heartbeat_frame()),
    ] {
        let frame = decode(text.as_bytes(), &limits)
            .unwrap_or_else(|e| panic!("the {name} frame does not decode: {e}"));
        let mut g = c.benchmark_group(format!("codec/{name}"));
        g.throughput(Throughput::Bytes(text.len() as u64));
        g.bench_function(format!("decode_{}_bytes", text.len()), |b| {
            b.iter(|| decode(black_box(text.as_bytes()), &limits))
        });
        g.bench_function("encode", |b| b.iter(|| encode(black_box(&frame))));
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
