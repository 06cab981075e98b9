//! The operator dashboard served at `/` and the browser client script it
//! imports (`/vigil-client.js`), both compiled into the binary: no build
//! step, no external resources.
//!
//! The page's only script and stylesheet are inline and allowed by their
//! SHA-256 hashes in the Content-Security-Policy, so nothing else can run:
//! meta and message data shown on the page come from any client. A test
//! recomputes the hashes and prints the header to paste when they change.

use bytes::Bytes;
use http_body_util::Full;
use hyper::Response;
use hyper::header::{self, HeaderValue};

/// The dashboard page.
pub(crate) const INDEX_HTML: &str = include_str!("dashboard/index.html");

/// The browser client: an ES module exporting `VigilClient`.
pub(crate) const CLIENT_JS: &str = include_str!("dashboard/vigil-client.js");

/// Same-origin scripts, styles and images only, plus WebSocket connections;
/// the hashes are those of the page's inline `<script>` and `<style>`
/// (checked by `tests::csp_hashes_match_the_inline_script_and_style`).
pub(crate) const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; \
     script-src 'self' 'sha256-dWPL7vPCnT2rkg4k8Mp/PYm8wq4qHtaT6VSdJQd6Vao='; \
     style-src 'self' 'sha256-fnp8g1gpCwstD+If+9xBn6vkXeHec1d07ooUnCFtOTI='; \
     connect-src 'self' ws: wss:; object-src 'none'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// The response for `GET /` (text/html) and `GET /vigil-client.js`
/// (text/javascript), with `Cache-Control: no-cache` (a new binary serves a
/// new page at once) and the Content-Security-Policy; `None` for any other
/// path.
pub(crate) fn page(path: &str) -> Option<Response<Full<Bytes>>> {
    let (body, content_type) = match path {
        "/" => (INDEX_HTML, "text/html; charset=utf-8"),
        "/vigil-client.js" => (CLIENT_JS, "text/javascript; charset=utf-8"),
        _ => return None,
    };
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    Some(response)
}

#[cfg(test)]
mod tests;
