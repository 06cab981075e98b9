//! The stats file of an idle-connection bench server: how `cargo xtask
//! bench-idle` reads a server's heap, RSS, CPU time and heartbeat counts at
//! the same instant.
//!
//! Protocol (every bench server, whatever its design): with `--stats-file
//! PATH`, the server writes one sample when it starts listening and then one
//! every second, each *replacing* PATH atomically (written to `PATH.tmp`, then
//! renamed). A sample is one line of flat JSON, unsigned integers only, keys in
//! this order:
//!
//! ```text
//! {"seq":3,"uptime_ms":3001,"connections":19000,"pings_sent":11400,"pongs_received":11398,"live_heap_bytes":1234567,"live_allocations":4567,"allocations":890123,"rss_kib":20480,"cpu_ticks":250}
//! ```
//!
//! - `seq` counts samples from 0; a reader waits for it to change to get a
//!   fresh sample. `uptime_ms` is measured from the first sample.
//! - `connections`: WebSocket connections open now (upgraded, not yet closed).
//! - `pings_sent`, `pongs_received`: totals since the start.
//! - `live_heap_bytes`, `live_allocations`, `allocations`: the
//!   [`CountingAllocator`] the binary installs as its global allocator.
//! - `rss_kib`: `VmRSS` of `/proc/self/status`; `cpu_ticks`: `utime + stime`
//!   of `/proc/self/stat` (all threads, in `CLK_TCK` units), read in the same
//!   sample so CPU and pings line up exactly.
//!
//! A server keeps the three [`Counters`] up to date (or gives its own
//! [`CountSource`], as vigil-ws does with its metrics) and calls
//! [`spawn_writer`]; the sampling and the format live here.

use std::{
    fs, io,
    path::{Path, PathBuf},
    sync::atomic::{AtomicU64, Ordering::Relaxed},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, Result};

use crate::alloc::CountingAllocator;

/// What a server counts itself; usually a `static`.
#[derive(Debug, Default)]
pub struct Counters {
    connections: AtomicU64,
    pings_sent: AtomicU64,
    pongs_received: AtomicU64,
}

impl Counters {
    pub const fn new() -> Counters {
        Counters {
            connections: AtomicU64::new(0),
            pings_sent: AtomicU64::new(0),
            pongs_received: AtomicU64::new(0),
        }
    }

    /// A WebSocket connection is established (after the upgrade).
    pub fn connection_opened(&self) {
        self.connections.fetch_add(1, Relaxed);
    }

    /// An established connection is gone; call once per `connection_opened`.
    pub fn connection_closed(&self) {
        self.connections.fetch_sub(1, Relaxed);
    }

    /// A ping frame was written to a peer.
    pub fn ping_sent(&self) {
        self.pings_sent.fetch_add(1, Relaxed);
    }

    /// A pong frame arrived from a peer.
    pub fn pong_received(&self) {
        self.pongs_received.fetch_add(1, Relaxed);
    }
}

/// Where a server's connection and heartbeat counts come from: its own
/// [`Counters`], or counters the server under test keeps itself (vigil-ws
/// counts pings and pongs in its shards).
pub trait CountSource: Send + 'static {
    /// `(connections, pings_sent, pongs_received)` now.
    fn counts(&self) -> (u64, u64, u64);
}

impl CountSource for &'static Counters {
    fn counts(&self) -> (u64, u64, u64) {
        (
            self.connections.load(Relaxed),
            self.pings_sent.load(Relaxed),
            self.pongs_received.load(Relaxed),
        )
    }
}

impl<F: Fn() -> (u64, u64, u64) + Send + 'static> CountSource for F {
    fn counts(&self) -> (u64, u64, u64) {
        self()
    }
}

/// One line of the stats file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sample {
    pub seq: u64,
    pub uptime_ms: u64,
    pub connections: u64,
    pub pings_sent: u64,
    pub pongs_received: u64,
    pub live_heap_bytes: u64,
    pub live_allocations: u64,
    pub allocations: u64,
    pub rss_kib: u64,
    pub cpu_ticks: u64,
}

impl Sample {
    /// The line, newline included, exactly as the protocol above spells it.
    pub fn to_line(&self) -> String {
        format!(
            "{{\"seq\":{},\"uptime_ms\":{},\"connections\":{},\"pings_sent\":{},\
             \"pongs_received\":{},\"live_heap_bytes\":{},\"live_allocations\":{},\
             \"allocations\":{},\"rss_kib\":{},\"cpu_ticks\":{}}}\n",
            self.seq,
            self.uptime_ms,
            self.connections,
            self.pings_sent,
            self.pongs_received,
            self.live_heap_bytes,
            self.live_allocations,
            self.allocations,
            self.rss_kib,
            self.cpu_ticks,
        )
    }
}

/// Writes the first sample now (so a bad path fails at startup), then one a
/// second on a `stats` thread for `lifetime` (the server's `--max-seconds`).
/// Later write errors are reported once on stderr and do not stop the server.
pub fn spawn_writer(
    path: &Path,
    lifetime: Duration,
    counters: impl CountSource,
    heap: &'static CountingAllocator,
) -> Result<thread::JoinHandle<()>> {
    let mut writer = Writer {
        path: path.to_path_buf(),
        tmp: tmp_path(path),
        started: Instant::now(),
        seq: 0,
    };
    writer
        .write(&counters, heap)
        .with_context(|| format!("cannot write the stats file {}", path.display()))?;
    thread::Builder::new()
        .name("stats".into())
        .spawn(move || writer.run(lifetime, counters, heap))
        .context("cannot start the stats thread")
}

#[derive(Debug)]
struct Writer {
    path: PathBuf,
    tmp: PathBuf,
    started: Instant,
    seq: u64,
}

impl Writer {
    fn run(&mut self, lifetime: Duration, counters: impl CountSource, heap: &CountingAllocator) {
        let mut reported = false;
        // Ticks at whole seconds from the start, so samples do not drift.
        while self.started.elapsed() < lifetime {
            let next = self.started + Duration::from_secs(self.seq + 1);
            thread::sleep(next.saturating_duration_since(Instant::now()));
            self.seq += 1;
            if let Err(error) = self.write(&counters, heap)
                && !reported
            {
                eprintln!(
                    "stats: cannot write {} (reported once): {error}",
                    self.path.display()
                );
                reported = true;
            }
        }
    }

    fn write(&self, counters: &impl CountSource, heap: &CountingAllocator) -> io::Result<()> {
        let line = self.sample(counters, heap).to_line();
        fs::write(&self.tmp, line)?;
        fs::rename(&self.tmp, &self.path)
    }

    fn sample(&self, counters: &impl CountSource, heap: &CountingAllocator) -> Sample {
        let (connections, pings_sent, pongs_received) = counters.counts();
        let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
        let stat = fs::read_to_string("/proc/self/stat").unwrap_or_default();
        Sample {
            seq: self.seq,
            uptime_ms: u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            connections,
            pings_sent,
            pongs_received,
            live_heap_bytes: heap.live_bytes() as u64,
            live_allocations: heap.live_allocations(),
            allocations: heap.allocations(),
            rss_kib: vm_rss_kib(&status).unwrap_or(0),
            cpu_ticks: cpu_ticks(&stat).unwrap_or(0),
        }
    }
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    PathBuf::from(tmp)
}

/// `VmRSS` in KiB from the text of `/proc/<pid>/status`.
pub fn vm_rss_kib(status: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    line["VmRSS:".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// `utime + stime` (fields 14 and 15) from the text of `/proc/<pid>/stat`.
/// The command name (field 2) may contain spaces and parentheses, so fields
/// are counted after its last `)`.
pub fn cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

#[cfg(test)]
mod tests;
