//! vigil-ws over TLS at both ends, with certificates made at test time: a
//! server that terminates TLS itself (with vigil-ws's own [`tls::accept`],
//! whose sessions move into the shards, or with tokio-rustls, served as a
//! general stream) and the [`Connector`] on `wss://`, trusting a CA file.
//! Heartbeats and an echo go through either way; a certificate that expired
//! or names another host is refused by the client.
//!
//! [`tls::accept`]: vigil_ws::tls::accept

use crate::support::*;
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use vigil_core::backoff::BackoffConfig;
use vigil_ws::{Connector, Error, Handler, Message, WsServer};

/// A CA of this test, written to `dir/ca.pem`, and what it signs.
pub(crate) struct Pki {
    ca: rcgen::Certificate,
    key: KeyPair,
    dir: PathBuf,
}

impl Pki {
    pub(crate) fn new(test: &str) -> Self {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = params.self_signed(&key).expect("CA");
        let dir = std::env::temp_dir().join(format!("vigil-ws-tls-{test}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join("ca.pem"), ca.pem()).expect("write CA");
        Self { ca, key, dir }
    }

    pub(crate) fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// A server configuration with a certificate for `names`, expired if
    /// asked.
    pub(crate) fn server_config(&self, names: &[&str], expired: bool) -> Arc<rustls::ServerConfig> {
        let key = KeyPair::generate().expect("key");
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names).expect("params");
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let cert = params.signed_by(&key, &self.ca, &self.key).expect("signed");
        let key = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).expect("key");
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], key)
            .expect("config");
        Arc::new(config)
    }

    /// A client configuration trusting this CA.
    pub(crate) fn client_config(&self) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca.der().clone()).expect("CA");
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        Arc::new(config)
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Who terminates TLS in front of vigil-ws.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Terminator {
    /// vigil-ws's own `tls::accept`: the session moves into the shard.
    Vigil,
    /// tokio-rustls: the stream is served as a general stream.
    TokioRustls,
}

/// vigil-ws behind TLS terminated in the same process.
pub(crate) async fn tls_server(
    config: Arc<rustls::ServerConfig>,
    terminator: Terminator,
) -> (SocketAddr, WsServer, Arc<Recorder>) {
    let recorder = Arc::new(Recorder::default());
    let ws =
        WsServer::start(fast_config(), Arc::clone(&recorder) as Arc<dyn Handler>).expect("start");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = ws.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let (config, server) = (Arc::clone(&config), server.clone());
            tokio::spawn(async move {
                match terminator {
                    Terminator::Vigil => {
                        if let Ok(stream) = vigil_ws::tls::accept(config, stream).await {
                            server.serve_upgrades(stream).await;
                        }
                    }
                    Terminator::TokioRustls => {
                        let acceptor = tokio_rustls::TlsAcceptor::from(config);
                        if let Ok(stream) = acceptor.accept(stream).await {
                            server.serve_upgrades(stream).await;
                        }
                    }
                }
            });
        }
    });
    (addr, ws, recorder)
}

fn backoff() -> BackoffConfig {
    BackoffConfig::builder()
        .initial_max(Duration::from_millis(100))
        .base(Duration::from_millis(100))
        .cap(Duration::from_millis(500))
        .build()
        .expect("valid")
}

#[tokio::test]
async fn a_wss_connector_trusting_a_ca_file_heartbeats_and_echoes_over_vigils_tls() {
    a_wss_connector_heartbeats_and_echoes(Terminator::Vigil).await;
}

#[tokio::test]
async fn a_wss_connector_trusting_a_ca_file_heartbeats_and_echoes_over_tokio_rustls() {
    a_wss_connector_heartbeats_and_echoes(Terminator::TokioRustls).await;
}

async fn a_wss_connector_heartbeats_and_echoes(terminator: Terminator) {
    let pki = Pki::new(&format!("good-{terminator:?}"));
    let (addr, ws, recorder) =
        tls_server(pki.server_config(&["localhost"], false), terminator).await;
    let client = Arc::new(Recorder::default());
    let url = format!("wss://localhost:{}/ws", addr.port());
    let connector = Connector::new(url, fast_config(), backoff())
        .ca_file(pki.ca_file())
        .expect("a CA file")
        .spawn(Arc::clone(&client) as Arc<dyn Handler>)
        .expect("spawn");
    let conn = connector
        .connected(Duration::from_secs(5))
        .await
        .expect("connected over TLS");
    conn.send_text("echo:over wss").expect("send");
    client
        .wait_for(Duration::from_secs(5), |events| {
            events.iter().find(
                |e| matches!(e, Event::Message(_, Message::Text(text)) if &text[..] == b"over wss"),
            )?;
            Some(())
        })
        .await;
    // Both ends heartbeat over TLS (whichever pings first, the other's
    // silence timer restarts): a round trip is measured, and neither end
    // drops the other over several intervals.
    let server_conn = recorder
        .connection(recorder.opened(0, Duration::from_secs(1)).await)
        .expect("open");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let client_side = conn.liveness().await.expect("client side open");
        let server_side = server_conn.liveness().await.expect("server side open");
        if client_side.srtt.is_some() || server_side.srtt.is_some() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no heartbeat round trip: {client_side:?} {server_side:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert!(
        connector.connection().is_some(),
        "the client still connected"
    );
    // Only a stream vigil-ws did not make is served as a general stream.
    let general = usize::from(terminator == Terminator::TokioRustls);
    assert_eq!(ws.metrics().streams_opened, general as u64);
    assert!(
        recorder
            .events()
            .iter()
            .all(|e| !matches!(e, Event::Close(..)))
    );
    connector.stop().await;
    ws.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn expired_or_wrong_host_certificates_are_refused_by_the_connector() {
    let pki = Pki::new("bad");
    for (names, expired, what) in [
        (&["localhost"][..], true, "expired"),
        (&["other.example"][..], false, "another host"),
    ] {
        let config = pki.server_config(names, expired);
        let (addr, ws, recorder) = tls_server(config, Terminator::Vigil).await;
        let url = format!("wss://localhost:{}/ws", addr.port());
        let connector = Connector::new(url, fast_config(), backoff())
            .ca_file(pki.ca_file())
            .expect("a CA file")
            .spawn(Arc::new(Recorder::default()) as Arc<dyn Handler>)
            .expect("spawn");
        // Several attempts fit in the wait; none may get through.
        assert!(
            connector.connected(Duration::from_secs(2)).await.is_none(),
            "connected to a server whose certificate is {what}"
        );
        assert_eq!(connector.connects(), 0, "{what}");
        assert!(recorder.events().is_empty(), "{what}");
        connector.stop().await;
        ws.shutdown(Duration::from_secs(1)).await;
    }
}

#[tokio::test]
async fn a_ca_file_that_holds_no_certificate_is_an_error() {
    let pki = Pki::new("empty");
    let empty = pki.dir.join("empty.pem");
    std::fs::write(&empty, "").expect("write");
    let built = Connector::new("wss://localhost:1/ws", fast_config(), backoff()).ca_file(&empty);
    assert!(matches!(built, Err(Error::Tls(ref why)) if why.contains("no certificate")));
    let url = Connector::new("http://localhost:1/ws", fast_config(), backoff())
        .spawn(Arc::new(Recorder::default()) as Arc<dyn Handler>);
    assert!(matches!(url, Err(Error::Url { .. })));
}
