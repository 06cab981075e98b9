//! Properties of the heartbeat machine between two simulated peers.

use crate::origin;
use crate::simulator::{Behaviour, Link, Outcome, Simulation};
use std::time::Duration;
use vigil_core::heartbeat::{Config, EndReason};

const MS: Duration = Duration::from_millis(1);
const SECOND: Duration = Duration::from_secs(1);

fn idle() -> Behaviour {
    Behaviour::Healthy { data_every: None }
}

fn lossy() -> Link {
    Link {
        latency: 40 * MS,
        jitter: 300 * MS,
        loss: 0.05,
    }
}

fn run(seed: u64, link: Link, peers: [(&Config, Behaviour); 2], for_: Duration) -> [Outcome; 2] {
    Simulation::new(origin(), seed, [link, link], peers).run_for(for_)
}

#[test]
fn a_silent_peer_is_declared_dead_within_the_bound_for_any_seed() {
    let config = Config::default();
    let bound = config.detection_bound();
    for seed in 0..200 {
        let silent_at = Duration::from_millis(5_000 + seed * 997 % 60_000);
        let [watcher, _] = run(
            seed,
            lossy(),
            [
                (&config, idle()),
                (&config, Behaviour::SilentFrom { at: silent_at }),
            ],
            600 * SECOND,
        );
        let (died_at, reason) = watcher
            .ended
            .expect("the silent peer must be declared dead");
        assert_eq!(reason, EndReason::HeartbeatTimeout, "seed {seed}");
        assert!(
            died_at - watcher.last_seen <= bound,
            "seed {seed}: dead {:?} after the last frame, bound {bound:?}",
            died_at - watcher.last_seen
        );
        // The last frame left the peer before it went silent and crossed the link.
        let worst_transit = lossy().worst_delay();
        assert!(
            died_at <= silent_at + worst_transit + bound,
            "seed {seed}: dead at {died_at:?}, silent at {silent_at:?}, last seen {:?}",
            watcher.last_seen
        );
    }
}

#[test]
fn idle_and_talking_peers_are_never_declared_dead_on_a_lossy_reordering_link() {
    let config = Config::default();
    for seed in 0..100 {
        let chatty = Behaviour::Healthy {
            data_every: Some(Duration::from_millis(700 + seed * 13)),
        };
        let [a, b] = run(
            seed,
            lossy(),
            [(&config, idle()), (&config, chatty)],
            3_600 * SECOND,
        );
        assert!(
            a.ended.is_none(),
            "seed {seed}: idle peer ended: {:?}",
            a.ended
        );
        assert!(
            b.ended.is_none(),
            "seed {seed}: talking peer ended: {:?}",
            b.ended
        );
        // The talking peer keeps the idle one from ever needing to ping it...
        assert_eq!(a.pings_sent, 0, "seed {seed}");
        // ...while the idle one gets pinged and its pongs keep it alive.
        assert!(b.pings_sent > 100, "seed {seed}: {} pings", b.pings_sent);
    }
}

#[test]
fn two_idle_peers_keep_each_other_alive_with_pings_alone() {
    let config = Config::default();
    for seed in 0..50 {
        let [a, b] = run(
            seed,
            lossy(),
            [(&config, idle()), (&config, idle())],
            3_600 * SECOND,
        );
        assert!(
            a.ended.is_none() && b.ended.is_none(),
            "seed {seed}: {a:?} {b:?}"
        );
    }
}

#[test]
fn rtt_estimates_converge_to_the_simulated_round_trip() {
    let config = Config::default();
    for one_way_ms in [1u64, 25, 80, 400] {
        let one_way = Duration::from_millis(one_way_ms);
        let [a, _] = run(
            7,
            Link::steady(one_way),
            [(&config, idle()), (&config, idle())],
            1_800 * SECOND,
        );
        assert_eq!(a.srtt, Some(2 * one_way), "{one_way:?} each way");
        assert_eq!(a.min_rtt, Some(2 * one_way));
    }
    // With jitter the estimate stays inside the range of true round trips.
    let link = Link {
        latency: 30 * MS,
        jitter: 20 * MS,
        loss: 0.0,
    };
    let [a, _] = run(
        11,
        link,
        [(&config, idle()), (&config, idle())],
        3_600 * SECOND,
    );
    let srtt = a.srtt.expect("sampled");
    assert!((60 * MS..=100 * MS).contains(&srtt), "srtt {srtt:?}");
    assert!(a.min_rtt.expect("sampled") >= 60 * MS);
}

#[test]
fn a_peer_that_only_trickles_bytes_is_declared_dead() {
    let config = Config::default();
    // One byte every 200 ms of 1000-byte frames: a frame every 200 s, bytes
    // flowing all the time, never a complete frame inside the bound.
    let trickler = Behaviour::Trickle {
        byte_every: 200 * MS,
        frame_len: 1_000,
    };
    let [watcher, _] = run(
        3,
        Link::steady(10 * MS),
        [(&config, idle()), (&config, trickler)],
        600 * SECOND,
    );
    let (died_at, reason) = watcher.ended.expect("a trickler must not look alive");
    assert_eq!(reason, EndReason::HeartbeatTimeout);
    assert!(died_at <= config.detection_bound());
    // Control: the same trickle of 10-byte frames completes one every 2 s.
    let small_frames = Behaviour::Trickle {
        byte_every: 200 * MS,
        frame_len: 10,
    };
    let [watcher, _] = run(
        3,
        Link::steady(10 * MS),
        [(&config, idle()), (&config, small_frames)],
        600 * SECOND,
    );
    assert!(watcher.ended.is_none(), "{:?}", watcher.ended);
}

#[test]
fn a_client_detects_a_dead_server_with_its_own_heartbeat() {
    // Peer 0 is a server pinging every 20 s; peer 1 a client with its own
    // 30 s interval. The server dies at 100 s: the client notices by itself.
    let server = Config::default();
    let client = Config::builder()
        .interval(30 * SECOND)
        .timeout(15 * SECOND)
        .build()
        .expect("valid");
    let [_, client_side] = run(
        5,
        Link::steady(20 * MS),
        [
            (&server, Behaviour::SilentFrom { at: 100 * SECOND }),
            (&client, idle()),
        ],
        600 * SECOND,
    );
    let (died_at, reason) = client_side
        .ended
        .expect("the client must detect the dead server");
    assert_eq!(reason, EndReason::HeartbeatTimeout);
    assert!(died_at - client_side.last_seen <= client.detection_bound());
    assert!(client_side.pings_sent >= 1);
}
