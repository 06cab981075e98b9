//! bench-idle's pure parts: options, stats lines, the figures and the row.

use std::time::Duration;

use super::{
    Figures, Measured, Noise, Options, Sample, Server, field,
    figures::{machine_busy_ticks, process_cpu_ticks},
};

fn args(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| (*w).to_owned()).collect()
}

#[test]
fn options() {
    assert_eq!(
        Options::parse(&[]).unwrap(),
        Options {
            servers: vec![Server::Naive, Server::Vigil],
            connections: 19_000,
            interval_ms: 5000,
            heartbeats: 20,
        }
    );
    assert_eq!(
        Options::parse(&args(&[
            "--heartbeats",
            "5",
            "--quick",
            "--server",
            "naive"
        ]))
        .unwrap(),
        Options {
            servers: vec![Server::Naive],
            connections: 2000,
            interval_ms: 5000,
            heartbeats: 5,
        }
    );
    let all = Options::parse(&args(&["--server", "all"])).unwrap();
    assert_eq!(
        all.servers,
        [Server::Naive, Server::Vigil, Server::VigilStream]
    );
    for (bad, expected) in [
        (&["--connections", "19001"][..], "from 1 to 19000"),
        (
            &["--server", "go"],
            "naive, vigil, vigil-stream, both or all",
        ),
        (&["--interval-ms"], "needs a value"),
        (&["--heartbeats", "0"], "from 1 to 1000"),
        (&["--fast", "1"], "unknown argument `--fast`"),
    ] {
        let error = Options::parse(&args(bad)).unwrap_err().to_string();
        assert!(error.contains(expected), "{bad:?}: {error}");
    }
}

#[test]
fn bounds_follow_the_options() {
    let options = Options::parse(&[]).unwrap();
    assert_eq!(options.until_pings(), 26);
    assert_eq!(options.ramp(), Duration::from_millis(9500));
    assert!(options.loadgen_hold() > options.interval() * 26 + options.exit_timeout());
    assert!(options.server_lifetime() > options.ready_timeout() + options.heartbeats_timeout());
}

#[test]
fn fields_of_flat_and_pretty_json() {
    let line = "{\"seq\":3,\"uptime_ms\":3001,\"pings_sent\":0}";
    assert_eq!(field(line, "seq"), Some(3));
    assert_eq!(field(line, "uptime_ms"), Some(3001));
    assert_eq!(field(line, "pings_sent"), Some(0));
    assert_eq!(field(line, "pings"), None);
    assert_eq!(
        field("{\n  \"closed_by_server\": 12,\n}", "closed_by_server"),
        Some(12)
    );
    assert_eq!(field("{\"x\":\"text\"}", "x"), None);
}

fn sample(seq: u64, uptime_ms: u64, pings: u64, heap: u64, rss: u64, cpu: u64) -> Sample {
    let line = format!(
        "{{\"seq\":{seq},\"uptime_ms\":{uptime_ms},\"connections\":1000,\"pings_sent\":{pings},\
         \"pongs_received\":{pings},\"live_heap_bytes\":{heap},\"live_allocations\":10,\
         \"allocations\":{},\"rss_kib\":{rss},\"cpu_ticks\":{cpu}}}\n",
        pings * 2
    );
    Sample::parse(&line).unwrap()
}

#[test]
fn figures() {
    let baseline = sample(1, 1000, 0, 100_000, 3000, 1);
    let start = sample(40, 40_000, 8000, 10_100_000, 13_000, 200);
    let end = sample(60, 60_000, 12_000, 10_200_000, 13_500, 210);
    let noise = |machine, loadgen| Noise {
        machine_busy_ticks: machine,
        loadgen_ticks: loadgen,
    };
    let figures = Figures::compute(
        &baseline,
        (&start, noise(1000, 50)),
        (&end, noise(1100, 70)),
        100,
    )
    .unwrap();
    assert_eq!(
        figures,
        Figures {
            connections: 1000,
            heap_per_connection_bytes: 10_100.0,
            rss_per_connection_kib: 10.5,
            cpu_per_heartbeat_us: 25.0,
            heartbeats_per_s: 200.0,
            server_cpu_percent: 0.5,
            allocations_per_heartbeat: 2.0,
            loadgen_cpu_percent: 1.0,
            other_cpu_percent: 3.5,
        }
    );
    let measured = Measured {
        figures,
        baseline,
        start,
        end,
        loadgen_report: None,
        wall: Duration::from_secs(75),
    };
    assert_eq!(
        measured.row(Server::Naive),
        "| naive | 1000 | 10100 B | 10.50 KiB | 25.0 us | 200 | 0.5 % | 2.00 | 4 % | 75 s |"
    );
    let json = measured.to_json(Server::Naive, &Options::parse(&[]).unwrap());
    assert!(json.contains("\"cpu_per_heartbeat_us\": 25.00,"), "{json}");
    assert!(json.contains("\"loadgen\": null\n}"), "{json}");
}

#[test]
fn nothing_to_measure_is_an_error() {
    let quiet = sample(2, 2000, 0, 0, 0, 0);
    let none = Noise::default();
    assert!(Figures::compute(&quiet, (&quiet, none), (&quiet, none), 100).is_err());
    assert!(Sample::parse("{\"seq\":1}").is_err());
}

#[test]
fn proc_parsers() {
    let stat = "cpu  100 1 20 5000 7 3 4 2 50 0\ncpu0 1 2 3 4 5 6 7 8 9 0\n";
    assert_eq!(machine_busy_ticks(stat), Some(130));
    assert_eq!(machine_busy_ticks("intr 1 2"), None);
    let process = "7 (vigil loadgen) S 1 7 7 0 -1 0 0 0 0 0 11 4 0 0 20 0 1 0 5";
    assert_eq!(process_cpu_ticks(process), Some(15));
    assert_eq!(process_cpu_ticks("7 (x) S"), None);
}
