//! Who is alive, on Redis's clock: this node's heartbeat (which also tells
//! it when it was taken for dead or lost its state while it lived), the
//! look at every node's last heartbeat, and the burial of the silent ones.

use std::sync::atomic::Ordering::Relaxed;

use redis::RedisResult;
use redis::aio::MultiplexedConnection;

use super::Link;

/// Heartbeats this node (the Redis time, ms, as its score) and keeps its
/// hash alive for two node timeouts. Returns whether the node had to be
/// added back to the set and whether its hash was still there: either
/// says another node buried it, or its state was lost, while it lived.
pub(super) const HEARTBEAT_SCRIPT: &str = "\
local t = redis.call('TIME')
local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local added = redis.call('ZADD', KEYS[1], ms, ARGV[1])
local kept = redis.call('PEXPIRE', KEYS[2], ARGV[2])
return {added, kept}";

/// Buries node `ARGV[1]` if its last heartbeat is still older than `ARGV[2]`
/// ms by Redis's clock (checked and done in one step: a heartbeat that
/// arrives between a look and the burial saves it). Returns 1 if buried.
pub(super) const BURY_SCRIPT: &str = "\
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score then return 0 end
local t = redis.call('TIME')
local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if ms - tonumber(score) <= tonumber(ARGV[2]) then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2])
return 1";

/// `vigil:nodes` with scores, read raw: the node as bytes and the score as
/// whatever the protocol sends, so a bad entry is skipped, not fatal.
type Scores = Vec<(Vec<u8>, redis::Value)>;

impl Link {
    /// This node is alive, by Redis's clock; its hash lives on. Returns
    /// whether it had been buried or its hash lost meanwhile.
    pub(super) async fn beat(&mut self, conn: &mut MultiplexedConnection) -> RedisResult<bool> {
        let (added, kept): (i64, i64) = self
            .heartbeat
            .key(&self.keys.nodes)
            .key(self.keys.node(&self.id))
            .arg(&self.id)
            .arg(self.hash_ttl_ms())
            .invoke_async(conn)
            .await?;
        Ok(added == 1 || kept == 0)
    }

    /// Reads the set of nodes: loads the ones not seen yet and, when
    /// `judge`, buries those whose last heartbeat is older than the node
    /// timeout (their members leave here; their keys are removed). Entries
    /// this program could not have written are skipped.
    pub(super) async fn survey(
        &mut self,
        conn: &mut MultiplexedConnection,
        judge: bool,
    ) -> RedisResult<()> {
        let ((seconds, micros), entries): ((i64, i64), Scores) = redis::pipe()
            .cmd("TIME")
            .cmd("ZRANGE")
            .arg(&self.keys.nodes)
            .arg(0)
            .arg(-1)
            .arg("WITHSCORES")
            .query_async(conn)
            .await?;
        let now_ms = seconds.saturating_mul(1000).saturating_add(micros / 1000);
        let timeout_ms = i64::try_from(self.node_timeout.as_millis()).unwrap_or(i64::MAX);
        let nodes: Vec<(String, i64)> = entries
            .into_iter()
            .filter_map(|(node, score)| {
                let node = String::from_utf8(node).ok()?;
                // A double in RESP3, text in RESP2.
                let score = match score {
                    redis::Value::Double(score) => score,
                    redis::Value::Int(score) => score as f64,
                    redis::Value::BulkString(text) => {
                        std::str::from_utf8(&text).ok()?.parse().ok()?
                    }
                    _ => return None,
                };
                score.is_finite().then_some((node, score as i64))
            })
            .collect();
        let mut alive = 0;
        for (node, beat_ms) in &nodes {
            if *node == self.id {
                continue;
            }
            if now_ms.saturating_sub(*beat_ms) > timeout_ms {
                if judge {
                    self.bury(conn, node).await?;
                }
                continue;
            }
            alive += 1;
            if self.seen.get(node).copied().flatten().is_none() {
                self.load(conn, node).await?;
            }
        }
        // Gone from the set (buried by another node, or lost with Redis and
        // not back in time): its members leave here too.
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
        self.status.nodes.store(alive, Relaxed);
        Ok(())
    }

    /// Buries `node` if it is still silent (by Redis's clock, at once).
    async fn bury(&mut self, conn: &mut MultiplexedConnection, node: &str) -> RedisResult<()> {
        let buried: i64 = self
            .bury
            .key(&self.keys.nodes)
            .key(self.keys.node(node))
            .arg(node)
            .arg(i64::try_from(self.node_timeout.as_millis()).unwrap_or(i64::MAX))
            .invoke_async(conn)
            .await?;
        if buried == 1 {
            tracing::warn!(node, "cluster: node stopped heartbeating; its users leave");
            self.seen.remove(node);
            self.hub.drop_node(node);
        }
        Ok(())
    }
}
