//! Who is connecting: a JWT (`sub` = user id, `exp` enforced, an optional
//! `channels` claim of glob patterns) verified with the configured keys
//! ([`keys`], [`token`]), or an anonymous user when no key is configured
//! (the configuration allows that on loopback only; tokens signed with a
//! development secret generated for the run are then accepted too). Also
//! the Origin check that stops cross-site WebSocket hijacking.
//!
//! Every refusal happens before the upgrade, as an HTTP status with a
//! reason; a token refreshed in-band is checked the same way.

pub(crate) mod keys;
pub(crate) mod token;

use hyper::Request;
use hyper::header::{AUTHORIZATION, HOST, ORIGIN, SEC_WEBSOCKET_PROTOCOL};
use std::sync::Arc;
pub(crate) use token::{ClaimRules, Verified, Verifier};

/// The subprotocol a browser offers next to `bearer.<token>`, and that the
/// server selects (a browser fails a connection whose server selects none of
/// the protocols it offered).
pub(crate) const SUBPROTOCOL: &str = "vigil";

/// The identity of a connection, decided before its upgrade.
#[derive(Debug, Clone, Default)]
pub(crate) struct Identity {
    /// The token's `sub`; `None` for an anonymous connection, which is
    /// named after its connection id.
    pub(crate) user: Option<Arc<str>>,
    /// Channels the token allows (`None`: all).
    channels: Option<Box<[glob::Pattern]>>,
    /// When the token stops being valid (its `exp` plus the leeway), in
    /// seconds since the Unix epoch; `None` for an anonymous connection.
    /// (Kept in 8 bytes: one is held per open connection.)
    valid_until: Option<std::num::NonZeroU64>,
}

impl From<Verified> for Identity {
    fn from(verified: Verified) -> Self {
        Self {
            user: Some(verified.user),
            channels: verified.channels.map(Vec::into_boxed_slice),
            valid_until: std::num::NonZeroU64::new(verified.valid_until),
        }
    }
}

impl Identity {
    /// The user id: the token's subject, or `anon-<connection id>`.
    pub(crate) fn user_for(&self, connection: u64) -> Arc<str> {
        self.user
            .clone()
            .unwrap_or_else(|| Arc::from(format!("anon-{connection}")))
    }

    /// When the token stops being valid, in seconds since the Unix epoch;
    /// `None` for an anonymous connection.
    pub(crate) fn valid_until(&self) -> Option<u64> {
        self.valid_until.map(std::num::NonZeroU64::get)
    }

    /// Whether no token named the user.
    pub(crate) fn is_anonymous(&self) -> bool {
        self.user.is_none()
    }

    /// Whether this identity may join and publish to `channel`.
    pub(crate) fn may_use(&self, channel: &str) -> bool {
        self.channels
            .as_ref()
            .is_none_or(|patterns| patterns.iter().any(|p| p.matches(channel)))
    }
}

/// Why a request was refused, as the HTTP answer will say it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refused {
    #[error(
        "a token is required: pass ?token=, an `Authorization: Bearer` header, or the subprotocol `bearer.<token>` next to `vigil`"
    )]
    MissingToken,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet: its `nbf` is in the future")]
    NotYetValid,
    #[error("the token's signature is not valid for this server")]
    BadSignature,
    #[error("the token names key {0:?} (`kid`), which this server does not have")]
    UnknownKey(String),
    #[error(
        "the token is signed with {alg:?}, which no key of this server that could verify it \
         uses (they use {accepted}); the algorithm comes from the key, never from the token"
    )]
    WrongAlgorithm {
        alg: jsonwebtoken::Algorithm,
        accepted: String,
    },
    #[error("{}", issuer_problem(.0.as_deref()))]
    WrongIssuer(Option<String>),
    #[error("{}", audience_problem(.0.as_deref()))]
    WrongAudience(Option<String>),
    #[error("the token is not a valid JWT with `sub` and `exp`: {0}")]
    Malformed(String),
    #[error("cross-origin WebSocket connections are not allowed from {0}")]
    Origin(String),
}

impl Refused {
    pub(crate) fn status(&self) -> hyper::StatusCode {
        match self {
            Self::Origin(_) => hyper::StatusCode::FORBIDDEN,
            _ => hyper::StatusCode::UNAUTHORIZED,
        }
    }
}

fn issuer_problem(expected: Option<&str>) -> String {
    match expected {
        Some(issuer) => format!("the token's issuer (`iss`) is not {issuer:?}"),
        None => "the token's issuer (`iss`) is not accepted".to_owned(),
    }
}

fn audience_problem(expected: Option<&str>) -> String {
    match expected {
        Some(audience) => format!("the token's audience (`aud`) does not include {audience:?}"),
        None => "the token is meant for an audience (`aud`), and this server has none \
                 configured (jwt_audience)"
            .to_owned(),
    }
}

/// The secret tokens are checked against.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum TokenSecret {
    /// Configured: every client needs a token signed with it.
    Configured(String),
    /// None configured: clients may connect anonymously, or with a token
    /// signed with this secret, generated for this run only.
    Development(String),
}

impl TokenSecret {
    /// The configured secret, or a fresh random development secret (256
    /// bits from the kernel, hex).
    pub(crate) fn configured_or_generated(configured: Option<&str>) -> std::io::Result<Self> {
        if let Some(secret) = configured {
            return Ok(Self::Configured(secret.to_owned()));
        }
        let mut bytes = [0u8; 32];
        std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut bytes)?;
        Ok(Self::Development(
            bytes.iter().map(|byte| format!("{byte:02x}")).collect(),
        ))
    }
}

impl std::fmt::Debug for TokenSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Configured(_) => f.write_str("Configured(<redacted>)"),
            Self::Development(_) => f.write_str("Development(<redacted>)"),
        }
    }
}

/// Checks tokens against the keys, and browsers' origins against the
/// allow-list.
pub(crate) struct Auth {
    verifier: Verifier,
    /// Whether a client without a token is let in, anonymously.
    anonymous: bool,
    /// Origins allowed besides the server's own, lowercased; `*` allows all.
    allowed_origins: Vec<String>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("tokens_required", &!self.anonymous)
            .field("allowed_origins", &self.allowed_origins)
            .finish()
    }
}

impl Auth {
    /// Tokens verified with `secret` (HS256, when there is one) and
    /// `public_keys`, by `rules`; anonymous clients are let in when the
    /// secret is a development one. `allowed_origins` as the configuration
    /// validated them: `*` or lowercase `scheme://host[:port]`.
    pub(crate) fn new(
        secret: Option<&TokenSecret>,
        public_keys: Vec<keys::VerificationKey>,
        rules: ClaimRules,
        allowed_origins: Vec<String>,
    ) -> Self {
        let mut all = Vec::with_capacity(public_keys.len() + 1);
        let anonymous = match secret {
            Some(TokenSecret::Configured(secret)) => {
                all.push(keys::secret(secret));
                false
            }
            Some(TokenSecret::Development(secret)) => {
                all.push(keys::secret(secret));
                true
            }
            None => false,
        };
        all.extend(public_keys);
        Self {
            verifier: Verifier::new(all, rules),
            anonymous,
            allowed_origins,
        }
    }

    /// Whether clients may connect without a token (no key configured, so
    /// the server listens on loopback only).
    pub(crate) fn anonymous(&self) -> bool {
        self.anonymous
    }

    /// Who `token` names, for a token refreshed on an open connection.
    pub(crate) fn verify(&self, token: &str) -> Result<Verified, Refused> {
        self.verifier.verify(token)
    }

    /// The identity of `request`, or why it may not connect; `scheme` is
    /// how the client reached this server (`http`, or `https` behind a
    /// trusted TLS-terminating proxy), for the same-origin check.
    pub(crate) fn identify<B>(
        &self,
        request: &Request<B>,
        scheme: &str,
    ) -> Result<Identity, Refused> {
        check_origin(request, &self.allowed_origins, scheme)?;
        match token_of(request) {
            Some(token) => self.verifier.verify(&token).map(Identity::from),
            None if self.anonymous => Ok(Identity::default()),
            None => Err(Refused::MissingToken),
        }
    }
}

/// The token from `?token=`, `Authorization: Bearer`, or the
/// `bearer.<token>` subprotocol, in that order.
fn token_of<B>(request: &Request<B>) -> Option<String> {
    let from_query = request.uri().query().and_then(|query| {
        query
            .split('&')
            .find_map(|pair| pair.strip_prefix("token="))
            .map(str::to_owned)
    });
    let from_header = || {
        request
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|t| t.trim().to_owned())
    };
    let from_protocol = || {
        request
            .headers()
            .get_all(SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .find_map(|p| p.trim().strip_prefix("bearer."))
            .map(str::to_owned)
    };
    from_query
        .or_else(from_header)
        .or_else(from_protocol)
        .filter(|t| !t.is_empty())
}

/// A browser always sends `Origin`; it must name the host the client
/// connected to, with the scheme it connected with (an `https` page is not
/// the same origin as this `http` server, RFC 6454), or be on the
/// allow-list. Requests without `Origin` (native clients) pass.
fn check_origin<B>(request: &Request<B>, allowed: &[String], scheme: &str) -> Result<(), Refused> {
    let Some(origin) = request.headers().get(ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or_default();
    if allowed
        .iter()
        .any(|entry| entry == "*" || entry.eq_ignore_ascii_case(origin))
    {
        return Ok(());
    }
    let host = request
        .headers()
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let origin_host = origin
        .get(..scheme.len() + 3)
        .filter(|prefix| prefix.eq_ignore_ascii_case(&format!("{scheme}://")))
        .and_then(|_| origin.get(scheme.len() + 3..))
        .unwrap_or_default();
    if !host.is_empty() && origin_host.eq_ignore_ascii_case(host) {
        Ok(())
    } else {
        Err(Refused::Origin(origin.to_owned()))
    }
}

#[cfg(test)]
mod tests;
