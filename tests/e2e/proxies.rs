//! vigil behind proxies: the client address that per-IP limits and the
//! anonymous-on-loopback rule use comes from forwarding headers only when
//! the peer is a trusted proxy, and from a PROXY protocol header when the
//! listener expects one. Healthy bystanders stay connected throughout.

use std::net::SocketAddr;
use std::time::Duration;
use vigil_e2e::{Bystanders, ServerProcess, WsClient, http_request, series_value};

/// A server that pings after 1 s of silence, so bystanders see pings.
/// A server with a fast heartbeat, then `extra` flags.
fn start(extra: &[&str]) -> ServerProcess {
    ServerProcess::start_heartbeating("1s", extra)
}

/// Bystanders answered at least this many pings during a test.
const MIN_PINGS: u32 = 1;
/// A `ping` request of a bystander is answered within this, on a loaded box.
const PROMPT: Duration = Duration::from_secs(1);

#[track_caller]
fn connect_as(addr: SocketAddr, forwarded: &[(&str, &str)]) -> Result<WsClient, String> {
    let mut client = WsClient::try_connect(addr, "/ws", forwarded)?;
    client.next_of("welcome");
    Ok(client)
}

#[track_caller]
fn assert_status(refusal: Result<WsClient, String>, status: &str, reason: &str) {
    let refusal = refusal.expect_err("refused");
    assert!(
        refusal.starts_with(&format!("HTTP/1.1 {status}")),
        "{refusal}"
    );
    assert!(refusal.contains(reason), "{refusal}");
}

#[test]
fn spoofed_forwarding_headers_from_an_untrusted_peer_change_nothing() {
    let server = start(&["--max-connections-per-ip", "4"]);
    let mut bystanders = Bystanders::join(server.addr(), 2, "lobby");
    // Each claims another address; all are 127.0.0.1, whose budget is 4.
    let spoofers: Vec<WsClient> = (1..=2)
        .map(|n| {
            let claimed = format!("198.51.100.{n}");
            connect_as(
                server.addr(),
                &[
                    ("X-Forwarded-For", &claimed),
                    ("Forwarded", &format!("for={claimed}")),
                ],
            )
            .expect("a loopback client")
        })
        .collect();
    assert_status(
        connect_as(server.addr(), &[("X-Forwarded-For", "203.0.113.99")]),
        "429",
        "too many connections from your address",
    );
    bystanders.listen(Duration::from_secs(3));
    bystanders.assert_healthy(MIN_PINGS, PROMPT, &[]);
    drop(spoofers);
}

#[test]
fn each_client_behind_a_trusted_proxy_has_its_own_per_ip_budget() {
    let server = start(&[
        "--trusted-proxies",
        "127.0.0.0/8",
        "--max-connections-per-ip",
        "2",
        "--allow-insecure-public",
    ]);
    let addr = server.addr();
    let mut bystanders = Bystanders::join(addr, 2, "lobby");
    let mut held = Vec::new();
    for client in ["198.51.100.1", "198.51.100.2"] {
        for _ in 0..2 {
            held.push(connect_as(addr, &[("X-Forwarded-For", client)]).expect(client));
        }
        assert_status(
            connect_as(addr, &[("X-Forwarded-For", client)]),
            "429",
            "too many connections from your address",
        );
    }
    // A client that adds its own X-Forwarded-For cannot take another's
    // budget: the proxy's hop, right-most, is the one believed.
    assert_status(
        connect_as(addr, &[("X-Forwarded-For", "203.0.113.5, 198.51.100.1")]),
        "429",
        "too many connections",
    );
    held.push(
        connect_as(addr, &[("Forwarded", "for=\"[2001:db8::7]:4711\"")])
            .expect("an RFC 7239 client"),
    );
    let scrape = http_request(addr, "GET", "/metrics", None, "");
    assert_eq!(
        series_value(
            &scrape,
            "vigil_handshakes_rejected_total{reason=\"per_ip_limit\"}"
        ),
        3.0
    );
    bystanders.listen(Duration::from_secs(3));
    bystanders.assert_healthy(MIN_PINGS, PROMPT, &[]);
}

#[test]
fn a_local_reverse_proxy_does_not_lend_its_loopback_address_to_anonymous_clients() {
    // No secret: anonymous clients are accepted from loopback only. The
    // proxy on 127.0.0.1 is trusted, so its clients are who it says.
    let server = start(&["--trusted-proxies", "127.0.0.1"]);
    let addr = server.addr();
    let mut bystanders = Bystanders::join(addr, 2, "lobby");
    assert_status(
        connect_as(addr, &[("X-Forwarded-For", "203.0.113.7")]),
        "401",
        "anonymous connections are accepted only from loopback and 203.0.113.7 is not loopback",
    );
    let overview = overview_from(addr, "203.0.113.7");
    assert!(overview.starts_with("HTTP/1.1 401"), "{overview}");
    // A client on this machine, through the same proxy, is still welcome.
    connect_as(addr, &[("X-Forwarded-For", "127.0.0.1")]).expect("a local client");
    assert!(overview_from(addr, "::1").starts_with("HTTP/1.1 200"));
    bystanders.listen(Duration::from_secs(2));
    bystanders.assert_healthy(MIN_PINGS, PROMPT, &[]);
}

fn overview_from(addr: SocketAddr, client: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        stream,
        "GET /api/overview HTTP/1.1\r\nHost: {addr}\r\nX-Forwarded-For: {client}\r\n\
         Connection: close\r\n\r\n"
    )
    .expect("request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    response
}

/// A PROXY protocol v1 header for a TCP4 client.
fn v1(client: &str) -> Vec<u8> {
    format!("PROXY TCP4 {client} 10.0.0.1 40000 443\r\n").into_bytes()
}

/// A PROXY protocol v2 header for `client`.
fn v2(client: SocketAddr) -> Vec<u8> {
    let destination: SocketAddr = if client.is_ipv4() {
        "10.0.0.1:443".parse().expect("addr")
    } else {
        "[2001:db8::1]:443".parse().expect("addr")
    };
    ppp::v2::Builder::with_addresses(
        ppp::v2::Version::Two | ppp::v2::Command::Proxy,
        ppp::v2::Protocol::Stream,
        (client, destination),
    )
    .build()
    .expect("a v2 header")
}

/// `GET path` on a `--proxy-protocol` port, as a local health check would
/// (PROXY UNKNOWN: the TCP peer is the client).
fn proxied_get(addr: SocketAddr, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        stream,
        "PROXY UNKNOWN\r\nGET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    response
}

#[test]
fn proxy_protocol_headers_name_the_client_and_bad_ones_are_refused_and_counted() {
    let server = start(&[
        "--proxy-protocol",
        "--max-connections-per-ip",
        "1",
        "--allow-insecure-public",
    ]);
    let addr = server.addr();
    let mut next = 0;
    let mut bystanders = Bystanders::join_with(2, "lobby", || {
        next += 1;
        let header = v1(&format!("192.0.2.{next}"));
        WsClient::try_connect_after(addr, &header, "/ws", &[]).expect("a bystander")
    });
    let through = |header: &[u8]| -> Result<WsClient, String> {
        let mut client = WsClient::try_connect_after(addr, header, "/ws", &[])?;
        client.next_of("welcome");
        Ok(client)
    };
    let ann = through(&v1("198.51.100.1")).expect("v1");
    assert_status(through(&v1("198.51.100.1")), "429", "too many connections");
    let v6: SocketAddr = "[2001:db8::7]:50000".parse().expect("addr");
    let bob = through(&v2(v6)).expect("v2, IPv6");
    assert_status(through(&v2(v6)), "429", "too many connections");
    let carl = through(&v2("198.51.100.3:50000".parse().expect("addr"))).expect("v2, IPv4");
    // No header, a broken one, one cut short: 400 and counted.
    for bad in [
        &b""[..],
        b"PROXY TCP4 999.0.0.1 10.0.0.1 1 2\r\n",
        b"PROXY TCP4 198.51",
    ] {
        let refusal = match through(bad) {
            Ok(_) => panic!("{:?} was let in", String::from_utf8_lossy(bad)),
            Err(refusal) => refusal,
        };
        assert!(refusal.starts_with("HTTP/1.1 400"), "{refusal}");
        assert!(
            refusal.contains("expects PROXY protocol v1 or v2"),
            "{refusal}"
        );
    }
    let scrape = proxied_get(addr, "/metrics");
    assert_eq!(
        series_value(
            &scrape,
            "vigil_handshakes_rejected_total{reason=\"bad_proxy_header\"}"
        ),
        3.0,
    );
    assert_eq!(
        series_value(
            &scrape,
            "vigil_handshakes_rejected_total{reason=\"per_ip_limit\"}"
        ),
        2.0,
    );
    bystanders.listen(Duration::from_secs(3));
    bystanders.assert_healthy(MIN_PINGS, PROMPT, &[]);
    drop((ann, bob, carl));
}
