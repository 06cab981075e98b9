//! The limit on a peer's own heartbeat pings. Each one is answered with a
//! pong, so a peer pinging without pause makes us write as fast as it
//! sends; each connection counts its pings per fixed window, and the one
//! over the limit closes the connection with 1008 ("too many pings").
//!
//! The default (500 per 10 s, 50 a second on average) is far above any
//! keepalive: libraries ping every few seconds at most, and even a client
//! measuring its round trip every 100 ms uses a fifth of it.

use std::time::{Duration, Instant};

/// How many pings (protocol ping frames, and in application-level mode
/// `{"type":"ping"}` texts) a peer may send per window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PingLimit {
    /// Pings answered per window; the next one closes the connection.
    pub max_pings: u32,
    /// The window: pings are counted per consecutive span of this length
    /// (aligned on the server's start), so a burst across two spans may
    /// reach twice `max_pings` before the close.
    pub window: Duration,
}

impl Default for PingLimit {
    fn default() -> Self {
        Self {
            max_pings: 500,
            window: Duration::from_secs(10),
        }
    }
}

impl PingLimit {
    pub(crate) fn validate(&self) -> Result<(), &'static str> {
        if self.max_pings == 0 {
            Err("ping_limit.max_pings must be at least 1 (use None for no limit)")
        } else if self.window.is_zero() {
            Err("ping_limit.window must be positive")
        } else {
            Ok(())
        }
    }
}

/// One connection's count of pings in the current window. Windows are
/// consecutive spans of `limit.window` from the shard's epoch, so a
/// connection holds two counters (8 bytes) rather than an `Instant`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PingWindow {
    window: u32,
    count: u32,
}

impl PingWindow {
    /// Counts one ping arriving at `now`: true while the peer is within
    /// `limit`, false for every ping over it until the next window.
    pub(crate) fn handle_ping(&mut self, now: Instant, epoch: Instant, limit: &PingLimit) -> bool {
        let since = now.saturating_duration_since(epoch).as_nanos();
        let window = since
            .checked_div(limit.window.as_nanos())
            .map_or(0, |window| u32::try_from(window).unwrap_or(u32::MAX));
        // A clock that goes backwards keeps the current window.
        if window > self.window {
            self.window = window;
            self.count = 0;
        }
        self.count = self.count.saturating_add(1);
        self.count <= limit.max_pings
    }
}

#[cfg(test)]
mod tests;
