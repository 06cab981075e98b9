//! The queue of slots whose sockets became ready, filled by wakers on any
//! thread and drained by the shard.

use parking_lot::Mutex;

#[derive(Debug, Default)]
pub(crate) struct WakeQueue {
    keys: Mutex<Vec<u32>>,
}

impl WakeQueue {
    /// Queues `key`; returns whether the queue was empty (the shard must be
    /// notified).
    pub(crate) fn push(&self, key: u32) -> bool {
        let mut keys = self.keys.lock();
        keys.push(key);
        keys.len() == 1
    }

    /// Whether no key is queued.
    pub(crate) fn is_empty(&self) -> bool {
        self.keys.lock().is_empty()
    }

    /// Moves every queued key into `out`.
    pub(crate) fn take_into(&self, out: &mut Vec<u32>) {
        std::mem::swap(out, &mut self.keys.lock());
    }
}
