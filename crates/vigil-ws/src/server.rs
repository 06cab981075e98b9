//! [`WsServer`]: starts the connection shards and takes in upgraded
//! connections from any hyper (or axum) server, or raw accepted sockets.

use crate::Error;
use crate::codec::Role;
use crate::config::{HeartbeatMode, WsConfig};
use crate::handler::{ConnId, Handler};
use crate::shard::transport::{Adopted, Stream};
use crate::shard::{Command, ShardHandle, ShardShared};
use crate::upgrade::{self, UpgradeError};
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

/// The WebSocket side of a server: heartbeats, framing and connection
/// state for every upgraded connection, on its own shard threads.
///
/// Embed it in a hyper service: validate and authenticate the request
/// yourself (headers, Origin, token), then return what
/// [`upgrade`](Self::upgrade) gives you, from a hyper connection served
/// `with_upgrades()`: hyper's http1 builder, hyper-util's auto builder or
/// `axum::serve`, over plain TCP or TLS. A plain TCP socket is taken into
/// the shard's own reactor (the lightest path); any other stream is served
/// where it is, with the same heartbeat, limits and close reasons.
#[derive(Clone)]
pub struct WsServer {
    inner: Arc<Inner>,
}

struct Inner {
    config: Arc<WsConfig>,
    shards: Vec<Arc<ShardShared>>,
    handles: Mutex<Vec<ShardHandle>>,
    next_id: AtomicU64,
    next_shard: AtomicUsize,
    handler: Arc<dyn Handler>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The last handle is gone: let the shards close their connections
        // and end their threads instead of running forever.
        for shard in &self.shards {
            let _ = shard.push_command(Command::Shutdown);
        }
    }
}

impl std::fmt::Debug for WsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsServer")
            .field("shards", &self.inner.shards.len())
            .field("connections", &self.connections())
            .finish()
    }
}

impl WsServer {
    /// Starts `config.shards` shard threads calling `handler`.
    pub fn start(config: WsConfig, handler: Arc<dyn Handler>) -> Result<Self, Error> {
        Self::start_with_role(config, handler, "vigil-ws-shard")
    }

    pub(crate) fn start_with_role(
        config: WsConfig,
        handler: Arc<dyn Handler>,
        name: &str,
    ) -> Result<Self, Error> {
        config.validate()?;
        let config = Arc::new(config);
        let entropy = RandomState::new();
        let mut handles = Vec::with_capacity(config.shards);
        for index in 0..config.shards {
            let seed = entropy.hash_one(index);
            handles.push(ShardHandle::spawn(
                format!("{name}-{index}"),
                Arc::clone(&config),
                Arc::clone(&handler),
                seed,
            )?);
        }
        let shards = handles
            .iter()
            .map(|handle| Arc::clone(&handle.shared))
            .collect();
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                shards,
                handles: Mutex::new(handles),
                next_id: AtomicU64::new(1),
                next_shard: AtomicUsize::new(0),
                handler,
            }),
        })
    }

    /// The transport settings.
    pub fn config(&self) -> &WsConfig {
        &self.inner.config
    }

    /// Counters over all shards since the start.
    pub fn metrics(&self) -> crate::Metrics {
        let mut total = crate::Metrics {
            connections: self.connections() as u64,
            ..crate::Metrics::default()
        };
        for shard in &self.inner.shards {
            shard.metrics.add_to(&mut total);
        }
        total
    }

    /// Live connections over all shards.
    pub fn connections(&self) -> usize {
        self.inner
            .shards
            .iter()
            .map(|shard| shard.connections())
            .sum()
    }

    /// Validates `request` as a WebSocket handshake and answers it: on
    /// success a `101` response to return from your service, and the id the
    /// connection will have (its `on_open` follows once hyper hands the
    /// socket over). On failure, return `error.into_response()`.
    ///
    /// Must be called inside a tokio runtime: a short task waits for hyper
    /// to release the connection. Any hyper server works (`axum::serve`
    /// included), over TCP or TLS: a plain `TokioIo<TcpStream>` is taken
    /// over whole, anything else is served as the stream hyper hands back
    /// (counted in [`Metrics::streams_opened`](crate::Metrics)).
    pub fn upgrade<B>(
        &self,
        request: &mut Request<B>,
        protocol: Option<&str>,
    ) -> Result<(Response<Full<Bytes>>, ConnId), UpgradeError> {
        self.upgrade_with_mode(request, protocol, self.inner.config.mode)
    }

    /// [`upgrade`](Self::upgrade) with this connection's heartbeat mode
    /// instead of the configured one: e.g. application-level pings for a
    /// browser that asked for them, protocol pings for everyone else.
    pub fn upgrade_with_mode<B>(
        &self,
        request: &mut Request<B>,
        protocol: Option<&str>,
        mode: HeartbeatMode,
    ) -> Result<(Response<Full<Bytes>>, ConnId), UpgradeError> {
        let response = upgrade::accept(request, protocol)?;
        let id = self.next_id();
        let on_upgrade = hyper::upgrade::on(request);
        let server = self.clone();
        tokio::spawn(async move {
            let Ok(upgraded) = on_upgrade.await else {
                // The client went away during the handshake.
                server.inner.handler.on_upgrade_failed(id);
                return;
            };
            let handed = match take_over(upgraded) {
                Ok((stream, leftover)) => {
                    server.hand_over(stream, leftover, id, (Role::Server, mode))
                }
                Err(error) => Err(error),
            };
            if handed.is_err() {
                server.inner.handler.on_upgrade_failed(id);
            }
        });
        Ok((response, id))
    }

    /// Serves one accepted connection (a `TcpStream`, or a TLS stream over
    /// one) on which every request is a WebSocket handshake: valid ones are
    /// upgraded and taken over, others get the handshake error (400, 405 or
    /// 426 with the reason). For a port that serves only WebSockets; put
    /// [`upgrade`](Self::upgrade) in your own service to serve other routes
    /// beside it.
    ///
    /// Cancel safety: dropping the future drops the HTTP connection.
    pub async fn serve_upgrades(&self, stream: impl Stream) {
        let server = self.clone();
        let service = hyper::service::service_fn(move |mut request| {
            let answer = match server.upgrade(&mut request, None) {
                Ok((response, _)) => response,
                Err(error) => error.into_response(),
            };
            async move { Ok::<_, std::convert::Infallible>(answer) }
        });
        // An error here is the client's (a broken request or socket): the
        // connection simply ends.
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades()
            .await;
    }

    /// Takes over a socket whose handshake is already done (e.g. by your own
    /// code), with any bytes already read past the handshake.
    pub fn adopt(&self, stream: tokio::net::TcpStream, leftover: Bytes) -> Result<ConnId, Error> {
        let id = self.next_id();
        let mode = self.inner.config.mode;
        self.hand_over(
            Adopted::Tcp(stream.into_std()?),
            leftover,
            id,
            (Role::Server, mode),
        )?;
        Ok(id)
    }

    /// Takes over any stream whose handshake is already done (a TLS
    /// stream, an upgraded connection of another server), with any bytes
    /// already read past the handshake. It stays with the reactor it was
    /// created on; vigil-ws polls it from its shard.
    pub fn adopt_stream(&self, stream: impl Stream, leftover: Bytes) -> Result<ConnId, Error> {
        let id = self.next_id();
        let mode = self.inner.config.mode;
        self.hand_over(
            Adopted::Stream(Box::new(stream)),
            leftover,
            id,
            (Role::Server, mode),
        )?;
        Ok(id)
    }

    pub(crate) fn adopt_client(&self, stream: Adopted, leftover: Bytes) -> Result<ConnId, Error> {
        let id = self.next_id();
        let mode = self.inner.config.mode;
        self.hand_over(stream, leftover, id, (Role::Client, mode))?;
        Ok(id)
    }

    fn next_id(&self) -> ConnId {
        ConnId(self.inner.next_id.fetch_add(1, Ordering::Relaxed))
    }

    fn hand_over(
        &self,
        stream: Adopted,
        leftover: Bytes,
        id: ConnId,
        (role, mode): (Role, HeartbeatMode),
    ) -> Result<(), Error> {
        // The least loaded of two shards picked round-robin keeps them even.
        let shards = &self.inner.shards;
        let first = self.inner.next_shard.fetch_add(1, Ordering::Relaxed) % shards.len();
        let second = (first + 1) % shards.len();
        let shard = if shards[second].connections() < shards[first].connections() {
            &shards[second]
        } else {
            &shards[first]
        };
        shard
            .push_command(Command::Adopt {
                stream,
                leftover,
                id,
                role,
                mode,
            })
            .map_err(|_| Error::ShutDown)
    }

    /// Closes every connection with 1001 ("going away", reconnect later),
    /// waits up to `deadline` for the close handshakes, then stops the
    /// shards. Connections handed over afterwards are refused.
    pub async fn shutdown(&self, deadline: Duration) {
        for shard in &self.inner.shards {
            let _ = shard.push_command(Command::Shutdown);
        }
        let mut handles = std::mem::take(&mut *self.inner.handles.lock());
        let joined = tokio::task::spawn_blocking(move || {
            for handle in &mut handles {
                handle.join();
            }
        });
        let _ = tokio::time::timeout(deadline, joined).await;
    }
}

/// What an upgraded connection becomes in a shard, with the bytes read
/// past the handshake: a plain socket or one of our TLS streams is taken
/// over whole (socket and session); anything else (a tokio-rustls stream,
/// a socket hyper-util's auto builder wrapped) is served as it is, and it
/// hands back what it read ahead itself.
fn take_over(upgraded: hyper::upgrade::Upgraded) -> Result<(Adopted, Bytes), Error> {
    let upgraded = match upgraded.downcast::<TokioIo<tokio::net::TcpStream>>() {
        Ok(parts) => {
            // Copy the few bytes hyper read ahead so its buffer is freed.
            let leftover = Bytes::copy_from_slice(&parts.read_buf);
            let socket = parts.io.into_inner().into_std()?;
            return Ok((Adopted::Tcp(socket), leftover));
        }
        Err(upgraded) => upgraded,
    };
    match upgraded.downcast::<TokioIo<crate::tls::TlsStream>>() {
        Ok(parts) => {
            let tls = parts.io.into_inner().into_parts()?;
            let (socket, plaintext, session) = crate::shard::tls::split(tls)?;
            let mut leftover = Vec::with_capacity(parts.read_buf.len() + plaintext.len());
            leftover.extend_from_slice(&parts.read_buf);
            leftover.extend_from_slice(&plaintext);
            let session = Box::new(session);
            Ok((Adopted::Tls { socket, session }, Bytes::from(leftover)))
        }
        Err(upgraded) => Ok((
            Adopted::Stream(Box::new(TokioIo::new(upgraded))),
            Bytes::new(),
        )),
    }
}
