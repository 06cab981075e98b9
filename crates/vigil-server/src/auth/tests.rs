//! Tokens and origins: who gets in, and the exact refusal for everyone else.

use super::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use std::time::{SystemTime, UNIX_EPOCH};

const SECRET: &str = "test-secret";

fn token(secret: &str, claims: serde_json::Value) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("encodes")
}

fn in_an_hour() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
        + 3600
}

fn configured() -> TokenSecret {
    TokenSecret::Configured(SECRET.to_owned())
}

/// What the server runs with when no secret is configured.
fn development() -> TokenSecret {
    TokenSecret::configured_or_generated(None).expect("/dev/urandom")
}

/// Tokens checked with `secret` alone, no leeway, origins allowed as given.
fn auth(secret: &TokenSecret, allowed_origins: Vec<String>) -> Auth {
    Auth::new(
        Some(secret),
        Vec::new(),
        ClaimRules::default(),
        allowed_origins,
    )
}

fn request(uri: &str) -> hyper::http::request::Builder {
    Request::builder().uri(uri).header(HOST, "127.0.0.1:8080")
}

#[test]
fn without_a_secret_everyone_is_anonymous() {
    let auth = auth(&development(), Vec::new());
    let identity = auth
        .identify(&request("/ws").body(()).expect("valid"), "http")
        .expect("anonymous");
    assert_eq!(&*identity.user_for(7), "anon-7");
    assert!(identity.may_use("anything"));
}

#[test]
fn without_a_secret_tokens_signed_with_the_development_secret_name_their_user() {
    let secret = development();
    let TokenSecret::Development(text) = &secret else {
        panic!("no secret configured means a development secret");
    };
    assert_eq!(text.len(), 64, "256 bits in hex: {text}");
    assert_ne!(secret, development(), "each run gets its own");
    let auth = auth(&secret, Vec::new());
    let jwt = token(text, serde_json::json!({"sub": "dev", "exp": in_an_hour()}));
    let signed = request(&format!("/ws?token={jwt}"))
        .body(())
        .expect("valid");
    assert_eq!(
        &*auth
            .identify(&signed, "http")
            .expect("accepted")
            .user_for(1),
        "dev"
    );
    // A token is checked even though anonymous clients are welcome.
    let forged = token(
        SECRET,
        serde_json::json!({"sub": "dev", "exp": in_an_hour()}),
    );
    let forged = request(&format!("/ws?token={forged}"))
        .body(())
        .expect("valid");
    assert_eq!(
        auth.identify(&forged, "http").err(),
        Some(Refused::BadSignature)
    );
}

#[test]
fn a_valid_token_names_the_user_from_any_of_three_places() {
    let auth = auth(&configured(), Vec::new());
    let jwt = token(
        SECRET,
        serde_json::json!({"sub": "ann", "exp": in_an_hour()}),
    );
    let requests = [
        request(&format!("/ws?x=1&token={jwt}")).body(()),
        request("/ws")
            .header(AUTHORIZATION, format!("Bearer {jwt}"))
            .body(()),
        request("/ws")
            .header(SEC_WEBSOCKET_PROTOCOL, format!("vigil, bearer.{jwt}"))
            .body(()),
    ];
    for request in requests {
        let identity = auth
            .identify(&request.expect("valid"), "http")
            .expect("accepted");
        assert_eq!(&*identity.user_for(1), "ann");
    }
}

#[test]
fn bad_tokens_are_refused_each_with_its_reason() {
    let auth = auth(&configured(), Vec::new());
    let cases = [
        (None, Refused::MissingToken),
        (
            Some(token(
                SECRET,
                serde_json::json!({"sub": "ann", "exp": 1_000}),
            )),
            Refused::Expired,
        ),
        (
            Some(token(
                "other",
                serde_json::json!({"sub": "ann", "exp": in_an_hour()}),
            )),
            Refused::BadSignature,
        ),
    ];
    for (jwt, expected) in cases {
        let uri = jwt.map_or("/ws".to_owned(), |t| format!("/ws?token={t}"));
        let refused = auth
            .identify(&request(&uri).body(()).expect("valid"), "http")
            .expect_err("refused");
        assert_eq!(refused, expected);
        assert_eq!(refused.status(), hyper::StatusCode::UNAUTHORIZED);
    }
    let no_sub = token(SECRET, serde_json::json!({"exp": in_an_hour()}));
    let refused = auth
        .identify(
            &request(&format!("/ws?token={no_sub}"))
                .body(())
                .expect("valid"),
            "http",
        )
        .expect_err("refused");
    assert!(matches!(refused, Refused::Malformed(_)), "{refused:?}");
    let garbage = auth
        .identify(&request("/ws?token=abc").body(()).expect("valid"), "http")
        .expect_err("refused");
    assert!(matches!(garbage, Refused::Malformed(_)), "{garbage:?}");
}

#[test]
fn the_channels_claim_limits_channels_by_glob() {
    let auth = auth(&configured(), Vec::new());
    let jwt = token(
        SECRET,
        serde_json::json!({"sub": "bob", "exp": in_an_hour(), "channels": ["room-*", "team/eng"]}),
    );
    let identity = auth
        .identify(
            &request(&format!("/ws?token={jwt}"))
                .body(())
                .expect("valid"),
            "http",
        )
        .expect("ok");
    assert!(identity.may_use("room-1"));
    assert!(identity.may_use("team/eng"));
    assert!(!identity.may_use("team/ops"));
    assert!(!identity.may_use("lobby"));
}

#[test]
fn a_foreign_origin_is_forbidden_and_a_native_client_passes() {
    let auth = auth(&development(), Vec::new());
    let cross = request("/ws")
        .header(ORIGIN, "https://evil.example")
        .body(())
        .expect("valid");
    let refused = auth.identify(&cross, "http").expect_err("refused");
    assert_eq!(refused.status(), hyper::StatusCode::FORBIDDEN);
    let same = request("/ws")
        .header(ORIGIN, "http://127.0.0.1:8080")
        .body(())
        .expect("valid");
    assert!(auth.identify(&same, "http").is_ok());
    // The same host from an https page is another origin (RFC 6454)...
    assert!(auth.identify(&same, "https").is_err());
    let secure = request("/ws")
        .header(ORIGIN, "https://127.0.0.1:8080")
        .body(())
        .expect("valid");
    assert_eq!(
        auth.identify(&secure, "http").err().map(|r| r.status()),
        Some(hyper::StatusCode::FORBIDDEN)
    );
    // ...unless a trusted proxy says the client came over https.
    assert!(auth.identify(&secure, "https").is_ok());
    assert!(
        auth.identify(&request("/ws").body(()).expect("valid"), "http")
            .is_ok()
    );
}

#[test]
fn an_allowed_origin_passes_and_others_stay_forbidden() {
    let auth = auth(&development(), vec!["https://app.example.com".to_owned()]);
    let with_origin = |origin: &str| {
        request("/ws")
            .header(ORIGIN, origin)
            .body(())
            .expect("valid")
    };
    assert!(
        auth.identify(&with_origin("https://app.example.com"), "http")
            .is_ok()
    );
    assert!(
        auth.identify(&with_origin("https://APP.example.com"), "http")
            .is_ok()
    );
    for refused in [
        "http://app.example.com",
        "https://app.example.com:8443",
        "https://evil.example",
        "null",
    ] {
        let error = auth
            .identify(&with_origin(refused), "http")
            .expect_err(refused);
        assert_eq!(error, Refused::Origin(refused.to_owned()));
    }
    // The server's own origin stays allowed beside the list.
    assert!(
        auth.identify(&with_origin("http://127.0.0.1:8080"), "http")
            .is_ok()
    );
}

#[test]
fn a_star_allows_every_origin() {
    let auth = auth(&development(), vec!["*".to_owned()]);
    let request = request("/ws")
        .header(ORIGIN, "https://anywhere.example")
        .body(())
        .expect("valid");
    assert!(auth.identify(&request, "http").is_ok());
}
