//! The command line (clap). Values stay text here so that flags, variables
//! and the file share one parser and one set of error messages; `--help`
//! gets each option's variable and default appended from [`Key`] and
//! [`Settings::default`], so the help cannot drift from the code.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{CommandFactory, FromArgMatches, Parser};

use super::{CONFIG_ENV, Key, Settings, format_duration};

/// vigil: a WebSocket server that keeps connections honest (heartbeats,
/// presence)
#[derive(Debug, Parser)]
#[command(
    name = "vigil",
    version,
    args_conflicts_with_subcommands = true,
    disable_help_subcommand = true,
    after_help = "Precedence: flag, then VIGIL_* variable, then --config file, then default. \
                  File keys are the flag names in snake_case (heartbeat_interval = \"20s\"). \
                  Durations are a whole number and a unit: ms, s, m or h (500ms, 20s, 1m)."
)]
pub(super) struct Cli {
    #[command(subcommand)]
    pub(super) command: Option<Subcommand>,

    /// TOML file of settings, overridden by flags and VIGIL_* variables
    #[arg(long, value_name = "FILE")]
    pub(super) config: Option<PathBuf>,

    /// Address and port to listen on; port 0 picks a free one
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,

    /// Accept anonymous connections on a non-loopback address (no jwt_secret)
    #[arg(long)]
    allow_insecure_public: bool,

    /// PEM certificate chain; with --tls-key the port speaks TLS (https, wss) only, reloaded on SIGHUP
    #[arg(long, value_name = "FILE")]
    tls_cert: Option<String>,

    /// PEM private key of --tls-cert
    #[arg(long, value_name = "FILE")]
    tls_key: Option<String>,

    /// HS256 secret for client tokens; unset: anonymous connections, loopback only. Prefer the variable: arguments are visible to other users
    #[arg(long, value_name = "SECRET")]
    jwt_secret: Option<String>,

    /// PEM public key (RSA → RS256, EC P-256 → ES256, P-384 → ES384, Ed25519 → EdDSA) that tokens may be signed for; the key decides the algorithm
    #[arg(long, value_name = "FILE")]
    jwt_public_key_file: Option<String>,

    /// JWKS file of public keys; a token's `kid` selects one, the key decides the algorithm
    #[arg(long, value_name = "FILE")]
    jwt_jwks_file: Option<String>,

    /// The issuer (`iss`) every token must name; unset: not checked
    #[arg(long, value_name = "ISSUER")]
    jwt_issuer: Option<String>,

    /// The audience (`aud`) every token must include; unset: tokens naming an audience are refused
    #[arg(long, value_name = "AUDIENCE")]
    jwt_audience: Option<String>,

    /// Clock skew allowed on a token's `exp` and `nbf`
    #[arg(long, value_name = "DURATION")]
    jwt_leeway: Option<String>,

    /// Key for the HTTP API (`Authorization: Bearer KEY`); unset: the API is off. Prefer the variable
    #[arg(long, value_name = "KEY")]
    api_key: Option<String>,

    /// How long a connection may be silent before it is pinged
    #[arg(long, value_name = "DURATION")]
    heartbeat_interval: Option<String>,

    /// How long after a ping any frame must arrive before the peer is dropped
    #[arg(long, value_name = "DURATION")]
    heartbeat_timeout: Option<String>,

    /// Fraction of the interval (0.0..=0.5) by which pings are spread
    #[arg(long, value_name = "FRACTION")]
    heartbeat_jitter: Option<String>,

    /// How long a user stays present after their last connection ends (hides page reloads)
    #[arg(long, value_name = "DURATION")]
    leave_grace: Option<String>,

    /// Open WebSocket connections at once; the process must be allowed that many open files plus max_handshakes plus 100 (vigil raises its soft limit to the hard one at start); over it clients get 503 with Retry-After
    #[arg(long, value_name = "N")]
    max_connections: Option<String>,

    /// Sockets still in their HTTP phase (a handshake, an API request) at once; when all are taken, no socket is accepted until one is given back. One address holds at most a sixteenth of them (at least 8), trusted proxies excepted: over that its new socket gets 503 at once
    #[arg(long, value_name = "N")]
    max_handshakes: Option<String>,

    /// Largest inbound message, whole, in bytes
    #[arg(long, value_name = "BYTES")]
    max_message_bytes: Option<String>,

    /// Channels one connection may join
    #[arg(long, value_name = "N")]
    max_channels_per_connection: Option<String>,

    /// Open connections from one client IP address (behind --trusted-proxies: the forwarded address)
    #[arg(long, value_name = "N")]
    max_connections_per_ip: Option<String>,

    /// Requests (publish, presence, join, leave, ping...) one connection may make a second, with bursts of twice that; over it: error `rate_limited` with `retry_after_ms`, and 1008 after 20 in a row
    #[arg(long, value_name = "N")]
    max_requests_per_second: Option<String>,

    /// Joins and leaves (a re-join with new meta included) one connection may make a second, with bursts of max_channels_per_connection (a reconnecting client re-joins everything at once)
    #[arg(long, value_name = "N")]
    max_joins_per_second: Option<String>,

    /// Publishes one connection may make a second, with bursts of twice that: each is delivered to every member of its channel, so this bounds a connection's fan-out
    #[arg(long, value_name = "N")]
    max_publishes_per_second: Option<String>,

    /// Largest presence meta of a join, as JSON, in bytes; larger: error `meta_too_large`
    #[arg(long, value_name = "BYTES")]
    max_meta_bytes: Option<String>,

    /// Browser origins besides the server's own allowed to open WebSockets, comma-separated, such as `https://app.example.com`; `*` allows all
    #[arg(long, value_name = "ORIGINS")]
    allowed_origins: Option<String>,

    /// Answer /metrics with 404 instead of the (unauthenticated) Prometheus exposition
    #[arg(long)]
    disable_metrics: bool,

    /// Connection shards: threads that each own a share of the WebSocket connections (1..=256)
    #[arg(long, value_name = "N")]
    shards: Option<String>,

    /// Proxies (CIDRs, comma-separated, such as 10.0.0.0/8,127.0.0.1/32) whose `Forwarded` or `X-Forwarded-For` header names the client; from any other peer these headers are ignored
    #[arg(long, value_name = "CIDRS")]
    trusted_proxies: Option<String>,

    /// Every connection starts with a PROXY protocol v1 or v2 header (a TCP load balancer in front) naming the client; a connection without a valid one is closed
    #[arg(long)]
    proxy_protocol: bool,

    /// Share the port with other processes (SO_REUSEPORT): the kernel spreads new connections over them
    #[arg(long)]
    reuse_port: bool,

    /// Redis URL (redis://HOST:PORT/DB) of a cluster: nodes share presence and channel messages; unset: this process alone
    #[arg(long, value_name = "URL")]
    cluster: Option<String>,

    /// Silence after which a cluster node counts as dead and its users leave everywhere
    #[arg(long, value_name = "DURATION")]
    cluster_node_timeout: Option<String>,

    /// How long shutdown waits for clients' close handshakes
    #[arg(long, value_name = "DURATION")]
    shutdown_deadline: Option<String>,

    /// Log JSON lines instead of human-readable text
    #[arg(long)]
    log_json: bool,
}

#[derive(Debug, clap::Subcommand)]
pub(super) enum Subcommand {
    /// Validate a TOML config file and explain each problem, then exit
    CheckConfig {
        /// The file to check
        file: PathBuf,
    },
}

impl Cli {
    /// Parses `args` (program name first), or answers `--help`/`--version`.
    pub(super) fn from_args(args: impl IntoIterator<Item = OsString>) -> Result<Self, clap::Error> {
        let matches = command().try_get_matches_from(args)?;
        Self::from_arg_matches(&matches)
    }

    /// The flags given, as text. A boolean flag can only turn its setting
    /// on; to turn off what a variable or file turned on, unset that.
    pub(super) fn values(&self) -> Vec<(Key, String)> {
        let flag = |on: bool| on.then(|| "true".to_owned());
        [
            (Key::Listen, self.listen.clone()),
            (Key::AllowInsecurePublic, flag(self.allow_insecure_public)),
            (Key::TlsCert, self.tls_cert.clone()),
            (Key::TlsPrivate, self.tls_key.clone()),
            (Key::JwtSecret, self.jwt_secret.clone()),
            (Key::JwtPublicKeyFile, self.jwt_public_key_file.clone()),
            (Key::JwtJwksFile, self.jwt_jwks_file.clone()),
            (Key::JwtIssuer, self.jwt_issuer.clone()),
            (Key::JwtAudience, self.jwt_audience.clone()),
            (Key::JwtLeeway, self.jwt_leeway.clone()),
            (Key::ApiToken, self.api_key.clone()),
            (Key::HeartbeatInterval, self.heartbeat_interval.clone()),
            (Key::HeartbeatTimeout, self.heartbeat_timeout.clone()),
            (Key::HeartbeatJitter, self.heartbeat_jitter.clone()),
            (Key::LeaveGrace, self.leave_grace.clone()),
            (Key::MaxConnections, self.max_connections.clone()),
            (
                Key::MaxConnectionsPerIp,
                self.max_connections_per_ip.clone(),
            ),
            (Key::MaxHandshakes, self.max_handshakes.clone()),
            (Key::MaxMessageBytes, self.max_message_bytes.clone()),
            (
                Key::MaxChannelsPerConnection,
                self.max_channels_per_connection.clone(),
            ),
            (
                Key::MaxRequestsPerSecond,
                self.max_requests_per_second.clone(),
            ),
            (Key::MaxJoinsPerSecond, self.max_joins_per_second.clone()),
            (
                Key::MaxPublishesPerSecond,
                self.max_publishes_per_second.clone(),
            ),
            (Key::MaxMetaBytes, self.max_meta_bytes.clone()),
            (Key::AllowedOrigins, self.allowed_origins.clone()),
            (Key::ShutdownDeadline, self.shutdown_deadline.clone()),
            (Key::Shards, self.shards.clone()),
            (Key::ReusePort, flag(self.reuse_port)),
            (Key::TrustedProxies, self.trusted_proxies.clone()),
            (Key::ProxyProtocol, flag(self.proxy_protocol)),
            (Key::Cluster, self.cluster.clone()),
            (Key::ClusterNodeTimeout, self.cluster_node_timeout.clone()),
            (Key::DisableMetrics, flag(self.disable_metrics)),
            (Key::LogJson, flag(self.log_json)),
        ]
        .into_iter()
        .filter_map(|(key, value)| value.map(|value| (key, value)))
        .collect()
    }
}

/// The clap command, each setting's help ending with its variable and
/// default the way clap itself would write them.
pub(super) fn command() -> clap::Command {
    let defaults = Settings::default();
    Cli::command().mut_args(|arg| {
        let id = arg.get_id().as_str();
        let suffix = if let Some(key) = Key::from_name(id) {
            match default_text(&defaults, key) {
                Some(default) => format!("[env: {}] [default: {default}]", key.env()),
                None => format!("[env: {}]", key.env()),
            }
        } else if id == "config" {
            format!("[env: {CONFIG_ENV}]")
        } else {
            return arg;
        };
        let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
        arg.help(format!("{help} {suffix}"))
    })
}

/// A setting's default as it would be written on the command line; `None`
/// for the secret, which has none.
pub(super) fn default_text(defaults: &Settings, key: Key) -> Option<String> {
    Some(match key {
        Key::Listen => defaults.listen.to_string(),
        Key::AllowInsecurePublic => defaults.allow_insecure_public.to_string(),
        Key::JwtSecret | Key::ApiToken => return None,
        Key::JwtPublicKeyFile | Key::JwtJwksFile => "none".to_owned(),
        Key::TlsCert | Key::TlsPrivate => {
            "none (plain HTTP; TLS terminated in front, if any)".to_owned()
        }
        Key::JwtIssuer => "none (not checked)".to_owned(),
        Key::JwtAudience => "none (tokens naming an audience are refused)".to_owned(),
        Key::JwtLeeway => format_duration(defaults.jwt_leeway),
        Key::HeartbeatInterval => format_duration(defaults.heartbeat_interval),
        Key::HeartbeatTimeout => format_duration(defaults.heartbeat_timeout),
        Key::HeartbeatJitter => defaults.heartbeat_jitter.to_string(),
        Key::LeaveGrace => format_duration(defaults.leave_grace),
        Key::MaxConnections => match defaults.max_connections {
            Some(value) => value.to_string(),
            None => "the open-file limit less 100 and less max_handshakes".to_owned(),
        },
        Key::MaxMessageBytes => defaults.max_message_bytes.to_string(),
        Key::MaxChannelsPerConnection => defaults.max_channels_per_connection.to_string(),
        Key::MaxConnectionsPerIp => defaults.max_connections_per_ip.to_string(),
        Key::ShutdownDeadline => format_duration(defaults.shutdown_deadline),
        Key::LogJson => defaults.log_json.to_string(),
        Key::AllowedOrigins => "none (same origin only)".to_owned(),
        Key::DisableMetrics => defaults.disable_metrics.to_string(),
        Key::Cluster => "none (one process, presence in memory)".to_owned(),
        Key::ClusterNodeTimeout => format_duration(defaults.cluster_node_timeout),
        Key::ReusePort => defaults.reuse_port.to_string(),
        Key::Shards => match defaults.shards {
            Some(value) => value.to_string(),
            None => "the available parallelism (one per core)".to_owned(),
        },
        Key::TrustedProxies => "none (headers ignored)".to_owned(),
        Key::ProxyProtocol => defaults.proxy_protocol.to_string(),
        Key::MaxHandshakes => defaults.max_handshakes.to_string(),
        Key::MaxRequestsPerSecond => defaults.max_requests_per_second.to_string(),
        Key::MaxJoinsPerSecond => defaults.max_joins_per_second.to_string(),
        Key::MaxPublishesPerSecond => defaults.max_publishes_per_second.to_string(),
        Key::MaxMetaBytes => defaults.max_meta_bytes.to_string(),
    })
}
