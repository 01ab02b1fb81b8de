//! The `secret:` reference grammar and finding references in a JSON config.
//!
//! ```text
//! reference := "secret:" id [ "?version=" version ]
//! id        := 1*( any char except control chars, whitespace and "?" )
//! version   := 1*( ALPHA / DIGIT / "-" / "_" / "." )
//! ```
//!
//! The whole string value must start with `secret:` (case-sensitive, no leading whitespace); a value
//! that merely contains `secret:` later on is not a reference. See docs/secrets.md for the
//! resolution rule.

use std::fmt;

use serde_json::Value;

use crate::error::SecretError;

/// The prefix that marks a reference.
pub const PREFIX: &str = "secret:";

/// Longest id accepted (AWS ARNs are at most 2048 characters).
pub const MAX_ID_LEN: usize = 2048;

/// A parsed `secret:` reference. Holds no secret value: printing it is safe.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SecretRef {
    raw: String,
    id: String,
    version: Option<String>,
}

impl SecretRef {
    /// Parse a `secret:<id>[?version=<v>]` string.
    pub fn parse(raw: &str) -> Result<Self, SecretError> {
        let Some(rest) = raw.strip_prefix(PREFIX) else {
            return Err(SecretError::invalid(
                raw,
                "it does not start with `secret:`",
            ));
        };
        let (id, version) = match rest.split_once('?') {
            None => (rest, None),
            Some((id, query)) => {
                let Some(v) = query.strip_prefix("version=") else {
                    return Err(SecretError::invalid(
                        raw,
                        "the only suffix allowed after `?` is `version=<version>`",
                    ));
                };
                if v.is_empty()
                    || !v
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                {
                    return Err(SecretError::invalid(
                        raw,
                        "the version must be non-empty and made of letters, digits, `-`, `_` and `.`",
                    ));
                }
                (id, Some(v.to_owned()))
            }
        };
        if id.trim_start_matches('/').is_empty() {
            return Err(SecretError::invalid(raw, "the secret id is empty"));
        }
        if id.len() > MAX_ID_LEN {
            return Err(SecretError::invalid(
                raw,
                format!("the secret id is longer than {MAX_ID_LEN} bytes"),
            ));
        }
        if let Some(c) = id.chars().find(|c| c.is_whitespace() || c.is_control()) {
            return Err(SecretError::invalid(
                raw,
                format!(
                    "the secret id contains the character {c:?} (whitespace and control characters are not allowed)"
                ),
            ));
        }
        if id.ends_with('/') {
            return Err(SecretError::invalid(raw, "the secret id ends with `/`"));
        }
        if id.split('/').any(|seg| seg == "." || seg == "..") {
            return Err(SecretError::invalid(
                raw,
                "the secret id contains a `.` or `..` path segment",
            ));
        }
        if id.contains("//") {
            return Err(SecretError::invalid(
                raw,
                "the secret id contains an empty path segment (`//`)",
            ));
        }
        Ok(Self {
            raw: raw.to_owned(),
            id: id.to_owned(),
            version,
        })
    }

    /// Whether a string value is a reference (starts with `secret:`). It may still fail to parse.
    pub fn is_reference(s: &str) -> bool {
        s.starts_with(PREFIX)
    }

    /// The reference as written (`secret:...`).
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The id: everything after `secret:` and before `?version=`.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The requested version or stage, if any.
    pub fn version(&self) -> Option<&str> {
        self.version.as_deref()
    }

    /// Whether the id is an AWS ARN.
    pub fn is_arn(&self) -> bool {
        self.id.starts_with("arn:")
    }

    /// The split used by the JSON-key rule: `(parent id, key)` where key is the last path segment.
    /// `None` when the id has a single segment (or, for an ARN, when the secret name has one).
    pub fn key_split(&self) -> Option<(&str, &str)> {
        let (parent, key) = self.id.rsplit_once('/')?;
        if key.is_empty() || parent.trim_start_matches('/').is_empty() {
            return None;
        }
        if self.is_arn() {
            // The name after `:secret:` must stay non-empty.
            let name = parent.split_once(":secret:").map(|(_, n)| n)?;
            if name.is_empty() {
                return None;
            }
        }
        Some((parent, key))
    }
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl fmt::Debug for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretRef({:?})", self.raw)
    }
}

impl std::str::FromStr for SecretRef {
    type Err = SecretError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// A reference found in a config, with its location as a JSON pointer (RFC 6901).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundReference {
    /// Where it is, e.g. `/source/serviceConnection/config/password`.
    pub pointer: String,
    /// The parsed reference.
    pub reference: SecretRef,
}

/// List every reference in a JSON value, walking objects and arrays recursively (object keys are
/// not references, only string values). Fails on the first string that starts with `secret:` but
/// does not parse, naming its location.
pub fn find_references(config: &Value) -> Result<Vec<FoundReference>, SecretError> {
    let mut out = Vec::new();
    let mut pointer = String::new();
    walk(config, &mut pointer, &mut out)?;
    Ok(out)
}

/// Parse a YAML document (e.g. the ingestion workflow config) into a JSON value, for
/// [`find_references`] and [`crate::SecretResolver::resolve_config`].
pub fn parse_yaml(text: &str) -> Result<Value, SecretError> {
    serde_yaml_ng::from_str::<Value>(text).map_err(|e| SecretError::InvalidDocument {
        format: "YAML",
        reason: e.to_string(),
    })
}

/// [`find_references`] on a YAML document.
pub fn find_references_yaml(text: &str) -> Result<Vec<FoundReference>, SecretError> {
    find_references(&parse_yaml(text)?)
}

fn walk(v: &Value, pointer: &mut String, out: &mut Vec<FoundReference>) -> Result<(), SecretError> {
    match v {
        Value::String(s) if SecretRef::is_reference(s) => {
            let reference = SecretRef::parse(s).map_err(|e| match e {
                SecretError::InvalidReference { reference, reason } => {
                    SecretError::InvalidReference {
                        reference,
                        reason: format!("{reason} (at {})", display_pointer(pointer)),
                    }
                }
                other => other,
            })?;
            out.push(FoundReference {
                pointer: pointer.clone(),
                reference,
            });
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = pointer.len();
                pointer.push('/');
                {
                    use std::fmt::Write as _;
                    let _ = write!(pointer, "{i}");
                }
                walk(item, pointer, out)?;
                pointer.truncate(len);
            }
        }
        Value::Object(map) => {
            for (k, item) in map {
                let len = pointer.len();
                pointer.push('/');
                // RFC 6901 escaping, without a copy of keys that need none (almost all).
                if k.contains(['~', '/']) {
                    pointer.push_str(&k.replace('~', "~0").replace('/', "~1"));
                } else {
                    pointer.push_str(k);
                }
                walk(item, pointer, out)?;
                pointer.truncate(len);
            }
        }
        _ => {}
    }
    Ok(())
}

fn display_pointer(p: &str) -> &str {
    if p.is_empty() { "the root" } else { p }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use serde_json::json;

    #[test]
    fn parses_plain_and_versioned() {
        let r = SecretRef::parse("secret:/my/db/creds/username").unwrap();
        assert_eq!(r.id(), "/my/db/creds/username");
        assert_eq!(r.version(), None);
        assert_eq!(r.key_split(), Some(("/my/db/creds", "username")));
        let r = SecretRef::parse("secret:db?version=AWSPREVIOUS").unwrap();
        assert_eq!(r.id(), "db");
        assert_eq!(r.version(), Some("AWSPREVIOUS"));
        assert_eq!(r.key_split(), None);
        assert_eq!(r.to_string(), "secret:db?version=AWSPREVIOUS");
    }

    #[test]
    fn arn_split_keeps_the_name() {
        let r = SecretRef::parse(
            "secret:arn:aws:secretsmanager:us-east-1:123456789012:secret:my/db/username",
        )
        .unwrap();
        assert!(r.is_arn());
        assert_eq!(
            r.key_split(),
            Some((
                "arn:aws:secretsmanager:us-east-1:123456789012:secret:my/db",
                "username"
            ))
        );
        let r = SecretRef::parse("secret:arn:aws:secretsmanager:us-east-1:1:secret:db").unwrap();
        assert_eq!(r.key_split(), None);
    }

    #[test]
    fn rejects_bad_references() {
        for bad in [
            "secret:",
            "secret:/",
            "secret: db",
            "secret:db?stage=x",
            "secret:db?version=",
            "secret:db?version=a b",
            "secret:a//b",
            "secret:a/",
            "secret:a/../b",
            "secret:./b",
            "Secret:db",
            "xsecret:db",
        ] {
            let e = SecretRef::parse(bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidReference, "{bad}");
            assert!(e.to_string().contains("fix:"), "{e}");
        }
        let long = format!("secret:{}", "a".repeat(MAX_ID_LEN + 1));
        assert!(SecretRef::parse(&long).is_err());
    }

    #[test]
    fn finds_references_recursively_with_pointers() {
        let cfg = json!({
            "source": {"serviceConnection": {"config": {
                "username": "secret:/db/creds/username",
                "password": "secret:/db/creds/password",
                "hostPort": "db:5432",
                "note": "this has secret: in the middle",
                "list": ["a", "secret:x", {"k/~": "secret:y"}],
            }}},
            "secret:not-a-value": 1,
        });
        let found = find_references(&cfg).unwrap();
        let got: Vec<(&str, &str)> = found
            .iter()
            .map(|f| (f.pointer.as_str(), f.reference.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("/source/serviceConnection/config/list/1", "secret:x"),
                ("/source/serviceConnection/config/list/2/k~1~0", "secret:y"),
                (
                    "/source/serviceConnection/config/password",
                    "secret:/db/creds/password"
                ),
                (
                    "/source/serviceConnection/config/username",
                    "secret:/db/creds/username"
                ),
            ]
        );
        for f in &found {
            assert!(cfg.pointer(&f.pointer).is_some(), "{}", f.pointer);
        }
    }

    #[test]
    fn yaml_documents_are_walked_too() {
        let text = "source:\n  serviceConnection:\n    config:\n      password: secret:/db/creds/password\n      hosts: [a, 'secret:h']\n      note: not secret:x\n";
        let found = find_references_yaml(text).unwrap();
        let got: Vec<&str> = found.iter().map(|f| f.pointer.as_str()).collect();
        assert_eq!(
            got,
            vec![
                "/source/serviceConnection/config/hosts/1",
                "/source/serviceConnection/config/password"
            ]
        );
        assert_eq!(
            find_references_yaml("a: [").unwrap_err().kind(),
            ErrorKind::Malformed
        );
    }

    #[test]
    fn malformed_reference_in_config_names_its_location() {
        let cfg = json!({"a": {"b": "secret:"}});
        let e = find_references(&cfg).unwrap_err();
        assert!(e.to_string().contains("/a/b"), "{e}");
    }
}
