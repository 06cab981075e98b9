//! Every way a connection ends carries its reason: the application's close
//! (code and reason on the wire), an unanswered close, a shutdown, a write
//! that never progresses; and a slow pong shows as suspect, then recovered.

use crate::support::*;
use std::time::Duration;
use vigil_ws::CloseReason;

#[tokio::test]
async fn the_application_closes_with_its_code_and_reason() {
    let server = TestServer::start(fast_config()).await;
    let mut client = RawClient::connect(server.addr).await;
    let id = server.recorder.opened(0, Duration::from_secs(5)).await;
    let conn = server.recorder.connection(id).expect("open");
    conn.close(4000, "bye now").expect("queued");
    let (code, reason) = client
        .read_close(Duration::from_secs(5))
        .await
        .expect("a close frame");
    assert_eq!((code, reason.as_str()), (4000, "bye now"));
    client
        .send(&frame(fin(CLOSE), &4000u16.to_be_bytes(), true))
        .await;
    let closed = server.recorder.closed(id, Duration::from_secs(3)).await;
    assert_eq!(closed, CloseReason::Closed { code: 4000 });
    assert!(!closed.is_abnormal());
    server.stop().await;
}

#[tokio::test]
async fn after_our_close_frame_the_peers_data_is_no_longer_a_message() {
    let server = TestServer::start(fast_config()).await;
    let mut client = RawClient::connect(server.addr).await;
    let id = server.recorder.opened(0, Duration::from_secs(5)).await;
    client.send(&frame(fin(TEXT), b"before", true)).await;
    server
        .recorder
        .wait_for(Duration::from_secs(5), |events| {
            events
                .iter()
                .find(|e| matches!(e, Event::Message(..)))
                .map(|_| ())
        })
        .await;
    let conn = server.recorder.connection(id).expect("open");
    conn.close(1008, "enough").expect("queued");
    client
        .read_close(Duration::from_secs(5))
        .await
        .expect("our close frame");
    // A peer that keeps talking instead of closing: not the application's
    // business any more (it closed), and no cost of a message each.
    for _ in 0..50 {
        client.send(&frame(fin(TEXT), b"after", true)).await;
    }
    client
        .send(&frame(fin(CLOSE), &1008u16.to_be_bytes(), true))
        .await;
    let closed = server.recorder.closed(id, Duration::from_secs(3)).await;
    assert_eq!(closed, CloseReason::Closed { code: 1008 });
    let messages = server
        .recorder
        .events()
        .into_iter()
        .filter(|e| matches!(e, Event::Message(..)))
        .count();
    assert_eq!(messages, 1, "only the message sent before the close");
    server.stop().await;
}

#[tokio::test]
async fn a_close_the_peer_never_answers_times_out() {
    let server = TestServer::start(fast_config()).await;
    let mut client = RawClient::connect(server.addr).await;
    let id = server.recorder.opened(0, Duration::from_secs(5)).await;
    server
        .recorder
        .connection(id)
        .expect("open")
        .close(1000, "done")
        .expect("queued");
    client
        .read_close(Duration::from_secs(5))
        .await
        .expect("a close frame");
    // The client never answers: the close timeout (1 s) ends it.
    let closed = server.recorder.closed(id, Duration::from_secs(4)).await;
    assert_eq!(closed, CloseReason::CloseTimeout);
    assert!(client.sees_eof(Duration::from_secs(2)).await);
    server.stop().await;
}

#[tokio::test]
async fn a_shutdown_tells_clients_to_go_with_1001_and_says_so() {
    let server = TestServer::start(fast_config()).await;
    let mut client = RawClient::connect(server.addr).await;
    let id = server.recorder.opened(0, Duration::from_secs(5)).await;
    let recorder = std::sync::Arc::clone(&server.recorder);
    let stopping = tokio::spawn(server.stop());
    let (code, reason) = client
        .read_close(Duration::from_secs(5))
        .await
        .expect("a close frame");
    assert_eq!(code, 1001);
    assert!(reason.contains("reconnect"), "{reason:?}");
    client
        .send(&frame(fin(CLOSE), &1001u16.to_be_bytes(), true))
        .await;
    assert_eq!(
        recorder.closed(id, Duration::from_secs(5)).await,
        CloseReason::Shutdown
    );
    stopping.await.expect("shutdown finished");
}

#[tokio::test]
async fn a_write_that_never_progresses_hits_the_write_deadline() {
    // A heartbeat far slower than the 1 s write deadline, so only the write
    // deadline can end this connection.
    let config = vigil_ws::WsConfig {
        heartbeat: vigil_core::heartbeat::Config::builder()
            .interval(Duration::from_secs(10))
            .timeout(Duration::from_secs(10))
            .build()
            .expect("valid"),
        write_timeout: Duration::from_secs(1),
        ..fast_config()
    };
    let server = TestServer::start(config).await;
    let mut client = RawClient::connect_with_receive_buffer(server.addr, 16 << 10).await;
    let id = server.recorder.opened(0, Duration::from_secs(5)).await;
    // One 8 MiB message (more than the kernel buffers) to a client that
    // stops reading: not a slow consumer by queue size, but stuck.
    client
        .send(&frame(fin(TEXT), b"flood:1:8388608", true))
        .await;
    let closed = server.recorder.closed(id, Duration::from_secs(8)).await;
    assert_eq!(closed, CloseReason::WriteTimeout);
    assert!(closed.is_abnormal());
    server.stop().await;
}

#[tokio::test]
async fn a_late_pong_shows_the_peer_as_suspect_then_recovered() {
    let server = TestServer::start(fast_config()).await;
    // Pongs 700 ms late: past half the 1 s timeout, inside all of it.
    let peer = DelayedPonger::connect(server.addr, Duration::from_millis(700)).await;
    let id = server.recorder.opened(0, Duration::from_secs(5)).await;
    let changes = server
        .recorder
        .wait_for(Duration::from_secs(6), |events| {
            let changes: Vec<bool> = events
                .iter()
                .filter_map(|e| match e {
                    Event::Liveness(from, suspect) if *from == id => Some(*suspect),
                    _ => None,
                })
                .collect();
            (changes.len() >= 2).then_some(changes)
        })
        .await;
    assert_eq!(&changes[..2], [true, false]);
    assert!(server.ws.metrics().suspects >= 1);
    assert!(!peer.is_closed());
    server.stop().await;
}
