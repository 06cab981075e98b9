//! The server's settings: one surface of command-line flags, `VIGIL_*`
//! environment variables and an optional TOML file, merged in that order of
//! precedence over the defaults, then validated together so that every
//! problem is reported at once.
//!
//! Each setting has one name spelled three ways ([`Key`]): `heartbeat_interval`
//! in the file, `--heartbeat-interval` on the command line and
//! `VIGIL_HEARTBEAT_INTERVAL` in the environment. The environment is read
//! through an injected lookup, never directly, so tests stay hermetic.
//!
//! Call order for the binary: [`parse`] the arguments, then either serve the
//! returned [`Settings`] or, for `vigil check-config FILE`, call
//! [`check_config_file`] and print its error. A [`ConfigError::Usage`]
//! carries clap's `--help`, `--version` and usage errors: `error.exit()`
//! prints each where it belongs with the right exit code.

mod cli;
mod error;
mod key;
mod layer;
mod value;
pub(crate) use value::{parse_duration, render_toml};

#[cfg(test)]
mod tests;

use std::ffi::OsString;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;

use vigil_core::heartbeat;
use vigil_core::presence::PresenceConfig;

pub(crate) use error::ConfigError;
pub(crate) use key::{Key, Origin, Source};
use layer::Partial;
use value::format_duration;

/// Open files kept free beside the connections: the listener, handshakes
/// in progress, logs, the config file and the runtime.
pub(crate) const FILE_HEADROOM: usize = 100;
/// A rate limit above this many requests a second limits nothing.
const MAX_RATE: usize = 1_000_000;
/// vigil-ws runs at most this many shards.
const MAX_SHARDS: usize = 256;
/// A message is held whole before it is handled, by every connection at once.
const MAX_MESSAGE_BYTES_LIMIT: usize = 16 << 20;
/// Beyond this a client is more likely misbehaving than busy.
const MAX_CHANNELS_LIMIT: usize = 10_000;
/// A cluster node heartbeats every quarter of its timeout: not more often
/// than every 250 ms, and a dead node is noticed within the hour.
const MIN_NODE_TIMEOUT: Duration = Duration::from_secs(1);
const MAX_NODE_TIMEOUT: Duration = Duration::from_secs(60 * 60);
/// Orchestrators kill a process long before an hour of draining.
const MAX_SHUTDOWN_DEADLINE: Duration = Duration::from_secs(60 * 60);
/// Longest clock skew allowed on a token's `exp` and `nbf`.
const MAX_JWT_LEEWAY: Duration = Duration::from_secs(10 * 60);

/// Everything the server is configured with, validated.
///
/// [`Default`] gives the documented defaults, which [`parse`] starts from.
/// `Debug` never shows the JWT secret.
#[derive(Clone, PartialEq)]
pub(crate) struct Settings {
    /// Address and port to listen on (port 0 picks a free one).
    pub listen: SocketAddr,
    /// Allow a non-loopback `listen` without auth configured.
    pub allow_insecure_public: bool,
    /// PEM certificate chain: with `tls_key`, the port speaks TLS only.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// HS256 secret; it, a public key file or a JWKS file means tokens
    /// are required (see [`Settings::tokens_configured`]).
    pub jwt_secret: Option<String>,
    /// PEM public key (RSA, EC P-256/P-384, Ed25519) tokens may be signed
    /// for.
    pub jwt_public_key_file: Option<PathBuf>,
    /// JWKS file of public keys, selected by the token's `kid`.
    pub jwt_jwks_file: Option<PathBuf>,
    /// The `iss` every token must name.
    pub jwt_issuer: Option<String>,
    /// The `aud` every token must include.
    pub jwt_audience: Option<String>,
    /// Clock skew allowed on `exp` and `nbf`.
    pub jwt_leeway: Duration,
    /// Key of the HTTP API; `None` turns the API off.
    pub api_key: Option<String>,
    /// Silence allowed before a ping.
    pub heartbeat_interval: Duration,
    /// Wait for any frame after a ping.
    pub heartbeat_timeout: Duration,
    /// Fraction of the interval by which pings are spread.
    pub heartbeat_jitter: f64,
    /// How long a user's presence outlives their last connection.
    pub leave_grace: Duration,
    /// Open WebSocket connections at once; `None`: as many as the
    /// process's open-file limit allows, less [`FILE_HEADROOM`] (see
    /// [`Settings::connection_limit`]).
    pub max_connections: Option<usize>,
    /// Largest inbound message, whole.
    pub max_message_bytes: usize,
    /// Channels one connection may join.
    pub max_channels_per_connection: usize,
    /// Open connections from one client IP address.
    pub max_connections_per_ip: usize,
    /// How long shutdown waits for close handshakes.
    pub shutdown_deadline: Duration,
    /// Logs as JSON lines instead of human-readable text.
    pub log_json: bool,
    /// Browser origins (`https://app.example.com`) allowed to open
    /// WebSockets besides the server's own; `*` allows every origin.
    pub allowed_origins: Vec<String>,
    /// Answer `/metrics` with 404 instead of the exposition.
    pub disable_metrics: bool,
    /// Redis URL of the cluster this node belongs to; `None`: alone.
    pub cluster: Option<String>,
    /// A cluster node not heard from for this long is dead.
    pub cluster_node_timeout: Duration,
    /// SO_REUSEPORT on the listener.
    pub reuse_port: bool,
    /// Connection shards (threads); `None`: one per core the process may
    /// use (see [`Settings::shard_count`]).
    pub shards: Option<usize>,
    /// Peers whose `Forwarded` / `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<IpNet>,
    /// Every connection starts with a PROXY protocol header.
    pub proxy_protocol: bool,
    /// Sockets in their HTTP phase at once (see [`Settings::handshakes_per_ip`]).
    pub max_handshakes: usize,
    /// Requests a second per connection (bursts of twice that).
    pub max_requests_per_second: usize,
    /// Joins and leaves a second per connection (bursts of
    /// `max_channels_per_connection`).
    pub max_joins_per_second: usize,
    /// Publishes a second per connection (bursts of twice that): each is
    /// delivered to every member of its channel.
    pub max_publishes_per_second: usize,
    /// Largest presence meta of a join, as JSON.
    pub max_meta_bytes: usize,
    /// Channel options by name pattern (`[[namespace]]`, config file only).
    pub namespaces: crate::namespace::Namespaces,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 8080)),
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
            max_message_bytes: 64 << 10,
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
        }
    }
}

impl Settings {
    /// How many connections to accept at once, given the process's
    /// open-file limit (`None` when it cannot be read): `max_connections`
    /// if the limit allows it with [`FILE_HEADROOM`] to spare, else an
    /// error saying so; unset, whatever the limit allows. The binary raises
    /// its soft limit to the hard one before asking (see `files.rs`).
    pub(crate) fn connection_limit(&self, open_files: Option<u64>) -> Result<usize, ConfigError> {
        let limit = open_files.map(|files| usize::try_from(files).unwrap_or(usize::MAX));
        // Sockets still in their HTTP phase hold files too.
        let reserved = FILE_HEADROOM.saturating_add(self.max_handshakes);
        match (self.max_connections, limit) {
            (Some(value), Some(files)) if value.saturating_add(reserved) > files => {
                Err(ConfigError::FileLimit {
                    value,
                    handshakes: self.max_handshakes,
                    limit: open_files.unwrap_or_default(),
                })
            }
            (Some(value), _) => Ok(value),
            (None, Some(files)) if files <= reserved => Err(ConfigError::FileLimitTooLow {
                handshakes: self.max_handshakes,
                limit: open_files.unwrap_or_default(),
            }),
            (None, Some(files)) => Ok(files - reserved),
            (None, None) => Ok(usize::MAX),
        }
    }

    /// Sockets one client address may hold in their HTTP phase: a
    /// sixteenth of `max_handshakes`, at least 8, so that no single
    /// address (a slowloris) takes every place.
    pub(crate) fn handshakes_per_ip(&self) -> usize {
        (self.max_handshakes / 16).max(8).min(self.max_handshakes)
    }

    /// How many connection shards to run: `shards` if set, else one per
    /// core the process may use (`parallelism`, from
    /// Whether a key to verify tokens with is configured (so tokens are
    /// required).
    pub(crate) fn tokens_configured(&self) -> bool {
        self.jwt_secret.is_some()
            || self.jwt_public_key_file.is_some()
            || self.jwt_jwks_file.is_some()
    }

    /// `std::thread::available_parallelism`, which honours CPU affinity and
    /// cgroup quotas), at most [`MAX_SHARDS`].
    pub(crate) fn shard_count(&self, parallelism: Option<std::num::NonZeroUsize>) -> usize {
        self.shards
            .unwrap_or_else(|| parallelism.map_or(1, std::num::NonZeroUsize::get))
            .clamp(1, MAX_SHARDS)
    }
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Written out so that the secret can never reach a log line.
        f.debug_struct("Settings")
            .field("listen", &self.listen)
            .field("allow_insecure_public", &self.allow_insecure_public)
            .field(
                "jwt_secret",
                &self.jwt_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("tls_cert", &self.tls_cert)
            .field("tls_key", &self.tls_key)
            .field("jwt_public_key_file", &self.jwt_public_key_file)
            .field("jwt_jwks_file", &self.jwt_jwks_file)
            .field("jwt_issuer", &self.jwt_issuer)
            .field("jwt_audience", &self.jwt_audience)
            .field("jwt_leeway", &self.jwt_leeway)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("heartbeat_interval", &self.heartbeat_interval)
            .field("heartbeat_timeout", &self.heartbeat_timeout)
            .field("heartbeat_jitter", &self.heartbeat_jitter)
            .field("leave_grace", &self.leave_grace)
            .field("max_connections", &self.max_connections)
            .field("max_message_bytes", &self.max_message_bytes)
            .field(
                "max_channels_per_connection",
                &self.max_channels_per_connection,
            )
            .field("max_connections_per_ip", &self.max_connections_per_ip)
            .field("shutdown_deadline", &self.shutdown_deadline)
            .field("log_json", &self.log_json)
            .field("allowed_origins", &self.allowed_origins)
            .field("disable_metrics", &self.disable_metrics)
            .field(
                "cluster",
                &self.cluster.as_deref().map(crate::cluster::redacted),
            )
            .field("cluster_node_timeout", &self.cluster_node_timeout)
            .field("reuse_port", &self.reuse_port)
            .field("shards", &self.shards)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("proxy_protocol", &self.proxy_protocol)
            .field("max_handshakes", &self.max_handshakes)
            .field("max_requests_per_second", &self.max_requests_per_second)
            .field("max_joins_per_second", &self.max_joins_per_second)
            .field("max_publishes_per_second", &self.max_publishes_per_second)
            .field("max_meta_bytes", &self.max_meta_bytes)
            .field("namespaces", &self.namespaces.declared())
            .finish()
    }
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Command {
    /// Run the server with these settings.
    Serve(Box<Settings>),
    /// `vigil check-config FILE`: validate the file with
    /// [`check_config_file`] and exit.
    CheckConfig {
        /// The TOML file to check.
        path: PathBuf,
    },
}

/// The variable naming the config file, like `--config`.
pub(crate) const CONFIG_ENV: &str = "VIGIL_CONFIG";

/// Reads the command line (`args` starts with the program name, as
/// `std::env::args_os()` does) and the environment through `env` (in the
/// binary: `|name| std::env::var(name).ok()`), plus the TOML file named by
/// `--config` or `VIGIL_CONFIG` when there is one.
///
/// Precedence: flag, then `VIGIL_*` variable, then file, then default. Every
/// problem found is reported, together in [`ConfigError::Several`] when there
/// are more than one. `--help`, `--version` and malformed command lines come
/// back at once as [`ConfigError::Usage`].
pub(crate) fn parse(
    args: impl IntoIterator<Item = OsString>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Command, ConfigError> {
    let cli = cli::Cli::from_args(args)?;
    if let Some(cli::Subcommand::CheckConfig { file }) = cli.command {
        return Ok(Command::CheckConfig { path: file });
    }
    let mut problems = Vec::new();
    let flags = Partial::from_text(Source::Cli, cli.values(), &mut problems);
    let environment = Partial::from_text(
        Source::Env,
        Key::ALL
            .into_iter()
            .filter_map(|key| env(key.env()).map(|value| (key, value))),
        &mut problems,
    );
    let file = match cli.config.or_else(|| env(CONFIG_ENV).map(PathBuf::from)) {
        Some(path) => Partial::from_file(&path, &mut problems),
        None => Partial::default(),
    };
    let settings = flags.over(environment).over(file).finish(&mut problems);
    match ConfigError::from_problems(problems) {
        None => Ok(Command::Serve(Box::new(settings))),
        Some(error) => Err(error),
    }
}

/// Validates a TOML config file on its own, over the defaults (no flags, no
/// environment): the settings `vigil --config FILE` would run with in an
/// empty environment. Every problem is reported: each unknown key, each bad
/// or out-of-range value, and the combinations that are refused.
pub(crate) fn check_config_file(path: &Path) -> Result<Settings, ConfigError> {
    let mut problems = Vec::new();
    let settings = Partial::from_file(path, &mut problems).finish(&mut problems);
    match ConfigError::from_problems(problems) {
        None => Ok(settings),
        Some(error) => Err(error),
    }
}

/// Checks the merged settings; `partial` says where each value came from
/// and which keys had a value refused in some layer. Those keys are not
/// judged again: their fallback value would only add noise to the report.
fn validate(settings: &Settings, partial: &Partial, problems: &mut Vec<ConfigError>) {
    let failed = |keys: &[Key]| keys.iter().any(|&key| partial.failed(key));
    if !failed(&[
        Key::HeartbeatInterval,
        Key::HeartbeatTimeout,
        Key::HeartbeatJitter,
    ]) {
        let built = heartbeat::Config::builder()
            .interval(settings.heartbeat_interval)
            .timeout(settings.heartbeat_timeout)
            .jitter(settings.heartbeat_jitter)
            .build();
        if let Err(error) = built {
            problems.push(ConfigError::Heartbeat(error));
        }
    }
    if !failed(&[Key::LeaveGrace]) {
        let built = PresenceConfig::builder()
            .leave_grace(settings.leave_grace)
            .build();
        if let Err(error) = built {
            problems.push(ConfigError::Presence(error));
        }
    }
    if settings.max_connections == Some(0) && !failed(&[Key::MaxConnections]) {
        problems.push(ConfigError::MaxConnections {
            origin: partial.origin(Key::MaxConnections),
        });
    }
    if let Some(url) = &settings.cluster
        && !failed(&[Key::Cluster])
        && let Err(problem) = crate::cluster::check_url(url)
    {
        problems.push(ConfigError::ClusterUrl {
            origin: partial.origin(Key::Cluster),
            url: crate::cluster::redacted(url),
            problem,
        });
    }
    match (&settings.tls_cert, &settings.tls_key) {
        (Some(_), None) if !failed(&[Key::TlsCert]) => {
            problems.push(ConfigError::Incomplete {
                set: partial.origin(Key::TlsCert),
                missing: Key::TlsPrivate,
            });
        }
        (None, Some(_)) if !failed(&[Key::TlsPrivate]) => {
            problems.push(ConfigError::Incomplete {
                set: partial.origin(Key::TlsPrivate),
                missing: Key::TlsCert,
            });
        }
        _ => {}
    }
    let mut out_of_range = |key: Key, value: String, allowed: String| {
        if !failed(&[key]) {
            problems.push(ConfigError::OutOfRange {
                origin: partial.origin(key),
                value,
                allowed,
            });
        }
    };
    if !(1..=MAX_MESSAGE_BYTES_LIMIT).contains(&settings.max_message_bytes) {
        out_of_range(
            Key::MaxMessageBytes,
            settings.max_message_bytes.to_string(),
            format!(
                "1..={MAX_MESSAGE_BYTES_LIMIT} (16 MiB): each connection may hold a whole message"
            ),
        );
    }
    if !(1..=MAX_CHANNELS_LIMIT).contains(&settings.max_channels_per_connection) {
        out_of_range(
            Key::MaxChannelsPerConnection,
            settings.max_channels_per_connection.to_string(),
            format!("1..={MAX_CHANNELS_LIMIT}"),
        );
    }
    for (key, value) in [
        (Key::MaxRequestsPerSecond, settings.max_requests_per_second),
        (Key::MaxJoinsPerSecond, settings.max_joins_per_second),
        (
            Key::MaxPublishesPerSecond,
            settings.max_publishes_per_second,
        ),
    ] {
        if !(1..=MAX_RATE).contains(&value) {
            out_of_range(key, value.to_string(), format!("1..={MAX_RATE}"));
        }
    }
    // A meta larger than max_message_bytes is bounded by that anyway.
    if settings.max_meta_bytes == 0 {
        out_of_range(
            Key::MaxMetaBytes,
            "0".to_owned(),
            "1.. (a join may always carry a small meta)".to_owned(),
        );
    }
    if settings.max_handshakes == 0 {
        out_of_range(
            Key::MaxHandshakes,
            "0".to_owned(),
            "1.. (a limit of none would refuse everyone)".to_owned(),
        );
    }
    if settings.max_connections_per_ip == 0 {
        out_of_range(
            Key::MaxConnectionsPerIp,
            "0".to_owned(),
            "1.. (a limit of none would refuse everyone)".to_owned(),
        );
    }
    if let Some(shards) = settings.shards
        && !(1..=MAX_SHARDS).contains(&shards)
    {
        out_of_range(Key::Shards, shards.to_string(), format!("1..={MAX_SHARDS}"));
    }
    if settings.shutdown_deadline.is_zero() || settings.shutdown_deadline > MAX_SHUTDOWN_DEADLINE {
        out_of_range(
            Key::ShutdownDeadline,
            format_duration(settings.shutdown_deadline),
            format!(
                "1ms..={}: clients need time to close, and no orchestrator waits longer",
                format_duration(MAX_SHUTDOWN_DEADLINE)
            ),
        );
    }
    if !(MIN_NODE_TIMEOUT..=MAX_NODE_TIMEOUT).contains(&settings.cluster_node_timeout) {
        out_of_range(
            Key::ClusterNodeTimeout,
            format_duration(settings.cluster_node_timeout),
            format!(
                "{}..={}: nodes heartbeat every quarter of it",
                format_duration(MIN_NODE_TIMEOUT),
                format_duration(MAX_NODE_TIMEOUT)
            ),
        );
    }
    if settings.jwt_leeway > MAX_JWT_LEEWAY {
        out_of_range(
            Key::JwtLeeway,
            format_duration(settings.jwt_leeway),
            format!(
                "0s..={}: a leeway is for clock skew, not for extending tokens",
                format_duration(MAX_JWT_LEEWAY)
            ),
        );
    }
    if !failed(&[
        Key::Listen,
        Key::JwtSecret,
        Key::JwtPublicKeyFile,
        Key::JwtJwksFile,
        Key::AllowInsecurePublic,
    ]) && !settings.listen.ip().is_loopback()
        && !settings.tokens_configured()
        && !settings.allow_insecure_public
    {
        problems.push(ConfigError::AnonymousPublic {
            listen: settings.listen,
        });
    }
}
