//! The heartbeat machine never allocates: a counting allocator watches a long
//! simulated run of many connections and must see zero allocations.
//!
//! The counter is per thread, so tests running in parallel do not disturb
//! each other's counts.

use crate::origin;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;
use vigil_core::heartbeat::{Action, Config, EndReason, Frame, Heartbeat, ping_payload};

struct CountingAllocator;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded unchanged to the system allocator; the
// thread-local counter is const-initialised and has no destructor, so touching
// it never allocates or re-enters the allocator.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|count| count.set(count.get() + 1));
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|count| count.set(count.get() + 1));
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

fn allocations_on_this_thread() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

#[test]
fn the_counter_sees_allocations() {
    let before = allocations_on_this_thread();
    let boxed = std::hint::black_box(Box::new(7u64));
    assert!(
        allocations_on_this_thread() > before,
        "the audit below would prove nothing"
    );
    drop(boxed);
}

#[test]
fn a_long_run_of_many_connections_allocates_nothing() {
    const CONNECTIONS: u64 = 1_000;
    let config = Config::default();
    let start = origin();
    let mut connections: Vec<Heartbeat> = Vec::with_capacity(CONNECTIONS as usize);
    let before = allocations_on_this_thread();
    connections.extend((0..CONNECTIONS).map(|seed| Heartbeat::new(start, &config, seed)));

    let (mut pings, mut suspects, mut timeouts, mut closes) = (0u64, 0u64, 0u64, 0u64);
    let mut now = start;
    for step in 0..2_000u64 {
        now += Duration::from_millis(250);
        for (index, heartbeat) in connections.iter_mut().enumerate() {
            // A third of the peers talk every 2 s and are never pinged; a
            // third answer every ping; the rest answer only even pings, so
            // they turn suspect and die. Every 5th also pings us, and every
            // 97th is closed by us at step 1500.
            let kind = index % 3;
            if kind == 0 && step % 8 == 0 {
                heartbeat.handle_frame(now, &config, Frame::Data);
            }
            if index % 5 == 0 && step % 40 == 0 {
                heartbeat.handle_frame(now, &config, Frame::Ping);
            }
            if index % 97 == 0 && step == 1_500 {
                heartbeat.close(now, &config, 1000);
            }
            if heartbeat
                .poll_timeout()
                .is_some_and(|deadline| deadline <= now)
            {
                heartbeat.handle_timeout(now, &config);
            }
            while let Some(action) = heartbeat.poll_action() {
                match action {
                    Action::SendPing { id } => {
                        pings += 1;
                        if kind == 1 || id % 2 == 0 {
                            heartbeat.handle_frame(now, &config, Frame::Pong(&ping_payload(id)));
                        }
                    }
                    Action::Suspect => suspects += 1,
                    Action::Finished(EndReason::HeartbeatTimeout) => timeouts += 1,
                    Action::SendClose { .. } => closes += 1,
                    _ => {}
                }
            }
            std::hint::black_box(heartbeat.state());
        }
    }

    let allocated = allocations_on_this_thread() - before;
    // The run must reach every path it claims to audit.
    assert!(pings > 1_000, "{pings} pings");
    assert!(suspects > 100, "{suspects} suspects");
    assert!(timeouts > 100, "{timeouts} heartbeat timeouts");
    assert!(closes > 0, "{closes} closes");
    assert_eq!(
        allocated, 0,
        "{allocated} allocations in the heartbeat machine"
    );
}
