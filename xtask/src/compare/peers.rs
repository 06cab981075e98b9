//! The servers `compare` measures vigil against, and how each is installed
//! and started. Toolchains that cargo cannot fetch are installed the way
//! the test command installs things: npm and pip packages into folders
//! under `target/peers/`, Debian packages with apt-get when running as root
//! with `CI` or `VIGIL_XTASK_INSTALL` set; otherwise the error gives the
//! exact command.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use anyhow::{Context, Result, bail};

use crate::cmd::{self, project_root};

/// Versions of the peers' libraries, pinned so reruns compare alike.
const WS_VERSION: &str = "ws@8.18.0";
const WEBSOCKETS_VERSION: &str = "websockets==13.1";
const GORILLA_SOURCE: &str = "/usr/share/gocode/src/github.com/gorilla/websocket";

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
                fs::create_dir_all(&node)?;
                if !node.join("node_modules/ws/package.json").exists() {
                    cmd::run(Command::new("npm").args([
                        "install",
                        "--no-audit",
                        "--no-fund",
                        "--prefix",
                        path_str(&node)?,
                        WS_VERSION,
                    ]))?;
                }
                // An ES module resolves `ws` from its own folder.
                fs::copy(source("node/server.mjs"), node.join("server.mjs"))?;
                Ok(())
            }
            Contender::Python => {
                let python = dir.join("python");
                if !python.join("websockets").exists() {
                    cmd::run(Command::new("python3").args([
                        "-m",
                        "pip",
                        "install",
                        "--quiet",
                        "--target",
                        path_str(&python)?,
                        WEBSOCKETS_VERSION,
                    ]))?;
                }
                Ok(())
            }
            Contender::Go => {
                ensure_debian_packages(
                    &["go"],
                    Path::new(GORILLA_SOURCE),
                    &["golang-go", "golang-github-gorilla-websocket-dev"],
                )?;
                let go = dir.join("go");
                fs::create_dir_all(&go)?;
                // GOPATH mode over Debian's packaged sources: no network.
                cmd::run(
                    Command::new("go")
                        .args(["build", "-o"])
                        .arg(go.join("server"))
                        .arg(source("go/main.go"))
                        .env("GO111MODULE", "off")
                        .env("GOPATH", "/usr/share/gocode")
                        .env("GOCACHE", go.join("cache")),
                )
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

fn path_str(path: &Path) -> Result<&str> {
    path.to_str()
        .with_context(|| format!("{} is not UTF-8", path.display()))
}

/// Makes sure `programs` and `file` exist, installing `packages` with
/// apt-get when allowed (root, and `CI` or `VIGIL_XTASK_INSTALL` set);
/// otherwise fails with the command to run.
fn ensure_debian_packages(programs: &[&str], file: &Path, packages: &[&str]) -> Result<()> {
    let present = |program: &str| cmd::probe(Command::new("which").arg(program));
    if programs.iter().all(|p| present(p)) && file.exists() {
        return Ok(());
    }
    let install = format!("apt-get install -y {}", packages.join(" "));
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.trim_ascii() == b"0");
    let allowed =
        std::env::var_os("CI").is_some() || std::env::var_os("VIGIL_XTASK_INSTALL").is_some();
    if !(root && allowed) {
        bail!(
            "missing {} ({}); install it with `{install}` (as root), or run as root with \
             VIGIL_XTASK_INSTALL=1",
            packages.join(", "),
            file.display()
        );
    }
    cmd::run(
        Command::new("apt-get")
            .args(["install", "-y"])
            .args(packages),
    )
}
