//! `cargo xtask ci`, the same as `cargo xtask test` (which `.ci/run` calls),
//! and the lint steps that `test` runs around its suites.

use anyhow::Result;

use crate::{
    cmd::{self, cargo},
    suites,
};

/// Everything CI checks is the README's test command: `cargo xtask test`
/// runs the format check and clippy first and the doc build last, so the
/// one command a contributor runs is the one CI runs.
pub(crate) fn run() -> Result<()> {
    suites::run()
}

pub(crate) fn fmt() -> Result<()> {
    cmd::run(cargo().args(["fmt", "--all", "--check"]))
}

pub(crate) fn clippy() -> Result<()> {
    cmd::run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--locked",
        "--",
        "-D",
        "warnings",
    ]))
}

pub(crate) fn doc() -> Result<()> {
    cmd::run(cargo().env("RUSTDOCFLAGS", "-D warnings").args([
        "doc",
        "--workspace",
        "--no-deps",
        "--locked",
    ]))
}
