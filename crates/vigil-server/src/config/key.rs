//! The settings' names, and where a value came from, spelled the way the
//! user wrote it so that an error message points at the right place.

use std::fmt;
use std::path::PathBuf;

/// One setting. Its file key is [`Key::name`], its flag the name in kebab
/// case and its environment variable [`Key::env`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Key {
    Listen,
    AllowInsecurePublic,
    TlsCert,
    /// `tls_key` (a variant may not end in the enum's own name).
    TlsPrivate,
    JwtSecret,
    JwtPublicKeyFile,
    JwtJwksFile,
    JwtIssuer,
    JwtAudience,
    JwtLeeway,
    /// `api_key` (a variant may not end in the enum's own name).
    ApiToken,
    HeartbeatInterval,
    HeartbeatTimeout,
    HeartbeatJitter,
    LeaveGrace,
    MaxConnections,
    MaxConnectionsPerIp,
    MaxMessageBytes,
    MaxChannelsPerConnection,
    ShutdownDeadline,
    LogJson,
    AllowedOrigins,
    DisableMetrics,
    Cluster,
    ClusterNodeTimeout,
    ReusePort,
    Shards,
    TrustedProxies,
    ProxyProtocol,
    MaxHandshakes,
    MaxRequestsPerSecond,
    MaxJoinsPerSecond,
    MaxPublishesPerSecond,
    MaxMetaBytes,
}

impl Key {
    /// Every setting, in the order `--help` lists them.
    pub(crate) const ALL: [Self; 34] = [
        Self::Listen,
        Self::AllowInsecurePublic,
        Self::TlsCert,
        Self::TlsPrivate,
        Self::JwtSecret,
        Self::JwtPublicKeyFile,
        Self::JwtJwksFile,
        Self::JwtIssuer,
        Self::JwtAudience,
        Self::JwtLeeway,
        Self::ApiToken,
        Self::HeartbeatInterval,
        Self::HeartbeatTimeout,
        Self::HeartbeatJitter,
        Self::LeaveGrace,
        Self::MaxConnections,
        Self::MaxConnectionsPerIp,
        Self::MaxHandshakes,
        Self::MaxMessageBytes,
        Self::MaxChannelsPerConnection,
        Self::MaxRequestsPerSecond,
        Self::MaxJoinsPerSecond,
        Self::MaxPublishesPerSecond,
        Self::MaxMetaBytes,
        Self::AllowedOrigins,
        Self::ShutdownDeadline,
        Self::Shards,
        Self::ReusePort,
        Self::TrustedProxies,
        Self::ProxyProtocol,
        Self::Cluster,
        Self::ClusterNodeTimeout,
        Self::DisableMetrics,
        Self::LogJson,
    ];

    /// The key in the TOML file, also the field of `Settings`.
    pub(crate) const fn name(self) -> &'static str {
        match self {
            Self::Listen => "listen",
            Self::AllowInsecurePublic => "allow_insecure_public",
            Self::TlsCert => "tls_cert",
            Self::TlsPrivate => "tls_key",
            Self::JwtSecret => "jwt_secret",
            Self::JwtPublicKeyFile => "jwt_public_key_file",
            Self::JwtJwksFile => "jwt_jwks_file",
            Self::JwtIssuer => "jwt_issuer",
            Self::JwtAudience => "jwt_audience",
            Self::JwtLeeway => "jwt_leeway",
            Self::ApiToken => "api_key",
            Self::HeartbeatInterval => "heartbeat_interval",
            Self::HeartbeatTimeout => "heartbeat_timeout",
            Self::HeartbeatJitter => "heartbeat_jitter",
            Self::LeaveGrace => "leave_grace",
            Self::MaxConnections => "max_connections",
            Self::MaxConnectionsPerIp => "max_connections_per_ip",
            Self::MaxMessageBytes => "max_message_bytes",
            Self::MaxChannelsPerConnection => "max_channels_per_connection",
            Self::ShutdownDeadline => "shutdown_deadline",
            Self::LogJson => "log_json",
            Self::AllowedOrigins => "allowed_origins",
            Self::DisableMetrics => "disable_metrics",
            Self::Cluster => "cluster",
            Self::ClusterNodeTimeout => "cluster_node_timeout",
            Self::ReusePort => "reuse_port",
            Self::Shards => "shards",
            Self::TrustedProxies => "trusted_proxies",
            Self::ProxyProtocol => "proxy_protocol",
            Self::MaxHandshakes => "max_handshakes",
            Self::MaxRequestsPerSecond => "max_requests_per_second",
            Self::MaxJoinsPerSecond => "max_joins_per_second",
            Self::MaxPublishesPerSecond => "max_publishes_per_second",
            Self::MaxMetaBytes => "max_meta_bytes",
        }
    }

    /// The environment variable. Spelled out rather than derived so that a
    /// search for `VIGIL_LISTEN` finds this line.
    pub(crate) const fn env(self) -> &'static str {
        match self {
            Self::Listen => "VIGIL_LISTEN",
            Self::AllowInsecurePublic => "VIGIL_ALLOW_INSECURE_PUBLIC",
            Self::TlsCert => "VIGIL_TLS_CERT",
            Self::TlsPrivate => "VIGIL_TLS_KEY",
            Self::JwtSecret => "VIGIL_JWT_SECRET",
            Self::JwtPublicKeyFile => "VIGIL_JWT_PUBLIC_KEY_FILE",
            Self::JwtJwksFile => "VIGIL_JWT_JWKS_FILE",
            Self::JwtIssuer => "VIGIL_JWT_ISSUER",
            Self::JwtAudience => "VIGIL_JWT_AUDIENCE",
            Self::JwtLeeway => "VIGIL_JWT_LEEWAY",
            Self::ApiToken => "VIGIL_API_KEY",
            Self::HeartbeatInterval => "VIGIL_HEARTBEAT_INTERVAL",
            Self::HeartbeatTimeout => "VIGIL_HEARTBEAT_TIMEOUT",
            Self::HeartbeatJitter => "VIGIL_HEARTBEAT_JITTER",
            Self::LeaveGrace => "VIGIL_LEAVE_GRACE",
            Self::MaxConnections => "VIGIL_MAX_CONNECTIONS",
            Self::MaxConnectionsPerIp => "VIGIL_MAX_CONNECTIONS_PER_IP",
            Self::MaxMessageBytes => "VIGIL_MAX_MESSAGE_BYTES",
            Self::MaxChannelsPerConnection => "VIGIL_MAX_CHANNELS_PER_CONNECTION",
            Self::ShutdownDeadline => "VIGIL_SHUTDOWN_DEADLINE",
            Self::LogJson => "VIGIL_LOG_JSON",
            Self::AllowedOrigins => "VIGIL_ALLOWED_ORIGINS",
            Self::DisableMetrics => "VIGIL_DISABLE_METRICS",
            Self::Cluster => "VIGIL_CLUSTER",
            Self::ClusterNodeTimeout => "VIGIL_CLUSTER_NODE_TIMEOUT",
            Self::ReusePort => "VIGIL_REUSE_PORT",
            Self::Shards => "VIGIL_SHARDS",
            Self::TrustedProxies => "VIGIL_TRUSTED_PROXIES",
            Self::ProxyProtocol => "VIGIL_PROXY_PROTOCOL",
            Self::MaxHandshakes => "VIGIL_MAX_HANDSHAKES",
            Self::MaxRequestsPerSecond => "VIGIL_MAX_REQUESTS_PER_SECOND",
            Self::MaxJoinsPerSecond => "VIGIL_MAX_JOINS_PER_SECOND",
            Self::MaxPublishesPerSecond => "VIGIL_MAX_PUBLISHES_PER_SECOND",
            Self::MaxMetaBytes => "VIGIL_MAX_META_BYTES",
        }
    }

    /// The command-line flag, `--` included.
    pub(crate) fn flag(self) -> String {
        format!("--{}", self.name().replace('_', "-"))
    }

    /// The setting whose file key is `name`.
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|key| key.name() == name)
    }

    /// The setting a misspelt file key most likely meant: the same up to
    /// case and `-`/`_`, or at most two edits away.
    pub(crate) fn closest(name: &str) -> Option<Self> {
        let normal = name.to_ascii_lowercase().replace('-', "_");
        Self::ALL
            .into_iter()
            .map(|key| (edit_distance(&normal, key.name()), key))
            .filter(|&(distance, _)| distance <= 2)
            .min()
            .map(|(_, key)| key)
    }
}

/// Levenshtein distance over bytes; file keys are short ASCII words.
fn edit_distance(a: &str, b: &str) -> usize {
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.bytes().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.bytes().enumerate() {
            let substitution = diagonal + usize::from(ca != cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

/// Which layer a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    /// Nobody set it.
    Default,
    /// The TOML file at this path.
    File(PathBuf),
    /// A `VIGIL_*` environment variable.
    Env,
    /// A command-line flag.
    Cli,
}

/// A setting and the layer its value came from. Displays as the user wrote
/// it: `--max-connections`, `VIGIL_MAX_CONNECTIONS`, `max_connections in
/// vigil.toml` or `max_connections (default)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Origin {
    pub(crate) key: Key,
    pub(crate) source: Source,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Source::Default => write!(f, "{} (default)", self.key.name()),
            Source::File(path) => write!(f, "{} in {}", self.key.name(), path.display()),
            Source::Env => f.write_str(self.key.env()),
            Source::Cli => f.write_str(&self.key.flag()),
        }
    }
}
