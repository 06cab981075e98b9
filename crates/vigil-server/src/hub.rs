//! The hub: which connection joined which channel, presence per channel per
//! user (vigil-core's table, with its leave grace and last wills), and the
//! fan-out of presence diffs and channel messages to members.
//!
//! Presence is announced per user: several tabs of one user are one member,
//! and a reload within the grace announces nothing. Diffs are merged per
//! channel for [`DIFF_WINDOW`] before they go out ([`diffs`]), so a crowd
//! joining at once costs each member a few messages, not one per joiner.

mod counts;
mod diffs;
mod events;
mod history;
mod local;
mod overview;
mod read;
mod remote;

use crate::cluster::{Change, Outbound};
use crate::namespace::Namespaces;
use crate::protocol::{ErrorCode, Since};
use counts::Counted;
use diffs::PendingDiffs;
use events::{drain, send_to_members};
use history::Histories;
use local::{LocalMember, LocalMembers};
use parking_lot::Mutex;
use read::presence_json;
pub(crate) use remote::RemoteMember;
use remote::RemoteMembers;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use vigil_core::presence::{ConnId, Departure, GracePolicy, Presence, PresenceConfig};
use vigil_ws::Connection;

/// How long a presence change may wait to be merged with the next ones.
const DIFF_WINDOW: Duration = Duration::from_millis(25);

/// How long a counted channel's changes are merged: its count goes to
/// every member (tens of thousands) at most once a second, which a core
/// sends with room to spare, while "1,234 watching" stays current.
const COUNT_WINDOW: Duration = Duration::from_secs(1);

/// The shared state of one server process.
pub(crate) struct Hub {
    state: Mutex<State>,
    /// Wakes the timer task when a leave was scheduled or a diff is waiting.
    timers: Notify,
    max_channels: usize,
    namespaces: Arc<Namespaces>,
}

struct State {
    presence: Presence,
    /// Live connections: their handle and user.
    conns: HashMap<u64, (Connection, Arc<str>)>,
    /// The metadata each connection joined each channel with, to restore
    /// after it was shown as unstable.
    metas: HashMap<(u64, Arc<str>), Option<Value>>,
    /// Members of each channel, by connection, to fan out to.
    members: HashMap<Arc<str>, BTreeMap<u64, Connection>>,
    /// Presence diffs not yet sent, and when they must go.
    pending: PendingDiffs,
    /// Channels whose members see counts instead of lists.
    counted: Counted,
    flush_at: Option<Instant>,
    /// When the counted channels' changes go out.
    count_flush_at: Option<Instant>,
    /// The deadline the timer task sleeps toward (`None`: until woken).
    timer_armed: Option<Instant>,
    /// In a cluster: this node's own members as the other nodes see them,
    /// the other nodes' members, and the queue of changes to Redis.
    local: LocalMembers,
    remote: RemoteMembers,
    cluster: Option<Outbound>,
    /// Channels' kept messages, for recovery.
    histories: Histories,
}

/// How much the hub holds, for `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HubCounts {
    /// Channels with at least one member.
    pub(crate) channels: u64,
    /// Members summed over channels (a user in two channels counts twice).
    pub(crate) presence_members: u64,
    /// Distinct users with at least one open connection.
    pub(crate) users: u64,
    /// Messages kept for recovery, and their bytes.
    pub(crate) history_messages: u64,
    pub(crate) history_bytes: u64,
}

/// A request refused by the hub.
pub(crate) type Refusal = (ErrorCode, String);

/// Fields of a reply the hub fills in.
pub(crate) type ReplyFields = serde_json::Map<String, Value>;

fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

impl Hub {
    /// `cluster`: the queue to the other nodes, when this node is one of a
    /// cluster.
    pub(crate) fn new(
        presence: PresenceConfig,
        max_channels: usize,
        namespaces: Arc<Namespaces>,
        cluster: Option<Outbound>,
    ) -> Self {
        let mut presence = Presence::new(presence);
        let of_namespace = Arc::clone(&namespaces);
        presence.set_grace_policy(GracePolicy::new(move |channel| {
            of_namespace.options(channel).leave_grace
        }));
        Self {
            state: Mutex::new(State {
                presence,
                conns: HashMap::new(),
                metas: HashMap::new(),
                members: HashMap::new(),
                pending: PendingDiffs::default(),
                histories: Histories::new(),
                counted: Counted::default(),
                flush_at: None,
                count_flush_at: None,
                timer_armed: None,
                local: LocalMembers::default(),
                remote: RemoteMembers::default(),
                cluster,
            }),
            timers: Notify::new(),
            max_channels,
            namespaces,
        }
    }

    /// A connection of `user` is open.
    pub(crate) fn open(&self, conn: &Connection, user: Arc<str>) {
        let mut state = self.state.lock();
        state
            .presence
            .connect(now(), ConnId(conn.id().0), Arc::clone(&user));
        state.conns.insert(conn.id().0, (conn.clone(), user));
    }

    /// Joins `channel` and queues the reply, made by `reply` from its
    /// fields (`presence`, and the history's: see [`history`]), then with
    /// `since` what the connection missed, before anything newer.
    pub(crate) fn join(
        &self,
        conn: &Connection,
        channel: &str,
        meta: Option<&Value>,
        since: Option<&Since>,
        reply: impl FnOnce(ReplyFields) -> String,
    ) -> Result<(), Refusal> {
        let mut state = self.state.lock();
        let id = ConnId(conn.id().0);
        let joined = state.presence.channels_of(id).count();
        let already = state.presence.channels_of(id).any(|c| c == channel);
        if !already && joined >= self.max_channels {
            return Err((
                ErrorCode::TooManyChannels,
                format!(
                    "a connection may join at most {} channels",
                    self.max_channels
                ),
            ));
        }
        let options = self.namespaces.options(channel);
        if let Some(max) = options.max_members {
            let present = state
                .conns
                .get(&id.0)
                .is_some_and(|(_, user)| state.presence.is_online(channel, user));
            if !present && state.presence.member_count(channel) >= max {
                return Err((
                    ErrorCode::ChannelFull,
                    format!("{channel:?} is full: {max} users at most"),
                ));
            }
        }
        let channel: Arc<str> = Arc::from(channel);
        state
            .metas
            .insert((id.0, Arc::clone(&channel)), meta.cloned());
        let meta: Option<Arc<str>> = meta.map(|m| Arc::from(m.to_string()));
        state
            .presence
            .join(now(), id, Arc::clone(&channel), meta.clone());
        if let Some(user) = state.conns.get(&id.0).map(|(_, user)| Arc::clone(user)) {
            let change = state.local.joined(&channel, &user, meta, !already);
            state.announce(&channel, &user, change);
        }
        state
            .members
            .entry(Arc::clone(&channel))
            .or_default()
            .insert(id.0, conn.clone());
        let counted = {
            let State {
                counted, presence, ..
            } = &mut *state;
            counted.is_counted(&channel, options, presence)
        };
        state.count_changed(&channel);
        // A connection already in the channel (a join that changes its
        // meta) missed nothing: its `since` is not replayed.
        let since = since.filter(|_| !already);
        let (mut fields, missed) = state.resume(&self.namespaces, &channel, since);
        // (Also arms the timer for a history just created.)
        self.changed(&mut state);
        fields.insert(
            "presence".into(),
            presence_json(&state, &channel, options, counted),
        );
        let _ = conn.send_text(reply(fields));
        for text in missed {
            let _ = conn.send_text(text);
        }
        Ok(())
    }

    pub(crate) fn leave(&self, conn: &Connection, channel: &str) -> Result<(), Refusal> {
        let mut state = self.state.lock();
        let id = ConnId(conn.id().0);
        if !state.presence.leave(now(), id, channel) {
            return Err((ErrorCode::NotJoined, format!("not a member of {channel:?}")));
        }
        remove_member(&mut state, channel, id.0);
        let name: Arc<str> = Arc::from(channel);
        state.count_changed(&name);
        state.metas.remove(&(id.0, Arc::clone(&name)));
        let will_here = state.presence.last_will(id).is_some_and(|payload| {
            serde_json::from_str::<Value>(payload)
                .is_ok_and(|will| will["channel"].as_str() == Some(channel))
        });
        if will_here {
            state.presence.set_last_will(id, None);
        }
        if let Some(user) = state.conns.get(&id.0).map(|(_, user)| Arc::clone(user)) {
            let change = state.local.left(channel, &user, false);
            state.announce(&name, &user, change);
        }
        self.changed(&mut state);
        Ok(())
    }

    /// The connection's heartbeat turned suspect (or recovered): its user
    /// is shown with `"unstable": true` in the metadata of every channel it
    /// joined, until it recovers.
    pub(crate) fn set_unstable(&self, conn: &Connection, unstable: bool) {
        let mut state = self.state.lock();
        let id = ConnId(conn.id().0);
        let channels: Vec<Arc<str>> = state.presence.channels_of(id).map(Arc::from).collect();
        for channel in channels {
            let base = state
                .metas
                .get(&(id.0, Arc::clone(&channel)))
                .cloned()
                .flatten();
            let meta = match (base, unstable) {
                (Some(Value::Object(mut fields)), true) => {
                    fields.insert("unstable".into(), true.into());
                    Some(Value::Object(fields))
                }
                (None, true) => Some(json!({"unstable": true})),
                (base, _) => base,
            };
            let meta: Option<Arc<str>> = meta.map(|m| Arc::from(m.to_string()));
            state
                .presence
                .join(now(), id, Arc::clone(&channel), meta.clone());
            if let Some(user) = state.conns.get(&id.0).map(|(_, user)| Arc::clone(user)) {
                let change = state.local.joined(&channel, &user, meta, false);
                state.announce(&channel, &user, change);
            }
        }
        self.changed(&mut state);
    }

    /// Sends `data` from this connection to every member of `channel`.
    pub(crate) fn publish(
        &self,
        conn: &Connection,
        channel: &str,
        data: &Value,
    ) -> Result<usize, Refusal> {
        if !self.namespaces.options(channel).client_publish {
            return Err((
                ErrorCode::PublishForbidden,
                format!(
                    "clients may not publish to {channel:?}: its namespace says client_publish = \
                     false (the HTTP API may)"
                ),
            ));
        }
        let mut state = self.state.lock();
        let joined = state
            .members
            .get(channel)
            .is_some_and(|m| m.contains_key(&conn.id().0));
        if !joined {
            return Err((
                ErrorCode::NotJoined,
                format!("join {channel:?} before publishing to it"),
            ));
        }
        let from = state
            .conns
            .get(&conn.id().0)
            .map(|(_, user)| Arc::clone(user));
        let delivered = state.deliver(&self.namespaces, channel, from.as_deref(), data, false);
        // A history may have been created: its sweep needs the timer.
        self.changed(&mut state);
        Ok(delivered)
    }

    /// Sends `data` to every member of `channel` from the server itself (the
    /// HTTP API); returns how many connections it went to.
    pub(crate) fn publish_as_server(&self, channel: &str, data: &Value) -> usize {
        let mut state = self.state.lock();
        let delivered = state.deliver(&self.namespaces, channel, None, data, false);
        self.changed(&mut state);
        delivered
    }

    /// The channels connection `conn` has joined.
    pub(crate) fn channels_of(&self, conn: &Connection) -> Vec<String> {
        let state = self.state.lock();
        state
            .presence
            .channels_of(ConnId(conn.id().0))
            .map(str::to_owned)
            .collect()
    }

    /// The handle of open connection `id`.
    pub(crate) fn connection(&self, id: u64) -> Option<Connection> {
        self.state
            .lock()
            .conns
            .get(&id)
            .map(|(conn, _)| conn.clone())
    }

    /// The open connections of `user` and the channels they joined.
    pub(crate) fn user(&self, user: &str) -> (Vec<Connection>, Vec<String>) {
        let state = self.state.lock();
        let mut channels = std::collections::BTreeSet::new();
        let mut conns = Vec::new();
        for (id, (conn, owner)) in &state.conns {
            if &**owner == user {
                conns.push(conn.clone());
                channels.extend(state.presence.channels_of(ConnId(*id)).map(str::to_owned));
            }
        }
        (conns, channels.into_iter().collect())
    }

    /// Every open connection (for the shutdown drain).
    pub(crate) fn connections(&self) -> Vec<Connection> {
        self.state
            .lock()
            .conns
            .values()
            .map(|(conn, _)| conn.clone())
            .collect()
    }

    /// Stores (or, with `null`, clears) the connection's last will, for a
    /// channel it has joined: a will speaks to the members of a channel
    /// its author is in, and is dropped when its author leaves it.
    pub(crate) fn set_will(
        &self,
        conn: &Connection,
        channel: &str,
        data: &Value,
    ) -> Result<(), Refusal> {
        if !data.is_null() && !self.namespaces.options(channel).client_publish {
            return Err((
                ErrorCode::PublishForbidden,
                format!(
                    "a last will publishes, and clients may not publish to {channel:?} \
                     (client_publish = false)"
                ),
            ));
        }
        let mut state = self.state.lock();
        let id = ConnId(conn.id().0);
        if !data.is_null() && !state.presence.channels_of(id).any(|c| c == channel) {
            return Err((
                ErrorCode::NotJoined,
                format!("a last will goes to a channel you joined; join {channel:?} first"),
            ));
        }
        let will = (!data.is_null())
            .then(|| Arc::from(json!({"channel": channel, "data": data}).to_string()));
        state.presence.set_last_will(id, will);
        Ok(())
    }

    /// The connection ended; `abnormal` publishes its last will.
    pub(crate) fn close(&self, conn: &Connection, abnormal: bool) {
        let mut state = self.state.lock();
        let id = conn.id().0;
        let departure = if abnormal {
            Departure::Abnormal
        } else {
            Departure::Clean
        };
        let channels: Vec<Arc<str>> = state
            .presence
            .channels_of(ConnId(id))
            .map(Arc::from)
            .collect();
        let user = state.conns.get(&id).map(|(_, user)| Arc::clone(user));
        for channel in channels {
            remove_member(&mut state, &channel, id);
            if let Some(user) = &user {
                let change = state.local.left(&channel, user, true);
                state.announce(&channel, user, change);
            }
            state.count_changed(&channel);
            state.metas.remove(&(id, channel));
        }
        state.presence.disconnect(now(), ConnId(id), departure);
        state.conns.remove(&id);
        self.changed(&mut state);
    }

    /// This node's own members `(channel, user, meta)`, for a rewrite of its
    /// state in the cluster; `discard` runs under the same lock (the link
    /// empties its queue there: the members already reflect what it held).
    pub(crate) fn local_members(&self, discard: impl FnOnce()) -> Vec<LocalMember> {
        let state = self.state.lock();
        discard();
        state.local.snapshot()
    }

    /// A member of another node changed.
    pub(crate) fn apply_remote(&self, node: &str, channel: &str, user: &str, change: &Change) {
        self.change_remote(|remote, presence, now| {
            remote.apply(presence, now, node, channel, user, change);
        });
    }

    /// Another node's members are exactly `members` (loaded whole).
    pub(crate) fn replace_node(&self, node: &str, members: &[RemoteMember]) {
        self.change_remote(|remote, presence, now| remote.replace(presence, now, node, members));
    }

    /// Another node is dead: its members leave (after the grace).
    pub(crate) fn drop_node(&self, node: &str) {
        self.change_remote(|remote, presence, now| remote.drop_node(presence, now, node));
    }

    /// Runs `change` on the other nodes' members and the presence table.
    fn change_remote(&self, change: impl FnOnce(&mut RemoteMembers, &mut Presence, Instant)) {
        let mut state = self.state.lock();
        let State {
            presence, remote, ..
        } = &mut *state;
        change(remote, presence, now());
        self.changed(&mut state);
    }

    /// A channel message published on another node, for this node's members.
    pub(crate) fn deliver_remote(
        &self,
        channel: &str,
        from: Option<&str>,
        data: &Value,
        will: bool,
    ) {
        let mut event = json!({"type": "message", "channel": channel, "from": from, "data": data});
        if will {
            event["will"] = true.into();
        }
        send_to_members(&self.state.lock(), channel, &event.to_string());
    }

    /// Collects the presence events of a change; wakes the timer task when
    /// something is now due before the deadline it sleeps toward (a leave
    /// grace started, or a diff waits to be sent).
    fn changed(&self, state: &mut State) {
        drain(state, &self.namespaces);
        let due = next_deadline(state);
        if due.is_some_and(|at| state.timer_armed.is_none_or(|armed| at < armed)) {
            state.timer_armed = due;
            self.timers.notify_one();
        }
    }

    /// Drives the presence leave-grace timers and sends merged diffs when
    /// their window ends; runs until the runtime ends.
    pub(crate) async fn run_timers(self: Arc<Self>) {
        loop {
            let notified = self.timers.notified();
            let deadline = {
                let mut state = self.state.lock();
                state.timer_armed = next_deadline(&state);
                state.timer_armed
            };
            match deadline {
                Some(at) => {
                    let _ = tokio::time::timeout_at(at.into(), notified).await;
                }
                None => notified.await,
            }
            let mut state = self.state.lock();
            let now = now();
            state.presence.handle_timeout(now);
            let State {
                histories,
                presence,
                ..
            } = &mut *state;
            // Users in their leave grace count as members.
            histories.sweep(now, |channel| presence.member_count(channel) > 0);
            drain(&mut state, &self.namespaces);
            if state.flush_at.is_some_and(|at| at <= now) {
                state.flush_at = None;
                for (channel, text) in state.pending.take() {
                    send_to_members(&state, &channel, &text);
                }
            }
            if state.count_flush_at.is_some_and(|at| at <= now) {
                state.count_flush_at = None;
                let State {
                    counted, presence, ..
                } = &mut *state;
                for (channel, text) in counted.take(presence) {
                    send_to_members(&state, &channel, &text);
                }
            }
        }
    }
}

impl State {
    /// A connection came to or left a counted channel: its numbers go out
    /// at the next flush (a second tab changes `connections` without a
    /// presence diff).
    pub(super) fn count_changed(&mut self, channel: &Arc<str>) {
        if self.counted.contains(channel) {
            self.counted.changed(channel);
            self.count_flush_at
                .get_or_insert_with(|| now() + COUNT_WINDOW);
        }
    }

    /// Hands a change of this node's members to the cluster, if any.
    fn announce(&self, channel: &Arc<str>, user: &Arc<str>, change: Option<Change>) {
        if let (Some(cluster), Some(change)) = (&self.cluster, change) {
            cluster.member(channel, user, change);
        }
    }

    /// Hands a channel message published here to the cluster, if any.
    fn share_message(&self, channel: &str, from: Option<&str>, data: &Value, will: bool) {
        if let Some(cluster) = &self.cluster {
            cluster.message(channel, from, data, will);
        }
    }
}

/// The earliest of the next leave-grace deadline and the merge windows'
/// ends.
fn next_deadline(state: &State) -> Option<Instant> {
    [
        state.presence.poll_timeout(),
        state.flush_at,
        state.count_flush_at,
        state.histories.poll_timeout(),
    ]
    .into_iter()
    .flatten()
    .min()
}

fn remove_member(state: &mut State, channel: &str, id: u64) {
    if let Some(members) = state.members.get_mut(channel) {
        members.remove(&id);
        if members.is_empty() {
            state.members.remove(channel);
        }
    }
}
