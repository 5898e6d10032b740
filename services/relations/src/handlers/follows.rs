//! Follow and unfollow.

use super::{RelationsState, not_self, pair_write, require_user};
use crate::db;
use actix_web::{HttpResponse, web};
use agora_common::notices::{Actor, Cause, Change, NoticeKind, Subject, SubjectType};
use agora_common::openapi::ProblemDoc;
use agora_common::{ApiResult, Caller};
use diesel_async::AsyncConnection;
use uuid::Uuid;

/// Follow someone (idempotent).
#[utoipa::path(put, path = "/api/v1/relations/following/{user_id}", tag = "relations",
    security(("bearer" = [])),
    params(("user_id" = Uuid, Path, description = "whom to follow")),
    responses(
        (status = 204, description = "followed (also when already following)"),
        (status = 400, description = "the caller cannot follow themselves", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "one of the two blocks the other", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "no such user", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub async fn follow(
    state: web::Data<RelationsState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let other = path.into_inner();
    not_self(&caller, other, "you cannot follow yourself")?;
    pair_write(
        &state,
        &caller,
        other,
        true,
        |c, me, other| Box::pin(async move { db::follow(c, me, other).await.map(Ok) }),
        // Only a follow that started is news (a repeated PUT is not).
        |started, actor, other| {
            if *started {
                vec![Change::Made {
                    cause: followed(actor, other),
                }]
            } else {
                Vec::new()
            }
        },
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Stop following someone (idempotent).
#[utoipa::path(delete, path = "/api/v1/relations/following/{user_id}", tag = "relations",
    security(("bearer" = [])),
    params(("user_id" = Uuid, Path, description = "whom to unfollow")),
    responses(
        (status = 204, description = "not following (any more)"),
        (status = 400, description = "the caller cannot unfollow themselves", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "no such user", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub async fn unfollow(
    state: web::Data<RelationsState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let other = path.into_inner();
    not_self(&caller, other, "you cannot unfollow yourself")?;
    let mut conn = state.conn().await?;
    require_user(&mut conn, other).await?;
    let actor = Actor {
        id: caller.user_id,
        username: caller.username.clone(),
    };
    let notifier = state.notifier.clone();
    conn.transaction::<_, diesel::result::Error, _>(async |c| {
        db::unfollow(c, actor.id, other).await?;
        notifier
            .tell(
                c,
                Change::Undone {
                    cause: followed(&actor, other),
                },
            )
            .await
    })
    .await?;
    state.notifier.wake();
    Ok(HttpResponse::NoContent().finish())
}

/// The cause of a `follow` notification.
fn followed(actor: &Actor, other: Uuid) -> Cause {
    Cause::new(
        NoticeKind::Follow,
        other,
        actor,
        Subject::of(SubjectType::User, actor.id),
    )
}
