//! What an operator and a browser can rely on beyond the protocol: the
//! `/metrics` exposition reflects what happened, clients choose their
//! heartbeat mode, and the Origin allow-list and the metrics switch work.

use std::time::Duration;
use vigil_e2e::{ServerProcess, WsClient, http_get};

/// A server that pings after 1 s of silence and gives up 1 s later.
fn quick(extra: &[&str]) -> ServerProcess {
    ServerProcess::start_heartbeating("1s", extra)
}

/// The value of one series in a scrape; panics when it is missing.
#[track_caller]
fn sample(scrape: &str, series: &str) -> f64 {
    vigil_e2e::series_value(scrape, series)
}

fn rejected(reason: &str) -> String {
    format!("vigil_handshakes_rejected_total{{reason=\"{reason}\"}}")
}

#[test]
fn metrics_count_refusals_bytes_users_and_round_trips() {
    let server = quick(&["--max-connections-per-ip", "2"]);
    let addr = server.addr();
    let cross = WsClient::try_connect(addr, "/ws", &[("Origin", "https://evil.example")])
        .expect_err("a foreign origin");
    assert!(cross.starts_with("HTTP/1.1 403"), "{cross}");
    let odd = WsClient::try_connect(addr, "/ws?heartbeat=sometimes", &[])
        .expect_err("an unknown heartbeat mode");
    assert!(odd.starts_with("HTTP/1.1 400"), "{odd}");
    assert!(
        odd.contains("heartbeat must be `protocol` or `app`"),
        "{odd}"
    );
    let mut ann = WsClient::connect(addr);
    ann.next_of("welcome");
    let mut bob = WsClient::connect(addr);
    bob.next_of("welcome");
    let third = WsClient::try_connect(addr, "/ws", &[]).expect_err("over the per-IP limit");
    assert!(third.starts_with("HTTP/1.1 429"), "{third}");

    // Both clients answer the server's pings while they wait (WsClient
    // pongs on its own): several round trips each.
    for _ in 0..15 {
        ann.try_next_of_within("nothing", Duration::from_millis(100));
        bob.try_next_of_within("nothing", Duration::from_millis(100));
    }

    let scrape = http_get(addr, "/metrics");
    assert_eq!(sample(&scrape, &rejected("forbidden_origin")), 1.0);
    assert_eq!(sample(&scrape, &rejected("bad_handshake")), 1.0);
    assert_eq!(sample(&scrape, &rejected("per_ip_limit")), 1.0);
    assert_eq!(sample(&scrape, &rejected("unauthorized")), 0.0);
    assert_eq!(sample(&scrape, "vigil_users"), 2.0);
    let round_trips = sample(&scrape, "vigil_heartbeat_rtt_seconds_count");
    assert!(round_trips >= 2.0, "{round_trips} round trips");
    assert_eq!(
        sample(&scrape, "vigil_heartbeat_rtt_seconds_bucket{le=\"+Inf\"}"),
        round_trips
    );
    let rtt_sum = sample(&scrape, "vigil_heartbeat_rtt_seconds_sum");
    assert!(
        rtt_sum > 0.0 && rtt_sum < round_trips,
        "loopback round trips take well under a second each: {rtt_sum}"
    );
    assert!(sample(&scrape, "vigil_timer_lag_seconds_count") >= 1.0);
    // Two welcomes went out and pongs came in, headers included.
    assert!(sample(&scrape, "vigil_sent_bytes_total") > 200.0);
    assert!(sample(&scrape, "vigil_received_bytes_total") >= 2.0 * 14.0);
    assert_eq!(sample(&scrape, "vigil_queue_overflows_total"), 0.0);
}

#[test]
fn a_browser_may_ask_for_heartbeats_it_can_see() {
    let server = quick(&[]);
    let mut page = WsClient::try_connect(server.addr(), "/ws?heartbeat=app", &[])
        .expect("app heartbeats are a valid choice");
    let welcome = page.next_of("welcome");
    assert_eq!(welcome["heartbeat"]["mode"], "app", "{welcome}");
    for _ in 0..2 {
        let ping = page.next_of("ping");
        page.send_json(&format!(r#"{{"type":"pong","id":{}}}"#, ping["id"]));
    }
    let mut native = WsClient::connect(server.addr());
    let welcome = native.next_of("welcome");
    assert_eq!(welcome["heartbeat"]["mode"], "protocol", "{welcome}");
    // A page that stops answering is dropped within the bound: interval
    // (1 s) + jitter (0.1 s) + timeout (1 s), plus generous slack. The
    // native client keeps answering protocol pings meanwhile.
    let started = std::time::Instant::now();
    let mut dropped = false;
    while !dropped && started.elapsed() < Duration::from_secs(10) {
        dropped = page.wait_for_end(Duration::from_millis(100)).is_some();
        native.try_next_of_within("nothing", Duration::from_millis(100));
    }
    assert!(dropped, "a silent page is never dropped");
    let scrape = http_get(server.addr(), "/metrics");
    assert_eq!(
        sample(
            &scrape,
            "vigil_connections_closed_total{reason=\"heartbeat_timeout\"}"
        ),
        1.0
    );
    assert_eq!(sample(&scrape, "vigil_connections"), 1.0);
}

#[test]
fn only_listed_origins_may_open_websockets_from_a_browser() {
    let server = quick(&["--allowed-origins", "https://app.example.com"]);
    let allowed = WsClient::try_connect(
        server.addr(),
        "/ws",
        &[("Origin", "https://app.example.com")],
    );
    assert!(allowed.is_ok(), "{allowed:?}");
    let refused =
        WsClient::try_connect(server.addr(), "/ws", &[("Origin", "https://other.example")])
            .expect_err("not on the list");
    assert!(refused.starts_with("HTTP/1.1 403"), "{refused}");
    assert!(
        refused.contains("not allowed from https://other.example"),
        "{refused}"
    );
}

#[test]
fn metrics_can_be_turned_off() {
    let server = quick(&["--disable-metrics"]);
    let response = http_get(server.addr(), "/metrics");
    assert!(response.starts_with("HTTP/1.1 404"), "{response}");
    assert!(http_get(server.addr(), "/healthz").starts_with("HTTP/1.1 200"));
}
