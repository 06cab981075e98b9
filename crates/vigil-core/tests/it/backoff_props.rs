//! Properties of the reconnect backoff over random configs and random client
//! lives, where time is a generated input that may even run backwards.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use vigil_core::backoff::{Backoff, BackoffConfig};

use crate::origin;

const HOUR_MS: u64 = 60 * 60 * 1_000;

/// What can happen to a client; instants are milliseconds after the origin,
/// drawn independently, so consecutive events may go back in time.
#[derive(Debug, Clone, Copy)]
enum Event {
    Delay,
    Connected(u64),
    Disconnected(u64),
}

/// Any valid config: `0 < base <= cap <= 1 h`, `initial_max <= cap`,
/// factor from 1 to far beyond anything sensible.
fn valid_config() -> impl Strategy<Value = BackoffConfig> {
    (
        1..=HOUR_MS,
        1..=HOUR_MS,
        0.0..=1.0_f64,
        1..=HOUR_MS,
        factor(),
    )
        .prop_map(|(a, b, initial_fraction, stable_after, factor)| {
            let (base, cap) = (a.min(b), a.max(b));
            let initial_max = (cap as f64 * initial_fraction) as u64;
            BackoffConfig::builder()
                .initial_max(Duration::from_millis(initial_max))
                .base(Duration::from_millis(base))
                .cap(Duration::from_millis(cap))
                .stable_after(Duration::from_millis(stable_after))
                .factor(factor)
                .build()
                .expect("the strategy only builds valid configs")
        })
}

fn factor() -> impl Strategy<Value = f64> {
    prop_oneof![Just(1.0), Just(2.0), 1.0..4.0_f64, 1.0..1e300_f64]
}

fn events() -> impl Strategy<Value = Vec<Event>> {
    // Offsets up to 3 h so stable periods both pass and fail for any config.
    let at = 0..3 * HOUR_MS;
    let event = prop_oneof![
        3 => Just(Event::Delay),
        1 => at.clone().prop_map(Event::Connected),
        1 => at.prop_map(Event::Disconnected),
    ];
    prop::collection::vec(event, 0..200)
}

/// Durations from zero to well past the 1 h limit, edges included.
fn any_duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        Just(Duration::ZERO),
        Just(BackoffConfig::MAX_DURATION),
        Just(Duration::MAX),
        (0..2 * HOUR_MS).prop_map(Duration::from_millis),
        any::<u64>().prop_map(Duration::from_nanos),
    ]
}

proptest! {
    #[test]
    fn delays_stay_under_their_envelope_and_the_counter_only_grows_or_resets_when_stable(
        config in valid_config(),
        seed in any::<u64>(),
        events in events(),
    ) {
        let origin = origin();
        let mut backoff = Backoff::new(seed);
        // A model of the connect time, to know when a reset is allowed.
        let mut up_since: Option<Instant> = None;
        for event in events {
            let before = backoff.attempt();
            match event {
                Event::Delay => {
                    let delay = backoff.next_delay(&config);
                    prop_assert!(delay <= config.cap());
                    if before == 0 {
                        prop_assert!(
                            delay < config.initial_max() || delay.is_zero(),
                            "first delay {:?}, initial_max {:?}", delay, config.initial_max()
                        );
                    } else {
                        prop_assert!(delay < config.envelope(before));
                    }
                    prop_assert_eq!(backoff.attempt(), before.saturating_add(1));
                }
                Event::Connected(ms) => {
                    let now = origin + Duration::from_millis(ms);
                    backoff.handle_connected(now);
                    up_since.get_or_insert(now);
                    prop_assert_eq!(backoff.attempt(), before);
                }
                Event::Disconnected(ms) => {
                    let now = origin + Duration::from_millis(ms);
                    backoff.handle_disconnected(now, &config);
                    let stable = up_since
                        .take()
                        .is_some_and(|since| now.saturating_duration_since(since) >= config.stable_after());
                    let expected = if stable { 0 } else { before };
                    prop_assert_eq!(backoff.attempt(), expected);
                }
            }
            prop_assert_eq!(backoff.connected_since(), up_since);
        }
    }

    #[test]
    fn the_envelope_never_shrinks_and_never_passes_the_cap(
        config in valid_config(),
        attempt in 1..u32::MAX,
    ) {
        let envelope = config.envelope(attempt);
        prop_assert!(envelope >= config.base());
        prop_assert!(envelope <= config.cap());
        prop_assert!(config.envelope(attempt + 1) >= envelope);
    }

    #[test]
    fn equal_seeds_replay_the_same_delays(
        config in valid_config(),
        seed in any::<u64>(),
    ) {
        let (mut a, mut b) = (Backoff::new(seed), Backoff::new(seed));
        for _ in 0..20 {
            prop_assert_eq!(a.next_delay(&config), b.next_delay(&config));
        }
    }

    #[test]
    fn any_builder_input_gives_a_config_that_keeps_its_promises_or_a_readable_error(
        initial_max in any_duration(),
        base in any_duration(),
        cap in any_duration(),
        stable_after in any_duration(),
        factor in prop_oneof![any::<f64>(), factor(), -2.0..2.0_f64],
    ) {
        let built = BackoffConfig::builder()
            .initial_max(initial_max)
            .base(base)
            .cap(cap)
            .stable_after(stable_after)
            .factor(factor)
            .build();
        match built {
            Ok(config) => {
                prop_assert!(!config.base().is_zero() && config.base() <= config.cap());
                prop_assert!(config.initial_max() <= config.cap());
                prop_assert!(config.cap() <= BackoffConfig::MAX_DURATION);
                prop_assert!(!config.stable_after().is_zero());
                prop_assert!(config.stable_after() <= BackoffConfig::MAX_DURATION);
                prop_assert!(config.factor().is_finite() && config.factor() >= 1.0);
            }
            Err(error) => prop_assert!(error.to_string().starts_with("backoff ")),
        }
    }
}
