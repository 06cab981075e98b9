//! The vocabulary of the heartbeat machine: frames it is told about, actions
//! it asks for, the states it can be in and why a connection ended.

/// A complete inbound WebSocket frame, as far as liveness is concerned.
///
/// Hand a frame to the machine only once it is complete: a peer that trickles
/// bytes without ever finishing a frame must not look alive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A text, binary or continuation frame.
    Data,
    /// A ping from the peer. The machine answers with [`Action::SendPong`];
    /// the caller keeps the latest ping's payload to echo it.
    Ping,
    /// A pong from the peer with its payload (an 8-byte id when it answers
    /// one of our pings).
    Pong(&'a [u8]),
    /// A close frame from the peer, with its status code if it carried one.
    Close(Option<u16>),
}

/// A side effect the machine asks the caller to perform, drained with
/// [`Heartbeat::poll_action`](super::Heartbeat::poll_action).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Send a ping whose payload is `ping_payload(id)` (8 bytes, big-endian).
    SendPing {
        /// The ping's id; its pong must echo it.
        id: u64,
    },
    /// Send a pong echoing the payload of the most recent ping handed to
    /// the machine. Pings that arrive before it is drained are coalesced
    /// into this one pong (RFC 6455 section 5.5.3).
    SendPong,
    /// Send a close frame; `None` means a close frame without a status code.
    SendClose {
        /// The status code to send.
        code: Option<u16>,
    },
    /// The peer has missed a ping for half the timeout: show it as unstable.
    Suspect,
    /// A suspect peer was heard from again.
    Recovered,
    /// The connection is over: drop the transport. Always the last action.
    Finished(EndReason),
}

/// Where a connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// The peer was heard from recently, or an outstanding ping is young.
    Alive,
    /// A ping has gone unanswered for half the timeout.
    Suspect,
    /// A close handshake is under way.
    Closing,
    /// The connection is over.
    Dead(EndReason),
}

/// Why a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EndReason {
    /// Nothing arrived within `interval + timeout` of the last frame.
    HeartbeatTimeout,
    /// Our close frame was not answered within the close timeout.
    CloseTimeout,
    /// The peer started the close handshake (we answered it).
    ClosedByPeer {
        /// The peer's status code, if its close frame carried one.
        code: Option<u16>,
    },
    /// We started the close handshake and it completed (or the peer then
    /// dropped the transport, which is what we asked for).
    ClosedLocally {
        /// The status code we sent.
        code: u16,
    },
    /// The transport failed or reached end of stream without a close frame.
    TransportEnded,
}

impl EndReason {
    /// Whether the connection ended without a close handshake: the peer
    /// vanished, went silent or the transport broke. A last will is
    /// published only for these.
    pub fn is_abnormal(self) -> bool {
        matches!(
            self,
            Self::HeartbeatTimeout | Self::CloseTimeout | Self::TransportEnded
        )
    }
}

/// The 8-byte payload of the ping with this id.
pub fn ping_payload(id: u64) -> [u8; 8] {
    id.to_be_bytes()
}

/// Whether `code` may appear in a close frame on the wire (RFC 6455 section
/// 7.4): 1000-1003, 1007-1014 and the 3000-4999 registered and private
/// ranges. 1004-1006 and 1015 are reserved and must never be sent.
pub fn is_valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}
