//! The history as a specification: offsets, the three bounds, and exactly
//! the missed messages or an honest "impossible"; then a model check over
//! random appends and waits.

use super::*;
use proptest::prelude::*;

const MINUTE: Duration = Duration::from_secs(60);

fn limits(max_messages: usize, max_bytes: usize) -> Limits {
    Limits {
        max_messages,
        max_bytes,
        max_age: MINUTE,
    }
}

fn offsets<M>(recovery: Recovery<'_, M>) -> Result<Vec<u64>, Impossible> {
    match recovery {
        Recovery::Complete(missed) => Ok(missed.map(|entry| entry.offset).collect()),
        Recovery::Impossible(why) => Err(why),
    }
}

#[test]
fn offsets_count_from_one_and_a_position_recovers_what_followed_it() {
    let t0 = crate::tests::origin();
    let mut history = History::new(9, limits(10, 1_000));
    assert_eq!(
        history.position(),
        Position {
            offset: 0,
            epoch: 9
        }
    );
    for n in 1..=5u64 {
        assert_eq!(history.append(t0, n, 1), n);
    }
    assert_eq!(
        history.position(),
        Position {
            offset: 5,
            epoch: 9
        }
    );
    let at = |offset| Position { offset, epoch: 9 };
    assert_eq!(offsets(history.since(t0, at(2))), Ok(vec![3, 4, 5]));
    assert_eq!(offsets(history.since(t0, at(0))), Ok(vec![1, 2, 3, 4, 5]));
    assert_eq!(
        offsets(history.since(t0, at(5))),
        Ok(vec![]),
        "missed nothing"
    );
    assert_eq!(offsets(history.since(t0, at(6))), Err(Impossible::Ahead));
    assert_eq!(
        offsets(history.since(
            t0,
            Position {
                offset: 2,
                epoch: 8
            }
        )),
        Err(Impossible::EpochChanged)
    );
}

#[test]
fn the_oldest_go_first_past_any_bound_and_then_recovery_is_impossible() {
    let t0 = crate::tests::origin();
    // Three messages at most.
    let mut by_count = History::new(1, limits(3, 1_000));
    for n in 1..=5u64 {
        by_count.append(t0, n, 1);
    }
    assert_eq!(by_count.len(), 3);
    let at = |offset| Position { offset, epoch: 1 };
    assert_eq!(offsets(by_count.since(t0, at(2))), Ok(vec![3, 4, 5]));
    assert_eq!(offsets(by_count.since(t0, at(1))), Err(Impossible::TooOld));
    // 10 bytes at most: 4 + 4 + 4 leaves the last two.
    let mut by_bytes = History::new(1, limits(100, 10));
    for n in 1..=3u64 {
        by_bytes.append(t0, n, 4);
    }
    assert_eq!((by_bytes.len(), by_bytes.bytes()), (2, 8));
    // One larger than the bound keeps nothing, itself included.
    by_bytes.append(t0, 4, 11);
    assert_eq!((by_bytes.len(), by_bytes.bytes()), (0, 0));
    assert_eq!(offsets(by_bytes.since(t0, at(3))), Err(Impossible::TooOld));
    assert_eq!(offsets(by_bytes.since(t0, at(4))), Ok(vec![]));
    // A minute at most.
    let mut by_age = History::new(1, limits(100, 1_000));
    by_age.append(t0, 1, 1);
    by_age.append(t0 + Duration::from_secs(30), 2, 1);
    assert_eq!(by_age.poll_timeout(), Some(t0 + MINUTE));
    assert_eq!(
        offsets(by_age.since(t0 + MINUTE, at(0))),
        Err(Impossible::TooOld)
    );
    assert_eq!(offsets(by_age.since(t0 + MINUTE, at(1))), Ok(vec![2]));
    by_age.expire(t0 + MINUTE * 2);
    assert!(by_age.is_empty());
    assert_eq!(by_age.poll_timeout(), None);
}

#[test]
fn pages_walk_the_kept_messages_in_order() {
    let t0 = crate::tests::origin();
    let mut history = History::new(1, limits(100, 1_000));
    for n in 1..=5u64 {
        history.append(t0, n, 1);
    }
    let page = |history: &mut History<u64>, after, limit| {
        let (entries, more) = history.page(t0, after, limit);
        (entries.map(|e| e.message).collect::<Vec<_>>(), more)
    };
    assert_eq!(page(&mut history, None, 2), (vec![1, 2], true));
    assert_eq!(page(&mut history, Some(2), 2), (vec![3, 4], true));
    assert_eq!(page(&mut history, Some(4), 2), (vec![5], false));
    assert_eq!(page(&mut history, Some(5), 2), (vec![], false));
}

#[derive(Debug, Clone)]
enum Step {
    Append(usize),
    Wait(u64),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (1usize..40).prop_map(Step::Append),
        (0u64..30).prop_map(Step::Wait),
    ]
}

proptest! {
    /// Whatever the appends and waits: the bounds hold, and a position
    /// recovers exactly the offsets after it, in order, whenever they fit
    /// the bounds together, and is refused (too old) exactly when they do
    /// not.
    #[test]
    fn recovery_is_exact_or_refused(
        steps in proptest::collection::vec(step(), 1..200),
        max_messages in 1usize..20,
        max_bytes in 1usize..200,
        asked in 0u64..250,
    ) {
        let t0 = crate::tests::origin();
        let mut now = t0;
        let mut history = History::new(3, limits(max_messages, max_bytes));
        // Every offset ever given, with when and how large.
        let mut given: Vec<(u64, Instant, usize)> = Vec::new();
        for step in steps {
            match step {
                Step::Append(size) => {
                    let offset = history.append(now, offset_message(given.len()), size);
                    prop_assert_eq!(offset, given.len() as u64 + 1);
                    given.push((offset, now, size));
                }
                Step::Wait(seconds) => now += Duration::from_secs(seconds),
            }
            prop_assert!(history.len() <= max_messages);
            prop_assert!(history.bytes() <= max_bytes);
        }
        let newest = given.len() as u64;
        let result = offsets(history.since(now, Position { offset: asked, epoch: 3 }));
        if asked > newest {
            prop_assert_eq!(result, Err(Impossible::Ahead));
            return Ok(());
        }
        // The missed messages (offsets asked + 1 ..= newest) can be kept
        // exactly when, together, they are within every bound now: the
        // oldest are dropped first, sizes never change and ages only grow,
        // so a run of newest messages within the bounds now was within
        // them at every earlier step too.
        let missed = &given[asked as usize..];
        let within = missed.len() <= max_messages
            && missed.iter().map(|&(_, _, size)| size).sum::<usize>() <= max_bytes
            && missed
                .first()
                .is_none_or(|&(_, at, _)| now.duration_since(at) < MINUTE);
        if within {
            prop_assert_eq!(result, Ok((asked + 1..=newest).collect::<Vec<u64>>()));
        } else {
            prop_assert_eq!(result, Err(Impossible::TooOld));
        }
    }
}

/// A message that says which it is.
fn offset_message(index: usize) -> u64 {
    index as u64 + 1
}
