//! Channel histories on one node (issue #16): for a channel whose namespace
//! sets `history_size`, every message carries the channel's `offset` and
//! `epoch` and is kept (vigil-core's ring, bounded in count, bytes and
//! age), so that a client that dropped and joins again with `since` gets
//! exactly what it missed, in order, before anything newer: the join's
//! reply and then the missed messages go into its queue under the hub's
//! lock, where no newer message can come between. An epoch is drawn when a channel's history is created
//! (at its first message or read): after a restart, or once a forgotten
//! channel comes back, the old epoch no longer matches and the client is
//! told it cannot recover. In a cluster no history is kept yet: a join
//! with `since` is answered `recovered: false`.

use std::{
    collections::{HashMap, hash_map::RandomState},
    hash::BuildHasher,
    sync::Arc,
    time::{Duration, Instant},
};

use bytes::Bytes;
use serde_json::{Map, Value, json};
use vigil_core::history::{History, Impossible, Limits, Position, Recovery};

use super::{State, events::send_bytes_to_members};
use crate::{namespace::Namespaces, protocol::Since};

/// How often messages past their age are dropped from every history.
const SWEEP_EVERY: Duration = Duration::from_secs(1);
/// How long the history of a channel is kept once it holds no message and
/// nobody is in it (its epoch and offsets with it): as long as a leave
/// grace may be, so that a member coming back that missed nothing still
/// recovers.
const FORGET_AFTER: Duration = Duration::from_secs(3600);
/// The missed messages one recovery sends at most (a quarter of a
/// connection's default outbound queue, 4 MiB); past it the join answers
/// `recovered: false` (`too_many`) and the client reloads.
const MAX_RECOVERY_BYTES: usize = 1 << 20;
/// The messages one `history` page holds at most, in bytes.
const MAX_PAGE_BYTES: usize = 1 << 20;

/// Every channel's history on this node.
#[derive(Debug)]
pub(super) struct Histories {
    rings: HashMap<Arc<str>, Ring>,
    /// Where epochs come from: std's `RandomState` is keyed from the
    /// operating system's randomness once per process.
    random: RandomState,
    /// Histories created so far (each gets its own epoch).
    created: u64,
    sweep_at: Option<Instant>,
}

#[derive(Debug)]
struct Ring {
    history: History<Bytes>,
    /// The epoch as clients see it (hex).
    epoch: Arc<str>,
    /// The last time it was written to, or seen with members.
    last_used: Instant,
}

/// What a join learns of the channel's history: fields for its reply.
pub(super) type ResumeFields = Map<String, Value>;

impl Histories {
    pub(super) fn new() -> Self {
        Self {
            rings: HashMap::new(),
            random: RandomState::new(),
            created: 0,
            sweep_at: None,
        }
    }

    /// The channel's history, created (with a fresh epoch) if it has none.
    fn ring(&mut self, now: Instant, channel: &Arc<str>, limits: Limits) -> &mut Ring {
        if !self.rings.contains_key(channel) {
            self.created += 1;
            let epoch = self.random.hash_one(self.created);
            self.rings.insert(
                Arc::clone(channel),
                Ring {
                    history: History::new(epoch, limits),
                    epoch: Arc::from(format!("{epoch:016x}")),
                    last_used: now,
                },
            );
            self.sweep_at.get_or_insert(now + SWEEP_EVERY);
        }
        self.rings
            .get_mut(channel)
            .expect("inserted above when missing")
    }

    /// The text of `event` (a `message`) as members receive it: with the
    /// channel's offset and epoch, and kept, when `limits` says the
    /// channel keeps history.
    fn message(
        &mut self,
        now: Instant,
        channel: &Arc<str>,
        limits: Option<Limits>,
        mut event: Value,
    ) -> Bytes {
        let Some(limits) = limits else {
            return Bytes::from(event.to_string());
        };
        let ring = self.ring(now, channel, limits);
        event["offset"] = (ring.history.position().offset + 1).into();
        event["epoch"] = (&*ring.epoch).into();
        let text = Bytes::from(event.to_string());
        ring.history.append(now, text.clone(), text.len());
        ring.last_used = now;
        text
    }

    /// For a join of `channel`: the reply's `history` (the position after
    /// it) when the channel keeps history, and with `since`, whether it
    /// recovered (`recovered`, with `missed`; or why not, in `recovery`);
    /// the missed messages, oldest first.
    fn resume(
        &mut self,
        now: Instant,
        channel: &Arc<str>,
        limits: Option<Limits>,
        since: Option<&Since>,
        in_cluster: bool,
    ) -> (ResumeFields, Vec<Bytes>) {
        let mut fields = Map::new();
        let refuse = |fields: &mut ResumeFields, why: &str| {
            fields.insert("recovered".into(), false.into());
            fields.insert("recovery".into(), why.into());
        };
        let Some(limits) = limits else {
            if since.is_some() {
                refuse(&mut fields, "history_off");
            }
            return (fields, Vec::new());
        };
        if in_cluster {
            if since.is_some() {
                refuse(&mut fields, "cluster");
            }
            return (fields, Vec::new());
        }
        let ring = self.ring(now, channel, limits);
        let mut missed = Vec::new();
        if let Some(since) = since {
            match recover(ring, now, since, &mut missed) {
                Ok(()) => {
                    fields.insert("recovered".into(), true.into());
                    fields.insert("missed".into(), missed.len().into());
                }
                Err(why) => {
                    missed.clear();
                    refuse(&mut fields, why);
                }
            }
        }
        fields.insert("history".into(), position_json(ring));
        (fields, missed)
    }

    /// One page of a channel's kept messages (`history`), or `None` when it
    /// keeps none. A channel with no history yet answers an empty page; a
    /// page holds [`MAX_PAGE_BYTES`] at most (one message at least).
    pub(super) fn page(
        &mut self,
        now: Instant,
        channel: &Arc<str>,
        limits: Option<Limits>,
        after: Option<u64>,
        limit: usize,
    ) -> Option<Value> {
        limits?;
        let Some(ring) = self.rings.get_mut(channel) else {
            return Some(json!({"channel": &**channel, "epoch": null, "offset": 0,
                               "messages": [], "next": null}));
        };
        let position = position_json(ring);
        let (entries, more) = ring.history.page(now, after, limit);
        let mut bytes = 0;
        let mut cut = false;
        let mut last = None;
        let mut messages = Vec::new();
        for entry in entries {
            if !messages.is_empty() && bytes + entry.size > MAX_PAGE_BYTES {
                cut = true;
                break;
            }
            bytes += entry.size;
            last = Some(entry.offset);
            messages.push(serde_json::from_slice::<Value>(&entry.message).unwrap_or(Value::Null));
        }
        let next = if more || cut { last } else { None };
        Some(json!({"channel": &**channel, "epoch": position["epoch"],
                    "offset": position["offset"], "messages": messages, "next": next}))
    }

    /// When messages may next have to be dropped.
    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        self.sweep_at
    }

    /// Drops messages past their age; forgets the histories that held no
    /// message and had nobody in them (users in their leave grace count)
    /// for [`FORGET_AFTER`].
    pub(super) fn sweep(&mut self, now: Instant, has_members: impl Fn(&str) -> bool) {
        if self.sweep_at.is_none_or(|at| at > now) {
            return;
        }
        self.rings.retain(|channel, ring| {
            ring.history.expire(now);
            if has_members(channel) {
                ring.last_used = now;
            }
            !ring.history.is_empty() || now.saturating_duration_since(ring.last_used) < FORGET_AFTER
        });
        self.sweep_at = (!self.rings.is_empty()).then_some(now + SWEEP_EVERY);
    }

    /// Channels with a history, messages kept and their bytes, for
    /// `/metrics`.
    pub(super) fn totals(&self) -> (usize, usize, usize) {
        self.rings.values().fold(
            (self.rings.len(), 0, 0),
            |(channels, messages, bytes), ring| {
                (
                    channels,
                    messages + ring.history.len(),
                    bytes + ring.history.bytes(),
                )
            },
        )
    }
}

/// The messages after `since` in `ring`, into `missed`; or why they
/// cannot all be given (the server's `recovery` reasons).
fn recover(
    ring: &mut Ring,
    now: Instant,
    since: &Since,
    missed: &mut Vec<Bytes>,
) -> Result<(), &'static str> {
    // The epoch as the server wrote it, exactly.
    if since.epoch != *ring.epoch {
        return Err("epoch_changed");
    }
    let position = Position {
        offset: since.offset,
        epoch: ring.history.epoch(),
    };
    let entries = match ring.history.since(now, position) {
        Recovery::Complete(entries) => entries,
        Recovery::Impossible(Impossible::Ahead) => return Err("ahead"),
        Recovery::Impossible(_) => return Err("too_old"),
    };
    let mut bytes = 0;
    for entry in entries {
        bytes += entry.size;
        // More than one connection's queue should take at once: the client
        // reloads instead of being closed as a slow consumer.
        if bytes > MAX_RECOVERY_BYTES {
            return Err("too_many");
        }
        missed.push(entry.message.clone());
    }
    Ok(())
}

/// `{"offset", "epoch"}`: where a client that received everything is.
fn position_json(ring: &Ring) -> Value {
    json!({"offset": ring.history.position().offset, "epoch": &*ring.epoch})
}

impl State {
    /// Sends a channel message to every member (and, in a cluster, to the
    /// other nodes), with its offset when the channel keeps history;
    /// returns how many connections it went to.
    pub(super) fn deliver(
        &mut self,
        namespaces: &Namespaces,
        channel: &str,
        from: Option<&str>,
        data: &Value,
        will: bool,
    ) -> usize {
        let mut event = json!({"type": "message", "channel": channel, "from": from, "data": data});
        if will {
            event["will"] = true.into();
        }
        let limits = self.history_limits(namespaces, channel);
        let channel: Arc<str> = Arc::from(channel);
        let text = self
            .histories
            .message(super::now(), &channel, limits, event);
        self.share_message(&channel, from, data, will);
        send_bytes_to_members(self, &channel, text)
    }

    /// Joining `channel`: the reply's history fields, and the messages
    /// missed since `since`, oldest first (the caller queues them after
    /// the reply, under the hub's lock, so nothing newer comes between).
    /// The caller passes no `since` for a connection already in the
    /// channel (a join that changes its meta): it missed nothing.
    pub(super) fn resume(
        &mut self,
        namespaces: &Namespaces,
        channel: &Arc<str>,
        since: Option<&Since>,
    ) -> (ResumeFields, Vec<Bytes>) {
        let limits = namespaces.options(channel).history;
        let in_cluster = self.cluster.is_some();
        self.histories
            .resume(super::now(), channel, limits, since, in_cluster)
    }

    /// The channel's history limits, when this node keeps its history.
    pub(super) fn history_limits(&self, namespaces: &Namespaces, channel: &str) -> Option<Limits> {
        namespaces
            .options(channel)
            .history
            .filter(|_| self.cluster.is_none())
    }
}

#[cfg(test)]
mod tests;
