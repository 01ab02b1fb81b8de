//! The builders' output against the upstream definitions: the Workflow / CronWorkflow CRD
//! `openAPIV3Schema` (parsed from the YAML CRDs) and the Argo Server swagger request bodies.
//! Skipped, saying so, when `shared/specs/argo` is absent.
#![cfg(feature = "fake")]

mod common;

use common::{fixture, full_config, specs_dir};
use runner_argo::build::{
    BuildConfig, RunRequest, SecretsDelivery, build_automation_workflow, build_cron_workflow,
    build_run_workflow,
};
use runner_argo::model::EnvVar;
use runner_argo::schema::{CrdSchema, Swagger};
use serde_json::{Value, json};

struct Specs {
    wf_crd: CrdSchema,
    cron_crd: CrdSchema,
    swagger: Swagger,
}

fn load() -> Option<Specs> {
    let d = specs_dir()?;
    Some(Specs {
        wf_crd: CrdSchema::load_yaml(&d.join("argoproj.io_workflows.yaml")).unwrap(),
        cron_crd: CrdSchema::load_yaml(&d.join("argoproj.io_cronworkflows.yaml")).unwrap(),
        swagger: Swagger::load(&d.join("swagger.json")).unwrap(),
    })
}

fn configs() -> Vec<BuildConfig> {
    let mut pod = full_config();
    pod.secrets_delivery = SecretsDelivery::Pod;
    pod.pod_env = vec![EnvVar::plain("SECRETS_MANAGER", "aws")];
    vec![full_config(), BuildConfig::default(), pod]
}

#[test]
fn built_objects_match_the_crds_and_swagger() {
    let Some(s) = load() else { return };
    let svc = fixture("service_mysql.json");
    let mut checked = 0;
    for bc in configs() {
        for p in ["pipeline_metadata.json", "pipeline_profiler.json"] {
            let pipeline = fixture(p);
            let run = build_run_workflow(
                &bc,
                &RunRequest {
                    pipeline: &pipeline,
                    service: Some(&svc),
                    run_id: "run-1",
                    overrides: None,
                },
            )
            .unwrap();
            let wf = serde_json::to_value(&run.workflow).unwrap();
            let e = s.wf_crd.validate(&wf);
            assert!(e.is_empty(), "{p}: Workflow CRD: {e:#?}");
            let body = json!({"namespace": bc.namespace, "workflow": wf});
            let e = s
                .swagger
                .validate("io.argoproj.workflow.v1alpha1.WorkflowCreateRequest", &body);
            assert!(e.is_empty(), "{p}: swagger: {e:#?}");
            let cron = build_cron_workflow(&bc, &pipeline, Some(&svc))
                .unwrap()
                .unwrap();
            let cw = serde_json::to_value(&cron.cron_workflow).unwrap();
            let e = s.cron_crd.validate(&cw);
            assert!(e.is_empty(), "{p}: CronWorkflow CRD: {e:#?}");
            let body = json!({"namespace": bc.namespace, "cronWorkflow": cw});
            let e = s.swagger.validate(
                "io.argoproj.workflow.v1alpha1.CreateCronWorkflowRequest",
                &body,
            );
            assert!(e.is_empty(), "{p}: swagger: {e:#?}");
            checked += 4;
        }
        let a = build_automation_workflow(&bc, &fixture("automation_test_connection.json"), "r-2");
        if let Ok(a) = a {
            let e = s
                .wf_crd
                .validate(&serde_json::to_value(&a.workflow).unwrap());
            assert!(e.is_empty(), "automation: {e:#?}");
            checked += 1;
        }
    }
    assert!(checked >= 24, "{checked}");
}

#[test]
fn the_validators_catch_what_argo_rejects() {
    let Some(s) = load() else { return };
    let bc = full_config();
    let pipeline = fixture("pipeline_metadata.json");
    let svc = fixture("service_mysql.json");
    let cron = build_cron_workflow(&bc, &pipeline, Some(&svc))
        .unwrap()
        .unwrap();
    let mut cw = serde_json::to_value(&cron.cron_workflow).unwrap();
    // Argo 4 removed `spec.schedule`
    cw["spec"]["schedule"] = json!("0 0 * * *");
    let e = s.cron_crd.validate(&cw);
    assert!(
        e.iter().any(|x| x.contains("spec.schedule: unknown field")),
        "{e:?}"
    );
    let e = s.swagger.validate(
        "io.argoproj.workflow.v1alpha1.CreateCronWorkflowRequest",
        &json!({"cronWorkflow": cw}),
    );
    assert!(
        e.iter()
            .any(|x| x.contains("cronWorkflow.spec.schedule: unknown field")),
        "{e:?}"
    );
    // a wrong type deep inside, and a misspelt field (podGc instead of podGC)
    let run = build_run_workflow(
        &bc,
        &RunRequest {
            pipeline: &pipeline,
            service: Some(&svc),
            run_id: "r",
            overrides: None,
        },
    )
    .unwrap();
    let mut wf = serde_json::to_value(&run.workflow).unwrap();
    wf["spec"]["activeDeadlineSeconds"] = json!("7200");
    wf["spec"]["podGc"] = wf["spec"]["podGC"].take();
    wf["spec"].as_object_mut().unwrap().remove("podGC");
    let e = s.wf_crd.validate(&wf);
    assert!(
        e.iter()
            .any(|x| x.contains("spec.activeDeadlineSeconds: expected integer")),
        "{e:?}"
    );
    assert!(
        e.iter().any(|x| x.contains("spec.podGc: unknown field")),
        "{e:?}"
    );
    // IntOrString accepts both forms in both definitions
    wf["spec"]["activeDeadlineSeconds"] = json!(7200);
    wf["spec"].as_object_mut().unwrap().remove("podGc");
    for limit in [json!(3), json!("3")] {
        wf["spec"]["templates"][0]["retryStrategy"]["limit"] = limit.clone();
        assert!(s.wf_crd.validate(&wf).is_empty(), "{limit}");
        let e = s
            .swagger
            .validate("io.argoproj.workflow.v1alpha1.Workflow", &wf);
        assert!(e.is_empty(), "{limit}: {e:?}");
    }
    wf["spec"]["templates"][0]["retryStrategy"]["limit"] = json!(true);
    assert!(!s.wf_crd.validate(&wf).is_empty());
    // required fields
    let e = s.swagger.validate(
        "io.argoproj.workflow.v1alpha1.Workflow",
        &json!({"metadata": {}}),
    );
    assert!(
        e.iter().any(|x| x.contains("required field `spec`")),
        "{e:?}"
    );
    let realistic: Value = fixture("server_workflow.json");
    let mut realistic = realistic;
    realistic["spec"]
        .as_object_mut()
        .unwrap()
        .remove("someFutureField");
    let e = s.wf_crd.validate(&realistic);
    assert!(e.is_empty(), "a server-shaped workflow validates: {e:?}");
}
