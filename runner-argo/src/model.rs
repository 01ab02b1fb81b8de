//! Hand-written serde models of the Argo Workflows objects the runner uses.
//!
//! Only the fields the runner reads or writes are typed; every struct keeps the
//! rest in an `extra` map (`#[serde(flatten)]`), so an object read from a newer
//! Argo server round-trips without loss and an unknown field never fails decoding.
//! See docs/argo.md ("Models: hand-written, not generated") for why.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// Fields the model does not type, kept verbatim.
pub type Extra = BTreeMap<String, Value>;

pub const API_VERSION: &str = "argoproj.io/v1alpha1";

/// Kubernetes `IntOrString`: Argo servers send `retryStrategy.limit: 3` as a JSON
/// number and `"3"` as a string; both must decode. Serialises back as it came.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum IntOrString {
    Int(i64),
    String(String),
}

impl IntOrString {
    /// The integer value, parsing a numeric string; `None` for e.g. `"50%"`.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Self::Int(i) => Some(*i),
            Self::String(s) => s.trim().parse().ok(),
        }
    }
}

impl fmt::Display for IntOrString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Int(i) => write!(f, "{i}"),
            Self::String(s) => f.write_str(s),
        }
    }
}

impl From<i64> for IntOrString {
    fn from(v: i64) -> Self {
        Self::Int(v)
    }
}

impl From<&str> for IntOrString {
    fn from(v: &str) -> Self {
        Self::String(v.to_owned())
    }
}

impl Serialize for IntOrString {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Int(i) => s.serialize_i64(*i),
            Self::String(v) => s.serialize_str(v),
        }
    }
}

impl<'de> Deserialize<'de> for IntOrString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::Number(n) => n.as_i64().map(Self::Int).ok_or_else(|| {
                serde::de::Error::custom(format!("IntOrString: {n} is not an integer"))
            }),
            Value::String(s) => Ok(Self::String(s)),
            other => Err(serde::de::Error::custom(format!(
                "IntOrString: expected an integer or a string, got {other}"
            ))),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generate_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Workflow {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: WorkflowSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<WorkflowStatus>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Workflow {
    pub fn name(&self) -> &str {
        self.metadata.name.as_deref().unwrap_or_default()
    }
    pub fn phase(&self) -> Option<&str> {
        self.status.as_ref().and_then(|s| s.phase.as_deref())
    }
    pub fn label(&self, key: &str) -> Option<&str> {
        self.metadata.labels.get(key).map(String::as_str)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub templates: Vec<Template>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_exit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub automount_service_account_token: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_pull_secrets: Vec<LocalObjectReference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_deadline_seconds: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_strategy: Option<TtlStrategy>,
    #[serde(default, rename = "podGC", skip_serializing_if = "Option::is_none")]
    pub pod_gc: Option<PodGc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_strategy: Option<RetryStrategy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_metadata: Option<Metadata>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_metadata: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shutdown: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Argo's `Metadata` (labels/annotations for pods).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Template {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<Container>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_strategy: Option<RetryStrategy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_deadline_seconds: Option<IntOrString>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvVar {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_from: Option<EnvVarSource>,
}

impl EnvVar {
    pub fn plain(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            value: Some(value.into()),
            value_from: None,
        }
    }
    pub fn from_secret(
        name: impl Into<String>,
        secret: impl Into<String>,
        key: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            value: None,
            value_from: Some(EnvVarSource {
                secret_key_ref: Some(SecretKeySelector {
                    name: Some(secret.into()),
                    key: key.into(),
                    optional: None,
                }),
                extra: Extra::new(),
            }),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvVarSource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key_ref: Option<SecretKeySelector>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeySelector {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optional: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourceRequirements {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub limits: BTreeMap<String, Quantity>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub requests: BTreeMap<String, Quantity>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Kubernetes quantity (`500m`, `2Gi`). Servers write strings; a JSON number (`2`) is
/// accepted too and kept as its decimal text.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Quantity(pub String);

impl Quantity {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Quantity {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

impl PartialEq<str> for Quantity {
    fn eq(&self, o: &str) -> bool {
        self.0 == o
    }
}

impl Serialize for Quantity {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::String(s) => Ok(Self(s)),
            Value::Number(n) => Ok(Self(n.to_string())),
            other => Err(serde::de::Error::custom(format!(
                "quantity: expected a string or a number, got {other}"
            ))),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalObjectReference {
    pub name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TtlStrategy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds_after_completion: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds_after_success: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds_after_failure: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodGc {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_delay_duration: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetryStrategy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<IntOrString>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_policy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff: Option<Backoff>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Backoff {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub factor: Option<IntOrString>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_duration: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub nodes: BTreeMap<String, NodeStatus>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeStatus {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub node_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListMeta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
    #[serde(default, rename = "continue", skip_serializing_if = "Option::is_none")]
    pub continue_token: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowList {
    #[serde(default)]
    pub metadata: ListMeta,
    /// Argo sends `"items": null` for an empty list.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub items: Vec<Workflow>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CronWorkflow {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: CronWorkflowSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Value>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CronWorkflowSpec {
    /// Argo >= 3.6; the singular `schedule` was removed in 4.0 and is never written.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub schedules: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency_policy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starting_deadline_seconds: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub successful_jobs_history_limit: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_jobs_history_limit: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_metadata: Option<ObjectMeta>,
    #[serde(default)]
    pub workflow_spec: WorkflowSpec,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CronWorkflowList {
    #[serde(default)]
    pub metadata: ListMeta,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub items: Vec<CronWorkflow>,
}

/// One event of `GET /api/v1/workflow-events/{ns}`: `type` is ADDED, MODIFIED, DELETED
/// (or ERROR / BOOKMARK from the Kubernetes watch underneath). An ERROR event carries a
/// Kubernetes `Status`, not a Workflow: `object` is then `None` and `error_message` is set.
///
/// `object` holds what status tracking reads: metadata, status and `spec.shutdown`; the rest
/// of the spec is not decoded (get the workflow for it).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkflowWatchEvent {
    #[serde(rename = "type")]
    pub event_type: String,
    pub object: Option<Workflow>,
    #[serde(skip)]
    pub error_message: Option<String>,
}

impl<'de> Deserialize<'de> for WorkflowWatchEvent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            #[serde(rename = "type", default)]
            event_type: String,
            #[serde(default)]
            object: Option<WorkflowSummary>,
        }
        let raw = Raw::deserialize(d)?;
        if raw.event_type == "ERROR" {
            let msg = raw
                .object
                .and_then(|o| o.message)
                .unwrap_or_else(|| "watch ERROR event".to_owned());
            return Ok(Self {
                event_type: raw.event_type,
                object: None,
                error_message: Some(msg),
            });
        }
        Ok(Self {
            event_type: raw.event_type,
            object: raw.object.map(WorkflowSummary::into_workflow),
            error_message: None,
        })
    }
}

/// A Workflow decoded for status tracking, in one pass: its metadata, status and
/// `spec.shutdown`; the rest of the spec (most of the object) is skipped without being built.
/// Also reads an ERROR watch event's Kubernetes `Status` (its `message`; its `status` is a
/// string).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowSummary {
    #[serde(default)]
    api_version: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    metadata: ObjectMeta,
    #[serde(default)]
    spec: WatchSpec,
    #[serde(default)]
    status: Option<StatusOrText>,
    #[serde(default)]
    message: Option<String>,
}

#[derive(Default, Deserialize)]
struct WatchSpec {
    #[serde(default)]
    shutdown: Option<String>,
}

/// A Workflow's `status` object, or the string `status` of a Kubernetes `Status`.
enum StatusOrText {
    Workflow(Box<WorkflowStatus>),
    Text,
}

impl<'de> Deserialize<'de> for StatusOrText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = StatusOrText;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a workflow status object or a string")
            }
            fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<StatusOrText, E> {
                Ok(StatusOrText::Text)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<StatusOrText, A::Error> {
                let status =
                    WorkflowStatus::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(StatusOrText::Workflow(Box::new(status)))
            }
        }
        d.deserialize_any(V)
    }
}

impl WorkflowSummary {
    /// The summary as a [`Workflow`] whose spec holds only `shutdown`.
    pub fn into_workflow(self) -> Workflow {
        Workflow {
            api_version: self.api_version,
            kind: self.kind,
            metadata: self.metadata,
            spec: WorkflowSpec {
                shutdown: self.spec.shutdown,
                ..WorkflowSpec::default()
            },
            status: match self.status {
                Some(StatusOrText::Workflow(s)) => Some(*s),
                _ => None,
            },
            extra: Extra::default(),
        }
    }
}

/// One entry of `GET /api/v1/workflows/{ns}/{name}/log`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogEntry {
    #[serde(default)]
    pub content: String,
    #[serde(default)]
    pub pod_name: String,
}

/// `GET /api/v1/version`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Version {
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub build_date: String,
    #[serde(default)]
    pub git_commit: String,
    #[serde(default)]
    pub git_tag: String,
    #[serde(default)]
    pub git_tree_state: String,
    #[serde(default)]
    pub go_version: String,
    #[serde(default)]
    pub compiler: String,
    #[serde(default)]
    pub platform: String,
}

/// grpc-gateway error body: `{"code": <grpc code>, "message": "..."}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GatewayError {
    #[serde(default)]
    pub code: Option<i64>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
}

/// grpc-gateway mid-stream error: `{"error": {"grpc_code":..,"http_code":..,"message":..}}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StreamError {
    #[serde(default)]
    pub grpc_code: Option<i64>,
    #[serde(default)]
    pub http_code: Option<i64>,
    #[serde(default)]
    pub http_status: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    /// Some gateways send `code` instead of `grpc_code`.
    #[serde(default)]
    pub code: Option<i64>,
}

fn null_as_empty<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int_or_string_decodes_number_and_string() {
        let n: IntOrString = serde_json::from_str("3").unwrap();
        assert_eq!(n, IntOrString::Int(3));
        assert_eq!(serde_json::to_string(&n).unwrap(), "3");
        let s: IntOrString = serde_json::from_str("\"3\"").unwrap();
        assert_eq!(s.as_i64(), Some(3));
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"3\"");
        let p: IntOrString = serde_json::from_str("\"50%\"").unwrap();
        assert_eq!(p.as_i64(), None);
        assert!(serde_json::from_str::<IntOrString>("1.5").is_err());
        assert!(serde_json::from_str::<IntOrString>("true").is_err());
    }

    #[test]
    fn watch_events_keep_metadata_status_and_shutdown_in_any_field_order() {
        let e: WorkflowWatchEvent = serde_json::from_str(
            r#"{"object":{"metadata":{"name":"w","labels":{"a":"b"},"uid":"u1"},
                "spec":{"templates":[{"name":"main","container":{"image":"x"}}],"shutdown":"Stop"},
                "status":{"phase":"Running","message":"m","nodes":{"n":{"id":"n","name":"w","phase":"Running"}}},
                "future":1},"type":"MODIFIED"}"#,
        )
        .unwrap();
        assert_eq!(e.event_type, "MODIFIED");
        let w = e.object.unwrap();
        assert_eq!(
            (w.name(), w.label("a"), w.phase()),
            ("w", Some("b"), Some("Running"))
        );
        assert_eq!(w.metadata.uid.as_deref(), Some("u1"));
        assert_eq!(w.spec.shutdown.as_deref(), Some("Stop"));
        assert!(
            w.spec.templates.is_empty(),
            "the rest of the spec is not decoded"
        );
        assert_eq!(w.status.unwrap().nodes["n"].name, "w");
    }

    #[test]
    fn watch_error_events_carry_the_status_message() {
        let e: WorkflowWatchEvent = serde_json::from_str(
            r#"{"type":"ERROR","object":{"kind":"Status","status":"Failure","message":"too old resource version: 1 (5)","code":410}}"#,
        )
        .unwrap();
        assert!(e.object.is_none());
        assert_eq!(
            e.error_message.as_deref(),
            Some("too old resource version: 1 (5)")
        );
        let e: WorkflowWatchEvent =
            serde_json::from_str(r#"{"type":"MODIFIED","object":{"metadata":{"name":"w"},"spec":{},"status":{"phase":"Running"}}}"#).unwrap();
        assert_eq!(e.object.unwrap().phase(), Some("Running"));
    }
}
