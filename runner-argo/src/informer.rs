//! One watch per namespace, kept alive: list, watch from the list's resourceVersion, and
//! re-list / re-watch with backoff on EOF and errors (what a Kubernetes informer does).
//! The runner tracks every run of a namespace with one of these, never one poll per run.

use std::time::Duration;

use futures_util::stream::{Stream, StreamExt};

use crate::client::ArgoClient;
use crate::error::ArgoError;
use crate::model::Workflow;
use crate::stream::ArgoStream;

/// What the informer yields. It never ends by itself; drop it to stop.
#[derive(Debug)]
pub enum InformerEvent {
    /// The full current set of matching workflows (at start and after every re-list).
    /// Runs known to the caller but absent here are gone (deleted, e.g. by TTL).
    Resync(Vec<Workflow>),
    /// A workflow was added or changed.
    Applied(Workflow),
    /// A workflow was deleted.
    Deleted(Workflow),
    /// The watch broke (`error`); the informer retries after `retry_in` (a re-watch from the
    /// last resourceVersion after a clean EOF, a re-list after an error).
    Interrupted {
        error: ArgoError,
        retry_in: Duration,
    },
}

/// Backoff of the informer's retries.
#[derive(Debug, Clone)]
pub struct InformerConfig {
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for InformerConfig {
    fn default() -> Self {
        Self {
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
        }
    }
}

enum Next {
    List,
    Watch,
    Read,
}

struct St {
    client: ArgoClient,
    ns: String,
    selector: String,
    cfg: InformerConfig,
    rv: Option<String>,
    watch: Option<ArgoStream<crate::model::WorkflowWatchEvent>>,
    next: Next,
    failures: u32,
    sleep: Option<Duration>,
}

impl St {
    fn backoff(&mut self) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let d = self
            .cfg
            .initial_backoff
            .saturating_mul(1u32 << (self.failures - 1).min(16));
        d.min(self.cfg.max_backoff)
    }
}

/// Start an informer on `namespace` for workflows matching `label_selector`.
pub fn informer(
    client: ArgoClient,
    namespace: &str,
    label_selector: &str,
    cfg: InformerConfig,
) -> impl Stream<Item = InformerEvent> + Send + 'static {
    let st = St {
        client,
        ns: namespace.to_owned(),
        selector: label_selector.to_owned(),
        cfg,
        rv: None,
        watch: None,
        next: Next::List,
        failures: 0,
        sleep: None,
    };
    futures_util::stream::unfold(st, |mut st| async move {
        loop {
            if let Some(d) = st.sleep.take() {
                tokio::time::sleep(d).await;
            }
            match st.next {
                Next::List => match st.client.list_workflows(&st.ns, &st.selector).await {
                    Ok(list) => {
                        st.rv = list.metadata.resource_version.clone();
                        st.next = Next::Watch;
                        return Some((InformerEvent::Resync(list.items), st));
                    }
                    Err(error) => {
                        let retry_in = st.backoff();
                        st.sleep = Some(retry_in);
                        return Some((InformerEvent::Interrupted { error, retry_in }, st));
                    }
                },
                Next::Watch => {
                    match st
                        .client
                        .watch_workflows(&st.ns, &st.selector, st.rv.as_deref())
                        .await
                    {
                        Ok(w) => {
                            st.watch = Some(w);
                            st.next = Next::Read;
                        }
                        Err(error) => {
                            let retry_in = st.backoff();
                            st.sleep = Some(retry_in);
                            st.next = Next::List;
                            return Some((InformerEvent::Interrupted { error, retry_in }, st));
                        }
                    }
                }
                Next::Read => {
                    let item = match st.watch.as_mut() {
                        Some(w) => w.next().await,
                        None => None,
                    };
                    match item {
                        Some(Ok(ev)) if ev.event_type == "ERROR" => {
                            st.watch = None;
                            st.next = Next::List;
                            let message = ev
                                .error_message
                                .unwrap_or_else(|| "watch ERROR event".into());
                            let retry_in = st.backoff();
                            st.sleep = Some(retry_in);
                            let error = ArgoError::Stream {
                                grpc_code: None,
                                message,
                            };
                            return Some((InformerEvent::Interrupted { error, retry_in }, st));
                        }
                        Some(Ok(ev)) => {
                            let Some(obj) = ev.object else { continue };
                            if let Some(rv) = obj.metadata.resource_version.clone() {
                                st.rv = Some(rv);
                            }
                            st.failures = 0;
                            if ev.event_type == "BOOKMARK" {
                                continue;
                            }
                            let out = if ev.event_type == "DELETED" {
                                InformerEvent::Deleted(obj)
                            } else {
                                InformerEvent::Applied(obj)
                            };
                            return Some((out, st));
                        }
                        Some(Err(error @ ArgoError::Timeout { .. })) => {
                            // idle (no event, no keep-alive): re-watch from where we were; a
                            // too-old resourceVersion then comes back as an error -> re-list
                            st.watch = None;
                            st.next = Next::Watch;
                            let retry_in = st.backoff();
                            st.sleep = Some(retry_in);
                            return Some((InformerEvent::Interrupted { error, retry_in }, st));
                        }
                        Some(Err(error)) => {
                            st.watch = None;
                            st.next = Next::List;
                            let retry_in = st.backoff();
                            st.sleep = Some(retry_in);
                            return Some((InformerEvent::Interrupted { error, retry_in }, st));
                        }
                        None => {
                            // clean EOF (server timeout, proxy): re-watch from where we were
                            st.watch = None;
                            st.next = Next::Watch;
                            let retry_in = st.backoff();
                            st.sleep = Some(retry_in);
                            let error = ArgoError::Stream {
                                grpc_code: None,
                                message: "the watch stream ended (EOF)".into(),
                            };
                            return Some((InformerEvent::Interrupted { error, retry_in }, st));
                        }
                    }
                }
            }
        }
    })
}
