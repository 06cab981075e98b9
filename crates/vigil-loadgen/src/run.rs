//! The control loop: ramp the connections up at `--rate`, wait for every
//! attempt to end, hold, then summarize. Each phase has a deadline, and
//! SIGINT/SIGTERM end the run early with a report all the same.

use std::{
    fs,
    path::Path,
    sync::{
        Arc, OnceLock,
        atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed},
    },
    time::Duration,
};

use anyhow::{Context, Result, bail};
use tokio::{
    signal::unix::{SignalKind, signal},
    time::{Instant, sleep, sleep_until},
};

use crate::{
    cli::{Kind, Options},
    client, handshake,
    recovery::RecoveryTally,
    report::{
        AbuseTally, MessageLatency, Outcome, PartReport, ReconnectFailures, Report, Slot, Tally,
    },
    room::RoomTally,
};

/// What every connection task reads.
#[derive(Debug)]
pub(crate) struct Shared {
    /// For `wss://`: TLS trusting `--ca-file`.
    pub(crate) tls: Option<Arc<rustls::ClientConfig>>,
    /// The kind and slot of each connection this process runs, in index
    /// order (all of them, or with `--part P/N` indices P, P + N, ...).
    pub(crate) kinds: Box<[Kind]>,
    pub(crate) slots: Box<[Slot]>,
    /// The command line: what the clients do and against what.
    pub(crate) options: Options,
    /// Round trips of the clients' own pings (`--probe-rtt-every`): all of
    /// them, and those of the `--abuse-ms` before `--abuse-at-ms` and of
    /// the abuse itself.
    pub(crate) rtt: MessageLatency,
    pub(crate) rtt_before: MessageLatency,
    pub(crate) rtt_during: MessageLatency,
    /// What flooders did and were answered.
    pub(crate) abuse: AbuseTally,
    /// Failed reconnect attempts by reason.
    pub(crate) reconnect_failures: ReconnectFailures,
    /// Delivery latency of channel messages, over all subscribers.
    pub(crate) latency: MessageLatency,
    pub(crate) start: Instant,
    pub(crate) request: String,
    /// Why the first rejected handshake was rejected (`status 400`, ...).
    pub(crate) first_rejection: OnceLock<String>,
    /// Each client's view of its channel and the bytes it received
    /// (`--view-phases-ms`).
    pub(crate) room: Option<RoomTally>,
    /// Each client's place in its channel's messages (`--offsets track`).
    pub(crate) recovery: Option<RecoveryTally>,
    /// With `--channels K` and publishers: each connection's room, by its
    /// rank among its own group (publishers, or everyone else), so that K
    /// publishers cover K rooms and the others spread evenly over them,
    /// wherever the mix puts them. Empty: room `index % K`.
    pub(crate) rooms: Box<[usize]>,
}

impl Shared {
    /// A round trip of a client's own ping, answered `now_us` after the
    /// start of the run.
    pub(crate) fn record_rtt(&self, now_us: u64, rtt_us: u64) {
        self.rtt.record(now_us, rtt_us);
        let abuse_at = self.options.abuse_at.as_micros() as u64;
        if abuse_at == 0 {
            return;
        }
        let length = self.options.abuse_for.as_micros() as u64;
        if (abuse_at.saturating_sub(length)..abuse_at).contains(&now_us) {
            self.rtt_before.record(now_us, rtt_us);
        } else if (abuse_at..abuse_at + length).contains(&now_us) {
            self.rtt_during.record(now_us, rtt_us);
        }
    }

    /// The channel connection `index` joins: the `--join` name, or with
    /// `--channels K` one of K rooms named after it.
    pub(crate) fn channel_of(&self, index: usize) -> Option<String> {
        let name = self.options.join.as_ref()?;
        let channels = self.options.channels;
        Some(if channels > 1 {
            let room = self
                .rooms
                .get(index)
                .copied()
                .unwrap_or(index % channels as usize);
            format!("{name}-{room}")
        } else {
            name.clone()
        })
    }
}

const POLL: Duration = Duration::from_millis(100);
const STATUS_EVERY: Duration = Duration::from_secs(1);
/// Room for stdio, the runtime's own descriptors and the report files.
const SPARE_FILES: u64 = 64;

/// What a run prints: the report, or in a child process (`--part`) its
/// share for the parent to merge.
#[derive(Debug)]
pub(crate) enum Output {
    Report(Report),
    Part(PartReport),
}

/// Runs this process's clients on a current-thread runtime (one core: the
/// server under test keeps the other). Dropping the runtime at the end
/// closes every connection.
pub(crate) fn main(options: Options) -> Result<Output> {
    check_file_limit(options.own_indices().count())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot build the tokio runtime")?;
    runtime.block_on(control(options))
}

async fn control(options: Options) -> Result<Output> {
    let stop = Arc::new(AtomicBool::new(false));
    watch_signals(Arc::clone(&stop))?;
    let own: Vec<u32> = options.own_indices().collect();
    let every_kind = options.mix.assign(options.connections as usize);
    let tls = match &options.ca_file {
        Some(path) if options.target.tls => Some(tls_connector(path)?),
        _ => None,
    };
    let shared = Arc::new(Shared {
        tls,
        kinds: own
            .iter()
            .map(|&index| every_kind[index as usize])
            .collect(),
        slots: own.iter().map(|_| Slot::new()).collect(),
        latency: MessageLatency::new(),
        reconnect_failures: ReconnectFailures::default(),
        rtt: MessageLatency::new(),
        rtt_before: MessageLatency::new(),
        rtt_during: MessageLatency::new(),
        abuse: AbuseTally::default(),
        start: start_instant(options.epoch_unix_us),
        request: handshake::request(&options.target),
        first_rejection: OnceLock::new(),
        room: RoomTally::of(&options, own.len()),
        recovery: options
            .recover
            .track
            .then(|| RecoveryTally::new(options.connections as usize)),
        rooms: rooms_by_rank(&every_kind, options.channels),
        options: options.clone(),
    });
    if shared.room.is_some() {
        tokio::spawn(snapshot_at_marks(Arc::clone(&shared)));
    }
    let attempted = Arc::new(AtomicUsize::new(0));
    if let Some(path) = &options.status_file {
        write_status(path, &shared, &attempted)?;
        tokio::spawn(status_loop(
            path.clone(),
            Arc::clone(&shared),
            Arc::clone(&attempted),
        ));
    }

    // Ramp: connection i starts at i / rate (in whichever process runs it).
    let start = shared.start;
    for (local, &index) in own.iter().enumerate() {
        if stop.load(Relaxed) {
            break;
        }
        sleep_until(start + Duration::from_secs_f64(f64::from(index) / options.rate)).await;
        let source = options.source(index);
        tokio::spawn(client::run(
            Arc::clone(&shared),
            local,
            index as usize,
            source,
        ));
        attempted.store(local + 1, Relaxed);
    }
    let ramp_end = Instant::now();

    // Settle: every attempt connects or fails within the handshake timeout.
    let settle_deadline = ramp_end + options.handshake_timeout + Duration::from_secs(2);
    let tally = |shared: &Shared| Tally::of(&shared.slots[..attempted.load(Relaxed)]);
    while tally(&shared).pending > 0 && !stop.load(Relaxed) && Instant::now() < settle_deadline {
        sleep(POLL / 2).await;
    }
    let settled = tally(&shared);
    if let Some(path) = &options.ready_file {
        let line = format!(
            "{{\"attempted\":{},\"established\":{},\"failed\":{}}}\n",
            attempted.load(Relaxed),
            settled.established(),
            settled.failed
        );
        write_atomically(path, &line)?;
    }

    // Hold.
    let hold_start = Instant::now();
    let hold_end = hold_start + options.hold;
    let stopped_by = loop {
        let now = tally(&shared);
        if stop.load(Relaxed) {
            break "signal";
        }
        if options
            .until_pings
            .is_some_and(|k| now.open > 0 && now.min_pings_open >= k)
        {
            break "until_pings";
        }
        if now.open == 0 && now.pending == 0 {
            break "all_closed";
        }
        if Instant::now() >= hold_end {
            break "hold";
        }
        sleep(POLL).await;
    };

    let attempted = attempted.load(Relaxed);
    let slots = &shared.slots[..attempted];
    let ramp_s = (ramp_end - start).as_secs_f64();
    let hold_s = hold_start.elapsed().as_secs_f64();
    let first_rejection = shared.first_rejection.get().cloned();
    if options.part.is_some() {
        return Ok(Output::Part(PartReport {
            slots: slots.iter().map(Slot::to_record).collect(),
            latency: shared.latency.to_record(),
            rtt: shared.rtt.to_record(),
            rtt_before: shared.rtt_before.to_record(),
            rtt_during: shared.rtt_during.to_record(),
            abuse: shared.abuse.summary(),
            reconnect_failures: shared
                .reconnect_failures
                .summary()
                .into_iter()
                .map(|(name, count)| (name.to_owned(), count))
                .collect(),
            first_rejection,
            stopped_by: stopped_by.to_owned(),
            ramp_s,
            hold_s,
        }));
    }
    Ok(Output::Report(Report::new(
        &options,
        Outcome {
            slots,
            kinds: &shared.kinds[..attempted],
            stopped_by: stopped_by.to_owned(),
            ramp_s,
            hold_s,
            messages: shared.latency.summary(),
            rtt: shared.rtt.summary(),
            rtt_before: shared.rtt_before.summary(),
            rtt_during: shared.rtt_during.summary(),
            abuse: shared.abuse.summary(),
            reconnect_failures: shared.reconnect_failures.summary(),
            first_rejection,
            room: shared
                .room
                .as_ref()
                .map(|room| Box::new(room.report(client::ms_since(start)))),
            recovery: shared
                .recovery
                .as_ref()
                .map(|recovery| Box::new(recovery.report())),
        },
    )))
}

/// Each connection's room (see [`Shared::rooms`]); empty without
/// publishers, where room `index % channels` is the same.
fn rooms_by_rank(kinds: &[Kind], channels: u32) -> Box<[usize]> {
    let channels = channels.max(1) as usize;
    if !kinds.contains(&Kind::Publisher) {
        return Box::default();
    }
    let (mut publishers, mut others) = (0, 0);
    kinds
        .iter()
        .map(|&kind| {
            let rank = if kind == Kind::Publisher {
                &mut publishers
            } else {
                &mut others
            };
            *rank += 1;
            (*rank - 1) % channels
        })
        .collect()
}

/// Records the clients' views at each `--view-phases-ms` mark; ends with
/// the runtime.
async fn snapshot_at_marks(shared: Arc<Shared>) {
    let Some(room) = &shared.room else {
        return;
    };
    for &mark in room.marks() {
        sleep_until(shared.start + Duration::from_millis(mark.into())).await;
        room.take_snapshot();
    }
}

/// The instant the run started: now, or in a child process the parent's
/// start (`--epoch-unix-us`, on the wall clock every process shares), so
/// that every process ramps and times from the same moment.
fn start_instant(epoch_unix_us: Option<u64>) -> Instant {
    let now = Instant::now();
    let Some(epoch) = epoch_unix_us else {
        return now;
    };
    let wall = unix_micros();
    if epoch >= wall {
        now + Duration::from_micros(epoch - wall)
    } else {
        now.checked_sub(Duration::from_micros(wall - epoch))
            .unwrap_or(now)
    }
}

/// Microseconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn unix_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_micros()).unwrap_or(u64::MAX)
        })
}

fn watch_signals(stop: Arc<AtomicBool>) -> Result<()> {
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    tokio::spawn(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        stop.store(true, Relaxed);
    });
    Ok(())
}

/// Rewrites the status file every second; ends with the runtime.
async fn status_loop(path: std::path::PathBuf, shared: Arc<Shared>, attempted: Arc<AtomicUsize>) {
    let mut reported = false;
    loop {
        sleep(STATUS_EVERY).await;
        if let Err(error) = write_status(&path, &shared, &attempted)
            && !reported
        {
            eprintln!("vigil-loadgen: {error:#} (reported once)");
            reported = true;
        }
    }
}

fn write_status(path: &Path, shared: &Shared, attempted: &AtomicUsize) -> Result<()> {
    let attempted = attempted.load(Relaxed);
    let tally = Tally::of(&shared.slots[..attempted]);
    let attempted = u32::try_from(attempted).unwrap_or(u32::MAX);
    write_atomically(path, &tally.status_line(shared.start.elapsed(), attempted))
}

/// Readers never see a half-written file: write a sibling, then rename.
pub(crate) fn write_atomically(path: &Path, text: &str) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    fs::write(&tmp, text)
        .and_then(|()| fs::rename(&tmp, path))
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Fails early, with the fix, when the soft limit of open files cannot hold
/// the connections (otherwise they would fail one by one with EMFILE).
fn check_file_limit(connections: usize) -> Result<()> {
    let Ok(limits) = fs::read_to_string("/proc/self/limits") else {
        return Ok(());
    };
    let soft = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .and_then(|line| line.split_whitespace().nth(3))
        .and_then(|soft| soft.parse::<u64>().ok());
    if let Some(soft) = soft
        && soft < connections as u64 + SPARE_FILES
    {
        bail!(
            "{connections} connections need about {} open files, and this process may open \
             {soft}: raise the soft limit (`ulimit -n`) or run several processes",
            connections as u64 + SPARE_FILES
        );
    }
    Ok(())
}

/// A TLS connector trusting only the certificate authorities in `path`.
fn tls_connector(path: &std::path::Path) -> Result<Arc<rustls::ClientConfig>> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_file_iter(path)
        .with_context(|| format!("cannot read --ca-file {}", path.display()))?
    {
        let certificate =
            certificate.with_context(|| format!("--ca-file {}: not PEM", path.display()))?;
        roots
            .add(certificate)
            .with_context(|| format!("--ca-file {}: not a usable CA", path.display()))?;
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mix::Mix;

    #[test]
    fn every_room_gets_one_publisher_and_an_even_share_of_the_others() {
        let kinds = Mix::parse("healthy=99,publisher=1")
            .expect("valid")
            .assign(1_000);
        let rooms = rooms_by_rank(&kinds, 10);
        for room in 0..10 {
            let members = |kind: Kind| {
                kinds
                    .iter()
                    .zip(&rooms[..])
                    .filter(|&(&k, &r)| k == kind && r == room)
                    .count()
            };
            assert_eq!(members(Kind::Publisher), 1, "room {room}");
            assert_eq!(members(Kind::Healthy), 99, "room {room}");
        }
        let without = Mix::only(Kind::Healthy).assign(10);
        assert!(rooms_by_rank(&without, 4).is_empty(), "index % K then");
    }
}
