//! The HTTP API for operators and back ends, behind an API key
//! (`Authorization: Bearer KEY`): publish to a channel, read a channel's or a
//! user's presence, disconnect a user. Off unless a key is configured.
//!
//! - `POST /api/channels/{channel}/publish` with `{"data": ...}`
//! - `GET /api/channels/{channel}/presence`, or one page of it with
//!   `?limit=N` and `&cursor=NEXT` (the previous page's `next`)
//! - `GET /api/channels/{channel}/stats`: users and connections
//! - `GET /api/users/{user}`
//! - `POST /api/users/{user}/disconnect`
//!
//! `{channel}` and `{user}` are percent-encoded path segments: `/` in a
//! channel name is `%2F`, a space `%20`, `é` `%C3%A9`.
//!
//! `GET /api/overview`, the dashboard's data, is `crate::overview`'s.

use crate::hub::Hub;
use crate::protocol::{check_channel, page_request};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};

/// The close code an operator's disconnect sends (private range).
pub(crate) const DISCONNECTED_BY_OPERATOR: u16 = 4001;

pub(crate) fn answer(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

pub(crate) fn refuse(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    answer(status, &json!({"error": message}))
}

/// Compares without an early exit, so the key cannot be guessed byte by
/// byte from response times.
fn same_key(given: &[u8], expected: &[u8]) -> bool {
    given.len() == expected.len()
        && given
            .iter()
            .zip(expected)
            .fold(0u8, |diff, (a, b)| diff | (a ^ b))
            == 0
}

/// Whether `request` carries `Authorization: Bearer <key>`.
pub(crate) fn authorized<B>(request: &Request<B>, key: &str) -> bool {
    request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
        .is_some_and(|given| same_key(given, key.as_bytes()))
}

/// Answers an `/api/...` request.
pub(crate) async fn handle(
    hub: &Hub,
    api_key: Option<&str>,
    max_body: usize,
    request: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let Some(key) = api_key else {
        return refuse(
            StatusCode::NOT_FOUND,
            "the HTTP API is off: set VIGIL_API_KEY to turn it on",
        );
    };
    if !authorized(&request, key) {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "missing or wrong API key (Authorization: Bearer KEY)",
        );
    }
    let path = request.uri().path().to_owned();
    // Each segment is percent-decoded on its own, so a name holding `/`
    // (`team%2Feng`), a space or any Unicode reaches the hub as it is.
    let decoded: Result<Vec<String>, _> = path
        .trim_start_matches("/api/")
        .split('/')
        .map(|segment| {
            percent_encoding::percent_decode_str(segment)
                .decode_utf8()
                .map(|text| text.into_owned())
        })
        .collect();
    let Ok(decoded) = decoded else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "a path segment is not UTF-8 once percent-decoded",
        );
    };
    let parts: Vec<&str> = decoded.iter().map(String::as_str).collect();
    match (request.method().clone(), parts.as_slice()) {
        (Method::POST, ["channels", channel, "publish"]) => {
            if let Err(reason) = check_channel(channel) {
                return refuse(StatusCode::BAD_REQUEST, &reason);
            }
            let body = match Limited::new(request.into_body(), max_body).collect().await {
                Ok(body) => body.to_bytes(),
                Err(_) => {
                    return refuse(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        &format!("the body is over {max_body} bytes (or was cut off)"),
                    );
                }
            };
            let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(&body) else {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    r#"the body must be a JSON object: {"data": ...}"#,
                );
            };
            let Some(data) = body.get("data") else {
                return refuse(StatusCode::BAD_REQUEST, r#"missing "data""#);
            };
            let delivered = hub.publish_as_server(channel, data);
            answer(StatusCode::OK, &json!({"delivered": delivered}))
        }
        (Method::GET, ["channels", channel, "presence"]) => {
            if let Err(reason) = check_channel(channel) {
                return refuse(StatusCode::BAD_REQUEST, &reason);
            }
            let page = query_page(request.uri().query())
                .and_then(|(cursor, limit)| page_request(cursor.as_deref(), limit));
            match page {
                Err(reason) => refuse(StatusCode::BAD_REQUEST, &reason),
                Ok(None) => answer(StatusCode::OK, &hub.presence(channel)),
                Ok(Some(page)) => match hub.presence_page(channel, &page, true) {
                    Ok(page) => answer(StatusCode::OK, &page),
                    Err((_, reason)) => refuse(StatusCode::FORBIDDEN, &reason),
                },
            }
        }
        (Method::GET, ["channels", channel, "stats"]) => {
            if let Err(reason) = check_channel(channel) {
                return refuse(StatusCode::BAD_REQUEST, &reason);
            }
            answer(StatusCode::OK, &hub.presence_stats(channel))
        }
        (Method::GET, ["users", user]) => {
            let (conns, channels) = hub.user(user);
            answer(
                StatusCode::OK,
                &json!({"user": user, "online": !conns.is_empty(), "connections": conns.len(), "channels": channels}),
            )
        }
        (Method::POST, ["users", user, "disconnect"]) => {
            let (conns, _) = hub.user(user);
            for conn in &conns {
                let _ = conn.close(DISCONNECTED_BY_OPERATOR, "disconnected by an operator");
            }
            answer(StatusCode::OK, &json!({"disconnected": conns.len()}))
        }
        (_, ["channels", _, "publish"] | ["users", _, "disconnect"]) => {
            refuse(StatusCode::METHOD_NOT_ALLOWED, "use POST")
        }
        (_, ["channels", _, "presence" | "stats"] | ["users", _]) => {
            refuse(StatusCode::METHOD_NOT_ALLOWED, "use GET")
        }
        _ => refuse(
            StatusCode::NOT_FOUND,
            "unknown API path; see docs/PROTOCOL.md (HTTP API)",
        ),
    }
}

/// The `cursor` (percent-decoded) and `limit` of a presence query; other
/// parameters are refused, so a typo is not silently a whole list.
fn query_page(query: Option<&str>) -> Result<(Option<String>, Option<u64>), String> {
    let (mut cursor, mut limit) = (None, None);
    for pair in query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .filter(|p| !p.is_empty())
    {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_encoding::percent_decode_str(value)
            .decode_utf8()
            .map_err(|_| format!("{name} is not UTF-8 once percent-decoded"))?;
        match name {
            "cursor" => cursor = Some(value.into_owned()),
            "limit" => {
                let parsed = value
                    .parse()
                    .map_err(|_| format!("limit must be a whole number; got {value:?}"))?;
                limit = Some(parsed);
            }
            other => return Err(format!("unknown query parameter {other:?} (cursor, limit)")),
        }
    }
    Ok((cursor, limit))
}

#[cfg(test)]
mod tests {
    use super::same_key;

    #[test]
    fn keys_compare_whole() {
        assert!(same_key(b"abc", b"abc"));
        assert!(!same_key(b"abd", b"abc"));
        assert!(!same_key(b"ab", b"abc"));
        assert!(!same_key(b"", b"abc"));
    }
}
