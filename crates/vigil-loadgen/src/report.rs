//! What each connection saw (one slot of atomics per connection, written only
//! by its task) and how the slots become the progress line and the report.

use std::{
    collections::BTreeMap,
    io,
    sync::atomic::{AtomicU8, AtomicU32, Ordering::Acquire, Ordering::Relaxed, Ordering::Release},
    time::Duration,
};

use fastwebsockets::WebSocketError;
use serde::Serialize;

use crate::{
    cli::{Kind, Options},
    handshake::HandshakeError,
    recovery::RecoveryReport,
    room::RoomReport,
};

const PENDING: u8 = 0;
const OPEN: u8 = 1;
const FAILED: u8 = 2;
const CLOSED: u8 = 3;
const UNSET: u32 = u32::MAX;

/// Why a connection attempt failed, or why an open connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub(crate) enum Reason {
    // Attempts.
    ConnectRefused,
    AddrInUse,
    AddrNotAvailable,
    TooManyOpenFiles,
    HandshakeTimeout,
    HandshakeEof,
    HandshakeRejected,
    // Either.
    Reset,
    IoError,
    // Open connections.
    CloseFrame,
    Eof,
    ProtocolError,
    WriteError,
    /// A flooder's abuse is over: it closed its own connection.
    Done,
}

const REASONS: [Reason; 14] = [
    Reason::ConnectRefused,
    Reason::AddrInUse,
    Reason::AddrNotAvailable,
    Reason::TooManyOpenFiles,
    Reason::HandshakeTimeout,
    Reason::HandshakeEof,
    Reason::HandshakeRejected,
    Reason::Reset,
    Reason::IoError,
    Reason::CloseFrame,
    Reason::Eof,
    Reason::ProtocolError,
    Reason::WriteError,
    Reason::Done,
];

impl Reason {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Reason::ConnectRefused => "connect_refused",
            Reason::AddrInUse => "addr_in_use",
            Reason::AddrNotAvailable => "addr_not_available",
            Reason::TooManyOpenFiles => "too_many_open_files",
            Reason::HandshakeTimeout => "handshake_timeout",
            Reason::HandshakeEof => "handshake_eof",
            Reason::HandshakeRejected => "handshake_rejected",
            Reason::Reset => "reset",
            Reason::IoError => "io_error",
            Reason::CloseFrame => "close_frame",
            Reason::Eof => "eof",
            Reason::ProtocolError => "protocol_error",
            Reason::WriteError => "write_error",
            Reason::Done => "done",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Reason> {
        REASONS.iter().copied().find(|reason| reason.name() == name)
    }

    fn from_u8(value: u8) -> Reason {
        REASONS
            .get(usize::from(value))
            .copied()
            .unwrap_or(Reason::IoError)
    }

    pub(crate) fn of_io(error: &io::Error) -> Reason {
        match error.kind() {
            io::ErrorKind::ConnectionRefused => Reason::ConnectRefused,
            io::ErrorKind::AddrInUse => Reason::AddrInUse,
            io::ErrorKind::AddrNotAvailable => Reason::AddrNotAvailable,
            io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe => Reason::Reset,
            // EMFILE, ENFILE.
            _ if matches!(error.raw_os_error(), Some(23 | 24)) => Reason::TooManyOpenFiles,
            _ => Reason::IoError,
        }
    }

    pub(crate) fn of_handshake(error: &HandshakeError) -> Reason {
        match error {
            HandshakeError::Io(error) => Reason::of_io(error),
            HandshakeError::Eof => Reason::HandshakeEof,
            HandshakeError::Rejected(_) => Reason::HandshakeRejected,
        }
    }

    pub(crate) fn of_read(error: &WebSocketError) -> Reason {
        match error {
            WebSocketError::UnexpectedEOF => Reason::Eof,
            WebSocketError::IoError(error) => Reason::of_io(error),
            _ => Reason::ProtocolError,
        }
    }
}

/// Failed reconnect attempts by reason, over all connections.
#[derive(Debug, Default)]
pub(crate) struct ReconnectFailures([AtomicU32; REASONS.len()]);

impl ReconnectFailures {
    pub(crate) fn count(&self, reason: Reason) {
        self.0[reason as usize].fetch_add(1, Relaxed);
    }

    /// The reasons seen, by name.
    pub(crate) fn summary(&self) -> BTreeMap<&'static str, u32> {
        REASONS
            .iter()
            .zip(&self.0)
            .map(|(reason, count)| (reason.name(), count.load(Relaxed)))
            .filter(|&(_, count)| count > 0)
            .collect()
    }
}

/// A [`Slot`]'s fields as plain numbers, in declaration order.
pub(crate) type SlotRecord = [u32; 14];

/// One connection's record. Only its own task writes it; the control loop
/// reads it. `state` is stored last (Release) so a reader that sees a state
/// sees the fields written before it.
#[derive(Debug)]
pub(crate) struct Slot {
    state: AtomicU8,
    reason: AtomicU8,
    handshake_us: AtomicU32,
    pings: AtomicU32,
    first_ping_ms: AtomicU32,
    last_ping_ms: AtomicU32,
    max_gap_ms: AtomicU32,
    /// When it stopped answering (silent, slow reader, half-open), ms since
    /// the start of the run.
    quiet_ms: AtomicU32,
    /// When the server ended it, ms since the start of the run.
    ended_ms: AtomicU32,
    /// Completed reconnects (a flapper's cycles, a reconnecting healthy
    /// client's comebacks), attempts refused (nothing listening) and other
    /// failed attempts.
    cycles: AtomicU32,
    reconnect_refused: AtomicU32,
    reconnect_failures: AtomicU32,
    /// When it last reconnected, and when the last reconnect attempt that
    /// failed (refusals aside) started, ms since the start of the run.
    reconnected_ms: AtomicU32,
    reconnect_failed_ms: AtomicU32,
}

impl Slot {
    pub(crate) fn new() -> Slot {
        Slot {
            state: AtomicU8::new(PENDING),
            reason: AtomicU8::new(0),
            handshake_us: AtomicU32::new(0),
            pings: AtomicU32::new(0),
            first_ping_ms: AtomicU32::new(UNSET),
            last_ping_ms: AtomicU32::new(UNSET),
            max_gap_ms: AtomicU32::new(0),
            quiet_ms: AtomicU32::new(UNSET),
            ended_ms: AtomicU32::new(UNSET),
            cycles: AtomicU32::new(0),
            reconnect_refused: AtomicU32::new(0),
            reconnect_failures: AtomicU32::new(0),
            reconnected_ms: AtomicU32::new(UNSET),
            reconnect_failed_ms: AtomicU32::new(UNSET),
        }
    }

    /// Every field, in declaration order: how a child process hands its
    /// slots to the parent (`--processes`).
    pub(crate) fn to_record(&self) -> SlotRecord {
        [
            u32::from(self.state.load(Acquire)),
            u32::from(self.reason.load(Relaxed)),
            self.handshake_us.load(Relaxed),
            self.pings.load(Relaxed),
            self.first_ping_ms.load(Relaxed),
            self.last_ping_ms.load(Relaxed),
            self.max_gap_ms.load(Relaxed),
            self.quiet_ms.load(Relaxed),
            self.ended_ms.load(Relaxed),
            self.cycles.load(Relaxed),
            self.reconnect_refused.load(Relaxed),
            self.reconnect_failures.load(Relaxed),
            self.reconnected_ms.load(Relaxed),
            self.reconnect_failed_ms.load(Relaxed),
        ]
    }

    /// The slot a [`Slot::to_record`] was taken of; `None` when the state or
    /// reason is out of range (not a record this program wrote).
    pub(crate) fn from_record(record: &SlotRecord) -> Option<Slot> {
        let [
            state,
            reason,
            handshake_us,
            pings,
            first_ping_ms,
            last_ping_ms,
            max_gap_ms,
            quiet_ms,
            ended_ms,
            cycles,
            reconnect_refused,
            reconnect_failures,
            reconnected_ms,
            reconnect_failed_ms,
        ] = *record;
        let state = u8::try_from(state).ok().filter(|&s| s <= CLOSED)?;
        let reason = u8::try_from(reason)
            .ok()
            .filter(|&r| usize::from(r) < REASONS.len())?;
        Some(Slot {
            state: AtomicU8::new(state),
            reason: AtomicU8::new(reason),
            handshake_us: AtomicU32::new(handshake_us),
            pings: AtomicU32::new(pings),
            first_ping_ms: AtomicU32::new(first_ping_ms),
            last_ping_ms: AtomicU32::new(last_ping_ms),
            max_gap_ms: AtomicU32::new(max_gap_ms),
            quiet_ms: AtomicU32::new(quiet_ms),
            ended_ms: AtomicU32::new(ended_ms),
            cycles: AtomicU32::new(cycles),
            reconnect_refused: AtomicU32::new(reconnect_refused),
            reconnect_failures: AtomicU32::new(reconnect_failures),
            reconnected_ms: AtomicU32::new(reconnected_ms),
            reconnect_failed_ms: AtomicU32::new(reconnect_failed_ms),
        })
    }

    /// It stopped answering `now_ms` after the start of the run.
    pub(crate) fn went_quiet(&self, now_ms: u32) {
        self.quiet_ms.store(now_ms, Relaxed);
    }

    /// The server ended it `now_ms` after the start of the run.
    pub(crate) fn closed_at(&self, reason: Reason, now_ms: u32) {
        self.ended_ms.store(now_ms, Relaxed);
        self.closed(reason);
    }

    /// A flapper closed and reconnected.
    pub(crate) fn cycled(&self) {
        self.cycles.fetch_add(1, Relaxed);
    }

    /// A reconnect attempt that started `started_ms` after the start of the
    /// run failed (it tries again): refused when nothing listened, otherwise
    /// a real failure. The start, not the failure, is kept: it says which
    /// server the attempt could have reached.
    pub(crate) fn reconnect_failed(&self, reason: Reason, started_ms: u32) {
        if reason == Reason::ConnectRefused {
            self.reconnect_refused.fetch_add(1, Relaxed);
        } else {
            self.reconnect_failures.fetch_add(1, Relaxed);
            self.reconnect_failed_ms.store(started_ms, Relaxed);
        }
    }

    /// A reconnecting client is back, `now_ms` after the start of the run.
    pub(crate) fn reconnected(&self, now_ms: u32) {
        self.reconnected_ms.store(now_ms, Relaxed);
        self.cycled();
    }

    pub(crate) fn failed(&self, reason: Reason) {
        self.reason.store(reason as u8, Relaxed);
        self.state.store(FAILED, Release);
    }

    pub(crate) fn opened(&self, handshake: Duration) {
        let us = u32::try_from(handshake.as_micros()).unwrap_or(u32::MAX);
        self.handshake_us.store(us, Relaxed);
        self.state.store(OPEN, Release);
    }

    pub(crate) fn closed(&self, reason: Reason) {
        self.reason.store(reason as u8, Relaxed);
        self.state.store(CLOSED, Release);
    }

    /// Pings received so far.
    pub(crate) fn pings(&self) -> u32 {
        self.pings.load(Relaxed)
    }

    /// A ping arrived `now_ms` after the start of the run.
    pub(crate) fn ping(&self, now_ms: u32) {
        let last = self.last_ping_ms.load(Relaxed);
        if last == UNSET {
            self.first_ping_ms.store(now_ms, Relaxed);
        } else {
            let gap = now_ms.saturating_sub(last);
            if gap > self.max_gap_ms.load(Relaxed) {
                self.max_gap_ms.store(gap, Relaxed);
            }
        }
        self.last_ping_ms.store(now_ms, Relaxed);
        self.pings.fetch_add(1, Relaxed);
    }
}

/// Counts over all slots at one moment.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tally {
    pub(crate) pending: u32,
    pub(crate) open: u32,
    pub(crate) failed: u32,
    pub(crate) closed: u32,
    /// Fewest pings received by a connection still open (0 when none is).
    pub(crate) min_pings_open: u32,
    pub(crate) pings_total: u64,
}

impl Tally {
    pub(crate) fn of(slots: &[Slot]) -> Tally {
        let mut tally = Tally::default();
        let mut min_open = u32::MAX;
        for slot in slots {
            let state = slot.state.load(Acquire);
            let pings = slot.pings.load(Relaxed);
            tally.pings_total += u64::from(pings);
            match state {
                PENDING => tally.pending += 1,
                OPEN => {
                    tally.open += 1;
                    min_open = min_open.min(pings);
                }
                FAILED => tally.failed += 1,
                _ => tally.closed += 1,
            }
        }
        tally.min_pings_open = if tally.open == 0 { 0 } else { min_open };
        tally
    }

    pub(crate) fn established(&self) -> u32 {
        self.open + self.closed
    }

    /// The `--status-file` line.
    pub(crate) fn status_line(&self, elapsed: Duration, attempted: u32) -> String {
        format!(
            "{{\"elapsed_ms\":{},\"attempted\":{attempted},\"established\":{},\"failed\":{},\
             \"open\":{},\"closed_by_server\":{},\"min_pings\":{},\"pings_total\":{}}}\n",
            elapsed.as_millis(),
            self.established(),
            self.failed,
            self.open,
            self.closed,
            self.min_pings_open,
            self.pings_total,
        )
    }
}

/// The JSON document printed on stdout.
#[derive(Debug, Serialize)]
pub(crate) struct Report {
    /// The mix, as `--kind` would write it.
    pub(crate) kind: String,
    /// What each kind of client saw.
    pub(crate) kinds: BTreeMap<&'static str, KindReport>,
    /// The server's detection bound, when given (`--bound-ms`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) bound_ms: Option<u64>,
    pub(crate) url: String,
    pub(crate) sources: u8,
    pub(crate) rate_per_s: f64,
    /// `hold` (time ran out), `until_pings`, `all_closed` or `signal` (with
    /// several processes, each one's, when they differ).
    pub(crate) stopped_by: String,
    /// Processes the clients ran in.
    pub(crate) processes: u32,
    pub(crate) ramp_s: f64,
    pub(crate) hold_s: f64,
    pub(crate) attempted: u32,
    pub(crate) established: u32,
    pub(crate) failed: u32,
    pub(crate) failures: BTreeMap<&'static str, u32>,
    pub(crate) open_at_end: u32,
    pub(crate) closed_by_server: u32,
    pub(crate) closes: BTreeMap<&'static str, u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) first_rejection: Option<String>,
    pub(crate) handshake_ms: Latency,
    pub(crate) pings: Pings,
    /// Failed reconnect attempts by reason (refusals while nothing listened
    /// included), when clients reconnect.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) reconnect_failures: BTreeMap<&'static str, u32>,
    /// Round trips of the clients' own pings (`--probe-rtt-every`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) rtt: Option<Messages>,
    /// The same over the `--abuse-ms` before `--abuse-at-ms`, and during
    /// the abuse.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) rtt_before: Option<Messages>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) rtt_during: Option<Messages>,
    /// What the flooders did and were answered, by kind of flood.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) abuse: BTreeMap<String, AbuseCounts>,
    /// Channel messages subscribers received (with `--join` and a publisher).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) messages: Option<Messages>,
    /// What the clients of one big channel saw and received, by phase
    /// (`--view-phases-ms`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) room: Option<Box<RoomReport>>,
    /// Offsets and recoveries (`--offsets track`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) recovery: Option<Box<RecoveryReport>>,
}

#[derive(Debug, Default, Serialize, PartialEq)]
pub(crate) struct Latency {
    pub(crate) p50: f64,
    pub(crate) p99: f64,
    pub(crate) max: f64,
}

/// Over every established connection (closed ones included).
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub(crate) struct Pings {
    pub(crate) total: u64,
    pub(crate) per_connection_min: u32,
    pub(crate) per_connection_median: u32,
    /// Median over connections with 2+ pings of their mean ping interval.
    pub(crate) interval_median_ms: u32,
    /// Longest gap between two pings seen on any connection.
    pub(crate) max_gap_ms: u32,
}

/// What a run leaves, from one process or merged from several: the slots of
/// the attempted connections with their kinds, and the shared records.
pub(crate) struct Outcome<'a> {
    pub(crate) slots: &'a [Slot],
    pub(crate) kinds: &'a [Kind],
    pub(crate) stopped_by: String,
    pub(crate) ramp_s: f64,
    pub(crate) hold_s: f64,
    pub(crate) messages: Option<Messages>,
    pub(crate) rtt: Option<Messages>,
    pub(crate) rtt_before: Option<Messages>,
    pub(crate) rtt_during: Option<Messages>,
    pub(crate) abuse: BTreeMap<String, AbuseCounts>,
    pub(crate) reconnect_failures: BTreeMap<&'static str, u32>,
    pub(crate) first_rejection: Option<String>,
    pub(crate) room: Option<Box<RoomReport>>,
    pub(crate) recovery: Option<Box<RecoveryReport>>,
}

impl Report {
    pub(crate) fn new(options: &Options, outcome: Outcome<'_>) -> Report {
        let end = Tally::of(outcome.slots);
        let (handshake_ms, pings, failures, closes) = summarize(outcome.slots);
        Report {
            kind: options.mix.describe(),
            kinds: by_kind(outcome.slots, outcome.kinds, options.bound),
            bound_ms: options.bound.map(|bound| bound.as_millis() as u64),
            url: format!("ws://{}{}", options.target.host, options.target.path),
            sources: options.sources,
            rate_per_s: options.rate,
            stopped_by: outcome.stopped_by,
            processes: options.processes,
            ramp_s: outcome.ramp_s,
            hold_s: outcome.hold_s,
            attempted: u32::try_from(outcome.slots.len()).unwrap_or(u32::MAX),
            established: end.established(),
            failed: end.failed,
            failures,
            open_at_end: end.open,
            closed_by_server: end.closed,
            closes,
            first_rejection: outcome.first_rejection,
            handshake_ms,
            pings,
            messages: outcome.messages,
            rtt: outcome.rtt,
            rtt_before: outcome.rtt_before,
            rtt_during: outcome.rtt_during,
            abuse: outcome.abuse,
            reconnect_failures: outcome.reconnect_failures,
            room: outcome.room,
            recovery: outcome.recovery,
        }
    }
}

/// The parts of the report the slots hold.
pub(crate) fn summarize(
    slots: &[Slot],
) -> (
    Latency,
    Pings,
    BTreeMap<&'static str, u32>,
    BTreeMap<&'static str, u32>,
) {
    let mut handshakes = Vec::new();
    let mut pings = Vec::new();
    let mut intervals = Vec::new();
    let mut max_gap_ms = 0;
    let mut failures = BTreeMap::new();
    let mut closes = BTreeMap::new();
    for slot in slots {
        let state = slot.state.load(Acquire);
        let reason = Reason::from_u8(slot.reason.load(Relaxed)).name();
        match state {
            FAILED => *failures.entry(reason).or_insert(0) += 1,
            CLOSED => *closes.entry(reason).or_insert(0) += 1,
            _ => {}
        }
        if state != OPEN && state != CLOSED {
            continue;
        }
        handshakes.push(slot.handshake_us.load(Relaxed));
        let count = slot.pings.load(Relaxed);
        pings.push(count);
        if count >= 2 {
            let span = slot
                .last_ping_ms
                .load(Relaxed)
                .saturating_sub(slot.first_ping_ms.load(Relaxed));
            intervals.push(span / (count - 1));
        }
        max_gap_ms = max_gap_ms.max(slot.max_gap_ms.load(Relaxed));
    }
    handshakes.sort_unstable();
    pings.sort_unstable();
    intervals.sort_unstable();
    let ms = |us: u32| f64::from(us) / 1000.0;
    let latency = Latency {
        p50: ms(percentile(&handshakes, 50)),
        p99: ms(percentile(&handshakes, 99)),
        max: ms(handshakes.last().copied().unwrap_or(0)),
    };
    let pings = Pings {
        total: pings.iter().map(|&n| u64::from(n)).sum(),
        per_connection_min: pings.first().copied().unwrap_or(0),
        per_connection_median: percentile(&pings, 50),
        interval_median_ms: percentile(&intervals, 50),
        max_gap_ms,
    };
    (latency, pings, failures, closes)
}

/// Nearest-rank percentile of sorted values (0 when empty).
fn percentile(sorted: &[u32], percent: usize) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (percent * sorted.len()).div_ceil(100).max(1);
    sorted[rank - 1]
}

pub(crate) mod abuse;
mod kinds;
mod latency;
mod part;

pub(crate) use abuse::{AbuseCounts, AbuseTally, Count};
pub(crate) use kinds::{KindReport, by_kind};
pub(crate) use latency::{LatencyRecord, MessageLatency, Messages};
pub(crate) use part::PartReport;

#[cfg(test)]
mod tests;
