//! Opening the WebSocket to the control plane: transport policy, TLS trust, the token on the
//! upgrade request, and mapping failures to errors that name the setting to fix.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use crate::config::{AuthToken, RunnerConfig};
use crate::error::CoreError;

pub type WsStream = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The TLS client configuration: the system's roots plus `ca_file` (PEM, one or more certs).
pub fn tls_config(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, CoreError> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        let _ = roots.add(cert);
    }
    if let Some(path) = ca_file {
        let certs = CertificateDer::pem_file_iter(path).map_err(|e| CoreError::Tls {
            reason: format!(
                "cannot read CA file {} (SERVER_CA_FILE): {e}",
                path.display()
            ),
        })?;
        let mut added = 0;
        for cert in certs {
            let cert = cert.map_err(|e| CoreError::Tls {
                reason: format!(
                    "CA file {} holds an invalid PEM certificate: {e}",
                    path.display()
                ),
            })?;
            roots.add(cert).map_err(|e| CoreError::Tls {
                reason: format!("CA file {}: certificate rejected: {e}", path.display()),
            })?;
            added += 1;
        }
        if added == 0 {
            return Err(CoreError::Tls {
                reason: format!(
                    "CA file {} holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)",
                    path.display()
                ),
            });
        }
    }
    if roots.is_empty() {
        return Err(CoreError::Tls {
            reason: "no trusted CA certificates: the system has none installed and SERVER_CA_FILE is not set".into(),
        });
    }
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
    let attempt =
        tokio_tungstenite::connect_async_tls_with_config(request, Some(ws_config), true, connector);
    let result = tokio::time::timeout(config.handshake_timeout, attempt)
        .await
        .map_err(|_| CoreError::Connect {
            url: url.to_owned(),
            reason: format!(
                "no answer within {}s (connect, TLS and WebSocket upgrade)",
                config.handshake_timeout.as_secs()
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
        Err(e) => Err(map_connect_error(url, e, config)),
    }
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
                "TLS handshake failed: {tls}; if the server uses a private CA, set SERVER_CA_FILE to its PEM certificate"
            ),
        },
        WsError::Io(io) => {
            let tls = io.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>());
            let reason = match tls {
                Some(rustls::Error::InvalidCertificate(cert)) => format!(
                    "TLS: the server's certificate is not trusted ({cert:?}); if the server uses a private CA, set SERVER_CA_FILE to its PEM certificate"
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
