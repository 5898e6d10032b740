//! The users service's paths and its OpenAPI document.

use crate::handlers::{UsersState, comments, internal, posts, profiles, reactions};
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
        title = "Agora users",
        description = "Profiles, posts, comments, emoji reactions and the home feed (text and links only)."
    ),
    paths(
        profiles::me,
        profiles::update_me,
        profiles::get,
        profiles::search,
        posts::by_author,
        posts::create,
        posts::get,
        posts::update,
        posts::delete,
        posts::feed,
        comments::create,
        comments::list,
        comments::delete,
        reactions::add,
        reactions::remove,
    )
)]
struct ApiDoc;

/// The OpenAPI document of this service (public routes only). The `{emoji}` parameter
/// lists every accepted emoji, so clients and the contract fuzzer know the set.
pub fn openapi() -> serde_json::Value {
    let mut doc = agora_common::openapi::finish(ApiDoc::openapi());
    let emoji = serde_json::json!({"type": "string", "enum": crate::emoji::all()});
    if let Some(item) = doc
        .pointer_mut("/paths/~1api~1v1~1posts~1{id}~1reactions~1{emoji}")
        .and_then(serde_json::Value::as_object_mut)
    {
        for operation in item.values_mut() {
            let params = operation
                .get_mut("parameters")
                .and_then(serde_json::Value::as_array_mut);
            for param in params.into_iter().flatten() {
                if param["name"] == "emoji" {
                    param["schema"] = emoji.clone();
                }
            }
        }
    }
    doc
}

/// The `users`, `posts` and `feed` areas; nothing is public.
pub fn policy() -> RoutePolicy {
    RoutePolicy::new("users", &["users", "posts", "feed"])
}

/// The route table.
pub fn routes(state: web::Data<UsersState>, foundation: Foundation) -> Routes {
    Arc::new(move |cfg: &mut web::ServiceConfig| {
        foundation
            .register(cfg)
            .app_data(state.clone())
            .service(
                web::scope("/api/v1/users")
                    .route("", web::get().to(profiles::search))
                    .route("/me", web::get().to(profiles::me))
                    .route("/me", web::patch().to(profiles::update_me))
                    .route("/{id}", web::get().to(profiles::get))
                    .route("/{id}/posts", web::get().to(posts::by_author)),
            )
            .service(
                web::scope("/api/v1/posts")
                    .route("", web::post().to(posts::create))
                    .route("/{id}", web::get().to(posts::get))
                    .route("/{id}", web::patch().to(posts::update))
                    .route("/{id}", web::delete().to(posts::delete))
                    .route("/{id}/comments", web::post().to(comments::create))
                    .route("/{id}/comments", web::get().to(comments::list))
                    .route(
                        "/{id}/comments/{comment_id}",
                        web::delete().to(comments::delete),
                    )
                    .route("/{id}/reactions/{emoji}", web::put().to(reactions::add))
                    .route(
                        "/{id}/reactions/{emoji}",
                        web::delete().to(reactions::remove),
                    ),
            )
            .route("/api/v1/feed", web::get().to(posts::feed))
            .route(
                "/internal/accounts/{id}",
                web::put().to(account_created::<UsersState>),
            )
            .route(
                "/internal/accounts/{id}",
                web::delete().to(account_erased::<UsersState>),
            )
            .route(
                "/internal/accounts/{id}/export/{file}",
                web::get().to(internal::export),
            );
    })
}
