//! Secrets from a JSON file (`SECRETS_MANAGER=file`, `SECRETS_FILE`), for local use and tests.
//!
//! The file is a JSON object: secret name -> value. A string value is the secret's text; any other
//! JSON value (an object of keys, a number) is the secret's JSON text. Names are looked up as
//! written, then without a leading slash. The file is re-read on each (uncached) fetch.

use std::path::PathBuf;

use async_trait::async_trait;
use serde_json::Value;

use crate::error::{ErrorKind, ProviderError};
use crate::provider::{ProviderKind, SecretProvider};
use crate::value::SecretValue;

/// JSON-file provider.
#[derive(Debug, Clone)]
pub struct FileProvider {
    path: PathBuf,
}

impl FileProvider {
    /// Read secrets from this file.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    async fn load(&self) -> Result<serde_json::Map<String, Value>, ProviderError> {
        let text = tokio::fs::read(&self.path).await.map_err(|e| {
            let kind = match e.kind() {
                std::io::ErrorKind::PermissionDenied => ErrorKind::AccessDenied,
                _ => ErrorKind::Unavailable,
            };
            ProviderError::new(
                kind,
                format!("cannot read secrets file {}", self.path.display()),
            )
            .with_source(e)
        })?;
        match serde_json::from_slice::<Value>(&text) {
            Ok(Value::Object(map)) => Ok(map),
            // Not naming the serde error: its message may quote the file's content.
            _ => Err(ProviderError::new(
                ErrorKind::Malformed,
                format!("secrets file {} is not a JSON object", self.path.display()),
            )),
        }
    }
}

#[async_trait]
impl SecretProvider for FileProvider {
    fn kind(&self) -> ProviderKind {
        ProviderKind::File
    }

    fn names(&self, id: &str) -> Vec<String> {
        super::slash_variants(id)
    }

    fn name_rules(&self) -> &'static str {
        "any key of the secrets file's JSON object"
    }

    async fn fetch(&self, name: &str, version: Option<&str>) -> Result<SecretValue, ProviderError> {
        if version.is_some() {
            return Err(ProviderError::new(
                ErrorKind::Unsupported,
                "the file provider has no versions; remove `?version=`",
            ));
        }
        let map = self.load().await?;
        match map.get(name) {
            None => Err(ProviderError::new(
                ErrorKind::NotFound,
                format!("no key `{name}` in secrets file {}", self.path.display()),
            )),
            Some(Value::String(s)) => Ok(SecretValue::new(s.as_bytes())),
            Some(other) => Ok(SecretValue::new(other.to_string())),
        }
    }

    async fn health(&self) -> Result<(), ProviderError> {
        self.load().await.map(|_| ())
    }
}
