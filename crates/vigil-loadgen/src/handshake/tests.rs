//! The upgrade request and the response checks, and the leftover bytes a
//! server sends with its 101 reaching the codec.

use std::net::{Ipv4Addr, SocketAddrV4};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{check_response, connect, find_head_end, request};
use crate::cli::Target;

const OK: &str = "HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\n\
                  upgrade: websocket\r\nsec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";

#[test]
fn request_names_path_host_and_key() {
    let target = Target::parse("ws://127.0.0.1:9001/ws?x=1").unwrap();
    assert_eq!(
        request(&target),
        "GET /ws?x=1 HTTP/1.1\r\nHost: 127.0.0.1:9001\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n"
    );
}

#[test]
fn responses() {
    assert_eq!(find_head_end(b"HTTP/1.1 101 x\r\n\r\nrest"), Some(18));
    assert_eq!(find_head_end(b"HTTP/1.1 101 x\r\n"), None);
    assert_eq!(check_response(OK.as_bytes()), Ok(()));
    for (head, expected) in [
        ("HTTP/1.1 400 Bad Request\r\n\r\n", "status 400"),
        ("garbage\r\n\r\n", "status ?"),
        (
            "HTTP/1.1 101 Switching Protocols\r\nsec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
            "no `Upgrade: websocket`",
        ),
        (
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: nope\r\n\r\n",
            "wrong Sec-WebSocket-Accept",
        ),
    ] {
        assert_eq!(check_response(head.as_bytes()), Err(expected.to_owned()));
    }
}

/// A server that answers the upgrade and a ping in one write: the ping must
/// still reach the codec, and the client's pong must echo it (masked).
#[test]
fn leftover_bytes_reach_the_codec() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            while find_head_end(&head).is_none() {
                assert!(stream.read_buf(&mut head).await.unwrap() > 0);
            }
            let mut reply = OK.as_bytes().to_vec();
            reply.extend_from_slice(&[0x89, 2, b'h', b'i']);
            stream.write_all(&reply).await.unwrap();
            let mut pong = [0u8; 8];
            stream.read_exact(&mut pong).await.unwrap();
            pong
        });
        let target = Target {
            addr: SocketAddrV4::new(Ipv4Addr::LOCALHOST, port),
            host: format!("127.0.0.1:{port}"),
            path: "/".to_owned(),
            tls: false,
        };
        let mut ws = connect(
            Ipv4Addr::new(127, 0, 0, 2),
            &target,
            &request(&target),
            None,
        )
        .await
        .unwrap_or_else(|e| panic!("handshake failed: {e:?}"));
        ws.set_auto_pong(false);
        let frame = ws.read_frame().await.unwrap();
        assert_eq!(frame.opcode, fastwebsockets::OpCode::Ping);
        ws.write_frame(fastwebsockets::Frame::pong(frame.payload))
            .await
            .unwrap();
        let pong = tokio::time::timeout(std::time::Duration::from_secs(10), server)
            .await
            .expect("the server task ends in time")
            .unwrap();
        assert_eq!(pong[..2], [0x8A, 0x82], "a masked pong of 2 bytes");
        let mask = &pong[2..6];
        assert_eq!([pong[6] ^ mask[0], pong[7] ^ mask[1]], *b"hi");
    });
}
