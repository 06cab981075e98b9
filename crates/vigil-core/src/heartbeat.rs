//! The per-connection liveness machine: when to ping, when a peer is suspect
//! or dead, RTT samples, pong replies and the close handshake.
//!
//! Sans-IO: the caller feeds frames, timeouts and commands in, and performs
//! the actions the machine asks for. The same machine serves a server
//! pinging its clients and a client pinging its server.

mod config;
mod event;

pub use config::{
    Config, ConfigBuilder, ConfigError, MAX_DURATION, MAX_JITTER, MIN_INTERVAL, MIN_TIMEOUT,
};
pub use event::{Action, EndReason, Frame, State, is_valid_close_code, ping_payload};

use crate::rng::SplitMix64;
use crate::rtt::RttEstimator;
use std::time::Instant;

/// How many times a kill deadline may be deferred because this process was
/// stalled, before the peer is judged on what has arrived.
pub const MAX_STALL_GRACES: u8 = 3;

/// Close code sent when the peer's close frame carried a code that must not
/// appear on the wire.
const PROTOCOL_ERROR: u16 = 1002;
/// Close code sent in place of an invalid one the caller asked for.
const NORMAL_CLOSURE: u16 = 1000;

/// The heartbeat of one connection.
///
/// Inputs: [`handle_frame`](Self::handle_frame) for every complete inbound
/// frame, [`handle_timeout`](Self::handle_timeout) when
/// [`poll_timeout`](Self::poll_timeout) is reached,
/// [`handle_transport_end`](Self::handle_transport_end) on EOF or an IO error.
/// Command: [`close`](Self::close). Outputs: [`poll_action`](Self::poll_action)
/// and `poll_timeout`. Getters: [`state`](Self::state), [`rtt`](Self::rtt),
/// [`last_seen`](Self::last_seen).
///
/// Call order: after every input or command, drain `poll_action` until it
/// returns `None`, then arm one timer at `poll_timeout()` and wait for the
/// next frame, timer or command. `poll_timeout()` is `None` exactly when the
/// connection is dead; calling `handle_timeout` early or twice does nothing.
///
/// Timeline of a silent peer (defaults: interval 20 s, timeout 10 s):
/// last frame at 0 s, ping between 18 s and 20 s (jitter), suspect half the
/// timeout later, [`Action::Finished`] with
/// [`EndReason::HeartbeatTimeout`] a full timeout after the ping: never more
/// than `interval + timeout` after the last frame unless this process itself
/// stalled (then the peer gets [`Config::stall_grace`] to be read first).
///
/// The machine owns no heap memory and holds no copy of its [`Config`]: the
/// caller passes the shared configuration to every call that needs it.
///
/// # Panics
///
/// Deadlines are `now` plus at most two days of configured durations; a
/// `now` so close to the end of the platform's `Instant` range that this
/// overflows panics. `now` comes from the caller's clock, never from a peer.
#[derive(Debug, Clone)]
pub struct Heartbeat {
    /// The latest `now` seen; earlier values are clamped to it.
    clock: Instant,
    /// When the last complete frame that counts as life arrived.
    last_seen: Instant,
    /// The next deadline; what it means depends on `phase`.
    deadline: Instant,
    /// When ping number `ping_id` was sent.
    ping_sent_at: Instant,
    /// Id of the latest ping sent (ids start at 1).
    ping_id: u64,
    rng: SplitMix64,
    rtt: RttEstimator,
    phase: Phase,
    pending: Pending,
    /// The code of the close frame we owe or sent; 0 means none.
    close_code: u16,
    /// Deadlines deferred for stalls of ours since the peer was last heard from.
    stall_graces: u8,
    /// Whether the latest ping is still unanswered (its pong gives an RTT).
    ping_outstanding: bool,
    /// Whether the caller was last told [`Action::Suspect`] (and not since
    /// [`Action::Recovered`]); `poll_action` reports any difference.
    reported_suspect: bool,
}

/// What the machine is waiting for; `deadline` belongs to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Alive; `deadline` is when to ping.
    Idle,
    /// Alive with a ping in flight; `deadline` is when to become suspect.
    AwaitingPong,
    /// Ping unanswered for half the timeout; `deadline` is the kill deadline.
    Suspect,
    /// Our close frame is out; `deadline` is the close timeout.
    Closing,
    /// Over.
    Dead(EndReason),
}

/// Actions owed to the caller, as bits: they fit inline, so the machine never
/// allocates. Drained in the order of the constants below.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Pending(u8);

impl Pending {
    const PONG: u8 = 1;
    const PING: u8 = 1 << 1;
    const CLOSE: u8 = 1 << 2;
    const FINISHED: u8 = 1 << 3;

    fn set(&mut self, bit: u8) {
        self.0 |= bit;
    }

    fn clear(&mut self, bit: u8) {
        self.0 &= !bit;
    }

    /// Clears and returns whether `bit` was set.
    fn take(&mut self, bit: u8) -> bool {
        let was_set = self.0 & bit != 0;
        self.clear(bit);
        was_set
    }
}

impl Heartbeat {
    /// A connection that was established at `now` (which counts as having
    /// heard from the peer). `seed` spreads this connection's pings; give
    /// each connection a different one.
    pub fn new(now: Instant, config: &Config, seed: u64) -> Self {
        let mut rng = SplitMix64::new(seed);
        let deadline = now + config.jittered_interval(rng.next_u64());
        Self {
            clock: now,
            last_seen: now,
            deadline,
            ping_sent_at: now,
            ping_id: 0,
            rng,
            rtt: RttEstimator::new(),
            phase: Phase::Idle,
            pending: Pending::default(),
            close_code: 0,
            stall_graces: 0,
            ping_outstanding: false,
            reported_suspect: false,
        }
    }

    /// A complete inbound frame arrived at `now`.
    pub fn handle_frame(&mut self, now: Instant, config: &Config, frame: Frame<'_>) {
        let now = self.advance_clock(now);
        match self.phase {
            Phase::Dead(_) => return,
            // During our close handshake only the peer's close matters.
            Phase::Closing => {
                if let Frame::Close(_) = frame {
                    self.finish(EndReason::ClosedLocally {
                        code: self.close_code,
                    });
                }
                return;
            }
            Phase::Idle | Phase::AwaitingPong | Phase::Suspect => {}
        }
        match frame {
            Frame::Data => {
                if config.any_frame_is_alive() {
                    self.heard_from_peer(now, config);
                }
            }
            Frame::Ping => {
                // A second ping before the pong is drained is coalesced.
                self.pending.set(Pending::PONG);
                self.heard_from_peer(now, config);
            }
            Frame::Pong(payload) => {
                self.handle_pong(now, payload);
                self.heard_from_peer(now, config);
            }
            Frame::Close(code) => {
                let reply = match code {
                    Some(code) if !is_valid_close_code(code) => PROTOCOL_ERROR,
                    Some(code) => code,
                    None => 0,
                };
                self.close_code = reply;
                self.pending.set(Pending::CLOSE);
                self.finish(EndReason::ClosedByPeer { code });
            }
        }
    }

    /// A timer armed from [`poll_timeout`](Self::poll_timeout) fired at
    /// `now`. Early or repeated calls do nothing.
    ///
    /// A call more than [`Config::stall_threshold`] after the deadline the
    /// machine asked for means this process was stalled (CPU starvation,
    /// swap, SIGSTOP): the peer's answer may be sitting unread in its socket,
    /// so while a ping or our close is outstanding nobody is judged on this
    /// call; the deadline moves [`Config::stall_grace`] ahead instead, at
    /// most [`MAX_STALL_GRACES`] times per silence.
    pub fn handle_timeout(&mut self, now: Instant, config: &Config) {
        let now = self.advance_clock(now);
        if self.poll_timeout().is_none_or(|deadline| deadline > now) {
            return;
        }
        let stalled = now - self.deadline > config.stall_threshold();
        let judging = matches!(
            self.phase,
            Phase::AwaitingPong | Phase::Suspect | Phase::Closing
        );
        if stalled && judging && self.stall_graces < MAX_STALL_GRACES {
            self.stall_graces += 1;
            self.deadline = now + config.stall_grace();
            return;
        }
        // A call past its deadline may cross several; every branch either
        // moves the deadline past `now` or ends the connection.
        while self.deadline <= now {
            match self.phase {
                Phase::Dead(_) => return,
                Phase::Idle => self.send_ping(now, config),
                Phase::AwaitingPong => {
                    self.phase = Phase::Suspect;
                    self.deadline = self.ping_sent_at + config.timeout();
                }
                Phase::Suspect => self.finish(EndReason::HeartbeatTimeout),
                Phase::Closing => self.finish(EndReason::CloseTimeout),
            }
        }
    }

    /// The transport reached end of stream or failed at `now`.
    pub fn handle_transport_end(&mut self, now: Instant) {
        self.advance_clock(now);
        match self.phase {
            Phase::Dead(_) => {}
            Phase::Closing => self.finish(EndReason::ClosedLocally {
                code: self.close_code,
            }),
            Phase::Idle | Phase::AwaitingPong | Phase::Suspect => {
                self.finish(EndReason::TransportEnded);
            }
        }
    }

    /// Starts the close handshake with `code`. A code that must not appear
    /// on the wire (see [`is_valid_close_code`]) is replaced by 1000, and
    /// [`EndReason::ClosedLocally`] reports the code actually sent. Does
    /// nothing once closing or dead.
    pub fn close(&mut self, now: Instant, config: &Config, code: u16) {
        let code = if is_valid_close_code(code) {
            code
        } else {
            NORMAL_CLOSURE
        };
        let now = self.advance_clock(now);
        match self.phase {
            Phase::Closing | Phase::Dead(_) => {}
            Phase::Idle | Phase::AwaitingPong | Phase::Suspect => {
                self.phase = Phase::Closing;
                self.deadline = now + config.close_timeout();
                self.close_code = code;
                self.stall_graces = 0;
                self.pending.clear(Pending::PING);
                self.pending.set(Pending::CLOSE);
            }
        }
    }

    /// The next action to perform, in the order they must go on the wire.
    #[must_use]
    pub fn poll_action(&mut self) -> Option<Action> {
        if self.pending.take(Pending::PONG) {
            return Some(Action::SendPong);
        }
        if self.pending.take(Pending::PING) {
            return Some(Action::SendPing { id: self.ping_id });
        }
        if let Phase::Idle | Phase::AwaitingPong | Phase::Suspect = self.phase {
            let suspect = self.phase == Phase::Suspect;
            if suspect != self.reported_suspect {
                self.reported_suspect = suspect;
                return Some(if suspect {
                    Action::Suspect
                } else {
                    Action::Recovered
                });
            }
        }
        if self.pending.take(Pending::CLOSE) {
            let code = (self.close_code != 0).then_some(self.close_code);
            return Some(Action::SendClose { code });
        }
        match self.phase {
            Phase::Dead(reason) if self.pending.take(Pending::FINISHED) => {
                Some(Action::Finished(reason))
            }
            _ => None,
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called;
    /// `None` once the connection is dead.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.phase {
            Phase::Dead(_) => None,
            Phase::Idle | Phase::AwaitingPong | Phase::Suspect | Phase::Closing => {
                Some(self.deadline)
            }
        }
    }

    /// Where the connection stands.
    pub fn state(&self) -> State {
        match self.phase {
            Phase::Idle | Phase::AwaitingPong => State::Alive,
            Phase::Suspect => State::Suspect,
            Phase::Closing => State::Closing,
            Phase::Dead(reason) => State::Dead(reason),
        }
    }

    /// Round-trip estimates from our pings.
    pub fn rtt(&self) -> &RttEstimator {
        &self.rtt
    }

    /// When the last frame that counts as life arrived.
    pub fn last_seen(&self) -> Instant {
        self.last_seen
    }

    /// How many pings this machine has sent.
    pub fn pings_sent(&self) -> u64 {
        self.ping_id
    }

    fn advance_clock(&mut self, now: Instant) -> Instant {
        self.clock = self.clock.max(now);
        self.clock
    }

    fn heard_from_peer(&mut self, now: Instant, config: &Config) {
        self.last_seen = now;
        self.stall_graces = 0;
        self.phase = Phase::Idle;
        self.deadline = now + config.jittered_interval(self.rng.next_u64());
    }

    fn handle_pong(&mut self, now: Instant, payload: &[u8]) {
        let Ok(id) = <[u8; 8]>::try_from(payload) else {
            return;
        };
        if self.ping_outstanding && u64::from_be_bytes(id) == self.ping_id {
            self.ping_outstanding = false;
            self.rtt.handle_sample(now - self.ping_sent_at);
        }
    }

    fn send_ping(&mut self, now: Instant, config: &Config) {
        self.ping_id += 1;
        self.ping_sent_at = now;
        self.ping_outstanding = true;
        self.pending.set(Pending::PING);
        self.phase = Phase::AwaitingPong;
        self.deadline = now + config.suspect_after();
    }

    fn finish(&mut self, reason: EndReason) {
        self.phase = Phase::Dead(reason);
        self.pending.clear(Pending::PING);
        self.pending.set(Pending::FINISHED);
    }
}

#[cfg(test)]
mod tests;
