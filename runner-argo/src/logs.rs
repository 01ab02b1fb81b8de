//! Logs as the control plane pages them: `{<task key>: text, "total": N, "after": M}`.

use futures_util::StreamExt;
use serde_json::{Map, Value};

use crate::error::ArgoError;
use crate::model::LogEntry;
use crate::stream::ArgoStream;

/// Default page size (bytes of log text per page).
pub const DEFAULT_PAGE_BYTES: usize = 1_000_000;

/// Task key by pipeline type (OpenMetadata's log keys).
pub fn task_key(pipeline_type: &str) -> Option<&'static str> {
    Some(match pipeline_type {
        "metadata" => "ingestion_task",
        "profiler" => "profiler_task",
        "autoClassification" => "auto_classification_task",
        "lineage" => "lineage_task",
        "dbt" => "dbt_task",
        "usage" => "usage_task",
        "TestSuite" => "test_suite_task",
        "dataInsight" => "data_insight_task",
        "elasticSearchReindex" => "elasticsearch_reindex_task",
        "application" => "application_task",
        "automation" => "automation_task",
        _ => return None,
    })
}

/// One page of a run's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogPage {
    pub task_key: String,
    pub content: String,
    /// Number of pages.
    pub total: usize,
    /// Cursor of the next page; `None` on the last page.
    pub after: Option<usize>,
}

impl LogPage {
    /// `{"<task_key>": content, "total": "N", "after": "M"}` (values as strings, like the
    /// `Map<String,String>` of OpenMetadata's pipeline client; `after` absent on the last page).
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert(self.task_key.clone(), Value::String(self.content.clone()));
        m.insert("total".into(), Value::String(self.total.to_string()));
        if let Some(a) = self.after {
            m.insert("after".into(), Value::String(a.to_string()));
        }
        Value::Object(m)
    }
}

/// Page `text` in chunks of at most `page_bytes` (cut at char boundaries, preferring a
/// line end). `after` is the cursor the control plane sent (`None`/unparsable -> page 0).
pub fn page_logs(
    pipeline_type: &str,
    text: &str,
    after: Option<&str>,
    page_bytes: usize,
) -> LogPage {
    let key = task_key(pipeline_type)
        .unwrap_or("ingestion_task")
        .to_owned();
    let chunks = chunk(text, page_bytes.max(1));
    let total = chunks.len().max(1);
    let idx = after
        .and_then(|a| a.trim().parse::<usize>().ok())
        .unwrap_or(0)
        .min(total - 1);
    let content = chunks.get(idx).map(|c| c.to_string()).unwrap_or_default();
    LogPage {
        task_key: key,
        content,
        total,
        after: (idx + 1 < total).then_some(idx + 1),
    }
}

fn chunk(text: &str, size: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        if rest.len() <= size {
            out.push(rest);
            break;
        }
        let mut cut = size;
        while cut > 0 && !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        if let Some(nl) = rest[..cut].rfind('\n').filter(|n| *n > cut / 2) {
            cut = nl + 1;
        }
        if cut == 0 {
            cut = rest
                .char_indices()
                .nth(1)
                .map(|(i, _)| i)
                .unwrap_or(rest.len());
        }
        out.push(&rest[..cut]);
        rest = &rest[cut..];
    }
    out
}

/// Read a (non-follow) log stream into text, one entry per line, keeping at most
/// `max_bytes` (the tail is dropped and a marker line added).
pub async fn collect_log_text(
    mut stream: ArgoStream<LogEntry>,
    max_bytes: usize,
) -> Result<String, ArgoError> {
    let mut out = String::new();
    while let Some(item) = stream.next().await {
        let e = item?;
        if out.len() + e.content.len() + 1 > max_bytes {
            out.push_str("... [log truncated by the runner]\n");
            break;
        }
        out.push_str(&e.content);
        out.push('\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_keys() {
        for (t, k) in [
            ("metadata", "ingestion_task"),
            ("profiler", "profiler_task"),
            ("autoClassification", "auto_classification_task"),
            ("lineage", "lineage_task"),
            ("dbt", "dbt_task"),
            ("usage", "usage_task"),
            ("TestSuite", "test_suite_task"),
            ("dataInsight", "data_insight_task"),
            ("elasticSearchReindex", "elasticsearch_reindex_task"),
            ("application", "application_task"),
        ] {
            assert_eq!(task_key(t), Some(k));
        }
        assert_eq!(task_key("nope"), None);
    }

    #[test]
    fn paging() {
        let text: String = (0..100).map(|i| format!("line {i:03}\n")).collect(); // 9 bytes a line
        let p0 = page_logs("profiler", &text, None, 300);
        assert_eq!(p0.task_key, "profiler_task");
        assert!(p0.total >= 4, "{}", p0.total);
        assert_eq!(p0.after, Some(1));
        assert!(p0.content.ends_with('\n'));
        let mut all = p0.content.clone();
        let mut after = p0.after;
        while let Some(a) = after {
            let p = page_logs("profiler", &text, Some(&a.to_string()), 300);
            all.push_str(&p.content);
            after = p.after;
        }
        assert_eq!(all, text);
        let last = page_logs("profiler", &text, Some("999"), 300);
        assert_eq!(last.after, None);
        let j = p0.to_json();
        assert_eq!(j["total"], Value::String(p0.total.to_string()));
        assert_eq!(j["after"], "1");
        let empty = page_logs("metadata", "", None, 10);
        assert_eq!(
            (empty.total, empty.after, empty.content.as_str()),
            (1, None, "")
        );
        // multi-byte chars are never split
        let u = "é".repeat(10);
        let p = page_logs("metadata", &u, None, 3);
        assert!(p.content.chars().all(|c| c == 'é'));
    }
}
