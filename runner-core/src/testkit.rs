//! A mock control plane: the server half of the protocol on a real WebSocket, for tests, the
//! demo and benchmarks. Built on [`runner_protocol::ControlSession`].
//!
//! It accepts one runner at a time on `127.0.0.1:0`, checks the bearer token on the upgrade,
//! remembers stored events per runner instance (so replays are recognised as duplicates), and
//! lets a test send requests, inject raw frames, stop acknowledging, and drop the connection.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use runner_protocol::{
    AcceptOptions, ControlInput, ControlSession, EventFrame, Heartbeat, Hello, Limits, MessageId,
    Reject, Request, Response,
};
use tokio::net::TcpListener;

use crate::lock;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::handshake::server::{
    ErrorResponse, Request as HttpRequest, Response as HttpResponse,
};
use tokio_tungstenite::tungstenite::http::StatusCode;

/// How the mock behaves.
#[derive(Debug, Clone)]
pub struct MockOptions {
    /// The token runners must present (`Authorization: Bearer <token>`).
    pub token: String,
    pub heartbeat_interval: Duration,
    /// When set, every hello is answered with this reject.
    pub reject: Option<Reject>,
    /// Reject bad tokens in a `reject` frame after the upgrade instead of with HTTP 401.
    pub reject_token_in_band: bool,
    pub limits: Limits,
    /// Serve `wss://` with this TLS configuration.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Protocol versions accepted (default: all this build speaks).
    pub versions: Option<Vec<u16>>,
}

impl Default for MockOptions {
    fn default() -> Self {
        MockOptions {
            token: "test-token".into(),
            heartbeat_interval: Duration::from_secs(15),
            reject: None,
            reject_token_in_band: false,
            limits: Limits::DEFAULT,
            tls: None,
            versions: None,
        }
    }
}

/// One event as the mock stored it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub instance_id: String,
    pub event: EventFrame,
}

#[derive(Debug)]
enum Outgoing {
    Request {
        id: Option<MessageId>,
        request: Request,
        reply: oneshot::Sender<Result<Response, String>>,
    },
    Raw(String),
    Drop,
    Goodbye(bool),
}

#[derive(Default)]
struct State {
    hello: Option<Hello>,
    connection: Option<mpsc::Sender<Outgoing>>,
    connections: u64,
    upgrades_refused: u64,
    /// Stored events per (instance, seq).
    events: BTreeMap<(String, u64), EventFrame>,
    duplicates: u64,
    acked: HashMap<String, u64>,
    ack_events: bool,
    replies_to_raw: Vec<serde_json::Value>,
    heartbeats: Vec<Heartbeat>,
    /// Every frame received from runners (bounded), for leak scans.
    transcript: Vec<String>,
}

const TRANSCRIPT_MAX: usize = 100_000;

/// A running mock control plane. Dropping it stops it.
pub struct MockControlPlane {
    scheme: &'static str,
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    changed: Arc<Notify>,
    _stop: tokio_util::sync::DropGuard,
}

impl std::fmt::Debug for MockControlPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockControlPlane")
            .field("addr", &self.addr)
            .finish()
    }
}

impl MockControlPlane {
    /// Binds `127.0.0.1:0` and serves until dropped.
    pub async fn start(options: MockOptions) -> std::io::Result<MockControlPlane> {
        Self::bind("127.0.0.1:0", options).await
    }

    pub async fn bind(addr: &str, options: MockOptions) -> std::io::Result<MockControlPlane> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State {
            ack_events: true,
            ..Default::default()
        }));
        let changed = Arc::new(Notify::new());
        let token = tokio_util::sync::CancellationToken::new();
        let stop = token.clone().drop_guard();
        let (st, ch) = (state.clone(), changed.clone());
        let scheme = if options.tls.is_some() { "wss" } else { "ws" };
        tokio::spawn(async move {
            loop {
                let (tcp, _) = tokio::select! {
                    r = listener.accept() => match r { Ok(x) => x, Err(_) => continue },
                    _ = token.cancelled() => return,
                };
                let (st, ch, opts, tok) = (st.clone(), ch.clone(), options.clone(), token.clone());
                tokio::spawn(async move {
                    let served = async {
                        match opts.tls.clone() {
                            Some(tls) => {
                                match tokio_rustls::TlsAcceptor::from(tls).accept(tcp).await {
                                    Ok(stream) => serve(stream, st, ch.clone(), opts).await,
                                    Err(_) => lock(&st).upgrades_refused += 1,
                                }
                            }
                            None => serve(tcp, st, ch.clone(), opts).await,
                        }
                    };
                    tokio::select! {
                        _ = served => {}
                        _ = tok.cancelled() => {}
                    }
                    ch.notify_waiters();
                });
            }
        });
        Ok(MockControlPlane {
            scheme,
            addr,
            state,
            changed,
            _stop: stop,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `ws://127.0.0.1:<port>/agent` (`wss://localhost:<port>/agent` with TLS, matching a
    /// certificate issued for `localhost`).
    pub fn url(&self) -> String {
        match self.scheme {
            "wss" => format!("wss://localhost:{}/agent", self.addr.port()),
            _ => format!("ws://{}/agent", self.addr),
        }
    }

    /// Waits until `f` holds for the mock's state, or the timeout passes.
    async fn wait_for<T>(
        &self,
        timeout: Duration,
        mut f: impl FnMut(&State) -> Option<T>,
    ) -> Result<T, String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.changed.notified();
            if let Some(v) = f(&lock(&self.state)) {
                return Ok(v);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Err(format!("condition not met within {timeout:?}"));
            }
        }
    }

    /// Waits for an established session; returns the runner's hello.
    pub async fn wait_connected(&self, timeout: Duration) -> Result<Hello, String> {
        self.wait_for(timeout, |s| s.connection.as_ref().and(s.hello.clone()))
            .await
    }

    /// Waits for the `n`th established session (counting from 1).
    pub async fn wait_connections(&self, n: u64, timeout: Duration) -> Result<Hello, String> {
        self.wait_for(timeout, |s| {
            (s.connections >= n)
                .then_some(())
                .and(s.connection.as_ref())
                .and(s.hello.clone())
        })
        .await
    }

    /// Sessions established so far.
    pub fn connections(&self) -> u64 {
        lock(&self.state).connections
    }

    /// Upgrades refused because of a wrong token.
    pub fn upgrades_refused(&self) -> u64 {
        lock(&self.state).upgrades_refused
    }

    async fn send(&self, out: Outgoing) -> Result<(), String> {
        let tx = lock(&self.state)
            .connection
            .clone()
            .ok_or("no runner connected")?;
        tx.send(out)
            .await
            .map_err(|_| "the connection closed".to_owned())
    }

    /// Sends a request and waits for its reply.
    pub async fn request(&self, request: Request) -> Result<Response, String> {
        self.request_as(None, request).await
    }

    /// Sends a request under a chosen id (to replay it) and waits for its reply.
    pub async fn request_as(&self, id: Option<&str>, request: Request) -> Result<Response, String> {
        let (tx, rx) = oneshot::channel();
        let id = match id {
            Some(id) => Some(MessageId::new(id, 128).map_err(str::to_owned)?),
            None => None,
        };
        self.send(Outgoing::Request {
            id,
            request,
            reply: tx,
        })
        .await?;
        tokio::time::timeout(Duration::from_secs(30), rx)
            .await
            .map_err(|_| "no reply within 30s".to_owned())?
            .map_err(|_| "the connection closed before the reply".to_owned())?
    }

    /// Sends a raw text frame; replies that are not responses to known requests are collected
    /// in [`MockControlPlane::raw_replies`].
    pub async fn send_raw(&self, text: impl Into<String>) -> Result<(), String> {
        self.send(Outgoing::Raw(text.into())).await
    }

    /// Frames from the runner that answered raw frames (errors, responses to unknown ids).
    pub async fn wait_raw_replies(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<serde_json::Value>, String> {
        self.wait_for(timeout, |s| {
            (s.replies_to_raw.len() >= n).then(|| s.replies_to_raw.clone())
        })
        .await
    }

    /// Closes the TCP connection abruptly (no close frame).
    pub async fn drop_connection(&self) -> Result<(), String> {
        self.send(Outgoing::Drop).await
    }

    /// Sends `goodbye` and closes.
    pub async fn goodbye(&self, reconnect: bool) -> Result<(), String> {
        self.send(Outgoing::Goodbye(reconnect)).await
    }

    /// When false, events are neither stored nor acknowledged (a control plane that loses them).
    pub fn set_ack_events(&self, ack: bool) {
        lock(&self.state).ack_events = ack;
    }

    /// Every stored event, in (instance, seq) order.
    pub fn events(&self) -> Vec<StoredEvent> {
        lock(&self.state)
            .events
            .iter()
            .map(|((instance, _), ev)| StoredEvent {
                instance_id: instance.clone(),
                event: ev.clone(),
            })
            .collect()
    }

    /// Events received again after they were stored.
    pub fn duplicates(&self) -> u64 {
        lock(&self.state).duplicates
    }

    /// Every frame received from runners so far (the first 100,000).
    pub fn transcript(&self) -> Vec<String> {
        lock(&self.state).transcript.clone()
    }

    pub fn heartbeats(&self) -> Vec<Heartbeat> {
        lock(&self.state).heartbeats.clone()
    }

    /// Waits until a stored event satisfies `f`.
    pub async fn wait_event(
        &self,
        timeout: Duration,
        mut f: impl FnMut(&EventFrame) -> bool,
    ) -> Result<EventFrame, String> {
        self.wait_for(timeout, |s| s.events.values().find(|e| f(e)).cloned())
            .await
    }

    /// Waits until the runner has no established session.
    pub async fn wait_disconnected(&self, timeout: Duration) -> Result<(), String> {
        self.wait_for(timeout, |s| s.connection.is_none().then_some(()))
            .await
    }
}

async fn serve<S>(tcp: S, state: Arc<Mutex<State>>, changed: Arc<Notify>, opts: MockOptions)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let expected = format!("Bearer {}", opts.token);
    let mut token_ok = false;
    let in_band = opts.reject_token_in_band;
    // The callback's signature is tungstenite's.
    #[allow(clippy::result_large_err)]
    let callback = |req: &HttpRequest, resp: HttpResponse| -> Result<HttpResponse, ErrorResponse> {
        token_ok = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v == expected);
        if token_ok || in_band {
            return Ok(resp);
        }
        let mut err = ErrorResponse::new(Some("invalid or expired token".into()));
        *err.status_mut() = StatusCode::UNAUTHORIZED;
        Err(err)
    };
    let ws = match tokio_tungstenite::accept_hdr_async(tcp, callback).await {
        Ok(ws) => ws,
        Err(_) => {
            lock(&state).upgrades_refused += 1;
            changed.notify_waiters();
            return;
        }
    };
    let (mut sink, mut stream) = ws.split();
    let mut session = ControlSession::new(opts.limits);
    if let Some(v) = opts.versions.clone() {
        session = session.with_versions(v);
    }
    let (tx, mut rx) = mpsc::channel::<Outgoing>(64);
    let mut pending: HashMap<MessageId, oneshot::Sender<Result<Response, String>>> = HashMap::new();
    let mut instance = String::new();
    let mut heartbeat = tokio::time::interval(opts.heartbeat_interval);
    let session_id = uuid::Uuid::new_v4().to_string();
    loop {
        tokio::select! {
            frame = stream.next() => {
                let bytes = match frame {
                    Some(Ok(WsMessage::Text(t))) => t.as_bytes().to_vec(),
                    Some(Ok(WsMessage::Binary(b))) => b.to_vec(),
                    Some(Ok(WsMessage::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => continue,
                };
                {
                    let mut s = lock(&state);
                    if s.transcript.len() < TRANSCRIPT_MAX {
                        s.transcript.push(String::from_utf8_lossy(&bytes).into_owned());
                    }
                }
                let input = session.receive(&bytes);
                let mut reply = None;
                match input {
                    ControlInput::Hello(hello) => {
                        instance = hello.instance_id.clone();
                        if !token_ok {
                            reply = Some(session.reject(Reject {
                                code: runner_protocol::RejectCode::Unauthorized,
                                reason: "token rejected".into(),
                                retry_after_ms: None,
                                protocol_versions: vec![],
                            }));
                        } else if let Some(r) = opts.reject.clone() {
                            reply = Some(session.reject(r));
                        } else {
                            let acked = lock(&state).acked.get(&instance).copied();
                            match session.accept(AcceptOptions {
                                session_id: session_id.clone(),
                                heartbeat_interval: opts.heartbeat_interval,
                                acked_through: acked,
                                server_version: Some("mock".into()),
                            }) {
                                Ok(w) | Err(w) => reply = Some(w),
                            }
                            if matches!(session.state(), runner_protocol::SessionState::Established { .. }) {
                                let mut s = lock(&state);
                                s.hello = Some(hello);
                                s.connection = Some(tx.clone());
                                s.connections += 1;
                            }
                        }
                    }
                    ControlInput::Response { re, response, .. } => {
                        if let Some(w) = pending.remove(&re) {
                            let _ = w.send(Ok(response));
                        }
                    }
                    ControlInput::Event { event, ack } => {
                        let mut s = lock(&state);
                        if s.ack_events {
                            let key = (instance.clone(), event.seq);
                            if s.events.insert(key, event.clone()).is_some() {
                                s.duplicates += 1;
                            }
                            let through = session.highest_seq();
                            s.acked.insert(instance.clone(), through);
                            reply = Some(ack);
                        }
                        // Otherwise the event is lost: neither stored nor acknowledged, so the
                        // runner replays it on the next connection.
                    }
                    ControlInput::DuplicateEvent { ack, .. } => {
                        lock(&state).duplicates += 1;
                        reply = Some(ack);
                    }
                    ControlInput::Heartbeat(hb) => lock(&state).heartbeats.push(hb),
                    ControlInput::Goodbye(_) => {
                        changed.notify_waiters();
                        let _ = sink.send(WsMessage::Close(None)).await;
                        break;
                    }
                    ControlInput::PeerError { .. } | ControlInput::Ignored(_) => {
                        if let Ok(v) = serde_json::from_slice(&bytes) {
                            lock(&state).replies_to_raw.push(v);
                        }
                    }
                    ControlInput::Reply(r) => reply = Some(r),
                }
                changed.notify_waiters();
                if let Some(r) = reply
                    && sink.send(WsMessage::text(r)).await.is_err()
                {
                    break;
                }
                if session.state() == runner_protocol::SessionState::Closed {
                    let _ = sink.send(WsMessage::Close(None)).await;
                    break;
                }
            }
            out = rx.recv() => {
                let Some(out) = out else { break };
                let text = match out {
                    Outgoing::Request { id, request, reply } => {
                        let sent = match id {
                            Some(id) => session.request_with_id(id.clone(), request).map(|t| (id, t)),
                            None => session.request(request),
                        };
                        match sent {
                            Ok((id, text)) => { pending.insert(id, reply); text }
                            Err(e) => { let _ = reply.send(Err(e.message)); continue; }
                        }
                    }
                    Outgoing::Raw(t) => t,
                    Outgoing::Drop => break,
                    Outgoing::Goodbye(reconnect) => {
                        let bye = session.goodbye(runner_protocol::Goodbye { reason: "mock says goodbye".into(), reconnect });
                        let _ = sink.send(WsMessage::text(bye)).await;
                        let _ = sink.send(WsMessage::Close(None)).await;
                        break;
                    }
                };
                if sink.send(WsMessage::text(text)).await.is_err() { break; }
            }
            _ = heartbeat.tick() => {
                if matches!(session.state(), runner_protocol::SessionState::Established { .. }) {
                    let hb = session.heartbeat();
                    if sink.send(WsMessage::text(hb)).await.is_err() { break; }
                }
            }
        }
    }
    let mut s = lock(&state);
    if s.connection.as_ref().is_some_and(|c| c.same_channel(&tx)) {
        s.connection = None;
    }
    drop(s);
    for (_, w) in pending {
        let _ = w.send(Err("the connection closed before the reply".into()));
    }
    changed.notify_waiters();
}
