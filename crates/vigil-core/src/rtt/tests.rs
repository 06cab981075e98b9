//! RTT estimator behaviour, checked against RFC 6298's arithmetic.

use super::RttEstimator;
use std::time::Duration;

fn ms(value: u64) -> Duration {
    Duration::from_millis(value)
}

#[test]
fn no_estimate_before_the_first_sample() {
    let rtt = RttEstimator::new();
    assert_eq!(rtt.srtt(), None);
    assert_eq!(rtt.rttvar(), None);
    assert_eq!(rtt.min_rtt(), None);
    assert_eq!(rtt.latest(), None);
    assert_eq!(rtt.sample_count(), 0);
}

#[test]
fn first_sample_sets_srtt_and_half_of_it_as_variation() {
    let mut rtt = RttEstimator::new();
    rtt.handle_sample(ms(100));
    assert_eq!(rtt.srtt(), Some(ms(100)));
    assert_eq!(rtt.rttvar(), Some(ms(50)));
    assert_eq!(rtt.min_rtt(), Some(ms(100)));
}

#[test]
fn later_samples_follow_rfc_6298_weights() {
    let mut rtt = RttEstimator::new();
    rtt.handle_sample(ms(100));
    rtt.handle_sample(ms(200));
    // RTTVAR = 3/4 * 50 + 1/4 * |100 - 200| = 62.5 ms; SRTT = 7/8 * 100 + 1/8 * 200 = 112.5 ms
    assert_eq!(rtt.rttvar(), Some(Duration::from_micros(62_500)));
    assert_eq!(rtt.srtt(), Some(Duration::from_micros(112_500)));
    assert_eq!(rtt.min_rtt(), Some(ms(100)));
    assert_eq!(rtt.latest(), Some(ms(200)));
    rtt.handle_sample(ms(40));
    assert_eq!(rtt.min_rtt(), Some(ms(40)));
    assert_eq!(rtt.latest(), Some(ms(40)));
    assert_eq!(rtt.sample_count(), 3);
}

#[test]
fn a_steady_rtt_converges_and_its_variation_decays() {
    let mut rtt = RttEstimator::new();
    rtt.handle_sample(ms(500));
    for _ in 0..100 {
        rtt.handle_sample(ms(20));
    }
    let srtt = rtt.srtt().expect("sampled");
    assert!(srtt.abs_diff(ms(20)) < ms(1), "srtt {srtt:?}");
    assert!(rtt.rttvar().expect("sampled") < ms(1));
}

#[test]
fn huge_samples_saturate_instead_of_overflowing() {
    let mut rtt = RttEstimator::new();
    rtt.handle_sample(Duration::from_secs(u64::MAX));
    rtt.handle_sample(Duration::from_secs(u64::MAX));
    assert_eq!(rtt.srtt(), Some(Duration::from_micros(u64::from(u32::MAX))));
}
