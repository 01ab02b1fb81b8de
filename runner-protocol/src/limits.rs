/// Bounds every frame and queue of a session. The defaults are the protocol's; a deployment can
/// only lower them (see `docs/protocol.md`, "Limits").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest text frame, in bytes, either direction. Larger frames get a `frame_too_large` error.
    pub max_frame_bytes: usize,
    /// Longest message id, in bytes.
    pub max_id_bytes: usize,
    /// Deepest JSON nesting accepted in a frame.
    pub max_depth: usize,
    /// Requests a control-plane session keeps awaiting a reply before it refuses to send more.
    pub max_pending_requests: usize,
}

impl Limits {
    pub const DEFAULT: Limits = Limits {
        max_frame_bytes: 1024 * 1024,
        max_id_bytes: 128,
        max_depth: 64,
        max_pending_requests: 1024,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}
