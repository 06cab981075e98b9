//! `vigil`: the server binary. WebSocket clients join channels and see who
//! is online; vigil-ws keeps every connection honest underneath.
//!
//! Today it serves `/ws` (the JSON protocol of docs/PROTOCOL.md: join,
//! leave, publish, presence, last will), `/healthz` and `/readyz`, with
//! anonymous connections on loopback. Auth, the HTTP API, metrics and the
//! dashboard are the rest of issue #4.

mod api;
mod auth;
mod config;
mod dashboard;
mod http;
mod hub;
mod metrics;
mod protocol;
mod session;

use anyhow::{Context, Result};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
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

/// How long a client may take to send its HTTP request head.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

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
        config::Command::Serve(settings) => settings,
        config::Command::CheckConfig { path } => {
            return match config::check_config_file(&path) {
                Ok(_) => {
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
    init_logs(settings.log_json);
    match serve(settings) {
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

fn serve(settings: config::Settings) -> Result<()> {
    let heartbeat = HeartbeatConfig::builder()
        .interval(settings.heartbeat_interval)
        .timeout(settings.heartbeat_timeout)
        .jitter(settings.heartbeat_jitter)
        .build()
        .context("invalid heartbeat settings")?;
    let ws_config = WsConfig {
        heartbeat,
        max_message_size: settings.max_message_bytes,
        send_hello: false, // the welcome message advertises the heartbeat
        ..WsConfig::default()
    };
    let presence = PresenceConfig::builder()
        .leave_grace(settings.leave_grace)
        .build()
        .context("invalid presence settings")?;
    let hub = Arc::new(hub::Hub::new(
        presence,
        settings.max_channels_per_connection,
    ));
    let sessions = Arc::new(session::Sessions::new(Arc::clone(&hub), &ws_config));
    let ws = WsServer::start(
        ws_config,
        Arc::clone(&sessions) as Arc<dyn vigil_ws::Handler>,
    )
    .context("cannot start the WebSocket shards")?;
    let app = Arc::new(http::App {
        ws: ws.clone(),
        max_connections: settings.max_connections,
        ready: AtomicBool::new(true),
        auth: auth::Auth::new(settings.jwt_secret.as_deref()),
        sessions,
        hub: Arc::clone(&hub),
        api_key: settings.api_key.clone(),
        max_body: settings.max_message_bytes,
        max_per_ip: settings.max_connections_per_ip,
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot build the HTTP runtime")?;
    runtime.block_on(async move {
        let listener = TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("cannot listen on {}", settings.listen))?;
        tracing::info!(address = %listener.local_addr()?, "vigil listening; WebSocket endpoint /ws");
        tokio::spawn(Arc::clone(&hub).run_timers());
        let shutdown = shutdown_signal();
        tokio::pin!(shutdown);
        let mut reported_accept_error = false;
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                () = &mut shutdown => break,
            };
            let (stream, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    if !reported_accept_error {
                        tracing::warn!(%error, "accept failed (out of file descriptors?); backing off");
                        reported_accept_error = true;
                    }
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            };
            reported_accept_error = false;
            let app = Arc::clone(&app);
            tokio::spawn(async move {
                let service = service_fn(move |request| http::route(Arc::clone(&app), peer, request));
                let _ = http1::Builder::new()
                    // A client that never finishes its request head must
                    // not hold a socket (slowloris).
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(HANDSHAKE_TIMEOUT)
                    .serve_connection(TokioIo::new(stream), service)
                    .with_upgrades()
                    .await;
            });
        }
        tracing::info!("shutting down: closing connections with 1001");
        app.ready.store(false, Ordering::Release);
        drop(listener);
        let drain = async {
            drain_connections(&hub).await;
            ws.shutdown(settings.shutdown_deadline).await;
        };
        tokio::select! {
            () = drain => tracing::info!("stopped"),
            () = shutdown_signal() => tracing::warn!("second signal: exiting at once"),
        }
        Ok(())
    })
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
