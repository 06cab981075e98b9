//! Channels whose members see counts, not lists: those of a `counts`
//! namespace, and `members` channels that grew past their namespace's
//! `presence_cap` (they stay counted until they are empty, so a channel
//! hovering at its cap does not flap between the two). Their members get
//! one `presence_count` event per second at most, whatever the churn: O(1)
//! bytes per member per window, and a fan-out a core keeps up with for
//! tens of thousands of members (a 25 ms window meant 760,000 messages a
//! second for 19,000 members, and starved the handshakes).

use crate::namespace::{ChannelOptions, PresenceMode};
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use vigil_core::presence::{ChannelStats, Presence};

/// One counted channel.
#[derive(Debug)]
struct CountedChannel {
    /// The version, users and connections last sent to its members.
    last_sent: Option<(u64, usize, usize)>,
    /// Whether its list may still be read in pages (a capped `members`
    /// channel).
    pages: bool,
}

/// The counted channels and their pending `presence_count` events.
#[derive(Debug, Default)]
pub(crate) struct Counted {
    /// Counted channels.
    channels: HashMap<Arc<str>, CountedChannel>,
    /// Counted channels that changed since the last flush.
    changed: BTreeSet<Arc<str>>,
}

impl Counted {
    /// Whether `channel`'s members see counts, deciding it now if the
    /// channel just became counted (its namespace says so, or it grew past
    /// its cap: then its members are told at the next flush).
    pub(crate) fn is_counted(
        &mut self,
        channel: &Arc<str>,
        options: &ChannelOptions,
        presence: &Presence,
    ) -> bool {
        if self.channels.contains_key(channel) {
            return true;
        }
        let over_cap = options
            .presence_cap
            .is_some_and(|cap| presence.member_count(channel) > cap);
        if options.presence == PresenceMode::Counts || over_cap {
            let pages = options.presence == PresenceMode::Members;
            let counted = CountedChannel {
                last_sent: None,
                pages,
            };
            self.channels.insert(Arc::clone(channel), counted);
            if over_cap {
                self.changed.insert(Arc::clone(channel));
            }
            return true;
        }
        false
    }

    /// Whether `channel` is counted now (no decision taken).
    pub(crate) fn contains(&self, channel: &str) -> bool {
        self.channels.contains_key(channel)
    }

    /// `channel` emptied: it is counted no more (its next join decides).
    pub(crate) fn forget(&mut self, channel: &str) {
        self.channels.remove(channel);
        self.changed.remove(channel);
    }

    /// A change of a counted channel's members: its count goes out at the
    /// next flush.
    pub(crate) fn changed(&mut self, channel: &Arc<str>) {
        self.changed.insert(Arc::clone(channel));
    }

    /// The `presence_count` event of every changed channel whose version
    /// or numbers differ from the last sent (replies in between may have
    /// shown others); a channel that emptied stops being counted.
    pub(crate) fn take(&mut self, presence: &Presence) -> Vec<(Arc<str>, String)> {
        let mut events = Vec::new();
        for channel in std::mem::take(&mut self.changed) {
            let stats = presence.channel_stats(&channel);
            let counts = (stats.version, stats.users, stats.connections);
            let Some(counted) = self.channels.get_mut(&channel) else {
                continue;
            };
            if counted.last_sent != Some(counts) {
                counted.last_sent = Some(counts);
                events.push((
                    Arc::clone(&channel),
                    count_event(&channel, &stats, counted.pages),
                ));
            }
            if stats.users == 0 {
                self.channels.remove(&channel);
            }
        }
        events
    }
}

/// A counted channel as a join reply or `presence` answer shows it.
/// `pages`: whether its list may still be read in pages.
pub(crate) fn counts_json(channel: &str, stats: &ChannelStats, pages: bool) -> Value {
    json!({"channel": channel, "version": stats.version, "mode": "counts",
           "users": stats.users, "connections": stats.connections, "pages": pages})
}

fn count_event(channel: &str, stats: &ChannelStats, pages: bool) -> String {
    json!({"type": "presence_count", "channel": channel, "version": stats.version,
           "users": stats.users, "connections": stats.connections, "pages": pages})
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_core::presence::{ConnId, PresenceConfig};

    fn capped(cap: usize) -> ChannelOptions {
        ChannelOptions {
            presence: PresenceMode::Members,
            presence_cap: Some(cap),
            client_publish: true,
            max_members: None,
            max_meta_bytes: 2048,
            leave_grace: None,
            history: None,
        }
    }

    #[test]
    fn a_channel_past_its_cap_is_counted_until_it_empties_and_repeats_no_count() {
        let at = std::time::Instant::now();
        let room: Arc<str> = Arc::from("room");
        let mut presence = Presence::new(PresenceConfig::default());
        let mut counted = Counted::default();
        for (n, user) in ["ann", "bob", "cat"].into_iter().enumerate() {
            let id = ConnId(n as u64);
            presence.connect(at, id, Arc::from(user));
            presence.join(at, id, Arc::clone(&room), None);
            let past_cap = n == 2;
            assert_eq!(
                counted.is_counted(&room, &capped(2), &presence),
                past_cap,
                "{user}"
            );
        }
        let sent = counted.take(&presence);
        assert_eq!(sent.len(), 1, "the switch is announced");
        let event: Value = serde_json::from_str(&sent[0].1).expect("JSON");
        assert_eq!(event["users"], 3);
        assert_eq!(event["pages"], true);
        // A change that leaves the numbers as they were says nothing.
        counted.changed(&room);
        assert!(counted.take(&presence).is_empty());
        // Back under the cap it stays counted (no flapping) ...
        assert!(presence.leave(at, ConnId(2), "room"));
        assert!(counted.is_counted(&room, &capped(2), &presence));
        // ... until it is empty.
        for id in 0..2 {
            assert!(presence.leave(at, ConnId(id), "room"));
        }
        counted.changed(&room);
        let last = counted.take(&presence);
        assert!(last[0].1.contains(r#""users":0"#), "{last:?}");
        assert!(!counted.contains("room"));
    }
}
