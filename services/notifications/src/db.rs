//! The notifications service's queries, one function per query (and one transaction per
//! notice applied).
//!
//! Every change a recipient's open streams must hear of ends with `pg_notify` on
//! [`CHANNEL`] naming the recipient: PostgreSQL delivers it at commit to every replica
//! listening, and each replica reads what its own streams of that recipient have not
//! seen yet (see `streams`).

use crate::model::Notification;
use agora_common::notices::{Actor, Cause, NoticeKind, Subject, SubjectType};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::result::Error;
use diesel::sql_types::{
    Array, BigInt, Bool, Bytea, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid,
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

/// The channel changes are announced on (the payload is the recipient's id).
pub const CHANNEL: &str = "agora_notifications";

/// A notification as stored, with its newest actors and their number.
const ITEM: &str = "SELECT n.id, n.kind, n.subject_type, n.subject_id, n.post_id, n.photo_id, \
    n.created_at, n.updated_at, n.read_at IS NOT NULL AS read, \
    COALESCE(a.actors, '[]'::jsonb) AS actors, COALESCE(a.actors_count, 0) AS actors_count \
    FROM notifications n LEFT JOIN LATERAL ( \
      SELECT jsonb_agg(jsonb_build_object('id', p.actor_id, 'username', p.actor_username) \
               ORDER BY p.at DESC, p.actor_id) FILTER (WHERE p.rank <= 3) AS actors, \
             count(*) AS actors_count \
      FROM (SELECT d.*, row_number() OVER (ORDER BY d.at DESC, d.actor_id) AS rank \
            FROM (SELECT actor_id, max(actor_username) AS actor_username, max(at) AS at \
                  FROM notification_causes c WHERE c.notification_id = n.id \
                  GROUP BY actor_id) d) p \
    ) a ON true";

#[derive(Debug, QueryableByName)]
struct ItemRow {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = Text)]
    subject_type: String,
    #[diesel(sql_type = SqlUuid)]
    subject_id: Uuid,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    post_id: Option<Uuid>,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    photo_id: Option<Uuid>,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    updated_at: DateTime<Utc>,
    #[diesel(sql_type = Bool)]
    read: bool,
    #[diesel(sql_type = Jsonb)]
    actors: serde_json::Value,
    #[diesel(sql_type = BigInt)]
    actors_count: i64,
}

impl ItemRow {
    /// The API view; rows this service wrote always have a known kind and type.
    fn view(self) -> Option<Notification> {
        Some(Notification {
            id: self.id,
            kind: NoticeKind::parse(&self.kind)?,
            actors: serde_json::from_value::<Vec<Actor>>(self.actors).ok()?,
            actors_count: self.actors_count,
            subject: Subject {
                kind: SubjectType::parse(&self.subject_type)?,
                id: self.subject_id,
                post_id: self.post_id,
                photo_id: self.photo_id,
            },
            created_at: self.created_at,
            updated_at: self.updated_at,
            read: self.read,
        })
    }
}

/// What a list page asks for.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// Unread ones only.
    pub unread: bool,
    /// These kinds only (none: every kind).
    pub kinds: Vec<NoticeKind>,
}

/// A recipient's notifications older than `after` (their ids are time-ordered), newest
/// first, at most `limit` of them.
pub async fn page(
    conn: &mut AsyncPgConnection,
    recipient: Uuid,
    filter: &ListFilter,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<Notification>, Error> {
    let kinds: Vec<&str> = filter.kinds.iter().map(|k| k.as_str()).collect();
    let sql = format!(
        "{ITEM} WHERE n.recipient = $1 AND ($2::uuid IS NULL OR n.id < $2) \
         AND (NOT $3 OR n.read_at IS NULL) AND (cardinality($4::text[]) = 0 OR n.kind = ANY($4)) \
         ORDER BY n.id DESC LIMIT $5"
    );
    let rows: Vec<ItemRow> = diesel::sql_query(sql)
        .bind::<SqlUuid, _>(recipient)
        .bind::<Nullable<SqlUuid>, _>(after)
        .bind::<Bool, _>(filter.unread)
        .bind::<Array<Text>, _>(kinds)
        .bind::<BigInt, _>(limit)
        .load(conn)
        .await?;
    Ok(rows.into_iter().filter_map(ItemRow::view).collect())
}

async fn item(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Option<Notification>, Error> {
    let row: Option<ItemRow> = diesel::sql_query(format!("{ITEM} WHERE n.id = $1"))
        .bind::<SqlUuid, _>(id)
        .get_result(conn)
        .await
        .optional()?;
    Ok(row.and_then(ItemRow::view))
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    count: i64,
}

/// How many of a recipient's notifications are unread.
pub async fn unread_count(conn: &mut AsyncPgConnection, recipient: Uuid) -> Result<i64, Error> {
    diesel::sql_query(
        "SELECT count(*) AS count FROM notifications WHERE recipient = $1 AND read_at IS NULL",
    )
    .bind::<SqlUuid, _>(recipient)
    .get_result::<Count>(conn)
    .await
    .map(|c| c.count)
}

/// Marks `up_to` and every older notification of the recipient read; `false` when
/// `up_to` is not one of theirs.
pub async fn mark_read_up_to(
    conn: &mut AsyncPgConnection,
    recipient: Uuid,
    up_to: Uuid,
) -> Result<bool, Error> {
    conn.transaction::<_, Error, _>(async |conn| {
        let mine = diesel::sql_query(
            "SELECT count(*) AS count FROM notifications WHERE id = $1 AND recipient = $2",
        )
        .bind::<SqlUuid, _>(up_to)
        .bind::<SqlUuid, _>(recipient)
        .get_result::<Count>(conn)
        .await?;
        if mine.count == 0 {
            return Ok(false);
        }
        diesel::sql_query(
            "UPDATE notifications SET read_at = now() \
             WHERE recipient = $1 AND id <= $2 AND read_at IS NULL",
        )
        .bind::<SqlUuid, _>(recipient)
        .bind::<SqlUuid, _>(up_to)
        .execute(conn)
        .await?;
        announce(conn, recipient).await?;
        Ok(true)
    })
    .await
}

/// Marks these of the recipient's notifications read (others' ids change nothing).
pub async fn mark_read(
    conn: &mut AsyncPgConnection,
    recipient: Uuid,
    ids: &[Uuid],
) -> Result<(), Error> {
    conn.transaction::<_, Error, _>(async |conn| {
        let changed = diesel::sql_query(
            "UPDATE notifications SET read_at = now() \
             WHERE recipient = $1 AND id = ANY($2) AND read_at IS NULL",
        )
        .bind::<SqlUuid, _>(recipient)
        .bind::<Array<SqlUuid>, _>(ids)
        .execute(conn)
        .await?;
        if changed > 0 {
            announce(conn, recipient).await?;
        }
        Ok(())
    })
    .await
}

#[derive(QueryableByName)]
struct Muted {
    #[diesel(sql_type = Array<Text>)]
    muted_kinds: Vec<String>,
}

/// The kinds a user muted.
pub async fn muted_kinds(
    conn: &mut AsyncPgConnection,
    user: Uuid,
) -> Result<Vec<NoticeKind>, Error> {
    let row: Option<Muted> =
        diesel::sql_query("SELECT muted_kinds FROM preferences WHERE user_id = $1")
            .bind::<SqlUuid, _>(user)
            .get_result(conn)
            .await
            .optional()?;
    Ok(row
        .map(|r| r.muted_kinds)
        .unwrap_or_default()
        .iter()
        .filter_map(|k| NoticeKind::parse(k))
        .collect())
}

/// Replaces the kinds a user muted.
pub async fn set_muted_kinds(
    conn: &mut AsyncPgConnection,
    user: Uuid,
    kinds: &[NoticeKind],
) -> Result<(), Error> {
    let kinds: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
    diesel::sql_query(
        "INSERT INTO preferences (user_id, muted_kinds) VALUES ($1, $2) \
         ON CONFLICT (user_id) DO UPDATE SET muted_kinds = EXCLUDED.muted_kinds",
    )
    .bind::<SqlUuid, _>(user)
    .bind::<Array<Text>, _>(kinds)
    .execute(conn)
    .await
    .map(drop)
}

/// Tells every replica's streams of `recipient` that something changed (at commit).
async fn announce(conn: &mut AsyncPgConnection, recipient: Uuid) -> Result<(), Error> {
    diesel::sql_query("SELECT pg_notify($1, $2::text)")
        .bind::<Text, _>(CHANNEL)
        .bind::<Text, _>(recipient.to_string())
        .execute(conn)
        .await
        .map(drop)
}

/// Serialises the changes to one recipient's notifications until the transaction ends,
/// so their stream events commit in the order of their ids.
async fn lock_recipient(conn: &mut AsyncPgConnection, recipient: Uuid) -> Result<(), Error> {
    diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended('notifications:' || $1, 0))")
        .bind::<Text, _>(recipient.to_string())
        .execute(conn)
        .await
        .map(drop)
}

/// What recording a notice on its cause found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Recorded {
    /// A later (or the same) notice was recorded already: this one changes nothing.
    Stale,
    /// Recorded; the cause was active before it (or not).
    Newer { was_active: bool },
}

/// Records `notice` as the latest on its cause (under the recipient's lock), in one
/// round trip: the write happens only when the notice is newer than the one recorded.
async fn record_cause(
    conn: &mut AsyncPgConnection,
    key: &str,
    notice: Uuid,
    active: bool,
) -> Result<Recorded, Error> {
    #[derive(QueryableByName)]
    struct Outcome {
        #[diesel(sql_type = Bool)]
        written: bool,
        #[diesel(sql_type = Bool)]
        was_active: bool,
    }
    let outcome: Outcome = diesel::sql_query(
        "WITH before AS (SELECT active FROM causes WHERE cause_key = $1), \
         written AS ( \
           INSERT INTO causes (cause_key, notice_id, active) VALUES ($1, $2, $3) \
           ON CONFLICT (cause_key) DO UPDATE SET notice_id = EXCLUDED.notice_id, \
             active = EXCLUDED.active, at = now() \
           WHERE causes.notice_id < EXCLUDED.notice_id \
           RETURNING 1) \
         SELECT EXISTS (SELECT 1 FROM written) AS written, \
                COALESCE((SELECT active FROM before), false) AS was_active",
    )
    .bind::<Text, _>(key)
    .bind::<SqlUuid, _>(notice)
    .bind::<Bool, _>(active)
    .get_result(conn)
    .await?;
    Ok(if outcome.written {
        Recorded::Newer {
            was_active: outcome.was_active,
        }
    } else {
        Recorded::Stale
    })
}

/// Adds a stream event with the notification as it is now.
async fn add_stream_event(
    conn: &mut AsyncPgConnection,
    recipient: Uuid,
    id: Uuid,
) -> Result<(), Error> {
    let Some(item) = item(conn, id).await? else {
        return Ok(());
    };
    let item = serde_json::to_value(&item).map_err(|e| Error::SerializationError(Box::new(e)))?;
    diesel::sql_query("INSERT INTO stream_events (recipient, item) VALUES ($1, $2)")
        .bind::<SqlUuid, _>(recipient)
        .bind::<Jsonb, _>(item)
        .execute(conn)
        .await
        .map(drop)
}

/// The group a cause joins: reactions on one post are one notification; every other
/// cause is its own.
fn group_key(cause: &Cause) -> String {
    match cause.kind {
        NoticeKind::Reaction => format!("reaction:{}", cause.subject.id),
        _ => cause.key(),
    }
}

/// What applying a notice did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// A notification was made or grew.
    Notified,
    /// A notification shrank or left.
    Withdrawn,
    /// Nothing changed (an old or repeated notice, a muted kind, a deleted subject, a
    /// block).
    Nothing,
}

/// Applies a cause made. `blocked`: the two block each other (one way or both), as the
/// relations service said just before.
pub async fn apply_made(
    conn: &mut AsyncPgConnection,
    notice: Uuid,
    cause: &Cause,
    blocked: bool,
) -> Result<Applied, Error> {
    conn.transaction::<_, Error, _>(async |conn| {
        lock_recipient(conn, cause.recipient).await?;
        // An old or repeated notice changes nothing. A newer one is news even when the
        // cause looks active: producers tell only of a cause that started, so its undo
        // is on its way (deliveries run concurrently) and will find itself older.
        // Between people blocked either way the cause counts as undone, so the same
        // action after an unblock notifies again.
        let recorded = record_cause(conn, &cause.key(), notice, !blocked).await?;
        if blocked || recorded == Recorded::Stale {
            return Ok(Applied::Nothing);
        }
        // An erased account is a tombstone too: a late notice from or to it makes
        // nothing.
        let subjects: Vec<Uuid> = [
            Some(cause.subject.id),
            cause.subject.post_id,
            Some(cause.recipient),
            Some(cause.actor.id),
        ]
        .into_iter()
        .flatten()
        .collect();
        // Its subject or a person deleted meanwhile, or its kind muted: nothing to show.
        let withheld = diesel::sql_query(
            "SELECT (SELECT count(*) FROM tombstones WHERE subject_id = ANY($1)) \
                  + (SELECT count(*) FROM preferences WHERE user_id = $2 AND $3 = ANY(muted_kinds)) \
                  AS count",
        )
        .bind::<Array<SqlUuid>, _>(&subjects)
        .bind::<SqlUuid, _>(cause.recipient)
        .bind::<Text, _>(cause.kind.as_str())
        .get_result::<Count>(conn)
        .await?;
        if withheld.count > 0 {
            return Ok(Applied::Nothing);
        }
        #[derive(QueryableByName)]
        struct Made {
            #[diesel(sql_type = SqlUuid)]
            id: Uuid,
        }
        // A group that exists keeps its id and place; a new actor makes it unread again.
        let made: Made = diesel::sql_query(
            "INSERT INTO notifications \
               (id, recipient, kind, group_key, subject_type, subject_id, post_id, photo_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (recipient, group_key) DO UPDATE SET updated_at = now(), read_at = NULL \
             RETURNING id",
        )
        .bind::<SqlUuid, _>(Uuid::now_v7())
        .bind::<SqlUuid, _>(cause.recipient)
        .bind::<Text, _>(cause.kind.as_str())
        .bind::<Text, _>(group_key(cause))
        .bind::<Text, _>(cause.subject.kind.as_str())
        .bind::<SqlUuid, _>(cause.subject.id)
        .bind::<Nullable<SqlUuid>, _>(cause.subject.post_id)
        .bind::<Nullable<SqlUuid>, _>(cause.subject.photo_id)
        .get_result(conn)
        .await?;
        diesel::sql_query(
            "INSERT INTO notification_causes (notification_id, cause_key, actor_id, actor_username) \
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind::<SqlUuid, _>(made.id)
        .bind::<Text, _>(cause.key())
        .bind::<SqlUuid, _>(cause.actor.id)
        .bind::<Text, _>(&cause.actor.username)
        .execute(conn)
        .await?;
        add_stream_event(conn, cause.recipient, made.id).await?;
        announce(conn, cause.recipient).await?;
        Ok(Applied::Notified)
    })
    .await
}

/// Applies a cause undone: it leaves its notification, which leaves the list when no
/// cause is left.
pub async fn apply_undone(
    conn: &mut AsyncPgConnection,
    notice: Uuid,
    cause: &Cause,
) -> Result<Applied, Error> {
    conn.transaction::<_, Error, _>(async |conn| {
        lock_recipient(conn, cause.recipient).await?;
        if record_cause(conn, &cause.key(), notice, false).await? == Recorded::Stale {
            return Ok(Applied::Nothing);
        }
        #[derive(QueryableByName)]
        struct Left {
            #[diesel(sql_type = SqlUuid)]
            notification_id: Uuid,
        }
        let left: Option<Left> = diesel::sql_query(
            "DELETE FROM notification_causes c USING notifications n \
             WHERE c.notification_id = n.id AND n.recipient = $1 AND n.group_key = $2 \
               AND c.cause_key = $3 \
             RETURNING c.notification_id",
        )
        .bind::<SqlUuid, _>(cause.recipient)
        .bind::<Text, _>(group_key(cause))
        .bind::<Text, _>(cause.key())
        .get_result(conn)
        .await
        .optional()?;
        let Some(left) = left else {
            return Ok(Applied::Nothing);
        };
        let emptied = diesel::sql_query(
            "DELETE FROM notifications n WHERE n.id = $1 \
             AND NOT EXISTS (SELECT 1 FROM notification_causes c WHERE c.notification_id = n.id)",
        )
        .bind::<SqlUuid, _>(left.notification_id)
        .execute(conn)
        .await?;
        if emptied == 0 {
            // Fewer actors: open streams get it as it is now (still read or unread).
            add_stream_event(conn, cause.recipient, left.notification_id).await?;
        }
        announce(conn, cause.recipient).await?;
        Ok(Applied::Withdrawn)
    })
    .await
}

#[derive(QueryableByName)]
struct Recipient {
    #[diesel(sql_type = SqlUuid)]
    recipient: Uuid,
}

/// A subject gone for good: its notifications (and those about its comments and
/// reactions, for a post) leave, and later causes about it make nothing.
pub async fn apply_gone(conn: &mut AsyncPgConnection, subject: Uuid) -> Result<Applied, Error> {
    conn.transaction::<_, Error, _>(async |conn| {
        diesel::sql_query("INSERT INTO tombstones (subject_id) VALUES ($1) ON CONFLICT DO NOTHING")
            .bind::<SqlUuid, _>(subject)
            .execute(conn)
            .await?;
        let touched: Vec<Recipient> = diesel::sql_query(
            "DELETE FROM notifications WHERE subject_id = $1 OR post_id = $1 RETURNING recipient",
        )
        .bind::<SqlUuid, _>(subject)
        .load(conn)
        .await?;
        finish_removal(conn, touched).await
    })
    .await
}

/// `by` blocked `of`: what each has from the other leaves (grouped notifications lose
/// that actor, and leave when no one is left).
pub async fn apply_blocked(
    conn: &mut AsyncPgConnection,
    by: Uuid,
    of: Uuid,
) -> Result<Applied, Error> {
    conn.transaction::<_, Error, _>(async |conn| {
        let touched: Vec<Recipient> = diesel::sql_query(
            "DELETE FROM notification_causes c USING notifications n \
             WHERE c.notification_id = n.id \
               AND ((n.recipient = $1 AND c.actor_id = $2) OR (n.recipient = $2 AND c.actor_id = $1)) \
             RETURNING n.recipient",
        )
        .bind::<SqlUuid, _>(by)
        .bind::<SqlUuid, _>(of)
        .load(conn)
        .await?;
        diesel::sql_query(
            "DELETE FROM notifications n WHERE n.recipient = ANY($1) \
             AND NOT EXISTS (SELECT 1 FROM notification_causes c WHERE c.notification_id = n.id)",
        )
        .bind::<Array<SqlUuid>, _>(vec![by, of])
        .execute(conn)
        .await?;
        // Blocking ended what was between them (follows, likes, requests): their
        // causes count as undone. Keys are `kind:recipient:actor:…`.
        diesel::sql_query(
            "UPDATE causes SET active = false, at = now() WHERE active \
             AND (cause_key LIKE '%:' || $1 || ':' || $2 || ':%' \
               OR cause_key LIKE '%:' || $2 || ':' || $1 || ':%')",
        )
        .bind::<Text, _>(by.to_string())
        .bind::<Text, _>(of.to_string())
        .execute(conn)
        .await?;
        finish_removal(conn, touched).await
    })
    .await
}

/// Erases everything of `person`: the notifications they received, their part in
/// others' (grouped ones lose them, and leave when no one is left), what is recorded of
/// their causes, their preferences and stream history. Their id becomes a tombstone, so
/// a notice from or to them delivered late makes nothing. Idempotent.
pub async fn erase_person(conn: &mut AsyncPgConnection, person: Uuid) -> Result<Applied, Error> {
    conn.transaction::<_, Error, _>(async |conn| {
        lock_recipient(conn, person).await?;
        diesel::sql_query("INSERT INTO tombstones (subject_id) VALUES ($1) ON CONFLICT DO NOTHING")
            .bind::<SqlUuid, _>(person)
            .execute(conn)
            .await?;
        let touched: Vec<Recipient> = diesel::sql_query(
            "DELETE FROM notification_causes c USING notifications n \
             WHERE c.notification_id = n.id AND c.actor_id = $1 AND n.recipient <> $1 \
             RETURNING n.recipient",
        )
        .bind::<SqlUuid, _>(person)
        .load(conn)
        .await?;
        let others: Vec<Uuid> = touched.iter().map(|r| r.recipient).collect();
        diesel::sql_query(
            "DELETE FROM notifications n WHERE n.recipient = ANY($1) \
             AND NOT EXISTS (SELECT 1 FROM notification_causes c WHERE c.notification_id = n.id)",
        )
        .bind::<Array<SqlUuid>, _>(&others)
        .execute(conn)
        .await?;
        // Cause keys are `kind:recipient:actor:…`.
        for sql in [
            "DELETE FROM notifications WHERE recipient = $1",
            "DELETE FROM causes WHERE cause_key LIKE '%:' || $1::text || ':%'",
            "DELETE FROM preferences WHERE user_id = $1",
            "DELETE FROM stream_events WHERE recipient = $1",
            "DELETE FROM stream_tickets WHERE user_id = $1",
        ] {
            diesel::sql_query(sql)
                .bind::<SqlUuid, _>(person)
                .execute(conn)
                .await?;
        }
        finish_removal(conn, touched).await
    })
    .await
}

async fn finish_removal(
    conn: &mut AsyncPgConnection,
    touched: Vec<Recipient>,
) -> Result<Applied, Error> {
    let mut recipients: Vec<Uuid> = touched.into_iter().map(|r| r.recipient).collect();
    recipients.sort();
    recipients.dedup();
    for recipient in &recipients {
        announce(conn, *recipient).await?;
    }
    Ok(if recipients.is_empty() {
        Applied::Nothing
    } else {
        Applied::Withdrawn
    })
}

/// A stream event: its id and the notification it carries.
#[derive(Debug, Clone, QueryableByName)]
pub struct StreamEvent {
    #[diesel(sql_type = BigInt)]
    pub seq: i64,
    #[diesel(sql_type = Jsonb)]
    pub item: serde_json::Value,
}

/// A recipient's stream events after `after`, oldest first, at most `limit`.
pub async fn stream_events_after(
    conn: &mut AsyncPgConnection,
    recipient: Uuid,
    after: i64,
    limit: i64,
) -> Result<Vec<StreamEvent>, Error> {
    diesel::sql_query(
        "SELECT seq, item FROM stream_events WHERE recipient = $1 AND seq > $2 \
         ORDER BY seq LIMIT $3",
    )
    .bind::<SqlUuid, _>(recipient)
    .bind::<BigInt, _>(after)
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await
}

#[derive(QueryableByName)]
struct Seq {
    #[diesel(sql_type = Nullable<BigInt>)]
    seq: Option<i64>,
}

/// The id of a recipient's latest stream event (0 when none).
pub async fn last_stream_event(
    conn: &mut AsyncPgConnection,
    recipient: Uuid,
) -> Result<i64, Error> {
    diesel::sql_query("SELECT max(seq) AS seq FROM stream_events WHERE recipient = $1")
        .bind::<SqlUuid, _>(recipient)
        .get_result::<Seq>(conn)
        .await
        .map(|s| s.seq.unwrap_or(0))
}

/// Whether `seq` is one of the recipient's stream events (still kept).
pub async fn is_stream_event(
    conn: &mut AsyncPgConnection,
    recipient: Uuid,
    seq: i64,
) -> Result<bool, Error> {
    diesel::sql_query(
        "SELECT count(*) AS count FROM stream_events WHERE recipient = $1 AND seq = $2",
    )
    .bind::<SqlUuid, _>(recipient)
    .bind::<BigInt, _>(seq)
    .get_result::<Count>(conn)
    .await
    .map(|c| c.count > 0)
}

/// Stores a ticket's hash for `user` until `expires_at`.
pub async fn add_ticket(
    conn: &mut AsyncPgConnection,
    hash: &[u8],
    user: Uuid,
    expires_at: DateTime<Utc>,
) -> Result<(), Error> {
    diesel::sql_query("INSERT INTO stream_tickets (hash, user_id, expires_at) VALUES ($1, $2, $3)")
        .bind::<Bytea, _>(hash)
        .bind::<SqlUuid, _>(user)
        .bind::<Timestamptz, _>(expires_at)
        .execute(conn)
        .await
        .map(drop)
}

#[derive(QueryableByName)]
struct TicketUse {
    #[diesel(sql_type = SqlUuid)]
    user_id: Uuid,
    #[diesel(sql_type = Bool)]
    valid: bool,
}

/// Uses up a ticket: whose it was, if it existed and had not expired.
pub async fn take_ticket(conn: &mut AsyncPgConnection, hash: &[u8]) -> Result<Option<Uuid>, Error> {
    let used: Option<TicketUse> = diesel::sql_query(
        "DELETE FROM stream_tickets WHERE hash = $1 RETURNING user_id, expires_at > now() AS valid",
    )
    .bind::<Bytea, _>(hash)
    .get_result(conn)
    .await
    .optional()?;
    Ok(used.filter(|t| t.valid).map(|t| t.user_id))
}

/// Registers an open stream of `user` unless they have `limit` open already (on any
/// replica); `false` when over the limit.
pub async fn open_stream(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    user: Uuid,
    limit: i64,
    stale_after_secs: i64,
) -> Result<bool, Error> {
    conn.transaction::<_, Error, _>(async |conn| {
        diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended('streams:' || $1, 0))")
            .bind::<Text, _>(user.to_string())
            .execute(conn)
            .await?;
        let open = diesel::sql_query(
            "SELECT count(*) AS count FROM open_streams WHERE user_id = $1 \
             AND seen_at > now() - $2 * interval '1 second'",
        )
        .bind::<SqlUuid, _>(user)
        .bind::<BigInt, _>(stale_after_secs)
        .get_result::<Count>(conn)
        .await?;
        if open.count >= limit {
            return Ok(false);
        }
        diesel::sql_query("INSERT INTO open_streams (id, user_id) VALUES ($1, $2)")
            .bind::<SqlUuid, _>(id)
            .bind::<SqlUuid, _>(user)
            .execute(conn)
            .await?;
        Ok(true)
    })
    .await
}

/// Forgets closed streams.
pub async fn close_streams(conn: &mut AsyncPgConnection, ids: &[Uuid]) -> Result<(), Error> {
    diesel::sql_query("DELETE FROM open_streams WHERE id = ANY($1)")
        .bind::<Array<SqlUuid>, _>(ids)
        .execute(conn)
        .await
        .map(drop)
}

/// Keeps this replica's open streams counted, and forgets what is stale: streams of a
/// replica that died, expired tickets, stream events older than a day, undo records
/// older than a week (an undo that old has long met its fact).
pub async fn housekeeping(
    conn: &mut AsyncPgConnection,
    open: &[Uuid],
    stale_after_secs: i64,
) -> Result<(), Error> {
    diesel::sql_query("UPDATE open_streams SET seen_at = now() WHERE id = ANY($1)")
        .bind::<Array<SqlUuid>, _>(open)
        .execute(conn)
        .await?;
    diesel::sql_query("DELETE FROM open_streams WHERE seen_at < now() - $1 * interval '1 second'")
        .bind::<BigInt, _>(stale_after_secs)
        .execute(conn)
        .await?;
    diesel::sql_query("DELETE FROM stream_tickets WHERE expires_at < now()")
        .execute(conn)
        .await?;
    diesel::sql_query("DELETE FROM stream_events WHERE created_at < now() - interval '1 day'")
        .execute(conn)
        .await?;
    diesel::sql_query("DELETE FROM causes WHERE NOT active AND at < now() - interval '7 days'")
        .execute(conn)
        .await
        .map(drop)
}
