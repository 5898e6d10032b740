//! The relations service's paths and its OpenAPI document.

use crate::handlers::{RelationsState, blocks, follows, friends, internal, likes, people};
use actix_web::web;
use agora_common::accounts::{account_created, account_erased};
use agora_common::foundation::Foundation;
use agora_common::routing::RoutePolicy;
use agora_common::server::Routes;
use std::sync::Arc;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Agora relations",
        description = "Follows, friends and friend requests, match likes, blocks and suggestions."
    ),
    paths(
        follows::follow,
        follows::unfollow,
        people::followers,
        people::following,
        people::friends,
        people::summary,
        people::suggestions,
        friends::send,
        friends::list,
        friends::accept,
        friends::decline,
        friends::cancel,
        friends::unfriend,
        likes::like,
        likes::unlike,
        likes::matches,
        blocks::block,
        blocks::unblock,
        blocks::list,
    )
)]
struct ApiDoc;

/// The OpenAPI document of this service (public routes only).
pub fn openapi() -> serde_json::Value {
    agora_common::openapi::finish(ApiDoc::openapi())
}

/// The `relations` area; nothing is public.
pub fn policy() -> RoutePolicy {
    RoutePolicy::new("relations", &["relations"])
}

/// The route table.
pub fn routes(state: web::Data<RelationsState>, foundation: Foundation) -> Routes {
    Arc::new(move |cfg: &mut web::ServiceConfig| {
        foundation
            .register(cfg)
            .app_data(state.clone())
            .service(
                web::scope("/api/v1/relations")
                    .route("/following/{user_id}", web::put().to(follows::follow))
                    .route("/following/{user_id}", web::delete().to(follows::unfollow))
                    .route("/users/{id}/followers", web::get().to(people::followers))
                    .route("/users/{id}/following", web::get().to(people::following))
                    .route("/users/{id}/friends", web::get().to(people::friends))
                    .route("/users/{id}/summary", web::get().to(people::summary))
                    .route("/suggestions", web::get().to(people::suggestions))
                    .route("/friend-requests", web::post().to(friends::send))
                    .route("/friend-requests", web::get().to(friends::list))
                    .route(
                        "/friend-requests/{id}/accept",
                        web::post().to(friends::accept),
                    )
                    .route(
                        "/friend-requests/{id}/decline",
                        web::post().to(friends::decline),
                    )
                    .route("/friend-requests/{id}", web::delete().to(friends::cancel))
                    .route("/friends/{user_id}", web::delete().to(friends::unfriend))
                    .route("/likes/{user_id}", web::put().to(likes::like))
                    .route("/likes/{user_id}", web::delete().to(likes::unlike))
                    .route("/matches", web::get().to(likes::matches))
                    .route("/blocks/{user_id}", web::put().to(blocks::block))
                    .route("/blocks/{user_id}", web::delete().to(blocks::unblock))
                    .route("/blocks", web::get().to(blocks::list)),
            )
            .service(
                web::scope("/internal")
                    .route(
                        "/accounts/{id}",
                        web::put().to(account_created::<RelationsState>),
                    )
                    .route(
                        "/accounts/{id}",
                        web::delete().to(account_erased::<RelationsState>),
                    )
                    .route(
                        "/accounts/{id}/export/{file}",
                        web::get().to(internal::export),
                    )
                    .route("/users/{id}/graph", web::get().to(internal::graph))
                    .route("/users/{id}/pair/{other}", web::get().to(internal::pair))
                    .route("/counts", web::post().to(internal::counts)),
            );
    })
}
