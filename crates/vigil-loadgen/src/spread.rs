//! More clients than one process can hold (20,000 open files a process
//! here): this process starts `--processes N` copies of itself, each with
//! `--part P/N` (the clients whose index is P modulo N) and the same start
//! instant, forwards SIGINT/SIGTERM to them, sums their progress files into
//! the ones asked for, and rebuilds one report from their slots.

use std::{
    collections::BTreeMap,
    ffi::OsString,
    fs,
    io::Read,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    thread::{self, JoinHandle},
    time::Duration,
};

use anyhow::{Context, Result, bail};
use serde_json::{Map, Value};
use tokio::signal::unix::{SignalKind, signal};

use crate::{
    cli::Options,
    report::{MessageLatency, Outcome, PartReport, Report, Slot, abuse},
    run::{unix_micros, write_atomically},
};

/// The children start this long after the parent, so that all of them are
/// up before connection 0 is due.
const LEAD: Duration = Duration::from_millis(500);
const POLL: Duration = Duration::from_millis(200);

/// One child process and the thread reading its stdout (its part).
struct Running {
    child: Child,
    stdout: JoinHandle<std::io::Result<String>>,
}

pub(crate) fn main(options: Options) -> Result<Report> {
    let exe = std::env::current_exe().context("cannot find this program to start its copies")?;
    let epoch = unix_micros() + LEAD.as_micros() as u64;
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let processes = options.processes;
    let mut running = Vec::new();
    for index in 0..processes {
        let mut command = Command::new(&exe);
        // Later flags win: these override the parent's own.
        command
            .args(&args)
            .args(["--processes", &processes.to_string()])
            .args(["--part", &format!("{index}/{processes}")])
            .args(["--epoch-unix-us", &epoch.to_string()]);
        if let Some(path) = &options.ready_file {
            command.arg("--ready-file").arg(part_path(path, index));
        }
        if let Some(path) = &options.status_file {
            command.arg("--status-file").arg(part_path(path, index));
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start child process {index} ({})", exe.display()))?;
        let mut stdout = child.stdout.take().context("the child's stdout is piped")?;
        let stdout = thread::spawn(move || {
            let mut text = String::new();
            stdout.read_to_string(&mut text).map(|_| text)
        });
        running.push(Running { child, stdout });
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot build the tokio runtime")?;
    runtime.block_on(watch(&options, &mut running))?;
    let mut parts = Vec::new();
    for (index, mut run) in running.into_iter().enumerate() {
        let status = run
            .child
            .wait()
            .context("cannot wait for a child process")?;
        let text = match run.stdout.join() {
            Ok(read) => read.with_context(|| format!("cannot read child {index}'s report"))?,
            Err(_) => bail!("the thread reading child {index}'s report panicked"),
        };
        if !status.success() {
            bail!("child process {index} failed ({status}); see its error above");
        }
        let part: PartReport = serde_json::from_str(&text)
            .with_context(|| format!("child {index}'s report is not a part report"))?;
        parts.push(part);
    }
    for path in [&options.ready_file, &options.status_file]
        .into_iter()
        .flatten()
    {
        for index in 0..processes {
            // Only tidying: a copy that is already gone is fine.
            let _ = fs::remove_file(part_path(path, index));
        }
    }
    merge(&options, &parts)
}

/// Until every child has ended: forward a stop signal, and keep the
/// parent's status and ready files summed from the children's.
async fn watch(options: &Options, running: &mut [Running]) -> Result<()> {
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut ready_written = false;
    loop {
        tokio::select! {
            _ = interrupt.recv() => forward(running, libc::SIGINT),
            _ = terminate.recv() => forward(running, libc::SIGTERM),
            () = tokio::time::sleep(POLL) => {}
        }
        if let Some(path) = &options.status_file
            && let Some(line) = summed(path, options.processes)?
        {
            write_atomically(path, &line)?;
        }
        if let Some(path) = &options.ready_file
            && !ready_written
            && let Some(line) = summed(path, options.processes)?
        {
            write_atomically(path, &line)?;
            ready_written = true;
        }
        let mut all_ended = true;
        for run in running.iter_mut() {
            all_ended &= run.child.try_wait()?.is_some();
        }
        if all_ended {
            return Ok(());
        }
    }
}

fn forward(running: &[Running], signal: libc::c_int) {
    for run in running {
        let Ok(pid) = libc::pid_t::try_from(run.child.id()) else {
            continue;
        };
        // SAFETY: kill(2) with our own child's pid has no memory effects; a
        // child that already ended makes it fail with ESRCH, which is fine.
        unsafe {
            libc::kill(pid, signal);
        }
    }
}

/// Child `index`'s copy of a progress file: `PATH.partINDEX`.
fn part_path(path: &Path, index: u32) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".part{index}"));
    PathBuf::from(name)
}

/// One JSON line summing every child's line of the file (`None` until each
/// child has written one): counts add up; `elapsed_ms` is the latest and
/// `min_pings` the least.
fn summed(path: &Path, processes: u32) -> Result<Option<String>> {
    let mut lines = Vec::new();
    for index in 0..processes {
        match fs::read_to_string(part_path(path, index)) {
            Ok(line) => lines.push(line),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(error).context("cannot read a child's progress file"),
        }
    }
    Ok(Some(sum_lines(&lines)?))
}

fn sum_lines(lines: &[String]) -> Result<String> {
    let mut total: Map<String, Value> = Map::new();
    for line in lines {
        let object: Map<String, Value> =
            serde_json::from_str(line).context("a child's progress line is not a JSON object")?;
        for (key, value) in object {
            let Some(value) = value.as_u64() else {
                bail!("a child's progress field `{key}` is not a count");
            };
            let merged = match (total.get(&key).and_then(Value::as_u64), key.as_str()) {
                (None, _) => value,
                (Some(seen), "elapsed_ms") => seen.max(value),
                (Some(seen), "min_pings") => seen.min(value),
                (Some(seen), _) => seen + value,
            };
            total.insert(key, Value::from(merged));
        }
    }
    Ok(format!("{}\n", Value::Object(total)))
}

/// One report from the children's parts, as if one process had run every
/// client: slots back in index order with their kinds, histograms added.
fn merge(options: &Options, parts: &[PartReport]) -> Result<Report> {
    let every_kind = options.mix.assign(options.connections as usize);
    let processes = parts.len();
    let mut indexed = Vec::new();
    for (part_index, part) in parts.iter().enumerate() {
        for (local, slot) in part.slots()?.into_iter().enumerate() {
            indexed.push((part_index + local * processes, slot));
        }
    }
    indexed.sort_unstable_by_key(|&(index, _)| index);
    let Some(kinds) = indexed
        .iter()
        .map(|&(index, _)| every_kind.get(index).copied())
        .collect::<Option<Vec<_>>>()
    else {
        bail!("a child reported more connections than were asked for");
    };
    let slots: Vec<Slot> = indexed.into_iter().map(|(_, slot)| slot).collect();
    let (latency, rtt) = (MessageLatency::new(), MessageLatency::new());
    let (rtt_before, rtt_during) = (MessageLatency::new(), MessageLatency::new());
    let mut reconnect_failures = BTreeMap::new();
    for part in parts {
        latency.add(&part.latency);
        rtt.add(&part.rtt);
        rtt_before.add(&part.rtt_before);
        rtt_during.add(&part.rtt_during);
        part.add_reconnect_failures(&mut reconnect_failures)?;
    }
    let mut stopped_by: Vec<&str> = parts.iter().map(|part| part.stopped_by.as_str()).collect();
    stopped_by.dedup();
    Ok(Report::new(
        options,
        Outcome {
            slots: &slots,
            kinds: &kinds,
            stopped_by: stopped_by.join(","),
            ramp_s: parts.iter().map(|part| part.ramp_s).fold(0.0, f64::max),
            hold_s: parts.iter().map(|part| part.hold_s).fold(0.0, f64::max),
            messages: latency.summary(),
            rtt: rtt.summary(),
            rtt_before: rtt_before.summary(),
            rtt_during: rtt_during.summary(),
            abuse: abuse::merge(parts.iter().map(|part| &part.abuse)),
            reconnect_failures,
            first_rejection: parts.iter().find_map(|part| part.first_rejection.clone()),
            // Tracked in one process only (`--view-phases-ms` requires it).
            room: None,
            recovery: None,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_lines_add_up_except_elapsed_and_min_pings() {
        let lines = [
            r#"{"elapsed_ms":1000,"attempted":5,"min_pings":3,"pings_total":15}"#.to_owned(),
            r#"{"elapsed_ms":1010,"attempted":4,"min_pings":2,"pings_total":10}"#.to_owned(),
        ];
        let total: Value = serde_json::from_str(&sum_lines(&lines).expect("sums")).expect("JSON");
        assert_eq!(total["elapsed_ms"], 1010);
        assert_eq!(total["attempted"], 9);
        assert_eq!(total["min_pings"], 2);
        assert_eq!(total["pings_total"], 25);
    }

    #[test]
    fn a_progress_line_that_is_not_counts_is_an_error() {
        for line in [r#"{"attempted":"five"}"#, "[1,2]", "not json"] {
            assert!(sum_lines(&[line.to_owned()]).is_err(), "{line}");
        }
    }

    #[test]
    fn child_files_sit_beside_the_asked_one() {
        assert_eq!(
            part_path(Path::new("/tmp/status.json"), 2),
            PathBuf::from("/tmp/status.json.part2")
        );
    }
}
