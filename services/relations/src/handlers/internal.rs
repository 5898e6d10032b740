//! Internal routes for other services (never routed by the gateway or the edge; the
//! service credential is required): account deliveries and relation lookups.

use super::RelationsState;
use crate::db;
use actix_web::{HttpResponse, web};
use agora_common::accounts::AccountCreated;
use agora_common::client::ServiceCaller;
use agora_common::relations::{Counts, CountsRequest, Graph, MAX_COUNT_IDS, Pair};
use agora_common::{ApiError, ApiResult};
use std::collections::HashMap;
use uuid::Uuid;

/// `PUT /internal/accounts/{id}`: an account exists (idempotent).
pub async fn account_created(
    state: web::Data<RelationsState>,
    _service: ServiceCaller,
    path: web::Path<Uuid>,
    body: agora_common::extract::Json<AccountCreated>,
) -> ApiResult<HttpResponse> {
    body.check_path(path.into_inner())?;
    db::upsert_account(
        &mut *state.conn().await?,
        body.id,
        &body.username,
        body.created_at,
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
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
