//! Internal routes for other services (never routed by the gateway or the edge; the
//! service credential is required): account deliveries and relation lookups.

use super::RelationsState;
use crate::db;
use actix_web::web;
use agora_common::accounts::{AccountCreated, AccountEraser, AccountStore};
use agora_common::client::ServiceCaller;
use agora_common::relations::{Counts, CountsRequest, Graph, MAX_COUNT_IDS, Pair};
use agora_common::{ApiError, ApiResult};
use std::collections::HashMap;
use uuid::Uuid;

/// `PUT /internal/accounts/{id}` (the kit's handler): an account exists, and may be
/// followed, befriended or blocked.
impl AccountStore for RelationsState {
    async fn record(&self, account: &AccountCreated) -> ApiResult<()> {
        let conn = &mut *self.conn().await?;
        db::upsert_account(conn, account.id, &account.username, account.created_at).await?;
        Ok(())
    }
}

/// `DELETE /internal/accounts/{id}` (the kit's handler): every relation of the person,
/// both ways, and their account go in one transaction.
impl AccountEraser for RelationsState {
    async fn erase(&self, id: Uuid) -> ApiResult<()> {
        let mut conn = self.conn().await?;
        agora_common::db::transaction_with_retry(&mut conn, |c| Box::pin(db::erase_person(c, id)))
            .await?;
        Ok(())
    }
}

/// `GET /internal/users/{id}/graph`: everyone the user is related to.
pub async fn graph(
    state: web::Data<RelationsState>,
    _service: ServiceCaller,
    path: web::Path<Uuid>,
) -> ApiResult<web::Json<Graph>> {
    Ok(web::Json(
        db::graph(&mut *state.conn().await?, path.into_inner()).await?,
    ))
}

/// `GET /internal/users/{id}/pair/{other}`: how the user relates to `other`.
pub async fn pair(
    state: web::Data<RelationsState>,
    _service: ServiceCaller,
    path: web::Path<(Uuid, Uuid)>,
) -> ApiResult<web::Json<Pair>> {
    let (user, other) = path.into_inner();
    Ok(web::Json(
        db::pair(&mut *state.conn().await?, user, other).await?,
    ))
}

/// `POST /internal/counts`: followers, following and friends of up to 100 users.
pub async fn counts(
    state: web::Data<RelationsState>,
    _service: ServiceCaller,
    body: agora_common::extract::Json<CountsRequest>,
) -> ApiResult<web::Json<HashMap<Uuid, Counts>>> {
    if body.ids.len() > MAX_COUNT_IDS {
        return Err(ApiError::invalid_field("ids", "at most 100 ids"));
    }
    let rows = db::counts(&mut *state.conn().await?, &body.ids).await?;
    Ok(web::Json(rows.into_iter().collect()))
}

/// `GET /internal/accounts/{id}/export/relations.json`: the person's relations, others
/// by id and username only. What others keep to themselves stays out: who likes the
/// person, and who blocks them.
pub async fn export(
    state: web::Data<RelationsState>,
    _service: ServiceCaller,
    path: web::Path<(Uuid, String)>,
) -> ApiResult<actix_web::HttpResponse> {
    let (id, file) = path.into_inner();
    if file != "relations.json" {
        return Err(agora_common::accounts::no_such_export_file());
    }
    agora_common::accounts::export_object(&state.pool, RELATIONS, id).await
}

const RELATIONS: &str = "SELECT jsonb_build_object( \
   'followers', (SELECT coalesce(jsonb_agg(jsonb_build_object('id', a.id, 'username', a.username, \
        'since', f.created_at) ORDER BY f.created_at), '[]') \
      FROM follows f JOIN accounts a ON a.id = f.follower_id WHERE f.followee_id = $1), \
   'following', (SELECT coalesce(jsonb_agg(jsonb_build_object('id', a.id, 'username', a.username, \
        'since', f.created_at) ORDER BY f.created_at), '[]') \
      FROM follows f JOIN accounts a ON a.id = f.followee_id WHERE f.follower_id = $1), \
   'friends', (SELECT coalesce(jsonb_agg(jsonb_build_object('id', a.id, 'username', a.username, \
        'since', x.created_at) ORDER BY x.created_at), '[]') \
      FROM friendships x JOIN accounts a ON a.id = x.friend_id WHERE x.user_id = $1), \
   'requests', jsonb_build_object( \
      'incoming', (SELECT coalesce(jsonb_agg(jsonb_build_object('id', r.id, \
           'from', jsonb_build_object('id', a.id, 'username', a.username), \
           'created_at', r.created_at) ORDER BY r.created_at), '[]') \
         FROM friend_requests r JOIN accounts a ON a.id = r.from_id WHERE r.to_id = $1), \
      'outgoing', (SELECT coalesce(jsonb_agg(jsonb_build_object('id', r.id, \
           'to', jsonb_build_object('id', a.id, 'username', a.username), \
           'created_at', r.created_at) ORDER BY r.created_at), '[]') \
         FROM friend_requests r JOIN accounts a ON a.id = r.to_id WHERE r.from_id = $1)), \
   'likes', (SELECT coalesce(jsonb_agg(jsonb_build_object('id', a.id, 'username', a.username, \
        'since', l.created_at) ORDER BY l.created_at), '[]') \
      FROM likes l JOIN accounts a ON a.id = l.likee_id WHERE l.liker_id = $1), \
   'matches', (SELECT coalesce(jsonb_agg(jsonb_build_object('id', a.id, 'username', a.username, \
        'since', m.created_at) ORDER BY m.created_at), '[]') \
      FROM matches m JOIN accounts a ON a.id = m.other_id WHERE m.user_id = $1), \
   'blocks', (SELECT coalesce(jsonb_agg(jsonb_build_object('id', a.id, 'username', a.username, \
        'since', b.created_at) ORDER BY b.created_at), '[]') \
      FROM blocks b JOIN accounts a ON a.id = b.blocked_id WHERE b.blocker_id = $1) \
 ) AS item";
