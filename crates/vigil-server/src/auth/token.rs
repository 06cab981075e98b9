//! Verifying a token: the key its header selects (by `kid`, else by
//! algorithm among the keys without one), its signature with the algorithm
//! that key is bound to, and its claims: `sub` and `exp` required, `nbf`
//! honoured, `iss` and `aud` when configured, all with the configured leeway
//! for clock skew.

use super::Refused;
use super::keys::VerificationKey;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

/// The claims' rules besides the signature.
#[derive(Debug, Clone, Default)]
pub(crate) struct ClaimRules {
    /// The `iss` every token must name.
    pub(crate) issuer: Option<String>,
    /// The `aud` every token must include. Unset: a token that names an
    /// audience is refused (RFC 7519 4.1.3: it is meant for someone else).
    pub(crate) audience: Option<String>,
    /// How far `exp` and `nbf` may be off, for clock skew between whoever
    /// issues the tokens and this server.
    pub(crate) leeway: Duration,
}

/// What a valid token says.
#[derive(Debug, Clone)]
pub(crate) struct Verified {
    pub(crate) user: Arc<str>,
    /// The `channels` patterns (`None`: all channels).
    pub(crate) channels: Option<Vec<glob::Pattern>>,
    /// When the token stops being valid: `exp` plus the leeway, in seconds
    /// since the Unix epoch.
    pub(crate) valid_until: u64,
}

#[derive(Debug, Deserialize)]
struct Claims {
    sub: String,
    exp: u64,
    #[serde(default)]
    channels: Option<Vec<String>>,
}

/// Checks tokens against the configured keys and rules.
#[derive(Debug)]
pub(crate) struct Verifier {
    /// Each key with the validation of its one algorithm.
    keys: Vec<(VerificationKey, Validation)>,
    rules: ClaimRules,
}

impl Verifier {
    pub(crate) fn new(keys: Vec<VerificationKey>, rules: ClaimRules) -> Self {
        let keys = keys
            .into_iter()
            .map(|key| {
                let validation = validation(key.algorithm, &rules);
                (key, validation)
            })
            .collect();
        Self { keys, rules }
    }

    /// Who `token` names and until when, or why it is refused.
    pub(crate) fn verify(&self, token: &str) -> Result<Verified, Refused> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| Refused::Malformed(format!("its header: {e}")))?;
        let candidates = self.candidates(header.kid.as_deref(), header.alg)?;
        let mut refused = Refused::BadSignature;
        for (key, validation) in candidates {
            match jsonwebtoken::decode::<Claims>(token, &key.key, validation) {
                Ok(data) => return self.verified(data.claims),
                Err(error) => refused = self.refusal(&error),
            }
        }
        Err(refused)
    }

    /// The keys that may verify a token with this `kid` and `alg`: the key
    /// with that `kid`, else the keys without a `kid` bound to `alg`.
    fn candidates(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<impl Iterator<Item = &(VerificationKey, Validation)>, Refused> {
        let named = move |key: &VerificationKey| kid.is_some() && key.kid.as_deref() == kid;
        let by_kid = self.keys.iter().any(|(key, _)| named(key));
        if by_kid
            && !self
                .keys
                .iter()
                .any(|(key, _)| named(key) && key.algorithm == alg)
        {
            return Err(Refused::WrongAlgorithm {
                alg,
                accepted: self.algorithms(|key| named(key)),
            });
        }
        // A `kid` this server knows picks that key; an unknown one, the
        // keys without a `kid`; no `kid`, every key of the algorithm.
        let fits = move |key: &VerificationKey| {
            key.algorithm == alg
                && match kid {
                    Some(_) if by_kid => named(key),
                    Some(_) => key.kid.is_none(),
                    None => true,
                }
        };
        if !self.keys.iter().any(|(key, _)| fits(key)) {
            return Err(match kid {
                Some(kid) if self.keys.iter().any(|(key, _)| key.kid.is_some()) => {
                    Refused::UnknownKey(kid.to_owned())
                }
                Some(_) => Refused::WrongAlgorithm {
                    alg,
                    accepted: self.algorithms(|key| key.kid.is_none()),
                },
                None => Refused::WrongAlgorithm {
                    alg,
                    accepted: self.algorithms(|_| true),
                },
            });
        }
        Ok(self.keys.iter().filter(move |(key, _)| fits(key)))
    }

    /// The algorithms of the keys `which` selects, for an error message.
    fn algorithms(&self, which: impl Fn(&VerificationKey) -> bool) -> String {
        let mut names: Vec<String> = self
            .keys
            .iter()
            .filter(|(key, _)| which(key))
            .map(|(key, _)| format!("{:?}", key.algorithm))
            .collect();
        names.sort();
        names.dedup();
        if names.is_empty() {
            "none".to_owned()
        } else {
            names.join(", ")
        }
    }

    fn verified(&self, claims: Claims) -> Result<Verified, Refused> {
        if claims.sub.is_empty() {
            return Err(Refused::Malformed("`sub` is empty".into()));
        }
        let channels = claims
            .channels
            .map(|patterns| {
                patterns
                    .iter()
                    .map(|p| {
                        glob::Pattern::new(p)
                            .map_err(|e| Refused::Malformed(format!("channel pattern {p:?}: {e}")))
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?;
        Ok(Verified {
            user: Arc::from(claims.sub),
            channels,
            valid_until: claims.exp.saturating_add(self.rules.leeway.as_secs()),
        })
    }

    fn refusal(&self, error: &jsonwebtoken::errors::Error) -> Refused {
        match error.kind() {
            ErrorKind::ExpiredSignature => Refused::Expired,
            ErrorKind::ImmatureSignature => Refused::NotYetValid,
            ErrorKind::InvalidSignature => Refused::BadSignature,
            ErrorKind::InvalidIssuer => Refused::WrongIssuer(self.rules.issuer.clone()),
            ErrorKind::InvalidAudience => Refused::WrongAudience(self.rules.audience.clone()),
            ErrorKind::MissingRequiredClaim(claim) => {
                Refused::Malformed(format!("the claim `{claim}` is missing"))
            }
            _ => Refused::Malformed(error.to_string()),
        }
    }
}

fn validation(algorithm: Algorithm, rules: &ClaimRules) -> Validation {
    let mut validation = Validation::new(algorithm);
    let mut required = vec!["exp", "sub"];
    validation.leeway = rules.leeway.as_secs();
    validation.validate_nbf = true;
    if let Some(issuer) = &rules.issuer {
        validation.set_issuer(&[issuer]);
        required.push("iss");
    }
    if let Some(audience) = &rules.audience {
        validation.set_audience(&[audience]);
        required.push("aud");
    }
    validation.set_required_spec_claims(&required);
    validation
}

#[cfg(test)]
mod tests;
