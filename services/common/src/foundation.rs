//! What every business service is built on: its migrated database, the token verifier
//! and the credential of internal routes. A service's `build` reads as its own parts
//! on this foundation — its state, routes and extra readiness checks — instead of
//! repeating the same wiring.

use crate::TokenVerifier;
use crate::client::ServiceToken;
use crate::config::ServiceBasics;
use crate::db::{self, DbError, DbPool};
use crate::ops::{DatabaseReady, KeysReady};
use crate::routing::RoutePolicy;
use crate::server::{Routes, Service};
use actix_web::web;
use diesel_migrations::EmbeddedMigrations;

/// Why a service's notifier could not start.
#[derive(Debug, thiserror::Error)]
pub enum NotifierError {
    /// The outbox table could not be created.
    #[error(transparent)]
    Database(#[from] DbError),
    /// The notifications service's client.
    #[error(transparent)]
    Client(#[from] crate::client::ClientError),
}

/// A service's database pool and the app data every route table registers.
#[derive(Clone)]
pub struct Foundation {
    /// The pool of the migrated database.
    pub pool: DbPool,
    /// Verifies callers' access tokens.
    pub verifier: web::Data<TokenVerifier>,
    /// The credential internal routes require.
    pub service_token: web::Data<ServiceToken>,
}

impl Foundation {
    /// Waits for the service's database, migrates it (under the service's advisory
    /// lock, so replicas starting together take turns) and opens its pool.
    pub async fn lay(
        basics: &ServiceBasics,
        migrations: EmbeddedMigrations,
        service: &'static str,
        verifier: TokenVerifier,
    ) -> Result<Self, DbError> {
        let pool = db::prepare(
            &basics.database_url,
            migrations,
            service,
            basics.db_pool_size,
        )
        .await?;
        // Tokens of erased accounts and changed passwords are refused at once: a
        // verifier that follows the auth service's keys follows its revocations too.
        if verifier.is_remote() {
            verifier.revocations().follow_remote(
                service,
                &basics.auth_url(),
                basics.service_token.clone(),
            );
        }
        Ok(Self {
            pool,
            verifier: web::Data::new(verifier),
            service_token: web::Data::new(basics.service_token.clone()),
        })
    }

    /// Registers the verifier and the service credential as app data (the `Caller`
    /// and `ServiceCaller` extractors read them); returns `cfg` for the routes.
    pub fn register<'a>(&self, cfg: &'a mut web::ServiceConfig) -> &'a mut web::ServiceConfig {
        cfg.app_data(self.verifier.clone())
            .app_data(self.service_token.clone())
    }

    /// The notifier of a service that tells the notifications service at
    /// `notifications_url` (none: a notifier that tells nobody).
    pub async fn notifier(
        &self,
        service: &'static str,
        basics: &ServiceBasics,
        notifications_url: Option<&str>,
    ) -> Result<crate::notices::Notifier, NotifierError> {
        let Some(url) = notifications_url else {
            return Ok(crate::notices::Notifier::disabled());
        };
        let client = basics.client("notifications", url)?;
        Ok(crate::notices::Notifier::start(
            service,
            &basics.database_url,
            self.pool.clone(),
            client,
        )
        .await?)
    }

    /// The service: its routes, document and route policy, ready when its database
    /// answers and the key set is loaded (add the checks of its dependencies).
    pub fn service(
        &self,
        name: &'static str,
        routes: Routes,
        openapi: serde_json::Value,
        policy: RoutePolicy,
    ) -> Service {
        let mut service = Service::new(name, routes, openapi)
            .with_policy(policy)
            .ready_when(DatabaseReady(self.pool.clone()))
            .ready_when(KeysReady(self.verifier.clone()));
        service
            .metrics
            .registry_mut()
            .register_collector(Box::new(crate::metrics::PoolGauges(self.pool.clone())));
        service
    }
}
