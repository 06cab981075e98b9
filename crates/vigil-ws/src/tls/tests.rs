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
        .encrypt(
            b"HTTP/1.1 101",
            &mut pair.to_server,
            &mut before,
            &mut record,
        )
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
        .encrypt(&big, &mut pair.to_server, &mut before, &mut record)
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
    pair.server.close_notify(&mut pair.to_server, &mut wire);
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

/// Seals records as the client would, with its traffic keys taken out of
/// rustls: for records no well-behaved client sends.
struct RogueClient {
    key: ring::aead::LessSafeKey,
    iv: [u8; 12],
    sequence: u64,
}

impl RogueClient {
    /// Takes over `pair`'s client after its handshake.
    fn from(client: ClientConnection) -> Self {
        let secrets = client.dangerous_extract_secrets().expect("secrets");
        let (sequence, secrets) = secrets.tx;
        let (algorithm, key, iv) = match secrets {
            rustls::ConnectionTrafficSecrets::Aes128Gcm { key, iv } => {
                (&ring::aead::AES_128_GCM, key, iv)
            }
            rustls::ConnectionTrafficSecrets::Aes256Gcm { key, iv } => {
                (&ring::aead::AES_256_GCM, key, iv)
            }
            rustls::ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv } => {
                (&ring::aead::CHACHA20_POLY1305, key, iv)
            }
            _ => panic!("an unexpected cipher suite"),
        };
        let key = ring::aead::UnboundKey::new(algorithm, key.as_ref()).expect("key");
        let iv: [u8; 12] = iv.as_ref().try_into().expect("a 12-byte IV");
        Self {
            key: ring::aead::LessSafeKey::new(key),
            iv,
            sequence,
        }
    }

    /// One TLS 1.3 record of inner `content_type` holding `payload`.
    fn record(&mut self, payload: &[u8], content_type: u8) -> Vec<u8> {
        let mut inner = payload.to_vec();
        inner.push(content_type);
        let mut nonce = self.iv;
        for (byte, sequence) in nonce[4..].iter_mut().zip(self.sequence.to_be_bytes()) {
            *byte ^= sequence;
        }
        self.sequence += 1;
        let length = u16::try_from(inner.len() + 16).expect("a small record");
        let [high, low] = length.to_be_bytes();
        let header = [0x17, 0x03, 0x03, high, low];
        self.key
            .seal_in_place_append_tag(
                ring::aead::Nonce::assume_unique_for_key(nonce),
                ring::aead::Aad::from(header),
                &mut inner,
            )
            .expect("sealed");
        let mut record = header.to_vec();
        record.extend(inner);
        record
    }
}

#[test]
fn a_handshake_message_cut_between_records_does_not_break_writing() {
    let (server, client) = configs();
    let mut client = Arc::unwrap_or_clone(client);
    client.enable_secret_extraction = true;
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let mut pair = Pair {
        server: TlsSession::new(server).expect("session"),
        client: ClientConnection::new(Arc::new(client), name).expect("client"),
        to_server: Vec::new(),
        received: Vec::new(),
        peer_closed: false,
    };
    pair.handshake();
    pair.client.writer().write_all(b"up").expect("write");
    pair.client_to_server(usize::MAX);
    assert_eq!(pair.received, b"up");
    let Pair {
        mut server, client, ..
    } = pair;
    let mut rogue = RogueClient::from(client);
    // A KeyUpdate (type 24, 1 byte long) whose first two bytes come alone:
    // rustls keeps them, in the caller's buffer, until the rest arrives.
    let mut retained = rogue.record(&[0x18, 0x00], 0x16);
    let mut outgoing = Vec::new();
    let got = server
        .receive(&mut retained, &mut outgoing, &mut |_| panic!("no data"))
        .expect("a fragment is fine");
    retained.drain(..got.consumed);
    assert!(!retained.is_empty(), "the fragment is kept");
    // Writing meanwhile must present those bytes again, not panic.
    let mut record = vec![0; MAX_RECORD_BYTES];
    let (taken, length) = server
        .encrypt(b"ping", &mut retained, &mut outgoing, &mut record)
        .expect("encrypt while a message is half read");
    assert_eq!(taken, 4);
    assert!(length > 4);
    let mut close = Vec::new();
    server.close_notify(&mut retained, &mut close);
    assert!(!close.is_empty());
}
