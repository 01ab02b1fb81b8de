//! Types that hold resolved values. Their `Debug` and `Display` print a mask, never the value.

use std::fmt;
use std::sync::Arc;
use std::sync::OnceLock;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::mask::Masker;
use crate::reference::FoundReference;

/// What `Debug`/`Display` print instead of a value.
pub const MASK: &str = "***";

/// A resolved secret value (bytes; usually UTF-8 text). Cheap to clone (shared).
///
/// `Debug` and `Display` print `***`. Read it with [`SecretValue::expose_str`] or
/// [`SecretValue::expose_bytes`] only where it is handed to the workload.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(Arc<[u8]>);

impl SecretValue {
    /// Wrap bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(Arc::from(bytes.into().into_boxed_slice()))
    }

    /// The bytes.
    pub fn expose_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The value as text, if it is UTF-8.
    pub fn expose_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The first `n` hex digits of the value's SHA-256 (for `secrets resolve` output: lets an
    /// operator compare values without printing them). `n` is capped at 64.
    pub fn sha256_prefix(&self, n: usize) -> String {
        let digest = Sha256::digest(&self.0);
        let mut hex = String::with_capacity(64);
        for b in digest {
            hex.push_str(&format!("{b:02x}"));
        }
        hex.truncate(n.min(64));
        hex
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretValue({MASK})")
    }
}

impl fmt::Display for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

/// A config whose references were all resolved. `Debug` prints the *original* config (with its
/// `secret:` references), never the resolved one.
///
/// The config with the values in place is built the first time it is asked for
/// ([`Self::expose`], [`Self::into_exposed`], [`Self::into_configs`]): a caller that only
/// needed the references checked (a pod that resolves them itself) never copies the config,
/// and the values stay in their [`SecretValue`]s until a workload needs them.
#[derive(Clone, Default)]
pub struct ResolvedConfig {
    pub(crate) original: Value,
    /// Built on first use from `original`, `references` and `slots`.
    pub(crate) resolved: OnceLock<Value>,
    pub(crate) references: Vec<FoundReference>,
    /// For each of `references`, the index of its value in `values` (always UTF-8: checked
    /// when it was resolved).
    pub(crate) slots: Vec<usize>,
    pub(crate) values: Vec<SecretValue>,
    pub(crate) masker: Masker,
}

impl ResolvedConfig {
    /// A config that needs no resolving (no secrets backend in use): exposed as it is.
    pub fn without_references(config: Value) -> Self {
        Self {
            original: config,
            ..Self::default()
        }
    }

    /// The original with each reference replaced by its value.
    fn substituted(&self) -> Value {
        let mut out = self.original.clone();
        for (f, &i) in self.references.iter().zip(&self.slots) {
            let text = self.values.get(i).and_then(SecretValue::expose_str);
            if let (Some(slot), Some(text)) = (out.pointer_mut(&f.pointer), text) {
                *slot = Value::String(text.to_owned());
            }
        }
        out
    }

    /// The config with values substituted. Hand it to the workload only (child env/stdin,
    /// a per-run Kubernetes Secret); never log or send it upstream.
    pub fn expose(&self) -> &Value {
        if self.references.is_empty() {
            return &self.original;
        }
        self.resolved.get_or_init(|| self.substituted())
    }

    /// Take the resolved config out.
    pub fn into_exposed(self) -> Value {
        if self.references.is_empty() {
            return self.original;
        }
        self.into_configs().1
    }

    /// The resolved config as YAML text (for a workload that reads YAML). Same care as
    /// [`Self::expose`].
    pub fn expose_yaml(&self) -> String {
        serde_yaml_ng::to_string(self.expose()).unwrap_or_default()
    }

    /// The config as it was given (references, no values): safe to log or store.
    pub fn original(&self) -> &Value {
        &self.original
    }

    /// Takes the config as it was given out, without building the resolved one.
    pub fn into_original(self) -> Value {
        self.original
    }

    /// Takes both configs out: `(original, resolved)`. Same care for `resolved` as
    /// [`Self::expose`].
    pub fn into_configs(mut self) -> (Value, Value) {
        if self.references.is_empty() {
            let copy = self.original.clone();
            return (self.original, copy);
        }
        let resolved = match self.resolved.take() {
            Some(v) => v,
            None => self.substituted(),
        };
        (self.original, resolved)
    }

    /// Where each reference was (JSON pointers) and what it was.
    pub fn references(&self) -> &[FoundReference] {
        &self.references
    }

    /// The distinct values resolved for this config.
    pub fn values(&self) -> &[SecretValue] {
        &self.values
    }

    /// A masker that redacts this config's resolved values from any text.
    pub fn masker(&self) -> &Masker {
        &self.masker
    }
}

impl fmt::Debug for ResolvedConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResolvedConfig")
            .field("original", &self.original)
            .field("references", &self.references.len())
            .field("resolved", &MASK)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_mask() {
        let v = SecretValue::new("hunter2");
        assert_eq!(format!("{v}"), "***");
        assert_eq!(format!("{v:?}"), "SecretValue(***)");
        assert_eq!(format!("{v:#?}"), "SecretValue(***)");
        assert_eq!(v.expose_str(), Some("hunter2"));
        assert_eq!(v.len(), 7);
        // sha256("hunter2") = f52fbd32b2b3b86ff88ef6c490628285f482af15ddcb29541f94bcf526a3f6c7
        assert_eq!(v.sha256_prefix(8), "f52fbd32");
    }
}
