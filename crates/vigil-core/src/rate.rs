//! Request rate limits per connection: a token bucket in its GCRA form
//! (the generic cell rate algorithm), whose whole state is one instant,
//! the "theoretical arrival time" of the next request, kept as 8 bytes of
//! nanoseconds since the limit's origin. [`RateLimit`] is the shape shared
//! by every connection; [`Bucket`] is one connection's state.
//!
//! Call order: build a [`RateLimit`] once; for each request call
//! [`Bucket::take`] with the current time: `Ok(())` admits it, `Err(wait)`
//! says how long until one more would be admitted.

use std::time::{Duration, Instant};

/// `rate` requests a second sustained, up to `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Time one request costs: a second divided by the rate.
    emission: Duration,
    /// How far ahead of `now` the bucket may be booked: `burst - 1`
    /// requests' worth.
    tolerance: Duration,
    /// The instant buckets count from (any instant before their first
    /// request; earlier ones count as it).
    origin: Instant,
}

/// Why a limit was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RateLimitError {
    /// A rate of zero requests a second, or more than a million.
    Rate(u32),
    /// A burst of zero.
    Burst,
}

impl std::fmt::Display for RateLimitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Rate(rate) => write!(
                f,
                "a rate limit of {rate} requests a second is outside 1..=1000000"
            ),
            Self::Burst => f.write_str("a rate limit's burst must be at least 1"),
        }
    }
}

impl std::error::Error for RateLimitError {}

impl RateLimit {
    /// `rate` requests a second (1..=1,000,000), `burst` (at least 1) at
    /// once, for buckets whose requests come at `origin` or later.
    pub fn new(rate: u32, burst: u32, origin: Instant) -> Result<Self, RateLimitError> {
        if !(1..=1_000_000).contains(&rate) {
            return Err(RateLimitError::Rate(rate));
        }
        if burst == 0 {
            return Err(RateLimitError::Burst);
        }
        let emission = Duration::from_secs(1) / rate;
        Ok(Self {
            emission,
            tolerance: emission * (burst - 1),
            origin,
        })
    }

    /// Requests a second, sustained.
    #[must_use]
    pub fn rate(&self) -> u32 {
        u32::try_from(Duration::from_secs(1).as_nanos() / self.emission.as_nanos().max(1))
            .unwrap_or(u32::MAX)
    }
}

/// One connection's use of a [`RateLimit`]: 8 bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bucket {
    /// When the bucket is empty again at the sustained rate, in
    /// nanoseconds since the limit's origin; 0 until the first request
    /// (a booked time is always at least one emission past the origin).
    theoretical_arrival: u64,
}

impl Bucket {
    /// Admits one request at `now` (`Ok`), or says how long until one
    /// would be (`Err`), changing nothing. A `now` earlier than a previous
    /// call's counts as that call's time.
    pub fn take(&mut self, now: Instant, limit: &RateLimit) -> Result<(), Duration> {
        let now = nanos(now.saturating_duration_since(limit.origin));
        let arrival = match self.theoretical_arrival {
            0 => now,
            booked => booked,
        };
        let allowed_from = arrival.saturating_sub(nanos(limit.tolerance));
        if now < allowed_from {
            return Err(Duration::from_nanos(allowed_from - now));
        }
        self.theoretical_arrival = arrival.max(now).saturating_add(nanos(limit.emission));
        Ok(())
    }
}

/// A duration in whole nanoseconds, saturating (u64 holds 584 years).
fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests;
