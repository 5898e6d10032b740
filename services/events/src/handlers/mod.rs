//! Request handlers: extract, authorize, one query, map to the response.

pub mod events;
pub mod internal;
pub mod rsvps;

use crate::db::{self, EventRow};
use crate::model::{Event, EventVisibility, Person, RsvpCounts, RsvpStatus};
use actix_web::HttpRequest;
use agora_common::db::{DbConn, DbPool};
use agora_common::relations::Relations;
use agora_common::{ApiError, ApiResult, Caller};
use std::borrow::Cow;
use uuid::Uuid;

/// Everything the handlers share.
pub struct EventsState {
    pub pool: DbPool,
    pub relations: Relations,
    /// Tells the notifications service of answers to invitations.
    pub notifier: agora_common::notices::Notifier,
}

impl EventsState {
    /// A pooled connection (503 when the database is unavailable).
    pub async fn conn(&self) -> ApiResult<DbConn> {
        Ok(agora_common::db::checkout(&self.pool).await?)
    }

    /// An event the caller may see, else 404 (whether it exists or not): public ones
    /// unless the organizer blocks the caller, friends-only ones for the organizer's
    /// friends, every one for its organizer.
    pub async fn visible_event(
        &self,
        caller: &Caller,
        id: Uuid,
        req: &HttpRequest,
    ) -> ApiResult<EventRow> {
        // The connection goes back to the pool before the relations call.
        let event = db::event(&mut *self.conn().await?, caller.user_id, id)
            .await?
            .ok_or_else(no_such_event)?;
        if event.organizer_id == caller.user_id {
            return Ok(event);
        }
        let pair = self
            .relations
            .pair(caller.user_id, event.organizer_id, Some(req))
            .await?;
        if may_see(&event, pair.friend, pair.blocked_by) {
            Ok(event)
        } else {
            Err(no_such_event())
        }
    }

    /// An event the caller may see and organizes: 404 when invisible, 403 when it is
    /// someone else's.
    pub async fn organized_event(
        &self,
        caller: &Caller,
        id: Uuid,
        req: &HttpRequest,
    ) -> ApiResult<EventRow> {
        let event = self.visible_event(caller, id, req).await?;
        if event.organizer_id == caller.user_id {
            Ok(event)
        } else {
            Err(ApiError::Forbidden(Cow::Borrowed(
                "only the organizer may change this event",
            )))
        }
    }
}

/// Whether someone who is (or is not) the organizer's friend, and is (or is not)
/// blocked by the organizer, may see an event of theirs.
pub fn may_see(event: &EventRow, friend: bool, blocked_by: bool) -> bool {
    !blocked_by
        && match EventVisibility::parse(&event.visibility) {
            EventVisibility::Public => true,
            EventVisibility::Friends => friend,
        }
}

pub fn no_such_event() -> ApiError {
    ApiError::NotFound(Cow::Borrowed("no such event"))
}

/// The API view of an event row.
pub fn event_view(row: EventRow) -> Event {
    Event {
        id: row.id,
        organizer: Person {
            id: row.organizer_id,
            username: row.organizer_username,
        },
        title: row.title,
        description: row.description,
        starts_at: row.starts_at,
        ends_at: row.ends_at,
        location: row.location,
        visibility: EventVisibility::parse(&row.visibility),
        created_at: row.created_at,
        updated_at: row.updated_at,
        rsvp_counts: RsvpCounts {
            going: i64::from(row.going),
            interested: i64::from(row.interested),
            not_going: i64::from(row.not_going),
        },
        my_rsvp: row.my_rsvp.as_deref().map(RsvpStatus::parse),
    }
}
