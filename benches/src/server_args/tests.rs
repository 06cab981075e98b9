//! The bench servers' command line: defaults, both flag forms, and refusals.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use super::ServerArgs;

fn parse(words: &[&str]) -> anyhow::Result<ServerArgs> {
    ServerArgs::parse("server", words.iter().map(|w| (*w).to_owned()))
}

#[test]
fn defaults() {
    assert_eq!(parse(&[]).unwrap(), ServerArgs::default());
}

#[test]
fn every_flag_in_both_forms() {
    let args = parse(&[
        "--listen",
        "127.0.0.1:4000",
        "--interval-ms=250",
        "--timeout-ms",
        "100",
        "--stats-file",
        "/tmp/s.json",
        "--max-seconds=60",
        "--http",
        "auto",
    ])
    .unwrap();
    assert_eq!(
        args,
        ServerArgs {
            listen: SocketAddr::from(([127, 0, 0, 1], 4000)),
            interval: Duration::from_millis(250),
            timeout: Duration::from_millis(100),
            stats_file: Some(PathBuf::from("/tmp/s.json")),
            max_lifetime: Duration::from_secs(60),
            auto_builder: true,
        }
    );
}

#[test]
fn refusals() {
    for (words, expected) in [
        (&["--listen", "10.0.0.1:80"][..], "loopback only"),
        (&["--listen", "nope"], "invalid value `nope`"),
        (&["--http", "h3"], "`--http` is auto or http1"),
        (&["--interval-ms", "0"], "invalid value `0`"),
        (&["--interval-ms"], "needs a value"),
        (&["--max-seconds", "-1"], "invalid value `-1`"),
        (&["--frobnicate", "1"], "unknown option `--frobnicate`"),
        (&["--help"], "USAGE"),
    ] {
        let error = format!("{:#}", parse(words).unwrap_err());
        assert!(error.contains(expected), "{words:?}: {error}");
    }
}
