//! The live stream and its tickets. Browsers' `EventSource` cannot set headers, so a
//! stream opens with the `Authorization` header or a single-use ticket in the query; an
//! access token is never accepted in a URL (it would end up in logs and histories).

use super::NotificationsState;
use crate::db;
use crate::model::StreamTicket;
use crate::streams::OpenError;
use actix_web::http::header::{self, ContentEncoding};
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use agora_common::openapi::ProblemDoc;
use agora_common::{ApiError, ApiResult, Caller};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use uuid::Uuid;

/// A stream registration older than this without a refresh is a dead replica's.
pub const STALE_STREAM_SECS: i64 = 90;

impl From<OpenError> for ApiError {
    fn from(err: OpenError) -> Self {
        match err {
            OpenError::Db(e) => e.into(),
            OpenError::Pool(e) => e.into(),
        }
    }
}

fn ticket_hash(ticket: &str) -> Vec<u8> {
    Sha256::digest(ticket.as_bytes()).to_vec()
}

/// A ticket that opens one stream of the caller's, once, within a minute.
#[utoipa::path(post, path = "/api/v1/notifications/stream-tickets", tag = "notifications",
    security(("bearer" = [])),
    responses((status = 201, body = StreamTicket)))]
pub async fn ticket(
    state: web::Data<NotificationsState>,
    caller: Caller,
) -> ApiResult<HttpResponse> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| ApiError::internal(e.to_string()))?;
    let ticket = URL_SAFE_NO_PAD.encode(bytes);
    let ttl = chrono::Duration::from_std(state.ticket_ttl).unwrap_or(chrono::Duration::seconds(60));
    db::add_ticket(
        &mut *state.conn().await?,
        &ticket_hash(&ticket),
        caller.user_id,
        chrono::Utc::now() + ttl,
    )
    .await?;
    Ok(HttpResponse::Created().json(StreamTicket {
        ticket,
        expires_in: state.ticket_ttl.as_secs(),
    }))
}

/// Who opens the stream: the ticket's owner (used up here), or the bearer token's.
async fn stream_owner(state: &NotificationsState, req: &HttpRequest) -> ApiResult<Uuid> {
    let pairs = agora_common::extract::query_pairs(req.query_string())?;
    agora_common::extract::refuse_repeated(&pairs, &[])?;
    let mut ticket = None;
    for (key, value) in pairs {
        match key.as_str() {
            "ticket" => ticket = Some(value),
            other => {
                return Err(ApiError::invalid_field(
                    other.chars().take(64).collect::<String>(),
                    "unknown parameter (a stream takes a `ticket`, never a token)",
                ));
            }
        }
    }
    match ticket {
        Some(ticket) if ticket.len() <= 64 => {
            db::take_ticket(&mut *state.conn().await?, &ticket_hash(&ticket))
                .await?
                .ok_or_else(bad_ticket)
        }
        Some(_) => Err(bad_ticket()),
        None => Ok(Caller::extract(req).await?.user_id),
    }
}

fn bad_ticket() -> ApiError {
    ApiError::Unauthorized(Cow::Borrowed(
        "the stream ticket is unknown, used or expired",
    ))
}

/// The caller's notifications as they are made (server-sent events): each new or
/// changed notification as `event: notification` with `id:` (the stream's sequence),
/// the unread count as `event: unread` after each change, a comment line every 15 s.
/// `Last-Event-ID` replays what was missed (at most 100; otherwise, or when it is not
/// one of this stream's ids, an `event: reset`: reload the list). A client that falls
/// too far behind gets a `reset` and the stream ends. Authenticated by the
/// `Authorization` header or a `ticket`.
#[utoipa::path(get, path = "/api/v1/notifications/stream", tag = "notifications",
    security(("bearer" = []), ()),
    params(
        ("ticket" = Option<String>, Query, max_length = 64, description = "a stream ticket (single use), instead of the `Authorization` header"),
        ("Last-Event-ID" = Option<String>, Header, description = "the id of the last event received: what came after it is replayed"),
    ),
    responses(
        (status = 200, description = "the event stream", content_type = "text/event-stream", body = String),
        (status = 400, description = "a parameter other than `ticket`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 401, description = "no credential, or a bad token or ticket", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 429, description = "type `too-many-streams`: the caller has the most open streams allowed", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub async fn stream(
    state: web::Data<NotificationsState>,
    req: HttpRequest,
) -> ApiResult<HttpResponse> {
    let user = stream_owner(&state, &req).await?;
    let id = Uuid::now_v7();
    let admitted = db::open_stream(
        &mut *state.conn().await?,
        id,
        user,
        state.streams_per_user,
        STALE_STREAM_SECS,
    )
    .await?;
    if !admitted {
        return Err(ApiError::TooManyRequests {
            retry_after_secs: 15,
        }
        .typed("too-many-streams"));
    }
    let last_event_id = req
        .headers()
        .get("last-event-id")
        .and_then(|v| v.to_str().ok());
    let events = state.streams.attach(id, user, last_event_id).await?;
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        // Compression would hold events back until a buffer fills.
        .insert_header(ContentEncoding::Identity)
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("x-accel-buffering", "no"))
        .streaming(events))
}
