//! `GET /api/overview`: what the dashboard shows that no client can see on
//! its own — every channel with its members, each member's connections with
//! their heartbeat (state, round trip measured by the server's pings, pings
//! sent, time since the last frame), and the server's heartbeat counters.
//!
//! Read-only. It follows the server's auth model: on an anonymous server
//! (no JWT secret, so loopback clients only, behind trusted proxies too)
//! anyone who may connect may read it, as
//! anyone may already query any channel's presence; with a secret it needs
//! the API key, like the rest of `/api/`.

use crate::api;
use crate::http::App;
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Map, Value, json};
use std::time::{Duration, Instant};
use vigil_core::heartbeat::State;
use vigil_ws::{CLOSE_LABELS, Connection, Liveness};

/// The path served here.
pub(crate) const PATH: &str = "/api/overview";

/// At most this many connections are looked up per request (each lookup is
/// a round trip to the connection's shard); the answer says when it stopped
/// there (`"truncated": true`).
pub(crate) const MAX_CONNECTIONS: usize = 1_000;

/// Answers `GET /api/overview`: 405 for another method, 401 without the key
/// when one is needed, 404 when neither anonymous access nor a key allows it.
pub(crate) async fn handle<B>(
    app: &App,
    client: std::net::IpAddr,
    request: &Request<B>,
) -> Response<Full<Bytes>> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return api::refuse(StatusCode::METHOD_NOT_ALLOWED, "use GET");
    }
    if app.auth.anonymous() && !app.anonymous_allowed_from(client) {
        return api::refuse(
            StatusCode::UNAUTHORIZED,
            "this server has no jwt_secret: its overview is open to loopback clients only",
        );
    }
    if !app.auth.anonymous() {
        match app.api_key.as_deref() {
            None => {
                return api::refuse(
                    StatusCode::NOT_FOUND,
                    "the overview needs the HTTP API on this server (tokens are required): \
                     set VIGIL_API_KEY to turn it on",
                );
            }
            Some(key) if !api::authorized(request, key) => {
                return api::refuse(
                    StatusCode::UNAUTHORIZED,
                    "missing or wrong API key: send Authorization: Bearer <key>",
                );
            }
            Some(_) => {}
        }
    }
    api::answer(StatusCode::OK, &overview(app).await)
}

async fn overview(app: &App) -> Value {
    let channels = app.hub.channels_overview(MAX_CONNECTIONS);
    let looked_up: usize = channels
        .iter()
        .flat_map(|c| &c.members)
        .map(|(_, conns)| conns.len())
        .sum();
    let now = tokio::time::Instant::now().into_std();
    let mut out = Vec::with_capacity(channels.len());
    for channel in channels {
        let mut members = Vec::with_capacity(channel.members.len());
        for (mut member, conns) in channel.members {
            let unstable = member["meta"]["unstable"] == true;
            let mut views = Vec::with_capacity(conns.len());
            for conn in &conns {
                if let Some(view) = connection(conn, now).await {
                    views.push(view);
                }
            }
            if let Value::Object(fields) = &mut member {
                fields.insert(
                    "status".into(),
                    if unstable { "unstable" } else { "online" }.into(),
                );
                fields.insert("connections".into(), Value::Array(views));
            }
            members.push(member);
        }
        out.push(json!({
            "channel": channel.channel,
            "version": channel.version,
            "mode": if channel.counted { "counts" } else { "members" },
            "users": channel.users,
            "connections": channel.connections,
            "members": members,
        }));
    }
    let ws = app.ws.metrics();
    let hub = app.hub.counts();
    let heartbeat = &app.ws.config().heartbeat;
    let closed: Map<String, Value> = CLOSE_LABELS
        .iter()
        .zip(ws.closes)
        .map(|(label, count)| ((*label).to_owned(), count.into()))
        .collect();
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "heartbeat": {
            "interval_ms": millis(heartbeat.interval()),
            "timeout_ms": millis(heartbeat.timeout()),
        },
        "counters": {
            "connections": ws.connections,
            "users": hub.users,
            "channels": hub.channels,
            "connections_opened": ws.opened,
            "pings_sent": ws.pings_sent,
            "pongs_received": ws.pongs_received,
            "suspects": ws.suspects,
            "closed": closed,
        },
        "channels": out,
        "truncated": looked_up >= MAX_CONNECTIONS,
    })
}

/// One connection's heartbeat, or `None` if it ended meanwhile.
async fn connection(conn: &Connection, now: Instant) -> Option<Value> {
    let Liveness {
        state,
        srtt,
        min_rtt,
        last_seen,
        pings_sent,
    } = conn.liveness().await?;
    let state = match state {
        State::Alive => "alive",
        State::Suspect => "suspect",
        State::Closing => "closing",
        State::Dead(_) => return None,
    };
    Some(json!({
        "id": conn.id().0,
        "state": state,
        "rtt_ms": srtt.map(fractional_millis),
        "min_rtt_ms": min_rtt.map(fractional_millis),
        "pings_sent": pings_sent,
        "idle_ms": millis(now.saturating_duration_since(last_seen)),
    }))
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Milliseconds with microsecond precision: loopback round trips are far
/// below one millisecond.
fn fractional_millis(duration: Duration) -> f64 {
    duration.as_micros() as f64 / 1_000.0
}
