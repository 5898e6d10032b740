//! Forwarding one request to its upstream: edge authentication, header hygiene,
//! body limits, per-phase deadlines, streaming in both directions.

use crate::Forwarding;
use crate::openapi::MergedSpec;
use crate::routes::{RouteTable, Upstream, is_public};
use actix_web::http::Method;
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::{HttpMessage, HttpRequest, HttpResponse, ResponseError, web};
use agora_common::auth::{bearer_token, identify};
use agora_common::client_addr;
use agora_common::middleware::{MetricRoute, method_label};
use agora_common::{ApiError, TokenVerifier};
use awc::error::{PayloadError, SendRequestError};
use bytes::Bytes;
use futures_util::StreamExt;
use std::borrow::Cow;
use std::cell::Cell;
use std::net::IpAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};
use tracing::field::Empty;

/// Identity headers the gateway alone may set.
static USER_ID: HeaderName = HeaderName::from_static("x-user-id");
static USER_NAME: HeaderName = HeaderName::from_static("x-user-name");

/// Per-connection headers that must not be forwarded (RFC 9110 §7.6.1).
fn is_hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "proxy-connection"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
    )
}

/// Headers named in `Connection` are hop-by-hop too (none, without allocating, when
/// there is no `Connection` header: nearly every request and response).
fn connection_listed(headers: &HeaderMap) -> Vec<HeaderName> {
    if !headers.contains_key(header::CONNECTION) {
        return Vec::new();
    }
    headers
        .get_all(header::CONNECTION)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::try_from(name.trim()).ok())
        .collect()
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// Every request the gateway receives: the merged OpenAPI document, or a forward.
pub async fn handle(
    req: HttpRequest,
    payload: web::Payload,
    table: web::Data<RouteTable>,
    verifier: web::Data<TokenVerifier>,
    clients: web::Data<Clients>,
    forwarding: web::Data<Forwarding>,
    spec: web::Data<MergedSpec>,
) -> Result<HttpResponse, ApiError> {
    if req.path() == "/api/v1/openapi.json" {
        req.extensions_mut()
            .insert(MetricRoute(std::sync::Arc::from("/api/v1/openapi.json")));
        return match *req.method() {
            Method::GET | Method::HEAD => {
                crate::openapi::merged(&table, &clients.pooled, &spec).await
            }
            _ => {
                let mut resp = ApiError::MethodNotAllowed.error_response();
                resp.headers_mut()
                    .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
                Ok(resp)
            }
        };
    }
    let upstream = table
        .resolve(req.path())
        .ok_or(ApiError::NotFound(Cow::Borrowed("no such resource")))?;
    req.extensions_mut()
        .insert(MetricRoute(upstream.metric_label()));
    let origin = forwarding.trusted_proxies.client_addr(&req);
    let client = if upstream.policy.is_streaming(req.method(), req.path()) {
        &clients.streams
    } else {
        &clients.pooled
    };
    forward(
        req,
        payload,
        upstream,
        &verifier,
        client,
        &forwarding,
        origin,
    )
    .await
}

/// The gateway's upstream clients (one set per worker: awc is single-threaded).
pub struct Clients {
    /// Ordinary requests, on a pool of kept-alive connections.
    pub pooled: awc::Client,
    /// Streaming routes (see `RoutePolicy::streaming`), on connections of their own.
    pub streams: awc::Client,
}

/// Forwards the request to the service that owns its path.
async fn forward(
    req: HttpRequest,
    payload: web::Payload,
    upstream: &Upstream,
    verifier: &TokenVerifier,
    client: &awc::Client,
    deadlines: &Forwarding,
    origin: Option<IpAddr>,
) -> Result<HttpResponse, ApiError> {
    // Authenticate at the edge. Public paths pass without a token, but a token they
    // carry must still be valid to name a user.
    let public = is_public(upstream, req.method(), req.path());
    let identity = identify(verifier, bearer_token(&req), public).await?;

    let limit = upstream.policy.max_body_bytes;
    let declared_length = content_length(req.headers());
    if declared_length.is_some_and(|len| len > limit as u64) {
        return Err(too_large(limit));
    }

    let mut outbound = client.request(req.method().clone(), upstream.uri_for(req.uri()));
    let dropped = connection_listed(req.headers());
    // The forward is a client span of the gateway's; the upstream continues it (a
    // client's own trace context is replaced by it, not passed through).
    let span = tracing::info_span!(
        "forward",
        otel.name = format!("{} {}", method_label(req.method()), upstream.policy.service),
        otel.kind = "client",
        otel.status_code = Empty,
        http.request.method = method_label(req.method()),
        http.response.status_code = Empty,
        server.address = %upstream.policy.service,
    );
    let trace_headers = agora_common::telemetry::propagation::headers_for(&span);
    {
        let headers = outbound.headers_mut();
        for (name, value) in req.headers() {
            if (!trace_headers.is_empty() && (name == "traceparent" || name == "tracestate"))
                || is_hop_by_hop(name)
                || dropped.contains(name)
                || name == header::HOST
                || name == USER_ID
                || name == USER_NAME
                || name == header::CONTENT_LENGTH
            {
                continue;
            }
            headers.append(name.clone(), value.clone());
        }
        for (name, value) in &trace_headers {
            if let Ok(value) = HeaderValue::from_str(value) {
                headers.insert(header::HeaderName::from_static(name), value);
            }
        }
        set_forwarded_headers(&req, headers, origin);
        if let Some(caller) = &identity {
            let mut buf = uuid::Uuid::encode_buffer();
            let id = caller.user_id.hyphenated().encode_lower(&mut buf);
            if let (Ok(id), Ok(name)) = (
                HeaderValue::from_str(id),
                HeaderValue::from_str(&caller.username),
            ) {
                headers.insert(USER_ID.clone(), id);
                headers.insert(USER_NAME.clone(), name);
            }
        }
    }

    // Three deadlines, one per phase: connecting (the connector's), the client's pauses
    // while sending the body (a slow but steady 10 MiB upload is fine), and the
    // upstream's answer once the body is sent.
    let head_request = req.method() == Method::HEAD;
    let has_body = match declared_length {
        Some(0) => false,
        Some(_) => true,
        None => req.headers().contains_key(header::TRANSFER_ENCODING),
    };
    let sent = if has_body {
        send_with_body(
            outbound,
            payload,
            declared_length,
            limit,
            deadlines,
            upstream,
        )
        .await?
    } else {
        // Nothing to send but the head: one deadline, for the answer.
        tokio::select! {
            sent = outbound.send() => sent,
            () = tokio::time::sleep(deadlines.response) => return Err(upstream_timeout(upstream)),
        }
    };
    let response = match sent {
        Ok(response) => response,
        Err(err) => {
            span.record("otel.status_code", "ERROR");
            return Err(upstream_error(upstream, &err));
        }
    };
    span.record("http.response.status_code", response.status().as_u16());
    if response.status().is_server_error() {
        span.record("otel.status_code", "ERROR");
    }
    drop(span);

    let bodiless = head_request || response.status() == actix_web::http::StatusCode::NOT_MODIFIED;
    let mut builder = HttpResponse::build(response.status());
    let dropped = connection_listed(response.headers());
    for (name, value) in response.headers() {
        if is_hop_by_hop(name) || dropped.contains(name) || name == header::CONTENT_LENGTH {
            continue;
        }
        builder.append_header((name.clone(), value.clone()));
    }
    match content_length(response.headers()) {
        // A small answer of announced size is read whole and sent in one write with its
        // head; streaming it would poll, wake and write chunk by chunk.
        // (Not for HEAD or 304: their length describes a body that is not sent.)
        Some(len) if len <= BUFFERED_RESPONSE_MAX && !bodiless => {
            let mut response = response;
            let body = response.body().limit(BUFFERED_RESPONSE_MAX as usize);
            match tokio::time::timeout(deadlines.response, body).await {
                Err(_) => Err(upstream_timeout(upstream)),
                Ok(Ok(body)) => Ok(builder.body(body)),
                Ok(Err(err)) => {
                    tracing::warn!(upstream = upstream.name(), error = %err, "upstream answer cut short");
                    Err(failed_to_answer(upstream))
                }
            }
        }
        Some(len) => {
            builder.no_chunking(len);
            Ok(builder.streaming(response))
        }
        None => Ok(builder.streaming(response)),
    }
}

/// Upstream answers up to this size (and of announced length) are buffered, not streamed.
const BUFFERED_RESPONSE_MAX: u64 = 64 * 1024;

/// Sends the request with its body, streamed: the client's pauses are bounded while it
/// sends, the upstream's answer once the body is through. A body over the limit or a
/// stalled client ends here with its own status.
async fn send_with_body(
    outbound: awc::ClientRequest,
    payload: web::Payload,
    declared_length: Option<u64>,
    limit: usize,
    deadlines: &Forwarding,
    upstream: &Upstream,
) -> Result<Result<awc::ClientResponse, SendRequestError>, ApiError> {
    let state = Rc::new(BodyState::new());
    let body = guarded_body(payload, limit, deadlines.body_idle, state.clone());
    let send = match declared_length {
        Some(len) => outbound.send_body(actix_http::body::SizedStream::new(len, body)),
        None => outbound.send_stream(body),
    };
    let response_deadline = async {
        state.wait_sent().await;
        tokio::time::sleep(deadlines.response).await;
    };
    let stalled = async {
        tokio::select! {
            () = upload_stalled(&state, deadlines.body_idle) => {}
            () = state.wait_sent() => std::future::pending::<()>().await,
        }
    };
    let sent = tokio::select! {
        sent = send => sent,
        () = response_deadline => return Err(upstream_timeout(upstream)),
        () = stalled => return Err(upstream_timeout(upstream)),
    };
    match sent {
        Err(_) if state.overflowed.get() => Err(too_large(limit)),
        Err(_) if state.idle.get() => Err(ApiError::RequestTimeout(Cow::Borrowed(
            "the request body stalled; send it without long pauses",
        ))),
        other => Ok(other),
    }
}

/// What the request-body stream tells the forwarder.
struct BodyState {
    /// When the last chunk was handed on (or the request started).
    progress: Cell<Instant>,
    /// The whole body was handed to the upstream connection (a watch: several
    /// futures wait for it).
    sent: tokio::sync::watch::Sender<bool>,
    /// The body grew past the limit.
    overflowed: Cell<bool>,
    /// The client paused longer than allowed.
    idle: Cell<bool>,
}

impl BodyState {
    fn mark_sent(&self) {
        self.sent.send_replace(true);
    }

    async fn wait_sent(&self) {
        let mut sent = self.sent.subscribe();
        // The sender lives as long as `self`: this cannot fail while we wait.
        let _ = sent.wait_for(|done| *done).await;
    }

    fn new() -> Self {
        Self {
            progress: Cell::new(Instant::now()),
            sent: tokio::sync::watch::Sender::new(false),
            overflowed: Cell::new(false),
            idle: Cell::new(false),
        }
    }
}

/// Resolves when no body chunk has moved for longer than `idle` plus a second while
/// the body is still being sent: the upstream stopped reading (a client that stops
/// sending is caught, a second earlier, by the body stream itself: 408).
async fn upload_stalled(state: &BodyState, idle: Duration) {
    let limit = idle + Duration::from_secs(1);
    loop {
        let quiet = state.progress.get().elapsed();
        if quiet >= limit {
            return;
        }
        tokio::time::sleep(limit - quiet).await;
    }
}

/// The request body, cut off at `limit` bytes or after `idle` without a chunk.
fn guarded_body(
    payload: web::Payload,
    limit: usize,
    idle: Duration,
    state: Rc<BodyState>,
) -> impl futures_util::Stream<Item = Result<Bytes, PayloadError>> + 'static {
    futures_util::stream::unfold(
        (payload, 0usize, state, false),
        move |(mut payload, seen, state, failed)| async move {
            if failed {
                return None;
            }
            let item = match tokio::time::timeout(idle, payload.next()).await {
                Err(_) => {
                    state.idle.set(true);
                    Err(PayloadError::Incomplete(None))
                }
                Ok(None) => {
                    state.mark_sent();
                    return None;
                }
                Ok(Some(Err(err))) => Err(err),
                Ok(Some(Ok(chunk))) if seen + chunk.len() > limit => {
                    state.overflowed.set(true);
                    Err(PayloadError::Overflow)
                }
                Ok(Some(Ok(chunk))) => {
                    state.progress.set(Instant::now());
                    Ok(chunk)
                }
            };
            let seen = seen + item.as_ref().map_or(0, Bytes::len);
            let failed = item.is_err();
            Some((item, (payload, seen, state, failed)))
        },
    )
}

/// `X-Forwarded-For` carries exactly one entry: the client as the gateway resolved it
/// (under its own trusted-proxy policy), so services behind it trust one hop whatever
/// is in front of the gateway, and no client-written entry travels on.
fn set_forwarded_headers(req: &HttpRequest, headers: &mut HeaderMap, origin: Option<IpAddr>) {
    if let Some(value) = origin.and_then(client_addr::header_value) {
        headers.insert(HeaderName::from_static("x-forwarded-for"), value);
    } else {
        headers.remove("x-forwarded-for");
    }
    if let Ok(proto) = HeaderValue::from_str(&client_addr::scheme(req)) {
        headers.insert(HeaderName::from_static("x-forwarded-proto"), proto);
    }
    if let Some(host) = req.headers().get(header::HOST) {
        headers.insert(HeaderName::from_static("x-forwarded-host"), host.clone());
    }
}

fn too_large(limit: usize) -> ApiError {
    ApiError::PayloadTooLarge(Cow::Owned(format!(
        "the request body exceeds {limit} bytes"
    )))
}

fn upstream_timeout(upstream: &Upstream) -> ApiError {
    tracing::warn!(
        upstream = upstream.name(),
        "upstream did not answer in time"
    );
    ApiError::GatewayTimeout(Cow::Owned(format!(
        "the {} service did not answer in time",
        upstream.name()
    )))
}

fn upstream_error(upstream: &Upstream, err: &SendRequestError) -> ApiError {
    tracing::warn!(upstream = upstream.name(), error = %err, "upstream request failed");
    match err {
        SendRequestError::Timeout => upstream_timeout(upstream),
        SendRequestError::Connect(_) => ApiError::Unavailable(Cow::Owned(format!(
            "the {} service is unavailable",
            upstream.name()
        ))),
        _ => failed_to_answer(upstream),
    }
}

fn failed_to_answer(upstream: &Upstream) -> ApiError {
    ApiError::BadGateway(Cow::Owned(format!(
        "the {} service failed to answer",
        upstream.name()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_named_in_connection_are_hop_by_hop() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, X-Secret-Hop"),
        );
        let listed = connection_listed(&headers);
        assert!(listed.contains(&HeaderName::from_static("x-secret-hop")));
        assert!(listed.contains(&HeaderName::from_static("keep-alive")));
        assert!(is_hop_by_hop(&header::TRANSFER_ENCODING));
        assert!(!is_hop_by_hop(&header::AUTHORIZATION));
    }
}
