//! The checks every foreign client goes through, against a `vigil` that
//! pings after 1 s of silence and gives up 1 s later (plus up to 10 %
//! jitter), with a 1 s leave grace.
//!
//! Waits are generous bounds on events, never timing assertions: a test
//! fails when something does not happen within many times its expected
//! delay, or when something happens that must not.

use std::time::{Duration, Instant};

use serde_json::Value;
use vigil_e2e::{ServerProcess, TestCa, WsClient, http_get};

use crate::client::{ForeignClient, Lang, Options};

/// The server's heartbeat interval and timeout (each).
const BEAT: Duration = Duration::from_secs(1);

/// How long any expected event may take: many times its expected delay,
/// so a loaded machine does not fail a test.
const PATIENCE: Duration = Duration::from_secs(20);

/// A few times the server's detection bound (`interval + timeout`, jitter,
/// timer tick) plus the leave grace: a frozen client's leave must come
/// before this.
const DETECTION_BOUND: Duration = Duration::from_secs(10);

fn server() -> ServerProcess {
    ServerProcess::start(&[
        "--listen",
        "127.0.0.1:0",
        "--heartbeat-interval",
        "1s",
        "--heartbeat-timeout",
        "1s",
        "--leave-grace",
        "1s",
    ])
}

/// A Rust client that joined `room`; returns it with its user id.
#[track_caller]
fn rust_watcher(server: &ServerProcess) -> (WsClient, String) {
    let mut watcher = WsClient::connect(server.addr());
    let welcome = watcher.next_json();
    let user = welcome["user"].as_str().expect("a user id").to_owned();
    watcher.send_json(r#"{"op":"join","channel":"room","id":1}"#);
    assert_eq!(watcher.next_of("reply")["id"], 1);
    (watcher, user)
}

/// What the welcome of [`server`] advertises.
const QUICK_BEAT: &str = "interval_ms=1000 timeout_ms=1000";

/// The user id in a client's `welcome USER ...` line, which must show the
/// server's `heartbeat` numbers.
#[track_caller]
fn welcomed_user(client: &mut ForeignClient, heartbeat: &str) -> String {
    let line = client.expect("welcome ", PATIENCE);
    let user = line.split_whitespace().nth(1).expect("welcome USER ...");
    assert!(
        line.ends_with(heartbeat),
        "the welcome advertises the server's heartbeat ({heartbeat}): {line}"
    );
    user.to_owned()
}

/// The value of one series in the server's `/metrics`.
#[track_caller]
fn metric(server: &ServerProcess, series: &str) -> u64 {
    let value = vigil_e2e::series_value(&http_get(server.addr(), "/metrics"), series);
    assert!(value >= 0.0 && value.fract() == 0.0, "{series} = {value}");
    value as u64
}

fn closed(reason: &str) -> String {
    format!("vigil_connections_closed_total{{reason=\"{reason}\"}}")
}

/// The numbers in a `pings sent=N pongs=M` line.
#[track_caller]
fn pings_line(line: &str) -> (u64, u64) {
    let number = |key: &str| {
        line.split_whitespace()
            .find_map(|word| word.strip_prefix(key))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no {key}N in {line:?}"))
    };
    (number("sent="), number("pongs="))
}

/// Reads the watcher's events until `wanted` matches one; answers the
/// server's pings meanwhile.
#[track_caller]
fn watch_for(watcher: &mut WsClient, what: &str, wanted: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let event = watcher
            .try_next_json_within(left)
            .unwrap_or_else(|| panic!("the Rust client saw no {what} within {PATIENCE:?}"));
        if wanted(&event) {
            return event;
        }
    }
}

pub(crate) fn exchanges_messages_with_a_rust_client(lang: Lang) {
    // Default heartbeats: the Rust client waits for the foreign one to
    // start without reading, longer than a 1 s heartbeat would allow.
    let server = ServerProcess::start(&["--listen", "127.0.0.1:0"]);
    let (watcher, watcher_user) = rust_watcher(&server);
    let client = ForeignClient::start(lang, server.addr(), &Options::default());
    exchange(lang, watcher, &watcher_user, client);
}

/// The same exchange over TLS: vigil with a certificate of a CA made for
/// the test, the foreign client on `wss://` trusting that CA.
pub(crate) fn exchanges_messages_over_wss(lang: Lang) {
    let ca = TestCa::new(&format!("interop-{}", lang.name()));
    let pair = ca.issue("server", &["localhost", "127.0.0.1"]);
    let server = ServerProcess::start(&[
        "--listen",
        "127.0.0.1:0",
        "--tls-cert",
        pair.cert.to_str().expect("UTF-8"),
        "--tls-key",
        pair.key.to_str().expect("UTF-8"),
    ]);
    let mut watcher =
        WsClient::try_connect_tls(server.addr(), "localhost", ca.client_config(), "/ws")
            .unwrap_or_else(|refusal| panic!("wss refused: {refusal}"));
    let welcome = watcher.next_json();
    let watcher_user = welcome["user"].as_str().expect("a user id").to_owned();
    watcher.send_json(r#"{"op":"join","channel":"room","id":1}"#);
    assert_eq!(watcher.next_of("reply")["id"], 1);
    let url = format!("wss://localhost:{}/ws", server.addr().port());
    let client = ForeignClient::start_url(lang, &url, &Options::default(), Some(&ca.ca_file()));
    exchange(lang, watcher, &watcher_user, client);
}

/// The foreign client joins `room` beside the Rust `watcher` and publishes;
/// the watcher sees both and publishes back.
fn exchange(lang: Lang, mut watcher: WsClient, watcher_user: &str, mut client: ForeignClient) {
    let user = welcomed_user(&mut client, "interval_ms=20000 timeout_ms=10000");
    client.expect("joined room members=2", PATIENCE);

    // Foreign client to Rust: its join and the message it publishes, in
    // either order (presence diffs are merged for a moment, messages not).
    let (mut joined, mut message) = (false, None);
    while !joined || message.is_none() {
        let event = watch_for(
            &mut watcher,
            "the foreign client's join and message",
            |_| true,
        );
        if event["type"] == "presence" {
            joined |= event["joins"]
                .as_array()
                .is_some_and(|joins| joins.iter().any(|join| join["user"] == user.as_str()));
        } else if event["type"] == "message" {
            message = Some(event);
        }
    }
    let message = message.expect("the loop ends with a message");
    assert_eq!(message["from"], user.as_str());
    assert_eq!(
        message["data"]["text"],
        format!("hello from {}", lang.name())
    );

    // Rust to foreign client.
    watcher.send_json(r#"{"op":"publish","channel":"room","data":{"text":"hi from rust"},"id":2}"#);
    assert_eq!(watcher.next_of("reply")["delivered"], 2);
    let line = client.expect(&format!("message {watcher_user} "), PATIENCE);
    let data: Value = serde_json::from_str(line.splitn(3, ' ').nth(2).expect("message FROM DATA"))
        .expect("the data as JSON");
    assert_eq!(data["text"], "hi from rust");
}

pub(crate) fn both_keepalives_run_and_neither_side_closes(lang: Lang) {
    let server = server();
    // Its keepalive (1.5 s) is longer than the server's interval (1 s), so
    // the server, which pings only a silent peer, pings it too.
    let options = Options {
        keepalive: Duration::from_millis(1500),
        ..Options::default()
    };
    let mut client = ForeignClient::start(lang, server.addr(), &options);
    welcomed_user(&mut client, QUICK_BEAT);
    client.expect("joined room", PATIENCE);

    // Several intervals of both: three pongs to its pings, three of ours
    // answered.
    for _ in 0..3 {
        client.expect("keepalive rtt_ms=", PATIENCE);
    }
    let deadline = Instant::now() + PATIENCE;
    while metric(&server, "vigil_heartbeat_pongs_received_total") < 3 {
        assert!(
            Instant::now() < deadline,
            "the server's pings were not answered 3 times within {PATIENCE:?}"
        );
        std::thread::sleep(BEAT / 4);
    }

    // Neither side closed: the client reports no close and still runs, the
    // server still holds the connection and closed none.
    assert!(
        !client
            .printed()
            .iter()
            .any(|line| line.starts_with("closed")),
        "the client saw a close: {:?}",
        client.printed()
    );
    assert!(client.is_running(), "the client exited");
    assert_eq!(metric(&server, "vigil_connections"), 1);
    let scrape = http_get(server.addr(), "/metrics");
    let closes: Vec<&str> = scrape
        .lines()
        .filter(|line| line.starts_with("vigil_connections_closed_total{"))
        .collect();
    assert!(!closes.is_empty(), "no close series in:\n{scrape}");
    assert!(
        closes.iter().all(|line| line.ends_with(" 0")),
        "the server closed something: {closes:?}"
    );
}

pub(crate) fn a_frozen_client_is_detected_within_the_bound(lang: Lang) {
    let server = server();
    let options = Options {
        silent: true,
        ..Options::default()
    };
    let mut client = ForeignClient::start(lang, server.addr(), &options);
    let user = welcomed_user(&mut client, QUICK_BEAT);
    client.expect("silent", PATIENCE);
    let frozen = Instant::now();
    // The Rust client joins now, so it reads from here on (with a 1 s
    // heartbeat it could not wait for the foreign client to start).
    let (mut watcher, _) = rust_watcher(&server);

    let leave = watch_for(&mut watcher, "leave of the frozen client", |event| {
        event["type"] == "presence"
            && event["leaves"]
                .as_array()
                .is_some_and(|leaves| leaves.iter().any(|u| u == user.as_str()))
    });
    // Shown, not asserted beyond the generous bound: the expected delay
    // is about 3.2 s (interval, timeout, jitter, timer tick, leave grace).
    eprintln!(
        "{}: leave announced {:?} after the client froze",
        lang.name(),
        frozen.elapsed()
    );
    assert!(
        frozen.elapsed() < DETECTION_BOUND,
        "the leave came {:?} after the client froze, over {DETECTION_BOUND:?}: {leave}",
        frozen.elapsed()
    );
    assert_eq!(metric(&server, &closed("heartbeat_timeout")), 1);
    // The server did it: the frozen client never closed on its own.
    assert!(client.is_running(), "the frozen client exited");
}

pub(crate) fn pings_under_the_limit_are_answered(lang: Lang) {
    let server = server();
    // 20 a second: 200 per 10 s window, under the default 500.
    let options = Options {
        ping_rate: Some(20),
        ..Options::default()
    };
    let mut client = ForeignClient::start(lang, server.addr(), &options);
    welcomed_user(&mut client, QUICK_BEAT);
    let line = client
        .wait_for(PATIENCE, |line| {
            line.starts_with("pings ") && pings_line(line).1 >= 100
        })
        .unwrap_or_else(|why| {
            panic!(
                "100 of its pings were not answered: {why}: {:?}",
                client.printed()
            )
        });
    let (sent, pongs) = pings_line(&line);
    assert!(pongs <= sent, "{line}");
    assert!(
        !client
            .printed()
            .iter()
            .any(|line| line.starts_with("closed")),
        "closed under the limit: {:?}",
        client.printed()
    );
    assert_eq!(metric(&server, &closed("ping_flood")), 0);
    assert_eq!(metric(&server, "vigil_connections"), 1);
}

pub(crate) fn pings_over_the_limit_close_with_1008(lang: Lang) {
    let server = server();
    // 2,000 a second: the default 500 per 10 s is spent in a quarter second.
    let options = Options {
        ping_rate: Some(2000),
        ..Options::default()
    };
    let mut client = ForeignClient::start(lang, server.addr(), &options);
    welcomed_user(&mut client, QUICK_BEAT);
    let line = client.expect("closed ", PATIENCE);
    assert_eq!(line, "closed 1008 too many pings");
    // The server counts the close once its handshake ends (the client's
    // reply, or the close timeout): a moment after the client saw it.
    let deadline = Instant::now() + PATIENCE;
    while metric(&server, &closed("ping_flood")) == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(metric(&server, &closed("ping_flood")), 1);
}
