//! Session state machines for both halves. They consume received bytes and produce typed inputs
//! and the text frames to send; the caller owns the socket and the clock.

use std::collections::HashMap;
use std::time::Duration;

use crate::codec::{DecodeError, Frame, decode, encode};
use crate::limits::Limits;
use crate::messages::*;

/// Where a session is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    /// Control plane: waiting for the runner's `hello`.
    AwaitingHello,
    /// Runner: `hello` sent, waiting for `welcome` or `reject`.
    AwaitingWelcome,
    /// Handshake done; `version` is used by every frame.
    Established { version: u16 },
    /// A `reject` or `goodbye` was sent or received; the socket should close.
    Closed,
}

/// Shared bookkeeping of both halves.
#[derive(Debug)]
struct Core {
    limits: Limits,
    state: SessionState,
    prefix: String,
    next_id: u64,
}

/// A random id prefix per session, so that ids never repeat across sessions or process restarts
/// (the runner answers a repeated request id from its reply cache). `RandomState` is seeded from
/// the OS; no clock or IO is involved.
fn session_nonce() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u8(0);
    format!("{:08x}", h.finish() as u32)
}

impl Core {
    fn new(limits: Limits, state: SessionState, prefix: char) -> Core {
        Core {
            limits,
            state,
            prefix: format!("{prefix}{}-", session_nonce()),
            next_id: 0,
        }
    }

    fn version(&self) -> u16 {
        match self.state {
            SessionState::Established { version } => version,
            _ => crate::CURRENT_VERSION,
        }
    }

    fn next_id(&mut self) -> MessageId {
        self.next_id += 1;
        // Always valid: a prefix letter and digits.
        MessageId::new(format!("{}{}", self.prefix, self.next_id), usize::MAX)
            .expect("generated ids are valid")
    }

    fn frame(&mut self, re: Option<&MessageId>, message: Message) -> (MessageId, String) {
        let id = self.next_id();
        let text = encode(&Frame {
            v: self.version(),
            id: id.clone(),
            re: re.cloned(),
            message,
        });
        (id, text)
    }

    fn send(&mut self, re: Option<&MessageId>, message: Message) -> String {
        self.frame(re, message).1
    }

    /// The reply to a frame that could not be decoded.
    fn decode_error_reply(&mut self, err: &DecodeError) -> String {
        let body = ErrorBody::new(err.code(), err.to_string());
        if err.is_request() {
            return self.send(err.id(), Message::Response(Response::Error(body)));
        }
        self.send(err.id(), Message::Error(body))
    }

    /// Decodes and checks the version against the negotiated one. `Err` carries the reply.
    fn receive(&mut self, bytes: &[u8]) -> Result<Frame, String> {
        let frame = decode(bytes, &self.limits).map_err(|e| self.decode_error_reply(&e))?;
        if let SessionState::Established { version } = self.state
            && frame.v != version
        {
            let body = ErrorBody::new(
                ErrorCode::UnsupportedVersion,
                format!(
                    "frame uses protocol version {} but the session negotiated version {version}",
                    frame.v
                ),
            );
            return Err(self.send(Some(&frame.id), Message::Error(body)));
        }
        Ok(frame)
    }

    fn unexpected(&mut self, frame: &Frame) -> String {
        let state = match self.state {
            SessionState::AwaitingHello => "before `hello`",
            SessionState::AwaitingWelcome => "before `welcome`",
            SessionState::Established { .. } => "after the handshake",
            SessionState::Closed => "after the session closed",
        };
        let body = ErrorBody::new(
            ErrorCode::UnexpectedMessage,
            format!(
                "message type `{}` is not allowed {state} from this side",
                frame.message.type_name()
            ),
        );
        if matches!(frame.message, Message::Request(_)) {
            return self.send(Some(&frame.id), Message::Response(Response::Error(body)));
        }
        self.send(Some(&frame.id), Message::Error(body))
    }
}

/// What the runner must act on after receiving a frame.
#[derive(Debug, Clone, PartialEq)]
pub enum RunnerInput {
    /// The control plane accepted the session.
    Accepted(Welcome),
    /// The control plane refused the session; close the socket and back off.
    Rejected(Reject),
    /// Execute this request and answer with [`RunnerSession::respond`].
    Request {
        id: MessageId,
        request: Request,
    },
    /// Every event up to and including this sequence number is stored by the control plane.
    Acked(u64),
    Heartbeat(Heartbeat),
    /// The control plane is closing the session.
    Goodbye(Goodbye),
    /// The control plane reports that one of our frames was bad.
    PeerError {
        re: Option<MessageId>,
        error: ErrorBody,
    },
    /// The received frame was bad or out of place: send this reply; the session goes on.
    Reply(String),
    /// Nothing to do; log `reason` at debug level.
    Ignored(String),
}

/// The runner's half of a session.
#[derive(Debug)]
pub struct RunnerSession {
    core: Core,
    hello: Hello,
    heartbeat_interval: Option<Duration>,
}

impl RunnerSession {
    pub fn new(hello: Hello, limits: Limits) -> RunnerSession {
        RunnerSession {
            core: Core::new(limits, SessionState::AwaitingWelcome, 'r'),
            hello,
            heartbeat_interval: None,
        }
    }

    pub fn state(&self) -> SessionState {
        self.core.state
    }

    /// The interval agreed in `welcome`.
    pub fn heartbeat_interval(&self) -> Option<Duration> {
        self.heartbeat_interval
    }

    /// The first frame to send.
    pub fn hello_frame(&mut self) -> String {
        let hello = self.hello.clone();
        self.core.send(None, Message::Hello(hello))
    }

    pub fn receive(&mut self, bytes: &[u8]) -> RunnerInput {
        let frame = match self.core.receive(bytes) {
            Ok(frame) => frame,
            Err(reply) => return RunnerInput::Reply(reply),
        };
        match (self.core.state, frame.message) {
            (SessionState::AwaitingWelcome, Message::Welcome(welcome)) => {
                if !self
                    .hello
                    .protocol_versions
                    .contains(&welcome.protocol_version)
                {
                    self.core.state = SessionState::Closed;
                    return RunnerInput::Rejected(Reject {
                        code: RejectCode::UnsupportedVersion,
                        reason: format!(
                            "the control plane chose protocol version {} which this runner does not speak ({:?}); upgrade the runner",
                            welcome.protocol_version, self.hello.protocol_versions
                        ),
                        retry_after_ms: None,
                        protocol_versions: vec![welcome.protocol_version],
                    });
                }
                self.core.state = SessionState::Established {
                    version: welcome.protocol_version,
                };
                self.heartbeat_interval = Some(Duration::from_millis(
                    welcome.heartbeat_interval_ms.clamp(1_000, 300_000),
                ));
                RunnerInput::Accepted(welcome)
            }
            (SessionState::AwaitingWelcome, Message::Reject(reject)) => {
                self.core.state = SessionState::Closed;
                RunnerInput::Rejected(reject)
            }
            (SessionState::Established { .. }, Message::Request(request)) => RunnerInput::Request {
                id: frame.id,
                request,
            },
            (SessionState::Established { .. }, Message::Ack(ack)) => {
                RunnerInput::Acked(ack.through)
            }
            (_, Message::Heartbeat(hb)) => RunnerInput::Heartbeat(hb),
            (_, Message::Goodbye(bye)) => {
                self.core.state = SessionState::Closed;
                RunnerInput::Goodbye(bye)
            }
            (_, Message::Error(error)) => RunnerInput::PeerError {
                re: frame.re,
                error,
            },
            (_, message) => {
                let frame = Frame { message, ..frame };
                RunnerInput::Reply(self.core.unexpected(&frame))
            }
        }
    }

    /// The reply to request `re`.
    pub fn respond(&mut self, re: &MessageId, response: Response) -> String {
        let text = self.core.send(Some(re), Message::Response(response));
        if text.len() <= self.core.limits.max_frame_bytes {
            return text;
        }
        let body = ErrorBody::new(
            ErrorCode::Internal,
            format!(
                "the response is {} bytes, over the frame limit of {} bytes; ask for a smaller page",
                text.len(),
                self.core.limits.max_frame_bytes
            ),
        );
        self.core
            .send(Some(re), Message::Response(Response::Error(body)))
    }

    pub fn event(&mut self, event: EventFrame) -> String {
        self.core.send(None, Message::Event(event))
    }

    pub fn heartbeat(&mut self, heartbeat: Heartbeat) -> String {
        self.core.send(None, Message::Heartbeat(heartbeat))
    }

    pub fn goodbye(&mut self, goodbye: Goodbye) -> String {
        let text = self.core.send(None, Message::Goodbye(goodbye));
        self.core.state = SessionState::Closed;
        text
    }
}

/// What the control plane must act on after receiving a frame.
#[derive(Debug, Clone, PartialEq)]
pub enum ControlInput {
    /// A runner introduced itself: check its token and identity, then call
    /// [`ControlSession::accept`] or [`ControlSession::reject`].
    Hello(Hello),
    /// The reply to a request sent with [`ControlSession::request`].
    Response {
        re: MessageId,
        op: &'static str,
        response: Response,
    },
    /// A new event: store it, then send `ack`.
    Event {
        event: EventFrame,
        ack: String,
    },
    /// An event already stored (a replay): send `ack` again and do nothing else.
    DuplicateEvent {
        seq: u64,
        ack: String,
    },
    Heartbeat(Heartbeat),
    Goodbye(Goodbye),
    PeerError {
        re: Option<MessageId>,
        error: ErrorBody,
    },
    /// The received frame was bad or out of place: send this reply; the session goes on.
    Reply(String),
    /// Nothing to do; log `reason`.
    Ignored(String),
}

/// How a control plane accepts a runner.
#[derive(Debug, Clone)]
pub struct AcceptOptions {
    pub session_id: String,
    pub heartbeat_interval: Duration,
    /// Highest event seq stored for this runner instance, if known.
    pub acked_through: Option<u64>,
    pub server_version: Option<String>,
}

/// The control plane's half of a session.
#[derive(Debug)]
pub struct ControlSession {
    core: Core,
    versions: Vec<u16>,
    hello: Option<Hello>,
    pending: HashMap<MessageId, &'static str>,
    highest_seq: u64,
}

impl ControlSession {
    pub fn new(limits: Limits) -> ControlSession {
        ControlSession {
            core: Core::new(limits, SessionState::AwaitingHello, 'c'),
            versions: crate::SUPPORTED_VERSIONS.to_vec(),
            hello: None,
            pending: HashMap::new(),
            highest_seq: 0,
        }
    }

    /// Restricts the versions this control plane accepts (tests of negotiation).
    pub fn with_versions(mut self, versions: Vec<u16>) -> ControlSession {
        self.versions = versions;
        self
    }

    pub fn state(&self) -> SessionState {
        self.core.state
    }

    /// The runner's `hello`, once received.
    pub fn hello(&self) -> Option<&Hello> {
        self.hello.as_ref()
    }

    /// Highest event seq stored in this session.
    pub fn highest_seq(&self) -> u64 {
        self.highest_seq
    }

    /// Requests sent and not yet answered.
    pub fn pending_requests(&self) -> usize {
        self.pending.len()
    }

    pub fn receive(&mut self, bytes: &[u8]) -> ControlInput {
        let frame = match self.core.receive(bytes) {
            Ok(frame) => frame,
            Err(reply) => return ControlInput::Reply(reply),
        };
        match (self.core.state, frame.message) {
            (SessionState::AwaitingHello, Message::Hello(hello)) => {
                self.hello = Some(hello.clone());
                ControlInput::Hello(hello)
            }
            (SessionState::Established { .. }, Message::Response(response)) => {
                let Some(re) = frame.re else {
                    return ControlInput::Ignored(format!(
                        "response {} has no `re`; dropped",
                        frame.id
                    ));
                };
                match self.pending.remove(&re) {
                    Some(op) => ControlInput::Response { re, op, response },
                    None => ControlInput::Ignored(format!(
                        "response to unknown or already answered request {re}; dropped"
                    )),
                }
            }
            (SessionState::Established { .. }, Message::Event(event)) => {
                if event.seq <= self.highest_seq {
                    let seq = event.seq;
                    return ControlInput::DuplicateEvent {
                        seq,
                        ack: self.ack_frame(),
                    };
                }
                self.highest_seq = event.seq;
                ControlInput::Event {
                    event,
                    ack: self.ack_frame(),
                }
            }
            (_, Message::Heartbeat(hb)) => ControlInput::Heartbeat(hb),
            (_, Message::Goodbye(bye)) => {
                self.core.state = SessionState::Closed;
                ControlInput::Goodbye(bye)
            }
            (_, Message::Error(error)) => {
                if let Some(re) = &frame.re {
                    self.pending.remove(re);
                }
                ControlInput::PeerError {
                    re: frame.re,
                    error,
                }
            }
            (_, message) => {
                let frame = Frame { message, ..frame };
                ControlInput::Reply(self.core.unexpected(&frame))
            }
        }
    }

    fn ack_frame(&mut self) -> String {
        let through = self.highest_seq;
        self.core.send(None, Message::Ack(Ack { through }))
    }

    /// Accepts the runner that said hello. `Err` holds a `reject` frame when no version is common.
    pub fn accept(&mut self, opts: AcceptOptions) -> Result<String, String> {
        let theirs = self
            .hello
            .as_ref()
            .map(|h| h.protocol_versions.clone())
            .unwrap_or_default();
        let Some(version) = crate::negotiate(&self.versions, &theirs) else {
            let versions = self.versions.clone();
            return Err(self.reject(Reject {
                code: RejectCode::UnsupportedVersion,
                reason: format!(
                    "no common protocol version: control plane speaks {versions:?}, runner speaks {theirs:?}; upgrade the older side"
                ),
                retry_after_ms: None,
                protocol_versions: versions,
            }));
        };
        self.highest_seq = opts.acked_through.unwrap_or(0);
        self.core.state = SessionState::Established { version };
        Ok(self.core.send(
            None,
            Message::Welcome(Welcome {
                protocol_version: version,
                heartbeat_interval_ms: opts.heartbeat_interval.as_millis() as u64,
                session_id: opts.session_id,
                acked_through: opts.acked_through,
                server_version: opts.server_version,
            }),
        ))
    }

    pub fn reject(&mut self, reject: Reject) -> String {
        let text = self.core.send(None, Message::Reject(reject));
        self.core.state = SessionState::Closed;
        text
    }

    /// Sends a request. Refused with `busy` when too many are awaiting replies.
    pub fn request(&mut self, request: Request) -> Result<(MessageId, String), ErrorBody> {
        if self.pending.len() >= self.core.limits.max_pending_requests {
            return Err(ErrorBody::new(
                ErrorCode::Busy,
                format!(
                    "{} requests are awaiting replies (the limit); wait for some to finish",
                    self.pending.len()
                ),
            ));
        }
        let op = request.op();
        let (id, text) = self.core.frame(None, Message::Request(request));
        self.pending.insert(id.clone(), op);
        Ok((id, text))
    }

    /// Sends a request under an id the caller chose (an idempotency key kept across control-plane
    /// restarts). The runner answers a repeated id from its reply cache instead of executing the
    /// request again.
    pub fn request_with_id(
        &mut self,
        id: MessageId,
        request: Request,
    ) -> Result<String, ErrorBody> {
        if self.pending.len() >= self.core.limits.max_pending_requests {
            return Err(ErrorBody::new(
                ErrorCode::Busy,
                format!(
                    "{} requests are awaiting replies (the limit)",
                    self.pending.len()
                ),
            ));
        }
        let op = request.op();
        let text = encode(&Frame {
            v: self.core.version(),
            id: id.clone(),
            re: None,
            message: Message::Request(request),
        });
        self.pending.insert(id, op);
        Ok(text)
    }

    pub fn heartbeat(&mut self) -> String {
        self.core
            .send(None, Message::Heartbeat(Heartbeat::default()))
    }

    pub fn goodbye(&mut self, goodbye: Goodbye) -> String {
        let text = self.core.send(None, Message::Goodbye(goodbye));
        self.core.state = SessionState::Closed;
        text
    }
}
