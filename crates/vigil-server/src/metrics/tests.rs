//! The exposition as a scraper reads it: every line parsed (HELP, TYPE,
//! samples, the `# EOF` terminator), every family declared once, every
//! series exactly once with the value it was given.

use std::collections::BTreeMap;

use vigil_ws::{CLOSE_LABELS, Metrics};

use super::*;

// ---- helpers ------------------------------------------------------------

/// Every family `render` writes, with its OpenMetrics type. Counter
/// families are named without `_total`; their samples carry it.
const FAMILIES: [(&str, &str); 12] = [
    ("vigil_connections", "gauge"),
    ("vigil_channels", "gauge"),
    ("vigil_presence_members", "gauge"),
    ("vigil_ready", "gauge"),
    ("vigil_heartbeat_pings_sent", "counter"),
    ("vigil_heartbeat_pongs_received", "counter"),
    ("vigil_messages_received", "counter"),
    ("vigil_messages_sent", "counter"),
    ("vigil_connections_opened", "counter"),
    ("vigil_heartbeat_suspects", "counter"),
    ("vigil_upgrades_refused", "counter"),
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
    /// `name{labels}` (as written) to value.
    samples: BTreeMap<String, u64>,
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
            assert!(matches!(kind, "counter" | "gauge"), "type {kind} of {name}");
            scrape.families.get_mut(name).expect("described").kind = kind.to_owned();
            current = Some(name.to_owned());
        } else {
            assert!(!line.starts_with('#'), "unexpected comment line {line:?}");
            let family = current.as_deref().expect("a sample follows a TYPE line");
            let (series, value) = line.rsplit_once(' ').expect("a sample has a value");
            let value: u64 = value.parse().expect("an integer sample value");
            let (name, labels) = series.split_once('{').unwrap_or((series, "}"));
            assert!(labels.ends_with('}'), "labels of {series} are closed");
            let entry = scrape.families.get_mut(family).expect("typed");
            let expected_name = match entry.kind.as_str() {
                "counter" => format!("{family}_total"),
                _ => family.to_owned(),
            };
            assert_eq!(name, expected_name, "sample of family {family}");
            entry.samples += 1;
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

/// Renders `ws` and `stats` and checks the whole scrape: exactly the
/// series in `expect`, with those values.
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
        closes: [101, 102, 103, 104, 105, 106, 107, 108, 109],
        upgrades_refused: 15,
        opened: 16,
        suspects: 17,
    };
    let stats = ServerStats {
        connections: 3,
        channels: 5,
        presence_members: 7,
        ready: true,
    };
    check(
        &ws,
        &stats,
        &[
            ("vigil_connections", 3),
            ("vigil_channels", 5),
            ("vigil_presence_members", 7),
            ("vigil_ready", 1),
            ("vigil_heartbeat_pings_sent_total", 11),
            ("vigil_heartbeat_pongs_received_total", 12),
            ("vigil_messages_received_total", 13),
            ("vigil_messages_sent_total", 14),
            ("vigil_upgrades_refused_total", 15),
            ("vigil_connections_opened_total", 16),
            ("vigil_heartbeat_suspects_total", 17),
            (&closed("peer_closed"), 101),
            (&closed("closed"), 102),
            (&closed("heartbeat_timeout"), 103),
            (&closed("close_timeout"), 104),
            (&closed("write_timeout"), 105),
            (&closed("slow_consumer"), 106),
            (&closed("protocol_error"), 107),
            (&closed("shutdown"), 108),
            (&closed("transport_ended"), 109),
        ],
    );
}

#[test]
fn a_fresh_server_reports_every_series_at_zero() {
    let mut expect = vec![
        ("vigil_connections".to_owned(), 0),
        ("vigil_channels".to_owned(), 0),
        ("vigil_presence_members".to_owned(), 0),
        ("vigil_ready".to_owned(), 0),
        ("vigil_heartbeat_pings_sent_total".to_owned(), 0),
        ("vigil_heartbeat_pongs_received_total".to_owned(), 0),
        ("vigil_messages_received_total".to_owned(), 0),
        ("vigil_messages_sent_total".to_owned(), 0),
        ("vigil_upgrades_refused_total".to_owned(), 0),
        ("vigil_connections_opened_total".to_owned(), 0),
        ("vigil_heartbeat_suspects_total".to_owned(), 0),
    ];
    expect.extend(CLOSE_LABELS.iter().map(|reason| (closed(reason), 0)));
    let expect: Vec<(&str, u64)> = expect.iter().map(|(s, v)| (s.as_str(), *v)).collect();
    check(&Metrics::default(), &ServerStats::default(), &expect);
}

#[test]
fn every_close_reason_appears_exactly_once_with_its_value() {
    let ws = Metrics {
        closes: [0, 7, 0, 1, 0, 42, 3, 0, 9],
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
