//! RFC 9457 `application/problem+json` errors: the one error type every handler returns.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use std::borrow::Cow;

/// Media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// One invalid input field, reported in the `errors` member of a validation problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// The field's name as the client sent it (`username`, `limit`, …).
    pub field: Cow<'static, str>,
    /// What is wrong with it, in words a client can show.
    pub message: Cow<'static, str>,
}

impl FieldError {
    /// Builds a field error from anything string-like.
    pub fn new(field: impl Into<Cow<'static, str>>, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Every error an Agora endpoint can answer with; each variant maps to one status code.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400 with per-field `errors`.
    #[error("request validation failed")]
    Validation(Vec<FieldError>),
    /// 400: the body or query could not be read at all.
    #[error("{0}")]
    BadRequest(Cow<'static, str>),
    /// 401: missing or invalid credentials.
    #[error("{0}")]
    Unauthorized(Cow<'static, str>),
    /// 403: authenticated, the resource is visible, the action is not allowed.
    #[error("{0}")]
    Forbidden(Cow<'static, str>),
    /// 404: absent or invisible to the caller.
    #[error("{0}")]
    NotFound(Cow<'static, str>),
    /// 405: the path exists, the method does not.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 408: the client took too long to send its request.
    #[error("{0}")]
    RequestTimeout(Cow<'static, str>),
    /// 409: the request conflicts with the current state.
    #[error("{0}")]
    Conflict(Cow<'static, str>),
    /// 413: the body is larger than this endpoint accepts.
    #[error("{0}")]
    PayloadTooLarge(Cow<'static, str>),
    /// 415: the body's media type is not one this endpoint accepts.
    #[error("{0}")]
    UnsupportedMediaType(Cow<'static, str>),
    /// 429, with a `Retry-After` header.
    #[error("too many requests")]
    TooManyRequests {
        /// Seconds until a retry may succeed (at least 1).
        retry_after_secs: u64,
    },
    /// 502: an upstream answered badly or could not be reached.
    #[error("{0}")]
    BadGateway(Cow<'static, str>),
    /// 503: a dependency (database, upstream) is unavailable right now.
    #[error("{0}")]
    Unavailable(Cow<'static, str>),
    /// 504: an upstream did not answer in time.
    #[error("{0}")]
    GatewayTimeout(Cow<'static, str>),
    /// 500: a bug or an unexpected failure; the cause is logged, never sent.
    #[error("internal error: {0}")]
    Internal(Box<dyn std::error::Error + Send + Sync>),
    /// A condition a client may act on differently from others of its status (a taken
    /// username, a reaction limit): the inner error's status, title, detail and headers,
    /// under its own stable `type` slug. Built with [`ApiError::typed`].
    #[error("{error}")]
    Typed {
        /// The `type` slug, appended to [`PROBLEM_BASE`].
        slug: &'static str,
        /// The error that gives status, detail and headers.
        error: Box<ApiError>,
    },
}

impl ApiError {
    /// A 500 from any error; the cause is logged when the response is built.
    pub fn internal(err: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Internal(err.into())
    }

    /// A 400 validation problem about a single field.
    pub fn invalid_field(
        field: impl Into<Cow<'static, str>>,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self::Validation(vec![FieldError::new(field, message)])
    }

    /// This error under its own problem `type` (`slug`, appended to [`PROBLEM_BASE`]),
    /// for a condition a client may branch on; status, detail and headers stay.
    pub fn typed(self, slug: &'static str) -> Self {
        Self::Typed {
            slug,
            error: Box::new(self),
        }
    }

    /// The `type` slug and `title` of this kind of problem.
    fn kind(&self) -> (&'static str, &'static str) {
        match self {
            Self::Validation(_) => ("validation-failed", "Invalid request"),
            Self::Typed { slug, error } => (slug, error.kind().1),
            other => kind_of_status(other.status_code()),
        }
    }

    fn detail(&self) -> Cow<'_, str> {
        match self {
            Self::Typed { error, .. } => error.detail(),
            Self::Validation(errors) if errors.len() == 1 => {
                Cow::Owned(format!("{}: {}", errors[0].field, errors[0].message))
            }
            Self::Validation(_) => Cow::Borrowed("several fields are invalid; see `errors`"),
            Self::TooManyRequests { retry_after_secs } => {
                Cow::Owned(format!("rate limit reached; retry in {retry_after_secs} s"))
            }
            Self::MethodNotAllowed => Cow::Borrowed("this path does not accept that method"),
            Self::Internal(_) => Cow::Borrowed("the server failed to handle this request"),
            Self::BadRequest(d)
            | Self::Unauthorized(d)
            | Self::Forbidden(d)
            | Self::NotFound(d)
            | Self::Conflict(d)
            | Self::RequestTimeout(d)
            | Self::PayloadTooLarge(d)
            | Self::UnsupportedMediaType(d)
            | Self::BadGateway(d)
            | Self::Unavailable(d)
            | Self::GatewayTimeout(d) => Cow::Borrowed(d),
        }
    }
}

/// The `type` slug and `title` of a problem with this status: one kind per status, so
/// a client can tell a 401 from a 429 by `type` alone.
pub fn kind_of_status(status: StatusCode) -> (&'static str, &'static str) {
    match status.as_u16() {
        400 => ("bad-request", "Bad request"),
        401 => ("unauthorized", "Unauthorized"),
        403 => ("forbidden", "Forbidden"),
        404 => ("not-found", "Not found"),
        405 => ("method-not-allowed", "Method not allowed"),
        406 => ("not-acceptable", "Not acceptable"),
        408 => ("request-timeout", "Request timeout"),
        409 => ("conflict", "Conflict"),
        411 => ("length-required", "Length required"),
        412 => ("precondition-failed", "Precondition failed"),
        413 => ("payload-too-large", "Payload too large"),
        414 => ("uri-too-long", "URI too long"),
        415 => ("unsupported-media-type", "Unsupported media type"),
        429 => ("rate-limited", "Too many requests"),
        431 => ("headers-too-large", "Request header fields too large"),
        502 => ("bad-gateway", "Bad gateway"),
        503 => ("unavailable", "Service unavailable"),
        504 => ("gateway-timeout", "Gateway timeout"),
        _ if status.is_client_error() => ("client-error", "Client error"),
        _ => ("internal", "Internal server error"),
    }
}

/// The serialized body of a problem.
#[derive(Debug, Serialize)]
pub struct Problem<'a> {
    /// A URI naming the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short, fixed summary of the kind.
    pub title: &'a str,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong in this occurrence.
    pub detail: &'a str,
    /// Per-field validation failures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<&'a [FieldError]>,
}

/// Base of every problem `type` URI.
pub const PROBLEM_BASE: &str = "https://agora.dev/problems/";

/// Builds a problem+json response; used by [`ApiError`] and by the fallback middleware.
pub fn problem_response(
    status: StatusCode,
    slug: &str,
    title: &str,
    detail: &str,
    errors: Option<&[FieldError]>,
) -> HttpResponse {
    let body = Problem {
        kind: format!("{PROBLEM_BASE}{slug}"),
        title,
        status: status.as_u16(),
        detail,
        errors,
    };
    let mut builder = HttpResponse::build(status);
    builder.insert_header((header::CONTENT_TYPE, PROBLEM_JSON));
    if status == StatusCode::UNAUTHORIZED {
        builder.insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"agora\""));
    }
    match serde_json::to_vec(&body) {
        Ok(bytes) => builder.body(bytes),
        Err(_) => builder.finish(),
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Validation(_) | Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::BadGateway(_) => StatusCode::BAD_GATEWAY,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::GatewayTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Typed { error, .. } => error.status_code(),
        }
    }

    fn error_response(&self) -> HttpResponse {
        let (slug, title) = self.kind();
        let mut inner = self;
        while let Self::Typed { error, .. } = inner {
            inner = error;
        }
        if let Self::Internal(cause) = inner {
            tracing::error!(error = %Chain(cause.as_ref()), "request failed with an internal error");
        }
        let errors = match inner {
            Self::Validation(errors) => Some(errors.as_slice()),
            _ => None,
        };
        let mut response =
            problem_response(self.status_code(), slug, title, &self.detail(), errors);
        if let Self::TooManyRequests { retry_after_secs } = inner {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                header::HeaderValue::from(*retry_after_secs.max(&1)),
            );
        }
        response
    }
}

/// Database failures mapped once for every service: a lock wait or statement past its
/// deadline, a lost connection or an exhausted retry is a clean 503; a constraint is a
/// 409; a missing row a 404; anything else a 500 (logged with its cause).
#[cfg(feature = "db")]
impl From<diesel::result::Error> for ApiError {
    fn from(err: diesel::result::Error) -> Self {
        use crate::db::Failure;
        match crate::db::classify(&err) {
            Failure::NotFound => Self::NotFound(Cow::Borrowed("no such resource")),
            Failure::Unique => {
                Self::Conflict(Cow::Borrowed("this conflicts with an existing resource"))
            }
            Failure::ForeignKey => Self::Conflict(Cow::Borrowed(
                "this refers to a resource that does not exist, or is still referred to",
            )),
            Failure::Timeout | Failure::Retryable | Failure::Unavailable => {
                tracing::warn!(error = %err, "database busy or unavailable");
                Self::Unavailable(Cow::Borrowed("the database is busy; retry later"))
            }
            Failure::Other => Self::internal(err),
        }
    }
}

#[cfg(feature = "db")]
impl From<crate::db::PoolError> for ApiError {
    fn from(err: crate::db::PoolError) -> Self {
        tracing::warn!(error = %err, "database pool unavailable");
        Self::Unavailable(Cow::Borrowed("the database is unavailable; retry later"))
    }
}

/// Displays an error with its whole `source()` chain (`outer: inner: root`), so one
/// log line or message says everything once.
pub struct Chain<'a>(pub &'a (dyn std::error::Error + 'a));

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(err) = source {
            write!(f, ": {err}")?;
            source = err.source();
        }
        Ok(())
    }
}

/// Shorthand for handler results.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::MessageBody;

    fn body_json(resp: HttpResponse) -> serde_json::Value {
        let bytes = resp.into_body().try_into_bytes().unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn validation_problem_lists_fields() {
        let err = ApiError::Validation(vec![
            FieldError::new("username", "too short"),
            FieldError::new("email", "not an email address"),
        ]);
        let resp = err.error_response();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            resp.headers()
                .get(header::CONTENT_TYPE)
                .map(|v| v.as_bytes()),
            Some(PROBLEM_JSON.as_bytes())
        );
        let body = body_json(resp);
        assert_eq!(body["status"], 400);
        assert_eq!(body["type"], "https://agora.dev/problems/validation-failed");
        assert_eq!(body["errors"][1]["field"], "email");
    }

    #[test]
    fn internal_errors_hide_their_cause() {
        let resp = ApiError::internal("relation \"users\" does not exist").error_response();
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = body_json(resp);
        assert!(!body.to_string().contains("relation"));
    }

    #[test]
    fn rate_limit_sets_retry_after() {
        let resp = ApiError::TooManyRequests {
            retry_after_secs: 0,
        }
        .error_response();
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            resp.headers()
                .get(header::RETRY_AFTER)
                .map(|v| v.as_bytes()),
            Some(&b"1"[..])
        );
    }

    #[test]
    fn typed_problems_keep_status_title_detail_and_headers() {
        let resp = ApiError::TooManyRequests {
            retry_after_secs: 7,
        }
        .typed("friend-request-cooldown")
        .error_response();
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            resp.headers()
                .get(header::RETRY_AFTER)
                .map(|v| v.as_bytes()),
            Some(&b"7"[..])
        );
        let body = body_json(resp);
        assert_eq!(
            body["type"],
            "https://agora.dev/problems/friend-request-cooldown"
        );
        assert_eq!(body["title"], "Too many requests");
        let conflict = ApiError::Conflict("that username is taken".into()).typed("username-taken");
        let body = body_json(conflict.error_response());
        assert_eq!(body["type"], "https://agora.dev/problems/username-taken");
        assert_eq!(body["status"], 409);
        assert_eq!(body["detail"], "that username is taken");
    }

    #[test]
    fn unauthorized_asks_for_a_bearer_token() {
        let resp = ApiError::Unauthorized("missing token".into()).error_response();
        assert!(resp.headers().contains_key(header::WWW_AUTHENTICATE));
    }
}
