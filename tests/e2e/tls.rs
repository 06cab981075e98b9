//! TLS on vigil's own port, with certificates made at test time: wss:// and
//! https:// served (bystanders heartbeating over TLS, a silent peer dropped
//! within the bound), a plain-HTTP request told to use TLS, a stalled
//! handshake dropped, the certificate reloaded on SIGHUP without touching
//! open connections (a bad reload keeps the old one), and unusable files
//! refused at start.

use rustls::ClientConfig;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};
use vigil_e2e::{
    Bystanders, ServerCert, ServerProcess, TestCa, WsClient, http_get, run, vigil_bin,
};

/// A TLS server pinging after 1 s of silence, dropping a peer `timeout`
/// after a ping.
fn tls_server(cert: &ServerCert, timeout: &str) -> ServerProcess {
    ServerProcess::start_heartbeating(
        timeout,
        &[
            "--tls-cert",
            cert.cert.to_str().expect("UTF-8"),
            "--tls-key",
            cert.key.to_str().expect("UTF-8"),
        ],
    )
}

/// `GET path` over TLS: the whole response.
fn https_get(addr: SocketAddr, tls: &Arc<ClientConfig>, path: &str) -> String {
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("a name");
    let connection = rustls::ClientConnection::new(Arc::clone(tls), name).expect("client");
    let socket = TcpStream::connect(addr).expect("connect");
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut stream = rustls::StreamOwned::new(connection, socket);
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: localhost:{}\r\nConnection: close\r\n\r\n",
        addr.port()
    );
    stream.write_all(request.as_bytes()).expect("request");
    let mut response = Vec::new();
    // A peer that closes without close_notify ends the read with an error
    // after the whole response: what arrived is what counts.
    let _ = stream.read_to_end(&mut response);
    String::from_utf8_lossy(&response).into_owned()
}

fn wss(addr: SocketAddr, tls: &Arc<ClientConfig>) -> WsClient {
    WsClient::try_connect_tls(addr, "localhost", Arc::clone(tls), "/ws")
        .unwrap_or_else(|refusal| panic!("wss refused: {refusal}"))
}

#[test]
fn a_tls_port_serves_wss_and_https_and_tells_plain_http_to_use_tls() {
    let ca = TestCa::new("serve");
    let cert = ca.issue("server", &["localhost", "127.0.0.1"]);
    let server = tls_server(&cert, "1s");
    let addr = server.addr();
    let tls = ca.client_config();
    // A socket that starts no handshake holds a place only until the
    // handshake timeout (10 s).
    let stalled = TcpStream::connect(addr).expect("connect");
    let stalled_at = Instant::now();
    let mut bystanders = Bystanders::join_with(3, "lobby", || {
        WsClient::try_connect_tls(addr, "localhost", Arc::clone(&tls), "/ws").expect("wss")
    });
    let mut silent = wss(addr, &tls);
    assert_eq!(silent.next_of("welcome")["type"], "welcome");
    let health = https_get(addr, &tls, "/healthz");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    let plain = http_get(addr, "/healthz");
    assert!(
        plain.starts_with("HTTP/1.1 400") && plain.contains("this port speaks TLS"),
        "{plain}"
    );
    // The silent client is dropped within interval + timeout (2.1 s) and
    // slack, while the bystanders keep answering.
    bystanders.listen(Duration::from_secs(5));
    let metrics = https_get(addr, &tls, "/metrics");
    assert!(
        metrics.contains("vigil_connections_closed_total{reason=\"heartbeat_timeout\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("vigil_handshakes_rejected_total{reason=\"plain_http_on_tls\"} 1"),
        "{metrics}"
    );
    // Every wss:// connection runs on its shard's own socket, its TLS
    // session beside it: none is served as a general stream.
    assert!(
        metrics.contains("vigil_stream_connections_opened_total 0"),
        "{metrics}"
    );
    bystanders.assert_healthy(2, Duration::from_secs(1), &[]);
    let mut stalled = stalled;
    stalled
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let ended = stalled.read(&mut [0u8; 16]);
    assert!(
        matches!(ended, Ok(0) | Err(_)) && stalled_at.elapsed() < Duration::from_secs(20),
        "a stalled handshake was held {:?}: {ended:?}",
        stalled_at.elapsed()
    );
    drop(silent);
}

#[test]
fn sighup_reloads_the_certificate_for_new_connections_and_keeps_open_ones() {
    let ca = TestCa::new("reload");
    let first = ca.issue("server", &["localhost", "127.0.0.1"]);
    // A long timeout: the open connection is not read while the test
    // renews and reloads.
    let server = tls_server(&first, "30s");
    let addr = server.addr();
    let tls = ca.client_config();
    let mut open = wss(addr, &tls);
    open.next_of("welcome");
    assert_eq!(open.peer_certificate().as_deref(), Some(&first.der[..]));
    // The operator renews: new files at the same paths, then SIGHUP.
    let second = ca.issue("renewed", &["localhost", "127.0.0.1"]);
    std::fs::copy(&second.cert, &first.cert).expect("replace the certificate");
    std::fs::copy(&second.key, &first.key).expect("replace the key");
    hang_up(&server);
    let presented = eventually_presented(addr, &ca, &second.der);
    assert!(
        presented,
        "new connections never got the renewed certificate"
    );
    assert_eq!(
        open.ask(r#"{"op":"ping","id":1}"#)["type"],
        "pong",
        "the open one stays"
    );
    // A broken file: the reload fails, says why, and changes nothing.
    std::fs::write(&first.cert, "not a certificate").expect("break the certificate");
    hang_up(&server);
    let logs = server.log_lines(Duration::from_secs(2)).join("\n");
    assert!(logs.contains("TLS reload failed"), "{logs}");
    // (A fresh client: one that resumed its TLS session would see the
    // certificate of that session.)
    let mut after = wss(addr, &ca.client_config());
    assert_eq!(after.peer_certificate().as_deref(), Some(&second.der[..]));
    after.next_of("welcome");
    assert_eq!(open.ask(r#"{"op":"ping","id":2}"#)["type"], "pong");
}

fn hang_up(server: &ServerProcess) {
    let status = std::process::Command::new("kill")
        .args(["-HUP", &server.pid().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

/// Whether a new connection (a fresh client: no TLS session to resume)
/// is shown `der` within a few seconds.
fn eventually_presented(addr: SocketAddr, ca: &TestCa, der: &[u8]) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if wss(addr, &ca.client_config()).peer_certificate().as_deref() == Some(der) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

#[test]
fn unusable_certificates_stop_the_server_with_the_reason() {
    let ca = TestCa::new("refuse");
    let one = ca.issue("one", &["localhost"]);
    let other = ca.issue("other", &["localhost"]);
    let missing = ca.dir().join("missing.crt");
    for (cert, key, reason) in [
        (&missing, &one.key, "cannot read the certificate file"),
        (&one.cert, &other.key, "cannot be used with the certificate"),
        (&one.key, &one.key, "holds no certificate"),
    ] {
        let refused = run(
            &vigil_bin(),
            &[
                "--listen",
                "127.0.0.1:0",
                "--tls-cert",
                cert.to_str().expect("UTF-8"),
                "--tls-key",
                key.to_str().expect("UTF-8"),
            ],
        );
        assert_eq!(refused.status.code(), Some(2), "{refused:?}");
        assert!(
            refused.stderr.contains(reason),
            "{reason}: {}",
            refused.stderr
        );
    }
    let alone = run(
        &vigil_bin(),
        &[
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            one.cert.to_str().expect("UTF-8"),
        ],
    );
    assert_eq!(alone.status.code(), Some(2), "{alone:?}");
    assert!(
        alone.stderr.contains("the two go together"),
        "{}",
        alone.stderr
    );
}
