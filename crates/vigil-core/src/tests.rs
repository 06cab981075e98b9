//! Support shared by the unit tests: the one clock read, an arbitrary origin
//! `Instant` from which every test counts virtual time by adding offsets.

use std::time::Instant;

/// An arbitrary starting point for virtual time.
#[allow(clippy::disallowed_methods)]
pub(crate) fn origin() -> Instant {
    Instant::now()
}
