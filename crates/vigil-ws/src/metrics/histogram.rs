//! Fixed-bucket histograms of durations: one shard thread records, any
//! thread reads a snapshot, nothing allocates on the way in.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds, in microseconds, of the round-trip time buckets: loopback
/// is well under a millisecond, a phone on a bad network several seconds.
pub const RTT_BOUNDS_US: [u64; 14] = [
    250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
    2_500_000, 5_000_000,
];

/// Upper bounds, in microseconds, of the timer lag buckets: how long after
/// its tick began a due tick was served. Under a tick is on time; seconds
/// mean the shard was starved.
pub const TIMER_LAG_BOUNDS_US: [u64; 11] = [
    1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 5_000_000,
];

/// The most buckets any histogram here has, `+Inf` included.
const MAX_BUCKETS: usize = 16;

/// A histogram being recorded.
#[derive(Debug)]
pub(crate) struct Recorder {
    bounds_us: &'static [u64],
    /// Observations per bucket; bucket `bounds_us.len()` is `+Inf`.
    counts: [AtomicU64; MAX_BUCKETS],
    sum_us: AtomicU64,
}

impl Recorder {
    pub(crate) fn new(bounds_us: &'static [u64]) -> Self {
        assert!(
            bounds_us.len() < MAX_BUCKETS && bounds_us.is_sorted(),
            "bounds fit and ascend"
        );
        Self {
            bounds_us,
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_us: AtomicU64::new(0),
        }
    }

    pub(crate) fn record(&self, value: Duration) {
        let micros = u64::try_from(value.as_micros()).unwrap_or(u64::MAX);
        let bucket = self.bounds_us.partition_point(|&bound| bound < micros);
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(micros, Ordering::Relaxed);
    }

    /// Adds what was recorded here to `total` (which has the same bounds).
    pub(crate) fn add_to(&self, total: &mut Histogram) {
        if total.counts.is_empty() {
            total.bounds_us = self.bounds_us;
            total.counts = vec![0; self.bounds_us.len() + 1];
        }
        for (sum, count) in total.counts.iter_mut().zip(&self.counts) {
            *sum += count.load(Ordering::Relaxed);
        }
        total.sum_us += self.sum_us.load(Ordering::Relaxed);
    }
}

/// A snapshot of a histogram of durations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Histogram {
    /// Upper bound of each bucket, in microseconds, ascending.
    pub bounds_us: &'static [u64],
    /// Observations per bucket (not cumulative): one more than `bounds_us`,
    /// the last being everything above the largest bound.
    pub counts: Vec<u64>,
    /// Sum of every observation, in microseconds.
    pub sum_us: u64,
}

impl Histogram {
    /// Observations in all buckets.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_lands_in_the_first_bucket_whose_bound_holds_it() {
        let recorder = Recorder::new(&RTT_BOUNDS_US);
        recorder.record(Duration::from_micros(250)); // bound 250 itself
        recorder.record(Duration::from_micros(251)); // next bucket
        recorder.record(Duration::from_secs(60)); // +Inf
        let mut snapshot = Histogram::default();
        recorder.add_to(&mut snapshot);
        assert_eq!(snapshot.counts.len(), RTT_BOUNDS_US.len() + 1);
        assert_eq!(snapshot.counts[0], 1);
        assert_eq!(snapshot.counts[1], 1);
        assert_eq!(snapshot.counts[RTT_BOUNDS_US.len()], 1);
        assert_eq!(snapshot.count(), 3);
        assert_eq!(snapshot.sum_us, 250 + 251 + 60_000_000);
    }

    #[test]
    fn snapshots_of_several_shards_add_up() {
        let (a, b) = (
            Recorder::new(&TIMER_LAG_BOUNDS_US),
            Recorder::new(&TIMER_LAG_BOUNDS_US),
        );
        a.record(Duration::from_millis(3));
        b.record(Duration::from_millis(4));
        let mut total = Histogram::default();
        a.add_to(&mut total);
        b.add_to(&mut total);
        assert_eq!(total.counts[2], 2, "both in the 5 ms bucket: {total:?}");
        assert_eq!(total.sum_us, 7_000);
    }
}
