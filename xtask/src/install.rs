//! Installing what cargo cannot fetch, the way every xtask does it: npm and
//! pip packages into folders under `target/`, Debian packages with apt-get
//! when running as root (saying what it installs first). For any other
//! user a missing tool is an error that gives the exact command to run;
//! nothing is ever skipped silently.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result, bail};

use crate::cmd;

/// Versions of the client libraries, pinned so reruns behave alike.
pub(crate) const WS_NPM: &str = "ws@8.18.0";
pub(crate) const WEBSOCKETS_PIP: &str = "websockets==13.1";

/// Where Debian's `golang-github-gorilla-websocket-dev` puts its sources.
pub(crate) const GORILLA_SOURCE: &str = "/usr/share/gocode/src/github.com/gorilla/websocket";

/// `npm install` of `spec` (`ws@8.18.0`) into `dir/node_modules`, unless
/// `package` is there already; needs `node` and `npm`.
pub(crate) fn npm_package(dir: &Path, package: &str, spec: &str) -> Result<()> {
    debian_packages(&["node", "npm"], &[], &["nodejs", "npm"])?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    if dir
        .join("node_modules")
        .join(package)
        .join("package.json")
        .exists()
    {
        return Ok(());
    }
    cmd::run(Command::new("npm").args([
        "install",
        "--no-audit",
        "--no-fund",
        "--prefix",
        path_str(dir)?,
        spec,
    ]))
}

/// `pip install --target dir` of `spec` (`websockets==13.1`), unless
/// `dir/module` exists; needs `python3` with pip.
pub(crate) fn pip_package(dir: &Path, module: &str, spec: &str) -> Result<()> {
    debian_packages(&["python3"], &[], &["python3", "python3-pip"])?;
    if dir.join(module).exists() {
        return Ok(());
    }
    if !cmd::probe(Command::new("python3").args(["-m", "pip", "--version"])) {
        require(&["python3-pip"], "python3's pip")?;
    }
    cmd::run(Command::new("python3").args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--target",
        path_str(dir)?,
        spec,
    ]))
}

/// Builds the Go program `main_go` into `output` offline: GOPATH mode over
/// Debian's packaged sources (gorilla/websocket), no module proxy.
pub(crate) fn go_program(main_go: &Path, output: &Path) -> Result<()> {
    debian_packages(
        &["go"],
        &[Path::new(GORILLA_SOURCE)],
        &["golang-go", "golang-github-gorilla-websocket-dev"],
    )?;
    let cache: PathBuf = output.with_extension("gocache");
    cmd::run(
        Command::new("go")
            .args(["build", "-o"])
            .arg(output)
            .arg(main_go)
            .env("GO111MODULE", "off")
            .env("GOPATH", "/usr/share/gocode")
            .env("GOCACHE", cache),
    )
}

/// Debian's `redis-server`, for the cluster tests and `loadtest cluster`.
pub(crate) fn redis_server() -> Result<()> {
    debian_packages(&["redis-server"], &[], &["redis-server"])
}

/// Makes sure `programs` are on the PATH and `files` exist, installing
/// `packages` with apt-get when allowed; otherwise fails with the command.
pub(crate) fn debian_packages(programs: &[&str], files: &[&Path], packages: &[&str]) -> Result<()> {
    let present = |program: &str| cmd::probe(Command::new("which").arg(program));
    if programs.iter().all(|p| present(p)) && files.iter().all(|f| f.exists()) {
        return Ok(());
    }
    let missing: Vec<String> = programs
        .iter()
        .filter(|p| !present(p))
        .map(|p| format!("`{p}`"))
        .chain(
            files
                .iter()
                .filter(|f| !f.exists())
                .map(|f| f.display().to_string()),
        )
        .collect();
    require(packages, &missing.join(", "))
}

/// Installs `packages` with apt-get if allowed, else fails naming `what` is
/// missing and the command that installs it.
fn require(packages: &[&str], what: &str) -> Result<()> {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.trim_ascii() == b"0");
    if let Some(refusal) = refusal(packages, what, root) {
        bail!(refusal);
    }
    eprintln!(
        "xtask: missing {what}: installing Debian packages with apt-get: {}",
        packages.join(" ")
    );
    // A fresh machine's package lists may be empty: read them first (the
    // first install only: later ones find them).
    let lists_empty = std::fs::read_dir("/var/lib/apt/lists")
        .map(|entries| {
            !entries
                .filter_map(Result::ok)
                .any(|entry| entry.file_name().to_string_lossy().ends_with("_Packages"))
        })
        .unwrap_or(true);
    if lists_empty {
        cmd::run(Command::new("apt-get").args(["update", "-qq"]))?;
    }
    // No package may stop a fresh machine's install to ask a question.
    let install = || {
        cmd::run(
            Command::new("apt-get")
                .env("DEBIAN_FRONTEND", "noninteractive")
                .args(["install", "-y"])
                .args(packages),
        )
    };
    if lists_empty {
        return install();
    }
    // Lists that are there may be stale (packages moved on the mirror):
    // read them again once before giving up.
    install().or_else(|_| {
        cmd::run(Command::new("apt-get").args(["update", "-qq"]))?;
        install()
    })
}

/// Why we may not install `packages` ourselves, with the command that
/// does; `None` when running as root.
fn refusal(packages: &[&str], what: &str, root: bool) -> Option<String> {
    (!root).then(|| {
        format!(
            "missing {what}: install it with `sudo apt-get install -y {}`, or run this \
             command as root and it installs them itself",
            packages.join(" ")
        )
    })
}

pub(crate) fn path_str(path: &Path) -> Result<&str> {
    path.to_str()
        .with_context(|| format!("{} is not UTF-8", path.display()))
}

#[cfg(test)]
mod tests {
    use super::refusal;

    #[test]
    fn root_installs_and_everyone_else_gets_the_command() {
        let packages = ["golang-go", "golang-github-gorilla-websocket-dev"];
        let expected = "missing `go`: install it with `sudo apt-get install -y golang-go \
                        golang-github-gorilla-websocket-dev`, or run this command as root and \
                        it installs them itself";
        assert_eq!(refusal(&packages, "`go`", false).as_deref(), Some(expected));
        assert_eq!(refusal(&packages, "`go`", true), None);
    }
}
