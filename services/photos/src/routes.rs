//! The photos service's paths and its OpenAPI document.

use crate::handlers::{PhotosState, content, internal, photos, search, upload};
use crate::model::{Photo, PhotoPage, ShareLink, TagList};
use actix_web::web;
use agora_common::foundation::Foundation;
use agora_common::routing::RoutePolicy;
use agora_common::server::Routes;
use std::sync::Arc;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Agora photos",
        description = "Photos: uploads (decoded, re-encoded without metadata, thumbnailed), visibility, share links, tag search."
    ),
    paths(
        upload::upload,
        search::list,
        search::tags,
        photos::get,
        photos::update,
        photos::delete,
        photos::share,
        content::content,
        content::thumbnail,
    ),
    components(schemas(Photo, PhotoPage, ShareLink, TagList))
)]
struct ApiDoc;

/// The OpenAPI document of this service (public routes only).
pub fn openapi() -> serde_json::Value {
    agora_common::openapi::finish(ApiDoc::openapi())
}

/// The `photos` area: a photo's bytes are public (the photo decides who may read them),
/// and an upload may carry the largest file plus the form around it.
pub fn policy(max_upload: usize) -> RoutePolicy {
    agora_common::photos::PUBLIC_PATHS
        .iter()
        .fold(RoutePolicy::new("photos", &["photos"]), |policy, path| {
            policy.public(&["GET"], path)
        })
        .max_body(max_upload + 64 * 1024)
}

/// The route table.
pub fn routes(state: web::Data<PhotosState>, foundation: Foundation) -> Routes {
    Arc::new(move |cfg: &mut web::ServiceConfig| {
        foundation
            .register(cfg)
            .app_data(state.clone())
            .service(
                web::scope("/api/v1/photos")
                    .route("", web::post().to(upload::upload))
                    .route("", web::get().to(search::list))
                    // A resource without a method guard, so `PATCH /tags` is a 405 here
                    // instead of falling through to `/{id}`.
                    .service(
                        web::resource("/tags")
                            .route(web::get().to(search::tags))
                            .default_service(web::to(
                                agora_common::server::not_found_or_not_allowed,
                            )),
                    )
                    .route("/{id}", web::get().to(photos::get))
                    .route("/{id}", web::patch().to(photos::update))
                    .route("/{id}", web::delete().to(photos::delete))
                    .route("/{id}/share-links", web::post().to(photos::share))
                    .route("/{id}/content", web::get().to(content::content))
                    .route("/{id}/thumbnail", web::get().to(content::thumbnail)),
            )
            .service(
                web::scope("/internal")
                    .route("/photos/usable", web::post().to(internal::usable))
                    .route(
                        "/accounts/{id}",
                        web::delete().to(agora_common::accounts::account_erased::<PhotosState>),
                    )
                    .route(
                        "/accounts/{id}/export/{file}",
                        web::get().to(internal::export),
                    )
                    .route(
                        "/accounts/{id}/export-files",
                        web::get().to(internal::export_files),
                    )
                    .route(
                        "/accounts/{id}/export-files/{photo}",
                        web::get().to(internal::export_file),
                    )
                    .route(
                        "/exports/{user}/{export}",
                        web::put().to(internal::put_archive),
                    )
                    .route(
                        "/exports/{user}/{export}",
                        web::get().to(internal::get_archive),
                    )
                    .route(
                        "/exports/{user}/{export}",
                        web::delete().to(internal::delete_archive),
                    ),
            );
    })
}
