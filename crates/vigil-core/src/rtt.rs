//! Round-trip time estimation from ping/pong samples (RFC 6298 SRTT/RTTVAR,
//! plus the minimum and the latest RTT seen).
//!
//! Stored as saturating microsecond counters so the estimator costs 20 bytes
//! per connection instead of four `Duration`s.

use std::time::Duration;

/// Smoothed RTT, RTT variation, minimum and latest RTT of one connection.
///
/// `srtt` and `rttvar` follow RFC 6298 section 2: the first sample `R` sets
/// `SRTT = R`, `RTTVAR = R / 2`; later samples update
/// `RTTVAR = 3/4 RTTVAR + 1/4 |SRTT - R|` then `SRTT = 7/8 SRTT + 1/8 R`.
/// Values saturate at `u32::MAX` microseconds (about 71 minutes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RttEstimator {
    srtt_us: u32,
    rttvar_us: u32,
    min_us: u32,
    latest_us: u32,
    samples: u32,
}

impl RttEstimator {
    /// An estimator with no samples yet.
    pub const fn new() -> Self {
        Self {
            srtt_us: 0,
            rttvar_us: 0,
            min_us: 0,
            latest_us: 0,
            samples: 0,
        }
    }

    /// Folds one measured round trip into the estimates.
    pub fn handle_sample(&mut self, rtt: Duration) {
        let sample = saturating_micros(rtt);
        self.latest_us = sample;
        if self.samples == 0 {
            self.srtt_us = sample;
            self.rttvar_us = sample / 2;
            self.min_us = sample;
        } else {
            let srtt = u64::from(self.srtt_us);
            let rttvar = u64::from(self.rttvar_us);
            let sample64 = u64::from(sample);
            let deviation = srtt.abs_diff(sample64);
            // Integer forms of 3/4 * RTTVAR + 1/4 * dev and 7/8 * SRTT + 1/8 * R,
            // rounded to nearest so small RTTs do not decay to zero.
            self.rttvar_us = clamp_u32((3 * rttvar + deviation + 2) / 4);
            self.srtt_us = clamp_u32((7 * srtt + sample64 + 4) / 8);
            self.min_us = self.min_us.min(sample);
        }
        self.samples = self.samples.saturating_add(1);
    }

    /// Smoothed round-trip time, `None` before the first sample.
    pub fn srtt(&self) -> Option<Duration> {
        self.measured(self.srtt_us)
    }

    /// Round-trip time variation, `None` before the first sample.
    pub fn rttvar(&self) -> Option<Duration> {
        self.measured(self.rttvar_us)
    }

    /// Smallest round trip seen, `None` before the first sample.
    pub fn min_rtt(&self) -> Option<Duration> {
        self.measured(self.min_us)
    }

    /// The most recent sample, `None` before the first.
    pub fn latest(&self) -> Option<Duration> {
        self.measured(self.latest_us)
    }

    /// Number of samples folded in (saturating).
    pub fn sample_count(&self) -> u32 {
        self.samples
    }

    fn measured(&self, micros: u32) -> Option<Duration> {
        (self.samples > 0).then(|| Duration::from_micros(u64::from(micros)))
    }
}

fn saturating_micros(duration: Duration) -> u32 {
    clamp_u32(u64::try_from(duration.as_micros()).unwrap_or(u64::MAX))
}

fn clamp_u32(value: u64) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests;
