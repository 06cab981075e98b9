//! Child processes of `bench-idle` and `loadtest` that cannot outlive them:
//! killed and reaped on drop, so every exit path (error, panic) cleans up.

use std::{
    io::Read,
    process::{self, Command, ExitStatus},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

use crate::cmd;

#[derive(Debug)]
pub(crate) struct Child {
    name: &'static str,
    child: process::Child,
}

impl Child {
    pub(crate) fn spawn(name: &'static str, cmd: &mut Command) -> Result<Child> {
        let shown = cmd::display(cmd);
        eprintln!("$ {shown} &");
        let child = cmd
            .spawn()
            .with_context(|| format!("could not start `{shown}`"))?;
        Ok(Child { name, child })
    }

    pub(crate) fn id(&self) -> u32 {
        self.child.id()
    }

    /// An error if the process has exited: it was expected to keep running.
    pub(crate) fn check_alive(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "{} exited early ({status}); see its stderr above",
                self.name
            );
        }
        Ok(())
    }

    /// Its exit status, or `None` if it is still running after `timeout`.
    pub(crate) fn wait_timeout(&mut self, timeout: Duration) -> Result<Option<ExitStatus>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(Some(status));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Its piped stdout, to read while it runs.
    pub(crate) fn take_stdout(&mut self) -> Result<std::process::ChildStdout> {
        self.child
            .stdout
            .take()
            .with_context(|| format!("{}'s stdout was not piped", self.name))
    }

    /// Its piped stderr, to read while it runs.
    pub(crate) fn take_stderr(&mut self) -> Result<std::process::ChildStderr> {
        self.child
            .stderr
            .take()
            .with_context(|| format!("{}'s stderr was not piped", self.name))
    }

    /// Everything it wrote to its piped stdout (call after it exited).
    pub(crate) fn stdout(&mut self) -> Result<String> {
        let mut text = String::new();
        self.child
            .stdout
            .take()
            .with_context(|| format!("{}'s stdout was not piped", self.name))?
            .read_to_string(&mut text)
            .with_context(|| format!("cannot read {}'s stdout", self.name))?;
        Ok(text)
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
