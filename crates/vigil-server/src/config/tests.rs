//! The configuration surface as a specification: the defaults, one name per
//! setting in three spellings, the precedence of the layers, and every way a
//! configuration is refused, message by message. The environment is always
//! an injected map; the real one is never read.

use std::ffi::OsString;
use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use clap::error::ErrorKind;

use super::value::parse_duration;
use super::*;

// ---- helpers ------------------------------------------------------------

/// `vigil` followed by `args`.
fn argv(args: &[&str]) -> Vec<OsString> {
    std::iter::once("vigil")
        .chain(args.iter().copied())
        .map(OsString::from)
        .collect()
}

/// An environment holding only `vars`.
fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
    move |name| {
        vars.iter()
            .find(|(var, _)| *var == name)
            .map(|(_, value)| (*value).to_owned())
    }
}

/// The settings `vigil ARGS` serves with in an environment of `vars`.
#[track_caller]
fn serve(args: &[&str], vars: &[(&str, &str)]) -> Settings {
    match parse(argv(args), env(vars)) {
        Ok(Command::Serve(settings)) => *settings,
        other => panic!("expected settings, got {other:?}"),
    }
}

/// Each problem's message, in order.
fn messages(error: &ConfigError) -> Vec<String> {
    match error {
        ConfigError::Several(problems) => problems.iter().map(ToString::to_string).collect(),
        single => vec![single.to_string()],
    }
}

/// `vigil ARGS` in an environment of `vars` is refused with exactly these
/// messages.
#[track_caller]
fn check_refused(args: &[&str], vars: &[(&str, &str)], expected: &[&str]) {
    match parse(argv(args), env(vars)) {
        Err(error) => assert_eq!(messages(&error), expected),
        Ok(command) => panic!("expected {expected:?}, got {command:?}"),
    }
}

/// The clap error `vigil ARGS` answers with.
#[track_caller]
fn usage(args: &[&str]) -> clap::Error {
    match parse(argv(args), env(&[])) {
        Err(ConfigError::Usage(error)) => error,
        other => panic!("expected a usage error, got {other:?}"),
    }
}

/// A TOML file, deleted when dropped.
struct TempToml {
    path: PathBuf,
}

impl TempToml {
    fn new(contents: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "vigil-config-{}-{}.toml",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(name);
        fs::write(&path, contents).expect("the temp dir is writable");
        Self { path }
    }

    fn arg(&self) -> &str {
        self.path.to_str().expect("temp paths are UTF-8 here")
    }
}

impl Drop for TempToml {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// `vigil check-config` on a file of `contents` finds exactly these
/// problems; `{file}` in a message stands for the file's path.
#[track_caller]
fn check_file(contents: &str, expected: &[&str]) {
    let file = TempToml::new(contents);
    let expected: Vec<String> = expected
        .iter()
        .map(|message| message.replace("{file}", file.arg()))
        .collect();
    match check_config_file(&file.path) {
        Err(error) => assert_eq!(messages(&error), expected),
        Ok(settings) => panic!("expected {expected:?}, got {settings:?}"),
    }
}

/// Settings that differ from the defaults in every field.
fn custom() -> Settings {
    Settings {
        listen: "0.0.0.0:9000".parse().expect("a socket address"),
        allow_insecure_public: true,
        tls_cert: Some("/etc/vigil/tls.crt".into()),
        tls_key: Some("/etc/vigil/tls.key".into()),
        jwt_secret: Some("s3cret".to_owned()),
        jwt_public_key_file: Some("/etc/vigil/tokens.pem".into()),
        jwt_jwks_file: Some("/etc/vigil/jwks.json".into()),
        jwt_issuer: Some("https://auth.example.com/".to_owned()),
        jwt_audience: Some("vigil".to_owned()),
        jwt_leeway: Duration::from_secs(30),
        api_key: Some("k3y".to_owned()),
        heartbeat_interval: Duration::from_secs(5),
        heartbeat_timeout: Duration::from_secs(2),
        heartbeat_jitter: 0.2,
        leave_grace: Duration::from_secs(60),
        max_connections: Some(500),
        max_message_bytes: 1024,
        max_channels_per_connection: 7,
        max_connections_per_ip: 50,
        shutdown_deadline: Duration::from_millis(1500),
        log_json: true,
        allowed_origins: vec![
            "https://app.example.com".to_owned(),
            "http://localhost:3000".to_owned(),
        ],
        disable_metrics: true,
        cluster: Some("redis://10.0.0.5:6380/2".to_owned()),
        cluster_node_timeout: Duration::from_secs(40),
        reuse_port: true,
        shards: Some(3),
        trusted_proxies: vec![
            "10.0.0.0/8".parse().expect("a CIDR"),
            "127.0.0.1/32".parse().expect("a CIDR"),
        ],
        proxy_protocol: true,
        max_handshakes: 64,
        max_requests_per_second: 7,
        max_joins_per_second: 3,
        max_publishes_per_second: 4,
        max_meta_bytes: 512,
        namespaces: crate::namespace::Namespaces::new(Vec::new(), 512),
    }
}

/// [`custom`] as `(key, text)` pairs, the way a flag or variable gives them.
const CUSTOM_TEXT: [(Key, &str); 34] = [
    (Key::Listen, "0.0.0.0:9000"),
    (Key::AllowInsecurePublic, "true"),
    (Key::TlsCert, "/etc/vigil/tls.crt"),
    (Key::TlsPrivate, "/etc/vigil/tls.key"),
    (Key::JwtSecret, "s3cret"),
    (Key::JwtPublicKeyFile, "/etc/vigil/tokens.pem"),
    (Key::JwtJwksFile, "/etc/vigil/jwks.json"),
    (Key::JwtIssuer, "https://auth.example.com/"),
    (Key::JwtAudience, "vigil"),
    (Key::JwtLeeway, "30s"),
    (Key::ApiToken, "k3y"),
    (Key::HeartbeatInterval, "5s"),
    (Key::HeartbeatTimeout, "2s"),
    (Key::HeartbeatJitter, "0.2"),
    (Key::LeaveGrace, "1m"),
    (Key::MaxConnections, "500"),
    (Key::MaxMessageBytes, "1024"),
    (Key::MaxChannelsPerConnection, "7"),
    (Key::MaxConnectionsPerIp, "50"),
    (Key::ShutdownDeadline, "1500ms"),
    (Key::LogJson, "true"),
    (
        Key::AllowedOrigins,
        "https://App.example.com, http://localhost:3000",
    ),
    (Key::DisableMetrics, "true"),
    (Key::Cluster, "redis://10.0.0.5:6380/2"),
    (Key::ClusterNodeTimeout, "40s"),
    (Key::ReusePort, "true"),
    (Key::Shards, "3"),
    (Key::TrustedProxies, "10.0.0.0/8, 127.0.0.1"),
    (Key::ProxyProtocol, "true"),
    (Key::MaxHandshakes, "64"),
    (Key::MaxRequestsPerSecond, "7"),
    (Key::MaxJoinsPerSecond, "3"),
    (Key::MaxPublishesPerSecond, "4"),
    (Key::MaxMetaBytes, "512"),
];

// ---- defaults, names, help ----------------------------------------------

#[test]
fn nothing_given_serves_the_documented_defaults() {
    let defaults = Settings {
        listen: "127.0.0.1:8080".parse().expect("a socket address"),
        allow_insecure_public: false,
        tls_cert: None,
        tls_key: None,
        jwt_secret: None,
        jwt_public_key_file: None,
        jwt_jwks_file: None,
        jwt_issuer: None,
        jwt_audience: None,
        jwt_leeway: Duration::from_secs(5),
        api_key: None,
        heartbeat_interval: Duration::from_secs(20),
        heartbeat_timeout: Duration::from_secs(10),
        heartbeat_jitter: 0.1,
        leave_grace: Duration::from_secs(5),
        max_connections: None,
        max_message_bytes: 64 * 1024,
        max_channels_per_connection: 100,
        max_connections_per_ip: 10_000,
        shutdown_deadline: Duration::from_secs(10),
        log_json: false,
        allowed_origins: Vec::new(),
        disable_metrics: false,
        cluster: None,
        cluster_node_timeout: Duration::from_secs(15),
        reuse_port: false,
        shards: None,
        trusted_proxies: Vec::new(),
        proxy_protocol: false,
        max_handshakes: 1024,
        max_requests_per_second: 100,
        max_joins_per_second: 10,
        max_publishes_per_second: 10,
        max_meta_bytes: 2048,
        namespaces: crate::namespace::Namespaces::new(Vec::new(), 2048),
    };
    assert_eq!(Settings::default(), defaults);
    assert_eq!(serve(&[], &[]), defaults);
}

#[test]
fn each_setting_is_one_name_spelled_three_ways() {
    let flags: Vec<String> = cli::command()
        .get_arguments()
        .filter_map(|arg| arg.get_long().map(|long| format!("--{long}")))
        .collect();
    for key in Key::ALL {
        assert_eq!(key.env(), format!("VIGIL_{}", key.name().to_uppercase()));
        assert_eq!(key.flag(), format!("--{}", key.name().replace('_', "-")));
        assert_eq!(Key::from_name(key.name()), Some(key));
        assert!(flags.contains(&key.flag()), "no flag {}", key.flag());
    }
}

#[test]
fn help_documents_every_option_with_its_variable_and_default() {
    let help = cli::command().render_long_help().to_string();
    let defaults = Settings::default();
    for key in Key::ALL {
        assert!(
            help.contains(&key.flag()),
            "{} missing:\n{help}",
            key.flag()
        );
        assert!(help.contains(key.env()), "{} missing:\n{help}", key.env());
        if let Some(default) = cli::default_text(&defaults, key) {
            let shown = format!("[env: {}] [default: {default}]", key.env());
            assert!(help.contains(&shown), "{shown} missing:\n{help}");
        }
    }
    for expected in ["--config <FILE>", "[env: VIGIL_CONFIG]", "check-config"] {
        assert!(help.contains(expected), "{expected} missing:\n{help}");
    }
    assert_eq!(usage(&["--help"]).kind(), ErrorKind::DisplayHelp);
}

#[test]
fn version_prints_vigil_and_the_crate_version() {
    let error = usage(&["--version"]);
    assert_eq!(error.kind(), ErrorKind::DisplayVersion);
    assert_eq!(
        error.to_string(),
        format!("vigil {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn a_malformed_command_line_is_a_usage_error() {
    assert_eq!(usage(&["--nope"]).kind(), ErrorKind::UnknownArgument);
    assert_eq!(usage(&["--listen"]).kind(), ErrorKind::InvalidValue);
    assert_eq!(
        usage(&["--log-json", "check-config", "vigil.toml"]).kind(),
        ErrorKind::ArgumentConflict
    );
    assert_eq!(
        usage(&["check-config"]).kind(),
        ErrorKind::MissingRequiredArgument
    );
}

#[test]
fn check_config_names_the_file_to_check() {
    assert_eq!(
        parse(argv(&["check-config", "vigil.toml"]), env(&[])).ok(),
        Some(Command::CheckConfig {
            path: PathBuf::from("vigil.toml")
        })
    );
}

// ---- layers and precedence ----------------------------------------------

#[test]
fn every_setting_can_come_from_a_flag() {
    let mut args = Vec::new();
    for (key, text) in CUSTOM_TEXT {
        args.push(key.flag());
        if !matches!(
            key,
            Key::AllowInsecurePublic
                | Key::LogJson
                | Key::DisableMetrics
                | Key::ReusePort
                | Key::ProxyProtocol
        ) {
            args.push(text.to_owned());
        }
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_eq!(serve(&args, &[]), custom());
}

#[test]
fn every_setting_can_come_from_the_environment() {
    let vars: Vec<(&str, &str)> = CUSTOM_TEXT
        .iter()
        .map(|&(key, text)| (key.env(), text))
        .collect();
    assert_eq!(serve(&[], &vars), custom());
}

#[test]
fn every_setting_can_come_from_the_file() {
    let file = TempToml::new(
        r#"
        listen = "0.0.0.0:9000"
        allow_insecure_public = true
        tls_cert = "/etc/vigil/tls.crt"
        tls_key = "/etc/vigil/tls.key"
        jwt_secret = "s3cret"
        jwt_public_key_file = "/etc/vigil/tokens.pem"
        jwt_jwks_file = "/etc/vigil/jwks.json"
        jwt_issuer = "https://auth.example.com/"
        jwt_audience = "vigil"
        jwt_leeway = "30s"
        api_key = "k3y"
        heartbeat_interval = "5s"
        heartbeat_timeout = "2s"
        heartbeat_jitter = 0.2
        leave_grace = "1m"
        max_connections = 500
        max_message_bytes = 1_024
        max_channels_per_connection = 7
        max_connections_per_ip = 50
        shutdown_deadline = "1500ms"
        log_json = true
        allowed_origins = ["https://app.example.com", "http://LOCALHOST:3000"]
        disable_metrics = true
        cluster = "redis://10.0.0.5:6380/2"
        cluster_node_timeout = "40s"
        reuse_port = true
        shards = 3
        trusted_proxies = ["10.0.0.0/8", "127.0.0.1"]
        proxy_protocol = true
        max_handshakes = 64
        max_requests_per_second = 7
        max_joins_per_second = 3
        max_publishes_per_second = 4
        max_meta_bytes = 512
        "#,
    );
    assert_eq!(serve(&["--config", file.arg()], &[]), custom());
    assert_eq!(check_config_file(&file.path).ok(), Some(custom()));
}

#[test]
fn a_flag_beats_a_variable_beats_the_file_beats_the_default() {
    let file = TempToml::new(
        r#"
        heartbeat_interval = "30s"
        heartbeat_timeout = "3s"
        leave_grace = "7s"
        "#,
    );
    let settings = serve(
        &["--config", file.arg(), "--heartbeat-interval", "10s"],
        &[
            ("VIGIL_HEARTBEAT_INTERVAL", "25s"),
            ("VIGIL_HEARTBEAT_TIMEOUT", "4s"),
        ],
    );
    assert_eq!(settings.heartbeat_interval, Duration::from_secs(10)); // flag
    assert_eq!(settings.heartbeat_timeout, Duration::from_secs(4)); // variable
    assert_eq!(settings.leave_grace, Duration::from_secs(7)); // file
    assert_eq!(settings.max_connections, None); // default: from the file limit
}

#[test]
fn the_file_is_named_by_flag_or_variable_and_the_flag_wins() {
    let by_variable = TempToml::new(r#"leave_grace = "1s""#);
    let by_flag = TempToml::new(r#"leave_grace = "2s""#);
    let vars = [("VIGIL_CONFIG", by_variable.arg())];
    assert_eq!(serve(&[], &vars).leave_grace, Duration::from_secs(1));
    let args = ["--config", by_flag.arg()];
    assert_eq!(serve(&args, &vars).leave_grace, Duration::from_secs(2));
}

#[test]
fn a_boolean_flag_turns_on_and_a_variable_also_turns_off() {
    let file = TempToml::new("log_json = true");
    let config = ["--config", file.arg()];
    assert!(serve(&config, &[]).log_json);
    assert!(!serve(&config, &[("VIGIL_LOG_JSON", "false")]).log_json);
    for on in ["true", "TRUE", "1"] {
        assert!(serve(&[], &[("VIGIL_LOG_JSON", on)]).log_json, "{on}");
    }
    for off in ["false", "False", "0"] {
        assert!(!serve(&[], &[("VIGIL_LOG_JSON", off)]).log_json, "{off}");
    }
    assert!(serve(&["--log-json"], &[("VIGIL_LOG_JSON", "0")]).log_json);
}

#[test]
fn durations_are_a_whole_number_and_a_unit() {
    for (text, millis) in [
        ("0s", 0),
        ("500ms", 500),
        ("20s", 20_000),
        ("1m", 60_000),
        ("2h", 7_200_000),
    ] {
        let duration = Duration::from_millis(millis);
        assert_eq!(parse_duration(text), Ok(duration), "{text}");
        assert_eq!(format_duration(duration), text);
    }
    assert_eq!(format_duration(Duration::from_secs(90)), "90s");
    assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
    for (text, problem) in [
        ("20", "has no unit"),
        ("20x", "has an unknown unit"),
        ("20 s", "has an unknown unit"),
        ("20S", "has an unknown unit"),
        (
            "1.5s",
            "is not a whole number (use a smaller unit: 1500ms, not 1.5s)",
        ),
        ("s", "does not start with a whole number"),
        ("-5s", "does not start with a whole number"),
        ("", "does not start with a whole number"),
        ("99999999999999999999s", "is too large"),
        ("18446744073709551615h", "is too large"),
    ] {
        assert_eq!(parse_duration(text), Err(problem), "{text:?}");
    }
}

// ---- refusals -------------------------------------------------------------

#[test]
fn a_bad_value_names_the_setting_as_written_the_value_and_what_is_allowed() {
    const DURATION: &str =
        r#"expected a whole number and a unit (ms, s, m or h), such as "20s" or "500ms""#;
    check_refused(
        &["--leave-grace", "5"],
        &[],
        &[&format!(r#"--leave-grace: "5" has no unit; {DURATION}"#)],
    );
    check_refused(
        &[],
        &[("VIGIL_LEAVE_GRACE", "5sec")],
        &[&format!(
            r#"VIGIL_LEAVE_GRACE: "5sec" has an unknown unit; {DURATION}"#
        )],
    );
    let file = TempToml::new("leave_grace = 5");
    check_refused(
        &["--config", file.arg()],
        &[],
        &[&format!(
            "leave_grace in {}: 5 is an integer; {DURATION}",
            file.arg()
        )],
    );
}

#[test]
fn each_kind_of_value_says_what_is_allowed() {
    for (var, value, message) in [
        (
            "VIGIL_LISTEN",
            "localhost:8080",
            r#"VIGIL_LISTEN: "localhost:8080" is not an IP address and port; expected an IP address and a port, such as 127.0.0.1:8080 or [::1]:8080 (port 0 picks a free port)"#,
        ),
        (
            "VIGIL_ALLOW_INSECURE_PUBLIC",
            "yes",
            r#"VIGIL_ALLOW_INSECURE_PUBLIC: "yes" is not a boolean; expected true or false (1 or 0 in a variable)"#,
        ),
        (
            "VIGIL_HEARTBEAT_JITTER",
            "a bit",
            r#"VIGIL_HEARTBEAT_JITTER: "a bit" is not a number; expected a number, such as 0.1"#,
        ),
        (
            "VIGIL_MAX_CHANNELS_PER_CONNECTION",
            "-3",
            r#"VIGIL_MAX_CHANNELS_PER_CONNECTION: "-3" is not a whole number; expected a whole number, such as 100"#,
        ),
    ] {
        check_refused(&[], &[(var, value)], &[message]);
    }
}

#[test]
fn an_empty_secret_is_refused_and_a_secret_is_never_shown() {
    check_refused(
        &[],
        &[("VIGIL_JWT_SECRET", "")],
        &[r#"VIGIL_JWT_SECRET: "" is empty; expected a non-empty string"#],
    );
    check_file(
        "jwt_secret = 123456",
        &["jwt_secret in {file}: <redacted> is an integer; expected a non-empty string"],
    );
    let settings = serve(&[], &[("VIGIL_JWT_SECRET", "hunter2")]);
    assert_eq!(settings.jwt_secret.as_deref(), Some("hunter2"));
    let debug = format!("{settings:?}");
    assert!(
        !debug.contains("hunter2") && debug.contains("<redacted>"),
        "{debug}"
    );
}

#[test]
fn heartbeat_combinations_are_refused_with_vigil_cores_message() {
    let core = |interval: u64, timeout: u64, jitter: f64| {
        heartbeat::Config::builder()
            .interval(Duration::from_millis(interval))
            .timeout(Duration::from_millis(timeout))
            .jitter(jitter)
            .build()
            .expect_err("an invalid combination")
            .to_string()
    };
    let timeout_too_short = core(20_000, 200, 0.1);
    assert!(timeout_too_short.contains("under the 1s minimum"));
    check_refused(
        &["--heartbeat-timeout", "200ms"],
        &[],
        &[&timeout_too_short],
    );
    check_refused(
        &["--heartbeat-interval", "50ms"],
        &[],
        &[&core(50, 10_000, 0.1)],
    );
    check_refused(
        &[],
        &[("VIGIL_HEARTBEAT_JITTER", "0.6")],
        &[&core(20_000, 10_000, 0.6)],
    );
    check_refused(
        &[],
        &[("VIGIL_HEARTBEAT_JITTER", "NaN")],
        &[&core(20_000, 10_000, f64::NAN)],
    );
}

#[test]
fn leave_grace_above_an_hour_is_refused_with_vigil_cores_message() {
    let core = PresenceConfig::builder()
        .leave_grace(Duration::from_secs(61 * 60))
        .build()
        .expect_err("over an hour")
        .to_string();
    check_refused(&["--leave-grace", "61m"], &[], &[&core]);
    assert_eq!(
        serve(&["--leave-grace", "1h"], &[]).leave_grace,
        Duration::from_secs(3600)
    );
    assert_eq!(
        serve(&["--leave-grace", "0s"], &[]).leave_grace,
        Duration::ZERO
    );
}

#[test]
fn a_cluster_needs_a_redis_url_and_a_sane_node_timeout() {
    const EXPECTED: &str = "expected redis://HOST:PORT/DB, or rediss:// for TLS";
    check_refused(
        &["--cluster", "http://db:6379"],
        &[],
        &[&format!(
            "--cluster: http://db:6379 is not a Redis URL (the scheme must be redis or rediss); \
             {EXPECTED}"
        )],
    );
    let Err(error) = parse(argv(&["--cluster", "redis://app:pw@db:notaport"]), env(&[])) else {
        panic!("a port that is not a number is refused");
    };
    let message = messages(&error).join("\n");
    assert!(
        message.starts_with("--cluster: redis://app:***@db:notaport is not a Redis URL (")
            && message.ends_with(EXPECTED)
            && !message.contains("pw"),
        "{message}"
    );
    check_refused(
        &[],
        &[("VIGIL_CLUSTER_NODE_TIMEOUT", "500ms")],
        &[
            "VIGIL_CLUSTER_NODE_TIMEOUT: 500ms is outside 1s..=1h: nodes heartbeat every quarter \
           of it",
        ],
    );
    let settings = serve(&["--cluster", "redis://127.0.0.1:6379"], &[]);
    assert_eq!(settings.cluster.as_deref(), Some("redis://127.0.0.1:6379"));
}

#[test]
fn message_size_channels_and_shutdown_deadline_have_ranges() {
    const BYTES: &str =
        "is outside 1..=16777216 (16 MiB): each connection may hold a whole message";
    const DEADLINE: &str = "is outside 1ms..=1h: clients need time to close, and no orchestrator \
                            waits longer";
    for (flag, value, message) in [
        (
            "--max-message-bytes",
            "0",
            format!("--max-message-bytes: 0 {BYTES}"),
        ),
        (
            "--max-message-bytes",
            "16777217",
            format!("--max-message-bytes: 16777217 {BYTES}"),
        ),
        (
            "--max-channels-per-connection",
            "0",
            "--max-channels-per-connection: 0 is outside 1..=10000".to_owned(),
        ),
        (
            "--max-channels-per-connection",
            "10001",
            "--max-channels-per-connection: 10001 is outside 1..=10000".to_owned(),
        ),
        (
            "--shutdown-deadline",
            "0s",
            format!("--shutdown-deadline: 0s {DEADLINE}"),
        ),
        (
            "--shutdown-deadline",
            "61m",
            format!("--shutdown-deadline: 61m {DEADLINE}"),
        ),
    ] {
        check_refused(&[flag, value], &[], &[&message]);
    }
    serve(
        &[
            "--max-message-bytes",
            "16777216",
            "--max-channels-per-connection",
            "10000",
            "--shutdown-deadline",
            "1h",
        ],
        &[],
    );
}

#[test]
fn a_public_address_needs_auth_or_the_explicit_flag() {
    check_refused(
        &["--listen", "0.0.0.0:8080"],
        &[],
        &[
            "listen address 0.0.0.0:8080 is not loopback and no token key (jwt_secret, \
           jwt_public_key_file or jwt_jwks_file) is configured; refusing to accept anonymous \
           connections on a public address: set VIGIL_JWT_SECRET or a public key, or pass \
           --allow-insecure-public",
        ],
    );
    check_refused(
        &[],
        &[("VIGIL_LISTEN", "[::]:0")],
        &[
            "listen address [::]:0 is not loopback and no token key (jwt_secret, \
           jwt_public_key_file or jwt_jwks_file) is configured; refusing to accept anonymous \
           connections on a public address: set VIGIL_JWT_SECRET or a public key, or pass \
           --allow-insecure-public",
        ],
    );
    let public = ["--listen", "0.0.0.0:8080"];
    serve(&public, &[("VIGIL_JWT_SECRET", "s3cret")]);
    serve(&public, &[("VIGIL_ALLOW_INSECURE_PUBLIC", "1")]);
    serve(&[&public[..], &["--allow-insecure-public"]].concat(), &[]);
    for loopback in ["127.0.0.1:0", "127.0.0.2:9000", "[::1]:8080"] {
        serve(&["--listen", loopback], &[]);
    }
}

#[test]
fn every_problem_is_reported_at_once_flags_then_environment_then_file_then_limits() {
    let file = TempToml::new("max_connections = 0\nlog_jsn = true");
    check_refused(
        &["--config", file.arg(), "--heartbeat-jitter", "x"],
        &[
            ("VIGIL_SHUTDOWN_DEADLINE", "soon"),
            ("VIGIL_LISTEN", "0.0.0.0:1"),
        ],
        &[
            r#"--heartbeat-jitter: "x" is not a number; expected a number, such as 0.1"#,
            r#"VIGIL_SHUTDOWN_DEADLINE: "soon" does not start with a whole number; expected a whole number and a unit (ms, s, m or h), such as "20s" or "500ms""#,
            &format!(
                "unknown setting `log_jsn` in {}; did you mean `log_json`?",
                file.arg()
            ),
            &format!(
                "max_connections in {}: 0 would refuse every client; leave it unset for as many \
                 as the open-file limit allows",
                file.arg()
            ),
            "listen address 0.0.0.0:1 is not loopback and no token key (jwt_secret, \
             jwt_public_key_file or jwt_jwks_file) is configured; refusing to accept anonymous \
             connections on a public address: set VIGIL_JWT_SECRET or a public key, or pass \
             --allow-insecure-public",
        ],
    );
}

#[test]
fn a_refused_value_is_not_judged_again_through_its_fallback() {
    // The empty secret falls back to none; "public address without auth"
    // would only repeat the problem.
    check_refused(
        &["--listen", "0.0.0.0:1"],
        &[("VIGIL_JWT_SECRET", "")],
        &[r#"VIGIL_JWT_SECRET: "" is empty; expected a non-empty string"#],
    );
    // A bad interval hides the timeout's problem until it is fixed.
    check_refused(
        &["--heartbeat-interval", "20", "--heartbeat-timeout", "1ms"],
        &[],
        &[
            r#"--heartbeat-interval: "20" has no unit; expected a whole number and a unit (ms, s, m or h), such as "20s" or "500ms""#,
        ],
    );
}

// ---- check-config -------------------------------------------------------

#[test]
fn check_config_accepts_a_good_file_over_the_defaults() {
    let file = TempToml::new("# tuned for a flaky network\nheartbeat_timeout = \"15s\"\n");
    let settings = check_config_file(&file.path).expect("a valid file");
    assert_eq!(
        settings,
        Settings {
            heartbeat_timeout: Duration::from_secs(15),
            ..Settings::default()
        }
    );
}

#[test]
fn check_config_explains_each_problem_in_a_file() {
    check_file(
        r#"
        listen = "0.0.0.0:8080"
        heartbeat-interval = "20s"
        heartbeat_timeout = "200ms"
        max_message_bytes = -1
        max_connections = 0
        leave_grace = "2h"
        [heartbeat]
        jitter = 0.1
        "#,
        &[
            "unknown setting `heartbeat` in {file}; the settings are: listen, \
             allow_insecure_public, tls_cert, tls_key, jwt_secret, jwt_public_key_file, \
             jwt_jwks_file, jwt_issuer, jwt_audience, jwt_leeway, api_key, heartbeat_interval, heartbeat_timeout, \
             heartbeat_jitter, leave_grace, max_connections, max_connections_per_ip, \
             max_handshakes, max_message_bytes, \
             max_channels_per_connection, max_requests_per_second, max_joins_per_second, \
             max_publishes_per_second, \
             max_meta_bytes, allowed_origins, shutdown_deadline, shards, reuse_port, \
             trusted_proxies, proxy_protocol, \
             cluster, cluster_node_timeout, disable_metrics, log_json",
            "unknown setting `heartbeat-interval` in {file}; did you mean `heartbeat_interval`?",
            "max_message_bytes in {file}: -1 is negative; expected a whole number, such as 100",
            "heartbeat timeout of 200ms is under the 1s minimum; ordinary scheduling and \
             network delays would close healthy peers",
            "presence leave_grace is 7200s, above the limit of 3600s: a user who vanished \
             would be shown online that long; check the unit (a few seconds is enough to \
             hide a page reload)",
            "max_connections in {file}: 0 would refuse every client; leave it unset for as many \
             as the open-file limit allows",
            "listen address 0.0.0.0:8080 is not loopback and no token key (jwt_secret, \
             jwt_public_key_file or jwt_jwks_file) is configured; refusing to accept anonymous \
             connections on a public address: set VIGIL_JWT_SECRET or a public key, or pass \
             --allow-insecure-public",
        ],
    );
}

#[test]
fn check_config_explains_a_file_that_is_not_toml_by_line_and_column() {
    check_file(
        "listen = \"127.0.0.1:8080\"\nmax_connections = lots\n",
        &["{file}:2:19: not valid TOML: string values must be quoted, expected literal string"],
    );
}

#[test]
fn a_missing_file_is_explained() {
    let path = std::env::temp_dir().join("vigil-config-that-does-not-exist.toml");
    let error = check_config_file(&path).expect_err("no such file");
    assert!(
        matches!(&error, ConfigError::ReadFile { path: p, .. } if *p == path),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .starts_with(&format!("cannot read config file {}: ", path.display())),
        "{error}"
    );
    let vars = [("VIGIL_CONFIG", path.to_str().expect("UTF-8"))];
    assert!(matches!(
        parse(argv(&[]), env(&vars)),
        Err(ConfigError::ReadFile { .. })
    ));
}

#[test]
fn an_unknown_key_suggests_the_setting_it_most_likely_meant() {
    for (written, meant) in [
        ("heartbeat-interval", Some(Key::HeartbeatInterval)),
        ("Max_Connections", Some(Key::MaxConnections)),
        ("listn", Some(Key::Listen)),
        ("log_jsn", Some(Key::LogJson)),
        ("heartbeat", None),
        ("port", None),
    ] {
        assert_eq!(Key::closest(written), meant, "{written}");
    }
}

// ---- allowed origins and the file limit ------------------------------------

#[test]
fn an_allowed_origin_must_be_scheme_host_and_port_only() {
    for (text, problem) in [
        ("app.example.com", "does not start with http:// or https://"),
        ("https://", "with no host"),
        (
            "https://app.example.com/",
            "is not just scheme://host[:port]",
        ),
        ("https://*.example.com", "is not just scheme://host[:port]"),
    ] {
        let error = parse(argv(&["--allowed-origins", text]), |_| None).expect_err(text);
        let message = error.to_string();
        assert!(
            message.starts_with(&format!("--allowed-origins: {text:?} has an entry")),
            "{message}"
        );
        assert!(message.contains(problem), "{message}");
    }
    let file = TempToml::new("allowed_origins = [\"https://ok.example\", 3]");
    let error = check_config_file(&file.path).expect_err("a number is no origin");
    assert!(
        error
            .to_string()
            .contains("has an entry that is not a string"),
        "{error}"
    );
}

mod host;
mod tls;
