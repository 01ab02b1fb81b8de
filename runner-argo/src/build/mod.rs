//! Pure builders: IngestionPipeline (+ service, + run id) and the runner's settings ->
//! Workflow / CronWorkflow / per-run config Secret. No I/O (except
//! [`BuildConfig::from_lookup`], which reads the two spec files it is pointed at).

pub mod envs;
pub mod guard;
pub mod merge;
pub mod names;
pub mod schedule;
pub mod wfconfig;

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};

use crate::model::{
    API_VERSION, Backoff, Container, CronWorkflow, CronWorkflowSpec, EnvVar, IntOrString,
    LocalObjectReference, Metadata, ObjectMeta, PodGc, ResourceRequirements, RetryStrategy,
    Template, TtlStrategy, Workflow, WorkflowSpec,
};
pub use envs::parse_extra_envs;
pub use names::*;
pub use wfconfig::{
    MAX_CONFIG_BYTES, check_config_size, config_text, set_server_host, workflow_config,
};

/// Why a build was refused. `Forbidden` is the control plane asking for something only
/// the operator may set; `Invalid` / `Missing` are bad requests; `Config` is the
/// operator's configuration.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BuildError {
    #[error(
        "refused: the request sets `{field}`, which the control plane may not choose ({reason}); remove it from the request"
    )]
    Forbidden { field: String, reason: String },
    #[error("invalid `{field}` in the request: {reason}")]
    Invalid { field: String, reason: String },
    #[error("the request lacks `{0}`")]
    Missing(String),
    #[error(
        "SECRETS_DELIVERY=pod would put secret values in the Workflow (at {}); make them `secret:` references \
         or use SECRETS_DELIVERY=runner",
        .0.join(", ")
    )]
    PlaintextSecret(Vec<String>),
    #[error("runner configuration: {0}")]
    Config(String),
}

impl BuildError {
    pub(crate) fn missing(f: &str) -> Self {
        Self::Missing(f.to_owned())
    }
}

/// How the pod gets its `config` (issue 4, "Secrets delivery").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SecretsDelivery {
    /// The runner resolves the config and stores it in a per-run Kubernetes Secret; the pod
    /// reads env `config` through `secretKeyRef`. The Workflow holds no secret value.
    #[default]
    Runner,
    /// `secret:` references go to the pod unchanged (inline env `config`); the pod resolves
    /// them itself with `pod_env`. Refused if the config holds a plaintext secret.
    Pod,
}

impl SecretsDelivery {
    pub fn parse(s: &str) -> Result<Self, BuildError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "runner" => Ok(Self::Runner),
            "pod" => Ok(Self::Pod),
            other => Err(BuildError::Config(format!(
                "SECRETS_DELIVERY={other:?}: expected `runner` or `pod`"
            ))),
        }
    }
}

/// CPU / memory requests and limits (Kubernetes quantities, e.g. `500m`, `2Gi`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    pub cpu_request: Option<String>,
    pub cpu_limit: Option<String>,
    pub memory_request: Option<String>,
    pub memory_limit: Option<String>,
}

impl Resources {
    fn to_model(&self) -> Option<ResourceRequirements> {
        let mut r = ResourceRequirements::default();
        let put =
            |m: &mut BTreeMap<String, crate::model::Quantity>, k: &str, v: &Option<String>| {
                if let Some(v) = v {
                    m.insert(k.to_owned(), crate::model::Quantity(v.clone()));
                }
            };
        put(&mut r.requests, "cpu", &self.cpu_request);
        put(&mut r.requests, "memory", &self.memory_request);
        put(&mut r.limits, "cpu", &self.cpu_limit);
        put(&mut r.limits, "memory", &self.memory_limit);
        (!r.requests.is_empty() || !r.limits.is_empty()).then_some(r)
    }
}

/// The runner's Argo-related settings (brief 3.3). Build it with [`BuildConfig::from_lookup`]
/// or by hand.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildConfig {
    /// `AGENT_ID`: labels every object; selects this runner's workflows.
    pub runner_id: String,
    /// `INGESTION_IMAGE` (alias `ARGO_INGESTION_IMAGE`).
    pub image: String,
    pub image_pull_policy: Option<String>,
    /// `INGESTION_NAMESPACE` (alias `ARGO_NAMESPACE`).
    pub namespace: String,
    /// `INGESTION_IMAGE_PULL_SECRETS` (alias `ARGO_IMAGE_PULL_SECRETS`), comma separated.
    pub image_pull_secrets: Vec<String>,
    /// `INGESTION_SERVICE_ACCOUNT_NAME` (alias `ARGO_WORKFLOW_EXECUTOR_SERVICE_ACCOUNT_NAME`).
    pub service_account_name: Option<String>,
    /// `INGESTION_AUTOMOUNT_SA_TOKEN`.
    pub automount_service_account_token: Option<bool>,
    /// `INGESTION_EXTRA_ENVS` (alias `ARGO_EXTRA_ENVS`), parsed.
    pub extra_envs: Vec<(String, String)>,
    /// `INGESTION_{CPU,MEMORY}_{LIMIT,REQUEST}` (alias `ARGO_WORKFLOW_*`).
    pub ingestion_resources: Resources,
    /// `INGESTION_AUTOMATION_WORKFLOW_*` (alias `ARGO_AUTOMATION_WORKFLOW_*`).
    pub automation_resources: Resources,
    /// `ARGO_SECONDS_AFTER_COMPLETION_TTL`.
    pub ttl_seconds_after_completion: Option<i64>,
    /// Pods are deleted this long after the workflow completes (podGC
    /// `OnWorkflowCompletion` + `deleteDelayDuration`), so the final logs can be read.
    pub pod_gc_delete_delay: String,
    /// Used when the pipeline has no `airflowConfig.workflowTimeout`.
    pub default_active_deadline_seconds: Option<i64>,
    /// `ARGO_PIPELINE_TYPE_CONFIGS`: `{"<pipelineType>|automation": {<Argo Template fields>}}`,
    /// merged into the main template (e.g. `priorityClassName`, `nodeSelector`, `tolerations`).
    pub pipeline_type_configs: Value,
    /// `ARGO_INGESTION_CONTAINER_SPEC_FILE_PATH` content (YAML mapping), merged into the main container.
    pub container_spec: Option<Value>,
    /// `ARGO_INGESTION_WORKFLOW_SPEC_FILE_PATH` content (YAML mapping), merged into `spec`.
    pub workflow_spec: Option<Value>,
    /// `SECRETS_DELIVERY`.
    pub secrets_delivery: SecretsDelivery,
    /// `DYNAMIC_INGESTION_VERSION_ENABLED`: the caller replaces the image tag with the
    /// OpenMetadata server's version (see [`image_with_tag`]) before building.
    pub dynamic_ingestion_version: bool,
    /// Env the pod needs to resolve `secret:` references itself (SECRETS_DELIVERY=pod only),
    /// e.g. `SECRETS_MANAGER` and the provider's settings. Never secret values: use
    /// `valueFrom` for credentials.
    pub pod_env: Vec<EnvVar>,
    /// `SERVER_HOST_API_URL`: the platform API the workloads report to; replaces
    /// `workflowConfig.openMetadataServerConfig.hostPort` of every config built here (a
    /// schedule's too), as the dispatcher does for manual runs.
    pub server_host_api_url: Option<String>,
}

impl Default for BuildConfig {
    fn default() -> Self {
        Self {
            runner_id: "runner".into(),
            image: "docker.getcollate.io/openmetadata/ingestion-base:latest".into(),
            image_pull_policy: None,
            namespace: "default".into(),
            image_pull_secrets: Vec::new(),
            service_account_name: None,
            automount_service_account_token: None,
            extra_envs: Vec::new(),
            ingestion_resources: Resources::default(),
            automation_resources: Resources::default(),
            ttl_seconds_after_completion: Some(86_400),
            pod_gc_delete_delay: "1h".into(),
            default_active_deadline_seconds: None,
            pipeline_type_configs: Value::Object(Default::default()),
            container_spec: None,
            workflow_spec: None,
            secrets_delivery: SecretsDelivery::Runner,
            dynamic_ingestion_version: false,
            pod_env: Vec::new(),
            server_host_api_url: None,
        }
    }
}

fn looks_like_quantity(q: &str) -> bool {
    let q = q.trim();
    let num_end = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(q.len());
    let (num, suffix) = q.split_at(num_end);
    !num.is_empty()
        && num.parse::<f64>().is_ok()
        && [
            "", "m", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei",
        ]
        .contains(&suffix)
}

impl BuildConfig {
    /// Read the env contract (brief 3.3) with the old `ARGO_*` aliases through `get`
    /// (e.g. `|k| std::env::var(k).ok()`); the spec files named by
    /// `ARGO_INGESTION_{CONTAINER,WORKFLOW}_SPEC_FILE_PATH` are read from disk.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, BuildError> {
        let val = |names: &[&str]| -> Option<(String, String)> {
            names.iter().find_map(|n| {
                get(n)
                    .map(|v| v.trim().to_owned())
                    .filter(|v| !v.is_empty())
                    .map(|v| (n.to_string(), v))
            })
        };
        let mut c = Self::default();
        if let Some((_, v)) = val(&["AGENT_ID"]) {
            c.runner_id = v;
        }
        c.server_host_api_url = val(&["SERVER_HOST_API_URL"]).map(|x| x.1);
        c.image = val(&["INGESTION_IMAGE", "ARGO_INGESTION_IMAGE"])
            .map(|x| x.1)
            .ok_or_else(|| BuildError::Config("INGESTION_IMAGE is not set: set it to the ingestion image, e.g. docker.getcollate.io/openmetadata/ingestion-base:1.9.0".into()))?;
        if let Some((_, v)) = val(&["INGESTION_NAMESPACE", "ARGO_NAMESPACE"]) {
            c.namespace = v;
        }
        if let Some((_, v)) = val(&["INGESTION_IMAGE_PULL_SECRETS", "ARGO_IMAGE_PULL_SECRETS"]) {
            c.image_pull_secrets = v
                .trim_matches(|ch| ch == '[' || ch == ']')
                .split(',')
                .map(|s| s.trim().trim_matches('"').to_owned())
                .filter(|s| !s.is_empty())
                .collect();
        }
        c.service_account_name = val(&[
            "INGESTION_SERVICE_ACCOUNT_NAME",
            "ARGO_WORKFLOW_EXECUTOR_SERVICE_ACCOUNT_NAME",
        ])
        .map(|x| x.1);
        if let Some((n, v)) = val(&["INGESTION_AUTOMOUNT_SA_TOKEN"]) {
            c.automount_service_account_token = Some(parse_bool(&n, &v)?);
        }
        if let Some((_, v)) = val(&["INGESTION_EXTRA_ENVS", "ARGO_EXTRA_ENVS"]) {
            c.extra_envs = parse_extra_envs(&v)?;
        }
        let res = |prefixes: &[&str]| -> Result<Resources, BuildError> {
            let one = |suffix: &str| -> Result<Option<String>, BuildError> {
                let names: Vec<String> = prefixes.iter().map(|p| format!("{p}_{suffix}")).collect();
                let refs: Vec<&str> = names.iter().map(String::as_str).collect();
                match val(&refs) {
                    Some((n, v)) if !looks_like_quantity(&v) => Err(BuildError::Config(format!(
                        "{n}={v:?} is not a Kubernetes quantity (e.g. 500m, 2, 512Mi, 4Gi)"
                    ))),
                    other => Ok(other.map(|x| x.1)),
                }
            };
            Ok(Resources {
                cpu_request: one("CPU_REQUEST")?,
                cpu_limit: one("CPU_LIMIT")?,
                memory_request: one("MEMORY_REQUEST")?,
                memory_limit: one("MEMORY_LIMIT")?,
            })
        };
        c.ingestion_resources = res(&["INGESTION", "ARGO_WORKFLOW"])?;
        c.automation_resources =
            res(&["INGESTION_AUTOMATION_WORKFLOW", "ARGO_AUTOMATION_WORKFLOW"])?;
        if let Some((n, v)) = val(&["ARGO_SECONDS_AFTER_COMPLETION_TTL"]) {
            c.ttl_seconds_after_completion =
                Some(v.parse::<i64>().ok().filter(|x| *x >= 0).ok_or_else(|| {
                    BuildError::Config(format!("{n}={v:?} is not a number of seconds"))
                })?);
        }
        if let Some((n, v)) = val(&["ARGO_PIPELINE_TYPE_CONFIGS"]) {
            let parsed: Value = serde_json::from_str(&v).map_err(|e| {
                BuildError::Config(format!(
                    "{n} is not JSON ({e}); expected e.g. {{\"automation\":{{\"priorityClassName\":\"high-priority\"}}}}"
                ))
            })?;
            if !parsed
                .as_object()
                .is_some_and(|m| m.values().all(Value::is_object))
            {
                return Err(BuildError::Config(format!(
                    "{n} must be a JSON object of objects, keyed by pipeline type"
                )));
            }
            c.pipeline_type_configs = parsed;
        }
        let read = |n: &str, p: &str| -> Result<Value, BuildError> {
            let text = std::fs::read_to_string(Path::new(p))
                .map_err(|e| BuildError::Config(format!("{n}={p}: cannot read the file ({e})")))?;
            merge::parse_spec(&text, n)
        };
        if let Some((n, p)) = val(&["ARGO_INGESTION_CONTAINER_SPEC_FILE_PATH"]) {
            let v = read(&n, &p)?;
            merge::check_container_overlay(&v, &n)?;
            c.container_spec = Some(v);
        }
        if let Some((n, p)) = val(&["ARGO_INGESTION_WORKFLOW_SPEC_FILE_PATH"]) {
            c.workflow_spec = Some(read(&n, &p)?);
        }
        if let Some((n, v)) = val(&["DYNAMIC_INGESTION_VERSION_ENABLED"]) {
            c.dynamic_ingestion_version = parse_bool(&n, &v)?;
        }
        if let Some((_, v)) = val(&["SECRETS_DELIVERY"]) {
            c.secrets_delivery = SecretsDelivery::parse(&v)?;
        }
        Ok(c)
    }
}

/// `image` with its tag replaced by `tag` (a leading `v` is dropped: server `v1.9.0` ->
/// tag `1.9.0`). Registry ports are kept (`host:5000/repo:old` -> `host:5000/repo:new`); a
/// digest-pinned image (`@sha256:...`) is returned unchanged.
pub fn image_with_tag(image: &str, tag: &str) -> String {
    let tag = tag.trim().trim_start_matches('v');
    if image.contains('@') || tag.is_empty() {
        return image.to_owned();
    }
    let last_slash = image.rfind('/').map(|i| i + 1).unwrap_or(0);
    let repo = match image[last_slash..].rfind(':') {
        Some(i) => &image[..last_slash + i],
        None => image,
    };
    format!("{repo}:{tag}")
}

fn parse_bool(n: &str, v: &str) -> Result<bool, BuildError> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(BuildError::Config(format!(
            "{n}={v:?}: expected true or false"
        ))),
    }
}

/// The command of the main container by pipeline type.
pub fn command_for(kind: RunKind) -> Vec<String> {
    match kind {
        RunKind::Pipeline => vec!["python".into(), "main.py".into()],
        RunKind::Automation => vec!["python".into(), "run_automation.py".into()],
    }
}

pub const EXIT_HANDLER_COMMAND: [&str; 2] = ["python", "exit_handler.py"];
pub const EXIT_HANDLER_TEMPLATE: &str = "exit-handler";
/// Key of `config` inside the per-run Secret.
pub const CONFIG_SECRET_KEY: &str = "config";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunKind {
    Pipeline,
    Automation,
}

/// Per-run options a control plane may send. Anything else in the override object is refused.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunOverrides {
    pub retries: Option<i64>,
    pub retry_delay_seconds: Option<i64>,
    pub timeout_seconds: Option<i64>,
}

impl RunOverrides {
    /// Parse a control-plane override object: allowed keys `retries`, `retryDelay`,
    /// `timeoutSeconds`; pod settings are [`BuildError::Forbidden`]; other keys `Invalid`.
    pub fn from_json(v: Option<&Value>) -> Result<Self, BuildError> {
        let Some(v) = v.filter(|v| !v.is_null()) else {
            return Ok(Self::default());
        };
        guard::check_overrides(v, "")?;
        let m = v.as_object().ok_or_else(|| BuildError::Invalid {
            field: "overrides".into(),
            reason: "not an object".into(),
        })?;
        let mut o = Self::default();
        for (k, x) in m {
            let num = |max: i64| {
                x.as_i64()
                    .filter(|n| (0..=max).contains(n))
                    .ok_or_else(|| BuildError::Invalid {
                        field: k.clone(),
                        reason: format!("expected an integer between 0 and {max}"),
                    })
            };
            match k.as_str() {
                "retries" => o.retries = Some(num(100)?),
                "retryDelay" => o.retry_delay_seconds = Some(num(86_400)?),
                "timeoutSeconds" => o.timeout_seconds = Some(num(30 * 86_400)?),
                other => {
                    return Err(BuildError::Invalid {
                        field: other.into(),
                        reason: "unknown run option (allowed: retries, retryDelay, timeoutSeconds)"
                            .into(),
                    });
                }
            }
        }
        Ok(o)
    }
}

/// One run to build.
#[derive(Debug, Clone, Copy)]
pub struct RunRequest<'a> {
    /// IngestionPipeline entity JSON.
    pub pipeline: &'a Value,
    /// Service entity JSON (DatabaseService etc.); needed by pipeline types that connect to it.
    pub service: Option<&'a Value>,
    /// The run id (`pipelineRunId`); part of the workflow's deterministic name.
    pub run_id: &'a str,
    /// Control-plane run options (see [`RunOverrides::from_json`]).
    pub overrides: Option<&'a Value>,
}

/// A built run.
#[derive(Debug, Clone, PartialEq)]
pub struct BuiltRun {
    pub workflow: Workflow,
    /// SECRETS_DELIVERY=runner: the Secret the pod reads `config` from (key `config`). The
    /// caller creates it with [`config_secret`] from the resolved config.
    pub config_secret_name: Option<String>,
    /// The config (unresolved `secret:` references) for the caller to resolve and store in
    /// the Secret. `None` in pod mode, where it is inline in the Workflow.
    pub config: Option<Value>,
}

/// A built schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct BuiltCron {
    pub cron_workflow: CronWorkflow,
    pub config_secret_name: Option<String>,
    pub config: Option<Value>,
}

fn pipeline_str<'a>(p: &'a Value, key: &str) -> Option<&'a str> {
    p.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn airflow_i64(p: &Value, key: &str) -> Option<i64> {
    p.get("airflowConfig")
        .and_then(|a| a.get(key))
        .and_then(Value::as_i64)
}

struct Common {
    name: String,
    fqn: String,
    ptype: String,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
}

fn common(bc: &BuildConfig, pipeline: &Value, kind: &str) -> Result<Common, BuildError> {
    guard::check_pipeline(pipeline)?;
    let name = pipeline_str(pipeline, "name")
        .ok_or_else(|| BuildError::missing("name"))?
        .to_owned();
    let fqn = pipeline_str(pipeline, "fullyQualifiedName")
        .ok_or_else(|| BuildError::missing("fullyQualifiedName"))?
        .to_owned();
    let ptype = pipeline_str(pipeline, "pipelineType")
        .ok_or_else(|| BuildError::missing("pipelineType"))?
        .to_owned();
    guard::check_identifier("name", &name, false)?;
    guard::check_identifier("fullyQualifiedName", &fqn, false)?;
    if crate::logs::task_key(&ptype).is_none()
        && ptype != "policyAgent"
        && ptype != "reverseMetadata"
    {
        return Err(BuildError::Invalid {
            field: "pipelineType".into(),
            reason: format!("unknown pipeline type {ptype:?}"),
        });
    }
    let labels = names::base_labels(&bc.runner_id, &fqn, &ptype, kind);
    let mut annotations = BTreeMap::from([(ANNOTATION_PIPELINE_FQN.to_owned(), fqn.clone())]);
    if let Some(id) = pipeline_str(pipeline, "id") {
        annotations.insert(ANNOTATION_PIPELINE_ID.to_owned(), id.to_owned());
    }
    Ok(Common {
        name,
        fqn,
        ptype,
        labels,
        annotations,
    })
}

/// Key names whose plain values count as secrets in pod mode.
const SENSITIVE: &[&str] = &[
    "password",
    "secret",
    "token",
    "jwttoken",
    "apikey",
    "api_key",
    "privatekey",
    "private_key",
    "secretkey",
    "clientsecret",
    "awssecretaccesskey",
    "accesstoken",
    "credentials",
    "passphrase",
    "connectionstring",
];

/// Paths of values that look like plaintext secrets (sensitive key, non-empty string value not
/// starting with `secret:`).
pub fn find_plaintext_secrets(v: &Value) -> Vec<String> {
    /// Whether `key` (any case) is or ends with a sensitive name; no allocation.
    fn sensitive(key: &str) -> bool {
        let k = key.as_bytes();
        SENSITIVE.iter().any(|s| {
            k.len() >= s.len() && k[k.len() - s.len()..].eq_ignore_ascii_case(s.as_bytes())
        })
    }
    /// `path` is one buffer grown and shrunk on the way down: a path string is only
    /// copied out for a finding.
    fn walk(v: &Value, path: &mut String, out: &mut Vec<String>) {
        let len = path.len();
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(k);
                    match x {
                        Value::String(s)
                            if !s.is_empty() && !s.starts_with("secret:") && sensitive(k) =>
                        {
                            out.push(path.clone())
                        }
                        _ => walk(x, path, out),
                    }
                    path.truncate(len);
                }
            }
            Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    use std::fmt::Write as _;
                    let _ = write!(path, "[{i}]");
                    walk(x, path, out);
                    path.truncate(len);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(v, &mut String::new(), &mut out);
    out
}

/// The workflow config built here (a schedule's, or a run's without one given), pointed at
/// `SERVER_HOST_API_URL` when it is set.
fn run_config(
    bc: &BuildConfig,
    pipeline: &Value,
    service: Option<&Value>,
    run_id: Option<&str>,
) -> Result<Value, BuildError> {
    let mut config = workflow_config(pipeline, service, run_id)?;
    if let Some(url) = &bc.server_host_api_url {
        set_server_host(&mut config, url);
    }
    Ok(config)
}

/// Env `config`: a secretKeyRef (runner mode) or the inline text (pod mode, after the check).
fn config_env(
    bc: &BuildConfig,
    owner_name: &str,
    config: &Value,
) -> Result<(EnvVar, Option<String>), BuildError> {
    match bc.secrets_delivery {
        SecretsDelivery::Runner => {
            wfconfig::check_config_size(config)?;
            let secret = config_secret_name(owner_name);
            Ok((
                EnvVar::from_secret("config", &secret, CONFIG_SECRET_KEY),
                Some(secret),
            ))
        }
        SecretsDelivery::Pod => {
            let found = find_plaintext_secrets(config);
            if !found.is_empty() {
                return Err(BuildError::PlaintextSecret(found));
            }
            let text = config_text(config);
            wfconfig::check_config_len(text.len())?;
            if text.contains("{{") {
                // Argo would try to substitute it as a template variable and fail the workflow
                return Err(BuildError::Invalid {
                    field: "config".into(),
                    reason: "the config contains `{{`, which Argo treats as a template variable \
                             in an inline env value; use SECRETS_DELIVERY=runner (config in a Secret)"
                        .into(),
                });
            }
            Ok((EnvVar::plain("config", text), None))
        }
    }
}

fn extra_env(bc: &BuildConfig) -> Vec<EnvVar> {
    let mut v: Vec<EnvVar> = bc
        .extra_envs
        .iter()
        .map(|(k, x)| EnvVar::plain(k, x))
        .collect();
    if bc.secrets_delivery == SecretsDelivery::Pod {
        v.extend(bc.pod_env.iter().cloned());
    }
    v
}

fn to_value<T: serde::Serialize>(t: &T) -> Value {
    serde_json::to_value(t).unwrap_or_default()
}

fn from_value<T: serde::de::DeserializeOwned>(v: Value, what: &str) -> Result<T, BuildError> {
    serde_json::from_value(v)
        .map_err(|e| BuildError::Config(format!("{what}: the merged result is not valid: {e}")))
}

/// The WorkflowSpec shared by a run and a cron schedule.
#[allow(clippy::too_many_arguments)]
fn workflow_spec(
    bc: &BuildConfig,
    c: &Common,
    pipeline: &Value,
    kind: RunKind,
    run_id_env: &str,
    config_env: EnvVar,
    overrides: &RunOverrides,
    pod_labels: BTreeMap<String, String>,
) -> Result<WorkflowSpec, BuildError> {
    let task = crate::logs::task_key(&c.ptype)
        .unwrap_or("ingestion_task")
        .replace('_', "-");
    let (task, res, type_cfg_key) = match kind {
        RunKind::Pipeline => (task, &bc.ingestion_resources, c.ptype.as_str()),
        RunKind::Automation => (
            "automation-task".to_owned(),
            &bc.automation_resources,
            "automation",
        ),
    };
    let mut env = vec![config_env.clone()];
    match kind {
        RunKind::Pipeline => {
            env.push(EnvVar::plain("pipelineType", &c.ptype));
            env.push(EnvVar::plain("pipelineRunId", run_id_env));
            env.push(EnvVar::plain("ingestionPipelineFQN", &c.fqn));
        }
        RunKind::Automation => env.push(EnvVar::plain("pipelineRunId", run_id_env)),
    }
    env.push(EnvVar::plain("jobName", "{{workflow.name}}"));
    env.push(EnvVar::plain("namespace", "{{workflow.namespace}}"));
    env.extend(extra_env(bc));

    let container = Container {
        name: Some("main".into()),
        image: Some(bc.image.clone()),
        image_pull_policy: bc.image_pull_policy.clone(),
        command: command_for(kind),
        env,
        resources: res.to_model(),
        ..Container::default()
    };
    // The operator's container spec file, merged in (a JSON round trip only when there is one).
    let mut container = match &bc.container_spec {
        Some(cs) => {
            merge::check_container_overlay(cs, "ARGO_INGESTION_CONTAINER_SPEC_FILE_PATH")?;
            let mut v = to_value(&container);
            merge::deep_merge(&mut v, cs);
            from_value(v, "ARGO_INGESTION_CONTAINER_SPEC_FILE_PATH")?
        }
        None => container,
    };
    // The exit handler's container: the same one with its own command, env and resources
    // (built before the main template takes `container`; its env is not copied, only replaced).
    let exit_container = (kind == RunKind::Pipeline).then(|| {
        let env = std::mem::take(&mut container.env);
        let mut exit = container.clone();
        container.env = env;
        exit.command = EXIT_HANDLER_COMMAND.iter().map(|s| s.to_string()).collect();
        exit.resources = bc.automation_resources.to_model().or(exit.resources);
        exit
    });

    let retries = overrides
        .retries
        .or_else(|| airflow_i64(pipeline, "retries"))
        .unwrap_or(0);
    let delay = overrides
        .retry_delay_seconds
        .or_else(|| airflow_i64(pipeline, "retryDelay"))
        .unwrap_or(300);
    let retry_strategy = (kind == RunKind::Pipeline && retries > 0).then(|| RetryStrategy {
        limit: Some(IntOrString::Int(retries)),
        retry_policy: Some("Always".into()),
        backoff: Some(Backoff {
            duration: Some(format!("{delay}s")),
            ..Backoff::default()
        }),
        ..RetryStrategy::default()
    });

    let mut main = Template {
        name: task.clone(),
        container: Some(container),
        retry_strategy,
        metadata: Some(Metadata {
            labels: pod_labels.clone(),
            annotations: BTreeMap::new(),
        }),
        ..Template::default()
    };
    if let Some(tc) = bc
        .pipeline_type_configs
        .get(type_cfg_key)
        .filter(|v| v.is_object())
    {
        let mut tv = to_value(&main);
        merge::deep_merge(&mut tv, tc);
        main = from_value(tv, "ARGO_PIPELINE_TYPE_CONFIGS")?;
        main.name = task.clone();
    }

    let mut templates = vec![main];
    let mut on_exit = None;
    if let Some(mut exit_container) = exit_container {
        let mut exit_env = vec![
            config_env,
            EnvVar::plain("pipelineType", &c.ptype),
            EnvVar::plain("pipelineRunId", run_id_env),
            EnvVar::plain("pipelineStatus", "{{workflow.status}}"),
            EnvVar::plain("ingestionPipelineFQN", &c.fqn),
        ];
        exit_env.extend(extra_env(bc));
        exit_container.env = exit_env;
        templates.push(Template {
            name: EXIT_HANDLER_TEMPLATE.into(),
            container: Some(exit_container),
            metadata: Some(Metadata {
                labels: pod_labels,
                annotations: BTreeMap::new(),
            }),
            ..Template::default()
        });
        on_exit = Some(EXIT_HANDLER_TEMPLATE.to_owned());
    }

    let deadline = overrides
        .timeout_seconds
        .or_else(|| airflow_i64(pipeline, "workflowTimeout"))
        .filter(|t| *t > 0)
        .or(bc.default_active_deadline_seconds);

    // Argo refuses `automountServiceAccountToken: false` unless the executor (wait container)
    // has its own service account: give it the workflow's.
    let mut spec_extra = crate::model::Extra::new();
    if bc.automount_service_account_token == Some(false) {
        let sa = bc.service_account_name.clone().ok_or_else(|| {
            BuildError::Config(
                "INGESTION_AUTOMOUNT_SA_TOKEN=false needs INGESTION_SERVICE_ACCOUNT_NAME (Argo's executor must run with a service account)".into(),
            )
        })?;
        spec_extra.insert(
            "executor".into(),
            serde_json::json!({ "serviceAccountName": sa }),
        );
    }
    let spec = WorkflowSpec {
        extra: spec_extra,
        entrypoint: Some(task),
        templates,
        on_exit,
        service_account_name: bc.service_account_name.clone(),
        automount_service_account_token: bc.automount_service_account_token,
        image_pull_secrets: bc
            .image_pull_secrets
            .iter()
            .map(|n| LocalObjectReference { name: n.clone() })
            .collect(),
        active_deadline_seconds: deadline,
        ttl_strategy: bc.ttl_seconds_after_completion.map(|s| TtlStrategy {
            seconds_after_completion: Some(s),
            ..TtlStrategy::default()
        }),
        pod_gc: Some(PodGc {
            strategy: Some("OnWorkflowCompletion".into()),
            delete_delay_duration: Some(bc.pod_gc_delete_delay.clone()),
            ..PodGc::default()
        }),
        ..WorkflowSpec::default()
    };
    match &bc.workflow_spec {
        Some(ws) => {
            let mut v = to_value(&spec);
            merge::deep_merge(&mut v, ws);
            from_value(v, "ARGO_INGESTION_WORKFLOW_SPEC_FILE_PATH")
        }
        None => Ok(spec),
    }
}

/// Build the Workflow of one run (runPipeline).
pub fn build_run_workflow(bc: &BuildConfig, req: &RunRequest<'_>) -> Result<BuiltRun, BuildError> {
    run_workflow(bc, req, None)
}

/// [`build_run_workflow`] with the run's workflow config already built (by
/// [`workflow_config`] from the same request, possibly adjusted by the caller), so a caller
/// that needed it first does not build it twice. `config` must hold `secret:` references, not
/// resolved values: with `SECRETS_DELIVERY=pod` it goes into the Workflow.
pub fn build_run_workflow_with_config(
    bc: &BuildConfig,
    req: &RunRequest<'_>,
    config: Value,
) -> Result<BuiltRun, BuildError> {
    run_workflow(bc, req, Some(config))
}

fn run_workflow(
    bc: &BuildConfig,
    req: &RunRequest<'_>,
    config: Option<Value>,
) -> Result<BuiltRun, BuildError> {
    let overrides = RunOverrides::from_json(req.overrides)?;
    if req.run_id.trim().is_empty() {
        return Err(BuildError::missing("runId"));
    }
    guard::check_identifier("runId", req.run_id, true)?;
    let mut c = common(bc, req.pipeline, "run")?;
    c.labels
        .insert(LABEL_RUN_ID.into(), label_value(req.run_id));
    c.annotations
        .insert(ANNOTATION_RUN_ID.into(), req.run_id.to_owned());
    let name = workflow_name(&c.name, &c.fqn, req.run_id);
    let config = match config {
        Some(c) => c,
        None => run_config(bc, req.pipeline, req.service, Some(req.run_id))?,
    };
    let (env, secret) = config_env(bc, &name, &config)?;
    let spec = workflow_spec(
        bc,
        &c,
        req.pipeline,
        RunKind::Pipeline,
        req.run_id,
        env,
        &overrides,
        c.labels.clone(),
    )?;
    let workflow = Workflow {
        api_version: Some(API_VERSION.into()),
        kind: Some("Workflow".into()),
        metadata: ObjectMeta {
            name: Some(name),
            namespace: Some(bc.namespace.clone()),
            labels: c.labels,
            annotations: c.annotations,
            ..ObjectMeta::default()
        },
        spec,
        ..Workflow::default()
    };
    let config = secret.is_some().then_some(config);
    Ok(BuiltRun {
        workflow,
        config_secret_name: secret,
        config,
    })
}

/// Build the Workflow of an automation (runAutomationsWorkflow: test connection etc.).
/// `automation` is OpenMetadata's automations Workflow entity; it becomes env `config`.
pub fn build_automation_workflow(
    bc: &BuildConfig,
    automation: &Value,
    run_id: &str,
) -> Result<BuiltRun, BuildError> {
    let name = pipeline_str(automation, "name").ok_or_else(|| BuildError::missing("name"))?;
    let fqn = pipeline_str(automation, "fullyQualifiedName")
        .unwrap_or(name)
        .to_owned();
    guard::check_top_level(automation)?;
    guard::check_identifier("name", name, false)?;
    guard::check_identifier("fullyQualifiedName", &fqn, false)?;
    guard::check_identifier("runId", run_id, true)?;
    let mut labels = names::base_labels(&bc.runner_id, &fqn, "automation", "automation");
    labels.insert(LABEL_RUN_ID.into(), label_value(run_id));
    let c = Common {
        name: name.to_owned(),
        fqn: fqn.clone(),
        ptype: "automation".into(),
        labels: labels.clone(),
        annotations: BTreeMap::from([
            (ANNOTATION_PIPELINE_FQN.to_owned(), fqn.clone()),
            (ANNOTATION_RUN_ID.to_owned(), run_id.to_owned()),
        ]),
    };
    let wf_name = format!(
        "om-automation-{}-{}",
        slug(name, WORKFLOW_NAME_MAX - 14 - 11),
        short_hash(&[&fqn, run_id], 10)
    );
    let (env, secret) = config_env(bc, &wf_name, automation)?;
    let spec = workflow_spec(
        bc,
        &c,
        &json!({}),
        RunKind::Automation,
        run_id,
        env,
        &RunOverrides::default(),
        labels.clone(),
    )?;
    let workflow = Workflow {
        api_version: Some(API_VERSION.into()),
        kind: Some("Workflow".into()),
        metadata: ObjectMeta {
            name: Some(wf_name),
            namespace: Some(bc.namespace.clone()),
            labels,
            annotations: c.annotations,
            ..ObjectMeta::default()
        },
        spec,
        ..Workflow::default()
    };
    let config = secret.is_some().then(|| automation.clone());
    Ok(BuiltRun {
        workflow,
        config_secret_name: secret,
        config,
    })
}

/// Build the CronWorkflow of a deployed pipeline with a `scheduleInterval`.
/// `Ok(None)` when the pipeline has no schedule (deploy = nothing to schedule).
/// Each scheduled run gets `pipelineRunId={{workflow.uid}}`.
pub fn build_cron_workflow(
    bc: &BuildConfig,
    pipeline: &Value,
    service: Option<&Value>,
) -> Result<Option<BuiltCron>, BuildError> {
    let c = common(bc, pipeline, "scheduled-run")?;
    let sched = pipeline
        .pointer("/airflowConfig/scheduleInterval")
        .and_then(Value::as_str);
    let Some(cron) = schedule::to_cron(sched)? else {
        return Ok(None);
    };
    let tz = schedule::timezone(
        pipeline
            .pointer("/airflowConfig/pipelineTimezone")
            .and_then(Value::as_str),
    )?;
    let name = cron_workflow_name(&c.name, &c.fqn);
    let config = run_config(bc, pipeline, service, None)?;
    let (env, secret) = config_env(bc, &name, &config)?;
    let spec = workflow_spec(
        bc,
        &c,
        pipeline,
        RunKind::Pipeline,
        "{{workflow.uid}}",
        env,
        &RunOverrides::default(),
        c.labels.clone(),
    )?;
    let enabled = pipeline
        .get("enabled")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let paused = pipeline
        .pointer("/airflowConfig/pausePipeline")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let max_active = airflow_i64(pipeline, "maxActiveRuns").unwrap_or(1);
    let mut cron_labels = c.labels.clone();
    cron_labels.insert(LABEL_KIND.into(), "schedule".into());
    let cron_workflow = CronWorkflow {
        api_version: Some(API_VERSION.into()),
        kind: Some("CronWorkflow".into()),
        metadata: ObjectMeta {
            name: Some(name),
            namespace: Some(bc.namespace.clone()),
            labels: cron_labels,
            annotations: c.annotations.clone(),
            ..ObjectMeta::default()
        },
        spec: CronWorkflowSpec {
            schedules: vec![cron],
            timezone: tz,
            suspend: Some(!enabled || paused),
            concurrency_policy: Some(if max_active <= 1 { "Forbid" } else { "Allow" }.into()),
            successful_jobs_history_limit: Some(3),
            failed_jobs_history_limit: Some(3),
            workflow_metadata: Some(ObjectMeta {
                labels: c.labels,
                annotations: c.annotations,
                ..ObjectMeta::default()
            }),
            workflow_spec: spec,
            ..CronWorkflowSpec::default()
        },
        ..CronWorkflow::default()
    };
    let config = secret.is_some().then_some(config);
    Ok(Some(BuiltCron {
        cron_workflow,
        config_secret_name: secret,
        config,
    }))
}

/// Owner of a config Secret, for garbage collection with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerRef {
    /// `Workflow` or `CronWorkflow`.
    pub kind: String,
    pub name: String,
    pub uid: String,
}

impl OwnerRef {
    pub fn workflow(name: &str, uid: &str) -> Self {
        Self {
            kind: "Workflow".into(),
            name: name.into(),
            uid: uid.into(),
        }
    }
    pub fn cron_workflow(name: &str, uid: &str) -> Self {
        Self {
            kind: "CronWorkflow".into(),
            name: name.into(),
            uid: uid.into(),
        }
    }
    pub fn to_json(&self) -> Value {
        json!({ "apiVersion": API_VERSION, "kind": self.kind, "name": self.name, "uid": self.uid, "blockOwnerDeletion": false })
    }
}

/// The Kubernetes Secret (v1) holding a run's resolved `config` (SECRETS_DELIVERY=runner).
/// Create it in `namespace` through the Kubernetes API (not the Argo Server). With
/// `owner`, Kubernetes deletes it with the Workflow; without, set the owner afterwards with
/// the merge patch of [`owner_patch`].
pub fn config_secret(
    bc: &BuildConfig,
    secret_name: &str,
    labels: &BTreeMap<String, String>,
    config_text: &str,
    owner: Option<&OwnerRef>,
) -> Value {
    let mut meta = json!({ "name": secret_name, "namespace": bc.namespace, "labels": labels });
    if let Some(o) = owner {
        meta["ownerReferences"] = json!([o.to_json()]);
    }
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": meta,
        "type": "Opaque",
        "stringData": { CONFIG_SECRET_KEY: config_text },
    })
}

/// JSON merge patch setting a Secret's owner.
pub fn owner_patch(owner: &OwnerRef) -> Value {
    json!({ "metadata": { "ownerReferences": [owner.to_json()] } })
}
