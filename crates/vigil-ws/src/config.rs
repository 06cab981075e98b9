//! Transport settings shared by every connection of a server or client.

use crate::ping_limit::PingLimit;
use std::time::Duration;
use vigil_core::heartbeat::Config as HeartbeatConfig;

/// How heartbeats travel on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeartbeatMode {
    /// WebSocket ping and pong control frames (native clients).
    Protocol,
    /// Text frames `{"type":"ping","id":N}` answered by
    /// `{"type":"pong","id":N}`, for browsers: JavaScript can neither send
    /// nor see protocol pings. Protocol pings from the peer are still
    /// answered.
    AppText,
}

impl HeartbeatMode {
    /// The name used in the hello message: `protocol` or `app`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Protocol => "protocol",
            Self::AppText => "app",
        }
    }
}

/// Settings of the WebSocket transport.
#[derive(Debug, Clone)]
pub struct WsConfig {
    /// Heartbeat timing, validated by vigil-core.
    pub heartbeat: HeartbeatConfig,
    /// Protocol or application-level pings.
    pub mode: HeartbeatMode,
    /// Largest inbound message, whole (not per frame); bigger closes with 1009.
    pub max_message_size: usize,
    /// Outbound bytes that may wait for a slow peer before it is closed as a
    /// slow consumer.
    pub max_queued_bytes: usize,
    /// How long a started write may make no progress before the connection
    /// is dropped.
    pub write_timeout: Duration,
    /// Outbound messages are cut into frames of at most this size, so a ping,
    /// pong or close never waits behind a whole large message.
    pub fragment_size: usize,
    /// Worker threads, each owning a share of the connections.
    pub shards: usize,
    /// Timers due within one tick are served by one wake-up; deadlines
    /// round up to the next tick. 50 ms measured about 1 us less CPU per
    /// heartbeat than 20 ms at 19,000 connections (BENCHMARKS.md) and adds
    /// at most 50 ms to any detection.
    pub tick: Duration,
    /// Send `{"type":"heartbeat",...}` as the first message of a server
    /// connection, so clients learn the interval, timeout and mode.
    pub send_hello: bool,
    /// How many of its own pings a peer may send per window before it is
    /// closed with 1008 ("too many pings"); `None` answers every ping.
    pub ping_limit: Option<PingLimit>,
}

impl Default for WsConfig {
    fn default() -> Self {
        Self {
            heartbeat: HeartbeatConfig::default(),
            mode: HeartbeatMode::Protocol,
            max_message_size: 1 << 20,
            max_queued_bytes: 4 << 20,
            write_timeout: Duration::from_secs(10),
            fragment_size: 16 << 10,
            shards: 1,
            tick: Duration::from_millis(50),
            send_hello: true,
            ping_limit: Some(PingLimit::default()),
        }
    }
}

impl WsConfig {
    /// Checks the settings the heartbeat config does not cover.
    pub(crate) fn validate(&self) -> Result<(), crate::Error> {
        let problem = if self.shards == 0 || self.shards > 256 {
            Some("shards must be between 1 and 256")
        } else if self.fragment_size < 125 {
            Some("fragment_size must be at least 125 bytes")
        } else if self.max_message_size == 0 {
            Some("max_message_size must be positive")
        } else if self.max_queued_bytes < self.fragment_size {
            Some("max_queued_bytes must hold at least one fragment")
        } else if self.tick.is_zero() || self.tick > Duration::from_millis(500) {
            Some("tick must be between 1 ns and 500 ms")
        } else if self.write_timeout.is_zero() {
            Some("write_timeout must be positive")
        } else {
            self.ping_limit.and_then(|limit| limit.validate().err())
        };
        problem.map_or(Ok(()), |problem| Err(crate::Error::Config(problem)))
    }
}
