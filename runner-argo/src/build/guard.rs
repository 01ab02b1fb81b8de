//! What the control plane may not choose. The image, namespace, service account,
//! volumes, host access and privileges of ingestion pods are the operator's settings
//! (env contract, spec files); a request that tries to set them is refused.

use serde_json::Value;

use super::BuildError;

/// Keys (matched case-insensitively) that a control-plane request may not carry, with why.
const FORBIDDEN: &[(&str, &str)] = &[
    ("image", "the image is the runner's INGESTION_IMAGE"),
    (
        "ingestionimage",
        "the image is the runner's INGESTION_IMAGE",
    ),
    (
        "imagepullpolicy",
        "the image is the runner's INGESTION_IMAGE",
    ),
    (
        "imagepullsecrets",
        "pull secrets are the runner's INGESTION_IMAGE_PULL_SECRETS",
    ),
    (
        "namespace",
        "the namespace is the runner's INGESTION_NAMESPACE",
    ),
    (
        "serviceaccount",
        "the service account is the runner's INGESTION_SERVICE_ACCOUNT_NAME",
    ),
    (
        "serviceaccountname",
        "the service account is the runner's INGESTION_SERVICE_ACCOUNT_NAME",
    ),
    (
        "automountserviceaccounttoken",
        "token automount is the runner's INGESTION_AUTOMOUNT_SA_TOKEN",
    ),
    (
        "volumes",
        "volumes come only from the operator's ARGO_INGESTION_*_SPEC_FILE_PATH",
    ),
    (
        "volumemounts",
        "volumes come only from the operator's ARGO_INGESTION_*_SPEC_FILE_PATH",
    ),
    (
        "volumeclaimtemplates",
        "volumes come only from the operator's spec files",
    ),
    ("hostpath", "host access is never granted by a request"),
    ("hostnetwork", "host access is never granted by a request"),
    ("hostpid", "host access is never granted by a request"),
    ("hostipc", "host access is never granted by a request"),
    ("hostports", "host access is never granted by a request"),
    ("hostport", "host access is never granted by a request"),
    ("nodename", "pod placement is the operator's setting"),
    ("privileged", "privileges are never granted by a request"),
    (
        "securitycontext",
        "privileges are never granted by a request",
    ),
    ("capabilities", "privileges are never granted by a request"),
    (
        "allowprivilegeescalation",
        "privileges are never granted by a request",
    ),
    ("podspecpatch", "the pod spec is the operator's setting"),
    ("containers", "the pod spec is the operator's setting"),
    ("initcontainers", "the pod spec is the operator's setting"),
    ("sidecars", "the pod spec is the operator's setting"),
    ("command", "the command is fixed by the pipeline type"),
    ("args", "the command is fixed by the pipeline type"),
    (
        "env",
        "the pod's env is the runner's contract (config, pipelineType, pipelineRunId, ...) plus INGESTION_EXTRA_ENVS",
    ),
    (
        "envfrom",
        "the pod's env is the runner's contract (config, pipelineType, pipelineRunId, ...) plus INGESTION_EXTRA_ENVS",
    ),
    (
        "resources",
        "resources are the runner's INGESTION_{CPU,MEMORY}_{LIMIT,REQUEST}",
    ),
];

fn forbidden(key: &str) -> Option<&'static str> {
    FORBIDDEN
        .iter()
        .find(|(f, _)| f.eq_ignore_ascii_case(key))
        .map(|(_, why)| *why)
}

/// Check the top level of an object the control plane sends (an automation workflow): any
/// forbidden key is refused.
pub fn check_top_level(v: &Value) -> Result<(), BuildError> {
    for k in v.as_object().into_iter().flat_map(|m| m.keys()) {
        if let Some(why) = forbidden(k) {
            return Err(BuildError::Forbidden {
                field: k.clone(),
                reason: why.into(),
            });
        }
    }
    Ok(())
}

/// Longest name, FQN or run id accepted (bytes).
pub const MAX_IDENTIFIER_BYTES: usize = 1024;

/// Check a name, FQN or run id from a request before it goes into object names, labels,
/// annotations and env values: no control characters, no Argo template expression (`{{`:
/// Argo would evaluate it in an env value), at most [`MAX_IDENTIFIER_BYTES`]. A run id is
/// also used to select and name things, so it may not hold whitespace, a path separator
/// (`/`, `\`) or a `..` sequence.
pub fn check_identifier(field: &str, v: &str, is_run_id: bool) -> Result<(), BuildError> {
    let invalid = |reason: String| {
        Err(BuildError::Invalid {
            field: field.to_owned(),
            reason,
        })
    };
    if v.len() > MAX_IDENTIFIER_BYTES {
        return invalid(format!(
            "{} bytes long; at most {MAX_IDENTIFIER_BYTES} are accepted",
            v.len()
        ));
    }
    if v.chars().any(char::is_control) {
        return invalid("contains a control character".into());
    }
    if v.contains("{{") {
        return invalid(
            "contains `{{`, an Argo template expression, which Argo would evaluate in the pod's env"
                .into(),
        );
    }
    if is_run_id
        && (v.chars().any(char::is_whitespace) || v.contains(['/', '\\']) || v.contains(".."))
    {
        return invalid(
            "a run id may not hold whitespace, `/`, `\\` or `..` (use letters, digits and `-_.:+`)"
                .into(),
        );
    }
    Ok(())
}

/// Check the places of an IngestionPipeline where such settings could be smuggled: its top
/// level and `airflowConfig` (the data subtrees `sourceConfig`, `openMetadataServerConnection`
/// etc. are configuration of the ingestion itself and are not pod settings).
pub fn check_pipeline(pipeline: &Value) -> Result<(), BuildError> {
    let Some(top) = pipeline.as_object() else {
        return Err(BuildError::Invalid {
            field: "pipeline".into(),
            reason: "not a JSON object".into(),
        });
    };
    for (k, _) in top {
        if let Some(why) = forbidden(k) {
            return Err(BuildError::Forbidden {
                field: k.clone(),
                reason: why.into(),
            });
        }
    }
    if let Some(af) = pipeline.get("airflowConfig").and_then(Value::as_object) {
        for (k, _) in af {
            if let Some(why) = forbidden(k) {
                return Err(BuildError::Forbidden {
                    field: format!("airflowConfig.{k}"),
                    reason: why.into(),
                });
            }
        }
    }
    Ok(())
}

/// Check a run's override object recursively: any forbidden key at any depth is refused.
pub fn check_overrides(v: &Value, path: &str) -> Result<(), BuildError> {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                if let Some(why) = forbidden(k) {
                    return Err(BuildError::Forbidden {
                        field: p,
                        reason: why.into(),
                    });
                }
                check_overrides(x, &p)?;
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                check_overrides(x, &format!("{path}[{i}]"))?;
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn env_and_pod_settings_are_refused_at_the_top_of_an_automation() {
        for key in ["env", "envFrom", "imagePullSecrets", "privileged", "args"] {
            let e = check_top_level(&json!({"name": "t", key: []})).unwrap_err();
            assert!(
                matches!(&e, BuildError::Forbidden { field, .. } if field == key),
                "{key}: {e}"
            );
        }
        assert!(check_top_level(&json!({"name": "t", "request": {"image": "x"}})).is_ok());
        let e = check_pipeline(&json!({"name": "p", "airflowConfig": {"env": []}})).unwrap_err();
        assert!(e.to_string().contains("`airflowConfig.env`"), "{e}");
    }

    #[test]
    fn identifiers_refuse_templates_control_characters_and_paths() {
        assert!(check_identifier("name", "My Pipeline (prod) ü", false).is_ok());
        assert!(check_identifier("runId", "manual__2024-01-01T00:00:00+00:00", true).is_ok());
        for (v, run_id, says) in [
            ("{{workflow.parameters.x}}", false, "`{{`"),
            ("a\u{0}b", false, "control"),
            ("a\nb", false, "control"),
            ("../../etc/passwd", true, "`..`"),
            ("a/b", true, "`/`"),
            ("a b", true, "whitespace"),
        ] {
            let e = check_identifier("runId", v, run_id)
                .unwrap_err()
                .to_string();
            assert!(e.contains("`runId`") && e.contains(says), "{v:?}: {e}");
        }
        let long = "a".repeat(MAX_IDENTIFIER_BYTES + 1);
        assert!(check_identifier("name", &long, false).is_err());
        // Outside run ids, `/` is an ordinary character of a name.
        assert!(check_identifier("fullyQualifiedName", "svc/a..b", false).is_ok());
    }
}
