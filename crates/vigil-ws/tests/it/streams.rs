//! Connections over a general stream ([`WsServer::adopt_stream`]), here an
//! in-memory pipe with a small buffer: no socket, no reactor readiness, only
//! the stream's own wakeups. The same machine serves them: pings answered
//! keep them, silence drops them within the bound, a reader that stops is a
//! slow consumer, and a peer's close is a clean close.

use crate::support::*;
use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use vigil_ws::{CloseReason, Handler, WsServer};

/// The client's end of a pipe whose other end the server adopted.
struct PipeClient {
    pipe: DuplexStream,
    buf: Vec<u8>,
}

impl PipeClient {
    async fn read_frame(&mut self, timeout: Duration) -> Option<(u8, Vec<u8>)> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some((first, payload, used)) = parse_server_frame(&self.buf) {
                self.buf.drain(..used);
                return Some((first, payload));
            }
            let mut chunk = [0u8; 4096];
            match tokio::time::timeout_at(deadline, self.pipe.read(&mut chunk)).await {
                Ok(Ok(n)) if n > 0 => self.buf.extend_from_slice(&chunk[..n]),
                _ => return None,
            }
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.pipe.write_all(bytes).await.expect("write");
    }
}

/// A server and one adopted pipe of `buffer` bytes each way.
async fn adopted(buffer: usize) -> (WsServer, Arc<Recorder>, PipeClient) {
    let recorder = Arc::new(Recorder::default());
    let ws =
        WsServer::start(fast_config(), Arc::clone(&recorder) as Arc<dyn Handler>).expect("start");
    let (server_end, client_end) = tokio::io::duplex(buffer);
    ws.adopt_stream(server_end, Bytes::new()).expect("adopted");
    recorder.opened(0, Duration::from_secs(5)).await;
    let client = PipeClient {
        pipe: client_end,
        buf: Vec::new(),
    };
    (ws, recorder, client)
}

#[tokio::test]
async fn a_pipe_that_answers_pings_stays_and_one_that_falls_silent_is_dropped() {
    let (ws, recorder, mut client) = adopted(4096).await;
    let mut pongs = 0;
    let until = tokio::time::Instant::now() + Duration::from_secs(4);
    while tokio::time::Instant::now() < until {
        let Some((first, payload)) = client.read_frame(Duration::from_secs(3)).await else {
            panic!("the server went quiet; events: {:?}", recorder.events());
        };
        if first & 0x0F == PING {
            client.send(&frame(fin(PONG), &payload, true)).await;
            pongs += 1;
        }
    }
    assert!(pongs >= 2, "answered {pongs} pings");
    assert!(
        recorder
            .events()
            .iter()
            .all(|e| !matches!(e, Event::Close(..)))
    );
    // Now silence: the bound is interval + timeout (2.1 s) plus slack.
    let id = recorder.opened(0, Duration::from_secs(1)).await;
    let reason = recorder.closed(id, Duration::from_secs(6)).await;
    assert_eq!(reason, CloseReason::HeartbeatTimeout);
    assert_eq!(ws.metrics().streams_opened, 1);
    ws.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn a_pipe_nobody_reads_is_closed_as_a_slow_consumer() {
    let (ws, recorder, mut client) = adopted(1024).await;
    // 16 MiB towards a pipe of 1 KiB that is never read again: the
    // stream's writes go pending, the queue fills, the peer is closed.
    client
        .send(&frame(fin(TEXT), b"flood:256:65536", true))
        .await;
    let id = recorder.opened(0, Duration::from_secs(1)).await;
    let reason = recorder.closed(id, Duration::from_secs(15)).await;
    assert!(
        matches!(
            reason,
            CloseReason::SlowConsumer | CloseReason::WriteTimeout
        ),
        "{reason:?}"
    );
    ws.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn echo_and_a_clean_close_over_a_pipe() {
    let (ws, recorder, mut client) = adopted(64).await;
    // Larger than the pipe: both directions go through pending writes.
    let text = format!("echo:{}", "x".repeat(10_000));
    client.send(&frame(fin(TEXT), text.as_bytes(), true)).await;
    let echoed = loop {
        let (first, payload) = client
            .read_frame(Duration::from_secs(5))
            .await
            .expect("the echo");
        // (The server's hello comes first.)
        if first & 0x0F == TEXT && payload.first() == Some(&b'x') {
            break payload;
        }
    };
    assert_eq!(echoed.len(), 10_000);
    client
        .send(&frame(fin(CLOSE), &1000u16.to_be_bytes(), true))
        .await;
    let id = recorder.opened(0, Duration::from_secs(1)).await;
    let reason = recorder.closed(id, Duration::from_secs(5)).await;
    assert_eq!(reason, CloseReason::PeerClosed { code: Some(1000) });
    ws.shutdown(Duration::from_secs(1)).await;
}
