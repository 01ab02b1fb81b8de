//! The outbox of runner events: sequence numbers, acknowledgement, replay after reconnect.
//!
//! Invariants: sequence numbers strictly increase per runner instance; an event stays until the
//! control plane acknowledges a sequence number at or above it; a newer status of the same run
//! supersedes an older unacknowledged one (each status is a full snapshot), so the outbox holds at
//! most one entry per run and its size is bounded by the number of runs, and by `capacity`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use runner_protocol::{EventFrame, RunnerEvent};
use tokio::sync::Notify;

#[derive(Debug)]
struct Inner {
    next_seq: u64,
    acked_through: u64,
    entries: BTreeMap<u64, RunnerEvent>,
    by_key: HashMap<(String, String), u64>,
    dropped: u64,
}

fn owned_key(event: &RunnerEvent) -> (String, String) {
    let (fqn, run) = event.supersede_key();
    (fqn.to_owned(), run.to_owned())
}

/// Shared between the executors (which publish) and the connection (which sends and acks).
#[derive(Debug)]
pub struct Outbox {
    inner: Mutex<Inner>,
    capacity: usize,
    notify: Notify,
}

impl Outbox {
    pub fn new(capacity: usize) -> Outbox {
        Outbox {
            inner: Mutex::new(Inner {
                next_seq: 1,
                acked_through: 0,
                entries: BTreeMap::new(),
                by_key: HashMap::new(),
                dropped: 0,
            }),
            capacity: capacity.max(1),
            notify: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        crate::lock(&self.inner)
    }

    /// Adds an event and wakes the connection. Never blocks and never fails.
    pub fn publish(&self, event: RunnerEvent) -> u64 {
        let seq = {
            let mut inner = self.lock();
            let seq = inner.next_seq;
            inner.next_seq += 1;
            let key = owned_key(&event);
            if let Some(old) = inner.by_key.insert(key, seq) {
                inner.entries.remove(&old);
            }
            inner.entries.insert(seq, event);
            while inner.entries.len() > self.capacity {
                if let Some((_, ev)) = inner.entries.pop_first() {
                    let key = owned_key(&ev);
                    inner.by_key.remove(&key);
                    inner.dropped += 1;
                    tracing::warn!(
                        capacity = self.capacity,
                        "outbox full: dropped the oldest unacknowledged event; the control plane is not acknowledging events"
                    );
                }
            }
            seq
        };
        crate::metrics::metrics()
            .events_pending
            .set(self.len() as i64);
        self.notify.notify_waiters();
        seq
    }

    /// Removes every event with `seq <= through`.
    pub fn ack(&self, through: u64) {
        self.ack_inner(through);
        crate::metrics::metrics()
            .events_pending
            .set(self.len() as i64);
    }

    fn ack_inner(&self, through: u64) {
        let mut inner = self.lock();
        if through <= inner.acked_through {
            return;
        }
        inner.acked_through = through;
        let keep = inner.entries.split_off(&(through + 1));
        let gone = std::mem::replace(&mut inner.entries, keep);
        for (seq, ev) in gone {
            let key = owned_key(&ev);
            if inner.by_key.get(&key) == Some(&seq) {
                inner.by_key.remove(&key);
            }
        }
    }

    /// Unacknowledged events with `seq > after`, oldest first, at most `max`.
    pub fn pending_after(&self, after: u64, max: usize) -> Vec<EventFrame> {
        let inner = self.lock();
        inner
            .entries
            .range(after + 1..)
            .take(max)
            .map(|(seq, event)| EventFrame {
                seq: *seq,
                event: event.clone(),
            })
            .collect()
    }

    /// Number of unacknowledged events.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Highest sequence number handed out so far.
    pub fn last_seq(&self) -> u64 {
        self.lock().next_seq - 1
    }

    /// Events dropped because the outbox was full.
    pub fn dropped(&self) -> u64 {
        self.lock().dropped
    }

    /// Resolves when an event is published after this call started waiting.
    pub async fn changed(&self) {
        self.notify.notified().await
    }

    /// A future that resolves on the next publish; create it *before* checking for work.
    pub fn notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.notify.notified()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use runner_protocol::{PipelineState, PipelineStatus, PipelineType};

    fn status(run: &str, state: PipelineState) -> RunnerEvent {
        RunnerEvent::RunStatus {
            pipeline_fqn: "svc.p".into(),
            pipeline_type: PipelineType::Metadata,
            status: PipelineStatus {
                run_id: run.into(),
                pipeline_state: state,
                start_date: None,
                timestamp: None,
                end_date: None,
                status: None,
                metadata: None,
            },
        }
    }

    #[test]
    fn newer_status_supersedes_unacked_older_one() {
        let o = Outbox::new(100);
        o.publish(status("a", PipelineState::Queued));
        o.publish(status("b", PipelineState::Queued));
        o.publish(status("a", PipelineState::Running));
        let pending = o.pending_after(0, 10);
        assert_eq!(
            pending.iter().map(|e| e.seq).collect::<Vec<_>>(),
            vec![2, 3]
        );
        assert_eq!(o.last_seq(), 3);
    }

    #[test]
    fn ack_is_cumulative_and_replay_starts_after_it() {
        let o = Outbox::new(100);
        for run in ["a", "b", "c", "d"] {
            o.publish(status(run, PipelineState::Queued));
        }
        o.ack(2);
        assert_eq!(
            o.pending_after(0, 10)
                .iter()
                .map(|e| e.seq)
                .collect::<Vec<_>>(),
            vec![3, 4]
        );
        o.ack(1); // stale ack: no effect
        assert_eq!(o.len(), 2);
        // A later status of an acked run is a new entry.
        o.publish(status("a", PipelineState::Success));
        assert_eq!(o.len(), 3);
        o.ack(5);
        assert!(o.is_empty());
    }

    #[test]
    fn capacity_bounds_memory() {
        let o = Outbox::new(3);
        for i in 0..10 {
            o.publish(status(&i.to_string(), PipelineState::Queued));
        }
        assert_eq!(o.len(), 3);
        assert_eq!(o.dropped(), 7);
        assert_eq!(o.pending_after(0, 10)[0].seq, 8);
    }
}
