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
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::Value;
use tokio::sync::mpsc;

pub(crate) use link::start;
pub(crate) use wire::Change;

/// Changes and messages the queue holds for Redis before it overflows.
const OUTBOUND_CAPACITY: usize = 65_536;

/// What the hub hands to Redis.
#[derive(Debug)]
pub(crate) enum Outgoing {
    /// A member of this node changed.
    Presence {
        channel: Arc<str>,
        user: Arc<str>,
        change: Change,
    },
    /// A channel message published here, for the other nodes' members.
    Message {
        channel: String,
        from: Option<String>,
        data: Value,
        will: bool,
    },
}

/// The hub's end of the queue to Redis. Sending never waits: when the queue
/// is full the change is dropped and the node rewrites its whole state once
/// the link catches up, so presence converges; a dropped channel message is
/// lost for the other nodes (and counted).
#[derive(Debug, Clone)]
pub(crate) struct Outbound {
    sender: mpsc::Sender<Outgoing>,
    status: Arc<Status>,
}

impl Outbound {
    pub(crate) fn send(&self, outgoing: Outgoing) {
        if self.sender.try_send(outgoing).is_err() {
            self.status.overflowed.store(true, Ordering::Release);
            self.status.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// How the node's link to Redis is doing, for `/readyz` and `/metrics`.
#[derive(Debug, Default)]
pub(crate) struct Status {
    up: AtomicBool,
    /// When the link went down (or the node started without it).
    down_since: Mutex<Option<Instant>>,
    /// Changes or messages dropped because the queue was full; the state
    /// is rewritten whole when `overflowed` is seen.
    overflowed: AtomicBool,
    dropped: AtomicU64,
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

    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
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

/// The queue: the hub's end and the link's.
pub(crate) fn outbound() -> (Outbound, mpsc::Receiver<Outgoing>, Arc<Status>) {
    let (sender, receiver) = mpsc::channel(OUTBOUND_CAPACITY);
    let status = Arc::new(Status::default());
    status.set_up(false);
    let outbound = Outbound {
        sender,
        status: Arc::clone(&status),
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
    fn a_full_queue_drops_and_asks_for_a_rewrite() {
        let (outbound, _receiver, status) = outbound();
        for _ in 0..OUTBOUND_CAPACITY + 3 {
            outbound.send(Outgoing::Message {
                channel: "c".into(),
                from: None,
                data: Value::Null,
                will: false,
            });
        }
        assert_eq!(status.dropped(), 3);
        assert!(status.overflowed.load(Ordering::Acquire));
        assert!(status.degraded_for().is_some(), "down until the link is up");
    }
}
