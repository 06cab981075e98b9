//! Half-open connections: a proxy between client and server stops
//! forwarding in both directions without closing anything. Both sides must
//! notice on their own.

use crate::support::*;
use parking_lot::Mutex;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use vigil_core::backoff::BackoffConfig;
use vigil_ws::{CloseReason, Connector};

/// Forwards bytes between clients and `upstream`. `swallow` turns every
/// connection open at that moment into a black hole: bytes vanish in both
/// directions and no end of stream is passed on. Later connections work.
struct BlackholeProxy {
    addr: SocketAddr,
    holes: Arc<Mutex<Vec<Arc<AtomicBool>>>>,
    task: tokio::task::JoinHandle<()>,
}

impl BlackholeProxy {
    async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let holes: Arc<Mutex<Vec<Arc<AtomicBool>>>> = Arc::default();
        let registry = Arc::clone(&holes);
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                let Ok(server) = TcpStream::connect(upstream).await else {
                    continue;
                };
                let hole = Arc::new(AtomicBool::new(false));
                registry.lock().push(Arc::clone(&hole));
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                tokio::spawn(pump(cr, sw, Arc::clone(&hole)));
                tokio::spawn(pump(sr, cw, hole));
            }
        });
        Self { addr, holes, task }
    }

    /// Stops forwarding on every connection open now.
    fn swallow(&self) {
        for hole in self.holes.lock().iter() {
            hole.store(true, Ordering::SeqCst);
        }
    }
}

impl Drop for BlackholeProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    hole: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; 16 << 10];
    // Bounded: the loop ends on EOF or error, and the test's runtime (which
    // owns these tasks) ends with the test.
    loop {
        let read = from.read(&mut buf).await;
        if hole.load(Ordering::SeqCst) {
            // Swallowed: no data, and not even the end of the stream; the
            // other side keeps its socket open, as across a dead network.
            if matches!(read, Ok(0) | Err(_)) {
                let _keep_open = to;
                std::future::pending::<()>().await;
                return;
            }
            continue;
        }
        let Ok(n) = read else { return };
        if n == 0 {
            return;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

#[tokio::test]
async fn both_ends_detect_a_half_open_connection_and_the_client_reconnects() {
    let server = TestServer::start(fast_config()).await;
    let proxy = BlackholeProxy::start(server.addr).await;
    let client_events = Arc::new(Recorder::default());
    let backoff = BackoffConfig::builder()
        .initial_max(Duration::from_millis(200))
        .base(Duration::from_millis(100))
        .cap(Duration::from_secs(1))
        .build()
        .expect("valid");
    let connector = Connector::new(format!("ws://{}/ws", proxy.addr), fast_config(), backoff)
        .spawn(Arc::clone(&client_events) as Arc<dyn vigil_ws::Handler>)
        .expect("spawn");
    connector
        .connected(Duration::from_secs(5))
        .await
        .expect("connected");
    let server_side = server.recorder.opened(0, Duration::from_secs(5)).await;
    let client_side = client_events.opened(0, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(1_500)).await; // a few healthy heartbeats

    proxy.swallow();
    // Neither side hears anything more; both must close within the bound
    // (interval + timeout + jitter + 1 s = 3.1 s, generously 6 s).
    let server_reason = server
        .recorder
        .closed(server_side, Duration::from_secs(6))
        .await;
    let client_reason = client_events
        .closed(client_side, Duration::from_secs(6))
        .await;
    assert_eq!(server_reason, CloseReason::HeartbeatTimeout);
    assert_eq!(client_reason, CloseReason::HeartbeatTimeout);

    // The client reconnects by itself over a fresh (working) connection.
    server.recorder.opened(1, Duration::from_secs(10)).await;
    client_events.opened(1, Duration::from_secs(5)).await;
    assert_eq!(connector.connects(), 2);
    connector.stop().await;
    server.stop().await;
}
