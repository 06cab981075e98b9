//! A counting global allocator: live heap bytes and allocation counts of a
//! bench server, read by its stats writer (heap per connection is measured
//! with it, not guessed from RSS).
//!
//! Install it in a binary with
//! `#[global_allocator] static ALLOC: CountingAllocator = CountingAllocator::new();`.

use std::{
    alloc::{GlobalAlloc, Layout, System},
    sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed},
};

/// Wraps the system allocator and counts what passes through it.
///
/// Bytes are the sizes callers asked for (`Layout::size`), not what malloc
/// rounds them up to: the figure is the program's demand, comparable across
/// allocators. Relaxed atomics: each counter is exact on its own; a reader
/// may see one counter a few operations ahead of another.
#[derive(Debug)]
pub struct CountingAllocator {
    live_bytes: AtomicUsize,
    allocations: AtomicU64,
    frees: AtomicU64,
}

impl CountingAllocator {
    pub const fn new() -> CountingAllocator {
        CountingAllocator {
            live_bytes: AtomicUsize::new(0),
            allocations: AtomicU64::new(0),
            frees: AtomicU64::new(0),
        }
    }

    /// Bytes currently allocated and not freed.
    pub fn live_bytes(&self) -> usize {
        self.live_bytes.load(Relaxed)
    }

    /// Allocations made since the start (monotonic; a `realloc` counts as one
    /// allocation and one free), for allocations per operation.
    pub fn allocations(&self) -> u64 {
        self.allocations.load(Relaxed)
    }

    /// Blocks currently allocated and not freed.
    pub fn live_allocations(&self) -> u64 {
        self.allocations().saturating_sub(self.frees.load(Relaxed))
    }

    fn allocated(&self, size: usize) {
        self.live_bytes.fetch_add(size, Relaxed);
        self.allocations.fetch_add(1, Relaxed);
    }

    fn freed(&self, size: usize) {
        self.live_bytes.fetch_sub(size, Relaxed);
        self.frees.fetch_add(1, Relaxed);
    }
}

impl Default for CountingAllocator {
    fn default() -> CountingAllocator {
        CountingAllocator::new()
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged and returns its result unchanged; the counting only touches
// atomics and never allocates, so `System`'s guarantees carry over.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract for `layout`.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            self.allocated(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::alloc_zeroed`'s contract.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            self.allocated(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` through this allocator with
        // `layout`, as the caller guarantees.
        unsafe { System.dealloc(ptr, layout) };
        self.freed(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::realloc`'s contract; `ptr`
        // came from `System` through this allocator.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            self.freed(layout.size());
            self.allocated(new_size);
        }
        new
    }
}

// An explicit path, so the file reads the same when vigil-server includes
// it by path (its `count-alloc` feature).
#[cfg(test)]
#[path = "alloc/tests.rs"]
mod tests;
