//! The task between this node and Redis: connect (again and again, with
//! backoff), heartbeat and rewrite this node's members, load every other
//! node's, then write each change and message the hub queues, apply what
//! the others publish, heartbeat, and bury nodes that stopped heartbeating.
//!
//! Time is Redis's own (`TIME`), so nodes on machines whose clocks
//! disagree still agree on who is dead. A node that was cut off from Redis
//! judges no one until the others have had time to come back too. A node
//! that finds itself buried (or its hash gone: a flush, an eviction) while
//! alive writes its whole state again, so it never stays half-present.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering::{AcqRel, Relaxed};
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, PushInfo, PushKind, RedisResult};
use tokio::sync::{mpsc, oneshot};
use vigil_core::backoff::{Backoff, BackoffConfig};

use super::wire::{self, Envelope, Keys, RUN_FIELD, SEQ_FIELD};
use super::{Change, Outgoing, Status};
use crate::hub::{Hub, RemoteMember};

mod liveness;

/// The key prefix: `vigil:nodes`, `vigil:node:<id>`, `vigil:bus`.
const PREFIX: &str = "vigil";
/// Changes written to Redis in one MULTI, at most.
const BATCH: usize = 512;
/// While Redis stays down, a reminder in the log this often.
const DOWN_LOG_EVERY: Duration = Duration::from_secs(30);
/// The longest wait between two attempts to reach Redis.
const BACKOFF_CAP: Duration = Duration::from_secs(5);
/// Bus messages received and not yet applied, at most. A link that falls
/// this far behind drops its connection and loads every node again, which
/// costs a reload but never unbounded memory.
const BUS_BACKLOG: usize = 8_192;

/// Asks the link to leave the cluster at shutdown: write what is queued,
/// remove this node from Redis, then answer.
#[derive(Debug)]
pub(crate) struct Farewell(oneshot::Sender<oneshot::Sender<()>>);

impl Farewell {
    /// Leaves the cluster, waiting at most `deadline` (Redis may be gone).
    pub(crate) async fn leave(self, deadline: Duration) {
        let (done, answered) = oneshot::channel();
        if self.0.send(done).is_ok() {
            let _ = tokio::time::timeout(deadline, answered).await;
        }
    }
}

/// Starts the link for node `id` of the cluster at `url` on the current
/// tokio runtime; it runs until the runtime ends.
pub(crate) fn start(
    url: &str,
    id: String,
    node_timeout: Duration,
    hub: Arc<Hub>,
    receiver: mpsc::Receiver<Outgoing>,
    status: Arc<Status>,
) -> RedisResult<Farewell> {
    // RESP3: the bus arrives as push messages on the command connection,
    // into a queue this module bounds (`BUS_BACKLOG`).
    let info = redis::IntoConnectionInfo::into_connection_info(url)?;
    let resp3 = info
        .redis_settings()
        .clone()
        .set_protocol(redis::ProtocolVersion::RESP3);
    let client = redis::Client::open(info.set_redis_settings(resp3))?;
    let (farewell, asked) = oneshot::channel();
    let link = Link {
        client,
        keys: Keys::new(PREFIX),
        id,
        node_timeout,
        // A Redis slower than a heartbeat tick counts as down: this node
        // must never miss its own heartbeats waiting on one reply.
        redis_timeout: (node_timeout / 4).clamp(Duration::from_millis(250), BACKOFF_CAP),
        hub,
        receiver,
        status,
        seq: 0,
        seen: HashMap::new(),
        heartbeat: redis::Script::new(liveness::HEARTBEAT_SCRIPT),
        bury: redis::Script::new(liveness::BURY_SCRIPT),
        up_since: None,
        run_id: String::new(),
        farewell: asked,
    };
    tokio::spawn(link.run(super::redacted(url)));
    Ok(Farewell(farewell))
}

struct Link {
    client: redis::Client,
    keys: Keys,
    id: String,
    node_timeout: Duration,
    redis_timeout: Duration,
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
    bury: redis::Script,
    /// When the current session came up, for the backoff.
    up_since: Option<Instant>,
    /// The `run_id` of the Redis process of the current session.
    run_id: String,
    farewell: oneshot::Receiver<oneshot::Sender<()>>,
}

impl Link {
    async fn run(mut self, shown_url: String) {
        let config = BackoffConfig::builder()
            .initial_max(Duration::from_millis(500))
            .base(Duration::from_millis(200))
            .cap(BACKOFF_CAP)
            .build()
            .expect("constant backoff settings are valid");
        let mut backoff = Backoff::new(seed(&self.id));
        let mut last_logged: Option<Instant> = None;
        let mut failures = 0u64;
        loop {
            let error = match self.session(&shown_url).await {
                Ok(()) => return, // left the cluster: the process is ending
                Err(error) => error,
            };
            let was_up = self.status.is_up();
            self.status.set_up(false);
            if let Some(since) = self.up_since.take() {
                backoff.handle_connected(since);
            }
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
        }
    }

    /// One connection to Redis, from the full sync to the first error (or
    /// to the farewell: `Ok`).
    async fn session(&mut self, shown_url: &str) -> RedisResult<()> {
        let (pushed, mut bus) = mpsc::channel::<PushInfo>(BUS_BACKLOG);
        let behind = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let fell_behind = Arc::clone(&behind);
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.redis_timeout))
            .set_response_timeout(Some(self.redis_timeout))
            .set_push_sender(move |push: PushInfo| {
                pushed.try_send(push).map_err(|_| {
                    fell_behind.store(true, std::sync::atomic::Ordering::Release);
                })
            });
        let mut conn = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        self.within(conn.subscribe(&self.keys.bus)).await?;
        let info: String = redis::cmd("INFO")
            .arg("server")
            .query_async(&mut conn)
            .await?;
        self.run_id = info
            .lines()
            .find_map(|line| line.strip_prefix("run_id:"))
            .unwrap_or("")
            .trim()
            .to_owned();
        // Subscribed first: whatever is published from here on is seen, so
        // loading each node's hash after it misses nothing. Listed before
        // the rewrite's reset, so no node takes this one for gone.
        self.beat(&mut conn).await?;
        self.status
            .overflowed
            .store(false, std::sync::atomic::Ordering::Release);
        self.rewrite(&mut conn).await?;
        self.status.set_up(true);
        self.up_since = Some(Instant::now());
        tracing::info!(cluster = %shown_url, node = %self.id, "cluster: connected to Redis");
        for seq in self.seen.values_mut() {
            *seq = None;
        }
        // The others may have lost Redis too and come back up to a backoff
        // later: judge no one before they could have heartbeated again.
        let judge_from = Instant::now() + self.node_timeout + BACKOFF_CAP + self.redis_timeout;
        self.survey(&mut conn, false).await?;
        let mut tick = tokio::time::interval(self.node_timeout / 4);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                outgoing = self.receiver.recv() => {
                    let Some(first) = outgoing else {
                        // The hub is gone: the process is ending.
                        return Ok(());
                    };
                    self.write(&mut conn, first).await?;
                }
                push = bus.recv() => {
                    let Some(push) = push.filter(|push| push.kind != PushKind::Disconnection)
                    else {
                        return Err(redis::RedisError::from((
                            redis::ErrorKind::Io,
                            "the connection to Redis closed",
                        )));
                    };
                    if push.kind == PushKind::Message {
                        self.status.received.fetch_add(1, Relaxed);
                        self.receive(&mut conn, &push).await?;
                    }
                }
                _ = tick.tick() => {
                    if self.beat(&mut conn).await? {
                        tracing::warn!(
                            node = %self.id,
                            "cluster: this node was taken for dead or its state lost; \
                             writing it again"
                        );
                        self.rewrite(&mut conn).await?;
                    }
                    self.survey(&mut conn, Instant::now() >= judge_from).await?;
                }
                asked = &mut self.farewell => {
                    if let Ok(done) = asked {
                        self.leave(&mut conn).await?;
                        let _ = done.send(());
                    }
                    return Ok(());
                }
            }
            if self.status.overflowed.swap(false, AcqRel) {
                self.rewrite(&mut conn).await?;
            }
            if behind.load(std::sync::atomic::Ordering::Acquire) {
                return Err(redis::RedisError::from((
                    redis::ErrorKind::Io,
                    "fell behind the bus; reconnecting to load every node again",
                )));
            }
        }
    }

    /// `future` within the Redis timeout, as a Redis error when late.
    async fn within<T>(
        &self,
        future: impl std::future::Future<Output = RedisResult<T>>,
    ) -> RedisResult<T> {
        match tokio::time::timeout(self.redis_timeout, future).await {
            Ok(result) => result,
            Err(_) => Err(redis::RedisError::from((
                redis::ErrorKind::Io,
                "Redis did not answer in time",
            ))),
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
            match outgoing {
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
                    let envelope = Envelope::Presence {
                        node: self.id.clone(),
                        seq: self.seq,
                        channel: channel.to_string(),
                        user: user.to_string(),
                        change,
                    };
                    pipe.publish(&self.keys.bus, encode(&envelope)?).ignore();
                }
                Outgoing::Message { envelope } => {
                    self.status.message_sent(envelope.len());
                    pipe.publish(&self.keys.bus, envelope).ignore();
                }
            }
            if count < BATCH as u64 {
                next = self.receiver.try_recv().ok();
            }
        }
        pipe.hset(&hash, SEQ_FIELD, self.seq).ignore();
        let () = pipe.query_async(conn).await?;
        self.status.published.fetch_add(count, Relaxed);
        Ok(())
    }

    /// Rewrites this node's hash from the hub's members and tells the other
    /// nodes to load it again. The member changes still queued are dropped
    /// (the members already reflect them); queued channel messages are
    /// published after it.
    async fn rewrite(&mut self, conn: &mut MultiplexedConnection) -> RedisResult<()> {
        let receiver = &mut self.receiver;
        let mut messages = Vec::new();
        let members = self.hub.local_members(|| {
            while let Ok(outgoing) = receiver.try_recv() {
                if let Outgoing::Message { envelope } = outgoing {
                    messages.push(envelope);
                }
            }
        });
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
        pipe.hset(&hash, RUN_FIELD, &self.run_id).ignore();
        pipe.pexpire(&hash, self.hash_ttl_ms()).ignore();
        let reset = Envelope::Reset {
            node: self.id.clone(),
            seq: self.seq,
        };
        pipe.publish(&self.keys.bus, encode(&reset)?).ignore();
        for envelope in messages {
            self.status.message_sent(envelope.len());
            pipe.publish(&self.keys.bus, envelope).ignore();
        }
        pipe.query_async(conn).await
    }

    /// At shutdown: what is queued goes out, then this node leaves the set
    /// and its hash is removed; the reset makes the others load it (empty)
    /// at once instead of waiting for the node timeout.
    async fn leave(&mut self, conn: &mut MultiplexedConnection) -> RedisResult<()> {
        while let Ok(outgoing) = self.receiver.try_recv() {
            self.write(conn, outgoing).await?;
        }
        self.seq += 1;
        let reset = Envelope::Reset {
            node: self.id.clone(),
            seq: self.seq,
        };
        let () = redis::pipe()
            .atomic()
            .zrem(&self.keys.nodes, &self.id)
            .ignore()
            .del(self.keys.node(&self.id))
            .ignore()
            .publish(&self.keys.bus, encode(&reset)?)
            .ignore()
            .query_async(conn)
            .await?;
        tracing::info!(node = %self.id, "cluster: left the cluster");
        Ok(())
    }

    fn hash_ttl_ms(&self) -> i64 {
        i64::try_from(self.node_timeout.as_millis() * 2).unwrap_or(i64::MAX)
    }

    /// Loads `node`'s members whole and makes them its members here.
    /// Fields this program could not have written are skipped.
    async fn load(&mut self, conn: &mut MultiplexedConnection, node: &str) -> RedisResult<()> {
        let fields: RawPairs = redis::cmd("HGETALL")
            .arg(self.keys.node(node))
            .query_async(conn)
            .await?;
        let mut seq = 0;
        let mut run_id = None;
        let mut members: Vec<RemoteMember> = Vec::with_capacity(fields.len());
        for (field, value) in &fields {
            let (Ok(field), Ok(value)) = (std::str::from_utf8(field), std::str::from_utf8(value))
            else {
                continue;
            };
            if field == SEQ_FIELD {
                seq = value.parse().unwrap_or(0);
            } else if field == RUN_FIELD {
                run_id = Some(value);
            } else if let Some((channel, user)) = wire::parse_member_field(field) {
                members.push((
                    channel.to_owned(),
                    user.to_owned(),
                    wire::parse_meta_value(value),
                ));
            }
        }
        if !fields.is_empty() && run_id != Some(self.run_id.as_str()) {
            // Restored from before a Redis restart: stale. Its node writes
            // it again when it reconnects (and says so); until then this
            // node keeps what it knew.
            self.seen.insert(node.to_owned(), None);
            return Ok(());
        }
        self.hub.replace_node(node, &members);
        self.seen.insert(node.to_owned(), Some(seq));
        self.status.loads.fetch_add(1, Relaxed);
        Ok(())
    }

    /// One message from the bus.
    async fn receive(
        &mut self,
        conn: &mut MultiplexedConnection,
        message: &PushInfo,
    ) -> RedisResult<()> {
        // A message push is `[channel, payload]`.
        let Some(payload) = message.data.get(1) else {
            return Ok(());
        };
        let payload: Vec<u8> = redis::from_redis_value_ref(payload)?;
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
            } => {
                if crate::protocol::check_channel(&channel).is_err() {
                    return Ok(());
                }
                match self.seen.get(&node).copied().flatten() {
                    Some(last) if seq <= last => {}
                    Some(last) if last.checked_add(1) == Some(seq) => {
                        self.hub.apply_remote(&node, &channel, &user, &change);
                        self.seen.insert(node, Some(seq));
                    }
                    // A node not loaded yet, or a change missed: load it whole.
                    _ => self.load(conn, &node).await?,
                }
            }
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
            } => {
                if crate::protocol::check_channel(&channel).is_ok() {
                    self.hub
                        .deliver_remote(&channel, from.as_deref(), &data, will);
                }
            }
        }
        Ok(())
    }
}

/// A reply of pairs read as raw bytes (ZRANGE WITHSCORES, HGETALL), so
/// that one entry this program could not have written is skipped rather
/// than failing the whole reply.
type RawPairs = Vec<(Vec<u8>, Vec<u8>)>;

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
