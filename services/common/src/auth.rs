//! Access-token verification: the `Caller` extractor and the JWKS-backed verifier.
//!
//! Tokens are EdDSA (Ed25519) JWTs. The algorithm is pinned, `kid` is required, and
//! `iss`, `aud`, `exp` and `sub` are checked. Keys come from the auth service's JWKS,
//! cached and refreshed (periodically, and on an unknown `kid` at most every few seconds).

use crate::problem::ApiError;
use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::LocalBoxFuture;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Claims of an Agora access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// The user id.
    pub sub: Uuid,
    /// The username.
    pub name: String,
    /// Issued at (seconds since the epoch).
    pub iat: u64,
    /// Expiry (seconds since the epoch).
    pub exp: u64,
    /// Token id.
    pub jti: Uuid,
}

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The user's id (`sub`).
    pub user_id: Uuid,
    /// The user's username (`name`).
    pub username: String,
}

/// Why a token was refused. Clients only ever see "invalid or expired token".
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The token could not be decoded, or a claim did not validate.
    #[error("invalid token: {0}")]
    Invalid(#[from] jsonwebtoken::errors::Error),
    /// The header names no key, or a key the issuer does not publish.
    #[error("unknown signing key")]
    UnknownKey,
    /// The key set could not be fetched.
    #[error("key set unavailable: {0}")]
    KeysUnavailable(String),
}

/// Where the verifier gets its public keys.
pub enum KeySource {
    /// A fixed set (the auth service verifies its own tokens this way).
    Static(JwkSet),
    /// A JWKS URL, fetched and cached.
    Remote {
        /// e.g. `http://auth:8080/api/v1/auth/jwks`.
        url: String,
    },
}

struct KeyCache {
    keys: Arc<HashMap<String, DecodingKey>>,
    fetched_at: Option<Instant>,
    /// Last fetch attempt, successful or not: while the auth service is down, requests
    /// must not each wait for a fetch of their own.
    attempted_at: Option<Instant>,
}

/// How long fetched keys are trusted before a refresh.
const KEYS_MAX_AGE: Duration = Duration::from_secs(300);
/// The least time between two fetches caused by unknown `kid`s (stops a flood of
/// forged tokens from turning into a flood of JWKS requests).
const MIN_REFETCH_INTERVAL: Duration = Duration::from_secs(5);

/// Verifies access tokens against the auth service's keys.
pub struct TokenVerifier {
    validation: Validation,
    source: KeySource,
    cache: RwLock<KeyCache>,
    refresh: tokio::sync::Mutex<()>,
}

/// Only Ed25519 keys with a `kid` are accepted from a JWKS.
fn usable_keys(set: &JwkSet) -> HashMap<String, DecodingKey> {
    set.keys
        .iter()
        .filter_map(|jwk| {
            let kid = jwk.common.key_id.clone()?;
            match &jwk.algorithm {
                AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
                    DecodingKey::from_jwk(jwk).ok().map(|key| (kid, key))
                }
                _ => None,
            }
        })
        .collect()
}

impl TokenVerifier {
    /// A verifier for tokens with this issuer and audience.
    pub fn new(issuer: &str, audience: &str, source: KeySource) -> Self {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 30;
        let (keys, fetched_at) = match &source {
            KeySource::Static(set) => (usable_keys(set), Some(Instant::now())),
            KeySource::Remote { .. } => (HashMap::new(), None),
        };
        Self {
            validation,
            source,
            cache: RwLock::new(KeyCache {
                keys: Arc::new(keys),
                fetched_at,
                attempted_at: None,
            }),
            refresh: tokio::sync::Mutex::new(()),
        }
    }

    fn snapshot(&self) -> (Arc<HashMap<String, DecodingKey>>, Option<Instant>) {
        let cache = self
            .cache
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        (cache.keys.clone(), cache.fetched_at)
    }

    fn attempted_recently(&self) -> bool {
        let cache = self
            .cache
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        cache
            .attempted_at
            .is_some_and(|t| t.elapsed() < MIN_REFETCH_INTERVAL)
    }

    /// Verifies a compact JWS and returns the caller it names.
    pub async fn verify(&self, token: &str) -> Result<Caller, TokenError> {
        let header = jsonwebtoken::decode_header(token)?;
        if header.alg != Algorithm::EdDSA {
            return Err(TokenError::Invalid(
                jsonwebtoken::errors::ErrorKind::InvalidAlgorithm.into(),
            ));
        }
        let kid = header.kid.ok_or(TokenError::UnknownKey)?;
        let (mut keys, fetched_at) = self.snapshot();
        let stale = fetched_at.is_none_or(|t| t.elapsed() > KEYS_MAX_AGE);
        if stale || !keys.contains_key(&kid) {
            // A failed refresh keeps the old keys: the auth service being briefly
            // unreachable must not log everybody out.
            match self.refresh_keys(fetched_at).await {
                Ok(fresh) => keys = fresh,
                Err(err) if keys.is_empty() => return Err(err),
                Err(err) => tracing::warn!(error = %err, "JWKS refresh failed; using cached keys"),
            }
        }
        let key = keys.get(&kid).ok_or(TokenError::UnknownKey)?;
        let data = jsonwebtoken::decode::<AccessClaims>(token, key, &self.validation)?;
        Ok(Caller {
            user_id: data.claims.sub,
            username: data.claims.name,
        })
    }

    /// Makes sure keys are loaded (used by readiness checks).
    pub async fn ensure_keys(&self) -> Result<usize, TokenError> {
        let (keys, fetched_at) = self.snapshot();
        if !keys.is_empty() {
            return Ok(keys.len());
        }
        self.refresh_keys(fetched_at).await.map(|k| k.len())
    }

    async fn refresh_keys(
        &self,
        seen: Option<Instant>,
    ) -> Result<Arc<HashMap<String, DecodingKey>>, TokenError> {
        let KeySource::Remote { url } = &self.source else {
            return Ok(self.snapshot().0);
        };
        let _guard = self.refresh.lock().await;
        let (keys, fetched_at) = self.snapshot();
        // Someone else refreshed while we waited, or somebody tried very recently.
        if fetched_at != seen || self.attempted_recently() {
            return if keys.is_empty() {
                Err(TokenError::KeysUnavailable(
                    "JWKS fetch failed recently".into(),
                ))
            } else {
                Ok(keys)
            };
        }
        let fetched = fetch_jwks(url).await;
        let mut cache = self
            .cache
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        cache.attempted_at = Some(Instant::now());
        let fresh = Arc::new(usable_keys(&fetched?));
        tracing::debug!(keys = fresh.len(), "JWKS refreshed");
        cache.keys = fresh.clone();
        cache.fetched_at = cache.attempted_at;
        Ok(fresh)
    }
}

async fn fetch_jwks(url: &str) -> Result<JwkSet, TokenError> {
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(5))
        .finish();
    let mut resp = client
        .get(url)
        .insert_header((header::ACCEPT, "application/json"))
        .send()
        .await
        .map_err(|e| TokenError::KeysUnavailable(e.to_string()))?;
    if !resp.status().is_success() {
        return Err(TokenError::KeysUnavailable(format!(
            "JWKS answered {}",
            resp.status()
        )));
    }
    resp.json::<JwkSet>()
        .limit(256 * 1024)
        .await
        .map_err(|e| TokenError::KeysUnavailable(e.to_string()))
}

/// The bearer token of a request, if it carries one.
pub fn bearer_token(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

fn invalid_token() -> ApiError {
    ApiError::Unauthorized(Cow::Borrowed("invalid or expired access token"))
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let token = bearer_token(req).map(str::to_owned);
        let verifier = req.app_data::<web::Data<TokenVerifier>>().cloned();
        Box::pin(async move {
            let token = token.ok_or(ApiError::Unauthorized(Cow::Borrowed(
                "a bearer access token is required",
            )))?;
            let verifier = verifier
                .ok_or_else(|| ApiError::internal("TokenVerifier is not registered as app data"))?;
            match verifier.verify(&token).await {
                Ok(caller) => Ok(caller),
                Err(TokenError::KeysUnavailable(reason)) => {
                    tracing::warn!(%reason, "cannot verify tokens: key set unavailable");
                    Err(ApiError::Unavailable(Cow::Borrowed(
                        "token verification is unavailable",
                    )))
                }
                Err(err) => {
                    tracing::debug!(error = %err, "token refused");
                    Err(invalid_token())
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    fn token_with_kid(kid: &str) -> String {
        let header = URL_SAFE_NO_PAD.encode(format!("{{\"alg\":\"EdDSA\",\"kid\":\"{kid}\"}}"));
        format!("{header}.e30.c2ln")
    }

    #[actix_web::test]
    async fn an_unreachable_jwks_fails_fast_and_is_not_hammered() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or(1);
        let verifier = TokenVerifier::new(
            "agora",
            "agora",
            KeySource::Remote {
                url: format!("http://127.0.0.1:{port}/jwks"),
            },
        );
        let first = verifier.verify(&token_with_kid("k1")).await;
        assert!(
            matches!(first, Err(TokenError::KeysUnavailable(_))),
            "{first:?}"
        );
        // Within the back-off window no request reaches the network: fast, same answer.
        let started = Instant::now();
        for _ in 0..50 {
            let again = verifier.verify(&token_with_kid("k2")).await;
            assert!(matches!(again, Err(TokenError::KeysUnavailable(_))));
        }
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "{:?}",
            started.elapsed()
        );
    }

    #[actix_web::test]
    async fn tokens_without_kid_or_with_other_algorithms_are_invalid() {
        let verifier =
            TokenVerifier::new("agora", "agora", KeySource::Static(JwkSet { keys: vec![] }));
        let no_kid = format!("{}.e30.c2ln", URL_SAFE_NO_PAD.encode("{\"alg\":\"EdDSA\"}"));
        assert!(matches!(
            verifier.verify(&no_kid).await,
            Err(TokenError::UnknownKey)
        ));
        let hs = format!(
            "{}.e30.c2ln",
            URL_SAFE_NO_PAD.encode("{\"alg\":\"HS256\",\"kid\":\"k\"}")
        );
        assert!(matches!(
            verifier.verify(&hs).await,
            Err(TokenError::Invalid(_))
        ));
        assert!(verifier.verify("not a token").await.is_err());
    }
}
