//! The ingestion framework's workflow config (what the workload reads from env `config`) for
//! one run. The shapes per pipeline type are built by `runner_argo::build::workflow_config` (one
//! implementation for both executors); this adapter applies the control plane's
//! `configOverride` and refuses pipeline types this runner does not know.
//!
//! It also applies the request checks of `runner_argo::build::guard` (settings only the
//! operator may choose, names and run ids unfit for objects, oversized configs) for every
//! executor, so a hostile request is refused before any `secret:` reference is resolved.

use runner_argo::BuildError;
use runner_argo::build::guard;
use runner_protocol::{IngestionPipeline, PipelineType};
use serde_json::Value;

use crate::executor::ExecutorError;

/// A run's workflow config and the pipeline entity it was built from.
#[derive(Debug)]
pub struct RunConfig {
    /// The workflow config (`secret:` references unresolved).
    pub config: Value,
    /// The pipeline entity as JSON, `configOverride` applied: what the Argo builders read.
    pub pipeline: Value,
}

/// Puts the control plane's `configOverride` in place of the pipeline's (JSON)
/// `sourceConfig.config`, creating `sourceConfig` when it is missing.
pub fn apply_override(pipeline: &mut Value, over: &Value) {
    match pipeline
        .get_mut("sourceConfig")
        .and_then(Value::as_object_mut)
    {
        Some(sc) => {
            sc.insert("config".into(), over.clone());
        }
        None => pipeline["sourceConfig"] = serde_json::json!({ "config": over }),
    }
}

/// Builds the workflow config for one run. `config_override` replaces `sourceConfig.config`.
pub fn build(
    pipeline: &IngestionPipeline,
    service: Option<&Value>,
    run_id: &str,
    config_override: Option<&Value>,
) -> Result<RunConfig, ExecutorError> {
    if let PipelineType::Other(t) = &pipeline.pipeline_type {
        return Err(ExecutorError::InvalidRequest(format!(
            "pipeline `{}` has pipelineType `{t}`, which this runner does not know; upgrade the runner",
            pipeline.fqn()
        )));
    }
    let mut pj = serde_json::to_value(pipeline).map_err(|e| {
        ExecutorError::InvalidRequest(format!("pipeline `{}`: {e}", pipeline.fqn()))
    })?;
    let refused = |e: BuildError| match e {
        BuildError::Forbidden { .. } => ExecutorError::Refused(e.to_string()),
        _ => ExecutorError::InvalidRequest(e.to_string()),
    };
    guard::check_pipeline(&pj).map_err(refused)?;
    guard::check_identifier("name", &pipeline.name, false).map_err(refused)?;
    guard::check_identifier("fullyQualifiedName", pipeline.fqn(), false).map_err(refused)?;
    guard::check_identifier("runId", run_id, true).map_err(refused)?;
    if let Some(over) = config_override {
        apply_override(&mut pj, over);
    }
    let config = runner_argo::build::workflow_config(&pj, service, Some(run_id)).map_err(|e| {
        ExecutorError::InvalidRequest(format!("pipeline `{}`: {e}", pipeline.fqn()))
    })?;
    Ok(RunConfig {
        config,
        pipeline: pj,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pipeline(t: &str) -> IngestionPipeline {
        serde_json::from_value(json!({
            "name": "p", "fullyQualifiedName": "mysql_prod.p", "pipelineType": t,
            "sourceConfig": {"config": {"type": "DatabaseMetadata", "markDeletedTables": true}},
            "airflowConfig": {}, "loggerLevel": "DEBUG",
            "openMetadataServerConnection": {"hostPort": "http://om:8585/api"}
        }))
        .unwrap()
    }

    fn service() -> Value {
        json!({"name": "mysql_prod", "serviceType": "Mysql", "connection": {"config": {"username": "secret:/db/creds/username"}}})
    }

    #[test]
    fn run_config_carries_service_run_and_references() {
        let c = build(&pipeline("metadata"), Some(&service()), "run-1", None)
            .unwrap()
            .config;
        assert_eq!(c["source"]["serviceName"], "mysql_prod");
        assert_eq!(
            c["source"]["serviceConnection"]["config"]["username"],
            "secret:/db/creds/username"
        );
        assert_eq!(c["workflowConfig"]["loggerLevel"], "DEBUG");
        assert_eq!(c["ingestionPipelineFQN"], "mysql_prod.p");
        assert_eq!(c["pipelineRunId"], "run-1");
    }

    #[test]
    fn override_replaces_source_config() {
        let over = json!({"type": "Profiler", "profileSample": 10});
        let built = build(&pipeline("profiler"), Some(&service()), "r", Some(&over)).unwrap();
        assert_eq!(built.config["source"]["sourceConfig"]["config"], over);
        assert_eq!(built.pipeline["sourceConfig"]["config"], over);
    }

    #[test]
    fn unknown_type_and_missing_server_connection_are_refused() {
        let err = build(&pipeline("quantumIngest"), None, "r", None).unwrap_err();
        assert!(err.to_string().contains("upgrade the runner"));
        let mut p = pipeline("metadata");
        p.open_metadata_server_connection = None;
        let err = build(&p, Some(&service()), "r", None).unwrap_err();
        assert!(
            err.to_string().contains("openMetadataServerConnection"),
            "{err}"
        );
    }
}
