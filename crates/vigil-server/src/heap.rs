//! Live heap bytes, for `cargo xtask loadtest`. Built with the `count-alloc`
//! feature, the binary's allocator is the counting allocator the bench
//! servers use (one source for both, included by path) and `/metrics`
//! shows `vigil_heap_live_bytes`; without it nothing is counted, nothing
//! is paid, and the gauge is absent.

#[cfg(all(feature = "count-alloc", not(test)))]
#[allow(dead_code, unreachable_pub)]
#[path = "../../../benches/src/alloc.rs"]
mod counting;

#[cfg(all(feature = "count-alloc", not(test)))]
#[global_allocator]
static ALLOCATOR: counting::CountingAllocator = counting::CountingAllocator::new();

/// Bytes allocated and not freed, when counted.
pub(crate) fn live_bytes() -> Option<u64> {
    #[cfg(all(feature = "count-alloc", not(test)))]
    return Some(ALLOCATOR.live_bytes() as u64);
    #[cfg(not(all(feature = "count-alloc", not(test))))]
    None
}
