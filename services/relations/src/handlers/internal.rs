//! Internal routes for other services (never routed by the gateway or the edge; the
//! service credential is required): account deliveries and relation lookups.

use super::RelationsState;
use crate::db;
use actix_web::web;
use agora_common::accounts::{AccountCreated, AccountStore};
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
