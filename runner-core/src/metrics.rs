//! Prometheus metrics of the runner. The `collate_hybrid_agent_*` names are the ones the vendor
//! chart's dashboard and alerts read; the `ingestion_runner_*` ones are ours.
//!
//! One process-wide set ([`metrics()`]), recorded where things happen and encoded by the
//! binary's `/metrics` endpoint.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

type Labels = Vec<(String, String)>;

/// `_sum`, `_count` and `_max` of a duration, as the vendor dashboard reads them.
pub struct SumCountMax {
    sum: Gauge<f64, AtomicU64>,
    count: Gauge<i64>,
    max: Gauge<f64, AtomicU64>,
    max_bits: AtomicU64,
}

impl SumCountMax {
    fn new() -> SumCountMax {
        SumCountMax {
            sum: Gauge::default(),
            count: Gauge::default(),
            max: Gauge::default(),
            max_bits: AtomicU64::new(0f64.to_bits()),
        }
    }

    fn register(&self, registry: &mut Registry, name: &str, help: &str) {
        registry.register(
            format!("{name}_sum"),
            format!("{help} (sum)"),
            self.sum.clone(),
        );
        registry.register(
            format!("{name}_count"),
            format!("{help} (count)"),
            self.count.clone(),
        );
        registry.register(
            format!("{name}_max"),
            format!("{help} (max)"),
            self.max.clone(),
        );
    }

    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        self.sum.inc_by(secs);
        self.count.inc();
        let mut current = self.max_bits.load(Ordering::Relaxed);
        while secs > f64::from_bits(current) {
            match self.max_bits.compare_exchange_weak(
                current,
                secs.to_bits(),
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    self.max.set(secs);
                    break;
                }
                Err(seen) => current = seen,
            }
        }
    }

    pub fn count(&self) -> i64 {
        self.count.get()
    }
}

/// Every metric of the runner.
pub struct Metrics {
    registry: Mutex<Registry>,
    pub connected: Gauge,
    pub jobs: Family<Labels, Counter>,
    pub server_response_time: SumCountMax,
    pub executor_response_time: SumCountMax,
    cpu_usage: Gauge<f64, AtomicU64>,
    memory_usage: Gauge,
    pub reconnects: Counter,
    pub events_pending: Gauge,
    pub requests: Family<Labels, Histogram>,
    pub secret_resolutions: Family<Labels, Counter>,
    pub executor_calls: Family<Labels, Counter>,
    token_expiry: Family<Labels, Gauge>,
    cpu_last: Mutex<Option<(std::time::Instant, f64)>>,
}

fn request_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_5, 2.0, 16))
}

impl Metrics {
    fn new() -> Metrics {
        let m = Metrics {
            registry: Mutex::new(Registry::default()),
            connected: Gauge::default(),
            jobs: Family::default(),
            server_response_time: SumCountMax::new(),
            executor_response_time: SumCountMax::new(),
            cpu_usage: Gauge::default(),
            memory_usage: Gauge::default(),
            reconnects: Counter::default(),
            events_pending: Gauge::default(),
            requests: Family::new_with_constructor(request_histogram as fn() -> Histogram),
            secret_resolutions: Family::default(),
            executor_calls: Family::default(),
            token_expiry: Family::default(),
            cpu_last: Mutex::new(None),
        };
        {
            let mut r = crate::lock(&m.registry);
            r.register(
                "collate_hybrid_agent_connected",
                "1 while connected to the control plane",
                m.connected.clone(),
            );
            r.register(
                "collate_hybrid_agent_jobs",
                "Runs that finished, by final status",
                m.jobs.clone(),
            );
            m.server_response_time.register(
                &mut r,
                "collate_hybrid_agent_server_response_time_seconds",
                "Time to answer a control-plane request",
            );
            m.executor_response_time.register(
                &mut r,
                "collate_hybrid_agent_executor_response_time_seconds",
                "Time of executor calls",
            );
            r.register(
                "collate_hybrid_agent_cpu_usage",
                "CPU used by the runner since the last scrape, percent of one core",
                m.cpu_usage.clone(),
            );
            r.register(
                "collate_hybrid_agent_memory_usage",
                "Resident memory of the runner, bytes",
                m.memory_usage.clone(),
            );
            r.register(
                "ingestion_runner_reconnects",
                "Sessions established after the first",
                m.reconnects.clone(),
            );
            r.register(
                "ingestion_runner_events_pending",
                "Events not yet acknowledged by the control plane",
                m.events_pending.clone(),
            );
            r.register(
                "ingestion_runner_request_duration_seconds",
                "Request handling time by operation",
                m.requests.clone(),
            );
            r.register(
                "ingestion_runner_secret_resolutions",
                "secret: references resolved, by provider and result",
                m.secret_resolutions.clone(),
            );
            r.register(
                "ingestion_runner_executor_calls",
                "Executor calls by operation and result",
                m.executor_calls.clone(),
            );
            r.register(
                "ingestion_runner_token_expiry_timestamp_seconds",
                "Expiry (exp claim, seconds since the epoch) of AUTH_TOKEN and ARGO_TOKEN when they are JWTs",
                m.token_expiry.clone(),
            );
        }
        m
    }

    /// Records a finished request of operation `op`.
    pub fn request_done(&self, op: &str, elapsed: Duration) {
        self.server_response_time.observe(elapsed);
        self.requests
            .get_or_create(&vec![("op".to_owned(), op.to_owned())])
            .observe(elapsed.as_secs_f64());
    }

    /// Records an executor call.
    pub fn executor_call(&self, op: &str, ok: bool, elapsed: Duration) {
        self.executor_response_time.observe(elapsed);
        let result = if ok { "ok" } else { "error" };
        self.executor_calls
            .get_or_create(&vec![
                ("op".to_owned(), op.to_owned()),
                ("result".to_owned(), result.to_owned()),
            ])
            .inc();
    }

    /// Records a run that reached a final state.
    pub fn job_finished(&self, state: &str) {
        self.jobs
            .get_or_create(&vec![("status".to_owned(), state.to_owned())])
            .inc();
    }

    /// Records `n` resolutions through `provider`.
    pub fn secrets_resolved(&self, provider: &str, ok: bool, n: u64) {
        let result = if ok { "ok" } else { "error" };
        self.secret_resolutions
            .get_or_create(&vec![
                ("provider".to_owned(), provider.to_owned()),
                ("result".to_owned(), result.to_owned()),
            ])
            .inc_by(n);
    }

    /// Records the expiry of token `name` (`AUTH_TOKEN`, `ARGO_TOKEN`); `None` removes it (not
    /// a JWT, no `exp`, or unset).
    pub fn token_expiry(&self, name: &str, exp: Option<i64>) {
        let labels = vec![("token".to_owned(), name.to_owned())];
        match exp {
            Some(exp) => {
                self.token_expiry.get_or_create(&labels).set(exp);
            }
            None => {
                self.token_expiry.remove(&labels);
            }
        }
    }

    fn sample_process(&self) {
        let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
            return;
        };
        // Fields after the command name (which may contain spaces): utime is 14th, stime 15th.
        let after = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest)
            .unwrap_or_default();
        let fields: Vec<&str> = after.split_whitespace().collect();
        let ticks: f64 = fields
            .get(11)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
            + fields
                .get(12)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0);
        let cpu_secs = ticks / 100.0;
        let now = std::time::Instant::now();
        let mut last = crate::lock(&self.cpu_last);
        if let Some((t, c)) = *last {
            let wall = now.duration_since(t).as_secs_f64();
            if wall > 0.0 {
                self.cpu_usage.set(((cpu_secs - c) / wall * 100.0).max(0.0));
            }
        }
        *last = Some((now, cpu_secs));
        if let Ok(status) = std::fs::read_to_string("/proc/self/status")
            && let Some(kib) = status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<i64>().ok())
        {
            self.memory_usage.set(kib * 1024);
        }
    }

    /// The Prometheus text exposition, with process figures sampled now.
    pub fn encode(&self) -> String {
        self.sample_process();
        let mut out = String::new();
        let registry = crate::lock(&self.registry);
        if encode(&mut out, &registry).is_err() {
            out.clear();
        }
        out
    }
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process-wide metrics.
pub fn metrics() -> &'static Metrics {
    &METRICS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendor_names_are_exposed() {
        let m = metrics();
        m.request_done("ping", Duration::from_millis(3));
        m.request_done("ping", Duration::from_millis(9));
        m.job_finished("success");
        let text = m.encode();
        for name in [
            "collate_hybrid_agent_connected ",
            "collate_hybrid_agent_jobs_total{status=\"success\"}",
            "collate_hybrid_agent_server_response_time_seconds_sum ",
            "collate_hybrid_agent_server_response_time_seconds_count ",
            "collate_hybrid_agent_server_response_time_seconds_max ",
            "collate_hybrid_agent_executor_response_time_seconds_count ",
            "collate_hybrid_agent_cpu_usage ",
            "collate_hybrid_agent_memory_usage ",
            "ingestion_runner_request_duration_seconds_bucket{",
        ] {
            assert!(text.contains(name), "missing {name} in\n{text}");
        }
        let max: f64 = text
            .lines()
            .find(|l| l.starts_with("collate_hybrid_agent_server_response_time_seconds_max "))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap();
        assert!(max >= 0.009, "{max}");
    }
}
