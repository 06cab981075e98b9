//! The options of a big-room run (`cargo xtask loadtest bigroom`): track
//! what every client believes about its channel's presence and what it
//! received, phase by phase; read the member list in pages; and make the
//! clients leave and come back, a share of them each second.

use std::time::Duration;

use anyhow::{Context, Result, bail};

/// Phases at most (`--view-phases-ms` gives one mark fewer).
pub(crate) const MAX_PHASES: usize = 8;

/// What `--view-phases-ms`, `--page-every` and `--churn-*` asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RoomOptions {
    /// `--view-phases-ms A,B,...`: healthy clients track their view of
    /// their channel's presence and count the bytes they receive, split
    /// into phases at these marks (ms from the run's start, ascending).
    pub(crate) phase_marks: Option<Vec<u32>>,
    /// `--page-every K`: one client in each block of K reads the member
    /// list page by page once the channel's counts say it is whole and its
    /// list may be paged (again after a reading that came up short).
    pub(crate) page_every: Option<u32>,
    pub(crate) churn: Option<Churn>,
}

/// `--churn-at-ms T --churn-ms L --churn-percent P`: from T for L, each
/// second P % of the healthy clients close cleanly and reconnect at once,
/// each client once at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Churn {
    pub(crate) at: Duration,
    pub(crate) length: Duration,
    pub(crate) percent: u32,
}

impl Churn {
    /// When client `index` leaves and comes back, from the run's start: in
    /// second `index % (100 / percent)` of the churn, if that second is
    /// within it.
    pub(crate) fn moment(&self, index: usize) -> Option<Duration> {
        // `check` keeps `percent` a divisor of 100.
        let cycle = (100 / self.percent).max(1) as usize;
        let second = Duration::from_secs((index % cycle) as u64);
        // Spread over the second too (389 is prime to 1,000: the k-th
        // client of a second leaves at a distinct millisecond, k < 1,000),
        // so that the server sees a steady rate.
        let within = Duration::from_millis((index / cycle * 389 % 1000) as u64);
        (second < self.length).then(|| self.at + second + within)
    }
}

impl RoomOptions {
    /// Takes `flag` if it is one of these options; `Ok(false)` if it is not.
    pub(crate) fn take(&mut self, flag: &str, value: &str) -> Result<bool> {
        let millis = |value: &str| -> Result<u32> {
            value
                .parse::<u32>()
                .ok()
                .filter(|ms| (1..=21_600_000).contains(ms))
                .with_context(|| {
                    format!("`{flag}` must be 1..=21600000 milliseconds, got `{value}`")
                })
        };
        match flag {
            "--view-phases-ms" => {
                let marks = value
                    .split(',')
                    .map(|mark| millis(mark.trim()))
                    .collect::<Result<Vec<u32>>>()?;
                if marks.len() >= MAX_PHASES || !marks.is_sorted_by(|a, b| a < b) {
                    bail!(
                        "`--view-phases-ms {value}`: at most {} marks, ascending",
                        MAX_PHASES - 1
                    );
                }
                self.phase_marks = Some(marks);
            }
            "--page-every" => {
                let k = value
                    .parse::<u32>()
                    .ok()
                    .filter(|k| *k >= 1)
                    .with_context(|| format!("`--page-every` must be 1 or more, got `{value}`"))?;
                self.page_every = Some(k);
            }
            "--churn-at-ms" => self.churn_mut().at = Duration::from_millis(millis(value)?.into()),
            "--churn-ms" => self.churn_mut().length = Duration::from_millis(millis(value)?.into()),
            "--churn-percent" => {
                self.churn_mut().percent = value
                    .parse()
                    .ok()
                    .filter(|p| (1..=100).contains(p))
                    .with_context(|| format!("`--churn-percent` must be 1..=100, got `{value}`"))?;
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn churn_mut(&mut self) -> &mut Churn {
        self.churn.get_or_insert(Churn {
            at: Duration::ZERO,
            length: Duration::ZERO,
            percent: 0,
        })
    }

    /// The combinations that cannot work, once every flag is read.
    pub(crate) fn check(
        &self,
        join: Option<&str>,
        channels: u32,
        processes: u32,
        reconnects: bool,
    ) -> Result<()> {
        if self.phase_marks.is_some() || self.page_every.is_some() {
            if join.is_none() || channels != 1 {
                bail!(
                    "`--view-phases-ms` and `--page-every` watch one channel: add `--join CHANNEL` (without `--channels`)"
                );
            }
            if processes != 1 {
                bail!(
                    "`--view-phases-ms` and `--page-every` run in one process: at most 19,500 connections, `--processes 1`"
                );
            }
        }
        if self.page_every.is_some() && self.phase_marks.is_none() {
            bail!("`--page-every` needs `--view-phases-ms` (its pages count towards the views)");
        }
        if let Some(churn) = self.churn {
            if churn.at.is_zero() || churn.length.is_zero() || churn.percent == 0 {
                bail!("churn needs all of `--churn-at-ms`, `--churn-ms` and `--churn-percent`");
            }
            if !reconnects {
                bail!("churning clients reconnect: add `--reconnect-max-ms MS`");
            }
            // Each client leaves once at most: P % a second lasts 100 / P
            // seconds, and P must divide 100 for every second to be P %.
            if !100u32.is_multiple_of(churn.percent) {
                bail!(
                    "`--churn-percent {}` must divide 100 (1, 2, 4, 5, 10, 20, 25, 50 or 100)",
                    churn.percent
                );
            }
            let most = Duration::from_secs(u64::from(100 / churn.percent));
            if churn.length > most {
                bail!(
                    "`--churn-ms {}` at {} % a second runs out of clients after {} s (each \
                     leaves once)",
                    churn.length.as_millis(),
                    churn.percent,
                    most.as_secs()
                );
            }
        }
        Ok(())
    }
}
