//! A view, fed the server's messages as vigil writes them (PROTOCOL.md),
//! and the phases the report splits.

use super::*;
use crate::cli::Options;

/// A run of `connections` clients in one channel, phases at 1 s and 2 s.
fn tally(connections: u32, extra: &[&str]) -> RoomTally {
    let mut args: Vec<String> = [
        "--url",
        "ws://127.0.0.1:9/ws",
        "--join",
        "big",
        "--connections",
        &connections.to_string(),
        "--view-phases-ms",
        "1000,2000",
    ]
    .iter()
    .map(|word| (*word).to_owned())
    .collect();
    args.extend(extra.iter().map(|word| (*word).to_owned()));
    let options = Options::parse(args).expect("valid options");
    RoomTally::of(&options, connections as usize).expect("tracking asked for")
}

fn feed(view: &mut View<'_>, text: &str, now_ms: u32) -> Option<String> {
    view.on_text(text.as_bytes(), now_ms)
}

#[test]
fn a_counted_view_is_whole_when_it_counts_every_client() {
    let tally = tally(3, &[]);
    let mut view = tally.view(0, 0, "big");
    feed(
        &mut view,
        r#"{"type":"reply","id":null,"presence":{"channel":"big","version":4,"mode":"counts","users":2,"connections":2,"pages":false}}"#,
        10,
    );
    assert_eq!(tally.snapshot().whole, 0);
    feed(
        &mut view,
        r#"{"type":"presence_count","channel":"big","version":5,"users":3,"connections":3,"pages":false}"#,
        20,
    );
    assert_eq!(
        tally.snapshot(),
        Snapshot {
            whole: 1,
            whole_by_ms: Some(20)
        }
    );
    // An older count changes nothing; a change of connections alone keeps
    // the version and is applied.
    feed(
        &mut view,
        r#"{"type":"presence_count","channel":"big","version":4,"users":2,"connections":2,"pages":false}"#,
        30,
    );
    assert_eq!(tally.snapshot().whole_by_ms, Some(20));
    feed(
        &mut view,
        r#"{"type":"presence_count","channel":"big","version":5,"users":3,"connections":4,"pages":false}"#,
        40,
    );
    assert_eq!(
        tally.snapshot().whole_by_ms,
        Some(20),
        "still whole since 20"
    );
    view.ended();
    assert_eq!(
        tally.snapshot().whole,
        0,
        "a closed connection knows nothing"
    );
}

#[test]
fn a_listed_view_applies_newer_diffs_only() {
    let tally = tally(3, &[]);
    let mut view = tally.view(0, 0, "big");
    feed(
        &mut view,
        r#"{"type":"reply","id":null,"presence":{"channel":"big","version":7,"members":[{"user":"a","meta":null},{"user":"b","meta":null}]}}"#,
        1,
    );
    // Already in the snapshot: ignored.
    feed(
        &mut view,
        r#"{"type":"presence","channel":"big","version":7,"joins":[{"user":"c","meta":null}],"leaves":[]}"#,
        2,
    );
    assert_eq!(tally.snapshot().whole, 0);
    feed(
        &mut view,
        r#"{"type":"presence","channel":"big","version":9,"joins":[{"user":"c","meta":null}],"leaves":[]}"#,
        3,
    );
    assert_eq!(tally.snapshot().whole_by_ms, Some(3));
    feed(
        &mut view,
        r#"{"type":"presence","channel":"big","version":10,"joins":[],"leaves":["a"]}"#,
        4,
    );
    assert_eq!(tally.snapshot().whole, 0);
    // Past the cap the channel is counted: the list is dropped.
    feed(
        &mut view,
        r#"{"type":"presence_count","channel":"big","version":11,"users":3,"connections":3,"pages":true}"#,
        5,
    );
    assert_eq!(tally.snapshot().whole_by_ms, Some(5));
}

#[test]
fn a_pager_reads_the_list_when_the_counts_are_whole_and_counts_it() {
    let tally = tally(3, &["--page-every", "2"]);
    // One in each block of two, at a different place in each: 0, 3, 4, ...
    let pagers: Vec<usize> = (0..6).filter(|&i| tally.view(i, i, "big").pager).collect();
    assert_eq!(pagers, [0, 3, 4]);
    let mut pager = tally.view(0, 0, "big");
    let count = |version: u64| {
        format!(
            r#"{{"type":"presence_count","channel":"big","version":{version},"users":3,"connections":3,"pages":true}}"#
        )
    };
    let first = feed(&mut pager, &count(5), 10).expect("starts reading");
    assert_eq!(
        serde_json::from_str::<Value>(&first).expect("JSON"),
        json!({"op": "presence", "channel": "big", "limit": 1000, "id": 1})
    );
    assert_eq!(
        tally.snapshot().whole,
        0,
        "whole only once the list is read"
    );
    assert_eq!(
        feed(&mut pager, &count(6), 11),
        None,
        "one reading at a time"
    );
    let second = feed(&mut pager, r#"{"type":"reply","id":1,"presence":{"channel":"big","version":6,"members":[{"user":"a","meta":null},{"user":"b","meta":null}],"next":"b"}}"#, 12).expect("next page");
    assert_eq!(
        serde_json::from_str::<Value>(&second).expect("JSON"),
        json!({"op": "presence", "channel": "big", "limit": 1000, "id": 2, "cursor": "b"})
    );
    assert_eq!(
        feed(
            &mut pager,
            r#"{"type":"reply","id":2,"presence":{"channel":"big","version":6,"members":[{"user":"c","meta":null}],"next":null}}"#,
            13
        ),
        None,
        "complete: no other reading, though counts came meanwhile"
    );
    assert_eq!(tally.snapshot().whole_by_ms, Some(13));
    let report = tally.report(3_000);
    assert_eq!(
        (
            report.pages_read,
            report.list_readings_complete,
            report.list_readings_short
        ),
        (2, 1, 0)
    );

    // A short reading during which counts came is read again at once; one
    // during which none came waits for the next.
    let mut short = tally.view(3, 3, "big");
    feed(&mut short, &count(6), 20).expect("starts reading");
    feed(&mut short, &count(7), 21);
    let page = r#"{"type":"reply","id":ID,"presence":{"channel":"big","version":7,"members":[{"user":"a","meta":null}],"next":null}}"#;
    let again = feed(&mut short, &page.replace("ID", "1"), 22).expect("reads again at once");
    assert!(again.contains(r#""id":2"#), "{again}");
    assert_eq!(
        feed(&mut short, &page.replace("ID", "2"), 23),
        None,
        "waits"
    );
    assert_eq!(tally.report(3_000).list_readings_short, 2);
    assert!(
        feed(&mut short, &count(8), 24).is_some(),
        "reads on the next counts"
    );
    // A refused page ends the reading; the next counts start another.
    let error = r#"{"type":"error","id":3,"code":"rate_limited","message":"slow down"}"#;
    assert_eq!(feed(&mut short, error, 25), None);
    assert_eq!(tally.report(3_000).page_errors, 1);
    assert!(feed(&mut short, &count(9), 26).is_some());
}

#[test]
fn bytes_and_views_are_split_at_the_marks() {
    let tally = tally(2, &[]);
    let mut first = tally.view(0, 0, "big");
    let second = tally.view(1, 1, "big");
    first.received(100, 500); // 102 B in phase 0
    second.received(200, 999); // 204 B in phase 0
    first.received(1_000, 1_000); // 1,004 B in phase 1
    second.received(70_000, 2_500); // 70,010 B in phase 2
    feed(
        &mut first,
        r#"{"type":"presence_count","channel":"big","version":1,"users":2,"connections":2,"pages":false}"#,
        900,
    );
    tally.take_snapshot(); // at the first mark
    first.ended();
    tally.take_snapshot(); // at the second
    let report = tally.report(3_000);
    let phases: Vec<_> = report
        .phases
        .iter()
        .map(|p| {
            (
                p.from_ms,
                p.to_ms,
                p.bytes_total,
                p.bytes_per_client_max,
                p.views_whole,
                p.whole_by_ms,
            )
        })
        .collect();
    assert_eq!(
        phases,
        [
            (0, 1_000, 306, 204, Some(1), Some(900)),
            (1_000, 2_000, 1_004, 1_004, Some(0), None),
            (2_000, 3_000, 70_010, 70_010, Some(0), None),
        ]
    );
}
