//! [`Connector`]: a client connection that heartbeats its server, notices a
//! dead or half-open server by itself, reconnects with vigil-core's backoff
//! (random first delay, exponential growth with full jitter, cap, reset
//! after a stable period) and calls a resume hook after every reconnect.
//! `ws://` and `wss://` (rustls; the system's roots, a CA file, or your own
//! configuration).

use crate::Error;
use crate::config::WsConfig;
use crate::handler::{CloseReason, Connection, Handler, Message};
use crate::server::WsServer;
use crate::shard::transport::Adopted;
use bytes::Bytes;
use http_body_util::Empty;
use hyper::Request;
use hyper::header::{CONNECTION, HOST, UPGRADE};
use parking_lot::Mutex;
use std::future::Future;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{Notify, watch};
use vigil_core::backoff::{Backoff, BackoffConfig};

/// How long the TCP connect and the opening handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A hook run on every reconnect (not the first connect), on the shard
/// thread, before any message of the new connection is delivered: resend
/// subscriptions there.
pub type ResumeHook = Arc<dyn Fn(&Connection) + Send + Sync>;

/// Builds a reconnecting client connection.
pub struct Connector {
    url: String,
    /// For `wss://`: `None` until asked, then the system's roots.
    tls: Option<Arc<rustls::ClientConfig>>,
    config: WsConfig,
    backoff: BackoffConfig,
    resume: Option<ResumeHook>,
    seed: u64,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl Connector {
    /// A connector for `url` (`ws://host:port/path`), heartbeating with
    /// `config.heartbeat` and reconnecting per `backoff`.
    pub fn new(url: impl Into<String>, config: WsConfig, backoff: BackoffConfig) -> Self {
        Self {
            url: url.into(),
            tls: None,
            config,
            backoff,
            resume: None,
            seed: std::hash::BuildHasher::hash_one(
                &std::collections::hash_map::RandomState::new(),
                0,
            ),
        }
    }

    /// For `wss://`: checks the server's certificate with `config` (your
    /// roots, client certificates, ...) instead of the system's roots.
    pub fn tls_config(mut self, config: Arc<rustls::ClientConfig>) -> Self {
        self.tls = Some(config);
        self
    }

    /// For `wss://`: trusts the certificate authorities in the PEM file at
    /// `path`, and only them (a private CA), instead of the system's roots.
    pub fn ca_file(self, path: impl AsRef<std::path::Path>) -> Result<Self, Error> {
        use rustls::pki_types::{CertificateDer, pem::PemObject};
        let path = path.as_ref();
        let mut roots = rustls::RootCertStore::empty();
        let certificates = CertificateDer::pem_file_iter(path)
            .map_err(|e| Error::Tls(format!("{}: {e}", path.display())))?;
        for certificate in certificates {
            let certificate =
                certificate.map_err(|e| Error::Tls(format!("{}: {e}", path.display())))?;
            roots
                .add(certificate)
                .map_err(|e| Error::Tls(format!("{}: {e}", path.display())))?;
        }
        if roots.is_empty() {
            return Err(Error::Tls(format!(
                "{} holds no certificate",
                path.display()
            )));
        }
        Ok(self.tls_config(client_config(roots)?))
    }

    /// Runs `hook` after each reconnect.
    pub fn on_resume(mut self, hook: ResumeHook) -> Self {
        self.resume = Some(hook);
        self
    }

    /// Seeds the backoff jitter (tests and simulations); random by default.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Connects and keeps reconnecting until the handle is stopped. Must be
    /// called inside a tokio runtime.
    pub fn spawn(self, handler: Arc<dyn Handler>) -> Result<ConnectorHandle, Error> {
        let mut target = Target::parse(&self.url)?;
        if target.secure {
            target.tls = Some(match self.tls {
                Some(config) => config,
                None => system_roots()?,
            });
        }
        let state = Arc::new(State {
            current: watch::channel(None).0,
            closed: Notify::new(),
            last_close: Mutex::new(None),
            connects: AtomicU64::new(0),
            resume: self.resume,
            inner: handler,
        });
        let mut config = self.config;
        config.shards = 1;
        config.send_hello = false;
        let shard = WsServer::start_with_role(
            config,
            Arc::clone(&state) as Arc<dyn Handler>,
            "vigil-ws-client",
        )?;
        let task = tokio::spawn(run(
            target,
            self.backoff,
            self.seed,
            shard.clone(),
            Arc::clone(&state),
        ));
        Ok(ConnectorHandle { state, shard, task })
    }
}

/// Controls a running [`Connector`].
pub struct ConnectorHandle {
    state: Arc<State>,
    shard: WsServer,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for ConnectorHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectorHandle")
            .field("connects", &self.connects())
            .finish_non_exhaustive()
    }
}

impl ConnectorHandle {
    /// The live connection, if connected.
    pub fn connection(&self) -> Option<Connection> {
        self.state.current.borrow().clone()
    }

    /// Successful connects so far (the first one included).
    pub fn connects(&self) -> u64 {
        self.state.connects.load(Ordering::Relaxed)
    }

    /// Why the previous connection ended.
    pub fn last_close(&self) -> Option<CloseReason> {
        *self.state.last_close.lock()
    }

    /// Waits until connected (at most `timeout`).
    ///
    /// Cancel safety: cancel-safe.
    pub async fn connected(&self, timeout: Duration) -> Option<Connection> {
        let mut current = self.state.current.subscribe();
        let found = tokio::time::timeout(timeout, current.wait_for(Option::is_some)).await;
        found.ok()?.ok().and_then(|connection| connection.clone())
    }

    /// Stops reconnecting and closes the connection with 1001 (going away).
    /// Dropping the handle does the same without waiting.
    pub async fn stop(self) {
        self.task.abort();
        self.shard.shutdown(Duration::from_secs(2)).await;
    }
}

impl Drop for ConnectorHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct State {
    current: watch::Sender<Option<Connection>>,
    closed: Notify,
    last_close: Mutex<Option<CloseReason>>,
    connects: AtomicU64,
    resume: Option<ResumeHook>,
    inner: Arc<dyn Handler>,
}

impl Handler for State {
    fn on_open(&self, conn: &Connection) {
        let previous = self.connects.fetch_add(1, Ordering::Relaxed);
        self.current.send_replace(Some(conn.clone()));
        self.inner.on_open(conn);
        if previous > 0
            && let Some(resume) = &self.resume
        {
            resume(conn);
        }
    }

    fn on_message(&self, conn: &Connection, message: Message) {
        self.inner.on_message(conn, message);
    }

    fn on_liveness(&self, conn: &Connection, suspect: bool) {
        self.inner.on_liveness(conn, suspect);
    }

    fn on_close(&self, conn: &Connection, reason: CloseReason) {
        self.current.send_replace(None);
        *self.last_close.lock() = Some(reason);
        self.inner.on_close(conn, reason);
        self.closed.notify_one();
    }
}

async fn run(
    target: Target,
    backoff: BackoffConfig,
    seed: u64,
    shard: WsServer,
    state: Arc<State>,
) {
    let mut policy = Backoff::new(seed);
    let mut first = true;
    loop {
        if !first {
            tokio::time::sleep(policy.next_delay(&backoff)).await;
        }
        first = false;
        let Ok(Ok((stream, leftover))) =
            tokio::time::timeout(HANDSHAKE_TIMEOUT, target.connect()).await
        else {
            continue;
        };
        let closed = state.closed.notified();
        tokio::pin!(closed);
        closed.as_mut().enable();
        let mut current = state.current.subscribe();
        if shard.adopt_client(stream, leftover).is_err() {
            return; // shut down
        }
        // The shard opens the connection at once unless it could not take
        // the socket; then it is gone and we try again.
        let wait = tokio::time::timeout(HANDSHAKE_TIMEOUT, current.wait_for(Option::is_some));
        // (Only a bool survives the statement: the watch guard is not Send.)
        if !matches!(wait.await, Ok(Ok(_))) {
            continue;
        }
        policy.handle_connected(tokio::time::Instant::now().into_std());
        closed.await;
        policy.handle_disconnected(tokio::time::Instant::now().into_std(), &backoff);
    }
}

/// Where to connect: `ws://host:port/path` or `wss://...`.
#[derive(Clone)]
struct Target {
    url: String,
    authority: String,
    /// The host, as the server's certificate must name it.
    host: String,
    path: String,
    /// `wss://`.
    secure: bool,
    /// For `wss://`: how to check the server (set by `spawn`).
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl Target {
    fn parse(url: &str) -> Result<Self, Error> {
        let bad = |reason| Error::Url {
            url: url.to_owned(),
            reason,
        };
        let (rest, secure) = if let Some(rest) = url.strip_prefix("ws://") {
            (rest, false)
        } else if let Some(rest) = url.strip_prefix("wss://") {
            (rest, true)
        } else {
            return Err(bad("the scheme must be ws:// or wss://"));
        };
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        if authority.is_empty() {
            return Err(bad("missing host"));
        }
        // `[::1]:8443`, `[::1]`, `example.com:8443`, `example.com`.
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if !port.contains(']') => (host, Some(port)),
            _ => (authority, None),
        };
        let default_port = if secure { "443" } else { "80" };
        let authority = format!("{host}:{}", port.unwrap_or(default_port));
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let path = if path.is_empty() { "/" } else { path };
        Ok(Self {
            url: url.to_owned(),
            authority,
            host,
            path: path.to_owned(),
            secure,
            tls: None,
        })
    }

    /// Opens the connection (TCP, then TLS for `wss://`) and performs the
    /// opening handshake; returns what the shard takes over and any bytes
    /// read past the handshake.
    async fn connect(&self) -> Result<(Adopted, Bytes), Error> {
        let connect_error = |source: Box<dyn std::error::Error + Send + Sync>| Error::Connect {
            url: self.url.clone(),
            source,
        };
        let socket = tokio::net::TcpStream::connect(&self.authority)
            .await
            .map_err(|e| connect_error(e.into()))?;
        let Some(tls) = &self.tls else {
            let upgraded = self.handshake(socket).await?;
            let (io, leftover) = take::<tokio::net::TcpStream>(upgraded)
                .ok_or_else(|| connect_error("hyper changed the socket's type".into()))?;
            return Ok((Adopted::Tcp(io.into_std()?), leftover));
        };
        let name = rustls::pki_types::ServerName::try_from(self.host.clone())
            .map_err(|e| Error::Tls(format!("{:?} is not a server name: {e}", self.host)))?;
        let stream = tokio_rustls::TlsConnector::from(Arc::clone(tls))
            .connect(name, socket)
            .await
            .map_err(|e| connect_error(e.into()))?;
        let upgraded = self.handshake(stream).await?;
        let (io, leftover) =
            take::<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>(upgraded)
                .ok_or_else(|| connect_error("hyper changed the stream's type".into()))?;
        Ok((Adopted::Stream(Box::new(io)), leftover))
    }

    /// The opening handshake over `stream`; the connection hyper hands
    /// back.
    async fn handshake<S>(&self, stream: S) -> Result<hyper::upgrade::Upgraded, Error>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
    {
        let connect_error = |source: Box<dyn std::error::Error + Send + Sync>| Error::Connect {
            url: self.url.clone(),
            source,
        };
        let key = fastwebsockets::handshake::generate_key();
        let request = Request::builder()
            .method("GET")
            .uri(&self.path)
            .header(HOST, &self.authority)
            .header(UPGRADE, "websocket")
            .header(CONNECTION, "upgrade")
            .header("Sec-WebSocket-Key", &key)
            .header("Sec-WebSocket-Version", "13")
            .body(Empty::<Bytes>::new())
            .map_err(|e| connect_error(e.into()))?;
        let (websocket, response) =
            fastwebsockets::handshake::client(&SpawnExecutor, request, stream)
                .await
                .map_err(|e| connect_error(e.into()))?;
        let accept = response
            .headers()
            .get("sec-websocket-accept")
            .map(|v| v.as_bytes());
        if accept != Some(crate::upgrade::accept_key(key.as_bytes()).as_bytes()) {
            return Err(connect_error(
                "the server's Sec-WebSocket-Accept does not match our key".into(),
            ));
        }
        Ok(websocket.into_inner().into_inner())
    }
}

/// The stream `S` an upgraded connection was made over, and the bytes
/// hyper read past the handshake; `None` if it was made over another type.
fn take<S>(upgraded: hyper::upgrade::Upgraded) -> Option<(S, Bytes)>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + 'static,
{
    let parts = upgraded.downcast::<hyper_util::rt::TokioIo<S>>().ok()?;
    Some((
        parts.io.into_inner(),
        Bytes::copy_from_slice(&parts.read_buf),
    ))
}

/// A client configuration trusting `roots`.
fn client_config(roots: rustls::RootCertStore) -> Result<Arc<rustls::ClientConfig>, Error> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A configuration trusting the system's roots (the platform's store).
fn system_roots() -> Result<Arc<rustls::ClientConfig>, Error> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = rustls::RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        let why = found
            .errors
            .first()
            .map_or_else(|| "none found".to_owned(), ToString::to_string);
        return Err(Error::Tls(format!(
            "no usable root certificate in the system's store ({why}); give a CA file"
        )));
    }
    client_config(roots)
}

/// Runs hyper's client connection task on the current tokio runtime.
struct SpawnExecutor;

impl<F> hyper::rt::Executor<F> for SpawnExecutor
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, future: F) {
        tokio::spawn(future);
    }
}
