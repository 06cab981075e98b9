//! Heartbeats over real sockets: healthy peers stay, silent peers go within
//! the bound, app-level pings work for browsers, frames split byte by byte
//! decode while timers fire, and a stalled server kills nobody healthy.

use crate::support::*;
use std::time::Duration;
use vigil_ws::{CloseReason, HeartbeatMode, Message};

#[tokio::test]
async fn a_healthy_peer_is_pinged_measured_and_kept() {
    let server = TestServer::start(fast_config()).await;
    let client = GoodClient::connect(server.addr).await;
    let id = server.recorder.opened(0, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(
        !client.is_closed(),
        "a healthy client was closed: {:?}",
        server.recorder.events()
    );
    let conn = server.recorder.connection(id).expect("open");
    let liveness = conn.liveness().await.expect("alive");
    assert!(liveness.pings_sent >= 2);
    let rtt = liveness.srtt.expect("RTT measured from pongs");
    assert!(rtt < Duration::from_millis(500), "loopback RTT {rtt:?}");
    let metrics = server.ws.metrics();
    assert_eq!(metrics.connections, 1);
    assert_eq!(metrics.opened, 1);
    assert!(
        metrics.pings_sent >= 2 && metrics.pongs_received >= 2,
        "{metrics:?}"
    );
    assert_eq!(metrics.closes.iter().sum::<u64>(), 0);
    server.stop().await;
}

#[tokio::test]
async fn the_first_message_advertises_the_heartbeat() {
    let server = TestServer::start(fast_config()).await;
    let mut client = RawClient::connect(server.addr).await;
    let (first, payload) = client
        .read_frame(Duration::from_secs(5))
        .await
        .expect("hello");
    assert_eq!(first, fin(TEXT));
    assert_eq!(
        String::from_utf8(payload).expect("text"),
        r#"{"type":"heartbeat","interval_ms":1000,"timeout_ms":1000,"mode":"protocol"}"#
    );
    server.stop().await;
}

#[tokio::test]
async fn a_silent_peer_is_closed_within_interval_plus_timeout_plus_jitter_plus_1s() {
    let config = fast_config();
    let bound =
        config.heartbeat.detection_bound() + Duration::from_millis(100) + Duration::from_secs(1);
    let server = TestServer::start(config).await;
    let started = tokio::time::Instant::now();
    let mut silent = RawClient::connect(server.addr).await; // never reads, never writes
    let id = server.recorder.opened(0, Duration::from_secs(5)).await;
    let reason = server
        .recorder
        .closed(id, bound + Duration::from_secs(5))
        .await;
    let took = started.elapsed();
    assert_eq!(reason, CloseReason::HeartbeatTimeout);
    assert!(took <= bound, "closed after {took:?}, bound {bound:?}");
    assert_eq!(
        server
            .ws
            .metrics()
            .closes_for(CloseReason::HeartbeatTimeout),
        1
    );
    assert!(
        silent.sees_eof(Duration::from_secs(2)).await,
        "socket left open"
    );
    server.stop().await;
}

#[tokio::test]
async fn app_level_pings_keep_a_browser_style_client_alive() {
    let config = vigil_ws::WsConfig {
        mode: HeartbeatMode::AppText,
        ..fast_config()
    };
    let server = TestServer::start(config).await;
    let mut client = RawClient::connect(server.addr).await;
    let id = server.recorder.opened(0, Duration::from_secs(5)).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(4);
    let mut answered = 0;
    while let Some(left) = deadline.checked_duration_since(tokio::time::Instant::now()) {
        let Some((first, payload)) = client.read_frame(left).await else {
            break;
        };
        let text = String::from_utf8(payload).expect("text");
        assert_eq!(first, fin(TEXT), "no protocol pings in app mode");
        if let Some(id) = text.strip_prefix(r#"{"type":"ping","id":"#) {
            let pong = format!(r#"{{"type":"pong","id":{id}"#);
            client.send(&frame(fin(TEXT), pong.as_bytes(), true)).await;
            answered += 1;
        }
    }
    assert!(answered >= 2, "answered {answered} app-level pings");
    // The client may also ping the server to watch it.
    client
        .send(&frame(fin(TEXT), br#"{"type":"ping","id":77}"#, true))
        .await;
    let others = client.answer_pings_for(Duration::from_millis(500)).await;
    let pong = others
        .iter()
        .any(|(_, p)| p == br#"{"type":"pong","id":77}"#);
    assert!(pong, "no app-level pong: {others:?}");
    let events = server.recorder.events();
    assert!(
        !events.iter().any(|e| matches!(e, Event::Close(..))),
        "{events:?}"
    );
    assert!(
        !events.iter().any(|e| matches!(e, Event::Message(..))),
        "heartbeat frames must not reach the application: {events:?}"
    );
    let liveness = server
        .recorder
        .connection(id)
        .expect("open")
        .liveness()
        .await
        .expect("alive");
    assert!(liveness.srtt.is_some(), "app-level pongs give RTT samples");
    server.stop().await;
}

#[tokio::test]
async fn a_message_trickled_byte_by_byte_while_timers_fire_arrives_whole() {
    // Ping after 1 s of silence, but 3 s to answer: the ping timer fires in
    // the middle of the trickle and the trickle ends well before the kill.
    let mut config = fast_config();
    config.heartbeat = vigil_core::heartbeat::Config::builder()
        .interval(Duration::from_secs(1))
        .timeout(Duration::from_secs(3))
        .build()
        .expect("valid");
    let server = TestServer::start(config).await;
    let mut client = RawClient::connect(server.addr).await;
    let id = server.recorder.opened(0, Duration::from_secs(5)).await;
    let text = "byte by byte ✓ ".repeat(3);
    let wire = frame(fin(TEXT), text.as_bytes(), true);
    // ~1.5 s of trickling: the server's ping timer fires in the middle.
    let gap = Duration::from_millis(1_500 / wire.len() as u64);
    for byte in &wire {
        client.send(std::slice::from_ref(byte)).await;
        tokio::time::sleep(gap).await;
    }
    client.answer_pings_for(Duration::from_millis(300)).await;
    let got = server
        .recorder
        .wait_for(Duration::from_secs(5), |events| {
            events.iter().find_map(|e| match e {
                Event::Message(from, Message::Text(t)) if *from == id => Some(t.clone()),
                _ => None,
            })
        })
        .await;
    assert_eq!(&got[..], text.as_bytes());
    let events = server.recorder.events();
    assert!(
        !events.iter().any(|e| matches!(e, Event::Close(..))),
        "{events:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_stalled_server_does_not_disconnect_healthy_clients_whose_pongs_wait() {
    // One shard: blocking it blocks every connection, like a starved runtime.
    let server = TestServer::start(fast_config()).await;
    // Healthy peers that answer each ping after 300 ms: whenever the stall
    // starts, about a quarter of them have a ping outstanding, and their
    // pongs then wait in the socket while the server is stalled.
    let mut peers = Vec::new();
    for _ in 0..24 {
        peers.push(DelayedPonger::connect(server.addr, Duration::from_millis(300)).await);
    }
    let mut staller = RawClient::connect(server.addr).await;
    server.recorder.opened(24, Duration::from_secs(5)).await;
    // Pings are in flight (the peers' first ones went out after ~1 s); the
    // staller itself answers none, so it must act before its own 2 s end.
    tokio::time::sleep(Duration::from_millis(1_300)).await;
    // Block the shard for 3.5 s: far past every outstanding kill deadline.
    let stalled_at = tokio::time::Instant::now();
    staller.send(&frame(fin(TEXT), b"stall:3500", true)).await;
    server
        .recorder
        .wait_for(Duration::from_secs(10), |events| {
            events
                .iter()
                .any(
                    |e| matches!(e, Event::Message(_, Message::Text(t)) if &t[..] == b"stall:3500"),
                )
                .then_some(())
        })
        .await;
    assert!(
        stalled_at.elapsed() >= Duration::from_millis(3_400),
        "the shard really stalled"
    );
    tokio::time::sleep(Duration::from_secs(3)).await; // several heartbeats after the stall
    let closed: Vec<_> = server
        .recorder
        .events()
        .into_iter()
        .filter(|e| matches!(e, Event::Close(..)))
        .collect();
    let healthy_closed = peers.iter().filter(|peer| peer.is_closed()).count();
    // The staller answers no pings and may be closed; nobody else.
    assert_eq!(
        healthy_closed, 0,
        "healthy peers closed after a stall: {closed:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_peer_that_talks_constantly_is_never_pinged_or_closed() {
    let server = TestServer::start(fast_config()).await;
    let mut client = RawClient::connect(server.addr).await;
    let id = server.recorder.opened(0, Duration::from_secs(5)).await;
    // 4 s of chatter, one message every 200 ms; the client never answers
    // anything (it is never asked to).
    for n in 0..20 {
        client
            .send(&frame(fin(TEXT), format!("chat {n}").as_bytes(), true))
            .await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let liveness = server
        .recorder
        .connection(id)
        .expect("open")
        .liveness()
        .await
        .expect("alive");
    assert_eq!(liveness.pings_sent, 0, "a talking peer is not pinged");
    let events = server.recorder.events();
    assert!(
        !events.iter().any(|e| matches!(e, Event::Close(..))),
        "{events:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_pong_queued_behind_a_large_upload_does_not_get_the_peer_closed() {
    let server = TestServer::start(fast_config()).await;
    let mut client = RawClient::connect(server.addr).await;
    let id = server.recorder.opened(0, Duration::from_secs(5)).await;
    // A 768 KiB message uploaded in 16 KiB fragments over ~3.5 s: longer than
    // interval + timeout. The client cannot answer pings until it is done
    // (its pong would sit behind the upload), but every fragment is life.
    let chunk = vec![b'u'; 16 << 10];
    let count = 48;
    for n in 0..count {
        let first = match (n, n == count - 1) {
            (0, _) => BINARY,
            (_, true) => fin(CONTINUATION),
            _ => CONTINUATION,
        };
        client.send(&frame(first, &chunk, true)).await;
        tokio::time::sleep(Duration::from_millis(70)).await;
    }
    client.answer_pings_for(Duration::from_millis(500)).await;
    let size = server
        .recorder
        .wait_for(Duration::from_secs(5), |events| {
            events.iter().find_map(|e| match e {
                Event::Message(from, Message::Binary(data)) if *from == id => Some(data.len()),
                _ => None,
            })
        })
        .await;
    assert_eq!(size, count * chunk.len());
    let events = server.recorder.events();
    assert!(
        !events.iter().any(|e| matches!(e, Event::Close(..))),
        "{events:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_single_large_frame_uploaded_at_a_steady_rate_keeps_the_peer_alive() {
    // Browsers send a large message as one frame. 768 KiB over ~3.5 s
    // (longer than interval + timeout) is life; only a trickle is not.
    let server = TestServer::start(fast_config()).await;
    let mut client = RawClient::connect(server.addr).await;
    let id = server.recorder.opened(0, Duration::from_secs(5)).await;
    let wire = frame(fin(BINARY), &vec![b'u'; 768 << 10], true);
    for piece in wire.chunks(16 << 10) {
        client.send(piece).await;
        tokio::time::sleep(Duration::from_millis(70)).await;
    }
    let size = server
        .recorder
        .wait_for(Duration::from_secs(5), |events| {
            events.iter().find_map(|e| match e {
                Event::Message(from, Message::Binary(data)) if *from == id => Some(data.len()),
                _ => None,
            })
        })
        .await;
    assert_eq!(size, 768 << 10);
    let events = server.recorder.events();
    assert!(
        !events.iter().any(|e| matches!(e, Event::Close(..))),
        "{events:?}"
    );
    server.stop().await;
}
