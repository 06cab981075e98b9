//! Wakers that cost nothing per connection: the waker of a socket encodes
//! its shard and slot in the pointer bits, and waking it queues the slot on
//! its shard. No `Arc`, no task, no allocation per connection.

use super::ShardShared;
use parking_lot::RwLock;
use std::sync::Arc;
use std::task::{RawWaker, RawWakerVTable, Waker};

/// Live shards by registry index; a waker outliving its shard finds `None`.
static REGISTRY: RwLock<Vec<Option<Arc<ShardShared>>>> = RwLock::new(Vec::new());

/// Registers a shard; returns the index its wakers carry.
pub(crate) fn register(shared: Arc<ShardShared>) -> u16 {
    let mut registry = REGISTRY.write();
    if let Some(index) = registry.iter().position(Option::is_none) {
        registry[index] = Some(shared);
        return u16::try_from(index).expect("the registry never exceeds u16::MAX entries");
    }
    registry.push(Some(shared));
    u16::try_from(registry.len() - 1).expect("fewer than 65,536 shards live at once")
}

/// Forgets a stopped shard; its stale wakers become no-ops.
pub(crate) fn unregister(index: u16) {
    if let Some(entry) = REGISTRY.write().get_mut(usize::from(index)) {
        *entry = None;
    }
}

/// The waker of slot `key` of shard `index`.
pub(crate) fn slot_waker(index: u16, key: u32) -> Waker {
    let data = (u64::from(index) << 32 | u64::from(key)) as usize as *const ();
    // SAFETY: the vtable functions never dereference `data`; it is a plain
    // integer carried in a pointer, valid to copy and drop in any thread.
    unsafe { Waker::from_raw(RawWaker::new(data, &VTABLE)) }
}

static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, wake, wake, drop_waker);

fn clone(data: *const ()) -> RawWaker {
    RawWaker::new(data, &VTABLE)
}

fn wake(data: *const ()) {
    let bits = data as usize as u64;
    let index = (bits >> 32) as usize;
    let key = bits as u32;
    let shard = REGISTRY.read().get(index).cloned().flatten();
    if let Some(shard) = shard {
        shard.push_ready(key);
    }
}

fn drop_waker(_: *const ()) {}
