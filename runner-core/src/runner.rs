//! The runner: the connection loop (connect, hello, heartbeat, reconnect), the session loop that
//! multiplexes requests, replies and events over one socket, and the drain on shutdown.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use futures_util::{SinkExt, StreamExt};
use runner_protocol::{
    ComponentHealth, Goodbye, Heartbeat, Hello, Load, MessageId, Readiness, Reject, Response,
    RunnerInput, RunnerSession, SUPPORTED_VERSIONS,
};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::backoff::Backoff;
use crate::config::RunnerConfig;
use crate::connection::{self, WsStream};
use crate::dispatch::{Admission, Dispatcher};
use crate::error::CoreError;
use crate::executor::Executor;
use crate::outbox::Outbox;
use crate::prepare::Preparer;

/// How long a status event may wait in the socket's buffer for a reply to share its write.
/// Under load nearly every event goes out with a reply (one system call for both, and one
/// segment for the control plane to read); alone, an event leaves within a millisecond or two.
const EVENT_LINGER: Duration = Duration::from_millis(1);

/// A readiness check of something the runner depends on (the secrets backend).
#[async_trait]
pub trait HealthProbe: Send + Sync {
    async fn check(&self) -> ComponentHealth;
}

/// The connection's state, for `/status`, logs and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionState {
    Connecting,
    Connected,
    Disconnected,
    /// The control plane refused the token.
    Unauthorized,
    Draining,
    Stopped,
}

/// What the runner is doing, shared with the health endpoints.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunnerStatus {
    pub state: ConnectionState,
    pub since: SystemTime,
    pub session_id: Option<String>,
    pub protocol_version: Option<u16>,
    pub instance_id: String,
    pub connects: u64,
    pub last_error: Option<String>,
    pub events_pending: usize,
    pub runs_in_flight: u32,
    pub requests_in_flight: usize,
    /// Latest readiness of the executor and the secrets backend (checked every 15 s).
    pub readiness: Readiness,
    pub executor: &'static str,
    pub runner_version: &'static str,
}

impl RunnerStatus {
    /// Connected, executor reachable, secrets backend reachable. Otherwise, why not.
    pub fn ready(&self) -> Result<(), Vec<String>> {
        let mut why = Vec::new();
        if self.state != ConnectionState::Connected {
            why.push(format!(
                "not connected to the control plane ({:?}){}",
                self.state,
                self.last_error
                    .as_ref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            ));
        }
        if !self.readiness.executor.ok {
            why.push(format!(
                "executor: {}",
                self.readiness
                    .executor
                    .detail
                    .as_deref()
                    .unwrap_or("unreachable")
            ));
        }
        if !self.readiness.secrets.ok {
            why.push(format!(
                "secrets backend: {}",
                self.readiness
                    .secrets
                    .detail
                    .as_deref()
                    .unwrap_or("unreachable")
            ));
        }
        if why.is_empty() { Ok(()) } else { Err(why) }
    }
}

/// Why a session ended.
#[derive(Debug)]
enum SessionEnd {
    Shutdown,
    Rejected(Reject),
    PeerGoodbye(Goodbye),
    Lost(String),
}

/// The agent. Build it with [`Runner::new`], then [`Runner::run`] until shutdown.
pub struct Runner {
    config: RunnerConfig,
    dispatcher: Arc<Dispatcher>,
    outbox: Arc<Outbox>,
    secrets: Option<Arc<dyn HealthProbe>>,
    status: Arc<Mutex<RunnerStatus>>,
    readiness: Arc<Mutex<Readiness>>,
    instance_id: String,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("config", &self.config)
            .finish()
    }
}

/// A cloneable view of the runner's status.
#[derive(Debug, Clone)]
pub struct StatusHandle {
    status: Arc<Mutex<RunnerStatus>>,
    readiness: Arc<Mutex<Readiness>>,
    outbox: Arc<Outbox>,
    dispatcher: Arc<Dispatcher>,
}

impl StatusHandle {
    pub fn get(&self) -> RunnerStatus {
        let mut s = crate::lock(&self.status).clone();
        s.events_pending = self.outbox.len();
        s.runs_in_flight = self.dispatcher.executor().runs_in_flight();
        s.requests_in_flight = self.dispatcher.in_flight();
        s.readiness = crate::lock(&self.readiness).clone();
        s.executor = self.dispatcher.executor().kind();
        s
    }
}

impl Runner {
    pub fn new(
        config: RunnerConfig,
        executor: Arc<dyn Executor>,
        outbox: Arc<Outbox>,
        preparer: Arc<Preparer>,
    ) -> Runner {
        let secrets: Option<Arc<dyn HealthProbe>> = match preparer.resolver() {
            Some(_) => Some(preparer.clone()),
            None => None,
        };
        let instance_id = uuid::Uuid::new_v4().to_string();
        let executor: Arc<dyn Executor> = Arc::new(crate::executor::Timed(executor));
        let dispatcher = Arc::new(Dispatcher::new(
            executor,
            preparer,
            config.max_concurrent_requests,
            config.reply_cache_ttl,
        ));
        Runner {
            status: Arc::new(Mutex::new(RunnerStatus {
                state: ConnectionState::Connecting,
                since: SystemTime::now(),
                session_id: None,
                protocol_version: None,
                instance_id: instance_id.clone(),
                connects: 0,
                last_error: None,
                events_pending: 0,
                runs_in_flight: 0,
                requests_in_flight: 0,
                readiness: Readiness {
                    executor: ComponentHealth {
                        ok: true,
                        detail: None,
                    },
                    secrets: ComponentHealth {
                        ok: true,
                        detail: None,
                    },
                },
                executor: "",
                runner_version: crate::VERSION,
            })),
            readiness: Arc::new(Mutex::new(Readiness {
                executor: ComponentHealth {
                    ok: true,
                    detail: None,
                },
                secrets: ComponentHealth {
                    ok: true,
                    detail: None,
                },
            })),
            config,
            dispatcher,
            outbox,
            secrets,
            instance_id,
        }
    }

    pub fn status_handle(&self) -> StatusHandle {
        StatusHandle {
            status: self.status.clone(),
            readiness: self.readiness.clone(),
            outbox: self.outbox.clone(),
            dispatcher: self.dispatcher.clone(),
        }
    }

    fn set_state(&self, state: ConnectionState, error: Option<String>) {
        crate::metrics::metrics()
            .connected
            .set(i64::from(state == ConnectionState::Connected));
        let mut s = crate::lock(&self.status);
        if s.state != state {
            s.state = state;
            s.since = SystemTime::now();
        }
        if error.is_some() {
            s.last_error = error;
        }
    }

    fn hello(&self) -> Hello {
        let ex = self.dispatcher.executor();
        Hello {
            agent_id: self.config.agent_id.clone(),
            instance_id: self.instance_id.clone(),
            runner_version: crate::VERSION.to_owned(),
            protocol_versions: SUPPORTED_VERSIONS.to_vec(),
            capabilities: [
                "events.ack",
                "runs.idempotent",
                "logs.paged",
                "schedules",
                "automations",
                "ping",
            ]
            .iter()
            .map(|s| (*s).to_owned())
            .collect(),
            executor: ex.kind().to_owned(),
            namespace: ex.namespace().to_owned(),
            last_event_seq: self.outbox.last_seq(),
        }
    }

    /// Runs until `shutdown` is cancelled, then drains: no new requests, in-flight work finishes
    /// within the grace period, events are flushed, the socket is closed with "going away".
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), CoreError> {
        let tasks = TaskTracker::new();
        let (reply_tx, mut reply_rx) =
            mpsc::channel::<(MessageId, Response)>(self.config.max_concurrent_requests.max(1) + 1);
        tasks.spawn(health_loop(
            self.dispatcher.executor().clone(),
            self.secrets.clone(),
            self.readiness.clone(),
            shutdown.clone(),
        ));
        let tls = if self.config.server_url.is_tls() {
            Some(connection::tls_config(self.config.ca_file.as_deref())?)
        } else {
            None
        };
        // Re-attach to runs a previous process left going before taking new work (bounded: an
        // executor backend that is down must not keep the runner from connecting).
        let executor = self.dispatcher.executor().clone();
        tokio::select! {
            r = tokio::time::timeout(Duration::from_secs(30), executor.ready()) => {
                if r.is_err() {
                    tracing::warn!("the executor did not list its runs within 30s; connecting anyway, runs are re-attached when it answers");
                }
            }
            _ = shutdown.cancelled() => {}
        }
        let mut backoff = Backoff::new(self.config.backoff);
        let mut rng = {
            use rand::SeedableRng;
            rand::rngs::StdRng::from_rng(&mut rand::rng())
        };
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            self.set_state(ConnectionState::Connecting, None);
            let started = Instant::now();
            let token = match self.config.token.load() {
                Ok(t) => t,
                Err(e) => {
                    tracing::error!(error = %e, "cannot load the token");
                    self.set_state(ConnectionState::Unauthorized, Some(e.to_string()));
                    let delay = backoff.next_delay(&mut rng);
                    if sleep_or_shutdown(delay, &shutdown).await {
                        break;
                    }
                    continue;
                }
            };
            let connected = tokio::select! {
                r = connection::connect(&self.config, &token, tls.clone()) => r,
                _ = shutdown.cancelled() => break,
            };
            drop(token);
            let end = match connected {
                Ok((ws, local)) => {
                    if let Some(addr) = local {
                        self.dispatcher.set_host_ip(addr.ip());
                    }
                    self.session(ws, &mut reply_rx, &reply_tx, &tasks, &shutdown)
                        .await
                }
                Err(CoreError::Unauthorized { detail, .. }) => SessionEnd::Rejected(Reject {
                    code: runner_protocol::RejectCode::Unauthorized,
                    reason: detail,
                    retry_after_ms: None,
                    protocol_versions: vec![],
                }),
                Err(e) => SessionEnd::Lost(e.to_string()),
            };
            if started.elapsed() > Duration::from_secs(60) {
                backoff.reset();
            }
            let delay = match end {
                SessionEnd::Shutdown => {
                    self.set_state(ConnectionState::Stopped, None);
                    tasks.close();
                    tasks.wait().await;
                    return Ok(());
                }
                SessionEnd::Rejected(r) if r.code.is_credential_problem() => {
                    let delay = backoff.auth_delay(&mut rng);
                    let e = CoreError::Unauthorized {
                        detail: r.reason,
                        retry_in: delay,
                    };
                    tracing::error!(error = %e, "not connected");
                    self.set_state(ConnectionState::Unauthorized, Some(e.to_string()));
                    delay
                }
                SessionEnd::Rejected(r) => {
                    let e = CoreError::Rejected {
                        code: format!("{:?}", r.code),
                        reason: r.reason,
                    };
                    tracing::error!(error = %e, "not connected");
                    self.set_state(ConnectionState::Disconnected, Some(e.to_string()));
                    let delay = backoff.next_delay(&mut rng);
                    r.retry_after_ms
                        .map(Duration::from_millis)
                        .map_or(delay, |d| d.max(delay))
                }
                SessionEnd::PeerGoodbye(bye) => {
                    tracing::warn!(reason = %bye.reason, "the control plane closed the session");
                    self.set_state(
                        ConnectionState::Disconnected,
                        Some(format!("control plane said goodbye: {}", bye.reason)),
                    );
                    if bye.reconnect {
                        backoff.reset();
                    }
                    backoff.next_delay(&mut rng)
                }
                SessionEnd::Lost(reason) => {
                    tracing::warn!(%reason, "not connected to the control plane");
                    self.set_state(ConnectionState::Disconnected, Some(reason));
                    backoff.next_delay(&mut rng)
                }
            };
            tracing::info!(
                delay_ms = delay.as_millis() as u64,
                attempt = backoff.attempt(),
                "reconnecting"
            );
            if sleep_or_shutdown(delay, &shutdown).await {
                break;
            }
        }
        // Shut down while not connected: let runs finish, there is no one to tell.
        self.set_state(ConnectionState::Draining, None);
        self.dispatcher.start_draining();
        self.dispatcher
            .executor()
            .shutdown(self.config.drain_grace)
            .await;
        self.set_state(ConnectionState::Stopped, None);
        tasks.close();
        tasks.wait().await;
        Ok(())
    }

    async fn session(
        &self,
        ws: WsStream,
        reply_rx: &mut mpsc::Receiver<(MessageId, Response)>,
        reply_tx: &mpsc::Sender<(MessageId, Response)>,
        tasks: &TaskTracker,
        shutdown: &CancellationToken,
    ) -> SessionEnd {
        let (mut sink, mut stream) = ws.split();
        let mut session = RunnerSession::new(self.hello(), self.config.limits);
        if let Err(e) = sink.send(WsMessage::text(session.hello_frame())).await {
            return SessionEnd::Lost(format!("sending hello failed: {e}"));
        }
        // Handshake.
        let handshake = async {
            loop {
                let Some(frame) = stream.next().await else {
                    return Err(SessionEnd::Lost(
                        "the control plane closed the connection during the handshake".into(),
                    ));
                };
                let bytes = match frame {
                    Ok(WsMessage::Text(t)) => t.as_bytes().to_vec(),
                    Ok(WsMessage::Binary(b)) => b.to_vec(),
                    Ok(WsMessage::Close(c)) => return Err(SessionEnd::Lost(close_reason(c))),
                    Ok(_) => continue,
                    Err(e) => return Err(SessionEnd::Lost(e.to_string())),
                };
                match session.receive(&bytes) {
                    RunnerInput::Accepted(w) => return Ok(w),
                    RunnerInput::Rejected(r) => return Err(SessionEnd::Rejected(r)),
                    RunnerInput::Reply(t) => {
                        let _ = sink.send(WsMessage::text(t)).await;
                    }
                    other => tracing::debug!(?other, "ignored during handshake"),
                }
            }
        };
        let welcome = tokio::select! {
            r = tokio::time::timeout(self.config.handshake_timeout, handshake) => match r {
                Ok(Ok(w)) => w,
                Ok(Err(end)) => return end,
                Err(_) => return SessionEnd::Lost(format!("no welcome within {}s of hello", self.config.handshake_timeout.as_secs())),
            },
            _ = shutdown.cancelled() => return SessionEnd::Shutdown,
        };
        if let Some(acked) = welcome.acked_through {
            self.outbox.ack(acked);
        }
        {
            let mut s = crate::lock(&self.status);
            s.session_id = Some(welcome.session_id.clone());
            s.protocol_version = Some(welcome.protocol_version);
            s.connects += 1;
            if s.connects > 1 {
                crate::metrics::metrics().reconnects.inc();
            }
        }
        self.set_state(ConnectionState::Connected, None);
        tracing::info!(
            server = %self.config.server_url,
            session = %welcome.session_id,
            version = welcome.protocol_version,
            replaying = self.outbox.len(),
            "connected to the control plane"
        );

        let interval = session
            .heartbeat_interval()
            .unwrap_or(Duration::from_secs(15));
        // A write the control plane does not take within the dead-peer window means it stopped
        // reading; the silence check below cannot run while a write is blocked, so each write
        // carries the same limit.
        let write_limit = interval * 3;
        let mut heartbeat = tokio::time::interval_at(Instant::now() + interval, interval);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_rx = Instant::now();
        let mut sent_through = 0u64;
        let mut drain: Option<(Instant, tokio::task::JoinHandle<()>)> = None;
        let mut drain_tick = tokio::time::interval(Duration::from_millis(50));
        // Events fed to the socket's buffer but not yet written go out when `linger` fires,
        // or earlier with the next reply, in the same write.
        let mut events_unwritten = false;
        let linger = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(linger);

        loop {
            // Send events not yet sent in this session (all unacked ones after a reconnect).
            let notified = self.outbox.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let events = self.outbox.pending_after(sent_through, 256);
            if !events.is_empty() {
                for ev in events {
                    sent_through = ev.seq;
                    let fed = sink.feed(WsMessage::text(session.event(ev)));
                    if let Err(end) = write_within(write_limit, "sending an event", fed).await {
                        return end;
                    }
                }
                if !events_unwritten {
                    events_unwritten = true;
                    linger.as_mut().reset(Instant::now() + EVENT_LINGER);
                }
                continue;
            }
            if let Some((deadline, exec)) = &drain {
                let idle = exec.is_finished()
                    && self.dispatcher.in_flight() == 0
                    && reply_rx.is_empty()
                    && self.outbox.is_empty();
                if idle || Instant::now() >= *deadline {
                    if !idle {
                        tracing::warn!(
                            events_pending = self.outbox.len(),
                            requests = self.dispatcher.in_flight(),
                            "drain grace period over"
                        );
                    }
                    let bye = session.goodbye(Goodbye {
                        reason: "runner shutting down".into(),
                        reconnect: true,
                    });
                    // Bounded: a control plane that does not read must not hold up the exit.
                    let _ = tokio::time::timeout(
                        Duration::from_secs(2),
                        sink.send(WsMessage::text(bye)),
                    )
                    .await;
                    let _ = tokio::time::timeout(
                        Duration::from_secs(2),
                        sink.send(WsMessage::Close(Some(CloseFrame {
                            code: CloseCode::Away,
                            reason: "runner shutting down".into(),
                        }))),
                    )
                    .await;
                    // Wait briefly for the server's close so the socket ends cleanly.
                    let _ = tokio::time::timeout(Duration::from_secs(2), async {
                        while let Some(Ok(m)) = stream.next().await {
                            if m.is_close() {
                                break;
                            }
                        }
                    })
                    .await;
                    return SessionEnd::Shutdown;
                }
            }
            tokio::select! {
                _ = shutdown.cancelled(), if drain.is_none() => {
                    tracing::info!(grace_secs = self.config.drain_grace.as_secs(), "shutting down: draining");
                    self.set_state(ConnectionState::Draining, None);
                    self.dispatcher.start_draining();
                    let exec = self.dispatcher.executor().clone();
                    let grace = self.config.drain_grace;
                    let handle = tokio::spawn(async move { exec.shutdown(grace).await });
                    drain = Some((Instant::now() + grace + Duration::from_secs(5), handle));
                }
                _ = drain_tick.tick(), if drain.is_some() => {}
                _ = &mut linger, if events_unwritten => {
                    if let Err(end) = write_within(write_limit, "sending events", sink.flush()).await {
                        return end;
                    }
                    events_unwritten = false;
                }
                frame = stream.next() => {
                    let message = match frame {
                        None => return SessionEnd::Lost("the control plane closed the connection".into()),
                        Some(Err(e)) => return SessionEnd::Lost(e.to_string()),
                        Some(Ok(WsMessage::Close(c))) => return SessionEnd::Lost(close_reason(c)),
                        Some(Ok(m)) => m,
                    };
                    last_rx = Instant::now();
                    // Decoded where tungstenite left it, without a copy.
                    let bytes: &[u8] = match &message {
                        WsMessage::Text(t) => t.as_bytes(),
                        WsMessage::Binary(b) => b,
                        _ => continue,
                    };
                    match session.receive(bytes) {
                        RunnerInput::Request { id, request } => {
                            let reply = match self.dispatcher.admit(&id, &request) {
                                Admission::Execute(ticket) => {
                                    let d = self.dispatcher.clone();
                                    let tx = reply_tx.clone();
                                    let id = id.clone();
                                    tasks.spawn(async move {
                                        let response = d.execute(&id, request, ticket).await;
                                        let _ = tx.send((id, response)).await;
                                    });
                                    None
                                }
                                Admission::Cached(r) => {
                                    tracing::info!(id = %id, "replayed request answered from the reply cache");
                                    Some(r)
                                }
                                Admission::InFlight => {
                                    tracing::info!(id = %id, "replayed request still executing; its reply follows");
                                    None
                                }
                                Admission::Refused(r) => Some(r),
                            };
                            if let Some(r) = reply {
                                let sent = sink.send(WsMessage::text(session.respond(&id, r)));
                                if let Err(end) = write_within(write_limit, "sending a reply", sent).await {
                                    return end;
                                }
                            }
                        }
                        RunnerInput::Acked(through) => self.outbox.ack(through),
                        RunnerInput::Heartbeat(_) => {}
                        RunnerInput::Goodbye(bye) => return SessionEnd::PeerGoodbye(bye),
                        RunnerInput::PeerError { re, error } => {
                            tracing::warn!(re = ?re.map(|r| r.to_string()), code = ?error.code, message = %error.message, "the control plane reported an error");
                        }
                        RunnerInput::Reply(text) => {
                            tracing::warn!(reply = %text, "bad frame from the control plane; answered with an error");
                            let sent = sink.send(WsMessage::text(text));
                            if let Err(end) = write_within(write_limit, "sending an error reply", sent).await {
                                return end;
                            }
                        }
                        RunnerInput::Ignored(reason) => tracing::debug!(%reason, "frame ignored"),
                        RunnerInput::Accepted(_) | RunnerInput::Rejected(_) => {
                            tracing::debug!("handshake frame after the handshake; ignored");
                        }
                    }
                }
                Some((id, response)) = reply_rx.recv() => {
                    // Replies that are ready go out in one write (at most 64, so frames from
                    // the control plane are still read under a stream of replies).
                    let mut next = Some((id, response));
                    let mut batch = 0;
                    while let Some((id, response)) = next.take() {
                        let fed = sink.feed(WsMessage::text(session.respond(&id, response)));
                        if let Err(end) = write_within(write_limit, "sending a reply", fed).await {
                            return end;
                        }
                        batch += 1;
                        if batch < 64 {
                            next = reply_rx.try_recv().ok();
                        }
                    }
                    if let Err(end) = write_within(write_limit, "sending a reply", sink.flush()).await {
                        return end;
                    }
                    events_unwritten = false;
                }
                _ = &mut notified => {}
                _ = heartbeat.tick() => {
                    if last_rx.elapsed() > interval * 3 {
                        return SessionEnd::Lost(format!(
                            "no frame from the control plane for {}s (3 heartbeat intervals)",
                            last_rx.elapsed().as_secs()
                        ));
                    }
                    let hb = Heartbeat {
                        readiness: Some(crate::lock(&self.readiness).clone()),
                        load: Some(self.load()),
                    };
                    let sent = sink.send(WsMessage::text(session.heartbeat(hb)));
                    if let Err(end) = write_within(write_limit, "sending a heartbeat", sent).await {
                        return end;
                    }
                }
            }
        }
    }

    fn load(&self) -> Load {
        let ex = self.dispatcher.executor();
        Load {
            runs_in_flight: ex.runs_in_flight(),
            run_capacity: ex.capacity(),
            requests_in_flight: self.dispatcher.in_flight() as u32,
            request_capacity: self.dispatcher.capacity() as u32,
            events_pending: self.outbox.len() as u32,
        }
    }
}

fn close_reason(frame: Option<CloseFrame>) -> String {
    match frame {
        Some(f) => format!(
            "the control plane closed the connection ({}: {})",
            u16::from(f.code),
            f.reason
        ),
        None => "the control plane closed the connection".into(),
    }
}

/// Awaits a socket write for at most `limit`: a write error, or a control plane that takes
/// nothing for that long (it stopped reading), ends the session.
async fn write_within<E: std::fmt::Display>(
    limit: Duration,
    what: &str,
    write: impl std::future::Future<Output = Result<(), E>>,
) -> Result<(), SessionEnd> {
    match tokio::time::timeout(limit, write).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(SessionEnd::Lost(format!("{what} failed: {e}"))),
        Err(_) => Err(SessionEnd::Lost(format!(
            "{what} failed: the control plane took nothing for {}s (3 heartbeat intervals); it is not reading",
            limit.as_secs()
        ))),
    }
}

/// Sleeps; returns true when shutdown was requested first.
async fn sleep_or_shutdown(delay: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(delay) => false,
        _ = shutdown.cancelled() => true,
    }
}

async fn health_loop(
    executor: Arc<dyn Executor>,
    secrets: Option<Arc<dyn HealthProbe>>,
    readiness: Arc<Mutex<Readiness>>,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(15));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        let timeout = Duration::from_secs(5);
        let unreachable = |what: &str| ComponentHealth {
            ok: false,
            detail: Some(format!(
                "{what} health check timed out after {}s",
                timeout.as_secs()
            )),
        };
        let ex = tokio::time::timeout(timeout, executor.health())
            .await
            .unwrap_or_else(|_| unreachable("executor"));
        let sec = match &secrets {
            Some(probe) => tokio::time::timeout(timeout, probe.check())
                .await
                .unwrap_or_else(|_| unreachable("secrets backend")),
            None => ComponentHealth {
                ok: true,
                detail: Some("no secrets backend in use".into()),
            },
        };
        *crate::lock(&readiness) = Readiness {
            executor: ex,
            secrets: sec,
        };
    }
}
