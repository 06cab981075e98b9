//! `cargo xtask`: vigil's project automation, in plain Rust (no shell scripts).
//!
//! `main` only dispatches; each subcommand lives in its own module. Every
//! subcommand echoes the commands it runs and exits non-zero on the first
//! failure. The tidy checks are `#[test]`s in `tidy.rs`, so they run with
//! `cargo test --workspace` like any other test.

mod bench;
mod bench_idle;
mod browser;
mod child;
mod ci;
mod cmd;
mod compare;
mod fuzz;
mod install;
mod interop;
mod loadtest;
mod manifest;
mod plot;
mod suites;
#[cfg(test)]
mod tidy;

use std::process::ExitCode;

use anyhow::{Result, bail};

const USAGE: &str = "\
cargo xtask: vigil's project automation

USAGE:
    cargo xtask <SUBCOMMAND>

SUBCOMMANDS:
    test                 what CI runs (`.ci/run`): fmt check, clippy -D warnings,
                         the binaries, every test suite, docs with -D warnings;
                         as root it installs the Debian packages it needs
    ci                   the same as `test`
    bench [-- ARGS]      criterion benches (`cargo bench -p vigil-benches`);
                         ARGS after `--` go to criterion
    fuzz [--seconds N]   run every cargo-fuzz target in fuzz/ for N seconds
                         each (default 60); needs nightly and cargo-fuzz
    bench-idle [--server naive|vigil|both] [--connections N] [--interval-ms MS]
               [--heartbeats K] [--quick]
                         memory and CPU per idle heartbeating connection of
                         the naive baseline and the vigil-ws bench servers
                         (default both, 19000 connections, 5000 ms, 20
                         heartbeats; --quick: 2000 connections, 3 heartbeats);
                         writes target/bench-idle/<server>.json
    loadtest idle|detect|starve|flood|publish|storm [--quick] | --plot
                         the vigil server under vigil-loadgen: idle (memory,
                         CPU per heartbeat), detect (silent, half-open and
                         slow-reading clients among healthy ones), starve
                         (server stopped past the timeout), flood (pings
                         every 100 ms: round trips per core), publish (fan-out
                         to 1,000 subscribers), storm (server killed and
                         restarted under every client); checks that every
                         quiet client is detected within the bound and no
                         healthy one is closed; writes target/loadtest/;
                         --plot draws benches/plots/*.svg from compare's
                         results
    compare [--quick] [--sweep] [--only NAME,...]
                         loadtest's idle and detect loads against vigil and
                         its peers (benches/peers/: node-ws, python-websockets,
                         go-gorilla, and the naive tokio server) in one run;
                         installs their toolchains under target/peers (Go via
                         apt-get); writes target/compare/compare.md;
                         --sweep: idle at 1k-19k connections with client RTT
                         probes, target/compare/sweep.json (for --plot)
    interop              the Python `websockets`, Node `ws` and Go gorilla
                         clients of tests/interop/clients/ against vigil
                         (installs their toolchains under target/interop,
                         Go via apt-get; part of `test`)
    browser              the dashboard and vigil.js in a real Chromium
                         (tests/browser; installs chromium via apt-get and
                         playwright-core under target/browser; part of
                         `test`, after `cargo build --workspace --bins`)
    help                 print this message
";

/// Exit code for a command line we do not understand, as for most CLIs.
const USAGE_ERROR: u8 = 2;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((subcommand, rest)) = args.split_first() else {
        eprint!("{USAGE}");
        return ExitCode::from(USAGE_ERROR);
    };
    let result = match subcommand.as_str() {
        "ci" => no_arguments("ci", rest).and_then(|()| ci::run()),
        "test" => no_arguments("test", rest).and_then(|()| suites::run()),
        "bench" => bench::run(rest),
        "fuzz" => fuzz::Options::parse(rest).and_then(|options| fuzz::run(&options)),
        "bench-idle" => {
            bench_idle::Options::parse(rest).and_then(|options| bench_idle::run(&options))
        }
        "loadtest" => loadtest::Request::parse(rest).and_then(|request| request.run()),
        "compare" => compare::Options::parse(rest).and_then(|options| compare::run(&options)),
        "interop" => no_arguments("interop", rest).and_then(|()| interop::run()),
        "browser" => no_arguments("browser", rest).and_then(|()| browser::run()),
        "help" | "-h" | "--help" => {
            print!("{USAGE}");
            Ok(())
        }
        other => {
            eprintln!("error: unknown subcommand `{other}`\n");
            eprint!("{USAGE}");
            return ExitCode::from(USAGE_ERROR);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn no_arguments(subcommand: &str, rest: &[String]) -> Result<()> {
    if !rest.is_empty() {
        bail!(
            "`cargo xtask {subcommand}` takes no arguments, got `{}` (see `cargo xtask help`)",
            rest.join(" ")
        );
    }
    Ok(())
}
