//! The counting allocator counts what it forwards.

use std::alloc::{GlobalAlloc, Layout};

use super::CountingAllocator;

#[test]
fn counts_live_bytes_and_allocations() {
    let counter = CountingAllocator::new();
    let layout = Layout::from_size_align(100, 8).expect("a valid layout");
    // SAFETY: `layout` has a non-zero size; each pointer is freed once,
    // by the same allocator, with the layout it was allocated with.
    unsafe {
        let a = counter.alloc(layout);
        let b = counter.alloc_zeroed(layout);
        assert_eq!((counter.live_bytes(), counter.live_allocations()), (200, 2));
        let a = counter.realloc(a, layout, 300);
        assert_eq!(counter.live_bytes(), 400);
        counter.dealloc(a, Layout::from_size_align(300, 8).expect("valid"));
        counter.dealloc(b, layout);
    }
    assert_eq!(counter.live_bytes(), 0);
    assert_eq!(counter.live_allocations(), 0);
    assert_eq!(counter.allocations(), 3);
}
