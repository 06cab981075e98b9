//! What the dashboard loads from a real `vigil`: the page, the browser client
//! `/vigil.js` with its declarations `/vigil.d.ts`, and `/api/overview`
//! (channels, members, each connection's heartbeat, the counters) with its
//! access rules. The page itself runs in Chromium in `tests/browser/`.

use serde_json::Value;
use std::time::{Duration, Instant};
use vigil_e2e::{ServerProcess, WsClient, http_get, http_request};

/// The status line and the JSON body of a response.
#[track_caller]
fn json_response(response: &str) -> (String, Value) {
    let (head, body) = response
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no body in {response}"));
    let status = head.lines().next().unwrap_or_default().to_owned();
    let body = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {response}"));
    (status, body)
}

fn overview(server: &ServerProcess) -> Value {
    let (status, body) = json_response(&http_get(server.addr(), "/api/overview"));
    assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
    body
}

/// Polls the overview until `check` finds what it wants, for at most 10 s.
#[track_caller]
fn overview_until(server: &ServerProcess, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let body = overview(server);
        if check(&body) {
            return body;
        }
        assert!(Instant::now() < deadline, "{what}: never seen in {body:#}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_page_the_client_and_its_types_are_served() {
    let server = ServerProcess::start(&["--listen", "127.0.0.1:0"]);
    let page = http_get(server.addr(), "/");
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(
        page.contains("text/html") && page.contains("from \"./vigil.js\""),
        "{page}"
    );
    assert!(
        page.to_ascii_lowercase()
            .contains("content-security-policy"),
        "{page}"
    );
    let script = http_get(server.addr(), "/vigil.js");
    assert!(
        script.starts_with("HTTP/1.1 200") && script.contains("export class VigilClient"),
        "{script}"
    );
    assert!(
        script
            .to_ascii_lowercase()
            .contains("x-typescript-types: /vigil.d.ts"),
        "{script}"
    );
    let types = http_get(server.addr(), "/vigil.d.ts");
    assert!(
        types.starts_with("HTTP/1.1 200")
            && types.contains("application/typescript")
            && types.contains("export declare class VigilClient"),
        "{types}"
    );
    // The old name is gone: one script, one name.
    assert!(http_get(server.addr(), "/vigil-client.js").starts_with("HTTP/1.1 404"));
}

#[test]
fn the_overview_shows_members_their_connections_heartbeats_and_status() {
    let server = ServerProcess::start(&[
        "--listen",
        "127.0.0.1:0",
        "--heartbeat-interval",
        "1s",
        "--heartbeat-timeout",
        "2s",
    ]);
    let empty = overview(&server);
    assert_eq!(empty["channels"], serde_json::json!([]));
    assert_eq!(empty["heartbeat"]["interval_ms"], 1000);
    assert_eq!(empty["heartbeat"]["timeout_ms"], 2000);

    let mut ann = WsClient::connect(server.addr());
    let welcome = ann.next_json();
    let user = welcome["user"].as_str().expect("a user").to_owned();
    ann.send_json(r#"{"op":"join","channel":"room","meta":{"name":"Ann"},"id":1}"#);
    ann.next_of("reply");
    // Reading answers the server's pings: after a few, a round trip.
    let _ = ann.try_next_of_within("never", Duration::from_millis(2500));

    let body = overview_until(&server, "a measured round trip", |body| {
        body["channels"][0]["members"][0]["connections"][0]["rtt_ms"].is_number()
    });
    let room = &body["channels"][0];
    assert_eq!(room["channel"], "room");
    let member = &room["members"][0];
    assert_eq!(member["user"], user.as_str());
    assert_eq!(member["meta"], serde_json::json!({"name": "Ann"}));
    assert_eq!(member["status"], "online");
    let conn = &member["connections"][0];
    assert_eq!(conn["id"], welcome["connection"]);
    assert_eq!(conn["state"], "alive");
    assert!(conn["pings_sent"].as_u64() >= Some(1), "{conn}");
    assert!(conn["idle_ms"].is_u64(), "{conn}");
    let counters = &body["counters"];
    assert_eq!(counters["connections"], 1);
    assert_eq!(counters["users"], 1);
    assert_eq!(counters["channels"], 1);
    assert!(counters["pings_sent"].as_u64() >= Some(1), "{counters}");
    assert!(counters["pongs_received"].as_u64() >= Some(1), "{counters}");
    assert_eq!(counters["closed"]["heartbeat_timeout"], 0);
    assert_eq!(body["truncated"], false);

    // Not reading any more, so not answering: unstable, then gone.
    overview_until(&server, "ann unstable", |body| {
        body["channels"][0]["members"][0]["status"] == "unstable"
            && body["channels"][0]["members"][0]["connections"][0]["state"] == "suspect"
    });
    let gone = overview_until(&server, "ann dropped", |body| {
        body["counters"]["closed"]["heartbeat_timeout"] == 1
    });
    assert_eq!(gone["counters"]["connections"], 0);
}

#[test]
fn with_a_secret_the_overview_needs_the_api_key() {
    let start = |extra: &[&str]| {
        let mut args = vec!["--listen", "127.0.0.1:0", "--jwt-secret", "e2e-secret"];
        args.extend_from_slice(extra);
        ServerProcess::start(&args)
    };
    let server = start(&["--api-key", "k3y"]);
    let (status, body) = json_response(&http_get(server.addr(), "/api/overview"));
    assert_eq!(status, "HTTP/1.1 401 Unauthorized", "{body}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("API key"))
    );
    let (status, _) = json_response(&http_request(
        server.addr(),
        "GET",
        "/api/overview",
        Some("wrong"),
        "",
    ));
    assert_eq!(status, "HTTP/1.1 401 Unauthorized");
    let (status, body) = json_response(&http_request(
        server.addr(),
        "GET",
        "/api/overview",
        Some("k3y"),
        "",
    ));
    assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
    assert!(body["channels"].is_array());
    let (status, _) = json_response(&http_request(
        server.addr(),
        "POST",
        "/api/overview",
        Some("k3y"),
        "",
    ));
    assert_eq!(status, "HTTP/1.1 405 Method Not Allowed");

    let without_key = start(&[]);
    let (status, body) = json_response(&http_get(without_key.addr(), "/api/overview"));
    assert_eq!(status, "HTTP/1.1 404 Not Found", "{body}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("VIGIL_API_KEY")),
        "{body}"
    );
}
