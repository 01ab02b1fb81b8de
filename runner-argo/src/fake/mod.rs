//! An in-process fake Argo Server (feature `fake`) for tests and benchmarks.
//!
//! It listens on `127.0.0.1:0` and implements the endpoints the runner uses (brief 3.5):
//! workflows (create / get / list by label / delete / stop / terminate / log), cron
//! workflows (create / get / list / update with resourceVersion / delete / suspend /
//! resume), `workflow-events` (watch) and `version`. Behaviour:
//!
//! - workflows go through phases over time ([`FakeConfig::phase_plan`], per workflow with
//!   [`FakeArgo::set_plan`]) driven by `tokio::time`, so `start_paused` tests run instantly;
//! - duplicate names are 409 `{"code":6}`; a stale resourceVersion on update is 409 `{"code":10}`;
//! - logs and watch answer NDJSON, or SSE with `Accept: text/event-stream`, with keep-alives;
//!   watch honours `listOptions.resourceVersion` from a bounded history (410 mid-stream when
//!   too old);
//! - faults are injectable per route: status codes (429 / 500 / 503, with `Retry-After`),
//!   delays (client timeouts), garbage bodies, mid-stream `{"error":...}`, EOF after N frames,
//!   a stream that stalls (no frame, no keep-alive) after N frames;
//! - every request is counted; every body is validated against the Swagger definitions in
//!   `shared/specs/argo/swagger.json` (types, required, unknown fields) plus Argo's own
//!   checks (name length, entrypoint, onExit, schedules); invalid bodies get 400 and are kept
//!   for [`FakeArgo::rejected`].

#![allow(clippy::result_large_err)] // handlers return ready-made error responses

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::Response;
use serde_json::{Value, json};
use tokio::sync::broadcast;
use tokio::time::Instant;

use crate::schema::Swagger;

/// HTTP method of a [`FaultRule`].
pub use axum::http::Method as HttpMethod;

/// One step of a workflow's life: at `after` (since creation) the phase becomes `phase`.
#[derive(Debug, Clone, PartialEq)]
pub struct PhaseStep {
    pub after: Duration,
    pub phase: String,
    pub message: Option<String>,
}

impl PhaseStep {
    pub fn new(after: Duration, phase: &str) -> Self {
        Self {
            after,
            phase: phase.into(),
            message: None,
        }
    }
    pub fn with_message(mut self, m: &str) -> Self {
        self.message = Some(m.into());
        self
    }
}

#[derive(Debug, Clone)]
pub struct FakeConfig {
    /// Swagger to validate bodies with; `None` = [`crate::schema::default_specs_dir`]. When
    /// the file is absent validation is off ([`FakeArgo::validating`] says so).
    pub swagger_path: Option<PathBuf>,
    /// Default life of a workflow. Default: Pending at 0, Running at 1 s, Succeeded at 3 s.
    pub phase_plan: Vec<PhaseStep>,
    /// When set, requests must carry `Authorization: Bearer <token>` (else 401).
    pub token: Option<String>,
    /// Namespaces where the token is not allowed (403).
    pub forbidden_namespaces: Vec<String>,
    /// Images whose pods never start (node message `ImagePullBackOff`).
    pub unpullable_images: Vec<String>,
    /// How long a stopped workflow keeps Running (its exit handler runs) before it ends as
    /// stopped; `terminate` is immediate. Default 0.
    pub stop_takes: Duration,
    /// Keep-alive period on open streams (Argo: 15 s).
    pub keepalive: Duration,
    /// How often phases are re-evaluated.
    pub tick: Duration,
    /// Watch history kept for `resourceVersion` resumes.
    pub history: usize,
    pub version: String,
}

impl Default for FakeConfig {
    fn default() -> Self {
        Self {
            swagger_path: None,
            phase_plan: vec![
                PhaseStep::new(Duration::ZERO, "Pending"),
                PhaseStep::new(Duration::from_secs(1), "Running"),
                PhaseStep::new(Duration::from_secs(3), "Succeeded"),
            ],
            token: None,
            forbidden_namespaces: Vec::new(),
            unpullable_images: Vec::new(),
            stop_takes: Duration::ZERO,
            keepalive: Duration::from_secs(15),
            tick: Duration::from_millis(50),
            history: 10_000,
            version: "v4.1.2".into(),
        }
    }
}

/// What to do to a matching request.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Answer with this HTTP status and a `{"code","message"}` body.
    Status {
        status: u16,
        grpc_code: i64,
        message: String,
        retry_after: Option<u64>,
    },
    /// Wait this long before handling (to trigger client timeouts).
    Delay(Duration),
    /// 200 with a body that is not JSON.
    Garbage,
    /// Streams: send `{"error":...}` after this many result frames.
    StreamError {
        after_frames: usize,
        grpc_code: i64,
        message: String,
    },
    /// Streams: close the body (EOF) after this many result frames.
    Eof { after_frames: usize },
    /// Streams: after this many result frames send nothing more, not even keep-alives, and
    /// keep the connection open (a stalled stream: the client's idle timeout must fire).
    Stall { after_frames: usize },
}

impl Fault {
    pub fn status(status: u16) -> Self {
        let grpc_code = match status {
            400 => 3,
            401 => 16,
            403 => 7,
            404 => 5,
            409 => 6,
            429 => 8,
            503 => 14,
            _ => 13,
        };
        Self::Status {
            status,
            grpc_code,
            message: format!("injected {status}"),
            retry_after: None,
        }
    }
}

/// A fault applied to the next `times` requests whose method matches (if set) and whose path
/// contains `path_contains`.
#[derive(Debug, Clone)]
pub struct FaultRule {
    pub method: Option<Method>,
    pub path_contains: String,
    pub fault: Fault,
    pub times: usize,
}

impl FaultRule {
    pub fn new(method: Option<Method>, path_contains: &str, fault: Fault) -> Self {
        Self {
            method,
            path_contains: path_contains.into(),
            fault,
            times: 1,
        }
    }
    pub fn times(mut self, n: usize) -> Self {
        self.times = n;
        self
    }
}

/// A request as the fake saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: String,
    pub authorization: Option<String>,
}

struct WfEntry {
    obj: Value,
    created: Instant,
    plan: Vec<PhaseStep>,
    forced: Option<PhaseStep>,
    forced_at: Option<Instant>,
    shown_phase: String,
    step_idx: Option<usize>,
}

#[derive(Default)]
struct Store {
    rv: u64,
    uid: u64,
    workflows: BTreeMap<(String, String), WfEntry>,
    crons: BTreeMap<(String, String), Value>,
    history: VecDeque<(u64, String, Value)>,
    history_dropped_up_to: u64,
    logs: HashMap<(String, String), Vec<String>>,
    plans: HashMap<(String, String), Vec<PhaseStep>>,
}

struct Inner {
    cfg: FakeConfig,
    swagger: Option<Swagger>,
    store: Mutex<Store>,
    events: broadcast::Sender<(u64, String, Value)>,
    requests: Mutex<Vec<Recorded>>,
    faults: Mutex<Vec<FaultRule>>,
    rejected: Mutex<Vec<String>>,
    bodies: Mutex<Vec<(String, Value)>>,
    /// Bumped by [`FakeArgo::cut_streams`]: every open stream ends (EOF).
    cut: tokio::sync::watch::Sender<u64>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A running fake. Dropping it stops the server.
pub struct FakeArgo {
    addr: SocketAddr,
    inner: Arc<Inner>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for FakeArgo {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl FakeArgo {
    /// Start on `127.0.0.1:0`.
    pub async fn start(cfg: FakeConfig) -> std::io::Result<Self> {
        let path = cfg
            .swagger_path
            .clone()
            .unwrap_or_else(|| crate::schema::default_specs_dir().join("swagger.json"));
        let swagger = match Swagger::load(&path) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!("fake argo: request validation OFF: {e}");
                None
            }
        };
        let (events, _) = broadcast::channel(4096);
        let inner = Arc::new(Inner {
            cfg,
            swagger,
            store: Mutex::new(Store::default()),
            events,
            requests: Mutex::new(Vec::new()),
            faults: Mutex::new(Vec::new()),
            rejected: Mutex::new(Vec::new()),
            bodies: Mutex::new(Vec::new()),
            cut: tokio::sync::watch::channel(0).0,
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let app = Router::new().fallback(handle).with_state(inner.clone());
        // Nagle's algorithm off, as on a real API server (Go's net package sets TCP_NODELAY):
        // stream frames go out when written.
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let ticker_inner = inner.clone();
        let ticker = tokio::spawn(async move {
            let mut iv = tokio::time::interval(ticker_inner.cfg.tick);
            iv.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                iv.tick().await;
                ticker_inner.evaluate_all();
            }
        });
        Ok(Self {
            addr,
            inner,
            tasks: vec![server, ticker],
        })
    }

    /// `http://127.0.0.1:<port>`: the `PIPELINE_SERVICE_CLIENT_ENDPOINT` of a client.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Whether bodies are validated against swagger.json (false when the file is absent).
    pub fn validating(&self) -> bool {
        self.inner.swagger.is_some()
    }

    pub fn inject(&self, rule: FaultRule) {
        lock(&self.inner.faults).push(rule);
    }

    /// Ends every open stream (watch, followed logs) now with EOF, as a proxy or a restarting
    /// Argo Server would; clients must re-open them.
    pub fn cut_streams(&self) {
        self.inner.cut.send_modify(|n| *n += 1);
    }

    pub fn clear_faults(&self) {
        lock(&self.inner.faults).clear();
    }

    /// Total requests received.
    pub fn request_count(&self) -> usize {
        lock(&self.inner.requests).len()
    }

    /// Requests whose method matches and path contains `path_contains`.
    pub fn count(&self, method: &str, path_contains: &str) -> usize {
        lock(&self.inner.requests)
            .iter()
            .filter(|r| r.method == method && r.path.contains(path_contains))
            .count()
    }

    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.inner.requests).clone()
    }

    pub fn reset_requests(&self) {
        lock(&self.inner.requests).clear();
    }

    /// Every JSON request body received (`"METHOD path"`, body), valid or not: for tests
    /// that scan everything sent to Argo (e.g. for secret values).
    pub fn bodies(&self) -> Vec<(String, Value)> {
        lock(&self.inner.bodies).clone()
    }

    /// Bodies rejected by validation, with the reasons.
    pub fn rejected(&self) -> Vec<String> {
        lock(&self.inner.rejected).clone()
    }

    /// Life of one workflow (before or after it is created).
    pub fn set_plan(&self, namespace: &str, name: &str, plan: Vec<PhaseStep>) {
        let key = (namespace.to_owned(), name.to_owned());
        let mut st = lock(&self.inner.store);
        if let Some(e) = st.workflows.get_mut(&key) {
            e.plan = plan.clone();
            e.step_idx = None;
        }
        st.plans.insert(key, plan);
    }

    /// Log lines of a workflow's `main` container.
    pub fn set_logs(&self, namespace: &str, name: &str, lines: Vec<String>) {
        lock(&self.inner.store)
            .logs
            .insert((namespace.to_owned(), name.to_owned()), lines);
    }

    /// Stored workflows (JSON as the server returns them).
    pub fn workflows(&self) -> Vec<Value> {
        lock(&self.inner.store)
            .workflows
            .values()
            .map(|e| e.obj.clone())
            .collect()
    }

    /// When each stored workflow was created, earliest first.
    pub fn created_at(&self) -> Vec<std::time::Instant> {
        let mut t: Vec<std::time::Instant> = lock(&self.inner.store)
            .workflows
            .values()
            .map(|e| e.created.into_std())
            .collect();
        t.sort();
        t
    }

    pub fn cron_workflows(&self) -> Vec<Value> {
        lock(&self.inner.store).crons.values().cloned().collect()
    }

    pub fn workflow(&self, namespace: &str, name: &str) -> Option<Value> {
        lock(&self.inner.store)
            .workflows
            .get(&(namespace.to_owned(), name.to_owned()))
            .map(|e| e.obj.clone())
    }

    /// Run a cron workflow now, as Argo's controller would on schedule; returns the new
    /// workflow's name (`<cron>-<n>`).
    pub fn trigger_cron(&self, namespace: &str, name: &str) -> Option<String> {
        let cron = lock(&self.inner.store)
            .crons
            .get(&(namespace.to_owned(), name.to_owned()))
            .cloned()?;
        let n = {
            let mut st = lock(&self.inner.store);
            st.uid += 1;
            1_700_000_000 + st.uid
        };
        let wf_name = format!("{name}-{n}");
        let mut meta = cron
            .pointer("/spec/workflowMetadata")
            .cloned()
            .unwrap_or_else(|| json!({}));
        meta["name"] = json!(wf_name);
        meta["namespace"] = json!(namespace);
        meta["labels"]["workflows.argoproj.io/cron-workflow"] = json!(name);
        let wf = json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
            "metadata": meta,
            "spec": cron.pointer("/spec/workflowSpec").cloned().unwrap_or_default(),
        });
        self.inner
            .insert_workflow(namespace, wf)
            .ok()
            .map(|_| wf_name)
    }

    /// Apply phase changes now (the ticker does this every `tick`).
    pub fn evaluate(&self) {
        self.inner.evaluate_all();
    }
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn err_body(status: StatusCode, code: i64, message: &str) -> Response {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(
            json!({"code": code, "message": message, "details": []}).to_string(),
        ))
        .unwrap_or_default()
}

fn ok_json<T: serde::Serialize + ?Sized>(v: &T) -> Response {
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(serde_json::to_vec(v).unwrap_or_default()))
        .unwrap_or_default()
}

fn is_terminal(phase: &str) -> bool {
    matches!(phase, "Succeeded" | "Failed" | "Error")
}

/// `k=v`, `k==v`, `k!=v`, `k`, `!k`, comma separated.
fn selector_matches(sel: &str, labels: Option<&Value>) -> Result<bool, String> {
    let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
    for part in sel.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if part.contains('(') {
            return Err(format!(
                "set-based selector {part:?} not supported by the fake"
            ));
        }
        let ok = if let Some((k, v)) = part.split_once("!=") {
            get(k.trim()) != Some(v.trim())
        } else if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
            get(k.trim()) == Some(v.trim())
        } else if let Some(k) = part.strip_prefix('!') {
            get(k.trim()).is_none()
        } else {
            get(part).is_some()
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

fn query_map(uri: &Uri) -> HashMap<String, String> {
    let q = uri.query().unwrap_or("");
    url_decode_pairs(q)
}

fn url_decode_pairs(q: &str) -> HashMap<String, String> {
    q.split('&')
        .filter(|s| !s.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (pct_decode(k), pct_decode(v))
        })
        .collect()
}

fn pct_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' if i + 2 < b.len() => {
                let h = std::str::from_utf8(&b[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match h {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn dns_label_ok(name: &str, max: usize) -> bool {
    !name.is_empty()
        && name.len() <= max
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// Argo's own checks of a WorkflowSpec (what `argo lint` would say).
fn lint_spec(spec: &Value, path: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let templates = spec
        .get("templates")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let names: Vec<&str> = templates
        .iter()
        .filter_map(|t| t.get("name").and_then(Value::as_str))
        .collect();
    if spec.get("workflowTemplateRef").is_none() {
        if templates.is_empty() {
            errs.push(format!(
                "{path}.templates: at least one template is required"
            ));
        }
        match spec.get("entrypoint").and_then(Value::as_str) {
            Some(e) if names.contains(&e) => {}
            Some(e) => errs.push(format!("{path}.entrypoint: template {e:?} not found")),
            None => errs.push(format!("{path}.entrypoint: required")),
        }
    }
    if let Some(e) = spec.get("onExit").and_then(Value::as_str)
        && !names.contains(&e)
    {
        errs.push(format!("{path}.onExit: template {e:?} not found"));
    }
    for (i, t) in templates.iter().enumerate() {
        if let Some(n) = t.get("name").and_then(Value::as_str)
            && (n.len() > 128 || !n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        {
            errs.push(format!(
                "{path}.templates[{i}].name: {n:?} must be alphanumeric and '-' (max 128)"
            ));
        }
        if let Some(c) = t.get("container")
            && c.get("image")
                .and_then(Value::as_str)
                .unwrap_or("")
                .is_empty()
        {
            errs.push(format!("{path}.templates[{i}].container.image: required"));
        }
    }
    errs
}

impl Inner {
    fn record(&self, method: &Method, uri: &Uri, headers: &HeaderMap) {
        let mut r = lock(&self.requests);
        if r.len() < 1_000_000 {
            r.push(Recorded {
                method: method.to_string(),
                path: uri.path().to_owned(),
                query: uri.query().unwrap_or("").to_owned(),
                authorization: headers
                    .get(header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
            });
        }
    }

    fn take_fault(&self, method: &Method, path: &str) -> Option<Fault> {
        let mut f = lock(&self.faults);
        let i = f.iter().position(|r| {
            r.times > 0
                && r.method.as_ref().is_none_or(|m| m == method)
                && path.contains(&r.path_contains)
        })?;
        f[i].times -= 1;
        let fault = f[i].fault.clone();
        if f[i].times == 0 {
            f.remove(i);
        }
        Some(fault)
    }

    fn reject(&self, what: &str, errs: Vec<String>) -> Response {
        let msg = format!("{what}: {}", errs.join("; "));
        lock(&self.rejected).push(msg.clone());
        err_body(StatusCode::BAD_REQUEST, 3, &msg)
    }

    fn validate(&self, def: &str, body: &Value) -> Vec<String> {
        match &self.swagger {
            Some(s) => {
                debug_assert!(s.has_definition(def), "{def}");
                s.validate(def, body)
            }
            None => Vec::new(),
        }
    }

    fn publish(&self, st: &mut Store, ns: &str, event_type: &str, obj: &Value) -> u64 {
        st.rv += 1;
        let rv = st.rv;
        // Built by hand: `json!` would serialize `obj` into a new Value (slower than a clone).
        let mut ev = serde_json::Map::new();
        ev.insert("type".into(), Value::String(event_type.to_owned()));
        ev.insert("object".into(), obj.clone());
        let ev = Value::Object(ev);
        st.history.push_back((rv, ns.to_owned(), ev.clone()));
        while st.history.len() > self.cfg.history {
            if let Some((r, _, _)) = st.history.pop_front() {
                st.history_dropped_up_to = r;
            }
        }
        let _ = self.events.send((rv, ns.to_owned(), ev));
        rv
    }

    fn insert_workflow(&self, ns: &str, mut wf: Value) -> Result<Value, Response> {
        let mut st = lock(&self.store);
        let name = match wf.pointer("/metadata/name").and_then(Value::as_str) {
            Some(n) => n.to_owned(),
            None => {
                let g = wf
                    .pointer("/metadata/generateName")
                    .and_then(Value::as_str)
                    .unwrap_or("wf-")
                    .to_owned();
                st.uid += 1;
                format!("{g}{:05x}", st.uid)
            }
        };
        let key = (ns.to_owned(), name.clone());
        if st.workflows.contains_key(&key) {
            return Err(err_body(
                StatusCode::CONFLICT,
                6,
                &format!("workflows.argoproj.io \"{name}\" already exists"),
            ));
        }
        st.uid += 1;
        let uid = format!("00000000-0000-4000-8000-{:012x}", st.uid);
        wf["metadata"]["name"] = json!(name);
        wf["metadata"]["namespace"] = json!(ns);
        wf["metadata"]["uid"] = json!(uid);
        wf["metadata"]["creationTimestamp"] = json!(now_rfc3339());
        if wf.pointer("/metadata/labels").is_none() {
            wf["metadata"]["labels"] = json!({});
        }
        wf["status"] = json!({});
        let plan = st
            .plans
            .get(&key)
            .cloned()
            .unwrap_or_else(|| self.cfg.phase_plan.clone());
        let mut e = WfEntry {
            obj: wf,
            created: Instant::now(),
            plan,
            forced: None,
            forced_at: None,
            shown_phase: String::new(),
            step_idx: None,
        };
        self.apply_phase(&mut e);
        let rv = st.rv + 1;
        e.obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        let obj = e.obj.clone();
        st.workflows.insert(key, e);
        self.publish(&mut st, ns, "ADDED", &obj);
        Ok(obj)
    }

    /// Compute the phase an entry should show now; true if it changed.
    fn apply_phase(&self, e: &mut WfEntry) -> bool {
        let elapsed = e.created.elapsed();
        let forced_now = e
            .forced
            .as_ref()
            .filter(|_| e.forced_at.is_none_or(|t| Instant::now() >= t));
        let step = match forced_now {
            Some(f) => f.clone(),
            None => {
                // advance at most one step per evaluation, so that every phase of the plan is
                // shown (and watched) even when the ticker runs late
                let target = e.plan.iter().rposition(|s| s.after <= elapsed);
                let idx = match (target, e.step_idx) {
                    (None, _) => None,
                    (Some(_), None) => Some(0),
                    (Some(t), Some(i)) => Some(t.min(i + 1)),
                };
                if idx == e.step_idx && !e.shown_phase.is_empty() {
                    // The step shown at the last evaluation (a forced step is never cleared,
                    // so it cannot have been shown since): nothing changed. Checked first so
                    // that a tick over thousands of workflows stays cheap.
                    return false;
                }
                e.step_idx = idx;
                idx.and_then(|i| e.plan.get(i))
                    .cloned()
                    .unwrap_or_else(|| PhaseStep::new(Duration::ZERO, "Pending"))
            }
        };
        let image = e
            .obj
            .pointer("/spec/templates/0/container/image")
            .and_then(Value::as_str)
            .unwrap_or("");
        let unpullable =
            self.cfg.unpullable_images.iter().any(|i| i == image) && e.forced.is_none();
        let (phase, node_msg) = if unpullable && step.phase != "Pending" {
            // the pod never starts: the workflow stays Running with the node's pull error
            (
                "Running".to_owned(),
                Some(format!(
                    "ImagePullBackOff: Back-off pulling image \"{image}\""
                )),
            )
        } else {
            (step.phase.clone(), step.message.clone())
        };
        let shown = format!("{phase}|{node_msg:?}|{:?}", step.message);
        if shown == e.shown_phase {
            return false;
        }
        e.shown_phase = shown;
        let name = e
            .obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let entry = e
            .obj
            .pointer("/spec/entrypoint")
            .and_then(Value::as_str)
            .unwrap_or("main")
            .to_owned();
        let status = &mut e.obj["status"];
        if status.get("startedAt").is_none() && phase != "Pending" {
            status["startedAt"] = json!(now_rfc3339());
        }
        status["phase"] = json!(phase);
        match &step.message {
            Some(m) => status["message"] = json!(m),
            None => {
                if let Some(o) = status.as_object_mut() {
                    o.remove("message");
                }
            }
        }
        let done = is_terminal(&phase);
        status["progress"] = json!(if done { "1/1" } else { "0/1" });
        let mut node = json!({
            "id": name, "name": name, "displayName": name, "type": "Pod",
            "templateName": entry, "phase": if phase == "Pending" { "Pending" } else { phase.as_str() },
        });
        if let Some(m) = node_msg {
            node["message"] = json!(m);
        }
        status["nodes"] = json!({ name.clone(): node });
        if done {
            status["finishedAt"] = json!(now_rfc3339());
            e.obj["metadata"]["labels"]["workflows.argoproj.io/completed"] = json!("true");
        }
        e.obj["metadata"]["labels"]["workflows.argoproj.io/phase"] = json!(phase);
        true
    }

    fn evaluate_all(&self) {
        let mut st = lock(&self.store);
        let changed: Vec<(String, String)> = st
            .workflows
            .iter_mut()
            .filter_map(|(key, e)| self.apply_phase(e).then(|| key.clone()))
            .collect();
        for key in changed {
            let rv = st.rv + 1;
            let Some(e) = st.workflows.get_mut(&key) else {
                continue;
            };
            e.obj["metadata"]["resourceVersion"] = json!(rv.to_string());
            let obj = e.obj.clone();
            self.publish(&mut st, &key.0, "MODIFIED", &obj);
        }
    }

    fn stop(
        &self,
        ns: &str,
        name: &str,
        strategy: &str,
        message: Option<&str>,
    ) -> Result<Value, Response> {
        let mut st = lock(&self.store);
        let key = (ns.to_owned(), name.to_owned());
        let Some(e) = st.workflows.get_mut(&key) else {
            return Err(not_found("workflows", name));
        };
        let phase = e
            .obj
            .pointer("/status/phase")
            .and_then(Value::as_str)
            .unwrap_or("");
        if is_terminal(phase) {
            return Err(err_body(
                StatusCode::BAD_REQUEST,
                9,
                &format!("cannot {strategy} a completed workflow"),
            ));
        }
        e.obj["spec"]["shutdown"] = json!(strategy);
        let mut msg = format!("Stopped with strategy '{strategy}'");
        if let Some(m) = message {
            msg = format!("{msg}: {m}");
        }
        e.forced = Some(PhaseStep::new(Duration::ZERO, "Failed").with_message(&msg));
        e.forced_at = (strategy == "Stop" && !self.cfg.stop_takes.is_zero())
            .then(|| Instant::now() + self.cfg.stop_takes);
        self.apply_phase(e);
        let rv = st.rv + 1;
        let e = st.workflows.get_mut(&key).expect("present");
        e.obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        let obj = e.obj.clone();
        self.publish(&mut st, ns, "MODIFIED", &obj);
        Ok(obj)
    }
}

fn not_found(kind: &str, name: &str) -> Response {
    err_body(
        StatusCode::NOT_FOUND,
        5,
        &format!("{kind}.argoproj.io \"{name}\" not found"),
    )
}

fn parse_body(body: &Bytes) -> Result<Value, Response> {
    serde_json::from_slice(body).map_err(|e| {
        err_body(
            StatusCode::BAD_REQUEST,
            3,
            &format!("invalid JSON body: {e}"),
        )
    })
}

impl Inner {
    fn record_body(&self, method: &Method, path: &str, body: &Bytes) {
        if body.is_empty() {
            return;
        }
        let v = serde_json::from_slice(body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()));
        let mut b = lock(&self.bodies);
        if b.len() < 100_000 {
            b.push((format!("{method} {path}"), v));
        }
    }
}

async fn handle(
    State(inner): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    inner.record(&method, &uri, &headers);
    inner.record_body(&method, uri.path(), &body);
    let path = uri.path().to_owned();
    let mut stream_fault = None;
    if let Some(f) = inner.take_fault(&method, &path) {
        match f {
            Fault::Status {
                status,
                grpc_code,
                message,
                retry_after,
            } => {
                let mut r = err_body(
                    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                    grpc_code,
                    &message,
                );
                if let Some(s) = retry_after
                    && let Ok(v) = s.to_string().parse()
                {
                    r.headers_mut().insert(header::RETRY_AFTER, v);
                }
                return r;
            }
            Fault::Delay(d) => tokio::time::sleep(d).await,
            Fault::Garbage => {
                return Response::builder()
                    .status(StatusCode::OK)
                    .header(header::CONTENT_TYPE, "text/html")
                    .body(Body::from("<html>proxy error</html>"))
                    .unwrap_or_default();
            }
            other => stream_fault = Some(other),
        }
    }
    if let Some(tok) = &inner.cfg.token {
        let got = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if got != format!("Bearer {tok}") {
            return err_body(
                StatusCode::UNAUTHORIZED,
                16,
                "token not valid. More info: https://argo-workflows.readthedocs.io/en/latest/faq/",
            );
        }
    }
    let seg: Vec<&str> = path.trim_matches('/').split('/').collect();
    if seg.len() >= 4 && inner.cfg.forbidden_namespaces.iter().any(|n| n == seg[3]) {
        return err_body(
            StatusCode::FORBIDDEN,
            7,
            &format!(
                "workflows.argoproj.io is forbidden: User \"system:serviceaccount:x:runner\" cannot list resource \"workflows\" in API group \"argoproj.io\" in the namespace \"{}\"",
                seg[3]
            ),
        );
    }
    let sse = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/event-stream"));
    let q = query_map(&uri);
    match (method.clone(), seg.as_slice()) {
        (Method::GET, ["api", "v1", "version"]) => ok_json(&json!({
            "version": inner.cfg.version, "buildDate": "2026-08-21T00:00:00Z", "gitCommit": "16a52d67daf2f4a8a76fa8bec02a76a46aa46257",
            "gitTag": inner.cfg.version, "gitTreeState": "clean", "goVersion": "go1.24", "compiler": "gc", "platform": "linux/amd64"
        })),
        (Method::POST, ["api", "v1", "workflows", ns]) => {
            let body = match parse_body(&body) {
                Ok(b) => b,
                Err(r) => return r,
            };
            let mut errs =
                inner.validate("io.argoproj.workflow.v1alpha1.WorkflowCreateRequest", &body);
            let wf = body.get("workflow").cloned().unwrap_or_default();
            if wf.is_null() {
                errs.push("workflow: required".into());
            } else {
                match wf.pointer("/metadata/name").and_then(Value::as_str) {
                    Some(n) if !dns_label_ok(n, 63) => errs.push(format!("workflow.metadata.name: {n:?} must be a DNS-1123 name of at most 63 characters")),
                    None if wf.pointer("/metadata/generateName").is_none() => errs.push("workflow.metadata.name: name or generateName is required".into()),
                    _ => {}
                }
                errs.extend(lint_spec(
                    wf.get("spec").unwrap_or(&Value::Null),
                    "workflow.spec",
                ));
            }
            if !errs.is_empty() {
                return inner.reject("create workflow", errs);
            }
            match inner.insert_workflow(ns, wf) {
                Ok(v) => ok_json(&v),
                Err(r) => r,
            }
        }
        (Method::GET, ["api", "v1", "workflows", ns]) => {
            let sel = q
                .get("listOptions.labelSelector")
                .map(String::as_str)
                .unwrap_or("");
            let limit = q
                .get("listOptions.limit")
                .and_then(|l| l.parse::<usize>().ok())
                .filter(|l| *l > 0);
            let start = q
                .get("listOptions.continue")
                .and_then(|c| c.parse::<usize>().ok())
                .unwrap_or(0);
            let st = lock(&inner.store);
            let mut items = Vec::new();
            for ((n, _), e) in st.workflows.iter() {
                if n != ns {
                    continue;
                }
                match selector_matches(sel, e.obj.pointer("/metadata/labels")) {
                    Ok(true) => items.push(e.obj.clone()),
                    Ok(false) => {}
                    Err(m) => return err_body(StatusCode::BAD_REQUEST, 3, &m),
                }
            }
            let total = items.len();
            let (page, next) = match limit {
                Some(l) => {
                    let end = (start + l).min(total);
                    (
                        items[start.min(total)..end].to_vec(),
                        (end < total).then(|| end.to_string()),
                    )
                }
                None => (items, None),
            };
            let mut meta = json!({"resourceVersion": st.rv.to_string()});
            if let Some(c) = next {
                meta["continue"] = json!(c);
            }
            let list = json!({"metadata": meta, "items": if page.is_empty() { Value::Null } else { Value::Array(page) }});
            ok_json(&Fields::view(
                Fields::parse(q.get("fields"), "").as_ref(),
                &list,
            ))
        }
        (Method::GET, ["api", "v1", "workflows", ns, name]) => {
            match lock(&inner.store)
                .workflows
                .get(&(ns.to_string(), name.to_string()))
            {
                Some(e) => ok_json(&e.obj),
                None => not_found("workflows", name),
            }
        }
        (Method::DELETE, ["api", "v1", "workflows", ns, name]) => {
            let mut st = lock(&inner.store);
            match st.workflows.remove(&(ns.to_string(), name.to_string())) {
                Some(e) => {
                    inner.publish(&mut st, ns, "DELETED", &e.obj);
                    ok_json(&json!({}))
                }
                None => not_found("workflows", name),
            }
        }
        (
            Method::PUT,
            [
                "api",
                "v1",
                "workflows",
                ns,
                name,
                action @ ("stop" | "terminate"),
            ],
        ) => {
            let body = match parse_body(&body) {
                Ok(b) => b,
                Err(r) => return r,
            };
            let def = if *action == "stop" {
                "io.argoproj.workflow.v1alpha1.WorkflowStopRequest"
            } else {
                "io.argoproj.workflow.v1alpha1.WorkflowTerminateRequest"
            };
            let errs = inner.validate(def, &body);
            if !errs.is_empty() {
                return inner.reject(action, errs);
            }
            let strategy = if *action == "stop" {
                "Stop"
            } else {
                "Terminate"
            };
            match inner.stop(
                ns,
                name,
                strategy,
                body.get("message").and_then(Value::as_str),
            ) {
                Ok(v) => ok_json(&v),
                Err(r) => r,
            }
        }
        (Method::GET, ["api", "v1", "workflows", ns, name, "log"]) => {
            let key = (ns.to_string(), name.to_string());
            let (lines, pod) = {
                let st = lock(&inner.store);
                let Some(e) = st.workflows.get(&key) else {
                    return not_found("workflows", name);
                };
                let entry = e
                    .obj
                    .pointer("/spec/entrypoint")
                    .and_then(Value::as_str)
                    .unwrap_or("main");
                let lines = st.logs.get(&key).cloned().unwrap_or_else(|| {
                    vec![
                        format!("[{name}] Starting the ingestion workflow"),
                        format!("[{name}] Processed 10 records"),
                        format!("[{name}] Workflow finished"),
                    ]
                });
                (lines, format!("{name}-{entry}-1234567890"))
            };
            let container = q
                .get("logOptions.container")
                .map(String::as_str)
                .unwrap_or("main");
            let lines = if container == "main" {
                lines
            } else {
                Vec::new()
            };
            let follow = q.get("logOptions.follow").is_some_and(|v| v == "true");
            let frames: Vec<Value> = lines
                .into_iter()
                .map(|l| json!({"content": l, "podName": pod}))
                .collect();
            let watch_done = follow.then(|| (inner.clone(), key));
            stream_response(&inner, sse, frames, None, watch_done, stream_fault)
        }
        (Method::GET, ["api", "v1", "workflow-events", ns]) => {
            let sel = q
                .get("listOptions.labelSelector")
                .cloned()
                .unwrap_or_default();
            if let Err(m) = selector_matches(&sel, None) {
                return err_body(StatusCode::BAD_REQUEST, 3, &m);
            }
            let rv: Option<u64> = q
                .get("listOptions.resourceVersion")
                .and_then(|r| r.parse().ok());
            let rx = inner.events.subscribe();
            let (initial, last_rv, gone) = {
                let st = lock(&inner.store);
                let mut initial = Vec::new();
                let mut gone = false;
                match rv {
                    None => {
                        for ((n, _), e) in &st.workflows {
                            if n == ns
                                && selector_matches(&sel, e.obj.pointer("/metadata/labels"))
                                    .unwrap_or(false)
                            {
                                initial.push(json!({"type": "ADDED", "object": e.obj}));
                            }
                        }
                    }
                    Some(rv) => {
                        if rv < st.history_dropped_up_to {
                            gone = true;
                        }
                        for (r, n, ev) in &st.history {
                            if *r > rv
                                && n == ns
                                && selector_matches(&sel, ev.pointer("/object/metadata/labels"))
                                    .unwrap_or(false)
                            {
                                initial.push(ev.clone());
                            }
                        }
                    }
                }
                (initial, st.rv, gone)
            };
            let fault = if gone {
                Some(Fault::StreamError {
                    after_frames: 0,
                    grpc_code: 11,
                    message: "too old resource version".into(),
                })
            } else {
                stream_fault
            };
            let live = Some(LiveWatch {
                rx,
                ns: ns.to_string(),
                sel,
                last_rv,
                fields: Fields::parse(q.get("fields"), "result."),
            });
            stream_response(&inner, sse, initial, live, None, fault)
        }
        (Method::POST, ["api", "v1", "cron-workflows", ns]) => {
            let body = match parse_body(&body) {
                Ok(b) => b,
                Err(r) => return r,
            };
            let mut errs = inner.validate(
                "io.argoproj.workflow.v1alpha1.CreateCronWorkflowRequest",
                &body,
            );
            let cwf = body.get("cronWorkflow").cloned().unwrap_or_default();
            errs.extend(lint_cron(&cwf));
            if !errs.is_empty() {
                return inner.reject("create cron workflow", errs);
            }
            let name = cwf
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            let mut st = lock(&inner.store);
            let key = (ns.to_string(), name.clone());
            if st.crons.contains_key(&key) {
                return err_body(
                    StatusCode::CONFLICT,
                    6,
                    &format!("cronworkflows.argoproj.io \"{name}\" already exists"),
                );
            }
            let mut cwf = cwf;
            st.rv += 1;
            st.uid += 1;
            cwf["metadata"]["namespace"] = json!(ns);
            cwf["metadata"]["uid"] = json!(format!("00000000-0000-4000-9000-{:012x}", st.uid));
            cwf["metadata"]["resourceVersion"] = json!(st.rv.to_string());
            cwf["metadata"]["creationTimestamp"] = json!(now_rfc3339());
            st.crons.insert(key, cwf.clone());
            ok_json(&cwf)
        }
        (Method::GET, ["api", "v1", "cron-workflows", ns]) => {
            let sel = q
                .get("listOptions.labelSelector")
                .map(String::as_str)
                .unwrap_or("");
            let st = lock(&inner.store);
            let items: Vec<Value> = st
                .crons
                .iter()
                .filter(|((n, _), c)| {
                    n == ns && selector_matches(sel, c.pointer("/metadata/labels")).unwrap_or(false)
                })
                .map(|(_, c)| c.clone())
                .collect();
            ok_json(
                &json!({"metadata": {"resourceVersion": st.rv.to_string()}, "items": if items.is_empty() { Value::Null } else { Value::Array(items) }}),
            )
        }
        (Method::GET, ["api", "v1", "cron-workflows", ns, name]) => {
            match lock(&inner.store)
                .crons
                .get(&(ns.to_string(), name.to_string()))
            {
                Some(c) => ok_json(c),
                None => not_found("cronworkflows", name),
            }
        }
        (Method::PUT, ["api", "v1", "cron-workflows", ns, name]) => {
            let body = match parse_body(&body) {
                Ok(b) => b,
                Err(r) => return r,
            };
            let mut errs = inner.validate(
                "io.argoproj.workflow.v1alpha1.UpdateCronWorkflowRequest",
                &body,
            );
            let cwf = body.get("cronWorkflow").cloned().unwrap_or_default();
            errs.extend(lint_cron(&cwf));
            if !errs.is_empty() {
                return inner.reject("update cron workflow", errs);
            }
            let mut st = lock(&inner.store);
            let key = (ns.to_string(), name.to_string());
            let Some(cur) = st.crons.get(&key).cloned() else {
                return not_found("cronworkflows", name);
            };
            let sent = cwf
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str)
                .unwrap_or("");
            let have = cur
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str)
                .unwrap_or("");
            if sent != have {
                return err_body(
                    StatusCode::CONFLICT,
                    10,
                    &format!(
                        "Operation cannot be fulfilled on cronworkflows.argoproj.io \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
                    ),
                );
            }
            let mut cwf = cwf;
            st.rv += 1;
            cwf["metadata"]["uid"] = cur["metadata"]["uid"].clone();
            cwf["metadata"]["namespace"] = json!(ns);
            cwf["metadata"]["creationTimestamp"] = cur["metadata"]["creationTimestamp"].clone();
            cwf["metadata"]["resourceVersion"] = json!(st.rv.to_string());
            st.crons.insert(key, cwf.clone());
            ok_json(&cwf)
        }
        (Method::DELETE, ["api", "v1", "cron-workflows", ns, name]) => {
            match lock(&inner.store)
                .crons
                .remove(&(ns.to_string(), name.to_string()))
            {
                Some(_) => ok_json(&json!({})),
                None => not_found("cronworkflows", name),
            }
        }
        (
            Method::PUT,
            [
                "api",
                "v1",
                "cron-workflows",
                ns,
                name,
                action @ ("suspend" | "resume"),
            ],
        ) => {
            let body = match parse_body(&body) {
                Ok(b) => b,
                Err(r) => return r,
            };
            let def = if *action == "suspend" {
                "io.argoproj.workflow.v1alpha1.CronWorkflowSuspendRequest"
            } else {
                "io.argoproj.workflow.v1alpha1.CronWorkflowResumeRequest"
            };
            let errs = inner.validate(def, &body);
            if !errs.is_empty() {
                return inner.reject(action, errs);
            }
            let mut st = lock(&inner.store);
            st.rv += 1;
            let rv = st.rv;
            match st.crons.get_mut(&(ns.to_string(), name.to_string())) {
                Some(c) => {
                    c["spec"]["suspend"] = json!(*action == "suspend");
                    c["metadata"]["resourceVersion"] = json!(rv.to_string());
                    ok_json(c)
                }
                None => not_found("cronworkflows", name),
            }
        }
        _ => err_body(
            StatusCode::NOT_FOUND,
            5,
            &format!("Not Found: {method} {path}"),
        ),
    }
}

fn lint_cron(cwf: &Value) -> Vec<String> {
    let mut errs = Vec::new();
    match cwf.pointer("/metadata/name").and_then(Value::as_str) {
        Some(n) if dns_label_ok(n, 52) => {}
        Some(n) => errs.push(format!(
            "cronWorkflow.metadata.name: {n:?} must be a DNS-1123 name of at most 52 characters"
        )),
        None => errs.push("cronWorkflow.metadata.name: required".into()),
    }
    if cwf.pointer("/spec/schedule").is_some() {
        errs.push("cronWorkflow.spec.schedule: removed in Argo 4.0, use spec.schedules".into());
    }
    match cwf.pointer("/spec/schedules").and_then(Value::as_array) {
        Some(s) if !s.is_empty() => {
            for (i, x) in s.iter().enumerate() {
                let ok = x
                    .as_str()
                    .is_some_and(|c| c.starts_with('@') || c.split_whitespace().count() == 5);
                if !ok {
                    errs.push(format!(
                        "cronWorkflow.spec.schedules[{i}]: {x} is not a cron expression"
                    ));
                }
            }
        }
        _ => errs.push("cronWorkflow.spec.schedules: at least one schedule is required".into()),
    }
    errs.extend(lint_spec(
        cwf.pointer("/spec/workflowSpec").unwrap_or(&Value::Null),
        "cronWorkflow.spec.workflowSpec",
    ));
    errs
}

struct LiveWatch {
    rx: broadcast::Receiver<(u64, String, Value)>,
    ns: String,
    sel: String,
    last_rv: u64,
    /// The watch's `fields` parameter: only these parts of each event are sent.
    fields: Option<Fields>,
}

/// Argo Server's `fields` query parameter (list and watch): a comma-separated list of dot
/// paths to keep, e.g. `items.metadata.name` or `result.object.status.phase`; everything else
/// is left out of the response. A path through an array applies to each element; a path
/// through a scalar keeps nothing.
#[derive(Debug, Clone)]
struct Fields(Vec<Vec<String>>);

impl Fields {
    /// The paths of `query` that start with `prefix` (which is removed): the watch's paths
    /// start with `result.`, while its frames are built from the inner `{type, object}`.
    fn parse(query: Option<&String>, prefix: &str) -> Option<Fields> {
        let paths: Vec<Vec<String>> = query?
            .split(',')
            .filter_map(|p| p.trim().strip_prefix(prefix))
            .filter(|p| !p.is_empty())
            .map(|p| p.split('.').map(str::to_owned).collect())
            .collect();
        (!paths.is_empty()).then_some(Fields(paths))
    }

    /// `v` with only the parts `fields` selects (all of it without `fields`), as a
    /// serializable view (nothing is copied).
    fn view<'a>(fields: Option<&'a Fields>, v: &'a Value) -> Selected<'a> {
        const ALL: &[String] = &[];
        Selected {
            v,
            paths: match fields {
                Some(f) => f.0.iter().map(Vec::as_slice).collect(),
                None => vec![ALL],
            },
        }
    }
}

/// A [`Fields`] selection of a JSON value, serialized on the fly.
struct Selected<'a> {
    v: &'a Value,
    paths: Vec<&'a [String]>,
}

impl Selected<'_> {
    /// A part is kept when a path ends at it, or goes on into it and it has parts.
    fn keeps(&self) -> bool {
        self.paths.iter().any(|p| p.is_empty())
            || matches!(self.v, Value::Object(_) | Value::Array(_))
    }
}

impl serde::Serialize for Selected<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        if self.paths.iter().any(|p| p.is_empty()) {
            return self.v.serialize(s);
        }
        match self.v {
            Value::Object(m) => {
                let mut map = s.serialize_map(None)?;
                for (k, x) in m {
                    let part = Selected {
                        v: x,
                        paths: self
                            .paths
                            .iter()
                            .filter(|p| p[0] == *k)
                            .map(|p| &p[1..])
                            .collect(),
                    };
                    if !part.paths.is_empty() && part.keeps() {
                        map.serialize_entry(k, &part)?;
                    }
                }
                map.end()
            }
            Value::Array(a) => {
                let mut seq = s.serialize_seq(None)?;
                for x in a {
                    let part = Selected {
                        v: x,
                        paths: self.paths.clone(),
                    };
                    if part.keeps() {
                        seq.serialize_element(&part)?;
                    }
                }
                seq.end()
            }
            _ => s.serialize_unit(),
        }
    }
}

struct StreamState {
    sse: bool,
    initial: VecDeque<Value>,
    live: Option<LiveWatch>,
    follow: Option<(Arc<Inner>, (String, String))>,
    fault: Option<Fault>,
    sent: usize,
    keepalive: tokio::time::Interval,
    tick: Duration,
    done: bool,
    cut: tokio::sync::watch::Receiver<u64>,
}

fn frame(sse: bool, v: &Value) -> Bytes {
    if sse {
        Bytes::from(format!("data: {v}\n\n"))
    } else {
        Bytes::from(format!("{v}\n"))
    }
}

/// `{"result": v}` as a frame, written straight from `v` (no copy of the object first).
fn result_frame<T: serde::Serialize + ?Sized>(sse: bool, v: &T) -> Bytes {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(if sse {
        &b"data: {\"result\":"[..]
    } else {
        &b"{\"result\":"[..]
    });
    // Writing a Value into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut out, v);
    out.extend_from_slice(if sse { &b"}\n\n"[..] } else { &b"}\n"[..] });
    Bytes::from(out)
}

fn stream_response(
    inner: &Arc<Inner>,
    sse: bool,
    initial: Vec<Value>,
    live: Option<LiveWatch>,
    follow: Option<(Arc<Inner>, (String, String))>,
    fault: Option<Fault>,
) -> Response {
    let mut keepalive = tokio::time::interval(inner.cfg.keepalive);
    keepalive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let st = StreamState {
        sse,
        initial: initial.into(),
        live,
        follow,
        fault,
        sent: 0,
        keepalive,
        tick: inner.cfg.tick,
        done: false,
        cut: inner.cut.subscribe(),
    };
    let body = futures_util::stream::unfold(st, |mut st| async move {
        if st.done {
            return None;
        }
        match &st.fault {
            Some(Fault::Eof { after_frames }) if st.sent >= *after_frames => return None,
            Some(Fault::Stall { after_frames }) if st.sent >= *after_frames => {
                std::future::pending::<()>().await;
                return None;
            }
            Some(Fault::StreamError {
                after_frames,
                grpc_code,
                message,
            }) if st.sent >= *after_frames => {
                st.done = true;
                let v = json!({"error": {"grpc_code": grpc_code, "http_code": 500, "message": message, "http_status": "Internal Server Error"}});
                let b = frame(st.sse, &v);
                return Some((Ok::<Bytes, Infallible>(b), st));
            }
            _ => {}
        }
        if let Some(v) = st.initial.pop_front() {
            st.sent += 1;
            let fields = st.live.as_ref().and_then(|l| l.fields.as_ref());
            let b = result_frame(st.sse, &Fields::view(fields, &v));
            return Some((Ok(b), st));
        }
        if st.sent == 0 && st.keepalive.period() > Duration::ZERO {
            // first keepalive tick fires immediately; consume it
            st.keepalive.reset();
        }
        loop {
            if let Some((inner, key)) = &st.follow {
                let done = {
                    let s = lock(&inner.store);
                    s.workflows
                        .get(key)
                        .map(|e| {
                            is_terminal(
                                e.obj
                                    .pointer("/status/phase")
                                    .and_then(Value::as_str)
                                    .unwrap_or(""),
                            )
                        })
                        .unwrap_or(true)
                };
                if done {
                    return None;
                }
                tokio::select! {
                    _ = st.keepalive.tick() => {
                        let b = if st.sse { Bytes::from_static(b": keep-alive\n\n") } else { Bytes::from_static(b"\n") };
                        return Some((Ok(b), st));
                    }
                    _ = tokio::time::sleep(st.tick) => continue,
                    _ = st.cut.changed() => return None,
                }
            }
            let live = st.live.as_mut()?;
            tokio::select! {
                ev = live.rx.recv() => match ev {
                    Ok((rv, ns, ev)) => {
                        if rv <= live.last_rv || ns != live.ns
                            || !selector_matches(&live.sel, ev.pointer("/object/metadata/labels")).unwrap_or(false) {
                            continue;
                        }
                        live.last_rv = rv;
                        st.sent += 1;
                        let b = result_frame(st.sse, &Fields::view(live.fields.as_ref(), &ev));
                        return Some((Ok(b), st));
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        st.done = true;
                        let v = json!({"error": {"grpc_code": 11, "http_code": 410, "message": "watch fell behind: too old resource version"}});
                        let b = frame(st.sse, &v);
                        return Some((Ok(b), st));
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                _ = st.keepalive.tick() => {
                    let b = if st.sse { Bytes::from_static(b": keep-alive\n\n") } else { Bytes::from_static(b"\n") };
                    return Some((Ok(b), st));
                }
                _ = st.cut.changed() => return None,
            }
        }
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(
            header::CONTENT_TYPE,
            if sse {
                "text/event-stream"
            } else {
                "application/json"
            },
        )
        .body(Body::from_stream(body))
        .unwrap_or_default()
}
