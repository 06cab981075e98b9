//! Where a connection's decoded frames go: heartbeat frames (protocol or,
//! in application-level mode, text) to the heartbeat machine, messages to
//! the application, and the counters on the way.

use crate::apptext;
use crate::codec::Inbound;
use crate::config::HeartbeatMode;
use crate::handler::{Connection, Message};
use crate::ping_limit::PingWindow;
use bytes::Bytes;
use std::time::Instant;
use vigil_core::heartbeat::{Frame, Heartbeat, State};

/// The payload of the latest ping of the connection being served, kept per
/// shard because pongs are sent before the shard moves to another socket.
#[derive(Debug)]
pub(crate) struct PingScratch {
    pub(super) app_text: bool,
    pub(super) len: usize,
    pub(super) bytes: [u8; 125],
}

impl Default for PingScratch {
    fn default() -> Self {
        Self {
            app_text: false,
            len: 0,
            bytes: [0; 125],
        }
    }
}

impl PingScratch {
    pub(super) fn set(&mut self, app_text: bool, payload: &[u8]) {
        self.app_text = app_text;
        self.len = payload.len().min(self.bytes.len());
        self.bytes[..self.len].copy_from_slice(&payload[..self.len]);
    }
}

/// Where decoded frames go: the heartbeat machine, and the application for
/// messages that are not heartbeats.
pub(super) struct InboundSink<'a> {
    pub(super) now: Instant,
    pub(super) config: &'a crate::WsConfig,
    pub(super) mode: HeartbeatMode,
    pub(super) heartbeat: &'a mut Heartbeat,
    pub(super) handler: &'a dyn crate::Handler,
    pub(super) ping: &'a mut PingScratch,
    pub(super) pings: &'a mut PingWindow,
    /// The shard's epoch, on which ping windows are aligned.
    pub(super) epoch: Instant,
    /// Set by the first ping over the limit: the caller closes with 1008.
    pub(super) flooded: bool,
    pub(super) metrics: &'a crate::metrics::ShardMetrics,
    pub(super) handle: Connection,
}

impl InboundSink<'_> {
    pub(super) fn accept(&mut self, inbound: Inbound<'_>) {
        let (now, config) = (self.now, &self.config.heartbeat);
        if matches!(inbound, Inbound::Text(_) | Inbound::Binary(_)) && !self.open_for_data() {
            // Our close frame is out (or the peer's came in): data is
            // still life, but no longer a message. A peer that keeps
            // flooding while we wait for its close costs a decode, not a
            // copy and a callback per message.
            return self.heartbeat.handle_frame(now, config, Frame::Data);
        }
        match inbound {
            Inbound::Text(text) => {
                if self.mode == HeartbeatMode::AppText {
                    match apptext::parse(text) {
                        Some(apptext::Heartbeat::Ping(id)) => {
                            if self.within_ping_limit() {
                                self.ping.set(true, id);
                                self.heartbeat.handle_frame(now, config, Frame::Ping);
                            }
                            return;
                        }
                        Some(apptext::Heartbeat::Pong(id)) => {
                            return self.pong(&id.to_be_bytes());
                        }
                        None => {}
                    }
                }
                self.deliver(Message::Text(Bytes::copy_from_slice(text)));
            }
            Inbound::Binary(data) => self.deliver(Message::Binary(Bytes::copy_from_slice(data))),
            Inbound::Fragment => self.heartbeat.handle_frame(now, config, Frame::Data),
            Inbound::Ping(payload) => {
                if self.within_ping_limit() {
                    self.ping.set(false, payload);
                    self.heartbeat.handle_frame(now, config, Frame::Ping);
                }
            }
            Inbound::Pong(payload) => self.pong(payload),
            Inbound::Close(code) => self.heartbeat.handle_frame(now, config, Frame::Close(code)),
        }
    }

    /// Counts a ping of the peer; one over the limit is not answered and
    /// marks the connection for closing.
    fn within_ping_limit(&mut self) -> bool {
        let Some(limit) = &self.config.ping_limit else {
            return true;
        };
        let within = self.pings.handle_ping(self.now, self.epoch, limit);
        self.flooded |= !within;
        within
    }

    /// A pong: life, and an RTT sample when it answers our latest ping.
    fn pong(&mut self, payload: &[u8]) {
        self.metrics.pong_received();
        let samples = self.heartbeat.rtt().sample_count();
        self.heartbeat
            .handle_frame(self.now, &self.config.heartbeat, Frame::Pong(payload));
        let rtt = self.heartbeat.rtt();
        if rtt.sample_count() != samples
            && let Some(latest) = rtt.latest()
        {
            self.metrics.rtt_sample(latest);
        }
    }

    /// Whether data frames are still messages: not after our close frame
    /// (the application, a policy or a shutdown ended the conversation)
    /// nor after the peer's.
    fn open_for_data(&self) -> bool {
        !matches!(self.heartbeat.state(), State::Closing | State::Dead(_))
    }

    fn deliver(&mut self, message: Message) {
        self.heartbeat
            .handle_frame(self.now, &self.config.heartbeat, Frame::Data);
        self.metrics.message_received();
        self.handler.on_message(&self.handle, message);
    }
}
