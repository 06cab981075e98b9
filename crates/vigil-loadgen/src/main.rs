//! vigil-loadgen: opens thousands of real WebSocket clients against a loopback
//! server and prints one JSON report on stdout.
//!
//! Kinds of client (`--kind`, mixable by weight): healthy, silent, slow
//! reader, half-open (through a built-in blackhole proxy) and flapper; see
//! `client.rs`. `cargo xtask bench-idle` and `cargo xtask loadtest` drive
//! it; `--help` has the command line.

mod cli;
mod client;
mod handshake;
mod mix;
mod report;
mod run;

use std::process::ExitCode;

fn main() -> ExitCode {
    let options = match cli::Options::parse(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(error) => {
            eprintln!("vigil-loadgen: {error:#}");
            return ExitCode::from(2);
        }
    };
    let report = match run::main(options) {
        Ok(report) => report,
        Err(error) => {
            eprintln!("vigil-loadgen: error: {error:#}");
            return ExitCode::FAILURE;
        }
    };
    match serde_json::to_string_pretty(&report) {
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
