//! vigil-loadgen: opens thousands of real WebSocket clients against a loopback
//! server and prints one JSON report on stdout.
//!
//! Kinds of client (`--kind`, mixable by weight): healthy, silent, slow
//! reader, half-open (through a built-in blackhole proxy) and flapper; see
//! `client.rs`. More than one process holds are spread over child
//! processes (`spread.rs`). `cargo xtask bench-idle` and `cargo xtask
//! loadtest` drive it; `--help` has the command line.

mod cli;
mod client;
mod handshake;
mod mix;
mod recovery;
mod report;
mod room;
mod run;
mod spread;

use std::process::ExitCode;

fn main() -> ExitCode {
    let options = match cli::Options::parse(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(error) => {
            eprintln!("vigil-loadgen: {error:#}");
            return ExitCode::from(2);
        }
    };
    let output = if options.processes > 1 && options.part.is_none() {
        spread::main(options).map(run::Output::Report)
    } else {
        if options.part.is_some() {
            end_with_the_parent();
        }
        run::main(options)
    };
    let json = match output {
        Ok(run::Output::Report(report)) => serde_json::to_string_pretty(&report),
        // Read by the parent, not a person: compact.
        Ok(run::Output::Part(part)) => serde_json::to_string(&part),
        Err(error) => {
            eprintln!("vigil-loadgen: error: {error:#}");
            return ExitCode::FAILURE;
        }
    };
    match json {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("vigil-loadgen: cannot encode the report: {error}");
            ExitCode::FAILURE
        }
    }
}

/// A child process (`--part`) gets SIGTERM when its parent ends, however it
/// ends: its clients must not outlive the run.
fn end_with_the_parent() {
    // SAFETY: prctl(PR_SET_PDEATHSIG) only sets a flag of this process.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
    }
}
