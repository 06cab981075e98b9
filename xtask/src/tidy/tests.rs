//! The tidy checkers on small in-memory inputs: each one accepts what the
//! rules allow and reports, with file and line, what they forbid.

use super::{
    check_core_manifest, check_core_source, check_crate_dirs, check_length, check_module_doc,
    check_top_level,
};

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn core_manifest_allows_empty_dependencies_and_dev_dependencies() {
    let text = r#"
[package]
name = "vigil-core"

# Architecture invariant: no [dependencies].
[dependencies]

[dev-dependencies]
proptest.workspace = true

[target.'cfg(unix)'.dev-dependencies]
libc = "0.2"
"#;
    assert_eq!(
        check_core_manifest("Cargo.toml", text),
        Vec::<String>::new()
    );
    assert_eq!(
        check_core_manifest("Cargo.toml", "[package]\nname = \"x\"\n"),
        Vec::<String>::new()
    );
}

#[test]
fn core_manifest_rejects_every_kind_of_dependency() {
    let text = r#"[dependencies]
tokio = "1" # trailing comment
[dependencies.rand]
version = "0.8"
[target.'cfg(target_os = "linux")'.dependencies]
libc = "0.2"
[target.x86_64-unknown-linux-gnu.dependencies.hyper]
version = "1"
[build-dependencies]
cc = "1"
"#;
    assert_eq!(
        check_core_manifest("Cargo.toml", text),
        [
            "Cargo.toml:2: `[dependencies]` has an entry: `tokio = \"1\"`",
            "Cargo.toml:3: `[dependencies.rand]` adds a dependency",
            "Cargo.toml:4: `[dependencies.rand]` has an entry: `version = \"0.8\"`",
            "Cargo.toml:5: `[target.cfg(target_os = \"linux\").dependencies]` adds a dependency",
            "Cargo.toml:6: `[target.cfg(target_os = \"linux\").dependencies]` has an entry: `libc = \"0.2\"`",
            "Cargo.toml:7: `[target.x86_64-unknown-linux-gnu.dependencies.hyper]` adds a dependency",
            "Cargo.toml:8: `[target.x86_64-unknown-linux-gnu.dependencies.hyper]` has an entry: `version = \"1\"`",
            "Cargo.toml:10: `[build-dependencies]` has an entry: `cc = \"1\"`",
        ]
    );
}

#[test]
fn core_source_rejects_clocks_sleeps_io_spawns_and_runtimes() {
    let text = "\
//! doc
let t = std::time::Instant::now();
let s = SystemTime::now();
std::thread::sleep(d);
use tokio_util::codec;
use hyper::body;
fastwebsockets::Frame::close();
let x = rand::random();
let waited = start.elapsed();
std::thread::spawn(work);
let socket = std::net::TcpStream::connect(addr);
let file = std::fs::read(path);
std::process::exit(1);
";
    let problems = check_core_source("crates/vigil-core/src/a.rs", text);
    let lines: Vec<&str> = problems
        .iter()
        .map(|p| p.split(": names").next().unwrap())
        .collect();
    assert_eq!(
        lines,
        (2..=13)
            .map(|line| format!("crates/vigil-core/src/a.rs:{line}"))
            .collect::<Vec<_>>()
    );
    assert!(
        problems[0].ends_with("names `Instant::now`: let t = std::time::Instant::now();"),
        "{}",
        problems[0]
    );
}

#[test]
fn core_source_ignores_longer_words() {
    let text = "let operand::x = 1; // hyperlink, tokiotic, Instant::nowhere, my_tokio\n";
    assert_eq!(
        check_core_source("crates/vigil-core/src/a.rs", text),
        Vec::<String>::new()
    );
}

#[test]
fn the_clippy_allow_marks_an_instant_now_origin_only_in_tests() {
    let origin = "\
/// The one clock read of these tests.
#[allow(clippy::disallowed_methods)]
fn origin() -> Instant {
    Instant::now()
}
";
    let expect =
        "#[expect(clippy::disallowed_methods, reason = \"origin\")]\nlet t = Instant::now();\n";
    for path in [
        "crates/vigil-core/tests/it/main.rs",
        "crates/vigil-core/src/heartbeat/tests.rs",
    ] {
        assert_eq!(
            check_core_source(path, origin),
            Vec::<String>::new(),
            "{path}"
        );
        assert_eq!(
            check_core_source(path, expect),
            Vec::<String>::new(),
            "{path}"
        );
    }
    let it = "crates/vigil-core/tests/it/main.rs";
    // Not outside tests, not for other words, not from afar, not in a comment.
    assert_eq!(
        check_core_source("crates/vigil-core/src/heartbeat.rs", origin).len(),
        1
    );
    let sleep = "#[allow(clippy::disallowed_methods)]\nstd::thread::sleep(d);\n";
    assert_eq!(check_core_source(it, sleep).len(), 1);
    let far =
        "#[allow(clippy::disallowed_methods)]\nfn origin() -> Instant {\n\n\n    Instant::now()\n";
    assert_eq!(check_core_source(it, far).len(), 1);
    let comment = "// #[allow(clippy::disallowed_methods)]\nlet t = Instant::now();\n";
    assert_eq!(check_core_source(it, comment).len(), 1);
    let other_lint = "#[allow(clippy::disallowed_types)]\nlet t = Instant::now();\n";
    assert_eq!(check_core_source(it, other_lint).len(), 1);
}

#[test]
fn module_doc_is_the_first_line() {
    assert_eq!(
        check_module_doc("a.rs", "//! What this is for.\nfn f() {}\n"),
        None
    );
    assert_eq!(
        check_module_doc("fuzz/fuzz_targets/t.rs", "#![no_main]\n//! late\n"),
        Some("fuzz/fuzz_targets/t.rs:1: starts with `#![no_main]` instead of a `//!` line saying what the module is for".to_owned())
    );
    assert!(check_module_doc("a.rs", "").is_some());
    assert!(check_module_doc("a.rs", "/// item doc\n").is_some());
}

#[test]
fn length_limit_is_higher_for_tests() {
    let lines = |n: usize| "x\n".repeat(n);
    assert_eq!(check_length("crates/a/src/lib.rs", &lines(600)), None);
    assert_eq!(
        check_length("crates/a/src/lib.rs", &lines(601)),
        Some("crates/a/src/lib.rs: 601 lines, over the limit of 600".to_owned())
    );
    assert_eq!(
        check_length("crates/a/src/heartbeat/tests.rs", &lines(900)),
        None
    );
    assert_eq!(check_length("crates/a/tests/it/main.rs", &lines(900)), None);
    assert_eq!(check_length("tests/e2e/main.rs", &lines(900)), None);
    assert!(check_length("crates/a/tests/it/main.rs", &lines(901)).is_some());
    assert!(check_length("crates/a/src/contests.rs", &lines(601)).is_some());
}

#[test]
fn top_level_rejects_unknown_entries() {
    let ok = strings(&[
        "Cargo.toml",
        "Cargo.lock",
        "crates",
        "xtask",
        ".ci",
        "README.md",
    ]);
    assert_eq!(check_top_level(&ok), Vec::<String>::new());
    let problems = check_top_level(&strings(&["Cargo.toml", "scripts", "notes.txt"]));
    assert_eq!(problems.len(), 2);
    assert!(
        problems[0].starts_with("scripts: not allowed at the top level"),
        "{}",
        problems[0]
    );
    assert!(
        problems[1].starts_with("notes.txt: not allowed"),
        "{}",
        problems[1]
    );
}

#[test]
fn crate_dirs_are_exactly_the_four_layers() {
    let four = strings(&["vigil-loadgen", "vigil-server", "vigil-ws", "vigil-core"]);
    assert_eq!(check_crate_dirs(&four), Vec::<String>::new());
    assert_eq!(
        check_crate_dirs(&strings(&[
            "vigil-core",
            "vigil-ws",
            "vigil-server",
            "vigil-utils"
        ])),
        [
            "crates/vigil-utils: not one of [\"vigil-core\", \"vigil-ws\", \"vigil-server\", \"vigil-loadgen\"]",
            "crates/vigil-loadgen: missing",
        ]
    );
}
