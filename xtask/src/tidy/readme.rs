//! The README shows the examples verbatim: every source file under
//! `tests/interop/clients/` (the code the interop tests run) and the
//! embedding examples the workspace compiles appear in README.md as the code
//! block right after a link to them, byte for byte, so they cannot drift.

use std::fs;

use super::{files_under, read, relative, report};
use crate::cmd::project_root;

/// Extensions of example sources (not what `npm install` may leave there).
const SOURCES: &[&str] = &["py", "mjs", "go"];

/// Rust examples the README shows (built by clippy's `--all-targets`).
const EMBEDDING_EXAMPLES: &[&str] = &["crates/vigil-ws/examples/axum_server.rs"];

#[test]
fn readme_shows_every_client_example_verbatim() {
    let examples: Vec<(String, String)> =
        files_under(&project_root().join("tests/interop/clients"))
            .into_iter()
            .filter(|path| !path.components().any(|c| c.as_os_str() == "node_modules"))
            .filter(|path| {
                path.extension()
                    .is_some_and(|ext| SOURCES.iter().any(|source| ext == *source))
            })
            .map(|path| {
                let text = fs::read_to_string(&path)
                    .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
                (relative(&path), text)
            })
            .collect();
    assert!(
        examples.len() >= 3,
        "tests/interop/clients/ holds the Python, Node and Go clients: found {examples:?}"
    );
    let mut examples = examples;
    for path in EMBEDDING_EXAMPLES {
        examples.push(((*path).to_owned(), read(path)));
    }
    report(
        "README.md shows each client example exactly as the tests run it",
        check_readme_examples(&read("README.md"), &examples),
    );
}

/// One problem per example `(path, text)` that README.md does not show as
/// the fenced block following the first line linking to `(path)`.
pub(super) fn check_readme_examples(readme: &str, examples: &[(String, String)]) -> Vec<String> {
    let lines: Vec<&str> = readme.lines().collect();
    examples
        .iter()
        .filter_map(|(path, text)| {
            let target = format!("]({path})");
            let Some(link) = lines.iter().position(|line| line.contains(&target)) else {
                return Some(format!("README.md: no link to {path} followed by its code"));
            };
            let fence = link
                + 1
                + lines[link + 1..]
                    .iter()
                    .take_while(|l| l.trim().is_empty())
                    .count();
            if !lines.get(fence).is_some_and(|line| line.starts_with("```")) {
                return Some(format!(
                    "README.md:{}: the link to {path} is not followed by a code block",
                    link + 1
                ));
            }
            let body: Vec<&str> = lines[fence + 1..]
                .iter()
                .take_while(|line| !line.starts_with("```"))
                .copied()
                .collect();
            let shown = body.join("\n") + "\n";
            (shown != *text).then(|| {
                let differs = shown
                    .lines()
                    .zip(text.lines())
                    .position(|(a, b)| a != b)
                    .unwrap_or_else(|| shown.lines().count().min(text.lines().count()));
                format!(
                    "README.md:{}: the code shown for {path} differs from the file at its line {} \
                     (copy the file into the block)",
                    fence + 2 + differs,
                    differs + 1
                )
            })
        })
        .collect()
}

#[test]
fn an_example_shown_verbatim_passes() {
    let readme = "# x\n\n[`a/b.py`](a/b.py):\n\n```python\nprint(1)\n\nprint(2)\n```\n";
    let examples = [("a/b.py".to_owned(), "print(1)\n\nprint(2)\n".to_owned())];
    assert_eq!(
        check_readme_examples(readme, &examples),
        Vec::<String>::new()
    );
}

#[test]
fn an_example_that_drifted_is_reported_at_its_first_different_line() {
    let readme = "[`a/b.py`](a/b.py):\n```python\nprint(1)\nprint(3)\n```\n";
    let examples = [("a/b.py".to_owned(), "print(1)\nprint(2)\n".to_owned())];
    assert_eq!(
        check_readme_examples(readme, &examples),
        [
            "README.md:4: the code shown for a/b.py differs from the file at its line 2 \
          (copy the file into the block)"
        ]
    );
}

#[test]
fn a_missing_or_truncated_example_is_reported() {
    let examples = [(
        "a/b.go".to_owned(),
        "package main\n\nfunc main() {}\n".to_owned(),
    )];
    let truncated = "[`a/b.go`](a/b.go)\n```go\npackage main\n```\n";
    assert_eq!(check_readme_examples(truncated, &examples).len(), 1);
    let no_block = "[`a/b.go`](a/b.go)\n\nSome text.\n";
    assert_eq!(
        check_readme_examples(no_block, &examples),
        ["README.md:1: the link to a/b.go is not followed by a code block"]
    );
    assert_eq!(
        check_readme_examples("# nothing here\n", &examples),
        ["README.md: no link to a/b.go followed by its code"]
    );
}
