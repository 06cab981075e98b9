//! vigil-ws under whatever serves the HTTP side: `axum::serve` (hyper-util's
//! auto builder, which wraps each socket), the auto builder used directly,
//! and hyper's http1 builder over a plain socket. Each one gets the whole
//! service: heartbeats answered, an echo, a silent peer dropped within the
//! bound; never a 101 followed by EOF.

use crate::support::*;
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use axum::routing::get;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use vigil_ws::{CloseReason, Handler, WsServer};

/// Interval 1 s, timeout 1 s, jitter 0.1: the bound, with a loaded
/// machine's slack.
const SILENCE_BOUND: Duration = Duration::from_secs(6);

async fn websocket(State(ws): State<WsServer>, mut request: Request) -> Response {
    match ws.upgrade(&mut request, None) {
        Ok((response, _)) => response.map(Body::new),
        Err(error) => error.into_response().map(Body::new),
    }
}

fn router(ws: WsServer) -> Router {
    Router::new().route("/ws", get(websocket)).with_state(ws)
}

/// How a test serves the router on a listener.
#[derive(Debug, Clone, Copy)]
enum Serving {
    AxumServe,
    AutoBuilder,
    Http1,
}

async fn serve(serving: Serving, ws: WsServer) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = router(ws);
    let task = match serving {
        Serving::AxumServe => tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        }),
        Serving::AutoBuilder | Serving::Http1 => tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let service = TowerToHyperService::new(app.clone());
                let io = TokioIo::new(stream);
                tokio::spawn(async move {
                    let _ = match serving {
                        Serving::Http1 => hyper::server::conn::http1::Builder::new()
                            .serve_connection(io, service)
                            .with_upgrades()
                            .await
                            .map_err(|_| ()),
                        _ => hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                            .serve_connection_with_upgrades(io, service)
                            .await
                            .map_err(|_| ()),
                    };
                });
            }
        }),
    };
    (addr, task)
}

/// The whole service under `serving`: a healthy client answers pings and
/// stays, an echo comes back, a silent one is dropped for its silence.
async fn served_whole(serving: Serving) -> vigil_ws::Metrics {
    let recorder = Arc::new(Recorder::default());
    let ws =
        WsServer::start(fast_config(), Arc::clone(&recorder) as Arc<dyn Handler>).expect("start");
    let (addr, task) = serve(serving, ws.clone()).await;

    let healthy = GoodClient::connect(addr).await;
    recorder.opened(0, Duration::from_secs(5)).await;
    let mut echo = RawClient::connect(addr).await;
    recorder.opened(1, Duration::from_secs(5)).await;
    echo.send(&frame(fin(TEXT), b"echo:over any stream", true))
        .await;
    let answered = echo.answer_pings_for(Duration::from_millis(1_500)).await;
    assert!(
        answered
            .iter()
            .any(|(first, payload)| first & 0x0F == TEXT && payload == b"over any stream"),
        "{serving:?}: no echo in {answered:?}"
    );

    let _silent = RawClient::connect(addr).await;
    let silent = recorder.opened(2, Duration::from_secs(5)).await;
    let reason = recorder.closed(silent, SILENCE_BOUND).await;
    assert_eq!(reason, CloseReason::HeartbeatTimeout, "{serving:?}");

    assert!(
        !healthy.is_closed(),
        "{serving:?}: the healthy client stays"
    );
    let metrics = ws.metrics();
    assert!(metrics.pongs_received >= 2, "{serving:?}: {metrics:?}");
    task.abort();
    ws.shutdown(Duration::from_secs(2)).await;
    metrics
}

#[tokio::test]
async fn axum_serve_connections_get_heartbeats_echo_and_silence_detection() {
    let metrics = served_whole(Serving::AxumServe).await;
    assert_eq!(metrics.opened, 3);
    assert_eq!(metrics.streams_opened, 3, "axum::serve wraps every socket");
}

#[tokio::test]
async fn hyper_utils_auto_builder_connections_are_served_whole() {
    let metrics = served_whole(Serving::AutoBuilder).await;
    assert_eq!(metrics.streams_opened, 3);
}

#[tokio::test]
async fn hyper_http1_over_a_plain_socket_keeps_the_light_path() {
    let metrics = served_whole(Serving::Http1).await;
    assert_eq!(metrics.opened, 3);
    assert_eq!(
        metrics.streams_opened, 0,
        "plain sockets are taken over whole"
    );
}
