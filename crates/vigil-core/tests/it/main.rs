//! Integration tests of vigil-core: the seeded two-peer simulator, property
//! tests over random input sequences, and the allocation audit.

mod allocations;
mod backoff_props;
mod heartbeat_props;
mod heartbeat_sim;
mod presence_props;
mod simulator;

use std::time::Instant;

/// The one clock read of these tests: an arbitrary origin for virtual time.
#[allow(clippy::disallowed_methods)]
fn origin() -> Instant {
    Instant::now()
}
