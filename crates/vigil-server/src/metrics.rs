//! The `/metrics` exposition: one scrape turns a snapshot of vigil-ws's
//! counters and the server's gauges into OpenMetrics text.
//!
//! The counters live elsewhere (each vigil-ws shard, the hub), so nothing
//! here keeps state: every [`render`] fills a fresh `prometheus-client`
//! registry with constant metrics and lets its encoder write the text.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, text};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use vigil_ws::CLOSE_LABELS;

/// The `Content-Type` of what [`render`] returns: `prometheus-client`'s text
/// encoder writes OpenMetrics 1.0 (counter families without `_total`, the
/// `# EOF` terminator), not the older `text/plain; version=0.0.4` format.
pub(crate) const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What the server knows beyond vigil-ws's counters, read at scrape time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ServerStats {
    /// Live WebSocket connections.
    pub connections: u64,
    /// Channels with at least one member.
    pub channels: u64,
    /// Members across every channel's presence (a user in two channels
    /// counts twice).
    pub presence_members: u64,
    /// Whether `/readyz` says ready (false while draining).
    pub ready: bool,
}

/// The exposition text for one scrape, terminated by `# EOF`.
///
/// `stats.connections` is the `vigil_connections` gauge; `ws.connections`
/// is not rendered, so the gauge has a single source.
pub(crate) fn render(ws: &vigil_ws::Metrics, stats: &ServerStats) -> String {
    let mut registry = Registry::with_prefix("vigil");
    // Counter names go in without `_total`: the encoder appends it (and
    // prometheus-client panics in debug builds if we add it ourselves).
    let gauges = [
        (
            "connections",
            "Live WebSocket connections",
            stats.connections,
        ),
        (
            "channels",
            "Channels with at least one member",
            stats.channels,
        ),
        (
            "presence_members",
            "Presence entries across all channels (a user in two channels counts twice)",
            stats.presence_members,
        ),
        (
            "ready",
            "1 while the server accepts new connections, 0 while draining",
            u64::from(stats.ready),
        ),
    ];
    for (name, help, value) in gauges {
        registry.register(name, help, ConstGauge::new(value));
    }
    let counters = [
        (
            "heartbeat_pings_sent",
            "Heartbeat pings sent (protocol or application level)",
            ws.pings_sent,
        ),
        (
            "heartbeat_pongs_received",
            "Pongs received (protocol or application level), solicited or not",
            ws.pongs_received,
        ),
        (
            "messages_received",
            "Application messages received from clients",
            ws.messages_received,
        ),
        (
            "messages_sent",
            "Application messages queued for clients",
            ws.messages_sent,
        ),
        (
            "connections_opened",
            "WebSocket connections opened since the start",
            ws.opened,
        ),
        (
            "heartbeat_suspects",
            "Times a connection turned suspect (a ping unanswered past half the timeout)",
            ws.suspects,
        ),
        (
            "upgrades_refused",
            "Upgraded connections closed because the transport could not be taken over",
            ws.upgrades_refused,
        ),
    ];
    for (name, help, value) in counters {
        registry.register(name, help, ConstCounter::new(value));
    }
    registry.register_collector(Box::new(ClosesByReason(ws.closes)));

    let mut out = String::new();
    text::encode(&mut out, &registry)
        .expect("encoding into a String fails only if the writer does, and a String never does");
    out
}

/// `vigil_connections_closed_total{reason}`: one labelled series per
/// [`CLOSE_LABELS`] entry, zeros included, in that order. A `Family` would
/// need a mutable counter per label and encodes in hash order; a collector
/// writes the snapshot as it is.
#[derive(Debug)]
struct ClosesByReason([u64; CLOSE_LABELS.len()]);

impl Collector for ClosesByReason {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        // Collectors write their HELP verbatim; `Registry::register` adds the
        // full stop, so add it here to match.
        let mut family = encoder.encode_descriptor(
            "connections_closed",
            "Connections closed, by reason.",
            None,
            MetricType::Counter,
        )?;
        for (reason, &count) in CLOSE_LABELS.iter().zip(&self.0) {
            ConstCounter::new(count).encode(family.encode_family(&[("reason", *reason)])?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
