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
    /// The URL is not a `ws://host:port/path` URL.
    #[error("invalid WebSocket URL {url:?}: {reason}")]
    Url {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The upgraded connection is not a plain TCP stream.
    #[error("the upgraded connection is not a TCP stream (TLS must end before vigil-ws)")]
    NotTcp,
    /// An IO error on a socket we were setting up.
    #[error("socket error: {0}")]
    Io(#[from] std::io::Error),
}
