//! Running external commands: echo them, run them from the workspace root, and
//! turn a failure into an error that names the command.

use std::{
    env,
    ffi::OsStr,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result, bail};

/// The workspace root: xtask lives one directory below it.
pub(crate) fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask's manifest directory is `<workspace>/xtask`, so it has a parent")
        .to_path_buf()
}

/// The cargo that runs us (`CARGO`), so every step uses the same toolchain.
pub(crate) fn cargo() -> Command {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(project_root());
    cmd
}

/// Echoes `cmd` to stderr, runs it with inherited stdio and fails unless it
/// exits successfully.
pub(crate) fn run(cmd: &mut Command) -> Result<()> {
    let shown = display(cmd);
    eprintln!("$ {shown}");
    let status = cmd
        .status()
        .with_context(|| format!("could not start `{shown}`"))?;
    if !status.success() {
        bail!("`{shown}` failed ({status})");
    }
    Ok(())
}

/// Runs `cmd` quietly to probe for a tool; true iff it started and succeeded.
pub(crate) fn probe(cmd: &mut Command) -> bool {
    cmd.output().is_ok_and(|output| output.status.success())
}

/// `KEY=value program args`, as one would type it (the program by its file
/// name: `cargo`, not the toolchain path in `CARGO`).
pub(crate) fn display(cmd: &Command) -> String {
    let mut words = Vec::new();
    for (key, value) in cmd.get_envs() {
        if let Some(value) = value {
            words.push(format!("{}={}", key.to_string_lossy(), quote(value)));
        }
    }
    let program = Path::new(cmd.get_program());
    words.push(quote(program.file_name().unwrap_or(program.as_os_str())));
    words.extend(cmd.get_args().map(quote));
    words.join(" ")
}

fn quote(word: &OsStr) -> String {
    let word = word.to_string_lossy();
    if word.is_empty() || word.contains(char::is_whitespace) {
        format!("'{word}'")
    } else {
        word.into_owned()
    }
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    #[test]
    fn display_shows_env_program_name_and_quoted_args() {
        let mut cmd = Command::new("/opt/toolchain/bin/cargo");
        cmd.env("RUSTDOCFLAGS", "-D warnings")
            .args(["doc", "--workspace"]);
        assert_eq!(
            super::display(&cmd),
            "RUSTDOCFLAGS='-D warnings' cargo doc --workspace"
        );
    }
}
