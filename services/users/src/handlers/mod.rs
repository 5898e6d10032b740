//! Request handlers: extract, authorize, one query, map to the response.

pub mod comments;
pub mod internal;
pub mod posts;
pub mod profiles;
pub mod reactions;

use crate::db::{self, PostRow};
use crate::dependencies::Photos;
use crate::model::{Author, Post, PostPhoto, Visibility};
use actix_web::HttpRequest;
use agora_common::db::{DbConn, DbPool};
use agora_common::relations::Pair;
use agora_common::relations::Relations;
use agora_common::{ApiError, ApiResult, Caller};
use std::borrow::Cow;
use std::collections::BTreeMap;
use uuid::Uuid;

/// Everything the handlers share.
pub struct UsersState {
    pub pool: DbPool,
    pub relations: Relations,
    pub photos: Photos,
    /// Tells the notifications service of comments, replies and reactions.
    pub notifier: agora_common::notices::Notifier,
}

impl UsersState {
    /// A pooled connection (503 when the database is unavailable).
    pub async fn conn(&self) -> ApiResult<DbConn> {
        Ok(agora_common::db::checkout(&self.pool).await?)
    }

    /// A post the caller may see, with its details, else 404 (whether it exists or not).
    pub async fn visible_post(
        &self,
        caller: &Caller,
        id: Uuid,
        req: &HttpRequest,
    ) -> ApiResult<PostRow> {
        // The connection goes back to the pool before the relations call.
        let post = db::post(&mut *self.conn().await?, caller.user_id, id)
            .await?
            .ok_or_else(no_such_post)?;
        let visibility = Visibility::parse(&post.visibility);
        self.check_visible(caller, post.author_id, visibility, req)
            .await?;
        Ok(post)
    }

    /// The author of a post the caller may see, else 404: for actions on a post
    /// (comments, reactions, deletion) that need no details of it.
    pub async fn visible_post_author(
        &self,
        caller: &Caller,
        id: Uuid,
        req: &HttpRequest,
    ) -> ApiResult<Uuid> {
        let (author, visibility) = db::post_access(&mut *self.conn().await?, id)
            .await?
            .ok_or_else(no_such_post)?;
        self.check_visible(caller, author, Visibility::parse(&visibility), req)
            .await?;
        Ok(author)
    }

    async fn check_visible(
        &self,
        caller: &Caller,
        author: Uuid,
        visibility: Visibility,
        req: &HttpRequest,
    ) -> ApiResult<()> {
        if author == caller.user_id {
            return Ok(());
        }
        if visibility == Visibility::Private {
            return Err(no_such_post());
        }
        let pair = self
            .relations
            .pair(caller.user_id, author, Some(req))
            .await?;
        if may_see(visibility, &pair) {
            Ok(())
        } else {
            Err(no_such_post())
        }
    }
}

/// Whether someone related to an author by `pair` (theirs towards the author) may see
/// a post of that author (the author always sees their own).
pub fn may_see(visibility: Visibility, pair: &Pair) -> bool {
    !pair.blocked_by
        && match visibility {
            Visibility::Public => true,
            Visibility::Friends => pair.friend,
            Visibility::Private => false,
        }
}

pub fn no_such_post() -> ApiError {
    ApiError::NotFound(Cow::Borrowed("no such post"))
}

/// Reaction counts as the database aggregates them (`{"👍": 3}`).
pub fn reaction_counts(value: serde_json::Value) -> BTreeMap<String, i64> {
    match value {
        serde_json::Value::Object(map) => map
            .into_iter()
            .filter_map(|(emoji, n)| n.as_i64().map(|n| (emoji, n)))
            .collect(),
        _ => BTreeMap::new(),
    }
}

/// The API view of a post row.
pub fn post_view(row: PostRow) -> Post {
    let reactions = reaction_counts(row.reactions);
    Post {
        id: row.id,
        author: Author {
            id: row.author_id,
            username: row.author_username,
        },
        text: row.text,
        links: row.links,
        photos: row
            .photo_ids
            .into_iter()
            .map(|id| PostPhoto {
                id,
                url: agora_common::photos::content_url(id),
            })
            .collect(),
        visibility: Visibility::parse(&row.visibility),
        created_at: row.created_at,
        updated_at: row.updated_at,
        comment_count: row.comment_count,
        reactions,
        my_reactions: row.my_reactions,
    }
}
