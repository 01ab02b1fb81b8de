//! Typed client of the Argo Server REST API (reqwest + rustls with the ring provider).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use reqwest::{Method, StatusCode, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::error::ArgoError;
use crate::model::{
    CronWorkflow, CronWorkflowList, LogEntry, Version, Workflow, WorkflowList, WorkflowSummary,
    WorkflowWatchEvent,
};
use crate::stream::{ArgoStream, DEFAULT_MAX_FRAME_BYTES, StreamFormat, decode_stream};

/// The container whose logs the runner reads.
pub const MAIN_CONTAINER: &str = "main";

/// Where the bearer token comes from. The token is never logged or shown by `Debug`.
#[derive(Clone, Default)]
pub enum TokenSource {
    /// No `Authorization` header (argo-server `--auth-mode=server`).
    #[default]
    None,
    /// `ARGO_TOKEN`. A leading `Bearer ` is accepted and stripped.
    Static(String),
    /// A file holding the token (e.g. a projected service-account token); re-read when
    /// its modification time or size changes, and once more after a 401.
    File(PathBuf),
}

impl fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::Static(_) => f.write_str("Static(<redacted>)"),
            Self::File(p) => f.debug_tuple("File").field(p).finish(),
        }
    }
}

/// Retry of 429 / 5xx / connection failures with exponential backoff.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Total attempts including the first; 1 disables retries.
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .initial_backoff
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
        exp.min(self.max_backoff)
    }
}

/// The parts of a Workflow the runner reads (what [`crate::model::WorkflowSummary`] keeps):
/// metadata, `spec.shutdown` and the status. Watch and list ask Argo Server for only these
/// (its `fields` parameter, as Argo's own UI does), so a Workflow's spec, most of its bytes
/// (twice the workflow config with `SECRETS_DELIVERY=pod`), stays on the server.
pub const SUMMARY_FIELDS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "metadata.resourceVersion",
    "metadata.creationTimestamp",
    "metadata.labels",
    "metadata.annotations",
    "spec.shutdown",
    "status.phase",
    "status.message",
    "status.startedAt",
    "status.finishedAt",
    "status.progress",
    "status.nodes",
];

/// A `fields` value: `extra`, then every [`SUMMARY_FIELDS`] path under `prefix`.
fn summary_fields(prefix: &str, extra: &[&str]) -> String {
    let mut out = extra.join(",");
    for f in SUMMARY_FIELDS {
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(prefix);
        out.push_str(f);
    }
    out
}

/// `fields` of [`ArgoClient::watch_workflows`]: the event type, [`SUMMARY_FIELDS`] of each
/// workflow, and what an error event's Kubernetes `Status` says.
pub fn watch_fields() -> String {
    summary_fields(
        "result.object.",
        &[
            "result.type",
            "result.object.kind",
            "result.object.message",
            "result.object.reason",
            "result.object.code",
        ],
    )
}

/// `fields` of [`ArgoClient::list_workflows`]: the list's resourceVersion and continue token,
/// and [`SUMMARY_FIELDS`] of each item (a runner restarting next to 10,000 runs lists no specs).
pub fn list_fields() -> String {
    summary_fields("items.", &["metadata.resourceVersion", "metadata.continue"])
}

#[derive(Debug, Clone)]
pub struct ArgoClientConfig {
    /// `PIPELINE_SERVICE_CLIENT_ENDPOINT`, e.g. `https://argo-server.argo:2746`.
    pub endpoint: String,
    /// `ARGO_TOKEN` or a token file.
    pub token: TokenSource,
    /// `ARGO_SERVER_CERTIFICATE_PATH`: PEM file with the CA (or self-signed cert) to trust, or
    /// a directory of `*.pem` / `*.crt` files, in addition to the system roots
    /// (`SSL_CERT_FILE` / `SSL_CERT_DIR` replace those when set).
    pub ca_cert_path: Option<PathBuf>,
    pub connect_timeout: Duration,
    /// Whole-request timeout of unary calls.
    pub request_timeout: Duration,
    /// A stream with nothing (not even a keep-alive) for this long fails with `Timeout`.
    /// Argo sends keep-alives every 15 s on watch streams.
    pub stream_idle_timeout: Duration,
    pub retry: RetryPolicy,
    pub max_frame_bytes: usize,
    /// Streams as `text/event-stream` (true) or NDJSON (false).
    pub prefer_sse: bool,
    /// `listOptions.limit` of list calls (pages are followed with `continue`).
    pub list_page_size: u32,
}

impl Default for ArgoClientConfig {
    fn default() -> Self {
        Self {
            endpoint: "https://argo-server.argo:2746".into(),
            token: TokenSource::None,
            ca_cert_path: None,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            stream_idle_timeout: Duration::from_secs(60),
            retry: RetryPolicy::default(),
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            prefer_sse: false,
            list_page_size: 500,
        }
    }
}

impl ArgoClientConfig {
    /// Read the published env contract through `get` (e.g. `|k| std::env::var(k).ok()`):
    /// `PIPELINE_SERVICE_CLIENT_ENDPOINT` (required), `ARGO_TOKEN`, `ARGO_TOKEN_FILE` (our
    /// extension: a rotating token file), `ARGO_SERVER_CERTIFICATE_PATH`.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ArgoError> {
        let nonempty = |k: &str| {
            get(k)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let endpoint = nonempty("PIPELINE_SERVICE_CLIENT_ENDPOINT").ok_or_else(|| {
            ArgoError::Config(
                "PIPELINE_SERVICE_CLIENT_ENDPOINT is not set: set it to the Argo Server URL, \
                 e.g. https://argo-server.argo:2746"
                    .into(),
            )
        })?;
        let token = match (nonempty("ARGO_TOKEN"), nonempty("ARGO_TOKEN_FILE")) {
            (Some(t), _) => TokenSource::Static(t),
            (None, Some(p)) => TokenSource::File(p.into()),
            (None, None) => TokenSource::None,
        };
        Ok(Self {
            endpoint,
            token,
            ca_cert_path: nonempty("ARGO_SERVER_CERTIFICATE_PATH").map(PathBuf::from),
            ..Self::default()
        })
    }
}

#[derive(Debug, Default)]
struct FileTokenState {
    stamp: Option<(SystemTime, u64)>,
    token: Option<String>,
}

#[derive(Clone)]
struct Auth {
    source: TokenSource,
    file_state: Arc<Mutex<FileTokenState>>,
}

impl Auth {
    fn header(&self, force_reload: bool) -> Result<Option<HeaderValue>, ArgoError> {
        let token = match &self.source {
            TokenSource::None => return Ok(None),
            TokenSource::Static(t) => t.clone(),
            TokenSource::File(p) => self.file_token(p, force_reload)?,
        };
        let token = token.trim();
        let token = token.strip_prefix("Bearer ").unwrap_or(token).trim();
        if token.is_empty() {
            return Err(ArgoError::Config(
                "ARGO_TOKEN is empty: set it to a service-account token".into(),
            ));
        }
        let mut v = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
            ArgoError::Config(
                "ARGO_TOKEN contains characters not allowed in an HTTP header (a newline?)".into(),
            )
        })?;
        v.set_sensitive(true);
        Ok(Some(v))
    }

    fn file_token(&self, path: &Path, force: bool) -> Result<String, ArgoError> {
        let meta = std::fs::metadata(path).map_err(|e| {
            ArgoError::Config(format!(
                "cannot read the Argo token file {}: {e}",
                path.display()
            ))
        })?;
        let stamp = (
            meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            meta.len(),
        );
        let mut st = self.file_state.lock().unwrap_or_else(|p| p.into_inner());
        if force || st.stamp != Some(stamp) || st.token.is_none() {
            let t = std::fs::read_to_string(path).map_err(|e| {
                ArgoError::Config(format!(
                    "cannot read the Argo token file {}: {e}",
                    path.display()
                ))
            })?;
            tracing::debug!(path = %path.display(), "argo token file (re)loaded");
            st.token = Some(t.trim().to_owned());
            st.stamp = Some(stamp);
        }
        Ok(st.token.clone().unwrap_or_default())
    }
}

/// Options of a log request. The container is always `main`.
#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    pub follow: bool,
    pub tail_lines: Option<u64>,
    pub since_seconds: Option<u64>,
    pub pod_name: Option<String>,
}

#[derive(Clone)]
pub struct ArgoClient {
    http: reqwest::Client,
    base: Url,
    endpoint: String,
    auth: Auth,
    cfg: Arc<ArgoClientConfig>,
}

impl fmt::Debug for ArgoClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArgoClient")
            .field("endpoint", &self.endpoint)
            .field("token", &self.auth.source)
            .finish()
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Read,
    Create,
    Update,
    Other,
}

/// A request body, encoded once (a retried request sends the same bytes).
fn json_body<B: Serialize + ?Sized>(body: &B) -> Result<Bytes, ArgoError> {
    serde_json::to_vec(body)
        .map(Bytes::from)
        .map_err(|e| ArgoError::Decode {
            what: "encoding a request body".into(),
            detail: e.to_string(),
        })
}

impl ArgoClient {
    pub fn new(cfg: ArgoClientConfig) -> Result<Self, ArgoError> {
        let endpoint = cfg.endpoint.trim().trim_end_matches('/').to_owned();
        let base = Url::parse(&endpoint).map_err(|e| {
            ArgoError::Config(format!(
                "PIPELINE_SERVICE_CLIENT_ENDPOINT {endpoint:?} is not a URL ({e}); expected e.g. https://argo-server.argo:2746"
            ))
        })?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(ArgoError::Config(format!(
                "PIPELINE_SERVICE_CLIENT_ENDPOINT {endpoint:?} must start with https:// or http://"
            )));
        }
        let tls = tls_config(cfg.ca_cert_path.as_deref())?;
        // Proxies: reqwest reads HTTP(S)_PROXY / ALL_PROXY / NO_PROXY (either case) from the
        // process environment here. Its NO_PROXY matcher (hyper-util 0.1.21) does not apply `*`
        // to an IP-address endpoint, which curl and the control-plane connection do: disable
        // proxies for that case ourselves.
        let mut builder = reqwest::Client::builder();
        if no_proxy_is_wildcard(|k| std::env::var(k).ok()) {
            builder = builder.no_proxy();
        }
        let http = builder
            .tls_backend_preconfigured(tls)
            .connect_timeout(cfg.connect_timeout)
            .user_agent(concat!(
                "hybrid-ingestion-runner/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()
            .map_err(|e| ArgoError::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            http,
            base,
            endpoint,
            auth: Auth {
                source: cfg.token.clone(),
                file_state: Default::default(),
            },
            cfg: Arc::new(cfg),
        })
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn url(&self, segments: &[&str], query: &[(&str, String)]) -> Url {
        let mut u = self.base.clone();
        {
            let mut p = u.path_segments_mut().expect("http(s) URL has a path");
            p.pop_if_empty();
            p.extend(segments);
        }
        if !query.is_empty() {
            let mut q = u.query_pairs_mut();
            for (k, v) in query {
                q.append_pair(k, v);
            }
        }
        u
    }

    fn map_transport(&self, e: reqwest::Error, what: &str) -> ArgoError {
        if e.is_timeout() {
            return ArgoError::Timeout {
                what: what.to_owned(),
                after: self.cfg.request_timeout,
            };
        }
        let detail = error_chain(&e);
        let lower = detail.to_ascii_lowercase();
        let tls = [
            "certificate",
            "tls",
            "handshake",
            "unknownissuer",
            "invalid peer",
            "ssl",
            "alert",
            "corrupt message",
            "invalidcontenttype",
            "peer is incompatible",
        ];
        if is_rustls_error(&e) || tls.iter().any(|w| lower.contains(w)) {
            return ArgoError::Tls {
                endpoint: self.endpoint.clone(),
                detail,
            };
        }
        if e.is_connect() || e.is_request() {
            return ArgoError::Connect {
                endpoint: self.endpoint.clone(),
                detail,
            };
        }
        if e.is_decode() || e.is_body() {
            return ArgoError::Decode {
                what: what.to_owned(),
                detail,
            };
        }
        ArgoError::Connect {
            endpoint: self.endpoint.clone(),
            detail,
        }
    }

    /// Send with auth, retries and error mapping; returns the successful response.
    async fn execute(
        &self,
        method: Method,
        url: Url,
        body: Option<Bytes>,
        kind: Kind,
        stream: Option<StreamFormat>,
        what: &str,
    ) -> Result<reqwest::Response, ArgoError> {
        let retry = &self.cfg.retry;
        let mut attempt = 0u32;
        let mut reloaded_token = false;
        let mut force_reload = false;
        loop {
            attempt += 1;
            let mut req = self.http.request(method.clone(), url.clone());
            if stream.is_none() {
                req = req.timeout(self.cfg.request_timeout);
            }
            req = match stream {
                Some(StreamFormat::Sse) => req.header(ACCEPT, "text/event-stream"),
                _ => req.header(ACCEPT, "application/json"),
            };
            if let Some(h) = self.auth.header(std::mem::take(&mut force_reload))? {
                req = req.header(AUTHORIZATION, h);
            }
            if let Some(b) = &body {
                req = req.header(CONTENT_TYPE, "application/json").body(b.clone());
            }
            let err = match req.send().await {
                Ok(resp) if resp.status().is_success() => return Ok(resp),
                Ok(resp) => {
                    let status = resp.status();
                    let retry_after = resp
                        .headers()
                        .get(RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    let body = read_limited(resp, 64 * 1024).await;
                    let err =
                        ArgoError::from_response(status.as_u16(), &body, kind == Kind::Update);
                    if status == StatusCode::UNAUTHORIZED
                        && matches!(self.auth.source, TokenSource::File(_))
                        && !reloaded_token
                    {
                        // The token file may have rotated within the mtime granularity: re-read once.
                        reloaded_token = true;
                        force_reload = true;
                        attempt -= 1;
                        continue;
                    }
                    if err.is_retryable() && attempt < retry.max_attempts {
                        let wait = retry_after
                            .unwrap_or_else(|| retry.backoff(attempt))
                            .min(retry.max_backoff);
                        tracing::debug!(
                            what,
                            status = status.as_u16(),
                            attempt,
                            ?wait,
                            "argo: retrying"
                        );
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                    err
                }
                Err(e) => {
                    let err = self.map_transport(e, what);
                    // A create may have reached the server before a timeout; retrying it is
                    // still safe: names are deterministic, so a duplicate is a 409 (see create_*).
                    if err.is_retryable() && attempt < retry.max_attempts {
                        let wait = retry.backoff(attempt);
                        tracing::debug!(what, attempt, ?wait, error = %err, "argo: retrying");
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                    err
                }
            };
            return Err(err.with_attempts(attempt));
        }
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Option<Bytes>,
        kind: Kind,
        what: &str,
    ) -> Result<T, ArgoError> {
        let url = self.url(segments, query);
        let started = std::time::Instant::now();
        let resp = self.execute(method, url, body, kind, None, what).await?;
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| self.map_transport(e, what))?;
        tracing::trace!(
            what,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "argo call"
        );
        let v = serde_json::from_slice(&bytes).map_err(|e| ArgoError::Decode {
            what: what.to_owned(),
            detail: format!(
                "{e}; body starts with {:?}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(120)])
            ),
        })?;
        Ok(v)
    }

    // ---------------------------------------------------------------- info

    /// `GET /api/v1/version`.
    pub async fn version(&self) -> Result<Version, ArgoError> {
        self.call(
            Method::GET,
            &["api", "v1", "version"],
            &[],
            None,
            Kind::Read,
            "version",
        )
        .await
    }

    // ---------------------------------------------------------------- workflows

    /// `POST /api/v1/workflows/{ns}`. A name that exists is [`ArgoError::AlreadyExists`]
    /// (also when an earlier attempt of this call, retried after a timeout / 5xx, created
    /// it: use [`Self::create_workflow_idempotent`] to treat that as success).
    pub async fn create_workflow(
        &self,
        namespace: &str,
        wf: &Workflow,
    ) -> Result<Workflow, ArgoError> {
        self.create::<Workflow>(namespace, wf).await
    }

    async fn create<T: DeserializeOwned>(
        &self,
        namespace: &str,
        wf: &Workflow,
    ) -> Result<T, ArgoError> {
        #[derive(Serialize)]
        struct Create<'a> {
            namespace: &'a str,
            workflow: &'a Workflow,
        }
        let body = Create {
            namespace,
            workflow: wf,
        };
        self.call(
            Method::POST,
            &["api", "v1", "workflows", namespace],
            &[],
            Some(json_body(&body)?),
            Kind::Create,
            "create workflow",
        )
        .await
    }

    /// Like [`Self::create_workflow`], but a 409 whose existing object carries the same
    /// `run-id` label is success (an idempotent re-submit): returns `(workflow, created)`.
    /// The workflow returned for a create is decoded as a [`WorkflowSummary`]: metadata,
    /// status and `spec.shutdown`, what the caller tracks (it sent the spec itself).
    pub async fn create_workflow_idempotent(
        &self,
        namespace: &str,
        wf: &Workflow,
        run_id_label: &str,
    ) -> Result<(Workflow, bool), ArgoError> {
        match self.create::<WorkflowSummary>(namespace, wf).await {
            Ok(w) => Ok((w.into_workflow(), true)),
            Err(ArgoError::AlreadyExists { message }) => {
                let existing = self.get_workflow(namespace, wf.name()).await?;
                if existing.label(run_id_label).is_some()
                    && existing.label(run_id_label) == wf.label(run_id_label)
                {
                    Ok((existing, false))
                } else {
                    Err(ArgoError::AlreadyExists { message })
                }
            }
            Err(e) => Err(e),
        }
    }

    /// `GET /api/v1/workflows/{ns}/{name}`.
    pub async fn get_workflow(&self, namespace: &str, name: &str) -> Result<Workflow, ArgoError> {
        self.call(
            Method::GET,
            &["api", "v1", "workflows", namespace, name],
            &[],
            None,
            Kind::Read,
            "get workflow",
        )
        .await
    }

    /// `GET /api/v1/workflows/{ns}?listOptions.labelSelector=...`, following `continue`
    /// tokens (pages of 500) until the whole list is read.
    pub async fn list_workflows(
        &self,
        namespace: &str,
        label_selector: &str,
    ) -> Result<WorkflowList, ArgoError> {
        let mut all = WorkflowList::default();
        let mut cont: Option<String> = None;
        for _ in 0..1000 {
            let mut q = vec![
                ("listOptions.labelSelector", label_selector.to_owned()),
                (
                    "listOptions.limit",
                    self.cfg.list_page_size.max(1).to_string(),
                ),
            ];
            if let Some(c) = &cont {
                q.push(("listOptions.continue", c.clone()));
            }
            q.push(("fields", list_fields()));
            let page: WorkflowList = self
                .call(
                    Method::GET,
                    &["api", "v1", "workflows", namespace],
                    &q,
                    None,
                    Kind::Read,
                    "list workflows",
                )
                .await?;
            all.items.extend(page.items);
            all.metadata.resource_version = page.metadata.resource_version.clone();
            cont = page.metadata.continue_token.filter(|c| !c.is_empty());
            if cont.is_none() {
                break;
            }
        }
        Ok(all)
    }

    /// `DELETE /api/v1/workflows/{ns}/{name}`. Not found is [`ArgoError::NotFound`].
    pub async fn delete_workflow(&self, namespace: &str, name: &str) -> Result<(), ArgoError> {
        self.call::<Value>(
            Method::DELETE,
            &["api", "v1", "workflows", namespace, name],
            &[],
            None,
            Kind::Other,
            "delete workflow",
        )
        .await
        .map(|_| ())
    }

    /// Delete every workflow matching the selector; returns how many were deleted
    /// (already-gone ones are not errors).
    pub async fn delete_workflows_by_label(
        &self,
        namespace: &str,
        label_selector: &str,
    ) -> Result<usize, ArgoError> {
        let list = self.list_workflows(namespace, label_selector).await?;
        let mut n = 0;
        for w in &list.items {
            match self.delete_workflow(namespace, w.name()).await {
                Ok(()) => n += 1,
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
        }
        Ok(n)
    }

    /// `PUT .../{name}/stop`: running steps are stopped, exit handlers still run.
    pub async fn stop_workflow(
        &self,
        namespace: &str,
        name: &str,
        message: Option<&str>,
    ) -> Result<Workflow, ArgoError> {
        let mut body = json!({ "name": name, "namespace": namespace });
        if let Some(m) = message {
            body["message"] = Value::String(m.to_owned());
        }
        self.call(
            Method::PUT,
            &["api", "v1", "workflows", namespace, name, "stop"],
            &[],
            Some(json_body(&body)?),
            Kind::Other,
            "stop workflow",
        )
        .await
    }

    /// `PUT .../{name}/terminate`: immediate, exit handlers do not run.
    pub async fn terminate_workflow(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Workflow, ArgoError> {
        let body = json!({ "name": name, "namespace": namespace });
        self.call(
            Method::PUT,
            &["api", "v1", "workflows", namespace, name, "terminate"],
            &[],
            Some(json_body(&body)?),
            Kind::Other,
            "terminate workflow",
        )
        .await
    }

    /// Kill a run the way the control plane expects: `stop` (the exit handler runs and
    /// reports the final status), then `terminate` if it has not finished after `grace`.
    /// Polls the one workflow every `poll` meanwhile. Returns the last workflow seen and
    /// whether terminate was needed. A workflow already finished is returned as is.
    pub async fn stop_then_terminate(
        &self,
        namespace: &str,
        name: &str,
        message: Option<&str>,
        grace: Duration,
        poll: Duration,
    ) -> Result<(Workflow, bool), ArgoError> {
        let done = |w: &Workflow| matches!(w.phase(), Some("Succeeded" | "Failed" | "Error"));
        let mut wf = match self.stop_workflow(namespace, name, message).await {
            Ok(w) => w,
            // already completed: Argo refuses to stop it
            Err(ArgoError::Invalid { .. }) | Err(ArgoError::Http { .. }) => {
                let w = self.get_workflow(namespace, name).await?;
                if done(&w) {
                    return Ok((w, false));
                }
                w
            }
            Err(e) => return Err(e),
        };
        let deadline = tokio::time::Instant::now() + grace;
        while !done(&wf) {
            if tokio::time::Instant::now() >= deadline {
                let t = self.terminate_workflow(namespace, name).await?;
                return Ok((t, true));
            }
            tokio::time::sleep(poll.min(grace)).await;
            wf = self.get_workflow(namespace, name).await?;
        }
        Ok((wf, false))
    }

    // ---------------------------------------------------------------- cron workflows

    /// `POST /api/v1/cron-workflows/{ns}`.
    pub async fn create_cron_workflow(
        &self,
        namespace: &str,
        cwf: &CronWorkflow,
    ) -> Result<CronWorkflow, ArgoError> {
        let body = json!({ "namespace": namespace, "cronWorkflow": cwf });
        self.call(
            Method::POST,
            &["api", "v1", "cron-workflows", namespace],
            &[],
            Some(json_body(&body)?),
            Kind::Create,
            "create cron workflow",
        )
        .await
    }

    pub async fn get_cron_workflow(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<CronWorkflow, ArgoError> {
        self.call(
            Method::GET,
            &["api", "v1", "cron-workflows", namespace, name],
            &[],
            None,
            Kind::Read,
            "get cron workflow",
        )
        .await
    }

    pub async fn list_cron_workflows(
        &self,
        namespace: &str,
        label_selector: &str,
    ) -> Result<CronWorkflowList, ArgoError> {
        let q = [("listOptions.labelSelector", label_selector.to_owned())];
        self.call(
            Method::GET,
            &["api", "v1", "cron-workflows", namespace],
            &q,
            None,
            Kind::Read,
            "list cron workflows",
        )
        .await
    }

    /// `PUT /api/v1/cron-workflows/{ns}/{name}`. `metadata.resourceVersion` must be the one
    /// read; a stale one is [`ArgoError::Conflict`].
    pub async fn update_cron_workflow(
        &self,
        namespace: &str,
        cwf: &CronWorkflow,
    ) -> Result<CronWorkflow, ArgoError> {
        let name = cwf.metadata.name.clone().unwrap_or_default();
        if cwf
            .metadata
            .resource_version
            .as_deref()
            .unwrap_or("")
            .is_empty()
        {
            return Err(ArgoError::Config(format!(
                "update of cron workflow {name} needs metadata.resourceVersion (read it with get_cron_workflow first)"
            )));
        }
        let body = json!({ "name": name, "namespace": namespace, "cronWorkflow": cwf });
        self.call(
            Method::PUT,
            &["api", "v1", "cron-workflows", namespace, &name],
            &[],
            Some(json_body(&body)?),
            Kind::Update,
            "update cron workflow",
        )
        .await
    }

    /// Create, or on 409 read the current one and update it with its resourceVersion
    /// (retrying a stale-version conflict up to 3 times). Returns `(object, created)`.
    pub async fn apply_cron_workflow(
        &self,
        namespace: &str,
        cwf: &CronWorkflow,
    ) -> Result<(CronWorkflow, bool), ArgoError> {
        match self.create_cron_workflow(namespace, cwf).await {
            Ok(c) => return Ok((c, true)),
            Err(ArgoError::AlreadyExists { .. }) => {}
            Err(e) => return Err(e),
        }
        let name = cwf.metadata.name.clone().unwrap_or_default();
        let mut last = None;
        for _ in 0..3 {
            let current = self.get_cron_workflow(namespace, &name).await?;
            let mut next = cwf.clone();
            next.metadata.resource_version = current.metadata.resource_version.clone();
            match self.update_cron_workflow(namespace, &next).await {
                Ok(c) => return Ok((c, false)),
                Err(e @ ArgoError::Conflict { .. }) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or(ArgoError::Conflict { message: name }))
    }

    pub async fn delete_cron_workflow(&self, namespace: &str, name: &str) -> Result<(), ArgoError> {
        self.call::<Value>(
            Method::DELETE,
            &["api", "v1", "cron-workflows", namespace, name],
            &[],
            None,
            Kind::Other,
            "delete cron workflow",
        )
        .await
        .map(|_| ())
    }

    pub async fn suspend_cron_workflow(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<CronWorkflow, ArgoError> {
        let body = json!({ "name": name, "namespace": namespace });
        self.call(
            Method::PUT,
            &["api", "v1", "cron-workflows", namespace, name, "suspend"],
            &[],
            Some(json_body(&body)?),
            Kind::Other,
            "suspend cron workflow",
        )
        .await
    }

    pub async fn resume_cron_workflow(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<CronWorkflow, ArgoError> {
        let body = json!({ "name": name, "namespace": namespace });
        self.call(
            Method::PUT,
            &["api", "v1", "cron-workflows", namespace, name, "resume"],
            &[],
            Some(json_body(&body)?),
            Kind::Other,
            "resume cron workflow",
        )
        .await
    }

    // ---------------------------------------------------------------- streams

    fn stream_format(&self) -> StreamFormat {
        if self.cfg.prefer_sse {
            StreamFormat::Sse
        } else {
            StreamFormat::Ndjson
        }
    }

    async fn open_stream<T: DeserializeOwned + Send + 'static>(
        &self,
        url: Url,
        format: StreamFormat,
        what: &'static str,
    ) -> Result<ArgoStream<T>, ArgoError> {
        let resp = self
            .execute(Method::GET, url, None, Kind::Read, Some(format), what)
            .await?;
        let endpoint = self.endpoint.clone();
        let body = resp
            .bytes_stream()
            .map(move |r: Result<Bytes, reqwest::Error>| {
                r.map_err(|e| ArgoError::Connect {
                    endpoint: endpoint.clone(),
                    detail: error_chain(&e),
                })
            });
        Ok(decode_stream(
            Box::pin(body),
            format,
            self.cfg.max_frame_bytes,
            self.cfg.stream_idle_timeout,
            what,
        ))
    }

    /// `GET /api/v1/workflows/{ns}/{name}/log?logOptions.container=main`, in the configured
    /// format (`prefer_sse`).
    pub async fn workflow_logs(
        &self,
        namespace: &str,
        name: &str,
        opts: &LogOptions,
    ) -> Result<ArgoStream<LogEntry>, ArgoError> {
        self.workflow_logs_as(namespace, name, opts, self.stream_format())
            .await
    }

    pub async fn workflow_logs_as(
        &self,
        namespace: &str,
        name: &str,
        opts: &LogOptions,
        format: StreamFormat,
    ) -> Result<ArgoStream<LogEntry>, ArgoError> {
        let mut q = vec![("logOptions.container", MAIN_CONTAINER.to_owned())];
        if opts.follow {
            q.push(("logOptions.follow", "true".into()));
        }
        if let Some(n) = opts.tail_lines {
            q.push(("logOptions.tailLines", n.to_string()));
        }
        if let Some(s) = opts.since_seconds {
            q.push(("logOptions.sinceSeconds", s.to_string()));
        }
        if let Some(p) = &opts.pod_name {
            q.push(("podName", p.clone()));
        }
        let url = self.url(&["api", "v1", "workflows", namespace, name, "log"], &q);
        self.open_stream(url, format, "workflow log").await
    }

    /// `GET /api/v1/workflow-events/{ns}?listOptions.labelSelector=...`: one watch for all
    /// the runner's workflows. Pass the list's `resourceVersion` to resume without a gap.
    /// The stream ends at EOF; re-list and re-watch then (see docs/argo.md).
    ///
    /// The server sends only [`watch_fields`] of each workflow (what
    /// [`crate::model::WorkflowSummary`] reads), not its spec.
    pub async fn watch_workflows(
        &self,
        namespace: &str,
        label_selector: &str,
        resource_version: Option<&str>,
    ) -> Result<ArgoStream<WorkflowWatchEvent>, ArgoError> {
        self.watch_workflows_as(
            namespace,
            label_selector,
            resource_version,
            self.stream_format(),
        )
        .await
    }

    pub async fn watch_workflows_as(
        &self,
        namespace: &str,
        label_selector: &str,
        resource_version: Option<&str>,
        format: StreamFormat,
    ) -> Result<ArgoStream<WorkflowWatchEvent>, ArgoError> {
        let mut q = vec![("listOptions.labelSelector", label_selector.to_owned())];
        if let Some(rv) = resource_version.filter(|r| !r.is_empty()) {
            q.push(("listOptions.resourceVersion", rv.to_owned()));
        }
        q.push(("fields", watch_fields()));
        let url = self.url(&["api", "v1", "workflow-events", namespace], &q);
        self.open_stream(url, format, "workflow watch").await
    }
}

async fn read_limited(resp: reqwest::Response, limit: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut s = resp.bytes_stream();
    while let Some(Ok(chunk)) = s.next().await {
        let room = limit.saturating_sub(out.len());
        out.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if out.len() >= limit {
            break;
        }
    }
    out
}

/// Is a rustls error anywhere in the source chain (also inside an `io::Error`)?
fn is_rustls_error(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(c) = cur {
        if c.downcast_ref::<rustls::Error>().is_some() {
            return true;
        }
        if let Some(io) = c.downcast_ref::<std::io::Error>()
            && io
                .get_ref()
                .is_some_and(|i| i.downcast_ref::<rustls::Error>().is_some())
        {
            return true;
        }
        cur = c.source();
    }
    false
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

/// `NO_PROXY` (else `no_proxy`) holds a bare `*` entry.
fn no_proxy_is_wildcard(get: impl Fn(&str) -> Option<String>) -> bool {
    get("NO_PROXY")
        .or_else(|| get("no_proxy"))
        .is_some_and(|v| v.split([',', ' ']).any(|e| e.trim() == "*"))
}

fn tls_config(ca: Option<&Path>) -> Result<rustls::ClientConfig, ArgoError> {
    let roots = crate::trust::root_store(ca, "ARGO_SERVER_CERTIFICATE_PATH").map_err(|e| {
        ArgoError::Config(format!(
            "{e}; it must be the PEM certificate (-----BEGIN CERTIFICATE-----) of the CA that signed argo-server's certificate, or a directory of them"
        ))
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ArgoError::Config(format!("TLS setup: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_is_never_in_debug() {
        let c = ArgoClientConfig {
            token: TokenSource::Static("s3cr3t-token".into()),
            ..Default::default()
        };
        assert!(!format!("{c:?}").contains("s3cr3t"));
        let client = ArgoClient::new(c).unwrap();
        assert!(!format!("{client:?}").contains("s3cr3t"));
    }

    #[test]
    fn config_errors_name_the_setting() {
        let e = ArgoClient::new(ArgoClientConfig {
            endpoint: "argo:2746".into(),
            ..Default::default()
        })
        .unwrap_err();
        assert!(
            e.to_string().contains("PIPELINE_SERVICE_CLIENT_ENDPOINT"),
            "{e}"
        );
        let e = ArgoClientConfig::from_lookup(|_| None).unwrap_err();
        assert!(
            e.to_string().contains("PIPELINE_SERVICE_CLIENT_ENDPOINT"),
            "{e}"
        );
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ca.pem");
        std::fs::write(&p, "not a pem").unwrap();
        let e = ArgoClient::new(ArgoClientConfig {
            ca_cert_path: Some(p),
            ..Default::default()
        })
        .unwrap_err();
        assert!(
            e.to_string().contains("ARGO_SERVER_CERTIFICATE_PATH"),
            "{e}"
        );
    }

    #[test]
    fn from_lookup_reads_the_env_contract() {
        let c = ArgoClientConfig::from_lookup(|k| match k {
            "PIPELINE_SERVICE_CLIENT_ENDPOINT" => Some("http://127.0.0.1:2746/".into()),
            "ARGO_TOKEN" => Some("abc".into()),
            "ARGO_SERVER_CERTIFICATE_PATH" => Some("/etc/argo/ca.pem".into()),
            _ => None,
        })
        .unwrap();
        assert!(matches!(c.token, TokenSource::Static(ref t) if t == "abc"));
        assert_eq!(
            c.ca_cert_path.as_deref(),
            Some(Path::new("/etc/argo/ca.pem"))
        );
    }

    #[test]
    fn token_file_is_reread_when_it_changes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("token");
        std::fs::write(&p, "first\n").unwrap();
        let auth = Auth {
            source: TokenSource::File(p.clone()),
            file_state: Default::default(),
        };
        assert_eq!(auth.header(false).unwrap().unwrap(), "Bearer first");
        std::fs::write(&p, "second-longer\n").unwrap();
        assert_eq!(auth.header(false).unwrap().unwrap(), "Bearer second-longer");
        let auth = Auth {
            source: TokenSource::Static("Bearer xyz".into()),
            file_state: Default::default(),
        };
        assert_eq!(auth.header(false).unwrap().unwrap(), "Bearer xyz");
    }

    #[test]
    fn backoff_grows_and_caps() {
        let r = RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
        };
        assert_eq!(r.backoff(1), Duration::from_millis(100));
        assert_eq!(r.backoff(2), Duration::from_millis(200));
        assert_eq!(r.backoff(10), Duration::from_secs(1));
    }
}
