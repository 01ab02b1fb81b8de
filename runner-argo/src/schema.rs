//! A small validator for the two kinds of API definition in `shared/specs/argo/`:
//! Swagger 2.0 `definitions` (with `$ref`) and CRD `openAPIV3Schema` (inline, `anyOf`,
//! `x-kubernetes-*`). It checks types, `required`, `enum`, arrays and unknown fields
//! (a property not in `properties` where no `additionalProperties` /
//! `x-kubernetes-preserve-unknown-fields` allows it). It is what the fake Argo Server uses
//! to reject bodies a real server would reject or silently drop.

use std::path::{Path, PathBuf};

use serde_json::Value;

/// Where the upstream specs are (see [`crate::schema_dir`]).
pub fn default_specs_dir() -> PathBuf {
    crate::schema_dir()
}

const INT_OR_STRING: &str = "io.k8s.apimachinery.pkg.util.intstr.IntOrString";
const QUANTITY: &str = "io.k8s.apimachinery.pkg.api.resource.Quantity";
const MAX_ERRORS: usize = 50;

/// Swagger 2.0 document (the Argo Server API).
#[derive(Debug, Clone)]
pub struct Swagger {
    doc: Value,
}

impl Swagger {
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let doc: Value = serde_json::from_str(&text)
            .map_err(|e| format!("{}: not JSON: {e}", path.display()))?;
        if doc.pointer("/definitions").is_none() {
            return Err(format!("{}: no `definitions`", path.display()));
        }
        Ok(Self { doc })
    }

    pub fn has_definition(&self, name: &str) -> bool {
        self.doc
            .pointer(&format!("/definitions/{}", escape(name)))
            .is_some()
    }

    /// Validate `value` against definition `name`; returns the errors (empty = valid).
    pub fn validate(&self, name: &str, value: &Value) -> Vec<String> {
        let mut errs = Vec::new();
        let schema = Value::String(format!("#/definitions/{name}"));
        let node = serde_json::json!({ "$ref": schema });
        walk(&node, value, "", &self.doc, &mut errs, 0);
        errs
    }

    /// Property names of a definition (for tests).
    pub fn properties(&self, name: &str) -> Vec<String> {
        self.doc
            .pointer(&format!("/definitions/{}/properties", escape(name)))
            .and_then(Value::as_object)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }
}

/// The `openAPIV3Schema` of a CRD YAML file (version `v1alpha1`).
#[derive(Debug, Clone)]
pub struct CrdSchema {
    schema: Value,
}

impl CrdSchema {
    pub fn load_yaml(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let doc: Value = serde_yaml_ng::from_str(&text)
            .map_err(|e| format!("{}: not YAML: {e}", path.display()))?;
        let versions = doc
            .pointer("/spec/versions")
            .and_then(Value::as_array)
            .ok_or("no spec.versions")?;
        let v = versions
            .iter()
            .find(|v| v.get("name").and_then(Value::as_str) == Some("v1alpha1"))
            .or(versions.first())
            .ok_or("no version")?;
        let schema = v
            .pointer("/schema/openAPIV3Schema")
            .cloned()
            .ok_or("no openAPIV3Schema")?;
        Ok(Self { schema })
    }

    pub fn validate(&self, value: &Value) -> Vec<String> {
        let mut errs = Vec::new();
        walk(&self.schema, value, "", &Value::Null, &mut errs, 0);
        errs
    }
}

fn escape(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn push(errs: &mut Vec<String>, path: &str, msg: String) {
    if errs.len() < MAX_ERRORS {
        errs.push(format!(
            "{}: {msg}",
            if path.is_empty() { "<root>" } else { path }
        ));
    }
}

fn walk(
    schema: &Value,
    value: &Value,
    path: &str,
    root: &Value,
    errs: &mut Vec<String>,
    depth: usize,
) {
    if depth > 64 || errs.len() >= MAX_ERRORS {
        return;
    }
    if value.is_null() {
        return; // Go's decoders accept null for any optional field
    }
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let name = r.trim_start_matches("#/definitions/");
        if name == INT_OR_STRING {
            if !(value.is_string() || value.is_i64() || value.is_u64()) {
                push(
                    errs,
                    path,
                    format!(
                        "expected an integer or a string (IntOrString), got {}",
                        type_name(value)
                    ),
                );
            }
            return;
        }
        if name == QUANTITY {
            if !(value.is_string() || value.is_number()) {
                push(
                    errs,
                    path,
                    format!("expected a quantity (string), got {}", type_name(value)),
                );
            }
            return;
        }
        match root.pointer(&format!("/definitions/{}", escape(name))) {
            Some(def) => walk(def, value, path, root, errs, depth + 1),
            None => push(errs, path, format!("unresolvable $ref {r}")),
        }
        return;
    }
    if schema
        .get("x-kubernetes-int-or-string")
        .and_then(Value::as_bool)
        == Some(true)
    {
        if !(value.is_string() || value.is_i64() || value.is_u64()) {
            push(
                errs,
                path,
                format!("expected an integer or a string, got {}", type_name(value)),
            );
        }
        return;
    }
    if let Some(any) = schema
        .get("anyOf")
        .or_else(|| schema.get("oneOf"))
        .and_then(Value::as_array)
    {
        let ok = any.iter().any(|s| {
            let mut e = Vec::new();
            walk(s, value, path, root, &mut e, depth + 1);
            e.is_empty()
        });
        if !ok {
            push(
                errs,
                path,
                "matches none of the allowed schemas (anyOf)".into(),
            );
        }
    }
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        for s in all {
            walk(s, value, path, root, errs, depth + 1);
        }
    }
    if let Some(t) = schema.get("type").and_then(Value::as_str) {
        let actual = type_name(value);
        let ok = match t {
            "number" => value.is_number(),
            "integer" => actual == "integer",
            other => other == actual,
        };
        if !ok {
            push(errs, path, format!("expected {t}, got {actual}"));
            return;
        }
    }
    if let Some(en) = schema.get("enum").and_then(Value::as_array)
        && !en.contains(value)
    {
        push(
            errs,
            path,
            format!("{value} is not one of {}", Value::Array(en.clone())),
        );
    }
    match value {
        Value::Object(m) => {
            let props = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties");
            let preserve = schema
                .get("x-kubernetes-preserve-unknown-fields")
                .and_then(Value::as_bool)
                == Some(true);
            if let Some(req) = schema.get("required").and_then(Value::as_array) {
                for r in req.iter().filter_map(Value::as_str) {
                    if !m.contains_key(r) {
                        push(errs, path, format!("required field `{r}` is missing"));
                    }
                }
            }
            for (k, v) in m {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                if let Some(s) = props.and_then(|p| p.get(k)) {
                    walk(s, v, &p, root, errs, depth + 1);
                } else if let Some(a) = additional.filter(|a| a.is_object()) {
                    walk(a, v, &p, root, errs, depth + 1);
                } else if additional.and_then(Value::as_bool) == Some(true) || preserve {
                } else if props.is_some_and(|p| !p.is_empty()) {
                    push(errs, &p, "unknown field".into());
                }
            }
        }
        Value::Array(a) => {
            if let Some(items) = schema.get("items") {
                for (i, v) in a.iter().enumerate() {
                    walk(items, v, &format!("{path}[{i}]"), root, errs, depth + 1);
                }
            }
        }
        Value::String(s) => {
            if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
                && s.chars().count() as u64 > max
            {
                push(errs, path, format!("longer than {max}"));
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn inline_schema_rules() {
        let crd = CrdSchema {
            schema: json!({
                "type": "object", "required": ["spec"],
                "properties": {
                    "spec": {"type": "object", "properties": {
                        "limit": {"anyOf": [{"type": "integer"}, {"type": "string"}], "x-kubernetes-int-or-string": true},
                        "n": {"type": "integer"},
                        "tags": {"type": "array", "items": {"type": "string"}},
                        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                        "labels": {"type": "object", "additionalProperties": {"type": "string"}}
                    }}
                }
            }),
        };
        assert!(crd.validate(&json!({"spec": {"limit": 3, "n": 1, "tags": ["a"], "free": {"x": 1}, "labels": {"a": "b"}}})).is_empty());
        assert!(crd.validate(&json!({"spec": {"limit": "3"}})).is_empty());
        let e = crd.validate(
            &json!({"spec": {"limit": 1.5, "n": "1", "tags": [1], "labels": {"a": 1}, "zzz": 1}}),
        );
        assert_eq!(e.len(), 5, "{e:?}");
        assert!(e.iter().any(|x| x.contains("spec.zzz: unknown field")));
        assert!(
            crd.validate(&json!({}))
                .iter()
                .any(|x| x.contains("required field `spec`"))
        );
    }
}
