//! What the hub answers about who is where: a channel's members (whole,
//! in pages, or as counts), its stats, the totals for `/metrics`, and the
//! JSON each takes on the wire.

use super::counts::counts_json;
use super::{Hub, HubCounts, Refusal, State};
use crate::namespace::{ChannelOptions, PresenceMode};
use crate::protocol::{ErrorCode, PageRequest};
use serde_json::{Value, json};
use vigil_core::presence::Snapshot;

impl Hub {
    /// Channels with members, and members (users) over all channels.
    pub(crate) fn counts(&self) -> HubCounts {
        let state = self.state.lock();
        let members: usize = state
            .presence
            .channels()
            .map(|c| state.presence.member_count(c))
            .sum();
        let users: std::collections::HashSet<&str> =
            state.conns.values().map(|(_, user)| &**user).collect();
        let (_, history_messages, history_bytes) = state.histories.totals();
        HubCounts {
            channels: state.presence.channel_count() as u64,
            presence_members: members as u64,
            users: users.len() as u64,
            history_messages: history_messages as u64,
            history_bytes: history_bytes as u64,
        }
    }

    /// Who is in `channel`: its members, or its counts when its members
    /// see counts.
    pub(crate) fn presence(&self, channel: &str) -> Value {
        let state = self.state.lock();
        let counted = state.counted.contains(channel);
        presence_json(&state, channel, self.namespaces.options(channel), counted)
    }

    /// The options of `channel`'s namespace.
    pub(crate) fn channel_options(&self, channel: &str) -> &ChannelOptions {
        self.namespaces.options(channel)
    }

    /// One page of `channel`'s members, with the cursor of the next. A
    /// client may not page a `counts` channel (`operator`: the HTTP API
    /// may).
    pub(crate) fn presence_page(
        &self,
        channel: &str,
        page: &PageRequest,
        operator: bool,
    ) -> Result<Value, Refusal> {
        if !operator && self.namespaces.options(channel).presence == PresenceMode::Counts {
            return Err((
                ErrorCode::PresenceHidden,
                format!("{channel:?} shows counts only: ask presence_stats"),
            ));
        }
        let page =
            self.state
                .lock()
                .presence
                .members_page(channel, page.after.as_deref(), page.limit);
        let members: Vec<Value> = page.members.iter().map(member_json).collect();
        Ok(
            json!({"channel": channel, "version": page.version, "members": members,
                  "next": page.next.as_deref()}),
        )
    }

    /// How many users and connections are in `channel`.
    pub(crate) fn presence_stats(&self, channel: &str) -> Value {
        let stats = self.state.lock().presence.channel_stats(channel);
        json!({"channel": channel, "version": stats.version, "users": stats.users,
               "connections": stats.connections})
    }

    /// One page of `channel`'s kept messages (`history`), refused when it
    /// keeps none.
    pub(crate) fn history_page(
        &self,
        channel: &str,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Value, Refusal> {
        let mut state = self.state.lock();
        let limits = state.history_limits(&self.namespaces, channel);
        let channel: std::sync::Arc<str> = std::sync::Arc::from(channel);
        state
            .histories
            .page(super::now(), &channel, limits, after, limit)
            .ok_or_else(|| {
                (
                    ErrorCode::HistoryOff,
                    match state.cluster {
                        Some(_) => format!(
                            "{channel:?} keeps no history here: histories are not kept in a \
                             cluster yet"
                        ),
                        None => format!(
                            "{channel:?} keeps no history: its namespace has no history_size"
                        ),
                    },
                )
            })
    }
}

/// A member as clients see it: its user id and its metadata as JSON.
pub(super) fn member_json(member: &vigil_core::presence::Member) -> Value {
    json!({"user": &*member.user, "meta": parse_meta(member.meta.as_deref())})
}

fn parse_meta(meta: Option<&str>) -> Value {
    meta.and_then(|m| serde_json::from_str(m).ok())
        .unwrap_or(Value::Null)
}

/// `channel`'s presence as a join reply or `presence` answer shows it: its
/// counts when counted, else its members.
pub(super) fn presence_json(
    state: &State,
    channel: &str,
    options: &ChannelOptions,
    counted: bool,
) -> Value {
    if counted || options.presence == PresenceMode::Counts {
        let pages = options.presence == PresenceMode::Members;
        counts_json(channel, &state.presence.channel_stats(channel), pages)
    } else {
        snapshot_json(channel, &state.presence.members(channel))
    }
}

fn snapshot_json(channel: &str, snapshot: &Snapshot) -> Value {
    let members: Vec<Value> = snapshot.members.iter().map(member_json).collect();
    json!({"channel": channel, "version": snapshot.version, "members": members})
}
