//! The events service's queries, one function per query.
//!
//! RSVP counts live on the event row (kept by a trigger), so a page of events is one
//! index range scan with the caller's own answer joined in.

use crate::model::{EventFields, EventVisibility, RsvpStatus};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::result::Error;
use diesel::sql_types::{Array, Integer, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use std::sync::LazyLock;
use uuid::Uuid;

/// A keyset position in a listing: `(starts_at, id)` of events, `(created_at,
/// user_id)` of attendees.
pub type Position = (DateTime<Utc>, Uuid);

/// An event with its counts and the viewer's answer.
#[derive(Debug, Clone, QueryableByName)]
pub struct EventRow {
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    pub organizer_id: Uuid,
    #[diesel(sql_type = Text)]
    pub organizer_username: String,
    #[diesel(sql_type = Text)]
    pub title: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub description: Option<String>,
    #[diesel(sql_type = Timestamptz)]
    pub starts_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub ends_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Text>)]
    pub location: Option<String>,
    #[diesel(sql_type = Text)]
    pub visibility: String,
    #[diesel(sql_type = Integer)]
    pub going: i32,
    #[diesel(sql_type = Integer)]
    pub interested: i32,
    #[diesel(sql_type = Integer)]
    pub not_going: i32,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    pub updated_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Text>)]
    pub my_rsvp: Option<String>,
}

impl EventRow {
    /// The stored fields (to apply a patch to).
    pub fn fields(&self) -> EventFields {
        EventFields {
            title: self.title.clone(),
            description: self.description.clone(),
            starts_at: self.starts_at,
            ends_at: self.ends_at,
            location: self.location.clone(),
            visibility: EventVisibility::parse(&self.visibility),
        }
    }

    /// Whether the event is over (it ends, or starts if it has no end, in the past).
    pub fn is_over(&self, now: DateTime<Utc>) -> bool {
        self.ends_at.unwrap_or(self.starts_at) < now
    }
}

/// `$1` is the viewer (for `my_rsvp`).
const SELECT: &str = "SELECT e.id, e.organizer_id, e.organizer_username, e.title, \
    e.description, e.starts_at, e.ends_at, e.location, e.visibility, e.going, \
    e.interested, e.not_going, e.created_at, e.updated_at, r.status AS my_rsvp \
    FROM events e LEFT JOIN rsvps r ON r.event_id = e.id AND r.user_id = $1";

/// One event, whoever may see it (visibility is the caller's business).
pub async fn event(
    conn: &mut AsyncPgConnection,
    viewer: Uuid,
    id: Uuid,
) -> Result<Option<EventRow>, Error> {
    static SQL: LazyLock<String> = LazyLock::new(|| format!("{SELECT} WHERE e.id = $2"));
    diesel::sql_query(SQL.as_str())
        .bind::<SqlUuid, _>(viewer)
        .bind::<SqlUuid, _>(id)
        .get_result(conn)
        .await
        .optional()
}

/// Records a new event.
pub async fn insert_event(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    organizer: Uuid,
    organizer_username: &str,
    fields: &EventFields,
) -> Result<(), Error> {
    diesel::sql_query(
        "INSERT INTO events (id, organizer_id, organizer_username, title, description, \
         starts_at, ends_at, location, visibility) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind::<SqlUuid, _>(id)
    .bind::<SqlUuid, _>(organizer)
    .bind::<Text, _>(organizer_username)
    .bind::<Text, _>(&fields.title)
    .bind::<Nullable<Text>, _>(fields.description.as_deref())
    .bind::<Timestamptz, _>(fields.starts_at)
    .bind::<Nullable<Timestamptz>, _>(fields.ends_at)
    .bind::<Nullable<Text>, _>(fields.location.as_deref())
    .bind::<Text, _>(fields.visibility.as_str())
    .execute(conn)
    .await
    .map(drop)
}

/// Replaces an event's fields; `false` when it is gone.
pub async fn update_event(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    fields: &EventFields,
) -> Result<bool, Error> {
    diesel::sql_query(
        "UPDATE events SET title = $2, description = $3, starts_at = $4, ends_at = $5, \
         location = $6, visibility = $7, updated_at = now() WHERE id = $1",
    )
    .bind::<SqlUuid, _>(id)
    .bind::<Text, _>(&fields.title)
    .bind::<Nullable<Text>, _>(fields.description.as_deref())
    .bind::<Timestamptz, _>(fields.starts_at)
    .bind::<Nullable<Timestamptz>, _>(fields.ends_at)
    .bind::<Nullable<Text>, _>(fields.location.as_deref())
    .bind::<Text, _>(fields.visibility.as_str())
    .execute(conn)
    .await
    .map(|n| n > 0)
}

/// Deletes an event and its answers.
pub async fn delete_event(conn: &mut AsyncPgConnection, id: Uuid) -> Result<(), Error> {
    diesel::sql_query("DELETE FROM events WHERE id = $1")
        .bind::<SqlUuid, _>(id)
        .execute(conn)
        .await
        .map(drop)
}

/// What a listing shows: the window, the position, and whose events the viewer may see.
pub struct Window<'a> {
    pub viewer: Uuid,
    pub from: DateTime<Utc>,
    /// Events starting before this instant (none: no end).
    pub to: Option<DateTime<Utc>>,
    /// Also the events in progress at `from` (started before it, ending after it).
    pub in_progress: bool,
    pub organizer: Option<Uuid>,
    /// Organizers whose friends-only events the viewer sees.
    pub friends: &'a [Uuid],
    /// Organizers who block the viewer: none of their events.
    pub blocked_by: &'a [Uuid],
}

/// The visible events starting in `[from, to)` (and, with `in_progress`, those under
/// way at `from`) after `after`, soonest first, at most `limit + 1` rows (the extra one
/// tells that a next page exists).
pub async fn window_page(
    conn: &mut AsyncPgConnection,
    window: Window<'_>,
    after: Option<Position>,
    limit: u32,
) -> Result<Vec<EventRow>, Error> {
    // Without a cursor the position is just before the window (or before any start,
    // for events in progress): every id is > nil.
    let first = if window.in_progress {
        DateTime::<Utc>::from_timestamp(-62_135_596_800, 0).unwrap_or(window.from) // 0001-01-01
    } else {
        window.from
    };
    let (after_start, after_id) = after.unwrap_or((first, Uuid::nil()));
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "{SELECT} WHERE (e.starts_at, e.id) > ($2, $3) \
             AND (e.starts_at >= $4 OR ($10 AND e.ends_at > $4)) \
             AND ($5::timestamptz IS NULL OR e.starts_at < $5) \
             AND ($6::uuid IS NULL OR e.organizer_id = $6) \
             AND e.organizer_id <> ALL($7) \
             AND (e.visibility = 'public' OR e.organizer_id = $1 OR e.organizer_id = ANY($8)) \
             ORDER BY e.starts_at, e.id LIMIT $9"
        )
    });
    diesel::sql_query(SQL.as_str())
        .bind::<SqlUuid, _>(window.viewer)
        .bind::<Timestamptz, _>(after_start)
        .bind::<SqlUuid, _>(after_id)
        .bind::<Timestamptz, _>(window.from)
        .bind::<Nullable<Timestamptz>, _>(window.to)
        .bind::<Nullable<SqlUuid>, _>(window.organizer)
        .bind::<Array<SqlUuid>, _>(window.blocked_by)
        .bind::<Array<SqlUuid>, _>(window.friends)
        .bind::<Integer, _>(limit as i32 + 1)
        .bind::<diesel::sql_types::Bool, _>(window.in_progress)
        .load(conn)
        .await
}

#[derive(QueryableByName)]
struct Locked {
    #[diesel(sql_type = SqlUuid)]
    #[allow(dead_code)] // only its presence matters
    id: Uuid,
}

/// Sets (or changes) a user's answer. Locks the event row first, as a deletion does,
/// so an answer and a deletion never deadlock; `None` when the event is gone, else the
/// answer it replaced.
pub async fn set_rsvp(
    conn: &mut AsyncPgConnection,
    event: Uuid,
    user: Uuid,
    username: &str,
    status: RsvpStatus,
) -> Result<Option<Option<RsvpStatus>>, Error> {
    // Locks are taken in one order (event, then answer), so no retry loop is needed.
    conn.transaction::<_, Error, _>(async |conn| {
        let locked = diesel::sql_query("SELECT id FROM events WHERE id = $1 FOR NO KEY UPDATE")
            .bind::<SqlUuid, _>(event)
            .get_result::<Locked>(conn)
            .await
            .optional()?;
        if locked.is_none() {
            return Ok(None);
        }
        #[derive(QueryableByName)]
        struct Previous {
            #[diesel(sql_type = Text)]
            status: String,
        }
        let previous: Option<Previous> =
            diesel::sql_query("SELECT status FROM rsvps WHERE event_id = $1 AND user_id = $2")
                .bind::<SqlUuid, _>(event)
                .bind::<SqlUuid, _>(user)
                .get_result(conn)
                .await
                .optional()?;
        // An unchanged answer writes nothing (and leaves the counts alone).
        diesel::sql_query(
            "INSERT INTO rsvps (event_id, user_id, username, status) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (event_id, user_id) DO UPDATE \
             SET status = EXCLUDED.status, updated_at = now() \
             WHERE rsvps.status <> EXCLUDED.status",
        )
        .bind::<SqlUuid, _>(event)
        .bind::<SqlUuid, _>(user)
        .bind::<Text, _>(username)
        .bind::<Text, _>(status.as_str())
        .execute(conn)
        .await?;
        Ok(Some(previous.map(|p| RsvpStatus::parse(&p.status))))
    })
    .await
}

/// Withdraws a user's answer (idempotent), event row first as in [`set_rsvp`].
pub async fn delete_rsvp(
    conn: &mut AsyncPgConnection,
    event: Uuid,
    user: Uuid,
) -> Result<(), Error> {
    conn.transaction::<_, Error, _>(async |conn| {
        diesel::sql_query("SELECT id FROM events WHERE id = $1 FOR NO KEY UPDATE")
            .bind::<SqlUuid, _>(event)
            .load::<Locked>(conn)
            .await?;
        diesel::sql_query("DELETE FROM rsvps WHERE event_id = $1 AND user_id = $2")
            .bind::<SqlUuid, _>(event)
            .bind::<SqlUuid, _>(user)
            .execute(conn)
            .await
            .map(drop)
    })
    .await
}

/// An answer with who gave it.
#[derive(Debug, Clone, QueryableByName)]
pub struct AttendeeRow {
    #[diesel(sql_type = SqlUuid)]
    pub user_id: Uuid,
    #[diesel(sql_type = Text)]
    pub username: String,
    #[diesel(sql_type = Text)]
    pub status: String,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    pub updated_at: DateTime<Utc>,
}

/// An event's answers (of one status, or all) in answer order after `after`, at most
/// `limit + 1` rows, leaving out the people in `hidden` (blocks either way).
pub async fn attendee_page(
    conn: &mut AsyncPgConnection,
    event: Uuid,
    status: Option<RsvpStatus>,
    hidden: &[Uuid],
    after: Option<Position>,
    limit: u32,
) -> Result<Vec<AttendeeRow>, Error> {
    // Answers are never older than the epoch.
    let (after_at, after_id) = after.unwrap_or((DateTime::UNIX_EPOCH, Uuid::nil()));
    // Two statements, so each is planned on its own index.
    let sql = match status {
        None => {
            "SELECT user_id, username, status, created_at, updated_at FROM rsvps \
             WHERE event_id = $1 AND (created_at, user_id) > ($2, $3) \
             AND user_id <> ALL($5) \
             ORDER BY created_at, user_id LIMIT $4"
        }
        Some(_) => {
            "SELECT user_id, username, status, created_at, updated_at FROM rsvps \
             WHERE event_id = $1 AND (created_at, user_id) > ($2, $3) \
             AND user_id <> ALL($5) AND status = $6 \
             ORDER BY created_at, user_id LIMIT $4"
        }
    };
    let query = diesel::sql_query(sql)
        .into_boxed()
        .bind::<SqlUuid, _>(event)
        .bind::<Timestamptz, _>(after_at)
        .bind::<SqlUuid, _>(after_id)
        .bind::<Integer, _>(limit as i32 + 1)
        .bind::<Array<SqlUuid>, _>(hidden);
    let query = match status {
        Some(status) => query.bind::<Text, _>(status.as_str()),
        None => query,
    };
    query.load(conn).await
}

/// Erases everything of `person` (call it in a transaction): their answers to others'
/// events (the counts follow through the trigger) and the events they organized, with
/// every answer to them. Returns the events that went. Idempotent.
pub async fn erase_person(conn: &mut AsyncPgConnection, person: Uuid) -> Result<Vec<Uuid>, Error> {
    use crate::schema::{events, rsvps};
    diesel::delete(rsvps::table.filter(rsvps::user_id.eq(person)))
        .execute(conn)
        .await?;
    diesel::delete(events::table.filter(events::organizer_id.eq(person)))
        .returning(events::id)
        .get_results(conn)
        .await
}
