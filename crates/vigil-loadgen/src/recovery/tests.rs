//! A client's offsets fed the server's messages as PROTOCOL.md writes them:
//! deliveries, duplicates, gaps, and what each re-join learned.

use super::*;

fn feed(tracker: &mut Tracker<'_>, text: &str, now_ms: u32) {
    assert_eq!(
        tracker.on_text(text.as_bytes(), now_ms),
        None,
        "asks nothing"
    );
}

fn message(offset: u64, epoch: &str) -> String {
    format!(
        r#"{{"type":"message","channel":"r","from":"p","data":1,"offset":{offset},"epoch":"{epoch}"}}"#
    )
}

fn join_reply(extra: &str, offset: u64, epoch: &str) -> String {
    format!(
        r#"{{"type":"reply","id":null,{extra}"history":{{"offset":{offset},"epoch":"{epoch}"}},"presence":{{"channel":"r","version":1,"members":[]}}}}"#
    )
}

#[test]
fn a_client_counts_its_messages_and_what_each_rejoin_recovered() {
    let tally = RecoveryTally::new(1);
    assert_eq!(tally.since(0), None, "nothing to ask for yet");
    let mut first = tally.tracker(0);
    feed(&mut first, &join_reply("", 10, "00000000000000e1"), 0);
    assert_eq!(tally.since(0), Some((10, "00000000000000e1".into())));
    feed(&mut first, &message(11, "00000000000000e1"), 1);
    feed(&mut first, &message(11, "00000000000000e1"), 2); // a duplicate
    feed(&mut first, &message(14, "00000000000000e1"), 3); // 12 and 13 skipped
    // Dropped; the re-join asks from 14 and recovers 3 messages.
    let mut second = tally.tracker(0);
    feed(
        &mut second,
        &join_reply(r#""recovered":true,"missed":3,"#, 17, "00000000000000e1"),
        100,
    );
    for offset in 15..=17 {
        feed(
            &mut second,
            &message(offset, "00000000000000e1"),
            100 + offset as u32,
        );
    }
    // Dropped again; the server restarted: another epoch.
    let mut third = tally.tracker(0);
    feed(
        &mut third,
        &join_reply(
            r#""recovered":false,"recovery":"epoch_changed","#,
            2,
            "00000000000000e2",
        ),
        200,
    );
    feed(&mut third, &message(3, "00000000000000e2"), 201);
    // And once more, too late: 20 messages lost that the epoch still counts.
    let mut fourth = tally.tracker(0);
    feed(
        &mut fourth,
        &join_reply(
            r#""recovered":false,"recovery":"too_old","#,
            23,
            "00000000000000e2",
        ),
        300,
    );
    let report = tally.report();
    assert_eq!(
        report,
        RecoveryReport {
            delivered: 7,
            duplicates: 1,
            gap_messages: 2,
            rejoins: 3,
            recovered: 1,
            recovered_messages: 3,
            replayed: 3,
            lost_messages: 0,
            blind_rejoins: 0,
            epoch_jumps: 0,
            not_recovered: [("epoch_changed".to_owned(), 1), ("too_old".to_owned(), 1)].into(),
            lost_known: 20,
            recover_ms_p50: Some(17),
            recover_ms_max: Some(17),
        }
    );
}

#[test]
fn lost_messages_blind_rejoins_and_unannounced_epochs_are_counted() {
    let tally = RecoveryTally::new(1);
    // History off: no offsets, but the publisher's numbers show a loss.
    let plain = |seq: u64| {
        format!(
            r#"{{"type":"message","channel":"r","from":"p","data":{{"sent_us":1,"seq":{seq}}}}}"#
        )
    };
    let mut first = tally.tracker(0);
    feed(
        &mut first,
        r#"{"type":"reply","id":null,"presence":{"channel":"r","version":1,"members":[]}}"#,
        0,
    );
    feed(&mut first, &plain(7), 1); // joined mid-stream: nothing lost
    feed(&mut first, &plain(8), 2);
    feed(&mut first, &plain(12), 3); // 9, 10 and 11 lost
    // Back without a position to name: a blind re-join.
    let mut second = tally.tracker(0);
    feed(
        &mut second,
        r#"{"type":"reply","id":null,"presence":{"channel":"r","version":1,"members":[]}}"#,
        4,
    );
    // A message of an epoch no reply announced.
    let jumps = RecoveryTally::new(1);
    let mut tracker = jumps.tracker(0);
    feed(&mut tracker, &join_reply("", 5, "00000000000000e1"), 5);
    feed(&mut tracker, &message(1, "00000000000000e9"), 6);
    let report = tally.report();
    assert_eq!(
        (report.delivered, report.lost_messages, report.blind_rejoins),
        (3, 3, 1)
    );
    assert_eq!(jumps.report().epoch_jumps, 1);
}
