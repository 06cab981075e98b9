//! The presence table as a specification: scripts of calls at offsets from an
//! origin instant, and the events and answers they produce, as text.

mod check;

use std::time::Duration;

use super::{ConnId, Departure, Presence, PresenceConfig, PresenceConfigError};
use check::{arc, check, check_with, origin};

// --- many connections, one user ------------------------------------------

#[test]
fn tabs_of_one_user_are_one_member() {
    check(
        "
        0s connect c1 alice
        0s join c1 lobby
        1s connect c2 alice
        1s join c2 lobby
        1s members lobby
        2s disconnect c1 clean
        2s online lobby alice
        2s timer
        3s leave c2 lobby
        3s online lobby alice
        ",
        "
        0s diff lobby v1 +alice
        1s members lobby v1: alice
        2s online lobby alice: true
        2s timer none
        3s diff lobby v2 -alice
        3s online lobby alice: false
        ",
    );
}

#[test]
fn members_are_sorted_by_user_and_carry_their_meta() {
    check(
        "
        0s connect c1 carol
        0s connect c2 alice
        0s connect c3 bob
        0s join c1 lobby phone
        0s join c2 lobby
        0s join c3 lobby laptop
        0s members lobby
        0s counts
        ",
        "
        0s diff lobby v1 +carol=phone
        0s diff lobby v2 +alice
        0s diff lobby v3 +bob=laptop
        0s members lobby v3: alice bob=laptop carol=phone
        0s counts: conns=3 channels=1 pending=0
        ",
    );
}

// --- the grace ----------------------------------------------------------------

#[test]
fn a_reload_within_the_grace_announces_nothing() {
    check(
        "
        0s connect c1 alice
        0s join c1 lobby
        10s disconnect c1 clean
        10s timer
        11s connect c2 alice
        11s join c2 lobby
        11s timer
        20s tick
        20s members lobby
        ",
        "
        0s diff lobby v1 +alice
        10s timer 15s
        11s timer none
        20s members lobby v1: alice
        ",
    );
}

#[test]
fn the_leave_is_announced_when_the_grace_runs_out_and_not_before() {
    check(
        "
        0s connect c1 alice
        0s join c1 lobby
        1s disconnect c1 abnormal
        1s online lobby alice
        1s counts
        5999ms tick
        5999ms online lobby alice
        6s tick
        6s tick
        6s online lobby alice
        6s timer
        6s counts
        ",
        "
        0s diff lobby v1 +alice
        1s online lobby alice: true
        1s counts: conns=0 channels=1 pending=1
        5999ms online lobby alice: true
        6s diff lobby v2 -alice
        6s online lobby alice: false
        6s timer none
        6s counts: conns=0 channels=0 pending=0
        ",
    );
}

#[test]
fn coming_back_after_the_grace_is_a_leave_then_a_join_even_if_the_timer_was_late() {
    // No tick at 5 s: the join at 7 s announces the due leave first.
    check(
        "
        0s connect c1 alice
        0s join c1 lobby
        0s disconnect c1 clean
        7s connect c2 alice
        7s join c2 lobby
        ",
        "
        0s diff lobby v1 +alice
        7s diff lobby v2 -alice
        7s diff lobby v3 +alice
        ",
    );
}

#[test]
fn leaves_due_together_are_one_diff_per_channel_in_name_order() {
    check(
        "
        0s connect c1 bob
        0s connect c2 alice
        0s join c1 news
        0s join c1 lobby
        0s join c2 lobby
        1s disconnect c1 clean
        1s disconnect c2 clean
        1s channels c1
        9s tick
        ",
        "
        0s diff news v1 +bob
        0s diff lobby v2 +bob
        0s diff lobby v3 +alice
        1s channels c1:
        9s diff lobby v4 -alice -bob
        9s diff news v5 -bob
        ",
    );
}

#[test]
fn a_zero_grace_announces_the_leave_at_once() {
    let config = PresenceConfig::builder()
        .leave_grace(Duration::ZERO)
        .build()
        .expect("zero is a valid grace");
    check_with(
        config,
        "
        0s connect c1 alice
        0s join c1 lobby
        0s will c1 gone
        1s disconnect c1 abnormal
        1s timer
        ",
        "
        0s diff lobby v1 +alice
        1s will c1 alice gone
        1s diff lobby v2 -alice
        1s timer none
        ",
    );
}

// --- explicit leaves ------------------------------------------------------

#[test]
fn an_explicit_leave_is_immediate_despite_the_grace() {
    check(
        "
        0s connect c1 alice
        0s join c1 lobby
        0s join c1 lobby
        1s leave c1 lobby
        1s timer
        1s leave c1 lobby
        1s channels c1
        ",
        "
        0s diff lobby v1 +alice
        1s diff lobby v2 -alice
        1s timer none
        1s false
        1s channels c1:
        ",
    );
}

#[test]
fn joining_again_after_a_disconnect_cancels_the_leave_and_a_later_explicit_leave_is_immediate() {
    check(
        "
        0s connect c1 alice
        0s join c1 lobby
        1s disconnect c1 clean
        2s connect c2 alice
        2s join c2 lobby
        3s leave c2 lobby
        3s counts
        ",
        "
        0s diff lobby v1 +alice
        3s diff lobby v2 -alice
        3s counts: conns=1 channels=0 pending=0
        ",
    );
}

// --- meta -------------------------------------------------------------------

#[test]
fn a_join_with_new_meta_is_an_upsert_and_the_same_meta_is_silent() {
    check(
        "
        0s connect c1 alice
        0s connect c2 alice
        0s join c1 lobby phone
        1s join c2 lobby phone
        2s join c2 lobby laptop
        3s join c1 lobby laptop
        4s disconnect c1 clean
        4s disconnect c2 clean
        5s connect c3 alice
        5s join c3 lobby
        5s members lobby
        ",
        "
        0s diff lobby v1 +alice=phone
        2s diff lobby v2 +alice=laptop
        5s diff lobby v3 +alice
        5s members lobby v3: alice
        ",
    );
}

// --- last wills -----------------------------------------------------------

#[test]
fn a_last_will_is_published_only_on_an_abnormal_end() {
    check(
        "
        0s connect c1 alice
        0s connect c2 bob
        0s connect c3 carol
        0s will c1 alice-crashed
        0s will c2 bob-crashed
        0s will c3 carol-crashed
        0s will c3 -
        1s disconnect c1 clean
        2s disconnect c2 abnormal
        3s disconnect c3 abnormal
        ",
        "
        2s will c2 bob bob-crashed
        ",
    );
}

#[test]
fn a_last_will_comes_at_once_even_while_another_tab_keeps_the_user_present() {
    check(
        "
        0s connect c1 alice
        0s connect c2 alice
        0s join c1 lobby
        0s join c2 lobby
        0s will c1 tab-died
        1s disconnect c1 abnormal
        1s timer
        1s online lobby alice
        ",
        "
        0s diff lobby v1 +alice
        1s will c1 alice tab-died
        1s timer none
        1s online lobby alice: true
        ",
    );
}

// --- versions and snapshots ------------------------------------------------

#[test]
fn versions_keep_increasing_when_a_channel_empties_and_fills_again() {
    check(
        "
        0s members lobby
        0s connect c1 alice
        0s join c1 news
        0s join c1 lobby
        0s members lobby
        0s leave c1 lobby
        0s members lobby
        0s join c1 lobby
        0s members lobby
        0s members news
        ",
        "
        0s members lobby v0:
        0s diff news v1 +alice
        0s diff lobby v2 +alice
        0s members lobby v2: alice
        0s diff lobby v3 -alice
        0s members lobby v3:
        0s diff lobby v4 +alice
        0s members lobby v4: alice
        0s members news v1: alice
        ",
    );
}

#[test]
fn a_pending_leave_is_still_in_the_snapshot() {
    check(
        "
        0s connect c1 alice
        0s connect c2 bob
        0s join c1 lobby
        0s join c2 lobby
        1s disconnect c1 clean
        1s members lobby
        6s tick
        6s members lobby
        ",
        "
        0s diff lobby v1 +alice
        0s diff lobby v2 +bob
        1s members lobby v2: alice bob
        6s diff lobby v3 -alice
        6s members lobby v3: bob
        ",
    );
}

// --- bookkeeping ----------------------------------------------------------

#[test]
fn unknown_connections_and_channels_change_nothing() {
    check(
        "
        0s join c9 lobby
        0s leave c9 lobby
        0s will c9 x
        0s disconnect c9 abnormal
        0s connect c1 alice
        0s connect c1 bob
        0s leave c1 lobby
        0s channels c9
        0s online nowhere alice
        0s counts
        0s disconnect c1 clean
        0s disconnect c1 clean
        0s connect c1 bob
        0s counts
        ",
        "
        0s false
        0s false
        0s false
        0s false
        0s false
        0s false
        0s channels c9:
        0s online nowhere alice: false
        0s counts: conns=1 channels=0 pending=0
        0s false
        0s counts: conns=1 channels=0 pending=0
        ",
    );
}

#[test]
fn a_connection_reports_its_user_and_channels_and_leaves_nothing_behind() {
    let t0 = origin();
    let mut presence = Presence::new(PresenceConfig::default());
    presence.connect(t0, ConnId(1), arc("alice"));
    presence.join(t0, ConnId(1), arc("news"), None);
    presence.join(t0, ConnId(1), arc("lobby"), None);
    assert_eq!(presence.user_of(ConnId(1)), Some("alice"));
    assert_eq!(presence.user_of(ConnId(2)), None);
    let channels: Vec<&str> = presence.channels_of(ConnId(1)).collect();
    assert_eq!(channels, ["lobby", "news"]);
    assert_eq!(presence.channels().collect::<Vec<_>>(), ["lobby", "news"]);
    assert_eq!(presence.member_count("lobby"), 1);
    assert_eq!(presence.member_count("nowhere"), 0);
    presence.disconnect(t0, ConnId(1), Departure::Abnormal);
    presence.handle_timeout(t0 + Duration::from_secs(5));
    while presence.poll_event().is_some() {}
    assert_eq!(
        (presence.channel_count(), presence.connection_count()),
        (0, 0)
    );
    assert_eq!(presence.pending_leave_count(), 0);
    assert_eq!(presence.poll_timeout(), None);
}

// --- time -------------------------------------------------------------------

#[test]
fn time_going_backwards_is_clamped_to_the_latest_instant_seen() {
    check(
        "
        0s connect c1 alice
        0s connect c2 alice
        0s join c1 lobby
        0s join c2 news
        10s disconnect c1 clean
        3s tick
        3s timer
        16s tick
        2s disconnect c2 clean
        2s timer
        20s tick
        21s tick
        ",
        "
        0s diff lobby v1 +alice
        0s diff news v2 +alice
        3s timer 15s
        16s diff lobby v3 -alice
        2s timer 21s
        21s diff news v4 -alice
        ",
    );
}

// --- config -----------------------------------------------------------------

#[test]
fn the_grace_defaults_to_five_seconds_and_may_be_zero_or_up_to_an_hour() {
    assert_eq!(
        PresenceConfig::default().leave_grace(),
        Duration::from_secs(5)
    );
    for grace in [Duration::ZERO, PresenceConfig::MAX_LEAVE_GRACE] {
        let built = PresenceConfig::builder().leave_grace(grace).build();
        assert_eq!(built.map(|c| c.leave_grace()), Ok(grace));
    }
}

#[test]
fn a_grace_over_an_hour_is_refused_with_a_message_naming_the_setting() {
    let too_long = PresenceConfig::MAX_LEAVE_GRACE + Duration::from_nanos(1);
    let error = PresenceConfig::builder()
        .leave_grace(too_long)
        .build()
        .expect_err("over an hour is refused");
    assert_eq!(
        error,
        PresenceConfigError::LeaveGraceTooLong { value: too_long }
    );
    let message = error.to_string();
    assert!(
        message.contains("leave_grace") && message.contains("3600s"),
        "{message}"
    );
}

// --- big channels: pages and counts ---------------------------------------

#[test]
fn pages_walk_the_members_in_user_order_and_stay_stable_while_they_change() {
    check(
        "
        0s connect c1 ann
        0s connect c2 bob
        0s connect c3 cat
        0s connect c4 dan
        0s connect c5 eve
        0s join c1 hall
        0s join c2 hall
        0s join c3 hall
        0s join c4 hall
        0s join c5 hall
        1s page hall - 2
        1s connect c6 abe
        1s join c6 hall
        1s leave c4 hall
        1s page hall bob 2
        1s page hall cat 2
        1s page nowhere - 2
        ",
        "
        0s diff hall v1 +ann
        0s diff hall v2 +bob
        0s diff hall v3 +cat
        0s diff hall v4 +dan
        0s diff hall v5 +eve
        1s page hall v5: ann bob next=bob
        1s diff hall v6 +abe
        1s diff hall v7 -dan
        1s page hall v7: cat eve next=-
        1s page hall v7: eve next=-
        1s page nowhere v7: next=-
        ",
    );
}

#[test]
fn stats_count_users_once_and_every_live_connection() {
    check(
        "
        0s connect c1 ann
        0s connect c2 ann
        0s connect c3 bob
        0s join c1 hall
        0s join c2 hall
        0s join c3 hall
        1s stats hall
        2s disconnect c3 abnormal
        2s stats hall
        7s tick
        7s stats hall
        7s stats nowhere
        ",
        "
        0s diff hall v1 +ann
        0s diff hall v2 +bob
        1s stats hall v2: users=2 connections=3
        2s stats hall v2: users=2 connections=2
        7s diff hall v3 -bob
        7s stats hall v3: users=1 connections=2
        7s stats nowhere v3: users=0 connections=0
        ",
    );
}

#[test]
fn a_grace_policy_gives_channels_their_own_leave_grace() {
    let at = origin();
    let mut presence = Presence::new(PresenceConfig::default());
    presence.set_grace_policy(super::GracePolicy::new(|channel| {
        channel
            .starts_with("fast")
            .then_some(Duration::from_secs(1))
    }));
    presence.connect(at, ConnId(1), arc("ann"));
    presence.join(at, ConnId(1), arc("fast-room"), None);
    presence.join(at, ConnId(1), arc("lobby"), None);
    while presence.poll_event().is_some() {}
    presence.disconnect(at, ConnId(1), Departure::Clean);
    // The fast channel's leave is due after 1 s, the lobby's after the
    // configured 5 s.
    assert_eq!(presence.poll_timeout(), Some(at + Duration::from_secs(1)));
    presence.handle_timeout(at + Duration::from_secs(1));
    assert!(!presence.is_online("fast-room", "ann"));
    assert!(presence.is_online("lobby", "ann"));
    assert_eq!(presence.poll_timeout(), Some(at + Duration::from_secs(5)));
    presence.handle_timeout(at + Duration::from_secs(5));
    assert!(!presence.is_online("lobby", "ann"));
}
