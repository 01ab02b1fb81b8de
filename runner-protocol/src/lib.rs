//! The wire protocol between the Hybrid Ingestion Runner and its control plane.
//!
//! This crate is *sans-IO*: it turns bytes into typed messages and back, enforces the protocol's
//! limits, and holds the session state machines of both halves ([`RunnerSession`] and
//! [`ControlSession`]). It never opens a socket, so a control plane, a relay or a test can embed it.
//!
//! The normative description is `docs/protocol.md`; every type here is documented there with an
//! example frame.

mod codec;
mod limits;
mod messages;
mod session;
mod types;

pub use codec::{DecodeError, Frame, decode, encode};
pub use limits::Limits;
pub use messages::*;
pub use session::{
    AcceptOptions, ControlInput, ControlSession, RunnerInput, RunnerSession, SessionState,
};
pub use types::*;

/// Protocol versions this build speaks, lowest first.
pub const SUPPORTED_VERSIONS: &[u16] = &[1];

/// The protocol version this build prefers.
pub const CURRENT_VERSION: u16 = 1;

/// Picks the highest version both sides speak.
pub fn negotiate(ours: &[u16], theirs: &[u16]) -> Option<u16> {
    ours.iter().copied().filter(|v| theirs.contains(v)).max()
}
