//! `ingestion-runner check`: the seed's troubleshooting table as automated checks. Each row gets
//! a verdict and, when it fails, the cause and the fix; each is bounded by a timeout.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use runner_core::config::TokenSource;
use runner_core::connection::Route;
use runner_protocol::{Hello, Limits, RunnerInput, RunnerSession};
use serde::Serialize;
use tokio_tungstenite::tungstenite::Message;

use crate::settings::{Raw, Settings};

const STEP_TIMEOUT: Duration = Duration::from_secs(10);

/// One row of the report.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    /// What was found (always), and on failure the cause and the fix.
    pub detail: String,
}

fn pass(name: &str, detail: impl Into<String>) -> Check {
    Check {
        name: name.into(),
        ok: true,
        detail: detail.into(),
    }
}

fn fail(name: &str, detail: impl Into<String>) -> Check {
    Check {
        name: name.into(),
        ok: false,
        detail: detail.into(),
    }
}

/// What the token says about itself (a JWT's `exp`), without verifying its signature.
fn token_check(token: &str) -> Check {
    const NAME: &str = "AUTH_TOKEN is a well-formed, unexpired JWT";
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 {
        return fail(
            NAME,
            "not a JWT (expected three dot-separated parts); copy the ingestion-bot token again from the platform (Settings > Bots)",
        );
    }
    let payload = match base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(parts[1].trim_end_matches('='))
    {
        Ok(p) => p,
        Err(_) => {
            return fail(
                NAME,
                "the JWT payload is not base64url; the token is damaged, copy it again",
            );
        }
    };
    let claims: serde_json::Value = match serde_json::from_slice(&payload) {
        Ok(c) => c,
        Err(_) => {
            return fail(
                NAME,
                "the JWT payload is not JSON; the token is damaged, copy it again",
            );
        }
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    match claims.get("exp").and_then(serde_json::Value::as_i64) {
        None => pass(NAME, "no expiry (`exp`) in the token"),
        Some(exp) if exp <= now => fail(
            NAME,
            format!(
                "the token expired {} ago (exp={exp}); generate a new ingestion-bot token and update AUTH_TOKEN",
                human(now - exp)
            ),
        ),
        Some(exp) => {
            let left = exp - now;
            let detail = format!("expires in {} (exp={exp})", human(left));
            if left < 7 * 24 * 3600 {
                return pass(NAME, format!("{detail}; WARNING: renew it soon"));
            }
            pass(NAME, detail)
        }
    }
}

fn human(secs: i64) -> String {
    match secs {
        s if s >= 2 * 86_400 => format!("{} days", s / 86_400),
        s if s >= 7_200 => format!("{} hours", s / 3_600),
        s => format!("{} minutes", s / 60),
    }
}

async fn bounded<T>(f: impl std::future::Future<Output = T>) -> Option<T> {
    tokio::time::timeout(STEP_TIMEOUT, f).await.ok()
}

/// The control-plane rows: DNS, TCP, TLS + handshake with the token.
async fn control_plane(settings: &Settings, out: &mut Vec<Check>) {
    let url = &settings.runner.server_url;
    out.push(pass(
        "SERVER_URL is wss:// (or ws:// to loopback / with SERVER_ALLOW_INSECURE)",
        url.to_string(),
    ));
    let host = url.host().to_owned();
    let port = url.port();
    let route = runner_core::connection::route(&settings.runner);
    // Through a proxy, the runner resolves and connects to the proxy; the proxy resolves the
    // server.
    let (dns, dns_host, dns_port, dns_fix) = match &route {
        Route::Proxy(p) => (
            "DNS resolves the proxy",
            p.host().to_owned(),
            p.port(),
            format!("check the proxy's host name in {}", p.var()),
        ),
        Route::Direct => (
            "DNS resolves the server",
            host.clone(),
            port,
            "check the host name in SERVER_URL and the cluster's DNS".to_owned(),
        ),
    };
    let addrs: Vec<std::net::SocketAddr> =
        match bounded(tokio::net::lookup_host((dns_host.as_str(), dns_port))).await {
            Some(Ok(a)) => a.collect(),
            Some(Err(e)) => {
                out.push(fail(dns, format!("{dns_host}: {e}; {dns_fix}")));
                return;
            }
            None => {
                out.push(fail(
                    dns,
                    format!("{dns_host}: no answer in {STEP_TIMEOUT:?}; check DNS"),
                ));
                return;
            }
        };
    let via = match &route {
        Route::Proxy(_) => format!(" ({route}; the proxy resolves {host})"),
        Route::Direct => String::new(),
    };
    out.push(pass(
        dns,
        format!(
            "{dns_host} -> {}{via}",
            addrs
                .iter()
                .map(|a| a.ip().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    ));
    let tcp_name = match &route {
        Route::Proxy(_) => "outbound TCP to the server through the proxy (HTTP CONNECT)",
        Route::Direct => "outbound TCP to the server",
    };
    let tcp = match bounded(runner_core::connection::open_tcp(&settings.runner)).await {
        Some(Ok((tcp, _))) => {
            let detail = match &route {
                Route::Proxy(_) => format!("{route}: CONNECT {host}:{port} accepted"),
                Route::Direct => format!("{host}:{port} accepts connections"),
            };
            out.push(pass(tcp_name, detail));
            tcp
        }
        Some(Err(e)) => {
            let fix = match &route {
                Route::Proxy(_) => "",
                Route::Direct => {
                    " (a firewall, a NetworkPolicy, or an egress proxy to set in HTTPS_PROXY)"
                }
            };
            out.push(fail(tcp_name, format!("{e}{fix}")));
            return;
        }
        None => {
            out.push(fail(tcp_name, format!("{host}:{port}: no answer in {STEP_TIMEOUT:?} ({route}); outbound traffic is probably blocked (firewall, NetworkPolicy), or a proxy is needed (HTTPS_PROXY)")));
            return;
        }
    };
    if url.is_tls() {
        const TLS: &str = "TLS: the server's certificate is trusted";
        // rustls-native-certs reads these two in place of the system's store when either is set.
        let system: Vec<String> = ["SSL_CERT_FILE", "SSL_CERT_DIR"]
            .iter()
            .filter_map(|k| std::env::var(k).ok().map(|v| format!("{k}={v}")))
            .collect();
        let system = if system.is_empty() {
            "system roots".to_owned()
        } else {
            format!("{} (in place of the system roots)", system.join(" + "))
        };
        let ca = match &settings.runner.ca_file {
            Some(p) => format!("{system} + SERVER_CA_FILE={}", p.display()),
            None => system,
        };
        let verdict = match runner_core::connection::tls_config(settings.runner.ca_file.as_deref())
        {
            Ok(tls) => bounded(runner_core::connection::tls_probe(
                &settings.runner,
                tcp,
                tls,
            ))
            .await
            .unwrap_or_else(|| {
                Err(runner_core::CoreError::Connect {
                    url: url.to_string(),
                    reason: format!("no TLS answer in {STEP_TIMEOUT:?}"),
                })
            }),
            Err(e) => Err(e),
        };
        match verdict {
            Ok(version) => out.push(pass(
                TLS,
                format!("{version} with {host} {route}; trusted: {ca}"),
            )),
            Err(e) => {
                out.push(fail(TLS, format!("{e} ({route}; trusted: {ca})")));
                return;
            }
        }
    } else {
        drop(tcp);
    }
    let token = match settings.runner.token.load() {
        Ok(t) => t,
        Err(e) => {
            out.push(fail("AUTH_TOKEN is readable", e.to_string()));
            return;
        }
    };
    if let TokenSource::File(p) = &settings.runner.token {
        out.push(pass(
            "AUTH_TOKEN is readable",
            format!("from {}", p.display()),
        ));
    }
    out.push(token_check(token.expose()));
    const HANDSHAKE: &str = "TLS and the handshake with AUTH_TOKEN are accepted";
    let connected = bounded(runner_core::connection::connect(
        &settings.runner,
        &token,
        None,
    ))
    .await;
    let (ws, _) = match connected {
        Some(Ok(x)) => x,
        Some(Err(e)) => {
            out.push(fail(HANDSHAKE, e.to_string()));
            return;
        }
        None => {
            out.push(fail(HANDSHAKE, format!("no answer in {STEP_TIMEOUT:?}")));
            return;
        }
    };
    let (mut sink, mut stream) = ws.split();
    let hello = Hello {
        agent_id: settings.runner.agent_id.clone(),
        instance_id: format!("check-{}", std::process::id()),
        runner_version: runner_core::VERSION.into(),
        protocol_versions: runner_protocol::SUPPORTED_VERSIONS.to_vec(),
        capabilities: vec!["check".into()],
        executor: "check".into(),
        namespace: "check".into(),
        last_event_seq: 0,
    };
    let mut session = RunnerSession::new(hello, Limits::DEFAULT);
    let verdict = bounded(async {
        sink.send(Message::text(session.hello_frame()))
            .await
            .map_err(|e| e.to_string())?;
        while let Some(frame) = stream.next().await {
            let Ok(Message::Text(text)) = frame else {
                continue;
            };
            match session.receive(text.as_bytes()) {
                RunnerInput::Accepted(w) => {
                    return Ok(format!(
                        "accepted: protocol v{}, session {}",
                        w.protocol_version, w.session_id
                    ));
                }
                RunnerInput::Rejected(r) => {
                    return Err(format!("rejected ({:?}): {}", r.code, r.reason));
                }
                _ => continue,
            }
        }
        Err("the server closed the connection before answering hello".to_owned())
    })
    .await;
    let bye = session.goodbye(runner_protocol::Goodbye {
        reason: "check done".into(),
        reconnect: false,
    });
    let _ = sink.send(Message::text(bye)).await;
    let _ = sink.close().await;
    match verdict {
        Some(Ok(d)) => out.push(pass(HANDSHAKE, format!("{d} ({route})"))),
        Some(Err(e)) => out.push(fail(HANDSHAKE, format!("{e}; check AUTH_TOKEN"))),
        None => out.push(fail(HANDSHAKE, format!("no welcome in {STEP_TIMEOUT:?}"))),
    }
}

/// The Argo rows: endpoint, version, token, RBAC to list workflows and cron workflows.
async fn argo(raw: &Raw, agent_id: &str, out: &mut Vec<Check>) {
    use runner_core::argo::{ArgoClient, ArgoClientConfig, BuildConfig};
    let lookup = raw.lookup(agent_id);
    const CONFIG: &str = "Argo settings (INGESTION_IMAGE, namespace, spec files, extra envs)";
    let build = match BuildConfig::from_lookup(lookup) {
        Ok(b) => {
            out.push(pass(
                CONFIG,
                format!("image {}, namespace {}", b.image, b.namespace),
            ));
            b
        }
        Err(e) => {
            out.push(fail(CONFIG, e.to_string()));
            return;
        }
    };
    let image_ok = image_is_well_formed(&build.image);
    out.push(if image_ok {
        pass("INGESTION_IMAGE is repo[:tag|@digest]", build.image.clone())
    } else {
        fail(
            "INGESTION_IMAGE is repo[:tag|@digest]",
            format!(
                "`{}` is not a valid image reference; check INGESTION_IMAGE name and tag",
                build.image
            ),
        )
    });
    let client = match ArgoClientConfig::from_lookup(lookup).and_then(ArgoClient::new) {
        Ok(c) => c,
        Err(e) => {
            out.push(fail("Argo Server reachable", e.to_string()));
            return;
        }
    };
    match bounded(client.version()).await {
        Some(Ok(v)) => out.push(pass(
            "Argo Server reachable",
            format!("{} (version {})", client.endpoint(), v.version),
        )),
        Some(Err(e)) => {
            out.push(fail("Argo Server reachable", e.to_string()));
            return;
        }
        None => {
            out.push(fail(
                "Argo Server reachable",
                format!("no answer in {STEP_TIMEOUT:?}; check PIPELINE_SERVICE_CLIENT_ENDPOINT"),
            ));
            return;
        }
    }
    let ns = build.namespace.clone();
    let selector = runner_core::argo::build::runner_selector(agent_id);
    match bounded(client.list_workflows(&ns, &selector)).await {
        Some(Ok(l)) => out.push(pass(
            "ARGO_TOKEN may list workflows",
            format!(
                "namespace {ns}: {} of this runner's workflows",
                l.items.len()
            ),
        )),
        Some(Err(e)) => out.push(fail("ARGO_TOKEN may list workflows", e.to_string())),
        None => out.push(fail(
            "ARGO_TOKEN may list workflows",
            format!("no answer in {STEP_TIMEOUT:?}"),
        )),
    }
    match bounded(client.list_cron_workflows(&ns, &selector)).await {
        Some(Ok(_)) => out.push(pass(
            "ARGO_TOKEN may list cron workflows",
            format!("namespace {ns}"),
        )),
        Some(Err(e)) => out.push(fail("ARGO_TOKEN may list cron workflows", e.to_string())),
        None => out.push(fail(
            "ARGO_TOKEN may list cron workflows",
            format!("no answer in {STEP_TIMEOUT:?}"),
        )),
    }
}

/// `repo[:tag|@digest]` with an optional registry host (and port) in front.
pub fn image_is_well_formed(image: &str) -> bool {
    let (name, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    if let Some(d) = digest
        && !(d.starts_with("sha256:")
            && d.len() == 71
            && d[7..].chars().all(|c| c.is_ascii_hexdigit()))
    {
        return false;
    }
    let last = name.rsplit('/').next().unwrap_or(name);
    let (repo_last, tag) = match last.split_once(':') {
        Some((r, t)) => (r, Some(t)),
        None => (last, None),
    };
    let tag_ok = tag.is_none_or(|t| {
        !t.is_empty()
            && t.len() <= 128
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    });
    let path_ok = !repo_last.is_empty()
        && name
            .split('/')
            .skip(usize::from(
                name.contains('/')
                    && name
                        .split('/')
                        .next()
                        .is_some_and(|h| h.contains('.') || h.contains(':')),
            ))
            .all(|seg| {
                let seg = seg.split(':').next().unwrap_or(seg);
                !seg.is_empty()
                    && seg
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
            });
    tag_ok && path_ok
}

/// Runs every check; `secrets` are sample references to resolve.
pub async fn run(raw: &Raw, secrets: &[String]) -> Vec<Check> {
    let mut out = Vec::new();
    let settings = match Settings::validate(raw) {
        Ok(s) => {
            out.push(pass("configuration is valid", "every variable parsed"));
            s
        }
        Err(e) => {
            out.push(fail("configuration is valid", e.to_string()));
            return out;
        }
    };
    control_plane(&settings, &mut out).await;
    if settings.executor == crate::settings::ExecutorKind::Argo {
        argo(raw, &settings.runner.agent_id, &mut out).await;
    } else {
        out.push(pass(
            "executor",
            "local (child processes); Argo checks skipped",
        ));
    }
    const BACKEND: &str = "secrets backend reachable with the runner's identity";
    match bounded(crate::build_resolver(raw)).await {
        Some(Ok(resolver)) => {
            match bounded(resolver.health()).await {
                Some(Ok(())) => out.push(pass(BACKEND, format!("{:?}", resolver.provider_kind()))),
                Some(Err(e)) => out.push(fail(BACKEND, e.to_string())),
                None => out.push(fail(BACKEND, format!("no answer in {STEP_TIMEOUT:?}"))),
            }
            for r in secrets {
                let (ok, line) = resolver.cli_line(r, false).await;
                out.push(Check {
                    name: format!("secret {r} resolves"),
                    ok,
                    detail: line,
                });
            }
        }
        Some(Err(e)) => out.push(fail(BACKEND, crate::describe_error(&e))),
        None => out.push(fail(BACKEND, format!("no answer in {STEP_TIMEOUT:?}"))),
    }
    out
}

/// The report as a table.
pub fn table(checks: &[Check]) -> String {
    let width = checks.iter().map(|c| c.name.len()).max().unwrap_or(10);
    let mut out = String::new();
    for c in checks {
        out.push_str(&format!(
            "{:<4}  {:<width$}  {}\n",
            if c.ok { "ok" } else { "FAIL" },
            c.name,
            c.detail
        ));
    }
    let failed = checks.iter().filter(|c| !c.ok).count();
    out.push_str(&format!(
        "{} passed, {} failed\n",
        checks.len() - failed,
        failed
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images() {
        for ok in [
            "openmetadata/ingestion:1.9.0",
            "docker.getcollate.io/openmetadata/ingestion-base:1.9.0",
            "registry:5000/team/img",
            "img@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ] {
            assert!(image_is_well_formed(ok), "{ok}");
        }
        for bad in [
            "",
            "Openmetadata/Ingestion:1.9",
            "img:",
            "img@sha256:xyz",
            "img:bad tag",
        ] {
            assert!(!image_is_well_formed(bad), "{bad}");
        }
    }

    #[test]
    fn jwt_expiry() {
        let enc = |claims: serde_json::Value| {
            let b = base64::engine::general_purpose::URL_SAFE_NO_PAD;
            format!(
                "{}.{}.sig",
                b.encode(br#"{"alg":"RS256"}"#),
                b.encode(claims.to_string())
            )
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        assert!(!token_check(&enc(serde_json::json!({"exp": now - 3600}))).ok);
        assert!(token_check(&enc(serde_json::json!({"exp": now + 30 * 86_400}))).ok);
        assert!(
            token_check(&enc(serde_json::json!({"exp": now + 3600})))
                .detail
                .contains("renew")
        );
        assert!(!token_check("not-a-jwt").ok);
    }
}
