//! Command-line parsing: URLs, bounds and refusals.

use std::{
    net::{Ipv4Addr, SocketAddrV4},
    time::Duration,
};

use super::{Kind, Options, Target};
use crate::mix::Mix;

fn parse(words: &[&str]) -> anyhow::Result<Options> {
    Options::parse(words.iter().map(|w| (*w).to_owned()))
}

#[track_caller]
fn check_url(url: &str, addr: SocketAddrV4, host: &str, path: &str) {
    assert_eq!(
        Target::parse(url).unwrap(),
        Target {
            addr,
            host: host.to_owned(),
            path: path.to_owned(),
            tls: url.starts_with("wss://"),
        }
    );
}

#[test]
fn urls() {
    let local = |port| SocketAddrV4::new(Ipv4Addr::LOCALHOST, port);
    check_url(
        "ws://127.0.0.1:9001/ws",
        local(9001),
        "127.0.0.1:9001",
        "/ws",
    );
    check_url("ws://127.0.0.1:9001", local(9001), "127.0.0.1:9001", "/");
    check_url("ws://localhost/a?b=c", local(80), "localhost", "/a?b=c");
    check_url("ws://127.0.0.1:1?x", local(1), "127.0.0.1:1", "/?x");
    check_url(
        "ws://127.1.2.3:5/",
        SocketAddrV4::new(Ipv4Addr::new(127, 1, 2, 3), 5),
        "127.1.2.3:5",
        "/",
    );
}

#[test]
fn wss_is_for_healthy_clients_with_a_ca_file() {
    let tls = parse(&[
        "--url",
        "wss://127.0.0.1:8443/ws",
        "--ca-file",
        "/tmp/ca.pem",
    ])
    .unwrap();
    assert!(tls.target.tls);
    assert_eq!(tls.target.addr.port(), 8443);
    for (words, expected) in [
        (
            &["--url", "wss://127.0.0.1/ws"][..],
            "needs `--ca-file PEM`",
        ),
        (
            &[
                "--url",
                "wss://127.0.0.1/ws",
                "--ca-file",
                "/tmp/ca.pem",
                "--kind",
                "silent",
            ],
            "healthy clients only",
        ),
    ] {
        let error = format!("{:#}", parse(words).unwrap_err());
        assert!(error.contains(expected), "{words:?}: {error}");
    }
}

#[test]
fn url_refusals() {
    for (url, expected) in [
        ("ws://10.1.2.3:80/", "only targets loopback"),
        ("ws://example.com/", "IPv4 loopback address"),
        ("ws://[::1]:80/", "IPv4 loopback address"),
        ("http://127.0.0.1/", "expected a ws:// or wss:// URL"),
        ("ws://127.0.0.1:99999/", "invalid port"),
    ] {
        let error = format!("{:#}", Target::parse(url).unwrap_err());
        assert!(error.contains(expected), "{url}: {error}");
    }
}

#[test]
fn defaults_and_flags() {
    let options = parse(&["--url", "ws://127.0.0.1:9001/"]).unwrap();
    assert_eq!(options.mix, Mix::only(Kind::Healthy));
    assert_eq!(options.silent_after, Duration::from_secs(5));
    assert_eq!(options.bound, None);
    assert_eq!(options.connections, 100);
    assert_eq!(options.until_pings, None);
    let options = parse(&[
        "--url=ws://127.0.0.1:9001/",
        "--kind",
        "healthy=8,silent=2",
        "--silent-after-ms",
        "1500",
        "--flap-ms=300",
        "--bound-ms",
        "3300",
        "--connections",
        "19500",
        "--sources=3",
        "--rate",
        "2500.5",
        "--hold",
        "30",
        "--until-pings",
        "4",
        "--ready-file",
        "/tmp/r",
        "--handshake-timeout-ms",
        "500",
    ])
    .unwrap();
    assert_eq!(options.connections, 19_500);
    assert_eq!(options.sources, 3);
    assert!((options.rate - 2500.5).abs() < f64::EPSILON);
    assert_eq!(options.hold, Duration::from_secs(30));
    assert_eq!(options.until_pings, Some(4));
    assert_eq!(options.handshake_timeout, Duration::from_millis(500));
    assert_eq!(options.mix.describe(), "healthy=8,silent=2");
    assert_eq!(options.silent_after, Duration::from_millis(1500));
    assert_eq!(options.flap, Duration::from_millis(300));
    assert_eq!(options.bound, Some(Duration::from_millis(3300)));
    let sources: Vec<Ipv4Addr> = (0..4).map(|i| options.source(i)).collect();
    assert_eq!(
        sources,
        [
            Ipv4Addr::new(127, 0, 0, 2),
            Ipv4Addr::new(127, 0, 0, 3),
            Ipv4Addr::new(127, 0, 0, 4),
            Ipv4Addr::new(127, 0, 0, 2),
        ]
    );
}

#[test]
fn refusals() {
    let url = "--url=ws://127.0.0.1:1/";
    for (words, expected) in [
        (
            &[url, "--connections", "19501", "--processes", "1"][..],
            "use `--processes 2` or more",
        ),
        (
            &[url, "--connections", "60000", "--sources", "2"],
            "use `--sources 3` or more",
        ),
        (&[url, "--connections", "300001"], "`--connections` must be"),
        (&[url, "--connections", "0"], "`--connections` must be"),
        (
            &[url, "--connections", "3", "--processes", "4"],
            "fewer connections",
        ),
        (&[url, "--processes", "17"], "`--processes` must be"),
        (&[url, "--part", "2/2", "--epoch-unix-us", "1"], "P < N"),
        (&[url, "--part", "0/2"], "go together"),
        (
            &[
                url,
                "--part",
                "0/2",
                "--epoch-unix-us",
                "1",
                "--processes",
                "3",
            ],
            "`--part 0/2` with `--processes 3`",
        ),
        (&[url, "--sources", "0"], "`--sources` must be"),
        (&[url, "--rate", "0"], "`--rate` must be"),
        (&[url, "--rate", "NaN"], "`--rate` must be"),
        (&[url, "--hold", "0"], "`--hold` must be"),
        (&[url, "--until-pings", "0"], "at least 1"),
        (&[url, "--kind", "sleepy"], "unknown kind `sleepy`"),
        (
            &[url, "--silent-after-ms", "0"],
            "`--silent-after-ms` must be",
        ),
        (&[url, "--bogus", "1"], "unknown option `--bogus`"),
        (&[url, "--hold"], "needs a value"),
        (&["--connections", "5"], "`--url"),
        (&["--help"], "USAGE"),
    ] {
        let error = format!("{:#}", parse(words).unwrap_err());
        assert!(error.contains(expected), "{words:?}: {error}");
    }
}

#[test]
fn more_than_a_process_holds_is_spread_over_processes() {
    let url = "--url=ws://127.0.0.1:1/";
    let options = parse(&[url, "--connections", "45000", "--sources", "4"]).unwrap();
    assert_eq!(options.processes, 3, "19,500 at most a process");
    assert_eq!(
        options.own_indices().count(),
        45_000,
        "without `--part`, every index"
    );
    let child = parse(&[
        url,
        "--connections",
        "10",
        "--processes",
        "3",
        "--part",
        "1/3",
        "--epoch-unix-us",
        "1",
    ])
    .unwrap();
    assert_eq!(child.own_indices().collect::<Vec<_>>(), [1, 4, 7]);
}

#[test]
fn big_room_options_and_their_refusals() {
    let url = ["--url", "ws://127.0.0.1:9/ws"];
    let with = |extra: &[&str]| parse(&[&url[..], extra].concat());
    let options = with(&[
        "--join",
        "big",
        "--reconnect-max-ms",
        "5000",
        "--view-phases-ms",
        "1000,2000",
        "--page-every",
        "100",
        "--churn-at-ms",
        "2000",
        "--churn-ms",
        "3000",
        "--churn-percent",
        "10",
    ])
    .expect("valid");
    assert_eq!(options.room.phase_marks, Some(vec![1_000, 2_000]));
    assert_eq!(options.room.page_every, Some(100));
    // 10 % a second: a cycle of 10 clients. Client 12 leaves in second 2
    // of the churn, the second client of that second (389 ms in); client 3
    // would in second 3, past a churn of 3 s.
    let churn = options.room.churn.expect("churn");
    assert_eq!(
        churn.moment(12),
        Some(Duration::from_millis(2_000 + 2_000 + 389))
    );
    assert_eq!(churn.moment(3), None);
    for (extra, expected) in [
        (
            &["--join", "big", "--view-phases-ms", "2000,1000"][..],
            "ascending",
        ),
        (&["--view-phases-ms", "1000"], "watch one channel"),
        (
            &[
                "--join",
                "big",
                "--channels",
                "4",
                "--view-phases-ms",
                "1000",
            ],
            "watch one channel",
        ),
        (
            &["--join", "big", "--page-every", "10"],
            "needs `--view-phases-ms`",
        ),
        (&["--join", "big", "--page-every", "0"], "1 or more"),
        (
            &["--churn-at-ms", "1000", "--churn-ms", "1000"],
            "needs all of",
        ),
        (
            &[
                "--churn-at-ms",
                "1000",
                "--churn-ms",
                "1000",
                "--churn-percent",
                "1",
            ],
            "add `--reconnect-max-ms",
        ),
        (&["--churn-percent", "101"], "1..=100"),
        (
            &[
                "--reconnect-max-ms",
                "9",
                "--churn-at-ms",
                "1",
                "--churn-ms",
                "1000",
                "--churn-percent",
                "30",
            ],
            "must divide 100",
        ),
        (
            &[
                "--reconnect-max-ms",
                "9",
                "--churn-at-ms",
                "1",
                "--churn-ms",
                "11000",
                "--churn-percent",
                "10",
            ],
            "runs out of clients after 10 s",
        ),
        (
            &[
                "--join",
                "big",
                "--connections",
                "30000",
                "--view-phases-ms",
                "1000",
            ],
            "run in one process",
        ),
    ] {
        let error = format!("{:#}", with(extra).expect_err("refused"));
        assert!(error.contains(expected), "{extra:?}: {error}");
    }
}

#[test]
fn recovery_options_and_their_refusals() {
    let url = ["--url", "ws://127.0.0.1:9/ws"];
    let with = |extra: &[&str]| parse(&[&url[..], extra].concat());
    let options = with(&[
        "--join",
        "recover",
        "--channels",
        "10",
        "--reconnect-max-ms",
        "5000",
        "--offsets",
        "track",
        "--drop-at-ms",
        "3000",
    ])
    .expect("valid");
    assert!(options.recover.track);
    assert_eq!(options.recover.drop_at, Some(Duration::from_secs(3)));
    for (extra, expected) in [
        (&["--offsets", "yes"][..], "takes `track`"),
        (&["--offsets", "track"], "add `--join CHANNEL`"),
        (&["--drop-at-ms", "0"], "1..=21600000"),
        (&["--drop-at-ms", "1000"], "add `--reconnect-max-ms"),
    ] {
        let error = format!("{:#}", with(extra).expect_err("refused"));
        assert!(error.contains(expected), "{extra:?}: {error}");
    }
}
