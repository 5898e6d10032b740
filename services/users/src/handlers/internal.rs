//! Internal routes for other services (never routed by the gateway or the edge; the
//! service credential is required).

use super::UsersState;
use crate::db;
use agora_common::ApiResult;
use agora_common::accounts::{AccountCreated, AccountEraser, AccountStore};
use diesel_async::AsyncConnection;
use uuid::Uuid;

/// `PUT /internal/accounts/{id}` (the kit's handler): an account exists; its profile
/// is created.
impl AccountStore for UsersState {
    async fn record(&self, account: &AccountCreated) -> ApiResult<()> {
        let conn = &mut *self.conn().await?;
        db::upsert_profile(conn, account.id, &account.username, account.created_at).await?;
        Ok(())
    }
}

/// `DELETE /internal/accounts/{id}` (the kit's handler): the person's profile, posts,
/// comments and reactions go, in one transaction. Their posts, and replies of others
/// that went with their comments, are gone for the notifications service too.
impl AccountEraser for UsersState {
    async fn erase(&self, id: Uuid) -> ApiResult<()> {
        let notifier = &self.notifier;
        self.conn()
            .await?
            .transaction::<_, diesel::result::Error, _>(async |c| {
                let erased = db::erase_person(c, id).await?;
                notifier
                    .tell_gone(c, erased.posts.into_iter().chain(erased.others_comments))
                    .await
            })
            .await?;
        self.notifier.wake();
        Ok(())
    }
}

/// `GET /internal/accounts/{id}/export/{file}`: the person's part of their export —
/// `profile.json`, `posts.json` (with their comment and reaction counts),
/// `comments.json` and `reactions.json`, streamed page by page.
pub async fn export(
    state: actix_web::web::Data<UsersState>,
    _service: agora_common::client::ServiceCaller,
    path: actix_web::web::Path<(Uuid, String)>,
) -> ApiResult<actix_web::HttpResponse> {
    use agora_common::accounts::{export_object, export_rows, no_such_export_file};
    let (id, file) = path.into_inner();
    let pool = state.pool.clone();
    Ok(match file.as_str() {
        "profile.json" => export_object(&pool, PROFILE, id).await?,
        "posts.json" => export_rows(pool, POSTS, id),
        "comments.json" => export_rows(pool, COMMENTS, id),
        "reactions.json" => export_rows(pool, REACTIONS, id),
        _ => return Err(no_such_export_file()),
    })
}

const PROFILE: &str = "SELECT coalesce((SELECT jsonb_build_object( \
       'id', id, 'username', username, 'display_name', display_name, 'bio', bio, \
       'avatar_url', avatar_url, 'location', location, 'website', website, \
       'created_at', created_at, 'updated_at', updated_at) \
     FROM profiles WHERE id = $1), 'null'::jsonb) AS item";

const POSTS: &str = "SELECT id AS key, jsonb_build_object( \
       'id', id, 'text', text, 'links', links, 'photo_ids', photo_ids, \
       'visibility', visibility, 'created_at', created_at, 'updated_at', updated_at, \
       'comment_count', comment_count, 'reactions', reaction_counts) AS item \
     FROM posts WHERE author_id = $1 AND ($2::uuid IS NULL OR id > $2) \
     ORDER BY id LIMIT $3";

const COMMENTS: &str = "SELECT id AS key, jsonb_build_object( \
       'id', id, 'post_id', post_id, 'parent_id', parent_id, 'text', text, \
       'created_at', created_at) AS item \
     FROM comments WHERE author_id = $1 AND ($2::uuid IS NULL OR id > $2) \
     ORDER BY id LIMIT $3";

/// One item per post: the person's reactions on it.
const REACTIONS: &str = "SELECT post_id AS key, jsonb_build_object( \
       'post_id', post_id, \
       'reactions', jsonb_agg(jsonb_build_object('emoji', emoji, 'created_at', created_at) \
                              ORDER BY emoji)) AS item \
     FROM reactions WHERE user_id = $1 AND ($2::uuid IS NULL OR post_id > $2) \
     GROUP BY post_id ORDER BY post_id LIMIT $3";
