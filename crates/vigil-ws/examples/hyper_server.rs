//! Embedding vigil-ws in a plain hyper 1 server: your service decides who
//! may connect (here: the path and the Origin), vigil-ws does the rest.
//!
//! Run: `cargo run -p vigil-ws --example hyper_server`, then connect a
//! WebSocket client to `ws://127.0.0.1:9001/ws`; every text message is
//! echoed back.

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use tokio::net::TcpListener;
use vigil_ws::{CloseReason, Connection, Handler, Message, WsConfig, WsServer};

struct Echo;

impl Handler for Echo {
    fn on_message(&self, conn: &Connection, message: Message) {
        if let Message::Text(text) = message {
            let _ = conn.send_text(text);
        }
    }

    fn on_close(&self, conn: &Connection, reason: CloseReason) {
        eprintln!("connection {:?} closed: {}", conn.id(), reason.label());
    }
}

fn refuse(status: StatusCode, reason: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(reason.as_bytes())));
    *response.status_mut() = status;
    response
}

async fn route<B>(
    ws: WsServer,
    mut request: Request<B>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    if request.uri().path() != "/ws" {
        return Ok(refuse(StatusCode::NOT_FOUND, "only /ws is served\n"));
    }
    // Cross-site WebSocket hijacking: a browser always sends its Origin.
    let origin = request
        .headers()
        .get("origin")
        .and_then(|o| o.to_str().ok());
    if origin.is_some_and(|origin| origin != "http://127.0.0.1:9001") {
        return Ok(refuse(StatusCode::FORBIDDEN, "origin not allowed\n"));
    }
    Ok(match ws.upgrade(&mut request, None) {
        Ok((response, _id)) => response,
        Err(error) => error.into_response(),
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ws = WsServer::start(WsConfig::default(), Arc::new(Echo))?;
    let listener = TcpListener::bind("127.0.0.1:9001").await?;
    eprintln!("listening on ws://127.0.0.1:9001/ws");
    loop {
        let (stream, _) = listener.accept().await?;
        let ws = ws.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| route(ws.clone(), request));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades()
                .await;
        });
    }
}
