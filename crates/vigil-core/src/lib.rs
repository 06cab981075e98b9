//! Sans-IO building blocks of vigil: the per-connection heartbeat machine, its
//! RTT estimator, the presence table, a channel's message history (offsets
//! for recovery), the reconnect backoff policy and the per-connection
//! request rate limits.
//!
//! Nothing here reads a clock, does IO, spawns or draws entropy. Every method
//! that needs time takes `now: Instant` as its first argument after `self`;
//! randomness comes from a seed the caller injects. Inputs are `handle_*`,
//! application commands are plain verbs, outputs are drained with `poll_*`,
//! and `poll_timeout`/`handle_timeout` drive the timers. Losing a peer is an
//! output, never an `Err`: the only errors are configuration errors.

pub mod backoff;
pub mod heartbeat;
pub mod history;
pub mod presence;
pub mod rate;
pub mod rng;
pub mod rtt;

#[cfg(test)]
mod tests;
