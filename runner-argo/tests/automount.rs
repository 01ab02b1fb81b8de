//! `INGESTION_AUTOMOUNT_SA_TOKEN=false`: Argo refuses such a Workflow unless its executor has a
//! service account, so the builder gives it the workflow's (and refuses without one).

use runner_argo::build::{BuildConfig, BuildError, RunRequest, build_run_workflow};
use serde_json::json;

fn pipeline() -> serde_json::Value {
    json!({
        "name": "orders", "fullyQualifiedName": "mysql_prod.orders", "pipelineType": "metadata",
        "sourceConfig": {"config": {"type": "DatabaseMetadata"}}, "airflowConfig": {},
        "openMetadataServerConnection": {"hostPort": "https://acme.getcollate.io/api"}
    })
}

fn service() -> serde_json::Value {
    json!({"name": "mysql_prod", "serviceType": "Mysql", "connection": {"config": {"type": "Mysql"}}})
}

#[test]
fn no_automount_gives_the_executor_the_service_account() {
    let bc = BuildConfig {
        automount_service_account_token: Some(false),
        service_account_name: Some("ingestion-workflow".into()),
        secrets_delivery: runner_argo::SecretsDelivery::Pod,
        ..BuildConfig::default()
    };
    let (p, s) = (pipeline(), service());
    let built = build_run_workflow(
        &bc,
        &RunRequest {
            pipeline: &p,
            service: Some(&s),
            run_id: "r1",
            overrides: None,
        },
    )
    .unwrap();
    let spec = serde_json::to_value(&built.workflow.spec).unwrap();
    assert_eq!(spec["automountServiceAccountToken"], false);
    assert_eq!(spec["executor"]["serviceAccountName"], "ingestion-workflow");
    assert_eq!(spec["serviceAccountName"], "ingestion-workflow");

    let bc = BuildConfig {
        service_account_name: None,
        ..bc
    };
    let err = build_run_workflow(
        &bc,
        &RunRequest {
            pipeline: &p,
            service: Some(&s),
            run_id: "r1",
            overrides: None,
        },
    )
    .unwrap_err();
    assert!(matches!(err, BuildError::Config(_)), "{err}");
    assert!(
        err.to_string().contains("INGESTION_SERVICE_ACCOUNT_NAME"),
        "{err}"
    );
}
