//! One server-side TLS session on rustls's unbuffered API: the caller owns
//! every buffer, so a session keeps only its keys and handshake state
//! between reads (no 4 KiB receive buffer for the life of the connection,
//! which rustls's buffered `ServerConnection` keeps). The same session
//! serves the handshake and the HTTP request (in [`TlsStream`]) and, once
//! upgraded, the WebSocket inside a shard, with the shard's shared buffers.
//!
//! [`TlsStream`]: super::TlsStream

use rustls::server::{ServerConnectionData, UnbufferedServerConnection};
use rustls::unbuffered::{
    ConnectionState, EncodeError, EncryptError, InsufficientSizeError, WriteTraffic,
};
use std::io;

/// The most plaintext put into one record (TLS's own maximum): a write
/// larger than this is cut, so what waits for a full socket stays bounded.
pub(crate) const MAX_RECORD_PLAINTEXT: usize = 16 << 10;

/// Room enough for one record's header, type byte and tag, and padding
/// (rustls adds none): what a record adds to its plaintext.
const RECORD_OVERHEAD: usize = 64;

/// The most one encrypted record takes.
pub(crate) const MAX_RECORD_BYTES: usize = MAX_RECORD_PLAINTEXT + RECORD_OVERHEAD;

/// First guess at a handshake message's size (rustls says if it needs
/// more).
const HANDSHAKE_ROOM: usize = 1024;

/// What one pass over received records found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Received {
    /// Bytes at the front of the input that were used up; the rest is the
    /// start of a record still arriving, to present again with more.
    pub(crate) consumed: usize,
    /// The peer sent its `close_notify`: no more data will come.
    pub(crate) peer_closed: bool,
}

/// A TLS session (server side).
pub(crate) struct TlsSession {
    connection: UnbufferedServerConnection,
}

impl std::fmt::Debug for TlsSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSession")
            .field("handshaking", &self.connection.is_handshaking())
            .finish_non_exhaustive()
    }
}

impl TlsSession {
    pub(crate) fn new(config: std::sync::Arc<rustls::ServerConfig>) -> io::Result<Self> {
        let connection = UnbufferedServerConnection::new(config).map_err(invalid)?;
        Ok(Self { connection })
    }

    pub(crate) fn is_handshaking(&self) -> bool {
        self.connection.is_handshaking()
    }

    /// The protocol ALPN settled on, if any.
    pub(crate) fn alpn_protocol(&self) -> Option<&[u8]> {
        self.connection.alpn_protocol()
    }

    /// Processes the records in `incoming`: decrypted application data goes
    /// to `plaintext`, anything TLS itself must send (handshake messages,
    /// a key update) is appended to `outgoing`, to be written in order
    /// before any later record. A broken or hostile record is an
    /// `InvalidData` error, after which the session is unusable.
    pub(crate) fn receive(
        &mut self,
        incoming: &mut [u8],
        outgoing: &mut Vec<u8>,
        plaintext: &mut dyn FnMut(&[u8]),
    ) -> io::Result<Received> {
        let mut received = Received::default();
        loop {
            let mut records_discard = 0;
            let status = self
                .connection
                .process_tls_records(&mut incoming[received.consumed..]);
            let discard = status.discard;
            let more = match status.state.map_err(invalid)? {
                ConnectionState::ReadTraffic(mut traffic) => {
                    while let Some(record) = traffic.next_record() {
                        let record = record.map_err(invalid)?;
                        plaintext(record.payload);
                        records_discard += record.discard;
                    }
                    true
                }
                ConnectionState::EncodeTlsData(mut encode) => {
                    encode_into(outgoing, HANDSHAKE_ROOM, |out| {
                        encode.encode(out).map_err(EncodeFailure::from)
                    })?;
                    true
                }
                // `outgoing` keeps the bytes until the caller writes them,
                // before anything encrypted later.
                ConnectionState::TransmitTlsData(transmit) => {
                    transmit.done();
                    true
                }
                ConnectionState::PeerClosed => {
                    received.peer_closed = true;
                    true
                }
                ConnectionState::Closed => {
                    received.peer_closed = true;
                    false
                }
                // Everything readable was read: the rest (if any) is a
                // record still arriving.
                ConnectionState::WriteTraffic(_) | ConnectionState::BlockedHandshake => false,
                // Early data is never enabled; anything else is new to us.
                _ => return Err(invalid("unexpected TLS connection state")),
            };
            received.consumed += discard + records_discard;
            if !more {
                return Ok(received);
            }
        }
    }

    /// Encrypts `plaintext` (at most [`MAX_RECORD_PLAINTEXT`] of it) into
    /// records at the start of `out`, which has room for
    /// [`MAX_RECORD_BYTES`]; whatever TLS must send before them is appended
    /// to `before`. `retained` is what [`receive`](Self::receive) left
    /// unconsumed (the start of a record), presented again as rustls
    /// requires. Returns the plaintext taken and the bytes written.
    pub(crate) fn encrypt(
        &mut self,
        plaintext: &[u8],
        retained: &mut Vec<u8>,
        before: &mut Vec<u8>,
        out: &mut [u8],
    ) -> io::Result<(usize, usize)> {
        let mut plaintext = &plaintext[..plaintext.len().min(MAX_RECORD_PLAINTEXT)];
        let mut written = 0;
        self.with_write_traffic(retained, before, |traffic, _| {
            loop {
                match traffic.encrypt(plaintext, out) {
                    Ok(count) => {
                        written = count;
                        return Ok(());
                    }
                    // Smaller fragments (`max_fragment_size`) cost more
                    // headers: take less at once.
                    Err(EncryptError::InsufficientSize(InsufficientSizeError { .. }))
                        if plaintext.len() > 1 =>
                    {
                        plaintext = &plaintext[..plaintext.len() / 2];
                    }
                    Err(other) => return Err(invalid(other)),
                }
            }
        })?;
        Ok((plaintext.len(), written))
    }

    /// Appends our `close_notify` to `outgoing` (best effort: nothing is
    /// added once the session cannot send).
    pub(crate) fn close_notify(&mut self, retained: &mut Vec<u8>, outgoing: &mut Vec<u8>) {
        let _ = self.with_write_traffic(retained, outgoing, |traffic, outgoing| {
            encode_into(outgoing, RECORD_OVERHEAD, |out| {
                traffic.queue_close_notify(out).map_err(EncodeFailure::from)
            })
        });
    }

    /// Runs `write` once the session may send application data, first
    /// appending to `outgoing` whatever TLS must send before it. rustls
    /// reads `retained` again (it may hold part of a handshake message it
    /// keeps track of), never an empty stand-in.
    fn with_write_traffic(
        &mut self,
        retained: &mut Vec<u8>,
        outgoing: &mut Vec<u8>,
        write: impl FnOnce(&mut WriteTraffic<'_, ServerConnectionData>, &mut Vec<u8>) -> io::Result<()>,
    ) -> io::Result<()> {
        loop {
            let status = self.connection.process_tls_records(&mut retained[..]);
            let discard = status.discard;
            let state = status.state.map_err(invalid);
            match state? {
                ConnectionState::WriteTraffic(mut traffic) => {
                    let written = write(&mut traffic, outgoing);
                    retained.drain(..discard);
                    return written;
                }
                ConnectionState::EncodeTlsData(mut encode) => {
                    encode_into(outgoing, HANDSHAKE_ROOM, |out| {
                        encode.encode(out).map_err(EncodeFailure::from)
                    })?;
                }
                ConnectionState::TransmitTlsData(transmit) => transmit.done(),
                ConnectionState::Closed => {
                    return Err(io::Error::new(
                        io::ErrorKind::BrokenPipe,
                        "the TLS session is closed",
                    ));
                }
                ConnectionState::BlockedHandshake => {
                    return Err(io::Error::new(
                        io::ErrorKind::NotConnected,
                        "the TLS handshake is not finished",
                    ));
                }
                // Unread plaintext or a peer's close not yet seen: the
                // caller must `receive` first.
                _ => return Err(invalid("TLS input is waiting to be received")),
            }
        }
    }
}

/// Why rustls could not write into the space it was given.
enum EncodeFailure {
    TooSmall(usize),
    Other(String),
}

impl From<EncodeError> for EncodeFailure {
    fn from(error: EncodeError) -> Self {
        match error {
            EncodeError::InsufficientSize(InsufficientSizeError { required_size }) => {
                Self::TooSmall(required_size)
            }
            other => Self::Other(other.to_string()),
        }
    }
}

impl From<EncryptError> for EncodeFailure {
    fn from(error: EncryptError) -> Self {
        match error {
            EncryptError::InsufficientSize(InsufficientSizeError { required_size }) => {
                Self::TooSmall(required_size)
            }
            other => Self::Other(other.to_string()),
        }
    }
}

/// Lets `write` fill `room` bytes more at the end of `outgoing`, growing
/// it once if rustls says it needs more.
fn encode_into(
    outgoing: &mut Vec<u8>,
    mut room: usize,
    mut write: impl FnMut(&mut [u8]) -> Result<usize, EncodeFailure>,
) -> io::Result<()> {
    let start = outgoing.len();
    loop {
        outgoing.resize(start + room, 0);
        match write(&mut outgoing[start..]) {
            Ok(written) => {
                outgoing.truncate(start + written);
                return Ok(());
            }
            Err(EncodeFailure::TooSmall(required)) if required > room => room = required,
            Err(EncodeFailure::TooSmall(_)) => {
                outgoing.truncate(start);
                return Err(invalid("rustls asked for less room than it was given"));
            }
            Err(EncodeFailure::Other(reason)) => {
                outgoing.truncate(start);
                return Err(invalid(reason));
            }
        }
    }
}

fn invalid(error: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, error.to_string())
}
