//! The catalogue of configuration variables: names, aliases, defaults, whether the value is a
//! secret. `docs/configuration.md` documents each (a test keeps the two in step).

/// One configuration variable.
#[derive(Debug, Clone, Copy)]
pub struct Var {
    pub name: &'static str,
    /// Older names still accepted (with a deprecation warning).
    pub aliases: &'static [&'static str],
    pub default: Option<&'static str>,
    /// Printed masked by `ingestion-runner config`.
    pub secret: bool,
    /// Read from the process environment only (not `--config-file` / `--set`): every client in
    /// the process, the cloud SDKs included, reads it there, so one value is seen by all.
    pub env_only: bool,
    pub help: &'static str,
}

const fn var(name: &'static str, default: Option<&'static str>, help: &'static str) -> Var {
    Var {
        name,
        aliases: &[],
        default,
        secret: false,
        env_only: false,
        help,
    }
}

/// A process-environment variable shared with the libraries (proxies, CA locations).
const fn process_env(name: &'static str, help: &'static str) -> Var {
    Var {
        name,
        aliases: &[],
        default: None,
        secret: false,
        env_only: true,
        help,
    }
}

const fn alias(
    name: &'static str,
    aliases: &'static [&'static str],
    default: Option<&'static str>,
    help: &'static str,
) -> Var {
    Var {
        name,
        aliases,
        default,
        secret: false,
        env_only: false,
        help,
    }
}

const fn secret(name: &'static str, help: &'static str) -> Var {
    Var {
        name,
        aliases: &[],
        default: None,
        secret: true,
        env_only: false,
        help,
    }
}

pub const VARS: &[Var] = &[
    // Connection to the control plane.
    var(
        "AGENT_ID",
        None,
        "Name of this runner as the platform shows it (default: the host name)",
    ),
    secret("AUTH_TOKEN", "The platform's ingestion-bot JWT"),
    var(
        "AUTH_TOKEN_FILE",
        None,
        "File holding the token, re-read at each reconnect",
    ),
    var(
        "SERVER_URL",
        None,
        "Control plane WebSocket URL, wss://host[:port][/path]",
    ),
    var(
        "SERVER_HOST_API_URL",
        None,
        "Platform API URL the ingestion workloads report to (openMetadataServerConfig.hostPort)",
    ),
    var(
        "SERVER_ALLOW_INSECURE",
        Some("false"),
        "Allow ws:// to a non-loopback host",
    ),
    var(
        "SERVER_CA_FILE",
        None,
        "Extra CA certificates for the control plane: a PEM file, or a directory of *.pem / *.crt files",
    ),
    // Egress proxy and trust store, shared by every client in the process.
    process_env(
        "HTTPS_PROXY",
        "Proxy of wss:// and https:// connections, http://[user:password@]host:port (also https_proxy)",
    ),
    process_env(
        "HTTP_PROXY",
        "Proxy of ws:// and http:// connections (also http_proxy)",
    ),
    process_env(
        "ALL_PROXY",
        "Proxy of both when the specific one is unset (also all_proxy)",
    ),
    process_env(
        "NO_PROXY",
        "Hosts reached without the proxy: names, .domains, IPs, CIDRs, host:port, * (also no_proxy)",
    ),
    process_env(
        "SSL_CERT_FILE",
        "PEM bundle that replaces the system's CA certificates",
    ),
    process_env(
        "SSL_CERT_DIR",
        "Directories (colon-separated) of CA certificates that replace the system's",
    ),
    var(
        "RECONNECT_DELAY_SECONDS",
        Some("5"),
        "Base of the reconnect backoff",
    ),
    var(
        "RECONNECT_MAX_DELAY_SECONDS",
        Some("300"),
        "Cap of the reconnect backoff",
    ),
    var(
        "AUTH_RETRY_SECONDS",
        Some("300"),
        "Delay before retrying after the token was rejected",
    ),
    var(
        "MAX_CONCURRENT_REQUESTS",
        Some("32"),
        "Requests executed at once; more get a busy reply",
    ),
    var(
        "DRAIN_GRACE_SECONDS",
        Some("30"),
        "Shutdown grace period for requests, runs and events",
    ),
    var(
        "HOST_IP",
        None,
        "Answer to getHostIp (default: local address of the connection)",
    ),
    var(
        "HEALTH_BIND",
        Some("0.0.0.0:8585"),
        "Address of /healthz, /readyz and /status, or `off`",
    ),
    var(
        "METRICS_BIND",
        Some("0.0.0.0:8989"),
        "Address of /metrics (Prometheus), or `off`",
    ),
    // Executor selection.
    var(
        "EXECUTOR_TYPE",
        None,
        "argo or local (default: argo when PIPELINE_SERVICE_CLIENT_ENDPOINT is set, else local)",
    ),
    // Secrets.
    var(
        "SECRETS_MANAGER",
        Some("kubernetes"),
        "kubernetes, aws, managed-aws, azure-kv, gcp, env, file",
    ),
    var(
        "SECRETS_ALLOWED_PREFIXES",
        None,
        "Comma-separated secret id prefixes the control plane may reference",
    ),
    var(
        "SECRETS_CACHE_TTL_SECONDS",
        Some("300"),
        "Secrets cache TTL (0 disables caching)",
    ),
    var(
        "SECRETS_CACHE_MAX_ENTRIES",
        Some("1000"),
        "Secrets cache size bound",
    ),
    var(
        "SECRETS_STALE_GRACE_SECONDS",
        Some("600"),
        "How long past expiry a value may be served when refresh fails",
    ),
    var(
        "SECRETS_MAX_CONCURRENCY",
        Some("8"),
        "Secrets provider calls in flight",
    ),
    var(
        "SECRETS_TIMEOUT_SECONDS",
        Some("5"),
        "Timeout of one secrets provider call",
    ),
    var(
        "SECRETS_MAX_ATTEMPTS",
        Some("4"),
        "Attempts per secret lookup for transient errors",
    ),
    var(
        "SECRETS_KUBERNETES_NAMESPACE",
        None,
        "Namespace of Kubernetes Secrets (default: the runner's)",
    ),
    var(
        "SECRETS_ENV_PREFIX",
        Some("RUNNER_SECRET_"),
        "Prefix of the env provider's variables",
    ),
    var("SECRETS_FILE", None, "JSON file of the file provider"),
    var(
        "SECRETS_GCP_ENDPOINT",
        None,
        "GCP Secret Manager endpoint override (tests)",
    ),
    var("AZURE_KEY_VAULT_URL", None, "Azure Key Vault URL"),
    var("AZURE_KEY_VAULT_NAME", None, "Azure Key Vault name"),
    var(
        "GOOGLE_CLOUD_PROJECT",
        None,
        "GCP project of short secret ids",
    ),
    var(
        "SECRETS_DELIVERY",
        Some("runner"),
        "How Argo pods get secrets: runner (resolved config in a per-run Kubernetes Secret) or pod (they resolve references themselves)",
    ),
    var(
        "ARGO_TOKEN_FILE",
        None,
        "File holding the Argo token, re-read when it changes",
    ),
    // Ingestion workload (both executors).
    alias(
        "INGESTION_EXTRA_ENVS",
        &["ARGO_EXTRA_ENVS"],
        None,
        "Extra env vars of every run, [k1:v1,k2:v2]",
    ),
    // Local executor.
    var(
        "LOCAL_INGESTION_COMMAND",
        Some("python main.py"),
        "Command of an ingestion run (local executor)",
    ),
    var(
        "LOCAL_AUTOMATION_COMMAND",
        Some("python run_automation.py"),
        "Command of an automation run (local executor)",
    ),
    var("LOCAL_WORKDIR", None, "Working directory of local runs"),
    var(
        "LOCAL_MAX_CONCURRENT_RUNS",
        Some("4"),
        "Local runs executing at once; more wait queued",
    ),
    var(
        "LOCAL_RUN_TIMEOUT_SECONDS",
        Some("86400"),
        "Run timeout when the pipeline sets no workflowTimeout",
    ),
    // Argo executor (the vendor chart's contract).
    var("PIPELINE_SERVICE_CLIENT_ENDPOINT", None, "Argo Server URL"),
    secret("ARGO_TOKEN", "Bearer token for the Argo Server"),
    var(
        "ARGO_SERVER_CERTIFICATE_PATH",
        None,
        "PEM CA of the Argo Server's certificate",
    ),
    var(
        "ARGO_SECONDS_AFTER_COMPLETION_TTL",
        Some("86400"),
        "Workflow TTL after completion",
    ),
    var(
        "ARGO_TEST_CONNECTION_BACKOFF_TIME",
        Some("5"),
        "Seconds between test-connection status polls",
    ),
    var(
        "ARGO_PIPELINE_TYPE_CONFIGS",
        None,
        "JSON of per-pipeline-type workflow settings",
    ),
    var(
        "ARGO_INGESTION_CONTAINER_SPEC_FILE_PATH",
        None,
        "YAML merged into the ingestion container",
    ),
    var(
        "ARGO_INGESTION_WORKFLOW_SPEC_FILE_PATH",
        None,
        "YAML merged into the Workflow spec",
    ),
    alias(
        "INGESTION_NAMESPACE",
        &["ARGO_NAMESPACE"],
        Some("default"),
        "Namespace of ingestion workflows",
    ),
    alias(
        "INGESTION_IMAGE",
        &["ARGO_INGESTION_IMAGE"],
        None,
        "Ingestion image, repo[:tag|@digest]",
    ),
    alias(
        "INGESTION_IMAGE_PULL_SECRETS",
        &["ARGO_IMAGE_PULL_SECRETS"],
        None,
        "Comma-separated pull secret names",
    ),
    alias(
        "INGESTION_SERVICE_ACCOUNT_NAME",
        &["ARGO_WORKFLOW_EXECUTOR_SERVICE_ACCOUNT_NAME"],
        None,
        "Service account of ingestion pods",
    ),
    alias(
        "INGESTION_CPU_LIMIT",
        &["ARGO_WORKFLOW_CPU_LIMIT"],
        None,
        "CPU limit of ingestion pods",
    ),
    alias(
        "INGESTION_CPU_REQUEST",
        &["ARGO_WORKFLOW_CPU_REQUEST"],
        None,
        "CPU request of ingestion pods",
    ),
    alias(
        "INGESTION_MEMORY_LIMIT",
        &["ARGO_WORKFLOW_MEMORY_LIMIT"],
        None,
        "Memory limit of ingestion pods",
    ),
    alias(
        "INGESTION_MEMORY_REQUEST",
        &["ARGO_WORKFLOW_MEMORY_REQUEST"],
        None,
        "Memory request of ingestion pods",
    ),
    alias(
        "INGESTION_AUTOMATION_WORKFLOW_CPU_LIMIT",
        &["ARGO_AUTOMATION_WORKFLOW_CPU_LIMIT"],
        None,
        "CPU limit of automation pods",
    ),
    alias(
        "INGESTION_AUTOMATION_WORKFLOW_CPU_REQUEST",
        &["ARGO_AUTOMATION_WORKFLOW_CPU_REQUEST"],
        None,
        "CPU request of automation pods",
    ),
    alias(
        "INGESTION_AUTOMATION_WORKFLOW_MEMORY_LIMIT",
        &["ARGO_AUTOMATION_WORKFLOW_MEMORY_LIMIT"],
        None,
        "Memory limit of automation pods",
    ),
    alias(
        "INGESTION_AUTOMATION_WORKFLOW_MEMORY_REQUEST",
        &["ARGO_AUTOMATION_WORKFLOW_MEMORY_REQUEST"],
        None,
        "Memory request of automation pods",
    ),
    alias(
        "INGESTION_AUTOMOUNT_SA_TOKEN",
        &["ARGO_AUTOMOUNT_SA_TOKEN"],
        None,
        "Mount the service account token in ingestion pods (false needs INGESTION_SERVICE_ACCOUNT_NAME)",
    ),
    alias(
        "INGESTION_DISABLE_VERSION_VALIDATION",
        &["ARGO_DISABLE_VERSION_VALIDATION"],
        Some("false"),
        "Skip the client/server version check in the ingestion framework",
    ),
    var(
        "DYNAMIC_INGESTION_VERSION_ENABLED",
        Some("false"),
        "Use the image tag matching the server's version",
    ),
    // Logging.
    var("LOG_FORMAT", Some("human"), "human or json"),
    var(
        "LOG_LEVEL",
        Some("info"),
        "tracing filter, e.g. info or runner_core=debug",
    ),
];

/// The variable called `name` (or having `name` as an alias).
pub fn find(name: &str) -> Option<&'static Var> {
    VARS.iter()
        .find(|v| v.name == name || v.aliases.contains(&name))
}

/// Closest known name, for "did you mean" hints.
pub fn closest(name: &str) -> Option<&'static str> {
    let upper = name.to_ascii_uppercase();
    VARS.iter()
        .flat_map(|v| std::iter::once(v.name).chain(v.aliases.iter().copied()))
        .map(|n| (strsim(&upper, n), n))
        .filter(|(d, _)| *d <= 3)
        .min()
        .map(|(_, n)| n)
}

fn strsim(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}
