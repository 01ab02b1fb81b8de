//! Leak scans for tests that resolve secrets: every frame the control plane received, every
//! log line the process emitted (a capturing `tracing` subscriber), every object put into
//! Argo or Kubernetes, scanned with `runner_secrets::leak::LeakScanner` (the value and its
//! encodings). The one object allowed to hold values is the per-run config Secret
//! (`SECRETS_DELIVERY=runner`), exempted by kind and name and required to hold them.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use runner_argo::fake::FakeArgo;
use runner_core::testkit::MockControlPlane;
use runner_secrets::leak::LeakScanner;
use serde_json::Value;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// A scanner for these values; fails when one is too short to be scanned for.
pub fn scanner(values: &[&str]) -> LeakScanner {
    let s = LeakScanner::from_strs(values.iter().copied());
    assert!(
        s.skipped().is_empty(),
        "values {:?} are shorter than {} bytes: the scan would not look for them",
        s.skipped(),
        runner_secrets::leak::MIN_SECRET_LEN
    );
    s
}

/// Every frame the runner sent upstream.
pub fn assert_no_leak_upstream(s: &LeakScanner, cp: &MockControlPlane) {
    let frames = cp.transcript();
    assert!(!frames.is_empty(), "no frame was recorded: nothing scanned");
    for (i, frame) in frames.iter().enumerate() {
        s.assert_clean(&format!("frame #{i} sent to the control plane"), frame);
    }
}

/// Every log line emitted in this test process so far (all tests of the binary: values are
/// unique per test, so a hit is still this test's leak).
pub fn assert_no_leak_in_logs(s: &LeakScanner) {
    let text = logs().text();
    assert!(
        !text.is_empty(),
        "no log line was captured: nothing scanned"
    );
    s.assert_clean("the runner's tracing output", &text);
}

/// One object to scan: where it went, and the object.
pub struct Put {
    pub place: String,
    pub object: Value,
}

/// Every body the fake Argo Server received and every object it holds.
pub fn argo_objects(fake: &FakeArgo) -> Vec<Put> {
    let mut out: Vec<Put> = fake
        .bodies()
        .into_iter()
        .map(|(place, object)| Put { place, object })
        .collect();
    for w in fake.workflows() {
        out.push(Put {
            place: "a Workflow held by Argo".into(),
            object: w,
        });
    }
    for c in fake.cron_workflows() {
        out.push(Put {
            place: "a CronWorkflow held by Argo".into(),
            object: c,
        });
    }
    out
}

/// The one object allowed to hold resolved values.
pub struct Exempt<'a> {
    pub kind: &'a str,
    pub name: &'a str,
}

fn kind_and_name(v: &Value) -> (Option<&str>, Option<&str>) {
    // A create request wraps the object (`{"workflow": {...}}`); a Secret is the object itself.
    let obj = ["workflow", "cronWorkflow"]
        .iter()
        .find_map(|k| v.get(*k))
        .unwrap_or(v);
    (
        obj.get("kind").and_then(Value::as_str),
        obj.pointer("/metadata/name").and_then(Value::as_str),
    )
}

/// Scans `objects`: none may hold a value, except `exempt` (matched by kind and name), which
/// must be among them and must hold every value (so the exemption cannot hide a bug). Returns
/// how many objects were scanned.
pub fn assert_no_leak_in_objects(
    s: &LeakScanner,
    objects: &[Put],
    exempt: Option<Exempt<'_>>,
) -> usize {
    assert!(!objects.is_empty(), "no object to scan");
    let mut exempt_seen = 0;
    for p in objects {
        let text = serde_json::to_string(&p.object).unwrap();
        let (kind, name) = kind_and_name(&p.object);
        if let Some(e) = &exempt
            && kind == Some(e.kind)
            && name == Some(e.name)
        {
            exempt_seen += 1;
            let found: std::collections::BTreeSet<usize> =
                s.scan(&text).into_iter().map(|l| l.value).collect();
            assert_eq!(
                found.len(),
                s.value_count(),
                "the exempt {} {} should hold every resolved value (found values {found:?}): \
                 the exemption would hide a bug",
                e.kind,
                e.name
            );
            continue;
        }
        s.assert_clean(
            &format!(
                "{} ({} {})",
                p.place,
                kind.unwrap_or("?"),
                name.unwrap_or("?")
            ),
            &text,
        );
    }
    if let Some(e) = exempt {
        assert!(
            exempt_seen > 0,
            "the exempt {} {} was not among the objects scanned",
            e.kind,
            e.name
        );
    }
    objects.len()
}

/// A process-wide `tracing` subscriber that keeps every event and span field (all levels, all
/// targets) as text.
pub struct LogCapture {
    buf: Mutex<String>,
    next_id: AtomicU64,
}

const CAPTURE_MAX: usize = 64 << 20;

impl LogCapture {
    pub fn text(&self) -> String {
        self.buf.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
    fn push(&self, line: String) {
        let mut b = self.buf.lock().unwrap_or_else(|e| e.into_inner());
        if b.len() < CAPTURE_MAX {
            b.push_str(&line);
            b.push('\n');
        }
    }
}

struct Fields(String);

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        let _ = write!(self.0, " {}={}", field.name(), value);
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, " {}={:?}", field.name(), value);
    }
}

struct Capturing(&'static LogCapture);

impl Subscriber for Capturing {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::TRACE)
    }
    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let mut f = Fields(format!("span {}:", attrs.metadata().name()));
        attrs.record(&mut f);
        self.0.push(f.0);
        Id::from_u64(self.0.next_id.fetch_add(1, Ordering::Relaxed) + 1)
    }
    fn record(&self, _: &Id, values: &Record<'_>) {
        let mut f = Fields("span record:".into());
        values.record(&mut f);
        self.0.push(f.0);
    }
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let m = event.metadata();
        let mut f = Fields(format!("{} {}:", m.level(), m.target()));
        event.record(&mut f);
        self.0.push(f.0);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

/// The capture, installed as the global subscriber on first use (call it before the runner
/// starts). Fails if another global subscriber was installed first.
pub fn logs() -> &'static LogCapture {
    static CAPTURE: OnceLock<&'static LogCapture> = OnceLock::new();
    CAPTURE.get_or_init(|| {
        let c: &'static LogCapture = Box::leak(Box::new(LogCapture {
            buf: Mutex::new(String::new()),
            next_id: AtomicU64::new(0),
        }));
        tracing::subscriber::set_global_default(Capturing(c))
            .expect("another global tracing subscriber is installed: logs would not be captured");
        c
    })
}
