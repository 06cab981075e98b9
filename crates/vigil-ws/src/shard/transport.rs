//! What a connection's bytes travel on. A plain TCP socket is the shard's
//! own: registered with the shard's reactor and read with one syscall, no
//! task and no buffer of its own. Any other upgraded stream (TLS, the
//! socket hyper-util's auto builder or `axum::serve` wraps, an in-memory
//! pipe) is polled through the same per-slot waker, wherever its reactor
//! runs: the connection is served by the same machine either way, with the
//! same heartbeat, limits, close reasons and metrics. A TLS connection
//! accepted with [`crate::tls::accept`] is the shard's own socket too, its
//! session decrypting into the shard's buffers (`super::tls`).

use super::tls::{TlsPartsRest, TlsTransport};
use std::io::{self, ErrorKind};
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A byte stream vigil-ws can serve: anything tokio can read and write.
pub trait Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Stream for T {}

/// A connection handed to a shard.
pub(crate) enum Adopted {
    /// A plain socket, moved into the shard's own reactor.
    Tcp(std::net::TcpStream),
    /// Any other stream, left with the reactor it was created on.
    Stream(Box<dyn Stream>),
    /// A socket and its TLS session, moved into the shard's reactor.
    Tls {
        socket: std::net::TcpStream,
        session: Box<TlsPartsRest>,
    },
}

/// A connection's transport inside its shard.
pub(crate) enum Transport {
    Tcp(tokio::net::TcpStream),
    Stream(Box<dyn Stream>),
    Tls(Box<TlsTransport>),
}

impl Transport {
    /// One read: the bytes read and whether the transport is known drained
    /// (its waker then registered). `WouldBlock` when nothing is there; for
    /// a general stream the waker is then registered too. `cipher` is
    /// the shard's buffer for what TLS reads and writes.
    pub(crate) fn read(
        &mut self,
        buf: &mut [u8],
        cipher: &mut Vec<u8>,
        context: &mut Context<'_>,
    ) -> io::Result<(usize, bool)> {
        match self {
            Self::Tcp(stream) => read_once(stream, buf),
            Self::Tls(tls) => tls.read(buf, cipher, read_once),
            Self::Stream(stream) => {
                let mut read_buf = ReadBuf::new(buf);
                match Pin::new(stream.as_mut()).poll_read(context, &mut read_buf) {
                    Poll::Ready(Ok(())) => Ok((read_buf.filled().len(), false)),
                    Poll::Ready(Err(error)) => Err(error),
                    Poll::Pending => Err(ErrorKind::WouldBlock.into()),
                }
            }
        }
    }

    /// One read straight from a socket of the shard, whatever tokio's
    /// cached readiness says; `None` for a general stream (its own read
    /// polls the stream underneath anyway).
    pub(crate) fn read_directly(
        &mut self,
        buf: &mut [u8],
        cipher: &mut Vec<u8>,
    ) -> Option<io::Result<usize>> {
        match self {
            Self::Tcp(stream) => Some(read_past_readiness(stream, buf).map(|(count, _)| count)),
            Self::Tls(tls) => Some(
                tls.read(buf, cipher, read_past_readiness)
                    .map(|(count, _)| count),
            ),
            Self::Stream(_) => None,
        }
    }

    /// Asks to be woken when readable; true if a plain socket already is.
    /// A general stream registered its waker when its read was pending.
    pub(crate) fn register_read(&self, context: &mut Context<'_>) -> bool {
        match self {
            Self::Tcp(stream) => matches!(stream.poll_read_ready(context), Poll::Ready(_)),
            Self::Tls(tls) => matches!(tls.socket().poll_read_ready(context), Poll::Ready(_)),
            Self::Stream(_) => false,
        }
    }

    /// Asks to be woken when writable; true if a plain socket already is.
    pub(crate) fn register_write(&self, context: &mut Context<'_>) -> bool {
        match self {
            Self::Tcp(stream) => matches!(stream.poll_write_ready(context), Poll::Ready(_)),
            Self::Tls(tls) => matches!(tls.socket().poll_write_ready(context), Poll::Ready(_)),
            Self::Stream(_) => false,
        }
    }

    /// One write; `WouldBlock` when the transport is full (a general
    /// stream's waker is then registered).
    pub(crate) fn write(
        &mut self,
        bytes: &[u8],
        cipher: &mut Vec<u8>,
        context: &mut Context<'_>,
    ) -> io::Result<usize> {
        match self {
            Self::Tcp(stream) => stream.try_write(bytes),
            Self::Tls(tls) => tls.write(bytes, cipher),
            Self::Stream(stream) => match Pin::new(stream.as_mut()).poll_write(context, bytes) {
                Poll::Ready(result) => result,
                Poll::Pending => Err(ErrorKind::WouldBlock.into()),
            },
        }
    }

    /// Pushes out what a TLS session or a general stream buffered (the
    /// end of a record); a plain socket buffers nothing. Pending is fine:
    /// the waker is registered.
    pub(crate) fn flush(&mut self, context: &mut Context<'_>) -> io::Result<()> {
        match self {
            Self::Tcp(_) => Ok(()),
            Self::Tls(tls) => tls.flush(context),
            Self::Stream(stream) => match Pin::new(stream.as_mut()).poll_flush(context) {
                Poll::Ready(result) => result,
                Poll::Pending => Ok(()),
            },
        }
    }
}

/// One read straight from the socket, past tokio's readiness.
fn read_past_readiness(
    stream: &tokio::net::TcpStream,
    buf: &mut [u8],
) -> io::Result<(usize, bool)> {
    let count = io::Read::read(&mut &*socket2::SockRef::from(stream), buf)?;
    Ok((count, false))
}

/// One read. A short read means the socket's receive queue was empty, so
/// tokio's readiness is cleared right away (returning `WouldBlock` from
/// `try_io`) instead of by a second, empty read: one syscall less per pong.
/// Returns the bytes read and whether the socket is known drained.
fn read_once(stream: &tokio::net::TcpStream, buf: &mut [u8]) -> io::Result<(usize, bool)> {
    let mut got = 0;
    let capacity = buf.len();
    let result = stream.try_io(tokio::io::Interest::READABLE, || {
        got = stream.try_read(buf)?;
        if got > 0 && got < capacity {
            Err(ErrorKind::WouldBlock.into())
        } else {
            Ok(got)
        }
    });
    match result {
        Ok(count) => Ok((count, false)),
        Err(error) if error.kind() == ErrorKind::WouldBlock && got > 0 => Ok((got, true)),
        Err(error) => Err(error),
    }
}
