//! What a child process (`--part P/N`) prints instead of a report: its
//! connections' slots and its shared records as plain numbers, from which
//! the parent rebuilds one report over every process as if one had run
//! them all (percentiles over all connections, not a mean of percentiles).

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::{AbuseCounts, LatencyRecord, Reason, Slot, SlotRecord};

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct PartReport {
    /// Slots of the connections this process attempted, in index order
    /// (indices P, P + N, P + 2N, ...).
    pub(crate) slots: Vec<SlotRecord>,
    pub(crate) latency: LatencyRecord,
    pub(crate) rtt: LatencyRecord,
    pub(crate) rtt_before: LatencyRecord,
    pub(crate) rtt_during: LatencyRecord,
    pub(crate) abuse: BTreeMap<String, AbuseCounts>,
    pub(crate) reconnect_failures: BTreeMap<String, u32>,
    pub(crate) first_rejection: Option<String>,
    pub(crate) stopped_by: String,
    pub(crate) ramp_s: f64,
    pub(crate) hold_s: f64,
}

impl PartReport {
    /// The slots, checked: a record this program could not have written is
    /// an error, not a silently wrong report.
    pub(crate) fn slots(&self) -> Result<Vec<Slot>> {
        self.slots
            .iter()
            .enumerate()
            .map(|(at, record)| {
                Slot::from_record(record)
                    .with_context(|| format!("slot {at} of a child's report is malformed"))
            })
            .collect()
    }

    /// Adds this part's failed reconnect attempts to `total`, by reason.
    pub(crate) fn add_reconnect_failures(
        &self,
        total: &mut BTreeMap<&'static str, u32>,
    ) -> Result<()> {
        for (name, &count) in &self.reconnect_failures {
            let Some(reason) = Reason::from_name(name) else {
                bail!("a child's report names an unknown reason `{name}`");
            };
            *total.entry(reason.name()).or_insert(0) += count;
        }
        Ok(())
    }
}
