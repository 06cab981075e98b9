//! The command line every idle-connection bench server accepts, parsed in one
//! place so `cargo xtask bench-idle` can start any of them the same way.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::{Context, Result, bail};

/// Usage text shared by the bench servers (`{name}` is the binary's name).
pub const USAGE: &str = "\
USAGE:
    {name} [--listen 127.0.0.1:PORT] [--interval-ms 5000] [--timeout-ms 10000]
           [--stats-file PATH] [--max-seconds 3600] [--http auto|http1]

    --listen ADDR       loopback address to listen on (default 127.0.0.1:9001)
    --interval-ms MS    ping every connection every MS milliseconds (default 5000)
    --timeout-ms MS     close a peer silent for interval + timeout (default 10000)
    --stats-file PATH   every second, replace PATH with one JSON line of stats
                        (see vigil_benches::stats)
    --max-seconds S     exit after S seconds, so a forgotten server cannot
                        outlive its benchmark (default 3600)
    --http auto         (vigil_ws_server) serve HTTP with hyper-util's auto
                        builder, as axum::serve does: the general stream
                        path instead of plain sockets (default http1)
";

/// The parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerArgs {
    pub listen: SocketAddr,
    pub interval: Duration,
    pub timeout: Duration,
    pub stats_file: Option<PathBuf>,
    pub max_lifetime: Duration,
    /// Serve HTTP with hyper-util's auto builder (`--http auto`).
    pub auto_builder: bool,
}

impl Default for ServerArgs {
    fn default() -> ServerArgs {
        ServerArgs {
            listen: SocketAddr::from(([127, 0, 0, 1], 9001)),
            interval: Duration::from_millis(5000),
            timeout: Duration::from_millis(10_000),
            stats_file: None,
            max_lifetime: Duration::from_secs(3600),
            auto_builder: false,
        }
    }
}

/// Generous upper bounds: they catch a unit mistake (seconds for ms), not taste.
const MAX_INTERVAL_MS: u64 = 3_600_000;
const MAX_SECONDS: u64 = 7 * 24 * 3600;

impl ServerArgs {
    /// Parses the arguments after the program name. `--help` is an error
    /// whose message is the usage, so callers print it and exit non-zero.
    pub fn parse(name: &str, args: impl IntoIterator<Item = String>) -> Result<ServerArgs> {
        let usage = || USAGE.replace("{name}", name);
        let mut parsed = ServerArgs::default();
        let mut args = args.into_iter();
        while let Some(flag) = args.next() {
            if flag == "--help" || flag == "-h" {
                bail!("{}", usage());
            }
            let (flag, inline) = match flag.split_once('=') {
                Some((flag, value)) => (flag.to_owned(), Some(value.to_owned())),
                None => (flag, None),
            };
            let Some(value) = inline.or_else(|| args.next()) else {
                bail!("`{flag}` needs a value\n\n{}", usage());
            };
            let context = || format!("invalid value `{value}` for `{flag}`");
            match flag.as_str() {
                "--listen" => {
                    let addr: SocketAddr = value.parse().with_context(context)?;
                    if !addr.ip().is_loopback() {
                        bail!(
                            "`--listen {addr}`: bench servers listen on loopback only \
                             (this machine has no other network)"
                        );
                    }
                    parsed.listen = addr;
                }
                "--interval-ms" => {
                    parsed.interval = millis(&value, 1).with_context(context)?;
                }
                "--timeout-ms" => {
                    parsed.timeout = millis(&value, 1).with_context(context)?;
                }
                "--stats-file" => parsed.stats_file = Some(PathBuf::from(value)),
                "--max-seconds" => {
                    let seconds = bounded(&value, 1, MAX_SECONDS).with_context(context)?;
                    parsed.max_lifetime = Duration::from_secs(seconds);
                }
                "--http" => {
                    parsed.auto_builder = match value.as_str() {
                        "auto" => true,
                        "http1" => false,
                        _ => bail!("`--http` is auto or http1, got `{value}`"),
                    }
                }
                _ => bail!("unknown option `{flag}`\n\n{}", usage()),
            }
        }
        Ok(parsed)
    }
}

fn millis(value: &str, min: u64) -> Result<Duration> {
    bounded(value, min, MAX_INTERVAL_MS).map(Duration::from_millis)
}

fn bounded(value: &str, min: u64, max: u64) -> Result<u64> {
    let number: u64 = value.parse().context("expected a whole number")?;
    if !(min..=max).contains(&number) {
        bail!("expected a number from {min} to {max}");
    }
    Ok(number)
}

#[cfg(test)]
mod tests;
