//! Who is online where: connections join channels under a user id, and the
//! table announces per-channel, per-user joins and leaves as versioned diffs.
//!
//! Many connections of one user (tabs, devices) are one member. When a user's
//! last connection in a channel ends, the leave waits out a grace and is
//! cancelled if a connection of theirs joins again in time, so a page reload
//! does not flicker. A connection may carry a last will, published only when
//! it ends abnormally. Sans-IO: no clock, no IO; the caller drives the grace
//! timers with `poll_timeout`/`handle_timeout`.

mod config;
mod event;
mod read;
mod timers;

#[cfg(test)]
mod tests;

pub use config::{PresenceConfig, PresenceConfigBuilder, PresenceConfigError};
pub use event::{ChannelStats, ConnId, Departure, Event, Member, Page, Snapshot};

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};

use timers::{LeaveTimers, PendingLeave, TimerKey};

/// The presence table of one process: every live connection, every channel
/// with at least one member, and the leaves waiting out their grace.
///
/// Commands: [`connect`](Self::connect), [`join`](Self::join),
/// [`leave`](Self::leave), [`set_last_will`](Self::set_last_will),
/// [`disconnect`](Self::disconnect). Input:
/// [`handle_timeout`](Self::handle_timeout) when
/// [`poll_timeout`](Self::poll_timeout) is reached. Outputs:
/// [`poll_event`](Self::poll_event) and `poll_timeout`. Getters:
/// [`is_online`](Self::is_online), [`members`](Self::members),
/// [`member_count`](Self::member_count), [`channel_count`](Self::channel_count),
/// [`channels`](Self::channels), [`connection_count`](Self::connection_count),
/// [`channels_of`](Self::channels_of), [`user_of`](Self::user_of),
/// [`pending_leave_count`](Self::pending_leave_count).
///
/// Call order: `connect` a connection once it is authenticated, then `join`
/// and `leave` channels and `set_last_will` as its client asks, and
/// `disconnect` exactly once when it ends. After every command or input,
/// drain `poll_event` until it returns `None`, then arm one timer at
/// `poll_timeout()` (`None`: nothing scheduled). Calling `handle_timeout`
/// early or twice does nothing, and a `now` earlier than one already seen is
/// treated as that one.
///
/// Every command that takes `now` first announces the leaves due at `now`,
/// exactly as `handle_timeout(now)` would: the outcome is a function of the
/// timeline, not of how promptly the driver's timer fired. So a user who
/// comes back after the grace is seen to leave and join again, even if the
/// timer had not fired yet, and a user who comes back within it is not.
///
/// A user counts as present in a channel while one of their live connections
/// has joined it, and also while their leave waits out the grace: it has not
/// been announced, so [`members`](Self::members) and every client still show
/// them. Unknown connections and channels are never an error: the command
/// returns `false` and changes nothing.
///
/// ```
/// use std::sync::Arc;
/// use std::time::{Duration, Instant};
/// use vigil_core::presence::{ConnId, Departure, Presence, PresenceConfig};
///
/// /// A tab reloads within the grace: nobody sees alice leave.
/// fn reload(t0: Instant) {
///     let mut presence = Presence::new(PresenceConfig::default());
///     presence.connect(t0, ConnId(1), Arc::from("alice"));
///     presence.join(t0, ConnId(1), Arc::from("lobby"), None);
///     assert!(presence.poll_event().is_some()); // alice joins lobby
///
///     presence.disconnect(t0, ConnId(1), Departure::Clean);
///     let t1 = t0 + Duration::from_secs(1);
///     presence.connect(t1, ConnId(2), Arc::from("alice"));
///     presence.join(t1, ConnId(2), Arc::from("lobby"), None);
///     presence.handle_timeout(t1 + Duration::from_secs(10));
///     assert_eq!(presence.poll_event(), None);
///     assert_eq!(presence.poll_timeout(), None);
/// }
/// ```
#[derive(Debug, Clone)]
pub struct Presence {
    config: PresenceConfig,
    /// The latest `now` seen; earlier values are clamped to it.
    clock: Option<Instant>,
    conns: HashMap<ConnId, Conn>,
    /// Only channels with at least one member (present or leaving).
    channels: BTreeMap<Arc<str>, Channel>,
    timers: LeaveTimers,
    events: VecDeque<Event>,
    /// The version of the latest diff of any channel.
    version: u64,
    /// Per-channel leave graces, if the caller has any.
    grace: Option<GracePolicy>,
}

/// The leave grace of each channel, as the caller decides it (e.g. from
/// the channel's name); `None` for a channel keeps the configured grace.
/// Asked when a member's last connection goes.
#[derive(Clone)]
pub struct GracePolicy(Arc<GraceOf>);

/// A channel's name to its grace, or `None` for the configured one.
type GraceOf = dyn Fn(&str) -> Option<Duration> + Send + Sync;

impl GracePolicy {
    /// A policy that asks `grace_of` for each channel's grace.
    pub fn new(grace_of: impl Fn(&str) -> Option<Duration> + Send + Sync + 'static) -> Self {
        Self(Arc::new(grace_of))
    }
}

impl std::fmt::Debug for GracePolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GracePolicy(..)")
    }
}

/// A live connection.
#[derive(Debug, Clone)]
struct Conn {
    user: Arc<str>,
    /// The channels this connection joined (shares the channel's `Arc`).
    channels: BTreeSet<Arc<str>>,
    will: Option<Arc<str>>,
}

#[derive(Debug, Clone)]
struct Channel {
    /// The version of this channel's latest diff.
    version: u64,
    /// Live connections in the channel (the sum of its `Joined` holds),
    /// kept so that counting them costs nothing.
    connections: usize,
    members: BTreeMap<Arc<str>, MemberState>,
}

#[derive(Debug, Clone)]
struct MemberState {
    meta: Option<Arc<str>>,
    hold: Hold,
}

/// What keeps a member present.
#[derive(Debug, Clone, Copy)]
enum Hold {
    /// This many live connections of the user joined the channel.
    Joined(NonZeroUsize),
    /// No live connection of the user is in the channel; the leave is
    /// announced at the key's deadline unless one joins first.
    Leaving(TimerKey),
}

/// Whether a member whose last connection goes waits out the grace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Release {
    /// The connection ended: maybe a reload, wait.
    Grace,
    /// The user asked to leave: announce it now.
    Now,
}

impl Presence {
    /// An empty table.
    #[must_use]
    pub fn new(config: PresenceConfig) -> Self {
        Self {
            config,
            clock: None,
            conns: HashMap::new(),
            channels: BTreeMap::new(),
            timers: LeaveTimers::default(),
            events: VecDeque::new(),
            version: 0,
            grace: None,
        }
    }

    /// Gives channels their own leave graces (the others keep the
    /// configured one). Leaves already waiting keep their deadlines.
    pub fn set_grace_policy(&mut self, policy: GracePolicy) {
        self.grace = Some(policy);
    }

    /// The settings the table was built with.
    #[must_use]
    pub const fn config(&self) -> &PresenceConfig {
        &self.config
    }

    // --- commands -----------------------------------------------------------

    /// Registers a live connection of `user`. It is in no channel yet.
    ///
    /// Returns `false`, and changes nothing, if `conn` is already live.
    pub fn connect(&mut self, now: Instant, conn: ConnId, user: Arc<str>) -> bool {
        self.settle(now);
        if self.conns.contains_key(&conn) {
            return false;
        }
        let conn_state = Conn {
            user,
            channels: BTreeSet::new(),
            will: None,
        };
        self.conns.insert(conn, conn_state);
        true
    }

    /// Puts `conn` in `channel` and sets its user's meta there to `meta`
    /// (`None` clears it): the latest join of any of the user's connections
    /// wins, and it stays when that connection leaves.
    ///
    /// Emits a diff with the user in `joins` if they were not present, or if
    /// their meta changed (joins are upserts); otherwise nothing. Joining
    /// while the user's leave is pending cancels it silently: no flicker.
    /// Joining a channel `conn` is already in only updates the meta.
    ///
    /// Returns `false`, and changes nothing, if `conn` is not live.
    pub fn join(
        &mut self,
        now: Instant,
        conn: ConnId,
        channel: Arc<str>,
        meta: Option<Arc<str>>,
    ) -> bool {
        self.settle(now);
        let Some(conn_state) = self.conns.get_mut(&conn) else {
            return false;
        };
        // Hold the table's `Arc` of the name, so each name is allocated once
        // however many connections join it.
        let (name, channel_state) = match self.channels.entry(channel) {
            Entry::Occupied(occupied) => (Arc::clone(occupied.key()), occupied.into_mut()),
            Entry::Vacant(vacant) => (
                Arc::clone(vacant.key()),
                vacant.insert(Channel {
                    version: 0,
                    connections: 0,
                    members: BTreeMap::new(),
                }),
            ),
        };
        let newly_joined = conn_state.channels.insert(Arc::clone(&name));
        if newly_joined {
            channel_state.connections += 1;
        }
        let user = match channel_state.members.entry(Arc::clone(&conn_state.user)) {
            Entry::Vacant(vacant) => {
                let user = Arc::clone(vacant.key());
                vacant.insert(MemberState {
                    meta: meta.clone(),
                    hold: Hold::Joined(NonZeroUsize::MIN),
                });
                user
            }
            Entry::Occupied(mut occupied) => {
                let member = occupied.get_mut();
                member.hold = match member.hold {
                    Hold::Joined(count) if newly_joined => Hold::Joined(count.saturating_add(1)),
                    joined @ Hold::Joined(_) => joined,
                    Hold::Leaving(key) => {
                        self.timers.cancel(key);
                        Hold::Joined(NonZeroUsize::MIN)
                    }
                };
                if member.meta == meta {
                    return true;
                }
                member.meta.clone_from(&meta);
                Arc::clone(occupied.key())
            }
        };
        let joins = vec![Member { user, meta }];
        push_diff(
            &mut self.version,
            &mut self.events,
            channel_state,
            name,
            joins,
            Vec::new(),
        );
        true
    }

    /// Takes `conn` out of `channel`. If it was its user's last connection
    /// there, the user leaves at once (no grace: the user asked) and a diff
    /// announces it.
    ///
    /// Returns `false`, and changes nothing, if `conn` is not live or not in
    /// `channel`.
    pub fn leave(&mut self, now: Instant, conn: ConnId, channel: &str) -> bool {
        let now = self.settle(now);
        let Some(conn_state) = self.conns.get_mut(&conn) else {
            return false;
        };
        let Some(channel) = conn_state.channels.take(channel) else {
            return false;
        };
        let user = Arc::clone(&conn_state.user);
        self.release(now, &channel, &user, Release::Now);
        true
    }

    /// Sets (or with `None` clears) the payload published as
    /// [`Event::LastWill`] if `conn` ends with [`Departure::Abnormal`].
    ///
    /// Returns `false`, and changes nothing, if `conn` is not live.
    pub fn set_last_will(&mut self, conn: ConnId, payload: Option<Arc<str>>) -> bool {
        let Some(conn_state) = self.conns.get_mut(&conn) else {
            return false;
        };
        conn_state.will = payload;
        true
    }

    /// The payload [`set_last_will`](Self::set_last_will) stored for
    /// `conn`, if any.
    #[must_use]
    pub fn last_will(&self, conn: ConnId) -> Option<&Arc<str>> {
        self.conns.get(&conn)?.will.as_ref()
    }

    /// Forgets `conn`. In every channel where it was its user's last
    /// connection, the user's leave is scheduled at `now + leave_grace` (or
    /// announced at once if the grace is zero). An abnormal departure
    /// publishes the connection's last will at once; a clean one discards it.
    ///
    /// Returns `false`, and changes nothing, if `conn` is not live.
    pub fn disconnect(&mut self, now: Instant, conn: ConnId, departure: Departure) -> bool {
        let now = self.settle(now);
        let Some(conn_state) = self.conns.remove(&conn) else {
            return false;
        };
        if departure == Departure::Abnormal
            && let Some(payload) = conn_state.will
        {
            self.events.push_back(Event::LastWill {
                conn,
                user: Arc::clone(&conn_state.user),
                payload,
            });
        }
        for channel in &conn_state.channels {
            self.release(now, channel, &conn_state.user, Release::Grace);
        }
        true
    }

    // --- timers and outputs -------------------------------------------------

    /// The earliest deadline of a pending leave; `None` when no leave is
    /// pending. Always later than every `now` the table has seen.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next_deadline()
    }

    /// Announces every leave due at `now`: one diff per channel, channels in
    /// name order. Early or repeated calls do nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.settle(now);
    }

    /// The next event, oldest first; `None` when all were drained.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    // --- internals ----------------------------------------------------------

    /// Clamps `now` to the latest instant seen and announces the leaves due
    /// by then, batched per channel.
    fn settle(&mut self, now: Instant) -> Instant {
        let now = match self.clock {
            Some(latest) if latest > now => latest,
            _ => now,
        };
        self.clock = Some(now);
        if self.timers.next_deadline().is_none_or(|due| due > now) {
            return now;
        }
        let mut due: BTreeMap<Arc<str>, Vec<Arc<str>>> = BTreeMap::new();
        while let Some(PendingLeave { channel, user }) = self.timers.pop_due(now) {
            if let Some(channel_state) = self.channels.get_mut(&channel) {
                let removed = channel_state.members.remove(&user);
                debug_assert!(
                    matches!(
                        removed,
                        Some(MemberState {
                            hold: Hold::Leaving(_),
                            ..
                        })
                    ),
                    "a scheduled leave belongs to a leaving member"
                );
            }
            due.entry(channel).or_default().push(user);
        }
        for (name, mut leaves) in due {
            leaves.sort_unstable();
            let Some(channel_state) = self.channels.get_mut(&name) else {
                debug_assert!(false, "a channel with a pending leave exists");
                continue;
            };
            push_diff(
                &mut self.version,
                &mut self.events,
                channel_state,
                Arc::clone(&name),
                Vec::new(),
                leaves,
            );
            if channel_state.members.is_empty() {
                self.channels.remove(&name);
            }
        }
        now
    }

    /// One connection of `user` no longer holds `channel`; if it was the
    /// last, the user leaves now or after the grace.
    fn release(&mut self, now: Instant, channel: &Arc<str>, user: &Arc<str>, release: Release) {
        let Some(channel_state) = self.channels.get_mut(channel) else {
            debug_assert!(false, "a joined connection's channel exists");
            return;
        };
        channel_state.connections = channel_state.connections.saturating_sub(1);
        let Some(member) = channel_state.members.get_mut(user) else {
            debug_assert!(false, "a joined connection's user is a member");
            return;
        };
        let Hold::Joined(count) = member.hold else {
            debug_assert!(false, "a member with a joined connection is not leaving");
            return;
        };
        if let Some(rest) = NonZeroUsize::new(count.get() - 1) {
            member.hold = Hold::Joined(rest);
            return;
        }
        let grace = self
            .grace
            .as_ref()
            .and_then(|policy| (policy.0)(channel))
            .unwrap_or_else(|| self.config.leave_grace());
        // Only an `Instant` near the end of its range overflows; leaving at
        // once then beats keeping a ghost online forever.
        let deadline = (release == Release::Grace && !grace.is_zero())
            .then(|| now.checked_add(grace))
            .flatten();
        if let Some(deadline) = deadline {
            let leave = PendingLeave {
                channel: Arc::clone(channel),
                user: Arc::clone(user),
            };
            member.hold = Hold::Leaving(self.timers.schedule(deadline, leave));
            return;
        }
        channel_state.members.remove(user);
        let leaves = vec![Arc::clone(user)];
        push_diff(
            &mut self.version,
            &mut self.events,
            channel_state,
            Arc::clone(channel),
            Vec::new(),
            leaves,
        );
        if channel_state.members.is_empty() {
            self.channels.remove(channel);
        }
    }
}

/// Queues a diff of `name` under the next version of the table.
fn push_diff(
    version: &mut u64,
    events: &mut VecDeque<Event>,
    channel_state: &mut Channel,
    name: Arc<str>,
    joins: Vec<Member>,
    leaves: Vec<Arc<str>>,
) {
    // 2^64 diffs never happen; saturating keeps this panic-free anyway.
    *version = version.saturating_add(1);
    channel_state.version = *version;
    events.push_back(Event::Diff {
        channel: name,
        version: *version,
        joins,
        leaves,
    });
}
