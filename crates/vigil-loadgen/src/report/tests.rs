//! Slots, tallies and the summary, on hand-made connection histories.

use std::time::Duration;

use super::{Latency, Pings, Reason, Slot, Tally, percentile, summarize};

#[test]
fn percentiles_are_nearest_rank() {
    let values: Vec<u32> = (1..=100).collect();
    assert_eq!(percentile(&values, 50), 50);
    assert_eq!(percentile(&values, 99), 99);
    assert_eq!(percentile(&[7], 99), 7);
    assert_eq!(percentile(&[1, 2, 3], 50), 2);
    assert_eq!(percentile(&[], 50), 0);
}

/// Three connections: one open with pings every 5 s (one late), one closed
/// by the server after one ping, one refused; one still pending.
#[test]
fn tally_and_summary() {
    let slots: Vec<Slot> = (0..4).map(|_| Slot::new()).collect();
    slots[0].opened(Duration::from_micros(1500));
    for ms in [5000, 10_000, 15_000, 21_000] {
        slots[0].ping(ms);
    }
    slots[1].opened(Duration::from_micros(500));
    slots[1].ping(5000);
    slots[1].closed(Reason::CloseFrame);
    slots[2].failed(Reason::ConnectRefused);

    let tally = Tally::of(&slots);
    assert_eq!(
        tally,
        Tally {
            pending: 1,
            open: 1,
            failed: 1,
            closed: 1,
            min_pings_open: 4,
            pings_total: 5,
        }
    );
    assert_eq!(
        tally.status_line(Duration::from_millis(1234), 3),
        "{\"elapsed_ms\":1234,\"attempted\":3,\"established\":2,\"failed\":1,\"open\":1,\
         \"closed_by_server\":1,\"min_pings\":4,\"pings_total\":5}\n"
    );

    let (latency, pings, failures, closes) = summarize(&slots);
    assert_eq!(
        latency,
        Latency {
            p50: 0.5,
            p99: 1.5,
            max: 1.5
        }
    );
    assert_eq!(
        pings,
        Pings {
            total: 5,
            per_connection_min: 1,
            per_connection_median: 1,
            interval_median_ms: 5333,
            max_gap_ms: 6000,
        }
    );
    assert_eq!(
        failures.into_iter().collect::<Vec<_>>(),
        [("connect_refused", 1)]
    );
    assert_eq!(closes.into_iter().collect::<Vec<_>>(), [("close_frame", 1)]);
}

#[test]
fn reasons_round_trip() {
    for value in 0..13u8 {
        assert_eq!(Reason::from_u8(value) as u8, value);
    }
    let emfile = std::io::Error::from_raw_os_error(24);
    assert_eq!(Reason::of_io(&emfile), Reason::TooManyOpenFiles);
}
