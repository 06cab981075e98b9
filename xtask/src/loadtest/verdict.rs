//! What a run measured and whether it kept the promises: the figures (from
//! the server's samples) and the checks (from the loadgen's report).

use std::{fmt::Write as _, time::Duration};

use anyhow::{Result, bail};
use serde_json::{Value, json};

use super::{
    Events,
    plan::{Plan, Scenario},
    server::Sample,
};

/// One promise, kept or not, and what was seen.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Check {
    pub(crate) name: String,
    pub(crate) passed: bool,
    pub(crate) seen: String,
}

#[derive(Debug)]
pub(crate) struct Verdict {
    scenario: &'static str,
    describe: String,
    figures: Vec<(&'static str, String)>,
    checks: Vec<Check>,
    /// Markdown tables after the figures (`abuse`: one row per flooder kind).
    tables: Vec<String>,
}

/// A duration in seconds, or "never".
fn in_seconds(duration: Option<Duration>) -> String {
    duration.map_or_else(
        || "never".to_owned(),
        |d| format!("{:.2} s", d.as_secs_f64()),
    )
}

/// `report.kinds.<kind>.<field>` as a number, if present.
fn kind_field(report: &Value, kind: &str, field: &str) -> Option<f64> {
    report["kinds"][kind][field].as_f64()
}

impl Verdict {
    /// `samples`: before the load, at the window's start and end, and at
    /// the end. `events`: what the harness did (a stop, a restart).
    pub(crate) fn judge(
        plan: &Plan,
        report: &Value,
        samples: [&Sample; 4],
        events: &Events,
    ) -> Verdict {
        let stopped = events.stopped;
        let [baseline, start, end, _last] = samples;
        let mut checks = Vec::new();
        let mut check = |name: String, passed: bool, seen: String| {
            checks.push(Check { name, passed, seen });
        };
        let number = |path: &[&str]| {
            path.iter()
                .fold(report, |value, key| &value[*key])
                .as_f64()
                .unwrap_or(f64::NAN)
        };
        let attempted = number(&["attempted"]);
        let failed = number(&["failed"]);
        check(
            "every handshake succeeds".into(),
            failed == 0.0 && attempted == f64::from(plan.connections()),
            format!("{attempted} attempted, {failed} failed"),
        );
        let false_positives = kind_field(report, "healthy", "false_positives").unwrap_or(f64::NAN);
        // Under `flood` one loadgen core may fall behind 100 ms pings; its
        // late pongs are the client's failure, not a false positive. Under
        // `storm` clients reconnect, so none ever ends as closed: the count
        // would say nothing.
        if !(plan.scenario == Scenario::Flood || plan.restarts()) {
            check(
                "no healthy client is closed (false positives)".into(),
                false_positives == 0.0,
                format!("{false_positives} closed"),
            );
        }
        for (kind, count) in [("silent", plan.silent), ("half-open", plan.half_open)] {
            if count == 0 {
                continue;
            }
            let quiet = kind_field(report, kind, "went_quiet").unwrap_or(f64::NAN);
            let never = kind_field(report, kind, "never_closed").unwrap_or(f64::NAN);
            let within = kind_field(report, kind, "within_bound").unwrap_or(f64::NAN);
            let max = report["kinds"][kind]["detection_ms"]["max"]
                .as_f64()
                .unwrap_or(f64::NAN);
            check(
                format!("every {kind} client is detected"),
                quiet == f64::from(count) && never == 0.0,
                format!("{quiet} went quiet, {never} never closed"),
            );
            // Within the bound, except across a deliberate stop of the
            // server, which pauses its clock too.
            if stopped.is_none() {
                check(
                    format!(
                        "every {kind} client is detected within {} ms",
                        plan.bound().as_millis()
                    ),
                    within == quiet,
                    format!("{within} of {quiet}; slowest {max} ms"),
                );
            }
        }
        if plan.slow_readers > 0 {
            let closed = kind_field(report, "slow-reader", "closed_by_server").unwrap_or(f64::NAN);
            check(
                "slow readers that keep writing stay connected".into(),
                closed == 0.0,
                format!("{closed} closed"),
            );
        }
        if plan.scenario == Scenario::Publish {
            let received = number(&["messages", "received"]);
            check(
                "subscribers receive the channel's messages".into(),
                received > 0.0,
                format!("{received} deliveries"),
            );
        }
        if let Some(storm) = &events.storm {
            let expected = f64::from(plan.connections());
            let back = kind_field(report, "healthy", "reconnected_clients").unwrap_or(0.0);
            let failures = kind_field(report, "healthy", "reconnect_failures").unwrap_or(0.0);
            let last_failed = kind_field(report, "healthy", "last_failed_attempt_ms");
            check(
                "every client reconnects after the restart".into(),
                back == expected && storm.all_connected.is_some(),
                format!(
                    "{back} of {expected} clients; server saw all: {}",
                    in_seconds(storm.all_connected)
                ),
            );
            if storm.graceful {
                // SIGTERM: the old server closes its listener before it tells
                // anyone to go, so no attempt can reach a dying listener.
                check(
                    "no reconnect attempt fails (refusals aside)".into(),
                    failures == 0.0,
                    format!("{failures} failed"),
                );
                check(
                    "the old server ends once it has sent every client 1001".into(),
                    storm.gone_at.is_some(),
                    match storm.gone_at {
                        Some(at) => {
                            format!("{} ms after SIGTERM", (at - storm.stopped_at).as_millis())
                        }
                        None => "still running".to_owned(),
                    },
                );
            } else {
                // SIGKILL: the kernel closes the dead process's sockets one
                // by one, its listener last, and until then the listener
                // still completes handshakes into a queue no one accepts
                // from; they are reset. Such attempts start before the
                // process is gone; any attempt that starts later can only
                // reach the new server (or nothing: refused) and must not
                // fail. The loadgen's clock starts a few ms after the
                // harness's, which errs towards "later".
                let gone_ms = storm.gone_at.map_or(0.0, |at| at.as_millis() as f64);
                check(
                    "no attempt fails that starts once the killed server is gone".into(),
                    last_failed.is_none_or(|at| at <= gone_ms),
                    match last_failed {
                        Some(at) => format!(
                            "{failures} attempts failed (refusals aside), the last started \
                             {at:.0} ms into the run; killed at {} ms, gone at {gone_ms:.0} ms",
                            storm.stopped_at.as_millis()
                        ),
                        None => "none failed (refusals aside)".to_owned(),
                    },
                );
            }
            check(
                "the channel's presence is whole again".into(),
                storm.presence_whole.is_some(),
                format!("after {}", in_seconds(storm.presence_whole)),
            );
        }
        if plan.scenario == Scenario::Idle {
            let min_pings = number(&["pings", "per_connection_min"]);
            check(
                "every connection is pinged through the hold".into(),
                min_pings >= 4.0,
                format!("fewest pings on a connection: {min_pings}"),
            );
        }

        let mut figures = Vec::new();
        let connections = end.connections.max(1) as f64;
        if let (Some(before), Some(after)) = (baseline.heap_bytes, end.heap_bytes) {
            figures.push((
                "server live heap per connection",
                format!("{:.0} B", after.saturating_sub(before) as f64 / connections),
            ));
        }
        figures.push((
            "server RSS per connection",
            format!(
                "{:.2} KiB",
                end.rss_kib.saturating_sub(baseline.rss_kib) as f64 / connections
            ),
        ));
        let pings = end.pings_sent.saturating_sub(start.pings_sent);
        let seconds = end.at.duration_since(start.at).as_secs_f64();
        // Under `publish` the CPU goes to fan-out, not heartbeats.
        if pings > 0 && plan.scenario != Scenario::Publish {
            let cpu = end.cpu_s - start.cpu_s;
            figures.push((
                "server CPU per heartbeat",
                format!(
                    "{:.1} us ({:.2} s of CPU over {pings} heartbeats; CPU time counts in 10 ms ticks)",
                    cpu * 1e6 / pings as f64,
                    cpu
                ),
            ));
        }
        let per_second = pings as f64 / seconds.max(f64::EPSILON);
        figures.push(("heartbeats per second (window)", format!("{per_second:.0}")));
        let busy = (end.cpu_s - start.cpu_s) / seconds.max(f64::EPSILON);
        figures.push((
            "server CPU (window)",
            format!("{:.0} % of a core", busy * 100.0),
        ));
        let shard_busy: Vec<f64> = end
            .shard_cpu_s
            .iter()
            .filter_map(|&(tid, cpu)| {
                let before = start.shard_cpu_s.iter().find(|&&(id, _)| id == tid)?.1;
                Some((cpu - before) / seconds.max(f64::EPSILON))
            })
            .collect();
        if !shard_busy.is_empty() {
            let shares: Vec<String> = shard_busy
                .iter()
                .map(|busy| format!("{:.0} %", busy * 100.0))
                .collect();
            figures.push((
                "each shard thread's CPU (window)",
                format!("{} of a core", shares.join(" / ")),
            ));
        }
        if plan.scenario == Scenario::Flood {
            if let Some(busiest) = shard_busy.iter().copied().reduce(f64::max) {
                figures.push((
                    "ceiling: heartbeats per second when the busiest shard is saturated",
                    format!(
                        "{:.0} (heartbeats per second / the busiest shard thread's share of a core)",
                        per_second / busiest.max(f64::EPSILON)
                    ),
                ));
            }
            figures.push((
                "round trips per second per server core",
                format!(
                    "{:.0} (heartbeats per second / share of a core busy)",
                    per_second / busy.max(f64::EPSILON)
                ),
            ));
            figures.push((
                "healthy clients closed (loadgen falling behind)",
                false_positives.to_string(),
            ));
        }
        figures.push((
            "connections at the window's end",
            end.connections.to_string(),
        ));
        figures.push((
            "handshake p50 / p99",
            format!(
                "{} / {} ms",
                number(&["handshake_ms", "p50"]),
                number(&["handshake_ms", "p99"])
            ),
        ));
        if plan.scenario == Scenario::Publish {
            let received = number(&["messages", "received"]);
            // Deliveries over the time between the first and the last.
            let held = number(&["messages", "span_s"]).max(f64::EPSILON);
            figures.push((
                "publish: messages sent per second",
                format!("{:.0} to {} subscribers", plan.publish_rate(), plan.healthy),
            ));
            figures.push((
                "publish: deliveries per second",
                format!(
                    "{:.0} (of {:.0} offered)",
                    received / held,
                    plan.publish_rate() * f64::from(plan.healthy)
                ),
            ));
            let latency = &report["messages"]["latency_ms"];
            figures.push((
                "publish: delivery latency p50 / p99 / max",
                format!(
                    "{} / {} / {} ms",
                    latency["p50"], latency["p99"], latency["max"]
                ),
            ));
        }
        for kind in ["silent", "half-open"] {
            let detection = &report["kinds"][kind]["detection_ms"];
            if detection.is_object() {
                figures.push((
                    if kind == "silent" {
                        "silent: detection p50 / p99 / max"
                    } else {
                        "half-open: detection p50 / p99 / max"
                    },
                    format!(
                        "{} / {} / {} ms (bound {} ms)",
                        detection["p50"],
                        detection["p99"],
                        detection["max"],
                        plan.bound().as_millis()
                    ),
                ));
            }
        }
        if let Some(storm) = &events.storm {
            let expected = f64::from(plan.connections());
            figures.push((
                "storm: every client connected again after",
                in_seconds(storm.all_connected),
            ));
            if let Some(all) = storm.all_connected {
                figures.push((
                    "storm: accepts and upgrades per second",
                    format!(
                        "{:.0} (clients / time until all were back)",
                        expected / all.as_secs_f64()
                    ),
                ));
            }
            figures.push((
                "storm: presence whole again after",
                in_seconds(storm.presence_whole),
            ));
            figures.push((
                "storm: attempts refused while nothing listened",
                kind_field(report, "healthy", "reconnect_refused")
                    .unwrap_or(0.0)
                    .to_string(),
            ));
            figures.push((
                "storm: attempts failed otherwise (retried)",
                kind_field(report, "healthy", "reconnect_failures")
                    .unwrap_or(0.0)
                    .to_string(),
            ));
            figures.push((
                if storm.graceful {
                    "storm: SIGTERM until the old process ended (its drain)"
                } else {
                    "storm: SIGKILL until the process was gone"
                },
                match storm.gone_at {
                    Some(at) => format!("{} ms", (at - storm.stopped_at).as_millis()),
                    None => "never (still running)".to_owned(),
                },
            ));
            figures.push((
                "storm: restart at (from the loadgen's start)",
                format!("{} ms", storm.restarted_at.as_millis()),
            ));
        }
        if let Some((after, length)) = stopped {
            let resumed_ms = (after + length).as_millis() as f64;
            if let Some(last) = kind_field(report, "silent", "last_closed_ms") {
                let after_resume = (last - resumed_ms).max(0.0);
                figures.push((
                    "silent: all detected after the server resumed",
                    format!("{after_resume:.0} ms"),
                ));
                checks.push(Check {
                    name: format!(
                        "after the stall, every silent client is detected within {} ms",
                        plan.bound().as_millis()
                    ),
                    passed: after_resume <= plan.bound().as_millis() as f64,
                    seen: format!("the last {after_resume:.0} ms after the server resumed"),
                });
            }
            figures.push((
                "server stopped (SIGSTOP)",
                format!("{} ms", length.as_millis()),
            ));
        }
        Verdict::new(plan, figures, checks)
    }

    /// A verdict from figures and checks read off elsewhere (`abuse`).
    pub(crate) fn new(
        plan: &Plan,
        figures: Vec<(&'static str, String)>,
        checks: Vec<Check>,
    ) -> Verdict {
        Verdict {
            scenario: plan.name(),
            describe: plan.describe(),
            figures,
            checks,
            tables: Vec::new(),
        }
    }

    /// A markdown table shown after the figures.
    pub(crate) fn add_table(&mut self, markdown: String) {
        self.tables.push(markdown);
    }

    /// One more figure, after the ones `judge` read off.
    pub(crate) fn add_figure(&mut self, name: &'static str, value: String) {
        self.figures.push((name, value));
    }

    pub(crate) fn json(&self, report: &Value) -> Value {
        json!({
            "scenario": self.scenario,
            "plan": self.describe,
            "figures": self.figures.iter().map(|(name, value)| json!({"name": name, "value": value})).collect::<Vec<_>>(),
            "checks": self.checks.iter().map(|c| json!({"name": c.name, "passed": c.passed, "seen": c.seen})).collect::<Vec<_>>(),
            "loadgen": report,
        })
    }

    pub(crate) fn markdown(&self) -> String {
        let mut text = format!("### loadtest `{}`\n\n{}\n\n", self.scenario, self.describe);
        text.push_str("| figure | value |\n|---|---|\n");
        for (name, value) in &self.figures {
            let _ = writeln!(text, "| {name} | {value} |");
        }
        for table in &self.tables {
            text.push('\n');
            text.push_str(table);
        }
        text.push_str("\n| check | result | seen |\n|---|---|---|\n");
        for check in &self.checks {
            let result = if check.passed { "pass" } else { "**FAIL**" };
            let _ = writeln!(text, "| {} | {result} | {} |", check.name, check.seen);
        }
        text
    }

    pub(crate) fn into_result(self) -> Result<()> {
        let failed: Vec<String> = self
            .checks
            .iter()
            .filter(|check| !check.passed)
            .map(|check| format!("{} ({})", check.name, check.seen))
            .collect();
        if !failed.is_empty() {
            bail!("loadtest {}: {}", self.scenario, failed.join("; "));
        }
        Ok(())
    }
}
