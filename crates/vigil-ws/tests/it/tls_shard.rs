//! `wss://` connections whose TLS session runs inside the shard (accepted
//! with `vigil_ws::tls::accept`), driven by raw clients over tokio-rustls:
//! messages much larger than a TLS record, a silent peer, a peer that reads
//! nothing, broken records and a clean close, each beside bystanders that
//! must keep their pings and stay open.

use crate::support::*;
use crate::tls::{Pki, Terminator, tls_server};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use vigil_ws::{CloseReason, Message};

type TlsClient = RawClient<TlsStream<TcpStream>>;

/// A raw WebSocket client over TLS to `addr`, trusting `pki`, past the
/// server's hello.
async fn connect(addr: SocketAddr, pki: &Pki) -> TlsClient {
    let connector = tokio_rustls::TlsConnector::from(pki.client_config());
    let socket = TcpStream::connect(addr).await.expect("connect");
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let stream = connector
        .connect(name, socket)
        .await
        .expect("TLS handshake");
    let mut client = RawClient::handshake(stream, addr).await;
    let (opcode, hello) = client
        .read_frame(Duration::from_secs(2))
        .await
        .expect("the hello");
    assert_eq!(opcode, fin(TEXT));
    assert!(hello.starts_with(br#"{"type":"heartbeat""#), "{hello:?}");
    client
}

/// How long bystanders listen: four heartbeat intervals.
const LISTEN: Duration = Duration::from_secs(4);

type Bystander = tokio::task::JoinHandle<(Vec<(u8, Vec<u8>)>, Duration)>;

/// Three clients that answer every ping while a test does its worst.
async fn bystanders(addr: SocketAddr, pki: &Pki) -> Vec<Bystander> {
    let mut answering = Vec::new();
    for _ in 0..3 {
        let mut client = connect(addr, pki).await;
        answering.push(tokio::spawn(async move {
            let started = tokio::time::Instant::now();
            let others = client.answer_pings_for(LISTEN).await;
            (others, started.elapsed())
        }));
    }
    answering
}

/// Each bystander answered pings for the whole time, and got nothing else
/// (no close frame, no end of its connection).
async fn assert_bystanders_kept_their_pings(answering: Vec<Bystander>) {
    for bystander in answering {
        let (others, lasted) = bystander.await.expect("bystander");
        assert!(
            others.is_empty(),
            "a bystander got more than pings: {others:?}"
        );
        assert!(
            lasted >= LISTEN,
            "a bystander's connection ended after {lasted:?}"
        );
    }
}

async fn server() -> (Pki, SocketAddr, vigil_ws::WsServer, Arc<Recorder>) {
    let pki = Pki::new(&format!("shard-{}", rand_suffix()));
    let config = pki.server_config(&["localhost"], false);
    let (addr, ws, recorder) = tls_server(config, Terminator::Vigil).await;
    (pki, addr, ws, recorder)
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos())
}

#[tokio::test]
async fn messages_many_records_long_go_both_ways_on_the_shards_own_socket() {
    let (pki, addr, ws, recorder) = server().await;
    let mut client = connect(addr, &pki).await;
    // 300 KiB each way: 19 records, read 64 KiB at a time, so records
    // arrive cut at every read.
    let text = "0123456789abcdef".repeat(300 * 1024 / 16);
    client
        .send(&frame(fin(TEXT), format!("echo:{text}").as_bytes(), true))
        .await;
    // The server sends it in fragments: a text frame, then continuations.
    let mut echo = Vec::new();
    let mut expected = TEXT;
    loop {
        let (first, payload) = client
            .read_frame(Duration::from_secs(10))
            .await
            .expect("the echo");
        assert_eq!(first & 0x0F, expected, "{first:#x}");
        echo.extend_from_slice(&payload);
        expected = CONTINUATION;
        if first & 0x80 != 0 {
            break;
        }
    }
    assert!(echo == text.as_bytes(), "the echo differs");
    let id = recorder.opened(0, Duration::from_secs(1)).await;
    assert!(recorder.events().iter().any(|event| matches!(
        event,
        Event::Message(from, Message::Text(got)) if *from == id && got.len() == text.len() + 5
    )));
    assert_eq!(ws.metrics().streams_opened, 0, "served as a general stream");
    ws.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn a_silent_wss_peer_is_dropped_within_the_bound_and_bystanders_stay() {
    let (pki, addr, ws, recorder) = server().await;
    let answering = bystanders(addr, &pki).await;
    let _silent = connect(addr, &pki).await;
    let silent = recorder.opened(3, Duration::from_secs(2)).await;
    let started = tokio::time::Instant::now();
    let reason = recorder.closed(silent, Duration::from_secs(6)).await;
    assert_eq!(reason, CloseReason::HeartbeatTimeout);
    // interval + timeout is 2 s (jitter 10 %), with generous slack.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_bystanders_kept_their_pings(answering).await;
    ws.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn a_broken_record_ends_only_its_own_connection() {
    let (pki, addr, ws, recorder) = server().await;
    let answering = bystanders(addr, &pki).await;
    let mut broken = connect(addr, &pki).await;
    let id = recorder.opened(3, Duration::from_secs(2)).await;
    // An application-data record whose ciphertext is junk: its
    // authentication fails.
    let mut record = vec![0x17, 0x03, 0x03, 0x00, 0x40];
    record.extend(std::iter::repeat_n(0x5a, 0x40));
    broken
        .stream
        .get_mut()
        .0
        .write_all(&record)
        .await
        .expect("write junk");
    let reason = recorder.closed(id, Duration::from_secs(3)).await;
    assert_eq!(reason, CloseReason::TransportEnded);
    assert_bystanders_kept_their_pings(answering).await;
    ws.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn a_wss_peer_that_reads_nothing_is_closed_and_bystanders_stay() {
    let (pki, addr, ws, recorder) = server().await;
    let answering = bystanders(addr, &pki).await;
    let mut hog = connect(addr, &pki).await;
    let id = recorder.opened(3, Duration::from_secs(2)).await;
    // 64 MiB asked for and never read: the socket fills, then the queue.
    hog.send(&frame(fin(TEXT), b"flood:1024:65536", true)).await;
    let reason = recorder.closed(id, Duration::from_secs(6)).await;
    assert!(
        matches!(
            reason,
            CloseReason::SlowConsumer | CloseReason::WriteTimeout
        ),
        "{reason:?}"
    );
    assert_bystanders_kept_their_pings(answering).await;
    ws.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn a_close_handshake_over_wss_ends_with_the_sessions_close_notify() {
    let (pki, addr, ws, recorder) = server().await;
    let mut client = connect(addr, &pki).await;
    let id = recorder.opened(0, Duration::from_secs(1)).await;
    client
        .send(&frame(fin(CLOSE), &1000u16.to_be_bytes(), true))
        .await;
    let (code, _) = client
        .read_close(Duration::from_secs(3))
        .await
        .expect("the server's close frame");
    assert_eq!(code, 1000);
    // tokio-rustls reports a clean end (0 bytes) only after a
    // `close_notify`; a bare TCP end is an `UnexpectedEof` error.
    let mut rest = [0u8; 64];
    let end = tokio::time::timeout(
        Duration::from_secs(3),
        tokio::io::AsyncReadExt::read(&mut client.stream, &mut rest),
    )
    .await
    .expect("the end in time");
    assert!(matches!(end, Ok(0)), "no clean TLS end: {end:?}");
    assert_eq!(
        recorder.closed(id, Duration::from_secs(1)).await,
        CloseReason::PeerClosed { code: Some(1000) }
    );
    ws.shutdown(Duration::from_secs(1)).await;
}
