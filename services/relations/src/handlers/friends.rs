//! Friend requests (send, accept, decline, cancel, list) and unfriending.

use super::{RelationsState, end_pair, not_self, pair_write};
use crate::db::{self, Position};
use crate::model::{
    Direction, FriendRequest, FriendRequestCreate, FriendRequestPage, FriendRequestQuery,
    RequestStatus,
};
use actix_web::{HttpResponse, web};
use agora_common::db::TxFuture;
use agora_common::db::transaction_with_retry;
use agora_common::notices::{Actor, Cause, Change, NoticeKind, Subject, SubjectType};
use agora_common::openapi::ProblemDoc;
use agora_common::pagination::{Page, PageParams};
use agora_common::{ApiError, ApiResult, Caller};
use chrono::Utc;
use diesel_async::AsyncPgConnection;
use std::borrow::Cow;
use uuid::Uuid;

/// What sending a request did.
enum Sent {
    /// A new pending request.
    Pending(FriendRequest),
    /// The other had asked already: both are friends now.
    Accepted(FriendRequest),
}

/// How long after a decline the same sender may not ask the same person again.
fn decline_cooldown() -> chrono::TimeDelta {
    chrono::TimeDelta::hours(24)
}

/// Ask someone to be friends; if they already asked the caller, both become friends.
/// After the other declined the caller's request, the caller may ask again only 24
/// hours later.
#[utoipa::path(post, path = "/api/v1/relations/friend-requests", tag = "relations",
    security(("bearer" = [])),
    request_body = FriendRequestCreate,
    responses(
        (status = 201, description = "request sent", body = FriendRequest),
        (status = 200, description = "they had asked the caller: now friends", body = FriendRequest),
        (status = 400, description = "asking oneself, or an invalid body", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "one of the two blocks the other", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "no such user", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "already friends (type `already-friends`), or the caller's request is already pending (type `friend-request-pending`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 429, description = "type `friend-request-cooldown`: the other declined the caller's request less than 24 hours ago; see Retry-After", body = ProblemDoc, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "seconds until the caller may ask again"))),
    ))]
pub async fn send(
    state: web::Data<RelationsState>,
    caller: Caller,
    body: agora_common::extract::Json<FriendRequestCreate>,
) -> ApiResult<HttpResponse> {
    let other = body.to;
    not_self(&caller, other, "you cannot befriend yourself")?;
    let sent = pair_write(
        &state,
        &caller,
        other,
        true,
        |c, me, other| {
            Box::pin(async move {
                if db::are_friends(c, me, other).await? {
                    return Ok(Err(ApiError::Conflict(Cow::Borrowed(
                        "you are already friends",
                    ))
                    .typed("already-friends")));
                }
                match db::pending_between(c, me, other).await? {
                    Some(request) if request.from_id == me => Ok(Err(ApiError::Conflict(
                        Cow::Borrowed("you have already asked; the request is pending"),
                    )
                    .typed("friend-request-pending"))),
                    Some(request) => {
                        // Crossing requests: theirs is accepted by this one.
                        db::delete_request(c, request.id).await?;
                        db::befriend(c, me, other).await?;
                        Ok(Ok(Sent::Accepted(request.view(RequestStatus::Accepted))))
                    }
                    None => {
                        if let Some(declined) = db::last_decline(c, me, other).await? {
                            let wait = declined + decline_cooldown() - Utc::now();
                            if wait > chrono::TimeDelta::zero() {
                                return Ok(Err(ApiError::TooManyRequests {
                                    retry_after_secs: u64::try_from(wait.num_seconds())
                                        .unwrap_or(0)
                                        .max(1),
                                }
                                .typed("friend-request-cooldown")));
                            }
                        }
                        let request = db::insert_request(c, me, other).await?;
                        Ok(Ok(Sent::Pending(request.view(RequestStatus::Pending))))
                    }
                }
            })
        },
        |sent, actor, _| match sent {
            Sent::Pending(request) => vec![Change::Made {
                cause: Cause::new(
                    NoticeKind::FriendRequest,
                    request.to,
                    actor,
                    Subject::of(SubjectType::FriendRequest, request.id),
                ),
            }],
            // Their request (now settled) is answered by a friendship.
            Sent::Accepted(request) => vec![
                Change::Gone {
                    subject: request.id,
                },
                Change::Made {
                    cause: befriended(actor, request.from),
                },
            ],
        },
    )
    .await?;
    Ok(match sent {
        Sent::Pending(request) => HttpResponse::Created().json(request),
        Sent::Accepted(request) => HttpResponse::Ok().json(request),
    })
}

/// Pending requests to or from the caller, newest first.
#[utoipa::path(get, path = "/api/v1/relations/friend-requests", tag = "relations",
    security(("bearer" = [])),
    params(FriendRequestQuery, PageParams),
    responses((status = 200, body = FriendRequestPage)))]
pub async fn list(
    state: web::Data<RelationsState>,
    caller: Caller,
    query: agora_common::extract::Query<FriendRequestQuery>,
) -> ApiResult<web::Json<Page<FriendRequest>>> {
    let incoming = query.direction.unwrap_or_default() == Direction::Incoming;
    let page = query.page.validate::<Position>(if incoming {
        "relations.friend_requests.incoming"
    } else {
        "relations.friend_requests.outgoing"
    })?;
    let rows = db::requests_page(
        &mut *state.conn().await?,
        caller.user_id,
        incoming,
        page.after,
        page.limit,
    )
    .await?;
    let page = Page::from_rows(rows, &page, |r| (r.created_at, r.id));
    Ok(web::Json(Page {
        items: page
            .items
            .into_iter()
            .map(|r| r.view(RequestStatus::Pending))
            .collect(),
        next_cursor: page.next_cursor,
    }))
}

/// What a party may do with a request.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Party {
    Sender,
    Recipient,
}

/// Loads a request for one of its parties under the pair's lock and applies `act`:
/// 404 for anyone else (they cannot see it), 403 for the wrong party.
async fn settle(
    state: &RelationsState,
    caller: &Caller,
    id: Uuid,
    allowed: Party,
    accept: bool,
) -> ApiResult<FriendRequest> {
    let me = caller.user_id;
    let not_found = || ApiError::NotFound(Cow::Borrowed("no such friend request"));
    let mut conn = state.conn().await?;
    let settled = transaction_with_retry(&mut conn, |c| {
        let actor = Actor {
            id: me,
            username: caller.username.clone(),
        };
        let notifier = state.notifier.clone();
        Box::pin(async move {
            let Some(request) = db::find_request(c, id).await? else {
                return Ok(Err(not_found()));
            };
            let party = if request.to_id == me {
                Party::Recipient
            } else if request.from_id == me {
                Party::Sender
            } else {
                return Ok(Err(not_found()));
            };
            if party != allowed {
                return Ok(Err(ApiError::Forbidden(Cow::Borrowed(match allowed {
                    Party::Recipient => "only the recipient may accept or decline a request",
                    Party::Sender => "only the sender may cancel a request; decline it instead",
                }))));
            }
            db::lock_pair(c, request.from_id, request.to_id).await?;
            // Settled meanwhile (the lock was taken after reading it)?
            if !db::delete_request(c, id).await? {
                return Ok(Err(not_found()));
            }
            if accept {
                db::befriend(c, request.from_id, request.to_id).await?;
                notifier
                    .tell(
                        c,
                        Change::Made {
                            cause: befriended(&actor, request.from_id),
                        },
                    )
                    .await?;
            } else if party == Party::Recipient {
                db::record_decline(c, request.from_id, request.to_id).await?;
            }
            // Settled one way or another: its notification has nothing left to answer.
            notifier.tell(c, Change::Gone { subject: id }).await?;
            Ok(Ok(request.view(if accept {
                RequestStatus::Accepted
            } else {
                RequestStatus::Pending
            })))
        })
    })
    .await?;
    state.notifier.wake();
    settled
}

/// Accept a request sent to the caller.
#[utoipa::path(post, path = "/api/v1/relations/friend-requests/{id}/accept", tag = "relations",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "the request")),
    responses(
        (status = 200, description = "accepted: now friends", body = FriendRequest),
        (status = 403, description = "the caller sent it (only the recipient accepts)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "no such pending request for the caller", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub async fn accept(
    state: web::Data<RelationsState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> ApiResult<web::Json<FriendRequest>> {
    settle(&state, &caller, path.into_inner(), Party::Recipient, true)
        .await
        .map(web::Json)
}

/// Decline a request sent to the caller.
#[utoipa::path(post, path = "/api/v1/relations/friend-requests/{id}/decline", tag = "relations",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "the request")),
    responses(
        (status = 204, description = "declined"),
        (status = 403, description = "the caller sent it (cancel it instead)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "no such pending request for the caller", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub async fn decline(
    state: web::Data<RelationsState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    settle(&state, &caller, path.into_inner(), Party::Recipient, false).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Cancel a request the caller sent.
#[utoipa::path(delete, path = "/api/v1/relations/friend-requests/{id}", tag = "relations",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "the request")),
    responses(
        (status = 204, description = "cancelled"),
        (status = 403, description = "the caller received it (decline it instead)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "no such pending request for the caller", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub async fn cancel(
    state: web::Data<RelationsState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    settle(&state, &caller, path.into_inner(), Party::Sender, false).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// End a friendship (idempotent).
#[utoipa::path(delete, path = "/api/v1/relations/friends/{user_id}", tag = "relations",
    security(("bearer" = [])),
    params(("user_id" = Uuid, Path, description = "the friend")),
    responses(
        (status = 204, description = "not friends (any more)"),
        (status = 400, description = "the caller named themselves", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "no such user", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub async fn unfriend(
    state: web::Data<RelationsState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let other = path.into_inner();
    end_pair(
        &state,
        &caller,
        other,
        "you cannot unfriend yourself",
        end_friendship,
        // Either may have been the one told of the friendship.
        |_, actor, other| {
            let cause = befriended(actor, other);
            vec![
                Change::Undone {
                    cause: cause.reversed(),
                },
                Change::Undone { cause },
            ]
        },
    )
    .await
}

/// The cause of a `friend_accepted` notification: `actor` accepted `requester`'s
/// request (the subject is the new friend).
fn befriended(actor: &Actor, requester: Uuid) -> Cause {
    Cause::new(
        NoticeKind::FriendAccepted,
        requester,
        actor,
        Subject::of(SubjectType::User, actor.id),
    )
}

fn end_friendship(c: &mut AsyncPgConnection, me: Uuid, other: Uuid) -> TxFuture<'_, ()> {
    Box::pin(db::unfriend(c, me, other))
}
