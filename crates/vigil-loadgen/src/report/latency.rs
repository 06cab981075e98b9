//! Delivery latency of channel messages (and round trips of the clients'
//! own pings), recorded by every client into one shared histogram (0.25 ms
//! buckets up to 1 s, then one overflow bucket; the exact maximum is kept
//! beside it).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};

use serde::{Deserialize, Serialize};

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

/// A [`MessageLatency`] as plain numbers: `(bucket, count)` for the buckets
/// that counted.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct LatencyRecord {
    buckets: Vec<(u32, u32)>,
    overflow: u64,
    max_us: u64,
    received: u64,
    first_us: u64,
    last_us: u64,
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

    /// The histogram as plain numbers (only the buckets that counted), for
    /// a child process to hand to its parent.
    pub(crate) fn to_record(&self) -> LatencyRecord {
        LatencyRecord {
            buckets: self
                .counts
                .iter()
                .enumerate()
                .map(|(index, count)| (index as u32, count.load(Relaxed)))
                .filter(|&(_, count)| count > 0)
                .collect(),
            overflow: self.overflow.load(Relaxed),
            max_us: self.max_us.load(Relaxed),
            received: self.received.load(Relaxed),
            first_us: self.first_us.load(Relaxed),
            last_us: self.last_us.load(Relaxed),
        }
    }

    /// Adds another process's deliveries (timed from the same start). A
    /// bucket index this histogram does not have counts as overflow.
    pub(crate) fn add(&self, other: &LatencyRecord) {
        for &(index, count) in &other.buckets {
            match self.counts.get(index as usize) {
                Some(bucket) => {
                    bucket.fetch_add(count, Relaxed);
                }
                None => {
                    self.overflow.fetch_add(u64::from(count), Relaxed);
                }
            }
        }
        self.overflow.fetch_add(other.overflow, Relaxed);
        self.max_us.fetch_max(other.max_us, Relaxed);
        self.received.fetch_add(other.received, Relaxed);
        self.first_us.fetch_min(other.first_us, Relaxed);
        self.last_us.fetch_max(other.last_us, Relaxed);
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

    #[test]
    fn histograms_of_two_processes_add_up_to_one_of_both() {
        let deliveries = [
            (1_000, 100),
            (2_500, 4_000),
            (3_000, 300),
            (7_000, 2_000_000),
        ];
        let whole = MessageLatency::new();
        let (first, second) = (MessageLatency::new(), MessageLatency::new());
        for (i, &(at, us)) in deliveries.iter().enumerate() {
            whole.record(at, us);
            [&first, &second][i % 2].record(at, us);
        }
        let merged = MessageLatency::new();
        merged.add(&first.to_record());
        merged.add(&second.to_record());
        assert_eq!(merged.to_record(), whole.to_record());
        assert_eq!(merged.summary(), whole.summary());
        // Through JSON, as between processes.
        let json = serde_json::to_string(&first.to_record()).expect("encodes");
        let back: LatencyRecord = serde_json::from_str(&json).expect("decodes");
        assert_eq!(back, first.to_record());
    }
}
