//! The validated settings of the presence table and why a setting is refused.

use std::error::Error;
use std::fmt;
use std::time::Duration;

/// Validated settings of a [`Presence`](super::Presence) table.
///
/// Build one with [`PresenceConfig::builder`] (or take the [`Default`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PresenceConfig {
    leave_grace: Duration,
}

impl PresenceConfig {
    /// The longest grace allowed. Longer is almost certainly a unit mistake
    /// (milliseconds read as seconds), and a user who vanished would be shown
    /// online for that long.
    pub const MAX_LEAVE_GRACE: Duration = Duration::from_secs(60 * 60);

    const DEFAULT: Self = Self {
        leave_grace: Duration::from_secs(5),
    };

    /// A builder starting from the defaults: `leave_grace` 5 s.
    #[must_use]
    pub const fn builder() -> PresenceConfigBuilder {
        PresenceConfigBuilder {
            config: Self::DEFAULT,
        }
    }

    /// How long the leave of a user whose last connection ended waits before
    /// it is announced; a connection of theirs that joins the channel again
    /// within it cancels the leave (no flicker on reload). Zero announces the
    /// leave at once. An explicit [`leave`](super::Presence::leave) never
    /// waits: the user asked.
    #[must_use]
    pub const fn leave_grace(&self) -> Duration {
        self.leave_grace
    }
}

impl Default for PresenceConfig {
    /// `leave_grace` 5 s.
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Builds a [`PresenceConfig`]; [`build`](Self::build) checks it.
#[derive(Debug, Clone, Copy)]
pub struct PresenceConfigBuilder {
    config: PresenceConfig,
}

impl PresenceConfigBuilder {
    /// See [`PresenceConfig::leave_grace`].
    #[must_use]
    pub const fn leave_grace(mut self, leave_grace: Duration) -> Self {
        self.config.leave_grace = leave_grace;
        self
    }

    /// The config, or the first problem found with it.
    pub fn build(self) -> Result<PresenceConfig, PresenceConfigError> {
        let c = self.config;
        if c.leave_grace > PresenceConfig::MAX_LEAVE_GRACE {
            return Err(PresenceConfigError::LeaveGraceTooLong {
                value: c.leave_grace,
            });
        }
        Ok(c)
    }
}

/// Why a [`PresenceConfig`] was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PresenceConfigError {
    /// `leave_grace` is above [`PresenceConfig::MAX_LEAVE_GRACE`].
    LeaveGraceTooLong {
        /// The rejected value.
        value: Duration,
    },
}

impl fmt::Display for PresenceConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::LeaveGraceTooLong { value } => write!(
                f,
                "presence leave_grace is {value:?}, above the limit of {:?}: a user who \
                 vanished would be shown online that long; check the unit (a few seconds \
                 is enough to hide a page reload)",
                PresenceConfig::MAX_LEAVE_GRACE
            ),
        }
    }
}

impl Error for PresenceConfigError {}
