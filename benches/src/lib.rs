//! Support for vigil's benchmarks: the criterion benches of vigil-core live in
//! `benches/`; the idle-connection bench servers (`src/bin/`) share the
//! counting allocator, the command line and the stats file defined here, so
//! `cargo xtask bench-idle` measures every server the same way.

pub mod alloc;
pub mod server_args;
pub mod stats;
