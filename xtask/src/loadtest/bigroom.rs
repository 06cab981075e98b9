//! `cargo xtask loadtest bigroom`: every client in ONE channel (issue #15),
//! once per presence mode (`"counts"`, and `"members"` with a cap far below
//! the room's size). Three phases: the ramp; a kill -9 and a restart on the
//! same port, every client coming back; then a share of the clients
//! leaving cleanly and coming back every second. At each phase's end the
//! loadgen says how many clients' views of the channel are whole (counting
//! every client, and for the clients that read the list in pages, finding
//! them all) and since when; how many bytes each client received in the
//! phase; the harness adds the server's CPU and peak RSS per phase and its
//! own truth at the end.

use std::{
    fmt::Write as _,
    net::SocketAddr,
    time::{Duration, Instant},
};

use anyhow::{Result, bail};
use serde_json::Value;

use super::{
    Plan, ServerProcess, Storm, loadgen_report,
    plan::RoomMode,
    restart,
    server::series,
    spawn_loadgen,
    verdict::{Check, Verdict},
    wait_until, with_config,
};

/// The targets: every view whole within 10 s of the new server
/// listening, and in `"counts"` mode at most 256 KiB per client for the
/// whole storm (in capped `"members"` mode, for the median client).
const WHOLE_WITHIN: Duration = Duration::from_secs(10);
const STORM_BYTES: u64 = 256 * 1024;

/// The server at a phase's end.
#[derive(Debug, Clone, Copy)]
struct ServerAt {
    /// CPU seconds of the process so far.
    cpu_s: f64,
    /// Its peak RSS so far (`VmHWM`).
    peak_rss_kib: u64,
    slow_consumers: u64,
    connections: u64,
    members: u64,
}

impl ServerAt {
    fn read(server: &ServerProcess) -> Result<ServerAt> {
        let (cpu_s, _) = server.cpu_and_rss()?;
        let metrics = server.metrics()?;
        Ok(ServerAt {
            cpu_s,
            peak_rss_kib: server.peak_rss_kib()?,
            slow_consumers: series(
                &metrics,
                "vigil_connections_closed_total{reason=\"slow_consumer\"}",
            )?,
            connections: series(&metrics, "vigil_connections")?,
            members: series(&metrics, "vigil_presence_members")?,
        })
    }
}

/// One run of `plan` (one mode): the verdict, and the loadgen's report.
pub(super) fn measure(plan: &Plan) -> Result<(Verdict, Value)> {
    let Some(mode) = plan.room else {
        bail!("bigroom needs a presence mode");
    };
    let plan = &with_config(plan, &mode.config(plan.quick))?;
    let timeline = plan.room_timeline();
    let listen: SocketAddr = "127.0.0.1:0".parse()?;
    let mut server = ServerProcess::start(plan, listen)?;
    let (cpu_before, _) = server.cpu_and_rss()?;
    let mut loadgen = spawn_loadgen(plan, server.addr(), &[])?;
    let started = Instant::now();

    wait_until(started + timeline.storm_at, &mut server, &mut loadgen)?;
    let ramp_end = ServerAt::read(&server)?;
    let storm = restart(plan, &mut server, &mut loadgen, started)?;
    wait_until(started + timeline.churn_at, &mut server, &mut loadgen)?;
    let storm_end = ServerAt::read(&server)?;
    // The server's own view, a second before the loadgen's hold ends
    // (every client still connected, the last leaves' grace over).
    let settled = timeline.churn_at + timeline.churn + timeline.settle - Duration::from_secs(1);
    wait_until(started + settled, &mut server, &mut loadgen)?;
    let end = ServerAt::read(&server)?;

    let report = loadgen_report(plan, &mut loadgen)?;
    server.check_alive()?;
    let servers = [
        ServerPhase {
            cpu_s: ramp_end.cpu_s - cpu_before,
            at_end: ramp_end,
        },
        ServerPhase {
            // The new process, from its start.
            cpu_s: storm_end.cpu_s,
            at_end: storm_end,
        },
        ServerPhase {
            cpu_s: end.cpu_s - storm_end.cpu_s,
            at_end: end,
        },
    ];
    let verdict = judge(plan, mode, &report, &servers, &storm);
    Ok((verdict, report))
}

/// The server over one phase.
#[derive(Debug, Clone, Copy)]
struct ServerPhase {
    cpu_s: f64,
    at_end: ServerAt,
}

const PHASES: [&str; 3] = ["ramp", "storm", "churn"];

fn judge(
    plan: &Plan,
    mode: RoomMode,
    report: &Value,
    servers: &[ServerPhase; 3],
    storm: &Storm,
) -> Verdict {
    let timeline = plan.room_timeline();
    let expected = u64::from(plan.connections());
    let room = &report["room"];
    let phase = |index: usize, field: &str| room["phases"][index][field].as_u64();
    // When each phase's disturbance ended, from the loadgen's start: the
    // last client arrived, the new server listened, the churn stopped.
    let calm_from_ms = [
        plan.ramp().as_millis() as u64,
        storm.restarted_at.as_millis() as u64,
        (timeline.churn_at + timeline.churn).as_millis() as u64,
    ];
    let whole_after = |index: usize| {
        phase(index, "whole_by_ms")
            .map(|by| Duration::from_millis(by.saturating_sub(calm_from_ms[index])))
    };

    let mut checks = Vec::new();
    let mut check = |name: String, passed: bool, seen: String| {
        checks.push(Check { name, passed, seen });
    };
    let attempted = report["attempted"].as_u64().unwrap_or(0);
    let failed = report["failed"].as_u64().unwrap_or(u64::MAX);
    check(
        "every handshake of the ramp succeeds".into(),
        attempted == expected && failed == 0,
        format!("{attempted} attempted, {failed} failed"),
    );
    check(
        "every client is back after the restart".into(),
        storm.all_connected.is_some(),
        format!(
            "the server had all {expected} again after {}",
            seconds(storm.all_connected)
        ),
    );
    for (index, name) in PHASES.iter().enumerate() {
        let whole = phase(index, "views_whole").unwrap_or(0);
        check(
            format!("every client's view is whole at the end of the {name}"),
            whole == expected,
            format!(
                "{whole} of {expected}, the last whole {} after the {name}'s disturbance ended",
                seconds(whole_after(index))
            ),
        );
    }
    if !plan.quick {
        check(
            format!(
                "every view is whole within {} s of the new server listening",
                WHOLE_WITHIN.as_secs()
            ),
            phase(1, "views_whole") == Some(expected)
                && whole_after(1).is_some_and(|after| after <= WHOLE_WITHIN),
            format!(
                "{} of {expected} whole, the last after {}",
                phase(1, "views_whole").unwrap_or(0),
                seconds(whole_after(1))
            ),
        );
    }
    match mode {
        RoomMode::Counts => {
            let most = phase(1, "bytes_per_client_max").unwrap_or(u64::MAX);
            check(
                "a client receives at most 256 KiB over the whole storm".into(),
                most <= STORM_BYTES,
                format!("the most any client received: {}", kib(most)),
            );
        }
        RoomMode::CappedMembers => {
            // The clients that read the list in pages receive it by design.
            let median = phase(1, "bytes_per_client_p50").unwrap_or(u64::MAX);
            check(
                "the median client receives at most 256 KiB over the whole storm".into(),
                median <= STORM_BYTES,
                format!("median {}", kib(median)),
            );
        }
    }
    let slow: u64 = [servers[0].at_end, servers[2].at_end]
        .iter()
        .map(|at| at.slow_consumers)
        .sum();
    check(
        "no client is closed as a slow consumer".into(),
        slow == 0,
        format!("{slow} closed (both server processes)"),
    );
    let end = servers[2].at_end;
    check(
        "the server's own count at the end: every client, in the channel".into(),
        end.connections == expected && end.members == expected,
        format!("{} connections, {} members", end.connections, end.members),
    );

    let mut figures = vec![
        (
            "mode",
            match mode.cap(plan.quick) {
                None => "presence = \"counts\"".to_owned(),
                Some(cap) => format!(
                    "presence = \"members\", presence_cap {cap} (counted past it); {} clients \
                     read the list in pages",
                    room["pagers"]
                ),
            },
        ),
        (
            "timeline (from the loadgen's start)",
            format!(
                "ramp to {} ms; SIGKILL at {} ms, new server listening at {} ms; churn {} % a \
                 second from {} ms for {} s; end {} ms",
                plan.ramp().as_millis(),
                storm.stopped_at.as_millis(),
                storm.restarted_at.as_millis(),
                timeline.churn_percent,
                timeline.churn_at.as_millis(),
                timeline.churn.as_secs(),
                (timeline.churn_at + timeline.churn + timeline.settle).as_millis()
            ),
        ),
        (
            "storm: every client connected again after",
            seconds(storm.all_connected),
        ),
        (
            "storm: the server's presence whole again after",
            seconds(storm.presence_whole),
        ),
        (
            "storm: every view whole after the new server listened",
            seconds(whole_after(1)),
        ),
        (
            "reconnect attempts refused / failed otherwise (retried)",
            format!(
                "{} / {}",
                report["kinds"]["healthy"]["reconnect_refused"],
                report["kinds"]["healthy"]["reconnect_failures"]
            ),
        ),
    ];
    if mode == RoomMode::CappedMembers {
        figures.push((
            "pages read; readings of the list complete / short",
            format!(
                "{}; {} / {}",
                room["pages_read"], room["list_readings_complete"], room["list_readings_short"]
            ),
        ));
    }
    let mut verdict = Verdict::new(plan, figures, checks);
    verdict.add_table(phase_table(room, servers, whole_after));
    verdict
}

/// One row per phase: bytes per client, views, the server's CPU and RSS.
fn phase_table(
    room: &Value,
    servers: &[ServerPhase; 3],
    whole_after: impl Fn(usize) -> Option<Duration>,
) -> String {
    let mut table = String::from(
        "| phase | from - to (ms) | bytes per client p50 / max | bytes, all clients | views \
         whole at its end | last view whole after the disturbance | server CPU | server peak \
         RSS (this process so far) |\n|---|---|---|---|---|---|---|---|\n",
    );
    for (index, name) in PHASES.iter().enumerate() {
        let phase = &room["phases"][index];
        let n = |field: &str| phase[field].as_u64().unwrap_or(0);
        let _ = writeln!(
            table,
            "| {name} | {} - {} | {} / {} | {:.1} MB | {} | {} | {:.1} s | {} MiB |",
            n("from_ms"),
            n("to_ms"),
            kib(n("bytes_per_client_p50")),
            kib(n("bytes_per_client_max")),
            n("bytes_total") as f64 / 1e6,
            phase["views_whole"],
            seconds(whole_after(index)),
            servers[index].cpu_s,
            servers[index].at_end.peak_rss_kib / 1024,
        );
    }
    table
}

fn seconds(duration: Option<Duration>) -> String {
    duration.map_or_else(
        || "never".to_owned(),
        |d| format!("{:.2} s", d.as_secs_f64()),
    )
}

fn kib(bytes: u64) -> String {
    format!("{:.1} KiB", bytes as f64 / 1024.0)
}
