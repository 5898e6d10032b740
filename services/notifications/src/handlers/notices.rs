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

/// `DELETE /internal/accounts/{id}` (the kit's handler): the person's notifications,
/// their part in others' and their preferences go in one transaction; what others'
/// streams showed of them is withdrawn there.
impl agora_common::accounts::AccountEraser for NotificationsState {
    async fn erase(&self, id: uuid::Uuid) -> ApiResult<()> {
        db::erase_person(&mut *self.conn().await?, id).await?;
        Ok(())
    }
}

/// `GET /internal/accounts/{id}/export/notifications.json`: the notifications the
/// person received, oldest first, actors by id and username; streamed page by page.
pub async fn export(
    state: web::Data<NotificationsState>,
    _service: ServiceCaller,
    path: web::Path<(uuid::Uuid, String)>,
) -> ApiResult<HttpResponse> {
    let (id, file) = path.into_inner();
    if file != "notifications.json" {
        return Err(agora_common::accounts::no_such_export_file());
    }
    Ok(agora_common::accounts::export_rows(
        state.pool.clone(),
        NOTIFICATIONS,
        id,
    ))
}

const NOTIFICATIONS: &str = "SELECT n.id AS key, jsonb_build_object( \
       'id', n.id, 'kind', n.kind, \
       'subject', jsonb_build_object('type', n.subject_type, 'id', n.subject_id, \
                                     'post_id', n.post_id, 'photo_id', n.photo_id), \
       'actors', (SELECT coalesce(jsonb_agg(DISTINCT jsonb_build_object( \
                     'id', c.actor_id, 'username', c.actor_username)), '[]') \
                  FROM notification_causes c WHERE c.notification_id = n.id), \
       'created_at', n.created_at, 'updated_at', n.updated_at, 'read_at', n.read_at) AS item \
     FROM notifications n WHERE n.recipient = $1 AND ($2::uuid IS NULL OR n.id > $2) \
     ORDER BY n.id LIMIT $3";
