//! `cargo xtask fuzz [--seconds N]`: runs every cargo-fuzz target of the root
//! `fuzz/` project (outside the workspace: it needs nightly) for a bounded
//! time each, and says exactly what to install when a tool is missing.

use std::{fs, path::Path, process::Command};

use anyhow::{Context, Result, bail};

use crate::{
    cmd::{self, probe, project_root},
    manifest,
};

const DEFAULT_SECONDS: u64 = 60;

#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Options {
    /// libFuzzer's `-max_total_time` for each target.
    seconds: u64,
}

impl Options {
    pub(crate) fn parse(args: &[String]) -> Result<Options> {
        match args {
            [] => Ok(Options {
                seconds: DEFAULT_SECONDS,
            }),
            [flag, value] if flag == "--seconds" => match value.parse() {
                Ok(seconds) if seconds > 0 => Ok(Options { seconds }),
                _ => bail!("`--seconds` takes a whole number of seconds above 0, got `{value}`"),
            },
            _ => bail!(
                "usage: cargo xtask fuzz [--seconds N], got `{}`",
                args.join(" ")
            ),
        }
    }
}

pub(crate) fn run(options: &Options) -> Result<()> {
    let fuzz_dir = project_root().join("fuzz");
    let targets = discover_targets(&fuzz_dir)?;
    check_tools()?;
    eprintln!(
        "==> fuzzing {} for {} s each",
        targets.join(", "),
        options.seconds
    );
    for target in &targets {
        cmd::run(
            nightly_cargo()
                .args(["fuzz", "run", target, "--"])
                .arg(format!("-max_total_time={}", options.seconds)),
        )
        .with_context(|| {
            format!("fuzz target `{target}` failed; a crashing input is kept in fuzz/artifacts/{target}/")
        })?;
    }
    Ok(())
}

/// `cargo +nightly` through the rustup proxy on `PATH`: the `CARGO` we were
/// started with is a toolchain's own cargo, which does not understand `+`.
fn nightly_cargo() -> Command {
    let mut cmd = Command::new("cargo");
    cmd.arg("+nightly").current_dir(project_root());
    cmd
}

fn check_tools() -> Result<()> {
    if !probe(Command::new("rustup").arg("--version")) {
        bail!(
            "cargo-fuzz needs a nightly toolchain managed by rustup, and `rustup` was not found: \
             install it from https://rustup.rs, then run `rustup toolchain install nightly` \
             and `cargo install cargo-fuzz --locked`"
        );
    }
    if !probe(Command::new("rustup").args(["run", "nightly", "rustc", "--version"])) {
        bail!(
            "cargo-fuzz needs a nightly toolchain and none is installed: run `rustup toolchain install nightly`"
        );
    }
    if !probe(nightly_cargo().args(["fuzz", "--version"])) {
        bail!("cargo-fuzz is not installed: run `cargo install cargo-fuzz --locked`");
    }
    Ok(())
}

/// Target names: the `[[bin]]`s of `fuzz/Cargo.toml`, each of which must have
/// its file in `fuzz/fuzz_targets/`; a file there without a `[[bin]]` would
/// never run, so it is an error rather than a silent gap.
fn discover_targets(fuzz_dir: &Path) -> Result<Vec<String>> {
    let manifest_path = fuzz_dir.join("Cargo.toml");
    let manifest = fs::read_to_string(&manifest_path).with_context(|| {
        format!(
            "cannot read {} (the cargo-fuzz project)",
            manifest_path.display()
        )
    })?;
    let targets_dir = fuzz_dir.join("fuzz_targets");
    let mut files = Vec::new();
    for entry in fs::read_dir(&targets_dir)
        .with_context(|| format!("cannot list {}", targets_dir.display()))?
    {
        let path = entry?.path();
        if path.extension().is_some_and(|ext| ext == "rs") {
            let stem = path
                .file_stem()
                .expect("a path with an extension has a file name");
            files.push(stem.to_string_lossy().into_owned());
        }
    }
    targets(&manifest, files)
}

fn targets(manifest: &str, mut files: Vec<String>) -> Result<Vec<String>> {
    files.sort();
    let mut bins: Vec<(&str, Option<&str>)> = Vec::new();
    for section in manifest::sections(manifest) {
        if section.is_array && section.keys == ["bin"] {
            let Some(name) = section.string("name") else {
                bail!(
                    "fuzz/Cargo.toml:{}: a [[bin]] without a `name`",
                    section.line
                );
            };
            bins.push((name, section.string("path")));
        }
    }
    let orphans: Vec<&String> = files
        .iter()
        .filter(|stem| {
            let file = format!("fuzz_targets/{stem}.rs");
            !bins
                .iter()
                .any(|&(name, path)| name == stem.as_str() || path == Some(file.as_str()))
        })
        .collect();
    if !orphans.is_empty() {
        bail!(
            "fuzz/fuzz_targets/ has files without a [[bin]] in fuzz/Cargo.toml, so they would never run: {orphans:?} \
             (add a [[bin]] for each, as `cargo fuzz add` does)"
        );
    }
    if bins.is_empty() {
        bail!("no fuzz targets: fuzz/Cargo.toml has no [[bin]] and fuzz/fuzz_targets/ no .rs file");
    }
    Ok(bins.into_iter().map(|(name, _)| name.to_owned()).collect())
}

#[cfg(test)]
mod tests {
    use super::{Options, targets};

    fn args(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| (*w).to_owned()).collect()
    }

    #[test]
    fn options() {
        assert_eq!(Options::parse(&[]).unwrap(), Options { seconds: 60 });
        assert_eq!(
            Options::parse(&args(&["--seconds", "5"])).unwrap(),
            Options { seconds: 5 }
        );
        for bad in [
            &["--seconds", "0"][..],
            &["--seconds", "x"],
            &["--seconds"],
            &["5"],
        ] {
            assert!(
                Options::parse(&args(bad)).is_err(),
                "{bad:?} should be rejected"
            );
        }
    }

    const MANIFEST: &str = r#"
[package]
name = "vigil-fuzz"

[[bin]]
name = "heartbeat"
path = "fuzz_targets/heartbeat.rs"

[[bin]]
name = "presence_ops"
path = "fuzz_targets/presence.rs"
"#;

    #[test]
    fn targets_come_from_bins() {
        let files = args(&["presence", "heartbeat"]);
        assert_eq!(
            targets(MANIFEST, files).unwrap(),
            ["heartbeat", "presence_ops"]
        );
    }

    #[test]
    fn a_target_file_without_a_bin_is_an_error() {
        let error = targets(MANIFEST, args(&["heartbeat", "presence", "stray"])).unwrap_err();
        assert!(error.to_string().contains("\"stray\""), "{error}");
    }

    #[test]
    fn a_bin_without_a_name_is_an_error() {
        let error = targets(
            "[package]\n\n[[bin]]\npath = \"fuzz_targets/a.rs\"\n",
            args(&["a"]),
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "fuzz/Cargo.toml:3: a [[bin]] without a `name`"
        );
    }

    #[test]
    fn no_targets_is_an_error() {
        assert!(targets("[package]\nname = \"x\"\n", Vec::new()).is_err());
    }
}
