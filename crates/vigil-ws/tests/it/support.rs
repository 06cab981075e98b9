//! Test support: a real hyper server embedding vigil-ws on a loopback port,
//! a handler that records every callback, a raw WebSocket client that can
//! send anything (including broken frames), and a well-behaved
//! fastwebsockets client.

use bytes::Bytes;
use http_body_util::Empty;
use parking_lot::Mutex;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use vigil_core::heartbeat::Config as HeartbeatConfig;
use vigil_ws::{CloseReason, ConnId, Connection, Handler, Message, WsConfig, WsServer};

/// Interval 1 s, timeout 1 s, jitter 0.1: a silent peer dies within 2 s.
pub(crate) fn fast_config() -> WsConfig {
    WsConfig {
        heartbeat: HeartbeatConfig::builder()
            .interval(Duration::from_secs(1))
            .timeout(Duration::from_secs(1))
            .jitter(0.1)
            .close_timeout(Duration::from_secs(1))
            .build()
            .expect("valid"),
        write_timeout: Duration::from_secs(2),
        ..WsConfig::default()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Event {
    Open(ConnId),
    Message(ConnId, Message),
    Liveness(ConnId, bool),
    Close(ConnId, CloseReason),
}

/// Records every callback. Text messages are commands for the tests:
/// `echo:...` is sent back, `stall:MS` blocks the shard thread (a starved
/// server), `flood:N:SIZE` sends N binary messages of SIZE bytes.
#[derive(Default)]
pub(crate) struct Recorder {
    events: Mutex<Vec<Event>>,
    changed: Notify,
    connections: Mutex<Vec<Connection>>,
}

impl Recorder {
    pub(crate) fn events(&self) -> Vec<Event> {
        self.events.lock().clone()
    }

    pub(crate) fn connection(&self, id: ConnId) -> Option<Connection> {
        self.connections
            .lock()
            .iter()
            .find(|c| c.id() == id)
            .cloned()
    }

    /// Waits until `found` returns `Some` over the events (panics after
    /// `timeout`, showing every event).
    pub(crate) async fn wait_for<T>(
        &self,
        timeout: Duration,
        found: impl Fn(&[Event]) -> Option<T>,
    ) -> T {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let changed = self.changed.notified();
            if let Some(value) = found(&self.events.lock()) {
                return value;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                panic!("timed out after {timeout:?}; events: {:#?}", self.events());
            }
        }
    }

    pub(crate) async fn closed(&self, id: ConnId, timeout: Duration) -> CloseReason {
        self.wait_for(timeout, |events| {
            events.iter().find_map(|e| match e {
                Event::Close(closed, reason) if *closed == id => Some(*reason),
                _ => None,
            })
        })
        .await
    }

    pub(crate) async fn opened(&self, nth: usize, timeout: Duration) -> ConnId {
        self.wait_for(timeout, |events| {
            events
                .iter()
                .filter_map(|e| match e {
                    Event::Open(id) => Some(*id),
                    _ => None,
                })
                .nth(nth)
        })
        .await
    }

    /// Fails, showing every event, if connection `id` has been closed.
    #[track_caller]
    pub(crate) fn assert_open(&self, id: ConnId) {
        let events = self.events();
        assert!(
            !events
                .iter()
                .any(|e| matches!(e, Event::Close(closed, _) if *closed == id)),
            "{events:?}"
        );
    }

    fn record(&self, event: Event) {
        self.events.lock().push(event);
        self.changed.notify_waiters();
    }
}

impl Handler for Recorder {
    fn on_open(&self, conn: &Connection) {
        self.connections.lock().push(conn.clone());
        self.record(Event::Open(conn.id()));
    }

    fn on_message(&self, conn: &Connection, message: Message) {
        if let Message::Text(text) = &message {
            let text = std::str::from_utf8(text).expect("text is UTF-8");
            if let Some(rest) = text.strip_prefix("echo:") {
                let _ = conn.send_text(rest.to_owned());
            } else if let Some(ms) = text.strip_prefix("stall:") {
                let ms: u64 = ms.parse().expect("stall:MS");
                std::thread::sleep(Duration::from_millis(ms));
            } else if let Some(spec) = text.strip_prefix("flood:") {
                let (count, size) = spec.split_once(':').expect("flood:N:SIZE");
                let payload = Bytes::from(vec![b'x'; size.parse().expect("size")]);
                for _ in 0..count.parse::<usize>().expect("count") {
                    let _ = conn.send_binary(payload.clone());
                }
            }
        }
        self.record(Event::Message(conn.id(), message));
    }

    fn on_liveness(&self, conn: &Connection, suspect: bool) {
        self.record(Event::Liveness(conn.id(), suspect));
    }

    fn on_close(&self, conn: &Connection, reason: CloseReason) {
        self.record(Event::Close(conn.id(), reason));
    }
}

/// vigil-ws embedded in a plain hyper server on a loopback port.
pub(crate) struct TestServer {
    pub(crate) addr: SocketAddr,
    pub(crate) ws: WsServer,
    pub(crate) recorder: Arc<Recorder>,
    accept: tokio::task::JoinHandle<()>,
}

impl TestServer {
    pub(crate) async fn start(config: WsConfig) -> Self {
        Self::start_on("127.0.0.1:0".parse().expect("valid"), config).await
    }

    pub(crate) async fn start_on(addr: SocketAddr, config: WsConfig) -> Self {
        let recorder = Arc::new(Recorder::default());
        let ws = WsServer::start(config, Arc::clone(&recorder) as Arc<dyn Handler>).expect("start");
        let listener = TcpListener::bind(addr).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = ws.clone();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let server = server.clone();
                tokio::spawn(async move { server.serve_upgrades(stream).await });
            }
        });
        Self {
            addr,
            ws,
            recorder,
            accept,
        }
    }

    pub(crate) async fn stop(self) {
        self.accept.abort();
        self.ws.shutdown(Duration::from_secs(3)).await;
    }
}

/// A client that writes frames byte by byte if asked, and can break rules;
/// over TCP, or any stream (TLS).
pub(crate) struct RawClient<S = TcpStream> {
    pub(crate) stream: S,
    buf: Vec<u8>,
}

pub(crate) const TEXT: u8 = 0x1;
pub(crate) const BINARY: u8 = 0x2;
pub(crate) const CONTINUATION: u8 = 0x0;
pub(crate) const CLOSE: u8 = 0x8;
pub(crate) const PING: u8 = 0x9;
pub(crate) const PONG: u8 = 0xA;

/// A masked client frame: `first` is the first header byte (FIN, RSV,
/// opcode), so tests can set reserved bits or clear FIN.
pub(crate) fn frame(first: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    let mut out = vec![first];
    let mask_bit = if masked { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => out.push(mask_bit | n as u8),
        n if n < 65_536 => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    let key = [0xA1, 0x5B, 0x07, 0xE3];
    if masked {
        out.extend_from_slice(&key);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    } else {
        out.extend_from_slice(payload);
    }
    out
}

pub(crate) fn fin(opcode: u8) -> u8 {
    0x80 | opcode
}

impl RawClient {
    pub(crate) fn from_stream(stream: TcpStream) -> Self {
        Self {
            stream,
            buf: Vec::new(),
        }
    }

    pub(crate) async fn connect(addr: SocketAddr) -> Self {
        Self::handshake(TcpStream::connect(addr).await.expect("connect"), addr).await
    }

    /// Connects with a small receive buffer, so the server's writes back up
    /// into its own queue instead of the kernel's.
    pub(crate) async fn connect_with_receive_buffer(addr: SocketAddr, bytes: u32) -> Self {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(bytes).expect("SO_RCVBUF");
        Self::handshake(socket.connect(addr).await.expect("connect"), addr).await
    }

    /// The socket and whatever was read past the handshake.
    pub(crate) fn into_parts(self) -> (TcpStream, Vec<u8>) {
        (self.stream, self.buf)
    }
}

impl<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin> RawClient<S> {
    /// Whatever arrives within `timeout`, as text.
    pub(crate) async fn read_available(&mut self, timeout: Duration) -> String {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut chunk = [0u8; 4096];
        while let Ok(Ok(n)) = tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await
        {
            if n == 0 {
                break;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
        String::from_utf8_lossy(&std::mem::take(&mut self.buf)).into_owned()
    }

    /// Upgrades `stream` (connected to `addr`) to a WebSocket.
    pub(crate) async fn handshake(mut stream: S, addr: SocketAddr) -> Self {
        let request = format!(
            "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        stream
            .write_all(request.as_bytes())
            .await
            .expect("write handshake");
        let mut client = Self {
            stream,
            buf: Vec::new(),
        };
        let head = client.read_http_head().await;
        assert!(head.starts_with("HTTP/1.1 101"), "not upgraded: {head}");
        client
    }

    /// Reads an HTTP response head (and leaves what follows in the buffer).
    pub(crate) async fn read_http_head(&mut self) -> String {
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head: Vec<u8> = self.buf.drain(..end + 4).collect();
                return String::from_utf8_lossy(&head).into_owned();
            }
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout(Duration::from_secs(5), self.stream.read(&mut chunk))
                .await
                .expect("response in time")
                .expect("read");
            assert!(
                n > 0,
                "closed before a response: {:?}",
                String::from_utf8_lossy(&self.buf)
            );
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    pub(crate) async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
    }

    /// Writes `bytes` unless the socket stays full (or fails) for
    /// `timeout`; whether it was written.
    pub(crate) async fn try_send(&mut self, bytes: &[u8], timeout: Duration) -> bool {
        matches!(
            tokio::time::timeout(timeout, self.stream.write_all(bytes)).await,
            Ok(Ok(()))
        )
    }

    /// Reads one server frame: (first header byte, payload). `None` on EOF
    /// or after `timeout`.
    pub(crate) async fn read_frame(&mut self, timeout: Duration) -> Option<(u8, Vec<u8>)> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some((first, payload, used)) = parse_server_frame(&self.buf) {
                self.buf.drain(..used);
                return Some((first, payload));
            }
            let mut chunk = [0u8; 65_536];
            let read = tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await;
            match read {
                Ok(Ok(n)) if n > 0 => self.buf.extend_from_slice(&chunk[..n]),
                _ => return None,
            }
        }
    }

    /// Reads frames until a close frame; returns its code and reason.
    pub(crate) async fn read_close(&mut self, timeout: Duration) -> Option<(u16, String)> {
        loop {
            let (first, payload) = self.read_frame(timeout).await?;
            if first & 0x0F == CLOSE {
                let code = u16::from_be_bytes([payload[0], payload[1]]);
                return Some((code, String::from_utf8_lossy(&payload[2..]).into_owned()));
            }
        }
    }

    /// Answers pings (protocol or app-level) until `until`, returning every
    /// other frame.
    pub(crate) async fn answer_pings_for(&mut self, duration: Duration) -> Vec<(u8, Vec<u8>)> {
        let deadline = tokio::time::Instant::now() + duration;
        let mut others = Vec::new();
        while let Some(left) = deadline.checked_duration_since(tokio::time::Instant::now()) {
            let Some((first, payload)) = self.read_frame(left).await else {
                break;
            };
            if first & 0x0F == PING {
                self.send(&frame(fin(PONG), &payload, true)).await;
            } else {
                others.push((first, payload));
            }
        }
        others
    }

    /// True once the server closed the TCP connection (EOF within timeout).
    pub(crate) async fn sees_eof(&mut self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let mut chunk = [0u8; 65_536];
            match tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => continue,
                Err(_) => return false,
            }
        }
    }
}

pub(crate) fn parse_server_frame(buf: &[u8]) -> Option<(u8, Vec<u8>, usize)> {
    let [first, second, ..] = *buf else {
        return None;
    };
    assert_eq!(second & 0x80, 0, "server frames are never masked");
    let (len, head) = match second & 0x7F {
        126 => (
            usize::from(u16::from_be_bytes([*buf.get(2)?, *buf.get(3)?])),
            4,
        ),
        127 => {
            let bytes: [u8; 8] = buf.get(2..10)?.try_into().ok()?;
            (u64::from_be_bytes(bytes) as usize, 10)
        }
        n => (usize::from(n), 2),
    };
    let payload = buf.get(head..head + len)?.to_vec();
    Some((first, payload, head + len))
}

/// A well-behaved idle client: fastwebsockets with auto-pong, reading all
/// the time on its own task.
pub(crate) struct GoodClient {
    is_closed: Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl GoodClient {
    pub(crate) async fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).await.expect("connect");
        let request = hyper::Request::builder()
            .uri(format!("http://{addr}/ws"))
            .header("Host", addr.to_string())
            .header("Upgrade", "websocket")
            .header("Connection", "upgrade")
            .header(
                "Sec-WebSocket-Key",
                fastwebsockets::handshake::generate_key(),
            )
            .header("Sec-WebSocket-Version", "13")
            .body(Empty::<Bytes>::new())
            .expect("request");
        let (mut ws, _) = fastwebsockets::handshake::client(&Spawn, request, stream)
            .await
            .expect("handshake");
        ws.set_auto_pong(true);
        let is_closed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = Arc::clone(&is_closed);
        let task = tokio::spawn(async move {
            // One read at a time, never dropped: read_frame is not cancel-safe.
            while let Ok(frame) = ws.read_frame().await {
                if frame.opcode as u8 == CLOSE {
                    break;
                }
            }
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        Self { is_closed, task }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.is_closed.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for GoodClient {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A client that answers every protocol ping after `delay`, as a healthy
/// but slow (or far away) peer does.
pub(crate) struct DelayedPonger {
    closed: Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl DelayedPonger {
    pub(crate) async fn connect(addr: SocketAddr, delay: Duration) -> Self {
        let mut client = RawClient::connect(addr).await;
        let closed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = Arc::clone(&closed);
        let task = tokio::spawn(async move {
            // Bounded by the test: the task is aborted on drop.
            while let Some((first, payload)) = client.read_frame(Duration::from_secs(60)).await {
                match first & 0x0F {
                    PING => {
                        tokio::time::sleep(delay).await;
                        client.send(&frame(fin(PONG), &payload, true)).await;
                    }
                    CLOSE => break,
                    _ => {}
                }
            }
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        Self { closed, task }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for DelayedPonger {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Spawn;

impl<F> hyper::rt::Executor<F> for Spawn
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, future: F) {
        tokio::spawn(future);
    }
}
