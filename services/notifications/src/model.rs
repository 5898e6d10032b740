//! Request and response bodies of the notifications API, and their validation.

use agora_common::notices::{Actor, NoticeKind, Subject};
use agora_common::{ApiError, FieldError};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// The most ids one `read` call takes.
pub const MAX_READ_IDS: usize = 100;
/// The most actors an item names (the newest).
pub const SHOWN_ACTORS: i64 = 3;

/// One notification, as the list and the stream show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Notification {
    pub id: Uuid,
    pub kind: NoticeKind,
    /// Who caused it, newest first (at most 3).
    pub actors: Vec<Actor>,
    /// How many people caused it.
    pub actors_count: i64,
    pub subject: Subject,
    pub created_at: DateTime<Utc>,
    /// When it last changed (a new actor of a grouped notification).
    pub updated_at: DateTime<Utc>,
    pub read: bool,
}

/// A page of notifications, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationPage {
    pub items: Vec<Notification>,
    /// The next page's cursor; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// `GET /notifications/unread-count`, and the stream's `unread` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UnreadCount {
    pub unread: i64,
}

/// `POST /notifications/read`: exactly one of `up_to` and `ids`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum ReadRequest {
    UpTo(ReadUpTo),
    Ids(ReadIds),
}

/// Marks one notification and every older one read.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadUpTo {
    /// One of the caller's notifications.
    pub up_to: Uuid,
}

/// Marks these notifications read.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadIds {
    /// At most 100; ids that are not the caller's are ignored.
    #[schema(max_items = 100)]
    pub ids: Vec<Uuid>,
}

/// What a valid [`ReadRequest`] marks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadMarks {
    /// One notification and everything older.
    UpTo(Uuid),
    /// These ones.
    Ids(Vec<Uuid>),
}

impl ReadRequest {
    /// At most [`MAX_READ_IDS`] ids.
    pub fn marks(self) -> Result<ReadMarks, ApiError> {
        match self {
            Self::UpTo(r) => Ok(ReadMarks::UpTo(r.up_to)),
            Self::Ids(r) if r.ids.len() > MAX_READ_IDS => {
                Err(ApiError::invalid_field("ids", "at most 100 ids at a time"))
            }
            Self::Ids(r) => Ok(ReadMarks::Ids(r.ids)),
        }
    }
}

/// `GET`/`PUT /notifications/preferences`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Preferences {
    /// Kinds never made for the caller (notifications already made stay).
    #[schema(max_items = 9)]
    pub muted_kinds: Vec<NoticeKind>,
}

impl Preferences {
    /// Each kind once, in the contract's order; at most one entry per kind given.
    pub fn normalized(mut self) -> Result<Self, ApiError> {
        if self.muted_kinds.len() > NoticeKind::ALL.len() {
            return Err(ApiError::Validation(vec![FieldError::new(
                "muted_kinds",
                "at most 9 kinds",
            )]));
        }
        self.muted_kinds.sort();
        self.muted_kinds.dedup();
        Ok(self)
    }
}

/// `POST /notifications/stream-tickets`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StreamTicket {
    /// Opens one stream (`GET /notifications/stream?ticket=…`), once.
    pub ticket: String,
    /// Seconds it stays valid.
    pub expires_in: u64,
}

/// The `kind` filters of a list query (the parameter may repeat).
pub fn parse_kinds(values: &[String]) -> Result<Vec<NoticeKind>, ApiError> {
    let mut kinds = Vec::with_capacity(values.len());
    for value in values {
        match NoticeKind::parse(value) {
            Some(kind) => kinds.push(kind),
            None => {
                return Err(ApiError::invalid_field(
                    "kind",
                    "unknown kind: one of follow, friend_request, friend_accepted, match, \
                     comment, reply, reaction, event_rsvp, photo_reused",
                ));
            }
        }
    }
    kinds.sort();
    kinds.dedup();
    Ok(kinds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_request_names_exactly_one_target() {
        let id = Uuid::now_v7();
        let read = |json: serde_json::Value| {
            serde_json::from_value::<ReadRequest>(json)
                .map_err(|e| e.to_string())
                .and_then(|r| r.marks().map_err(|e| e.to_string()))
        };
        assert_eq!(
            read(serde_json::json!({"up_to": id})),
            Ok(ReadMarks::UpTo(id))
        );
        assert_eq!(
            read(serde_json::json!({"ids": [id]})),
            Ok(ReadMarks::Ids(vec![id]))
        );
        assert!(read(serde_json::json!({})).is_err());
        assert!(read(serde_json::json!({"up_to": id, "ids": []})).is_err());
        let many: Vec<Uuid> = (0..101).map(|_| Uuid::now_v7()).collect();
        assert!(read(serde_json::json!({ "ids": many })).is_err());
        assert!(read(serde_json::json!({"ids": [], "extra": 1})).is_err());
    }

    #[test]
    fn kinds_are_checked_and_deduplicated() {
        let kinds = parse_kinds(&["reply".into(), "follow".into(), "reply".into()]).unwrap();
        assert_eq!(kinds, vec![NoticeKind::Follow, NoticeKind::Reply]);
        assert!(parse_kinds(&["poke".into()]).is_err());
    }
}
