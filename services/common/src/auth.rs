//! Access-token verification: the `Caller` extractor and the JWKS-backed verifier.
//!
//! Tokens are EdDSA (Ed25519) JWTs. The algorithm is pinned, `kid` is required, and
//! `iss`, `aud`, `exp` and `sub` are checked. Keys come from the auth service's JWKS,
//! cached and refreshed (periodically, and on an unknown `kid` at most every few seconds).
//! A token already verified is not verified again until it expires or the key set
//! changes: the gateway and every service see the same token on each request, and an
//! Ed25519 check costs more than the rest of a small request's handling.

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
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
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
    /// The account's token version when it was issued: a revocation refuses the
    /// versions below its own (see [`crate::revocations`]). Absent: 0.
    #[serde(default)]
    pub ver: i64,
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
    /// The token is valid but revoked (an erased account, a changed password).
    #[error("revoked token")]
    Revoked,
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

/// How long fetched keys are used before a background refresh.
const KEYS_MAX_AGE: Duration = Duration::from_secs(300);
/// The least time between two fetches (stops a flood of forged tokens with made-up
/// `kid`s from turning into a flood of JWKS requests).
const MIN_REFETCH_INTERVAL: Duration = Duration::from_secs(5);
/// How long one JWKS fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// The most verified tokens remembered (a few MiB); when full, the memory starts over.
const VERIFIED_CAPACITY: usize = 20_000;
/// Seconds of clock skew allowed on `exp`, for verified and remembered tokens alike.
const LEEWAY_SECS: u64 = 30;

/// A token that passed verification, until it expires or the keys change.
struct Verified {
    caller: Caller,
    exp: u64,
    ver: i64,
}

/// Verifies access tokens against the auth service's keys. Cheap to clone.
///
/// Known keys never wait for the network: when they are older than the refresh age,
/// the cached keys are used and one background task refreshes them. Only a token with
/// an unknown `kid` (a key rotation) waits for a fetch, and at most one fetch runs at a
/// time, at most every few seconds.
#[derive(Clone)]
pub struct TokenVerifier {
    inner: Arc<Inner>,
}

struct Inner {
    validation: Validation,
    source: KeySource,
    cache: RwLock<KeyCache>,
    max_age: Duration,
    min_refetch: Duration,
    /// Held while fetching: requests with unknown kids queue here, no one else does.
    fetching: tokio::sync::Mutex<()>,
    /// A background refresh is scheduled or running.
    refreshing: AtomicBool,
    /// JWKS fetches attempted (for tests and diagnostics).
    fetches: AtomicUsize,
    /// Tokens verified with the current keys, by their full text.
    verified: Mutex<HashMap<Box<str>, Verified>>,
    /// Revoked tokens, refused although valid.
    revocations: Arc<crate::revocations::Revocations>,
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
        Self::with_intervals(issuer, audience, source, KEYS_MAX_AGE, MIN_REFETCH_INTERVAL)
    }

    /// [`new`](Self::new) with explicit refresh age and least refetch interval (tests).
    pub fn with_intervals(
        issuer: &str,
        audience: &str,
        source: KeySource,
        max_age: Duration,
        min_refetch: Duration,
    ) -> Self {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = LEEWAY_SECS;
        let (keys, fetched_at) = match &source {
            KeySource::Static(set) => (usable_keys(set), Some(Instant::now())),
            KeySource::Remote { .. } => (HashMap::new(), None),
        };
        Self {
            inner: Arc::new(Inner {
                validation,
                source,
                cache: RwLock::new(KeyCache {
                    keys: Arc::new(keys),
                    fetched_at,
                    attempted_at: None,
                }),
                max_age,
                min_refetch,
                fetching: tokio::sync::Mutex::new(()),
                refreshing: AtomicBool::new(false),
                fetches: AtomicUsize::new(0),
                verified: Mutex::new(HashMap::new()),
                revocations: Arc::default(),
            }),
        }
    }

    /// The revocations this verifier honours (a follower fills them).
    pub fn revocations(&self) -> &Arc<crate::revocations::Revocations> {
        &self.inner.revocations
    }

    /// Whether the keys come from the auth service (not a fixed set).
    pub fn is_remote(&self) -> bool {
        matches!(self.inner.source, KeySource::Remote { .. })
    }

    /// JWKS fetches attempted so far.
    pub fn fetch_count(&self) -> usize {
        self.inner.fetches.load(Ordering::Relaxed)
    }

    /// Verifies a compact JWS and returns the caller it names.
    pub async fn verify(&self, token: &str) -> Result<Caller, TokenError> {
        let remembered = self.inner.remembered(token);
        crate::metrics::kit()
            .token_cache
            .get_or_create(&crate::metrics::CacheLabels {
                result: if remembered.is_some() { "hit" } else { "miss" },
            })
            .inc();
        if let Some((caller, ver)) = remembered {
            if self.inner.revocations.refuses(caller.user_id, ver) {
                return Err(TokenError::Revoked);
            }
            // Refreshed keys may retire a key, and with it this token.
            if self
                .inner
                .snapshot()
                .1
                .is_none_or(|t| t.elapsed() > self.inner.max_age)
            {
                self.refresh_in_background();
            }
            return Ok(caller);
        }
        let header = jsonwebtoken::decode_header(token)?;
        if header.alg != Algorithm::EdDSA {
            return Err(TokenError::Invalid(
                jsonwebtoken::errors::ErrorKind::InvalidAlgorithm.into(),
            ));
        }
        let kid = header.kid.ok_or(TokenError::UnknownKey)?;
        let (keys, fetched_at) = self.inner.snapshot();
        let keys = if keys.contains_key(&kid) {
            if fetched_at.is_none_or(|t| t.elapsed() > self.inner.max_age) {
                self.refresh_in_background();
            }
            keys
        } else {
            self.inner.fetch_for_unknown_kid(&kid).await?
        };
        let key = keys.get(&kid).ok_or(TokenError::UnknownKey)?;
        let data = jsonwebtoken::decode::<AccessClaims>(token, key, &self.inner.validation)?;
        let caller = Caller {
            user_id: data.claims.sub,
            username: data.claims.name,
        };
        self.inner
            .remember(token, &caller, data.claims.exp, data.claims.ver);
        if self
            .inner
            .revocations
            .refuses(caller.user_id, data.claims.ver)
        {
            return Err(TokenError::Revoked);
        }
        Ok(caller)
    }

    /// Makes sure keys are loaded, and the revocations when they are followed (used
    /// by readiness checks).
    pub async fn ensure_keys(&self) -> Result<usize, TokenError> {
        if !self.inner.revocations.ready() {
            return Err(TokenError::KeysUnavailable(
                "token revocations not loaded yet".into(),
            ));
        }
        let (keys, _) = self.inner.snapshot();
        if !keys.is_empty() {
            return Ok(keys.len());
        }
        self.inner.fetch_for_unknown_kid("").await.map(|k| k.len())
    }

    fn refresh_in_background(&self) {
        if !matches!(self.inner.source, KeySource::Remote { .. })
            || self.inner.refreshing.swap(true, Ordering::AcqRel)
        {
            return;
        }
        let inner = self.inner.clone();
        // awc is single-threaded: the task runs on this worker's local set.
        actix_web::rt::spawn(async move {
            if !inner.attempted_recently() {
                let _guard = inner.fetching.lock().await;
                if let Err(err) = inner.fetch().await {
                    tracing::warn!(error = %err, "JWKS refresh failed; keeping the cached keys");
                }
            }
            inner.refreshing.store(false, Ordering::Release);
        });
    }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Inner {
    fn verified(&self) -> std::sync::MutexGuard<'_, HashMap<Box<str>, Verified>> {
        self.verified
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The caller of a token verified before, unless it has expired since (the same
    /// leeway as a full check).
    fn remembered(&self, token: &str) -> Option<(Caller, i64)> {
        let mut verified = self.verified();
        let entry = verified.get(token)?;
        if now_secs() < entry.exp.saturating_add(LEEWAY_SECS) {
            return Some((entry.caller.clone(), entry.ver));
        }
        verified.remove(token);
        None
    }

    fn remember(&self, token: &str, caller: &Caller, exp: u64, ver: i64) {
        let mut verified = self.verified();
        if verified.len() >= VERIFIED_CAPACITY {
            verified.clear();
        }
        verified.insert(
            token.into(),
            Verified {
                caller: caller.clone(),
                exp,
                ver,
            },
        );
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
            .is_some_and(|t| t.elapsed() < self.min_refetch)
    }

    /// Fetches the key set for a `kid` the cache lacks, unless a fetch happened very
    /// recently; waits for a fetch already under way instead of starting another.
    async fn fetch_for_unknown_kid(
        &self,
        kid: &str,
    ) -> Result<Arc<HashMap<String, DecodingKey>>, TokenError> {
        if !matches!(self.source, KeySource::Remote { .. }) {
            return Ok(self.snapshot().0);
        }
        let _guard = self.fetching.lock().await;
        let (keys, _) = self.snapshot();
        // Someone fetched while we waited, or somebody tried very recently.
        if (!kid.is_empty() && keys.contains_key(kid)) || self.attempted_recently() {
            return if keys.is_empty() {
                Err(TokenError::KeysUnavailable(
                    "JWKS fetch failed recently".into(),
                ))
            } else {
                Ok(keys)
            };
        }
        match self.fetch().await {
            Ok(fresh) => Ok(fresh),
            // A failed fetch keeps the old keys: the auth service being briefly
            // unreachable must not log everybody out.
            Err(err) if keys.is_empty() => Err(err),
            Err(err) => {
                tracing::warn!(error = %err, "JWKS fetch failed; using cached keys");
                Ok(keys)
            }
        }
    }

    /// One fetch; the caller holds `fetching`.
    async fn fetch(&self) -> Result<Arc<HashMap<String, DecodingKey>>, TokenError> {
        let KeySource::Remote { url } = &self.source else {
            return Ok(self.snapshot().0);
        };
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let fetched = fetch_jwks(url).await;
        let mut cache = self
            .cache
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        cache.attempted_at = Some(Instant::now());
        let fresh = Arc::new(usable_keys(&fetched?));
        tracing::debug!(keys = fresh.len(), "JWKS refreshed");
        // A key gone from the set takes its tokens with it.
        let same_kids =
            fresh.len() == cache.keys.len() && fresh.keys().all(|kid| cache.keys.contains_key(kid));
        if !same_kids {
            self.verified().clear();
        }
        cache.keys = fresh.clone();
        cache.fetched_at = cache.attempted_at;
        Ok(fresh)
    }
}

async fn fetch_jwks(url: &str) -> Result<JwkSet, TokenError> {
    let client = awc::Client::builder().timeout(FETCH_TIMEOUT).finish();
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

/// The caller of a request that may be anonymous: `None` without an `Authorization`
/// header, but a present token that is forged or expired is still a 401 (and a JWKS
/// outage a 503), never silently "anonymous" as actix's `Option<Caller>` would make it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaybeCaller(pub Option<Caller>);

async fn authenticate(
    token: Option<String>,
    verifier: Option<web::Data<TokenVerifier>>,
) -> Result<Caller, ApiError> {
    let verifier = verifier
        .ok_or_else(|| ApiError::internal("TokenVerifier is not registered as app data"))?;
    identify(&verifier, token.as_deref(), false)
        .await?
        .ok_or_else(|| ApiError::internal("a required token named nobody"))
}

/// Who a request's bearer token names, as an edge decides it (the gateway, forward-auth
/// for ingress middlewares): a public route passes without a token or with a bad one
/// (`None`: anonymous, the service behind decides); elsewhere a missing or bad token is
/// a 401. A key-set outage is a 503 either way.
pub async fn identify(
    verifier: &TokenVerifier,
    token: Option<&str>,
    public: bool,
) -> Result<Option<Caller>, ApiError> {
    let Some(token) = token else {
        return if public {
            Ok(None)
        } else {
            Err(ApiError::Unauthorized(Cow::Borrowed(
                "a bearer access token is required",
            )))
        };
    };
    match verifier.verify(token).await {
        Ok(caller) => {
            // The request span names who asked (the id only: never the username).
            tracing::Span::current().record("user.id", tracing::field::display(caller.user_id));
            Ok(Some(caller))
        }
        Err(TokenError::KeysUnavailable(reason)) => {
            tracing::warn!(%reason, "cannot verify tokens: key set unavailable");
            Err(ApiError::Unavailable(Cow::Borrowed(
                "token verification is unavailable",
            )))
        }
        Err(_) if public => Ok(None),
        Err(err) => {
            tracing::debug!(error = %err, "token refused");
            Err(invalid_token())
        }
    }
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let token = bearer_token(req).map(str::to_owned);
        let verifier = req.app_data::<web::Data<TokenVerifier>>().cloned();
        Box::pin(authenticate(token, verifier))
    }
}

impl FromRequest for MaybeCaller {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let present = req.headers().contains_key(header::AUTHORIZATION);
        let token = bearer_token(req).map(str::to_owned);
        let verifier = req.app_data::<web::Data<TokenVerifier>>().cloned();
        Box::pin(async move {
            if present {
                authenticate(token, verifier).await.map(|c| Self(Some(c)))
            } else {
                Ok(Self(None))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::{KeyPair, TokenIssuer, generate_pem};
    use actix_web::{App, HttpResponse, HttpServer};
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use std::sync::Mutex;

    fn token_with_kid(kid: &str) -> String {
        let header = URL_SAFE_NO_PAD.encode(format!("{{\"alg\":\"EdDSA\",\"kid\":\"{kid}\"}}"));
        format!("{header}.e30.c2ln")
    }

    fn issuer() -> TokenIssuer {
        let key = KeyPair::from_pem(generate_pem().unwrap().as_bytes(), "test").unwrap();
        TokenIssuer::new(key, vec![], "agora".into(), "agora".into(), 60)
    }

    /// A JWKS server whose answer the test controls: a key set, an error, or a hang.
    #[derive(Clone)]
    enum Answer {
        Keys(JwkSet),
        Fail,
        Hang,
    }

    struct Jwks {
        answer: Mutex<Answer>,
        hits: AtomicUsize,
    }

    async fn serve_jwks(state: web::Data<Jwks>) -> HttpResponse {
        state.hits.fetch_add(1, Ordering::SeqCst);
        let answer = state.answer.lock().unwrap().clone();
        match answer {
            Answer::Keys(set) => HttpResponse::Ok().json(set),
            Answer::Fail => HttpResponse::ServiceUnavailable().finish(),
            Answer::Hang => {
                actix_web::rt::time::sleep(Duration::from_secs(30)).await;
                HttpResponse::Ok().finish()
            }
        }
    }

    fn jwks_server(answer: Answer) -> (String, web::Data<Jwks>) {
        let state = web::Data::new(Jwks {
            answer: Mutex::new(answer),
            hits: AtomicUsize::new(0),
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/jwks", listener.local_addr().unwrap());
        let data = state.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route("/jwks", web::get().to(serve_jwks))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        actix_web::rt::spawn(server);
        (url, state)
    }

    /// A verifier of the JWKS at `url` whose keys stay fresh and which may refetch at once.
    fn remote_verifier(url: String) -> TokenVerifier {
        TokenVerifier::with_intervals(
            "agora",
            "agora",
            KeySource::Remote { url },
            Duration::from_secs(300),
            Duration::ZERO,
        )
    }

    #[actix_web::test]
    async fn a_failing_jwks_is_not_hammered() {
        let (url, server) = jwks_server(Answer::Fail);
        let verifier = TokenVerifier::new("agora", "agora", KeySource::Remote { url });
        for i in 0..50 {
            let outcome = verifier.verify(&token_with_kid(&format!("k{i}"))).await;
            assert!(
                matches!(outcome, Err(TokenError::KeysUnavailable(_))),
                "{outcome:?}"
            );
        }
        assert_eq!(server.hits.load(Ordering::SeqCst), 1);
        assert_eq!(verifier.fetch_count(), 1);
    }

    #[actix_web::test]
    async fn known_keys_never_wait_for_a_refresh() {
        let issuer = issuer();
        let (url, server) = jwks_server(Answer::Keys(issuer.jwks().clone()));
        // Keys are always stale, refetching is always allowed.
        let verifier = TokenVerifier::with_intervals(
            "agora",
            "agora",
            KeySource::Remote { url },
            Duration::ZERO,
            Duration::ZERO,
        );
        let token = issuer.access_token(Uuid::now_v7(), "alice").unwrap();
        assert!(verifier.verify(&token).await.is_ok());
        assert_eq!(server.hits.load(Ordering::SeqCst), 1);
        // The auth service now hangs: requests with the known key still pass at once,
        // while one background refresh waits on it.
        *server.answer.lock().unwrap() = Answer::Hang;
        for _ in 0..20 {
            let verified = tokio::time::timeout(Duration::from_secs(5), verifier.verify(&token))
                .await
                .expect("a known key waited for the JWKS");
            assert!(verified.is_ok());
            actix_web::rt::task::yield_now().await;
        }
        // The background refresh reaches the hanging server once, however long that takes
        // on a busy machine (CI builds in parallel), and no second one follows it.
        let until = std::time::Instant::now() + Duration::from_secs(10);
        while server.hits.load(Ordering::SeqCst) < 2 && std::time::Instant::now() < until {
            actix_web::rt::time::sleep(Duration::from_millis(10)).await;
        }
        actix_web::rt::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(
            server.hits.load(Ordering::SeqCst),
            2,
            "one background refresh"
        );
    }

    #[actix_web::test]
    async fn a_rotated_key_is_fetched_once() {
        let old = issuer();
        let new = issuer();
        let (url, server) = jwks_server(Answer::Keys(old.jwks().clone()));
        let verifier = remote_verifier(url);
        let user = Uuid::now_v7();
        assert!(
            verifier
                .verify(&old.access_token(user, "a").unwrap())
                .await
                .is_ok()
        );
        // The issuer rotates: the new kid is unknown, so the key set is fetched again.
        let both = JwkSet {
            keys: old
                .jwks()
                .keys
                .iter()
                .chain(&new.jwks().keys)
                .cloned()
                .collect(),
        };
        *server.answer.lock().unwrap() = Answer::Keys(both);
        let rotated = new.access_token(user, "a").unwrap();
        assert!(verifier.verify(&rotated).await.is_ok());
        assert!(verifier.verify(&rotated).await.is_ok());
        assert_eq!(server.hits.load(Ordering::SeqCst), 2);
        // Old tokens still verify with the cached old key.
        assert!(
            verifier
                .verify(&old.access_token(user, "a").unwrap())
                .await
                .is_ok()
        );
        assert_eq!(server.hits.load(Ordering::SeqCst), 2);
    }

    #[actix_web::test]
    async fn a_retired_key_takes_its_remembered_tokens_with_it() {
        let old = issuer();
        let new = issuer();
        let (url, server) = jwks_server(Answer::Keys(old.jwks().clone()));
        let verifier = remote_verifier(url);
        let user = Uuid::now_v7();
        let before = old.access_token(user, "a").unwrap();
        assert!(verifier.verify(&before).await.is_ok());
        assert!(verifier.verify(&before).await.is_ok(), "remembered");
        assert_eq!(server.hits.load(Ordering::SeqCst), 1);
        // The old key is retired: once the verifier sees the new set, the old token
        // is checked again, and refused.
        *server.answer.lock().unwrap() = Answer::Keys(new.jwks().clone());
        assert!(
            verifier
                .verify(&new.access_token(user, "a").unwrap())
                .await
                .is_ok()
        );
        assert!(matches!(
            verifier.verify(&before).await,
            Err(TokenError::UnknownKey)
        ));
    }

    #[actix_web::test]
    async fn a_remembered_token_is_refused_once_expired() {
        let verifier =
            TokenVerifier::new("agora", "agora", KeySource::Static(JwkSet { keys: vec![] }));
        let caller = Caller {
            user_id: Uuid::now_v7(),
            username: "a".into(),
        };
        // Remembered entries are looked up by the token's text before anything else.
        verifier
            .inner
            .remember("remembered", &caller, now_secs() + 60, 0);
        assert_eq!(verifier.verify("remembered").await.unwrap(), caller);
        verifier
            .inner
            .remember("remembered", &caller, now_secs() - LEEWAY_SECS - 1, 0);
        assert!(matches!(
            verifier.verify("remembered").await,
            Err(TokenError::Invalid(_))
        ));
        assert!(
            verifier.inner.verified().is_empty(),
            "the expired entry is gone"
        );
    }

    #[actix_web::test]
    async fn a_revoked_token_is_refused_verified_or_remembered_and_a_newer_one_is_not() {
        let issuer = issuer();
        let verifier =
            TokenVerifier::new("agora", "agora", KeySource::Static(issuer.jwks().clone()));
        let user = Uuid::now_v7();
        let old = issuer.access_token_at(user, "a", 4).unwrap();
        assert_eq!(verifier.verify(&old).await.unwrap().user_id, user);
        let revoke = |below| {
            verifier
                .revocations()
                .apply(&[crate::revocations::Revocation {
                    user_id: user,
                    below_version: below,
                    until: chrono::Utc::now() + chrono::Duration::seconds(60),
                }])
        };
        // A password change: version 5 from now on.
        revoke(5);
        assert!(matches!(
            verifier.verify(&old).await,
            Err(TokenError::Revoked)
        ));
        let fresh = issuer.access_token_at(user, "a", 5).unwrap();
        assert_eq!(verifier.verify(&fresh).await.unwrap().user_id, user);
        assert_eq!(
            verifier.verify(&fresh).await.unwrap().user_id,
            user,
            "remembered"
        );
        // An erasure: every version, remembered tokens included.
        revoke(crate::revocations::ALL_VERSIONS);
        assert!(matches!(
            verifier.verify(&fresh).await,
            Err(TokenError::Revoked)
        ));
        let other = issuer.access_token_at(Uuid::now_v7(), "b", 0).unwrap();
        assert!(
            verifier.verify(&other).await.is_ok(),
            "others are not affected"
        );
        assert!(matches!(
            identify(&verifier, Some(&fresh), false).await,
            Err(ApiError::Unauthorized(_))
        ));
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

    #[actix_web::test]
    async fn maybe_caller_refuses_bad_tokens_instead_of_going_anonymous() {
        use actix_web::test;
        let issuer = issuer();
        let verifier = web::Data::new(TokenVerifier::new(
            "agora",
            "agora",
            KeySource::Static(issuer.jwks().clone()),
        ));
        let app = test::init_service(App::new().app_data(verifier).route(
            "/",
            web::get().to(|who: MaybeCaller| async move {
                HttpResponse::Ok().body(who.0.map(|c| c.username).unwrap_or_default())
            }),
        ))
        .await;
        let call = |auth: Option<String>| {
            let mut req = test::TestRequest::get().uri("/");
            if let Some(a) = auth {
                req = req.insert_header(("authorization", a));
            }
            req.to_request()
        };
        let anonymous = test::call_service(&app, call(None)).await;
        assert_eq!(anonymous.status(), 200);
        assert_eq!(test::read_body(anonymous).await, "");
        let token = issuer.access_token(Uuid::now_v7(), "bob").unwrap();
        let bob = test::call_service(&app, call(Some(format!("Bearer {token}")))).await;
        assert_eq!(test::read_body(bob).await, "bob");
        let forged = test::call_service(&app, call(Some("Bearer forged.token.x".into()))).await;
        assert_eq!(forged.status(), 401);
        let wrong_scheme = test::call_service(&app, call(Some("Basic Zm9vOmJhcg==".into()))).await;
        assert_eq!(wrong_scheme.status(), 401);
    }
}
