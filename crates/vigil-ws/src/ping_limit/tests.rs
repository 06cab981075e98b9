//! The ping window in virtual time: an origin `Instant` (the shard's epoch)
//! plus offsets.

use super::{PingLimit, PingWindow};
use std::time::{Duration, Instant};

const LIMIT: PingLimit = PingLimit {
    max_pings: 3,
    window: Duration::from_secs(10),
};

/// Feeds pings at `offsets_ms` after the epoch and checks which were
/// within the limit.
#[track_caller]
fn check(offsets_ms: &[u64], expect: &[bool]) {
    let epoch = Instant::now();
    let mut window = PingWindow::default();
    let verdicts: Vec<bool> = offsets_ms
        .iter()
        .map(|&ms| window.handle_ping(epoch + Duration::from_millis(ms), epoch, &LIMIT))
        .collect();
    assert_eq!(verdicts, expect, "pings at {offsets_ms:?} ms");
}

#[test]
fn pings_up_to_the_limit_in_one_window_are_allowed() {
    check(&[0, 1, 2], &[true, true, true]);
}

#[test]
fn the_first_ping_over_the_limit_is_refused_and_so_are_the_next_in_that_window() {
    check(&[0, 1, 2, 3, 9_999], &[true, true, true, false, false]);
}

#[test]
fn the_next_window_starts_fresh() {
    check(
        &[0, 1, 2, 3, 10_000, 10_001, 10_002, 10_003],
        &[true, true, true, false, true, true, true, false],
    );
}

#[test]
fn windows_are_aligned_on_the_epoch_so_a_burst_across_a_boundary_counts_twice() {
    check(
        &[9_997, 9_998, 9_999, 10_000, 10_001, 10_002, 10_003],
        &[true, true, true, true, true, true, false],
    );
}

#[test]
fn a_quiet_spell_of_many_windows_starts_a_fresh_count() {
    check(
        &[0, 1, 2, 3_600_000, 3_600_001, 3_600_002, 3_600_003],
        &[true, true, true, true, true, true, false],
    );
}

#[test]
fn a_steady_keepalive_far_below_the_default_is_never_refused() {
    let epoch = Instant::now();
    let limit = PingLimit::default();
    let mut window = PingWindow::default();
    // Ten pings a second (a client measuring RTT every 100 ms) for an hour.
    for tick in 0..36_000u64 {
        let now = epoch + Duration::from_millis(tick * 100);
        assert!(window.handle_ping(now, epoch, &limit), "refused at {tick}");
    }
}

#[test]
fn a_clock_that_goes_backwards_keeps_the_current_window() {
    let epoch = Instant::now();
    let late = epoch + Duration::from_secs(60);
    let mut window = PingWindow::default();
    for _ in 0..3 {
        assert!(window.handle_ping(late, epoch, &LIMIT));
    }
    assert!(!window.handle_ping(late - Duration::from_secs(30), epoch, &LIMIT));
}

#[test]
fn a_limit_of_zero_pings_or_an_empty_window_is_a_configuration_error() {
    let zero = PingLimit {
        max_pings: 0,
        ..LIMIT
    };
    let empty = PingLimit {
        window: Duration::ZERO,
        ..LIMIT
    };
    assert!(zero.validate().is_err());
    assert!(empty.validate().is_err());
    assert_eq!(LIMIT.validate(), Ok(()));
    assert_eq!(PingLimit::default().validate(), Ok(()));
}

#[test]
fn an_empty_window_that_escaped_validation_does_not_panic() {
    let epoch = Instant::now();
    let empty = PingLimit {
        window: Duration::ZERO,
        ..LIMIT
    };
    let mut window = PingWindow::default();
    let verdicts: Vec<bool> = (0..4)
        .map(|ms| window.handle_ping(epoch + Duration::from_millis(ms), epoch, &empty))
        .collect();
    assert_eq!(verdicts, [true, true, true, false]);
}
