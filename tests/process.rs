//! A `vigil` server process for one test: started on a free loopback port
//! (read back from its log), stopped with SIGTERM or killed when dropped.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::{DEADLINE, vigil_bin};

/// A running `vigil`.
#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
    addr: SocketAddr,
    /// Its log lines up to the listening address.
    startup: Vec<String>,
    /// Its log lines after the listening address.
    log: mpsc::Receiver<String>,
}

impl ServerProcess {
    /// Starts `vigil args` and waits until it logs its listening address.
    #[track_caller]
    pub fn start(args: &[&str]) -> Self {
        let mut command = Command::new(vigil_bin());
        command.args(args);
        Self::spawn(command)
    }

    /// Starts `vigil` on a free loopback port with a fast heartbeat (a ping
    /// after 1 s of silence, a peer dropped `timeout` after it), so that
    /// bystanders answer pings within a test, then `extra` flags.
    #[track_caller]
    pub fn start_heartbeating(timeout: &str, extra: &[&str]) -> Self {
        let mut args = vec![
            "--listen",
            "127.0.0.1:0",
            "--heartbeat-interval",
            "1s",
            "--heartbeat-timeout",
            timeout,
        ];
        args.extend_from_slice(extra);
        Self::start(&args)
    }

    /// Starts `vigil args` allowed to open at most `files` files (`ulimit
    /// -n`: soft and hard, set by a shell that then becomes vigil).
    #[track_caller]
    pub fn start_with_file_limit(files: u32, args: &[&str]) -> Self {
        Self::start_under_ulimit(&format!("-n {files}"), args)
    }

    /// Starts `vigil args` after `ulimit {limit}` (such as `-Sn 512`, a
    /// soft limit only) in a shell that then becomes vigil.
    #[track_caller]
    pub fn start_under_ulimit(limit: &str, args: &[&str]) -> Self {
        let mut command = Command::new("/bin/sh");
        command
            .arg("-c")
            .arg(format!("ulimit {limit} && exec \"$0\" \"$@\""))
            .arg(vigil_bin())
            .args(args);
        Self::spawn(command)
    }

    #[track_caller]
    fn spawn(mut command: Command) -> Self {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start vigil");
        let stderr = child.stderr.take().expect("stderr was piped");
        let (lines, found) = mpsc::channel();
        thread::spawn(move || {
            // Forwards every log line until the pipe closes with the process.
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[vigil] {line}");
                let _ = lines.send(line);
            }
        });
        let deadline = Instant::now() + DEADLINE;
        let mut startup = Vec::new();
        let addr = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = found.recv_timeout(left) else {
                let _ = child.kill();
                panic!("vigil did not log a listening address within {DEADLINE:?}");
            };
            if let Some(addr) = line
                .split("address=")
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next())
            {
                break addr.parse().expect("a socket address after address=");
            }
            startup.push(line);
        };
        Self {
            child,
            addr,
            startup,
            log: found,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What it logged before it listened.
    pub fn startup_log(&self) -> &[String] {
        &self.startup
    }

    /// The process id, e.g. to read its CPU time from `/proc`.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The log lines written since the last call (or since it started
    /// listening), waiting `settle` for lines still on their way.
    pub fn log_lines(&self, settle: Duration) -> Vec<String> {
        thread::sleep(settle);
        self.log.try_iter().collect()
    }

    /// Sends SIGTERM.
    pub fn terminate(&mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill(1) runs");
        assert!(status.success());
    }

    /// SIGKILL, and waits until it is gone: no code of it runs after.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for the process to exit (panics after `timeout`).
    #[track_caller]
    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("waiting on our child") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "vigil still running after {timeout:?}"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
