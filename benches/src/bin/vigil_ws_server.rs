//! The vigil-ws bench server: vigil-ws embedded in a plain hyper 1 accept
//! loop, exactly as an embedder would write it, measured by `cargo xtask
//! bench-idle --server vigil` beside the naive baseline.
//!
//! One shard (the machine has two cores; the load generator has the other).
//! Heartbeat counts come from vigil-ws's own metrics. With `--http auto`
//! the HTTP side is hyper-util's auto builder (what `axum::serve` runs),
//! which hands vigil-ws a wrapped socket: the general stream path.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::net::TcpListener;
use vigil_benches::alloc::CountingAllocator;
use vigil_benches::server_args::ServerArgs;
use vigil_benches::stats;
use vigil_core::heartbeat::Config as HeartbeatConfig;
use vigil_ws::{CloseReason, Connection, Handler, Message, WsConfig, WsServer};

#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator::new();

/// How long the accept loop waits after an error (out of file descriptors)
/// before trying again, so it does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Idle connections: nothing to do with messages.
struct Idle;

impl Handler for Idle {
    fn on_message(&self, _: &Connection, _: Message) {}

    fn on_close(&self, _: &Connection, _: CloseReason) {}
}

fn main() -> ExitCode {
    let args = match ServerArgs::parse("vigil_ws_server", std::env::args().skip(1)) {
        Ok(args) => args,
        Err(error) => {
            eprintln!("vigil_ws_server: {error:#}");
            return ExitCode::from(2);
        }
    };
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("vigil_ws_server: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: ServerArgs) -> Result<()> {
    let heartbeat = HeartbeatConfig::builder()
        .interval(args.interval)
        .timeout(args.timeout)
        .build()
        .context("invalid heartbeat settings")?;
    let config = WsConfig {
        heartbeat,
        shards: 1,
        ..WsConfig::default()
    };
    let ws = WsServer::start(config, Arc::new(Idle)).context("cannot start vigil-ws")?;
    // The accept loop and hyper's handshakes run on their own small runtime;
    // established connections live on the shard thread.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot build the accept runtime")?;
    runtime.block_on(serve(args, ws))
}

async fn serve(args: ServerArgs, ws: WsServer) -> Result<()> {
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    if let Some(path) = &args.stats_file {
        let metrics = ws.clone();
        let counts = move || {
            let m = metrics.metrics();
            (m.connections, m.pings_sent, m.pongs_received)
        };
        stats::spawn_writer(path, args.max_lifetime, counts, &ALLOC)?;
    }
    eprintln!(
        "vigil_ws_server: listening on {}, ping after {:?} of silence, timeout {:?}",
        listener.local_addr()?,
        args.interval,
        args.timeout
    );
    let deadline = tokio::time::sleep(args.max_lifetime);
    tokio::pin!(deadline);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut deadline => return Ok(()),
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(_) => {
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let ws = ws.clone();
        if args.auto_builder {
            tokio::spawn(serve_with_auto_builder(ws, stream));
        } else {
            tokio::spawn(async move { ws.serve_upgrades(stream).await });
        }
    }
}

/// One connection served by hyper-util's auto builder: every request is a
/// WebSocket handshake.
async fn serve_with_auto_builder(ws: WsServer, stream: tokio::net::TcpStream) {
    let service = hyper::service::service_fn(move |mut request| {
        let answer = match ws.upgrade(&mut request, None) {
            Ok((response, _)) => response,
            Err(error) => error.into_response(),
        };
        async move { Ok::<_, std::convert::Infallible>(answer) }
    });
    let builder =
        hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
    // An error here is the client's: the connection simply ends.
    let _ = builder
        .serve_connection_with_upgrades(hyper_util::rt::TokioIo::new(stream), service)
        .await;
}
