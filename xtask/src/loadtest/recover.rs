//! `cargo xtask loadtest recover`: clients in rooms of 100 with a publisher
//! each (5 messages a second), once with channel history off and once on
//! (issue #16). Every healthy client drops its connection at once (no close
//! frame) and comes back with the last offset it received; later the
//! server is killed (SIGKILL) and started again on its port, and they come
//! back again. The loadgen's clients count every message and what each
//! re-join could recover; the harness adds the server's history memory
//! and CPU.

use std::{net::SocketAddr, time::Instant};

use anyhow::{Result, bail};
use serde_json::Value;

use super::{
    Plan, ServerProcess, Storm, loadgen_report, restart,
    server::series,
    spawn_loadgen,
    verdict::{Check, Verdict},
    wait_until, with_config,
};

/// One run of `plan` (history on or off): the verdict, and the loadgen's
/// report.
pub(super) fn measure(plan: &Plan) -> Result<(Verdict, Value)> {
    let Some(history) = plan.history else {
        bail!("recover needs history on or off");
    };
    let plan = &with_config(plan, &plan.recover_config())?;
    let timeline = plan.recover_timeline();
    let listen: SocketAddr = "127.0.0.1:0".parse()?;
    let mut server = ServerProcess::start(plan, listen)?;
    let mut loadgen = spawn_loadgen(plan, server.addr(), &[])?;
    let started = Instant::now();

    // Just before the drop, and just before the kill: what the server
    // keeps for recovery then.
    wait_until(started + timeline.drop_at, &mut server, &mut loadgen)?;
    let before_drop = history_bytes(&server)?;
    wait_until(started + timeline.kill_at, &mut server, &mut loadgen)?;
    let before_kill = history_bytes(&server)?;
    let (cpu_before_kill, _) = server.cpu_and_rss()?;
    let storm = restart(plan, &mut server, &mut loadgen, started)?;

    let report = loadgen_report(plan, &mut loadgen)?;
    server.check_alive()?;
    let verdict = judge(
        plan,
        history,
        &report,
        [before_drop, before_kill],
        cpu_before_kill,
        &storm,
    );
    Ok((verdict, report))
}

/// `vigil_history_messages` and `vigil_history_bytes` now.
fn history_bytes(server: &ServerProcess) -> Result<(u64, u64)> {
    let metrics = server.metrics()?;
    Ok((
        series(&metrics, "vigil_history_messages")?,
        series(&metrics, "vigil_history_bytes")?,
    ))
}

fn judge(
    plan: &Plan,
    history: bool,
    report: &Value,
    kept: [(u64, u64); 2],
    cpu_before_kill: f64,
    storm: &Storm,
) -> Verdict {
    let recovery = &report["recovery"];
    let n = |field: &str| recovery[field].as_u64().unwrap_or(0);
    let reasons = &recovery["not_recovered"];
    let reason = |name: &str| reasons[name].as_u64().unwrap_or(0);
    let healthy = u64::from(plan.healthy);
    let mut checks = Vec::new();
    let mut check = |name: &str, passed: bool, seen: String| {
        checks.push(Check {
            name: name.to_owned(),
            passed,
            seen,
        });
    };
    let attempted = report["attempted"].as_u64().unwrap_or(0);
    let failed = report["failed"].as_u64().unwrap_or(u64::MAX);
    check(
        "every handshake of the ramp succeeds",
        attempted == u64::from(plan.connections()) && failed == 0,
        format!("{attempted} attempted, {failed} failed"),
    );
    check(
        "every client is back after the restart",
        storm.all_connected.is_some(),
        seconds(storm.all_connected),
    );
    check(
        "no message is delivered twice",
        n("duplicates") == 0,
        format!("{} duplicates", n("duplicates")),
    );
    check(
        "no offset is skipped and no epoch changes without a re-join saying so",
        n("gap_messages") == 0 && n("epoch_jumps") == 0,
        format!(
            "{} offsets skipped, {} messages of an unannounced epoch",
            n("gap_messages"),
            n("epoch_jumps")
        ),
    );
    if history {
        check(
            "every re-join after a connection knew where it was",
            n("blind_rejoins") == 0,
            format!("{} re-joins named no position", n("blind_rejoins")),
        );
        check(
            "every client re-joins twice, naming its last message (the drop, the restart)",
            n("rejoins") == 2 * healthy,
            format!("{} re-joins of {healthy} clients", n("rejoins")),
        );
        check(
            "after the drop, every re-join recovers, and what it missed arrives",
            n("recovered") == healthy
                && n("recovered_messages") > 0
                && n("replayed") == n("recovered_messages"),
            format!(
                "{} of {healthy}; {} missed messages announced, {} arrived",
                n("recovered"),
                n("recovered_messages"),
                n("replayed")
            ),
        );
        check(
            "no published message is lost",
            n("lost_messages") == 0,
            format!("{} of the publishers' numbers skipped", n("lost_messages")),
        );
        check(
            "after the restart, every re-join is told the history is gone",
            reason("epoch_changed") == healthy,
            format!("{reasons}"),
        );
    } else {
        // Messages carry no offset: a client has nothing to name, and what
        // it missed while away is lost without a word.
        check(
            "without history, messages flow and no re-join can name a position",
            n("delivered") > 0 && n("rejoins") == 0,
            format!(
                "{} delivered, {} re-joins with `since`",
                n("delivered"),
                n("rejoins")
            ),
        );
    }

    let ms = |field: &str| {
        recovery[field]
            .as_u64()
            .map_or_else(|| "none".to_owned(), |ms| format!("{ms} ms"))
    };
    let figures = vec![
        (
            "history",
            if history {
                format!("on: {}", plan.recover_config().replace('\n', " "))
            } else {
                "off".to_owned()
            },
        ),
        (
            "messages delivered to the clients",
            n("delivered").to_string(),
        ),
        (
            "re-joins: recovered / not (by reason)",
            format!("{} / {reasons}", n("recovered")),
        ),
        (
            "messages a recovery delivered",
            format!(
                "{} ({:.1} per recovering client)",
                n("recovered_messages"),
                n("recovered_messages") as f64 / (n("recovered").max(1)) as f64
            ),
        ),
        (
            "messages lost: publishers' numbers a client skipped",
            format!(
                "{} ({:.1} per client)",
                n("lost_messages"),
                n("lost_messages") as f64 / healthy.max(1) as f64
            ),
        ),
        (
            "messages lost that a refused re-join could count (same epoch)",
            n("lost_known").to_string(),
        ),
        (
            "time from a recovering re-join's reply to its last missed message p50 / max",
            format!("{} / {}", ms("recover_ms_p50"), ms("recover_ms_max")),
        ),
        (
            "duplicates / unannounced gaps",
            format!("{} / {}", n("duplicates"), n("gap_messages")),
        ),
        (
            "server history before the drop / before the kill: messages, bytes",
            format!(
                "{} / {}; {} / {} B",
                kept[0].0, kept[1].0, kept[0].1, kept[1].1
            ),
        ),
        (
            "server CPU until the kill",
            format!("{cpu_before_kill:.1} s"),
        ),
        (
            "restart: every client connected again after",
            seconds(storm.all_connected),
        ),
    ];
    Verdict::new(plan, figures, checks)
}

fn seconds(duration: Option<std::time::Duration>) -> String {
    duration.map_or_else(
        || "never".to_owned(),
        |d| format!("{:.2} s", d.as_secs_f64()),
    )
}
