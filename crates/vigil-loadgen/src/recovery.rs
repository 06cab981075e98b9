//! Message recovery as healthy clients see it (`--history`, issue #16):
//! each client remembers the offset and epoch of the last message it
//! received in its channel, re-joins with them as `since` after every
//! reconnect, and counts what came: messages delivered, duplicates (an
//! offset at or before the last one of its epoch), gaps (offsets skipped
//! without a recovery saying so), messages lost by the publishers'
//! sequence numbers (with history or without), re-joins that recovered
//! (and the missed messages that arrived) and those that did not (by
//! reason, with the messages that reason lost when the epoch still tells
//! how many), re-joins that could name nothing, and how long a complete
//! recovery took to arrive.

use std::{
    collections::BTreeMap,
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
};

use serde::Serialize;
use serde_json::Value;

use crate::client::Observer;

/// "No position yet" in [`ClientPosition::epoch`].
const NO_EPOCH: u64 = 0;

/// Over every client of this process.
#[derive(Debug, Default)]
pub(crate) struct RecoveryTally {
    positions: Box<[ClientPosition]>,
    delivered: AtomicU64,
    duplicates: AtomicU64,
    /// Offsets skipped within an epoch with no re-join accounting for them.
    gap_messages: AtomicU64,
    rejoins: AtomicU64,
    recovered: AtomicU64,
    /// Messages complete recoveries announced (`missed`), and those of
    /// them that arrived.
    recovered_messages: AtomicU64,
    replayed: AtomicU64,
    /// Publisher sequence numbers skipped: messages lost, history or not.
    lost_messages: AtomicU64,
    /// Re-joins after an earlier connection that named no position (the
    /// client never learned one: its drop went unchecked).
    blind_rejoins: AtomicU64,
    /// Messages of another epoch than the client's, with no reply saying
    /// the history changed.
    epoch_jumps: AtomicU64,
    /// Re-joins that could not recover, by the server's reason, and the
    /// messages they lost (known when the epoch is the same: `too_old`).
    not_recovered: Mutex<BTreeMap<String, u64>>,
    lost_known: AtomicU64,
    /// Milliseconds from a re-join to the last missed message, for each
    /// complete recovery.
    recover_ms: Mutex<Vec<u32>>,
}

#[derive(Debug, Default)]
struct ClientPosition {
    offset: AtomicU64,
    epoch: AtomicU64,
    /// The last publisher sequence number received (0: none yet).
    seq: AtomicU64,
    /// Join replies received, over every connection.
    joins: AtomicU64,
}

impl RecoveryTally {
    pub(crate) fn new(clients: usize) -> Self {
        Self {
            positions: (0..clients).map(|_| ClientPosition::default()).collect(),
            ..Self::default()
        }
    }

    /// The `since` of client `index`'s next join, if it has a position.
    pub(crate) fn since(&self, index: usize) -> Option<(u64, String)> {
        let position = self.positions.get(index)?;
        let epoch = position.epoch.load(Relaxed);
        (epoch != NO_EPOCH).then(|| (position.offset.load(Relaxed), format!("{epoch:016x}")))
    }

    /// An observer for a connection of client `index`, made once it has
    /// joined: its join named the position the client has now, if any
    /// ([`RecoveryTally::since`]; nothing moved it since).
    pub(crate) fn tracker(&self, index: usize) -> Tracker<'_> {
        Tracker {
            tally: self,
            index,
            since: self.position(index),
            awaiting: None,
        }
    }

    fn position(&self, index: usize) -> Option<(u64, u64)> {
        let position = self.positions.get(index)?;
        let epoch = position.epoch.load(Relaxed);
        (epoch != NO_EPOCH).then(|| (position.offset.load(Relaxed), epoch))
    }

    fn set_position(&self, index: usize, offset: u64, epoch: u64) {
        if let Some(position) = self.positions.get(index) {
            position.offset.store(offset, Relaxed);
            position.epoch.store(epoch, Relaxed);
        }
    }

    pub(crate) fn report(&self) -> RecoveryReport {
        let mut times = self
            .recover_ms
            .lock()
            .map(|times| times.clone())
            .unwrap_or_default();
        times.sort_unstable();
        let at = |percent: usize| {
            (!times.is_empty()).then(|| times[(times.len() * percent / 100).min(times.len() - 1)])
        };
        RecoveryReport {
            delivered: self.delivered.load(Relaxed),
            duplicates: self.duplicates.load(Relaxed),
            gap_messages: self.gap_messages.load(Relaxed),
            rejoins: self.rejoins.load(Relaxed),
            recovered: self.recovered.load(Relaxed),
            recovered_messages: self.recovered_messages.load(Relaxed),
            replayed: self.replayed.load(Relaxed),
            lost_messages: self.lost_messages.load(Relaxed),
            blind_rejoins: self.blind_rejoins.load(Relaxed),
            epoch_jumps: self.epoch_jumps.load(Relaxed),
            not_recovered: self
                .not_recovered
                .lock()
                .map(|reasons| reasons.clone())
                .unwrap_or_default(),
            lost_known: self.lost_known.load(Relaxed),
            recover_ms_p50: at(50),
            recover_ms_max: times.last().copied(),
        }
    }
}

/// `recovery` in the report.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub(crate) struct RecoveryReport {
    pub(crate) delivered: u64,
    pub(crate) duplicates: u64,
    pub(crate) gap_messages: u64,
    pub(crate) rejoins: u64,
    pub(crate) recovered: u64,
    pub(crate) recovered_messages: u64,
    pub(crate) replayed: u64,
    pub(crate) lost_messages: u64,
    pub(crate) blind_rejoins: u64,
    pub(crate) epoch_jumps: u64,
    pub(crate) not_recovered: BTreeMap<String, u64>,
    pub(crate) lost_known: u64,
    pub(crate) recover_ms_p50: Option<u32>,
    pub(crate) recover_ms_max: Option<u32>,
}

/// One connection's bookkeeping.
#[derive(Debug)]
pub(crate) struct Tracker<'a> {
    tally: &'a RecoveryTally,
    index: usize,
    /// The position its join named (offset, epoch), if any.
    since: Option<(u64, u64)>,
    /// After a complete recovery: the offset that ends it, and when the
    /// reply came.
    awaiting: Option<(u64, u32)>,
}

fn epoch_of(value: &Value) -> Option<u64> {
    u64::from_str_radix(value.as_str()?, 16).ok()
}

impl Tracker<'_> {
    fn on_message(&mut self, message: &Value, now_ms: u32) {
        let tally = self.tally;
        // Every channel message, with an offset or not (history off).
        tally.delivered.fetch_add(1, Relaxed);
        if let (Some(seq), Some(client)) = (
            message["data"]["seq"].as_u64(),
            tally.positions.get(self.index),
        ) {
            let last = client.seq.load(Relaxed);
            if last != 0 && seq > last + 1 {
                tally.lost_messages.fetch_add(seq - last - 1, Relaxed);
            }
            if seq > last {
                client.seq.store(seq, Relaxed);
            }
        }
        let (Some(offset), Some(epoch)) = (message["offset"].as_u64(), epoch_of(&message["epoch"]))
        else {
            return;
        };
        match tally.position(self.index) {
            Some((last, known)) if known == epoch && offset <= last => {
                tally.duplicates.fetch_add(1, Relaxed);
                return;
            }
            Some((last, known)) if known == epoch && offset > last + 1 => {
                tally.gap_messages.fetch_add(offset - last - 1, Relaxed);
            }
            Some((_, known)) if known != epoch => {
                tally.epoch_jumps.fetch_add(1, Relaxed);
            }
            _ => {}
        }
        if let Some((until, _)) = self.awaiting
            && offset <= until
        {
            tally.replayed.fetch_add(1, Relaxed);
        }
        tally.set_position(self.index, offset, epoch);
        if let Some((until, since_ms)) = self.awaiting
            && offset >= until
        {
            self.awaiting = None;
            if let Ok(mut times) = tally.recover_ms.lock() {
                times.push(now_ms.saturating_sub(since_ms));
            }
        }
    }

    fn on_join_reply(&mut self, reply: &Value, now_ms: u32) {
        let tally = self.tally;
        let now = (
            reply["history"]["offset"].as_u64(),
            epoch_of(&reply["history"]["epoch"]),
        );
        let earlier = tally
            .positions
            .get(self.index)
            .map_or(0, |client| client.joins.fetch_add(1, Relaxed));
        let Some((since_offset, since_epoch)) = self.since.take() else {
            // A join naming no position: the first, or (counted) one whose
            // client never learned where it was.
            if earlier > 0 {
                tally.blind_rejoins.fetch_add(1, Relaxed);
            }
            if let (Some(offset), Some(epoch)) = now {
                tally.set_position(self.index, offset, epoch);
            }
            return;
        };
        tally.rejoins.fetch_add(1, Relaxed);
        if reply["recovered"] == true {
            tally.recovered.fetch_add(1, Relaxed);
            let missed = reply["missed"].as_u64().unwrap_or(0);
            tally.recovered_messages.fetch_add(missed, Relaxed);
            if let (Some(until), true) = (now.0, missed > 0) {
                self.awaiting = Some((until, now_ms));
            }
            return;
        }
        let reason = reply["recovery"].as_str().unwrap_or("none").to_owned();
        if let Ok(mut reasons) = tally.not_recovered.lock() {
            *reasons.entry(reason).or_insert(0) += 1;
        }
        if let (Some(offset), Some(epoch)) = now {
            if epoch == since_epoch {
                tally
                    .lost_known
                    .fetch_add(offset.saturating_sub(since_offset), Relaxed);
            }
            tally.set_position(self.index, offset, epoch);
        }
    }
}

impl Observer for Tracker<'_> {
    fn on_text(&mut self, payload: &[u8], now_ms: u32) -> Option<String> {
        let message: Value = serde_json::from_slice(payload).ok()?;
        match message["type"].as_str() {
            Some("message") => self.on_message(&message, now_ms),
            Some("reply") if message["presence"].is_object() => {
                self.on_join_reply(&message, now_ms);
            }
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests;
