//! Connection shards: each shard is one thread with a current-thread tokio
//! runtime and one task that owns many connections, their sockets, their
//! heartbeat machines and a timer wheel.
//!
//! No task, timer or channel exists per connection: sockets wake the shard
//! through zero-cost wakers ([`waker`]), timers due in the same tick are
//! served by one wake-up ([`wheel`]), and the application reaches a
//! connection through the shard's command queue.

mod conn;
mod inbound;
mod outbound;
pub(crate) mod tls;
pub(crate) mod transport;
mod wake_queue;
pub(crate) mod waker;
mod wheel;

use crate::codec::Role;
use crate::config::{HeartbeatMode, WsConfig};
use crate::handler::{ConnId, Handler, Liveness, SendError};
use crate::metrics::ShardMetrics;
use bytes::Bytes;
use conn::Conn;
use parking_lot::Mutex;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use tokio::sync::{Notify, oneshot};
use vigil_core::rng::SplitMix64;
use wake_queue::WakeQueue;
use wheel::{UNARMED, Wheel};

/// Commands waiting in one shard beyond which senders are told the shard is
/// overloaded instead of growing memory without bound.
const MAX_PENDING_COMMANDS: usize = 1 << 20;

/// Commands a drained queue keeps room for: a burst (a join announced to a
/// whole channel) must not leave its capacity behind for good.
const COMMANDS_KEEP: usize = 1024;

/// A connection's place in its shard: the slot and its reuse generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SlotRef {
    key: u32,
    generation: u32,
}

/// Work handed to a shard from other threads.
pub(crate) enum Command {
    /// Take over an upgraded socket and the bytes already read from it.
    Adopt {
        stream: transport::Adopted,
        leftover: Bytes,
        id: ConnId,
        role: Role,
        mode: HeartbeatMode,
    },
    Send {
        slot: SlotRef,
        text: bool,
        payload: Bytes,
    },
    Close {
        slot: SlotRef,
        code: u16,
        reason: Box<str>,
    },
    Liveness {
        slot: SlotRef,
        reply: oneshot::Sender<Option<Liveness>>,
    },
    /// Close every connection with 1001 and stop once they are gone.
    Shutdown,
}

/// The part of a shard other threads touch.
pub(crate) struct ShardShared {
    commands: Mutex<Vec<Command>>,
    pending_commands: AtomicUsize,
    ready: WakeQueue,
    notify: Notify,
    connections: AtomicUsize,
    stopped: AtomicBool,
    pub(crate) metrics: ShardMetrics,
}

impl ShardShared {
    pub(crate) fn push_command(&self, command: Command) -> Result<(), SendError> {
        if self.stopped.load(Ordering::Acquire) {
            return Err(SendError::Closed);
        }
        if self.pending_commands.fetch_add(1, Ordering::AcqRel) >= MAX_PENDING_COMMANDS {
            self.pending_commands.fetch_sub(1, Ordering::AcqRel);
            self.metrics.queue_overflow();
            return Err(SendError::Overloaded);
        }
        self.commands.lock().push(command);
        self.notify.notify_one();
        Ok(())
    }

    pub(crate) fn push_ready(&self, key: u32) {
        if self.ready.push(key) {
            self.notify.notify_one();
        }
    }

    /// Whether ready sockets or commands wait for the shard.
    fn has_work(&self) -> bool {
        !self.ready.is_empty() || self.pending_commands.load(Ordering::Acquire) > 0
    }

    /// Live connections on this shard.
    pub(crate) fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }
}

/// A running shard, as seen by the server that started it.
pub(crate) struct ShardHandle {
    pub(crate) shared: Arc<ShardShared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ShardHandle {
    /// Starts a shard thread serving connections with `handler`.
    pub(crate) fn spawn(
        name: String,
        config: Arc<WsConfig>,
        handler: Arc<dyn Handler>,
        seed: u64,
    ) -> Result<Self, crate::Error> {
        let shared = Arc::new(ShardShared {
            commands: Mutex::new(Vec::new()),
            pending_commands: AtomicUsize::new(0),
            ready: WakeQueue::default(),
            notify: Notify::new(),
            connections: AtomicUsize::new(0),
            stopped: AtomicBool::new(false),
            metrics: ShardMetrics::default(),
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(crate::Error::Runtime)?;
        let index = waker::register(Arc::clone(&shared));
        let for_thread = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name(name)
            .spawn(move || {
                let shard = Shard::new(for_thread, index, config, handler, seed);
                // The loop polls many sockets itself; tokio's cooperative
                // budget would otherwise make it yield in a spin.
                runtime.block_on(tokio::task::unconstrained(shard.run()));
                waker::unregister(index);
            })
            .map_err(crate::Error::Runtime)?;
        Ok(Self {
            shared,
            thread: Some(thread),
        })
    }

    /// Waits for the shard thread to finish (after a shutdown command).
    pub(crate) fn join(&mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One slot of the shard's connection table.
struct Slot {
    generation: u32,
    conn: Option<Conn>,
}

/// Per-shard scratch space and shared settings, lent to connections.
pub(crate) struct Scratch {
    pub(crate) config: Arc<WsConfig>,
    pub(crate) handler: Arc<dyn Handler>,
    pub(crate) shared: Arc<ShardShared>,
    pub(crate) index: u16,
    pub(crate) read_buf: Vec<u8>,
    pub(crate) write_buf: Vec<u8>,
    /// What TLS connections read and write, encrypted (grown on first use).
    pub(crate) cipher: Vec<u8>,
    pub(crate) rng: SplitMix64,
    /// The payload of the latest ping of the connection being served.
    pub(crate) ping: inbound::PingScratch,
    /// When the shard started: the origin of its timer wheel and of every
    /// connection's ping windows.
    pub(crate) epoch: std::time::Instant,
}

struct Shard {
    slots: Vec<Slot>,
    free: Vec<u32>,
    wheel: Wheel,
    scratch: Scratch,
    commands: Vec<Command>,
    ready: Vec<u32>,
    due: Vec<(u64, u32)>,
    shutting_down: bool,
}

impl Shard {
    fn new(
        shared: Arc<ShardShared>,
        index: u16,
        config: Arc<WsConfig>,
        handler: Arc<dyn Handler>,
        seed: u64,
    ) -> Self {
        let epoch = tokio::time::Instant::now().into_std();
        Self {
            slots: Vec::new(),
            free: Vec::new(),
            wheel: Wheel::new(epoch, config.tick),
            scratch: Scratch {
                read_buf: vec![0; 64 << 10],
                write_buf: Vec::with_capacity(64 << 10),
                cipher: Vec::new(),
                rng: SplitMix64::new(seed),
                ping: inbound::PingScratch::default(),
                epoch,
                config,
                handler,
                shared,
                index,
            },
            commands: Vec::new(),
            ready: Vec::new(),
            due: Vec::new(),
            shutting_down: false,
        }
    }

    /// The shard's loop. Fairness rests on two rules:
    /// - The loop never runs two passes without giving the runtime a
    ///   chance to poll the reactor: tokio learns which sockets became
    ///   readable only then, and a connection that keeps refilling its
    ///   read budget (it re-queues itself) would otherwise keep the loop
    ///   busy with it alone while every other socket's readiness went
    ///   unseen (issue #12: one flooding connection starved a shard).
    /// - Timers are judged only right after such a poll and a pass over
    ///   every socket it found ready, so no peer is judged on readiness
    ///   the reactor has not delivered yet.
    async fn run(mut self) {
        loop {
            self.apply_commands();
            self.serve_ready();
            if self.timers_due() {
                // Read what the sockets hold before any timer judges a peer.
                tokio::task::yield_now().await;
                self.apply_commands();
                self.serve_ready();
                self.serve_timers();
            }
            if self.shutting_down && self.scratch.shared.connections() == 0 {
                break;
            }
            if self.scratch.shared.has_work() {
                // Work queued during the pass (a connection that spent its
                // budget, a command): take it after the reactor's news.
                tokio::task::yield_now().await;
                continue;
            }
            let next = self
                .wheel
                .next_tick()
                .map(|tick| self.wheel.instant_of(tick));
            let notified = self.scratch.shared.notify.notified();
            match next {
                Some(at) => {
                    let _ = tokio::time::timeout_at(at.into(), notified).await;
                }
                None => notified.await,
            }
        }
        // Refuse new commands first, then drop the ones that raced in:
        // sockets close, liveness queries answer `None`.
        self.scratch.shared.stopped.store(true, Ordering::Release);
        drop(std::mem::take(&mut *self.scratch.shared.commands.lock()));
    }

    fn now() -> std::time::Instant {
        tokio::time::Instant::now().into_std()
    }

    fn apply_commands(&mut self) {
        std::mem::swap(&mut self.commands, &mut self.scratch.shared.commands.lock());
        self.scratch
            .shared
            .pending_commands
            .fetch_sub(self.commands.len(), Ordering::AcqRel);
        let mut commands = std::mem::take(&mut self.commands);
        let now = Self::now();
        for command in commands.drain(..) {
            match command {
                Command::Adopt {
                    stream,
                    leftover,
                    id,
                    role,
                    mode,
                } => self.adopt(now, stream, leftover, id, (role, mode)),
                Command::Send {
                    slot,
                    text,
                    payload,
                } => self.with_conn(slot, |conn, scratch| conn.send(now, scratch, text, payload)),
                Command::Close { slot, code, reason } => {
                    self.with_conn(slot, |conn, scratch| {
                        conn.close_by_app(now, scratch, code, reason)
                    });
                }
                Command::Liveness { slot, reply } => {
                    let liveness = self.conn(slot).map(Conn::liveness);
                    let _ = reply.send(liveness);
                }
                Command::Shutdown => {
                    self.shutting_down = true;
                    for key in 0..self.slots.len() {
                        let key = u32::try_from(key).expect("slots are indexed by u32");
                        self.serve(key, |conn, scratch| conn.shut_down(now, scratch));
                    }
                }
            }
        }
        if commands.capacity() > COMMANDS_KEEP {
            commands.shrink_to(COMMANDS_KEEP);
        }
        self.commands = commands;
    }

    fn serve_ready(&mut self) {
        self.scratch.shared.ready.take_into(&mut self.ready);
        let mut ready = std::mem::take(&mut self.ready);
        let now = Self::now();
        for key in ready.drain(..) {
            self.serve(key, |conn, scratch| conn.on_io(now, scratch));
        }
        self.ready = ready;
    }

    /// Whether a wheel tick has passed that has not been served.
    fn timers_due(&self) -> bool {
        self.wheel
            .next_tick()
            .is_some_and(|tick| self.wheel.instant_of(tick) <= Self::now())
    }

    fn serve_timers(&mut self) {
        let now = Self::now();
        let through = self.wheel.tick_passed(now);
        self.wheel.take_due(through, &mut self.due);
        let mut due = std::mem::take(&mut self.due);
        let mut lag_recorded_for = UNARMED;
        for (tick, key) in due.drain(..) {
            if tick != lag_recorded_for {
                let began = self.wheel.instant_of(tick);
                self.scratch
                    .shared
                    .metrics
                    .timer_lag(now.saturating_duration_since(began));
                lag_recorded_for = tick;
            }
            let armed = self
                .slots
                .get(key as usize)
                .and_then(|slot| slot.conn.as_ref())
                .is_some_and(|conn| conn.armed == tick);
            if armed {
                self.serve(key, |conn, scratch| {
                    conn.armed = UNARMED;
                    conn.on_timer(now, scratch);
                });
            }
        }
        self.due = due;
    }

    fn adopt(
        &mut self,
        now: std::time::Instant,
        stream: transport::Adopted,
        leftover: Bytes,
        id: ConnId,
        (role, mode): (Role, HeartbeatMode),
    ) {
        if self.shutting_down {
            return; // dropping the socket closes it
        }
        let transport = match stream {
            transport::Adopted::Tcp(stream) => {
                let Ok(stream) = register(stream) else {
                    return;
                };
                transport::Transport::Tcp(stream)
            }
            transport::Adopted::Stream(stream) => {
                self.scratch.shared.metrics.stream_adopted();
                transport::Transport::Stream(stream)
            }
            transport::Adopted::Tls { socket, session } => {
                let Ok(socket) = register(socket) else {
                    return;
                };
                transport::Transport::Tls(Box::new(tls::TlsTransport::new(socket, *session)))
            }
        };
        let key = match self.free.pop() {
            Some(key) => key,
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    conn: None,
                });
                u32::try_from(self.slots.len() - 1).expect("a shard holds fewer than 2^32 slots")
            }
        };
        let slot = &mut self.slots[key as usize];
        slot.generation = slot.generation.wrapping_add(1);
        let slot_ref = SlotRef {
            key,
            generation: slot.generation,
        };
        let seed = self.scratch.rng.next_u64() ^ id.0;
        slot.conn = Some(Conn::new(
            now,
            transport,
            id,
            slot_ref,
            (role, mode),
            seed,
            &self.scratch,
        ));
        self.scratch
            .shared
            .connections
            .fetch_add(1, Ordering::Relaxed);
        self.scratch.shared.metrics.opened();
        self.serve(key, |conn, scratch| conn.on_open(now, scratch, &leftover));
    }

    fn conn(&self, slot: SlotRef) -> Option<&Conn> {
        self.slots
            .get(slot.key as usize)
            .filter(|entry| entry.generation == slot.generation)
            .and_then(|entry| entry.conn.as_ref())
    }

    fn with_conn(&mut self, slot: SlotRef, work: impl FnOnce(&mut Conn, &mut Scratch)) {
        let live = self
            .slots
            .get(slot.key as usize)
            .is_some_and(|entry| entry.generation == slot.generation && entry.conn.is_some());
        if live {
            self.serve(slot.key, work);
        }
    }

    /// Runs `work` on a connection, then removes it if it ended and re-arms
    /// its timer otherwise.
    fn serve(&mut self, key: u32, work: impl FnOnce(&mut Conn, &mut Scratch)) {
        let Some(conn) = self
            .slots
            .get_mut(key as usize)
            .and_then(|slot| slot.conn.as_mut())
        else {
            return;
        };
        work(conn, &mut self.scratch);
        if let Some(reason) = conn.ended {
            let conn = self.slots[key as usize].conn.take().expect("checked above");
            self.free.push(key);
            self.scratch
                .shared
                .connections
                .fetch_sub(1, Ordering::Relaxed);
            let handle = conn.handle(&self.scratch);
            drop(conn); // closes the socket before the application hears of it
            self.scratch.shared.metrics.closed(reason);
            self.scratch.handler.on_close(&handle, reason);
            return;
        }
        if let Some(deadline) = conn.next_deadline(&self.scratch) {
            let tick = self.wheel.tick_at_or_after(deadline);
            if tick < conn.armed {
                conn.armed = self.wheel.insert(tick, key);
            }
        }
    }
}

/// A socket handed to this shard, registered with its reactor.
fn register(socket: std::net::TcpStream) -> std::io::Result<tokio::net::TcpStream> {
    socket.set_nonblocking(true)?;
    let socket = tokio::net::TcpStream::from_std(socket)?;
    let _ = socket.set_nodelay(true);
    Ok(socket)
}
