//! Several `vigil` processes acting as one service, on Redis (`--cluster
//! redis://...`): every node shares its members and channel messages with
//! the others, and shows every node's members as its own clients' presence.
//!
//! The parts: the hub records what changes among this node's own members
//! and hands it to an [`Outbound`] queue (bounded: a slow or absent Redis
//! costs memory up to a limit, then a full rewrite once it is back); the
//! [`link`] task writes the changes to Redis and publishes them, reads the
//! other nodes' from the bus and applies them to the hub, heartbeats this
//! node and buries dead ones; [`wire`] is what goes over Redis. A node's
//! identity is random per process, so a restarted node starts clean and
//! its previous incarnation's members leave when it is found dead.
//!
//! Without Redis the node keeps serving its own connections and presence
//! ([`Status`] says degraded), and reconciles when Redis is back: it
//! rewrites its own members and loads every other node's again.

mod link;
mod wire;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::Value;
use tokio::sync::mpsc;

pub(crate) use link::start;
pub(crate) use wire::Change;

/// Changes and messages the queue holds for Redis before it overflows.
const OUTBOUND_CAPACITY: usize = 65_536;
/// Bytes of channel messages the queue may hold (a message may be up to
/// `max_message_bytes`, so the count alone bounds nothing).
const MESSAGE_BYTES_BUDGET: usize = 64 << 20;

/// What the hub hands to Redis.
#[derive(Debug)]
pub(crate) enum Outgoing {
    /// A member of this node changed.
    Presence {
        channel: Arc<str>,
        user: Arc<str>,
        change: Change,
    },
    /// A channel message published here, for the other nodes' members:
    /// its bus envelope, encoded.
    Message { envelope: String },
}

/// The hub's end of the queue to Redis. Sending never waits. When the queue
/// is full a member change is dropped and the node rewrites its whole state
/// once the link catches up, so presence converges; a channel message that
/// does not fit (in count or in [`MESSAGE_BYTES_BUDGET`]) is lost for the
/// other nodes, and counted.
#[derive(Debug, Clone)]
pub(crate) struct Outbound {
    sender: mpsc::Sender<Outgoing>,
    status: Arc<Status>,
    node: Arc<str>,
}

impl Outbound {
    /// A change of one of this node's members.
    pub(crate) fn member(&self, channel: &Arc<str>, user: &Arc<str>, change: Change) {
        let outgoing = Outgoing::Presence {
            channel: Arc::clone(channel),
            user: Arc::clone(user),
            change,
        };
        if self.sender.try_send(outgoing).is_err() {
            self.status.overflowed.store(true, Ordering::Release);
            self.status.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A channel message published on this node, for the others' members.
    pub(crate) fn message(&self, channel: &str, from: Option<&str>, data: &Value, will: bool) {
        let envelope = wire::Envelope::Message {
            node: self.node.to_string(),
            channel: channel.to_owned(),
            from: from.map(str::to_owned),
            data: data.clone(),
            will,
        };
        let Ok(envelope) = serde_json::to_string(&envelope) else {
            return;
        };
        let size = envelope.len();
        let queued = self.status.message_bytes.fetch_add(size, Ordering::AcqRel);
        let fits = queued + size <= MESSAGE_BYTES_BUDGET;
        if !fits
            || self
                .sender
                .try_send(Outgoing::Message { envelope })
                .is_err()
        {
            self.status.message_bytes.fetch_sub(size, Ordering::AcqRel);
            self.status.messages_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// How the node's link to Redis is doing, for `/readyz` and `/metrics`.
#[derive(Debug, Default)]
pub(crate) struct Status {
    up: AtomicBool,
    /// When the link went down (or the node started without it).
    down_since: Mutex<Option<Instant>>,
    /// Member changes dropped because the queue was full; the state is
    /// rewritten whole when `overflowed` is seen.
    overflowed: AtomicBool,
    dropped: AtomicU64,
    /// Channel messages dropped (queue full or over its byte budget), and
    /// the bytes of those queued.
    messages_dropped: AtomicU64,
    message_bytes: AtomicUsize,
    pub(crate) published: AtomicU64,
    pub(crate) received: AtomicU64,
    /// Other nodes loaded whole (at start, after a gap or their reset).
    pub(crate) loads: AtomicU64,
    /// Other nodes currently alive.
    pub(crate) nodes: AtomicU64,
}

impl Status {
    /// `None` while Redis is reachable; otherwise for how long it was not.
    pub(crate) fn degraded_for(&self) -> Option<Duration> {
        if self.up.load(Ordering::Acquire) {
            return None;
        }
        Some(
            self.down_since
                .lock()
                .map_or(Duration::ZERO, |at| at.elapsed()),
        )
    }

    pub(crate) fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    /// Member changes and channel messages dropped.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed) + self.messages_dropped.load(Ordering::Relaxed)
    }

    /// A queued message of `size` bytes left the queue.
    fn message_sent(&self, size: usize) {
        self.message_bytes.fetch_sub(size, Ordering::AcqRel);
    }

    fn set_up(&self, up: bool) {
        let was = self.up.swap(up, Ordering::AcqRel);
        let mut since = self.down_since.lock();
        if up {
            *since = None;
        } else if was || since.is_none() {
            *since = Some(Instant::now());
        }
    }
}

/// The queue of node `node`: the hub's end and the link's.
pub(crate) fn outbound(node: &str) -> (Outbound, mpsc::Receiver<Outgoing>, Arc<Status>) {
    let (sender, receiver) = mpsc::channel(OUTBOUND_CAPACITY);
    let status = Arc::new(Status::default());
    status.set_up(false);
    let outbound = Outbound {
        sender,
        status: Arc::clone(&status),
        node: Arc::from(node),
    };
    (outbound, receiver, status)
}

/// A random node id, 16 hex digits: new for every process, so a restarted
/// node never takes over its previous incarnation's state.
pub(crate) fn node_id() -> std::io::Result<String> {
    let mut bytes = [0u8; 8];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut bytes)?;
    Ok(bytes.iter().map(|byte| format!("{byte:02x}")).collect())
}

/// Checks a `--cluster` URL: `Err` says what is wrong with it.
pub(crate) fn check_url(url: &str) -> Result<(), String> {
    if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
        return Err("the scheme must be redis or rediss".to_owned());
    }
    redis::Client::open(url)
        .map(drop)
        .map_err(|error| error.to_string())
}

/// The URL without its password, for logs and errors.
pub(crate) fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***@{host}")
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_and_passwords_never_shown() {
        assert!(check_url("redis://127.0.0.1:6379/0").is_ok());
        assert!(check_url("http://127.0.0.1:6379").is_err());
        assert!(check_url("127.0.0.1:6379").is_err());
        assert_eq!(
            redacted("redis://app:s3cret@db:6379/0"),
            "redis://app:***@db:6379/0"
        );
        assert_eq!(redacted("redis://db:6379"), "redis://db:6379");
    }

    #[test]
    fn a_full_queue_drops_changes_and_asks_for_a_rewrite() {
        let (outbound, _receiver, status) = outbound("n1");
        let (channel, user): (Arc<str>, Arc<str>) = (Arc::from("c"), Arc::from("u"));
        for _ in 0..OUTBOUND_CAPACITY + 3 {
            outbound.member(&channel, &user, Change::Leave { grace: true });
        }
        assert_eq!(status.dropped(), 3);
        assert!(status.overflowed.load(Ordering::Acquire));
        assert!(status.degraded_for().is_some(), "down until the link is up");
    }

    #[test]
    fn messages_are_bounded_in_bytes_and_never_force_a_rewrite() {
        let (outbound, mut receiver, status) = outbound("n1");
        let big = Value::String("x".repeat(1 << 20));
        for _ in 0..70 {
            outbound.message("c", None, &big, false);
        }
        // 64 MiB hold 63 messages of just over 1 MiB.
        assert_eq!(status.messages_dropped.load(Ordering::Relaxed), 7);
        assert!(!status.overflowed.load(Ordering::Acquire));
        let Ok(Outgoing::Message { envelope }) = receiver.try_recv() else {
            panic!("a queued message");
        };
        let before = status.message_bytes.load(Ordering::Acquire);
        status.message_sent(envelope.len());
        assert_eq!(
            status.message_bytes.load(Ordering::Acquire),
            before - envelope.len()
        );
    }
}
