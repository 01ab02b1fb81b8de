//! `ingestion-runner`: the Hybrid Ingestion Runner's binary. A thin shell over runner-core:
//! configuration, logging, signals, subcommands, exit codes.

mod check;
mod health;
mod settings;
mod vars;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use runner_core::argo::{ArgoClientConfig, BuildConfig};
use runner_core::executor::argo::{ArgoExecutor, ArgoSettings};
use runner_core::executor::local::LocalExecutor;
use runner_core::executor::{Executor, StatusSink};
use runner_core::secrets::{SecretError, SecretResolver, SecretsConfig};
use runner_core::{CoreError, Outbox, Preparer, Runner};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use settings::{ConfigError, ExecutorKind, Raw, Settings};

/// Exit codes: 0 done, 1 runtime failure, 2 configuration error.
const EXIT_RUNTIME: u8 = 1;
const EXIT_CONFIG: u8 = 2;

#[derive(Parser, Debug)]
#[command(
    name = "ingestion-runner",
    version,
    about = "Hybrid Ingestion Runner: runs OpenMetadata ingestion in your cloud for a SaaS control plane"
)]
struct Cli {
    /// File of KEY=VALUE lines (same names as the environment variables); env and flags win.
    #[arg(long, global = true, env = "RUNNER_CONFIG_FILE", value_name = "PATH")]
    config_file: Option<PathBuf>,
    /// Sets a configuration variable (repeatable), e.g. --set AGENT_ID=eu-runner-1.
    #[arg(long = "set", global = true, value_name = "KEY=VALUE")]
    set: Vec<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Connects to the control plane and executes its requests until SIGTERM.
    Run,
    /// Prints the effective configuration (secrets masked) and where each value came from.
    Config {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Prints the version and the protocol versions spoken.
    Version,
    /// Checks the set-up row by row (configuration, DNS, TCP, TLS, the token and the handshake,
    /// Argo, the image, the secrets backend) and says what to fix. Exit 0 only if all pass.
    Check {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// A sample reference to resolve (repeatable).
        #[arg(long = "secret", value_name = "REF")]
        secrets: Vec<String>,
    },
    /// Prints, without contacting anything, the Workflow or CronWorkflow the runner would submit
    /// to Argo for a pipeline (like `helm template`). Uses the same settings as `run`.
    Render {
        /// The IngestionPipeline entity (JSON), as the control plane sends it.
        #[arg(long, value_name = "PIPELINE.json")]
        pipeline: PathBuf,
        /// Its service entity (JSON).
        #[arg(long, value_name = "SERVICE.json")]
        service: Option<PathBuf>,
        /// Render the Workflow of a run with this id (default: the CronWorkflow when the pipeline
        /// has a schedule, else a run with id `render`).
        #[arg(long, value_name = "ID")]
        run_id: Option<String>,
    },
    /// Secrets backend tools.
    Secrets {
        #[command(subcommand)]
        command: SecretsCommand,
    },
}

#[derive(Subcommand, Debug)]
enum SecretsCommand {
    /// Resolves references with the runner's identity and prints one line each:
    /// `REF ok <provider> <n> bytes sha256:<8 hex>` or `REF error <reason and fix>`.
    /// Exit 0 only if all resolved.
    Resolve {
        /// References, e.g. `secret:/my/database/credentials/username`.
        #[arg(required = true, value_name = "REF")]
        refs: Vec<String>,
        /// Also print the values (for a terminal you trust).
        #[arg(long)]
        reveal: bool,
    },
}

fn main() -> ExitCode {
    runner_core::install_crypto_provider();
    let cli = Cli::parse();
    if let Command::Version = cli.command {
        println!("ingestion-runner {}", runner_core::VERSION);
        println!(
            "protocol versions {:?}",
            runner_protocol::SUPPORTED_VERSIONS
        );
        return ExitCode::SUCCESS;
    }
    // Every other command reads the configuration: defaults < file < env < --set.
    let raw = match Raw::collect(cli.config_file.as_deref(), std::env::vars(), &cli.set) {
        Ok(raw) => raw,
        Err(e) => return config_error(&e),
    };
    match cli.command {
        Command::Version => ExitCode::SUCCESS, // answered above, without reading the configuration
        Command::Config { json } => {
            print_config(&raw, json);
            for w in &raw.warnings {
                eprintln!("warning: {w}");
            }
            match Settings::validate(&raw) {
                Ok(_) => ExitCode::SUCCESS,
                Err(e) => config_error(&e),
            }
        }
        Command::Check { json, secrets } => {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("error: cannot start the async runtime: {e}");
                    return ExitCode::from(EXIT_RUNTIME);
                }
            };
            let checks = rt.block_on(check::run(&raw, &secrets));
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&checks).unwrap_or_default()
                );
            } else {
                print!("{}", check::table(&checks));
            }
            if checks.iter().all(|c| c.ok) {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_RUNTIME)
            }
        }
        Command::Render {
            pipeline,
            service,
            run_id,
        } => match render(&raw, &pipeline, service.as_deref(), run_id.as_deref()) {
            Ok(text) => {
                println!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {}", describe_error(&e));
                ExitCode::from(EXIT_CONFIG)
            }
        },
        Command::Secrets {
            command: SecretsCommand::Resolve { refs, reveal },
        } => match secrets_resolve(&raw, &refs, reveal) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::from(EXIT_RUNTIME),
            Err(e) => {
                eprintln!("error: {}", describe_error(&e));
                ExitCode::from(EXIT_CONFIG)
            }
        },
        Command::Run => {
            let settings = match Settings::validate(&raw) {
                Ok(s) => s,
                Err(e) => return config_error(&e),
            };
            init_logging(&settings.log);
            for w in &raw.warnings {
                tracing::warn!("{w}");
            }
            if raw.get("AGENT_ID").is_none() {
                tracing::warn!(
                    agent = %settings.runner.agent_id,
                    "AGENT_ID is not set: using the host name, which in Kubernetes changes with every pod; set AGENT_ID so that the platform sees one runner and a restarted runner re-attaches to its runs"
                );
            }
            match run(settings, raw) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    // Logging is up and writes to stderr: one line, not two.
                    tracing::error!("{}", describe_error(&e));
                    let config_like = e.chain().any(|c| {
                        c.downcast_ref::<SecretError>().is_some()
                            || c.downcast_ref::<runner_core::argo::BuildError>().is_some()
                            || c.downcast_ref::<runner_core::ExecutorError>().is_some()
                            || matches!(
                                c.downcast_ref::<runner_core::argo::ArgoError>(),
                                Some(runner_core::argo::ArgoError::Config(_))
                            )
                            || c.downcast_ref::<CoreError>().is_some_and(|c| {
                                matches!(
                                    c,
                                    CoreError::InvalidServerUrl { .. } | CoreError::Tls { .. }
                                )
                            })
                    });
                    ExitCode::from(if config_like {
                        EXIT_CONFIG
                    } else {
                        EXIT_RUNTIME
                    })
                }
            }
        }
    }
}

/// The error and its causes, each cause once: libraries that put a cause's text into their own
/// message and also keep it as `source` are not repeated.
fn describe_error(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

fn read_json(path: &std::path::Path) -> anyhow::Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", path.display()))
}

/// The Kubernetes client that stores resolved configs, when SECRETS_DELIVERY=runner.
async fn config_secrets_for(
    build: &BuildConfig,
) -> anyhow::Result<Option<Arc<dyn runner_core::executor::argo::ConfigSecrets>>> {
    if build.secrets_delivery != runner_core::argo::SecretsDelivery::Runner {
        return Ok(None);
    }
    #[cfg(feature = "kubernetes")]
    {
        let store = runner_core::executor::argo::KubeConfigSecrets::infer().await?;
        Ok(Some(Arc::new(store)))
    }
    #[cfg(not(feature = "kubernetes"))]
    {
        anyhow::bail!(
            "SECRETS_DELIVERY=runner needs the `kubernetes` feature; set SECRETS_DELIVERY=pod"
        )
    }
}

/// `ingestion-runner render`: the Argo object for a pipeline, from the runner's settings.
fn render(
    raw: &Raw,
    pipeline: &std::path::Path,
    service: Option<&std::path::Path>,
    run_id: Option<&str>,
) -> anyhow::Result<String> {
    use runner_core::argo::build::{RunRequest, build_cron_workflow, build_run_workflow};
    let pipeline_value = read_json(pipeline)?;
    // Decoded as the protocol decodes a request, so a file the runner would refuse fails here too.
    let typed: runner_protocol::IngestionPipeline = serde_json::from_value(pipeline_value.clone())
        .with_context(|| format!("{} is not an IngestionPipeline", pipeline.display()))?;
    let service = service.map(read_json).transpose()?;
    let agent_id = raw.agent_id();
    let lookup = raw.lookup(&agent_id);
    let build = BuildConfig::from_lookup(lookup)?;
    if run_id.is_none()
        && let Some(cron) = build_cron_workflow(&build, &pipeline_value, service.as_ref())?
    {
        return Ok(serde_json::to_string_pretty(&cron.cron_workflow)?);
    }
    let run_id = run_id.unwrap_or("render");
    let built = build_run_workflow(
        &build,
        &RunRequest {
            pipeline: &pipeline_value,
            service: service.as_ref(),
            run_id,
            overrides: None,
        },
    )
    .with_context(|| format!("pipeline `{}`", typed.fqn()))?;
    Ok(serde_json::to_string_pretty(&built.workflow)?)
}

fn config_error(e: &ConfigError) -> ExitCode {
    eprintln!("configuration error: {e}");
    eprintln!(
        "hint: `ingestion-runner config` shows every setting and its source; docs/configuration.md lists them all"
    );
    ExitCode::from(EXIT_CONFIG)
}

fn init_logging(log: &settings::LogSettings) {
    use tracing_subscriber::filter::{EnvFilter, filter_fn};
    use tracing_subscriber::prelude::*;
    // Transport libraries dump raw requests (with the `Authorization` header) at trace level:
    // their trace events are dropped whatever LOG_LEVEL says.
    const TRANSPORT: &[&str] = &[
        "tungstenite",
        "tokio_tungstenite",
        "hyper",
        "hyper_util",
        "h2",
        "reqwest",
        "rustls",
    ];
    let no_transport_trace = filter_fn(|meta| {
        *meta.level() != tracing::Level::TRACE
            || !TRANSPORT.iter().any(|t| meta.target().starts_with(t))
    });
    let env = EnvFilter::try_new(&log.filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let log_max = log_max_level(&env);
    let layer = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    if log.json {
        let layer = layer.json().flatten_event(true).with_current_span(false);
        tracing_subscriber::registry()
            .with(layer.with_filter(env).with_filter(no_transport_trace))
            .init();
    } else {
        let layer = layer.with_target(false);
        tracing_subscriber::registry()
            .with(layer.with_filter(env).with_filter(no_transport_trace))
            .init();
    }
    // `init` forwards `log` records (tungstenite's, rustls') up to the level it can prove
    // nothing wants: with `filter_fn` above it cannot, so every record got through, was built
    // and dispatched, and was then dropped. Tungstenite logs a few per frame: 2% of the
    // runner's CPU per run request with LOG_LEVEL=warn.
    log::set_max_level(log_max);
}

/// The most verbose `log` level `filter` lets through.
fn log_max_level(filter: &tracing_subscriber::filter::EnvFilter) -> log::LevelFilter {
    use tracing::Level;
    match filter.max_level_hint().map(|l| l.into_level()) {
        // No hint: anything may be enabled.
        None => log::LevelFilter::Trace,
        Some(None) => log::LevelFilter::Off,
        Some(Some(Level::ERROR)) => log::LevelFilter::Error,
        Some(Some(Level::WARN)) => log::LevelFilter::Warn,
        Some(Some(Level::INFO)) => log::LevelFilter::Info,
        Some(Some(Level::DEBUG)) => log::LevelFilter::Debug,
        Some(Some(Level::TRACE)) => log::LevelFilter::Trace,
    }
}

/// The secrets settings: catalogued names from the file/env/flags, provider-specific names
/// (`AWS_REGION`, `AZURE_KEY_VAULT_NAME`, ...) from the environment.
fn secrets_config(raw: &Raw) -> anyhow::Result<SecretsConfig> {
    let agent_id = raw.agent_id();
    SecretsConfig::from_lookup(raw.lookup(&agent_id))
        .context("invalid secrets configuration (see docs/secrets.md)")
}

async fn build_resolver(raw: &Raw) -> anyhow::Result<SecretResolver> {
    let config = secrets_config(raw)?;
    let manager = raw
        .get("SECRETS_MANAGER")
        .unwrap_or("kubernetes")
        .to_owned();
    config.build_resolver().await.with_context(|| {
        format!("cannot set up the secrets backend SECRETS_MANAGER={manager}; check its settings in docs/secrets.md, or choose another SECRETS_MANAGER")
    })
}

fn secrets_resolve(raw: &Raw, refs: &[String], reveal: bool) -> anyhow::Result<bool> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let resolver = build_resolver(raw).await?;
        let mut all_ok = true;
        for r in refs {
            let (ok, line) = resolver.cli_line(r, reveal).await;
            all_ok &= ok;
            println!("{line}");
        }
        Ok(all_ok)
    })
}

/// One worker thread with tokio's multi-thread scheduler: see docs/architecture.md, "Decision:
/// one worker thread".
fn run(settings: Settings, raw: Raw) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    // Spawned, not given to `block_on` (which polls its future on this thread): the session,
    // the request tasks and hyper's connection tasks then all run on the one worker.
    let main = rt.spawn(serve(settings, raw));
    rt.block_on(main)
        .context("the runner's main task ended abnormally")?
}

async fn serve(settings: Settings, raw: Raw) -> anyhow::Result<()> {
    let resolver = build_resolver(&raw).await?;
    tracing::info!(provider = ?resolver.provider_kind(), "secrets backend ready");
    let preparer = Arc::new(Preparer::new(
        Some(Arc::new(resolver)),
        settings.server_host_api_url.clone(),
    ));
    let outbox = Arc::new(Outbox::new(settings.runner.outbox_capacity));
    let mut expiring = vec![auth_token_watch(&settings.runner.token)];
    let executor: Arc<dyn Executor> = match settings.executor {
        ExecutorKind::Local => Arc::new(LocalExecutor::start(
            settings.local.clone(),
            StatusSink::new(outbox.clone()),
            preparer.clone(),
        )),
        ExecutorKind::Argo => {
            let lookup = raw.lookup(&settings.runner.agent_id);
            let client = ArgoClientConfig::from_lookup(lookup)?;
            expiring.push(argo_token_watch(&client.token));
            let build = BuildConfig::from_lookup(lookup)?;
            let config_secrets = config_secrets_for(&build).await?;
            let argo = ArgoExecutor::start(
                ArgoSettings::new(client, build),
                StatusSink::new(outbox.clone()),
                preparer.clone(),
                config_secrets,
            )
            .context("starting the Argo executor")?;
            Arc::new(argo)
        }
    };
    tracing::info!(
        agent = %settings.runner.agent_id,
        server = %settings.runner.server_url,
        executor = executor.kind(),
        version = runner_core::VERSION,
        "starting ingestion-runner"
    );
    let runner = Runner::new(settings.runner, executor, outbox, preparer);
    let shutdown = CancellationToken::new();
    let health_stop = CancellationToken::new();
    let mut servers = Vec::new();
    if let Some(bind) = settings.health_bind {
        let app = health::health_routes(runner.status_handle());
        servers.push(health::start("HEALTH_BIND", bind, app, health_stop.clone()).await?);
    }
    if let Some(bind) = settings.metrics_bind {
        servers.push(
            health::start(
                "METRICS_BIND",
                bind,
                health::metrics_routes(),
                health_stop.clone(),
            )
            .await?,
        );
    }
    tokio::spawn(watch_signals(shutdown.clone()));
    tokio::spawn(runner_core::expiry::watch(
        expiring,
        std::time::Duration::from_secs(60),
        shutdown.clone(),
    ));
    let result = runner.run(shutdown).await.context("the runner stopped");
    // Health stays up through the drain (readyz says why it is not ready), then stops.
    health_stop.cancel();
    for server in servers {
        let _ = server.await;
    }
    result
}

/// `AUTH_TOKEN` (or the file's current content) for the expiry warnings.
fn auth_token_watch(source: &runner_core::config::TokenSource) -> runner_core::expiry::Watched {
    use runner_core::expiry::{AUTH_TOKEN_FIX, ExpiryWatch, Watched};
    let source = source.clone();
    Watched {
        watch: ExpiryWatch::new("AUTH_TOKEN", AUTH_TOKEN_FIX),
        read: Box::new(move || source.load().ok().map(|t| t.expose().to_owned())),
    }
}

/// `ARGO_TOKEN` (or `ARGO_TOKEN_FILE`'s current content) for the expiry warnings.
fn argo_token_watch(source: &runner_core::argo::TokenSource) -> runner_core::expiry::Watched {
    use runner_core::argo::TokenSource;
    use runner_core::expiry::{ARGO_TOKEN_FIX, ExpiryWatch, Watched};
    let source = source.clone();
    Watched {
        watch: ExpiryWatch::new("ARGO_TOKEN", ARGO_TOKEN_FIX),
        read: Box::new(move || match &source {
            TokenSource::Static(t) => Some(t.clone()),
            TokenSource::File(p) => std::fs::read_to_string(p).ok(),
            TokenSource::None => None,
        }),
    }
}

/// First SIGTERM/SIGINT: drain. Second: exit at once.
async fn watch_signals(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!(
            "cannot install signal handlers; SIGTERM will kill the runner without draining"
        );
        return;
    };
    tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
    tracing::info!("signal received: draining (send it again to exit at once)");
    shutdown.cancel();
    tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
    tracing::warn!("second signal: exiting now");
    std::process::exit(130);
}

fn print_config(raw: &Raw, json: bool) {
    let rows: Vec<(String, String, String, &str)> = vars::VARS
        .iter()
        .map(|v| {
            let value = match raw.get(v.name) {
                None => "(unset)".to_owned(),
                Some(_) if v.secret => "*** (set)".to_owned(),
                Some(text) if v.name == "INGESTION_EXTRA_ENVS" => mask_extra_envs(text),
                Some(text) if v.name.ends_with("_PROXY") && v.name != "NO_PROXY" => {
                    mask_proxy(v.name, text)
                }
                Some(text) => text.to_owned(),
            };
            let source = raw
                .source(v.name)
                .map(|s| s.to_string())
                .unwrap_or_else(|| "-".into());
            (v.name.to_owned(), value, source, v.help)
        })
        .collect();
    if json {
        let items: Vec<Value> = rows
            .iter()
            .map(|(n, v, s, h)| serde_json::json!({"name": n, "value": v, "source": s, "help": h}))
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&items).unwrap_or_default()
        );
        return;
    }
    let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(10);
    let vwidth = rows.iter().map(|r| r.1.len()).max().unwrap_or(10).min(50);
    for (n, v, s, _) in rows {
        println!("{n:width$}  {v:vwidth$}  {s}");
    }
}

/// A proxy URL with its password masked (`http://user:***@host:port`).
fn mask_proxy(name: &'static str, text: &str) -> String {
    match runner_core::proxy::ProxyUrl::parse(name, text) {
        Ok(p) => p.to_string(),
        Err(_) => "(not usable; value hidden)".to_owned(),
    }
}

/// Extra envs often carry credentials: show the keys only.
fn mask_extra_envs(text: &str) -> String {
    match runner_core::config::parse_extra_envs(text) {
        Ok(pairs) => {
            let keys: Vec<String> = pairs.iter().map(|(k, _)| format!("{k}:***")).collect();
            format!("[{}]", keys.join(","))
        }
        Err(_) => "(invalid; values hidden)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_records_above_the_filter_are_not_built() {
        use tracing_subscriber::filter::EnvFilter;
        let max = |f: &str| log_max_level(&EnvFilter::new(f));
        assert_eq!(max("warn"), log::LevelFilter::Warn);
        assert_eq!(max("info"), log::LevelFilter::Info);
        assert_eq!(max("off"), log::LevelFilter::Off);
        // The most verbose directive counts, whatever its target.
        assert_eq!(max("warn,runner_core=debug"), log::LevelFilter::Debug);
        assert_eq!(max("trace"), log::LevelFilter::Trace);
    }

    #[test]
    fn docs_list_every_variable() {
        let doc = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../docs/configuration.md"
        ))
        .expect("docs/configuration.md exists");
        for v in vars::VARS {
            assert!(
                doc.contains(&format!("`{}`", v.name)),
                "docs/configuration.md does not document {}",
                v.name
            );
            for a in v.aliases {
                assert!(
                    doc.contains(&format!("`{a}`")),
                    "docs/configuration.md does not list alias {a}"
                );
            }
        }
    }

    #[test]
    fn proxy_passwords_are_masked() {
        assert_eq!(
            mask_proxy("HTTPS_PROXY", "http://bob:hunter2@proxy.corp:3128"),
            "http://bob:***@proxy.corp:3128"
        );
        assert!(!mask_proxy("HTTPS_PROXY", "socks5://bob:hunter2@p").contains("hunter2"));
    }

    #[test]
    fn extra_envs_are_masked() {
        assert_eq!(
            mask_extra_envs("[AWS_ACCESS_KEY_ID:AKIA123,REGION:eu-west-1]"),
            "[AWS_ACCESS_KEY_ID:***,REGION:***]"
        );
    }
}
