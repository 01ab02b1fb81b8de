//! Configuration in two steps (as ripgrep does): raw values with their source from defaults, an
//! optional file, the environment and flags; then validation into the typed configs of
//! runner-core. Every error names the variable, the bad value and the expected form.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use runner_core::backoff::BackoffConfig;
use runner_core::config::TokenSource;
use runner_core::executor::local::LocalConfig;
use runner_core::{AuthToken, RunnerConfig, ServerUrl};

use crate::vars::{self, VARS, Var};

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Default,
    File(PathBuf),
    Env,
    /// Set through an older name.
    EnvAlias(&'static str),
    Flag,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::File(p) => write!(f, "file {}", p.display()),
            Source::Env => f.write_str("env"),
            Source::EnvAlias(a) => write!(f, "env {a} (deprecated alias)"),
            Source::Flag => f.write_str("flag"),
        }
    }
}

/// A configuration problem a user can fix.
#[derive(Debug, thiserror::Error)]
#[error("{var}{shown}: {problem}; expected {expected}")]
pub struct ConfigError {
    pub var: String,
    /// `=<value>` (masked for secrets), or empty when the variable is not set.
    pub shown: String,
    pub problem: String,
    pub expected: String,
}

impl ConfigError {
    fn new(
        var: &Var,
        value: Option<&str>,
        problem: impl Into<String>,
        expected: impl Into<String>,
    ) -> Self {
        let shown = match value {
            Some(_) if var.secret => "=***".to_owned(),
            Some(v) => format!("={v}"),
            None => String::new(),
        };
        ConfigError {
            var: var.name.to_owned(),
            shown,
            problem: problem.into(),
            expected: expected.into(),
        }
    }
}

/// Raw values by canonical name.
#[derive(Debug, Default)]
pub struct Raw {
    values: BTreeMap<&'static str, (String, Source)>,
    /// Deprecation notes and similar, logged once logging is up.
    pub warnings: Vec<String>,
}

impl Raw {
    /// Collects values: defaults < file < environment < flags (`--set KEY=VALUE`).
    pub fn collect(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        flags: &[String],
    ) -> Result<Raw, ConfigError> {
        let mut raw = Raw::default();
        for v in VARS {
            if let Some(d) = v.default {
                raw.values.insert(v.name, (d.to_owned(), Source::Default));
            }
        }
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
                var: "--config-file".into(),
                shown: format!("={}", path.display()),
                problem: format!("cannot read it: {e}"),
                expected: "a readable file of KEY=VALUE lines".into(),
            })?;
            for (n, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let line = line.strip_prefix("export ").unwrap_or(line);
                let Some((k, v)) = line.split_once('=') else {
                    return Err(ConfigError {
                        var: format!("{}:{}", path.display(), n + 1),
                        shown: String::new(),
                        problem: "not a KEY=VALUE line".into(),
                        expected: "KEY=VALUE (the same names as the environment variables)".into(),
                    });
                };
                raw.set(k.trim(), unquote(v.trim()), Source::File(path.to_owned()))?;
            }
        }
        let env: BTreeMap<String, String> = env.into_iter().collect();
        for v in VARS {
            if let Some(value) = env.get(v.name) {
                raw.values.insert(v.name, (value.clone(), Source::Env));
                for a in v.aliases {
                    if env.contains_key(*a) {
                        raw.warnings.push(format!(
                            "both {} and its old name {a} are set; using {}",
                            v.name, v.name
                        ));
                    }
                }
                continue;
            }
            if let Some(a) = v.aliases.iter().find(|a| env.contains_key(**a)) {
                raw.values
                    .insert(v.name, (env[*a].clone(), Source::EnvAlias(a)));
                raw.warnings
                    .push(format!("{a} is deprecated; rename it to {}", v.name));
            }
        }
        for flag in flags {
            let Some((k, v)) = flag.split_once('=') else {
                return Err(ConfigError {
                    var: "--set".into(),
                    shown: format!("={flag}"),
                    problem: "missing `=`".into(),
                    expected: "--set KEY=VALUE".into(),
                });
            };
            raw.set(k.trim(), v.to_owned(), Source::Flag)?;
        }
        Ok(raw)
    }

    fn set(&mut self, key: &str, value: String, source: Source) -> Result<(), ConfigError> {
        let Some(var) = vars::find(key) else {
            let hint = vars::closest(key)
                .map(|c| format!("; did you mean {c}?"))
                .unwrap_or_default();
            return Err(ConfigError {
                var: key.to_owned(),
                shown: String::new(),
                problem: format!("unknown setting{hint}"),
                expected: "one of the variables in docs/configuration.md".into(),
            });
        };
        if var.env_only {
            return Err(ConfigError {
                var: key.to_owned(),
                shown: String::new(),
                problem: format!(
                    "{key} is read from the process environment only (every client in the runner, the cloud SDKs included, reads it there)"
                ),
                expected: format!(
                    "{key} in the container's environment (env: in the pod spec), not in --config-file or --set"
                ),
            });
        }
        if var.name != key {
            self.warnings
                .push(format!("{key} is deprecated; rename it to {}", var.name));
        }
        self.values.insert(var.name, (value, source));
        Ok(())
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .map(|(v, _)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    /// A lookup for the libraries' own `from_lookup` constructors: catalogued names from
    /// these values (aliases resolved), anything else (provider credentials...) from the
    /// environment, and `AGENT_ID` as resolved by [`Settings`].
    pub fn lookup<'a>(&'a self, agent_id: &'a str) -> impl Fn(&str) -> Option<String> + Copy + 'a {
        move |k: &str| {
            if k == "AGENT_ID" {
                return Some(agent_id.to_owned());
            }
            self.get(k)
                .map(str::to_owned)
                .or_else(|| std::env::var(k).ok())
        }
    }

    /// `AGENT_ID`, else the host name, else `hybrid-runner`.
    pub fn agent_id(&self) -> String {
        self.get("AGENT_ID")
            .map(str::to_owned)
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_else(|| "hybrid-runner".to_owned())
    }

    pub fn source(&self, name: &str) -> Option<&Source> {
        self.values.get(name).map(|(_, s)| s)
    }
}

fn unquote(v: &str) -> String {
    let quoted = v.len() >= 2
        && ((v.starts_with('"') && v.ends_with('"')) || (v.starts_with('\'') && v.ends_with('\'')));
    if quoted {
        v[1..v.len() - 1].to_owned()
    } else {
        v.to_owned()
    }
}

fn var(name: &str) -> &'static Var {
    vars::find(name).expect("every name used here is in the catalogue")
}

/// Which executor runs pipelines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecutorKind {
    Local,
    Argo,
}

/// Logging settings.
#[derive(Debug, Clone)]
pub struct LogSettings {
    pub json: bool,
    pub filter: String,
}

/// The validated configuration.
#[derive(Debug)]
pub struct Settings {
    pub runner: RunnerConfig,
    pub executor: ExecutorKind,
    pub local: LocalConfig,
    pub server_host_api_url: Option<String>,
    pub log: LogSettings,
    /// `HEALTH_BIND`; `None` when `off`.
    pub health_bind: Option<std::net::SocketAddr>,
    /// `METRICS_BIND`; `None` when `off`.
    pub metrics_bind: Option<std::net::SocketAddr>,
}

impl Settings {
    pub fn validate(raw: &Raw) -> Result<Settings, ConfigError> {
        let server = raw.get("SERVER_URL").ok_or_else(|| {
            ConfigError::new(
                var("SERVER_URL"),
                None,
                "not set",
                "the control plane's WebSocket URL, wss://host[:port][/path]",
            )
        })?;
        let insecure = parse_bool(raw, "SERVER_ALLOW_INSECURE")?;
        let server_url = ServerUrl::parse(server, insecure).map_err(|e| {
            ConfigError::new(
                var("SERVER_URL"),
                Some(server),
                e.to_string(),
                "wss://host[:port][/path]",
            )
        })?;
        let token = match (raw.get("AUTH_TOKEN"), raw.get("AUTH_TOKEN_FILE")) {
            (Some(t), _) => TokenSource::Static(AuthToken::new(t)),
            (None, Some(f)) => {
                let path = PathBuf::from(f);
                if let Err(e) = std::fs::metadata(&path) {
                    return Err(ConfigError::new(
                        var("AUTH_TOKEN_FILE"),
                        Some(f),
                        format!("cannot read it: {e}"),
                        "a readable file holding the token",
                    ));
                }
                TokenSource::File(path)
            }
            (None, None) => {
                return Err(ConfigError::new(
                    var("AUTH_TOKEN"),
                    None,
                    "neither AUTH_TOKEN nor AUTH_TOKEN_FILE is set",
                    "the platform's ingestion-bot token (Settings > Bots > ingestion-bot)",
                ));
            }
        };
        if let TokenSource::Static(t) = &token
            && t.is_empty()
        {
            return Err(ConfigError::new(
                var("AUTH_TOKEN"),
                Some(""),
                "empty",
                "the platform's ingestion-bot token",
            ));
        }
        let agent_id = raw.agent_id();
        let mut runner = RunnerConfig::new(agent_id, server_url, token);
        runner.backoff = BackoffConfig {
            base: secs(raw, "RECONNECT_DELAY_SECONDS", 1)?,
            max: secs(raw, "RECONNECT_MAX_DELAY_SECONDS", 1)?,
            auth_retry: secs(raw, "AUTH_RETRY_SECONDS", 1)?,
        };
        runner.ca_file = raw.get("SERVER_CA_FILE").map(PathBuf::from);
        let agent = raw.agent_id();
        runner.proxy = runner_core::proxy::ProxyConfig::from_lookup(raw.lookup(&agent)).map_err(
            |e| match e {
                runner_core::CoreError::InvalidProxy { var: name, reason } => ConfigError {
                    var: name.to_owned(),
                    // The value may hold the proxy's password: not shown.
                    shown: String::new(),
                    problem: format!("not usable: {reason}"),
                    expected: "http://[USER:PASSWORD@]HOST:PORT".into(),
                },
                other => {
                    ConfigError::new(var("HTTPS_PROXY"), None, other.to_string(), "a proxy URL")
                }
            },
        )?;
        runner.max_concurrent_requests = number(raw, "MAX_CONCURRENT_REQUESTS", 1, 10_000)?;
        runner.drain_grace = secs(raw, "DRAIN_GRACE_SECONDS", 0)?;

        let executor = match raw
            .get("EXECUTOR_TYPE")
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None if raw.get("PIPELINE_SERVICE_CLIENT_ENDPOINT").is_some() => ExecutorKind::Argo,
            None | Some("local") => ExecutorKind::Local,
            Some("argo") => ExecutorKind::Argo,
            Some(other) => {
                return Err(ConfigError::new(
                    var("EXECUTOR_TYPE"),
                    Some(other),
                    if other.eq_ignore_ascii_case("simplek8s") {
                        "simpleK8s is not supported by this runner"
                    } else {
                        "unknown executor"
                    },
                    "argo or local",
                ));
            }
        };
        let extra_envs = match raw.get("INGESTION_EXTRA_ENVS") {
            Some(text) => runner_core::config::parse_extra_envs(text).map_err(|e| {
                ConfigError::new(
                    var("INGESTION_EXTRA_ENVS"),
                    Some("<hidden>"),
                    e,
                    "[key1:value1,key2:value2]",
                )
            })?,
            None => Vec::new(),
        };
        let local = LocalConfig {
            command: command(raw, "LOCAL_INGESTION_COMMAND")?,
            automation_command: command(raw, "LOCAL_AUTOMATION_COMMAND")?,
            workdir: raw.get("LOCAL_WORKDIR").map(PathBuf::from),
            extra_envs,
            max_concurrent_runs: number(raw, "LOCAL_MAX_CONCURRENT_RUNS", 1, 10_000)?,
            default_timeout: secs(raw, "LOCAL_RUN_TIMEOUT_SECONDS", 1)?,
            ..LocalConfig::default()
        };
        let log = LogSettings {
            json: match raw
                .get("LOG_FORMAT")
                .map(str::to_ascii_lowercase)
                .as_deref()
            {
                None | Some("human") | Some("text") => false,
                Some("json") => true,
                Some(other) => {
                    return Err(ConfigError::new(
                        var("LOG_FORMAT"),
                        Some(other),
                        "unknown format",
                        "human or json",
                    ));
                }
            },
            filter: raw.get("LOG_LEVEL").unwrap_or("info").to_owned(),
        };
        let health_bind = bind_address(raw, "HEALTH_BIND")?;
        let metrics_bind = bind_address(raw, "METRICS_BIND")?;
        Ok(Settings {
            health_bind,
            metrics_bind,
            runner,
            executor,
            local,
            server_host_api_url: raw.get("SERVER_HOST_API_URL").map(str::to_owned),
            log,
        })
    }
}

/// An `IP:PORT` to listen on, or `None` for `off`.
fn bind_address(raw: &Raw, name: &str) -> Result<Option<std::net::SocketAddr>, ConfigError> {
    match raw.get(name).map(str::trim) {
        None | Some("off") | Some("none") => Ok(None),
        Some(text) => text.parse().map(Some).map_err(|_| {
            ConfigError::new(
                var(name),
                Some(text),
                "not an address",
                "IP:PORT such as 0.0.0.0:8989, or `off`",
            )
        }),
    }
}

fn parse_bool(raw: &Raw, name: &str) -> Result<bool, ConfigError> {
    match raw.get(name).map(str::to_ascii_lowercase).as_deref() {
        None => Ok(false),
        Some("true" | "1" | "yes" | "on") => Ok(true),
        Some("false" | "0" | "no" | "off") => Ok(false),
        Some(other) => Err(ConfigError::new(
            var(name),
            Some(other),
            "not a boolean",
            "true or false",
        )),
    }
}

fn number(raw: &Raw, name: &str, min: u64, max: u64) -> Result<usize, ConfigError> {
    let Some(text) = raw.get(name) else {
        return Err(ConfigError::new(
            var(name),
            None,
            "not set",
            format!("a whole number from {min} to {max}"),
        ));
    };
    match text.trim().parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n as usize),
        _ => Err(ConfigError::new(
            var(name),
            Some(text),
            "out of range or not a number",
            format!("a whole number from {min} to {max}"),
        )),
    }
}

fn secs(raw: &Raw, name: &str, min: u64) -> Result<Duration, ConfigError> {
    number(raw, name, min, 30 * 24 * 3600).map(|n| Duration::from_secs(n as u64))
}

fn command(raw: &Raw, name: &str) -> Result<Vec<String>, ConfigError> {
    let text = raw.get(name).unwrap_or_default();
    let parts: Vec<String> = text.split_whitespace().map(str::to_owned).collect();
    if parts.is_empty() {
        return Err(ConfigError::new(
            var(name),
            Some(text),
            "empty",
            "a program and its arguments, e.g. `python main.py`",
        ));
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    const BASE: &[(&str, &str)] = &[
        ("SERVER_URL", "wss://cp.example.com/agent"),
        ("AUTH_TOKEN", "eyJ.tok.en"),
    ];

    #[test]
    fn defaults_and_env() {
        let raw = Raw::collect(None, env(BASE), &[]).unwrap();
        let s = Settings::validate(&raw).unwrap();
        assert_eq!(s.executor, ExecutorKind::Local);
        assert_eq!(s.runner.backoff.base, Duration::from_secs(5));
        assert_eq!(s.local.command, vec!["python", "main.py"]);
        assert_eq!(raw.source("SECRETS_MANAGER"), Some(&Source::Default));
        assert_eq!(raw.source("SERVER_URL"), Some(&Source::Env));
    }

    #[test]
    fn argo_when_endpoint_set_and_aliases_warn() {
        let mut e = env(BASE);
        e.extend(env(&[
            ("PIPELINE_SERVICE_CLIENT_ENDPOINT", "https://argo:2746"),
            ("ARGO_INGESTION_IMAGE", "repo/ingestion:1.9"),
        ]));
        let raw = Raw::collect(None, e, &[]).unwrap();
        assert_eq!(
            Settings::validate(&raw).unwrap().executor,
            ExecutorKind::Argo
        );
        assert_eq!(raw.get("INGESTION_IMAGE"), Some("repo/ingestion:1.9"));
        assert_eq!(
            raw.source("INGESTION_IMAGE"),
            Some(&Source::EnvAlias("ARGO_INGESTION_IMAGE"))
        );
        assert!(
            raw.warnings
                .iter()
                .any(|w| w.contains("ARGO_INGESTION_IMAGE is deprecated"))
        );
    }

    #[test]
    fn flags_override_env_and_file() {
        let dir = std::env::temp_dir().join(format!("runner-bin-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("runner.env");
        std::fs::write(
            &file,
            "# comment\nAGENT_ID=from-file\nRECONNECT_DELAY_SECONDS=\"9\"\n",
        )
        .unwrap();
        let raw = Raw::collect(Some(&file), env(BASE), &["AGENT_ID=from-flag".into()]).unwrap();
        let s = Settings::validate(&raw).unwrap();
        assert_eq!(s.runner.agent_id, "from-flag");
        assert_eq!(s.runner.backoff.base, Duration::from_secs(9));
        assert!(matches!(
            raw.source("RECONNECT_DELAY_SECONDS"),
            Some(Source::File(_))
        ));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn errors_name_variable_value_and_expected_form() {
        let raw = Raw::collect(None, env(&[("AUTH_TOKEN", "t")]), &[]).unwrap();
        let e = Settings::validate(&raw).unwrap_err().to_string();
        assert!(
            e.starts_with(
                "SERVER_URL: not set; expected the control plane's WebSocket URL, wss://"
            ),
            "{e}"
        );

        let raw = Raw::collect(
            None,
            env(&[("SERVER_URL", "ws://cp.example.com"), ("AUTH_TOKEN", "t")]),
            &[],
        )
        .unwrap();
        let e = Settings::validate(&raw).unwrap_err().to_string();
        assert!(
            e.contains("SERVER_URL=ws://cp.example.com") && e.contains("SERVER_ALLOW_INSECURE"),
            "{e}"
        );

        let mut e2 = env(BASE);
        e2.push(("RECONNECT_DELAY_SECONDS".into(), "soon".into()));
        let e = Settings::validate(&Raw::collect(None, e2, &[]).unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("RECONNECT_DELAY_SECONDS=soon") && e.contains("whole number"),
            "{e}"
        );

        let e = Raw::collect(None, env(BASE), &["SERVER_ULR=x".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("did you mean SERVER_URL?"), "{e}");

        let mut e3 = env(BASE);
        e3.push(("EXECUTOR_TYPE".into(), "simpleK8s".into()));
        let e = Settings::validate(&Raw::collect(None, e3, &[]).unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("not supported") && e.contains("argo or local"),
            "{e}"
        );
    }

    #[test]
    fn proxy_settings_come_from_the_environment_and_hide_passwords() {
        let mut e = env(BASE);
        e.push((
            "HTTPS_PROXY".into(),
            "http://bob:pw1@proxy.corp:3128".into(),
        ));
        e.push(("NO_PROXY".into(), ".internal".into()));
        let s = Settings::validate(&Raw::collect(None, e, &[]).unwrap()).unwrap();
        let p = s.runner.proxy.https.as_ref().unwrap();
        assert_eq!(
            (p.host(), p.port(), p.var()),
            ("proxy.corp", 3128, "HTTPS_PROXY")
        );
        assert!(s.runner.proxy.no_proxy.matches("argo.internal", 2746));

        let mut e = env(BASE);
        e.push(("HTTPS_PROXY".into(), "socks5://bob:pw2@proxy.corp".into()));
        let err = Settings::validate(&Raw::collect(None, e, &[]).unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("HTTPS_PROXY: not usable") && !err.contains("pw2"),
            "{err}"
        );

        let err = Raw::collect(None, env(BASE), &["SSL_CERT_FILE=/x.pem".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("process environment only"), "{err}");
    }

    #[test]
    fn secrets_never_shown_in_errors() {
        let e = ConfigError::new(var("AUTH_TOKEN"), Some("eyJ.secret"), "bad", "good").to_string();
        assert!(!e.contains("eyJ.secret"), "{e}");
        let mut e2 = env(BASE);
        e2.push((
            "INGESTION_EXTRA_ENVS".into(),
            "[AWS_SECRET_ACCESS_KEY:abc123,broken".into(),
        ));
        if let Err(e) = Settings::validate(&Raw::collect(None, e2, &[]).unwrap()) {
            assert!(!e.to_string().contains("abc123"), "{e}");
        }
    }
}
