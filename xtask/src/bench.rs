//! `cargo xtask bench [-- ARGS]`: the criterion benches of `vigil-benches`,
//! with ARGS passed through to criterion (e.g. `--save-baseline main`).

use anyhow::{Result, bail};

use crate::cmd::{self, cargo};

pub(crate) fn run(args: &[String]) -> Result<()> {
    let criterion_args = match args.split_first() {
        None => &[][..],
        Some((separator, rest)) if separator == "--" => rest,
        Some(_) => bail!(
            "unexpected argument `{}`: pass criterion arguments after `--`, \
             e.g. `cargo xtask bench -- --save-baseline main`",
            args.join(" ")
        ),
    };
    let mut cmd = cargo();
    cmd.args(["bench", "-p", "vigil-benches", "--locked"]);
    if !criterion_args.is_empty() {
        cmd.arg("--").args(criterion_args);
    }
    cmd::run(&mut cmd)
}
