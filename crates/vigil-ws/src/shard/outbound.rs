//! Bytes waiting for a peer whose socket buffer is full. Allocated only while
//! something waits: an idle connection has none.
//!
//! Control frames jump ahead of queued data at the next frame boundary, and
//! data messages are cut into fragments when they are written, so a ping,
//! pong or close never waits behind a whole large message.

use crate::codec;
use bytes::Bytes;
use fastwebsockets::OpCode;
use std::collections::VecDeque;
use std::time::Instant;

#[derive(Debug)]
pub(crate) struct Outbound {
    /// The frame being written and how much of it has gone out.
    current: Vec<u8>,
    written: usize,
    /// Encoded control frames, written before any further data.
    control: Vec<u8>,
    /// Messages not yet fully framed: payload, text or not, bytes framed.
    data: VecDeque<(Bytes, bool, usize)>,
    /// Payload bytes still queued (the slow-consumer bound).
    queued: usize,
    /// Since when no write has made progress.
    pub(crate) stalled_since: Instant,
}

impl Outbound {
    pub(crate) fn new(now: Instant) -> Self {
        Self {
            current: Vec::new(),
            written: 0,
            control: Vec::new(),
            data: VecDeque::new(),
            queued: 0,
            stalled_since: now,
        }
    }

    /// A frame that could only be partly written.
    pub(crate) fn set_current(&mut self, rest: &[u8]) {
        self.current.clear();
        self.current.extend_from_slice(rest);
        self.written = 0;
    }

    pub(crate) fn push_control(&mut self, frame: &[u8]) {
        self.control.extend_from_slice(frame);
    }

    pub(crate) fn push_data(&mut self, payload: Bytes, text: bool) {
        self.queued += payload.len();
        self.data.push_back((payload, text, 0));
    }

    pub(crate) fn queued_bytes(&self) -> usize {
        self.queued + self.current.len() - self.written
    }

    /// The bytes to write next, framing the next fragment if needed; empty
    /// when everything has gone out.
    pub(crate) fn next_bytes(
        &mut self,
        fragment_size: usize,
        mask: &mut dyn FnMut() -> Option<[u8; 4]>,
    ) -> &[u8] {
        if self.written == self.current.len() {
            self.current.clear();
            self.written = 0;
            if !self.control.is_empty() {
                std::mem::swap(&mut self.current, &mut self.control);
            } else if let Some((payload, text, framed)) = self.data.front_mut() {
                let first = *framed == 0;
                let end = payload.len().min(*framed + fragment_size);
                let fin = end == payload.len();
                let opcode = match (first, *text) {
                    (false, _) => OpCode::Continuation,
                    (true, true) => OpCode::Text,
                    (true, false) => OpCode::Binary,
                };
                codec::encode(
                    &mut self.current,
                    fin,
                    opcode,
                    &payload[*framed..end],
                    mask(),
                );
                self.queued -= end - *framed;
                *framed = end;
                if fin {
                    self.data.pop_front();
                }
            }
        }
        &self.current[self.written..]
    }

    /// Records that `count` bytes of `next_bytes` went out at `now`.
    pub(crate) fn advance(&mut self, count: usize, now: Instant) {
        self.written += count;
        if count > 0 {
            self.stalled_since = now;
        }
    }
}
