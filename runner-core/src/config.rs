//! The validated configuration of [`crate::Runner`]. Turning env vars and flags into this is
//! runner-bin's job; every value here already satisfies its preconditions.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use runner_protocol::Limits;
use tokio_tungstenite::tungstenite::http::Uri;

use crate::backoff::BackoffConfig;
use crate::error::CoreError;

/// The control plane's token. Its `Debug` and `Display` print a mask; only [`AuthToken::expose`]
/// gives the value, for the `Authorization` header.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthToken(String);

impl AuthToken {
    pub fn new(token: impl Into<String>) -> AuthToken {
        AuthToken(token.into().trim().to_owned())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for AuthToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AuthToken(***)")
    }
}

impl fmt::Display for AuthToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Where the token comes from: a value, or a file read again at each connection attempt so that a
/// rotated token is used without a restart.
#[derive(Debug, Clone)]
pub enum TokenSource {
    Static(AuthToken),
    File(PathBuf),
}

impl TokenSource {
    pub fn load(&self) -> Result<AuthToken, CoreError> {
        match self {
            TokenSource::Static(t) => Ok(t.clone()),
            TokenSource::File(path) => {
                std::fs::read_to_string(path)
                    .map(AuthToken::new)
                    .map_err(|e| CoreError::Unauthorized {
                        detail: format!("cannot read AUTH_TOKEN_FILE {}: {e}", path.display()),
                        retry_in: Duration::ZERO,
                    })
            }
        }
    }
}

/// A control-plane URL that passed the transport policy: `wss://`, or `ws://` to a loopback
/// address, or `ws://` anywhere when the operator explicitly allowed insecure transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerUrl {
    url: String,
    host: String,
    port: u16,
    tls: bool,
}

impl ServerUrl {
    pub fn parse(raw: &str, allow_insecure: bool) -> Result<ServerUrl, CoreError> {
        let invalid = |reason: &str| CoreError::InvalidServerUrl {
            url: raw.to_owned(),
            reason: reason.to_owned(),
        };
        let uri: Uri = raw
            .parse()
            .map_err(|_| invalid("not a URL; expected wss://host[:port][/path]"))?;
        let host = uri
            .host()
            .ok_or_else(|| invalid("no host; expected wss://host[:port][/path]"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let tls = match uri.scheme_str() {
            Some("wss") => true,
            Some("ws") => false,
            Some("https") | Some("http") => {
                return Err(invalid(
                    "the scheme must be wss:// (the runner speaks WebSocket); replace http(s):// with wss://",
                ));
            }
            _ => return Err(invalid("the scheme must be wss://")),
        };
        if !tls && !allow_insecure && !is_loopback(&host) {
            return Err(invalid(
                "ws:// sends the token in clear text; use wss://, or set SERVER_ALLOW_INSECURE=true for a trusted network",
            ));
        }
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        Ok(ServerUrl {
            url: raw.to_owned(),
            host,
            port,
            tls,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.url
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port, explicit or the scheme's default.
    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn is_tls(&self) -> bool {
        self.tls
    }
}

impl fmt::Display for ServerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)
    }
}

/// Whether `host` is a loopback name or address.
pub fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Everything [`crate::Runner`] needs, validated.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// `AGENT_ID`.
    pub agent_id: String,
    /// `SERVER_URL`.
    pub server_url: ServerUrl,
    /// `AUTH_TOKEN` / `AUTH_TOKEN_FILE`.
    pub token: TokenSource,
    /// `RECONNECT_DELAY_SECONDS` and friends.
    pub backoff: BackoffConfig,
    /// Extra CA certificates trusted for the control plane, besides the system roots: a PEM
    /// file, or a directory of `*.pem` / `*.crt` files (`SERVER_CA_FILE`).
    pub ca_file: Option<PathBuf>,
    /// Egress proxy of the control-plane connection (`HTTPS_PROXY`, `NO_PROXY`...).
    pub proxy: crate::proxy::ProxyConfig,
    /// Time allowed for connect + TLS + upgrade, and for `hello` -> `welcome`.
    pub handshake_timeout: Duration,
    /// Requests executed at once; more get a `busy` reply.
    pub max_concurrent_requests: usize,
    /// How long a shutdown waits for requests and events in flight.
    pub drain_grace: Duration,
    /// Frame and queue limits.
    pub limits: Limits,
    /// How long a reply is kept to answer a replayed request id without re-executing it.
    pub reply_cache_ttl: Duration,
    /// Unacknowledged events kept (after coalescing superseded statuses).
    pub outbox_capacity: usize,
}

impl RunnerConfig {
    /// A configuration with the documented defaults.
    pub fn new(agent_id: impl Into<String>, server_url: ServerUrl, token: TokenSource) -> Self {
        RunnerConfig {
            agent_id: agent_id.into(),
            server_url,
            token,
            backoff: BackoffConfig::default(),
            ca_file: None,
            proxy: crate::proxy::ProxyConfig::default(),
            handshake_timeout: Duration::from_secs(20),
            max_concurrent_requests: 32,
            drain_grace: Duration::from_secs(30),
            limits: Limits::DEFAULT,
            reply_cache_ttl: Duration::from_secs(600),
            outbox_capacity: 10_000,
        }
    }
}

/// Parses `INGESTION_EXTRA_ENVS` (`[k1:v1,k2:v2]`; quoting rules in docs/configuration.md).
pub fn parse_extra_envs(text: &str) -> Result<Vec<(String, String)>, String> {
    runner_argo::build::parse_extra_envs(text).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transport_policy() {
        assert!(ServerUrl::parse("wss://collate.example.com/agent", false).is_ok());
        assert!(ServerUrl::parse("ws://127.0.0.1:8080", false).is_ok());
        assert!(ServerUrl::parse("ws://[::1]:8080", false).is_ok());
        assert_eq!(
            ServerUrl::parse("ws://[::1]:8080", false).unwrap().port(),
            8080
        );
        assert_eq!(
            ServerUrl::parse("wss://cp.example.com/agent", false)
                .unwrap()
                .port(),
            443
        );
        assert!(ServerUrl::parse("ws://localhost:1", false).is_ok());
        let err = ServerUrl::parse("ws://collate.example.com", false).unwrap_err();
        assert!(err.to_string().contains("SERVER_ALLOW_INSECURE"), "{err}");
        assert!(ServerUrl::parse("ws://collate.example.com", true).is_ok());
        let err = ServerUrl::parse("https://collate.example.com", false).unwrap_err();
        assert!(
            err.to_string().contains("replace http(s):// with wss://"),
            "{err}"
        );
        assert!(ServerUrl::parse("collate.example.com", false).is_err());
    }

    #[test]
    fn token_is_masked() {
        let t = AuthToken::new("eyJsecret");
        assert_eq!(format!("{t:?} {t}"), "AuthToken(***) ***");
        assert_eq!(t.expose(), "eyJsecret");
    }
}
