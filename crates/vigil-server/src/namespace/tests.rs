//! Namespaces as the config file declares them: the first match wins, the
//! default keeps today's behaviour, and every mistake is named at once.

use super::*;

fn namespaces(text: &str) -> Result<Namespaces, Vec<String>> {
    let table: toml::Table = text.parse().expect("TOML");
    let list = match table.get("namespace") {
        Some(value) => parse(value)?,
        None => Vec::new(),
    };
    Ok(Namespaces::new(list, 2048))
}

#[test]
fn the_first_matching_namespace_gives_a_channel_its_options() {
    let namespaces = namespaces(
        r#"
        [[namespace]]
        channels = "live:*"
        presence = "counts"
        client_publish = false
        max_members = 100000

        [[namespace]]
        channels = "live:*:chat"
        presence_cap = 3

        [[namespace]]
        channels = "room/*"
        presence_cap = 500
        max_meta_bytes = 256
        leave_grace = "30s"
        history_size = 50

        [[namespace]]
        channels = "now/*"
        leave_grace = "0s"

        [[namespace]]
        channels = "feed/*"
        history_size = 1000
        history_ttl = "10m"
        history_bytes = 4194304
        "#,
    )
    .expect("valid");
    assert_eq!(namespaces.declared(), 5);
    assert_eq!(
        namespaces.options("now/a").leave_grace,
        Some(std::time::Duration::ZERO),
        "no grace at all is allowed"
    );
    assert_eq!(
        namespaces.options("room/a").history,
        Some(HistoryLimits {
            max_messages: 50,
            max_bytes: HISTORY_BYTES,
            max_age: HISTORY_TTL,
        }),
        "the defaults of the other bounds"
    );
    assert_eq!(
        namespaces.options("feed/x").history,
        Some(HistoryLimits {
            max_messages: 1000,
            max_bytes: 4 << 20,
            max_age: std::time::Duration::from_secs(600),
        })
    );
    assert_eq!(
        namespaces.options("live:final").history,
        None,
        "off by default"
    );
    let live = namespaces.options("live:final");
    assert_eq!(live.presence, PresenceMode::Counts);
    assert!(!live.client_publish);
    assert_eq!(live.max_members, Some(100_000));
    assert_eq!(live.max_meta_bytes, 2048, "the global limit when not set");
    // `live:*` comes first, so `live:x:chat` is a counts channel too.
    assert_eq!(
        namespaces.options("live:x:chat").presence,
        PresenceMode::Counts
    );
    let room = namespaces.options("room/a/b");
    assert_eq!(room.presence_cap, Some(500));
    assert_eq!(room.max_meta_bytes, 256);
    assert_eq!(room.leave_grace, Some(std::time::Duration::from_secs(30)));
    assert_eq!(live.leave_grace, None, "the global grace when not set");
    let other = namespaces.options("lobby");
    assert_eq!(
        *other,
        ChannelOptions {
            presence: PresenceMode::Members,
            presence_cap: None,
            client_publish: true,
            max_members: None,
            max_meta_bytes: 2048,
            leave_grace: None,
            history: None,
        }
    );
}

#[test]
fn no_namespaces_means_every_channel_behaves_as_before_but_demo_keeps_history() {
    let none = namespaces("").expect("valid");
    assert_eq!(none.declared(), 0);
    assert_eq!(none.options("anything").presence, PresenceMode::Members);
    assert!(none.options("anything").client_publish);
    assert_eq!(none.options("anything").history, None);
    let demo = none.options("demo-1").history.expect("demo history");
    assert_eq!((demo.max_messages, demo.max_age.as_secs()), (100, 600));
    // A config file's namespaces replace it.
    let declared = namespaces("[[namespace]]\nchannels = \"room:*\"\n").expect("valid");
    assert_eq!(declared.options("demo").history, None);
}

#[test]
fn every_mistake_is_reported_with_its_namespace() {
    let problems = namespaces(
        r#"
        [[namespace]]
        channels = "*"

        [[namespace]]
        channels = "live:*"
        presence = "count"
        presence_cap = 0
        max_member = 5

        [[namespace]]
        presence = "counts"
        presence_cap = 10

        [[namespace]]
        channels = "bad channel*"
        client_publish = "no"

        [[namespace]]
        channels = 7
        leave_grace = "2 hours"

        [[namespace]]
        channels = "feed/*"
        history_ttl = "48h"
        history_bytes = 10

        [[namespace]]
        channels = "log/*"
        history_size = 0
        "#,
    )
    .expect_err("refused");
    let all = problems.join("\n");
    for expected in [
        r#"namespace 2 (channels = "live:*"): can never apply: namespace 1 (channels = "*") matches every channel first"#,
        r#"namespace 2 (channels = "live:*"): presence = "count" is not a presence mode; expected "members" or "counts""#,
        r#"namespace 2 (channels = "live:*"): presence_cap = 0 is out of range; expected 1 to 1000000000"#,
        r#"namespace 2 (channels = "live:*"): unknown key `max_member`"#,
        "namespace 3: `channels` is required",
        r#"namespace 3: presence_cap applies to presence = "members""#,
        r#"namespace 4 (channels = "bad channel*"): channels = "bad channel*": ' ' never occurs in a channel name"#,
        r#"namespace 4 (channels = "bad channel*"): client_publish = "no" is not true or false"#,
        "namespace 5: channels = 7 is not a string",
        r#"namespace 5: leave_grace = "2 hours" "#,
        r#"namespace 6 (channels = "feed/*"): history_ttl = "48h" is out of range; expected above 0 to 24h"#,
        r#"namespace 6 (channels = "feed/*"): history_bytes bounds the history, which history_size turns on"#,
        r#"namespace 7 (channels = "log/*"): history_size = 0 is out of range; expected 1 to 100000"#,
    ] {
        assert!(all.contains(expected), "missing {expected:?} in:\n{all}");
    }
    let not_an_array = namespaces("namespace = 3").expect_err("refused");
    assert!(
        not_an_array[0].contains("[[namespace]]"),
        "{not_an_array:?}"
    );
}
