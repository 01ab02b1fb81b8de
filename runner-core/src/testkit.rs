//! A mock control plane: the server half of the protocol on a real WebSocket, for tests, the
//! demo and benchmarks. Built on [`runner_protocol::ControlSession`].
//!
//! It accepts one runner at a time on `127.0.0.1:0`, checks the bearer token on the upgrade,
//! remembers stored events per runner instance (so replays are recognised as duplicates), and
//! lets a test send requests, inject raw frames, stop acknowledging, and drop the connection.
//!
//! Fault hooks (for `cargo xtask chaos` and `runner-core/tests/chaos.rs`): drop the connection at
//! a chosen point ([`DropPoint`]: mid-handshake, right after a request, on an event before or
//! after storing it), stop reading frames (a slow consumer; [`MockOptions::recv_buffer`] shrinks
//! the socket's receive buffer so the runner's writes block sooner), an outage (every session
//! dropped, every upgrade answered 503 and counted), and a restart on the same port that keeps
//! the stored events and acknowledgements (a control plane with a database).

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
use tokio_tungstenite::tungstenite::handshake::server::{
    ErrorResponse, Request as HttpRequest, Response as HttpResponse,
};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::{Bytes, Message as WsMessage};

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
    /// `SO_RCVBUF` of accepted sockets, in bytes (default: the system's). A small buffer makes
    /// a runner's writes block soon after the mock stops reading.
    pub recv_buffer: Option<u32>,
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
            recv_buffer: None,
        }
    }
}

/// Where an armed drop ([`MockControlPlane::arm_drop`]) closes the connection abruptly (no
/// close frame). Each armed drop fires once, on whichever connection gets there first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropPoint {
    /// On the next `hello`: closes without answering (mid-handshake).
    Handshake,
    /// Right after the next request is written, before its reply can be read (mid-request).
    AfterRequest,
    /// On the next new event: closes before storing or acknowledging it (the event is lost in
    /// transit; the runner must send it again).
    BeforeEventStored,
    /// On the next new event: stores it, then closes before the `ack` is sent (the mock
    /// remembers it as stored, as a control plane with a database would).
    AfterEventStored,
}

impl DropPoint {
    pub const ALL: [DropPoint; 4] = [
        DropPoint::Handshake,
        DropPoint::AfterRequest,
        DropPoint::BeforeEventStored,
        DropPoint::AfterEventStored,
    ];
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
    RawBinary(Vec<u8>),
    Drop,
    Goodbye(bool),
}

#[derive(Default)]
struct State {
    /// Armed drops, consumed when they fire.
    drops: Vec<DropPoint>,
    /// Drops that fired, per point.
    drops_fired: HashMap<DropPoint, u64>,
    /// While set, upgrades are answered 503 (and counted here) and no session is served.
    outage: bool,
    /// While set, `welcome` carries no `ackedThrough`: the runner replays every unacknowledged
    /// event, and the mock must recognise the ones it stored as duplicates.
    omit_acked_through: bool,
    /// While set, the mock sends no heartbeats (with `set_reading(false)`: a wedged peer).
    silent: bool,
    outage_attempts: Vec<tokio::time::Instant>,
    /// When each session was established, and by which runner instance.
    sessions: Vec<(tokio::time::Instant, String)>,
    /// Event frames received (new and repeated).
    events_received: u64,
    /// Events stored although their (instance, seq) was already stored: the control plane's
    /// dedup failed and the event was applied twice.
    applied_twice: u64,
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
    /// Every frame received from runners (bounded), for leak scans. Kept as received (shared
    /// buffers, not copies): the mock must not cost more per frame than a control plane would.
    transcript: Vec<Bytes>,
}

const TRANSCRIPT_MAX: usize = 100_000;

impl State {
    /// Consumes an armed drop at `point`, if any.
    fn take_drop(&mut self, point: DropPoint) -> bool {
        match self.drops.iter().position(|d| *d == point) {
            Some(i) => {
                self.drops.remove(i);
                *self.drops_fired.entry(point).or_default() += 1;
                true
            }
            None => false,
        }
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop(Option<tokio::task::JoinHandle<()>>);

impl AbortOnDrop {
    /// Lets the task finish, for at most `timeout`.
    async fn join(mut self, timeout: Duration) {
        if let Some(h) = self.0.take() {
            let _ = tokio::time::timeout(timeout, h).await;
        }
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(h) = &self.0 {
            h.abort();
        }
    }
}

/// A running mock control plane. Dropping it stops it.
pub struct MockControlPlane {
    scheme: &'static str,
    addr: SocketAddr,
    options: MockOptions,
    state: Arc<Mutex<State>>,
    changed: Arc<Notify>,
    /// Bumped to make every session end at once (outage, restart).
    kick: tokio::sync::watch::Sender<u64>,
    /// Whether sessions read frames (false: a consumer that stopped reading).
    reading: tokio::sync::watch::Sender<bool>,
    stop: tokio_util::sync::CancellationToken,
    acceptor: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for MockControlPlane {
    fn drop(&mut self) {
        self.stop.cancel();
    }
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
        let state = Arc::new(Mutex::new(State {
            ack_events: true,
            ..Default::default()
        }));
        Self::serve_on(addr, options, state).await
    }

    async fn serve_on(
        addr: &str,
        options: MockOptions,
        state: Arc<Mutex<State>>,
    ) -> std::io::Result<MockControlPlane> {
        let addr: SocketAddr = match addr.parse() {
            Ok(a) => a,
            Err(_) => tokio::net::lookup_host(addr)
                .await?
                .next()
                .ok_or_else(|| std::io::Error::other(format!("cannot resolve {addr}")))?,
        };
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        if let Some(size) = options.recv_buffer {
            // Accepted sockets inherit it; set before listen so the window is small from the start.
            socket.set_recv_buffer_size(size)?;
        }
        socket.bind(addr)?;
        let listener: TcpListener = socket.listen(1024)?;
        let addr = listener.local_addr()?;
        let changed = Arc::new(Notify::new());
        let token = tokio_util::sync::CancellationToken::new();
        let (kick, _) = tokio::sync::watch::channel(0u64);
        let (reading, _) = tokio::sync::watch::channel(true);
        let (st, ch) = (state.clone(), changed.clone());
        let scheme = if options.tls.is_some() { "wss" } else { "ws" };
        let (opts0, tok0, kick0, reading0) = (
            options.clone(),
            token.clone(),
            kick.clone(),
            reading.clone(),
        );
        let acceptor = tokio::spawn(async move {
            loop {
                let (tcp, _) = tokio::select! {
                    r = listener.accept() => match r { Ok(x) => x, Err(_) => continue },
                    _ = tok0.cancelled() => return,
                };
                // As a real control plane would: small frames (acks, requests) are not held
                // back by Nagle's algorithm.
                let _ = tcp.set_nodelay(true);
                let (st, ch, opts, tok) = (st.clone(), ch.clone(), opts0.clone(), tok0.clone());
                let (kicked, reading) = (kick0.subscribe(), reading0.subscribe());
                tokio::spawn(async move {
                    let faults = Faults { kicked, reading };
                    let served = async {
                        match opts.tls.clone() {
                            Some(tls) => {
                                match tokio_rustls::TlsAcceptor::from(tls).accept(tcp).await {
                                    Ok(stream) => {
                                        serve(stream, st.clone(), ch.clone(), opts, faults).await
                                    }
                                    Err(_) => lock(&st).upgrades_refused += 1,
                                }
                            }
                            None => serve(tcp, st.clone(), ch.clone(), opts, faults).await,
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
            options,
            state,
            changed,
            kick,
            reading,
            stop: token,
            acceptor: Some(acceptor),
        })
    }

    /// Stops (every session ends abruptly, the port closes) and starts again on the same port
    /// with the same stored events and acknowledgements, like a control plane restarted on top
    /// of its database. Requests waiting for replies fail.
    pub async fn restart(mut self) -> std::io::Result<MockControlPlane> {
        self.stop.cancel();
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.await;
        }
        // Sessions were cancelled without their clean-up.
        lock(&self.state).connection = None;
        self.changed.notify_waiters();
        let (addr, options, state) = (self.addr, self.options.clone(), self.state.clone());
        drop(self);
        // The old sockets may take a moment to go.
        let mut tries = 0;
        loop {
            match Self::serve_on(&addr.to_string(), options.clone(), state.clone()).await {
                Ok(cp) => return Ok(cp),
                Err(e) if tries < 50 => {
                    tries += 1;
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Arms a drop of the connection at `point` (fires once).
    pub fn arm_drop(&self, point: DropPoint) {
        lock(&self.state).drops.push(point);
    }

    /// Armed drops that have not fired yet.
    pub fn drops_armed(&self) -> usize {
        lock(&self.state).drops.len()
    }

    /// Drops that fired at `point` so far.
    pub fn drops_fired(&self, point: DropPoint) -> u64 {
        lock(&self.state)
            .drops_fired
            .get(&point)
            .copied()
            .unwrap_or(0)
    }

    /// Stops (false) or resumes (true) reading frames on every session. While stopped, the
    /// mock keeps writing (requests, heartbeats) from a separate task, as a real server would.
    pub fn set_reading(&self, reading: bool) {
        self.reading.send_replace(reading);
    }

    /// Starts (true) or ends (false) an outage: every session is dropped abruptly and, while
    /// it lasts, every upgrade is answered with HTTP 503 and counted.
    pub fn set_outage(&self, outage: bool) {
        lock(&self.state).outage = outage;
        if outage {
            self.kick.send_modify(|n| *n += 1);
        }
        self.changed.notify_waiters();
    }

    /// When true, the mock stops sending heartbeats (requests still go out). With
    /// `set_reading(false)` it is a wedged control plane: connected, neither reading nor sending.
    pub fn set_silent(&self, silent: bool) {
        lock(&self.state).silent = silent;
    }

    /// When true, `welcome` leaves `ackedThrough` out (a control plane that does not look the
    /// instance up): the runner replays every unacknowledged event and the mock drops the ones
    /// it already stored as duplicates (`seq` at or below the highest stored), as
    /// docs/protocol.md 9 says.
    pub fn set_omit_acked_through(&self, omit: bool) {
        lock(&self.state).omit_acked_through = omit;
    }

    /// When each upgrade refused by an outage arrived.
    pub fn outage_attempts(&self) -> Vec<tokio::time::Instant> {
        lock(&self.state).outage_attempts.clone()
    }

    /// Every session established so far: when, and the runner's instance id.
    pub fn sessions(&self) -> Vec<(tokio::time::Instant, String)> {
        lock(&self.state).sessions.clone()
    }

    /// Event frames received so far, repeated ones included.
    pub fn events_received(&self) -> u64 {
        lock(&self.state).events_received
    }

    /// Events applied twice to the stored state (an (instance, seq) stored again): the dedup
    /// failed. Zero when the protocol is followed.
    pub fn applied_twice(&self) -> u64 {
        lock(&self.state).applied_twice
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

    /// Sends raw bytes as a binary frame (bytes a text frame cannot carry, such as invalid
    /// UTF-8); replies are collected like those to [`MockControlPlane::send_raw`].
    pub async fn send_raw_binary(&self, bytes: impl Into<Vec<u8>>) -> Result<(), String> {
        self.send(Outgoing::RawBinary(bytes.into())).await
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
        lock(&self.state)
            .transcript
            .iter()
            .map(|f| String::from_utf8_lossy(f).into_owned())
            .collect()
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

/// A session's fault inputs.
struct Faults {
    kicked: tokio::sync::watch::Receiver<u64>,
    reading: tokio::sync::watch::Receiver<bool>,
}

async fn serve<S>(
    tcp: S,
    state: Arc<Mutex<State>>,
    changed: Arc<Notify>,
    opts: MockOptions,
    mut faults: Faults,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let expected = format!("Bearer {}", opts.token);
    let mut token_ok = false;
    let mut outage = false;
    let in_band = opts.reject_token_in_band;
    // The callback's signature is tungstenite's.
    #[allow(clippy::result_large_err)]
    let callback = |req: &HttpRequest, resp: HttpResponse| -> Result<HttpResponse, ErrorResponse> {
        {
            let mut s = lock(&state);
            if s.outage {
                s.outage_attempts.push(tokio::time::Instant::now());
                outage = true;
                let mut err = ErrorResponse::new(Some("control plane unavailable".into()));
                *err.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
                return Err(err);
            }
        }
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
            if !outage {
                lock(&state).upgrades_refused += 1;
            }
            changed.notify_waiters();
            return;
        }
    };
    let (mut sink, mut stream) = ws.split();
    // Writes go through their own task, so that a runner that does not read cannot stall this
    // loop (and a mock that stopped reading still sends requests and heartbeats).
    let (wtx, mut wrx) = mpsc::unbounded_channel::<Write>();
    let writer = AbortOnDrop(Some(tokio::spawn(async move {
        let mut batch = Vec::new();
        while wrx.recv_many(&mut batch, 64).await > 0 {
            if write_batch(&mut sink, &mut batch).await.is_err() {
                break;
            }
        }
    })));
    let mut session = ControlSession::new(opts.limits);
    if let Some(v) = opts.versions.clone() {
        session = session.with_versions(v);
    }
    let (tx, mut rx) = mpsc::channel::<Outgoing>(64);
    let mut pending: HashMap<MessageId, oneshot::Sender<Result<Response, String>>> = HashMap::new();
    let mut instance = String::new();
    let mut heartbeat = tokio::time::interval(opts.heartbeat_interval);
    let session_id = uuid::Uuid::new_v4().to_string();
    let mut reading = *faults.reading.borrow_and_update();
    faults.kicked.borrow_and_update();
    // Whether to flush queued writes (then close) or cut the connection at once.
    let mut abrupt = false;
    loop {
        tokio::select! {
            _ = faults.kicked.changed() => { abrupt = true; break; }
            r = faults.reading.changed() => {
                if r.is_err() { break; }
                reading = *faults.reading.borrow_and_update();
            }
            frame = stream.next(), if reading => {
                let bytes = match frame {
                    Some(Ok(WsMessage::Text(t))) => Bytes::from(t),
                    Some(Ok(WsMessage::Binary(b))) => b,
                    Some(Ok(WsMessage::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => continue,
                };
                {
                    let mut s = lock(&state);
                    if s.transcript.len() < TRANSCRIPT_MAX {
                        s.transcript.push(bytes.clone());
                    }
                }
                let input = session.receive(&bytes);
                let mut reply = None;
                match input {
                    ControlInput::Hello(hello) => {
                        if lock(&state).take_drop(DropPoint::Handshake) {
                            abrupt = true;
                            break;
                        }
                        instance = hello.instance_id.clone();
                        if !token_ok {
                            reply = Some(Write::text(session.reject(Reject {
                                code: runner_protocol::RejectCode::Unauthorized,
                                reason: "token rejected".into(),
                                retry_after_ms: None,
                                protocol_versions: vec![],
                            })));
                        } else if let Some(r) = opts.reject.clone() {
                            reply = Some(Write::text(session.reject(r)));
                        } else {
                            let acked = {
                                let s = lock(&state);
                                s.acked.get(&instance).copied().filter(|_| !s.omit_acked_through)
                            };
                            match session.accept(AcceptOptions {
                                session_id: session_id.clone(),
                                heartbeat_interval: opts.heartbeat_interval,
                                acked_through: acked,
                                server_version: Some("mock".into()),
                            }) {
                                Ok(w) | Err(w) => reply = Some(Write::text(w)),
                            }
                            if matches!(session.state(), runner_protocol::SessionState::Established { .. }) {
                                let mut s = lock(&state);
                                s.hello = Some(hello);
                                s.connection = Some(tx.clone());
                                s.connections += 1;
                                s.sessions.push((tokio::time::Instant::now(), instance.clone()));
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
                        s.events_received += 1;
                        if s.take_drop(DropPoint::BeforeEventStored) {
                            abrupt = true;
                            break;
                        }
                        let stored = s.acked.get(&instance).copied().unwrap_or(0);
                        if s.ack_events && event.seq <= stored {
                            // The protocol's dedup: at or below the highest stored of the
                            // instance, acknowledge again and do not apply.
                            s.duplicates += 1;
                            reply = Some(Write::Ack(ack));
                        } else if s.ack_events {
                            let key = (instance.clone(), event.seq);
                            if s.events.insert(key, event).is_some() {
                                s.duplicates += 1;
                                s.applied_twice += 1;
                            }
                            let through = session.highest_seq().max(stored);
                            s.acked.insert(instance.clone(), through);
                            if s.take_drop(DropPoint::AfterEventStored) {
                                abrupt = true;
                                break;
                            }
                            reply = Some(Write::Ack(ack));
                        }
                        // Otherwise the event is lost: neither stored nor acknowledged, so the
                        // runner replays it on the next connection.
                    }
                    ControlInput::DuplicateEvent { ack, .. } => {
                        let mut s = lock(&state);
                        s.events_received += 1;
                        s.duplicates += 1;
                        reply = Some(Write::Ack(ack));
                    }
                    ControlInput::Heartbeat(hb) => lock(&state).heartbeats.push(hb),
                    ControlInput::Goodbye(_) => {
                        changed.notify_waiters();
                        let _ = wtx.send(Write::Frame(WsMessage::Close(None)));
                        break;
                    }
                    ControlInput::PeerError { .. } | ControlInput::Ignored(_) => {
                        if let Ok(v) = serde_json::from_slice(&bytes) {
                            lock(&state).replies_to_raw.push(v);
                        }
                    }
                    ControlInput::Reply(r) => reply = Some(Write::text(r)),
                }
                changed.notify_waiters();
                if let Some(r) = reply
                    && wtx.send(r).is_err()
                {
                    break;
                }
                if session.state() == runner_protocol::SessionState::Closed {
                    let _ = wtx.send(Write::Frame(WsMessage::Close(None)));
                    break;
                }
            }
            out = rx.recv() => {
                let Some(out) = out else { break };
                let mut drop_after = false;
                let text = match out {
                    Outgoing::Request { id, request, reply } => {
                        let sent = match id {
                            Some(id) => session.request_with_id(id.clone(), request).map(|t| (id, t)),
                            None => session.request(request),
                        };
                        match sent {
                            Ok((id, text)) => {
                                pending.insert(id, reply);
                                drop_after = lock(&state).take_drop(DropPoint::AfterRequest);
                                text
                            }
                            Err(e) => { let _ = reply.send(Err(e.message)); continue; }
                        }
                    }
                    Outgoing::Raw(t) => t,
                    Outgoing::RawBinary(b) => {
                        if wtx.send(Write::Frame(WsMessage::binary(b))).is_err() { break; }
                        continue;
                    }
                    Outgoing::Drop => { abrupt = true; break; }
                    Outgoing::Goodbye(reconnect) => {
                        let bye = session.goodbye(runner_protocol::Goodbye { reason: "mock says goodbye".into(), reconnect });
                        let _ = wtx.send(Write::text(bye));
                        let _ = wtx.send(Write::Frame(WsMessage::Close(None)));
                        break;
                    }
                };
                if wtx.send(Write::text(text)).is_err() { break; }
                if drop_after {
                    // Let the request reach the socket, then cut it: the reply cannot come back
                    // on this connection.
                    drop(wtx);
                    writer.join(Duration::from_secs(5)).await;
                    return finish(&state, &changed, &tx, pending);
                }
            }
            _ = heartbeat.tick() => {
                if !lock(&state).silent
                    && matches!(session.state(), runner_protocol::SessionState::Established { .. })
                {
                    let hb = session.heartbeat();
                    if wtx.send(Write::text(hb)).is_err() { break; }
                }
            }
        }
    }
    if abrupt {
        drop(writer);
    } else {
        drop(wtx);
        writer.join(Duration::from_secs(2)).await;
    }
    drop(stream);
    finish(&state, &changed, &tx, pending);
}

/// What a connection's writer task sends.
enum Write {
    Frame(WsMessage),
    /// An `ack` frame. Acknowledgements are cumulative and `ControlSession`'s never go down
    /// within a session, so of several queued together only the last is sent (protocol.md
    /// section 9: an `ack` need not follow every event), as a control plane that stores events
    /// in batches would.
    Ack(String),
}

impl Write {
    fn text(t: String) -> Write {
        Write::Frame(WsMessage::text(t))
    }
}

/// Writes what was queued together in one flush (one socket write where the frames fit), the
/// superseded acknowledgements left out. `Err` when the socket failed or a close was sent.
async fn write_batch<S>(sink: &mut S, batch: &mut Vec<Write>) -> Result<(), ()>
where
    S: futures_util::Sink<WsMessage> + Unpin,
{
    let last_ack = batch.iter().rposition(|w| matches!(w, Write::Ack(_)));
    let mut closed = false;
    for (i, w) in batch.drain(..).enumerate() {
        let m = match w {
            Write::Ack(_) if Some(i) != last_ack => continue,
            Write::Ack(t) => WsMessage::text(t),
            Write::Frame(m) => m,
        };
        closed = m.is_close();
        sink.feed(m).await.map_err(drop)?;
        if closed {
            break;
        }
    }
    sink.flush().await.map_err(drop)?;
    if closed { Err(()) } else { Ok(()) }
}

/// A session's end: it is no longer the current connection; waiting requests fail.
fn finish(
    state: &Mutex<State>,
    changed: &Notify,
    tx: &mpsc::Sender<Outgoing>,
    pending: HashMap<MessageId, oneshot::Sender<Result<Response, String>>>,
) {
    let mut s = lock(state);
    if s.connection.as_ref().is_some_and(|c| c.same_channel(tx)) {
        s.connection = None;
    }
    drop(s);
    for (_, w) in pending {
        let _ = w.send(Err("the connection closed before the reply".into()));
    }
    changed.notify_waiters();
}

/// The runner settings of `cargo xtask bench-argo` (and `benches/run_path.rs`): `AGENT_ID`,
/// `INGESTION_IMAGE`, `INGESTION_NAMESPACE`.
pub const BENCH_AGENT_ID: &str = "bench-argo";
pub const BENCH_IMAGE: &str = "openmetadata/ingestion:1.9.0";
pub const BENCH_NAMESPACE: &str = "ingestion";

/// The `runPipeline` request `cargo xtask bench-argo` sends for run `i` (and `cargo bench -p
/// runner-core --bench run_path` decodes): a distinct metadata pipeline with a `secret:` JWT in
/// its `openMetadataServerConnection`, a MySQL service with a `secret:` password, `retries: 1`,
/// and run id [`bench_run_id`]`(i)`.
pub fn bench_run_request(i: usize) -> Request {
    Request::RunPipeline {
        pipeline: Box::new(bench_pipeline(i)),
        service: Some(bench_service()),
        options: runner_protocol::RunOptions {
            run_id: Some(bench_run_id(i)),
            config_override: None,
        },
    }
}

/// The pipeline of [`bench_run_request`]`(i)`.
pub fn bench_pipeline(i: usize) -> runner_protocol::IngestionPipeline {
    let name = format!("mysql_prod_metadata_{i:04}");
    serde_json::from_value(serde_json::json!({
        "id": format!("0f5e8a52-1111-4a4a-9d9d-{i:012}"),
        "name": name,
        "fullyQualifiedName": format!("mysql_prod.{name}"),
        "pipelineType": "metadata",
        "sourceConfig": {"config": {
            "type": "DatabaseMetadata",
            "markDeletedTables": true,
            "includeTables": true,
            "includeViews": true,
            "schemaFilterPattern": {"includes": ["^sales$", "^crm$"]}
        }},
        "airflowConfig": {"scheduleInterval": null, "pipelineTimezone": "UTC", "retries": 1},
        "service": {"id": "5b3e4c1d-2222-4b4b-8e8e-000000000001", "type": "databaseService",
            "name": "mysql_prod", "fullyQualifiedName": "mysql_prod"},
        "loggerLevel": "INFO",
        "openMetadataServerConnection": {"hostPort": "https://acme.getcollate.io/api",
            "authProvider": "openmetadata",
            "securityConfig": {"jwtToken": "secret:/demo/bot-token"}},
        "enabled": true
    }))
    .expect("a valid pipeline")
}

/// The service entity of [`bench_run_request`].
pub fn bench_service() -> serde_json::Value {
    serde_json::json!({
        "id": "5b3e4c1d-2222-4b4b-8e8e-000000000001",
        "name": "mysql_prod",
        "fullyQualifiedName": "mysql_prod",
        "serviceType": "Mysql",
        "connection": {"config": {
            "type": "Mysql",
            "scheme": "mysql+pymysql",
            "hostPort": "mysql.prod.internal:3306",
            "username": "openmetadata_ingest",
            "authType": {"password": "secret:/mysql/prod/password"}
        }}
    })
}

/// The run id of [`bench_run_request`]`(i)`.
pub fn bench_run_id(i: usize) -> String {
    format!("bench-run-{i:05}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(sent: &[WsMessage]) -> Vec<String> {
        sent.iter()
            .map(|m| m.to_text().unwrap_or("<binary>").to_owned())
            .collect()
    }

    #[tokio::test]
    async fn a_batch_sends_only_its_last_ack_in_order_with_the_other_frames() {
        let mut sent: Vec<WsMessage> = Vec::new();
        let mut batch = vec![
            Write::Ack("ack 1".into()),
            Write::text("request r1".into()),
            Write::Ack("ack 2".into()),
            Write::Ack("ack 3".into()),
            Write::text("heartbeat".into()),
        ];
        assert_eq!(write_batch(&mut sent, &mut batch).await, Ok(()));
        assert_eq!(texts(&sent), ["request r1", "ack 3", "heartbeat"]);
        assert!(batch.is_empty(), "the batch is drained");

        // A batch with one ack sends it.
        let mut sent: Vec<WsMessage> = Vec::new();
        let mut batch = vec![Write::Ack("ack 4".into())];
        assert_eq!(write_batch(&mut sent, &mut batch).await, Ok(()));
        assert_eq!(texts(&sent), ["ack 4"]);
    }

    #[tokio::test]
    async fn a_close_ends_the_batch_and_the_writer() {
        let mut sent: Vec<WsMessage> = Vec::new();
        let mut batch = vec![
            Write::text("goodbye".into()),
            Write::Frame(WsMessage::Close(None)),
            Write::text("after the close".into()),
        ];
        assert_eq!(write_batch(&mut sent, &mut batch).await, Err(()));
        assert_eq!(sent.len(), 2);
        assert!(sent[1].is_close());
    }
}
