//! Configuration validation: every refused setting names itself and why.

use crate::heartbeat::{Config, ConfigError, MAX_DURATION, MIN_TIMEOUT};
use std::time::Duration;

#[track_caller]
fn refused(builder: crate::heartbeat::ConfigBuilder, message_part: &str) -> ConfigError {
    let error = builder.build().expect_err("must be refused");
    let message = error.to_string();
    assert!(
        message.contains(message_part),
        "message {message:?} lacks {message_part:?}"
    );
    error
}

#[test]
fn defaults_are_interval_20s_timeout_10s_jitter_one_tenth() {
    let config = Config::default();
    assert_eq!(config.interval(), Duration::from_secs(20));
    assert_eq!(config.timeout(), Duration::from_secs(10));
    assert_eq!(config.jitter(), 0.1);
    assert!(config.any_frame_is_alive());
    assert_eq!(config.detection_bound(), Duration::from_secs(30));
}

#[test]
fn zero_durations_are_refused_by_name() {
    for (builder, name) in [
        (Config::builder().interval(Duration::ZERO), "interval"),
        (Config::builder().timeout(Duration::ZERO), "timeout"),
        (
            Config::builder().close_timeout(Duration::ZERO),
            "close_timeout",
        ),
        (
            Config::builder().stall_threshold(Duration::ZERO),
            "stall_threshold",
        ),
        (Config::builder().stall_grace(Duration::ZERO), "stall_grace"),
    ] {
        let error = refused(builder, "is zero");
        assert_eq!(error, ConfigError::Zero { setting: name });
    }
}

#[test]
fn a_timeout_under_one_second_is_refused() {
    refused(
        Config::builder().timeout(Duration::from_millis(999)),
        "under the 1s minimum",
    );
}

#[test]
fn an_interval_under_100ms_is_refused() {
    refused(
        Config::builder().interval(Duration::from_millis(50)),
        "under the 100ms minimum",
    );
}

#[test]
fn durations_over_a_day_are_refused() {
    refused(
        Config::builder().interval(MAX_DURATION + Duration::from_secs(1)),
        "heartbeat interval of",
    );
}

#[test]
fn jitter_must_be_a_fraction_up_to_one_half() {
    for jitter in [-0.1, 0.51, f64::NAN, f64::INFINITY] {
        refused(Config::builder().jitter(jitter), "outside 0.0..=0.5");
    }
    assert!(Config::builder().jitter(0.5).build().is_ok());
    assert!(Config::builder().jitter(0.0).build().is_ok());
}

#[test]
fn the_shortest_timeout_builds_with_stall_settings_derived_from_it() {
    let config = Config::builder()
        .timeout(MIN_TIMEOUT)
        .build()
        .expect("the minimum timeout is valid");
    assert_eq!(config.stall_threshold(), MIN_TIMEOUT);
    assert_eq!(config.stall_grace(), MIN_TIMEOUT / 2);
    let default = Config::default();
    assert_eq!(default.stall_threshold(), Duration::from_secs(1));
    assert_eq!(default.stall_grace(), Duration::from_secs(2));
}

#[test]
fn stall_settings_must_fit_inside_the_timeout() {
    refused(
        Config::builder().stall_threshold(Duration::from_secs(11)),
        "exceeds the timeout",
    );
    refused(
        Config::builder().stall_grace(Duration::from_secs(10)),
        "not shorter than the timeout",
    );
}
