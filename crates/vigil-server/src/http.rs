//! The HTTP side of the server: health and readiness probes, and the
//! WebSocket endpoint (with its connection limit), on hyper's http1.

use crate::auth::{Auth, SUBPROTOCOL};
use crate::hub::Hub;
use crate::metrics::{self, ServerStats};
use crate::session::Sessions;
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
    pub(crate) auth: Auth,
    pub(crate) sessions: Arc<Sessions>,
    pub(crate) hub: Arc<Hub>,
    pub(crate) api_key: Option<String>,
    pub(crate) max_body: usize,
    pub(crate) max_per_ip: usize,
}

/// A 503 that tells clients when to come back (`Retry-After`, seconds).
fn unavailable(body: &'static str, retry_after_secs: u32) -> Response<Full<Bytes>> {
    let mut response = text(StatusCode::SERVICE_UNAVAILABLE, body);
    response.headers_mut().insert(
        hyper::header::RETRY_AFTER,
        hyper::header::HeaderValue::from(retry_after_secs),
    );
    response
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
    peer: std::net::SocketAddr,
    mut request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    if matches!(*request.method(), hyper::Method::GET | hyper::Method::HEAD)
        && let Some(page) = crate::dashboard::page(request.uri().path())
    {
        return Ok(page);
    }
    if request.uri().path().starts_with("/api/") {
        return Ok(
            crate::api::handle(&app.hub, app.api_key.as_deref(), app.max_body, request).await,
        );
    }
    let response = match request.uri().path() {
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/readyz" if app.ready.load(Ordering::Acquire) => text(StatusCode::OK, "ready\n"),
        "/readyz" => text(StatusCode::SERVICE_UNAVAILABLE, "draining\n"),
        "/metrics" => metrics_page(&app),
        "/ws" if !app.ready.load(Ordering::Acquire) => {
            unavailable("shutting down; reconnect to another server\n", 5)
        }
        "/ws" if app.ws.connections() >= app.max_connections => {
            unavailable("connection limit reached; try again later\n", 10)
        }
        "/ws" if app.sessions.connections_from(peer.ip()) >= app.max_per_ip => text(
            StatusCode::TOO_MANY_REQUESTS,
            "too many connections from your address; close some first\n",
        ),
        "/ws" => upgrade(&app, peer, &mut request),
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: try /, /ws, /healthz, /readyz or /metrics\n",
        ),
    };
    Ok(response)
}

/// The Prometheus (OpenMetrics) exposition of the server's counters.
fn metrics_page(app: &App) -> Response<Full<Bytes>> {
    let ws = app.ws.metrics();
    let (channels, presence_members) = app.hub.counts();
    let stats = ServerStats {
        connections: ws.connections,
        channels,
        presence_members,
        ready: app.ready.load(Ordering::Acquire),
    };
    let mut response = Response::new(Full::new(Bytes::from(metrics::render(&ws, &stats))));
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(metrics::CONTENT_TYPE),
    );
    response
}

/// Authenticates, then upgrades; refusals are 401 or 403 with the reason.
fn upgrade(
    app: &App,
    peer: std::net::SocketAddr,
    request: &mut Request<Incoming>,
) -> Response<Full<Bytes>> {
    let identity = match app.auth.identify(request) {
        Ok(identity) => identity,
        Err(refused) => {
            let mut response = Response::new(Full::new(Bytes::from(format!("{refused}\n"))));
            *response.status_mut() = refused.status();
            return response;
        }
    };
    let offered = vigil_ws::upgrade::offered_protocols(request).any(|p| p == SUBPROTOCOL);
    match app.ws.upgrade(request, offered.then_some(SUBPROTOCOL)) {
        Ok((response, id)) => {
            app.sessions.expect(id.0, identity, peer.ip());
            response
        }
        Err(error) => error.into_response(),
    }
}
