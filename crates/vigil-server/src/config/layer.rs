//! One layer of settings (flags, environment or file) holding only what it
//! sets, and the merge of the layers over the defaults.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;

use super::value::{Problem, Raw, SettingValue};
use super::{ConfigError, Key, Origin, Settings, Source, validate};

/// What one layer sets, or after [`Partial::over`] several; `None` where it
/// is silent.
#[derive(Debug, Default)]
pub(super) struct Partial {
    listen: Option<SocketAddr>,
    allow_insecure_public: Option<bool>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    jwt_secret: Option<String>,
    jwt_public_key_file: Option<PathBuf>,
    jwt_jwks_file: Option<PathBuf>,
    jwt_issuer: Option<String>,
    jwt_audience: Option<String>,
    jwt_leeway: Option<Duration>,
    api_key: Option<String>,
    heartbeat_interval: Option<Duration>,
    heartbeat_timeout: Option<Duration>,
    heartbeat_jitter: Option<f64>,
    leave_grace: Option<Duration>,
    max_connections: Option<usize>,
    max_message_bytes: Option<usize>,
    max_channels_per_connection: Option<usize>,
    max_connections_per_ip: Option<usize>,
    shutdown_deadline: Option<Duration>,
    log_json: Option<bool>,
    allowed_origins: Option<Vec<String>>,
    disable_metrics: Option<bool>,
    cluster: Option<String>,
    cluster_node_timeout: Option<Duration>,
    reuse_port: Option<bool>,
    shards: Option<usize>,
    trusted_proxies: Option<Vec<IpNet>>,
    proxy_protocol: Option<bool>,
    max_handshakes: Option<usize>,
    max_requests_per_second: Option<usize>,
    max_joins_per_second: Option<usize>,
    max_publishes_per_second: Option<usize>,
    max_meta_bytes: Option<usize>,
    /// The `[[namespace]]` tables of a config file (no flag or variable
    /// sets them).
    namespaces: Option<Vec<crate::namespace::Namespace>>,
    /// The layer each set value came from.
    sources: BTreeMap<Key, Source>,
    /// Keys given a value that was refused, in any layer merged in.
    failed: BTreeSet<Key>,
}

impl Partial {
    /// A layer of text values: flags or environment variables.
    pub(super) fn from_text(
        source: Source,
        values: impl IntoIterator<Item = (Key, String)>,
        problems: &mut Vec<ConfigError>,
    ) -> Self {
        let mut partial = Self::default();
        for (key, text) in values {
            let origin = Origin {
                key,
                source: source.clone(),
            };
            partial.set(origin, Raw::Text(&text), problems);
        }
        partial
    }

    /// The layer of a TOML file. Every unknown key and every bad value is a
    /// problem of its own; the file's other settings still count.
    pub(super) fn from_file(path: &Path, problems: &mut Vec<ConfigError>) -> Self {
        let mut partial = Self::default();
        let text = match fs::read_to_string(path) {
            Ok(text) => text,
            Err(error) => {
                problems.push(ConfigError::ReadFile {
                    path: path.to_owned(),
                    error,
                });
                return partial;
            }
        };
        let table = match text.parse::<toml::Table>() {
            Ok(table) => table,
            Err(error) => {
                problems.push(ConfigError::syntax(path, &text, &error));
                return partial;
            }
        };
        for (name, value) in &table {
            if name == "namespace" {
                match crate::namespace::parse(value) {
                    Ok(namespaces) => partial.namespaces = Some(namespaces),
                    Err(found) => {
                        problems.extend(found.into_iter().map(|problem| ConfigError::Namespace {
                            path: path.to_owned(),
                            problem,
                        }))
                    }
                }
                continue;
            }
            match Key::from_name(name) {
                Some(key) => {
                    let origin = Origin {
                        key,
                        source: Source::File(path.to_owned()),
                    };
                    partial.set(origin, Raw::Toml(value), problems);
                }
                None => problems.push(ConfigError::UnknownKey {
                    path: path.to_owned(),
                    key: name.clone(),
                    suggestion: Key::closest(name),
                }),
            }
        }
        partial
    }

    fn set(&mut self, origin: Origin, raw: Raw<'_>, problems: &mut Vec<ConfigError>) {
        let key = origin.key;
        let read = match key {
            Key::Listen => read(&mut self.listen, raw),
            Key::AllowInsecurePublic => read(&mut self.allow_insecure_public, raw),
            Key::TlsCert => read(&mut self.tls_cert, raw),
            Key::TlsPrivate => read(&mut self.tls_key, raw),
            Key::JwtSecret => read(&mut self.jwt_secret, raw),
            Key::JwtPublicKeyFile => read(&mut self.jwt_public_key_file, raw),
            Key::JwtJwksFile => read(&mut self.jwt_jwks_file, raw),
            Key::JwtIssuer => read(&mut self.jwt_issuer, raw),
            Key::JwtAudience => read(&mut self.jwt_audience, raw),
            Key::JwtLeeway => read(&mut self.jwt_leeway, raw),
            Key::ApiToken => read(&mut self.api_key, raw),
            Key::HeartbeatInterval => read(&mut self.heartbeat_interval, raw),
            Key::HeartbeatTimeout => read(&mut self.heartbeat_timeout, raw),
            Key::HeartbeatJitter => read(&mut self.heartbeat_jitter, raw),
            Key::LeaveGrace => read(&mut self.leave_grace, raw),
            Key::MaxConnections => read(&mut self.max_connections, raw),
            Key::MaxMessageBytes => read(&mut self.max_message_bytes, raw),
            Key::MaxChannelsPerConnection => read(&mut self.max_channels_per_connection, raw),
            Key::MaxConnectionsPerIp => read(&mut self.max_connections_per_ip, raw),
            Key::ShutdownDeadline => read(&mut self.shutdown_deadline, raw),
            Key::LogJson => read(&mut self.log_json, raw),
            Key::AllowedOrigins => read(&mut self.allowed_origins, raw),
            Key::DisableMetrics => read(&mut self.disable_metrics, raw),
            Key::Cluster => read(&mut self.cluster, raw),
            Key::ClusterNodeTimeout => read(&mut self.cluster_node_timeout, raw),
            Key::ReusePort => read(&mut self.reuse_port, raw),
            Key::Shards => read(&mut self.shards, raw),
            Key::TrustedProxies => read(&mut self.trusted_proxies, raw),
            Key::ProxyProtocol => read(&mut self.proxy_protocol, raw),
            Key::MaxHandshakes => read(&mut self.max_handshakes, raw),
            Key::MaxRequestsPerSecond => read(&mut self.max_requests_per_second, raw),
            Key::MaxJoinsPerSecond => read(&mut self.max_joins_per_second, raw),
            Key::MaxPublishesPerSecond => read(&mut self.max_publishes_per_second, raw),
            Key::MaxMetaBytes => read(&mut self.max_meta_bytes, raw),
        };
        match read {
            Ok(()) => {
                self.sources.insert(key, origin.source);
            }
            Err((problem, expected)) => {
                self.failed.insert(key);
                let value = match raw {
                    Raw::Text("") => raw.render(),
                    _ if matches!(key, Key::JwtSecret | Key::ApiToken) => "<redacted>".to_owned(),
                    _ => raw.render(),
                };
                problems.push(ConfigError::InvalidValue {
                    origin,
                    value,
                    problem,
                    expected,
                });
            }
        }
    }

    /// This layer, with `lower`'s values where this one is silent.
    pub(super) fn over(self, lower: Self) -> Self {
        let mut sources = lower.sources;
        sources.extend(self.sources);
        let mut failed = lower.failed;
        failed.extend(self.failed);
        Self {
            listen: self.listen.or(lower.listen),
            allow_insecure_public: self.allow_insecure_public.or(lower.allow_insecure_public),
            tls_cert: self.tls_cert.or(lower.tls_cert),
            tls_key: self.tls_key.or(lower.tls_key),
            jwt_secret: self.jwt_secret.or(lower.jwt_secret),
            jwt_public_key_file: self.jwt_public_key_file.or(lower.jwt_public_key_file),
            jwt_jwks_file: self.jwt_jwks_file.or(lower.jwt_jwks_file),
            jwt_issuer: self.jwt_issuer.or(lower.jwt_issuer),
            jwt_audience: self.jwt_audience.or(lower.jwt_audience),
            jwt_leeway: self.jwt_leeway.or(lower.jwt_leeway),
            api_key: self.api_key.or(lower.api_key),
            heartbeat_interval: self.heartbeat_interval.or(lower.heartbeat_interval),
            heartbeat_timeout: self.heartbeat_timeout.or(lower.heartbeat_timeout),
            heartbeat_jitter: self.heartbeat_jitter.or(lower.heartbeat_jitter),
            leave_grace: self.leave_grace.or(lower.leave_grace),
            max_connections: self.max_connections.or(lower.max_connections),
            max_message_bytes: self.max_message_bytes.or(lower.max_message_bytes),
            max_channels_per_connection: self
                .max_channels_per_connection
                .or(lower.max_channels_per_connection),
            max_connections_per_ip: self.max_connections_per_ip.or(lower.max_connections_per_ip),
            shutdown_deadline: self.shutdown_deadline.or(lower.shutdown_deadline),
            log_json: self.log_json.or(lower.log_json),
            allowed_origins: self.allowed_origins.or(lower.allowed_origins),
            disable_metrics: self.disable_metrics.or(lower.disable_metrics),
            cluster: self.cluster.or(lower.cluster),
            cluster_node_timeout: self.cluster_node_timeout.or(lower.cluster_node_timeout),
            reuse_port: self.reuse_port.or(lower.reuse_port),
            shards: self.shards.or(lower.shards),
            trusted_proxies: self.trusted_proxies.or(lower.trusted_proxies),
            proxy_protocol: self.proxy_protocol.or(lower.proxy_protocol),
            max_handshakes: self.max_handshakes.or(lower.max_handshakes),
            max_requests_per_second: self
                .max_requests_per_second
                .or(lower.max_requests_per_second),
            max_joins_per_second: self.max_joins_per_second.or(lower.max_joins_per_second),
            max_publishes_per_second: self
                .max_publishes_per_second
                .or(lower.max_publishes_per_second),
            max_meta_bytes: self.max_meta_bytes.or(lower.max_meta_bytes),
            namespaces: self.namespaces.or(lower.namespaces),
            sources,
            failed,
        }
    }

    /// The settings, defaults filling the gaps, and their problems.
    pub(super) fn finish(self, problems: &mut Vec<ConfigError>) -> Settings {
        let default = Settings::default();
        let settings = Settings {
            listen: self.listen.unwrap_or(default.listen),
            allow_insecure_public: self
                .allow_insecure_public
                .unwrap_or(default.allow_insecure_public),
            tls_cert: self.tls_cert.clone().or(default.tls_cert),
            tls_key: self.tls_key.clone().or(default.tls_key),
            jwt_secret: self.jwt_secret.clone().or(default.jwt_secret),
            jwt_public_key_file: self
                .jwt_public_key_file
                .clone()
                .or(default.jwt_public_key_file),
            jwt_jwks_file: self.jwt_jwks_file.clone().or(default.jwt_jwks_file),
            jwt_issuer: self.jwt_issuer.clone().or(default.jwt_issuer),
            jwt_audience: self.jwt_audience.clone().or(default.jwt_audience),
            jwt_leeway: self.jwt_leeway.unwrap_or(default.jwt_leeway),
            api_key: self.api_key.clone().or(default.api_key),
            heartbeat_interval: self
                .heartbeat_interval
                .unwrap_or(default.heartbeat_interval),
            heartbeat_timeout: self.heartbeat_timeout.unwrap_or(default.heartbeat_timeout),
            heartbeat_jitter: self.heartbeat_jitter.unwrap_or(default.heartbeat_jitter),
            leave_grace: self.leave_grace.unwrap_or(default.leave_grace),
            max_connections: self.max_connections.or(default.max_connections),
            max_message_bytes: self.max_message_bytes.unwrap_or(default.max_message_bytes),
            max_channels_per_connection: self
                .max_channels_per_connection
                .unwrap_or(default.max_channels_per_connection),
            max_connections_per_ip: self
                .max_connections_per_ip
                .unwrap_or(default.max_connections_per_ip),
            shutdown_deadline: self.shutdown_deadline.unwrap_or(default.shutdown_deadline),
            log_json: self.log_json.unwrap_or(default.log_json),
            allowed_origins: self
                .allowed_origins
                .clone()
                .unwrap_or(default.allowed_origins),
            disable_metrics: self.disable_metrics.unwrap_or(default.disable_metrics),
            cluster: self.cluster.clone().or(default.cluster),
            cluster_node_timeout: self
                .cluster_node_timeout
                .unwrap_or(default.cluster_node_timeout),
            reuse_port: self.reuse_port.unwrap_or(default.reuse_port),
            shards: self.shards.or(default.shards),
            trusted_proxies: self
                .trusted_proxies
                .clone()
                .unwrap_or(default.trusted_proxies),
            proxy_protocol: self.proxy_protocol.unwrap_or(default.proxy_protocol),
            max_handshakes: self.max_handshakes.unwrap_or(default.max_handshakes),
            max_requests_per_second: self
                .max_requests_per_second
                .unwrap_or(default.max_requests_per_second),
            max_joins_per_second: self
                .max_joins_per_second
                .unwrap_or(default.max_joins_per_second),
            max_publishes_per_second: self
                .max_publishes_per_second
                .unwrap_or(default.max_publishes_per_second),
            max_meta_bytes: self.max_meta_bytes.unwrap_or(default.max_meta_bytes),
            namespaces: default.namespaces,
        };
        let settings = Settings {
            namespaces: crate::namespace::Namespaces::new(
                self.namespaces.clone().unwrap_or_default(),
                settings.max_meta_bytes,
            ),
            ..settings
        };
        validate(&settings, &self, problems);
        settings
    }

    /// The setting and the layer its merged value came from.
    pub(super) fn origin(&self, key: Key) -> Origin {
        Origin {
            key,
            source: self.sources.get(&key).cloned().unwrap_or(Source::Default),
        }
    }

    /// Whether some layer gave `key` a value that was refused.
    pub(super) fn failed(&self, key: Key) -> bool {
        self.failed.contains(&key)
    }
}

/// Gives `raw` the slot's type; on failure, the problem and what is allowed.
fn read<T: SettingValue>(
    slot: &mut Option<T>,
    raw: Raw<'_>,
) -> Result<(), (Problem, &'static str)> {
    *slot = Some(T::from_raw(raw).map_err(|problem| (problem, T::EXPECTED))?);
    Ok(())
}
