//! The `vigil` command line: version, help, and the configurations it
//! refuses before serving anything.

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
fn help_documents_every_option_with_its_default() {
    let output = run(&vigil_bin(), &["--help"]);
    assert!(output.status.success(), "{output:?}");
    for option in [
        "--listen",
        "--heartbeat-interval",
        "--heartbeat-timeout",
        "--leave-grace",
        "--max-connections",
    ] {
        assert!(
            output.stdout.contains(option),
            "{option} missing: {output:?}"
        );
    }
    assert!(output.stdout.contains("127.0.0.1:8080"), "{output:?}");
}

#[test]
fn a_public_address_without_auth_is_refused_with_the_way_out() {
    let output = run(&vigil_bin(), &["--listen", "0.0.0.0:0"]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(
        output.stderr.contains("--allow-insecure-public"),
        "{output:?}"
    );
}

#[test]
fn an_impossible_heartbeat_is_refused_with_vigil_cores_message() {
    let output = run(&vigil_bin(), &["--heartbeat-timeout", "200ms"]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(output.stderr.contains("under the 1s minimum"), "{output:?}");
}

#[test]
fn the_readme_configuration_table_matches_help() {
    let help = run(&vigil_bin(), &["--help"]).stdout;
    let readme =
        std::fs::read_to_string(vigil_e2e::workspace_root().join("README.md")).expect("README.md");
    let table: Vec<&str> = readme
        .lines()
        .skip_while(|line| *line != "## Configuration")
        .take_while(|line| !line.starts_with("## Test"))
        .filter(|line| line.starts_with("| `--"))
        .collect();
    let variables: Vec<&str> = help
        .split("[env: ")
        .skip(1)
        .filter_map(|rest| rest.split(']').next())
        .collect();
    assert!(variables.len() >= 15, "{help}");
    assert_eq!(
        table.len(),
        variables.len(),
        "README rows vs --help options"
    );
    for variable in &variables {
        let flag = format!(
            "--{}",
            variable
                .trim_start_matches("VIGIL_")
                .to_lowercase()
                .replace('_', "-")
        );
        let row = table
            .iter()
            .find(|row| row.contains(&format!("`{variable}`")))
            .unwrap_or_else(|| panic!("README lacks {variable}"));
        assert!(
            row.contains(&format!("`{flag}`")),
            "{row} should name {flag}"
        );
        assert!(help.contains(&flag), "--help lacks {flag}");
    }
}

#[test]
fn neither_help_nor_the_readme_encode_the_test_machines_file_limit() {
    let help = run(&vigil_bin(), &["--help"]).stdout;
    let readme =
        std::fs::read_to_string(vigil_e2e::workspace_root().join("README.md")).expect("README.md");
    for (name, text) in [("--help", &help), ("README.md", &readme)] {
        // (20000 alone would match `interval_ms=20000` in an example.)
        for machine in ["19,900", "19900", "20,000"] {
            assert!(!text.contains(machine), "{name} mentions {machine}");
        }
    }
}

#[test]
fn the_example_config_names_every_setting_and_passes_check_config() {
    let help = run(&vigil_bin(), &["--help"]).stdout;
    let path = vigil_e2e::workspace_root().join("crates/vigil-server/docs/vigil.toml");
    let example = std::fs::read_to_string(&path).expect("docs/vigil.toml");
    let keys: Vec<String> = help
        .split("[env: VIGIL_")
        .skip(1)
        .filter_map(|rest| rest.split(']').next())
        .filter(|name| *name != "CONFIG")
        .map(str::to_lowercase)
        .collect();
    assert!(keys.len() >= 20, "{help}");
    // Commented-out settings turn a feature on; each must be valid too.
    let mut uncommented = String::new();
    for line in example.lines() {
        let setting = line.strip_prefix("# ").filter(|rest| {
            keys.iter()
                .any(|key| rest.starts_with(&format!("{key} = ")))
        });
        uncommented.push_str(setting.unwrap_or(line));
        uncommented.push('\n');
    }
    // The example's key files, as check-config reads them: the test keys.
    let fixtures = vigil_e2e::workspace_root().join("tests/fixtures/jwt");
    let uncommented = uncommented
        .replace(
            "/etc/vigil/tokens.pem",
            &fixtures.join("rsa.pub").display().to_string(),
        )
        .replace(
            "/etc/vigil/jwks.json",
            &fixtures.join("jwks.json").display().to_string(),
        );
    // And a certificate made now for its TLS pair.
    let ca = vigil_e2e::TestCa::new("example-config");
    let pair = ca.issue("example", &["localhost"]);
    let uncommented = uncommented
        .replace("/etc/vigil/tls.crt", &pair.cert.display().to_string())
        .replace("/etc/vigil/tls.key", &pair.key.display().to_string());
    for key in &keys {
        assert!(
            uncommented
                .lines()
                .any(|line| line.starts_with(&format!("{key} = "))),
            "docs/vigil.toml lacks `{key}`"
        );
    }
    let whole = std::env::temp_dir().join(format!("vigil-example-{}.toml", std::process::id()));
    std::fs::write(&whole, &uncommented).expect("a temporary file");
    for file in [&path, &whole] {
        let checked = run(
            &vigil_bin(),
            &["check-config", file.to_str().expect("a UTF-8 path")],
        );
        assert_eq!(
            checked.status.code(),
            Some(0),
            "{}: {checked:?}",
            file.display()
        );
    }
    let _ = std::fs::remove_file(&whole);
}

#[test]
fn more_connections_than_the_file_limit_allows_is_refused_at_start() {
    let script = format!(
        "ulimit -n 1024 && exec {} --listen 127.0.0.1:0 --max-connections 5000",
        vigil_bin().display()
    );
    let output = run(std::path::Path::new("/bin/sh"), &["-c", &script]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(
        output.stderr.contains(
            "max_connections is 5000: that many connections, max_handshakes (1024) and 100 \
             more need 6124 open files, but this process may open only 1024"
        ),
        "{output:?}"
    );
}
