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
    (
        "resources",
        "resources are the runner's INGESTION_{CPU,MEMORY}_{LIMIT,REQUEST}",
    ),
];

fn forbidden(key: &str) -> Option<&'static str> {
    let k = key.to_ascii_lowercase();
    FORBIDDEN.iter().find(|(f, _)| *f == k).map(|(_, why)| *why)
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
