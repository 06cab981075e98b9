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

#[test]
fn out_of_descriptors_the_accept_loop_backs_off_logs_once_and_recovers() {
    let server = ServerProcess::start_with_file_limit(
        200,
        &["--listen", "127.0.0.1:0", "--max-connections", "50"],
    );
    server.log_lines(Duration::ZERO);
    // Connections that never send a request each hold a descriptor in the
    // server until the handshake timeout (10 s); 300 exhaust its 200.
    let idle: Vec<TcpStream> = (0..300)
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
