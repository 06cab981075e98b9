//! Slow readers are closed without hurting anyone else, and pongs never wait
//! behind large messages.

use crate::support::*;
use std::time::Duration;
use vigil_ws::CloseReason;

#[tokio::test]
async fn a_slow_reader_is_closed_and_others_keep_a_low_rtt() {
    let server = TestServer::start(fast_config()).await;
    let healthy = GoodClient::connect(server.addr).await;
    let healthy_id = server.recorder.opened(0, Duration::from_secs(5)).await;
    let mut slow = RawClient::connect(server.addr).await;
    let slow_id = server.recorder.opened(1, Duration::from_secs(5)).await;
    // 64 MiB towards a client that never reads: its socket buffers fill,
    // then its bounded queue, and it is closed.
    slow.send(&frame(fin(TEXT), b"flood:1024:65536", true))
        .await;
    let reason = server
        .recorder
        .closed(slow_id, Duration::from_secs(15))
        .await;
    assert!(
        matches!(
            reason,
            CloseReason::SlowConsumer | CloseReason::WriteTimeout
        ),
        "{reason:?}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!healthy.is_closed());
    let liveness = server
        .recorder
        .connection(healthy_id)
        .expect("open")
        .liveness()
        .await
        .expect("still alive");
    let rtt = liveness.srtt.expect("measured");
    assert!(rtt < Duration::from_millis(500), "bystander RTT {rtt:?}");
    server.stop().await;
}

#[tokio::test]
async fn pings_and_pongs_are_not_stuck_behind_large_messages() {
    let config = vigil_ws::WsConfig {
        max_queued_bytes: 32 << 20,
        ..fast_config()
    };
    let server = TestServer::start(config).await;
    let mut client = RawClient::connect_with_receive_buffer(server.addr, 64 << 10).await;
    let id = server.recorder.opened(0, Duration::from_secs(5)).await;
    // The server sends 16 MiB, more than the kernel buffers hold; the
    // client reads 1 MiB per 200 ms and answers pings as soon as it sees
    // them. The server's pings must overtake the data still queued.
    client
        .send(&frame(fin(TEXT), b"flood:16:1048576", true))
        .await;
    let mut pings_seen_mid_transfer = 0;
    let mut data = 0usize;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while data < 16 << 20 && tokio::time::Instant::now() < deadline {
        let Some((first, payload)) = client.read_frame(Duration::from_secs(3)).await else {
            break;
        };
        match first & 0x0F {
            PING => {
                if data > 0 {
                    pings_seen_mid_transfer += 1;
                }
                client.send(&frame(fin(PONG), &payload, true)).await;
            }
            BINARY | CONTINUATION => {
                data += payload.len();
                if data % (1 << 20) < payload.len() {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
            _ => {}
        }
    }
    assert_eq!(data, 16 << 20, "all data arrived");
    assert!(
        pings_seen_mid_transfer >= 1,
        "no ping interleaved with the large messages"
    );
    server.recorder.assert_open(id);
    server.stop().await;
}

/// Reads data frames from `client` for up to `limit` bytes, 1 MiB per 200 ms,
/// answering protocol and app-level pings; returns (data frames as
/// (first byte, length), whether a ping arrived inside a fragmented message).
async fn read_slowly(client: &mut RawClient, limit: usize) -> (Vec<(u8, usize)>, bool) {
    let mut frames = Vec::new();
    let mut data = 0usize;
    let mut in_message = false;
    let mut ping_inside_message = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while data < limit && tokio::time::Instant::now() < deadline {
        let Some((first, payload)) = client.read_frame(Duration::from_secs(3)).await else {
            break;
        };
        match first & 0x0F {
            PING => {
                ping_inside_message |= in_message;
                client.send(&frame(fin(PONG), &payload, true)).await;
            }
            TEXT if payload.starts_with(br#"{"type":"ping","id":"#) => {
                let id = &payload[br#"{"type":"ping","id":"#.len()..];
                let pong = [&br#"{"type":"pong","id":"#[..], id].concat();
                client.send(&frame(fin(TEXT), &pong, true)).await;
            }
            BINARY | CONTINUATION => {
                in_message = first & 0x80 == 0;
                frames.push((first, payload.len()));
                data += payload.len();
                if data % (1 << 20) < payload.len() {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
            _ => {}
        }
    }
    (frames, ping_inside_message)
}

#[tokio::test]
async fn one_large_message_is_cut_into_fragments_with_pings_between_them() {
    let config = vigil_ws::WsConfig {
        max_queued_bytes: 32 << 20,
        ..fast_config()
    };
    let fragment_size = config.fragment_size;
    let server = TestServer::start(config).await;
    let mut client = RawClient::connect_with_receive_buffer(server.addr, 64 << 10).await;
    let id = server.recorder.opened(0, Duration::from_secs(5)).await;
    client
        .send(&frame(fin(TEXT), b"flood:1:16777216", true))
        .await;
    let (frames, ping_inside) = read_slowly(&mut client, 16 << 20).await;
    let total: usize = frames.iter().map(|(_, len)| len).sum();
    assert_eq!(total, 16 << 20);
    assert!(
        frames.iter().all(|(_, len)| *len <= fragment_size),
        "a frame over {fragment_size} B"
    );
    assert_eq!(
        frames.iter().filter(|(first, _)| first & 0x80 != 0).count(),
        1,
        "one message"
    );
    assert!(ping_inside, "no ping between the fragments of the message");
    server.recorder.assert_open(id);
    server.stop().await;
}

#[tokio::test]
async fn a_browser_receiving_a_large_backlog_is_not_closed() {
    // App-level pings cannot go inside a fragmented message; the message's
    // own progress keeps the reading client alive.
    let config = vigil_ws::WsConfig {
        mode: vigil_ws::HeartbeatMode::AppText,
        max_queued_bytes: 32 << 20,
        ..fast_config()
    };
    let server = TestServer::start(config).await;
    let mut client = RawClient::connect_with_receive_buffer(server.addr, 64 << 10).await;
    let id = server.recorder.opened(0, Duration::from_secs(5)).await;
    client
        .send(&frame(fin(TEXT), b"flood:1:16777216", true))
        .await;
    let (frames, _) = read_slowly(&mut client, 16 << 20).await;
    let total: usize = frames.iter().map(|(_, len)| len).sum();
    assert_eq!(total, 16 << 20, "the whole backlog arrived");
    server.recorder.assert_open(id);
    server.stop().await;
}

/// An `echo:` request whose answer is 10,000 bytes.
fn echo_request() -> Vec<u8> {
    frame(
        fin(TEXT),
        format!("echo:{}", "x".repeat(10_000)).as_bytes(),
        true,
    )
}

#[tokio::test]
async fn a_client_that_asks_without_reading_is_not_read_either() {
    let server = TestServer::start(fast_config()).await;
    let mut asker = RawClient::connect_with_receive_buffer(server.addr, 64 << 10).await;
    let id = server.recorder.opened(0, Duration::from_secs(5)).await;
    // 40 MB of answers asked for, none read: the server stops reading the
    // requests once its answers back up, so the asker's writes block.
    let request = echo_request();
    let mut sent = 0;
    while sent < 4_000 && asker.try_send(&request, Duration::from_secs(1)).await {
        sent += 1;
    }
    assert!(sent < 4_000, "every request was taken");
    let reason = server.recorder.closed(id, Duration::from_secs(15)).await;
    // Its writes stalled (or its pongs went unread): never a queue grown
    // to the slow-consumer bound out of its own requests.
    assert!(
        matches!(
            reason,
            CloseReason::WriteTimeout | CloseReason::HeartbeatTimeout
        ),
        "{reason:?} after {} requests read",
        server.ws.metrics().messages_received
    );
    server.stop().await;
}

#[tokio::test]
async fn a_client_that_reads_its_answers_late_gets_every_one() {
    // Long heartbeats: this client reads nothing for a while on purpose.
    let config = vigil_ws::WsConfig {
        heartbeat: vigil_core::heartbeat::Config::builder()
            .interval(Duration::from_secs(30))
            .timeout(Duration::from_secs(30))
            .build()
            .expect("valid"),
        write_timeout: Duration::from_secs(30),
        ..fast_config()
    };
    let server = TestServer::start(config).await;
    let client = RawClient::connect_with_receive_buffer(server.addr, 64 << 10).await;
    let id = server.recorder.opened(0, Duration::from_secs(5)).await;
    let (stream, mut buf) = client.into_parts();
    let (mut read_half, mut write_half) = stream.into_split();
    const ASKED: usize = 2_000; // 20 MB of answers, five times the queue bound
    let writer = tokio::spawn(async move {
        let request = echo_request();
        for _ in 0..ASKED {
            tokio::io::AsyncWriteExt::write_all(&mut write_half, &request)
                .await
                .expect("write");
        }
        write_half
    });
    // Nothing read for two seconds: the server pauses instead of queueing.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let read_while_paused = server.ws.metrics().messages_received;
    assert!(
        read_while_paused < ASKED as u64,
        "all {read_while_paused} requests read with no answer taken"
    );
    let mut echoes = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut chunk = vec![0u8; 1 << 16];
    while echoes < ASKED {
        while let Some((first, payload, used)) = parse_server_frame(&buf) {
            buf.drain(..used);
            if first & 0x0F == TEXT && payload.len() == 10_000 {
                echoes += 1;
            }
        }
        if echoes == ASKED {
            break;
        }
        let read = tokio::time::timeout_at(
            deadline,
            tokio::io::AsyncReadExt::read(&mut read_half, &mut chunk),
        )
        .await;
        match read {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            other => panic!(
                "after {echoes} echoes: {other:?}; events: {:?}",
                server.recorder.events()
            ),
        }
    }
    let _write_half = writer.await.expect("the writer finished");
    server.recorder.assert_open(id);
    server.stop().await;
}
