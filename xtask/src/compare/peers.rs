//! The servers `compare` measures vigil against, and how each is installed
//! and started. Toolchains that cargo cannot fetch are installed by
//! `install.rs`, the way the test command installs things: npm and pip
//! packages into folders under `target/peers/`, Debian packages with
//! apt-get when allowed; otherwise the error gives the exact command.

use std::{fs, path::PathBuf, process::Command, time::Duration};

use anyhow::Result;

use crate::{
    cmd::project_root,
    install::{self, WEBSOCKETS_PIP, WS_NPM},
};

/// A server under comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Contender {
    Vigil,
    /// tokio + hyper + fastwebsockets, one task and interval per connection.
    Naive,
    /// Node.js `ws`, its README's heartbeat idiom.
    Node,
    /// Python `websockets` with `ping_interval` / `ping_timeout`.
    Python,
    /// Go gorilla/websocket, the reader/writer goroutine idiom.
    Go,
}

impl Contender {
    pub(crate) const ALL: [Contender; 5] = [
        Contender::Vigil,
        Contender::Naive,
        Contender::Node,
        Contender::Python,
        Contender::Go,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Contender::Vigil => "vigil",
            Contender::Naive => "naive",
            Contender::Node => "node-ws",
            Contender::Python => "python-websockets",
            Contender::Go => "go-gorilla",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Contender> {
        Contender::ALL.into_iter().find(|c| c.name() == name)
    }

    /// Installs and builds what it needs (idempotent).
    pub(crate) fn prepare(self) -> Result<()> {
        let dir = peers_dir();
        match self {
            Contender::Vigil | Contender::Naive => Ok(()),
            Contender::Node => {
                let node = dir.join("node");
                install::npm_package(&node, "ws", WS_NPM)?;
                // An ES module resolves `ws` from its own folder.
                fs::copy(source("node/server.mjs"), node.join("server.mjs"))?;
                Ok(())
            }
            Contender::Python => {
                install::pip_package(&dir.join("python"), "websockets", WEBSOCKETS_PIP)
            }
            Contender::Go => {
                let go = dir.join("go");
                fs::create_dir_all(&go)?;
                install::go_program(&source("go/main.go"), &go.join("server"))
            }
        }
    }

    /// The command that starts it on a free loopback port with this
    /// heartbeat, alive for at most `lifetime`.
    pub(crate) fn command(
        self,
        interval: Duration,
        timeout: Duration,
        lifetime: Duration,
    ) -> Command {
        let interval_ms = interval.as_millis().to_string();
        let timeout_ms = timeout.as_millis().to_string();
        let lifetime_s = lifetime.as_secs().max(1).to_string();
        let dir = peers_dir();
        let release = project_root().join("target/release");
        let mut command = match self {
            Contender::Vigil => {
                let mut command = Command::new(release.join("vigil"));
                command.args([
                    "--listen",
                    "127.0.0.1:0",
                    "--heartbeat-interval",
                    &format!("{interval_ms}ms"),
                    "--heartbeat-timeout",
                    &format!("{timeout_ms}ms"),
                    "--max-connections-per-ip",
                    "19900",
                ]);
                return command;
            }
            Contender::Naive => {
                let mut command = Command::new(release.join("naive_ws_server"));
                command.args(["--listen", "127.0.0.1:0", "--max-seconds", &lifetime_s]);
                command
            }
            Contender::Node => {
                let mut command = Command::new("node");
                command.arg(dir.join("node/server.mjs")).args([
                    "--port",
                    "0",
                    "--max-seconds",
                    &lifetime_s,
                ]);
                command
            }
            Contender::Python => {
                let mut command = Command::new("python3");
                command
                    .arg(source("python/server.py"))
                    .args(["--port", "0", "--max-seconds", &lifetime_s])
                    .env("PYTHONPATH", dir.join("python"));
                command
            }
            Contender::Go => {
                let mut command = Command::new(dir.join("go/server"));
                command.args(["-port", "0", "-max-seconds", &lifetime_s]);
                command
            }
        };
        command.args(["--interval-ms", &interval_ms, "--timeout-ms", &timeout_ms]);
        command
    }
}

fn peers_dir() -> PathBuf {
    project_root().join("target/peers")
}

fn source(relative: &str) -> PathBuf {
    project_root().join("benches/peers").join(relative)
}
