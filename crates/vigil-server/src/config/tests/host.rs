//! The settings that size vigil to its host: connections from the open-file
//! limit, shards from the cores, and the proxies whose word is believed.

use super::*;

#[test]
fn max_connections_is_at_least_1_and_otherwise_bounded_by_the_host() {
    const WHY: &str =
        "0 would refuse every client; leave it unset for as many as the open-file limit allows";
    check_refused(
        &["--max-connections", "0"],
        &[],
        &[&format!("--max-connections: {WHY}")],
    );
    check_refused(
        &[],
        &[("VIGIL_MAX_CONNECTIONS", "0")],
        &[&format!("VIGIL_MAX_CONNECTIONS: {WHY}")],
    );
    // No constant caps it: a host allowing a million files holds a million
    // connections (the file limit is checked at start, `connection_limit`).
    for fits in ["1", "19901", "1000000"] {
        serve(&["--max-connections", fits], &[]);
    }
    serve(&["--max-connections-per-ip", "1000000"], &[]);
    check_refused(
        &["--max-connections-per-ip", "0"],
        &[],
        &["--max-connections-per-ip: 0 is outside 1.. (a limit of none would refuse everyone)"],
    );
}

#[test]
fn shards_default_to_the_cores_the_process_may_use() {
    let cores = std::num::NonZeroUsize::new(48);
    assert_eq!(Settings::default().shard_count(cores), 48);
    assert_eq!(Settings::default().shard_count(None), 1);
    assert_eq!(
        Settings::default().shard_count(std::num::NonZeroUsize::new(1_000)),
        256
    );
    let chosen = serve(&["--shards", "2"], &[]);
    assert_eq!(chosen.shard_count(cores), 2);
    check_refused(&["--shards", "0"], &[], &["--shards: 0 is outside 1..=256"]);
}

#[test]
fn trusted_proxies_are_networks_or_addresses() {
    let settings = serve(&["--trusted-proxies", "10.1.2.3/8,::1, 192.168.0.7"], &[]);
    let written: Vec<String> = settings
        .trusted_proxies
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(written, ["10.0.0.0/8", "::1/128", "192.168.0.7/32"]);
    let error =
        parse(argv(&["--trusted-proxies", "10.0.0.0/33"]), |_| None).expect_err("not a network");
    assert!(
        error
            .to_string()
            .starts_with("--trusted-proxies: \"10.0.0.0/33\" has an entry that is neither"),
        "{error}"
    );
}

#[test]
fn the_connection_limit_follows_the_open_file_limit() {
    // Every connection is a file; so is every socket in its HTTP phase
    // (max_handshakes, 1,024 by default), and 100 more are kept free.
    let unset = Settings::default();
    assert_eq!(unset.connection_limit(Some(20_000)).ok(), Some(18_876));
    assert_eq!(unset.connection_limit(Some(2_048)).ok(), Some(924));
    assert_eq!(
        unset.connection_limit(Some(1_048_576)).ok(),
        Some(1_047_452)
    );
    assert_eq!(unset.connection_limit(None).ok(), Some(usize::MAX));
    assert_eq!(
        unset
            .connection_limit(Some(1_024))
            .map_err(|e| e.to_string())
            .expect_err("no room"),
        "this process may open only 1024 files (its hard limit, `ulimit -Hn`); vigil needs more \
         than max_handshakes (1024) + 100: raise the limit or lower max_handshakes"
    );
    let chosen = Settings {
        max_connections: Some(5_000),
        max_handshakes: 100,
        ..Settings::default()
    };
    assert_eq!(chosen.connection_limit(Some(20_000)).ok(), Some(5_000));
    assert_eq!(chosen.connection_limit(Some(5_200)).ok(), Some(5_000));
    assert_eq!(
        chosen
            .connection_limit(Some(5_199))
            .map_err(|e| e.to_string())
            .expect_err("too few files"),
        "max_connections is 5000: that many connections, max_handshakes (100) and 100 more need \
         5200 open files, but this process may open only 5199 (its hard limit, `ulimit -Hn`); \
         raise it (LimitNOFILE= in a systemd unit, `nofile` in /etc/security/limits.conf) or \
         lower max_connections"
    );
}

#[test]
fn one_address_may_hold_a_sixteenth_of_the_handshake_places() {
    let with = |max_handshakes| Settings {
        max_handshakes,
        ..Settings::default()
    };
    assert_eq!(with(1024).handshakes_per_ip(), 64);
    assert_eq!(with(64).handshakes_per_ip(), 8);
    assert_eq!(with(5).handshakes_per_ip(), 5);
}
