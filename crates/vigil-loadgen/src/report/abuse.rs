//! What the flooders did and what the server answered them, per kind of
//! flood: counters every flooder adds to (one process), their plain form a
//! child process hands to its parent, and the sum in the report.

use std::{
    collections::BTreeMap,
    sync::atomic::{AtomicU64, Ordering::Relaxed},
};

use serde::{Deserialize, Serialize};

use crate::cli::Flood;

/// One counter of [`AbuseTally`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Count {
    /// Connections (WebSocket, or slowloris sockets) opened, the first
    /// included.
    Opened,
    /// Attempts to open one that failed (refused before the upgrade, ...).
    ConnectFailed,
    /// Requests (frames) written into the socket; the server may not have
    /// read them all before it closed the connection.
    Written,
    /// Answers that carried the request out: replies and pongs.
    Answered,
    /// `rate_limited` errors.
    RateLimited,
    /// `meta_too_large` errors.
    MetaTooLarge,
    /// Other errors (`malformed_json`, `unknown_op`, ...).
    OtherErrors,
    /// Other messages: channel messages and presence diffs.
    Events,
    /// Close frames with 1008 (policy) from the server.
    Closed1008,
    /// Close frames with another code.
    ClosedOther,
    /// Ended by the server without a close frame (FIN or RST).
    CutOff,
    /// Slowloris sockets answered with 503 at once (`--max-handshakes`).
    Refused503,
    /// Slowloris sockets the server ended otherwise (its handshake timeout).
    TimedOut,
    /// The longest a slowloris socket was held before the server ended it.
    HeldMaxMs,
}

const COUNTS: usize = 14;

/// Every flooder's counters, by kind of flood.
#[derive(Debug, Default)]
pub(crate) struct AbuseTally([[AtomicU64; COUNTS]; Flood::ALL.len()]);

impl AbuseTally {
    pub(crate) fn add(&self, flood: Flood, count: Count, n: u64) {
        let counter = &self.0[flood.index()][count as usize];
        if count == Count::HeldMaxMs {
            counter.fetch_max(n, Relaxed);
        } else {
            counter.fetch_add(n, Relaxed);
        }
    }

    /// The kinds that opened anything, by name.
    pub(crate) fn summary(&self) -> BTreeMap<String, AbuseCounts> {
        Flood::ALL
            .iter()
            .zip(&self.0)
            .filter(|(_, counters)| counters.iter().any(|c| c.load(Relaxed) > 0))
            .map(|(flood, counters)| {
                let n = |count: Count| counters[count as usize].load(Relaxed);
                let counts = AbuseCounts {
                    opened: n(Count::Opened),
                    connect_failed: n(Count::ConnectFailed),
                    written: n(Count::Written),
                    answered: n(Count::Answered),
                    rate_limited: n(Count::RateLimited),
                    meta_too_large: n(Count::MetaTooLarge),
                    other_errors: n(Count::OtherErrors),
                    events: n(Count::Events),
                    closed_1008: n(Count::Closed1008),
                    closed_other: n(Count::ClosedOther),
                    cut_off: n(Count::CutOff),
                    refused_503: n(Count::Refused503),
                    timed_out: n(Count::TimedOut),
                    held_max_ms: n(Count::HeldMaxMs),
                };
                (flood.name().to_owned(), counts)
            })
            .collect()
    }
}

/// One kind of flood's counters, as numbers (see [`Count`] for each).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct AbuseCounts {
    pub(crate) opened: u64,
    pub(crate) connect_failed: u64,
    pub(crate) written: u64,
    pub(crate) answered: u64,
    pub(crate) rate_limited: u64,
    pub(crate) meta_too_large: u64,
    pub(crate) other_errors: u64,
    pub(crate) events: u64,
    pub(crate) closed_1008: u64,
    pub(crate) closed_other: u64,
    pub(crate) cut_off: u64,
    pub(crate) refused_503: u64,
    pub(crate) timed_out: u64,
    pub(crate) held_max_ms: u64,
}

impl AbuseCounts {
    /// Another process's counts of the same kind: sums, the longest hold.
    pub(crate) fn add(&mut self, other: &AbuseCounts) {
        self.opened += other.opened;
        self.connect_failed += other.connect_failed;
        self.written += other.written;
        self.answered += other.answered;
        self.rate_limited += other.rate_limited;
        self.meta_too_large += other.meta_too_large;
        self.other_errors += other.other_errors;
        self.events += other.events;
        self.closed_1008 += other.closed_1008;
        self.closed_other += other.closed_other;
        self.cut_off += other.cut_off;
        self.refused_503 += other.refused_503;
        self.timed_out += other.timed_out;
        self.held_max_ms = self.held_max_ms.max(other.held_max_ms);
    }
}

/// Sums the parts' counts, kind by kind.
pub(crate) fn merge<'a>(
    parts: impl IntoIterator<Item = &'a BTreeMap<String, AbuseCounts>>,
) -> BTreeMap<String, AbuseCounts> {
    let mut total: BTreeMap<String, AbuseCounts> = BTreeMap::new();
    for part in parts {
        for (kind, counts) in part {
            total.entry(kind.clone()).or_default().add(counts);
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_up_and_the_longest_hold_wins() {
        let (first, second) = (AbuseTally::default(), AbuseTally::default());
        first.add(Flood::Ping, Count::Written, 300);
        first.add(Flood::Ping, Count::RateLimited, 20);
        first.add(Flood::Slowloris, Count::HeldMaxMs, 9_000);
        first.add(Flood::Slowloris, Count::HeldMaxMs, 4_000);
        second.add(Flood::Ping, Count::Written, 200);
        second.add(Flood::Slowloris, Count::HeldMaxMs, 10_000);
        let (a, b) = (first.summary(), second.summary());
        assert_eq!(a["slowloris"].held_max_ms, 9_000);
        assert!(
            !a.contains_key("publish-flood"),
            "kinds that did nothing are left out"
        );
        let total = merge([&a, &b]);
        assert_eq!(total["ping-flood"].written, 500);
        assert_eq!(total["ping-flood"].rate_limited, 20);
        assert_eq!(total["slowloris"].held_max_ms, 10_000);
    }
}
