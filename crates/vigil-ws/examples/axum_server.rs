//! Embedding vigil-ws in an axum router: a route hands its request to
//! [`WsServer::upgrade`] and returns the 101 response; everything else in
//! the router stays ordinary axum, served by `axum::serve` as in every axum
//! guide. (Served by hyper's http1 builder over a plain `TcpStream`
//! instead, vigil-ws takes each socket into its shard whole: the lightest
//! path; BENCHMARKS.md has both.)
//!
//! Run: `cargo run -p vigil-ws --example axum_server`, then connect a
//! WebSocket client to `ws://127.0.0.1:9002/ws`.

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::sync::Arc;
use vigil_ws::{CloseReason, Connection, Handler, Message, WsConfig, WsServer};

struct Echo;

impl Handler for Echo {
    fn on_message(&self, conn: &Connection, message: Message) {
        if let Message::Text(text) = message {
            let _ = conn.send_text(text);
        }
    }

    fn on_close(&self, _: &Connection, _: CloseReason) {}
}

async fn websocket(State(ws): State<WsServer>, mut request: Request) -> Response {
    match ws.upgrade(&mut request, None) {
        Ok((response, _id)) => response.map(Body::new),
        Err(error) => error.into_response().map(Body::new),
    }
}

async fn health() -> impl IntoResponse {
    "ok\n"
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ws = WsServer::start(WsConfig::default(), Arc::new(Echo))?;
    let app = Router::new()
        .route("/ws", get(websocket))
        .route("/healthz", get(health))
        .with_state(ws);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:9002").await?;
    eprintln!("listening on ws://127.0.0.1:9002/ws");
    axum::serve(listener, app).await?;
    Ok(())
}
