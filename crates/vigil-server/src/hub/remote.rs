//! Members of the other nodes of a cluster. Each `(node, channel, user)` is
//! a virtual connection in this node's presence table, so vigil-core does
//! the rest as for local ones: a user is one member however many nodes
//! they are connected to, a leave with grace (a connection that ended)
//! waits out this node's leave grace and is cancelled by a join from any
//! node, and every channel's versions stay monotonic here.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use vigil_core::presence::{ConnId, Departure, Presence};

use crate::cluster::Change;

/// Virtual connection ids have the top bit set; vigil-ws counts its own
/// from 1 and never gets there.
const VIRTUAL: u64 = 1 << 63;

/// `(node, channel, user)`: one virtual connection.
type Key = (Arc<str>, Arc<str>, Arc<str>);

#[derive(Debug, Default)]
pub(crate) struct RemoteMembers {
    conns: HashMap<Key, ConnId>,
    next: u64,
}

/// One member of a node: `(channel, user, meta)`.
pub(crate) type RemoteMember = (String, String, Option<String>);

impl RemoteMembers {
    /// Applies one change of `node`'s member `user` in `channel`.
    pub(crate) fn apply(
        &mut self,
        presence: &mut Presence,
        now: Instant,
        node: &str,
        channel: &str,
        user: &str,
        change: &Change,
    ) {
        let key: Key = (node.into(), channel.into(), user.into());
        match change {
            Change::Join { meta } => {
                let id = match self.conns.get(&key) {
                    Some(&id) => id,
                    None => {
                        self.next += 1;
                        let id = ConnId(VIRTUAL | self.next);
                        presence.connect(now, id, Arc::clone(&key.2));
                        self.conns.insert(key.clone(), id);
                        id
                    }
                };
                let meta = meta.as_deref().map(Arc::from);
                presence.join(now, id, key.1, meta);
            }
            Change::Leave { grace } => {
                let Some(id) = self.conns.remove(&key) else {
                    return;
                };
                if !grace {
                    presence.leave(now, id, channel);
                }
                presence.disconnect(now, id, Departure::Clean);
            }
        }
    }

    /// `node`'s members are now exactly `members` (it was loaded again):
    /// joins for the new ones and changed metas, leaves with grace for the
    /// ones no longer there.
    pub(crate) fn replace(
        &mut self,
        presence: &mut Presence,
        now: Instant,
        node: &str,
        members: &[RemoteMember],
    ) {
        let listed: std::collections::HashSet<(&str, &str)> = members
            .iter()
            .map(|(channel, user, _)| (channel.as_str(), user.as_str()))
            .collect();
        let gone: Vec<(Arc<str>, Arc<str>)> = self
            .conns
            .keys()
            .filter(|(owner, channel, user)| {
                &**owner == node && !listed.contains(&(&**channel, &**user))
            })
            .map(|(_, channel, user)| (Arc::clone(channel), Arc::clone(user)))
            .collect();
        for (channel, user) in gone {
            let leave = Change::Leave { grace: true };
            self.apply(presence, now, node, &channel, &user, &leave);
        }
        for (channel, user, meta) in members {
            let join = Change::Join { meta: meta.clone() };
            self.apply(presence, now, node, channel, user, &join);
        }
    }

    /// `node` is dead: every member it had leaves, with grace.
    pub(crate) fn drop_node(&mut self, presence: &mut Presence, now: Instant, node: &str) {
        self.replace(presence, now, node, &[]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use vigil_core::presence::{Event, PresenceConfig};

    fn table() -> Presence {
        Presence::new(
            PresenceConfig::builder()
                .leave_grace(Duration::from_secs(5))
                .build()
                .expect("valid"),
        )
    }

    /// The (joins, leaves) user names of every diff emitted so far.
    fn diffs(presence: &mut Presence) -> Vec<(Vec<String>, Vec<String>)> {
        let mut out = Vec::new();
        while let Some(event) = presence.poll_event() {
            if let Event::Diff { joins, leaves, .. } = event {
                out.push((
                    joins.iter().map(|m| m.user.to_string()).collect(),
                    leaves.iter().map(|u| u.to_string()).collect(),
                ));
            }
        }
        out
    }

    fn join() -> Change {
        Change::Join { meta: None }
    }

    #[test]
    fn a_user_on_two_nodes_is_one_member_until_both_are_gone() {
        let (mut presence, mut remote, t0) = (table(), RemoteMembers::default(), Instant::now());
        remote.apply(&mut presence, t0, "a", "lobby", "ann", &join());
        remote.apply(&mut presence, t0, "b", "lobby", "ann", &join());
        assert_eq!(diffs(&mut presence), [(vec!["ann".into()], vec![])]);
        let asked = Change::Leave { grace: false };
        remote.apply(&mut presence, t0, "a", "lobby", "ann", &asked);
        assert!(diffs(&mut presence).is_empty(), "still on b");
        remote.apply(&mut presence, t0, "b", "lobby", "ann", &asked);
        assert_eq!(diffs(&mut presence), [(vec![], vec!["ann".into()])]);
    }

    #[test]
    fn moving_to_another_node_within_the_grace_shows_no_leave() {
        let (mut presence, mut remote, t0) = (table(), RemoteMembers::default(), Instant::now());
        remote.apply(&mut presence, t0, "a", "lobby", "ann", &join());
        diffs(&mut presence);
        let ended = Change::Leave { grace: true };
        remote.apply(&mut presence, t0, "a", "lobby", "ann", &ended);
        let t1 = t0 + Duration::from_secs(2);
        remote.apply(&mut presence, t1, "b", "lobby", "ann", &join());
        presence.handle_timeout(t1 + Duration::from_secs(10));
        assert!(diffs(&mut presence).is_empty());
    }

    #[test]
    fn a_dead_node_s_members_leave_after_the_grace_and_a_reload_replaces() {
        let (mut presence, mut remote, t0) = (table(), RemoteMembers::default(), Instant::now());
        remote.apply(&mut presence, t0, "a", "lobby", "ann", &join());
        remote.apply(&mut presence, t0, "a", "lobby", "bob", &join());
        diffs(&mut presence);
        // Loaded again: bob is gone, cid is new, ann's meta changed.
        let members = [
            ("lobby".into(), "ann".into(), Some("1".into())),
            ("lobby".into(), "cid".into(), None),
        ];
        remote.replace(&mut presence, t0, "a", &members);
        let seen = diffs(&mut presence);
        assert!(seen.iter().any(|(joins, _)| joins.contains(&"cid".into())));
        assert!(seen.iter().any(|(joins, _)| joins.contains(&"ann".into())));
        presence.handle_timeout(t0 + Duration::from_secs(6));
        assert_eq!(diffs(&mut presence), [(vec![], vec!["bob".into()])]);
        remote.drop_node(&mut presence, t0 + Duration::from_secs(6), "a");
        assert!(diffs(&mut presence).is_empty(), "the grace first");
        presence.handle_timeout(t0 + Duration::from_secs(12));
        let left: Vec<String> = diffs(&mut presence)
            .into_iter()
            .flat_map(|(_, leaves)| leaves)
            .collect();
        assert_eq!(left.len(), 2);
        assert!(remote.conns.is_empty());
        assert_eq!(presence.connection_count(), 0);
    }
}
