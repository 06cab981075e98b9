//! Property tests of the heartbeat machine: random configurations, random
//! input sequences, time as a generated transition.

use crate::origin;
use proptest::prelude::*;
use std::time::Duration;
use vigil_core::heartbeat::{Action, Config, EndReason, Frame, Heartbeat, State, ping_payload};

#[derive(Debug, Clone)]
enum Input {
    /// Move the clock forward and handle the timer if it is due.
    Advance(u64),
    /// Call `handle_timeout` with the current time whatever the deadline.
    Wake,
    /// Call `handle_timeout` with a time before the current one.
    WakeInThePast(u64),
    Data,
    Ping,
    /// A pong echoing the ping `n` ids before the latest (0 = latest).
    PongFor(u64),
    PongJunk(Vec<u8>),
    PeerClose(Option<u16>),
    Close(u16),
    TransportEnd,
}

fn input() -> impl Strategy<Value = Input> {
    prop_oneof![
        6 => (0u64..40_000).prop_map(Input::Advance),
        1 => Just(Input::Wake),
        1 => (0u64..10_000).prop_map(Input::WakeInThePast),
        3 => Just(Input::Data),
        1 => Just(Input::Ping),
        2 => (0u64..3).prop_map(Input::PongFor),
        1 => proptest::collection::vec(any::<u8>(), 0..12).prop_map(Input::PongJunk),
        1 => proptest::option::of(any::<u16>()).prop_map(Input::PeerClose),
        1 => any::<u16>().prop_map(Input::Close),
        1 => Just(Input::TransportEnd),
    ]
}

fn config() -> impl Strategy<Value = Config> {
    (
        100u64..60_000,
        1_000u64..30_000,
        0.0f64..=0.5,
        any::<bool>(),
    )
        .prop_map(|(interval, timeout, jitter, any_frame)| {
            Config::builder()
                .interval(Duration::from_millis(interval))
                .timeout(Duration::from_millis(timeout))
                .jitter(jitter)
                .any_frame_is_alive(any_frame)
                .stall_threshold(Duration::from_millis(timeout.min(1_000)))
                .stall_grace(Duration::from_millis(timeout / 2))
                .build()
                .expect("generated within the valid ranges")
        })
}

/// Drains every action, checking that `Finished` comes last and only once.
fn drain(heartbeat: &mut Heartbeat, finished: &mut bool) -> Vec<Action> {
    let mut actions = Vec::new();
    while let Some(action) = heartbeat.poll_action() {
        assert!(!*finished, "{action:?} after Finished");
        if let Action::Finished(_) = action {
            *finished = true;
        }
        actions.push(action);
        assert!(actions.len() <= 5, "endless actions: {actions:?}");
    }
    actions
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn machine_invariants_hold_for_any_input_sequence(
        config in config(),
        seed in any::<u64>(),
        inputs in proptest::collection::vec(input(), 0..200),
    ) {
        let start = origin();
        let mut now = start;
        let mut heartbeat = Heartbeat::new(now, &config, seed);
        let mut finished = false;
        for input in inputs {
            match input {
                Input::Advance(ms) => {
                    now += Duration::from_millis(ms);
                    if heartbeat.poll_timeout().is_some_and(|d| d <= now) {
                        heartbeat.handle_timeout(now, &config);
                        drain(&mut heartbeat, &mut finished);
                        // no busy loop: the timer is gone or in the future
                        prop_assert!(heartbeat.poll_timeout().is_none_or(|d| d > now));
                        // a repeated call is a no-op
                        let before = heartbeat.poll_timeout();
                        heartbeat.handle_timeout(now, &config);
                        prop_assert!(drain(&mut heartbeat, &mut finished).is_empty());
                        prop_assert_eq!(before, heartbeat.poll_timeout());
                    }
                }
                Input::Wake => {
                    let was_due = heartbeat.poll_timeout().is_some_and(|d| d <= now);
                    let before = heartbeat.poll_timeout();
                    heartbeat.handle_timeout(now, &config);
                    let actions = drain(&mut heartbeat, &mut finished);
                    if !was_due {
                        prop_assert!(actions.is_empty(), "early wake-up acted: {actions:?}");
                        prop_assert_eq!(before, heartbeat.poll_timeout());
                    }
                    prop_assert!(heartbeat.poll_timeout().is_none_or(|d| d > now));
                }
                Input::WakeInThePast(ms) => {
                    let past = now.checked_sub(Duration::from_millis(ms)).unwrap_or(start);
                    let before = heartbeat.poll_timeout();
                    heartbeat.handle_timeout(past, &config);
                    // the past is clamped to the latest time seen, which is
                    // never past the deadline here unless it already was
                    if before.is_none_or(|d| d > now) {
                        prop_assert!(drain(&mut heartbeat, &mut finished).is_empty());
                        prop_assert_eq!(before, heartbeat.poll_timeout());
                    } else {
                        drain(&mut heartbeat, &mut finished);
                    }
                }
                Input::Data => heartbeat.handle_frame(now, &config, Frame::Data),
                Input::Ping => heartbeat.handle_frame(now, &config, Frame::Ping),
                Input::PongFor(back) => {
                    let id = heartbeat.pings_sent().saturating_sub(back);
                    heartbeat.handle_frame(now, &config, Frame::Pong(&ping_payload(id)));
                }
                Input::PongJunk(bytes) => heartbeat.handle_frame(now, &config, Frame::Pong(&bytes)),
                Input::PeerClose(code) => heartbeat.handle_frame(now, &config, Frame::Close(code)),
                Input::Close(code) => heartbeat.close(now, &config, code),
                Input::TransportEnd => heartbeat.handle_transport_end(now),
            }
            drain(&mut heartbeat, &mut finished);
            let dead = matches!(heartbeat.state(), State::Dead(_));
            prop_assert_eq!(heartbeat.poll_timeout().is_none(), dead, "None iff closed");
            prop_assert_eq!(finished, dead, "Finished is emitted exactly when dead");
            prop_assert!(heartbeat.last_seen() <= now);
        }
    }

    #[test]
    fn a_silent_peer_is_closed_within_interval_plus_timeout(
        config in config(),
        seed in any::<u64>(),
        talk in proptest::collection::vec(0u64..20_000, 0..20),
    ) {
        let start = origin();
        let mut now = start;
        let mut heartbeat = Heartbeat::new(now, &config, seed);
        let mut finished = false;
        // The peer talks for a while (timers handled on time), then goes silent.
        for gap in talk {
            let next = now + Duration::from_millis(gap);
            while let Some(deadline) = heartbeat.poll_timeout().filter(|d| *d <= next) {
                heartbeat.handle_timeout(deadline, &config);
                drain(&mut heartbeat, &mut finished);
            }
            now = next;
            heartbeat.handle_frame(now, &config, Frame::Ping);
            drain(&mut heartbeat, &mut finished);
        }
        let Some(last_seen) = (!finished).then(|| heartbeat.last_seen()) else {
            return Ok(()); // died while talking (possible with long gaps): no silence to judge
        };
        let mut steps = 0;
        while let Some(deadline) = heartbeat.poll_timeout() {
            heartbeat.handle_timeout(deadline, &config);
            let actions = drain(&mut heartbeat, &mut finished);
            if let Some(Action::Finished(reason)) = actions.last() {
                prop_assert_eq!(*reason, EndReason::HeartbeatTimeout);
                prop_assert!(deadline - last_seen <= config.detection_bound(),
                    "dead {:?} after the last frame", deadline - last_seen);
            }
            steps += 1;
            prop_assert!(steps < 10, "still not dead after {steps} timers");
        }
        prop_assert!(finished);
    }

    #[test]
    fn a_peer_that_answers_every_ping_within_the_timeout_is_never_closed(
        config in config(),
        seed in any::<u64>(),
        answer_fractions in proptest::collection::vec(0.0f64..0.95, 1..100),
    ) {
        let start = origin();
        let mut heartbeat = Heartbeat::new(start, &config, seed);
        let mut finished = false;
        for fraction in answer_fractions {
            let ping_at = heartbeat.poll_timeout().expect("alive");
            heartbeat.handle_timeout(ping_at, &config);
            let actions = drain(&mut heartbeat, &mut finished);
            let Some(Action::SendPing { id }) = actions.first().copied() else {
                return Err(TestCaseError::fail(format!("expected a ping, got {actions:?}")));
            };
            let answer_at = ping_at + config.timeout().mul_f64(fraction);
            // a suspect timer may fire before the answer; it must not kill
            while let Some(deadline) = heartbeat.poll_timeout().filter(|d| *d <= answer_at) {
                heartbeat.handle_timeout(deadline, &config);
                drain(&mut heartbeat, &mut finished);
            }
            heartbeat.handle_frame(answer_at, &config, Frame::Pong(&ping_payload(id)));
            drain(&mut heartbeat, &mut finished);
            prop_assert!(!finished);
            prop_assert_eq!(heartbeat.state(), State::Alive);
        }
    }

    #[test]
    fn a_stall_never_judges_a_peer_whose_answer_is_waiting_in_its_socket(
        config in config(),
        seed in any::<u64>(),
        timely_cycles in 0usize..4,
        stall_ms in 1u64..600_000,
        stalled_at_suspect in any::<bool>(),
    ) {
        let start = origin();
        let mut heartbeat = Heartbeat::new(start, &config, seed);
        let mut finished = false;
        let ping = |heartbeat: &mut Heartbeat, finished: &mut bool| {
            let at = heartbeat.poll_timeout().expect("alive");
            heartbeat.handle_timeout(at, &config);
            match drain(heartbeat, finished).first() {
                Some(Action::SendPing { id }) => (at, *id),
                other => panic!("expected a ping at {at:?}, got {other:?}"),
            }
        };
        for _ in 0..timely_cycles {
            let (at, id) = ping(&mut heartbeat, &mut finished);
            heartbeat.handle_frame(at + Duration::from_millis(5), &config, Frame::Pong(&ping_payload(id)));
            drain(&mut heartbeat, &mut finished);
        }
        let (_, id) = ping(&mut heartbeat, &mut finished);
        if stalled_at_suspect {
            // the suspect deadline is handled on time; the stall hits the kill deadline
            let at = heartbeat.poll_timeout().expect("alive");
            heartbeat.handle_timeout(at, &config);
            prop_assert_eq!(drain(&mut heartbeat, &mut finished), vec![Action::Suspect]);
        }
        // The answer arrives, but this process is stalled past the threshold.
        let asked = heartbeat.poll_timeout().expect("alive");
        let woke = asked + config.stall_threshold() + Duration::from_millis(stall_ms);
        heartbeat.handle_timeout(woke, &config);
        let actions = drain(&mut heartbeat, &mut finished);
        prop_assert!(actions.is_empty(), "judged on a stalled call: {actions:?}");
        // The driver then reads what was waiting in the socket.
        heartbeat.handle_frame(woke + Duration::from_millis(1), &config, Frame::Pong(&ping_payload(id)));
        drain(&mut heartbeat, &mut finished);
        prop_assert!(!finished);
        prop_assert_eq!(heartbeat.state(), State::Alive);
    }
}
