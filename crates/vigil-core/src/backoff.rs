//! Reconnect backoff for clients: a random initial delay, exponential growth
//! with full jitter, a cap, and a reset after a connection stayed up long enough.
//!
//! The point is the thundering herd. When a server restarts, 100k clients lose
//! their connection in the same millisecond; if they all retry after the same
//! delay, the server is knocked over again, and again. So every delay is drawn
//! at random (from a seed the caller injects, one per client):
//!
//! - attempt 0 (the first attempt after start-up or after a stable
//!   connection dropped) waits uniform `[0, initial_max)`, which spreads a
//!   herd of N clients over `initial_max` (N / `initial_max` connects per
//!   second; raise it for bigger herds);
//! - attempt n ≥ 1 waits uniform `[0, envelope(n))` ("full jitter"), where
//!   `envelope(n) = min(cap, base · factor^(n-1))`.
//!
//! A connection that stays up for `stable_after` resets the sequence; one that
//! drops sooner does not, so a server that accepts and immediately drops
//! connections sees each client back off to `cap` instead of being hammered.
//!
//! The policy is sans-IO: it never reads a clock or sleeps. It returns a
//! [`Duration`]; the caller waits it out. [`BackoffConfig`] is validated once
//! and shared by reference by every client; each [`Backoff`] holds only its
//! random state, its attempt counter and when its connection came up.

use std::error::Error;
use std::fmt;
use std::time::{Duration, Instant};

use crate::rng::SplitMix64;

#[cfg(test)]
mod tests;

/// Validated settings of the reconnect policy, shared by all clients.
///
/// Build one with [`BackoffConfig::builder`] (or take the [`Default`]). Every
/// duration is at most [`BackoffConfig::MAX_DURATION`], `0 < base <= cap`,
/// `initial_max <= cap` and `factor` is finite and `>= 1`, so no delay ever
/// exceeds `cap`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BackoffConfig {
    initial_max: Duration,
    base: Duration,
    factor: f64,
    cap: Duration,
    stable_after: Duration,
}

impl BackoffConfig {
    /// The longest any setting may be. Anything longer is almost certainly a
    /// unit mistake (milliseconds read as seconds), and a client that waits
    /// hours to reconnect looks like an outage.
    pub const MAX_DURATION: Duration = Duration::from_secs(60 * 60);

    const DEFAULT: Self = Self {
        initial_max: Duration::from_secs(1),
        base: Duration::from_millis(500),
        factor: 2.0,
        cap: Duration::from_secs(30),
        stable_after: Duration::from_secs(10),
    };

    /// A builder starting from the defaults: `initial_max` 1 s, `base` 500 ms,
    /// `factor` 2, `cap` 30 s, `stable_after` 10 s.
    #[must_use]
    pub const fn builder() -> BackoffConfigBuilder {
        BackoffConfigBuilder {
            config: Self::DEFAULT,
        }
    }

    /// The first attempt waits uniform `[0, initial_max)`; zero means it
    /// starts at once.
    #[must_use]
    pub const fn initial_max(&self) -> Duration {
        self.initial_max
    }

    /// The envelope of attempt 1: the first retry waits uniform `[0, base)`.
    #[must_use]
    pub const fn base(&self) -> Duration {
        self.base
    }

    /// How much the envelope grows per attempt.
    #[must_use]
    pub const fn factor(&self) -> f64 {
        self.factor
    }

    /// The largest envelope: no delay ever reaches it.
    #[must_use]
    pub const fn cap(&self) -> Duration {
        self.cap
    }

    /// How long a connection must stay up to reset the sequence to attempt 0.
    #[must_use]
    pub const fn stable_after(&self) -> Duration {
        self.stable_after
    }

    /// The exclusive upper bound of the delay drawn for `attempt`:
    /// `initial_max` for attempt 0, `min(cap, base · factor^(attempt-1))`
    /// after. Saturates at `cap`, for any `attempt`.
    #[must_use]
    pub fn envelope(&self, attempt: u32) -> Duration {
        let Some(exponent) = attempt.checked_sub(1) else {
            return self.initial_max;
        };
        let exponent = i32::try_from(exponent).unwrap_or(i32::MAX);
        // Both are at most an hour (3.6e12 ns < 2^53), so exact in an f64.
        let base = self.base.as_nanos() as f64;
        let cap = self.cap.as_nanos() as f64;
        let grown = base * self.factor.powi(exponent);
        // An infinite (or, defensively, NaN) product falls to the cap.
        if grown < cap {
            // Below the cap, hence below 2^53: the cast only drops the fraction.
            Duration::from_nanos(grown as u64)
        } else {
            self.cap
        }
    }
}

impl Default for BackoffConfig {
    /// `initial_max` 1 s, `base` 500 ms, `factor` 2, `cap` 30 s,
    /// `stable_after` 10 s.
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Builds a [`BackoffConfig`]; [`build`](Self::build) checks it.
#[derive(Debug, Clone, Copy)]
pub struct BackoffConfigBuilder {
    config: BackoffConfig,
}

impl BackoffConfigBuilder {
    /// See [`BackoffConfig::initial_max`].
    #[must_use]
    pub const fn initial_max(mut self, initial_max: Duration) -> Self {
        self.config.initial_max = initial_max;
        self
    }

    /// See [`BackoffConfig::base`].
    #[must_use]
    pub const fn base(mut self, base: Duration) -> Self {
        self.config.base = base;
        self
    }

    /// See [`BackoffConfig::factor`].
    #[must_use]
    pub const fn factor(mut self, factor: f64) -> Self {
        self.config.factor = factor;
        self
    }

    /// See [`BackoffConfig::cap`].
    #[must_use]
    pub const fn cap(mut self, cap: Duration) -> Self {
        self.config.cap = cap;
        self
    }

    /// See [`BackoffConfig::stable_after`].
    #[must_use]
    pub const fn stable_after(mut self, stable_after: Duration) -> Self {
        self.config.stable_after = stable_after;
        self
    }

    /// The config, or the first problem found with it.
    pub fn build(self) -> Result<BackoffConfig, BackoffConfigError> {
        let c = self.config;
        let durations = [
            ("initial_max", c.initial_max),
            ("base", c.base),
            ("cap", c.cap),
            ("stable_after", c.stable_after),
        ];
        if let Some(&(setting, value)) = durations
            .iter()
            .find(|(_, value)| *value > BackoffConfig::MAX_DURATION)
        {
            return Err(BackoffConfigError::TooLong { setting, value });
        }
        if c.base.is_zero() {
            return Err(BackoffConfigError::ZeroBase);
        }
        if c.cap.is_zero() {
            return Err(BackoffConfigError::ZeroCap);
        }
        if c.stable_after.is_zero() {
            return Err(BackoffConfigError::ZeroStableAfter);
        }
        if !(c.factor.is_finite() && c.factor >= 1.0) {
            return Err(BackoffConfigError::InvalidFactor { factor: c.factor });
        }
        if c.cap < c.base {
            return Err(BackoffConfigError::CapBelowBase {
                cap: c.cap,
                base: c.base,
            });
        }
        if c.initial_max > c.cap {
            return Err(BackoffConfigError::InitialMaxAboveCap {
                initial_max: c.initial_max,
                cap: c.cap,
            });
        }
        Ok(c)
    }
}

/// Why a [`BackoffConfig`] was rejected.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum BackoffConfigError {
    /// `base` is zero: every retry would be immediate.
    ZeroBase,
    /// `cap` is zero: every retry would be immediate.
    ZeroCap,
    /// `stable_after` is zero: every connection, even one dropped at once,
    /// would reset the sequence.
    ZeroStableAfter,
    /// `factor` is below 1, infinite or NaN.
    InvalidFactor {
        /// The rejected value.
        factor: f64,
    },
    /// `cap` is below `base`.
    CapBelowBase {
        /// The rejected cap.
        cap: Duration,
        /// The base it is below.
        base: Duration,
    },
    /// `initial_max` is above `cap`; no delay may exceed `cap`.
    InitialMaxAboveCap {
        /// The rejected initial maximum.
        initial_max: Duration,
        /// The cap it is above.
        cap: Duration,
    },
    /// A duration is above [`BackoffConfig::MAX_DURATION`].
    TooLong {
        /// The name of the setting, as in the builder.
        setting: &'static str,
        /// The rejected value.
        value: Duration,
    },
}

impl fmt::Display for BackoffConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ZeroBase => f.write_str(
                "backoff base must be greater than zero: a zero base makes every retry \
                 immediate and hammers the server",
            ),
            Self::ZeroCap => f.write_str(
                "backoff cap must be greater than zero: a zero cap makes every retry \
                 immediate and hammers the server",
            ),
            Self::ZeroStableAfter => f.write_str(
                "backoff stable_after must be greater than zero: otherwise a connection \
                 dropped at once resets the backoff and the server is hammered",
            ),
            Self::InvalidFactor { factor } => write!(
                f,
                "backoff factor must be a finite number of at least 1, got {factor}: \
                 a smaller factor would shrink delays instead of growing them"
            ),
            Self::CapBelowBase { cap, base } => write!(
                f,
                "backoff cap ({cap:?}) is below base ({base:?}): raise cap or lower base"
            ),
            Self::InitialMaxAboveCap { initial_max, cap } => write!(
                f,
                "backoff initial_max ({initial_max:?}) is above cap ({cap:?}): no delay may \
                 exceed cap, lower initial_max or raise cap"
            ),
            Self::TooLong { setting, value } => write!(
                f,
                "backoff {setting} is {value:?}, above the limit of {:?}: check the unit",
                BackoffConfig::MAX_DURATION
            ),
        }
    }
}

impl Error for BackoffConfigError {}

/// One client's reconnect state: which attempt comes next, and since when its
/// connection has been up.
///
/// Call order, for a client with its own `seed`:
///
/// 1. [`next_delay`](Self::next_delay): wait that long, then try to connect.
///    If the attempt fails, go back to 1.
/// 2. [`handle_connected`](Self::handle_connected) once the connection is up.
/// 3. [`handle_disconnected`](Self::handle_disconnected) when it drops, then
///    go back to 1.
///
/// A connection that stayed up for at least `stable_after` (measured from
/// `handle_connected` to `handle_disconnected`) resets the sequence: the next
/// delay is the random initial one again. A shorter one does not: the
/// envelope keeps growing, so a server that accepts and drops at once is not
/// hammered. A `now` earlier than the connect time counts as zero uptime.
///
/// 32 bytes on 64-bit Linux; the shared config is not copied into it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backoff {
    rng: SplitMix64,
    attempt: u32,
    connected_since: Option<Instant>,
}

impl Backoff {
    /// A fresh sequence (attempt 0) whose delays are fully determined by
    /// `seed`. Give every client a different seed, or they move in lockstep.
    #[must_use]
    pub const fn new(seed: u64) -> Self {
        Self {
            rng: SplitMix64::new(seed),
            attempt: 0,
            connected_since: None,
        }
    }

    /// The delay to wait before the next connect attempt, drawn uniformly
    /// from `[0, config.envelope(self.attempt()))` (exactly zero when that
    /// envelope is zero); then counts the attempt (saturating at `u32::MAX`).
    /// Never exceeds `config.cap()`.
    #[must_use = "the caller must wait the delay before connecting"]
    pub fn next_delay(&mut self, config: &BackoffConfig) -> Duration {
        let envelope = config.envelope(self.attempt);
        self.attempt = self.attempt.saturating_add(1);
        uniform_below(&mut self.rng, envelope)
    }

    /// The connection came up at `now`. A repeated call while already
    /// connected is ignored: the connection has been up since the first.
    pub fn handle_connected(&mut self, now: Instant) {
        self.connected_since.get_or_insert(now);
    }

    /// The connection dropped at `now`. If it had been up for at least
    /// `config.stable_after()`, the sequence restarts at attempt 0; otherwise
    /// the next delay keeps growing. Ignored when not connected.
    pub fn handle_disconnected(&mut self, now: Instant, config: &BackoffConfig) {
        let Some(since) = self.connected_since.take() else {
            return;
        };
        // Clamps a `now` before `since` to zero uptime: no reset.
        if now.saturating_duration_since(since) >= config.stable_after {
            self.attempt = 0;
        }
    }

    /// The attempt the next delay is for: how many delays were handed out
    /// since creation or the last reset.
    #[must_use]
    pub const fn attempt(&self) -> u32 {
        self.attempt
    }

    /// When the current connection came up, or `None` while disconnected.
    #[must_use]
    pub const fn connected_since(&self) -> Option<Instant> {
        self.connected_since
    }
}

/// Uniform in `[0, bound)`, or zero for a zero bound.
fn uniform_below(rng: &mut SplitMix64, bound: Duration) -> Duration {
    // Bounds are at most an hour, far below u64::MAX nanoseconds.
    let bound = u64::try_from(bound.as_nanos()).unwrap_or(u64::MAX);
    // Multiply-shift maps 64 random bits onto [0, bound) without a float
    // rounding up to `bound`; its bias (bound / 2^64) is far below a nanosecond.
    let scaled = (u128::from(rng.next_u64()) * u128::from(bound)) >> 64;
    Duration::from_nanos(u64::try_from(scaled).unwrap_or(u64::MAX))
}
