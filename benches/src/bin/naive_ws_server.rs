//! The naive baseline of issue #3: tokio (multi-thread runtime) + hyper 1 +
//! fastwebsockets, one task per connection, a tokio interval per connection
//! sending a ping, auto-pong on, and a read deadline (interval + timeout) that
//! closes a silent peer. `cargo xtask bench-idle --server naive` measures it.
//!
//! It is deliberately the code one writes first from the crates' examples:
//! keep it that way, it is the yardstick vigil-ws is compared against. (It
//! drops `read_frame` in `select!`, which is not cancel-safe; on loopback with
//! 8-byte pongs a frame is never split, so the measurement is unaffected.)

use std::{process::ExitCode, time::Duration};

use anyhow::{Context, Result};
use bytes::Bytes;
use fastwebsockets::{Frame, OpCode, Payload, WebSocket, upgrade};
use http_body_util::Empty;
use hyper::{
    Request, Response, StatusCode, body::Incoming, server::conn::http1, upgrade::Upgraded,
};
use hyper_util::rt::TokioIo;
use tokio::{
    net::{TcpListener, TcpStream},
    time::{Instant, interval_at, sleep, sleep_until},
};
use vigil_benches::{
    alloc::CountingAllocator,
    server_args::ServerArgs,
    stats::{self, Counters},
};

#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator::new();
static COUNTERS: Counters = Counters::new();

/// How long the accept loop waits after an error (out of file descriptors)
/// before trying again, so it does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

#[derive(Debug, Clone, Copy)]
struct Heartbeat {
    interval: Duration,
    timeout: Duration,
}

fn main() -> ExitCode {
    let args = match ServerArgs::parse("naive_ws_server", std::env::args().skip(1)) {
        Ok(args) => args,
        Err(error) => {
            eprintln!("naive_ws_server: {error:#}");
            return ExitCode::from(2);
        }
    };
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot build the tokio runtime")
        .and_then(|runtime| runtime.block_on(serve(args)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("naive_ws_server: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: ServerArgs) -> Result<()> {
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let local = listener.local_addr()?;
    if let Some(path) = &args.stats_file {
        stats::spawn_writer(path, args.max_lifetime, &COUNTERS, &ALLOC)?;
    }
    eprintln!(
        "naive_ws_server: listening on {local}, ping every {:?}, timeout {:?}, exit after {:?}",
        args.interval, args.timeout, args.max_lifetime
    );
    let heartbeat = Heartbeat {
        interval: args.interval,
        timeout: args.timeout,
    };
    let end = sleep(args.max_lifetime);
    tokio::pin!(end);
    let mut accept_error_reported = false;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut end => {
                eprintln!("naive_ws_server: --max-seconds reached, exiting");
                return Ok(());
            }
        };
        match accepted {
            Ok((stream, _)) => {
                tokio::spawn(serve_http(stream, heartbeat));
            }
            Err(error) => {
                if !accept_error_reported {
                    eprintln!("naive_ws_server: accept failed (reported once): {error}");
                    accept_error_reported = true;
                }
                sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}

async fn serve_http(stream: TcpStream, heartbeat: Heartbeat) {
    let service = hyper::service::service_fn(move |request| handle(request, heartbeat));
    // A peer that fails its handshake is its own problem; nothing to report.
    let _ = http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades()
        .await;
}

async fn handle(
    mut request: Request<Incoming>,
    heartbeat: Heartbeat,
) -> Result<Response<Empty<Bytes>>, hyper::http::Error> {
    if !upgrade::is_upgrade_request(&request) {
        return Response::builder()
            .status(StatusCode::BAD_REQUEST)
            .body(Empty::new());
    }
    let Ok((response, upgrading)) = upgrade::upgrade(&mut request) else {
        return Response::builder()
            .status(StatusCode::BAD_REQUEST)
            .body(Empty::new());
    };
    tokio::spawn(async move {
        if let Ok(ws) = upgrading.await {
            COUNTERS.connection_opened();
            run(ws, heartbeat).await;
            COUNTERS.connection_closed();
        }
    });
    Ok(response)
}

/// Pings every `interval` and closes the peer after `interval + timeout`
/// without an inbound frame; fastwebsockets answers the peer's pings.
async fn run(mut ws: WebSocket<TokioIo<Upgraded>>, heartbeat: Heartbeat) {
    let idle_limit = heartbeat.interval + heartbeat.timeout;
    let mut ticker = interval_at(Instant::now() + heartbeat.interval, heartbeat.interval);
    let deadline = sleep_until(Instant::now() + idle_limit);
    tokio::pin!(deadline);
    let mut ping_id: u64 = 0;
    loop {
        tokio::select! {
            frame = ws.read_frame() => match frame {
                Ok(frame) => {
                    deadline.as_mut().reset(Instant::now() + idle_limit);
                    match frame.opcode {
                        OpCode::Close => return,
                        OpCode::Pong => COUNTERS.pong_received(),
                        _ => {}
                    }
                }
                Err(_) => return,
            },
            _ = ticker.tick() => {
                ping_id += 1;
                let payload = ping_id.to_be_bytes();
                let ping = Frame::new(true, OpCode::Ping, None, Payload::Borrowed(&payload));
                if ws.write_frame(ping).await.is_err() {
                    return;
                }
                COUNTERS.ping_sent();
            }
            () = &mut deadline => return,
        }
    }
}
