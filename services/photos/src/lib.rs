//! The Agora photos service: uploads decoded under limits and re-encoded without
//! metadata, thumbnails, content-addressed storage in a directory or any S3-compatible
//! store, public/private visibility, signed share links, and tag search.

mod db;
mod handlers;
pub mod imaging;
pub mod links;
pub mod model;
mod routes;
// The tables as diesel sees them, kept in step with the migrations by
// `hack/diesel-schema.sh`; the queries themselves are SQL (see `db`).
#[allow(dead_code)]
mod schema;
pub mod storage;

use actix_web::web;
use agora_common::config::{ConfigError, Env, ServiceBasics};
use agora_common::foundation::Foundation;
use agora_common::ops::DependencyReady;
use agora_common::{Service, TokenVerifier, db as common_db};
use diesel_migrations::{EmbeddedMigrations, embed_migrations};
use handlers::PhotosState;
use imaging::DecodeLimits;
use links::LinkSigner;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use std::sync::Arc;
use storage::{Storage, StorageConfig, StorageError};

/// The service's schema migrations, run at start-up.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// Default largest upload: 10 MiB.
pub const DEFAULT_MAX_UPLOAD: usize = 10 * 1024 * 1024;

/// Everything the photos service needs to start.
#[derive(Debug, Clone)]
pub struct Config {
    /// Database, token verification, service credential.
    pub basics: ServiceBasics,
    /// Where the bytes go.
    pub storage: StorageConfig,
    /// Signs share links (`PHOTOS_SHARE_LINK_KEY`, at least 32 bytes; never logged).
    pub share_link_key: Vec<u8>,
    /// `PHOTOS_MAX_UPLOAD_BYTES` (default 10 MiB).
    pub max_upload: usize,
    /// `PHOTOS_MAX_PIXELS_SIDE` (default 8192).
    pub limits: DecodeLimits,
    /// `PHOTOS_DECODE_CONCURRENCY` (default: the number of CPUs).
    pub decode_concurrency: usize,
    /// `RELATIONS_URL`: the relations service's API, for blocks (a block hides each
    /// one's photos from the other); without it nobody blocks anybody.
    pub relations_url: Option<String>,
}

impl Config {
    /// Reads every setting, failing on the first bad one: `PHOTOS_STORAGE_DIR`, or
    /// `PHOTOS_S3_BUCKET` (with `PHOTOS_S3_ENDPOINT`, `PHOTOS_S3_REGION`,
    /// `PHOTOS_S3_PREFIX`, `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`).
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let storage = match (env.raw("PHOTOS_S3_BUCKET"), env.raw("PHOTOS_STORAGE_DIR")) {
            (Some(bucket), _) => StorageConfig::S3(storage::S3Config {
                bucket,
                endpoint: env.raw("PHOTOS_S3_ENDPOINT"),
                region: env.raw("PHOTOS_S3_REGION"),
                prefix: env.raw("PHOTOS_S3_PREFIX"),
                access_key_id: env.required("AWS_ACCESS_KEY_ID")?,
                secret_access_key: env.required("AWS_SECRET_ACCESS_KEY")?,
            }),
            (None, Some(dir)) => StorageConfig::Directory(dir.into()),
            (None, None) => return Err(ConfigError::Missing("PHOTOS_STORAGE_DIR".into())),
        };
        let share_link_key = env.required("PHOTOS_SHARE_LINK_KEY")?.into_bytes();
        if share_link_key.len() < 32 {
            return Err(ConfigError::Invalid {
                var: "PHOTOS_SHARE_LINK_KEY".into(),
                value: "(hidden)".into(),
                reason: "at least 32 bytes".into(),
            });
        }
        let cpus = std::thread::available_parallelism().map_or(2, usize::from);
        Ok(Self {
            basics: ServiceBasics::from_env(env)?,
            storage,
            share_link_key,
            max_upload: env.int_in(
                "PHOTOS_MAX_UPLOAD_BYTES",
                DEFAULT_MAX_UPLOAD,
                1024..=100 * 1024 * 1024,
            )?,
            limits: DecodeLimits {
                max_side: env.int_in("PHOTOS_MAX_PIXELS_SIDE", 8192, 16..=20_000)?,
                ..DecodeLimits::default()
            },
            decode_concurrency: env.int_in("PHOTOS_DECODE_CONCURRENCY", cpus, 1..=64)?,
            relations_url: env.raw("RELATIONS_URL"),
        })
    }
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Database pool or migrations.
    #[error(transparent)]
    Database(#[from] common_db::DbError),
    /// The storage backend cannot be opened.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A bad setting.
    #[error("{0}")]
    Config(&'static str),
    /// The relations service's HTTP client.
    #[error(transparent)]
    Client(#[from] agora_common::client::ClientError),
}

/// Migrates the database and builds the service, ready to serve.
pub async fn build(config: Config) -> Result<Service, StartError> {
    let verifier = config.basics.verifier();
    build_with(config, verifier).await
}

/// [`build`] with a given token verifier (tests use fixed keys).
pub async fn build_with(config: Config, verifier: TokenVerifier) -> Result<Service, StartError> {
    let basics = &config.basics;
    let foundation = Foundation::lay(basics, MIGRATIONS, "photos", verifier).await?;
    let relations = match &config.relations_url {
        Some(url) => Some(basics.client("relations", url)?),
        None => None,
    };
    let state = web::Data::new(PhotosState {
        pool: foundation.pool.clone(),
        storage: Storage::open(&config.storage)?,
        links: LinkSigner::new(&config.share_link_key).ok_or(StartError::Config(
            "PHOTOS_SHARE_LINK_KEY must be at least 32 bytes",
        ))?,
        max_upload: config.max_upload,
        limits: config.limits,
        decoding: Arc::new(tokio::sync::Semaphore::new(
            config.decode_concurrency.max(1),
        )),
        relations: relations.clone().map(agora_common::relations::Relations),
        decode_time: Histogram::new(exponential_buckets(0.001, 2.0, 14)),
    });
    let decode_time = state.decode_time.clone();
    // What an interrupted deletion left behind.
    match state.sweep_all().await {
        Ok(0) => {}
        Ok(n) => tracing::info!(blobs = n, "swept unreferenced blobs"),
        Err(e) => {
            tracing::warn!(error = %e, "sweep of unreferenced blobs failed; retried at next start")
        }
    }
    let mut service = foundation.service(
        "photos",
        routes::routes(state, foundation.clone()),
        routes::openapi(),
        routes::policy(config.max_upload),
    );
    if let Some(relations) = relations {
        service = service.ready_when(DependencyReady(relations));
    }
    service.metrics.registry_mut().register(
        "photos_image_decode_seconds",
        "Time to decode an uploaded image",
        decode_time,
    );
    Ok(service)
}

/// Erases an account straight in this service's database at `database_url` (a restore
/// re-applying a logged erasure before the platform serves; `DELETE
/// /internal/accounts/{id}` does the same while the service runs). The bytes no photo
/// uses any more go at the service's next start (its sweep of unreferenced blobs).
pub async fn erase_account(
    database_url: &str,
    id: uuid::Uuid,
) -> Result<(), agora_common::db::DbError> {
    agora_common::accounts::erase_offline(database_url, |c| {
        Box::pin(async move { db::erase_person(c, id).await.map(drop) })
    })
    .await
}
