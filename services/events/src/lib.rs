//! The Agora events service: events with public or friends-only visibility (friends
//! as the relations service knows them, asked per request), listings over a time
//! window, organizer-only edits, RSVPs and attendee lists with counts per status.

mod db;
mod handlers;
pub mod model;
mod routes;
// The tables as diesel sees them, kept in step with the migrations by
// `hack/diesel-schema.sh`; the queries themselves are SQL (see `db`).
#[allow(dead_code)]
mod schema;

use actix_web::web;
use agora_common::client::ClientError;
use agora_common::config::{ConfigError, Env, ServiceBasics};
use agora_common::foundation::Foundation;
use agora_common::ops::DependencyReady;
use agora_common::relations::Relations;
use agora_common::{Service, TokenVerifier, db as common_db};
use diesel_migrations::{EmbeddedMigrations, embed_migrations};
use handlers::EventsState;

/// The service's schema migrations, run at start-up.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// Everything the events service needs to start.
#[derive(Debug, Clone)]
pub struct Config {
    /// Database, token verification, service credential.
    pub basics: ServiceBasics,
    /// `RELATIONS_URL`: the relations service's API (required: friends-only events
    /// and blocks are decided with it).
    pub relations_url: String,
    /// `NOTIFICATIONS_URL`: the notifications service's API, told of answers (none:
    /// nobody is told).
    pub notifications_url: Option<String>,
}

impl Config {
    /// Reads every setting, failing on the first bad one.
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        Ok(Self {
            basics: ServiceBasics::from_env(env)?,
            relations_url: env.required("RELATIONS_URL")?,
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
    /// The relations service's HTTP client.
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
    let foundation = Foundation::lay(basics, MIGRATIONS, "events", verifier).await?;
    let relations = basics.client("relations", &config.relations_url)?;
    let notifier = foundation
        .notifier("events", basics, config.notifications_url.as_deref())
        .await?;
    let state = web::Data::new(EventsState {
        pool: foundation.pool.clone(),
        relations: Relations(relations.clone()),
        notifier,
    });
    Ok(foundation
        .service(
            "events",
            routes::routes(state, foundation.clone()),
            routes::openapi(),
            routes::policy(),
        )
        .ready_when(DependencyReady(relations)))
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
