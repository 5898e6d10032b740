//! What other services ask (service credential required; never routed publicly).

use super::PhotosState;
use crate::db;
use actix_web::{HttpRequest, web};
use agora_common::client::ServiceCaller;
use agora_common::photos::{UsableRequest, UsableResponse};
use agora_common::{ApiError, ApiResult};

/// `POST /internal/photos/usable`: which of these photos the owner may use in a post or
/// as an avatar (their own, and public ones of people not blocked either way), and
/// which of those are public.
pub async fn usable(
    state: web::Data<PhotosState>,
    _service: ServiceCaller,
    body: agora_common::extract::Json<UsableRequest>,
    req: HttpRequest,
) -> ApiResult<web::Json<UsableResponse>> {
    let request = body.into_inner();
    if request.ids.len() > 100 {
        return Err(ApiError::invalid_field("ids", "at most 100"));
    }
    let rows = db::usable(&mut *state.conn().await?, request.owner, &request.ids).await?;
    let hidden = if rows.iter().any(|r| r.owner_id != request.owner) {
        state.hidden_owners(request.owner, &req).await?
    } else {
        Vec::new()
    };
    let rows: Vec<_> = rows
        .into_iter()
        .filter(|r| !hidden.contains(&r.owner_id))
        .collect();
    Ok(web::Json(UsableResponse {
        usable: rows.iter().map(|r| r.id).collect(),
        public: rows.iter().filter(|r| r.public).map(|r| r.id).collect(),
        owners: rows
            .iter()
            .filter(|r| r.public)
            .map(|r| (r.id, r.owner_id))
            .collect(),
    }))
}
