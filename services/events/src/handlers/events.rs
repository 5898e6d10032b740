//! Events: create, list a time window, read, edit, delete.

use super::{EventsState, event_view, no_such_event};
use crate::db::{self, Position, Window};
use crate::model::{Event, EventCreate, EventFields, EventPage, EventPatch, EventQuery, storable};
use actix_web::{HttpRequest, HttpResponse, web};
use agora_common::notices::Change;
use agora_common::openapi::ProblemDoc;
use agora_common::pagination::{Page, PageParams};
use agora_common::{ApiError, ApiResult, Caller};
use chrono::Utc;
use diesel_async::AsyncConnection;
use uuid::Uuid;

/// Create an event; the caller organizes it.
#[utoipa::path(post, path = "/api/v1/events", tag = "events",
    security(("bearer" = [])),
    request_body = EventCreate,
    responses(
        (status = 201, body = Event),
        (status = 400, description = "a field is invalid, or `ends_at` is not after `starts_at` (see `errors`)", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub async fn create(
    state: web::Data<EventsState>,
    caller: Caller,
    body: agora_common::extract::Json<EventCreate>,
) -> ApiResult<HttpResponse> {
    let fields = EventFields::create(body.into_inner()).map_err(ApiError::Validation)?;
    let id = Uuid::now_v7();
    let mut conn = state.conn().await?;
    db::insert_event(&mut conn, id, caller.user_id, &caller.username, &fields).await?;
    let row = db::event(&mut conn, caller.user_id, id)
        .await?
        .ok_or_else(no_such_event)?;
    tracing::info!(event_id = %id, "event created");
    Ok(HttpResponse::Created().json(event_view(row)))
}

/// Events the caller may see that start in a time window (default: from now on, with
/// the events in progress now), soonest first: public ones, friends-only ones of the
/// caller's friends, the caller's own. One relations call and one query per page.
#[utoipa::path(get, path = "/api/v1/events", tag = "events",
    security(("bearer" = [])),
    params(EventQuery, PageParams),
    responses(
        (status = 200, body = EventPage),
        (status = 400, description = "`to` is not after `from`, an instant is outside the years 0001 to 9999, or the page parameters are invalid", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub async fn list(
    state: web::Data<EventsState>,
    caller: Caller,
    query: agora_common::extract::Query<EventQuery>,
    req: HttpRequest,
) -> ApiResult<web::Json<Page<Event>>> {
    let query = query.into_inner();
    let page = query.page.validate::<Position>("events")?;
    let from = query.from.unwrap_or_else(Utc::now);
    for (field, at) in [("from", Some(from)), ("to", query.to)] {
        if at.is_some_and(|at| !storable(at)) {
            return Err(ApiError::invalid_field(
                field,
                "must be in the years 0001 to 9999",
            ));
        }
    }
    if query.to.is_some_and(|to| to <= from) {
        return Err(ApiError::invalid_field(
            "to",
            "must be after `from` (default: now)",
        ));
    }
    let graph = state.relations.graph(caller.user_id, &req).await?;
    let rows = db::window_page(
        &mut *state.conn().await?,
        Window {
            viewer: caller.user_id,
            from,
            to: query.to,
            in_progress: query.from.is_none(),
            organizer: query.organizer,
            friends: &graph.friends,
            blocked_by: &graph.blocked_by,
        },
        page.after,
        page.limit,
    )
    .await?;
    let page = Page::from_rows(rows, &page, |r| (r.starts_at, r.id));
    Ok(web::Json(Page {
        items: page.items.into_iter().map(event_view).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Read an event.
#[utoipa::path(get, path = "/api/v1/events/{id}", tag = "events",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "the event")),
    responses(
        (status = 200, body = Event),
        (status = 404, description = "no such event, or not visible to the caller", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub async fn get(
    state: web::Data<EventsState>,
    caller: Caller,
    path: web::Path<Uuid>,
    req: HttpRequest,
) -> ApiResult<web::Json<Event>> {
    let row = state
        .visible_event(&caller, path.into_inner(), &req)
        .await?;
    Ok(web::Json(event_view(row)))
}

/// Edit an event (organizer only): any of its fields.
#[utoipa::path(patch, path = "/api/v1/events/{id}", tag = "events",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "the event")),
    request_body = EventPatch,
    responses(
        (status = 200, body = Event),
        (status = 400, description = "a field is invalid, or `ends_at` would not be after `starts_at` (see `errors`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "the caller sees the event but is not its organizer", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "no such event, or not visible to the caller", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub async fn update(
    state: web::Data<EventsState>,
    caller: Caller,
    path: web::Path<Uuid>,
    body: agora_common::extract::Json<EventPatch>,
    req: HttpRequest,
) -> ApiResult<web::Json<Event>> {
    let id = path.into_inner();
    let event = state.organized_event(&caller, id, &req).await?;
    let fields = event
        .fields()
        .patched(body.into_inner())
        .map_err(ApiError::Validation)?;
    let mut conn = state.conn().await?;
    if !db::update_event(&mut conn, id, &fields).await? {
        return Err(no_such_event());
    }
    let row = db::event(&mut conn, caller.user_id, id)
        .await?
        .ok_or_else(no_such_event)?;
    Ok(web::Json(event_view(row)))
}

/// Delete an event (organizer only); its answers go with it.
#[utoipa::path(delete, path = "/api/v1/events/{id}", tag = "events",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "the event")),
    responses(
        (status = 204, description = "deleted"),
        (status = 403, description = "the caller sees the event but is not its organizer", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "no such event, or not visible to the caller", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub async fn delete(
    state: web::Data<EventsState>,
    caller: Caller,
    path: web::Path<Uuid>,
    req: HttpRequest,
) -> ApiResult<HttpResponse> {
    let id = path.into_inner();
    state.organized_event(&caller, id, &req).await?;
    let notifier = &state.notifier;
    state
        .conn()
        .await?
        .transaction::<_, diesel::result::Error, _>(async |c| {
            db::delete_event(c, id).await?;
            notifier.tell(c, Change::Gone { subject: id }).await
        })
        .await?;
    state.notifier.wake();
    tracing::info!(event_id = %id, "event deleted");
    Ok(HttpResponse::NoContent().finish())
}
