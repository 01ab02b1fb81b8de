//! Deterministic object names, labels and selectors.
//!
//! A run's Workflow name is a function of (pipeline FQN, run id): creating it twice is a
//! 409 at the Argo Server, never a second run. A CronWorkflow's name is a function of the
//! FQN alone. Argo limits: 63 characters for workflows; 52 for cron workflows (Argo adds
//! `-<10 digit timestamp>` to the workflows they create).

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

pub const WORKFLOW_NAME_MAX: usize = 63;
pub const CRON_WORKFLOW_NAME_MAX: usize = 52;

/// Label / annotation keys (prefix `ingestion-runner.io/`).
pub const LABEL_RUNNER_ID: &str = "ingestion-runner.io/runner-id";
pub const LABEL_PIPELINE_FQN_HASH: &str = "ingestion-runner.io/pipeline-fqn-hash";
pub const LABEL_PIPELINE_TYPE: &str = "ingestion-runner.io/pipeline-type";
pub const LABEL_RUN_ID: &str = "ingestion-runner.io/run-id";
pub const LABEL_KIND: &str = "ingestion-runner.io/kind";
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "hybrid-ingestion-runner";
pub const ANNOTATION_PIPELINE_FQN: &str = "ingestion-runner.io/pipeline-fqn";
pub const ANNOTATION_PIPELINE_ID: &str = "ingestion-runner.io/pipeline-id";
pub const ANNOTATION_RUN_ID: &str = "ingestion-runner.io/run-id";

/// Hex sha256 of `parts` joined by `\n`, cut to `n` characters.
pub fn short_hash(parts: &[&str], n: usize) -> String {
    let mut h = Sha256::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            h.update(b"\n");
        }
        h.update(p.as_bytes());
    }
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = h.finalize();
    let n = n.min(digest.len() * 2);
    let mut hex = String::with_capacity(n);
    for b in digest.iter().take(n.div_ceil(2)) {
        hex.push(char::from(HEX[usize::from(b >> 4)]));
        hex.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    hex.truncate(n);
    hex
}

/// Lowercase DNS-1123 slug of `s` (a-z, 0-9, `-`), at most `max` characters, never empty.
pub fn slug(s: &str, max: usize) -> String {
    let mut out = String::new();
    let mut dash = false;
    for ch in s.chars() {
        let c = ch.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() {
            out.push(c);
            dash = false;
        } else if !dash && !out.is_empty() {
            out.push('-');
            dash = true;
        }
    }
    out.truncate(max);
    let out = out.trim_matches('-').to_owned();
    if out.is_empty() {
        "pipeline".into()
    } else {
        out
    }
}

/// `om-<slug of pipeline name>-<10 hex of sha256(fqn, run id)>`, <= 63.
pub fn workflow_name(pipeline_name: &str, fqn: &str, run_id: &str) -> String {
    let h = short_hash(&[fqn, run_id], 10);
    format!(
        "om-{}-{h}",
        slug(pipeline_name, WORKFLOW_NAME_MAX - 3 - 1 - 10)
    )
}

/// `om-<slug>-<10 hex of sha256(fqn)>`, <= 52.
pub fn cron_workflow_name(pipeline_name: &str, fqn: &str) -> String {
    let h = short_hash(&[fqn], 10);
    format!(
        "om-{}-{h}",
        slug(pipeline_name, CRON_WORKFLOW_NAME_MAX - 3 - 1 - 10)
    )
}

/// Name of the per-run (or per-cron) Secret holding `config`.
pub fn config_secret_name(owner_name: &str) -> String {
    format!("{owner_name}-config")
}

/// A valid Kubernetes label value (<= 63, `[A-Za-z0-9]([-_.A-Za-z0-9]*[A-Za-z0-9])?`):
/// `s` itself when valid, otherwise a slug plus a hash (so distinct inputs stay distinct).
pub fn label_value(s: &str) -> String {
    if is_valid_label_value(s) {
        return s.to_owned();
    }
    let h = short_hash(&[s], 10);
    format!("{}-{h}", slug(s, 63 - 11))
}

pub fn is_valid_label_value(s: &str) -> bool {
    s.len() <= 63
        && (s.is_empty()
            || (s
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                && s.starts_with(|c: char| c.is_ascii_alphanumeric())
                && s.ends_with(|c: char| c.is_ascii_alphanumeric())))
}

/// Selector of every object of this runner.
pub fn runner_selector(runner_id: &str) -> String {
    format!("{LABEL_RUNNER_ID}={}", label_value(runner_id))
}

/// Selector of a pipeline's objects (of this runner).
pub fn pipeline_selector(runner_id: &str, fqn: &str) -> String {
    format!(
        "{},{LABEL_PIPELINE_FQN_HASH}={}",
        runner_selector(runner_id),
        fqn_hash(fqn)
    )
}

/// Selector of one run.
pub fn run_selector(runner_id: &str, run_id: &str) -> String {
    format!(
        "{},{LABEL_RUN_ID}={}",
        runner_selector(runner_id),
        label_value(run_id)
    )
}

/// Selector of this runner's unfinished workflows (after a restart: re-attach to them).
pub fn unfinished_selector(runner_id: &str) -> String {
    format!(
        "{},workflows.argoproj.io/completed!=true",
        runner_selector(runner_id)
    )
}

pub fn fqn_hash(fqn: &str) -> String {
    short_hash(&[fqn], 16)
}

pub(crate) fn base_labels(
    runner_id: &str,
    fqn: &str,
    pipeline_type: &str,
    kind: &str,
) -> BTreeMap<String, String> {
    BTreeMap::from([
        (LABEL_MANAGED_BY.to_owned(), MANAGED_BY.to_owned()),
        (LABEL_RUNNER_ID.to_owned(), label_value(runner_id)),
        (LABEL_PIPELINE_FQN_HASH.to_owned(), fqn_hash(fqn)),
        (LABEL_PIPELINE_TYPE.to_owned(), label_value(pipeline_type)),
        (LABEL_KIND.to_owned(), kind.to_owned()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_deterministic_and_bounded() {
        let long = "a".repeat(300);
        let w = workflow_name(&long, "svc.x", "run-1");
        assert!(w.len() <= WORKFLOW_NAME_MAX, "{w}");
        assert_eq!(w, workflow_name(&long, "svc.x", "run-1"));
        assert_ne!(w, workflow_name(&long, "svc.x", "run-2"));
        let c = cron_workflow_name(&long, "svc.x");
        assert!(c.len() <= CRON_WORKFLOW_NAME_MAX, "{c}");
        assert_eq!(
            workflow_name("My Pipeline_1!", "s.p", "r"),
            format!("om-my-pipeline-1-{}", short_hash(&["s.p", "r"], 10))
        );
        assert!(workflow_name("___", "s.p", "r").starts_with("om-pipeline-"));
        for n in [&w, &c] {
            assert!(
                n.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            );
            assert!(!n.ends_with('-') && !n.contains("--"), "{n}");
        }
    }

    #[test]
    fn short_hash_is_sha256_hex_cut_to_length() {
        // FIPS 180-2's test vector: sha256("abc").
        let full = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(short_hash(&["abc"], 64), full);
        assert_eq!(short_hash(&["abc"], 100), full);
        assert_eq!(short_hash(&["abc"], 10), &full[..10]);
        assert_eq!(short_hash(&["abc"], 7), &full[..7]);
        assert_eq!(short_hash(&["abc"], 0), "");
        // Parts are joined by a newline.
        assert_eq!(short_hash(&["a", "bc"], 64), short_hash(&["a\nbc"], 64));
        assert_ne!(short_hash(&["a", "bc"], 64), short_hash(&["abc"], 64));
    }

    #[test]
    fn label_values_are_valid() {
        assert_eq!(label_value("runner-1"), "runner-1");
        let v =
            label_value("svc.db.schema.a very long and spaced pipeline name that goes on and on");
        assert!(is_valid_label_value(&v), "{v}");
        assert!(is_valid_label_value(&label_value("-x-")));
        assert_ne!(label_value("a b"), label_value("a_b c"));
        assert!(unfinished_selector("r1").contains("workflows.argoproj.io/completed!=true"));
    }
}
