//! Internal routes for other services (never routed by the gateway or the edge; the
//! service credential is required).

use super::EventsState;
use crate::db;
use agora_common::ApiResult;
use agora_common::accounts::AccountEraser;
use diesel_async::AsyncConnection;
use uuid::Uuid;

/// `DELETE /internal/accounts/{id}` (the kit's handler): the person's answers and the
/// events they organized go in one transaction; those events are gone for the
/// notifications service too.
impl AccountEraser for EventsState {
    async fn erase(&self, id: Uuid) -> ApiResult<()> {
        let notifier = &self.notifier;
        self.conn()
            .await?
            .transaction::<_, diesel::result::Error, _>(async |c| {
                let events = db::erase_person(c, id).await?;
                notifier.tell_gone(c, events).await
            })
            .await?;
        self.notifier.wake();
        Ok(())
    }
}

/// `GET /internal/accounts/{id}/export/events.json`: the events the person organized
/// (with their answer counts) and their own answers; organizers by id and username.
pub async fn export(
    state: actix_web::web::Data<EventsState>,
    _service: agora_common::client::ServiceCaller,
    path: actix_web::web::Path<(Uuid, String)>,
) -> ApiResult<actix_web::HttpResponse> {
    let (id, file) = path.into_inner();
    if file != "events.json" {
        return Err(agora_common::accounts::no_such_export_file());
    }
    agora_common::accounts::export_object(&state.pool, EVENTS, id).await
}

const EVENTS: &str = "SELECT jsonb_build_object( \
   'organized', (SELECT coalesce(jsonb_agg(jsonb_build_object( \
        'id', e.id, 'title', e.title, 'description', e.description, \
        'starts_at', e.starts_at, 'ends_at', e.ends_at, 'location', e.location, \
        'visibility', e.visibility, 'created_at', e.created_at, \
        'rsvp_counts', jsonb_build_object('going', e.going, 'interested', e.interested, \
                                          'not_going', e.not_going)) \
        ORDER BY e.starts_at, e.id), '[]') \
      FROM events e WHERE e.organizer_id = $1), \
   'answered', (SELECT coalesce(jsonb_agg(jsonb_build_object( \
        'event_id', e.id, 'title', e.title, 'starts_at', e.starts_at, \
        'organizer', jsonb_build_object('id', e.organizer_id, 'username', e.organizer_username), \
        'status', r.status, 'answered_at', r.updated_at) \
        ORDER BY e.starts_at, e.id), '[]') \
      FROM rsvps r JOIN events e ON e.id = r.event_id WHERE r.user_id = $1) \
 ) AS item";
