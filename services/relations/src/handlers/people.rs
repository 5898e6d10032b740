//! Lists of people (followers, following, friends), someone's summary, suggestions.

use super::{RelationsState, require_user};
use crate::db::{self, PeopleList, Position};
use crate::model::{Person, PersonPage, SuggestionList, SuggestionQuery, Summary};
use actix_web::web;
use agora_common::openapi::ProblemDoc;
use agora_common::pagination::{Page, PageParams};
use agora_common::{ApiError, ApiResult, Caller};
use uuid::Uuid;

/// One page of one of a person's lists, newest relation first.
pub(super) async fn list_page(
    state: &RelationsState,
    list: PeopleList,
    subject: Uuid,
    page: &PageParams,
    check_subject: bool,
) -> ApiResult<web::Json<Page<Person>>> {
    let page = page.validate::<Position>(list.cursor_list())?;
    let mut conn = state.conn().await?;
    if check_subject {
        require_user(&mut conn, subject).await?;
    }
    let rows = db::people_page(&mut conn, list, subject, page.after, page.limit).await?;
    Ok(web::Json(Page::from_rows(rows, &page, |p| (p.since, p.id))))
}

/// Who follows a user, newest first.
#[utoipa::path(get, path = "/api/v1/relations/users/{id}/followers", tag = "relations",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "the user"), PageParams),
    responses(
        (status = 200, body = PersonPage),
        (status = 404, description = "no such user", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub async fn followers(
    state: web::Data<RelationsState>,
    _caller: Caller,
    path: web::Path<Uuid>,
    page: agora_common::extract::Query<PageParams>,
) -> ApiResult<web::Json<Page<Person>>> {
    list_page(
        &state,
        PeopleList::Followers,
        path.into_inner(),
        &page,
        true,
    )
    .await
}

/// Whom a user follows, newest first.
#[utoipa::path(get, path = "/api/v1/relations/users/{id}/following", tag = "relations",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "the user"), PageParams),
    responses(
        (status = 200, body = PersonPage),
        (status = 404, description = "no such user", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub async fn following(
    state: web::Data<RelationsState>,
    _caller: Caller,
    path: web::Path<Uuid>,
    page: agora_common::extract::Query<PageParams>,
) -> ApiResult<web::Json<Page<Person>>> {
    list_page(
        &state,
        PeopleList::Following,
        path.into_inner(),
        &page,
        true,
    )
    .await
}

/// A user's friends, newest friendship first.
#[utoipa::path(get, path = "/api/v1/relations/users/{id}/friends", tag = "relations",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "the user"), PageParams),
    responses(
        (status = 200, body = PersonPage),
        (status = 404, description = "no such user", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub async fn friends(
    state: web::Data<RelationsState>,
    _caller: Caller,
    path: web::Path<Uuid>,
    page: agora_common::extract::Query<PageParams>,
) -> ApiResult<web::Json<Page<Person>>> {
    list_page(&state, PeopleList::Friends, path.into_inner(), &page, true).await
}

/// A user's counts and how they relate to the caller.
#[utoipa::path(get, path = "/api/v1/relations/users/{id}/summary", tag = "relations",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "the user")),
    responses(
        (status = 200, body = Summary),
        (status = 404, description = "no such user", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub async fn summary(
    state: web::Data<RelationsState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> ApiResult<web::Json<Summary>> {
    let subject = path.into_inner();
    let mut conn = state.conn().await?;
    require_user(&mut conn, subject).await?;
    Ok(web::Json(
        db::summary(&mut conn, caller.user_id, subject).await?,
    ))
}

/// People the caller may know, best first.
#[utoipa::path(get, path = "/api/v1/relations/suggestions", tag = "relations",
    security(("bearer" = [])),
    params(SuggestionQuery),
    responses((status = 200, body = SuggestionList)))]
pub async fn suggestions(
    state: web::Data<RelationsState>,
    caller: Caller,
    query: agora_common::extract::Query<SuggestionQuery>,
) -> ApiResult<web::Json<SuggestionList>> {
    let limit = match query.limit {
        None => 10,
        Some(n @ 1..=100) => n as u32,
        Some(_) => {
            return Err(ApiError::invalid_field(
                "limit",
                "must be between 1 and 100",
            ));
        }
    };
    let items = db::suggestions(&mut *state.conn().await?, caller.user_id, limit).await?;
    Ok(web::Json(SuggestionList { items }))
}
