//! Builders: snapshot tests against committed JSON, and the rules of issue 4.

mod common;

use common::{fixture, full_config, snapshot};
use runner_argo::build::{
    self, BuildConfig, BuildError, OwnerRef, RunRequest, SecretsDelivery,
    build_automation_workflow, build_cron_workflow, build_run_workflow, config_secret,
};
use runner_argo::model::{EnvVar, Workflow};
use serde_json::{Value, json};

const RUN_ID: &str = "9d3c1a8e-2f4b-4c6d-8e9f-0a1b2c3d4e5f";

fn run(
    bc: &BuildConfig,
    pipeline: &Value,
    service: Option<&Value>,
    overrides: Option<&Value>,
) -> Result<build::BuiltRun, BuildError> {
    build_run_workflow(
        bc,
        &RunRequest {
            pipeline,
            service,
            run_id: RUN_ID,
            overrides,
        },
    )
}

fn env_of(wf: &Workflow, template: usize) -> &[EnvVar] {
    &wf.spec.templates[template].container.as_ref().unwrap().env
}

fn env_value<'a>(env: &'a [EnvVar], name: &str) -> Option<&'a str> {
    env.iter()
        .find(|e| e.name == name)
        .and_then(|e| e.value.as_deref())
}

#[test]
fn run_workflow_snapshot_full_config() {
    let bc = full_config();
    let built = run(
        &bc,
        &fixture("pipeline_metadata.json"),
        Some(&fixture("service_mysql.json")),
        None,
    )
    .unwrap();
    snapshot(
        "run_metadata_full",
        &serde_json::to_value(&built.workflow).unwrap(),
    );
    snapshot("run_metadata_config", built.config.as_ref().unwrap());
    assert_eq!(
        built.config_secret_name.as_deref(),
        Some(format!("{}-config", built.workflow.name()).as_str())
    );
}

#[test]
fn run_workflow_snapshot_defaults_profiler() {
    let bc = BuildConfig {
        runner_id: "r".into(),
        ..BuildConfig::default()
    };
    let built = run(
        &bc,
        &fixture("pipeline_profiler.json"),
        Some(&fixture("service_mysql.json")),
        None,
    )
    .unwrap();
    snapshot(
        "run_profiler_defaults",
        &serde_json::to_value(&built.workflow).unwrap(),
    );
}

#[test]
fn cron_workflow_snapshot() {
    let bc = full_config();
    let built = build_cron_workflow(
        &bc,
        &fixture("pipeline_metadata.json"),
        Some(&fixture("service_mysql.json")),
    )
    .unwrap()
    .expect("scheduled");
    let cw = &built.cron_workflow;
    snapshot("cron_metadata_full", &serde_json::to_value(cw).unwrap());
    assert_eq!(cw.spec.schedules, vec!["0 0 * * *".to_owned()]);
    assert_eq!(cw.spec.timezone.as_deref(), Some("Europe/Madrid"));
    let v = serde_json::to_value(cw).unwrap();
    assert!(
        v.pointer("/spec/schedule").is_none(),
        "never the removed singular `schedule`"
    );
    assert!(cw.metadata.name.as_ref().unwrap().len() <= 52);
    // every scheduled run gets its own run id from Argo
    assert_eq!(
        env_value(
            &cw.spec.workflow_spec.templates[0]
                .container
                .as_ref()
                .unwrap()
                .env,
            "pipelineRunId"
        ),
        Some("{{workflow.uid}}")
    );
    assert!(
        built
            .config
            .as_ref()
            .unwrap()
            .get("pipelineRunId")
            .is_none()
    );
}

#[test]
fn cron_disabled_pipeline_is_suspended_and_unscheduled_is_none() {
    let bc = BuildConfig::default();
    let p = fixture("pipeline_profiler.json");
    let c = build_cron_workflow(&bc, &p, Some(&fixture("service_mysql.json")))
        .unwrap()
        .unwrap();
    assert_eq!(c.cron_workflow.spec.suspend, Some(true));
    assert_eq!(
        c.cron_workflow.spec.schedules,
        vec!["15 */2 * * 1-5".to_owned()]
    );
    let mut p = fixture("pipeline_metadata.json");
    p["airflowConfig"]["scheduleInterval"] = Value::Null;
    assert!(build_cron_workflow(&bc, &p, None).unwrap().is_none());
}

#[test]
fn automation_snapshot() {
    let bc = full_config();
    let built = build_automation_workflow(&bc, &fixture("automation_test_connection.json"), RUN_ID)
        .unwrap();
    snapshot(
        "automation_test_connection",
        &serde_json::to_value(&built.workflow).unwrap(),
    );
    let main = &built.workflow.spec.templates[0];
    assert_eq!(
        main.container.as_ref().unwrap().command,
        vec!["python", "run_automation.py"]
    );
    assert_eq!(
        main.extra.get("priorityClassName"),
        Some(&json!("high-priority"))
    );
    assert!(built.workflow.spec.on_exit.is_none());
}

#[test]
fn env_contract_command_exit_handler_and_labels() {
    let bc = full_config();
    let built = run(
        &bc,
        &fixture("pipeline_metadata.json"),
        Some(&fixture("service_mysql.json")),
        None,
    )
    .unwrap();
    let wf = &built.workflow;
    let main = &wf.spec.templates[0];
    assert_eq!(main.name, "ingestion-task");
    assert_eq!(wf.spec.entrypoint.as_deref(), Some("ingestion-task"));
    let c = main.container.as_ref().unwrap();
    assert_eq!(c.command, vec!["python", "main.py"]);
    assert_eq!(
        c.image.as_deref(),
        Some("docker.getcollate.io/openmetadata/ingestion-base:1.9.0")
    );
    let env = env_of(wf, 0);
    assert_eq!(env_value(env, "pipelineType"), Some("metadata"));
    assert_eq!(env_value(env, "pipelineRunId"), Some(RUN_ID));
    assert_eq!(
        env_value(env, "ingestionPipelineFQN"),
        Some("mysql_prod.mysql_prod_metadata_Ingestion")
    );
    assert_eq!(env_value(env, "LABEL"), Some("a,b"));
    let cfg = env.iter().find(|e| e.name == "config").unwrap();
    assert!(cfg.value.is_none());
    let sk = cfg
        .value_from
        .as_ref()
        .unwrap()
        .secret_key_ref
        .as_ref()
        .unwrap();
    assert_eq!(
        (sk.name.as_deref(), sk.key.as_str()),
        (built.config_secret_name.as_deref(), "config")
    );
    // exit handler
    assert_eq!(wf.spec.on_exit.as_deref(), Some("exit-handler"));
    let exit = wf
        .spec
        .templates
        .iter()
        .find(|t| t.name == "exit-handler")
        .unwrap();
    let ec = exit.container.as_ref().unwrap();
    assert_eq!(ec.command, vec!["python", "exit_handler.py"]);
    assert_eq!(
        env_value(&ec.env, "pipelineStatus"),
        Some("{{workflow.status}}")
    );
    assert_eq!(env_value(&ec.env, "pipelineRunId"), Some(RUN_ID));
    // lifecycle
    assert_eq!(wf.spec.active_deadline_seconds, Some(7200));
    assert_eq!(
        wf.spec
            .ttl_strategy
            .as_ref()
            .unwrap()
            .seconds_after_completion,
        Some(3600)
    );
    let gc = wf.spec.pod_gc.as_ref().unwrap();
    assert_eq!(
        (gc.strategy.as_deref(), gc.delete_delay_duration.as_deref()),
        (Some("OnWorkflowCompletion"), Some("30m"))
    );
    let rs = main.retry_strategy.as_ref().unwrap();
    assert_eq!(rs.limit.as_ref().unwrap().as_i64(), Some(3));
    assert_eq!(
        rs.backoff.as_ref().unwrap().duration.as_deref(),
        Some("120s")
    );
    // pod settings from the operator
    assert_eq!(
        wf.spec.service_account_name.as_deref(),
        Some("om-ingestion")
    );
    assert_eq!(wf.spec.automount_service_account_token, Some(false));
    assert_eq!(wf.spec.image_pull_secrets[0].name, "collate-registry");
    assert_eq!(
        c.resources
            .as_ref()
            .unwrap()
            .limits
            .get("memory")
            .map(|q| q.as_str()),
        Some("4Gi")
    );
    assert!(c.extra.contains_key("volumeMounts") && c.extra.contains_key("securityContext"));
    assert!(wf.spec.extra.contains_key("volumes") && wf.spec.extra.contains_key("tolerations"));
    // labels and annotations
    let l = &wf.metadata.labels;
    assert_eq!(
        l.get(build::LABEL_RUNNER_ID).map(String::as_str),
        Some("runner-eu-1")
    );
    assert_eq!(l.get(build::LABEL_RUN_ID).map(String::as_str), Some(RUN_ID));
    assert_eq!(
        l.get(build::LABEL_PIPELINE_TYPE).map(String::as_str),
        Some("metadata")
    );
    assert_eq!(
        l.get(build::LABEL_PIPELINE_FQN_HASH),
        Some(&build::fqn_hash("mysql_prod.mysql_prod_metadata_Ingestion"))
    );
    assert!(l.values().all(|v| build::is_valid_label_value(v)), "{l:?}");
    assert_eq!(
        wf.metadata
            .annotations
            .get(build::ANNOTATION_PIPELINE_FQN)
            .map(String::as_str),
        Some("mysql_prod.mysql_prod_metadata_Ingestion")
    );
    assert_eq!(wf.metadata.namespace.as_deref(), Some("ingestion"));
}

#[test]
fn names_are_deterministic_per_run() {
    let bc = full_config();
    let p = fixture("pipeline_metadata.json");
    let svc = fixture("service_mysql.json");
    let a = run(&bc, &p, Some(&svc), None).unwrap().workflow;
    let b = run(&bc, &p, Some(&svc), None).unwrap().workflow;
    assert_eq!(a.metadata.name, b.metadata.name);
    let c = build_run_workflow(
        &bc,
        &RunRequest {
            pipeline: &p,
            service: Some(&svc),
            run_id: "other",
            overrides: None,
        },
    )
    .unwrap();
    assert_ne!(a.metadata.name, c.workflow.metadata.name);
    let long = build_run_workflow(
        &bc,
        &RunRequest {
            pipeline: &fixture("pipeline_profiler.json"),
            service: Some(&fixture("service_mysql.json")),
            run_id: RUN_ID,
            overrides: None,
        },
    )
    .unwrap();
    assert!(long.workflow.name().len() <= 63, "{}", long.workflow.name());
}

#[test]
fn overrides_and_pipeline_type_configs() {
    let bc = full_config();
    let o = json!({"retries": 0, "timeoutSeconds": 60});
    let svc = fixture("service_mysql.json");
    let built = run(
        &bc,
        &fixture("pipeline_metadata.json"),
        Some(&svc),
        Some(&o),
    )
    .unwrap();
    assert!(built.workflow.spec.templates[0].retry_strategy.is_none());
    assert_eq!(built.workflow.spec.active_deadline_seconds, Some(60));
    let prof = build_run_workflow(
        &bc,
        &RunRequest {
            pipeline: &fixture("pipeline_profiler.json"),
            service: Some(&fixture("service_mysql.json")),
            run_id: "x",
            overrides: None,
        },
    )
    .unwrap();
    assert_eq!(prof.workflow.spec.templates[0].name, "profiler-task");
    assert_eq!(
        prof.workflow.spec.templates[0].extra.get("nodeSelector"),
        Some(&json!({"workload": "profiling"}))
    );
    // default deadline when the pipeline has none
    assert_eq!(prof.workflow.spec.active_deadline_seconds, Some(86_400));
    let e = run(
        &bc,
        &fixture("pipeline_metadata.json"),
        None,
        Some(&json!({"retries": -1})),
    )
    .unwrap_err();
    assert!(matches!(e, BuildError::Invalid { .. }), "{e}");
    let e = run(
        &bc,
        &fixture("pipeline_metadata.json"),
        None,
        Some(&json!({"color": "red"})),
    )
    .unwrap_err();
    assert!(e.to_string().contains("unknown run option"), "{e}");
}

#[test]
fn control_plane_cannot_choose_pod_settings() {
    let bc = full_config();
    let cases: Vec<(Value, Option<Value>, &str)> = vec![
        (
            json!({"image": "evil/miner:latest"}),
            None,
            "INGESTION_IMAGE",
        ),
        (
            json!({"airflowConfig": {"namespace": "kube-system"}}),
            None,
            "INGESTION_NAMESPACE",
        ),
        (
            json!({"serviceAccountName": "cluster-admin"}),
            None,
            "INGESTION_SERVICE_ACCOUNT_NAME",
        ),
        (
            json!({}),
            Some(json!({"volumes": [{"name": "root", "hostPath": {"path": "/"}}]})),
            "volumes",
        ),
        (
            json!({}),
            Some(json!({"pod": {"hostNetwork": true}})),
            "host access",
        ),
        (
            json!({}),
            Some(json!({"securityContext": {"privileged": true}})),
            "privileges",
        ),
        (
            json!({}),
            Some(json!({"container": {"privileged": true}})),
            "privileges",
        ),
    ];
    for (patch, overrides, hint) in cases {
        let mut p = fixture("pipeline_metadata.json");
        common_merge(&mut p, &patch);
        let e = run(&bc, &p, None, overrides.as_ref()).unwrap_err();
        assert!(
            matches!(e, BuildError::Forbidden { .. }),
            "{patch} {overrides:?}: {e}"
        );
        let msg = e.to_string();
        assert!(
            msg.contains(hint) && msg.contains("may not choose"),
            "{msg}"
        );
    }
    let mut a = fixture("automation_test_connection.json");
    a["image"] = json!("evil");
    assert!(matches!(
        build_automation_workflow(&bc, &a, "r").unwrap_err(),
        BuildError::Forbidden { .. }
    ));
}

fn common_merge(base: &mut Value, patch: &Value) {
    runner_argo::build::merge::deep_merge(base, patch);
}

/// Scan every string an object would send to Argo for a value.
fn contains_str(v: &Value, needle: &str) -> bool {
    match v {
        Value::String(s) => s.contains(needle),
        Value::Array(a) => a.iter().any(|x| contains_str(x, needle)),
        Value::Object(m) => m
            .iter()
            .any(|(k, x)| k.contains(needle) || contains_str(x, needle)),
        _ => false,
    }
}

#[test]
fn runner_delivery_keeps_secret_values_out_of_the_workflow() {
    let bc = full_config();
    for (pipeline, service) in [
        (
            fixture("pipeline_metadata.json"),
            Some(fixture("service_mysql.json")),
        ),
        (
            fixture("pipeline_profiler.json"),
            Some(fixture("service_mysql.json")),
        ),
    ] {
        let built = run(&bc, &pipeline, service.as_ref(), None).unwrap();
        // what runner-secrets would do: resolve every `secret:` reference
        let resolved = resolve_all(built.config.clone().unwrap(), "S3CR3T-VALUE");
        let secret = config_secret(
            &bc,
            built.config_secret_name.as_deref().unwrap(),
            &built.workflow.metadata.labels,
            &build::config_text(&resolved),
            Some(&OwnerRef::workflow(built.workflow.name(), "uid-1")),
        );
        let wf = serde_json::to_value(&built.workflow).unwrap();
        assert!(!contains_str(&wf, "S3CR3T-VALUE"));
        // and no config at all inline: env `config` only via secretKeyRef, in every template
        for t in wf["spec"]["templates"].as_array().unwrap() {
            for e in t["container"]["env"].as_array().unwrap() {
                if e["name"] == "config" {
                    assert!(
                        e.get("value").is_none()
                            && e.pointer("/valueFrom/secretKeyRef/key") == Some(&json!("config"))
                    );
                }
                if let Some(v) = e.get("value").and_then(Value::as_str) {
                    assert!(
                        !v.contains("secret:") && !v.contains("openMetadataServerConfig"),
                        "{v}"
                    );
                }
            }
        }
        assert!(wf.pointer("/spec/arguments").is_none());
        assert!(contains_str(&secret, "S3CR3T-VALUE"));
        assert_eq!(secret["metadata"]["ownerReferences"][0]["kind"], "Workflow");
        assert_eq!(secret["metadata"]["ownerReferences"][0]["uid"], "uid-1");
        assert_eq!(secret["metadata"]["namespace"], "ingestion");
    }
}

fn resolve_all(v: Value, val: &str) -> Value {
    match v {
        Value::String(s) if s.starts_with("secret:") => Value::String(val.into()),
        Value::Array(a) => Value::Array(a.into_iter().map(|x| resolve_all(x, val)).collect()),
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, x)| (k, resolve_all(x, val)))
                .collect(),
        ),
        other => other,
    }
}

#[test]
fn pod_delivery_passes_references_and_refuses_plaintext() {
    let mut bc = full_config();
    bc.secrets_delivery = SecretsDelivery::Pod;
    bc.pod_env = vec![
        EnvVar::plain("SECRETS_MANAGER", "aws"),
        EnvVar::plain("AWS_REGION", "eu-west-1"),
    ];
    let built = run(
        &bc,
        &fixture("pipeline_metadata.json"),
        Some(&fixture("service_mysql.json")),
        None,
    )
    .unwrap();
    assert!(built.config_secret_name.is_none() && built.config.is_none());
    let env = env_of(&built.workflow, 0);
    let cfg = env_value(env, "config").unwrap();
    assert!(cfg.contains("secret:/my/database/credentials/password"));
    assert_eq!(env_value(env, "SECRETS_MANAGER"), Some("aws"));
    let mut svc = fixture("service_mysql.json");
    svc["connection"]["config"]["authType"]["password"] = json!("hunter2");
    let e = run(&bc, &fixture("pipeline_metadata.json"), Some(&svc), None).unwrap_err();
    match &e {
        BuildError::PlaintextSecret(paths) => {
            assert_eq!(
                paths,
                &vec!["source.serviceConnection.config.authType.password".to_owned()]
            )
        }
        other => panic!("{other:?}"),
    }
    assert!(!e.to_string().contains("hunter2"), "{e}");
    let mut p = fixture("pipeline_metadata.json");
    p["sourceConfig"]["config"]["sampleDataQuery"] = json!("select {{col}} from t");
    let e = run(&bc, &p, Some(&fixture("service_mysql.json")), None).unwrap_err();
    assert!(e.to_string().contains("template variable"), "{e}");
}

#[test]
fn missing_fields_and_bad_schedules_are_clear() {
    let bc = BuildConfig::default();
    let mut p = fixture("pipeline_metadata.json");
    p.as_object_mut().unwrap().remove("fullyQualifiedName");
    assert_eq!(
        run(&bc, &p, None, None).unwrap_err(),
        BuildError::Missing("fullyQualifiedName".into())
    );
    let mut p = fixture("pipeline_metadata.json");
    p["airflowConfig"]["scheduleInterval"] = json!("every day");
    assert!(
        build_cron_workflow(&bc, &p, None)
            .unwrap_err()
            .to_string()
            .contains("scheduleInterval")
    );
    let mut p = fixture("pipeline_metadata.json");
    p["airflowConfig"]["pipelineTimezone"] = json!("Nowhere/Land");
    assert!(
        build_cron_workflow(&bc, &p, None)
            .unwrap_err()
            .to_string()
            .contains("pipelineTimezone")
    );
    let mut p = fixture("pipeline_metadata.json");
    p["pipelineType"] = json!("mining");
    assert!(
        run(&bc, &p, None, None)
            .unwrap_err()
            .to_string()
            .contains("pipelineType")
    );
    // a metadata pipeline needs its service
    let e = run(&bc, &fixture("pipeline_metadata.json"), None, None).unwrap_err();
    assert!(e.to_string().contains("service"), "{e}");
}

#[test]
fn config_from_env_contract_with_aliases() {
    let dir = tempfile::tempdir().unwrap();
    let cpath = dir.path().join("container.yaml");
    std::fs::write(&cpath, "volumeMounts:\n- name: x\n  mountPath: /x\n").unwrap();
    let env = |k: &str| -> Option<String> {
        Some(match k {
            "AGENT_ID" => "agent-7".into(),
            "ARGO_INGESTION_IMAGE" => "img:1".into(),
            "ARGO_NAMESPACE" => "ns1".into(),
            "INGESTION_IMAGE_PULL_SECRETS" => "a, b".into(),
            "ARGO_WORKFLOW_EXECUTOR_SERVICE_ACCOUNT_NAME" => "sa".into(),
            "ARGO_EXTRA_ENVS" => "[K:v]".into(),
            "ARGO_WORKFLOW_CPU_LIMIT" => "2".into(),
            "INGESTION_MEMORY_REQUEST" => "1Gi".into(),
            "ARGO_AUTOMATION_WORKFLOW_MEMORY_LIMIT" => "512Mi".into(),
            "INGESTION_AUTOMOUNT_SA_TOKEN" => "false".into(),
            "ARGO_SECONDS_AFTER_COMPLETION_TTL" => "600".into(),
            "ARGO_PIPELINE_TYPE_CONFIGS" => {
                r#"{"automation":{"priorityClassName":"high-priority"}}"#.into()
            }
            "ARGO_INGESTION_CONTAINER_SPEC_FILE_PATH" => cpath.display().to_string(),
            "SECRETS_DELIVERY" => "pod".into(),
            _ => return None,
        })
    };
    let c = BuildConfig::from_lookup(env).unwrap();
    assert_eq!(
        (c.runner_id.as_str(), c.image.as_str(), c.namespace.as_str()),
        ("agent-7", "img:1", "ns1")
    );
    assert_eq!(c.image_pull_secrets, vec!["a", "b"]);
    assert_eq!(c.service_account_name.as_deref(), Some("sa"));
    assert_eq!(c.extra_envs, vec![("K".to_owned(), "v".to_owned())]);
    assert_eq!(c.ingestion_resources.cpu_limit.as_deref(), Some("2"));
    assert_eq!(c.ingestion_resources.memory_request.as_deref(), Some("1Gi"));
    assert_eq!(
        c.automation_resources.memory_limit.as_deref(),
        Some("512Mi")
    );
    assert_eq!(c.automount_service_account_token, Some(false));
    assert_eq!(c.ttl_seconds_after_completion, Some(600));
    assert_eq!(c.secrets_delivery, SecretsDelivery::Pod);
    assert!(c.container_spec.unwrap().get("volumeMounts").is_some());

    let e = BuildConfig::from_lookup(|_| None).unwrap_err();
    assert!(e.to_string().contains("INGESTION_IMAGE"), "{e}");
    let e = BuildConfig::from_lookup(|k| match k {
        "INGESTION_IMAGE" => Some("i".into()),
        "INGESTION_CPU_LIMIT" => Some("two".into()),
        _ => None,
    })
    .unwrap_err();
    assert!(e.to_string().contains("INGESTION_CPU_LIMIT"), "{e}");
    let e = BuildConfig::from_lookup(|k| match k {
        "INGESTION_IMAGE" => Some("i".into()),
        "ARGO_PIPELINE_TYPE_CONFIGS" => Some("{nope".into()),
        _ => None,
    })
    .unwrap_err();
    assert!(e.to_string().contains("ARGO_PIPELINE_TYPE_CONFIGS"), "{e}");
}

#[test]
fn realistic_server_workflow_decodes_with_numeric_retry_limit() {
    let v = fixture("server_workflow.json");
    let wf: Workflow = serde_json::from_value(v.clone()).expect("decodes");
    let t = &wf.spec.templates[0];
    assert_eq!(
        t.retry_strategy
            .as_ref()
            .unwrap()
            .limit
            .as_ref()
            .unwrap()
            .as_i64(),
        Some(3)
    );
    assert_eq!(
        wf.spec
            .retry_strategy
            .as_ref()
            .unwrap()
            .limit
            .as_ref()
            .unwrap()
            .as_i64(),
        Some(2)
    );
    assert_eq!(wf.phase(), Some("Running"));
    // unknown fields are preserved: a round trip loses nothing
    let back = serde_json::to_value(&wf).unwrap();
    assert_eq!(back["spec"]["someFutureField"], json!({"x": 1}));
    assert_eq!(
        back["spec"]["templates"][0]["retryStrategy"]["limit"],
        json!(3)
    );
    assert_eq!(
        back["spec"]["templates"][0]["container"]["resources"]["limits"]["cpu"],
        json!("2"),
        "a numeric quantity is read and written back as a string"
    );
    assert_eq!(
        back["metadata"]["managedFields"],
        v["metadata"]["managedFields"]
    );
    let st = runner_argo::status::map_workflow(&wf);
    assert_eq!(st.state, runner_argo::PipelineState::Running);
    assert_eq!(
        st.run_id.as_deref(),
        Some("9d3c1a8e-2f4b-4c6d-8e9f-0a1b2c3d4e5f")
    );
}

#[test]
fn image_tags_follow_the_server_version() {
    use runner_argo::build::image_with_tag;
    assert_eq!(
        image_with_tag(
            "docker.getcollate.io/openmetadata/ingestion-base:1.8.0",
            "v1.9.2"
        ),
        "docker.getcollate.io/openmetadata/ingestion-base:1.9.2"
    );
    assert_eq!(
        image_with_tag("registry:5000/om/ingestion", "1.9.2"),
        "registry:5000/om/ingestion:1.9.2"
    );
    assert_eq!(
        image_with_tag("registry:5000/om/ingestion:old", "1.9.2"),
        "registry:5000/om/ingestion:1.9.2"
    );
    assert_eq!(
        image_with_tag("om/ingestion@sha256:abcd", "1.9.2"),
        "om/ingestion@sha256:abcd"
    );
    let c = BuildConfig::from_lookup(|k| match k {
        "INGESTION_IMAGE" => Some("i:1".into()),
        "DYNAMIC_INGESTION_VERSION_ENABLED" => Some("true".into()),
        _ => None,
    })
    .unwrap();
    assert!(c.dynamic_ingestion_version);
}

#[test]
fn workflow_config_per_pipeline_type() {
    let svc = fixture("service_mysql.json");
    let mut all = serde_json::Map::new();
    for t in [
        "metadata",
        "usage",
        "lineage",
        "profiler",
        "autoClassification",
        "dbt",
        "TestSuite",
        "dataInsight",
        "elasticSearchReindex",
        "application",
    ] {
        let mut p = fixture("pipeline_metadata.json");
        p["pipelineType"] = json!(t);
        if t == "application" {
            p["sourceConfig"] = json!({"config": {"type": "Application", "sourcePythonClass": "metadata.applications.auto_tagger.AutoTaggerApp", "appConfig": {"type": "AutoTagger"}}});
        }
        let cfg = build::workflow_config(&p, Some(&svc), Some("run-1")).unwrap();
        assert_eq!(cfg["pipelineRunId"], "run-1", "{t}");
        assert_eq!(
            cfg["ingestionPipelineFQN"], "mysql_prod.mysql_prod_metadata_Ingestion",
            "{t}"
        );
        assert_eq!(cfg["workflowConfig"]["loggerLevel"], "DEBUG", "{t}");
        all.insert(t.to_owned(), cfg);
    }
    assert_eq!(all["usage"]["source"]["type"], "mysql-usage");
    assert_eq!(all["lineage"]["source"]["type"], "mysql-lineage");
    assert_eq!(all["profiler"]["processor"]["type"], "orm-profiler");
    assert_eq!(
        all["application"]["sourcePythonClass"],
        "metadata.applications.auto_tagger.AutoTaggerApp"
    );
    snapshot("workflow_config_by_type", &Value::Object(all));
}

/// `SERVER_HOST_API_URL` reaches a schedule's config as it reaches a manual run's: the pods
/// of scheduled runs report to the same platform API.
#[test]
fn server_host_api_url_reaches_the_schedule_and_the_run() {
    let url = "https://metadata.internal.example.com/api";
    for delivery in [SecretsDelivery::Runner, SecretsDelivery::Pod] {
        let bc = BuildConfig {
            server_host_api_url: Some(url.into()),
            secrets_delivery: delivery,
            ..full_config()
        };
        let pipeline = fixture("pipeline_metadata.json");
        let service = fixture("service_mysql.json");
        let cron = build_cron_workflow(&bc, &pipeline, Some(&service))
            .unwrap()
            .expect("scheduled");
        let run = build_run_workflow(
            &bc,
            &RunRequest {
                pipeline: &pipeline,
                service: Some(&service),
                run_id: "run-h",
                overrides: None,
            },
        )
        .unwrap();
        let configs: Vec<serde_json::Value> = match delivery {
            SecretsDelivery::Runner => vec![cron.config.unwrap(), run.config.unwrap()],
            SecretsDelivery::Pod => [
                serde_json::to_value(&cron.cron_workflow.spec.workflow_spec).unwrap(),
                serde_json::to_value(&run.workflow.spec).unwrap(),
            ]
            .iter()
            .map(|spec| {
                let text = spec["templates"][0]["container"]["env"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|e| e["name"] == "config")
                    .unwrap()["value"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                serde_json::from_str(&text).unwrap()
            })
            .collect(),
        };
        for c in configs {
            assert_eq!(
                c["workflowConfig"]["openMetadataServerConfig"]["hostPort"], url,
                "{delivery:?}"
            );
        }
    }
}
