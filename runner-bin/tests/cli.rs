//! The binary as an operator uses it: exit codes, masked output, `secrets resolve`, and a real
//! run against the mock control plane with JSON logs that never hold the token.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use runner_core::testkit::{MockControlPlane, MockOptions};

const TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.cli-test-token.sig";

fn runner() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ingestion-runner"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    cmd
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn version_names_the_protocol() {
    let o = runner().arg("version").output().unwrap();
    assert!(o.status.success());
    assert!(text(&o).0.contains("protocol versions [1]"));
}

#[test]
fn config_masks_secrets_and_shows_sources() {
    let o = runner()
        .args(["config", "--set", "AGENT_ID=from-flag"])
        .env("SERVER_URL", "wss://cp.example.com/agent")
        .env("AUTH_TOKEN", TOKEN)
        .env(
            "ARGO_EXTRA_ENVS",
            "[AWS_SECRET_ACCESS_KEY:wJalrXUtnFEMI,REGION:eu-west-1]",
        )
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        !out.contains(TOKEN) && !out.contains("wJalrXUtnFEMI"),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("AUTH_TOKEN") && l.contains("*** (set)")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("AGENT_ID") && l.contains("from-flag") && l.ends_with("flag")),
        "{out}"
    );
    assert!(
        out.contains("[AWS_SECRET_ACCESS_KEY:***,REGION:***]"),
        "{out}"
    );
    assert!(
        err.contains("ARGO_EXTRA_ENVS is deprecated; rename it to INGESTION_EXTRA_ENVS"),
        "{err}"
    );
}

#[test]
fn invalid_configuration_exits_2_naming_the_variable() {
    let o = runner()
        .arg("run")
        .env("SERVER_URL", "ws://cp.example.com/agent")
        .env("AUTH_TOKEN", TOKEN)
        .output()
        .unwrap();
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        err.contains("SERVER_URL=ws://cp.example.com/agent")
            && err.contains("SERVER_ALLOW_INSECURE"),
        "{err}"
    );
    assert!(!err.contains(TOKEN));
}

#[test]
fn secrets_resolve_reports_each_reference() {
    let o = runner()
        .args([
            "secrets",
            "resolve",
            "secret:/demo/db/password",
            "secret:demo/db/user",
        ])
        .env("SECRETS_MANAGER", "env")
        .env(
            "RUNNER_SECRET_DEMO_DB",
            r#"{"user":"reader","password":"Pa55-w0rd-xyz"}"#,
        )
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let first = out.lines().next().unwrap();
    assert!(
        first.starts_with("secret:/demo/db/password ok env 13 bytes sha256:"),
        "{out}"
    );
    assert!(
        !out.contains("Pa55-w0rd-xyz"),
        "values stay hidden without --reveal: {out}"
    );

    let o = runner()
        .args([
            "secrets",
            "resolve",
            "--reveal",
            "secret:demo/db/password",
            "secret:demo/db/missing",
        ])
        .env("SECRETS_MANAGER", "env")
        .env(
            "RUNNER_SECRET_DEMO_DB",
            r#"{"user":"reader","password":"Pa55-w0rd-xyz"}"#,
        )
        .output()
        .unwrap();
    let (out, _) = text(&o);
    assert_eq!(o.status.code(), Some(1), "exit 0 only if all resolved");
    assert!(out.contains("value=Pa55-w0rd-xyz"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("secret:demo/db/missing error")),
        "{out}"
    );
}

#[tokio::test]
async fn run_logs_json_without_the_token_and_drains_on_sigterm() {
    let cp = MockControlPlane::start(MockOptions {
        token: TOKEN.into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let health_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let metrics_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_ingestion-runner"))
        .arg("run")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("SERVER_URL", cp.url())
        .env("AUTH_TOKEN", TOKEN)
        .env("AGENT_ID", "cli-test")
        .env("SECRETS_MANAGER", "env")
        .env("EXECUTOR_TYPE", "local")
        .env("LOG_FORMAT", "json")
        .env("LOG_LEVEL", "trace")
        .env("HEALTH_BIND", format!("127.0.0.1:{health_port}"))
        .env("METRICS_BIND", format!("127.0.0.1:{metrics_port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    let hello = cp.wait_connected(Duration::from_secs(30)).await.unwrap();
    assert_eq!(hello.agent_id, "cli-test");
    // Health endpoints over real HTTP.
    let base = format!("http://127.0.0.1:{health_port}");
    let http = reqwest::Client::new();
    let live = http.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(live.status(), 200);
    let mut ready = None;
    for _ in 0..100 {
        let r = http.get(format!("{base}/readyz")).send().await.unwrap();
        if r.status() == 200 {
            ready = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready.is_some(), "/readyz never became 200 while connected");
    let status: serde_json::Value = http
        .get(format!("{base}/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["state"], "connected");
    assert_eq!(status["executor"], "local");
    assert!(status["session_id"].is_string(), "{status}");
    assert!(!status.to_string().contains("cli-test-token"));
    let metrics = http
        .get(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("collate_hybrid_agent_connected 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("collate_hybrid_agent_memory_usage "),
        "{metrics}"
    );
    assert!(
        metrics.contains("collate_hybrid_agent_server_response_time_seconds_count "),
        "{metrics}"
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        out.status.success(),
        "drained and exited 0: {:?}",
        out.status
    );
    let logs = String::from_utf8_lossy(&out.stderr);
    assert!(
        !logs.contains(TOKEN) && !logs.contains("cli-test-token"),
        "the token leaked into the logs"
    );
    let mut lines = 0;
    for line in logs.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(
            v.get("level").is_some() && v.get("timestamp").is_some(),
            "{line}"
        );
        lines += 1;
    }
    assert!(lines >= 2, "{logs}");
    assert!(logs.contains("connected to the control plane"), "{logs}");
}

#[test]
fn render_prints_the_argo_objects_without_contacting_anything() {
    let dir = std::env::temp_dir().join(format!("runner-render-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pipeline = dir.join("pipeline.json");
    let service = dir.join("service.json");
    std::fs::write(
        &pipeline,
        serde_json::json!({
            "name": "orders", "fullyQualifiedName": "mysql_prod.orders", "pipelineType": "metadata",
            "sourceConfig": {"config": {"type": "DatabaseMetadata"}},
            "airflowConfig": {"scheduleInterval": "@daily", "pipelineTimezone": "Europe/Madrid"},
            "openMetadataServerConnection": {"hostPort": "https://acme.getcollate.io/api"}
        })
        .to_string(),
    )
    .unwrap();
    std::fs::write(
        &service,
        serde_json::json!({
            "name": "mysql_prod", "serviceType": "Mysql",
            "connection": {"config": {"type": "Mysql", "password": "secret:/prod/mysql/password"}}
        })
        .to_string(),
    )
    .unwrap();
    let render = |extra: &[&str], image: bool| {
        let mut cmd = runner();
        cmd.arg("render")
            .arg("--pipeline")
            .arg(&pipeline)
            .arg("--service")
            .arg(&service)
            .args(extra);
        cmd.env("SECRETS_DELIVERY", "pod")
            .env("INGESTION_NAMESPACE", "ingestion");
        if image {
            cmd.env("ARGO_INGESTION_IMAGE", "openmetadata/ingestion:1.9.0");
        }
        cmd.output().unwrap()
    };
    let o = render(&[], true);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let cron: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(cron["kind"], "CronWorkflow");
    assert_eq!(cron["spec"]["schedules"][0], "0 0 * * *");
    assert_eq!(cron["spec"]["timezone"], "Europe/Madrid");

    let o = render(&["--run-id", "run-7"], true);
    let wf: serde_json::Value = serde_json::from_str(&text(&o).0).unwrap();
    assert_eq!(wf["kind"], "Workflow");
    assert_eq!(wf["metadata"]["namespace"], "ingestion");
    assert!(
        text(&o).0.contains("secret:/prod/mysql/password"),
        "pod delivery keeps the reference"
    );

    let o = render(&[], false);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).1.contains("INGESTION_IMAGE"), "{}", text(&o).1);
    std::fs::remove_dir_all(dir).unwrap();
}

fn jwt(exp_from_now: i64) -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let b64 = |s: &str| {
        // base64url without padding, enough for the test's ASCII claims.
        const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let bytes = s.as_bytes();
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |a, (i, b)| a | (u32::from(*b) << (16 - 8 * i)));
            for i in 0..=chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        out
    };
    format!(
        "{}.{}.c2ln",
        b64(r#"{"alg":"RS256"}"#),
        b64(&format!(
            r#"{{"sub":"ingestion-bot","exp":{}}}"#,
            now + exp_from_now
        ))
    )
}

async fn check(envs: &[(&str, String)], args: &[&str]) -> (bool, String) {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_ingestion-runner"));
    cmd.arg("check")
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().await.unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[tokio::test]
async fn check_passes_row_by_row_against_a_working_setup() {
    let token = jwt(30 * 86_400);
    let cp = MockControlPlane::start(MockOptions {
        token: token.clone(),
        ..Default::default()
    })
    .await
    .unwrap();
    let envs = [
        ("SERVER_URL", cp.url()),
        ("AUTH_TOKEN", token.clone()),
        ("EXECUTOR_TYPE", "local".into()),
        ("SECRETS_MANAGER", "env".into()),
        ("RUNNER_SECRET_DB", r#"{"password":"x-123"}"#.into()),
    ];
    let (ok, out) = check(&envs, &["--secret", "secret:db/password"]).await;
    assert!(ok, "{out}");
    assert!(
        out.contains("accepted: protocol v1")
            && (out.contains("expires in 29 days") || out.contains("expires in 30 days")),
        "{out}"
    );
    assert!(
        out.contains("secret secret:db/password resolves") && out.trim_end().ends_with("0 failed"),
        "{out}"
    );
    assert!(!out.contains(&token), "the token is never printed");

    // The same set-up with a token the server refuses, then an expired one.
    let mut bad = envs.clone();
    bad[1].1 = jwt(3600).replace("c2ln", "b3RoZXI");
    let (ok, out) = check(&bad, &[]).await;
    assert!(!ok);
    assert!(
        out.lines()
            .any(|l| l.starts_with("FAIL") && l.contains("handshake") && l.contains("AUTH_TOKEN")),
        "{out}"
    );
    bad[1].1 = jwt(-7200);
    let (_, out) = check(&bad, &[]).await;
    assert!(
        out.lines()
            .any(|l| l.starts_with("FAIL") && l.contains("expired 2 hours ago")),
        "{out}"
    );
}

#[tokio::test]
async fn check_names_the_failing_row_and_the_fix() {
    // Nothing listens on port 1: the TCP row fails and says why.
    let envs = [
        ("SERVER_URL", "ws://127.0.0.1:1/agent".to_owned()),
        ("AUTH_TOKEN", jwt(86_400)),
        ("SECRETS_MANAGER", "env".into()),
    ];
    let (ok, out) = check(&envs, &[]).await;
    assert!(!ok);
    assert!(
        out.lines().any(|l| l.starts_with("FAIL")
            && l.contains("outbound TCP")
            && l.contains("outbound traffic")),
        "{out}"
    );
    // A wrong scheme fails the configuration row.
    let envs = [
        ("SERVER_URL", "https://cp.example.com".to_owned()),
        ("AUTH_TOKEN", jwt(86_400)),
    ];
    let (_, out) = check(&envs, &[]).await;
    assert!(out.contains("replace http(s):// with wss://"), "{out}");
    // Bad INGESTION_EXTRA_ENVS fails the configuration row.
    let envs = [
        ("SERVER_URL", "ws://127.0.0.1:1".to_owned()),
        ("AUTH_TOKEN", jwt(86_400)),
        ("INGESTION_EXTRA_ENVS", "[novalue]".into()),
    ];
    let (_, out) = check(&envs, &[]).await;
    assert!(
        out.lines()
            .any(|l| l.starts_with("FAIL") && l.contains("INGESTION_EXTRA_ENVS")),
        "{out}"
    );
}

#[tokio::test]
async fn check_reports_argo_rbac_refusals() {
    use runner_argo::fake::{FakeArgo, FakeConfig};
    let fake = FakeArgo::start(FakeConfig {
        forbidden_namespaces: vec!["locked".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    let token = jwt(30 * 86_400);
    let cp = MockControlPlane::start(MockOptions {
        token: token.clone(),
        ..Default::default()
    })
    .await
    .unwrap();
    let envs = [
        ("SERVER_URL", cp.url()),
        ("AUTH_TOKEN", token),
        ("PIPELINE_SERVICE_CLIENT_ENDPOINT", fake.url()),
        ("INGESTION_IMAGE", "openmetadata/ingestion:1.9.0".into()),
        ("INGESTION_NAMESPACE", "locked".into()),
        ("SECRETS_MANAGER", "env".into()),
        ("SECRETS_DELIVERY", "pod".into()),
    ];
    let (ok, out) = check(&envs, &[]).await;
    assert!(!ok, "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("ok") && l.contains("Argo Server reachable")),
        "{out}"
    );
    assert!(
        out.lines().any(|l| l.starts_with("FAIL")
            && l.contains("may list workflows")
            && l.contains("ARGO_TOKEN")),
        "{out}"
    );
}

#[tokio::test]
async fn sigterm_with_a_run_in_flight_finishes_it_and_reports_it_before_exiting() {
    use runner_protocol::{OpResult, PipelineState, Request, Response, RunOptions, RunnerEvent};
    let dir = std::env::temp_dir().join(format!("runner-drain-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("ingest.sh");
    std::fs::write(&script, "echo started; sleep 1.5; echo finished\n").unwrap();
    let cp = MockControlPlane::start(MockOptions {
        token: TOKEN.into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_ingestion-runner"))
        .arg("run")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("SERVER_URL", cp.url())
        .env("AUTH_TOKEN", TOKEN)
        .env("AGENT_ID", "drain-test")
        .env("SECRETS_MANAGER", "env")
        .env("EXECUTOR_TYPE", "local")
        .env(
            "LOCAL_INGESTION_COMMAND",
            format!("sh {}", script.display()),
        )
        .env("DRAIN_GRACE_SECONDS", "20")
        .env("HEALTH_BIND", "off")
        .env("METRICS_BIND", "off")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    cp.wait_connected(Duration::from_secs(30)).await.unwrap();
    let pipeline = serde_json::from_value(serde_json::json!({
        "name": "drained", "fullyQualifiedName": "svc.drained", "pipelineType": "metadata",
        "sourceConfig": {"config": {}}, "airflowConfig": {},
        "openMetadataServerConnection": {"hostPort": "http://om:8585/api"}
    }))
    .unwrap();
    let service = serde_json::json!({"name": "svc", "serviceType": "Mysql", "connection": {"config": {"type": "Mysql"}}});
    let reply = cp
        .request(Request::RunPipeline {
            pipeline: Box::new(pipeline),
            service: Some(service),
            options: RunOptions::default(),
        })
        .await
        .unwrap();
    let Response::Result(OpResult::PipelineResponse(r)) = reply else {
        panic!("{reply:?}")
    };
    let run_id = r.run_id.unwrap();
    let state_is = |want: PipelineState| {
        let run_id = run_id.clone();
        move |e: &runner_protocol::EventFrame| match &e.event {
            RunnerEvent::RunStatus { status, .. } => {
                status.run_id == run_id && status.pipeline_state == want
            }
        }
    };
    cp.wait_event(Duration::from_secs(30), state_is(PipelineState::Running))
        .await
        .unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .unwrap()
        .unwrap()
        .status;
    assert!(status.success(), "{status:?}");
    // The run finished inside the grace period and its final status reached the control plane.
    cp.wait_event(Duration::from_secs(1), state_is(PipelineState::Success))
        .await
        .unwrap();
    std::fs::remove_dir_all(dir).unwrap();
}

/// A CONNECT proxy on 127.0.0.1 that records the request line of each tunnel it opens.
async fn connect_proxy() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let s = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let s = s.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    match tcp.read(&mut byte).await {
                        Ok(1) => head.push(byte[0]),
                        _ => return,
                    }
                }
                let line = String::from_utf8_lossy(&head)
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                s.lock().unwrap().push(line.clone());
                let target = line
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or_default()
                    .to_owned();
                let Ok(mut up) = tokio::net::TcpStream::connect(target).await else {
                    return;
                };
                if tcp
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .await
                    .is_ok()
                {
                    let _ = tokio::io::copy_bidirectional(&mut tcp, &mut up).await;
                }
            });
        }
    });
    (url, seen)
}

/// A private CA (PEM) and a TLS server config for `localhost` signed by it.
fn private_ca() -> (String, std::sync::Arc<rustls::ServerConfig>) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &ca, &ca_key)
        .unwrap();
    let key = rustls_pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
    let server = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![leaf.der().clone()], key)
    .unwrap();
    (ca.pem(), std::sync::Arc::new(server))
}

#[tokio::test]
async fn check_tests_dns_tcp_and_tls_through_the_proxy() {
    let token = jwt(30 * 86_400);
    let (ca_pem, server) = private_ca();
    let cp = MockControlPlane::start(MockOptions {
        token: token.clone(),
        tls: Some(server),
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = std::env::temp_dir().join(format!("runner-cli-proxy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bundle = dir.join("bundle.pem");
    std::fs::write(&bundle, ca_pem).unwrap();
    let (proxy, seen) = connect_proxy().await;
    let port = cp.addr().port();
    let envs = [
        ("SERVER_URL", cp.url()),
        ("AUTH_TOKEN", token.clone()),
        ("EXECUTOR_TYPE", "local".into()),
        ("SECRETS_MANAGER", "env".into()),
        // The private CA through SSL_CERT_FILE (it replaces the system roots).
        ("SSL_CERT_FILE", bundle.display().to_string()),
        ("https_proxy", proxy.replace("http://", "http://ops:pa55@")),
        ("NO_PROXY", "example.com".into()),
    ];
    let (ok, out) = check(&envs, &[]).await;
    assert!(ok, "{out}");
    let row = |name: &str| {
        out.lines()
            .find(|l| l.starts_with("ok") && l.contains(name))
            .unwrap_or_else(|| panic!("no passing row `{name}` in\n{out}"))
            .to_owned()
    };
    assert!(row("DNS resolves the proxy").contains("127.0.0.1"), "{out}");
    assert!(
        row("outbound TCP to the server through the proxy")
            .contains(&format!("CONNECT localhost:{port} accepted")),
        "{out}"
    );
    let tls = row("TLS: the server's certificate is trusted");
    assert!(
        tls.contains("through the proxy http://ops:***@127.0.0.1:")
            && tls.contains("https_proxy")
            && tls.contains("SSL_CERT_FILE="),
        "{tls}"
    );
    assert!(row("handshake").contains("through the proxy"), "{out}");
    assert!(!out.contains("pa55"), "the proxy password is never printed");
    // One tunnel for the TCP and TLS rows, one for the handshake.
    assert_eq!(
        seen.lock().unwrap().clone(),
        vec![format!("CONNECT localhost:{port} HTTP/1.1"); 2]
    );
    // NO_PROXY covering the server: every row direct, the proxy untouched.
    let mut direct = envs.clone();
    direct[6].1 = "localhost".into();
    let (ok, out) = check(&direct, &[]).await;
    assert!(ok && out.contains("DNS resolves the server"), "{out}");
    assert_eq!(seen.lock().unwrap().len(), 2);
    // --set cannot set a process-environment variable.
    let o = runner()
        .args(["--set", "HTTPS_PROXY=http://p:1", "config"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).1.contains("process environment only"),
        "{}",
        text(&o).1
    );
    std::fs::remove_dir_all(dir).unwrap();
}
