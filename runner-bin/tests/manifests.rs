//! The Kubernetes manifests under `deploy/kubernetes`, checked as Kubernetes would read them.
//!
//! Every YAML document is decoded into its `k8s-openapi` type (ServiceMonitor, a CRD, as plain
//! YAML) and re-encoded: a field the type does not know (a typo Kubernetes would drop, or reject
//! with `--validate=strict`) fails. Then what operators rely on is checked: a non-root,
//! read-only, unprivileged container; probes on the health server; tokens from Secrets only;
//! and RBAC that grants exactly what the code calls. The expected RBAC is derived from the
//! sources: the `kube::Api` calls of `runner-core` and `runner-secrets`, and the Argo client
//! calls of the Argo executor mapped to what each Argo Server endpoint does in Kubernetes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{
    Container, EnvVar, PodSpec, Probe, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_yaml_ng::Value;

const DEPLOY_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/kubernetes");
const WORKSPACE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

const HEALTH_PORT: i32 = 8585;
const METRICS_PORT: i32 = 8989;
/// `DRAIN_GRACE_SECONDS`' default (docs/configuration.md).
const DEFAULT_DRAIN_GRACE_SECONDS: i64 = 30;
const NAME_LABEL: &str = "app.kubernetes.io/name";

/// `(apiGroup, resource, verb)`.
type Perm = (String, String, String);

/// Where a document comes from and what it is.
struct Meta {
    file: String,
    kind: String,
    name: String,
    namespace: Option<String>,
    labels: BTreeMap<String, String>,
}

/// Every object of the folder, by kind.
#[derive(Default)]
struct Manifests {
    deployments: Vec<(String, Deployment)>,
    service_accounts: Vec<(String, ServiceAccount)>,
    secrets: Vec<(String, Secret)>,
    roles: Vec<(String, Role)>,
    role_bindings: Vec<(String, RoleBinding)>,
    network_policies: Vec<(String, NetworkPolicy)>,
    pdbs: Vec<(String, PodDisruptionBudget)>,
    services: Vec<(String, Service)>,
    service_monitors: Vec<(String, Value)>,
    /// Every document's identity, for the checks common to all.
    metadata: Vec<Meta>,
}

/// Decodes `doc` into `T` and checks that nothing was lost on the way: the re-encoded object must
/// equal the document, so every field of the YAML is one the type knows.
fn decode<T>(file: &str, kind: &str, doc: &Value) -> T
where
    T: DeserializeOwned + serde::Serialize,
{
    let typed: T = serde_yaml_ng::from_value(doc.clone())
        .unwrap_or_else(|e| panic!("{file}: {kind} does not decode as k8s-openapi's type: {e}"));
    let original = serde_json::to_value(doc).expect("YAML to JSON");
    let round = serde_json::to_value(&typed).expect("typed to JSON");
    if let Some(path) = first_difference(&original, &round, String::new()) {
        panic!(
            "{file}: {kind} has a field k8s-openapi does not know or reads differently at `{path}` (a typo?)"
        );
    }
    typed
}

/// The path of the first difference between two JSON values, if any.
fn first_difference(a: &serde_json::Value, b: &serde_json::Value, path: String) -> Option<String> {
    use serde_json::Value as J;
    match (a, b) {
        (J::Object(x), J::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|k| match (x.get(k), y.get(k)) {
                (Some(p), Some(q)) => first_difference(p, q, format!("{path}.{k}")),
                _ => Some(format!("{path}.{k}")),
            })
        }
        (J::Array(x), J::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (p, q))| first_difference(p, q, format!("{path}[{i}]"))),
        _ if a == b => None,
        _ => Some(if path.is_empty() { ".".into() } else { path }),
    }
}

fn load() -> Manifests {
    let mut files: Vec<_> = std::fs::read_dir(DEPLOY_DIR)
        .unwrap_or_else(|e| panic!("{DEPLOY_DIR}: {e}"))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no YAML file under {DEPLOY_DIR}");
    let mut m = Manifests::default();
    for path in files {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).expect("readable manifest");
        for de in serde_yaml_ng::Deserializer::from_str(&text) {
            let doc = Value::deserialize(de).unwrap_or_else(|e| panic!("{file}: not YAML: {e}"));
            if doc.is_null() {
                continue; // an empty document (comments only)
            }
            let api_version = doc["apiVersion"].as_str().unwrap_or_default().to_owned();
            let kind = doc["kind"].as_str().unwrap_or_default().to_owned();
            let name = doc["metadata"]["name"]
                .as_str()
                .unwrap_or_else(|| panic!("{file}: a {kind} without metadata.name"))
                .to_owned();
            let namespace = doc["metadata"]["namespace"].as_str().map(str::to_owned);
            let labels: BTreeMap<String, String> =
                serde_yaml_ng::from_value(doc["metadata"]["labels"].clone()).unwrap_or_default();
            m.metadata.push(Meta {
                file: file.clone(),
                kind: kind.clone(),
                name: name.clone(),
                namespace,
                labels,
            });
            let at = format!("{file} ({kind} {name})");
            match (api_version.as_str(), kind.as_str()) {
                ("apps/v1", "Deployment") => m.deployments.push((at, decode(&file, &kind, &doc))),
                ("v1", "ServiceAccount") => {
                    m.service_accounts.push((at, decode(&file, &kind, &doc)))
                }
                ("v1", "Secret") => m.secrets.push((at, decode(&file, &kind, &doc))),
                ("v1", "Service") => m.services.push((at, decode(&file, &kind, &doc))),
                ("rbac.authorization.k8s.io/v1", "Role") => {
                    m.roles.push((at, decode(&file, &kind, &doc)))
                }
                ("rbac.authorization.k8s.io/v1", "RoleBinding") => {
                    m.role_bindings.push((at, decode(&file, &kind, &doc)))
                }
                ("networking.k8s.io/v1", "NetworkPolicy") => {
                    m.network_policies.push((at, decode(&file, &kind, &doc)))
                }
                ("policy/v1", "PodDisruptionBudget") => {
                    m.pdbs.push((at, decode(&file, &kind, &doc)))
                }
                ("monitoring.coreos.com/v1", "ServiceMonitor") => {
                    m.service_monitors.push((at, doc))
                }
                _ => panic!(
                    "{file}: unexpected {api_version} {kind} `{name}`: add it to this test with its checks (a ClusterRole, say, is not least privilege)"
                ),
            }
        }
    }
    m
}

// ------------------------------------------------------------------------------ the runner pod

fn runner(m: &Manifests) -> (&str, &Deployment, &PodSpec, &Container) {
    assert_eq!(
        m.deployments.len(),
        1,
        "exactly one Deployment (the runner)"
    );
    let (at, d) = &m.deployments[0];
    let pod = d
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .unwrap_or_else(|| panic!("{at}: no pod spec"));
    assert_eq!(pod.containers.len(), 1, "{at}: one container, the runner");
    (at, d, pod, &pod.containers[0])
}

fn env<'a>(c: &'a Container, name: &str) -> Option<&'a EnvVar> {
    c.env.iter().flatten().find(|e| e.name == name)
}

fn env_value<'a>(c: &'a Container, name: &str) -> Option<&'a str> {
    env(c, name).and_then(|e| e.value.as_deref())
}

/// The port number an `IntOrString` names in `c`.
fn port_number(c: &Container, port: &IntOrString) -> i32 {
    match port {
        IntOrString::Int(n) => *n,
        IntOrString::String(name) => c
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some(name.as_str()))
            .map(|p| p.container_port)
            .unwrap_or_else(|| panic!("no container port named `{name}`")),
    }
}

fn http_probe(c: &Container, probe: Option<&Probe>, what: &str) -> (String, i32) {
    let get = probe
        .and_then(|p| p.http_get.as_ref())
        .unwrap_or_else(|| panic!("the runner needs an HTTP {what}"));
    (
        get.path.clone().unwrap_or_default(),
        port_number(c, &get.port),
    )
}

fn pod_labels(d: &Deployment) -> BTreeMap<String, String> {
    d.spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default()
}

fn selects(selector: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    !selector.is_empty()
        && selector
            .iter()
            .all(|(k, v)| labels.get(k).is_some_and(|l| l == v))
}

#[test]
fn every_object_is_namespace_agnostic_and_labelled() {
    let m = load();
    for Meta {
        file,
        kind,
        name,
        namespace,
        labels,
    } in &m.metadata
    {
        assert!(
            namespace.is_none(),
            "{file}: {kind} {name} sets metadata.namespace; the manifests are applied with `kubectl apply -n`"
        );
        assert!(
            labels.contains_key(NAME_LABEL),
            "{file}: {kind} {name} has no {NAME_LABEL} label"
        );
    }
    let mut seen = BTreeSet::new();
    for Meta { kind, name, .. } in &m.metadata {
        assert!(seen.insert((kind, name)), "{kind} {name} is defined twice");
    }
}

#[test]
fn the_runner_runs_unprivileged_on_a_read_only_root() {
    let m = load();
    let (at, d, pod, c) = runner(&m);
    let psc = pod.security_context.clone().unwrap_or_default();
    let csc = c
        .security_context
        .clone()
        .unwrap_or_else(|| panic!("{at}: the container has no securityContext"));
    assert!(
        csc.run_as_non_root == Some(true)
            || (csc.run_as_non_root.is_none() && psc.run_as_non_root == Some(true)),
        "{at}: runAsNonRoot must be true"
    );
    for uid in [csc.run_as_user, psc.run_as_user].into_iter().flatten() {
        assert_ne!(uid, 0, "{at}: runAsUser 0 is root");
    }
    assert_eq!(
        csc.read_only_root_filesystem,
        Some(true),
        "{at}: readOnlyRootFilesystem"
    );
    assert_eq!(
        csc.allow_privilege_escalation,
        Some(false),
        "{at}: allowPrivilegeEscalation must be false"
    );
    assert_ne!(csc.privileged, Some(true), "{at}: privileged");
    let caps = csc.capabilities.clone().unwrap_or_default();
    assert!(
        caps.drop.iter().flatten().any(|c| c == "ALL"),
        "{at}: capabilities must drop ALL"
    );
    assert!(
        caps.add.unwrap_or_default().is_empty(),
        "{at}: no added capability"
    );
    let seccomp = csc.seccomp_profile.or(psc.seccomp_profile).map(|s| s.type_);
    assert_eq!(seccomp.as_deref(), Some("RuntimeDefault"), "{at}: seccomp");
    for (flag, what) in [
        (pod.host_network, "hostNetwork"),
        (pod.host_pid, "hostPID"),
        (pod.host_ipc, "hostIPC"),
    ] {
        assert_ne!(flag, Some(true), "{at}: {what}");
    }
    // Read-only root: the one writable place is /tmp, an emptyDir.
    let tmp = c
        .volume_mounts
        .iter()
        .flatten()
        .find(|v| v.mount_path == "/tmp")
        .unwrap_or_else(|| panic!("{at}: mount an emptyDir on /tmp (TMPDIR)"));
    let volume = pod
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name == tmp.name)
        .unwrap_or_else(|| panic!("{at}: no volume `{}`", tmp.name));
    assert!(volume.empty_dir.is_some(), "{at}: /tmp is an emptyDir");
    for v in pod.volumes.iter().flatten() {
        assert!(v.host_path.is_none(), "{at}: hostPath volume `{}`", v.name);
    }
    // Bounded.
    let res = c.resources.clone().unwrap_or_default();
    assert!(
        res.requests
            .as_ref()
            .is_some_and(|r| r.contains_key("cpu") && r.contains_key("memory")),
        "{at}: cpu and memory requests"
    );
    assert!(
        res.limits
            .as_ref()
            .is_some_and(|l| l.contains_key("memory")),
        "{at}: a memory limit"
    );
    // One runner per AGENT_ID (a second one is refused with duplicate_agent): no surge.
    let spec = d.spec.as_ref().unwrap();
    assert_eq!(spec.replicas, Some(1), "{at}: one replica per AGENT_ID");
    assert_eq!(
        spec.strategy.as_ref().and_then(|s| s.type_.as_deref()),
        Some("Recreate"),
        "{at}: Recreate, so the old runner drains before the new one connects"
    );
}

#[test]
fn probes_ports_and_drain_fit_the_binary() {
    let m = load();
    let (at, _, pod, c) = runner(&m);
    let ports: BTreeSet<i32> = c.ports.iter().flatten().map(|p| p.container_port).collect();
    assert_eq!(
        ports,
        BTreeSet::from([HEALTH_PORT, METRICS_PORT]),
        "{at}: container ports"
    );
    assert_eq!(
        http_probe(c, c.liveness_probe.as_ref(), "livenessProbe"),
        ("/healthz".to_owned(), HEALTH_PORT),
        "{at}: liveness"
    );
    assert_eq!(
        http_probe(c, c.readiness_probe.as_ref(), "readinessProbe"),
        ("/readyz".to_owned(), HEALTH_PORT),
        "{at}: readiness"
    );
    if c.startup_probe.is_some() {
        assert_eq!(
            http_probe(c, c.startup_probe.as_ref(), "startupProbe"),
            ("/healthz".to_owned(), HEALTH_PORT),
            "{at}: startup"
        );
    }
    // The binds, when set, must be the ports above.
    for (var, port) in [("HEALTH_BIND", HEALTH_PORT), ("METRICS_BIND", METRICS_PORT)] {
        if let Some(bind) = env_value(c, var) {
            assert!(bind.ends_with(&format!(":{port}")), "{at}: {var}={bind}");
        }
    }
    let drain = env_value(c, "DRAIN_GRACE_SECONDS")
        .map(|v| v.parse::<i64>().expect("DRAIN_GRACE_SECONDS is a number"))
        .unwrap_or(DEFAULT_DRAIN_GRACE_SECONDS);
    let grace = pod.termination_grace_period_seconds.unwrap_or(30);
    assert!(
        grace > drain,
        "{at}: terminationGracePeriodSeconds ({grace}) must exceed DRAIN_GRACE_SECONDS ({drain}), or the kubelet kills the drain"
    );
    let entry = c.args.clone().unwrap_or_default();
    assert!(
        entry.is_empty() || entry == ["run"],
        "{at}: the container runs `ingestion-runner run`"
    );
}

#[test]
fn env_follows_the_vendor_contract_and_tokens_come_from_secrets() {
    let m = load();
    let (at, _, pod, c) = runner(&m);
    let documented = std::fs::read_to_string(format!("{WORKSPACE}/docs/configuration.md"))
        .expect("docs/configuration.md");
    for e in c.env.iter().flatten() {
        assert!(
            documented.contains(&format!("`{}`", e.name)),
            "{at}: env {} is not a setting of the runner (docs/configuration.md)",
            e.name
        );
        let sensitive = [
            "TOKEN",
            "PASSWORD",
            "SECRET_KEY",
            "ACCESS_KEY",
            "CLIENT_SECRET",
        ]
        .iter()
        .any(|s| e.name.ends_with(s));
        if sensitive {
            assert!(
                e.value.is_none(),
                "{at}: {} holds a literal value; take it from a Secret (secretKeyRef)",
                e.name
            );
        }
    }
    // The control plane token: from a Secret, or a file mounted from one.
    for (var, file_var) in [
        ("AUTH_TOKEN", "AUTH_TOKEN_FILE"),
        ("ARGO_TOKEN", "ARGO_TOKEN_FILE"),
    ] {
        match (env(c, var), env_value(c, file_var)) {
            (Some(e), _) => {
                assert!(e.value.is_none(), "{at}: {var} has a `value`");
                assert!(
                    e.value_from
                        .as_ref()
                        .and_then(|v| v.secret_key_ref.as_ref())
                        .is_some(),
                    "{at}: {var} must come from a secretKeyRef"
                );
            }
            (None, Some(path)) => {
                secret_behind_file(pod, c, path)
                    .unwrap_or_else(|| panic!("{at}: {file_var}={path} is not in a Secret volume"));
            }
            (None, None) => panic!("{at}: neither {var} nor {file_var} is set"),
        }
    }
    // What the vendor chart sets, for the Argo executor.
    for var in [
        "AGENT_ID",
        "SERVER_URL",
        "EXECUTOR_TYPE",
        "PIPELINE_SERVICE_CLIENT_ENDPOINT",
        "INGESTION_IMAGE",
        "INGESTION_NAMESPACE",
        "SECRETS_MANAGER",
    ] {
        assert!(env(c, var).is_some(), "{at}: {var} is not set");
    }
    assert_eq!(
        env_value(c, "EXECUTOR_TYPE"),
        Some("argo"),
        "{at}: EXECUTOR_TYPE"
    );
    assert!(
        env_value(c, "SERVER_URL").is_some_and(|u| u.starts_with("wss://")),
        "{at}: SERVER_URL must be wss://"
    );
    // Runs are labelled with AGENT_ID: a stable literal, so a new pod re-attaches to them.
    assert!(
        env_value(c, "AGENT_ID").is_some_and(|a| !a.is_empty()),
        "{at}: AGENT_ID must be a fixed value (the pod name changes at every restart)"
    );
    let image = env_value(c, "INGESTION_IMAGE").unwrap_or_default();
    assert!(
        image.contains(':') || image.contains('@'),
        "{at}: INGESTION_IMAGE `{image}` should pin a tag or digest"
    );
}

/// The Secret a file path is read from (`*_TOKEN_FILE`), through the container's mounts.
fn secret_behind_file(pod: &PodSpec, c: &Container, path: &str) -> Option<String> {
    let mount = c
        .volume_mounts
        .iter()
        .flatten()
        .find(|v| Path::new(path).starts_with(&v.mount_path))?;
    pod.volumes
        .iter()
        .flatten()
        .find(|v| v.name == mount.name)?
        .secret
        .as_ref()?
        .secret_name
        .clone()
}

#[test]
fn committed_secrets_hold_no_value() {
    let m = load();
    for (at, s) in &m.secrets {
        assert!(
            s.data.as_ref().is_none_or(|d| d.is_empty())
                && s.string_data.as_ref().is_none_or(|d| d.is_empty()),
            "{at}: a committed Secret holds values"
        );
        assert_eq!(
            s.type_.as_deref(),
            Some("kubernetes.io/service-account-token"),
            "{at}: only service-account token Secrets (filled in by Kubernetes) belong here"
        );
    }
}

#[test]
fn service_monitor_and_network_policy_expose_only_health_and_metrics() {
    let m = load();
    let (at, d, _, c) = runner(&m);
    let labels = pod_labels(d);

    assert_eq!(m.services.len(), 1, "one Service");
    let (sat, svc) = &m.services[0];
    let spec = svc.spec.as_ref().expect("service spec");
    assert!(
        selects(&spec.selector.clone().unwrap_or_default(), &labels),
        "{sat}: the selector does not match the runner pod"
    );
    assert!(
        matches!(spec.type_.as_deref(), None | Some("ClusterIP")),
        "{sat}: ClusterIP only: nothing outside the cluster reaches the runner"
    );
    let mut service_ports = BTreeMap::new();
    for p in spec.ports.iter().flatten() {
        let target = p.target_port.clone().unwrap_or(IntOrString::Int(p.port));
        service_ports.insert(
            p.name.clone().unwrap_or_default(),
            (p.port, port_number(c, &target)),
        );
    }
    let targets: BTreeSet<i32> = service_ports.values().map(|(_, t)| *t).collect();
    assert_eq!(
        targets,
        BTreeSet::from([HEALTH_PORT, METRICS_PORT]),
        "{sat}: ports"
    );

    assert_eq!(m.service_monitors.len(), 1, "one ServiceMonitor");
    let (mat, sm) = &m.service_monitors[0];
    let selector: BTreeMap<String, String> =
        serde_yaml_ng::from_value(sm["spec"]["selector"]["matchLabels"].clone())
            .unwrap_or_else(|e| panic!("{mat}: spec.selector.matchLabels: {e}"));
    let svc_labels = svc.metadata.labels.clone().unwrap_or_default();
    assert!(
        selects(&selector, &svc_labels),
        "{mat}: does not select the Service"
    );
    let endpoints = sm["spec"]["endpoints"]
        .as_sequence()
        .unwrap_or_else(|| panic!("{mat}: no spec.endpoints"));
    assert_eq!(endpoints.len(), 1, "{mat}: one endpoint");
    let port = endpoints[0]["port"].as_str().unwrap_or_default();
    assert_eq!(
        service_ports.get(port).map(|(_, t)| *t),
        Some(METRICS_PORT),
        "{mat}: endpoint port `{port}` must be the Service port of {METRICS_PORT}"
    );
    assert_eq!(
        endpoints[0]["path"].as_str(),
        Some("/metrics"),
        "{mat}: path"
    );

    assert_eq!(m.network_policies.len(), 1, "one NetworkPolicy");
    let (nat, np) = &m.network_policies[0];
    let spec = np.spec.as_ref().expect("policy spec");
    assert!(
        selects(
            &spec
                .pod_selector
                .clone()
                .unwrap_or_default()
                .match_labels
                .unwrap_or_default(),
            &labels
        ),
        "{nat}: does not select the runner pod"
    );
    let types: BTreeSet<&str> = spec
        .policy_types
        .iter()
        .flatten()
        .map(String::as_str)
        .collect();
    assert_eq!(
        types,
        BTreeSet::from(["Ingress", "Egress"]),
        "{nat}: policyTypes"
    );
    for rule in spec.ingress.iter().flatten() {
        assert!(
            rule.from.as_ref().is_some_and(|f| !f.is_empty()),
            "{nat}: an ingress rule open to every source"
        );
        let ports: BTreeSet<i32> = rule
            .ports
            .iter()
            .flatten()
            .map(|p| port_number(c, p.port.as_ref().expect("ingress port")))
            .collect();
        assert!(
            !ports.is_empty() && ports.is_subset(&BTreeSet::from([HEALTH_PORT, METRICS_PORT])),
            "{nat}: ingress only to {HEALTH_PORT}/{METRICS_PORT}, got {ports:?}"
        );
    }
    let egress_ports: BTreeSet<(String, i32)> = spec
        .egress
        .iter()
        .flatten()
        .flat_map(|r| r.ports.iter().flatten())
        .filter_map(|p| match &p.port {
            Some(IntOrString::Int(n)) => {
                Some((p.protocol.clone().unwrap_or_else(|| "TCP".into()), *n))
            }
            _ => None,
        })
        .collect();
    assert!(
        spec.egress
            .iter()
            .flatten()
            .all(|r| r.ports.as_ref().is_some_and(|p| !p.is_empty())),
        "{nat}: every egress rule names its ports"
    );
    let argo = env_value(c, "PIPELINE_SERVICE_CLIENT_ENDPOINT").unwrap_or_default();
    let argo_port: i32 = argo
        .rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse().ok())
        .unwrap_or(if argo.starts_with("https") { 443 } else { 80 });
    for (proto, port, what) in [
        ("UDP", 53, "DNS"),
        ("TCP", argo_port, "the Argo Server"),
        (
            "TCP",
            443,
            "the control plane (wss://) and the secrets manager",
        ),
    ] {
        assert!(
            egress_ports.contains(&(proto.to_owned(), port)),
            "{nat}: no egress to {what} ({proto} {port}); {at} needs it"
        );
    }

    assert_eq!(m.pdbs.len(), 1, "one PodDisruptionBudget");
    let (pat, pdb) = &m.pdbs[0];
    let spec = pdb.spec.as_ref().expect("pdb spec");
    assert!(
        selects(
            &spec
                .selector
                .clone()
                .unwrap_or_default()
                .match_labels
                .unwrap_or_default(),
            &labels
        ),
        "{pat}: does not select the runner pod"
    );
    // A single replica: `minAvailable: 1` would block every node drain forever.
    let blocks = match &spec.min_available {
        Some(IntOrString::Int(n)) => *n >= 1,
        Some(IntOrString::String(s)) => s != "0%",
        None => matches!(spec.max_unavailable, Some(IntOrString::Int(0))),
    };
    assert!(
        !blocks,
        "{pat}: with one replica this budget would block node drains"
    );
}

// ------------------------------------------------------------------------------------- RBAC

/// Source text without `//` comment lines and without whitespace, so calls split over lines
/// read as one token stream.
fn code(relative: &str) -> String {
    let text = std::fs::read_to_string(format!("{WORKSPACE}/{relative}"))
        .unwrap_or_else(|e| panic!("{relative}: {e}"));
    let text = text.split("#[cfg(test)]").next().unwrap_or_default();
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .flat_map(|l| l.chars())
        .filter(|c| !c.is_whitespace())
        .collect()
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Methods called on `receiver` (`receiver.m(` or `receiver(arg).m(`), where `receiver` is
/// not the tail of a longer identifier.
fn calls_on(src: &str, receiver: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in src.match_indices(receiver) {
        if src[..i].chars().next_back().is_some_and(is_ident) {
            continue;
        }
        let mut rest = &src[i + receiver.len()..];
        if let Some(args) = rest.strip_prefix('(') {
            let Some(close) = args.find(')') else {
                continue;
            };
            rest = &args[close + 1..];
        }
        let Some(rest) = rest.strip_prefix('.') else {
            continue;
        };
        let method: String = rest.chars().take_while(|c| is_ident(*c)).collect();
        if !method.is_empty() && rest[method.len()..].starts_with(['(', ':']) {
            out.insert(method);
        }
    }
    out
}

/// Free function calls `name(` in `src`.
fn calls_fn(src: &str, name: &str) -> bool {
    src.match_indices(&format!("{name}("))
        .any(|(i, _)| !src[..i].chars().next_back().is_some_and(is_ident))
}

fn perms(group: &str, resource: &str, verbs: &[&str]) -> BTreeSet<Perm> {
    verbs
        .iter()
        .map(|v| (group.to_owned(), resource.to_owned(), (*v).to_owned()))
        .collect()
}

/// The Kubernetes verb of each `kube::Api` method.
fn kube_verb(method: &str) -> Option<&'static str> {
    Some(match method {
        "create" => "create",
        "get" | "get_opt" | "get_metadata" | "get_metadata_opt" => "get",
        "list" | "list_metadata" => "list",
        "watch" | "watch_metadata" => "watch",
        "replace" => "update",
        "patch" | "patch_metadata" => "patch",
        "delete" => "delete",
        "delete_collection" => "deletecollection",
        _ => return None,
    })
}

/// What each runner-argo client call makes the Argo Server do in Kubernetes, with the token's
/// identity (argo-server `--auth-mode=client`). Read from argo-workflows' `server/workflow`,
/// `server/cronworkflow` and `util/logs`: get-and-validate before delete/stop/terminate,
/// stop/terminate merge-patch `spec.shutdown`, suspend/resume merge-patch `spec.suspend`,
/// logs get the workflow, list + watch its pods and read `pods/log`.
fn argo_perms(method: &str) -> Option<BTreeSet<Perm>> {
    let wf = |v: &[&str]| perms("argoproj.io", "workflows", v);
    let cwf = |v: &[&str]| perms("argoproj.io", "cronworkflows", v);
    Some(match method {
        "version" | "endpoint" | "clone" => BTreeSet::new(),
        "create_workflow" => wf(&["create"]),
        "create_workflow_idempotent" => wf(&["create", "get"]),
        "get_workflow" => wf(&["get"]),
        "list_workflows" => wf(&["list"]),
        "watch_workflows" | "watch_workflows_as" => wf(&["watch"]),
        "delete_workflow" => wf(&["get", "delete"]),
        "delete_workflows_by_label" => wf(&["list", "get", "delete"]),
        "stop_workflow" | "terminate_workflow" | "stop_then_terminate" => wf(&["get", "patch"]),
        "create_cron_workflow" => cwf(&["create"]),
        "get_cron_workflow" => cwf(&["get"]),
        "list_cron_workflows" => cwf(&["list"]),
        "update_cron_workflow" => cwf(&["get", "update"]),
        "apply_cron_workflow" => cwf(&["create", "get", "update"]),
        "delete_cron_workflow" => cwf(&["get", "delete"]),
        "suspend_cron_workflow" | "resume_cron_workflow" => cwf(&["patch"]),
        "workflow_logs" | "workflow_logs_as" => {
            let mut p = wf(&["get"]);
            p.extend(perms("", "pods", &["list", "watch"]));
            p.extend(perms("", "pods/log", &["get"]));
            p
        }
        _ => return None,
    })
}

/// The Kubernetes permissions the runner's own identity uses: the `kube::Api<Secret>` calls of
/// the config Secrets (Argo executor) and of the Kubernetes secrets provider.
fn runner_identity_needs() -> BTreeSet<Perm> {
    let mut need = BTreeSet::new();
    for file in [
        "runner-core/src/executor/argo.rs",
        "runner-secrets/src/providers/kubernetes.rs",
    ] {
        let src = code(file);
        for (i, _) in src.match_indices("Api<") {
            let ty: String = src[i + 4..].chars().take_while(|c| *c != '>').collect();
            assert!(
                ty.ends_with("Secret"),
                "{file}: a kube::Api<{ty}>: add its resource to this test and to deploy/kubernetes"
            );
        }
        let methods = calls_on(&src, "api");
        assert!(
            !methods.is_empty(),
            "{file}: no kube::Api call found; the scan is stale"
        );
        for method in methods {
            let verb = kube_verb(&method).unwrap_or_else(|| {
                panic!("{file}: `api.{method}(`: unknown kube::Api method; map it to its verb here")
            });
            need.insert((String::new(), "secrets".to_owned(), verb.to_owned()));
        }
    }
    need
}

/// The permissions the Argo token's identity needs for what the Argo executor calls.
fn argo_identity_needs() -> BTreeSet<Perm> {
    let mut need = BTreeSet::new();
    // The Argo executor, and `ingestion-runner check`, which runs in the same pod with the same
    // ARGO_TOKEN (its RBAC rows must not fail on a correct install).
    for file in [
        "runner-core/src/executor/argo.rs",
        "runner-bin/src/check.rs",
    ] {
        let src = code(file);
        let mut methods = calls_on(&src, "client");
        assert!(
            methods.contains("list_workflows") || methods.contains("create_workflow_idempotent"),
            "{file}: the Argo client calls were not found; the scan is stale"
        );
        if calls_fn(&src, "informer") {
            // runner-argo's informer: list, then watch (`/workflow-events`).
            methods.extend(["list_workflows".to_owned(), "watch_workflows".to_owned()]);
        }
        for method in methods {
            need.extend(argo_perms(&method).unwrap_or_else(|| {
                panic!(
                    "{file}: `client.{method}(`: say in argo_perms what it makes the Argo Server do"
                )
            }));
        }
    }
    need
}

/// Argo's executor in every workflow pod: write the step's results (Argo >= 3.4).
fn workflow_pod_needs() -> BTreeSet<Perm> {
    perms("argoproj.io", "workflowtaskresults", &["create", "patch"])
}

/// What the RBAC objects grant, per service account.
fn granted(m: &Manifests) -> BTreeMap<String, BTreeSet<Perm>> {
    let accounts: BTreeSet<String> = m
        .service_accounts
        .iter()
        .map(|(_, sa)| sa.metadata.name.clone().unwrap_or_default())
        .collect();
    let roles: BTreeMap<String, (&String, &Role)> = m
        .roles
        .iter()
        .map(|(at, r)| (r.metadata.name.clone().unwrap_or_default(), (at, r)))
        .collect();
    let mut bound = BTreeSet::new();
    let mut out: BTreeMap<String, BTreeSet<Perm>> = BTreeMap::new();
    for (at, rb) in &m.role_bindings {
        assert_eq!(
            rb.role_ref.kind, "Role",
            "{at}: bind a Role, not a ClusterRole"
        );
        assert_eq!(
            rb.role_ref.api_group, "rbac.authorization.k8s.io",
            "{at}: roleRef.apiGroup"
        );
        let (rat, role) = roles
            .get(&rb.role_ref.name)
            .unwrap_or_else(|| panic!("{at}: binds Role `{}`, not defined", rb.role_ref.name));
        bound.insert(rb.role_ref.name.clone());
        let subjects = rb.subjects.clone().unwrap_or_default();
        assert!(!subjects.is_empty(), "{at}: no subject");
        for s in subjects {
            assert_eq!(
                s.kind, "ServiceAccount",
                "{at}: subject {} is a {}",
                s.name, s.kind
            );
            assert!(
                accounts.contains(&s.name),
                "{at}: ServiceAccount `{}` is not defined here",
                s.name
            );
            let set = out.entry(s.name.clone()).or_default();
            for rule in role.rules.iter().flatten() {
                assert!(rule.non_resource_urls.is_none(), "{rat}: nonResourceURLs");
                let groups = rule.api_groups.clone().unwrap_or_default();
                let resources = rule.resources.clone().unwrap_or_default();
                assert!(
                    !groups.is_empty() && !resources.is_empty(),
                    "{rat}: an empty rule"
                );
                for g in &groups {
                    for r in &resources {
                        for v in &rule.verbs {
                            set.insert((g.clone(), r.clone(), v.clone()));
                        }
                    }
                }
            }
        }
    }
    for name in roles.keys() {
        assert!(bound.contains(name), "Role `{name}` is bound to nobody");
    }
    out
}

/// The service account whose token a `*_TOKEN` env var carries.
fn token_account(m: &Manifests, pod: &PodSpec, c: &Container, var: &str) -> String {
    let secret = match env(c, var) {
        Some(e) => e
            .value_from
            .as_ref()
            .and_then(|v| v.secret_key_ref.as_ref())
            .map(|r| r.name.clone()),
        None => env_value(c, &format!("{var}_FILE")).and_then(|p| secret_behind_file(pod, c, p)),
    }
    .unwrap_or_else(|| panic!("{var} is not read from a Secret"));
    let (at, s) = m
        .secrets
        .iter()
        .find(|(_, s)| s.metadata.name.as_deref() == Some(secret.as_str()))
        .unwrap_or_else(|| {
            panic!("{var} reads Secret `{secret}`, which is not a token Secret defined here")
        });
    s.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("kubernetes.io/service-account.name"))
        .cloned()
        .unwrap_or_else(|| panic!("{at}: no kubernetes.io/service-account.name annotation"))
}

fn show(set: &BTreeSet<Perm>) -> String {
    set.iter()
        .map(|(g, r, v)| {
            format!(
                "{v} {r}{}",
                if g.is_empty() {
                    String::new()
                } else {
                    format!(".{g}")
                }
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[test]
fn rbac_grants_exactly_what_the_code_calls() {
    let m = load();
    let (at, _, pod, c) = runner(&m);
    let runner_sa = pod
        .service_account_name
        .clone()
        .unwrap_or_else(|| panic!("{at}: set serviceAccountName"));
    let argo_sa = token_account(&m, pod, c, "ARGO_TOKEN");
    assert_ne!(
        runner_sa, argo_sa,
        "keep the Argo token's identity apart from the runner pod's"
    );
    let workflow_sa = env_value(c, "INGESTION_SERVICE_ACCOUNT_NAME")
        .unwrap_or_else(|| panic!("{at}: set INGESTION_SERVICE_ACCOUNT_NAME"))
        .to_owned();

    let mut expected: BTreeMap<String, BTreeSet<Perm>> = BTreeMap::new();
    expected
        .entry(runner_sa)
        .or_default()
        .extend(runner_identity_needs());
    expected
        .entry(argo_sa.clone())
        .or_default()
        .extend(argo_identity_needs());
    expected
        .entry(workflow_sa)
        .or_default()
        .extend(workflow_pod_needs());

    let granted = granted(&m);
    let accounts: BTreeSet<&String> = expected.keys().chain(granted.keys()).collect();
    for sa in accounts {
        let want = expected.get(sa).cloned().unwrap_or_default();
        let have = granted.get(sa).cloned().unwrap_or_default();
        let extra: BTreeSet<Perm> = have.difference(&want).cloned().collect();
        let missing: BTreeSet<Perm> = want.difference(&have).cloned().collect();
        assert!(
            extra.is_empty() && missing.is_empty(),
            "ServiceAccount `{sa}`: extra [{}], missing [{}] (expected exactly [{}])",
            show(&extra),
            show(&missing),
            show(&want)
        );
    }

    // The token's account runs nothing: its token is never mounted.
    let (sat, sa) = m
        .service_accounts
        .iter()
        .find(|(_, s)| s.metadata.name.as_deref() == Some(argo_sa.as_str()))
        .expect("the Argo token's ServiceAccount");
    assert_eq!(
        sa.automount_service_account_token,
        Some(false),
        "{sat}: the Argo token's account is not mounted into pods"
    );
}

#[test]
fn the_code_scan_finds_the_known_calls() {
    // Guards the scanner itself: if these stop being found, the RBAC test proves nothing.
    let runner = runner_identity_needs();
    for verb in ["create", "patch", "delete", "get"] {
        assert!(
            runner.contains(&(String::new(), "secrets".into(), verb.into())),
            "secrets {verb} not found in the sources"
        );
    }
    let argo = argo_identity_needs();
    for (r, v) in [
        ("workflows", "create"),
        ("workflows", "watch"),
        ("cronworkflows", "update"),
    ] {
        assert!(
            argo.contains(&("argoproj.io".into(), r.into(), v.into())),
            "{v} {r} not derived from the Argo executor"
        );
    }
    assert_eq!(
        calls_on("self.api(ns).patch(n);x.api.get(k);rapi.list(a)", "api"),
        BTreeSet::from(["patch".to_owned(), "get".to_owned()])
    );
}
