//! Bad input gets the close code RFC 6455 asks for, and nothing else is
//! disturbed; a bad HTTP upgrade gets a 4xx with its reason.

use crate::support::*;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use vigil_ws::CloseReason;

async fn closes_with(bytes: Vec<u8>, code: u16, reason_part: &str) {
    let server = TestServer::start(fast_config()).await;
    let bystander = GoodClient::connect(server.addr).await;
    let mut client = RawClient::connect(server.addr).await;
    let id = server.recorder.opened(1, Duration::from_secs(5)).await;
    client.send(&bytes).await;
    let (got, reason) = client
        .read_close(Duration::from_secs(5))
        .await
        .expect("a close frame");
    assert_eq!(got, code, "reason {reason:?}");
    assert!(reason.contains(reason_part), "{reason:?}");
    assert!(
        client.sees_eof(Duration::from_secs(3)).await,
        "socket left open"
    );
    let closed = server.recorder.closed(id, Duration::from_secs(3)).await;
    assert!(
        matches!(closed, CloseReason::ProtocolError { code: c, .. } if c == code),
        "{closed:?}"
    );
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert!(!bystander.is_closed(), "a bystander was disturbed");
    server.stop().await;
}

#[tokio::test]
async fn reserved_bits_are_a_protocol_error() {
    closes_with(frame(0x80 | 0x40 | TEXT, b"x", true), 1002, "reserved bits").await;
}

#[tokio::test]
async fn unmasked_client_frames_are_a_protocol_error() {
    closes_with(frame(fin(TEXT), b"x", false), 1002, "masked").await;
}

#[tokio::test]
async fn fragmented_control_frames_are_a_protocol_error() {
    closes_with(frame(PING, b"x", true), 1002, "fragmented").await;
}

#[tokio::test]
async fn oversized_control_frames_are_a_protocol_error() {
    closes_with(frame(fin(PING), &[0; 126], true), 1002, "125").await;
}

#[tokio::test]
async fn invalid_close_codes_are_answered_with_1002() {
    let server = TestServer::start(fast_config()).await;
    let mut client = RawClient::connect(server.addr).await;
    client
        .send(&frame(fin(CLOSE), &1005u16.to_be_bytes(), true))
        .await;
    let (code, _) = client
        .read_close(Duration::from_secs(5))
        .await
        .expect("a close frame");
    assert_eq!(code, 1002);
    server.stop().await;
}

#[tokio::test]
async fn invalid_utf8_is_1007() {
    closes_with(frame(fin(TEXT), &[0xC3, 0x28], true), 1007, "UTF-8").await;
}

#[tokio::test]
async fn a_message_over_the_limit_is_1009_even_in_small_fragments() {
    let limit = fast_config().max_message_size;
    let mut bytes = frame(BINARY, &vec![0; limit / 2], true);
    bytes.extend(frame(CONTINUATION, &vec![0; limit / 2], true));
    bytes.extend(frame(fin(CONTINUATION), &[0; 16], true));
    closes_with(bytes, 1009, "size limit").await;
}

#[tokio::test]
async fn a_clean_close_is_echoed() {
    let server = TestServer::start(fast_config()).await;
    let mut client = RawClient::connect(server.addr).await;
    let id = server.recorder.opened(0, Duration::from_secs(5)).await;
    let mut payload = 4001u16.to_be_bytes().to_vec();
    payload.extend_from_slice(b"bye");
    client.send(&frame(fin(CLOSE), &payload, true)).await;
    let (code, _) = client
        .read_close(Duration::from_secs(5))
        .await
        .expect("echo");
    assert_eq!(code, 4001);
    let reason = server.recorder.closed(id, Duration::from_secs(3)).await;
    assert_eq!(reason, CloseReason::PeerClosed { code: Some(4001) });
    assert!(!reason.is_abnormal());
    server.stop().await;
}

#[tokio::test]
async fn an_invalid_http_upgrade_gets_400_with_its_reason() {
    let server = TestServer::start(fast_config()).await;
    let mut stream = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("connect");
    let request = format!(
        "GET /ws HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n",
        server.addr
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut client = RawClient::from_stream(stream);
    let head = client.read_http_head().await;
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
    let body = client.read_available(Duration::from_millis(500)).await;
    assert!(body.contains("Sec-WebSocket-Key"), "{body:?}");
    server.stop().await;
}
