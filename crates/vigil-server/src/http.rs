//! The HTTP side of the server: health and readiness probes, and the
//! WebSocket endpoint (with its connection limit), on hyper's http1.

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use vigil_ws::WsServer;

/// What every HTTP request can reach.
pub(crate) struct App {
    pub(crate) ws: WsServer,
    pub(crate) max_connections: usize,
    /// False once shutdown began: `/readyz` says so, `/ws` refuses.
    pub(crate) ready: AtomicBool,
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

pub(crate) async fn route(
    app: Arc<App>,
    mut request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let response = match request.uri().path() {
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/readyz" if app.ready.load(Ordering::Acquire) => text(StatusCode::OK, "ready\n"),
        "/readyz" => text(StatusCode::SERVICE_UNAVAILABLE, "draining\n"),
        "/ws" if !app.ready.load(Ordering::Acquire) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting down; reconnect to another server\n",
        ),
        "/ws" if app.ws.connections() >= app.max_connections => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "connection limit reached; try again later\n",
        ),
        "/ws" => match app.ws.upgrade(&mut request, None) {
            Ok((response, _)) => response,
            Err(error) => error.into_response(),
        },
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: try /ws, /healthz or /readyz\n",
        ),
    };
    Ok(response)
}
