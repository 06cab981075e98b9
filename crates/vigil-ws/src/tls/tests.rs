//! The server session against rustls's own client, in memory: the
//! handshake, data both ways, records cut anywhere, the record size cap,
//! the peer's `close_notify` and a broken record.

use super::session::{MAX_RECORD_BYTES, MAX_RECORD_PLAINTEXT, TlsSession};
use rustls::ClientConnection;
use std::io::{Read, Write};
use std::sync::Arc;

fn configs() -> (Arc<rustls::ServerConfig>, Arc<rustls::ClientConfig>) {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("cert");
    let cert = certified.cert.der().clone();
    let key = rustls::pki_types::PrivateKeyDer::try_from(certified.key_pair.serialize_der())
        .expect("key");
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .expect("server config");
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).expect("root");
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    (Arc::new(server), Arc::new(client))
}

/// A server session and a client, and what each has not yet sent across.
struct Pair {
    server: TlsSession,
    client: ClientConnection,
    /// Bytes from the client the server has not used up.
    to_server: Vec<u8>,
    /// Plaintext the server received.
    received: Vec<u8>,
    peer_closed: bool,
}

impl Pair {
    fn new() -> Self {
        let (server, client) = configs();
        let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
        Self {
            server: TlsSession::new(server).expect("session"),
            client: ClientConnection::new(client, name).expect("client"),
            to_server: Vec::new(),
            received: Vec::new(),
            peer_closed: false,
        }
    }

    /// Moves what the client wrote to the server, `step` bytes at a time.
    fn client_to_server(&mut self, step: usize) {
        let mut wire = Vec::new();
        while self.client.wants_write() {
            self.client.write_tls(&mut wire).expect("client writes");
        }
        for piece in wire.chunks(step) {
            self.to_server.extend_from_slice(piece);
            let mut outgoing = Vec::new();
            let received = &mut self.received;
            let got = self
                .server
                .receive(&mut self.to_server, &mut outgoing, &mut |bytes| {
                    received.extend_from_slice(bytes)
                })
                .expect("server receives");
            assert!(got.consumed <= self.to_server.len());
            self.to_server.drain(..got.consumed);
            self.peer_closed |= got.peer_closed;
            self.server_wrote(&outgoing);
        }
    }

    /// Hands what the server wrote to the client.
    fn server_wrote(&mut self, mut bytes: &[u8]) {
        // The client takes at most 4 KiB a call.
        while !bytes.is_empty() {
            self.client.read_tls(&mut bytes).expect("client reads");
            self.client.process_new_packets().expect("client accepts");
        }
    }

    fn handshake(&mut self) {
        for _ in 0..10 {
            if !self.server.is_handshaking() && !self.client.is_handshaking() {
                return;
            }
            self.client_to_server(usize::MAX);
        }
        panic!("the handshake did not finish");
    }

    fn client_reads(&mut self) -> Vec<u8> {
        let mut got = Vec::new();
        match self.client.reader().read_to_end(&mut got) {
            Ok(_) => {}
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(error) => panic!("client read: {error}"),
        }
        got
    }
}

#[test]
fn a_handshake_then_data_both_ways() {
    let mut pair = Pair::new();
    pair.handshake();
    assert_eq!(pair.server.alpn_protocol(), None);
    pair.client
        .writer()
        .write_all(b"GET / HTTP/1.1\r\n\r\n")
        .expect("write");
    pair.client_to_server(usize::MAX);
    assert_eq!(pair.received, b"GET / HTTP/1.1\r\n\r\n");
    let (mut before, mut record) = (Vec::new(), vec![0; MAX_RECORD_BYTES]);
    let (taken, length) = pair
        .server
        .encrypt(b"HTTP/1.1 101", &mut before, &mut record)
        .expect("encrypt");
    assert_eq!(taken, 12);
    assert!(before.is_empty(), "TLS had nothing of its own to send");
    pair.server_wrote(&record[..length]);
    assert_eq!(pair.client_reads(), b"HTTP/1.1 101");
}

#[test]
fn records_cut_at_every_byte_are_decrypted_once_and_in_order() {
    let mut pair = Pair::new();
    pair.handshake();
    let message: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
    pair.client.writer().write_all(&message).expect("write");
    pair.client_to_server(1);
    assert!(
        pair.received == message,
        "{} bytes of {}",
        pair.received.len(),
        message.len()
    );
    assert!(pair.to_server.is_empty(), "a whole record left unused");
}

#[test]
fn one_encrypt_takes_at_most_one_record() {
    let mut pair = Pair::new();
    pair.handshake();
    let big = vec![7u8; 3 * MAX_RECORD_PLAINTEXT];
    let (mut before, mut record) = (Vec::new(), vec![0; MAX_RECORD_BYTES]);
    let (taken, length) = pair
        .server
        .encrypt(&big, &mut before, &mut record)
        .expect("encrypt");
    assert_eq!(taken, MAX_RECORD_PLAINTEXT);
    assert!(length > MAX_RECORD_PLAINTEXT, "{length}");
    pair.server_wrote(&record[..length]);
    assert_eq!(pair.client_reads().len(), MAX_RECORD_PLAINTEXT);
}

#[test]
fn the_peers_close_notify_is_reported_and_answered() {
    let mut pair = Pair::new();
    pair.handshake();
    pair.client.send_close_notify();
    pair.client_to_server(usize::MAX);
    assert!(pair.peer_closed);
    let mut wire = Vec::new();
    pair.server.close_notify(&mut wire);
    assert!(!wire.is_empty(), "no close_notify of our own");
    pair.server_wrote(&wire);
    // The client sees a clean end: 0 bytes, not an error.
    let mut rest = [0u8; 8];
    assert_eq!(pair.client.reader().read(&mut rest).expect("clean end"), 0);
}

#[test]
fn a_record_that_fails_authentication_is_an_error() {
    let mut pair = Pair::new();
    pair.handshake();
    let mut junk = vec![0x17, 0x03, 0x03, 0x00, 0x40];
    junk.extend([0x5a; 0x40]);
    let mut outgoing = Vec::new();
    let error = pair
        .server
        .receive(&mut junk, &mut outgoing, &mut |_| {
            panic!("no plaintext from junk")
        })
        .expect_err("junk is refused");
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
}

#[test]
fn bytes_that_are_not_tls_fail_the_handshake() {
    let (server, _) = configs();
    let mut session = TlsSession::new(server).expect("session");
    let mut http = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
    let mut outgoing = Vec::new();
    let error = session
        .receive(&mut http, &mut outgoing, &mut |_| {})
        .expect_err("plain HTTP is refused");
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
}
