//! What the application sees of a connection: the [`Handler`] callbacks, the
//! [`Connection`] handle to send and close, and why a connection ended.

use crate::shard::{Command, ShardShared, SlotRef};
use bytes::Bytes;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use vigil_core::heartbeat::State;

/// A connection's id, unique within one server or connector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// A complete inbound message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A text message (valid UTF-8, checked).
    Text(Bytes),
    /// A binary message.
    Binary(Bytes),
}

/// Callbacks from the connection shards. They run on a shard thread between
/// socket events: keep them short and never block (hand work to a channel
/// or task). One handler serves every connection of a server.
pub trait Handler: Send + Sync + 'static {
    /// The connection is established; `conn` may be kept to send later.
    fn on_open(&self, conn: &Connection) {
        let _ = conn;
    }

    /// A complete message arrived.
    fn on_message(&self, conn: &Connection, message: Message);

    /// The peer missed a ping for half the timeout (`suspect = true`), or a
    /// suspect peer spoke again (`false`).
    fn on_liveness(&self, conn: &Connection, suspect: bool) {
        let _ = (conn, suspect);
    }

    /// The connection is over; its resources are already released.
    fn on_close(&self, conn: &Connection, reason: CloseReason);

    /// The upgrade answered with connection id `id` never became a
    /// connection (the client left before its socket was taken over, or
    /// the server was shutting down): no `on_open` or `on_close` follows,
    /// so whatever the application reserved for it can be released.
    fn on_upgrade_failed(&self, id: ConnId) {
        let _ = id;
    }
}

/// Why a connection ended. Every close carries one, for the application,
/// logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The peer started the close handshake with this code.
    PeerClosed {
        /// The peer's code, if its close frame carried one.
        code: Option<u16>,
    },
    /// The application closed the connection with this code.
    Closed {
        /// The code sent.
        code: u16,
    },
    /// Nothing arrived within `interval + timeout`.
    HeartbeatTimeout,
    /// Our close frame was not answered in time.
    CloseTimeout,
    /// A write made no progress within the write timeout.
    WriteTimeout,
    /// The peer did not read fast enough: its outbound queue filled up.
    SlowConsumer,
    /// The peer sent more pings than [`crate::PingLimit`] allows; it was
    /// closed with 1008 ("too many pings").
    PingFlood,
    /// The peer broke the WebSocket protocol.
    ProtocolError {
        /// 1002, 1007 or 1009, as sent in our close frame.
        code: u16,
        /// What the peer did wrong.
        reason: &'static str,
    },
    /// The server is shutting down.
    Shutdown,
    /// The transport ended or failed without a close handshake.
    TransportEnded,
}

impl CloseReason {
    /// A stable label for logs and metrics.
    pub fn label(self) -> &'static str {
        match self {
            Self::PeerClosed { .. } => "peer_closed",
            Self::Closed { .. } => "closed",
            Self::HeartbeatTimeout => "heartbeat_timeout",
            Self::CloseTimeout => "close_timeout",
            Self::WriteTimeout => "write_timeout",
            Self::SlowConsumer => "slow_consumer",
            Self::PingFlood => "ping_flood",
            Self::ProtocolError { .. } => "protocol_error",
            Self::Shutdown => "shutdown",
            Self::TransportEnded => "transport_ended",
        }
    }

    /// Whether the connection ended without a close handshake (a last will
    /// is published only for these).
    pub fn is_abnormal(self) -> bool {
        matches!(
            self,
            Self::HeartbeatTimeout | Self::CloseTimeout | Self::WriteTimeout | Self::TransportEnded
        )
    }
}

/// A snapshot of a connection's heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Liveness {
    /// Alive, suspect or closing.
    pub state: State,
    /// Smoothed round-trip time of our pings, once measured.
    pub srtt: Option<Duration>,
    /// Smallest round trip seen.
    pub min_rtt: Option<Duration>,
    /// When the last frame arrived.
    pub last_seen: Instant,
    /// Pings we sent.
    pub pings_sent: u64,
}

/// Why a message could not be queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The connection has ended.
    #[error("the connection is closed")]
    Closed,
    /// The shard's command queue is full: the whole shard is behind.
    #[error("the connection's shard is overloaded; try again later")]
    Overloaded,
}

/// A cloneable handle to one connection, usable from any thread. Sends are
/// queued to the connection's shard; the outbound queue is bounded per
/// connection and a peer that does not keep up is closed as a slow consumer.
#[derive(Clone)]
pub struct Connection {
    id: ConnId,
    slot: SlotRef,
    shard: Arc<ShardShared>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection").field("id", &self.id).finish()
    }
}

impl Connection {
    pub(crate) fn new(id: ConnId, slot: SlotRef, shard: Arc<ShardShared>) -> Self {
        Self { id, slot, shard }
    }

    /// This connection's id.
    pub fn id(&self) -> ConnId {
        self.id
    }

    /// Queues a text message. `text` must be valid UTF-8 (a `&str` or
    /// `String` converted into `Bytes` is).
    pub fn send_text(&self, text: impl Into<Bytes>) -> Result<(), SendError> {
        self.command(Command::Send {
            slot: self.slot,
            text: true,
            payload: text.into(),
        })
    }

    /// Queues a binary message.
    pub fn send_binary(&self, data: impl Into<Bytes>) -> Result<(), SendError> {
        self.command(Command::Send {
            slot: self.slot,
            text: false,
            payload: data.into(),
        })
    }

    /// Starts the close handshake with `code` (1000-4999, as RFC 6455
    /// allows; others are sent as 1000) and a reason of up to 123 bytes.
    pub fn close(&self, code: u16, reason: &str) -> Result<(), SendError> {
        self.command(Command::Close {
            slot: self.slot,
            code,
            reason: reason.into(),
        })
    }

    /// The connection's heartbeat as of now; `None` once it has ended.
    ///
    /// Cancel safety: dropping the future only drops the answer.
    pub async fn liveness(&self) -> Option<Liveness> {
        let (reply, answer) = oneshot::channel();
        self.command(Command::Liveness {
            slot: self.slot,
            reply,
        })
        .ok()?;
        answer.await.ok().flatten()
    }

    fn command(&self, command: Command) -> Result<(), SendError> {
        self.shard.push_command(command)
    }
}
