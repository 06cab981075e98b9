//! A `redis-server` of its own for one test: on a free loopback port, no
//! persistence, stopped and started again on the same port at will, killed
//! when dropped. The binary is `$VIGIL_REDIS_SERVER` or `redis-server` on
//! the PATH; when there is none the test fails with the command that
//! installs it (`cargo xtask test` installs it itself where it may).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::DEADLINE;

#[derive(Debug)]
pub struct RedisProcess {
    child: Option<Child>,
    port: u16,
    /// With persistence: the folder of its snapshot (`SAVE`), which a
    /// restart loads again.
    dir: Option<std::path::PathBuf>,
}

impl RedisProcess {
    /// Starts a Redis on a free port and waits until it answers PING.
    #[track_caller]
    pub fn start() -> Self {
        Self::start_in(None)
    }

    /// Like [`start`](Self::start), but `SAVE` writes a snapshot that every
    /// restart loads again, as a production Redis with RDB does.
    #[track_caller]
    pub fn start_persistent() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "vigil-redis-{}-{:?}",
            std::process::id(),
            thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a folder for the snapshot");
        Self::start_in(Some(dir))
    }

    #[track_caller]
    fn start_in(dir: Option<std::path::PathBuf>) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free loopback port")
            .port();
        let mut redis = Self {
            child: None,
            port,
            dir,
        };
        redis.restart();
        redis
    }

    /// `redis://127.0.0.1:PORT/0`, for `--cluster`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Kills it (SIGKILL): every node loses Redis at once, and with no
    /// persistence every key is gone.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port (empty, or from its snapshot),
    /// waiting until it answers.
    #[track_caller]
    pub fn restart(&mut self) {
        self.stop();
        let binary =
            std::env::var("VIGIL_REDIS_SERVER").unwrap_or_else(|_| "redis-server".to_owned());
        let mut command = Command::new(&binary);
        command.args(["--port", &self.port.to_string()]).args([
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]);
        if let Some(dir) = &self.dir {
            command.arg("--dir").arg(dir);
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|error| {
                panic!(
                    "cannot start `{binary}` ({error}): install Redis with \
                     `apt-get install -y redis-server`, or run `cargo xtask test`, which does"
                )
            });
        self.child = Some(child);
        let deadline = Instant::now() + DEADLINE;
        while self.command(&["PING"]).as_deref() != Some("+PONG") {
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer PING"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// One command's first reply line (`+PONG`, `:3`, `$5` ...), or `None`
    /// when Redis does not answer.
    pub fn command(&self, words: &[&str]) -> Option<String> {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let mut stream = TcpStream::connect_timeout(&addr, DEADLINE).ok()?;
        stream.set_read_timeout(Some(DEADLINE)).ok()?;
        let mut request = format!("*{}\r\n", words.len());
        for word in words {
            request.push_str(&format!("${}\r\n{word}\r\n", word.len()));
        }
        stream.write_all(request.as_bytes()).ok()?;
        let mut reply = Vec::new();
        let mut byte = [0u8; 1];
        while !reply.ends_with(b"\r\n") {
            if stream.read(&mut byte).ok()? == 0 {
                return None;
            }
            reply.push(byte[0]);
        }
        Some(String::from_utf8_lossy(&reply).trim_end().to_owned())
    }
}

impl Drop for RedisProcess {
    fn drop(&mut self) {
        self.stop();
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
