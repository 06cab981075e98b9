//! `recover`'s rooms, publishers and timeline (issue #16).

use super::*;

/// The stem of the rooms `recover`'s clients join: one publisher each.
const RECOVER_CHANNEL: &str = "recover";
/// How often each room's publisher sends (5 a second).
const RECOVER_PUBLISH_EVERY: Duration = Duration::from_millis(200);
/// From the drop to the kill, and from the kill to the end.
const RECOVER_GAP: Duration = Duration::from_secs(15);
const RECOVER_GAP_QUICK: Duration = Duration::from_secs(6);

/// When `recover`'s disturbances come, from the loadgen's start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecoverTimeline {
    /// Every healthy client drops its connection (no close frame).
    pub(crate) drop_at: Duration,
    /// The server is killed (SIGKILL) and started again on its port.
    pub(crate) kill_at: Duration,
    pub(crate) end: Duration,
}

impl Plan {
    /// The clients that come back after a restart: all of them, but in
    /// `recover` its publishers (they publish until the server goes).
    pub(crate) fn reconnecting(&self) -> u32 {
        match self.scenario {
            Scenario::Recover => self.healthy,
            _ => self.connections(),
        }
    }

    pub(crate) fn recover_timeline(&self) -> RecoverTimeline {
        let gap = if self.quick {
            RECOVER_GAP_QUICK
        } else {
            RECOVER_GAP
        };
        // After the ramp and a steady moment of publishing.
        let drop_at = self.window().end;
        RecoverTimeline {
            drop_at,
            kill_at: drop_at + gap,
            end: drop_at + gap * 2,
        }
    }

    /// The server's config file: a namespace keeping the rooms' history
    /// when `history` is on, none otherwise.
    pub(crate) fn recover_config(&self) -> String {
        match self.history {
            Some(true) => format!(
                "[[namespace]]\nchannels = \"{RECOVER_CHANNEL}-*\"\nhistory_size = 1000\nhistory_ttl = \"1m\"\n"
            ),
            _ => String::new(),
        }
    }

    /// The loadgen's flags for `recover`: rooms with a publisher each,
    /// clients following offsets, the drop.
    pub(super) fn recover_args(&self) -> Vec<String> {
        let timeline = self.recover_timeline();
        let ms = |at: Duration| at.as_millis().to_string();
        vec![
            "--join".to_owned(),
            RECOVER_CHANNEL.to_owned(),
            "--channels".to_owned(),
            self.publishers.max(1).to_string(),
            "--publish-ms".to_owned(),
            ms(RECOVER_PUBLISH_EVERY),
            "--publish-after-ms".to_owned(),
            ms(self.ramp() + Duration::from_secs(1)),
            "--reconnect-max-ms".to_owned(),
            ms(STORM_BACKOFF_CAP),
            "--offsets".to_owned(),
            "track".to_owned(),
            "--drop-at-ms".to_owned(),
            ms(timeline.drop_at),
        ]
    }
}
