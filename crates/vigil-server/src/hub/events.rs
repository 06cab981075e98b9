//! What the hub does with the presence table's events and how it reaches
//! members: member diffs wait for their 25 ms window, counted channels'
//! changes for their 1 s one, last wills go out at once; and the one
//! fan-out of a text to every member of a channel.

use super::read::member_json;
use super::{DIFF_WINDOW, State, now};
use crate::namespace::Namespaces;
use bytes::Bytes;
use serde_json::Value;
use std::sync::Arc;
use vigil_core::presence::Event;

/// Takes every presence event: diffs wait in `pending` (the timer task
/// sends them when their window ends), last wills go out at once.
pub(super) fn drain(state: &mut State, namespaces: &Namespaces) {
    while let Some(event) = state.presence.poll_event() {
        match event {
            Event::Diff { channel, .. }
                if state.counted.is_counted(
                    &channel,
                    namespaces.options(&channel),
                    &state.presence,
                ) =>
            {
                if state.presence.member_count(&channel) == 0 {
                    // Empty: its next join decides its mode afresh.
                    state.counted.forget(&channel);
                } else {
                    state.count_changed(&channel);
                }
            }
            Event::Diff {
                channel,
                version,
                joins,
                leaves,
            } => {
                let joins = joins
                    .iter()
                    .map(|member| (Arc::clone(&member.user), member_json(member)));
                state
                    .pending
                    .merge(&channel, version, joins, leaves.iter().cloned());
                state.flush_at.get_or_insert_with(|| now() + DIFF_WINDOW);
            }
            Event::LastWill { user, payload, .. } => {
                let Ok(will) = serde_json::from_str::<Value>(&payload) else {
                    continue;
                };
                let Some(channel) = will["channel"].as_str() else {
                    continue;
                };
                state.deliver(namespaces, channel, Some(&user), &will["data"], true);
            }
        }
    }
}

/// Sends `text` to every connection that joined `channel`; returns how many.
pub(super) fn send_to_members(state: &State, channel: &str, text: &str) -> usize {
    send_bytes_to_members(state, channel, Bytes::copy_from_slice(text.as_bytes()))
}

/// [`send_to_members`] with the text already in one buffer, shared by every
/// member's queue.
pub(super) fn send_bytes_to_members(state: &State, channel: &str, text: Bytes) -> usize {
    let Some(members) = state.members.get(channel) else {
        return 0;
    };
    for member in members.values() {
        let _ = member.send_text(text.clone());
    }
    members.len()
}
