//! Shared helpers for the end-to-end tests in `e2e/` and `interop/`: find
//! the real binaries and run them with a deadline.
//!
//! The binaries are built by `cargo build --workspace --bins` (which `cargo
//! xtask test` runs first); a missing binary is a failure, never a skip.

mod bystanders;
mod flooder;
mod process;
mod redis;
mod test_ca;
mod ws_client;

pub use bystanders::Bystanders;
pub use flooder::Flooder;
pub use process::ServerProcess;
pub use redis::RedisProcess;
pub use test_ca::{ServerCert, TestCa};

/// The value of one unlabelled or fully labelled series (`name{...}`) in a
/// `/metrics` scrape; panics, showing the scrape, when it is missing.
#[track_caller]
pub fn series_value(scrape: &str, series: &str) -> f64 {
    let prefix = format!("{series} ");
    scrape
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no series {series} in:\n{scrape}"))
        .trim()
        .parse()
        .expect("a number")
}

/// A plain HTTP/1.1 GET: the whole response (head and body) as text.
#[track_caller]
pub fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    http_request(addr, "GET", path, None, "")
}

/// An HTTP/1.1 request with an optional bearer key and a body.
#[track_caller]
pub fn http_request(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: &str,
) -> String {
    request_on(
        std::net::TcpStream::connect(addr).expect("connect"),
        addr,
        method,
        path,
        bearer,
        body,
    )
}

/// `GET path` from the loopback address `source` (127.0.0.2, ...).
#[track_caller]
pub fn http_get_from(source: std::net::IpAddr, addr: std::net::SocketAddr, path: &str) -> String {
    request_on(connect_from(source, addr), addr, "GET", path, None, "")
}

#[track_caller]
fn request_on(
    mut stream: std::net::TcpStream,
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: &str,
) -> String {
    use std::io::Write;
    stream.set_read_timeout(Some(DEADLINE)).expect("timeout");
    let auth = bearer
        .map(|key| format!("Authorization: Bearer {key}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{auth}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    response
}
pub use ws_client::{WsClient, connect_from};

use std::{
    env,
    io::Read,
    path::{Path, PathBuf},
    process::{Command, ExitStatus, Stdio},
    thread,
    time::{Duration, Instant},
};

/// How long one short-lived invocation may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// The workspace root: this package lives in `<workspace>/tests`.
pub fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("vigil-e2e's manifest directory is `<workspace>/tests`, so it has a parent")
}

/// The `vigil` server binary: `$VIGIL_BIN`, else `<target>/debug/vigil`
/// (`$CARGO_TARGET_DIR` or `<workspace>/target`). Panics when it is missing.
#[track_caller]
pub fn vigil_bin() -> PathBuf {
    binary("VIGIL_BIN", "vigil")
}

#[track_caller]
fn binary(env_var: &str, name: &str) -> PathBuf {
    let path = env::var_os(env_var).map(PathBuf::from).unwrap_or_else(|| {
        let target = env::var_os("CARGO_TARGET_DIR")
            .map(|dir| workspace_root().join(dir))
            .unwrap_or_else(|| workspace_root().join("target"));
        target
            .join("debug")
            .join(format!("{name}{}", env::consts::EXE_SUFFIX))
    });
    assert!(
        path.is_file(),
        "{name} binary not found at {}: run \"cargo build --workspace --bins\" first (cargo xtask test does it)",
        path.display()
    );
    path
}

/// What a finished process left behind.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `program args` to completion, failing the test if it is still running
/// after [`DEADLINE`] (it is killed then).
pub fn run(program: &Path, args: &[&str]) -> Output {
    let shown = format!("{} {}", program.display(), args.join(" "));
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start `{shown}`: {e}"));
    let stdout = drain(child.stdout.take().expect("stdout was piped"));
    let stderr = drain(child.stderr.take().expect("stderr was piped"));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting on a child we spawned") {
            break status;
        }
        if started.elapsed() > DEADLINE {
            // Best effort: the child may exit on its own between the check and the kill.
            let _ = child.kill();
            let _ = child.wait();
            panic!("`{shown}` still running after {DEADLINE:?}; killed it");
        }
        thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: stdout.join().expect("the stdout reader does not panic"),
        stderr: stderr.join().expect("the stderr reader does not panic"),
    }
}

/// Reads a pipe to its end on its own thread, so a chatty child never blocks
/// on a full pipe while we wait for it.
fn drain(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        // A read error leaves what was read so far; the assertions show it.
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}
