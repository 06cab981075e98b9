//! The one error type of vigil-ws.

/// What can go wrong setting up or running the transport. Losing a peer is
/// not an error: it is a [`CloseReason`](crate::CloseReason) given to the
/// handler.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A transport setting is out of range.
    #[error("invalid WebSocket transport setting: {0}")]
    Config(&'static str),
    /// A shard thread or its runtime could not start.
    #[error("cannot start a connection shard: {0}")]
    Runtime(#[source] std::io::Error),
    /// The server was shut down.
    #[error("the WebSocket server is shut down")]
    ShutDown,
    /// Connecting to a server failed.
    #[error("cannot connect to {url}: {source}")]
    Connect {
        /// The URL we tried.
        url: String,
        /// Why it failed.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The URL is not a `ws://` or `wss://` URL.
    #[error("invalid WebSocket URL {url:?}: {reason}")]
    Url {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// TLS could not be set up: the trust store or CA file, or the
    /// server's name.
    #[error("TLS: {0}")]
    Tls(String),
    /// An IO error on a socket we were setting up.
    #[error("socket error: {0}")]
    Io(#[from] std::io::Error),
}
