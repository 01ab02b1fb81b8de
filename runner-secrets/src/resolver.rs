//! Resolution: the rule, the allow-list, the cache (TTL, size bound, single-flight, stale-on-error),
//! retries with backoff and a per-provider concurrency cap.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{OnceCell, Semaphore};
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::error::{ErrorKind, ProviderError, SecretError};
use crate::mask::Masker;
use crate::provider::{ProviderKind, SecretProvider};
use crate::reference::{SecretRef, find_references};
use crate::value::{ResolvedConfig, SecretValue};

/// Tuning of a [`SecretResolver`]. [`Default`] gives the documented defaults.
#[derive(Debug, Clone)]
pub struct ResolverOptions {
    /// Id prefixes that may be read; empty = all (`SECRETS_ALLOWED_PREFIXES`).
    pub allowed_prefixes: Vec<String>,
    /// How long a value is served from cache (`SECRETS_CACHE_TTL_SECONDS`, 300 s). Zero disables caching.
    pub cache_ttl: Duration,
    /// How long "not found" / "access denied" answers are cached (30 s).
    pub negative_ttl: Duration,
    /// Most cached entries; the least recently used goes first (`SECRETS_CACHE_MAX_ENTRIES`, 1000).
    pub cache_max_entries: usize,
    /// After expiry, how long a cached value may still be served when refreshing fails with a
    /// transient error (`SECRETS_STALE_GRACE_SECONDS`, 600 s). Zero disables stale serving.
    pub stale_grace: Duration,
    /// Most concurrent calls to the provider (`SECRETS_MAX_CONCURRENCY`, 8).
    pub max_concurrency: usize,
    /// Timeout of one provider call (`SECRETS_TIMEOUT_SECONDS`, 5 s).
    pub attempt_timeout: Duration,
    /// Attempts per lookup, first included (`SECRETS_MAX_ATTEMPTS`, 4).
    pub max_attempts: u32,
    /// First backoff delay (200 ms); doubles per attempt, with jitter.
    pub backoff_base: Duration,
    /// Largest backoff delay, and largest Retry-After honoured (10 s).
    pub backoff_max: Duration,
    /// Time budget of one lookup, retries included (20 s): never block a minute.
    pub total_timeout: Duration,
}

impl Default for ResolverOptions {
    fn default() -> Self {
        Self {
            allowed_prefixes: Vec::new(),
            cache_ttl: Duration::from_secs(300),
            negative_ttl: Duration::from_secs(30),
            cache_max_entries: 1000,
            stale_grace: Duration::from_secs(600),
            max_concurrency: 8,
            attempt_timeout: Duration::from_secs(5),
            max_attempts: 4,
            backoff_base: Duration::from_millis(200),
            backoff_max: Duration::from_secs(10),
            total_timeout: Duration::from_secs(20),
        }
    }
}

/// Which part of the resolution rule produced a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    /// The id (as the provider names it) is a secret: its whole value.
    WholeSecret {
        /// The provider-native name read.
        name: String,
    },
    /// The parent path is a secret holding a JSON object; the last segment is a key of it.
    JsonKey {
        /// The provider-native name of the parent secret.
        secret: String,
        /// The key.
        key: String,
    },
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::WholeSecret { name } => write!(f, "whole secret `{name}`"),
            Self::JsonKey { secret, key } => write!(f, "key `{key}` of JSON secret `{secret}`"),
        }
    }
}

/// One resolved reference. `Debug` masks the value.
#[derive(Debug, Clone)]
pub struct Resolution {
    /// The reference.
    pub reference: SecretRef,
    /// The value.
    pub value: SecretValue,
    /// Which rule applied.
    pub rule: Rule,
    /// Which provider.
    pub provider: ProviderKind,
    /// Served from cache after its TTL because the backend failed (a warning was logged).
    pub stale: bool,
}

impl Resolution {
    /// `ok <provider> <n> bytes sha256:<first 8 hex>`: the `secrets resolve` line, without the value.
    pub fn summary(&self) -> String {
        format!(
            "ok {} {} bytes sha256:{}",
            self.provider,
            self.value.len(),
            self.value.sha256_prefix(8)
        )
    }
}

/// Counters, for tests, benchmarks and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResolverStats {
    /// Calls made to the provider (each retry counts).
    pub provider_calls: u64,
    /// Lookups answered from cache.
    pub cache_hits: u64,
    /// Lookups answered with a stale value after a failed refresh.
    pub stale_served: u64,
    /// Entries in the cache now.
    pub cache_entries: usize,
}

type Key = (String, Option<String>);
type Outcome = Result<SecretValue, ProviderError>;

struct Entry {
    outcome: Outcome,
    stored: Instant,
    used: Instant,
}

#[derive(Default)]
struct CacheState {
    entries: HashMap<Key, Entry>,
    inflight: HashMap<Key, Arc<OnceCell<Outcome>>>,
}

struct Inner {
    provider: Arc<dyn SecretProvider>,
    opts: ResolverOptions,
    state: Mutex<CacheState>,
    permits: Semaphore,
    calls: AtomicU64,
    hits: AtomicU64,
    stale: AtomicU64,
}

/// Resolves references through one provider. Cheap to clone (shared cache).
#[derive(Clone)]
pub struct SecretResolver {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SecretResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretResolver")
            .field("provider", &self.inner.provider.kind())
            .field("options", &self.inner.opts)
            .finish_non_exhaustive()
    }
}

fn negative(kind: ErrorKind) -> bool {
    matches!(kind, ErrorKind::NotFound | ErrorKind::AccessDenied)
}

impl SecretResolver {
    /// A resolver over `provider`.
    pub fn new(provider: Arc<dyn SecretProvider>, opts: ResolverOptions) -> Self {
        let permits = Semaphore::new(opts.max_concurrency.max(1));
        Self {
            inner: Arc::new(Inner {
                provider,
                opts,
                state: Mutex::new(CacheState::default()),
                permits,
                calls: AtomicU64::new(0),
                hits: AtomicU64::new(0),
                stale: AtomicU64::new(0),
            }),
        }
    }

    /// The provider in use.
    pub fn provider_kind(&self) -> ProviderKind {
        self.inner.provider.kind()
    }

    /// The options in use.
    pub fn options(&self) -> &ResolverOptions {
        &self.inner.opts
    }

    /// Counters.
    pub fn stats(&self) -> ResolverStats {
        let entries = self.lock().entries.len();
        ResolverStats {
            provider_calls: self.inner.calls.load(Ordering::Relaxed),
            cache_hits: self.inner.hits.load(Ordering::Relaxed),
            stale_served: self.inner.stale.load(Ordering::Relaxed),
            cache_entries: entries,
        }
    }

    /// Drop every cached value.
    pub fn clear_cache(&self) {
        self.lock().entries.clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheState> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the reference's id is under the allow-list.
    pub fn is_allowed(&self, reference: &SecretRef) -> bool {
        let prefixes = &self.inner.opts.allowed_prefixes;
        if prefixes.is_empty() {
            return true;
        }
        let id = reference.id().trim_start_matches('/');
        prefixes
            .iter()
            .any(|p| id.starts_with(p.trim_start_matches('/')))
    }

    /// Parse and resolve one reference string (`secret:...`).
    pub async fn resolve_str(&self, reference: &str) -> Result<Resolution, SecretError> {
        let r = SecretRef::parse(reference)?;
        self.resolve(&r).await
    }

    /// Resolve one reference: allow-list, then the whole-secret rule, then the JSON-key rule.
    pub async fn resolve(&self, reference: &SecretRef) -> Result<Resolution, SecretError> {
        if !self.is_allowed(reference) {
            return Err(SecretError::NotAllowed {
                reference: reference.to_string(),
                allowed: self.inner.opts.allowed_prefixes.join(","),
            });
        }
        let provider = &self.inner.provider;
        let kind = provider.kind();
        let version = reference.version();
        let mut tried: Vec<String> = Vec::new();
        // The most informative non-"not found" failure seen (access denied).
        let mut denied: Option<ProviderError> = None;

        let fail =
            |kind_: ErrorKind, tried: &[String], cause: String, source: Option<ProviderError>| {
                SecretError::Resolve {
                    reference: reference.to_string(),
                    provider: kind,
                    kind: kind_,
                    tried: if tried.is_empty() {
                        "nothing".to_owned()
                    } else {
                        tried.join(", then ")
                    },
                    cause,
                    source: source.and_then(|e| e.source),
                }
            };

        let whole_names = provider.names(reference.id());
        for name in &whole_names {
            tried.push(format!("secret `{name}`"));
            match self.lookup(name, version).await {
                Ok((value, stale)) => {
                    debug!(reference = %reference, provider = %kind, rule = "whole_secret", name = %name, stale, "secret reference resolved");
                    return Ok(Resolution {
                        reference: reference.clone(),
                        value,
                        rule: Rule::WholeSecret { name: name.clone() },
                        provider: kind,
                        stale,
                    });
                }
                Err(e) if e.kind == ErrorKind::NotFound => {}
                Err(e) if e.kind == ErrorKind::AccessDenied => {
                    denied.get_or_insert(e);
                }
                Err(e) => {
                    // We cannot tell whether the whole id names a secret: do not guess with the key rule.
                    let cause = format!("reading secret `{name}` failed: {}", e.message);
                    return Err(fail(e.kind, &tried, cause, Some(e)));
                }
            }
        }

        let mut parent_names = Vec::new();
        if let Some((parent, key)) = reference.key_split() {
            parent_names = provider.names(parent);
            for name in &parent_names {
                tried.push(format!("key `{key}` of JSON secret `{name}`"));
                match self.lookup(name, version).await {
                    Ok((value, stale)) => {
                        return match extract_key(&value, name, key) {
                            Ok(v) => {
                                debug!(reference = %reference, provider = %kind, rule = "json_key", secret = %name, key = %key, stale, "secret reference resolved");
                                Ok(Resolution {
                                    reference: reference.clone(),
                                    value: v,
                                    rule: Rule::JsonKey {
                                        secret: name.clone(),
                                        key: key.to_owned(),
                                    },
                                    provider: kind,
                                    stale,
                                })
                            }
                            Err((k, cause)) => Err(fail(k, &tried, cause, None)),
                        };
                    }
                    Err(e) if e.kind == ErrorKind::NotFound => {}
                    Err(e) if e.kind == ErrorKind::AccessDenied => {
                        denied.get_or_insert(e);
                    }
                    Err(e) => {
                        let cause = format!("reading secret `{name}` failed: {}", e.message);
                        return Err(fail(e.kind, &tried, cause, Some(e)));
                    }
                }
            }
        }

        if whole_names.is_empty() && parent_names.is_empty() {
            return Err(SecretError::invalid(
                reference.as_str(),
                format!(
                    "the id cannot name a {kind} secret, whole or as `<secret>/<key>` ({})",
                    provider.name_rules()
                ),
            ));
        }
        if let Some(e) = denied {
            let cause = format!("access denied by the secrets manager: {}", e.message);
            return Err(fail(ErrorKind::AccessDenied, &tried, cause, Some(e)));
        }
        Err(fail(
            ErrorKind::NotFound,
            &tried,
            "no such secret".to_owned(),
            None,
        ))
    }

    /// Resolve several references concurrently (each distinct reference once), in input order.
    pub async fn resolve_all(
        &self,
        references: &[SecretRef],
    ) -> Vec<Result<Resolution, SecretError>> {
        let mut distinct: BTreeMap<&SecretRef, usize> = BTreeMap::new();
        for r in references {
            let n = distinct.len();
            distinct.entry(r).or_insert(n);
        }
        let mut order: Vec<(&SecretRef, usize)> = distinct.into_iter().collect();
        order.sort_by_key(|(_, i)| *i);
        let results =
            futures_util::future::join_all(order.iter().map(|(r, _)| self.resolve(r))).await;
        let by_ref: HashMap<&SecretRef, &Result<Resolution, SecretError>> =
            order.iter().map(|(r, _)| *r).zip(results.iter()).collect();
        references
            .iter()
            .map(|r| {
                by_ref
                    .get(r)
                    .map_or_else(|| unreachable_err(r), |res| (*res).clone())
            })
            .collect()
    }

    /// Resolve every reference in a JSON config (each distinct reference once). Fails on the first
    /// reference, in document order, that does not resolve; nothing is partially returned.
    pub async fn resolve_config(&self, config: &Value) -> Result<ResolvedConfig, SecretError> {
        self.resolve_config_owned(config.clone()).await
    }

    /// [`Self::resolve_config`] taking the config by value: it becomes
    /// [`ResolvedConfig::original`] without a copy.
    pub async fn resolve_config_owned(&self, config: Value) -> Result<ResolvedConfig, SecretError> {
        let found = find_references(&config)?;
        let refs: Vec<SecretRef> = found.iter().map(|f| f.reference.clone()).collect();
        let results = self.resolve_all(&refs).await;
        let mut values: Vec<SecretValue> = Vec::new();
        let mut slots = Vec::with_capacity(found.len());
        for (f, res) in found.iter().zip(results) {
            let res = res?;
            if res.value.expose_str().is_none() {
                return Err(SecretError::Resolve {
                    reference: f.reference.to_string(),
                    provider: res.provider,
                    kind: ErrorKind::Malformed,
                    tried: res.rule.to_string(),
                    cause: format!(
                        "the value is binary (not UTF-8) and cannot be placed in the config at {}",
                        f.pointer
                    ),
                    source: None,
                });
            }
            let slot = match values.iter().position(|v| *v == res.value) {
                Some(i) => i,
                None => {
                    values.push(res.value);
                    values.len() - 1
                }
            };
            slots.push(slot);
        }
        let masker = Masker::new(&values);
        Ok(ResolvedConfig {
            original: config,
            resolved: Default::default(),
            references: found,
            slots,
            values,
            masker,
        })
    }

    /// One line of `ingestion-runner secrets resolve REF...` and whether the reference resolved:
    /// `REF ok <provider> <n> bytes sha256:<first 8 hex>`, or `REF error <reason and fix>`. With
    /// `reveal`, ` value=<text>` is appended (`value=base64:<...>` for a non-UTF-8 value).
    pub async fn cli_line(&self, reference: &str, reveal: bool) -> (bool, String) {
        match self.resolve_str(reference).await {
            Ok(res) => {
                let mut line = format!("{reference} {}", res.summary());
                if res.stale {
                    line.push_str(" (stale)");
                }
                if reveal {
                    match res.value.expose_str() {
                        Some(text) => {
                            line.push_str(" value=");
                            line.push_str(text);
                        }
                        None => {
                            use base64::Engine as _;
                            line.push_str(" value=base64:");
                            line.push_str(
                                &base64::engine::general_purpose::STANDARD
                                    .encode(res.value.expose_bytes()),
                            );
                        }
                    }
                }
                (true, line)
            }
            Err(e) => (false, format!("{reference} error {e}")),
        }
    }

    /// [`Self::resolve_config`] on a YAML document (the ingestion workflow config).
    pub async fn resolve_yaml(&self, text: &str) -> Result<ResolvedConfig, SecretError> {
        let value = crate::reference::parse_yaml(text)?;
        self.resolve_config(&value).await
    }

    /// Reachability/credentials check of the backend, within one attempt timeout.
    pub async fn health(&self) -> Result<(), SecretError> {
        let provider = &self.inner.provider;
        let kind = provider.kind();
        let res = tokio::time::timeout(self.inner.opts.attempt_timeout, provider.health()).await;
        let err = match res {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(e)) => e,
            Err(_) => ProviderError::new(
                ErrorKind::Timeout,
                format!("no answer within {:?}", self.inner.opts.attempt_timeout),
            ),
        };
        Err(SecretError::Health {
            provider: kind,
            kind: err.kind,
            cause: err.message,
            source: err.source,
        })
    }

    /// One provider-native name: cache, single-flight, retries, stale-on-error.
    async fn lookup(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<(SecretValue, bool), ProviderError> {
        let key: Key = (name.to_owned(), version.map(ToOwned::to_owned));
        let opts = &self.inner.opts;
        let cell = {
            let mut st = self.lock();
            let now = Instant::now();
            if let Some(e) = st.entries.get_mut(&key) {
                let ttl = if e.outcome.is_ok() {
                    opts.cache_ttl
                } else {
                    opts.negative_ttl.min(opts.cache_ttl)
                };
                if now.duration_since(e.stored) < ttl {
                    e.used = now;
                    self.inner.hits.fetch_add(1, Ordering::Relaxed);
                    return e.outcome.clone().map(|v| (v, false));
                }
            }
            st.inflight
                .entry(key.clone())
                .or_insert_with(|| Arc::new(OnceCell::new()))
                .clone()
        };
        let outcome = cell
            .get_or_init(|| self.fetch_with_retry(name, version))
            .await
            .clone();

        let mut st = self.lock();
        let now = Instant::now();
        if st.inflight.get(&key).is_some_and(|c| Arc::ptr_eq(c, &cell)) {
            st.inflight.remove(&key);
            let cacheable = match &outcome {
                Ok(_) => !opts.cache_ttl.is_zero(),
                Err(e) => negative(e.kind) && !opts.negative_ttl.is_zero(),
            };
            if cacheable {
                st.entries.insert(
                    key.clone(),
                    Entry {
                        outcome: outcome.clone(),
                        stored: now,
                        used: now,
                    },
                );
                self.evict(&mut st, now);
            }
        }
        match outcome {
            Ok(v) => Ok((v, false)),
            Err(e) if e.kind.is_transient() => {
                if let Some(entry) = st.entries.get_mut(&key) {
                    let age = now.duration_since(entry.stored);
                    if let Ok(v) = &entry.outcome
                        && age < opts.cache_ttl + opts.stale_grace
                    {
                        entry.used = now;
                        self.inner.stale.fetch_add(1, Ordering::Relaxed);
                        warn!(
                            provider = %self.inner.provider.kind(),
                            name = %name,
                            age_seconds = age.as_secs(),
                            error = %e,
                            "refreshing a secret failed; serving the last good value (stale)"
                        );
                        return Ok((v.clone(), true));
                    }
                }
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    fn evict(&self, st: &mut CacheState, now: Instant) {
        let opts = &self.inner.opts;
        if st.entries.len() <= opts.cache_max_entries {
            return;
        }
        let keep = opts.cache_ttl + opts.stale_grace;
        st.entries
            .retain(|_, e| now.duration_since(e.stored) < keep);
        while st.entries.len() > opts.cache_max_entries {
            let Some(oldest) = st
                .entries
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            st.entries.remove(&oldest);
        }
    }

    async fn fetch_with_retry(&self, name: &str, version: Option<&str>) -> Outcome {
        let opts = &self.inner.opts;
        let deadline = Instant::now() + opts.total_timeout;
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let result = {
                let _permit = self.inner.permits.acquire().await.map_err(|_| {
                    ProviderError::new(ErrorKind::Unavailable, "resolver is shut down")
                })?;
                self.inner.calls.fetch_add(1, Ordering::Relaxed);
                match tokio::time::timeout(
                    opts.attempt_timeout,
                    self.inner.provider.fetch(name, version),
                )
                .await
                {
                    Ok(r) => r,
                    Err(_) => Err(ProviderError::new(
                        ErrorKind::Timeout,
                        format!("no answer within {:?}", opts.attempt_timeout),
                    )),
                }
            };
            let err = match result {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            if !err.kind.is_transient() || attempt >= opts.max_attempts {
                return Err(err);
            }
            let delay = backoff(opts, attempt, err.retry_after);
            if Instant::now() + delay > deadline {
                return Err(err);
            }
            debug!(
                provider = %self.inner.provider.kind(),
                name = %name,
                attempt,
                delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                error = %err,
                "transient secrets-manager error; retrying"
            );
            tokio::time::sleep(delay).await;
        }
    }
}

/// Backoff before attempt `attempt + 1`: exponential with "equal jitter", at least the server's
/// Retry-After, at most `backoff_max`.
pub(crate) fn backoff(
    opts: &ResolverOptions,
    attempt: u32,
    retry_after: Option<Duration>,
) -> Duration {
    let exp = opts
        .backoff_base
        .saturating_mul(1u32 << (attempt.saturating_sub(1)).min(16));
    let exp = exp.min(opts.backoff_max);
    let half = exp / 2;
    let jitter = if half.is_zero() {
        Duration::ZERO
    } else {
        Duration::from_nanos(rand::random_range(
            0..=u64::try_from(half.as_nanos()).unwrap_or(u64::MAX),
        ))
    };
    let d = half + jitter;
    d.max(retry_after.unwrap_or_default()).min(opts.backoff_max)
}

fn unreachable_err(r: &SecretRef) -> Result<Resolution, SecretError> {
    Err(SecretError::invalid(r.as_str(), "internal: reference lost"))
}

/// The JSON-key rule on a fetched parent secret.
fn extract_key(
    parent: &SecretValue,
    name: &str,
    key: &str,
) -> Result<SecretValue, (ErrorKind, String)> {
    let Some(text) = parent.expose_str() else {
        return Err((
            ErrorKind::Malformed,
            format!("secret `{name}` is binary (not UTF-8), so it has no key `{key}`"),
        ));
    };
    // The parse error is not quoted: it could contain part of the secret.
    let Ok(json) = serde_json::from_str::<Value>(text) else {
        return Err((
            ErrorKind::Malformed,
            format!("secret `{name}` exists but is not valid JSON, so it has no key `{key}`"),
        ));
    };
    let Value::Object(map) = json else {
        return Err((
            ErrorKind::Malformed,
            format!("secret `{name}` holds JSON that is not an object, so it has no key `{key}`"),
        ));
    };
    match map.get(key) {
        None => Err((
            ErrorKind::KeyMissing,
            format!(
                "secret `{name}` is a JSON object without key `{key}` ({} other keys)",
                map.len()
            ),
        )),
        Some(Value::Null) => Err((
            ErrorKind::KeyMissing,
            format!("key `{key}` of secret `{name}` is null"),
        )),
        Some(Value::String(s)) => Ok(SecretValue::new(s.as_bytes())),
        Some(other) => Ok(SecretValue::new(other.to_string())),
    }
}
