//! Healthy clients kept connected while a test's misbehaving client does
//! its worst: afterwards each must still be connected, must have kept
//! answering the server's pings, and must see every other bystander in
//! its channel's presence.

use crate::WsClient;
use serde_json::Value;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// A group of well-behaved clients, all joined to one channel.
#[derive(Debug)]
pub struct Bystanders {
    clients: Vec<WsClient>,
    users: BTreeSet<String>,
    channel: String,
    /// Channel messages (`"type":"message"`) received while listening.
    messages: Vec<Value>,
}

impl Bystanders {
    /// `count` anonymous clients on `addr`, each joined to `channel`.
    #[track_caller]
    pub fn join(addr: SocketAddr, count: usize, channel: &str) -> Self {
        Self::join_with(count, channel, || WsClient::connect(addr))
    }

    /// `count` clients made by `connect` (for tokens, PROXY headers...),
    /// each joined to `channel`.
    #[track_caller]
    pub fn join_with(count: usize, channel: &str, mut connect: impl FnMut() -> WsClient) -> Self {
        let mut clients = Vec::with_capacity(count);
        let mut users = BTreeSet::new();
        for index in 0..count {
            let mut client = connect();
            let welcome = client.next_of("welcome");
            users.insert(welcome["user"].as_str().expect("a user id").to_owned());
            client.send_json(&format!(
                r#"{{"op":"join","channel":"{channel}","id":"bystander-{index}"}}"#
            ));
            let reply = client.next_of("reply");
            assert!(reply["presence"].is_object(), "join refused: {reply}");
            clients.push(client);
        }
        Self {
            clients,
            users,
            channel: channel.to_owned(),
            messages: Vec::new(),
        }
    }

    /// Reads what every bystander receives (answering pings) for `window`,
    /// a slice at a time, keeping the channel messages. A bystander the
    /// server closed fails the next [`Bystanders::assert_healthy`].
    pub fn listen(&mut self, window: Duration) {
        let deadline = Instant::now() + window;
        // Short, so that a sweep over 50 bystanders answers every ping in
        // a fraction of the shortest heartbeat timeout.
        let slice = Duration::from_millis(2);
        while Instant::now() < deadline {
            for client in &mut self.clients {
                while let Some(event) = client.try_next_json_within(slice) {
                    if event["type"] == "message" {
                        self.messages.push(event);
                    }
                }
            }
        }
    }

    /// The channel messages received while listening.
    pub fn messages(&self) -> &[Value] {
        &self.messages
    }

    /// Sends every bystander a `ping` request at once and reads them all
    /// (answering the server's pings meanwhile) until each has its answer:
    /// the slowest round trip. Panics if one goes unanswered for 10 s.
    #[track_caller]
    pub fn slowest_round_trip(&mut self) -> Duration {
        let asked = Instant::now();
        for (index, client) in self.clients.iter_mut().enumerate() {
            client.send_json(&format!(r#"{{"op":"ping","id":"probe-{index}"}}"#));
        }
        let mut answered: Vec<Option<Duration>> = vec![None; self.clients.len()];
        let slice = Duration::from_millis(2);
        while answered.iter().any(Option::is_none) {
            assert!(
                asked.elapsed() < Duration::from_secs(10),
                "bystanders {:?} got no answer to a ping request in 10 s",
                answered
                    .iter()
                    .enumerate()
                    .filter(|(_, rtt)| rtt.is_none())
                    .map(|(index, _)| index)
                    .collect::<Vec<_>>()
            );
            for (index, client) in self.clients.iter_mut().enumerate() {
                while let Some(event) = client.try_next_json_within(slice) {
                    if event["id"] == format!("probe-{index}") {
                        answered[index] = Some(asked.elapsed());
                    } else if event["type"] == "message" {
                        self.messages.push(event);
                    }
                }
            }
        }
        answered.into_iter().flatten().max().unwrap_or_default()
    }

    /// Each bystander is connected, has answered at least `min_pings` of
    /// the server's pings, gets a prompt answer to a `ping` request (under
    /// `max_round_trip`), and sees exactly the bystanders (and `others`)
    /// in its channel.
    #[track_caller]
    pub fn assert_healthy(&mut self, min_pings: u32, max_round_trip: Duration, others: &[&str]) {
        let expected: BTreeSet<String> = self
            .users
            .iter()
            .cloned()
            .chain(others.iter().map(|user| (*user).to_owned()))
            .collect();
        for (index, client) in self.clients.iter_mut().enumerate() {
            assert!(
                client.pings_answered() >= min_pings,
                "bystander {index} answered {} pings, expected at least {min_pings}",
                client.pings_answered()
            );
            let asked = Instant::now();
            client.send_json(&format!(r#"{{"op":"ping","id":"health-{index}"}}"#));
            let reply = reply_to(client, &format!("health-{index}"), max_round_trip * 4)
                .unwrap_or_else(|| panic!("bystander {index} got no answer to a ping request"));
            let round_trip = asked.elapsed();
            assert!(
                round_trip < max_round_trip,
                "bystander {index}: a ping request took {round_trip:?} ({reply})"
            );
            client.send_json(&format!(
                r#"{{"op":"presence","channel":"{}","id":"who-{index}"}}"#,
                self.channel
            ));
            let reply = reply_to(client, &format!("who-{index}"), Duration::from_secs(5))
                .unwrap_or_else(|| panic!("bystander {index} got no presence answer"));
            let seen: BTreeSet<String> = reply["presence"]["members"]
                .as_array()
                .unwrap_or_else(|| panic!("no members in {reply}"))
                .iter()
                .filter_map(|member| member["user"].as_str().map(str::to_owned))
                .collect();
            assert_eq!(
                seen, expected,
                "bystander {index}'s view of {}",
                self.channel
            );
        }
    }

    /// The bystanders' user ids.
    pub fn users(&self) -> impl Iterator<Item = &str> {
        self.users.iter().map(String::as_str)
    }
}

/// The reply with `id`, skipping other messages, within `timeout`.
fn reply_to(client: &mut WsClient, id: &str, timeout: Duration) -> Option<Value> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        let message = client.try_next_json_within(left)?;
        if message["id"] == id {
            return Some(message);
        }
    }
}
