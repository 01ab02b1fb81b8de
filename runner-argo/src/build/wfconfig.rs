//! The ingestion workflow config (env `config` of the pod) derived from an
//! IngestionPipeline and its service, following the shape of OpenMetadata's
//! `openMetadataWorkflowConfig` (`schema/metadataIngestion/workflow.json`) and, for
//! applications, `OpenMetadataApplicationConfig`.
//!
//! `secret:` references are left as they are: resolving them is the caller's business
//! (runner-secrets, SECRETS_DELIVERY=runner) or the pod's (SECRETS_DELIVERY=pod).

use serde_json::{Map, Value, json};

use super::BuildError;

fn s<'a>(v: &'a Value, ptr: &str) -> Option<&'a str> {
    v.pointer(ptr)
        .and_then(Value::as_str)
        .filter(|x| !x.is_empty())
}

/// Build the workflow config for one run. `run_id` is the `pipelineRunId`; a schedule passes
/// `None` (the pod's env `pipelineRunId={{workflow.uid}}` gives each scheduled run its id).
pub fn workflow_config(
    pipeline: &Value,
    service: Option<&Value>,
    run_id: Option<&str>,
) -> Result<Value, BuildError> {
    let ptype = s(pipeline, "/pipelineType").ok_or_else(|| BuildError::missing("pipelineType"))?;
    let fqn = s(pipeline, "/fullyQualifiedName")
        .ok_or_else(|| BuildError::missing("fullyQualifiedName"))?;
    let server = pipeline
        .get("openMetadataServerConnection")
        .filter(|v| v.is_object())
        .cloned()
        .ok_or_else(|| BuildError::missing("openMetadataServerConnection"))?;
    let logger = s(pipeline, "/loggerLevel").unwrap_or("INFO");
    let mut workflow_cfg = json!({ "loggerLevel": logger, "openMetadataServerConfig": server });
    if let Some(r) = pipeline.get("raiseOnError").and_then(Value::as_bool) {
        workflow_cfg["raiseOnError"] = Value::Bool(r);
    }
    let source_config = pipeline
        .get("sourceConfig")
        .cloned()
        .unwrap_or_else(|| json!({"config": {}}));

    if ptype == "application" {
        let cfg = source_config.get("config").cloned().unwrap_or_default();
        let mut out = json!({
            "sourcePythonClass": cfg.get("sourcePythonClass").cloned().unwrap_or(Value::Null),
            "appConfig": cfg.get("appConfig").cloned().unwrap_or(Value::Null),
            "appPrivateConfig": cfg.get("appPrivateConfig").cloned().unwrap_or(Value::Null),
            "workflowConfig": workflow_cfg,
            "ingestionPipelineFQN": fqn,
            "pipelineRunId": run_id,
        });
        strip_nulls(&mut out);
        check_config_size(&out)?;
        return Ok(out);
    }

    let service_name = s(pipeline, "/service/name")
        .or_else(|| service.and_then(|sv| s(sv, "/name")))
        .unwrap_or_else(|| fqn.split('.').next().unwrap_or(fqn));
    let service_type = service
        .and_then(|sv| s(sv, "/serviceType").or_else(|| s(sv, "/connection/config/type")))
        .map(str::to_ascii_lowercase);
    let need_service = || {
        service_type.clone().ok_or_else(|| BuildError::Invalid {
            field: "service".into(),
            reason: format!(
                "a {ptype} pipeline needs its service entity (serviceType and connection)"
            ),
        })
    };
    let connection = service.and_then(|sv| sv.get("connection")).cloned();

    let mut source = Map::new();
    let (source_type, service_name, with_conn) = match ptype {
        "metadata" | "profiler" | "autoClassification" => {
            (need_service()?, service_name.to_owned(), true)
        }
        "usage" => (
            format!("{}-usage", need_service()?),
            service_name.to_owned(),
            true,
        ),
        "lineage" => (
            format!("{}-lineage", need_service()?),
            service_name.to_owned(),
            true,
        ),
        "dbt" => ("dbt".to_owned(), service_name.to_owned(), true),
        "TestSuite" => ("testsuite".to_owned(), service_name.to_owned(), false),
        "dataInsight" => ("dataInsight".to_owned(), "OpenMetadata".to_owned(), false),
        "elasticSearchReindex" => (
            "metadata_elasticsearch".to_owned(),
            "OpenMetadata".to_owned(),
            false,
        ),
        other => (
            service_type.clone().unwrap_or_else(|| other.to_owned()),
            service_name.to_owned(),
            true,
        ),
    };
    source.insert("type".into(), Value::String(source_type));
    source.insert("serviceName".into(), Value::String(service_name.clone()));
    if with_conn && let Some(c) = connection {
        source.insert("serviceConnection".into(), c);
    }
    source.insert("sourceConfig".into(), source_config);

    let mut out = Map::new();
    out.insert("source".into(), Value::Object(source));
    match ptype {
        "usage" => {
            let file = format!(
                "/tmp/{}_usage",
                super::names::slug(&service_name, 60).replace('-', "_")
            );
            out.insert(
                "processor".into(),
                json!({"type": "query-parser", "config": {}}),
            );
            out.insert(
                "stage".into(),
                json!({"type": "table-usage", "config": {"filename": file}}),
            );
            out.insert(
                "bulkSink".into(),
                json!({"type": "metadata-usage", "config": {"filename": file}}),
            );
        }
        "profiler" | "autoClassification" => {
            out.insert(
                "processor".into(),
                json!({"type": "orm-profiler", "config": {}}),
            );
            out.insert(
                "sink".into(),
                json!({"type": "metadata-rest", "config": {}}),
            );
        }
        "TestSuite" => {
            out.insert(
                "processor".into(),
                json!({"type": "orm-test-runner", "config": {}}),
            );
            out.insert(
                "sink".into(),
                json!({"type": "metadata-rest", "config": {}}),
            );
        }
        "dataInsight" => {
            out.insert(
                "processor".into(),
                json!({"type": "data-insight-processor", "config": {}}),
            );
            out.insert(
                "sink".into(),
                json!({"type": "metadata-rest", "config": {}}),
            );
        }
        _ => {
            out.insert(
                "sink".into(),
                json!({"type": "metadata-rest", "config": {}}),
            );
        }
    }
    out.insert("workflowConfig".into(), workflow_cfg);
    out.insert("ingestionPipelineFQN".into(), Value::String(fqn.to_owned()));
    if let Some(r) = run_id {
        out.insert("pipelineRunId".into(), Value::String(r.to_owned()));
    }
    if let Some(b) = pipeline
        .get("enableStreamableLogs")
        .and_then(Value::as_bool)
    {
        out.insert("enableStreamableLogs".into(), Value::Bool(b));
    }
    let out = Value::Object(out);
    check_config_size(&out)?;
    Ok(out)
}

/// Points a workflow config at the platform API `url` (`SERVER_HOST_API_URL`): sets
/// `workflowConfig.openMetadataServerConfig.hostPort`, creating the object when it is missing.
pub fn set_server_host(config: &mut Value, url: &str) {
    let Some(wc) = config
        .get_mut("workflowConfig")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    let server = wc.entry("openMetadataServerConfig").or_insert(Value::Null);
    if !server.is_object() {
        *server = Value::Object(Default::default());
    }
    server["hostPort"] = Value::String(url.to_owned());
}

fn strip_nulls(v: &mut Value) {
    if let Value::Object(m) = v {
        m.retain(|_, x| !x.is_null());
    }
}

/// The text put in env `config`: JSON, which is valid YAML for the framework's loader.
/// Largest workflow config accepted (bytes of its JSON text, references unresolved). The
/// config goes into a Kubernetes Secret (at most 1 MiB) or, with SECRETS_DELIVERY=pod, twice
/// into the Workflow (main container and exit handler; etcd refuses objects over 1.5 MiB); a
/// local run gets it as one environment variable.
pub const MAX_CONFIG_BYTES: usize = 512 * 1024;

/// Refuses a config larger than [`MAX_CONFIG_BYTES`]. Counts the bytes of its JSON text
/// without building the text.
pub fn check_config_size(config: &Value) -> Result<(), BuildError> {
    /// An `io::Write` that only counts.
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing into a counter cannot fail (every key of a `Value` map is a string).
    let _ = serde_json::to_writer(&mut count, config);
    check_config_len(count.0)
}

/// Refuses a config text of `n` bytes when it is larger than [`MAX_CONFIG_BYTES`].
pub fn check_config_len(n: usize) -> Result<(), BuildError> {
    if n > MAX_CONFIG_BYTES {
        return Err(BuildError::Invalid {
            field: "config".into(),
            reason: format!(
                "the workflow config is {n} bytes; at most {MAX_CONFIG_BYTES} are accepted \
                 (sourceConfig, the service connection and configOverride make it up)"
            ),
        });
    }
    Ok(())
}

pub fn config_text(config: &Value) -> String {
    serde_json::to_string(config).unwrap_or_default()
}
