//! The caller's notifications: the list, the unread count, read marks, preferences.

use super::NotificationsState;
use crate::db::{self, ListFilter};
use crate::model::{self, NotificationPage, Preferences, ReadMarks, ReadRequest, UnreadCount};
use actix_web::{HttpRequest, HttpResponse, web};
use agora_common::openapi::ProblemDoc;
use agora_common::pagination::{Page, PageParams};
use agora_common::{ApiError, ApiResult, Caller};
use std::borrow::Cow;

/// `GET /notifications` query: `kind` may repeat.
fn parse_list_query(query: &str) -> Result<(ListFilter, PageParams), ApiError> {
    let mut filter = ListFilter::default();
    let mut kinds = Vec::new();
    let page = agora_common::extract::list_query(query, &["kind"], |key, value| {
        match key {
            "kind" => kinds.push(value),
            "unread" => {
                filter.unread = match value.as_str() {
                    "true" => true,
                    "false" => false,
                    _ => return Err(ApiError::invalid_field("unread", "must be true or false")),
                }
            }
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    filter.kinds = model::parse_kinds(&kinds)?;
    Ok((filter, page))
}

/// The caller's notifications, newest first (a grouped one keeps its place when it
/// grows), optionally only unread ones and only some kinds.
#[utoipa::path(get, path = "/api/v1/notifications", tag = "notifications",
    security(("bearer" = [])),
    params(
        ("unread" = Option<bool>, Query, description = "`true`: unread ones only"),
        ("kind" = Option<Vec<agora_common::notices::NoticeKind>>, Query, explode = true, description = "repeatable: these kinds only"),
        PageParams,
    ),
    responses(
        (status = 200, body = NotificationPage),
        (status = 400, description = "an unknown kind, a bad `unread`, limit or cursor", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub async fn list(
    state: web::Data<NotificationsState>,
    caller: Caller,
    req: HttpRequest,
) -> ApiResult<web::Json<Page<model::Notification>>> {
    let (filter, page) = parse_list_query(req.query_string())?;
    let page = page.validate::<uuid::Uuid>("notifications")?;
    let rows = db::page(
        &mut *state.conn().await?,
        caller.user_id,
        &filter,
        page.after,
        i64::from(page.limit) + 1,
    )
    .await?;
    Ok(web::Json(Page::from_rows(rows, &page, |n| n.id)))
}

/// How many of the caller's notifications are unread.
#[utoipa::path(get, path = "/api/v1/notifications/unread-count", tag = "notifications",
    security(("bearer" = [])),
    responses((status = 200, body = UnreadCount)))]
pub async fn unread_count(
    state: web::Data<NotificationsState>,
    caller: Caller,
) -> ApiResult<web::Json<UnreadCount>> {
    let unread = db::unread_count(&mut *state.conn().await?, caller.user_id).await?;
    Ok(web::Json(UnreadCount { unread }))
}

/// Marks notifications read: `up_to` (one of the caller's, and every older one) or
/// `ids` (at most 100; ids that are not the caller's are ignored). Idempotent.
#[utoipa::path(post, path = "/api/v1/notifications/read", tag = "notifications",
    security(("bearer" = [])),
    request_body = ReadRequest,
    responses(
        (status = 204, description = "marked"),
        (status = 400, description = "neither or both of `up_to` and `ids`, an unknown field, or more than 100 ids", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "`up_to` is not one of the caller's notifications", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub async fn read(
    state: web::Data<NotificationsState>,
    caller: Caller,
    body: agora_common::extract::Json<ReadRequest>,
) -> ApiResult<HttpResponse> {
    let mut conn = state.conn().await?;
    match body.0.marks()? {
        ReadMarks::UpTo(id) => {
            if !db::mark_read_up_to(&mut conn, caller.user_id, id).await? {
                return Err(ApiError::NotFound(Cow::Borrowed("no such notification")));
            }
        }
        ReadMarks::Ids(ids) => db::mark_read(&mut conn, caller.user_id, &ids).await?,
    }
    Ok(HttpResponse::NoContent().finish())
}

/// The kinds the caller muted.
#[utoipa::path(get, path = "/api/v1/notifications/preferences", tag = "notifications",
    security(("bearer" = [])),
    responses((status = 200, body = Preferences)))]
pub async fn preferences(
    state: web::Data<NotificationsState>,
    caller: Caller,
) -> ApiResult<web::Json<Preferences>> {
    let muted_kinds = db::muted_kinds(&mut *state.conn().await?, caller.user_id).await?;
    Ok(web::Json(Preferences { muted_kinds }))
}

/// Replaces the kinds the caller muted: those are not made from now on (what was made
/// stays).
#[utoipa::path(put, path = "/api/v1/notifications/preferences", tag = "notifications",
    security(("bearer" = [])),
    request_body = Preferences,
    responses(
        (status = 200, body = Preferences),
        (status = 400, description = "an unknown kind, or more than 9 entries", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub async fn set_preferences(
    state: web::Data<NotificationsState>,
    caller: Caller,
    body: agora_common::extract::Json<Preferences>,
) -> ApiResult<web::Json<Preferences>> {
    let preferences = body.0.normalized()?;
    db::set_muted_kinds(
        &mut *state.conn().await?,
        caller.user_id,
        &preferences.muted_kinds,
    )
    .await?;
    Ok(web::Json(preferences))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_queries_take_repeated_kinds_and_nothing_unknown() {
        let (filter, page) =
            parse_list_query("kind=reply&kind=follow&unread=true&limit=5").unwrap();
        assert!(filter.unread);
        assert_eq!(filter.kinds.len(), 2);
        assert_eq!(page.limit, Some(5));
        assert!(parse_list_query("kind=poke").is_err());
        assert!(parse_list_query("unread=yes").is_err());
        assert!(parse_list_query("access_token=x").is_err());
        assert!(parse_list_query("limit=1&limit=2").is_err());
    }
}
