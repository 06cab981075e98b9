//! The plans: each fits its loadgens, and its timeline holds together.

use super::*;

#[test]
fn every_plan_fits_its_loadgens_and_detects_within_its_hold() {
    for scenario in [
        Scenario::Idle,
        Scenario::Detect,
        Scenario::Starve,
        Scenario::Flood,
        Scenario::Publish,
        Scenario::Storm,
        Scenario::Restart,
        Scenario::Cluster,
        Scenario::Abuse,
        Scenario::Bigroom,
        Scenario::Recover,
    ] {
        for quick in [true, false] {
            let plan = Plan::of(scenario, quick);
            assert!(
                plan.connections() <= plan.loadgen_processes * PER_LOADGEN,
                "{plan:?}"
            );
            let window = plan.window();
            assert!(window.end > window.start, "{plan:?}");
            if plan.silent + plan.half_open > 0 {
                // The last client turns quiet at ramp + silent_after and
                // must be detected before the loadgen stops watching.
                let stall = plan.stop.map_or(Duration::ZERO, |(_, length)| length);
                assert!(
                    plan.silent_after + plan.bound() + stall < plan.hold,
                    "{plan:?}"
                );
            }
        }
    }
}

#[test]
fn abuse_floods_after_a_window_as_long_and_within_the_hold() {
    for (quick, healthy, flooders, length) in [(true, 200, 1, 5), (false, 10_000, 10, 30)] {
        let plan = Plan::of(Scenario::Abuse, quick);
        assert_eq!((plan.healthy, plan.flooders), (healthy, flooders));
        let (at, abuse) = plan.abuse.expect("abuse has an abuse");
        assert_eq!(abuse, Duration::from_secs(length));
        // The window compared with the abuse is as long, after the ramp.
        assert_eq!(plan.window(), at - abuse..at);
        assert!(plan.window().start > plan.ramp());
        // The bystanders hold (after their ramp) past the abuse's end.
        assert!(plan.ramp() + plan.hold > plan.abuse_end());
    }
}

#[test]
fn abuse_runs_flooders_of_every_kind_apart_from_the_bystanders() {
    let plan = Plan::of(Scenario::Abuse, false);
    let addr: SocketAddr = "127.0.0.1:9000".parse().expect("address");
    let flag = |args: &[String], name: &str| {
        let at = args.iter().position(|arg| arg == name).expect(name);
        args[at + 1].clone()
    };
    let flooders = plan.flooder_args(addr);
    assert_eq!(flag(&flooders, "--connections"), "80");
    let kinds = flag(&flooders, "--kind");
    for kind in FLOODS {
        assert!(kinds.contains(&format!("{kind}=1")), "{kinds}");
    }
    assert_eq!(flag(&flooders, "--first-source"), "10");
    let bystanders = plan.loadgen_args(addr);
    assert_eq!(flag(&bystanders, "--kind"), "healthy=10000");
    assert_eq!(flag(&bystanders, "--probe-rtt-every"), "1");
    // Rooms of 100, the same rooms in both processes.
    assert_eq!(flag(&bystanders, "--channels"), "100");
    assert_eq!(flag(&flooders, "--channels"), "100");
    assert_eq!(
        flag(&bystanders, "--abuse-at-ms"),
        flag(&flooders, "--abuse-at-ms")
    );
}

#[test]
fn the_bound_is_the_heartbeat_promise_plus_slack() {
    let plan = Plan::of(Scenario::Detect, false);
    // 5 s × 1.1 + 10 s + 1 s.
    assert_eq!(plan.bound(), Duration::from_millis(16_500));
    let quick = Plan::of(Scenario::Detect, true);
    assert_eq!(quick.bound(), Duration::from_millis(3_100));
}

#[test]
fn the_starve_stop_outlasts_the_whole_heartbeat() {
    let plan = Plan::of(Scenario::Starve, true);
    let (_, length) = plan.stop.expect("starve stops the server");
    assert!(length > plan.interval + plan.timeout);
}

#[test]
fn bigroom_restarts_then_churns_within_the_hold() {
    for quick in [true, false] {
        let plan = Plan::of(Scenario::Bigroom, quick);
        let timeline = plan.room_timeline();
        assert_eq!(plan.restart_after, Some(timeline.storm_at), "{plan:?}");
        assert!(plan.ramp() < timeline.storm_at && timeline.storm_at < timeline.churn_at);
        // The loadgen holds (after its ramp) through the churn and the settle.
        assert_eq!(
            plan.ramp() + plan.hold,
            timeline.churn_at + timeline.churn + timeline.settle
        );
        let args = plan.loadgen_args("127.0.0.1:9000".parse().expect("address"));
        // Each phase ends just before its disturbance.
        let [ramp_end, storm_end] = plan.room_marks();
        assert!(ramp_end < timeline.storm_at && timeline.storm_at < storm_end);
        assert!(storm_end < timeline.churn_at);
        assert!(timeline.storm_at + plan.storm_patience() < storm_end);
        let marks = format!("{},{}", ramp_end.as_millis(), storm_end.as_millis());
        assert!(
            args.windows(2)
                .any(|pair| pair == ["--view-phases-ms", marks.as_str()])
        );
        assert!(
            !args.contains(&"--page-every".to_owned()),
            "counts: nobody pages"
        );
        let members = Plan {
            room: Some(RoomMode::CappedMembers),
            ..plan
        };
        assert!(
            members
                .loadgen_args("127.0.0.1:9000".parse().expect("address"))
                .contains(&"--page-every".to_owned())
        );
        assert_eq!(members.file_stem(), "bigroom-members");
    }
    assert_eq!(
        RoomMode::CappedMembers.config(false),
        "[[namespace]]\nchannels = \"bigroom\"\npresence = \"members\"\npresence_cap = 1000\n"
    );
}

#[test]
fn recover_drops_then_kills_within_the_hold_with_a_publisher_per_room() {
    for quick in [true, false] {
        let plan = Plan::of(Scenario::Recover, quick);
        let timeline = plan.recover_timeline();
        assert!(plan.ramp() < timeline.drop_at && timeline.drop_at < timeline.kill_at);
        assert_eq!(plan.restart_after, Some(timeline.kill_at));
        assert_eq!(plan.ramp() + plan.hold, timeline.end);
        assert!(timeline.kill_at + plan.storm_patience() < timeline.end);
        let args = plan.loadgen_args("127.0.0.1:9000".parse().expect("address"));
        let flag = |name: &str| {
            let at = args.iter().position(|arg| arg == name).expect(name);
            args[at + 1].clone()
        };
        // One room per publisher; the publish flags of `publish` are not added.
        assert_eq!(flag("--channels"), plan.publishers.to_string());
        assert_eq!(args.iter().filter(|arg| *arg == "--join").count(), 1);
        assert_eq!(flag("--offsets"), "track");
        assert_eq!(
            flag("--drop-at-ms"),
            timeline.drop_at.as_millis().to_string()
        );
        let on = Plan {
            history: Some(true),
            ..plan.clone()
        };
        assert!(on.recover_config().contains("history_size"));
        assert_eq!(on.file_stem(), "recover-history");
        let off = Plan {
            history: Some(false),
            ..plan
        };
        assert_eq!(off.recover_config(), "");
        assert_eq!(off.file_stem(), "recover-no-history");
    }
}
