//! `cargo xtask test`: the full test suite, as a list of named suites run in
//! order, stopping at the first failure.
//!
//! Extension point: later issues append suites here (a Redis cluster suite, a
//! browser suite). A suite must never skip silently. One that needs a system
//! package (`redis-server`, a headless browser) looks for its binary first;
//! when it is missing, it installs the package with `apt-get install -y <pkg>`
//! when running as root (saying so), and otherwise fails with the exact
//! command that installs it. `install.rs` holds those helpers.

use anyhow::{Context, Result};

use crate::cmd::{self, cargo};

type Suite = (&'static str, fn() -> Result<()>);

const SUITES: &[Suite] = &[
    // Cheap checks first: a formatting slip fails in seconds, not minutes.
    ("fmt --check", crate::ci::fmt),
    ("clippy -D warnings", crate::ci::clippy),
    // The end-to-end tests in `tests/` start the real binaries, so they must
    // exist (and be fresh) before `cargo test` runs.
    ("build binaries", build_binaries),
    // The workspace tests include `tests/interop`, which runs the Python,
    // Node and Go clients of `tests/interop/clients/` with these toolchains.
    ("interop toolchains", crate::interop::install),
    // `tests/cluster` runs vigil nodes on a real Redis.
    ("redis-server", crate::install::redis_server),
    ("workspace tests", workspace_tests),
    // The dashboard and vigil.js in a real Chromium against the built
    // `vigil` (installs Chromium and playwright-core when missing).
    ("browser", crate::browser::run),
    // Correctness under load with real clients (release build): every quiet
    // client detected within the bound, no false positive, no failed
    // handshake. Timings are recorded, not asserted.
    ("loadtest idle --quick", || {
        quick_loadtest(crate::loadtest::Scenario::Idle, false)
    }),
    // The same over wss:// (vigil's own TLS, the loadgen trusting a CA
    // made for the run).
    ("loadtest idle --quick --tls", || {
        quick_loadtest(crate::loadtest::Scenario::Idle, true)
    }),
    ("loadtest detect --quick", || {
        quick_loadtest(crate::loadtest::Scenario::Detect, false)
    }),
    // Three cluster nodes on one port and Redis, a silent client or thirty.
    ("loadtest cluster --quick", || {
        quick_loadtest(crate::loadtest::Scenario::Cluster, false)
    }),
    // Flooders of every kind beside healthy clients: none of them closed.
    ("loadtest abuse --quick", || {
        quick_loadtest(crate::loadtest::Scenario::Abuse, false)
    }),
    // Every client in one channel, per presence mode: restarted under
    // them, then churned; every view whole again, bytes per client.
    ("loadtest bigroom --quick", || {
        quick_loadtest(crate::loadtest::Scenario::Bigroom, false)
    }),
    // Rooms with a publisher each, history off then on: every client
    // drops and comes back, then the server restarts; no duplicate, no
    // unannounced gap, every recovery complete (history on).
    ("loadtest recover --quick", || {
        quick_loadtest(crate::loadtest::Scenario::Recover, false)
    }),
    ("doc", crate::ci::doc),
];

pub(crate) fn run() -> Result<()> {
    for &(name, suite) in SUITES {
        eprintln!("==> test suite `{name}`");
        suite().with_context(|| format!("test suite `{name}` failed"))?;
    }
    Ok(())
}

/// `cargo xtask loadtest SCENARIO --quick` (with `--tls` when asked).
fn quick_loadtest(scenario: crate::loadtest::Scenario, tls: bool) -> Result<()> {
    crate::loadtest::run(&crate::loadtest::Options {
        scenario,
        quick: true,
        shards: Vec::new(),
        tls,
    })
}

fn build_binaries() -> Result<()> {
    cmd::run(cargo().args(["build", "--workspace", "--bins", "--locked"]))
}

/// `--no-fail-fast`: one failing test binary must not hide the others'
/// results (the tidy tests in particular).
fn workspace_tests() -> Result<()> {
    cmd::run(
        cargo()
            .args(["test", "--workspace", "--locked", "--no-fail-fast"])
            .envs(crate::interop::test_env()),
    )
}
