//! The Agora authentication service: accounts with argon2id passwords, EdDSA access
//! tokens published as a JWKS, rotating refresh tokens with reuse detection, login
//! throttling, and a forward-auth endpoint for ingress middleware.

mod archive;
pub mod config;
mod db;
mod erasure_log;
mod export;
mod handlers;
pub mod model;
mod outbox;
pub mod passwords;
mod routes;
mod schema;
mod throttle;
pub mod tokens;

pub use config::{Config, Limits, SigningKeySource};

use actix_web::web;
use agora_common::auth::{KeySource, TokenVerifier};
use agora_common::ops::DatabaseReady;
use agora_common::ratelimit::RateLimiter;
use agora_common::{Service, db as common_db};
use diesel_migrations::{EmbeddedMigrations, embed_migrations};
use handlers::{AuthState, Throttles};
use std::time::Duration;
use throttle::{LoginThrottle, Thresholds};

/// The service's schema migrations, run at start-up.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Database pool or migrations.
    #[error(transparent)]
    Database(#[from] common_db::DbError),
    /// Signing keys.
    #[error(transparent)]
    Keys(#[from] tokens::KeyError),
    /// Password hasher parameters.
    #[error(transparent)]
    Hasher(#[from] passwords::HashError),
    /// An account subscriber's HTTP client.
    #[error(transparent)]
    Client(#[from] agora_common::client::ClientError),
    /// The erasure log's store.
    #[error("AUTH_ERASURE_LOG")]
    ErasureLog(#[from] agora_common::store::StoreError),
}

fn signing_key(source: &SigningKeySource) -> Result<tokens::KeyPair, tokens::KeyError> {
    match source {
        SigningKeySource::Pem(pem) => tokens::KeyPair::from_pem(pem.as_bytes(), "AUTH_SIGNING_KEY"),
        SigningKeySource::File { path, generate } => tokens::load_or_generate(path, *generate),
    }
}

/// Migrates the database and builds the service, ready to serve.
pub async fn build(config: Config) -> Result<Service, StartError> {
    let signing = signing_key(&config.signing_key)?;
    let previous = config
        .previous_key_files
        .iter()
        .map(|p| tokens::load_or_generate(p, false))
        .collect::<Result<Vec<_>, _>>()?;
    tracing::info!(
        kid = signing.kid(),
        previous = previous.len(),
        "signing key loaded"
    );
    let issuer = tokens::TokenIssuer::new(
        signing,
        previous,
        config.issuer.clone(),
        config.audience.clone(),
        config.access_ttl_secs,
    );
    let verifier = web::Data::new(TokenVerifier::new(
        &config.issuer,
        &config.audience,
        KeySource::Static(issuer.jwks().clone()),
    ));

    // `prepare` first: it waits for the database to take connections.
    let pool = common_db::prepare(
        &config.database_url,
        MIGRATIONS,
        "auth",
        config.db_pool_size,
    )
    .await?;
    agora_common::jobs::migrate_jobs(&config.database_url).await?;
    let deliveries = deliveries(&config, &pool)?;
    let exports = exports(&config, &pool)?;
    // Its own forward-auth and `/me` refuse revoked tokens too: read from the database.
    let revocations_pool = pool.clone();
    verifier.revocations().follow("auth", move |since| {
        let pool = revocations_pool.clone();
        async move {
            let mut conn = pool.get().await.map_err(|e| e.to_string())?;
            db::revocations_since(&mut conn, since)
                .await
                .map_err(|e| e.to_string())
        }
    });
    let limits = &config.limits;
    let minute = Duration::from_secs(60);
    let state = web::Data::new(AuthState {
        pool: pool.clone(),
        passwords: passwords::Passwords::new(config.hash, config.max_concurrent_hashes)?,
        tokens: issuer,
        refresh_ttl: chrono::Duration::seconds(
            i64::try_from(config.refresh_ttl_secs).unwrap_or(i64::MAX / 1000),
        ),
        throttles: Throttles {
            registrations: RateLimiter::new(limits.registrations_per_minute, minute),
            logins: RateLimiter::new(limits.logins_per_minute, minute),
            failed_logins: RateLimiter::new(limits.failed_logins_per_minute, minute),
            accounts: LoginThrottle::new(Thresholds {
                free_failures: limits.account_free_failures,
                base_delay: Duration::from_secs(limits.account_backoff_secs),
                max_delay: Duration::from_secs(limits.account_max_backoff_secs),
                account_failures_per_hour: limits.account_failures_per_hour,
            }),
        },
        trusted_proxies: config.trusted_proxies.clone(),
        reuse_grace: chrono::Duration::seconds(
            i64::try_from(config.refresh_reuse_grace_secs).unwrap_or(0),
        ),
        deliveries,
        username_quarantine: chrono::Duration::days(i64::from(config.username_quarantine_days)),
        exports,
    });
    if config.trusted_proxies.is_empty() {
        tracing::warn!(
            "TRUSTED_PROXIES is not set: each request's peer is taken as the client; behind \
             the gateway or an ingress, set it, or every client shares the proxy's budgets"
        );
    }
    tokio::spawn(agora_common::telemetry::in_service(
        "auth",
        housekeeping(state.clone()),
    ));
    let hash_wait = state.passwords.wait.clone();
    let pool_for_metrics = pool.clone();
    let mut service = Service::new(
        "auth",
        routes::routes(
            state,
            verifier,
            config.service_token.clone().map(web::Data::new),
        ),
        routes::openapi(),
    )
    .with_policy(routes::policy())
    .ready_when(DatabaseReady(pool));
    service
        .metrics
        .registry_mut()
        .register_collector(Box::new(agora_common::metrics::PoolGauges(
            pool_for_metrics,
        )));
    service.metrics.registry_mut().register(
        "auth_password_hash_wait_seconds",
        "Time a login, registration or password change waited for a hashing slot",
        hash_wait,
    );
    Ok(service)
}

/// The outbox of new accounts: one deliverer per subscriber, and the runner that
/// retries in the background.
fn deliveries(
    config: &Config,
    pool: &common_db::DbPool,
) -> Result<handlers::Deliveries, StartError> {
    let Some(token) = &config.service_token else {
        return Ok(handlers::Deliveries {
            kinds: Vec::new(),
            erasing: Vec::new(),
            runner: None,
        });
    };
    let mut kinds = Vec::new();
    let mut deliverers: Vec<std::sync::Arc<dyn agora_common::jobs::JobHandler>> = Vec::new();
    for (name, url) in &config.account_subscribers {
        kinds.push(outbox::kind_for(name));
        deliverers.push(std::sync::Arc::new(outbox::deliver_accounts(
            name,
            url,
            token.clone(),
        )?));
    }
    let log = match &config.erasure_log {
        Some(location) => {
            deliverers.push(std::sync::Arc::new(erasure_log::ErasureLog::open(
                location,
            )?));
            true
        }
        None => false,
    };
    let mut erasing = Vec::new();
    for (name, url) in &config.erasure_services {
        erasing.push(*name);
        deliverers.push(std::sync::Arc::new(outbox::Erase::new(
            name,
            url,
            token.clone(),
            pool.clone(),
            log,
        )?));
    }
    if deliverers.is_empty() {
        return Ok(handlers::Deliveries {
            kinds,
            erasing,
            runner: None,
        });
    }
    // A service that was down finishes its part of an erasure within minutes of its
    // return, not an hour.
    let settings = agora_common::jobs::RunnerSettings {
        max_backoff: Duration::from_secs(300),
        ..Default::default()
    };
    let runner = agora_common::jobs::JobRunner::new(pool.clone(), deliverers, settings);
    runner.clone().spawn("auth");
    Ok(handlers::Deliveries {
        kinds,
        erasing,
        runner: Some(runner),
    })
}

/// Data exports: their own runner, with a lease as long as an export may take (the
/// outbox's deliveries must not wait behind one), reading from the services that hold a
/// part, and the photos service to keep the archives.
fn exports(config: &Config, pool: &common_db::DbPool) -> Result<handlers::Exports, StartError> {
    let photos = config
        .erasure_services
        .iter()
        .find(|(name, _)| *name == "photos");
    let (Some(token), Some((_, photos_url))) = (&config.service_token, photos) else {
        return Ok(handlers::Exports {
            photos: None,
            runner: None,
            per_day: config.exports_per_day,
        });
    };
    let exporter = export::Export::new(pool.clone(), &config.erasure_services, token)?;
    let settings = agora_common::jobs::RunnerSettings {
        lease: export::EXPORT_BUDGET * 2,
        batch: 2,
        max_backoff: Duration::from_secs(300),
        ..Default::default()
    };
    let runner = agora_common::jobs::JobRunner::new(
        pool.clone(),
        vec![std::sync::Arc::new(exporter)],
        settings,
    );
    runner.clone().spawn("auth");
    let photos = agora_common::client::ServiceClient::new(
        "photos",
        photos_url,
        agora_common::client::ClientSettings {
            timeout: export::EXPORT_BUDGET,
            service_token: Some(token.clone()),
            ..Default::default()
        },
    )?;
    Ok(handlers::Exports {
        photos: Some(photos),
        runner: Some(runner),
        per_day: config.exports_per_day,
    })
}

/// Clean-up, so tables do not grow forever and sealed successors do not outlive their
/// grace period: every minute, the sealed successors past it; every hour, long-expired
/// refresh tokens (one replica at a time) and throttle rows that throttle nobody.
async fn housekeeping(state: web::Data<AuthState>) {
    let mut every_minute = tokio::time::interval(Duration::from_secs(60));
    for minute in 0u64.. {
        every_minute.tick().await;
        let mut conn = match state.pool.get().await {
            Ok(conn) => conn,
            Err(error) => {
                tracing::warn!(%error, "auth clean-up skipped: no database connection");
                continue;
            }
        };
        if let Err(error) = db::forget_sealed_successors(&mut conn, state.reuse_grace).await {
            tracing::warn!(%error, "forgetting sealed refresh successors failed");
        }
        if minute % 60 != 0 {
            continue;
        }
        match db::purge_expired_tokens(&mut conn).await {
            Ok(None) => tracing::debug!("another replica is purging expired refresh tokens"),
            Ok(Some(0)) => {}
            Ok(Some(n)) => tracing::info!(purged = n, "expired refresh tokens deleted"),
            Err(error) => tracing::warn!(%error, "refresh token clean-up failed"),
        }
        if let Some(photos) = &state.exports.photos {
            match export::expire(&state.pool, photos).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(expired = n, "export archives past 7 days deleted"),
                Err(error) => tracing::warn!(%error, "export archive clean-up failed"),
            }
        }
        match db::forget_erased(&mut conn, state.username_quarantine).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(freed = n, "usernames of erased accounts freed"),
            Err(error) => tracing::warn!(%error, "erased account clean-up failed"),
        }
        match state.throttles.accounts.purge(&mut conn).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(purged = n, "stale login throttle rows deleted"),
            Err(error) => tracing::warn!(%error, "login throttle clean-up failed"),
        }
    }
}

/// Re-applies a logged erasure straight in the auth database at `database_url` (a
/// restore, before the platform serves): see the erasure log in `docs/backup.md`.
pub async fn reapply_erasure(
    database_url: &str,
    id: uuid::Uuid,
    erased_at: chrono::DateTime<chrono::Utc>,
) -> Result<(), common_db::DbError> {
    use diesel_async::AsyncConnection;
    let mut conn = diesel_async::AsyncPgConnection::establish(database_url)
        .await
        .map_err(|e| common_db::DbError::Connect(e.into()))?;
    db::reapply_erasure(&mut conn, id, erased_at)
        .await
        .map_err(|e| common_db::DbError::Query(e.into()))
}
