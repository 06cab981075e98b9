//! `cargo xtask ci`: everything CI checks, in order, stopping at the first
//! failing step. Passing locally means CI passes (`.ci/run` calls this).

use anyhow::{Context, Result};

use crate::{
    cmd::{self, cargo},
    suites,
};

type Step = (&'static str, fn() -> Result<()>);

const STEPS: &[Step] = &[
    ("fmt", fmt),
    ("clippy", clippy),
    ("test", suites::run),
    ("doc", doc),
];

pub(crate) fn run() -> Result<()> {
    for &(name, step) in STEPS {
        eprintln!("==> ci step `{name}`");
        step().with_context(|| format!("ci step `{name}` failed"))?;
    }
    eprintln!(
        "==> ci passed: {}",
        STEPS
            .iter()
            .map(|(name, _)| *name)
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}

fn fmt() -> Result<()> {
    cmd::run(cargo().args(["fmt", "--all", "--check"]))
}

fn clippy() -> Result<()> {
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

fn doc() -> Result<()> {
    cmd::run(cargo().env("RUSTDOCFLAGS", "-D warnings").args([
        "doc",
        "--workspace",
        "--no-deps",
        "--locked",
    ]))
}
