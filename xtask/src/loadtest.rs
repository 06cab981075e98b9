//! `cargo xtask loadtest SCENARIO [--quick]`: the real `vigil` binary under
//! a `vigil-loadgen` load, with the verdict issue #5 asks of each scenario.
//!
//! Method: build the release binaries (`vigil` with the `count-alloc`
//! feature, so `/metrics` shows its live heap); start `vigil` on a free
//! loopback port with the scenario's heartbeat; start one loadgen with the
//! scenario's mix of clients; sample the server's RSS, CPU time and
//! `/metrics` while it runs (and, for `starve`, stop it with SIGSTOP for
//! longer than the heartbeat timeout); read the loadgen's report; write
//! `target/loadtest/<scenario>.json` and `.md`; fail if a check fails.
//! Checks are about correctness (every silent peer detected within the
//! bound, no false positive, no failed handshake), never about speed.

mod abuse;
mod bigroom;
mod cluster;
mod plan;
mod recover;
mod redis;
mod server;
mod tls;
mod verdict;

use std::{
    ffi::OsStr,
    fs,
    net::SocketAddr,
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

pub(crate) use self::plan::{Plan, RoomMode, Scenario};
pub(crate) use self::server::ServerProcess;
use self::verdict::Verdict;
use crate::{
    child::Child,
    cmd::{self, cargo, project_root},
};

const USAGE: &str = "usage: cargo xtask loadtest \
     idle|detect|starve|flood|publish|storm|restart|cluster|abuse|bigroom|recover [--quick] [--shards N[,N...]] \
     [--tls] | --plot";

#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Options {
    pub(crate) scenario: Scenario,
    pub(crate) quick: bool,
    /// `--shards 1,2`: run the scenario once per shard count, one after the
    /// other in this invocation (same build, same machine state); empty:
    /// once, with the server's default.
    pub(crate) shards: Vec<u32>,
    /// `--tls`: the server speaks TLS, the loadgen's healthy clients wss
    /// (files `<scenario>-tls.*`).
    pub(crate) tls: bool,
}

/// What `cargo xtask loadtest ...` asks for.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Request {
    Run(Options),
    /// `--plot`: charts of the latest `compare` results.
    Plot,
}

impl Request {
    pub(crate) fn parse(args: &[String]) -> Result<Request> {
        if args == ["--plot"] {
            return Ok(Request::Plot);
        }
        Options::parse(args).map(Request::Run)
    }

    pub(crate) fn run(&self) -> Result<()> {
        match self {
            Request::Run(options) => run(options),
            Request::Plot => crate::plot::run(),
        }
    }
}

impl Options {
    pub(crate) fn parse(args: &[String]) -> Result<Options> {
        let mut scenario = None;
        let mut quick = false;
        let mut shards = Vec::new();
        let mut tls = false;
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--quick" => quick = true,
                "--tls" => tls = true,
                "--shards" => {
                    let list = args.next().context("--shards needs a list such as 1,2")?;
                    shards = list
                        .split(',')
                        .map(|n| match n.trim().parse::<u32>() {
                            Ok(n @ 1..=256) => Ok(n),
                            _ => Err(anyhow::anyhow!("--shards {list}: each is 1..=256")),
                        })
                        .collect::<Result<_>>()?;
                }
                name => match Scenario::from_name(name) {
                    Some(found) if scenario.is_none() => scenario = Some(found),
                    Some(_) => bail!("one scenario at a time\n{USAGE}"),
                    None => bail!("unknown scenario or flag `{name}`\n{USAGE}"),
                },
            }
        }
        let Some(scenario) = scenario else {
            bail!("which scenario?\n{USAGE}");
        };
        Ok(Options {
            scenario,
            quick,
            shards,
            tls,
        })
    }
}

pub(crate) fn run(options: &Options) -> Result<()> {
    build()?;
    let shard_counts: Vec<Option<u32>> = if options.shards.is_empty() {
        vec![None]
    } else {
        options.shards.iter().copied().map(Some).collect()
    };
    let tls = match options.tls {
        true => Some(tls::TlsFiles::make(
            &project_root().join("target/loadtest/tls"),
        )?),
        false => None,
    };
    // `bigroom` runs once per presence mode, `recover` with history off,
    // then on.
    let modes: Vec<(Option<RoomMode>, Option<bool>)> = match options.scenario {
        Scenario::Bigroom => RoomMode::ALL.map(|mode| (Some(mode), None)).to_vec(),
        Scenario::Recover => vec![(None, Some(false)), (None, Some(true))],
        _ => vec![(None, None)],
    };
    let mut failures = Vec::new();
    for (shards, (room, history)) in shard_counts
        .iter()
        .flat_map(|&shards| modes.iter().map(move |&mode| (shards, mode)))
    {
        let plan = Plan {
            shards,
            tls: tls.clone(),
            room,
            history,
            ..Plan::of(options.scenario, options.quick)
        };
        if let Err(error) = run_plan(&plan) {
            eprintln!("==> {} failed: {error:#}", plan.file_stem());
            failures.push(plan.file_stem());
        }
    }
    if !failures.is_empty() {
        bail!("failed: {}", failures.join(", "));
    }
    Ok(())
}

/// The release binaries the load tests run.
fn build() -> Result<()> {
    cmd::run(cargo().args([
        "build",
        "--release",
        "--locked",
        "-p",
        "vigil-server",
        "-p",
        "vigil-loadgen",
        "--bins",
        // Live heap in /metrics (vigil_heap_live_bytes).
        "--features",
        "vigil-server/count-alloc",
    ]))
}

/// One run of `plan`, its results written under `target/loadtest/`.
fn run_plan(plan: &Plan) -> Result<()> {
    let out_dir = project_root().join("target/loadtest");
    fs::create_dir_all(&out_dir).with_context(|| format!("cannot create {}", out_dir.display()))?;
    eprintln!("==> loadtest {}: {}", plan.file_stem(), plan.describe());

    let (verdict, report) = match plan.scenario {
        Scenario::Cluster => cluster::measure(plan)?,
        Scenario::Abuse => abuse::measure(plan)?,
        Scenario::Bigroom => bigroom::measure(plan)?,
        Scenario::Recover => recover::measure(plan)?,
        _ => measure(plan)?,
    };
    let json_path = out_dir.join(format!("{}.json", plan.file_stem()));
    let md_path = out_dir.join(format!("{}.md", plan.file_stem()));
    fs::write(
        &json_path,
        serde_json::to_string_pretty(&verdict.json(&report))?,
    )
    .with_context(|| format!("cannot write {}", json_path.display()))?;
    let summary = verdict.markdown();
    fs::write(&md_path, &summary).with_context(|| format!("cannot write {}", md_path.display()))?;
    println!("{summary}");
    eprintln!(
        "==> wrote {} and {}",
        json_path.display(),
        md_path.display()
    );
    verdict.into_result()
}

/// One server, one loadgen: the run every scenario but `cluster` makes.
fn measure(plan: &Plan) -> Result<(Verdict, serde_json::Value)> {
    let mut server = ServerProcess::start(plan, "127.0.0.1:0".parse()?)?;
    let baseline = server.sample()?;
    let mut loadgen = spawn_loadgen(plan, server.addr(), &[])?;
    let started = Instant::now();

    // Steady window: after the ramp and a few heartbeats, before anyone
    // goes quiet.
    let window = plan.window();
    wait_until(started + window.start, &mut server, &mut loadgen)?;
    let window_start = server.sample()?;
    wait_until(started + window.end, &mut server, &mut loadgen)?;
    let window_end = server.sample()?;

    let mut stopped_for = None;
    if let Some((after, length)) = plan.stop {
        wait_until(started + after, &mut server, &mut loadgen)?;
        eprintln!("==> SIGSTOP vigil for {} ms", length.as_millis());
        server.signal("STOP")?;
        thread::sleep(length);
        server.signal("CONT")?;
        stopped_for = Some((after, length));
    }

    let mut storm = None;
    if let Some(after) = plan.restart_after {
        wait_until(started + after, &mut server, &mut loadgen)?;
        storm = Some(restart(plan, &mut server, &mut loadgen, started)?);
    }

    let report = loadgen_report(plan, &mut loadgen)?;
    let end = server.sample()?;
    server.check_alive()?;

    let verdict = Verdict::judge(
        plan,
        &report,
        [&baseline, &window_start, &window_end, &end],
        &Events {
            stopped: stopped_for,
            storm,
        },
    );
    Ok((verdict, report))
}

/// What the harness did besides sampling, for the verdict.
#[derive(Debug, Default)]
pub(crate) struct Events {
    /// When (from the loadgen's start) the server was stopped, and how long.
    pub(crate) stopped: Option<(Duration, Duration)>,
    pub(crate) storm: Option<Storm>,
}

/// A restart under load: a crash (`storm`) or a deploy (`restart`).
#[derive(Debug)]
pub(crate) struct Storm {
    /// Whether it was a deploy's restart (SIGTERM) rather than a crash.
    pub(crate) graceful: bool,
    /// When SIGKILL (or SIGTERM) was sent, and when the old process was
    /// gone, from the loadgen's start. After SIGKILL the kernel closes its
    /// every socket, the listener last, and handshakes that reach the
    /// listener meanwhile sit in a queue no one accepts from and are reset
    /// when it closes. After SIGTERM it closes its listener first and ends
    /// once it has sent every client 1001.
    pub(crate) stopped_at: Duration,
    pub(crate) gone_at: Option<Duration>,
    /// When the new server listened, from the loadgen's start.
    pub(crate) restarted_at: Duration,
    /// From then until every client was connected again, if they were.
    pub(crate) all_connected: Option<Duration>,
    /// From then until the channel showed every client again, if it did.
    pub(crate) presence_whole: Option<Duration>,
}

/// How long the old server of `restart` may take to send every client
/// 1001 and end (19,000 at its drain rate of 2,000 a second, plus room).
const DRAIN_PATIENCE: Duration = Duration::from_secs(30);

/// Stops the server (SIGKILL: every client loses it at once; or SIGTERM
/// for `restart`) and starts a new one on the same port, then watches its
/// `/metrics` until every client is connected and in the channel's
/// presence again.
fn restart(
    plan: &Plan,
    server: &mut ServerProcess,
    loadgen: &mut Child,
    started: Instant,
) -> Result<Storm> {
    let addr = server.addr();
    let graceful = plan.scenario == Scenario::Restart;
    let stopped_at = started.elapsed();
    let mut old = if graceful {
        eprintln!("==> SIGTERM vigil and start a new one on {addr} at once");
        server.signal("TERM")?;
        Some(std::mem::replace(server, start_once_free(plan, addr)?))
    } else {
        eprintln!("==> SIGKILL vigil and start it again on {addr}");
        server.kill()?;
        *server = ServerProcess::start(plan, addr)?;
        None
    };
    let mut gone_at = old.is_none().then(|| started.elapsed());
    let restarted = Instant::now();
    let expected = u64::from(plan.reconnecting());
    let mut all_connected = None;
    let mut presence_whole = None;
    loop {
        loadgen.check_alive()?;
        if gone_at.is_none() && old.as_mut().map_or(Ok(true), ServerProcess::has_exited)? {
            gone_at = Some(started.elapsed());
        }
        let (connections, members) = server.connections_and_members()?;
        if all_connected.is_none() && connections >= expected {
            all_connected = Some(restarted.elapsed());
        }
        if presence_whole.is_none() && members >= expected {
            presence_whole = Some(restarted.elapsed());
        }
        let done = presence_whole.is_some() && gone_at.is_some();
        let patience = if gone_at.is_none() {
            DRAIN_PATIENCE
        } else {
            plan.storm_patience()
        };
        if done || restarted.elapsed() >= patience {
            break;
        }
        thread::sleep(Duration::from_millis(50));
    }
    Ok(Storm {
        graceful,
        stopped_at,
        gone_at,
        restarted_at: restarted.duration_since(started),
        all_connected,
        presence_whole,
    })
}

/// Starts a server on `addr` as soon as the old one has closed its
/// listener (it does so first thing after SIGTERM).
fn start_once_free(plan: &Plan, addr: std::net::SocketAddr) -> Result<ServerProcess> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match ServerProcess::start(plan, addr) {
            Ok(server) => return Ok(server),
            Err(error) if Instant::now() >= deadline => {
                return Err(error.context(format!("{addr} still taken 5 s after SIGTERM")));
            }
            Err(_) => thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// The release loadgen running `plan`'s clients against `addr`, with
/// `extra` flags after the plan's; its report comes on its stdout.
pub(crate) fn spawn_loadgen(plan: &Plan, addr: SocketAddr, extra: &[&OsStr]) -> Result<Child> {
    Child::spawn(
        "vigil-loadgen",
        Command::new(project_root().join("target/release/vigil-loadgen"))
            .args(plan.loadgen_args(addr))
            .args(extra)
            .stdout(Stdio::piped()),
    )
}

/// Waits (up to its lifetime) for the loadgen to end, and reads its JSON
/// report from its stdout.
pub(crate) fn loadgen_report(plan: &Plan, loadgen: &mut Child) -> Result<serde_json::Value> {
    let Some(status) = loadgen.wait_timeout(plan.loadgen_lifetime())? else {
        bail!("vigil-loadgen still running after its hold; killed it");
    };
    if !status.success() {
        bail!("vigil-loadgen failed ({status}); see its stderr above");
    }
    serde_json::from_str(&loadgen.stdout()?).context("vigil-loadgen's report is not JSON")
}

/// `plan` with a config file holding `text` (a scenario's namespaces),
/// written under `target/loadtest/` and named after the run.
pub(crate) fn with_config(plan: &Plan, text: &str) -> Result<Plan> {
    let config = project_root().join(format!("target/loadtest/{}.toml", plan.file_stem()));
    fs::write(&config, text).with_context(|| format!("cannot write {}", config.display()))?;
    Ok(Plan {
        config: Some(config),
        ..plan.clone()
    })
}

/// Sleeps until `at`, failing early if either process died.
pub(crate) fn wait_until(
    at: Instant,
    server: &mut ServerProcess,
    loadgen: &mut Child,
) -> Result<()> {
    wait_until_all(at, std::slice::from_mut(server), loadgen)
}

/// Sleeps until `at`, failing early if a server or the loadgen died.
pub(crate) fn wait_until_all(
    at: Instant,
    servers: &mut [ServerProcess],
    loadgen: &mut Child,
) -> Result<()> {
    while Instant::now() < at {
        for server in servers.iter_mut() {
            server.check_alive()?;
        }
        loadgen.check_alive()?;
        thread::sleep(Duration::from_millis(50).min(at.saturating_duration_since(Instant::now())));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(words: &[&str]) -> Result<Options> {
        Options::parse(&words.iter().map(|w| (*w).to_owned()).collect::<Vec<_>>())
    }

    #[test]
    fn shards_run_the_scenario_once_each() {
        let options = parse(&["flood", "--shards", "1, 2"]).expect("valid");
        assert_eq!(options.shards, [1, 2]);
    }

    #[test]
    fn plot_stands_alone() {
        assert_eq!(
            Request::parse(&["--plot".to_owned()]).expect("valid"),
            Request::Plot
        );
    }

    #[test]
    fn a_scenario_by_name_quick_or_not() {
        assert_eq!(
            parse(&["detect", "--quick"]).expect("valid"),
            Options {
                scenario: Scenario::Detect,
                quick: true,
                shards: Vec::new(),
                tls: false,
            }
        );
        assert_eq!(
            parse(&["abuse", "--quick"]).expect("valid"),
            Options {
                scenario: Scenario::Abuse,
                quick: true,
                shards: Vec::new(),
                tls: false,
            }
        );
        assert_eq!(
            parse(&["idle"]).expect("valid"),
            Options {
                scenario: Scenario::Idle,
                quick: false,
                shards: Vec::new(),
                tls: false,
            }
        );
        assert!(parse(&["idle", "--tls"]).expect("valid").tls);
        for (words, expected) in [
            (&[][..], "which scenario"),
            (&["nap"], "unknown scenario or flag `nap`"),
            (&["idle", "detect"], "one scenario at a time"),
            (&["--plot", "idle"], "unknown scenario or flag `--plot`"),
            (&["flood", "--shards"], "--shards needs a list"),
            (&["flood", "--shards", "1,0"], "each is 1..=256"),
        ] {
            let error = parse(words).expect_err("refused").to_string();
            assert!(error.contains(expected), "{words:?}: {error}");
        }
    }
}
