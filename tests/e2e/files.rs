//! A `vigil` that runs out of file descriptors: it must neither spin nor
//! flood its log, and it must serve again once descriptors are free.

use std::net::TcpStream;
use std::time::Duration;
use vigil_e2e::{ServerProcess, WsClient};

/// CPU seconds (user + system) the process has used, from `/proc`.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/PID/stat");
    // Fields after the command name, which is in parentheses.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .expect("a command name")
        .1
        .split_whitespace()
        .collect();
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 here.
    let ticks: u64 =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    // The kernel's USER_HZ is 100 on every Linux this runs on.
    ticks as f64 / 100.0
}

/// Soft and hard `Max open files` of process `pid`, from `/proc`.
fn file_limits(pid: &str) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("Linux /proc");
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .expect("an open-files line");
    let mut fields = line.split_whitespace().skip(3);
    let soft = fields.next().expect("a soft limit").to_owned();
    let hard = fields.next().expect("a hard limit").to_owned();
    (soft, hard)
}

#[test]
fn the_soft_file_limit_is_raised_to_the_hard_one_and_the_default_limit_follows() {
    let (_, mut hard) = file_limits("self");
    if hard == "unlimited" {
        // vigil raises the soft limit to the kernel's ceiling then.
        hard = std::fs::read_to_string("/proc/sys/fs/nr_open")
            .expect("fs.nr_open")
            .trim()
            .to_owned();
    }
    let server = ServerProcess::start_under_ulimit("-Sn 256", &["--listen", "127.0.0.1:0"]);
    assert_eq!(
        file_limits(&server.pid().to_string()).0,
        hard,
        "the soft limit is raised to the hard one"
    );
    let log = server.startup_log().join("\n");
    assert!(
        log.contains("raised the soft open-file limit to the hard limit before=256"),
        "{log}"
    );
    let files: usize = hard.parse().expect("a number of files");
    assert!(
        log.contains(&format!("max_connections={}", files - 100 - 1024)),
        "the default is the hard limit less 100 files and the 1,024 handshake places: {log}"
    );
    // A limit the process cannot hold is refused, naming the real limit.
    let asked = (files + 1).to_string();
    let refused = vigil_e2e::run(
        &vigil_e2e::vigil_bin(),
        &["--listen", "127.0.0.1:0", "--max-connections", &asked],
    );
    let stderr = &refused.stderr;
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("may open only {hard} (its hard limit")),
        "{stderr}"
    );
}

#[test]
fn out_of_descriptors_the_accept_loop_backs_off_logs_once_and_recovers() {
    let server = ServerProcess::start_with_file_limit(
        200,
        &[
            "--listen",
            "127.0.0.1:0",
            "--max-connections",
            "50",
            "--max-handshakes",
            "40",
        ],
    );
    server.log_lines(Duration::ZERO);
    // vigil's own limits fit its 200 files, so it can only run out when
    // the limit shrinks under it (or something else holds files): lower it
    // to 4 more than it holds now. Connections that never send a request
    // each hold a descriptor until the handshake timeout (10 s), up to 8
    // from one address (a sixteenth of 40, at least 8): more than 4.
    let open = std::fs::read_dir(format!("/proc/{}/fd", server.pid()))
        .expect("/proc/PID/fd")
        .count();
    let lowered = std::process::Command::new("prlimit")
        .arg(format!("--pid={}", server.pid()))
        .arg(format!("--nofile={0}:{0}", open + 4))
        .status()
        .expect("prlimit (util-linux)");
    assert!(lowered.success(), "prlimit failed: {lowered:?}");
    let idle: Vec<TcpStream> = (0..20)
        .map(|_| TcpStream::connect(server.addr()).expect("the kernel accepts into the backlog"))
        .collect();
    let before = cpu_seconds(server.pid());
    let log = server.log_lines(Duration::from_secs(3));
    let used = cpu_seconds(server.pid()) - before;
    assert!(
        used < 1.0,
        "the accept loop spun: {used:.2} s of CPU in 3 s while out of descriptors"
    );
    let failures: Vec<&String> = log
        .iter()
        .filter(|line| line.contains("accept failed"))
        .collect();
    assert_eq!(failures.len(), 1, "one line per 10 s: {log:#?}");
    assert!(
        failures[0].contains("Too many open files"),
        "{}",
        failures[0]
    );
    drop(idle);
    // Closing our side frees the server's descriptors; it serves again.
    let mut served = None;
    for _ in 0..50 {
        match WsClient::try_connect(server.addr(), "/ws", &[]) {
            Ok(client) => {
                served = Some(client);
                break;
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
    let mut client = served.expect("the server never served again");
    assert_eq!(client.next_json()["type"], "welcome");
}
