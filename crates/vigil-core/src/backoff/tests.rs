//! The reconnect policy as a specification: timelines from an origin instant,
//! envelopes per attempt, how a herd of seeded clients spreads, config errors.

use std::time::Duration;

use super::{Backoff, BackoffConfig, BackoffConfigError};

const MS: Duration = Duration::from_millis(1);
const SEC: Duration = Duration::from_secs(1);

use crate::tests::origin;

/// The defaults: initial_max 1 s, base 500 ms, factor 2, cap 30 s, stable_after 10 s.
fn config() -> BackoffConfig {
    BackoffConfig::default()
}

/// One step of a client's life; offsets are milliseconds after the origin.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// Draw the delay before the next attempt (the previous one failed, or
    /// this is the first).
    Delay,
    /// The connection came up.
    Up(u64),
    /// The connection dropped.
    Down(u64),
}
use Step::{Delay, Down, Up};

/// Plays `timeline` on a client seeded with 1 and checks, after each step,
/// the attempt counter it expects. Every delay must lie below the envelope of
/// the attempt it was drawn for.
#[track_caller]
fn check(config: &BackoffConfig, timeline: &[(Step, u32)]) {
    let origin = origin();
    let mut backoff = Backoff::new(1);
    for (i, &(step, expected_attempt)) in timeline.iter().enumerate() {
        match step {
            Delay => {
                let envelope = config.envelope(backoff.attempt());
                let delay = backoff.next_delay(config);
                assert!(
                    delay < envelope || (envelope.is_zero() && delay.is_zero()),
                    "step {i}: delay {delay:?} not below envelope {envelope:?}"
                );
            }
            Up(ms) => backoff.handle_connected(origin + Duration::from_millis(ms)),
            Down(ms) => backoff.handle_disconnected(origin + Duration::from_millis(ms), config),
        }
        assert_eq!(
            backoff.attempt(),
            expected_attempt,
            "after step {i} ({step:?})"
        );
    }
}

/// The first delay of each of `clients` clients seeded 0, 1, 2, ...
fn first_delays(config: &BackoffConfig, clients: u64) -> Vec<Duration> {
    (0..clients)
        .map(|seed| Backoff::new(seed).next_delay(config))
        .collect()
}

// --- the envelope ---------------------------------------------------------

#[test]
fn envelope_starts_at_initial_max_then_doubles_from_base_until_the_cap() {
    let config = config();
    let expected = [
        (0, SEC),
        (1, 500 * MS),
        (2, SEC),
        (3, 2 * SEC),
        (4, 4 * SEC),
        (5, 8 * SEC),
        (6, 16 * SEC),
        (7, 30 * SEC),
        (8, 30 * SEC),
        (1_000, 30 * SEC),
        (u32::MAX, 30 * SEC),
    ];
    for (attempt, envelope) in expected {
        assert_eq!(config.envelope(attempt), envelope, "attempt {attempt}");
    }
}

#[test]
fn envelope_follows_a_fractional_factor_and_a_factor_of_one_stays_at_base() {
    let one_and_a_half = BackoffConfig::builder().factor(1.5).build().unwrap();
    assert_eq!(one_and_a_half.envelope(2), 750 * MS);
    assert_eq!(one_and_a_half.envelope(3), 1_125 * MS);

    let flat = BackoffConfig::builder().factor(1.0).build().unwrap();
    assert_eq!(flat.envelope(1), 500 * MS);
    assert_eq!(flat.envelope(u32::MAX), 500 * MS);
}

#[test]
fn envelope_saturates_at_the_cap_for_an_enormous_factor() {
    let config = BackoffConfig::builder().factor(1e300).build().unwrap();
    assert_eq!(config.envelope(1), 500 * MS);
    assert_eq!(config.envelope(2), 30 * SEC);
    assert_eq!(config.envelope(u32::MAX), 30 * SEC);
}

// --- the delays -----------------------------------------------------------

#[test]
fn first_delay_is_below_initial_max() {
    let config = config();
    for delay in first_delays(&config, 10_000) {
        assert!(delay < SEC, "{delay:?}");
    }
}

#[test]
fn zero_initial_max_makes_the_first_attempt_immediate() {
    let config = BackoffConfig::builder()
        .initial_max(Duration::ZERO)
        .build()
        .unwrap();
    assert!(first_delays(&config, 100).iter().all(|d| d.is_zero()));
}

#[test]
fn delays_stay_below_their_envelope_and_never_reach_the_cap() {
    let config = config();
    for seed in 0..200 {
        let mut backoff = Backoff::new(seed);
        for _ in 0..50 {
            let envelope = config.envelope(backoff.attempt());
            let delay = backoff.next_delay(&config);
            assert!(delay < envelope, "seed {seed}: {delay:?} >= {envelope:?}");
            assert!(delay < config.cap());
        }
    }
}

#[test]
fn a_herd_of_1000_clients_spreads_its_first_attempts_over_initial_max() {
    let delays = first_delays(&config(), 1_000);

    // 1000 uniform draws into 1000 one-millisecond buckets: about 632 buckets
    // are hit (1 - 1/e) and the fullest holds 5 or 6. Lockstep would put all
    // 1000 in one bucket.
    let mut buckets = [0_u32; 1_000];
    for delay in &delays {
        buckets[delay.as_millis() as usize] += 1;
    }
    let hit = buckets.iter().filter(|&&n| n > 0).count();
    let fullest = buckets.iter().max().copied().unwrap_or(0);
    assert!((580..=690).contains(&hit), "{hit} buckets hit");
    assert!(fullest <= 8, "{fullest} clients in one millisecond");

    let min = delays.iter().min().copied().unwrap_or_default();
    let max = delays.iter().max().copied().unwrap_or_default();
    assert!(min < 10 * MS, "min {min:?}");
    assert!(max > 990 * MS, "max {max:?}");
}

#[test]
fn full_jitter_spreads_late_attempts_over_the_whole_envelope() {
    let config = config();
    let delays: Vec<Duration> = (0..1_000)
        .map(|seed| {
            let mut backoff = Backoff::new(seed);
            // Attempts 0..=7; attempt 7 is the first at the 30 s cap.
            (0..8)
                .map(|_| backoff.next_delay(&config))
                .last()
                .unwrap_or_default()
        })
        .collect();

    let min = delays.iter().min().copied().unwrap_or_default();
    let max = delays.iter().max().copied().unwrap_or_default();
    let mean = delays.iter().sum::<Duration>() / 1_000;
    assert!(min < SEC, "min {min:?}");
    assert!(max > 29 * SEC, "max {max:?}");
    assert!((14 * SEC..16 * SEC).contains(&mean), "mean {mean:?}");
}

#[test]
fn equal_seeds_give_equal_sequences_and_different_seeds_differ() {
    let config = config();
    let sequence = |seed| {
        let mut backoff = Backoff::new(seed);
        (0..10)
            .map(|_| backoff.next_delay(&config))
            .collect::<Vec<_>>()
    };
    assert_eq!(sequence(7), sequence(7));
    assert_ne!(sequence(7), sequence(8));
}

#[test]
fn the_attempt_counter_saturates_instead_of_overflowing() {
    let config = config();
    let mut backoff = Backoff::new(1);
    backoff.attempt = u32::MAX - 1;
    for _ in 0..3 {
        assert!(backoff.next_delay(&config) < config.cap());
    }
    assert_eq!(backoff.attempt(), u32::MAX);
}

// --- timelines: reset after a stable connection, not after a short one ----

#[test]
fn each_failed_attempt_counts() {
    check(&config(), &[(Delay, 1), (Delay, 2), (Delay, 3), (Delay, 4)]);
}

#[test]
fn a_connection_up_for_stable_after_resets_to_the_initial_delay() {
    check(
        &config(),
        &[
            (Delay, 1),
            (Delay, 2),
            (Delay, 3),
            (Up(5_000), 3),
            (Down(15_000), 0), // up exactly 10 s
            (Delay, 1),        // uniform [0, initial_max) again
        ],
    );
}

#[test]
fn a_connection_dropped_before_stable_after_keeps_the_delay_growing() {
    check(
        &config(),
        &[
            (Delay, 1),
            (Delay, 2),
            (Up(5_000), 2),
            (Down(14_999), 2), // up 9.999 s
            (Delay, 3),        // envelope 1 s, not the initial one
        ],
    );
}

#[test]
fn a_server_that_accepts_then_drops_at_once_sees_delays_grow_to_the_cap() {
    let config = config();
    let origin = origin();
    let mut backoff = Backoff::new(1);
    let mut now = origin;
    for _ in 0..20 {
        now += backoff.next_delay(&config);
        backoff.handle_connected(now);
        now += 10 * MS;
        backoff.handle_disconnected(now, &config);
    }
    assert_eq!(backoff.attempt(), 20);
    assert_eq!(config.envelope(backoff.attempt()), config.cap());
    // 20 rounds of full jitter: ~1 minute of waiting in expectation, not 20
    // back-to-back reconnects.
    assert!(now - origin > 60 * SEC, "{:?}", now - origin);
}

#[test]
fn a_drop_without_a_connection_changes_nothing() {
    check(&config(), &[(Delay, 1), (Down(60_000), 1), (Delay, 2)]);
}

#[test]
fn a_repeated_connect_keeps_the_first_connect_time() {
    check(
        &config(),
        &[
            (Delay, 1),
            (Up(0), 1),
            (Up(9_000), 1),
            (Down(10_000), 0), // 10 s after the first connect, 1 s after the second
        ],
    );
}

#[test]
fn a_disconnect_before_the_connect_time_is_clamped_to_zero_uptime() {
    check(
        &config(),
        &[(Delay, 1), (Up(60_000), 1), (Down(0), 1), (Delay, 2)],
    );
}

#[test]
fn after_a_disconnect_the_next_connection_is_timed_from_its_own_connect() {
    let config = config();
    let origin = origin();
    let mut backoff = Backoff::new(1);
    let _ = backoff.next_delay(&config);
    backoff.handle_connected(origin);
    assert_eq!(backoff.connected_since(), Some(origin));
    backoff.handle_disconnected(origin + SEC, &config);
    assert_eq!(backoff.connected_since(), None);

    backoff.handle_connected(origin + 20 * SEC);
    backoff.handle_disconnected(origin + 25 * SEC, &config);
    assert_eq!(backoff.attempt(), 1, "5 s up is not stable, however late");
}

#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
#[test]
fn a_client_costs_32_bytes() {
    assert_eq!(size_of::<Backoff>(), 32);
}

// --- configuration --------------------------------------------------------

#[test]
fn the_builder_starts_from_the_documented_defaults() {
    let config = BackoffConfig::builder().build().unwrap();
    assert_eq!(config, BackoffConfig::default());
    assert_eq!(config.initial_max(), SEC);
    assert_eq!(config.base(), 500 * MS);
    assert_eq!(config.factor(), 2.0);
    assert_eq!(config.cap(), 30 * SEC);
    assert_eq!(config.stable_after(), 10 * SEC);
}

#[test]
fn limits_are_inclusive() {
    let hour = BackoffConfig::MAX_DURATION;
    let config = BackoffConfig::builder()
        .initial_max(hour)
        .base(hour)
        .cap(hour)
        .stable_after(hour)
        .factor(1.0)
        .build()
        .unwrap();
    assert_eq!(config.envelope(0), hour);
    assert_eq!(config.envelope(u32::MAX), hour);

    let tiny = BackoffConfig::builder()
        .initial_max(Duration::from_nanos(1))
        .base(Duration::from_nanos(1))
        .cap(Duration::from_nanos(1))
        .stable_after(Duration::from_nanos(1))
        .build();
    assert!(tiny.is_ok(), "{tiny:?}");
}

#[test]
fn invalid_configs_are_rejected_with_a_readable_reason() {
    use BackoffConfigError as E;
    let b = BackoffConfig::builder;
    let cases = [
        (
            b().base(Duration::ZERO).build(),
            E::ZeroBase,
            "backoff base must be greater than zero",
        ),
        (
            b().cap(Duration::ZERO).build(),
            E::ZeroCap,
            "backoff cap must be greater than zero",
        ),
        (
            b().stable_after(Duration::ZERO).build(),
            E::ZeroStableAfter,
            "backoff stable_after must be greater than zero",
        ),
        (
            b().factor(0.5).build(),
            E::InvalidFactor { factor: 0.5 },
            "backoff factor must be a finite number of at least 1, got 0.5",
        ),
        (
            b().factor(f64::INFINITY).build(),
            E::InvalidFactor {
                factor: f64::INFINITY,
            },
            "got inf",
        ),
        (
            b().cap(400 * MS).initial_max(Duration::ZERO).build(),
            E::CapBelowBase {
                cap: 400 * MS,
                base: 500 * MS,
            },
            "backoff cap (400ms) is below base (500ms): raise cap or lower base",
        ),
        (
            b().initial_max(31 * SEC).build(),
            E::InitialMaxAboveCap {
                initial_max: 31 * SEC,
                cap: 30 * SEC,
            },
            "backoff initial_max (31s) is above cap (30s)",
        ),
        (
            b().stable_after(3_601 * SEC).build(),
            E::TooLong {
                setting: "stable_after",
                value: 3_601 * SEC,
            },
            "backoff stable_after is 3601s, above the limit of 3600s: check the unit",
        ),
        (
            b().cap(30_000 * SEC).build(),
            E::TooLong {
                setting: "cap",
                value: 30_000 * SEC,
            },
            "backoff cap is 30000s",
        ),
    ];
    for (result, error, message) in cases {
        assert_eq!(result, Err(error));
        let shown = error.to_string();
        assert!(shown.contains(message), "{shown}");
    }
}

#[test]
fn a_nan_factor_is_rejected() {
    let error = BackoffConfig::builder()
        .factor(f64::NAN)
        .build()
        .unwrap_err();
    assert!(matches!(error, BackoffConfigError::InvalidFactor { factor } if factor.is_nan()));
    assert!(error.to_string().contains("got NaN"), "{error}");
}
