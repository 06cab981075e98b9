//! Per-connection request limits: a request over the rate gets
//! `rate_limited` with `retry_after_ms`, a client that keeps pushing is
//! closed with 1008, join/leave flapping is bounded, and a presence meta
//! over `--max-meta-bytes` is refused. Bystanders never notice.

use std::time::Duration;
use vigil_e2e::{Bystanders, ServerProcess, WsClient};

/// A server with a fast heartbeat, then `extra` flags.
fn start(extra: &[&str]) -> ServerProcess {
    ServerProcess::start_heartbeating("2s", extra)
}

/// Every message `client` gets within `window`, and the close if any.
fn drain(client: &mut WsClient, window: Duration) -> Vec<serde_json::Value> {
    let mut messages = Vec::new();
    let deadline = std::time::Instant::now() + window;
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        match client.try_next_json_within(left) {
            Some(message) => messages.push(message),
            None => break,
        }
    }
    messages
}

#[test]
fn a_burst_over_the_rate_is_limited_and_persistent_abuse_is_closed() {
    let server = start(&["--max-requests-per-second", "20"]);
    let mut bystanders = Bystanders::join(server.addr(), 3, "lobby");
    let mut abuser = WsClient::connect(server.addr());
    abuser.next_of("welcome");
    for n in 0..100 {
        abuser.send_json(&format!(r#"{{"op":"ping","id":{n}}}"#));
    }
    // Answers until the 20th refusal; the close frame follows it.
    let mut answers = Vec::new();
    while answers
        .iter()
        .filter(|m: &&serde_json::Value| m["type"] == "error")
        .count()
        < 20
    {
        answers.push(
            abuser
                .try_next_json_within(Duration::from_secs(2))
                .expect("an answer to each request until the close"),
        );
    }
    let pongs = answers.iter().filter(|m| m["type"] == "pong").count();
    let limited: Vec<&serde_json::Value> = answers
        .iter()
        .filter(|m| m["type"] == "error" && m["code"] == "rate_limited")
        .collect();
    // A burst of twice the rate passes (a little more drains meanwhile).
    assert!((40..=45).contains(&pongs), "{pongs} pongs");
    assert_eq!(limited.len(), 20, "closed at the 20th refusal in a row");
    assert!(
        limited
            .iter()
            .all(|m| m["retry_after_ms"].as_u64().is_some_and(|ms| ms >= 1))
    );
    assert_eq!(
        limited[0]["id"], pongs,
        "the first refused is the first over the burst"
    );
    // Nothing more is answered: the close frame comes next, and the rest
    // of its burst is not even parsed.
    let (first, payload) = abuser
        .next_raw_frame(Duration::from_secs(2))
        .expect("a frame");
    assert_eq!(
        first & 0x0F,
        0x8,
        "the frame after the 20th refusal: {}",
        String::from_utf8_lossy(&payload)
    );
    assert_eq!(
        (
            u16::from_be_bytes([payload[0], payload[1]]),
            String::from_utf8_lossy(&payload[2..]).as_ref()
        ),
        (1008, "rate limit exceeded persistently")
    );
    bystanders.listen(Duration::from_secs(2));
    bystanders.assert_healthy(1, Duration::from_secs(1), &[]);
}

#[test]
fn a_client_that_waits_as_told_is_served_again() {
    let server = start(&["--max-requests-per-second", "2"]);
    let mut client = WsClient::connect(server.addr());
    client.next_of("welcome");
    for n in 0..5 {
        client.send_json(&format!(r#"{{"op":"ping","id":{n}}}"#));
    }
    let answers = drain(&mut client, Duration::from_millis(500));
    let first_limited = answers
        .iter()
        .find(|m| m["code"] == "rate_limited")
        .expect("one over the burst of 4");
    let wait = first_limited["retry_after_ms"]
        .as_u64()
        .expect("retry_after_ms");
    assert!((1..=500).contains(&wait), "{wait} ms at 2 a second");
    std::thread::sleep(Duration::from_millis(wait + 50));
    client.send_json(r#"{"op":"ping","id":"after"}"#);
    assert_eq!(client.next_json()["type"], "pong");
}

#[test]
fn join_flapping_is_bounded_and_big_meta_is_refused() {
    let server = start(&[
        "--max-joins-per-second",
        "5",
        "--max-channels-per-connection",
        "10",
        "--max-meta-bytes",
        "1024",
    ]);
    let mut bystanders = Bystanders::join(server.addr(), 3, "room");
    let mut flapper = WsClient::connect(server.addr());
    let welcome = flapper.next_of("welcome");
    let flapper_user = welcome["user"].as_str().expect("a user").to_owned();
    let big = "x".repeat(2000);
    flapper.send_json(&format!(
        r#"{{"op":"join","channel":"room","meta":{{"bio":"{big}"}},"id":"big"}}"#
    ));
    let refused = flapper.next_json();
    assert_eq!(refused["code"], "meta_too_large", "{refused}");
    // 100 re-joins with a changing meta, as fast as the socket takes them.
    for n in 0..100 {
        flapper.send_json(&format!(
            r#"{{"op":"join","channel":"room","meta":{{"n":{n}}},"id":{n}}}"#
        ));
    }
    let answers = drain(&mut flapper, Duration::from_secs(1));
    let admitted = answers.iter().filter(|m| m["type"] == "reply").count();
    // The burst (max channels per connection: 10, one of it spent on the
    // refused big join: a refused request still costs) and ~5 a second.
    assert!((9..=15).contains(&admitted), "{admitted} re-joins admitted");
    bystanders.listen(Duration::from_secs(2));
    bystanders.assert_healthy(1, Duration::from_secs(1), &[&flapper_user]);
}

#[test]
fn a_connections_publishes_are_bounded_so_is_its_fan_out() {
    // Every publish goes to each member of the channel: the publish rate
    // bounds what one connection makes the server deliver.
    let server = start(&["--max-publishes-per-second", "5"]);
    let mut members = Bystanders::join(server.addr(), 5, "room");
    let mut publisher = WsClient::connect(server.addr());
    let welcome = publisher.next_of("welcome");
    let me = welcome["user"].as_str().expect("a user id").to_owned();
    let joined = publisher.ask(r#"{"op":"join","channel":"room","id":"j"}"#);
    assert_eq!(joined["type"], "reply", "{joined}");
    for n in 0..19 {
        publisher.send_json(&format!(
            r#"{{"op":"publish","channel":"room","data":{n},"id":{n}}}"#
        ));
    }
    let answers = drain(&mut publisher, Duration::from_millis(500));
    let delivered = answers.iter().filter(|m| m["type"] == "reply").count();
    let limited = answers
        .iter()
        .filter(|m| m["type"] == "error" && m["code"] == "rate_limited")
        .count();
    // A burst of twice the rate (and at most a couple more as it drains).
    assert!(
        (10..=12).contains(&delivered),
        "{delivered} publishes carried out"
    );
    assert_eq!(delivered + limited, 19, "{answers:?}");
    members.listen(Duration::from_secs(1));
    let received = members.messages().len();
    assert_eq!(
        received,
        delivered * 5,
        "each member got each admitted publish"
    );
    // Other requests are not held back by the publish limit.
    assert_eq!(publisher.ask(r#"{"op":"ping","id":"p"}"#)["type"], "pong");
    members.assert_healthy(1, Duration::from_secs(1), &[&me]);
}
