//! The Redis of the `cluster` scenario: Debian's `redis-server` (installed
//! as every xtask installs system packages) on a free loopback port, no
//! persistence, killed on drop; and its command counter, read with `INFO`.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{TcpListener, TcpStream},
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

use crate::child::Child;

#[derive(Debug)]
pub(crate) struct RedisServer {
    // Killed when dropped (the Child wrapper does it).
    _child: Child,
    port: u16,
}

impl RedisServer {
    pub(crate) fn start() -> Result<RedisServer> {
        crate::install::redis_server()?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let child = Child::spawn(
            "redis-server",
            Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no", "--maxclients", "1000"])
                .stdout(Stdio::null()),
        )?;
        let server = RedisServer {
            _child: child,
            port,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while server.commands_processed().is_err() {
            if Instant::now() >= deadline {
                bail!("redis-server did not answer on port {port} within 10 s");
            }
            thread::sleep(Duration::from_millis(50));
        }
        Ok(server)
    }

    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// `total_commands_processed` from `INFO stats` (this query included).
    pub(crate) fn commands_processed(&self) -> Result<u64> {
        let mut stream =
            TcpStream::connect(("127.0.0.1", self.port)).context("cannot reach redis-server")?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        stream.write_all(b"*2\r\n$4\r\nINFO\r\n$5\r\nstats\r\n")?;
        let mut reader = BufReader::new(stream);
        let mut header = String::new();
        reader.read_line(&mut header)?;
        let length: usize = header
            .trim_end()
            .strip_prefix('$')
            .and_then(|n| n.parse().ok())
            .with_context(|| format!("INFO answered {header:?}"))?;
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        String::from_utf8_lossy(&body)
            .lines()
            .find_map(|line| line.strip_prefix("total_commands_processed:"))
            .and_then(|n| n.trim().parse().ok())
            .context("no total_commands_processed in INFO stats")
    }
}
