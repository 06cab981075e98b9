//! `cargo xtask loadtest cluster`: several `vigil --cluster` nodes sharing
//! one port (SO_REUSEPORT) on one Redis, under more clients than one
//! process can hold (the loadgen spreads them over its own processes and
//! four source addresses), some of them going silent.
//!
//! Several processes answer on one port, so `/metrics` reaches whichever
//! the kernel picks: each node is measured from `/proc` instead (CPU time,
//! RSS, open files ≈ its connections), heartbeats are the pings the
//! clients received (the loadgen's status file), and Redis's work is its
//! own `total_commands_processed`.

use std::{
    fs,
    net::{SocketAddr, TcpListener},
    time::{Duration, Instant},
};

use anyhow::Result;
use serde_json::Value;

use super::{
    Events, Plan, ServerProcess, loadgen_report, redis::RedisServer, server::Sample, spawn_loadgen,
    verdict::Verdict, wait_until_all,
};
use crate::{bench_idle::field, cmd::project_root};

/// One look at every node, the clients and Redis.
struct Look {
    at: Instant,
    /// Per node: CPU seconds, RSS KiB, open files.
    nodes: Vec<(f64, u64, u64)>,
    /// Pings the clients have received (`None` before the status file).
    pings: Option<u64>,
    redis_commands: u64,
}

fn look(nodes: &[ServerProcess], redis: &RedisServer, status: &std::path::Path) -> Result<Look> {
    let mut per_node = Vec::new();
    for node in nodes {
        let (cpu, rss) = node.cpu_and_rss()?;
        per_node.push((cpu, rss, node.open_files()?));
    }
    let pings = fs::read_to_string(status)
        .ok()
        .and_then(|line| field(&line, "pings_total"));
    Ok(Look {
        at: Instant::now(),
        nodes: per_node,
        pings,
        redis_commands: redis.commands_processed()?,
    })
}

impl Look {
    /// The nodes summed up, as one server's sample for the common verdict;
    /// connections are open files beyond `baseline`'s.
    fn as_sample(&self, baseline: &Look) -> Sample {
        let files: u64 = self.nodes.iter().map(|node| node.2).sum();
        let files_before: u64 = baseline.nodes.iter().map(|node| node.2).sum();
        Sample {
            at: self.at,
            cpu_s: self.nodes.iter().map(|node| node.0).sum(),
            rss_kib: self.nodes.iter().map(|node| node.1).sum(),
            connections: files.saturating_sub(files_before),
            pings_sent: self.pings.unwrap_or(0),
            heap_bytes: None,
            shard_cpu_s: Vec::new(),
        }
    }
}

/// A free loopback port for every node to share.
fn shared_addr() -> Result<SocketAddr> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

pub(crate) fn measure(plan: &Plan) -> Result<(Verdict, Value)> {
    let redis = RedisServer::start()?;
    let addr = shared_addr()?;
    let mut nodes = Vec::new();
    for _ in 0..plan.nodes {
        nodes.push(ServerProcess::start_node(plan, addr, &redis.url())?);
    }
    let status_path = project_root().join("target/loadtest/cluster.status.json");
    let _ = fs::remove_file(&status_path);
    let baseline = look(&nodes, &redis, &status_path)?;
    let mut loadgen = spawn_loadgen(
        plan,
        addr,
        &["--status-file".as_ref(), status_path.as_os_str()],
    )?;
    let started = Instant::now();
    let window = plan.window();
    wait_until_all(started + window.start, &mut nodes, &mut loadgen)?;
    let start = look(&nodes, &redis, &status_path)?;
    wait_until_all(started + window.end, &mut nodes, &mut loadgen)?;
    let end = look(&nodes, &redis, &status_path)?;
    // Every silent client has turned quiet and been closed (the bound,
    // plus room), and the loadgen still holds the rest.
    let detected_at = plan.ramp() + plan.silent_after + plan.bound() + Duration::from_secs(2);
    wait_until_all(started + detected_at, &mut nodes, &mut loadgen)?;
    let detected = look(&nodes, &redis, &status_path)?;

    let report = loadgen_report(plan, &mut loadgen)?;
    let last = look(&nodes, &redis, &status_path)?;
    for node in &mut nodes {
        node.check_alive()?;
    }

    let mut verdict = Verdict::judge(
        plan,
        &report,
        [
            &baseline.as_sample(&baseline),
            &start.as_sample(&baseline),
            &end.as_sample(&baseline),
            &last.as_sample(&baseline),
        ],
        &Events::default(),
    );
    add_cluster_figures(&mut verdict, plan, [&baseline, &start, &end, &detected]);
    Ok((verdict, report))
}

/// `looks`: before the load, the steady window's start and end, and once
/// every silent client was closed.
fn add_cluster_figures(verdict: &mut Verdict, plan: &Plan, looks: [&Look; 4]) {
    let [baseline, start, end, detected] = looks;
    let seconds = end
        .at
        .duration_since(start.at)
        .as_secs_f64()
        .max(f64::EPSILON);
    let per_node = |value: &dyn Fn(usize) -> String| {
        (0..end.nodes.len())
            .map(value)
            .collect::<Vec<_>>()
            .join(" / ")
    };
    let connections = |i: usize| end.nodes[i].2.saturating_sub(baseline.nodes[i].2);
    verdict.add_figure(
        "cluster: connections per node (open files)",
        per_node(&|i| connections(i).to_string()),
    );
    verdict.add_figure(
        "cluster: RSS per connection per node",
        per_node(&|i| {
            let rss = end.nodes[i].1.saturating_sub(baseline.nodes[i].1) as f64;
            format!("{:.2} KiB", rss / connections(i).max(1) as f64)
        }),
    );
    verdict.add_figure(
        "cluster: CPU per node (window)",
        per_node(&|i| {
            let busy = (end.nodes[i].0 - start.nodes[i].0) / seconds;
            format!("{:.0} %", busy * 100.0)
        }),
    );
    let total_connections: u64 = (0..end.nodes.len()).map(connections).sum();
    let commands = end.redis_commands.saturating_sub(start.redis_commands) as f64;
    let heartbeats = end
        .pings
        .unwrap_or(0)
        .saturating_sub(start.pings.unwrap_or(0)) as f64;
    verdict.add_figure(
        "cluster: Redis commands per second (steady window)",
        format!(
            "{:.1} ({:.6} per connection; {:.0} heartbeats/s over the same window)",
            commands / seconds,
            commands / seconds / total_connections.max(1) as f64,
            heartbeats / seconds
        ),
    );
    let ramp = start.redis_commands.saturating_sub(baseline.redis_commands);
    verdict.add_figure(
        "cluster: Redis commands during the ramp (joins)",
        format!(
            "{ramp} for {} connections joining rooms: {:.2} per join",
            plan.connections(),
            ramp as f64 / f64::from(plan.connections()).max(1.0)
        ),
    );
    let after = detected.redis_commands.saturating_sub(end.redis_commands);
    verdict.add_figure(
        "cluster: Redis commands while the silent clients were found out",
        format!(
            "{after} over {:.0} s, for {} silent clients (each shown unstable, then left)",
            detected.at.duration_since(end.at).as_secs_f64(),
            plan.silent
        ),
    );
}
