//! vigil-ws inside an axum router: served by hyper's http1 builder it works;
//! served by `axum::serve` (hyper-util's auto builder, which wraps the
//! socket) the connection is refused, closed and counted, never lost
//! silently.

use crate::support::*;
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use axum::routing::get;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use vigil_ws::{Handler, WsServer};

async fn websocket(State(ws): State<WsServer>, mut request: Request) -> Response {
    match ws.upgrade(&mut request, None) {
        Ok((response, _)) => response.map(Body::new),
        Err(error) => error.into_response().map(Body::new),
    }
}

fn router(ws: WsServer) -> Router {
    Router::new().route("/ws", get(websocket)).with_state(ws)
}

#[tokio::test]
async fn an_axum_router_served_by_hyper_http1_upgrades() {
    let recorder = Arc::new(Recorder::default());
    let ws =
        WsServer::start(fast_config(), Arc::clone(&recorder) as Arc<dyn Handler>).expect("start");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = router(ws.clone());
    let accept = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let service = TowerToHyperService::new(app.clone());
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .with_upgrades(),
            );
        }
    });
    let client = GoodClient::connect(addr).await;
    recorder.opened(0, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert!(!client.is_closed());
    assert!(ws.metrics().pongs_received >= 1);
    accept.abort();
    ws.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test]
async fn axum_serve_connections_are_refused_and_counted_not_lost() {
    let recorder = Arc::new(Recorder::default());
    let ws =
        WsServer::start(fast_config(), Arc::clone(&recorder) as Arc<dyn Handler>).expect("start");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let serve = tokio::spawn(axum::serve(listener, router(ws.clone())).into_future());
    let mut client = RawClient::connect(addr).await;
    assert!(
        client.sees_eof(Duration::from_secs(5)).await,
        "the refused socket is closed"
    );
    assert_eq!(ws.metrics().upgrades_refused, 1);
    assert!(recorder.events().is_empty());
    serve.abort();
    ws.shutdown(Duration::from_secs(2)).await;
}
