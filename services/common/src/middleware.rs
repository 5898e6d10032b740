//! Middleware every service wraps around its routes: request ids, access logs and
//! metrics (`observe`), admission before routing (`admit`: the edge's own check, unsafe
//! paths, `HEAD`), and a last line of defence that turns any non-problem error response
//! (actix's plain-text 404/405, a bare status) into problem+json (`problem_fallback`).

use crate::metrics::Metrics;
use crate::problem::{ApiError, PROBLEM_JSON, kind_of_status, problem_response};
use crate::routing::{AllowIndex, unsafe_path};
use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, ResponseError, web};
use std::time::Instant;
use tracing::field::Empty;

/// The request id header, propagated from the client or generated.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The request id of the current request, in request extensions.
#[derive(Clone, Debug)]
pub struct RequestId(pub HeaderValue);

impl RequestId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        self.0.to_str().unwrap_or_default()
    }
}

/// Accepts a client's id when it is short and plain; anything else is replaced.
fn acceptable_request_id(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 128
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(b))
}

fn new_request_id() -> HeaderValue {
    let mut buf = uuid::Uuid::encode_buffer();
    let text = uuid::Uuid::now_v7().hyphenated().encode_lower(&mut buf);
    HeaderValue::from_str(text).unwrap_or(HeaderValue::from_static("invalid"))
}

/// The metrics label of a route the router cannot name (the gateway's catch-all sets
/// it to the area it forwarded to). Must come from a bounded set.
#[derive(Clone, Debug)]
pub struct MetricRoute(pub std::sync::Arc<str>);

/// Request id, span, access log and metrics for one request.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody + 'static>, actix_web::Error> {
    let started = Instant::now();
    let request_id = req
        .headers()
        .get(&REQUEST_ID)
        .filter(|v| acceptable_request_id(v))
        .cloned()
        .unwrap_or_else(new_request_id);
    req.extensions_mut().insert(RequestId(request_id.clone()));
    // Keep the header so proxies forward the id we settled on.
    let mut req = req;
    req.headers_mut()
        .insert(REQUEST_ID.clone(), request_id.clone());

    // Any token is a valid method to actix: label only the standard ones.
    let method = method_label(req.method());
    let metrics = req.app_data::<web::Data<Metrics>>().cloned();
    // Never the raw path (usernames, ids, share-link signatures): the route template
    // is named once routing is done. `user.id` is filled in by the auth extractor.
    // The trace is sampled or not here, once: a client's acceptable `traceparent` is
    // the parent (and its sampled flag the decision, with the default sampler).
    let parent = crate::telemetry::propagation::extract(req.headers());
    let root = crate::telemetry::start_trace(parent, || {
        tracing::info_span!(
            target: crate::telemetry::ROOT,
            "request",
            otel.kind = "server",
            otel.status_code = Empty,
            request_id = %RequestId(request_id.clone()).as_str(),
            http.request.method = method,
            http.route = Empty,
            http.response.status_code = Empty,
            url.scheme = %crate::client_addr::scheme(req.request()),
            user.id = Empty,
        )
    });
    let result = root.run(next.call(req)).await;
    let elapsed = started.elapsed();
    let mut res = match result {
        Ok(res) => res,
        Err(err) => {
            // An error that skipped the response path (the request deadline) still
            // gets its log line and metrics.
            let status = err.as_response_error().status_code().as_u16();
            record_outcome(&root.span, method, "deadline", status);
            root.in_scope(|| {
                tracing::info!(
                    status,
                    elapsed_ms = elapsed.as_secs_f64() * 1000.0,
                    "request failed"
                )
            });
            if let Some(metrics) = &metrics {
                metrics.record(method, "deadline".to_owned(), status, elapsed);
            }
            return Err(err);
        }
    };
    res.headers_mut().insert(REQUEST_ID.clone(), request_id);
    // The contract promises `application/json; charset=utf-8`; actix writes the bare type.
    if res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|ct| ct.as_bytes() == b"application/json")
    {
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
    }
    let status = res.status().as_u16();
    // The pattern is known once routing is done (never the raw path: bounded labels).
    let route = match res.request().extensions().get::<MetricRoute>() {
        Some(label) => label.0.to_string(),
        None => res
            .request()
            .match_pattern()
            .unwrap_or_else(|| "unmatched".to_owned()),
    };
    record_outcome(&root.span, method, &route, status);
    root.in_scope(|| {
        tracing::info!(status, elapsed_ms = elapsed.as_secs_f64() * 1000.0, route = %route, "request handled");
    });
    if let Some(metrics) = metrics {
        metrics.record(method, route, status, elapsed);
    }
    Ok(res)
}

/// Names the server span after its route template and records how it ended (a 5xx
/// is an error of the server's; a 4xx is the client's and leaves the status unset).
fn record_outcome(span: &tracing::Span, method: &str, route: &str, status: u16) {
    crate::telemetry::rename(span, format_args!("{method} {route}"));
    span.record("http.route", route);
    span.record("http.response.status_code", status);
    if status >= 500 {
        span.record("otel.status_code", "ERROR");
    }
}

/// The metrics label of a method: the standard methods by name, anything else `OTHER`.
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "OTHER",
    }
}

/// A check run on every request before routing (the gateway's edge rate limit).
pub type AdmissionCheck =
    std::sync::Arc<dyn Fn(&ServiceRequest) -> Result<(), ApiError> + Send + Sync>;

/// What [`admit`] needs, as app data.
#[derive(Clone)]
pub struct Admission {
    /// Runs first, on every request, matched or not.
    pub check: Option<AdmissionCheck>,
    /// Serve `HEAD` with the `GET` handler (the body is dropped by the server).
    pub head_as_get: bool,
    /// The longest a handler may take to produce its response head (503 after it).
    pub deadline: Option<std::time::Duration>,
}

/// Runs the admission check, refuses unsafe paths (400) and maps `HEAD` to `GET`.
pub async fn admit(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody + 'static, BoxBody>>, actix_web::Error> {
    let admission = req.app_data::<web::Data<Admission>>().cloned();
    let refused = |req: ServiceRequest, err: ApiError| {
        let (req, _) = req.into_parts();
        Ok(ServiceResponse::new(req, err.error_response()).map_into_right_body())
    };
    if let Some(check) = admission.as_ref().and_then(|a| a.check.as_ref())
        && let Err(err) = check(&req)
    {
        return refused(req, err);
    }
    if let Some(reason) = unsafe_path(req.uri().path()) {
        return refused(
            req,
            ApiError::BadRequest(std::borrow::Cow::Borrowed(reason)),
        );
    }
    // The server still knows the request was HEAD and sends no body.
    if req.method() == Method::HEAD && admission.as_ref().is_some_and(|a| a.head_as_get) {
        req.head_mut().method = Method::GET;
    }
    let Some(deadline) = admission.and_then(|a| a.deadline) else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    // Dropping the handler also drops its database work; a connection left inside a
    // transaction is discarded by the pool, never reused. The request cannot be kept
    // for the answer (routing needs it unshared), so the answer travels as an error
    // response that already carries the request id.
    let request_id = req.extensions().get::<RequestId>().map(|id| id.0.clone());
    match tokio::time::timeout(deadline, next.call(req)).await {
        Ok(response) => Ok(response?.map_into_left_body()),
        Err(_) => {
            tracing::warn!(
                deadline_ms = deadline.as_millis() as u64,
                "request deadline exceeded"
            );
            let err = ApiError::Unavailable(std::borrow::Cow::Borrowed(
                "the request took too long; retry later",
            ));
            let mut response = err.error_response();
            if let Some(id) = request_id {
                response.headers_mut().insert(REQUEST_ID, id);
            }
            Err(actix_web::error::InternalError::from_response(err, response).into())
        }
    }
}

/// Headers of an error response worth keeping on its problem+json replacement; the
/// rest (`Content-Encoding`, `ETag`, `Content-Range`, …) described the old body.
const KEPT_ON_REPLACEMENT: [HeaderName; 5] = [
    header::ALLOW,
    header::RETRY_AFTER,
    header::WWW_AUTHENTICATE,
    header::VARY,
    REQUEST_ID,
];

/// Replaces any error response that is not problem+json with one that is, and names
/// the allowed methods on every 405.
pub async fn problem_fallback(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody + 'static, BoxBody>>, actix_web::Error> {
    let mut res = next.call(req).await?;
    let status = res.status();
    if status == StatusCode::METHOD_NOT_ALLOWED
        && !res.headers().contains_key(header::ALLOW)
        && let Some(allow) = res
            .request()
            .app_data::<web::Data<AllowIndex>>()
            .and_then(|index| index.allowed(res.request().path()).cloned())
    {
        res.headers_mut().insert(header::ALLOW, allow);
    }
    let is_problem = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|ct| ct.as_bytes().starts_with(PROBLEM_JSON.as_bytes()));
    if !(status.is_client_error() || status.is_server_error()) || is_problem {
        return Ok(res.map_into_left_body());
    }
    let (slug, title) = kind_of_status(status);
    let detail = match status.as_u16() {
        404 => "no such resource",
        405 => "this path does not accept that method",
        413 => "the request body is too large",
        415 => "unsupported media type",
        s if s >= 500 => "the server failed to handle this request",
        _ => "the request could not be handled",
    };
    let mut replacement = problem_response(status, slug, title, detail, None);
    for name in &KEPT_ON_REPLACEMENT {
        for value in res.headers().get_all(name) {
            replacement
                .headers_mut()
                .append(name.clone(), value.clone());
        }
    }
    let (req, _) = res.into_parts();
    Ok(ServiceResponse::new(req, replacement).map_into_right_body())
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::middleware::from_fn;
    use actix_web::{App, HttpResponse, test};

    #[actix_web::test]
    async fn plain_errors_become_problems_and_carry_request_ids() {
        let app = test::init_service(
            App::new()
                .wrap(from_fn(problem_fallback))
                .wrap(from_fn(observe))
                .route(
                    "/teapot",
                    web::get().to(|| async { HttpResponse::ImATeapot().body("short and stout") }),
                )
                .route(
                    "/json",
                    web::get()
                        .to(|| async { HttpResponse::Ok().json(serde_json::json!({"ok": 1})) }),
                ),
        )
        .await;
        let resp =
            test::call_service(&app, test::TestRequest::get().uri("/nope").to_request()).await;
        assert_eq!(resp.status(), 404);
        assert!(resp.headers().contains_key("x-request-id"));
        let body: serde_json::Value = test::read_body_json(resp).await;
        assert_eq!(body["status"], 404);

        let resp = test::call_service(
            &app,
            test::TestRequest::get()
                .uri("/teapot")
                .insert_header(("x-request-id", "abc-123"))
                .to_request(),
        )
        .await;
        assert_eq!(
            resp.headers().get("x-request-id").map(|v| v.as_bytes()),
            Some(&b"abc-123"[..])
        );
        assert_eq!(
            resp.headers().get("content-type").map(|v| v.as_bytes()),
            Some(PROBLEM_JSON.as_bytes())
        );

        // An id with spaces or control characters is replaced, not echoed.
        let resp = test::call_service(
            &app,
            test::TestRequest::get()
                .uri("/teapot")
                .insert_header(("x-request-id", "a b"))
                .to_request(),
        )
        .await;
        let id = resp
            .headers()
            .get("x-request-id")
            .map(|v| v.as_bytes().to_vec())
            .unwrap();
        assert_eq!(id.len(), 36);

        let resp =
            test::call_service(&app, test::TestRequest::get().uri("/json").to_request()).await;
        assert_eq!(
            resp.headers().get("content-type").map(|v| v.as_bytes()),
            Some(&b"application/json; charset=utf-8"[..])
        );
    }

    #[actix_web::test]
    async fn replacements_keep_only_safe_headers_and_name_the_status() {
        let app = test::init_service(
            App::new()
                .wrap(from_fn(problem_fallback))
                .wrap(from_fn(observe))
                .route(
                    "/locked",
                    web::get().to(|| async {
                        HttpResponse::Unauthorized()
                            .insert_header(("content-encoding", "gzip"))
                            .insert_header(("etag", "\"abc\""))
                            .insert_header(("content-range", "bytes 0-1/2"))
                            .insert_header(("www-authenticate", "Bearer"))
                            .body(vec![0x1f, 0x8b, 0x08])
                    }),
                )
                .route(
                    "/slow-down",
                    web::get().to(|| async {
                        HttpResponse::TooManyRequests()
                            .insert_header(("retry-after", "7"))
                            .finish()
                    }),
                ),
        )
        .await;
        let resp =
            test::call_service(&app, test::TestRequest::get().uri("/locked").to_request()).await;
        assert_eq!(resp.status(), 401);
        for gone in ["content-encoding", "etag", "content-range"] {
            assert!(!resp.headers().contains_key(gone), "{gone} survived");
        }
        assert!(resp.headers().contains_key("www-authenticate"));
        let body: serde_json::Value = test::read_body_json(resp).await;
        assert_eq!(body["type"], "https://agora.dev/problems/unauthorized");

        let resp = test::call_service(
            &app,
            test::TestRequest::get().uri("/slow-down").to_request(),
        )
        .await;
        assert_eq!(
            resp.headers().get("retry-after").map(|v| v.as_bytes()),
            Some(&b"7"[..])
        );
        let body: serde_json::Value = test::read_body_json(resp).await;
        assert_eq!(body["type"], "https://agora.dev/problems/rate-limited");
    }
}
