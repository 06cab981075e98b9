//! Heartbeat configuration: validated once, shared by every connection.
//!
//! A `Config` is never copied into a connection: the machine takes `&Config`
//! on each call, so a million connections share one instance and invalid
//! combinations are refused before the first connection exists.

use std::fmt;
use std::time::Duration;

/// Pings closer together than this cost more than they detect.
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);
/// Below this, ordinary scheduling delays would close healthy peers.
pub const MIN_TIMEOUT: Duration = Duration::from_secs(1);
/// No heartbeat setting may exceed a day: beyond that TCP itself notices first.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 60 * 60);
/// Jitter is a fraction of the interval; more than half would make the
/// interval meaningless.
pub const MAX_JITTER: f64 = 0.5;

/// Heartbeat settings shared by all connections of a server or client.
///
/// Build one with [`Config::builder`] (or take [`Config::default`]: interval
/// 20 s, timeout 10 s, jitter 0.1).
///
/// - `interval`: how long the peer may be silent before it is pinged.
/// - `timeout`: how long after a ping we wait for any inbound frame. A peer
///   is suspect after half of it and dead after all of it, so a silent peer
///   is detected at most `interval + timeout` after its last frame.
/// - `jitter`: each ping is sent up to `jitter * interval` *earlier* than the
///   interval (never later), drawn from the connection's seed, so connections
///   made in the same instant do not ping in the same instant.
/// - `any_frame_is_alive`: a complete data frame counts as life (default);
///   when false only heartbeat frames (ping, pong) do.
/// - `close_timeout`: how long our close frame may wait for the peer's.
/// - `stall_threshold` and `stall_grace`: a kill deadline handled more than
///   `stall_threshold` late means this process was starved; the peer then
///   gets `stall_grace` for input already in its socket to be read.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    interval: Duration,
    timeout: Duration,
    jitter: f64,
    /// `jitter * interval` in nanoseconds, precomputed for the hot path.
    jitter_span_nanos: u64,
    any_frame_is_alive: bool,
    close_timeout: Duration,
    stall_threshold: Duration,
    stall_grace: Duration,
}

impl Default for Config {
    fn default() -> Self {
        ConfigBuilder::new()
            .build()
            .expect("the default heartbeat settings are valid")
    }
}

impl Config {
    /// A builder starting from the defaults.
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder::new()
    }

    /// How long the peer may be silent before it is pinged.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// How long after a ping any inbound frame must arrive.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Fraction of the interval by which pings are spread (sent earlier).
    pub fn jitter(&self) -> f64 {
        self.jitter
    }

    /// Whether a complete data frame counts as life.
    pub fn any_frame_is_alive(&self) -> bool {
        self.any_frame_is_alive
    }

    /// How long our close frame waits for the peer's answer.
    pub fn close_timeout(&self) -> Duration {
        self.close_timeout
    }

    /// How late a kill deadline must be handled to count as a stall of ours.
    pub fn stall_threshold(&self) -> Duration {
        self.stall_threshold
    }

    /// Extra time a peer gets after a stall of ours, to read its input.
    pub fn stall_grace(&self) -> Duration {
        self.stall_grace
    }

    /// The longest a silent peer can live after its last frame when this
    /// process is not starved: `interval + timeout`.
    pub fn detection_bound(&self) -> Duration {
        self.interval + self.timeout
    }

    /// After a ping, how long until the peer is shown as suspect.
    pub(crate) fn suspect_after(&self) -> Duration {
        self.timeout / 2
    }

    /// Maps 64 random bits to a delay in `[interval - jitter * interval, interval]`.
    pub(crate) fn jittered_interval(&self, random: u64) -> Duration {
        // Multiply-high keeps this a multiply and a shift: no division, no float.
        let span = u128::from(self.jitter_span_nanos) + 1;
        let earlier = (u128::from(random) * span) >> 64;
        let earlier = u64::try_from(earlier).expect("bounded by jitter_span_nanos");
        self.interval - Duration::from_nanos(earlier)
    }
}

/// Collects heartbeat settings; [`ConfigBuilder::build`] validates them.
#[derive(Debug, Clone)]
pub struct ConfigBuilder {
    interval: Duration,
    timeout: Duration,
    jitter: f64,
    any_frame_is_alive: bool,
    close_timeout: Duration,
    /// `None`: derived from the timeout at build time.
    stall_threshold: Option<Duration>,
    /// `None`: derived from the timeout at build time.
    stall_grace: Option<Duration>,
}

/// The stall threshold when none is set: 1 s, or the timeout if shorter.
const DEFAULT_STALL_THRESHOLD: Duration = Duration::from_secs(1);
/// The stall grace when none is set: 2 s, or half the timeout if shorter.
const DEFAULT_STALL_GRACE: Duration = Duration::from_secs(2);

impl Default for ConfigBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl ConfigBuilder {
    /// The defaults: interval 20 s (under common 60 s proxy idle timeouts),
    /// timeout 10 s, jitter 0.1, any frame counts, close timeout 5 s. Unless
    /// set, the stall threshold is 1 s and the stall grace 2 s, each capped
    /// so that it fits the timeout (threshold at most the timeout, grace at
    /// most half of it), so any valid timeout builds with the defaults.
    pub fn new() -> Self {
        Self {
            interval: Duration::from_secs(20),
            timeout: Duration::from_secs(10),
            jitter: 0.1,
            any_frame_is_alive: true,
            close_timeout: Duration::from_secs(5),
            stall_threshold: None,
            stall_grace: None,
        }
    }

    /// Silence allowed before a ping.
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Wait for any frame after a ping.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Fraction of the interval by which pings are spread, in `0.0..=0.5`.
    pub fn jitter(mut self, jitter: f64) -> Self {
        self.jitter = jitter;
        self
    }

    /// Whether complete data frames count as life.
    pub fn any_frame_is_alive(mut self, any_frame_is_alive: bool) -> Self {
        self.any_frame_is_alive = any_frame_is_alive;
        self
    }

    /// Wait for the peer's close frame after ours.
    pub fn close_timeout(mut self, close_timeout: Duration) -> Self {
        self.close_timeout = close_timeout;
        self
    }

    /// Lateness of a kill deadline that counts as a stall of this process.
    pub fn stall_threshold(mut self, stall_threshold: Duration) -> Self {
        self.stall_threshold = Some(stall_threshold);
        self
    }

    /// Extra time granted to a peer after a stall of this process.
    pub fn stall_grace(mut self, stall_grace: Duration) -> Self {
        self.stall_grace = Some(stall_grace);
        self
    }

    /// Checks every setting and their combinations.
    pub fn build(self) -> Result<Config, ConfigError> {
        let stall_threshold = self
            .stall_threshold
            .unwrap_or(DEFAULT_STALL_THRESHOLD.min(self.timeout));
        let stall_grace = self
            .stall_grace
            .unwrap_or(DEFAULT_STALL_GRACE.min(self.timeout / 2));
        let durations = [
            ("interval", self.interval),
            ("timeout", self.timeout),
            ("close_timeout", self.close_timeout),
            ("stall_threshold", stall_threshold),
            ("stall_grace", stall_grace),
        ];
        for (setting, value) in durations {
            if value.is_zero() {
                return Err(ConfigError::Zero { setting });
            }
            if value > MAX_DURATION {
                return Err(ConfigError::TooLong { setting, value });
            }
        }
        if self.interval < MIN_INTERVAL {
            return Err(ConfigError::IntervalTooShort {
                interval: self.interval,
            });
        }
        if self.timeout < MIN_TIMEOUT {
            return Err(ConfigError::TimeoutTooShort {
                timeout: self.timeout,
            });
        }
        if !(0.0..=MAX_JITTER).contains(&self.jitter) {
            return Err(ConfigError::JitterOutOfRange {
                jitter: self.jitter,
            });
        }
        if stall_threshold > self.timeout {
            return Err(ConfigError::StallThresholdOverTimeout {
                stall_threshold,
                timeout: self.timeout,
            });
        }
        if stall_grace >= self.timeout {
            return Err(ConfigError::StallGraceNotUnderTimeout {
                stall_grace,
                timeout: self.timeout,
            });
        }
        let interval_nanos = u64::try_from(self.interval.as_nanos())
            .expect("interval is at most MAX_DURATION, which fits u64 nanoseconds");
        // Truncation is fine: the span only needs to be at most jitter * interval.
        let jitter_span_nanos = (interval_nanos as f64 * self.jitter) as u64;
        Ok(Config {
            interval: self.interval,
            timeout: self.timeout,
            jitter: self.jitter,
            jitter_span_nanos: jitter_span_nanos.min(interval_nanos / 2),
            any_frame_is_alive: self.any_frame_is_alive,
            close_timeout: self.close_timeout,
            stall_threshold,
            stall_grace,
        })
    }
}

/// Why a heartbeat configuration was refused.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ConfigError {
    /// A duration setting is zero.
    Zero {
        /// The setting's name.
        setting: &'static str,
    },
    /// A duration setting exceeds [`MAX_DURATION`].
    TooLong {
        /// The setting's name.
        setting: &'static str,
        /// The refused value.
        value: Duration,
    },
    /// `interval` is under [`MIN_INTERVAL`].
    IntervalTooShort {
        /// The refused value.
        interval: Duration,
    },
    /// `timeout` is under [`MIN_TIMEOUT`].
    TimeoutTooShort {
        /// The refused value.
        timeout: Duration,
    },
    /// `jitter` is not a number in `0.0..=0.5`.
    JitterOutOfRange {
        /// The refused value.
        jitter: f64,
    },
    /// A stall longer than the timeout would not be recognised as one.
    StallThresholdOverTimeout {
        /// The refused threshold.
        stall_threshold: Duration,
        /// The timeout it exceeds.
        timeout: Duration,
    },
    /// A stall grace as long as the timeout would double every detection.
    StallGraceNotUnderTimeout {
        /// The refused grace.
        stall_grace: Duration,
        /// The timeout it must stay under.
        timeout: Duration,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Zero { setting } => write!(
                f,
                "heartbeat {setting} is zero; it must be a positive duration"
            ),
            Self::TooLong { setting, value } => write!(
                f,
                "heartbeat {setting} of {value:?} is longer than the {MAX_DURATION:?} maximum; \
                 a dead peer would go unnoticed longer than TCP itself takes to notice"
            ),
            Self::IntervalTooShort { interval } => write!(
                f,
                "heartbeat interval of {interval:?} is under the {MIN_INTERVAL:?} minimum; \
                 pinging that often costs more than it detects"
            ),
            Self::TimeoutTooShort { timeout } => write!(
                f,
                "heartbeat timeout of {timeout:?} is under the {MIN_TIMEOUT:?} minimum; \
                 ordinary scheduling and network delays would close healthy peers"
            ),
            Self::JitterOutOfRange { jitter } => write!(
                f,
                "heartbeat jitter of {jitter} is outside 0.0..=0.5; it is the fraction of the \
                 interval by which pings are spread"
            ),
            Self::StallThresholdOverTimeout {
                stall_threshold,
                timeout,
            } => write!(
                f,
                "heartbeat stall_threshold of {stall_threshold:?} exceeds the timeout of \
                 {timeout:?}; a stall that long must be recognised, or a starved process \
                 would close healthy peers"
            ),
            Self::StallGraceNotUnderTimeout {
                stall_grace,
                timeout,
            } => write!(
                f,
                "heartbeat stall_grace of {stall_grace:?} is not shorter than the timeout of \
                 {timeout:?}; a grace that long would double the detection time after every stall"
            ),
        }
    }
}

impl std::error::Error for ConfigError {}
