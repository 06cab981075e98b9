//! Channels fed the server's messages as PROTOCOL.md writes them: joins
//! that name the last message received, and what a re-join's reply says.

use super::*;

fn parse(text: &str) -> Value {
    serde_json::from_str(text).expect("JSON")
}

fn reply(fields: Value) -> Vec<u8> {
    let mut reply = json!({"type": "reply", "id": null,
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

#[test]
fn a_rejoin_names_the_last_message_and_learns_whether_it_recovered() {
    let channels = Channels::new();
    // The first join asks for nothing and learns where the channel is.
    assert_eq!(
        parse(&channels.join("chat", Some(json!({"name": "Ann"})))),
        json!({"op": "join", "channel": "chat", "meta": {"name": "Ann"}})
    );
    let first = reply(json!({"history": {"offset": 40, "epoch": "e1"}}));
    assert_eq!(channels.observe(&first), None);
    assert_eq!(
        channels.position("chat"),
        Some(Position {
            offset: 40,
            epoch: "e1".into()
        })
    );
    channels.observe(&message(41, "e1"));
    // After a reconnect: the join carries the meta and the position.
    assert_eq!(
        parse(&channels.join("chat", Some(json!({"name": "Ann"})))),
        json!({"op": "join", "channel": "chat", "meta": {"name": "Ann"},
               "since": {"offset": 41, "epoch": "e1"}})
    );
    let recovered = reply(json!({"recovered": true, "missed": 2,
                                 "history": {"offset": 43, "epoch": "e1"}}));
    assert_eq!(
        channels.observe(&recovered),
        Some(Recovery {
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
    channels.join("chat", None);
    let lost = reply(json!({"recovered": false, "recovery": "epoch_changed",
                            "history": {"offset": 3, "epoch": "e2"}}));
    assert_eq!(
        channels.observe(&lost),
        Some(Recovery {
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
    assert_eq!(channels.observe(b"not json"), None);
}
