//! The operator dashboard served at `/`, the browser client it imports
//! (`/vigil.js`, an ES module) and the client's TypeScript declarations
//! (`/vigil.d.ts`), all compiled into the binary: no build step, no
//! external resources.
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
pub(crate) const CLIENT_JS: &str = include_str!("dashboard/vigil.js");

/// The TypeScript declarations of [`CLIENT_JS`].
pub(crate) const CLIENT_DTS: &str = include_str!("dashboard/vigil.d.ts");

/// Same-origin scripts, styles and images only, plus WebSocket connections;
/// the hashes are those of the page's inline `<script>` and `<style>`
/// (checked by `tests::csp_hashes_match_the_inline_script_and_style`).
pub(crate) const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; \
     script-src 'self' 'sha256-OHmQPgv8vbUHtu5nR7aTV0DTc58yRz+D4tHSebhEVKA='; \
     style-src 'self' 'sha256-EIN8wMYq9qrvRVppt/HdpVg63H9rHMzw54M7bwMIxm0='; \
     connect-src 'self' ws: wss:; object-src 'none'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// The response for `GET /` (text/html), `GET /vigil.js` (text/javascript,
/// pointing Deno-style tools at its types with `X-TypeScript-Types`) and
/// `GET /vigil.d.ts` (both readable from any origin), with `Cache-Control:
/// no-cache` (a new binary serves a new page at once) and the
/// Content-Security-Policy; `None` for any other path.
pub(crate) fn page(path: &str) -> Option<Response<Full<Bytes>>> {
    let (body, content_type) = match path {
        "/" => (INDEX_HTML, "text/html; charset=utf-8"),
        "/vigil.js" => (CLIENT_JS, "text/javascript; charset=utf-8"),
        "/vigil.d.ts" => (CLIENT_DTS, "application/typescript; charset=utf-8"),
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
    if path != "/" {
        // Pages of other origins (the allow-list of `--allowed-origins`)
        // import the client as a module, which needs CORS; it is public code.
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
    }
    if path == "/vigil.js" {
        headers.insert(
            "x-typescript-types",
            HeaderValue::from_static("/vigil.d.ts"),
        );
    }
    Some(response)
}

#[cfg(test)]
mod tests;
