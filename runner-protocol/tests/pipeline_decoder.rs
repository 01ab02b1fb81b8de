//! The hand-written `Deserialize` of `IngestionPipeline` (and its `airflowConfig` and `service`)
//! against serde's derive with `#[serde(flatten)]`, which it replaced for speed: on any object
//! built from the known keys (right and wrong types, nulls, repeats) and unknown keys, both
//! accept the same inputs and produce the same values.

use proptest::prelude::*;
use runner_protocol::{AirflowConfig, EntityReference, IngestionPipeline, PipelineType};
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// The derive the hand-written decoder replaced.
#[derive(Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReferencePipeline {
    #[serde(default)]
    id: Option<String>,
    name: String,
    #[serde(default)]
    fully_qualified_name: Option<String>,
    pipeline_type: PipelineType,
    #[serde(default)]
    source_config: Value,
    #[serde(default)]
    airflow_config: ReferenceAirflow,
    #[serde(default)]
    service: Option<ReferenceEntity>,
    #[serde(default)]
    logger_level: Option<String>,
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    open_metadata_server_connection: Option<Value>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

#[derive(Debug, PartialEq, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ReferenceAirflow {
    #[serde(default)]
    schedule_interval: Option<String>,
    #[serde(default)]
    pipeline_timezone: Option<String>,
    #[serde(default)]
    retries: Option<i64>,
    #[serde(default)]
    retry_delay: Option<i64>,
    #[serde(default)]
    workflow_timeout: Option<i64>,
    #[serde(default)]
    pause_pipeline: Option<bool>,
    #[serde(default)]
    max_active_runs: Option<i64>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

#[derive(Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReferenceEntity {
    #[serde(default)]
    id: Option<String>,
    #[serde(rename = "type", default)]
    entity_type: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    fully_qualified_name: Option<String>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

fn airflow(a: AirflowConfig) -> ReferenceAirflow {
    ReferenceAirflow {
        schedule_interval: a.schedule_interval,
        pipeline_timezone: a.pipeline_timezone,
        retries: a.retries,
        retry_delay: a.retry_delay,
        workflow_timeout: a.workflow_timeout,
        pause_pipeline: a.pause_pipeline,
        max_active_runs: a.max_active_runs,
        extra: a.extra,
    }
}

fn entity(e: EntityReference) -> ReferenceEntity {
    ReferenceEntity {
        id: e.id,
        entity_type: e.entity_type,
        name: e.name,
        fully_qualified_name: e.fully_qualified_name,
        extra: e.extra,
    }
}

fn as_reference(p: IngestionPipeline) -> ReferencePipeline {
    ReferencePipeline {
        id: p.id,
        name: p.name,
        fully_qualified_name: p.fully_qualified_name,
        pipeline_type: p.pipeline_type,
        source_config: p.source_config,
        airflow_config: airflow(p.airflow_config),
        service: p.service.map(entity),
        logger_level: p.logger_level,
        enabled: p.enabled,
        open_metadata_server_connection: p.open_metadata_server_connection,
        extra: p.extra,
    }
}

/// A value for any key: often the right type for some field, often not.
fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-3i64..5).prop_map(|n| json!(n)),
        Just(json!(1.5)),
        prop_oneof![Just("metadata"), Just("profiler"), Just("x"), Just("")].prop_map(|s| json!(s)),
        Just(json!([])),
        Just(json!({})),
        Just(json!({"config": {"type": "DatabaseMetadata"}})),
    ]
}

/// The keys of all three objects, plus unknown ones.
fn key() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "id",
        "name",
        "fullyQualifiedName",
        "pipelineType",
        "sourceConfig",
        "loggerLevel",
        "enabled",
        "openMetadataServerConnection",
        "type",
        "scheduleInterval",
        "pipelineTimezone",
        "retries",
        "retryDelay",
        "workflowTimeout",
        "pausePipeline",
        "maxActiveRuns",
        "displayName",
        "owners",
        "na\\u006de",
        "displ\\u0061yName",
    ])
}

/// An object's text, keys possibly repeated (a JSON tree would collapse them, so it is
/// written by hand); sometimes a nested `airflowConfig` and `service` of the same kind.
fn object(depth: u32) -> BoxedStrategy<String> {
    let entries = prop::collection::vec((key(), value()), 0..10);
    if depth == 0 {
        return entries.prop_map(|e| text_of(&e, &[])).boxed();
    }
    (
        entries,
        prop::option::of(object(depth - 1)),
        prop::option::of(object(depth - 1)),
        any::<bool>(),
    )
        .prop_map(|(e, air, svc, with_required)| {
            let mut nested = Vec::new();
            if let Some(a) = air {
                nested.push(("airflowConfig", a));
            }
            if let Some(s) = svc {
                nested.push(("service", s));
            }
            let mut e = e;
            if with_required {
                e.push(("name", json!("p")));
                e.push(("pipelineType", json!("metadata")));
            }
            text_of(&e, &nested)
        })
        .boxed()
}

fn text_of(entries: &[(&str, Value)], nested: &[(&str, String)]) -> String {
    let parts: Vec<String> = entries
        .iter()
        .map(|(k, v)| format!("\"{k}\":{v}"))
        .chain(nested.iter().map(|(k, t)| format!("\"{k}\":{t}")))
        .collect();
    format!("{{{}}}", parts.join(","))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn decodes_like_the_flatten_derive(text in object(1)) {
        let ours = serde_json::from_str::<IngestionPipeline>(&text);
        let reference = serde_json::from_str::<ReferencePipeline>(&text);
        match (ours, reference) {
            (Ok(o), Ok(r)) => prop_assert_eq!(as_reference(o), r, "{}", text),
            (Err(_), Err(_)) => {}
            (o, r) => prop_assert!(false, "{text}: ours {o:?}, derive {r:?}"),
        }
        // Through a JSON tree (the codec's fallback; owned keys, repeats collapsed).
        let tree: Value = serde_json::from_str(&text).expect("valid JSON");
        let ours = serde_json::from_value::<IngestionPipeline>(tree.clone());
        let reference = serde_json::from_value::<ReferencePipeline>(tree);
        match (ours, reference) {
            (Ok(o), Ok(r)) => prop_assert_eq!(as_reference(o), r, "{}", text),
            (Err(_), Err(_)) => {}
            (o, r) => prop_assert!(false, "{text} as a tree: ours {o:?}, derive {r:?}"),
        }
        let ours = serde_json::from_str::<AirflowConfig>(&text).map(airflow);
        let reference = serde_json::from_str::<ReferenceAirflow>(&text);
        prop_assert_eq!(ours.is_ok(), reference.is_ok(), "{}", text);
        if let (Ok(o), Ok(r)) = (ours, reference) {
            prop_assert_eq!(o, r);
        }
        let ours = serde_json::from_str::<EntityReference>(&text).map(entity);
        let reference = serde_json::from_str::<ReferenceEntity>(&text);
        prop_assert_eq!(ours.is_ok(), reference.is_ok(), "{}", text);
        if let (Ok(o), Ok(r)) = (ours, reference) {
            prop_assert_eq!(o, r);
        }
    }
}

#[test]
fn errors_name_the_field() {
    let missing = serde_json::from_str::<IngestionPipeline>(r#"{"name":"p"}"#).unwrap_err();
    assert!(
        missing.to_string().contains("missing field `pipelineType`"),
        "{missing}"
    );
    let repeated = serde_json::from_str::<IngestionPipeline>(
        r#"{"name":"p","pipelineType":"dbt","name":"q"}"#,
    )
    .unwrap_err();
    assert!(
        repeated.to_string().contains("duplicate field `name`"),
        "{repeated}"
    );
    let wrong = serde_json::from_str::<IngestionPipeline>(r#"{"name":1,"pipelineType":"dbt"}"#)
        .unwrap_err();
    assert!(wrong.to_string().contains("invalid type"), "{wrong}");
    assert!(serde_json::from_str::<IngestionPipeline>("[]").is_err());
}
