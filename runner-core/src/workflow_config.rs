//! The ingestion framework's workflow config (what the container reads from env `config`), built
//! from an IngestionPipeline and its service the way OpenMetadata's own orchestrator clients do.

use runner_protocol::{IngestionPipeline, PipelineType};
use serde_json::{Value, json};

use crate::executor::ExecutorError;

/// Builds the workflow config for one run. `config_override` replaces `sourceConfig.config`.
pub fn build(
    pipeline: &IngestionPipeline,
    service: Option<&Value>,
    run_id: &str,
    config_override: Option<&Value>,
) -> Result<Value, ExecutorError> {
    if let PipelineType::Other(t) = &pipeline.pipeline_type {
        return Err(ExecutorError::InvalidRequest(format!(
            "pipeline `{}` has pipelineType `{t}`, which this runner does not know; upgrade the runner",
            pipeline.fqn()
        )));
    }
    let mut source_config = pipeline.source_config.clone();
    if let Some(over) = config_override {
        match source_config.as_object_mut() {
            Some(obj) => {
                obj.insert("config".into(), over.clone());
            }
            None => source_config = json!({ "config": over }),
        }
    }
    let service_name = service
        .and_then(|s| s.get("name"))
        .and_then(Value::as_str)
        .or(pipeline.service.as_ref().and_then(|s| s.name.as_deref()))
        .unwrap_or_default();
    let service_type = service
        .and_then(|s| s.get("serviceType"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_ascii_lowercase();
    let connection = service
        .and_then(|s| s.get("connection"))
        .cloned()
        .unwrap_or(Value::Null);

    let source_type = match pipeline.pipeline_type {
        PipelineType::Usage => format!("{service_type}-usage"),
        PipelineType::Lineage => format!("{service_type}-lineage"),
        PipelineType::Dbt => "dbt".to_owned(),
        _ => service_type,
    };
    let mut config = json!({
        "source": {
            "type": source_type,
            "serviceName": service_name,
            "serviceConnection": connection,
            "sourceConfig": source_config,
        },
        "sink": { "type": "metadata-rest", "config": {} },
        "workflowConfig": {
            "loggerLevel": pipeline.logger_level.as_deref().unwrap_or("INFO"),
            "openMetadataServerConfig": pipeline.open_metadata_server_connection.clone().unwrap_or(Value::Null),
        },
        "ingestionPipelineFQN": pipeline.fqn(),
        "pipelineRunId": run_id,
    });
    let processor = match pipeline.pipeline_type {
        PipelineType::Profiler => Some("orm-profiler"),
        PipelineType::TestSuite => Some("orm-test-runner"),
        PipelineType::AutoClassification => Some("tag-pii-processor"),
        _ => None,
    };
    if let Some(processor) = processor {
        config["processor"] = json!({ "type": processor, "config": {} });
    }
    if pipeline.pipeline_type == PipelineType::Usage {
        config["stage"] =
            json!({ "type": "table-usage", "config": { "filename": "/tmp/table_usage" } });
        config["bulkSink"] =
            json!({ "type": "metadata-usage", "config": { "filename": "/tmp/table_usage" } });
        if let Some(obj) = config.as_object_mut() {
            obj.remove("sink");
        }
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipeline(t: &str) -> IngestionPipeline {
        serde_json::from_value(json!({
            "name": "p", "fullyQualifiedName": "mysql_prod.p", "pipelineType": t,
            "sourceConfig": {"config": {"type": "DatabaseMetadata", "markDeletedTables": true}},
            "airflowConfig": {}, "loggerLevel": "DEBUG"
        }))
        .unwrap()
    }

    #[test]
    fn metadata_config_carries_service_and_run() {
        let service = json!({"name": "mysql_prod", "serviceType": "Mysql", "connection": {"config": {"username": "secret:/db/creds/username"}}});
        let c = build(&pipeline("metadata"), Some(&service), "run-1", None).unwrap();
        assert_eq!(c["source"]["type"], "mysql");
        assert_eq!(c["source"]["serviceName"], "mysql_prod");
        assert_eq!(
            c["source"]["serviceConnection"]["config"]["username"],
            "secret:/db/creds/username"
        );
        assert_eq!(c["workflowConfig"]["loggerLevel"], "DEBUG");
        assert_eq!(c["ingestionPipelineFQN"], "mysql_prod.p");
        assert_eq!(c["pipelineRunId"], "run-1");
        assert!(c.get("processor").is_none());
    }

    #[test]
    fn override_and_type_specific_steps() {
        let over = json!({"type": "Profiler", "profileSample": 10});
        let c = build(&pipeline("profiler"), None, "r", Some(&over)).unwrap();
        assert_eq!(c["processor"]["type"], "orm-profiler");
        assert_eq!(c["source"]["sourceConfig"]["config"], over);
        let c = build(
            &pipeline("usage"),
            Some(&json!({"name": "s", "serviceType": "BigQuery"})),
            "r",
            None,
        )
        .unwrap();
        assert_eq!(c["source"]["type"], "bigquery-usage");
        assert_eq!(c["bulkSink"]["type"], "metadata-usage");
        assert!(c.get("sink").is_none());
    }

    #[test]
    fn unknown_type_is_refused() {
        let err = build(&pipeline("quantumIngest"), None, "r", None).unwrap_err();
        assert!(err.to_string().contains("upgrade the runner"));
    }
}
