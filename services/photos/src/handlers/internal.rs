//! What other services ask (service credential required; never routed publicly).

use super::PhotosState;
use crate::db;
use actix_web::web;
use agora_common::client::ServiceCaller;
use agora_common::photos::{UsableRequest, UsableResponse};
use agora_common::{ApiError, ApiResult};

/// `POST /internal/photos/usable`: which of these photos the owner may use in a post or
/// as an avatar (their own, and public ones).
pub async fn usable(
    state: web::Data<PhotosState>,
    _service: ServiceCaller,
    body: agora_common::extract::Json<UsableRequest>,
) -> ApiResult<web::Json<UsableResponse>> {
    let request = body.into_inner();
    if request.ids.len() > 100 {
        return Err(ApiError::invalid_field("ids", "at most 100"));
    }
    let usable = db::usable(&mut *state.conn().await?, request.owner, &request.ids).await?;
    Ok(web::Json(UsableResponse { usable }))
}
