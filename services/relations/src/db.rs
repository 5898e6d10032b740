//! The relations service's queries, one function per query.
//!
//! Every write that changes how two people relate runs in a transaction that first
//! takes the pair's advisory lock ([`lock_pair`]), so crossing friend requests, a block
//! during a request or two follows at once are serialised per pair; primary keys and
//! the one-pending-request-per-pair index back that up.

use crate::model::{
    Counts, FriendRequest, Graph, Pair, PendingRequest, Person, RequestStatus, Suggestion,
    SuggestionReason, Summary, UserRef,
};
use crate::schema::{
    accounts, blocks, declined_requests, follows, friend_requests, friendships, likes, matches,
};
use agora_common::prepared::Statement;
use chrono::{DateTime, Utc};
use diesel::dsl::exists;
use diesel::prelude::*;
use diesel::result::Error;
use diesel::sql_types::{Array, BigInt, Bool, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use std::sync::LazyLock;
use uuid::Uuid;

/// A keyset position in a list ordered newest first.
pub type Position = (DateTime<Utc>, Uuid);

/// Records an account (idempotent). The outbox's delivery carries the real creation
/// time and wins over a first sight in a token.
pub async fn upsert_account(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    username: &str,
    created_at: DateTime<Utc>,
) -> Result<(), Error> {
    diesel::insert_into(accounts::table)
        .values((
            accounts::id.eq(id),
            accounts::username.eq(username),
            accounts::created_at.eq(created_at),
        ))
        .on_conflict(accounts::id)
        .do_update()
        .set(accounts::created_at.eq(created_at))
        .execute(conn)
        .await?;
    Ok(())
}

/// The caller's own account, from their token, when the outbox has not delivered it
/// yet (a write refers to it).
pub async fn ensure_account(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    username: &str,
) -> Result<(), Error> {
    diesel::insert_into(accounts::table)
        .values((accounts::id.eq(id), accounts::username.eq(username)))
        .on_conflict_do_nothing()
        .execute(conn)
        .await?;
    Ok(())
}

/// Whether an account exists.
pub async fn account_exists(conn: &mut AsyncPgConnection, id: Uuid) -> Result<bool, Error> {
    diesel::select(exists(accounts::table.find(id)))
        .get_result(conn)
        .await
}

/// Serialises every write about the pair `{a, b}` until the transaction ends.
pub async fn lock_pair(conn: &mut AsyncPgConnection, a: Uuid, b: Uuid) -> Result<(), Error> {
    diesel::sql_query(
        "SELECT pg_advisory_xact_lock(hashtextextended(LEAST($1, $2)::text || GREATEST($1, $2)::text, 0))",
    )
    .bind::<SqlUuid, _>(a)
    .bind::<SqlUuid, _>(b)
    .execute(conn)
    .await?;
    Ok(())
}

/// Why a write between the caller and someone cannot happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No such account.
    Unknown,
    /// One of the two blocks the other.
    Blocked,
}

/// Whether `other` exists and neither blocks the other.
pub async fn check_target(
    conn: &mut AsyncPgConnection,
    me: Uuid,
    other: Uuid,
) -> Result<Option<Refusal>, Error> {
    if !account_exists(conn, other).await? {
        return Ok(Some(Refusal::Unknown));
    }
    let blocked: bool = diesel::select(exists(
        blocks::table.filter(
            (blocks::blocker_id.eq(me).and(blocks::blocked_id.eq(other)))
                .or(blocks::blocker_id.eq(other).and(blocks::blocked_id.eq(me))),
        ),
    ))
    .get_result(conn)
    .await?;
    Ok(blocked.then_some(Refusal::Blocked))
}

/// Follows (idempotent); whether this call started following.
pub async fn follow(conn: &mut AsyncPgConnection, me: Uuid, other: Uuid) -> Result<bool, Error> {
    diesel::insert_into(follows::table)
        .values((follows::follower_id.eq(me), follows::followee_id.eq(other)))
        .on_conflict_do_nothing()
        .execute(conn)
        .await
        .map(|n| n > 0)
}

/// Unfollows (idempotent).
pub async fn unfollow(conn: &mut AsyncPgConnection, me: Uuid, other: Uuid) -> Result<(), Error> {
    diesel::delete(follows::table.find((me, other)))
        .execute(conn)
        .await?;
    Ok(())
}

/// Whether the two are friends.
pub async fn are_friends(conn: &mut AsyncPgConnection, a: Uuid, b: Uuid) -> Result<bool, Error> {
    diesel::select(exists(friendships::table.find((a, b))))
        .get_result(conn)
        .await
}

/// Makes the two friends (both directions; idempotent).
pub async fn befriend(conn: &mut AsyncPgConnection, a: Uuid, b: Uuid) -> Result<(), Error> {
    diesel::insert_into(friendships::table)
        .values(&vec![
            (friendships::user_id.eq(a), friendships::friend_id.eq(b)),
            (friendships::user_id.eq(b), friendships::friend_id.eq(a)),
        ])
        .on_conflict_do_nothing()
        .execute(conn)
        .await?;
    Ok(())
}

/// Ends a friendship (both directions; idempotent).
pub async fn unfriend(conn: &mut AsyncPgConnection, a: Uuid, b: Uuid) -> Result<(), Error> {
    diesel::delete(
        friendships::table.filter(
            (friendships::user_id.eq(a).and(friendships::friend_id.eq(b)))
                .or(friendships::user_id.eq(b).and(friendships::friend_id.eq(a))),
        ),
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// A pending friend request row.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = friend_requests)]
pub struct RequestRow {
    pub id: Uuid,
    pub from_id: Uuid,
    pub to_id: Uuid,
    pub created_at: DateTime<Utc>,
}

impl RequestRow {
    /// The API view.
    pub fn view(self, status: RequestStatus) -> FriendRequest {
        FriendRequest {
            id: self.id,
            from: self.from_id,
            to: self.to_id,
            status,
            created_at: self.created_at,
        }
    }
}

/// The pending request between the two, whichever way it goes.
pub async fn pending_between(
    conn: &mut AsyncPgConnection,
    a: Uuid,
    b: Uuid,
) -> Result<Option<RequestRow>, Error> {
    friend_requests::table
        .filter(
            (friend_requests::from_id
                .eq(a)
                .and(friend_requests::to_id.eq(b)))
            .or(friend_requests::from_id
                .eq(b)
                .and(friend_requests::to_id.eq(a))),
        )
        .select(RequestRow::as_select())
        .first(conn)
        .await
        .optional()
}

/// A request by id.
pub async fn find_request(
    conn: &mut AsyncPgConnection,
    id: Uuid,
) -> Result<Option<RequestRow>, Error> {
    friend_requests::table
        .find(id)
        .select(RequestRow::as_select())
        .first(conn)
        .await
        .optional()
}

/// Stores a new pending request.
pub async fn insert_request(
    conn: &mut AsyncPgConnection,
    from: Uuid,
    to: Uuid,
) -> Result<RequestRow, Error> {
    diesel::insert_into(friend_requests::table)
        .values((
            friend_requests::id.eq(Uuid::now_v7()),
            friend_requests::from_id.eq(from),
            friend_requests::to_id.eq(to),
        ))
        .returning(RequestRow::as_returning())
        .get_result(conn)
        .await
}

/// Records that `to` declined a request of `from` (the latest decline counts).
pub async fn record_decline(
    conn: &mut AsyncPgConnection,
    from: Uuid,
    to: Uuid,
) -> Result<(), Error> {
    diesel::insert_into(declined_requests::table)
        .values((
            declined_requests::from_id.eq(from),
            declined_requests::to_id.eq(to),
            declined_requests::declined_at.eq(Utc::now()),
        ))
        .on_conflict((declined_requests::from_id, declined_requests::to_id))
        .do_update()
        .set(declined_requests::declined_at.eq(Utc::now()))
        .execute(conn)
        .await?;
    Ok(())
}

/// When `to` last declined a request of `from`, if they ever did.
pub async fn last_decline(
    conn: &mut AsyncPgConnection,
    from: Uuid,
    to: Uuid,
) -> Result<Option<DateTime<Utc>>, Error> {
    declined_requests::table
        .find((from, to))
        .select(declined_requests::declined_at)
        .first(conn)
        .await
        .optional()
}

/// Deletes a request; whether it was still there.
pub async fn delete_request(conn: &mut AsyncPgConnection, id: Uuid) -> Result<bool, Error> {
    let n = diesel::delete(friend_requests::table.find(id))
        .execute(conn)
        .await?;
    Ok(n > 0)
}

/// Likes (idempotent); whether the two now match (and records the match).
pub async fn like(conn: &mut AsyncPgConnection, me: Uuid, other: Uuid) -> Result<Liked, Error> {
    diesel::insert_into(likes::table)
        .values((likes::liker_id.eq(me), likes::likee_id.eq(other)))
        .on_conflict_do_nothing()
        .execute(conn)
        .await?;
    let liked_back: bool = diesel::select(exists(likes::table.find((other, me))))
        .get_result(conn)
        .await?;
    let mut new_match = false;
    if liked_back {
        new_match = diesel::insert_into(matches::table)
            .values(&vec![
                (matches::user_id.eq(me), matches::other_id.eq(other)),
                (matches::user_id.eq(other), matches::other_id.eq(me)),
            ])
            .on_conflict_do_nothing()
            .execute(conn)
            .await?
            > 0;
    }
    Ok(Liked {
        matched: liked_back,
        new_match,
    })
}

/// What a like found.
#[derive(Debug, Clone, Copy)]
pub struct Liked {
    /// Both like each other.
    pub matched: bool,
    /// This like made the match.
    pub new_match: bool,
}

/// Withdraws a like (idempotent); a match between the two ends with it.
pub async fn unlike(conn: &mut AsyncPgConnection, me: Uuid, other: Uuid) -> Result<(), Error> {
    diesel::delete(likes::table.find((me, other)))
        .execute(conn)
        .await?;
    delete_matches(conn, me, other).await
}

async fn delete_matches(conn: &mut AsyncPgConnection, a: Uuid, b: Uuid) -> Result<(), Error> {
    diesel::delete(
        matches::table.filter(
            (matches::user_id.eq(a).and(matches::other_id.eq(b)))
                .or(matches::user_id.eq(b).and(matches::other_id.eq(a))),
        ),
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Blocks: removes every follow, friendship, like, match and pending request between
/// the two, in both directions, then records the block (idempotent).
pub async fn block(conn: &mut AsyncPgConnection, me: Uuid, other: Uuid) -> Result<(), Error> {
    diesel::delete(
        follows::table.filter(
            (follows::follower_id
                .eq(me)
                .and(follows::followee_id.eq(other)))
            .or(follows::follower_id
                .eq(other)
                .and(follows::followee_id.eq(me))),
        ),
    )
    .execute(conn)
    .await?;
    unfriend(conn, me, other).await?;
    diesel::delete(
        likes::table.filter(
            (likes::liker_id.eq(me).and(likes::likee_id.eq(other)))
                .or(likes::liker_id.eq(other).and(likes::likee_id.eq(me))),
        ),
    )
    .execute(conn)
    .await?;
    delete_matches(conn, me, other).await?;
    diesel::delete(
        friend_requests::table.filter(
            (friend_requests::from_id
                .eq(me)
                .and(friend_requests::to_id.eq(other)))
            .or(friend_requests::from_id
                .eq(other)
                .and(friend_requests::to_id.eq(me))),
        ),
    )
    .execute(conn)
    .await?;
    diesel::insert_into(blocks::table)
        .values((blocks::blocker_id.eq(me), blocks::blocked_id.eq(other)))
        .on_conflict_do_nothing()
        .execute(conn)
        .await?;
    Ok(())
}

/// Lifts a block (idempotent).
pub async fn unblock(conn: &mut AsyncPgConnection, me: Uuid, other: Uuid) -> Result<(), Error> {
    diesel::delete(blocks::table.find((me, other)))
        .execute(conn)
        .await?;
    Ok(())
}

/// The lists of people, each a range of one index, newest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeopleList {
    Followers,
    Following,
    Friends,
    Matches,
    Blocks,
}

impl PeopleList {
    /// The name its cursors are bound to.
    pub fn cursor_list(self) -> &'static str {
        match self {
            Self::Followers => "relations.followers",
            Self::Following => "relations.following",
            Self::Friends => "relations.friends",
            Self::Matches => "relations.matches",
            Self::Blocks => "relations.blocks",
        }
    }

    /// (table, column naming the subject, column naming the listed person).
    fn columns(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Self::Followers => ("follows", "followee_id", "follower_id"),
            Self::Following => ("follows", "follower_id", "followee_id"),
            Self::Friends => ("friendships", "user_id", "friend_id"),
            Self::Matches => ("matches", "user_id", "other_id"),
            Self::Blocks => ("blocks", "blocker_id", "blocked_id"),
        }
    }

    /// The page query (built once per list: its text is fixed).
    fn sql(self) -> &'static str {
        fn build(list: PeopleList) -> String {
            let (table, subject, other) = list.columns();
            format!(
                "SELECT a.id, a.username, r.created_at AS since FROM {table} r \
                 JOIN accounts a ON a.id = r.{other} \
                 WHERE r.{subject} = $1 \
                   AND ($2::timestamptz IS NULL OR (r.created_at, r.{other}) < ($2, $3)) \
                 ORDER BY r.created_at DESC, r.{other} DESC LIMIT $4"
            )
        }
        static SQL: LazyLock<[String; 5]> = LazyLock::new(|| {
            [
                build(PeopleList::Followers),
                build(PeopleList::Following),
                build(PeopleList::Friends),
                build(PeopleList::Matches),
                build(PeopleList::Blocks),
            ]
        });
        let index = match self {
            Self::Followers => 0,
            Self::Following => 1,
            Self::Friends => 2,
            Self::Matches => 3,
            Self::Blocks => 4,
        };
        SQL.get(index).map_or("", String::as_str)
    }
}

/// One page of a list of people (`limit + 1` rows: the extra one says more exist).
pub async fn people_page(
    conn: &mut AsyncPgConnection,
    list: PeopleList,
    subject: Uuid,
    after: Option<Position>,
    limit: u32,
) -> Result<Vec<Person>, Error> {
    diesel::sql_query(list.sql())
        .bind::<SqlUuid, _>(subject)
        .bind::<Nullable<Timestamptz>, _>(after.map(|(at, _)| at))
        .bind::<Nullable<SqlUuid>, _>(after.map(|(_, id)| id))
        .bind::<BigInt, _>(i64::from(limit) + 1)
        .load(conn)
        .await
}

/// One page of pending requests to (`incoming`) or from the user, newest first.
pub async fn requests_page(
    conn: &mut AsyncPgConnection,
    user: Uuid,
    incoming: bool,
    after: Option<Position>,
    limit: u32,
) -> Result<Vec<RequestRow>, Error> {
    let mut query = friend_requests::table
        .select(RequestRow::as_select())
        .order((
            friend_requests::created_at.desc(),
            friend_requests::id.desc(),
        ))
        .limit(i64::from(limit) + 1)
        .into_boxed();
    query = if incoming {
        query.filter(friend_requests::to_id.eq(user))
    } else {
        query.filter(friend_requests::from_id.eq(user))
    };
    if let Some((at, id)) = after {
        query = query.filter(
            friend_requests::created_at
                .lt(at)
                .or(friend_requests::created_at
                    .eq(at)
                    .and(friend_requests::id.lt(id))),
        );
    }
    query.load(conn).await
}

#[derive(QueryableByName)]
struct SuggestionRow {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = Text)]
    username: String,
    #[diesel(sql_type = BigInt)]
    mutual_friends: i64,
    #[diesel(sql_type = BigInt)]
    followed_by: i64,
    #[diesel(sql_type = BigInt)]
    score: i64,
}

/// People the user may know, best first: friends of friends (by mutual friends) and
/// people the user's followees follow; when those are fewer than `limit`, the most
/// followed people fill the list (so a newcomer has somewhere to start). Never the
/// user, their friends or followees, anyone with a pending request either way, or
/// anyone either side blocks. One query.
pub async fn suggestions(
    conn: &mut AsyncPgConnection,
    user: Uuid,
    limit: u32,
) -> Result<Vec<Suggestion>, Error> {
    let rows: Vec<SuggestionRow> = diesel::sql_query(
        "WITH my_friends AS (SELECT friend_id AS id FROM friendships WHERE user_id = $1), \
              my_followees AS (SELECT followee_id AS id FROM follows WHERE follower_id = $1), \
              excluded AS ( \
                SELECT $1::uuid AS id \
                UNION SELECT id FROM my_friends \
                UNION SELECT id FROM my_followees \
                UNION SELECT to_id FROM friend_requests WHERE from_id = $1 \
                UNION SELECT from_id FROM friend_requests WHERE to_id = $1 \
                UNION SELECT blocked_id FROM blocks WHERE blocker_id = $1 \
                UNION SELECT blocker_id FROM blocks WHERE blocked_id = $1), \
              candidates AS ( \
                SELECT f.friend_id AS id, 1 AS mutual, 0 AS followed \
                  FROM friendships f JOIN my_friends m ON f.user_id = m.id \
                UNION ALL \
                SELECT f.followee_id, 0, 1 \
                  FROM follows f JOIN my_followees m ON f.follower_id = m.id), \
              scored AS ( \
                SELECT id, sum(mutual)::bigint AS mutual_friends, sum(followed)::bigint AS followed_by \
                  FROM candidates WHERE id NOT IN (SELECT id FROM excluded) GROUP BY id), \
              known AS ( \
                SELECT a.id, a.username, s.mutual_friends, s.followed_by, \
                       (2 * s.mutual_friends + s.followed_by) AS score \
                  FROM scored s JOIN accounts a ON a.id = s.id \
                 ORDER BY score DESC, s.mutual_friends DESC, a.username LIMIT $2), \
              popular AS ( \
                SELECT a.id, a.username, p.followers \
                  FROM (SELECT followee_id AS id, count(*) AS followers FROM follows \
                         WHERE followee_id NOT IN (SELECT id FROM excluded) \
                           AND followee_id NOT IN (SELECT id FROM known) \
                         GROUP BY followee_id) p \
                  JOIN accounts a ON a.id = p.id \
                 ORDER BY p.followers DESC, a.username \
                 LIMIT greatest(0, $2 - (SELECT count(*) FROM known))) \
         SELECT id, username, mutual_friends, followed_by, score FROM ( \
             SELECT id, username, mutual_friends, followed_by, score, 0 AS tier, \
                    0::bigint AS followers FROM known \
             UNION ALL \
             SELECT id, username, 0::bigint, 0::bigint, 0::bigint, 1, followers FROM popular) x \
          ORDER BY tier, score DESC, mutual_friends DESC, followers DESC, username",
    )
    .bind::<SqlUuid, _>(user)
    .bind::<BigInt, _>(i64::from(limit))
    .load(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Suggestion {
            reason: SuggestionReason::of(r.mutual_friends, r.followed_by),
            user: UserRef {
                id: r.id,
                username: r.username,
            },
            score: r.score,
            mutual_friends: r.mutual_friends,
            followed_by_your_followees: r.followed_by,
        })
        .collect())
}

#[derive(QueryableByName)]
struct CountsColumns {
    #[diesel(sql_type = BigInt)]
    followers: i64,
    #[diesel(sql_type = BigInt)]
    following: i64,
    #[diesel(sql_type = BigInt)]
    friends: i64,
}

impl From<CountsColumns> for Counts {
    fn from(c: CountsColumns) -> Self {
        Self {
            followers: c.followers,
            following: c.following,
            friends: c.friends,
        }
    }
}

#[derive(QueryableByName)]
struct SummaryRow {
    #[diesel(embed)]
    counts: CountsColumns,
    #[diesel(sql_type = Bool)]
    is_following: bool,
    #[diesel(sql_type = Bool)]
    is_followed_by: bool,
    #[diesel(sql_type = Bool)]
    is_friend: bool,
    #[diesel(sql_type = Nullable<Text>)]
    friend_request: Option<String>,
    #[diesel(sql_type = Bool)]
    blocked: bool,
}

/// `subject`'s counts and how they relate to `me`. One query.
pub async fn summary(
    conn: &mut AsyncPgConnection,
    me: Uuid,
    subject: Uuid,
) -> Result<Summary, Error> {
    let row: SummaryRow = diesel::sql_query(
        "SELECT (SELECT count(*) FROM follows WHERE followee_id = $2) AS followers, \
                (SELECT count(*) FROM follows WHERE follower_id = $2) AS following, \
                (SELECT count(*) FROM friendships WHERE user_id = $2) AS friends, \
                EXISTS (SELECT 1 FROM follows WHERE follower_id = $1 AND followee_id = $2) AS is_following, \
                EXISTS (SELECT 1 FROM follows WHERE follower_id = $2 AND followee_id = $1) AS is_followed_by, \
                EXISTS (SELECT 1 FROM friendships WHERE user_id = $1 AND friend_id = $2) AS is_friend, \
                (SELECT CASE WHEN from_id = $1 THEN 'outgoing' ELSE 'incoming' END FROM friend_requests \
                  WHERE (from_id = $1 AND to_id = $2) OR (from_id = $2 AND to_id = $1)) AS friend_request, \
                EXISTS (SELECT 1 FROM blocks WHERE blocker_id = $1 AND blocked_id = $2) AS blocked",
    )
    .bind::<SqlUuid, _>(me)
    .bind::<SqlUuid, _>(subject)
    .get_result(conn)
    .await?;
    Ok(Summary {
        followers: row.counts.followers,
        following: row.counts.following,
        friends: row.counts.friends,
        is_following: row.is_following,
        is_followed_by: row.is_followed_by,
        is_friend: row.is_friend,
        friend_request: match row.friend_request.as_deref() {
            Some("outgoing") => PendingRequest::Outgoing,
            Some(_) => PendingRequest::Incoming,
            None => PendingRequest::None,
        },
        blocked: row.blocked,
    })
}

#[derive(QueryableByName)]
struct CountsRow {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(embed)]
    counts: CountsColumns,
}

/// Counts of several users at once (ids that are unknown count zero). One query.
pub async fn counts(
    conn: &mut AsyncPgConnection,
    ids: &[Uuid],
) -> Result<Vec<(Uuid, Counts)>, Error> {
    let rows: Vec<CountsRow> = diesel::sql_query(
        "SELECT u.id, \
                (SELECT count(*) FROM follows WHERE followee_id = u.id) AS followers, \
                (SELECT count(*) FROM follows WHERE follower_id = u.id) AS following, \
                (SELECT count(*) FROM friendships WHERE user_id = u.id) AS friends \
           FROM unnest($1::uuid[]) AS u(id)",
    )
    .bind::<Array<SqlUuid>, _>(ids)
    .load(conn)
    .await?;
    Ok(rows.into_iter().map(|r| (r.id, r.counts.into())).collect())
}

#[derive(QueryableByName)]
struct GraphRow {
    #[diesel(sql_type = Array<SqlUuid>)]
    following: Vec<Uuid>,
    #[diesel(sql_type = Array<SqlUuid>)]
    friends: Vec<Uuid>,
    #[diesel(sql_type = Array<SqlUuid>)]
    blocking: Vec<Uuid>,
    #[diesel(sql_type = Array<SqlUuid>)]
    blocked_by: Vec<Uuid>,
}

/// Everyone `user` is related to. One row of four arrays, each one index range (a
/// feed page asks this first: one row decodes faster than thousands).
pub async fn graph(conn: &mut AsyncPgConnection, user: Uuid) -> Result<Graph, Error> {
    static SQL: LazyLock<Statement> = LazyLock::new(|| {
        Statement::new(
            "SELECT ARRAY(SELECT followee_id FROM follows WHERE follower_id = $1) AS following, \
                    ARRAY(SELECT friend_id FROM friendships WHERE user_id = $1) AS friends, \
                    ARRAY(SELECT blocked_id FROM blocks WHERE blocker_id = $1) AS blocking, \
                    ARRAY(SELECT blocker_id FROM blocks WHERE blocked_id = $1) AS blocked_by",
        )
    });
    let row: GraphRow = SQL
        .query()
        .bind::<SqlUuid, _>(user)
        .get_result(conn)
        .await?;
    Ok(Graph {
        following: row.following,
        friends: row.friends,
        blocking: row.blocking,
        blocked_by: row.blocked_by,
    })
}

#[derive(QueryableByName)]
struct PairRow {
    #[diesel(sql_type = Bool)]
    following: bool,
    #[diesel(sql_type = Bool)]
    friend: bool,
    #[diesel(sql_type = Bool)]
    blocking: bool,
    #[diesel(sql_type = Bool)]
    blocked_by: bool,
}

/// How `user` relates to `other`. One query of four primary-key lookups.
pub async fn pair(conn: &mut AsyncPgConnection, user: Uuid, other: Uuid) -> Result<Pair, Error> {
    static SQL: LazyLock<Statement> = LazyLock::new(|| {
        Statement::new(
            "SELECT EXISTS (SELECT 1 FROM follows WHERE follower_id = $1 AND followee_id = $2) AS following, \
                    EXISTS (SELECT 1 FROM friendships WHERE user_id = $1 AND friend_id = $2) AS friend, \
                    EXISTS (SELECT 1 FROM blocks WHERE blocker_id = $1 AND blocked_id = $2) AS blocking, \
                    EXISTS (SELECT 1 FROM blocks WHERE blocker_id = $2 AND blocked_id = $1) AS blocked_by",
        )
    });
    let row: PairRow = SQL
        .query()
        .bind::<SqlUuid, _>(user)
        .bind::<SqlUuid, _>(other)
        .get_result(conn)
        .await?;
    Ok(Pair {
        following: row.following,
        friend: row.friend,
        blocking: row.blocking,
        blocked_by: row.blocked_by,
    })
}

/// Erases every relation of `person`, both ways, and their account row (call it in a
/// transaction). Counts are counted from these rows, so they follow. Idempotent.
pub async fn erase_person(conn: &mut AsyncPgConnection, person: Uuid) -> Result<(), Error> {
    for sql in [
        "DELETE FROM follows WHERE follower_id = $1 OR followee_id = $1",
        "DELETE FROM friendships WHERE user_id = $1 OR friend_id = $1",
        "DELETE FROM friend_requests WHERE from_id = $1 OR to_id = $1",
        "DELETE FROM declined_requests WHERE from_id = $1 OR to_id = $1",
        "DELETE FROM likes WHERE liker_id = $1 OR likee_id = $1",
        "DELETE FROM matches WHERE user_id = $1 OR other_id = $1",
        "DELETE FROM blocks WHERE blocker_id = $1 OR blocked_id = $1",
        "DELETE FROM accounts WHERE id = $1",
    ] {
        diesel::sql_query(sql)
            .bind::<diesel::sql_types::Uuid, _>(person)
            .execute(conn)
            .await?;
    }
    Ok(())
}
