//! Merging operator YAML (container / workflow spec files, pipeline-type configs) into
//! the objects the builders make.
//!
//! Rule: objects merge key by key (recursively); arrays are appended (ours first);
//! scalars from the operator's file replace ours. The runner's env contract names
//! cannot be set by a file.

use serde_json::Value;

use super::BuildError;
use super::envs::RESERVED_ENV;

pub fn deep_merge(base: &mut Value, overlay: &Value) {
    match (base, overlay) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(existing) => deep_merge(existing, v),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (Value::Array(b), Value::Array(o)) => b.extend(o.iter().cloned()),
        (b, o) => *b = o.clone(),
    }
}

/// Parse a spec file's text (YAML or JSON) into a JSON object. `what` names the setting.
pub fn parse_spec(text: &str, what: &str) -> Result<Value, BuildError> {
    if text.trim().is_empty() {
        return Ok(Value::Object(Default::default()));
    }
    let v: Value = serde_yaml_ng::from_str(text)
        .map_err(|e| BuildError::Config(format!("{what}: not valid YAML: {e}")))?;
    match v {
        Value::Object(_) => Ok(v),
        Value::Null => Ok(Value::Object(Default::default())),
        _ => Err(BuildError::Config(format!(
            "{what}: must be a YAML mapping (field: value ...)"
        ))),
    }
}

/// A container overlay may not set the env names the runner owns.
pub fn check_container_overlay(overlay: &Value, what: &str) -> Result<(), BuildError> {
    if let Some(env) = overlay.get("env").and_then(Value::as_array) {
        for e in env {
            if let Some(n) = e.get("name").and_then(Value::as_str)
                && RESERVED_ENV.contains(&n)
            {
                return Err(BuildError::Config(format!(
                    "{what}: env {n:?} is set by the runner and cannot be overridden"
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_rules() {
        let mut a = json!({"a": {"x": 1, "l": [1]}, "s": "ours"});
        deep_merge(&mut a, &json!({"a": {"y": 2, "l": [2]}, "s": "theirs"}));
        assert_eq!(
            a,
            json!({"a": {"x": 1, "y": 2, "l": [1, 2]}, "s": "theirs"})
        );
    }

    #[test]
    fn spec_parse_errors_name_the_setting() {
        assert!(
            parse_spec("- a\n- b", "ARGO_INGESTION_CONTAINER_SPEC_FILE_PATH")
                .unwrap_err()
                .to_string()
                .contains("ARGO_INGESTION_CONTAINER_SPEC_FILE_PATH")
        );
        assert_eq!(parse_spec("a: 1", "x").unwrap(), json!({"a": 1}));
        let e = check_container_overlay(&json!({"env": [{"name": "config", "value": "x"}]}), "F")
            .unwrap_err();
        assert!(e.to_string().contains("config"));
    }
}
