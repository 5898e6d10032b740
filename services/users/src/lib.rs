//! The Agora users service: profiles, posts with comments and emoji reactions, and the
//! home feed. It stores text and links only (photos are references to the photos
//! service); who may see what is decided with the relations service, per request.

mod db;
mod dependencies;
pub mod emoji;
mod handlers;
pub mod model;
mod routes;
mod schema;

use actix_web::web;
use agora_common::client::ClientError;
use agora_common::config::{ConfigError, Env, ServiceBasics};
use agora_common::foundation::Foundation;
use agora_common::ops::DependencyReady;
use agora_common::relations::Relations;
use agora_common::{Service, TokenVerifier, db as common_db};
use dependencies::Photos;
use diesel_migrations::{EmbeddedMigrations, embed_migrations};
use handlers::UsersState;

/// The SQL of the two timelines (home feed, one author's posts), for benchmarks that
/// run it straight against PostgreSQL as the service does.
pub use db::{AUTHOR_PAGE_SQL, FEED_FEW_AUTHORS, FEED_FEW_SQL, FEED_MANY_SQL};

/// The service's schema migrations, run at start-up.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// Everything the users service needs to start.
#[derive(Debug, Clone)]
pub struct Config {
    /// Database, token verification, service credential.
    pub basics: ServiceBasics,
    /// `RELATIONS_URL`: the relations service's API (required: every visibility
    /// decision asks it).
    pub relations_url: String,
    /// `PHOTOS_URL`: the photos service's API; without it posts take no photos.
    pub photos_url: Option<String>,
    /// `NOTIFICATIONS_URL`: the notifications service's API, told of comments, replies
    /// and reactions (none: nobody is told).
    pub notifications_url: Option<String>,
}

impl Config {
    /// Reads every setting, failing on the first bad one.
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        Ok(Self {
            basics: ServiceBasics::from_env(env)?,
            relations_url: env.required("RELATIONS_URL")?,
            photos_url: env.raw("PHOTOS_URL"),
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
    /// A dependency's HTTP client.
    #[error(transparent)]
    Client(#[from] ClientError),
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
    let basics = &config.basics;
    let foundation = Foundation::lay(basics, MIGRATIONS, "users", verifier).await?;
    let relations = basics.client("relations", &config.relations_url)?;
    let photos = match &config.photos_url {
        Some(url) => Some(basics.client("photos", url)?),
        None => None,
    };
    let notifier = foundation
        .notifier("users", basics, config.notifications_url.as_deref())
        .await?;
    let state = web::Data::new(UsersState {
        pool: foundation.pool.clone(),
        relations: Relations(relations.clone()),
        photos: Photos(photos.clone()),
        notifier,
    });
    let mut service = foundation
        .service(
            "users",
            routes::routes(state, foundation.clone()),
            routes::openapi(),
            routes::policy(),
        )
        .ready_when(DependencyReady(relations));
    if let Some(photos) = photos {
        service = service.ready_when(DependencyReady(photos));
    }
    Ok(service)
}

/// Erases an account straight in this service's database at `database_url` (a restore
/// re-applying a logged erasure before the platform serves; `DELETE
/// /internal/accounts/{id}` does the same while the service runs).
pub async fn erase_account(
    database_url: &str,
    id: uuid::Uuid,
) -> Result<(), agora_common::db::DbError> {
    agora_common::accounts::erase_offline(database_url, |c| {
        Box::pin(async move { db::erase_person(c, id).await.map(drop) })
    })
    .await
}
