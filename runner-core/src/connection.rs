//! Opening the WebSocket to the control plane: transport policy, TLS trust, the token on the
//! upgrade request, and mapping failures to errors that name the setting to fix.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use crate::config::{AuthToken, RunnerConfig};
use crate::error::CoreError;
use crate::proxy::ProxyUrl;

pub type WsStream = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The TLS client configuration: the system's roots (or `SSL_CERT_FILE` / `SSL_CERT_DIR` when
/// set) plus `ca_path`: a PEM file, or a directory of `*.pem` / `*.crt` files (`SERVER_CA_FILE`).
pub fn tls_config(ca_path: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, CoreError> {
    let roots = runner_argo::trust::root_store(ca_path, "SERVER_CA_FILE")
        .map_err(|reason| CoreError::Tls { reason })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| CoreError::Tls {
            reason: e.to_string(),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Opens the WebSocket with `Authorization: Bearer <token>`. Returns the stream and the local
/// address of the connection (the runner's host IP as the control plane sees the route).
pub async fn connect(
    config: &RunnerConfig,
    token: &AuthToken,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> Result<(WsStream, Option<SocketAddr>), CoreError> {
    let url = config.server_url.as_str();
    let mut request = url
        .into_client_request()
        .map_err(|e| CoreError::InvalidServerUrl {
            url: url.to_owned(),
            reason: e.to_string(),
        })?;
    let auth = HeaderValue::from_str(&format!("Bearer {}", token.expose())).map_err(|_| {
        CoreError::Unauthorized {
            detail: "AUTH_TOKEN contains characters not allowed in an HTTP header".into(),
            retry_in: config.backoff.auth_retry,
        }
    })?;
    let mut auth = auth;
    auth.set_sensitive(true);
    request.headers_mut().insert("Authorization", auth);
    if let Ok(agent) = HeaderValue::from_str(&config.agent_id) {
        request.headers_mut().insert("X-Agent-Id", agent);
    }
    let ws_config = WebSocketConfig::default()
        // A little above the protocol limit, so that an oversized frame still reaches the
        // decoder and gets a `frame_too_large` reply instead of killing the connection.
        .max_message_size(Some(config.limits.max_frame_bytes * 2))
        .max_frame_size(Some(config.limits.max_frame_bytes * 2));
    let connector = match (config.server_url.is_tls(), tls) {
        (true, Some(tls)) => Some(Connector::Rustls(tls)),
        (true, None) => Some(Connector::Rustls(tls_config(config.ca_file.as_deref())?)),
        (false, _) => Some(Connector::Plain),
    };
    let attempt = async {
        let (tcp, _) = open_tcp(config).await?;
        tokio_tungstenite::client_async_tls_with_config(request, tcp, Some(ws_config), connector)
            .await
            .map_err(|e| map_connect_error(url, e, config))
    };
    let result = tokio::time::timeout(config.handshake_timeout, attempt)
        .await
        .map_err(|_| CoreError::Connect {
            url: url.to_owned(),
            reason: format!(
                "no answer within {}s (connect, TLS and WebSocket upgrade{})",
                config.handshake_timeout.as_secs(),
                route_note(config)
            ),
        })?;
    match result {
        Ok((ws, _response)) => {
            let local = match ws.get_ref() {
                MaybeTlsStream::Plain(s) => s.local_addr().ok(),
                MaybeTlsStream::Rustls(s) => s.get_ref().0.local_addr().ok(),
                _ => None,
            };
            Ok((ws, local))
        }
        Err(e) => Err(e),
    }
}

/// How the control plane is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Direct,
    /// Through an HTTP CONNECT tunnel.
    Proxy(ProxyUrl),
}

impl std::fmt::Display for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Route::Direct => f.write_str("directly"),
            Route::Proxy(p) => write!(f, "through the proxy {p} (from {})", p.var()),
        }
    }
}

/// The route to the control plane that `config` selects (proxy variables and NO_PROXY).
pub fn route(config: &RunnerConfig) -> Route {
    let url = &config.server_url;
    match config
        .proxy
        .for_target(url.is_tls(), url.host(), url.port())
    {
        Some(p) => Route::Proxy(p.clone()),
        None => Route::Direct,
    }
}

fn route_note(config: &RunnerConfig) -> String {
    match route(config) {
        Route::Direct => String::new(),
        r => format!(", {r}"),
    }
}

/// A TCP connection to the control plane's host and port, directly or through a CONNECT
/// tunnel, with Nagle off. Used by [`connect`] and by `ingestion-runner check`.
pub async fn open_tcp(config: &RunnerConfig) -> Result<(TcpStream, Route), CoreError> {
    let url = &config.server_url;
    let route = route(config);
    let tcp = match &route {
        Route::Proxy(proxy) => {
            crate::proxy::connect_tunnel(proxy, url.host(), url.port(), url.as_str()).await?
        }
        Route::Direct => TcpStream::connect((url.host(), url.port()))
            .await
            .map_err(|e| CoreError::Connect {
                url: url.as_str().to_owned(),
                reason: e.to_string(),
            })?,
    };
    let _ = tcp.set_nodelay(true);
    Ok((tcp, route))
}

/// The TLS handshake alone over `tcp` (certificate chain and host name checked), for
/// `ingestion-runner check`. Returns the negotiated protocol version.
pub async fn tls_probe(
    config: &RunnerConfig,
    tcp: TcpStream,
    tls: Arc<rustls::ClientConfig>,
) -> Result<String, CoreError> {
    let url = &config.server_url;
    let name = rustls_pki_types::ServerName::try_from(url.host().to_owned()).map_err(|e| {
        CoreError::InvalidServerUrl {
            url: url.as_str().to_owned(),
            reason: format!("the host is not a valid TLS server name: {e}"),
        }
    })?;
    let stream = tokio_rustls::TlsConnector::from(tls)
        .connect(name, tcp)
        .await
        .map_err(|e| {
            map_connect_error(
                url.as_str(),
                tokio_tungstenite::tungstenite::Error::Io(e),
                config,
            )
        })?;
    let version = stream
        .get_ref()
        .1
        .protocol_version()
        .map(|v| format!("{v:?}"))
        .unwrap_or_else(|| "TLS".into());
    Ok(version)
}

fn map_connect_error(
    url: &str,
    e: tokio_tungstenite::tungstenite::Error,
    config: &RunnerConfig,
) -> CoreError {
    use tokio_tungstenite::tungstenite::Error as WsError;
    match e {
        WsError::Http(response) => {
            let status = response.status();
            if status.as_u16() == 401 || status.as_u16() == 403 {
                return CoreError::Unauthorized {
                    detail: format!("HTTP {status} on the WebSocket upgrade"),
                    retry_in: config.backoff.auth_retry,
                };
            }
            CoreError::Connect {
                url: url.to_owned(),
                reason: format!(
                    "the server answered HTTP {status} instead of upgrading to WebSocket; check the path in SERVER_URL"
                ),
            }
        }
        WsError::Tls(tls) => CoreError::Connect {
            url: url.to_owned(),
            reason: format!(
                "TLS handshake failed: {tls}; if the server uses a private CA (or a proxy intercepts TLS), set SERVER_CA_FILE to its PEM certificate or a directory of them"
            ),
        },
        WsError::Io(io) => {
            let tls = io.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>());
            let reason = match tls {
                Some(rustls::Error::InvalidCertificate(cert)) => format!(
                    "TLS: the server's certificate is not trusted ({cert:?}); if the server uses a private CA (or a proxy intercepts TLS), set SERVER_CA_FILE to its PEM certificate or a directory of them"
                ),
                Some(other) => format!("TLS handshake failed: {other}"),
                None => io.to_string(),
            };
            CoreError::Connect {
                url: url.to_owned(),
                reason,
            }
        }
        other => CoreError::Connect {
            url: url.to_owned(),
            reason: other.to_string(),
        },
    }
}
