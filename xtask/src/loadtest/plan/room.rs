//! `bigroom`'s presence modes and timeline (issue #15).

use super::*;

/// After the churn: the leave grace (5 s by default) of the last clients
/// that left, a count window, and room for the last counts to arrive.
const ROOM_SETTLE: Duration = Duration::from_secs(10);
/// The users a `"members"` channel of `bigroom` lists before it is
/// counted (its `presence_cap`), and one client in how many reads the
/// list in pages.
const ROOM_CAP: u32 = 1_000;
const ROOM_CAP_QUICK: u32 = 100;
const ROOM_PAGER_EVERY: u32 = 500;
const ROOM_PAGER_EVERY_QUICK: u32 = 50;
/// How long before each disturbance (the kill, the churn) a phase ends:
/// its snapshot is taken while nothing moves, whatever the few
/// milliseconds between the harness's clock and the loadgen's.
const MARK_AHEAD: Duration = Duration::from_millis(500);

/// When `bigroom`'s phases begin, from the loadgen's start, and the churn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RoomTimeline {
    pub(crate) storm_at: Duration,
    pub(crate) churn_at: Duration,
    pub(crate) churn: Duration,
    /// Clients that leave and come back each second of the churn, in %.
    pub(crate) churn_percent: u32,
    pub(crate) settle: Duration,
}

/// `bigroom`'s presence modes (issue #15), one run each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RoomMode {
    /// `presence = "counts"`: the number online, never the list.
    Counts,
    /// `presence = "members"` with a `presence_cap` far below the room's
    /// size: counted past the cap, the list read in pages.
    CappedMembers,
}

impl RoomMode {
    pub(crate) const ALL: [RoomMode; 2] = [RoomMode::Counts, RoomMode::CappedMembers];

    pub(crate) fn name(self) -> &'static str {
        match self {
            RoomMode::Counts => "counts",
            RoomMode::CappedMembers => "members",
        }
    }

    /// The members the room lists before it is counted (`presence_cap`).
    pub(crate) fn cap(self, quick: bool) -> Option<u32> {
        match (self, quick) {
            (RoomMode::Counts, _) => None,
            (RoomMode::CappedMembers, true) => Some(ROOM_CAP_QUICK),
            (RoomMode::CappedMembers, false) => Some(ROOM_CAP),
        }
    }

    /// The server's config file for this mode: one namespace for the room.
    pub(crate) fn config(self, quick: bool) -> String {
        let options = match self.cap(quick) {
            None => "presence = \"counts\"".to_owned(),
            Some(cap) => format!("presence = \"members\"\npresence_cap = {cap}"),
        };
        format!("[[namespace]]\nchannels = \"{ROOM_CHANNEL}\"\n{options}\n")
    }

    /// One client in how many reads the list in pages (`--page-every`).
    pub(crate) fn page_every(self, quick: bool) -> Option<u32> {
        match (self, quick) {
            (RoomMode::Counts, _) => None,
            (RoomMode::CappedMembers, true) => Some(ROOM_PAGER_EVERY_QUICK),
            (RoomMode::CappedMembers, false) => Some(ROOM_PAGER_EVERY),
        }
    }
}

impl Plan {
    /// `bigroom`'s phases, from the loadgen's start: the ramp and a steady
    /// moment, the restart (at `restart_after`), the churn, and the settle
    /// after it.
    pub(crate) fn room_timeline(&self) -> RoomTimeline {
        // As for every restart: a second after the steady window.
        let storm_at = self.window().end + Duration::from_secs(1);
        let (storm, churn, churn_percent) = if self.quick {
            (Duration::from_secs(15), Duration::from_secs(10), 10)
        } else {
            (STORM_PATIENCE, Duration::from_secs(60), 1)
        };
        RoomTimeline {
            storm_at,
            churn_at: storm_at + storm,
            churn,
            churn_percent,
            settle: ROOM_SETTLE,
        }
    }

    /// The loadgen's phase marks (`--view-phases-ms`): just before the
    /// kill, and just before the churn.
    pub(crate) fn room_marks(&self) -> [Duration; 2] {
        let timeline = self.room_timeline();
        [
            timeline.storm_at - MARK_AHEAD,
            timeline.churn_at - MARK_AHEAD,
        ]
    }

    /// How long a restart waits for every client to be back: `bigroom`'s
    /// storm phase (less a second), `recover`'s last phase (less 2 s), else
    /// [`STORM_PATIENCE`].
    pub(crate) fn storm_patience(&self) -> Duration {
        if self.room.is_some() {
            let timeline = self.room_timeline();
            return timeline.churn_at - timeline.storm_at - MARK_AHEAD * 2;
        }
        if self.scenario == Scenario::Recover {
            let timeline = self.recover_timeline();
            return timeline.end - timeline.kill_at - Duration::from_secs(2);
        }
        STORM_PATIENCE
    }
}
