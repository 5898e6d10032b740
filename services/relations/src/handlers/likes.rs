//! "Match" likes and the caller's matches.

use super::people::list_page;
use super::{RelationsState, end_pair, not_self, pair_write};
use crate::db::{self, PeopleList};
use crate::model::{LikeOutcome, Person, PersonPage};
use actix_web::{HttpResponse, web};
use agora_common::db::TxFuture;
use agora_common::notices::{Actor, Cause, Change, NoticeKind, Subject, SubjectType};
use agora_common::openapi::ProblemDoc;
use agora_common::pagination::{Page, PageParams};
use agora_common::{ApiResult, Caller};
use diesel_async::AsyncPgConnection;
use uuid::Uuid;

/// Like someone (idempotent); a match exists when both like each other.
#[utoipa::path(put, path = "/api/v1/relations/likes/{user_id}", tag = "relations",
    security(("bearer" = [])),
    params(("user_id" = Uuid, Path, description = "whom to like")),
    responses(
        (status = 200, body = LikeOutcome),
        (status = 400, description = "the caller cannot like themselves", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "one of the two blocks the other", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "no such user", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub async fn like(
    state: web::Data<RelationsState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> ApiResult<web::Json<LikeOutcome>> {
    let other = path.into_inner();
    not_self(&caller, other, "you cannot like yourself")?;
    let liked = pair_write(
        &state,
        &caller,
        other,
        true,
        |c, me, other| Box::pin(async move { db::like(c, me, other).await.map(Ok) }),
        |liked, actor, other| {
            if liked.new_match {
                vec![Change::Made {
                    cause: matched_with(actor, other),
                }]
            } else {
                Vec::new()
            }
        },
    )
    .await?;
    Ok(web::Json(LikeOutcome {
        matched: liked.matched,
    }))
}

/// Withdraw a like (idempotent); a match ends with it.
#[utoipa::path(delete, path = "/api/v1/relations/likes/{user_id}", tag = "relations",
    security(("bearer" = [])),
    params(("user_id" = Uuid, Path, description = "whom to stop liking")),
    responses(
        (status = 204, description = "not liked (any more)"),
        (status = 400, description = "the caller named themselves", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "no such user", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub async fn unlike(
    state: web::Data<RelationsState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let other = path.into_inner();
    end_pair(
        &state,
        &caller,
        other,
        "you cannot unlike yourself",
        end_like,
        // Either may have been the one told of the match.
        |_, actor, other| {
            let cause = matched_with(actor, other);
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

/// The cause of a `match` notification: the like that completed it.
fn matched_with(actor: &Actor, other: Uuid) -> Cause {
    Cause::new(
        NoticeKind::Match,
        other,
        actor,
        Subject::of(SubjectType::User, actor.id),
    )
}

fn end_like(c: &mut AsyncPgConnection, me: Uuid, other: Uuid) -> TxFuture<'_, ()> {
    Box::pin(db::unlike(c, me, other))
}

/// The caller's matches, newest first.
#[utoipa::path(get, path = "/api/v1/relations/matches", tag = "relations",
    security(("bearer" = [])),
    params(PageParams),
    responses((status = 200, body = PersonPage)))]
pub async fn matches(
    state: web::Data<RelationsState>,
    caller: Caller,
    page: agora_common::extract::Query<PageParams>,
) -> ApiResult<web::Json<Page<Person>>> {
    list_page(&state, PeopleList::Matches, caller.user_id, &page, false).await
}
