//! The auth service's paths and its OpenAPI document.

use crate::handlers::{self, AuthState};
use actix_web::web;
use agora_common::TokenVerifier;
use agora_common::client::ServiceToken;
use agora_common::routing::RoutePolicy;
use agora_common::server::Routes;
use std::sync::Arc;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Agora auth",
        description = "Accounts, tokens, JWKS and forward-auth."
    ),
    paths(
        handlers::register,
        handlers::login,
        handlers::refresh,
        handlers::logout,
        handlers::me,
        handlers::change_password,
        handlers::delete_me,
        handlers::deletion,
        handlers::start_export,
        handlers::export,
        handlers::export_archive,
        handlers::jwks,
        handlers::verify,
    )
)]
struct ApiDoc;

/// The OpenAPI document of this service.
pub fn openapi() -> serde_json::Value {
    agora_common::openapi::finish(ApiDoc::openapi())
}

/// What the edge must know: the `auth` area, the JWKS alias, and the public endpoints.
pub fn policy() -> RoutePolicy {
    RoutePolicy::new("auth", &["auth"])
        .extra_path("/.well-known/jwks.json")
        .public(&["POST"], "/api/v1/auth/register")
        .public(&["POST"], "/api/v1/auth/login")
        .public(&["POST"], "/api/v1/auth/refresh")
        .public(&["GET"], "/api/v1/auth/deletions/{deletion_id}")
        .public(&["GET"], "/api/v1/auth/jwks")
        .public(&["GET"], "/.well-known/jwks.json")
}

/// The route table.
pub fn routes(
    state: web::Data<AuthState>,
    verifier: web::Data<TokenVerifier>,
    service_token: Option<web::Data<ServiceToken>>,
) -> Routes {
    Arc::new(move |cfg: &mut web::ServiceConfig| {
        if let Some(token) = &service_token {
            // The credential of `/internal/revocations`.
            cfg.app_data(token.clone());
        }
        cfg.app_data(state.clone())
            .app_data(verifier.clone())
            .service(
                web::scope("/api/v1/auth")
                    .route("/register", web::post().to(handlers::register))
                    .route("/login", web::post().to(handlers::login))
                    .route("/refresh", web::post().to(handlers::refresh))
                    .route("/logout", web::post().to(handlers::logout))
                    .route("/me", web::get().to(handlers::me))
                    .route("/me", web::delete().to(handlers::delete_me))
                    .route("/deletions/{id}", web::get().to(handlers::deletion))
                    .route("/me/exports", web::post().to(handlers::start_export))
                    .route("/me/exports/{id}", web::get().to(handlers::export))
                    .route(
                        "/me/exports/{id}/archive",
                        web::get().to(handlers::export_archive),
                    )
                    .route("/password", web::put().to(handlers::change_password))
                    .route("/jwks", web::get().to(handlers::jwks))
                    .route("/verify", web::get().to(handlers::verify))
                    .route(
                        "/verify/{path:.*}",
                        web::route().to(handlers::verify_prefixed),
                    ),
            )
            .route("/.well-known/jwks.json", web::get().to(handlers::jwks))
            .route(
                agora_common::revocations::REVOCATIONS_PATH,
                web::get().to(handlers::revocations),
            );
    })
}
