//! The hub's side of `GET /api/overview`: every channel with its members
//! and, for each member, the handles of its connections in that channel
//! (whose heartbeats `crate::overview` then asks their shards about).

use super::Hub;
use super::read::member_json;
use serde_json::Value;
use vigil_ws::Connection;

/// One channel as the overview shows it ([`Hub::channels_overview`]).
#[derive(Debug)]
pub(crate) struct ChannelView {
    pub(crate) channel: String,
    pub(crate) version: u64,
    /// Each member as clients see it (`{"user", "meta"}`) and its
    /// connections in this channel.
    pub(crate) members: Vec<(Value, Vec<Connection>)>,
}

impl Hub {
    /// Every channel with its members (user, meta as clients see it) and
    /// each member's connections in that channel, channels by name, at most
    /// `max_connections` connection handles in all (later members get none).
    pub(crate) fn channels_overview(&self, max_connections: usize) -> Vec<ChannelView> {
        let state = self.state.lock();
        let mut names: Vec<&str> = state.presence.channels().collect();
        names.sort_unstable();
        let mut budget = max_connections;
        names
            .into_iter()
            .map(|channel| {
                let snapshot = state.presence.members(channel);
                let conns = state.members.get(channel);
                let members = snapshot
                    .members
                    .iter()
                    .map(|member| {
                        let mine = conns
                            .into_iter()
                            .flatten()
                            .filter(|(id, _)| {
                                state
                                    .conns
                                    .get(id)
                                    .is_some_and(|(_, user)| *user == member.user)
                            })
                            .map(|(_, conn)| conn.clone());
                        let taken: Vec<Connection> = mine.take(budget).collect();
                        budget -= taken.len();
                        (member_json(member), taken)
                    })
                    .collect();
                ChannelView {
                    channel: channel.to_owned(),
                    version: snapshot.version,
                    members,
                }
            })
            .collect()
    }
}
