//! Channel namespaces from the config file: a `counts` channel shows its
//! members numbers and never the list, refuses client publishes and joins
//! past its limit; a `members` channel past its cap turns to counts for
//! everyone while its list stays readable in pages; bystanders of another
//! channel see none of it; `check-config` explains bad namespaces.

use super::http_details::api;
use super::session::{bystanders_as_users, connect_as};
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;
use vigil_e2e::{ServerProcess, WsClient, http_request, run, vigil_bin};

const CONFIG: &str = r#"
[[namespace]]
channels = "live:*"
presence = "counts"
client_publish = false
max_members = 4

[[namespace]]
channels = "room:*"
presence_cap = 3
max_meta_bytes = 32
leave_grace = "300ms"
"#;

fn config_file(name: &str, text: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("vigil-ns-{name}-{}.toml", std::process::id()));
    std::fs::write(&path, text).expect("a temporary file");
    path
}

/// A server with [`CONFIG`], from a file of its own (`test` names it: tests
/// run at once and remove their files).
fn server(test: &str) -> (ServerProcess, PathBuf) {
    let path = config_file(test, CONFIG);
    let config = path.to_str().expect("UTF-8").to_owned();
    let server = ServerProcess::start_heartbeating(
        "2s",
        &[
            "--jwt-secret",
            "e2e-secret",
            "--api-key",
            "k3y",
            "--config",
            &config,
        ],
    );
    (server, path)
}

/// A client of user `sub`, past its welcome.
fn connect(server: &ServerProcess, sub: &str) -> WsClient {
    let mut client = connect_as(server, sub);
    client.next_of("welcome");
    client
}

fn join(client: &mut WsClient, channel: &str) -> Value {
    client.ask(&format!(
        r#"{{"op":"join","channel":"{channel}","id":"j"}}"#
    ))
}

/// The next `presence_count` event, failing on a member diff first.
fn next_count(client: &mut WsClient) -> Value {
    loop {
        let event = client.next_json();
        assert_ne!(
            event["type"], "presence",
            "a counts channel sent a list diff: {event}"
        );
        if event["type"] == "presence_count" {
            return event;
        }
    }
}

#[test]
fn a_counts_channel_shows_numbers_refuses_client_publishes_and_fills_up() {
    let (server, path) = server("counts");
    let mut bystanders = bystanders_as_users(&server, "lobby");
    let mut ann = connect(&server, "ann");
    let reply = join(&mut ann, "live:final");
    let presence = &reply["presence"];
    assert_eq!(presence["mode"], "counts", "{reply}");
    assert_eq!(presence["users"], 1, "{reply}");
    assert!(presence.get("members").is_none(), "{reply}");
    let mut others = Vec::new();
    for sub in ["bob", "cat", "dan"] {
        let mut client = connect(&server, sub);
        assert_eq!(
            join(&mut client, "live:final")["presence"]["mode"],
            "counts"
        );
        others.push(client);
    }
    // Three joins, merged: ann hears counts, never names, ending at 4.
    let mut count = next_count(&mut ann);
    while count["users"] != 4 {
        count = next_count(&mut ann);
    }
    assert_eq!(count["connections"], 4, "{count}");
    // A fifth user does not fit; a second tab of a member does.
    let mut eve = connect(&server, "eve");
    let full = join(&mut eve, "live:final");
    assert_eq!(full["code"], "channel_full", "{full}");
    let mut ann_tab = connect(&server, "ann");
    assert_eq!(join(&mut ann_tab, "live:final")["type"], "reply");
    // A second tab changes no user, only the connections: still told.
    let mut count = next_count(&mut ann);
    while count["connections"] != 5 {
        count = next_count(&mut ann);
    }
    assert_eq!(count["users"], 4, "{count}");
    // A last will publishes: refused where clients may not publish.
    let will = ann.ask(r#"{"op":"set_will","channel":"live:final","data":"bye","id":"w"}"#);
    assert_eq!(will["code"], "publish_forbidden", "{will}");
    let stats = ann.ask(r#"{"op":"presence_stats","channel":"live:final","id":"s"}"#);
    assert_eq!(stats["stats"]["users"], 4, "{stats}");
    assert_eq!(stats["stats"]["connections"], 5, "{stats}");
    let asked = ann.ask(r#"{"op":"presence","channel":"live:final","id":"p"}"#);
    assert_eq!(asked["presence"]["mode"], "counts", "{asked}");
    let paged = ann.ask(r#"{"op":"presence","channel":"live:final","limit":10,"id":"p"}"#);
    assert_eq!(paged["code"], "presence_hidden", "{paged}");
    let published = ann.ask(r#"{"op":"publish","channel":"live:final","data":1,"id":"m"}"#);
    assert_eq!(published["code"], "publish_forbidden", "{published}");
    let from_api = http_request(
        server.addr(),
        "POST",
        "/api/channels/live:final/publish",
        Some("k3y"),
        r#"{"data":"goal"}"#,
    );
    assert!(from_api.contains(r#""delivered":5"#), "{from_api}");
    // The dashboard's overview shows the numbers, not the list.
    let body = api(&server, "GET", "/api/overview", "200");
    let live = body["channels"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["channel"] == "live:final"))
        .unwrap_or_else(|| panic!("no live:final in {body}"));
    assert_eq!(live["mode"], "counts", "{live}");
    assert_eq!(live["users"], 4, "{live}");
    assert_eq!(live["connections"], 5, "{live}");
    assert_eq!(live["members"], serde_json::json!([]), "{live}");
    bystanders.listen(Duration::from_secs(3));
    bystanders.assert_healthy(1, Duration::from_secs(1), &[]);
    let _ = std::fs::remove_file(path);
}

#[test]
fn a_members_channel_past_its_cap_turns_to_counts_and_pages_its_list() {
    let (server, path) = server("cap");
    let mut bystanders = bystanders_as_users(&server, "lobby");
    let mut ann = connect(&server, "ann");
    let first = join(&mut ann, "room:big");
    assert_eq!(first["presence"]["members"][0]["user"], "ann", "{first}");
    let mut others = Vec::new();
    for sub in ["bob", "cat"] {
        let mut client = connect(&server, sub);
        let reply = join(&mut client, "room:big");
        assert!(
            reply["presence"]["members"].is_array(),
            "under the cap: {reply}"
        );
        others.push(client);
    }
    let diff = ann.next_of("presence");
    assert!(diff["joins"].is_array(), "{diff}");
    // The fourth user is past the cap of 3.
    let mut dan = connect(&server, "dan");
    let reply = join(&mut dan, "room:big");
    assert_eq!(reply["presence"]["mode"], "counts", "{reply}");
    assert_eq!(reply["presence"]["pages"], true, "{reply}");
    // Everyone already there hears the switch as a count.
    let mut count = ann.next_of("presence_count");
    while count["users"] != 4 {
        count = ann.next_of("presence_count");
    }
    let page = ann.ask(r#"{"op":"presence","channel":"room:big","limit":3,"id":"p"}"#);
    assert_eq!(
        page["presence"]["members"].as_array().map(Vec::len),
        Some(3),
        "{page}"
    );
    let next = page["presence"]["next"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let rest = ann.ask(
        &serde_json::json!(
            {"op": "presence", "channel": "room:big", "limit": 3, "cursor": next, "id": "p"}
        )
        .to_string(),
    );
    assert_eq!(rest["presence"]["members"][0]["user"], "dan", "{rest}");
    // The namespace's own meta limit.
    let big = dan.ask(r#"{"op":"join","channel":"room:x","meta":{"name":"a name longer than 32 bytes"},"id":"j"}"#);
    assert_eq!(big["code"], "meta_too_large", "{big}");
    bystanders.listen(Duration::from_secs(3));
    bystanders.assert_healthy(1, Duration::from_secs(1), &[]);
    let _ = std::fs::remove_file(path);
}

#[test]
fn a_namespace_has_its_own_leave_grace() {
    let (server, path) = server("grace");
    let mut room_watcher = connect(&server, "rita");
    join(&mut room_watcher, "room:quick");
    let mut lobby_watcher = connect(&server, "lars");
    join(&mut lobby_watcher, "lobby");
    let mut leaver = connect(&server, "leo");
    join(&mut leaver, "room:quick");
    join(&mut leaver, "lobby");
    room_watcher.next_of("presence");
    lobby_watcher.next_of("presence");
    drop(leaver);
    // room:* waits 300 ms; the lobby the global 5 s.
    let left = room_watcher.next_of_within("presence", Duration::from_secs(3));
    assert_eq!(left["leaves"], serde_json::json!(["leo"]), "{left}");
    assert!(
        lobby_watcher
            .try_next_of_within("presence", Duration::from_secs(2))
            .is_none(),
        "the lobby announced leo's leave before its 5 s grace"
    );
    let _ = std::fs::remove_file(path);
}

#[test]
fn check_config_explains_each_bad_namespace() {
    let path = config_file(
        "bad",
        r#"
[[namespace]]
channels = "*"

[[namespace]]
channels = "live:*"
presence = "count"
"#,
    );
    let checked = run(
        &vigil_bin(),
        &["check-config", path.to_str().expect("UTF-8")],
    );
    assert_eq!(checked.status.code(), Some(2), "{checked:?}");
    for expected in [
        r#"namespace 2 (channels = "live:*"): can never apply"#,
        r#"presence = "count" is not a presence mode"#,
    ] {
        assert!(
            checked.stderr.contains(expected),
            "{expected:?} in {checked:?}"
        );
    }
    let _ = std::fs::remove_file(path);
}
