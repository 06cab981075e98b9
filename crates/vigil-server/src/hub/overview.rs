//! The hub's side of `GET /api/overview`: every channel with its members
//! and, for each member, the handles of its connections in that channel
//! (whose heartbeats `crate::overview` then asks their shards about).

use super::Hub;
use super::read::member_json;
use serde_json::Value;
use std::collections::HashMap;
use vigil_ws::Connection;

/// The most members the overview lists per channel: a channel of 19,000
/// shows its numbers and its first members, not all of them.
pub(crate) const MAX_MEMBERS_LISTED: usize = 100;

/// One channel as the overview shows it ([`Hub::channels_overview`]).
#[derive(Debug)]
pub(crate) struct ChannelView {
    pub(crate) channel: String,
    pub(crate) version: u64,
    /// Users present and live connections in the channel.
    pub(crate) users: usize,
    pub(crate) connections: usize,
    /// Whether its members see counts (then none is listed).
    pub(crate) counted: bool,
    /// Its first members (at most [`MAX_MEMBERS_LISTED`], none when
    /// counted), each as clients see it (`{"user", "meta"}`) with its
    /// connections in this channel.
    pub(crate) members: Vec<(Value, Vec<Connection>)>,
}

impl Hub {
    /// Every channel, by name: its numbers and its first members (user,
    /// meta as clients see it) with each one's connections in the channel,
    /// at most `max_connections` connection handles in all (later members
    /// get none). Linear in the channel's connections, whatever its size.
    pub(crate) fn channels_overview(&self, max_connections: usize) -> Vec<ChannelView> {
        let state = self.state.lock();
        let mut names: Vec<&str> = state.presence.channels().collect();
        names.sort_unstable();
        let mut budget = max_connections;
        names
            .into_iter()
            .map(|channel| {
                let stats = state.presence.channel_stats(channel);
                let counted = state.counted.contains(channel);
                let listed = if counted { 0 } else { MAX_MEMBERS_LISTED };
                let page = state.presence.members_page(channel, None, listed);
                // This node's connections in the channel, by user.
                let mut by_user: HashMap<&str, Vec<&Connection>> = HashMap::new();
                let listed_conns = state.members.get(channel).filter(|_| !counted);
                for (id, conn) in listed_conns.into_iter().flatten() {
                    if let Some((_, user)) = state.conns.get(id) {
                        by_user.entry(&**user).or_default().push(conn);
                    }
                }
                let members = page
                    .members
                    .iter()
                    .map(|member| {
                        let mine = by_user.get(&*member.user).into_iter().flatten();
                        let taken: Vec<Connection> =
                            mine.take(budget).map(|conn| (*conn).clone()).collect();
                        budget -= taken.len();
                        (member_json(member), taken)
                    })
                    .collect();
                ChannelView {
                    channel: channel.to_owned(),
                    version: stats.version,
                    users: stats.users,
                    connections: stats.connections,
                    counted,
                    members,
                }
            })
            .collect()
    }
}
