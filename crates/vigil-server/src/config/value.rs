//! Turning what the user wrote, text from a flag or variable or a TOML value,
//! into a setting's type, with the humane duration syntax ("20s", "500ms").

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;
use std::path::PathBuf;
use std::time::Duration;

/// A value as one layer holds it, before it is given its type.
#[derive(Debug, Clone, Copy)]
pub(super) enum Raw<'a> {
    /// From a flag or an environment variable.
    Text(&'a str),
    /// From the config file.
    Toml(&'a toml::Value),
}

/// A TOML value for an error message, as [`Raw::render`] shows it.
pub(crate) fn render_toml(value: &toml::Value) -> String {
    Raw::Toml(value).render()
}

impl Raw<'_> {
    /// The value for an error message: quoted text, or the TOML value.
    pub(super) fn render(self) -> String {
        match self {
            Self::Text(text) => format!("{text:?}"),
            Self::Toml(toml::Value::String(text)) => format!("{text:?}"),
            Self::Toml(toml::Value::Integer(n)) => n.to_string(),
            Self::Toml(toml::Value::Float(x)) => x.to_string(),
            Self::Toml(toml::Value::Boolean(b)) => b.to_string(),
            Self::Toml(toml::Value::Datetime(d)) => d.to_string(),
            Self::Toml(toml::Value::Array(_)) => "[...]".to_owned(),
            Self::Toml(toml::Value::Table(_)) => "{...}".to_owned(),
        }
    }
}

/// Why a value was refused, e.g. "has no unit" or "is an integer".
pub(super) type Problem = &'static str;

/// A setting's type, readable from both kinds of [`Raw`] value.
pub(super) trait SettingValue: Sized {
    /// What is allowed, for error messages.
    const EXPECTED: &'static str;

    /// Parses a flag's or variable's text.
    fn from_text(text: &str) -> Result<Self, Problem>;

    /// Reads a TOML value; by default only a string, parsed as text.
    fn from_toml(value: &toml::Value) -> Result<Self, Problem> {
        match value {
            toml::Value::String(text) => Self::from_text(text),
            other => Err(type_problem(other)),
        }
    }

    fn from_raw(raw: Raw<'_>) -> Result<Self, Problem> {
        match raw {
            Raw::Text(text) => Self::from_text(text),
            Raw::Toml(value) => Self::from_toml(value),
        }
    }
}

fn type_problem(value: &toml::Value) -> Problem {
    match value {
        toml::Value::String(_) => "is a string",
        toml::Value::Integer(_) => "is an integer",
        toml::Value::Float(_) => "is a float",
        toml::Value::Boolean(_) => "is a boolean",
        toml::Value::Datetime(_) => "is a date-time",
        toml::Value::Array(_) => "is an array",
        toml::Value::Table(_) => "is a table",
    }
}

impl SettingValue for SocketAddr {
    const EXPECTED: &'static str =
        "an IP address and a port, such as 127.0.0.1:8080 or [::1]:8080 (port 0 picks a free port)";

    fn from_text(text: &str) -> Result<Self, Problem> {
        text.parse().map_err(|_| "is not an IP address and port")
    }
}

impl SettingValue for bool {
    const EXPECTED: &'static str = "true or false (1 or 0 in a variable)";

    fn from_text(text: &str) -> Result<Self, Problem> {
        if text == "1" || text.eq_ignore_ascii_case("true") {
            Ok(true)
        } else if text == "0" || text.eq_ignore_ascii_case("false") {
            Ok(false)
        } else {
            Err("is not a boolean")
        }
    }

    fn from_toml(value: &toml::Value) -> Result<Self, Problem> {
        value.as_bool().ok_or_else(|| type_problem(value))
    }
}

/// Only the JWT secret is a free string.
impl SettingValue for String {
    const EXPECTED: &'static str = "a non-empty string";

    fn from_text(text: &str) -> Result<Self, Problem> {
        if text.is_empty() {
            return Err("is empty");
        }
        Ok(text.to_owned())
    }
}

impl SettingValue for PathBuf {
    const EXPECTED: &'static str = "a file path";

    fn from_text(text: &str) -> Result<Self, Problem> {
        if text.is_empty() {
            return Err("is empty");
        }
        Ok(PathBuf::from(text))
    }
}

/// A list setting from a flag or variable: comma-separated entries, each
/// read by `parse`; empty entries are skipped.
fn list_from_text<T>(text: &str, parse: fn(&str) -> Result<T, Problem>) -> Result<Vec<T>, Problem> {
    text.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(parse)
        .collect()
}

/// A list setting from the file: an array of strings, or one
/// comma-separated string.
fn list_from_toml<T>(
    value: &toml::Value,
    parse: fn(&str) -> Result<T, Problem>,
) -> Result<Vec<T>, Problem> {
    match value {
        toml::Value::Array(items) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .ok_or("has an entry that is not a string")
                    .and_then(parse)
            })
            .collect(),
        toml::Value::String(text) => list_from_text(text, parse),
        other => Err(type_problem(other)),
    }
}

/// `allowed_origins`: comma-separated in a flag or variable, an array of
/// strings (or one comma-separated string) in the file.
impl SettingValue for Vec<String> {
    const EXPECTED: &'static str = "origins such as https://app.example.com (scheme://host[:port], \
         comma-separated in a flag or variable, an array of strings in the file), or *";

    fn from_text(text: &str) -> Result<Self, Problem> {
        list_from_text(text, parse_origin)
    }

    fn from_toml(value: &toml::Value) -> Result<Self, Problem> {
        list_from_toml(value, parse_origin)
    }
}

/// One browser origin as a browser writes it in `Origin`, lowercased; or `*`.
fn parse_origin(text: &str) -> Result<String, Problem> {
    if text == "*" {
        return Ok(text.to_owned());
    }
    let host = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"))
        .ok_or("has an entry that does not start with http:// or https://")?;
    if host.is_empty() {
        return Err("has an entry with no host");
    }
    if host.contains(['/', '?', '#', ' ', '*']) {
        return Err("has an entry that is not just scheme://host[:port]");
    }
    Ok(text.to_ascii_lowercase())
}

/// `trusted_proxies`: CIDRs (`10.0.0.0/8`, `fd00::/8`) or single addresses,
/// comma-separated in a flag or variable, an array of strings in the file.
impl SettingValue for Vec<IpNet> {
    const EXPECTED: &'static str = "IP networks such as 10.0.0.0/8 or 127.0.0.1 (CIDR or a single \
         address, comma-separated in a flag or variable, an array of strings in the file)";

    fn from_text(text: &str) -> Result<Self, Problem> {
        list_from_text(text, parse_network)
    }

    fn from_toml(value: &toml::Value) -> Result<Self, Problem> {
        list_from_toml(value, parse_network)
    }
}

/// A CIDR, or one address as the network holding only it.
fn parse_network(text: &str) -> Result<IpNet, Problem> {
    if let Ok(network) = text.parse::<IpNet>() {
        return Ok(network.trunc());
    }
    text.parse::<IpAddr>()
        .map(IpNet::from)
        .map_err(|_| "has an entry that is neither an IP network (CIDR) nor an IP address")
}

impl SettingValue for Duration {
    const EXPECTED: &'static str =
        "a whole number and a unit (ms, s, m or h), such as \"20s\" or \"500ms\"";

    fn from_text(text: &str) -> Result<Self, Problem> {
        parse_duration(text)
    }
}

/// Only the heartbeat jitter is a fraction; vigil-core checks its range.
impl SettingValue for f64 {
    const EXPECTED: &'static str = "a number, such as 0.1";

    fn from_text(text: &str) -> Result<Self, Problem> {
        text.parse().map_err(|_| "is not a number")
    }

    fn from_toml(value: &toml::Value) -> Result<Self, Problem> {
        match value {
            toml::Value::Float(x) => Ok(*x),
            // `heartbeat_jitter = 0` is a fine way to write zero; a large
            // integer loses precision, and vigil-core refuses it anyway.
            toml::Value::Integer(n) => Ok(*n as f64),
            other => Err(type_problem(other)),
        }
    }
}

impl SettingValue for usize {
    const EXPECTED: &'static str = "a whole number, such as 100";

    fn from_text(text: &str) -> Result<Self, Problem> {
        text.parse().map_err(|_| "is not a whole number")
    }

    fn from_toml(value: &toml::Value) -> Result<Self, Problem> {
        match value {
            toml::Value::Integer(n) if *n < 0 => Err("is negative"),
            toml::Value::Integer(n) => usize::try_from(*n).map_err(|_| "is too large"),
            other => Err(type_problem(other)),
        }
    }
}

/// Parses a humane duration: a whole number and a unit, `ms`, `s`, `m` or
/// `h`, with nothing in between ("20s", "500ms", "1m", "2h"). The error says
/// what is wrong with the text; [`Duration`]'s `EXPECTED` says what is right.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, Problem> {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = text.split_at(digits);
    if number.is_empty() {
        return Err("does not start with a whole number");
    }
    let millis_per_unit: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "" => return Err("has no unit"),
        _ if unit.starts_with('.') => {
            return Err("is not a whole number (use a smaller unit: 1500ms, not 1.5s)");
        }
        _ => return Err("has an unknown unit"),
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(millis_per_unit))
        .map(Duration::from_millis)
        .ok_or("is too large")
}

/// Writes a duration the way [`parse_duration`] reads it, in the largest
/// unit that keeps it whole: 20s, 500ms, 1m, 2h. Sub-millisecond durations,
/// which no setting uses, fall back to `Debug`.
pub(crate) fn format_duration(duration: Duration) -> String {
    if !duration.subsec_nanos().is_multiple_of(1_000_000) {
        return format!("{duration:?}");
    }
    let millis = duration.as_millis();
    let seconds = millis / 1_000;
    if !millis.is_multiple_of(1_000) {
        format!("{millis}ms")
    } else if seconds != 0 && seconds.is_multiple_of(3_600) {
        format!("{}h", seconds / 3_600)
    } else if seconds != 0 && seconds.is_multiple_of(60) {
        format!("{}m", seconds / 60)
    } else {
        format!("{seconds}s")
    }
}
