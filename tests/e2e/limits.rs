//! Limits that hold under a burst: handshakes arriving at once are counted
//! against `--max-connections` and `--max-connections-per-ip` before any
//! 101 is sent, so no burst gets past either; one address over its share
//! of the handshake places is refused at once, a crowd over all of them
//! waits for one. Bystanders stay connected.

use std::net::SocketAddr;
use std::time::Duration;
use vigil_e2e::{Bystanders, ServerProcess, WsClient};

/// A server with a fast heartbeat, then `extra` flags.
fn start(extra: &[&str]) -> ServerProcess {
    ServerProcess::start_heartbeating("2s", extra)
}

/// `count` handshakes sent from as many threads at once (each thread
/// connects, then all send their request together): the clients that got
/// a 101, and the refusals' status lines.
fn burst(
    addr: SocketAddr,
    count: usize,
    header: Option<(&str, String)>,
) -> (Vec<WsClient>, Vec<String>) {
    let gate = std::sync::Barrier::new(count);
    std::thread::scope(|scope| {
        let attempts: Vec<_> = (0..count)
            .map(|n| {
                let gate = &gate;
                let header = header
                    .clone()
                    .map(|(name, value)| (name, format!("{value}{n}")));
                scope.spawn(move || {
                    gate.wait();
                    let headers: Vec<(&str, &str)> = header
                        .as_ref()
                        .map(|(name, value)| vec![(*name, value.as_str())])
                        .unwrap_or_default();
                    WsClient::try_connect(addr, "/ws", &headers)
                })
            })
            .collect();
        let mut admitted = Vec::new();
        let mut refused = Vec::new();
        for attempt in attempts {
            match attempt.join().expect("an attempt") {
                Ok(client) => admitted.push(client),
                Err(refusal) => refused.push(refusal.lines().next().unwrap_or("").to_owned()),
            }
        }
        (admitted, refused)
    })
}

#[test]
fn a_burst_never_exceeds_max_connections() {
    // Handshake places for the whole burst from one address (256 each).
    let server = start(&["--max-connections", "100", "--max-handshakes", "4096"]);
    let mut bystanders = Bystanders::join(server.addr(), 5, "lobby");
    let (admitted, refused) = burst(server.addr(), 150, None);
    assert_eq!(
        admitted.len(),
        95,
        "100 less the 5 bystanders; refused: {refused:?}"
    );
    assert!(
        refused
            .iter()
            .all(|status| status.starts_with("HTTP/1.1 503")),
        "{refused:?}"
    );
    bystanders.listen(Duration::from_secs(3));
    bystanders.assert_healthy(1, Duration::from_secs(1), &[]);
    // Their places come back when they go.
    drop(admitted);
    let mut again = None;
    for _ in 0..50 {
        if let Ok(client) = WsClient::try_connect(server.addr(), "/ws", &[]) {
            again = Some(client);
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(again.is_some(), "the freed places were never reused");
}

#[test]
fn a_burst_from_one_address_never_exceeds_max_connections_per_ip() {
    let server = start(&[
        "--max-handshakes",
        "4096",
        "--max-connections-per-ip",
        "50",
        "--trusted-proxies",
        "127.0.0.0/8",
        "--allow-insecure-public",
    ]);
    // The bystanders come from other (forwarded) addresses.
    let mut next = 0;
    let mut bystanders = Bystanders::join_with(3, "lobby", || {
        next += 1;
        let from = format!("192.0.2.{next}");
        WsClient::try_connect(server.addr(), "/ws", &[("X-Forwarded-For", &from)])
            .expect("a bystander")
    });
    let (admitted, refused) = burst(
        server.addr(),
        80,
        Some(("X-Forwarded-For", "198.51.100.7, 127.0.0.".to_owned())),
    );
    // Each attempt's hop 127.0.0.N is a trusted proxy: all are 198.51.100.7.
    assert_eq!(admitted.len(), 50, "refused: {refused:?}");
    assert!(
        refused
            .iter()
            .all(|status| status.starts_with("HTTP/1.1 429")),
        "{refused:?}"
    );
    bystanders.listen(Duration::from_secs(3));
    bystanders.assert_healthy(1, Duration::from_secs(1), &[]);
}

#[test]
fn trickling_sockets_cannot_take_every_handshake_place() {
    // 64 places, 8 per address.
    let server = start(&["--max-handshakes", "64"]);
    let addr = server.addr();
    let elsewhere = |last: u8| std::net::IpAddr::from([127, 0, 0, last]);
    let mut bystanders =
        Bystanders::join_with(3, "lobby", || WsClient::connect_from(elsewhere(3), addr));
    // A slowloris from 127.0.0.1: 200 sockets, each a request head that
    // never ends.
    use std::io::{Read, Write};
    let mut trickles: Vec<std::net::TcpStream> = (0..200)
        .map(|_| {
            let mut stream = std::net::TcpStream::connect(addr).expect("connect");
            let _ = stream.write_all(b"GET /ws HTTP/1.1\r\nHost: x\r\n");
            stream
        })
        .collect();
    // All but 8 are answered at once.
    std::thread::sleep(Duration::from_millis(500));
    let mut answered = 0;
    for stream in &mut trickles {
        stream
            .set_read_timeout(Some(Duration::from_millis(20)))
            .expect("timeout");
        let mut head = [0u8; 12];
        if stream.read_exact(&mut head).is_ok() && &head == b"HTTP/1.1 503" {
            answered += 1;
        }
    }
    assert_eq!(
        answered, 192,
        "the sockets over the address's 8 places get 503 at once"
    );
    // Clients from other addresses are served at once meanwhile.
    for n in 0..5u8 {
        let mut newcomer = WsClient::connect_from(elsewhere(10 + n), addr);
        newcomer.next_of_within("welcome", Duration::from_secs(2));
    }
    let scrape = vigil_e2e::http_get_from(elsewhere(4), addr, "/metrics");
    assert_eq!(
        vigil_e2e::series_value(
            &scrape,
            "vigil_handshakes_rejected_total{reason=\"handshake_limit\"}"
        ),
        192.0
    );
    bystanders.listen(Duration::from_secs(2));
    bystanders.assert_healthy(1, Duration::from_secs(1), &[]);
}

#[test]
fn a_crowd_over_every_handshake_place_waits_for_one_instead_of_being_refused() {
    // 16 places, 8 per address: two trickling addresses take them all.
    let server = start(&["--max-handshakes", "16"]);
    let addr = server.addr();
    let from = |last: u8| std::net::IpAddr::from([127, 0, 0, last]);
    let mut bystanders =
        Bystanders::join_with(3, "lobby", || WsClient::connect_from(from(3), addr));
    use std::io::Write;
    let trickles: Vec<std::net::TcpStream> = (0..16u8)
        .map(|n| {
            let mut stream = vigil_e2e::connect_from(from(10 + n % 2), addr);
            let _ = stream.write_all(b"GET /ws HTTP/1.1\r\nHost: x\r\n");
            stream
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    // A newcomer from elsewhere is neither refused nor served while every
    // place is taken: it waits in the listen backlog...
    let newcomer = std::thread::spawn(move || {
        let mut client = WsClient::connect_from(from(20), addr);
        client.next_of_within("welcome", Duration::from_secs(5));
    });
    std::thread::sleep(Duration::from_millis(700));
    assert!(
        !newcomer.is_finished(),
        "served or refused while every place was taken"
    );
    // ...and is served once a place is given back.
    drop(trickles);
    newcomer
        .join()
        .expect("the newcomer is upgraded and welcomed");
    let scrape = vigil_e2e::http_get_from(from(4), addr, "/metrics");
    assert_eq!(
        vigil_e2e::series_value(
            &scrape,
            "vigil_handshakes_rejected_total{reason=\"handshake_limit\"}"
        ),
        0.0,
        "nobody was refused"
    );
    bystanders.listen(Duration::from_secs(2));
    bystanders.assert_healthy(1, Duration::from_secs(1), &[]);
}
