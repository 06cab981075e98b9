//! The report per kind of client: what each kind is expected to do decides
//! what is counted. Healthy clients closed by the server are false
//! positives; silent and half-open ones are detections, timed from the last
//! frame they sent before going quiet (the pong to their last ping) to the
//! moment the server let go, as the server's promise is stated.

use std::{collections::BTreeMap, time::Duration};

use serde::Serialize;

use super::{CLOSED, FAILED, Latency, OPEN, PENDING, Slot, UNSET, percentile};
use crate::cli::Kind;

/// One kind's part of the report.
#[derive(Debug, Default, Serialize, PartialEq)]
pub(crate) struct KindReport {
    pub(crate) connections: u32,
    pub(crate) established: u32,
    pub(crate) failed: u32,
    pub(crate) open_at_end: u32,
    pub(crate) closed_by_server: u32,
    /// Healthy clients the server closed although they answered every
    /// ping: false positives (target zero).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) false_positives: Option<u32>,
    /// Clients that went quiet during the run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) went_quiet: Option<u32>,
    /// From the last frame sent before going quiet to the server closing,
    /// over those it closed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) detection_ms: Option<Latency>,
    /// Every detection, in ms, ascending (for plots of the distribution;
    /// at most one per connection).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) detections_ms: Vec<u32>,
    /// Quiet clients still open at the end (silent and half-open: target 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) never_closed: Option<u32>,
    /// When the last of them was closed, ms since the start of the run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) last_closed_ms: Option<u32>,
    /// Detections within `--bound-ms`, when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) within_bound: Option<u32>,
    /// Flappers and reconnecting clients: completed reconnects.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) cycles: Option<u64>,
    /// Clients that reconnected at least once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) reconnected_clients: Option<u32>,
    /// When the last of them reconnected, ms since the start of the run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) last_reconnected_ms: Option<u32>,
    /// Reconnect attempts refused because nothing listened (a restarting
    /// server; retried).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) reconnect_refused: Option<u32>,
    /// Reconnect attempts that failed otherwise (retried; target 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) reconnect_failures: Option<u32>,
    /// When the last of those attempts started, ms since the start of the
    /// run (a killed server's kernel resets the handshakes in its queue).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) last_failed_attempt_ms: Option<u32>,
}

/// The report of every kind present; `kinds[i]` is the kind of `slots[i]`.
pub(crate) fn by_kind(
    slots: &[Slot],
    kinds: &[Kind],
    bound: Option<Duration>,
) -> BTreeMap<&'static str, KindReport> {
    let mut reports: BTreeMap<Kind, (KindReport, Vec<u32>)> = BTreeMap::new();
    for (slot, &kind) in slots.iter().zip(kinds) {
        let (report, detections) = reports.entry(kind).or_default();
        report.connections += 1;
        let state = slot.state.load(std::sync::atomic::Ordering::Acquire);
        match state {
            PENDING => {}
            FAILED => report.failed += 1,
            OPEN => {
                report.established += 1;
                report.open_at_end += 1;
            }
            _ => {
                report.established += 1;
                report.closed_by_server += 1;
            }
        }
        let quiet = slot.quiet_ms.load(std::sync::atomic::Ordering::Relaxed);
        let ended = slot.ended_ms.load(std::sync::atomic::Ordering::Relaxed);
        let cycles = slot.cycles.load(std::sync::atomic::Ordering::Relaxed);
        if cycles > 0 {
            *report.cycles.get_or_insert(0) += u64::from(cycles);
            *report.reconnected_clients.get_or_insert(0) += 1;
            let at = slot
                .reconnected_ms
                .load(std::sync::atomic::Ordering::Relaxed);
            report.last_reconnected_ms = report.last_reconnected_ms.max(Some(at));
        }
        let refused = slot
            .reconnect_refused
            .load(std::sync::atomic::Ordering::Relaxed);
        let failures = slot
            .reconnect_failures
            .load(std::sync::atomic::Ordering::Relaxed);
        if refused + failures > 0 || kind == Kind::Flapper {
            *report.reconnect_refused.get_or_insert(0) += refused;
            *report.reconnect_failures.get_or_insert(0) += failures;
        }
        let failed_at = slot
            .reconnect_failed_ms
            .load(std::sync::atomic::Ordering::Relaxed);
        if failed_at != UNSET {
            report.last_failed_attempt_ms = report.last_failed_attempt_ms.max(Some(failed_at));
        }
        match kind {
            Kind::Healthy => {
                *report.false_positives.get_or_insert(0) += u32::from(state == CLOSED);
            }
            Kind::Silent | Kind::HalfOpen | Kind::SlowReader => {
                if quiet != UNSET {
                    *report.went_quiet.get_or_insert(0) += 1;
                    if state == CLOSED && ended != UNSET {
                        // The server's promise runs from the last frame it
                        // heard: the pong to the last ping answered before
                        // going quiet (or going quiet, if none was).
                        let last_ping =
                            slot.last_ping_ms.load(std::sync::atomic::Ordering::Relaxed);
                        let last_frame = if last_ping != UNSET && last_ping <= quiet {
                            last_ping
                        } else {
                            quiet
                        };
                        detections.push(ended.saturating_sub(last_frame));
                        report.last_closed_ms = report.last_closed_ms.max(Some(ended));
                    } else if kind.goes_quiet() {
                        *report.never_closed.get_or_insert(0) += 1;
                    }
                }
            }
            // Its messages keep it alive; it is judged by what others receive.
            Kind::Publisher => {}
            // Judged by what the server answered it (`abuse`).
            Kind::Flooder(_) => {}
            Kind::Flapper => {
                report.cycles.get_or_insert(0);
            }
        }
    }
    reports
        .into_iter()
        .map(|(kind, (mut report, mut detections))| {
            if kind.goes_quiet() || kind == Kind::SlowReader {
                report.went_quiet.get_or_insert(0);
                if kind.goes_quiet() {
                    report.never_closed.get_or_insert(0);
                }
                detections.sort_unstable();
                if let Some(bound) = bound {
                    let bound_ms = u32::try_from(bound.as_millis()).unwrap_or(u32::MAX);
                    report.within_bound =
                        Some(detections.iter().filter(|&&ms| ms <= bound_ms).count() as u32);
                }
                if !detections.is_empty() {
                    report.detection_ms = Some(Latency {
                        p50: f64::from(percentile(&detections, 50)),
                        p99: f64::from(percentile(&detections, 99)),
                        max: f64::from(*detections.last().expect("not empty")),
                    });
                }
                report.detections_ms = detections;
            }
            (kind.name(), report)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Reason;

    #[test]
    fn detections_are_timed_from_going_quiet_and_false_positives_counted() {
        let slots: Vec<Slot> = (0..6).map(|_| Slot::new()).collect();
        let kinds = [
            Kind::Healthy,
            Kind::Healthy,
            Kind::Silent,
            Kind::Silent,
            Kind::HalfOpen,
            Kind::Flapper,
        ];
        for slot in &slots {
            slot.opened(Duration::from_millis(1));
        }
        slots[1].closed_at(Reason::Eof, 9_000); // a healthy client dropped
        slots[2].ping(4_500); // answered at 4.5 s: its last frame
        slots[2].went_quiet(5_000);
        slots[2].closed_at(Reason::Eof, 7_600); // detected 3.1 s after it
        slots[3].went_quiet(5_000); // never detected
        slots[4].went_quiet(6_000);
        slots[4].closed_at(Reason::Eof, 11_500); // detected after 5.5 s
        slots[5].reconnected(2_000);
        slots[5].reconnected(3_000);
        slots[5].reconnect_failed(Reason::HandshakeTimeout, 2_500);
        slots[5].reconnect_failed(Reason::ConnectRefused, 2_600);
        let reports = by_kind(&slots, &kinds, Some(Duration::from_millis(4_000)));

        let healthy = &reports["healthy"];
        assert_eq!((healthy.connections, healthy.false_positives), (2, Some(1)));
        let silent = &reports["silent"];
        assert_eq!(silent.went_quiet, Some(2));
        assert_eq!(silent.never_closed, Some(1));
        assert_eq!(silent.within_bound, Some(1));
        assert_eq!(silent.detection_ms.as_ref().map(|d| d.max), Some(3_100.0));
        assert_eq!(silent.last_closed_ms, Some(7_600));
        assert_eq!(silent.detections_ms, [3_100]);
        let half_open = &reports["half-open"];
        assert_eq!(
            half_open.within_bound,
            Some(0),
            "5.5 s is over the 4 s bound"
        );
        assert_eq!(half_open.never_closed, Some(0));
        let flapper = &reports["flapper"];
        assert_eq!(
            (flapper.cycles, flapper.reconnect_failures),
            (Some(2), Some(1))
        );
        assert_eq!(flapper.reconnect_refused, Some(1));
        assert_eq!(flapper.last_failed_attempt_ms, Some(2_500));
        assert_eq!(flapper.last_reconnected_ms, Some(3_000));
        assert_eq!(flapper.reconnected_clients, Some(1));
    }
}
