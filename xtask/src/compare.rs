//! `cargo xtask compare [--quick] [--sweep] [--only NAME,...]`: the `idle` and
//! `detect` loads of `loadtest`, run against vigil and against servers
//! written the way people write them with other tools (`benches/peers/`:
//! Node `ws`, Python `websockets`, Go gorilla/websocket, and the naive
//! tokio server), one after the other in one run, with the same loadgen and
//! the same heartbeat policy; the table gives every figure and the ratio
//! vigil / peer.
//!
//! CPU per heartbeat here is the server's CPU time over a steady window
//! divided by the pings its clients received in it (read from the
//! loadgen's status file), so that every server is measured the same way
//! whether or not it counts its own pings.

mod peers;

use std::{
    ffi::OsStr,
    fmt::Write as _,
    fs,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use self::peers::Contender;
use crate::{
    bench_idle::field,
    cmd::{self, cargo, project_root},
    loadtest::{Plan, Scenario, ServerProcess, spawn_loadgen, wait_until},
};

const USAGE: &str = "usage: cargo xtask compare [--quick] [--sweep] [--only vigil,naive,node-ws,python-websockets,go-gorilla]";

/// Idle connection counts of `--sweep` (and of `--sweep --quick`).
const SWEEP: [u32; 4] = [1_000, 5_000, 10_000, 19_000];
const SWEEP_QUICK: [u32; 3] = [200, 500, 1_000];

#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Options {
    quick: bool,
    /// Idle loads of several sizes, for memory and RTT against load.
    sweep: bool,
    contenders: Vec<Contender>,
}

impl Options {
    pub(crate) fn parse(args: &[String]) -> Result<Options> {
        let mut quick = false;
        let mut sweep = false;
        let mut contenders = Contender::ALL.to_vec();
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--quick" => quick = true,
                "--sweep" => sweep = true,
                "--only" => {
                    let Some(list) = args.next() else {
                        bail!("`--only` needs a list\n{USAGE}");
                    };
                    contenders = list
                        .split(',')
                        .map(|name| {
                            Contender::from_name(name)
                                .with_context(|| format!("unknown server `{name}`\n{USAGE}"))
                        })
                        .collect::<Result<_>>()?;
                }
                other => bail!("unknown argument `{other}`\n{USAGE}"),
            }
        }
        Ok(Options {
            quick,
            sweep,
            contenders,
        })
    }
}

/// What one server did under one load.
#[derive(Debug, Clone, Default)]
struct Outcome {
    rss_kib_per_conn: f64,
    heap_b_per_conn: Option<f64>,
    cpu_us_per_heartbeat: f64,
    heartbeats_per_s: f64,
    failed: f64,
    false_positives: f64,
    /// Silent and half-open together: detections and their spread.
    went_quiet: f64,
    never_closed: f64,
    within_bound: f64,
    detection_p50_ms: f64,
    detection_p99_ms: f64,
    detection_max_ms: f64,
    /// The loadgen's whole report.
    report: Value,
}

pub(crate) fn run(options: &Options) -> Result<()> {
    cmd::run(cargo().args([
        "build",
        "--release",
        "--locked",
        "-p",
        "vigil-server",
        "-p",
        "vigil-loadgen",
        "-p",
        "vigil-benches",
        "--bins",
        "--features",
        "vigil-server/count-alloc",
    ]))?;
    for contender in &options.contenders {
        contender
            .prepare()
            .with_context(|| format!("cannot prepare {}", contender.name()))?;
    }
    let out_dir = project_root().join("target/compare");
    fs::create_dir_all(&out_dir)?;
    if options.sweep {
        return sweep(options, &out_dir);
    }
    let mut results = Vec::new();
    for scenario in [Scenario::Idle, Scenario::Detect] {
        let plan = Plan::of(scenario, options.quick);
        for &contender in &options.contenders {
            eprintln!("==> compare {}: {}", plan.name(), contender.name());
            let outcome = measure(&plan, contender, &[])
                .with_context(|| format!("{} under {}", contender.name(), plan.name()))?;
            results.push((scenario, contender, outcome));
        }
    }
    let markdown = table(&results, options.quick);
    let json = json!(results
        .iter()
        .map(|(scenario, contender, o)| json!({
            "scenario": scenario.name(),
            "server": contender.name(),
            "rss_kib_per_conn": o.rss_kib_per_conn,
            "heap_b_per_conn": o.heap_b_per_conn,
            "cpu_us_per_heartbeat": o.cpu_us_per_heartbeat,
            "heartbeats_per_s": o.heartbeats_per_s,
            "failed_handshakes": o.failed,
            "false_positives": o.false_positives,
            "went_quiet": o.went_quiet,
            "never_closed": o.never_closed,
            "within_bound": o.within_bound,
            "detection_ms": {"p50": o.detection_p50_ms, "p99": o.detection_p99_ms, "max": o.detection_max_ms},
            "bound_ms": Plan::of(*scenario, options.quick).bound().as_millis() as u64,
            "loadgen": o.report,
        }))
        .collect::<Vec<_>>());
    fs::write(
        out_dir.join("compare.json"),
        serde_json::to_string_pretty(&json)?,
    )?;
    fs::write(out_dir.join("compare.md"), &markdown)?;
    println!("{markdown}");
    eprintln!("==> wrote {}", out_dir.join("compare.md").display());
    Ok(())
}

/// Idle loads of each size in [`SWEEP`] against every contender, with the
/// clients probing their round trip after every ping of the server's:
/// `target/compare/sweep.json`, for `cargo xtask loadtest --plot`.
fn sweep(options: &Options, out_dir: &std::path::Path) -> Result<()> {
    let sizes: &[u32] = if options.quick { &SWEEP_QUICK } else { &SWEEP };
    let mut rows = Vec::new();
    for &connections in sizes {
        let mut plan = Plan::of(Scenario::Idle, options.quick);
        plan.healthy = connections;
        for &contender in &options.contenders {
            eprintln!("==> sweep {connections} idle: {}", contender.name());
            let o = measure(&plan, contender, &["--probe-rtt-every", "1"])
                .with_context(|| format!("{} with {connections} connections", contender.name()))?;
            rows.push(json!({
                "server": contender.name(),
                "connections": connections,
                "rss_kib_per_conn": o.rss_kib_per_conn,
                "heap_b_per_conn": o.heap_b_per_conn,
                "cpu_us_per_heartbeat": o.cpu_us_per_heartbeat,
                "failed_handshakes": o.failed,
                "false_positives": o.false_positives,
                "rtt_ms": o.report["rtt"]["latency_ms"],
                "interval_ms": plan.interval.as_millis() as u64,
            }));
        }
    }
    let path = out_dir.join("sweep.json");
    fs::write(&path, serde_json::to_string_pretty(&rows)?)?;
    eprintln!("==> wrote {}", path.display());
    Ok(())
}

/// Runs `plan`'s load (plus `extra` loadgen flags) against `contender` and
/// reads off the figures.
fn measure(plan: &Plan, contender: Contender, extra: &[&str]) -> Result<Outcome> {
    let lifetime = plan.loadgen_lifetime() + Duration::from_secs(60);
    let mut server = ServerProcess::spawn(
        contender.name(),
        contender.command(plan.interval, plan.timeout, lifetime),
        contender == Contender::Vigil,
    )?;
    let (_, rss_before) = server.cpu_and_rss()?;
    let heap_before = heap(&server, contender)?;
    let status_path =
        project_root().join(format!("target/compare/{}.status.json", contender.name()));
    let _ = fs::remove_file(&status_path);
    let mut flags: Vec<&OsStr> = extra.iter().map(OsStr::new).collect();
    flags.extend(["--status-file".as_ref(), status_path.as_os_str()]);
    let mut loadgen = spawn_loadgen(plan, server.addr(), &flags)?;
    let started = Instant::now();
    let window = plan.window();
    wait_until(started + window.start, &mut server, &mut loadgen)?;
    let (cpu_start, _) = server.cpu_and_rss()?;
    let at_start = Instant::now();
    let status_start = fs::read_to_string(&status_path).context("no loadgen status yet")?;
    wait_until(started + window.end, &mut server, &mut loadgen)?;
    let (cpu_end, rss_end) = server.cpu_and_rss()?;
    let at_end = Instant::now();
    let status_end = fs::read_to_string(&status_path).context("no loadgen status")?;
    let heap_end = heap(&server, contender)?;
    let Some(status) = loadgen.wait_timeout(plan.loadgen_lifetime())? else {
        bail!("vigil-loadgen still running after its hold; killed it");
    };
    if !status.success() {
        bail!("vigil-loadgen failed ({status})");
    }
    let report: Value = serde_json::from_str(&loadgen.stdout()?).context("loadgen report")?;

    let number = |path: &[&str]| {
        path.iter()
            .fold(&report, |value, key| &value[*key])
            .as_f64()
            .unwrap_or(0.0)
    };
    let connections = f64::from(plan.connections());
    let pings = |line: &str| field(line, "pings_total").unwrap_or(0) as f64;
    let elapsed = |line: &str| field(line, "elapsed_ms").unwrap_or(0) as f64 / 1000.0;
    let ping_rate = (pings(&status_end) - pings(&status_start))
        / (elapsed(&status_end) - elapsed(&status_start)).max(f64::EPSILON);
    let cpu_rate = (cpu_end - cpu_start) / at_end.duration_since(at_start).as_secs_f64();
    let mut outcome = Outcome {
        rss_kib_per_conn: rss_end.saturating_sub(rss_before) as f64 / connections,
        heap_b_per_conn: heap_before
            .zip(heap_end)
            .map(|(before, after)| after.saturating_sub(before) as f64 / connections),
        cpu_us_per_heartbeat: cpu_rate * 1e6 / ping_rate.max(f64::EPSILON),
        heartbeats_per_s: ping_rate,
        failed: number(&["failed"]),
        false_positives: number(&["kinds", "healthy", "false_positives"]),
        ..Outcome::default()
    };
    // Silent and half-open clients together: one distribution.
    let mut detections: Vec<f64> = Vec::new();
    for kind in ["silent", "half-open"] {
        let kind_report = &report["kinds"][kind];
        outcome.went_quiet += kind_report["went_quiet"].as_f64().unwrap_or(0.0);
        outcome.never_closed += kind_report["never_closed"].as_f64().unwrap_or(0.0);
        outcome.within_bound += kind_report["within_bound"].as_f64().unwrap_or(0.0);
        if let Some(all) = kind_report["detections_ms"].as_array() {
            detections.extend(all.iter().filter_map(Value::as_f64));
        }
    }
    detections.sort_by(f64::total_cmp);
    let percentile = |percent: usize| {
        if detections.is_empty() {
            return 0.0;
        }
        let rank = (percent * detections.len()).div_ceil(100).max(1);
        detections[rank - 1]
    };
    outcome.detection_p50_ms = percentile(50);
    outcome.detection_p99_ms = percentile(99);
    outcome.detection_max_ms = detections.last().copied().unwrap_or(0.0);
    outcome.report = report;
    Ok(outcome)
}

/// vigil's live heap, from its `/metrics`; none for the others.
fn heap(server: &ServerProcess, contender: Contender) -> Result<Option<u64>> {
    if contender != Contender::Vigil {
        return Ok(None);
    }
    Ok(server.sample()?.heap_bytes)
}

/// The comparison as markdown: one table per load, vigil first, each
/// peer's figure with vigil's ratio to it.
fn table(results: &[(Scenario, Contender, Outcome)], quick: bool) -> String {
    let mut text = String::new();
    for scenario in [Scenario::Idle, Scenario::Detect] {
        let plan = Plan::of(scenario, quick);
        let rows: Vec<&(Scenario, Contender, Outcome)> =
            results.iter().filter(|(s, _, _)| *s == scenario).collect();
        let Some((_, _, vigil)) = rows.iter().find(|(_, c, _)| *c == Contender::Vigil) else {
            continue;
        };
        let _ = writeln!(
            text,
            "### compare `{}`\n\n{}\n",
            scenario.name(),
            plan.describe()
        );
        let ratio = |ours: f64, theirs: f64| {
            if theirs > 0.0 {
                format!(" ({:.2}×)", ours / theirs)
            } else {
                String::new()
            }
        };
        text.push_str(
            "| server | RSS / conn | CPU / heartbeat | heartbeats/s | failed handshakes | false positives | quiet detected (within bound) | detection p50 / p99 / max |\n|---|---|---|---|---|---|---|---|\n",
        );
        for (_, contender, o) in &rows {
            let is_vigil = *contender == Contender::Vigil;
            let rss = format!(
                "{:.2} KiB{}",
                o.rss_kib_per_conn,
                if is_vigil {
                    String::new()
                } else {
                    ratio(vigil.rss_kib_per_conn, o.rss_kib_per_conn)
                }
            );
            let cpu = format!(
                "{:.1} µs{}",
                o.cpu_us_per_heartbeat,
                if is_vigil {
                    String::new()
                } else {
                    ratio(vigil.cpu_us_per_heartbeat, o.cpu_us_per_heartbeat)
                }
            );
            let detected = if o.went_quiet > 0.0 {
                format!(
                    "{:.0} of {:.0} ({:.0})",
                    o.went_quiet - o.never_closed,
                    o.went_quiet,
                    o.within_bound
                )
            } else {
                "—".to_owned()
            };
            let detection = if o.went_quiet > 0.0 {
                format!(
                    "{:.1} / {:.1} / {:.1} s",
                    o.detection_p50_ms / 1000.0,
                    o.detection_p99_ms / 1000.0,
                    o.detection_max_ms / 1000.0
                )
            } else {
                "—".to_owned()
            };
            let _ = writeln!(
                text,
                "| {}{} | {rss} | {cpu} | {:.0} | {:.0} | {:.0} | {detected} | {detection} |",
                contender.name(),
                o.heap_b_per_conn
                    .map(|heap| format!(" (heap {heap:.0} B)"))
                    .unwrap_or_default(),
                o.heartbeats_per_s,
                o.failed,
                o.false_positives,
            );
        }
        text.push('\n');
    }
    text.push_str("Ratios are vigil / peer: under 1 means vigil uses less.\n");
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(words: &[&str]) -> Result<Options> {
        Options::parse(&words.iter().map(|w| (*w).to_owned()).collect::<Vec<_>>())
    }

    #[test]
    fn every_server_by_default_or_the_ones_named() {
        let all = parse(&[]).expect("valid");
        assert_eq!(all.contenders, Contender::ALL);
        assert!(!all.quick);
        let some = parse(&["--quick", "--only", "vigil,go-gorilla"]).expect("valid");
        assert_eq!(some.contenders, [Contender::Vigil, Contender::Go]);
        assert!(some.quick);
        for (words, expected) in [
            (&["--only", "java"][..], "unknown server `java`"),
            (&["--only"], "needs a list"),
            (&["--fast"], "unknown argument `--fast`"),
        ] {
            let error = parse(words).expect_err("refused").to_string();
            assert!(error.contains(expected), "{words:?}: {error}");
        }
    }

    #[test]
    fn names_round_trip() {
        for contender in Contender::ALL {
            assert_eq!(Contender::from_name(contender.name()), Some(contender));
        }
    }
}
