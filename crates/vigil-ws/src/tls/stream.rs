//! The TLS stream a connection has from its handshake until vigil-ws takes
//! it over: tokio's `AsyncRead`/`AsyncWrite` over a [`TlsSession`], for
//! hyper to read the HTTP request from and write the `101` to. Its buffers
//! live only that long: once upgraded, the shard serves the same session
//! with its own shared buffers.

use super::session::{MAX_RECORD_BYTES, MAX_RECORD_PLAINTEXT, TlsSession};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// How much room a read from the socket asks for at least: a client's
/// first flight and its HTTP request fit (a larger record grows it).
/// Kept small, and never zeroed, because every connection's handshake
/// has one: large buffers freed between long-lived session state would
/// leave the allocator's memory fragmented, resident and unused.
const READ_ROOM: usize = 4096;

/// A server-side TLS connection over TCP, made by [`accept`].
///
/// Serve HTTP over it as over any stream (wrap it in hyper-util's
/// `TokioIo`); when a request on it is upgraded with
/// [`WsServer::upgrade`](crate::WsServer::upgrade), the WebSocket runs in
/// a shard like a plain socket does, keeping no buffer of its own while
/// idle (a tokio-rustls stream is served too, but keeps rustls's buffers
/// for its whole life).
pub struct TlsStream {
    socket: TcpStream,
    session: TlsSession,
    /// Received bytes not yet used up: the start of a record.
    incoming: Vec<u8>,
    /// Decrypted bytes not yet read, from `plaintext_read` on.
    plaintext: Vec<u8>,
    plaintext_read: usize,
    /// Bytes for the peer, from `outgoing_written` on.
    outgoing: Vec<u8>,
    outgoing_written: usize,
    peer_closed: bool,
    sent_close_notify: bool,
}

/// What a [`TlsStream`] hands to a shard.
pub(crate) struct TlsParts {
    pub(crate) socket: TcpStream,
    pub(crate) session: TlsSession,
    /// The start of a record still arriving.
    pub(crate) incoming: Vec<u8>,
    /// Decrypted bytes nobody read yet.
    pub(crate) plaintext: Vec<u8>,
    /// Bytes not yet written to the peer.
    pub(crate) outgoing: Vec<u8>,
    pub(crate) peer_closed: bool,
}

/// The most kept of records still arriving: rustls's largest handshake
/// message (64 KiB) and a record more, with room to spare.
const MAX_INCOMING: usize = 96 << 10;

impl std::fmt::Debug for TlsStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsStream")
            .field("socket", &self.socket)
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

/// Completes the TLS handshake of `socket` as a server with `config`.
/// An error is the peer's (a failed handshake, a closed socket, something
/// that is not TLS); bound the wait with a timeout of your own.
pub async fn accept(config: Arc<rustls::ServerConfig>, socket: TcpStream) -> io::Result<TlsStream> {
    let mut stream = TlsStream {
        socket,
        session: TlsSession::new(config)?,
        incoming: Vec::new(),
        plaintext: Vec::new(),
        plaintext_read: 0,
        outgoing: Vec::new(),
        outgoing_written: 0,
        peer_closed: false,
        sent_close_notify: false,
    };
    std::future::poll_fn(|context| stream.poll_handshake(context)).await?;
    Ok(stream)
}

impl TlsStream {
    /// The socket underneath.
    pub fn get_ref(&self) -> &TcpStream {
        &self.socket
    }

    /// The protocol ALPN settled on (`http/1.1` when the client offered
    /// it and the configuration lists it).
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        self.session.alpn_protocol()
    }

    /// Its parts, for a shard, after using up every complete record;
    /// buffers only where bytes wait.
    pub(crate) fn into_parts(mut self) -> io::Result<TlsParts> {
        self.process()?;
        Ok(TlsParts {
            socket: self.socket,
            session: self.session,
            incoming: just_bytes(&self.incoming),
            plaintext: just_bytes(&self.plaintext[self.plaintext_read..]),
            outgoing: just_bytes(&self.outgoing[self.outgoing_written..]),
            peer_closed: self.peer_closed,
        })
    }

    fn poll_handshake(&mut self, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            self.process()?;
            ready!(self.poll_write_out(context))?;
            if !self.session.is_handshaking() {
                return Poll::Ready(Ok(()));
            }
            if self.peer_closed || ready!(self.poll_fill(context))? == 0 {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the peer closed the connection during the TLS handshake",
                )));
            }
        }
    }

    /// Uses up every complete record received.
    fn process(&mut self) -> io::Result<()> {
        let plaintext = &mut self.plaintext;
        let received =
            self.session
                .receive(&mut self.incoming, &mut self.outgoing, &mut |bytes| {
                    plaintext.extend_from_slice(bytes)
                })?;
        self.incoming.drain(..received.consumed);
        self.peer_closed |= received.peer_closed;
        Ok(())
    }

    /// Reads more from the socket onto `incoming`; 0 at its end. A peer
    /// whose unfinished records outgrow [`MAX_INCOMING`] is refused.
    fn poll_fill(&mut self, context: &mut Context<'_>) -> Poll<io::Result<usize>> {
        if self.incoming.len() > MAX_INCOMING {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "a TLS handshake message kept growing past 96 KiB",
            )));
        }
        self.incoming.reserve(READ_ROOM);
        loop {
            ready!(self.socket.poll_read_ready(context))?;
            match self.socket.try_read_buf(&mut self.incoming) {
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                read => return Poll::Ready(read),
            }
        }
    }

    /// Writes `outgoing` until it is all out.
    fn poll_write_out(&mut self, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.outgoing_written < self.outgoing.len() {
            let bytes = &self.outgoing[self.outgoing_written..];
            match ready!(Pin::new(&mut self.socket).poll_write(context, bytes))? {
                0 => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                count => self.outgoing_written += count,
            }
        }
        self.outgoing.clear();
        self.outgoing_written = 0;
        Poll::Ready(Ok(()))
    }
}

/// `bytes` in a buffer of their size (none for none).
fn just_bytes(bytes: &[u8]) -> Vec<u8> {
    bytes.to_vec()
}

impl AsyncRead for TlsStream {
    fn poll_read(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            this.process()?;
            // What TLS itself must answer (a key update) goes out first;
            // a full socket does not hold up reading.
            if let Poll::Ready(Err(error)) = this.poll_write_out(context) {
                return Poll::Ready(Err(error));
            }
            let waiting = &this.plaintext[this.plaintext_read..];
            if !waiting.is_empty() {
                let count = waiting.len().min(buf.remaining());
                buf.put_slice(&waiting[..count]);
                this.plaintext_read += count;
                if this.plaintext_read == this.plaintext.len() {
                    this.plaintext.clear();
                    this.plaintext_read = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if this.peer_closed || ready!(this.poll_fill(context))? == 0 {
                return Poll::Ready(Ok(()));
            }
        }
    }
}

impl AsyncWrite for TlsStream {
    fn poll_write(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        // At most one record waits for the socket.
        ready!(this.poll_write_out(context))?;
        let mut record =
            vec![0; MAX_RECORD_BYTES.min(bytes.len() + MAX_RECORD_BYTES - MAX_RECORD_PLAINTEXT)];
        let (count, length) =
            this.session
                .encrypt(bytes, &mut this.incoming, &mut this.outgoing, &mut record)?;
        this.outgoing.extend_from_slice(&record[..length]);
        if let Poll::Ready(Err(error)) = this.poll_write_out(context) {
            return Poll::Ready(Err(error));
        }
        Poll::Ready(Ok(count))
    }

    fn poll_flush(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_write_out(context))?;
        Pin::new(&mut this.socket).poll_flush(context)
    }

    fn poll_shutdown(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.sent_close_notify {
            this.sent_close_notify = true;
            this.session
                .close_notify(&mut this.incoming, &mut this.outgoing);
        }
        ready!(this.poll_write_out(context))?;
        Pin::new(&mut this.socket).poll_shutdown(context)
    }
}
