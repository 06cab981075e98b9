//! Criterion benches of the presence table with 100,000 users, in one channel
//! and spread over 1,000 channels: joins, disconnects whose leaves expire
//! after the grace (one at a time and all at once), and reloads within it.
//!
//! Each iteration drives the real table end to end, as the server does:
//! command, full drain of events, `poll_timeout`/`handle_timeout`. Throughput
//! is per user, so criterion's time divided by 100,000 is the cost of one
//! operation. The table is built in untimed setup and dropped untimed.

use criterion::{BatchSize, Criterion, Throughput, black_box, criterion_group, criterion_main};
use std::sync::Arc;
use std::time::{Duration, Instant};
use vigil_core::presence::{ConnId, Departure, Presence, PresenceConfig};
use vigil_core::rng::SplitMix64;

const USERS: u64 = 100_000;
const GRACE: Duration = Duration::from_secs(5);
/// Every scenario is bounded: no driver loop runs longer than this many steps.
const MAX_STEPS: u64 = 10 * USERS;

/// One connection per user, in the order the users arrive.
struct Population {
    /// (connection, user, channel), shuffled so joins land all over the table.
    entries: Vec<(ConnId, Arc<str>, Arc<str>)>,
}

impl Population {
    /// `USERS` users, each in one of `channels` channels, drawn from a fixed
    /// seed so every run benches the same table.
    fn draw(channels: u64) -> Self {
        let mut rng = SplitMix64::new(0x5EED);
        let names: Vec<Arc<str>> = (0..channels)
            .map(|k| Arc::from(format!("room-{k:04}")))
            .collect();
        let mut entries: Vec<_> = (0..USERS)
            .map(|n| {
                let channel = &names[(rng.next_u64() % channels) as usize];
                let user = Arc::from(format!("user-{n:06}"));
                (ConnId(n), user, Arc::clone(channel))
            })
            .collect();
        // Fisher-Yates; the modulo bias is irrelevant here.
        for i in (1..entries.len()).rev() {
            let j = (rng.next_u64() % (i as u64 + 1)) as usize;
            entries.swap(i, j);
        }
        Self { entries }
    }

    /// A table with every connection live and in no channel.
    fn connected(&self, now: Instant) -> Presence {
        let mut presence = Presence::new(config());
        for (conn, user, _) in &self.entries {
            presence.connect(now, *conn, Arc::clone(user));
        }
        presence
    }

    /// A table with every user present in their channel, events drained.
    fn joined(&self, now: Instant) -> Presence {
        let mut presence = self.connected(now);
        for (conn, _, channel) in &self.entries {
            presence.join(now, *conn, Arc::clone(channel), None);
        }
        drain(&mut presence);
        presence
    }
}

fn config() -> PresenceConfig {
    PresenceConfig::builder()
        .leave_grace(GRACE)
        .build()
        .expect("5 s is a valid grace")
}

fn drain(presence: &mut Presence) -> u64 {
    let mut count = 0;
    while let Some(event) = presence.poll_event() {
        black_box(event);
        count += 1;
    }
    count
}

/// Fires every timer as a driver would, at its deadline; returns the steps.
fn run_timers(presence: &mut Presence) -> u64 {
    let mut steps = 0;
    while let Some(deadline) = presence.poll_timeout() {
        assert!(steps < MAX_STEPS, "the timers did not run out");
        presence.handle_timeout(deadline);
        drain(presence);
        steps += 1;
    }
    steps
}

fn presence(c: &mut Criterion) {
    let t0 = Instant::now();
    for (layout, channels) in [("one_channel", 1), ("1000_channels", 1_000)] {
        let population = Population::draw(channels);
        let mut group = c.benchmark_group(format!("presence/{layout}"));
        group.throughput(Throughput::Elements(USERS));
        group.sample_size(10);

        group.bench_function("join", |b| {
            b.iter_batched(
                || population.connected(t0),
                |mut presence| {
                    for (conn, _, channel) in &population.entries {
                        presence.join(t0, *conn, Arc::clone(channel), None);
                        drain(&mut presence);
                    }
                    presence
                },
                BatchSize::PerIteration,
            );
        });

        // Users drop one by one (10 us apart); each leave fires on its own
        // timer, so every expiry is one `handle_timeout` and one diff.
        group.bench_function("disconnect_then_expire_one_by_one", |b| {
            b.iter_batched(
                || population.joined(t0),
                |mut presence| {
                    for (i, (conn, _, _)) in population.entries.iter().enumerate() {
                        let at = t0 + Duration::from_micros(10 * i as u64);
                        presence.disconnect(at, *conn, Departure::Abnormal);
                        drain(&mut presence);
                    }
                    let steps = run_timers(&mut presence);
                    assert_eq!(steps, USERS, "one expiry per user");
                    assert_eq!(presence.channel_count(), 0, "everyone left");
                    presence
                },
                BatchSize::PerIteration,
            );
        });

        // A server restart: everyone drops at the same instant and one
        // `handle_timeout` announces all leaves, one diff per channel.
        group.bench_function("disconnect_then_expire_all_at_once", |b| {
            b.iter_batched(
                || population.joined(t0),
                |mut presence| {
                    for (conn, _, _) in &population.entries {
                        presence.disconnect(t0, *conn, Departure::Clean);
                        drain(&mut presence);
                    }
                    let steps = run_timers(&mut presence);
                    assert_eq!(steps, 1, "one batch");
                    assert_eq!(presence.channel_count(), 0, "everyone left");
                    presence
                },
                BatchSize::PerIteration,
            );
        });

        // Every tab reloads: disconnect, reconnect under a new id and join
        // again within the grace. Nothing is announced, no timer is left.
        group.bench_function("reload_within_grace", |b| {
            b.iter_batched(
                || population.joined(t0),
                |mut presence| {
                    let at = t0 + Duration::from_secs(1);
                    for (conn, user, channel) in &population.entries {
                        presence.disconnect(at, *conn, Departure::Clean);
                        let new_conn = ConnId(conn.0 + USERS);
                        presence.connect(at, new_conn, Arc::clone(user));
                        presence.join(at, new_conn, Arc::clone(channel), None);
                        assert_eq!(drain(&mut presence), 0, "no flicker");
                    }
                    assert_eq!(presence.poll_timeout(), None, "every leave cancelled");
                    presence
                },
                BatchSize::PerIteration,
            );
        });
        group.finish();
    }
}

criterion_group!(benches, presence);
criterion_main!(benches);
