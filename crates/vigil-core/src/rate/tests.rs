//! The token bucket as a timeline: requests at offsets from an origin.

use super::*;

/// Takes one request at each offset (ms); the verdicts, `Err` in ms.
#[track_caller]
fn check(rate: u32, burst: u32, at_ms: &[u64], expected: &[Result<(), u64>]) {
    let origin = crate::tests::origin();
    let limit = RateLimit::new(rate, burst, origin).expect("a valid limit");
    let mut bucket = Bucket::default();
    let verdicts: Vec<Result<(), u64>> = at_ms
        .iter()
        .map(|&ms| {
            bucket
                .take(origin + Duration::from_millis(ms), &limit)
                .map_err(|wait| wait.as_millis() as u64)
        })
        .collect();
    assert_eq!(verdicts, expected);
}

#[test]
fn a_burst_is_admitted_at_once_then_the_rate_holds() {
    // 10 a second, 3 at once: the fourth waits for the first to drain.
    check(
        10,
        3,
        &[0, 0, 0, 0, 100, 100, 250],
        &[Ok(()), Ok(()), Ok(()), Err(100), Ok(()), Err(100), Ok(())],
    );
}

#[test]
fn a_refusal_costs_nothing_and_says_how_long_to_wait() {
    check(
        2,
        1,
        &[0, 100, 200, 499, 500],
        &[Ok(()), Err(400), Err(300), Err(1), Ok(())],
    );
}

#[test]
fn an_idle_connection_gets_its_burst_back_but_no_more() {
    check(
        100,
        5,
        &[
            0, 0, 0, 0, 0, 0, 10_000, 10_000, 10_000, 10_000, 10_000, 10_000,
        ],
        &[
            Ok(()),
            Ok(()),
            Ok(()),
            Ok(()),
            Ok(()),
            Err(10),
            Ok(()),
            Ok(()),
            Ok(()),
            Ok(()),
            Ok(()),
            Err(10),
        ],
    );
}

#[test]
fn time_going_backwards_never_admits_more() {
    let origin = crate::tests::origin();
    let limit = RateLimit::new(1, 1, origin).expect("valid");
    let mut bucket = Bucket::default();
    assert_eq!(bucket.take(origin + Duration::from_secs(5), &limit), Ok(()));
    assert!(bucket.take(origin, &limit).is_err());
    assert!(
        bucket
            .take(origin + Duration::from_secs(5), &limit)
            .is_err()
    );
    assert_eq!(bucket.take(origin + Duration::from_secs(6), &limit), Ok(()));
}

#[test]
fn limits_are_validated() {
    let origin = crate::tests::origin();
    assert_eq!(RateLimit::new(0, 1, origin), Err(RateLimitError::Rate(0)));
    assert_eq!(
        RateLimit::new(2_000_000, 1, origin),
        Err(RateLimitError::Rate(2_000_000))
    );
    assert_eq!(RateLimit::new(1, 0, origin), Err(RateLimitError::Burst));
    assert_eq!(RateLimit::new(50, 100, origin).map(|l| l.rate()), Ok(50));
    assert_eq!(std::mem::size_of::<Bucket>(), 8);
}
