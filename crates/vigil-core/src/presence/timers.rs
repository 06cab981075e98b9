//! The pending leaves of the presence table, ordered by deadline so the
//! earliest is found cheaply and a cancelled one is removed exactly.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

/// Names one scheduled leave. `seq` breaks ties between equal deadlines, in
/// scheduling order, and makes every key unique.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct TimerKey {
    pub(super) deadline: Instant,
    seq: u64,
}

/// A leave waiting for its deadline.
#[derive(Debug, Clone)]
pub(super) struct PendingLeave {
    pub(super) channel: Arc<str>,
    pub(super) user: Arc<str>,
}

/// Scheduled leaves. Cancelling removes the entry (the member keeps its key),
/// so there are no stale entries and the first key is always the next
/// deadline: `poll_timeout` can stay `&self`.
#[derive(Debug, Clone, Default)]
pub(super) struct LeaveTimers {
    queue: BTreeMap<TimerKey, PendingLeave>,
    next_seq: u64,
}

impl LeaveTimers {
    pub(super) fn schedule(&mut self, deadline: Instant, leave: PendingLeave) -> TimerKey {
        let key = TimerKey {
            deadline,
            seq: self.next_seq,
        };
        // 2^64 schedules never happen; wrapping keeps this panic-free anyway.
        self.next_seq = self.next_seq.wrapping_add(1);
        self.queue.insert(key, leave);
        key
    }

    pub(super) fn cancel(&mut self, key: TimerKey) {
        self.queue.remove(&key);
    }

    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.queue.first_key_value().map(|(key, _)| key.deadline)
    }

    /// Removes and returns the earliest leave if it is due at `now`.
    pub(super) fn pop_due(&mut self, now: Instant) -> Option<PendingLeave> {
        let entry = self.queue.first_entry()?;
        if entry.key().deadline > now {
            return None;
        }
        Some(entry.remove())
    }

    pub(super) fn len(&self) -> usize {
        self.queue.len()
    }
}
