//! A channel's message history: the last messages published to it, each
//! with its offset (1, 2, 3, ... per channel, never reused), bounded in
//! count, bytes and age, so that a client that dropped can ask for exactly
//! what it missed.
//!
//! A history has an epoch, chosen by its owner when it is created (a
//! random number, say): offsets are only comparable within one epoch. A
//! history that was lost (a restart, a channel forgotten once empty) comes
//! back with another epoch, and a client that names the old one is told it
//! cannot recover rather than given the wrong messages.
//!
//! Like the rest of the core, it reads no clock: every call that needs the
//! time takes `now`.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use vigil_core::history::{History, Limits, Position, Recovery};
//!
//! /// A client that saw offset 1 of epoch 7 missed 2 and 3.
//! fn missed(t0: Instant) {
//!     let limits = Limits { max_messages: 100, max_bytes: 1 << 20, max_age: Duration::from_secs(60) };
//!     let mut history = History::new(7, limits);
//!     for text in ["a", "b", "c"] {
//!         history.append(t0, text, text.len());
//!     }
//!     match history.since(t0, Position { offset: 1, epoch: 7 }) {
//!         Recovery::Complete(missed) => {
//!             assert_eq!(missed.map(|entry| entry.message).collect::<Vec<_>>(), ["b", "c"]);
//!         }
//!         Recovery::Impossible(why) => panic!("{why:?}"),
//!     }
//! }
//! ```

use std::{
    collections::VecDeque,
    time::{Duration, Instant},
};

/// The bounds of one history; the oldest messages go first when any is
/// passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Messages kept at most (0: none kept, every recovery is impossible).
    pub max_messages: usize,
    /// Their sizes (as the caller counts them) summed, at most.
    pub max_bytes: usize,
    /// How long a message is kept.
    pub max_age: Duration,
}

/// Where a client is in a channel: the last offset it received, in which
/// epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub offset: u64,
    pub epoch: u64,
}

/// One kept message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry<M> {
    pub offset: u64,
    /// When it was appended.
    pub at: Instant,
    pub message: M,
    /// Its size as the caller counted it.
    pub size: usize,
}

/// The answer to [`History::since`].
#[derive(Debug)]
pub enum Recovery<'a, M> {
    /// Every message after the position, oldest first (possibly none).
    Complete(std::collections::vec_deque::Iter<'a, Entry<M>>),
    /// The missed messages cannot all be given.
    Impossible(Impossible),
}

/// Why a recovery is impossible.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Impossible {
    /// The position names another epoch: the history it was in is gone.
    EpochChanged,
    /// Some of the missed messages were dropped already (too many since,
    /// too large, or too old).
    TooOld,
    /// The position is past the newest offset: not one this history gave.
    Ahead,
}

/// The last messages of one channel.
#[derive(Debug, Clone)]
pub struct History<M> {
    epoch: u64,
    limits: Limits,
    /// The offset the next message gets (the first is 1).
    next_offset: u64,
    entries: VecDeque<Entry<M>>,
    bytes: usize,
}

impl<M> History<M> {
    /// An empty history in `epoch`: its first message gets offset 1.
    pub fn new(epoch: u64, limits: Limits) -> Self {
        Self {
            epoch,
            limits,
            next_offset: 1,
            entries: VecDeque::new(),
            bytes: 0,
        }
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The position of a client that has received every message so far.
    pub fn position(&self) -> Position {
        Position {
            offset: self.next_offset - 1,
            epoch: self.epoch,
        }
    }

    /// Messages kept, and their sizes summed.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// When the oldest kept message expires, if one is kept: the caller's
    /// next [`History::expire`].
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.entries
            .front()
            .map(|oldest| oldest.at + self.limits.max_age)
    }

    /// Appends `message` (of `size` bytes, as the caller counts them) and
    /// returns its offset; drops the oldest messages past the limits. A
    /// message larger than `max_bytes` still gets its offset but is not
    /// kept, and the older ones go too (what is kept stays a contiguous
    /// run of offsets, ending at the newest): a client that missed it
    /// cannot recover.
    pub fn append(&mut self, now: Instant, message: M, size: usize) -> u64 {
        let offset = self.next_offset;
        self.next_offset += 1;
        self.entries.push_back(Entry {
            offset,
            at: now,
            message,
            size,
        });
        self.bytes += size;
        while self.entries.len() > self.limits.max_messages || self.bytes > self.limits.max_bytes {
            self.drop_oldest();
        }
        self.expire(now);
        offset
    }

    /// Drops the messages older than `max_age` at `now`.
    pub fn expire(&mut self, now: Instant) {
        while self
            .entries
            .front()
            .is_some_and(|oldest| now.saturating_duration_since(oldest.at) >= self.limits.max_age)
        {
            self.drop_oldest();
        }
    }

    fn drop_oldest(&mut self) {
        if let Some(oldest) = self.entries.pop_front() {
            self.bytes -= oldest.size;
        }
    }

    /// Every message after `position`, if all of them are still kept at
    /// `now`.
    pub fn since(&mut self, now: Instant, position: Position) -> Recovery<'_, M> {
        self.expire(now);
        if position.epoch != self.epoch {
            return Recovery::Impossible(Impossible::EpochChanged);
        }
        let newest = self.next_offset - 1;
        if position.offset > newest {
            return Recovery::Impossible(Impossible::Ahead);
        }
        // The first message the client lacks must still be kept (or there
        // is none to give).
        let first_kept = self.entries.front().map_or(self.next_offset, |e| e.offset);
        if position.offset + 1 < first_kept {
            return Recovery::Impossible(Impossible::TooOld);
        }
        let skip = (position.offset + 1 - first_kept) as usize;
        Recovery::Complete(self.entries.range(skip..))
    }

    /// Up to `limit` kept messages with offsets after `after` (from the
    /// oldest kept when `None`), oldest first, at `now`; and whether more
    /// follow.
    pub fn page(
        &mut self,
        now: Instant,
        after: Option<u64>,
        limit: usize,
    ) -> (impl Iterator<Item = &Entry<M>>, bool) {
        self.expire(now);
        let after = after.unwrap_or(0);
        let start = self.entries.partition_point(|entry| entry.offset <= after);
        let more = self.entries.len() > start.saturating_add(limit);
        (self.entries.range(start..).take(limit), more)
    }
}

#[cfg(test)]
mod tests;
