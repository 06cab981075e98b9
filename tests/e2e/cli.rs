//! The `vigil` command line while the server is not built (issue #4): it
//! answers `--version` and `--help`, and otherwise refuses to pretend.

use vigil_e2e::{run, vigil_bin};

#[test]
fn version_prints_the_crate_version() {
    let output = run(&vigil_bin(), &["--version"]);
    assert!(output.status.success(), "{output:?}");
    // vigil-server and this package share `version.workspace`.
    assert_eq!(
        output.stdout,
        format!("vigil {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn help_prints_usage() {
    let output = run(&vigil_bin(), &["--help"]);
    assert!(output.status.success(), "{output:?}");
    assert!(output.stdout.contains("USAGE:"), "{output:?}");
    assert!(output.stdout.contains("--version"), "{output:?}");
}

#[test]
fn no_arguments_exits_2_naming_issue_4() {
    let output = run(&vigil_bin(), &[]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(output.stderr.contains("issue #4"), "{output:?}");
    assert!(
        output
            .stderr
            .contains("interval 20s, timeout 10s, jitter 0.1"),
        "{output:?}"
    );
    assert_eq!(output.stdout, "", "{output:?}");
}

#[test]
fn unknown_arguments_do_not_start_anything() {
    let output = run(&vigil_bin(), &["--listen", "127.0.0.1:8080"]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(
        output.stderr.contains("not built yet (issue #4)"),
        "{output:?}"
    );
}
