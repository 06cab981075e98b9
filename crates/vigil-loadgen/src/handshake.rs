//! The client side of the WebSocket upgrade, by hand over a `TcpStream`
//! (or TLS over one, for `wss://`): one request write and one response
//! read, so a connection keeps nothing of the handshake (no hyper
//! connection task, no boxed `Upgraded`, no retained 8 KiB HTTP read
//! buffer): only the socket and fastwebsockets' codec.

use std::{
    io,
    net::{Ipv4Addr, SocketAddr},
    pin::Pin,
    task::{Context, Poll},
};

use fastwebsockets::{Role, WebSocket};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf},
    net::{TcpSocket, TcpStream},
};

use crate::cli::Target;

/// RFC 6455's sample nonce. Servers do not require keys to be unique, and a
/// fixed key makes the expected `Sec-WebSocket-Accept` a constant (no SHA-1
/// here), still checked on every connection.
const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// A response head longer than this is not a WebSocket upgrade.
const MAX_RESPONSE: usize = 4096;

#[derive(Debug)]
pub(crate) enum HandshakeError {
    Io(io::Error),
    /// The server closed before finishing its response.
    Eof,
    /// Not a valid `101 Switching Protocols` for our key.
    Rejected(String),
}

impl From<io::Error> for HandshakeError {
    fn from(error: io::Error) -> HandshakeError {
        HandshakeError::Io(error)
    }
}

/// The upgrade request for `target`.
pub(crate) fn request(target: &Target) -> String {
    format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n",
        target.path, target.host
    )
}

/// Connects from `source` (any port), upgrades, and returns the client codec.
/// Cancel safety: dropping it drops the half-made connection, nothing else.
pub(crate) async fn connect(
    source: Ipv4Addr,
    target: &Target,
    request: &str,
    tls: Option<&std::sync::Arc<rustls::ClientConfig>>,
) -> Result<WebSocket<Prefixed>, HandshakeError> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(source.into(), 0))?;
    let stream = socket.connect(target.addr.into()).await?;
    stream.set_nodelay(true)?;
    let stream = match tls {
        None => Io::Tcp(stream),
        Some(config) => {
            let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::clone(config));
            let name =
                rustls::pki_types::ServerName::from(std::net::IpAddr::from(*target.addr.ip()));
            Io::Tls(Box::new(connector.connect(name, stream).await?))
        }
    };
    upgrade(stream, request).await
}

/// Sends the upgrade request over `stream` and reads the 101.
async fn upgrade(mut stream: Io, request: &str) -> Result<WebSocket<Prefixed>, HandshakeError> {
    stream.write_all(request.as_bytes()).await?;
    // Freed on return: the connection keeps only bytes past the head.
    let mut buffer = Vec::with_capacity(1024);
    loop {
        if stream.read_buf(&mut buffer).await? == 0 {
            return Err(HandshakeError::Eof);
        }
        if let Some(end) = find_head_end(&buffer) {
            check_response(&buffer[..end]).map_err(HandshakeError::Rejected)?;
            let leftover = buffer[end..].to_vec();
            let stream = Prefixed {
                leftover,
                position: 0,
                stream,
            };
            return Ok(WebSocket::after_handshake(stream, Role::Client));
        }
        if buffer.len() >= MAX_RESPONSE {
            return Err(HandshakeError::Rejected(format!(
                "no end of the response head in {MAX_RESPONSE} bytes"
            )));
        }
    }
}

/// Index just past the `\r\n\r\n` that ends an HTTP head.
fn find_head_end(bytes: &[u8]) -> Option<usize> {
    bytes
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .map(|at| at + 4)
}

/// Checks a response head: status 101, `Upgrade: websocket`, and the accept
/// value our key demands. The error is a short description for the report.
fn check_response(head: &[u8]) -> Result<(), String> {
    let head = String::from_utf8_lossy(head);
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or("");
    let code = status.split(' ').nth(1).unwrap_or("");
    if !status.starts_with("HTTP/1.1 ") || code != "101" {
        return Err(format!(
            "status {}",
            if code.is_empty() { "?" } else { code }
        ));
    }
    let header = |name: &str| {
        head.split("\r\n").skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
        })
    };
    if !header("upgrade").is_some_and(|value| value.eq_ignore_ascii_case("websocket")) {
        return Err("no `Upgrade: websocket`".to_owned());
    }
    if header("sec-websocket-accept") != Some(ACCEPT) {
        return Err("wrong Sec-WebSocket-Accept".to_owned());
    }
    Ok(())
}

/// A `TcpStream` that first yields the bytes read past the response head (a
/// server may send its first frame with the 101). Empty in the common case,
/// so it allocates nothing.
#[derive(Debug)]
pub(crate) struct Prefixed {
    leftover: Vec<u8>,
    position: usize,
    stream: Io,
}

/// The socket, or TLS over it (`wss://`, healthy clients only).
#[derive(Debug)]
pub(crate) enum Io {
    Tcp(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl Prefixed {
    /// The socket underneath (bytes still in the prefix stay there).
    pub(crate) fn stream(&self) -> &TcpStream {
        match &self.stream {
            Io::Tcp(stream) => stream,
            Io::Tls(tls) => tls.get_ref().0,
        }
    }

    /// The socket, dropping any bytes still in the prefix (and the TLS
    /// session: the kinds that take the socket are refused with wss://).
    pub(crate) fn into_stream(self) -> TcpStream {
        match self.stream {
            Io::Tcp(stream) => stream,
            Io::Tls(tls) => tls.into_inner().0,
        }
    }
}

impl AsyncRead for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Tcp(stream) => Pin::new(stream).poll_read(cx, buf),
            Io::Tls(tls) => Pin::new(tls.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Io::Tcp(stream) => Pin::new(stream).poll_write(cx, buf),
            Io::Tls(tls) => Pin::new(tls.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Io::Tcp(stream) => Pin::new(stream).poll_write_vectored(cx, bufs),
            Io::Tls(tls) => Pin::new(tls.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Io::Tcp(stream) => stream.is_write_vectored(),
            Io::Tls(tls) => tls.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Tcp(stream) => Pin::new(stream).poll_flush(cx),
            Io::Tls(tls) => Pin::new(tls.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Tcp(stream) => Pin::new(stream).poll_shutdown(cx),
            Io::Tls(tls) => Pin::new(tls.as_mut()).poll_shutdown(cx),
        }
    }
}

impl AsyncRead for Prefixed {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.position < this.leftover.len() {
            let rest = &this.leftover[this.position..];
            let n = rest.len().min(buf.remaining());
            buf.put_slice(&rest[..n]);
            this.position += n;
            if this.position == this.leftover.len() {
                this.leftover = Vec::new();
                this.position = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Prefixed {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests;
