//! What nodes say to each other through Redis, and how a node's presence
//! is laid out there.
//!
//! Keys, under a prefix (`vigil`):
//! - `vigil:nodes`, a sorted set: every node by the Redis time (ms) of its
//!   last heartbeat.
//! - `vigil:node:<id>`, a hash: the node's own members, field
//!   `"<channel>\n<user>"` (channel names have no newline) to the member's
//!   meta as JSON text (`""`: none), field `#seq`, the sequence number of
//!   the last change written, and field `#run`, the `run_id` of the Redis
//!   process it was written to. It expires unless the node heartbeats.
//!   A hash from another Redis run (restored from a snapshot after a
//!   restart) is stale: its node rewrites it once it reconnects.
//! - `vigil:bus`, the pub/sub channel every node publishes its changes and
//!   channel messages to, as [`Envelope`] JSON.
//!
//! A node writes each change to its hash and publishes it in one MULTI, so
//! a reader that loads the hash knows which published changes it already
//! holds (`seq` at most the hash's `#seq`) and which it missed (a gap).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The field of a node's hash that holds its sequence number.
pub(crate) const SEQ_FIELD: &str = "#seq";
/// The field of a node's hash that holds the Redis `run_id` it was
/// written under.
pub(crate) const RUN_FIELD: &str = "#run";

/// Keys and channel names under one prefix.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    pub(crate) nodes: String,
    pub(crate) bus: String,
    prefix: String,
}

impl Keys {
    pub(crate) fn new(prefix: &str) -> Keys {
        Keys {
            nodes: format!("{prefix}:nodes"),
            bus: format!("{prefix}:bus"),
            prefix: prefix.to_owned(),
        }
    }

    /// The hash of node `id`'s members.
    pub(crate) fn node(&self, id: &str) -> String {
        format!("{}:node:{id}", self.prefix)
    }
}

/// One message on the bus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub(crate) enum Envelope {
    /// A member of the sender changed; `seq` is the sender's change count.
    Presence {
        node: String,
        seq: u64,
        channel: String,
        user: String,
        change: Change,
    },
    /// The sender rewrote its whole hash (after it lost Redis or fell
    /// behind): load it again.
    Reset { node: String, seq: u64 },
    /// A channel message published on the sender, for the members of every
    /// other node.
    Message {
        node: String,
        channel: String,
        from: Option<String>,
        data: Value,
        /// A last will, published because its connection ended abnormally.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        will: bool,
    },
}

impl Envelope {
    /// The node that sent it.
    pub(crate) fn node(&self) -> &str {
        match self {
            Envelope::Presence { node, .. }
            | Envelope::Reset { node, .. }
            | Envelope::Message { node, .. } => node,
        }
    }
}

/// What happened to a member of a node: a user's first connection there
/// joined the channel (or their meta changed), or their last one left.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "c", rename_all = "snake_case")]
pub(crate) enum Change {
    /// Joined, or new meta (JSON text).
    Join { meta: Option<String> },
    /// Left: asked to (`grace: false`, gone at once everywhere), or its
    /// connection ended (`grace: true`: every node waits out its leave
    /// grace, so a reload or a move to another node shows no leave).
    Leave { grace: bool },
}

/// The hash field of `user` in `channel`.
pub(crate) fn member_field(channel: &str, user: &str) -> String {
    format!("{channel}\n{user}")
}

/// `(channel, user)` of a hash field; `None` for `#seq` or a field this
/// program did not write.
pub(crate) fn parse_member_field(field: &str) -> Option<(&str, &str)> {
    let (channel, user) = field.split_once('\n')?;
    (!channel.is_empty() && crate::protocol::check_channel(channel).is_ok())
        .then_some((channel, user))
}

/// A member's meta as stored in the hash: JSON text, `""` for none.
pub(crate) fn meta_value(meta: Option<&str>) -> &str {
    meta.unwrap_or("")
}

/// The meta a hash value stands for.
pub(crate) fn parse_meta_value(value: &str) -> Option<String> {
    (!value.is_empty()).then(|| value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn envelopes_round_trip_through_json() {
        let envelopes = [
            Envelope::Presence {
                node: "a1".into(),
                seq: 7,
                channel: "room/1".into(),
                user: "ann\nwith newline".into(),
                change: Change::Join {
                    meta: Some(r#"{"name":"Ann"}"#.into()),
                },
            },
            Envelope::Presence {
                node: "a1".into(),
                seq: 8,
                channel: "room/1".into(),
                user: "ann".into(),
                change: Change::Leave { grace: true },
            },
            Envelope::Reset {
                node: "b2".into(),
                seq: 1,
            },
            Envelope::Message {
                node: "b2".into(),
                channel: "room/1".into(),
                from: None,
                data: json!({"x": [1, 2]}),
                will: true,
            },
        ];
        for envelope in envelopes {
            let text = serde_json::to_string(&envelope).expect("encodes");
            let back: Envelope = serde_json::from_str(&text).expect("decodes");
            assert_eq!(back, envelope, "{text}");
        }
    }

    #[test]
    fn unknown_or_broken_envelopes_are_errors() {
        for text in [
            r#"{"t":"gossip","node":"a"}"#,
            r#"{"t":"presence","node":"a","seq":1,"channel":"c","user":"u"}"#,
            "not json",
        ] {
            assert!(serde_json::from_str::<Envelope>(text).is_err(), "{text}");
        }
    }

    #[test]
    fn member_fields_split_at_the_first_newline_and_skip_the_sequence() {
        let field = member_field("room/1", "ann\nsmith");
        assert_eq!(parse_member_field(&field), Some(("room/1", "ann\nsmith")));
        assert_eq!(parse_member_field(SEQ_FIELD), None);
        assert_eq!(parse_member_field("bad channel!\nann"), None);
        assert_eq!(parse_meta_value(meta_value(None)), None);
        assert_eq!(
            parse_meta_value(meta_value(Some("{}"))),
            Some("{}".to_owned())
        );
    }
}
