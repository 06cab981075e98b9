//! Property tests of the presence table: random sequences of connects, joins,
//! leaves, disconnects and time steps (some backwards), checked against a
//! plain model of who must be online and against a client replaying diffs.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::origin;
use proptest::prelude::*;
use vigil_core::presence::{ConnId, Departure, Event, Presence, PresenceConfig};

const CONNS: u8 = 6;
const USERS: u8 = 3;
const CHANNELS: u8 = 3;

#[derive(Debug, Clone, Copy)]
enum Op {
    Connect {
        conn: u8,
        user: u8,
    },
    Join {
        conn: u8,
        channel: u8,
        meta: Option<u8>,
    },
    Leave {
        conn: u8,
        channel: u8,
    },
    Will {
        conn: u8,
        payload: Option<u8>,
    },
    Disconnect {
        conn: u8,
        abnormal: bool,
    },
    /// Move the clock forward; `tick` calls `handle_timeout` at the new time.
    Advance {
        ms: u64,
        tick: bool,
    },
}

/// An op, issued `skew_ms` before the current time (time going backwards).
#[derive(Debug, Clone, Copy)]
struct Step {
    op: Op,
    skew_ms: u64,
}

fn op() -> impl Strategy<Value = Op> {
    let conn = 0..CONNS;
    let channel = 0..CHANNELS;
    let small = proptest::option::of(0u8..2);
    prop_oneof![
        3 => (conn.clone(), 0..USERS).prop_map(|(conn, user)| Op::Connect { conn, user }),
        5 => (conn.clone(), channel.clone(), small.clone())
            .prop_map(|(conn, channel, meta)| Op::Join { conn, channel, meta }),
        1 => (conn.clone(), channel).prop_map(|(conn, channel)| Op::Leave { conn, channel }),
        1 => (conn.clone(), small).prop_map(|(conn, payload)| Op::Will { conn, payload }),
        2 => (conn, any::<bool>()).prop_map(|(conn, abnormal)| Op::Disconnect { conn, abnormal }),
        3 => (0u64..8_000, any::<bool>()).prop_map(|(ms, tick)| Op::Advance { ms, tick }),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    let skew = prop_oneof![4 => Just(0u64), 1 => 0u64..3_000];
    (op(), skew).prop_map(|(op, skew_ms)| Step { op, skew_ms })
}

fn grace() -> impl Strategy<Value = Duration> {
    prop_oneof![
        Just(Duration::ZERO),
        Just(Duration::from_millis(1_000)),
        Just(Duration::from_secs(5)),
        (1u64..10_000).prop_map(Duration::from_millis),
    ]
}

fn user(n: u8) -> String {
    format!("u{n}")
}

fn channel(n: u8) -> String {
    format!("ch{n}")
}

fn arc(text: String) -> Arc<str> {
    Arc::from(text)
}

#[derive(Debug)]
struct ModelConn {
    user: u8,
    channels: BTreeSet<u8>,
    will: Option<u8>,
}

/// The specification, written the plain way.
#[derive(Debug)]
struct Model {
    grace: Duration,
    /// The latest instant given to the table.
    clock: Instant,
    conns: HashMap<u8, ModelConn>,
    /// (channel, user) → deadline of the leave waiting out the grace.
    pending: BTreeMap<(u8, u8), Instant>,
    /// (channel, user) → meta of the latest join, while the user is present.
    meta: BTreeMap<(u8, u8), Option<u8>>,
    /// user → when their latest connection ended.
    last_departure: HashMap<u8, Instant>,
}

impl Model {
    fn joined(&self, ch: u8, user: u8) -> bool {
        self.conns
            .values()
            .any(|c| c.user == user && c.channels.contains(&ch))
    }

    fn online(&self, ch: u8, user: u8) -> bool {
        self.joined(ch, user)
            || self
                .pending
                .get(&(ch, user))
                .is_some_and(|d| *d > self.clock)
    }

    /// Moves the clock to `at` (never back) and drops the leaves due by then.
    fn settle(&mut self, at: Instant) -> Instant {
        self.clock = self.clock.max(at);
        let clock = self.clock;
        let due: Vec<_> = self
            .pending
            .iter()
            .filter(|(_, deadline)| **deadline <= clock)
            .map(|(key, _)| *key)
            .collect();
        for key in due {
            self.pending.remove(&key);
            self.meta.remove(&key);
        }
        clock
    }

    /// `user` no longer has a live connection of theirs in `ch`, unless another does.
    fn release(&mut self, ch: u8, user: u8, wait: bool) {
        if self.joined(ch, user) {
            return;
        }
        if wait && !self.grace.is_zero() {
            self.pending.insert((ch, user), self.clock + self.grace);
        } else {
            self.meta.remove(&(ch, user));
        }
    }
}

/// A client that applies every diff, checking each is a real, newer change.
#[derive(Debug, Default)]
struct Replica {
    channels: BTreeMap<String, (u64, BTreeMap<String, Option<String>>)>,
}

impl Replica {
    fn apply(&mut self, event: &Event) -> Result<(), TestCaseError> {
        let Event::Diff {
            channel,
            version,
            joins,
            leaves,
        } = event
        else {
            return Ok(());
        };
        prop_assert!(!joins.is_empty() || !leaves.is_empty(), "empty diff");
        let (last, members) = self.channels.entry(channel.to_string()).or_default();
        prop_assert!(version > last, "{}: v{} after v{}", channel, version, last);
        *last = *version;
        for join in joins {
            let meta = join.meta.as_deref().map(str::to_owned);
            let old = members.insert(join.user.to_string(), meta.clone());
            prop_assert_ne!(old, Some(meta), "join without a change");
        }
        for user in leaves {
            prop_assert!(members.remove(&**user).is_some(), "leave of an absent user");
        }
        Ok(())
    }
}

fn run(grace: Duration, steps: &[Step]) -> Result<(), TestCaseError> {
    let config = PresenceConfig::builder()
        .leave_grace(grace)
        .build()
        .expect("the strategy draws graces below an hour");
    let mut presence = Presence::new(config);
    // An hour in, so skewed instants never fall before the origin.
    let mut now = origin() + Duration::from_secs(3_600);
    let mut model = Model {
        grace,
        clock: now,
        conns: HashMap::new(),
        pending: BTreeMap::new(),
        meta: BTreeMap::new(),
        last_departure: HashMap::new(),
    };
    let mut replica = Replica::default();
    for step in steps {
        let at = now - Duration::from_millis(step.skew_ms);
        let mut wills = Vec::new();
        match step.op {
            Op::Connect { conn, user: u } => {
                let accepted = presence.connect(at, ConnId(conn.into()), arc(user(u)));
                model.settle(at);
                prop_assert_eq!(accepted, !model.conns.contains_key(&conn));
                if accepted {
                    let state = ModelConn {
                        user: u,
                        channels: BTreeSet::new(),
                        will: None,
                    };
                    model.conns.insert(conn, state);
                }
            }
            Op::Join {
                conn,
                channel: ch,
                meta,
            } => {
                let meta_text = meta.map(|m| arc(format!("m{m}")));
                let accepted = presence.join(at, ConnId(conn.into()), arc(channel(ch)), meta_text);
                model.settle(at);
                prop_assert_eq!(accepted, model.conns.contains_key(&conn));
                if let Some(c) = model.conns.get_mut(&conn) {
                    c.channels.insert(ch);
                    let u = c.user;
                    model.pending.remove(&(ch, u));
                    model.meta.insert((ch, u), meta);
                }
            }
            Op::Leave { conn, channel: ch } => {
                let accepted = presence.leave(at, ConnId(conn.into()), &channel(ch));
                model.settle(at);
                let held = model
                    .conns
                    .get_mut(&conn)
                    .and_then(|c| c.channels.remove(&ch).then_some(c.user));
                prop_assert_eq!(accepted, held.is_some());
                if let Some(u) = held {
                    model.release(ch, u, false);
                }
            }
            Op::Will { conn, payload } => {
                let payload_text = payload.map(|p| arc(format!("p{p}")));
                let accepted = presence.set_last_will(ConnId(conn.into()), payload_text);
                prop_assert_eq!(accepted, model.conns.contains_key(&conn));
                if let Some(c) = model.conns.get_mut(&conn) {
                    c.will = payload;
                }
            }
            Op::Disconnect { conn, abnormal } => {
                let departure = if abnormal {
                    Departure::Abnormal
                } else {
                    Departure::Clean
                };
                let accepted = presence.disconnect(at, ConnId(conn.into()), departure);
                let clock = model.settle(at);
                let gone = model.conns.remove(&conn);
                prop_assert_eq!(accepted, gone.is_some());
                if let Some(gone) = gone {
                    if let (true, Some(p)) = (abnormal, gone.will) {
                        wills.push((conn, user(gone.user), format!("p{p}")));
                    }
                    model.last_departure.insert(gone.user, clock);
                    for ch in gone.channels {
                        model.release(ch, gone.user, true);
                    }
                }
            }
            Op::Advance { ms, tick } => {
                now += Duration::from_millis(ms);
                if tick {
                    let t = now - Duration::from_millis(step.skew_ms);
                    presence.handle_timeout(t);
                    model.settle(t);
                    // (4) no busy loop: nothing left due at `t`.
                    prop_assert!(presence.poll_timeout().is_none_or(|d| d > t));
                }
            }
        }

        // (5) wills: exactly the abnormal departures that carried one, at once.
        let mut emitted = Vec::new();
        while let Some(event) = presence.poll_event() {
            if let Event::LastWill {
                conn,
                user,
                payload,
            } = &event
            {
                let conn = u8::try_from(conn.0).expect("ids come from 0..CONNS");
                emitted.push((conn, user.to_string(), payload.to_string()));
            }
            replica.apply(&event)?;
        }
        prop_assert_eq!(&emitted, &wills, "at {:?}", step);

        check(&presence, &model, &replica, step)?;
    }
    Ok(())
}

fn check(
    presence: &Presence,
    model: &Model,
    replica: &Replica,
    step: &Step,
) -> Result<(), TestCaseError> {
    // (4) the timer is the earliest pending leave, always in the future.
    let earliest = model.pending.values().min().copied();
    prop_assert_eq!(presence.poll_timeout(), earliest, "at {:?}", step);
    prop_assert!(earliest.is_none_or(|d| d > model.clock));
    prop_assert_eq!(presence.pending_leave_count(), model.pending.len());
    prop_assert_eq!(presence.connection_count(), model.conns.len());

    let mut non_empty = 0;
    for ch in 0..CHANNELS {
        let name = channel(ch);
        let snapshot = presence.members(&name);
        for u in 0..USERS {
            let online = presence.is_online(&name, &user(u));
            // (1) online iff a live connection joined, or a leave is pending
            // and not yet due.
            prop_assert_eq!(
                online,
                model.online(ch, u),
                "{} {} at {:?}",
                name,
                user(u),
                step
            );
            // (2) never offline while a live connection remains joined...
            if model.joined(ch, u) {
                prop_assert!(online);
            }
            // ...and never online without one once the grace has passed.
            let has_conn = model.conns.values().any(|c| c.user == u);
            let grace_over = model
                .last_departure
                .get(&u)
                .is_none_or(|d| model.clock >= *d + model.grace);
            if !has_conn && grace_over {
                prop_assert!(!online, "{} {} still online at {:?}", name, user(u), step);
            }
        }
        // Members carry the meta of their latest join.
        let expected: BTreeMap<String, Option<String>> = model
            .meta
            .iter()
            .filter(|((c, _), _)| *c == ch)
            .map(|((_, u), meta)| (user(*u), meta.map(|m| format!("m{m}"))))
            .collect();
        let actual: BTreeMap<String, Option<String>> = snapshot
            .members
            .iter()
            .map(|m| (m.user.to_string(), m.meta.as_deref().map(str::to_owned)))
            .collect();
        prop_assert_eq!(&actual, &expected, "{} at {:?}", name, step);
        prop_assert_eq!(presence.member_count(&name), expected.len());
        let users: Vec<&str> = snapshot.members.iter().map(|m| &*m.user).collect();
        prop_assert!(users.is_sorted(), "snapshot not sorted by user");

        // (3) replaying every diff gives the snapshot, at the snapshot's version.
        let (version, replayed) = replica.channels.get(&name).cloned().unwrap_or_default();
        prop_assert_eq!(&replayed, &actual, "replay of {} at {:?}", name, step);
        if actual.is_empty() {
            prop_assert!(snapshot.version >= version);
        } else {
            non_empty += 1;
            prop_assert_eq!(snapshot.version, version);
        }
    }
    // No leaks: only channels with someone present exist.
    prop_assert_eq!(presence.channel_count(), non_empty);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    // (6) none of this panics, whatever the sequence.
    #[test]
    fn the_table_agrees_with_the_model_and_with_a_replaying_client(
        grace in grace(),
        steps in proptest::collection::vec(step(), 1..150),
    ) {
        run(grace, &steps)?;
    }
}
