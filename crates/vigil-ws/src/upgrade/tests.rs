//! Handshake validation: the RFC's example key, and one answer per mistake.

use super::*;

fn request() -> hyper::http::request::Builder {
    Request::builder()
        .method(Method::GET)
        .uri("/ws")
        .header("Host", "localhost")
        .header("Upgrade", "websocket")
        .header("Connection", "keep-alive, Upgrade")
        .header("Sec-WebSocket-Version", "13")
        .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
}

#[test]
fn the_rfc_example_key_is_accepted() {
    assert_eq!(
        accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    );
    let response =
        accept(&request().body(()).expect("valid"), Some("vigil.v1")).expect("valid handshake");
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    assert_eq!(
        response.headers()["sec-websocket-accept"],
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    );
    assert_eq!(response.headers()["sec-websocket-protocol"], "vigil.v1");
}

#[test]
fn each_malformed_handshake_gets_its_own_answer() {
    let cases = [
        (request().method(Method::POST), UpgradeError::NotGet, 405),
        (
            request().version(Version::HTTP_10),
            UpgradeError::OldHttp,
            400,
        ),
        (
            request().header("Upgrade", "h2c"),
            UpgradeError::NoUpgradeHeader,
            400,
        ),
        (
            request().header("Connection", "close"),
            UpgradeError::NoConnectionUpgrade,
            400,
        ),
        (
            request().header("Sec-WebSocket-Version", "8"),
            UpgradeError::UnsupportedVersion,
            426,
        ),
        (
            request().header("Sec-WebSocket-Key", "c2hvcnQ="),
            UpgradeError::BadKey,
            400,
        ),
    ];
    for (builder, expected, status) in cases {
        // `header` appends; rebuild the header map so the bad value is the only one
        let mut bad = builder.body(()).expect("valid request");
        for name in [
            "upgrade",
            "connection",
            "sec-websocket-version",
            "sec-websocket-key",
        ] {
            let values: Vec<HeaderValue> = bad.headers().get_all(name).iter().cloned().collect();
            if values.len() > 1 {
                bad.headers_mut()
                    .insert(name, values[values.len() - 1].clone());
            }
        }
        let error = accept(&bad, None).expect_err("must be refused");
        assert_eq!(error, expected);
        let response = error.into_response();
        assert_eq!(response.status().as_u16(), status, "{error}");
    }
}

#[test]
fn offered_protocols_are_listed_in_order() {
    let request = request()
        .header("Sec-WebSocket-Protocol", "vigil.v2, vigil.v1")
        .header("Sec-WebSocket-Protocol", "bearer.abc")
        .body(())
        .expect("valid");
    let offered: Vec<&str> = offered_protocols(&request).collect();
    assert_eq!(offered, ["vigil.v2", "vigil.v1", "bearer.abc"]);
}
