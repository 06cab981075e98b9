//! Channel namespaces: a channel's options come from the first
//! `[[namespace]]` of the config file whose `channels` pattern matches its
//! name, or else from the default namespace (today's behaviour: members
//! listed, clients may publish, no member limit, the global meta limit and
//! leave grace).
//!
//! ```toml
//! [[namespace]]
//! channels = "live:*"      # a glob over channel names
//! presence = "counts"      # or "members" (the default)
//! client_publish = false   # only the HTTP API publishes here
//! max_members = 100000     # users present at most
//! leave_grace = "30s"      # a viewer who drops comes back unseen for 30 s
//! history_size = 100       # the last 100 messages are kept, for recovery
//! history_ttl = "2m"       # each for 2 minutes at most
//!
//! [[namespace]]
//! channels = "room:*"
//! presence_cap = 500       # above 500 users: counts for everyone, list in pages
//! max_meta_bytes = 256
//! ```

use crate::config::render_toml;
use std::time::Duration;
use vigil_core::{history::Limits as HistoryLimits, presence::PresenceConfig};

/// What members of a channel see of each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PresenceMode {
    /// The list of members and a diff per change (merged per window).
    Members,
    /// The number of users and connections and its changes, never the list.
    Counts,
}

/// The options of the channels of one namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChannelOptions {
    pub(crate) presence: PresenceMode,
    /// In `members` mode: above this many users the channel behaves as
    /// `counts` (until it is empty again); the list stays readable in pages.
    pub(crate) presence_cap: Option<usize>,
    /// Whether clients may publish (the HTTP API always may).
    pub(crate) client_publish: bool,
    /// Users present at most; a join beyond is refused with `channel_full`.
    pub(crate) max_members: Option<usize>,
    /// The largest join `meta`, as JSON.
    pub(crate) max_meta_bytes: usize,
    /// How long a member whose last connection went stays present; `None`:
    /// the global `leave_grace`.
    pub(crate) leave_grace: Option<Duration>,
    /// The messages kept for recovery (`history_size`, `history_ttl`,
    /// `history_bytes`); `None`: none.
    pub(crate) history: Option<HistoryLimits>,
}

/// How long a message is kept when `history_ttl` is not given, and for how
/// long at most.
const HISTORY_TTL: Duration = Duration::from_secs(5 * 60);
const MAX_HISTORY_TTL: Duration = Duration::from_secs(24 * 3600);
/// The bytes of messages one channel keeps when `history_bytes` is not
/// given, and at most.
const HISTORY_BYTES: usize = 1 << 20;
const MAX_HISTORY_BYTES: u64 = 64 << 20;

/// One `[[namespace]]`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Namespace {
    pattern: glob::Pattern,
    options: ChannelOptions,
}

/// Every namespace, in the config file's order, and the default.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Namespaces {
    list: Vec<Namespace>,
    /// How many of `list` the config file declared (the rest: the
    /// built-in [`DEMO_CHANNELS`] namespace).
    declared: usize,
    default: ChannelOptions,
}

/// With no `[[namespace]]` in the config, channels matching this keep a
/// small history (the last [`DEMO_HISTORY`] messages for 10 minutes), so
/// that trying vigil out (the dashboard, a page on `demo`) shows recovery
/// at work; every other channel keeps none.
pub(crate) const DEMO_CHANNELS: &str = "demo*";
const DEMO_HISTORY: usize = 100;
const DEMO_HISTORY_TTL: Duration = Duration::from_secs(600);

impl Namespaces {
    /// The namespaces of a config file, with the global meta limit as the
    /// default's. None: every channel gets the default, but for the
    /// built-in [`DEMO_CHANNELS`] namespace.
    pub(crate) fn new(list: Vec<Namespace>, max_meta_bytes: usize) -> Self {
        let declared = list.len();
        let mut list: Vec<Namespace> = list
            .into_iter()
            .map(|mut namespace| {
                if namespace.options.max_meta_bytes == 0 {
                    namespace.options.max_meta_bytes = max_meta_bytes;
                }
                namespace
            })
            .collect();
        let default = ChannelOptions {
            presence: PresenceMode::Members,
            presence_cap: None,
            client_publish: true,
            max_members: None,
            max_meta_bytes,
            leave_grace: None,
            history: None,
        };
        if list.is_empty() {
            list.push(Namespace {
                pattern: glob::Pattern::new(DEMO_CHANNELS).expect("a valid glob"),
                options: ChannelOptions {
                    history: Some(HistoryLimits {
                        max_messages: DEMO_HISTORY,
                        max_bytes: HISTORY_BYTES,
                        max_age: DEMO_HISTORY_TTL,
                    }),
                    ..default.clone()
                },
            });
        }
        Self {
            list,
            declared,
            default,
        }
    }

    /// The options of `channel`: its first matching namespace's.
    pub(crate) fn options(&self, channel: &str) -> &ChannelOptions {
        self.list
            .iter()
            .find(|namespace| namespace.pattern.matches(channel))
            .map_or(&self.default, |namespace| &namespace.options)
    }

    /// How many namespaces the config file declared.
    pub(crate) fn declared(&self) -> usize {
        self.declared
    }
}

/// The keys a `[[namespace]]` may have.
const KEYS: [&str; 10] = [
    "channels",
    "presence",
    "presence_cap",
    "client_publish",
    "max_members",
    "max_meta_bytes",
    "leave_grace",
    "history_size",
    "history_ttl",
    "history_bytes",
];

/// Reads the `namespace` array of a config file. Every problem is one
/// line naming the namespace (its position and pattern), the key, the
/// value and what is allowed; all of them are returned at once.
pub(crate) fn parse(value: &toml::Value) -> Result<Vec<Namespace>, Vec<String>> {
    let Some(tables) = value.as_array() else {
        return Err(vec![
            "`namespace` is an array of tables: write each as `[[namespace]]`".to_owned(),
        ]);
    };
    let mut problems = Vec::new();
    let mut namespaces = Vec::new();
    let mut catch_all: Option<(usize, String)> = None;
    for (index, table) in tables.iter().enumerate() {
        let position = index + 1;
        let Some(table) = table.as_table() else {
            problems.push(format!(
                "namespace {position} is not a table (`[[namespace]]`)"
            ));
            continue;
        };
        let label = match table.get("channels").and_then(toml::Value::as_str) {
            Some(pattern) => format!("namespace {position} (channels = {pattern:?})"),
            None => format!("namespace {position}"),
        };
        let mut problem = |text: String| problems.push(format!("{label}: {text}"));
        for key in table.keys() {
            if !KEYS.contains(&key.as_str()) {
                problem(format!(
                    "unknown key `{key}`; a namespace has {}",
                    KEYS.join(", ")
                ));
            }
        }
        let pattern = match table.get("channels") {
            None => {
                problem(
                    "`channels` is required: a glob over channel names, e.g. \"live:*\"".into(),
                );
                None
            }
            Some(value) => match value.as_str().map(pattern_of) {
                Some(Ok(pattern)) => Some(pattern),
                Some(Err(why)) => {
                    problem(format!("channels = {}: {why}", render_toml(value)));
                    None
                }
                None => {
                    problem(format!(
                        "channels = {} is not a string; expected a glob",
                        render_toml(value)
                    ));
                    None
                }
            },
        };
        if let (Some(pattern), Some((first, first_pattern))) = (&pattern, &catch_all) {
            problem(format!(
                "can never apply: namespace {first} (channels = {first_pattern:?}) matches every \
                 channel first, including {:?}",
                pattern.as_str()
            ));
        }
        let presence = match table.get("presence") {
            None => PresenceMode::Members,
            Some(value) => match value.as_str() {
                Some("members") => PresenceMode::Members,
                Some("counts") => PresenceMode::Counts,
                _ => {
                    problem(format!(
                        "presence = {} is not a presence mode; expected \"members\" or \"counts\"",
                        render_toml(value)
                    ));
                    PresenceMode::Members
                }
            },
        };
        let mut count = |key: &str, max: u64| -> Option<usize> {
            let value = table.get(key)?;
            match value.as_integer() {
                Some(n) if n >= 1 && n as u64 <= max => usize::try_from(n).ok(),
                _ => {
                    problem(format!(
                        "{key} = {} is out of range; expected 1 to {max}",
                        render_toml(value)
                    ));
                    None
                }
            }
        };
        let presence_cap = count("presence_cap", 1_000_000_000);
        let max_members = count("max_members", 1_000_000_000);
        let max_meta_bytes = count("max_meta_bytes", 1 << 20).unwrap_or(0);
        let history_size = count("history_size", 100_000);
        let history_bytes = count("history_bytes", MAX_HISTORY_BYTES);
        let client_publish = match table.get("client_publish") {
            None => true,
            Some(value) => value.as_bool().unwrap_or_else(|| {
                problem(format!(
                    "client_publish = {} is not true or false",
                    render_toml(value)
                ));
                true
            }),
        };
        let mut duration =
            |key: &str, zero: bool, max: Duration, max_text: &str| -> Option<Duration> {
                let value = table.get(key)?;
                let parsed = value
                    .as_str()
                    .ok_or("is not a string")
                    .and_then(crate::config::parse_duration);
                match parsed {
                    Ok(duration) if duration <= max && (zero || !duration.is_zero()) => {
                        Some(duration)
                    }
                    Ok(_) => {
                        let least = if zero { "0" } else { "above 0" };
                        problem(format!(
                            "{key} = {} is out of range; expected {least} to {max_text}",
                            render_toml(value)
                        ));
                        None
                    }
                    Err(why) => {
                        problem(format!(
                            "{key} = {} {why}; expected a whole number and a unit (ms, s, m or h), \
                         such as \"2s\"",
                            render_toml(value)
                        ));
                        None
                    }
                }
            };
        let leave_grace = duration("leave_grace", true, PresenceConfig::MAX_LEAVE_GRACE, "1h");
        let history_ttl = duration("history_ttl", false, MAX_HISTORY_TTL, "24h");
        let history = match history_size {
            Some(max_messages) => Some(HistoryLimits {
                max_messages,
                max_bytes: history_bytes.unwrap_or(HISTORY_BYTES),
                max_age: history_ttl.unwrap_or(HISTORY_TTL),
            }),
            None => {
                for key in ["history_ttl", "history_bytes"] {
                    if table.get(key).is_some() {
                        problem(format!(
                            "{key} bounds the history, which history_size turns on: add \
                             history_size (the messages kept)"
                        ));
                    }
                }
                None
            }
        };
        if presence == PresenceMode::Counts && presence_cap.is_some() {
            problem(
                "presence_cap applies to presence = \"members\" (a counts channel never lists)"
                    .into(),
            );
        }
        if let Some(pattern) = pattern {
            if catch_all.is_none() && matches!(pattern.as_str(), "*" | "**") {
                catch_all = Some((position, pattern.as_str().to_owned()));
            }
            namespaces.push(Namespace {
                pattern,
                options: ChannelOptions {
                    presence,
                    presence_cap,
                    client_publish,
                    max_members,
                    max_meta_bytes,
                    leave_grace,
                    history,
                },
            });
        }
    }
    if problems.is_empty() {
        Ok(namespaces)
    } else {
        Err(problems)
    }
}

/// A `channels` glob: valid, and able to match some valid channel name.
fn pattern_of(text: &str) -> Result<glob::Pattern, String> {
    let pattern = glob::Pattern::new(text).map_err(|e| format!("not a glob pattern: {e}"))?;
    let mut literal = String::new();
    let mut in_class = false;
    for c in text.chars() {
        match c {
            '[' => in_class = true,
            ']' => in_class = false,
            '*' | '?' => {}
            c if !in_class => literal.push(c),
            _ => {}
        }
    }
    if let Some(bad) = literal
        .chars()
        .find(|&c| !crate::protocol::is_channel_char(c))
    {
        return Err(format!(
            "{bad:?} never occurs in a channel name (letters, digits and _ - . : / only), so \
             this pattern matches no channel"
        ));
    }
    Ok(pattern)
}

#[cfg(test)]
mod tests;
