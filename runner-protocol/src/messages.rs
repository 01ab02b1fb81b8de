//! Message bodies. Each message travels in an envelope `{"v","id","re","type","body"}` (see
//! [`crate::Frame`]); `type` selects one of the variants of [`Message`].

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::types::{
    IngestionLogs, IngestionPipeline, PipelineServiceClientResponse, PipelineStatus, PipelineType,
};

/// A message id: unique per sender and session, at most [`crate::Limits::max_id_bytes`] bytes of
/// printable ASCII.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MessageId(String);

impl MessageId {
    /// Builds an id, or says why the text cannot be one.
    pub fn new(id: impl Into<String>, max_bytes: usize) -> Result<MessageId, &'static str> {
        let id = id.into();
        if id.is_empty() {
            return Err("message id is empty");
        }
        if id.len() > max_bytes {
            return Err("message id is too long");
        }
        if !id.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("message id must be printable ASCII without spaces");
        }
        Ok(MessageId(id))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Every message of the protocol.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Hello(Hello),
    Welcome(Welcome),
    Reject(Reject),
    Heartbeat(Heartbeat),
    Request(Request),
    Response(Response),
    Event(EventFrame),
    Ack(Ack),
    Error(ProtocolError),
    Goodbye(Goodbye),
}

impl Message {
    /// The envelope's `type` string for this message.
    pub fn type_name(&self) -> &'static str {
        match self {
            Message::Hello(_) => "hello",
            Message::Welcome(_) => "welcome",
            Message::Reject(_) => "reject",
            Message::Heartbeat(_) => "heartbeat",
            Message::Request(_) => "request",
            Message::Response(_) => "response",
            Message::Event(_) => "event",
            Message::Ack(_) => "ack",
            Message::Error(_) => "error",
            Message::Goodbye(_) => "goodbye",
        }
    }

    pub const TYPE_NAMES: &'static [&'static str] = &[
        "hello",
        "welcome",
        "reject",
        "heartbeat",
        "request",
        "response",
        "event",
        "ack",
        "error",
        "goodbye",
    ];
}

/// Runner -> control plane, first frame of every connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Hello {
    /// `AGENT_ID`: the runner's stable name, shown in the platform's list of runners.
    pub agent_id: String,
    /// A fresh id per process start; event sequence numbers are scoped to it.
    pub instance_id: String,
    pub runner_version: String,
    /// Protocol versions the runner speaks.
    pub protocol_versions: Vec<u16>,
    /// Optional features, see `docs/protocol.md` ("Capabilities").
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// `local` or `argo`.
    pub executor: String,
    /// Where runs go (the Kubernetes namespace, or `local`).
    pub namespace: String,
    /// Highest event sequence number this instance has emitted so far (0 if none).
    #[serde(default)]
    pub last_event_seq: u64,
}

/// Control plane -> runner: the session is accepted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Welcome {
    /// The version both sides use from now on.
    pub protocol_version: u16,
    /// How often each side sends a heartbeat. A peer silent for 3 intervals is presumed dead.
    pub heartbeat_interval_ms: u64,
    pub session_id: String,
    /// Events of this runner instance that the control plane already holds (cumulative), if it
    /// remembers the instance. The runner drops them from its outbox instead of replaying them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acked_through: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_version: Option<String>,
}

/// Why a control plane refuses a runner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectCode {
    /// The token is missing, malformed, expired or revoked. Retrying with the same token is
    /// pointless: the runner backs off slowly and says so.
    Unauthorized,
    /// The token is valid but not allowed to act as this agent.
    Forbidden,
    /// No common protocol version.
    UnsupportedVersion,
    /// Another runner with the same `agentId` holds the session.
    DuplicateAgent,
    /// The control plane is overloaded or in maintenance; retry after `retryAfterMs`.
    Unavailable,
    #[serde(other)]
    Other,
}

impl RejectCode {
    /// Whether retrying with the same credentials can succeed.
    pub fn is_credential_problem(self) -> bool {
        matches!(self, RejectCode::Unauthorized | RejectCode::Forbidden)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reject {
    pub code: RejectCode,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
    /// Versions the control plane speaks (with `unsupported_version`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub protocol_versions: Vec<u16>,
}

/// Readiness of one dependency of the runner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ComponentHealth {
    pub ok: bool,
    /// What is wrong, when not ok. Never holds a secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Readiness {
    pub executor: ComponentHealth,
    pub secrets: ComponentHealth,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Load {
    pub runs_in_flight: u32,
    pub run_capacity: u32,
    pub requests_in_flight: u32,
    pub request_capacity: u32,
    pub events_pending: u32,
}

/// Both directions. The runner's carries readiness and load; the control plane's may be empty.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Heartbeat {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness: Option<Readiness>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<Load>,
}

/// Options of a `runPipeline` request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct RunOptions {
    /// A run id chosen by the control plane. Runs are idempotent by run id: a second request
    /// with the same id does not start a second run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// Replaces the pipeline's `sourceConfig.config` for this run only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_override: Option<Value>,
}

/// Control plane -> runner: one operation of OpenMetadata's `PipelineServiceClientInterface`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase")]
pub enum Request {
    #[serde(rename_all = "camelCase")]
    DeployPipeline {
        pipeline: Box<IngestionPipeline>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        service: Option<Value>,
    },
    #[serde(rename_all = "camelCase")]
    RunPipeline {
        pipeline: Box<IngestionPipeline>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        service: Option<Value>,
        #[serde(default)]
        options: RunOptions,
    },
    #[serde(rename_all = "camelCase")]
    KillIngestion {
        pipeline: Box<IngestionPipeline>,
    },
    #[serde(rename_all = "camelCase")]
    KillIngestionRun {
        pipeline: Box<IngestionPipeline>,
        run_id: String,
    },
    #[serde(rename_all = "camelCase")]
    DeletePipeline {
        pipeline: Box<IngestionPipeline>,
    },
    /// Enables the schedule when `enabled` is true, disables it when false. When absent, the
    /// runner flips the pipeline's `enabled` field as OpenMetadata's Airflow client does.
    #[serde(rename_all = "camelCase")]
    ToggleIngestion {
        pipeline: Box<IngestionPipeline>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        enabled: Option<bool>,
    },
    #[serde(rename_all = "camelCase")]
    GetQueuedPipelineStatus {
        pipeline: Box<IngestionPipeline>,
    },
    #[serde(rename_all = "camelCase")]
    GetLastIngestionLogs {
        pipeline: Box<IngestionPipeline>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after: Option<String>,
    },
    #[serde(rename_all = "camelCase")]
    GetIngestionLogs {
        pipeline: Box<IngestionPipeline>,
        run_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after: Option<String>,
    },
    GetServiceStatus {},
    GetHostIp {},
    /// `workflow` is an automations Workflow entity (`entity/automations/workflow.json`).
    #[serde(rename_all = "camelCase")]
    RunAutomationsWorkflow {
        workflow: Value,
    },
    #[serde(rename_all = "camelCase")]
    RunApplicationFlow {
        application: Value,
    },
    #[serde(rename_all = "camelCase")]
    ValidateAppRegistration {
        application: Value,
    },
    /// Does nothing; answered at once. For latency checks.
    Ping {},
}

impl Request {
    /// The `op` string of this request.
    pub fn op(&self) -> &'static str {
        match self {
            Request::DeployPipeline { .. } => "deployPipeline",
            Request::RunPipeline { .. } => "runPipeline",
            Request::KillIngestion { .. } => "killIngestion",
            Request::KillIngestionRun { .. } => "killIngestionRun",
            Request::DeletePipeline { .. } => "deletePipeline",
            Request::ToggleIngestion { .. } => "toggleIngestion",
            Request::GetQueuedPipelineStatus { .. } => "getQueuedPipelineStatus",
            Request::GetLastIngestionLogs { .. } => "getLastIngestionLogs",
            Request::GetIngestionLogs { .. } => "getIngestionLogs",
            Request::GetServiceStatus {} => "getServiceStatus",
            Request::GetHostIp {} => "getHostIp",
            Request::RunAutomationsWorkflow { .. } => "runAutomationsWorkflow",
            Request::RunApplicationFlow { .. } => "runApplicationFlow",
            Request::ValidateAppRegistration { .. } => "validateAppRegistration",
            Request::Ping {} => "ping",
        }
    }

    pub const OPS: &'static [&'static str] = &[
        "deployPipeline",
        "runPipeline",
        "killIngestion",
        "killIngestionRun",
        "deletePipeline",
        "toggleIngestion",
        "getQueuedPipelineStatus",
        "getLastIngestionLogs",
        "getIngestionLogs",
        "getServiceStatus",
        "getHostIp",
        "runAutomationsWorkflow",
        "runApplicationFlow",
        "validateAppRegistration",
        "ping",
    ];

    /// The pipeline the request is about, if any.
    pub fn pipeline(&self) -> Option<&IngestionPipeline> {
        match self {
            Request::DeployPipeline { pipeline, .. }
            | Request::RunPipeline { pipeline, .. }
            | Request::KillIngestion { pipeline }
            | Request::KillIngestionRun { pipeline, .. }
            | Request::DeletePipeline { pipeline }
            | Request::ToggleIngestion { pipeline, .. }
            | Request::GetQueuedPipelineStatus { pipeline }
            | Request::GetLastIngestionLogs { pipeline, .. }
            | Request::GetIngestionLogs { pipeline, .. } => Some(pipeline),
            _ => None,
        }
    }
}

/// Runner -> control plane: the reply to a request, with `re` set to the request's id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Response {
    Result(OpResult),
    Error(ErrorBody),
}

/// The result of a successful operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum OpResult {
    /// deploy, run, kill, delete, toggle, getServiceStatus, automations, applications.
    PipelineResponse(PipelineServiceClientResponse),
    /// getQueuedPipelineStatus.
    Statuses { statuses: Vec<PipelineStatus> },
    /// getLastIngestionLogs / getIngestionLogs.
    Logs(IngestionLogs),
    /// getHostIp.
    HostIp { ip: String },
    /// ping.
    Pong {},
}

/// Codes a program can branch on, for failed requests (`response.error`) and for frames that could
/// not be handled at all (`error` messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame is not valid UTF-8 JSON or not an envelope.
    Malformed,
    /// The frame exceeds the size limit.
    FrameTooLarge,
    /// JSON nested deeper than the limit.
    TooDeep,
    /// The envelope's `v` is not the negotiated version.
    UnsupportedVersion,
    /// The envelope's `type` is not known.
    UnknownType,
    /// A request's `op` is not known.
    UnknownOperation,
    /// A request's body does not match its operation's schema.
    InvalidRequest,
    /// The message is not allowed in the session's current state (e.g. a request before welcome).
    UnexpectedMessage,
    /// The runner's policy refuses the request (image, namespace, privileges, secret outside the
    /// allow-list...).
    Forbidden,
    /// The pipeline or run does not exist.
    NotFound,
    /// Conflicts with the current state (e.g. the run already finished).
    Conflict,
    /// Too many requests in flight; retry later.
    Busy,
    /// A `secret:` reference did not resolve.
    SecretUnresolved,
    /// The executor (Argo, local) cannot be reached.
    ExecutorUnavailable,
    /// The executor answered with an error.
    ExecutorError,
    /// The operation did not finish in time.
    Timeout,
    /// The runner is draining and takes no new work.
    ShuttingDown,
    /// A bug or an unexpected condition in the runner.
    Internal,
    /// A code this build does not know (sent by a newer peer).
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    /// The `code` to put into a `PipelineServiceClientResponse` built from this error.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::Malformed
            | ErrorCode::FrameTooLarge
            | ErrorCode::TooDeep
            | ErrorCode::UnknownOperation
            | ErrorCode::InvalidRequest
            | ErrorCode::UnknownType
            | ErrorCode::UnexpectedMessage
            | ErrorCode::SecretUnresolved => 400,
            ErrorCode::UnsupportedVersion => 505,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::Conflict => 409,
            ErrorCode::Busy => 429,
            ErrorCode::ExecutorUnavailable | ErrorCode::ShuttingDown => 503,
            ErrorCode::Timeout => 504,
            ErrorCode::ExecutorError | ErrorCode::Internal | ErrorCode::Unknown => 500,
        }
    }

    /// Whether sending the same request again later can succeed.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorCode::Busy
                | ErrorCode::ExecutorUnavailable
                | ErrorCode::Timeout
                | ErrorCode::ShuttingDown
        )
    }
}

/// A failure, as data. `message` names the thing, the likely cause and the fix; it never holds a
/// secret value or a token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub message: String,
    pub retryable: bool,
}

impl ErrorBody {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ErrorBody {
        ErrorBody {
            code,
            message: message.into(),
            retryable: code.is_retryable(),
        }
    }

    /// The OpenMetadata response a control plane returns to its caller for this error.
    pub fn to_pipeline_response(&self, platform: &str) -> PipelineServiceClientResponse {
        PipelineServiceClientResponse {
            code: self.code.http_status(),
            platform: platform.to_owned(),
            reason: Some(self.message.clone()),
            version: None,
            run_id: None,
        }
    }
}

/// Control plane or runner: a frame could not be handled. `re` is set when the offending frame's
/// id could be read.
pub type ProtocolError = ErrorBody;

/// Something that happened on the runner's side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum RunnerEvent {
    /// A run changed state. Each carries the run's whole status, so a later one supersedes an
    /// earlier one of the same run.
    #[serde(rename_all = "camelCase")]
    RunStatus {
        pipeline_fqn: String,
        pipeline_type: PipelineType,
        status: PipelineStatus,
    },
}

impl RunnerEvent {
    /// Events with equal keys supersede each other (latest wins).
    pub fn supersede_key(&self) -> (&str, &str) {
        match self {
            RunnerEvent::RunStatus {
                pipeline_fqn,
                status,
                ..
            } => (pipeline_fqn, &status.run_id),
        }
    }
}

/// Runner -> control plane: an event with its sequence number (per runner instance, strictly
/// increasing, gaps allowed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventFrame {
    pub seq: u64,
    pub event: RunnerEvent,
}

/// Control plane -> runner: every event with `seq <= through` is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ack {
    pub through: u64,
}

/// Either side: the sender is closing the session on purpose.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Goodbye {
    pub reason: String,
    /// Sent by a runner: a replacement will connect (runs keep going). Sent by a control plane:
    /// `true` lets the runner reconnect at once; `false` makes it back off as after a failure.
    /// A runner always reconnects eventually; to keep one out, reject its `hello`.
    #[serde(default)]
    pub reconnect: bool,
}
