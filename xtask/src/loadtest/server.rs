//! The server under test: `vigil`, or a peer for `compare`, started on a
//! free loopback port (read back from what it prints), sampled from
//! `/proc` and, for vigil, its own `/metrics`; killed on drop.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpStream},
    process::{Command, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

use super::plan::Plan;
use crate::{bench_idle::clock_ticks_per_second, child::Child, cmd::project_root};

const START_TIMEOUT: Duration = Duration::from_secs(20);
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(10);

/// One look at the server.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sample {
    pub(crate) at: Instant,
    /// utime + stime, seconds.
    pub(crate) cpu_s: f64,
    pub(crate) rss_kib: u64,
    /// From `/metrics`.
    pub(crate) connections: u64,
    pub(crate) pings_sent: u64,
    /// Live heap bytes (the binary is built with `count-alloc`).
    pub(crate) heap_bytes: Option<u64>,
    /// utime + stime, seconds, of each connection shard thread, by thread
    /// id: whether the shards share the work, and how busy the busiest is.
    pub(crate) shard_cpu_s: Vec<(u64, f64)>,
}

#[derive(Debug)]
pub(crate) struct ServerProcess {
    child: Child,
    addr: SocketAddr,
    ticks_per_second: u64,
    /// Whether it serves vigil's `/metrics`.
    metrics: bool,
    /// With `--tls`: the authority its certificate chains to (`/metrics`
    /// is then scraped over TLS).
    tls_ca: Option<std::path::PathBuf>,
}

impl ServerProcess {
    /// Starts `vigil` listening on `listen` (port 0: any free port).
    pub(crate) fn start(plan: &Plan, listen: SocketAddr) -> Result<ServerProcess> {
        let binary = project_root().join("target/release/vigil");
        let mut command = Command::new(binary);
        command
            .arg("--listen")
            .arg(listen.to_string())
            .args(plan.server_args());
        let mut server = Self::spawn("vigil", command, true)?;
        server.tls_ca = plan.tls.as_ref().map(|tls| tls.ca.clone());
        Ok(server)
    }

    /// Starts a `vigil --cluster` node on `listen`, sharing the port with
    /// the other nodes (SO_REUSEPORT).
    pub(crate) fn start_node(
        plan: &Plan,
        listen: SocketAddr,
        redis_url: &str,
    ) -> Result<ServerProcess> {
        let binary = project_root().join("target/release/vigil");
        let mut command = Command::new(binary);
        command
            .arg("--listen")
            .arg(listen.to_string())
            .args(plan.server_args())
            .args(["--reuse-port", "--cluster", redis_url]);
        Self::spawn("vigil", command, true)
    }

    /// Files it holds open (`/proc/PID/fd`): its connections, plus a few.
    /// Unlike `/metrics` it reaches this process even when several share
    /// the port.
    pub(crate) fn open_files(&self) -> Result<u64> {
        let entries = std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .context("cannot list the server's /proc/PID/fd")?;
        Ok(entries.count() as u64)
    }

    /// Starts `command`, which prints `address=ADDR` (vigil's log) or
    /// `listening on ADDR` (the bench servers and peers) once it listens.
    pub(crate) fn spawn(
        name: &'static str,
        mut command: Command,
        metrics: bool,
    ) -> Result<ServerProcess> {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = Child::spawn(name, &mut command)?;
        let (lines, received) = mpsc::channel();
        let stdout = child.take_stdout()?;
        let stderr = child.take_stderr()?;
        for pipe in [
            Box::new(stdout) as Box<dyn Read + Send>,
            Box::new(stderr) as Box<dyn Read + Send>,
        ] {
            let lines = lines.clone();
            thread::spawn(move || {
                // Forwards the output until the process ends.
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    eprintln!("[{name}] {line}");
                    let _ = lines.send(line);
                }
            });
        }
        // Only the readers send: a process that ends before it listens
        // disconnects the channel at once instead of running out the clock.
        drop(lines);
        let deadline = Instant::now() + START_TIMEOUT;
        let addr = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = received
                .recv_timeout(left)
                .with_context(|| format!("{name} did not print its listening address in time"))?;
            if let Some(addr) = listening_address(&line) {
                break addr
                    .parse()
                    .with_context(|| format!("not an address: {line}"))?;
            }
        };
        Ok(ServerProcess {
            child,
            addr,
            ticks_per_second: clock_ticks_per_second(),
            metrics,
            tls_ca: None,
        })
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub(crate) fn check_alive(&mut self) -> Result<()> {
        self.child.check_alive()
    }

    /// `kill -SIGNAL` (STOP, CONT).
    pub(crate) fn signal(&self, signal: &str) -> Result<()> {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .context("cannot run kill(1)")?;
        if !status.success() {
            bail!("kill -{signal} failed: {status}");
        }
        Ok(())
    }

    /// Whether it has ended (no error: it may be expected to).
    pub(crate) fn has_exited(&mut self) -> Result<bool> {
        Ok(self.child.wait_timeout(Duration::ZERO)?.is_some())
    }

    /// SIGKILL, and waits until the process is gone (its port free).
    pub(crate) fn kill(&mut self) -> Result<()> {
        self.signal("KILL")?;
        if self.child.wait_timeout(Duration::from_secs(10))?.is_none() {
            bail!("vigil still running 10 s after SIGKILL");
        }
        Ok(())
    }

    /// `/metrics`, the whole scrape.
    pub(crate) fn metrics(&self) -> Result<String> {
        scrape(self.addr, self.tls_ca.as_deref())
    }

    /// `/metrics` as `(connections, presence members)`.
    pub(crate) fn connections_and_members(&self) -> Result<(u64, u64)> {
        let metrics = self.metrics()?;
        Ok((
            series(&metrics, "vigil_connections")?,
            series(&metrics, "vigil_presence_members")?,
        ))
    }

    /// CPU time (s) and RSS (KiB) from `/proc`.
    pub(crate) fn cpu_and_rss(&self) -> Result<(f64, u64)> {
        let pid = self.child.id();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .context("cannot read the server's /proc/PID/stat")?;
        let ticks = stat_cpu_ticks(&stat)?;
        let rss_kib = self.status_kib("VmRSS")?;
        Ok((ticks as f64 / self.ticks_per_second as f64, rss_kib))
    }

    /// Its peak RSS so far (KiB), `VmHWM` in `/proc`.
    pub(crate) fn peak_rss_kib(&self) -> Result<u64> {
        self.status_kib("VmHWM")
    }

    /// A field of `/proc/PID/status` in KiB (`VmRSS`, `VmHWM`).
    fn status_kib(&self, field: &str) -> Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .context("cannot read the server's /proc/PID/status")?;
        status
            .lines()
            .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse().ok())
            .with_context(|| format!("no {field} in /proc/PID/status"))
    }

    /// CPU seconds of each vigil-ws shard thread (`/proc/PID/task/*`; the
    /// kernel cuts thread names to 15 bytes: `vigil-ws-shard-`).
    fn shard_threads_cpu(&self) -> Result<Vec<(u64, f64)>> {
        let pid = self.child.id();
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
            .context("cannot list the server's /proc/PID/task")?;
        let mut shards = Vec::new();
        for task in tasks.filter_map(Result::ok) {
            let path = task.path();
            let Ok(comm) = std::fs::read_to_string(path.join("comm")) else {
                continue; // the thread ended meanwhile
            };
            if !comm.starts_with("vigil-ws-shard") {
                continue;
            }
            let Ok(stat) = std::fs::read_to_string(path.join("stat")) else {
                continue;
            };
            let ticks = stat_cpu_ticks(&stat)?;
            let tid = task.file_name().to_string_lossy().parse().unwrap_or(0);
            shards.push((tid, ticks as f64 / self.ticks_per_second as f64));
        }
        shards.sort_by_key(|&(tid, _)| tid);
        Ok(shards)
    }

    pub(crate) fn sample(&self) -> Result<Sample> {
        let (cpu_s, rss_kib) = self.cpu_and_rss()?;
        let at = Instant::now();
        if !self.metrics {
            return Ok(Sample {
                at,
                cpu_s,
                rss_kib,
                connections: 0,
                pings_sent: 0,
                heap_bytes: None,
                shard_cpu_s: Vec::new(),
            });
        }
        let metrics = scrape(self.addr, self.tls_ca.as_deref())?;
        let shard_cpu_s = self.shard_threads_cpu()?;
        Ok(Sample {
            shard_cpu_s,
            at,
            cpu_s,
            rss_kib,
            connections: series(&metrics, "vigil_connections")?,
            pings_sent: series(&metrics, "vigil_heartbeat_pings_sent_total")?,
            heap_bytes: series(&metrics, "vigil_heap_live_bytes").ok(),
        })
    }
}

/// utime + stime, in clock ticks, of a `/proc/PID/stat` (or a thread's
/// `/proc/PID/task/TID/stat`) line.
fn stat_cpu_ticks(stat: &str) -> Result<u64> {
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .context("no command name in /proc/PID/stat")?
        .1
        .split_whitespace()
        .collect();
    // utime and stime are fields 14 and 15 of the line, 11 and 12 after
    // the command name.
    Ok(fields
        .get(11..13)
        .context("short /proc/PID/stat")?
        .iter()
        .map(|field| field.parse::<u64>().unwrap_or(0))
        .sum())
}

/// The address in `address=ADDR` or `listening on ADDR[,...]`.
fn listening_address(line: &str) -> Option<&str> {
    let rest = line
        .split("address=")
        .nth(1)
        .or_else(|| line.split("listening on ").nth(1))?;
    rest.split([' ', ','])
        .next()
        .filter(|addr| !addr.is_empty())
}

/// The value of an unlabelled series in a scrape.
pub(super) fn series(metrics: &str, name: &str) -> Result<u64> {
    let prefix = format!("{name} ");
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .and_then(|value| value.trim().parse().ok())
        .with_context(|| format!("no {name} in /metrics"))
}

/// `GET /metrics`, the body; over TLS trusting `tls_ca` when given.
pub(super) fn scrape(addr: SocketAddr, tls_ca: Option<&std::path::Path>) -> Result<String> {
    let stream = TcpStream::connect(addr).context("cannot reach vigil for /metrics")?;
    stream.set_read_timeout(Some(SCRAPE_TIMEOUT))?;
    let request = format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    let mut bytes = Vec::new();
    match tls_ca {
        None => {
            let mut stream = stream;
            stream.write_all(request.as_bytes())?;
            stream
                .read_to_end(&mut bytes)
                .context("cannot read /metrics")?;
        }
        Some(ca) => {
            let mut stream = super::tls::client(ca, addr, stream)?;
            stream.write_all(request.as_bytes())?;
            // A close without close_notify after the whole response is fine.
            if let Err(error) = stream.read_to_end(&mut bytes)
                && bytes.is_empty()
            {
                return Err(error).context("cannot read /metrics over TLS");
            }
        }
    }
    let response = String::from_utf8_lossy(&bytes).into_owned();
    let (head, body) = response
        .split_once("\r\n\r\n")
        .context("no end of the /metrics response head")?;
    if !head.starts_with("HTTP/1.1 200") {
        bail!("/metrics answered {}", head.lines().next().unwrap_or(""));
    }
    Ok(body.to_owned())
}

#[cfg(test)]
mod tests {
    use super::listening_address;

    #[test]
    fn the_address_is_read_from_each_servers_own_words() {
        for (line, addr) in [
            (
                "2026-11-27T05:06:37Z INFO vigil listening; WebSocket endpoint /ws address=127.0.0.1:41795",
                "127.0.0.1:41795",
            ),
            (
                "naive_ws_server: listening on 127.0.0.1:39207, ping every 5s",
                "127.0.0.1:39207",
            ),
            ("listening on 127.0.0.1:9001", "127.0.0.1:9001"),
        ] {
            assert_eq!(listening_address(line), Some(addr), "{line}");
        }
        assert_eq!(listening_address("starting up"), None);
    }
}
