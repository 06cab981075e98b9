//! The stats line format and the `/proc` parsers.

use super::{Sample, cpu_ticks, vm_rss_kib};

#[test]
fn line_format_is_the_protocol() {
    let sample = Sample {
        seq: 3,
        uptime_ms: 3001,
        connections: 19000,
        pings_sent: 11400,
        pongs_received: 11398,
        live_heap_bytes: 1234567,
        live_allocations: 4567,
        allocations: 890123,
        rss_kib: 20480,
        cpu_ticks: 250,
    };
    assert_eq!(
        sample.to_line(),
        "{\"seq\":3,\"uptime_ms\":3001,\"connections\":19000,\"pings_sent\":11400,\
         \"pongs_received\":11398,\"live_heap_bytes\":1234567,\"live_allocations\":4567,\
         \"allocations\":890123,\"rss_kib\":20480,\"cpu_ticks\":250}\n"
    );
}

#[test]
fn cpu_ticks_counts_fields_after_the_command_name() {
    let stat = "4242 (a (weird) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 \
                37 5 0 0 20 0 3 0 12345 1000000 500 18446744073709551615";
    assert_eq!(cpu_ticks(stat), Some(42));
    assert_eq!(cpu_ticks("garbage"), None);
}

#[test]
fn vm_rss_reads_the_kib_figure() {
    let status = "Name:\tx\nVmPeak:\t  9000 kB\nVmRSS:\t    5120 kB\nThreads:\t3\n";
    assert_eq!(vm_rss_kib(status), Some(5120));
    assert_eq!(vm_rss_kib("Name:\tx\n"), None);
}

#[test]
fn reads_this_process() {
    let status = std::fs::read_to_string("/proc/self/status").expect("Linux /proc");
    let stat = std::fs::read_to_string("/proc/self/stat").expect("Linux /proc");
    assert!(vm_rss_kib(&status).is_some_and(|kib| kib > 0));
    assert!(cpu_ticks(&stat).is_some());
}
