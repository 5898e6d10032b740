//! `POST /internal/notices`: the other services' notices, delivered by their outboxes
//! at least once and in any order (see `db` for how that is made safe).

use super::NotificationsState;
use crate::db;
use actix_web::{HttpResponse, web};
use agora_common::ApiResult;
use agora_common::client::ServiceCaller;
use agora_common::notices::{Change, Notice};

/// Applies one notice (service credential only).
pub async fn receive(
    state: web::Data<NotificationsState>,
    _service: ServiceCaller,
    body: agora_common::extract::Json<Notice>,
) -> ApiResult<HttpResponse> {
    let notice = body.0;
    if notice.change.is_own() {
        // Producers never send these; one that does changes nothing.
        return Ok(HttpResponse::NoContent().finish());
    }
    let applied = match notice.change {
        Change::Made { cause } => {
            // Asked now, when the notification is made: a block since the fact counts.
            let pair = state
                .relations
                .pair(cause.recipient, cause.actor.id, None)
                .await?;
            let mut conn = state.conn().await?;
            db::apply_made(&mut conn, notice.id, &cause, pair.blocked_either_way()).await?
        }
        Change::Undone { cause } => {
            db::apply_undone(&mut *state.conn().await?, notice.id, &cause).await?
        }
        Change::Gone { subject } => db::apply_gone(&mut *state.conn().await?, subject).await?,
        Change::Blocked { by, of } => db::apply_blocked(&mut *state.conn().await?, by, of).await?,
    };
    tracing::debug!(notice = %notice.id, ?applied, "notice applied");
    Ok(HttpResponse::NoContent().finish())
}
