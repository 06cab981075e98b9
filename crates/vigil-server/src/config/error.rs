//! Why a configuration was refused. Each message names the setting as the
//! user wrote it, the value, and what is allowed.

use std::fmt::Write as _;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use vigil_core::{heartbeat, presence::PresenceConfigError};

use super::{FILE_HEADROOM, Key, Origin};

/// A configuration problem, or several.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum ConfigError {
    /// clap's answer to the command line: a usage error, or the text asked
    /// for by `--help` or `--version`. `error.exit()` prints it to the right
    /// stream and exits with 0 (help, version) or 2.
    #[error(transparent)]
    Usage(#[from] clap::Error),
    /// The config file could not be read.
    #[error("cannot read config file {}: {error}", path.display())]
    ReadFile { path: PathBuf, error: io::Error },
    /// The config file is not TOML.
    #[error("{}:{line}:{column}: not valid TOML: {message}", path.display())]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    /// The config file has a key that is no setting.
    #[error(
        "unknown setting `{key}` in {}; {}",
        path.display(),
        suggest(*suggestion)
    )]
    UnknownKey {
        path: PathBuf,
        key: String,
        /// The setting it most likely meant.
        suggestion: Option<Key>,
    },
    /// A `[[namespace]]` table of the config file is wrong.
    #[error("{}: {problem}", path.display())]
    Namespace { path: PathBuf, problem: String },
    /// A value that is not of the setting's type or syntax.
    #[error("{origin}: {value} {problem}; expected {expected}")]
    InvalidValue {
        origin: Origin,
        /// As written (quoted text or TOML), the secret redacted.
        value: String,
        /// What is wrong with it, e.g. "has no unit".
        problem: &'static str,
        /// What is allowed.
        expected: &'static str,
    },
    /// `cluster` is not a Redis URL (shown without its password).
    #[error(
        "{origin}: {url} is not a Redis URL ({problem}); expected redis://HOST:PORT/DB, or \
         rediss:// for TLS"
    )]
    ClusterUrl {
        origin: Origin,
        url: String,
        problem: String,
    },
    /// vigil-core refused the heartbeat interval, timeout and jitter.
    #[error(transparent)]
    Heartbeat(heartbeat::ConfigError),
    /// vigil-core refused the presence leave grace.
    #[error(transparent)]
    Presence(PresenceConfigError),
    /// `max_connections` is 0.
    #[error(
        "{origin}: 0 would refuse every client; leave it unset for as many as the open-file \
         limit allows"
    )]
    MaxConnections { origin: Origin },
    /// The process may not open enough files for `max_connections`.
    #[error(
        "max_connections is {value}: that many connections, max_handshakes ({handshakes}) and \
         {FILE_HEADROOM} more need {needed} open files, but this process may open only {limit} \
         (its hard limit, `ulimit -Hn`); raise it (LimitNOFILE= in a systemd unit, `nofile` in \
         /etc/security/limits.conf) or lower max_connections",
        needed = value + handshakes + FILE_HEADROOM
    )]
    FileLimit {
        value: usize,
        handshakes: usize,
        limit: u64,
    },
    /// The open-file limit leaves no room for connections at all.
    #[error(
        "this process may open only {limit} files (its hard limit, `ulimit -Hn`); vigil needs \
         more than max_handshakes ({handshakes}) + {FILE_HEADROOM}: raise the limit or lower \
         max_handshakes"
    )]
    FileLimitTooLow { handshakes: usize, limit: u64 },
    /// One of a pair of settings without the other.
    #[error("{set} is set but {missing} is not: the two go together", missing = missing.name())]
    Incomplete { set: Origin, missing: Key },
    /// A number or duration outside its range.
    #[error("{origin}: {value} is outside {allowed}")]
    OutOfRange {
        origin: Origin,
        value: String,
        /// The range, and why when it is not obvious.
        allowed: String,
    },
    /// A public address, no auth, and no explicit permission.
    #[error(
        "listen address {listen} is not loopback and no token key (jwt_secret, jwt_public_key_file or \
         jwt_jwks_file) is configured; refusing to accept anonymous connections on a public \
         address: set VIGIL_JWT_SECRET or a public key, or pass --allow-insecure-public"
    )]
    AnonymousPublic { listen: SocketAddr },
    /// More than one problem, each its own error, in the order found: flags,
    /// environment, file, then the merged settings.
    #[error("{}", list(.0))]
    Several(Vec<ConfigError>),
}

impl ConfigError {
    /// `None` when there is no problem, the problem itself when there is one.
    pub(super) fn from_problems(mut problems: Vec<Self>) -> Option<Self> {
        match problems.len() {
            0 => None,
            1 => problems.pop(),
            _ => Some(Self::Several(problems)),
        }
    }

    /// A TOML parse error, located by line and column (both from 1).
    pub(super) fn syntax(path: &Path, text: &str, error: &toml::de::Error) -> Self {
        let offset = error.span().map_or(0, |span| span.start).min(text.len());
        // A span always starts on a char boundary; `get` keeps that an assumption.
        let before = text.get(..offset).unwrap_or(text);
        let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
        Self::Syntax {
            path: path.to_owned(),
            line: before.matches('\n').count() + 1,
            column: before[line_start..].chars().count() + 1,
            message: error.message().trim_end().to_owned(),
        }
    }
}

fn suggest(suggestion: Option<Key>) -> String {
    match suggestion {
        Some(key) => format!("did you mean `{}`?", key.name()),
        None => {
            let names: Vec<_> = Key::ALL.iter().map(|key| key.name()).collect();
            format!("the settings are: {}", names.join(", "))
        }
    }
}

fn list(problems: &[ConfigError]) -> String {
    let mut text = format!("{} problems:", problems.len());
    for problem in problems {
        // Infallible: writing to a String.
        let _ = write!(text, "\n  - {problem}");
    }
    text
}
