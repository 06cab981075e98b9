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
    report::{MessageLatency, ReconnectFailures, Report, Slot, Tally, by_kind, summarize},
};

/// What every connection task reads.
#[derive(Debug)]
pub(crate) struct Shared {
    /// The kind of each connection, by index.
    pub(crate) kinds: Box<[Kind]>,
    pub(crate) slots: Box<[Slot]>,
    /// The command line: what the clients do and against what.
    pub(crate) options: Options,
    /// Round trips of the clients' own pings (`--probe-rtt-every`).
    pub(crate) rtt: MessageLatency,
    /// Failed reconnect attempts by reason.
    pub(crate) reconnect_failures: ReconnectFailures,
    /// Delivery latency of channel messages, over all subscribers.
    pub(crate) latency: MessageLatency,
    pub(crate) start: Instant,
    pub(crate) request: String,
    /// Why the first rejected handshake was rejected (`status 400`, ...).
    pub(crate) first_rejection: OnceLock<String>,
}

impl Shared {
    /// The channel connection `index` joins: the `--join` name, or with
    /// `--channels K` one of K rooms named after it.
    pub(crate) fn channel_of(&self, index: usize) -> Option<String> {
        let name = self.options.join.as_ref()?;
        let channels = self.options.channels;
        Some(if channels > 1 {
            format!("{name}-{}", index % channels as usize)
        } else {
            name.clone()
        })
    }
}

const POLL: Duration = Duration::from_millis(100);
const STATUS_EVERY: Duration = Duration::from_secs(1);
/// Room for stdio, the runtime's own descriptors and the report files.
const SPARE_FILES: u64 = 64;

/// Runs the whole load on a current-thread runtime (one core: the server
/// under test keeps the other) and returns the report. Dropping the runtime
/// at the end closes every connection.
pub(crate) fn main(options: Options) -> Result<Report> {
    check_file_limit(options.connections)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot build the tokio runtime")?;
    runtime.block_on(control(options))
}

async fn control(options: Options) -> Result<Report> {
    let stop = Arc::new(AtomicBool::new(false));
    watch_signals(Arc::clone(&stop))?;
    let n = options.connections as usize;
    let shared = Arc::new(Shared {
        kinds: options.mix.assign(n).into(),
        slots: (0..n).map(|_| Slot::new()).collect(),
        latency: MessageLatency::new(),
        reconnect_failures: ReconnectFailures::default(),
        rtt: MessageLatency::new(),
        start: Instant::now(),
        request: handshake::request(&options.target),
        first_rejection: OnceLock::new(),
        options: options.clone(),
    });
    let attempted = Arc::new(AtomicUsize::new(0));
    if let Some(path) = &options.status_file {
        write_status(path, &shared, &attempted)?;
        tokio::spawn(status_loop(
            path.clone(),
            Arc::clone(&shared),
            Arc::clone(&attempted),
        ));
    }

    // Ramp: connection i starts at i / rate.
    let start = shared.start;
    for index in 0..n {
        if stop.load(Relaxed) {
            break;
        }
        sleep_until(start + Duration::from_secs_f64(index as f64 / options.rate)).await;
        let source = options.source(u32::try_from(index).expect("connections <= 19,500"));
        tokio::spawn(client::run(Arc::clone(&shared), index, source));
        attempted.store(index + 1, Relaxed);
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

    let end = tally(&shared);
    let attempted_slots = &shared.slots[..attempted.load(Relaxed)];
    let (handshake_ms, pings, failures, closes) = summarize(attempted_slots);
    let kinds = by_kind(attempted_slots, &shared.kinds, options.bound);
    Ok(Report {
        kind: options.mix.describe(),
        kinds,
        bound_ms: options.bound.map(|bound| bound.as_millis() as u64),
        url: format!("ws://{}{}", options.target.host, options.target.path),
        sources: options.sources,
        rate_per_s: options.rate,
        stopped_by,
        ramp_s: (ramp_end - start).as_secs_f64(),
        hold_s: hold_start.elapsed().as_secs_f64(),
        attempted: u32::try_from(attempted.load(Relaxed)).expect("connections <= 19,500"),
        established: end.established(),
        failed: end.failed,
        failures,
        open_at_end: end.open,
        closed_by_server: end.closed,
        closes,
        first_rejection: shared.first_rejection.get().cloned(),
        handshake_ms,
        pings,
        messages: shared.latency.summary(),
        rtt: shared.rtt.summary(),
        reconnect_failures: shared.reconnect_failures.summary(),
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
    let attempted = u32::try_from(attempted).expect("connections <= 19,500");
    write_atomically(path, &tally.status_line(shared.start.elapsed(), attempted))
}

/// Readers never see a half-written file: write a sibling, then rename.
fn write_atomically(path: &Path, text: &str) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    fs::write(&tmp, text)
        .and_then(|()| fs::rename(&tmp, path))
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Fails early, with the fix, when the soft limit of open files cannot hold
/// the connections (otherwise they would fail one by one with EMFILE).
fn check_file_limit(connections: u32) -> Result<()> {
    let Ok(limits) = fs::read_to_string("/proc/self/limits") else {
        return Ok(());
    };
    let soft = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .and_then(|line| line.split_whitespace().nth(3))
        .and_then(|soft| soft.parse::<u64>().ok());
    if let Some(soft) = soft
        && soft < u64::from(connections) + SPARE_FILES
    {
        bail!(
            "{connections} connections need about {} open files, and this process may open \
             {soft}: raise the soft limit (`ulimit -n`) or run several processes",
            u64::from(connections) + SPARE_FILES
        );
    }
    Ok(())
}
