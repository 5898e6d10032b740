//! The Agora relations service: follows, friend requests and friendships, "match"
//! likes, blocks, suggestions, and the lookups other services make to apply
//! visibility (internal routes).

mod db;
mod handlers;
pub mod model;
mod routes;
mod schema;

use actix_web::web;
use agora_common::config::{ConfigError, Env, ServiceBasics};
use agora_common::foundation::Foundation;
use agora_common::{Service, TokenVerifier, db as common_db};
use diesel_migrations::{EmbeddedMigrations, embed_migrations};
use handlers::RelationsState;

/// The service's schema migrations, run at start-up.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// Everything the relations service needs to start.
#[derive(Debug, Clone)]
pub struct Config {
    /// Database, token verification, service credential.
    pub basics: ServiceBasics,
    /// `NOTIFICATIONS_URL`: the notifications service's API, told of follows, friend
    /// requests, matches and blocks (none: nobody is told).
    pub notifications_url: Option<String>,
}

impl Config {
    /// Reads every setting, failing on the first bad one.
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        Ok(Self {
            basics: ServiceBasics::from_env(env)?,
            notifications_url: env.raw("NOTIFICATIONS_URL"),
        })
    }
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Database pool or migrations.
    #[error(transparent)]
    Database(#[from] common_db::DbError),
    /// The outbox to the notifications service.
    #[error(transparent)]
    Notifier(#[from] agora_common::foundation::NotifierError),
}

/// Migrates the database and builds the service, ready to serve.
pub async fn build(config: Config) -> Result<Service, StartError> {
    let verifier = config.basics.verifier();
    build_with(config, verifier).await
}

/// [`build`] with a given token verifier (tests use fixed keys).
pub async fn build_with(config: Config, verifier: TokenVerifier) -> Result<Service, StartError> {
    let foundation = Foundation::lay(&config.basics, MIGRATIONS, "relations", verifier).await?;
    let notifier = foundation
        .notifier(
            "relations",
            &config.basics,
            config.notifications_url.as_deref(),
        )
        .await?;
    let state = web::Data::new(RelationsState {
        pool: foundation.pool.clone(),
        notifier,
    });
    Ok(foundation.service(
        "relations",
        routes::routes(state, foundation.clone()),
        routes::openapi(),
        routes::policy(),
    ))
}

/// Erases an account straight in this service's database at `database_url` (a restore
/// re-applying a logged erasure before the platform serves; `DELETE
/// /internal/accounts/{id}` does the same while the service runs).
pub async fn erase_account(
    database_url: &str,
    id: uuid::Uuid,
) -> Result<(), agora_common::db::DbError> {
    agora_common::accounts::erase_offline(database_url, |c| {
        Box::pin(async move { db::erase_person(c, id).await })
    })
    .await
}
