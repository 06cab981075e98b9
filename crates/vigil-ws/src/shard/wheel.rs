//! A hashed timer wheel per shard: deadlines are rounded up to the next tick
//! and every connection due in one tick is served by a single wake-up.
//!
//! Entries are slot keys only; an entry is live when its connection's armed
//! tick equals the tick being served, so moving a deadline later costs
//! nothing (the old entry is skipped) and moving it earlier adds one entry.

use std::time::{Duration, Instant};

/// Ticks the wheel can hold at once; farther deadlines go in the last one
/// and are re-armed when it comes round.
const SLOTS: u64 = 4096;

/// Entries a drained slot keeps room for.
const SLOT_KEEP: usize = 64;

/// The tick of a connection with no timer.
pub(crate) const UNARMED: u64 = u64::MAX;

#[derive(Debug)]
pub(crate) struct Wheel {
    epoch: Instant,
    tick: Duration,
    slots: Vec<Vec<u32>>,
    /// The next tick to serve; everything before it has been served.
    cursor: u64,
    entries: usize,
}

impl Wheel {
    pub(crate) fn new(epoch: Instant, tick: Duration) -> Self {
        Self {
            epoch,
            tick,
            slots: (0..SLOTS).map(|_| Vec::new()).collect(),
            cursor: 0,
            entries: 0,
        }
    }

    /// The tick at or after `at`.
    pub(crate) fn tick_at_or_after(&self, at: Instant) -> u64 {
        let since = at.saturating_duration_since(self.epoch).as_nanos();
        let tick = self.tick.as_nanos();
        u64::try_from(since.div_ceil(tick)).unwrap_or(u64::MAX - 1)
    }

    /// The tick already fully passed at `now`.
    pub(crate) fn tick_passed(&self, now: Instant) -> u64 {
        let since = now.saturating_duration_since(self.epoch).as_nanos();
        u64::try_from(since / self.tick.as_nanos()).unwrap_or(u64::MAX - 1)
    }

    /// When tick `tick` begins.
    pub(crate) fn instant_of(&self, tick: u64) -> Instant {
        let nanos = u128::from(tick) * self.tick.as_nanos();
        self.epoch + Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// Arms `key` at `tick` (clamped into the wheel's window); returns the
    /// tick actually armed, which the connection must remember.
    pub(crate) fn insert(&mut self, tick: u64, key: u32) -> u64 {
        let tick = tick.clamp(self.cursor, self.cursor + SLOTS - 1);
        self.slots[(tick % SLOTS) as usize].push(key);
        self.entries += 1;
        tick
    }

    /// The earliest tick with entries, if any.
    pub(crate) fn next_tick(&self) -> Option<u64> {
        if self.entries == 0 {
            return None;
        }
        (self.cursor..self.cursor + SLOTS)
            .find(|tick| !self.slots[(tick % SLOTS) as usize].is_empty())
    }

    /// Moves every entry of ticks up to `through` into `due` as
    /// `(tick, key)`, and advances past them.
    pub(crate) fn take_due(&mut self, through: u64, due: &mut Vec<(u64, u32)>) {
        while self.cursor <= through && self.entries > 0 {
            let slot = &mut self.slots[(self.cursor % SLOTS) as usize];
            self.entries -= slot.len();
            let tick = self.cursor;
            due.extend(slot.drain(..).map(|key| (tick, key)));
            // A slot that once held a crowd does not keep its memory for
            // the wheel's whole turn (a mass disconnect would otherwise
            // leave capacity behind in every slot it touched).
            if slot.capacity() > SLOT_KEEP {
                slot.shrink_to(SLOT_KEEP);
            }
            self.cursor += 1;
        }
        if self.entries == 0 {
            self.cursor = self.cursor.max(through.saturating_add(1));
        }
    }
}
