//! The limit on a peer's own pings over real sockets: each ping within it
//! is answered, the one over it closes the connection with 1008 "too many
//! pings", application-level pings count too, and no limit answers all.
//! The window (60 s) is far longer than any test, so timing never matters.

use crate::support::*;
use std::time::Duration;
use vigil_ws::{CloseReason, HeartbeatMode, PingLimit, WsConfig};

const WAIT: Duration = Duration::from_secs(5);

fn limited(mode: HeartbeatMode) -> WsConfig {
    WsConfig {
        mode,
        ping_limit: Some(PingLimit {
            max_pings: 5,
            window: Duration::from_secs(60),
        }),
        ..fast_config()
    }
}

/// Sends one ping (a protocol frame, or an app-level text) and waits for
/// its answer, answering the server's own pings on the way.
async fn ping_and_expect_pong(client: &mut RawClient, mode: HeartbeatMode, n: u32) {
    let (ping, pong) = match mode {
        HeartbeatMode::Protocol => (
            frame(fin(PING), &n.to_be_bytes(), true),
            n.to_be_bytes().to_vec(),
        ),
        HeartbeatMode::AppText => {
            let text = format!(r#"{{"type":"ping","id":{n}}}"#);
            let answer = format!(r#"{{"type":"pong","id":{n}}}"#);
            (frame(fin(TEXT), text.as_bytes(), true), answer.into_bytes())
        }
    };
    client.send(&ping).await;
    loop {
        let (first, payload) = client
            .read_frame(WAIT)
            .await
            .unwrap_or_else(|| panic!("no answer to ping {n}"));
        if payload == pong && matches!(first & 0x0F, PONG | TEXT) {
            return;
        }
        assert_ne!(first & 0x0F, CLOSE, "closed at ping {n}: {payload:?}");
    }
}

async fn over_the_limit_closes_with_1008(mode: HeartbeatMode) {
    let server = TestServer::start(limited(mode)).await;
    let mut client = RawClient::connect(server.addr).await;
    let id = server.recorder.opened(0, WAIT).await;
    for n in 1..=5 {
        ping_and_expect_pong(&mut client, mode, n).await;
    }
    let sixth = match mode {
        HeartbeatMode::Protocol => frame(fin(PING), b"six", true),
        HeartbeatMode::AppText => frame(fin(TEXT), br#"{"type":"ping","id":6}"#, true),
    };
    client.send(&sixth).await;
    assert_eq!(
        client.read_close(WAIT).await,
        Some((1008, "too many pings".to_owned()))
    );
    assert_eq!(
        server.recorder.closed(id, WAIT).await,
        CloseReason::PingFlood
    );
    assert_eq!(server.ws.metrics().closes_for(CloseReason::PingFlood), 1);
    server.stop().await;
}

#[tokio::test]
async fn protocol_pings_within_the_limit_are_answered_and_the_next_closes_with_1008() {
    over_the_limit_closes_with_1008(HeartbeatMode::Protocol).await;
}

#[tokio::test]
async fn app_level_pings_count_against_the_same_limit() {
    over_the_limit_closes_with_1008(HeartbeatMode::AppText).await;
}

#[tokio::test]
async fn without_a_limit_every_ping_is_answered() {
    let config = WsConfig {
        ping_limit: None,
        ..fast_config()
    };
    let server = TestServer::start(config).await;
    let mut client = RawClient::connect(server.addr).await;
    for n in 1..=50 {
        ping_and_expect_pong(&mut client, HeartbeatMode::Protocol, n).await;
    }
    assert_eq!(server.ws.metrics().closes.iter().sum::<u64>(), 0);
    server.stop().await;
}

#[test]
fn a_limit_of_zero_pings_is_a_configuration_error() {
    let config = WsConfig {
        ping_limit: Some(PingLimit {
            max_pings: 0,
            window: Duration::from_secs(10),
        }),
        ..fast_config()
    };
    let handler = std::sync::Arc::new(Recorder::default());
    let error = vigil_ws::WsServer::start(config, handler).err();
    assert!(
        error.is_some_and(|e| e.to_string().contains("max_pings")),
        "a zero limit must be refused with its name"
    );
}
