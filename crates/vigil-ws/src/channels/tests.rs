//! Channels fed the server's messages as PROTOCOL.md writes them: joins
//! that name the last message received only after a reconnect, what a
//! re-join's reply says, duplicates, and replies that are not its joins'.

use super::*;

fn parse(text: &str) -> Value {
    serde_json::from_str(text).expect("JSON")
}

/// The reply to this helper's join of `chat`, with `fields`.
fn reply(fields: Value) -> Vec<u8> {
    let mut reply = json!({"type": "reply", "id": "vigil-ws:join:chat",
                           "presence": {"channel": "chat", "version": 1, "members": []}});
    for (key, value) in fields.as_object().expect("fields") {
        reply[key] = value.clone();
    }
    reply.to_string().into_bytes()
}

fn message(offset: u64, epoch: &str) -> Vec<u8> {
    json!({"type": "message", "channel": "chat", "from": "bob", "data": offset,
           "offset": offset, "epoch": epoch})
    .to_string()
    .into_bytes()
}

/// The requests `rejoin` would send, without a connection.
fn rejoins(channels: &Channels) -> Vec<Value> {
    let mut joined = channels.joined.lock();
    joined
        .iter_mut()
        .map(|(channel, entry)| parse(&join_request(channel, entry, true)))
        .collect()
}

#[test]
fn a_rejoin_names_the_last_message_and_learns_whether_it_recovered() {
    let channels = Channels::new();
    // A join asks for nothing and learns where the channel is.
    assert_eq!(
        parse(&channels.join("chat", Some(json!({"name": "Ann"})))),
        json!({"op": "join", "channel": "chat", "id": "vigil-ws:join:chat", "meta": {"name": "Ann"}})
    );
    let first = reply(json!({"history": {"offset": 40, "epoch": "e1"}}));
    assert_eq!(channels.observe(&first), Observed::Other);
    assert_eq!(channels.position("chat").map(|p| p.offset), Some(40));
    assert_eq!(channels.observe(&message(41, "e1")), Observed::Other);
    assert_eq!(channels.observe(&message(41, "e1")), Observed::Duplicate);
    // A join on the open connection (new meta) asks for nothing either.
    assert!(
        parse(&channels.join("chat", Some(json!({"name": "Ann"}))))
            .get("since")
            .is_none()
    );
    // After a reconnect: the meta and the last message received.
    assert_eq!(
        rejoins(&channels),
        [
            json!({"op": "join", "channel": "chat", "id": "vigil-ws:join:chat",
                "meta": {"name": "Ann"}, "since": {"offset": 41, "epoch": "e1"}})
        ]
    );
    // A reply to another request (a presence read) changes nothing.
    let presence = json!({"type": "reply", "id": 7,
                          "presence": {"channel": "chat", "version": 1, "members": []}});
    assert_eq!(
        channels.observe(presence.to_string().as_bytes()),
        Observed::Other
    );
    assert_eq!(channels.position("chat").map(|p| p.offset), Some(41));
    let recovered = reply(json!({"recovered": true, "missed": 2,
                                 "history": {"offset": 43, "epoch": "e1"}}));
    assert_eq!(
        channels.observe(&recovered),
        Observed::Recovery(Recovery {
            channel: "chat".into(),
            recovered: true,
            missed: Some(2),
            reason: None
        })
    );
    // Until the missed messages arrive, the position stays at the last
    // one received.
    assert_eq!(channels.position("chat").map(|p| p.offset), Some(41));
    channels.observe(&message(42, "e1"));
    channels.observe(&message(43, "e1"));
    assert_eq!(channels.position("chat").map(|p| p.offset), Some(43));
    // A lost history: said plainly, and the new epoch is the start.
    rejoins(&channels);
    let lost = reply(json!({"recovered": false, "recovery": "epoch_changed",
                            "history": {"offset": 3, "epoch": "e2"}}));
    assert_eq!(
        channels.observe(&lost),
        Observed::Recovery(Recovery {
            channel: "chat".into(),
            recovered: false,
            missed: None,
            reason: Some("epoch_changed".into())
        })
    );
    assert_eq!(
        channels.position("chat").map(|p| p.epoch),
        Some("e2".into())
    );
    // Left: not joined again, its messages no longer tracked.
    assert_eq!(
        parse(&channels.leave("chat")),
        json!({"op": "leave", "channel": "chat"})
    );
    assert_eq!(channels.position("chat"), None);
    assert_eq!(channels.observe(b"not json"), Observed::Other);
}
