#![allow(dead_code)]

use std::path::{Path, PathBuf};

use runner_argo::build::{BuildConfig, Resources, SecretsDelivery, merge::parse_spec};
use serde_json::{Value, json};

pub fn fixture(name: &str) -> Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    serde_json::from_str(
        &std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())),
    )
    .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Compare `v` with the committed snapshot `tests/snapshots/<name>.json`.
/// `UPDATE_SNAPSHOTS=1 cargo test -p runner-argo` rewrites them (review the diff!).
pub fn snapshot(name: &str, v: &Value) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(format!("{name}.json"));
    let text = serde_json::to_string_pretty(v).unwrap() + "\n";
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, &text).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "snapshot {} missing: run with UPDATE_SNAPSHOTS=1 and review it",
            path.display()
        )
    });
    assert!(
        want == text,
        "snapshot {name} differs (UPDATE_SNAPSHOTS=1 to accept after review)\n--- want\n{want}\n--- got\n{text}"
    );
}

/// A runner configuration exercising every setting.
pub fn full_config() -> BuildConfig {
    BuildConfig {
        runner_id: "runner-eu-1".into(),
        image: "docker.getcollate.io/openmetadata/ingestion-base:1.9.0".into(),
        image_pull_policy: Some("IfNotPresent".into()),
        namespace: "ingestion".into(),
        image_pull_secrets: vec!["collate-registry".into()],
        service_account_name: Some("om-ingestion".into()),
        automount_service_account_token: Some(false),
        extra_envs: vec![("HTTPS_PROXY".into(), "http://proxy:3128".into()), ("LABEL".into(), "a,b".into())],
        ingestion_resources: Resources {
            cpu_request: Some("500m".into()),
            cpu_limit: Some("2".into()),
            memory_request: Some("1Gi".into()),
            memory_limit: Some("4Gi".into()),
        },
        automation_resources: Resources {
            cpu_request: Some("100m".into()),
            cpu_limit: Some("500m".into()),
            memory_request: Some("256Mi".into()),
            memory_limit: Some("512Mi".into()),
        },
        ttl_seconds_after_completion: Some(3600),
        pod_gc_delete_delay: "30m".into(),
        default_active_deadline_seconds: Some(86_400),
        pipeline_type_configs: json!({
            "automation": {"priorityClassName": "high-priority"},
            "profiler": {"nodeSelector": {"workload": "profiling"}}
        }),
        container_spec: Some(
            parse_spec(
                "volumeMounts:\n  - name: ca\n    mountPath: /etc/ssl/custom\nsecurityContext:\n  runAsNonRoot: true\n",
                "container",
            )
            .unwrap(),
        ),
        workflow_spec: Some(
            parse_spec(
                "volumes:\n  - name: ca\n    configMap:\n      name: custom-ca\ntolerations:\n  - key: dedicated\n    operator: Equal\n    value: ingestion\n    effect: NoSchedule\n",
                "workflow",
            )
            .unwrap(),
        ),
        secrets_delivery: SecretsDelivery::Runner,
        dynamic_ingestion_version: false,
        pod_env: vec![],
        server_host_api_url: None,
    }
}

pub fn specs_dir() -> Option<PathBuf> {
    let d = runner_argo::schema_dir();
    if d.join("swagger.json").exists() && d.join("argoproj.io_workflows.yaml").exists() {
        Some(d)
    } else {
        eprintln!(
            "SKIPPED: Argo API definitions not found in {} (set ARGO_SPECS_DIR to shared/specs/argo)",
            d.display()
        );
        None
    }
}
