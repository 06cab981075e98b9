//! Counters every shard keeps for the server: heartbeats, closes by
//! reason, bytes, round-trip times and timer lag, read at any time without
//! stopping anyone.

mod histogram;

use crate::handler::CloseReason;
use histogram::Recorder;
pub use histogram::{Histogram, RTT_BOUNDS_US, TIMER_LAG_BOUNDS_US};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The close reasons counted, in the order of [`Metrics::closes`].
pub const CLOSE_LABELS: [&str; 10] = [
    "peer_closed",
    "closed",
    "heartbeat_timeout",
    "close_timeout",
    "write_timeout",
    "slow_consumer",
    "ping_flood",
    "protocol_error",
    "shutdown",
    "transport_ended",
];

/// One shard's counters; only its own thread writes them (but for
/// `queue_overflows`, which senders bump when the shard refuses them).
#[derive(Debug)]
pub(crate) struct ShardMetrics {
    opened: AtomicU64,
    streams_opened: AtomicU64,
    suspects: AtomicU64,
    pings_sent: AtomicU64,
    pongs_received: AtomicU64,
    messages_received: AtomicU64,
    messages_sent: AtomicU64,
    bytes_received: AtomicU64,
    bytes_sent: AtomicU64,
    queue_overflows: AtomicU64,
    closes: [AtomicU64; CLOSE_LABELS.len()],
    rtt: Recorder,
    timer_lag: Recorder,
}

impl Default for ShardMetrics {
    fn default() -> Self {
        Self {
            opened: AtomicU64::new(0),
            streams_opened: AtomicU64::new(0),
            suspects: AtomicU64::new(0),
            pings_sent: AtomicU64::new(0),
            pongs_received: AtomicU64::new(0),
            messages_received: AtomicU64::new(0),
            messages_sent: AtomicU64::new(0),
            bytes_received: AtomicU64::new(0),
            bytes_sent: AtomicU64::new(0),
            queue_overflows: AtomicU64::new(0),
            closes: std::array::from_fn(|_| AtomicU64::new(0)),
            rtt: Recorder::new(&RTT_BOUNDS_US),
            timer_lag: Recorder::new(&TIMER_LAG_BOUNDS_US),
        }
    }
}

impl ShardMetrics {
    pub(crate) fn bytes_received(&self, count: usize) {
        self.bytes_received
            .fetch_add(count as u64, Ordering::Relaxed);
    }

    pub(crate) fn bytes_sent(&self, count: usize) {
        self.bytes_sent.fetch_add(count as u64, Ordering::Relaxed);
    }

    /// A bounded queue refused something: a connection's outbound queue
    /// (its peer is then closed as a slow consumer) or a shard's commands.
    pub(crate) fn queue_overflow(&self) {
        self.queue_overflows.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn rtt_sample(&self, rtt: Duration) {
        self.rtt.record(rtt);
    }

    /// A due tick was served `lag` after it began.
    pub(crate) fn timer_lag(&self, lag: Duration) {
        self.timer_lag.record(lag);
    }

    pub(crate) fn opened(&self) {
        self.opened.fetch_add(1, Ordering::Relaxed);
    }

    /// A connection over a general stream (not a plain socket) opened.
    pub(crate) fn stream_adopted(&self) {
        self.streams_opened.fetch_add(1, Ordering::Relaxed);
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
        total.streams_opened += self.streams_opened.load(Ordering::Relaxed);
        total.suspects += self.suspects.load(Ordering::Relaxed);
        total.pings_sent += self.pings_sent.load(Ordering::Relaxed);
        total.pongs_received += self.pongs_received.load(Ordering::Relaxed);
        total.messages_received += self.messages_received.load(Ordering::Relaxed);
        total.messages_sent += self.messages_sent.load(Ordering::Relaxed);
        total.bytes_received += self.bytes_received.load(Ordering::Relaxed);
        total.bytes_sent += self.bytes_sent.load(Ordering::Relaxed);
        total.queue_overflows += self.queue_overflows.load(Ordering::Relaxed);
        self.rtt.add_to(&mut total.rtt);
        self.timer_lag.add_to(&mut total.timer_lag);
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
    /// Bytes read from sockets (frames, headers included).
    pub bytes_received: u64,
    /// Bytes written to sockets.
    pub bytes_sent: u64,
    /// Times a bounded queue was full: a connection's outbound queue (the
    /// peer is closed as a slow consumer) or a shard's command queue (the
    /// sender got `SendError::Overloaded`).
    pub queue_overflows: u64,
    /// Round-trip times of heartbeat pings, from each answering pong.
    pub rtt: Histogram,
    /// How late timer ticks were served after they began (one observation
    /// per tick with deadlines, whatever the number of connections due).
    pub timer_lag: Histogram,
    /// Connections closed, per reason, indexed like [`CLOSE_LABELS`].
    pub closes: [u64; CLOSE_LABELS.len()],
    /// Of the connections opened, those served over a general stream
    /// rather than a plain TCP socket: TLS, or a socket wrapped by
    /// hyper-util's auto builder (`axum::serve`).
    pub streams_opened: u64,
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
            CloseReason::PingFlood,
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
