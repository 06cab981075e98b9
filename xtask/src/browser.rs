//! The `browser` test suite: the dashboard and `vigil.js` in a real Chromium
//! (Debian's `chromium`, driven by playwright-core from npm), against the
//! real `vigil` binary, after `tsc --strict` has checked that `vigil.d.ts`
//! describes the client as an application uses it
//! (`tests/browser/types.check.ts`). The scenarios are
//! `tests/browser/browser.test.mjs`.
//!
//! Everything it needs is installed the way the other suites install
//! things (`install.rs`): Chromium with apt-get when running as root
//! (otherwise the error gives the command), playwright-core and TypeScript
//! with `npm ci` from the committed
//! lock file
//! into `target/browser/`. Screenshots land in `target/browser/artifacts/`.
//! A self-signed certificate for `localhost`, made for each run (rcgen), is
//! what the `wss://` scenario's server presents; Chromium is told to
//! accept that key (`--ignore-certificate-errors-spki-list`).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::cmd::{self, project_root};
use crate::install;

/// The browser the tests drive, as Debian installs it.
const CHROMIUM: &str = "/usr/bin/chromium";

/// What `tests/browser/` holds and the suite copies next to its
/// `node_modules` (an ES module resolves packages from its own folder).
const FILES: &[&str] = &[
    "package.json",
    "package-lock.json",
    "browser.test.mjs",
    "silent-client.mjs",
    "snippet.html",
    "types.check.ts",
    "tsconfig.json",
];

/// The declarations `types.check.ts` checks, served at `/vigil.d.ts`.
const DECLARATIONS: &str = "crates/vigil-server/src/dashboard/vigil.d.ts";

/// Installs what is missing, then runs the scenarios; `vigil` must be built
/// (the `build binaries` suite does it).
pub(crate) fn run() -> Result<()> {
    let vigil = project_root().join("target/debug/vigil");
    if !vigil.exists() {
        bail!(
            "{} is missing: run `cargo build --workspace --bins` first",
            vigil.display()
        );
    }
    install::debian_packages(&["chromium"], &[Path::new(CHROMIUM)], &["chromium"])?;
    install::debian_packages(&["node", "npm"], &[], &["nodejs", "npm"])?;
    let dir = prepare()?;
    cmd::run(
        Command::new("node")
            .args(["node_modules/typescript/bin/tsc", "-p", "."])
            .current_dir(&dir),
    )
    .context("vigil.d.ts does not type-check against tests/browser/types.check.ts")?;
    let tls = certificate(&dir)?;
    let artifacts = dir.join("artifacts");
    let screenshot = artifacts.join("dashboard.png");
    // A screenshot left by an earlier run must not pass for this one's.
    if screenshot.exists() {
        fs::remove_file(&screenshot)
            .with_context(|| format!("cannot remove {}", screenshot.display()))?;
    }
    cmd::run(
        Command::new("node")
            .args(["--test-reporter=spec", "browser.test.mjs"])
            .current_dir(&dir)
            .env("VIGIL_BIN", &vigil)
            .env("CHROMIUM", CHROMIUM)
            .env("VIGIL_ARTIFACTS", &artifacts)
            .env("BROWSER_TLS_CERT", &tls.0)
            .env("BROWSER_TLS_KEY", &tls.1),
    )?;
    if !screenshot.exists() {
        bail!("the run saved no screenshot at {}", screenshot.display());
    }
    eprintln!("screenshot: {}", screenshot.display());
    Ok(())
}

/// A fresh self-signed certificate for `localhost` and `127.0.0.1` and its
/// key, as PEM files under `dir/tls/`.
fn certificate(dir: &Path) -> Result<(PathBuf, PathBuf)> {
    let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    let made = rcgen::generate_simple_self_signed(names).context("cannot make a certificate")?;
    let tls = dir.join("tls");
    fs::create_dir_all(&tls).with_context(|| format!("cannot create {}", tls.display()))?;
    let (cert, key) = (tls.join("cert.pem"), tls.join("key.pem"));
    fs::write(&cert, made.cert.pem())
        .with_context(|| format!("cannot write {}", cert.display()))?;
    fs::write(&key, made.key_pair.serialize_pem())
        .with_context(|| format!("cannot write {}", key.display()))?;
    Ok((cert, key))
}

/// `target/browser/` with the scenario files and playwright-core, installed
/// with `npm ci` (exactly the lock file's versions) when the lock changed.
fn prepare() -> Result<PathBuf> {
    let source = project_root().join("tests/browser");
    let dir = project_root().join("target/browser");
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let installed_lock = fs::read(dir.join("package-lock.json")).ok();
    for file in FILES {
        fs::copy(source.join(file), dir.join(file))
            .with_context(|| format!("cannot copy tests/browser/{file}"))?;
    }
    fs::copy(project_root().join(DECLARATIONS), dir.join("vigil.d.ts"))
        .with_context(|| format!("cannot copy {DECLARATIONS}"))?;
    let lock = fs::read(dir.join("package-lock.json"))?;
    let fresh = dir
        .join("node_modules/playwright-core/package.json")
        .exists()
        && installed_lock.as_deref() == Some(lock.as_slice());
    if !fresh {
        cmd::run(
            Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(&dir),
        )?;
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// README.md shows the snippet the browser test loads, byte for byte:
    /// the fenced block right after the line linking to it.
    #[test]
    fn readme_shows_the_browser_snippet_the_tests_run() {
        let root = project_root();
        let readme = fs::read_to_string(root.join("README.md")).expect("README.md");
        let snippet =
            fs::read_to_string(root.join("tests/browser/snippet.html")).expect("the snippet");
        let block = fenced_block_after(&readme, "(tests/browser/snippet.html)")
            .expect("README.md links to tests/browser/snippet.html, then shows it in a block");
        assert_eq!(
            block, snippet,
            "README.md's browser snippet differs from tests/browser/snippet.html"
        );
    }

    #[test]
    fn the_suite_copies_every_file_of_tests_browser() {
        let mut found: Vec<String> = fs::read_dir(project_root().join("tests/browser"))
            .expect("tests/browser")
            .map(|entry| {
                entry
                    .expect("an entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .filter(|name| name != "node_modules" && name != "artifacts")
            .collect();
        found.sort();
        let mut expected: Vec<String> = FILES.iter().map(|f| (*f).to_owned()).collect();
        expected.sort();
        assert_eq!(found, expected);
    }

    /// The body of the first fenced code block after the first line that
    /// contains `marker`.
    fn fenced_block_after(text: &str, marker: &str) -> Option<String> {
        let mut lines = text.lines().skip_while(|line| !line.contains(marker));
        lines.next()?;
        let mut lines = lines.skip_while(|line| !line.starts_with("```"));
        lines.next()?;
        let body: Vec<&str> = lines.take_while(|line| !line.starts_with("```")).collect();
        Some(body.iter().map(|line| format!("{line}\n")).collect())
    }

    #[test]
    fn fenced_block_after_finds_the_block_following_the_marker() {
        let text = "a\n[x](f.html):\n\n```html\n<p>1</p>\n\n<p>2</p>\n```\n```\nno\n```\n";
        assert_eq!(
            fenced_block_after(text, "(f.html)").as_deref(),
            Some("<p>1</p>\n\n<p>2</p>\n")
        );
        assert_eq!(fenced_block_after(text, "(g.html)"), None);
    }
}
