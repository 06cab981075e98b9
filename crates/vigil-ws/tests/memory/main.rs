//! Memory is released: after 10,000 connections come and go (in batches,
//! under the 20,000-file limit of this process), the live heap returns to
//! the baseline measured after a warm-up batch.
//!
//! A counting global allocator measures live bytes for the whole process,
//! so this test has its own binary.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use vigil_ws::{CloseReason, Connection, Handler, Message, WsConfig, WsServer};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged; the
// counter is a plain atomic that never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

#[derive(Default)]
struct Counter {
    opened: AtomicUsize,
    closed: AtomicUsize,
}

impl Handler for Counter {
    fn on_open(&self, _: &Connection) {
        self.opened.fetch_add(1, Ordering::SeqCst);
    }

    fn on_message(&self, _: &Connection, _: Message) {}

    fn on_close(&self, _: &Connection, _: CloseReason) {
        self.closed.fetch_add(1, Ordering::SeqCst);
    }
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..300 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Opens `count` connections, waits until the server holds them all, then
/// closes them and waits until the server released them all.
async fn batch(
    addr: std::net::SocketAddr,
    count: usize,
    counter: &Counter,
    server: &WsServer,
) -> isize {
    let mut clients = Vec::with_capacity(count);
    for _ in 0..count {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let request = format!(
            "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        stream
            .write_all(request.as_bytes())
            .await
            .expect("handshake");
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).await.expect("response");
        assert_eq!(&head, b"HTTP/1.1 101");
        clients.push(stream);
    }
    let opened = counter.opened.load(Ordering::SeqCst);
    wait_until("every connection open", || server.connections() == count).await;
    let peak = LIVE.load(Ordering::Relaxed);
    drop(clients);
    let target = opened;
    wait_until("every connection released", || {
        counter.closed.load(Ordering::SeqCst) >= target && server.connections() == 0
    })
    .await;
    peak
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_connections_come_and_go_without_leaking() {
    const BATCH: usize = 2_000;
    let counter = Arc::new(Counter::default());
    // A short heartbeat, so that the timer entries of connections that are
    // gone come due (and are dropped) within the test.
    let heartbeat = vigil_core::heartbeat::Config::builder()
        .interval(Duration::from_secs(1))
        .timeout(Duration::from_secs(1))
        .build()
        .expect("valid");
    let server = WsServer::start(
        WsConfig {
            heartbeat,
            send_hello: false,
            ..WsConfig::default()
        },
        Arc::clone(&counter) as Arc<dyn Handler>,
    )
    .expect("start");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let ws = server.clone();
    let accept = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let ws = ws.clone();
            tokio::spawn(async move { ws.serve_upgrades(stream).await });
        }
    });

    // Warm-up: the shard's tables and the runtimes reach their working size.
    batch(addr, BATCH, &counter, &server).await;
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let baseline = LIVE.load(Ordering::Relaxed);

    let mut peak_growth = 0;
    let mut after_each = Vec::new();
    for _ in 0..5 {
        let peak = batch(addr, BATCH, &counter, &server).await;
        peak_growth = peak_growth.max(peak - baseline);
        tokio::time::sleep(Duration::from_millis(100)).await;
        after_each.push(LIVE.load(Ordering::Relaxed) - baseline);
    }
    eprintln!("live heap after each batch, minus the baseline: {after_each:?}");
    // Past every timer the departed connections had armed.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let after = LIVE.load(Ordering::Relaxed);
    assert_eq!(counter.closed.load(Ordering::SeqCst), 6 * BATCH);
    // The measurement sees connections (at least 100 bytes each while open)...
    assert!(
        peak_growth > (BATCH * 100) as isize,
        "peak growth {peak_growth} B"
    );
    // ...and none of them stays behind: under 8 bytes per connection that
    // came and went, which a leak of any per-connection object would exceed.
    let leaked = after - baseline;
    eprintln!(
        "live heap: baseline {baseline} B, peak growth {peak_growth} B, after 10,000 connections {leaked:+} B"
    );
    assert!(
        leaked < (5 * BATCH * 8) as isize,
        "live heap grew by {leaked} B over 10,000 connections (baseline {baseline} B, after {after} B)"
    );
    accept.abort();
}
