//! What the notifications service is told: the facts other services record that
//! someone should hear about (a follow, a comment, a reaction …), their undoing, and
//! the deletions and blocks that take notifications away.
//!
//! A producer calls [`Notifier::tell`] in the transaction of the change, so the notice
//! exists if and only if the change was committed (the kit's outbox), then
//! [`Notifier::deliver`] after the commit: the delivery runs in the background, never on
//! the producing request's path, and what fails is retried by the runner. Delivery is at
//! least once and in no particular order; the notifications service makes that safe:
//! each notice carries a time-ordered id, and for one cause the newest notice wins.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What a notification is about (the contract's `kind`).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    /// Someone follows the recipient.
    Follow,
    /// A friend request to the recipient.
    FriendRequest,
    /// The recipient's friend request was accepted.
    FriendAccepted,
    /// A mutual like.
    Match,
    /// A comment on the recipient's post.
    Comment,
    /// A reply to the recipient's comment.
    Reply,
    /// Reactions on the recipient's post (grouped per post).
    Reaction,
    /// Someone answered `going` or `interested` to the recipient's event.
    EventRsvp,
    /// Someone's post shows the recipient's public photo.
    PhotoReused,
}

impl NoticeKind {
    /// Every kind, in the contract's order.
    pub const ALL: [Self; 9] = [
        Self::Follow,
        Self::FriendRequest,
        Self::FriendAccepted,
        Self::Match,
        Self::Comment,
        Self::Reply,
        Self::Reaction,
        Self::EventRsvp,
        Self::PhotoReused,
    ];

    /// The wire name (`follow`, `friend_request`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Follow => "follow",
            Self::FriendRequest => "friend_request",
            Self::FriendAccepted => "friend_accepted",
            Self::Match => "match",
            Self::Comment => "comment",
            Self::Reply => "reply",
            Self::Reaction => "reaction",
            Self::EventRsvp => "event_rsvp",
            Self::PhotoReused => "photo_reused",
        }
    }

    /// The kind a wire name stands for.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// What kind of thing a notification's subject is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SubjectType {
    /// A person (a follower, a new friend, a match).
    User,
    /// A post (reactions, a reuse of a photo).
    Post,
    /// A comment or a reply.
    Comment,
    /// A friend request.
    FriendRequest,
    /// An event.
    Event,
}

impl SubjectType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Post => "post",
            Self::Comment => "comment",
            Self::FriendRequest => "friend_request",
            Self::Event => "event",
        }
    }

    /// The type a wire name stands for.
    pub fn parse(name: &str) -> Option<Self> {
        [
            Self::User,
            Self::Post,
            Self::Comment,
            Self::FriendRequest,
            Self::Event,
        ]
        .into_iter()
        .find(|t| t.as_str() == name)
    }
}

/// What a notification leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Subject {
    /// Its type.
    #[serde(rename = "type")]
    pub kind: SubjectType,
    /// Its id.
    pub id: Uuid,
    /// The post a comment is on (comments and replies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_id: Option<Uuid>,
    /// The photo a post reuses (`photo_reused`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub photo_id: Option<Uuid>,
}

impl Subject {
    /// A subject with no post or photo beside it.
    pub fn of(kind: SubjectType, id: Uuid) -> Self {
        Self {
            kind,
            id,
            post_id: None,
            photo_id: None,
        }
    }
}

/// Who did it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Actor {
    /// Their id.
    pub id: Uuid,
    /// Their username (immutable, so a late delivery still names them right).
    pub username: String,
}

/// One cause of a notification: who did what to which subject, for whom. Its key is
/// what a later undo names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Cause {
    /// The kind of notification it makes.
    pub kind: NoticeKind,
    /// Who hears of it.
    pub recipient: Uuid,
    /// Who did it.
    pub actor: Actor,
    /// What it is about.
    pub subject: Subject,
    /// What tells two causes of one actor on one subject apart (a reaction's emoji).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Cause {
    /// `actor`'s cause of `kind` for `recipient` about `subject` (no detail).
    pub fn new(kind: NoticeKind, recipient: Uuid, actor: &Actor, subject: Subject) -> Self {
        Self {
            kind,
            recipient,
            actor: actor.clone(),
            subject,
            detail: None,
        }
    }

    /// The same cause with the actor and recipient swapped (the subject being the
    /// actor, as for a match or a friendship): what to undo when either may have been
    /// the one notified.
    pub fn reversed(&self) -> Self {
        let actor = Actor {
            id: self.recipient,
            username: String::new(),
        };
        Self {
            kind: self.kind,
            recipient: self.actor.id,
            subject: Subject::of(self.subject.kind, actor.id),
            actor,
            detail: self.detail.clone(),
        }
    }

    /// The key of this cause: one per recipient, kind, actor, subject and detail.
    pub fn key(&self) -> String {
        format!(
            "{}:{}:{}:{}:{}",
            self.kind.as_str(),
            self.recipient,
            self.actor.id,
            self.subject.id,
            self.detail.as_deref().unwrap_or_default()
        )
    }
}

/// A notice, as delivered to `POST /internal/notices`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Notice {
    /// The notice's id (UUIDv7, made in the producing transaction): deliveries of one
    /// notice are recognised by it, and of two notices on one cause the later wins.
    pub id: Uuid,
    /// What happened.
    #[serde(flatten)]
    pub change: Change,
}

/// What a notice says happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Change {
    /// A cause happened (a follow, a comment …).
    Made {
        /// The cause.
        cause: Cause,
    },
    /// A cause was undone (unfollow, reaction withdrawn, request cancelled …).
    Undone {
        /// The cause, as it was made.
        cause: Cause,
    },
    /// A post, comment, event or friend request is gone for good: every notification
    /// about it leaves, and no later-arriving cause about it makes one.
    Gone {
        /// The subject's id (a post's also covers its comments and reactions).
        subject: Uuid,
    },
    /// One of the two blocked the other: the notifications either has from the other
    /// leave.
    Blocked {
        /// The blocker.
        by: Uuid,
        /// The blocked person.
        of: Uuid,
    },
}

/// The notification stream: public at the edge (a browser's `EventSource` cannot send
/// an `Authorization` header, so it may come with a ticket the service checks).
pub const STREAM_PATH: &str = "/api/v1/notifications/stream";

/// Whether `method path` opens the notification stream (a query string is ignored):
/// the edge lets it through without identity, the service decides.
pub fn is_stream(method: &actix_web::http::Method, path: &str) -> bool {
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    (method == actix_web::http::Method::GET || method == actix_web::http::Method::HEAD)
        && path == STREAM_PATH
}

impl Change {
    /// A cause whose actor is its recipient: one's own actions notify nobody.
    pub fn is_own(&self) -> bool {
        match self {
            Self::Made { cause } | Self::Undone { cause } => cause.recipient == cause.actor.id,
            Self::Gone { .. } | Self::Blocked { .. } => false,
        }
    }
}

/// The internal route notices are delivered to.
pub const NOTICES_PATH: &str = "/internal/notices";

/// The job kind of notice deliveries.
pub const NOTICE_JOB: &str = "notice";

/// A producer's side: enqueues notices in the change's transaction and has them
/// delivered after the commit. Without a notifications service it does nothing.
#[cfg(feature = "db")]
#[derive(Clone, Default)]
pub struct Notifier {
    runner: Option<crate::jobs::JobRunner>,
}

#[cfg(feature = "db")]
impl Notifier {
    /// A notifier that tells nobody (no notifications service configured).
    pub fn disabled() -> Self {
        Self::default()
    }

    /// Creates the outbox table in `database_url`'s database and starts the runner
    /// delivering notices to `notifications` in the background, as `service`.
    pub async fn start(
        service: &'static str,
        database_url: &str,
        pool: crate::db::DbPool,
        notifications: crate::client::ServiceClient,
    ) -> Result<Self, crate::db::DbError> {
        crate::jobs::migrate_jobs(database_url).await?;
        let deliver =
            crate::jobs::Deliver::new(NOTICE_JOB, notifications, |_| Some(NOTICES_PATH.to_owned()));
        let runner = crate::jobs::JobRunner::new(
            pool,
            vec![std::sync::Arc::new(deliver)],
            crate::jobs::RunnerSettings::default(),
        );
        runner.clone().spawn(service);
        Ok(Self {
            runner: Some(runner),
        })
    }

    /// Enqueues `change`; call it in the transaction of the change it reports, and
    /// [`Notifier::wake`] after the commit.
    pub async fn tell(
        &self,
        conn: &mut diesel_async::AsyncPgConnection,
        change: Change,
    ) -> Result<(), diesel::result::Error> {
        if self.runner.is_none() || change.is_own() {
            return Ok(());
        }
        let notice = Notice {
            id: Uuid::now_v7(),
            change,
        };
        let payload = serde_json::to_value(&notice)
            .map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))?;
        crate::jobs::enqueue(conn, NOTICE_JOB, &payload)
            .await
            .map(drop)
    }

    /// Delivers what was committed now, in the background (the producing request does
    /// not wait); what fails stays queued for the runner's retries.
    pub fn wake(&self) {
        if let Some(runner) = &self.runner {
            runner.wake();
        }
    }

    /// Tells that each of `subjects` is gone (what an account's erasure removes); call
    /// it in the transaction that removed them, and [`Notifier::wake`] after the commit.
    pub async fn tell_gone(
        &self,
        conn: &mut diesel_async::AsyncPgConnection,
        subjects: impl IntoIterator<Item = Uuid>,
    ) -> Result<(), diesel::result::Error> {
        for subject in subjects {
            self.tell(conn, Change::Gone { subject }).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notice_reads_back_and_refuses_unknown_fields() {
        let notice = Notice {
            id: Uuid::now_v7(),
            change: Change::Made {
                cause: Cause {
                    kind: NoticeKind::Reaction,
                    recipient: Uuid::now_v7(),
                    actor: Actor {
                        id: Uuid::now_v7(),
                        username: "ada".into(),
                    },
                    subject: Subject::of(SubjectType::Post, Uuid::now_v7()),
                    detail: Some("👍".into()),
                },
            },
        };
        let json = serde_json::to_value(&notice).unwrap();
        assert_eq!(json["op"], "made");
        assert_eq!(json["cause"]["kind"], "reaction");
        assert_eq!(
            serde_json::from_value::<Notice>(json.clone()).unwrap(),
            notice
        );
        let mut extra = json;
        extra["cause"]["surprise"] = serde_json::json!(1);
        assert!(serde_json::from_value::<Notice>(extra).is_err());
    }

    #[test]
    fn kinds_round_trip_their_wire_names() {
        for kind in NoticeKind::ALL {
            assert_eq!(NoticeKind::parse(kind.as_str()), Some(kind));
            assert_eq!(
                serde_json::to_value(kind).unwrap(),
                serde_json::json!(kind.as_str())
            );
        }
        assert_eq!(NoticeKind::parse("poke"), None);
    }
}
