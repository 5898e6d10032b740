//! The notifications service's paths and its OpenAPI document.

use crate::handlers::{NotificationsState, list, notices, stream};
use actix_web::web;
use agora_common::foundation::Foundation;
use agora_common::routing::RoutePolicy;
use agora_common::server::Routes;
use std::sync::Arc;
use utoipa::OpenApi;

pub use agora_common::notices::STREAM_PATH;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Agora notifications",
        description = "Notifications made from what the other services record: the list, read marks, preferences and a live stream."
    ),
    paths(
        list::list,
        list::unread_count,
        list::read,
        list::preferences,
        list::set_preferences,
        stream::stream,
        stream::ticket,
    )
)]
struct ApiDoc;

/// The OpenAPI document of this service.
pub fn openapi() -> serde_json::Value {
    agora_common::openapi::finish(ApiDoc::openapi())
}

/// The `notifications` area; the stream is public at the edge (the service checks
/// its credential itself).
pub fn policy() -> RoutePolicy {
    RoutePolicy::new("notifications", &["notifications"])
        .public(&["GET"], STREAM_PATH)
        .streaming(&["GET"], STREAM_PATH)
}

/// The route table.
pub fn routes(state: web::Data<NotificationsState>, foundation: Foundation) -> Routes {
    Arc::new(move |cfg: &mut web::ServiceConfig| {
        foundation
            .register(cfg)
            .app_data(state.clone())
            .service(
                web::scope("/api/v1/notifications")
                    .route("", web::get().to(list::list))
                    .route("/unread-count", web::get().to(list::unread_count))
                    .route("/read", web::post().to(list::read))
                    .route("/preferences", web::get().to(list::preferences))
                    .route("/preferences", web::put().to(list::set_preferences))
                    .route("/stream", web::get().to(stream::stream))
                    .route("/stream-tickets", web::post().to(stream::ticket)),
            )
            .route(
                agora_common::notices::NOTICES_PATH,
                web::post().to(notices::receive),
            )
            .route(
                "/internal/accounts/{id}",
                web::delete().to(agora_common::accounts::account_erased::<NotificationsState>),
            )
            .route(
                "/internal/accounts/{id}/export/{file}",
                web::get().to(notices::export),
            );
    })
}
