//! A small blocking WebSocket client for end-to-end tests: it writes masked
//! frames by hand (so tests can send anything) and reads the server's, over
//! a plain socket or TLS (rustls).

use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// How long a test waits for an expected event by default.
const WAIT: Duration = Duration::from_secs(5);

/// What a client's bytes travel on.
enum Transport {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Transport {
    fn socket(&self) -> &TcpStream {
        match self {
            Self::Plain(socket) => socket,
            Self::Tls(tls) => &tls.sock,
        }
    }
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Plain(socket) => write!(f, "Plain({socket:?})"),
            Self::Tls(tls) => write!(f, "Tls({:?})", tls.sock),
        }
    }
}

impl Read for Transport {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Self::Plain(socket) => socket.read(buf),
            Self::Tls(tls) => tls.read(buf),
        }
    }
}

impl Write for Transport {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Self::Plain(socket) => socket.write(buf),
            Self::Tls(tls) => tls.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Self::Plain(socket) => socket.flush(),
            Self::Tls(tls) => tls.flush(),
        }
    }
}

#[derive(Debug)]
pub struct WsClient {
    stream: Transport,
    buf: Vec<u8>,
    /// Protocol pings from the server answered so far.
    pings_answered: u32,
}

impl WsClient {
    #[track_caller]
    pub fn connect(addr: SocketAddr) -> Self {
        Self::try_connect(addr, "/ws", &[])
            .unwrap_or_else(|refusal| panic!("not upgraded: {refusal}"))
    }

    /// Connects to `path` with extra `headers`; a refusal returns the
    /// response's head and what arrived of its body.
    #[track_caller]
    pub fn try_connect(
        addr: SocketAddr,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<Self, String> {
        Self::try_connect_after(addr, b"", path, headers)
    }

    /// Connects to `/ws?token=<jwt>`; a refusal returns the response.
    #[track_caller]
    pub fn try_connect_with_token(addr: SocketAddr, jwt: &str) -> Result<Self, String> {
        Self::try_connect(addr, &format!("/ws?token={jwt}"), &[])
    }

    /// [`WsClient::try_connect`], writing `prefix` (a PROXY protocol
    /// header) before the HTTP request.
    #[track_caller]
    pub fn try_connect_after(
        addr: SocketAddr,
        prefix: &[u8],
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<Self, String> {
        let stream = TcpStream::connect(addr).expect("connect");
        Self::handshake(Transport::Plain(stream), addr, prefix, path, headers)
    }

    /// Connects from the loopback address `source` (127.0.0.2, ...), so
    /// the server sees another client address.
    #[track_caller]
    pub fn connect_from(source: std::net::IpAddr, addr: SocketAddr) -> Self {
        let stream = connect_from(source, addr);
        Self::handshake(Transport::Plain(stream), addr, b"", "/ws", &[])
            .unwrap_or_else(|refusal| panic!("not upgraded: {refusal}"))
    }

    /// Connects over TLS (`wss://`) to `addr`, checking the server's
    /// certificate for `server_name` with `tls`; a refusal returns the
    /// response, a failed TLS handshake its error.
    #[track_caller]
    pub fn try_connect_tls(
        addr: SocketAddr,
        server_name: &str,
        tls: std::sync::Arc<rustls::ClientConfig>,
        path: &str,
    ) -> Result<Self, String> {
        let name = rustls::pki_types::ServerName::try_from(server_name.to_owned())
            .map_err(|e| e.to_string())?;
        let connection = rustls::ClientConnection::new(tls, name).map_err(|e| e.to_string())?;
        let socket = TcpStream::connect(addr).expect("connect");
        let mut stream = rustls::StreamOwned::new(connection, socket);
        stream.sock.set_read_timeout(Some(WAIT)).expect("timeout");
        while stream.conn.is_handshaking() {
            stream
                .conn
                .complete_io(&mut stream.sock)
                .map_err(|e| format!("TLS handshake: {e}"))?;
        }
        Self::handshake(Transport::Tls(Box::new(stream)), addr, b"", path, &[])
    }

    /// The certificate the server presented (TLS only).
    pub fn peer_certificate(&self) -> Option<Vec<u8>> {
        match &self.stream {
            Transport::Plain(_) => None,
            Transport::Tls(tls) => tls
                .conn
                .peer_certificates()
                .and_then(|chain| chain.first())
                .map(|cert| cert.to_vec()),
        }
    }

    #[track_caller]
    fn handshake(
        mut stream: Transport,
        addr: SocketAddr,
        prefix: &[u8],
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<Self, String> {
        let extra: String = headers
            .iter()
            .map(|(k, v)| format!("{k}: {v}\r\n"))
            .collect();
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
        );
        let mut bytes = prefix.to_vec();
        bytes.extend_from_slice(request.as_bytes());
        stream.write_all(&bytes).expect("handshake");
        let mut client = Self {
            stream,
            buf: Vec::new(),
            pings_answered: 0,
        };
        let deadline = Instant::now() + WAIT;
        let end = loop {
            if let Some(end) = client.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break end;
            }
            assert!(client.fill(deadline), "no handshake response");
        };
        let head = String::from_utf8_lossy(&client.buf[..end]).into_owned();
        if !head.starts_with("HTTP/1.1 101") {
            client.fill(Instant::now() + Duration::from_millis(300));
            return Err(String::from_utf8_lossy(&client.buf).into_owned());
        }
        client.buf.drain(..end + 4);
        Ok(client)
    }

    fn send_frame(&mut self, first: u8, payload: &[u8]) {
        self.stream
            .write_all(&masked_frame(first, payload))
            .expect("write");
    }

    pub fn send_json(&mut self, text: &str) {
        self.send_frame(0x81, text.as_bytes());
    }

    pub fn send_binary(&mut self, data: &[u8]) {
        self.send_frame(0x82, data);
    }

    /// Protocol pings from the server this client has answered.
    pub fn pings_answered(&self) -> u32 {
        self.pings_answered
    }

    /// Ends the connection abruptly, as a crashed client or a dropped
    /// network does: a TCP reset, no close frame.
    pub fn reset(self) {
        socket2::SockRef::from(self.stream.socket())
            .set_linger(Some(Duration::ZERO))
            .expect("SO_LINGER");
    }

    pub fn send_close(&mut self, code: u16) {
        self.send_frame(0x88, &code.to_be_bytes());
    }

    /// Reads more bytes; false on EOF, error or deadline.
    fn fill(&mut self, deadline: Instant) -> bool {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        self.stream
            .socket()
            .set_read_timeout(Some(left))
            .expect("timeout");
        let mut chunk = [0u8; 65_536];
        match self.stream.read(&mut chunk) {
            Ok(n) if n > 0 => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
            _ => false,
        }
    }

    /// The next frame (first byte, payload), answering pings on the way.
    fn next_frame(&mut self, deadline: Instant) -> Option<(u8, Vec<u8>)> {
        loop {
            if self.buf.len() >= 2 {
                let (len, head) = match self.buf[1] & 0x7F {
                    126 if self.buf.len() >= 4 => (
                        usize::from(u16::from_be_bytes([self.buf[2], self.buf[3]])),
                        4,
                    ),
                    126 => (usize::MAX, 0),
                    127 => panic!("tests never get frames of 64 KiB or more"),
                    n => (usize::from(n), 2),
                };
                if len != usize::MAX && self.buf.len() >= head + len {
                    let first = self.buf[0];
                    let payload = self.buf[head..head + len].to_vec();
                    self.buf.drain(..head + len);
                    if first & 0x0F == 0x9 {
                        self.send_frame(0x8A, &payload);
                        self.pings_answered += 1;
                        continue;
                    }
                    return Some((first, payload));
                }
            }
            if !self.fill(deadline) {
                return None;
            }
        }
    }

    /// The next text message as JSON.
    #[track_caller]
    pub fn next_json(&mut self) -> Value {
        let deadline = Instant::now() + WAIT;
        let (first, payload) = self.next_frame(deadline).expect("a message in time");
        assert_eq!(first, 0x81, "expected a text frame");
        serde_json::from_slice(&payload).expect("JSON")
    }

    /// Sends `request` (JSON with an `id`) and returns the answer carrying
    /// that id, skipping other events.
    #[track_caller]
    pub fn ask(&mut self, request: &str) -> Value {
        let id = serde_json::from_str::<Value>(request).expect("JSON")["id"].clone();
        assert!(!id.is_null(), "a request to ask carries an id: {request}");
        self.send_json(request);
        loop {
            let answer = self.next_json();
            if answer["id"] == id {
                return answer;
            }
        }
    }

    /// The next event of `kind` (`"type"`), skipping others.
    #[track_caller]
    pub fn next_of(&mut self, kind: &str) -> Value {
        self.next_of_within(kind, WAIT)
    }

    /// The next event of `kind` within `timeout`, or `None`.
    pub fn try_next_of_within(&mut self, kind: &str, timeout: Duration) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let (first, payload) = self.next_frame(deadline)?;
            if first != 0x81 {
                continue;
            }
            let value: Value = serde_json::from_slice(&payload).ok()?;
            if value["type"] == kind {
                return Some(value);
            }
        }
    }

    /// The next text message as JSON within `timeout`, or `None`.
    /// The next frame of any kind (first byte, payload) within `timeout`,
    /// answering protocol pings on the way.
    pub fn next_raw_frame(&mut self, timeout: Duration) -> Option<(u8, Vec<u8>)> {
        self.next_frame(Instant::now() + timeout)
    }

    pub fn try_next_json_within(&mut self, timeout: Duration) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let (first, payload) = self.next_frame(deadline)?;
            if first == 0x81 {
                return serde_json::from_slice(&payload).ok();
            }
        }
    }

    #[track_caller]
    pub fn next_of_within(&mut self, kind: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let (first, payload) = self
                .next_frame(deadline)
                .unwrap_or_else(|| panic!("no {kind:?} event within {timeout:?}"));
            if first != 0x81 {
                continue;
            }
            let value: Value = serde_json::from_slice(&payload).expect("JSON");
            if value["type"] == kind {
                return value;
            }
        }
    }

    /// Reads (and drops) frames until the server ends the connection: how
    /// long that took, or `None` if it was still open after `timeout`.
    pub fn wait_for_end(&mut self, timeout: Duration) -> Option<Duration> {
        let started = Instant::now();
        let deadline = started + timeout;
        while self.next_frame(deadline).is_some() {}
        let waited = started.elapsed();
        (waited < timeout).then_some(waited)
    }

    /// Reads until a close frame: its code and reason.
    pub fn next_close(&mut self, timeout: Duration) -> Option<(u16, String)> {
        let deadline = Instant::now() + timeout;
        loop {
            let (first, payload) = self.next_frame(deadline)?;
            if first & 0x0F == 0x8 && payload.len() >= 2 {
                let code = u16::from_be_bytes([payload[0], payload[1]]);
                return Some((code, String::from_utf8_lossy(&payload[2..]).into_owned()));
            }
        }
    }
}

/// A TCP connection to `addr` from the local address `source` (any port).
#[track_caller]
pub fn connect_from(source: std::net::IpAddr, addr: SocketAddr) -> TcpStream {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )
    .expect("a socket");
    socket
        .bind(&SocketAddr::new(source, 0).into())
        .expect("bind to the source address");
    socket.connect(&addr.into()).expect("connect");
    socket.into()
}

/// A client frame (clients must mask): `first` is FIN and the opcode
/// (0x81 for a whole text message); payloads under 64 KiB.
pub(crate) fn masked_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![first];
    match payload.len() {
        n if n < 126 => frame.push(0x80 | n as u8),
        n => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
    }
    let key = [0x12, 0x34, 0x56, 0x78];
    frame.extend_from_slice(&key);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    frame
}
