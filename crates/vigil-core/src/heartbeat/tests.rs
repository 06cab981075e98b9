//! Heartbeat timelines, readable as the specification of DESIGN.md section 2.
//!
//! Each `check` runs a script against one machine in virtual time and
//! compares the actions it asked for, stamped with seconds since the start,
//! with the expected log. Timers fire exactly when `poll_timeout` asks unless
//! a step says otherwise (`WakeAt` models a late or early wake-up).

mod config;

use super::*;
use std::fmt::Write as _;
use std::time::Duration;

use crate::tests::origin;

/// Interval 20 s, timeout 10 s (suspect at +5 s), no jitter, close timeout 5 s.
fn exact() -> Config {
    Config::builder().jitter(0.0).build().expect("valid")
}

enum Step<'a> {
    /// Fire due timers up to `ms`, then hand the frame in at `ms`.
    Recv(u64, Frame<'a>),
    /// Fire due timers up to `ms`, then start a close with this code.
    Close(u64, u16),
    /// Fire due timers up to `ms`, then report the transport gone.
    TransportEnd(u64),
    /// Fire due timers up to and including `ms`.
    Until(u64),
    /// Call `handle_timeout` once at `ms`, whatever the deadline: a wake-up
    /// that is early, repeated, or late because this process stalled.
    WakeAt(u64),
}
use Step::*;

struct Timeline<'c> {
    config: &'c Config,
    start: Instant,
    heartbeat: Heartbeat,
    log: String,
}

impl<'c> Timeline<'c> {
    fn new(config: &'c Config) -> Self {
        let start = origin();
        Self {
            config,
            start,
            heartbeat: Heartbeat::new(start, config, 1),
            log: String::new(),
        }
    }

    fn at(&self, ms: u64) -> Instant {
        self.start + Duration::from_millis(ms)
    }

    fn run(&mut self, step: &Step<'_>) {
        match *step {
            Recv(ms, frame) => {
                self.fire_timers_until(ms);
                self.heartbeat.handle_frame(self.at(ms), self.config, frame);
                self.drain(ms);
            }
            Close(ms, code) => {
                self.fire_timers_until(ms);
                self.heartbeat.close(self.at(ms), self.config, code);
                self.drain(ms);
            }
            TransportEnd(ms) => {
                self.fire_timers_until(ms);
                self.heartbeat.handle_transport_end(self.at(ms));
                self.drain(ms);
            }
            Until(ms) => self.fire_timers_until(ms),
            WakeAt(ms) => {
                self.heartbeat.handle_timeout(self.at(ms), self.config);
                self.drain(ms);
            }
        }
    }

    fn fire_timers_until(&mut self, ms: u64) {
        let limit = self.at(ms);
        while let Some(deadline) = self.heartbeat.poll_timeout().filter(|d| *d <= limit) {
            self.heartbeat.handle_timeout(deadline, self.config);
            let ms = u64::try_from((deadline - self.start).as_millis()).expect("short test");
            self.drain(ms);
            assert!(
                self.heartbeat
                    .poll_timeout()
                    .is_none_or(|next| next > deadline),
                "busy loop: handle_timeout({deadline:?}) left the timer due"
            );
        }
    }

    fn drain(&mut self, ms: u64) {
        while let Some(action) = self.heartbeat.poll_action() {
            let text = match action {
                Action::SendPing { id } => format!("send ping {id}"),
                Action::SendPong => "send pong".to_owned(),
                Action::SendClose { code: Some(code) } => format!("send close {code}"),
                Action::SendClose { code: None } => "send close (no code)".to_owned(),
                Action::Suspect => "suspect".to_owned(),
                Action::Recovered => "recovered".to_owned(),
                Action::Finished(reason) => format!("finished: {reason:?}"),
            };
            writeln!(self.log, "{:>7.3} {text}", ms as f64 / 1000.0).expect("write to String");
        }
    }
}

#[track_caller]
fn check(config: &Config, steps: &[Step<'_>], expect: &str) -> Heartbeat {
    let mut timeline = Timeline::new(config);
    for step in steps {
        timeline.run(step);
    }
    let actual: Vec<&str> = timeline.log.lines().map(str::trim).collect();
    let expected: Vec<&str> = expect
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(
        actual, expected,
        "\n--- actual timeline ---\n{}",
        timeline.log
    );
    timeline.heartbeat
}

const PONG_1: [u8; 8] = 1u64.to_be_bytes();

#[test]
fn a_silent_peer_is_pinged_then_suspect_then_dead_within_interval_plus_timeout() {
    let heartbeat = check(
        &exact(),
        &[Until(60_000)],
        "
        20.000 send ping 1
        25.000 suspect
        30.000 finished: HeartbeatTimeout
        ",
    );
    assert_eq!(heartbeat.state(), State::Dead(EndReason::HeartbeatTimeout));
    assert_eq!(heartbeat.poll_timeout(), None);
}

#[test]
fn a_peer_that_talks_is_never_pinged() {
    let steps: Vec<Step<'_>> = (1..=20).map(|i| Recv(i * 15_000, Frame::Data)).collect();
    let heartbeat = check(&exact(), &steps, "");
    assert_eq!(heartbeat.state(), State::Alive);
    assert_eq!(heartbeat.pings_sent(), 0);
}

#[test]
fn the_ping_is_scheduled_from_the_last_frame_not_from_the_start() {
    check(
        &exact(),
        &[Recv(7_000, Frame::Data), Until(40_000)],
        "
        27.000 send ping 1
        32.000 suspect
        37.000 finished: HeartbeatTimeout
        ",
    );
}

#[test]
fn any_frame_answers_a_ping_so_a_pong_stuck_behind_data_does_not_kill() {
    check(
        &exact(),
        &[
            Until(20_000),
            Recv(24_000, Frame::Data),
            // the pong arrives late, behind a large message: still alive
            Recv(31_000, Frame::Pong(&PONG_1)),
            Until(52_000),
        ],
        "
        20.000 send ping 1
        51.000 send ping 2
        ",
    );
}

#[test]
fn a_suspect_peer_that_speaks_recovers() {
    check(
        &exact(),
        &[Recv(27_000, Frame::Data), Until(47_000)],
        "
        20.000 send ping 1
        25.000 suspect
        27.000 recovered
        47.000 send ping 2
        ",
    );
}

#[test]
fn data_does_not_count_when_only_heartbeat_frames_are_life() {
    let config = Config::builder()
        .jitter(0.0)
        .any_frame_is_alive(false)
        .build()
        .expect("valid");
    let mut steps: Vec<Step<'_>> = (1..=10).map(|i| Recv(i * 4_000, Frame::Data)).collect();
    steps.push(Until(40_000));
    check(
        &config,
        &steps,
        "
        20.000 send ping 1
        25.000 suspect
        30.000 finished: HeartbeatTimeout
        ",
    );
}

#[test]
fn a_pong_to_our_ping_is_an_rtt_sample() {
    let heartbeat = check(
        &exact(),
        &[Until(20_000), Recv(20_150, Frame::Pong(&PONG_1))],
        "20.000 send ping 1",
    );
    assert_eq!(heartbeat.rtt().srtt(), Some(Duration::from_millis(150)));
    assert_eq!(heartbeat.rtt().min_rtt(), Some(Duration::from_millis(150)));
}

#[test]
fn last_seen_is_the_arrival_of_the_latest_frame_that_counts() {
    let config = exact();
    let mut timeline = Timeline::new(&config);
    timeline.run(&Recv(1_500, Frame::Data));
    timeline.run(&Recv(2_500, Frame::Pong(b"x")));
    assert_eq!(timeline.heartbeat.last_seen(), timeline.at(2_500));
}

#[test]
fn stale_duplicate_and_foreign_pongs_keep_the_peer_alive_but_give_no_sample() {
    let heartbeat = check(
        &exact(),
        &[
            // unsolicited pong with a foreign payload: life, no sample
            Recv(5_000, Frame::Pong(b"hello")),
            Until(25_000),
            // answers ping 1 at 25 s
            Recv(25_100, Frame::Pong(&PONG_1)),
            // a duplicate of the same pong: no second sample
            Recv(25_200, Frame::Pong(&PONG_1)),
            Until(45_200),
            // a pong for ping 1 when ping 2 is outstanding: stale
            Recv(45_500, Frame::Pong(&PONG_1)),
        ],
        "
        25.000 send ping 1
        45.200 send ping 2
        ",
    );
    assert_eq!(heartbeat.rtt().sample_count(), 1);
    assert_eq!(heartbeat.rtt().srtt(), Some(Duration::from_millis(100)));
}

#[test]
fn a_late_pong_for_a_ping_answered_by_data_still_measures_rtt() {
    let heartbeat = check(
        &exact(),
        &[
            Until(20_000),
            Recv(20_050, Frame::Data),
            Recv(20_300, Frame::Pong(&PONG_1)),
        ],
        "20.000 send ping 1",
    );
    assert_eq!(heartbeat.rtt().srtt(), Some(Duration::from_millis(300)));
}

#[test]
fn the_peers_pings_are_answered_and_coalesced_until_drained() {
    let config = exact();
    let start = origin();
    let mut heartbeat = Heartbeat::new(start, &config, 1);
    for ms in [100, 101, 102] {
        heartbeat.handle_frame(start + Duration::from_millis(ms), &config, Frame::Ping);
    }
    assert_eq!(heartbeat.poll_action(), Some(Action::SendPong));
    assert_eq!(heartbeat.poll_action(), None);
    // pinging us counts as life: our own ping moves to 20 s after the last one
    assert_eq!(
        heartbeat.poll_timeout(),
        Some(start + Duration::from_millis(20_102))
    );
}

#[test]
fn we_close_and_the_peer_answers() {
    let heartbeat = check(
        &exact(),
        &[Close(3_000, 1000), Recv(3_200, Frame::Close(Some(1000)))],
        "
        3.000 send close 1000
        3.200 finished: ClosedLocally { code: 1000 }
        ",
    );
    assert!(!EndReason::ClosedLocally { code: 1000 }.is_abnormal());
    assert_eq!(heartbeat.poll_timeout(), None);
}

#[test]
fn a_close_code_forbidden_on_the_wire_is_sent_as_1000() {
    check(
        &exact(),
        &[Close(1_000, 1005), Recv(1_100, Frame::Close(Some(1000)))],
        "
        1.000 send close 1000
        1.100 finished: ClosedLocally { code: 1000 }
        ",
    );
}

#[test]
fn our_close_unanswered_times_out() {
    check(
        &exact(),
        &[Close(3_000, 1001), Until(60_000)],
        "
        3.000 send close 1001
        8.000 finished: CloseTimeout
        ",
    );
}

#[test]
fn while_closing_frames_are_ignored_and_pings_not_answered() {
    check(
        &exact(),
        &[
            Close(3_000, 1000),
            Recv(3_100, Frame::Data),
            Recv(3_200, Frame::Ping),
            Close(3_300, 4000),
            Until(60_000),
        ],
        "
        3.000 send close 1000
        8.000 finished: CloseTimeout
        ",
    );
}

#[test]
fn the_peers_close_is_echoed_and_ends_the_connection_normally() {
    let heartbeat = check(
        &exact(),
        &[Recv(2_000, Frame::Close(Some(1001)))],
        "
        2.000 send close 1001
        2.000 finished: ClosedByPeer { code: Some(1001) }
        ",
    );
    assert!(!EndReason::ClosedByPeer { code: Some(1001) }.is_abnormal());
    assert_eq!(heartbeat.poll_timeout(), None);
}

#[test]
fn a_close_without_code_is_answered_without_code_and_a_forbidden_code_with_1002() {
    check(
        &exact(),
        &[Recv(2_000, Frame::Close(None))],
        "
        2.000 send close (no code)
        2.000 finished: ClosedByPeer { code: None }
        ",
    );
    check(
        &exact(),
        &[Recv(2_000, Frame::Close(Some(1005)))],
        "
        2.000 send close 1002
        2.000 finished: ClosedByPeer { code: Some(1005) }
        ",
    );
}

#[test]
fn a_broken_transport_is_an_abnormal_end_and_nothing_happens_after_it() {
    let heartbeat = check(
        &exact(),
        &[
            TransportEnd(4_000),
            Recv(5_000, Frame::Ping),
            Close(6_000, 1000),
            WakeAt(60_000),
        ],
        "4.000 finished: TransportEnded",
    );
    assert!(EndReason::TransportEnded.is_abnormal());
    assert!(EndReason::HeartbeatTimeout.is_abnormal());
    assert_eq!(heartbeat.state(), State::Dead(EndReason::TransportEnded));
}

#[test]
fn a_transport_that_ends_during_our_close_is_the_close_we_asked_for() {
    check(
        &exact(),
        &[Close(1_000, 1000), TransportEnd(1_500)],
        "
        1.000 send close 1000
        1.500 finished: ClosedLocally { code: 1000 }
        ",
    );
}

#[test]
fn a_deadline_handled_long_after_a_stall_judges_nobody_and_grants_time_to_read() {
    // The process stalls from 24 s to 45 s: the suspect deadline (25 s) is
    // handled 20 s late, past the kill deadline too. The peer's pong was
    // waiting in the socket: it is neither killed nor shown as unstable.
    check(
        &exact(),
        &[
            Until(24_000),
            WakeAt(45_000),
            Recv(45_050, Frame::Pong(&PONG_1)),
            Until(60_000),
        ],
        "20.000 send ping 1",
    );
}

#[test]
fn a_stall_just_past_the_kill_deadline_is_still_a_stall() {
    // Asked for 25 s, called at 30.5 s: 5.5 s late, so no verdict.
    check(
        &exact(),
        &[
            Until(24_000),
            WakeAt(30_500),
            Recv(30_550, Frame::Pong(&PONG_1)),
            Until(40_000),
        ],
        "20.000 send ping 1",
    );
}

#[test]
fn after_the_stall_grace_a_truly_silent_peer_still_dies() {
    check(
        &exact(),
        &[Until(24_000), WakeAt(45_000), Until(60_000)],
        "
        20.000 send ping 1
        47.000 finished: HeartbeatTimeout
        ",
    );
}

#[test]
fn a_late_ping_is_simply_sent() {
    check(
        &exact(),
        &[WakeAt(40_000), Until(45_000)],
        "
        40.000 send ping 1
        45.000 suspect
        ",
    );
}

#[test]
fn a_stall_during_our_close_waits_for_the_peers_answer() {
    check(
        &exact(),
        &[
            Close(3_000, 1000),
            WakeAt(15_000),
            Recv(15_050, Frame::Close(Some(1000))),
        ],
        "
        3.000 send close 1000
        15.050 finished: ClosedLocally { code: 1000 }
        ",
    );
}

#[test]
fn stall_graces_are_bounded_so_a_starved_process_still_detects_eventually() {
    // Every wake-up is 10 s late: after MAX_STALL_GRACES deferrals the peer dies.
    check(
        &exact(),
        &[
            Until(29_000),
            WakeAt(40_000),
            WakeAt(52_000),
            WakeAt(64_000),
            WakeAt(76_000),
        ],
        "
        20.000 send ping 1
        25.000 suspect
        76.000 finished: HeartbeatTimeout
        ",
    );
}

#[test]
fn a_wake_up_slightly_late_is_not_a_stall() {
    check(
        &exact(),
        &[Until(29_000), WakeAt(30_900)],
        "
        20.000 send ping 1
        25.000 suspect
        30.900 finished: HeartbeatTimeout
        ",
    );
}

#[test]
fn early_and_repeated_wake_ups_do_nothing() {
    check(
        &exact(),
        &[
            WakeAt(5_000),
            WakeAt(19_999),
            WakeAt(20_000),
            WakeAt(20_000),
            WakeAt(20_001),
        ],
        "20.000 send ping 1",
    );
}

#[test]
fn a_clock_that_goes_backwards_is_clamped() {
    let heartbeat = check(
        &exact(),
        &[
            Recv(10_000, Frame::Data),
            // an earlier `now` is treated as 10 s: the ping stays at 30 s
            Recv(4_000, Frame::Data),
            Until(30_000),
        ],
        "30.000 send ping 1",
    );
    assert_eq!(heartbeat.pings_sent(), 1);
}

#[test]
fn jitter_only_brings_pings_earlier_and_spreads_them() {
    let config = Config::default();
    let start = origin();
    let mut first_pings: Vec<Duration> = (0..2_000u64)
        .map(|seed| {
            let heartbeat = Heartbeat::new(start, &config, seed);
            heartbeat.poll_timeout().expect("alive") - start
        })
        .collect();
    first_pings.sort();
    let earliest = first_pings[0];
    let latest = first_pings[first_pings.len() - 1];
    assert!(earliest >= Duration::from_secs(18), "{earliest:?}");
    assert!(latest <= Duration::from_secs(20), "{latest:?}");
    assert!(
        earliest < Duration::from_millis(18_050),
        "not spread: {earliest:?}"
    );
    assert!(
        latest > Duration::from_millis(19_950),
        "not spread: {latest:?}"
    );
    let mut buckets: Vec<u128> = first_pings.iter().map(|d| d.as_millis() / 10).collect();
    buckets.dedup();
    assert!(
        buckets.len() > 150,
        "2000 pings fell in {} of 200 buckets of 10 ms",
        buckets.len()
    );
}

#[test]
fn equal_seeds_ping_at_equal_times() {
    let config = Config::default();
    let start = origin();
    let a = Heartbeat::new(start, &config, 99);
    let b = Heartbeat::new(start, &config, 99);
    assert_eq!(a.poll_timeout(), b.poll_timeout());
}

#[test]
fn the_machine_is_small_and_owns_no_configuration() {
    assert!(
        size_of::<Heartbeat>() <= 128,
        "Heartbeat is {} bytes",
        size_of::<Heartbeat>()
    );
}
