//! Internal routes for other services (never routed by the gateway or the edge; the
//! service credential is required).

use super::UsersState;
use crate::db;
use actix_web::{HttpResponse, web};
use agora_common::ApiResult;
use agora_common::accounts::AccountCreated;
use agora_common::client::ServiceCaller;
use uuid::Uuid;

/// `PUT /internal/accounts/{id}`: an account exists; its profile is created
/// (idempotent: the auth service's outbox delivers at least once).
pub async fn account_created(
    state: web::Data<UsersState>,
    _service: ServiceCaller,
    path: web::Path<Uuid>,
    body: agora_common::extract::Json<AccountCreated>,
) -> ApiResult<HttpResponse> {
    body.check_path(path.into_inner())?;
    db::upsert_profile(
        &mut *state.conn().await?,
        body.id,
        &body.username,
        body.created_at,
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
