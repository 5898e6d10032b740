//! The events service's paths and its OpenAPI document.

use crate::handlers::{EventsState, events, internal, rsvps};
use actix_web::web;
use agora_common::accounts::account_erased;
use agora_common::foundation::Foundation;
use agora_common::routing::RoutePolicy;
use agora_common::server::Routes;
use std::sync::Arc;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Agora events",
        description = "Events with public or friends-only visibility, time-window listings, RSVPs and attendee lists."
    ),
    paths(
        events::create,
        events::list,
        events::get,
        events::update,
        events::delete,
        rsvps::set,
        rsvps::withdraw,
        rsvps::attendees,
    )
)]
struct ApiDoc;

/// The OpenAPI document of this service.
pub fn openapi() -> serde_json::Value {
    agora_common::openapi::finish(ApiDoc::openapi())
}

/// The `events` area; nothing is public.
pub fn policy() -> RoutePolicy {
    RoutePolicy::new("events", &["events"])
}

/// The route table.
pub fn routes(state: web::Data<EventsState>, foundation: Foundation) -> Routes {
    Arc::new(move |cfg: &mut web::ServiceConfig| {
        foundation
            .register(cfg)
            .app_data(state.clone())
            .service(
                web::scope("/api/v1/events")
                    .route("", web::post().to(events::create))
                    .route("", web::get().to(events::list))
                    .route("/{id}", web::get().to(events::get))
                    .route("/{id}", web::patch().to(events::update))
                    .route("/{id}", web::delete().to(events::delete))
                    .route("/{id}/rsvp", web::put().to(rsvps::set))
                    .route("/{id}/rsvp", web::delete().to(rsvps::withdraw))
                    .route("/{id}/attendees", web::get().to(rsvps::attendees)),
            )
            .route(
                "/internal/accounts/{id}",
                web::delete().to(account_erased::<EventsState>),
            )
            .route(
                "/internal/accounts/{id}/export/{file}",
                web::get().to(internal::export),
            );
    })
}
