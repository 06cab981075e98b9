//! The command line: which clients to run, against what, for how long.
//! Hand-parsed (`--flag value` or `--flag=value`) to keep dependencies few.

use std::{net::Ipv4Addr, path::PathBuf, time::Duration};

use anyhow::{Context, Result, bail};

use crate::mix::Mix;

pub(crate) const USAGE: &str = "\
vigil-loadgen: real WebSocket clients against a loopback server, one JSON report

USAGE:
    vigil-loadgen --url ws://127.0.0.1:PORT/PATH [OPTIONS]
    vigil-loadgen --url wss://127.0.0.1:PORT/PATH --ca-file CA.pem [OPTIONS]

OPTIONS:
    --ca-file PEM              with wss:// (healthy clients only): the
                               authority the server's certificate chains to
    --kind MIX                 what the clients do (default healthy): one kind,
                               or kinds by weight, e.g.
                               healthy=90,silent=5,half-open=4,slow-reader=1
                                 healthy      stay idle, answer every ping (and
                                              every {\"type\":\"ping\"} text)
                                 silent       healthy, then after --silent-after-ms
                                              read and write nothing (socket open)
                                 slow-reader  healthy, then after --silent-after-ms
                                              keep writing a small text message a
                                              second but read nothing
                                 half-open    healthy, through a built-in proxy
                                              that after --silent-after-ms stops
                                              forwarding both ways (sockets open)
                                 flapper      connect, stay about --flap-ms, close
                                              cleanly, reconnect, until the end
                                 publisher    publish to the --join channel every
                                              --publish-ms (vigil's protocol),
                                              reading and dropping all it gets
                               flooders: healthy until --abuse-at-ms, then for
                               --abuse-ms as fast as the server reads, reading
                               and counting every answer, reconnecting (and
                               rejoining --join) whenever the server closes them
                                 publish-flood    publish to their --join room
                                 presence-flood   ask their room's presence
                                 ping-flood       {\"op\":\"ping\"} requests
                                 wsping-flood     WebSocket ping frames
                                 join-flood       leave and join their room
                                 meta-flood       rejoin with a meta of the
                                                  largest size allowed (2,048 B),
                                                  then one over it, in turn
                                 malformed-flood  not JSON, then an unknown op
                                 slowloris        hold 16 sockets trickling an
                                                  HTTP request head, a header
                                                  line a second, never ending it
    --abuse-at-ms MS           when flooders start, from the run's start
                               (default 0); healthy clients' RTT probes are
                               split into the --abuse-ms before it and during it
    --abuse-ms MS              how long flooders flood (default 10000)
    --silent-after-ms MS       when silent, slow-reader and half-open clients
                               turn, counted from their handshake (default 5000)
    --flap-ms MS               a flapper's mean time connected (default 1000)
    --join CHANNEL             every client joins CHANNEL (vigil's protocol) after
                               its handshake; healthy ones then time each channel
                               message a publisher sent (report: messages)
    --channels K               with --join NAME: client i joins NAME-(i % K), K
                               rooms instead of one channel (default 1: NAME);
                               with publishers, each group (publishers, the
                               others) is spread over the rooms by its rank
    --publish-ms MS            a publisher's pause between messages (default 100)
    --publish-after-ms MS      publishers start MS after the run starts (default
                               0), e.g. once every subscriber has joined
    --reconnect-max-ms MS      healthy clients reconnect after the server ends
                               them: a random delay under 1 s, then exponential
                               backoff with full jitter from 100 ms, capped at MS
                               (they rejoin --join); without it they stay closed
    --probe-rtt-every K        healthy clients send a ping of their own after every
                               K-th ping of the server's and time its pong
                               (report: rtt); default 0, never
    --bound-ms MS              the server's detection bound (interval + timeout +
                               jitter): the report counts detections within it
    --connections N            clients to open (default 100); over 19,500 they are
                               spread over several processes, 1..=300000
    --processes N              run the clients in N child processes (client i in
                               process i % N; default: as few as hold 19,500 each),
                               whose reports this one merges into one
    --sources N                spread clients over source addresses 127.0.0.2 ..
                               127.0.0.(N+1), 1..=250 (default 4)
    --first-source K           the first source address is 127.0.0.K instead of
                               127.0.0.2 (flooders apart from bystanders)
    --rate R                   open R connections per second (default 1000)
    --hold S                   after the ramp, stay connected S seconds,
                               1..=21600 (default 60)
    --until-pings K            end the hold early once every open connection has
                               received K pings
    --ready-file PATH          write PATH (one JSON line: attempted, established,
                               failed) once every connection attempt has ended
    --status-file PATH         every second, replace PATH with one JSON line of
                               progress (elapsed_ms, attempted, established,
                               failed, open, closed_by_server, min_pings,
                               pings_total)
    --handshake-timeout-ms MS  connect + upgrade deadline (default 10000)

RECOVERY (--join channels with history, one process):
    --offsets track            healthy clients follow the offsets of their
                               channel's messages and re-join with the last one
                               as `since` (report: recovery)
    --drop-at-ms T             at T every healthy client drops its connection
                               (no close frame) and comes back as after a
                               server's end (needs --reconnect-max-ms)

BIG ROOMS (one --join channel, one process):
    --view-phases-ms A,B,...   healthy clients track their view of the channel's
                               presence (users counted, or listed) and count the
                               bytes they receive; the report splits both into
                               phases at these marks (report: room)
    --page-every K             one client in each block of K reads the member
                               list in pages of 1,000 once the counts say the
                               channel is whole and may be paged (again after a
                               reading that came up short)
    --churn-at-ms T            from T, for --churn-ms, each second
    --churn-ms L               --churn-percent of the healthy clients close
    --churn-percent P          cleanly and reconnect at once (each once at most,
                               so P divides 100 and L is at most 100/P s;
                               needs --reconnect-max-ms)

The report (one JSON document on stdout) is printed when the hold ends, on
SIGINT or SIGTERM too (forwarded to the child processes). One process holds at
most 20,000 open files here, hence the child processes; one source address
has about 28,000 ports, hence --sources.
";

/// Connections one process holds: 20,000 files a process here (a hard
/// limit, cannot be raised) less a margin for stdio, the runtime and the
/// report files.
pub(crate) const PER_PROCESS: u32 = 19_500;
/// Child processes at most, and so connections at most.
const MAX_PROCESSES: u32 = 16;
const MAX_CONNECTIONS: u32 = 300_000;
/// Ephemeral ports of one source address (`net.ipv4.ip_local_port_range`
/// 32768-60999 by default), less a margin for ports still in TIME_WAIT.
const PORTS_PER_SOURCE: u32 = 25_000;
const MAX_SOURCES: u8 = 250;
const MAX_HOLD_SECONDS: u64 = 6 * 3600;
const MAX_RATE: f64 = 100_000.0;

/// What one client does; see the usage for each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Kind {
    Healthy,
    Silent,
    SlowReader,
    HalfOpen,
    Flapper,
    Publisher,
    Flooder(Flood),
}

/// What a flooder does during the abuse (`--abuse-at-ms`, `--abuse-ms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Flood {
    Publish,
    Presence,
    Ping,
    WsPing,
    Join,
    Meta,
    Malformed,
    Slowloris,
}

impl Flood {
    pub(crate) const ALL: [Flood; 8] = [
        Flood::Publish,
        Flood::Presence,
        Flood::Ping,
        Flood::WsPing,
        Flood::Join,
        Flood::Meta,
        Flood::Malformed,
        Flood::Slowloris,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Flood::Publish => "publish-flood",
            Flood::Presence => "presence-flood",
            Flood::Ping => "ping-flood",
            Flood::WsPing => "wsping-flood",
            Flood::Join => "join-flood",
            Flood::Meta => "meta-flood",
            Flood::Malformed => "malformed-flood",
            Flood::Slowloris => "slowloris",
        }
    }

    /// Its place in [`Flood::ALL`].
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl Kind {
    pub(crate) const ALL: [Kind; 14] = [
        Kind::Healthy,
        Kind::Silent,
        Kind::SlowReader,
        Kind::HalfOpen,
        Kind::Flapper,
        Kind::Publisher,
        Kind::Flooder(Flood::Publish),
        Kind::Flooder(Flood::Presence),
        Kind::Flooder(Flood::Ping),
        Kind::Flooder(Flood::WsPing),
        Kind::Flooder(Flood::Join),
        Kind::Flooder(Flood::Meta),
        Kind::Flooder(Flood::Malformed),
        Kind::Flooder(Flood::Slowloris),
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Healthy => "healthy",
            Kind::Silent => "silent",
            Kind::SlowReader => "slow-reader",
            Kind::HalfOpen => "half-open",
            Kind::Flapper => "flapper",
            Kind::Publisher => "publisher",
            Kind::Flooder(flood) => flood.name(),
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|kind| kind.name() == name)
    }

    /// Whether the server is expected to close it: it stops answering.
    pub(crate) fn goes_quiet(self) -> bool {
        matches!(self, Kind::Silent | Kind::HalfOpen)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Options {
    pub(crate) mix: Mix,
    /// The certificate authority a `wss://` server's certificate must
    /// chain to (`--ca-file`).
    pub(crate) ca_file: Option<PathBuf>,
    pub(crate) silent_after: Duration,
    pub(crate) flap: Duration,
    pub(crate) bound: Option<Duration>,
    pub(crate) join: Option<String>,
    pub(crate) channels: u32,
    pub(crate) publish_every: Duration,
    pub(crate) publish_after: Duration,
    /// When flooders start, from the run's start, and for how long.
    pub(crate) abuse_at: Duration,
    pub(crate) abuse_for: Duration,
    pub(crate) reconnect_cap: Option<Duration>,
    pub(crate) probe_every: u32,
    pub(crate) target: Target,
    pub(crate) connections: u32,
    pub(crate) sources: u8,
    /// Last byte of the first source address (127.0.0.K).
    pub(crate) first_source: u8,
    pub(crate) rate: f64,
    pub(crate) hold: Duration,
    pub(crate) until_pings: Option<u32>,
    pub(crate) ready_file: Option<PathBuf>,
    pub(crate) status_file: Option<PathBuf>,
    pub(crate) handshake_timeout: Duration,
    /// Child processes the clients are spread over (1: this one).
    pub(crate) processes: u32,
    /// In a child process: which share of the clients it runs, and when (µs
    /// since the Unix epoch) the run started, so every process times
    /// connection `i` from the same instant.
    pub(crate) part: Option<Part>,
    pub(crate) epoch_unix_us: Option<u64>,
    /// Big-room tracking, paging and churn.
    pub(crate) room: RoomOptions,
    /// Offsets, `since`, and a drop of every client.
    pub(crate) recover: RecoverOptions,
}

/// `--part P/N`: this child process runs the clients whose index is P
/// modulo N.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Part {
    pub(crate) index: u32,
    pub(crate) of: u32,
}

impl Part {
    fn parse(value: &str) -> Result<Part> {
        let parsed = value
            .split_once('/')
            .and_then(|(index, of)| Some((index.parse().ok()?, of.parse().ok()?)));
        match parsed {
            Some((index, of)) if index < of && of <= MAX_PROCESSES => Ok(Part { index, of }),
            _ => bail!("`--part {value}` must be P/N with P < N <= {MAX_PROCESSES}"),
        }
    }
}

impl Options {
    /// Parses the arguments after the program name; `--help` is an error
    /// whose message is the usage.
    pub(crate) fn parse(args: impl IntoIterator<Item = String>) -> Result<Options> {
        let mut mix = Mix::only(Kind::Healthy);
        let mut silent_after = Duration::from_secs(5);
        let mut flap = Duration::from_secs(1);
        let mut bound = None;
        let mut join = None;
        let mut publish_every = Duration::from_millis(100);
        let mut reconnect_cap = None;
        let mut channels = 1;
        let mut publish_after = Duration::ZERO;
        let mut abuse_at = Duration::ZERO;
        let mut abuse_for = Duration::from_secs(10);
        let mut first_source: u8 = 2;
        let mut probe_every = 0;
        let millis = |flag: &str, value: &str, max: u64| -> Result<Duration> {
            let ms: u64 = value
                .parse()
                .with_context(|| format!("invalid value `{value}` for `{flag}`"))?;
            if !(1..=max).contains(&ms) {
                bail!("`{flag}` must be 1..={max} milliseconds, got {ms}");
            }
            Ok(Duration::from_millis(ms))
        };
        let mut url = None;
        let mut ca_file = None;
        let mut connections = 100;
        let mut sources = 4;
        let mut rate = 1000.0;
        let mut hold = Duration::from_secs(60);
        let mut until_pings = None;
        let mut ready_file = None;
        let mut status_file = None;
        let mut handshake_timeout = Duration::from_secs(10);
        let mut processes = None;
        let mut part = None;
        let mut epoch_unix_us = None;
        let mut room = RoomOptions::default();
        let mut recover = RecoverOptions::default();
        let mut args = args.into_iter();
        while let Some(word) = args.next() {
            if word == "--help" || word == "-h" {
                bail!("{USAGE}");
            }
            let (flag, inline) = match word.split_once('=') {
                Some((flag, value)) => (flag.to_owned(), Some(value.to_owned())),
                None => (word, None),
            };
            let Some(value) = inline.or_else(|| args.next()) else {
                bail!("`{flag}` needs a value (see --help)");
            };
            let context = || format!("invalid value `{value}` for `{flag}`");
            match flag.as_str() {
                "--kind" => {
                    mix = Mix::parse(&value).with_context(|| format!("`--kind {value}`"))?
                }
                "--silent-after-ms" => silent_after = millis(&flag, &value, 3_600_000)?,
                "--flap-ms" => flap = millis(&flag, &value, 600_000)?,
                "--bound-ms" => bound = Some(millis(&flag, &value, 3_600_000)?),
                "--publish-ms" => publish_every = millis(&flag, &value, 600_000)?,
                "--publish-after-ms" => publish_after = millis(&flag, &value, 3_600_000)?,
                "--abuse-at-ms" => abuse_at = millis(&flag, &value, 3_600_000)?,
                "--abuse-ms" => abuse_for = millis(&flag, &value, 3_600_000)?,
                "--first-source" => {
                    first_source = value
                        .parse()
                        .ok()
                        .filter(|k| (2..=254).contains(k))
                        .with_context(|| {
                            format!("`--first-source` must be 2..=254, got `{value}`")
                        })?;
                }
                "--probe-rtt-every" => {
                    probe_every =
                        value
                            .parse()
                            .ok()
                            .filter(|k| *k <= 1_000)
                            .with_context(|| {
                                format!("`--probe-rtt-every` must be 0..=1000, got `{value}`")
                            })?;
                }
                "--reconnect-max-ms" => reconnect_cap = Some(millis(&flag, &value, 600_000)?),
                "--channels" => {
                    channels = value
                        .parse()
                        .ok()
                        .filter(|k| (1..=100_000).contains(k))
                        .with_context(|| {
                            format!("`--channels` must be 1..=100000, got `{value}`")
                        })?;
                }
                "--join" => {
                    let valid = (1..=40).contains(&value.len())
                        && value
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"_-.:/".contains(&b));
                    if !valid {
                        bail!(
                            "`--join {value}`: a channel is 1 to 40 characters from A-Z a-z 0-9 \
                             _ - . : /"
                        );
                    }
                    join = Some(value);
                }
                "--url" => url = Some(Target::parse(&value)?),
                "--ca-file" => ca_file = Some(PathBuf::from(value)),
                "--connections" => {
                    connections = value.parse().with_context(context)?;
                    if !(1..=MAX_CONNECTIONS).contains(&connections) {
                        bail!("`--connections` must be 1..={MAX_CONNECTIONS}, got {connections}");
                    }
                }
                "--processes" => {
                    let n: u32 = value.parse().with_context(context)?;
                    if !(1..=MAX_PROCESSES).contains(&n) {
                        bail!("`--processes` must be 1..={MAX_PROCESSES}, got {n}");
                    }
                    processes = Some(n);
                }
                "--part" => part = Some(Part::parse(&value)?),
                "--epoch-unix-us" => epoch_unix_us = Some(value.parse().with_context(context)?),
                "--sources" => {
                    sources = value.parse().with_context(context)?;
                    if !(1..=MAX_SOURCES).contains(&sources) {
                        bail!("`--sources` must be 1..={MAX_SOURCES}, got {sources}");
                    }
                }
                "--rate" => {
                    rate = value.parse().with_context(context)?;
                    if !(1.0..=MAX_RATE).contains(&rate) {
                        bail!("`--rate` must be 1..={MAX_RATE} per second, got {value}");
                    }
                }
                "--hold" => {
                    let seconds: u64 = value.parse().with_context(context)?;
                    if !(1..=MAX_HOLD_SECONDS).contains(&seconds) {
                        bail!("`--hold` must be 1..={MAX_HOLD_SECONDS} seconds, got {seconds}");
                    }
                    hold = Duration::from_secs(seconds);
                }
                "--until-pings" => {
                    let k: u32 = value.parse().with_context(context)?;
                    if k == 0 {
                        bail!("`--until-pings` must be at least 1");
                    }
                    until_pings = Some(k);
                }
                "--ready-file" => ready_file = Some(PathBuf::from(value)),
                "--status-file" => status_file = Some(PathBuf::from(value)),
                "--handshake-timeout-ms" => {
                    let ms: u64 = value.parse().with_context(context)?;
                    if !(1..=600_000).contains(&ms) {
                        bail!("`--handshake-timeout-ms` must be 1..=600000, got {ms}");
                    }
                    handshake_timeout = Duration::from_millis(ms);
                }
                _ if room.take(&flag, &value)? => {}
                _ if recover.take(&flag, &value)? => {}
                _ => bail!("unknown option `{flag}` (see --help)"),
            }
        }
        let Some(target) = url else {
            bail!("`--url ws://127.0.0.1:PORT/PATH` is required (see --help)");
        };
        if target.tls {
            if ca_file.is_none() {
                bail!(
                    "a wss:// URL needs `--ca-file PEM`, the authority its certificate chains to"
                );
            }
            if !mix.only_of(Kind::Healthy) {
                bail!("wss:// is for healthy clients only (what an idle TLS connection costs)");
            }
        }
        if mix.has(Kind::Publisher) && join.is_none() {
            bail!("publishers need a channel: add `--join CHANNEL`");
        }
        let roomed = [Flood::Publish, Flood::Presence, Flood::Join, Flood::Meta];
        if roomed.iter().any(|&flood| mix.has(Kind::Flooder(flood))) && join.is_none() {
            bail!("publish, presence, join and meta flooders need a room: add `--join CHANNEL`");
        }
        if u16::from(first_source) + u16::from(sources) > 255 {
            bail!(
                "`--first-source {first_source}` with `--sources {sources}` runs past 127.0.0.254"
            );
        }
        let processes = processes.unwrap_or(connections.div_ceil(PER_PROCESS));
        if processes > connections {
            bail!("`--processes {processes}` for fewer connections ({connections})");
        }
        if connections.div_ceil(processes) > PER_PROCESS {
            bail!(
                "{connections} connections in {processes} processes is more than {PER_PROCESS} \
                 a process (20,000 open files per process here, a hard limit): use \
                 `--processes {}` or more",
                connections.div_ceil(PER_PROCESS)
            );
        }
        if connections > u32::from(sources) * PORTS_PER_SOURCE {
            bail!(
                "{connections} connections over {sources} source addresses is more than \
                 {PORTS_PER_SOURCE} ports each: use `--sources {}` or more",
                connections.div_ceil(PORTS_PER_SOURCE)
            );
        }
        if part.is_some() != epoch_unix_us.is_some() {
            bail!("`--part` and `--epoch-unix-us` go together (the parent process passes both)");
        }
        if let Some(part) = part
            && part.of != processes
        {
            bail!(
                "`--part {}/{}` with `--processes {processes}`",
                part.index,
                part.of
            );
        }
        room.check(
            join.as_deref(),
            channels,
            processes,
            reconnect_cap.is_some(),
        )?;
        recover.check(
            join.is_some(),
            processes,
            reconnect_cap.is_some(),
            room.phase_marks.is_some(),
        )?;
        Ok(Options {
            mix,
            ca_file,
            silent_after,
            flap,
            bound,
            join,
            channels,
            publish_every,
            publish_after,
            abuse_at,
            abuse_for,
            reconnect_cap,
            probe_every,
            target,
            connections,
            sources,
            first_source,
            rate,
            hold,
            until_pings,
            ready_file,
            status_file,
            handshake_timeout,
            processes,
            part,
            epoch_unix_us,
            room,
            recover,
        })
    }

    /// The connections this process runs itself: all of them, or with
    /// `--part P/N` those whose index is P modulo N.
    pub(crate) fn own_indices(&self) -> impl Iterator<Item = u32> + use<> {
        let (first, step) = self.part.map_or((0, 1), |part| (part.index, part.of));
        (first..self.connections).step_by(step as usize)
    }

    /// Source address of connection `index`: round-robin over the sources.
    pub(crate) fn source(&self, index: u32) -> Ipv4Addr {
        let offset = u8::try_from(index % u32::from(self.sources))
            .expect("index % sources < sources, which is a u8");
        // `parse` keeps first_source + sources <= 255.
        Ipv4Addr::new(127, 0, 0, self.first_source + offset)
    }
}

mod recover;
mod room;
mod target;
pub(crate) use recover::RecoverOptions;
pub(crate) use room::{MAX_PHASES, RoomOptions};
pub(crate) use target::Target;

#[cfg(test)]
mod tests;
