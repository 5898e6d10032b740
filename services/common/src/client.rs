//! Calling another Agora service: one pooled HTTP client per dependency, with connect
//! and request timeouts, bounded retries of idempotent calls, the request id passed on,
//! the caller's token or the service credential, and answers mapped to [`ApiError`] —
//! a dependency that is down is a clean 503, its problem+json 4xx keeps its meaning.
//!
//! Internal routes (`/internal/...`) are never routed by the gateway or the edge; they
//! require the service credential, checked by the [`ServiceCaller`] extractor.

use crate::auth::bearer_token;
use crate::middleware::{REQUEST_ID, RequestId};
use crate::problem::ApiError;
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::borrow::Cow;
use std::future::{Ready, ready};
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;
use tracing::field::Empty;

/// How long our HTTP clients reuse a pooled connection that sat idle: well under the
/// servers' keep-alive ([`crate::server::KEEP_ALIVE`]). A client that takes an idle
/// connection the server is closing at that moment writes its request into a dead socket;
/// a GET is retried, a POST fails halfway (a busy client seeding photos once did).
pub const IDLE_CONNECTION_REUSE: Duration = Duration::from_secs(3);
const _: () = assert!(IDLE_CONNECTION_REUSE.as_secs() + 2 <= crate::server::KEEP_ALIVE.as_secs());

/// A reqwest client builder with the pool rules every Agora client follows (the
/// services', `agora seed`'s, the load generator's).
pub fn http_client() -> reqwest::ClientBuilder {
    reqwest::Client::builder().pool_idle_timeout(IDLE_CONNECTION_REUSE)
}

/// The shared secret services present to each other's internal routes
/// (`INTERNAL_TOKEN`, from a Kubernetes Secret in a cluster). Never logged.
#[derive(Clone)]
pub struct ServiceToken(Arc<str>);

impl ServiceToken {
    /// Wraps a secret of at least 32 characters.
    pub fn new(secret: &str) -> Option<Self> {
        (secret.len() >= 32).then(|| Self(Arc::from(secret)))
    }

    /// Compares in constant time (for equal lengths).
    fn matches(&self, presented: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), presented.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl std::fmt::Debug for ServiceToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServiceToken(<redacted>)")
    }
}

/// Proof that the request came from another Agora service (its bearer token is the
/// [`ServiceToken`] registered as app data).
#[derive(Debug, Clone, Copy)]
pub struct ServiceCaller;

impl FromRequest for ServiceCaller {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let expected = req.app_data::<web::Data<ServiceToken>>();
        let allowed = match (expected, bearer_token(req)) {
            (Some(expected), Some(presented)) => expected.matches(presented),
            _ => false,
        };
        ready(if allowed {
            Ok(Self)
        } else {
            Err(ApiError::Unauthorized(Cow::Borrowed(
                "internal route: the service credential is required",
            )))
        })
    }
}

/// Every service answers `GET` here on its API port with 204: the liveness probe other
/// services' readiness checks use (it says nothing else, so it needs no credential).
pub const ALIVE_PATH: &str = "/internal/alive";

fn request_id_of(origin: Option<&HttpRequest>) -> Option<RequestId> {
    origin.and_then(|r| r.extensions().get::<RequestId>().cloned())
}

/// Who a call is made as.
#[derive(Clone, Copy)]
pub enum Credential<'a> {
    /// The end user's own bearer token (the callee applies their permissions).
    Caller(&'a str),
    /// The service credential, for internal routes.
    Service,
    /// No credential.
    None,
}

impl<'a> Credential<'a> {
    /// The bearer token of the incoming request, if it has one.
    pub fn of(req: &'a HttpRequest) -> Self {
        bearer_token(req).map_or(Self::None, Self::Caller)
    }
}

/// Settings of a [`ServiceClient`].
#[derive(Debug, Clone)]
pub struct ClientSettings {
    /// Connecting may take this long.
    pub connect_timeout: Duration,
    /// A whole call (one attempt) may take this long.
    pub timeout: Duration,
    /// Extra attempts for idempotent calls after a connection failure or a 502/503/504.
    pub retries: u32,
    /// The service credential, for internal routes.
    pub service_token: Option<ServiceToken>,
}

impl Default for ClientSettings {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(2),
            timeout: Duration::from_secs(10),
            retries: 2,
            service_token: None,
        }
    }
}

/// The client could not be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot build the HTTP client for {service}")]
pub struct ClientError {
    service: &'static str,
    #[source]
    source: reqwest::Error,
}

/// A client for one dependency. Cheap to clone; share it.
#[derive(Clone)]
pub struct ServiceClient {
    service: &'static str,
    base_url: Arc<str>,
    http: reqwest::Client,
    retries: u32,
    service_token: Option<ServiceToken>,
}

/// A successful answer.
#[derive(Debug)]
pub struct Reply<T> {
    /// Its status (2xx).
    pub status: u16,
    /// Its body, when it had one.
    pub body: Option<T>,
}

impl ServiceClient {
    /// A client for `service` at `base_url` (e.g. `http://users:8080`).
    pub fn new(
        service: &'static str,
        base_url: &str,
        settings: ClientSettings,
    ) -> Result<Self, ClientError> {
        let http = http_client()
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|source| ClientError { service, source })?;
        crate::metrics::kit().expect_calls_to(service);
        Ok(Self {
            service,
            base_url: Arc::from(base_url.trim_end_matches('/')),
            http,
            retries: settings.retries,
            service_token: settings.service_token,
        })
    }

    /// The same client without retries of its own (for callers that retry later, such
    /// as the job runner).
    pub fn without_retries(mut self) -> Self {
        self.retries = 0;
        self
    }

    /// The dependency's name (`users`, `relations`, …).
    pub fn service(&self) -> &'static str {
        self.service
    }

    /// Whether the dependency answers `GET /internal/alive` (readiness reports).
    pub async fn alive(&self) -> Result<(), String> {
        let url = format!("{}{ALIVE_PATH}", self.base_url);
        match self.http.get(&url).send().await {
            Ok(resp) if resp.status().is_success() => Ok(()),
            Ok(resp) => Err(format!("answered {}", resp.status().as_u16())),
            Err(err) => Err(format!("unreachable: {}", crate::problem::Chain(&err))),
        }
    }

    /// `GET path` and decode the JSON answer.
    pub fn get<'a, T: DeserializeOwned + Send + 'a>(
        &'a self,
        path: &'a str,
        credential: Credential<'a>,
        origin: Option<&HttpRequest>,
    ) -> impl std::future::Future<Output = Result<T, ApiError>> + Send + 'a {
        let request_id = request_id_of(origin);
        async move {
            let reply = self
                .call::<(), T>(reqwest::Method::GET, path, None, credential, request_id)
                .await?;
            reply
                .body
                .ok_or_else(|| self.bad_answer("an empty body where JSON was expected"))
        }
    }

    /// Any call. `origin` (the request being served) passes on its request id.
    /// Idempotent methods are retried on connection failures and 502/503/504.
    /// (The future is `Send`: it keeps the request id, not the request.)
    pub fn send<'a, B: Serialize + Sync, T: DeserializeOwned + Send + 'a>(
        &'a self,
        method: reqwest::Method,
        path: &'a str,
        body: Option<&'a B>,
        credential: Credential<'a>,
        origin: Option<&HttpRequest>,
    ) -> impl std::future::Future<Output = Result<Reply<T>, ApiError>> + Send + 'a {
        let request_id = request_id_of(origin);
        self.call(method, path, body, credential, request_id)
    }

    async fn call<B: Serialize + Sync, T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&B>,
        credential: Credential<'_>,
        request_id: Option<RequestId>,
    ) -> Result<Reply<T>, ApiError> {
        let body = body
            .map(serde_json::to_vec)
            .transpose()
            .map_err(ApiError::internal)?;
        let idempotent = matches!(
            method,
            reqwest::Method::GET
                | reqwest::Method::HEAD
                | reqwest::Method::PUT
                | reqwest::Method::DELETE
        );
        let url = format!("{}{path}", self.base_url);
        // One client span per call (retries included); the callee continues it.
        let span = self.call_span(&method);
        let result = self
            .attempts(
                &method, &url, body, credential, request_id, idempotent, &span,
            )
            .instrument(span.clone())
            .await;
        let (outcome, status) = match &result {
            Ok(reply) => ("ok", Some(reply.status)),
            Err(err) => {
                let status = actix_web::ResponseError::status_code(err).as_u16();
                (
                    if status >= 500 { "failed" } else { "refused" },
                    Some(status),
                )
            }
        };
        if let Some(status) = status {
            span.record("http.response.status_code", status);
        }
        if outcome == "failed" {
            span.record("otel.status_code", "ERROR");
        }
        crate::metrics::record_call(self.service, outcome);
        result
    }

    #[allow(clippy::too_many_arguments)]
    async fn attempts<T: DeserializeOwned>(
        &self,
        method: &reqwest::Method,
        url: &str,
        body: Option<Vec<u8>>,
        credential: Credential<'_>,
        request_id: Option<RequestId>,
        idempotent: bool,
        span: &tracing::Span,
    ) -> Result<Reply<T>, ApiError> {
        let trace_headers = crate::telemetry::propagation::headers_for(span);
        let mut attempt = 0u32;
        loop {
            let mut request = self.http.request(method.clone(), url);
            if let Some(id) = &request_id {
                request = request.header(REQUEST_ID.as_str(), id.as_str());
            }
            for (name, value) in &trace_headers {
                request = request.header(*name, value);
            }
            request = match credential {
                Credential::Caller(token) => request.bearer_auth(token),
                Credential::Service => match &self.service_token {
                    Some(token) => request.bearer_auth(&*token.0),
                    None => {
                        return Err(ApiError::internal(
                            "no service credential configured (INTERNAL_TOKEN)",
                        ));
                    }
                },
                Credential::None => request,
            };
            if let Some(bytes) = &body {
                request = request
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(bytes.clone());
            }
            let retryable = idempotent && attempt < self.retries;
            match request.send().await {
                Ok(resp) if retryable && matches!(resp.status().as_u16(), 502..=504) => {}
                Ok(resp) => {
                    return self
                        .read(resp, matches!(credential, Credential::Service))
                        .await;
                }
                Err(err) if retryable && (err.is_connect() || err.is_timeout()) => {
                    tracing::debug!(service = self.service, error = %err, attempt, "retrying");
                }
                Err(err) => return Err(self.unreachable(&err)),
            }
            attempt += 1;
            tokio::time::sleep(Duration::from_millis(50 << attempt.min(6))).await;
        }
    }

    async fn read<T: DeserializeOwned>(
        &self,
        resp: reqwest::Response,
        as_service: bool,
    ) -> Result<Reply<T>, ApiError> {
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let bytes = resp.bytes().await.map_err(|e| self.unreachable(&e))?;
        if status.is_success() {
            let body = if bytes.is_empty() {
                None
            } else {
                Some(
                    serde_json::from_slice(&bytes)
                        .map_err(|e| self.bad_answer(&format!("undecodable JSON: {e}")))?,
                )
            };
            return Ok(Reply {
                status: status.as_u16(),
                body,
            });
        }
        let detail: Cow<'static, str> = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|p| p.get("detail").and_then(|d| d.as_str()).map(str::to_owned))
            .map_or(Cow::Borrowed("the request was refused"), Cow::Owned);
        Err(match status.as_u16() {
            // The service credential refused is a deployment fault, not the user's:
            // a 401 would make clients sign out.
            401 | 403 if as_service => {
                tracing::error!(
                    service = self.service,
                    status = status.as_u16(),
                    "the service credential was refused"
                );
                self.unavailable()
            }
            400 => ApiError::BadRequest(detail),
            401 => ApiError::Unauthorized(detail),
            403 => ApiError::Forbidden(detail),
            404 => ApiError::NotFound(detail),
            409 => ApiError::Conflict(detail),
            413 => ApiError::PayloadTooLarge(detail),
            429 => ApiError::TooManyRequests {
                retry_after_secs: retry_after.unwrap_or(1),
            },
            _ => {
                tracing::warn!(
                    service = self.service,
                    status = status.as_u16(),
                    "dependency failed"
                );
                self.unavailable()
            }
        })
    }

    /// `GET path` with the service credential, the answer's body as a stream (for what
    /// must not be held whole: an export's files). A non-2xx answer is an error.
    pub async fn get_stream(
        &self,
        path: &str,
    ) -> Result<
        impl futures_util::Stream<Item = Result<actix_web::web::Bytes, reqwest::Error>> + Send + 'static,
        ApiError,
    > {
        let resp = self.raw(reqwest::Method::GET, path, None).await?;
        Ok(resp.bytes_stream())
    }

    /// `PUT path` with the service credential and a streamed body; the answer must be
    /// 2xx.
    pub async fn put_stream(&self, path: &str, body: reqwest::Body) -> Result<(), ApiError> {
        self.raw(reqwest::Method::PUT, path, Some(body))
            .await
            .map(drop)
    }

    /// One call with the service credential, no retries (a stream cannot be replayed),
    /// refused unless 2xx; its trace context and metrics as for every call.
    async fn raw(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<reqwest::Body>,
    ) -> Result<reqwest::Response, ApiError> {
        let span = self.call_span(&method);
        let token = self.service_token.as_ref().ok_or_else(|| {
            ApiError::internal("no service credential configured (INTERNAL_TOKEN)")
        })?;
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base_url))
            .bearer_auth(&*token.0);
        for (name, value) in crate::telemetry::propagation::headers_for(&span) {
            request = request.header(name, value);
        }
        if let Some(body) = body {
            request = request.body(body);
        }
        let sent = request.send().instrument(span.clone()).await;
        let resp = match sent {
            Ok(resp) => resp,
            Err(err) => {
                span.record("otel.status_code", "ERROR");
                crate::metrics::record_call(self.service, "failed");
                return Err(self.unreachable(&err));
            }
        };
        let status = resp.status().as_u16();
        span.record("http.response.status_code", status);
        if resp.status().is_success() {
            crate::metrics::record_call(self.service, "ok");
            return Ok(resp);
        }
        crate::metrics::record_call(
            self.service,
            if status >= 500 { "failed" } else { "refused" },
        );
        // The error's own mapping, from its status and problem body.
        match self.read::<serde_json::Value>(resp, true).await {
            Err(e) => Err(e),
            Ok(_) => Err(self.bad_answer("a failure status read as a success")),
        }
    }

    /// The client span of one call to this service.
    fn call_span(&self, method: &reqwest::Method) -> tracing::Span {
        tracing::info_span!(
            "call",
            otel.name = format!("{method} {}", self.service),
            otel.kind = "client",
            otel.status_code = Empty,
            http.request.method = method.as_str(),
            http.response.status_code = Empty,
            server.address = self.service,
            peer.service = self.service,
        )
    }

    fn unreachable(&self, err: &reqwest::Error) -> ApiError {
        tracing::warn!(service = self.service, error = %err, "dependency unreachable");
        self.unavailable()
    }

    /// What the caller's client is told when this dependency fails (no details).
    fn unavailable(&self) -> ApiError {
        ApiError::Unavailable(Cow::Owned(format!(
            "the {} service is unavailable",
            self.service
        )))
    }

    fn bad_answer(&self, what: &str) -> ApiError {
        tracing::warn!(service = self.service, what, "dependency answered badly");
        ApiError::BadGateway(Cow::Owned(format!(
            "the {} service answered badly",
            self.service
        )))
    }
}
