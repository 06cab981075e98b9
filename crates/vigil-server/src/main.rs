//! `vigil`: the server binary. WebSocket clients join channels and see who
//! is online; vigil-ws keeps every connection honest underneath.
//!
//! It serves `/ws` (the JSON protocol of docs/PROTOCOL.md), the dashboard
//! at `/`, the HTTP API under `/api/`, `/healthz`, `/readyz` and
//! `/metrics`. This file is the process: settings, logs, the accept loop
//! and the graceful shutdown; [`accepted`] takes each socket to hyper and
//! [`http`] routes each request.

mod accepted;
mod admission;
mod api;
mod auth;
mod cluster;
mod config;
mod dashboard;
mod files;
mod heap;
mod http;
mod hub;
mod metrics;
mod namespace;
mod overview;
mod protocol;
mod proxy;
mod rejections;
mod session;
mod tls;

use anyhow::{Context, Result};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::net::TcpListener;
use vigil_core::heartbeat::Config as HeartbeatConfig;
use vigil_core::presence::PresenceConfig;
use vigil_ws::{WsConfig, WsServer};

/// How long the accept loop waits after an error (out of file descriptors)
/// before trying again, so it does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Accept errors are logged at most once per this interval, with a count.
const ACCEPT_ERROR_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// How long a cluster node may take, at shutdown, to tell Redis it leaves.
const CLUSTER_FAREWELL_DEADLINE: Duration = Duration::from_secs(2);

fn main() -> ExitCode {
    let command = match config::parse(std::env::args_os(), |key| std::env::var(key).ok()) {
        Ok(command) => command,
        // --help, --version and malformed command lines: clap's own output.
        Err(config::ConfigError::Usage(error)) => error.exit(),
        Err(error) => {
            eprintln!("vigil: {error}");
            return ExitCode::from(2);
        }
    };
    let settings = match command {
        config::Command::Serve(settings) => *settings,
        config::Command::CheckConfig { path } => {
            let checked = config::check_config_file(&path).map_err(|e| e.to_string());
            let keys = checked.as_ref().map(|settings| {
                let keys = auth::keys::public_keys(
                    settings.jwt_public_key_file.as_deref(),
                    settings.jwt_jwks_file.as_deref(),
                )
                .map_err(|e| e.to_string());
                match (&settings.tls_cert, &settings.tls_key) {
                    (Some(cert), Some(key)) => keys.and_then(|keys| {
                        tls::load(cert, key)
                            .map(|_| keys)
                            .map_err(|e| e.to_string())
                    }),
                    _ => keys,
                }
            });
            return match keys {
                Ok(Err(error)) => {
                    eprintln!("{}: {error}", path.display());
                    ExitCode::from(2)
                }
                Ok(Ok(_)) => {
                    println!("{}: ok", path.display());
                    ExitCode::SUCCESS
                }
                Err(error) => {
                    eprintln!("{error}");
                    ExitCode::from(2)
                }
            };
        }
    };
    // Before anything opens files: a production host's hard limit is what
    // the operator allows; the soft one is only a default (often 1,024).
    let raised = files::raise_open_file_limit();
    let open_files = files::open_file_limit();
    let max_connections = match settings.connection_limit(open_files) {
        Ok(limit) => limit,
        Err(error) => {
            eprintln!("vigil: {error}");
            return ExitCode::from(2);
        }
    };
    let public_keys = match auth::keys::public_keys(
        settings.jwt_public_key_file.as_deref(),
        settings.jwt_jwks_file.as_deref(),
    ) {
        Ok(keys) => keys,
        Err(error) => {
            eprintln!("vigil: {error}");
            return ExitCode::from(2);
        }
    };
    let tls = match (&settings.tls_cert, &settings.tls_key) {
        (Some(cert), Some(key)) => match tls::Tls::new(cert, key) {
            Ok(tls) => Some(Arc::new(tls)),
            Err(error) => {
                eprintln!("vigil: {error}");
                return ExitCode::from(2);
            }
        },
        _ => None,
    };
    init_logs(settings.log_json);
    match raised {
        Ok(Some((before, after))) => {
            tracing::info!(
                before,
                after,
                "raised the soft open-file limit to the hard limit"
            );
        }
        Ok(None) => {}
        Err(error) => tracing::warn!(%error, "could not raise the soft open-file limit"),
    }
    tracing::info!(
        max_connections,
        open_file_limit = open_files.map_or_else(|| "unlimited".to_owned(), |n| n.to_string()),
        "connection limit"
    );
    match serve(settings, max_connections, public_keys, tls) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logs(json: bool) {
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal());
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn serve(
    settings: config::Settings,
    max_connections: usize,
    public_keys: Vec<auth::keys::VerificationKey>,
    tls: Option<Arc<tls::Tls>>,
) -> Result<()> {
    let token_secret = if settings.jwt_secret.is_none() && settings.tokens_configured() {
        None
    } else {
        Some(
            auth::TokenSecret::configured_or_generated(settings.jwt_secret.as_deref())
                .context("cannot read /dev/urandom for a development secret")?,
        )
    };
    if let Some(auth::TokenSecret::Development(secret)) = &token_secret {
        // Printed once, here: it exists only in this process.
        tracing::info!(
            development_secret = %secret,
            "no jwt_secret configured: anonymous clients are accepted (loopback only), and so are \
             HS256 tokens signed with this development secret, valid until the process exits"
        );
    }
    let auth = Arc::new(auth::Auth::new(
        token_secret.as_ref(),
        public_keys,
        auth::ClaimRules {
            issuer: settings.jwt_issuer.clone(),
            audience: settings.jwt_audience.clone(),
            leeway: settings.jwt_leeway,
        },
        settings.allowed_origins.clone(),
    ));
    let heartbeat = HeartbeatConfig::builder()
        .interval(settings.heartbeat_interval)
        .timeout(settings.heartbeat_timeout)
        .jitter(settings.heartbeat_jitter)
        .build()
        .context("invalid heartbeat settings")?;
    let shards = settings.shard_count(std::thread::available_parallelism().ok());
    tracing::info!(shards, "connection shards");
    let ws_config = WsConfig {
        heartbeat,
        shards,
        max_message_size: settings.max_message_bytes,
        send_hello: false, // the welcome message advertises the heartbeat
        ..WsConfig::default()
    };
    let presence = PresenceConfig::builder()
        .leave_grace(settings.leave_grace)
        .build()
        .context("invalid presence settings")?;
    let node = match &settings.cluster {
        Some(_) => Some(cluster::node_id().context("cannot read /dev/urandom for a node id")?),
        None => None,
    };
    let cluster = node.as_deref().map(cluster::outbound);
    let hub = Arc::new(hub::Hub::new(
        presence,
        settings.max_channels_per_connection,
        Arc::new(settings.namespaces.clone()),
        cluster.as_ref().map(|(outbound, _, _)| outbound.clone()),
    ));
    // Rate-limit buckets count from now (8 bytes a bucket).
    let origin = tokio::time::Instant::now().into_std();
    let limits = session::RequestLimits {
        requests: rate_limit(settings.max_requests_per_second, 2, origin)?,
        // A client that reconnects re-joins all its channels at once.
        joins: vigil_core::rate::RateLimit::new(
            u32::try_from(settings.max_joins_per_second).unwrap_or(u32::MAX),
            u32::try_from(
                settings
                    .max_channels_per_connection
                    .max(settings.max_joins_per_second),
            )
            .unwrap_or(u32::MAX),
            origin,
        )
        .context("invalid join rate limit")?,
        publishes: rate_limit(settings.max_publishes_per_second, 2, origin)?,
    };
    let sessions = Arc::new(session::Sessions::new(
        Arc::clone(&hub),
        Arc::clone(&auth),
        &ws_config,
        limits,
        node.as_deref(),
    ));
    let ws = WsServer::start(
        ws_config,
        Arc::clone(&sessions) as Arc<dyn vigil_ws::Handler>,
    )
    .context("cannot start the WebSocket shards")?;
    let app = Arc::new(http::App {
        ws: ws.clone(),
        admission: admission::Admission::new(max_connections, settings.max_connections_per_ip),
        ready: AtomicBool::new(true),
        auth: Arc::clone(&auth),
        serve_metrics: !settings.disable_metrics,
        rejections: rejections::Rejections::default(),
        sessions,
        hub: Arc::clone(&hub),
        api_key: settings.api_key.clone(),
        max_body: settings.max_message_bytes,
        trusted_proxies: proxy::TrustedProxies::new(settings.trusted_proxies.clone()),
        anonymous_from_anywhere: settings.allow_insecure_public,
        cluster: cluster.as_ref().map(|(_, _, status)| Arc::clone(status)),
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot build the HTTP runtime")?;
    runtime.block_on(async move {
        let listener = listen(settings.listen, settings.reuse_port)
            .with_context(|| format!("cannot listen on {}", settings.listen))?;
        tracing::info!(
            address = %listener.local_addr()?,
            tls = tls.is_some(),
            "vigil listening; WebSocket endpoint /ws"
        );
        tokio::spawn(accepted::reload_on_hangup(tls.clone()));
        let mut farewell = None;
        if let (Some(url), Some(node), Some((_, receiver, status))) =
            (&settings.cluster, node, cluster)
        {
            tracing::info!(%node, cluster = %cluster::redacted(url), "cluster node");
            farewell = Some(
                cluster::start(
                    url,
                    node,
                    settings.cluster_node_timeout,
                    Arc::clone(&hub),
                    receiver,
                    status,
                )
                .context("cannot start the cluster link")?,
            );
        }
        tokio::spawn(Arc::clone(&hub).run_timers());
        tokio::spawn(Arc::clone(&app.sessions).close_expired());
        let shutdown = shutdown_signal();
        tokio::pin!(shutdown);
        let mut accept_errors = AcceptErrors::default();
        let handshakes =
            admission::Admission::new(settings.max_handshakes, settings.handshakes_per_ip());
        loop {
            // Every handshake place taken: accept nothing until one frees
            // (new sockets wait in the listen backlog; see Admission::room).
            tokio::select! {
                () = handshakes.room() => {}
                () = &mut shutdown => break,
            }
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                () = &mut shutdown => break,
            };
            let (stream, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    accept_errors.failed(&error, tokio::time::Instant::now());
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            };
            accept_errors.succeeded(tokio::time::Instant::now());
            // A socket in its HTTP phase holds a place until its request is
            // answered or upgraded: trickling clients (slowloris) cannot
            // hold every file, and one address cannot hold every place.
            let place = if settings.proxy_protocol || app.trusted_proxies.contains(peer.ip()) {
                handshakes.admit_unlimited_address()
            } else {
                handshakes.admit(peer.ip())
            };
            let Ok(place) = place else {
                app.rejections.count(rejections::Rejection::HandshakeLimit);
                accepted::refuse_at_once(stream);
                continue;
            };
            let accepted = accepted::Accepted {
                app: Arc::clone(&app),
                tls: tls.clone(),
                proxy_protocol: settings.proxy_protocol,
            };
            tokio::spawn(accepted.serve(stream, peer, place));
        }
        tracing::info!("shutting down: closing connections with 1001");
        app.ready.store(false, Ordering::Release);
        drop(listener);
        let drain = async {
            drain_connections(&hub).await;
            ws.shutdown(settings.shutdown_deadline).await;
            // The leaves of the connections just closed go out, and this
            // node leaves the cluster instead of waiting to be found dead.
            if let Some(farewell) = farewell {
                farewell.leave(CLUSTER_FAREWELL_DEADLINE).await;
            }
        };
        tokio::select! {
            () = drain => tracing::info!("stopped"),
            () = shutdown_signal() => tracing::warn!("second signal: exiting at once"),
        }
        Ok(())
    })
}

/// `rate` requests a second with bursts of `burst_factor` times that.
fn rate_limit(
    rate: usize,
    burst_factor: u32,
    origin: std::time::Instant,
) -> Result<vigil_core::rate::RateLimit> {
    let rate = u32::try_from(rate).unwrap_or(u32::MAX);
    vigil_core::rate::RateLimit::new(rate, rate.saturating_mul(burst_factor), origin)
        .context("invalid request rate limit")
}

/// Accept failures (mostly running out of file descriptors), logged at
/// most once per [`ACCEPT_ERROR_LOG_INTERVAL`] so that a full process
/// neither spins nor floods its log.
#[derive(Debug, Default)]
struct AcceptErrors {
    last_logged: Option<tokio::time::Instant>,
    /// Failures since the last line.
    unlogged: u64,
}

impl AcceptErrors {
    fn failed(&mut self, error: &std::io::Error, now: tokio::time::Instant) {
        self.unlogged += 1;
        let due = self
            .last_logged
            .is_none_or(|at| now.duration_since(at) >= ACCEPT_ERROR_LOG_INTERVAL);
        if due {
            tracing::warn!(
                %error,
                failures = self.unlogged,
                "accept failed (out of file descriptors?); backing off {}ms between attempts",
                ACCEPT_BACKOFF.as_millis()
            );
            self.last_logged = Some(now);
            self.unlogged = 0;
        }
    }

    /// An accept worked again: the failures not yet logged are reported,
    /// at most once per interval too (a process at its limit alternates
    /// between failing and succeeding).
    fn succeeded(&mut self, now: tokio::time::Instant) {
        let due = self
            .last_logged
            .is_none_or(|at| now.duration_since(at) >= ACCEPT_ERROR_LOG_INTERVAL);
        if self.unlogged > 0 && due {
            self.last_logged = Some(now);
            tracing::warn!(
                failures = self.unlogged,
                "accepting again after failures not logged yet"
            );
            self.unlogged = 0;
        }
    }
}

/// Clients told to go per second during a shutdown, so that they do not all
/// reconnect to the other servers in the same instant.
const DRAIN_RATE: usize = 2_000;

/// Sends 1001 with a reconnect hint to every client, at most `DRAIN_RATE`
/// a second.
async fn drain_connections(hub: &hub::Hub) {
    let step = DRAIN_RATE / 10;
    for batch in hub.connections().chunks(step) {
        for conn in batch {
            let _ = conn.close(1001, "server shutting down; reconnect later");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Connections the kernel may hold for us before we accept them. tokio's
/// `TcpListener::bind` asks for 1,024; every client of a restarted server
/// comes back within a second (`cargo xtask loadtest storm`), and a longer
/// queue absorbs that burst. The kernel caps it at `net.core.somaxconn`.
const LISTEN_BACKLOG: u32 = 8192;

/// A listening socket on `addr` with [`LISTEN_BACKLOG`] (and SO_REUSEADDR,
/// as tokio's `bind` sets it, so a restarted server gets its port back);
/// with `reuse_port`, SO_REUSEPORT too: several processes share the port
/// and the kernel spreads new connections over them.
fn listen(addr: std::net::SocketAddr, reuse_port: bool) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    if reuse_port {
        socket.set_reuseport(true)?;
    }
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Resolves on SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
