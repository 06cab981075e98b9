//! Fuzz target: arbitrary command sequences to the presence table must never
//! panic, never leave a user online with no connection once the grace is
//! over, and keep the timer invariant.
//!
//! Each input byte triple is one step: an op, a connection or channel index
//! and a time step.

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use vigil_core::presence::{ConnId, Departure, Presence, PresenceConfig};

const USERS: [&str; 3] = ["ann", "bob", "cy"];
const CHANNELS: [&str; 3] = ["lobby", "room", "ops"];

/// A fixed origin for virtual time, read once per process.
fn origin() -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

fuzz_target!(|data: &[u8]| {
    let Some((&head, steps)) = data.split_first() else {
        return;
    };
    let grace = Duration::from_millis(u64::from(head) * 40);
    let Ok(config) = PresenceConfig::builder().leave_grace(grace).build() else {
        return;
    };
    let mut presence = Presence::new(config);
    let mut now = origin();
    for step in steps.chunks_exact(3) {
        let (op, index, time) = (step[0], usize::from(step[1]), step[2]);
        let conn = ConnId(u64::from(step[1] % 8));
        let channel: Arc<str> = Arc::from(CHANNELS[index % CHANNELS.len()]);
        match op % 8 {
            0 => {
                presence.connect(now, conn, Arc::from(USERS[index % USERS.len()]));
            }
            1 => {
                let meta = (time % 2 == 0).then(|| Arc::from("away"));
                presence.join(now, conn, channel, meta);
            }
            2 => {
                presence.leave(now, conn, &channel);
            }
            3 => {
                presence.set_last_will(conn, Some(Arc::from("gone")));
            }
            4 => {
                presence.disconnect(now, conn, Departure::Clean);
            }
            5 => {
                presence.disconnect(now, conn, Departure::Abnormal);
            }
            6 => presence.handle_timeout(now - Duration::from_millis(u64::from(time)).min(now - origin())),
            _ => {
                now += Duration::from_millis(u64::from(time) * 37);
                presence.handle_timeout(now);
                assert!(presence.poll_timeout().is_none_or(|deadline| deadline > now));
            }
        }
        while presence.poll_event().is_some() {}
        if presence.poll_timeout().is_none() {
            // No leave pending: everyone shown online must hold a connection.
            for channel in CHANNELS {
                for member in presence.members(channel).members {
                    let held = (0..8).map(ConnId).any(|conn| {
                        presence.user_of(conn) == Some(&*member.user)
                            && presence.channels_of(conn).any(|joined| joined == channel)
                    });
                    assert!(held, "{} online in {channel} without a connection", member.user);
                }
            }
            assert_eq!(presence.pending_leave_count(), 0);
        }
    }
});
