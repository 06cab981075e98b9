//! This node's own members, per channel and user, as the cluster sees
//! them: a user is a member here while one of their connections to this
//! node has joined the channel, with the meta of the latest join. Only
//! changes of that are announced to the other nodes, not every tab.

use std::collections::HashMap;
use std::sync::Arc;

use crate::cluster::Change;

/// One member of this node: `(channel, user, meta)`.
pub(crate) type LocalMember = (Arc<str>, Arc<str>, Option<Arc<str>>);

#[derive(Debug, Default)]
pub(crate) struct LocalMembers {
    members: HashMap<(Arc<str>, Arc<str>), Local>,
}

#[derive(Debug)]
struct Local {
    /// Connections of the user to this node in the channel.
    conns: u32,
    meta: Option<Arc<str>>,
}

impl LocalMembers {
    /// A connection of `user` joined `channel` with `meta`; `first` when it
    /// was not in the channel before (otherwise only its meta changed).
    /// Returns the change to announce: none when the user was already a
    /// member with this meta.
    pub(crate) fn joined(
        &mut self,
        channel: &Arc<str>,
        user: &Arc<str>,
        meta: Option<Arc<str>>,
        first: bool,
    ) -> Option<Change> {
        let key = (Arc::clone(channel), Arc::clone(user));
        match self.members.get_mut(&key) {
            Some(local) => {
                local.conns += u32::from(first);
                if local.meta == meta {
                    return None;
                }
                local.meta = meta.clone();
            }
            None => {
                let conns = 1;
                self.members.insert(
                    key,
                    Local {
                        conns,
                        meta: meta.clone(),
                    },
                );
            }
        }
        Some(Change::Join {
            meta: meta.map(|meta| meta.to_string()),
        })
    }

    /// A connection of `user` left `channel`: asked to (`grace: false`) or
    /// ended (`grace: true`). Returns the leave to announce when it was the
    /// user's last connection here in the channel.
    pub(crate) fn left(&mut self, channel: &str, user: &str, grace: bool) -> Option<Change> {
        let key = (Arc::from(channel), Arc::from(user));
        let local = self.members.get_mut(&key)?;
        local.conns = local.conns.saturating_sub(1);
        if local.conns > 0 {
            return None;
        }
        self.members.remove(&key);
        Some(Change::Leave { grace })
    }

    /// Every member: `(channel, user, meta)`.
    pub(crate) fn snapshot(&self) -> Vec<LocalMember> {
        self.members
            .iter()
            .map(|((channel, user), local)| {
                (Arc::clone(channel), Arc::clone(user), local.meta.clone())
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> (Arc<str>, Arc<str>) {
        (Arc::from("lobby"), Arc::from("ann"))
    }

    #[test]
    fn only_the_first_join_the_meta_changes_and_the_last_leave_are_announced() {
        let mut local = LocalMembers::default();
        let (lobby, ann) = names();
        let meta: Option<Arc<str>> = Some(Arc::from(r#"{"n":1}"#));
        assert_eq!(
            local.joined(&lobby, &ann, meta.clone(), true),
            Some(Change::Join {
                meta: Some(r#"{"n":1}"#.into())
            })
        );
        // A second tab with the same meta: nothing new for other nodes.
        assert_eq!(local.joined(&lobby, &ann, meta, true), None);
        // The second tab shown unstable: new meta.
        let unstable: Option<Arc<str>> = Some(Arc::from(r#"{"unstable":true}"#));
        assert!(local.joined(&lobby, &ann, unstable, false).is_some());
        assert_eq!(local.left("lobby", "ann", true), None, "one tab is left");
        assert_eq!(
            local.left("lobby", "ann", true),
            Some(Change::Leave { grace: true })
        );
        assert_eq!(local.left("lobby", "ann", true), None, "already gone");
        assert!(local.snapshot().is_empty());
    }

    #[test]
    fn the_snapshot_lists_each_member_once_with_its_latest_meta() {
        let mut local = LocalMembers::default();
        let (lobby, ann) = names();
        local.joined(&lobby, &ann, None, true);
        local.joined(&lobby, &ann, Some(Arc::from("1")), true);
        let snapshot = local.snapshot();
        assert_eq!(snapshot.len(), 1);
        assert_eq!(snapshot[0].2.as_deref(), Some("1"));
    }
}
