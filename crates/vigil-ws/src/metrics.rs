//! Counters every shard keeps for the server: heartbeats and closes by
//! reason, read at any time without stopping anyone.

use crate::handler::CloseReason;
use std::sync::atomic::{AtomicU64, Ordering};

/// The close reasons counted, in the order of [`Metrics::closes`].
pub const CLOSE_LABELS: [&str; 9] = [
    "peer_closed",
    "closed",
    "heartbeat_timeout",
    "close_timeout",
    "write_timeout",
    "slow_consumer",
    "protocol_error",
    "shutdown",
    "transport_ended",
];

/// One shard's counters; only its own thread writes them.
#[derive(Debug, Default)]
pub(crate) struct ShardMetrics {
    opened: AtomicU64,
    suspects: AtomicU64,
    pings_sent: AtomicU64,
    pongs_received: AtomicU64,
    messages_received: AtomicU64,
    messages_sent: AtomicU64,
    closes: [AtomicU64; CLOSE_LABELS.len()],
}

impl ShardMetrics {
    pub(crate) fn opened(&self) {
        self.opened.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn suspect(&self) {
        self.suspects.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn ping_sent(&self) {
        self.pings_sent.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn pong_received(&self) {
        self.pongs_received.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn message_received(&self) {
        self.messages_received.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn message_sent(&self) {
        self.messages_sent.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn closed(&self, reason: CloseReason) {
        let index = CLOSE_LABELS
            .iter()
            .position(|label| *label == reason.label())
            .expect("every close reason has a label in CLOSE_LABELS");
        self.closes[index].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn add_to(&self, total: &mut Metrics) {
        total.opened += self.opened.load(Ordering::Relaxed);
        total.suspects += self.suspects.load(Ordering::Relaxed);
        total.pings_sent += self.pings_sent.load(Ordering::Relaxed);
        total.pongs_received += self.pongs_received.load(Ordering::Relaxed);
        total.messages_received += self.messages_received.load(Ordering::Relaxed);
        total.messages_sent += self.messages_sent.load(Ordering::Relaxed);
        for (sum, count) in total.closes.iter_mut().zip(&self.closes) {
            *sum += count.load(Ordering::Relaxed);
        }
    }
}

/// A snapshot of a server's counters since it started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metrics {
    /// Live connections.
    pub connections: u64,
    /// Heartbeat pings sent (protocol or app-level).
    pub pings_sent: u64,
    /// Connections opened since the start.
    pub opened: u64,
    /// Times a connection turned suspect (a ping unanswered past half the
    /// timeout).
    pub suspects: u64,
    /// Pongs received (protocol or app-level), ours or unsolicited.
    pub pongs_received: u64,
    /// Application messages delivered to the handler.
    pub messages_received: u64,
    /// Application messages queued by the application.
    pub messages_sent: u64,
    /// Connections closed, per reason, indexed like [`CLOSE_LABELS`].
    pub closes: [u64; CLOSE_LABELS.len()],
    /// Upgraded connections that could not be taken over because hyper
    /// handed back something other than a plain `TokioIo<TcpStream>` (e.g.
    /// hyper-util's auto builder, as used by `axum::serve`); each was closed.
    pub upgrades_refused: u64,
}

impl Metrics {
    /// How many connections ended for `reason`.
    pub fn closes_for(&self, reason: CloseReason) -> u64 {
        CLOSE_LABELS
            .iter()
            .position(|label| *label == reason.label())
            .map_or(0, |index| self.closes[index])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_close_reason_has_a_counter() {
        let metrics = ShardMetrics::default();
        let reasons = [
            CloseReason::PeerClosed { code: None },
            CloseReason::Closed { code: 1000 },
            CloseReason::HeartbeatTimeout,
            CloseReason::CloseTimeout,
            CloseReason::WriteTimeout,
            CloseReason::SlowConsumer,
            CloseReason::ProtocolError {
                code: 1002,
                reason: "x",
            },
            CloseReason::Shutdown,
            CloseReason::TransportEnded,
        ];
        for reason in reasons {
            metrics.closed(reason);
        }
        let mut total = Metrics::default();
        metrics.add_to(&mut total);
        assert_eq!(total.closes, [1; CLOSE_LABELS.len()]);
        for reason in reasons {
            assert_eq!(total.closes_for(reason), 1, "{reason:?}");
        }
    }
}
