//! Presence diffs waiting to go out, merged per channel. When many users
//! join or leave a channel at once (a server restart brings every client
//! back within a second), each member would otherwise receive one message
//! per change; merged, it receives one message per channel per flush,
//! carrying every change since the last one.
//!
//! A merged diff is the channel's state at its version: `joins` are the
//! users present then (with their metadata), `leaves` those absent then.
//! A client that applies every diff above its snapshot's version, in order,
//! ends up at the latest state, as with unmerged diffs; re-applying a join
//! it already has, or a leave of a user it never saw, changes nothing.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};

/// One channel's changes since the last flush.
#[derive(Debug, Default)]
struct ChannelDiff {
    version: u64,
    /// By user: `Some(member)` joined (or changed its metadata), `None` left.
    users: BTreeMap<Arc<str>, Option<Value>>,
}

/// Every channel's changes since the last flush.
#[derive(Debug, Default)]
pub(crate) struct PendingDiffs {
    channels: BTreeMap<Arc<str>, ChannelDiff>,
}

impl PendingDiffs {
    /// Folds one diff of `channel` in: the latest word on each user wins.
    pub(crate) fn merge(
        &mut self,
        channel: &Arc<str>,
        version: u64,
        joins: impl IntoIterator<Item = (Arc<str>, Value)>,
        leaves: impl IntoIterator<Item = Arc<str>>,
    ) {
        let diff = self.channels.entry(Arc::clone(channel)).or_default();
        diff.version = diff.version.max(version);
        for user in leaves {
            diff.users.insert(user, None);
        }
        for (user, member) in joins {
            diff.users.insert(user, Some(member));
        }
    }

    /// The `presence` event of every channel with changes, emptying the
    /// queue.
    pub(crate) fn take(&mut self) -> Vec<(Arc<str>, String)> {
        std::mem::take(&mut self.channels)
            .into_iter()
            .map(|(channel, diff)| {
                let mut joins = Vec::new();
                let mut leaves = Vec::new();
                for (user, member) in diff.users {
                    match member {
                        Some(member) => joins.push(member),
                        None => leaves.push(user),
                    }
                }
                let leaves: Vec<&str> = leaves.iter().map(|user| &**user).collect();
                let text = json!({"type": "presence", "channel": &*channel,
                                  "version": diff.version, "joins": joins, "leaves": leaves})
                .to_string();
                (channel, text)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str) -> Arc<str> {
        Arc::from(name)
    }

    fn member(name: &str, meta: Value) -> (Arc<str>, Value) {
        (user(name), json!({"user": name, "meta": meta}))
    }

    #[test]
    fn the_latest_word_on_each_user_wins_and_the_version_is_the_highest() {
        let room: Arc<str> = Arc::from("room");
        let mut pending = PendingDiffs::default();
        pending.merge(&room, 3, [member("ann", json!(1))], []);
        pending.merge(&room, 4, [member("bob", Value::Null)], []);
        pending.merge(&room, 5, [], [user("ann")]); // ann left again
        pending.merge(&room, 6, [member("bob", json!({"away": true}))], []);
        pending.merge(&room, 7, [], [user("cid")]);
        let sent = pending.take();
        assert!(pending.take().is_empty(), "taking empties the queue");
        assert_eq!(sent.len(), 1);
        let event: Value = serde_json::from_str(&sent[0].1).expect("JSON");
        assert_eq!(
            event,
            json!({"type": "presence", "channel": "room", "version": 7,
                   "joins": [{"user": "bob", "meta": {"away": true}}],
                   "leaves": ["ann", "cid"]})
        );
    }

    #[test]
    fn each_channel_gets_its_own_event() {
        let (a, b): (Arc<str>, Arc<str>) = (Arc::from("a"), Arc::from("b"));
        let mut pending = PendingDiffs::default();
        pending.merge(&a, 1, [member("ann", Value::Null)], []);
        pending.merge(&b, 1, [member("ann", Value::Null)], []);
        let channels: Vec<Arc<str>> = pending.take().into_iter().map(|(c, _)| c).collect();
        assert_eq!(channels, [a, b]);
        assert!(pending.take().is_empty());
    }
}
