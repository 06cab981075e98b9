//! A `wss://` connection inside its shard: the socket is the shard's own,
//! like a plain one, and its TLS session decrypts into and encrypts from
//! the shard's shared buffers. Between reads it keeps only the session and,
//! rarely, the start of a record still arriving or the end of a record the
//! socket had no room for.

use crate::tls::{MAX_RECORD_BYTES, TlsParts, TlsSession};
use std::io::{self, ErrorKind};
use std::task::Context;
use tokio::net::TcpStream;

/// The most a connection keeps of a record still arriving. After the
/// handshake a client sends only application data and short handshake
/// messages (a key update), so two records is generous; a peer that keeps
/// a message growing in many tiny records is cut off here.
const MAX_PARTIAL: usize = 2 * MAX_RECORD_BYTES;

/// A TLS connection's transport.
pub(crate) struct TlsTransport {
    socket: TcpStream,
    session: TlsSession,
    /// The start of a record still arriving (usually empty: no capacity).
    partial: Vec<u8>,
    /// Encrypted bytes the socket had no room for yet.
    pending: Vec<u8>,
    peer_closed: bool,
}

impl TlsTransport {
    /// The transport of `parts`, on `socket` (the same socket, now
    /// registered with the shard's reactor).
    pub(crate) fn new(socket: TcpStream, parts: TlsPartsRest) -> Self {
        Self {
            socket,
            session: parts.session,
            partial: parts.incoming,
            pending: parts.outgoing,
            peer_closed: parts.peer_closed,
        }
    }

    /// One read from the socket (`raw` does it), decrypted into `buf`:
    /// the plaintext count and whether the socket is known drained.
    /// `WouldBlock` when nothing was decrypted (nothing came, or only part
    /// of a record, or a record of TLS's own); `Ok(0)` at the end.
    pub(crate) fn read(
        &mut self,
        buf: &mut [u8],
        cipher: &mut Vec<u8>,
        raw: impl FnOnce(&TcpStream, &mut [u8]) -> io::Result<(usize, bool)>,
    ) -> io::Result<(usize, bool)> {
        if self.peer_closed {
            return Ok((0, false));
        }
        // At most `buf.len()` bytes of records: their plaintext fits in it.
        let kept = self.partial.len();
        let room = buf.len().max(kept + 1);
        if cipher.len() < room {
            cipher.resize(room, 0); // once per shard: its length stays
        }
        cipher[..kept].copy_from_slice(&self.partial);
        let (got, drained) = raw(&self.socket, &mut cipher[kept..room])?;
        if got == 0 {
            return Ok((0, false));
        }
        let filled = kept + got;
        let mut written = 0;
        let mut overflow = false;
        let received =
            self.session
                .receive(
                    &mut cipher[..filled],
                    &mut self.pending,
                    &mut |plaintext| match buf.get_mut(written..written + plaintext.len()) {
                        Some(room) => {
                            room.copy_from_slice(plaintext);
                            written += plaintext.len();
                        }
                        None => overflow = true,
                    },
                )?;
        if overflow {
            return Err(io::Error::new(
                ErrorKind::InvalidData,
                "TLS records decrypted to more than they held",
            ));
        }
        self.peer_closed = received.peer_closed;
        let rest = &cipher[received.consumed..filled];
        if rest.len() > MAX_PARTIAL {
            return Err(io::Error::new(
                ErrorKind::InvalidData,
                "a TLS handshake message kept growing past two records",
            ));
        }
        if rest.is_empty() {
            self.partial = Vec::new(); // an idle connection keeps no buffer
        } else {
            self.partial.clear();
            self.partial.extend_from_slice(rest);
        }
        match written {
            0 if self.peer_closed => Ok((0, false)),
            0 => Err(ErrorKind::WouldBlock.into()),
            _ => Ok((written, drained)),
        }
    }

    /// Encrypts up to one record of `bytes` and writes it; the count of
    /// `bytes` taken. `WouldBlock` while an earlier record is still going
    /// out.
    pub(crate) fn write(&mut self, bytes: &[u8], cipher: &mut Vec<u8>) -> io::Result<usize> {
        if !self.write_pending()? {
            return Err(ErrorKind::WouldBlock.into());
        }
        if cipher.len() < MAX_RECORD_BYTES {
            cipher.resize(MAX_RECORD_BYTES, 0);
        }
        let (taken, length) =
            self.session
                .encrypt(bytes, &mut self.partial, &mut self.pending, cipher)?;
        let record = &cipher[..length];
        if !self.pending.is_empty() {
            // TLS had messages of its own to send first.
            self.pending.extend_from_slice(record);
            self.write_pending()?;
            return Ok(taken);
        }
        let written = write_now(&self.socket, record)?;
        self.pending.extend_from_slice(&record[written..]);
        Ok(taken)
    }

    /// Writes what waits; when the socket is full, asks to be woken once
    /// it has room.
    pub(crate) fn flush(&mut self, context: &mut Context<'_>) -> io::Result<()> {
        while !self.write_pending()? {
            if self.socket.poll_write_ready(context).is_pending() {
                break;
            }
        }
        Ok(())
    }

    /// Writes `pending`; true once it is all out.
    fn write_pending(&mut self) -> io::Result<bool> {
        let written = write_now(&self.socket, &self.pending)?;
        self.pending.drain(..written);
        if !self.pending.is_empty() {
            return Ok(false);
        }
        self.pending = Vec::new();
        Ok(true)
    }

    pub(crate) fn socket(&self) -> &TcpStream {
        &self.socket
    }
}

impl Drop for TlsTransport {
    /// Tells the peer the session ends (one try, if nothing else waits):
    /// a TLS client otherwise sees the socket's end as a truncation.
    fn drop(&mut self) {
        if self.pending.is_empty() {
            let mut close = Vec::new();
            self.session.close_notify(&mut self.partial, &mut close);
            let _ = self.socket.try_write(&close);
        }
    }
}

/// Writes as much of `bytes` as the socket takes now; the count written
/// (short when the socket is full).
fn write_now(socket: &TcpStream, bytes: &[u8]) -> io::Result<usize> {
    let mut written = 0;
    while written < bytes.len() {
        match socket.try_write(&bytes[written..]) {
            Ok(count) => written += count,
            Err(error) if error.kind() == ErrorKind::Interrupted => {}
            Err(error) if error.kind() == ErrorKind::WouldBlock => break,
            Err(error) => return Err(error),
        }
    }
    Ok(written)
}

/// A [`TlsParts`] without its socket (which the shard registers anew).
pub(crate) struct TlsPartsRest {
    session: TlsSession,
    incoming: Vec<u8>,
    outgoing: Vec<u8>,
    peer_closed: bool,
}

/// Splits `parts` into its socket (as a std socket, to move to the shard's
/// reactor), its plaintext nobody read yet, and the rest.
pub(crate) fn split(parts: TlsParts) -> io::Result<(std::net::TcpStream, Vec<u8>, TlsPartsRest)> {
    let socket = parts.socket.into_std()?;
    let rest = TlsPartsRest {
        session: parts.session,
        incoming: parts.incoming,
        outgoing: parts.outgoing,
        peer_closed: parts.peer_closed,
    };
    Ok((socket, parts.plaintext, rest))
}
