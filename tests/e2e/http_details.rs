//! HTTP details a demanding client relies on: every valid channel and user
//! name is reachable through the API (percent-encoded path segments), a
//! request without Host is refused, and an https page is not the same
//! origin as an http server on the same host.

use super::session::connect_as;
use std::time::Duration;
use vigil_e2e::{Bystanders, ServerProcess, WsClient, http_request};

fn secured() -> ServerProcess {
    ServerProcess::start_heartbeating("2s", &["--jwt-secret", "e2e-secret", "--api-key", "k3y"])
}

/// The JSON body of an API answer (API key `k3y`), after checking its
/// status line.
#[track_caller]
pub(crate) fn api(
    server: &ServerProcess,
    method: &str,
    path: &str,
    status: &str,
) -> serde_json::Value {
    let response = http_request(server.addr(), method, path, Some("k3y"), "");
    assert!(
        response.starts_with(&format!("HTTP/1.1 {status}")),
        "{path}: {response}"
    );
    let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
    serde_json::from_str(body).unwrap_or_else(|_| panic!("{path}: not JSON: {body}"))
}

#[test]
fn names_that_need_percent_encoding_are_reachable_through_the_api() {
    let server = secured();
    let mut next = 0;
    let mut bystanders = Bystanders::join_with(3, "lobby", || {
        next += 1;
        connect_as(&server, &format!("bystander-{next}"))
    });
    let mut members = Vec::new();
    for user in ["org/alice", "José", "a b"] {
        let mut client = connect_as(&server, user);
        client.next_of("welcome");
        client.send_json(r#"{"op":"join","channel":"team/eng","id":1}"#);
        client.next_of("reply");
        members.push(client);
    }
    let presence = api(&server, "GET", "/api/channels/team%2Feng/presence", "200");
    let mut users: Vec<&str> = presence["members"]
        .as_array()
        .expect("members")
        .iter()
        .filter_map(|m| m["user"].as_str())
        .collect();
    users.sort_unstable();
    assert_eq!(users, ["José", "a b", "org/alice"]);
    for (path, user) in [
        ("/api/users/org%2Falice", "org/alice"),
        ("/api/users/Jos%C3%A9", "José"),
        ("/api/users/a%20b", "a b"),
    ] {
        let answer = api(&server, "GET", path, "200");
        assert_eq!(answer["user"], user);
        assert_eq!(answer["online"], true, "{path}: {answer}");
    }
    let published = api(&server, "POST", "/api/channels/team%2Feng/publish", "400");
    assert!(
        published["error"].as_str().is_some(),
        "no body: refused, {published}"
    );
    let gone = api(&server, "POST", "/api/users/Jos%C3%A9/disconnect", "200");
    assert_eq!(gone["disconnected"], 1);
    let (code, _) = members[1]
        .next_close(Duration::from_secs(5))
        .expect("closed");
    assert_eq!(code, 4001);
    let bad = api(&server, "GET", "/api/users/%FF", "400");
    assert!(
        bad["error"].as_str().is_some_and(|e| e.contains("UTF-8")),
        "{bad}"
    );
    bystanders.listen(Duration::from_secs(2));
    bystanders.assert_healthy(1, Duration::from_secs(1), &[]);
}

#[test]
fn a_request_without_host_gets_400() {
    use std::io::{Read, Write};
    let server = secured();
    let mut bystanders = Bystanders::join_with(2, "lobby", || connect_as(&server, "by"));
    let mut stream = std::net::TcpStream::connect(server.addr()).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n")
        .expect("request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    assert!(response.starts_with("HTTP/1.1 400"), "{response}");
    assert!(response.contains("Host header is required"), "{response}");
    bystanders.listen(Duration::from_secs(2));
    bystanders.assert_healthy(1, Duration::from_secs(1), &[]);
}

#[test]
fn an_https_page_on_the_same_host_is_another_origin() {
    let server = ServerProcess::start(&["--listen", "127.0.0.1:0"]);
    let host = server.addr().to_string();
    let same = WsClient::try_connect(
        server.addr(),
        "/ws",
        &[("Origin", &format!("http://{host}"))],
    );
    assert!(same.is_ok(), "{same:?}");
    let secure = WsClient::try_connect(
        server.addr(),
        "/ws",
        &[("Origin", &format!("https://{host}"))],
    )
    .expect_err("another scheme");
    assert!(secure.starts_with("HTTP/1.1 403"), "{secure}");
}
