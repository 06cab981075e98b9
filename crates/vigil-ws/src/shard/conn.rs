//! One connection inside a shard: its transport, heartbeat machine, decoder
//! and (only while a write is blocked) its outbound queue.
//!
//! Every event follows the same order: apply the input to the heartbeat
//! machine, drain all of its actions, then the shard re-arms the timer.

use super::inbound::InboundSink;
use super::outbound::{Lane, Outbound};
use super::transport::Transport;
use super::wheel::UNARMED;
use super::{Scratch, SlotRef, waker};
use crate::apptext;
use crate::codec::{self, Decoder, ProtocolError, Role};
use crate::config::HeartbeatMode;
use crate::handler::{CloseReason, ConnId, Connection, Liveness};
use crate::ping_limit::PingWindow;
use bytes::Bytes;
use fastwebsockets::OpCode;
use std::io::ErrorKind;
use std::task::Context;
use std::time::Instant;
use vigil_core::heartbeat::{Action, EndReason, Frame, Heartbeat, State, ping_payload};

/// Bytes read from one connection before the shard serves the others: one
/// read of the shard's 64 KiB buffer. It bounds one connection's turn (a
/// flood of tiny requests is ~2,500 of them, each answered) so every other
/// ready socket is served within a few milliseconds.
const READ_BUDGET: usize = 64 << 10;

/// What a read that delivered nothing but left the socket readable costs
/// of [`READ_BUDGET`]: at most 16 such reads a turn.
const EMPTY_READ_COST: usize = READ_BUDGET / 16;

/// While this much waits to be written to a connection, its input is not
/// read: a peer that keeps asking without reading the answers pushes back
/// on itself (its TCP window fills) instead of growing this process's
/// memory and taking its CPU. Reading resumes once the backlog drains below
/// it. (Messages pushed to a peer that does not read still end it as a slow
/// consumer at `max_queued_bytes`.)
const READ_PAUSE_BYTES: usize = 256 << 10;

/// Why we started closing, to tell the application.
#[derive(Debug)]
enum LocalCause {
    App { reason: Box<str> },
    Protocol(ProtocolError),
    SlowConsumer,
    PingFlood,
    Shutdown,
}

pub(crate) struct Conn {
    transport: Transport,
    heartbeat: Heartbeat,
    decoder: Decoder,
    pings: PingWindow,
    outbound: Option<Box<Outbound>>,
    cause: Option<Box<LocalCause>>,
    id: ConnId,
    slot: SlotRef,
    /// The wheel tick this connection is armed at, or `UNARMED`.
    pub(crate) armed: u64,
    role: Role,
    mode: HeartbeatMode,
    /// Input left unread until the outbound backlog drains
    /// ([`READ_PAUSE_BYTES`]).
    read_paused: bool,
    /// Set once the connection is over; the shard then removes it.
    pub(crate) ended: Option<CloseReason>,
}

impl Conn {
    pub(crate) fn new(
        now: Instant,
        transport: Transport,
        id: ConnId,
        slot: SlotRef,
        (role, mode): (Role, HeartbeatMode),
        seed: u64,
        scratch: &Scratch,
    ) -> Self {
        Self {
            transport,
            heartbeat: Heartbeat::new(now, &scratch.config.heartbeat, seed),
            decoder: Decoder::default(),
            pings: PingWindow::default(),
            outbound: None,
            cause: None,
            id,
            slot,
            armed: UNARMED,
            role,
            mode,
            read_paused: false,
            ended: None,
        }
    }

    /// A handle for the application.
    pub(crate) fn handle(&self, scratch: &Scratch) -> Connection {
        Connection::new(self.id, self.slot, std::sync::Arc::clone(&scratch.shared))
    }

    pub(crate) fn liveness(&self) -> Liveness {
        let rtt = self.heartbeat.rtt();
        Liveness {
            state: self.heartbeat.state(),
            srtt: rtt.srtt(),
            min_rtt: rtt.min_rtt(),
            last_seen: self.heartbeat.last_seen(),
            pings_sent: self.heartbeat.pings_sent(),
        }
    }

    /// The earliest moment the shard must look at this connection again.
    pub(crate) fn next_deadline(&self, scratch: &Scratch) -> Option<Instant> {
        let heartbeat = self.heartbeat.poll_timeout();
        let write = self
            .outbound
            .as_ref()
            .map(|out| out.stalled_since + scratch.config.write_timeout);
        match (heartbeat, write) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub(crate) fn on_open(&mut self, now: Instant, scratch: &mut Scratch, leftover: &[u8]) {
        let handle = self.handle(scratch);
        scratch.handler.on_open(&handle);
        if self.role == Role::Server && scratch.config.send_hello {
            let hello = apptext::hello(&scratch.config, self.mode);
            self.write_frame(now, scratch, OpCode::Text, hello.as_bytes(), None);
        }
        if !leftover.is_empty() {
            let mut bytes = leftover.to_vec();
            self.handle_bytes(now, scratch, &mut bytes);
        }
        self.after_input(now, scratch);
        self.on_io(now, scratch);
    }

    /// The socket may be readable or writable.
    pub(crate) fn on_io(&mut self, now: Instant, scratch: &mut Scratch) {
        self.read_available(now, scratch);
        self.after_input(now, scratch);
        self.flush(now, scratch);
    }

    pub(crate) fn on_timer(&mut self, now: Instant, scratch: &mut Scratch) {
        // Before judging a quiet peer, read what may already be waiting in
        // its socket (this process may have been the one that stalled),
        // asking the socket itself: tokio's readiness may not have caught
        // up with it yet.
        if matches!(self.heartbeat.state(), State::Suspect | State::Closing) {
            self.read_waiting(now, scratch);
            self.read_available(now, scratch);
            self.after_input(now, scratch);
        }
        if self.ended.is_some() {
            return;
        }
        if let Some(out) = &self.outbound
            && now.saturating_duration_since(out.stalled_since) >= scratch.config.write_timeout
        {
            self.ended = Some(CloseReason::WriteTimeout);
            return;
        }
        self.heartbeat
            .handle_timeout(now, &scratch.config.heartbeat);
        self.after_input(now, scratch);
        self.flush(now, scratch);
    }

    pub(crate) fn send(&mut self, now: Instant, scratch: &mut Scratch, text: bool, payload: Bytes) {
        if self.ended.is_some() || self.heartbeat.state() == State::Closing {
            return;
        }
        scratch.shared.metrics.message_sent();
        // A peer is a slow consumer when what already waits for it, plus
        // this, exceeds the bound; one large message to a peer that keeps
        // up is fine (the write deadline still guards it).
        let queued = self.outbound.as_ref().map_or(0, |out| out.queued_bytes());
        if queued > 0 && queued + payload.len() > scratch.config.max_queued_bytes {
            scratch.shared.metrics.queue_overflow();
            self.start_close(now, scratch, LocalCause::SlowConsumer, 1008);
            return;
        }
        if self.outbound.is_none() && payload.len() <= scratch.config.fragment_size {
            let opcode = if text { OpCode::Text } else { OpCode::Binary };
            self.write_frame(now, scratch, opcode, &payload, None);
        } else {
            self.outbound
                .get_or_insert_with(|| Box::new(Outbound::new(now)))
                .push_data(payload, text);
            self.flush(now, scratch);
        }
        // A failed write ends the connection now, not at its next timer.
        self.after_input(now, scratch);
    }

    pub(crate) fn close_by_app(
        &mut self,
        now: Instant,
        scratch: &mut Scratch,
        code: u16,
        reason: Box<str>,
    ) {
        self.start_close(now, scratch, LocalCause::App { reason }, code);
    }

    pub(crate) fn shut_down(&mut self, now: Instant, scratch: &mut Scratch) {
        self.start_close(now, scratch, LocalCause::Shutdown, 1001);
    }

    fn start_close(&mut self, now: Instant, scratch: &mut Scratch, cause: LocalCause, code: u16) {
        if self.cause.is_some() || self.ended.is_some() {
            return;
        }
        self.cause = Some(Box::new(cause));
        self.heartbeat.close(now, &scratch.config.heartbeat, code);
        self.after_input(now, scratch);
        self.flush(now, scratch);
    }

    /// Reads until the socket is drained (or the budget is spent), feeding
    /// every complete frame to the heartbeat machine and the application.
    fn read_available(&mut self, now: Instant, scratch: &mut Scratch) {
        let mut budget = READ_BUDGET;
        let waker = waker::slot_waker(scratch.index, self.slot.key);
        let mut context = Context::from_waker(&waker);
        while self.ended.is_none() && self.cause_is_not_protocol() {
            if self.backlogged() {
                // `flush` queues this connection again once it drained.
                self.read_paused = true;
                return;
            }
            let mut buf = std::mem::take(&mut scratch.read_buf);
            let read = self
                .transport
                .read(&mut buf, &mut scratch.cipher, &mut context);
            match read {
                Ok((0, _)) => {
                    scratch.read_buf = buf;
                    self.heartbeat.handle_transport_end(now);
                    return;
                }
                Ok((count, drained)) => {
                    scratch.shared.metrics.bytes_received(count);
                    self.handle_bytes(now, scratch, &mut buf[..count]);
                    scratch.read_buf = buf;
                    budget = budget.saturating_sub(count);
                    if drained && !self.register_read(scratch) {
                        return;
                    }
                    if budget == 0 {
                        // Come back after the other connections had their turn.
                        scratch.shared.push_ready(self.slot.key);
                        return;
                    }
                }
                Err(error) if error.kind() == ErrorKind::WouldBlock => {
                    scratch.read_buf = buf;
                    if !self.register_read(scratch) {
                        return;
                    }
                    // Still readable, though nothing was delivered: a TLS
                    // peer sending records without data. Each such pass
                    // costs a share of the turn, so it cannot keep one.
                    budget = budget.saturating_sub(EMPTY_READ_COST);
                    if budget == 0 {
                        scratch.shared.push_ready(self.slot.key);
                        return;
                    }
                }
                Err(error) if error.kind() == ErrorKind::Interrupted => scratch.read_buf = buf,
                Err(_) => {
                    scratch.read_buf = buf;
                    self.heartbeat.handle_transport_end(now);
                    return;
                }
            }
        }
    }

    /// One read straight from the socket, whatever tokio's cached
    /// readiness says, so bytes that arrived since the reactor last looked
    /// are not missed.
    fn read_waiting(&mut self, now: Instant, scratch: &mut Scratch) {
        if self.ended.is_some() || !self.cause_is_not_protocol() {
            return;
        }
        let mut buf = std::mem::take(&mut scratch.read_buf);
        let Some(read) = self.transport.read_directly(&mut buf, &mut scratch.cipher) else {
            scratch.read_buf = buf;
            return;
        };
        match read {
            Ok(0) => self.heartbeat.handle_transport_end(now),
            Ok(count) => {
                scratch.shared.metrics.bytes_received(count);
                self.handle_bytes(now, scratch, &mut buf[..count]);
            }
            Err(error)
                if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
            Err(_) => self.heartbeat.handle_transport_end(now),
        }
        scratch.read_buf = buf;
    }

    /// Whether so much waits to be written that input should wait too.
    fn backlogged(&self) -> bool {
        self.outbound
            .as_ref()
            .is_some_and(|out| out.queued_bytes() >= READ_PAUSE_BYTES)
    }

    fn cause_is_not_protocol(&self) -> bool {
        !matches!(self.cause.as_deref(), Some(LocalCause::Protocol(_)))
    }

    /// Asks to be woken when the transport is readable; true if it
    /// already is.
    fn register_read(&self, scratch: &Scratch) -> bool {
        let waker = waker::slot_waker(scratch.index, self.slot.key);
        self.transport
            .register_read(&mut Context::from_waker(&waker))
    }

    fn register_write(&self, scratch: &Scratch) -> bool {
        let waker = waker::slot_waker(scratch.index, self.slot.key);
        self.transport
            .register_write(&mut Context::from_waker(&waker))
    }

    fn handle_bytes(&mut self, now: Instant, scratch: &mut Scratch, bytes: &mut [u8]) {
        let mut sink = InboundSink {
            now,
            config: &scratch.config,
            mode: self.mode,
            heartbeat: &mut self.heartbeat,
            handler: scratch.handler.as_ref(),
            ping: &mut scratch.ping,
            pings: &mut self.pings,
            epoch: scratch.epoch,
            flooded: false,
            metrics: &scratch.shared.metrics,
            handle: Connection::new(self.id, self.slot, std::sync::Arc::clone(&scratch.shared)),
        };
        let max = scratch.config.max_message_size;
        let result = self
            .decoder
            .decode(bytes, self.role, max, &mut |inbound| sink.accept(inbound));
        let flooded = sink.flooded;
        if let Err(error) = result {
            self.cause = Some(Box::new(LocalCause::Protocol(error)));
            self.heartbeat
                .close(now, &scratch.config.heartbeat, error.code);
            self.after_input(now, scratch);
            // A peer that broke the protocol gets our close frame and no
            // handshake: the decoder cannot trust anything it sends next.
            self.heartbeat.handle_transport_end(now);
        } else if flooded {
            self.start_close(now, scratch, LocalCause::PingFlood, 1008);
        }
    }

    /// Drains every action of the heartbeat machine.
    fn after_input(&mut self, now: Instant, scratch: &mut Scratch) {
        while let Some(action) = self.heartbeat.poll_action() {
            match action {
                Action::SendPing { id } => {
                    scratch.shared.metrics.ping_sent();
                    self.send_ping(now, scratch, id);
                }
                Action::SendPong => {
                    let ping = &scratch.ping;
                    let payload = ping.bytes;
                    let len = ping.len;
                    if ping.app_text {
                        let text = apptext::pong(&payload[..len]);
                        self.write_heartbeat_text(now, scratch, &text);
                    } else {
                        self.write_frame(
                            now,
                            scratch,
                            OpCode::Pong,
                            &payload[..len],
                            Some(Lane::Pong),
                        );
                    }
                }
                Action::SendClose { code } => {
                    let reason = match self.cause.as_deref() {
                        Some(LocalCause::App { reason, .. }) => reason,
                        Some(LocalCause::Protocol(error)) => error.reason,
                        Some(LocalCause::SlowConsumer) => "slow consumer: outbound queue full",
                        Some(LocalCause::PingFlood) => "too many pings",
                        Some(LocalCause::Shutdown) => "server shutting down; reconnect later",
                        None => "",
                    };
                    let mask = self.mask(scratch);
                    scratch.write_buf.clear();
                    codec::encode_close(&mut scratch.write_buf, code, reason, mask);
                    self.write_scratch(now, scratch, Lane::Control, true);
                }
                Action::Suspect | Action::Recovered => {
                    if action == Action::Suspect {
                        scratch.shared.metrics.suspect();
                    }
                    let handle = self.handle(scratch);
                    scratch
                        .handler
                        .on_liveness(&handle, action == Action::Suspect);
                }
                Action::Finished(end) => self.ended = Some(self.close_reason(end)),
            }
        }
    }

    fn close_reason(&self, end: EndReason) -> CloseReason {
        match (self.cause.as_deref(), end) {
            (Some(LocalCause::Protocol(error)), _) => CloseReason::ProtocolError {
                code: error.code,
                reason: error.reason,
            },
            (Some(LocalCause::SlowConsumer), _) => CloseReason::SlowConsumer,
            (Some(LocalCause::PingFlood), _) => CloseReason::PingFlood,
            (Some(LocalCause::Shutdown), _) => CloseReason::Shutdown,
            (_, EndReason::HeartbeatTimeout) => CloseReason::HeartbeatTimeout,
            (_, EndReason::CloseTimeout) => CloseReason::CloseTimeout,
            (_, EndReason::ClosedByPeer { code }) => CloseReason::PeerClosed { code },
            (_, EndReason::ClosedLocally { code }) => CloseReason::Closed { code },
            _ => CloseReason::TransportEnded,
        }
    }

    fn mask(&self, scratch: &mut Scratch) -> Option<[u8; 4]> {
        (self.role == Role::Client).then(|| (scratch.rng.next_u64() as u32).to_ne_bytes())
    }

    fn send_ping(&mut self, now: Instant, scratch: &mut Scratch, id: u64) {
        match self.mode {
            HeartbeatMode::Protocol => {
                self.write_frame(
                    now,
                    scratch,
                    OpCode::Ping,
                    &ping_payload(id),
                    Some(Lane::Control),
                );
            }
            HeartbeatMode::AppText => {
                let text = apptext::ping(id);
                self.write_heartbeat_text(now, scratch, &text);
            }
        }
    }

    /// Writes an application-level heartbeat text frame (it may not go
    /// inside a fragmented message, so it waits for a message boundary).
    fn write_heartbeat_text(&mut self, now: Instant, scratch: &mut Scratch, text: &str) {
        self.write_frame(
            now,
            scratch,
            OpCode::Text,
            text.as_bytes(),
            Some(Lane::Heartbeat),
        );
    }

    /// Encodes one frame and writes it now if nothing waits; otherwise
    /// queues it in `lane` (heartbeats and control frames ahead of data) or,
    /// for `None`, behind the data already waiting.
    fn write_frame(
        &mut self,
        now: Instant,
        scratch: &mut Scratch,
        opcode: OpCode,
        payload: &[u8],
        lane: Option<Lane>,
    ) {
        if lane.is_none()
            && let Some(out) = &mut self.outbound
        {
            out.push_data(Bytes::copy_from_slice(payload), opcode == OpCode::Text);
            return self.flush(now, scratch);
        }
        let mask = self.mask(scratch);
        scratch.write_buf.clear();
        codec::encode(&mut scratch.write_buf, true, opcode, payload, mask);
        self.write_scratch(now, scratch, lane.unwrap_or(Lane::Control), false);
    }

    /// Writes the whole frame in `scratch.write_buf` now if nothing waits,
    /// else queues it in `lane`; `close` marks our close frame.
    fn write_scratch(&mut self, now: Instant, scratch: &mut Scratch, lane: Lane, close: bool) {
        if self.ended.is_some() {
            return;
        }
        let waker = waker::slot_waker(scratch.index, self.slot.key);
        let mut context = Context::from_waker(&waker);
        let frame = &scratch.write_buf;
        if let Some(out) = &mut self.outbound {
            out.push_frame(lane, frame, close);
            return self.flush(now, scratch);
        }
        let mut written = 0;
        while written < frame.len() {
            match self
                .transport
                .write(&frame[written..], &mut scratch.cipher, &mut context)
            {
                Ok(count) => {
                    scratch.shared.metrics.bytes_sent(count);
                    written += count;
                }
                Err(error) if error.kind() == ErrorKind::Interrupted => {}
                Err(error) if error.kind() == ErrorKind::WouldBlock => break,
                Err(_) => {
                    self.heartbeat.handle_transport_end(now);
                    return;
                }
            }
        }
        if written < frame.len() {
            let mut out = Box::new(Outbound::new(now));
            out.set_current(&frame[written..]);
            self.outbound = Some(out);
            self.flush(now, scratch);
        } else if self.transport.flush(&mut context).is_err() {
            self.heartbeat.handle_transport_end(now);
        }
    }

    /// Writes queued bytes until done or the socket is full.
    fn flush(&mut self, now: Instant, scratch: &mut Scratch) {
        let fragment_size = scratch.config.fragment_size;
        let client = self.role == Role::Client;
        let mut data_progress = false;
        let waker = waker::slot_waker(scratch.index, self.slot.key);
        let mut context = Context::from_waker(&waker);
        let failed = loop {
            let Some(out) = &mut self.outbound else {
                break false;
            };
            let rng = &mut scratch.rng;
            let mut mask = || client.then(|| (rng.next_u64() as u32).to_ne_bytes());
            let bytes = out.next_bytes(fragment_size, &mut mask);
            if bytes.is_empty() {
                self.outbound = None; // nothing waits: free the queue
                break false;
            }
            match self
                .transport
                .write(bytes, &mut scratch.cipher, &mut context)
            {
                Ok(count) => {
                    scratch.shared.metrics.bytes_sent(count);
                    data_progress |= count > 0 && out.has_data();
                    out.advance(count, now);
                }
                Err(error) if error.kind() == ErrorKind::Interrupted => {}
                Err(error) if error.kind() == ErrorKind::WouldBlock => {
                    if !self.register_write(scratch) {
                        break false;
                    }
                }
                Err(_) => break true,
            }
        };
        let failed = failed || self.transport.flush(&mut context).is_err();
        if self.read_paused && !self.backlogged() {
            // The backlog drained: read again, in this connection's turn.
            self.read_paused = false;
            scratch.shared.push_ready(self.slot.key);
        }
        if failed {
            self.heartbeat.handle_transport_end(now);
            self.after_input(now, scratch);
        } else if data_progress && self.mode == HeartbeatMode::AppText {
            // A browser cannot answer our text pings while a large message
            // to it is still going out (they cannot go inside a fragmented
            // message); its TCP acknowledging that message is its life.
            self.heartbeat
                .handle_frame(now, &scratch.config.heartbeat, Frame::Data);
        }
    }
}
