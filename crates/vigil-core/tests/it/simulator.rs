//! A seeded two-peer network simulator: two heartbeat machines talk over a
//! link with latency, jitter (which reorders messages), loss and peers that
//! go silent or only trickle bytes.
//!
//! It checks the properties that matter end to end: a silent peer is
//! declared dead within the bound, a talking peer never is, and RTT
//! estimates converge to the simulated round trip.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use vigil_core::heartbeat::{Action, Config, EndReason, Frame, Heartbeat, ping_payload};
use vigil_core::rng::SplitMix64;

/// Upper bound on simulated events: every run stops by itself.
const MAX_STEPS: usize = 1_000_000;

/// One direction of the network.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Link {
    /// Fixed one-way delay.
    pub(crate) latency: Duration,
    /// Extra uniform delay in `[0, jitter)`; lets messages overtake each other.
    pub(crate) jitter: Duration,
    /// Probability that a transmission is lost. WebSockets run over TCP, so
    /// a lost segment is not gone: it arrives after a retransmission timeout
    /// (200 ms, doubling for each further loss). Each message is delayed on
    /// its own (no head-of-line blocking), which also reorders messages.
    pub(crate) loss: f64,
}

impl Link {
    /// The longest a message can take, retransmissions included.
    pub(crate) fn worst_delay(&self) -> Duration {
        self.latency + self.jitter + Duration::from_millis(200 * 63)
    }

    pub(crate) fn steady(latency: Duration) -> Self {
        Self {
            latency,
            jitter: Duration::ZERO,
            loss: 0.0,
        }
    }
}

/// How a simulated peer behaves.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Behaviour {
    /// Runs its heartbeat; sends a data frame every `data_every` if set.
    Healthy { data_every: Option<Duration> },
    /// Healthy until `at` (offset from start), then neither reads nor writes.
    SilentFrom { at: Duration },
    /// Sends one byte every `byte_every` of frames `frame_len` bytes long,
    /// and otherwise never speaks or answers.
    Trickle {
        byte_every: Duration,
        frame_len: u32,
    },
}

#[derive(Debug, Clone, Copy)]
enum Wire {
    Data,
    /// One byte of a frame being trickled.
    Byte,
    Ping([u8; 8]),
    Pong([u8; 8]),
    Close(Option<u16>),
}

#[derive(Debug, Clone, Copy)]
enum Event {
    Deliver { to: usize, wire: Wire },
    AppSend { from: usize },
    TrickleByte { from: usize },
}

/// What happened to one peer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Outcome {
    pub(crate) ended: Option<(Duration, EndReason)>,
    pub(crate) last_seen: Duration,
    pub(crate) srtt: Option<Duration>,
    pub(crate) min_rtt: Option<Duration>,
    pub(crate) pings_sent: u64,
}

struct Peer<'c> {
    config: &'c Config,
    heartbeat: Heartbeat,
    behaviour: Behaviour,
    latest_ping: [u8; 8],
    trickled_bytes: u32,
    ended: Option<(Instant, EndReason)>,
}

pub(crate) struct Simulation<'c> {
    start: Instant,
    now: Instant,
    rng: SplitMix64,
    links: [Link; 2],
    peers: [Peer<'c>; 2],
    queue: BTreeMap<(Instant, u64), Event>,
    sequence: u64,
}

impl<'c> Simulation<'c> {
    /// Peer 0 and peer 1, each with its own configuration and behaviour;
    /// `links[i]` carries what peer `i` sends.
    pub(crate) fn new(
        start: Instant,
        seed: u64,
        links: [Link; 2],
        peers: [(&'c Config, Behaviour); 2],
    ) -> Self {
        let mut rng = SplitMix64::new(seed);
        let peers = peers.map(|(config, behaviour)| Peer {
            config,
            heartbeat: Heartbeat::new(start, config, rng.next_u64()),
            behaviour,
            latest_ping: [0; 8],
            trickled_bytes: 0,
            ended: None,
        });
        let mut simulation = Self {
            start,
            now: start,
            rng,
            links,
            peers,
            queue: BTreeMap::new(),
            sequence: 0,
        };
        for from in 0..2 {
            match simulation.peers[from].behaviour {
                Behaviour::Healthy {
                    data_every: Some(every),
                } => simulation.schedule(start + every, Event::AppSend { from }),
                Behaviour::Trickle { byte_every, .. } => {
                    simulation.schedule(start + byte_every, Event::TrickleByte { from });
                }
                Behaviour::Healthy { data_every: None } | Behaviour::SilentFrom { .. } => {}
            }
        }
        simulation
    }

    /// Runs until both peers ended or `duration` of simulated time passed.
    pub(crate) fn run_for(mut self, duration: Duration) -> [Outcome; 2] {
        let end = self.start + duration;
        for _ in 0..MAX_STEPS {
            let next_event = self.queue.keys().next().map(|(at, _)| *at);
            let next_timer = (0..2)
                .filter(|i| self.is_driven(*i))
                .filter_map(|i| self.peers[i].heartbeat.poll_timeout().map(|at| (at, i)))
                .min();
            let timer_first = match (next_timer, next_event) {
                (Some((timer, _)), Some(event)) => timer <= event,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            if timer_first {
                let (at, peer) = next_timer.expect("checked above");
                if at > end {
                    break;
                }
                self.now = at;
                if !self.is_driven(peer) {
                    // It went silent before this timer: the next pass skips it.
                    continue;
                }
                let config = self.peers[peer].config;
                self.peers[peer].heartbeat.handle_timeout(at, config);
                self.drain(peer);
            } else {
                let (key, event) = self.queue.pop_first().expect("checked above");
                if key.0 > end {
                    break;
                }
                self.now = key.0;
                self.handle_event(event);
            }
            if self.peers.iter().all(|peer| peer.ended.is_some()) {
                break;
            }
        }
        let start = self.start;
        self.peers.map(|peer| Outcome {
            ended: peer.ended.map(|(at, reason)| (at - start, reason)),
            last_seen: peer.heartbeat.last_seen() - start,
            srtt: peer.heartbeat.rtt().srtt(),
            min_rtt: peer.heartbeat.rtt().min_rtt(),
            pings_sent: peer.heartbeat.pings_sent(),
        })
    }

    /// Whether peer `i` is still running its machine (not silent, not a
    /// trickler, not ended).
    fn is_driven(&self, i: usize) -> bool {
        let peer = &self.peers[i];
        peer.ended.is_none()
            && match peer.behaviour {
                Behaviour::Healthy { .. } => true,
                Behaviour::SilentFrom { at } => self.now < self.start + at,
                Behaviour::Trickle { .. } => false,
            }
    }

    fn handle_event(&mut self, event: Event) {
        match event {
            Event::AppSend { from } => {
                if self.is_driven(from) {
                    self.send(from, Wire::Data);
                    if let Behaviour::Healthy {
                        data_every: Some(every),
                    } = self.peers[from].behaviour
                    {
                        self.schedule(self.now + every, Event::AppSend { from });
                    }
                }
            }
            Event::TrickleByte { from } => {
                self.send(from, Wire::Byte);
                if let Behaviour::Trickle { byte_every, .. } = self.peers[from].behaviour {
                    self.schedule(self.now + byte_every, Event::TrickleByte { from });
                }
            }
            Event::Deliver { to, wire } => {
                if !self.is_driven(to) {
                    return;
                }
                let now = self.now;
                let sender = self.peers[1 - to].behaviour;
                let peer = &mut self.peers[to];
                let frame = match wire {
                    Wire::Data => Frame::Data,
                    Wire::Byte => {
                        // The receiving codec hands over only complete frames.
                        let Behaviour::Trickle { frame_len, .. } = sender else {
                            unreachable!("only tricklers send single bytes")
                        };
                        peer.trickled_bytes += 1;
                        if peer.trickled_bytes < frame_len {
                            return;
                        }
                        peer.trickled_bytes = 0;
                        Frame::Data
                    }
                    Wire::Ping(payload) => {
                        peer.latest_ping = payload;
                        Frame::Ping
                    }
                    Wire::Pong(ref payload) => Frame::Pong(payload),
                    Wire::Close(code) => Frame::Close(code),
                };
                peer.heartbeat.handle_frame(now, peer.config, frame);
                self.drain(to);
            }
        }
    }

    fn drain(&mut self, i: usize) {
        while let Some(action) = self.peers[i].heartbeat.poll_action() {
            match action {
                Action::SendPing { id } => self.send(i, Wire::Ping(ping_payload(id))),
                Action::SendPong => {
                    let payload = self.peers[i].latest_ping;
                    self.send(i, Wire::Pong(payload));
                }
                Action::SendClose { code } => self.send(i, Wire::Close(code)),
                Action::Suspect | Action::Recovered => {}
                Action::Finished(reason) => self.peers[i].ended = Some((self.now, reason)),
            }
        }
    }

    fn send(&mut self, from: usize, wire: Wire) {
        let link = self.links[from];
        let mut delay = link.latency + link.jitter.mul_f64(self.rng.next_unit());
        let mut retransmission_timeout = Duration::from_millis(200);
        for _ in 0..6 {
            // Six losses in a row add 200 * (1 + 2 + ... + 32) ms: `worst_delay`.
            if self.rng.next_unit() >= link.loss {
                break;
            }
            delay += retransmission_timeout;
            retransmission_timeout *= 2;
        }
        let at = self.now + delay;
        self.schedule(at, Event::Deliver { to: 1 - from, wire });
    }

    fn schedule(&mut self, at: Instant, event: Event) {
        self.sequence += 1;
        self.queue.insert((at, self.sequence), event);
    }
}
