//! The client address behind proxies, as a specification: which hop is
//! believed, from whom, and the PROXY header read off a real socket.

use super::*;
use hyper::HeaderMap;
use std::net::{IpAddr, SocketAddr};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn trusted(networks: &[&str]) -> TrustedProxies {
    TrustedProxies::new(
        networks
            .iter()
            .map(|n| n.parse().expect("a CIDR"))
            .collect(),
    )
}

fn headers(lines: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in lines {
        map.append(
            hyper::header::HeaderName::from_bytes(name.as_bytes()).expect("a name"),
            value.parse().expect("a value"),
        );
    }
    map
}

fn ip(text: &str) -> IpAddr {
    text.parse().expect("an address")
}

#[track_caller]
fn check(proxies: &[&str], peer: &str, lines: &[(&str, &str)], client: &str) {
    assert_eq!(
        trusted(proxies).client(ip(peer), &headers(lines)),
        ip(client),
        "peer {peer}, headers {lines:?}"
    );
}

#[test]
fn headers_from_an_untrusted_peer_are_ignored() {
    let spoof = [("x-forwarded-for", "1.2.3.4"), ("forwarded", "for=5.6.7.8")];
    check(&[], "203.0.113.9", &spoof, "203.0.113.9");
    check(&["10.0.0.0/8"], "203.0.113.9", &spoof, "203.0.113.9");
}

#[test]
fn behind_a_trusted_proxy_the_right_most_untrusted_hop_is_the_client() {
    let proxies = ["10.0.0.0/8"];
    check(
        &proxies,
        "10.0.0.2",
        &[("x-forwarded-for", "198.51.100.7")],
        "198.51.100.7",
    );
    // A client that sends its own X-Forwarded-For cannot choose its address:
    // the proxy appends the address it saw, and that one is right-most.
    check(
        &proxies,
        "10.0.0.2",
        &[("x-forwarded-for", "1.2.3.4, 198.51.100.7")],
        "198.51.100.7",
    );
    // Two trusted proxies in a row are skipped.
    check(
        &proxies,
        "10.0.0.2",
        &[("x-forwarded-for", "1.2.3.4, 198.51.100.7, 10.0.0.5")],
        "198.51.100.7",
    );
    // Several header lines are one list, in order.
    check(
        &proxies,
        "10.0.0.2",
        &[
            ("x-forwarded-for", "1.2.3.4"),
            ("x-forwarded-for", "198.51.100.8:4711"),
        ],
        "198.51.100.8",
    );
}

#[test]
fn forwarded_is_preferred_and_parsed_per_rfc_7239() {
    let proxies = ["127.0.0.1/32"];
    check(
        &proxies,
        "127.0.0.1",
        &[
            ("x-forwarded-for", "192.0.2.1"),
            (
                "forwarded",
                r#"for=192.0.2.60;proto=http, for="[2001:db8:cafe::17]:4711""#,
            ),
        ],
        "2001:db8:cafe::17",
    );
    check(
        &proxies,
        "127.0.0.1",
        &[("forwarded", "for=192.0.2.60")],
        "192.0.2.60",
    );
}

#[test]
fn an_unreadable_hop_ends_the_walk_at_the_last_trusted_address() {
    let proxies = ["10.0.0.0/8"];
    check(
        &proxies,
        "10.0.0.2",
        &[("x-forwarded-for", "garbage")],
        "10.0.0.2",
    );
    check(
        &proxies,
        "10.0.0.2",
        &[("forwarded", "for=unknown")],
        "10.0.0.2",
    );
    check(
        &proxies,
        "10.0.0.2",
        &[("x-forwarded-for", "198.51.100.7, _hidden, 10.0.0.9")],
        "10.0.0.9",
    );
    // Without any header the trusted proxy itself is the client.
    check(&proxies, "10.0.0.2", &[], "10.0.0.2");
}

#[test]
fn ipv4_mapped_peers_match_ipv4_networks() {
    check(
        &["10.0.0.0/8"],
        "::ffff:10.0.0.2",
        &[("x-forwarded-for", "198.51.100.7")],
        "198.51.100.7",
    );
}

/// Writes `bytes` to a fresh loopback connection in `pieces` (with a pause
/// between, so the reader sees partial headers), then an HTTP request
/// line; returns what `read_proxy_header` made of it and what the socket
/// holds after it.
async fn proxied(bytes: &[u8], pieces: usize) -> (Result<Option<SocketAddr>, String>, Vec<u8>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let bytes = bytes.to_vec();
    let writer = tokio::spawn(async move {
        let mut client = TcpStream::connect(addr).await.expect("connect");
        let step = bytes.len().div_ceil(pieces.max(1));
        for chunk in bytes.chunks(step.max(1)) {
            client.write_all(chunk).await.expect("write");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        client
            .write_all(b"GET / HTTP/1.1\r\n")
            .await
            .expect("write");
        client
    });
    let (mut server, _) = listener.accept().await.expect("accept");
    let result = read_proxy_header(&mut server)
        .await
        .map_err(|error| error.to_string());
    let _client = writer.await.expect("the writer");
    let mut rest = vec![0u8; 16];
    if result.is_ok() {
        server
            .read_exact(&mut rest)
            .await
            .expect("the request line");
    }
    (result, rest)
}

#[tokio::test]
async fn a_v1_header_names_the_client_and_is_consumed_exactly() {
    let header = b"PROXY TCP4 198.51.100.7 10.0.0.1 51234 443\r\n";
    for pieces in [1, 3, header.len()] {
        let (client, rest) = proxied(header, pieces).await;
        assert_eq!(
            client,
            Ok(Some("198.51.100.7:51234".parse().expect("addr"))),
            "{pieces}"
        );
        assert_eq!(
            rest, b"GET / HTTP/1.1\r\n",
            "nothing of the request was eaten"
        );
    }
    let (client, _) = proxied(b"PROXY UNKNOWN\r\n", 1).await;
    assert_eq!(client, Ok(None), "UNKNOWN: the TCP peer is the client");
}

#[tokio::test]
async fn a_v2_header_names_the_client_and_is_consumed_exactly() {
    let source: SocketAddr = "[2001:db8::7]:40000".parse().expect("addr");
    let destination: SocketAddr = "[2001:db8::1]:443".parse().expect("addr");
    let header = ppp::v2::Builder::with_addresses(
        ppp::v2::Version::Two | ppp::v2::Command::Proxy,
        ppp::v2::Protocol::Stream,
        (source, destination),
    )
    .write_tlv(ppp::v2::Type::NoOp, b"padding")
    .expect("a TLV")
    .build()
    .expect("a v2 header");
    for pieces in [1, 2, 5] {
        let (client, rest) = proxied(&header, pieces).await;
        assert_eq!(client, Ok(Some(source)), "{pieces}");
        assert_eq!(rest, b"GET / HTTP/1.1\r\n");
    }
    let local = ppp::v2::Builder::with_addresses(
        ppp::v2::Version::Two | ppp::v2::Command::Local,
        ppp::v2::Protocol::Unspecified,
        ppp::v2::Addresses::Unspecified,
    )
    .build()
    .expect("a LOCAL header");
    assert_eq!(
        proxied(&local, 1).await.0,
        Ok(None),
        "LOCAL: a health check"
    );
}

#[tokio::test]
async fn anything_else_is_refused_with_a_reason() {
    let (plain, _) = proxied(b"GET /ws HTTP/1.1\r\nHost: x\r\n\r\n", 1).await;
    assert!(plain.is_err_and(|e| e.starts_with("not a PROXY protocol header")));
    let (bad_address, _) = proxied(b"PROXY TCP4 999.1.1.1 10.0.0.1 1 2\r\n", 1).await;
    assert!(bad_address.is_err_and(|e| e.starts_with("not a PROXY protocol header")));
    let mut endless = b"PROXY TCP4 ".to_vec();
    endless.extend(std::iter::repeat_n(b'1', 200));
    let (too_long, _) = proxied(&endless, 1).await;
    assert!(too_long.is_err(), "{too_long:?}");
}

#[test]
fn the_scheme_is_https_only_when_a_trusted_proxy_says_so() {
    let proxies = trusted(&["10.0.0.0/8"]);
    let https = headers(&[("x-forwarded-proto", "https")]);
    assert_eq!(proxies.scheme(ip("10.0.0.2"), &https, "http"), "https");
    assert_eq!(
        proxies.scheme(ip("203.0.113.9"), &https, "http"),
        "http",
        "spoofed"
    );
    assert_eq!(
        proxies.scheme(ip("10.0.0.2"), &headers(&[]), "http"),
        "http"
    );
    let forwarded = headers(&[
        ("forwarded", "for=192.0.2.1;proto=https"),
        ("x-forwarded-proto", "http"),
    ]);
    assert_eq!(proxies.scheme(ip("10.0.0.2"), &forwarded, "http"), "https");
}

#[test]
fn on_the_tls_port_the_scheme_is_https_unless_a_trusted_proxy_says_otherwise() {
    let proxies = trusted(&["10.0.0.0/8"]);
    let plain = headers(&[("x-forwarded-proto", "http")]);
    assert_eq!(
        proxies.scheme(ip("203.0.113.9"), &plain, "https"),
        "https",
        "spoofed"
    );
    assert_eq!(
        proxies.scheme(ip("10.0.0.2"), &headers(&[]), "https"),
        "https"
    );
    assert_eq!(proxies.scheme(ip("10.0.0.2"), &plain, "https"), "http");
}
