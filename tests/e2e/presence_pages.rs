//! Presence for big channels without the whole list: `presence` pages in
//! user order that stay stable while members come and go, `presence_stats`
//! counting users and connections, the same through the HTTP API, and
//! bad pages refused, while bystanders in the channel stay healthy.

use super::http_details::api;
use super::session::{bystanders_as_users, connect_as};
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::Duration;
use vigil_e2e::{ServerProcess, WsClient};

fn server() -> ServerProcess {
    ServerProcess::start_heartbeating(
        "2s",
        &[
            "--jwt-secret",
            "e2e-secret",
            "--api-key",
            "k3y",
            "--leave-grace",
            "1s",
        ],
    )
}

/// A client of user `sub` that joined `channel`.
fn member(server: &ServerProcess, sub: &str, channel: &str) -> WsClient {
    let mut client = connect_as(server, sub);
    client.next_of("welcome");
    let reply = client.ask(&format!(
        r#"{{"op":"join","channel":"{channel}","id":"join-{sub}"}}"#
    ));
    assert_eq!(reply["type"], "reply", "{reply}");
    client
}

fn users_of(page: &Value) -> Vec<String> {
    page["members"]
        .as_array()
        .unwrap_or_else(|| panic!("no members in {page}"))
        .iter()
        .map(|member| member["user"].as_str().expect("a user").to_owned())
        .collect()
}

#[test]
fn pages_cover_every_steady_member_once_while_others_join_and_leave() {
    let server = server();
    let mut bystanders = bystanders_as_users(&server, "hall");
    let mut members: Vec<(String, WsClient)> = (0..30)
        .map(|n| {
            let sub = format!("u{n:02}");
            let client = member(&server, &sub, "hall");
            (sub, client)
        })
        .collect();
    let mut pager = member(&server, "zz-pager", "hall");
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut version = 0;
    let mut pages = 0;
    let mut churn = Vec::new();
    loop {
        let request = match &cursor {
            None => r#"{"op":"presence","channel":"hall","limit":7,"id":"page"}"#.to_owned(),
            Some(after) => serde_json::json!(
                {"op": "presence", "channel": "hall", "limit": 7, "cursor": after, "id": "page"}
            )
            .to_string(),
        };
        let reply = pager.ask(&request);
        let page = &reply["presence"];
        let users = users_of(page);
        assert!(users.len() <= 7, "{reply}");
        let page_version = page["version"].as_u64().expect("a version");
        assert!(page_version >= version, "versions went back: {reply}");
        version = page_version;
        seen.extend(users);
        pages += 1;
        if pages == 2 {
            // Between pages: a user sorting before the cursor joins, and
            // one not yet paged leaves.
            churn.push(member(&server, "a-late", "hall"));
            let (_, leaving) = members
                .iter_mut()
                .find(|(sub, _)| sub == "u25")
                .expect("u25");
            let left = leaving.ask(r#"{"op":"leave","channel":"hall","id":"bye"}"#);
            assert_eq!(left["type"], "reply", "{left}");
        }
        match page["next"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
        assert!(pages < 20, "paging does not end");
    }
    let unique: BTreeSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "a user on two pages: {seen:?}");
    let sorted: Vec<&String> = seen.iter().collect::<BTreeSet<_>>().into_iter().collect();
    assert_eq!(
        seen.iter().collect::<Vec<_>>(),
        sorted,
        "pages out of order"
    );
    for (sub, _) in members.iter().filter(|(sub, _)| sub != "u25") {
        assert!(seen.contains(sub), "{sub} was on no page: {seen:?}");
    }
    for user in bystanders.users() {
        assert!(
            seen.iter().any(|seen| seen == user),
            "bystander {user} was on no page"
        );
    }
    bystanders.listen(Duration::from_secs(3));
    let expected_others: Vec<String> = members
        .iter()
        .map(|(sub, _)| sub.clone())
        .filter(|sub| sub != "u25")
        .chain(["zz-pager".to_owned(), "a-late".to_owned()])
        .collect();
    let others: Vec<&str> = expected_others.iter().map(String::as_str).collect();
    bystanders.assert_healthy(1, Duration::from_secs(1), &others);
}

#[test]
fn stats_count_users_and_connections_and_bad_pages_are_refused() {
    let server = server();
    let mut bystanders = bystanders_as_users(&server, "hall");
    let _ann_phone = member(&server, "ann", "hall");
    let _ann_laptop = member(&server, "ann", "hall");
    let mut bob = member(&server, "bob", "hall");
    let stats = bob.ask(r#"{"op":"presence_stats","channel":"hall","id":"s"}"#);
    assert_eq!(stats["stats"]["users"], 5, "{stats}");
    assert_eq!(stats["stats"]["connections"], 6, "{stats}");
    assert_eq!(stats["stats"]["channel"], "hall", "{stats}");
    // A client that keeps asking for broken pages gets an error each time.
    for bad in [
        r#"{"op":"presence","channel":"hall","limit":0,"id":"bad"}"#,
        r#"{"op":"presence","channel":"hall","limit":5000,"id":"bad"}"#,
        r#"{"op":"presence","channel":"hall","cursor":"","id":"bad"}"#,
    ] {
        let error = bob.ask(bad);
        assert_eq!(error["code"], "invalid_page", "{bad}: {error}");
    }
    // The same through the HTTP API.
    let api = |path: &str, status: &str| api(&server, "GET", path, status);
    let first = api("/api/channels/hall/presence?limit=2", "200");
    assert_eq!(users_of(&first).len(), 2, "{first}");
    let next = first["next"].as_str().expect("a next page");
    let encoded = next.replace('-', "%2D");
    let second = api(
        &format!("/api/channels/hall/presence?limit=10&cursor={encoded}"),
        "200",
    );
    assert!(second["next"].is_null(), "{second}");
    assert_eq!(users_of(&first).len() + users_of(&second).len(), 5);
    let stats = api("/api/channels/hall/stats", "200");
    assert_eq!(stats["connections"], 6, "{stats}");
    let refused = api("/api/channels/hall/presence?limit=0", "400");
    assert!(
        refused["error"]
            .as_str()
            .is_some_and(|e| e.contains("limit")),
        "{refused}"
    );
    let refused = api("/api/channels/hall/presence?page=2", "400");
    assert!(
        refused["error"]
            .as_str()
            .is_some_and(|e| e.contains("page")),
        "{refused}"
    );
    bystanders.listen(Duration::from_secs(3));
    bystanders.assert_healthy(1, Duration::from_secs(1), &["ann", "bob"]);
}

#[test]
fn the_overview_lists_a_big_channels_first_members_and_counts_the_rest() {
    let server = server();
    let members: Vec<WsClient> = (0..105)
        .map(|n| member(&server, &format!("m{n:03}"), "crowd"))
        .collect();
    let body = api(&server, "GET", "/api/overview", "200");
    let crowd = &body["channels"][0];
    assert_eq!(crowd["channel"], "crowd", "{body}");
    assert_eq!(crowd["mode"], "members");
    assert_eq!(crowd["users"], 105);
    assert_eq!(crowd["connections"], 105);
    let listed = users_of(crowd);
    assert_eq!(listed.len(), 100);
    assert_eq!(listed.first().map(String::as_str), Some("m000"));
    assert_eq!(listed.last().map(String::as_str), Some("m099"));
    drop(members);
}
