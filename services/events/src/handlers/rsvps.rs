//! RSVPs: answer, change or withdraw an answer, and the attendee list.

use super::{EventsState, event_view, may_see, no_such_event};
use crate::db::{self, Position};
use crate::model::{Attendee, AttendeePage, AttendeeQuery, Event, Person, RsvpRequest, RsvpStatus};
use actix_web::{HttpRequest, HttpResponse, web};
use agora_common::notices::{Actor, Cause, Change, NoticeKind, Subject, SubjectType};
use agora_common::openapi::ProblemDoc;
use agora_common::pagination::{Page, PageParams};
use agora_common::{ApiError, ApiResult, Caller};
use diesel_async::AsyncConnection;
use std::borrow::Cow;
use uuid::Uuid;

/// Answer an invitation, or change the answer (one per person and event). Anyone who
/// sees the event may answer, until it is over.
#[utoipa::path(put, path = "/api/v1/events/{id}/rsvp", tag = "events",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "the event")),
    request_body = RsvpRequest,
    responses(
        (status = 200, description = "the event with its new counts and the caller's answer", body = Event),
        (status = 400, description = "`status` is not one of the three", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "no such event, or not visible to the caller", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "type `event-over`: the event is over, its answers are closed", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub async fn set(
    state: web::Data<EventsState>,
    caller: Caller,
    path: web::Path<Uuid>,
    body: agora_common::extract::Json<RsvpRequest>,
    req: HttpRequest,
) -> ApiResult<web::Json<Event>> {
    let id = path.into_inner();
    let event = state.visible_event(&caller, id, &req).await?;
    if event.is_over(chrono::Utc::now()) {
        return Err(answers_closed());
    }
    let mut conn = state.conn().await?;
    let cause = answered(&caller, &event);
    let notifier = &state.notifier;
    let status = body.status;
    let set = conn
        .transaction::<_, diesel::result::Error, _>(async |c| {
            let set = db::set_rsvp(c, id, caller.user_id, &caller.username, status).await?;
            // News when it becomes `going` or `interested` (from nothing or `not_going`),
            // undone when it stops being either.
            let was_coming = |previous: &Option<RsvpStatus>| {
                matches!(previous, Some(RsvpStatus::Going | RsvpStatus::Interested))
            };
            match (&set, status) {
                (Some(previous), RsvpStatus::Going | RsvpStatus::Interested)
                    if !was_coming(previous) =>
                {
                    notifier.tell(c, Change::Made { cause }).await?
                }
                (Some(previous), RsvpStatus::NotGoing) if was_coming(previous) => {
                    notifier.tell(c, Change::Undone { cause }).await?
                }
                _ => {}
            }
            Ok(set.is_some())
        })
        .await?;
    if !set {
        return Err(no_such_event());
    }
    state.notifier.wake();
    let row = db::event(&mut conn, caller.user_id, id)
        .await?
        .ok_or_else(no_such_event)?;
    Ok(web::Json(event_view(row)))
}

/// Answers close when the event is over: its counts are history from then on.
fn answers_closed() -> ApiError {
    ApiError::Conflict(Cow::Borrowed("the event is over; answers are closed")).typed("event-over")
}

/// Withdraw the caller's answer (idempotent), until the event is over.
#[utoipa::path(delete, path = "/api/v1/events/{id}/rsvp", tag = "events",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "the event")),
    responses(
        (status = 204, description = "the caller has no answer on this event"),
        (status = 404, description = "no such event, or not visible to the caller", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "type `event-over`: the event is over, its answers are closed", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub async fn withdraw(
    state: web::Data<EventsState>,
    caller: Caller,
    path: web::Path<Uuid>,
    req: HttpRequest,
) -> ApiResult<HttpResponse> {
    let id = path.into_inner();
    let event = state.visible_event(&caller, id, &req).await?;
    if event.is_over(chrono::Utc::now()) {
        return Err(answers_closed());
    }
    let cause = answered(&caller, &event);
    let notifier = &state.notifier;
    state
        .conn()
        .await?
        .transaction::<_, diesel::result::Error, _>(async |c| {
            db::delete_rsvp(c, id, caller.user_id).await?;
            notifier.tell(c, Change::Undone { cause }).await
        })
        .await?;
    state.notifier.wake();
    Ok(HttpResponse::NoContent().finish())
}

/// The cause of an `event_rsvp` notification: the caller's `going` or `interested`
/// (one per person and event, whichever of the two).
fn answered(caller: &Caller, event: &crate::db::EventRow) -> Cause {
    Cause::new(
        NoticeKind::EventRsvp,
        event.organizer_id,
        &Actor {
            id: caller.user_id,
            username: caller.username.clone(),
        },
        Subject::of(SubjectType::Event, event.id),
    )
}

/// Who answered, in answer order (all answers or one status), with the counts per status;
/// people blocked either way between them and the caller are left out of the list.
#[utoipa::path(get, path = "/api/v1/events/{id}/attendees", tag = "events",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "the event"), AttendeeQuery, PageParams),
    responses(
        (status = 200, body = AttendeePage),
        (status = 400, description = "`status` or the page parameters are invalid", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "no such event, or not visible to the caller", body = ProblemDoc, content_type = "application/problem+json"),
    ))]
pub async fn attendees(
    state: web::Data<EventsState>,
    caller: Caller,
    path: web::Path<Uuid>,
    query: agora_common::extract::Query<AttendeeQuery>,
    req: HttpRequest,
) -> ApiResult<web::Json<AttendeePage>> {
    let query = query.into_inner();
    let page = query.page.validate::<Position>("events.attendees")?;
    let id = path.into_inner();
    // One relations call decides both who may see the event and whom the list leaves
    // out: people blocked either way (the counts stay whole: they name nobody).
    let event = db::event(&mut *state.conn().await?, caller.user_id, id)
        .await?
        .ok_or_else(no_such_event)?;
    let graph = state.relations.graph(caller.user_id, &req).await?;
    let organizer = event.organizer_id;
    if organizer != caller.user_id
        && !may_see(
            &event,
            graph.friends.contains(&organizer),
            graph.blocked_by.contains(&organizer),
        )
    {
        return Err(no_such_event());
    }
    let hidden = graph.blocked_either_way();
    let rows = db::attendee_page(
        &mut *state.conn().await?,
        id,
        query.status,
        &hidden,
        page.after,
        page.limit,
    )
    .await?;
    let page = Page::from_rows(rows, &page, |r| (r.created_at, r.user_id));
    let counts = event_view(event).rsvp_counts;
    Ok(web::Json(AttendeePage {
        items: page
            .items
            .into_iter()
            .map(|r| Attendee {
                user: Person {
                    id: r.user_id,
                    username: r.username,
                },
                status: RsvpStatus::parse(&r.status),
                responded_at: r.created_at,
                updated_at: r.updated_at,
            })
            .collect(),
        next_cursor: page.next_cursor,
        counts,
    }))
}
