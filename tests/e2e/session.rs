//! A real `vigil` process and real WebSocket clients: presence per user,
//! channel messages, specific errors, last wills and graceful shutdown.

use std::time::Duration;
use vigil_e2e::{Bystanders, ServerProcess, WsClient, http_get, http_request};

fn start(extra: &[&str]) -> ServerProcess {
    let mut args = vec!["--listen", "127.0.0.1:0", "--leave-grace", "1s"];
    args.extend_from_slice(extra);
    ServerProcess::start(&args)
}

#[test]
fn members_see_each_other_and_their_messages() {
    let server = start(&[]);
    let mut ann = WsClient::connect(server.addr());
    let welcome = ann.next_json();
    assert_eq!(welcome["type"], "welcome");
    assert_eq!(welcome["heartbeat"]["interval_ms"], 20_000);
    let ann_id = welcome["user"].as_str().expect("user").to_owned();
    ann.send_json(r#"{"op":"join","channel":"room","meta":{"name":"Ann"},"id":1}"#);
    // The reply (with the snapshot) comes at once; the diff announcing the
    // join follows when the hub's merge window ends.
    let reply = ann.next_of("reply");
    assert_eq!(reply["id"], 1);
    let diff = ann.next_of("presence");
    assert_eq!(diff["joins"][0]["user"], ann_id.as_str());

    let mut bob = WsClient::connect(server.addr());
    let bob_id = bob.next_json()["user"].as_str().expect("user").to_owned();
    bob.send_json(r#"{"op":"join","channel":"room","id":"b1"}"#);
    let seen_by_ann = ann.next_of("presence");
    assert_eq!(seen_by_ann["joins"][0]["user"], bob_id.as_str());
    assert!(seen_by_ann["version"].as_u64() > diff["version"].as_u64());
    let reply = bob.next_of("reply");
    assert_eq!(
        reply["presence"]["members"].as_array().map(Vec::len),
        Some(2)
    );

    bob.send_json(r#"{"op":"publish","channel":"room","data":{"text":"hi"},"id":2}"#);
    let message = ann.next_of("message");
    assert_eq!(message["from"], bob_id.as_str());
    assert_eq!(message["data"]["text"], "hi");
    assert_eq!(bob.next_of("reply")["delivered"], 2);
}

#[test]
fn bad_requests_get_specific_errors_and_the_connection_stays_usable() {
    let server = start(&[]);
    let mut client = WsClient::connect(server.addr());
    client.next_json(); // welcome
    for (request, code) in [
        ("{oops", "malformed_json"),
        (r#"{"op":"dance","id":1}"#, "unknown_op"),
        (
            r#"{"op":"join","channel":"bad name!","id":2}"#,
            "invalid_channel",
        ),
        (
            r#"{"op":"publish","channel":"nowhere","data":1,"id":3}"#,
            "not_joined",
        ),
    ] {
        client.send_json(request);
        let error = client.next_of("error");
        assert_eq!(error["code"], code, "{request}");
    }
    client.send_binary(b"\x00\x01");
    assert_eq!(client.next_of("error")["code"], "binary_not_supported");
    client.send_json(r#"{"op":"presence","channel":"room","id":9}"#);
    assert_eq!(client.next_of("reply")["id"], 9);
}

#[test]
fn a_silent_client_is_dropped_its_will_published_and_its_leave_announced() {
    let server = start(&["--heartbeat-interval", "1s", "--heartbeat-timeout", "1s"]);
    let mut watcher = WsClient::connect(server.addr());
    watcher.next_json();
    watcher.send_json(r#"{"op":"join","channel":"room"}"#);
    watcher.next_of("reply");
    let mut doomed = WsClient::connect(server.addr());
    let doomed_id = doomed.next_json()["user"]
        .as_str()
        .expect("user")
        .to_owned();
    doomed.send_json(r#"{"op":"join","channel":"room"}"#);
    doomed.send_json(r#"{"op":"set_will","channel":"room","data":"gone","id":5}"#);
    doomed.next_of("reply");
    // From now on `doomed` neither reads nor writes (its socket stays open).
    let will = watcher.next_of_within("message", Duration::from_secs(8));
    assert_eq!(will["will"], true);
    assert_eq!(will["from"], doomed_id.as_str());
    assert_eq!(will["data"], "gone");
    let leave = watcher.next_of_within("presence", Duration::from_secs(5));
    assert_eq!(leave["leaves"][0], doomed_id.as_str());
    drop(doomed);
    let metrics = http_get(server.addr(), "/metrics");
    assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
    assert!(
        metrics.contains("application/openmetrics-text"),
        "{metrics}"
    );
    assert!(
        metrics.contains("vigil_connections_closed_total{reason=\"heartbeat_timeout\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("vigil_connections 1"), "{metrics}");
}

#[test]
fn sigterm_closes_clients_with_1001_and_exits_cleanly() {
    let mut server = start(&[]);
    assert!(http_get(server.addr(), "/readyz").starts_with("HTTP/1.1 200"));
    assert!(http_get(server.addr(), "/healthz").starts_with("HTTP/1.1 200"));
    let mut client = WsClient::connect(server.addr());
    client.next_json();
    server.terminate();
    let (code, reason) = client
        .next_close(Duration::from_secs(5))
        .expect("a close frame");
    assert_eq!(code, 1001);
    assert!(reason.contains("reconnect"), "{reason}");
    client.send_close(1001);
    let status = server.wait(Duration::from_secs(15));
    assert!(status.success(), "{status:?}");
}

pub(crate) fn token(claims: serde_json::Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(b"e2e-secret"),
    )
    .expect("encodes")
}

/// A client of user `sub`, with a token signed by the e2e secret.
pub(crate) fn connect_as(server: &ServerProcess, sub: &str) -> WsClient {
    let jwt = token(serde_json::json!({"sub": sub, "exp": in_an_hour()}));
    WsClient::try_connect_with_token(server.addr(), &jwt).expect("a token")
}

/// Three bystanders, users `by1` to `by3` with tokens, in `channel`.
pub(crate) fn bystanders_as_users(server: &ServerProcess, channel: &str) -> Bystanders {
    let mut next = 0;
    Bystanders::join_with(3, channel, || {
        next += 1;
        connect_as(server, &format!("by{next}"))
    })
}

pub(crate) fn in_an_hour() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
        + 3600
}

#[test]
fn with_a_secret_tokens_decide_who_connects_and_where() {
    let server = ServerProcess::start(&["--listen", "127.0.0.1:0", "--jwt-secret", "e2e-secret"]);
    let refusal = WsClient::try_connect(server.addr(), "/ws", &[]).expect_err("no token");
    assert!(refusal.starts_with("HTTP/1.1 401"), "{refusal}");
    assert!(refusal.contains("a token is required"), "{refusal}");
    let expired = token(serde_json::json!({"sub": "ann", "exp": 1000}));
    let refusal = WsClient::try_connect_with_token(server.addr(), &expired).expect_err("expired");
    assert!(
        refusal.starts_with("HTTP/1.1 401") && refusal.contains("expired"),
        "{refusal}"
    );
    let cross = WsClient::try_connect(server.addr(), "/ws", &[("Origin", "https://evil.example")])
        .expect_err("cross-site");
    assert!(cross.starts_with("HTTP/1.1 403"), "{cross}");
    let forged = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &serde_json::json!({"sub": "ann", "exp": in_an_hour()}),
        &jsonwebtoken::EncodingKey::from_secret(b"another-secret"),
    )
    .expect("encodes");
    let refusal = WsClient::try_connect(
        server.addr(),
        "/ws",
        &[("Authorization", &format!("Bearer {forged}"))],
    )
    .expect_err("a bad signature");
    assert!(
        refusal.starts_with("HTTP/1.1 401") && refusal.contains("signature is not valid"),
        "{refusal}"
    );
    let scrape = http_get(server.addr(), "/metrics");
    assert!(
        scrape.contains("vigil_handshakes_rejected_total{reason=\"unauthorized\"} 3\n"),
        "{scrape}"
    );

    let jwt = token(serde_json::json!({"sub": "ann", "exp": in_an_hour(), "channels": ["room-*"]}));
    let protocols = format!("vigil, bearer.{jwt}");
    let mut ann = WsClient::try_connect(
        server.addr(),
        "/ws",
        &[("Sec-WebSocket-Protocol", &protocols)],
    )
    .expect("a valid token");
    assert_eq!(ann.next_json()["user"], "ann");
    ann.send_json(r#"{"op":"join","channel":"room-1","id":1}"#);
    assert_eq!(ann.next_of("reply")["id"], 1);
    ann.send_json(r#"{"op":"join","channel":"lobby","id":2}"#);
    let error = ann.next_of("error");
    assert_eq!(
        (error["id"].as_i64(), error["code"].as_str()),
        (Some(2), Some("forbidden_channel"))
    );
}

#[test]
fn the_http_api_publishes_reports_and_disconnects_with_its_key() {
    let server = start(&["--api-key", "op-key"]);
    let mut ann = WsClient::connect(server.addr());
    let ann_id = ann.next_json()["user"].as_str().expect("user").to_owned();
    ann.send_json(r#"{"op":"join","channel":"news"}"#);
    ann.next_of("reply");

    let denied = http_request(
        server.addr(),
        "GET",
        &format!("/api/users/{ann_id}"),
        Some("wrong"),
        "",
    );
    assert!(denied.starts_with("HTTP/1.1 401"), "{denied}");
    let user = http_request(
        server.addr(),
        "GET",
        &format!("/api/users/{ann_id}"),
        Some("op-key"),
        "",
    );
    assert!(
        user.starts_with("HTTP/1.1 200") && user.contains(r#""channels":["news"]"#),
        "{user}"
    );
    let presence = http_request(
        server.addr(),
        "GET",
        "/api/channels/news/presence",
        Some("op-key"),
        "",
    );
    assert!(presence.contains(&ann_id), "{presence}");

    let published = http_request(
        server.addr(),
        "POST",
        "/api/channels/news/publish",
        Some("op-key"),
        r#"{"data":"hello"}"#,
    );
    assert!(published.contains(r#""delivered":1"#), "{published}");
    let message = ann.next_of("message");
    assert_eq!(
        (message["data"].as_str(), message["from"].is_null()),
        (Some("hello"), true)
    );
    let bad = http_request(
        server.addr(),
        "POST",
        "/api/channels/news/publish",
        Some("op-key"),
        "not json",
    );
    assert!(bad.starts_with("HTTP/1.1 400"), "{bad}");
    let wrong_method = http_request(
        server.addr(),
        "GET",
        "/api/channels/news/publish",
        Some("op-key"),
        "",
    );
    assert!(wrong_method.starts_with("HTTP/1.1 405"), "{wrong_method}");

    let disconnected = http_request(
        server.addr(),
        "POST",
        &format!("/api/users/{ann_id}/disconnect"),
        Some("op-key"),
        "",
    );
    assert!(
        disconnected.contains(r#""disconnected":1"#),
        "{disconnected}"
    );
    let (code, reason) = ann
        .next_close(Duration::from_secs(5))
        .expect("a close frame");
    assert_eq!(code, 4001, "{reason}");
}

#[test]
fn without_a_key_the_http_api_is_off() {
    let server = start(&[]);
    let off = http_request(server.addr(), "GET", "/api/users/anyone", Some("guess"), "");
    assert!(
        off.starts_with("HTTP/1.1 404") && off.contains("VIGIL_API_KEY"),
        "{off}"
    );
}

#[test]
fn a_suspect_connection_is_shown_unstable_until_it_answers() {
    let server = start(&["--heartbeat-interval", "1s", "--heartbeat-timeout", "4s"]);
    let mut watcher = WsClient::connect(server.addr());
    watcher.next_json();
    watcher.send_json(r#"{"op":"join","channel":"room"}"#);
    watcher.next_of("reply");
    let mut slow = WsClient::connect(server.addr());
    let slow_id = slow.next_json()["user"].as_str().expect("user").to_owned();
    slow.send_json(r#"{"op":"join","channel":"room","meta":{"name":"Sam"},"id":1}"#);
    slow.next_of("reply");
    // `slow` now reads nothing: its ping stays unanswered past half the
    // timeout, and the others see it as unstable (meta kept).
    let unstable = loop {
        let diff = watcher.next_of_within("presence", Duration::from_secs(8));
        if diff["joins"][0]["meta"]["unstable"] == true {
            break diff;
        }
    };
    assert_eq!(unstable["joins"][0]["user"], slow_id.as_str());
    assert_eq!(unstable["joins"][0]["meta"]["name"], "Sam");
    // It reads again (answering the ping): shown stable again.
    slow.send_json(r#"{"op":"presence","channel":"room","id":2}"#);
    slow.next_of("reply");
    let recovered = watcher.next_of_within("presence", Duration::from_secs(5));
    assert_eq!(
        recovered["joins"][0]["meta"],
        serde_json::json!({"name": "Sam"})
    );
}

#[test]
fn one_address_may_hold_only_so_many_connections() {
    let server = start(&["--max-connections-per-ip", "2"]);
    let mut first = WsClient::connect(server.addr());
    first.next_json();
    let mut second = WsClient::connect(server.addr());
    second.next_json();
    let third = WsClient::try_connect(server.addr(), "/ws", &[]).expect_err("over the limit");
    assert!(third.starts_with("HTTP/1.1 429"), "{third}");
    // Closing one makes room again.
    first.send_close(1000);
    first.next_close(Duration::from_secs(5));
    drop(first);
    let mut fourth = None;
    for _ in 0..50 {
        if let Ok(client) = WsClient::try_connect(server.addr(), "/ws", &[]) {
            fourth = Some(client);
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(fourth.is_some(), "the freed slot was never reused");
}

/// A client of user `sub`, connected with a token and joined to `room`.
fn member(server: &ServerProcess, sub: &str) -> WsClient {
    let jwt = token(serde_json::json!({"sub": sub, "exp": in_an_hour()}));
    let mut client = WsClient::try_connect_with_token(server.addr(), &jwt).expect("a valid token");
    client.next_json();
    client.send_json(r#"{"op":"join","channel":"room","id":"j"}"#);
    client.next_of("reply");
    client
}

/// Every presence event `client` gets within `window`.
fn presence_events(client: &mut WsClient, window: Duration) -> Vec<serde_json::Value> {
    let mut events = Vec::new();
    let deadline = std::time::Instant::now() + window;
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        match client.try_next_of_within("presence", left) {
            Some(event) => events.push(event),
            None => break,
        }
    }
    events
}

fn secured(extra: &[&str]) -> ServerProcess {
    let mut args = vec![
        "--listen",
        "127.0.0.1:0",
        "--jwt-secret",
        "e2e-secret",
        "--leave-grace",
        "1s",
    ];
    args.extend_from_slice(extra);
    ServerProcess::start(&args)
}

#[test]
fn a_reload_within_the_grace_announces_nothing() {
    let server = secured(&[]);
    let mut watcher = member(&server, "watcher");
    let mut tab = member(&server, "ann");
    assert_eq!(watcher.next_of("presence")["joins"][0]["user"], "ann");
    tab.send_close(1000);
    drop(tab);
    let _reloaded = member(&server, "ann");
    let events = presence_events(&mut watcher, Duration::from_millis(2_500));
    assert!(events.is_empty(), "a reload flickered: {events:?}");
}

#[test]
fn a_user_with_two_tabs_stays_online_when_one_closes() {
    let server = secured(&[]);
    let mut watcher = member(&server, "watcher");
    let mut first = member(&server, "ann");
    let _second = member(&server, "ann");
    first.send_close(1000);
    drop(first);
    let events = presence_events(&mut watcher, Duration::from_millis(2_500));
    let left = events
        .iter()
        .any(|e| e["leaves"].as_array().is_some_and(|l| !l.is_empty()));
    assert!(!left, "ann left while a tab remained: {events:?}");
}

#[test]
fn a_clean_close_publishes_no_will_and_leaves_after_the_grace() {
    let server = secured(&[]);
    let mut watcher = member(&server, "watcher");
    let mut leaving = member(&server, "ann");
    assert_eq!(watcher.next_of("presence")["joins"][0]["user"], "ann");
    leaving.send_json(r#"{"op":"set_will","channel":"room","data":"gone","id":"w"}"#);
    leaving.next_of("reply");
    leaving.send_close(1000);
    drop(leaving);
    let leave = watcher.next_of_within("presence", Duration::from_secs(5));
    assert_eq!(leave["leaves"][0], "ann");
    assert!(
        watcher
            .try_next_of_within("message", Duration::from_millis(500))
            .is_none(),
        "a will on a clean close"
    );
}

#[test]
fn limits_answer_clearly() {
    let server = start(&["--max-connections", "1", "--max-message-bytes", "1000"]);
    let mut first = WsClient::connect(server.addr());
    first.next_json();
    let full = WsClient::try_connect(server.addr(), "/ws", &[]).expect_err("over the limit");
    assert!(full.starts_with("HTTP/1.1 503"), "{full}");
    assert!(
        full.to_ascii_lowercase().contains("retry-after: 10"),
        "{full}"
    );
    first.send_json(&format!(
        r#"{{"op":"publish","channel":"x","data":"{}"}}"#,
        "y".repeat(1_200)
    ));
    let (code, reason) = first
        .next_close(Duration::from_secs(5))
        .expect("a close frame");
    assert_eq!(code, 1009, "{reason}");
}

#[test]
fn a_client_that_sends_no_request_is_dropped() {
    use std::io::Read;
    let server = start(&[]);
    let mut idle = std::net::TcpStream::connect(server.addr()).expect("connect");
    idle.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let started = std::time::Instant::now();
    let mut buf = [0u8; 256];
    match idle.read(&mut buf) {
        Ok(0) => {}
        Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("expected the server to close the socket, got {other:?}"),
    }
    let waited = started.elapsed();
    assert!(waited < Duration::from_secs(15), "held for {waited:?}");
    assert!(
        waited >= Duration::from_secs(9),
        "dropped too early: {waited:?}"
    );
    let scrape = http_get(server.addr(), "/metrics");
    assert!(
        scrape.contains("vigil_handshakes_rejected_total{reason=\"handshake_timeout\"} 1\n"),
        "{scrape}"
    );
}

#[test]
fn without_a_secret_a_development_secret_is_printed_once_and_works() {
    let server = start(&[]);
    let printed: Vec<&String> = server
        .startup_log()
        .iter()
        .filter(|line| line.contains("development_secret="))
        .collect();
    assert_eq!(printed.len(), 1, "{:#?}", server.startup_log());
    let secret = printed[0]
        .split("development_secret=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the secret follows development_secret=");
    let jwt = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &serde_json::json!({"sub": "dev-user", "exp": in_an_hour()}),
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("encodes");
    let mut signed = WsClient::try_connect_with_token(server.addr(), &jwt)
        .expect("a token signed with the development secret");
    assert_eq!(signed.next_of("welcome")["user"], "dev-user");
    let mut anonymous = WsClient::connect(server.addr());
    let user = anonymous.next_of("welcome")["user"].clone();
    assert!(
        user.as_str().is_some_and(|u| u.starts_with("anon-")),
        "{user}"
    );
    // The ping op is answered whatever the heartbeat mode.
    anonymous.send_json(r#"{"op":"ping","id":"p1"}"#);
    assert_eq!(anonymous.next_of("pong")["id"], "p1");
}
