//! The HTTP side of the server: health and readiness probes, and the
//! WebSocket endpoint (with its connection limit), on hyper's http1.

use crate::admission::LimitReached;
use crate::auth::{Auth, Refused, SUBPROTOCOL};
use crate::hub::Hub;
use crate::metrics::{self, ServerStats};
use crate::rejections::{Rejection, Rejections};
use crate::session::{Arrival, Sessions};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use vigil_ws::{HeartbeatMode, WsServer};

/// What every HTTP request can reach.
pub(crate) struct App {
    pub(crate) ws: WsServer,
    /// `max_connections` and `max_connections_per_ip`, held per connection.
    pub(crate) admission: Arc<crate::admission::Admission>,
    /// False once shutdown began: `/readyz` says so, `/ws` refuses.
    pub(crate) ready: AtomicBool,
    pub(crate) auth: Arc<Auth>,
    pub(crate) sessions: Arc<Sessions>,
    pub(crate) hub: Arc<Hub>,
    pub(crate) api_key: Option<String>,
    pub(crate) max_body: usize,
    /// Proxies whose forwarding headers name the client.
    pub(crate) trusted_proxies: crate::proxy::TrustedProxies,
    /// Whether anonymous clients may come from anywhere
    /// (`allow_insecure_public`), not only from loopback.
    pub(crate) anonymous_from_anywhere: bool,
    /// False when `/metrics` is turned off (`disable_metrics`).
    pub(crate) serve_metrics: bool,
    /// Handshakes refused, by reason.
    pub(crate) rejections: Rejections,
    /// The link to Redis, in a cluster.
    pub(crate) cluster: Option<Arc<crate::cluster::Status>>,
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

/// Answers one request. `peer` is the TCP peer, or the client a PROXY
/// protocol header named; the client's address is taken from forwarding
/// headers only when `peer` is a trusted proxy.
pub(crate) async fn route(
    app: Arc<App>,
    peer: std::net::SocketAddr,
    direct_scheme: &'static str,
    mut request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    if !request.headers().contains_key(hyper::header::HOST) {
        // RFC 9112 §3.2: a request without Host is answered 400.
        return Ok(text(
            StatusCode::BAD_REQUEST,
            "a Host header is required (RFC 9112, section 3.2)\n",
        ));
    }
    let client = app.trusted_proxies.client(peer.ip(), request.headers());
    let scheme = app
        .trusted_proxies
        .scheme(peer.ip(), request.headers(), direct_scheme);
    if matches!(*request.method(), hyper::Method::GET | hyper::Method::HEAD)
        && let Some(page) = crate::dashboard::page(request.uri().path())
    {
        return Ok(page);
    }
    if request.uri().path() == crate::overview::PATH {
        return Ok(crate::overview::handle(&app, client, &request).await);
    }
    if request.uri().path().starts_with("/api/") {
        return Ok(
            crate::api::handle(&app.hub, app.api_key.as_deref(), app.max_body, request).await,
        );
    }
    let response = match request.uri().path() {
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/readyz" if !app.ready.load(Ordering::Acquire) => {
            text(StatusCode::SERVICE_UNAVAILABLE, "draining\n")
        }
        "/readyz" => match app
            .cluster
            .as_ref()
            .and_then(|status| status.degraded_for())
        {
            // Still serving its own connections: not a reason to take it
            // out of a load balancer, but said plainly.
            Some(down) => Response::new(Full::new(Bytes::from(format!(
                "degraded: cluster Redis unreachable for {}s; serving this node's connections \
                 and presence only\n",
                down.as_secs()
            )))),
            None => text(StatusCode::OK, "ready\n"),
        },
        "/metrics" if app.serve_metrics => metrics_page(&app),
        "/ws" => upgrade(&app, client, scheme, &mut request),
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
    let hub = app.hub.counts();
    let stats = ServerStats {
        connections: ws.connections,
        channels: hub.channels,
        presence_members: hub.presence_members,
        users: hub.users,
        history_messages: hub.history_messages,
        history_bytes: hub.history_bytes,
        ready: app.ready.load(Ordering::Acquire),
        rejections: app.rejections.snapshot(),
        heap_live_bytes: crate::heap::live_bytes(),
        cluster: app.cluster.as_ref().map(|status| {
            use std::sync::atomic::Ordering::Relaxed;
            metrics::ClusterStats {
                up: status.is_up(),
                nodes: status.nodes.load(Relaxed),
                published: status.published.load(Relaxed),
                received: status.received.load(Relaxed),
                loads: status.loads.load(Relaxed),
                dropped: status.dropped(),
            }
        }),
    };
    let mut response = Response::new(Full::new(Bytes::from(metrics::render(&ws, &stats))));
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(metrics::CONTENT_TYPE),
    );
    response
}

/// Checks the limits, authenticates and upgrades, or says why not (and
/// counts the refusal): 503 with `Retry-After` (draining, full), 429
/// (per-IP limit), 401 or 403 (auth, Origin), 400 (a bad handshake or
/// `?heartbeat=`).
fn upgrade(
    app: &App,
    client: IpAddr,
    scheme: &str,
    request: &mut Request<Incoming>,
) -> Response<Full<Bytes>> {
    let refuse = |rejection: Rejection, response: Response<Full<Bytes>>| {
        app.rejections.count(rejection);
        tracing::debug!(%client, reason = rejection.label(), status = %response.status(), "handshake refused");
        response
    };
    if !app.ready.load(Ordering::Acquire) {
        return refuse(
            Rejection::Draining,
            unavailable("shutting down; reconnect to another server\n", 5),
        );
    }
    let identity = match app.auth.identify(request, scheme) {
        Ok(identity) if identity.is_anonymous() && !app.anonymous_allowed_from(client) => {
            let mut response = Response::new(Full::new(Bytes::from(format!(
                "anonymous connections are accepted only from loopback and {client} is not \
                 loopback; this server has no jwt_secret: connect with a token or from this \
                 machine\n"
            ))));
            *response.status_mut() = StatusCode::UNAUTHORIZED;
            return refuse(Rejection::Unauthorized, response);
        }
        Ok(identity) => identity,
        Err(refused) => {
            let rejection = match refused {
                Refused::Origin(_) => Rejection::ForbiddenOrigin,
                _ => Rejection::Unauthorized,
            };
            let mut response = Response::new(Full::new(Bytes::from(format!("{refused}\n"))));
            *response.status_mut() = refused.status();
            return refuse(rejection, response);
        }
    };
    let mode = match heartbeat_mode(request) {
        Ok(mode) => mode,
        Err(message) => {
            return refuse(
                Rejection::BadHandshake,
                text(StatusCode::BAD_REQUEST, message),
            );
        }
    };
    // Counted against both limits now, before the 101 exists: a burst of
    // handshakes cannot all pass a check made before any of them counts.
    let ticket = match app.admission.admit(client) {
        Ok(ticket) => ticket,
        Err(LimitReached::Server) => {
            return refuse(
                Rejection::ConnectionLimit,
                unavailable("connection limit reached; try again later\n", 10),
            );
        }
        Err(LimitReached::Address) => {
            return refuse(
                Rejection::PerIpLimit,
                text(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too many connections from your address; close some first\n",
                ),
            );
        }
    };
    let offered = vigil_ws::upgrade::offered_protocols(request).any(|p| p == SUBPROTOCOL);
    match app
        .ws
        .upgrade_with_mode(request, offered.then_some(SUBPROTOCOL), mode)
    {
        Ok((response, id)) => {
            app.sessions.expect(
                id.0,
                Arrival {
                    identity,
                    ticket,
                    mode,
                },
            );
            response
        }
        Err(error) => refuse(Rejection::BadHandshake, error.into_response()),
    }
}

impl App {
    /// Whether an anonymous client at `client` may connect or read the
    /// overview: from loopback always (the server has no secret, so it
    /// listens on loopback), from anywhere only with
    /// `allow_insecure_public`. Behind a local reverse proxy listed in
    /// `trusted_proxies`, `client` is the forwarded address, so the proxy
    /// does not lend its loopback address to the internet.
    pub(crate) fn anonymous_allowed_from(&self, client: IpAddr) -> bool {
        self.anonymous_from_anywhere || client.to_canonical().is_loopback()
    }
}

/// The heartbeat mode the client asks for with `?heartbeat=`: `protocol`
/// (WebSocket pings, the default) or `app` (text pings a browser's script
/// can see and answer).
fn heartbeat_mode<B>(request: &Request<B>) -> Result<HeartbeatMode, &'static str> {
    let asked = request
        .uri()
        .query()
        .into_iter()
        .flat_map(|query| query.split('&'))
        .find_map(|pair| pair.strip_prefix("heartbeat="));
    match asked {
        None | Some("protocol") => Ok(HeartbeatMode::Protocol),
        Some("app") => Ok(HeartbeatMode::AppText),
        Some(_) => Err("heartbeat must be `protocol` or `app`\n"),
    }
}
