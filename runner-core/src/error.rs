use std::time::Duration;

/// Errors of the runner's orchestration that end [`crate::Runner::run`] or a connection attempt.
/// Each message names the setting to check.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// `SERVER_URL` is not usable.
    #[error("SERVER_URL `{url}` is not usable: {reason}")]
    InvalidServerUrl { url: String, reason: String },
    /// TLS material could not be loaded.
    #[error("TLS setup failed: {reason}")]
    Tls { reason: String },
    /// The control plane refused the token during the WebSocket upgrade or in a `reject`.
    #[error(
        "the control plane rejected AUTH_TOKEN ({detail}); check that AUTH_TOKEN holds a valid, unexpired ingestion-bot token for this server; retrying in {retry_in:?}"
    )]
    Unauthorized { detail: String, retry_in: Duration },
    /// The control plane could not be reached.
    #[error(
        "cannot reach the control plane at {url}: {reason}; check SERVER_URL, DNS and that outbound traffic to the server is allowed"
    )]
    Connect { url: String, reason: String },
    /// A proxy variable (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`) is not usable.
    #[error("{var} is not usable: {reason}; expected http://[USER:PASSWORD@]HOST:PORT")]
    InvalidProxy { var: &'static str, reason: String },
    /// The proxy could not be reached or refused the tunnel. `proxy` is masked.
    #[error(
        "cannot reach the control plane at {url} through the proxy {proxy} (from {var}): {reason}"
    )]
    Proxy {
        url: String,
        proxy: String,
        var: &'static str,
        reason: String,
    },
    /// The connection broke or the peer misbehaved.
    #[error("connection to the control plane lost: {reason}")]
    Disconnected { reason: String },
    /// The control plane refused the session for another reason.
    #[error("the control plane refused the session ({code}): {reason}")]
    Rejected { code: String, reason: String },
}
