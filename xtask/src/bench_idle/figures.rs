//! What bench-idle reads and reports: the servers' stats lines, the CPU
//! time of the machine and of the load generator (how noisy the window was),
//! the headline figures computed from them, and their JSON and markdown forms.

use std::{fs, process::Command, time::Duration};

use anyhow::{Context, Result, bail};

use super::{Options, Server};

/// Everything one server's run produced.
#[derive(Debug)]
pub(super) struct Measured {
    pub(super) figures: Figures,
    pub(super) baseline: Sample,
    pub(super) start: Sample,
    pub(super) end: Sample,
    pub(super) loadgen_report: Option<String>,
    pub(super) wall: Duration,
}

/// `CLK_TCK`, the unit of `/proc` CPU times (100 on Linux).
pub(crate) fn clock_ticks_per_second() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .filter(|&ticks| ticks > 0)
        .unwrap_or(100)
}

/// The unsigned integer value of `"key":` in a flat JSON line (or in pretty
/// JSON whose keys are unique).
pub(crate) fn field(json: &str, key: &str) -> Option<u64> {
    let pattern = format!("\"{key}\":");
    let at = json.find(&pattern)? + pattern.len();
    let rest = json[at..].trim_start();
    let digits = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..digits].parse().ok()
}

/// One line of a server's stats file (benches/src/stats.rs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Sample {
    pub(super) line: String,
    pub(super) seq: u64,
    pub(super) uptime_ms: u64,
    pub(super) connections: u64,
    pub(super) pings_sent: u64,
    pub(super) live_heap_bytes: u64,
    pub(super) allocations: u64,
    pub(super) rss_kib: u64,
    pub(super) cpu_ticks: u64,
}

impl Sample {
    pub(super) fn parse(line: &str) -> Result<Sample> {
        let get = |key: &str| {
            field(line, key).with_context(|| format!("no `{key}` in `{}`", line.trim()))
        };
        Ok(Sample {
            line: line.trim().to_owned(),
            seq: get("seq")?,
            uptime_ms: get("uptime_ms")?,
            connections: get("connections")?,
            pings_sent: get("pings_sent")?,
            live_heap_bytes: get("live_heap_bytes")?,
            allocations: get("allocations")?,
            rss_kib: get("rss_kib")?,
            cpu_ticks: get("cpu_ticks")?,
        })
    }
}

/// CPU ticks spent by the whole machine (every core, not idle) and by the
/// load generator, read next to a server sample: what is left after the
/// server and the loadgen is other work on this shared machine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Noise {
    pub(super) machine_busy_ticks: u64,
    pub(super) loadgen_ticks: u64,
}

impl Noise {
    pub(super) fn read(loadgen_pid: u32) -> Noise {
        let read = |path: String| fs::read_to_string(path).unwrap_or_default();
        Noise {
            machine_busy_ticks: machine_busy_ticks(&read("/proc/stat".into())).unwrap_or(0),
            loadgen_ticks: process_cpu_ticks(&read(format!("/proc/{loadgen_pid}/stat")))
                .unwrap_or(0),
        }
    }
}

/// user + nice + system + irq + softirq + steal of `/proc/stat`'s `cpu` line
/// (guest time is already inside user).
pub(super) fn machine_busy_ticks(proc_stat: &str) -> Option<u64> {
    let line = proc_stat.lines().find(|line| line.starts_with("cpu "))?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|n| n.parse().ok())
        .collect::<Option<_>>()?;
    let at = |i: usize| ticks.get(i).copied().unwrap_or(0);
    Some(at(0) + at(1) + at(2) + at(5) + at(6) + at(7))
}

/// utime + stime (fields 14 and 15) of `/proc/<pid>/stat`, counted after the
/// command name's last `)` (it may hold spaces).
pub(super) fn process_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// The headline figures (CPU percentages are of one core).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Figures {
    pub(super) connections: u64,
    pub(super) heap_per_connection_bytes: f64,
    pub(super) rss_per_connection_kib: f64,
    pub(super) cpu_per_heartbeat_us: f64,
    pub(super) heartbeats_per_s: f64,
    pub(super) server_cpu_percent: f64,
    pub(super) allocations_per_heartbeat: f64,
    pub(super) loadgen_cpu_percent: f64,
    /// Neither the server nor the loadgen: builds, other sessions. High
    /// values make the CPU figure suspect.
    pub(super) other_cpu_percent: f64,
}

impl Figures {
    pub(super) const HEADER: &str = "\
| server | connections | heap / conn | RSS / conn | CPU / heartbeat | heartbeats/s | server CPU | allocs / heartbeat | other CPU | wall |
|---|---|---|---|---|---|---|---|---|---|";

    /// Memory from the baseline to the end of the window, per connection
    /// open at its end; CPU and pings over the window.
    pub(super) fn compute(
        baseline: &Sample,
        (start, noise_start): (&Sample, Noise),
        (end, noise_end): (&Sample, Noise),
        ticks_per_s: u64,
    ) -> Result<Figures> {
        let pings = end.pings_sent.saturating_sub(start.pings_sent);
        let seconds = end.uptime_ms.saturating_sub(start.uptime_ms) as f64 / 1000.0;
        if end.connections == 0 || pings == 0 || seconds <= 0.0 {
            bail!(
                "nothing to measure: {} connections, {pings} pings in {seconds} s",
                end.connections
            );
        }
        let per_connection =
            |to: u64, from: u64| (to as f64 - from as f64) / end.connections as f64;
        let ticks = |to: u64, from: u64| to.saturating_sub(from) as f64 / ticks_per_s as f64;
        let server_s = ticks(end.cpu_ticks, start.cpu_ticks);
        let loadgen_s = ticks(noise_end.loadgen_ticks, noise_start.loadgen_ticks);
        let machine_s = ticks(noise_end.machine_busy_ticks, noise_start.machine_busy_ticks);
        let percent = |cpu_s: f64| cpu_s * 100.0 / seconds;
        Ok(Figures {
            connections: end.connections,
            heap_per_connection_bytes: per_connection(
                end.live_heap_bytes,
                baseline.live_heap_bytes,
            ),
            rss_per_connection_kib: per_connection(end.rss_kib, baseline.rss_kib),
            cpu_per_heartbeat_us: server_s * 1e6 / pings as f64,
            heartbeats_per_s: pings as f64 / seconds,
            server_cpu_percent: percent(server_s),
            allocations_per_heartbeat: end.allocations.saturating_sub(start.allocations) as f64
                / pings as f64,
            loadgen_cpu_percent: percent(loadgen_s),
            other_cpu_percent: percent((machine_s - server_s - loadgen_s).max(0.0)),
        })
    }
}

impl Measured {
    pub(super) fn row(&self, server: Server) -> String {
        let f = &self.figures;
        format!(
            "| {} | {} | {:.0} B | {:.2} KiB | {:.1} us | {:.0} | {:.1} % | {:.2} | {:.0} % | {:.0} s |",
            server.name(),
            f.connections,
            f.heap_per_connection_bytes,
            f.rss_per_connection_kib,
            f.cpu_per_heartbeat_us,
            f.heartbeats_per_s,
            f.server_cpu_percent,
            f.allocations_per_heartbeat,
            f.other_cpu_percent,
            self.wall.as_secs_f64(),
        )
    }

    pub(super) fn to_json(&self, server: Server, options: &Options) -> String {
        let f = &self.figures;
        let loadgen = self.loadgen_report.as_deref().map_or_else(
            || "null".to_owned(),
            |report| report.trim().replace('\n', "\n  "),
        );
        format!(
            "{{\n  \"server\": \"{}\",\n  \"binary\": \"{}\",\n  \"connections\": {},\n  \
             \"interval_ms\": {},\n  \"heartbeats_before_window\": {},\n  \
             \"window_intervals\": {},\n  \
             \"heap_per_connection_bytes\": {:.1},\n  \"rss_per_connection_kib\": {:.3},\n  \
             \"cpu_per_heartbeat_us\": {:.2},\n  \"heartbeats_per_s\": {:.1},\n  \
             \"server_cpu_percent\": {:.2},\n  \"allocations_per_heartbeat\": {:.3},\n  \
             \"loadgen_cpu_percent\": {:.2},\n  \"other_cpu_percent\": {:.2},\n  \
             \"wall_s\": {:.1},\n  \"baseline\": {},\n  \"window_start\": {},\n  \
             \"window_end\": {},\n  \"loadgen\": {loadgen}\n}}\n",
            server.name(),
            server.binary(),
            f.connections,
            options.interval_ms,
            options.heartbeats,
            options.window_intervals(),
            f.heap_per_connection_bytes,
            f.rss_per_connection_kib,
            f.cpu_per_heartbeat_us,
            f.heartbeats_per_s,
            f.server_cpu_percent,
            f.allocations_per_heartbeat,
            f.loadgen_cpu_percent,
            f.other_cpu_percent,
            self.wall.as_secs_f64(),
            self.baseline.line,
            self.start.line,
            self.end.line,
        )
    }
}
