//! The timeline helper of the presence specs: plays a script of calls on a
//! table, prints what came out as text, and checks a replaying client agrees.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use crate::presence::{ConnId, Departure, Event, Presence, PresenceConfig};

pub(super) use crate::tests::origin;

/// Plays `script` on a table with the default config (grace 5 s) and compares
/// what it printed with `expect`. See [`check_with`].
#[track_caller]
pub(super) fn check(script: &str, expect: &str) {
    check_with(PresenceConfig::default(), script, expect);
}

/// Plays `script`, one call per line: `<offset> <command> <args>`, offsets
/// like `1500ms` or `6s` after the origin, connections as `c<N>`.
///
/// Commands: `connect c1 alice`, `join c1 lobby [meta]`, `leave c1 lobby`,
/// `will c1 payload|-`, `disconnect c1 clean|abnormal`, `tick`
/// (`handle_timeout`); queries: `timer`, `members lobby`, `online lobby
/// alice`, `counts`, `channels c1`.
///
/// Prints, prefixed by the offset of the call: every event drained after it
/// (`diff lobby v2 +alice=meta -bob`, `will c1 alice payload`), the answer of
/// a query, and `false` for a command that refused. After every call it
/// checks that no timer is due at or before the latest instant seen, and that
/// replaying every diff so far gives exactly `members` of every channel.
#[track_caller]
pub(super) fn check_with(config: PresenceConfig, script: &str, expect: &str) {
    let origin = origin();
    let mut presence = Presence::new(config);
    let mut replica = Replica::default();
    let mut latest = origin;
    let mut out = String::new();
    for line in script.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let words: Vec<&str> = line.split_whitespace().collect();
        let (at, command, args) = (offset(words[0]), words[1], &words[2..]);
        let now = origin + at;
        latest = latest.max(now);
        let prefix = format!("{} ", show(at));
        let answer = match (command, args) {
            ("connect", [conn, user]) => refused(presence.connect(now, id(conn), arc(user))),
            ("join", [conn, channel, meta @ ..]) => {
                let meta = meta.first().map(|m| arc(m));
                refused(presence.join(now, id(conn), arc(channel), meta))
            }
            ("leave", [conn, channel]) => refused(presence.leave(now, id(conn), channel)),
            ("will", [conn, payload]) => {
                let payload = (*payload != "-").then(|| arc(payload));
                refused(presence.set_last_will(id(conn), payload))
            }
            ("disconnect", [conn, how]) => {
                let departure = match *how {
                    "clean" => Departure::Clean,
                    "abnormal" => Departure::Abnormal,
                    other => panic!("bad departure {other:?} in {line:?}"),
                };
                refused(presence.disconnect(now, id(conn), departure))
            }
            ("tick", []) => {
                presence.handle_timeout(now);
                None
            }
            ("timer", []) => Some(match presence.poll_timeout() {
                Some(deadline) => format!("timer {}", show(deadline - origin)),
                None => "timer none".to_owned(),
            }),
            ("members", [channel]) => {
                let snapshot = presence.members(channel);
                let mut text = format!("members {channel} v{}:", snapshot.version);
                for member in &snapshot.members {
                    text.push(' ');
                    text.push_str(&member_text(&member.user, member.meta.as_deref()));
                }
                Some(text)
            }
            ("page", [channel, after, limit]) => {
                let after = (*after != "-").then_some(*after);
                let limit = limit.parse().expect("page limit");
                let page = presence.members_page(channel, after, limit);
                let mut text = format!("page {channel} v{}:", page.version);
                for member in &page.members {
                    text.push(' ');
                    text.push_str(&member_text(&member.user, member.meta.as_deref()));
                }
                text.push_str(&format!(" next={}", page.next.as_deref().unwrap_or("-")));
                Some(text)
            }
            ("stats", [channel]) => {
                let stats = presence.channel_stats(channel);
                Some(format!(
                    "stats {channel} v{}: users={} connections={}",
                    stats.version, stats.users, stats.connections
                ))
            }
            ("online", [channel, user]) => {
                let online = presence.is_online(channel, user);
                Some(format!("online {channel} {user}: {online}"))
            }
            ("counts", []) => Some(format!(
                "counts: conns={} channels={} pending={}",
                presence.connection_count(),
                presence.channel_count(),
                presence.pending_leave_count(),
            )),
            ("channels", [conn]) => {
                let channels: Vec<&str> = presence.channels_of(id(conn)).collect();
                Some(format!("channels {conn}: {}", channels.join(" ")))
            }
            _ => panic!("cannot read script line {line:?}"),
        };
        if let Some(answer) = answer {
            writeln!(out, "{prefix}{answer}").unwrap();
        }
        while let Some(event) = presence.poll_event() {
            writeln!(out, "{prefix}{}", replica.apply(&event)).unwrap();
        }
        if let Some(deadline) = presence.poll_timeout() {
            assert!(deadline > latest, "after {line:?}: timer due in the past");
        }
        replica.assert_matches(&presence, line);
    }
    let normalize = |text: &str| -> String {
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        lines.join("\n")
    };
    let (expect, actual) = (normalize(expect), normalize(&out));
    assert!(
        expect == actual,
        "\n--- expected ---\n{expect}\n--- actual ---\n{actual}\n"
    );
}

/// What a client learns by applying every diff in order.
#[derive(Debug, Default)]
struct Replica {
    /// Channel → (version of its latest diff, user → meta).
    channels: BTreeMap<String, (u64, BTreeMap<String, Option<String>>)>,
}

impl Replica {
    /// Applies `event`, checking it is a real, newer change; returns its text.
    #[track_caller]
    fn apply(&mut self, event: &Event) -> String {
        match event {
            Event::Diff {
                channel,
                version,
                joins,
                leaves,
            } => {
                assert!(!joins.is_empty() || !leaves.is_empty(), "empty diff");
                let (last, members) = self.channels.entry(channel.to_string()).or_default();
                assert!(version > last, "{channel}: v{version} after v{last}");
                *last = *version;
                let mut text = format!("diff {channel} v{version}");
                for join in joins {
                    let meta = join.meta.as_deref().map(str::to_owned);
                    let old = members.insert(join.user.to_string(), meta.clone());
                    assert_ne!(old, Some(meta), "{}: join without change", join.user);
                    text.push_str(" +");
                    text.push_str(&member_text(&join.user, join.meta.as_deref()));
                }
                for user in leaves {
                    assert!(members.remove(&**user).is_some(), "{user}: left twice");
                    write!(text, " -{user}").unwrap();
                }
                text
            }
            Event::LastWill {
                conn,
                user,
                payload,
            } => format!("will c{} {user} {payload}", conn.0),
        }
    }

    #[track_caller]
    fn assert_matches(&self, presence: &Presence, line: &str) {
        let mut non_empty = 0;
        for (channel, (version, members)) in &self.channels {
            let snapshot = presence.members(channel);
            let actual: BTreeMap<String, Option<String>> = snapshot
                .members
                .iter()
                .map(|m| (m.user.to_string(), m.meta.as_deref().map(str::to_owned)))
                .collect();
            assert_eq!(&actual, members, "after {line:?}: replay of {channel}");
            assert!(snapshot.version >= *version, "after {line:?}: {channel}");
            if !members.is_empty() {
                non_empty += 1;
                assert_eq!(snapshot.version, *version, "after {line:?}: {channel}");
            }
        }
        assert_eq!(presence.channel_count(), non_empty, "after {line:?}");
    }
}

fn member_text(user: &str, meta: Option<&str>) -> String {
    match meta {
        Some(meta) => format!("{user}={meta}"),
        None => user.to_owned(),
    }
}

fn refused(accepted: bool) -> Option<String> {
    (!accepted).then(|| "false".to_owned())
}

pub(super) fn arc(text: &str) -> Arc<str> {
    Arc::from(text)
}

fn id(conn: &str) -> ConnId {
    let number = conn.strip_prefix('c').and_then(|n| n.parse().ok());
    ConnId(number.unwrap_or_else(|| panic!("bad connection {conn:?}")))
}

fn offset(text: &str) -> Duration {
    let parse = |n: &str| {
        n.parse::<u64>()
            .unwrap_or_else(|_| panic!("bad offset {text:?}"))
    };
    match text.strip_suffix("ms") {
        Some(ms) => Duration::from_millis(parse(ms)),
        None => Duration::from_secs(parse(text.strip_suffix('s').unwrap_or(text))),
    }
}

fn show(offset: Duration) -> String {
    let ms = offset.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}
