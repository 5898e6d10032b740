//! Forwarding one request to its upstream: edge authentication, header hygiene,
//! body limits, streaming in both directions.

use crate::routes::{RouteTable, Upstream, is_public};
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use agora_common::auth::{TokenError, bearer_token};
use agora_common::client_addr::client_addr;
use agora_common::ratelimit::RateLimiter;
use agora_common::{ApiError, TokenVerifier};
use awc::error::{PayloadError, SendRequestError};
use bytes::Bytes;
use futures_util::StreamExt;
use std::borrow::Cow;
use std::cell::Cell;
use std::net::IpAddr;
use std::rc::Rc;

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

/// Headers named in `Connection` are hop-by-hop too.
fn connection_listed(headers: &HeaderMap) -> Vec<HeaderName> {
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

/// The per-address request budget at the edge.
pub struct EdgeLimit {
    /// `None` when disabled.
    pub limiter: Option<RateLimiter<IpAddr>>,
    /// See [`client_addr`].
    pub trusted_proxy_hops: usize,
}

/// Forwards the request to the service that owns its path.
pub async fn forward(
    req: HttpRequest,
    payload: web::Payload,
    table: web::Data<RouteTable>,
    verifier: web::Data<TokenVerifier>,
    client: web::Data<awc::Client>,
    edge: web::Data<EdgeLimit>,
) -> Result<HttpResponse, ApiError> {
    // Cheapest check first: a flood is turned away before any signature is verified.
    if let (Some(limiter), Some(addr)) = (&edge.limiter, client_addr(&req, edge.trusted_proxy_hops))
    {
        limiter
            .acquire(&addr)
            .map_err(|retry_after_secs| ApiError::TooManyRequests { retry_after_secs })?;
    }
    let upstream = table
        .resolve(req.path())
        .ok_or(ApiError::NotFound(Cow::Borrowed("no such resource")))?;

    // Authenticate at the edge. Public paths pass without a token, but a token they
    // carry must still be valid to name a user.
    let identity = match bearer_token(&req) {
        Some(token) => match verifier.verify(token).await {
            Ok(caller) => Some(caller),
            Err(TokenError::KeysUnavailable(reason)) => {
                tracing::warn!(%reason, "cannot verify tokens: key set unavailable");
                return Err(ApiError::Unavailable(Cow::Borrowed(
                    "token verification is unavailable",
                )));
            }
            Err(_) if is_public(req.method(), req.path()) => None,
            Err(_) => {
                return Err(ApiError::Unauthorized(Cow::Borrowed(
                    "invalid or expired access token",
                )));
            }
        },
        None if is_public(req.method(), req.path()) => None,
        None => {
            return Err(ApiError::Unauthorized(Cow::Borrowed(
                "a bearer access token is required",
            )));
        }
    };

    let declared_length = content_length(req.headers());
    if declared_length.is_some_and(|len| len > upstream.max_body_bytes as u64) {
        return Err(too_large(upstream));
    }

    let mut url = String::with_capacity(upstream.base_url.len() + req.uri().path().len() + 64);
    url.push_str(&upstream.base_url);
    url.push_str(req.uri().path_and_query().map_or("/", |pq| pq.as_str()));

    let mut outbound = client.request(req.method().clone(), url.as_str());
    let dropped = connection_listed(req.headers());
    {
        let headers = outbound.headers_mut();
        for (name, value) in req.headers() {
            if is_hop_by_hop(name)
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
        set_forwarded_headers(&req, headers);
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

    // The body streams through; a body longer than the route's limit is cut off and
    // answered with 413, whatever its headers claimed.
    let limit = upstream.max_body_bytes;
    let overflowed = Rc::new(Cell::new(false));
    let sent = match declared_length {
        Some(0) => outbound.send().await,
        None if !req.headers().contains_key(header::TRANSFER_ENCODING) => outbound.send().await,
        _ => {
            let flag = overflowed.clone();
            let mut seen = 0usize;
            let body = payload.map(move |chunk| {
                let chunk = chunk?;
                seen += chunk.len();
                if seen > limit {
                    flag.set(true);
                    return Err(PayloadError::Overflow);
                }
                Ok::<Bytes, PayloadError>(chunk)
            });
            match declared_length {
                Some(len) => {
                    outbound
                        .send_body(actix_http::body::SizedStream::new(len, body))
                        .await
                }
                None => outbound.send_stream(body).await,
            }
        }
    };
    let response = match sent {
        Ok(response) => response,
        Err(_) if overflowed.get() => return Err(too_large(upstream)),
        Err(err) => return Err(upstream_error(upstream, &err)),
    };

    let mut builder = HttpResponse::build(response.status());
    let dropped = connection_listed(response.headers());
    for (name, value) in response.headers() {
        if is_hop_by_hop(name) || dropped.contains(name) || name == header::CONTENT_LENGTH {
            continue;
        }
        builder.append_header((name.clone(), value.clone()));
    }
    if let Some(len) = content_length(response.headers()) {
        builder.no_chunking(len);
    }
    Ok(builder.streaming(response))
}

fn set_forwarded_headers(req: &HttpRequest, headers: &mut HeaderMap) {
    let info = req.connection_info();
    if let Some(peer) = req.peer_addr() {
        // Append the peer to any chain the client sent; the services trust only the
        // entries their configured proxy hops wrote.
        let chain = match req
            .headers()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
        {
            Some(prev) if !prev.trim().is_empty() => format!("{prev}, {}", peer.ip()),
            _ => peer.ip().to_string(),
        };
        if let Ok(value) = HeaderValue::from_str(&chain) {
            headers.insert(HeaderName::from_static("x-forwarded-for"), value);
        }
    }
    if let Ok(proto) = HeaderValue::from_str(info.scheme()) {
        headers.insert(HeaderName::from_static("x-forwarded-proto"), proto);
    }
    if let Some(host) = req.headers().get(header::HOST) {
        headers.insert(HeaderName::from_static("x-forwarded-host"), host.clone());
    }
}

fn too_large(upstream: &Upstream) -> ApiError {
    ApiError::PayloadTooLarge(Cow::Owned(format!(
        "the request body exceeds {} bytes",
        upstream.max_body_bytes
    )))
}

fn upstream_error(upstream: &Upstream, err: &SendRequestError) -> ApiError {
    tracing::warn!(upstream = upstream.name, error = %err, "upstream request failed");
    match err {
        SendRequestError::Timeout => ApiError::GatewayTimeout(Cow::Owned(format!(
            "the {} service did not answer in time",
            upstream.name
        ))),
        SendRequestError::Connect(_) => ApiError::Unavailable(Cow::Owned(format!(
            "the {} service is unavailable",
            upstream.name
        ))),
        _ => ApiError::BadGateway(Cow::Owned(format!(
            "the {} service failed to answer",
            upstream.name
        ))),
    }
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
