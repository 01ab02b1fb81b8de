//! OpenMetadata shapes carried by the protocol (schemas in `openmetadata/schema/entity/services/
//! ingestionPipelines/`). Only the fields the runner reads are typed; everything else is kept in
//! `extra` so that a pipeline survives a round trip through the runner unchanged.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `Deserialize` for a struct of typed fields plus `extra: Map<String, Value>` (every other
/// key), in one pass over the input. `#[serde(flatten)]` does the same but first buffers every
/// field of the object into serde's internal tree and decodes each value a second time from
/// there: a fifth of a 3.7 KB `runPipeline` frame's decode (benches/codec.rs).
///
/// Same behaviour as the derive with `flatten`: a missing field without default is an error, a
/// repeated typed field is an error (the codec then decodes through a JSON tree, where the last
/// one wins), a repeated other key keeps its last value.
macro_rules! deserialize_with_extra {
    (
        $ty:ident, $expecting:literal,
        required { $($rkey:literal => $rfield:ident: $rty:ty),* $(,)? }
        optional { $($okey:literal => $ofield:ident: $oty:ty),* $(,)? }
    ) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                #[allow(non_camel_case_types)]
                enum Key {
                    $($rfield,)*
                    $($ofield,)*
                    Other(String),
                }
                impl<'de> Deserialize<'de> for Key {
                    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                        fn known(k: &str) -> Option<Key> {
                            Some(match k {
                                $($rkey => Key::$rfield,)*
                                $($okey => Key::$ofield,)*
                                _ => return None,
                            })
                        }
                        struct KeyVisitor;
                        impl serde::de::Visitor<'_> for KeyVisitor {
                            type Value = Key;
                            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                                f.write_str("a field name")
                            }
                            fn visit_str<E: serde::de::Error>(self, k: &str) -> Result<Key, E> {
                                Ok(known(k).unwrap_or_else(|| Key::Other(k.to_owned())))
                            }
                            // Keys read from a JSON tree arrive owned: kept without a copy.
                            fn visit_string<E: serde::de::Error>(self, k: String) -> Result<Key, E> {
                                Ok(known(&k).unwrap_or(Key::Other(k)))
                            }
                        }
                        d.deserialize_identifier(KeyVisitor)
                    }
                }
                struct V;
                impl<'de> serde::de::Visitor<'de> for V {
                    type Value = $ty;
                    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_map<A: serde::de::MapAccess<'de>>(
                        self,
                        mut map: A,
                    ) -> Result<$ty, A::Error> {
                        use serde::de::Error;
                        $(let mut $rfield: Option<$rty> = None;)*
                        $(let mut $ofield: Option<$oty> = None;)*
                        let mut extra = Map::new();
                        while let Some(key) = map.next_key::<Key>()? {
                            match key {
                                $(Key::$rfield => {
                                    if $rfield.is_some() {
                                        return Err(A::Error::duplicate_field($rkey));
                                    }
                                    $rfield = Some(map.next_value()?);
                                })*
                                $(Key::$ofield => {
                                    if $ofield.is_some() {
                                        return Err(A::Error::duplicate_field($okey));
                                    }
                                    $ofield = Some(map.next_value()?);
                                })*
                                Key::Other(k) => {
                                    extra.insert(k, map.next_value()?);
                                }
                            }
                        }
                        Ok($ty {
                            $($rfield: $rfield.ok_or_else(|| A::Error::missing_field($rkey))?,)*
                            $($ofield: $ofield.unwrap_or_default(),)*
                            extra,
                        })
                    }
                }
                d.deserialize_map(V)
            }
        }
    };
}

/// `pipelineType` of an IngestionPipeline. Unknown values are kept, so a newer control plane can
/// send a type this runner does not know; the runner then refuses it with a clear error.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PipelineType {
    Metadata,
    Usage,
    Lineage,
    Profiler,
    AutoClassification,
    TestSuite,
    DataInsight,
    ElasticSearchReindex,
    Dbt,
    Application,
    ReverseMetadata,
    PolicyAgent,
    Other(String),
}

impl PipelineType {
    const KNOWN: &'static [(&'static str, PipelineType)] = &[
        ("metadata", PipelineType::Metadata),
        ("usage", PipelineType::Usage),
        ("lineage", PipelineType::Lineage),
        ("profiler", PipelineType::Profiler),
        ("autoClassification", PipelineType::AutoClassification),
        ("TestSuite", PipelineType::TestSuite),
        ("dataInsight", PipelineType::DataInsight),
        ("elasticSearchReindex", PipelineType::ElasticSearchReindex),
        ("dbt", PipelineType::Dbt),
        ("application", PipelineType::Application),
        ("reverseMetadata", PipelineType::ReverseMetadata),
        ("policyAgent", PipelineType::PolicyAgent),
    ];

    pub fn as_str(&self) -> &str {
        if let PipelineType::Other(s) = self {
            return s;
        }
        Self::KNOWN
            .iter()
            .find(|(_, t)| t == self)
            .map(|(s, _)| *s)
            .unwrap_or("unknown")
    }

    pub fn parse(s: &str) -> PipelineType {
        Self::KNOWN
            .iter()
            .find(|(name, _)| *name == s)
            .map(|(_, t)| t.clone())
            .unwrap_or_else(|| PipelineType::Other(s.to_owned()))
    }

    /// The key under which OpenMetadata expects this type's logs (`getLastIngestionLogs`).
    pub fn log_task_key(&self) -> &'static str {
        match self {
            PipelineType::Metadata => "ingestion_task",
            PipelineType::Profiler => "profiler_task",
            PipelineType::AutoClassification => "auto_classification_task",
            PipelineType::Lineage => "lineage_task",
            PipelineType::Dbt => "dbt_task",
            PipelineType::Usage => "usage_task",
            PipelineType::TestSuite => "test_suite_task",
            PipelineType::DataInsight => "data_insight_task",
            PipelineType::ElasticSearchReindex => "elasticsearch_reindex_task",
            PipelineType::Application => "application_task",
            // OpenMetadata reads these (and unknown types) under `ingestion_task`.
            PipelineType::ReverseMetadata | PipelineType::PolicyAgent | PipelineType::Other(_) => {
                "ingestion_task"
            }
        }
    }
}

impl Serialize for PipelineType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for PipelineType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(PipelineType::parse(&s))
    }
}

/// A reference to another entity (`type/entityReference.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct EntityReference {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub entity_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fully_qualified_name: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `airflowConfig` of an IngestionPipeline: the scheduling knobs (the name is historical).
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct AirflowConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_interval: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline_timezone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_delay: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_timeout: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause_pipeline: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_active_runs: Option<i64>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// An IngestionPipeline entity as OpenMetadata sends it (`ingestionPipeline.json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IngestionPipeline {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fully_qualified_name: Option<String>,
    pub pipeline_type: PipelineType,
    #[serde(default)]
    pub source_config: Value,
    #[serde(default)]
    pub airflow_config: AirflowConfig,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<EntityReference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logger_level: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_metadata_server_connection: Option<Value>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

deserialize_with_extra!(EntityReference, "an entity reference object",
    required {}
    optional {
        "id" => id: Option<String>,
        "type" => entity_type: Option<String>,
        "name" => name: Option<String>,
        "fullyQualifiedName" => fully_qualified_name: Option<String>,
    }
);

deserialize_with_extra!(AirflowConfig, "an airflowConfig object",
    required {}
    optional {
        "scheduleInterval" => schedule_interval: Option<String>,
        "pipelineTimezone" => pipeline_timezone: Option<String>,
        "retries" => retries: Option<i64>,
        "retryDelay" => retry_delay: Option<i64>,
        "workflowTimeout" => workflow_timeout: Option<i64>,
        "pausePipeline" => pause_pipeline: Option<bool>,
        "maxActiveRuns" => max_active_runs: Option<i64>,
    }
);

deserialize_with_extra!(IngestionPipeline, "an IngestionPipeline object",
    required {
        "name" => name: String,
        "pipelineType" => pipeline_type: PipelineType,
    }
    optional {
        "id" => id: Option<String>,
        "fullyQualifiedName" => fully_qualified_name: Option<String>,
        "sourceConfig" => source_config: Value,
        "airflowConfig" => airflow_config: AirflowConfig,
        "service" => service: Option<EntityReference>,
        "loggerLevel" => logger_level: Option<String>,
        "enabled" => enabled: Option<bool>,
        "openMetadataServerConnection" => open_metadata_server_connection: Option<Value>,
    }
);

impl IngestionPipeline {
    /// The pipeline's fully qualified name, falling back to its name.
    pub fn fqn(&self) -> &str {
        self.fully_qualified_name.as_deref().unwrap_or(&self.name)
    }
}

/// `pipelineState` of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PipelineState {
    Queued,
    Running,
    Success,
    Failed,
    PartialSuccess,
    Stopped,
}

impl PipelineState {
    /// Whether a run in this state will not change any more.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            PipelineState::Success
                | PipelineState::Failed
                | PipelineState::PartialSuccess
                | PipelineState::Stopped
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PipelineState::Queued => "queued",
            PipelineState::Running => "running",
            PipelineState::Success => "success",
            PipelineState::Failed => "failed",
            PipelineState::PartialSuccess => "partialSuccess",
            PipelineState::Stopped => "stopped",
        }
    }
}

/// A run's status (`ingestionPipeline.json#/definitions/pipelineStatus`). Dates are epoch ms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PipelineStatus {
    pub run_id: String,
    pub pipeline_state: PipelineState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_date: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_date: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
}

/// `PipelineServiceClientResponse`: the reply shape of most operations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PipelineServiceClientResponse {
    pub code: u16,
    pub platform: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
}

/// One page of a run's logs. OpenMetadata's flat map is `{<task key>: text, "total": "<n>",
/// "after": "<cursor>"}`; [`IngestionLogs::to_openmetadata_map`] produces it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IngestionLogs {
    /// Task key (see [`PipelineType::log_task_key`]) to log text of this page.
    pub tasks: BTreeMap<String, String>,
    /// Number of pages in all.
    pub total: u32,
    /// Cursor of the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
}

impl IngestionLogs {
    pub fn to_openmetadata_map(&self) -> BTreeMap<String, String> {
        let mut map = self.tasks.clone();
        map.insert("total".into(), self.total.to_string());
        if let Some(after) = &self.after {
            map.insert("after".into(), after.clone());
        }
        map
    }
}
