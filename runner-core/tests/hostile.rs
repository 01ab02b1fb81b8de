//! Hostile input: a control plane that sends malicious requests to a real runner (Argo
//! executor, SECRETS_DELIVERY=runner, a secrets resolver with an allow-list) in front of the
//! fake Argo Server. Row by row, each request is refused with a clear error (code, and a
//! message naming the offending field) and nothing is created: no body reaches Argo, no config
//! Secret is stored, no run is queued. The table is docs/security.md.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::leak::{
    Exempt, Put, argo_objects, assert_no_leak_in_logs, assert_no_leak_in_objects,
    assert_no_leak_upstream, scanner,
};
use common::*;
use runner_argo::ArgoClientConfig;
use runner_argo::build::{BuildConfig, SecretsDelivery, is_valid_label_value};
use runner_argo::fake::{FakeArgo, FakeConfig, PhaseStep};
use runner_core::executor::argo::{ArgoSettings, ConfigSecrets};
use runner_protocol::{
    ErrorCode, Frame, IngestionPipeline, Message, MessageId, Request, Response, RunOptions, encode,
};
use runner_secrets::providers::memory::MemoryProvider;
use runner_secrets::{ResolverOptions, SecretResolver};
use serde_json::{Value, json};

const PASSWORD: &str = "H0stile-Test-Pw#7731";
const BOT_TOKEN: &str = "eyJhbGciOi.hostile-bot.sig";

/// Config Secrets kept in memory: what the Kubernetes API would hold.
#[derive(Default)]
struct Store {
    secrets: Mutex<BTreeMap<String, Value>>,
    puts: Mutex<Vec<Value>>,
}

#[async_trait::async_trait]
impl ConfigSecrets for Store {
    async fn put(&self, _ns: &str, manifest: &Value) -> Result<(), runner_core::ExecutorError> {
        let name = manifest["metadata"]["name"].as_str().unwrap().to_owned();
        self.puts.lock().unwrap().push(manifest.clone());
        self.secrets.lock().unwrap().insert(name, manifest.clone());
        Ok(())
    }
    async fn patch(
        &self,
        _ns: &str,
        name: &str,
        patch: &Value,
    ) -> Result<(), runner_core::ExecutorError> {
        let mut s = self.secrets.lock().unwrap();
        let secret = s
            .get_mut(name)
            .ok_or_else(|| runner_core::ExecutorError::NotFound(name.into()))?;
        secret["metadata"]["ownerReferences"] = patch["metadata"]["ownerReferences"].clone();
        Ok(())
    }
    async fn delete(&self, _ns: &str, name: &str) -> Result<(), runner_core::ExecutorError> {
        self.secrets.lock().unwrap().remove(name);
        Ok(())
    }
}

struct World {
    h: Harness,
    fake: FakeArgo,
    store: Arc<Store>,
}

async fn world() -> World {
    let _ = common::leak::logs();
    let provider = MemoryProvider::new();
    provider.insert(
        "demo/db/credentials",
        json!({"password": PASSWORD}).to_string(),
    );
    provider.insert("demo/bot-token", BOT_TOKEN);
    provider.insert("prod/db/password", "Pr0d-Only-Never-Read");
    let resolver = SecretResolver::new(
        Arc::new(provider),
        ResolverOptions {
            allowed_prefixes: vec!["demo/".into()],
            ..Default::default()
        },
    );
    let fake = FakeArgo::start(FakeConfig {
        phase_plan: vec![
            PhaseStep::new(Duration::ZERO, "Pending"),
            PhaseStep::new(Duration::from_millis(100), "Running"),
            PhaseStep::new(Duration::from_millis(300), "Succeeded"),
        ],
        tick: Duration::from_millis(20),
        ..Default::default()
    })
    .await
    .unwrap();
    let store = Arc::new(Store::default());
    let (url, store_for_executor) = (fake.url(), store.clone());
    let h = start(Setup {
        preparer: runner_core::Preparer::new(Some(Arc::new(resolver)), None),
        executor: Some(argo_executor(
            ArgoSettings::new(
                ArgoClientConfig {
                    endpoint: url,
                    ..Default::default()
                },
                BuildConfig {
                    service_account_name: Some("ingestion-runs".into()),
                    ..argo_build("agent-hostile", SecretsDelivery::Runner)
                },
            ),
            Some(store_for_executor),
        )),
        ..Default::default()
    })
    .await;
    h.cp.wait_connected(WAIT).await.unwrap();
    World { h, fake, store }
}

/// A well-formed pipeline (with `secret:` references that resolve), as JSON to tamper with.
fn pipeline_json(name: &str) -> Value {
    json!({
        "id": "0f5e8a52-1111-4a4a-9d9d-000000000077",
        "name": name,
        "fullyQualifiedName": format!("mysql_prod.{name}"),
        "pipelineType": "metadata",
        "sourceConfig": {"config": {"type": "DatabaseMetadata"}},
        "airflowConfig": {"scheduleInterval": "0 * * * *", "pipelineTimezone": "UTC"},
        "openMetadataServerConnection": {"hostPort": "https://acme.getcollate.io/api",
            "authProvider": "openmetadata", "securityConfig": {"jwtToken": "secret:/demo/bot-token"}},
        "enabled": true
    })
}

fn service(password_ref: &str) -> Value {
    json!({"name": "mysql_prod", "serviceType": "Mysql",
        "connection": {"config": {"type": "Mysql", "hostPort": "db:3306", "password": password_ref}}})
}

fn typed(p: Value) -> Box<IngestionPipeline> {
    Box::new(serde_json::from_value(p).expect("an IngestionPipeline"))
}

fn run(p: Value, run_id: &str) -> Request {
    Request::RunPipeline {
        pipeline: typed(p),
        service: Some(service("secret:/demo/db/credentials/password")),
        options: RunOptions {
            run_id: Some(run_id.into()),
            config_override: None,
        },
    }
}

fn deploy(p: Value) -> Request {
    Request::DeployPipeline {
        pipeline: typed(p),
        service: Some(service("secret:/demo/db/credentials/password")),
    }
}

fn with(mut p: Value, pointer_parent: &str, key: &str, v: Value) -> Value {
    let target = if pointer_parent.is_empty() {
        &mut p
    } else {
        p.pointer_mut(pointer_parent).unwrap()
    };
    target[key] = v;
    p
}

/// Nothing was created anywhere, and no run was queued.
fn assert_nothing_created(w: &World, row: &str) {
    assert!(
        w.fake.bodies().is_empty(),
        "{row}: a body reached Argo: {:?}",
        w.fake.bodies()
    );
    assert!(w.fake.workflows().is_empty(), "{row}: a Workflow exists");
    assert!(
        w.fake.cron_workflows().is_empty(),
        "{row}: a CronWorkflow exists"
    );
    assert!(
        w.store.puts.lock().unwrap().is_empty(),
        "{row}: a config Secret was stored"
    );
    assert!(w.h.cp.events().is_empty(), "{row}: a run was queued");
}

/// Sends `request`; it must fail with `code` and a message holding every one of `says`.
async fn refused(w: &World, row: &str, request: Request, code: ErrorCode, says: &[&str]) {
    let reply = w.h.cp.request(request).await.unwrap();
    let Response::Error(e) = reply else {
        panic!("{row}: not refused: {reply:?}")
    };
    assert_eq!(e.code, code, "{row}: {}", e.message);
    for s in says {
        assert!(
            e.message.contains(s),
            "{row}: the message does not name {s:?}: {}",
            e.message
        );
    }
    assert_nothing_created(w, row);
}

#[tokio::test]
async fn pod_settings_only_the_operator_may_choose_are_refused() {
    let w = world().await;
    let p = || pipeline_json("orders");
    let f = ErrorCode::Forbidden;
    let rows: Vec<(&str, Request, Vec<&str>)> = vec![
        (
            "image override",
            run(with(p(), "", "image", json!("evil/miner:latest")), "r1"),
            vec!["`image`", "INGESTION_IMAGE"],
        ),
        (
            "image pull policy",
            run(with(p(), "", "imagePullPolicy", json!("Always")), "r1"),
            vec!["`imagePullPolicy`"],
        ),
        (
            "namespace override",
            run(
                with(p(), "/airflowConfig", "namespace", json!("kube-system")),
                "r1",
            ),
            vec!["`airflowConfig.namespace`", "INGESTION_NAMESPACE"],
        ),
        (
            "service account override",
            run(
                with(p(), "", "serviceAccountName", json!("cluster-admin")),
                "r1",
            ),
            vec!["`serviceAccountName`", "INGESTION_SERVICE_ACCOUNT_NAME"],
        ),
        (
            "volumes with a hostPath",
            run(
                with(
                    p(),
                    "",
                    "volumes",
                    json!([{"name": "root", "hostPath": {"path": "/"}}]),
                ),
                "r1",
            ),
            vec!["`volumes`"],
        ),
        (
            "hostPath",
            run(
                with(p(), "/airflowConfig", "hostPath", json!({"path": "/etc"})),
                "r1",
            ),
            vec!["`airflowConfig.hostPath`"],
        ),
        (
            "privileged",
            run(with(p(), "", "privileged", json!(true)), "r1"),
            vec!["`privileged`"],
        ),
        (
            "securityContext",
            run(
                with(
                    p(),
                    "/airflowConfig",
                    "securityContext",
                    json!({"privileged": true, "runAsUser": 0}),
                ),
                "r1",
            ),
            vec!["`airflowConfig.securityContext`"],
        ),
        (
            "capabilities",
            run(
                with(p(), "", "capabilities", json!({"add": ["SYS_ADMIN"]})),
                "r1",
            ),
            vec!["`capabilities`"],
        ),
        (
            "hostNetwork",
            run(
                with(p(), "/airflowConfig", "hostNetwork", json!(true)),
                "r1",
            ),
            vec!["`airflowConfig.hostNetwork`"],
        ),
        (
            "hostPID",
            run(with(p(), "", "hostPID", json!(true)), "r1"),
            vec!["`hostPID`"],
        ),
        (
            "env overriding the runner's config var",
            run(
                with(
                    p(),
                    "",
                    "env",
                    json!([{"name": "config", "value": "{\"source\":{}}"}]),
                ),
                "r1",
            ),
            vec!["`env`", "INGESTION_EXTRA_ENVS"],
        ),
        (
            "envFrom in airflowConfig",
            run(
                with(
                    p(),
                    "/airflowConfig",
                    "envFrom",
                    json!([{"secretRef": {"name": "argo-server-token"}}]),
                ),
                "r1",
            ),
            vec!["`airflowConfig.envFrom`"],
        ),
        (
            "command override",
            run(
                with(p(), "", "command", json!(["sh", "-c", "curl evil"])),
                "r1",
            ),
            vec!["`command`"],
        ),
        (
            "podSpecPatch on a deploy",
            deploy(with(
                p(),
                "/airflowConfig",
                "podSpecPatch",
                json!("{\"hostNetwork\":true}"),
            )),
            vec!["`airflowConfig.podSpecPatch`"],
        ),
        (
            "automation sets the image",
            Request::RunAutomationsWorkflow {
                workflow: json!({"name": "test-conn", "workflowType": "TEST_CONNECTION",
                    "image": "evil/miner", "request": {"connection": {"config": {"type": "Mysql"}}}}),
            },
            vec!["`image`"],
        ),
        (
            "automation sets env",
            Request::RunAutomationsWorkflow {
                workflow: json!({"name": "test-conn", "workflowType": "TEST_CONNECTION",
                    "env": [{"name": "pipelineType", "value": "x"}],
                    "request": {"connection": {"config": {"type": "Mysql"}}}}),
            },
            vec!["`env`"],
        ),
        (
            "automation sets imagePullSecrets",
            Request::RunAutomationsWorkflow {
                workflow: json!({"name": "test-conn", "imagePullSecrets": [{"name": "x"}],
                    "request": {}}),
            },
            vec!["`imagePullSecrets`"],
        ),
    ];
    for (row, request, says) in rows {
        refused(&w, row, request, f, &says).await;
    }
}

#[tokio::test]
async fn secret_references_outside_the_allow_list_are_refused_before_any_read() {
    let w = world().await;
    for (row, reference) in [
        (
            "reference outside the allowed prefix",
            "secret:/prod/db/password",
        ),
        (
            "path traversal out of the prefix",
            "secret:demo/../prod/db/password",
        ),
    ] {
        let request = Request::RunPipeline {
            pipeline: typed(pipeline_json("orders")),
            service: Some(service(reference)),
            options: RunOptions::default(),
        };
        let reply = w.h.cp.request(request).await.unwrap();
        let Response::Error(e) = reply else {
            panic!("{row}: not refused: {reply:?}")
        };
        assert!(
            matches!(e.code, ErrorCode::Forbidden | ErrorCode::SecretUnresolved),
            "{row}: {e:?}"
        );
        assert!(
            e.message.contains("nothing was started") && e.message.contains("prod/db/password"),
            "{row}: {}",
            e.message
        );
        if row.starts_with("reference outside") {
            assert_eq!(e.code, ErrorCode::Forbidden, "{}", e.message);
            assert!(
                e.message.contains("SECRETS_ALLOWED_PREFIXES"),
                "{}",
                e.message
            );
        }
        assert_nothing_created(&w, row);
    }
    // The value of the secret outside the allow-list went nowhere: it was never read.
    let s = scanner(&["Pr0d-Only-Never-Read"]);
    assert_no_leak_upstream(&s, &w.h.cp);
    assert_no_leak_in_logs(&s);
}

#[tokio::test]
async fn schedules_that_fire_every_second_or_do_not_parse_are_refused() {
    let w = world().await;
    let p = |sched: &str| {
        with(
            pipeline_json("nightly"),
            "/airflowConfig",
            "scheduleInterval",
            json!(sched),
        )
    };
    for (row, sched, says) in [
        ("every second (6 fields)", "* * * * * *", "seconds"),
        ("every second, step form", "*/1 * * * * *", "seconds"),
        ("seconds and year (7 fields)", "0 * * * * * 2030", "seconds"),
        ("Go-style interval", "@every 1s", "preset"),
        ("minute out of range", "61 * * * *", "minute field"),
        ("zero step", "*/0 * * * *", "step 0"),
        ("day of month 0", "0 0 0 * *", "day-of-month"),
        ("shell injection", "0 0 * * *; rm -rf /", "5-field"),
        ("too few fields", "* * *", "5-field"),
    ] {
        refused(
            &w,
            row,
            deploy(p(sched)),
            ErrorCode::InvalidRequest,
            &["airflowConfig.scheduleInterval", says],
        )
        .await;
    }
    refused(
        &w,
        "unknown time zone",
        deploy(with(
            p("0 * * * *"),
            "/airflowConfig",
            "pipelineTimezone",
            json!("Mars/Olympus"),
        )),
        ErrorCode::InvalidRequest,
        &["airflowConfig.pipelineTimezone"],
    )
    .await;
}

#[tokio::test]
async fn names_and_run_ids_that_would_break_objects_or_paths_are_refused() {
    let w = world().await;
    let inv = ErrorCode::InvalidRequest;
    let rows: Vec<(&str, Request, Vec<&str>)> = vec![
        (
            "Argo template expression in the FQN",
            run(
                with(
                    pipeline_json("orders"),
                    "",
                    "fullyQualifiedName",
                    json!("svc.{{workflow.parameters.x}}"),
                ),
                "r1",
            ),
            vec!["`fullyQualifiedName`", "`{{`"],
        ),
        (
            "Argo expression in the name",
            run(pipeline_json("{{=sprig.env('ARGO_TOKEN')}}"), "r1"),
            vec!["`name`", "`{{`"],
        ),
        (
            "control character in the name",
            run(pipeline_json("orders\u{0}\nx"), "r1"),
            vec!["`name`", "control character"],
        ),
        (
            "FQN of 2 KiB",
            run(
                with(
                    pipeline_json("orders"),
                    "",
                    "fullyQualifiedName",
                    json!("s.".repeat(1024)),
                ),
                "r1",
            ),
            vec!["`fullyQualifiedName`", "1024"],
        ),
        (
            "path traversal in the run id",
            run(pipeline_json("orders"), "../../../etc/passwd"),
            vec!["`runId`", "`..`"],
        ),
        (
            "path separator in the run id",
            run(pipeline_json("orders"), "a/b"),
            vec!["`runId`", "`/`"],
        ),
        (
            "template expression in the run id",
            run(pipeline_json("orders"), "{{workflow.uid}}"),
            vec!["`runId`", "`{{`"],
        ),
        (
            "unknown pipeline type",
            run(
                with(pipeline_json("orders"), "", "pipelineType", json!("../x")),
                "r1",
            ),
            vec!["pipelineType", "../x"],
        ),
    ];
    for (row, request, says) in rows {
        refused(&w, row, request, inv, &says).await;
    }
    // Run ids in lookups never reach Argo as paths (they select by hashed label).
    for run_id in ["../../workflows/kube-system/x", "..%2F..%2Fx"] {
        let reply =
            w.h.cp
                .request(Request::GetIngestionLogs {
                    pipeline: typed(pipeline_json("orders")),
                    run_id: run_id.into(),
                    after: None,
                })
                .await
                .unwrap();
        let Response::Error(e) = reply else {
            panic!("logs of {run_id}: {reply:?}")
        };
        assert_eq!(e.code, ErrorCode::NotFound, "{}", e.message);
    }
    for r in w.fake.requests() {
        assert!(
            !r.path.contains("..") && !r.path.contains("%2F") && !r.query.contains(".."),
            "a run id reached Argo unescaped: {} {}?{}",
            r.method,
            r.path,
            r.query
        );
    }
    assert_nothing_created(&w, "lookups");
}

#[tokio::test]
async fn oversized_and_deeply_nested_requests_are_refused() {
    let w = world().await;
    // Over the config limit, under the frame limit.
    let big = with(
        pipeline_json("orders"),
        "/sourceConfig/config",
        "pad",
        json!("x".repeat(runner_argo::build::MAX_CONFIG_BYTES)),
    );
    refused(
        &w,
        "config over MAX_CONFIG_BYTES",
        run(big, "r1"),
        ErrorCode::InvalidRequest,
        &[
            "`config`",
            &runner_argo::build::MAX_CONFIG_BYTES.to_string(),
        ],
    )
    .await;

    // Over the frame limit, and nested deeper than the limit: sent as encoded frames (the
    // runner answers with an `error` frame, no `response`, since it cannot read the id).
    let frame = |id: &str, p: Value| {
        encode(&Frame {
            v: 1,
            id: MessageId::new(id, 128).unwrap(),
            re: None,
            message: Message::Request(run(p, "r1")),
        })
    };
    let huge = frame(
        "hostile-huge",
        with(
            pipeline_json("orders"),
            "/sourceConfig/config",
            "pad",
            json!("x".repeat(1_200_000)),
        ),
    );
    let mut nested = json!("bottom");
    for _ in 0..100 {
        nested = json!({ "a": nested });
    }
    let deep = frame(
        "hostile-deep",
        with(pipeline_json("orders"), "/sourceConfig/config", "n", nested),
    );
    w.h.cp.send_raw(huge).await.unwrap();
    w.h.cp.send_raw(deep).await.unwrap();
    // Invalid UTF-8 over the socket: a binary frame (a text frame cannot carry it).
    w.h.cp
        .send_raw_binary(&b"{\"v\":1,\"id\":\"\xff\xfe\",\"type\":\"request\"}"[..])
        .await
        .unwrap();
    let replies = w.h.cp.wait_raw_replies(3, WAIT).await.unwrap();
    let errors: Vec<(String, String)> = replies
        .iter()
        .map(|r| {
            let e = r["body"].get("error").unwrap_or(&r["body"]);
            (
                e["code"].as_str().unwrap_or_default().to_owned(),
                e["message"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(errors[0].0, "frame_too_large", "{errors:?}");
    assert!(errors[0].1.contains("1048576"), "{errors:?}");
    assert_eq!(errors[1].0, "too_deep", "{errors:?}");
    assert!(errors[1].1.contains("64"), "{errors:?}");
    assert_eq!(errors[2].0, "malformed", "{errors:?}");
    assert!(errors[2].1.contains("UTF-8"), "{errors:?}");
    assert_nothing_created(&w, "oversized frames");
    // The session survived.
    assert_eq!(
        w.h.cp.request(Request::Ping {}).await.unwrap(),
        Response::Result(runner_protocol::OpResult::Pong {})
    );
}

/// The control: a well-formed request with a hostile-looking but legal name goes through, the
/// objects made of it are valid Kubernetes names and labels, and the leak scan of everything
/// the runner sent holds (the config Secret alone holds the values).
#[tokio::test]
async fn a_legal_request_with_an_awkward_name_runs_and_leaks_nothing() {
    let w = world().await;
    let name = format!("../Évil Name_{}!!/..", "ü".repeat(200));
    let reply =
        w.h.cp
            .request(run(
                pipeline_json(&name),
                "manual__2024-01-01T00:00:00+00:00",
            ))
            .await
            .unwrap();
    let run_id = run_id_of(&reply);
    wait_state(&w.h.cp, &run_id, runner_protocol::PipelineState::Success).await;
    let wf = w.fake.workflows().remove(0);
    let wf_name = wf["metadata"]["name"].as_str().unwrap().to_owned();
    assert!(
        wf_name.len() <= 63
            && wf_name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
        "{wf_name}"
    );
    for (k, v) in wf["metadata"]["labels"].as_object().unwrap() {
        assert!(is_valid_label_value(v.as_str().unwrap()), "{k}={v}");
    }
    assert!(w.fake.rejected().is_empty(), "{:?}", w.fake.rejected());

    let s = scanner(&[PASSWORD, BOT_TOKEN]);
    let mut objects = argo_objects(&w.fake);
    for secret in w.store.puts.lock().unwrap().iter() {
        objects.push(Put {
            place: "a Secret put through the Kubernetes API".into(),
            object: secret.clone(),
        });
    }
    let secret_name = format!("{wf_name}-config");
    assert_no_leak_in_objects(
        &s,
        &objects,
        Some(Exempt {
            kind: "Secret",
            name: &secret_name,
        }),
    );
    assert_no_leak_upstream(&s, &w.h.cp);
    assert_no_leak_in_logs(&s);
}
