//! The text frames of application-level heartbeats (for browsers) and the
//! hello message that advertises the heartbeat to clients.
//!
//! The format is fixed so that both sides can build and recognise it without
//! a JSON parser: `{"type":"ping","id":N}` and `{"type":"pong","id":N}`,
//! where `N` is 1 to 20 ASCII digits, exactly as `JSON.stringify` writes
//! `{type: "ping", id: n}`.

use crate::config::{HeartbeatMode, WsConfig};

/// A recognised heartbeat text frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Heartbeat<'a> {
    /// The peer pings us: answer with the same id digits.
    Ping(&'a [u8]),
    /// The peer answers one of our pings.
    Pong(u64),
}

const PING_PREFIX: &[u8] = br#"{"type":"ping","id":"#;
const PONG_PREFIX: &[u8] = br#"{"type":"pong","id":"#;

/// Recognises a heartbeat text frame; any other text is application data.
pub(crate) fn parse(text: &[u8]) -> Option<Heartbeat<'_>> {
    let digits = |prefix: &[u8]| {
        let id = text.strip_prefix(prefix)?.strip_suffix(b"}")?;
        (!id.is_empty() && id.len() <= 20 && id.iter().all(u8::is_ascii_digit)).then_some(id)
    };
    if let Some(id) = digits(PING_PREFIX) {
        return Some(Heartbeat::Ping(id));
    }
    let id = digits(PONG_PREFIX)?;
    std::str::from_utf8(id)
        .ok()?
        .parse()
        .ok()
        .map(Heartbeat::Pong)
}

/// Our ping with this id.
pub(crate) fn ping(id: u64) -> String {
    format!(r#"{{"type":"ping","id":{id}}}"#)
}

/// Our answer to a peer's ping; `id` is the digits it sent (or, for a
/// protocol ping answered in text mode, nothing digit-only: then 0).
pub(crate) fn pong(id: &[u8]) -> String {
    let id = std::str::from_utf8(id)
        .ok()
        .filter(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
        .unwrap_or("0");
    format!(r#"{{"type":"pong","id":{id}}}"#)
}

/// The first message of a server connection: how the server heartbeats, so
/// the client can watch the server with the same numbers.
pub(crate) fn hello(config: &WsConfig, mode: HeartbeatMode) -> String {
    format!(
        r#"{{"type":"heartbeat","interval_ms":{},"timeout_ms":{},"mode":"{}"}}"#,
        config.heartbeat.interval().as_millis(),
        config.heartbeat.timeout().as_millis(),
        mode.as_str()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeat_frames_are_recognised_exactly() {
        assert_eq!(
            parse(br#"{"type":"ping","id":42}"#),
            Some(Heartbeat::Ping(b"42"))
        );
        assert_eq!(
            parse(br#"{"type":"pong","id":7}"#),
            Some(Heartbeat::Pong(7))
        );
        for other in [
            &br#"{"type":"ping","id":"x"}"#[..],
            br#"{"type":"pong","id":}"#,
            br#"{"type":"pong","id":99999999999999999999999}"#,
            br#"{"type":"chat","id":1}"#,
            b"hello",
        ] {
            assert_eq!(parse(other), None, "{}", String::from_utf8_lossy(other));
        }
    }

    #[test]
    fn our_frames_round_trip() {
        assert_eq!(
            parse(ping(u64::MAX).as_bytes()),
            Some(Heartbeat::Ping(b"18446744073709551615"))
        );
        assert_eq!(parse(pong(b"12").as_bytes()), Some(Heartbeat::Pong(12)));
        assert_eq!(pong(b"\x00\x01"), r#"{"type":"pong","id":0}"#);
    }
}
