//! The Agora notifications service: notifications made from the notices the other
//! services deliver through their outboxes (follows, friend requests, matches,
//! comments, replies, reactions grouped per post, RSVPs, reused photos), read marks,
//! muted kinds, and a live stream (server-sent events) that every replica serves from
//! PostgreSQL's `LISTEN`/`NOTIFY`.

mod db;
mod handlers;
pub mod model;
mod routes;
// The tables as diesel sees them, kept in step with the migrations by
// `hack/diesel-schema.sh`; the queries themselves are SQL (see `db`).
#[allow(dead_code)]
mod schema;
mod streams;

use actix_web::web;
use agora_common::client::ClientError;
use agora_common::config::{ConfigError, Env, ServiceBasics};
use agora_common::foundation::Foundation;
use agora_common::ops::DependencyReady;
use agora_common::relations::Relations;
use agora_common::{Service, TokenVerifier, db as common_db};
use diesel_migrations::{EmbeddedMigrations, embed_migrations};
use handlers::NotificationsState;
use std::time::Duration;
use streams::Streams;

pub use routes::STREAM_PATH;

/// The service's schema migrations, run at start-up.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// Everything the notifications service needs to start.
#[derive(Debug, Clone)]
pub struct Config {
    /// Database, token verification, service credential.
    pub basics: ServiceBasics,
    /// `RELATIONS_URL`: the relations service's API (blocks are checked with it when a
    /// notification is made).
    pub relations_url: String,
    /// `NOTIFICATIONS_HEARTBEAT_SECS` (default 15): the comment line that keeps idle
    /// streams open through proxies.
    pub heartbeat: Duration,
    /// `NOTIFICATIONS_STREAMS_PER_USER` (default 5): open streams one user may have,
    /// across replicas.
    pub streams_per_user: i64,
}

impl Config {
    /// Reads every setting, failing on the first bad one.
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        Ok(Self {
            basics: ServiceBasics::from_env(env)?,
            relations_url: env.required("RELATIONS_URL")?,
            heartbeat: Duration::from_secs(env.int_in(
                "NOTIFICATIONS_HEARTBEAT_SECS",
                15,
                1..=300,
            )?),
            streams_per_user: env.int_in("NOTIFICATIONS_STREAMS_PER_USER", 5, 1..=100)?,
        })
    }

    /// The defaults beside `basics` and the relations service.
    pub fn new(basics: ServiceBasics, relations_url: String) -> Self {
        Self {
            basics,
            relations_url,
            heartbeat: Duration::from_secs(15),
            streams_per_user: 5,
        }
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
}

/// Migrates the database and builds the service, ready to serve.
pub async fn build(config: Config) -> Result<Service, StartError> {
    let verifier = config.basics.verifier();
    build_with(config, verifier).await
}

/// How often a replica refreshes its open streams' registrations and cleans up.
const HOUSEKEEPING: Duration = Duration::from_secs(20);

/// [`build`] with a given token verifier (tests use fixed keys).
pub async fn build_with(config: Config, verifier: TokenVerifier) -> Result<Service, StartError> {
    let basics = &config.basics;
    let foundation = Foundation::lay(basics, MIGRATIONS, "notifications", verifier).await?;
    let relations = basics.client("relations", &config.relations_url)?;
    let streams = Streams::new(foundation.pool.clone(), config.heartbeat);
    tokio::spawn(agora_common::telemetry::in_service(
        "notifications",
        streams.clone().listen(basics.database_url.clone()),
    ));
    tokio::spawn(agora_common::telemetry::in_service(
        "notifications",
        housekeeping(streams.clone(), foundation.pool.clone()),
    ));
    let state = web::Data::new(NotificationsState {
        pool: foundation.pool.clone(),
        relations: Relations(relations.clone()),
        streams: streams.clone(),
        streams_per_user: config.streams_per_user,
        ticket_ttl: Duration::from_secs(60),
    });
    let mut service = foundation
        .service(
            "notifications",
            routes::routes(state, foundation.clone()),
            routes::openapi(),
            routes::policy(),
        )
        .ready_when(DependencyReady(relations));
    service.metrics.registry_mut().register(
        "notifications_open_streams",
        "Notification streams this replica holds open",
        streams.gauge(),
    );
    Ok(service)
}

async fn housekeeping(streams: Streams, pool: common_db::DbPool) {
    let mut every = tokio::time::interval(HOUSEKEEPING);
    loop {
        every.tick().await;
        let result = match pool.get().await {
            Ok(mut conn) => db::housekeeping(
                &mut conn,
                &streams.ids(),
                handlers::stream::STALE_STREAM_SECS,
            )
            .await
            .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(error) = result {
            tracing::warn!(%error, "notifications housekeeping failed; retried shortly");
        }
    }
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
