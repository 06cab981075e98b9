//! Bytes waiting for a peer whose socket buffer is full. Allocated only while
//! something waits: an idle connection has none.
//!
//! Four lanes, written in this order whenever a frame has gone out whole:
//! control frames (ping, the latest pong, close) at the next frame boundary;
//! application-level heartbeat text frames at the next message boundary
//! (they cannot go inside a fragmented message); then data messages, cut
//! into fragments as they are written. Once a close frame is queued, no
//! data follows it (RFC 6455 section 5.5.1).

use crate::codec;
use bytes::Bytes;
use fastwebsockets::OpCode;
use std::collections::VecDeque;
use std::time::Instant;

/// Which lane a pre-encoded frame belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lane {
    /// A ping or a close: kept in order.
    Control,
    /// A pong: only the latest one waits (RFC 6455 section 5.5.3).
    Pong,
    /// A whole application-level heartbeat text frame.
    Heartbeat,
}

#[derive(Debug)]
pub(crate) struct Outbound {
    /// The frame being written and how much of it has gone out.
    current: Vec<u8>,
    written: usize,
    control: Vec<u8>,
    pong: Vec<u8>,
    heartbeat: Vec<u8>,
    /// Messages not yet fully framed: payload, text or not, bytes framed.
    data: VecDeque<(Bytes, bool, usize)>,
    /// Payload bytes still queued (the slow-consumer bound).
    queued: usize,
    /// A close frame is queued or sent: data is dropped from now on.
    closing: bool,
    /// Since when no write has made progress.
    pub(crate) stalled_since: Instant,
}

impl Outbound {
    pub(crate) fn new(now: Instant) -> Self {
        Self {
            current: Vec::new(),
            written: 0,
            control: Vec::new(),
            pong: Vec::new(),
            heartbeat: Vec::new(),
            data: VecDeque::new(),
            queued: 0,
            closing: false,
            stalled_since: now,
        }
    }

    /// A frame that could only be partly written.
    pub(crate) fn set_current(&mut self, rest: &[u8]) {
        self.current.clear();
        self.current.extend_from_slice(rest);
        self.written = 0;
    }

    /// Queues an encoded frame in `lane`.
    pub(crate) fn push_frame(&mut self, lane: Lane, frame: &[u8], close: bool) {
        match lane {
            Lane::Control => self.control.extend_from_slice(frame),
            Lane::Pong => {
                self.pong.clear();
                self.pong.extend_from_slice(frame);
            }
            Lane::Heartbeat => self.heartbeat.extend_from_slice(frame),
        }
        if close {
            // Nothing may follow our close frame: drop the data not yet framed.
            self.closing = true;
            self.data.clear();
            self.heartbeat.clear();
            self.queued = 0;
        }
    }

    pub(crate) fn push_data(&mut self, payload: Bytes, text: bool) {
        if self.closing {
            return;
        }
        self.queued += payload.len();
        self.data.push_back((payload, text, 0));
    }

    /// Bytes waiting, all lanes (the slow-consumer bound).
    pub(crate) fn queued_bytes(&self) -> usize {
        self.queued + self.current.len() - self.written
            + self.control.len()
            + self.pong.len()
            + self.heartbeat.len()
    }

    /// Whether a data message is part-way out (only control frames may go
    /// before its next fragment).
    fn mid_message(&self) -> bool {
        self.data.front().is_some_and(|(_, _, framed)| *framed > 0)
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
                // A pong may ride along: both are control frames.
                self.current.append(&mut self.pong);
            } else if !self.pong.is_empty() {
                std::mem::swap(&mut self.current, &mut self.pong);
            } else if !self.heartbeat.is_empty() && !self.mid_message() {
                std::mem::swap(&mut self.current, &mut self.heartbeat);
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

    /// Whether data is still waiting to be written (for progress-as-life).
    pub(crate) fn has_data(&self) -> bool {
        !self.data.is_empty()
    }
}

#[cfg(test)]
mod tests;
