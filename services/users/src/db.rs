//! The users service's queries, one function per query.
//!
//! A page of posts is one query: the page itself (keyset, visibility in SQL), then per
//! post of that page its comment count, reaction counts and the viewer's reactions —
//! no query per post.

use crate::model::{Author, Comment, ProfileChange, Visibility};
use crate::schema::{comments, posts, profiles, reactions};
use agora_common::prepared::Statement;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::result::Error;
use diesel::sql_types::{Array, BigInt, Bool, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use std::sync::LazyLock;
use uuid::Uuid;

/// A keyset position: `(created_at, id)`.
pub type Position = (DateTime<Utc>, Uuid);

/// A profile row with its post count.
#[derive(Debug, Clone, QueryableByName)]
pub struct ProfileRow {
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    #[diesel(sql_type = Text)]
    pub username: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub display_name: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub bio: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub avatar_url: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub location: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub website: Option<String>,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
    /// Posts per visibility (see [`ProfileRow::posts_seen_by`]).
    #[diesel(sql_type = BigInt)]
    pub public_posts: i64,
    #[diesel(sql_type = BigInt)]
    pub friends_posts: i64,
    #[diesel(sql_type = BigInt)]
    pub private_posts: i64,
}

impl ProfileRow {
    /// How many of these posts a viewer can list: all of them for the author, the
    /// public ones plus friends-only ones for a friend, none when blocked either way.
    pub fn posts_seen_by(&self, viewer: Uuid, pair: &agora_common::relations::Pair) -> i64 {
        if viewer == self.id {
            self.public_posts + self.friends_posts + self.private_posts
        } else if pair.blocked_either_way() {
            0
        } else if pair.friend {
            self.public_posts + self.friends_posts
        } else {
            self.public_posts
        }
    }
}

const PROFILE_COLUMNS: &str = "p.id, p.username, p.display_name, p.bio, p.avatar_url, \
    p.location, p.website, p.created_at, p.public_posts, p.friends_posts, p.private_posts";

/// Records an account's profile (idempotent). The outbox's delivery carries the real
/// creation time and wins over a first sight in a token.
pub async fn upsert_profile(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    username: &str,
    created_at: DateTime<Utc>,
) -> Result<(), Error> {
    diesel::insert_into(profiles::table)
        .values((
            profiles::id.eq(id),
            profiles::username.eq(username),
            profiles::created_at.eq(created_at),
        ))
        .on_conflict(profiles::id)
        .do_update()
        .set(profiles::created_at.eq(created_at))
        .execute(conn)
        .await?;
    Ok(())
}

/// The caller's profile from their token, when the outbox has not delivered it yet.
pub async fn ensure_profile(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    username: &str,
) -> Result<(), Error> {
    diesel::insert_into(profiles::table)
        .values((profiles::id.eq(id), profiles::username.eq(username)))
        .on_conflict_do_nothing()
        .execute(conn)
        .await?;
    Ok(())
}

/// A profile by id.
pub async fn profile(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Option<ProfileRow>, Error> {
    static SQL: LazyLock<Statement> = LazyLock::new(|| {
        Statement::new(&format!(
            "SELECT {PROFILE_COLUMNS} FROM profiles p WHERE p.id = $1"
        ))
    });
    SQL.query()
        .bind::<SqlUuid, _>(id)
        .get_result(conn)
        .await
        .optional()
}

/// A profile by exact (lowercase) username.
pub async fn profile_by_username(
    conn: &mut AsyncPgConnection,
    username: &str,
) -> Result<Option<ProfileRow>, Error> {
    static SQL: LazyLock<Statement> = LazyLock::new(|| {
        Statement::new(&format!(
            "SELECT {PROFILE_COLUMNS} FROM profiles p WHERE p.username = $1"
        ))
    });
    SQL.query()
        .bind::<Text, _>(username)
        .get_result(conn)
        .await
        .optional()
}

/// Profiles whose username starts with `prefix`, in username order after `after`.
pub async fn profiles_by_prefix(
    conn: &mut AsyncPgConnection,
    prefix: &str,
    after: Option<&str>,
    limit: u32,
) -> Result<Vec<ProfileRow>, Error> {
    // `_` is a username character and a LIKE wildcard: escape it (and `\`, `%`).
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {PROFILE_COLUMNS} FROM profiles p \
             WHERE p.username LIKE $1 ESCAPE '\\' \
               AND ($2::text IS NULL OR p.username COLLATE \"C\" > $2) \
             ORDER BY p.username COLLATE \"C\" LIMIT $3"
        )
    });
    let pattern = format!(
        "{}%",
        prefix
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    );
    diesel::sql_query(SQL.as_str())
        .bind::<Text, _>(pattern)
        .bind::<Nullable<Text>, _>(after)
        .bind::<BigInt, _>(i64::from(limit) + 1)
        .load(conn)
        .await
}

/// Applies a validated profile change; whether the profile exists.
pub async fn update_profile(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    change: ProfileChange,
) -> Result<bool, Error> {
    #[derive(AsChangeset)]
    #[diesel(table_name = profiles)]
    struct Changes {
        display_name: Option<Option<String>>,
        bio: Option<Option<String>>,
        avatar_url: Option<Option<String>>,
        location: Option<Option<String>>,
        website: Option<Option<String>>,
        updated_at: DateTime<Utc>,
    }
    let n = diesel::update(profiles::table.find(id))
        .set(Changes {
            display_name: change.display_name,
            bio: change.bio,
            avatar_url: change.avatar_url,
            location: change.location,
            website: change.website,
            updated_at: Utc::now(),
        })
        .execute(conn)
        .await?;
    Ok(n > 0)
}

/// A post with what the API shows about it.
#[derive(Debug, Clone, QueryableByName)]
pub struct PostRow {
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    pub author_id: Uuid,
    #[diesel(sql_type = Text)]
    pub author_username: String,
    #[diesel(sql_type = Text)]
    pub text: String,
    #[diesel(sql_type = Array<Text>)]
    pub links: Vec<String>,
    #[diesel(sql_type = Array<SqlUuid>)]
    pub photo_ids: Vec<Uuid>,
    #[diesel(sql_type = Text)]
    pub visibility: String,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    pub updated_at: DateTime<Utc>,
    #[diesel(sql_type = BigInt)]
    pub comment_count: i64,
    /// `{"👍": 3, …}`.
    #[diesel(sql_type = Jsonb)]
    pub reactions: serde_json::Value,
    #[diesel(sql_type = Array<Text>)]
    pub my_reactions: Vec<String>,
}

/// The details of each post of a page (`page` is a subquery naming posts; `$1` is the
/// viewer), newest first.
fn with_details(page: &str) -> String {
    format!(
        "WITH page AS ({page}) \
         SELECT page.id, page.author_id, a.username AS author_username, page.text, page.links, \
                page.photo_ids, page.visibility, page.created_at, page.updated_at, \
                page.comment_count, page.reaction_counts AS reactions, \
                (SELECT coalesce(array_agg(r.emoji ORDER BY r.emoji), '{{}}') FROM reactions r \
                    WHERE r.post_id = page.id AND r.user_id = $1) AS my_reactions \
         FROM page JOIN profiles a ON a.id = page.author_id \
         ORDER BY page.created_at DESC, page.id DESC"
    )
}

/// One post (visibility is checked by the caller, who needs the relation for it).
pub async fn post(
    conn: &mut AsyncPgConnection,
    viewer: Uuid,
    id: Uuid,
) -> Result<Option<PostRow>, Error> {
    static SQL: LazyLock<Statement> =
        LazyLock::new(|| Statement::new(&with_details("SELECT * FROM posts WHERE id = $2")));
    SQL.query()
        .bind::<SqlUuid, _>(viewer)
        .bind::<SqlUuid, _>(id)
        .get_result(conn)
        .await
        .optional()
}

/// Who wrote a post and who may see it: what a visibility check needs, without the
/// counts and reactions of [`post`].
pub async fn post_access(
    conn: &mut AsyncPgConnection,
    id: Uuid,
) -> Result<Option<(Uuid, String)>, Error> {
    posts::table
        .find(id)
        .select((posts::author_id, posts::visibility))
        .first(conn)
        .await
        .optional()
}

/// The keyset condition of a page: after `($4, $5)`, or from the newest when they are
/// null. Written without an `OR` so that it stays an index condition in a generic plan.
const AFTER_POSITION: &str = "(p.created_at, p.id) < \
    (coalesce($4, 'infinity'::timestamptz), coalesce($5, 'ffffffff-ffff-ffff-ffff-ffffffffffff'::uuid))";

/// Up to this many authors a feed page reads each author's newest posts from
/// `posts_author_idx` and keeps the newest of them ([`FEED_FEW_SQL`]: cost ∝ authors ×
/// page); above it, it walks `posts_recent_idx` newest first and stops when the page is
/// full ([`FEED_MANY_SQL`]: cost ∝ page ÷ the authors' share of recent posts). Per-author
/// reads cost ~25 µs an author at 1M posts (EXPLAIN ANALYZE: 10 authors 0.3 ms, 100
/// 2.7 ms, 1,000 30 ms); the walk costs ~0.25 µs a post it passes over (10 authors of
/// 10,000 writing alike: 2.5 ms), so the two meet near √(authors on the platform ÷ 10):
/// 32 for 10,000.
pub const FEED_FEW_AUTHORS: usize = 32;

/// The home timeline for a few authors: `$1` viewer, `$2` followees and friends, `$3`
/// friends, `$4`/`$5` the position after which the page starts (or nulls), `$6` rows.
/// Its plan does not depend on the values, so it is prepared once per connection.
pub static FEED_FEW_SQL: LazyLock<String> = LazyLock::new(|| {
    with_details(&format!(
        "SELECT p.* FROM (SELECT DISTINCT x AS id FROM unnest($2::uuid[] || $1::uuid) x) a \
         CROSS JOIN LATERAL (SELECT * FROM posts p \
             WHERE p.author_id = a.id \
               AND (p.author_id = $1 OR p.visibility = 'public' \
                    OR (p.visibility = 'friends' AND p.author_id = ANY($3))) \
               AND {AFTER_POSITION} \
             ORDER BY p.created_at DESC, p.id DESC LIMIT $6) p \
         ORDER BY p.created_at DESC, p.id DESC LIMIT $6"
    ))
});

/// The home timeline for many authors, the same parameters as [`FEED_FEW_SQL`]. Not
/// prepared: the walk is only right when the planner sees the authors (a generic plan
/// would guess ten and could fetch and sort every post of thousands of them).
pub static FEED_MANY_SQL: LazyLock<String> = LazyLock::new(|| {
    with_details(&format!(
        "SELECT * FROM posts p \
         WHERE (p.author_id = $1 \
                OR (p.author_id = ANY($2) \
                    AND (p.visibility = 'public' \
                         OR (p.visibility = 'friends' AND p.author_id = ANY($3))))) \
           AND {AFTER_POSITION} \
         ORDER BY p.created_at DESC, p.id DESC LIMIT $6"
    ))
});

/// One author's timeline query: `$1` viewer, `$2` author, `$3` whether the viewer is the
/// author's friend, `$4`/`$5` the position after which the page starts, `$6` rows.
pub static AUTHOR_PAGE_SQL: LazyLock<String> = LazyLock::new(|| {
    with_details(&format!(
        "SELECT * FROM posts p \
         WHERE p.author_id = $2 \
           AND (p.author_id = $1 OR p.visibility = 'public' \
                OR (p.visibility = 'friends' AND $3)) \
           AND {AFTER_POSITION} \
         ORDER BY p.created_at DESC, p.id DESC LIMIT $6"
    ))
});

/// Who may see which posts, for a feed page: the viewer's own, and those of followees
/// and friends (`authors`) that are public, or for friends and written by a friend.
pub struct FeedScope<'a> {
    pub authors: &'a [Uuid],
    pub friends: &'a [Uuid],
}

/// A page of the viewer's home timeline, newest first (`limit + 1` rows).
pub async fn feed_page(
    conn: &mut AsyncPgConnection,
    viewer: Uuid,
    scope: FeedScope<'_>,
    after: Option<Position>,
    limit: u32,
) -> Result<Vec<PostRow>, Error> {
    static FEW: LazyLock<Statement> = LazyLock::new(|| Statement::new(&FEED_FEW_SQL));
    static MANY: LazyLock<Statement> = LazyLock::new(|| Statement::per_call(&FEED_MANY_SQL));
    let statement = if scope.authors.len() <= FEED_FEW_AUTHORS {
        &FEW
    } else {
        &MANY
    };
    statement
        .query()
        .bind::<SqlUuid, _>(viewer)
        .bind::<Array<SqlUuid>, _>(scope.authors)
        .bind::<Array<SqlUuid>, _>(scope.friends)
        .bind::<Nullable<Timestamptz>, _>(after.map(|(at, _)| at))
        .bind::<Nullable<SqlUuid>, _>(after.map(|(_, id)| id))
        .bind::<BigInt, _>(i64::from(limit) + 1)
        .load(conn)
        .await
}

/// A page of one author's posts that the viewer may see (`friend`: the viewer is the
/// author's friend), newest first (`limit + 1` rows).
pub async fn author_page(
    conn: &mut AsyncPgConnection,
    viewer: Uuid,
    author: Uuid,
    friend: bool,
    after: Option<Position>,
    limit: u32,
) -> Result<Vec<PostRow>, Error> {
    static SQL: LazyLock<Statement> = LazyLock::new(|| Statement::new(&AUTHOR_PAGE_SQL));
    SQL.query()
        .bind::<SqlUuid, _>(viewer)
        .bind::<SqlUuid, _>(author)
        .bind::<Bool, _>(friend)
        .bind::<Nullable<Timestamptz>, _>(after.map(|(at, _)| at))
        .bind::<Nullable<SqlUuid>, _>(after.map(|(_, id)| id))
        .bind::<BigInt, _>(i64::from(limit) + 1)
        .load(conn)
        .await
}

/// Stores a new post; its id.
pub async fn insert_post(
    conn: &mut AsyncPgConnection,
    author: Uuid,
    text: &str,
    links: &[String],
    photo_ids: &[Uuid],
    visibility: Visibility,
) -> Result<Uuid, Error> {
    diesel::insert_into(posts::table)
        .values((
            posts::id.eq(Uuid::now_v7()),
            posts::author_id.eq(author),
            posts::text.eq(text),
            posts::links.eq(links),
            posts::photo_ids.eq(photo_ids),
            posts::visibility.eq(visibility.as_str()),
        ))
        .returning(posts::id)
        .get_result(conn)
        .await
}

/// Edits a post's fields (those given).
pub async fn update_post(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    text: Option<&str>,
    links: Option<&[String]>,
    visibility: Option<Visibility>,
) -> Result<(), Error> {
    #[derive(AsChangeset)]
    #[diesel(table_name = posts)]
    struct Changes<'a> {
        text: Option<&'a str>,
        links: Option<&'a [String]>,
        visibility: Option<&'static str>,
        updated_at: DateTime<Utc>,
    }
    diesel::update(posts::table.find(id))
        .set(Changes {
            text,
            links,
            visibility: visibility.map(Visibility::as_str),
            updated_at: Utc::now(),
        })
        .execute(conn)
        .await?;
    Ok(())
}

/// Deletes a post; its comments and reactions go with it (ON DELETE CASCADE).
pub async fn delete_post(conn: &mut AsyncPgConnection, id: Uuid) -> Result<(), Error> {
    diesel::delete(posts::table.find(id)).execute(conn).await?;
    Ok(())
}

/// A comment's post and author.
#[derive(Debug, Clone, Copy, Queryable)]
pub struct CommentOwner {
    pub post_id: Uuid,
    pub author_id: Uuid,
}

/// Whose comment `id` is and on which post.
pub async fn comment_owner(
    conn: &mut AsyncPgConnection,
    id: Uuid,
) -> Result<Option<CommentOwner>, Error> {
    comments::table
        .find(id)
        .select((comments::post_id, comments::author_id))
        .first(conn)
        .await
        .optional()
}

type CommentTuple = (
    Uuid,
    Uuid,
    Option<Uuid>,
    Uuid,
    String,
    String,
    DateTime<Utc>,
);

fn comment_view(row: CommentTuple) -> Comment {
    let (id, post_id, parent_id, author_id, username, text, created_at) = row;
    Comment {
        id,
        post_id,
        parent_id,
        author: Author {
            id: author_id,
            username,
        },
        text,
        created_at,
    }
}

/// Stores a comment (a reply's parent must be on the same post: the composite
/// foreign key refuses anything else).
pub async fn insert_comment(
    conn: &mut AsyncPgConnection,
    post: Uuid,
    parent: Option<Uuid>,
    author: Uuid,
    text: &str,
) -> Result<Comment, Error> {
    let id = Uuid::now_v7();
    diesel::insert_into(comments::table)
        .values((
            comments::id.eq(id),
            comments::post_id.eq(post),
            comments::parent_id.eq(parent),
            comments::author_id.eq(author),
            comments::text.eq(text),
        ))
        .execute(conn)
        .await?;
    comments::table
        .inner_join(profiles::table)
        .filter(comments::id.eq(id))
        .select((
            comments::id,
            comments::post_id,
            comments::parent_id,
            comments::author_id,
            profiles::username,
            comments::text,
            comments::created_at,
        ))
        .first::<CommentTuple>(conn)
        .await
        .map(comment_view)
}

/// A page of a post's comments, oldest first (`limit + 1` rows), without those of the
/// `hidden` authors.
pub async fn comments_page(
    conn: &mut AsyncPgConnection,
    post: Uuid,
    hidden: &[Uuid],
    after: Option<Position>,
    limit: u32,
) -> Result<Vec<Comment>, Error> {
    let mut query = comments::table
        .inner_join(profiles::table)
        .filter(comments::post_id.eq(post))
        .filter(diesel::dsl::not(comments::author_id.eq_any(hidden)))
        .select((
            comments::id,
            comments::post_id,
            comments::parent_id,
            comments::author_id,
            profiles::username,
            comments::text,
            comments::created_at,
        ))
        .order((comments::created_at.asc(), comments::id.asc()))
        .limit(i64::from(limit) + 1)
        .into_boxed();
    if let Some((at, id)) = after {
        query = query.filter(
            comments::created_at
                .gt(at)
                .or(comments::created_at.eq(at).and(comments::id.gt(id))),
        );
    }
    Ok(query
        .load::<CommentTuple>(conn)
        .await?
        .into_iter()
        .map(comment_view)
        .collect())
}

/// Deletes a comment and its replies; the ids of all that went.
pub async fn delete_comment(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Vec<Uuid>, Error> {
    #[derive(QueryableByName)]
    struct Gone {
        #[diesel(sql_type = SqlUuid)]
        id: Uuid,
    }
    let gone: Vec<Gone> = diesel::sql_query(
        "WITH RECURSIVE thread AS ( \
           SELECT id FROM comments WHERE id = $1 \
           UNION SELECT c.id FROM comments c JOIN thread t ON c.parent_id = t.id) \
         SELECT id FROM thread",
    )
    .bind::<SqlUuid, _>(id)
    .load(conn)
    .await?;
    diesel::delete(comments::table.find(id))
        .execute(conn)
        .await?;
    Ok(gone.into_iter().map(|g| g.id).collect())
}

/// The most distinct reactions one person may leave on one post.
pub const MAX_REACTIONS_PER_POST: i64 = 10;

/// Whether [`add_reaction`] stored the reaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReactionAdded {
    /// Stored.
    Yes,
    /// Already there (idempotent).
    Already,
    /// The person already has [`MAX_REACTIONS_PER_POST`] others on this post.
    LimitReached,
}

/// Adds a reaction (idempotent), up to [`MAX_REACTIONS_PER_POST`] per person and post.
/// The person's profile row is locked while counting, so concurrent additions of
/// distinct emoji cannot pass the cap together.
pub async fn add_reaction(
    conn: &mut AsyncPgConnection,
    post: Uuid,
    user: Uuid,
    emoji: &str,
) -> Result<ReactionAdded, Error> {
    conn.transaction::<_, Error, _>(async |conn| {
        profiles::table
            .find(user)
            .select(profiles::id)
            .for_no_key_update()
            .first::<Uuid>(conn)
            .await?;
        let mine: Vec<String> = reactions::table
            .filter(reactions::post_id.eq(post))
            .filter(reactions::user_id.eq(user))
            .select(reactions::emoji)
            .load(conn)
            .await?;
        if mine.iter().any(|e| e == emoji) {
            return Ok(ReactionAdded::Already);
        }
        if i64::try_from(mine.len()).unwrap_or(i64::MAX) >= MAX_REACTIONS_PER_POST {
            return Ok(ReactionAdded::LimitReached);
        }
        diesel::insert_into(reactions::table)
            .values((
                reactions::post_id.eq(post),
                reactions::user_id.eq(user),
                reactions::emoji.eq(emoji),
            ))
            .on_conflict_do_nothing()
            .execute(conn)
            .await?;
        Ok(ReactionAdded::Yes)
    })
    .await
}

/// Removes a reaction (idempotent); whether there was one.
pub async fn remove_reaction(
    conn: &mut AsyncPgConnection,
    post: Uuid,
    user: Uuid,
    emoji: &str,
) -> Result<bool, Error> {
    diesel::delete(reactions::table.find((post, user, emoji)))
        .execute(conn)
        .await
        .map(|n| n > 0)
}

#[derive(QueryableByName)]
pub struct ReactionSummary {
    #[diesel(sql_type = Jsonb)]
    pub reactions: serde_json::Value,
    #[diesel(sql_type = Array<Text>)]
    pub my_reactions: Vec<String>,
}

/// A post's reaction counts and the viewer's own reactions.
pub async fn reaction_summary(
    conn: &mut AsyncPgConnection,
    post: Uuid,
    viewer: Uuid,
) -> Result<ReactionSummary, Error> {
    static SQL: LazyLock<Statement> = LazyLock::new(|| {
        Statement::new(
            "SELECT coalesce((SELECT reaction_counts FROM posts WHERE id = $1), '{}') \
                        AS reactions, \
                    (SELECT coalesce(array_agg(emoji ORDER BY emoji), '{}') FROM reactions \
                       WHERE post_id = $1 AND user_id = $2) AS my_reactions",
        )
    });
    SQL.query()
        .bind::<SqlUuid, _>(post)
        .bind::<SqlUuid, _>(viewer)
        .get_result(conn)
        .await
}

/// What an erasure removed that others may have been told about: the person's posts
/// (others' notifications about what happened on them), and the comments of other
/// people that went with the person's own (replies in their threads).
#[derive(Debug, Default)]
pub struct Erased {
    pub posts: Vec<Uuid>,
    pub others_comments: Vec<Uuid>,
}

/// Erases everything of `person` (call it in a transaction): their reactions and
/// comments anywhere (a comment's replies go with it, as when it is deleted), their
/// posts with what others left on them, and their profile. The counters others see
/// follow through the triggers. Idempotent: a second run finds nothing.
pub async fn erase_person(conn: &mut AsyncPgConnection, person: Uuid) -> Result<Erased, Error> {
    #[derive(QueryableByName)]
    struct Gone {
        #[diesel(sql_type = SqlUuid)]
        id: Uuid,
    }
    let others: Vec<Gone> = diesel::sql_query(
        "WITH RECURSIVE thread AS ( \
           SELECT id, author_id FROM comments WHERE author_id = $1 \
           UNION SELECT c.id, c.author_id FROM comments c JOIN thread t ON c.parent_id = t.id) \
         SELECT t.id FROM thread t JOIN comments c ON c.id = t.id \
         JOIN posts p ON p.id = c.post_id \
         WHERE t.author_id <> $1 AND p.author_id <> $1",
    )
    .bind::<SqlUuid, _>(person)
    .load(conn)
    .await?;
    diesel::delete(reactions::table.filter(reactions::user_id.eq(person)))
        .execute(conn)
        .await?;
    diesel::delete(comments::table.filter(comments::author_id.eq(person)))
        .execute(conn)
        .await?;
    let posts: Vec<Uuid> = diesel::delete(posts::table.filter(posts::author_id.eq(person)))
        .returning(posts::id)
        .get_results(conn)
        .await?;
    diesel::delete(profiles::table.find(person))
        .execute(conn)
        .await?;
    Ok(Erased {
        posts,
        others_comments: others.into_iter().map(|g| g.id).collect(),
    })
}
