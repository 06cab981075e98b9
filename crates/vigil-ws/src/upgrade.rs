//! The server side of the WebSocket opening handshake (RFC 6455 section 4.2)
//! on a hyper 1 request: validation with a specific answer for every bad
//! request, and the `101 Switching Protocols` response.
//!
//! The 101 response is built here and the upgraded socket taken with
//! `hyper::upgrade::on`, so no fastwebsockets `WebSocket` (and its 8 KiB
//! read buffer) is ever created for a server connection.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode, Version};
use sha1::{Digest, Sha1};

/// Why a request cannot be upgraded; each maps to a status and a reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UpgradeError {
    /// Not a GET request.
    #[error("a WebSocket upgrade must be a GET request")]
    NotGet,
    /// HTTP/1.0 or an HTTP/2+ request without extended CONNECT.
    #[error("a WebSocket upgrade needs HTTP/1.1")]
    OldHttp,
    /// `Upgrade: websocket` is missing.
    #[error("missing `Upgrade: websocket` header")]
    NoUpgradeHeader,
    /// `Connection: Upgrade` is missing.
    #[error("missing `Connection: Upgrade` header")]
    NoConnectionUpgrade,
    /// `Sec-WebSocket-Version` is not 13.
    #[error("unsupported Sec-WebSocket-Version; this server speaks version 13")]
    UnsupportedVersion,
    /// `Sec-WebSocket-Key` is missing or not 16 bytes in base64.
    #[error("missing or malformed Sec-WebSocket-Key (must be 16 bytes, base64)")]
    BadKey,
}

impl UpgradeError {
    /// The HTTP status to answer with: 426 for a version we do not speak,
    /// 405 for another method, 400 otherwise.
    pub fn status(self) -> StatusCode {
        match self {
            Self::UnsupportedVersion => StatusCode::UPGRADE_REQUIRED,
            Self::NotGet => StatusCode::METHOD_NOT_ALLOWED,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// The answer to send: the status and the reason as a plain-text body.
    pub fn into_response(self) -> Response<Full<Bytes>> {
        let mut response = Response::new(Full::new(Bytes::from(format!("{self}\n"))));
        *response.status_mut() = self.status();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        if self == Self::UnsupportedVersion {
            headers.insert(
                header::SEC_WEBSOCKET_VERSION,
                HeaderValue::from_static("13"),
            );
        }
        if self == Self::NotGet {
            headers.insert(header::ALLOW, HeaderValue::from_static("GET"));
        }
        response
    }
}

/// Checks that `request` is a valid WebSocket opening handshake and builds
/// the `101` response, with `protocol` as the chosen subprotocol if any.
pub fn accept<B>(
    request: &Request<B>,
    protocol: Option<&str>,
) -> Result<Response<Full<Bytes>>, UpgradeError> {
    if request.method() != Method::GET {
        return Err(UpgradeError::NotGet);
    }
    if request.version() < Version::HTTP_11 {
        return Err(UpgradeError::OldHttp);
    }
    let headers = request.headers();
    if !has_token(headers, &header::UPGRADE, "websocket") {
        return Err(UpgradeError::NoUpgradeHeader);
    }
    if !has_token(headers, &header::CONNECTION, "upgrade") {
        return Err(UpgradeError::NoConnectionUpgrade);
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .map(HeaderValue::as_bytes)
        != Some(b"13")
    {
        return Err(UpgradeError::UnsupportedVersion);
    }
    let key = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .filter(|key| {
            STANDARD
                .decode(key.as_bytes())
                .is_ok_and(|raw| raw.len() == 16)
        })
        .ok_or(UpgradeError::BadKey)?;
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let out = response.headers_mut();
    out.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    out.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    let accept =
        HeaderValue::from_str(&accept_key(key.as_bytes())).expect("base64 is a valid header value");
    out.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    if let Some(value) = protocol.and_then(|p| HeaderValue::from_str(p).ok()) {
        out.insert(header::SEC_WEBSOCKET_PROTOCOL, value);
    }
    Ok(response)
}

/// The subprotocols the client offered, in its order of preference.
pub fn offered_protocols<B>(request: &Request<B>) -> impl Iterator<Item = &str> {
    request
        .headers()
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|token| !token.is_empty())
}

/// `Sec-WebSocket-Accept` for a client key (RFC 6455 section 4.2.2).
pub(crate) fn accept_key(key: &[u8]) -> String {
    let mut sha1 = Sha1::new();
    sha1.update(key);
    sha1.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    STANDARD.encode(sha1.finalize())
}

fn has_token(headers: &HeaderMap, name: &header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|part| part.trim().eq_ignore_ascii_case(token))
}

#[cfg(test)]
mod tests;
