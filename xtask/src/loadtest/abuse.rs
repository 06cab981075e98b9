//! `loadtest abuse` (issue #12): bystanders, healthy clients in rooms of
//! 100 timing their own pings, in one loadgen process; flooders of every
//! kind (`plan::FLOODS`) in another, so that the flooders' busy core does
//! not delay the bystanders' readings. The server is sampled before, all
//! through (peak RSS) and after the abuse; the checks: no bystander closed,
//! and every kind of flood met its defence.

use std::{
    fmt::Write as _,
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use super::{
    ServerProcess,
    plan::{FLOODS, Plan},
    server::{Sample, scrape},
    spawn_loadgen,
    verdict::{Check, Verdict},
};
use crate::{child::Child, cmd::project_root};

/// How often the server's RSS is read during the abuse, for its peak.
const PEAK_EVERY: Duration = Duration::from_millis(200);

/// The server's samples around the abuse.
struct Samples {
    baseline: Sample,
    before: Sample,
    abuse_start: Sample,
    abuse_end: Sample,
    /// Highest `VmRSS` seen during the abuse, KiB.
    peak_rss_kib: u64,
}

pub(super) fn measure(plan: &Plan) -> Result<(Verdict, Value)> {
    let Some((abuse_at, length)) = plan.abuse else {
        bail!("the abuse plan has no abuse");
    };
    let mut server = ServerProcess::start(plan, "127.0.0.1:0".parse()?)?;
    let baseline = server.sample()?;
    let mut bystanders = spawn_loadgen(plan, server.addr(), &[])?;
    let mut flooders = Child::spawn(
        "vigil-loadgen (flooders)",
        Command::new(project_root().join("target/release/vigil-loadgen"))
            .args(plan.flooder_args(server.addr()))
            .stdout(Stdio::piped()),
    )?;
    let started = Instant::now();
    let mut alive = |server: &mut ServerProcess, flooding: bool| -> Result<()> {
        server.check_alive()?;
        bystanders.check_alive()?;
        if flooding {
            flooders.check_alive()?;
        }
        Ok(())
    };
    let wait = |until: Duration,
                server: &mut ServerProcess,
                alive: &mut dyn FnMut(&mut ServerProcess, bool) -> Result<()>|
     -> Result<()> {
        while started.elapsed() < until {
            alive(server, true)?;
            thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    };
    wait(abuse_at.saturating_sub(length), &mut server, &mut alive)?;
    let before = server.sample()?;
    wait(abuse_at, &mut server, &mut alive)?;
    eprintln!("==> abuse for {} s", length.as_secs());
    let abuse_start = server.sample()?;
    let mut peak_rss_kib = abuse_start.rss_kib;
    let abuse_end_at = abuse_at + length;
    while started.elapsed() < abuse_end_at {
        // The flooders' process ends on its own once their abuse is over.
        let flooding = started.elapsed() + Duration::from_millis(500) < abuse_end_at;
        alive(&mut server, flooding)?;
        peak_rss_kib = peak_rss_kib.max(server.cpu_and_rss()?.1);
        thread::sleep(PEAK_EVERY.min(abuse_end_at.saturating_sub(started.elapsed())));
    }
    let abuse_end = server.sample()?;
    peak_rss_kib = peak_rss_kib.max(abuse_end.rss_kib);

    let flood_report = report_of(&mut flooders, Duration::from_secs(30), "flooders")?;
    let report = report_of(&mut bystanders, plan.loadgen_lifetime(), "bystanders")?;
    let metrics = scrape(server.addr(), None)?;
    server.check_alive()?;
    let samples = Samples {
        baseline,
        before,
        abuse_start,
        abuse_end,
        peak_rss_kib,
    };
    let verdict = judge(plan, &report, &flood_report, &samples, &metrics);
    Ok((
        verdict,
        json!({"bystanders": report, "flooders": flood_report}),
    ))
}

/// A loadgen's JSON report, once it has ended.
fn report_of(loadgen: &mut Child, patience: Duration, what: &str) -> Result<Value> {
    let Some(status) = loadgen.wait_timeout(patience)? else {
        bail!("the {what}' vigil-loadgen still running; killed it");
    };
    if !status.success() {
        bail!("the {what}' vigil-loadgen failed ({status}); see its stderr above");
    }
    serde_json::from_str(&loadgen.stdout()?)
        .with_context(|| format!("the {what}' vigil-loadgen's report is not JSON"))
}

/// `family{reason="..."} N` lines of a scrape, as `reason=N` (0s left out).
fn by_reason(metrics: &str, family: &str) -> String {
    let prefix = format!("{family}{{reason=\"");
    let found: Vec<String> = metrics
        .lines()
        .filter_map(|line| {
            let (reason, value) = line.strip_prefix(&prefix)?.split_once("\"} ")?;
            let value: f64 = value.trim().parse().ok()?;
            (value > 0.0).then(|| format!("{reason} {value}"))
        })
        .collect();
    if found.is_empty() {
        "none".to_owned()
    } else {
        found.join(", ")
    }
}

/// Share of a core busy between two samples.
fn busy(from: &Sample, to: &Sample) -> f64 {
    let seconds = to
        .at
        .duration_since(from.at)
        .as_secs_f64()
        .max(f64::EPSILON);
    (to.cpu_s - from.cpu_s) / seconds
}

/// `p50 / p99 / max ms (N probes)` of a round-trip summary.
fn round_trips(rtt: &Value) -> String {
    let latency = &rtt["latency_ms"];
    if !latency.is_object() {
        return "none measured".to_owned();
    }
    // The loadgen's histogram ends at 1 s: a percentile past it is shown
    // as the maximum, which it is not.
    let max = latency["max"].as_f64().unwrap_or(f64::NAN);
    let percentile = |value: &Value| match value.as_f64() {
        Some(ms) if ms >= 1_000.0 && ms == max => "over 1000".to_owned(),
        _ => value.to_string(),
    };
    format!(
        "{} / {} / {max} ms ({} probes)",
        percentile(&latency["p50"]),
        percentile(&latency["p99"]),
        rtt["received"]
    )
}

fn judge(plan: &Plan, report: &Value, floods: &Value, samples: &Samples, metrics: &str) -> Verdict {
    let number = |value: &Value| value.as_f64().unwrap_or(f64::NAN);
    let mut checks = Vec::new();
    let mut check = |name: &str, passed: bool, seen: String| {
        checks.push(Check {
            name: name.to_owned(),
            passed,
            seen,
        });
    };
    let attempted = number(&report["attempted"]);
    let failed = number(&report["failed"]);
    check(
        "every bystander's handshake succeeds",
        failed == 0.0 && attempted == f64::from(plan.healthy),
        format!("{attempted} attempted, {failed} failed"),
    );
    let healthy = &report["kinds"]["healthy"];
    let closed = number(&healthy["closed_by_server"]);
    check(
        "no healthy client is closed (any close)",
        closed == 0.0 && number(&healthy["false_positives"]) == 0.0,
        format!("{closed} closed: {}", report["closes"]),
    );
    let during = number(&report["rtt_during"]["received"]);
    check(
        "bystanders' round trips are measured during the abuse",
        during > 0.0,
        format!("{during} probes"),
    );
    let abuse = &floods["abuse"];
    for kind in FLOODS {
        let counts = &abuse[kind];
        let n = |field: &str| counts[field].as_u64().unwrap_or(0);
        let (name, passed) = match kind {
            "slowloris" => ("slowloris: sockets held", n("opened") > 0),
            "wsping-flood" => (
                "wsping-flood: closed with 1008 (too many pings)",
                n("closed_1008") > 0,
            ),
            "meta-flood" => (
                "meta-flood: oversized meta refused (meta_too_large)",
                n("meta_too_large") > 0,
            ),
            "malformed-flood" => (
                "malformed-flood: refused and closed with 1008",
                n("other_errors") > 0 && n("closed_1008") > 0,
            ),
            _ => (
                "request flood: rate_limited, then closed with 1008",
                n("rate_limited") > 0 && n("closed_1008") > 0,
            ),
        };
        checks.push(Check {
            name: if name.starts_with("request") {
                format!("{kind}: {name}")
            } else {
                name.to_owned()
            },
            passed: passed && n("opened") > 0,
            seen: format!(
                "{} opened, {} written, {} rate_limited, {} meta_too_large, {} other errors, {} \
                 closed with 1008",
                n("opened"),
                n("written"),
                n("rate_limited"),
                n("meta_too_large"),
                n("other_errors"),
                n("closed_1008")
            ),
        });
    }

    let Samples {
        baseline,
        before,
        abuse_start,
        abuse_end,
        peak_rss_kib,
    } = samples;
    let mib = |kib: u64| kib as f64 / 1024.0;
    let mut figures = vec![
        (
            "healthy clients closed by the server (must be 0)",
            format!("{closed} of {}", plan.healthy),
        ),
        (
            "bystander RTT before the abuse: p50 / p99 / max",
            round_trips(&report["rtt_before"]),
        ),
        (
            "bystander RTT during the abuse: p50 / p99 / max",
            round_trips(&report["rtt_during"]),
        ),
        (
            "server CPU before the abuse",
            format!("{:.0} % of a core", busy(before, abuse_start) * 100.0),
        ),
        (
            "server CPU during the abuse",
            format!("{:.0} % of a core", busy(abuse_start, abuse_end) * 100.0),
        ),
    ];
    let shards: Vec<String> = abuse_end
        .shard_cpu_s
        .iter()
        .filter_map(|&(tid, cpu)| {
            let start = abuse_start
                .shard_cpu_s
                .iter()
                .find(|&&(id, _)| id == tid)?
                .1;
            let seconds = abuse_end.at.duration_since(abuse_start.at).as_secs_f64();
            Some(format!(
                "{:.0} %",
                (cpu - start) / seconds.max(f64::EPSILON) * 100.0
            ))
        })
        .collect();
    figures.push((
        "each shard thread's CPU during the abuse",
        format!("{} of a core", shards.join(" / ")),
    ));
    figures.push((
        "server RSS: before the load / at the abuse's start / peak during it",
        format!(
            "{:.1} / {:.1} / {:.1} MiB (peak {:+.1} MiB over the start)",
            mib(baseline.rss_kib),
            mib(abuse_start.rss_kib),
            mib(*peak_rss_kib),
            mib(*peak_rss_kib) - mib(abuse_start.rss_kib)
        ),
    ));
    if let (Some(start), Some(end)) = (abuse_start.heap_bytes, abuse_end.heap_bytes) {
        figures.push((
            "server live heap at the abuse's start / end",
            format!(
                "{:.1} / {:.1} MiB",
                start as f64 / 1048576.0,
                end as f64 / 1048576.0
            ),
        ));
    }
    figures.push((
        "connections at the abuse's start / end",
        format!("{} / {}", abuse_start.connections, abuse_end.connections),
    ));
    figures.push((
        "server closes by reason (whole run)",
        by_reason(metrics, "vigil_connections_closed_total"),
    ));
    figures.push((
        "handshakes refused by reason (whole run)",
        by_reason(metrics, "vigil_handshakes_rejected_total"),
    ));
    let mut verdict = Verdict::new(plan, figures, checks);
    verdict.add_table(flood_table(abuse));
    verdict
}

/// One row per kind of flooder: what it sent and what came back.
fn flood_table(abuse: &Value) -> String {
    let mut table = String::from(
        "| flooder kind | connections (sockets) opened | failed to connect | requests written | \
         answered | rate_limited | meta_too_large | other errors | events | closed 1008 | \
         closed otherwise | cut off | 503 at once | ended by the server after | longest held |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for kind in FLOODS {
        let counts = &abuse[kind];
        let n = |field: &str| counts[field].as_u64().unwrap_or(0);
        let _ = writeln!(
            table,
            "| {kind} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} ms |",
            n("opened"),
            n("connect_failed"),
            n("written"),
            n("answered"),
            n("rate_limited"),
            n("meta_too_large"),
            n("other_errors"),
            n("events"),
            n("closed_1008"),
            n("closed_other"),
            n("cut_off"),
            n("refused_503"),
            n("timed_out"),
            n("held_max_ms"),
        );
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_past_the_histogram_are_not_shown_as_the_maximum() {
        let rtt = json!({"received": 9, "latency_ms": {"p50": 0.5, "p99": 4200.0, "max": 4200.0}});
        assert_eq!(round_trips(&rtt), "0.5 / over 1000 / 4200 ms (9 probes)");
        assert_eq!(round_trips(&json!({})), "none measured");
    }

    #[test]
    fn reasons_are_read_from_labelled_series() {
        let metrics = "# TYPE vigil_connections_closed_total counter\n\
            vigil_connections_closed_total{reason=\"peer_closed\"} 12\n\
            vigil_connections_closed_total{reason=\"slow_consumer\"} 0\n\
            vigil_connections_closed_total{reason=\"protocol_error\"} 3\n\
            vigil_connections_opened_total 20\n";
        assert_eq!(
            by_reason(metrics, "vigil_connections_closed_total"),
            "peer_closed 12, protocol_error 3"
        );
        assert_eq!(
            by_reason(metrics, "vigil_handshakes_rejected_total"),
            "none"
        );
    }
}
