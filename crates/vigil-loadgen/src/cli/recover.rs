//! The options of a recovery run (`cargo xtask loadtest recover`): healthy
//! clients track the offsets of their channel's messages and re-join with
//! `since`, and may all drop their connection at one moment.

use std::time::Duration;

use anyhow::{Result, bail};

/// What `--offsets` and `--drop-at-ms` asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RecoverOptions {
    /// `--offsets track`: healthy clients count the offsets of their
    /// channel's messages and re-join with the last one as `since`.
    pub(crate) track: bool,
    /// `--drop-at-ms T`: at T every healthy client drops its connection
    /// (no close frame) and reconnects as after a server's end.
    pub(crate) drop_at: Option<Duration>,
}

impl RecoverOptions {
    /// Takes `flag` if it is one of these options; `Ok(false)` if it is not.
    pub(crate) fn take(&mut self, flag: &str, value: &str) -> Result<bool> {
        match flag {
            "--offsets" => match value {
                "track" => self.track = true,
                _ => bail!("`--offsets` takes `track`, got `{value}`"),
            },
            "--drop-at-ms" => match value.parse::<u64>() {
                Ok(ms @ 1..=21_600_000) => self.drop_at = Some(Duration::from_millis(ms)),
                _ => bail!("`--drop-at-ms` must be 1..=21600000 milliseconds, got `{value}`"),
            },
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The combinations that cannot work, once every flag is read.
    pub(crate) fn check(
        &self,
        join: bool,
        processes: u32,
        reconnects: bool,
        views: bool,
    ) -> Result<()> {
        if self.track && views {
            bail!("`--offsets track` and `--view-phases-ms` watch different things: one at a time");
        }
        if self.track && (!join || processes != 1) {
            bail!(
                "`--offsets track` follows the clients' channel in one process: add `--join \
                 CHANNEL`, at most 19,500 connections (`--processes 1`)"
            );
        }
        if self.drop_at.is_some() && !reconnects {
            bail!("dropped clients come back: add `--reconnect-max-ms MS`");
        }
        Ok(())
    }
}
