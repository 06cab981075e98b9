//! Delivery latency of channel messages (and round trips of the clients'
//! own pings), recorded by every client into one shared histogram (0.25 ms
//! buckets up to 1 s, then one overflow bucket; the exact maximum is kept
//! beside it).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};

use serde::Serialize;

use super::Latency;

const BUCKET_US: u64 = 250;
const BUCKETS: usize = 4_000; // 1 s

#[derive(Debug)]
pub(crate) struct MessageLatency {
    counts: Box<[AtomicU32]>,
    overflow: AtomicU64,
    max_us: AtomicU64,
    received: AtomicU64,
    /// First and last delivery, µs since the start of the run.
    first_us: AtomicU64,
    last_us: AtomicU64,
}

/// The `messages` part of the report.
#[derive(Debug, Serialize, PartialEq)]
pub(crate) struct Messages {
    pub(crate) received: u64,
    /// From the first delivery to the last, seconds.
    pub(crate) span_s: f64,
    /// From the publisher's send to a subscriber's read (one process, one
    /// clock). Bucketed: percentiles are upper bounds to 0.25 ms.
    pub(crate) latency_ms: Latency,
}

impl MessageLatency {
    pub(crate) fn new() -> MessageLatency {
        MessageLatency {
            counts: (0..BUCKETS).map(|_| AtomicU32::new(0)).collect(),
            overflow: AtomicU64::new(0),
            max_us: AtomicU64::new(0),
            received: AtomicU64::new(0),
            first_us: AtomicU64::new(u64::MAX),
            last_us: AtomicU64::new(0),
        }
    }

    /// A delivery at `now_us` (since the start of the run) that took
    /// `latency_us`.
    pub(crate) fn record(&self, now_us: u64, latency_us: u64) {
        self.received.fetch_add(1, Relaxed);
        self.first_us.fetch_min(now_us, Relaxed);
        self.last_us.fetch_max(now_us, Relaxed);
        self.max_us.fetch_max(latency_us, Relaxed);
        match self.counts.get((latency_us / BUCKET_US) as usize) {
            Some(count) => {
                count.fetch_add(1, Relaxed);
            }
            None => {
                self.overflow.fetch_add(1, Relaxed);
            }
        }
    }

    /// `None` when no message arrived.
    pub(crate) fn summary(&self) -> Option<Messages> {
        let received = self.received.load(Relaxed);
        if received == 0 {
            return None;
        }
        let max_ms = self.max_us.load(Relaxed) as f64 / 1000.0;
        // The upper edge of the bucket holding the `percent`th message.
        let percentile = |percent: u64| {
            let rank = (percent * received).div_ceil(100).max(1);
            let mut seen = 0;
            for (index, count) in self.counts.iter().enumerate() {
                seen += u64::from(count.load(Relaxed));
                if seen >= rank {
                    let edge = (index as u64 + 1) * BUCKET_US;
                    return (edge as f64 / 1000.0).min(max_ms);
                }
            }
            max_ms
        };
        let span_us = self
            .last_us
            .load(Relaxed)
            .saturating_sub(self.first_us.load(Relaxed));
        Some(Messages {
            received,
            span_s: span_us as f64 / 1e6,
            latency_ms: Latency {
                p50: percentile(50),
                p99: percentile(99),
                max: max_ms,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_bucket_edges_and_the_max_is_exact() {
        let latency = MessageLatency::new();
        assert_eq!(latency.summary(), None);
        for (at, us) in [
            (1_000, 100),
            (2_000, 200),
            (3_000, 300),
            (4_000, 900),
            (9_000, 5_000_000),
        ] {
            latency.record(at, us);
        }
        let summary = latency.summary().expect("messages");
        assert_eq!(summary.received, 5);
        assert_eq!(summary.span_s, 0.008);
        // Ranks: p50 is the 3rd (300 us, bucket 250..500), p99 the 5th.
        assert_eq!(summary.latency_ms.p50, 0.5);
        assert_eq!(summary.latency_ms.p99, 5_000.0);
        assert_eq!(summary.latency_ms.max, 5_000.0);
    }
}
