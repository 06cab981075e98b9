//! Authorization without holes: a token's `channels` claim bounds every
//! request that names a channel (join, publish, presence, set_will), and a
//! last will only speaks to a channel its author is still a member of.

use super::session::{in_an_hour, token};
use std::time::Duration;
use vigil_e2e::{Bystanders, ServerProcess, WsClient};

fn secured() -> ServerProcess {
    ServerProcess::start_heartbeating("1s", &["--jwt-secret", "e2e-secret", "--leave-grace", "0s"])
}

/// A connection of `sub` whose token allows only `channels` (`None`: all),
/// its welcome not read yet.
fn connect(server: &ServerProcess, sub: &str, channels: Option<&[&str]>) -> WsClient {
    let mut claims = serde_json::json!({"sub": sub, "exp": in_an_hour()});
    if let Some(channels) = channels {
        claims["channels"] = serde_json::json!(channels);
    }
    WsClient::try_connect_with_token(server.addr(), &token(claims)).expect("a valid token")
}

/// [`connect`], welcomed.
fn client(server: &ServerProcess, sub: &str, channels: Option<&[&str]>) -> WsClient {
    let mut client = connect(server, sub, channels);
    client.next_of("welcome");
    client
}

#[track_caller]
pub(crate) fn assert_error(answer: &serde_json::Value, code: &str) {
    assert_eq!(answer["type"], "error", "{answer}");
    assert_eq!(answer["code"], code, "{answer}");
}

#[test]
fn a_token_limited_to_some_channels_can_neither_read_nor_will_into_others() {
    let server = secured();
    let mut next = 0;
    let mut insiders = Bystanders::join_with(3, "secret", || {
        next += 1;
        connect(&server, &format!("insider-{next}"), None)
    });
    let mut mallory = client(&server, "mallory", Some(&["room-*"]));
    let peek = mallory.ask(r#"{"op":"presence","channel":"secret","id":1}"#);
    assert_error(&peek, "forbidden_channel");
    assert!(peek.get("presence").is_none(), "{peek}");
    let forged =
        mallory.ask(r#"{"op":"set_will","channel":"secret","data":{"text":"forged"},"id":2}"#);
    assert_error(&forged, "forbidden_channel");
    // Allowed, but not joined: a will needs membership.
    let unjoined =
        mallory.ask(r#"{"op":"set_will","channel":"room-1","data":{"text":"bye"},"id":3}"#);
    assert_error(&unjoined, "not_joined");
    let own = mallory.ask(r#"{"op":"presence","channel":"room-1","id":4}"#);
    assert_eq!(own["type"], "reply", "{own}");
    // Mallory drops her TCP connection: an abnormal end, which would
    // publish a will. Nobody in `secret` hears anything.
    drop(mallory);
    insiders.listen(Duration::from_secs(3));
    assert_eq!(
        insiders.messages(),
        [] as [serde_json::Value; 0],
        "a forged will got through"
    );
    insiders.assert_healthy(1, Duration::from_secs(1), &[]);
}

#[test]
fn a_will_is_published_only_to_a_channel_its_author_is_still_in() {
    let server = secured();
    let mut watcher = client(&server, "watcher", None);
    for (id, channel) in [(1, "room-a"), (2, "room-b")] {
        let joined = watcher.ask(&format!(
            r#"{{"op":"join","channel":"{channel}","id":{id}}}"#
        ));
        assert_eq!(joined["type"], "reply", "{joined}");
    }
    let mut author = client(&server, "author", None);
    for (id, request) in [
        (1, r#"{"op":"join","channel":"room-a","id":1}"#),
        (
            2,
            r#"{"op":"set_will","channel":"room-a","data":"gone-a","id":2}"#,
        ),
        (3, r#"{"op":"leave","channel":"room-a","id":3}"#),
        (4, r#"{"op":"join","channel":"room-b","id":4}"#),
        (
            5,
            r#"{"op":"set_will","channel":"room-b","data":"gone-b","id":5}"#,
        ),
    ] {
        let answer = author.ask(request);
        assert_eq!(answer["type"], "reply", "request {id}: {answer}");
    }
    drop(author); // abnormal: no close frame
    let mut wills = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        match watcher.try_next_of_within("message", left) {
            Some(message) => wills.push(message),
            None => break,
        }
    }
    let data: Vec<&serde_json::Value> = wills.iter().map(|m| &m["data"]).collect();
    assert_eq!(
        data,
        ["gone-b"],
        "only the will of the channel it was in: {wills:?}"
    );
    assert_eq!(wills[0]["channel"], "room-b");
    assert_eq!(wills[0]["will"], true);
}
