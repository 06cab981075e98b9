//! The keys tokens are verified with, each bound to one algorithm decided by
//! the key itself: the HS256 secret; a public key from a PEM file (RSA →
//! RS256, EC P-256 → ES256, EC P-384 → ES384, Ed25519 → EdDSA); the keys of
//! a JWKS file, chosen by `kid`. A token's header only selects among them;
//! it never decides how a key is used, so neither `alg: none` nor an HMAC
//! signed with a public key can pass.

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey};
use spki::ObjectIdentifier;
use std::path::{Path, PathBuf};

const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

/// One key and the only algorithm it verifies.
pub(crate) struct VerificationKey {
    /// The JWKS `kid`; `None` for the secret and a PEM key.
    pub(crate) kid: Option<String>,
    pub(crate) algorithm: Algorithm,
    pub(crate) key: DecodingKey,
}

impl std::fmt::Debug for VerificationKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerificationKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// Why a key file cannot be used; said at start (and by `check-config`).
#[derive(Debug, thiserror::Error)]
pub(crate) enum KeyError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path} is not a PEM public key (expected `-----BEGIN PUBLIC KEY-----` or \
         `-----BEGIN RSA PUBLIC KEY-----`): {problem}"
    )]
    NotPem { path: PathBuf, problem: String },
    #[error(
        "{path}: {problem}; vigil verifies tokens with RSA (RS256), EC P-256 (ES256), \
         EC P-384 (ES384) and Ed25519 (EdDSA) public keys"
    )]
    Unsupported { path: PathBuf, problem: String },
    #[error("{path} is not a JWKS file (a JSON object with a `keys` array of JWKs): {problem}")]
    NotJwks { path: PathBuf, problem: String },
    #[error("{path}: key {index} ({kid}) cannot be used: {problem}")]
    BadJwk {
        path: PathBuf,
        index: usize,
        kid: String,
        problem: String,
    },
}

/// The public keys of the PEM file and the JWKS file the settings name,
/// read now.
pub(crate) fn public_keys(
    pem: Option<&Path>,
    jwks: Option<&Path>,
) -> Result<Vec<VerificationKey>, KeyError> {
    let mut keys = Vec::new();
    if let Some(path) = pem {
        keys.push(pem_file(path)?);
    }
    if let Some(path) = jwks {
        keys.extend(jwks_file(path)?);
    }
    Ok(keys)
}

/// The HS256 key of `secret`.
pub(crate) fn secret(secret: &str) -> VerificationKey {
    VerificationKey {
        kid: None,
        algorithm: Algorithm::HS256,
        key: DecodingKey::from_secret(secret.as_bytes()),
    }
}

/// The public key in the PEM file at `path`, with the algorithm its type
/// and curve call for.
pub(crate) fn pem_file(path: &Path) -> Result<VerificationKey, KeyError> {
    let text = std::fs::read(path).map_err(|source| KeyError::Read {
        path: path.to_owned(),
        source,
    })?;
    let not_pem = |problem: String| KeyError::NotPem {
        path: path.to_owned(),
        problem,
    };
    let unsupported = |problem: String| KeyError::Unsupported {
        path: path.to_owned(),
        problem,
    };
    let block = pem::parse(&text).map_err(|e| not_pem(e.to_string()))?;
    let algorithm = match block.tag() {
        "RSA PUBLIC KEY" => Algorithm::RS256,
        "PUBLIC KEY" => {
            let info = spki::SubjectPublicKeyInfoRef::try_from(block.contents())
                .map_err(|e| not_pem(format!("not a SubjectPublicKeyInfo: {e}")))?;
            algorithm_of(&info.algorithm).map_err(unsupported)?
        }
        "CERTIFICATE" => {
            return Err(not_pem(
                "it holds a certificate; extract its public key with \
                 `openssl x509 -pubkey -noout`"
                    .into(),
            ));
        }
        tag if tag.contains("PRIVATE") => {
            return Err(not_pem(format!(
                "it holds a {tag}; give vigil only the public key, the private one stays with \
                 whoever issues the tokens"
            )));
        }
        tag => return Err(not_pem(format!("it holds a {tag}"))),
    };
    let key = match algorithm {
        Algorithm::RS256 => DecodingKey::from_rsa_pem(&text),
        Algorithm::ES256 | Algorithm::ES384 => DecodingKey::from_ec_pem(&text),
        _ => DecodingKey::from_ed_pem(&text),
    }
    .map_err(|e| unsupported(e.to_string()))?;
    Ok(VerificationKey {
        kid: None,
        algorithm,
        key,
    })
}

/// RS256, ES256, ES384 or EdDSA for a SubjectPublicKeyInfo's algorithm.
fn algorithm_of(identifier: &spki::AlgorithmIdentifierRef<'_>) -> Result<Algorithm, String> {
    match identifier.oid {
        RSA_ENCRYPTION => Ok(Algorithm::RS256),
        ED25519 => Ok(Algorithm::EdDSA),
        EC_PUBLIC_KEY => match identifier.parameters_oid() {
            Ok(P256) => Ok(Algorithm::ES256),
            Ok(P384) => Ok(Algorithm::ES384),
            Ok(curve) => Err(format!("an EC key on curve {curve}")),
            Err(e) => Err(format!("an EC key without a named curve: {e}")),
        },
        other => Err(format!("a key of algorithm {other}")),
    }
}

/// Every key of the JWKS file at `path`. A key's algorithm is its `alg`
/// when it has one (checked against its type), else what its type and
/// curve call for. Symmetric (`oct`) keys are refused: a secret does not
/// belong in a key set that is usually published.
pub(crate) fn jwks_file(path: &Path) -> Result<Vec<VerificationKey>, KeyError> {
    let text = std::fs::read(path).map_err(|source| KeyError::Read {
        path: path.to_owned(),
        source,
    })?;
    let set: JwkSet = serde_json::from_slice(&text).map_err(|e| KeyError::NotJwks {
        path: path.to_owned(),
        problem: e.to_string(),
    })?;
    if set.keys.is_empty() {
        return Err(KeyError::NotJwks {
            path: path.to_owned(),
            problem: "`keys` is empty".into(),
        });
    }
    set.keys
        .iter()
        .enumerate()
        .map(|(index, jwk)| {
            jwk_key(jwk).map_err(|problem| KeyError::BadJwk {
                path: path.to_owned(),
                index,
                kid: jwk
                    .common
                    .key_id
                    .as_deref()
                    .map_or_else(|| "no kid".to_owned(), |kid| format!("kid {kid:?}")),
                problem,
            })
        })
        .collect()
}

fn jwk_key(jwk: &Jwk) -> Result<VerificationKey, String> {
    let by_type = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(params) => match params.curve {
            EllipticCurve::P256 => Algorithm::ES256,
            EllipticCurve::P384 => Algorithm::ES384,
            ref curve => return Err(format!("EC curve {curve:?} is not supported")),
        },
        AlgorithmParameters::OctetKeyPair(params) => match params.curve {
            EllipticCurve::Ed25519 => Algorithm::EdDSA,
            ref curve => return Err(format!("OKP curve {curve:?} is not supported")),
        },
        AlgorithmParameters::OctetKey(_) => {
            return Err(
                "a symmetric (`oct`) key; put an HS256 secret in jwt_secret instead".into(),
            );
        }
    };
    let algorithm = match jwk.common.key_algorithm {
        None => by_type,
        Some(named) => {
            let named: Algorithm = named
                .to_string()
                .parse()
                .map_err(|_| format!("`alg` {named} is not a signature algorithm"))?;
            let same_family = match by_type {
                Algorithm::RS256 => matches!(
                    named,
                    Algorithm::RS256
                        | Algorithm::RS384
                        | Algorithm::RS512
                        | Algorithm::PS256
                        | Algorithm::PS384
                        | Algorithm::PS512
                ),
                other => named == other,
            };
            if !same_family {
                return Err(format!(
                    "`alg` {named:?} does not fit the key's type ({by_type:?})"
                ));
            }
            named
        }
    };
    let key = DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    Ok(VerificationKey {
        kid: jwk.common.key_id.clone(),
        algorithm,
        key,
    })
}
