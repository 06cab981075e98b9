//! A client no one here wrote, run as a child process: the examples in
//! `tests/interop/clients/` (Python `websockets`, Node `ws`, Go gorilla), each
//! printing one line per event (`welcome`, `joined`, `message`, `keepalive`,
//! `pings`, `silent`, `closed`).
//!
//! Their toolchains are installed under `target/interop/` by `cargo xtask
//! interop` (and `cargo xtask test`), which tells these tests where through
//! `VIGIL_INTEROP_*` variables. Without them a test fails with the command
//! to run: a missing toolchain is never a skip.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{OnceLock, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use vigil_e2e::workspace_root;

/// The client libraries under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lang {
    /// `tests/interop/clients/python/client.py` on `websockets`.
    Python,
    /// `tests/interop/clients/node/client.mjs` on `ws`.
    Node,
    /// `tests/interop/clients/go/main.go` on gorilla/websocket.
    Go,
}

impl Lang {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Lang::Python => "python",
            Lang::Node => "node",
            Lang::Go => "go",
        }
    }

    /// The command that runs this client's example against `url`.
    #[track_caller]
    fn command(self, url: &str, options: &Options) -> Command {
        let mut command = match self {
            Lang::Python => {
                let mut command = Command::new("python3");
                command
                    .arg(workspace_root().join("tests/interop/clients/python/client.py"))
                    .env("PYTHONPATH", installed("VIGIL_INTEROP_PYTHONPATH"));
                command
            }
            Lang::Node => {
                let mut command = Command::new("node");
                command.arg(node_script());
                command
            }
            Lang::Go => Command::new(installed("VIGIL_INTEROP_GO_CLIENT")),
        };
        // Go's flag package takes durations; the others take seconds.
        let keepalive = match self {
            Lang::Go => format!("{}ms", options.keepalive.as_millis()),
            Lang::Python | Lang::Node => format!("{}", options.keepalive.as_secs_f64()),
        };
        command.args(["--url", url, "--channel", options.channel, "--keepalive"]);
        command.arg(keepalive);
        if let Some(rate) = options.ping_rate {
            command.args(["--ping-rate", &rate.to_string()]);
        }
        if options.silent {
            command.arg("--silent");
        }
        command
    }
}

/// How a client behaves.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Options {
    pub(crate) channel: &'static str,
    /// The period of its own keepalive pings.
    pub(crate) keepalive: Duration,
    /// Extra pings a second, if any.
    pub(crate) ping_rate: Option<u32>,
    /// Freeze after joining.
    pub(crate) silent: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            channel: "room",
            keepalive: Duration::from_secs(20),
            ping_rate: None,
            silent: false,
        }
    }
}

/// The path in `variable`, which `cargo xtask interop` sets; panics with the
/// command to run when it is unset or points at nothing.
#[track_caller]
fn installed(variable: &str) -> PathBuf {
    let hint = "run `cargo xtask interop` (or `cargo xtask test`): it installs the \
                client toolchains under target/interop and sets the VIGIL_INTEROP_* \
                variables for these tests";
    let path = std::env::var_os(variable)
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("{variable} is not set: {hint}"));
    assert!(
        path.exists(),
        "{variable}={} does not exist: {hint}",
        path.display()
    );
    path
}

/// The Node example, copied next to the `node_modules` that holds `ws` (an
/// ES module resolves packages from its own folder), once per test run so
/// it is always the file the README shows.
#[track_caller]
fn node_script() -> PathBuf {
    static SCRIPT: OnceLock<PathBuf> = OnceLock::new();
    SCRIPT
        .get_or_init(|| {
            let dir = installed("VIGIL_INTEROP_NODE_DIR");
            let source = workspace_root().join("tests/interop/clients/node/client.mjs");
            let copy = dir.join("client.mjs");
            std::fs::copy(&source, &copy).unwrap_or_else(|e| {
                panic!(
                    "cannot copy {} to {}: {e}",
                    source.display(),
                    copy.display()
                )
            });
            copy
        })
        .clone()
}

/// A running foreign client and what it printed so far.
pub(crate) struct ForeignClient {
    lang: Lang,
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl ForeignClient {
    /// Starts `lang`'s example against the server at `addr`.
    #[track_caller]
    pub(crate) fn start(lang: Lang, addr: SocketAddr, options: &Options) -> Self {
        Self::start_url(lang, &format!("ws://{addr}/ws"), options, None)
    }

    /// Starts `lang`'s example against `url` (`wss://` too), trusting the
    /// certificate authority in `ca` the way each runtime is told to:
    /// `SSL_CERT_FILE` for Python's ssl and Go's crypto/x509,
    /// `NODE_EXTRA_CA_CERTS` for Node.
    #[track_caller]
    pub(crate) fn start_url(
        lang: Lang,
        url: &str,
        options: &Options,
        ca: Option<&std::path::Path>,
    ) -> Self {
        let mut command = lang.command(url, options);
        if let Some(ca) = ca {
            command
                .env("SSL_CERT_FILE", ca)
                .env("NODE_EXTRA_CA_CERTS", ca);
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start the {} client ({command:?}): {e}", lang.name())
            });
        let (send, lines) = mpsc::channel();
        let stdout = child.stdout.take().expect("stdout was piped");
        let name = lang.name();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                eprintln!("[{name}] {line}");
                if send.send(line).is_err() {
                    return;
                }
            }
        });
        let stderr = child.stderr.take().expect("stderr was piped");
        thread::spawn(move || forward_stderr(name, stderr));
        Self {
            lang,
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// The first line starting with `prefix` printed from now on (or already
    /// printed and not yet taken), within `within`; panics otherwise, showing
    /// everything the client printed.
    #[track_caller]
    pub(crate) fn expect(&mut self, prefix: &str, within: Duration) -> String {
        self.wait_for(within, |line| line.starts_with(prefix))
            .unwrap_or_else(|why| {
                panic!(
                    "the {} client printed no `{prefix}` line: {why}; it printed:\n{}",
                    self.lang.name(),
                    self.seen.join("\n")
                )
            })
    }

    /// The first line satisfying `wanted` within `within`; `Err` says why not.
    pub(crate) fn wait_for(
        &mut self,
        within: Duration,
        wanted: impl Fn(&str) -> bool,
    ) -> Result<String, String> {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if wanted(&line) {
                        return Ok(line);
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(format!("none within {within:?}"));
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait().expect("waiting on our child");
                    return Err(format!("it exited ({status})"));
                }
            }
        }
    }

    /// Every line printed so far, whether or not a test waited for it.
    pub(crate) fn printed(&mut self) -> &[String] {
        self.seen.extend(self.lines.try_iter());
        &self.seen
    }

    /// Whether the process is still running.
    pub(crate) fn is_running(&mut self) -> bool {
        self.child
            .try_wait()
            .expect("waiting on our child")
            .is_none()
    }
}

impl Drop for ForeignClient {
    fn drop(&mut self) {
        // Best effort: it may have exited already.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn forward_stderr(name: &str, stderr: impl Read) {
    for line in BufReader::new(stderr).lines().map_while(Result::ok) {
        eprintln!("[{name} stderr] {line}");
    }
}
