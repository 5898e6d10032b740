//! Blocks: removing every tie between two people and refusing new ones.

use super::people::list_page;
use super::{RelationsState, not_self, pair_write, require_user};
use crate::db::{self, PeopleList};
use crate::model::{Person, PersonPage};
use actix_web::{HttpResponse, web};
use agora_common::notices::Change;
use agora_common::openapi::ProblemDoc;
use agora_common::pagination::{Page, PageParams};
use agora_common::{ApiResult, Caller};
use uuid::Uuid;

/// Block someone (idempotent): follows, friendship, likes, matches and pending
/// requests between the two go, both ways, and new ones are refused.
#[utoipa::path(put, path = "/api/v1/relations/blocks/{user_id}", tag = "relations",
    security(("bearer" = [])),
    params(("user_id" = Uuid, Path, description = "whom to block")),
    responses(
        (status = 204, description = "blocked"),
        (status = 400, description = "the caller cannot block themselves", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "no such user", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub async fn block(
    state: web::Data<RelationsState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let other = path.into_inner();
    not_self(&caller, other, "you cannot block yourself")?;
    pair_write(
        &state,
        &caller,
        other,
        false,
        |c, me, other| Box::pin(async move { db::block(c, me, other).await.map(Ok) }),
        |_, actor, other| {
            vec![Change::Blocked {
                by: actor.id,
                of: other,
            }]
        },
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Lift a block (idempotent). What it removed does not come back.
#[utoipa::path(delete, path = "/api/v1/relations/blocks/{user_id}", tag = "relations",
    security(("bearer" = [])),
    params(("user_id" = Uuid, Path, description = "whom to unblock")),
    responses(
        (status = 204, description = "not blocked (any more)"),
        (status = 400, description = "the caller named themselves", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "no such user", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub async fn unblock(
    state: web::Data<RelationsState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let other = path.into_inner();
    not_self(&caller, other, "you cannot unblock yourself")?;
    let mut conn = state.conn().await?;
    require_user(&mut conn, other).await?;
    db::unblock(&mut conn, caller.user_id, other).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Whom the caller blocks, newest first.
#[utoipa::path(get, path = "/api/v1/relations/blocks", tag = "relations",
    security(("bearer" = [])),
    params(PageParams),
    responses((status = 200, body = PersonPage)))]
pub async fn list(
    state: web::Data<RelationsState>,
    caller: Caller,
    page: agora_common::extract::Query<PageParams>,
) -> ApiResult<web::Json<Page<Person>>> {
    list_page(&state, PeopleList::Blocks, caller.user_id, &page, false).await
}
