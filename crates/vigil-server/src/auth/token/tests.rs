//! Tokens signed with public-key algorithms, key selection by `kid`, and the
//! claims' rules (`nbf`, leeway, `iss`, `aud`), against the test keys in
//! `tests/fixtures/jwt`.

use super::*;
use crate::auth::keys::{self, KeyError};
use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/jwt")
        .join(name)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

/// A token for `alice`, valid for an hour unless `claims` say otherwise.
fn signed(algorithm: Algorithm, private_key: &str, kid: Option<&str>, claims: &Value) -> String {
    let pem = std::fs::read(fixture(private_key)).expect("fixture key");
    let key = match algorithm {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(&pem),
        Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_pem(&pem),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(&pem),
        other => panic!("no fixture for {other:?}"),
    }
    .expect("fixture key parses");
    let mut header = Header::new(algorithm);
    header.kid = kid.map(str::to_owned);
    let mut all = json!({"sub": "alice", "exp": now() + 3600});
    if let (Some(all), Some(claims)) = (all.as_object_mut(), claims.as_object()) {
        all.extend(claims.clone());
    }
    jsonwebtoken::encode(&header, &all, &key).expect("signs")
}

type Value = serde_json::Value;

fn pem_verifier(public_key: &str, rules: ClaimRules) -> Verifier {
    Verifier::new(
        vec![keys::pem_file(&fixture(public_key)).expect("fixture public key")],
        rules,
    )
}

fn jwks_verifier() -> Verifier {
    Verifier::new(
        keys::jwks_file(&fixture("jwks.json")).expect("fixture JWKS"),
        ClaimRules::default(),
    )
}

#[test]
fn a_pem_key_verifies_tokens_of_the_algorithm_its_type_calls_for() {
    for (algorithm, private_key, public_key) in [
        (Algorithm::RS256, "rsa.key", "rsa.pub"),
        (Algorithm::RS256, "rsa.key", "rsa-pkcs1.pub"),
        (Algorithm::ES256, "p256.key", "p256.pub"),
        (Algorithm::ES384, "p384.key", "p384.pub"),
        (Algorithm::EdDSA, "ed25519.key", "ed25519.pub"),
    ] {
        let key = keys::pem_file(&fixture(public_key)).expect("fixture public key");
        assert_eq!(key.algorithm, algorithm, "{public_key}");
        let verifier = pem_verifier(public_key, ClaimRules::default());
        let token = signed(algorithm, private_key, None, &json!({}));
        let verified = verifier.verify(&token).expect("valid");
        assert_eq!(&*verified.user, "alice", "{public_key}");
        // A kid the server does not know still falls back to the PEM key.
        let token = signed(algorithm, private_key, Some("issuer-key-7"), &json!({}));
        assert!(verifier.verify(&token).is_ok(), "{public_key} with a kid");
    }
}

#[test]
fn a_token_signed_by_another_key_of_the_same_type_is_refused() {
    let verifier = pem_verifier("p256.pub", ClaimRules::default());
    let token = signed(Algorithm::ES256, "p256-other.key", None, &json!({}));
    assert_eq!(verifier.verify(&token).err(), Some(Refused::BadSignature));
}

#[test]
fn the_algorithm_comes_from_the_key_never_from_the_token() {
    let verifier = pem_verifier("rsa.pub", ClaimRules::default());
    // The classic confusion: an HMAC whose secret is the public key text.
    let public_pem = std::fs::read(fixture("rsa.pub")).expect("fixture");
    let forged = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &json!({"sub": "mallory", "exp": now() + 3600}),
        &EncodingKey::from_secret(&public_pem),
    )
    .expect("signs");
    let refused = verifier
        .verify(&forged)
        .expect_err("an HMAC is not an RSA signature");
    assert_eq!(
        refused,
        Refused::WrongAlgorithm {
            alg: Algorithm::HS256,
            accepted: "RS256".into()
        }
    );
    assert!(
        refused.to_string().contains("never from the token"),
        "{refused}"
    );
    // `alg: none`, no signature at all.
    use base64::Engine as _;
    let b64 = |v: &Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string().as_bytes())
    };
    let unsigned = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&json!({"sub": "mallory", "exp": now() + 3600}))
    );
    let refused = verifier
        .verify(&unsigned)
        .expect_err("none is never accepted");
    assert!(
        matches!(&refused, Refused::Malformed(why) if why.contains("none")),
        "{refused:?}"
    );
}

#[test]
fn a_jwks_kid_selects_the_key_and_an_unknown_kid_is_named() {
    let verifier = jwks_verifier();
    for (algorithm, private_key, kid) in [
        (Algorithm::RS256, "rsa.key", "rsa-1"),
        (Algorithm::ES256, "p256.key", "ec-1"),
        (Algorithm::ES256, "p256-other.key", "ec-2"),
        (Algorithm::EdDSA, "ed25519.key", "ed-1"),
    ] {
        let token = signed(algorithm, private_key, Some(kid), &json!({}));
        assert!(verifier.verify(&token).is_ok(), "{kid}");
    }
    // Signed by ec-2's key but naming ec-1: only ec-1 is tried.
    let token = signed(Algorithm::ES256, "p256-other.key", Some("ec-1"), &json!({}));
    assert_eq!(verifier.verify(&token).err(), Some(Refused::BadSignature));
    let token = signed(Algorithm::ES256, "p256.key", Some("retired"), &json!({}));
    assert_eq!(
        verifier.verify(&token).err(),
        Some(Refused::UnknownKey("retired".into()))
    );
    // A kid naming an RSA key cannot be used with another algorithm.
    let token = signed(Algorithm::ES256, "p256.key", Some("rsa-1"), &json!({}));
    assert!(matches!(
        verifier.verify(&token),
        Err(Refused::WrongAlgorithm {
            alg: Algorithm::ES256,
            ..
        })
    ));
    // Without a kid, every key of the token's algorithm is tried.
    let token = signed(Algorithm::ES256, "p256-other.key", None, &json!({}));
    assert!(verifier.verify(&token).is_ok());
}

#[test]
fn nbf_and_exp_hold_within_the_leeway_and_not_beyond() {
    let strict = pem_verifier("p256.pub", ClaimRules::default());
    let lenient = pem_verifier(
        "p256.pub",
        ClaimRules {
            leeway: Duration::from_secs(60),
            ..ClaimRules::default()
        },
    );
    let soon = signed(
        Algorithm::ES256,
        "p256.key",
        None,
        &json!({"nbf": now() + 30}),
    );
    assert_eq!(strict.verify(&soon).err(), Some(Refused::NotYetValid));
    assert!(lenient.verify(&soon).is_ok(), "30 s of skew is within 60 s");
    let later = signed(
        Algorithm::ES256,
        "p256.key",
        None,
        &json!({"nbf": now() + 600}),
    );
    assert_eq!(lenient.verify(&later).err(), Some(Refused::NotYetValid));
    let exp = now() - 30;
    let just_expired = signed(Algorithm::ES256, "p256.key", None, &json!({"exp": exp}));
    assert_eq!(strict.verify(&just_expired).err(), Some(Refused::Expired));
    let verified = lenient.verify(&just_expired).expect("within the leeway");
    assert_eq!(
        verified.valid_until,
        exp + 60,
        "valid until exp plus the leeway"
    );
    let long_expired = signed(
        Algorithm::ES256,
        "p256.key",
        None,
        &json!({"exp": now() - 600}),
    );
    assert_eq!(lenient.verify(&long_expired).err(), Some(Refused::Expired));
}

#[test]
fn issuer_and_audience_are_checked_when_configured() {
    let verifier = pem_verifier(
        "ed25519.pub",
        ClaimRules {
            issuer: Some("https://auth.example.com/".into()),
            audience: Some("vigil".into()),
            ..ClaimRules::default()
        },
    );
    let token = |claims: Value| signed(Algorithm::EdDSA, "ed25519.key", None, &claims);
    let good = json!({"iss": "https://auth.example.com/", "aud": ["other", "vigil"]});
    assert!(verifier.verify(&token(good)).is_ok());
    assert_eq!(
        verifier
            .verify(&token(
                json!({"iss": "https://evil.example/", "aud": "vigil"})
            ))
            .err(),
        Some(Refused::WrongIssuer(Some(
            "https://auth.example.com/".into()
        )))
    );
    assert_eq!(
        verifier
            .verify(&token(
                json!({"iss": "https://auth.example.com/", "aud": "other"})
            ))
            .err(),
        Some(Refused::WrongAudience(Some("vigil".into())))
    );
    assert_eq!(
        verifier.verify(&token(json!({"aud": "vigil"}))).err(),
        Some(Refused::Malformed("the claim `iss` is missing".into()))
    );
    // Without a configured audience, a token meant for one is refused.
    let open = pem_verifier("ed25519.pub", ClaimRules::default());
    let refused = open.verify(&token(json!({"aud": "billing"}))).err();
    assert_eq!(refused, Some(Refused::WrongAudience(None)));
    assert!(open.verify(&token(json!({}))).is_ok());
}

#[test]
fn key_files_that_cannot_be_used_are_refused_with_the_reason() {
    let problem =
        |result: Result<keys::VerificationKey, KeyError>| result.expect_err("refused").to_string();
    let private = problem(keys::pem_file(&fixture("rsa.key")));
    assert!(
        private.contains("PRIVATE KEY; give vigil only the public key"),
        "{private}"
    );
    let missing = problem(keys::pem_file(&fixture("nope.pub")));
    assert!(missing.starts_with("cannot read "), "{missing}");
    let not_pem = problem(keys::pem_file(&fixture("jwks.json")));
    assert!(not_pem.contains("is not a PEM public key"), "{not_pem}");
    let dir = std::env::temp_dir().join(format!("vigil-jwks-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let jwks = dir.join("oct.json");
    std::fs::write(
        &jwks,
        r#"{"keys":[{"kty":"oct","kid":"s","k":"c2VjcmV0"}]}"#,
    )
    .expect("write");
    let oct = keys::jwks_file(&jwks).expect_err("refused").to_string();
    assert!(
        oct.contains("key 0 (kid \"s\")") && oct.contains("jwt_secret"),
        "{oct}"
    );
    std::fs::write(&jwks, r#"{"keys":[]}"#).expect("write");
    let empty = keys::jwks_file(&jwks).expect_err("refused").to_string();
    assert!(empty.contains("`keys` is empty"), "{empty}");
    let mismatched = r#"{"keys":[{"kty":"EC","crv":"P-256","alg":"RS256","x":"AA","y":"AA"}]}"#;
    std::fs::write(&jwks, mismatched).expect("write");
    let wrong = keys::jwks_file(&jwks).expect_err("refused").to_string();
    assert!(wrong.contains("does not fit the key's type"), "{wrong}");
    let _ = std::fs::remove_dir_all(&dir);
}
