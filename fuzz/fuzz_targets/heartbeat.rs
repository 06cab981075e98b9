//! Fuzz target: arbitrary input sequences to the heartbeat machine must never
//! panic and must keep its timer invariants.
//!
//! Each input byte pair is one step: the first byte picks the input, the
//! second sizes it (a time step, a close code, a pong id).

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use vigil_core::heartbeat::{Action, Config, Frame, Heartbeat, State, ping_payload};

/// A fixed origin for virtual time, read once per process.
fn origin() -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

fuzz_target!(|data: &[u8]| {
    let Some((&head, steps)) = data.split_first() else {
        return;
    };
    let Ok(config) = Config::builder()
        .interval(Duration::from_millis(100 + u64::from(head) * 250))
        .timeout(Duration::from_millis(1_000 + u64::from(head) * 100))
        .jitter(f64::from(head % 6) / 10.0)
        .any_frame_is_alive(head % 2 == 0)
        .build()
    else {
        return;
    };
    let start = origin();
    let mut now = start;
    let mut heartbeat = Heartbeat::new(now, &config, u64::from(head));
    let mut finished = false;
    for step in steps.chunks_exact(2) {
        let (op, arg) = (step[0], step[1]);
        match op % 10 {
            0 | 1 => {
                now += Duration::from_millis(u64::from(arg) * 97);
                heartbeat.handle_timeout(now, &config);
            }
            2 => heartbeat.handle_timeout(now - Duration::from_millis(u64::from(arg)).min(now - start), &config),
            3 => heartbeat.handle_frame(now, &config, Frame::Data),
            4 => heartbeat.handle_frame(now, &config, Frame::Ping),
            5 => {
                let id = heartbeat.pings_sent().saturating_sub(u64::from(arg % 3));
                heartbeat.handle_frame(now, &config, Frame::Pong(&ping_payload(id)));
            }
            6 => heartbeat.handle_frame(now, &config, Frame::Pong(&steps[..usize::from(arg) % steps.len()])),
            7 => heartbeat.handle_frame(now, &config, Frame::Close((arg % 2 == 0).then(|| u16::from(arg) * 20))),
            8 => heartbeat.close(now, &config, 1000 + u16::from(arg % 4)),
            _ => heartbeat.handle_transport_end(now),
        }
        while let Some(action) = heartbeat.poll_action() {
            assert!(!finished, "{action:?} after Finished");
            finished = matches!(action, Action::Finished(_));
        }
        let dead = matches!(heartbeat.state(), State::Dead(_));
        assert_eq!(heartbeat.poll_timeout().is_none(), dead);
        assert_eq!(finished, dead);
        if op % 10 < 2 {
            assert!(heartbeat.poll_timeout().is_none_or(|deadline| deadline > now));
        }
    }
});
