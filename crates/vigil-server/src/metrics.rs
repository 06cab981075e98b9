//! The `/metrics` exposition: one scrape turns a snapshot of vigil-ws's
//! counters and the server's gauges into OpenMetrics text.
//!
//! The counters live elsewhere (each vigil-ws shard, the hub, the HTTP
//! side's rejections), so nothing here keeps state: every [`render`] fills
//! a fresh `prometheus-client` registry with constant metrics and
//! collectors for the labelled families and histograms, and lets its
//! encoder write the text.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, text};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Registry, Unit};
use vigil_ws::{CLOSE_LABELS, Histogram};

use crate::rejections::Rejection;

/// The `Content-Type` of what [`render`] returns: `prometheus-client`'s text
/// encoder writes OpenMetrics 1.0 (counter families without `_total`, the
/// `# EOF` terminator), not the older `text/plain; version=0.0.4` format.
pub(crate) const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What the server knows beyond vigil-ws's counters, read at scrape time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ServerStats {
    /// Live WebSocket connections.
    pub connections: u64,
    /// Channels with at least one member.
    pub channels: u64,
    /// Members across every channel's presence (a user in two channels
    /// counts twice).
    pub presence_members: u64,
    /// Distinct users with at least one open connection.
    pub users: u64,
    /// Messages kept for recovery over every channel, and their bytes.
    pub history_messages: u64,
    pub history_bytes: u64,
    /// Refused handshakes: each reason's label and count.
    pub rejections: [(&'static str, u64); Rejection::ALL.len()],
    /// Live heap bytes, when the binary counts them (`count-alloc`).
    pub heap_live_bytes: Option<u64>,
    /// Whether `/readyz` says ready (false while draining).
    pub ready: bool,
    /// The link to the other nodes, in a cluster.
    pub cluster: Option<ClusterStats>,
}

/// A cluster node's link to Redis, for `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct ClusterStats {
    pub up: bool,
    /// Other nodes alive at the last look.
    pub nodes: u64,
    pub published: u64,
    pub received: u64,
    pub loads: u64,
    pub dropped: u64,
}

impl Default for ServerStats {
    /// An empty server that is not ready, every rejection at zero.
    fn default() -> Self {
        Self {
            connections: 0,
            channels: 0,
            presence_members: 0,
            users: 0,
            history_messages: 0,
            history_bytes: 0,
            rejections: Rejection::ALL.map(|rejection| (rejection.label(), 0)),
            heap_live_bytes: None,
            ready: false,
            cluster: None,
        }
    }
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
            "users",
            "Distinct users with at least one open connection",
            stats.users,
        ),
        (
            "history_messages",
            "Messages kept for recovery, over every channel with history",
            stats.history_messages,
        ),
        (
            "history_bytes",
            "Bytes of the messages kept for recovery",
            stats.history_bytes,
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
    if let Some(bytes) = stats.heap_live_bytes {
        registry.register(
            "heap_live_bytes",
            "Heap bytes allocated and not freed (built with the count-alloc feature)",
            ConstGauge::new(bytes),
        );
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
            "stream_connections_opened",
            "WebSocket connections served over a general stream (a wrapped socket) rather than the shard's own socket (plain TCP or vigil's TLS)",
            ws.streams_opened,
        ),
        (
            "received_bytes",
            "Bytes read from WebSocket connections, frame headers included",
            ws.bytes_received,
        ),
        (
            "sent_bytes",
            "Bytes written to WebSocket connections, frame headers included",
            ws.bytes_sent,
        ),
        (
            "queue_overflows",
            "Times a bounded queue was full: a connection's outbound queue (the client is closed as a slow consumer) or a shard's command queue",
            ws.queue_overflows,
        ),
    ];
    for (name, help, value) in counters {
        registry.register(name, help, ConstCounter::new(value));
    }
    if let Some(cluster) = stats.cluster {
        registry.register(
            "cluster_up",
            "1 while this node reaches the cluster's Redis, 0 while it serves alone",
            ConstGauge::new(u64::from(cluster.up)),
        );
        registry.register(
            "cluster_nodes",
            "Other cluster nodes alive at the last look",
            ConstGauge::new(cluster.nodes),
        );
        for (name, help, value) in [
            (
                "cluster_published",
                "Member changes and channel messages this node wrote to the cluster",
                cluster.published,
            ),
            (
                "cluster_received",
                "Messages read from the cluster bus (this node's own included)",
                cluster.received,
            ),
            (
                "cluster_node_loads",
                "Times another node's members were loaded whole (at start, after a gap, after its rewrite)",
                cluster.loads,
            ),
            (
                "cluster_dropped",
                "Changes and messages dropped because the queue to Redis was full (state is rewritten whole after)",
                cluster.dropped,
            ),
        ] {
            registry.register(name, help, ConstCounter::new(value));
        }
    }
    registry.register_collector(Box::new(ByReason {
        name: "connections_closed",
        help: "Connections closed, by reason.",
        counts: CLOSE_LABELS.iter().copied().zip(ws.closes).collect(),
    }));
    registry.register_collector(Box::new(ByReason {
        name: "handshakes_rejected",
        help: "WebSocket handshakes refused, by reason.",
        counts: stats.rejections.to_vec(),
    }));
    registry.register_collector(Box::new(Seconds {
        name: "heartbeat_rtt",
        help: "Round-trip time of heartbeat pings, from each answering pong.",
        histogram: ws.rtt.clone(),
    }));
    registry.register_collector(Box::new(Seconds {
        name: "timer_lag",
        help: "How late timer ticks with due deadlines were served after they began (one observation per tick).",
        histogram: ws.timer_lag.clone(),
    }));

    let mut out = String::new();
    text::encode(&mut out, &registry)
        .expect("encoding into a String fails only if the writer does, and a String never does");
    out
}

/// A counter family with one series per `reason` label, zeros included, in
/// the order given (e.g. `vigil_connections_closed_total{reason}`). A
/// `Family` would need a mutable counter per label and encodes in hash
/// order; a collector writes the snapshot as it is.
#[derive(Debug)]
struct ByReason {
    name: &'static str,
    /// Written verbatim: collectors get no full stop added, unlike
    /// `Registry::register`, so end it with one to match.
    help: &'static str,
    counts: Vec<(&'static str, u64)>,
}

impl Collector for ByReason {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let mut family =
            encoder.encode_descriptor(self.name, self.help, None, MetricType::Counter)?;
        for &(reason, count) in &self.counts {
            ConstCounter::new(count).encode(family.encode_family(&[("reason", reason)])?)?;
        }
        Ok(())
    }
}

/// A histogram of durations from vigil-ws, in seconds
/// (`vigil_<name>_seconds_bucket{le}`, `_sum`, `_count`).
#[derive(Debug)]
struct Seconds {
    name: &'static str,
    /// Written verbatim, full stop included (see [`ByReason::help`]).
    help: &'static str,
    histogram: Histogram,
}

impl Collector for Seconds {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let histogram = &self.histogram;
        // An empty snapshot (no shard) has no counts: zeros, not no buckets.
        let buckets: Vec<(f64, u64)> = histogram
            .bounds_us
            .iter()
            .map(|&bound| bound as f64 / 1e6)
            .chain(std::iter::once(f64::INFINITY))
            .zip(histogram.counts.iter().copied().chain(std::iter::repeat(0)))
            .collect();
        let mut metric = encoder.encode_descriptor(
            self.name,
            self.help,
            Some(&Unit::Seconds),
            MetricType::Histogram,
        )?;
        metric.encode_histogram::<prometheus_client::encoding::NoLabelSet>(
            histogram.sum_us as f64 / 1e6,
            histogram.count(),
            &buckets,
            None,
        )
    }
}

#[cfg(test)]
mod tests;
