//! An in-memory provider for tests and embedding: counts calls, can inject failures and delays.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;

use crate::error::{ErrorKind, ProviderError};
use crate::provider::{ProviderKind, SecretProvider};
use crate::value::SecretValue;

/// In-memory secrets. Names are matched as written, then without a leading slash (like AWS).
#[derive(Default)]
pub struct MemoryProvider {
    secrets: Mutex<HashMap<(String, Option<String>), SecretValue>>,
    failures: Mutex<HashMap<String, VecDeque<ProviderError>>>,
    delay: Mutex<Option<Duration>>,
    calls: AtomicU64,
}

impl std::fmt::Debug for MemoryProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryProvider")
            .field("calls", &self.calls())
            .finish_non_exhaustive()
    }
}

impl MemoryProvider {
    /// Empty.
    pub fn new() -> Self {
        Self::default()
    }

    /// Store (or replace) the current value of a secret.
    pub fn insert(&self, name: &str, value: impl Into<Vec<u8>>) -> &Self {
        self.lock_secrets()
            .insert((name.to_owned(), None), SecretValue::new(value));
        self
    }

    /// Store a specific version of a secret (read with `?version=`).
    pub fn insert_version(&self, name: &str, version: &str, value: impl Into<Vec<u8>>) -> &Self {
        self.lock_secrets().insert(
            (name.to_owned(), Some(version.to_owned())),
            SecretValue::new(value),
        );
        self
    }

    /// Remove a secret (all versions).
    pub fn remove(&self, name: &str) {
        self.lock_secrets().retain(|(n, _), _| n != name);
    }

    /// The next fetches of `name` fail with these errors, in order.
    pub fn fail_next(&self, name: &str, errors: impl IntoIterator<Item = ProviderError>) {
        self.failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(name.to_owned())
            .or_default()
            .extend(errors);
    }

    /// Each fetch waits this long first (use with paused tokio time).
    pub fn set_delay(&self, delay: Option<Duration>) {
        *self
            .delay
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = delay;
    }

    /// Fetch calls made so far.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }

    fn lock_secrets(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<(String, Option<String>), SecretValue>> {
        self.secrets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl SecretProvider for MemoryProvider {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Memory
    }

    fn names(&self, id: &str) -> Vec<String> {
        super::slash_variants(id)
    }

    fn name_rules(&self) -> &'static str {
        "any name"
    }

    async fn fetch(&self, name: &str, version: Option<&str>) -> Result<SecretValue, ProviderError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let delay = *self
            .delay
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(d) = delay {
            tokio::time::sleep(d).await;
        }
        let injected = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get_mut(name)
            .and_then(VecDeque::pop_front);
        if let Some(e) = injected {
            return Err(e);
        }
        self.lock_secrets()
            .get(&(name.to_owned(), version.map(ToOwned::to_owned)))
            .cloned()
            .ok_or_else(|| ProviderError::new(ErrorKind::NotFound, format!("no secret `{name}`")))
    }
}
