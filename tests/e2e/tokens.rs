//! Tokens over their whole life, against the real binary: `nbf` and the
//! leeway, a connection closed with 4003 when its token expires unless it
//! refreshed it in-band, `refresh` for the same user only, public keys from
//! PEM and JWKS files whose algorithm the key decides, `iss` and `aud`, and
//! key files that cannot be used refused at start.

use super::authorization::assert_error;
use super::session::{in_an_hour, token};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use vigil_e2e::{Bystanders, ServerProcess, WsClient, run, vigil_bin, workspace_root};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

fn fixture(name: &str) -> PathBuf {
    workspace_root().join("tests/fixtures/jwt").join(name)
}

fn fixture_arg(name: &str) -> String {
    fixture(name).display().to_string()
}

/// A token signed with the test key `private_key` for `algorithm`.
fn signed(algorithm: Algorithm, private_key: &str, kid: Option<&str>, claims: &Value) -> String {
    let pem = std::fs::read(fixture(private_key)).expect("fixture key");
    let key = match algorithm {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(&pem),
        Algorithm::ES256 => EncodingKey::from_ec_pem(&pem),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(&pem),
        other => panic!("no fixture for {other:?}"),
    }
    .expect("fixture key parses");
    let mut header = Header::new(algorithm);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &key).expect("signs")
}

/// A server with the e2e HS256 secret and no leeway, so that a token dies
/// exactly at its `exp`; pings every second, and a timeout long enough for
/// a client the test is not reading for a few seconds.
fn strict_server() -> ServerProcess {
    ServerProcess::start_heartbeating(
        "20s",
        &[
            "--jwt-secret",
            "e2e-secret",
            "--jwt-leeway",
            "0s",
            "--leave-grace",
            "0s",
        ],
    )
}

/// A welcomed connection with `jwt`.
#[track_caller]
fn connect(server: &ServerProcess, jwt: &str) -> WsClient {
    let mut client = WsClient::try_connect_with_token(server.addr(), jwt)
        .unwrap_or_else(|refusal| panic!("refused: {refusal}"));
    client.next_of("welcome");
    client
}

/// Bystanders with hour-long HS256 tokens, in `lobby`.
fn bystanders(server: &ServerProcess) -> Bystanders {
    let mut next = 0;
    Bystanders::join_with(3, "lobby", || {
        next += 1;
        let jwt = token(json!({"sub": format!("bystander-{next}"), "exp": in_an_hour()}));
        WsClient::try_connect_with_token(server.addr(), &jwt).expect("a valid token")
    })
}

#[test]
fn a_token_that_expires_closes_its_connection_with_4003_unless_refreshed_first() {
    let server = strict_server();
    let mut bystanders = bystanders(&server);
    let soon = now() + 3;
    let mut lapsing = connect(&server, &token(json!({"sub": "lapsing", "exp": soon})));
    let mut renewing = connect(&server, &token(json!({"sub": "renewing", "exp": soon})));
    let later = in_an_hour();
    let renewed = renewing.ask(&format!(
        r#"{{"op":"refresh","token":"{}","id":1}}"#,
        token(json!({"sub": "renewing", "exp": later}))
    ));
    assert_eq!(renewed["type"], "reply", "{renewed}");
    assert_eq!(renewed["valid_until"], later, "{renewed}");
    let closed = lapsing.next_close(Duration::from_secs(15));
    assert_eq!(closed, Some((4003, "token expired".to_owned())));
    // The refreshed connection outlives its first token's expiry.
    bystanders.listen(Duration::from_secs(2));
    let alive = renewing.ask(r#"{"op":"ping","id":2}"#);
    assert_eq!(alive["type"], "pong", "{alive}");
    bystanders.assert_healthy(1, Duration::from_secs(1), &[]);
}

#[test]
fn a_refresh_needs_a_valid_token_for_the_same_user_and_its_channels_apply_at_once() {
    let server = strict_server();
    let mut bystanders = bystanders(&server);
    let mut carol = connect(
        &server,
        &token(json!({"sub": "carol", "exp": in_an_hour()})),
    );
    for (id, channel) in [(1, "room-1"), (2, "secret")] {
        let joined = carol.ask(&format!(
            r#"{{"op":"join","channel":"{channel}","id":{id}}}"#
        ));
        assert_eq!(joined["type"], "reply", "{joined}");
    }
    let refresh = |jwt: String, id: u32| format!(r#"{{"op":"refresh","token":"{jwt}","id":{id}}}"#);
    let other_user = carol.ask(&refresh(
        token(json!({"sub": "mallory", "exp": in_an_hour()})),
        3,
    ));
    assert_error(&other_user, "wrong_subject");
    assert!(
        other_user["message"]
            .as_str()
            .is_some_and(|m| m.contains("\"mallory\"") && m.contains("\"carol\"")),
        "{other_user}"
    );
    let expired = carol.ask(&refresh(token(json!({"sub": "carol", "exp": 1000})), 4));
    assert_error(&expired, "invalid_token");
    assert!(
        expired["message"]
            .as_str()
            .is_some_and(|m| m.contains("expired")),
        "{expired}"
    );
    let forged = carol.ask(&refresh("e30.e30.bm9wZQ".to_owned(), 5));
    assert_error(&forged, "invalid_token");
    // A narrower token: the connection leaves what it no longer allows.
    let narrower = carol.ask(&refresh(
        token(json!({"sub": "carol", "exp": in_an_hour(), "channels": ["room-*"]})),
        6,
    ));
    assert_eq!(narrower["type"], "reply", "{narrower}");
    assert_eq!(narrower["left"], json!(["secret"]), "{narrower}");
    let refused = carol.ask(r#"{"op":"publish","channel":"secret","data":1,"id":7}"#);
    assert_error(&refused, "forbidden_channel");
    let allowed = carol.ask(r#"{"op":"publish","channel":"room-1","data":1,"id":8}"#);
    assert_eq!(allowed["type"], "reply", "{allowed}");
    bystanders.listen(Duration::from_secs(2));
    bystanders.assert_healthy(1, Duration::from_secs(1), &[]);
    // An anonymous connection (no key configured) cannot take a token.
    let open = ServerProcess::start(&["--listen", "127.0.0.1:0"]);
    let mut anonymous = WsClient::connect(open.addr());
    anonymous.next_of("welcome");
    let taken = anonymous.ask(&refresh(
        token(json!({"sub": "carol", "exp": in_an_hour()})),
        1,
    ));
    assert_error(&taken, "wrong_subject");
}

#[test]
fn public_keys_verify_only_their_own_algorithm_and_the_claims_rules_hold() {
    let server = ServerProcess::start(&[
        "--listen",
        "127.0.0.1:0",
        "--jwt-public-key-file",
        &fixture_arg("rsa.pub"),
        "--jwt-jwks-file",
        &fixture_arg("jwks.json"),
        "--jwt-issuer",
        "https://auth.example.com/",
        "--jwt-audience",
        "vigil",
        "--heartbeat-interval",
        "1s",
    ]);
    let claims = |sub: &str| json!({"sub": sub, "exp": in_an_hour(), "iss": "https://auth.example.com/", "aud": "vigil"});
    let mut next = 0;
    let mut bystanders = Bystanders::join_with(3, "lobby", || {
        next += 1;
        let jwt = signed(
            Algorithm::ES256,
            "p256.key",
            Some("ec-1"),
            &claims(&format!("bystander-{next}")),
        );
        WsClient::try_connect_with_token(server.addr(), &jwt).expect("a valid token")
    });
    for (algorithm, private_key, kid, sub) in [
        (Algorithm::RS256, "rsa.key", None, "rsa-pem"),
        (Algorithm::RS256, "rsa.key", Some("rsa-1"), "rsa-jwks"),
        (Algorithm::ES256, "p256-other.key", Some("ec-2"), "rotated"),
        (Algorithm::EdDSA, "ed25519.key", Some("ed-1"), "edwards"),
    ] {
        let jwt = signed(algorithm, private_key, kid, &claims(sub));
        let mut client = WsClient::try_connect_with_token(server.addr(), &jwt)
            .unwrap_or_else(|refusal| panic!("{sub} refused: {refusal}"));
        assert_eq!(client.next_of("welcome")["user"], sub);
    }
    let public_pem = std::fs::read(fixture("rsa.pub")).expect("fixture");
    let hmac_with_public_key = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims("mallory"),
        &EncodingKey::from_secret(&public_pem),
    )
    .expect("signs");
    let refusals = [
        (hmac_with_public_key, "never from the token"),
        (
            // alg: none, no signature.
            "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJtYWxsb3J5In0.".to_owned(),
            "none",
        ),
        (
            signed(
                Algorithm::ES256,
                "p256.key",
                Some("retired"),
                &claims("old"),
            ),
            "key \"retired\"",
        ),
        (
            signed(
                Algorithm::ES256,
                "p256-other.key",
                Some("ec-1"),
                &claims("impostor"),
            ),
            "signature is not valid",
        ),
        (
            signed(
                Algorithm::EdDSA,
                "ed25519.key",
                Some("ed-1"),
                &json!({"sub": "x", "exp": in_an_hour(), "iss": "https://evil.example/", "aud": "vigil"}),
            ),
            "issuer",
        ),
        (
            signed(
                Algorithm::EdDSA,
                "ed25519.key",
                Some("ed-1"),
                &json!({"sub": "x", "exp": in_an_hour(), "iss": "https://auth.example.com/", "aud": "billing"}),
            ),
            "audience",
        ),
        (
            signed(
                Algorithm::EdDSA,
                "ed25519.key",
                Some("ed-1"),
                &json!({"sub": "early", "exp": in_an_hour(), "nbf": now() + 600,
                        "iss": "https://auth.example.com/", "aud": "vigil"}),
            ),
            "not valid yet",
        ),
    ];
    for (jwt, reason) in refusals {
        let refusal = WsClient::try_connect_with_token(server.addr(), &jwt).expect_err("refused");
        assert!(
            refusal.starts_with("HTTP/1.1 401") && refusal.contains(reason),
            "expected a 401 saying {reason:?}: {refusal}"
        );
    }
    // HS256 is accepted only when a secret is configured: none is here.
    let hs256 = WsClient::try_connect_with_token(server.addr(), &token(claims("hs")))
        .expect_err("no secret, no HS256");
    assert!(hs256.contains("HS256"), "{hs256}");
    bystanders.listen(Duration::from_secs(2));
    bystanders.assert_healthy(1, Duration::from_secs(1), &[]);
}

#[test]
fn a_nbf_within_the_leeway_is_accepted_and_beyond_it_refused() {
    let server = ServerProcess::start(&[
        "--listen",
        "127.0.0.1:0",
        "--jwt-secret",
        "e2e-secret",
        "--jwt-leeway",
        "30s",
    ]);
    let skewed = token(json!({"sub": "skewed", "exp": in_an_hour(), "nbf": now() + 10}));
    connect(&server, &skewed);
    let early = token(json!({"sub": "early", "exp": in_an_hour(), "nbf": now() + 120}));
    let refusal =
        WsClient::try_connect_with_token(server.addr(), &early).expect_err("not valid yet");
    assert!(
        refusal.starts_with("HTTP/1.1 401") && refusal.contains("`nbf` is in the future"),
        "{refusal}"
    );
}

#[test]
fn key_files_that_cannot_be_used_stop_the_server_and_fail_check_config() {
    let vigil = vigil_bin();
    let private = run(
        &vigil,
        &[
            "--listen",
            "127.0.0.1:0",
            "--jwt-public-key-file",
            &fixture_arg("rsa.key"),
        ],
    );
    assert_eq!(private.status.code(), Some(2), "{private:?}");
    assert!(
        private.stderr.contains("give vigil only the public key"),
        "{}",
        private.stderr
    );
    let dir = std::env::temp_dir().join(format!("vigil-e2e-keys-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let config = dir.join("vigil.toml");
    let missing = dir.join("missing-jwks.json");
    std::fs::write(
        &config,
        format!("jwt_jwks_file = {:?}\n", missing.display().to_string()),
    )
    .expect("write");
    let checked = run(&vigil, &["check-config", &config.display().to_string()]);
    assert_eq!(checked.status.code(), Some(2), "{checked:?}");
    assert!(
        checked.stderr.contains("cannot read") && checked.stderr.contains("missing-jwks.json"),
        "{}",
        checked.stderr
    );
    let _ = std::fs::remove_dir_all(&dir);
}
