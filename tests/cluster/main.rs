//! Several real `vigil` nodes on a real `redis-server` (`--cluster`): what
//! a client of one node sees of the users and messages of the others, when
//! a node dies, and when Redis goes away and comes back.
//!
//! Nodes run with a 2 s node timeout (heartbeat every 0.5 s) and a 1 s
//! leave grace, so a dead node's users must be gone within about 3.5 s;
//! the tests allow 10 s. Users are named by tokens signed with a shared
//! secret, so that one user can be on several nodes.

use std::collections::BTreeSet;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use vigil_e2e::{RedisProcess, ServerProcess, WsClient, http_get};

const SECRET: &str = "cluster-e2e-secret";
/// Generous: the promise is node timeout + a quarter of it + leave grace.
const BOUND: Duration = Duration::from_secs(10);

fn node(redis: &RedisProcess) -> ServerProcess {
    node_with_grace(redis, "1s")
}

fn node_with_grace(redis: &RedisProcess, leave_grace: &str) -> ServerProcess {
    node_with(redis, leave_grace, "2s")
}

fn node_with(redis: &RedisProcess, leave_grace: &str, node_timeout: &str) -> ServerProcess {
    ServerProcess::start(&[
        "--listen",
        "127.0.0.1:0",
        "--cluster",
        &redis.url(),
        "--cluster-node-timeout",
        node_timeout,
        "--leave-grace",
        leave_grace,
        "--jwt-secret",
        SECRET,
    ])
}

fn token(user: &str) -> String {
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
        + 3600;
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &serde_json::json!({"sub": user, "exp": exp}),
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .expect("encodes")
}

/// `user` connected to `node`, welcomed, and a member of `channel`.
fn member(node: &ServerProcess, user: &str, channel: &str) -> WsClient {
    let mut client = WsClient::try_connect(node.addr(), &format!("/ws?token={}", token(user)), &[])
        .unwrap_or_else(|refusal| panic!("not upgraded: {refusal}"));
    assert_eq!(client.next_of("welcome")["user"], user);
    client.send_json(&format!(
        r#"{{"op":"join","channel":"{channel}","meta":{{"name":"{user}"}},"id":"j"}}"#
    ));
    assert_eq!(client.next_of("reply")["id"], "j");
    client
}

/// The users `client`'s node shows in `channel`, asked with the presence op.
fn users(client: &mut WsClient, channel: &str) -> BTreeSet<String> {
    client.send_json(&format!(
        r#"{{"op":"presence","channel":"{channel}","id":"p"}}"#
    ));
    let reply = loop {
        let reply = client.next_of("reply");
        if reply["id"] == "p" {
            break reply;
        }
    };
    let members = reply["presence"]["members"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    members
        .iter()
        .filter_map(|member| member["user"].as_str().map(str::to_owned))
        .collect()
}

/// Polls `users` until it equals `expected`; panics with what it last saw.
#[track_caller]
fn wait_for_users(client: &mut WsClient, channel: &str, expected: &[&str], within: Duration) {
    let expected: BTreeSet<String> = expected.iter().map(|user| (*user).to_owned()).collect();
    let deadline = Instant::now() + within;
    loop {
        let seen = users(client, channel);
        if seen == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "after {within:?}: {seen:?}, expected {expected:?}"
        );
        thread::sleep(Duration::from_millis(100));
    }
}

/// Every `presence` diff `client` receives within `window`, other messages
/// skipped.
fn diffs_within(client: &mut WsClient, window: Duration) -> Vec<Value> {
    let deadline = Instant::now() + window;
    let mut diffs = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match client.try_next_json_within(left) {
            Some(message) if message["type"] == "presence" => diffs.push(message),
            Some(_) => {}
            None => break,
        }
    }
    diffs
}

/// Panics if one of `diffs` lists one of `users` on `side` (`joins` or
/// `leaves`).
#[track_caller]
fn assert_none_in(diffs: &[Value], side: &str, users: &[&str]) {
    for diff in diffs {
        let listed = names(diff, side);
        assert!(
            !users
                .iter()
                .any(|user| listed.iter().any(|name| name == user)),
            "one of {users:?} in {side}: {diffs:?}"
        );
    }
}

fn names(diff: &Value, side: &str) -> Vec<String> {
    diff[side]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|entry| {
            entry["user"]
                .as_str()
                .or_else(|| entry.as_str())
                .map(str::to_owned)
        })
        .collect()
}

#[test]
fn users_and_messages_of_one_node_reach_the_others_exactly_once() {
    let redis = RedisProcess::start();
    let (a, b) = (node(&redis), node(&redis));
    let mut ann = member(&a, "ann", "room");
    let mut bob = member(&b, "bob", "room");
    wait_for_users(&mut bob, "room", &["ann", "bob"], BOUND);
    wait_for_users(&mut ann, "room", &["ann", "bob"], BOUND);
    // Meta travels with the member.
    bob.send_json(r#"{"op":"presence","channel":"room","id":"m"}"#);
    let reply = bob.next_of("reply");
    let ann_entry = reply["presence"]["members"]
        .as_array()
        .and_then(|members| members.iter().find(|m| m["user"] == "ann").cloned())
        .expect("ann listed");
    assert_eq!(ann_entry["meta"]["name"], "ann");

    publish_and_read_once(&mut bob, &mut ann, "from b");
    publish_and_read_once(&mut ann, &mut bob, "from a");
}

/// `publisher` publishes `text` to `room`: it (a member too) and `reader`
/// get it once each, and no second copy in the next second.
#[track_caller]
fn publish_and_read_once(publisher: &mut WsClient, reader: &mut WsClient, text: &str) {
    publisher.send_json(&format!(
        r#"{{"op":"publish","channel":"room","data":{{"text":"{text}"}},"id":"pub"}}"#
    ));
    for client in [&mut *publisher, &mut *reader] {
        assert_eq!(client.next_of("message")["data"]["text"], text);
    }
    let deadline = Instant::now() + Duration::from_secs(1);
    for client in [publisher, reader] {
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            let Some(next) = client.try_next_json_within(left) else {
                break;
            };
            assert_ne!(next["type"], "message", "a second delivery: {next}");
        }
    }
}

#[test]
fn three_nodes_see_one_node_s_changes_in_order() {
    let redis = RedisProcess::start();
    let (a, _b, c) = (node(&redis), node(&redis), node(&redis));
    let mut watcher = member(&c, "watcher", "room");
    let mut ann = member(&a, "ann", "room");
    wait_for_users(&mut watcher, "room", &["ann", "watcher"], BOUND);
    // Leave and join again five times; each change waits for the hub's
    // merge window so every one is its own diff.
    for round in 0..5 {
        ann.send_json(r#"{"op":"leave","channel":"room","id":"l"}"#);
        thread::sleep(Duration::from_millis(150));
        ann.send_json(&format!(
            r#"{{"op":"join","channel":"room","meta":{{"round":{round}}},"id":"j"}}"#
        ));
        thread::sleep(Duration::from_millis(150));
    }
    let diffs = diffs_within(&mut watcher, Duration::from_secs(3));
    // Her joins reach c in the order she made them (a merge window may
    // fold a leave into the join after it, never reorder them).
    let rounds: Vec<u64> = diffs
        .iter()
        .filter_map(|diff| {
            diff["joins"]
                .as_array()?
                .iter()
                .find(|member| member["user"] == "ann")?["meta"]["round"]
                .as_u64()
        })
        .collect();
    assert!(
        rounds.windows(2).all(|pair| pair[0] < pair[1]) && rounds.last() == Some(&4),
        "ann's joins as c saw them: {rounds:?}"
    );
    wait_for_users(&mut watcher, "room", &["ann", "watcher"], BOUND);
}

#[test]
fn a_killed_node_s_users_leave_everywhere_and_do_not_come_back() {
    let redis = RedisProcess::start();
    let mut a = node(&redis);
    let b = node(&redis);
    let _ann = member(&a, "ann", "room");
    let _cid = member(&a, "cid", "room");
    let mut watcher = member(&b, "watcher", "room");
    wait_for_users(&mut watcher, "room", &["ann", "cid", "watcher"], BOUND);
    diffs_within(&mut watcher, Duration::from_millis(300));
    let killed = Instant::now();
    a.kill();
    // It comes back at once (a new process, a new port), before the old
    // one is found dead: its previous life must still be buried.
    let a_again = node(&redis);
    let mut dave = member(&a_again, "dave", "room");
    let mut left = BTreeSet::new();
    while left.len() < 2 {
        assert!(killed.elapsed() < BOUND, "left so far: {left:?}");
        for diff in diffs_within(&mut watcher, Duration::from_millis(200)) {
            left.extend(names(&diff, "leaves"));
        }
    }
    assert_eq!(left, BTreeSet::from(["ann".to_owned(), "cid".to_owned()]));
    wait_for_users(&mut dave, "room", &["dave", "watcher"], BOUND);
    thread::sleep(Duration::from_secs(3));
    assert_eq!(
        users(&mut watcher, "room"),
        BTreeSet::from(["dave".to_owned(), "watcher".to_owned()])
    );
}

#[test]
fn without_redis_nodes_serve_alone_and_converge_when_it_returns() {
    let mut redis = RedisProcess::start();
    let (a, b) = (node(&redis), node(&redis));
    let ann = member(&a, "ann", "room");
    let mut bob = member(&b, "bob", "room");
    wait_for_users(&mut bob, "room", &["ann", "bob"], BOUND);

    // Gone for longer than the node timeout (2 s), and every key with it.
    redis.stop();
    thread::sleep(Duration::from_secs(1));
    let readyz = http_get(a.addr(), "/readyz");
    assert!(
        readyz.starts_with("HTTP/1.1 200") && readyz.contains("degraded"),
        "{readyz}"
    );
    // Meanwhile: ann leaves node a, dave joins it; b's own users still work.
    drop(ann);
    let mut dave = member(&a, "dave", "room");
    let _eve = member(&b, "eve", "room");
    thread::sleep(Duration::from_secs(3));
    assert!(
        users(&mut dave, "room").contains("dave"),
        "local presence works"
    );

    redis.restart();
    // While the nodes find each other again, nobody who stayed leaves.
    let seen = diffs_within(&mut bob, Duration::from_secs(8));
    assert_none_in(&seen, "leaves", &["bob", "dave", "eve"]);
    // The truth: ann gone, bob and eve on b, dave on a.
    wait_for_users(&mut bob, "room", &["bob", "dave", "eve"], BOUND);
    wait_for_users(&mut dave, "room", &["bob", "dave", "eve"], BOUND);
    let readyz = http_get(a.addr(), "/readyz");
    assert!(readyz.contains("ready"), "{readyz}");
    let metrics = http_get(a.addr(), "/metrics");
    assert!(metrics.contains("vigil_cluster_up 1"), "{metrics}");
}

#[test]
fn a_user_who_moves_to_another_node_within_the_grace_never_leaves() {
    let redis = RedisProcess::start();
    // A grace of 4 s: room for her new handshake, join and its trip
    // through Redis on a loaded machine.
    let (a, b, c) = (
        node_with_grace(&redis, "4s"),
        node_with_grace(&redis, "4s"),
        node_with_grace(&redis, "4s"),
    );
    let mut watcher = member(&c, "watcher", "room");
    let ann = member(&a, "ann", "room");
    wait_for_users(&mut watcher, "room", &["ann", "watcher"], BOUND);
    diffs_within(&mut watcher, Duration::from_millis(300));
    // Her connection to a ends (a reload, a network switch) and she is
    // back at once, through the load balancer, on b.
    drop(ann);
    let _ann_again = member(&b, "ann", "room");
    let seen = diffs_within(&mut watcher, Duration::from_secs(6));
    assert_none_in(&seen, "leaves", &["ann"]);
    assert_eq!(
        users(&mut watcher, "room"),
        BTreeSet::from(["ann".to_owned(), "watcher".to_owned()])
    );
}

#[test]
fn a_live_node_whose_state_redis_lost_writes_it_again_and_nobody_leaves() {
    let redis = RedisProcess::start();
    let (a, b) = (node_with_grace(&redis, "3s"), node_with_grace(&redis, "3s"));
    let _ann = member(&a, "ann", "room");
    let mut watcher = member(&b, "watcher", "room");
    wait_for_users(&mut watcher, "room", &["ann", "watcher"], BOUND);
    // Past b's wait after connecting, so that it judges: a is missing from
    // the set at once, and a must notice and write itself again in time.
    thread::sleep(Duration::from_secs(8));
    diffs_within(&mut watcher, Duration::from_millis(200));
    assert_eq!(redis.command(&["FLUSHALL"]).as_deref(), Some("+OK"));
    let seen = diffs_within(&mut watcher, Duration::from_secs(6));
    assert_none_in(&seen, "leaves", &["ann"]);
    assert_eq!(
        users(&mut watcher, "room"),
        BTreeSet::from(["ann".to_owned(), "watcher".to_owned()])
    );
    // What Redis holds is whole again: a node that starts now sees her.
    let c = node_with_grace(&redis, "3s");
    let mut late = member(&c, "late", "room");
    wait_for_users(&mut late, "room", &["ann", "late", "watcher"], BOUND);
}

#[test]
fn a_redis_restored_from_an_old_snapshot_brings_no_one_back() {
    let mut redis = RedisProcess::start_persistent();
    // A node timeout long enough that the snapshot's heartbeats still look
    // fresh when Redis comes back with them.
    let (a, b) = (
        node_with(&redis, "1s", "10s"),
        node_with(&redis, "1s", "10s"),
    );
    let ann = member(&a, "ann", "room");
    let mut watcher = member(&b, "watcher", "room");
    wait_for_users(&mut watcher, "room", &["ann", "watcher"], BOUND);
    // The snapshot has ann in a's state; then she leaves.
    assert_eq!(redis.command(&["SAVE"]).as_deref(), Some("+OK"));
    drop(ann);
    wait_for_users(&mut watcher, "room", &["watcher"], BOUND);
    diffs_within(&mut watcher, Duration::from_millis(300));
    // Redis restarts from that snapshot while a is frozen, so b finds a's
    // old state there, with a recent heartbeat, before a can rewrite it.
    signal(&a, "STOP");
    redis.restart();
    let seen = diffs_within(&mut watcher, Duration::from_secs(4));
    signal(&a, "CONT");
    let seen_after = diffs_within(&mut watcher, Duration::from_secs(3));
    assert_none_in(&seen, "joins", &["ann"]);
    assert_none_in(&seen_after, "joins", &["ann"]);
    wait_for_users(&mut watcher, "room", &["watcher"], BOUND);
}

/// `kill -SIGNAL` to a node (STOP, CONT).
fn signal(node: &ServerProcess, signal: &str) {
    let status = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(node.pid().to_string())
        .status()
        .expect("kill(1) runs");
    assert!(status.success(), "kill -{signal}");
}

#[test]
fn a_remote_leave_is_announced_after_the_grace_even_when_all_else_is_quiet() {
    let redis = RedisProcess::start();
    let (a, b) = (node(&redis), node(&redis));
    let ann = member(&a, "ann", "room");
    let mut watcher = member(&b, "watcher", "room");
    wait_for_users(&mut watcher, "room", &["ann", "watcher"], BOUND);
    // Nothing happens for a while: no diff, no timer due on b.
    thread::sleep(Duration::from_secs(3));
    drop(ann);
    // Her leave waits out b's grace (1 s), and nothing else wakes b.
    let deadline = Instant::now() + BOUND;
    loop {
        let seen = diffs_within(&mut watcher, Duration::from_millis(500));
        if seen
            .iter()
            .any(|diff| names(diff, "leaves").contains(&"ann".to_owned()))
        {
            break;
        }
        assert!(Instant::now() < deadline, "ann's leave never came");
    }
}
