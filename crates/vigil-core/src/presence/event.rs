//! The values that cross the presence table's boundary: connection ids, how a
//! connection ended, members, snapshots and the events drained by the caller.

use std::sync::Arc;

/// The caller's id for one connection; unique among live connections.
///
/// The table never makes ids up: the caller picks them (a counter is fine) and
/// may reuse one after [`disconnect`](super::Presence::disconnect).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// How a connection ended; decides whether its last will is published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Departure {
    /// The peer or the server closed the connection on purpose (close
    /// handshake, logout, shutdown): the last will is discarded.
    Clean,
    /// The connection died: heartbeat timeout, reset, transport error. The
    /// last will, if any, is published at once as [`Event::LastWill`].
    Abnormal,
}

/// One user present in a channel.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Member {
    /// The user id given to [`connect`](super::Presence::connect).
    pub user: Arc<str>,
    /// What the latest [`join`](super::Presence::join) of any of the user's
    /// connections to the channel said about them (device, status, ...).
    pub meta: Option<Arc<str>>,
}

/// Everyone present in a channel, as of one version.
///
/// A client that fetched a snapshot applies only the [`Event::Diff`]s of the
/// channel whose version is greater than `version`, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// The version of the channel's latest diff. For a channel nobody is in,
    /// the latest version the table issued to any channel: every later diff
    /// of the channel is above it either way.
    pub version: u64,
    /// The members, sorted by user id, one entry per user.
    pub members: Vec<Member>,
}

/// What the presence table tells the caller; drained with
/// [`poll_event`](super::Presence::poll_event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Who appeared in and who left a channel.
    ///
    /// A join is an upsert: a user already present appears again in `joins`
    /// when their meta changed. A user is never in both lists, and a diff is
    /// never empty.
    Diff {
        /// The channel that changed.
        channel: Arc<str>,
        /// Greater than the version of every earlier diff of this channel and
        /// of every snapshot taken before this diff. Versions come from one
        /// counter shared by all channels, so they stay increasing when a
        /// channel empties and fills again, but are not contiguous.
        version: u64,
        /// Users who appeared, or whose meta changed; sorted by user id.
        joins: Vec<Member>,
        /// Users who left; sorted.
        leaves: Vec<Arc<str>>,
    },
    /// A connection carrying a last will ended abnormally: publish `payload`.
    ///
    /// Emitted when the connection ends, before any leave its end causes
    /// (those wait out the grace), and whether or not the user is still
    /// present through another connection.
    LastWill {
        /// The connection that died.
        conn: ConnId,
        /// Its user.
        user: Arc<str>,
        /// The will it registered with
        /// [`set_last_will`](super::Presence::set_last_will).
        payload: Arc<str>,
    },
}

/// Part of a channel's members, in user order, for a client that pages
/// through a channel too large to take whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// The channel's version when the page was read.
    pub version: u64,
    /// Up to the asked number of members, sorted by user id, all after the
    /// cursor.
    pub members: Vec<Member>,
    /// Where the next page starts (the last user of this one), or `None`
    /// when this page reached the end. Paging by user id is stable: a user
    /// present from the first page to the last is on exactly one page,
    /// whoever joins or leaves meanwhile.
    pub next: Option<Arc<str>>,
}

/// How many are in a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelStats {
    /// The channel's version.
    pub version: u64,
    /// Users present (one per user, however many tabs; a user inside its
    /// leave grace still counts).
    pub users: usize,
    /// Live connections in the channel.
    pub connections: usize,
}
