//! TLS on the server side, light enough to keep for every idle connection.
//!
//! [`accept`] completes the handshake of an accepted socket on rustls's
//! unbuffered API and returns a [`TlsStream`] to serve HTTP over. When a
//! request on it is upgraded, the shard takes the socket and the session
//! over and serves them with its own shared buffers: an idle `wss://`
//! connection then holds its keys and its session state, no buffer.

mod session;
mod stream;

pub(crate) use session::{MAX_RECORD_BYTES, TlsSession};
pub(crate) use stream::TlsParts;
pub use stream::{TlsStream, accept};

#[cfg(test)]
mod tests;
