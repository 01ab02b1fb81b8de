//! Argo workflow phase -> OpenMetadata `pipelineState`.

use serde::{Deserialize, Serialize};

use crate::build::names::{ANNOTATION_RUN_ID, LABEL_RUN_ID};
use crate::model::Workflow;

/// OpenMetadata's `pipelineState` values.
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
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Success => "success",
            Self::Failed => "failed",
            Self::PartialSuccess => "partialSuccess",
            Self::Stopped => "stopped",
        }
    }
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Success | Self::Failed | Self::PartialSuccess | Self::Stopped
        )
    }
}

/// The status of one run as the control plane wants it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunStatus {
    pub workflow_name: String,
    /// The run id: annotation `ingestion-runner.io/run-id`, else the label, else the
    /// workflow uid (scheduled runs, whose pod env is `pipelineRunId={{workflow.uid}}`).
    pub run_id: Option<String>,
    pub state: PipelineState,
    /// Argo's message, with a hint for problems the operator can fix.
    pub message: Option<String>,
    pub start_date_ms: Option<i64>,
    pub end_date_ms: Option<i64>,
    /// The pod cannot pull the ingestion image (the run will not progress).
    pub image_pull_failure: bool,
}

pub const IMAGE_PULL_HINT: &str =
    "check INGESTION_IMAGE name and tag (and INGESTION_IMAGE_PULL_SECRETS for a private registry)";

const IMAGE_PULL_MARKERS: &[&str] = &[
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "ErrImageNeverPull",
    "Back-off pulling image",
    "pull access denied",
    "manifest unknown",
];

/// Map a phase (and the workflow's shutdown / message) to a pipeline state.
pub fn map_phase(
    phase: Option<&str>,
    shutdown: Option<&str>,
    message: Option<&str>,
) -> PipelineState {
    let stopped = shutdown.is_some_and(|s| matches!(s, "Stop" | "Terminate"))
        || message.is_some_and(|m| {
            let m = m.to_ascii_lowercase();
            m.contains("stopped with strategy")
                || m.contains("terminated")
                || m.contains("workflow shutdown")
        });
    match phase.unwrap_or("") {
        "" | "Pending" => {
            if stopped {
                PipelineState::Stopped
            } else {
                PipelineState::Queued
            }
        }
        "Running" => PipelineState::Running,
        "Succeeded" => PipelineState::Success,
        "Failed" | "Error" if stopped => PipelineState::Stopped,
        "Failed" | "Error" => PipelineState::Failed,
        _ => PipelineState::Running,
    }
}

/// Image pull failure message found in the workflow or its nodes, if any.
pub fn image_pull_problem(wf: &Workflow) -> Option<String> {
    let st = wf.status.as_ref()?;
    let hit = |m: &str| IMAGE_PULL_MARKERS.iter().any(|k| m.contains(k));
    if let Some(m) = st.message.as_deref().filter(|m| hit(m)) {
        return Some(m.to_owned());
    }
    st.nodes
        .values()
        .filter_map(|n| n.message.as_deref())
        .find(|m| hit(m))
        .map(str::to_owned)
}

/// RFC 3339 -> epoch milliseconds.
pub fn to_epoch_ms(ts: Option<&str>) -> Option<i64> {
    let ts = ts?.trim();
    if ts.is_empty() {
        return None;
    }
    chrono::DateTime::parse_from_rfc3339(ts)
        .ok()
        .map(|d| d.timestamp_millis())
}

pub fn map_workflow(wf: &Workflow) -> RunStatus {
    let st = wf.status.as_ref();
    let phase = st.and_then(|s| s.phase.as_deref());
    let mut message = st.and_then(|s| s.message.clone()).filter(|m| !m.is_empty());
    let state = map_phase(phase, wf.spec.shutdown.as_deref(), message.as_deref());
    let pull = image_pull_problem(wf);
    if let Some(p) = &pull {
        // The phase is kept (the workflow is still alive); the caller decides whether to
        // stop it. The message says what to fix.
        message = Some(format!(
            "the ingestion image cannot be pulled ({p}): {IMAGE_PULL_HINT}"
        ));
    }
    let run_id = wf
        .metadata
        .annotations
        .get(ANNOTATION_RUN_ID)
        .or_else(|| wf.metadata.labels.get(LABEL_RUN_ID))
        .or(wf.metadata.uid.as_ref())
        .cloned();
    RunStatus {
        workflow_name: wf.name().to_owned(),
        run_id,
        state,
        message,
        start_date_ms: to_epoch_ms(st.and_then(|s| s.started_at.as_deref())),
        end_date_ms: to_epoch_ms(st.and_then(|s| s.finished_at.as_deref())),
        image_pull_failure: pull.is_some(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn phases() {
        assert_eq!(map_phase(None, None, None), PipelineState::Queued);
        assert_eq!(
            map_phase(Some("Pending"), None, None),
            PipelineState::Queued
        );
        assert_eq!(
            map_phase(Some("Running"), None, None),
            PipelineState::Running
        );
        assert_eq!(
            map_phase(Some("Succeeded"), None, None),
            PipelineState::Success
        );
        assert_eq!(
            map_phase(Some("Failed"), None, Some("exit code 1")),
            PipelineState::Failed
        );
        assert_eq!(map_phase(Some("Error"), None, None), PipelineState::Failed);
        assert_eq!(
            map_phase(Some("Failed"), Some("Stop"), None),
            PipelineState::Stopped
        );
        assert_eq!(
            map_phase(
                Some("Failed"),
                None,
                Some("Stopped with strategy 'Terminate'")
            ),
            PipelineState::Stopped
        );
        assert_eq!(
            serde_json::to_value(PipelineState::PartialSuccess).unwrap(),
            json!("partialSuccess")
        );
    }

    #[test]
    fn maps_a_workflow_with_image_pull_failure() {
        let wf: Workflow = serde_json::from_value(json!({
            "metadata": {"name": "om-x-1", "uid": "u-1", "annotations": {"ingestion-runner.io/run-id": "run-9"}},
            "spec": {},
            "status": {"phase": "Running", "startedAt": "2026-01-02T03:04:05Z",
              "nodes": {"om-x-1": {"id": "om-x-1", "name": "om-x-1", "phase": "Pending",
                "message": "ImagePullBackOff: Back-off pulling image \"openmetadata/ingestion:nope\""}}}
        }))
        .unwrap();
        let s = map_workflow(&wf);
        assert_eq!(s.state, PipelineState::Running);
        assert!(s.image_pull_failure);
        assert!(
            s.message
                .unwrap()
                .contains("check INGESTION_IMAGE name and tag")
        );
        assert_eq!(s.run_id.as_deref(), Some("run-9"));
        assert_eq!(s.start_date_ms, Some(1_767_323_045_000));
        assert_eq!(s.end_date_ms, None);
    }
}
