//! The task between this node and Redis: connect (again and again, with
//! backoff), rewrite this node's members, load every other node's, then
//! write each change and message the hub queues, apply what the others
//! publish, heartbeat, and bury nodes that stopped heartbeating.
//!
//! Time is Redis's own (`TIME`), so nodes on machines whose clocks
//! disagree still agree on who is dead. A node that was cut off from Redis
//! judges no one for one node timeout after it is back: the others may have
//! been cut off too and need that long to heartbeat again.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, RedisResult};
use tokio::sync::mpsc;
use vigil_core::backoff::{Backoff, BackoffConfig};

use super::wire::{self, Envelope, Keys, SEQ_FIELD};
use super::{Change, Outgoing, Status};
use crate::hub::{Hub, RemoteMember};

/// The key prefix: `vigil:nodes`, `vigil:node:<id>`, `vigil:bus`.
const PREFIX: &str = "vigil";
/// Connect and command deadline: a Redis slower than this counts as down.
const REDIS_TIMEOUT: Duration = Duration::from_secs(5);
/// Changes written to Redis in one MULTI, at most.
const BATCH: usize = 512;
/// While Redis stays down, a reminder in the log this often.
const DOWN_LOG_EVERY: Duration = Duration::from_secs(30);

/// Heartbeats this node (the Redis time, ms, as its score) and keeps its
/// hash alive for two node timeouts; returns the Redis time.
const HEARTBEAT_SCRIPT: &str = "\
local t = redis.call('TIME')
local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], ms, ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return ms";

/// Starts the link for node `id` of the cluster at `url` on the current
/// tokio runtime; it runs until the runtime ends.
pub(crate) fn start(
    url: &str,
    id: String,
    node_timeout: Duration,
    hub: Arc<Hub>,
    receiver: mpsc::Receiver<Outgoing>,
    status: Arc<Status>,
) -> RedisResult<()> {
    let client = redis::Client::open(url)?;
    let link = Link {
        client,
        keys: Keys::new(PREFIX),
        id,
        node_timeout,
        hub,
        receiver,
        status,
        seq: 0,
        seen: HashMap::new(),
        heartbeat: redis::Script::new(HEARTBEAT_SCRIPT),
    };
    tokio::spawn(link.run(super::redacted(url)));
    Ok(())
}

struct Link {
    client: redis::Client,
    keys: Keys,
    id: String,
    node_timeout: Duration,
    hub: Arc<Hub>,
    receiver: mpsc::Receiver<Outgoing>,
    status: Arc<Status>,
    /// Changes of this node's members written so far.
    seq: u64,
    /// The other nodes this node holds members of, and the last change of
    /// each applied; `None` after a reconnect, until loaded again (changes
    /// may have been missed while this node was cut off).
    seen: HashMap<String, Option<u64>>,
    heartbeat: redis::Script,
}

impl Link {
    async fn run(mut self, shown_url: String) {
        let config = BackoffConfig::builder()
            .initial_max(Duration::from_millis(500))
            .base(Duration::from_millis(200))
            .cap(Duration::from_secs(5))
            .build()
            .expect("constant backoff settings are valid");
        let mut backoff = Backoff::new(seed(&self.id));
        let mut last_logged: Option<Instant> = None;
        let mut failures = 0u64;
        loop {
            let error = match self.session(&shown_url).await {
                Ok(()) => continue,
                Err(error) => error,
            };
            let was_up = self.status.is_up();
            self.status.set_up(false);
            backoff.handle_disconnected(Instant::now(), &config);
            failures += 1;
            let due = last_logged.is_none_or(|at| at.elapsed() >= DOWN_LOG_EVERY);
            if was_up || due {
                tracing::warn!(
                    cluster = %shown_url,
                    %error,
                    failed_attempts = failures,
                    "cluster: Redis unreachable; serving this node's connections and presence \
                     only, retrying"
                );
                last_logged = Some(Instant::now());
            }
            tokio::time::sleep(backoff.next_delay(&config)).await;
            if self.status.is_up() {
                backoff.handle_connected(Instant::now());
            }
        }
    }

    /// One connection to Redis, from the full sync to the first error.
    async fn session(&mut self, shown_url: &str) -> RedisResult<()> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT));
        let mut conn = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        let mut pubsub = within(self.client.get_async_pubsub()).await?;
        within(pubsub.subscribe(&self.keys.bus)).await?;
        let mut bus = pubsub.into_on_message();
        // Subscribed first: whatever is published from here on is seen, so
        // loading each node's hash after it misses nothing.
        self.rewrite(&mut conn).await?;
        self.beat(&mut conn).await?;
        self.status.set_up(true);
        tracing::info!(cluster = %shown_url, node = %self.id, "cluster: connected to Redis");
        for seq in self.seen.values_mut() {
            *seq = None;
        }
        let back_at = Instant::now();
        self.survey(&mut conn, false).await?;
        let mut tick = tokio::time::interval(self.node_timeout / 4);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                outgoing = self.receiver.recv() => {
                    let Some(first) = outgoing else {
                        // The hub is gone: the process is ending.
                        return std::future::pending().await;
                    };
                    self.write(&mut conn, first).await?;
                }
                message = bus.next() => {
                    let Some(message) = message else {
                        return Err(redis::RedisError::from((
                            redis::ErrorKind::Io,
                            "the subscription connection closed",
                        )));
                    };
                    self.status.received.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    self.receive(&mut conn, &message).await?;
                }
                _ = tick.tick() => {
                    self.beat(&mut conn).await?;
                    self.survey(&mut conn, back_at.elapsed() >= self.node_timeout).await?;
                }
            }
            if self
                .status
                .overflowed
                .swap(false, std::sync::atomic::Ordering::AcqRel)
            {
                self.rewrite(&mut conn).await?;
            }
        }
    }

    /// Writes `first` and whatever else is queued (up to [`BATCH`]) in one
    /// MULTI: each member change to this node's hash, its new `#seq`, and
    /// each change and message to the bus.
    async fn write(
        &mut self,
        conn: &mut MultiplexedConnection,
        first: Outgoing,
    ) -> RedisResult<()> {
        let hash = self.keys.node(&self.id);
        let mut pipe = redis::pipe();
        pipe.atomic();
        let mut next = Some(first);
        let mut count: u64 = 0;
        while let Some(outgoing) = next.take() {
            count += 1;
            let envelope = match outgoing {
                Outgoing::Presence {
                    channel,
                    user,
                    change,
                } => {
                    self.seq += 1;
                    let field = wire::member_field(&channel, &user);
                    match &change {
                        Change::Join { meta } => {
                            pipe.hset(&hash, field, wire::meta_value(meta.as_deref()))
                                .ignore();
                        }
                        Change::Leave { .. } => {
                            pipe.hdel(&hash, field).ignore();
                        }
                    }
                    Envelope::Presence {
                        node: self.id.clone(),
                        seq: self.seq,
                        channel: channel.to_string(),
                        user: user.to_string(),
                        change,
                    }
                }
                Outgoing::Message {
                    channel,
                    from,
                    data,
                    will,
                } => Envelope::Message {
                    node: self.id.clone(),
                    channel,
                    from,
                    data,
                    will,
                },
            };
            pipe.publish(&self.keys.bus, encode(&envelope)?).ignore();
            if count < BATCH as u64 {
                next = self.receiver.try_recv().ok();
            }
        }
        pipe.hset(&hash, SEQ_FIELD, self.seq).ignore();
        let () = pipe.query_async(conn).await?;
        self.status
            .published
            .fetch_add(count, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// Rewrites this node's hash from the hub's members, dropping whatever
    /// the queue held (the members already reflect it), and tells the other
    /// nodes to load it again.
    async fn rewrite(&mut self, conn: &mut MultiplexedConnection) -> RedisResult<()> {
        let receiver = &mut self.receiver;
        let members = self
            .hub
            .local_members(|| while receiver.try_recv().is_ok() {});
        self.seq += 1;
        let hash = self.keys.node(&self.id);
        let mut pipe = redis::pipe();
        pipe.atomic().del(&hash).ignore();
        for chunk in members.chunks(BATCH) {
            let fields: Vec<(String, &str)> = chunk
                .iter()
                .map(|(channel, user, meta)| {
                    (
                        wire::member_field(channel, user),
                        wire::meta_value(meta.as_deref()),
                    )
                })
                .collect();
            pipe.hset_multiple(&hash, &fields).ignore();
        }
        pipe.hset(&hash, SEQ_FIELD, self.seq).ignore();
        pipe.pexpire(&hash, self.hash_ttl_ms()).ignore();
        let reset = Envelope::Reset {
            node: self.id.clone(),
            seq: self.seq,
        };
        pipe.publish(&self.keys.bus, encode(&reset)?).ignore();
        pipe.query_async(conn).await
    }

    fn hash_ttl_ms(&self) -> i64 {
        i64::try_from(self.node_timeout.as_millis() * 2).unwrap_or(i64::MAX)
    }

    /// This node is alive, by Redis's clock; its hash lives on.
    async fn beat(&mut self, conn: &mut MultiplexedConnection) -> RedisResult<()> {
        let _now_ms: i64 = self
            .heartbeat
            .key(&self.keys.nodes)
            .key(self.keys.node(&self.id))
            .arg(&self.id)
            .arg(self.hash_ttl_ms())
            .invoke_async(conn)
            .await?;
        Ok(())
    }

    /// Reads the set of nodes: loads the ones not seen yet and, when
    /// `judge`, buries those whose last heartbeat is older than the node
    /// timeout (their members leave here; their keys are removed).
    async fn survey(&mut self, conn: &mut MultiplexedConnection, judge: bool) -> RedisResult<()> {
        let (now_ms, nodes): ((i64, i64), Vec<(String, i64)>) = redis::pipe()
            .cmd("TIME")
            .cmd("ZRANGE")
            .arg(&self.keys.nodes)
            .arg(0)
            .arg(-1)
            .arg("WITHSCORES")
            .query_async(conn)
            .await?;
        let now_ms = now_ms.0 * 1000 + now_ms.1 / 1000;
        let timeout_ms = i64::try_from(self.node_timeout.as_millis()).unwrap_or(i64::MAX);
        let mut alive = 0;
        for (node, beat_ms) in &nodes {
            if *node == self.id {
                continue;
            }
            if now_ms - beat_ms > timeout_ms {
                if judge {
                    self.bury(conn, node, now_ms - beat_ms).await?;
                }
                continue;
            }
            alive += 1;
            if self.seen.get(node).copied().flatten().is_none() {
                self.load(conn, node).await?;
            }
        }
        // Gone from the set (buried by another node, or lost with Redis and
        // not back within a node timeout): its members leave here too.
        if judge {
            let listed: std::collections::HashSet<&str> =
                nodes.iter().map(|(node, _)| node.as_str()).collect();
            let forgotten: Vec<String> = self
                .seen
                .keys()
                .filter(|node| !listed.contains(node.as_str()))
                .cloned()
                .collect();
            for node in forgotten {
                tracing::warn!(node, "cluster: node gone from the cluster; its users leave");
                self.seen.remove(&node);
                self.hub.drop_node(&node);
            }
        }
        self.status
            .nodes
            .store(alive, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    async fn bury(
        &mut self,
        conn: &mut MultiplexedConnection,
        node: &str,
        silent_ms: i64,
    ) -> RedisResult<()> {
        tracing::warn!(
            node,
            silent_ms,
            "cluster: node stopped heartbeating; its users leave"
        );
        self.seen.remove(node);
        self.hub.drop_node(node);
        let () = redis::pipe()
            .zrem(&self.keys.nodes, node)
            .ignore()
            .del(self.keys.node(node))
            .ignore()
            .query_async(conn)
            .await?;
        Ok(())
    }

    /// Loads `node`'s members whole and makes them its members here.
    async fn load(&mut self, conn: &mut MultiplexedConnection, node: &str) -> RedisResult<()> {
        let fields: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(self.keys.node(node))
            .query_async(conn)
            .await?;
        let seq = fields
            .get(SEQ_FIELD)
            .and_then(|seq| seq.parse().ok())
            .unwrap_or(0);
        let members: Vec<RemoteMember> = fields
            .iter()
            .filter_map(|(field, meta)| {
                let (channel, user) = wire::parse_member_field(field)?;
                Some((
                    channel.to_owned(),
                    user.to_owned(),
                    wire::parse_meta_value(meta),
                ))
            })
            .collect();
        self.hub.replace_node(node, &members);
        self.seen.insert(node.to_owned(), Some(seq));
        self.status
            .loads
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// One message from the bus.
    async fn receive(
        &mut self,
        conn: &mut MultiplexedConnection,
        message: &redis::Msg,
    ) -> RedisResult<()> {
        let payload: Vec<u8> = message.get_payload()?;
        let envelope: Envelope = match serde_json::from_slice(&payload) {
            Ok(envelope) => envelope,
            Err(error) => {
                tracing::warn!(%error, "cluster: ignored a bus message this version cannot read");
                return Ok(());
            }
        };
        if envelope.node() == self.id {
            return Ok(());
        }
        match envelope {
            Envelope::Presence {
                node,
                seq,
                channel,
                user,
                change,
            } => match self.seen.get(&node).copied().flatten() {
                Some(last) if seq <= last => {}
                Some(last) if seq == last + 1 => {
                    self.hub.apply_remote(&node, &channel, &user, &change);
                    self.seen.insert(node, Some(seq));
                }
                // A node not loaded yet, or a change missed: load it whole.
                _ => self.load(conn, &node).await?,
            },
            Envelope::Reset { node, seq } => {
                if self
                    .seen
                    .get(&node)
                    .copied()
                    .flatten()
                    .is_none_or(|last| last < seq)
                {
                    self.load(conn, &node).await?;
                }
            }
            Envelope::Message {
                channel,
                from,
                data,
                will,
                ..
            } => self
                .hub
                .deliver_remote(&channel, from.as_deref(), &data, will),
        }
        Ok(())
    }
}

/// `future` within [`REDIS_TIMEOUT`], as a Redis error when late.
async fn within<T>(future: impl std::future::Future<Output = RedisResult<T>>) -> RedisResult<T> {
    match tokio::time::timeout(REDIS_TIMEOUT, future).await {
        Ok(result) => result,
        Err(_) => Err(redis::RedisError::from((
            redis::ErrorKind::Io,
            "Redis did not answer in time",
        ))),
    }
}

fn encode(envelope: &Envelope) -> RedisResult<String> {
    serde_json::to_string(envelope).map_err(|error| {
        redis::RedisError::from((
            redis::ErrorKind::Client,
            "cannot encode a bus message",
            error.to_string(),
        ))
    })
}

/// A backoff seed from the node id (random per process).
fn seed(id: &str) -> u64 {
    id.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}
