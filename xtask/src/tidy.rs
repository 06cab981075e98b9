//! Tidy checks: repository rules enforced as `#[test]`s, so `cargo test
//! --workspace` (and therefore `cargo xtask ci`) fails when one breaks.
//!
//! Each check is a pure function over in-memory inputs that returns one
//! message per problem (`path:line: why`), tested in `tidy/tests.rs` to prove
//! it can fail; the `#[test]`s here apply it to the real repository.

use std::{
    collections::BTreeSet,
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use crate::{cmd::project_root, manifest};

/// Entries allowed at the top of the repository.
const TOP_LEVEL: &[&str] = &[
    "Cargo.toml",
    "Cargo.lock",
    "crates",
    "xtask",
    "benches",
    "tests",
    "fuzz",
    "README.md",
    "ARCHITECTURE.md",
    "BENCHMARKS.md",
    "LICENSE-MIT",
    "LICENSE-APACHE",
    ".ci",
    ".cargo",
    ".gitignore",
    ".git",
    "target",
];

/// The crates under `crates/`, one per layer (DESIGN.md section 1).
const CRATES: &[&str] = &["vigil-core", "vigil-ws", "vigil-server", "vigil-loadgen"];

/// Directories whose `.rs` files must start with `//!` and stay short.
const RUST_DIRS: &[&str] = &["crates", "xtask", "benches", "tests", "fuzz/fuzz_targets"];

/// Words vigil-core's sources and tests must not contain: it reads no clock,
/// never sleeps, spawns or does IO, and names no runtime, transport or
/// randomness crate.
const CORE_BANNED: &[&str] = &[
    "Instant::now",
    "SystemTime::now",
    "elapsed()",
    "thread::sleep",
    "thread::spawn",
    "std::net",
    "std::fs",
    "std::process",
    "tokio",
    "hyper",
    "fastwebsockets",
    "rand::",
];

/// The one exception: a core *test* needs a single real `Instant` as the
/// origin of virtual time (std has no other way to make one). The marker is
/// the attribute clippy already demands for it (`clippy.toml` disallows
/// `Instant::now` in vigil-core), on the line calling `Instant::now` or at most
/// `ORIGIN_WINDOW` lines above it, with a doc comment saying why:
///
/// ```text
/// /// The one clock read of these tests: the origin of virtual time.
/// #[allow(clippy::disallowed_methods)]
/// fn origin() -> Instant {
///     Instant::now()
/// }
/// ```
const ORIGIN_MARKER: &str = "clippy::disallowed_methods";
const ORIGIN_WINDOW: usize = 3;

const MAX_LINES: usize = 600;
const MAX_TEST_LINES: usize = 900;

#[test]
fn core_has_no_dependencies() {
    let path = "crates/vigil-core/Cargo.toml";
    report(
        "vigil-core must depend on std only",
        check_core_manifest(path, &read(path)),
    );
}

#[test]
fn core_reads_no_clock_and_names_no_runtime() {
    let mut problems = Vec::new();
    for dir in ["crates/vigil-core/src", "crates/vigil-core/tests"] {
        for path in files_under(&project_root().join(dir)) {
            // Every file, text or not: a banned word is banned anywhere.
            let bytes =
                fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            let text = String::from_utf8_lossy(&bytes);
            problems.extend(check_core_source(&relative(&path), &text));
        }
    }
    report(
        "vigil-core is sans-IO: time is an input, not something it reads",
        problems,
    );
}

#[test]
fn rust_files_start_with_module_doc() {
    let problems = rust_files()
        .iter()
        .filter_map(|(path, text)| check_module_doc(path, text))
        .collect();
    report(
        "every module starts with a `//!` line saying what it is for",
        problems,
    );
}

#[test]
fn rust_files_are_short() {
    let problems = rust_files()
        .iter()
        .filter_map(|(path, text)| check_length(path, text))
        .collect();
    report("split long files by concept (STYLE.md rule 18)", problems);
}

#[test]
fn top_level_has_only_allowed_entries() {
    report(
        "the top level of the repository is fixed (issue #2)",
        check_top_level(&top_level_entries()),
    );
}

#[test]
fn crates_are_the_four_layers() {
    let root = project_root().join("crates");
    let entries = fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", root.display()))
        .map(|entry| {
            entry
                .expect("a readable crates/ entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect::<Vec<_>>();
    report(
        "one crate per layer (DESIGN.md section 1)",
        check_crate_dirs(&entries),
    );
}

/// Problems in vigil-core's manifest: any `[dependencies]` entry, any
/// `[dependencies.x]` table, and any target-specific or build dependency.
/// Dev-dependencies are allowed: they never reach users of the crate.
fn check_core_manifest(path: &str, text: &str) -> Vec<String> {
    let mut problems = Vec::new();
    for section in manifest::sections(text) {
        let keys: Vec<&str> = section.keys.iter().map(String::as_str).collect();
        let kind = match keys.as_slice() {
            ["target", _, kind, ..] => kind,
            [kind, ..] => kind,
            [] => continue,
        };
        if !matches!(*kind, "dependencies" | "build-dependencies") {
            continue;
        }
        let header = section.header();
        if keys.len() > 1 {
            problems.push(format!(
                "{path}:{}: `[{header}]` adds a dependency",
                section.line
            ));
        }
        for entry in &section.entries {
            problems.push(format!(
                "{path}:{}: `[{header}]` has an entry: `{}`",
                entry.line, entry.text
            ));
        }
    }
    problems
}

/// Problems in one vigil-core source or test file: each line naming a banned
/// word, except an `Instant::now` origin marked with `ORIGIN_MARKER` in a test.
fn check_core_source(path: &str, text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut problems = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        for &word in CORE_BANNED {
            if !contains_word(line, word) {
                continue;
            }
            let window = &lines[index.saturating_sub(ORIGIN_WINDOW)..=index];
            let marked = window.iter().any(|l| has_origin_marker(l));
            if word == "Instant::now" && marked && is_test_file(path) {
                continue;
            }
            problems.push(format!(
                "{path}:{}: names `{word}`: {}",
                index + 1,
                line.trim()
            ));
        }
    }
    problems
}

/// `#[allow(clippy::disallowed_methods)]` or `#[expect(...)]`, with or
/// without a `reason`.
fn has_origin_marker(line: &str) -> bool {
    let line = line.trim_start();
    (line.starts_with("#[allow(") || line.starts_with("#[expect(")) && line.contains(ORIGIN_MARKER)
}

/// `word` in `line`, not as the tail of a longer identifier (`operand::` is
/// not `rand::`) and, for a word ending in a letter, not as the head of a
/// longer one (`hyperlink` is not `hyper`; `tokio_util` still is `tokio`).
fn contains_word(line: &str, word: &str) -> bool {
    line.match_indices(word).any(|(start, _)| {
        let before = line[..start].chars().next_back();
        let after = line[start + word.len()..].chars().next();
        let ident = |c: char| c.is_alphanumeric() || c == '_';
        let ends_in_letter = word.ends_with(char::is_alphanumeric);
        let continues_before = before.is_some_and(ident);
        let continues_after = ends_in_letter && after.is_some_and(char::is_alphanumeric);
        !continues_before && !continues_after
    })
}

fn check_module_doc(path: &str, text: &str) -> Option<String> {
    let first = text.lines().next().unwrap_or("");
    (!first.starts_with("//!")).then(|| {
        format!(
            "{path}:1: starts with `{first}` instead of a `//!` line saying what the module is for"
        )
    })
}

fn check_length(path: &str, text: &str) -> Option<String> {
    let limit = if is_test_file(path) {
        MAX_TEST_LINES
    } else {
        MAX_LINES
    };
    let lines = text.lines().count();
    (lines > limit).then(|| format!("{path}: {lines} lines, over the limit of {limit}"))
}

/// Test code (`tests.rs`, anything under a `tests/` directory) may be longer
/// and may take one real `Instant` as its origin.
fn is_test_file(path: &str) -> bool {
    let mut components = path.split('/').rev();
    let file = components.next().unwrap_or("");
    file == "tests.rs" || components.any(|dir| dir == "tests")
}

fn check_top_level(entries: &[String]) -> Vec<String> {
    entries
        .iter()
        .filter(|entry| !TOP_LEVEL.contains(&entry.as_str()))
        .map(|entry| {
            format!(
                "{entry}: not allowed at the top level (allowed: {})",
                TOP_LEVEL.join(", ")
            )
        })
        .collect()
}

fn check_crate_dirs(entries: &[String]) -> Vec<String> {
    let found: BTreeSet<&str> = entries.iter().map(String::as_str).collect();
    let expected: BTreeSet<&str> = CRATES.iter().copied().collect();
    let unexpected = found
        .difference(&expected)
        .map(|name| format!("crates/{name}: not one of {CRATES:?}"));
    let missing = expected
        .difference(&found)
        .map(|name| format!("crates/{name}: missing"));
    unexpected.chain(missing).collect()
}

/// Top-level entries of the repository as git sees it (tracked plus untracked
/// files that are not ignored), so ignored local clutter does not fail the
/// check; without git, the directory itself.
fn top_level_entries() -> Vec<String> {
    let root = project_root();
    let git = Command::new("git")
        .arg("-C")
        .arg(&root)
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .output();
    let entries: BTreeSet<String> = match git {
        Ok(output) if output.status.success() => String::from_utf8_lossy(&output.stdout)
            .split('\0')
            .filter_map(|path| path.split('/').next())
            .filter(|entry| !entry.is_empty())
            .map(str::to_owned)
            .collect(),
        _ => fs::read_dir(&root)
            .unwrap_or_else(|e| panic!("cannot list {}: {e}", root.display()))
            .map(|entry| {
                entry
                    .expect("a readable top-level entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect(),
    };
    entries.into_iter().collect()
}

/// `(path relative to the root, text)` of every `.rs` file in `RUST_DIRS`.
fn rust_files() -> Vec<(String, String)> {
    let root = project_root();
    RUST_DIRS
        .iter()
        .flat_map(|dir| files_under(&root.join(dir)))
        .filter(|path| path.extension().is_some_and(|ext| ext == "rs"))
        .map(|path| {
            let text = fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            (relative(&path), text)
        })
        .collect()
}

/// Files under `dir`, recursively, skipping build output (`target/`).
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("a readable directory entry").path();
            if path.is_dir() {
                if path.file_name().is_some_and(|name| name != "target") {
                    pending.push(path);
                }
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn relative(path: &Path) -> String {
    let path = path.strip_prefix(project_root()).unwrap_or(path);
    path.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

fn read(path: &str) -> String {
    let full = project_root().join(path);
    fs::read_to_string(&full).unwrap_or_else(|e| panic!("cannot read {}: {e}", full.display()))
}

#[track_caller]
fn report(rule: &str, problems: Vec<String>) {
    if !problems.is_empty() {
        panic!("tidy: {rule}\n\n{}\n", problems.join("\n"));
    }
}

mod readme;
mod tests;
