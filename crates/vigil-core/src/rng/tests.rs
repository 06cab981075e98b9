//! The random source is deterministic per seed and spreads its values.

use super::SplitMix64;

#[test]
fn equal_seeds_give_equal_sequences_and_different_seeds_differ() {
    let mut a = SplitMix64::new(7);
    let mut b = SplitMix64::new(7);
    let mut c = SplitMix64::new(8);
    let from_a: Vec<u64> = (0..4).map(|_| a.next_u64()).collect();
    let from_b: Vec<u64> = (0..4).map(|_| b.next_u64()).collect();
    let from_c: Vec<u64> = (0..4).map(|_| c.next_u64()).collect();
    assert_eq!(from_a, from_b);
    assert_ne!(from_a, from_c);
}

#[test]
fn unit_values_stay_in_the_half_open_interval_and_spread() {
    let mut rng = SplitMix64::new(42);
    let values: Vec<f64> = (0..10_000).map(|_| rng.next_unit()).collect();
    assert!(values.iter().all(|v| (0.0..1.0).contains(v)));
    let below_half = values.iter().filter(|v| **v < 0.5).count();
    assert!(
        (4_500..5_500).contains(&below_half),
        "{below_half} of 10000 below 0.5"
    );
}
