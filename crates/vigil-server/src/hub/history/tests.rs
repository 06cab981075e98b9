//! A channel's history as the hub keeps it: offsets and epoch on each
//! message, a join that names its place getting exactly what it missed,
//! honest refusals, pages, and forgetting.

use super::*;

const LIMITS: Limits = Limits {
    max_messages: 3,
    max_bytes: 1 << 20,
    max_age: Duration::from_secs(60),
};

fn message(histories: &mut Histories, now: Instant, channel: &Arc<str>, n: u64) -> Value {
    let text = histories.message(
        now,
        channel,
        Some(LIMITS),
        json!({"type": "message", "channel": &**channel, "from": null, "data": n}),
    );
    serde_json::from_slice(&text).expect("JSON")
}

fn since(offset: u64, epoch: &Value) -> Since {
    Since {
        offset,
        epoch: epoch.as_str().expect("an epoch").to_owned(),
    }
}

#[test]
fn messages_carry_offsets_and_a_join_since_one_gets_what_followed() {
    let t0 = Instant::now();
    let mut histories = Histories::new();
    let chat: Arc<str> = Arc::from("chat");
    let first = message(&mut histories, t0, &chat, 1);
    assert_eq!(first["offset"], 1);
    let epoch = first["epoch"].clone();
    assert_eq!(epoch.as_str().map(str::len), Some(16), "64 bits in hex");
    for n in 2..=4 {
        assert_eq!(message(&mut histories, t0, &chat, n)["offset"], n);
    }
    let (fields, missed) =
        histories.resume(t0, &chat, Some(LIMITS), Some(&since(2, &epoch)), false);
    assert_eq!(fields["recovered"], true);
    assert_eq!(fields["missed"], 2);
    assert_eq!(fields["history"], json!({"offset": 4, "epoch": epoch}));
    let data: Vec<Value> = missed
        .iter()
        .map(|text| serde_json::from_slice::<Value>(text).expect("JSON")["data"].clone())
        .collect();
    assert_eq!(data, [json!(3), json!(4)]);
    // A join without `since` learns where the channel is.
    let (fields, missed) = histories.resume(t0, &chat, Some(LIMITS), None, false);
    assert!(missed.is_empty() && fields.get("recovered").is_none());
    assert_eq!(fields["history"]["offset"], 4);
}

#[test]
fn a_recovery_that_cannot_be_whole_says_why() {
    let t0 = Instant::now();
    let mut histories = Histories::new();
    let chat: Arc<str> = Arc::from("chat");
    let epoch = message(&mut histories, t0, &chat, 1)["epoch"].clone();
    for n in 2..=5 {
        message(&mut histories, t0, &chat, n);
    }
    let why = |histories: &mut Histories, since: Since, limits, cluster| {
        let (fields, missed) = histories.resume(t0, &chat, limits, Some(&since), cluster);
        assert!(missed.is_empty());
        assert_eq!(fields["recovered"], false);
        fields["recovery"].clone()
    };
    // Three kept: 3, 4 and 5; offset 1's follower is gone.
    assert_eq!(
        why(&mut histories, since(1, &epoch), Some(LIMITS), false),
        "too_old"
    );
    assert_eq!(
        why(&mut histories, since(9, &epoch), Some(LIMITS), false),
        "ahead"
    );
    let other = Since {
        offset: 4,
        epoch: "0123456789abcdef".into(),
    };
    assert_eq!(
        why(&mut histories, other, Some(LIMITS), false),
        "epoch_changed"
    );
    let garbled = Since {
        offset: 4,
        epoch: "not hex".into(),
    };
    assert_eq!(
        why(&mut histories, garbled, Some(LIMITS), false),
        "epoch_changed"
    );
    assert_eq!(
        why(&mut histories, since(4, &epoch), None, false),
        "history_off"
    );
    assert_eq!(
        why(&mut histories, since(4, &epoch), None, true),
        "history_off",
        "a channel without history says so in a cluster too"
    );
    assert_eq!(
        why(&mut histories, since(4, &epoch), Some(LIMITS), true),
        "cluster"
    );
    // Another process (a restart) has another epoch for the same channel.
    let mut restarted = Histories::new();
    let (fields, _) = restarted.resume(t0, &chat, Some(LIMITS), Some(&since(5, &epoch)), false);
    assert_eq!(fields["recovery"], "epoch_changed");
}

#[test]
fn pages_of_kept_messages_and_forgetting_an_empty_channel() {
    let t0 = Instant::now();
    let mut histories = Histories::new();
    let chat: Arc<str> = Arc::from("chat");
    for n in 1..=3 {
        message(&mut histories, t0, &chat, n);
    }
    let page = histories
        .page(t0, &chat, Some(LIMITS), None, 2)
        .expect("kept");
    let offsets: Vec<Value> = page["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["offset"].clone())
        .collect();
    assert_eq!(offsets, [json!(1), json!(2)]);
    assert_eq!(page["next"], 2);
    let last = histories
        .page(t0, &chat, Some(LIMITS), Some(2), 2)
        .expect("kept");
    assert_eq!(last["messages"][0]["data"], 3);
    assert_eq!(last["next"], Value::Null);
    assert!(histories.page(t0, &chat, None, None, 2).is_none(), "off");
    assert_eq!(histories.totals().1, 3);
    // Past their age the messages go; the empty history is kept while it
    // has members, and an hour after it last had some, then forgotten.
    let later = t0 + Duration::from_secs(61);
    histories.sweep(later, |_| false);
    assert_eq!(histories.totals(), (1, 0, 0));
    let seen = later + FORGET_AFTER;
    histories.sweep(seen, |_| true);
    assert_eq!(histories.totals().0, 1, "kept while it has members");
    let second = Duration::from_secs(1);
    histories.sweep(seen + FORGET_AFTER - second, |_| false);
    assert_eq!(
        histories.totals().0,
        1,
        "kept an hour after its members left"
    );
    histories.sweep(seen + FORGET_AFTER + second, |_| false);
    assert_eq!(histories.totals().0, 0);
    assert_eq!(histories.poll_timeout(), None);
    // A page of a channel that never had a message creates nothing.
    let quiet: Arc<str> = Arc::from("quiet");
    let page = histories
        .page(later, &quiet, Some(LIMITS), None, 10)
        .expect("keeps history");
    assert_eq!(page["messages"], json!([]));
    assert_eq!(page["epoch"], Value::Null);
    assert_eq!(histories.totals().0, 0);
}

#[test]
fn a_recovery_larger_than_a_queue_should_take_is_refused_whole() {
    let t0 = Instant::now();
    let mut histories = Histories::new();
    let big: Arc<str> = Arc::from("big");
    let limits = Limits {
        max_messages: 1000,
        max_bytes: 64 << 20,
        max_age: Duration::from_secs(60),
    };
    let text = "x".repeat(64 << 10);
    let mut epoch = Value::Null;
    for _ in 0..20 {
        let event = json!({"type": "message", "channel": "big", "from": null, "data": text});
        let sent: Value = serde_json::from_slice(&histories.message(t0, &big, Some(limits), event))
            .expect("JSON");
        epoch = sent["epoch"].clone();
    }
    // 20 messages of 64 KiB: more than one recovery sends.
    let (fields, missed) = histories.resume(t0, &big, Some(limits), Some(&since(0, &epoch)), false);
    assert_eq!(
        (fields["recovered"].clone(), fields["recovery"].clone()),
        (json!(false), json!("too_many"))
    );
    assert!(missed.is_empty());
    // The last ten are within it.
    let (fields, missed) =
        histories.resume(t0, &big, Some(limits), Some(&since(10, &epoch)), false);
    assert_eq!(fields["recovered"], true);
    assert_eq!(missed.len(), 10);
    // A page stops at its byte bound and says where to go on.
    let page = histories
        .page(t0, &big, Some(limits), None, 100)
        .expect("kept");
    let held = page["messages"].as_array().expect("messages").len();
    assert!((1..20).contains(&held), "{held}");
    assert_eq!(page["next"], held as u64);
}
