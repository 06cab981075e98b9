//! `cargo xtask bench-idle`: the headline figures of issue #3, memory and CPU
//! per idle heartbeating connection, for the naive baseline server and the
//! vigil-ws one, measured the same way in the same run.
//!
//! Method: build the release binaries; start the server (`--stats-file`, see
//! `benches/src/stats.rs`) and take its baseline heap and RSS; open N healthy
//! clients with one `vigil-loadgen` process; wait until every connection has
//! received `--heartbeats` pings; then over a steady window of `WINDOW`
//! intervals take the server's CPU time (utime + stime) and pings sent, both
//! from the server's own samples so they line up. Results go to
//! `target/bench-idle/<server>.json` and a markdown row on stdout.

mod figures;

pub(crate) use self::figures::{clock_ticks_per_second, field};

use std::{
    fs,
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

use self::figures::{Figures, Measured, Noise, Sample};
use crate::child::Child;
use crate::cmd::{self, cargo, project_root};

/// Intervals in the measured window.
const WINDOW: u32 = 4;
/// The window lasts at least this long, whatever the interval: CPU time is
/// read in 10 ms ticks and samples come once a second.
const MIN_WINDOW: Duration = Duration::from_secs(20);
/// One loadgen process holds at most this many connections (20,000 files).
const MAX_CONNECTIONS: u32 = 19_000;
const RATE: u32 = 2000;
const SOURCES: u32 = 4;
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(100);
const FRESH_SAMPLE: Duration = Duration::from_secs(5);
const VIGIL_SOURCE: &str = "benches/src/bin/vigil_ws_server.rs";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Server {
    Naive,
    Vigil,
    /// vigil-ws behind hyper-util's auto builder (`axum::serve`'s): the
    /// general stream path.
    VigilStream,
}

impl Server {
    fn name(self) -> &'static str {
        match self {
            Server::Naive => "naive",
            Server::Vigil => "vigil",
            Server::VigilStream => "vigil-stream",
        }
    }

    fn binary(self) -> &'static str {
        match self {
            Server::Naive => "naive_ws_server",
            Server::Vigil | Server::VigilStream => "vigil_ws_server",
        }
    }

    /// Arguments after the common ones.
    fn extra_args(self) -> &'static [&'static str] {
        match self {
            Server::VigilStream => &["--http", "auto"],
            Server::Naive | Server::Vigil => &[],
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Options {
    servers: Vec<Server>,
    connections: u32,
    interval_ms: u64,
    heartbeats: u32,
}

const USAGE: &str = "usage: cargo xtask bench-idle [--server naive|vigil|vigil-stream|both|all] \
                     [--connections N] [--interval-ms MS] [--heartbeats K] [--quick]";

impl Options {
    /// `--quick` (CI) means 2000 connections and 3 heartbeats unless
    /// `--connections` or `--heartbeats` say otherwise, in any order.
    pub(crate) fn parse(args: &[String]) -> Result<Options> {
        let mut servers = vec![Server::Naive, Server::Vigil];
        let (mut connections, mut interval_ms, mut heartbeats) = (None, 5000, None);
        let mut quick = false;
        let mut args = args.iter();
        while let Some(flag) = args.next() {
            if flag == "--quick" {
                quick = true;
                continue;
            }
            let Some(value) = args.next() else {
                bail!("`{flag}` needs a value\n{USAGE}");
            };
            let number = |min: u64, max: u64| -> Result<u64> {
                match value.parse::<u64>() {
                    Ok(n) if (min..=max).contains(&n) => Ok(n),
                    _ => bail!("`{flag}` takes a whole number from {min} to {max}, got `{value}`"),
                }
            };
            match flag.as_str() {
                "--server" => {
                    servers = match value.as_str() {
                        "naive" => vec![Server::Naive],
                        "vigil" => vec![Server::Vigil],
                        "vigil-stream" => vec![Server::VigilStream],
                        "both" => vec![Server::Naive, Server::Vigil],
                        "all" => vec![Server::Naive, Server::Vigil, Server::VigilStream],
                        _ => bail!(
                            "`--server` is naive, vigil, vigil-stream, both or all, got `{value}`"
                        ),
                    }
                }
                "--connections" => {
                    connections = Some(number(1, MAX_CONNECTIONS.into())? as u32);
                }
                "--interval-ms" => interval_ms = number(100, 60_000)?,
                "--heartbeats" => heartbeats = Some(number(1, 1000)? as u32),
                _ => bail!("unknown argument `{flag}`\n{USAGE}"),
            }
        }
        Ok(Options {
            servers,
            connections: connections.unwrap_or(if quick { 2000 } else { MAX_CONNECTIONS }),
            interval_ms,
            heartbeats: heartbeats.unwrap_or(if quick { 3 } else { 20 }),
        })
    }

    fn interval(&self) -> Duration {
        Duration::from_millis(self.interval_ms)
    }

    /// The loadgen ends by itself once every connection has this many pings:
    /// at least 10 s more than the window can bring, so it outlives it.
    fn until_pings(&self) -> u32 {
        self.heartbeats + self.window_intervals() + self.intervals_in(MIN_WINDOW / 2).max(2)
    }

    /// How many intervals fit in `span`, rounded up.
    fn intervals_in(&self, span: Duration) -> u32 {
        let needed = span
            .as_millis()
            .div_ceil(u128::from(self.interval_ms.max(1)));
        u32::try_from(needed).unwrap_or(u32::MAX)
    }

    /// Intervals in the measured window: `WINDOW`, or more for short
    /// intervals so the window lasts `MIN_WINDOW`.
    fn window_intervals(&self) -> u32 {
        WINDOW.max(self.intervals_in(MIN_WINDOW))
    }

    fn ramp(&self) -> Duration {
        Duration::from_secs_f64(f64::from(self.connections) / f64::from(RATE))
    }

    fn ready_timeout(&self) -> Duration {
        self.ramp() + HANDSHAKE_TIMEOUT + Duration::from_secs(30)
    }

    fn heartbeats_timeout(&self) -> Duration {
        self.interval() * (self.heartbeats + 2) + Duration::from_secs(60)
    }

    fn exit_timeout(&self) -> Duration {
        self.interval() * 4 + Duration::from_secs(30)
    }

    /// Bounds on the children's own lifetimes, should this process die
    /// without killing them.
    fn loadgen_hold(&self) -> Duration {
        self.interval() * (self.until_pings() + 6) + Duration::from_secs(60)
    }

    fn server_lifetime(&self) -> Duration {
        self.ready_timeout()
            + self.heartbeats_timeout()
            + self.interval() * self.window_intervals()
            + self.exit_timeout()
            + Duration::from_secs(120)
    }
}

pub(crate) fn run(options: &Options) -> Result<()> {
    if options.servers.iter().any(|s| *s != Server::Naive)
        && !project_root().join(VIGIL_SOURCE).exists()
    {
        bail!(
            "the vigil bench server is not written yet: {VIGIL_SOURCE} must exist, with the \
             command line and stats file of naive_ws_server (vigil_benches::server_args and \
             vigil_benches::stats); until then use `--server naive`"
        );
    }
    cmd::run(cargo().args([
        "build",
        "--release",
        "--locked",
        "-p",
        "vigil-loadgen",
        "-p",
        "vigil-benches",
        "--bins",
    ]))?;
    let release = target_dir().join("release");
    let out = target_dir().join("bench-idle");
    fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut rows = Vec::new();
    for &server in &options.servers {
        eprintln!(
            "==> bench-idle {}: {} connections, ping every {} ms, {} heartbeats, then a {}-interval window",
            server.name(),
            options.connections,
            options.interval_ms,
            options.heartbeats,
            options.window_intervals()
        );
        let measured = measure(server, options, &release, &out)
            .with_context(|| format!("bench-idle of the {} server failed", server.name()))?;
        let path = out.join(format!("{}.json", server.name()));
        fs::write(&path, measured.to_json(server, options))
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("==> wrote {}", path.display());
        rows.push(measured.row(server));
    }
    println!("{}", Figures::HEADER);
    for row in rows {
        println!("{row}");
    }
    Ok(())
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| project_root().join("target"))
}

fn measure(server: Server, options: &Options, release: &Path, out: &Path) -> Result<Measured> {
    let started = Instant::now();
    let file = |what: &str| out.join(format!("{}.{what}.json", server.name()));
    let (stats, ready, status) = (file("stats"), file("ready"), file("status"));
    for path in [&stats, &ready, &status] {
        let _ = fs::remove_file(path);
    }
    let port = free_port()?;
    let mut server_cmd = Command::new(release.join(server.binary()));
    server_cmd
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--interval-ms")
        .arg(options.interval_ms.to_string())
        .arg("--stats-file")
        .arg(&stats)
        .arg("--max-seconds")
        .arg(options.server_lifetime().as_secs().to_string())
        .args(server.extra_args());
    let mut server_child = Child::spawn(server.binary(), &mut server_cmd)?;

    // Startup: the first sample says the server listens; the baseline is
    // the one after it.
    wait_sample(
        &stats,
        &mut [&mut server_child],
        None,
        Duration::from_secs(15),
    )
    .context("the server wrote no stats sample (is it listening?)")?;
    let baseline = fresh_sample(&stats, &mut server_child)?;

    let mut loadgen_cmd = Command::new(release.join("vigil-loadgen"));
    loadgen_cmd
        .arg("--url")
        .arg(format!("ws://127.0.0.1:{port}/"))
        .args(["--kind", "healthy", "--connections"])
        .arg(options.connections.to_string())
        .arg("--sources")
        .arg(SOURCES.to_string())
        .arg("--rate")
        .arg(RATE.to_string())
        .arg("--hold")
        .arg(options.loadgen_hold().as_secs().to_string())
        .arg("--until-pings")
        .arg(options.until_pings().to_string())
        .arg("--handshake-timeout-ms")
        .arg(HANDSHAKE_TIMEOUT.as_millis().to_string())
        .arg("--ready-file")
        .arg(&ready)
        .arg("--status-file")
        .arg(&status)
        .stdout(Stdio::piped());
    let mut loadgen = Child::spawn("vigil-loadgen", &mut loadgen_cmd)?;

    let ready_line = wait_file(
        &ready,
        &mut [&mut server_child, &mut loadgen],
        options.ready_timeout(),
    )
    .context("the connections were not all attempted in time")?;
    let established = field(&ready_line, "established").unwrap_or(0);
    if established < u64::from(options.connections) {
        bail!(
            "only {established} of {} connections were established ({}); see the loadgen's stderr",
            options.connections,
            ready_line.trim()
        );
    }
    eprintln!(
        "==> {established} connections established; waiting for {} heartbeats each",
        options.heartbeats
    );
    wait_heartbeats(&status, options, &mut [&mut server_child, &mut loadgen])?;

    let start = fresh_sample(&stats, &mut server_child)?;
    let noise_start = Noise::read(loadgen.id());
    eprintln!(
        "==> window of {} s",
        (options.interval() * options.window_intervals()).as_secs_f64()
    );
    let window_end = Instant::now() + options.interval() * options.window_intervals();
    while Instant::now() < window_end {
        server_child.check_alive()?;
        loadgen.check_alive()?;
        thread::sleep(POLL.min(window_end.saturating_duration_since(Instant::now())));
    }
    let end = fresh_sample(&stats, &mut server_child)?;
    let noise_end = Noise::read(loadgen.id());

    let loadgen_report = match loadgen.wait_timeout(options.exit_timeout())? {
        Some(_) => Some(loadgen.stdout()?),
        None => {
            eprintln!("warning: vigil-loadgen did not end in time; its report is missing");
            None
        }
    };
    if let Some(report) = &loadgen_report
        && field(report, "closed_by_server").is_some_and(|closed| closed > 0)
    {
        eprintln!(
            "warning: the server closed healthy clients: {}",
            report.trim()
        );
    }
    let figures = Figures::compute(
        &baseline,
        (&start, noise_start),
        (&end, noise_end),
        clock_ticks_per_second(),
    )?;
    Ok(Measured {
        figures,
        baseline,
        start,
        end,
        loadgen_report,
        wall: started.elapsed(),
    })
}

fn wait_heartbeats(status: &Path, options: &Options, children: &mut [&mut Child]) -> Result<()> {
    let deadline = Instant::now() + options.heartbeats_timeout();
    let mut last = String::new();
    loop {
        for child in children.iter_mut() {
            child.check_alive()?;
        }
        // A line written before the ramp ended is stale: skip it.
        if let Ok(line) = fs::read_to_string(status)
            && field(&line, "established").unwrap_or(0) >= u64::from(options.connections)
        {
            if field(&line, "closed_by_server").unwrap_or(0) > 0 {
                bail!("the server closed healthy clients: {}", line.trim());
            }
            if field(&line, "min_pings").is_some_and(|n| n >= u64::from(options.heartbeats)) {
                return Ok(());
            }
            last = line;
        }
        if Instant::now() >= deadline {
            bail!(
                "not every connection got {} pings within {:?}; last status: {}",
                options.heartbeats,
                options.heartbeats_timeout(),
                last.trim()
            );
        }
        thread::sleep(POLL);
    }
}

/// The sample written after the current one, read just after it is written
/// so that readings taken next to it (`Noise`) line up.
fn fresh_sample(path: &Path, server: &mut Child) -> Result<Sample> {
    let current = wait_sample(path, &mut [&mut *server], None, FRESH_SAMPLE)?;
    wait_sample(path, &mut [server], Some(current.seq), FRESH_SAMPLE)
}

/// Waits for a stats sample with `seq` above `after` (any sample if `None`).
fn wait_sample(
    path: &Path,
    children: &mut [&mut Child],
    after: Option<u64>,
    timeout: Duration,
) -> Result<Sample> {
    let deadline = Instant::now() + timeout;
    loop {
        for child in children.iter_mut() {
            child.check_alive()?;
        }
        if let Ok(line) = fs::read_to_string(path) {
            let sample = Sample::parse(&line)
                .with_context(|| format!("bad stats line in {}", path.display()))?;
            if after.is_none_or(|after| sample.seq > after) {
                return Ok(sample);
            }
        }
        if Instant::now() >= deadline {
            bail!(
                "no fresh stats sample in {} within {timeout:?}",
                path.display()
            );
        }
        thread::sleep(Duration::from_millis(20));
    }
}

fn wait_file(path: &Path, children: &mut [&mut Child], timeout: Duration) -> Result<String> {
    let deadline = Instant::now() + timeout;
    loop {
        for child in children.iter_mut() {
            child.check_alive()?;
        }
        if let Ok(text) = fs::read_to_string(path) {
            return Ok(text);
        }
        if Instant::now() >= deadline {
            bail!("{} did not appear within {timeout:?}", path.display());
        }
        thread::sleep(POLL);
    }
}

/// A port free right now on 127.0.0.1 (the server binds it a moment later).
fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("cannot bind 127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

#[cfg(test)]
mod tests;
