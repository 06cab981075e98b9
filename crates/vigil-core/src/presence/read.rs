//! What the presence table answers: who is where (whole, in pages, or
//! counted), and its sizes. Reading never changes the table.

use super::{ChannelStats, ConnId, Hold, Member, Page, Presence, Snapshot};
use std::sync::Arc;

impl Presence {
    /// Whether `user` is present in `channel`, including while their leave is
    /// pending (not yet announced).
    #[must_use]
    pub fn is_online(&self, channel: &str, user: &str) -> bool {
        self.channels
            .get(channel)
            .is_some_and(|c| c.members.contains_key(user))
    }

    /// Everyone present in `channel`, sorted by user, with the version a
    /// client reconciles diffs against. Empty for an unknown channel.
    #[must_use]
    pub fn members(&self, channel: &str) -> Snapshot {
        let Some(channel_state) = self.channels.get(channel) else {
            return Snapshot {
                version: self.version,
                members: Vec::new(),
            };
        };
        let members = channel_state
            .members
            .iter()
            .map(|(user, member)| Member {
                user: Arc::clone(user),
                meta: member.meta.clone(),
            })
            .collect();
        Snapshot {
            version: channel_state.version,
            members,
        }
    }

    /// Up to `limit` members of `channel` whose user id sorts after
    /// `after` (from the first with `None`), with the cursor of the next
    /// page. See [`Page`].
    #[must_use]
    pub fn members_page(&self, channel: &str, after: Option<&str>, limit: usize) -> Page {
        let Some(channel_state) = self.channels.get(channel) else {
            return Page {
                version: self.version,
                members: Vec::new(),
                next: None,
            };
        };
        let range = match after {
            Some(after) => channel_state
                .members
                .range::<str, _>((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded)),
            None => channel_state.members.range::<str, _>(..),
        };
        let mut rest = range.peekable();
        let mut members = Vec::with_capacity(limit.min(channel_state.members.len()));
        while members.len() < limit {
            let Some((user, member)) = rest.next() else {
                break;
            };
            members.push(Member {
                user: Arc::clone(user),
                meta: member.meta.clone(),
            });
        }
        let next = match (rest.peek(), members.last()) {
            (Some(_), Some(last)) => Some(Arc::clone(&last.user)),
            _ => None,
        };
        Page {
            version: channel_state.version,
            members,
            next,
        }
    }

    /// Users and live connections in `channel` (zeros if unknown), in
    /// constant time (debug builds check the running count against the
    /// members).
    #[must_use]
    pub fn channel_stats(&self, channel: &str) -> ChannelStats {
        let Some(channel_state) = self.channels.get(channel) else {
            return ChannelStats {
                version: self.version,
                users: 0,
                connections: 0,
            };
        };
        debug_assert_eq!(
            channel_state.connections,
            channel_state
                .members
                .values()
                .map(|member| match member.hold {
                    Hold::Joined(count) => count.get(),
                    Hold::Leaving(_) => 0,
                })
                .sum::<usize>(),
            "the running count of connections",
        );
        ChannelStats {
            version: channel_state.version,
            users: channel_state.members.len(),
            connections: channel_state.connections,
        }
    }

    /// How many users are present in `channel` (0 if unknown).
    #[must_use]
    pub fn member_count(&self, channel: &str) -> usize {
        self.channels.get(channel).map_or(0, |c| c.members.len())
    }

    /// How many channels have at least one member.
    #[must_use]
    pub fn channel_count(&self) -> usize {
        self.channels.len()
    }

    /// The channels with at least one member, in name order.
    pub fn channels(&self) -> impl Iterator<Item = &str> {
        self.channels.keys().map(|name| &**name)
    }

    /// How many connections are live.
    #[must_use]
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// The channels `conn` joined, in name order; none if it is not live.
    pub fn channels_of(&self, conn: ConnId) -> impl Iterator<Item = &str> {
        self.conns
            .get(&conn)
            .into_iter()
            .flat_map(|c| c.channels.iter().map(|name| &**name))
    }

    /// The user `conn` was connected under; `None` if it is not live.
    #[must_use]
    pub fn user_of(&self, conn: ConnId) -> Option<&str> {
        self.conns.get(&conn).map(|c| &*c.user)
    }

    /// How many leaves wait out their grace.
    #[must_use]
    pub fn pending_leave_count(&self) -> usize {
        self.timers.len()
    }
}
