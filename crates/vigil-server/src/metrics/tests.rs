//! The exposition as a scraper reads it: every line parsed (HELP, TYPE,
//! UNIT, samples, the `# EOF` terminator), every family declared once,
//! every series exactly once with the value it was given.

use std::collections::BTreeMap;

use vigil_ws::{CLOSE_LABELS, Histogram, Metrics, RTT_BOUNDS_US, TIMER_LAG_BOUNDS_US};

use super::*;

// ---- helpers ------------------------------------------------------------

/// Every family `render` writes, with its OpenMetrics type. Counter
/// families are named without `_total`; their samples carry it.
const FAMILIES: [(&str, &str); 21] = [
    ("vigil_connections", "gauge"),
    ("vigil_channels", "gauge"),
    ("vigil_presence_members", "gauge"),
    ("vigil_users", "gauge"),
    ("vigil_history_messages", "gauge"),
    ("vigil_history_bytes", "gauge"),
    ("vigil_ready", "gauge"),
    ("vigil_received_bytes", "counter"),
    ("vigil_sent_bytes", "counter"),
    ("vigil_queue_overflows", "counter"),
    ("vigil_handshakes_rejected", "counter"),
    ("vigil_heartbeat_rtt_seconds", "histogram"),
    ("vigil_timer_lag_seconds", "histogram"),
    ("vigil_heartbeat_pings_sent", "counter"),
    ("vigil_heartbeat_pongs_received", "counter"),
    ("vigil_messages_received", "counter"),
    ("vigil_messages_sent", "counter"),
    ("vigil_connections_opened", "counter"),
    ("vigil_heartbeat_suspects", "counter"),
    ("vigil_stream_connections_opened", "counter"),
    ("vigil_connections_closed", "counter"),
];

/// A family's `# HELP` and `# TYPE`.
#[derive(Debug)]
struct Family {
    help: String,
    kind: String,
    samples: usize,
}

/// One scrape, parsed.
#[derive(Debug, Default)]
struct Scrape {
    families: BTreeMap<String, Family>,
    /// Counter and gauge series: `name{labels}` (as written) to value.
    samples: BTreeMap<String, u64>,
    /// Histogram series (`_bucket{le}`, `_count`) to value; `_sum` is in
    /// `sums`.
    histogram_samples: BTreeMap<String, u64>,
    /// Each histogram's `_sum`, by family.
    sums: BTreeMap<String, f64>,
}

/// Parses `text` line by line as OpenMetrics text with integer samples and
/// panics at the first line a scraper would reject: a missing `# EOF`, a
/// sample outside its family, a family declared twice, a repeated series.
#[track_caller]
fn parse(text: &str) -> Scrape {
    let body = text
        .strip_suffix("# EOF\n")
        .unwrap_or_else(|| panic!("no `# EOF` terminator at the end of:\n{text}"));
    let mut scrape = Scrape::default();
    // The family whose HELP was just read, then the one whose samples follow.
    let mut described: Option<String> = None;
    let mut current: Option<String> = None;
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').expect("HELP has a name and a text");
            let family = Family {
                help: help.to_owned(),
                kind: String::new(),
                samples: 0,
            };
            let previous = scrape.families.insert(name.to_owned(), family);
            assert!(previous.is_none(), "family {name} declared twice");
            described = Some(name.to_owned());
            current = None;
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE has a name and a type");
            assert_eq!(
                described.take().as_deref(),
                Some(name),
                "TYPE follows its HELP"
            );
            assert!(
                matches!(kind, "counter" | "gauge" | "histogram"),
                "type {kind} of {name}"
            );
            scrape.families.get_mut(name).expect("described").kind = kind.to_owned();
            current = Some(name.to_owned());
        } else if let Some(rest) = line.strip_prefix("# UNIT ") {
            let name = current.as_deref().expect("UNIT follows TYPE");
            assert_eq!(rest, format!("{name} seconds"), "the only unit is seconds");
            assert!(name.ends_with("_seconds"), "{name} carries its unit");
        } else {
            assert!(!line.starts_with('#'), "unexpected comment line {line:?}");
            let family = current.as_deref().expect("a sample follows a TYPE line");
            let (series, value) = line.rsplit_once(' ').expect("a sample has a value");
            let (name, labels) = series.split_once('{').unwrap_or((series, "}"));
            assert!(labels.ends_with('}'), "labels of {series} are closed");
            let entry = scrape.families.get_mut(family).expect("typed");
            entry.samples += 1;
            if entry.kind == "histogram" {
                if name == format!("{family}_sum") {
                    let sum: f64 = value.parse().expect("a number");
                    assert!(scrape.sums.insert(family.to_owned(), sum).is_none());
                    continue;
                }
                assert!(
                    name == format!("{family}_bucket") || name == format!("{family}_count"),
                    "sample {name} of histogram {family}"
                );
                let value: u64 = value.parse().expect("an integer bucket or count");
                let previous = scrape.histogram_samples.insert(series.to_owned(), value);
                assert!(previous.is_none(), "series {series} written twice");
                continue;
            }
            let value: u64 = value.parse().expect("an integer sample value");
            let expected_name = match entry.kind.as_str() {
                "counter" => format!("{family}_total"),
                _ => family.to_owned(),
            };
            assert_eq!(name, expected_name, "sample of family {family}");
            let previous = scrape.samples.insert(series.to_owned(), value);
            assert!(previous.is_none(), "series {series} written twice");
        }
    }
    for (name, family) in &scrape.families {
        assert!(!family.kind.is_empty(), "family {name} has a TYPE");
        assert!(family.samples > 0, "family {name} has samples");
    }
    scrape
}

/// Renders `ws` and `stats` and checks every counter and gauge: exactly the
/// series in `expect`, with those values (histograms have their own tests).
#[track_caller]
fn check(ws: &Metrics, stats: &ServerStats, expect: &[(&str, u64)]) {
    let scrape = parse(&render(ws, stats));
    let expect: BTreeMap<String, u64> = expect
        .iter()
        .map(|(series, value)| ((*series).to_owned(), *value))
        .collect();
    assert_eq!(scrape.samples, expect);
}

/// `vigil_connections_closed_total{reason="<reason>"}`.
fn closed(reason: &str) -> String {
    format!("vigil_connections_closed_total{{reason=\"{reason}\"}}")
}

/// `vigil_handshakes_rejected_total{reason="<reason>"}`.
fn rejected(reason: &str) -> String {
    format!("vigil_handshakes_rejected_total{{reason=\"{reason}\"}}")
}

/// Every rejection reason with `value`.
fn rejections(value: u64) -> [(&'static str, u64); crate::rejections::Rejection::ALL.len()] {
    crate::rejections::Rejection::ALL.map(|rejection| (rejection.label(), value))
}

// ---- tests --------------------------------------------------------------

#[test]
fn every_family_has_help_and_type() {
    let scrape = parse(&render(&Metrics::default(), &ServerStats::default()));
    let kinds: BTreeMap<&str, &str> = scrape
        .families
        .iter()
        .map(|(name, family)| (name.as_str(), family.kind.as_str()))
        .collect();
    assert_eq!(kinds, FAMILIES.into_iter().collect());
    for (name, family) in &scrape.families {
        assert!(
            family.help.len() > 1 && family.help.ends_with('.'),
            "help of {name}: {:?}",
            family.help
        );
    }
}

#[test]
fn values_match_the_inputs() {
    let ws = Metrics {
        connections: 3,
        pings_sent: 11,
        pongs_received: 12,
        messages_received: 13,
        messages_sent: 14,
        closes: [101, 102, 103, 104, 105, 106, 107, 108, 109, 110],
        streams_opened: 15,
        opened: 16,
        suspects: 17,
        bytes_received: 18,
        bytes_sent: 19,
        queue_overflows: 20,
        ..Metrics::default()
    };
    let mut stats = ServerStats {
        connections: 3,
        channels: 5,
        presence_members: 7,
        users: 6,
        history_messages: 21,
        history_bytes: 22,
        ready: true,
        ..ServerStats::default()
    };
    for (index, (_, count)) in stats.rejections.iter_mut().enumerate() {
        *count = 201 + index as u64;
    }
    check(
        &ws,
        &stats,
        &[
            ("vigil_connections", 3),
            ("vigil_channels", 5),
            ("vigil_presence_members", 7),
            ("vigil_users", 6),
            ("vigil_history_messages", 21),
            ("vigil_history_bytes", 22),
            ("vigil_ready", 1),
            ("vigil_heartbeat_pings_sent_total", 11),
            ("vigil_heartbeat_pongs_received_total", 12),
            ("vigil_messages_received_total", 13),
            ("vigil_messages_sent_total", 14),
            ("vigil_stream_connections_opened_total", 15),
            ("vigil_connections_opened_total", 16),
            ("vigil_heartbeat_suspects_total", 17),
            ("vigil_received_bytes_total", 18),
            ("vigil_sent_bytes_total", 19),
            ("vigil_queue_overflows_total", 20),
            (&closed("peer_closed"), 101),
            (&closed("closed"), 102),
            (&closed("heartbeat_timeout"), 103),
            (&closed("close_timeout"), 104),
            (&closed("write_timeout"), 105),
            (&closed("slow_consumer"), 106),
            (&closed("ping_flood"), 107),
            (&closed("protocol_error"), 108),
            (&closed("shutdown"), 109),
            (&closed("transport_ended"), 110),
            (&rejected("unauthorized"), 201),
            (&rejected("forbidden_origin"), 202),
            (&rejected("per_ip_limit"), 203),
            (&rejected("connection_limit"), 204),
            (&rejected("draining"), 205),
            (&rejected("bad_handshake"), 206),
            (&rejected("handshake_timeout"), 207),
            (&rejected("bad_proxy_header"), 208),
            (&rejected("handshake_limit"), 209),
            (&rejected("plain_http_on_tls"), 210),
            (&rejected("tls_handshake_failed"), 211),
        ],
    );
}

#[test]
fn a_fresh_server_reports_every_series_at_zero() {
    let mut expect = vec![
        ("vigil_connections".to_owned(), 0),
        ("vigil_channels".to_owned(), 0),
        ("vigil_presence_members".to_owned(), 0),
        ("vigil_users".to_owned(), 0),
        ("vigil_history_messages".to_owned(), 0),
        ("vigil_history_bytes".to_owned(), 0),
        ("vigil_ready".to_owned(), 0),
        ("vigil_heartbeat_pings_sent_total".to_owned(), 0),
        ("vigil_heartbeat_pongs_received_total".to_owned(), 0),
        ("vigil_messages_received_total".to_owned(), 0),
        ("vigil_messages_sent_total".to_owned(), 0),
        ("vigil_stream_connections_opened_total".to_owned(), 0),
        ("vigil_connections_opened_total".to_owned(), 0),
        ("vigil_heartbeat_suspects_total".to_owned(), 0),
        ("vigil_received_bytes_total".to_owned(), 0),
        ("vigil_sent_bytes_total".to_owned(), 0),
        ("vigil_queue_overflows_total".to_owned(), 0),
    ];
    expect.extend(CLOSE_LABELS.iter().map(|reason| (closed(reason), 0)));
    expect.extend(
        rejections(0)
            .iter()
            .map(|(reason, _)| (rejected(reason), 0)),
    );
    let expect: Vec<(&str, u64)> = expect.iter().map(|(s, v)| (s.as_str(), *v)).collect();
    check(&Metrics::default(), &ServerStats::default(), &expect);
    let scrape = parse(&render(&Metrics::default(), &ServerStats::default()));
    for family in ["vigil_heartbeat_rtt_seconds", "vigil_timer_lag_seconds"] {
        assert_eq!(scrape.sums[family], 0.0);
        assert_eq!(scrape.histogram_samples[&format!("{family}_count")], 0);
    }
}

/// A histogram as vigil-ws would snapshot it, with `counts` per bucket.
fn histogram(bounds_us: &'static [u64], counts: &[u64], sum_us: u64) -> Histogram {
    let mut all = counts.to_vec();
    all.resize(bounds_us.len() + 1, 0);
    Histogram {
        bounds_us,
        counts: all,
        sum_us,
    }
}

#[test]
fn the_heap_gauge_appears_only_when_counted() {
    let counted = ServerStats {
        heap_live_bytes: Some(123_456),
        ..ServerStats::default()
    };
    let scrape = parse(&render(&Metrics::default(), &counted));
    assert_eq!(scrape.samples["vigil_heap_live_bytes"], 123_456);
    assert_eq!(scrape.families["vigil_heap_live_bytes"].kind, "gauge");
    let scrape = parse(&render(&Metrics::default(), &ServerStats::default()));
    assert!(!scrape.families.contains_key("vigil_heap_live_bytes"));
}

#[test]
fn histograms_are_cumulative_in_seconds_with_an_inf_bucket() {
    let mut rtt_counts = vec![0; RTT_BOUNDS_US.len() + 1];
    rtt_counts[0] = 2; // <= 250 us
    rtt_counts[2] = 3; // <= 1 ms
    rtt_counts[RTT_BOUNDS_US.len()] = 1; // > 5 s
    let ws = Metrics {
        rtt: histogram(&RTT_BOUNDS_US, &rtt_counts, 7_500_000),
        timer_lag: histogram(&TIMER_LAG_BOUNDS_US, &[4], 2_000),
        ..Metrics::default()
    };
    let scrape = parse(&render(&ws, &ServerStats::default()));
    let rtt = |le: &str| {
        scrape.histogram_samples[&format!("vigil_heartbeat_rtt_seconds_bucket{{le=\"{le}\"}}")]
    };
    assert_eq!(rtt("0.00025"), 2);
    assert_eq!(rtt("0.0005"), 2);
    assert_eq!(rtt("0.001"), 5);
    assert_eq!(rtt("5.0"), 5);
    assert_eq!(rtt("+Inf"), 6);
    assert_eq!(
        scrape.histogram_samples["vigil_heartbeat_rtt_seconds_count"],
        6
    );
    assert_eq!(scrape.sums["vigil_heartbeat_rtt_seconds"], 7.5);
    let buckets = scrape
        .histogram_samples
        .keys()
        .filter(|series| series.starts_with("vigil_heartbeat_rtt_seconds_bucket"))
        .count();
    assert_eq!(buckets, RTT_BOUNDS_US.len() + 1);
    assert_eq!(
        scrape.histogram_samples["vigil_timer_lag_seconds_bucket{le=\"+Inf\"}"],
        4
    );
    assert_eq!(scrape.sums["vigil_timer_lag_seconds"], 0.002);
}

#[test]
fn every_close_reason_appears_exactly_once_with_its_value() {
    let ws = Metrics {
        closes: [0, 7, 0, 1, 0, 42, 5, 3, 0, 9],
        ..Metrics::default()
    };
    let text = render(&ws, &ServerStats::default());
    for (reason, count) in CLOSE_LABELS.iter().zip(ws.closes) {
        let prefix = format!("{} ", closed(reason));
        let lines: Vec<&str> = text
            .lines()
            .filter(|line| line.starts_with(&prefix))
            .collect();
        assert_eq!(lines, [format!("{prefix}{count}")], "reason {reason}");
    }
    let family = &parse(&text).families["vigil_connections_closed"];
    assert_eq!(family.samples, CLOSE_LABELS.len());
}

#[test]
fn ready_is_one_or_zero() {
    for (ready, value) in [(true, 1), (false, 0)] {
        let stats = ServerStats {
            ready,
            ..ServerStats::default()
        };
        let scrape = parse(&render(&Metrics::default(), &stats));
        assert_eq!(scrape.samples["vigil_ready"], value, "ready: {ready}");
    }
}

#[test]
fn the_connection_gauge_comes_from_server_stats() {
    let ws = Metrics {
        connections: 99,
        ..Metrics::default()
    };
    let stats = ServerStats {
        connections: 4,
        ..ServerStats::default()
    };
    let scrape = parse(&render(&ws, &stats));
    assert_eq!(scrape.samples["vigil_connections"], 4);
}

#[test]
fn values_keep_full_u64_precision() {
    let ws = Metrics {
        messages_sent: u64::MAX,
        closes: [u64::MAX; CLOSE_LABELS.len()],
        ..Metrics::default()
    };
    let stats = ServerStats {
        presence_members: u64::MAX,
        ..ServerStats::default()
    };
    let scrape = parse(&render(&ws, &stats));
    assert_eq!(scrape.samples["vigil_messages_sent_total"], u64::MAX);
    assert_eq!(scrape.samples["vigil_presence_members"], u64::MAX);
    assert_eq!(scrape.samples[&closed("shutdown")], u64::MAX);
}

#[test]
fn the_content_type_names_the_format_written() {
    let text = render(&Metrics::default(), &ServerStats::default());
    assert!(text.ends_with("\n# EOF\n"), "OpenMetrics terminator");
    assert!(
        CONTENT_TYPE.starts_with("application/openmetrics-text; version=1.0.0"),
        "{CONTENT_TYPE}"
    );
}
